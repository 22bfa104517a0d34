//! `mcp-oauth call <URL> [TOOL] [--args JSON]`

use super::common;
use crate::args::{Check, server, tool_args};
use crate::out;
use crate::progress;
use crate::settings::OAuthArgs;
use crate::ui::AnnouncingBrowser;
use clap::Args;
use mcp_oauth::OAuthClient;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{McpClient, McpClientOptions};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth call https://example.com/mcp                  # list the tools
  mcp-oauth call https://example.com/mcp echo --args '{\"text\":\"hi\"}'
  mcp-oauth call https://example.com/mcp echo --args @args.json
  jq -n '{text: \"hi\"}' | mcp-oauth call https://example.com/mcp echo --args -")]
pub struct CallArgs {
    /// The MCP server URL, e.g. https://example.com/mcp, or its name in the configuration
    /// file ([servers.NAME] url = "…").
    #[arg(value_parser = Check(server))]
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

/// How long one MCP request (a tool call included) may take: the limit that the progress
/// line and a time-out error state.
const MCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(mut args: CallArgs) -> anyhow::Result<()> {
    args.url = args.oauth.server_url_of(&args.url)?;
    let arguments = serde_json::Value::Object(args.args);
    let resolved = args.oauth.resolve(&args.url)?;
    // OAuth requests keep their own limit (30 s each). The MCP requests get a client
    // whose overall limit is longer than theirs, so that theirs is the one that applies
    // (and the one their error states), not the HTTP client's.
    let http = HttpClient::new(HttpPolicy::default())?;
    let mcp_http = HttpClient::new(HttpPolicy {
        request_timeout: MCP_REQUEST_TIMEOUT + Duration::from_secs(5),
        ..HttpPolicy::default()
    })?;
    let mut options = McpClientOptions {
        headers: resolved.headers.clone(),
        request_timeout: MCP_REQUEST_TIMEOUT,
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
            let store = super::common::store()?;
            let browser = AnnouncingBrowser::new(resolved.config.callback_timeout);
            Some(Arc::new(OAuthClient::new(
                resolved.config,
                http.clone(),
                store.shared(),
                Arc::new(browser),
            )))
        }
    };
    // MCP traffic goes through the OAuth client's network policy (its resolver), so that
    // the server's name resolves to one kind of address for both (mcp_oauth::netpolicy).
    let mcp_http = auth
        .as_ref()
        .and_then(|a| a.address_guard())
        .map_or_else(|| mcp_http.clone(), |g| mcp_http.with_guard(g));
    let mcp = McpClient::new(args.url.clone(), mcp_http.reqwest().clone(), options, auth);
    let waiting = || {
        progress::network(
            format!(
                "Waiting for the MCP server at {}",
                progress::host_of(&args.url)
            ),
            Some(MCP_REQUEST_TIMEOUT),
        )
    };
    // A failed connection is said in a line, with the next step.
    let connected = {
        let _wait = waiting();
        mcp.connect().await
    };
    if let Err(e) = connected {
        return Err(common::mcp_failure(e, &http, &args.url).await);
    }
    let result = match &args.tool {
        None => {
            let tools = {
                let _wait = waiting();
                mcp.list_tools().await?
            };
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
            let res = {
                let _wait = waiting();
                mcp.call_tool(tool, arguments).await?
            };
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
