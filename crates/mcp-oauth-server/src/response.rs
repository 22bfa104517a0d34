//! [`AuthError`]: every refusal the layer can send, with its status, its
//! `WWW-Authenticate` challenge (formatted by the client crate's
//! [`mcp_oauth_types::challenge::format_challenge`], so both sides share one grammar) and body.

use crate::config::ProtectedResource;
use crate::validator::TokenError;
use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use mcp_oauth_types::challenge::{Challenge, format_challenge};

/// JSON-RPC error code of a header/body mismatch (MCP 2026-07-28 `HeaderMismatch`).
pub const HEADER_MISMATCH: i64 = -32020;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Bearer` credentials: `401` whose challenge has no `error` (RFC 6750 §3.1).
    #[error("authorization required")]
    MissingToken,
    /// Malformed authorization (two `Authorization` fields, an empty token, a token in
    /// the query string): `400` with `error="invalid_request"`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The token was refused: `401` with `error="invalid_token"`, or `503` when the
    /// validator could not decide.
    #[error(transparent)]
    InvalidToken(TokenError),
    /// The token lacks scopes: `403` with `error="insufficient_scope"` and
    /// `scope` = every scope the operation needs.
    #[error("insufficient scope: the operation needs {}", required.join(" "))]
    InsufficientScope { required: Vec<String> },
    /// The body exceeds the cap the layer reads for the scope policy: `413`.
    #[error("request body too large")]
    BodyTooLarge,
    /// The body could not be read: `400`.
    #[error("could not read the request body")]
    BodyUnreadable,
    /// `Mcp-Method`/`Mcp-Name` disagree with the JSON-RPC body: `400` with a JSON-RPC
    /// `HeaderMismatch` (-32020) error.
    #[error("header mismatch: {message}")]
    HeaderMismatch {
        id: serde_json::Value,
        message: String,
    },
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingToken => StatusCode::UNAUTHORIZED,
            AuthError::InvalidToken(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::InvalidRequest(_) | AuthError::BodyUnreadable => StatusCode::BAD_REQUEST,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AuthError::HeaderMismatch { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The `WWW-Authenticate` value, for the refusals that carry one.
    pub fn challenge(&self, resource: &ProtectedResource) -> Option<String> {
        let base_scope = || scope_param(resource.required_scopes());
        let (error, description, scope) = match self {
            AuthError::MissingToken => (None, None, base_scope()),
            AuthError::InvalidRequest(d) => (Some("invalid_request"), Some(*d), base_scope()),
            AuthError::InvalidToken(e) if e.is_unavailable() => return None,
            AuthError::InvalidToken(e) => {
                (Some("invalid_token"), Some(e.description()), base_scope())
            }
            AuthError::InsufficientScope { required } => (
                Some("insufficient_scope"),
                Some("The access token lacks scopes this operation needs"),
                scope_param(required),
            ),
            _ => return None,
        };
        let mut params = vec![(
            "resource_metadata".to_owned(),
            resource.resource_metadata_url().to_owned(),
        )];
        if let Some(scope) = scope {
            params.push(("scope".to_owned(), scope));
        }
        if let Some(error) = error {
            params.push(("error".to_owned(), error.to_owned()));
        }
        if let Some(d) = description {
            params.push(("error_description".to_owned(), d.to_owned()));
        }
        Some(format_challenge(&Challenge {
            scheme: "Bearer".to_owned(),
            token68: None,
            params,
        }))
    }

    /// The full response. `request_headers` decides the CORS headers: a request with an
    /// `Origin` gets `Access-Control-Allow-Origin: *` and `WWW-Authenticate` exposed
    /// (when the resource has CORS on), so browser clients can read the challenge.
    pub fn to_response(
        &self,
        resource: &ProtectedResource,
        request_headers: &HeaderMap,
    ) -> Response<Body> {
        let status = self.status();
        let body = match self {
            AuthError::HeaderMismatch { id, message } => serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": HEADER_MISMATCH, "message": format!("Header mismatch: {message}")},
            }),
            AuthError::InvalidToken(e) if e.is_unavailable() => serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": e.description(),
            }),
            AuthError::InvalidToken(e) => serde_json::json!({
                "error": "invalid_token",
                "error_description": e.description(),
            }),
            AuthError::MissingToken => serde_json::json!({
                "error": "unauthorized",
                "error_description": "This MCP server requires an OAuth access token",
            }),
            AuthError::InvalidRequest(d) => serde_json::json!({
                "error": "invalid_request",
                "error_description": d,
            }),
            AuthError::InsufficientScope { required } => serde_json::json!({
                "error": "insufficient_scope",
                "error_description": "The access token lacks scopes this operation needs",
                "scope": required.join(" "),
            }),
            AuthError::BodyTooLarge => serde_json::json!({"error": "request body too large"}),
            AuthError::BodyUnreadable => {
                serde_json::json!({"error": "could not read the request body"})
            }
        };
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge(resource) {
            match HeaderValue::from_str(&challenge) {
                Ok(v) => {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
                Err(_) => tracing::error!("challenge is not a valid header value"),
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if resource.cors() && request_headers.contains_key(header::ORIGIN) {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("WWW-Authenticate"),
            );
        }
        resp
    }
}

fn scope_param(scopes: &[String]) -> Option<String> {
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(scopes: &[&str]) -> ProtectedResource {
        ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://as.example")
            .required_scopes(scopes.iter().copied())
            .build()
            .unwrap()
    }

    const RM: &str =
        r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;

    #[test]
    fn challenge_shapes() {
        let r = resource(&[]);
        assert_eq!(
            AuthError::MissingToken.challenge(&r).unwrap(),
            format!("Bearer {RM}")
        );
        let r = resource(&["mcp:read", "mcp:write"]);
        assert_eq!(
            AuthError::MissingToken.challenge(&r).unwrap(),
            format!(r#"Bearer {RM}, scope="mcp:read mcp:write""#)
        );
        assert_eq!(
            AuthError::InvalidToken(TokenError::Expired)
                .challenge(&r)
                .unwrap(),
            format!(
                r#"Bearer {RM}, scope="mcp:read mcp:write", error="invalid_token", error_description="The access token expired""#
            )
        );
        assert_eq!(
            AuthError::InsufficientScope {
                required: vec!["mcp:read".into(), "files:write".into()]
            }
            .challenge(&r)
            .unwrap(),
            format!(
                r#"Bearer {RM}, scope="mcp:read files:write", error="insufficient_scope", error_description="The access token lacks scopes this operation needs""#
            )
        );
        assert!(
            AuthError::InvalidToken(TokenError::Unavailable("x".into()))
                .challenge(&r)
                .is_none()
        );
        assert!(AuthError::BodyTooLarge.challenge(&r).is_none());
    }

    #[test]
    fn statuses_and_cors() {
        let r = resource(&[]);
        let mut h = HeaderMap::new();
        let resp = AuthError::MissingToken.to_response(&r, &h);
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        let resp = AuthError::MissingToken.to_response(&r, &h);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            resp.headers()["access-control-expose-headers"],
            "WWW-Authenticate"
        );
        let resp =
            AuthError::InvalidToken(TokenError::Unavailable("down".into())).to_response(&r, &h);
        assert_eq!(resp.status(), 503);
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(AuthError::InvalidRequest("x").status(), 400);
        assert_eq!(
            AuthError::InsufficientScope { required: vec![] }.status(),
            403
        );
        assert_eq!(AuthError::BodyTooLarge.status(), 413);
    }
}
