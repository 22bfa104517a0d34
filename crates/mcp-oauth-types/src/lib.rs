//! # mcp-oauth-types
//!
//! The vocabulary that the client side ([`mcp-oauth`]) and the resource-server side
//! ([`mcp-oauth-server`]) of MCP authorization share, with no HTTP stack behind it:
//!
//! - [`challenge`]: the `WWW-Authenticate` parser (RFC 9110 §11.6.1) and the typed
//!   `Bearer` view (RFC 6750 §3, RFC 9728 §5.1), and its formatter for servers;
//! - [`metadata`]: the Protected Resource Metadata (RFC 9728) and authorization server
//!   metadata (RFC 8414 / OIDC Discovery) documents;
//! - [`secret`]: newtypes for tokens, codes and keys whose `Debug` never shows them.
//!
//! [`mcp-oauth`]: https://docs.rs/mcp-oauth
//! [`mcp-oauth-server`]: https://docs.rs/mcp-oauth-server
#![warn(missing_docs)]

pub mod challenge;
pub mod metadata;
pub mod secret;
