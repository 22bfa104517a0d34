//! The vault's tables, created and migrated by the tool: each migration has a version,
//! applied in order inside one transaction, and recorded in `mcp_oauth_schema_migrations`.
//! Many workers start at once in a fleet: a transaction-scoped advisory lock makes one
//! of them migrate while the others wait and then find nothing left to do.

use crate::conn::{Backoff, Connector};
use crate::error::VaultError;

/// One step of the schema. Never edit a released one: add the next.
pub(crate) struct Migration {
    pub version: i32,
    pub description: &'static str,
    pub sql: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "credentials, client registrations and refresh leases",
        sql: "
        -- One user's credential for one MCP server (and profile; '' = none). The record,
        -- secrets and all, is the ciphertext; the other columns say whose it is.
        CREATE TABLE mcp_oauth_credentials (
            end_user    text        NOT NULL,
            server_url  text        NOT NULL,
            profile     text        NOT NULL,
            issuer      text        NOT NULL,
            key_id      text        NOT NULL,
            sealed      bytea       NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (end_user, server_url, profile)
        );
        -- A client registration at one authorization server, shared by the users of the
        -- vault (the same application registers once per issuer and redirect URI).
        CREATE TABLE mcp_oauth_clients (
            issuer       text        NOT NULL,
            redirect_uri text        NOT NULL,
            key_id       text        NOT NULL,
            sealed       bytea       NOT NULL,
            updated_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (issuer, redirect_uri)
        );
        -- Who holds a credential's lock, kept across a restart of the server (which
        -- frees every advisory lock while a holder may still be redeeming a refresh
        -- token). See lock.rs.
        CREATE TABLE mcp_oauth_leases (
            lock_key    bigint      PRIMARY KEY,
            holder      text        NOT NULL,
            incarnation timestamptz NOT NULL,
            expires_at  timestamptz NOT NULL
        );
    ",
    },
    Migration {
        version: 2,
        description: "issuer pins of configured clients",
        sql: "
        -- The authorization server a configured client's secret or key may be sent to, per
        -- MCP server and client id (mcp_oauth::store::IssuerPin): not a secret, shared by
        -- the vault's users, kept beyond logout.
        CREATE TABLE mcp_oauth_issuer_pins (
            server_url  text        NOT NULL,
            client_id   text        NOT NULL,
            issuer      text        NOT NULL,
            pinned_at   bigint      NOT NULL,
            configured  boolean     NOT NULL,
            PRIMARY KEY (server_url, client_id)
        );
    ",
    },
];

/// The newest version this code knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Key of the transaction-scoped advisory lock that serializes migrators.
pub(crate) const MIGRATION_LOCK: i64 = 0x6d63_702d_6f61_7574; // "mcp-oaut"

/// Brings the database to [`latest`]; returns the versions applied now. A worker that
/// starts while the database restarts waits for it (the connector's patience).
pub(crate) async fn migrate(connector: &Connector) -> Result<Vec<i32>, VaultError> {
    let mut backoff = Backoff::new(connector.patience);
    loop {
        let mut client = connector.connect().await?;
        match migrate_on(&mut client).await {
            Ok(outcome) => return outcome,
            Err(e) => {
                backoff
                    .wait_or_fail(e, "migrating the vault's schema")
                    .await?
            }
        }
    }
}

/// One attempt on one connection: `Err` for a database error (retried when the
/// database was away), `Ok(Err)` when the schema is newer than this code.
async fn migrate_on(
    client: &mut tokio_postgres::Client,
) -> Result<Result<Vec<i32>, VaultError>, tokio_postgres::Error> {
    // Every worker checks at start: a look first, so that a fleet starting at once does
    // not queue on the migrators' lock when there is nothing to do.
    match current_version(client).await? {
        Some(v) if v == latest() => return Ok(Ok(Vec::new())),
        Some(found) if found > latest() => {
            return Ok(Err(VaultError::NewerSchema {
                found,
                known: latest(),
            }));
        }
        _ => {}
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mcp_oauth_schema_migrations (
             version     integer     PRIMARY KEY,
             description text        NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    // Read again under the lock: another worker may have migrated meanwhile.
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM mcp_oauth_schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if found > latest() {
        return Ok(Err(VaultError::NewerSchema {
            found,
            known: latest(),
        }));
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO mcp_oauth_schema_migrations (version, description) VALUES ($1, $2)",
            &[&m.version, &m.description],
        )
        .await?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "vault schema migrated"
        );
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(Ok(applied))
}

/// The recorded version, `None` before the first migration.
async fn current_version(
    client: &tokio_postgres::Client,
) -> Result<Option<i32>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('mcp_oauth_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM mcp_oauth_schema_migrations",
            &[],
        )
        .await?
        .get(0);
    Ok(Some(v))
}
