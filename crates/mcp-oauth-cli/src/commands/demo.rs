//! `mcp-oauth demo [--serve] [--port N] [--as-port N]`

use clap::Args;
use mcp_oauth_demo::DemoOptions;
use std::time::Duration;

/// The MCP server's port with --serve when --port is not given (the seed URL).
const SERVE_PORT: u16 = 8888;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  mcp-oauth demo\n  mcp-oauth demo --serve\n  mcp-oauth demo --serve --port 0\n\n\
The authorization server is for development only: it keeps everything in memory and approves \
every authorization request without asking. Both servers listen on 127.0.0.1 only."
)]
pub struct DemoArgs {
    /// Keep both servers running (until Ctrl-C) and print their URLs, to try other clients
    /// against them (mcp-remote, the TypeScript SDK, an IDE, `mcp-oauth call`).
    #[arg(long)]
    pub serve: bool,
    /// The MCP server's port on 127.0.0.1; 0 picks a free one. Default: 8888 with --serve,
    /// else a free one.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// The authorization server's port on 127.0.0.1; 0 picks a free one. Default: the MCP
    /// server's port + 1 when that is fixed, else a free one.
    #[arg(long, value_name = "PORT")]
    pub as_port: Option<u16>,
    /// Lifetime of the access tokens, in seconds (short ones show refreshes with --serve).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub token_ttl: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mcp_port = args.port.unwrap_or(if args.serve { SERVE_PORT } else { 0 });
    let as_port = args.as_port.unwrap_or(if mcp_port == 0 {
        0
    } else {
        mcp_port.saturating_add(1)
    });
    let options = DemoOptions {
        mcp_port,
        as_port,
        access_token_ttl: Duration::from_secs(args.token_ttl),
        ..DemoOptions::default()
    };
    let mut out = std::io::stdout();
    if args.serve {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        mcp_oauth_demo::serve(&options, &mut out, stop).await?;
    } else {
        mcp_oauth_demo::run(&options, &mut out).await?;
    }
    Ok(())
}
