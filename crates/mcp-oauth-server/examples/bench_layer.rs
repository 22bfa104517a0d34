//! Throughput of an echo endpoint with and without `McpAuthLayer`, in one run.
//!
//! ```sh
//! cargo run --release -p mcp-oauth-server --example bench_layer -- [requests] [concurrency] [rounds]
//! ```
//!
//! Defaults: 10 000 requests per measurement, 32 in flight, 9 rounds. Servers and the
//! client (reqwest, HTTP/1.1 keep-alive) share one process and the loopback interface;
//! the client parses the URL and builds the `Authorization` value once.
//! Each round measures every configuration back to back (rotating the order); the
//! headline is the median over rounds of the per-round ratio, which is robust to other
//! load on the machine.
//!
//! Configurations:
//! - `unprotected`: plain axum echo;
//! - `protected`: the same behind the layer, RS256 JWT checked against a cached JWKS,
//!   default settings (verified tokens remembered until `exp`, at most 5 min);
//! - `unprotected+token`: no layer, but the client sends the same `Authorization` header
//!   (what carrying a ~600-byte RS256 token costs client, kernel and hyper, without the
//!   layer);
//! - `protected+policy`: plus a per-tool scope policy (the layer reads the JSON-RPC
//!   body to find the tool, and puts it back);
//! - `protected, no cache`: every request verifies the RS256 signature.
//!
//! The headline ratio is `protected / unprotected` (target ≥ 0.9); `protected /
//! unprotected+token` is the layer's own cost.
//! `BENCH_MODES=unprotected,protected` narrows the run (e.g. for profiling).

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use jsonwebtoken::Algorithm;
use mcp_oauth_server::dev::DevIssuer;
use mcp_oauth_server::{JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Unprotected,
    Protected,
    /// No layer, but the client sends the same `Authorization` header: isolates the
    /// layer's own cost from the cost of carrying a ~600-byte token.
    UnprotectedWithToken,
    ProtectedPolicy,
    ProtectedNoCache,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Unprotected => "unprotected",
            Mode::Protected => "protected",
            Mode::UnprotectedWithToken => "unprotected+token",
            Mode::ProtectedPolicy => "protected+policy",
            Mode::ProtectedNoCache => "protected, no cache",
        }
    }
}

async fn start(mode: Mode, issuer: &DevIssuer) -> anyhow::Result<(String, Option<String>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let echo = Router::new().route("/mcp", post(|body: Bytes| async move { body }));
    let (app, token) = if mode == Mode::Unprotected {
        (echo, None)
    } else if mode == Mode::UnprotectedWithToken {
        let token = issuer.token(&url).subject("bench").scopes(["mcp"]).sign();
        (echo, Some(token))
    } else {
        let resource = ProtectedResource::builder(&url)
            .authorization_server(issuer.issuer())
            .scopes_supported(["mcp"])
            .required_scopes(["mcp"])
            .build()?;
        let mut v = JwtValidator::builder(&resource).jwks_uri(issuer.jwks_uri());
        if mode == Mode::ProtectedNoCache {
            v = v.cache_ttl(Duration::ZERO);
        }
        let v = v.build()?;
        v.refresh_jwks().await?;
        let mut layer = McpAuthLayer::new(resource, v);
        if mode == Mode::ProtectedPolicy {
            layer = layer.with_scope_policy(
                ScopePolicy::new()
                    .method("tools/call", ["mcp"])
                    .tool("delete", ["admin"]),
            );
        }
        let token = issuer.token(&url).subject("bench").scopes(["mcp"]).sign();
        (echo.layer(layer), Some(token))
    };
    tokio::spawn(axum::serve(listener, app).into_future());
    Ok((url, token))
}

/// CPU time used so far by all threads of this process, in nanoseconds (Linux
/// `schedstat`; `None` elsewhere).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may have exited since the directory was listed.
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

async fn drive(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    // Parsed once, as a long-lived client would: the load generator's own costs are not
    // what is measured.
    let url = reqwest::Url::parse(url)?;
    let auth = match token {
        Some(t) => {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))?;
            v.set_sensitive(true);
            Some(v)
        }
        None => None,
    };
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        let auth = auth.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let mut req = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(BODY);
                if let Some(a) = &auth {
                    req = req.header(reqwest::header::AUTHORIZATION, a.clone());
                }
                let resp = req.send().await?;
                anyhow::ensure!(resp.status() == 200, "HTTP {}", resp.status());
                let body = resp.bytes().await?;
                anyhow::ensure!(body.len() == BODY.len(), "echo mismatch");
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(requests as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(9), |a| a.parse())?;

    let issuer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = DevIssuer::new(
        format!("http://{}", issuer_listener.local_addr()?),
        Algorithm::RS256,
    );
    tokio::spawn(axum::serve(issuer_listener, issuer.router()).into_future());

    // BENCH_MODES=unprotected,protected (labels as printed, comma-separated) narrows
    // the run, e.g. for profiling; the first mode is the baseline.
    let all = [
        Mode::Unprotected,
        Mode::Protected,
        Mode::UnprotectedWithToken,
        Mode::ProtectedPolicy,
        Mode::ProtectedNoCache,
    ];
    let modes: Vec<Mode> = match std::env::var("BENCH_MODES") {
        Ok(list) => all
            .into_iter()
            .filter(|m| list.split(',').any(|l| l.trim() == m.label()))
            .collect(),
        Err(_) => all.to_vec(),
    };
    anyhow::ensure!(!modes.is_empty(), "BENCH_MODES selects nothing");
    let mut servers = Vec::new();
    for &m in &modes {
        servers.push((m, start(m, &issuer).await?));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    println!(
        "bench_layer: {requests} requests x {rounds} rounds, concurrency {concurrency}, \
         {} build, {} CPUs",
        if cfg!(debug_assertions) {
            "DEBUG (use --release)"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    // Warm-up: connections, JWKS, token cache.
    for (_, (url, token)) in &servers {
        drive(&client, url, token.as_deref(), 2_000, concurrency).await?;
    }
    let n = servers.len();
    let mut best = vec![0f64; n];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut cpu_us: Vec<Vec<f64>> = vec![Vec::new(); n];
    for round in 0..rounds {
        // Rotate the order each round so that drift (other load on the machine) does not
        // favour one configuration.
        let mut rps = vec![0f64; n];
        for k in 0..n {
            let i = (k + round) % n;
            let (_, (url, token)) = &servers[i];
            let cpu0 = process_cpu_ns();
            rps[i] = drive(&client, url, token.as_deref(), requests, concurrency).await?;
            if let (Some(a), Some(b)) = (cpu0, process_cpu_ns()) {
                cpu_us[i].push(b.saturating_sub(a) as f64 / 1e3 / requests as f64);
            }
            best[i] = best[i].max(rps[i]);
        }
        let line: Vec<String> = servers
            .iter()
            .zip(&rps)
            .map(|((m, _), r)| format!("{} {r:.0}", m.label()))
            .collect();
        println!("round {:>2}: {} req/s", round + 1, line.join(", "));
        for i in 0..n {
            ratios[i].push(rps[i] / rps[0]);
            per_round[i].push(rps[i]);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "\n{:<22} {:>11} {:>11} {:>19} {:>17}",
        "", "best req/s", "best ratio", "median round ratio", "CPU us/req (med)"
    );
    let mut cpu_med = vec![f64::NAN; n];
    for i in 0..n {
        if !cpu_us[i].is_empty() {
            cpu_med[i] = median(&mut cpu_us[i]);
        }
        println!(
            "{:<22} {:>11.0} {:>11.3} {:>19.3} {:>17.1}",
            servers[i].0.label(),
            best[i],
            best[i] / best[0],
            median(&mut ratios[i]),
            cpu_med[i],
        );
    }
    let pos = |m: Mode| modes.iter().position(|x| *x == m);
    if let (Some(0), Some(p)) = (pos(Mode::Unprotected), pos(Mode::Protected)) {
        println!(
            "\nprotected/unprotected = {:.3} (median of per-round ratios; target >= 0.9)",
            median(&mut ratios[p])
        );
        if let Some(u) = pos(Mode::UnprotectedWithToken) {
            // Per-round ratio against the token-carrying baseline: the layer alone.
            let mut layer_only: Vec<f64> = per_round[p]
                .iter()
                .zip(&per_round[u])
                .map(|(p, u)| p / u)
                .collect();
            println!(
                "protected/unprotected+token = {:.3} (the layer's own cost)",
                median(&mut layer_only)
            );
        }
        if cpu_med[0].is_finite() {
            // CPU per request is far less sensitive to other load on the machine than
            // wall-clock throughput; for a CPU-bound run the two ratios agree.
            println!(
                "CPU-time ratio unprotected/protected = {:.3} (whole process: servers + client)",
                cpu_med[0] / cpu_med[p]
            );
        }
    }
    Ok(())
}
