//! An [rmcp](https://docs.rs/rmcp) client whose requests the mcp-oauth library authorizes
//! (`mcp_oauth::rmcp_transport`): it connects to an MCP server, logs in through the browser
//! when the server asks for it (discovery, registration, PKCE, the loopback redirect),
//! lists the tools and calls one. Logins are kept in the same store as the `mcp-oauth` CLI's
//! (files), so a second run reuses the first one's, and refreshes it when it expires.
//!
//! Against the demo servers, in two terminals:
//!
//! ```sh
//! cargo run -- demo --serve                # MCP server http://127.0.0.1:8888/mcp
//! cargo run -p mcp-oauth --features rmcp --example rmcp_client
//! ```
//!
//! The demo's authorization server approves every request without asking, so the browser
//! tab that opens comes straight back ("you can close this tab"). Without a browser (SSH,
//! a container), open the URL the example prints by hand on the same machine.
//!
//! Arguments: `[URL] [TOOL] [ARGUMENTS]`, by default `http://127.0.0.1:8888/mcp whoami {}`;
//! `RUST_LOG=mcp_oauth=info` shows each step of the authorization. For example:
//!
//! ```sh
//! cargo run -p mcp-oauth --features rmcp --example rmcp_client -- \
//!     http://127.0.0.1:8888/mcp echo '{"text": "hello"}'
//! ```

use mcp_oauth::authorize::browser::SystemBrowser;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::rmcp_transport::OAuthStreamableHttpClient;
use mcp_oauth::store::FileStore;
use mcp_oauth::{OAuthClient, OAuthConfig};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use std::sync::Arc;

/// Where `mcp-oauth demo --serve` serves its MCP server by default.
const DEMO_URL: &str = "http://127.0.0.1:8888/mcp";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| DEMO_URL.to_string());
    let tool = args.next().unwrap_or_else(|| "whoami".to_string());
    let arguments: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&args.next().unwrap_or_else(|| "{}".to_string()))?;

    // The mcp-oauth part: the OAuth client of this one server, and rmcp's transport.
    let mut config = OAuthConfig::new(&url);
    config.client_name = "mcp-oauth rmcp example".into();
    let oauth = OAuthClient::new(
        config,
        HttpClient::new(HttpPolicy::default())?,
        Arc::new(FileStore::default_location()?),
        Arc::new(SystemBrowser),
    );
    let transport = OAuthStreamableHttpClient::new(oauth)?.into_transport();

    // The rest is plain rmcp.
    let client = ().serve(transport).await?;
    if let Some(info) = client.peer_info() {
        let server = info.server_info.as_ref();
        println!(
            "connected to {} {} (protocol {})",
            server.map_or("?", |s| s.name.as_str()),
            server.map_or("", |s| s.version.as_str()),
            info.protocol_version
        );
    }
    let tools = client.list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    println!("tools: {}", names.join(", "));

    let result = client
        .call_tool(CallToolRequestParams::new(tool.clone()).with_arguments(arguments))
        .await?;
    for content in &result.content {
        match content.as_text() {
            Some(text) => println!("{tool} → {}", text.text),
            None => println!("{tool} → {}", serde_json::to_string(content)?),
        }
    }
    client.cancel().await?;
    Ok(())
}
