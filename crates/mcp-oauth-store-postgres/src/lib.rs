//! # mcp-oauth-store-postgres
//!
//! A [`CredentialStore`] on PostgreSQL: one vault for a fleet of workers (containers,
//! machines) that call MCP servers on behalf of many users.
//!
//! - **Keyed by end user**: a credential belongs to an [`EndUser`] (an agent platform
//!   serves many), a server URL and a profile. Client registrations are keyed by issuer
//!   and redirect URI and shared: one application registers once per issuer.
//! - **Encrypted at rest**: each record (tokens, client secret, DPoP key) is sealed with
//!   AES-256-GCM under a key the database never sees ([`KeyRing`], from
//!   `MCP_OAUTH_VAULT_KEY` or a key file), with the row's identity authenticated beside
//!   it. Each row names its key id, so keys rotate: old keys open, the current key seals.
//! - **Single-flight refresh across machines**: [`CredentialStore::lock`] is an advisory
//!   lock held on a connection of its own, freed when its holder dies, with a lease that
//!   survives a restart of the database (see `lock.rs`). `OAuthClient` re-reads the
//!   record under the lock before it redeems a refresh token, so the waiters adopt the
//!   winner's token.
//! - **Schema by the tool**: versioned migrations, applied when the store opens.
//! - **Patient**: while the database is unreachable (a restart, a fail-over), operations
//!   retry for [`PgStoreOptions::patience`] before failing.
//!
//! ```no_run
//! use mcp_oauth_store_postgres::{EndUser, KeyRing, PgStore, PgStoreOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::open(
//!     "postgres://mcp@db.internal/vault?sslmode=require",
//!     PgStoreOptions::new(EndUser::new("alice")?, KeyRing::from_env()?),
//! )?;
//! # Ok(()) }
//! ```

mod conn;
mod crypto;
mod error;
mod lock;
mod schema;

pub use crypto::{KEY_ENV, KEY_FILE_ENV, KeyId, KeyRing, OLD_KEY_FILE_ENV, OLD_KEYS_ENV};
pub use error::{KeyError, VaultError};

use conn::{Connector, Shared, Worker};
use crypto::OpenError;
use lock::LockKey;
use mcp_oauth::store::{
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, IssuerPin,
    IssuerPinKey, StoreLock,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Whose credentials: the person (or tenant) an agent acts for. Not a secret, and not
/// authentication: whoever can reach the database with the key can read every user's
/// rows; this keeps users' credentials apart, not safe from each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndUser(String);

impl EndUser {
    pub fn new(name: impl Into<String>) -> Result<EndUser, VaultError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(VaultError::InvalidKey(
                "the end user's name is empty: name the person (or tenant) whose credentials \
                 these are"
                    .into(),
            ));
        }
        Ok(EndUser(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EndUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a [`PgStore`] behaves.
#[derive(Debug)]
pub struct PgStoreOptions {
    pub end_user: EndUser,
    pub keys: KeyRing,
    /// How long a lock outlives a restart of the database (see `lock.rs`): longer than
    /// any refresh takes (the token endpoint's time-outs and retries), so that a holder
    /// that lives on finishes first. Default 120 s.
    pub lease: Duration,
    /// How long an operation retries while the database is unreachable. Default 30 s.
    pub patience: Duration,
}

impl PgStoreOptions {
    pub fn new(end_user: EndUser, keys: KeyRing) -> PgStoreOptions {
        PgStoreOptions {
            end_user,
            keys,
            lease: Duration::from_secs(120),
            patience: Duration::from_secs(30),
        }
    }
}

/// Credentials in PostgreSQL; see the [crate docs](crate). Cheap to clone: clones share
/// a connection and a runtime.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Declared first so that it goes first: the connection tasks stop with it.
    worker: Arc<Worker>,
    shared: Arc<Shared>,
    location: String,
    end_user: EndUser,
    keys: KeyRing,
    lease: Duration,
    /// The locks this store holds, by key: the lease a save of that credential clears.
    held: Arc<Mutex<HashMap<LockKey, String>>>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.inner.location)
            .field("end_user", &self.inner.end_user)
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// What a failed operation was doing, for the error.
type Doing = &'static str;

impl PgStore {
    /// Connects to `url` (a PostgreSQL connection string: `postgres://user:pass@host/db`
    /// with libpq-style parameters such as `sslmode=require`; TLS verifies the server
    /// against the system's roots) and brings the schema up to date.
    pub fn open(url: &str, options: PgStoreOptions) -> Result<PgStore, VaultError> {
        let connector = Connector::new(url, options.patience)?;
        let worker = Arc::new(Worker::start()?);
        let c = connector.clone();
        worker.run(async move { schema::migrate(&c).await })?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                worker,
                location: connector.location(),
                shared: Arc::new(Shared::new(connector)),
                end_user: options.end_user,
                keys: options.keys,
                lease: options.lease,
                held: Arc::new(Mutex::new(HashMap::new())),
            }),
        })
    }

    /// `postgres://user@host:port/db`: where the vault is, without secrets.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    pub fn end_user(&self) -> &EndUser {
        &self.inner.end_user
    }

    /// The id of the key new writes are sealed with.
    pub fn current_key_id(&self) -> &KeyId {
        self.inner.keys.current_id()
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i32, VaultError> {
        self.query_one_value(
            "reading the schema version",
            "SELECT coalesce(max(version), 0) FROM mcp_oauth_schema_migrations",
        )
    }

    /// Every client registration in the vault (they are shared by its users), sorted.
    pub fn list_clients(&self) -> Result<Vec<(ClientKey, ClientRegistration)>, VaultError> {
        let rows = self.run("listing client registrations", |c| async move {
            c.query(
                "SELECT issuer, redirect_uri, key_id, sealed FROM mcp_oauth_clients",
                &[],
            )
            .await
        })?;
        let mut out = Vec::new();
        for r in rows {
            let key = ClientKey {
                issuer: r.get(0),
                redirect_uri: r.get(1),
            };
            match self.unseal(&client_aad(&key), &whose_client(&key), r.get(2), r.get(3)) {
                Ok(reg) => out.push((key, reg)),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a client registration that cannot be read")
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Seals every row not sealed with the current key (after a key rotation) with it;
    /// returns how many. Rows whose key is not configured are left as they are (and
    /// counted in the error). Each row is rewritten only if it is unchanged since it was
    /// read, so a concurrent save is never undone.
    pub fn reencrypt(&self) -> Result<usize, VaultError> {
        let current = self.inner.keys.current_id().as_str().to_string();
        let mut moved = 0;
        let cur = current.clone();
        let creds = self.run("reading rows to re-encrypt", move |c| {
            let cur = cur.clone();
            async move {
                c.query(
                    "SELECT end_user, server_url, profile, key_id, sealed
                     FROM mcp_oauth_credentials WHERE key_id <> $1",
                    &[&cur],
                )
                .await
            }
        })?;
        for r in creds {
            let (user, server, profile): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let key = CredentialKey::new(server.clone()).with_profile(profile_of(&profile));
            let aad = credential_aad(&user, &key);
            let old_id: String = r.get(3);
            let old_sealed: Vec<u8> = r.get(4);
            let record: CredentialRecord = self.unseal(
                &aad,
                &whose(&user, &key),
                old_id.clone(),
                old_sealed.clone(),
            )?;
            let (id, sealed) = self.seal(&aad, &whose(&user, &key), &record)?;
            moved += self.run("re-encrypting a credential", move |c| {
                let (user, server, profile, id, sealed, old_id, old_sealed) = (
                    user.clone(),
                    server.clone(),
                    profile.clone(),
                    id.as_str().to_string(),
                    sealed.clone(),
                    old_id.clone(),
                    old_sealed.clone(),
                );
                async move {
                    c.execute(
                        "UPDATE mcp_oauth_credentials SET key_id = $4, sealed = $5, updated_at = now()
                         WHERE end_user = $1 AND server_url = $2 AND profile = $3
                           AND key_id = $6 AND sealed = $7",
                        &[&user, &server, &profile, &id, &sealed, &old_id, &old_sealed],
                    )
                    .await
                }
            })? as usize;
        }
        let cur = current.clone();
        let clients = self.run("reading rows to re-encrypt", move |c| {
            let cur = cur.clone();
            async move {
                c.query(
                    "SELECT issuer, redirect_uri, key_id, sealed FROM mcp_oauth_clients WHERE key_id <> $1",
                    &[&cur],
                )
                .await
            }
        })?;
        for r in clients {
            let key = ClientKey {
                issuer: r.get(0),
                redirect_uri: r.get(1),
            };
            let old_id: String = r.get(2);
            let old_sealed: Vec<u8> = r.get(3);
            let reg: ClientRegistration = self.unseal(
                &client_aad(&key),
                &whose_client(&key),
                old_id.clone(),
                old_sealed.clone(),
            )?;
            let (id, sealed) = self.seal(&client_aad(&key), &whose_client(&key), &reg)?;
            moved +=
                self.run("re-encrypting a client registration", move |c| {
                    let (k, id, sealed, old_id, old_sealed) = (
                        key.clone(),
                        id.as_str().to_string(),
                        sealed.clone(),
                        old_id.clone(),
                        old_sealed.clone(),
                    );
                    async move {
                        c.execute(
                        "UPDATE mcp_oauth_clients SET key_id = $3, sealed = $4, updated_at = now()
                         WHERE issuer = $1 AND redirect_uri = $2 AND key_id = $5 AND sealed = $6",
                        &[&k.issuer, &k.redirect_uri, &id, &sealed, &old_id, &old_sealed],
                    )
                    .await
                    }
                })? as usize;
        }
        Ok(moved)
    }

    // ----- internals -------------------------------------------------------------

    /// Runs `op` on the shared connection, on the store's runtime, blocking this thread.
    fn run<T, F, Fut>(&self, doing: Doing, op: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: Fn(Arc<tokio_postgres::Client>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let shared = self.inner.shared.clone();
        self.inner
            .worker
            .run(async move { shared.run(doing, op).await })
    }

    fn query_one_value(&self, doing: Doing, sql: &'static str) -> Result<i32, VaultError> {
        self.run(doing, move |c| async move {
            c.query_one(sql, &[]).await.map(|r| r.get(0))
        })
    }

    fn seal<T: Serialize>(
        &self,
        aad: &[u8],
        whose: &str,
        value: &T,
    ) -> Result<(KeyId, Vec<u8>), VaultError> {
        let json = serde_json::to_vec(value).map_err(|source| VaultError::Serialize {
            whose: whose.to_string(),
            source,
        })?;
        Ok(self.inner.keys.seal(aad, &json))
    }

    fn unseal<T: DeserializeOwned>(
        &self,
        aad: &[u8],
        whose: &str,
        key_id: String,
        sealed: Vec<u8>,
    ) -> Result<T, VaultError> {
        let key_id = KeyId::from_stored(key_id);
        let json = self
            .inner
            .keys
            .open(&key_id, aad, &sealed)
            .map_err(|e| match e {
                OpenError::UnknownKey => VaultError::UnknownKey {
                    whose: whose.to_string(),
                    key_id: key_id.clone(),
                },
                OpenError::Tampered => VaultError::Tampered {
                    whose: whose.to_string(),
                    key_id: key_id.clone(),
                },
            })?;
        serde_json::from_slice(&json).map_err(|source| VaultError::Format {
            whose: whose.to_string(),
            source,
        })
    }

    fn lock_key(&self, key: &CredentialKey) -> LockKey {
        let mut h = Sha256::new();
        h.update(b"mcp-oauth credential lock\0");
        h.update(credential_aad(self.inner.end_user.as_str(), key));
        let d = h.finalize();
        LockKey(i64::from_be_bytes(d[..8].try_into().expect("8 bytes")))
    }

    /// The holder id of this store's lock on `key`, if it holds it.
    fn holder_of(&self, key: LockKey) -> String {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    fn take_lock(&self, key: &CredentialKey, wait: bool) -> Result<Option<StoreLock>, VaultError> {
        // The key must be one the vault can keep before anyone waits for its lock.
        profile_column(key)?;
        let lock_key = self.lock_key(key);
        let holder = random_holder_id();
        let (worker, connector, lease) = (
            self.inner.worker.clone(),
            self.inner.shared.connector().clone(),
            self.inner.lease,
        );
        let h = holder.clone();
        let held = self
            .inner
            .worker
            .run(async move { lock::acquire(worker, connector, lock_key, h, lease, wait).await })?;
        Ok(held.map(|held| {
            self.inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(lock_key, holder);
            StoreLock::new(Released {
                held: Some(held),
                registry: self.inner.held.clone(),
                key: lock_key,
            })
        }))
    }

    fn error(&self, doing: String, e: VaultError) -> mcp_oauth::Error {
        mcp_oauth::Error::StoreBackend {
            store: self.inner.location.clone(),
            message: doing,
            source: Box::new(e),
        }
    }

    fn whose(&self, key: &CredentialKey) -> String {
        whose(self.inner.end_user.as_str(), key)
    }
}

/// A lock as the trait hands it out: forgets its lease in the store's registry, then
/// releases (see `lock::HeldLock`'s drop).
struct Released {
    held: Option<lock::HeldLock>,
    registry: Arc<Mutex<HashMap<LockKey, String>>>,
    key: LockKey,
}

impl Drop for Released {
    fn drop(&mut self) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        drop(self.held.take());
    }
}

/// A random id for one holding of a lock (which holder's lease a row is).
fn random_holder_id() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random generator");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The profile column: `''` for no profile. So an empty profile name cannot be kept
/// apart from none, and is refused.
fn profile_column(key: &CredentialKey) -> Result<String, VaultError> {
    match key.profile.as_deref() {
        None => Ok(String::new()),
        Some("") => Err(VaultError::InvalidKey(
            "an empty profile name cannot be stored in the vault: name the profile, or use none"
                .into(),
        )),
        Some(p) => Ok(p.to_string()),
    }
}

fn profile_of(column: &str) -> Option<String> {
    (!column.is_empty()).then(|| column.to_string())
}

/// The identity a credential's ciphertext is bound to (associated data): its row's key.
/// Length-prefixed parts, so no two identities give the same bytes.
fn credential_aad(user: &str, key: &CredentialKey) -> Vec<u8> {
    let profile = match &key.profile {
        None => "-".to_string(),
        Some(p) => format!("+{p}"),
    };
    identity(&[
        "mcp-oauth vault v1 credential",
        user,
        &key.server_url,
        &profile,
    ])
}

fn client_aad(key: &ClientKey) -> Vec<u8> {
    identity(&["mcp-oauth vault v1 client", &key.issuer, &key.redirect_uri])
}

fn identity(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

fn whose(user: &str, key: &CredentialKey) -> String {
    match &key.profile {
        Some(p) => format!(
            "the credential of {user} for {} (profile {p})",
            key.server_url
        ),
        None => format!("the credential of {user} for {}", key.server_url),
    }
}

fn whose_client(key: &ClientKey) -> String {
    format!(
        "the client registration at {} for {}",
        key.issuer, key.redirect_uri
    )
}

impl CredentialStore for PgStore {
    fn load(&self, key: &CredentialKey) -> mcp_oauth::Result<Option<CredentialRecord>> {
        let fail = |e| self.error(format!("cannot read {}", self.whose(key)), e);
        let profile = profile_column(key).map_err(fail)?;
        let (user, server) = (self.inner.end_user.0.clone(), key.server_url.clone());
        let row = self
            .run("reading a credential", move |c| {
                let (user, server, profile) = (user.clone(), server.clone(), profile.clone());
                async move {
                    c.query_opt(
                        "SELECT key_id, sealed FROM mcp_oauth_credentials
                         WHERE end_user = $1 AND server_url = $2 AND profile = $3",
                        &[&user, &server, &profile],
                    )
                    .await
                }
            })
            .map_err(fail)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let aad = credential_aad(self.inner.end_user.as_str(), key);
        self.unseal(&aad, &self.whose(key), row.get(0), row.get(1))
            .map(Some)
            .map_err(fail)
    }

    /// One statement: the upsert, and the deletion of this store's lease on the
    /// credential (the refresh it guarded is over: a worker that takes the lock after a
    /// restart of the database may go on, and will re-read this record).
    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> mcp_oauth::Result<()> {
        let fail = |e| self.error(format!("cannot save {}", self.whose(key)), e);
        let profile = profile_column(key).map_err(fail)?;
        let aad = credential_aad(self.inner.end_user.as_str(), key);
        let (key_id, sealed) = self.seal(&aad, &self.whose(key), record).map_err(fail)?;
        let lock_key = self.lock_key(key);
        let holder = self.holder_of(lock_key);
        let params = (
            self.inner.end_user.0.clone(),
            key.server_url.clone(),
            profile,
            record.issuer.clone(),
            key_id.as_str().to_string(),
            sealed,
            lock_key.0,
            holder,
        );
        self.run("saving a credential", move |c| {
            let p = params.clone();
            async move {
                c.execute(
                    "WITH done AS (
                         DELETE FROM mcp_oauth_leases WHERE lock_key = $7 AND holder = $8
                     )
                     INSERT INTO mcp_oauth_credentials
                         (end_user, server_url, profile, issuer, key_id, sealed, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, now())
                     ON CONFLICT (end_user, server_url, profile) DO UPDATE
                     SET issuer = EXCLUDED.issuer, key_id = EXCLUDED.key_id,
                         sealed = EXCLUDED.sealed, updated_at = EXCLUDED.updated_at",
                    &[&p.0, &p.1, &p.2, &p.3, &p.4, &p.5, &p.6, &p.7],
                )
                .await
            }
        })
        .map(|_| ())
        .map_err(fail)
    }

    fn remove(&self, key: &CredentialKey) -> mcp_oauth::Result<bool> {
        let fail = |e| self.error(format!("cannot remove {}", self.whose(key)), e);
        let profile = profile_column(key).map_err(fail)?;
        let lock_key = self.lock_key(key);
        let holder = self.holder_of(lock_key);
        let params = (
            self.inner.end_user.0.clone(),
            key.server_url.clone(),
            profile,
            lock_key.0,
            holder,
        );
        self.run("removing a credential", move |c| {
            let p = params.clone();
            async move {
                c.execute(
                    "WITH done AS (
                         DELETE FROM mcp_oauth_leases WHERE lock_key = $4 AND holder = $5
                     )
                     DELETE FROM mcp_oauth_credentials
                     WHERE end_user = $1 AND server_url = $2 AND profile = $3",
                    &[&p.0, &p.1, &p.2, &p.3, &p.4],
                )
                .await
            }
        })
        .map(|n| n > 0)
        .map_err(fail)
    }

    /// This end user's credentials, sorted by key. A row that cannot be decrypted (a
    /// key not configured, an altered row) is skipped with a warning; `load` of it
    /// reports the error.
    fn list(&self) -> mcp_oauth::Result<Vec<(CredentialKey, CredentialRecord)>> {
        let user = self.inner.end_user.0.clone();
        let rows = self
            .run("listing credentials", move |c| {
                let user = user.clone();
                async move {
                    c.query(
                        "SELECT server_url, profile, key_id, sealed FROM mcp_oauth_credentials
                         WHERE end_user = $1",
                        &[&user],
                    )
                    .await
                }
            })
            .map_err(|e| self.error("cannot list the credentials".into(), e))?;
        let mut out = Vec::new();
        for r in rows {
            let key = CredentialKey::new(r.get::<_, String>(0))
                .with_profile(profile_of(&r.get::<_, String>(1)));
            let aad = credential_aad(self.inner.end_user.as_str(), &key);
            match self.unseal(&aad, &self.whose(&key), r.get(2), r.get(3)) {
                Ok(record) => out.push((key, record)),
                Err(e) => tracing::warn!(error = %e, "skipping a credential that cannot be read"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn load_client(&self, key: &ClientKey) -> mcp_oauth::Result<Option<ClientRegistration>> {
        let fail = |e| self.error(format!("cannot read {}", whose_client(key)), e);
        let k = key.clone();
        let row = self
            .run("reading a client registration", move |c| {
                let k = k.clone();
                async move {
                    c.query_opt(
                        "SELECT key_id, sealed FROM mcp_oauth_clients
                         WHERE issuer = $1 AND redirect_uri = $2",
                        &[&k.issuer, &k.redirect_uri],
                    )
                    .await
                }
            })
            .map_err(fail)?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.unseal(&client_aad(key), &whose_client(key), row.get(0), row.get(1))
            .map(Some)
            .map_err(fail)
    }

    fn save_client(
        &self,
        key: &ClientKey,
        registration: &ClientRegistration,
    ) -> mcp_oauth::Result<()> {
        let fail = |e| self.error(format!("cannot save {}", whose_client(key)), e);
        let (key_id, sealed) = self
            .seal(&client_aad(key), &whose_client(key), registration)
            .map_err(fail)?;
        let params = (key.clone(), key_id.as_str().to_string(), sealed);
        self.run("saving a client registration", move |c| {
            let (k, id, sealed) = params.clone();
            async move {
                c.execute(
                    "INSERT INTO mcp_oauth_clients (issuer, redirect_uri, key_id, sealed, updated_at)
                     VALUES ($1, $2, $3, $4, now())
                     ON CONFLICT (issuer, redirect_uri) DO UPDATE
                     SET key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed,
                         updated_at = EXCLUDED.updated_at",
                    &[&k.issuer, &k.redirect_uri, &id, &sealed],
                )
                .await
            }
        })
        .map(|_| ())
        .map_err(fail)
    }

    fn load_issuer_pin(&self, key: &IssuerPinKey) -> mcp_oauth::Result<Option<IssuerPin>> {
        let k = key.clone();
        let row = self
            .run("reading an issuer pin", move |c| {
                let k = k.clone();
                async move {
                    c.query_opt(
                        "SELECT issuer, pinned_at, configured FROM mcp_oauth_issuer_pins
                         WHERE server_url = $1 AND client_id = $2",
                        &[&k.server_url, &k.client_id],
                    )
                    .await
                }
            })
            .map_err(|e| {
                self.error(
                    format!("cannot read the issuer pin of client {}", key.client_id),
                    e,
                )
            })?;
        Ok(row.map(|r| IssuerPin {
            issuer: r.get(0),
            pinned_at: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            configured: r.get(2),
        }))
    }

    fn save_issuer_pin(&self, key: &IssuerPinKey, pin: &IssuerPin) -> mcp_oauth::Result<()> {
        let params = (
            key.clone(),
            pin.issuer.clone(),
            i64::try_from(pin.pinned_at).unwrap_or(i64::MAX),
            pin.configured,
        );
        self.run("saving an issuer pin", move |c| {
            let (k, issuer, at, configured) = params.clone();
            async move {
                c.execute(
                    "INSERT INTO mcp_oauth_issuer_pins (server_url, client_id, issuer, pinned_at, configured)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (server_url, client_id) DO UPDATE
                     SET issuer = EXCLUDED.issuer, pinned_at = EXCLUDED.pinned_at,
                         configured = EXCLUDED.configured",
                    &[&k.server_url, &k.client_id, &issuer, &at, &configured],
                )
                .await
            }
        })
        .map(|_| ())
        .map_err(|e| self.error(format!("cannot save the issuer pin of client {}", key.client_id), e))
    }

    fn remove_client(&self, key: &ClientKey) -> mcp_oauth::Result<bool> {
        let k = key.clone();
        self.run("removing a client registration", move |c| {
            let k = k.clone();
            async move {
                c.execute(
                    "DELETE FROM mcp_oauth_clients WHERE issuer = $1 AND redirect_uri = $2",
                    &[&k.issuer, &k.redirect_uri],
                )
                .await
            }
        })
        .map(|n| n > 0)
        .map_err(|e| self.error(format!("cannot remove {}", whose_client(key)), e))
    }

    /// Waits for the credential's advisory lock (and a lease left by a holder from
    /// before a restart of the database); see `lock.rs`. Not re-entrant.
    fn lock(&self, key: &CredentialKey) -> mcp_oauth::Result<StoreLock> {
        self.take_lock(key, true)
            .and_then(|l| {
                l.ok_or_else(|| {
                    VaultError::Runtime(std::io::Error::other("a waiting lock came back empty"))
                })
            })
            .map_err(|e| self.error(format!("cannot lock {}", self.whose(key)), e))
    }

    fn try_lock(&self, key: &CredentialKey) -> mcp_oauth::Result<Option<StoreLock>> {
        self.take_lock(key, false)
            .map_err(|e| self.error(format!("cannot lock {}", self.whose(key)), e))
    }
}
