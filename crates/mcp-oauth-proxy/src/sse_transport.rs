//! The deprecated HTTP+SSE transport (protocol version 2024-11-05): a GET opens an event
//! stream whose first event, `endpoint`, names the URL to POST messages to; every
//! message from the server (responses included) arrives on that stream.
//!
//! Selected with `--transport sse`, or automatically when the server answers the
//! client's `initialize` POST with 400, 404 or 405 and no recognized 2026-07-28 error.
//! The endpoint must be on the MCP URL's origin: credentials are never sent elsewhere.
//! When the stream is lost, requests waiting for a response get an error, and the proxy
//! reconnects and replays the client's `initialize` and `notifications/initialized`.

use super::message::{INTERNAL_ERROR, error_response, id_key};
use super::relay::{Conn, Mode, Relay, ReplyError, Snapshot, backoff};
use super::upstream::{EventStream, SendError, StreamItem, media_type};
use bytes::Bytes;
use http::HeaderMap;
use http::Method;
use mcp_oauth::wire::sse::SseEvent;
use mcp_oauth::wire::stream_headers;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Time allowed for the `endpoint` event.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnection attempts after the event stream is lost.
const RECONNECTS: u32 = 6;

fn waiters(
    relay: &Relay,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, oneshot::Sender<Bytes>>> {
    relay.sse_waiters.lock().unwrap_or_else(|e| e.into_inner())
}

impl Relay {
    /// Opens the event stream and waits for the `endpoint` event.
    pub(crate) async fn sse_connect(self: &Arc<Self>, conn: &mut Conn) -> Result<(), String> {
        let mut h = HeaderMap::new();
        stream_headers(&mut h);
        let resp = self
            .up
            .send(Method::GET, self.url(), h, None)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let ct = media_type(resp.headers());
        if !status.is_success() || ct != "text/event-stream" {
            return Err(format!(
                "GET answered HTTP {} ({})",
                status.as_u16(),
                if ct.is_empty() {
                    "no Content-Type"
                } else {
                    &ct
                }
            ));
        }
        let mut stream = EventStream::new(resp, self.opts.max_message_bytes);
        let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
            loop {
                match stream.next().await {
                    StreamItem::Event(ev) if ev.event == "endpoint" => return Ok(ev.data),
                    StreamItem::Event(ev) => self.sse_event(ev).await,
                    _ => return Err("the event stream ended before the endpoint event".to_string()),
                }
            }
        })
        .await
        .map_err(|_| format!("no endpoint event within {} s", ENDPOINT_TIMEOUT.as_secs()))??;
        let base = url::Url::parse(self.url()).map_err(|e| format!("invalid URL: {e}"))?;
        let target = base
            .join(endpoint.trim())
            .map_err(|e| format!("the endpoint event is not a URL ({e})"))?;
        if !self.up.same_origin(&target) {
            return Err(format!(
                "the endpoint event names another origin ({}); refusing to send messages and \
                 credentials there",
                target.origin().ascii_serialization()
            ));
        }
        tracing::info!(url = %self.url(), endpoint = %target, "connected with the HTTP+SSE transport (2024-11-05)");
        conn.mode = Mode::Sse {
            endpoint: target.to_string(),
        };
        let generation = conn.generation;
        let me = self.clone();
        let task = tokio::spawn(async move { me.sse_reader(stream, generation).await });
        if let Some(old) = conn.stream_task.replace(task.abort_handle()) {
            old.abort();
        }
        Ok(())
    }

    async fn sse_event(&self, ev: SseEvent) {
        if !(ev.event == "message" || ev.event.is_empty()) || ev.data.trim().is_empty() {
            tracing::debug!(event = %ev.event, "ignoring an event of another type");
            return;
        }
        if let Err(e) = self.route(Bytes::from(ev.data), None, true).await {
            tracing::warn!(url = %self.url(), "dropping an event: {e}");
        }
    }

    /// Reads the event stream until it ends, then reconnects.
    async fn sse_reader(self: Arc<Self>, mut stream: EventStream, generation: u64) {
        loop {
            match stream.next().await {
                StreamItem::Event(ev) => self.sse_event(ev).await,
                StreamItem::End => break,
                StreamItem::Broken(e) => {
                    tracing::debug!(url = %self.url(), "the event stream broke: {e}");
                    break;
                }
                StreamItem::TooLarge => {
                    tracing::warn!(url = %self.url(), "an event is larger than the message size limit; reconnecting");
                    break;
                }
            }
        }
        {
            let mut c = self.conn.write().await;
            if c.generation != generation {
                return; // someone else reconnected
            }
            // This task is the stream task: renewing must not abort it.
            c.stream_task = None;
        }
        tracing::warn!(url = %self.url(), "the event stream closed; pending requests fail and the proxy reconnects");
        // Responses on the lost stream will never come.
        waiters(&self).clear();
        let mut current = generation;
        for attempt in 1..=RECONNECTS {
            if self.conn.read().await.generation != current {
                return; // someone else reconnected
            }
            if self.renew(current).await {
                return;
            }
            current = self.conn.read().await.generation;
            tokio::time::sleep(backoff(attempt)).await;
        }
        tracing::error!(url = %self.url(), "could not reconnect to the event stream; requests fail until the client initializes again");
    }

    /// The client's `initialize` on the HTTP+SSE transport.
    pub(crate) async fn sse_initialize(
        self: &Arc<Self>,
        conn: &mut Conn,
        bytes: Bytes,
        id: &Value,
    ) -> Bytes {
        if !matches!(conn.mode, Mode::Sse { .. })
            && let Err(e) = self.sse_connect(conn).await
        {
            return error_response(
                Some(id),
                INTERNAL_ERROR,
                &format!(
                    "mcp-oauth proxy: cannot open the HTTP+SSE event stream at {}: {e}",
                    self.url()
                ),
                None,
            );
        }
        match self.sse_exchange(conn, bytes, id).await {
            Ok(msg) => msg,
            Err(e) => e.to_response(Some(id), self.url(), self.opts.error_words),
        }
    }

    /// Replays the client's handshake on a new event stream; the answers are kept from
    /// the client.
    pub(crate) async fn sse_replay_init(
        self: &Arc<Self>,
        conn: &mut Conn,
        init: Bytes,
        id: &Value,
    ) -> bool {
        if let Err(e) = self.sse_exchange(conn, init, id).await {
            tracing::warn!(url = %self.url(), "replaying initialize failed: {}", super::relay::describe_reply(&e));
            return false;
        }
        if let (Some(n), Mode::Sse { endpoint }) = (conn.initialized.clone(), &conn.mode) {
            match self.up.post(endpoint, HeaderMap::new(), n).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    "notifications/initialized was not accepted"
                ),
                Err(e) => tracing::warn!(error = %e, "notifications/initialized could not be sent"),
            }
        }
        true
    }

    /// POSTs a request to the endpoint and waits for its response on the stream.
    async fn sse_exchange(
        &self,
        conn: &Conn,
        bytes: Bytes,
        id: &Value,
    ) -> Result<Bytes, ReplyError> {
        let Mode::Sse { endpoint } = &conn.mode else {
            return Err(ReplyError::Protocol("no event stream".into()));
        };
        self.sse_post_and_wait(endpoint, bytes, id).await
    }

    async fn sse_post_and_wait(
        &self,
        endpoint: &str,
        bytes: Bytes,
        id: &Value,
    ) -> Result<Bytes, ReplyError> {
        let key = id_key(id);
        let (tx, rx) = oneshot::channel();
        waiters(self).insert(key.clone(), tx);
        let resp = match self.up.post(endpoint, HeaderMap::new(), bytes).await {
            Ok(r) => r,
            Err(e) => {
                waiters(self).remove(&key);
                return Err(e.into());
            }
        };
        if !resp.status().is_success() {
            waiters(self).remove(&key);
            return Err(self.http_error(resp).await);
        }
        drop(resp);
        rx.await.map_err(|_| {
            ReplyError::Protocol("the event stream closed before the response arrived".into())
        })
    }

    /// A request on the HTTP+SSE transport. A lost connection (the endpoint refuses,
    /// 404s, or cannot be reached) is renewed once and the request sent again.
    pub(crate) async fn sse_request(
        self: &Arc<Self>,
        bytes: Bytes,
        env: &super::message::Envelope,
        mut snap: Snapshot,
    ) -> Bytes {
        let id = env.id.clone().unwrap_or(Value::Null);
        let mut renewed = false;
        loop {
            let Mode::Sse { endpoint } = &snap.mode else {
                return error_response(
                    Some(&id),
                    INTERNAL_ERROR,
                    "mcp-oauth proxy: the connection changed transport",
                    None,
                );
            };
            match self.sse_post_and_wait(endpoint, bytes.clone(), &id).await {
                Ok(msg) => return msg,
                Err(
                    ReplyError::Send(SendError::Network(_)) | ReplyError::Http { status: 404, .. },
                ) if !renewed => {
                    renewed = true;
                    if self.renew(snap.generation).await {
                        snap = self.snapshot().await;
                        continue;
                    }
                    return error_response(
                        Some(&id),
                        INTERNAL_ERROR,
                        "mcp-oauth proxy: the HTTP+SSE connection was lost and could not be renewed",
                        None,
                    );
                }
                Err(e) => return e.to_response(Some(&id), self.url(), self.opts.error_words),
            }
        }
    }
}
