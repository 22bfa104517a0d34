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
// What the store keeps, defined with the credential they make up; here for the paths
// every store implementation (and earlier versions of this crate) use.
pub use crate::credential::{
    ClientRegistration, CredentialGrant, CredentialRecord, RegistrationKind, TokenSet,
};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Key of a [`CredentialRecord`].
///
/// Made with [`CredentialKey::new`], its `server_url` is [canonical](canonical_server_url):
/// `HTTP://Host:443/mcp#x` and `http://host/mcp` name one server, so they find one
/// credential. A key read back from a store is as it was written: versions before 0.2
/// keyed credentials by the URL as typed ([`find_legacy`] finds those).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CredentialKey {
    /// The MCP server URL, canonical when made by [`CredentialKey::new`].
    pub server_url: String,
    /// A named profile, to keep several credentials for one server; `None` for the default one.
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
    /// The key with `profile` as its profile.
    pub fn with_profile(mut self, profile: Option<String>) -> Self {
        self.profile = profile;
        self
    }
}

/// Key of a stored [`ClientRegistration`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientKey {
    /// The issuer of the authorization server the client is registered with.
    pub issuer: String,
    /// The redirect URI the client was registered with.
    pub redirect_uri: String,
}

/// Key of an [`IssuerPin`]: a configured client on one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IssuerPinKey {
    /// The MCP server URL as the user gave it.
    pub server_url: String,
    /// The client id configured for that server.
    pub client_id: String,
}

/// The authorization server a configured (pre-registered) client's credentials may be
/// sent to: the one named by the configuration (`client_issuer`), else the first one it
/// was used with. Kept apart from the credentials, so that a logout does not forget it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerPin {
    /// The issuer the client's credentials may be sent to.
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
    /// Wraps whatever releases the lock when dropped (a file lock, a mutex guard, ...).
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
    /// The record stored under `key`, if any.
    fn load(&self, key: &CredentialKey) -> Result<Option<CredentialRecord>>;
    /// Stores `record` under `key`, atomically, replacing any record there.
    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> Result<()>;
    /// Returns whether there was a record.
    fn remove(&self, key: &CredentialKey) -> Result<bool>;
    /// Every record in the store, with its key.
    fn list(&self) -> Result<Vec<(CredentialKey, CredentialRecord)>>;

    /// The client registration stored under `key`, if any.
    fn load_client(&self, key: &ClientKey) -> Result<Option<ClientRegistration>>;
    /// Stores `registration` under `key`, atomically, replacing any there.
    fn save_client(&self, key: &ClientKey, registration: &ClientRegistration) -> Result<()>;
    /// Removes the client registration under `key`; returns whether there was one.
    fn remove_client(&self, key: &ClientKey) -> Result<bool>;

    /// The issuer a configured client is pinned to (see [`IssuerPin`]).
    fn load_issuer_pin(&self, key: &IssuerPinKey) -> Result<Option<IssuerPin>>;
    /// Stores `pin` under `key`, atomically, replacing any pin there.
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
