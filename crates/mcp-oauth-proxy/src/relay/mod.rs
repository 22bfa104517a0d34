//! The relay: routes each message from the stdio client to the server and every server
//! message back, on whichever wire the message belongs to.
//!
//! - A message carrying `_meta["io.modelcontextprotocol/protocolVersion"]` is a
//!   2026-07-28 (stateless) message: it is POSTed with `MCP-Protocol-Version`,
//!   `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`, and no session.
//! - `initialize` starts a session-based (2025-era) connection: the session id and the
//!   negotiated version go on every later POST; after `notifications/initialized` the GET
//!   stream is opened (where the server offers one); interrupted response streams are
//!   resumed with `Last-Event-ID`; a 404 on the session starts a new session (replaying
//!   the client's `initialize` and `notifications/initialized`) and the request is sent
//!   again; DELETE ends the session at shutdown.
//! - When the server turns out to be modern-only, `initialize` is answered from
//!   `server/discover` and later messages get the per-request `_meta` stamped in
//!   ([`super::bridge`]); when it turns out to be a 2024-11-05 HTTP+SSE server, the
//!   legacy transport takes over ([`super::sse_transport`]).
//!
//! Requests run concurrently (one task each). Notifications and responses from the
//! client go through one ordered lane, and a request waits until the notifications
//! received before it were delivered (so `notifications/initialized` reaches the server
//! before the next request, as it would on a single connection).
//!
//! The relay is one [`Relay`], its methods grouped by what they do:
//! - [`dispatch`]: client → server: each line parsed and routed, requests run as tracked
//!   tasks (with their time limit), notifications and responses through the ordered lane;
//! - [`session`]: the 2025-era session: `initialize`, renewal after a 404, the GET
//!   stream, DELETE;
//! - [`stateless`]: the 2026-07-28 wire: request metadata headers and the tools'
//!   `x-mcp-header` annotations;
//! - [`reply`]: server → client: reading a reply (JSON or SSE, resumed when it breaks)
//!   and routing every message it holds.
//!
//! This file holds the relay's state, the connection it shares between them, and
//! shutdown.

mod dispatch;
mod reply;
mod session;
mod stateless;

pub(crate) use reply::{ReplyCtx, ReplyError, describe_reply};
pub(crate) use stateless::response_error_code;

use super::ProxyOptions;
use super::bridge::Bridge;
use super::message::{Envelope, error_response};
use super::stdio::Output;
use super::upstream::{SESSION_HEADER, Upstream, VERSION_HEADER};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use mcp_oauth::wire::headers::ParamHeader;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, RwLock, mpsc, oneshot, watch};
use tokio::task::AbortHandle;

/// Longest wait between reconnections of the GET stream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The connection to the server as far as the 2025-era wire is concerned.
#[derive(Default)]
pub(crate) struct Conn {
    /// Bumped by every new session / connection.
    pub generation: u64,
    pub mode: Mode,
    pub session_id: Option<HeaderValue>,
    pub version: Option<HeaderValue>,
    /// The client's `initialize` request and its id, replayed for a new session.
    pub init: Option<(Bytes, Value)>,
    /// The client's `notifications/initialized`, replayed for a new session.
    pub initialized: Option<Bytes>,
    /// The GET stream (Streamable HTTP) or the event stream (HTTP+SSE) reader.
    pub stream_task: Option<AbortHandle>,
}

#[derive(Default, Clone)]
pub(crate) enum Mode {
    /// Streamable HTTP, session-based when the server assigned a session.
    #[default]
    Streamable,
    /// The 2024-11-05 HTTP+SSE transport: POSTs go to this endpoint, every answer comes
    /// on the event stream.
    Sse { endpoint: String },
    /// A legacy client bridged to a modern-only server.
    Bridged(Arc<Bridge>),
}

/// What a request task needs to know about the connection, taken without holding the
/// lock across I/O.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub generation: u64,
    pub mode: Mode,
    pub session_id: Option<HeaderValue>,
    pub version: Option<HeaderValue>,
}

impl Snapshot {
    /// The session headers of a 2025-era request.
    pub(crate) fn session_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = &self.session_id {
            h.insert(SESSION_HEADER, s.clone());
        }
        if let Some(v) = &self.version {
            h.insert(VERSION_HEADER, v.clone());
        }
        h
    }
}

struct Pending {
    token: u64,
    /// The client's id, for the error that answers it at shutdown.
    id: Value,
    abort: Option<AbortHandle>,
    /// Sent on the stateless wire (or bridged): cancelled by closing its stream.
    stateless: bool,
    /// `subscriptions/listen`: open until cancelled; not waited for at shutdown.
    long_lived: bool,
}

pub(crate) struct Relay {
    pub up: Arc<Upstream>,
    pub out: Output,
    pub opts: ProxyOptions,
    pub conn: Arc<RwLock<Conn>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Set by [`Relay::close`]: a request task that finishes now is answered there.
    closing: AtomicBool,
    /// Signalled whenever a request finishes.
    idle: Notify,
    tokens: AtomicU64,
    /// `x-mcp-header` annotations by tool name (stateless wire).
    tools: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// The last 2026-07-28 protocol version the client used.
    modern_version: Mutex<Option<String>>,
    lane_tx: mpsc::UnboundedSender<(Bytes, Envelope)>,
    lane_seq: AtomicU64,
    lane_done: watch::Receiver<u64>,
    /// The lane task and other background work, aborted at shutdown.
    background: Mutex<Vec<AbortHandle>>,
    /// Waiters for responses on the HTTP+SSE event stream, by id key.
    pub sse_waiters: Mutex<HashMap<String, oneshot::Sender<Bytes>>>,
    /// Waiters for the client's responses to requests the proxy itself sent it (the
    /// bridge's Multi Round-Trip input requests), by id key.
    client_waiters: Mutex<HashMap<String, oneshot::Sender<Bytes>>>,
    /// Requests the server sent on a request's response stream, by id key: the clock of
    /// that request stays stopped until the client answers (a user may take minutes over
    /// an elicitation; that is not the server being silent).
    server_asks: Mutex<HashMap<String, super::deadline::Stopped>>,
    /// Drop `notifications/subscriptions/acknowledged` instead of relaying it (the
    /// bridge's own subscription; a legacy client does not know the method).
    hide_acknowledgements: AtomicBool,
    /// Acknowledgements dropped so far.
    acknowledged: AtomicU64,
    internal_ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Relay {
    pub(crate) fn start(up: Arc<Upstream>, out: Output, opts: ProxyOptions) -> Arc<Relay> {
        let (lane_tx, mut lane_rx) = mpsc::unbounded_channel::<(Bytes, Envelope)>();
        let (done_tx, lane_done) = watch::channel(0u64);
        let relay = Arc::new(Relay {
            up,
            out,
            opts,
            conn: Arc::new(RwLock::new(Conn::default())),
            pending: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            idle: Notify::new(),
            tokens: AtomicU64::new(0),
            tools: Mutex::new(HashMap::new()),
            modern_version: Mutex::new(None),
            lane_tx,
            lane_seq: AtomicU64::new(0),
            lane_done,
            background: Mutex::new(Vec::new()),
            sse_waiters: Mutex::new(HashMap::new()),
            client_waiters: Mutex::new(HashMap::new()),
            server_asks: Mutex::new(HashMap::new()),
            hide_acknowledgements: AtomicBool::new(false),
            acknowledged: AtomicU64::new(0),
            internal_ids: AtomicU64::new(0),
        });
        // The lane holds a weak reference so that it does not keep the relay alive.
        let weak = Arc::downgrade(&relay);
        relay.spawn_background(async move {
            let mut done = 0u64;
            while let Some((bytes, env)) = lane_rx.recv().await {
                let Some(relay) = weak.upgrade() else { break };
                relay.lane_message(bytes, env).await;
                drop(relay);
                done += 1;
                let _ = done_tx.send(done);
            }
        });
        relay
    }

    pub(crate) fn url(&self) -> &str {
        &self.up.url
    }

    pub(crate) fn next_internal_id(&self) -> Value {
        let n = self.internal_ids.fetch_add(1, Ordering::Relaxed);
        Value::String(format!("mcp-oauth-proxy-{n}"))
    }

    pub(crate) async fn snapshot(&self) -> Snapshot {
        let c = self.conn.read().await;
        Snapshot {
            generation: c.generation,
            mode: c.mode.clone(),
            session_id: c.session_id.clone(),
            version: c.version.clone(),
        }
    }

    pub(crate) async fn send_out(&self, msg: Bytes) {
        self.out.send(msg).await;
    }

    /// Sends the client a request of the proxy's own (`method`, `params`) and waits for
    /// its response (the whole message). The id is the proxy's, so that the response
    /// is recognised and not relayed to the server. Dropping the future forgets the
    /// request (a late response is then relayed like any other).
    pub(crate) async fn ask_client(&self, method: &str, params: Option<&Value>) -> Option<Bytes> {
        let id = self.next_internal_id();
        let mut msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            msg["params"] = p.clone();
        }
        let key = super::message::id_key(&id);
        let (tx, rx) = oneshot::channel();
        lock(&self.client_waiters).insert(key.clone(), tx);
        struct Forget<'a>(&'a Relay, String);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(&self.0.client_waiters).remove(&self.1);
            }
        }
        let _forget = Forget(self, key);
        self.send_out(Bytes::from(msg.to_string())).await;
        rx.await.ok()
    }

    /// Runs `fut` until it ends or the relay shuts down.
    pub(crate) fn spawn_background<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = tokio::spawn(fut);
        lock(&self.background).push(task.abort_handle());
    }

    pub(crate) fn hide_acknowledgements(&self) {
        self.hide_acknowledgements.store(true, Ordering::Relaxed);
    }

    /// `notifications/subscriptions/acknowledged` messages dropped so far.
    pub(crate) fn acknowledgements(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    fn client_waiter(&self, env: &Envelope) -> Option<oneshot::Sender<Bytes>> {
        let id = env.id.as_ref()?;
        let mut waiters = lock(&self.client_waiters);
        if waiters.is_empty() {
            return None;
        }
        waiters.remove(&super::message::id_key(id))
    }

    fn busy(&self) -> bool {
        lock(&self.pending).values().any(|p| !p.long_lived)
            || *self.lane_done.borrow() < self.lane_seq.load(Ordering::SeqCst)
    }

    /// Waits (at most `grace`) for requests and queued notifications to finish.
    pub(crate) async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.busy() && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(20)),
                self.idle.notified(),
            )
            .await;
        }
    }

    /// Stops everything and ends the session (DELETE). With `unanswered` (a JSON-RPC error
    /// code and why), every request still in flight is answered with that error first.
    pub(crate) async fn close(self: &Arc<Self>, unanswered: Option<(i64, String)>) {
        self.closing.store(true, Ordering::SeqCst);
        let pending: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in &pending {
            if let Some(t) = &p.abort {
                t.abort();
            }
        }
        if let Some((code, why)) = unanswered {
            for p in &pending {
                tracing::warn!(id = %p.id, "{why}; answering the request with an error");
                let msg = format!("mcp-oauth proxy: {why}");
                self.send_out(error_response(Some(&p.id), code, &msg, None))
                    .await;
            }
        }
        for t in lock(&self.background).drain(..) {
            t.abort();
        }
        lock(&self.sse_waiters).clear();
        lock(&self.server_asks).clear();
        let (session, version) = {
            let mut c = self.conn.write().await;
            if let Some(t) = c.stream_task.take() {
                t.abort();
            }
            match c.mode {
                Mode::Streamable => (c.session_id.take(), c.version.take()),
                _ => (None, None),
            }
        };
        if let Some(s) = session {
            self.delete_session(s, version).await;
        }
    }
}

/// 0.5 s, 1 s, 2 s, ... up to [`MAX_BACKOFF`].
pub(crate) fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    (Duration::from_millis(250) * 2u32.saturating_pow(failures.min(8))).min(MAX_BACKOFF)
}
