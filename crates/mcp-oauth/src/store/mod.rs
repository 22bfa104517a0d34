//! Where credentials live between runs.
//!
//! Two kinds of records:
//! - [`CredentialRecord`]: the tokens for one MCP server (and profile), bound to the
//!   canonical `resource` they were issued for and the `issuer` of the authorization
//!   server that issued them. Keyed by [`CredentialKey`] (the server URL in its
//!   [canonical form](canonical_server_url), plus an optional profile) so that a process
//!   with a valid stored token can go straight to the server without any discovery
//!   traffic.
//! - [`ClientRegistration`]: a client id obtained by Dynamic Client Registration, keyed
//!   by the authorization server's `issuer` and the redirect URI ([`ClientKey`]). A client
//!   id is only ever presented to the issuer that issued it (SEP-2352).
//! - [`IssuerPin`]: the issuer a configured client's secret or key may go to, keyed by
//!   server URL and client id ([`IssuerPinKey`]); it outlives the credentials.
//!
//! [`FileStore`] is the default (0700 directory, 0600 files, atomic writes, cross-process
//! locks); [`MemoryStore`] is for tests and one-shot processes.

mod file;
#[cfg(test)]
mod key_tests;
mod memory;
#[cfg(test)]
mod test_fixtures;

pub use file::{FileStore, Scan, UnreadableFile};
pub use memory::MemoryStore;

pub use crate::client_auth::ClientAuthMethod;
use crate::error::Result;
use crate::secret::{AccessToken, ClientSecret, DpopKeyMaterial, RefreshToken};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a client id was obtained (the spec's registration priority order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// Configured by the user.
    PreRegistered,
    /// A Client ID Metadata Document URL used as the client id.
    ClientIdMetadataDocument,
    /// RFC 7591 Dynamic Client Registration.
    Dynamic,
}

impl fmt::Display for RegistrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegistrationKind::PreRegistered => "pre-registered",
            RegistrationKind::ClientIdMetadataDocument => "client id metadata document",
            RegistrationKind::Dynamic => "dynamic client registration",
        })
    }
}

/// A client as known to one authorization server.
///
/// Stored (and read back) without the secret of a pre-registered client: that one lives
/// in the configuration ([`crate::config::SecretSource`]) and is read at each use, so
/// only a secret the authorization server issued (Dynamic Client Registration) is ever
/// written. A record written by an older version that holds a configured secret is read
/// without it: the configured source replaces it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRegistration", into = "StoredRegistration")]
pub struct ClientRegistration {
    /// The issuer of the authorization server this client id belongs to.
    pub issuer: String,
    pub redirect_uri: String,
    pub client_id: String,
    /// A secret the authorization server issued at registration. `None` for a
    /// pre-registered client (its secret comes from the configuration at each use).
    pub client_secret: Option<ClientSecret>,
    /// Unix seconds; `None` or 0 means it does not expire (RFC 7591 §3.2.1).
    pub client_secret_expires_at: Option<u64>,
    /// How the client authenticates; stored as its registered name (`none`,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`).
    pub token_endpoint_auth_method: ClientAuthMethod,
    pub kind: RegistrationKind,
    /// Unix seconds.
    pub registered_at: u64,
}

/// The stored form of a [`ClientRegistration`]: the same fields, the same JSON as ever.
/// The conversions both ways drop the secret of a pre-registered client.
#[derive(Serialize, Deserialize)]
struct StoredRegistration {
    issuer: String,
    redirect_uri: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<ClientSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<u64>,
    token_endpoint_auth_method: ClientAuthMethod,
    kind: RegistrationKind,
    registered_at: u64,
}

/// Only a secret the authorization server issued is kept.
fn issued_secret(kind: RegistrationKind, secret: Option<ClientSecret>) -> Option<ClientSecret> {
    secret.filter(|_| kind != RegistrationKind::PreRegistered)
}

impl From<StoredRegistration> for ClientRegistration {
    fn from(s: StoredRegistration) -> Self {
        ClientRegistration {
            client_secret: issued_secret(s.kind, s.client_secret),
            issuer: s.issuer,
            redirect_uri: s.redirect_uri,
            client_id: s.client_id,
            client_secret_expires_at: s.client_secret_expires_at,
            token_endpoint_auth_method: s.token_endpoint_auth_method,
            kind: s.kind,
            registered_at: s.registered_at,
        }
    }
}

impl From<ClientRegistration> for StoredRegistration {
    fn from(r: ClientRegistration) -> Self {
        StoredRegistration {
            client_secret: issued_secret(r.kind, r.client_secret),
            issuer: r.issuer,
            redirect_uri: r.redirect_uri,
            client_id: r.client_id,
            client_secret_expires_at: r.client_secret_expires_at,
            token_endpoint_auth_method: r.token_endpoint_auth_method,
            kind: r.kind,
            registered_at: r.registered_at,
        }
    }
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &crate::secret::redacted(&self.client_secret),
            )
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("kind", &self.kind)
            .finish()
    }
}

/// Tokens from one token response, with the absolute expiry computed when received.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: AccessToken,
    /// As returned by the server (`Bearer`, `bearer`, `DPoP`, ...).
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Unix seconds; `None` when the server gave no `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Scopes granted, as returned (space separated); `None` when the response had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes we asked for (space separated), kept for step-up unions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scope: Option<String>,
    /// Unix seconds.
    pub obtained_at: u64,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &crate::secret::redacted(&self.refresh_token),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("requested_scope", &self.requested_scope)
            .finish()
    }
}

/// Everything needed to use and renew the credential of one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The MCP server URL as the user gave it.
    pub server_url: String,
    /// The canonical resource the tokens were issued for: the PRM `resource` string,
    /// verbatim (or the configured override).
    pub resource: String,
    /// The issuer of the authorization server that issued the tokens.
    pub issuer: String,
    /// Token endpoint used for refreshes (from validated metadata), so a refresh needs
    /// no discovery.
    pub token_endpoint: String,
    /// Revocation endpoint (RFC 7009), if the AS advertised one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The resource indicator sent (None when omitted by configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_indicator: Option<String>,
    pub client: ClientRegistration,
    pub tokens: TokenSet,
    /// How the tokens were obtained (`authorization_code`, `client_credentials`,
    /// `jwt_bearer`, `enterprise_managed`), which says how to renew them.
    #[serde(default = "default_grant")]
    pub grant: String,
    /// The DPoP key the tokens are bound to, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<DpopKeyMaterial>,
}

fn default_grant() -> String {
    "authorization_code".into()
}

/// Key of a [`CredentialRecord`].
///
/// Made with [`CredentialKey::new`], its `server_url` is [canonical](canonical_server_url):
/// `HTTP://Host:443/mcp#x` and `http://host/mcp` name one server, so they find one
/// credential. A key read back from a store is as it was written: versions before 0.2
/// keyed credentials by the URL as typed ([`find_legacy`] finds those).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CredentialKey {
    pub server_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The form of an MCP server URL that identifies its credential: scheme and host in
/// lower case, the scheme's default port left out, no fragment (a fragment never
/// reaches the server). The path and the query are kept as they are (beyond the URL
/// parser's escaping): `/mcp` and `/mcp/`, or `?tenant=a` and `?tenant=b`, may be
/// different servers. A string that is not an absolute URL is returned unchanged.
///
/// Only the store key is canonical: requests still go to the URL as given, and the
/// `resource` indicator is still the protected resource metadata's string, byte for byte.
pub fn canonical_server_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            u.set_fragment(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Do two server URLs name the same server (the same [canonical form](canonical_server_url))?
pub fn same_server(a: &str, b: &str) -> bool {
    a == b || canonical_server_url(a) == canonical_server_url(b)
}

/// A credential that an earlier version stored under the server URL as the user typed
/// it (`typed`), for the canonical `key`: the key as typed first, then any stored key
/// that names the same server and profile. Moved to `key` when found (saved there, the
/// old entry removed), so that it is found directly from then on. `Ok(None)` when there
/// is none, or when `key` already has a record (nothing is overwritten).
pub fn find_legacy(
    store: &dyn CredentialStore,
    key: &CredentialKey,
    typed: &str,
) -> Result<Option<CredentialRecord>> {
    let as_typed = CredentialKey {
        server_url: typed.to_string(),
        profile: key.profile.clone(),
    };
    let found = if as_typed != *key
        && let Some(r) = store.load(&as_typed)?
    {
        Some((as_typed, r))
    } else {
        store.list()?.into_iter().find(|(k, _)| {
            k != key && k.profile == key.profile && same_server(&k.server_url, &key.server_url)
        })
    };
    let Some((old, record)) = found else {
        return Ok(None);
    };
    if store.load(key)?.is_some() {
        return Ok(None);
    }
    tracing::info!(from = %old.server_url, to = %key.server_url, "moving a credential stored under the URL as typed to its canonical key");
    store.save(key, &record)?;
    store.remove(&old)?;
    Ok(Some(record))
}

impl CredentialKey {
    /// The key of `server_url`'s credential, in [canonical form](canonical_server_url).
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server_url: canonical_server_url(&server_url.into()),
            profile: None,
        }
    }
    pub fn with_profile(mut self, profile: Option<String>) -> Self {
        self.profile = profile;
        self
    }
}

/// Key of a stored [`ClientRegistration`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientKey {
    pub issuer: String,
    pub redirect_uri: String,
}

/// Key of an [`IssuerPin`]: a configured client on one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IssuerPinKey {
    /// The MCP server URL as the user gave it.
    pub server_url: String,
    pub client_id: String,
}

/// The authorization server a configured (pre-registered) client's credentials may be
/// sent to: the one named by the configuration (`client_issuer`), else the first one it
/// was used with. Kept apart from the credentials, so that a logout does not forget it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerPin {
    pub issuer: String,
    /// Unix seconds.
    pub pinned_at: u64,
    /// Named by the configuration (`true`) or taken at first use.
    #[serde(default)]
    pub configured: bool,
}

/// A held cross-process lock; released when dropped.
pub struct StoreLock {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// A place to keep credentials. Implementations must make every `save_*` atomic (a
/// reader sees the old or the new record, never a mix) and `lock` exclusive across
/// every process that shares the store.
///
/// The methods are blocking (small files); async callers run them on a blocking thread.
pub trait CredentialStore: Send + Sync + 'static {
    fn load(&self, key: &CredentialKey) -> Result<Option<CredentialRecord>>;
    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> Result<()>;
    /// Returns whether there was a record.
    fn remove(&self, key: &CredentialKey) -> Result<bool>;
    fn list(&self) -> Result<Vec<(CredentialKey, CredentialRecord)>>;

    fn load_client(&self, key: &ClientKey) -> Result<Option<ClientRegistration>>;
    fn save_client(&self, key: &ClientKey, registration: &ClientRegistration) -> Result<()>;
    fn remove_client(&self, key: &ClientKey) -> Result<bool>;

    /// The issuer a configured client is pinned to (see [`IssuerPin`]).
    fn load_issuer_pin(&self, key: &IssuerPinKey) -> Result<Option<IssuerPin>>;
    fn save_issuer_pin(&self, key: &IssuerPinKey, pin: &IssuerPin) -> Result<()>;

    /// Blocks until this caller holds the exclusive lock for `key` (across processes
    /// for persistent stores). Used to make refreshes and logins single-flight.
    fn lock(&self, key: &CredentialKey) -> Result<StoreLock>;

    /// Like [`lock`](Self::lock), but returns `Ok(None)` at once when someone else holds
    /// the lock, so that a caller can say that it is about to wait (and for what). The
    /// default blocks like `lock`.
    fn try_lock(&self, key: &CredentialKey) -> Result<Option<StoreLock>> {
        self.lock(key).map(Some)
    }
}
