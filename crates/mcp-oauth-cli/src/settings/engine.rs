//! From a server's resolved settings to the engine's [`OAuthConfig`]: the settings that
//! map one by one are applied by the table ([`super::declared`]); the ones read together
//! (a client's id with its secret or key, the enterprise IdP's four, the way the user
//! takes part) are read here, by the functions the table's rows name with `read_by`.
//!
//! Secrets are read once here too, so that a variable that is not set or a file that
//! cannot be read is reported before any network traffic; the engine reads them again at
//! each use.

use super::ServerSettings;
use crate::config_file::InteractionName;
use mcp_oauth::OAuthConfig;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::paste;
use mcp_oauth::config::{
    AssertionSource, EnterpriseSettings, Interaction, PreRegisteredClient, ResourceSetting,
    SecretSource,
};
use mcp_oauth::secret::PrivateKeyPem;
use std::path::{Path, PathBuf};

/// The engine's configuration for `server_url` with settings `s`. `browser_forced`: the
/// user asked for a browser (--browser), so paste mode is not chosen for a headless
/// session.
pub(super) fn build_config(
    server_url: &str,
    profile: Option<String>,
    s: &ServerSettings,
    browser_forced: bool,
) -> anyhow::Result<OAuthConfig> {
    let mut c = OAuthConfig::new(server_url);
    c.profile = profile;
    // The client's errors first, then the grants', then the table's: the order in which
    // the checks have always been reported.
    apply_client(&mut c, s)?;
    apply_workload_assertion(&mut c, s);
    apply_enterprise(&mut c, s)?;
    super::declared::apply_to_config(&mut c, s)?;
    // Last: it may tell the user that paste mode was chosen, which only makes sense once
    // every setting is known to be usable.
    apply_interaction(&mut c, s, browser_forced);
    Ok(c)
}

/// A pre-registered client: its id, its secret or private key, its issuer and its
/// authentication method. A secret or a key without an id is an error.
pub(super) fn apply_client(c: &mut OAuthConfig, s: &ServerSettings) -> anyhow::Result<()> {
    let Some(id) = &s.client_id else {
        if s.client_secret_env.is_some() || s.client_secret_file.is_some() {
            anyhow::bail!(
                "a client secret is configured without a client id (--client-id / client_id)"
            );
        } else if s.private_key_file.is_some() {
            anyhow::bail!(
                "a private key is configured without a client id (--client-id / client_id)"
            );
        }
        return Ok(());
    };
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
    // Parsed here, once: an unknown method is an error that names it, before any network
    // traffic.
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
    Ok(())
}

/// The workload identity JWT of the jwt-bearer grant: the file, else the variable.
pub(super) fn apply_workload_assertion(c: &mut OAuthConfig, s: &ServerSettings) {
    c.workload_assertion = assertion_source(&s.assertion_file, &s.assertion_env);
}

/// Enterprise-managed authorization: all of the IdP's token endpoint, our client id there
/// and the user's ID token, or none.
pub(super) fn apply_enterprise(c: &mut OAuthConfig, s: &ServerSettings) -> anyhow::Result<()> {
    let id_token = assertion_source(&s.id_token_file, &s.id_token_env);
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

/// A JWT read at each use from a file (`~` expanded), else from a variable.
fn assertion_source(file: &Option<PathBuf>, env: &Option<String>) -> Option<AssertionSource> {
    match (file, env) {
        (Some(f), _) => Some(AssertionSource::File(expand_home(f))),
        (None, Some(v)) => Some(AssertionSource::Env(v.clone())),
        (None, None) => None,
    }
}

/// How the user takes part: as configured, else paste mode where no browser can open
/// (said on stderr, with the way out), else the browser.
pub(super) fn apply_interaction(c: &mut OAuthConfig, s: &ServerSettings, browser_forced: bool) {
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
}

/// `resource`: "omit" sends none (logged: it weakens audience binding), anything else is
/// sent instead of the server's.
pub(super) fn omit_or_override_resource(c: &mut OAuthConfig, resource: &str) {
    if resource == "omit" {
        weakened(
            c,
            "resource = \"omit\" (--no-resource): no resource indicator is sent, so tokens are \
             not bound to this server by the request (weakens a security check)",
        );
        c.resource = ResourceSetting::Omit;
    } else {
        c.resource = ResourceSetting::Override(resource.to_string());
    }
}

/// A whole loopback redirect URI: its host, port and path (each may still be set on its
/// own afterwards).
pub(super) fn redirect_uri(c: &mut OAuthConfig, uri: &str) -> anyhow::Result<()> {
    let u = url::Url::parse(uri).map_err(|e| anyhow::anyhow!("redirect URI {uri:?}: {e}"))?;
    if u.scheme() != "http" {
        anyhow::bail!("redirect URI {uri:?}: a loopback redirect URI uses http (RFC 8252 §7.3)");
    }
    c.redirect.host = u
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    c.redirect.port = u.port();
    c.redirect.path = u.path().to_string();
    Ok(())
}

/// Logs a setting that weakens a security check, for this server: each use is on record.
pub(super) fn weakened(c: &OAuthConfig, what: &str) {
    tracing::warn!(server = c.server_url.as_str(), "{what}");
}

/// A static `Authorization` header value, from the variable else the file: a bare token
/// becomes a Bearer credential, "Scheme value" is used as is.
pub(super) fn static_authorization(s: &ServerSettings) -> anyhow::Result<Option<String>> {
    let raw = match (&s.authorization_env, &s.authorization_file) {
        (Some(var), _) => read_secret_env("authorization_env", var)?,
        (None, Some(f)) => read_secret_file("authorization_file", f)?,
        (None, None) => return Ok(None),
    };
    Ok(Some(if raw.contains(' ') {
        raw
    } else {
        format!("Bearer {raw}")
    }))
}

/// `~/…` is the home directory (the configuration file is not read by a shell).
pub(super) fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

fn read_secret_file(what: &str, path: &Path) -> anyhow::Result<String> {
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
    (file_name, file): (&str, Option<&Path>),
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
