//! Proxy tests: a stdio client (in-memory pipes) talking through the proxy to small
//! in-process MCP servers (hyper) that record what they receive.
//!
//! This file is the harness: the mock server, a fake authorization hook, the stdio client
//! and the macro that runs a test on each HTTP client. The tests are in one module per
//! part of the proxy they exercise.

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

mod authorization;
mod bad_input;
mod legacy;
mod session;
mod shutdown;
mod stateless;
