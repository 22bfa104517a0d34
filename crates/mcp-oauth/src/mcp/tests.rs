//! Client tests against small in-process HTTP servers (hyper), recording what the server
//! received.

use super::*;
use crate::error::Error;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// -------------------------------------------------------------------------------------
// Test server
// -------------------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    headers: http::HeaderMap,
    body: Value,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn rpc_method(&self) -> &str {
        self.body
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn id(&self) -> Value {
        self.body.get("id").cloned().unwrap_or(Value::Null)
    }
    fn meta(&self) -> &Value {
        &self.body["params"]["_meta"]
    }
}

/// What the server answers.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    chunks: Vec<Bytes>,
    /// Delay before the first body chunk (headers go out at once).
    delay: Duration,
}

impl Answer {
    fn json(v: Value) -> Self {
        Self::with_body(200, "application/json", v.to_string())
    }
    fn result(seen: &Seen, result: Value) -> Self {
        Self::json(json!({"jsonrpc": "2.0", "id": seen.id(), "result": result}))
    }
    fn error(status: u16, seen: &Seen, code: i64, message: &str) -> Self {
        Self::with_body(
            status,
            "application/json",
            json!({"jsonrpc": "2.0", "id": seen.id(), "error": {"code": code, "message": message}})
                .to_string(),
        )
    }
    fn with_body(status: u16, content_type: &str, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type.to_string())],
            chunks: vec![Bytes::from(body)],
            delay: Duration::ZERO,
        }
    }
    /// An SSE body delivered as the given chunks.
    fn sse(chunks: &[&str]) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/event-stream".to_string())],
            chunks: chunks.iter().map(|c| Bytes::from(c.to_string())).collect(),
            delay: Duration::ZERO,
        }
    }
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            chunks: vec![],
            delay: Duration::ZERO,
        }
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Answer + Send + Sync>;

struct TestServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    /// The POSTs with a JSON-RPC method (requests and notifications).
    fn posts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST" && !s.rpc_method().is_empty())
            .collect()
    }
}

/// Starts a server on 127.0.0.1; `handler` gets each request and its index.
async fn serve(handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> TestServer {
    let handler: Handler = Arc::new(handler);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    let seen = seen.clone();
                    async move {
                        let method = req.method().to_string();
                        let headers = req.headers().clone();
                        let bytes = req
                            .into_body()
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let s = Seen {
                            method,
                            headers,
                            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                            at: Instant::now(),
                        };
                        let n = {
                            let mut g = seen.lock().unwrap();
                            g.push(s.clone());
                            g.len() - 1
                        };
                        let answer = handler(&s, n);
                        let mut builder = hyper::Response::builder().status(answer.status);
                        for (k, v) in &answer.headers {
                            builder = builder.header(*k, v);
                        }
                        let delay = answer.delay;
                        let chunks = answer.chunks;
                        let stream = futures_util::stream::unfold(
                            (chunks.into_iter(), delay),
                            |(mut it, delay)| async move {
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                let c = it.next()?;
                                Some((Ok::<_, Infallible>(Frame::data(c)), (it, Duration::ZERO)))
                            },
                        );
                        Ok::<_, Infallible>(
                            builder
                                .body(BodyExt::boxed(StreamBody::new(stream)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    TestServer { url, seen }
}

/// A session-based server: initialize (with `session` when given, answering
/// `version`), 202 for notifications, tools/list and tools/call.
fn stateful_handler(
    session: Option<&'static str>,
    version: &'static str,
) -> impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static {
    move |s, _| match s.rpc_method() {
        "initialize" => {
            let a = Answer::result(
                s,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "test", "version": "1"},
                }),
            );
            match session {
                Some(id) => a.header("mcp-session-id", id),
                None => a,
            }
        }
        m if m.starts_with("notifications/") => Answer::status(202),
        "tools/list" => Answer::result(
            s,
            json!({"tools": [{"name": "test-tool", "inputSchema": {"type": "object"}}]}),
        ),
        "tools/call" => Answer::result(s, json!({"content": [{"type": "text", "text": "test"}]})),
        _ => Answer::error(200, s, -32601, "Method not found"),
    }
}

// -------------------------------------------------------------------------------------
// Client side helpers
// -------------------------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn options(protocol: Protocol) -> McpClientOptions {
    McpClientOptions {
        protocol,
        client_name: "test-client".into(),
        client_version: "9.9".into(),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn client(
    server: &TestServer,
    protocol: Protocol,
    auth: Option<Arc<dyn RequestAuth>>,
) -> McpClient {
    McpClient::new(server.url.clone(), http(), options(protocol), auth)
}

fn stateful() -> Protocol {
    Protocol::Stateful("2025-11-25".into())
}

/// Every test is bounded in time.
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test timed out")
}

#[derive(Clone, Copy)]
enum OnRefusal {
    /// Install token `tok-<attempt>` and ask for a resend.
    NewToken,
    /// Ask for a resend without changing anything (a buggy hook).
    Loop,
    /// Give up.
    Fail,
}

struct FakeAuth {
    token: Mutex<Option<String>>,
    refusals: Mutex<Vec<Refusal>>,
    urls: Mutex<Vec<String>>,
    behaviour: OnRefusal,
}

impl FakeAuth {
    fn new(token: Option<&str>, behaviour: OnRefusal) -> Arc<Self> {
        Arc::new(Self {
            token: Mutex::new(token.map(str::to_string)),
            refusals: Mutex::new(Vec::new()),
            urls: Mutex::new(Vec::new()),
            behaviour,
        })
    }
    fn refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().unwrap().clone()
    }
}

impl RequestAuth for FakeAuth {
    fn authorization<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, crate::Result<Option<HeaderValue>>> {
        Box::pin(async move {
            self.urls.lock().unwrap().push(url.to_string());
            Ok(self
                .token
                .lock()
                .unwrap()
                .as_ref()
                .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).unwrap()))
        })
    }

    fn on_refusal<'a>(&'a self, refusal: &'a Refusal) -> BoxFuture<'a, crate::Result<()>> {
        Box::pin(async move {
            self.refusals.lock().unwrap().push(refusal.clone());
            match self.behaviour {
                OnRefusal::NewToken => {
                    *self.token.lock().unwrap() = Some(format!("tok-{}", refusal.attempt));
                    Ok(())
                }
                OnRefusal::Loop => Ok(()),
                OnRefusal::Fail => Err(Error::Action {
                    step: crate::Step::Authorization,
                    message: "the user declined".into(),
                }),
            }
        })
    }
}

// -------------------------------------------------------------------------------------
// Responses
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn json_response() {
    within(async {
        let server = serve(stateful_handler(None, "2025-11-25")).await;
        let c = client(&server, stateful(), None);
        let tools = c.list_tools().await.unwrap();
        assert_eq!(
            tools,
            vec![json!({"name": "test-tool", "inputSchema": {"type": "object"}})]
        );
        let result = c.call_tool("test-tool", json!({})).await.unwrap();
        assert_eq!(text_content(&result), "test");
        assert_eq!(c.protocol_version().as_deref(), Some("2025-11-25"));
        assert_eq!(c.server_info().unwrap()["name"], "test");

        let posts = server.posts();
        let methods: Vec<_> = posts.iter().map(|s| s.rpc_method().to_string()).collect();
        assert_eq!(
            methods,
            [
                "initialize",
                "notifications/initialized",
                "tools/list",
                "tools/call"
            ]
        );
        for s in &posts {
            assert_eq!(
                s.header("accept"),
                Some("application/json, text/event-stream")
            );
            assert_eq!(s.header("content-type"), Some("application/json"));
            assert!(s.header("authorization").is_none());
        }
        let init = &posts[0].body;
        assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
        assert_eq!(init["params"]["capabilities"], json!({}));
        assert_eq!(
            init["params"]["clientInfo"],
            json!({"name": "test-client", "version": "9.9"})
        );
        // Integer ids, incrementing; the notification has none.
        assert!(posts[1].body.get("id").is_none());
        let ids: Vec<u64> = [0, 2, 3]
            .iter()
            .map(|&i| posts[i].id().as_u64().unwrap())
            .collect();
        assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
        // No session: no session header; the version header after initialize only.
        assert!(posts.iter().all(|s| s.header("mcp-session-id").is_none()));
        assert!(posts[0].header("mcp-protocol-version").is_none());
        assert_eq!(posts[2].header("mcp-protocol-version"), Some("2025-11-25"));
    })
    .await
}

#[tokio::test]
async fn sse_response_with_notifications_and_server_requests() {
    within(async {
        let server = serve(|s, _| match s.rpc_method() {
            "tools/call" => {
                let id = s.id();
                let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}});
                let sampling = json!({"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{}});
                let other = json!({"jsonrpc":"2.0","id":9999,"result":{"wrong":true}});
                let response = json!({"jsonrpc":"2.0","id":id,"result":{"content":[
                    {"type":"text","text":"a"},{"type":"image","data":"x"},{"type":"text","text":"b"}]}});
                let stream = format!(
                    "id: p0\r\nretry: 100\r\ndata: \r\n\r\n: comment\r\n\
                     event: message\r\ndata: {progress}\r\n\r\n\
                     data: {sampling}\n\n\
                     event: other\ndata: {{\"x\":1}}\n\n\
                     data: not json\n\n\
                     data: {other}\n\n\
                     data: {response}\n\n"
                );
                // Deliver in awkward pieces.
                let bytes = stream.into_bytes();
                let pieces: Vec<String> = bytes
                    .chunks(7)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
                Answer::sse(&refs)
            }
            "" => Answer::status(202), // our answer to the server request
            _ => stateful_handler(None, "2025-11-25")(s, 0),
        })
        .await;
        let c = client(&server, stateful(), None);
        let result = c.call_tool("test-tool", json!({"x": 1})).await.unwrap();
        assert_eq!(text_content(&result), "a\nb");

        // The server-to-client request was refused with -32601 in a POST.
        let answers: Vec<Seen> = server
            .seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.body.get("error").is_some())
            .collect();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].body["id"], "srv-1");
        assert_eq!(answers[0].body["error"]["code"], -32601);
        assert_eq!(answers[0].header("mcp-protocol-version"), Some("2025-11-25"));
    })
    .await
}

#[tokio::test]
async fn sse_stream_without_response_is_an_error_when_stateless() {
    within(async {
        let server = serve(|_, _| {
            Answer::sse(&[
                "id: 1\ndata: \n\n",
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n",
            ])
        })
        .await;
        let c = client(&server, Protocol::Stateless, None);
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ended before the response"), "{msg}");
        assert!(msg.contains(&server.url), "{msg}");
        // 2026-07-28 streams are not resumable: no GET.
        assert!(server.seen().iter().all(|s| s.method == "POST"));
    })
    .await
}

#[tokio::test]
async fn sse_stream_resumes_with_last_event_id_on_stateful_servers() {
    within(async {
        let pending = Arc::new(Mutex::new(Value::Null));
        let server = serve(move |s, _| match (s.method.as_str(), s.rpc_method()) {
            ("POST", "tools/list") => {
                *pending.lock().unwrap() = s.id();
                Answer::sse(&["id: ev-1\nretry: 150\ndata: \n\n"])
            }
            ("GET", _) => {
                let id = pending.lock().unwrap().clone();
                let resp = json!({"jsonrpc":"2.0","id":id,"result":{"tools":[]}});
                Answer::sse(&[&format!("id: ev-2\ndata: {resp}\n\n")])
            }
            _ => stateful_handler(Some("s-1"), "2025-11-25")(s, 0),
        })
        .await;
        let c = client(&server, stateful(), None);
        let result = c.request("tools/list", json!({})).await.unwrap();
        assert_eq!(result, json!({"tools": []}));
        let seen = server.seen();
        let post = seen
            .iter()
            .find(|s| s.rpc_method() == "tools/list")
            .unwrap();
        let get = seen
            .iter()
            .find(|s| s.method == "GET")
            .expect("no GET to resume");
        assert_eq!(get.header("last-event-id"), Some("ev-1"));
        assert_eq!(get.header("mcp-session-id"), Some("s-1"));
        assert_eq!(get.header("mcp-protocol-version"), Some("2025-11-25"));
        assert_eq!(get.header("accept"), Some("text/event-stream"));
        assert!(get.at.duration_since(post.at) >= Duration::from_millis(150));
    })
    .await
}

#[tokio::test]
async fn response_size_is_capped() {
    within(async {
        let server = serve(|s, _| Answer::result(s, json!({"big": "x".repeat(5000)}))).await;
        let mut o = options(Protocol::Stateless);
        o.max_response_bytes = 1000;
        let c = McpClient::new(server.url.clone(), http(), o, None);
        let msg = c
            .request("tools/list", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("1000 byte limit"), "{msg}");

        let server = serve(|_, _| Answer::sse(&["data: ", &"x".repeat(3000)])).await;
        let mut o = options(Protocol::Stateless);
        o.max_response_bytes = 1000;
        let c = McpClient::new(server.url.clone(), http(), o, None);
        let msg = c
            .request("tools/list", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("1000 byte limit"), "{msg}");
    })
    .await
}

#[tokio::test]
async fn unexpected_content_type_and_bad_json_are_errors() {
    within(async {
        let server = serve(|_, _| Answer::with_body(200, "text/html", "<html>".into())).await;
        let c = client(&server, Protocol::Stateless, None);
        let msg = c
            .request("tools/list", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("text/html") && msg.contains(&server.url),
            "{msg}"
        );

        let server = serve(|_, _| Answer::with_body(200, "application/json", "{oops".into())).await;
        let c = client(&server, Protocol::Stateless, None);
        let msg = c
            .request("tools/list", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("not valid JSON") && msg.contains("{oops"),
            "{msg}"
        );

        let server = serve(|_, _| Answer::status(202)).await;
        let c = client(&server, Protocol::Stateless, None);
        let msg = c
            .request("tools/list", json!({}))
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("HTTP 202"), "{msg}");
    })
    .await
}

#[tokio::test]
async fn slow_response_times_out() {
    within(async {
        let server = serve(|_, _| {
            let mut a = Answer::sse(&["data: {}\n\n"]);
            a.delay = Duration::from_secs(5);
            a
        })
        .await;
        let mut o = options(Protocol::Stateless);
        o.request_timeout = Duration::from_millis(300);
        let c = McpClient::new(server.url.clone(), http(), o, None);
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    })
    .await
}

// -------------------------------------------------------------------------------------
// Lifecycles
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn stateful_handshake_carries_session_and_version() {
    within(async {
        let server = serve(|s, _| {
            if s.method == "DELETE" {
                return Answer::status(405);
            }
            stateful_handler(Some("sess-1"), "2025-06-18")(s, 0)
        })
        .await;
        let c = client(&server, stateful(), None);
        c.connect().await.unwrap();
        assert_eq!(c.protocol_version().as_deref(), Some("2025-06-18"));
        c.list_tools().await.unwrap();
        c.notify("notifications/roots/list_changed", Value::Null)
            .await
            .unwrap();
        c.close().await.unwrap();

        let seen = server.seen();
        assert_eq!(seen[0].rpc_method(), "initialize");
        assert!(seen[0].header("mcp-session-id").is_none());
        assert!(seen[0].header("mcp-protocol-version").is_none());
        for s in &seen[1..] {
            assert_eq!(s.header("mcp-session-id"), Some("sess-1"), "{s:?}");
            assert_eq!(
                s.header("mcp-protocol-version"),
                Some("2025-06-18"),
                "{s:?}"
            );
            // No stateless metadata on a stateful connection.
            assert!(s.header("mcp-method").is_none());
            assert!(s.body.pointer("/params/_meta").is_none());
        }
        let kinds: Vec<_> = seen
            .iter()
            .map(|s| format!("{} {}", s.method, s.rpc_method()))
            .collect();
        assert_eq!(
            kinds,
            [
                "POST initialize",
                "POST notifications/initialized",
                "POST tools/list",
                "POST notifications/roots/list_changed",
                "DELETE ",
            ]
        );
        assert_eq!(c.protocol_version(), None);
    })
    .await
}

#[tokio::test]
async fn stateful_rejects_unknown_negotiated_version() {
    within(async {
        let server = serve(stateful_handler(None, "1999-01-01")).await;
        let c = client(&server, stateful(), None);
        let msg = c.connect().await.unwrap_err().to_string();
        assert!(msg.contains("1999-01-01"), "{msg}");
    })
    .await
}

#[tokio::test]
async fn expired_session_is_renewed_once() {
    within(async {
        let inits = Arc::new(Mutex::new(0));
        let server = serve(move |s, _| match s.rpc_method() {
            "initialize" => {
                let mut n = inits.lock().unwrap();
                *n += 1;
                Answer::result(
                    s,
                    json!({"protocolVersion": "2025-11-25", "capabilities": {}}),
                )
                .header("mcp-session-id", &format!("s{n}"))
            }
            "tools/list" if s.header("mcp-session-id") == Some("s1") => {
                Answer::with_body(404, "text/plain", "session not found".into())
            }
            _ => stateful_handler(None, "2025-11-25")(s, 0),
        })
        .await;
        let c = client(&server, stateful(), None);
        let tools = c.list_tools().await.unwrap();
        assert_eq!(tools.len(), 1);
        let kinds: Vec<_> = server
            .posts()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.rpc_method(),
                    s.header("mcp-session-id").unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "initialize -",
                "notifications/initialized s1",
                "tools/list s1",
                "initialize -",
                "notifications/initialized s2",
                "tools/list s2",
            ]
        );
    })
    .await
}

#[tokio::test]
async fn session_404_twice_is_an_error() {
    within(async {
        let server = serve(|s, _| match s.rpc_method() {
            "tools/list" => Answer::with_body(404, "text/plain", "gone".into()),
            _ => stateful_handler(Some("s"), "2025-11-25")(s, 0),
        })
        .await;
        let c = client(&server, stateful(), None);
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
        assert_eq!(
            server
                .posts()
                .iter()
                .filter(|s| s.rpc_method() == "initialize")
                .count(),
            2
        );
    })
    .await
}

/// A 2026-07-28 server in the manner of the conformance mock: every POST must carry the
/// version header and `_meta`; `initialize` is refused.
fn stateless_handler(s: &Seen, _: usize) -> Answer {
    if s.header("mcp-protocol-version").is_none() {
        return Answer::error(400, s, -32020, "Missing MCP-Protocol-Version header");
    }
    if s.meta()
        .get("io.modelcontextprotocol/protocolVersion")
        .and_then(Value::as_str)
        != s.header("mcp-protocol-version")
    {
        return Answer::error(400, s, -32020, "header mismatch");
    }
    match s.rpc_method() {
        "server/discover" => Answer::result(
            s,
            json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
                   "capabilities": {"tools": {}},
                   "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern", "version": "2"}}}),
        ),
        "tools/list" => Answer::result(
            s,
            json!({"resultType": "complete", "tools": [
                {"name": "get_weather", "inputSchema": {"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "days": {"type": "integer", "x-mcp-header": "Days"},
                    "query": {"type": "string"}}}},
                {"name": "broken", "inputSchema": {"type": "object", "properties": {
                    "v": {"type": "object", "x-mcp-header": "V"}}}}
            ]}),
        ),
        "tools/call" | "resources/read" | "prompts/get" => {
            Answer::result(s, json!({"resultType": "complete", "content": []}))
        }
        _ => Answer::error(404, s, -32601, "Method not found"),
    }
}

#[tokio::test]
async fn stateless_headers_and_meta_on_every_post() {
    within(async {
        let server = serve(stateless_handler).await;
        let c = client(&server, Protocol::Stateless, None);
        let tools = c.list_tools().await.unwrap();
        let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["get_weather"],
            "the tool with an invalid x-mcp-header is left out"
        );
        c.call_tool(
            "get_weather",
            json!({"region": "Hello, 世界", "days": 3, "query": "q"}),
        )
        .await
        .unwrap();
        c.request("resources/read", json!({"uri": "file:///a b.txt"}))
            .await
            .unwrap();
        c.request(
            "prompts/get",
            json!({"name": "greet", "_meta": {"custom": 1}}),
        )
        .await
        .unwrap();
        assert_eq!(c.protocol_version().as_deref(), Some("2026-07-28"));

        let posts = server.posts();
        let methods: Vec<_> = posts.iter().map(|s| s.rpc_method().to_string()).collect();
        assert_eq!(
            methods,
            ["tools/list", "tools/call", "resources/read", "prompts/get"]
        );
        for s in &posts {
            assert_eq!(s.header("mcp-protocol-version"), Some("2026-07-28"));
            assert_eq!(s.header("mcp-method"), Some(s.rpc_method()));
            assert_eq!(
                s.meta()["io.modelcontextprotocol/protocolVersion"],
                "2026-07-28"
            );
            assert_eq!(
                s.meta()["io.modelcontextprotocol/clientCapabilities"],
                json!({})
            );
            assert_eq!(
                s.meta()["io.modelcontextprotocol/clientInfo"],
                json!({"name": "test-client", "version": "9.9"})
            );
            assert!(s.header("mcp-session-id").is_none());
        }
        assert!(posts[0].header("mcp-name").is_none());
        assert_eq!(posts[1].header("mcp-name"), Some("get_weather"));
        assert_eq!(
            posts[1].header("mcp-param-region"),
            Some("=?base64?SGVsbG8sIOS4lueVjA==?=")
        );
        assert_eq!(posts[1].header("mcp-param-days"), Some("3"));
        assert!(posts[1].header("mcp-param-query").is_none());
        assert_eq!(posts[2].header("mcp-name"), Some("file:///a b.txt"));
        assert_eq!(posts[3].header("mcp-name"), Some("greet"));
        assert_eq!(posts[3].meta()["custom"], 1, "the caller's _meta is kept");
    })
    .await
}

#[tokio::test]
async fn stateless_header_mismatch_refreshes_tools_and_retries_once() {
    within(async {
        let server = serve(|s, _| {
            if s.rpc_method() == "tools/call" && s.header("mcp-param-region").is_none() {
                return Answer::error(400, s, -32020, "Mcp-Param-Region missing");
            }
            stateless_handler(s, 0)
        })
        .await;
        let c = client(&server, Protocol::Stateless, None);
        c.call_tool("get_weather", json!({"region": "eu"}))
            .await
            .unwrap();
        let methods: Vec<_> = server
            .posts()
            .iter()
            .map(|s| s.rpc_method().to_string())
            .collect();
        assert_eq!(methods, ["tools/call", "tools/list", "tools/call"]);
    })
    .await
}

#[tokio::test]
async fn auto_stays_modern_when_discover_answers() {
    within(async {
        let server = serve(stateless_handler).await;
        let c = client(&server, Protocol::Auto, None);
        c.connect().await.unwrap();
        assert_eq!(c.protocol_version().as_deref(), Some("2026-07-28"));
        assert_eq!(c.server_info().unwrap()["name"], "modern");
        assert_eq!(c.server_capabilities().unwrap(), json!({"tools": {}}));
        c.list_tools().await.unwrap();
        let methods: Vec<_> = server
            .posts()
            .iter()
            .map(|s| s.rpc_method().to_string())
            .collect();
        assert_eq!(methods, ["server/discover", "tools/list"]);
    })
    .await
}

#[tokio::test]
async fn auto_falls_back_to_initialize_on_a_legacy_server() {
    within(async {
        // What an older SDK server answers to an unknown protocol version header.
        let server = serve(|s, _| {
            if s.rpc_method() == "server/discover" {
                return Answer::with_body(
                    400,
                    "application/json",
                    json!({"jsonrpc":"2.0","id":null,"error":{"code":-32000,
                        "message":"Bad Request: Unsupported protocol version"}})
                    .to_string(),
                );
            }
            stateful_handler(Some("legacy"), "2025-11-25")(s, 0)
        })
        .await;
        let c = client(&server, Protocol::Auto, None);
        c.list_tools().await.unwrap();
        assert_eq!(c.protocol_version().as_deref(), Some("2025-11-25"));
        let methods: Vec<_> = server
            .posts()
            .iter()
            .map(|s| s.rpc_method().to_string())
            .collect();
        assert_eq!(
            methods,
            [
                "server/discover",
                "initialize",
                "notifications/initialized",
                "tools/list"
            ]
        );

        // An empty 404 (no modern error body) is legacy too; so is a -32601 in a 200.
        for answer in [404u16, 200] {
            let server = serve(move |s, _| match (s.rpc_method(), answer) {
                ("server/discover", 404) => Answer::status(404),
                ("server/discover", _) => Answer::error(200, s, -32601, "Method not found"),
                _ => stateful_handler(None, "2025-11-25")(s, 0),
            })
            .await;
            let c = client(&server, Protocol::Auto, None);
            c.connect().await.unwrap();
            assert_eq!(
                c.protocol_version().as_deref(),
                Some("2025-11-25"),
                "{answer}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn auto_uses_a_supported_legacy_version_from_unsupported_version_error() {
    within(async {
        let server = serve(|s, _| {
            if s.rpc_method() == "server/discover" {
                return Answer::with_body(
                    400,
                    "application/json",
                    json!({"jsonrpc":"2.0","id":s.id(),"error":{"code":-32022,
                        "message":"Unsupported protocol version",
                        "data":{"supported":["2025-06-18"],"requested":"2026-07-28"}}})
                    .to_string(),
                );
            }
            stateful_handler(None, "2025-06-18")(s, 0)
        })
        .await;
        let c = client(&server, Protocol::Auto, None);
        c.connect().await.unwrap();
        let init = server
            .posts()
            .into_iter()
            .find(|s| s.rpc_method() == "initialize")
            .unwrap();
        assert_eq!(init.body["params"]["protocolVersion"], "2025-06-18");
        assert_eq!(c.protocol_version().as_deref(), Some("2025-06-18"));
    })
    .await
}

#[tokio::test]
async fn auto_surfaces_modern_errors_instead_of_falling_back() {
    within(async {
        let server = serve(|s, _| Answer::error(400, s, -32021, "needs capability x")).await;
        let c = client(&server, Protocol::Auto, None);
        let err = c.connect().await.unwrap_err();
        assert!(matches!(err, Error::JsonRpc { code: -32021, .. }), "{err}");
        assert_eq!(
            server.posts().len(),
            1,
            "no initialize after a modern error"
        );
    })
    .await
}

#[tokio::test]
async fn forced_version_selects_lifecycle() {
    assert_eq!(Protocol::for_version("2026-07-28"), Protocol::Stateless);
    assert_eq!(
        Protocol::for_version("2025-03-26"),
        Protocol::Stateful("2025-03-26".into())
    );
    within(async {
        let server = serve(stateful_handler(None, "2025-03-26")).await;
        let c = client(&server, Protocol::for_version("2025-03-26"), None);
        c.connect().await.unwrap();
        assert_eq!(
            server.posts()[0].body["params"]["protocolVersion"],
            "2025-03-26"
        );
    })
    .await
}

#[tokio::test]
async fn extra_headers_are_sent_but_protocol_headers_win() {
    within(async {
        let server = serve(stateless_handler).await;
        let mut o = options(Protocol::Stateless);
        o.headers.insert("x-tenant", HeaderValue::from_static("t1"));
        o.headers
            .insert("mcp-protocol-version", HeaderValue::from_static("bogus"));
        let c = McpClient::new(server.url.clone(), http(), o, None);
        c.list_tools().await.unwrap();
        let s = &server.posts()[0];
        assert_eq!(s.header("x-tenant"), Some("t1"));
        assert_eq!(s.header("mcp-protocol-version"), Some("2026-07-28"));
    })
    .await
}

// -------------------------------------------------------------------------------------
// Errors
// -------------------------------------------------------------------------------------

#[tokio::test]
async fn jsonrpc_errors_map_to_error_jsonrpc() {
    within(async {
        let server = serve(|s, _| match s.rpc_method() {
            "tools/call" => Answer::json(json!({"jsonrpc":"2.0","id":s.id(),"error":{
                "code":-32602,"message":"Unknown tool: nope","data":{"tool":"nope"}}})),
            _ => stateless_handler(s, 0),
        })
        .await;
        let c = client(&server, Protocol::Stateless, None);
        match c.call_tool("nope", json!({})).await.unwrap_err() {
            Error::JsonRpc {
                code,
                message,
                data,
            } => {
                assert_eq!(code, -32602);
                assert!(message.contains("Unknown tool: nope"), "{message}");
                assert!(message.contains(&server.url), "{message}");
                assert_eq!(data, Some(json!({"tool": "nope"})));
            }
            other => panic!("unexpected {other}"),
        }
        // A JSON-RPC error with an HTTP error status.
        match c.request("no/such", json!({})).await.unwrap_err() {
            Error::JsonRpc { code, message, .. } => {
                assert_eq!(code, -32601);
                assert!(message.contains("HTTP 404"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
        // A bare HTTP error.
        let server = serve(|_, _| Answer::with_body(500, "text/plain", "kaboom".into())).await;
        let c = client(&server, Protocol::Stateless, None);
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 500, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("kaboom") && msg.contains(&server.url), "{msg}");
    })
    .await
}

#[tokio::test]
async fn stateless_params_must_be_an_object() {
    within(async {
        let server = serve(stateless_handler).await;
        let c = client(&server, Protocol::Stateless, None);
        let err = c.request("tools/list", json!([1])).await.unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(server.posts().is_empty());
    })
    .await
}

// -------------------------------------------------------------------------------------
// Authorization
// -------------------------------------------------------------------------------------

/// Wants `Bearer tok-0`; says so with two challenges.
fn protected(s: &Seen, _: usize) -> Answer {
    if s.header("authorization") != Some("Bearer tok-0") {
        return Answer::with_body(
            401,
            "application/json",
            "{\"error\":\"invalid_token\"}".into(),
        )
        .header(
            "www-authenticate",
            "Bearer resource_metadata=\"http://x/prm\", scope=\"a b\"",
        )
        .header("www-authenticate", "DPoP algs=\"ES256\"");
    }
    stateless_handler(s, 0)
}

#[tokio::test]
async fn refusal_goes_to_the_hook_and_the_request_is_resent() {
    within(async {
        let server = serve(protected).await;
        let auth = FakeAuth::new(None, OnRefusal::NewToken);
        let c = client(&server, Protocol::Stateless, Some(auth.clone()));
        c.list_tools().await.unwrap();
        c.list_tools().await.unwrap();

        let refusals = auth.refusals();
        assert_eq!(refusals.len(), 1);
        let r = &refusals[0];
        assert_eq!(r.url, server.url);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.www_authenticate,
            [
                "Bearer resource_metadata=\"http://x/prm\", scope=\"a b\"",
                "DPoP algs=\"ES256\""
            ]
        );
        assert!(!r.sent_credentials);
        assert_eq!(r.attempt, 0);

        let posts = server.posts();
        assert_eq!(posts.len(), 3);
        assert!(posts[0].header("authorization").is_none());
        assert_eq!(posts[1].header("authorization"), Some("Bearer tok-0"));
        assert_eq!(posts[2].header("authorization"), Some("Bearer tok-0"));
        // The same message was resent.
        assert_eq!(posts[0].body, posts[1].body);
        // The hook is asked about the exact URL.
        assert!(auth.urls.lock().unwrap().iter().all(|u| u == &server.url));
    })
    .await
}

#[tokio::test]
async fn forbidden_with_challenge_goes_to_the_hook() {
    within(async {
        let server = serve(|s, _| {
            if s.header("authorization") == Some("Bearer old") {
                return Answer::status(403).header(
                    "www-authenticate",
                    "Bearer error=\"insufficient_scope\", scope=\"w\"",
                );
            }
            stateless_handler(s, 0)
        })
        .await;
        let auth = FakeAuth::new(Some("old"), OnRefusal::NewToken);
        let c = client(&server, Protocol::Stateless, Some(auth.clone()));
        c.call_tool("get_weather", json!({})).await.unwrap();
        let r = auth.refusals();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 403);
        assert!(r[0].sent_credentials);
        assert_eq!(
            r[0].www_authenticate,
            ["Bearer error=\"insufficient_scope\", scope=\"w\""]
        );
    })
    .await
}

#[tokio::test]
async fn bare_forbidden_is_an_error_not_a_prompt() {
    within(async {
        let server =
            serve(|_, _| Answer::with_body(403, "text/plain", "origin not allowed".into())).await;
        let auth = FakeAuth::new(Some("t"), OnRefusal::NewToken);
        let c = client(&server, Protocol::Stateless, Some(auth.clone()));
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 403, .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&server.url) && msg.contains("origin not allowed"),
            "{msg}"
        );
        assert!(auth.refusals().is_empty());
    })
    .await
}

#[tokio::test]
async fn unauthorized_without_a_hook_suggests_login() {
    within(async {
        let server = serve(protected).await;
        let c = client(&server, Protocol::Stateless, None);
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Action { .. }), "{msg}");
        assert!(msg.contains("requires authorization"), "{msg}");
        assert!(
            msg.contains(&format!("mcp-oauth login {}", server.url)),
            "{msg}"
        );
    })
    .await
}

#[tokio::test]
async fn hook_error_is_returned() {
    within(async {
        let server = serve(protected).await;
        let auth = FakeAuth::new(None, OnRefusal::Fail);
        let c = client(&server, Protocol::Stateless, Some(auth.clone()));
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(err.to_string().contains("the user declined"), "{err}");
        assert_eq!(server.posts().len(), 1);
    })
    .await
}

#[tokio::test]
async fn resends_are_capped_whatever_the_hook_says() {
    within(async {
        let server = serve(protected).await;
        let auth = FakeAuth::new(Some("never-good"), OnRefusal::Loop);
        let c = client(&server, Protocol::Stateless, Some(auth.clone()));
        let err = c.request("tools/list", json!({})).await.unwrap_err();
        assert!(err.to_string().contains("giving up"), "{err}");
        let attempts: Vec<u32> = auth.refusals().iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, (0..8).collect::<Vec<_>>());
        assert_eq!(server.posts().len(), 9, "the first send and 8 resends");
    })
    .await
}

#[tokio::test]
async fn handshake_requests_are_authorized_too() {
    within(async {
        let server = serve(|s, _| {
            if s.header("authorization") != Some("Bearer tok-0") {
                return Answer::status(401).header("www-authenticate", "Bearer");
            }
            if s.method == "DELETE" {
                return Answer::status(200);
            }
            stateful_handler(Some("s"), "2025-11-25")(s, 0)
        })
        .await;
        let auth = FakeAuth::new(None, OnRefusal::NewToken);
        let c = client(&server, stateful(), Some(auth.clone()));
        c.connect().await.unwrap();
        c.close().await.unwrap();
        let seen = server.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.method, "DELETE");
        assert_eq!(last.header("authorization"), Some("Bearer tok-0"));
        assert_eq!(auth.refusals().len(), 1);
    })
    .await
}

#[test]
fn text_content_joins_text_items() {
    let r = json!({"content": [
        {"type": "text", "text": "one"},
        {"type": "image", "data": "..."},
        {"type": "text", "text": "two"},
        {"type": "text"},
    ]});
    assert_eq!(text_content(&r), "one\ntwo");
    assert_eq!(text_content(&json!({})), "");
    assert_eq!(text_content(&json!("x")), "");
}
