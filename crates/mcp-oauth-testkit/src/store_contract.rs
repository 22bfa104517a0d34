//! What every [`CredentialStore`] must do, as test functions that each store's tests
//! call with two handles on one store (a second `FileStore` on the same directory, a
//! clone of a `MemoryStore`, a second connection to the same database), plus the
//! fixtures they use.
//!
//! Public so that a store written outside the workspace runs the very checks the
//! built-in stores run, rather than a copy that drifts: the memory and file stores
//! (crates/mcp-oauth/tests/store_contract.rs), the vault (crates/mcp-oauth-store-postgres)
//! and the keychain store (crates/mcp-oauth-store-keychain) all call [`run_all`].
//!
//! ```toml
//! [dev-dependencies]
//! mcp-oauth-testkit = { path = "../mcp-oauth-testkit" }
//! ```
//!
//! ```ignore
//! #[test]
//! fn contract() {
//!     let (store, other) = (MyStore::open(..), MyStore::open(..));
//!     mcp_oauth_testkit::store_contract::run_all(&store, Box::new(other));
//! }
//! ```
//!
//! Every function panics (`assert!`) on the first broken rule. Each expects an empty
//! store, so give each its own (a fresh directory, a fresh database or end user).

use mcp_oauth::secret::{AccessToken, ClientSecret, RefreshToken};
use mcp_oauth::store::{
    ClientAuthMethod, ClientKey, ClientRegistration, CredentialKey, CredentialRecord,
    CredentialStore, IssuerPin, IssuerPinKey, RegistrationKind, TokenSet,
};
use std::sync::mpsc;
use std::time::Duration;

/// A dynamically registered client of `issuer`, with a secret: what the checks save.
pub fn client(issuer: &str) -> ClientRegistration {
    ClientRegistration {
        issuer: issuer.into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
        client_id: "client-123".into(),
        client_secret: Some(ClientSecret::new("client-secret-value")),
        client_secret_expires_at: Some(0),
        token_endpoint_auth_method: ClientAuthMethod::ClientSecretBasic,
        kind: RegistrationKind::Dynamic,
        registered_at: 1_700_000_000,
    }
}

/// A credential for `server` with the access token `access` (and a refresh token), from
/// the client [`client`] of `https://auth.example.com`.
pub fn record(server: &str, access: &str) -> CredentialRecord {
    CredentialRecord {
        server_url: server.into(),
        resource: server.into(),
        issuer: "https://auth.example.com".into(),
        token_endpoint: "https://auth.example.com/token".into(),
        revocation_endpoint: Some("https://auth.example.com/revoke".into()),
        resource_indicator: Some(server.into()),
        client: client("https://auth.example.com"),
        tokens: TokenSet {
            access_token: AccessToken::new(access),
            token_type: "Bearer".into(),
            refresh_token: Some(RefreshToken::new("refresh-token-value")),
            expires_at: Some(1_700_003_600),
            scope: Some("mcp:read".into()),
            requested_scope: Some("mcp:read".into()),
            obtained_at: 1_700_000_000,
        },
        grant: "authorization_code".into(),
        dpop_key: None,
    }
}

/// Every check below, in order, on `store` and a second handle `other` on the same
/// (empty) store: what a new [`CredentialStore`] must pass.
pub fn run_all(store: &dyn CredentialStore, other: Box<dyn CredentialStore>) {
    credential_round_trip(store, other.as_ref());
    // Both checks above leave entries behind: clear them, each check expects an empty
    // store.
    clear(store);
    client_round_trip(store, other.as_ref());
    clear(store);
    try_lock_reports_a_held_lock(store, other.as_ref());
    issuer_pin_round_trip(store, other.as_ref());
    lock_is_exclusive(store, other);
}

/// An issuer pin is kept per server and client id, seen by another handle of the same
/// store, replaced by a save, and not removed with the credentials (it outlives a logout).
pub fn issuer_pin_round_trip(store: &dyn CredentialStore, other: &dyn CredentialStore) {
    let key = IssuerPinKey {
        server_url: "https://mcp.example.com/contract-pins".into(),
        client_id: "contract-client".into(),
    };
    let elsewhere = IssuerPinKey {
        client_id: "another-client".into(),
        ..key.clone()
    };
    let pin = |issuer: &str, configured| IssuerPin {
        issuer: issuer.into(),
        pinned_at: 1_700_000_000,
        configured,
    };
    store
        .save_issuer_pin(&key, &pin("https://auth.example.com", false))
        .unwrap();
    assert_eq!(
        other.load_issuer_pin(&key).unwrap(),
        Some(pin("https://auth.example.com", false))
    );
    assert_eq!(other.load_issuer_pin(&elsewhere).unwrap(), None);
    store
        .save_issuer_pin(&key, &pin("https://other.example.com/tenant", true))
        .unwrap();
    for (k, _) in store.list().unwrap() {
        store.remove(&k).unwrap();
    }
    assert_eq!(
        other.load_issuer_pin(&key).unwrap(),
        Some(pin("https://other.example.com/tenant", true))
    );
}

/// Removes what the checks save (their keys are fixed).
fn clear(store: &dyn CredentialStore) {
    for (key, _) in store.list().unwrap() {
        store.remove(&key).unwrap();
    }
    for issuer in [
        "https://auth.example.com",
        "https://other.example.com/tenant",
    ] {
        store
            .remove_client(&ClientKey {
                issuer: issuer.into(),
                redirect_uri: "http://127.0.0.1:33418/callback".into(),
            })
            .unwrap();
    }
}

fn access_token(store: &dyn CredentialStore, key: &CredentialKey) -> String {
    store
        .load(key)
        .unwrap()
        .unwrap()
        .tokens
        .access_token
        .expose()
        .to_string()
}

/// Save, overwrite, load (through either handle), list in key order, remove.
pub fn credential_round_trip(store: &dyn CredentialStore, other: &dyn CredentialStore) {
    let a = CredentialKey::new("https://a.example.com/mcp");
    let a_work = a.clone().with_profile(Some("work".into()));
    let b = CredentialKey::new("https://b.example.com/mcp?x=1&y=/../..");
    assert_eq!(store.load(&a).unwrap(), None);
    assert!(store.list().unwrap().is_empty());

    store
        .save(&b, &record("https://b.example.com/mcp", "at-b"))
        .unwrap();
    store
        .save(&a, &record("https://a.example.com/mcp", "at-a"))
        .unwrap();
    store
        .save(&a_work, &record("https://a.example.com/mcp", "at-a-work"))
        .unwrap();
    assert_eq!(access_token(store, &a), "at-a");
    assert_eq!(access_token(other, &a_work), "at-a-work");
    assert_eq!(
        other.load(&b).unwrap(),
        Some(record("https://b.example.com/mcp", "at-b"))
    );

    // Overwrite.
    store
        .save(&a, &record("https://a.example.com/mcp", "at-a2"))
        .unwrap();
    assert_eq!(
        other.load(&a).unwrap(),
        Some(record("https://a.example.com/mcp", "at-a2"))
    );

    let listed = other.list().unwrap();
    let keys: Vec<_> = listed.iter().map(|(k, _)| k.clone()).collect();
    let mut expected = vec![a.clone(), a_work.clone(), b.clone()];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(listed[0].1.tokens.access_token.expose(), "at-a2");

    assert!(other.remove(&a).unwrap());
    assert!(!store.remove(&a).unwrap());
    assert_eq!(store.load(&a).unwrap(), None);
    assert!(store.load(&a_work).unwrap().is_some());
    assert_eq!(store.list().unwrap().len(), 2);
}

/// Client registrations by issuer, apart from credentials.
pub fn client_round_trip(store: &dyn CredentialStore, other: &dyn CredentialStore) {
    let k1 = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
    };
    let k2 = ClientKey {
        issuer: "https://other.example.com/tenant".into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
    };
    assert_eq!(store.load_client(&k1).unwrap(), None);
    store
        .save_client(&k1, &client("https://auth.example.com"))
        .unwrap();
    store
        .save_client(&k2, &client("https://other.example.com/tenant"))
        .unwrap();
    assert_eq!(
        other.load_client(&k1).unwrap(),
        Some(client("https://auth.example.com"))
    );
    assert_eq!(
        store.load_client(&k2).unwrap(),
        Some(client("https://other.example.com/tenant"))
    );
    // Clients are not credentials.
    assert!(store.list().unwrap().is_empty());
    assert!(store.remove_client(&k1).unwrap());
    assert!(!other.remove_client(&k1).unwrap());
    assert_eq!(store.load_client(&k1).unwrap(), None);
    assert!(store.load_client(&k2).unwrap().is_some());
}

/// `lock` is per key, and exclusive between the two handles (the other one used from
/// another thread) until released.
pub fn lock_is_exclusive(store: &dyn CredentialStore, other: Box<dyn CredentialStore>) {
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
        rx.recv_timeout(Duration::from_millis(300)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "second locker got the lock while the first held it"
    );
    drop(held);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("second locker did not get the lock after release");
    waiter.join().unwrap();
    // And it can be taken again.
    drop(store.lock(&key).unwrap());
}

/// `try_lock` answers at once: `None` while the other handle holds the key's lock, a
/// lock once it is released; another key is free meanwhile.
pub fn try_lock_reports_a_held_lock(store: &dyn CredentialStore, other: &dyn CredentialStore) {
    let key = CredentialKey::new("https://mcp.example.com/mcp").with_profile(Some("p".into()));
    let held = store.try_lock(&key).unwrap().expect("a free lock is taken");
    let started = std::time::Instant::now();
    assert!(
        other.try_lock(&key).unwrap().is_none(),
        "try_lock took a lock that the other handle holds"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "try_lock waited for the holder"
    );
    // The same server without the profile is another credential, with its own lock.
    drop(
        other
            .try_lock(&CredentialKey::new("https://mcp.example.com/mcp"))
            .unwrap()
            .expect("another key's lock is free"),
    );
    drop(held);
    drop(
        other
            .try_lock(&key)
            .unwrap()
            .expect("the lock is free again once released"),
    );
}
