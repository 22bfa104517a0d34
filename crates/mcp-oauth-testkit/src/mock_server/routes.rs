//! What answers a request: any closure of the base URL and the request, or a route table
//! of such closures.

use super::reply::{Reply, not_found};
use super::request::RecordedRequest;
use std::future::Future;
use std::pin::Pin;

/// A reply still being computed.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// Answers the server's requests. Implemented by every
/// `Fn(base_url, request) -> impl Future<Output = Reply>` closure and by [`Routes`].
/// `base_url` is the server's, e.g. `http://127.0.0.1:40123`, for the URLs that
/// metadata documents name.
///
/// Handlers run on the server's own single-threaded runtime: they must not block it (a
/// `tokio::time::sleep` is fine, a `std::thread::sleep` stalls every connection).
pub trait Handler: Send + Sync + 'static {
    fn call(&self, base_url: String, request: RecordedRequest) -> ReplyFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    fn call(&self, base_url: String, request: RecordedRequest) -> ReplyFuture {
        Box::pin(self(base_url, request))
    }
}

/// A route table: the handler of the first route whose method and path match the request
/// exactly (the query is not part of the path); otherwise the fallback, by default
/// `404 not found`.
#[derive(Default)]
pub struct Routes {
    routes: Vec<Route>,
    fallback: Option<Box<dyn Handler>>,
}

struct Route {
    method: http::Method,
    path: String,
    handler: Box<dyn Handler>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// `method path` goes to `handler`, a closure of the base URL and the request.
    pub fn route<F, Fut>(mut self, method: http::Method, path: &str, handler: F) -> Routes
    where
        F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.routes.push(Route {
            method,
            path: path.to_string(),
            handler: Box::new(handler),
        });
        self
    }

    /// `GET path` goes to `handler`.
    pub fn get<F, Fut>(self, path: &str, handler: F) -> Routes
    where
        F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.route(http::Method::GET, path, handler)
    }

    /// `POST path` goes to `handler`.
    pub fn post<F, Fut>(self, path: &str, handler: F) -> Routes
    where
        F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.route(http::Method::POST, path, handler)
    }

    /// What answers a request no route matches.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Routes
    where
        F: Fn(String, RecordedRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.fallback = Some(Box::new(handler));
        self
    }
}

impl Handler for Routes {
    fn call(&self, base_url: String, request: RecordedRequest) -> ReplyFuture {
        let route = self
            .routes
            .iter()
            .find(|r| r.method == request.method && r.path == request.path);
        match (route, &self.fallback) {
            (Some(route), _) => route.handler.call(base_url, request),
            (None, Some(fallback)) => fallback.call(base_url, request),
            (None, None) => Box::pin(async { not_found() }),
        }
    }
}
