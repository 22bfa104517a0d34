//! One mock HTTP/1.1 server for every test that needs a server on demand: an
//! authorization server with a quirk, an MCP endpoint, a revocation endpoint, an
//! internal service that must never be reached. Loopback only.
//!
//! - A [`Handler`] answers: a closure of the base URL and the request, or a [`Routes`]
//!   table.
//! - Every request is recorded before its handler runs ([`RequestLog`]); the test reads
//!   the log at any time, and it outlives a stop.
//! - [`stop`](MockServer::stop) closes the port and every open connection;
//!   [`restart`](MockServer::restart) serves again on the same port with the same
//!   handler and log: what a server restart looks like to a client.
//! - The server runs on a thread and runtime of its own, so it serves the same from a
//!   `#[tokio::test]` and from a plain `#[test]` that drives a child process.
//!
//! What a well-behaved HTTP library cannot do (a connection closed at once, a hang, a
//! body cut short) is [`crate::fault_server`]'s.

mod reply;
mod request;
mod routes;

pub use reply::{Reply, empty, json, not_found, redirect, text, with_header};
pub use request::{RecordedRequest, RequestLog, query_map, urlenc};
pub use routes::{Handler, ReplyFuture, Routes};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// A mock HTTP server on `127.0.0.1`. Stopped when dropped.
pub struct MockServer {
    addr: SocketAddr,
    base: String,
    handler: Arc<dyn Handler>,
    log: RequestLog,
    running: Option<Running>,
}

/// The thread that serves, and how to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl MockServer {
    /// Serves a closure of the base URL and the request on a free loopback port.
    pub fn start<F, Fut>(handler: F) -> MockServer
    where
        F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        MockServer::serve_handler(handler)
    }

    /// Serves a [`Routes`] table (or any [`Handler`]) on a free loopback port.
    pub fn serve_handler(handler: impl Handler) -> MockServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("mock server: no free loopback port: {e}"));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let mut server = MockServer {
            addr,
            base: format!("http://{addr}"),
            handler: Arc::new(handler),
            log: RequestLog::default(),
            running: None,
        };
        server.serve(listener);
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The base URL followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A handle on the request log (it stays valid after the server is dropped).
    pub fn log(&self) -> RequestLog {
        self.log.clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.all()
    }

    /// The path of every request so far.
    pub fn paths(&self) -> Vec<String> {
        self.log.paths()
    }

    /// The requests to `path` so far.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.log.to(path)
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the port and every open connection (a request in progress gets no
    /// answer). The log is kept. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            // The runtime is dropped on the server's thread: every connection task ends.
            if running.thread.join().is_err() {
                panic!("mock server on {}: the serving thread panicked", self.base);
            }
        }
    }

    /// Serves again on the same port, with the same handler and log (stopping first if
    /// it is running). Panics if something else took the port meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        let listener = std::net::TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("mock server: cannot listen on {} again: {e}", self.addr));
        self.serve(listener);
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("a listener can be made non-blocking");
        let (stop, stopped) = oneshot::channel();
        let (handler, log, base) = (self.handler.clone(), self.log.clone(), self.base.clone());
        let thread = std::thread::Builder::new()
            .name(format!("mock-server-{}", self.addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the mock server");
                runtime.block_on(accept_until_stopped(listener, stopped, handler, log, base));
            })
            .expect("a thread for the mock server");
        self.running = Some(Running { stop, thread });
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_until_stopped(
    listener: std::net::TcpListener,
    mut stopped: oneshot::Receiver<()>,
    handler: Arc<dyn Handler>,
    log: RequestLog,
    base: String,
) {
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("a listener the runtime can drive");
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                // A failed accept (the client gave up) concerns that client only.
                let Ok((stream, _)) = accepted else { continue };
                let (handler, log, base) = (handler.clone(), log.clone(), base.clone());
                tokio::spawn(serve_connection(stream, handler, log, base));
            }
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handler: Arc<dyn Handler>,
    log: RequestLog,
    base: String,
) {
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let (handler, log, base) = (handler.clone(), log.clone(), base.clone());
        async move {
            let recorded = record(request).await;
            log.push(recorded.clone());
            Ok::<_, Infallible>(handler.call(base, recorded).await)
        }
    });
    // A connection the client drops half way is the client's business.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Reads the whole body: handlers and the log see complete requests.
async fn record(request: hyper::Request<Incoming>) -> RecordedRequest {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    RecordedRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
