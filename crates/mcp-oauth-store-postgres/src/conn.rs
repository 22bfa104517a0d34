//! Connections, on a runtime of the store's own.
//!
//! [`CredentialStore`](mcp_oauth::store::CredentialStore) is blocking, and is called from
//! `spawn_blocking` threads, plain threads, and (dropping a lock) from inside an async
//! task. A blocking driver that runs a runtime per call (the `postgres` crate) panics in
//! the last case and blocks a runtime thread to close a connection. So the store owns a
//! one-thread runtime that drives every connection (tokio-postgres), a blocking call hands
//! it a future and waits on a channel, and a lock's release is a task handed to it
//! without waiting.

use crate::error::VaultError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The store's runtime; shut down without waiting when the store goes (dropping a
/// runtime from an async context would panic, and waiting for its tasks would block).
pub(crate) struct Worker {
    rt: Option<tokio::runtime::Runtime>,
}

impl Worker {
    pub(crate) fn start() -> Result<Worker, VaultError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mcp-oauth-vault")
            .enable_all()
            .build()
            .map_err(VaultError::Runtime)?;
        Ok(Worker { rt: Some(rt) })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the worker")
    }

    /// Runs `fut` on the store's runtime and blocks this thread until it is done.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, VaultError>> + Send + 'static,
    ) -> Result<T, VaultError> {
        self.spawn_answering(fut).recv().map_err(|_| {
            VaultError::Runtime(std::io::Error::other(
                "the vault task ended without an answer",
            ))
        })?
    }

    /// Runs `fut` on the store's runtime and blocks this thread until it is done or
    /// `limit` has passed; `false` when it is still running (it goes on without us).
    pub(crate) fn wait_for(
        &self,
        fut: impl Future<Output = ()> + Send + 'static,
        limit: Duration,
    ) -> bool {
        self.spawn_answering(fut).recv_timeout(limit).is_ok()
    }

    /// Spawns `fut` on the store's runtime; its output arrives on the returned channel.
    fn spawn_answering<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> std::sync::mpsc::Receiver<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx
    }

    /// Runs `fut` on the store's runtime without waiting for it.
    pub(crate) fn detach(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.rt().spawn(fut);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// How to open a connection, and how long to keep trying while the database is away.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    tls: MakeRustlsConnect,
    /// How long an operation keeps retrying while the database is unreachable (a
    /// restart, a fail-over).
    pub(crate) patience: Duration,
}

impl Connector {
    pub(crate) fn new(url: &str, patience: Duration) -> Result<Connector, VaultError> {
        let mut config: Config = url.parse().map_err(VaultError::BadUrl)?;
        if config.get_application_name().is_none() {
            config.application_name("mcp-oauth");
        }
        // A lock is held by a connection that may sit idle through a refresh: keepalives
        // let the server find a dead holder's connection (and free its lock) on its own,
        // and a half-open connection is noticed here.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let mut tls = mcp_oauth::http::tls_config().map_err(VaultError::Tls)?;
        // Not HTTP: no ALPN (a PostgreSQL 17 server refuses a foreign protocol name).
        tls.alpn_protocols.clear();
        Ok(Connector {
            config,
            tls: MakeRustlsConnect::new(tls),
            patience,
        })
    }

    /// `postgres://user@host:port/db`, without the password or other parameters.
    pub(crate) fn location(&self) -> String {
        use tokio_postgres::config::Host;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self
            .config
            .get_user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let db = self.config.get_dbname().unwrap_or("");
        format!("postgres://{user}{host}:{port}/{db}")
    }

    /// One attempt. The connection is driven by a task on the current (the store's)
    /// runtime until the client is dropped.
    pub(crate) async fn connect_once(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "vault connection ended");
            }
        });
        Ok(client)
    }

    /// Connects, retrying while the failure is one that waiting mends, for at most
    /// [`patience`](Self::patience).
    pub(crate) async fn connect(&self) -> Result<Client, VaultError> {
        let mut backoff = Backoff::new(self.patience);
        loop {
            match self.connect_once().await {
                Ok(c) => return Ok(c),
                Err(e) => backoff.wait_or_fail(e, "connecting to the vault").await?,
            }
        }
    }
}

/// Waits between attempts (50 ms doubling to 1 s) until the patience is spent.
pub(crate) struct Backoff {
    started: Instant,
    patience: Duration,
    delay: Duration,
    warned: bool,
}

impl Backoff {
    pub(crate) fn new(patience: Duration) -> Backoff {
        Backoff {
            started: Instant::now(),
            patience,
            delay: Duration::from_millis(50),
            warned: false,
        }
    }

    /// After a failed attempt: `Ok` once it is worth trying again, else the error.
    pub(crate) async fn wait_or_fail(
        &mut self,
        e: tokio_postgres::Error,
        doing: &'static str,
    ) -> Result<(), VaultError> {
        if !is_transient(&e) {
            return Err(VaultError::Query { doing, source: e });
        }
        let waited = self.started.elapsed();
        if waited >= self.patience {
            return Err(VaultError::Unavailable { waited, source: e });
        }
        if !self.warned {
            self.warned = true;
            tracing::warn!(error = %e, "the vault database is unreachable; retrying for up to {} s", self.patience.as_secs());
        }
        tokio::time::sleep(self.delay.min(self.patience - waited)).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
        Ok(())
    }
}

/// A failure that waiting may mend: the connection is gone or cannot be made, or the
/// server is shutting down, starting or recovering.
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08")
        }
        // No SQLSTATE: an I/O error (refused, reset, timed out) or a protocol error.
        None => {
            let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
            while let Some(s) = src {
                if s.is::<std::io::Error>() {
                    return true;
                }
                src = s.source();
            }
            e.to_string().contains("timed out")
        }
    }
}

/// The store's one shared connection for reads and writes: opened on first use, and
/// opened again when it was lost.
pub(crate) struct Shared {
    connector: Connector,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Shared {
    pub(crate) fn new(connector: Connector) -> Shared {
        Shared {
            connector,
            client: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    async fn client(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(self.connector.connect_once().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `op` on the shared connection; while the database is away, waits and runs
    /// it again on a new connection. Every statement the store runs this way is
    /// idempotent (an upsert, a delete, a read), so running one twice is harmless.
    pub(crate) async fn run<T, F, Fut>(&self, doing: &'static str, op: F) -> Result<T, VaultError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let mut backoff = Backoff::new(self.connector.patience);
        loop {
            let attempt = match self.client().await {
                Ok(c) => op(c).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if is_transient(&e) {
                        *self.client.lock().await = None;
                    }
                    backoff.wait_or_fail(e, doing).await?;
                }
            }
        }
    }
}
