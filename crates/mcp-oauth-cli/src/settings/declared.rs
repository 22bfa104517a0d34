//! Every per-server setting, declared once: its flag, its key in the configuration file,
//! how layers of it combine and where it goes in the engine's
//! [`OAuthConfig`](mcp_oauth::OAuthConfig).
//!
//! **To add a setting**, add one row below, where its flag belongs in `--help` (rows are
//! in `--help` order), and, if the engine has nowhere to put it yet, a field of
//! `OAuthConfig` with its default in `OAuthConfig::new` (crates/mcp-oauth/src/config.rs);
//! users find the file's keys listed in docs/cli.md:
//! ```text
//! /// Help text of --my-setting (also the documentation of the key `my_setting`).
//! #[arg(long, value_name = "URL", help_heading = "Authorization")]
//! flag my_setting: Option<String> => key my_setting: String {
//!     apply: |c, v| c.my_setting = Some(v.clone()),
//! }
//! ```
//! That one row gives `--my-setting URL`, `my_setting = "…"` in `[defaults]`, a server's
//! table or a profile (other keys are still refused), the flag winning over the file, and
//! the value in `OAuthConfig::my_setting`. A row is one of:
//! - `flag NAME: TYPE;`: a flag that is no key of its own (it feeds a key's `from`);
//! - `flag NAME: TYPE => key NAME: TYPE { clauses }`: a flag and the key it sets (the
//!   flag is `Option<T>`, or `bool` with `from: switch`, for a key of type `T`);
//! - `key NAME: TYPE { clauses }`: a key with no flag.
//!
//! The clauses, each ending with a comma:
//! - where the value goes, exactly one of: `apply: |c, v| EXPR` (`c`: `&mut OAuthConfig`,
//!   `v`: `&T`, run only when the setting is set), `try_apply: |c, v| EXPR` (`EXPR` is an
//!   `anyhow::Result<()>`, for values checked there), or `read_by: FUNCTION` (settings read
//!   together, e.g. a client's id and its secret, by that function of [`super::engine`]);
//! - the flags' value, when it is not the flag's own: `from: switch` (a `bool` flag: given
//!   is `true`, absent leaves the file's value), `from: |a| EXPR` (`a`: `&OAuthArgs`, `EXPR`:
//!   `Option<T>`), `try_from: |a| EXPR` (`EXPR`: `anyhow::Result<Option<T>>`);
//! - how layers combine, when not "the upper one wins": `merge: |below, above| EXPR` (both
//!   set), `replaces: OTHER_KEY` (setting this key in a layer unsets the other there).
//!
//! A row's doc comment is the flag's `--help` text; clap attributes (help heading, value
//! name, `env`, `conflicts_with`, `hide`, `value_parser = Check(...)`) go in its `#[arg]`.
//! The code all this writes is in [`super::macros`].

use super::engine::{
    apply_client, apply_enterprise, apply_interaction, apply_workload_assertion,
    omit_or_override_resource, redirect_uri, static_authorization, weakened,
};
use crate::args::{Check, profile, static_client_info, static_client_metadata};
use crate::config_file::{DpopName, GrantName, InteractionName, Scopes};
use mcp_oauth::config::{DpopPolicy, GrantKind, PkceMetadataPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;

super::macros::declare_settings! {
    /// Configuration file (must exist) [default: $MCP_OAUTH_CONFIG, else
    /// $XDG_CONFIG_HOME/mcp-oauth/config.toml, each optional].
    #[arg(long, value_name = "FILE", help_heading = "Settings")]
    flag config: Option<PathBuf>;

    /// Account name, for several logins on one server (a `profiles.<NAME>` table in the
    /// configuration file, and a separate stored credential).
    #[arg(
        long,
        value_name = "NAME",
        env = "MCP_OAUTH_PROFILE",
        help_heading = "Settings",
        value_parser = Check(profile)
    )]
    flag profile: Option<String>;

    // ---- Client ------------------------------------------------------------------------

    /// Use this pre-registered client id instead of registering one.
    #[arg(long, value_name = "ID", help_heading = "Client")]
    flag client_id: Option<String> => key client_id: String {
        from: |a| a.client_id.clone().or_else(|| a.static_oauth_client_info.clone()),
        read_by: apply_client,
    }

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
    flag static_oauth_client_info: Option<String>;

    /// mcp-remote's client metadata: refused, with the flag to use instead.
    #[arg(long, value_name = "JSON", hide = true, value_parser = Check(static_client_metadata))]
    flag static_oauth_client_metadata: Option<String>;

    /// Read the client secret from this environment variable (secrets never go in argv).
    #[arg(long, value_name = "VAR", help_heading = "Client")]
    flag client_secret_env: Option<String> => key client_secret_env: String {
        read_by: apply_client,
        replaces: client_secret_file,
    }

    /// Read the client secret from this file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "client_secret_env",
        help_heading = "Client"
    )]
    flag client_secret_file: Option<PathBuf> => key client_secret_file: PathBuf {
        read_by: apply_client,
        replaces: client_secret_env,
    }

    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt` (default:
    /// from the credentials and the metadata).
    key token_endpoint_auth_method: String {
        read_by: apply_client,
    }

    /// The issuer of the authorization server the --client-id client belongs to. Its
    /// secret or private key is sent to that authorization server only. Without it, the
    /// first authorization server the client is used with for this server is remembered
    /// and any other is refused (set this to move the client on purpose).
    #[arg(long, value_name = "URL", help_heading = "Client")]
    flag client_issuer: Option<String> => key client_issuer: String {
        read_by: apply_client,
    }

    /// A Client ID Metadata Document URL to use as client id where the server supports it.
    #[arg(long, value_name = "URL", help_heading = "Client")]
    flag client_metadata_url: Option<String> => key client_metadata_url: String {
        apply: |c, v| c.client_metadata_url = Some(v.clone()),
    }

    // ---- Authorization -----------------------------------------------------------------

    /// Scopes to request (space separated), instead of the server's.
    #[arg(long, value_name = "SCOPES", help_heading = "Authorization")]
    flag scope: Option<String> => key scopes: Scopes {
        from: |a| a.scope.clone().map(Scopes::One),
        apply: |c, v| c.scopes = Some(v.joined()).filter(|x| !x.trim().is_empty()),
    }

    /// Extra authorization request parameter, repeatable (Google: access_type=offline and
    /// prompt=consent for a refresh token).
    #[arg(
        long = "authorize-param",
        value_name = "KEY=VALUE",
        help_heading = "Authorization"
    )]
    flag authorize_params: Vec<String> => key authorize_params: BTreeMap<String, String> {
        try_from: |a| authorize_params(&a.authorize_params),
        // Parameters merge key by key.
        merge: |below, above| {
            let mut both = below.clone();
            both.extend(above.clone());
            both
        },
        apply: |c, v| c.authorize_params = v.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }

    /// Extra HTTP headers on every MCP request (`proxy`, `call`): name → value, with
    /// `${VAR}` read from the environment (never the secret itself in this file).
    key headers: BTreeMap<String, String> {
        merge: |below, above| merge_headers(below, above),
        read_by: super::OAuthArgs::resolve,
    }

    /// Send this RFC 8707 resource instead of the one the server publishes.
    #[arg(
        long,
        value_name = "URI",
        conflicts_with = "no_resource",
        help_heading = "Authorization"
    )]
    flag resource: Option<String> => key resource: String {
        // In the file, `resource = "omit"` is --no-resource.
        from: |a| if a.no_resource { Some("omit".into()) } else { a.resource.clone() },
        apply: |c, v| omit_or_override_resource(c, v),
    }

    /// WEAKENS SECURITY: send no resource parameter, so tokens are not bound to this server
    /// by the request (Microsoft Entra rejects it with v2 scopes, AADSTS9010010).
    #[arg(
        long,
        alias = "disable-resource-parameter",
        help_heading = "Authorization"
    )]
    flag no_resource: bool;

    /// Authorization server metadata URL, for servers whose discovery is absent or broken.
    #[arg(
        long = "as-metadata-url",
        value_name = "URL",
        help_heading = "Authorization"
    )]
    flag as_metadata_url: Option<String> => key auth_server_metadata_url: String {
        from: |a| a.as_metadata_url.clone(),
        apply: |c, v| c.auth_server_metadata_url = Some(v.clone()),
    }

    /// Which authorization server to use (issuer) when the server lists several.
    #[arg(long, value_name = "ISSUER", help_heading = "Authorization")]
    flag authorization_server: Option<String> => key authorization_server: String {
        apply: |c, v| c.authorization_server = Some(v.clone()),
    }

    /// WEAKENS SECURITY: accept an authorization server whose metadata omits
    /// code_challenge_methods_supported (AWS Cognito); PKCE support is assumed, not verified.
    #[arg(long, help_heading = "Authorization")]
    flag allow_missing_pkce_metadata: bool => key allow_missing_pkce_metadata: bool {
        from: switch,
        apply: |c, v| if *v {
            weakened(c, "allow_missing_pkce_metadata (--allow-missing-pkce-metadata): PKCE \
                support is assumed, not verified (weakens a security check)");
            c.pkce_metadata = PkceMetadataPolicy::AllowMissing;
        },
    }

    /// WEAKENS SECURITY: let a public MCP server point discovery (metadata, authorization
    /// server endpoints) at private-network addresses, e.g. an authorization server on the
    /// corporate network. Loopback, link-local and cloud metadata addresses stay refused.
    #[arg(long, help_heading = "Authorization")]
    flag allow_private_networks: bool => key allow_private_networks: bool {
        from: switch,
        apply: |c, v| if *v {
            weakened(c, "allow_private_networks (--allow-private-networks): discovery may \
                reach private-network addresses even though the server is public (weakens \
                the SSRF protection)");
            c.address_policy = mcp_oauth::netpolicy::AddressPolicy::AllowPrivateNetworks;
        },
    }

    /// WEAKENS SECURITY: send tokens to an MCP server reached over plain http on a host
    /// that is not loopback: they cross the network unencrypted (OAuth 2.1 §1.5). Only for
    /// networks where nobody can listen in.
    #[arg(long, help_heading = "Authorization")]
    flag allow_http: bool => key allow_http: bool {
        from: switch,
        // The library warns whenever a token does go over plain http.
        apply: |c, v| c.allow_plain_http = *v,
    }

    /// WEAKENS SECURITY: behind an HTTP proxy, let the proxy resolve discovery URLs whose
    /// names do not resolve here (refused by default: only the proxy could say where they
    /// lead, e.g. an intranet host).
    #[arg(long, help_heading = "Authorization")]
    flag trust_proxy_dns: bool => key trust_proxy_dns: bool {
        from: switch,
        apply: |c, v| if *v {
            weakened(c, "trust_proxy_dns (--trust-proxy-dns): behind an HTTP proxy, discovery \
                may reach names that only the proxy resolves, unchecked (weakens the SSRF \
                protection)");
            c.trust_proxy_dns = true;
        },
    }

    // ---- Interaction (and DPoP, listed under Authorization) ----------------------------

    /// Print the authorization URL and read the redirect URL (or the code) pasted on stdin,
    /// instead of opening a browser (SSH sessions, containers). Chosen automatically when
    /// there is no display or the session is over SSH and stdin is a terminal.
    #[arg(long, conflicts_with_all = ["device", "browser"], help_heading = "Interaction")]
    flag no_browser: bool;

    /// Use the device authorization grant (RFC 8628): enter a code on any device.
    #[arg(long, conflicts_with = "browser", help_heading = "Interaction")]
    flag device: bool;

    /// How the user takes part in a login: browser, paste or device (the flags --browser,
    /// --no-browser and --device).
    key interaction: InteractionName {
        from: |a| if a.no_browser {
            Some(InteractionName::Paste)
        } else if a.device {
            Some(InteractionName::Device)
        } else if a.browser {
            Some(InteractionName::Browser)
        } else {
            None
        },
        read_by: apply_interaction,
    }

    /// Bind tokens to a key (DPoP, RFC 9449): auto = when the authorization server and the
    /// MCP server both support it [default: auto]. `never` gives plain Bearer tokens, for
    /// `mcp-oauth token`.
    #[arg(long, value_name = "MODE", help_heading = "Authorization")]
    flag dpop: Option<DpopName> => key dpop: DpopName {
        apply: |c, v| c.dpop = match v {
            DpopName::Auto => DpopPolicy::Auto,
            DpopName::Always => DpopPolicy::Always,
            DpopName::Never => DpopPolicy::Never,
        },
    }

    // ---- Without a user ----------------------------------------------------------------

    /// The OAuth grant [default: auto: from these settings and the authorization server].
    #[arg(long, value_name = "GRANT", help_heading = "Without a user")]
    flag grant: Option<GrantName> => key grant: GrantName {
        from: |a| if a.client_credentials { Some(GrantName::ClientCredentials) } else { a.grant },
        apply: |c, v| c.grant = match v {
            GrantName::Auto => GrantKind::Auto,
            GrantName::AuthorizationCode => GrantKind::AuthorizationCode,
            GrantName::ClientCredentials => GrantKind::ClientCredentials,
            GrantName::JwtBearer => GrantKind::JwtBearer,
            GrantName::Enterprise => GrantKind::EnterpriseManaged,
        },
    }

    /// Shorthand for --grant client-credentials: the client acts on its own behalf with
    /// --client-secret-env/--client-secret-file or --private-key.
    #[arg(long, conflicts_with = "grant", help_heading = "Without a user")]
    flag client_credentials: bool;

    /// PEM private key (PKCS#8) for private_key_jwt client authentication (RFC 7523).
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    flag private_key: Option<PathBuf> => key private_key_file: PathBuf {
        from: |a| a.private_key.clone(),
        read_by: apply_client,
    }

    /// Algorithm of --private-key [default: ES256].
    #[arg(long, value_name = "ALG", help_heading = "Without a user")]
    flag private_key_alg: Option<String> => key private_key_alg: String {
        read_by: apply_client,
    }

    /// Workload identity JWT for the jwt-bearer grant, read from this file at each use
    /// (Kubernetes projected tokens, CI OIDC tokens).
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    flag assertion_file: Option<PathBuf> => key assertion_file: PathBuf {
        read_by: apply_workload_assertion,
    }

    /// Like --assertion-file, from an environment variable.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "assertion_file",
        help_heading = "Without a user"
    )]
    flag assertion_env: Option<String> => key assertion_env: String {
        read_by: apply_workload_assertion,
    }

    /// Enterprise-managed authorization: the enterprise IdP's token endpoint.
    #[arg(long, value_name = "URL", help_heading = "Without a user")]
    flag idp_token_endpoint: Option<String> => key idp_token_endpoint: String {
        read_by: apply_enterprise,
    }

    /// Our client id at the enterprise IdP.
    #[arg(long, value_name = "ID", help_heading = "Without a user")]
    flag idp_client_id: Option<String> => key idp_client_id: String {
        read_by: apply_enterprise,
    }

    /// Environment variable holding our client secret at the IdP.
    #[arg(long, value_name = "VAR", help_heading = "Without a user")]
    flag idp_client_secret_env: Option<String> => key idp_client_secret_env: String {
        read_by: apply_enterprise,
    }

    /// The user's ID token from the enterprise IdP, read from this file at each use.
    #[arg(long, value_name = "FILE", help_heading = "Without a user")]
    flag id_token_file: Option<PathBuf> => key id_token_file: PathBuf {
        read_by: apply_enterprise,
    }

    /// Like --id-token-file, from an environment variable.
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "id_token_file",
        help_heading = "Without a user"
    )]
    flag id_token_env: Option<String> => key id_token_env: String {
        read_by: apply_enterprise,
    }

    // ---- Interaction, continued --------------------------------------------------------

    /// Open a browser even where paste mode would be chosen automatically.
    #[arg(long, help_heading = "Interaction")]
    flag browser: bool;

    /// Seconds to wait for the browser, the paste or the device approval [default: 300].
    #[arg(long, value_name = "SECS", help_heading = "Interaction")]
    flag auth_timeout: Option<u64> => key auth_timeout: u64 {
        apply: |c, v| c.callback_timeout = std::time::Duration::from_secs(*v),
    }

    /// Ask for offline_access when the authorization server lists it (default true).
    key request_offline_access: bool {
        apply: |c, v| c.request_offline_access = *v,
    }

    // ---- Redirect URI ------------------------------------------------------------------
    // The URI first: its parts' own settings, applied after it, win.

    /// Full loopback redirect URI, e.g. http://localhost:3118/callback (for a client
    /// registered with it).
    #[arg(long, value_name = "URI", help_heading = "Redirect URI")]
    flag redirect_uri: Option<String> => key redirect_uri: String {
        try_apply: |c, v| redirect_uri(c, v),
    }

    /// Port of the loopback redirect URI [default: a stable port per server].
    #[arg(long, value_name = "PORT", help_heading = "Redirect URI")]
    flag redirect_port: Option<u16> => key redirect_port: u16 {
        apply: |c, v| c.redirect.port = Some(*v),
    }

    /// Host of the loopback redirect URI [default: 127.0.0.1].
    #[arg(
        long,
        alias = "host",
        value_name = "HOST",
        help_heading = "Redirect URI"
    )]
    flag redirect_host: Option<String> => key redirect_host: String {
        apply: |c, v| c.redirect.host = v.clone(),
    }

    /// Path of the loopback redirect URI [default: /callback].
    #[arg(
        long,
        alias = "callback-path",
        value_name = "PATH",
        help_heading = "Redirect URI"
    )]
    flag redirect_path: Option<String> => key redirect_path: String {
        apply: |c, v| c.redirect.path = v.clone(),
    }

    // ---- Static credentials ------------------------------------------------------------

    /// Send a static Authorization header read from this environment variable, and no
    /// OAuth for this server (a bare token gets "Bearer ").
    #[arg(long, value_name = "VAR", help_heading = "Static credentials")]
    flag authorization_env: Option<String> => key authorization_env: String {
        read_by: static_authorization,
        replaces: authorization_file,
    }

    /// Like --authorization-env, from a file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "authorization_env",
        help_heading = "Static credentials"
    )]
    flag authorization_file: Option<PathBuf> => key authorization_file: PathBuf {
        read_by: static_authorization,
        replaces: authorization_env,
    }
}

/// `--authorize-param KEY=VALUE`, repeated: a table, or nothing when none is given.
fn authorize_params(flags: &[String]) -> anyhow::Result<Option<BTreeMap<String, String>>> {
    let mut params = BTreeMap::new();
    for p in flags {
        let Some((k, v)) = p.split_once('=') else {
            anyhow::bail!("--authorize-param {p:?}: expected KEY=VALUE");
        };
        params.insert(k.to_string(), v.to_string());
    }
    Ok((!params.is_empty()).then_some(params))
}

/// Headers of two layers: names are case-insensitive, so the upper layer's "x-api-key"
/// replaces a lower "X-Api-Key".
fn merge_headers(
    below: &BTreeMap<String, String>,
    above: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in below.iter().chain(above) {
        m.retain(|old, _| !old.eq_ignore_ascii_case(k));
        m.insert(k.clone(), v.clone());
    }
    m
}
