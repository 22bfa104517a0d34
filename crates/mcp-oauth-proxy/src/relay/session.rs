//! The session-based (2025-era) wire: the client's `initialize` (which may also bridge
//! to a modern-only server or fall back to HTTP+SSE), requests on the session, a new
//! session when the server ends one (404), the GET stream for server-initiated
//! messages, and DELETE at the end.

use super::reply::{describe_reply, http_status};
use super::{Conn, MAX_BACKOFF, Mode, Relay, ReplyCtx, ReplyError, Snapshot, backoff};
use crate::TransportMode;
use crate::client::Response;
use crate::message::{Envelope, INTERNAL_ERROR, error_response};
use crate::upstream::{
    EventStream, SESSION_HEADER, SendError, StreamItem, VERSION_HEADER, media_type,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use mcp_oauth::wire::{resume_headers, stream_headers};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedRwLockWriteGuard;

/// Time allowed for the DELETE that ends a session at shutdown.
const DELETE_TIMEOUT: Duration = Duration::from_secs(3);

impl Relay {
    /// A request on the session (2025-era) wire.
    pub(super) async fn session_request(
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
                Err(e) => {
                    return ReplyError::from(e).to_response(id, self.url(), self.opts.error_words);
                }
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
                Err(e) => e.to_response(id, self.url(), self.opts.error_words),
            };
        }
    }

    /// The client's `initialize`: starts a session (or bridges, or falls back to the
    /// HTTP+SSE transport). Holds the connection lock until done.
    pub(super) async fn initialize(
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
            Err(e) => {
                return ReplyError::from(e).to_response(
                    Some(&id),
                    self.url(),
                    self.opts.error_words,
                );
            }
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
                Err(e) => e.to_response(Some(&id), self.url(), self.opts.error_words),
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
        err.to_response(Some(&id), self.url(), self.opts.error_words)
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

    pub(super) async fn delete_session(&self, session: HeaderValue, version: Option<HeaderValue>) {
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
    pub(super) fn start_get_stream(self: &Arc<Self>, conn: &mut Conn) {
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
