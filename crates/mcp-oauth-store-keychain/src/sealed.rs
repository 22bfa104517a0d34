//! The sealed files: `<dir>/keychain/{credentials,clients}/<name>.json`, each
//! `{"version":1,"key":…,"sealed":"<base64 of nonce, ciphertext, tag>"}`, written
//! atomically (a temporary file, flushed, renamed). The directory is private (0700);
//! what a file says is trusted only once it decrypts with the keychain's key, so a file
//! planted or swapped by someone else is refused, not read.

use crate::{KeychainError, SealKey, aad};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const VERSION: u64 = 1;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Credential,
    Client,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Credential => "credentials",
            Kind::Client => "clients",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SealedFile<K> {
    version: u64,
    key: K,
    sealed: String,
}

pub(crate) struct SealedFiles {
    dir: PathBuf,
    key: Option<SealKey>,
}

fn io(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeychainError {
    let path = path.to_path_buf();
    move |source| KeychainError::Io {
        doing,
        path,
        source,
    }
}

impl SealedFiles {
    pub(crate) fn new(root: &Path) -> SealedFiles {
        SealedFiles {
            dir: root.join("keychain"),
            key: None,
        }
    }

    pub(crate) fn with_key(self, key: SealKey) -> SealedFiles {
        SealedFiles {
            key: Some(key),
            ..self
        }
    }

    fn key(&self) -> &SealKey {
        self.key.as_ref().expect("opened with its key")
    }

    /// Whether any sealed file exists (then a key must exist too).
    pub(crate) fn any(&self) -> Result<bool, KeychainError> {
        for kind in [Kind::Credential, Kind::Client] {
            let dir = self.dir.join(kind.name());
            match fs::read_dir(&dir) {
                Ok(mut entries) => {
                    if entries.any(|e| {
                        e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    }) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("reading", &dir)(e)),
            }
        }
        Ok(false)
    }

    fn path<K: Serialize>(&self, kind: Kind, key: &K) -> Result<(PathBuf, Vec<u8>), KeychainError> {
        let json = serde_json::to_vec(key).map_err(|source| KeychainError::Format {
            path: self.dir.clone(),
            source,
        })?;
        let name: String = Sha256::digest(&json)[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((
            self.dir.join(kind.name()).join(format!("{name}.json")),
            json,
        ))
    }

    pub(crate) fn load<K, V>(&self, kind: Kind, key: &K) -> Result<Option<V>, KeychainError>
    where
        K: Serialize + DeserializeOwned + PartialEq,
        V: DeserializeOwned,
    {
        let (path, _) = self.path(kind, key)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        let (stored, value) = self.open::<K, V>(kind, &path, &bytes)?;
        // The name is a hash prefix: another key's file is not ours (and would not have
        // opened with our key's identity anyway).
        Ok((stored == *key).then_some(value))
    }

    /// Parses and opens one file; the key it names is authenticated by the decryption.
    fn open<K: Serialize + DeserializeOwned, V: DeserializeOwned>(
        &self,
        kind: Kind,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(K, V), KeychainError> {
        let format = |source| KeychainError::Format {
            path: path.to_path_buf(),
            source,
        };
        let file: SealedFile<K> = serde_json::from_slice(bytes).map_err(format)?;
        let key_json = serde_json::to_vec(&file.key).map_err(format)?;
        let tampered = || KeychainError::Tampered {
            path: path.to_path_buf(),
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&file.sealed)
            .map_err(|_| tampered())?;
        if file.version != VERSION {
            return Err(tampered());
        }
        let plain = self
            .key()
            .open(&aad(kind, &key_json), &sealed)
            .ok_or_else(tampered)?;
        let value = serde_json::from_slice(&plain).map_err(format)?;
        Ok((file.key, value))
    }

    pub(crate) fn save<K: Serialize, V: Serialize>(
        &self,
        kind: Kind,
        key: &K,
        value: &V,
    ) -> Result<(), KeychainError> {
        let (path, key_json) = self.path(kind, key)?;
        let plain = serde_json::to_vec(value).map_err(|source| KeychainError::Format {
            path: path.clone(),
            source,
        })?;
        let sealed = self.key().seal(&aad(kind, &key_json), &plain);
        let file = SealedFile {
            version: VERSION,
            key,
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| KeychainError::Format {
            path: path.clone(),
            source,
        })?;
        let dir = path.parent().expect("a file in a directory");
        private_dir(&self.dir)?;
        private_dir(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io("creating a temporary file in", dir))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io("writing", &path))?;
        tmp.persist(&path)
            .map_err(|e| io("replacing", &path)(e.error))?;
        Ok(())
    }

    pub(crate) fn remove<K: Serialize>(&self, kind: Kind, key: &K) -> Result<bool, KeychainError> {
        let (path, _) = self.path(kind, key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("removing", &path)(e)),
        }
    }

    pub(crate) fn list<K, V>(&self, kind: Kind) -> Result<Vec<(K, V)>, KeychainError>
    where
        K: Serialize + DeserializeOwned + Ord,
        V: DeserializeOwned,
    {
        let dir = self.dir.join(kind.name());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let opened = fs::read(&path)
                .map_err(io("reading", &path))
                .and_then(|b| self.open::<K, V>(kind, &path, &b));
            match opened {
                Ok(kv) => out.push(kv),
                Err(e) => tracing::warn!(error = %e, "skipping a sealed file that cannot be read"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Creates `dir` 0700 (on Unix) if missing.
fn private_dir(dir: &Path) -> Result<(), KeychainError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io("creating", dir))
}
