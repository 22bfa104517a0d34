//! An rmcp Streamable HTTP server protected by `McpAuthLayer`, at
//! http://127.0.0.1:8091/mcp.
//!
//! ```sh
//! cargo run -p mcp-oauth-server --example rmcp_server
//! ```
//!
//! By default an in-process dev issuer signs tokens (one is printed). Set
//! `MCP_ISSUER` (and optionally `MCP_JWKS_URI`) to use a real authorization server.
//!
//! Tools: `echo` (scope `mcp`), `whoami` (reads the verified claims from the request
//! parts rmcp hands to tools), `reset` (needs `mcp:admin` too, from the scope policy).

use jsonwebtoken::Algorithm;
use mcp_oauth_server::dev::DevIssuer;
use mcp_oauth_server::{Claims, JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoRequest {
    /// What to echo.
    text: String,
}

#[derive(Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Echoes `text`")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        text
    }

    #[tool(description = "Who the access token says you are")]
    fn whoami(&self, Extension(parts): Extension<http::request::Parts>) -> String {
        // rmcp puts the HTTP request parts in the context; the layer put the claims there.
        // JSON text, as the interop matrix's servers answer (tests/interop/CONTRACT.md).
        match parts.extensions.get::<Claims>() {
            Some(c) => serde_json::json!({
                "sub": c.sub(),
                "client_id": c.client_id(),
                "scope": c.scopes().join(" "),
                "aud": c.audience(),
            })
            .to_string(),
            None => "no claims (is the layer installed?)".into(),
        }
    }

    #[tool(description = "Pretends to reset everything (needs mcp:admin)")]
    fn reset(&self) -> String {
        "reset done".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("An OAuth-protected echo server")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mcp_oauth_server=debug,info".into()),
        )
        .init();
    let addr = std::env::var("MCP_ADDR").unwrap_or_else(|_| "127.0.0.1:8091".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let resource_url = format!("http://{local}/mcp");

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
        .resource_name("rmcp echo")
        .build()?;
    let mut validator = JwtValidator::builder(&resource);
    if let Some(uri) = jwks_uri {
        validator = validator.jwks_uri(uri);
    }
    let auth = McpAuthLayer::new(resource.clone(), validator.build()?)
        .with_scope_policy(ScopePolicy::new().tool("reset", ["mcp:admin"]));

    let mcp = StreamableHttpService::new(
        || Ok(Echo::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    // The layer goes outside `nest_service`, so that it sees the full path (and answers
    // the well-known paths); `metadata_router` is merged for clarity, and would be
    // needed if the layer wrapped the rmcp service alone.
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(auth.clone())
        .merge(auth.metadata_router());

    println!("MCP endpoint:  {resource_url}");
    for path in resource.metadata_paths() {
        println!("metadata:      http://{local}{path}");
    }
    if let Some(dev) = &dev {
        let token = dev
            .token(&resource_url)
            .subject("demo-user")
            .client_id("demo-client")
            .scopes(["mcp"])
            .sign();
        println!("issuer (dev):  {}", dev.issuer());
        println!("token (mcp):   {token}");
    }
    axum::serve(listener, app).await?;
    Ok(())
}
