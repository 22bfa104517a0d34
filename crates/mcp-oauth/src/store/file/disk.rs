//! The store's files on disk: private directories (0700, owned by the user), files
//! opened without following links, bounded reads, atomic writes (temp file 0600, fsync,
//! rename, fsync of the directory), and I/O errors in words with what to do.

use super::{HOME_ENV, MAX_FILE_BYTES};
use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Opens `path` with `options`, without following a symbolic link in its place: a link
/// there was put by someone else (mcp-oauth writes by rename, which replaces a link), to
/// make us read or lock a file of their choosing. On Unix the kernel refuses to follow
/// it (`O_NOFOLLOW`); [`open_err`] tells that refusal apart from other errors.
pub(super) fn open_no_follow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
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
pub(super) fn open_err(path: &Path, doing: &str, e: io::Error) -> Error {
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
pub(super) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match open_no_follow(OpenOptions::new().read(true), path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_err(path, "reading", e)),
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
        .map_err(|e| io_err(path, "reading", e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(store_err(
            path,
            "is larger than 1 MiB, so it is not a file written by mcp-oauth; move it away or delete it",
        ));
    }
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` atomically: temp file (0600) in `dir`, fsync, rename, fsync
/// of the directory.
pub(super) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, "creating a temporary file in", e))?;
    // On any error below, dropping `tmp` deletes the temporary file.
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_err(tmp.path(), "writing", e))?;
    tmp.persist(path)
        .map_err(|e| io_err(path, "replacing", e.error))?;
    sync_dir(dir);
    Ok(())
}

/// A temporary file older than this was left by a writer that died (SIGKILL, power
/// loss) between creating and renaming it: a write takes milliseconds.
pub(super) const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// Removes the temporary files (`.*.tmp`) that dead writers left in `dir`: they hold
/// credentials that are no longer in use. Best effort: failures are only logged.
pub(super) fn sweep_stale_temp_files(dir: &Path) {
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
pub(super) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(path = %dir.display(), error = %e, "could not flush the directory to disk");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Makes sure `path` is a private directory of the current user (see
/// [`check_private_dir`]), creating it (and its parents) with mode 0700 when missing.
pub(super) fn ensure_private_dir(path: &Path) -> Result<()> {
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
        .map_err(|e| io_err(path, "creating", e))?;
    // The umask may have removed bits we need (it cannot have added any).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(path, "setting permissions on", e))?;
    }
    Ok(())
}

/// Checks an existing store directory: it must be a directory that belongs to the current
/// user, and it is made 0700 when group or others have access. The store root gets the
/// same treatment as its subdirectories, also when `MCP_OAUTH_HOME` chose it: it holds
/// the same secrets. `Ok(false)` when it does not exist.
pub(super) fn check_private_dir(path: &Path) -> Result<bool> {
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
        Err(e) => Err(io_err(path, "accessing", e)),
    }
}

/// Refuses a directory of another user: its owner could read the credentials, or replace
/// them with a record that sends our secrets to a server of their choosing.
#[cfg(unix)]
pub(super) fn check_dir_owner(path: &Path, meta: &fs::Metadata) -> Result<()> {
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
pub(super) fn check_dir_owner(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    Ok(())
}

/// Takes group and other access away from a store directory, with a warning.
#[cfg(unix)]
pub(super) fn make_dir_private(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(|e| {
        io_err(
            path,
            "making the credential store directory private (`chmod 700`)",
            e,
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
pub(super) fn make_dir_private(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    Ok(())
}

pub(super) fn store_err(path: &Path, message: impl Into<String>) -> Error {
    Error::store(path.display().to_string(), message)
}

/// An I/O error on `path` while `doing` something to it, with what to do about it.
pub(super) fn io_err(path: &Path, doing: &str, e: io::Error) -> Error {
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
    Error::Store {
        path: path.display().to_string(),
        message,
        source: Some(Box::new(e)),
    }
}
