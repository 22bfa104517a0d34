//! [`MemoryStore`]: credentials in memory, for tests and one-shot processes.
//!
//! ```
//! use mcp_oauth::store::{CredentialKey, CredentialStore, MemoryStore};
//!
//! let store = MemoryStore::new();
//! let shared = store.clone(); // same records, same locks
//! let key = CredentialKey::new("https://mcp.example.com/mcp");
//! assert!(shared.load(&key).unwrap().is_none());
//! let _guard = store.lock(&key).unwrap(); // `shared.lock(&key)` now waits
//! ```

use super::{
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, StoreLock,
};
use crate::error::Result;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// An in-memory [`CredentialStore`]. Clones share the same records and locks; nothing
/// outlives the last clone, and [`CredentialStore::lock`] only excludes holders of a
/// clone of the same store (not other processes).
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    credentials: Mutex<HashMap<CredentialKey, CredentialRecord>>,
    clients: Mutex<HashMap<ClientKey, ClientRegistration>>,
    locks: Arc<LockTable>,
}

/// Keys currently locked, and a condition variable signalled on every release.
#[derive(Default)]
struct LockTable {
    held: Mutex<HashSet<CredentialKey>>,
    released: Condvar,
}

/// Owned guard: removes its key from the table when dropped and wakes the waiters.
struct MemoryLockGuard {
    table: Arc<LockTable>,
    key: CredentialKey,
}

impl Drop for MemoryLockGuard {
    fn drop(&mut self) {
        relock(&self.table.held).remove(&self.key);
        self.table.released.notify_all();
    }
}

/// Every critical section here is a single map operation, so the data is consistent
/// even if a holder panicked: poisoning is ignored.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryStore {
    /// Counts only: records hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("credentials", &relock(&self.inner.credentials).len())
            .field("clients", &relock(&self.inner.clients).len())
            .finish()
    }
}

impl CredentialStore for MemoryStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<CredentialRecord>> {
        Ok(relock(&self.inner.credentials).get(key).cloned())
    }

    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> Result<()> {
        relock(&self.inner.credentials).insert(key.clone(), record.clone());
        Ok(())
    }

    fn remove(&self, key: &CredentialKey) -> Result<bool> {
        Ok(relock(&self.inner.credentials).remove(key).is_some())
    }

    /// Sorted by key.
    fn list(&self) -> Result<Vec<(CredentialKey, CredentialRecord)>> {
        let mut out: Vec<_> = relock(&self.inner.credentials)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn load_client(&self, key: &ClientKey) -> Result<Option<ClientRegistration>> {
        Ok(relock(&self.inner.clients).get(key).cloned())
    }

    fn save_client(&self, key: &ClientKey, registration: &ClientRegistration) -> Result<()> {
        relock(&self.inner.clients).insert(key.clone(), registration.clone());
        Ok(())
    }

    fn remove_client(&self, key: &ClientKey) -> Result<bool> {
        Ok(relock(&self.inner.clients).remove(key).is_some())
    }

    /// Blocks until no clone of this store holds the lock for `key`. Not re-entrant.
    fn lock(&self, key: &CredentialKey) -> Result<StoreLock> {
        let table = &self.inner.locks;
        let mut held = relock(&table.held);
        while held.contains(key) {
            held = table
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(key.clone());
        drop(held);
        Ok(StoreLock::new(MemoryLockGuard {
            table: Arc::clone(table),
            key: key.clone(),
        }))
    }

    fn try_lock(&self, key: &CredentialKey) -> Result<Option<StoreLock>> {
        let table = &self.inner.locks;
        let mut held = relock(&table.held);
        if held.contains(key) {
            return Ok(None);
        }
        held.insert(key.clone());
        drop(held);
        Ok(Some(StoreLock::new(MemoryLockGuard {
            table: Arc::clone(table),
            key: key.clone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};
    use crate::store::{RegistrationKind, TokenSet};
    use std::sync::mpsc;
    use std::time::Duration;

    fn client(issuer: &str) -> ClientRegistration {
        ClientRegistration {
            issuer: issuer.into(),
            redirect_uri: "http://127.0.0.1:33418/callback".into(),
            client_id: "client-123".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: "none".into(),
            kind: RegistrationKind::Dynamic,
            registered_at: 1_700_000_000,
        }
    }

    fn record(server: &str, access: &str) -> CredentialRecord {
        CredentialRecord {
            server_url: server.into(),
            resource: server.into(),
            issuer: "https://auth.example.com".into(),
            token_endpoint: "https://auth.example.com/token".into(),
            revocation_endpoint: None,
            resource_indicator: Some(server.into()),
            client: client("https://auth.example.com"),
            tokens: TokenSet {
                access_token: AccessToken::new(access),
                token_type: "Bearer".into(),
                refresh_token: Some(RefreshToken::new("refresh-token-value")),
                expires_at: Some(1_700_003_600),
                scope: None,
                requested_scope: None,
                obtained_at: 1_700_000_000,
            },
            grant: "authorization_code".into(),
            dpop_key: None,
        }
    }

    #[test]
    fn credential_round_trip() {
        let store = MemoryStore::new();
        let shared = store.clone();
        let a = CredentialKey::new("https://a.example.com/mcp");
        let a_work = a.clone().with_profile(Some("work".into()));
        let b = CredentialKey::new("https://b.example.com/mcp");
        assert_eq!(store.load(&a).unwrap(), None);
        assert!(store.list().unwrap().is_empty());

        store
            .save(&b, &record("https://b.example.com/mcp", "at-b"))
            .unwrap();
        store
            .save(&a, &record("https://a.example.com/mcp", "at-a"))
            .unwrap();
        store
            .save(&a_work, &record("https://a.example.com/mcp", "at-w"))
            .unwrap();
        store
            .save(&a, &record("https://a.example.com/mcp", "at-a2"))
            .unwrap();

        assert_eq!(
            shared.load(&a).unwrap(),
            Some(record("https://a.example.com/mcp", "at-a2"))
        );
        assert_eq!(
            shared
                .load(&a_work)
                .unwrap()
                .unwrap()
                .tokens
                .access_token
                .expose(),
            "at-w"
        );
        let keys: Vec<_> = shared.list().unwrap().into_iter().map(|(k, _)| k).collect();
        let mut expected = vec![a.clone(), a_work.clone(), b.clone()];
        expected.sort();
        assert_eq!(keys, expected);

        assert!(shared.remove(&a).unwrap());
        assert!(!store.remove(&a).unwrap());
        assert_eq!(store.load(&a).unwrap(), None);
        assert_eq!(store.list().unwrap().len(), 2);
    }

    #[test]
    fn client_round_trip() {
        let store = MemoryStore::default();
        let k = ClientKey {
            issuer: "https://auth.example.com".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
        };
        assert_eq!(store.load_client(&k).unwrap(), None);
        store
            .save_client(&k, &client("https://auth.example.com"))
            .unwrap();
        assert_eq!(
            store.clone().load_client(&k).unwrap(),
            Some(client("https://auth.example.com"))
        );
        assert!(store.list().unwrap().is_empty());
        assert!(store.remove_client(&k).unwrap());
        assert!(!store.remove_client(&k).unwrap());
        assert_eq!(store.load_client(&k).unwrap(), None);
    }

    #[test]
    fn debug_shows_no_records() {
        let store = MemoryStore::new();
        let key = CredentialKey::new("https://a.example.com/mcp");
        store
            .save(&key, &record("https://a.example.com/mcp", "very-secret-at"))
            .unwrap();
        let s = format!("{store:?}");
        assert!(
            !s.contains("very-secret-at") && !s.contains("refresh-token-value"),
            "{s}"
        );
        assert!(s.contains("credentials: 1"), "{s}");
    }

    #[test]
    fn lock_is_exclusive_across_clones_and_threads() {
        let store = MemoryStore::new();
        let other = store.clone();
        let key = CredentialKey::new("https://mcp.example.com/mcp");

        let held = store.lock(&key).unwrap();
        // A different key is independent.
        drop(
            other
                .lock(&CredentialKey::new("https://other.example.com/mcp"))
                .unwrap(),
        );

        let (tx, rx) = mpsc::channel();
        let waiter = {
            let key = key.clone();
            std::thread::spawn(move || {
                let guard = other.lock(&key).unwrap();
                tx.send(()).unwrap();
                drop(guard);
            })
        };
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "second locker got the lock while the first held it"
        );
        drop(held);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("second locker did not get the lock after release");
        waiter.join().unwrap();
        drop(store.lock(&key).unwrap());
    }

    #[test]
    fn lock_serializes_many_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let store = MemoryStore::new();
        let key = CredentialKey::new("https://mcp.example.com/mcp");
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, key, inside) = (store.clone(), key.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _g = store.lock(&key).unwrap();
                        assert_eq!(
                            inside.fetch_add(1, Ordering::SeqCst),
                            0,
                            "two holders at once"
                        );
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn lock_survives_a_panicking_holder() {
        let store = MemoryStore::new();
        let key = CredentialKey::new("https://mcp.example.com/mcp");
        let (s, k) = (store.clone(), key.clone());
        let r = std::thread::spawn(move || {
            let _g = s.lock(&k).unwrap();
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        // The guard was dropped during unwinding, so the lock is free again.
        drop(store.lock(&key).unwrap());
    }
}
