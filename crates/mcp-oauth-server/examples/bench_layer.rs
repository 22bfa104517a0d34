//! Throughput of an echo endpoint with and without `McpAuthLayer`, in one run.
//!
//! ```sh
//! cargo run --release -p mcp-oauth-server --example bench_layer -- [requests] [concurrency] [rounds]
//! ```
//!
//! Defaults: 20 000 requests per measurement, 32 in flight, 3 rounds. Servers and the
//! client (reqwest, HTTP/1.1 keep-alive) share one process and the loopback interface;
//! the client parses the URL and builds the `Authorization` value once.
//! Each round measures every configuration back to back; the best round of each counts.
//!
//! Configurations:
//! - `unprotected`: plain axum echo;
//! - `protected`: the same behind the layer, RS256 JWT checked against a cached JWKS,
//!   default settings (verified tokens remembered until `exp`, at most 5 min);
//! - `protected+policy`: plus a per-tool scope policy (the layer reads the JSON-RPC
//!   body to find the tool, and puts it back);
//! - `protected, no cache`: every request verifies the RS256 signature.
//!
//! The headline ratio is `protected / unprotected` (target ≥ 0.9).

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
    ProtectedPolicy,
    ProtectedNoCache,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Unprotected => "unprotected",
            Mode::Protected => "protected",
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
    let requests: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;

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
    let mut best = vec![0f64; servers.len()];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (m, (url, token))) in servers.iter().enumerate() {
            let rps = drive(&client, url, token.as_deref(), requests, concurrency).await?;
            best[i] = best[i].max(rps);
            line.push_str(&format!("  {} {:.0} req/s", m.label(), rps));
        }
        println!("{line}");
    }
    println!();
    let base = best[0];
    for (i, (m, _)) in servers.iter().enumerate() {
        println!(
            "{:<22} {:>9.0} req/s   ratio {:.3}",
            m.label(),
            best[i],
            best[i] / base
        );
    }
    if modes.len() > 1 && modes[0] == Mode::Unprotected && modes[1] == Mode::Protected {
        println!(
            "\nprotected/unprotected = {:.3} (target >= 0.9)",
            best[1] / base
        );
    }
    Ok(())
}
