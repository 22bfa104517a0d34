//! # mcp-oauth-server
//!
//! The resource-server side of MCP authorization (spec revision 2026-07-28): a tower
//! layer that makes any Rust MCP server (plain axum, or rmcp's Streamable HTTP service)
//! discoverable by every client and safe by construction.
//!
//! - [`ProtectedResource`]: the canonical resource URI (kept verbatim), its
//!   authorization servers and scopes; the RFC 9728 metadata document, served at the
//!   path-inserted **and** the root well-known URI (configurable), with CORS.
//! - [`McpAuthLayer`]: `401` with `WWW-Authenticate: Bearer resource_metadata="…"`
//!   (`scope` when configured, `error="invalid_token"` only when a token was
//!   presented), `403 insufficient_scope` from a per-method/per-tool [`ScopePolicy`],
//!   verified [`Claims`] as a request extension, and the token stripped before the inner
//!   service runs.
//! - [`TokenValidator`]s: [`JwtValidator`] (JWKS cached, refetched on an unknown `kid`
//!   with a rate limit; `iss`, `aud`, `exp`/`nbf`, algorithm allow-list) and
//!   [`IntrospectionValidator`] (RFC 7662, cached).
//!
//! The challenge header is formatted with
//! [`mcp_oauth_types::challenge::format_challenge`] and the metadata document is
//! [`mcp_oauth_types::metadata::ProtectedResourceMetadata`]: the crate the `mcp-oauth`
//! client parses them with, so what this crate writes is exactly what the client reads.
//! This crate depends on that vocabulary only, not on the client.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use mcp_oauth_server::{Claims, JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["mcp:read", "mcp:write"])
//!     .required_scopes(["mcp:read"])
//!     .serve_root_metadata(true)
//!     .build()?;
//! let validator = JwtValidator::builder(&resource).build()?;
//! let auth = McpAuthLayer::new(resource, validator)
//!     .with_scope_policy(ScopePolicy::new().tool("write_file", ["mcp:write"]));
//!
//! async fn mcp(claims: Claims, body: String) -> String {
//!     format!("hello {:?}: {body}", claims.sub())
//! }
//! let app = Router::new().route("/mcp", post(mcp)).layer(auth);
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
//! # Ok(()) }
//! ```
//!
//! Where the metadata is served: the layer answers the well-known paths itself for every
//! request that reaches it (with `Router::layer` that includes unrouted paths, since
//! axum applies layers to the fallback too). When the layer wraps only part of an
//! application (a nested router, a single service), merge
//! [`McpAuthLayer::metadata_router`] next to it.

pub mod claims;
pub mod config;
pub mod error;
pub mod layer;
pub mod metadata;
pub mod policy;
pub mod response;
pub mod validator;

mod cache;

#[cfg(feature = "dev")]
pub mod dev;

pub use claims::{Claims, ClaimsSource};
pub use config::{ProtectedResource, ProtectedResourceBuilder, WELL_KNOWN_PRM};
pub use error::ConfigError;
pub use layer::{
    DEFAULT_MAX_BODY_BYTES, McpAuthLayer, McpAuthService, insufficient_scope_response,
};
pub use metadata::metadata_router;
pub use policy::ScopePolicy;
pub use response::AuthError;
pub use validator::{
    IntrospectionValidator, IntrospectionValidatorBuilder, JwtValidator, JwtValidatorBuilder,
    TokenError, TokenValidator,
};

/// The `jsonwebtoken` version this crate uses (for [`jsonwebtoken::Algorithm`] in
/// [`JwtValidatorBuilder::algorithms`]).
pub use jsonwebtoken;
