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
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, IssuerPin,
    IssuerPinKey, StoreLock,
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
    pins: Mutex<HashMap<IssuerPinKey, IssuerPin>>,
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
    /// An empty store.
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

    fn load_issuer_pin(&self, key: &IssuerPinKey) -> Result<Option<IssuerPin>> {
        Ok(relock(&self.inner.pins).get(key).cloned())
    }

    fn save_issuer_pin(&self, key: &IssuerPinKey, pin: &IssuerPin) -> Result<()> {
        relock(&self.inner.pins).insert(key.clone(), pin.clone());
        Ok(())
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
    use crate::store::test_fixtures::record;

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
