//! # mcp-oauth-store-keychain
//!
//! Credentials for a desktop: the records (tokens, client secrets, DPoP keys) are sealed
//! with AES-256-GCM under a key kept in the OS keychain — the macOS Keychain, the Windows
//! Credential Manager, the Secret Service (GNOME Keyring, KWallet) — and written as files
//! beside the file store's. One small key in the keychain, not the records themselves:
//! Windows credential blobs hold 2.5 KiB, less than a record with a DPoP key, and
//! keychains are slow to list.
//!
//! What stays on disk in the clear is what is not secret: whose file it is (server URL,
//! profile; issuer, redirect URI), so that a listing needs no decryption. Each file's
//! ciphertext is bound to that key (associated data): a file renamed or edited does not
//! open. Locks are the file store's (the same lock files), so a keychain store and a file
//! store on one directory exclude each other.
//!
//! [`choose`] picks the keychain where one works and falls back to the file store where
//! none does (headless Linux without a Secret Service), saying why; it never falls back
//! when sealed credentials exist (they would look lost): that is an error that says how
//! to reach the keychain. Credentials of the file store move into the keychain store on
//! first use ([`KeychainStore::open`]), once.

mod sealed;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use mcp_oauth::store::{
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, FileStore,
    IssuerPin, IssuerPinKey, StoreLock,
};
use sealed::{Kind, SealedFiles};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The keychain entry's service name.
pub const SERVICE: &str = "mcp-oauth";

/// What can go wrong with the keychain store; each with its cause.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// The platform's keychain cannot be used: none is running (no Secret Service on
    /// D-Bus), it is locked and cannot be unlocked here, or access was refused.
    #[error("the OS keychain cannot be used")]
    Unavailable(#[source] keyring::Error),
    /// Sealed credentials exist but the keychain has no key for them (deleted, or
    /// another keychain).
    #[error(
        "the keychain has no key for the sealed credentials in {}; they cannot be read \
         (restore the keychain entry \"{SERVICE}\" / \"{account}\", or delete that directory \
         and log in again)",
        dir.display()
    )]
    KeyMissing { dir: PathBuf, account: String },
    /// The keychain entry is not a key of ours.
    #[error("the keychain entry \"{SERVICE}\" / \"{account}\" is not a 32-byte key in base64")]
    KeyCorrupt { account: String },
    /// The key was written but reads back differently (a keychain that does not keep
    /// what it is given).
    #[error("the keychain did not keep the key it was given")]
    KeyNotKept,
    #[error("{doing} {} failed", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A sealed file does not open: altered, moved, or sealed under another key.
    #[error("{} does not decrypt with the keychain's key: it was altered, moved or sealed under another key; delete it and log in again", path.display())]
    Tampered { path: PathBuf },
    #[error("{} is not a sealed store file", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] mcp_oauth::Error),
}

/// The data key, from the keychain.
pub(crate) struct SealKey {
    key: RandomizedNonceKey,
}

impl SealKey {
    fn new(bytes: &[u8; 32]) -> SealKey {
        SealKey {
            key: RandomizedNonceKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"),
        }
    }

    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .expect("a record far below AES-GCM's size limit");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&in_out);
        out
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ct.to_vec();
        let pt = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .ok()?;
        Some(pt.to_vec())
    }
}

/// The keychain entry that holds the key of the store in `dir`: one per directory, so
/// that `MCP_OAUTH_HOME` keeps identities apart here too.
pub fn key_account(dir: &Path) -> String {
    format!("store key {}", dir.display())
}

fn entry(dir: &Path) -> Result<keyring::Entry, KeychainError> {
    keyring::Entry::new(SERVICE, &key_account(dir)).map_err(KeychainError::Unavailable)
}

/// The key of `dir`'s store from the keychain; made (and checked that the keychain keeps
/// it) when there is none and `may_create`.
fn load_key(dir: &Path, may_create: bool) -> Result<SealKey, KeychainError> {
    let entry = entry(dir)?;
    let account = key_account(dir);
    match entry.get_password() {
        Ok(b64) => decode_key(&b64).ok_or(KeychainError::KeyCorrupt { account }),
        Err(keyring::Error::NoEntry) if may_create => {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).expect("the system's random generator");
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            bytes.fill(0);
            entry
                .set_password(&b64)
                .map_err(KeychainError::Unavailable)?;
            match entry.get_password() {
                Ok(back) if back == b64 => {
                    tracing::info!(account, "made the store's key in the OS keychain");
                    decode_key(&b64).ok_or(KeychainError::KeyNotKept)
                }
                Ok(_) | Err(keyring::Error::NoEntry) => Err(KeychainError::KeyNotKept),
                Err(e) => Err(KeychainError::Unavailable(e)),
            }
        }
        Err(keyring::Error::NoEntry) => Err(KeychainError::KeyMissing {
            dir: dir.to_path_buf(),
            account,
        }),
        Err(e) => Err(KeychainError::Unavailable(e)),
    }
}

fn decode_key(b64: &str) -> Option<SealKey> {
    let mut v = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let bytes: Option<[u8; 32]> = v.as_slice().try_into().ok();
    v.fill(0);
    bytes.map(|b| SealKey::new(&b))
}

/// Credentials sealed under a key in the OS keychain; see the [crate docs](crate).
#[derive(Clone)]
pub struct KeychainStore {
    root: PathBuf,
    files: Arc<SealedFiles>,
    /// The file store on the same directory: its locks, and what migrates from it.
    plain: FileStore,
}

impl fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainStore")
            .field("dir", &self.root)
            .finish()
    }
}

/// What [`choose`] found.
#[derive(Debug)]
pub enum Choice {
    /// The keychain works: its store, and how many credentials and registrations moved
    /// into it from the file store now.
    Keychain(KeychainStore, usize),
    /// No usable keychain, and nothing sealed: the file store, and why.
    Files(FileStore, String),
}

/// The keychain store of `dir` where the OS keychain works, else the file store with the
/// reason. An error when the keychain does not work but sealed credentials exist: falling
/// back would make them look lost (and a new login would write a plain file beside them).
pub fn choose(dir: &Path) -> Result<Choice, KeychainError> {
    let files = SealedFiles::new(dir);
    let sealed = files.any()?;
    match KeychainStore::open_with(dir, files) {
        Ok((store, moved)) => Ok(Choice::Keychain(store, moved)),
        Err(KeychainError::Unavailable(e)) if !sealed => Ok(Choice::Files(
            FileStore::new(dir.to_path_buf()),
            format!("no usable OS keychain here ({e})"),
        )),
        Err(e) => Err(e),
    }
}

impl KeychainStore {
    /// The keychain store of `dir` (the file store's directory): its key from the
    /// keychain, made there on first use; the file store's credentials moved in. Returns
    /// the store and how many entries moved.
    pub fn open(dir: &Path) -> Result<(KeychainStore, usize), KeychainError> {
        Self::open_with(dir, SealedFiles::new(dir))
    }

    fn open_with(dir: &Path, files: SealedFiles) -> Result<(KeychainStore, usize), KeychainError> {
        // A key is made only for a store with nothing sealed: with sealed files and no
        // key, a new key would only hide that their key is gone.
        let key = load_key(dir, !files.any()?)?;
        let store = KeychainStore {
            root: dir.to_path_buf(),
            files: Arc::new(files.with_key(key)),
            plain: FileStore::new(dir.to_path_buf()),
        };
        let moved = store.migrate()?;
        Ok((store, moved))
    }

    /// The store's directory (shared with the file store).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The file store's readable entries move in, each under its lock, then its plain file
    /// goes. A plain file present after a migration was written since (`--store file`),
    /// so it wins. Unreadable plain files stay where `mcp-oauth status` shows them.
    fn migrate(&self) -> Result<usize, KeychainError> {
        let mut moved = 0;
        let creds = self.plain.scan_credentials()?;
        for (key, record) in creds.entries {
            let _lock = self.plain.lock(&key)?;
            // Read again under the lock: another process may have moved it meanwhile.
            if let Some(record) = self.plain.load(&key)?.or(Some(record)) {
                self.save(&key, &record)?;
                self.plain.remove(&key)?;
                moved += 1;
            }
        }
        for (key, reg) in self.plain.scan_clients()?.entries {
            self.save_client(&key, &reg)?;
            self.plain.remove_client(&key)?;
            moved += 1;
        }
        if moved > 0 {
            tracing::info!(
                moved,
                "moved the file store's credentials into the keychain store"
            );
        }
        Ok(moved)
    }

    fn error(&self, e: KeychainError) -> mcp_oauth::Error {
        match e {
            KeychainError::Store(e) => e,
            e => mcp_oauth::Error::StoreBackend {
                store: format!("keychain store {}", self.root.display()),
                message: "cannot use a sealed credential file".into(),
                source: Box::new(e),
            },
        }
    }
}

/// The identity a file's ciphertext is bound to: its kind and key.
pub(crate) fn aad(kind: Kind, key_json: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"mcp-oauth keychain store v1\0");
    h.update(kind.name().as_bytes());
    h.update(b"\0");
    h.update(key_json);
    h.finalize().to_vec()
}

impl CredentialStore for KeychainStore {
    fn load(&self, key: &CredentialKey) -> mcp_oauth::Result<Option<CredentialRecord>> {
        self.files
            .load(Kind::Credential, key)
            .map_err(|e| self.error(e))
    }
    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> mcp_oauth::Result<()> {
        self.files
            .save(Kind::Credential, key, record)
            .map_err(|e| self.error(e))
    }
    fn remove(&self, key: &CredentialKey) -> mcp_oauth::Result<bool> {
        self.files
            .remove(Kind::Credential, key)
            .map_err(|e| self.error(e))
    }
    /// Sorted by key; a file that does not open is skipped with a warning (`load` of it
    /// reports why).
    fn list(&self) -> mcp_oauth::Result<Vec<(CredentialKey, CredentialRecord)>> {
        self.files.list(Kind::Credential).map_err(|e| self.error(e))
    }
    fn load_client(&self, key: &ClientKey) -> mcp_oauth::Result<Option<ClientRegistration>> {
        self.files
            .load(Kind::Client, key)
            .map_err(|e| self.error(e))
    }
    fn save_client(
        &self,
        key: &ClientKey,
        registration: &ClientRegistration,
    ) -> mcp_oauth::Result<()> {
        self.files
            .save(Kind::Client, key, registration)
            .map_err(|e| self.error(e))
    }
    fn remove_client(&self, key: &ClientKey) -> mcp_oauth::Result<bool> {
        self.files
            .remove(Kind::Client, key)
            .map_err(|e| self.error(e))
    }
    /// Pins are no secret: the file store's, in the same directory.
    fn load_issuer_pin(&self, key: &IssuerPinKey) -> mcp_oauth::Result<Option<IssuerPin>> {
        self.plain.load_issuer_pin(key)
    }
    fn save_issuer_pin(&self, key: &IssuerPinKey, pin: &IssuerPin) -> mcp_oauth::Result<()> {
        self.plain.save_issuer_pin(key, pin)
    }
    /// The file store's lock on the same directory.
    fn lock(&self, key: &CredentialKey) -> mcp_oauth::Result<StoreLock> {
        self.plain.lock(key)
    }
    fn try_lock(&self, key: &CredentialKey) -> mcp_oauth::Result<Option<StoreLock>> {
        self.plain.try_lock(key)
    }
}

impl KeychainStore {
    /// Every client registration (for `logout --forget-client`), sorted.
    pub fn list_clients(&self) -> mcp_oauth::Result<Vec<(ClientKey, ClientRegistration)>> {
        self.files.list(Kind::Client).map_err(|e| self.error(e))
    }
}
