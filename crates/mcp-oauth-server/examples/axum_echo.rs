//! A minimal MCP server in plain axum (JSON responses, stateless), protected by
//! `McpAuthLayer`, at http://127.0.0.1:8090/mcp.
//!
//! ```sh
//! cargo run -p mcp-oauth-server --example axum_echo
//! ```
//!
//! By default an in-process dev issuer signs tokens (one is printed, with curl lines to
//! try). To use a real authorization server instead:
//!
//! ```sh
//! MCP_ISSUER=https://auth.example.com [MCP_JWKS_URI=...] cargo run ... --example axum_echo
//! ```
//!
//! Tools: `echo` (scope `mcp`), `whoami` (scope `mcp`), `shout` (scope `mcp` and `echo:loud`).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::Algorithm;
use mcp_oauth_server::dev::DevIssuer;
use mcp_oauth_server::{Claims, JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mcp_oauth_server=debug,info".into()),
        )
        .init();
    let addr = std::env::var("MCP_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let resource_url = format!("http://{}/mcp", listener.local_addr()?);

    // The authorization server: a real one from the environment, or the dev issuer.
    let (issuer_url, jwks_uri, dev) = match std::env::var("MCP_ISSUER") {
        Ok(iss) => (iss, std::env::var("MCP_JWKS_URI").ok(), None),
        Err(_) => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let dev = DevIssuer::new(format!("http://{}", l.local_addr()?), Algorithm::ES256);
            tokio::spawn(axum::serve(l, dev.router()).into_future());
            (dev.issuer().to_owned(), Some(dev.jwks_uri()), Some(dev))
        }
    };

    let resource = ProtectedResource::builder(&resource_url)
        .authorization_server(&issuer_url)
        .scopes_supported(["mcp"])
        .required_scopes(["mcp"])
        .resource_name("axum echo")
        .build()?;
    let mut validator = JwtValidator::builder(&resource);
    if let Some(uri) = jwks_uri {
        validator = validator.jwks_uri(uri);
    }
    let auth = McpAuthLayer::new(resource.clone(), validator.build()?)
        .with_scope_policy(ScopePolicy::new().tool("shout", ["echo:loud"]));

    let app = Router::new()
        .route(
            "/mcp",
            post(mcp).get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .layer(auth.clone())
        .merge(auth.metadata_router());

    println!("MCP endpoint:  {resource_url}");
    for path in resource.metadata_paths() {
        println!("metadata:      http://{}{path}", listener.local_addr()?);
    }
    if let Some(dev) = &dev {
        let token = dev
            .token(&resource_url)
            .subject("demo-user")
            .client_id("demo-client")
            .scopes(["mcp"])
            .sign();
        println!("issuer (dev):  {}", dev.issuer());
        println!(
            "\ntry:\n  curl -i {resource_url} -H 'content-type: application/json' \
                  -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}'"
        );
        println!(
            "  curl -s {resource_url} -H 'authorization: Bearer {token}' \
                  -H 'content-type: application/json' \
                  -d '{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\"}}}}'"
        );
        println!("  (tools/call shout answers 403 insufficient_scope with this token)");
    }
    axum::serve(listener, app).await?;
    Ok(())
}

/// Just enough MCP for `initialize`, `tools/list` and `tools/call` over JSON responses.
async fn mcp(claims: Claims, axum::Json(msg): axum::Json<Value>) -> Response {
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return StatusCode::ACCEPTED.into_response(); // a response or junk: nothing to say
    };
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response(); // notification
    };
    let result = match method {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "axum-echo", "version": env!("CARGO_PKG_VERSION")},
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [
            {"name": "echo", "description": "Echoes `text`",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": "shout", "description": "Echoes `text` loudly (scope echo:loud)",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": "whoami", "description": "The verified token claims",
             "inputSchema": {"type": "object"}},
        ]}),
        "tools/call" => {
            let text = msg["params"]["arguments"]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let out = match msg["params"]["name"].as_str() {
                Some("echo") => text,
                Some("shout") => text.to_uppercase(),
                Some("whoami") => format!(
                    "sub={:?} client_id={:?} scopes={:?}",
                    claims.sub(),
                    claims.client_id(),
                    claims.scopes()
                ),
                _ => {
                    return axum::Json(json!({"jsonrpc": "2.0", "id": id,
                        "error": {"code": -32602, "message": "unknown tool"}}))
                    .into_response();
                }
            };
            json!({"content": [{"type": "text", "text": out}]})
        }
        _ => {
            return axum::Json(json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "method not found"}}))
            .into_response();
        }
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}
