use super::*;
use crate::store::test_fixtures::{client, record};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Only a secret the authorization server issued is written; a configured secret that
/// an older version stored with a pre-registered client is read as absent (the
/// configured source replaces it) and gone at the next write. The file stays readable.
#[test]
fn a_pre_registered_clients_secret_is_never_kept() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let mut rec = record(&key.server_url, "at-1");
    rec.client.kind = crate::store::RegistrationKind::PreRegistered;
    rec.client.client_secret = Some(crate::secret::ClientSecret::new("configured-secret"));
    store.save(&key, &rec).unwrap();
    let text = fs::read_to_string(cred_path(&store, &key)).unwrap();
    assert!(!text.contains("configured-secret"), "{text}");

    // A file from an older version, which kept it.
    let old = text.replace(
        r#""client_id": "client-123","#,
        r#""client_id": "client-123",
  "client_secret": "configured-secret","#,
    );
    assert!(old.contains("configured-secret"));
    fs::write(cred_path(&store, &key), &old).unwrap();
    let loaded = store.load(&key).unwrap().unwrap();
    assert_eq!(loaded.client.client_secret, None);
    assert_eq!(loaded.tokens, rec.tokens);

    // A secret from dynamic registration is kept.
    let dcr = record(&key.server_url, "at-2");
    store.save(&key, &dcr).unwrap();
    let loaded = store.load(&key).unwrap().unwrap();
    assert_eq!(
        loaded.client.client_secret.as_ref().map(|s| s.expose()),
        Some("client-secret-value")
    );
}

/// Issuer pins live beside the clients, in their own directory, and a logout (the
/// credential's removal) leaves them.
#[test]
fn issuer_pins_outlive_the_credentials() {
    use crate::store::{IssuerPin, IssuerPinKey};
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let pin_key = IssuerPinKey {
        server_url: key.server_url.clone(),
        client_id: "svc".into(),
    };
    assert_eq!(store.load_issuer_pin(&pin_key).unwrap(), None);
    let pin = IssuerPin {
        issuer: "https://as.example.com".into(),
        pinned_at: 1_700_000_000,
        configured: false,
    };
    store.save_issuer_pin(&pin_key, &pin).unwrap();
    store.save(&key, &record(&key.server_url, "at")).unwrap();
    assert!(store.remove(&key).unwrap());
    let other = FileStore::new(store.dir().to_path_buf());
    assert_eq!(other.load_issuer_pin(&pin_key).unwrap(), Some(pin));
    assert_eq!(names_in(&store.dir().join(PINS_DIR)).len(), 1);
    let another = IssuerPinKey {
        client_id: "other".into(),
        ..pin_key
    };
    assert_eq!(store.load_issuer_pin(&another).unwrap(), None);
}

fn store() -> (tempfile::TempDir, FileStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::new(tmp.path().join("home"));
    (tmp, store)
}

fn cred_path(store: &FileStore, key: &CredentialKey) -> PathBuf {
    store.path_in(CREDENTIALS_DIR, &file_name(key).unwrap(), "json")
}

fn store_error(e: Error) -> (String, String) {
    match e {
        Error::Store { path, message, .. } => (path, message),
        other => panic!("expected a store error, got {other:?}"),
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn missing_store_is_empty() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    assert_eq!(store.load(&key).unwrap(), None);
    assert!(!store.remove(&key).unwrap());
    assert!(store.list().unwrap().is_empty());
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    assert_eq!(store.load_client(&ck).unwrap(), None);
    assert!(!store.remove_client(&ck).unwrap());
    assert!(!store.dir().exists(), "reads must not create the directory");
}

#[test]
fn layout_and_format() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();

    let name = file_name(&key).unwrap();
    assert_eq!(name.len(), 32);
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // Canonical JSON of the key: `{"server_url":"..."}`.
    let expected: String = Sha256::digest(br#"{"server_url":"https://mcp.example.com/mcp"}"#)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(name, expected);

    let path = store.dir().join("credentials").join(format!("{name}.json"));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["key"]["server_url"], "https://mcp.example.com/mcp");
    assert_eq!(json["record"]["tokens"]["access_token"], "at");

    // What other tests do: edit `record.tokens.expires_at` in place.
    let mut json = json;
    json["record"]["tokens"]["expires_at"] = serde_json::json!(42);
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(
        store.load(&key).unwrap().unwrap().tokens.expires_at,
        Some(42)
    );

    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    let cpath = store
        .dir()
        .join("clients")
        .join(format!("{}.json", file_name(&ck).unwrap()));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(cpath).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["key"]["issuer"], "https://auth.example.com");
    assert_eq!(json["registration"]["client_id"], "client-123");

    drop(store.lock(&key).unwrap());
    assert!(
        store
            .dir()
            .join("locks")
            .join(format!("{name}.lock"))
            .is_file()
    );
}

#[test]
fn no_temp_files_remain() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    for i in 0..3 {
        store
            .save(
                &key,
                &record("https://mcp.example.com/mcp", &format!("at{i}")),
            )
            .unwrap();
    }
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    assert_eq!(names_in(store.dir()), vec!["clients", "credentials"]);
    assert_eq!(
        names_in(&store.dir().join("credentials")),
        vec![format!("{}.json", file_name(&key).unwrap())]
    );
    assert_eq!(
        names_in(&store.dir().join("clients")),
        vec![format!("{}.json", file_name(&ck).unwrap())]
    );
}

#[cfg(unix)]
#[test]
fn private_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // tempfile's own default, which the store relies on as well as setting it.
    let tmp = tempfile::tempdir().unwrap();
    let named = tempfile::NamedTempFile::new_in(tmp.path()).unwrap();
    assert_eq!(mode(named.path()), 0o600);

    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    drop(store.lock(&key).unwrap());

    for d in ["", "credentials", "clients", "locks"] {
        assert_eq!(mode(&store.dir().join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&cred_path(&store, &key)), 0o600);
    assert_eq!(
        mode(&store.path_in(CLIENTS_DIR, &file_name(&ck).unwrap(), "json")),
        0o600
    );
    assert_eq!(
        mode(&store.path_in(LOCKS_DIR, &file_name(&key).unwrap(), "lock")),
        0o600
    );

    // An existing subdirectory that is too open is tightened at the next write.
    fs::set_permissions(
        store.dir().join("credentials"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at2"))
        .unwrap();
    assert_eq!(mode(&store.dir().join("credentials")), 0o700);
    assert_eq!(mode(&cred_path(&store, &key)), 0o600);
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn existing_store_root_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    fs::create_dir(store.dir()).unwrap();
    fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    assert_eq!(
        format!("{:o}", mode(store.dir())),
        "700",
        "tightened by a write"
    );
    // A read tightens it too: it is the same directory, with the same secrets.
    fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o750)).unwrap();
    assert!(store.load(&key).unwrap().is_some());
    assert_eq!(
        format!("{:o}", mode(store.dir())),
        "700",
        "tightened by a read"
    );
}

/// A directory that belongs to another user: as root, a fresh one given to `nobody`;
/// otherwise `/`, which belongs to root.
#[cfg(unix)]
fn directory_of_another_user(tmp: &Path) -> PathBuf {
    if rustix::process::geteuid().is_root() {
        let dir = tmp.join("foreign");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        dir
    } else {
        PathBuf::from("/")
    }
}

#[cfg(unix)]
#[test]
fn store_of_another_user_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = directory_of_another_user(tmp.path());
    let store = FileStore::new(foreign.clone());
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let save = store.save(&key, &record("https://mcp.example.com/mcp", "at"));
    let load = store.load(&key);
    for err in [save.unwrap_err(), load.unwrap_err()] {
        let (p, message) = store_error(err);
        assert_eq!(p, foreign.display().to_string());
        assert!(
            message.contains("belongs to another user") && message.contains(HOME_ENV),
            "{message}"
        );
    }
    assert!(
        !foreign.join("credentials").exists(),
        "nothing written there"
    );
}

#[cfg(unix)]
#[test]
fn subdirectory_of_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    let sub = store.dir().join(CREDENTIALS_DIR);
    std::os::unix::fs::chown(&sub, Some(65534), Some(65534)).unwrap();
    let (p, message) = store_error(store.load(&key).unwrap_err());
    assert_eq!(p, sub.display().to_string());
    assert!(message.contains("belongs to another user"), "{message}");
}

#[cfg(unix)]
#[test]
fn symlinked_store_files_are_refused() {
    let (tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    // The credential file, moved elsewhere and replaced by a link to it.
    let path = cred_path(&store, &key);
    let elsewhere = tmp.path().join("planted.json");
    fs::rename(&path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let (p, message) = store_error(store.load(&key).unwrap_err());
    assert_eq!(p, path.display().to_string());
    assert!(
        message.contains("symbolic link") && message.contains("delete the link"),
        "{message}"
    );
    assert!(store.list().unwrap().is_empty(), "list skips it");
    // A write replaces the link itself; the file it pointed to is left alone.
    let planted = fs::read(&elsewhere).unwrap();
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at2"))
        .unwrap();
    assert!(!fs::symlink_metadata(&path).unwrap().is_symlink());
    assert_eq!(fs::read(&elsewhere).unwrap(), planted);

    // The lock file, likewise.
    let lock = store.path_in(LOCKS_DIR, &file_name(&key).unwrap(), "lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &lock).unwrap();
    let err = store.lock(&key).expect_err("a linked lock file is refused");
    let (p, message) = store_error(err);
    assert_eq!(p, lock.display().to_string());
    assert!(message.contains("symbolic link"), "{message}");
}

#[test]
fn corrupt_file_is_a_clear_error() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let other = CredentialKey::new("https://other.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    store
        .save(&other, &record("https://other.example.com/mcp", "at"))
        .unwrap();
    let path = cred_path(&store, &key);

    for garbage in [
        &b"{\"version\":1,\"key\":{\"server_url\":"[..], // truncated
        b"not json at all",
        b"[1,2,3]",
        b"{\"key\":{\"server_url\":\"https://mcp.example.com/mcp\"}}",
        b"{\"version\":1,\"key\":{\"server_url\":\"https://mcp.example.com/mcp\"},\"record\":{}}",
    ] {
        fs::write(&path, garbage).unwrap();
        let (p, message) = store_error(store.load(&key).unwrap_err());
        assert_eq!(p, path.display().to_string());
        assert!(message.contains("mcp-oauth logout"), "{message}");
        let shown = Error::store(p, message).to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(path.exists(), "a corrupt file must not be deleted by load");
    }

    // `list` skips it and still shows the rest.
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, other);

    // `remove` (what logout does) clears it.
    assert!(store.remove(&key).unwrap());
    assert!(!path.exists());
    assert_eq!(store.load(&key).unwrap(), None);
}

#[test]
fn corrupt_client_file_is_absent() {
    let (_tmp, store) = store();
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    let path = store.path_in(CLIENTS_DIR, &file_name(&ck).unwrap(), "json");
    fs::write(&path, "{").unwrap();
    // Absent (with a warning): the next registration replaces it (file/scan.rs).
    assert_eq!(store.load_client(&ck).unwrap(), None);
    assert!(
        path.exists(),
        "a corrupt file is replaced, not deleted, by load"
    );
}

#[test]
fn an_unknown_auth_method_in_a_stored_client_is_named() {
    let (_tmp, store) = store();
    let ck = ClientKey {
        issuer: "https://auth.example.com".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
    };
    store
        .save_client(&ck, &client("https://auth.example.com"))
        .unwrap();
    let path = store.path_in(CLIENTS_DIR, &file_name(&ck).unwrap(), "json");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""token_endpoint_auth_method": "client_secret_basic""#));
    fs::write(
        &path,
        text.replace("client_secret_basic", "tls_client_auth"),
    )
    .unwrap();
    // A client file is then unusable: treated as absent (the next registration
    // replaces it), and named with the reason where the store is scanned.
    assert!(store.load_client(&ck).unwrap().is_none());
    let scan = store.scan_clients().unwrap();
    assert_eq!(scan.unreadable.len(), 1);
    let reason = &scan.unreadable[0].reason;
    assert!(
        reason.contains("token_endpoint_auth_method tls_client_auth is not supported"),
        "{reason}"
    );
}

#[test]
fn parse_errors_do_not_quote_values() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    let path = cred_path(&store, &key);
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["record"]["tokens"]["expires_at"] = serde_json::json!("sekrit-token-value");
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let (_, message) = store_error(store.load(&key).unwrap_err());
    assert!(!message.contains("sekrit"), "{message}");
    assert!(message.contains("record"), "{message}");

    // Missing fields are named (no value to leak there).
    json["record"]["tokens"]
        .as_object_mut()
        .unwrap()
        .remove("token_type");
    json["record"]["tokens"]["expires_at"] = serde_json::json!(1);
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let (_, message) = store_error(store.load(&key).unwrap_err());
    assert!(message.contains("token_type"), "{message}");
}

#[test]
fn newer_format_version_is_reported() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "at"))
        .unwrap();
    let path = cred_path(&store, &key);
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["version"] = serde_json::json!(2);
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let (_, message) = store_error(store.load(&key).unwrap_err());
    assert!(message.contains("newer version"), "{message}");
}

#[test]
fn file_of_another_key_is_absent() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let other = CredentialKey::new("https://other.example.com/mcp");
    store
        .save(&other, &record("https://other.example.com/mcp", "at"))
        .unwrap();
    // Simulate a hash collision: `other`'s file under `key`'s name.
    fs::copy(cred_path(&store, &other), cred_path(&store, &key)).unwrap();
    assert_eq!(store.load(&key).unwrap(), None);
    assert!(!store.remove(&key).unwrap());
    assert!(
        cred_path(&store, &key).exists(),
        "must not delete another key's file"
    );
    // `list` shows each key once (the misnamed copy is skipped).
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn not_a_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let store = FileStore::new(file.clone());
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    let (p, message) = store_error(
        store
            .save(&key, &record("https://mcp.example.com/mcp", "at"))
            .unwrap_err(),
    );
    assert_eq!(p, file.display().to_string());
    assert!(message.contains("not a directory"), "{message}");
}

#[test]
fn io_error_messages_are_actionable() {
    let path = Path::new("/x/credentials/abc.json");
    let (p, m) = store_error(io_err(
        path,
        "reading",
        io::Error::from(io::ErrorKind::PermissionDenied),
    ));
    assert_eq!(p, "/x/credentials/abc.json");
    assert!(m.contains("permission denied while reading"), "{m}");
    assert!(m.contains("chmod") && m.contains(HOME_ENV), "{m}");
    let (_, m) = store_error(io_err(
        path,
        "replacing",
        io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
    ));
    assert!(m.contains("read-only") && m.contains(HOME_ENV), "{m}");
}

#[test]
fn default_location_rules() {
    let abs = std::env::temp_dir().join("mcp-oauth-home");
    assert_eq!(
        default_dir(Some(abs.clone().into_os_string())).unwrap(),
        abs
    );
    let rel = default_dir(Some("relative/home".into())).unwrap();
    assert!(
        rel.is_absolute() && rel.ends_with("relative/home"),
        "{rel:?}"
    );
    if let Some(data) = dirs::data_dir() {
        assert_eq!(default_dir(None).unwrap(), data.join("mcp-oauth"));
        assert_eq!(
            default_dir(Some(OsString::new())).unwrap(),
            data.join("mcp-oauth")
        );
    }
}

#[test]
fn concurrent_writers_never_leave_a_torn_file() {
    let (_tmp, store) = store();
    let key = CredentialKey::new("https://mcp.example.com/mcp");
    store
        .save(&key, &record("https://mcp.example.com/mcp", "initial"))
        .unwrap();
    let dir = store.dir().to_path_buf();
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..8)
        .map(|t| {
            let dir = dir.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                let store = FileStore::new(dir); // as another process would
                for i in 0..20 {
                    // Vary the length so a torn write would show.
                    let token = format!("t{t}-{i}-{}", "x".repeat(t * 100 + i));
                    store
                        .save(&key, &record("https://mcp.example.com/mcp", &token))
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (dir, key, done) = (dir.clone(), key.clone(), done.clone());
        std::thread::spawn(move || {
            let store = FileStore::new(dir);
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let rec = store
                    .load(&key)
                    .expect("a reader must never see a torn file");
                assert!(rec.is_some());
                reads += 1;
            }
            reads
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert!(store.load(&key).unwrap().is_some());
    assert_eq!(
        names_in(&dir.join("credentials")).len(),
        1,
        "temp files left behind"
    );
}

#[test]
fn store_lock_is_send_sync_static() {
    fn assert_bounds<T: Send + Sync + 'static>(_: &T) {}
    let (_tmp, store) = store();
    let guard = store
        .lock(&CredentialKey::new("https://mcp.example.com/mcp"))
        .unwrap();
    assert_bounds(&guard);
    assert_bounds(&store);
}
