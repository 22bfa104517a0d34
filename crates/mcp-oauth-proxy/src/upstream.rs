//! The HTTP side of the proxy: one [`Client`] (kept for the whole run, so connections
//! are reused), static headers, authorization on every request with the
//! hold-and-replay loop on refusals, and reading JSON bodies and SSE streams.

use super::client::{Client, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use mcp_oauth::wire::sse::{SseEvent, SseParser};
use mcp_oauth::wire::{Refusal, RequestAuth};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts to connect before a request is reported as failed (a restarting server).
const CONNECT_ATTEMPTS: u32 = 4;
use mcp_oauth::wire::MAX_AUTH_RESENDS;
pub(crate) use mcp_oauth::wire::{MAX_ERROR_BODY, SESSION_HEADER, VERSION_HEADER, media_type};

/// Why a request got no HTTP response the proxy can relay.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The server could not be reached or the exchange broke.
    Network(String),
    /// Authorization failed (the hook's error, e.g. the user did not complete the login).
    Auth(mcp_oauth::Error),
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
    /// authorizes (refresh, login, step-up) and the request is sent again. Connection
    /// failures (nothing was sent) are retried briefly, which rides over a restart.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, SendError> {
        let mut attempt: u32 = 0;
        let mut connects: u32 = 0;
        loop {
            let mut all = self.headers.clone();
            for (name, value) in &headers {
                all.insert(name.clone(), value.clone());
            }
            let mut sent_credentials = all.contains_key(header::AUTHORIZATION);
            if let Some(auth) = &self.auth {
                // Credentials are for the MCP endpoint; the HTTP+SSE transport's POST
                // endpoint (same origin, checked when it was adopted) gets them too.
                let for_url = if target == self.url {
                    target
                } else {
                    &self.url
                };
                // A refresh may happen here: it is not the server's time.
                let auth_headers =
                    super::deadline::stopped(auth.request_headers(method.as_str(), for_url))
                        .await
                        .map_err(SendError::Auth)?;
                if auth_headers.contains_key(header::AUTHORIZATION) {
                    sent_credentials = true;
                }
                for (name, mut value) in auth_headers {
                    if let Some(name) = name {
                        value.set_sensitive(true);
                        all.insert(name, value);
                    }
                }
            }
            let uri = self.uri.as_ref().filter(|_| target == self.url);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match self
                .http
                .send(method.clone(), target, uri, all, body.clone())
                .await
            {
                Ok(r) => r,
                Err(e) if e.connect && connects + 1 < CONNECT_ATTEMPTS => {
                    connects += 1;
                    let wait = Duration::from_millis(100 << connects);
                    tracing::debug!(url = %target, error = %e.message, ?wait, "cannot connect; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(SendError::Network(e.message)),
            };
            let status = resp.status();
            let refused = status == StatusCode::UNAUTHORIZED
                || (status == StatusCode::FORBIDDEN
                    && resp.headers().contains_key(header::WWW_AUTHENTICATE));
            let Some(auth) = self.auth.as_ref().filter(|_| refused) else {
                return Ok(resp);
            };
            if attempt >= MAX_AUTH_RESENDS {
                return Ok(resp);
            }
            let challenges: Vec<String> = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let dpop_nonce = resp
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            drop(resp);
            tracing::info!(url = %target, status = status.as_u16(), attempt, "the server refused the request; holding it for authorization");
            let refusal = Refusal {
                url: self.url.clone(),
                status: status.as_u16(),
                www_authenticate: challenges,
                sent_credentials,
                attempt,
                dpop_nonce,
            };
            // A login may take the user minutes: the request's clock stops meanwhile.
            super::deadline::stopped(auth.on_refusal(&refusal))
                .await
                .map_err(SendError::Auth)?;
            attempt += 1;
            tracing::debug!(url = %target, "authorization renewed; replaying the request");
        }
    }

    /// POSTs one JSON-RPC message to `target` with the protocol `headers`.
    pub(crate) async fn post(
        &self,
        target: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, SendError> {
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.send(Method::POST, target, headers, Some(body)).await
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

    pub(crate) fn retry(&self) -> Option<Duration> {
        self.parser.retry()
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
