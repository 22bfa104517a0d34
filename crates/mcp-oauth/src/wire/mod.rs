//! The MCP Streamable HTTP wire, as the client ([`crate::mcp`]) and the stdio proxy
//! (crate `mcp-oauth-proxy`) both speak it: one place for what the two must agree on.
//!
//! - the protocol versions, header names, `_meta` keys and JSON-RPC error codes;
//! - [`sse`]: an incremental Server-Sent Events parser (with resumption ids);
//! - [`headers`]: the 2026-07-28 request metadata headers (`Mcp-Name`, `Mcp-Param-*`);
//! - [`auth`]: the authorization hook every request goes through ([`RequestAuth`]) and
//!   what a refusal looked like ([`Refusal`]);
//! - small readers of responses: [`media_type`], [`first_byte`], [`excerpt`].
//!
//! The two send loops differ on purpose: the client holds typed results on reqwest, the
//! proxy relays raw bytes on hyper (rmcp's typed messages drop unknown fields, so a proxy
//! must never re-encode); both take their limits and rules from here.

pub mod auth;
pub mod headers;
pub mod sse;

pub use auth::{BoxFuture, Refusal, RequestAuth};

use http::{HeaderMap, header};

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
