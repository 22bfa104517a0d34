//! `mcp-oauth proxy <URL>`: a stdio MCP server that relays to a remote one, with OAuth.
//!
//! Put it in a host's server list in place of `npx mcp-remote <url>`. stdout carries
//! protocol messages only; everything else (logs, the authorization URL) goes to stderr.

use crate::args::{Check, callback_port, ignore_tool, server};
use crate::commands::common;
use crate::headers::{parse_header, process_env};
use crate::settings::OAuthArgs;
use anyhow::Context;
use clap::{Args, ValueEnum};
use http::HeaderValue;
use mcp_oauth::config::Interaction;
use mcp_oauth::mcp::RequestAuth;
use mcp_oauth_proxy::{EndedBy, Proxy, ProxyOptions, TransportMode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(
    after_help = "Host configuration (e.g. claude_desktop_config.json):\n  {\"mcpServers\": {\"example\": {\"command\": \"mcp-oauth\", \"args\": [\"proxy\", \"https://example.com/mcp\"]}}}\n\nHeaders: --header 'X-Api-Key: ${API_KEY}' reads the value from the environment\n(keep secrets out of argv); --header-file reads 'Name: value' lines from a file."
)]
pub struct ProxyArgs {
    /// The MCP server URL, e.g. https://example.com/mcp, or its name in the configuration
    /// file ([servers.NAME] url = "…").
    #[arg(value_parser = Check(server))]
    pub url: String,
    /// The port of the loopback redirect URI, as mcp-remote takes it after the URL (the
    /// same as --redirect-port).
    #[arg(value_name = "CALLBACK_PORT", value_parser = Check(callback_port), conflicts_with_all = ["redirect_port", "redirect_uri"])]
    pub callback_port: Option<u16>,
    /// Extra HTTP header on every request, "Name: value" (repeatable). `${VAR}` in the
    /// value is replaced by the environment variable VAR.
    #[arg(
        long = "header",
        short = 'H',
        value_name = "NAME: VALUE",
        help_heading = "Proxy"
    )]
    pub headers: Vec<String>,
    /// Read extra headers from this file, one "Name: value" per line (`${VAR}` expanded;
    /// empty lines and lines starting with # are skipped).
    #[arg(long, value_name = "FILE", help_heading = "Proxy")]
    pub header_file: Option<PathBuf>,
    /// HTTP transport: auto (Streamable HTTP, falling back to HTTP+SSE on 400/404/405),
    /// http (Streamable HTTP only), sse (the deprecated 2024-11-05 HTTP+SSE transport).
    #[arg(long, value_enum, default_value_t = TransportArg::Auto, help_heading = "Proxy")]
    pub transport: TransportArg,
    /// Do not bridge a client that speaks the initialize handshake to a server that
    /// speaks only 2026-07-28 (its error is relayed instead).
    #[arg(long, help_heading = "Proxy")]
    pub no_bridge: bool,
    /// No OAuth: send requests with the static headers only.
    #[arg(long, help_heading = "Proxy")]
    pub no_auth: bool,
    /// mcp-remote's tool filter: refused, with what to do instead.
    #[arg(long, value_name = "PATTERN", hide = true, value_parser = Check(ignore_tool))]
    pub ignore_tool: Vec<String>,
    /// mcp-remote's switch for HTTP(S)_PROXY: accepted; mcp-oauth always honours
    /// HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY.
    #[arg(long, hide = true)]
    pub enable_proxy: bool,
    /// Largest message accepted in either direction, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, help_heading = "Proxy")]
    pub max_message_mib: usize,
    /// Seconds a request may go without a word from the server (counted again from each
    /// event of its response stream, so progress keeps a long tool call alive; time spent
    /// logging in does not count) before it is answered with an error (-32001) and
    /// cancelled at the server. 0: no limit.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = mcp_oauth_proxy::DEFAULT_REQUEST_TIMEOUT.as_secs(),
        help_heading = "Proxy"
    )]
    pub request_timeout: u64,
    /// At end of input, seconds that requests in flight may still take (then each gets an
    /// error).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        help_heading = "Proxy"
    )]
    pub shutdown_grace: u64,
    /// After each message, microseconds to keep polling for the next one before
    /// sleeping: saves the wake-ups that dominate a fast server's round trip (most on
    /// virtual machines), for at most that much CPU per message. 0 turns it off.
    #[arg(
        long,
        value_name = "MICROS",
        default_value_t = mcp_oauth_proxy::DEFAULT_IDLE_SPIN.as_micros() as u64,
        help_heading = "Proxy"
    )]
    pub idle_spin: u64,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    #[value(alias = "http-first", alias = "sse-first")]
    Auto,
    #[value(alias = "http-only", alias = "streamable-http")]
    Http,
    #[value(alias = "sse-only")]
    Sse,
}

pub async fn run(mut args: ProxyArgs) -> anyhow::Result<()> {
    args.url = args.oauth.server_url_of(&args.url)?;
    if let Some(port) = args.callback_port {
        args.oauth.redirect_port = Some(port);
    }
    if args.enable_proxy {
        tracing::info!("--enable-proxy: the proxy settings of the environment are always used");
    }
    let resolved = args.oauth.resolve(&args.url)?;
    // The configuration file's headers, then the flags' (the command line wins).
    let mut headers = resolved.headers.clone();
    for h in &args.headers {
        let (name, value) =
            parse_header(h, &process_env).with_context(|| format!("--header {h:?}"))?;
        headers.insert(name, value);
    }
    if let Some(file) = &args.header_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--header-file {}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = parse_header(line, &process_env)
                .with_context(|| format!("--header-file {} line {}", file.display(), n + 1))?;
            headers.insert(name, value);
        }
    }
    if let Some(a) = &resolved.static_authorization {
        let mut v = HeaderValue::from_str(a)
            .context("the static Authorization value is not a valid header value")?;
        v.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, v);
    }
    let auth: Option<Arc<dyn RequestAuth>> = if args.no_auth {
        None
    } else if headers.contains_key(http::header::AUTHORIZATION) {
        tracing::info!("a static Authorization header is set: OAuth is off for this server");
        None
    } else {
        let config = resolved.config;
        if config.interaction == Interaction::Paste {
            anyhow::bail!(
                "paste mode (--no-browser, or interaction = \"paste\") reads the redirect URL from \
                 stdin, which the proxy uses for MCP messages; use --device, or log in first with \
                 `mcp-oauth login --no-browser {}`",
                args.url
            );
        }
        let oauth = common::oauth_client(config, common::http()?, common::store()?);
        Some(Arc::new(oauth))
    };

    let options = ProxyOptions {
        transport: match args.transport {
            TransportArg::Auto => TransportMode::Auto,
            TransportArg::Http => TransportMode::StreamableHttp,
            TransportArg::Sse => TransportMode::Sse,
        },
        headers,
        max_message_bytes: args.max_message_mib.max(1).saturating_mul(1024 * 1024),
        request_timeout: (args.request_timeout > 0)
            .then(|| Duration::from_secs(args.request_timeout)),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        bridge_eras: !args.no_bridge,
        idle_spin: Duration::from_micros(args.idle_spin),
        // The host shows the user what the library said, with this command line's flags.
        error_words: crate::ui::in_cli_terms,
        ..ProxyOptions::default()
    };
    let proxy = Proxy::new(args.url.clone(), options, auth)?;
    tracing::info!(url = %args.url, "mcp-oauth proxy: relaying stdio to the server");
    // A relay is I/O-bound: one thread, no cross-thread wake-ups (measured: less CPU
    // and lower latency than the multi-threaded runtime `main` starts).
    let report = std::thread::Builder::new()
        .name("mcp-oauth-proxy".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (input, output) = mcp_oauth_proxy::stdio();
                proxy.run(input, output, shutdown_signal()).await
            })
            .map_err(anyhow::Error::from)
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the proxy thread panicked"))??;
    tracing::info!(
        ended_by = ?report.ended_by,
        lines = report.lines_in,
        http_requests = report.http_requests,
        "mcp-oauth proxy: done"
    );
    if report.ended_by == EndedBy::OutputClosed {
        tracing::info!("the client closed our stdout");
    }
    Ok(())
}

/// SIGTERM, SIGINT or SIGHUP (Ctrl-C elsewhere).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot listen for signals");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("signal received; shutting down");
}
