//! What the user can tell the client about one MCP server. Defaults follow the spec;
//! every setting that weakens a security check says so in its documentation, and the
//! engine logs a warning whenever one is used.

use crate::assertion::SigningKey;
use crate::client_auth::ClientAuthMethod;
use crate::secret::{Assertion, ClientSecret};
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
    /// v2 scopes (`AADSTS9010010`, [`crate::quirks::ENTRA`]); this is the escape hatch for
    /// it. Weakens audience
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
    /// Use S256 anyway (AWS Cognito omits the field but supports S256:
    /// [`crate::quirks::COGNITO`]). Weakens a check:
    /// a server that ignores PKCE would go unnoticed.
    AllowMissing,
}

/// Where a configured client secret comes from. An environment variable or a file is read
/// at each use (every token request, refresh and revocation), so a rotated secret takes
/// effect at once; the credential store never holds a copy (it keeps only a secret the
/// authorization server issued at registration).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// This value (a library caller that holds the secret itself).
    Value(ClientSecret),
    /// The value of this environment variable, trimmed.
    Env(String),
    /// The contents of this file, trimmed.
    File(std::path::PathBuf),
}

impl SecretSource {
    /// The secret, read from its source now. The error names the variable or the file
    /// (never the value).
    pub fn load(&self) -> crate::Result<ClientSecret> {
        let v = match self {
            SecretSource::Value(s) => return Ok(s.clone()),
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                crate::Error::config(format!(
                    "the client secret's environment variable {var} is not set"
                ))
            })?,
            SecretSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
                crate::Error::config_caused(
                    format!("cannot read the client secret file {}: {e}", p.display()),
                    e,
                )
            })?,
        };
        let v = v.trim();
        if v.is_empty() {
            return Err(crate::Error::config(format!(
                "the client secret ({}) is empty",
                self.describe()
            )));
        }
        Ok(ClientSecret::new(v))
    }

    /// Where the secret comes from, in words (no value).
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Value(_) => "given by the caller".into(),
            SecretSource::Env(var) => format!("environment variable {var}"),
            SecretSource::File(p) => format!("file {}", p.display()),
        }
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Value(_) => f.write_str("Value([redacted])"),
            SecretSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl From<ClientSecret> for SecretSource {
    fn from(s: ClientSecret) -> Self {
        SecretSource::Value(s)
    }
}

/// A client the user registered with the authorization server beforehand.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PreRegisteredClient {
    /// The client id the authorization server issued for this client.
    pub client_id: String,
    /// Read at each use (see [`SecretSource`]).
    pub client_secret: Option<SecretSource>,
    /// The issuer this client belongs to. When set, the client is used only with that
    /// authorization server (a client id is meaningful only to its issuer).
    pub issuer: Option<String>,
    /// How the client authenticates; chosen from the credentials and the AS metadata
    /// when unset.
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,
    /// A private key for `private_key_jwt` (RFC 7523 client assertions).
    pub private_key: Option<SigningKey>,
}

impl std::fmt::Debug for PreRegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("issuer", &self.issuer)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("private_key", &self.private_key.as_ref().map(|k| &k.alg))
            .finish()
    }
}

/// Which OAuth grant obtains tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GrantKind {
    /// Decided from the configuration and the authorization server: a configured
    /// workload assertion → [`GrantKind::JwtBearer`]; configured enterprise settings →
    /// [`GrantKind::EnterpriseManaged`]; client credentials configured and an AS that
    /// offers `client_credentials` but not `authorization_code` →
    /// [`GrantKind::ClientCredentials`]; otherwise [`GrantKind::AuthorizationCode`].
    #[default]
    Auto,
    /// A user in a browser (PKCE).
    AuthorizationCode,
    /// The client acts on its own behalf (MCP `oauth-client-credentials` extension).
    ClientCredentials,
    /// Workload identity federation: an RFC 7523 jwt-bearer grant with a JWT the
    /// platform issued to this workload (MCP `auth/wif`).
    JwtBearer,
    /// Enterprise-managed authorization (SEP-990): RFC 8693 exchange of an ID token for
    /// an ID-JAG at the enterprise IdP, then the jwt-bearer grant at the MCP AS.
    EnterpriseManaged,
}

/// Where a JWT to present comes from. Files and environment variables are read at each
/// use, so a platform that rotates the token is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionSource {
    /// The JWT itself.
    Value(Assertion),
    /// A file holding the JWT (surrounding whitespace ignored), read at each use.
    File(std::path::PathBuf),
    /// An environment variable holding the JWT, read at each use.
    Env(String),
}

impl AssertionSource {
    /// Reads the JWT from where it comes from; [`Error::Config`](crate::Error::Config) if
    /// it cannot be read.
    pub fn load(&self) -> crate::Result<Assertion> {
        let v = match self {
            AssertionSource::Value(a) => return Ok(a.clone()),
            AssertionSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
                crate::Error::config_caused(
                    format!("cannot read the assertion file {}: {e}", p.display()),
                    e,
                )
            })?,
            AssertionSource::Env(var) => std::env::var(var).map_err(|_| {
                crate::Error::config(format!(
                    "the environment variable {var} (assertion) is not set"
                ))
            })?,
        };
        let v = v.trim();
        if v.is_empty() {
            return Err(crate::Error::config("the assertion is empty"));
        }
        Ok(Assertion::new(v))
    }
}

/// Enterprise-managed authorization: the enterprise IdP and the user's ID token there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseSettings {
    /// The IdP's token endpoint (where the RFC 8693 exchange happens).
    pub idp_token_endpoint: String,
    /// Our client id at the IdP.
    pub idp_client_id: String,
    /// Read at each use (see [`SecretSource`]).
    pub idp_client_secret: Option<SecretSource>,
    /// The ID token issued to the user by the IdP.
    pub id_token: AssertionSource,
}

/// When to sender-constrain tokens with DPoP (RFC 9449).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DpopPolicy {
    /// When the AS advertises ES256 in `dpop_signing_alg_values_supported` and the
    /// resource server accepts DPoP (a `DPoP` challenge, or DPoP fields in its PRM).
    #[default]
    Auto,
    /// Always bind tokens with DPoP.
    Always,
    /// Never use DPoP: tokens are bearer tokens.
    Never,
}

/// Where the authorization server sends the browser back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSettings {
    /// `127.0.0.1` by default (RFC 8252 §7.3 recommends the loopback IP literal).
    pub host: String,
    /// `None`: a stable port derived from the server URL, so that a redirect URI
    /// registered once keeps working; `Some(0)`: any free port.
    pub port: Option<u16>,
    /// The path of the redirect URI (`/callback` by default).
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

/// How the user takes part in an interactive authorization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Interaction {
    /// Open the browser; a loopback listener receives the redirect (RFC 8252 §7.3).
    #[default]
    Browser,
    /// Show the authorization URL and read back the redirect URL (or the bare code) the
    /// user pastes: for SSH sessions and machines without a browser. The redirect URI is
    /// still the registered loopback one; nothing listens on it.
    Paste,
    /// The device authorization grant (RFC 8628), when the authorization server
    /// advertises `device_authorization_endpoint`.
    Device,
}

/// Configuration of the OAuth client for one MCP server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The MCP endpoint URL, as the user gave it.
    pub server_url: String,
    /// Several accounts on one server are told apart by profile.
    pub profile: Option<String>,
    /// A client registered beforehand; `None` registers one (CIMD or RFC 7591).
    pub client: Option<PreRegisteredClient>,
    /// A Client ID Metadata Document URL, used as `client_id` where the AS supports it.
    pub client_metadata_url: Option<String>,
    /// The `client_name` the client registers with (shown on consent screens).
    pub client_name: String,
    /// Where the authorization server sends the browser back to.
    pub redirect: RedirectSettings,
    /// Scopes to request, overriding the challenge and the metadata.
    pub scopes: Option<String>,
    /// Which `resource` indicator (RFC 8707) to send.
    pub resource: ResourceSetting,
    /// Extra parameters on the authorization request (Google: `access_type=offline`,
    /// `prompt=consent`; Auth0: `audience=...`; see [`crate::quirks`]).
    pub authorize_params: Vec<(String, String)>,
    /// Authorization server metadata URL to use when discovery cannot find one.
    pub auth_server_metadata_url: Option<String>,
    /// Which of several `authorization_servers` to use (by issuer); the first that works
    /// otherwise.
    pub authorization_server: Option<String>,
    /// What to do with an authorization server that does not list its PKCE methods.
    pub pkce_metadata: PkceMetadataPolicy,
    /// How long to wait for the browser to come back.
    pub callback_timeout: Duration,
    /// Request `offline_access` when the AS lists it (for a refresh token).
    pub request_offline_access: bool,
    /// Refresh this long before expiry.
    pub refresh_margin: Duration,
    /// Browser + loopback (default), paste, or device grant.
    pub interaction: Interaction,
    /// Which grant obtains the tokens (authorization code by default).
    pub grant: GrantKind,
    /// A workload identity JWT (for [`GrantKind::JwtBearer`]).
    pub workload_assertion: Option<AssertionSource>,
    /// The enterprise IdP, for [`GrantKind::EnterpriseManaged`].
    pub enterprise: Option<EnterpriseSettings>,
    /// When to bind tokens to a DPoP key (RFC 9449).
    pub dpop: DpopPolicy,
    /// Which addresses the URLs that servers hand out during discovery may point at
    /// (SSRF protection, see [`crate::netpolicy`]). The default refuses private, link-local,
    /// loopback and cloud metadata addresses for a public MCP server.
    pub address_policy: crate::netpolicy::AddressPolicy,
    /// Behind an HTTP proxy, let the proxy resolve the names of discovery URLs that do not
    /// resolve here. Off by default: such a name is refused, since only the proxy could
    /// say where it leads (an intranet host a public server must not reach). Weakens a
    /// check (see [`crate::netpolicy::AddressGuard::check_via`]).
    pub trust_proxy_dns: bool,
    /// Send tokens to an MCP server reached over plain `http` on a host that is not
    /// loopback. Off by default: the access token would cross the network unencrypted
    /// (OAuth 2.1 §1.5), readable by anyone on the path. Weakens a check.
    pub allow_plain_http: bool,
}

impl OAuthConfig {
    /// A configuration for `server_url` with every other setting at its default.
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
            interaction: Interaction::default(),
            grant: GrantKind::default(),
            workload_assertion: None,
            enterprise: None,
            dpop: DpopPolicy::default(),
            address_policy: crate::netpolicy::AddressPolicy::default(),
            trust_proxy_dns: false,
            allow_plain_http: false,
        }
    }

    /// `Ok` when tokens may be sent to `url` over its scheme: `https`, or `http` on a
    /// loopback host, or anywhere with [`allow_plain_http`](Self::allow_plain_http). The
    /// refusal names the URL and the setting that would accept it.
    pub fn check_transport(&self, url: &str) -> crate::Result<()> {
        let Ok(parsed) = url::Url::parse(url) else {
            return Ok(()); // An unparsable URL fails with its own error where it is used.
        };
        if parsed.scheme() != "http" || crate::util::is_loopback_url(&parsed) {
            return Ok(());
        }
        if self.allow_plain_http {
            tracing::warn!(%url, "sending tokens over plain http (allowed by the configuration): anyone on the network path can read them");
            return Ok(());
        }
        Err(crate::Error::Rule {
            step: crate::Step::Config,
            url: url.to_string(),
            rule: crate::error::Rule::PlainHttp,
        })
    }

    /// The store key of this server's credentials.
    pub fn credential_key(&self) -> crate::store::CredentialKey {
        crate::store::CredentialKey::new(self.server_url.clone()).with_profile(self.profile.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret from a file is read at each `load`, so a rotation is seen at once; the
    /// errors name the source, never a value.
    #[test]
    fn a_secret_source_is_read_at_each_use() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "first\n").unwrap();
        let source = SecretSource::File(file.clone());
        assert_eq!(source.load().unwrap().expose(), "first");
        std::fs::write(&file, "  second  ").unwrap();
        assert_eq!(source.load().unwrap().expose(), "second");
        std::fs::write(&file, "\n").unwrap();
        let e = source.load().unwrap_err().to_string();
        assert!(
            e.contains("empty") && e.contains(&file.display().to_string()),
            "{e}"
        );
        std::fs::remove_file(&file).unwrap();
        assert!(
            source
                .load()
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        let unset = SecretSource::Env("MCP_OAUTH_TEST_UNSET_SECRET_VARIABLE".into());
        let e = unset.load().unwrap_err().to_string();
        assert!(e.contains("MCP_OAUTH_TEST_UNSET_SECRET_VARIABLE"), "{e}");
        let value = SecretSource::from(ClientSecret::new("hidden-value"));
        assert!(!format!("{value:?}").contains("hidden-value"));
    }

    #[test]
    fn plain_http_only_on_loopback_unless_allowed() {
        let mut c = OAuthConfig::new("http://mcp.example.com/mcp");
        for ok in [
            "https://mcp.example.com/mcp",
            "http://127.0.0.1:8000/mcp",
            "http://localhost/mcp",
            "http://[::1]:9/mcp",
        ] {
            assert!(c.check_transport(ok).is_ok(), "{ok}");
        }
        let e = c.check_transport("http://mcp.example.com/mcp").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("http://mcp.example.com/mcp")
                && m.contains(crate::remedy::Remedy::AllowPlainHttp.phrase()),
            "{m}"
        );
        assert!(c.check_transport("http://10.0.0.5/mcp").is_err());
        c.allow_plain_http = true;
        assert!(c.check_transport("http://mcp.example.com/mcp").is_ok());
    }
}
