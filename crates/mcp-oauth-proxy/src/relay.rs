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

use super::bridge::Bridge;
use super::client::Response;
use super::message::{
    Envelope, HEADER_MISMATCH, INTERNAL_ERROR, INVALID_REQUEST, Invalid, Kind, METHOD_NOT_FOUND,
    MISSING_CAPABILITY, PARSE_ERROR, REQUEST_TIMEOUT, UNSUPPORTED_VERSION, error_response,
    error_response_with, id_key, one_line,
};
use super::stdio::Output;
use super::upstream::{
    EventStream, MAX_ERROR_BODY, SESSION_HEADER, SendError, StreamItem, Upstream, VERSION_HEADER,
    media_type, read_body,
};
use super::{ProxyOptions, TransportMode};
use bytes::Bytes;
use http::Method;
use http::{HeaderMap, HeaderName, HeaderValue};
use mcp_oauth::wire::first_byte;
use mcp_oauth::wire::headers::{self, ParamHeader};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, OwnedRwLockWriteGuard, RwLock, mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use mcp_oauth::wire::{MAX_RESUMES, resume_headers, stream_headers};
/// Longest wait between reconnections of the GET stream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Time allowed for the DELETE that ends a session at shutdown.
const DELETE_TIMEOUT: Duration = Duration::from_secs(3);

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

/// How a request task is tracked.
struct Tracked {
    id: Value,
    /// On the stateless wire (or bridged): cancelled by closing its stream.
    stateless: bool,
    /// `subscriptions/listen`: open until cancelled, never given up on.
    long_lived: bool,
    /// Tell the server with `notifications/cancelled` when the request is given up.
    cancel_on_timeout: bool,
}

/// Why a request got no response from the server.
#[derive(Debug)]
pub(crate) enum ReplyError {
    Send(SendError),
    /// An HTTP error status; `error` is the JSON-RPC error object of the body, if any.
    Http {
        status: u16,
        error: Option<Value>,
        excerpt: String,
    },
    /// The server broke the transport's rules, or the stream ended early.
    Protocol(String),
}

impl ReplyError {
    /// The JSON-RPC error code of the body, when there is one.
    pub(crate) fn rpc_code(&self) -> Option<i64> {
        match self {
            ReplyError::Http { error: Some(e), .. } => e.get("code").and_then(Value::as_i64),
            _ => None,
        }
    }

    /// A recognized 2026-07-28 error (the server is modern): a modern error code, or
    /// `-32601` on a 404 (a modern server's "method not found"; a legacy HTTP+SSE
    /// server's 404 has no JSON-RPC body).
    pub(crate) fn is_modern(&self) -> bool {
        let code = self.rpc_code();
        let data_lists_modern = match self {
            ReplyError::Http { error: Some(e), .. } => e
                .pointer("/data/supported")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|v| v.as_str() == Some(mcp_oauth::wire::STATELESS_VERSION))
                }),
            _ => false,
        };
        matches!(
            code,
            Some(HEADER_MISMATCH | MISSING_CAPABILITY | UNSUPPORTED_VERSION)
        ) || data_lists_modern
            || matches!(self, ReplyError::Http { status: 404, .. } if code == Some(METHOD_NOT_FOUND))
    }

    /// The error response for the client's request `id`.
    pub(crate) fn to_response(&self, id: Option<&Value>, url: &str) -> Bytes {
        match self {
            ReplyError::Http {
                error: Some(e),
                status,
                ..
            } if e.is_object() => {
                tracing::debug!(url, status, "relaying the server's JSON-RPC error");
                error_response_with(id, e.clone())
            }
            ReplyError::Http {
                status, excerpt, ..
            } => {
                let hint = match status {
                    401 | 403 => " (authorization was refused)",
                    404 => " (no MCP endpoint at this URL?)",
                    _ => "",
                };
                let body = if excerpt.is_empty() {
                    String::new()
                } else {
                    format!(": {excerpt}")
                };
                error_response(
                    id,
                    INTERNAL_ERROR,
                    &format!("mcp-oauth proxy: {url} answered HTTP {status}{hint}{body}"),
                    Some(serde_json::json!({"httpStatus": status})),
                )
            }
            ReplyError::Send(e) => error_response(
                id,
                INTERNAL_ERROR,
                &format!("mcp-oauth proxy: request to {url} failed: {e}"),
                None,
            ),
            ReplyError::Protocol(m) => error_response(
                id,
                INTERNAL_ERROR,
                &format!("mcp-oauth proxy: {url}: {m}"),
                None,
            ),
        }
    }
}

impl From<SendError> for ReplyError {
    fn from(e: SendError) -> Self {
        ReplyError::Send(e)
    }
}

/// How a reply is read.
#[derive(Clone, Default)]
pub(crate) struct ReplyCtx {
    /// Relay the other messages of the reply (notifications, server requests).
    pub relay_others: bool,
    /// Resume an interrupted stream with GET + `Last-Event-ID`, with this session's
    /// headers.
    pub resume: Option<Snapshot>,
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

    // ---------------------------------------------------------------------------------
    // Client → server
    // ---------------------------------------------------------------------------------

    /// One line from the client.
    pub(crate) async fn dispatch(self: &Arc<Self>, line: Bytes) {
        match first_byte(&line) {
            None => {}
            Some(b'[') => self.dispatch_batch(&line).await,
            Some(_) => match Envelope::parse(&line) {
                Ok(env) => self.dispatch_message(line, env).await,
                Err(invalid) => self.reject(invalid).await,
            },
        }
    }

    async fn reject(&self, invalid: Invalid) {
        let msg = match invalid {
            Invalid::Parse(m) => {
                tracing::warn!("client sent a line that is not JSON: {m}");
                error_response(None, PARSE_ERROR, &format!("Parse error: {m}"), None)
            }
            Invalid::Request(m, id) => {
                tracing::warn!("client sent an invalid message: {m}");
                error_response(
                    id.as_ref(),
                    INVALID_REQUEST,
                    &format!("Invalid Request: {m}"),
                    None,
                )
            }
        };
        self.send_out(msg).await;
    }

    /// A JSON-RPC batch (2025-03-26): each member is handled as its own message.
    async fn dispatch_batch(self: &Arc<Self>, line: &[u8]) {
        let items: Vec<Value> = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                let invalid = if std::str::from_utf8(line).is_err() {
                    Invalid::Parse("the message is not valid UTF-8".into())
                } else if e.is_data() {
                    Invalid::Request(format!("not a JSON-RPC message: {e}"), None)
                } else {
                    Invalid::Parse(format!("invalid JSON: {e}"))
                };
                return self.reject(invalid).await;
            }
        };
        if items.is_empty() {
            return self
                .reject(Invalid::Request("an empty batch".into(), None))
                .await;
        }
        for item in items {
            let bytes = Bytes::from(item.to_string());
            match Envelope::parse(&bytes) {
                Ok(env) => self.dispatch_message(bytes, env).await,
                Err(invalid) => self.reject(invalid).await,
            }
        }
    }

    async fn dispatch_message(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        match env.kind() {
            Some(Kind::Request) if env.method() == "initialize" && env.version.is_none() => {
                // Later messages wait for the handshake: take the lock before reading on.
                let guard = self.conn.clone().write_owned().await;
                let me = self.clone();
                let tracked = Tracked {
                    id: env.id.clone().unwrap_or(Value::Null),
                    stateless: false,
                    long_lived: false,
                    // The spec: `initialize` is never cancelled.
                    cancel_on_timeout: false,
                };
                self.spawn_tracked(
                    tracked,
                    async move { me.initialize(guard, bytes, env).await },
                );
            }
            Some(Kind::Request) => {
                let stateless = env.version.is_some()
                    || matches!(self.conn.read().await.mode, Mode::Bridged(_));
                let tracked = Tracked {
                    id: env.id.clone().unwrap_or(Value::Null),
                    stateless,
                    long_lived: env.method() == "subscriptions/listen",
                    // A stateless request is cancelled by closing its stream, which
                    // giving it up does.
                    cancel_on_timeout: !stateless,
                };
                let lane_seq = self.lane_seq.load(Ordering::SeqCst);
                let me = self.clone();
                self.spawn_tracked(tracked, async move {
                    me.lane_wait(lane_seq).await;
                    me.request(bytes, &env).await
                });
            }
            Some(Kind::Notification) if env.method() == "notifications/cancelled" => {
                self.cancel(bytes, env).await;
            }
            Some(Kind::Response) => match self.client_waiter(&env) {
                Some(tx) => {
                    let _ = tx.send(bytes);
                }
                None => {
                    if let Some(id) = &env.id {
                        // The request that carried the server's question may wait again.
                        lock(&self.server_asks).remove(&id_key(id));
                    }
                    self.enqueue(bytes, env)
                }
            },
            Some(_) => self.enqueue(bytes, env),
            None => {}
        }
    }

    /// Runs a request task whose result (the response or an error response) goes to the
    /// client; registered so that it can be cancelled and waited for. A request that
    /// hears nothing from the server for [`ProxyOptions::request_timeout`] is given up
    /// and answered with an error ([`deadline`](super::deadline)).
    fn spawn_tracked<F>(self: &Arc<Self>, tracked: Tracked, fut: F)
    where
        F: Future<Output = Bytes> + Send + 'static,
    {
        let Tracked {
            id,
            stateless,
            long_lived,
            cancel_on_timeout,
        } = tracked;
        let key = id_key(&id);
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(
            key.clone(),
            Pending {
                token,
                id: id.clone(),
                abort: None,
                stateless,
                long_lived,
            },
        );
        let me = self.clone();
        let key2 = key.clone();
        let limit = self.opts.request_timeout.filter(|_| !long_lived);
        // A request's state machine is about 4.5 KB (every wire's path lives in it), and a
        // spawned future is moved several times on its way into the task: moved once,
        // into the heap, then only the pointer moves.
        let fut = Box::pin(fut);
        let handle = tokio::spawn(async move {
            let msg = match super::deadline::bounded(limit, fut).await {
                Some(msg) => msg,
                None => me.timed_out(&id, limit.unwrap_or_default(), cancel_on_timeout),
            };
            let ours = {
                let mut p = lock(&me.pending);
                match p.get(&key2) {
                    Some(e) if e.token == token => {
                        p.remove(&key2);
                        true
                    }
                    _ => false,
                }
            };
            if !ours {
                if me.closing.load(Ordering::SeqCst) {
                    // Answered by `close`.
                    return;
                }
                tracing::debug!(id = %key2, "the client has another request with this id in flight");
            }
            me.send_out(msg).await;
            me.idle.notify_waiters();
        });
        if let Some(e) = lock(&self.pending).get_mut(&key)
            && e.token == token
        {
            e.abort = Some(handle.abort_handle());
        }
    }

    /// The error for a request given up after `limit` without a word from the server;
    /// the server is told with `notifications/cancelled` when `cancel` (the session
    /// wire: what the spec asks of a sender that stops waiting).
    fn timed_out(&self, id: &Value, limit: Duration, cancel: bool) -> Bytes {
        let secs = limit.as_secs();
        tracing::warn!(url = %self.url(), id = %id, secs, "no word from the server for the request; giving it up");
        if cancel {
            let note = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": format!("no response within {secs} s (mcp-oauth proxy)")},
            });
            let bytes = Bytes::from(note.to_string());
            if let Ok(env) = Envelope::parse(&bytes) {
                self.enqueue(bytes, env);
            }
        }
        error_response(
            Some(id),
            REQUEST_TIMEOUT,
            &format!(
                "mcp-oauth proxy: {} sent nothing for this request in {secs} s \
                 (--request-timeout), so it was given up",
                self.url()
            ),
            Some(serde_json::json!({"timeout": secs})),
        )
    }

    fn enqueue(&self, bytes: Bytes, env: Envelope) {
        self.lane_seq.fetch_add(1, Ordering::SeqCst);
        let _ = self.lane_tx.send((bytes, env));
    }

    /// Waits until the lane delivered the first `seq` notifications.
    async fn lane_wait(&self, seq: u64) {
        let mut rx = self.lane_done.clone();
        let _ = rx.wait_for(|done| *done >= seq).await;
    }

    /// `notifications/cancelled`: a request on the stateless wire is cancelled by
    /// closing its response stream (2026-07-28 has no client notifications over HTTP);
    /// on the session wire the notification is forwarded and the local wait dropped.
    async fn cancel(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        let target = env.request_id.as_ref().map(id_key);
        let entry = target.as_ref().and_then(|k| lock(&self.pending).remove(k));
        let stateless_target = entry.as_ref().is_some_and(|e| e.stateless);
        if let Some(e) = entry {
            tracing::debug!(id = ?target, "the client cancelled a request");
            if let Some(a) = e.abort {
                a.abort();
            }
            self.idle.notify_waiters();
        }
        let bridged = matches!(self.conn.read().await.mode, Mode::Bridged(_));
        if stateless_target || bridged || (env.version.is_some() && target.is_some()) {
            return;
        }
        self.enqueue(bytes, env);
    }

    /// One request: routed by wire, answered with the response or an error response.
    async fn request(self: &Arc<Self>, bytes: Bytes, env: &Envelope) -> Bytes {
        if let Some(version) = &env.version {
            *lock(&self.modern_version) = Some(version.clone());
            return self.stateless_request(bytes, env, version).await;
        }
        let snap = self.snapshot().await;
        match &snap.mode {
            Mode::Streamable => self.session_request(bytes, env, snap).await,
            Mode::Sse { .. } => self.sse_request(bytes, env, snap).await,
            Mode::Bridged(b) => {
                let b = b.clone();
                self.bridged_request(bytes, env, b).await
            }
        }
    }

    /// A request on the session (2025-era) wire.
    async fn session_request(
        self: &Arc<Self>,
        bytes: Bytes,
        env: &Envelope,
        mut snap: Snapshot,
    ) -> Bytes {
        let id = env.id.as_ref();
        let mut renewed = false;
        loop {
            let resp = match self
                .up
                .post(self.url(), snap.session_headers(), bytes.clone())
                .await
            {
                Ok(r) => r,
                Err(e) => return ReplyError::from(e).to_response(id, self.url()),
            };
            if resp.status() == http::StatusCode::NOT_FOUND && snap.session_id.is_some() && !renewed
            {
                drop(resp);
                renewed = true;
                if self.renew(snap.generation).await {
                    snap = self.snapshot().await;
                    continue;
                }
                return error_response(
                    id,
                    INTERNAL_ERROR,
                    "mcp-oauth proxy: the server ended the session (HTTP 404) and a new one could \
                     not be started",
                    None,
                );
            }
            let ctx = ReplyCtx {
                relay_others: true,
                resume: Some(snap),
            };
            return match self
                .read_reply(resp, id.unwrap_or(&Value::Null), &ctx)
                .await
            {
                Ok(msg) => msg,
                Err(e) => e.to_response(id, self.url()),
            };
        }
    }

    /// A request on the stateless (2026-07-28) wire.
    pub(crate) async fn stateless_request(
        self: &Arc<Self>,
        bytes: Bytes,
        env: &Envelope,
        version: &str,
    ) -> Bytes {
        let id = env.id.as_ref();
        let mut refreshed = false;
        loop {
            let headers = match self.stateless_headers(env, version, &bytes) {
                Ok(h) => h,
                Err(m) => return error_response(id, INVALID_REQUEST, &m, None),
            };
            let resp = match self.up.post(self.url(), headers, bytes.clone()).await {
                Ok(r) => r,
                Err(e) => return ReplyError::from(e).to_response(id, self.url()),
            };
            let ctx = ReplyCtx {
                relay_others: true,
                resume: None,
            };
            let reply = self
                .read_reply(resp, id.unwrap_or(&Value::Null), &ctx)
                .await;
            let mismatch = match &reply {
                Err(e) => e.rpc_code() == Some(HEADER_MISMATCH),
                Ok(msg) => response_error_code(msg) == Some(HEADER_MISMATCH),
            };
            if mismatch && env.method() == "tools/call" && !refreshed {
                // The tool's x-mcp-header annotations may have changed: re-list the tools
                // and try once more (streamable-http.md, "Client Behavior").
                refreshed = true;
                tracing::info!(url = %self.url(), "header mismatch on tools/call; refreshing the tool list");
                if self.refresh_tools(version, &bytes).await {
                    continue;
                }
            }
            return match reply {
                Ok(msg) if env.method() == "tools/list" => self.learn_tools(msg),
                Ok(msg) => msg,
                Err(e) => e.to_response(id, self.url()),
            };
        }
    }

    /// The request metadata headers of a stateless request.
    pub(crate) fn stateless_headers(
        &self,
        env: &Envelope,
        version: &str,
        bytes: &[u8],
    ) -> Result<HeaderMap, String> {
        let mut h = HeaderMap::new();
        let invalid = |what: &str| {
            format!("Invalid Request: the {what} cannot be sent as an HTTP header value")
        };
        h.insert(
            VERSION_HEADER,
            HeaderValue::from_str(version).map_err(|_| invalid("protocol version"))?,
        );
        h.insert(
            HeaderName::from_static("mcp-method"),
            HeaderValue::from_str(env.method()).map_err(|_| invalid("method name"))?,
        );
        if let Some(name) = env.mcp_name() {
            h.insert(
                HeaderName::from_static("mcp-name"),
                headers::encode_header_value(name),
            );
        }
        if env.method() == "tools/call"
            && let Some(tool) = env.name.as_deref()
        {
            let annotations = lock(&self.tools).get(tool).cloned().unwrap_or_default();
            if !annotations.is_empty()
                && let Ok(msg) = serde_json::from_slice::<Value>(bytes)
            {
                let args = msg.pointer("/params/arguments").unwrap_or(&Value::Null);
                for ph in &annotations {
                    if let Some(v) = headers::param_value(args, &ph.path) {
                        h.insert(ph.name.clone(), v);
                    }
                }
            }
        }
        Ok(h)
    }

    /// A `tools/list` response on the HTTP wire: records the tools' `x-mcp-header`
    /// annotations and leaves out tools whose annotations are invalid (the spec's MUST
    /// for Streamable HTTP clients). Untouched unless a tool has to go.
    pub(crate) fn learn_tools(&self, msg: Bytes) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<Value>(&msg) else {
            return msg;
        };
        let Some(tools) = v.pointer_mut("/result/tools").and_then(Value::as_array_mut) else {
            return msg;
        };
        let mut removed = false;
        let mut learned = Vec::new();
        tools.retain(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
            match headers::tool_param_headers(tool) {
                Ok(h) => {
                    learned.push((name.to_string(), h));
                    true
                }
                Err(reason) => {
                    tracing::warn!(tool = name, %reason, "leaving out a tool with an invalid x-mcp-header annotation");
                    removed = true;
                    false
                }
            }
        });
        {
            let mut map = lock(&self.tools);
            for (name, h) in learned {
                map.insert(name, h);
            }
        }
        if removed {
            Bytes::from(v.to_string())
        } else {
            msg
        }
    }

    /// Re-lists the tools (all pages) with the `_meta` of the client's request, to learn
    /// their current annotations. Returns whether it worked.
    async fn refresh_tools(&self, version: &str, request: &[u8]) -> bool {
        let meta = serde_json::from_slice::<Value>(request)
            .ok()
            .and_then(|v| v.pointer("/params/_meta").cloned())
            .unwrap_or_else(|| serde_json::json!({ super::message::META_VERSION: version }));
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let id = self.next_internal_id();
            let mut params = serde_json::json!({ "_meta": meta });
            if let Some(c) = &cursor {
                params["cursor"] = Value::String(c.clone());
            }
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
            let env = Envelope {
                id: Some(id.clone()),
                method: Some("tools/list".into()),
                version: Some(version.to_string()),
                ..Default::default()
            };
            let Ok(headers) = self.stateless_headers(&env, version, &[]) else {
                return false;
            };
            let Ok(resp) = self
                .up
                .post(self.url(), headers, Bytes::from(body.to_string()))
                .await
            else {
                return false;
            };
            let ctx = ReplyCtx::default();
            let Ok(msg) = self.read_reply(resp, &id, &ctx).await else {
                return false;
            };
            let msg = self.learn_tools(msg);
            cursor = serde_json::from_slice::<Value>(&msg)
                .ok()
                .and_then(|v| {
                    v.pointer("/result/nextCursor")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                return true;
            }
        }
        false
    }

    /// Notifications and responses from the client, in order.
    async fn lane_message(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        let modern = env.version.clone().or_else(|| {
            // A modern client's notification usually has no _meta; it belongs to the
            // stateless wire when no session-era handshake happened.
            if self.conn.try_read().is_ok_and(|c| c.init.is_none()) {
                lock(&self.modern_version).clone()
            } else {
                None
            }
        });
        if let Some(version) = modern {
            let headers = match self.stateless_headers(&env, &version, &[]) {
                Ok(h) => h,
                Err(m) => {
                    tracing::warn!("not forwarding a notification: {m}");
                    return;
                }
            };
            let result = self.up.post(self.url(), headers, bytes).await;
            self.check_accepted(result, &env).await;
            return;
        }
        let mut snap = self.snapshot().await;
        match snap.mode.clone() {
            Mode::Bridged(b) => self.bridged_notification(&b, &env),
            Mode::Sse { endpoint } => {
                let result = self
                    .up
                    .post(&endpoint, HeaderMap::new(), bytes.clone())
                    .await;
                if self.check_accepted(result, &env).await
                    && env.method() == "notifications/initialized"
                {
                    let mut c = self.conn.write().await;
                    if c.generation == snap.generation {
                        c.initialized = Some(bytes);
                    }
                }
            }
            Mode::Streamable => {
                let mut renewed = false;
                loop {
                    let result = self
                        .up
                        .post(self.url(), snap.session_headers(), bytes.clone())
                        .await;
                    if let Ok(r) = &result
                        && r.status() == http::StatusCode::NOT_FOUND
                        && snap.session_id.is_some()
                        && !renewed
                        && env.method() != "notifications/initialized"
                    {
                        renewed = true;
                        if env.kind() == Some(Kind::Response) {
                            // An answer to a request of the expired session: nobody is
                            // waiting for it any more.
                            tracing::warn!(
                                "the session expired; dropping the client's response to a server request"
                            );
                            self.renew(snap.generation).await;
                            return;
                        }
                        if self.renew(snap.generation).await {
                            snap = self.snapshot().await;
                            continue;
                        }
                    }
                    if self.check_accepted(result, &env).await
                        && env.method() == "notifications/initialized"
                    {
                        let mut c = self.conn.write().await;
                        if c.generation == snap.generation {
                            c.initialized = Some(bytes);
                            self.start_get_stream(&mut c);
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Logs what the server said to a notification or response; `true` when accepted.
    async fn check_accepted(&self, result: Result<Response, SendError>, env: &Envelope) -> bool {
        let what = match env.kind() {
            Some(Kind::Response) => "the client's response".to_string(),
            _ => format!("notification {}", env.method()),
        };
        match result {
            Ok(r) if r.status().is_success() => true,
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body = read_body(&mut r, MAX_ERROR_BODY, false)
                    .await
                    .unwrap_or_default();
                tracing::warn!(
                    url = %self.url(),
                    status,
                    body = %mcp_oauth::wire::excerpt(&String::from_utf8_lossy(&body), 200),
                    "the server did not accept {what}"
                );
                false
            }
            Err(e) => {
                tracing::warn!(url = %self.url(), error = %e, "could not deliver {what}");
                false
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Handshake and sessions
    // ---------------------------------------------------------------------------------

    /// The client's `initialize`: starts a session (or bridges, or falls back to the
    /// HTTP+SSE transport). Holds the connection lock until done.
    async fn initialize(
        self: Arc<Self>,
        mut conn: OwnedRwLockWriteGuard<Conn>,
        bytes: Bytes,
        env: Envelope,
    ) -> Bytes {
        let id = env.id.clone().unwrap_or(Value::Null);
        let use_sse = matches!(self.opts.transport, TransportMode::Sse)
            || matches!(conn.mode, Mode::Sse { .. });
        self.end_session(&mut conn, true);
        conn.mode = Mode::Streamable;
        conn.generation += 1;
        conn.init = Some((bytes.clone(), id.clone()));
        conn.initialized = None;
        if use_sse {
            return self.sse_initialize(&mut conn, bytes, &id).await;
        }
        let resp = match self
            .up
            .post(self.url(), HeaderMap::new(), bytes.clone())
            .await
        {
            Ok(r) => r,
            Err(e) => return ReplyError::from(e).to_response(Some(&id), self.url()),
        };
        if resp.status().is_success() {
            conn.session_id = session_id_of(&resp);
            let ctx = ReplyCtx {
                relay_others: true,
                resume: Some(Snapshot {
                    generation: conn.generation,
                    mode: Mode::Streamable,
                    session_id: conn.session_id.clone(),
                    version: None,
                }),
            };
            return match self.read_reply(resp, &id, &ctx).await {
                Ok(msg) => {
                    conn.version = negotiated_version(&msg);
                    tracing::info!(
                        url = %self.url(),
                        version = ?conn.version,
                        session = conn.session_id.is_some(),
                        "initialized"
                    );
                    msg
                }
                Err(e) => e.to_response(Some(&id), self.url()),
            };
        }
        let err = self.http_error(resp).await;
        if self.opts.bridge_eras && err.is_modern() {
            tracing::info!(url = %self.url(), "the server is 2026-07-28-only; bridging the client's initialize");
            return self.bridge_initialize(&mut conn, &bytes, &id).await;
        }
        if matches!(self.opts.transport, TransportMode::Auto)
            && matches!(
                &err,
                ReplyError::Http {
                    status: 400 | 404 | 405,
                    ..
                }
            )
            && !err.is_modern()
        {
            tracing::info!(url = %self.url(), "initialize failed ({}); trying the HTTP+SSE transport", http_status(&err));
            match self.sse_connect(&mut conn).await {
                Ok(()) => return self.sse_initialize(&mut conn, bytes, &id).await,
                Err(e) => tracing::info!(url = %self.url(), "not an HTTP+SSE server either: {e}"),
            }
        }
        err.to_response(Some(&id), self.url())
    }

    /// Forgets the current session: stops its stream and (in the background, when
    /// `delete`) ends it on the server.
    fn end_session(self: &Arc<Self>, conn: &mut Conn, delete: bool) {
        if let Some(t) = conn.stream_task.take() {
            t.abort();
        }
        let session = conn.session_id.take();
        let version = conn.version.take();
        if let (true, Some(s), Mode::Streamable) = (delete, session, &conn.mode) {
            let me = self.clone();
            tokio::spawn(async move {
                me.delete_session(s, version).await;
            });
        }
    }

    async fn delete_session(&self, session: HeaderValue, version: Option<HeaderValue>) {
        let mut h = HeaderMap::new();
        h.insert(SESSION_HEADER, session);
        if let Some(v) = version {
            h.insert(VERSION_HEADER, v);
        }
        match tokio::time::timeout(
            DELETE_TIMEOUT,
            self.up.send(Method::DELETE, self.url(), h, None),
        )
        .await
        {
            Ok(Ok(r)) => {
                tracing::debug!(url = %self.url(), status = r.status().as_u16(), "session ended (DELETE)")
            }
            Ok(Err(e)) => {
                tracing::debug!(url = %self.url(), error = %e, "DELETE of the session failed")
            }
            Err(_) => tracing::debug!(url = %self.url(), "DELETE of the session timed out"),
        }
    }

    /// A new session after the server ended `stale` (404), or a new event stream after
    /// the HTTP+SSE stream was lost: the client's `initialize` and
    /// `notifications/initialized` are replayed, their answers kept from the client.
    /// Returns whether requests can be sent again.
    pub(crate) fn renew(self: &Arc<Self>, stale: u64) -> mcp_oauth::wire::BoxFuture<'_, bool> {
        // Boxed: renewing an HTTP+SSE connection starts a stream reader that may renew.
        Box::pin(self.renew_inner(stale))
    }

    async fn renew_inner(self: &Arc<Self>, stale: u64) -> bool {
        let mut conn = self.conn.write().await;
        if conn.generation != stale {
            return true; // renewed meanwhile
        }
        let Some((init, id)) = conn.init.clone() else {
            return false;
        };
        let old_version = conn.version.clone();
        self.end_session(&mut conn, false);
        conn.generation += 1;
        let generation = conn.generation;
        let ok = match conn.mode.clone() {
            Mode::Bridged(_) => true,
            Mode::Sse { .. } => {
                tracing::info!(url = %self.url(), "the event stream was lost; reconnecting");
                match self.sse_connect(&mut conn).await {
                    Ok(()) => self.sse_replay_init(&mut conn, init, &id).await,
                    Err(e) => {
                        tracing::warn!(url = %self.url(), "cannot reconnect: {e}");
                        false
                    }
                }
            }
            Mode::Streamable => {
                tracing::info!(url = %self.url(), "the session expired (HTTP 404); starting a new one");
                match self.up.post(self.url(), HeaderMap::new(), init).await {
                    Ok(resp) if resp.status().is_success() => {
                        conn.session_id = session_id_of(&resp);
                        match self.read_reply(resp, &id, &ReplyCtx::default()).await {
                            Ok(msg) => {
                                conn.version = negotiated_version(&msg);
                                if conn.version != old_version {
                                    tracing::warn!(old = ?old_version, new = ?conn.version, "the new session negotiated another protocol version");
                                }
                                if let Some(n) = conn.initialized.clone() {
                                    let snap = Snapshot {
                                        generation,
                                        mode: Mode::Streamable,
                                        session_id: conn.session_id.clone(),
                                        version: conn.version.clone(),
                                    };
                                    let r =
                                        self.up.post(self.url(), snap.session_headers(), n).await;
                                    let env = Envelope {
                                        method: Some("notifications/initialized".into()),
                                        ..Default::default()
                                    };
                                    self.check_accepted(r, &env).await;
                                    self.start_get_stream(&mut conn);
                                }
                                true
                            }
                            Err(e) => {
                                tracing::warn!(url = %self.url(), "a new session could not be started: {}", describe_reply(&e));
                                false
                            }
                        }
                    }
                    Ok(resp) => {
                        tracing::warn!(url = %self.url(), status = resp.status().as_u16(), "a new session could not be started");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(url = %self.url(), error = %e, "a new session could not be started");
                        false
                    }
                }
            }
        };
        if !ok {
            // Keep the generation bumped: requests fail with the server's answer until
            // the client initializes again.
            conn.session_id = None;
        }
        ok
    }

    /// Opens the GET stream for server-initiated messages (2025-era sessions).
    fn start_get_stream(self: &Arc<Self>, conn: &mut Conn) {
        if let Some(t) = conn.stream_task.take() {
            t.abort();
        }
        let me = self.clone();
        let generation = conn.generation;
        let task = tokio::spawn(async move { me.get_stream(generation).await });
        conn.stream_task = Some(task.abort_handle());
    }

    async fn get_stream(self: Arc<Self>, generation: u64) {
        let mut stream: Option<EventStream> = None;
        let mut failures: u32 = 0;
        loop {
            let snap = self.snapshot().await;
            if snap.generation != generation {
                return;
            }
            let mut headers = snap.session_headers();
            stream_headers(&mut headers);
            if let Some(last) = stream.as_ref().and_then(|s| s.last_event_id()) {
                // An event id that cannot be sent back is left out: the stream starts anew.
                let _ = resume_headers(&mut headers, last);
            }
            let resp = match self.up.send(Method::GET, self.url(), headers, None).await {
                Ok(r) => r,
                Err(SendError::Auth(e)) => {
                    tracing::warn!(url = %self.url(), "no GET stream: {e}");
                    return;
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(url = %self.url(), error = %e, "GET stream failed");
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            };
            let status = resp.status();
            if status == http::StatusCode::METHOD_NOT_ALLOWED {
                tracing::debug!(url = %self.url(), "the server offers no GET stream");
                return;
            }
            if status == http::StatusCode::NOT_FOUND && snap.session_id.is_some() {
                tracing::info!(url = %self.url(), "GET stream: the session is gone; a new one starts with the next request");
                return;
            }
            if !status.is_success() || media_type(resp.headers()) != "text/event-stream" {
                failures += 1;
                tracing::debug!(url = %self.url(), status = status.as_u16(), "GET stream refused");
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
            let s = match stream.as_mut() {
                Some(s) => {
                    s.resume(resp);
                    s
                }
                None => stream.insert(EventStream::new(resp, self.opts.max_message_bytes)),
            };
            tracing::debug!(url = %self.url(), "GET stream open");
            while let StreamItem::Event(ev) = s.next().await {
                self.relay_event(ev).await;
            }
            if s.received > 0 {
                failures = 0;
            } else {
                failures += 1;
            }
            let wait = s.reconnect_delay().max(backoff(failures));
            tracing::debug!(url = %self.url(), ?wait, "GET stream ended; reconnecting");
            tokio::time::sleep(wait.min(MAX_BACKOFF)).await;
        }
    }

    /// An event of a stream nobody waits on: every message goes to the client.
    async fn relay_event(&self, ev: mcp_oauth::wire::sse::SseEvent) {
        if ev.event != "message" || ev.data.trim().is_empty() {
            return;
        }
        if let Err(e) = self.route(Bytes::from(ev.data), None, true).await {
            tracing::warn!(url = %self.url(), "dropping an event: {e}");
        }
    }

    // ---------------------------------------------------------------------------------
    // Server → client
    // ---------------------------------------------------------------------------------

    /// Reads the reply to request `id`: the response is returned (one line), the other
    /// messages are relayed when `ctx.relay_others`.
    pub(crate) async fn read_reply(
        &self,
        mut resp: Response,
        id: &Value,
        ctx: &ReplyCtx,
    ) -> Result<Bytes, ReplyError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(self.http_error(resp).await);
        }
        let ct = media_type(resp.headers());
        match ct.as_str() {
            "application/json" => {
                let body = read_body(&mut resp, self.opts.max_message_bytes, true)
                    .await
                    .map_err(|e| {
                        ReplyError::Protocol(match e {
                            None => format!(
                                "the response is larger than the {} byte limit",
                                self.opts.max_message_bytes
                            ),
                            Some(m) => format!("reading the response failed: {m}"),
                        })
                    })?;
                self.route(body, Some(id), ctx.relay_others)
                    .await
                    .map_err(ReplyError::Protocol)?
                    .ok_or_else(|| {
                        ReplyError::Protocol(
                            "the JSON body holds no response to this request".into(),
                        )
                    })
            }
            "text/event-stream" => self.read_sse_reply(resp, id, ctx).await,
            _ if status == http::StatusCode::ACCEPTED || status == http::StatusCode::NO_CONTENT => {
                Err(ReplyError::Protocol(format!(
                    "the server answered HTTP {} to a request, without a response",
                    status.as_u16()
                )))
            }
            other => Err(ReplyError::Protocol(format!(
                "the response has Content-Type {:?}; expected application/json or text/event-stream",
                mcp_oauth::wire::excerpt(other, 80)
            ))),
        }
    }

    async fn read_sse_reply(
        &self,
        resp: Response,
        id: &Value,
        ctx: &ReplyCtx,
    ) -> Result<Bytes, ReplyError> {
        let mut stream = EventStream::new(resp, self.opts.max_message_bytes);
        let mut resumes = 0u32;
        loop {
            let ended = match stream.next().await {
                StreamItem::Event(ev) => {
                    // The server is alive and working on it (progress, logs): the
                    // request's clock starts again.
                    super::deadline::touch();
                    if ev.event != "message" || ev.data.trim().is_empty() {
                        continue;
                    }
                    match self
                        .route(Bytes::from(ev.data), Some(id), ctx.relay_others)
                        .await
                    {
                        Ok(Some(found)) => return Ok(found),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(url = %self.url(), "dropping an event: {e}"),
                    }
                    continue;
                }
                StreamItem::TooLarge => {
                    return Err(ReplyError::Protocol(format!(
                        "an event of the response stream is larger than the {} byte limit",
                        self.opts.max_message_bytes
                    )));
                }
                StreamItem::End => "the server closed the response stream".to_string(),
                StreamItem::Broken(e) => format!("the response stream broke ({e})"),
            };
            if stream.received > 0 {
                resumes = 0;
            }
            let last = stream.last_event_id().map(str::to_string);
            let (Some(snap), Some(last)) = (&ctx.resume, last) else {
                return Err(ReplyError::Protocol(format!("{ended} before the response")));
            };
            if resumes >= MAX_RESUMES {
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, {MAX_RESUMES} times in a row"
                )));
            }
            resumes += 1;
            tokio::time::sleep(stream.reconnect_delay().min(MAX_BACKOFF)).await;
            let mut h = snap.session_headers();
            if resume_headers(&mut h, &last).is_err() {
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, and its event id cannot be sent back"
                )));
            }
            tracing::debug!(url = %self.url(), "{ended}; resuming it with Last-Event-ID");
            let resp = self.up.send(Method::GET, self.url(), h, None).await?;
            if !resp.status().is_success() || media_type(resp.headers()) != "text/event-stream" {
                let status = resp.status().as_u16();
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, and resuming it failed (HTTP {status})"
                )));
            }
            stream.resume(resp);
        }
    }

    /// Routes a JSON body or SSE event data (one message or a batch): the response to
    /// `awaited` is returned, the rest relayed (when `relay`). Invalid JSON is an error.
    pub(crate) async fn route(
        &self,
        body: Bytes,
        awaited: Option<&Value>,
        relay: bool,
    ) -> Result<Option<Bytes>, String> {
        if first_byte(&body) == Some(b'[') {
            let items: Vec<Value> = serde_json::from_slice(&body)
                .map_err(|e| format!("the server sent invalid JSON: {e}"))?;
            let mut found = None;
            for item in items {
                if let Some(f) = self
                    .route_one(Bytes::from(item.to_string()), awaited, relay)
                    .await?
                {
                    found = Some(f);
                }
            }
            return Ok(found);
        }
        self.route_one(body, awaited, relay).await
    }

    async fn route_one(
        &self,
        msg: Bytes,
        awaited: Option<&Value>,
        relay: bool,
    ) -> Result<Option<Bytes>, String> {
        let env = Envelope::parse(&msg).map_err(|e| match e {
            Invalid::Parse(m) => format!("the server sent invalid JSON: {m}"),
            Invalid::Request(m, _) => {
                format!("the server sent something else than a JSON-RPC message: {m}")
            }
        })?;
        if let Some(id) = awaited
            && env.answers(id)
        {
            return Ok(Some(one_line(msg)));
        }
        // A response on the HTTP+SSE event stream that a request is waiting for.
        if env.kind() == Some(Kind::Response)
            && let Some(id) = &env.id
        {
            let waiter = lock(&self.sse_waiters).remove(&id_key(id));
            if let Some(w) = waiter {
                let _ = w.send(one_line(msg));
                return Ok(None);
            }
        }
        if self.hide_acknowledgements.load(Ordering::Relaxed)
            && env.method() == "notifications/subscriptions/acknowledged"
        {
            self.acknowledged.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if relay {
            if env.kind() == Some(Kind::Request)
                && let (Some(id), Some(stop)) = (&env.id, super::deadline::stop_current())
            {
                lock(&self.server_asks).insert(id_key(id), stop);
            }
            self.send_out(one_line(msg)).await;
        }
        Ok(None)
    }

    /// Reads an HTTP error response (bounded) into a [`ReplyError::Http`].
    pub(crate) async fn http_error(&self, mut resp: Response) -> ReplyError {
        let status = resp.status().as_u16();
        let body = read_body(&mut resp, MAX_ERROR_BODY, false)
            .await
            .unwrap_or_default();
        let error = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").cloned())
            .filter(|e| e.get("code").and_then(Value::as_i64).is_some());
        ReplyError::Http {
            status,
            error,
            excerpt: mcp_oauth::wire::excerpt(&String::from_utf8_lossy(&body), 300),
        }
    }

    // ---------------------------------------------------------------------------------
    // Shutdown
    // ---------------------------------------------------------------------------------

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

/// The JSON-RPC error code of a response, if it is an error response.
pub(crate) fn response_error_code(msg: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Resp {
        error: Option<ErrorCode>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorCode {
        code: Option<i64>,
    }
    serde_json::from_slice::<Resp>(msg).ok()?.error?.code
}

/// `result.protocolVersion` of an `initialize` response, as a header value.
fn negotiated_version(msg: &[u8]) -> Option<HeaderValue> {
    #[derive(serde::Deserialize)]
    struct Resp {
        result: Option<InitResult>,
    }
    #[derive(serde::Deserialize)]
    struct InitResult {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    let v = serde_json::from_slice::<Resp>(msg)
        .ok()?
        .result?
        .protocol_version?;
    HeaderValue::from_str(&v).ok()
}

/// The `Mcp-Session-Id` of a response, when it is a valid one (visible ASCII).
fn session_id_of(resp: &Response) -> Option<HeaderValue> {
    let v = resp.headers().get(SESSION_HEADER)?;
    if v.is_empty() || !v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)) {
        tracing::warn!("ignoring an Mcp-Session-Id that is not visible ASCII");
        return None;
    }
    Some(v.clone())
}

fn http_status(e: &ReplyError) -> String {
    match e {
        ReplyError::Http { status, .. } => format!("HTTP {status}"),
        other => describe_reply(other),
    }
}

pub(crate) fn describe_reply(e: &ReplyError) -> String {
    match e {
        ReplyError::Send(e) => e.to_string(),
        ReplyError::Http {
            status, excerpt, ..
        } => format!("HTTP {status}: {excerpt}"),
        ReplyError::Protocol(m) => m.clone(),
    }
}

/// 0.5 s, 1 s, 2 s, ... up to [`MAX_BACKOFF`].
pub(crate) fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    (Duration::from_millis(250) * 2u32.saturating_pow(failures.min(8))).min(MAX_BACKOFF)
}
