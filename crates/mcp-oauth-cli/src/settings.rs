//! Command-line flags that become an [`OAuthConfig`].

use clap::Args;
use mcp_oauth::config::{PkceMetadataPolicy, PreRegisteredClient, ResourceSetting};
use mcp_oauth::secret::ClientSecret;
use mcp_oauth::OAuthConfig;

/// OAuth settings for one server.
#[derive(Args, Debug, Clone, Default)]
pub struct OAuthArgs {
    /// Use this pre-registered client id instead of registering one.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the client secret from this environment variable (never pass secrets in argv).
    #[arg(long, value_name = "VAR", requires = "client_id")]
    pub client_secret_env: Option<String>,
    /// Read the client secret from this file.
    #[arg(long, value_name = "FILE", requires = "client_id", conflicts_with = "client_secret_env")]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// A Client ID Metadata Document URL to use as client id where the server supports it.
    #[arg(long, value_name = "URL")]
    pub client_metadata_url: Option<String>,
    /// Scopes to request (space separated), instead of the server's.
    #[arg(long)]
    pub scope: Option<String>,
    /// Port of the loopback redirect URI (default: a stable port per server).
    #[arg(long, value_name = "PORT")]
    pub redirect_port: Option<u16>,
    /// Host of the loopback redirect URI.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub redirect_host: String,
    /// Path of the loopback redirect URI.
    #[arg(long, value_name = "PATH", default_value = "/callback")]
    pub redirect_path: String,
    /// Send this RFC 8707 resource instead of the server's.
    #[arg(long, value_name = "URI", conflicts_with = "no_resource")]
    pub resource: Option<String>,
    /// Send no resource parameter (Microsoft Entra). WEAKENS SECURITY: tokens are not
    /// bound to this server by the request.
    #[arg(long)]
    pub no_resource: bool,
    /// Accept an authorization server whose metadata omits code_challenge_methods_supported
    /// (AWS Cognito). WEAKENS SECURITY: PKCE support is assumed, not verified.
    #[arg(long)]
    pub allow_missing_pkce_metadata: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub auth_timeout: u64,
}

impl OAuthArgs {
    pub fn to_config(&self, server_url: &str) -> anyhow::Result<OAuthConfig> {
        let mut c = OAuthConfig::new(server_url);
        if let Some(id) = &self.client_id {
            let secret = match (&self.client_secret_env, &self.client_secret_file) {
                (Some(var), _) => Some(ClientSecret::new(std::env::var(var).map_err(|_| {
                    anyhow::anyhow!("--client-secret-env {var}: that environment variable is not set")
                })?)),
                (None, Some(file)) => Some(ClientSecret::new(
                    std::fs::read_to_string(file)
                        .map_err(|e| anyhow::anyhow!("--client-secret-file {}: {e}", file.display()))?
                        .trim()
                        .to_string(),
                )),
                (None, None) => None,
            };
            c.client = Some(PreRegisteredClient {
                client_id: id.clone(),
                client_secret: secret,
                ..Default::default()
            });
        }
        c.client_metadata_url = self.client_metadata_url.clone();
        c.scopes = self.scope.clone();
        c.redirect.host = self.redirect_host.clone();
        c.redirect.port = self.redirect_port;
        c.redirect.path = self.redirect_path.clone();
        if self.no_resource {
            tracing::warn!("--no-resource: no resource indicator is sent (weakens audience binding)");
            c.resource = ResourceSetting::Omit;
        } else if let Some(r) = &self.resource {
            c.resource = ResourceSetting::Override(r.clone());
        }
        if self.allow_missing_pkce_metadata {
            tracing::warn!("--allow-missing-pkce-metadata: PKCE support is assumed, not verified (weakens a security check)");
            c.pkce_metadata = PkceMetadataPolicy::AllowMissing;
        }
        c.callback_timeout = std::time::Duration::from_secs(self.auth_timeout);
        Ok(c)
    }
}
