//! Access-token validation: the [`TokenValidator`] trait, JWT access tokens checked
//! against the authorization server's JWKS ([`JwtValidator`]) and opaque tokens checked
//! by RFC 7662 introspection ([`IntrospectionValidator`]).

pub mod introspection;
pub mod jwt;

use crate::claims::Claims;
use crate::error::ConfigError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use introspection::{IntrospectionValidator, IntrospectionValidatorBuilder};
pub use jwt::{JwtValidator, JwtValidatorBuilder};

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Checks an access token presented to the MCP server and returns its claims.
///
/// Implementations MUST check that the token was issued for this resource (audience),
/// by the expected authorization server, and is currently valid (RFC 8707 §2, OAuth 2.1
/// §5.2). Scope checks are the layer's job. Implementations must never log the token.
pub trait TokenValidator: Send + Sync + 'static {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, TokenError>>;

    /// A verdict available without waiting (typically a cached one), or `None` to go
    /// through [`validate`](Self::validate). Must agree with what `validate` would
    /// return. The layer uses it to skip the asynchronous path for repeat tokens.
    fn validate_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        let _ = token;
        None
    }
}

impl<T: TokenValidator + ?Sized> TokenValidator for Arc<T> {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, TokenError>> {
        (**self).validate(token)
    }
    fn validate_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        (**self).validate_now(token)
    }
}

impl<T: TokenValidator + ?Sized> TokenValidator for Box<T> {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, TokenError>> {
        (**self).validate(token)
    }
    fn validate_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        (**self).validate_now(token)
    }
}

/// Why a token was refused. Every variant but [`TokenError::Unavailable`] is the
/// client's problem and becomes `401` with `error="invalid_token"`; `Unavailable` means
/// the server could not decide (JWKS or introspection endpoint down) and becomes `503`,
/// so that clients do not throw away a possibly good token.
///
/// The messages are fixed texts (they are sent as `error_description`), except the
/// detail of `Unavailable`, which is only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token signature is invalid")]
    BadSignature,
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    #[error("the access token uses a signing algorithm that is not accepted")]
    DisallowedAlgorithm,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token was not issued for this resource")]
    WrongAudience,
    #[error("the access token was not issued by the expected authorization server")]
    WrongIssuer,
    #[error("the access token lacks a required claim")]
    MissingClaim(&'static str),
    #[error("the token is not an access token of the accepted type")]
    WrongType,
    /// A JWT whose `typ` header does not mark it as an access token (RFC 9068 §4: an ID
    /// token, or a plain `JWT`); see [`JwtValidatorBuilder::allow_any_jwt_typ`].
    #[error("the JWT typ header is not at+jwt (RFC 9068), so it is not an access token")]
    WrongJwtType,
    #[error(
        "the access token is bound to a key (DPoP or mTLS) and cannot be used as a bearer token"
    )]
    BoundToken,
    #[error("the access token is not active")]
    Inactive,
    #[error("token validation is temporarily unavailable")]
    Unavailable(String),
}

impl TokenError {
    /// `true` for [`TokenError::Unavailable`]: the server, not the token, is at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_))
    }

    /// The `error_description` sent to the client (fixed text, no detail).
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::Malformed => "The access token is malformed",
            TokenError::BadSignature => "The access token signature is invalid",
            TokenError::UnknownKey => "The access token is signed with an unknown key",
            TokenError::DisallowedAlgorithm => {
                "The access token uses a signing algorithm that is not accepted"
            }
            TokenError::Expired => "The access token expired",
            TokenError::NotYetValid => "The access token is not valid yet",
            TokenError::WrongAudience => "The access token was not issued for this resource",
            TokenError::WrongIssuer => {
                "The access token was not issued by the expected authorization server"
            }
            TokenError::MissingClaim(_) => "The access token lacks a required claim",
            TokenError::WrongType => "The token is not an access token of the accepted type",
            TokenError::WrongJwtType => {
                "The access token's JWT typ header is not at+jwt (RFC 9068 section 4)"
            }
            TokenError::BoundToken => {
                "The access token is sender-constrained and cannot be used as a bearer token"
            }
            TokenError::Inactive => "The access token is not active",
            TokenError::Unavailable(_) => "Token validation is temporarily unavailable",
        }
    }
}

/// Settings shared by the validators' HTTP clients.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub allow_insecure_http: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
            allow_insecure_http: false,
        }
    }
}

impl HttpSettings {
    pub(crate) fn client(&self) -> Result<reqwest::Client, ConfigError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            // Keys and introspection answers come from where they were configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))
    }

    /// https, or http to a loopback host, or http anywhere when explicitly allowed.
    pub(crate) fn check_url(&self, what: &'static str, url: &str) -> Result<(), ConfigError> {
        let parsed = url::Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
            what,
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" if parsed.host().is_some() => Ok(()),
            "http" if loopback || (self.allow_insecure_http && parsed.host().is_some()) => Ok(()),
            "http" => Err(ConfigError::InvalidUrl {
                what,
                url: url.to_owned(),
                reason: "plain http is only accepted for loopback hosts (see allow_insecure_http)"
                    .into(),
            }),
            _ => Err(ConfigError::InvalidUrl {
                what,
                url: url.to_owned(),
                reason: "not an http(s) URL with a host".into(),
            }),
        }
    }
}

/// Reads a response body up to `max` bytes.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(format!("response larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("response larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        let s = HttpSettings::default();
        assert!(s.check_url("x", "https://as.example/jwks").is_ok());
        for ok in [
            "http://127.0.0.1:9/jwks",
            "http://localhost/jwks",
            "http://[::1]:8/j",
        ] {
            assert!(s.check_url("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://as.example/jwks",
            "ftp://as.example/x",
            "jwks",
            "http://10.0.0.1/",
        ] {
            assert!(s.check_url("x", bad).is_err(), "{bad}");
        }
        let lax = HttpSettings {
            allow_insecure_http: true,
            ..Default::default()
        };
        assert!(lax.check_url("x", "http://as.example/jwks").is_ok());
    }

    #[test]
    fn descriptions_are_header_safe() {
        let all = [
            TokenError::Malformed,
            TokenError::BadSignature,
            TokenError::UnknownKey,
            TokenError::DisallowedAlgorithm,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::WrongAudience,
            TokenError::WrongIssuer,
            TokenError::MissingClaim("exp"),
            TokenError::WrongType,
            TokenError::WrongJwtType,
            TokenError::BoundToken,
            TokenError::Inactive,
            TokenError::Unavailable("secret detail".into()),
        ];
        for e in all {
            // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                e.description()
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{e:?}"
            );
            assert!(!e.description().contains("secret"));
        }
    }
}
