//! `mcp-oauth call <URL> [TOOL] [--args JSON]`

use crate::args::{Check, server_url, tool_args};
use crate::out;
use crate::settings::OAuthArgs;
use crate::ui::AnnouncingBrowser;
use clap::Args;
use mcp_oauth::OAuthClient;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{McpClient, McpClientOptions};
use mcp_oauth::store::FileStore;
use std::sync::Arc;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth call https://example.com/mcp                  # list the tools
  mcp-oauth call https://example.com/mcp echo --args '{\"text\":\"hi\"}'
  mcp-oauth call https://example.com/mcp echo --args @args.json
  jq -n '{text: \"hi\"}' | mcp-oauth call https://example.com/mcp echo --args -")]
pub struct CallArgs {
    /// The MCP server URL, e.g. https://example.com/mcp
    #[arg(value_parser = Check(server_url))]
    pub url: String,
    /// The tool to call; without it, the server's tools are listed.
    pub tool: Option<String>,
    /// The tool's arguments, a JSON object: inline, @FILE to read it from a file, or - to
    /// read it from standard input.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = Check(tool_args))]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// Print the whole JSON result instead of its text content.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

pub async fn run(args: CallArgs) -> anyhow::Result<()> {
    let arguments = serde_json::Value::Object(args.args);
    let resolved = args.oauth.resolve(&args.url)?;
    let http = HttpClient::new(HttpPolicy::default())?;
    let mut options = McpClientOptions {
        headers: resolved.headers.clone(),
        ..McpClientOptions::default()
    };
    let auth: Option<Arc<dyn mcp_oauth::mcp::RequestAuth>> = match &resolved.static_authorization {
        // A static Authorization header: no OAuth for this server.
        Some(value) => {
            let mut v = http::HeaderValue::from_str(value).map_err(|_| {
                anyhow::anyhow!(
                    "the static Authorization header has characters not allowed in a header"
                )
            })?;
            v.set_sensitive(true);
            options.headers.insert(http::header::AUTHORIZATION, v);
            None
        }
        None => {
            let store = Arc::new(FileStore::default_location()?);
            Some(Arc::new(OAuthClient::new(
                resolved.config,
                http.clone(),
                store,
                Arc::new(AnnouncingBrowser::default()),
            )))
        }
    };
    // MCP traffic goes through the OAuth client's network policy (its resolver), so that
    // the server's name resolves to one kind of address for both (mcp_oauth::netpolicy).
    let mcp_http = auth
        .as_ref()
        .and_then(|a| a.address_guard())
        .map_or_else(|| http.clone(), |g| http.with_guard(g));
    let mcp = McpClient::new(args.url.clone(), mcp_http.reqwest().clone(), options, auth);
    // A failed connection is said in a line, with the next step.
    mcp.connect()
        .await
        .map_err(|e| crate::ui::with_hint(e.into(), &args.url))?;
    let result = match &args.tool {
        None => {
            let tools = mcp.list_tools().await?;
            if args.json {
                out::line(serde_json::to_string_pretty(&tools)?)?;
            } else {
                for t in &tools {
                    let name = t.get("name").and_then(|v| v.as_str()).unwrap_or("?");
                    let desc = t.get("description").and_then(|v| v.as_str()).unwrap_or("");
                    out::line(format_args!(
                        "{name}\t{}",
                        desc.lines().next().unwrap_or("")
                    ))?;
                }
            }
            Ok(())
        }
        Some(tool) => {
            let res = mcp.call_tool(tool, arguments).await?;
            if args.json {
                out::line(serde_json::to_string_pretty(&res)?)?;
            } else {
                out::line(mcp_oauth::mcp::text_content(&res))?;
            }
            if res.get("isError").and_then(|v| v.as_bool()) == Some(true) {
                Err(anyhow::anyhow!("the tool {tool} reported an error"))
            } else {
                Ok(())
            }
        }
    };
    if let Err(e) = mcp.close().await {
        tracing::info!(error = %e, "closing the session failed");
    }
    result
}
