//! The HTTP side of the Streamable HTTP transport: one POST per message, authorization
//! on every request (with the refusal/retry loop), JSON or SSE responses, size cap and
//! time-outs. Lifecycle decisions (which headers, sessions, re-initialization) belong to
//! the client; this module reports what the server said.

use super::RequestAuth;
use crate::error::{Error, Result, Step};
use crate::wire::sse::{SseEvent, SseParser};
use crate::wire::{AuthorizedRequest, HttpAttempt, Sent, send_authorized};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const STEP: Step = Step::McpRequest;

/// Characters of a body quoted in an error message.
const EXCERPT_CHARS: usize = 300;

use crate::wire::{
    MAX_AUTH_RESENDS, MAX_ERROR_BODY, MAX_RESUMES, excerpt, media_type, post_headers,
    resume_headers,
};
pub(crate) use crate::wire::{SESSION_HEADER, VERSION_HEADER};

/// What the server answered to a POST.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The JSON-RPC response to our request (a whole response object, result or error).
    Message(Value),
    /// A notification or response was accepted (202, or another 2xx).
    Accepted,
    /// An HTTP error status (other than the 401/403 handled by the auth loop).
    Http {
        status: u16,
        excerpt: String,
        /// The JSON-RPC error object, when the body was a JSON-RPC error response.
        rpc_error: Option<RpcError>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    /// Reads the `error` member of a JSON-RPC response, if it has a usable one.
    pub(crate) fn from_response(msg: &Value) -> Option<Self> {
        let e = msg.get("error")?;
        Some(RpcError {
            code: e.get("code").and_then(Value::as_i64)?,
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: e.get("data").cloned(),
        })
    }
}

#[derive(Debug)]
pub(crate) struct PostResult {
    pub reply: Reply,
    /// The `Mcp-Session-Id` response header, when present.
    pub session_id: Option<String>,
}

/// The protocol context of one POST.
pub(crate) struct PostCtx<'a> {
    /// Protocol headers (session, version, `Mcp-*`); Accept, Content-Type and
    /// Authorization are added here.
    pub headers: &'a HeaderMap,
    /// 2025-era stream semantics: answer server-to-client requests on the stream and
    /// resume an interrupted stream with GET + `Last-Event-ID`.
    pub legacy_streams: bool,
}

pub(crate) struct Transport {
    pub url: String,
    http: reqwest::Client,
    auth: Option<Arc<dyn RequestAuth>>,
    extra_headers: HeaderMap,
    timeout: Duration,
    max_body: usize,
}

impl Transport {
    pub(crate) fn new(
        url: String,
        http: reqwest::Client,
        auth: Option<Arc<dyn RequestAuth>>,
        extra_headers: HeaderMap,
        timeout: Duration,
        max_body: usize,
    ) -> Self {
        Self {
            url,
            http,
            auth,
            extra_headers,
            timeout,
            max_body,
        }
    }

    fn timeout_error(&self) -> Error {
        Error::Timeout {
            step: STEP,
            url: self.url.clone(),
            secs: self.timeout.as_millis().div_ceil(1000) as u64,
        }
    }

    fn transport_error(&self, message: impl Into<String>) -> Error {
        Error::Transport {
            step: STEP,
            url: self.url.clone(),
            message: message.into(),
            source: None,
        }
    }

    fn rule(&self, rule: impl Into<String>) -> Error {
        Error::rule(STEP, &self.url, rule)
    }

    /// Sends one HTTP request, applying authorization and handling refusals: a 401, or a
    /// 403 carrying `WWW-Authenticate`, goes to the hook, and the request is sent again
    /// when the hook says so (at most [`MAX_AUTH_RESENDS`] times; the loop is
    /// [`send_authorized`]). Returns the response and the deadline for reading its body.
    pub(crate) async fn send(
        &self,
        method: Method,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Result<(reqwest::Response, Instant)> {
        let mut attempt = Attempt {
            transport: self,
            method: &method,
            body,
            deadline: Instant::now(),
        };
        let request = AuthorizedRequest {
            method: &method,
            resource: &self.url,
            defaults: &self.extra_headers,
            headers,
        };
        match send_authorized(&mut attempt, self.auth.as_deref(), request).await? {
            Sent::Response(resp) => Ok((resp, attempt.deadline)),
            Sent::Unauthorized(_, refusal) => {
                Err(self.no_auth_error(refusal.status, &refusal.www_authenticate))
            }
            Sent::StillRefused(_, refusal) => Err(self.rule(format!(
                "the server still refuses the request (HTTP {}) after {MAX_AUTH_RESENDS} \
                 renewed credentials; giving up",
                refusal.status
            ))),
        }
    }

    fn no_auth_error(&self, status: u16, challenges: &[String]) -> Error {
        let challenge = challenges
            .first()
            .map(|c| format!(" (WWW-Authenticate: {})", excerpt(c, EXCERPT_CHARS)))
            .unwrap_or_default();
        let what = if status == 401 {
            "requires authorization"
        } else {
            "refused the request for lack of authorization"
        };
        Error::Action {
            step: STEP,
            message: format!(
                "{url} {what}: HTTP {status}{challenge}; run `mcp-oauth login {url}` first",
                url = self.url
            ),
        }
    }

    /// POSTs one JSON-RPC message. `id` is the request id, or `None` for a notification
    /// (or a response), which expects 202.
    pub(crate) async fn post(
        &self,
        ctx: &PostCtx<'_>,
        body: Bytes,
        id: Option<u64>,
    ) -> Result<PostResult> {
        let mut headers = ctx.headers.clone();
        post_headers(&mut headers);
        let (mut resp, deadline) = self.send(Method::POST, &headers, Some(&body)).await?;
        let status = resp.status();
        let session_id = resp
            .headers()
            .get(SESSION_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        tracing::debug!(url = %self.url, status = status.as_u16(), "MCP POST answered");

        if !status.is_success() {
            let reply = self.error_reply(&mut resp, deadline).await?;
            return Ok(PostResult { reply, session_id });
        }
        let Some(id) = id else {
            // Notifications and responses: 202 with no body; tolerate other 2xx.
            return Ok(PostResult {
                reply: Reply::Accepted,
                session_id,
            });
        };
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Err(self.rule(format!(
                "answered HTTP {} to a request; a request must be answered with \
                 application/json or text/event-stream",
                status.as_u16()
            )));
        }
        let content_type = media_type(resp.headers());
        let msg = match content_type.as_str() {
            "application/json" => {
                let bytes = self
                    .read_body(&mut resp, deadline, self.max_body, true)
                    .await?;
                let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    self.rule(format!(
                        "the response is not valid JSON ({e}): {}",
                        excerpt(&String::from_utf8_lossy(&bytes), EXCERPT_CHARS)
                    ))
                })?;
                self.find_response(value, id)?
            }
            "text/event-stream" => self.read_sse(ctx, resp, id, deadline).await?,
            "" => {
                return Err(self.rule(
                    "the response to a request has no Content-Type; expected \
                     application/json or text/event-stream",
                ));
            }
            other => {
                return Err(self.rule(format!(
                    "the response to a request has Content-Type {}; expected \
                     application/json or text/event-stream",
                    excerpt(other, 100)
                )));
            }
        };
        Ok(PostResult {
            reply: Reply::Message(msg),
            session_id,
        })
    }

    /// Sends DELETE (session termination). Returns the status.
    pub(crate) async fn delete(&self, headers: &HeaderMap) -> Result<(u16, String)> {
        let (mut resp, deadline) = self.send(Method::DELETE, headers, None).await?;
        let status = resp.status().as_u16();
        let body = self.error_excerpt(&mut resp, deadline).await;
        Ok((status, body))
    }

    /// The start of an error response's body, for a message ("" for a success).
    async fn error_excerpt(&self, resp: &mut reqwest::Response, deadline: Instant) -> String {
        if resp.status().is_success() {
            return String::new();
        }
        let bytes = self
            .read_body(resp, deadline, MAX_ERROR_BODY, false)
            .await
            .unwrap_or_default();
        excerpt(&String::from_utf8_lossy(&bytes), EXCERPT_CHARS)
    }

    async fn error_reply(&self, resp: &mut reqwest::Response, deadline: Instant) -> Result<Reply> {
        let status = resp.status().as_u16();
        let bytes = self
            .read_body(resp, deadline, MAX_ERROR_BODY, false)
            .await?;
        let rpc_error = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .as_ref()
            .and_then(RpcError::from_response);
        Ok(Reply::Http {
            status,
            excerpt: excerpt(&String::from_utf8_lossy(&bytes), EXCERPT_CHARS),
            rpc_error,
        })
    }

    /// Reads a body up to `cap` bytes. Over the cap: an error when `strict`, otherwise
    /// the first `cap` bytes.
    async fn read_body(
        &self,
        resp: &mut reqwest::Response,
        deadline: Instant,
        cap: usize,
        strict: bool,
    ) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Err(_) => return Err(self.timeout_error()),
                Ok(Err(e)) => {
                    return Err(crate::http::request_error(
                        STEP,
                        &self.url,
                        e,
                        self.timeout.as_secs(),
                    ));
                }
                Ok(Ok(None)) => return Ok(buf),
                Ok(Ok(Some(c))) => c,
            };
            if buf.len() + chunk.len() > cap {
                if strict {
                    return Err(self.too_large());
                }
                let room = cap - buf.len();
                buf.extend_from_slice(&chunk[..room]);
                return Ok(buf);
            }
            buf.extend_from_slice(&chunk);
        }
    }

    fn too_large(&self) -> Error {
        self.transport_error(format!(
            "the response is larger than the {} byte limit; not reading further",
            self.max_body
        ))
    }

    /// The JSON-RPC response to request `id` in an `application/json` body.
    fn find_response(&self, value: Value, id: u64) -> Result<Value> {
        let candidates = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut seen = Vec::new();
        for msg in candidates {
            if is_response_to(&msg, id) {
                return Ok(msg);
            }
            seen.push(describe(&msg));
        }
        Err(self.rule(format!(
            "expected the JSON-RPC response to request {id}, got {}",
            if seen.is_empty() {
                "an empty batch".to_string()
            } else {
                seen.join(", ")
            }
        )))
    }

    /// Reads an SSE response until the response to `id` arrives.
    async fn read_sse(
        &self,
        ctx: &PostCtx<'_>,
        mut resp: reqwest::Response,
        id: u64,
        mut deadline: Instant,
    ) -> Result<Value> {
        let mut parser = SseParser::new();
        let mut total = 0usize;
        let mut resumes = 0u32;
        let mut unparsable = 0usize;
        loop {
            let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Err(_) => return Err(self.timeout_error()),
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    // A broken stream: resumable on 2025 servers, like a closed one.
                    if ctx.legacy_streams && parser.last_event_id().is_some() {
                        tracing::debug!(url = %self.url, error = %e, "SSE stream broke");
                        None
                    } else {
                        return Err(crate::http::request_error(
                            STEP,
                            &self.url,
                            e,
                            self.timeout.as_secs(),
                        ));
                    }
                }
            };
            let events = match &chunk {
                Some(bytes) => {
                    total += bytes.len();
                    if total > self.max_body {
                        return Err(self.too_large());
                    }
                    parser.push(bytes)
                }
                None => parser.finish().into_iter().collect(),
            };
            for event in events {
                if let Some(msg) = self.handle_event(ctx, event, id, &mut unparsable).await {
                    return Ok(msg);
                }
            }
            if chunk.is_some() {
                continue;
            }
            // The stream ended without our response.
            let last_id = parser.last_event_id().map(str::to_string);
            let Some(last_id) = last_id.filter(|_| ctx.legacy_streams && resumes < MAX_RESUMES)
            else {
                let note = if unparsable > 0 {
                    format!(" ({unparsable} event(s) were not JSON-RPC messages)")
                } else {
                    String::new()
                };
                return Err(self.rule(format!(
                    "the SSE stream ended before the response to request {id}{note}"
                )));
            };
            resumes += 1;
            let wait = parser.reconnect_delay();
            if Instant::now() + wait > deadline {
                return Err(self.timeout_error());
            }
            tokio::time::sleep(wait).await;
            (resp, deadline) = self.resume(ctx, &last_id).await?;
        }
    }

    /// GET with `Last-Event-ID` to resume a 2025-era response stream.
    async fn resume(
        &self,
        ctx: &PostCtx<'_>,
        last_id: &str,
    ) -> Result<(reqwest::Response, Instant)> {
        let mut headers = session_headers(ctx.headers);
        resume_headers(&mut headers, last_id).map_err(|_| {
            self.rule("the SSE stream set an event id that is not a valid header value")
        })?;
        tracing::debug!(url = %self.url, "resuming the SSE stream");
        let (mut resp, deadline) = self.send(Method::GET, &headers, None).await?;
        let status = resp.status();
        if status.is_success() && media_type(resp.headers()) == "text/event-stream" {
            return Ok((resp, deadline));
        }
        let body = self.error_excerpt(&mut resp, deadline).await;
        Err(self.rule(format!(
            "the SSE stream ended before the response, and resuming it (GET with \
             Last-Event-ID) failed: HTTP {}{}",
            status.as_u16(),
            if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            }
        )))
    }

    /// Handles one SSE event; returns the message when it is the response to `id`.
    async fn handle_event(
        &self,
        ctx: &PostCtx<'_>,
        event: SseEvent,
        id: u64,
        unparsable: &mut usize,
    ) -> Option<Value> {
        if event.event != "message" {
            tracing::debug!(url = %self.url, event = %excerpt(&event.event, 50), "ignoring SSE event of another type");
            return None;
        }
        if event.data.trim().is_empty() {
            return None; // priming event
        }
        let value: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(_) => {
                *unparsable += 1;
                tracing::debug!(url = %self.url, "ignoring an SSE event that is not JSON");
                return None;
            }
        };
        let messages = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut found = None;
        for msg in messages {
            if found.is_none() && is_response_to(&msg, id) {
                found = Some(msg);
                continue;
            }
            let method = msg.get("method").and_then(Value::as_str);
            match (method, msg.get("id")) {
                (Some(m), Some(req_id)) => {
                    self.answer_server_request(ctx, m, req_id.clone()).await;
                }
                (Some(m), None) => {
                    tracing::debug!(url = %self.url, method = %excerpt(m, 100), "server notification");
                }
                _ => {
                    tracing::debug!(url = %self.url, "ignoring an SSE message that is not for this request");
                }
            }
        }
        found
    }

    /// Server-to-client requests are not supported yet: answer `ping`, refuse the rest
    /// with -32601. 2026-07-28 servers must not send any (MRTR replaces them), so on a
    /// stateless connection they are only logged: that revision forbids client responses.
    async fn answer_server_request(&self, ctx: &PostCtx<'_>, method: &str, req_id: Value) {
        tracing::debug!(url = %self.url, method = %excerpt(method, 100), "server-to-client request");
        if !ctx.legacy_streams {
            return;
        }
        let answer = if method == "ping" {
            json!({"jsonrpc": "2.0", "id": req_id, "result": {}})
        } else {
            json!({"jsonrpc": "2.0", "id": req_id, "error": {
                "code": -32601,
                "message": format!(
                    "Method not found: this client does not support {}",
                    excerpt(method, 100)
                ),
            }})
        };
        let mut headers = session_headers(ctx.headers);
        post_headers(&mut headers);
        let body = Bytes::from(answer.to_string());
        match self.send(Method::POST, &headers, Some(&body)).await {
            Ok((resp, _)) if resp.status().is_success() => {}
            Ok((resp, _)) => {
                tracing::debug!(url = %self.url, status = resp.status().as_u16(), "server did not accept our answer")
            }
            Err(e) => {
                tracing::debug!(url = %self.url, error = %e, "could not answer a server request")
            }
        }
    }
}

/// One attempt of [`Transport::send`] on reqwest. Each attempt has the whole time-out
/// (the hook's time is not counted): its deadline is also the one for reading the body.
struct Attempt<'a> {
    transport: &'a Transport,
    method: &'a Method,
    body: Option<&'a Bytes>,
    deadline: Instant,
}

impl HttpAttempt for Attempt<'_> {
    type Response = reqwest::Response;
    type Error = Error;

    async fn send(&mut self, headers: HeaderMap) -> Result<Option<reqwest::Response>> {
        let t = self.transport;
        let mut req = t.http.request(self.method.clone(), &t.url).headers(headers);
        if let Some(b) = self.body {
            req = req.body(b.clone());
        }
        self.deadline = Instant::now() + t.timeout;
        match tokio::time::timeout_at(self.deadline, req.send()).await {
            Err(_) => Err(t.timeout_error()),
            Ok(Err(e)) => Err(crate::http::request_error(
                STEP,
                &t.url,
                e,
                t.timeout.as_secs(),
            )),
            Ok(Ok(r)) => Ok(Some(r)),
        }
    }
}

/// Is `msg` the JSON-RPC response (result or error) to request `id`? An error response
/// with a null id counts: the server could not tell which request it was about, and on
/// a per-request stream it can only be ours.
pub(crate) fn is_response_to(msg: &Value, id: u64) -> bool {
    if msg.get("method").is_some() {
        return false;
    }
    let has_result = msg.get("result").is_some();
    let has_error = msg.get("error").is_some();
    match msg.get("id") {
        Some(v) if has_result || has_error => id_matches(v, id) || (has_error && v.is_null()),
        None if has_error => true,
        _ => false,
    }
}

/// The session's headers among a request's `headers` (what a GET on the session, or an
/// answer to the server, carries).
fn session_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [SESSION_HEADER, VERSION_HEADER] {
        if let Some(v) = headers.get(name) {
            out.insert(name, v.clone());
        }
    }
    out
}

fn id_matches(v: &Value, id: u64) -> bool {
    match v {
        Value::Number(n) => n.as_u64() == Some(id) || n.as_f64() == Some(id as f64),
        Value::String(s) => s == &id.to_string(),
        _ => false,
    }
}

fn describe(msg: &Value) -> String {
    if let Some(m) = msg.get("method").and_then(Value::as_str) {
        return format!("a message with method {:?}", excerpt(m, 60));
    }
    match msg.get("id") {
        Some(id) => format!("a response to id {}", excerpt(&id.to_string(), 60)),
        None => "a message that is not a JSON-RPC response".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, header};

    #[test]
    fn response_matching() {
        assert!(is_response_to(
            &json!({"jsonrpc":"2.0","id":3,"result":{}}),
            3
        ));
        assert!(is_response_to(
            &json!({"jsonrpc":"2.0","id":3.0,"result":{}}),
            3
        ));
        assert!(is_response_to(
            &json!({"jsonrpc":"2.0","id":"3","result":{}}),
            3
        ));
        assert!(!is_response_to(
            &json!({"jsonrpc":"2.0","id":4,"result":{}}),
            3
        ));
        assert!(is_response_to(
            &json!({"jsonrpc":"2.0","id":null,"error":{"code":1}}),
            3
        ));
        assert!(!is_response_to(
            &json!({"jsonrpc":"2.0","id":null,"result":{}}),
            3
        ));
        assert!(!is_response_to(
            &json!({"jsonrpc":"2.0","id":3,"method":"ping"}),
            3
        ));
        assert!(!is_response_to(&json!([1, 2]), 3));
        assert!(!is_response_to(&json!("x"), 3));
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert_eq!(media_type(&h), "");
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Text/Event-Stream; charset=utf-8"),
        );
        assert_eq!(media_type(&h), "text/event-stream");
    }
}
