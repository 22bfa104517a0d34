//! # mcp-oauth
//!
//! The client side of MCP authorization (spec revision 2026-07-28, with the 2025-03-26,
//! 2025-06-18 and 2025-11-25 behaviours it replaced), done by the book:
//!
//! - [`challenge`], [`secret`] and the metadata documents: the vocabulary shared with the
//!   server side, from the `mcp-oauth-types` crate (re-exported here);
//! - [`discovery`]: Protected Resource Metadata (RFC 9728) in spec order, then
//!   authorization server metadata (RFC 8414 / OIDC Discovery) with issuer validation,
//!   each attempt recorded in a [`discovery::trace::DiscoveryTrace`];
//! - [`registration`]: pre-registered clients, Client ID Metadata Documents, Dynamic
//!   Client Registration (RFC 7591);
//! - [`authorize`]: authorization code + PKCE S256, loopback redirect, RFC 9207 `iss`,
//!   RFC 8707 `resource`;
//! - [`token`]: the token endpoint (client authentication, exchange, refresh);
//! - [`credential`]: what a credential is made of (tokens, client, the grant);
//! - [`store`]: credentials at rest;
//! - [`error`]: errors typed by step and cause, with their sources; [`remedy`]: the
//!   settings a message tells the user to set, in this library's terms;
//! - [`client`]: [`client::OAuthClient`], which ties the above together for one MCP server
//!   and answers challenges (refresh, re-authorization, step-up);
//! - [`quirks`]: what is known about identity providers (Entra, Google, Cognito, …): the
//!   hints `doctor` gives and the settings that work with each;
//! - [`doctor`]: walks the whole chain for one server and explains every step;
//! - [`wire`]: what every MCP client or proxy shares on the wire (versions, headers, error
//!   codes, SSE, the [`wire::RequestAuth`] hook that [`OAuthClient`] implements); the
//!   stdio proxy (crate `mcp-oauth-proxy`) is built on it;
//! - `mcp` (feature `mcp-client`, on by default): a small Streamable HTTP MCP client that
//!   applies authorization to every request and speaks both the stateful (2025) and the
//!   stateless (2026-07-28) lifecycle;
//! - `rmcp_transport` (feature `rmcp`): the same authorization for an
//!   [rmcp](https://docs.rs/rmcp) client.

#![warn(missing_docs)]

pub mod assertion;
pub mod authorize;
pub use mcp_oauth_types::challenge;
pub mod client;
pub mod client_auth;
pub mod config;
pub mod credential;
pub mod discovery;
pub mod doctor;
pub mod dpop;
pub mod error;
pub mod http;
pub(crate) mod issuer_pin;
#[cfg(feature = "mcp-client")]
pub mod mcp;
pub mod netpolicy;
pub mod quirks;
pub(crate) mod redact;
pub mod registration;
pub mod remedy;
pub mod revocation;
#[cfg(feature = "rmcp")]
pub mod rmcp_transport;
pub use mcp_oauth_types::secret;
pub mod store;
pub mod token;
pub(crate) mod util;
pub mod wire;

pub use client::OAuthClient;
pub use config::OAuthConfig;
pub use error::{Error, Result, Step};

/// The README's Rust example, compiled by `cargo test --doc` so that it stays true to the
/// API (its `sh`, `console`, `json` and `toml` blocks are not Rust and are not compiled).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
