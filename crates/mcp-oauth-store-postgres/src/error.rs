//! What can go wrong in the vault, each with its cause as `source()`.

use crate::crypto::KeyId;
use std::path::PathBuf;
use std::time::Duration;

/// An error of the PostgreSQL vault. None carries a secret: keys and records never
/// appear in one, only key ids and whose row it was.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The connection string could not be parsed.
    #[error("the vault URL is not a PostgreSQL connection string")]
    BadUrl(#[source] tokio_postgres::Error),

    /// The TLS configuration could not be built.
    #[error("cannot set up TLS for the database connection")]
    Tls(#[source] mcp_oauth::Error),

    /// The database could not be reached within the store's patience.
    #[error("the database is unreachable (still failing after {} s)", waited.as_secs())]
    Unavailable {
        waited: Duration,
        #[source]
        source: tokio_postgres::Error,
    },

    /// A statement failed for a reason that retrying does not mend.
    #[error("{doing} failed")]
    Query {
        doing: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The database holds a schema this version does not know: another mcp-oauth,
    /// newer, migrated it. Writing to it could lose what the newer one keeps.
    #[error(
        "the vault's schema is at version {found}, newer than this mcp-oauth knows \
         (version {known}); upgrade mcp-oauth"
    )]
    NewerSchema { found: i32, known: i32 },

    /// The encryption key(s) could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// A row is encrypted with a key this process was not given.
    #[error(
        "{whose} is encrypted with vault key {key_id}, which is not configured; give it \
         as an old key (MCP_OAUTH_VAULT_OLD_KEYS or MCP_OAUTH_VAULT_OLD_KEY_FILE) to read it"
    )]
    UnknownKey { whose: String, key_id: KeyId },

    /// Decryption failed with the right key: the row was altered, or its ciphertext was
    /// copied from another row (the row's identity is authenticated with it).
    #[error(
        "{whose} does not decrypt with vault key {key_id}: the row was altered or copied \
         from another row; remove that credential (log out of its server) and log in again"
    )]
    Tampered { whose: String, key_id: KeyId },

    /// The decrypted record is not one this version can read.
    #[error("{whose} cannot be read after decryption")]
    Format {
        whose: String,
        #[source]
        source: serde_json::Error,
    },

    /// A record could not be serialized (cannot happen with the types in mcp-oauth).
    #[error("cannot serialize {whose}")]
    Serialize {
        whose: String,
        #[source]
        source: serde_json::Error,
    },

    /// A key this store cannot keep.
    #[error("{0}")]
    InvalidKey(String),

    /// The store's runtime (see `conn.rs`) could not be started, or its task ended
    /// without an answer.
    #[error("the vault's connection runtime failed")]
    Runtime(#[source] std::io::Error),
}

/// Why the vault key(s) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no vault key: set MCP_OAUTH_VAULT_KEY to 32 random bytes in base64 (`openssl rand \
         -base64 32`), or MCP_OAUTH_VAULT_KEY_FILE to a file holding them"
    )]
    Missing,
    #[error("{origin} is not base64")]
    NotBase64 {
        origin: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{origin} holds {len} bytes; an AES-256 key is 32 (`openssl rand -base64 32`)")]
    WrongLength { origin: String, len: usize },
    #[error("cannot read the vault key file {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("both MCP_OAUTH_VAULT_KEY and MCP_OAUTH_VAULT_KEY_FILE are set; keep one")]
    Both,
}
