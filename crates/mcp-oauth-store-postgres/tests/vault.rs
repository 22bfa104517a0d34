//! The vault against a real PostgreSQL (tests/support/pg.rs): the store contract, users
//! kept apart, encryption at rest, key rotation, migrations, and the lock's lease across
//! a restart of the database.
#![cfg(unix)]

#[path = "support/pg.rs"]
mod pg;

use mcp_oauth::store::{ClientKey, CredentialKey, CredentialStore};
use mcp_oauth_store_postgres::{EndUser, KeyRing, PgStore, PgStoreOptions, VaultError};
use mcp_oauth_testkit::store_contract::{self, client, record};
use pg::Postgres;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const K1: [u8; 32] = [1; 32];
const K2: [u8; 32] = [2; 32];

fn options(user: &str, keys: KeyRing) -> PgStoreOptions {
    PgStoreOptions::new(EndUser::new(user).unwrap(), keys)
}

fn open(url: &str, user: &str) -> PgStore {
    PgStore::open(url, options(user, KeyRing::new(K1))).unwrap()
}

fn server(test: &str) -> Option<(Postgres, String)> {
    let pg = Postgres::start(test)?;
    let url = pg.database("vault");
    Some((pg, url))
}

fn key(server: &str) -> CredentialKey {
    CredentialKey::new(server)
}

/// The contract every store passes, on two connections (two `PgStore`s) to one vault.
#[test]
fn the_store_contract() {
    let Some((_pg, url)) = server("the_store_contract") else {
        return;
    };
    store_contract::run_all(&open(&url, "alice"), Box::new(open(&url, "alice")));
}

#[test]
fn end_users_are_kept_apart() {
    let Some((_pg, url)) = server("end_users_are_kept_apart") else {
        return;
    };
    let (alice, bob) = (open(&url, "alice"), open(&url, "bob"));
    let k = key("https://mcp.example.com/mcp");
    alice
        .save(&k, &record("https://mcp.example.com/mcp", "at-alice"))
        .unwrap();
    assert_eq!(bob.load(&k).unwrap(), None, "bob sees alice's credential");
    assert!(bob.list().unwrap().is_empty());
    bob.save(&k, &record("https://mcp.example.com/mcp", "at-bob"))
        .unwrap();
    assert_eq!(
        alice
            .load(&k)
            .unwrap()
            .unwrap()
            .tokens
            .access_token
            .expose(),
        "at-alice"
    );
    assert!(bob.remove(&k).unwrap());
    assert!(
        alice.load(&k).unwrap().is_some(),
        "bob's logout removed alice's credential"
    );
    // Locks are per user too: bob does not wait for alice's refresh.
    let _held = alice.lock(&k).unwrap();
    assert!(bob.try_lock(&k).unwrap().is_some());
}

/// No secret is in the database in the clear, and a ciphertext moved to another row
/// (another user's) does not decrypt there.
#[test]
fn secrets_are_encrypted_and_bound_to_their_row() {
    let Some((pg, url)) = server("secrets_are_encrypted_and_bound_to_their_row") else {
        return;
    };
    let (alice, bob) = (open(&url, "alice"), open(&url, "bob"));
    let k = key("https://mcp.example.com/mcp");
    alice
        .save(
            &k,
            &record("https://mcp.example.com/mcp", "at-SECRET-alice"),
        )
        .unwrap();
    bob.save(&k, &record("https://mcp.example.com/mcp", "at-SECRET-bob"))
        .unwrap();
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
    };
    alice
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    let dump = pg.psql(
        "vault",
        "SELECT string_agg(encode(sealed, 'escape'), '') FROM \
         (SELECT sealed FROM mcp_oauth_credentials UNION ALL SELECT sealed FROM mcp_oauth_clients) t",
    );
    assert!(!dump.is_empty());
    for secret in ["at-SECRET", "refresh-token-value", "client-secret-value"] {
        assert!(!dump.contains(secret), "{secret} is stored in the clear");
    }
    assert_eq!(
        pg.psql("vault", "SELECT DISTINCT key_id FROM mcp_oauth_credentials"),
        alice.current_key_id().as_str()
    );
    // Bob's row gets alice's ciphertext (someone with write access to the database).
    pg.psql(
        "vault",
        "UPDATE mcp_oauth_credentials SET sealed = \
         (SELECT sealed FROM mcp_oauth_credentials WHERE end_user = 'alice') WHERE end_user = 'bob'",
    );
    let e = bob.load(&k).unwrap_err();
    let chain = chain(&e);
    assert!(
        chain.contains("altered or copied from another row"),
        "{chain}"
    );
    assert!(!chain.contains("SECRET"), "{chain}");
    // list() skips it (with a warning) instead of failing every command.
    assert!(bob.list().unwrap().is_empty());
}

#[test]
fn keys_rotate() {
    let Some((_pg, url)) = server("keys_rotate") else {
        return;
    };
    let (a, b) = (
        key("https://a.example.com/mcp"),
        key("https://b.example.com/mcp"),
    );
    let old = PgStore::open(&url, options("alice", KeyRing::new(K1))).unwrap();
    old.save(&a, &record("https://a.example.com/mcp", "at-a"))
        .unwrap();
    old.save(&b, &record("https://b.example.com/mcp", "at-b"))
        .unwrap();

    // Only the new key: the rows are unreadable, and the error names the key id.
    let new_only = PgStore::open(&url, options("alice", KeyRing::new(K2))).unwrap();
    let e = chain(&new_only.load(&a).unwrap_err());
    assert!(
        e.contains(old.current_key_id().as_str()) && e.contains("not configured"),
        "{e}"
    );

    // The new key with the old one: reads; a save seals with the new key.
    let rotated = PgStore::open(&url, options("alice", KeyRing::new(K2).with_old_key(K1))).unwrap();
    assert_eq!(
        rotated
            .load(&a)
            .unwrap()
            .unwrap()
            .tokens
            .access_token
            .expose(),
        "at-a"
    );
    rotated
        .save(&a, &record("https://a.example.com/mcp", "at-a2"))
        .unwrap();
    assert!(
        new_only.load(&a).unwrap().is_some(),
        "a save did not seal with the new key"
    );
    assert!(new_only.load(&b).is_err());
    // reencrypt() moves the rest; then the old key can go.
    assert_eq!(rotated.reencrypt().unwrap(), 1);
    assert_eq!(rotated.reencrypt().unwrap(), 0);
    assert_eq!(
        new_only
            .load(&b)
            .unwrap()
            .unwrap()
            .tokens
            .access_token
            .expose(),
        "at-b"
    );
}

#[test]
fn the_schema_is_migrated_once_by_many_workers() {
    let Some((pg, url)) = server("the_schema_is_migrated_once_by_many_workers") else {
        return;
    };
    // Eight workers open a fresh vault at once.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || open(&url, &format!("w{i}")).schema_version().unwrap())
        })
        .collect();
    // The newest schema this code knows: 1 (credentials, clients, leases), 2 (issuer pins).
    for h in handles {
        assert_eq!(h.join().unwrap(), 2);
    }
    assert_eq!(
        pg.psql(
            "vault",
            "SELECT count(*), max(version) FROM mcp_oauth_schema_migrations"
        ),
        "2|2"
    );
    // A newer mcp-oauth migrated it further: this one refuses to write to it.
    pg.psql(
        "vault",
        "INSERT INTO mcp_oauth_schema_migrations (version, description) VALUES (3, 'from the future')",
    );
    match PgStore::open(&url, options("alice", KeyRing::new(K1))) {
        Err(VaultError::NewerSchema { found: 3, known: 2 }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

/// A holder whose connection ends (it died) frees the lock at once: no timer to wait.
#[test]
fn a_dead_holders_lock_is_free_at_once() {
    let Some((pg, url)) = server("a_dead_holders_lock_is_free_at_once") else {
        return;
    };
    let (a, b) = (open(&url, "alice"), open(&url, "alice"));
    let k = key("https://mcp.example.com/mcp");
    let held = a.lock(&k).unwrap();
    assert!(b.try_lock(&k).unwrap().is_none());
    // The holder's connection ends as a killed process's would (its lease row stays).
    pg.psql(
        "vault",
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    );
    let t = Instant::now();
    let _b = b.lock(&k).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        t.elapsed()
    );
    std::mem::forget(held); // its connection is already gone
}

/// The database restarts while a worker holds a credential's lock (maybe with a refresh
/// token on its way to the authorization server): another worker does not take over
/// until the holder saved its result, or the lease expired.
#[test]
fn a_lease_outlives_a_restart_of_the_database() {
    let Some((mut pg, url)) = server("a_lease_outlives_a_restart_of_the_database") else {
        return;
    };
    let k = key("https://mcp.example.com/mcp");
    let a = open(&url, "alice");
    let b = open(&url, "alice");
    a.save(&k, &record("https://mcp.example.com/mcp", "at-1"))
        .unwrap();
    let held = a.lock(&k).unwrap();
    let down = pg.restart();
    eprintln!("[vault] database down for {down:?}");
    assert!(
        b.try_lock(&k).unwrap().is_none(),
        "the lock was taken while its holder may still be redeeming"
    );
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let k = k.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let guard = b.lock(&k).unwrap();
            let seen = b.load(&k).unwrap().unwrap();
            tx.send(t.elapsed()).unwrap();
            drop(guard);
            seen
        })
    };
    assert!(
        rx.recv_timeout(Duration::from_millis(800)).is_err(),
        "took over early"
    );
    // The holder comes back with its result: the save ends the lease.
    a.save(&k, &record("https://mcp.example.com/mcp", "at-2"))
        .unwrap();
    let waited = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter went on");
    eprintln!("[vault] the waiter went on {waited:?} after it started waiting");
    let seen = waiter.join().unwrap();
    assert_eq!(
        seen.tokens.access_token.expose(),
        "at-2",
        "the waiter adopts the result"
    );
    drop(held);
}

/// A holder lost in a restart that never comes back: the lease expires.
#[test]
fn an_abandoned_lease_expires() {
    let Some((mut pg, url)) = server("an_abandoned_lease_expires") else {
        return;
    };
    let k = key("https://mcp.example.com/mcp");
    let short = |user| {
        let mut o = options(user, KeyRing::new(K1));
        o.lease = Duration::from_secs(2);
        PgStore::open(&url, o).unwrap()
    };
    let (a, b) = (short("alice"), short("alice"));
    let held = a.lock(&k).unwrap();
    let taken = Instant::now();
    pg.restart();
    std::mem::forget(held); // the holder never comes back
    let _b = b.lock(&k).unwrap();
    let after = taken.elapsed();
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(15),
        "took the lock {after:?} after the lease began (lease 2 s)"
    );
}

/// While the database is away, operations wait for it (up to the patience), then fail
/// with an error that says so.
#[test]
fn operations_wait_for_the_database() {
    let Some((mut pg, url)) = server("operations_wait_for_the_database") else {
        return;
    };
    let k = key("https://mcp.example.com/mcp");
    let store = open(&url, "alice");
    store
        .save(&k, &record("https://mcp.example.com/mcp", "at-1"))
        .unwrap();
    pg.crash();
    let reader = {
        let (store, k) = (store.clone(), k.clone());
        std::thread::spawn(move || store.load(&k))
    };
    std::thread::sleep(Duration::from_millis(1500));
    pg.run();
    let got = reader.join().unwrap().unwrap().unwrap();
    assert_eq!(got.tokens.access_token.expose(), "at-1");

    pg.crash();
    let mut o = options("alice", KeyRing::new(K1));
    o.patience = Duration::from_secs(1);
    let t = Instant::now();
    let e = PgStore::open(&url, o).unwrap_err();
    assert!(matches!(e, VaultError::Unavailable { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(e.to_string().contains("unreachable"), "{e}");
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
