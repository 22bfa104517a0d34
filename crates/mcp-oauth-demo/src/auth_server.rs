//! # A DEVELOPMENT authorization server. Never use it in production.
//!
//! **It approves every authorization request at once, for one fixed user, without asking
//! anyone.** Everything lives in memory and is gone when the process ends. It exists so
//! that `mcp-oauth demo` (and anyone trying an MCP client against the demo) has a real
//! OAuth 2.1 authorization server on loopback, with the parts MCP relies on done by the
//! book:
//!
//! - RFC 8414 metadata at `/.well-known/oauth-authorization-server`
//!   (`code_challenge_methods_supported: ["S256"]`,
//!   `authorization_response_iss_parameter_supported: true`, `registration_endpoint`,
//!   `scopes_supported` with `offline_access`, ...);
//! - RFC 7591 dynamic registration at `/register`: public (`none`) and confidential
//!   (`client_secret_basic`, `client_secret_post`) clients; redirect URIs must be
//!   absolute, without fragment, and `http` only on loopback (RFC 8252 native clients);
//! - `/authorize`: `client_id` known, `redirect_uri` exactly as registered (else an error
//!   page, never a redirect), `response_type=code`, PKCE with `S256` only, an RFC 8707
//!   `resource` that names a resource this server serves; approved with a `302` to the
//!   redirect URI carrying `code`, `state` and `iss` (RFC 9207), errors likewise;
//! - `/token`: `authorization_code` (single-use codes bound to the client, the redirect
//!   URI, the PKCE challenge and the resource; a replayed code revokes what it issued)
//!   and `refresh_token` (rotation; a retired refresh token presented again revokes the
//!   grant), with RFC 6749 §5.2 errors;
//! - JWT access tokens (RFC 9068 shape, `typ: at+jwt`), signed with a key from
//!   [`mcp_oauth_server::dev::DevIssuer`]: `iss` = this issuer, `aud` = the `resource`,
//!   `sub`, `client_id`, `scope`, `iat`, `exp`, `jti`; the keys at `/jwks`.
//!
//! Scopes: the granted scope is the requested scopes this server knows (others are
//! ignored, RFC 6749 §3.3), or the default scopes when none is left. A refresh token is
//! issued to clients that registered the `refresh_token` grant.
//!
//! Public clients (`token_endpoint_auth_method: none`, what native MCP clients register)
//! get a `client_id` that carries their registration (grant types and redirect URIs,
//! base64url), so that a client that kept its registration still works after
//! `mcp-oauth demo --serve` is restarted (it only has to log in again: the keys, codes and
//! tokens are new). Registration is open anyway, so nothing is lost by letting anyone
//! write such an id. Confidential clients are kept in memory only.
//!
//! CORS (`Access-Control-Allow-Origin: *`) on every endpoint but `/authorize`, so that
//! browser-based clients (the MCP Inspector) can use it too.

use crate::events::{
    Authorized, Detail, Event, EventSink, HttpEvent, Registered, Side, TokenIssued, redact,
    redact_url, user_agent_product,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use mcp_oauth_server::dev::DevIssuer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The subject every token is issued to.
pub const DEMO_SUBJECT: &str = "demo-user";

/// Settings of the development authorization server.
#[derive(Debug, Clone)]
pub struct DevAuthServerConfig {
    /// The issuer identifier, `http://127.0.0.1:PORT` (where the router is served).
    pub issuer: String,
    /// The resources (RFC 8707) tokens may be issued for; `aud` is one of them.
    pub resources: Vec<String>,
    /// `scopes_supported` (add `offline_access` yourself when wanted).
    pub scopes: Vec<String>,
    /// Granted when a request names none of [`scopes`](Self::scopes).
    pub default_scopes: Vec<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
}

impl DevAuthServerConfig {
    /// Defaults for `issuer` and one resource: scopes `mcp` and `offline_access`
    /// (default `mcp`), access tokens for an hour, refresh tokens for a day, codes for
    /// a minute.
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            resources: vec![resource.into()],
            scopes: vec!["mcp".into(), "offline_access".into()],
            default_scopes: vec!["mcp".into()],
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(86400),
            code_ttl: Duration::from_secs(60),
        }
    }
}

/// The development authorization server: see the [module documentation](self).
pub struct DevAuthServer {
    config: DevAuthServerConfig,
    keys: Arc<DevIssuer>,
    state: Mutex<AsState>,
    events: EventSink,
}

impl std::fmt::Debug for DevAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthServer")
            .field("issuer", &self.config.issuer)
            .field("resources", &self.config.resources)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct AsState {
    clients: HashMap<String, Client>,
    codes: HashMap<String, CodeGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// Grant id → revoked. A grant is one authorization: its code and every refresh
    /// token descending from it.
    revoked: HashMap<u64, bool>,
    next_grant: u64,
}

#[derive(Clone)]
struct Client {
    /// SHA-256 of the secret, for confidential clients.
    secret_hash: Option<[u8; 32]>,
    auth_method: String,
    redirect_uris: Vec<String>,
    grant_types: Vec<String>,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    resource: String,
    scope: String,
    expires: Instant,
    used: bool,
    grant: u64,
}

struct RefreshGrant {
    client_id: String,
    resource: String,
    scope: String,
    expires: Instant,
    /// Retired by rotation: presenting it again is reuse.
    retired: bool,
    grant: u64,
}

/// An OAuth error (RFC 6749 §5.2 / §4.1.2.1).
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Add `WWW-Authenticate: Basic` (a failed `client_secret_basic`).
    basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn into_response(self) -> Response {
        let detail = Detail::OAuthError {
            error: self.error.into(),
            description: self.description.clone(),
            redirected: false,
        };
        let mut resp = (
            self.status,
            no_store(),
            axum::Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        if self.basic_challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcp-oauth demo\""),
            );
        }
        resp.extensions_mut().insert(detail);
        resp
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

impl DevAuthServer {
    /// A server with a fresh ES256 signing key. Events go to `events`.
    pub fn new(config: DevAuthServerConfig, events: EventSink) -> Arc<Self> {
        let keys = DevIssuer::new(
            config.issuer.clone(),
            mcp_oauth_server::jsonwebtoken::Algorithm::ES256,
        );
        Arc::new(Self {
            config,
            keys,
            state: Mutex::new(AsState::default()),
            events,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn config(&self) -> &DevAuthServerConfig {
        &self.config
    }

    /// `{issuer}/jwks`.
    pub fn jwks_uri(&self) -> String {
        self.keys.jwks_uri()
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer.trim_end_matches('/'))
    }

    /// The RFC 8414 metadata document.
    pub fn metadata(&self) -> Value {
        json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "registration_endpoint": self.endpoint("/register"),
            "jwks_uri": self.jwks_uri(),
            "scopes_supported": self.config.scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "service_documentation": "https://github.com/mcp-oauth/mcp-oauth#try-it",
            "mcp_oauth_demo": "DEVELOPMENT ONLY: in memory, approves every authorization request without asking",
        })
    }

    /// The routes: metadata, `/register`, `/authorize`, `/token`, `/jwks`, and `/` (a
    /// plain-text notice); every request is reported to the event sink.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .layer(middleware::from_fn(cors))
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A registered client: kept in memory, or a public client's self-describing id.
    fn client(&self, client_id: &str) -> Option<Client> {
        if let Some(c) = self.lock().clients.get(client_id) {
            return Some(c.clone());
        }
        decode_public_client_id(client_id)
    }

    /// Scopes to grant for a requested `scope` parameter.
    fn grant_scope(&self, requested: Option<&str>) -> String {
        let mut out: Vec<&str> = Vec::new();
        for s in requested
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
        {
            if self.config.scopes.iter().any(|k| k == s) && !out.contains(&s) {
                out.push(s);
            }
        }
        if !out
            .iter()
            .any(|s| self.config.default_scopes.iter().any(|d| d == s))
        {
            for d in &self.config.default_scopes {
                if !out.contains(&d.as_str()) {
                    out.insert(0, d);
                }
            }
        }
        out.join(" ")
    }
}

// ---------------------------------------------------------------- middleware

/// Reports every exchange (handlers attach their [`Detail`] as a response extension).
async fn record(State(server): State<Arc<DevAuthServer>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(redact_url).unwrap_or_default();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(user_agent_product);
    let mut resp = next.run(req).await;
    let detail = resp.extensions_mut().remove::<Detail>().unwrap_or_default();
    server.events.send(Event::Http(Box::new(HttpEvent {
        side: Side::Auth,
        method,
        path,
        query,
        status: resp.status().as_u16(),
        user_agent,
        detail,
    })));
    resp
}

/// `Access-Control-Allow-Origin: *` everywhere but `/authorize` (a top-level navigation,
/// never fetched cross-origin); preflights answered here.
async fn cors(req: Request, next: Next) -> Response {
    let authorize = req.uri().path() == "/authorize";
    if req.method() == Method::OPTIONS && !authorize {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, mcp-protocol-version",
                ),
                (header::ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response();
    }
    let mut resp = next.run(req).await;
    if !authorize {
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    resp
}

// ---------------------------------------------------------------- simple endpoints

async fn home(State(s): State<Arc<DevAuthServer>>) -> Response {
    let text = format!(
        "mcp-oauth demo: DEVELOPMENT authorization server {}\n\n\
         DEVELOPMENT ONLY. It approves every authorization request at once, for the user \
         {DEMO_SUBJECT:?}, without asking anyone, and keeps everything in memory.\n\n\
         metadata: {}\n",
        s.config.issuer,
        s.endpoint("/.well-known/oauth-authorization-server")
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn metadata(State(s): State<Arc<DevAuthServer>>) -> Response {
    let mut resp = axum::Json(s.metadata()).into_response();
    resp.extensions_mut().insert(Detail::AsMetadata);
    resp
}

async fn jwks(State(s): State<Arc<DevAuthServer>>) -> Response {
    let set = s.keys.jwks();
    let kids = set["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    let mut resp = axum::Json(set).into_response();
    resp.extensions_mut().insert(Detail::Jwks { kids });
    resp
}

// ---------------------------------------------------------------- /register

const GRANTS: &[&str] = &["authorization_code", "refresh_token"];
const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

async fn register(
    State(s): State<Arc<DevAuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match do_register(&s, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn do_register(
    s: &DevAuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let bad = |d: String| OAuthError::new("invalid_client_metadata", d);
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(OAuthError::new(
            "invalid_request",
            "the registration request must be application/json (RFC 7591 §3.1)",
        ));
    }
    let meta: Value = serde_json::from_slice(body)
        .map_err(|e| OAuthError::new("invalid_request", format!("the body is not JSON: {e}")))?;
    let Value::Object(meta) = meta else {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be a JSON object",
        ));
    };
    let strings = |name: &str| -> Result<Option<Vec<String>>, OAuthError> {
        match meta.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| bad(format!("{name} must be an array of strings"))),
            Some(_) => Err(bad(format!("{name} must be an array of strings"))),
        }
    };
    let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            "redirect_uris is required: this server only does the authorization code flow",
        ));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri).map_err(|why| {
            OAuthError::new(
                "invalid_redirect_uri",
                format!("redirect URI {uri:?}: {why}"),
            )
        })?;
    }
    let grant_types = strings("grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(bad(format!(
            "grant type {g:?} is not supported (supported: {})",
            GRANTS.join(", ")
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad("grant_types must include authorization_code".into()));
    }
    let response_types = strings("response_types")?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(bad("only the response type \"code\" is supported".into()));
    }
    // RFC 7591 §2: the default is client_secret_basic.
    let auth_method = match meta.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "client_secret_basic".to_owned(),
        Some(Value::String(m)) if AUTH_METHODS.contains(&m.as_str()) => m.clone(),
        Some(other) => {
            return Err(bad(format!(
                "token_endpoint_auth_method {other} is not supported (supported: {})",
                AUTH_METHODS.join(", ")
            )));
        }
    };
    let client_name = meta
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let secret = (auth_method != "none").then(|| random_token(32));
    let client_id = if secret.is_none() {
        public_client_id(&grant_types, &redirect_uris)
    } else {
        format!("demo-{}", random_token(12))
    };
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = meta.clone();
    out.insert("client_id".into(), client_id.clone().into());
    out.insert("client_id_issued_at".into(), issued_at.into());
    out.insert("redirect_uris".into(), json!(redirect_uris));
    out.insert("grant_types".into(), json!(grant_types));
    out.insert("response_types".into(), json!(response_types));
    out.insert(
        "token_endpoint_auth_method".into(),
        auth_method.clone().into(),
    );
    if let Some(secret) = &secret {
        out.insert("client_secret".into(), secret.clone().into());
        out.insert("client_secret_expires_at".into(), 0.into());
    }
    s.lock().clients.insert(
        client_id.clone(),
        Client {
            secret_hash: secret.as_deref().map(sha256),
            auth_method: auth_method.clone(),
            redirect_uris: redirect_uris.clone(),
            grant_types: grant_types.clone(),
        },
    );
    let mut resp = (
        StatusCode::CREATED,
        no_store(),
        axum::Json(Value::Object(out)),
    )
        .into_response();
    resp.extensions_mut().insert(Detail::Registered(Registered {
        client_id,
        client_name,
        redirect_uris,
        token_endpoint_auth_method: auth_method,
        grant_types,
    }));
    Ok(resp)
}

/// RFC 8252 / OAuth 2.1 §2.3: absolute, no fragment; `http` only for loopback hosts;
/// private-use schemes (`com.example.app:/cb`, `vscode://…`) accepted.
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    let u = url::Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if u.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment");
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err("http is only allowed for loopback hosts (127.0.0.1, [::1], localhost)"),
        },
        "javascript" | "data" | "file" | "vbscript" => Err("scheme not allowed"),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- /authorize

async fn authorize(State(s): State<Arc<DevAuthServer>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    match do_authorize(&s, &query) {
        Ok(r) | Err(r) => r,
    }
}

/// Query parameters; a repeated parameter is an error (RFC 6749 §3.1).
fn parse_params(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    Ok(out)
}

fn error_page(error: &str, description: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Authorization error</title>\
         <h1>Authorization error: {}</h1><p>{}</p>\
         <p>mcp-oauth demo development authorization server. Not redirecting: the client or its \
         redirect URI could not be verified (RFC 6749 §4.1.2.1).</p>",
        html_escape(error),
        html_escape(description)
    );
    let mut resp = (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    resp.extensions_mut().insert(Detail::OAuthError {
        error: error.into(),
        description: description.into(),
        redirected: false,
    });
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `redirect_uri` with `params` appended to its query (kept byte for byte otherwise).
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{}", ser.finish())
}

fn redirect(location: &str) -> Response {
    // A Location that is not a valid header value is refused here rather than sent.
    if HeaderValue::from_str(location).is_err() {
        return error_page(
            "server_error",
            "the redirect URI cannot be put in a Location header",
        );
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        "<!doctype html><meta charset=utf-8><title>Redirecting</title><p>Approved automatically \
         (mcp-oauth demo development authorization server); redirecting to the client.",
    )
        .into_response()
}

// Both outcomes are HTTP responses: `Err` is the early exit of a refusal.
#[allow(clippy::result_large_err)]
fn do_authorize(s: &DevAuthServer, raw: &str) -> Result<Response, Response> {
    let p = parse_params(raw).map_err(|e| error_page("invalid_request", &e))?;
    // 1. Errors that must not redirect: unknown client, bad redirect URI.
    let client_id = p
        .get("client_id")
        .ok_or_else(|| error_page("invalid_request", "client_id is missing"))?;
    let registered = s
        .client(client_id)
        .ok_or_else(|| {
            error_page(
                "invalid_client",
                &format!(
                    "unknown client_id {client_id:?}. This development server keeps confidential \
                     clients in memory: after a restart, they must register again."
                ),
            )
        })?
        .redirect_uris;
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) if registered.iter().any(|x| x == r) => r.clone(),
        Some(r) => {
            return Err(error_page(
                "invalid_request",
                &format!(
                    "redirect_uri {r:?} is not one of the registered redirect URIs {registered:?} \
                     (exact match required)"
                ),
            ));
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Err(error_page(
                "invalid_request",
                "redirect_uri is missing and the client registered several",
            ));
        }
    };
    // 2. Errors that go back to the client, with state and iss.
    let state = p.get("state").cloned();
    let back = |error: &'static str, description: String| -> Response {
        let mut params = vec![
            ("error", error),
            ("error_description", description.as_str()),
        ];
        if let Some(st) = &state {
            params.push(("state", st));
        }
        params.push(("iss", s.issuer()));
        let mut resp = redirect(&with_params(&redirect_uri, &params));
        resp.extensions_mut().insert(Detail::OAuthError {
            error: error.into(),
            description: description.clone(),
            redirected: true,
        });
        resp
    };
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => {
            return Err(back(
                "unsupported_response_type",
                format!("response_type {other:?}: only \"code\" is supported"),
            ));
        }
        None => return Err(back("invalid_request", "response_type is missing".into())),
    }
    let Some(challenge) = p.get("code_challenge") else {
        return Err(back(
            "invalid_request",
            "code_challenge is missing: PKCE (S256) is required".into(),
        ));
    };
    match p.get("code_challenge_method").map(String::as_str) {
        Some("S256") => {}
        Some(m) => {
            return Err(back(
                "invalid_request",
                format!("code_challenge_method {m:?} is not supported: S256 only"),
            ));
        }
        None => {
            return Err(back(
                "invalid_request",
                "code_challenge_method is missing (it would mean \"plain\"): S256 only".into(),
            ));
        }
    }
    if challenge.len() != 43 || !challenge.bytes().all(is_b64url) {
        return Err(back(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest (43 characters)".into(),
        ));
    }
    let resource = match p.get("resource") {
        None => {
            return Err(back(
                "invalid_target",
                format!(
                    "resource is required (RFC 8707; the MCP authorization spec requires it): \
                     this server issues tokens for {:?}",
                    s.config.resources
                ),
            ));
        }
        Some(r) if s.config.resources.iter().any(|x| x == r) => r.clone(),
        Some(r) => {
            return Err(back(
                "invalid_target",
                format!(
                    "resource {r:?} is not served here; this server issues tokens for {:?}",
                    s.config.resources
                ),
            ));
        }
    };
    let scope = s.grant_scope(p.get("scope").map(String::as_str));

    // 3. Approved, without asking anyone: this is a development server.
    let code = random_token(32);
    {
        let mut st = s.lock();
        let now = Instant::now();
        st.codes.retain(|_, c| c.expires > now);
        st.next_grant += 1;
        let grant = st.next_grant;
        st.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: challenge.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                expires: now + s.config.code_ttl,
                used: false,
                grant,
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(st) = &state {
        params.push(("state", st));
    }
    params.push(("iss", s.issuer()));
    let location = with_params(&redirect_uri, &params);
    let mut resp = redirect(&location);
    resp.extensions_mut().insert(Detail::Authorized(Authorized {
        client_id: client_id.clone(),
        subject: DEMO_SUBJECT.into(),
        scope,
        resource,
        redirect_uri,
        location: redact_url(&location),
    }));
    Ok(resp)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

// ---------------------------------------------------------------- /token

async fn token(State(s): State<Arc<DevAuthServer>>, headers: HeaderMap, body: Bytes) -> Response {
    match do_token(&s, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn do_token(s: &DevAuthServer, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::new(
            "invalid_request",
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let raw = std::str::from_utf8(body)
        .map_err(|_| OAuthError::new("invalid_request", "the body is not UTF-8"))?;
    let p = parse_params(raw).map_err(|e| OAuthError::new("invalid_request", e))?;
    let client_id = authenticate(s, headers, &p)?;
    let grant_type = p
        .get("grant_type")
        .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is missing"))?;
    let client_grants = s
        .client(&client_id)
        .map(|c| c.grant_types)
        .unwrap_or_default();
    if GRANTS.contains(&grant_type.as_str()) && !client_grants.iter().any(|g| g == grant_type) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("the client did not register the {grant_type} grant"),
        ));
    }
    let (resource, scope, grant, rotated) = match grant_type.as_str() {
        "authorization_code" => {
            let (resource, scope, grant) = redeem_code(s, &client_id, &p)?;
            (resource, scope, grant, false)
        }
        "refresh_token" => {
            let (resource, scope, grant) = redeem_refresh(s, &client_id, &p)?;
            (resource, scope, grant, true)
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported (authorization_code, refresh_token)"
                ),
            ));
        }
    };

    let ttl = s.config.access_token_ttl;
    let access_token = s
        .keys
        .token(&resource)
        .subject(DEMO_SUBJECT)
        .client_id(&client_id)
        .scopes(scope.split(' ').filter(|x| !x.is_empty()))
        .expires_in(ttl)
        .sign();
    let refresh_token = client_grants.iter().any(|g| g == "refresh_token").then(|| {
        let rt = format!("rt-{}", random_token(32));
        let mut st = s.lock();
        let now = Instant::now();
        st.refresh_tokens.retain(|_, r| r.expires > now);
        st.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client_id.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                expires: now + s.config.refresh_token_ttl,
                retired: false,
                grant,
            },
        );
        rt
    });
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
    });
    if let Some(rt) = &refresh_token {
        body["refresh_token"] = rt.clone().into();
    }
    let key = s.keys.signing_key();
    let mut resp = (StatusCode::OK, no_store(), axum::Json(body)).into_response();
    resp.extensions_mut().insert(Detail::Token(TokenIssued {
        grant_type: grant_type.clone(),
        client_id,
        access_token: redact(&access_token),
        alg: format!("{:?}", key.alg()),
        kid: key.kid().to_owned(),
        audience: resource,
        scope,
        expires_in: ttl.as_secs(),
        refresh_token: refresh_token.as_deref().map(redact),
        rotated,
    }));
    Ok(resp)
}

/// Client authentication (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`,
/// or a public client naming itself. Returns the client id.
fn authenticate(
    s: &DevAuthServer,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let fail = |d: String, basic_used: bool| {
        let mut e = OAuthError::new("invalid_client", d);
        e.basic_challenge = basic_used;
        e
    };
    let (client_id, secret, basic_used) = if let Some(b64) = basic {
        let decoded = STANDARD
            .decode(b64.as_bytes())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| fail("malformed Basic credentials".into(), true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| fail("malformed Basic credentials".into(), true))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded.
        let dec = |x: &str| {
            url::form_urlencoded::parse(format!("x={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if p.contains_key("client_secret") {
            return Err(fail(
                "use one client authentication method, not two".into(),
                true,
            ));
        }
        if let Some(form_id) = p.get("client_id")
            && *form_id != dec(id)
        {
            return Err(fail(
                "client_id differs from the Basic credentials".into(),
                true,
            ));
        }
        (dec(id), Some(dec(secret)), true)
    } else {
        let id = p.get("client_id").cloned().ok_or_else(|| {
            OAuthError::new(
                "invalid_request",
                "client_id is missing (and no Basic credentials)",
            )
        })?;
        (id, p.get("client_secret").cloned(), false)
    };
    let client = s.client(&client_id).ok_or_else(|| {
        fail(
            format!(
                "unknown client {client_id:?} (confidential clients are kept in memory: after a \
                 restart, register again)"
            ),
            basic_used,
        )
    })?;
    match (&client.secret_hash, secret.as_deref()) {
        (None, None) => Ok(client_id),
        // Some public clients send an empty secret with Basic.
        (None, Some("")) => Ok(client_id),
        (None, Some(_)) => Err(fail(
            "this client is public (token_endpoint_auth_method none): it has no secret".into(),
            basic_used,
        )),
        (Some(_), None) => Err(fail(
            format!(
                "client {client_id:?} must authenticate ({})",
                client.auth_method
            ),
            basic_used,
        )),
        (Some(hash), Some(given)) if sha256(given) == *hash => Ok(client_id),
        (Some(_), Some(_)) => Err(fail("wrong client secret".into(), basic_used)),
    }
}

fn redeem_code(
    s: &DevAuthServer,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<(String, String, u64), OAuthError> {
    let code = p
        .get("code")
        .ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
    let verifier = p.get("code_verifier").ok_or_else(|| {
        OAuthError::new(
            "invalid_request",
            "code_verifier is missing: PKCE is required",
        )
    })?;
    let mut st = s.lock();
    let Some(c) = st.codes.get_mut(code) else {
        return Err(OAuthError::new(
            "invalid_grant",
            "unknown or expired authorization code",
        ));
    };
    if c.used {
        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
        let grant = c.grant;
        st.revoked.insert(grant, true);
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code was already used; the tokens issued from it are revoked",
        ));
    }
    if c.expires <= Instant::now() {
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code expired",
        ));
    }
    if c.client_id != client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code was issued to another client",
        ));
    }
    if let Some(r) = p.get("redirect_uri")
        && *r != c.redirect_uri
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| is_b64url(b) || b == b'.' || b == b'~')
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier));
    if computed != c.code_challenge {
        return Err(OAuthError::new(
            "invalid_grant",
            "PKCE verification failed: BASE64URL(SHA256(code_verifier)) != code_challenge",
        ));
    }
    if let Some(r) = p.get("resource")
        && *r != c.resource
    {
        return Err(OAuthError::new(
            "invalid_target",
            format!(
                "resource {r:?} differs from the authorized resource {:?}",
                c.resource
            ),
        ));
    }
    c.used = true;
    Ok((c.resource.clone(), c.scope.clone(), c.grant))
}

fn redeem_refresh(
    s: &DevAuthServer,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<(String, String, u64), OAuthError> {
    let rt = p
        .get("refresh_token")
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
    let mut st = s.lock();
    let Some(r) = st.refresh_tokens.get_mut(rt) else {
        return Err(OAuthError::new(
            "invalid_grant",
            "unknown or expired refresh token",
        ));
    };
    if r.client_id != client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    if r.retired {
        // Reuse of a rotated refresh token: someone has a copy. Revoke the grant.
        let grant = r.grant;
        st.revoked.insert(grant, true);
        return Err(OAuthError::new(
            "invalid_grant",
            "this refresh token was already used (rotation); the grant is revoked",
        ));
    }
    if r.expires <= Instant::now() {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token expired",
        ));
    }
    let (resource, granted, grant) = (r.resource.clone(), r.scope.clone(), r.grant);
    if st.revoked.get(&grant).copied().unwrap_or(false) {
        return Err(OAuthError::new("invalid_grant", "the grant was revoked"));
    }
    if let Some(res) = p.get("resource")
        && *res != resource
    {
        return Err(OAuthError::new(
            "invalid_target",
            format!("resource {res:?} differs from the grant's {resource:?}"),
        ));
    }
    let scope = match p.get("scope") {
        None => granted,
        Some(req) => {
            let have: Vec<&str> = granted.split(' ').collect();
            if let Some(extra) = req.split(' ').find(|x| !x.is_empty() && !have.contains(x)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("scope {extra:?} was not granted; a refresh can only narrow the scope"),
                ));
            }
            req.split(' ')
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if let Some(r) = st.refresh_tokens.get_mut(rt) {
        r.retired = true;
    }
    Ok((resource, scope, grant))
}

// ---------------------------------------------------------------- helpers

/// `demo-` + base64url(`a` or `r` (with the refresh_token grant), a space, the redirect
/// URIs separated by spaces).
fn public_client_id(grant_types: &[String], redirect_uris: &[String]) -> String {
    let flag = if grant_types.iter().any(|g| g == "refresh_token") {
        "r"
    } else {
        "a"
    };
    let raw = format!("{flag} {}", redirect_uris.join(" "));
    format!("demo-{}", URL_SAFE_NO_PAD.encode(raw))
}

fn decode_public_client_id(client_id: &str) -> Option<Client> {
    let raw = URL_SAFE_NO_PAD
        .decode(client_id.strip_prefix("demo-")?)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (flag, uris) = raw.split_once(' ')?;
    let grant_types = match flag {
        "a" => vec!["authorization_code".to_owned()],
        "r" => vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        _ => return None,
    };
    let redirect_uris: Vec<String> = uris.split(' ').map(str::to_owned).collect();
    if redirect_uris.iter().any(|u| check_redirect_uri(u).is_err()) {
        return None;
    }
    Some(Client {
        secret_hash: None,
        auth_method: "none".into(),
        redirect_uris,
        grant_types,
    })
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// `n` random bytes, base64url.
fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random number generator");
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("http://127.0.0.1:4567/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:3334/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]:80/cb").is_ok());
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/cb").is_ok());
        assert!(check_redirect_uri("http://example.com/cb").is_err());
        assert!(check_redirect_uri("http://127.0.0.1/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn public_client_ids_survive_a_restart() {
        let grants = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
        let uris = vec![
            "http://127.0.0.1:4567/callback".to_owned(),
            "http://localhost:3334/oauth/callback".to_owned(),
        ];
        let id = public_client_id(&grants, &uris);
        // Another process (a restarted demo) knows it without any state.
        let fresh = DevAuthServer::new(
            DevAuthServerConfig::new("http://127.0.0.1:1", "http://127.0.0.1:2/mcp"),
            EventSink::none(),
        );
        let c = fresh.client(&id).expect("decoded");
        assert_eq!(c.redirect_uris, uris);
        assert_eq!(c.grant_types, grants);
        assert!(c.secret_hash.is_none());
        assert!(fresh.client("demo-AAAA").is_none());
        assert!(fresh.client("nope").is_none());
        let bad = format!("demo-{}", URL_SAFE_NO_PAD.encode("r http://example.com/cb"));
        assert!(fresh.client(&bad).is_none(), "non-loopback http refused");
    }

    #[test]
    fn scope_granting() {
        let s = DevAuthServer::new(
            DevAuthServerConfig::new("http://127.0.0.1:1", "http://127.0.0.1:2/mcp"),
            EventSink::none(),
        );
        assert_eq!(s.grant_scope(None), "mcp");
        assert_eq!(
            s.grant_scope(Some("mcp offline_access")),
            "mcp offline_access"
        );
        assert_eq!(s.grant_scope(Some("openid profile")), "mcp");
        assert_eq!(s.grant_scope(Some("offline_access")), "mcp offline_access");
        assert_eq!(s.grant_scope(Some("mcp mcp")), "mcp");
    }

    #[test]
    fn params() {
        assert!(parse_params("a=1&a=2").is_err());
        assert_eq!(
            with_params(
                "http://127.0.0.1:1/cb",
                &[("code", "x y"), ("iss", "http://i")]
            ),
            "http://127.0.0.1:1/cb?code=x+y&iss=http%3A%2F%2Fi"
        );
        assert_eq!(
            with_params("http://127.0.0.1:1/cb?k=v", &[("code", "c")]),
            "http://127.0.0.1:1/cb?k=v&code=c"
        );
    }
}
