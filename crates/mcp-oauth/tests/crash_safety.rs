//! Crash safety of the file store (issue #7): a process killed with SIGKILL at any point
//! of a store write leaves the old or the new credential, never a broken file.
//!
//! The test runs this very test binary again as a child (`child_store_writer`, which
//! does nothing unless `MCP_OAUTH_CRASH_DIR` is set) that saves records of varying size
//! as fast as it can and prints each number once it is saved; the parent kills it with
//! SIGKILL at a random moment, then checks the store: readable, and holding the last
//! record the child confirmed or the one it was writing. Bounded: 150 kills or 45 s.
//!
//! What SIGKILL tests is the atomicity of the write (temporary file + rename); the
//! `fsync`s that make it durable across a power loss cannot be tested this way.
#![cfg(unix)]

use mcp_oauth::secret::{AccessToken, RefreshToken};
use mcp_oauth::store::{
    ClientAuthMethod, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore,
    FileStore, RegistrationKind, TokenSet,
};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DIR_ENV: &str = "MCP_OAUTH_CRASH_DIR";
const START_ENV: &str = "MCP_OAUTH_CRASH_START";
const SERVER: &str = "https://mcp.example.com/mcp";

fn record(i: u64) -> CredentialRecord {
    // Sizes from 1 KB to 160 KB, so that writes take different times.
    let pad = "x".repeat(1024 + (i % 8) as usize * 20 * 1024);
    CredentialRecord {
        server_url: SERVER.into(),
        resource: SERVER.into(),
        issuer: "https://as.example.com".into(),
        token_endpoint: "https://as.example.com/token".into(),
        revocation_endpoint: None,
        resource_indicator: Some(SERVER.into()),
        client: ClientRegistration {
            issuer: "https://as.example.com".into(),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            client_id: "c".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::None,
            kind: RegistrationKind::Dynamic,
            registered_at: 1,
        },
        tokens: TokenSet {
            access_token: AccessToken::new(format!("at-{i}")),
            token_type: "Bearer".into(),
            refresh_token: Some(RefreshToken::new(format!("rt-{i}"))),
            expires_at: Some(i),
            scope: Some(pad),
            requested_scope: None,
            obtained_at: i,
        },
        grant: "authorization_code".into(),
        dpop_key: None,
    }
}

/// The child: saves record after record until killed.
#[test]
fn child_store_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let store = FileStore::new(dir.into());
    let key = CredentialKey::new(SERVER);
    let mut out = std::io::stdout().lock();
    for i in start..start + 1_000_000 {
        store.save(&key, &record(i)).unwrap();
        writeln!(out, "saved {i}").unwrap();
        out.flush().unwrap();
    }
}

fn index_of(rec: &CredentialRecord) -> u64 {
    rec.tokens
        .access_token
        .expose()
        .trim_start_matches("at-")
        .parse()
        .unwrap()
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("credentials"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn sigkill_at_random_points_of_store_writes_leaves_old_or_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = FileStore::new(dir.clone());
    let key = CredentialKey::new(SERVER);
    store.save(&key, &record(0)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let started = Instant::now();
    let (mut kills, mut confirmed_last, mut written_unconfirmed, mut before_first) = (0, 0, 0, 0);
    let mut current = 0u64;
    let mut total_saves = 0u64;
    while kills < 150 && started.elapsed() < Duration::from_secs(45) {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_store_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, &dir)
            .env(START_ENV, (current + 1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                // The first line follows libtest's "test child_store_writer ... ".
                if let Some(n) = line.split("saved ").nth(1).map(str::trim) {
                    last = Some(n.parse::<u64>().unwrap());
                }
                line.clear();
            }
            last
        });
        // Let it write for a random while (the first save comes a few ms after start).
        std::thread::sleep(Duration::from_millis(5 + rand(40)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let last = reader.join().unwrap();
        let rec = store
            .load(&key)
            .unwrap_or_else(|e| panic!("kill {kills}: the store is broken: {e}"))
            .expect("a record is stored");
        let got = index_of(&rec);
        assert_eq!(rec, record(got), "kill {kills}: the record is whole");
        match last {
            // Killed before its first save completed: the previous record, or the first
            // one written.
            None => {
                assert!(
                    got == current || got == current + 1,
                    "kill {kills}: {got} after {current}"
                );
                before_first += 1;
            }
            Some(l) => {
                assert!(
                    got == l || got == l + 1,
                    "kill {kills}: stored {got}, last confirmed {l}"
                );
                if got == l {
                    confirmed_last += 1;
                } else {
                    written_unconfirmed += 1;
                }
                total_saves += l - current;
            }
        }
        current = got;
    }
    let leftovers = temp_files(&dir);
    eprintln!(
        "[crash-safety] {kills} SIGKILLs in {:?} over {total_saves} confirmed saves: stored = last confirmed {confirmed_last}, \
         written but not yet confirmed {written_unconfirmed}, killed before the first save {before_first}; \
         broken files 0; temporary files left behind {leftovers}",
        started.elapsed()
    );
    assert!(kills >= 30, "enough kills ({kills})");
    // The store still works, and list() ignores leftover temporary files.
    store.save(&key, &record(current + 1)).unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
    // Leftovers hold (old) credentials: once stale, the next save removes them.
    let old = SystemTime::now() - Duration::from_secs(600);
    for e in std::fs::read_dir(dir.join("credentials"))
        .unwrap()
        .flatten()
    {
        if e.file_name().to_string_lossy().ends_with(".tmp") {
            std::fs::File::options()
                .write(true)
                .open(e.path())
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
    store.save(&key, &record(current + 2)).unwrap();
    assert_eq!(temp_files(&dir), 0, "stale temporary files are swept");
    assert_eq!(index_of(&store.load(&key).unwrap().unwrap()), current + 2);
}
