//! The configuration file: per-server settings in TOML, at `$MCP_OAUTH_CONFIG`, else
//! `<XDG config dir>/mcp-oauth/config.toml` (`~/.config/mcp-oauth/config.toml` on Linux).
//!
//! ```toml
//! [defaults]                       # for every server
//! redirect_host = "127.0.0.1"
//!
//! [servers."https://mcp.example.com/mcp"]
//! client_id = "my-app"
//! client_secret_env = "EXAMPLE_SECRET"
//! scopes = ["files:read", "offline_access"]
//! authorize_params = { prompt = "consent" }
//! headers = { "X-Tenant" = "acme", "X-Api-Key" = "${EXAMPLE_API_KEY}" }
//!
//! [servers."https://mcp.example.com/mcp".profiles.work]
//! client_id = "work-app"
//! ```
//!
//! Settings apply in this order, later ones winning: `[defaults]`, the server's table, the
//! selected profile's table, command-line flags. Unknown keys are errors (a typo must not
//! silently drop a setting). Secrets never appear in the file: only the names of the
//! environment variables or files that hold them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "MCP_OAUTH_CONFIG";

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub defaults: ServerSettings,
    /// Keyed by MCP server URL.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerSettings>,
}

/// Scopes as a space-separated string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Scopes {
    One(String),
    List(Vec<String>),
}

impl Scopes {
    pub fn joined(&self) -> String {
        match self {
            Scopes::One(s) => s.clone(),
            Scopes::List(v) => v.join(" "),
        }
    }
}

/// How the user takes part in a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionName {
    Browser,
    Paste,
    Device,
}

/// Which OAuth grant obtains tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GrantName {
    /// From the settings and the authorization server (the default).
    Auto,
    /// A user in a browser (PKCE).
    AuthorizationCode,
    /// The client on its own behalf: a client secret or a private key, no user.
    ClientCredentials,
    /// Workload identity federation: a platform-issued JWT (assertion_file / _env).
    JwtBearer,
    /// Enterprise-managed authorization: an ID token exchanged at the IdP (idp_*).
    Enterprise,
}

/// Whether to bind tokens to a key (DPoP, RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DpopName {
    /// When the authorization server and the MCP server both support it.
    Auto,
    Always,
    /// Plain Bearer tokens (for tokens handed to other programs with `mcp-oauth token`).
    Never,
}

/// The settings of one server (or of `[defaults]`, or of a profile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// A pre-registered client.
    pub client_id: Option<String>,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret (trimmed).
    pub client_secret_file: Option<PathBuf>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt` (default:
    /// from the credentials and the metadata).
    pub token_endpoint_auth_method: Option<String>,
    /// The issuer the pre-registered client belongs to: its secret or key goes to that
    /// authorization server only (without it, the first one it is used with).
    pub client_issuer: Option<String>,
    /// A Client ID Metadata Document URL.
    pub client_metadata_url: Option<String>,
    pub scopes: Option<Scopes>,
    /// The RFC 8707 resource to send instead of the PRM's, or "omit" to send none
    /// (WEAKENS SECURITY; Microsoft Entra).
    pub resource: Option<String>,
    /// Extra authorization request parameters (Google: access_type, prompt).
    pub authorize_params: Option<BTreeMap<String, String>>,
    /// Extra HTTP headers on every MCP request (`proxy`, `call`): name → value, with
    /// `${VAR}` read from the environment (never the secret itself in this file).
    pub headers: Option<BTreeMap<String, String>>,
    /// Authorization server metadata URL, when discovery cannot find it.
    pub auth_server_metadata_url: Option<String>,
    /// Which of several authorization servers (by issuer).
    pub authorization_server: Option<String>,
    /// Accept metadata without code_challenge_methods_supported (WEAKENS SECURITY; AWS
    /// Cognito).
    pub allow_missing_pkce_metadata: Option<bool>,
    /// Let a public MCP server point discovery at private-network addresses (WEAKENS
    /// SECURITY: SSRF protection; for authorization servers on a corporate network).
    pub allow_private_networks: Option<bool>,
    /// Behind an HTTP proxy, let it resolve discovery names that do not resolve here
    /// (WEAKENS SECURITY: SSRF protection; for authorization servers only the proxy's
    /// network knows).
    pub trust_proxy_dns: Option<bool>,
    /// The whole loopback redirect URI, e.g. "http://localhost:3118/callback".
    pub redirect_uri: Option<String>,
    pub redirect_host: Option<String>,
    pub redirect_port: Option<u16>,
    pub redirect_path: Option<String>,
    pub interaction: Option<InteractionName>,
    /// Seconds to wait for the browser / the paste / the device approval.
    pub auth_timeout: Option<u64>,
    /// Ask for offline_access when the AS lists it (default true).
    pub request_offline_access: Option<bool>,
    /// DPoP-bound tokens: auto (default), always, never.
    pub dpop: Option<DpopName>,
    /// The grant: auto (default), authorization_code, client_credentials, jwt_bearer,
    /// enterprise.
    pub grant: Option<GrantName>,
    /// PEM private key (PKCS#8) for private_key_jwt client authentication.
    pub private_key_file: Option<PathBuf>,
    /// Its algorithm (default ES256).
    pub private_key_alg: Option<String>,
    /// Workload identity JWT (jwt-bearer grant), read at each use.
    pub assertion_file: Option<PathBuf>,
    pub assertion_env: Option<String>,
    /// Enterprise-managed authorization: the IdP's token endpoint and our client there.
    pub idp_token_endpoint: Option<String>,
    pub idp_client_id: Option<String>,
    pub idp_client_secret_env: Option<String>,
    /// The user's ID token at the IdP, read at each use.
    pub id_token_file: Option<PathBuf>,
    pub id_token_env: Option<String>,
    /// A static Authorization header value from this environment variable; disables
    /// OAuth for the server.
    pub authorization_env: Option<String>,
    /// A static Authorization header value from this file; disables OAuth for the server.
    pub authorization_file: Option<PathBuf>,
    /// Named accounts on this server (only in a server's table).
    pub profiles: Option<BTreeMap<String, ServerSettings>>,
}

impl ServerSettings {
    /// `self` with every setting of `over` that is set replacing it.
    pub fn overlay(&self, over: &ServerSettings) -> ServerSettings {
        macro_rules! pick {
            ($($f:ident),*) => {
                ServerSettings { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* profiles: None }
            };
        }
        let mut out = pick!(
            client_id,
            client_secret_env,
            client_secret_file,
            token_endpoint_auth_method,
            client_issuer,
            client_metadata_url,
            scopes,
            resource,
            auth_server_metadata_url,
            authorization_server,
            allow_missing_pkce_metadata,
            allow_private_networks,
            trust_proxy_dns,
            redirect_uri,
            redirect_host,
            redirect_port,
            redirect_path,
            interaction,
            auth_timeout,
            request_offline_access,
            dpop,
            grant,
            private_key_file,
            private_key_alg,
            assertion_file,
            assertion_env,
            idp_token_endpoint,
            idp_client_id,
            idp_client_secret_env,
            id_token_file,
            id_token_env,
            authorization_env,
            authorization_file,
            authorize_params,
            headers
        );
        // Parameters merge key by key.
        if let (Some(a), Some(b)) = (&self.authorize_params, &over.authorize_params) {
            let mut m = a.clone();
            m.extend(b.clone());
            out.authorize_params = Some(m);
        }
        // Headers too; names are case-insensitive, so a later layer's "x-api-key" replaces
        // an earlier "X-Api-Key".
        if let (Some(a), Some(b)) = (&self.headers, &over.headers) {
            let mut m: BTreeMap<String, String> = BTreeMap::new();
            for (k, v) in a.iter().chain(b) {
                m.retain(|old, _| !old.eq_ignore_ascii_case(k));
                m.insert(k.clone(), v.clone());
            }
            out.headers = Some(m);
        }
        // A secret source replaces the other kind too.
        if over.client_secret_env.is_some() {
            out.client_secret_file = over.client_secret_file.clone();
        } else if over.client_secret_file.is_some() {
            out.client_secret_env = None;
        }
        if over.authorization_env.is_some() {
            out.authorization_file = over.authorization_file.clone();
        } else if over.authorization_file.is_some() {
            out.authorization_env = None;
        }
        out
    }
}

/// Where the configuration file is: `$MCP_OAUTH_CONFIG`, else the XDG config directory.
pub fn default_path() -> Option<PathBuf> {
    match std::env::var_os(CONFIG_ENV) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => dirs::config_dir().map(|d| d.join("mcp-oauth").join("config.toml")),
    }
}

/// Loads the file at `path`. A missing file is an empty configuration unless it was
/// named explicitly (`explicit`).
pub fn load(path: &Path, explicit: bool) -> anyhow::Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(ConfigFile::default());
        }
        Err(e) => anyhow::bail!("configuration file {}: {e}", path.display()),
    };
    parse(&text).map_err(|e| anyhow::anyhow!("configuration file {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let file: ConfigFile =
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    if file.defaults.profiles.is_some() {
        return Err("[defaults] cannot have profiles; put them under a server".into());
    }
    for (url, s) in &file.servers {
        for (name, p) in s.profiles.iter().flatten() {
            if p.profiles.is_some() {
                return Err(format!(
                    "profile {name:?} of {url:?} cannot have profiles of its own"
                ));
            }
        }
    }
    Ok(file)
}

/// A URL in a comparable form: scheme and host lowercased (by the URL parser), default
/// port dropped, trailing slash of the path dropped.
fn normalized(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let mut s = u.to_string();
            if u.query().is_none() && u.fragment().is_none() {
                while s.ends_with('/') {
                    s.pop();
                }
            }
            s
        }
        Err(_) => url.to_string(),
    }
}

impl ConfigFile {
    /// The table of `server_url`: an exact key, else one that names the same URL.
    pub fn server(&self, server_url: &str) -> Option<(&str, &ServerSettings)> {
        if let Some((k, v)) = self.servers.get_key_value(server_url) {
            return Some((k.as_str(), v));
        }
        let want = normalized(server_url);
        self.servers
            .iter()
            .find(|(k, _)| normalized(k) == want)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The effective settings of `server_url` with `profile`: defaults, then the server's
    /// table, then the profile's. An unknown profile is an error only when the server's
    /// table defines profiles (otherwise a profile just names a separate login).
    pub fn settings_for(
        &self,
        server_url: &str,
        profile: Option<&str>,
    ) -> anyhow::Result<ServerSettings> {
        let mut s = self.defaults.clone();
        if let Some((_, table)) = self.server(server_url) {
            s = s.overlay(table);
            if let Some(name) = profile
                && let Some(ps) = table.profiles.as_ref()
            {
                match ps.get(name) {
                    Some(p) => s = s.overlay(p),
                    None => anyhow::bail!(
                        "profile {name:?} is not defined for {server_url} in the configuration file \
                         (defined: {})",
                        ps.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                }
            }
        }
        s.profiles = None;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[defaults]
redirect_host = "127.0.0.1"
auth_timeout = 120

[servers."https://mcp.example.com/mcp"]
client_id = "app"
client_secret_env = "APP_SECRET"
scopes = ["a", "b"]
authorize_params = { access_type = "offline" }

[servers."https://mcp.example.com/mcp".profiles.work]
client_id = "work-app"
authorize_params = { prompt = "consent" }

[servers."https://entra.example.com/mcp"]
resource = "omit"
scopes = "api://x/.default offline_access"
"#;

    #[test]
    fn layers_apply_in_order() {
        let f = parse(SAMPLE).unwrap();
        let s = f.settings_for("https://mcp.example.com/mcp", None).unwrap();
        assert_eq!(s.client_id.as_deref(), Some("app"));
        assert_eq!(s.auth_timeout, Some(120));
        assert_eq!(s.scopes.unwrap().joined(), "a b");
        let w = f
            .settings_for("https://MCP.example.com:443/mcp/", Some("work"))
            .unwrap();
        assert_eq!(w.client_id.as_deref(), Some("work-app"));
        assert_eq!(w.client_secret_env.as_deref(), Some("APP_SECRET"));
        let p = w.authorize_params.unwrap();
        assert_eq!(p["access_type"], "offline");
        assert_eq!(p["prompt"], "consent");
        let e = f
            .settings_for("https://mcp.example.com/mcp", Some("home"))
            .unwrap_err();
        assert!(e.to_string().contains("work"), "{e}");
        let other = f
            .settings_for("https://other.example.com/mcp", Some("x"))
            .unwrap();
        assert_eq!(other.client_id, None);
        assert_eq!(other.redirect_host.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn headers_merge_by_case_insensitive_name_across_layers() {
        let f = parse(
            r#"
[defaults]
headers = { "X-Tenant" = "everyone", "X-Trace" = "1" }

[servers."https://mcp.example.com/mcp"]
headers = { "x-tenant" = "acme", "X-Api-Key" = "${ACME_KEY}" }

[servers."https://mcp.example.com/mcp".profiles.work]
headers = { "X-API-KEY" = "${WORK_KEY}" }
"#,
        )
        .unwrap();
        let s = f.settings_for("https://mcp.example.com/mcp", None).unwrap();
        let h = s.headers.unwrap();
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["x-tenant"], "acme");
        assert_eq!(h["X-Trace"], "1");
        assert_eq!(h["X-Api-Key"], "${ACME_KEY}");
        let w = f
            .settings_for("https://mcp.example.com/mcp", Some("work"))
            .unwrap()
            .headers
            .unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w["X-API-KEY"], "${WORK_KEY}");
        assert!(!w.contains_key("X-Api-Key"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("[servers.\"https://h/mcp\"]\nclient_secret = \"s3cr3t\"\n").unwrap_err();
        assert!(e.contains("client_secret"), "{e}");
        assert!(parse("[defaults.profiles.x]\n").is_err());
    }

    #[test]
    fn secret_sources_replace_each_other() {
        let base = ServerSettings {
            client_secret_file: Some("/f".into()),
            ..Default::default()
        };
        let over = ServerSettings {
            client_secret_env: Some("V".into()),
            ..Default::default()
        };
        let m = base.overlay(&over);
        assert_eq!(m.client_secret_env.as_deref(), Some("V"));
        assert_eq!(m.client_secret_file, None);
    }
}
