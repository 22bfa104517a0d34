//! A small MCP client over Streamable HTTP: [`McpClient`].
//!
//! Authorization is pluggable through [`RequestAuth`]: the client asks it for an
//! `Authorization` header before every request and reports every 401/403 to it; when
//! the hook says so (by returning `Ok`), the request is sent again.
//!
//! - `client`: the client's API and its messages; `client/lifecycle.rs` the lifecycles
//!   (stateful 2025 sessions, stateless 2026-07-28, and the choice between them, see
//!   [`Protocol`]);
//! - `transport`: POSTs, JSON and SSE responses, on reqwest; authorization and refusals
//!   go through the loop the proxy shares ([`crate::wire::send_authorized`]);
//!
//! What the client shares with the proxy (protocol versions, header names, `_meta` keys,
//! error codes, the SSE parser, request metadata headers, the authorization hook) is in
//! [`crate::wire`].

mod client;
mod transport;

#[cfg(test)]
mod tests;

pub use client::{McpClient, McpClientOptions, Protocol, text_content};
// The wire vocabulary, where callers of the client have always found it.
pub use crate::wire::sse;
pub use crate::wire::{
    BoxFuture, LATEST_STATEFUL_VERSION, Refusal, RequestAuth, STATEFUL_VERSIONS, STATELESS_VERSION,
};
