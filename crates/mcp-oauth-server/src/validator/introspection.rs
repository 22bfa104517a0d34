//! Opaque access tokens checked with OAuth 2.0 Token Introspection (RFC 7662).
//!
//! The resource server authenticates to the introspection endpoint with HTTP Basic
//! (`client_secret_basic`, RFC 6749 §2.3.1: id and secret form-urlencoded first). A
//! response is accepted when `active` is `true`, `exp`/`nbf` (when present) hold with the
//! leeway, `iss` (when present) is the configured issuer, `aud` contains the canonical
//! resource (MCP requires audience validation; a response without `aud` is refused
//! unless [`allow_missing_audience`](IntrospectionValidatorBuilder::allow_missing_audience)),
//! and the token is not key-bound (`cnf`).
//!
//! Answers are cached by SHA-256 of the token: active ones until `exp`, at most
//! `cache_ttl`; inactive ones for `negative_cache_ttl`. Endpoint failures are not
//! cached.

use super::{BoxFuture, HttpSettings, TokenError, TokenValidator, now_secs, read_capped};
use crate::cache::{TokenCache, token_key};
use crate::claims::{Claims, ClaimsSource, numeric_date};
use crate::config::ProtectedResource;
use crate::error::ConfigError;
use base64::Engine as _;
use mcp_oauth_types::secret::ClientSecret;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Validates tokens by asking the authorization server (RFC 7662). Cheap to clone.
///
/// ```no_run
/// # use mcp_oauth_server::{ProtectedResource, IntrospectionValidator};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .build()?;
/// let validator = IntrospectionValidator::builder(&resource, "https://auth.example.com/introspect")
///     .client_credentials("mcp-resource-server", std::env::var("INTROSPECTION_SECRET")?)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IntrospectionValidator {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    /// Precomputed `Basic ...` value.
    authorization: Option<String>,
    issuer: Option<String>,
    audiences: Vec<String>,
    allow_missing_audience: bool,
    leeway: u64,
    http: reqwest::Client,
    settings: HttpSettings,
    cache: TokenCache<Result<Claims, TokenError>>,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    requests: AtomicU64,
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &self.inner.endpoint)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &self.inner.client_secret)
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("cache_ttl", &self.inner.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// Builder for [`IntrospectionValidator`]; see [`IntrospectionValidator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct IntrospectionValidatorBuilder {
    endpoint: String,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    issuer: Option<String>,
    audiences: Vec<String>,
    allow_missing_audience: bool,
    leeway: Duration,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    cache_max_entries: usize,
    http: HttpSettings,
}

impl IntrospectionValidator {
    /// A validator for tokens meant for `resource`, asking `endpoint`. The expected
    /// issuer defaults to the resource's authorization server when it lists exactly one
    /// (checked only when the response carries `iss`).
    pub fn builder(
        resource: &ProtectedResource,
        endpoint: impl Into<String>,
    ) -> IntrospectionValidatorBuilder {
        let issuer = match resource.authorization_servers() {
            [only] => Some(only.clone()),
            _ => None,
        };
        IntrospectionValidatorBuilder {
            endpoint: endpoint.into(),
            client_id: None,
            client_secret: None,
            issuer,
            audiences: vec![resource.resource().to_owned()],
            allow_missing_audience: false,
            leeway: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(60),
            negative_cache_ttl: Duration::from_secs(30),
            cache_max_entries: 10_000,
            http: HttpSettings::default(),
        }
    }

    /// How many introspection requests were sent.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    async fn introspect(&self, token: &str) -> Result<Claims, TokenError> {
        let inner = &*self.inner;
        inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = inner
            .http
            .post(&inner.endpoint)
            .header(http::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        if let Some(auth) = &inner.authorization {
            req = req.header(http::header::AUTHORIZATION, auth);
        }
        let unavailable = |what: String| {
            tracing::warn!(endpoint = %inner.endpoint, "token introspection failed: {what}");
            TokenError::Unavailable(what)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let body = read_capped(resp, inner.settings.max_body_bytes)
            .await
            .map_err(unavailable)?;
        let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(&body) else {
            return Err(unavailable("the response is not a JSON object".into()));
        };
        self.check(raw)
    }

    fn check(&self, raw: Map<String, Value>) -> Result<Claims, TokenError> {
        let inner = &*self.inner;
        if raw.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenError::Inactive);
        }
        let now = now_secs();
        if let Some(exp) = raw.get("exp").and_then(numeric_date)
            && exp.saturating_add(inner.leeway) <= now
        {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = raw.get("nbf").and_then(numeric_date)
            && nbf > now.saturating_add(inner.leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        if let (Some(expected), Some(iss)) = (&inner.issuer, raw.get("iss"))
            && iss.as_str() != Some(expected.as_str())
        {
            return Err(TokenError::WrongIssuer);
        }
        if let Some(tt) = raw.get("token_type").and_then(Value::as_str)
            && !(tt.eq_ignore_ascii_case("bearer") || tt.eq_ignore_ascii_case("access_token"))
        {
            // e.g. "refresh_token", or "DPoP" for a sender-constrained token.
            return Err(TokenError::WrongType);
        }
        if let Some(cnf) = raw.get("cnf").and_then(Value::as_object)
            && (cnf.contains_key("jkt") || cnf.contains_key("x5t#S256"))
        {
            return Err(TokenError::BoundToken);
        }
        let claims = Claims::from_map(raw, ClaimsSource::Introspection);
        if claims.audience().is_empty() {
            if !inner.allow_missing_audience {
                return Err(TokenError::WrongAudience);
            }
        } else if !claims
            .audience()
            .iter()
            .any(|a| inner.audiences.iter().any(|x| x == a))
        {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

impl TokenValidator for IntrospectionValidator {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, TokenError>> {
        Box::pin(async move {
            if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                return Err(TokenError::Malformed);
            }
            let key = token_key(token);
            if let Some(cached) = self.inner.cache.get(&key) {
                return cached;
            }
            let result = self.introspect(token).await;
            match &result {
                Ok(claims) => {
                    let ttl = match claims.expires_at() {
                        Some(exp) => Duration::from_secs(exp.saturating_sub(now_secs()))
                            .min(self.inner.cache_ttl),
                        None => self.inner.cache_ttl,
                    };
                    self.inner.cache.insert(key, result.clone(), ttl);
                }
                Err(e) if !e.is_unavailable() => {
                    self.inner
                        .cache
                        .insert(key, result.clone(), self.inner.negative_cache_ttl);
                }
                Err(_) => {}
            }
            result
        })
    }

    fn validate_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Some(Err(TokenError::Malformed));
        }
        self.inner.cache.get(&token_key(token))
    }
}

impl IntrospectionValidatorBuilder {
    /// The resource server's credentials at the authorization server, sent with HTTP
    /// Basic. Without them the request is unauthenticated (few servers allow that).
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(ClientSecret::new(client_secret));
        self
    }

    /// The expected `iss` of responses that carry one.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Another accepted audience besides the canonical resource URI.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accept active responses without `aud`. Weakens audience binding: only for
    /// authorization servers that issue tokens for this resource alone.
    pub fn allow_missing_audience(mut self, on: bool) -> Self {
        self.allow_missing_audience = on;
        self
    }

    /// Clock-skew allowance for `exp`/`nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest time an active answer is reused (default 60 s; never past `exp`). This is
    /// also how long a revoked token can keep working.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an inactive answer is reused (default 30 s).
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// Bound on cached answers (default 10 000).
    pub fn cache_max_entries(mut self, n: usize) -> Self {
        self.cache_max_entries = n;
        self
    }

    /// TCP/TLS connect timeout (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.http.connect_timeout = t;
        self
    }

    /// Whole-request timeout (default 10 s).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.http.request_timeout = t;
        self
    }

    /// Accept a plain-http endpoint on a non-loopback host (the token and the client
    /// secret would cross the network in clear).
    pub fn allow_insecure_http(mut self, on: bool) -> Self {
        self.http.allow_insecure_http = on;
        self
    }

    pub fn build(self) -> Result<IntrospectionValidator, ConfigError> {
        self.http
            .check_url("introspection endpoint", &self.endpoint)?;
        if self.audiences.is_empty() && !self.allow_missing_audience {
            return Err(ConfigError::Validator(
                "IntrospectionValidator: no audience".into(),
            ));
        }
        let authorization = match (&self.client_id, &self.client_secret) {
            (Some(id), Some(secret)) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(id), enc(secret.expose()));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            _ => None,
        };
        let http = self.http.client()?;
        Ok(IntrospectionValidator {
            inner: Arc::new(Inner {
                endpoint: self.endpoint,
                client_id: self.client_id,
                client_secret: self.client_secret,
                authorization,
                issuer: self.issuer,
                audiences: self.audiences,
                allow_missing_audience: self.allow_missing_audience,
                leeway: self.leeway.as_secs(),
                http,
                settings: self.http,
                cache: TokenCache::new(self.cache_max_entries),
                cache_ttl: self.cache_ttl,
                negative_cache_ttl: self.negative_cache_ttl,
                requests: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> IntrospectionValidator {
        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .build()
            .unwrap();
        IntrospectionValidator::builder(&r, "https://as/introspect")
            .client_credentials("rs", "s3cr3t:with&chars")
            .build()
            .unwrap()
    }

    fn check(v: &IntrospectionValidator, j: Value) -> Result<Claims, TokenError> {
        let Value::Object(m) = j else { panic!() };
        v.check(m)
    }

    #[test]
    fn response_rules() {
        let v = validator();
        let now = now_secs();
        let ok = json!({"active": true, "aud": "https://h/mcp", "iss": "https://as",
                        "scope": "a b", "client_id": "c", "sub": "u", "exp": now + 60});
        let c = check(&v, ok.clone()).unwrap();
        assert_eq!(c.scopes(), ["a", "b"]);
        assert_eq!(c.source(), ClaimsSource::Introspection);

        let with = |k: &str, val: Value| {
            let mut j = ok.clone();
            j[k] = val;
            j
        };
        assert_eq!(
            check(&v, with("active", json!(false))),
            Err(TokenError::Inactive)
        );
        assert_eq!(
            check(&v, with("active", json!("true"))),
            Err(TokenError::Inactive)
        );
        assert_eq!(
            check(&v, with("exp", json!(now - 100))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check(&v, with("nbf", json!(now + 300))),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            check(&v, with("iss", json!("https://evil"))),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            check(&v, with("aud", json!(["x", "y"]))),
            Err(TokenError::WrongAudience)
        );
        assert!(check(&v, with("aud", json!(["x", "https://h/mcp"]))).is_ok());
        assert_eq!(
            check(&v, with("token_type", json!("refresh_token"))),
            Err(TokenError::WrongType)
        );
        assert!(check(&v, with("token_type", json!("Bearer"))).is_ok());
        assert_eq!(
            check(&v, with("cnf", json!({"jkt": "abc"}))),
            Err(TokenError::BoundToken)
        );
        let mut no_aud = ok.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(check(&v, no_aud), Err(TokenError::WrongAudience));
        let mut no_iss = ok;
        no_iss.as_object_mut().unwrap().remove("iss");
        assert!(check(&v, no_iss).is_ok(), "iss is optional in RFC 7662");
    }

    #[test]
    fn basic_auth_is_form_encoded_and_debug_redacted() {
        let v = validator();
        let auth = v.inner.authorization.as_deref().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "rs:s3cr3t%3Awith%26chars"
        );
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("s3cr3t") && dbg.contains("redacted"), "{dbg}");
    }
}
