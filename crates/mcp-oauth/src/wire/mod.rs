//! The MCP Streamable HTTP wire, as the client ([`crate::mcp`]) and the stdio proxy
//! (crate `mcp-oauth-proxy`) both speak it: one place for what the two must agree on.
//!
//! - the protocol versions, header names, `_meta` keys and JSON-RPC error codes;
//! - [`sse`]: an incremental Server-Sent Events parser (with resumption ids);
//! - [`headers`]: the 2026-07-28 request metadata headers (`Mcp-Name`, `Mcp-Param-*`);
//! - [`auth`]: the authorization hook every request goes through ([`RequestAuth`]) and
//!   what a refusal looked like ([`Refusal`], [`is_refusal`]);
//! - [`send`]: the send-with-authorization loop ([`send_authorized`]) over a small HTTP
//!   trait, which the client implements on reqwest and the proxy on its hyper (or
//!   reqwest) client;
//! - the headers of a POSTed message and of a GET that opens or resumes an SSE stream
//!   ([`post_headers`], [`stream_headers`], [`resume_headers`]);
//! - small readers of responses: [`media_type`], [`first_byte`], [`excerpt`], and
//!   [`header_names`] for `Debug` output that must not show header values.
//!
//! What each side does with a response differs on purpose: the client holds typed
//! results on reqwest, the proxy relays raw bytes on hyper (rmcp's typed messages drop
//! unknown fields, so a proxy must never re-encode); both send through one loop and take
//! their limits and rules from here.

pub mod auth;
pub mod headers;
pub mod send;
pub mod sse;

pub use auth::{BoxFuture, Refusal, RequestAuth, is_refusal};
pub use send::{AuthorizedRequest, HttpAttempt, ResponseHead, Sent, send_authorized};

use http::{HeaderMap, HeaderValue, header};

/// The stateless (per-request metadata) protocol version (2026-07-28).
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The newest session-based protocol version, sent in `initialize`.
pub const LATEST_STATEFUL_VERSION: &str = "2025-11-25";
/// Session-based protocol versions accepted from a server, newest first.
pub const STATEFUL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The session id header of the 2025 session-based wire.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol version header sent with every request after `initialize`.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// `_meta` key of the protocol version (2026-07-28 request metadata).
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities (2026-07-28).
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the client's name and version (2026-07-28).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the server's name and version in a reply (2026-07-28).
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key of the requested log level (2026-07-28).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// JSON-RPC and MCP error codes.
pub mod error_code {
    /// JSON-RPC: the line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON-RPC: the message is not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// JSON-RPC: no such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// JSON-RPC: invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// JSON-RPC: internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A request that got no response in time: the code the MCP SDKs use (TypeScript
    /// `ErrorCode.RequestTimeout`), in the range JSON-RPC leaves to implementations.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// `HeaderMismatch` (2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// `MissingRequiredClientCapability` (2026-07-28).
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// `UnsupportedProtocolVersion` (2026-07-28).
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// Resends of one request after refusals (401/403), whatever the hook says.
pub const MAX_AUTH_RESENDS: u32 = 8;
/// Resumptions of one interrupted SSE response stream (2025-11-25 servers only).
pub const MAX_RESUMES: u32 = 5;
/// Reconnection delay of an SSE stream that set none (WHATWG leaves it to the client).
pub const DEFAULT_SSE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// How much of an error response is read (the rest is dropped).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sets the `Accept` and `Content-Type` of a POSTed JSON-RPC message: the server may
/// answer with a JSON body or an SSE stream.
pub fn post_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
}

/// Sets the `Accept` of a GET that opens an SSE stream.
pub fn stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
}

/// Sets the headers of a GET that resumes an SSE stream after the event
/// `last_event_id` (sent back as `Last-Event-ID`): [`stream_headers`] and that id. An id
/// that cannot be sent as a header value is an error.
pub fn resume_headers(
    headers: &mut HeaderMap,
    last_event_id: &str,
) -> Result<(), http::header::InvalidHeaderValue> {
    stream_headers(headers);
    headers.insert("last-event-id", HeaderValue::from_str(last_event_id)?);
    Ok(())
}

/// The names of `headers`, for `Debug` output: header values may carry credentials.
pub fn header_names(headers: &HeaderMap) -> Vec<&str> {
    headers.keys().map(|k| k.as_str()).collect()
}

/// The media type of `Content-Type`, lowercased, without parameters ("" when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The first byte that is not JSON whitespace: tells a JSON object from a batch (or from
/// anything else) without parsing the body.
pub fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// The first `max` characters of a body, on one line, for error messages and logs.
pub fn excerpt(body: &str, max: usize) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= max {
        trimmed.to_string()
    } else {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}…")
    }
}
