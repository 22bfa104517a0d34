//! What the user can tell the client about one MCP server. Defaults follow the spec;
//! every setting that weakens a security check says so in its documentation, and the
//! engine logs a warning whenever one is used.

use crate::secret::ClientSecret;
use std::time::Duration;

/// Which `resource` indicator (RFC 8707) to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ResourceSetting {
    /// The Protected Resource Metadata's `resource` string, verbatim (the spec's rule).
    #[default]
    FromMetadata,
    /// This exact string instead (multi-tenant servers, proxies).
    Override(String),
    /// Send no `resource` parameter. Microsoft Entra ID rejects a `resource` together with
    /// v2 scopes (`AADSTS9010010`); this is the escape hatch for it. Weakens audience
    /// binding: tokens are then not restricted to this server by the request.
    Omit,
}

/// What to do with an authorization server whose metadata does not list
/// `code_challenge_methods_supported`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PkceMetadataPolicy {
    /// Refuse it (the spec's MUST): we cannot know that PKCE is enforced.
    #[default]
    Require,
    /// Use S256 anyway (AWS Cognito omits the field but supports S256). Weakens a check:
    /// a server that ignores PKCE would go unnoticed.
    AllowMissing,
}

/// A client the user registered with the authorization server beforehand.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreRegisteredClient {
    pub client_id: String,
    pub client_secret: Option<ClientSecret>,
    /// The issuer this client belongs to. When set, the client is used only with that
    /// authorization server (a client id is meaningful only to its issuer).
    pub issuer: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`; chosen from the AS metadata
    /// when unset.
    pub token_endpoint_auth_method: Option<String>,
}

impl std::fmt::Debug for PreRegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::secret::redacted(&self.client_secret))
            .field("issuer", &self.issuer)
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .finish()
    }
}

/// Where the authorization server sends the browser back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSettings {
    /// `127.0.0.1` by default (RFC 8252 §7.3 recommends the loopback IP literal).
    pub host: String,
    /// `None`: a stable port derived from the server URL, so that a redirect URI
    /// registered once keeps working; `Some(0)`: any free port.
    pub port: Option<u16>,
    pub path: String,
}

impl Default for RedirectSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: None,
            path: "/callback".into(),
        }
    }
}

/// Configuration of the OAuth client for one MCP server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The MCP endpoint URL, as the user gave it.
    pub server_url: String,
    /// Several accounts on one server are told apart by profile.
    pub profile: Option<String>,
    pub client: Option<PreRegisteredClient>,
    /// A Client ID Metadata Document URL, used as `client_id` where the AS supports it.
    pub client_metadata_url: Option<String>,
    pub client_name: String,
    pub redirect: RedirectSettings,
    /// Scopes to request, overriding the challenge and the metadata.
    pub scopes: Option<String>,
    pub resource: ResourceSetting,
    /// Extra parameters on the authorization request (Google: `access_type=offline`,
    /// `prompt=consent`; Auth0: `audience=...`).
    pub authorize_params: Vec<(String, String)>,
    /// Authorization server metadata URL to use when discovery cannot find one.
    pub auth_server_metadata_url: Option<String>,
    /// Which of several `authorization_servers` to use (by issuer); the first that works
    /// otherwise.
    pub authorization_server: Option<String>,
    pub pkce_metadata: PkceMetadataPolicy,
    /// How long to wait for the browser to come back.
    pub callback_timeout: Duration,
    /// Request `offline_access` when the AS lists it (for a refresh token).
    pub request_offline_access: bool,
    /// Refresh this long before expiry.
    pub refresh_margin: Duration,
}

impl OAuthConfig {
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            profile: None,
            client: None,
            client_metadata_url: None,
            client_name: "mcp-oauth".into(),
            redirect: RedirectSettings::default(),
            scopes: None,
            resource: ResourceSetting::default(),
            authorize_params: Vec::new(),
            auth_server_metadata_url: None,
            authorization_server: None,
            pkce_metadata: PkceMetadataPolicy::default(),
            callback_timeout: Duration::from_secs(300),
            request_offline_access: true,
            refresh_margin: Duration::from_secs(60),
        }
    }

    /// The store key of this server's credentials.
    pub fn credential_key(&self) -> crate::store::CredentialKey {
        crate::store::CredentialKey::new(self.server_url.clone()).with_profile(self.profile.clone())
    }
}
