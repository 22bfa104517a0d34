//! Configuration errors. Request-time failures are [`crate::AuthError`] (what the client
//! is told) and [`crate::TokenError`] (why a token was refused).

/// A configuration that cannot be used, reported by the `build()` methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("invalid resource URI {resource:?}: {reason}")]
    InvalidResource { resource: String, reason: String },
    #[error(
        "no authorization server configured: Protected Resource Metadata must list at least one"
    )]
    NoAuthorizationServer,
    #[error("invalid {what} {url:?}: {reason}")]
    InvalidUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("invalid scope {0:?}: a scope is 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3)")]
    InvalidScope(String),
    #[error("metadata field {0:?} is set by a typed builder method and cannot be overridden")]
    MetadataFieldConflict(String),
    #[error("{0}")]
    Validator(String),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}
