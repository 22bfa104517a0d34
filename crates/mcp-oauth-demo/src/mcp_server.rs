//! The demo MCP server: rmcp's Streamable HTTP service with two tools, `echo` and
//! `whoami`, mounted at `/mcp` behind [`McpAuthLayer`], exactly like the issue's seed:
//!
//! - an unauthenticated request gets `401` with `WWW-Authenticate: Bearer
//!   resource_metadata="http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp",
//!   scope="mcp"` (no `error="invalid_token"`: no token was presented, RFC 6750 §3.1);
//! - the Protected Resource Metadata lives only at that path-suffixed URL; the root
//!   `/.well-known/oauth-protected-resource` is `404` (`serve_root_metadata(false)`);
//! - tokens are JWTs from the development authorization server, checked against its JWKS
//!   (signature, `iss`, `aud` = the MCP URL, `exp`) and for the scope `mcp`.
//!
//! CORS is open (`*`), so that browser-based clients can connect directly.
//!
//! Every exchange is reported to an [`EventSink`] (method, path, JSON-RPC method, the
//! credentials redacted, status, challenge, session).

use crate::events::{
    Detail, Event, EventSink, HttpEvent, McpDetail, Side, redact, redact_credentials, redact_url,
    user_agent_product,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use mcp_oauth_server::{Claims, ConfigError, JwtValidator, McpAuthLayer, ProtectedResource};
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};

/// The scope every request needs (the challenge's `scope`, the PRM's `scopes_supported`).
pub const MCP_SCOPE: &str = "mcp";

/// Largest request body the event recorder reads to name the JSON-RPC method.
const MAX_RECORDED_BODY: usize = 4 * 1024 * 1024;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoRequest {
    /// The text to send back.
    text: String,
}

/// The tools.
#[derive(Clone)]
struct DemoTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DemoTools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Sends `text` back")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        text
    }

    #[tool(
        description = "Who the access token says you are: its subject, client and scopes (JSON)"
    )]
    fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        // rmcp hands tools the HTTP request parts; McpAuthLayer put the verified claims
        // there (and removed the token itself).
        match parts.extensions.get::<Claims>() {
            Some(c) => json!({
                "sub": c.sub(),
                "client_id": c.client_id(),
                "scope": c.scopes().join(" "),
                "aud": c.audience(),
                "iss": c.issuer(),
            })
            .to_string(),
            None => "no claims (the auth layer is not installed?)".into(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-oauth-demo",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "The mcp-oauth demo server: OAuth-protected (scope mcp), tools echo and whoami.",
            )
    }
}

/// The protected resource of an MCP server at `resource_url` (`http://HOST:PORT/mcp`)
/// whose tokens come from `issuer`: PRM only at the path-suffixed URL.
pub fn protected_resource(
    resource_url: &str,
    issuer: &str,
) -> Result<ProtectedResource, ConfigError> {
    ProtectedResource::builder(resource_url)
        .authorization_server(issuer)
        .scopes_supported([MCP_SCOPE])
        .required_scopes([MCP_SCOPE])
        .resource_name("mcp-oauth demo")
        .serve_root_metadata(false)
        .build()
}

/// The demo MCP server's routes: `/mcp` (rmcp) behind the auth layer, the metadata at
/// its path-suffixed well-known URL, every exchange reported to `events`.
pub fn router(
    resource: ProtectedResource,
    jwks_uri: &str,
    events: EventSink,
) -> Result<Router, ConfigError> {
    let validator = JwtValidator::builder(&resource)
        .jwks_uri(jwks_uri)
        .build()?;
    let auth = McpAuthLayer::new(resource, validator);
    let mcp = StreamableHttpService::new(
        || Ok(DemoTools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    // The layer protects the MCP endpoint only (`route_layer`); the metadata router, next
    // to it, serves the path-suffixed document. Every other path, the root well-known URL
    // included, is the router's plain 404 (the layer would challenge it: only the
    // documents it serves skip authentication).
    Ok(Router::new()
        .nest_service("/mcp", mcp)
        .route_layer(auth.clone())
        .merge(auth.metadata_router())
        .layer(middleware::from_fn(cors))
        .layer(middleware::from_fn_with_state(events, record)))
}

/// CORS for browser-based MCP clients (the MCP Inspector connecting directly): rmcp
/// answers none, and the auth layer lets preflights through (they never carry
/// credentials). The metadata's own CORS headers (from the layer) are kept.
async fn cors(req: Request, next: Next) -> Response {
    const EXPOSE: &str = "mcp-session-id, mcp-protocol-version, www-authenticate";
    if req.method() == Method::OPTIONS && !req.uri().path().starts_with("/.well-known/") {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, DELETE, OPTIONS",
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, accept, last-event-id, mcp-session-id, \
                     mcp-protocol-version, mcp-method, mcp-name",
                ),
                (header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE),
                (header::ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            http::HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            http::HeaderValue::from_static(EXPOSE),
        );
    }
    resp
}

/// Reports every exchange: reads (and puts back) a POST body to name the JSON-RPC method.
async fn record(State(events): State<EventSink>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(redact_url).unwrap_or_default();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(user_agent_product);
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| redact_credentials(v.to_str().unwrap_or("(not text)")));
    let request_session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(short_session);
    let (req, rpc) = if method == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
            }
        };
        let rpc = rpc_methods(&bytes);
        (Request::from_parts(parts, Body::from(bytes)), rpc)
    } else {
        (req, Vec::new())
    };
    let resp = next.run(req).await;
    let headers = resp.headers();
    let www_authenticate = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(short_session)
        .or(request_session);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned());
    events.send(Event::Http(Box::new(HttpEvent {
        side: Side::Mcp,
        method: method.to_string(),
        path,
        query,
        status: resp.status().as_u16(),
        user_agent,
        detail: Detail::Mcp(McpDetail {
            rpc,
            credentials,
            www_authenticate,
            session,
            content_type,
        }),
    })));
    resp
}

fn short_session(s: &str) -> String {
    if s.len() > 12 {
        redact(s)
    } else {
        s.to_owned()
    }
}

/// `method` of each JSON-RPC message in the body (`tools/call NAME` for tool calls,
/// `response` for a client's response).
fn rpc_methods(body: &[u8]) -> Vec<String> {
    fn one(v: &Value) -> String {
        match v.get("method").and_then(Value::as_str) {
            Some("tools/call") => match v.pointer("/params/name").and_then(Value::as_str) {
                Some(name) => format!("tools/call {name}"),
                None => "tools/call".into(),
            },
            Some(m) => m.to_owned(),
            None => "response".into(),
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) => a.iter().map(one).collect(),
        Ok(v @ Value::Object(_)) => vec![one(&v)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names() {
        assert_eq!(
            rpc_methods(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#
            ),
            ["tools/call echo"]
        );
        assert_eq!(
            rpc_methods(br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"result":{}}]"#),
            ["notifications/initialized", "response"]
        );
        assert!(rpc_methods(b"nope").is_empty());
    }
}
