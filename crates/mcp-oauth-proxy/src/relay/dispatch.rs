//! Client → server: every line from the client parsed and routed by kind and wire.
//! Requests run concurrently as tracked tasks (cancellable, waited for at shutdown, given
//! up after [`ProxyOptions::request_timeout`](crate::ProxyOptions::request_timeout));
//! notifications and responses go through one ordered lane.

use super::{Mode, Pending, Relay, lock};
use crate::client::Response;
use crate::message::{
    Envelope, INVALID_REQUEST, Invalid, Kind, PARSE_ERROR, REQUEST_TIMEOUT, error_response, id_key,
};
use crate::upstream::{MAX_ERROR_BODY, SendError, read_body};
use bytes::Bytes;
use http::HeaderMap;
use mcp_oauth::wire::first_byte;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How a request task is tracked.
struct Tracked {
    id: Value,
    /// On the stateless wire (or bridged): cancelled by closing its stream.
    stateless: bool,
    /// `subscriptions/listen`: open until cancelled, never given up on.
    long_lived: bool,
    /// Tell the server with `notifications/cancelled` when the request is given up.
    cancel_on_timeout: bool,
}

impl Relay {
    /// One line from the client.
    pub(crate) async fn dispatch(self: &Arc<Self>, line: Bytes) {
        match first_byte(&line) {
            None => {}
            Some(b'[') => self.dispatch_batch(&line).await,
            Some(_) => match Envelope::parse(&line) {
                Ok(env) => self.dispatch_message(line, env).await,
                Err(invalid) => self.reject(invalid).await,
            },
        }
    }

    async fn reject(&self, invalid: Invalid) {
        let msg = match invalid {
            Invalid::Parse(m) => {
                tracing::warn!("client sent a line that is not JSON: {m}");
                error_response(None, PARSE_ERROR, &format!("Parse error: {m}"), None)
            }
            Invalid::Request(m, id) => {
                tracing::warn!("client sent an invalid message: {m}");
                error_response(
                    id.as_ref(),
                    INVALID_REQUEST,
                    &format!("Invalid Request: {m}"),
                    None,
                )
            }
        };
        self.send_out(msg).await;
    }

    /// A JSON-RPC batch (2025-03-26): each member is handled as its own message.
    async fn dispatch_batch(self: &Arc<Self>, line: &[u8]) {
        let items: Vec<Value> = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                let invalid = if std::str::from_utf8(line).is_err() {
                    Invalid::Parse("the message is not valid UTF-8".into())
                } else if e.is_data() {
                    Invalid::Request(format!("not a JSON-RPC message: {e}"), None)
                } else {
                    Invalid::Parse(format!("invalid JSON: {e}"))
                };
                return self.reject(invalid).await;
            }
        };
        if items.is_empty() {
            return self
                .reject(Invalid::Request("an empty batch".into(), None))
                .await;
        }
        for item in items {
            let bytes = Bytes::from(item.to_string());
            match Envelope::parse(&bytes) {
                Ok(env) => self.dispatch_message(bytes, env).await,
                Err(invalid) => self.reject(invalid).await,
            }
        }
    }

    async fn dispatch_message(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        match env.kind() {
            Some(Kind::Request) if env.method() == "initialize" && env.version.is_none() => {
                // Later messages wait for the handshake: take the lock before reading on.
                let guard = self.conn.clone().write_owned().await;
                let me = self.clone();
                let tracked = Tracked {
                    id: env.id.clone().unwrap_or(Value::Null),
                    stateless: false,
                    long_lived: false,
                    // The spec: `initialize` is never cancelled.
                    cancel_on_timeout: false,
                };
                self.spawn_tracked(
                    tracked,
                    async move { me.initialize(guard, bytes, env).await },
                );
            }
            Some(Kind::Request) => {
                let stateless = env.version.is_some()
                    || matches!(self.conn.read().await.mode, Mode::Bridged(_));
                let tracked = Tracked {
                    id: env.id.clone().unwrap_or(Value::Null),
                    stateless,
                    long_lived: env.method() == "subscriptions/listen",
                    // A stateless request is cancelled by closing its stream, which
                    // giving it up does.
                    cancel_on_timeout: !stateless,
                };
                let lane_seq = self.lane_seq.load(Ordering::SeqCst);
                let me = self.clone();
                self.spawn_tracked(tracked, async move {
                    me.lane_wait(lane_seq).await;
                    me.request(bytes, &env).await
                });
            }
            Some(Kind::Notification) if env.method() == "notifications/cancelled" => {
                self.cancel(bytes, env).await;
            }
            Some(Kind::Response) => match self.client_waiter(&env) {
                Some(tx) => {
                    let _ = tx.send(bytes);
                }
                None => {
                    if let Some(id) = &env.id {
                        // The request that carried the server's question may wait again.
                        lock(&self.server_asks).remove(&id_key(id));
                    }
                    self.enqueue(bytes, env)
                }
            },
            Some(_) => self.enqueue(bytes, env),
            None => {}
        }
    }

    /// Runs a request task whose result (the response or an error response) goes to the
    /// client; registered so that it can be cancelled and waited for. A request that
    /// hears nothing from the server for [`ProxyOptions::request_timeout`] is given up
    /// and answered with an error ([`deadline`](super::deadline)).
    fn spawn_tracked<F>(self: &Arc<Self>, tracked: Tracked, fut: F)
    where
        F: Future<Output = Bytes> + Send + 'static,
    {
        let Tracked {
            id,
            stateless,
            long_lived,
            cancel_on_timeout,
        } = tracked;
        let key = id_key(&id);
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(
            key.clone(),
            Pending {
                token,
                id: id.clone(),
                abort: None,
                stateless,
                long_lived,
            },
        );
        let me = self.clone();
        let key2 = key.clone();
        let limit = self.opts.request_timeout.filter(|_| !long_lived);
        // A request's state machine is about 4.5 KB (every wire's path lives in it), and a
        // spawned future is moved several times on its way into the task: moved once,
        // into the heap, then only the pointer moves.
        let fut = Box::pin(fut);
        let handle = tokio::spawn(async move {
            let msg = match crate::deadline::bounded(limit, fut).await {
                Some(msg) => msg,
                None => me.timed_out(&id, limit.unwrap_or_default(), cancel_on_timeout),
            };
            let ours = {
                let mut p = lock(&me.pending);
                match p.get(&key2) {
                    Some(e) if e.token == token => {
                        p.remove(&key2);
                        true
                    }
                    _ => false,
                }
            };
            if !ours {
                if me.closing.load(Ordering::SeqCst) {
                    // Answered by `close`.
                    return;
                }
                tracing::debug!(id = %key2, "the client has another request with this id in flight");
            }
            me.send_out(msg).await;
            me.idle.notify_waiters();
        });
        if let Some(e) = lock(&self.pending).get_mut(&key)
            && e.token == token
        {
            e.abort = Some(handle.abort_handle());
        }
    }

    /// The error for a request given up after `limit` without a word from the server;
    /// the server is told with `notifications/cancelled` when `cancel` (the session
    /// wire: what the spec asks of a sender that stops waiting).
    fn timed_out(&self, id: &Value, limit: Duration, cancel: bool) -> Bytes {
        let secs = limit.as_secs();
        tracing::warn!(url = %self.url(), id = %id, secs, "no word from the server for the request; giving it up");
        if cancel {
            let note = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": format!("no response within {secs} s (mcp-oauth proxy)")},
            });
            let bytes = Bytes::from(note.to_string());
            if let Ok(env) = Envelope::parse(&bytes) {
                self.enqueue(bytes, env);
            }
        }
        error_response(
            Some(id),
            REQUEST_TIMEOUT,
            &format!(
                "mcp-oauth proxy: {} sent nothing for this request in {secs} s \
                 (--request-timeout), so it was given up",
                self.url()
            ),
            Some(serde_json::json!({"timeout": secs})),
        )
    }

    fn enqueue(&self, bytes: Bytes, env: Envelope) {
        self.lane_seq.fetch_add(1, Ordering::SeqCst);
        let _ = self.lane_tx.send((bytes, env));
    }

    /// Waits until the lane delivered the first `seq` notifications.
    async fn lane_wait(&self, seq: u64) {
        let mut rx = self.lane_done.clone();
        let _ = rx.wait_for(|done| *done >= seq).await;
    }

    /// `notifications/cancelled`: a request on the stateless wire is cancelled by
    /// closing its response stream (2026-07-28 has no client notifications over HTTP);
    /// on the session wire the notification is forwarded and the local wait dropped.
    async fn cancel(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        let target = env.request_id.as_ref().map(id_key);
        let entry = target.as_ref().and_then(|k| lock(&self.pending).remove(k));
        let stateless_target = entry.as_ref().is_some_and(|e| e.stateless);
        if let Some(e) = entry {
            tracing::debug!(id = ?target, "the client cancelled a request");
            if let Some(a) = e.abort {
                a.abort();
            }
            self.idle.notify_waiters();
        }
        let bridged = matches!(self.conn.read().await.mode, Mode::Bridged(_));
        if stateless_target || bridged || (env.version.is_some() && target.is_some()) {
            return;
        }
        self.enqueue(bytes, env);
    }

    /// One request: routed by wire, answered with the response or an error response.
    async fn request(self: &Arc<Self>, bytes: Bytes, env: &Envelope) -> Bytes {
        if let Some(version) = &env.version {
            *lock(&self.modern_version) = Some(version.clone());
            return self.stateless_request(bytes, env, version).await;
        }
        let snap = self.snapshot().await;
        match &snap.mode {
            Mode::Streamable => self.session_request(bytes, env, snap).await,
            Mode::Sse { .. } => self.sse_request(bytes, env, snap).await,
            Mode::Bridged(b) => {
                let b = b.clone();
                self.bridged_request(bytes, env, b).await
            }
        }
    }

    /// Notifications and responses from the client, in order.
    pub(super) async fn lane_message(self: &Arc<Self>, bytes: Bytes, env: Envelope) {
        let modern = env.version.clone().or_else(|| {
            // A modern client's notification usually has no _meta; it belongs to the
            // stateless wire when no session-era handshake happened.
            if self.conn.try_read().is_ok_and(|c| c.init.is_none()) {
                lock(&self.modern_version).clone()
            } else {
                None
            }
        });
        if let Some(version) = modern {
            let headers = match self.stateless_headers(&env, &version, &[]) {
                Ok(h) => h,
                Err(m) => {
                    tracing::warn!("not forwarding a notification: {m}");
                    return;
                }
            };
            let result = self.up.post(self.url(), headers, bytes).await;
            self.check_accepted(result, &env).await;
            return;
        }
        let mut snap = self.snapshot().await;
        match snap.mode.clone() {
            Mode::Bridged(b) => self.bridged_notification(&b, &env),
            Mode::Sse { endpoint } => {
                let result = self
                    .up
                    .post(&endpoint, HeaderMap::new(), bytes.clone())
                    .await;
                if self.check_accepted(result, &env).await
                    && env.method() == "notifications/initialized"
                {
                    let mut c = self.conn.write().await;
                    if c.generation == snap.generation {
                        c.initialized = Some(bytes);
                    }
                }
            }
            Mode::Streamable => {
                let mut renewed = false;
                loop {
                    let result = self
                        .up
                        .post(self.url(), snap.session_headers(), bytes.clone())
                        .await;
                    if let Ok(r) = &result
                        && r.status() == http::StatusCode::NOT_FOUND
                        && snap.session_id.is_some()
                        && !renewed
                        && env.method() != "notifications/initialized"
                    {
                        renewed = true;
                        if env.kind() == Some(Kind::Response) {
                            // An answer to a request of the expired session: nobody is
                            // waiting for it any more.
                            tracing::warn!(
                                "the session expired; dropping the client's response to a server request"
                            );
                            self.renew(snap.generation).await;
                            return;
                        }
                        if self.renew(snap.generation).await {
                            snap = self.snapshot().await;
                            continue;
                        }
                    }
                    if self.check_accepted(result, &env).await
                        && env.method() == "notifications/initialized"
                    {
                        let mut c = self.conn.write().await;
                        if c.generation == snap.generation {
                            c.initialized = Some(bytes);
                            self.start_get_stream(&mut c);
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Logs what the server said to a notification or response; `true` when accepted.
    pub(super) async fn check_accepted(
        &self,
        result: Result<Response, SendError>,
        env: &Envelope,
    ) -> bool {
        let what = match env.kind() {
            Some(Kind::Response) => "the client's response".to_string(),
            _ => format!("notification {}", env.method()),
        };
        match result {
            Ok(r) if r.status().is_success() => true,
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body = read_body(&mut r, MAX_ERROR_BODY, false)
                    .await
                    .unwrap_or_default();
                tracing::warn!(
                    url = %self.url(),
                    status,
                    body = %mcp_oauth::wire::excerpt(&String::from_utf8_lossy(&body), 200),
                    "the server did not accept {what}"
                );
                false
            }
            Err(e) => {
                tracing::warn!(url = %self.url(), error = %e, "could not deliver {what}");
                false
            }
        }
    }
}
