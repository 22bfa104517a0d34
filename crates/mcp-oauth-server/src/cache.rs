//! A small bounded cache of validation results, keyed by the SHA-256 of the token (the
//! token itself is never stored).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub(crate) type TokenKey = [u8; 32];

pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) struct TokenCache<V> {
    map: RwLock<HashMap<TokenKey, (V, Instant)>>,
    max_entries: usize,
}

impl<V: Clone> TokenCache<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            max_entries,
        }
    }

    pub(crate) fn get(&self, key: &TokenKey) -> Option<V> {
        if self.max_entries == 0 {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((v, until)) if Instant::now() < *until => Some(v.clone()),
            _ => None,
        }
    }

    /// Caches `value` for `ttl`. When full, expired entries go first; if that is not
    /// enough the whole cache is dropped (amortized O(1), and a flood of distinct tokens
    /// cannot make inserts expensive).
    pub(crate) fn insert(&self, key: TokenKey, value: V, ttl: Duration) {
        if self.max_entries == 0 || ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let Some(until) = now.checked_add(ttl) else {
            return;
        };
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            map.retain(|_, (_, u)| *u > now);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(key, (value, until));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_bound() {
        let c = TokenCache::<i32>::new(3);
        let k = |s: &str| token_key(s);
        c.insert(k("a"), 1, Duration::from_secs(60));
        c.insert(k("b"), 2, Duration::ZERO); // not cached
        assert_eq!(c.get(&k("a")), Some(1));
        assert_eq!(c.get(&k("b")), None);
        c.insert(k("b"), 2, Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.get(&k("b")), None, "expired");
        c.insert(k("c"), 3, Duration::from_secs(60));
        assert_eq!(c.len(), 3);
        c.insert(k("d"), 4, Duration::from_secs(60)); // evicts the expired "b"
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&k("a")), Some(1));
        c.insert(k("e"), 5, Duration::from_secs(60)); // full of live entries: reset
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&k("e")), Some(5));
        assert_ne!(k("a"), k("b"));

        let off = TokenCache::<i32>::new(0);
        off.insert(k("a"), 1, Duration::from_secs(60));
        assert_eq!(off.get(&k("a")), None);
    }
}
