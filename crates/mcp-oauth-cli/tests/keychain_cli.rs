//! `mcp-oauth` choosing the keychain store on its own, against a real Secret Service
//! (gnome-keyring-daemon in a D-Bus session of its own; the test re-runs itself inside
//! `dbus-run-session`): the keychain where it works (the file store's credentials moved
//! in, said once), the file store where none works (status says why), and an error,
//! never an empty store, when sealed credentials exist but the keychain cannot be reached.
#![cfg(target_os = "linux")]

use mcp_oauth::store::{CredentialKey, CredentialRecord, CredentialStore, FileStore};
use std::path::Path;
use std::process::{Command, Output};

const INSIDE: &str = "MCP_OAUTH_TEST_IN_SECRET_SERVICE";
const SERVER: &str = "https://mcp.example.com/mcp";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_keychain_is_chosen_where_it_works() {
    if std::env::var_os(INSIDE).is_none() {
        if !(have("dbus-run-session") && have("gnome-keyring-daemon")) {
            assert!(
                std::env::var("MCP_OAUTH_REQUIRE_REAL").as_deref() != Ok("1"),
                "gnome-keyring-daemon / dbus-run-session are missing; run scripts/bootstrap"
            );
            eprintln!("SKIPPED the_keychain_is_chosen_where_it_works: no gnome-keyring-daemon");
            return;
        }
        let me = std::env::current_exe().unwrap();
        let out = Command::new("dbus-run-session")
            .args(["--", "sh", "-c"])
            .arg(format!(
                "printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n\
                 exec {} --exact the_keychain_is_chosen_where_it_works --nocapture",
                me.display()
            ))
            .env(INSIDE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        eprintln!("{text}");
        assert!(out.status.success(), "inside the Secret Service session");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = data.join("mcp-oauth");
    // A file store from before, with one credential.
    FileStore::new(dir.clone())
        .save(&CredentialKey::new(SERVER), &record())
        .unwrap();

    let o = run(tmp.path(), &["status"], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains(SERVER), "{out}");
    assert!(
        out.contains("Store: keychain store ")
            && out.contains("the default where the OS keychain works"),
        "{out}"
    );
    assert!(err.contains("moved 1 stored credential"), "{err}");
    assert!(
        FileStore::new(dir.clone()).list().unwrap().is_empty(),
        "the plain file stayed"
    );
    // Once.
    let (_, err) = text(&run(tmp.path(), &["status"], &[]));
    assert!(!err.contains("moved"), "{err}");

    // No Secret Service on this bus: with nothing sealed, the file store, and why.
    let absent = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    let fresh = tempfile::tempdir().unwrap();
    let (out, err) = text(&run(fresh.path(), &["status"], &absent));
    assert!(
        out.contains("store: file store ") && out.contains("no usable OS keychain"),
        "{out}{err}"
    );
    // With sealed credentials: an error that says what to do, not an empty store.
    let o = run(tmp.path(), &["status"], &absent);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        err.contains("the keychain store cannot be used") && err.contains("--store file"),
        "{err}"
    );
    assert!(!out.contains("No stored credentials"), "{out}");
    let o = run(tmp.path(), &["status"], &[]);
    assert!(text(&o).0.contains(SERVER), "the credential is still there");
}

fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("MCP_OAUTH_CONFIG", home.join("absent.toml"))
        .env("NO_COLOR", "1")
        .env_remove("MCP_OAUTH_HOME")
        .env_remove("MCP_OAUTH_STORE")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn record() -> CredentialRecord {
    serde_json::from_value(serde_json::json!({
        "server_url": SERVER,
        "resource": SERVER,
        "issuer": "https://auth.example.com",
        "token_endpoint": "https://auth.example.com/token",
        "client": {
            "issuer": "https://auth.example.com",
            "redirect_uri": "http://127.0.0.1:33418/callback",
            "client_id": "client-123",
            "token_endpoint_auth_method": "none",
            "kind": "dynamic",
            "registered_at": 1700000000u64
        },
        "tokens": {
            "access_token": "at-SECRET-keychain",
            "token_type": "Bearer",
            "refresh_token": "rt-SECRET-keychain",
            "expires_at": 4000000000u64,
            "obtained_at": 1700000000u64
        }
    }))
    .unwrap()
}
