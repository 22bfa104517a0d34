//! `mcp-oauth-bench`: three ways to reach the same loopback MCP echo server, measured in
//! one run.
//!
//! 1. **direct**: this process POSTs Streamable HTTP itself (one keep-alive client);
//! 2. **mcp-oauth proxy**: `mcp-oauth proxy <url>` launched as a stdio server;
//! 3. **mcp-remote**: `node mcp-remote/dist/proxy.js <url>` (the npm package pinned in
//!    tests/node/package.json), launched the same way.
//!
//! The server (hyper, in a process of its own as real servers are: `mcp-oauth-bench
//! serve`; `--server in-process` runs it inside the benchmark process instead, where
//! the direct client and the server can hand requests to each other on one thread,
//! which no deployment has) is an OAuth-protected, session-based (2025-11-25) MCP server with one `echo` tool answering `application/json`; a minimal authorization
//! server (metadata, registration, an authorization endpoint that approves at once, a
//! token endpoint) runs next to it. Both proxies log in once through the real OAuth flow
//! (with `tests/browser.sh` as the browser) before anything is measured, so every
//! measurement starts with a valid stored token.
//!
//! Measured per way: cold start (spawn → `initialize` reply; median of N) and the HTTP
//! requests the server saw before that reply; p50/p99 latency of sequential `tools/call`s
//! with a small and a 100 KB payload; throughput with 16 requests in flight; for the two
//! proxies, peak RSS (VmHWM) and CPU time (utime + stime) per 1000 calls. Printed as a
//! Markdown table with ratios, plus a JSON summary (`--json FILE`).
//!
//! Run `bench/run` (builds what is needed), or see `--help`.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

const USAGE: &str =
    "usage: mcp-oauth-bench [--mcp-oauth BIN] [--node BIN] [--mcp-remote JS] [--browser SH]
                       [--cold N] [--small N] [--large N] [--throughput N] [--json FILE]
                       [--proxy-arg ARG]... [--server process|in-process]
                       [--skip-mcp-remote]

Defaults are relative to the repository root (the current directory):
  --mcp-oauth   target/release/mcp-oauth
  --node        tests/node/node_modules/.bin/node
  --mcp-remote  tests/node/node_modules/mcp-remote/dist/proxy.js
  --browser     tests/browser.sh
  --cold 7  --small 1000  --large 200  --throughput 40000
--server process (the default) runs the echo server in a child process; in-process runs
it inside the benchmark (the direct client then shares its threads).
--proxy-arg passes one more argument to `mcp-oauth proxy` (e.g. --proxy-arg=-v).
--skip-mcp-remote measures direct and mcp-oauth only (quick A/B runs; the targets that
compare with mcp-remote are then not judged).";

struct Args {
    mcp_oauth: PathBuf,
    node: PathBuf,
    mcp_remote: PathBuf,
    browser: PathBuf,
    cold: usize,
    small: usize,
    large: usize,
    throughput: usize,
    json: Option<PathBuf>,
    proxy_args: Vec<String>,
    in_process_server: bool,
    skip_mcp_remote: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        mcp_oauth: "target/release/mcp-oauth".into(),
        node: "tests/node/node_modules/.bin/node".into(),
        mcp_remote: "tests/node/node_modules/mcp-remote/dist/proxy.js".into(),
        browser: "tests/browser.sh".into(),
        cold: 7,
        small: 1000,
        large: 200,
        // Ten bursts of 4000 calls (about 0.15 s each through a proxy). Bursts of 400
        // (the old default) last about 15 ms, where ramp-up, drain and waking idle
        // processes weigh: one build measured 0.51x and 0.72x direct in two runs minutes apart.
        throughput: 40000,
        json: None,
        proxy_args: Vec::new(),
        in_process_server: false,
        skip_mcp_remote: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--skip-mcp-remote" {
            a.skip_mcp_remote = true;
            continue;
        }
        if let Some(arg) = flag.strip_prefix("--proxy-arg=") {
            a.proxy_args.push(arg.to_string());
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
        let n = || {
            value
                .parse::<usize>()
                .map_err(|_| anyhow!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--mcp-oauth" => a.mcp_oauth = value.into(),
            "--node" => a.node = value.into(),
            "--mcp-remote" => a.mcp_remote = value.into(),
            "--browser" => a.browser = value.into(),
            "--cold" => a.cold = n()?.max(1),
            "--small" => a.small = n()?.max(10),
            "--large" => a.large = n()?.max(10),
            "--throughput" => a.throughput = n()?.max(16),
            "--json" => a.json = Some(value.into()),
            "--proxy-arg" => a.proxy_args.push(value),
            "--server" => {
                a.in_process_server = match value.as_str() {
                    "process" => false,
                    "in-process" => true,
                    _ => bail!("--server: process or in-process\n{USAGE}"),
                }
            }
            _ => bail!("unknown flag {flag}\n{USAGE}"),
        }
    }
    for p in [&a.mcp_oauth, &a.node, &a.mcp_remote, &a.browser] {
        if !p.exists() {
            bail!(
                "{} does not exist (build with `cargo build --release -p mcp-oauth-cli`, install the node deps with scripts/bootstrap)",
                p.display()
            );
        }
    }
    a.mcp_oauth = a.mcp_oauth.canonicalize()?;
    a.node = a.node.canonicalize()?;
    a.mcp_remote = a.mcp_remote.canonicalize()?;
    a.browser = a.browser.canonicalize()?;
    Ok(a)
}

// -------------------------------------------------------------------------------------
// The servers
// -------------------------------------------------------------------------------------

#[derive(Default)]
struct State {
    tokens: Mutex<HashSet<String>>,
    sessions: Mutex<HashSet<String>>,
    next: AtomicU64,
    /// Every HTTP request to the MCP server's origin (MCP endpoint and well-known URLs).
    mcp_requests: AtomicU64,
    /// Requests to the authorization server.
    as_requests: AtomicU64,
    mcp_url: OnceLock<String>,
    issuer: OnceLock<String>,
}

type Resp = hyper::Response<Full<Bytes>>;

fn resp(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Resp {
    let mut b = hyper::Response::builder().status(status);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Full::new(body.into())).expect("response")
}

fn json_resp(status: u16, v: &Value) -> Resp {
    resp(status, Some("application/json"), v.to_string())
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, mcp: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(if mcp {
                        mcp_server(&state, req).await
                    } else {
                        auth_server(&state, req).await
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn mcp_server(state: &State, req: hyper::Request<Incoming>) -> Resp {
    state.mcp_requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let mcp_url = state.mcp_url.get().expect("mcp url");
    let origin = mcp_url.trim_end_matches("/mcp");
    if path.starts_with("/.well-known/oauth-protected-resource") {
        return json_resp(
            200,
            &json!({
                "resource": mcp_url,
                "authorization_servers": [state.issuer.get().expect("issuer")],
                "scopes_supported": ["mcp"],
                "bearer_methods_supported": ["header"],
            }),
        );
    }
    if path != "/mcp" {
        return resp(404, None, "");
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if !token.is_some_and(|t| state.tokens.lock().unwrap().contains(&t)) {
        let mut r = resp(401, None, "");
        r.headers_mut().insert(
            "www-authenticate",
            format!(
                r#"Bearer resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp""#
            )
            .parse()
            .unwrap(),
        );
        return r;
    }
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match req.method().as_str() {
        "GET" => return resp(405, None, ""),
        "DELETE" => {
            if let Some(s) = session {
                state.sessions.lock().unwrap().remove(&s);
            }
            return resp(200, None, "");
        }
        "POST" => {}
        _ => return resp(405, None, ""),
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return json_resp(
            400,
            &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}),
        );
    };
    let method = msg["method"].as_str().unwrap_or("");
    let id = msg.get("id").cloned();
    if method == "initialize" {
        let s = format!("session-{}", state.next.fetch_add(1, Ordering::Relaxed));
        state.sessions.lock().unwrap().insert(s.clone());
        let requested = msg["params"]["protocolVersion"]
            .as_str()
            .unwrap_or("2025-11-25");
        let version =
            if ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"].contains(&requested) {
                requested
            } else {
                "2025-11-25"
            };
        let mut r = json_resp(
            200,
            &json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-echo", "version": "1"},
            }}),
        );
        r.headers_mut().insert("mcp-session-id", s.parse().unwrap());
        return r;
    }
    match &session {
        None => {
            return json_resp(
                400,
                &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "missing session"}}),
            );
        }
        Some(s) if !state.sessions.lock().unwrap().contains(s) => return resp(404, None, ""),
        _ => {}
    }
    let Some(id) = id else {
        return resp(202, None, "");
    };
    if method.is_empty() {
        return resp(202, None, ""); // a response from the client
    }
    let result = match method {
        "tools/list" => {
            json!({"tools": [{"name": "echo", "description": "Echo the text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]})
        }
        "tools/call" => {
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}]})
        }
        "ping" | "resources/list" | "prompts/list" => match method {
            "resources/list" => json!({"resources": []}),
            "prompts/list" => json!({"prompts": []}),
            _ => json!({}),
        },
        _ => {
            return json_resp(
                200,
                &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
            );
        }
    };
    json_resp(200, &json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn auth_server(state: &State, req: hyper::Request<Incoming>) -> Resp {
    state.as_requests.fetch_add(1, Ordering::Relaxed);
    let issuer = state.issuer.get().expect("issuer").clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match (method.as_str(), path.as_str()) {
        // The benchmark's controls when the server runs in its own process.
        ("GET", "/_bench/mcp-requests") => json_resp(
            200,
            &json!({"n": state.mcp_requests.load(Ordering::SeqCst)}),
        ),
        ("POST", "/_bench/token") => {
            let t = String::from_utf8_lossy(&body).into_owned();
            state.tokens.lock().unwrap().insert(t);
            resp(204, None, "")
        }
        (
            "GET",
            "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration",
        ) => json_resp(
            200,
            &json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "registration_endpoint": format!("{issuer}/register"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["mcp"],
                "authorization_response_iss_parameter_supported": true,
            }),
        ),
        ("POST", "/register") => {
            let reg: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let n = state.next.fetch_add(1, Ordering::Relaxed);
            let mut out = reg.clone();
            out["client_id"] = json!(format!("bench-client-{n}"));
            out["client_id_issued_at"] = json!(0);
            out["token_endpoint_auth_method"] = json!("none");
            json_resp(201, &out)
        }
        ("GET", "/authorize") => {
            let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let Some(redirect) = params.get("redirect_uri") else {
                return resp(400, None, "no redirect_uri");
            };
            let mut to = url::Url::parse(redirect).expect("redirect_uri");
            {
                let mut q = to.query_pairs_mut();
                q.append_pair(
                    "code",
                    &format!("code-{}", state.next.fetch_add(1, Ordering::Relaxed)),
                );
                if let Some(s) = params.get("state") {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", &issuer);
            }
            let mut r = resp(302, None, "");
            r.headers_mut()
                .insert("location", to.as_str().parse().unwrap());
            r
        }
        ("POST", "/token") => {
            let n = state.next.fetch_add(1, Ordering::Relaxed);
            let token = format!("at-{n}");
            state.tokens.lock().unwrap().insert(token.clone());
            json_resp(
                200,
                &json!({"access_token": token, "token_type": "Bearer", "expires_in": 86400, "refresh_token": format!("rt-{n}"), "scope": "mcp"}),
            )
        }
        _ => resp(404, None, ""),
    }
}

/// Binds both servers on loopback and serves them on this runtime.
async fn start_servers(state: &Arc<State>) -> Result<()> {
    let mcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let as_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let _ = state
        .mcp_url
        .set(format!("http://{}/mcp", mcp_listener.local_addr()?));
    let _ = state
        .issuer
        .set(format!("http://{}", as_listener.local_addr()?));
    tokio::spawn(serve(mcp_listener, state.clone(), true));
    tokio::spawn(serve(as_listener, state.clone(), false));
    Ok(())
}

/// `mcp-oauth-bench serve`: the servers in a process of their own. Prints the MCP URL and
/// the issuer on one line, serves until stdin closes.
async fn serve_main() -> Result<()> {
    let state = Arc::new(State::default());
    start_servers(&state).await?;
    println!(
        "{} {}",
        state.mcp_url.get().unwrap(),
        state.issuer.get().unwrap()
    );
    // Waits on a blocking-pool thread; the servers run on the runtime's workers.
    tokio::task::spawn_blocking(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    })
    .await?;
    Ok(())
}

/// The echo server as the measurements see it (one value per run: its size is moot).
#[allow(clippy::large_enum_variant)]
enum Server {
    InProcess(Arc<State>),
    Child {
        child: Child,
        mcp_url: String,
        /// Kept open: the server exits when it closes.
        _stdin: ChildStdin,
        issuer: String,
        control: reqwest::Client,
    },
}

impl Server {
    async fn start(in_process: bool) -> Result<Server> {
        if in_process {
            let state = Arc::new(State::default());
            start_servers(&state).await?;
            return Ok(Server::InProcess(state));
        }
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server process")?;
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the server process did not start")??
            .ok_or_else(|| anyhow!("the server process exited"))?;
        let (url, issuer) = line
            .split_once(' ')
            .ok_or_else(|| anyhow!("unexpected server line {line:?}"))?;
        Ok(Server::Child {
            child,
            mcp_url: url.to_string(),
            _stdin: stdin,
            issuer: issuer.to_string(),
            control: direct_client()?,
        })
    }

    /// The server's process, when it has one of its own.
    fn pid(&self) -> Option<u32> {
        match self {
            Server::InProcess(_) => None,
            Server::Child { child, .. } => child.id(),
        }
    }

    /// The MCP endpoint.
    fn url(&self) -> &str {
        match self {
            Server::InProcess(s) => s.mcp_url.get().expect("bound"),
            Server::Child { mcp_url, .. } => mcp_url,
        }
    }

    /// HTTP requests the MCP origin has seen.
    async fn mcp_requests(&self) -> Result<u64> {
        match self {
            Server::InProcess(s) => Ok(s.mcp_requests.load(Ordering::SeqCst)),
            Server::Child {
                issuer, control, ..
            } => {
                let body = control
                    .get(format!("{issuer}/_bench/mcp-requests"))
                    .send()
                    .await?
                    .bytes()
                    .await?;
                let v: Value = serde_json::from_slice(&body)?;
                v["n"].as_u64().ok_or_else(|| anyhow!("bad counter {v}"))
            }
        }
    }

    /// Makes `token` valid at the MCP server (for the direct client).
    async fn add_token(&self, token: &str) -> Result<()> {
        match self {
            Server::InProcess(s) => {
                s.tokens.lock().unwrap().insert(token.to_string());
            }
            Server::Child {
                issuer, control, ..
            } => {
                let r = control
                    .post(format!("{issuer}/_bench/token"))
                    .body(token.to_string())
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("adding the direct token: HTTP {}", r.status());
                }
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------------------------------------
// A stdio host
// -------------------------------------------------------------------------------------

/// Who waits for the response to a request: one caller, or a burst counting completions
/// (a channel shared by the whole burst, so that the host adds no task or timer per call:
/// the direct client has none either).
enum Waiter {
    Once(oneshot::Sender<Instant>),
    Burst(tokio::sync::mpsc::UnboundedSender<Instant>),
}

type Waiters = Arc<Mutex<HashMap<u64, Waiter>>>;

struct Peer {
    child: Child,
    stdin: ChildStdin,
    pid: u32,
    waiters: Waiters,
    next_id: u64,
    /// Lines on stdout that were not JSON (must stay 0).
    junk: Arc<AtomicU64>,
}

impl Peer {
    fn spawn(mut cmd: Command) -> Result<Peer> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawn")?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));
        let junk = Arc::new(AtomicU64::new(0));
        let (w, j) = (waiters.clone(), junk.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::with_capacity(1 << 20, stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    j.fetch_add(1, Ordering::Relaxed);
                    eprintln!("bench: non-JSON line on stdout: {:.200}", line);
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64)
                    && v.get("method").is_none()
                {
                    if v.get("error").is_some() {
                        eprintln!("bench: error response: {:.300}", line);
                    }
                    match w.lock().unwrap().remove(&id) {
                        Some(Waiter::Once(tx)) => {
                            let _ = tx.send(at);
                        }
                        Some(Waiter::Burst(tx)) => {
                            let _ = tx.send(at);
                        }
                        None => {}
                    }
                }
            }
        });
        Ok(Peer {
            child,
            stdin,
            pid,
            waiters,
            next_id: 1,
            junk,
        })
    }

    /// Writes a request; the receiver fires when its response arrives.
    async fn send(&mut self, method: &str, params: &Value) -> Result<oneshot::Receiver<Instant>> {
        let (tx, rx) = oneshot::channel();
        self.send_to(method, params, Waiter::Once(tx)).await?;
        Ok(rx)
    }

    async fn send_to(&mut self, method: &str, params: &Value, waiter: Waiter) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        self.waiters.lock().unwrap().insert(id, waiter);
        let mut line = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        Ok(())
    }

    async fn call(&mut self, method: &str, params: &Value) -> Result<Duration> {
        let start = Instant::now();
        let rx = self.send(method, params).await?;
        let at = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .map_err(|_| anyhow!("no answer to {method} within 120 s"))??;
        Ok(at - start)
    }

    async fn notify(&mut self, method: &str) -> Result<()> {
        let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": method}))?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        Ok(())
    }

    async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn init_params() -> Value {
    json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "mcp-oauth-bench", "version": "1"}})
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime 15 (1-based); `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

// -------------------------------------------------------------------------------------
// Measurements
// -------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Results {
    name: String,
    cold_ms: f64,
    cold_requests: u64,
    small_p50_us: f64,
    small_p99_us: f64,
    large_p50_us: f64,
    large_p99_us: f64,
    throughput: f64,
    peak_rss_kib: Option<u64>,
    cpu_per_1000: Option<f64>,
    /// CPU time per call during the bursts, in µs, by process.
    burst_cpu: BurstCpu,
    /// The throughput ratio to direct of each round's burst.
    round_ratios: Vec<f64>,
    junk_lines: u64,
}

/// Where the CPU time of the bursts went (µs per call): the benchmark process (the
/// direct client, or the stdio host), the proxy (none for direct), the server; with the
/// context switches per call of the three, and the share of the machine's time the
/// hypervisor took (steal) meanwhile.
#[derive(Debug, Default, Clone, Copy)]
struct BurstCpu {
    bench: f64,
    proxy: f64,
    server: f64,
    switches: [f64; 3],
    steal: f64,
    /// The share of the machine's time that no process used (idle and I/O wait).
    idle: f64,
}

impl BurstCpu {
    fn total(&self) -> f64 {
        self.bench + self.proxy + self.server
    }
}

/// Counters of the three processes (benchmark, target, server) and the machine.
#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    cpu: [f64; 3],
    switches: [f64; 3],
    /// (steal, idle, all) clock ticks of the machine, from /proc/stat.
    ticks: (f64, f64, f64),
}

impl Sample {
    fn take(server: &Server, target: &Target) -> Sample {
        let pids = [Some(std::process::id()), target.pid(), server.pid()];
        Sample {
            cpu: pids.map(|p| p.map(cpu_seconds).unwrap_or(0.0)),
            switches: pids.map(|p| p.map(context_switches).unwrap_or(0.0)),
            ticks: machine_ticks(),
        }
    }

    /// `later - self`, added to `into`.
    fn add_delta(&self, later: &Sample, into: &mut Sample) {
        for k in 0..3 {
            into.cpu[k] += later.cpu[k] - self.cpu[k];
            into.switches[k] += later.switches[k] - self.switches[k];
        }
        into.ticks.0 += later.ticks.0 - self.ticks.0;
        into.ticks.1 += later.ticks.1 - self.ticks.1;
        into.ticks.2 += later.ticks.2 - self.ticks.2;
    }
}

/// Voluntary and involuntary context switches of all the threads of a process.
fn context_switches(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// (steal, idle, all) clock ticks of the machine so far.
fn machine_ticks() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next().filter(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0, 0.0);
    };
    // user nice system idle iowait irq softirq steal guest guest_nice
    let f: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let all: f64 = f.iter().take(8).sum();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    (at(7), at(3) + at(4), all)
}

fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn small_args() -> Value {
    json!({"name": "echo", "arguments": {"text": "hello"}})
}

fn large_args() -> Value {
    json!({"name": "echo", "arguments": {"text": "x".repeat(100 * 1024)}})
}

/// One way to reach the server, with a session open.
enum Target {
    Direct(Arc<Direct>),
    Stdio(Box<Peer>),
}

/// A way to reach the server: its name and, for a proxy, how to launch it.
type Way<'a> = (&'a str, Option<&'a dyn Fn() -> Command>);

impl Target {
    async fn call(&mut self, params: &Value) -> Result<Duration> {
        match self {
            Target::Direct(d) => d.call(params).await,
            Target::Stdio(p) => p.call("tools/call", params).await,
        }
    }

    /// `n` calls with 16 in flight; the elapsed time.
    async fn burst(&mut self, n: usize, params: &Value) -> Result<Duration> {
        let start = Instant::now();
        match self {
            Target::Direct(d) => {
                let mut set = tokio::task::JoinSet::new();
                for k in 0..16 {
                    let (d, params) = (d.clone(), params.clone());
                    let share = n / 16 + usize::from(k < n % 16);
                    set.spawn(async move {
                        for _ in 0..share {
                            d.call(&params).await?;
                        }
                        Ok::<_, anyhow::Error>(())
                    });
                }
                while let Some(res) = set.join_next().await {
                    res??;
                }
            }
            Target::Stdio(p) => {
                let (tx, mut done) = tokio::sync::mpsc::unbounded_channel();
                let (mut sent, mut inflight) = (0, 0);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                while sent < n || inflight > 0 {
                    while sent < n && inflight < 16 {
                        p.send_to("tools/call", params, Waiter::Burst(tx.clone()))
                            .await?;
                        sent += 1;
                        inflight += 1;
                    }
                    tokio::time::timeout_at(deadline, done.recv())
                        .await
                        .map_err(|_| anyhow!("{inflight} calls unanswered after 120 s"))?
                        .ok_or_else(|| anyhow!("the proxy's output ended"))?;
                    inflight -= 1;
                }
            }
        }
        Ok(start.elapsed())
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Target::Direct(_) => None,
            Target::Stdio(p) => Some(p.pid),
        }
    }
}

/// Cold start of a proxy: spawn → `initialize` reply, and the HTTP requests the server
/// saw meanwhile.
async fn cold_start(server: &Server, make: &dyn Fn() -> Command) -> Result<(Duration, u64)> {
    let before = server.mcp_requests().await?;
    let start = Instant::now();
    let mut p = Peer::spawn(make())?;
    p.call("initialize", &init_params()).await?;
    let elapsed = start.elapsed();
    let requests = server.mcp_requests().await? - before;
    p.stop().await;
    Ok((elapsed, requests))
}

/// Cold start of the direct client: a new HTTP client, `initialize`.
async fn cold_start_direct(server: &Server, token: &str) -> Result<(Duration, u64)> {
    let before = server.mcp_requests().await?;
    let d = Direct {
        http: direct_client()?,
        url: server.url().to_string(),
        token: token.to_string(),
        session: String::new(),
        next: AtomicU64::new(1),
    };
    let start = Instant::now();
    d.post("initialize", &init_params()).await?;
    let elapsed = start.elapsed();
    Ok((elapsed, server.mcp_requests().await? - before))
}

async fn open_stdio(make: &dyn Fn() -> Command) -> Result<Target> {
    let mut p = Peer::spawn(make())?;
    p.call("initialize", &init_params()).await?;
    p.notify("notifications/initialized").await?;
    p.call("tools/list", &json!({})).await?;
    Ok(Target::Stdio(Box::new(p)))
}

async fn open_direct(url: &str, token: &str) -> Result<Target> {
    let http = direct_client()?;
    let url = url.to_string();
    let resp = http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init_params()})
                .to_string(),
        )
        .send()
        .await?;
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(Target::Direct(Arc::new(Direct {
        http,
        url,
        token: token.to_string(),
        session,
        next: AtomicU64::new(1),
    })))
}

/// Every measurement, the three ways interleaved round by round so that background
/// load on the machine affects them alike.
async fn measure_all(server: &Server, a: &Args, ways: &[Way<'_>]) -> Result<Vec<Results>> {
    const ROUNDS: usize = 10;
    let token = "direct-token".to_string();
    server.add_token(&token).await?;
    let mut results: Vec<Results> = ways
        .iter()
        .map(|(name, _)| Results {
            name: name.to_string(),
            ..Default::default()
        })
        .collect();

    // Cold starts.
    let mut colds: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    let mut reqs: Vec<Vec<u64>> = vec![Vec::new(); ways.len()];
    for _ in 0..a.cold {
        for (i, (_, make)) in ways.iter().enumerate() {
            let (d, n) = match make {
                None => cold_start_direct(server, &token).await?,
                Some(make) => cold_start(server, *make).await?,
            };
            colds[i].push(d);
            reqs[i].push(n);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (i, r) in results.iter_mut().enumerate() {
        r.cold_ms = percentile(&mut colds[i], 0.5) / 1000.0;
        reqs[i].sort();
        r.cold_requests = reqs[i][reqs[i].len() / 2];
    }

    // Sessions.
    let mut targets = Vec::new();
    for (_, make) in ways {
        targets.push(match make {
            None => open_direct(server.url(), &token).await?,
            Some(make) => open_stdio(*make).await?,
        });
    }
    let cpu0: Vec<f64> = targets
        .iter()
        .map(|t| t.pid().map(cpu_seconds).unwrap_or(0.0))
        .collect();
    let (small, large) = (small_args(), large_args());
    for t in targets.iter_mut() {
        for _ in 0..50 {
            t.call(&small).await?;
        }
    }
    let mut small_lat: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    let mut large_lat: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    let mut burst_time = vec![Duration::ZERO; ways.len()];
    // Each round's burst time, per way: the rounds' ratios show how much the machine
    // moved during the run.
    let mut round_times: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    let mut burst_counters = vec![Sample::default(); ways.len()];
    for _ in 0..ROUNDS {
        for (i, t) in targets.iter_mut().enumerate() {
            for _ in 0..a.small / ROUNDS {
                small_lat[i].push(t.call(&small).await?);
            }
        }
        for (i, t) in targets.iter_mut().enumerate() {
            for _ in 0..a.large / ROUNDS {
                large_lat[i].push(t.call(&large).await?);
            }
        }
        for (i, t) in targets.iter_mut().enumerate() {
            let before = Sample::take(server, t);
            let took = t.burst(a.throughput / ROUNDS, &small).await?;
            burst_time[i] += took;
            round_times[i].push(took);
            before.add_delta(&Sample::take(server, t), &mut burst_counters[i]);
        }
    }
    let calls = 50 + (a.small / ROUNDS + a.large / ROUNDS + a.throughput / ROUNDS) * ROUNDS;
    for (i, r) in results.iter_mut().enumerate() {
        r.small_p50_us = percentile(&mut small_lat[i], 0.5);
        r.small_p99_us = percentile(&mut small_lat[i], 0.99);
        r.large_p50_us = percentile(&mut large_lat[i], 0.5);
        r.large_p99_us = percentile(&mut large_lat[i], 0.99);
        let burst_calls = ((a.throughput / ROUNDS) * ROUNDS) as f64;
        r.throughput = burst_calls / burst_time[i].as_secs_f64();
        // Throughput ratio to direct in each round (direct's time over this way's).
        r.round_ratios = round_times[0]
            .iter()
            .zip(&round_times[i])
            .map(|(d, t)| d.as_secs_f64() / t.as_secs_f64())
            .collect();
        let c = &burst_counters[i];
        let per_call = |k: usize| c.cpu[k] / burst_calls * 1e6;
        r.burst_cpu = BurstCpu {
            bench: per_call(0),
            proxy: per_call(1),
            server: per_call(2),
            switches: c.switches.map(|n| n / burst_calls),
            steal: c.ticks.0 / c.ticks.2.max(1.0),
            idle: c.ticks.1 / c.ticks.2.max(1.0),
        };
        if let Some(pid) = targets[i].pid() {
            r.cpu_per_1000 = Some((cpu_seconds(pid) - cpu0[i]) / calls as f64 * 1000.0);
            r.peak_rss_kib = Some(peak_rss_kib(pid));
        }
    }
    for (i, t) in targets.into_iter().enumerate() {
        if let Target::Stdio(p) = t {
            results[i].junk_lines = p.junk.load(Ordering::Relaxed);
            p.stop().await;
        }
    }
    Ok(results)
}

struct Direct {
    http: reqwest::Client,
    url: String,
    token: String,
    session: String,
    next: AtomicU64,
}

impl Direct {
    async fn post(&self, method: &str, params: &Value) -> Result<Bytes> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )?;
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(body);
        if !self.session.is_empty() {
            req = req
                .header("mcp-session-id", &self.session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        let resp = req.send().await?;
        if !resp.status().is_success() {
            bail!("direct: HTTP {}", resp.status());
        }
        let b = resp.bytes().await?;
        // Read it as a client would.
        let _: Value = serde_json::from_slice(&b)?;
        Ok(b)
    }

    async fn call(&self, params: &Value) -> Result<Duration> {
        let start = Instant::now();
        self.post("tools/call", params).await?;
        Ok(start.elapsed())
    }
}

fn direct_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?)
}

// -------------------------------------------------------------------------------------
// Setup and report
// -------------------------------------------------------------------------------------

/// Runs one proxy until its `initialize` is answered: the first run logs in (401 →
/// discovery → registration → browser → token), which stores the token.
async fn login(name: &str, cmd: Command) -> Result<()> {
    let start = Instant::now();
    let mut p = Peer::spawn(cmd)?;
    p.call("initialize", &init_params())
        .await
        .with_context(|| format!("{name}: first initialize (login)"))?;
    p.notify("notifications/initialized").await?;
    p.call("tools/call", &small_args()).await?;
    p.stop().await;
    eprintln!(
        "bench: {name} logged in ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn base_command(program: &Path, work: &Path, browser: &Path) -> Command {
    let mut c = Command::new(program);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        c.env_remove(var);
    }
    c.env("NO_PROXY", "127.0.0.1,localhost")
        .env("BROWSER", browser)
        .env("BROWSER_LOG", work.join("browser.log"))
        .env("HOME", work.join("home"))
        .env("XDG_CONFIG_HOME", work.join("config"))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(work.join("proxies.stderr"))
                .expect("stderr log"),
        ));
    c
}

fn ratio(x: f64, base: f64) -> String {
    format!("{:.2}×", x / base)
}

fn report(d: &Results, o: &Results, m: Option<&Results>, a: &Args) -> String {
    let ms = |us: f64| format!("{:.3} ms", us / 1000.0);
    // mcp-remote's column, or "skipped" (--skip-mcp-remote).
    let mcol = |f: &dyn Fn(&Results) -> String| m.map(f).unwrap_or_else(|| "skipped".into());
    let mut s = String::new();
    s += &format!(
        "Loopback echo server ({}); {} cold starts each (median); {} small and {} × 100 KB sequential calls and {} calls with 16 in flight each, the {} ways interleaved in 10 rounds.{}\n\n",
        if a.in_process_server {
            "in the benchmark process"
        } else {
            "in its own process"
        },
        a.cold,
        a.small,
        a.large,
        a.throughput,
        if m.is_some() { "three" } else { "two" },
        if a.proxy_args.is_empty() {
            String::new()
        } else {
            format!(" Proxy arguments: `{}`.", a.proxy_args.join(" "))
        }
    );
    s += "| | direct HTTP | mcp-oauth proxy | mcp-remote 0.15.1 |\n|---|---|---|---|\n";
    s += &format!(
        "| cold start (spawn → `initialize` reply) | {:.1} ms | {:.1} ms | {} |\n",
        d.cold_ms,
        o.cold_ms,
        mcol(&|m| format!("{:.1} ms", m.cold_ms))
    );
    s += &format!(
        "| HTTP requests before that reply | {} | {} | {} |\n",
        d.cold_requests,
        o.cold_requests,
        mcol(&|m| m.cold_requests.to_string())
    );
    type Field = fn(&Results) -> f64;
    let latencies: [(&str, Field); 4] = [
        ("p50, small", |r| r.small_p50_us),
        ("p99, small", |r| r.small_p99_us),
        ("p50, 100 KB", |r| r.large_p50_us),
        ("p99, 100 KB", |r| r.large_p99_us),
    ];
    for (label, f) in latencies {
        s += &format!(
            "| latency {label} | {} | {} ({}) | {} |\n",
            ms(f(d)),
            ms(f(o)),
            ratio(f(o), f(d)),
            mcol(&|m| format!("{} ({})", ms(f(m)), ratio(f(m), f(d))))
        );
    }
    s += &format!(
        "| throughput, 16 in flight | {:.0} calls/s | {:.0} calls/s ({}) | {} |\n",
        d.throughput,
        o.throughput,
        ratio(o.throughput, d.throughput),
        mcol(&|m| format!(
            "{:.0} calls/s ({})",
            m.throughput,
            ratio(m.throughput, d.throughput)
        ))
    );
    let spread = |r: &Results| {
        let mut v = r.round_ratios.clone();
        v.sort_by(f64::total_cmp);
        match (v.first(), v.last()) {
            (Some(lo), Some(hi)) => format!(
                "{lo:.2}–{hi:.2}× (median {:.2}×)",
                v[v.len() / 2]
            ),
            _ => "-".into(),
        }
    };
    s += &format!(
        "| throughput ratio, round by round | - | {} | {} |\n",
        spread(o),
        mcol(&spread)
    );
    let rss = |r: &Results| {
        r.peak_rss_kib
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or("-".into())
    };
    let cpu = |r: &Results| {
        r.cpu_per_1000
            .map(|c| format!("{:.3} s", c))
            .unwrap_or("-".into())
    };
    s += &format!("| peak RSS | - | {} | {} |\n", rss(o), mcol(&rss));
    s += &format!(
        "| CPU time per 1000 calls | - | {} | {} |\n\n",
        cpu(o),
        mcol(&cpu)
    );

    // Where the bursts' CPU went: with 16 in flight the CPUs are the limit, so the
    // throughput ratio is (nearly) the inverse ratio of these totals.
    s += "CPU time per call with 16 in flight, by process (µs; the bench process is the direct client or the stdio host; context switches per call in parentheses; idle and steal: the machine's idle time and the hypervisor's share of it during the bursts):\n\n";
    s += "| | bench process | proxy | server | total | idle | steal |\n|---|---|---|---|---|---|---|\n";
    for r in [Some(d), Some(o), m].into_iter().flatten() {
        let c = r.burst_cpu;
        let proxy = if r.cpu_per_1000.is_some() {
            format!("{:.1} ({:.2})", c.proxy, c.switches[1])
        } else {
            "-".into()
        };
        s += &format!(
            "| {} | {:.1} ({:.2}) | {proxy} | {:.1} ({:.2}) | {:.1} | {:.0}% | {:.0}% |\n",
            r.name,
            c.bench,
            c.switches[0],
            c.server,
            c.switches[2],
            c.total(),
            c.idle * 100.0,
            c.steal * 100.0
        );
    }
    s += "\n";

    let fraction = |x: f64, y: f64| format!("{:.3}", x / y);
    let versus_remote = |f: Field, limit: f64| match m {
        Some(m) => (fraction(f(o), f(m)), Some(f(o) * limit <= f(m))),
        None => ("n/a (mcp-remote skipped)".to_string(), None),
    };
    let rss_kib: Field = |r| r.peak_rss_kib.map(|k| k as f64).unwrap_or(f64::NAN);
    let cpu_1000: Field = |r| r.cpu_per_1000.unwrap_or(f64::NAN);
    let cold = versus_remote(|r| r.cold_ms, 20.0);
    let peak = versus_remote(rss_kib, 10.0);
    let cpu_calls = versus_remote(cpu_1000, 10.0);
    let checks = [
        ("cold start ≤ 1/20 of mcp-remote's", cold.0, cold.1),
        (
            "exactly 1 HTTP request before the first reply",
            o.cold_requests.to_string(),
            Some(o.cold_requests == 1),
        ),
        (
            "p50 (small) ≤ 1.5× direct",
            format!("{:.2}", o.small_p50_us / d.small_p50_us),
            Some(o.small_p50_us <= 1.5 * d.small_p50_us),
        ),
        (
            "p50 (100 KB) ≤ 1.5× direct",
            format!("{:.2}", o.large_p50_us / d.large_p50_us),
            Some(o.large_p50_us <= 1.5 * d.large_p50_us),
        ),
        (
            "throughput ≥ 0.7× direct",
            format!("{:.2}", o.throughput / d.throughput),
            Some(o.throughput >= 0.7 * d.throughput),
        ),
        ("peak RSS ≤ 1/10 of mcp-remote's", peak.0, peak.1),
        (
            "CPU per 1000 calls ≤ 1/10 of mcp-remote's",
            cpu_calls.0,
            cpu_calls.1,
        ),
    ];
    s += "| target (mcp-oauth proxy) | ratio in this run | met |\n|---|---|---|\n";
    for (what, value, ok) in checks {
        let met = match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        s += &format!("| {what} | {value} | {met} |\n");
    }
    let junk = o.junk_lines + m.map_or(0, |m| m.junk_lines);
    if junk > 0 {
        s += &format!(
            "\nNon-protocol lines on stdout: mcp-oauth {}, mcp-remote {}\n",
            o.junk_lines,
            mcol(&|m| m.junk_lines.to_string())
        );
    }
    s
}

fn to_json(r: &Results) -> Value {
    json!({
        "name": r.name,
        "cold_start_ms": r.cold_ms,
        "http_requests_before_initialize_reply": r.cold_requests,
        "latency_small_p50_us": r.small_p50_us,
        "latency_small_p99_us": r.small_p99_us,
        "latency_100kb_p50_us": r.large_p50_us,
        "latency_100kb_p99_us": r.large_p99_us,
        "throughput_16_in_flight_per_s": r.throughput,
        "peak_rss_kib": r.peak_rss_kib,
        "cpu_s_per_1000_calls": r.cpu_per_1000,
        "burst_cpu_us_per_call": {
            "bench_process": r.burst_cpu.bench,
            "proxy": r.burst_cpu.proxy,
            "server": r.burst_cpu.server,
        },
        "burst_context_switches_per_call": {
            "bench_process": r.burst_cpu.switches[0],
            "proxy": r.burst_cpu.switches[1],
            "server": r.burst_cpu.switches[2],
        },
        "burst_steal_fraction": r.burst_cpu.steal,
        "burst_idle_fraction": r.burst_cpu.idle,
        "throughput_ratio_per_round": r.round_ratios,
        "non_protocol_stdout_lines": r.junk_lines,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return serve_main().await;
    }
    let a = args()?;
    let server = Server::start(a.in_process_server).await?;
    let url = server.url().to_string();

    let work = std::env::temp_dir().join(format!("mcp-oauth-bench.{}", std::process::id()));
    std::fs::create_dir_all(work.join("home"))?;
    std::fs::create_dir_all(work.join("config"))?;
    eprintln!("bench: server {url}, work dir {}", work.display());

    let mcp_oauth = {
        let (bin, work, browser, url, extra) = (
            a.mcp_oauth.clone(),
            work.clone(),
            a.browser.clone(),
            url.clone(),
            a.proxy_args.clone(),
        );
        move || {
            let mut c = base_command(&bin, &work, &browser);
            c.arg("proxy")
                .arg(&url)
                .args(&extra)
                .env("MCP_OAUTH_HOME", work.join("mcp-oauth-home"));
            c
        }
    };
    let mcp_remote = {
        let (node, js, work, browser, url) = (
            a.node.clone(),
            a.mcp_remote.clone(),
            work.clone(),
            a.browser.clone(),
            url.clone(),
        );
        move || {
            let mut c = base_command(&node, &work, &browser);
            c.arg(&js)
                .arg(&url)
                .env("MCP_REMOTE_CONFIG_DIR", work.join("mcp-remote-config"));
            c
        }
    };
    let mut ways: Vec<Way<'_>> = vec![("direct", None), ("mcp-oauth proxy", Some(&mcp_oauth))];
    login("mcp-oauth proxy", mcp_oauth()).await?;
    if !a.skip_mcp_remote {
        login("mcp-remote", mcp_remote()).await?;
        ways.push(("mcp-remote", Some(&mcp_remote)));
    }

    eprintln!("bench: measuring (the {} ways interleaved) ...", ways.len());
    let r = measure_all(&server, &a, &ways).await?;
    let (d, o, m) = (&r[0], &r[1], r.get(2));
    println!("{}", report(d, o, m, &a));
    if let Some(path) = &a.json {
        let v = json!({
            "server": if a.in_process_server {
                "hyper echo server in the benchmark process (session-based, application/json), loopback"
            } else {
                "hyper echo server in its own process (session-based, application/json), loopback"
            },
            "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
            "direct": to_json(d),
            "mcp_oauth_proxy": to_json(o),
            "mcp_remote": m.map(to_json),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
