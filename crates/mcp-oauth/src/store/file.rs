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
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

mod scan;
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

/// Credentials stored as files in a private directory; see the [module docs](self).
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
    /// the existing directories (see the [module docs](self)).
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
            Err(e) => return Err(io_err(&path, "removing", &e)),
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
            "delete it and name the client's authorization server with --client-issuer \
             (client_issuer in the configuration file)",
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
                Err(e) => return Err(io_err(&path, "locking", &e)),
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
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, "locking", &e)),
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
            .map_err(|e| open_err(&path, "opening the lock file", &e))?;
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
    dirs::data_dir().map(|d| d.join("mcp-oauth")).ok_or_else(|| Error::Store {
        path: format!("${HOME_ENV}"),
        message: format!(
            "cannot determine the per-user data directory (is HOME set?); set {HOME_ENV} to the directory where credentials should be kept"
        ),
    })
}

/// First 32 hex characters of the SHA-256 of the key's canonical JSON (compact
/// `serde_json` output: fields in declaration order, `None` fields omitted).
fn file_name<K: Serialize>(key: &K) -> Result<String> {
    let json = serde_json::to_vec(key).map_err(|e| Error::Store {
        path: String::new(),
        message: format!("cannot serialize a store key: {e}"),
    })?;
    let digest = Sha256::digest(&json);
    Ok(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

fn file_name_matches<K: Serialize>(key: &K, stem: &str) -> bool {
    file_name(key).is_ok_and(|n| n == stem)
}

/// Opens `path` with `options`, without following a symbolic link in its place: a link
/// there was put by someone else (mcp-oauth writes by rename, which replaces a link), to
/// make us read or lock a file of their choosing. On Unix the kernel refuses to follow
/// it (`O_NOFOLLOW`); [`open_err`] tells that refusal apart from other errors.
fn open_no_follow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The bits of an `int` flag: the conversion cannot wrap.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options.open(path)
}

/// The error of a failed [`open_no_follow`]: a symbolic link is named as such (the
/// kernel's `ELOOP` reads "too many levels of symbolic links").
fn open_err(path: &Path, doing: &str, e: &io::Error) -> Error {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        store_err(
            path,
            "is a symbolic link, which mcp-oauth does not follow in its store (whoever made it \
             could point it at a file of their choosing); delete the link and log in again",
        )
    } else {
        io_err(path, doing, e)
    }
}

/// Reads a whole (small) file; `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match open_no_follow(OpenOptions::new().read(true), path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_err(path, "reading", &e)),
    };
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "credential store file is accessible to other users; run `chmod 600` on it"
            );
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, "reading", &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(store_err(
            path,
            "is larger than 1 MiB, so it is not a file written by mcp-oauth; move it away or delete it",
        ));
    }
    Ok(Some(bytes))
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

/// Writes `bytes` to `path` atomically: temp file (0600) in `dir`, fsync, rename, fsync
/// of the directory.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, "creating a temporary file in", &e))?;
    // On any error below, dropping `tmp` deletes the temporary file.
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_err(tmp.path(), "writing", &e))?;
    tmp.persist(path)
        .map_err(|e| io_err(path, "replacing", &e.error))?;
    sync_dir(dir);
    Ok(())
}

/// A temporary file older than this was left by a writer that died (SIGKILL, power
/// loss) between creating and renaming it: a write takes milliseconds.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// Removes the temporary files (`.*.tmp`) that dead writers left in `dir`: they hold
/// credentials that are no longer in use. Best effort: failures are only logged.
fn sweep_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if stale && let Err(e) = fs::remove_file(entry.path()) {
            tracing::debug!(path = %entry.path().display(), error = %e, "could not remove a stale temporary file");
        }
    }
}

/// Flushes a directory entry change (rename, unlink) to disk. Failure is only logged:
/// by then the change is visible, so reporting the operation as failed would be wrong.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(path = %dir.display(), error = %e, "could not flush the directory to disk");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Makes sure `path` is a private directory of the current user (see
/// [`check_private_dir`]), creating it (and its parents) with mode 0700 when missing.
fn ensure_private_dir(path: &Path) -> Result<()> {
    if check_private_dir(path)? {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|e| io_err(path, "creating", &e))?;
    // The umask may have removed bits we need (it cannot have added any).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(path, "setting permissions on", &e))?;
    }
    Ok(())
}

/// Checks an existing store directory: it must be a directory that belongs to the current
/// user, and it is made 0700 when group or others have access. The store root gets the
/// same treatment as its subdirectories, also when `MCP_OAUTH_HOME` chose it: it holds
/// the same secrets. `Ok(false)` when it does not exist.
fn check_private_dir(path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            check_dir_owner(path, &meta)?;
            make_dir_private(path, &meta)?;
            Ok(true)
        }
        Ok(_) => Err(store_err(
            path,
            format!(
                "exists but is not a directory; move it away or set {HOME_ENV} to another directory"
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, "accessing", &e)),
    }
}

/// Refuses a directory of another user: its owner could read the credentials, or replace
/// them with a record that sends our secrets to a server of their choosing.
#[cfg(unix)]
fn check_dir_owner(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() == me {
        return Ok(());
    }
    Err(store_err(
        path,
        format!(
            "belongs to another user (uid {}; mcp-oauth runs as uid {me}), who could read or \
             replace the credentials kept there; set {HOME_ENV} to a directory of your own, or \
             have the directory removed or given to you (`chown`)",
            meta.uid()
        ),
    ))
}

#[cfg(not(unix))]
fn check_dir_owner(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    Ok(())
}

/// Takes group and other access away from a store directory, with a warning.
#[cfg(unix)]
fn make_dir_private(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| {
        io_err(
            path,
            "making the credential store directory private (`chmod 700`)",
            &e,
        )
    })?;
    tracing::warn!(
        path = %path.display(),
        mode = format_args!("{mode:o}"),
        "credential store directory was accessible to other users; changed its mode to 700"
    );
    Ok(())
}

#[cfg(not(unix))]
fn make_dir_private(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    Ok(())
}

fn store_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Store {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// An I/O error on `path` while `doing` something to it, with what to do about it.
fn io_err(path: &Path, doing: &str, e: &io::Error) -> Error {
    let message = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied while {doing} it; make sure it and the directories above it belong \
             to the current user (`chmod 700` for directories, `chmod 600` for files), or set \
             {HOME_ENV} to a directory you own"
        ),
        io::ErrorKind::ReadOnlyFilesystem => format!(
            "{doing} it failed: the file system is read-only; set {HOME_ENV} to a writable directory"
        ),
        io::ErrorKind::StorageFull => {
            format!("{doing} it failed: no space left on the device; free some space and retry")
        }
        io::ErrorKind::NotADirectory => format!(
            "{doing} it failed: a component of the path is not a directory; move it away or set \
             {HOME_ENV} to another directory"
        ),
        _ => format!("{doing} it failed: {e}"),
    };
    store_err(path, message)
}

#[cfg(test)]
mod tests {
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
            Error::Store { path, message } => (path, message),
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
        let expected: String = Sha256::digest(br#"{"server_url":"https://mcp.example.com/mcp"}"#)
            [..16]
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
            let shown = Error::Store {
                path: p,
                message,
            }
            .to_string();
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
        let mut json: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
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
        let mut json: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
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
            &io::Error::from(io::ErrorKind::PermissionDenied),
        ));
        assert_eq!(p, "/x/credentials/abc.json");
        assert!(m.contains("permission denied while reading"), "{m}");
        assert!(m.contains("chmod") && m.contains(HOME_ENV), "{m}");
        let (_, m) = store_error(io_err(
            path,
            "replacing",
            &io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
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
}
