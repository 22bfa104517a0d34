//! # mcp-oauth-demo
//!
//! What `mcp-oauth demo` runs, all on loopback, all in one process:
//!
//! - [`auth_server`]: a **development** authorization server (in memory, approves every
//!   request; PKCE S256 only, dynamic registration, resource indicators, JWT access
//!   tokens, rotating refresh tokens, `iss` in the authorization response). **Never use
//!   it in production.**
//! - [`mcp_server`]: an MCP server (rmcp's Streamable HTTP service, tools `echo` and
//!   `whoami`) mounted at `/mcp` behind `mcp_oauth_server::McpAuthLayer`, its protected
//!   resource metadata only at `/.well-known/oauth-protected-resource/mcp` (the root
//!   well-known URL is 404);
//! - [`run`]: the `mcp-oauth` client library (`OAuthClient` + `McpClient`, an in-memory
//!   store, a [`browser::HeadlessBrowser`]) against them, printing each step as it
//!   happens ([`narrate`]), from the events both servers and the client report
//!   ([`events`]);
//! - [`serve`]: both servers kept running for other clients, each request logged.
//!
//! It lives in its own crate so that the resource-server crate stays free of an
//! authorization server and of rmcp, and so that the CLI is the only thing that pulls
//! the demo in.

pub mod auth_server;
pub mod browser;
pub mod capture;
pub mod events;
pub mod mcp_server;
pub mod narrate;

use auth_server::{DevAuthServer, DevAuthServerConfig};
use events::{ClientEvent, Event, EventSink};
use mcp_oauth::OAuthClient;
use mcp_oauth::OAuthConfig;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{McpClient, McpClientOptions, Protocol};
use mcp_oauth::store::MemoryStore;
use mcp_oauth_server::ProtectedResource;
use narrate::{Narrator, ServeLog};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "cannot listen on {addr}: {io} (choose another port with --port / --as-port, or 0 for any)"
    )]
    Bind {
        addr: SocketAddr,
        io: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(#[from] mcp_oauth_server::ConfigError),
    #[error(transparent)]
    Client(#[from] mcp_oauth::Error),
    #[error("{0}")]
    Other(String),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, DemoError>;

/// Where the servers listen and how long tokens live.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The MCP server's port on 127.0.0.1 (0: any free port).
    pub mcp_port: u16,
    /// The authorization server's port on 127.0.0.1 (0: any free port).
    pub as_port: u16,
    pub access_token_ttl: Duration,
    /// Longest time the narrated run may take.
    pub run_timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            mcp_port: 0,
            as_port: 0,
            access_token_ttl: Duration::from_secs(3600),
            run_timeout: Duration::from_secs(30),
        }
    }
}

/// Both demo servers, running. Dropping it stops them.
pub struct DemoServers {
    /// `http://127.0.0.1:PORT/mcp`.
    pub mcp_url: String,
    /// `http://127.0.0.1:PORT`.
    pub mcp_origin: String,
    pub resource: ProtectedResource,
    pub auth: Arc<DevAuthServer>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DemoServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoServers")
            .field("mcp_url", &self.mcp_url)
            .field("issuer", &self.auth.issuer())
            .finish_non_exhaustive()
    }
}

impl Drop for DemoServers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind(port: u16) -> Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|io| DemoError::Bind { addr, io })
}

impl DemoServers {
    /// Binds both listeners and serves. Every exchange is reported to `events`.
    pub async fn start(options: &DemoOptions, events: EventSink) -> Result<DemoServers> {
        let mcp_listener = bind(options.mcp_port).await?;
        let as_listener = bind(options.as_port).await?;
        let mcp_origin = format!("http://{}", mcp_listener.local_addr()?);
        let issuer = format!("http://{}", as_listener.local_addr()?);
        let mcp_url = format!("{mcp_origin}/mcp");

        let mut config = DevAuthServerConfig::new(&issuer, &mcp_url);
        config.access_token_ttl = options.access_token_ttl;
        let auth = DevAuthServer::new(config, events.clone());
        let resource = mcp_server::protected_resource(&mcp_url, &issuer)?;
        let mcp_app = mcp_server::router(resource.clone(), &auth.jwks_uri(), events)?;
        let as_app = auth.router();
        let tasks = vec![
            tokio::spawn(async move {
                if let Err(e) = axum::serve(as_listener, as_app).await {
                    tracing::error!(error = %e, "the demo authorization server stopped");
                }
            }),
            tokio::spawn(async move {
                if let Err(e) = axum::serve(mcp_listener, mcp_app).await {
                    tracing::error!(error = %e, "the demo MCP server stopped");
                }
            }),
        ];
        Ok(DemoServers {
            mcp_url,
            mcp_origin,
            resource,
            auth,
            tasks,
        })
    }

    pub fn issuer(&self) -> &str {
        self.auth.issuer()
    }

    /// The URL named by the challenges: the path-suffixed well-known URL.
    pub fn prm_url(&self) -> &str {
        self.resource.resource_metadata_url()
    }

    /// The root well-known URL (not served: 404).
    pub fn root_prm_url(&self) -> String {
        format!("{}{}", self.mcp_origin, mcp_oauth_server::WELL_KNOWN_PRM)
    }
}

/// A warning when a proxy is configured for plain-http traffic and `NO_PROXY` does not
/// exempt 127.0.0.1: the demo's client (and the MCP server's JWKS fetch) honour the proxy
/// variables, and all of the demo's traffic is on loopback.
pub fn loopback_proxy_warning() -> Option<String> {
    let proxy = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .find(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))?;
    let exempt = ["no_proxy", "NO_PROXY"].iter().any(|k| {
        std::env::var(k).is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|e| e == "*" || e == "127.0.0.1" || e.starts_with("127.0.0."))
        })
    });
    (!exempt).then(|| {
        format!(
            "warning: {} is set and NO_PROXY does not list 127.0.0.1; the demo's loopback \
             traffic would go through that proxy. If the demo fails to connect, run it as \
             NO_PROXY=127.0.0.1,localhost mcp-oauth demo",
            proxy
        )
    })
}

/// What the narrated run's client did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub tools: Vec<String>,
    pub tool_result: String,
    pub root_probe_status: u16,
}

/// `mcp-oauth demo`: starts both servers, runs the client against them and prints each
/// step to `out` as it happens. Ends with the line naming what a root-probing client
/// would have seen.
pub async fn run(options: &DemoOptions, out: &mut (dyn Write + Send)) -> Result<RunSummary> {
    let started = Instant::now();
    if let Some(w) = loopback_proxy_warning() {
        eprintln!("{w}");
    }
    let (events, mut rx) = EventSink::channel();
    let servers = DemoServers::start(options, events.clone()).await?;
    let mut narrator = Narrator::new(&servers, narrate::style_for_stdout());
    narrator.header(out)?;

    let client = {
        let (url, events) = (servers.mcp_url.clone(), events.clone());
        let dispatch = capture::discovery_dispatch(events.clone());
        tokio::spawn(client_run(url, events).with_subscriber(dispatch))
    };
    let client = tokio::time::timeout(options.run_timeout, async {
        let mut client = client;
        loop {
            tokio::select! {
                biased;
                Some(ev) = rx.recv() => narrator.event(out, &ev)?,
                joined = &mut client => {
                    // Everything the servers reported before answering is queued now.
                    while let Ok(ev) = rx.try_recv() {
                        narrator.event(out, &ev)?;
                    }
                    return Ok::<_, DemoError>(joined);
                }
            }
        }
    })
    .await
    .map_err(|_| {
        DemoError::Other(format!(
            "the demo did not finish within {} s",
            options.run_timeout.as_secs()
        ))
    })??;
    let (tools, tool_result) =
        client.map_err(|e| DemoError::Other(format!("the demo client task failed: {e}")))??;

    // What a client that ignores resource_metadata and probes only the root sees.
    let root = servers.root_prm_url();
    let status = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| DemoError::Other(e.to_string()))?
        .get(&root)
        .send()
        .await
        .map_err(|e| DemoError::Other(format!("GET {root}: {e}")))?
        .status()
        .as_u16();
    narrator.finish(out, started.elapsed(), &root, status)?;
    Ok(RunSummary {
        tools,
        tool_result,
        root_probe_status: status,
    })
}

/// The client side of the run: the mcp-oauth library, as any application would use it.
async fn client_run(url: String, events: EventSink) -> Result<(Vec<String>, String)> {
    let http = HttpClient::new(HttpPolicy::default())?;
    let mut config = OAuthConfig::new(url.clone());
    config.client_name = "mcp-oauth demo".into();
    config.callback_timeout = Duration::from_secs(20);
    let oauth = Arc::new(OAuthClient::new(
        config,
        http.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(browser::HeadlessBrowser::new(events.clone())),
    ));
    let options = McpClientOptions {
        protocol: Protocol::Auto,
        client_name: "mcp-oauth-demo".into(),
        ..Default::default()
    };
    let mcp = McpClient::new(url, http.reqwest().clone(), options, Some(oauth));
    mcp.connect().await?;
    let server = mcp.server_info().map(|i| {
        format!(
            "{} {}",
            i["name"].as_str().unwrap_or("?"),
            i["version"].as_str().unwrap_or("")
        )
        .trim()
        .to_owned()
    });
    events.send(Event::Client(ClientEvent::Connected {
        protocol: mcp.protocol_version(),
        server,
    }));
    let tools: Vec<String> = mcp
        .list_tools()
        .await?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    events.send(Event::Client(ClientEvent::Tools(tools.clone())));
    let arguments = json!({});
    let result = mcp.call_tool("whoami", arguments.clone()).await?;
    let text = mcp_oauth::mcp::text_content(&result);
    events.send(Event::Client(ClientEvent::ToolResult {
        name: "whoami".into(),
        arguments,
        text: text.clone(),
        is_error: result.get("isError").and_then(Value::as_bool) == Some(true),
    }));
    if let Err(e) = mcp.close().await {
        tracing::debug!(error = %e, "closing the session");
    }
    Ok((tools, text))
}

/// `mcp-oauth demo --serve`: starts both servers, prints their URLs and how to try
/// them, then logs every request until `stop` resolves (Ctrl-C).
pub async fn serve(
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    if let Some(w) = loopback_proxy_warning() {
        eprintln!("{w}");
    }
    let (events, mut rx) = EventSink::channel();
    let servers = DemoServers::start(options, events).await?;
    let mut log = ServeLog::new(&servers, narrate::style_for_stdout());
    log.banner(out, options)?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(ev) = rx.recv() => log.event(out, &ev)?,
        }
    }
    writeln!(out, "Stopped.")?;
    Ok(())
}
