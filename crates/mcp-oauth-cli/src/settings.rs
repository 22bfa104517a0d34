//! The settings of one server: the configuration file ([`crate::config_file`]) with the
//! command-line flags on top, turned into an [`OAuthConfig`].
//!
//! Every setting that weakens a security check says so in `--help` and is logged (a
//! warning on stderr) whenever it is used.

use crate::args::{Check, static_client_info, static_client_metadata};
use crate::config_file::{self, DpopName, GrantName, InteractionName, Scopes, ServerSettings};
use clap::Args;
use mcp_oauth::OAuthConfig;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::paste;
use mcp_oauth::config::{
    AssertionSource, DpopPolicy, EnterpriseSettings, GrantKind, Interaction, PkceMetadataPolicy,
    PreRegisteredClient, ResourceSetting, SecretSource,
};
use mcp_oauth::secret::PrivateKeyPem;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// OAuth settings for one server (flags; the configuration file supplies the rest).
#[derive(Args, Debug, Clone, Default)]
pub struct OAuthArgs {
    /// Configuration file (must exist) [default: $MCP_OAUTH_CONFIG, else
    /// $XDG_CONFIG_HOME/mcp-oauth/config.toml, each optional].
    #[arg(long, value_name = "FILE", help_heading = "Settings")]
    pub config: Option<PathBuf>,
    /// Account name, for several logins on one server (a `profiles.<NAME>` table in the
    /// configuration file, and a separate stored credential).
    #[arg(
        long,
        value_name = "NAME",
        env = "MCP_OAUTH_PROFILE",
        help_heading = "Settings"
    )]
    pub profile: Option<String>,

    /// Use this pre-registered client id instead of registering one.
    #[arg(long, value_name = "ID", help_heading = "Client")]
    pub client_id: Option<String>,
    /// mcp-remote's client information, inline JSON or @FILE: its client_id is taken as
    /// --client-id; one with a client_secret is refused with the flags to use instead
    /// (no secret on the command line).
    #[arg(
        long,
        value_name = "JSON",
        hide = true,
        conflicts_with = "client_id",
        value_parser = Check(static_client_info)
    )]
    pub static_oauth_client_info: Option<String>,
    /// mcp-remote's client metadata: refused, with the flag to use instead.
    #[arg(long, value_name = "JSON", hide = true, value_parser = Check(static_client_metadata))]
    pub static_oauth_client_metadata: Option<String>,
    /// Read the client secret from this environment variable (secrets never go in argv).
    #[arg(long, value_name = "VAR", help_heading = "Client")]
    pub client_secret_env: Option<String>,
    /// Read the client secret from this file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "client_secret_env",
        help_heading = "Client"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// The issuer of the authorization server the --client-id client belongs to. Its
    /// secret or private key is sent to that authorization server only. Without it, the
    /// first authorization server the client is used with for this server is remembered
    /// and any other is refused (set this to move the client on purpose).
    #[arg(long, value_name = "URL", help_heading = "Client")]
    pub client_issuer: Option<String>,
    /// A Client ID Metadata Document URL to use as client id where the server supports it.
    #[arg(long, value_name = "URL", help_heading = "Client")]
    pub client_metadata_url: Option<String>,

    /// Scopes to request (space separated), instead of the server's.
    #[arg(long, value_name = "SCOPES", help_heading = "Authorization")]
    pub scope: Option<String>,
    /// Extra authorization request parameter, repeatable (Google: access_type=offline and
    /// prompt=consent for a refresh token).
    #[arg(
        long = "authorize-param",
        value_name = "KEY=VALUE",
        help_heading = "Authorization"
    )]
    pub authorize_params: Vec<String>,
    /// Send this RFC 8707 resource instead of the one the server publishes.
    #[arg(
        long,
        value_name = "URI",
        conflicts_with = "no_resource",
        help_heading = "Authorization"
    )]
    pub resource: Option<String>,
    /// WEAKENS SECURITY: send no resource parameter, so tokens are not bound to this server
    /// by the request (Microsoft Entra rejects it with v2 scopes, AADSTS9010010).
    #[arg(
        long,
        alias = "disable-resource-parameter",
        help_heading = "Authorization"
    )]
    pub no_resource: bool,
    /// Authorization server metadata URL, for servers whose discovery is absent or broken.
    #[arg(
        long = "as-metadata-url",
        value_name = "URL",
        help_heading = "Authorization"
    )]
    pub as_metadata_url: Option<String>,
    /// Which authorization server to use (issuer) when the server lists several.
    #[arg(long, value_name = "ISSUER", help_heading = "Authorization")]
    pub authorization_server: Option<String>,
    /// WEAKENS SECURITY: accept an authorization server whose metadata omits
    /// code_challenge_methods_supported (AWS Cognito); PKCE support is assumed, not verified.
    #[arg(long, help_heading = "Authorization")]
    pub allow_missing_pkce_metadata: bool,
    /// WEAKENS SECURITY: let a public MCP server point discovery (metadata, authorization
    /// server endpoints) at private-network addresses, e.g. an authorization server on the
    /// corporate network. Loopback, link-local and cloud metadata addresses stay refused.
    #[arg(long, help_heading = "Authorization")]
    pub allow_private_networks: bool,
    /// WEAKENS SECURITY: send tokens to an MCP server reached over plain http on a host
    /// that is not loopback: they cross the network unencrypted (OAuth 2.1 §1.5). Only for
    /// networks where nobody can listen in.
    #[arg(long, help_heading = "Authorization")]
    pub allow_http: bool,
    /// WEAKENS SECURITY: behind an HTTP proxy, let the proxy resolve discovery URLs whose
    /// names do not resolve here (refused by default: only the proxy could say where they
    /// lead, e.g. an intranet host).
    #[arg(long, help_heading = "Authorization")]
    pub trust_proxy_dns: bool,

    /// Print the authorization URL and read the redirect URL (or the code) pasted on stdin,
    /// instead of opening a browser (SSH sessions, containers). Chosen automatically when
    /// there is no display or the session is over SSH and stdin is a terminal.
    #[arg(long, conflicts_with_all = ["device", "browser"], help_heading = "Interaction")]
    pub no_browser: bool,
    /// Use the device authorization grant (RFC 8628): enter a code on any device.
    #[arg(long, conflicts_with = "browser", help_heading = "Interaction")]
    pub device: bool,
    /// Bind tokens to a key (DPoP, RFC 9449): auto = when the authorization server and the
    /// MCP server both support it [default: auto]. `never` gives plain Bearer tokens, for
    /// `mcp-oauth token`.
    #[arg(long, value_name = "MODE", help_heading = "Authorization")]
    pub dpop: Option<DpopName>,

    /// The OAuth grant [default: auto: from these settings and the authorization server].
    #[arg(long, value_name = "GRANT", help_heading = "Without a user")]
    pub grant: Option<GrantName>,
    /// Shorthand for --grant client-credentials: the client acts on its own behalf with
    /// --client-secret-env/--client-secret-file or --private-key.
    #[arg(long, conflicts_with = "grant", help_heading = "Without a user")]
    pub client_credentials: bool,
    /// PEM private key (PKCS#8) for private_key_jwt client authentication (RFC 7523).
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    pub private_key: Option<PathBuf>,
    /// Algorithm of --private-key [default: ES256].
    #[arg(long, value_name = "ALG", help_heading = "Without a user")]
    pub private_key_alg: Option<String>,
    /// Workload identity JWT for the jwt-bearer grant, read from this file at each use
    /// (Kubernetes projected tokens, CI OIDC tokens).
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    pub assertion_file: Option<PathBuf>,
    /// Like --assertion-file, from an environment variable.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "assertion_file",
        help_heading = "Without a user"
    )]
    pub assertion_env: Option<String>,
    /// Enterprise-managed authorization: the enterprise IdP's token endpoint.
    #[arg(long, value_name = "URL", help_heading = "Without a user")]
    pub idp_token_endpoint: Option<String>,
    /// Our client id at the enterprise IdP.
    #[arg(long, value_name = "ID", help_heading = "Without a user")]
    pub idp_client_id: Option<String>,
    /// Environment variable holding our client secret at the IdP.
    #[arg(long, value_name = "VAR", help_heading = "Without a user")]
    pub idp_client_secret_env: Option<String>,
    /// The user's ID token from the enterprise IdP, read from this file at each use.
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    pub id_token_file: Option<PathBuf>,
    /// Like --id-token-file, from an environment variable.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "id_token_file",
        help_heading = "Without a user"
    )]
    pub id_token_env: Option<String>,
    /// Open a browser even where paste mode would be chosen automatically.
    #[arg(long, help_heading = "Interaction")]
    pub browser: bool,
    /// Seconds to wait for the browser, the paste or the device approval [default: 300].
    #[arg(long, value_name = "SECS", help_heading = "Interaction")]
    pub auth_timeout: Option<u64>,

    /// Full loopback redirect URI, e.g. http://localhost:3118/callback (for a client
    /// registered with it).
    #[arg(long, value_name = "URI", help_heading = "Redirect URI")]
    pub redirect_uri: Option<String>,
    /// Port of the loopback redirect URI [default: a stable port per server].
    #[arg(long, value_name = "PORT", help_heading = "Redirect URI")]
    pub redirect_port: Option<u16>,
    /// Host of the loopback redirect URI [default: 127.0.0.1].
    #[arg(
        long,
        alias = "host",
        value_name = "HOST",
        help_heading = "Redirect URI"
    )]
    pub redirect_host: Option<String>,
    /// Path of the loopback redirect URI [default: /callback].
    #[arg(
        long,
        alias = "callback-path",
        value_name = "PATH",
        help_heading = "Redirect URI"
    )]
    pub redirect_path: Option<String>,

    /// Send a static Authorization header read from this environment variable, and no
    /// OAuth for this server (a bare token gets "Bearer ").
    #[arg(long, value_name = "VAR", help_heading = "Static credentials")]
    pub authorization_env: Option<String>,
    /// Like --authorization-env, from a file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "authorization_env",
        help_heading = "Static credentials"
    )]
    pub authorization_file: Option<PathBuf>,
}

/// The settings of one server, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: OAuthConfig,
    /// A static `Authorization` header value: OAuth is off for this server.
    pub static_authorization: Option<String>,
    /// The configuration file's extra headers for MCP requests (`${VAR}` expanded).
    pub headers: http::HeaderMap,
    /// The configuration file used, if one was read.
    pub config_file: Option<PathBuf>,
}

impl OAuthArgs {
    /// The URL of the server a command names: `arg` itself when it is a URL, else the
    /// URL that this command's configuration file (--config, or the default one) gives
    /// that name.
    pub fn server_url_of(&self, arg: &str) -> anyhow::Result<String> {
        server_url_of(arg, self.config.as_deref())
    }

    /// Everything about `server_url`: the configuration file's layers, then the flags.
    pub fn resolve(&self, server_url: &str) -> anyhow::Result<Resolved> {
        let (path, explicit) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => (config_file::default_path(), false),
        };
        let file = match &path {
            Some(p) => config_file::load(p, explicit)?,
            None => Default::default(),
        };
        let from_file = file.settings_for(server_url, self.profile.as_deref())?;
        if file.server(server_url).is_some() {
            tracing::info!(file = %path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), "using the configuration file's settings for this server");
        }
        let settings = from_file.overlay(&self.as_settings()?);
        let config = build_config(server_url, self.profile.clone(), &settings, self.browser)?;
        let static_authorization = static_authorization(&settings)?;
        if static_authorization.is_some() {
            tracing::warn!(
                server = server_url,
                "a static Authorization header is configured: OAuth is off for this server"
            );
        }
        let headers = match &settings.headers {
            Some(table) => crate::headers::from_table(table, &crate::headers::process_env)?,
            None => http::HeaderMap::new(),
        };
        Ok(Resolved {
            config,
            static_authorization,
            headers,
            config_file: path.filter(|p| p.exists()),
        })
    }

    /// The flags as a settings layer.
    fn as_settings(&self) -> anyhow::Result<ServerSettings> {
        let mut params = BTreeMap::new();
        for p in &self.authorize_params {
            let Some((k, v)) = p.split_once('=') else {
                anyhow::bail!("--authorize-param {p:?}: expected KEY=VALUE");
            };
            params.insert(k.to_string(), v.to_string());
        }
        Ok(ServerSettings {
            client_id: self
                .client_id
                .clone()
                .or_else(|| self.static_oauth_client_info.clone()),
            client_secret_env: self.client_secret_env.clone(),
            client_secret_file: self.client_secret_file.clone(),
            client_issuer: self.client_issuer.clone(),
            client_metadata_url: self.client_metadata_url.clone(),
            scopes: self.scope.clone().map(Scopes::One),
            resource: if self.no_resource {
                Some("omit".into())
            } else {
                self.resource.clone()
            },
            authorize_params: (!params.is_empty()).then_some(params),
            auth_server_metadata_url: self.as_metadata_url.clone(),
            authorization_server: self.authorization_server.clone(),
            allow_missing_pkce_metadata: self.allow_missing_pkce_metadata.then_some(true),
            allow_private_networks: self.allow_private_networks.then_some(true),
            allow_http: self.allow_http.then_some(true),
            trust_proxy_dns: self.trust_proxy_dns.then_some(true),
            redirect_uri: self.redirect_uri.clone(),
            redirect_host: self.redirect_host.clone(),
            redirect_port: self.redirect_port,
            redirect_path: self.redirect_path.clone(),
            interaction: if self.no_browser {
                Some(InteractionName::Paste)
            } else if self.device {
                Some(InteractionName::Device)
            } else if self.browser {
                Some(InteractionName::Browser)
            } else {
                None
            },
            auth_timeout: self.auth_timeout,
            dpop: self.dpop,
            grant: if self.client_credentials {
                Some(GrantName::ClientCredentials)
            } else {
                self.grant
            },
            private_key_file: self.private_key.clone(),
            private_key_alg: self.private_key_alg.clone(),
            assertion_file: self.assertion_file.clone(),
            assertion_env: self.assertion_env.clone(),
            idp_token_endpoint: self.idp_token_endpoint.clone(),
            idp_client_id: self.idp_client_id.clone(),
            idp_client_secret_env: self.idp_client_secret_env.clone(),
            id_token_file: self.id_token_file.clone(),
            id_token_env: self.id_token_env.clone(),
            authorization_env: self.authorization_env.clone(),
            authorization_file: self.authorization_file.clone(),
            ..Default::default()
        })
    }
}

/// The URL of the server `arg` names: `arg` itself when it is a URL, else the URL the
/// configuration file (`config` when given, else the default one) gives that name. An
/// unknown name is a usage error that says what a URL looks like and lists the names.
pub fn server_url_of(arg: &str, config: Option<&std::path::Path>) -> anyhow::Result<String> {
    if !config_file::is_name(arg) {
        return Ok(arg.to_string());
    }
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => config_file::default_path(),
    };
    let file = match &path {
        Some(p) => config_file::load(p, config.is_some())?,
        None => Default::default(),
    };
    if let Some(url) = file.url_of(arg) {
        return Ok(url.to_string());
    }
    let not_a_url = crate::args::server_url(arg).err().unwrap_or_default();
    let names = file.names();
    let known = if names.is_empty() {
        format!(" (to name one: [servers.{arg}] url = \"https://…\")")
    } else {
        format!(" (names: {})", names.join(", "))
    };
    let whose = match &path {
        Some(p) if p.exists() => format!("the configuration file {}", p.display()),
        Some(p) => format!(
            "the configuration file {}, which does not exist",
            p.display()
        ),
        None => "a configuration file (there is none)".into(),
    };
    Err(crate::ui::CliError {
        message: format!("{not_a_url}, and no server is named {arg} in {whose}{known}"),
        hint: None,
        code: crate::ui::exit::USAGE,
    }
    .into())
}

/// `~/…` is the home directory (the configuration file is not read by a shell).
fn expand_home(path: &std::path::Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

fn read_secret_file(what: &str, path: &std::path::Path) -> anyhow::Result<String> {
    let path = &expand_home(path);
    let s = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    let s = s.trim().to_string();
    if s.is_empty() {
        anyhow::bail!("{what} {} is empty", path.display());
    }
    Ok(s)
}

fn read_secret_env(what: &str, var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => anyhow::bail!("{what} {var}: that environment variable is not set (or empty)"),
    }
}

/// Where a client secret is read from at each use: the environment variable, else the
/// file (`~` expanded). It is read once here too, so that a variable that is not set or a
/// file that cannot be read is reported before any network traffic.
fn secret_source(
    (env_name, var): (&str, Option<&str>),
    (file_name, file): (&str, Option<&std::path::Path>),
) -> anyhow::Result<Option<SecretSource>> {
    let source = match (var, file) {
        (Some(var), _) => {
            read_secret_env(env_name, var)?;
            SecretSource::Env(var.to_string())
        }
        (None, Some(file)) => {
            read_secret_file(file_name, file)?;
            SecretSource::File(expand_home(file))
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(source))
}

fn static_authorization(s: &ServerSettings) -> anyhow::Result<Option<String>> {
    let raw = match (&s.authorization_env, &s.authorization_file) {
        (Some(var), _) => read_secret_env("authorization_env", var)?,
        (None, Some(f)) => read_secret_file("authorization_file", f)?,
        (None, None) => return Ok(None),
    };
    // A bare token becomes a Bearer credential; "Scheme value" is used as is.
    Ok(Some(if raw.contains(' ') {
        raw
    } else {
        format!("Bearer {raw}")
    }))
}

fn build_config(
    server_url: &str,
    profile: Option<String>,
    s: &ServerSettings,
    browser_forced: bool,
) -> anyhow::Result<OAuthConfig> {
    let mut c = OAuthConfig::new(server_url);
    c.profile = profile;
    if let Some(id) = &s.client_id {
        let secret = secret_source(
            ("client_secret_env", s.client_secret_env.as_deref()),
            ("client_secret_file", s.client_secret_file.as_deref()),
        )?;
        let private_key = match &s.private_key_file {
            Some(f) => {
                let key = SigningKey {
                    pem: PrivateKeyPem::new(read_secret_file("private_key_file", f)?),
                    alg: s.private_key_alg.clone().unwrap_or_else(|| "ES256".into()),
                };
                // A bad key is reported now, before any network traffic.
                key.validate()
                    .map_err(|e| anyhow::anyhow!("private_key_file {}: {e}", f.display()))?;
                Some(key)
            }
            None => None,
        };
        // Parsed here, once: an unknown method is an error that names it, before any
        // network traffic.
        let token_endpoint_auth_method = s
            .token_endpoint_auth_method
            .as_deref()
            .map(str::parse)
            .transpose()?;
        c.client = Some(PreRegisteredClient {
            client_id: id.clone(),
            client_secret: secret,
            issuer: s.client_issuer.clone(),
            token_endpoint_auth_method,
            private_key,
        });
    } else if s.client_secret_env.is_some() || s.client_secret_file.is_some() {
        anyhow::bail!(
            "a client secret is configured without a client id (--client-id / client_id)"
        );
    } else if s.private_key_file.is_some() {
        anyhow::bail!("a private key is configured without a client id (--client-id / client_id)");
    }
    apply_grant_settings(&mut c, s)?;
    c.client_metadata_url = s.client_metadata_url.clone();
    c.scopes = s
        .scopes
        .as_ref()
        .map(Scopes::joined)
        .filter(|x| !x.trim().is_empty());
    match s.resource.as_deref() {
        Some("omit") => {
            tracing::warn!(
                server = server_url,
                "resource = \"omit\" (--no-resource): no resource indicator is sent, so tokens are not \
                 bound to this server by the request (weakens a security check)"
            );
            c.resource = ResourceSetting::Omit;
        }
        Some(r) => c.resource = ResourceSetting::Override(r.to_string()),
        None => {}
    }
    if let Some(p) = &s.authorize_params {
        c.authorize_params = p.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    c.auth_server_metadata_url = s.auth_server_metadata_url.clone();
    c.authorization_server = s.authorization_server.clone();
    if s.allow_missing_pkce_metadata == Some(true) {
        tracing::warn!(
            server = server_url,
            "allow_missing_pkce_metadata (--allow-missing-pkce-metadata): PKCE support is assumed, not \
             verified (weakens a security check)"
        );
        c.pkce_metadata = PkceMetadataPolicy::AllowMissing;
    }
    if s.allow_private_networks == Some(true) {
        tracing::warn!(
            server = server_url,
            "allow_private_networks (--allow-private-networks): discovery may reach private-network \
             addresses even though the server is public (weakens the SSRF protection)"
        );
        c.address_policy = mcp_oauth::netpolicy::AddressPolicy::AllowPrivateNetworks;
    }
    // The library warns whenever a token does go over plain http.
    c.allow_plain_http = s.allow_http == Some(true);
    if s.trust_proxy_dns == Some(true) {
        tracing::warn!(
            server = server_url,
            "trust_proxy_dns (--trust-proxy-dns): behind an HTTP proxy, discovery may reach names \
             that only the proxy resolves, unchecked (weakens the SSRF protection)"
        );
        c.trust_proxy_dns = true;
    }
    if let Some(uri) = &s.redirect_uri {
        let u = url::Url::parse(uri).map_err(|e| anyhow::anyhow!("redirect URI {uri:?}: {e}"))?;
        if u.scheme() != "http" {
            anyhow::bail!(
                "redirect URI {uri:?}: a loopback redirect URI uses http (RFC 8252 §7.3)"
            );
        }
        c.redirect.host = u
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_string();
        c.redirect.port = u.port();
        c.redirect.path = u.path().to_string();
    }
    if let Some(h) = &s.redirect_host {
        c.redirect.host = h.clone();
    }
    if let Some(p) = s.redirect_port {
        c.redirect.port = Some(p);
    }
    if let Some(p) = &s.redirect_path {
        c.redirect.path = p.clone();
    }
    if let Some(t) = s.auth_timeout {
        c.callback_timeout = std::time::Duration::from_secs(t);
    }
    if let Some(o) = s.request_offline_access {
        c.request_offline_access = o;
    }
    match s.dpop {
        Some(DpopName::Auto) => c.dpop = DpopPolicy::Auto,
        Some(DpopName::Always) => c.dpop = DpopPolicy::Always,
        Some(DpopName::Never) => c.dpop = DpopPolicy::Never,
        None => {}
    }
    c.interaction = match s.interaction {
        Some(InteractionName::Browser) => Interaction::Browser,
        Some(InteractionName::Paste) => Interaction::Paste,
        Some(InteractionName::Device) => Interaction::Device,
        None if !browser_forced => match paste::headless_reason() {
            Some(why) if paste::stdin_is_terminal() => {
                crate::ui::say(format_args!(
                    "No browser here ({why}): paste mode. Use --browser to open one anyway, or --device."
                ));
                Interaction::Paste
            }
            _ => Interaction::Browser,
        },
        None => Interaction::Browser,
    };
    Ok(c)
}

/// The settings of the grants that need no user.
fn apply_grant_settings(c: &mut OAuthConfig, s: &ServerSettings) -> anyhow::Result<()> {
    c.grant = match s.grant {
        None | Some(GrantName::Auto) => GrantKind::Auto,
        Some(GrantName::AuthorizationCode) => GrantKind::AuthorizationCode,
        Some(GrantName::ClientCredentials) => GrantKind::ClientCredentials,
        Some(GrantName::JwtBearer) => GrantKind::JwtBearer,
        Some(GrantName::Enterprise) => GrantKind::EnterpriseManaged,
    };
    c.workload_assertion = match (&s.assertion_file, &s.assertion_env) {
        (Some(f), _) => Some(AssertionSource::File(expand_home(f))),
        (None, Some(v)) => Some(AssertionSource::Env(v.clone())),
        (None, None) => None,
    };
    let id_token = match (&s.id_token_file, &s.id_token_env) {
        (Some(f), _) => Some(AssertionSource::File(expand_home(f))),
        (None, Some(v)) => Some(AssertionSource::Env(v.clone())),
        (None, None) => None,
    };
    c.enterprise = match (&s.idp_token_endpoint, &s.idp_client_id, id_token) {
        (None, None, None) => None,
        (Some(endpoint), Some(client), Some(id_token)) => Some(EnterpriseSettings {
            idp_token_endpoint: endpoint.clone(),
            idp_client_id: client.clone(),
            idp_client_secret: secret_source(
                ("idp_client_secret_env", s.idp_client_secret_env.as_deref()),
                ("", None),
            )?,
            id_token,
        }),
        _ => anyhow::bail!(
            "enterprise-managed authorization needs all of --idp-token-endpoint, \
             --idp-client-id and --id-token-file (or --id-token-env)"
        ),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_settings_become_configuration() {
        let dir = tempfile_dir("grants");
        let key = dir.join("key.pem");
        std::fs::write(&key, "not a key").unwrap();
        let bad = OAuthArgs {
            client_id: Some("svc".into()),
            private_key: Some(key.clone()),
            client_credentials: true,
            ..Default::default()
        };
        let e = bad
            .resolve("https://h.example/mcp")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("private_key_file") && e.contains("key.pem"),
            "{e}"
        );

        let wif = OAuthArgs {
            client_id: Some("workload".into()),
            assertion_file: Some(dir.join("token")),
            ..Default::default()
        };
        let c = wif.resolve("https://h.example/mcp").unwrap().config;
        assert_eq!(
            c.workload_assertion,
            Some(AssertionSource::File(dir.join("token")))
        );

        let partial = OAuthArgs {
            idp_token_endpoint: Some("https://idp/token".into()),
            ..Default::default()
        };
        assert!(
            partial
                .resolve("https://h.example/mcp")
                .unwrap_err()
                .to_string()
                .contains("--idp-client-id")
        );

        let cc = OAuthArgs {
            client_credentials: true,
            ..Default::default()
        };
        assert_eq!(
            cc.resolve("https://h.example/mcp").unwrap().config.grant,
            GrantKind::ClientCredentials
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile_dir("flags");
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            r#"
[servers."https://h.example/mcp"]
client_id = "from-file"
scopes = "a"
resource = "omit"
redirect_uri = "http://localhost:3118/oauth/callback"
interaction = "device"
authorize_params = { access_type = "offline" }
"#,
        )
        .unwrap();
        let args = OAuthArgs {
            config: Some(path.clone()),
            scope: Some("b c".into()),
            authorize_params: vec!["prompt=consent".into()],
            ..Default::default()
        };
        let r = args.resolve("https://h.example/mcp").unwrap();
        let c = r.config;
        assert_eq!(c.client.as_ref().unwrap().client_id, "from-file");
        assert_eq!(c.scopes.as_deref(), Some("b c"));
        assert_eq!(c.resource, ResourceSetting::Omit);
        assert_eq!(c.redirect.host, "localhost");
        assert_eq!(c.redirect.port, Some(3118));
        assert_eq!(c.redirect.path, "/oauth/callback");
        assert_eq!(c.interaction, Interaction::Device);
        assert_eq!(c.authorize_params.len(), 2);
        assert!(r.static_authorization.is_none());
        assert_eq!(r.config_file.as_deref(), Some(path.as_path()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn mcp_remote_settings_map_onto_ours() {
        let args = OAuthArgs {
            static_oauth_client_info: Some(
                crate::args::static_client_info(r#"{"client_id":"my-app"}"#).unwrap(),
            ),
            allow_http: true,
            ..Default::default()
        };
        let c = args
            .resolve("http://mcp.internal.example/mcp")
            .unwrap()
            .config;
        assert_eq!(c.client.as_ref().unwrap().client_id, "my-app");
        assert!(c.allow_plain_http);
        assert!(c.check_transport("http://mcp.internal.example/mcp").is_ok());
        let plain = OAuthArgs::default()
            .resolve("http://mcp.internal.example/mcp")
            .unwrap()
            .config;
        assert!(
            plain
                .check_transport("http://mcp.internal.example/mcp")
                .is_err()
        );

        let dir = tempfile_dir("allow-http");
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            "[servers.\"http://mcp.internal.example/mcp\"]\nallow_http = true\n",
        )
        .unwrap();
        let from_file = OAuthArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(
            from_file
                .resolve("http://mcp.internal.example/mcp")
                .unwrap()
                .config
                .allow_plain_http
        );
        let _ = std::fs::remove_dir_all(dir);

        let e = crate::args::static_client_info(r#"{"client_id":"a","client_secret":"s3cr3t"}"#)
            .unwrap_err();
        assert!(e.contains("--client-id a --client-secret-env VAR"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(
            crate::args::static_client_info("{}")
                .unwrap_err()
                .contains("no client_id")
        );
        assert_eq!(crate::args::callback_port("9696"), Ok(9696));
        assert!(crate::args::callback_port("0").is_err());
    }

    #[test]
    fn tilde_is_the_home_directory() {
        let home = dirs::home_dir().unwrap();
        assert_eq!(
            expand_home(std::path::Path::new("~/.secrets/x")),
            home.join(".secrets/x")
        );
        assert_eq!(
            expand_home(std::path::Path::new("/abs/x")),
            PathBuf::from("/abs/x")
        );
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let args = OAuthArgs {
            config: Some("/nonexistent/mcp-oauth.toml".into()),
            ..Default::default()
        };
        assert!(args.resolve("https://h.example/mcp").is_err());
    }

    #[test]
    fn the_auth_method_is_parsed_once_and_an_unknown_one_named() {
        let file = tempfile_dir("auth-method").join("auth-method.toml");
        let args = OAuthArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let write = |method: &str| {
            let text = format!(
                "[servers.\"https://h.example/mcp\"]\nclient_id = \"svc\"\n\
                 token_endpoint_auth_method = \"{method}\"\n"
            );
            std::fs::write(&file, text).unwrap();
        };
        write("client_secret_post");
        let c = args.resolve("https://h.example/mcp").unwrap().config;
        assert_eq!(
            c.client.unwrap().token_endpoint_auth_method,
            Some(mcp_oauth::client_auth::ClientAuthMethod::ClientSecretPost)
        );
        write("tls_client_auth");
        let e = args
            .resolve("https://h.example/mcp")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("token_endpoint_auth_method tls_client_auth is not supported"),
            "{e}"
        );
    }

    /// A directory of this test's own: the tests run in parallel, and each removes its
    /// directory at the end (`line!()` here was one line for every caller).
    fn tempfile_dir(test: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcp-oauth-settings-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
