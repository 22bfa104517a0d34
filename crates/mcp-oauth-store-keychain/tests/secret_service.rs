//! The keychain store against a real Secret Service: gnome-keyring-daemon in a D-Bus
//! session of its own (`dbus-run-session`; Debian's gnome-keyring, installed by
//! scripts/bootstrap), with a login keyring unlocked by a password. The test re-runs
//! itself inside that session; there it checks the store contract, secrets at rest, the
//! migration from the file store, a tampered file, then a locked keychain and an absent
//! one (a session bus without a Secret Service): the fallback to files when nothing is
//! sealed, a clear error (never a silently empty store) when something is.
#![cfg(all(unix, not(target_os = "macos")))]

use mcp_oauth::store::{ClientKey, CredentialKey, CredentialStore, FileStore};
use mcp_oauth_store_keychain::{Choice, KeychainError, KeychainStore, choose};
use mcp_oauth_testkit::store_contract::{self, client, record};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const INSIDE: &str = "MCP_OAUTH_TEST_IN_SECRET_SERVICE";
const SCENARIO: &str = "MCP_OAUTH_TEST_SCENARIO";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Re-runs this test binary (only `test`) with `env`, returns (success, output).
fn rerun(test: &str, env: &[(&str, &str)], wrap: Option<&str>) -> (bool, String) {
    let me = std::env::current_exe().unwrap();
    let inner = format!(
        "{} --exact {test} --nocapture --test-threads 1",
        me.display()
    );
    let mut cmd = match wrap {
        Some(script) => {
            let mut c = Command::new("dbus-run-session");
            c.args(["--", "sh", "-c", &format!("{script}\nexec {inner}")]);
            c
        }
        None => {
            let mut c = Command::new(&me);
            c.args(["--exact", test, "--nocapture", "--test-threads", "1"]);
            c
        }
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The session: gnome-keyring with an unlocked login keyring, then the scenarios.
#[test]
fn keychain_store_on_a_real_secret_service() {
    if std::env::var_os(INSIDE).is_some() {
        return inside();
    }
    if !(have("dbus-run-session") && have("gnome-keyring-daemon")) {
        if std::env::var("MCP_OAUTH_REQUIRE_REAL").as_deref() == Ok("1") {
            panic!("gnome-keyring-daemon / dbus-run-session are missing; run scripts/bootstrap");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED keychain_store_on_a_real_secret_service: no gnome-keyring-daemon or \
             dbus-run-session (scripts/bootstrap installs them)"
        );
        return;
    }
    let t = Instant::now();
    let (ok, out) = rerun(
        "keychain_store_on_a_real_secret_service",
        &[(INSIDE, "1")],
        Some("printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1"),
    );
    eprintln!(
        "[secret_service] inside the session ({:?}):\n{out}",
        t.elapsed()
    );
    assert!(ok, "the scenarios failed inside the Secret Service session");
}

fn key() -> CredentialKey {
    CredentialKey::new("https://mcp.example.com/mcp")
}

fn inside() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("absent-empty") => return absent(false),
        Ok("absent-sealed") => return absent(true),
        _ => {}
    }
    let tmp = tempfile::tempdir().unwrap();

    // The contract, on two stores of one directory.
    let dir = tmp.path().join("contract");
    let (a, moved) = KeychainStore::open(&dir).unwrap();
    assert_eq!(moved, 0);
    let (b, _) = KeychainStore::open(&dir).unwrap();
    store_contract::run_all(&a, Box::new(b));
    eprintln!("contract: ok");

    // Secrets at rest: nothing in the clear on disk; the key is in the keychain.
    let dir = tmp.path().join("at-rest");
    let (store, _) = KeychainStore::open(&dir).unwrap();
    store
        .save(
            &key(),
            &record("https://mcp.example.com/mcp", "at-SECRET-1"),
        )
        .unwrap();
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    let on_disk = all_bytes(&dir);
    for secret in ["at-SECRET-1", "refresh-token-value", "client-secret-value"] {
        assert!(
            !on_disk.contains(secret),
            "{secret} is on disk in the clear"
        );
    }
    assert!(
        on_disk.contains("https://mcp.example.com/mcp"),
        "whose it is stays readable"
    );
    let entry = keyring::Entry::new(
        mcp_oauth_store_keychain::SERVICE,
        &mcp_oauth_store_keychain::key_account(&dir),
    )
    .unwrap();
    assert_eq!(
        entry.get_password().unwrap().len(),
        44,
        "a base64 32-byte key"
    );
    eprintln!("at rest: ok");

    // A file moved onto another key's name does not open.
    let other = CredentialKey::new("https://other.example.com/mcp");
    store
        .save(&other, &record("https://other.example.com/mcp", "at-other"))
        .unwrap();
    let creds = dir.join("keychain/credentials");
    let files: Vec<_> = std::fs::read_dir(&creds)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2);
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    let (mine, theirs): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|p| text(p).contains("\"https://mcp.example.com/mcp\""));
    // key()'s sealed record, renamed to the other key, in the other key's file.
    let forged = text(mine[0]).replace(
        "https://mcp.example.com/mcp",
        "https://other.example.com/mcp",
    );
    std::fs::write(theirs[0], forged).unwrap();
    let e = store.load(&other).unwrap_err();
    assert!(e.to_string().contains("keychain store"), "{e}");
    assert!(format!("{e:?}").contains("Tampered"), "{e:?}");
    assert!(
        store.list().unwrap().iter().all(|(k, _)| k != &other),
        "list showed a forged entry"
    );
    eprintln!("tampering: ok");

    // Migration: the file store's credentials move in, once.
    let dir = tmp.path().join("migrate");
    let plain = FileStore::new(dir.clone());
    plain
        .save(&key(), &record("https://mcp.example.com/mcp", "at-plain"))
        .unwrap();
    plain
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    match choose(&dir).unwrap() {
        Choice::Keychain(store, moved) => {
            assert_eq!(moved, 2);
            assert_eq!(
                store
                    .load(&key())
                    .unwrap()
                    .unwrap()
                    .tokens
                    .access_token
                    .expose(),
                "at-plain"
            );
            assert!(store.load_client(&ck).unwrap().is_some());
        }
        Choice::Files(_, why) => panic!("fell back to files: {why}"),
    }
    assert!(plain.list().unwrap().is_empty(), "the plain file stayed");
    assert!(plain.load_client(&ck).unwrap().is_none());
    assert!(!all_bytes(&dir).contains("at-plain"));
    let Choice::Keychain(_, again) = choose(&dir).unwrap() else {
        panic!("second choice")
    };
    assert_eq!(again, 0, "migrated twice");
    eprintln!("migration: ok");

    // An absent keychain (a bus without a Secret Service): files when nothing is sealed,
    // an error when something is.
    let sealed_dir = tmp.path().join("at-rest");
    for (scenario, dir) in [
        ("absent-empty", tmp.path().join("fresh")),
        ("absent-sealed", sealed_dir.clone()),
    ] {
        let (ok, out) = rerun(
            "keychain_store_on_a_real_secret_service",
            &[
                (INSIDE, "1"),
                (SCENARIO, scenario),
                ("MCP_OAUTH_TEST_DIR", dir.to_str().unwrap()),
                ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
            ],
            None,
        );
        assert!(ok, "{scenario}:\n{out}");
    }
    eprintln!("absent keychain: ok");

    // A locked keychain: no prompt can be shown here, so the key cannot be read.
    let lock = Command::new("dbus-send")
        .args([
            "--session",
            "--dest=org.freedesktop.secrets",
            "--print-reply",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "lock: {}",
        String::from_utf8_lossy(&lock.stderr)
    );
    let t = Instant::now();
    match choose(&sealed_dir) {
        Err(KeychainError::Unavailable(e)) => {
            eprintln!("locked, sealed: {e} (after {:?})", t.elapsed())
        }
        Err(e) => panic!("locked, sealed: another error: {e}"),
        Ok(c) => panic!("locked, sealed: {c:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "waited {:?} for a locked keychain",
        t.elapsed()
    );
    assert!(
        all_bytes(&sealed_dir).contains("https://mcp.example.com/mcp"),
        "the sealed credentials are still there"
    );
    match choose(&tmp.path().join("fresh-locked")).unwrap() {
        Choice::Files(_, why) => eprintln!("locked, nothing sealed: files ({why})"),
        Choice::Keychain(..) => panic!("used a locked keychain"),
    }
    eprintln!("locked keychain: ok");
}

/// In a process whose session bus does not exist.
fn absent(sealed: bool) {
    let dir = std::path::PathBuf::from(std::env::var("MCP_OAUTH_TEST_DIR").unwrap());
    let t = Instant::now();
    let choice = choose(&dir);
    eprintln!(
        "absent keychain, sealed {sealed}: {:?} after {:?}",
        choice.as_ref().map(|_| ()),
        t.elapsed()
    );
    match (sealed, choice) {
        (false, Ok(Choice::Files(store, why))) => {
            assert!(why.contains("no usable OS keychain"), "{why}");
            assert_eq!(store.dir(), dir);
        }
        (true, Err(KeychainError::Unavailable(_))) => {}
        (s, other) => panic!("sealed {s}: {other:?}"),
    }
}

fn all_bytes(dir: &Path) -> String {
    let mut s = String::new();
    for e in walk(dir) {
        s.push_str(&String::from_utf8_lossy(
            &std::fs::read(e).unwrap_or_default(),
        ));
    }
    s
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
