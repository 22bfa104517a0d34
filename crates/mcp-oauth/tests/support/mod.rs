//! A tiny in-process HTTP server for edge cases that no real server produces on demand
//! (HTML metadata, hanging endpoints, wrong issuers). Real-server tests live in the CLI
//! crate and in the conformance run.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the handler sees of a request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: String,
}

pub type Reply = Response<Full<Bytes>>;
type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

pub struct MockServer {
    pub base: String,
    pub log: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// Starts a server; `handler` gets the base URL (e.g. `http://127.0.0.1:1234`) and
    /// each request.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(String, Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let b2 = base.clone();
        let handler: Handler = Arc::new(move |s| Box::pin(handler(b2.clone(), s)));
        let log2 = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let log = log2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        let log = log.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let seen = Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or_default().to_string(),
                                headers: parts.headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            };
                            log.lock().unwrap().push(seen.clone());
                            Ok::<_, std::convert::Infallible>(handler(seen).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { base, log, task }
    }

    pub fn paths(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.path.clone())
            .collect()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

pub fn json(status: u16, v: serde_json::Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

pub fn text(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    r
}

pub fn redirect(location: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = http::StatusCode::FOUND;
    r.headers_mut()
        .insert("location", location.parse().unwrap());
    r
}

pub fn not_found() -> Reply {
    text(404, "text/plain", "not found")
}

/// Query string to map.
pub fn query_map(q: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// Form-encodes `s` for a query or a form body.
pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A browser whose user clicks "allow": it follows the authorization redirects (as far as
/// the client's redirect listener). Counts how often it was opened; `idle` is a user who
/// walked away (the URL is never visited).
#[derive(Default)]
pub struct FollowingBrowser {
    pub opened: std::sync::atomic::AtomicUsize,
    pub idle: bool,
}

impl FollowingBrowser {
    pub fn opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl mcp_oauth::authorize::browser::Browser for FollowingBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.idle {
            return Ok(());
        }
        let url = url.to_string();
        tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .unwrap();
            let _ = c.get(url).send().await;
        });
        Ok(())
    }
}
