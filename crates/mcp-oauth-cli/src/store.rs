//! Which credential store the commands use, and why, chosen once per command for every
//! command: `--store` / `MCP_OAUTH_STORE` / `[store]` in the configuration file, in that
//! order, name one (`file`, `keychain`, `postgres://…`); else the keychain store where the
//! OS keychain works, the file store where it does not (headless Linux), and the file
//! store when `MCP_OAUTH_HOME` names a directory (tests, containers, several identities:
//! a directory given on purpose is the file store's; `--store keychain` seals it).

use crate::config_file;
use mcp_oauth::store::{
    ClientKey, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore, FileStore,
    Scan, UnreadableFile,
};
use mcp_oauth_store_keychain::{Choice, KeychainStore};
use mcp_oauth_store_postgres::{EndUser, KeyRing, PgStore, PgStoreOptions};
use std::fmt;
use std::sync::{Arc, OnceLock};

pub const STORE_ENV: &str = "MCP_OAUTH_STORE";
pub const USER_ENV: &str = "MCP_OAUTH_USER";

/// What the user asked for (flags and environment, from clap).
#[derive(Debug, Clone, Default)]
pub struct StoreArgs {
    pub store: Option<String>,
    pub user: Option<String>,
}

/// Where the choice came from, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Config,
    /// The default, and the OS keychain works.
    KeychainWorks,
    /// The default, and no keychain works: why.
    NoKeychain(String),
    /// `MCP_OAUTH_HOME` names the directory.
    HomeSet,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("chosen by --store or MCP_OAUTH_STORE"),
            Origin::Config => f.write_str("chosen by [store] in the configuration file"),
            Origin::KeychainWorks => f.write_str("the default where the OS keychain works"),
            Origin::NoKeychain(why) => write!(f, "the default: {why}"),
            Origin::HomeSet => f.write_str(
                "MCP_OAUTH_HOME names the directory, so the file store; --store keychain seals it \
                 with the OS keychain",
            ),
        }
    }
}

/// The kinds of store, as named by `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Keychain,
    Postgres(String),
}

fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    let s = s.trim();
    if s == "file" {
        Ok(Kind::File)
    } else if s == "keychain" {
        Ok(Kind::Keychain)
    } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(Kind::Postgres(s.to_string()))
    } else {
        anyhow::bail!(
            "--store / {STORE_ENV}: expected `file`, `keychain` or a postgres:// connection \
             string, not {:?}",
            // A connection string may hold a password: only its scheme is shown.
            s.split_once("://").map_or(s, |(scheme, _)| scheme)
        )
    }
}

static ARGS: OnceLock<StoreArgs> = OnceLock::new();

/// Records the flags for [`open`]; called once by `main`.
pub fn set_args(args: StoreArgs) {
    let _ = ARGS.set(args);
}

/// The store in use.
#[derive(Clone)]
pub enum Store {
    File(Arc<FileStore>, Origin),
    Keychain(Arc<KeychainStore>, Origin),
    Vault(Arc<PgStore>, Origin),
}

/// Opens the store chosen for this run. The vault connects (and migrates its schema)
/// here, so this blocks; it runs on a thread that may block.
pub fn open() -> anyhow::Result<Store> {
    let args = ARGS.get().cloned().unwrap_or_default();
    let file = match config_file::default_path() {
        Some(p) => config_file::load(&p, false)?.store,
        None => Default::default(),
    };
    let (kind, origin) = match (&args.store, &file.url) {
        (Some(s), _) => (parse_kind(s)?, Origin::Flag),
        (None, Some(s)) => (parse_kind(s)?, Origin::Config),
        (None, None) => return default_store(),
    };
    match kind {
        Kind::File => Ok(Store::File(
            Arc::new(FileStore::default_location()?),
            origin,
        )),
        Kind::Keychain => {
            let dir = FileStore::default_location()?.dir().to_path_buf();
            let (store, moved) = KeychainStore::open(&dir).map_err(keychain_error)?;
            note_moved(moved);
            Ok(Store::Keychain(Arc::new(store), origin))
        }
        Kind::Postgres(url) => {
            let keys = KeyRing::from_env()?;
            let user = end_user(args.user.or(file.user))?;
            let vault = tokio::task::block_in_place(|| {
                PgStore::open(&url, PgStoreOptions::new(user, keys))
            })?;
            Ok(Store::Vault(Arc::new(vault), origin))
        }
    }
}

/// Nothing named a store: the keychain store where the OS keychain works, else files.
fn default_store() -> anyhow::Result<Store> {
    let files = FileStore::default_location()?;
    if std::env::var_os("MCP_OAUTH_HOME").is_some_and(|h| !h.is_empty()) {
        return Ok(Store::File(Arc::new(files), Origin::HomeSet));
    }
    match mcp_oauth_store_keychain::choose(files.dir()).map_err(keychain_error)? {
        Choice::Keychain(store, moved) => {
            note_moved(moved);
            Ok(Store::Keychain(Arc::new(store), Origin::KeychainWorks))
        }
        Choice::Files(store, why) => Ok(Store::File(Arc::new(store), Origin::NoKeychain(why))),
    }
}

fn note_moved(moved: usize) {
    if moved > 0 {
        crate::ui::say(format_args!(
            "note: moved {moved} stored credential(s) and client registration(s) from plain \
             files into the keychain store (sealed with a key in the OS keychain)"
        ));
    }
}

/// The keychain's error, with what to do about it.
fn keychain_error(e: mcp_oauth_store_keychain::KeychainError) -> anyhow::Error {
    anyhow::Error::new(e).context(
        "the keychain store cannot be used; unlock the OS keychain (or start its Secret \
         Service), or choose another store with --store file",
    )
}

/// `--user`, `MCP_OAUTH_USER`, `[store] user`, else the account this process runs as
/// (from the OS, not `$USER`, which a container or `sudo` may leave unset or stale).
fn end_user(given: Option<String>) -> anyhow::Result<EndUser> {
    let name = match given.filter(|n| !n.trim().is_empty()) {
        Some(n) => n,
        None => whoami::username().map_err(|e| {
            anyhow::anyhow!(
                "the vault keeps credentials per end user, and the name of the account running \
                 mcp-oauth is unknown ({e}); give --user or {USER_ENV}"
            )
        })?,
    };
    Ok(EndUser::new(name)?)
}

impl Store {
    pub fn shared(&self) -> Arc<dyn CredentialStore> {
        match self {
            Store::File(s, _) => s.clone(),
            Store::Keychain(s, _) => s.clone(),
            Store::Vault(s, _) => s.clone(),
        }
    }

    /// "file store /home/me/.local/share/mcp-oauth (the default)".
    pub fn describe(&self) -> String {
        match self {
            Store::File(s, o) => format!("file store {} ({o})", s.dir().display()),
            Store::Keychain(s, o) => format!(
                "keychain store {} (sealed with a key in the OS keychain; {o})",
                s.dir().display()
            ),
            Store::Vault(s, o) => format!(
                "PostgreSQL vault {}, user {}, key {} ({o})",
                s.location(),
                s.end_user(),
                s.current_key_id()
            ),
        }
    }

    /// Every credential; files that cannot be read too (the vault skips unreadable rows
    /// with a warning: it has no file to name or delete).
    pub fn scan_credentials(&self) -> mcp_oauth::Result<Scan<CredentialKey, CredentialRecord>> {
        match self {
            Store::File(s, _) => s.scan_credentials(),
            // Plain files left unreadable stay where the file store finds them.
            Store::Keychain(s, _) => Ok(Scan {
                entries: s.list()?,
                unreadable: FileStore::new(s.dir().to_path_buf())
                    .scan_credentials()?
                    .unreadable,
            }),
            Store::Vault(s, _) => Ok(Scan {
                entries: s.list()?,
                unreadable: Vec::new(),
            }),
        }
    }

    pub fn scan_clients(&self) -> anyhow::Result<Scan<ClientKey, ClientRegistration>> {
        match self {
            Store::File(s, _) => Ok(s.scan_clients()?),
            Store::Keychain(s, _) => Ok(Scan {
                entries: s.list_clients()?,
                unreadable: Vec::new(),
            }),
            Store::Vault(s, _) => Ok(Scan {
                entries: s.list_clients()?,
                unreadable: Vec::new(),
            }),
        }
    }

    pub fn remove_unreadable<K: serde::de::DeserializeOwned>(
        &self,
        file: &UnreadableFile<K>,
    ) -> mcp_oauth::Result<bool> {
        match self {
            Store::File(s, _) => s.remove_unreadable(file),
            Store::Keychain(s, _) => FileStore::new(s.dir().to_path_buf()).remove_unreadable(file),
            Store::Vault(..) => Ok(false),
        }
    }

    /// The file store, for what only it has (file paths).
    pub fn as_file(&self) -> Option<&FileStore> {
        match self {
            Store::File(s, _) => Some(s),
            Store::Keychain(..) | Store::Vault(..) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names() {
        assert_eq!(parse_kind("file").unwrap(), Kind::File);
        assert_eq!(parse_kind("keychain").unwrap(), Kind::Keychain);
        for url in [
            "postgres://db/vault",
            "postgresql://u@db:5433/v?sslmode=require",
        ] {
            assert_eq!(parse_kind(url).unwrap(), Kind::Postgres(url.into()));
        }
        let e = parse_kind("sqlite://u:hunter2@x").unwrap_err().to_string();
        assert!(e.contains("\"sqlite\"") && !e.contains("hunter2"), "{e}");
        assert!(parse_kind("").is_err());
    }

    #[test]
    fn the_end_user_defaults_to_the_account() {
        assert_eq!(end_user(Some("alice".into())).unwrap().as_str(), "alice");
        let os = whoami::username().unwrap();
        assert_eq!(end_user(None).unwrap().as_str(), os);
        assert_eq!(end_user(Some(" ".into())).unwrap().as_str(), os);
    }
}
