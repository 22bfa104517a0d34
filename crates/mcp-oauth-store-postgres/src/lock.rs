//! Single-flight across machines: a credential's lock is a PostgreSQL advisory lock,
//! held by a connection of its own for as long as the lock is held.
//!
//! A holder that dies (SIGKILL, a crash, a lost machine once keepalives notice) loses
//! its connection and with it the lock: the next waiter goes on at once, no timer. That
//! is the lease, and it is sound because a dead holder redeems nothing more.
//!
//! One case is not: a restart of PostgreSQL frees every advisory lock while the holders
//! live on, maybe with a refresh token on its way to the authorization server. A second
//! worker taking the lock then would redeem the same refresh token, and an authorization
//! server with reuse detection revokes the whole grant. So a holder also writes a lease
//! row (`mcp_oauth_leases`) naming the server's incarnation (`pg_postmaster_start_time`)
//! and an expiry. Who takes the lock and finds a lease:
//! - of this incarnation: its holder's connection ended, so it is gone: take over;
//! - of an earlier incarnation, unexpired: its holder may be mid-refresh: wait until it
//!   writes its result (a save deletes the lease, see `PgStore::save`), releases, or the
//!   lease expires;
//! - expired: take over.

use crate::conn::{Backoff, Connector, Worker};
use crate::error::VaultError;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Client;

/// The 64-bit advisory lock key of a credential (SHA-256 of its identity); a collision
/// between two credentials only makes them wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LockKey(pub i64);

/// What a lease row says to the one who just took the advisory lock.
#[derive(Debug, PartialEq, Eq)]
enum LeaseState {
    Free,
    /// Left by a holder whose connection ended under this same server.
    Abandoned,
    /// Taken before the server restarted, and not expired.
    HeldAcrossRestart,
}

/// A held lock: its connection, and the lease to clear on release.
pub(crate) struct HeldLock {
    client: Option<Client>,
    key: LockKey,
    holder: String,
    worker: Arc<Worker>,
    connector: Connector,
}

impl Drop for HeldLock {
    /// Releases on the store's runtime. A caller outside any async runtime (the store's
    /// blocking API) waits for the release, bounded by [`RELEASE_WAIT`], so that a lock
    /// it has dropped is free when the next line asks for it. Inside a runtime (an async
    /// task, or the store's own runtime thread) it cannot block, so the release runs on
    /// its own. If the process exits first, its connection closes and the server frees
    /// the lock; the lease row left behind is of this incarnation, so it is ignored.
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let release = release(
            client,
            self.key,
            self.holder.clone(),
            self.connector.clone(),
        );
        if tokio::runtime::Handle::try_current().is_ok() {
            self.worker.detach(release);
        } else if !self.worker.wait_for(release, RELEASE_WAIT) {
            tracing::warn!(
                "releasing a credential's lock took over {} s; it goes on in the background",
                RELEASE_WAIT.as_secs()
            );
        }
    }
}

/// How long dropping a lock outside a runtime waits for its release: one round trip
/// normally, a reconnection when the database has just restarted.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// Clears the lease, then unlocks on the lock's own connection and closes it. The unlock
/// is explicit because closing a connection frees its locks only once the server has
/// noticed, after the client has moved on: a `try_lock` right after a release would find
/// the lock still held.
async fn release(client: Client, key: LockKey, holder: String, connector: Connector) {
    if clear_lease(&client, key, &holder).await.is_err() {
        // The lock's connection was lost (a restart), and the lock with it: clear the
        // lease on a new connection, or a waiter would wait for it to expire.
        if let Ok(c) = connector.connect().await {
            let _ = clear_lease(&c, key, &holder).await;
        }
        return;
    }
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&key.0])
        .await;
    // Dropping the client closes the connection (which would free the lock anyway).
    drop(client);
}

async fn clear_lease(
    client: &Client,
    key: LockKey,
    holder: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM mcp_oauth_leases WHERE lock_key = $1 AND holder = $2",
            &[&key.0, &holder],
        )
        .await
}

/// How long to wait between looks at a lease held across a restart.
const LEASE_POLL: Duration = Duration::from_millis(200);

/// Takes the lock of `key`: waits for it when `wait`, else `None` when it is held
/// (by a connection, or by a lease from before a restart).
pub(crate) async fn acquire(
    worker: Arc<Worker>,
    connector: Connector,
    key: LockKey,
    holder: String,
    lease: Duration,
    wait: bool,
) -> Result<Option<HeldLock>, VaultError> {
    // Each round: a connection, the advisory lock, the lease. A lost connection (the
    // server restarting while we wait) starts the round again.
    let mut backoff = Backoff::new(connector.patience);
    loop {
        let client = connector.connect().await?;
        match take(&client, key, &holder, lease, wait).await {
            Ok(true) => {
                return Ok(Some(HeldLock {
                    client: Some(client),
                    key,
                    holder,
                    worker,
                    connector,
                }));
            }
            Ok(false) => return Ok(None),
            Err(e) => {
                backoff
                    .wait_or_fail(e, "taking a credential's lock")
                    .await?
            }
        }
    }
}

/// On one connection: the advisory lock, then the lease. `false` when not waiting and
/// either is held.
async fn take(
    client: &Client,
    key: LockKey,
    holder: &str,
    lease: Duration,
    wait: bool,
) -> Result<bool, tokio_postgres::Error> {
    if wait {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key.0])
            .await?;
    } else {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key.0])
            .await?
            .get(0);
        if !got {
            return Ok(false);
        }
    }
    loop {
        match lease_state(client, key).await? {
            LeaseState::Free => break,
            LeaseState::Abandoned => {
                tracing::info!(
                    "the credential's previous lock holder is gone (its connection ended); taking over"
                );
                break;
            }
            LeaseState::HeldAcrossRestart if !wait => {
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&key.0])
                    .await?;
                return Ok(false);
            }
            LeaseState::HeldAcrossRestart => {
                tracing::info!(
                    "the database restarted while another worker held this credential's lock; waiting for its lease"
                );
                tokio::time::sleep(LEASE_POLL).await;
            }
        }
    }
    client
        .execute(
            "INSERT INTO mcp_oauth_leases (lock_key, holder, incarnation, expires_at)
             VALUES ($1, $2, pg_postmaster_start_time(), clock_timestamp() + make_interval(secs => $3))
             ON CONFLICT (lock_key) DO UPDATE
             SET holder = EXCLUDED.holder, incarnation = EXCLUDED.incarnation,
                 expires_at = EXCLUDED.expires_at",
            &[&key.0, &holder, &lease.as_secs_f64()],
        )
        .await?;
    Ok(true)
}

async fn lease_state(client: &Client, key: LockKey) -> Result<LeaseState, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT incarnation = pg_postmaster_start_time(), expires_at > clock_timestamp()
             FROM mcp_oauth_leases WHERE lock_key = $1",
            &[&key.0],
        )
        .await?;
    Ok(match row {
        None => LeaseState::Free,
        Some(r) if r.get::<_, bool>(0) => LeaseState::Abandoned,
        Some(r) if r.get::<_, bool>(1) => LeaseState::HeldAcrossRestart,
        Some(_) => LeaseState::Free,
    })
}
