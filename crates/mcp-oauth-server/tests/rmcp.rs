//! The layer in front of rmcp's Streamable HTTP service: challenges, per-tool scopes,
//! and verified claims reaching a tool through the request parts rmcp hands over.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use mcp_oauth_server::{Claims, JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

#[derive(Clone)]
struct Who {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Who {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "The verified subject and whether the token reached the tool")]
    fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        let sub = parts
            .extensions
            .get::<Claims>()
            .and_then(|c| c.sub().map(str::to_owned));
        let leaked = parts.headers.contains_key(http::header::AUTHORIZATION);
        format!("sub={} leaked={leaked}", sub.as_deref().unwrap_or("-"))
    }

    #[tool(description = "Needs admin")]
    fn reset(&self) -> String {
        "reset".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Who {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// The JSON-RPC message carried by an SSE or JSON response body.
fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
}

#[tokio::test]
async fn rmcp_streamable_http_behind_the_layer() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (l, addr) = bind().await;
    let resource_url = format!("http://{addr}/mcp");
    let resource = ProtectedResource::builder(&resource_url)
        .authorization_server(issuer.issuer())
        .required_scopes(["mcp"])
        .build()
        .unwrap();
    let validator = JwtValidator::builder(&resource)
        .jwks_uri(issuer.jwks_uri())
        .build()
        .unwrap();
    let auth = McpAuthLayer::new(resource, validator)
        .with_scope_policy(ScopePolicy::new().tool("reset", ["admin"]));
    let mcp = StreamableHttpService::new(
        || Ok(Who::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(auth.clone())
        .merge(auth.metadata_router());
    serve(l, app);

    let c = client();
    let post = |token: Option<&str>, session: Option<&str>, body: Value| {
        let mut req = c
            .post(&resource_url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-06-18");
        }
        req.send()
    };

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let resp = post(None, None, init.clone()).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        www_authenticate(&resp),
        format!(
            r#"Bearer resource_metadata="http://{addr}/.well-known/oauth-protected-resource/mcp", scope="mcp""#
        )
    );
    let resp = c
        .get(format!(
            "http://{addr}/.well-known/oauth-protected-resource/mcp"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let token = issuer
        .token(&resource_url)
        .subject("dana")
        .scopes(["mcp"])
        .sign();
    let resp = post(Some(&token), None, init).await.unwrap();
    assert_eq!(resp.status(), 200);
    let session = resp
        .headers()
        .get("mcp-session-id")
        .expect("a session")
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.text().await.unwrap();
    let resp = post(
        Some(&token),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();
    assert!(resp.status().is_success());

    let resp = post(
        Some(&token),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "whoami", "arguments": {}}}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let msg = message(&resp.text().await.unwrap());
    assert_eq!(
        msg["result"]["content"][0]["text"], "sub=dana leaked=false",
        "{msg}"
    );

    let resp = post(
        Some(&token),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "reset", "arguments": {}}}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(www_authenticate(&resp).contains(r#"scope="mcp admin", error="insufficient_scope""#));
}
