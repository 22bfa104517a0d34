//! The store contract (`mcp_oauth_testkit::store_contract`) on the built-in stores, each
//! with a second handle on the same store: a clone of a `MemoryStore`, a second
//! `FileStore` on the same directory. An integration test, because the testkit depends
//! on this crate and the library's own unit tests would see its types as another crate's.

use mcp_oauth::store::{FileStore, MemoryStore};
use mcp_oauth_testkit::store_contract;

mod memory {
    use super::*;

    #[test]
    fn credential_round_trip() {
        let store = MemoryStore::new();
        store_contract::credential_round_trip(&store, &store.clone());
    }

    #[test]
    fn client_round_trip() {
        let store = MemoryStore::default();
        store_contract::client_round_trip(&store, &store.clone());
    }

    #[test]
    fn lock_is_exclusive_across_clones_and_threads() {
        let store = MemoryStore::new();
        store_contract::lock_is_exclusive(&store, Box::new(store.clone()));
    }

    #[test]
    fn try_lock_reports_a_held_lock() {
        let store = MemoryStore::new();
        store_contract::try_lock_reports_a_held_lock(&store, &store.clone());
    }

    /// What a store written outside the workspace runs.
    #[test]
    fn the_whole_contract() {
        let store = MemoryStore::new();
        store_contract::run_all(&store, Box::new(store.clone()));
    }
}

mod file {
    use super::*;

    /// A store in a fresh directory, and a second handle on that directory.
    fn two_handles() -> (tempfile::TempDir, FileStore, FileStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::new(tmp.path().join("home"));
        let other = FileStore::new(store.dir().to_path_buf());
        (tmp, store, other)
    }

    #[test]
    fn credential_round_trip() {
        let (_tmp, store, other) = two_handles();
        store_contract::credential_round_trip(&store, &other);
    }

    #[test]
    fn client_round_trip() {
        let (_tmp, store, other) = two_handles();
        store_contract::client_round_trip(&store, &other);
    }

    /// Separate `File` handles on the same directory.
    #[test]
    fn lock_is_exclusive_across_handles() {
        let (_tmp, store, other) = two_handles();
        store_contract::lock_is_exclusive(&store, Box::new(other));
    }

    #[test]
    fn try_lock_reports_a_held_lock() {
        let (_tmp, store, other) = two_handles();
        store_contract::try_lock_reports_a_held_lock(&store, &other);
    }

    /// What a store written outside the workspace runs.
    #[test]
    fn the_whole_contract() {
        let (_tmp, store, other) = two_handles();
        store_contract::run_all(&store, Box::new(other));
    }
}
