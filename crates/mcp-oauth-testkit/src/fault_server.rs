//! A raw TCP HTTP/1.1 server for faults that a well-behaved HTTP library cannot produce:
//! closing right after `accept`, hanging before or after reading the request, answering
//! one byte at a time, a body shorter than its `Content-Length`, endless bodies.
//!
//! Kept apart from [`crate::mock_server`] on purpose: hyper, under the mock server,
//! always writes whole, well-formed responses and reads the request before answering,
//! which is exactly what these faults must not do. For a server that behaves, use the
//! mock server.
//!
//! Loopback only. [`RawServer`] runs on the caller's tokio runtime; every connection
//! task belongs to the server and is aborted when the server is dropped, so a hanging
//! connection never outlives its test. [`SilentServer`] (a port that accepts and never
//! answers) needs no runtime, for plain `#[test]`s that drive a child process.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as read off the wire.
#[derive(Debug, Clone)]
pub struct RawReq {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReq {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn query_map(&self) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// What to do with a request once it has been read.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write these bytes (a whole response) and close.
    Respond(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Never answer (the connection stays open until the client gives up).
    Hang,
    /// Write the response one byte every `interval`.
    Slow(Vec<u8>, Duration),
    /// Write the response after a delay.
    After(Duration, Vec<u8>),
    /// A 200 response whose body never ends: announced with a (huge) `Content-Length`,
    /// or chunked.
    Endless { declared_length: bool },
}

/// What to do with a connection as soon as it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAccept {
    Serve,
    /// Close at once, before reading anything.
    Close,
    /// Read nothing, answer nothing.
    Hang,
}

type Handler = Arc<dyn Fn(&str, &RawReq) -> Action + Send + Sync>;

pub struct RawServer {
    pub base: String,
    pub log: Arc<Mutex<Vec<RawReq>>>,
    /// Connections accepted (whether or not a request was read).
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    pub async fn start<F>(on_accept: OnAccept, handler: F) -> RawServer
    where
        F: Fn(&str, &RawReq) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<RawReq>>> = Arc::default();
        let accepted: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let (b2, log2, acc2) = (base.clone(), log.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                acc2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match on_accept {
                    OnAccept::Close => drop(stream),
                    OnAccept::Hang => {
                        conns.spawn(async move {
                            let _keep = stream;
                            std::future::pending::<()>().await;
                        });
                    }
                    OnAccept::Serve => {
                        let (h, b, l) = (handler.clone(), b2.clone(), log2.clone());
                        conns.spawn(async move { serve(stream, &b, h, l).await });
                    }
                }
                // Reap finished connections.
                while conns.try_join_next().is_some() {}
            }
        });
        RawServer {
            base,
            log,
            accepted,
            task,
        }
    }

    pub fn requests(&self) -> Vec<RawReq> {
        self.log.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<RawReq> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn serve(mut stream: TcpStream, base: &str, handler: Handler, log: Arc<Mutex<Vec<RawReq>>>) {
    let Some(req) = read_request(&mut stream).await else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    match handler(base, &req) {
        Action::Respond(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Action::Close => {}
        Action::After(delay, bytes) => {
            tokio::time::sleep(delay).await;
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Action::Hang => std::future::pending::<()>().await,
        Action::Slow(bytes, interval) => {
            for b in bytes {
                if stream.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        }
        Action::Endless { declared_length } => {
            let head = if declared_length {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10737418240\r\n\r\n".to_string()
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
            };
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b' '; 64 * 1024];
            loop {
                let ok = if declared_length {
                    stream.write_all(&block).await
                } else {
                    let mut chunk = format!("{:x}\r\n", block.len()).into_bytes();
                    chunk.extend_from_slice(&block);
                    chunk.extend_from_slice(b"\r\n");
                    stream.write_all(&chunk).await
                };
                if ok.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one request (head and a `Content-Length` body). `None` on EOF or garbage.
async fn read_request(stream: &mut TcpStream) -> Option<RawReq> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    body.truncate(len);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(RawReq {
        method,
        path,
        query,
        headers,
        body,
    })
}

/// A complete response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    response_with(status, content_type, &[], body)
}

pub fn response_with(
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reason(status),
        body.len()
    );
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn json_response(status: u16, v: &serde_json::Value) -> Vec<u8> {
    response(status, "application/json", v.to_string().as_bytes())
}

pub fn redirect_response(location: &str) -> Vec<u8> {
    response_with(302, "text/plain", &[("location", location)], b"")
}

/// A response that announces `announced` body bytes and carries only `body`; the
/// connection is then closed.
pub fn short_body_response(announced: usize, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {announced}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A loopback port nothing listens on (bound, then released): a connection to it is
/// refused, until something else happens to take it.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The base URL of a loopback port nothing listens on ([`closed_port`]).
pub fn closed_port_base() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

/// A loopback port that accepts connections and never reads from or answers them: a
/// hung server. The connections are held until it is dropped.
pub struct SilentServer {
    base: String,
    /// Holds the connections; its runtime is its own, so no caller needs one.
    server: Option<RawServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the silent server");
        let server = runtime.block_on(RawServer::start(OnAccept::Hang, |_, _| Action::Hang));
        SilentServer {
            base: server.base.clone(),
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The base URL followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        drop(self.server.take());
        // Without waiting, and allowed inside another runtime too.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
