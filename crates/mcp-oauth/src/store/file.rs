//! [`FileStore`]: credentials as small JSON files in a private directory.
//!
//! Layout under the store directory (`<name>` is the first 32 hex characters of the
//! SHA-256 of the key's canonical JSON, so any URL gives a safe file name):
//!
//! ```text
//! <dir>/                      0700
//!   credentials/<name>.json   0600  {"version":1,"key":CredentialKey,"record":CredentialRecord}
//!   clients/<name>.json       0600  {"version":1,"key":ClientKey,"registration":ClientRegistration}
//!   pins/<name>.json          0600  {"version":1,"key":IssuerPinKey,"pin":IssuerPin}
//!   locks/<name>.lock         0600  empty; held with an advisory lock during refresh/login
//! ```
//!
//! Every write goes to a temporary file in the same directory (created 0600 before any
//! byte is written), is flushed to disk, renamed over the target, and the directory is
//! then flushed too: a crash leaves either the old or the new file, never a mix. Files
//! are never truncated in place.
//!
//! Only the current user may reach the credentials: on Unix, every directory of the
//! store must belong to the user running mcp-oauth (another owner is refused: it could
//! read the tokens, or plant a record that sends them elsewhere) and is made 0700 when
//! group or others have access to it (with a warning); files are opened without
//! following symbolic links (a link in place of a file is refused). On Windows, the Unix
//! modes do not apply; the files are protected by the ACL of the (per-user) directory
//! they live in.
//!
//! ```
//! use mcp_oauth::store::{CredentialKey, CredentialStore, FileStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::new(dir.path().join("mcp-oauth"));
//! let key = CredentialKey::new("https://mcp.example.com/mcp");
//! assert!(store.load(&key)?.is_none());
//! {
//!     // Single-flight: other processes calling `lock(&key)` wait here.
//!     let _guard = store.lock(&key)?;
//!     // ... refresh the token and `store.save(&key, &record)` ...
//! }
//! assert!(store.list()?.is_empty());
//! # Ok(())
//! # }
//! ```

use super::{
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, IssuerPin,
    IssuerPinKey, StoreLock,
};
use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

mod scan;
// Private directories, link-safe opens, atomic writes.
mod disk;
use disk::*;
pub use scan::{Scan, UnreadableFile};

/// Format version written in every file.
const FORMAT_VERSION: u64 = 1;
/// Credential files are a few KiB; anything much larger is not one of ours.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const CREDENTIALS_DIR: &str = "credentials";
const CLIENTS_DIR: &str = "clients";
const PINS_DIR: &str = "pins";
const LOCKS_DIR: &str = "locks";
/// Environment variable that overrides [`FileStore::default_location`].
pub(crate) const HOME_ENV: &str = "MCP_OAUTH_HOME";

/// Credentials stored as files in a private directory: one small JSON file per record,
/// written atomically (a temporary file, flushed, renamed over the old one); on Unix,
/// every directory of the store must belong to the current user and is kept at 0700.
///
/// Cheap to clone; several `FileStore`s (in one or several processes) may share a
/// directory: writes are atomic and [`CredentialStore::lock`] is exclusive across all of
/// them.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store rooted at `dir`. Nothing is created until the first write or lock; the
    /// directory (and its parents) are then created with mode 0700. Every access checks
    /// the existing directories (on Unix: their owner and their mode, as above).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store in its default location:
    ///
    /// 1. `$MCP_OAUTH_HOME` when set and not empty (a relative path is made absolute
    ///    against the current directory), so tests, containers and users with several
    ///    identities can point the tool at another directory;
    /// 2. otherwise `mcp-oauth` in the platform's per-user *data* directory
    ///    ([`dirs::data_dir`]: `$XDG_DATA_HOME` or `~/.local/share` on Linux,
    ///    `~/Library/Application Support` on macOS, `%APPDATA%` on Windows). Credentials
    ///    are state that must survive, so not the cache directory (which may be wiped),
    ///    and not the config directory (often kept in dotfile repositories or synced,
    ///    where tokens must not end up).
    pub fn default_location() -> Result<FileStore> {
        default_dir(std::env::var_os(HOME_ENV)).map(FileStore::new)
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_in(&self, sub: &str, name: &str, ext: &str) -> PathBuf {
        self.dir.join(sub).join(format!("{name}.{ext}"))
    }

    /// Creates (or checks) `<dir>` and `<dir>/<sub>`, both private.
    fn ensure_dirs(&self, sub: &str) -> Result<PathBuf> {
        ensure_private_dir(&self.dir)?;
        let path = self.dir.join(sub);
        ensure_private_dir(&path)?;
        Ok(path)
    }

    /// Before a read: checks `<dir>` and `<dir>/<sub>` where they exist (creating
    /// nothing), so that nothing is read from a directory another user controls.
    fn check_dirs(&self, sub: &str) -> Result<PathBuf> {
        let path = self.dir.join(sub);
        if check_private_dir(&self.dir)? {
            check_private_dir(&path)?;
        }
        Ok(path)
    }

    fn load_entry<K, V>(&self, kind: Kind, key: &K, fix: &str) -> Result<Option<V>>
    where
        K: Serialize + DeserializeOwned + PartialEq,
        V: DeserializeOwned,
    {
        self.check_dirs(kind.subdir())?;
        let path = self.path_in(kind.subdir(), &file_name(key)?, "json");
        let Some(bytes) = read_file(&path)? else {
            return Ok(None);
        };
        let (stored_key, value) = parse_entry::<K, V>(&path, &bytes, kind, fix)?;
        if stored_key != *key {
            // A SHA-256 prefix collision (or a file copied by hand): not our record.
            tracing::debug!(path = %path.display(), "stored file belongs to another key; treating as absent");
            return Ok(None);
        }
        Ok(Some(value))
    }

    fn save_entry<K: Serialize>(
        &self,
        kind: Kind,
        key: &K,
        contents: &impl Serialize,
    ) -> Result<()> {
        let dir = self.ensure_dirs(kind.subdir())?;
        let path = dir.join(format!("{}.json", file_name(key)?));
        let mut bytes = serde_json::to_vec_pretty(contents)
            .map_err(|e| store_err(&path, format!("cannot serialize the {}: {e}", kind.noun())))?;
        bytes.push(b'\n');
        write_atomic(&dir, &path, &bytes)?;
        sweep_stale_temp_files(&dir);
        Ok(())
    }

    fn remove_entry<K>(&self, kind: Kind, key: &K) -> Result<bool>
    where
        K: Serialize + DeserializeOwned + PartialEq,
    {
        let dir = self.check_dirs(kind.subdir())?;
        let path = dir.join(format!("{}.json", file_name(key)?));
        let Some(bytes) = read_file(&path)? else {
            return Ok(false);
        };
        // Leave a file that clearly belongs to another key alone; a corrupt file is removed
        // (that is how `logout` repairs it).
        if let Some(other) = key_of::<K>(&bytes)
            && other != *key
        {
            return Ok(false);
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&path, "removing", e)),
        }
        sync_dir(&dir);
        Ok(true)
    }
}

impl CredentialStore for FileStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<CredentialRecord>> {
        self.load_entry(Kind::Credential, key, &logout_fix(key))
    }

    fn save(&self, key: &CredentialKey, record: &CredentialRecord) -> Result<()> {
        #[derive(Serialize)]
        struct CredentialFile<'a> {
            version: u64,
            key: &'a CredentialKey,
            record: &'a CredentialRecord,
        }
        self.save_entry(
            Kind::Credential,
            key,
            &CredentialFile {
                version: FORMAT_VERSION,
                key,
                record,
            },
        )
    }

    fn remove(&self, key: &CredentialKey) -> Result<bool> {
        self.remove_entry(Kind::Credential, key)
    }

    /// Every readable credential, sorted by key. Files that cannot be read or parsed are
    /// skipped with a warning (`status` uses [`FileStore::scan_credentials`] to show them);
    /// `load` of the same key reports the problem as an error.
    fn list(&self) -> Result<Vec<(CredentialKey, CredentialRecord)>> {
        let scan = self.scan_credentials()?;
        for f in &scan.unreadable {
            tracing::warn!(path = %f.path.display(), reason = %f.reason, "skipping an unreadable credential file");
        }
        Ok(scan.entries)
    }

    /// A corrupt file is treated as absent (with a warning naming it): the login then
    /// registers a new client, whose file replaces it. It held only a client id (and maybe
    /// a DCR secret) that another registration replaces; failing every login until the
    /// user deletes it by hand helped nobody.
    fn load_client(&self, key: &ClientKey) -> Result<Option<ClientRegistration>> {
        self.load_client_or_replace(key)
    }

    fn save_client(&self, key: &ClientKey, registration: &ClientRegistration) -> Result<()> {
        #[derive(Serialize)]
        struct ClientFile<'a> {
            version: u64,
            key: &'a ClientKey,
            registration: &'a ClientRegistration,
        }
        self.save_entry(
            Kind::Client,
            key,
            &ClientFile {
                version: FORMAT_VERSION,
                key,
                registration,
            },
        )
    }

    fn remove_client(&self, key: &ClientKey) -> Result<bool> {
        self.remove_entry(Kind::Client, key)
    }

    /// A file that cannot be read is an error, not an absent pin: the secret is then sent
    /// nowhere until the user names the issuer.
    fn load_issuer_pin(&self, key: &IssuerPinKey) -> Result<Option<IssuerPin>> {
        self.load_entry(
            Kind::Pin,
            key,
            &format!(
                "delete it and {} (client_issuer in the configuration file)",
                crate::remedy::Remedy::NameClientIssuer
            ),
        )
    }

    fn save_issuer_pin(&self, key: &IssuerPinKey, pin: &IssuerPin) -> Result<()> {
        #[derive(Serialize)]
        struct PinFile<'a> {
            version: u64,
            key: &'a IssuerPinKey,
            pin: &'a IssuerPin,
        }
        self.save_entry(
            Kind::Pin,
            key,
            &PinFile {
                version: FORMAT_VERSION,
                key,
                pin,
            },
        )
    }

    /// Takes an exclusive lock on `<dir>/locks/<name>.lock`, blocking until it is free.
    ///
    /// The lock is *advisory* (`flock` on Unix, `LockFileEx` on Windows): it excludes
    /// every other `lock` call on the same key, from this or any other process and from
    /// any `FileStore` on the same directory, but does not stop anyone from reading or
    /// writing the files. It is released when the returned [`StoreLock`] is dropped or
    /// the process exits (even by a crash). It is not re-entrant: locking a key twice
    /// without dropping the first guard deadlocks. Lock files are left in place (deleting
    /// them would race with a waiter that already opened one). On network file systems
    /// the guarantee is only as good as the file system's lock support.
    fn lock(&self, key: &CredentialKey) -> Result<StoreLock> {
        let (path, file) = self.open_lock_file(key)?;
        loop {
            match file.lock() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&path, "locking", e)),
            }
        }
        Ok(StoreLock::new(file))
    }

    fn try_lock(&self, key: &CredentialKey) -> Result<Option<StoreLock>> {
        let (path, file) = self.open_lock_file(key)?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(StoreLock::new(file))),
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, "locking", e)),
            }
        }
    }
}

impl FileStore {
    /// Opens (creating it 0600 if needed) the lock file of `key`.
    fn open_lock_file(&self, key: &CredentialKey) -> Result<(PathBuf, File)> {
        let dir = self.ensure_dirs(LOCKS_DIR)?;
        let path = dir.join(format!("{}.lock", file_name(key)?));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = open_no_follow(&mut options, &path)
            .map_err(|e| open_err(&path, "opening the lock file", e))?;
        Ok((path, file))
    }
}

/// The kinds of files.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Credential,
    Client,
    Pin,
}

impl Kind {
    fn subdir(self) -> &'static str {
        match self {
            Kind::Credential => CREDENTIALS_DIR,
            Kind::Client => CLIENTS_DIR,
            Kind::Pin => PINS_DIR,
        }
    }
    /// Name of the field holding the value.
    fn field(self) -> &'static str {
        match self {
            Kind::Credential => "record",
            Kind::Client => "registration",
            Kind::Pin => "pin",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Credential => "stored credential",
            Kind::Client => "stored client registration",
            Kind::Pin => "client issuer pin",
        }
    }
}

/// `$MCP_OAUTH_HOME` (absolute) or `<data dir>/mcp-oauth`.
fn default_dir(env: Option<OsString>) -> Result<PathBuf> {
    if let Some(home) = env.filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        return std::path::absolute(&home).map_err(|e| {
            store_err(
                &home,
                format!("cannot make {HOME_ENV} an absolute path: {e}"),
            )
        });
    }
    dirs::data_dir().map(|d| d.join("mcp-oauth")).ok_or_else(|| {
        Error::store(
            format!("${HOME_ENV}"),
            format!(
                "cannot determine the per-user data directory (is HOME set?); set {HOME_ENV} to the directory where credentials should be kept"
            ),
        )
    })
}

/// First 32 hex characters of the SHA-256 of the key's canonical JSON (compact
/// `serde_json` output: fields in declaration order, `None` fields omitted).
fn file_name<K: Serialize>(key: &K) -> Result<String> {
    let json = serde_json::to_vec(key).map_err(|e| Error::Store {
        path: String::new(),
        message: format!("cannot serialize a store key: {e}"),
        source: Some(Box::new(e)),
    })?;
    let digest = Sha256::digest(&json);
    Ok(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

fn file_name_matches<K: Serialize>(key: &K, stem: &str) -> bool {
    file_name(key).is_ok_and(|n| n == stem)
}

/// Why a store file cannot be used.
#[derive(Debug)]
enum Problem {
    /// Not a file of ours, or damaged: the detail says how, without any value from it.
    Corrupt(String),
    /// Written by a newer mcp-oauth (this format version).
    Newer(u64),
}

impl Problem {
    /// The problem in words, for a listing (`status`).
    fn reason(&self, kind: Kind) -> String {
        match self {
            Problem::Corrupt(detail) => detail.clone(),
            Problem::Newer(v) => format!(
                "this {} was written by a newer version of mcp-oauth (format version {v}; this \
                 version reads version {FORMAT_VERSION})",
                kind.noun()
            ),
        }
    }
}

/// Parses a store file, checking the format version; `fix` says what to do when it
/// cannot be used.
fn parse_entry<K: DeserializeOwned, V: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    kind: Kind,
    fix: &str,
) -> Result<(K, V)> {
    parse_entry_as(bytes, kind).map_err(|p| {
        store_err(
            path,
            match p {
                Problem::Corrupt(detail) => format!(
                    "cannot read this {}: {detail}. The file was left as it is; {fix}",
                    kind.noun()
                ),
                Problem::Newer(_) => {
                    format!("{}; upgrade mcp-oauth, or {fix}", p.reason(kind))
                }
            },
        )
    })
}

fn parse_entry_as<K: DeserializeOwned, V: DeserializeOwned>(
    bytes: &[u8],
    kind: Kind,
) -> std::result::Result<(K, V), Problem> {
    let corrupt = Problem::Corrupt;
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(describe_json_error(&e)))?;
    let serde_json::Value::Object(mut obj) = value else {
        return Err(corrupt("it is not a JSON object".into()));
    };
    match obj.get("version").map(serde_json::Value::as_u64) {
        None => return Err(corrupt("it has no `version` field".into())),
        Some(Some(FORMAT_VERSION)) => {}
        Some(Some(v)) if v > FORMAT_VERSION => return Err(Problem::Newer(v)),
        Some(_) => {
            return Err(corrupt(
                "its `version` field is not a known format version".into(),
            ));
        }
    }
    let mut take = |field: &str| {
        obj.remove(field)
            .ok_or_else(|| corrupt(format!("it has no `{field}` field")))
    };
    let key = take("key")?;
    let val = take(kind.field())?;
    let key = serde_json::from_value(key)
        .map_err(|e| corrupt(format!("bad `key`: {}", describe_json_error(&e))))?;
    let val = serde_json::from_value(val).map_err(|e| {
        corrupt(format!(
            "bad `{}`: {}",
            kind.field(),
            describe_json_error(&e)
        ))
    })?;
    Ok((key, val))
}

/// What fixes an unusable credential file of `key`: the command that removes it.
fn logout_fix(key: &CredentialKey) -> String {
    format!(
        "run `{}` to remove it, then log in again",
        logout_command(key)
    )
}

/// `mcp-oauth logout <server> [--profile <name>]`, quoted for a POSIX shell.
pub(crate) fn logout_command(key: &CredentialKey) -> String {
    let mut c = format!("mcp-oauth logout {}", shell_word(&key.server_url));
    if let Some(p) = &key.profile {
        c.push_str(&format!(" --profile {}", shell_word(p)));
    }
    c
}

/// `s` as one word for a POSIX shell: as it is when that is safe, else single-quoted.
pub(crate) fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/:._-~@%+=,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The key of a store file, if that much can be parsed.
fn key_of<K: DeserializeOwned>(bytes: &[u8]) -> Option<K> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::from_value(value.get_mut("key")?.take()).ok()
}

/// A serde_json error, without any value from the file: data errors such as
/// `invalid type: string "…"` quote the offending value, which could be a token.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = if e.line() > 0 {
        format!(" at line {} column {}", e.line(), e.column())
    } else {
        String::new()
    };
    match e.classify() {
        Category::Eof => format!("it is truncated{at}"),
        Category::Syntax => format!("it is not valid JSON ({e})"),
        Category::Io => format!("it could not be read ({e})"),
        Category::Data => {
            let msg = e.to_string();
            if msg.contains('"')
                || msg.starts_with("unknown variant")
                || msg.starts_with("invalid value")
            {
                format!("a field has a value of the wrong type or form{at}")
            } else {
                msg
            }
        }
    }
}

#[cfg(test)]
mod tests;
