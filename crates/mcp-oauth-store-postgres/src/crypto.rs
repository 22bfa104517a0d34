//! Encryption at rest: AES-256-GCM (aws-lc-rs, the crypto library rustls already
//! brings), a random 96-bit nonce per write, and the row's identity as associated data,
//! so that a ciphertext moved to another row (another user's, another server's) does
//! not decrypt there.
//!
//! Each row names the [`KeyId`] it was sealed with, so keys can rotate: the current key
//! seals, the current and the old keys open, and a row is sealed again with the current
//! key whenever it is written (or by [`crate::PgStore::reencrypt`]).

use crate::error::KeyError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

pub const KEY_ENV: &str = "MCP_OAUTH_VAULT_KEY";
pub const KEY_FILE_ENV: &str = "MCP_OAUTH_VAULT_KEY_FILE";
pub const OLD_KEYS_ENV: &str = "MCP_OAUTH_VAULT_OLD_KEYS";
pub const OLD_KEY_FILE_ENV: &str = "MCP_OAUTH_VAULT_OLD_KEY_FILE";

/// The public name of a key: the first 8 bytes of a SHA-256 of it, in hex. Stored with
/// each row; says which key opens it without saying anything about the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    fn of(key: &[u8; 32]) -> KeyId {
        let mut h = Sha256::new();
        h.update(b"mcp-oauth vault key id\0");
        h.update(key);
        KeyId(
            h.finalize()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
    pub(crate) fn from_stored(s: String) -> KeyId {
        KeyId(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One AES-256-GCM key.
struct VaultKey {
    id: KeyId,
    key: RandomizedNonceKey,
}

impl VaultKey {
    fn new(mut bytes: [u8; 32]) -> VaultKey {
        let id = KeyId::of(&bytes);
        // 32 bytes is AES-256's key length: the constructor cannot refuse it.
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key");
        bytes.fill(0);
        VaultKey { id, key }
    }
}

/// The keys of a vault: the current one, which seals, and older ones that only open.
pub struct KeyRing {
    current: VaultKey,
    old: Vec<VaultKey>,
}

impl fmt::Debug for KeyRing {
    /// Key ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.id)
            .field("old", &self.old.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

/// Why a sealed value does not open.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    UnknownKey,
    Tampered,
}

impl KeyRing {
    /// A ring with `current` as its only key.
    pub fn new(current: [u8; 32]) -> KeyRing {
        KeyRing {
            current: VaultKey::new(current),
            old: Vec::new(),
        }
    }

    /// Also opens (never seals) rows sealed with `old`.
    pub fn with_old_key(mut self, old: [u8; 32]) -> KeyRing {
        let old = VaultKey::new(old);
        if old.id != self.current.id && !self.old.iter().any(|k| k.id == old.id) {
            self.old.push(old);
        }
        self
    }

    /// The keys from the environment: `MCP_OAUTH_VAULT_KEY` (base64 of 32 bytes) or
    /// `MCP_OAUTH_VAULT_KEY_FILE` (a file holding that), and the old keys in
    /// `MCP_OAUTH_VAULT_OLD_KEYS` (base64, separated by commas or spaces) and
    /// `MCP_OAUTH_VAULT_OLD_KEY_FILE` (one per line).
    pub fn from_env() -> Result<KeyRing, KeyError> {
        KeyRing::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`from_env`](Self::from_env) with the variables from `lookup` (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<KeyRing, KeyError> {
        let current = match (lookup(KEY_ENV), lookup(KEY_FILE_ENV)) {
            (Some(_), Some(_)) => return Err(KeyError::Both),
            (Some(b64), None) => decode_key(&b64, KEY_ENV)?,
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                decode_key(&read_key_file(&path)?, &path.display().to_string())?
            }
            (None, None) => return Err(KeyError::Missing),
        };
        let mut ring = KeyRing::new(current);
        if let Some(list) = lookup(OLD_KEYS_ENV) {
            for (i, b64) in split_keys(&list).enumerate() {
                ring =
                    ring.with_old_key(decode_key(b64, &format!("{OLD_KEYS_ENV} (key {})", i + 1))?);
            }
        }
        if let Some(path) = lookup(OLD_KEY_FILE_ENV) {
            let path = PathBuf::from(path);
            let text = read_key_file(&path)?;
            for (i, b64) in split_keys(&text).enumerate() {
                let origin = format!("{} (key {})", path.display(), i + 1);
                ring = ring.with_old_key(decode_key(b64, &origin)?);
            }
        }
        Ok(ring)
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &KeyId {
        &self.current.id
    }

    /// Seals `plaintext` with the current key; `aad` is authenticated, not stored.
    /// Returns the key id and `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> (KeyId, Vec<u8>) {
        let mut in_out = plaintext.to_vec();
        // Sealing fails only for inputs beyond AES-GCM's limit (64 GiB).
        let nonce = self
            .current
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .expect("a record far below AES-GCM's size limit");
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        (self.current.id.clone(), sealed)
    }

    /// Opens what [`seal`](Self::seal) made with the key `key_id` and the same `aad`.
    pub(crate) fn open(
        &self,
        key_id: &KeyId,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| &k.id == key_id)
            .ok_or(OpenError::UnknownKey)?;
        if sealed.len() < NONCE_LEN {
            return Err(OpenError::Tampered);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Tampered)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| OpenError::Tampered)?;
        Ok(plaintext.to_vec())
    }
}

fn split_keys(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::File {
        path: path.to_path_buf(),
        source,
    })
}

fn decode_key(b64: &str, origin: &str) -> Result<[u8; 32], KeyError> {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|source| KeyError::NotBase64 {
            origin: origin.to_string(),
            source,
        })?;
    let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
    let len = bytes.len();
    bytes.fill(0);
    key.map_err(|_| KeyError::WrongLength {
        origin: origin.to_string(),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    fn ring(vars: &[(&str, &str)]) -> Result<KeyRing, KeyError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KeyRing::from_lookup(|n| vars.get(n).cloned())
    }

    #[test]
    fn seals_and_opens_with_the_same_identity_only() {
        let r = ring(&[(KEY_ENV, K1)]).unwrap();
        let (id, sealed) = r.seal(b"row a", b"secret record");
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "plaintext in the ciphertext"
        );
        assert_eq!(r.open(&id, b"row a", &sealed).unwrap(), b"secret record");
        assert_eq!(r.open(&id, b"row b", &sealed), Err(OpenError::Tampered));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(r.open(&id, b"row a", &flipped), Err(OpenError::Tampered));
        // A fresh nonce each time: the same record seals differently.
        assert_ne!(r.seal(b"row a", b"secret record").1, sealed);
    }

    #[test]
    fn old_keys_open_and_the_current_key_seals() {
        let (id1, sealed) = ring(&[(KEY_ENV, K1)]).unwrap().seal(b"a", b"x");
        let rotated = ring(&[(KEY_ENV, K2), (OLD_KEYS_ENV, K1)]).unwrap();
        assert_eq!(rotated.open(&id1, b"a", &sealed).unwrap(), b"x");
        assert_ne!(rotated.current_id(), &id1);
        assert_eq!(&rotated.seal(b"a", b"x").0, rotated.current_id());
        let without_old = ring(&[(KEY_ENV, K2)]).unwrap();
        assert_eq!(
            without_old.open(&id1, b"a", &sealed),
            Err(OpenError::UnknownKey)
        );
    }

    #[test]
    fn keys_from_files_and_bad_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vault.key");
        std::fs::write(&file, format!("{K1}\n")).unwrap();
        let from_file = ring(&[(KEY_FILE_ENV, file.to_str().unwrap())]).unwrap();
        assert_eq!(
            from_file.current_id(),
            ring(&[(KEY_ENV, K1)]).unwrap().current_id()
        );
        let old_file = dir.path().join("old.keys");
        std::fs::write(&old_file, format!("{K1}\n{K2}\n")).unwrap();
        let r = ring(&[
            (KEY_ENV, K2),
            (OLD_KEY_FILE_ENV, old_file.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(r.old.len(), 1, "the current key is not an old key too");

        assert!(matches!(ring(&[]), Err(KeyError::Missing)));
        assert!(matches!(
            ring(&[(KEY_ENV, "not base64!")]),
            Err(KeyError::NotBase64 { .. })
        ));
        assert!(matches!(
            ring(&[(KEY_ENV, "c2hvcnQ=")]),
            Err(KeyError::WrongLength { len: 5, .. })
        ));
        assert!(matches!(
            ring(&[(KEY_ENV, K1), (KEY_FILE_ENV, "/nonexistent")]),
            Err(KeyError::Both)
        ));
        let e = ring(&[(KEY_FILE_ENV, "/nonexistent/vault.key")]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/vault.key"), "{e}");
        assert!(!format!("{:?}", r).contains(K1), "Debug shows key ids only");
    }
}
