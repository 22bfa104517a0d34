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

// The three endpoints, one file each.
mod authorization;
mod registration;
mod token;
use authorization::*;
use registration::*;
use token::*;

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
mod tests;
