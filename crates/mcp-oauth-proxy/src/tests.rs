//! Proxy tests: a stdio client (in-memory pipes) talking through the proxy to small
//! in-process MCP servers (hyper) that record what they receive.

use super::*;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use mcp_oauth::wire::{BoxFuture, Refusal, RequestAuth};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const MODERN: &str = "2026-07-28";

// -------------------------------------------------------------------------------------
// Mock server
// -------------------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Req {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn rpc_method(&self) -> String {
        self.json()["method"].as_str().unwrap_or("").to_string()
    }
    fn id(&self) -> Value {
        self.json().get("id").cloned().unwrap_or(Value::Null)
    }
    fn is_post(&self, rpc_method: &str) -> bool {
        self.method == "POST" && self.rpc_method() == rpc_method
    }
}

enum Body {
    Full(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Resp {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: Body::Full(Bytes::new()),
        }
    }
    fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: Body::Full(body.into()),
        }
    }
    fn json(v: Value) -> Self {
        Self::raw(200, "application/json", v.to_string())
    }
    fn result(req: &Req, result: Value) -> Self {
        Self::json(json!({"jsonrpc": "2.0", "id": req.id(), "result": result}))
    }
    fn error(status: u16, id: Value, code: i64, message: &str, data: Option<Value>) -> Self {
        let mut e = json!({"code": code, "message": message});
        if let Some(d) = data {
            e["data"] = d;
        }
        Self::raw(
            status,
            "application/json",
            json!({"jsonrpc": "2.0", "id": id, "error": e}).to_string(),
        )
    }
    /// An SSE response whose events the test pushes (closing the sender ends it).
    fn stream() -> (Self, mpsc::Sender<Bytes>) {
        let (tx, rx) = mpsc::channel(64);
        (
            Self {
                status: 200,
                headers: vec![("content-type".into(), "text/event-stream".into())],
                body: Body::Stream(rx),
            },
            tx,
        )
    }
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

fn event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

type Handler = Arc<dyn Fn(Req) -> BoxFuture<'static, Resp> + Send + Sync>;

/// A server on 127.0.0.1 that can be stopped and started again on the same port.
struct Server {
    url: String,
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Req>>>,
    handler: Handler,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    async fn start(handler: Handler) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = Server {
            url: format!("http://{addr}/mcp"),
            addr,
            seen: Arc::new(Mutex::new(Vec::new())),
            handler,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        s.accept(listener);
        s
    }

    fn accept(&self, listener: tokio::net::TcpListener) {
        let handler = self.handler.clone();
        let seen = self.seen.clone();
        let tasks = self.tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let seen = seen.clone();
                let conn = tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().to_string();
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let r = Req {
                                method,
                                path,
                                headers,
                                body,
                            };
                            seen.lock().unwrap().push(r.clone());
                            let resp = handler(r).await;
                            let mut b = hyper::Response::builder().status(resp.status);
                            for (k, v) in &resp.headers {
                                b = b.header(k.as_str(), v.as_str());
                            }
                            let stream: futures_util::stream::BoxStream<
                                'static,
                                Result<Frame<Bytes>, Infallible>,
                            > = match resp.body {
                                Body::Full(bytes) => Box::pin(futures_util::stream::iter(
                                    (!bytes.is_empty()).then(|| Ok(Frame::data(bytes))),
                                )),
                                Body::Stream(rx) => Box::pin(futures_util::stream::unfold(
                                    rx,
                                    |mut rx| async move {
                                        let c = rx.recv().await?;
                                        Some((Ok(Frame::data(c)), rx))
                                    },
                                )),
                            };
                            Ok::<_, Infallible>(
                                b.body(BodyExt::boxed_unsync(StreamBody::new(stream)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(acceptor);
    }

    /// Stops listening and drops every connection (a crash).
    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same port.
    async fn restart(&self) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.accept(listener);
    }

    fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
    fn posts(&self, rpc_method: &str) -> Vec<Req> {
        self.seen()
            .into_iter()
            .filter(|r| r.is_post(rpc_method))
            .collect()
    }
    fn count(&self, method: &str) -> usize {
        self.seen().iter().filter(|r| r.method == method).count()
    }
}

/// Behaviour of [`Mock`].
#[derive(Clone)]
struct Cfg {
    /// Session-based (2025) server: answers `initialize`, assigns session ids.
    legacy: bool,
    /// Answers 2026-07-28 requests (with `_meta` and headers).
    modern: bool,
    /// Assign (and require) session ids.
    sessions: bool,
    /// Offer the GET stream.
    get_stream: bool,
    /// Answer requests with SSE (with event ids) instead of JSON.
    sse: bool,
    /// Require `Authorization: Bearer <token>`.
    token: Option<String>,
    /// Step-up: `tools/call` needs this token, else 403 insufficient_scope.
    admin_token: Option<String>,
}

impl Default for Cfg {
    fn default() -> Self {
        Self {
            legacy: true,
            modern: false,
            sessions: true,
            get_stream: true,
            sse: false,
            token: None,
            admin_token: None,
        }
    }
}

impl Cfg {
    /// A 2026-07-28-only server: no `initialize`, no sessions, no GET stream.
    fn modern_only() -> Self {
        Self {
            legacy: false,
            modern: true,
            sessions: false,
            get_stream: false,
            ..Default::default()
        }
    }
}

type Override = Arc<dyn Fn(&Mock, &Req) -> Option<Resp> + Send + Sync>;

/// A configurable MCP server.
struct Mock {
    cfg: Mutex<Cfg>,
    sessions: Mutex<HashSet<String>>,
    next: AtomicU64,
    /// Senders of the open GET streams.
    get_streams: Mutex<Vec<mpsc::Sender<Bytes>>>,
    custom: Mutex<Option<Override>>,
}

impl Mock {
    fn new(cfg: Cfg) -> Arc<Mock> {
        Arc::new(Mock {
            cfg: Mutex::new(cfg),
            sessions: Mutex::new(HashSet::new()),
            next: AtomicU64::new(1),
            get_streams: Mutex::new(Vec::new()),
            custom: Mutex::new(None),
        })
    }

    fn cfg(&self) -> Cfg {
        self.cfg.lock().unwrap().clone()
    }

    fn set_custom(&self, f: impl Fn(&Mock, &Req) -> Option<Resp> + Send + Sync + 'static) {
        *self.custom.lock().unwrap() = Some(Arc::new(f));
    }

    async fn serve(self: &Arc<Self>) -> Server {
        let me = self.clone();
        Server::start(Arc::new(move |req| {
            let me = me.clone();
            Box::pin(async move { me.handle(req) })
        }))
        .await
    }

    /// Sends a message on the (latest) open GET stream.
    async fn push_get(&self, msg: Value) {
        let tx = self
            .get_streams
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no GET stream open");
        tx.send(event(&msg)).await.unwrap();
    }

    fn reply(&self, req: &Req, result: Value) -> Resp {
        if self.cfg().sse {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let msg = json!({"jsonrpc": "2.0", "id": req.id(), "result": result});
            // A priming event (id, empty data), then the response.
            Resp::raw(
                200,
                "text/event-stream",
                format!("id: ev-{n}-0\ndata:\n\nid: ev-{n}-1\ndata: {msg}\n\n"),
            )
        } else {
            Resp::result(req, result)
        }
    }

    fn handle(&self, req: Req) -> Resp {
        let custom = self.custom.lock().unwrap().clone();
        if let Some(f) = custom
            && let Some(r) = f(self, &req)
        {
            return r;
        }
        let cfg = self.cfg();
        let auth = req.header("authorization");
        if let Some(t) = &cfg.token
            && auth.as_deref() != Some(&format!("Bearer {t}"))
            && cfg
                .admin_token
                .as_ref()
                .is_none_or(|a| auth.as_deref() != Some(&format!("Bearer {a}")))
        {
            return Resp::status(401).header(
                "www-authenticate",
                r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource""#,
            );
        }
        let session = req.header("mcp-session-id");
        match req.method.as_str() {
            "GET" => {
                if !cfg.get_stream {
                    return Resp::status(405);
                }
                if cfg.sessions
                    && !session
                        .as_ref()
                        .is_some_and(|s| self.sessions.lock().unwrap().contains(s))
                {
                    return Resp::status(404);
                }
                let (r, tx) = Resp::stream();
                self.get_streams.lock().unwrap().push(tx);
                return r;
            }
            "DELETE" => {
                if let Some(s) = session {
                    self.sessions.lock().unwrap().remove(&s);
                }
                return Resp::status(200);
            }
            _ => {}
        }
        let msg = req.json();
        let method = msg["method"].as_str().unwrap_or("").to_string();
        let version = msg["params"]["_meta"][crate::message::META_VERSION]
            .as_str()
            .map(str::to_string);
        if let Some(v) = &version {
            if !cfg.modern {
                return Resp::error(
                    400,
                    Value::Null,
                    -32000,
                    "Bad Request: No valid session ID provided",
                    None,
                );
            }
            if req.header("mcp-protocol-version").as_deref() != Some(v.as_str())
                || req.header("mcp-method").as_deref() != Some(method.as_str())
            {
                return Resp::error(400, req.id(), -32020, "Header mismatch", None);
            }
            if session.is_some() {
                return Resp::error(
                    400,
                    req.id(),
                    -32000,
                    "a stateless request carried a session id",
                    None,
                );
            }
            return self.answer(&req, &method);
        }
        if !cfg.legacy {
            // Modern-only: the legacy handshake is an unsupported version.
            return Resp::error(
                400,
                req.id(),
                -32022,
                "Unsupported protocol version",
                Some(json!({"supported": [MODERN], "requested": "2025-03-26"})),
            );
        }
        if method == "initialize" {
            let requested = msg["params"]["protocolVersion"]
                .as_str()
                .unwrap_or("2025-11-25")
                .to_string();
            let r = Resp::result(
                &req,
                json!({
                    "protocolVersion": requested,
                    "capabilities": {"tools": {"listChanged": true}},
                    "serverInfo": {"name": "mock", "version": "1"},
                }),
            );
            if cfg.sessions {
                let id = format!("session-{}", self.next.fetch_add(1, Ordering::Relaxed));
                self.sessions.lock().unwrap().insert(id.clone());
                return r.header("mcp-session-id", &id);
            }
            return r;
        }
        if cfg.sessions {
            match session {
                None => {
                    return Resp::error(
                        400,
                        Value::Null,
                        -32000,
                        "Bad Request: No valid session ID provided",
                        None,
                    );
                }
                Some(s) if !self.sessions.lock().unwrap().contains(&s) => {
                    return Resp::error(404, Value::Null, -32001, "Session not found", None);
                }
                _ => {}
            }
            if req.header("mcp-protocol-version").is_none() {
                return Resp::error(
                    400,
                    Value::Null,
                    -32000,
                    "missing MCP-Protocol-Version",
                    None,
                );
            }
        }
        if msg.get("method").is_none() || msg.get("id").is_none() {
            return Resp::status(202); // notifications and responses
        }
        self.answer(&req, &method)
    }

    fn answer(&self, req: &Req, method: &str) -> Resp {
        let msg = req.json();
        let cfg = self.cfg();
        match method {
            "server/discover" => Resp::result(
                req,
                json!({
                    "resultType": "complete",
                    "supportedVersions": [MODERN],
                    "capabilities": {"tools": {"listChanged": true}},
                    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-mock", "version": "2"}},
                    "instructions": "be nice",
                }),
            ),
            "tools/list" => self.reply(
                req,
                json!({"tools": [
                    {"name": "echo", "inputSchema": {"type": "object", "properties": {
                        "text": {"type": "string"},
                        "region": {"type": "string", "x-mcp-header": "Region"}
                    }}},
                    {"name": "broken", "inputSchema": {"type": "object", "properties": {
                        "v": {"type": "object", "x-mcp-header": "Obj"}
                    }}}
                ]}),
            ),
            "tools/call" => {
                if let Some(admin) = &cfg.admin_token
                    && req.header("authorization").as_deref() != Some(&format!("Bearer {admin}"))
                {
                    return Resp::status(403).header(
                        "www-authenticate",
                        r#"Bearer error="insufficient_scope", scope="admin""#,
                    );
                }
                let text = msg["params"]["arguments"]["text"].clone();
                self.reply(req, json!({"content": [{"type": "text", "text": text}]}))
            }
            "echo/params" => self.reply(req, msg["params"].clone()),
            _ => Resp::error(200, req.id(), -32601, "Method not found", None),
        }
    }
}

// -------------------------------------------------------------------------------------
// Fake authorization
// -------------------------------------------------------------------------------------

struct FakeAuth {
    token: Mutex<Option<String>>,
    /// The token installed on a refusal (`None`: fail).
    next: Mutex<Vec<String>>,
    refusals: Mutex<Vec<Refusal>>,
    /// How long a "login" takes.
    delay: Duration,
}

impl FakeAuth {
    fn new(token: Option<&str>, next: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            token: Mutex::new(token.map(str::to_string)),
            next: Mutex::new(next.iter().rev().map(|s| s.to_string()).collect()),
            refusals: Mutex::new(Vec::new()),
            delay: Duration::from_millis(50),
        })
    }
    fn refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().unwrap().clone()
    }
}

impl RequestAuth for FakeAuth {
    fn authorization<'a>(
        &'a self,
        _url: &'a str,
    ) -> BoxFuture<'a, mcp_oauth::Result<Option<HeaderValue>>> {
        Box::pin(async move {
            Ok(self
                .token
                .lock()
                .unwrap()
                .as_ref()
                .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).unwrap()))
        })
    }

    fn on_refusal<'a>(&'a self, refusal: &'a Refusal) -> BoxFuture<'a, mcp_oauth::Result<()>> {
        Box::pin(async move {
            self.refusals.lock().unwrap().push(refusal.clone());
            tokio::time::sleep(self.delay).await;
            let next = self.next.lock().unwrap().pop();
            match next {
                Some(t) => {
                    *self.token.lock().unwrap() = Some(t);
                    Ok(())
                }
                // Another request's authorization already put the last token in place
                // (what OAuthClient's single flight does).
                None if refusal.attempt == 0 && self.token.lock().unwrap().is_some() => Ok(()),
                None => Err(mcp_oauth::Error::Action {
                    step: mcp_oauth::Step::Authorization,
                    message: "the user closed the browser".into(),
                }),
            }
        })
    }
}

// -------------------------------------------------------------------------------------
// Harness: the stdio client
// -------------------------------------------------------------------------------------

struct Client {
    input: Option<DuplexStream>,
    lines: mpsc::UnboundedReceiver<String>,
    task: Option<JoinHandle<Result<ProxyReport>>>,
    stop: Option<oneshot::Sender<()>>,
}

/// The reqwest client the proxy uses behind an HTTP proxy (its redirect policy among
/// what is tested); the test environment names no proxy for loopback (scripts/test sets
/// NO_PROXY).
fn test_http() -> reqwest::Client {
    super::http_client(Duration::from_secs(10)).unwrap()
}

/// Which HTTP client the proxy under test sends through.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// What `Proxy::new` picks for a server that no HTTP proxy stands before: hyper's
    /// client, used directly.
    Default,
    /// The reqwest client `Proxy::new` uses behind an HTTP proxy (through
    /// `Proxy::with_client`).
    Reqwest,
}

impl Backend {
    fn proxy(self, url: &str, options: ProxyOptions, auth: Option<Arc<dyn RequestAuth>>) -> Proxy {
        match self {
            Backend::Default => {
                let proxy = Proxy::new(url, options, auth).unwrap();
                assert!(
                    matches!(proxy.upstream.client(), super::client::Client::Hyper(_)),
                    "a loopback server is reached without an HTTP proxy"
                );
                proxy
            }
            Backend::Reqwest => Proxy::with_client(url, options, test_http(), auth),
        }
    }
}

/// Runs `$body(backend)` as a test of each HTTP client, in a module named `$name`.
macro_rules! on_each_client {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn default_client() {
                super::$body(super::Backend::Default).await
            }
            #[tokio::test]
            async fn reqwest_client() {
                super::$body(super::Backend::Reqwest).await
            }
        }
    };
}

fn opts() -> ProxyOptions {
    ProxyOptions {
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    }
}

impl Client {
    fn start(url: &str, options: ProxyOptions, auth: Option<Arc<dyn RequestAuth>>) -> Client {
        Self::start_on(Backend::Default, url, options, auth)
    }

    fn start_on(
        backend: Backend,
        url: &str,
        options: ProxyOptions,
        auth: Option<Arc<dyn RequestAuth>>,
    ) -> Client {
        let proxy = backend.proxy(url, options, auth);
        let (input, proxy_in) = tokio::io::duplex(1 << 16);
        let (proxy_out, output) = tokio::io::duplex(1 << 16);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            proxy
                .run(proxy_in, proxy_out, async move {
                    let _ = stop_rx.await;
                })
                .await
        });
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(output);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = tx.send(line.trim_end_matches('\n').to_string());
                    }
                }
            }
        });
        Client {
            input: Some(input),
            lines,
            task: Some(task),
            stop: Some(stop),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("input closed");
        input.write_all(bytes).await.unwrap();
        input.flush().await.unwrap();
    }

    async fn send(&mut self, line: &str) {
        assert!(!line.contains('\n'));
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    async fn send_json(&mut self, v: Value) {
        self.send(&v.to_string()).await;
    }

    /// The next line the proxy wrote.
    async fn recv_line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.lines.recv())
            .await
            .expect("no message from the proxy within 10 s")
            .expect("the proxy's output closed")
    }

    async fn recv(&mut self) -> Value {
        let line = self.recv_line().await;
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("proxy wrote a non-JSON line ({e}): {line:?}"))
    }

    /// Nothing more within `d`.
    async fn silent_for(&mut self, d: Duration) {
        if let Ok(Some(l)) = tokio::time::timeout(d, self.lines.recv()).await {
            panic!("unexpected message from the proxy: {l}");
        }
    }

    async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send_json(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.recv().await
    }

    async fn initialize(&mut self) -> Value {
        let r = self
            .request(
                json!(0),
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}, "clientInfo": {"name": "host", "version": "1"}}),
            )
            .await;
        self.send_json(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        r
    }

    fn close_input(&mut self) {
        self.input = None;
    }

    async fn finish(mut self) -> ProxyReport {
        self.close_input();
        self.join().await
    }

    async fn signal(mut self) -> ProxyReport {
        let _ = self.stop.take().unwrap().send(());
        self.join().await
    }

    async fn join(&mut self) -> ProxyReport {
        tokio::time::timeout(Duration::from_secs(15), self.task.take().unwrap())
            .await
            .expect("the proxy did not stop")
            .unwrap()
            .unwrap()
    }
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "modern-host", "version": "1"}
    })
}

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("test timed out")
}

/// Waits until `cond` holds (polling).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

// -------------------------------------------------------------------------------------
// Session (2025) wire
// -------------------------------------------------------------------------------------

on_each_client!(
    session_wire_relays_handshake_requests_and_ends_with_delete,
    session_wire_relays_handshake_requests_and_ends_with_delete_on
);
async fn session_wire_relays_handshake_requests_and_ends_with_delete_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        let init = c.initialize().await;
        assert_eq!(init["id"], 0);
        assert_eq!(init["result"]["serverInfo"]["name"], "mock");
        // The GET stream opens after notifications/initialized.
        eventually("GET stream", || server.count("GET") == 1).await;
        let r = c.request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await;
        assert_eq!(r, json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "hi"}]}}));

        let posts: Vec<Req> = server.seen().into_iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 3);
        assert!(posts[0].header("mcp-session-id").is_none(), "initialize carries no session");
        for p in &posts[1..] {
            assert_eq!(p.header("mcp-session-id").as_deref(), Some("session-1"));
            assert_eq!(p.header("mcp-protocol-version").as_deref(), Some("2025-11-25"));
            assert!(p.header("mcp-method").is_none(), "no 2026 headers on the session wire");
            assert_eq!(p.header("accept").as_deref(), Some("application/json, text/event-stream"));
        }
        let get = server.seen().into_iter().find(|r| r.method == "GET").unwrap();
        assert_eq!(get.header("accept").as_deref(), Some("text/event-stream"));
        assert_eq!(get.header("mcp-session-id").as_deref(), Some("session-1"));

        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        let delete = server.seen().into_iter().find(|r| r.method == "DELETE").expect("DELETE at shutdown");
        assert_eq!(delete.header("mcp-session-id").as_deref(), Some("session-1"));
    })
    .await;
}

on_each_client!(
    messages_pass_byte_for_byte_in_both_directions,
    messages_pass_byte_for_byte_in_both_directions_on
);
async fn messages_pass_byte_for_byte_in_both_directions_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        // The server answers with odd formatting and unknown members.
        mock.set_custom(|_, req| {
            (req.rpc_method() == "vendor/unknown").then(|| {
                Resp::raw(
                    200,
                    "application/json; charset=utf-8",
                    format!(
                        "{{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": {},\n  \"result\": {{\"x-future\": [1, 2.50, \"\\n\\u00e9\"], \"nested\": {{\"a\": null}}}},\n  \"extra\": true\n}}\n",
                        req.id()
                    ),
                )
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let sent = r#"{"jsonrpc":"2.0","id":"req-1","method":"vendor/unknown","params":{"name":{"not":"a string"},"_meta":{"custom/key":[1,{"b":false}]},"big":12345678901234567890,"float":1.50},"futureTopLevel":{"k":"v"}}"#;
        c.send(sent).await;
        let line = c.recv_line().await;
        // Line breaks became spaces; everything else is the server's bytes.
        assert_eq!(
            line,
            "{   \"jsonrpc\": \"2.0\",    \"id\": \"req-1\",   \"result\": {\"x-future\": [1, 2.50, \"\\n\\u00e9\"], \"nested\": {\"a\": null}},   \"extra\": true } "
        );
        let received = server.posts("vendor/unknown");
        assert_eq!(received.len(), 1);
        assert_eq!(&received[0].body[..], sent.as_bytes(), "the request reached the server unchanged");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn server_requests_on_the_get_stream_and_on_response_streams_round_trip() {
    within(async {
        let mock = Mock::new(Cfg::default());
        // tools/call answers with an SSE stream: a server request first, then (once the
        // client answered it) the result.
        let (call_tx, call_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        let call_rx = Arc::new(tokio::sync::Mutex::new(call_rx));
        mock.set_custom(move |_, req| {
            if req.is_post("tools/call") {
                let (r, tx) = Resp::stream();
                call_tx.try_send(tx).unwrap();
                return Some(r);
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        eventually("GET stream", || !mock.get_streams.lock().unwrap().is_empty()).await;

        // A server request on the GET stream reaches the client...
        let ping = json!({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list", "params": {"_meta": {"x": 1}}});
        mock.push_get(ping.clone()).await;
        assert_eq!(c.recv().await, ping);
        // ...and the client's response goes back to the server.
        let answer = json!({"jsonrpc": "2.0", "id": "srv-1", "result": {"roots": [{"uri": "file:///tmp", "name": "tmp"}]}});
        c.send_json(answer.clone()).await;
        eventually("the client's response at the server", || {
            server.seen().iter().any(|r| r.method == "POST" && r.json() == answer)
        })
        .await;
        let posted = server.seen().into_iter().find(|r| r.json() == answer).unwrap();
        assert_eq!(posted.header("mcp-session-id").as_deref(), Some("session-1"));

        // A server request inside a tool call's response stream.
        c.send_json(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})).await;
        let tx = call_rx.lock().await.recv().await.unwrap();
        let elicit = json!({"jsonrpc": "2.0", "id": 99, "method": "elicitation/create", "params": {"message": "ok?", "requestedSchema": {"type": "object"}}});
        tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 0.5}}))).await.unwrap();
        tx.send(event(&elicit)).await.unwrap();
        assert_eq!(c.recv().await["method"], "notifications/progress");
        assert_eq!(c.recv().await, elicit);
        let accept = json!({"jsonrpc": "2.0", "id": 99, "result": {"action": "accept", "content": {}}});
        c.send_json(accept.clone()).await;
        eventually("the elicitation answer at the server", || server.seen().iter().any(|r| r.json() == accept)).await;
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 7, "result": {"content": []}}))).await.unwrap();
        let r = c.recv().await;
        assert_eq!(r["id"], 7);
        assert_eq!(r["result"], json!({"content": []}));
        c.finish().await;
    })
    .await;
}

on_each_client!(
    interrupted_response_stream_is_resumed_with_last_event_id,
    interrupted_response_stream_is_resumed_with_last_event_id_on
);
async fn interrupted_response_stream_is_resumed_with_last_event_id_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| {
            if req.is_post("tools/call") {
                // Priming event, a notification, then the connection closes.
                return Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!(
                        "id: e1\ndata:\n\nretry: 50\nid: e2\ndata: {}\n\n",
                        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}})
                    ),
                ));
            }
            if req.method == "GET" && req.header("last-event-id").is_some() {
                assert_eq!(req.header("last-event-id").as_deref(), Some("e2"));
                assert_eq!(req.header("mcp-session-id").as_deref(), Some("session-1"));
                return Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!("id: e3\ndata: {}\n\n", json!({"jsonrpc": "2.0", "id": 5, "result": {"resumed": true}})),
                ));
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "slow"}})).await;
        assert_eq!(c.recv().await["method"], "notifications/progress");
        assert_eq!(c.recv().await, json!({"jsonrpc": "2.0", "id": 5, "result": {"resumed": true}}));
        assert!(server.seen().iter().any(|r| r.header("last-event-id").as_deref() == Some("e2")));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn expired_session_is_renewed_and_the_request_replayed() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        // The server forgets every session.
        mock.sessions.lock().unwrap().clear();
        let r = c
            .request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "b"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "b", "{r}");
        // The client saw nothing else: no second initialize result.
        c.silent_for(Duration::from_millis(100)).await;
        let inits = server.posts("initialize");
        assert_eq!(inits.len(), 2);
        assert_eq!(
            inits[0].body, inits[1].body,
            "the client's initialize was replayed as is"
        );
        assert_eq!(server.posts("notifications/initialized").len(), 2);
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[1].header("mcp-session-id").as_deref(),
            Some("session-1")
        );
        assert_eq!(
            calls[2].header("mcp-session-id").as_deref(),
            Some("session-2")
        );
        c.finish().await;
    })
    .await;
}

on_each_client!(server_restart_mid_session, server_restart_mid_session_on);
async fn server_restart_mid_session_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        // Crash: connections drop, sessions are lost; back 200 ms later.
        server.stop();
        mock.sessions.lock().unwrap().clear();
        mock.get_streams.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let restart = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.restart().await;
        };
        let (r, ()) = tokio::join!(
            c.request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "after"}})
            ),
            restart
        );
        assert_eq!(r["result"]["content"][0]["text"], "after", "{r}");
        // A new session, and the GET stream reopened on it.
        eventually("GET stream on the new session", || {
            server.seen().iter().any(|r| {
                r.method == "GET" && r.header("mcp-session-id").as_deref() == Some("session-2")
            })
        })
        .await;
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn stream_closed_before_the_response_is_an_error_not_silence() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            ..Default::default()
        });
        mock.set_custom(|_, req| {
            req.is_post("tools/call").then(|| {
                // No event ids: not resumable (and 2026-07-28 streams never are).
                Resp::raw(200, "text/event-stream", format!("data: {}\n\n", json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}})))
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.send_json(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "_meta": modern_meta()}})).await;
        assert_eq!(c.recv().await["method"], "notifications/progress");
        let e = c.recv().await;
        assert_eq!(e["id"], 3);
        assert_eq!(e["error"]["code"], -32603);
        assert!(e["error"]["message"].as_str().unwrap().contains("closed the response stream before the response"), "{e}");
        c.finish().await;
    })
    .await;
}

on_each_client!(
    redirects_are_followed_within_the_origin_only,
    redirects_are_followed_within_the_origin_only_on
);
async fn redirects_are_followed_within_the_origin_only_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let elsewhere = Mock::new(Cfg::default()).serve().await;
        let away = format!("{}/stolen", elsewhere.url);
        mock.set_custom(move |_, req| {
            let moved = |status: u16, location: &str| {
                let mut r = Resp::status(status);
                r.headers.push(("location".into(), location.into()));
                Some(r)
            };
            match (req.rpc_method().as_str(), req.path.as_str()) {
                // 307 and 308 repeat the POST, body and headers, at the new URL.
                ("tools/call", "/mcp") => moved(307, "/v2/mcp"),
                ("tools/call", "/v2/mcp") => moved(308, "/v3/mcp"),
                ("leave", _) => moved(307, &away),
                ("loop", p) => moved(307, p),
                _ => None,
            }
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "moved"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "moved", "{r}");
        let calls = server.posts("tools/call");
        let paths: Vec<&str> = calls.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/mcp", "/v2/mcp", "/v3/mcp"]);
        assert_eq!(
            calls[0].body, calls[2].body,
            "the body is sent again as it was"
        );
        assert_eq!(
            calls[2].header("mcp-session-id").as_deref(),
            Some("session-1")
        );

        // Another origin: not followed (the request's headers would go with it); the
        // client is told.
        let e = c.request(json!(2), "leave", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 307, "{e}");
        assert!(
            elsewhere.seen().is_empty(),
            "nothing reached the other origin"
        );
        // A redirect loop ends with an error, not a hang.
        let e = c.request(json!(3), "loop", json!({})).await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("redirect"),
            "{e}"
        );
        assert!(
            server.posts("loop").len() <= 7,
            "{} requests",
            server.posts("loop").len()
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn http_errors_become_json_rpc_errors_for_the_request() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| match req.rpc_method().as_str() {
            "boom" => Some(Resp::raw(502, "text/html", "<html>bad gateway</html>")),
            "bad" => Some(Resp::error(400, Value::Null, -32602, "Invalid params: nope", Some(json!({"field": "x"})))),
            "wrongtype" => Some(Resp::raw(200, "text/plain", "hello")),
            "notjson" => Some(Resp::raw(200, "application/json", "{oops")),
            _ => None,
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let e = c.request(json!("a"), "boom", json!({})).await;
        assert_eq!(e["id"], "a");
        assert_eq!(e["error"]["code"], -32603);
        assert_eq!(e["error"]["data"]["httpStatus"], 502);
        assert!(e["error"]["message"].as_str().unwrap().contains("bad gateway"));
        // The server's JSON-RPC error is relayed with the client's id.
        let e = c.request(json!("b"), "bad", json!({})).await;
        assert_eq!(e, json!({"jsonrpc": "2.0", "id": "b", "error": {"code": -32602, "message": "Invalid params: nope", "data": {"field": "x"}}}));
        let e = c.request(json!("c"), "wrongtype", json!({})).await;
        assert!(e["error"]["message"].as_str().unwrap().contains("text/plain"));
        let e = c.request(json!("d"), "notjson", json!({})).await;
        assert!(e["error"]["message"].as_str().unwrap().contains("invalid JSON"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn server_without_get_stream_or_sessions() {
    within(async {
        let mock = Mock::new(Cfg {
            sessions: false,
            get_stream: false,
            sse: true,
            ..Default::default()
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "sse"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "sse");
        eventually("one GET attempt", || server.count("GET") == 1).await;
        c.silent_for(Duration::from_millis(100)).await;
        assert_eq!(
            server.count("GET"),
            1,
            "405 means no GET stream: not retried"
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0, "no session, no DELETE");
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Stateless (2026-07-28) wire
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn stateless_wire_sends_request_metadata_headers_and_no_session() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let d = c.request(json!(1), "server/discover", json!({"_meta": modern_meta()})).await;
        assert_eq!(d["result"]["supportedVersions"], json!([MODERN]));
        // tools/list: the tool with an invalid x-mcp-header annotation is left out.
        let tools = c.request(json!(2), "tools/list", json!({"_meta": modern_meta()})).await;
        let names: Vec<&str> = tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["echo"]);
        let r = c
            .request(json!(3), "tools/call", json!({"name": "echo", "arguments": {"text": "t", "region": "us-west1"}, "_meta": modern_meta()}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "t");
        c.request(json!(4), "echo/params", json!({"uri": "file:///tmp/é", "_meta": modern_meta()})).await;
        c.request(json!(5), "resources/read", json!({"uri": "file:///tmp/é", "_meta": modern_meta()})).await;

        let posts = server.seen();
        assert!(posts.iter().all(|r| r.method == "POST"), "no GET or DELETE on the stateless wire");
        for p in &posts {
            assert_eq!(p.header("mcp-protocol-version").as_deref(), Some(MODERN));
            assert_eq!(p.header("mcp-method").unwrap(), p.rpc_method());
            assert!(p.header("mcp-session-id").is_none());
        }
        let call = &server.posts("tools/call")[0];
        assert_eq!(call.header("mcp-name").as_deref(), Some("echo"));
        assert_eq!(call.header("mcp-param-region").as_deref(), Some("us-west1"));
        assert!(server.posts("echo/params")[0].header("mcp-name").is_none());
        assert_eq!(
            server.posts("resources/read")[0].header("mcp-name").as_deref(),
            Some("=?base64?ZmlsZTovLy90bXAvw6k=?=")
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0);
    })
    .await;
}

#[tokio::test]
async fn header_mismatch_refreshes_tool_annotations_and_retries_once() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            sessions: false,
            ..Default::default()
        });
        mock.set_custom(|_, req| {
            (req.is_post("tools/call") && req.header("mcp-param-region").is_none())
                .then(|| Resp::error(400, req.id(), -32020, "Header mismatch: Mcp-Param-Region missing", None))
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        // The client never listed the tools: the proxy does not know the annotation yet.
        let r = c
            .request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "t", "region": "eu"}, "_meta": modern_meta()}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "t", "{r}");
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].header("mcp-param-region").as_deref(), Some("eu"));
        let list = &server.posts("tools/list")[0];
        assert_eq!(list.json()["params"]["_meta"], modern_meta(), "the refresh used the client's _meta");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn subscriptions_listen_streams_until_cancelled_by_closing_it() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            ..Default::default()
        });
        let (listen_tx, mut listen_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("subscriptions/listen").then(|| {
                let (r, tx) = Resp::stream();
                listen_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.send_json(json!({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}})).await;
        let tx = listen_rx.recv().await.unwrap();
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}});
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}});
        tx.send(Bytes::from(": keep-alive\n\n")).await.unwrap();
        tx.send(event(&ack)).await.unwrap();
        assert_eq!(c.recv().await, ack);
        // Requests keep working while the stream is open.
        let r = c.request(json!(9), "tools/call", json!({"name": "echo", "arguments": {"text": "during"}, "_meta": modern_meta()})).await;
        assert_eq!(r["result"]["content"][0]["text"], "during");
        tx.send(event(&changed)).await.unwrap();
        assert_eq!(c.recv().await, changed);
        // Cancelling closes the stream; nothing is POSTed for it.
        c.send_json(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "L", "reason": "done"}})).await;
        tokio::time::timeout(Duration::from_secs(5), tx.closed()).await.expect("the listen stream was not closed");
        assert!(server.posts("notifications/cancelled").is_empty());
        c.silent_for(Duration::from_millis(100)).await;
        // End of input does not wait for the (cancelled) listen stream.
        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Authorization
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_stored_token_means_one_http_request_before_the_first_reply() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("good".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("good"), &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.send_json(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}})).await;
        let r = c.recv().await;
        assert!(r.get("result").is_some());
        assert_eq!(server.seen().len(), 1, "exactly one HTTP request before the first reply");
        assert_eq!(server.seen()[0].header("authorization").as_deref(), Some("Bearer good"));
        assert!(auth.refusals().is_empty());
        c.finish().await;
    })
    .await;
}

on_each_client!(
    unauthorized_request_is_held_authorized_and_replayed,
    unauthorized_request_is_held_authorized_and_replayed_on
);
async fn unauthorized_request_is_held_authorized_and_replayed_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("fresh".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(None, &["fresh"]);
        let mut c = Client::start_on(backend, &server.url, opts(), Some(auth.clone()));
        let init = c.initialize().await;
        assert!(init.get("result").is_some(), "{init}");
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "ok"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "ok");
        let refusals = auth.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].status, 401);
        assert!(!refusals[0].sent_credentials);
        assert_eq!(refusals[0].url, server.url);
        let inits = server.posts("initialize");
        assert_eq!(inits.len(), 2, "the refused initialize was replayed");
        assert_eq!(inits[0].body, inits[1].body);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn token_expiry_mid_session_refreshes_and_keeps_the_session() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("t1".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("t1"), &["t2"]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.initialize().await;
        c.request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "a"}})).await;
        // t1 expires at the server.
        mock.cfg.lock().unwrap().token = Some("t2".into());
        // Several requests in flight at once hit the expiry.
        for i in 2..5 {
            c.send_json(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": format!("m{i}")}}})).await;
        }
        let mut got = HashMap::new();
        for _ in 2..5 {
            let r = c.recv().await;
            got.insert(r["id"].as_i64().unwrap(), r["result"]["content"][0]["text"].as_str().unwrap().to_string());
        }
        assert_eq!(got.len(), 3);
        assert!(auth.refusals().iter().all(|r| r.sent_credentials));
        let calls = server.posts("tools/call");
        assert!(calls.iter().all(|r| r.header("mcp-session-id").as_deref() == Some("session-1")), "same session throughout");
        assert_eq!(server.posts("initialize").len(), 1);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn insufficient_scope_triggers_step_up_and_replay() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("user".into()),
            admin_token: Some("admin".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("user"), &["admin"]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "root"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "root");
        let refusals = auth.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].status, 403);
        assert!(refusals[0].www_authenticate[0].contains("insufficient_scope"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn failed_authorization_is_an_error_response_and_the_proxy_goes_on() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("never".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(None, &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth));
        let e = c.request(json!(0), "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}})).await;
        assert_eq!(e["id"], 0);
        assert!(e["error"]["message"].as_str().unwrap().contains("the user closed the browser"), "{e}");
        c.send("not json").await;
        assert_eq!(c.recv().await["error"]["code"], -32700);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn without_authorization_a_401_says_so() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("x".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let e = c.request(json!(0), "initialize", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 401);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("authorization")
        );
        c.finish().await;
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Bad input
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_lines_get_errors_and_the_proxy_keeps_going() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                max_message_bytes: 4096,
                ..opts()
            },
            None,
        );
        c.initialize().await;
        c.send("this is not json").await;
        let e = c.recv().await;
        assert_eq!(e, json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e["error"]["message"]}}));
        assert!(e["error"]["message"].as_str().unwrap().starts_with("Parse error"));
        c.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call""#).await;
        assert_eq!(c.recv().await["error"]["code"], -32700);
        c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xff\xfe\"}\n").await;
        let e = c.recv().await;
        assert_eq!(e["error"]["code"], -32700);
        assert!(e["error"]["message"].as_str().unwrap().contains("UTF-8"));
        c.send("[1, 2]").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        assert_eq!(c.recv().await["error"]["code"], -32600);
        c.send("42").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        c.send(r#"{"jsonrpc":"2.0","id":3}"#).await;
        let e = c.recv().await;
        assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(3), json!(-32600)));
        c.send("[]").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        // Over the limit: read to its end, answered, dropped.
        c.send(&format!(r#"{{"jsonrpc":"2.0","id":4,"method":"x","params":{{"p":"{}"}}}}"#, "a".repeat(5000))).await;
        let e = c.recv().await;
        assert_eq!(e["error"]["code"], -32600);
        assert!(e["error"]["message"].as_str().unwrap().contains("limit"));
        // Blank lines are ignored; CRLF is accepted.
        c.send_raw(b"\n   \r\n").await;
        c.send_raw(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}"#).await;
        c.send_raw(b"\r\n").await;
        let r = c.recv().await;
        assert_eq!(r["result"]["content"][0]["text"], "still here");
        // A batch: each member on its own.
        c.send(r#"[{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b1"}}},{"jsonrpc":"2.0","method":"notifications/progress","params":{}}]"#).await;
        assert_eq!(c.recv().await["result"]["content"][0]["text"], "b1");
        assert_eq!(server.posts("x").len(), 0, "nothing invalid reached the server");
        c.finish().await;
    })
    .await;
}

on_each_client!(
    ten_megabyte_messages_in_both_directions,
    ten_megabyte_messages_in_both_directions_on
);
async fn ten_megabyte_messages_in_both_directions_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let big = "x".repeat(10 * 1024 * 1024);
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": big}}),
            )
            .await;
        assert_eq!(
            r["result"]["content"][0]["text"].as_str().map(str::len),
            Some(big.len())
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_server_message_fails_its_request_only() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| {
            let big =
                json!({"jsonrpc": "2.0", "id": req.id(), "result": {"pad": "w".repeat(100_000)}});
            match req.rpc_method().as_str() {
                "big/json" => Some(Resp::json(big)),
                "big/sse" => Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!("data: {big}\n\n"),
                )),
                _ => None,
            }
        });
        let server = mock.serve().await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                max_message_bytes: 64 * 1024,
                ..opts()
            },
            None,
        );
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "y".repeat(60_000)}}),
            )
            .await;
        assert!(r.get("result").is_some(), "under the limit");
        for (id, method) in [(2, "big/json"), (3, "big/sse")] {
            let e = c.request(json!(id), method, json!({})).await;
            assert_eq!(e["id"], id);
            assert!(
                e["error"]["message"].as_str().unwrap().contains("limit"),
                "{e}"
            );
        }
        let r = c
            .request(
                json!(4),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "ok"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "ok");
        c.finish().await;
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Shutdown
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn end_of_input_waits_for_requests_in_flight() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (slow_tx, mut slow_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                slow_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}}),
        )
        .await;
        let tx = slow_rx.recv().await.unwrap();
        c.close_input();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(event(
            &json!({"jsonrpc": "2.0", "id": 1, "result": {"late": true}}),
        ))
        .await
        .unwrap();
        assert_eq!(c.recv().await["result"]["late"], true);
        let report = c.join().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        assert_eq!(server.count("DELETE"), 1);
    })
    .await;
}

#[tokio::test]
async fn shutdown_signal_stops_at_once_and_ends_the_session() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| req.is_post("tools/call").then(|| Resp::stream().0));
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "forever"}})).await;
        eventually("the call reached the server", || server.posts("tools/call").len() == 1).await;
        let report = c.signal().await;
        assert_eq!(report.ended_by, EndedBy::Shutdown);
        assert_eq!(server.count("DELETE"), 1);
    })
    .await;
}

/// Issue 17, item 5: a response stream that stays silent past the request timeout is
/// given up: the client gets -32001 for its request, the server `notifications/cancelled`.
#[tokio::test]
async fn a_silent_response_stream_is_given_up_and_cancelled_at_the_server() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let held = hold_streams(&mock, "hangs");
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(400)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        let r = c
            .request(json!("call-1"), "tools/call", json!({"name": "hangs"}))
            .await;
        assert_eq!(r["id"], "call-1", "{r}");
        assert_eq!(r["error"]["code"], -32001, "{r}");
        eventually("the server was told", || {
            server.posts("notifications/cancelled").len() == 1
        })
        .await;
        let cancel = server.posts("notifications/cancelled")[0].json();
        assert_eq!(cancel["params"]["requestId"], "call-1");
        // The proxy goes on.
        let r = c
            .request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "x"}}),
            )
            .await;
        assert_eq!(r["id"], 2, "{r}");
        c.finish().await;
        drop(held);
    })
    .await;
}

/// Answers `tools/call` of the tool `name` with a response stream that stays open and
/// silent: its senders are kept in the returned list.
fn hold_streams(mock: &Arc<Mock>, name: &'static str) -> Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> {
    let held: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> = Arc::default();
    let h = held.clone();
    mock.set_custom(move |_, req| {
        (req.is_post("tools/call") && req.json()["params"]["name"] == name).then(|| {
            let (r, tx) = Resp::stream();
            h.lock().unwrap().push(tx);
            r
        })
    });
    held
}

/// A long call that reports progress is not given up: each event of its stream starts
/// the request's clock again.
#[tokio::test]
async fn progress_keeps_a_long_call_alive_past_the_request_timeout() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (stream_tx, mut stream_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                stream_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(500)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "_meta": {"progressToken": "p"}}}))
            .await;
        let tx = stream_rx.recv().await.unwrap();
        // Six progress notifications 250 ms apart: 1.5 s in all, three times the limit.
        for n in 1..=6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p", "progress": n}})))
                .await
                .unwrap();
            assert_eq!(c.recv().await["params"]["progress"], n);
        }
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 1, "result": {"done": true}})))
            .await
            .unwrap();
        let r = c.recv().await;
        assert_eq!(r["result"]["done"], true, "{r}");
        assert!(server.posts("notifications/cancelled").is_empty());
        c.finish().await;
    })
    .await;
}

/// While the client answers a request the server sent on a call's stream (a user filling
/// in an elicitation), the call's clock is stopped.
#[tokio::test]
async fn a_server_request_waiting_for_the_client_does_not_count_as_silence() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (stream_tx, mut stream_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                stream_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(300)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "asks"}}))
            .await;
        let tx = stream_rx.recv().await.unwrap();
        tx.send(event(&json!({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create", "params": {"message": "name?"}})))
            .await
            .unwrap();
        assert_eq!(c.recv().await["method"], "elicitation/create");
        // The user takes longer than the limit.
        tokio::time::sleep(Duration::from_millis(900)).await;
        c.send_json(json!({"jsonrpc": "2.0", "id": "e1", "result": {"action": "accept", "content": {"name": "x"}}}))
            .await;
        eventually("the answer reached the server", || {
            server.seen().iter().any(|r| r.method == "POST" && r.json()["id"] == "e1")
        })
        .await;
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 1, "result": {"done": true}})))
            .await
            .unwrap();
        let r = c.recv().await;
        assert_eq!(r["result"]["done"], true, "{r}");
        c.finish().await;
    })
    .await;
}

/// At end of input, a request the server has not answered within the shutdown grace is
/// answered with an error before the proxy ends.
#[tokio::test]
async fn end_of_input_answers_what_the_grace_did_not() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let _held = hold_streams(&mock, "forever");
        let server = mock.serve().await;
        let options = ProxyOptions {
            shutdown_grace: Duration::from_millis(300),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "forever"}})).await;
        eventually("the call reached the server", || server.posts("tools/call").len() == 1).await;
        c.close_input();
        let r = c.recv().await;
        assert_eq!(r["id"], 9, "{r}");
        assert_eq!(r["error"]["code"], -32001, "{r}");
        let report = c.join().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        assert!(c.lines.recv().await.is_none(), "nothing else");
    })
    .await;
}

#[tokio::test]
async fn output_closed_ends_the_run() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let proxy = Proxy::with_client(&server.url, opts(), test_http(), None);
        let (mut input, proxy_in) = tokio::io::duplex(1024);
        let (proxy_out, output) = tokio::io::duplex(1024);
        drop(output);
        let task =
            tokio::spawn(
                async move { proxy.run(proxy_in, proxy_out, std::future::pending()).await },
            );
        input.write_all(b"garbage\n").await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(report.ended_by, EndedBy::OutputClosed);
    })
    .await;
}

// -------------------------------------------------------------------------------------
// HTTP+SSE (2024-11-05) and era bridging
// -------------------------------------------------------------------------------------

/// A 2024-11-05 HTTP+SSE server: GET /mcp opens the stream and names /messages?s=N;
/// POSTs there are answered on the stream.
async fn http_sse_server(
    token: Option<&'static str>,
) -> (Server, Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>) {
    let streams: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> = Arc::new(Mutex::new(Vec::new()));
    let s2 = streams.clone();
    let server = Server::start(Arc::new(move |req: Req| {
        let streams = s2.clone();
        Box::pin(async move {
            if let Some(t) = token
                && req.header("authorization").as_deref() != Some(&format!("Bearer {t}"))
            {
                return Resp::status(401).header("www-authenticate", "Bearer");
            }
            match (req.method.as_str(), req.path.split('?').next().unwrap()) {
                ("GET", "/mcp") => {
                    let (r, tx) = Resp::stream();
                    let n = {
                        let mut s = streams.lock().unwrap();
                        s.push(tx.clone());
                        s.len() - 1
                    };
                    tx.send(Bytes::from(format!("event: endpoint\ndata: /messages?s={n}\n\n"))).await.unwrap();
                    r
                }
                ("POST", "/mcp") => Resp::status(405),
                ("POST", "/messages") => {
                    let n: usize = req.path.split("s=").nth(1).unwrap().parse().unwrap();
                    let tx = streams.lock().unwrap()[n].clone();
                    let msg = req.json();
                    if let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) {
                        let result = match method {
                            "initialize" => json!({"protocolVersion": "2024-11-05", "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}),
                            _ => json!({"echo": msg["params"]}),
                        };
                        let _ = tx.send(event(&json!({"jsonrpc": "2.0", "id": id, "result": result}))).await;
                    }
                    Resp::status(202)
                }
                _ => Resp::status(404),
            }
        })
    }))
    .await;
    (server, streams)
}

#[tokio::test]
async fn http_sse_transport_by_fallback_and_reconnect() {
    within(async {
        let (server, streams) = http_sse_server(Some("tok")).await;
        let auth = FakeAuth::new(Some("tok"), &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth));
        let init = c.initialize().await;
        assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "{init}");
        let r = c.request(json!(1), "tools/call", json!({"name": "x"})).await;
        assert_eq!(r["result"]["echo"]["name"], "x");
        let posts: Vec<Req> = server.seen().into_iter().filter(|r| r.path.starts_with("/messages")).collect();
        assert!(posts.iter().all(|r| r.header("authorization").as_deref() == Some("Bearer tok")));
        // A server notification on the stream reaches the client.
        let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello"}});
        let tx = streams.lock().unwrap()[0].clone();
        tx.send(event(&note)).await.unwrap();
        assert_eq!(c.recv().await, note);
        // The stream is lost: the proxy reconnects and replays the handshake.
        streams.lock().unwrap().clear();
        drop(tx);
        eventually("reconnected", || streams.lock().unwrap().len() == 1).await;
        eventually("handshake replayed", || {
            server.seen().iter().filter(|r| r.path == "/messages?s=0" && r.rpc_method() == "notifications/initialized").count() == 1
        })
        .await;
        let r = c.request(json!(2), "tools/call", json!({"name": "y"})).await;
        assert_eq!(r["result"]["echo"]["name"], "y");
        c.silent_for(Duration::from_millis(100)).await;
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn http_sse_transport_forced() {
    within(async {
        let (server, _streams) = http_sse_server(None).await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                transport: TransportMode::Sse,
                ..opts()
            },
            None,
        );
        let init = c.initialize().await;
        assert_eq!(init["result"]["serverInfo"]["name"], "old");
        eventually("initialize and initialized went to the endpoint", || {
            server.count("POST") == 2
        })
        .await;
        assert!(
            server
                .seen()
                .iter()
                .filter(|r| r.method == "POST")
                .all(|r| r.path.starts_with("/messages")),
            "no Streamable HTTP attempt"
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn endpoint_on_another_origin_is_refused() {
    within(async {
        let server = Server::start(Arc::new(|req: Req| {
            Box::pin(async move {
                if req.method == "GET" {
                    let (r, tx) = Resp::stream();
                    tx.send(Bytes::from(
                        "event: endpoint\ndata: http://evil.example/steal\n\n",
                    ))
                    .await
                    .unwrap();
                    std::mem::forget(tx);
                    r
                } else {
                    Resp::status(405)
                }
            })
        }))
        .await;
        let mut c = Client::start(&server.url, opts(), None);
        let e = c.request(json!(0), "initialize", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 405, "{e}");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn legacy_client_is_bridged_to_a_modern_only_server() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let init = c.initialize().await;
        assert_eq!(init["id"], 0);
        let result = &init["result"];
        assert_eq!(result["protocolVersion"], "2025-11-25");
        assert_eq!(result["serverInfo"]["name"], "modern-mock");
        assert_eq!(result["instructions"], "be nice");
        assert_eq!(
            result["capabilities"]["tools"]["listChanged"], true,
            "change notifications are bridged"
        );
        // ping and logging/setLevel are answered by the proxy.
        assert_eq!(
            c.request(json!(1), "ping", json!(null)).await,
            json!({"jsonrpc": "2.0", "id": 1, "result": {}})
        );
        assert_eq!(
            c.request(json!(2), "logging/setLevel", json!({"level": "debug"}))
                .await["result"],
            json!({})
        );
        let tools = c.request(json!(3), "tools/list", json!({})).await;
        assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 1);
        let r = c
            .request(
                json!(4),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "bridged", "region": "ap"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "bridged");

        let call = &server.posts("tools/call")[0];
        let meta = &call.json()["params"]["_meta"];
        assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], MODERN);
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"],
            json!({"name": "host", "version": "1"})
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({"sampling": {}})
        );
        assert_eq!(meta["io.modelcontextprotocol/logLevel"], "debug");
        assert_eq!(call.header("mcp-name").as_deref(), Some("echo"));
        assert_eq!(call.header("mcp-param-region").as_deref(), Some("ap"));
        assert!(server.posts("ping").is_empty());
        assert!(server.posts("notifications/initialized").is_empty());
        let discover = &server.posts("server/discover")[0];
        assert_eq!(
            discover.json()["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
            "host"
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0);
    })
    .await;
}

#[tokio::test]
async fn bridged_clients_get_list_changes_from_a_listen_stream_the_proxy_keeps_open() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let (listen_tx, mut listen_rx) = mpsc::channel::<(Value, mpsc::Sender<Bytes>)>(4);
        mock.set_custom(move |_, req| {
            req.is_post("subscriptions/listen").then(|| {
                let (r, tx) = Resp::stream();
                listen_tx.try_send((req.json(), tx)).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let (listen, tx) = listen_rx.recv().await.expect("a subscriptions/listen request");
        assert_eq!(
            listen["params"]["notifications"],
            json!({"toolsListChanged": true}),
            "what the server offers"
        );
        assert_eq!(
            listen["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
            "host"
        );
        let sub = listen["id"].clone();
        let meta = json!({"io.modelcontextprotocol/subscriptionId": sub});
        tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"notifications": {"toolsListChanged": true}, "_meta": meta}})))
            .await
            .unwrap();
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": meta}});
        tx.send(event(&changed)).await.unwrap();
        // The acknowledgement is the proxy's business; the change reaches the client.
        assert_eq!(c.recv().await, changed);
        // Requests go on meanwhile.
        let r = c
            .request(json!(5), "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "hi");
        // The server ends the stream: the proxy listens again and tells the client to
        // re-list (changes in between were not seen).
        drop(tx);
        let (_, tx2) = listen_rx.recv().await.expect("the stream is opened again");
        assert_eq!(
            c.recv().await,
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        );
        c.silent_for(Duration::from_millis(100)).await;
        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        drop(tx2);
        assert_eq!(server.posts("subscriptions/listen").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_listen_stream_that_keeps_failing_is_given_up_without_spamming_the_client() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        mock.set_custom(|_, req| {
            req.is_post("subscriptions/listen")
                .then(|| Resp::raw(500, "text/plain", "overloaded"))
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        eventually("five listen attempts", || {
            server.posts("subscriptions/listen").len() >= 5
        })
        .await;
        // No re-list hints for streams that never opened, and no sixth attempt.
        c.silent_for(Duration::from_millis(400)).await;
        assert_eq!(server.posts("subscriptions/listen").len(), 5);
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "still fine"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "still fine");
        c.finish().await;
    })
    .await;
}

/// A tool on a modern-only server that needs input (MRTR): sampling and roots on the first
/// try; with the answers and the state, the result quotes them.
fn asking_tool(_: &Mock, req: &Req) -> Option<Resp> {
    let msg = req.json();
    if req.rpc_method() != "tools/call" || msg["params"]["name"] != "ask" {
        return None;
    }
    let p = &msg["params"];
    let result = match p.get("inputResponses") {
        None => json!({
            "resultType": "input_required",
            "inputRequests": {
                "capital": {"method": "sampling/createMessage", "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "Capital of France?"}}], "maxTokens": 10}},
                "where": {"method": "roots/list"}
            },
            "requestState": "opaque state, echoed exactly"
        }),
        Some(r) => json!({
            "resultType": "complete",
            "content": [{"type": "text", "text": format!(
                "{} in {} ({})",
                r["capital"]["content"]["text"].as_str().unwrap_or("?"),
                r["where"]["roots"][0]["uri"].as_str().unwrap_or("?"),
                p["requestState"].as_str().unwrap_or("no state"),
            )}]
        }),
    };
    Some(Resp::result(req, result))
}

#[tokio::test]
async fn bridged_input_requests_reach_the_legacy_client_and_the_request_is_retried() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        mock.set_custom(asking_tool);
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}))
            .await;
        // The two input requests arrive as server-initiated requests, under the proxy's ids.
        let mut asked = Vec::new();
        for _ in 0..2 {
            asked.push(c.recv().await);
        }
        asked.sort_by_key(|m| m["method"].as_str().unwrap_or("").to_string());
        assert_eq!(asked[0]["method"], "roots/list");
        assert_eq!(asked[1]["method"], "sampling/createMessage");
        assert_eq!(asked[1]["params"]["maxTokens"], 10);
        assert_ne!(asked[0]["id"], asked[1]["id"]);
        assert_ne!(asked[0]["id"], json!(7));
        // The client answers (in reverse order).
        c.send_json(json!({"jsonrpc": "2.0", "id": asked[1]["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}}))
            .await;
        c.send_json(json!({"jsonrpc": "2.0", "id": asked[0]["id"], "result": {"roots": [{"uri": "file:///work"}]}}))
            .await;
        let r = c.recv().await;
        assert_eq!(r["id"], 7, "the final reply has the client's id: {r}");
        assert_eq!(
            r["result"]["content"][0]["text"],
            "Paris in file:///work (opaque state, echoed exactly)"
        );
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 2, "the original request and one retry");
        let (first, retry) = (calls[0].json(), calls[1].json());
        assert_eq!(first["id"], 7);
        assert_ne!(retry["id"], first["id"], "a retry is a new request");
        assert_eq!(retry["params"]["requestState"], "opaque state, echoed exactly");
        assert_eq!(
            retry["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN
        );
        // The client's answers were not relayed to the server as messages of their own.
        assert_eq!(server.posts("").len(), 0);

        // A client that answers an input request with an error fails the request.
        c.send_json(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}))
            .await;
        for _ in 0..2 {
            let ask = c.recv().await;
            let answer = if ask["method"] == "sampling/createMessage" {
                json!({"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -1, "message": "User rejected sampling request"}})
            } else {
                json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": []}})
            };
            c.send_json(answer).await;
        }
        let r = c.recv().await;
        assert_eq!(r["id"], 8);
        let m = r["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("sampling/createMessage") && m.contains("User rejected sampling request"),
            "{m}"
        );
        assert_eq!(server.posts("tools/call").len(), 3, "no retry after a refusal");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn modern_client_on_a_legacy_server_gets_the_servers_error() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        // A dual-era client probes; the legacy server's answer lets it fall back.
        let e = c
            .request(
                json!("probe"),
                "server/discover",
                json!({"_meta": modern_meta()}),
            )
            .await;
        assert_eq!(e["id"], "probe");
        assert!(e.get("error").is_some(), "{e}");
        let init = c.initialize().await;
        assert!(init.get("result").is_some());
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "legacy"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "legacy");
        c.finish().await;
        let _ = server;
    })
    .await;
}

#[tokio::test]
async fn static_headers_are_sent_and_protocol_headers_win() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k1"));
        headers.insert("mcp-session-id", HeaderValue::from_static("forged"));
        let mut c = Client::start(&server.url, ProxyOptions { headers, ..opts() }, None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        let call = &server.posts("tools/call")[0];
        assert_eq!(call.header("x-api-key").as_deref(), Some("k1"));
        assert_eq!(call.header("mcp-session-id").as_deref(), Some("session-1"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn many_requests_in_flight() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let served = Arc::new(AtomicUsize::new(0));
        let s2 = served.clone();
        mock.set_custom(move |_, req| {
            if req.is_post("tools/call") {
                s2.fetch_add(1, Ordering::Relaxed);
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        for i in 0..64 {
            c.send_json(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": format!("n{i}")}}})).await;
        }
        let mut ids = HashSet::new();
        for _ in 0..64 {
            let r = c.recv().await;
            let id = r["id"].as_i64().unwrap();
            assert_eq!(r["result"]["content"][0]["text"], format!("n{id}"));
            ids.insert(id);
        }
        assert_eq!(ids.len(), 64);
        assert_eq!(served.load(Ordering::Relaxed), 64);
        c.finish().await;
    })
    .await;
}
