//! Server → client: the reply to a request read (a JSON body, or an SSE stream resumed
//! with `Last-Event-ID` when it breaks on a session), the response to the request
//! returned, every other message routed (relayed to the client, or to whoever waits for
//! it), and errors turned into the JSON-RPC error the client gets.

use super::{MAX_BACKOFF, Relay, Snapshot, lock};
use crate::client::Response;
use crate::message::{
    Envelope, HEADER_MISMATCH, INTERNAL_ERROR, Invalid, Kind, METHOD_NOT_FOUND, MISSING_CAPABILITY,
    UNSUPPORTED_VERSION, error_response, error_response_with, id_key, one_line,
};
use crate::upstream::{EventStream, MAX_ERROR_BODY, SendError, StreamItem, media_type, read_body};
use bytes::Bytes;
use http::Method;
use mcp_oauth::wire::{MAX_RESUMES, first_byte, resume_headers};
use serde_json::Value;
use std::sync::atomic::Ordering;

/// Why a request got no response from the server.
#[derive(Debug)]
pub(crate) enum ReplyError {
    Send(SendError),
    /// An HTTP error status; `error` is the JSON-RPC error object of the body, if any.
    Http {
        status: u16,
        error: Option<Value>,
        excerpt: String,
    },
    /// The server broke the transport's rules, or the stream ended early.
    Protocol(String),
}

impl ReplyError {
    /// The JSON-RPC error code of the body, when there is one.
    pub(crate) fn rpc_code(&self) -> Option<i64> {
        match self {
            ReplyError::Http { error: Some(e), .. } => e.get("code").and_then(Value::as_i64),
            _ => None,
        }
    }

    /// A recognized 2026-07-28 error (the server is modern): a modern error code, or
    /// `-32601` on a 404 (a modern server's "method not found"; a legacy HTTP+SSE
    /// server's 404 has no JSON-RPC body).
    pub(crate) fn is_modern(&self) -> bool {
        let code = self.rpc_code();
        let data_lists_modern = match self {
            ReplyError::Http { error: Some(e), .. } => e
                .pointer("/data/supported")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|v| v.as_str() == Some(mcp_oauth::wire::STATELESS_VERSION))
                }),
            _ => false,
        };
        matches!(
            code,
            Some(HEADER_MISMATCH | MISSING_CAPABILITY | UNSUPPORTED_VERSION)
        ) || data_lists_modern
            || matches!(self, ReplyError::Http { status: 404, .. } if code == Some(METHOD_NOT_FOUND))
    }

    /// The error response for the client's request `id`; `words` restates the library's
    /// errors for the host ([`crate::ProxyOptions::error_words`]).
    pub(crate) fn to_response(
        &self,
        id: Option<&Value>,
        url: &str,
        words: fn(&str) -> String,
    ) -> Bytes {
        match self {
            ReplyError::Http {
                error: Some(e),
                status,
                ..
            } if e.is_object() => {
                tracing::debug!(url, status, "relaying the server's JSON-RPC error");
                error_response_with(id, e.clone())
            }
            ReplyError::Http {
                status, excerpt, ..
            } => {
                let hint = match status {
                    401 | 403 => " (authorization was refused)",
                    404 => " (no MCP endpoint at this URL?)",
                    _ => "",
                };
                let body = if excerpt.is_empty() {
                    String::new()
                } else {
                    format!(": {excerpt}")
                };
                error_response(
                    id,
                    INTERNAL_ERROR,
                    &format!("mcp-oauth proxy: {url} answered HTTP {status}{hint}{body}"),
                    Some(serde_json::json!({"httpStatus": status})),
                )
            }
            ReplyError::Send(e) => error_response(
                id,
                INTERNAL_ERROR,
                &format!(
                    "mcp-oauth proxy: request to {url} failed: {}",
                    words(&e.to_string())
                ),
                None,
            ),
            ReplyError::Protocol(m) => error_response(
                id,
                INTERNAL_ERROR,
                &format!("mcp-oauth proxy: {url}: {m}"),
                None,
            ),
        }
    }
}

impl From<SendError> for ReplyError {
    fn from(e: SendError) -> Self {
        ReplyError::Send(e)
    }
}

/// How a reply is read.
#[derive(Clone, Default)]
pub(crate) struct ReplyCtx {
    /// Relay the other messages of the reply (notifications, server requests).
    pub relay_others: bool,
    /// Resume an interrupted stream with GET + `Last-Event-ID`, with this session's
    /// headers.
    pub resume: Option<Snapshot>,
}

impl Relay {
    /// Reads the reply to request `id`: the response is returned (one line), the other
    /// messages are relayed when `ctx.relay_others`.
    pub(crate) async fn read_reply(
        &self,
        mut resp: Response,
        id: &Value,
        ctx: &ReplyCtx,
    ) -> Result<Bytes, ReplyError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(self.http_error(resp).await);
        }
        let ct = media_type(resp.headers());
        match ct.as_str() {
            "application/json" => {
                let body = read_body(&mut resp, self.opts.max_message_bytes, true)
                    .await
                    .map_err(|e| {
                        ReplyError::Protocol(match e {
                            None => format!(
                                "the response is larger than the {} byte limit",
                                self.opts.max_message_bytes
                            ),
                            Some(m) => format!("reading the response failed: {m}"),
                        })
                    })?;
                self.route(body, Some(id), ctx.relay_others)
                    .await
                    .map_err(ReplyError::Protocol)?
                    .ok_or_else(|| {
                        ReplyError::Protocol(
                            "the JSON body holds no response to this request".into(),
                        )
                    })
            }
            "text/event-stream" => self.read_sse_reply(resp, id, ctx).await,
            _ if status == http::StatusCode::ACCEPTED || status == http::StatusCode::NO_CONTENT => {
                Err(ReplyError::Protocol(format!(
                    "the server answered HTTP {} to a request, without a response",
                    status.as_u16()
                )))
            }
            other => Err(ReplyError::Protocol(format!(
                "the response has Content-Type {:?}; expected application/json or text/event-stream",
                mcp_oauth::wire::excerpt(other, 80)
            ))),
        }
    }

    async fn read_sse_reply(
        &self,
        resp: Response,
        id: &Value,
        ctx: &ReplyCtx,
    ) -> Result<Bytes, ReplyError> {
        let mut stream = EventStream::new(resp, self.opts.max_message_bytes);
        let mut resumes = 0u32;
        loop {
            let ended = match stream.next().await {
                StreamItem::Event(ev) => {
                    // The server is alive and working on it (progress, logs): the
                    // request's clock starts again.
                    crate::deadline::touch();
                    if ev.event != "message" || ev.data.trim().is_empty() {
                        continue;
                    }
                    match self
                        .route(Bytes::from(ev.data), Some(id), ctx.relay_others)
                        .await
                    {
                        Ok(Some(found)) => return Ok(found),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(url = %self.url(), "dropping an event: {e}"),
                    }
                    continue;
                }
                StreamItem::TooLarge => {
                    return Err(ReplyError::Protocol(format!(
                        "an event of the response stream is larger than the {} byte limit",
                        self.opts.max_message_bytes
                    )));
                }
                StreamItem::End => "the server closed the response stream".to_string(),
                StreamItem::Broken(e) => format!("the response stream broke ({e})"),
            };
            if stream.received > 0 {
                resumes = 0;
            }
            let last = stream.last_event_id().map(str::to_string);
            let (Some(snap), Some(last)) = (&ctx.resume, last) else {
                return Err(ReplyError::Protocol(format!("{ended} before the response")));
            };
            if resumes >= MAX_RESUMES {
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, {MAX_RESUMES} times in a row"
                )));
            }
            resumes += 1;
            tokio::time::sleep(stream.reconnect_delay().min(MAX_BACKOFF)).await;
            let mut h = snap.session_headers();
            if resume_headers(&mut h, &last).is_err() {
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, and its event id cannot be sent back"
                )));
            }
            tracing::debug!(url = %self.url(), "{ended}; resuming it with Last-Event-ID");
            let resp = self.up.send(Method::GET, self.url(), h, None).await?;
            if !resp.status().is_success() || media_type(resp.headers()) != "text/event-stream" {
                let status = resp.status().as_u16();
                return Err(ReplyError::Protocol(format!(
                    "{ended} before the response, and resuming it failed (HTTP {status})"
                )));
            }
            stream.resume(resp);
        }
    }

    /// Routes a JSON body or SSE event data (one message or a batch): the response to
    /// `awaited` is returned, the rest relayed (when `relay`). Invalid JSON is an error.
    pub(crate) async fn route(
        &self,
        body: Bytes,
        awaited: Option<&Value>,
        relay: bool,
    ) -> Result<Option<Bytes>, String> {
        if first_byte(&body) == Some(b'[') {
            let items: Vec<Value> = serde_json::from_slice(&body)
                .map_err(|e| format!("the server sent invalid JSON: {e}"))?;
            let mut found = None;
            for item in items {
                if let Some(f) = self
                    .route_one(Bytes::from(item.to_string()), awaited, relay)
                    .await?
                {
                    found = Some(f);
                }
            }
            return Ok(found);
        }
        self.route_one(body, awaited, relay).await
    }

    async fn route_one(
        &self,
        msg: Bytes,
        awaited: Option<&Value>,
        relay: bool,
    ) -> Result<Option<Bytes>, String> {
        let env = Envelope::parse(&msg).map_err(|e| match e {
            Invalid::Parse(m) => format!("the server sent invalid JSON: {m}"),
            Invalid::Request(m, _) => {
                format!("the server sent something else than a JSON-RPC message: {m}")
            }
        })?;
        if let Some(id) = awaited
            && env.answers(id)
        {
            return Ok(Some(one_line(msg)));
        }
        // A response on the HTTP+SSE event stream that a request is waiting for.
        if env.kind() == Some(Kind::Response)
            && let Some(id) = &env.id
        {
            let waiter = lock(&self.sse_waiters).remove(&id_key(id));
            if let Some(w) = waiter {
                let _ = w.send(one_line(msg));
                return Ok(None);
            }
        }
        if self.hide_acknowledgements.load(Ordering::Relaxed)
            && env.method() == "notifications/subscriptions/acknowledged"
        {
            self.acknowledged.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if relay {
            if env.kind() == Some(Kind::Request)
                && let (Some(id), Some(stop)) = (&env.id, crate::deadline::stop_current())
            {
                lock(&self.server_asks).insert(id_key(id), stop);
            }
            self.send_out(one_line(msg)).await;
        }
        Ok(None)
    }

    /// Reads an HTTP error response (bounded) into a [`ReplyError::Http`].
    pub(crate) async fn http_error(&self, mut resp: Response) -> ReplyError {
        let status = resp.status().as_u16();
        let body = read_body(&mut resp, MAX_ERROR_BODY, false)
            .await
            .unwrap_or_default();
        let error = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").cloned())
            .filter(|e| e.get("code").and_then(Value::as_i64).is_some());
        ReplyError::Http {
            status,
            error,
            excerpt: mcp_oauth::wire::excerpt(&String::from_utf8_lossy(&body), 300),
        }
    }
}

pub(super) fn http_status(e: &ReplyError) -> String {
    match e {
        ReplyError::Http { status, .. } => format!("HTTP {status}"),
        other => describe_reply(other),
    }
}

pub(crate) fn describe_reply(e: &ReplyError) -> String {
    match e {
        ReplyError::Send(e) => e.to_string(),
        ReplyError::Http {
            status, excerpt, ..
        } => format!("HTTP {status}: {excerpt}"),
        ReplyError::Protocol(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host reads an authorization failure in the words the proxy's owner chose
    /// (`ProxyOptions::error_words`: the command line puts its flags back into the
    /// library's remedies), in the error response to the request it held.
    #[test]
    fn an_authorization_failure_reaches_the_host_in_the_owners_words() {
        fn flags(text: &str) -> String {
            text.replace("(client_id)", "(--client-id)")
        }
        let id = serde_json::json!(7);
        let auth = ReplyError::Send(SendError::Auth(mcp_oauth::Error::config(
            "check the client id (client_id)",
        )));
        let reply: Value =
            serde_json::from_slice(&auth.to_response(Some(&id), "http://h/mcp", flags)).unwrap();
        assert_eq!(reply["id"], 7);
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("(--client-id)"), "{message}");
        assert!(
            message.starts_with("mcp-oauth proxy: request to http://h/mcp failed"),
            "{message}"
        );
    }
}
