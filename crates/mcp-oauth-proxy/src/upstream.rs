//! The HTTP side of the proxy: one [`Client`] (kept for the whole run, so connections
//! are reused), static headers, authorization on every request with the
//! hold-and-replay loop on refusals, and reading JSON bodies and SSE streams.

use super::client::{Client, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use mcp_oauth::wire::sse::{SseEvent, SseParser};
use mcp_oauth::wire::{
    AuthorizedRequest, HttpAttempt, Refusal, RequestAuth, ResponseHead, post_headers,
    send_authorized,
};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts to connect before a request is reported as failed (a restarting server).
const CONNECT_ATTEMPTS: u32 = 4;
pub(crate) use mcp_oauth::wire::{MAX_ERROR_BODY, SESSION_HEADER, VERSION_HEADER, media_type};

/// Why a request got no HTTP response the proxy can relay.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The server could not be reached or the exchange broke.
    Network(String),
    /// Authorization failed (the hook's error, e.g. the user did not complete the login).
    Auth(mcp_oauth::Error),
}

impl From<mcp_oauth::Error> for SendError {
    fn from(e: mcp_oauth::Error) -> Self {
        SendError::Auth(e)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Network(m) => write!(f, "{m}"),
            SendError::Auth(e) => write!(f, "authorization failed: {e}"),
        }
    }
}

pub(crate) struct Upstream {
    /// The MCP endpoint (also the resource credentials are asked for).
    pub url: String,
    origin: Option<url::Origin>,
    /// `url` parsed once (not on every request).
    uri: Option<Uri>,
    http: Client,
    auth: Option<Arc<dyn RequestAuth>>,
    headers: HeaderMap,
    /// HTTP requests sent (every attempt counts).
    pub requests: AtomicU64,
}

impl Upstream {
    pub(crate) fn new(
        url: String,
        http: Client,
        auth: Option<Arc<dyn RequestAuth>>,
        mut headers: HeaderMap,
    ) -> Self {
        for (name, value) in headers.iter_mut() {
            if name == header::AUTHORIZATION
                || name == header::PROXY_AUTHORIZATION
                || name == header::COOKIE
            {
                value.set_sensitive(true);
            }
        }
        let origin = url::Url::parse(&url).ok().map(|u| u.origin());
        let uri = url.parse().ok();
        Self {
            url,
            origin,
            uri,
            http,
            auth,
            headers,
            requests: AtomicU64::new(0),
        }
    }

    /// The HTTP client requests go through.
    #[cfg(test)]
    pub(crate) fn client(&self) -> &Client {
        &self.http
    }

    pub(crate) fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// Is `target` on the MCP endpoint's origin (where credentials may be sent)?
    pub(crate) fn same_origin(&self, target: &url::Url) -> bool {
        self.origin.as_ref().is_some_and(|o| *o == target.origin())
    }

    /// Sends one request to `target` (the MCP endpoint, or the legacy transport's POST
    /// endpoint on the same origin). A 401, or a 403 with a challenge, is held: the hook
    /// authorizes (refresh, login, step-up) and the request is sent again
    /// ([`send_authorized`]); a refusal the hook cannot answer is relayed as the server
    /// sent it. Connection failures (nothing was sent) are retried briefly, which rides
    /// over a restart.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, SendError> {
        let mut attempt = Attempt {
            up: self,
            method: &method,
            target,
            body,
            connects: 0,
        };
        // Credentials are for the MCP endpoint; the HTTP+SSE transport's POST endpoint
        // (same origin, checked when it was adopted) gets them too.
        let request = AuthorizedRequest {
            method: &method,
            resource: &self.url,
            defaults: &self.headers,
            headers: &headers,
        };
        let sent = send_authorized(&mut attempt, self.auth.as_deref(), request).await?;
        Ok(sent.into_response())
    }

    /// POSTs one JSON-RPC message to `target` with the protocol `headers`.
    pub(crate) async fn post(
        &self,
        target: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, SendError> {
        post_headers(&mut headers);
        self.send(Method::POST, target, headers, Some(body)).await
    }
}

/// One attempt of [`Upstream::send`], on the proxy's HTTP client.
struct Attempt<'a> {
    up: &'a Upstream,
    method: &'a Method,
    target: &'a str,
    body: Option<Bytes>,
    /// Connection failures so far (across the attempts of the request).
    connects: u32,
}

impl HttpAttempt for Attempt<'_> {
    type Response = Response;
    type Error = SendError;

    async fn send(&mut self, headers: HeaderMap) -> Result<Option<Response>, SendError> {
        let up = self.up;
        let uri = up.uri.as_ref().filter(|_| self.target == up.url);
        up.requests.fetch_add(1, Ordering::Relaxed);
        match up
            .http
            .send(
                self.method.clone(),
                self.target,
                uri,
                headers,
                self.body.clone(),
            )
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.connect && self.connects + 1 < CONNECT_ATTEMPTS => {
                self.connects += 1;
                let wait = Duration::from_millis(100 << self.connects);
                tracing::debug!(url = %self.target, error = %e.message, ?wait, "cannot connect; retrying");
                tokio::time::sleep(wait).await;
                Ok(None)
            }
            Err(e) => Err(SendError::Network(e.message)),
        }
    }

    /// A refresh, or a login that may take the user minutes: not the server's time, so
    /// the request's clock stops meanwhile.
    fn authorizing<F>(&self, call: F) -> impl Future<Output = F::Output> + Send
    where
        F: Future + Send,
    {
        super::deadline::stopped(call)
    }

    fn holding(&self, refusal: &Refusal) {
        tracing::info!(url = %self.target, status = refusal.status, attempt = refusal.attempt, "the server refused the request; holding it for authorization");
    }
}

/// Reads a whole body up to `cap` bytes. Over the cap: `Err(None)` when `strict`,
/// otherwise the first `cap` bytes.
pub(crate) async fn read_body(
    resp: &mut Response,
    cap: usize,
    strict: bool,
) -> Result<Bytes, Option<String>> {
    if strict && resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(None);
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(Some(e)),
        };
        let len = first.as_ref().map_or(0, |f| f.len()) + buf.len();
        if len + chunk.len() > cap {
            if strict {
                return Err(None);
            }
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk[..cap - len]);
            break;
        }
        // The common case is a body in one chunk: keep it without copying.
        match (&first, buf.is_empty()) {
            (None, true) => first = Some(chunk),
            _ => {
                if let Some(f) = first.take() {
                    buf.extend_from_slice(&f);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match first {
        Some(f) if buf.is_empty() => f,
        _ => Bytes::from(buf),
    })
}

impl ResponseHead for Response {
    fn status(&self) -> StatusCode {
        Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        Response::headers(self)
    }
}

/// What an SSE response stream yields.
#[derive(Debug)]
pub(crate) enum StreamItem {
    Event(SseEvent),
    /// The server closed the stream.
    End,
    /// The connection broke.
    Broken(String),
    /// An event grew beyond the message size limit.
    TooLarge,
}

/// An SSE response stream, resumable with another response (the parser, and so the
/// last event id, carries over).
pub(crate) struct EventStream {
    resp: Option<Response>,
    parser: SseParser,
    queue: VecDeque<SseEvent>,
    /// Bytes received since the last complete event.
    partial: usize,
    max: usize,
    /// Events received on the current response.
    pub received: u64,
}

impl EventStream {
    pub(crate) fn new(resp: Response, max: usize) -> Self {
        Self {
            resp: Some(resp),
            parser: SseParser::new(),
            queue: VecDeque::new(),
            partial: 0,
            max,
            received: 0,
        }
    }

    /// Continues on a new response (a resumed stream).
    pub(crate) fn resume(&mut self, resp: Response) {
        self.resp = Some(resp);
        self.partial = 0;
        self.received = 0;
    }

    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.parser.last_event_id()
    }

    /// How long to wait before resuming the stream (its `retry`, or the default).
    pub(crate) fn reconnect_delay(&self) -> Duration {
        self.parser.reconnect_delay()
    }

    /// The next event, or how the stream ended.
    pub(crate) async fn next(&mut self) -> StreamItem {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                if ev.data.len() > self.max {
                    self.resp = None;
                    self.queue.clear();
                    return StreamItem::TooLarge;
                }
                self.received += 1;
                return StreamItem::Event(ev);
            }
            let Some(resp) = self.resp.as_mut() else {
                return StreamItem::End;
            };
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    self.partial += bytes.len();
                    let events = self.parser.push(&bytes);
                    if events.is_empty() {
                        if self.partial > self.max {
                            self.resp = None;
                            return StreamItem::TooLarge;
                        }
                    } else {
                        self.partial = 0;
                        self.queue.extend(events);
                    }
                }
                Ok(None) => {
                    self.resp = None;
                    self.queue.extend(self.parser.finish());
                    if self.queue.is_empty() {
                        return StreamItem::End;
                    }
                }
                Err(e) => {
                    self.resp = None;
                    // What was complete before the break is still delivered; an
                    // unterminated event is not (it may be truncated).
                    let _ = self.parser.finish();
                    if self.queue.is_empty() {
                        return StreamItem::Broken(e);
                    }
                }
            }
        }
    }
}
