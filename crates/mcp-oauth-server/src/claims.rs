//! [`Claims`]: what a validated access token says, handed to handlers as a request
//! extension.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::StatusCode;
use http::request::Parts;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

/// Where the claims came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsSource {
    /// A JWT access token, verified locally against the authorization server's JWKS.
    Jwt,
    /// An RFC 7662 token introspection response.
    Introspection,
}

/// The verified claims of the access token of the current request.
///
/// The layer inserts them as a request extension; read them with the axum extractor
/// (`claims: Claims`, or `Option<Claims>`), with `req.extensions().get::<Claims>()`,
/// or, in an rmcp handler, from the `http::request::Parts` that rmcp puts in the
/// request context's extensions. The token itself is never passed on.
///
/// Cloning is cheap (shared). `Debug` prints the standard fields and only the *names*
/// of the other claims.
#[derive(Clone, PartialEq)]
pub struct Claims {
    inner: Arc<Inner>,
}

#[derive(PartialEq)]
struct Inner {
    sub: Option<String>,
    client_id: Option<String>,
    scopes: Vec<String>,
    issuer: Option<String>,
    audience: Vec<String>,
    expires_at: Option<u64>,
    source: ClaimsSource,
    raw: Map<String, Value>,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        f.debug_struct("Claims")
            .field("sub", &i.sub)
            .field("client_id", &i.client_id)
            .field("scopes", &i.scopes)
            .field("issuer", &i.issuer)
            .field("audience", &i.audience)
            .field("expires_at", &i.expires_at)
            .field("source", &i.source)
            .field("raw_claim_names", &i.raw.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Claims {
    /// Builds the typed view from a claims object (JWT payload or introspection response).
    pub fn from_map(raw: Map<String, Value>, source: ClaimsSource) -> Self {
        let string = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let scopes = match (raw.get("scope"), raw.get("scp")) {
            (Some(Value::String(s)), _) => split_scopes(s),
            (_, Some(Value::String(s))) => split_scopes(s),
            (_, Some(Value::Array(a))) => {
                let mut out: Vec<String> = Vec::with_capacity(a.len());
                for s in a.iter().filter_map(Value::as_str) {
                    if !s.is_empty() && !out.iter().any(|o| o == s) {
                        out.push(s.to_owned());
                    }
                }
                out
            }
            _ => Vec::new(),
        };
        let audience = match raw.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Claims {
            inner: Arc::new(Inner {
                sub: string("sub"),
                client_id: string("client_id").or_else(|| string("azp")),
                scopes,
                issuer: string("iss"),
                audience,
                expires_at: raw.get("exp").and_then(numeric_date),
                source,
                raw,
            }),
        }
    }

    /// `sub`: the resource owner (or the client, for `client_credentials`).
    pub fn sub(&self) -> Option<&str> {
        self.inner.sub.as_deref()
    }

    /// `client_id` (RFC 9068 / RFC 7662), else `azp`.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// Granted scopes: `scope` (space-delimited, RFC 9068 / RFC 7662), else `scp`
    /// (array or string, as some providers send). Without duplicates, in token order.
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// `iss`.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// `aud`, as a list.
    pub fn audience(&self) -> &[String] {
        &self.inner.audience
    }

    /// `exp`, seconds since the epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.inner.expires_at
    }

    /// Where the claims came from.
    pub fn source(&self) -> ClaimsSource {
        self.inner.source
    }

    /// Every claim as received.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.inner.raw
    }

    /// A raw claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inner.raw.get(name)
    }

    /// Whether `scope` was granted (exactly; scope hierarchies are the
    /// [`crate::ScopePolicy`]'s business).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s == scope)
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split([' ', '\t']).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional.
pub(crate) fn numeric_date(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// Extractor: the claims of the current request. Fails with `500` when the
/// [`crate::McpAuthLayer`] does not wrap the route (a wiring bug, not a client error).
impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "no verified claims on this request: is the route wrapped in McpAuthLayer?",
        ))
    }
}

/// Extractor: `Option<Claims>`, `None` where the layer did not run.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        let Value::Object(m) = v else { panic!() };
        Claims::from_map(m, ClaimsSource::Jwt)
    }

    #[test]
    fn standard_fields() {
        let c = claims(json!({
            "sub": "alice", "client_id": "app", "azp": "other", "iss": "https://as",
            "aud": ["https://h/mcp", "x"], "exp": 1_900_000_000u64,
            "scope": "a  b a\tc", "scp": ["ignored"], "email": "alice@example.com"
        }));
        assert_eq!(c.sub(), Some("alice"));
        assert_eq!(c.client_id(), Some("app"));
        assert_eq!(c.scopes(), ["a", "b", "c"]);
        assert_eq!(c.audience(), ["https://h/mcp", "x"]);
        assert_eq!(c.expires_at(), Some(1_900_000_000));
        assert_eq!(c.issuer(), Some("https://as"));
        assert_eq!(c.source(), ClaimsSource::Jwt);
        assert_eq!(c.raw().len(), 9);
        assert!(c.has_scope("b") && !c.has_scope("ignored"));
        assert_eq!(c.get("email"), Some(&json!("alice@example.com")));
    }

    #[test]
    fn provider_variants() {
        let c = claims(json!({"azp": "app", "aud": "one", "scp": ["x", "y", "x"], "exp": 5.7}));
        assert_eq!(c.client_id(), Some("app"));
        assert_eq!(c.audience(), ["one"]);
        assert_eq!(c.scopes(), ["x", "y"]);
        assert_eq!(c.expires_at(), Some(5));
        let c = claims(json!({"scp": "x y", "exp": -1}));
        assert_eq!(c.scopes(), ["x", "y"]);
        assert_eq!(c.expires_at(), None);
        let c = claims(json!({}));
        assert!(c.scopes().is_empty() && c.audience().is_empty() && c.sub().is_none());
    }

    #[test]
    fn debug_shows_claim_names_not_values() {
        let c = claims(json!({"sub": "alice", "secret_thing": "hunter2"}));
        let s = format!("{c:?}");
        assert!(s.contains("secret_thing") && !s.contains("hunter2"), "{s}");
    }
}
