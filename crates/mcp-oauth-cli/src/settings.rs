//! The settings of one server: the configuration file ([`crate::config_file`]) with the
//! command-line flags on top, turned into an [`OAuthConfig`].
//!
//! Every setting is declared once, in [`declared`]: its flag, its key in the file and
//! where it goes in the engine's configuration. Every setting that weakens a security
//! check says so in `--help` and is logged (a warning on stderr) whenever it is used.

mod declared;
mod engine;
mod macros;

pub use declared::{OAuthArgs, ServerSettings};

use crate::config_file;
use mcp_oauth::OAuthConfig;
use std::path::PathBuf;

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
        let config =
            engine::build_config(server_url, self.profile.clone(), &settings, self.browser)?;
        let static_authorization = engine::static_authorization(&settings)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use engine::expand_home;
    use mcp_oauth::config::{AssertionSource, GrantKind, Interaction, ResourceSetting};

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
