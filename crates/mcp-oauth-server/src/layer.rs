//! [`McpAuthLayer`]: the tower layer that protects an MCP endpoint.

use crate::config::ProtectedResource;
use crate::metadata;
use crate::policy::ScopePolicy;
use crate::response::AuthError;
use crate::validator::{BoxFuture, TokenError, TokenValidator};
use axum::Router;
use axum::body::{Body, HttpBody};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_LENGTH, HeaderValue, ORIGIN,
};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default cap on the JSON-RPC body the layer reads to apply a [`ScopePolicy`]
/// (the same 4 MiB rmcp uses).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Protects everything it wraps with OAuth bearer tokens, MCP-style.
///
/// For each request, in order:
///
/// 1. A request for the metadata document (the path-inserted or root well-known path of
///    the [`ProtectedResource`], those it serves) is answered here, without
///    authentication, with CORS. A CORS preflight (`OPTIONS` with `Origin` and
///    `Access-Control-Request-Method`) passes through unauthenticated: browsers never
///    attach credentials to one. Nothing else skips authentication: other
///    `/.well-known/` paths and other `OPTIONS` requests are treated like any request
///    (public documents of the application belong outside the layer, like
///    [`metadata_router`](Self::metadata_router)).
/// 2. A token in the query string (`access_token=`) or two `Authorization` fields →
///    `400 invalid_request`. No `Bearer` credentials → `401` with
///    `WWW-Authenticate: Bearer resource_metadata="…"[, scope="…"]` and no `error`
///    (RFC 6750 §3.1).
/// 3. The [`TokenValidator`] checks the token → `401 error="invalid_token"` (or `503`
///    when it cannot decide, e.g. JWKS unreachable).
/// 4. When the [`ScopePolicy`] has method or target rules, the JSON-RPC body is read
///    (up to a cap, `413` beyond) to find `method` and `params.name`/`params.uri`, and
///    put back untouched; `Mcp-Method`/`Mcp-Name` headers, when sent, must agree with
///    the body (`400` with JSON-RPC error -32020 otherwise) and stand in for it when
///    there is no JSON-RPC body. Missing scopes → `403 error="insufficient_scope"` with
///    every scope the operation needs.
/// 5. The `Authorization` header is removed, the verified [`Claims`](crate::Claims) are inserted as a
///    request extension, and the request goes to the inner service.
///
/// ```no_run
/// use axum::{Router, routing::post};
/// use mcp_oauth_server::{JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .scopes_supported(["mcp"])
///     .required_scopes(["mcp"])
///     .build()?;
/// let validator = JwtValidator::builder(&resource).build()?;
/// let auth = McpAuthLayer::new(resource, validator)
///     .with_scope_policy(ScopePolicy::new().tool("delete_everything", ["mcp:admin"]));
/// let app = Router::new()
///     .route("/mcp", post(|body: String| async move { body }))
///     .layer(auth.clone())
///     .merge(auth.metadata_router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct McpAuthLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    resource: ProtectedResource,
    validator: Arc<dyn TokenValidator>,
    policy: ScopePolicy,
    max_body_bytes: usize,
}

impl fmt::Debug for McpAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpAuthLayer")
            .field("resource", &self.shared.resource)
            .field("policy", &self.shared.policy)
            .field("max_body_bytes", &self.shared.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl McpAuthLayer {
    pub fn new(resource: ProtectedResource, validator: impl TokenValidator) -> Self {
        Self {
            shared: Arc::new(Shared {
                resource,
                validator: Arc::new(validator),
                policy: ScopePolicy::default(),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            }),
        }
    }

    /// Per-method and per-tool scopes (see [`ScopePolicy`]).
    pub fn with_scope_policy(mut self, policy: ScopePolicy) -> Self {
        Arc::make_mut(&mut self.shared).policy = policy;
        self
    }

    /// Largest JSON-RPC body read to apply the scope policy (default
    /// [`DEFAULT_MAX_BODY_BYTES`]). Bodies are only read when the policy needs them.
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        Arc::make_mut(&mut self.shared).max_body_bytes = max;
        self
    }

    pub fn resource(&self) -> &ProtectedResource {
        &self.shared.resource
    }

    pub fn scope_policy(&self) -> &ScopePolicy {
        &self.shared.policy
    }

    /// A router serving the metadata document at its well-known paths; merge it next to
    /// (outside) the routes this layer wraps. See [`metadata::metadata_router`].
    pub fn metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        metadata::metadata_router(&self.shared.resource)
    }

    /// The layer's decision for one request, for integrations that are not tower
    /// services: the request to pass on (token removed, [`Claims`](crate::Claims)
    /// inserted), or the response to send instead.
    pub async fn authorize<B>(&self, req: Request<B>) -> Result<Request<Body>, Response<Body>>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        match self.precheck(&mut parts) {
            Precheck::Respond(resp) => Err(resp),
            Precheck::PassThrough => Ok(Request::from_parts(parts, Body::new(body))),
            Precheck::Token(value, range) => {
                self.finish(parts, body, &value.as_bytes()[range]).await
            }
        }
    }

    /// Everything decided from the request head alone: metadata, CORS preflights,
    /// malformed or missing credentials. Removes the `Authorization` header.
    fn precheck(&self, parts: &mut http::request::Parts) -> Precheck {
        let s = &*self.shared;
        let path = parts.uri.path();
        if s.resource.is_metadata_path(path) {
            return Precheck::Respond(metadata::respond(
                &s.resource,
                &parts.method,
                &parts.headers,
            ));
        }
        if is_cors_preflight(&parts.method, &parts.headers) {
            parts.headers.remove(AUTHORIZATION);
            return Precheck::PassThrough;
        }
        if query_has_access_token(parts.uri.query()) {
            return Precheck::Respond(self.reject(
                AuthError::InvalidRequest("Access tokens must not be sent in the query string"),
                &parts.headers,
            ));
        }
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let first = values.next().cloned();
        if values.next().is_some() {
            return Precheck::Respond(self.reject(
                AuthError::InvalidRequest("More than one Authorization header"),
                &parts.headers,
            ));
        }
        // Removed before anything else runs: the token never reaches the inner service.
        parts.headers.remove(AUTHORIZATION);
        let Some(value) = first else {
            return Precheck::Respond(self.reject(AuthError::MissingToken, &parts.headers));
        };
        match bearer_token(&value) {
            Bearer::OtherScheme => {
                Precheck::Respond(self.reject(AuthError::MissingToken, &parts.headers))
            }
            Bearer::Invalid(e) => Precheck::Respond(self.reject(e, &parts.headers)),
            Bearer::Token(t) => {
                let start = t.as_ptr() as usize - value.as_bytes().as_ptr() as usize;
                let range = start..start + t.len();
                Precheck::Token(value, range)
            }
        }
    }

    /// Validation (possibly remote), the scope policy (possibly reading the body), and
    /// the claims put in place.
    async fn finish<B>(
        &self,
        mut parts: http::request::Parts,
        body: B,
        token: &[u8],
    ) -> Result<Request<Body>, Response<Body>>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let s = &*self.shared;
        // `bearer_token` checked the b64token syntax: ASCII.
        let token = std::str::from_utf8(token).unwrap_or_default();
        let claims = match s.validator.validate(token).await {
            Ok(c) => c,
            Err(e) => return Err(self.reject(AuthError::InvalidToken(e), &parts.headers)),
        };
        if !s.policy.needs_request_info() {
            return match self.admit(&mut parts, claims) {
                None => Ok(Request::from_parts(parts, Body::new(body))),
                Some(refusal) => Err(refusal),
            };
        }
        let mut required: Vec<String> = s.resource.required_scopes().to_vec();
        let read = read_operations(&parts.method, &parts.headers, body, s.max_body_bytes);
        let (body, ops) = match read.await {
            Ok(x) => x,
            Err(e) => return Err(self.reject(e, &parts.headers)),
        };
        for op in &ops {
            s.policy
                .required_for(&op.method, op.name.as_deref(), &mut required);
        }
        if !s.policy.satisfied_by(claims.scopes(), &required) {
            return Err(self.reject(AuthError::InsufficientScope { required }, &parts.headers));
        }
        parts.extensions.insert(claims);
        Ok(Request::from_parts(parts, body))
    }

    /// Without method/target rules: the resource's required scopes, then the claims.
    /// `Some(refusal)` when the token lacks them.
    fn admit(
        &self,
        parts: &mut http::request::Parts,
        claims: crate::Claims,
    ) -> Option<Response<Body>> {
        let base = self.shared.resource.required_scopes();
        if !self.shared.policy.satisfied_by(claims.scopes(), base) {
            let required = base.to_vec();
            return Some(self.reject(AuthError::InsufficientScope { required }, &parts.headers));
        }
        parts.extensions.insert(claims);
        None
    }

    fn reject(&self, e: AuthError, headers: &HeaderMap) -> Response<Body> {
        tracing::debug!(status = %e.status(), reason = %e, "request refused");
        e.to_response(&self.shared.resource, headers)
    }
}

enum Precheck {
    Respond(Response<Body>),
    /// Unauthenticated pass-through: a CORS preflight.
    PassThrough,
    /// The `Authorization` value and where the token is in it.
    Token(HeaderValue, std::ops::Range<usize>),
}

impl<S> Layer<S> for McpAuthLayer {
    type Service = McpAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpAuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`McpAuthLayer`].
#[derive(Clone)]
pub struct McpAuthService<S> {
    inner: S,
    layer: McpAuthLayer,
}

impl<S> fmt::Debug for McpAuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpAuthService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for McpAuthService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let (value, range) = match self.layer.precheck(&mut parts) {
            Precheck::Respond(resp) => return Box::pin(async move { Ok(resp) }),
            Precheck::PassThrough => {
                let fut = self.inner.call(Request::from_parts(parts, Body::new(body)));
                return Box::pin(async move { fut.await.map(|r| r.map(Body::new)) });
            }
            Precheck::Token(value, range) => (value, range),
        };
        // Fast path: a verdict the validator already has (its cache), and no need to
        // read the body. The inner service was polled ready; call it right away.
        let shared = &self.layer.shared;
        if !shared.policy.needs_request_info()
            && let Ok(token) = std::str::from_utf8(&value.as_bytes()[range.clone()])
            && let Some(verdict) = shared.validator.validate_now(token)
        {
            let refusal = match verdict {
                Ok(claims) => self.layer.admit(&mut parts, claims),
                Err(e) => Some(
                    self.layer
                        .reject(AuthError::InvalidToken(e), &parts.headers),
                ),
            };
            return match refusal {
                None => {
                    let fut = self.inner.call(Request::from_parts(parts, Body::new(body)));
                    Box::pin(async move { fut.await.map(|r| r.map(Body::new)) })
                }
                Some(resp) => Box::pin(async move { Ok(resp) }),
            };
        }
        // Slow path: validation or body reading awaits, so the ready service is kept
        // for this call and a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.finish(parts, body, &value.as_bytes()[range]).await {
                Ok(req) => inner.call(req).await.map(|r| r.map(Body::new)),
                Err(resp) => Ok(resp),
            }
        })
    }
}

/// A CORS-preflight request (Fetch standard §3.2.2): `OPTIONS` with an `Origin` and an
/// `Access-Control-Request-Method`. A browser sends it without credentials before a
/// cross-origin request, so it cannot be authenticated and must reach the application's
/// CORS handling. Any other `OPTIONS` is an ordinary request, authenticated like the rest.
fn is_cors_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

// ---- credentials ----

enum Bearer<'a> {
    Token(&'a str),
    /// Credentials of another scheme (Basic, ...): for us, no credentials.
    OtherScheme,
    Invalid(AuthError),
}

/// Parses `Authorization: Bearer <b64token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive). One pass over the token bytes.
fn bearer_token(value: &HeaderValue) -> Bearer<'_> {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    let bytes = &bytes[start..end];
    let scheme_end = bytes.iter().position(is_ws).unwrap_or(bytes.len());
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return Bearer::OtherScheme;
    }
    let rest = &bytes[scheme_end..];
    let token = &rest[rest.iter().position(|b| !is_ws(b)).unwrap_or(rest.len())..];
    if token.is_empty() {
        return Bearer::Invalid(AuthError::InvalidRequest("Empty bearer token"));
    }
    if !is_b64token(token) {
        return Bearer::Invalid(AuthError::InvalidToken(TokenError::Malformed));
    }
    match std::str::from_utf8(token) {
        Ok(t) => Bearer::Token(t),
        Err(_) => Bearer::Invalid(AuthError::InvalidToken(TokenError::Malformed)),
    }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(t: &[u8]) -> bool {
    // Branch-free per byte so that the check vectorizes (tokens are ~1 KB and this runs
    // on every request).
    fn ok(b: u8) -> bool {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        letter
            | digit
            | (b == b'-')
            | (b == b'.')
            | (b == b'_')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/')
    }
    let body_len = t.iter().rposition(|b| *b != b'=').map_or(0, |i| i + 1);
    body_len > 0 && t[..body_len].iter().fold(true, |acc, &b| acc & ok(b))
}

fn query_has_access_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
    })
}

// ---- the MCP operation of a request ----

#[derive(Debug, Clone, PartialEq, Eq)]
struct Operation {
    method: String,
    name: Option<String>,
}

/// The operations of a request: from the JSON-RPC body of a `POST` (a message or a
/// batch), checked against `Mcp-Method`/`Mcp-Name`; from the headers alone when there
/// is no JSON-RPC body. Returns the body to pass on (the same bytes).
async fn read_operations<B>(
    method: &Method,
    headers: &HeaderMap,
    body: B,
    max: usize,
) -> Result<(Body, Vec<Operation>), AuthError>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let from_headers = header_operation(headers)?;
    if method != Method::POST {
        return Ok((Body::new(body), from_headers.into_iter().collect()));
    }
    if headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(AuthError::BodyTooLarge);
    }
    let bytes = match Limited::new(body, max).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(AuthError::BodyTooLarge);
        }
        Err(_) => return Err(AuthError::BodyUnreadable),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let mut ops = Vec::new();
    match &parsed {
        Some(Value::Object(_)) => {
            let msg = parsed.as_ref().expect("matched");
            if let Some(op) = body_operation(msg) {
                if let Some(h) = &from_headers {
                    check_headers(h, &op, headers.contains_key(MCP_NAME), msg)?;
                }
                ops.push(op);
            } else if let Some(h) = from_headers {
                // A response or malformed message: nothing to compare with.
                ops.push(h);
            }
        }
        Some(Value::Array(batch)) => {
            // Batches (2025-03-26) carry no per-message headers; take every message.
            ops.extend(batch.iter().filter_map(body_operation));
            ops.extend(from_headers);
        }
        _ => ops.extend(from_headers),
    }
    Ok((Body::from(bytes), ops))
}

const MCP_METHOD: &str = "mcp-method";
const MCP_NAME: &str = "mcp-name";

fn body_operation(msg: &Value) -> Option<Operation> {
    let method = msg.get("method")?.as_str()?.to_owned();
    let params = msg.get("params");
    let name = params
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Operation { method, name })
}

fn header_operation(headers: &HeaderMap) -> Result<Option<Operation>, AuthError> {
    let mismatch = |message: &str| AuthError::HeaderMismatch {
        id: Value::Null,
        message: message.to_owned(),
    };
    let Some(method) = headers.get(MCP_METHOD) else {
        return Ok(None);
    };
    let method = method
        .to_str()
        .map_err(|_| mismatch("the Mcp-Method header has invalid characters"))?
        .to_owned();
    let name = match headers.get(MCP_NAME) {
        None => None,
        Some(v) => Some(
            decode_header_value(
                v.to_str()
                    .map_err(|_| mismatch("the Mcp-Name header has invalid characters"))?,
            )
            .ok_or_else(|| mismatch("the Mcp-Name header has an invalid Base64 encoding"))?,
        ),
    };
    Ok(Some(Operation { method, name }))
}

/// MCP's `=?base64?…?=` sentinel (case-sensitive markers); plain values as they are.
fn decode_header_value(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(v.to_owned()),
    }
}

fn check_headers(
    from_headers: &Operation,
    body: &Operation,
    name_header_sent: bool,
    msg: &Value,
) -> Result<(), AuthError> {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    if from_headers.method != body.method {
        return Err(AuthError::HeaderMismatch {
            id,
            message: format!(
                "Mcp-Method header value {:?} does not match body value {:?}",
                from_headers.method, body.method
            ),
        });
    }
    if name_header_sent && from_headers.name != body.name {
        return Err(AuthError::HeaderMismatch {
            id,
            message: format!(
                "Mcp-Name header value {:?} does not match body value {:?}",
                from_headers.name.as_deref().unwrap_or(""),
                body.name.as_deref().unwrap_or("")
            ),
        });
    }
    Ok(())
}

/// For handlers that check scopes themselves (e.g. depending on tool arguments): the
/// `403 insufficient_scope` response for `required`, shaped like the layer's own.
pub fn insufficient_scope_response(
    resource: &ProtectedResource,
    required: impl IntoIterator<Item = impl Into<String>>,
) -> Response<Body> {
    AuthError::InsufficientScope {
        required: required.into_iter().map(Into::into).collect(),
    }
    .to_response(resource, &HeaderMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        let tok = |s: &str| match bearer_token(&hv(s)) {
            Bearer::Token(t) => Some(t.to_owned()),
            _ => None,
        };
        assert_eq!(
            tok("Bearer abc.def-ghi_~+/=="),
            Some("abc.def-ghi_~+/==".into())
        );
        assert_eq!(tok("bearer  abc"), Some("abc".into()));
        assert_eq!(tok("BEARER\tabc"), Some("abc".into()));
        assert!(matches!(
            bearer_token(&hv("Basic dXNlcjpwYXNz")),
            Bearer::OtherScheme
        ));
        assert!(matches!(
            bearer_token(&hv("Bearerx abc")),
            Bearer::OtherScheme
        ));
        assert!(matches!(
            bearer_token(&hv("Bearer")),
            Bearer::Invalid(AuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(&hv("Bearer a b")),
            Bearer::Invalid(AuthError::InvalidToken(TokenError::Malformed))
        ));
        assert!(matches!(
            bearer_token(&hv("Bearer ===")),
            Bearer::Invalid(AuthError::InvalidToken(TokenError::Malformed))
        ));
        let non_ascii = HeaderValue::from_bytes(b"Bearer \xe9").unwrap();
        assert!(matches!(
            bearer_token(&non_ascii),
            Bearer::Invalid(AuthError::InvalidToken(TokenError::Malformed))
        ));
    }

    #[test]
    fn only_real_preflights_are_preflights() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let full = headers(&[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(is_cors_preflight(&Method::OPTIONS, &full));
        assert!(!is_cors_preflight(&Method::GET, &full));
        assert!(!is_cors_preflight(&Method::OPTIONS, &HeaderMap::new()));
        assert!(!is_cors_preflight(
            &Method::OPTIONS,
            &headers(&[("origin", "https://app.example")])
        ));
        assert!(!is_cors_preflight(
            &Method::OPTIONS,
            &headers(&[("access-control-request-method", "POST")])
        ));
    }

    #[test]
    fn query_tokens() {
        assert!(query_has_access_token(Some("a=1&access_token=x")));
        assert!(!query_has_access_token(Some("not_access_token=x")));
        assert!(!query_has_access_token(None));
    }

    #[test]
    fn header_values() {
        assert_eq!(
            decode_header_value("get_weather").as_deref(),
            Some("get_weather")
        );
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        assert_eq!(decode_header_value("=?base64?!!!?="), None);
        assert_eq!(
            decode_header_value("=?BASE64?eA==?=").as_deref(),
            Some("=?BASE64?eA==?=")
        );
    }

    #[test]
    fn operations_of_messages() {
        let op = |v: Value| body_operation(&v);
        assert_eq!(
            op(
                serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}})
            ),
            Some(Operation {
                method: "tools/call".into(),
                name: Some("t".into())
            })
        );
        assert_eq!(
            op(serde_json::json!({"method":"resources/read","params":{"uri":"file:///x"}})),
            Some(Operation {
                method: "resources/read".into(),
                name: Some("file:///x".into())
            })
        );
        assert_eq!(
            op(serde_json::json!({"method":"tools/list"})),
            Some(Operation {
                method: "tools/list".into(),
                name: None
            })
        );
        assert_eq!(op(serde_json::json!({"id":1,"result":{}})), None);
    }
}
