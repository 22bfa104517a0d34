//! The files of a [`FileStore`] that cannot be used, found and removed on purpose.
//!
//! `status` lists them (a corrupt credential hidden in a warning looked like "not logged
//! in"), `logout` removes them, and a corrupt client registration is treated as absent
//! so that the next registration replaces it. The key of a damaged file is recovered
//! when the start of the file still holds it (a file is usually cut short at its end),
//! and trusted only when it gives the file's name back.

use super::{
    CLIENTS_DIR, CREDENTIALS_DIR, FileStore, Kind, Problem, file_name, file_name_matches, io_err,
    logout_command, parse_entry_as, read_file, shell_word, sync_dir,
};
use crate::error::Result;
use crate::store::{ClientKey, ClientRegistration, CredentialKey, CredentialRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A file in the store that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableFile<K = CredentialKey> {
    /// Where the file is.
    pub path: PathBuf,
    /// What is wrong with it, in words, without any value from the file.
    pub reason: String,
    /// Whose it is, when the file still says so (and its name agrees).
    pub key: Option<K>,
}

impl<K> UnreadableFile<K> {
    /// The command that removes it, for a user to paste.
    pub fn rm_command(&self) -> String {
        format!("rm {}", shell_word(&self.path.to_string_lossy()))
    }
}

impl UnreadableFile<CredentialKey> {
    /// The command that fixes it: `mcp-oauth logout <server>` when the file says whose it
    /// is (logout removes it), else `rm <path>`.
    pub fn fix_command(&self) -> String {
        match &self.key {
            Some(key) => logout_command(key),
            None => self.rm_command(),
        }
    }
}

/// Everything in one directory of the store: what could be read (sorted by key) and what
/// could not.
#[derive(Debug, Clone)]
pub struct Scan<K, V> {
    /// The files that could be read, as key and value, sorted by key.
    pub entries: Vec<(K, V)>,
    /// The files that could not, each with the reason.
    pub unreadable: Vec<UnreadableFile<K>>,
}

impl FileStore {
    /// Every credential file: the readable ones, and the others with the reason.
    pub fn scan_credentials(&self) -> Result<Scan<CredentialKey, CredentialRecord>> {
        self.scan(Kind::Credential)
    }

    /// Where the credential of `key` is kept (whether or not there is one).
    pub fn credential_file(&self, key: &CredentialKey) -> Result<PathBuf> {
        Ok(self.path_in(CREDENTIALS_DIR, &file_name(key)?, "json"))
    }

    /// Every client registration file (dynamic registrations), readable or not.
    pub fn scan_clients(&self) -> Result<Scan<ClientKey, ClientRegistration>> {
        self.scan(Kind::Client)
    }

    /// Removes an unreadable file found by a scan, unless it has been replaced by a
    /// usable one since (another process logged in). Returns whether it was removed.
    pub fn remove_unreadable<K: DeserializeOwned>(&self, file: &UnreadableFile<K>) -> Result<bool> {
        let kind = if file.path.parent().and_then(Path::file_name) == Some(CLIENTS_DIR.as_ref()) {
            Kind::Client
        } else {
            Kind::Credential
        };
        let usable = match read_file(&file.path) {
            Ok(None) => return Ok(false),
            Ok(Some(bytes)) => match kind {
                Kind::Credential => {
                    parse_entry_as::<CredentialKey, CredentialRecord>(&bytes, kind).is_ok()
                }
                Kind::Client => {
                    parse_entry_as::<ClientKey, ClientRegistration>(&bytes, kind).is_ok()
                }
                // Scans list credentials and clients only.
                Kind::Pin => true,
            },
            // Unreadable still (permissions, too large): removing it is what was asked.
            Err(_) => false,
        };
        if usable {
            return Ok(false);
        }
        match fs::remove_file(&file.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&file.path, "removing", e)),
        }
        if let Some(dir) = file.path.parent() {
            sync_dir(dir);
        }
        Ok(true)
    }

    /// `load_client`: a corrupt file is absent (and named in a warning); a file from a
    /// newer mcp-oauth is still an error, as replacing it would undo that version's work.
    pub(super) fn load_client_or_replace(
        &self,
        key: &ClientKey,
    ) -> Result<Option<ClientRegistration>> {
        let path = self.path_in(CLIENTS_DIR, &file_name(key)?, "json");
        let Some(bytes) = read_file(&path)? else {
            return Ok(None);
        };
        match parse_entry_as::<ClientKey, ClientRegistration>(&bytes, Kind::Client) {
            Ok((stored, reg)) if stored == *key => Ok(Some(reg)),
            Ok(_) => Ok(None),
            Err(p @ Problem::Corrupt(_)) => {
                tracing::warn!(
                    "ignoring the unreadable client registration {} ({}); a new client is \
                     registered, and its file replaces this one",
                    path.display(),
                    p.reason(Kind::Client)
                );
                Ok(None)
            }
            Err(p @ Problem::Newer(_)) => Err(super::store_err(
                &path,
                format!(
                    "{}; upgrade mcp-oauth, or remove it (`{}`) to register a new client",
                    p.reason(Kind::Client),
                    UnreadableFile::<ClientKey> {
                        path: path.clone(),
                        reason: String::new(),
                        key: None
                    }
                    .rm_command()
                ),
            )),
        }
    }

    fn scan<K, V>(&self, kind: Kind) -> Result<Scan<K, V>>
    where
        K: Serialize + DeserializeOwned + Ord,
        V: DeserializeOwned,
    {
        let dir = self.check_dirs(kind.subdir())?;
        let mut scan = Scan {
            entries: Vec::new(),
            unreadable: Vec::new(),
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(io_err(&dir, "listing", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&dir, "listing", e))?;
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if stem.starts_with('.') {
                continue;
            }
            let bytes = match read_file(&path) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue, // removed since read_dir
                Err(e) => {
                    let reason = match e {
                        crate::Error::Store { message, .. } => message,
                        other => other.to_string(),
                    };
                    scan.unreadable.push(UnreadableFile {
                        path,
                        reason,
                        key: None,
                    });
                    continue;
                }
            };
            match parse_entry_as::<K, V>(&bytes, kind) {
                Ok((key, value)) if file_name_matches(&key, stem) => {
                    scan.entries.push((key, value))
                }
                Ok(_) => tracing::warn!(
                    path = %path.display(),
                    "skipping a store file whose name does not match its key (copied or renamed by hand?)"
                ),
                Err(p) => scan.unreadable.push(UnreadableFile {
                    reason: p.reason(kind),
                    key: recover_key(&bytes).filter(|k| file_name_matches(k, stem)),
                    path,
                }),
            }
        }
        scan.entries.sort_by(|a, b| a.0.cmp(&b.0));
        scan.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(scan)
    }
}

/// The `key` of a damaged store file, read from the start of the file: the files are
/// written as `{"version":…,"key":{…},…}`, so a file cut short after its key still has
/// it. Only a key whose hash is the file's name is trusted by the callers.
fn recover_key<K: DeserializeOwned>(bytes: &[u8]) -> Option<K> {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return serde_json::from_value(v.get_mut("key")?.take()).ok();
    }
    let needle = b"\"key\"";
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let rest = &bytes[at..];
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    // One JSON value after the colon; what follows it (cut short) is never read.
    serde_json::Deserializer::from_slice(&rest[colon + 1..])
        .into_iter::<K>()
        .next()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CredentialStore;
    use crate::store::test_fixtures::{client, record};

    fn store() -> (tempfile::TempDir, FileStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::new(tmp.path().join("store"));
        (tmp, store)
    }

    #[test]
    fn unreadable_credentials_are_listed_with_their_key_and_removed() {
        let (_tmp, store) = store();
        let good = CredentialKey::new("https://good.example/mcp");
        let cut = CredentialKey::new("https://cut.example/mcp").with_profile(Some("work".into()));
        let lost = CredentialKey::new("https://lost.example/mcp");
        for k in [&good, &cut, &lost] {
            store.save(k, &record(&k.server_url, "at")).unwrap();
        }
        let path =
            |k: &CredentialKey| store.path_in(CREDENTIALS_DIR, &file_name(k).unwrap(), "json");
        let text = fs::read_to_string(path(&cut)).unwrap();
        fs::write(path(&cut), &text[..text.find("\"record\"").unwrap() + 12]).unwrap();
        fs::write(path(&lost), "{\"vers").unwrap();

        let scan = store.scan_credentials().unwrap();
        assert_eq!(scan.entries.len(), 1);
        assert_eq!(scan.entries[0].0, good);
        assert_eq!(scan.unreadable.len(), 2);
        let by_key = |k: Option<&CredentialKey>| {
            scan.unreadable
                .iter()
                .find(|u| u.key.as_ref() == k)
                .unwrap()
                .clone()
        };
        let c = by_key(Some(&cut));
        assert_eq!(c.path, path(&cut));
        assert!(c.reason.starts_with("it is truncated"), "{}", c.reason);
        let l = by_key(None);
        assert_eq!(l.path, path(&lost));
        assert_eq!(store.credential_file(&lost).unwrap(), l.path);
        assert!(l.fix_command().starts_with("rm "));
        assert_eq!(
            c.fix_command(),
            "mcp-oauth logout https://cut.example/mcp --profile work"
        );

        // The advice of `load` is the command that removes it; `remove` (logout) does.
        let e = store.load(&cut).unwrap_err().to_string();
        assert!(
            e.contains(
                "run `mcp-oauth logout https://cut.example/mcp --profile work` to remove it"
            ),
            "{e}"
        );
        assert!(store.remove(&cut).unwrap());
        assert!(store.remove_unreadable(&l).unwrap());
        assert!(store.scan_credentials().unwrap().unreadable.is_empty());
    }

    #[test]
    fn a_corrupt_client_registration_is_absent_and_replaced() {
        let (_tmp, store) = store();
        let ck = ClientKey {
            issuer: "https://auth.example.com".into(),
            redirect_uri: "http://127.0.0.1:1234/callback".into(),
        };
        store
            .save_client(&ck, &client("https://auth.example.com"))
            .unwrap();
        let path = store.path_in(CLIENTS_DIR, &file_name(&ck).unwrap(), "json");
        fs::write(&path, "{").unwrap();
        assert_eq!(store.load_client(&ck).unwrap(), None);
        assert_eq!(store.scan_clients().unwrap().unreadable.len(), 1);
        store
            .save_client(&ck, &client("https://auth.example.com"))
            .unwrap();
        assert!(store.load_client(&ck).unwrap().is_some());
        // A newer version's file is not ours to replace.
        fs::write(&path, r#"{"version":99,"key":{}}"#).unwrap();
        let e = store.load_client(&ck).unwrap_err().to_string();
        assert!(e.contains("newer version") && e.contains("rm "), "{e}");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("https://h.example/mcp"), "https://h.example/mcp");
        assert_eq!(
            shell_word("https://h/mcp?a=1&b=2"),
            "'https://h/mcp?a=1&b=2'"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
