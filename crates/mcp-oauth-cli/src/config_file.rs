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
//!
//! [servers.my-server]              # a name: `mcp-oauth login my-server`
//! url = "https://mcp.example.org/mcp"
//! scopes = "read"
//! ```
//!
//! A server's table is keyed by its URL, or by a name of the user's choosing with the URL
//! as `url` (as MCP hosts name their servers: `claude mcp add … my-server URL`): every
//! command then takes the name wherever it takes a URL. A name has no `/` or `:`, so it is
//! never taken for a URL; one server has one table.
//!
//! Settings apply in this order, later ones winning: `[defaults]`, the server's table, the
//! selected profile's table, command-line flags. Unknown keys are errors (a typo must not
//! silently drop a setting). Secrets never appear in the file: only the names of the
//! environment variables or files that hold them.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A server's table: its keys, and how layers combine, are declared with the flags, in
/// [`crate::settings`]'s table.
pub use crate::settings::ServerSettings;
use std::path::{Path, PathBuf};

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "MCP_OAUTH_CONFIG";

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub defaults: ServerSettings,
    /// Keyed by MCP server URL, or by a name (with the URL as `url`).
    #[serde(default)]
    pub servers: BTreeMap<String, ServerSettings>,
    /// Where credentials are kept (every command); `--store` and `MCP_OAUTH_STORE` win.
    #[serde(default)]
    pub store: StoreSettings,
}

/// `[store]`: `url = "postgres://…"` for the PostgreSQL vault (else the file store), and
/// `user`, whose credentials these are in a vault shared by several users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub url: Option<String>,
    pub user: Option<String>,
}

/// Is a table key (or a command-line argument) a name rather than a URL? Names are made
/// of letters, digits, `-`, `_` and `.`: no `/` or `:`, which every server URL has.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    if file.defaults.url.is_some() {
        return Err(
            "[defaults] cannot have a url; name a server with [servers.<name>] url = \"…\"".into(),
        );
    }
    for (key, s) in &file.servers {
        check_table(key, s)?;
        for (name, p) in s.profiles.iter().flatten() {
            if p.profiles.is_some() {
                return Err(format!(
                    "profile {name:?} of {key:?} cannot have profiles of its own"
                ));
            }
            if p.url.is_some() {
                return Err(format!(
                    "profile {name:?} of {key:?} cannot have a url: a profile is another account on the same server"
                ));
            }
        }
    }
    // One server, one table: settings split over two would apply in no clear order.
    let tables: Vec<(&str, &str)> = file
        .servers
        .iter()
        .map(|(k, s)| (k.as_str(), table_url(k, s)))
        .collect();
    for (i, (a, url_a)) in tables.iter().enumerate() {
        if let Some((b, _)) = tables[i + 1..]
            .iter()
            .find(|(_, url_b)| normalized(url_a) == normalized(url_b))
        {
            return Err(format!(
                "servers.{} and servers.{} are the same server ({url_a}); keep its settings in one table",
                toml_key(a),
                toml_key(b)
            ));
        }
    }
    Ok(file)
}

/// A server table: keyed by a URL (and without `url`), or by a name with a `url`.
fn check_table(key: &str, s: &ServerSettings) -> Result<(), String> {
    match (&s.url, is_name(key)) {
        (None, true) => Err(format!(
            "[servers.{key}] names a server but has no url: add url = \"https://…\" (or key the table by the URL, [servers.\"https://…\"])"
        )),
        (Some(url), true) => crate::args::server_url(url)
            .map(|_| ())
            .map_err(|e| format!("the url of [servers.{key}]: {e}")),
        (Some(_), false) => Err(format!(
            "[servers.{}] is keyed by its URL already, so it cannot have a url; a name (letters, digits, - _ .) can",
            toml_key(key)
        )),
        (None, false) => Ok(()),
    }
}

/// The URL of the server a table is for.
fn table_url<'a>(key: &'a str, s: &'a ServerSettings) -> &'a str {
    s.url.as_deref().unwrap_or(key)
}

/// A table key as written in TOML: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    if is_name(key) && !key.contains('.') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
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
    /// The table of `server_url` (keyed by it, or by a name with it as `url`): an exact
    /// match, else one that names the same URL.
    pub fn server(&self, server_url: &str) -> Option<(&str, &ServerSettings)> {
        if let Some((k, v)) = self.servers.get_key_value(server_url)
            && v.url.is_none()
        {
            return Some((k.as_str(), v));
        }
        let want = normalized(server_url);
        self.servers
            .iter()
            .find(|(k, v)| table_url(k, v) == server_url || normalized(table_url(k, v)) == want)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The URL of the server named `name`.
    pub fn url_of(&self, name: &str) -> Option<&str> {
        self.servers.get(name).and_then(|s| s.url.as_deref())
    }

    /// The name of the server at `server_url`, when its table is keyed by one.
    pub fn name_of(&self, server_url: &str) -> Option<&str> {
        self.server(server_url)
            .filter(|(_, s)| s.url.is_some())
            .map(|(k, _)| k)
    }

    /// Every server name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.servers
            .iter()
            .filter(|(_, s)| s.url.is_some())
            .map(|(k, _)| k.as_str())
            .collect()
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
    fn servers_by_name() {
        let f = parse(
            r#"
[servers."https://mcp.example.com/mcp"]
client_id = "by-url"

[servers.my-server]
url = "https://MCP.example.org/mcp"
scopes = "read"

[servers.my-server.profiles.work]
client_id = "work"
"#,
        )
        .unwrap();
        assert_eq!(f.url_of("my-server"), Some("https://MCP.example.org/mcp"));
        assert_eq!(f.url_of("nope"), None);
        assert_eq!(f.names(), ["my-server"]);
        assert_eq!(f.name_of("https://mcp.example.org/mcp"), Some("my-server"));
        assert_eq!(f.name_of("https://mcp.example.com/mcp"), None);
        let s = f
            .settings_for("https://mcp.example.org/mcp", Some("work"))
            .unwrap();
        assert_eq!(s.scopes.unwrap().joined(), "read");
        assert_eq!(s.client_id.as_deref(), Some("work"));
        assert_eq!(s.url, None, "not a setting of the merged layers");
        assert_eq!(
            f.settings_for("https://mcp.example.com/mcp", None)
                .unwrap()
                .client_id
                .as_deref(),
            Some("by-url")
        );

        for (bad, says) in [
            ("[servers.x]\nscopes = \"a\"\n", "has no url"),
            (
                "[servers.x]\nurl = \"notaurl\"\n",
                "the url of [servers.x]: notaurl is not a URL",
            ),
            (
                "[servers.\"https://h/mcp\"]\nurl = \"https://h/mcp\"\n",
                "keyed by its URL already",
            ),
            (
                "[defaults]\nurl = \"https://h/mcp\"\n",
                "[defaults] cannot have a url",
            ),
            (
                "[servers.x]\nurl = \"https://h/mcp\"\n[servers.x.profiles.p]\nurl = \"https://i/mcp\"\n",
                "cannot have a url",
            ),
            (
                "[servers.x]\nurl = \"https://h/mcp\"\n[servers.\"https://H:443/mcp/\"]\n",
                "are the same server",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(is_name("my-server") && is_name("prod.v2") && !is_name("https://h/mcp"));
        assert!(!is_name("example.com/mcp") && !is_name("") && !is_name("a b"));
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
