//! HTTPS as the binary speaks it, against a loopback MCP server with a certificate from a
//! test CA: the proxy (hyper's client, used directly) over HTTP/2 and HTTP/1.1 as the
//! server's ALPN chooses, `mcp-oauth call` (reqwest), both with the one TLS
//! configuration of the library; and a certificate the system does not trust refused.
//! The CA is made trusted for a child process only, through `SSL_CERT_FILE` (which the
//! platform verifier reads on Linux).
#![cfg(target_os = "linux")]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_testkit::cli::clean_env;

/// A test CA and a `localhost` certificate it issued.
struct Pki {
    dir: tempfile::TempDir,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "mcp-oauth test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        Pki {
            dir,
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    version: http::Version,
    method: String,
}

/// A stateless MCP server on `https://localhost:PORT/mcp` offering the ALPN protocols
/// `alpn`: `initialize`, `tools/list` and `tools/call` (echo) are answered, other
/// requests get "method not found", notifications 202.
///
/// Its own server rather than the testkit's mock server: TLS with the test CA's
/// certificate and HTTP/2 or HTTP/1.1 chosen by ALPN are what these tests are about, and
/// the mock server speaks plain HTTP/1.1.
async fn server(pki: &Pki, alpn: &[&[u8]]) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen2.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = hyper_util::rt::TokioIo::new(tls);
                let svc = hyper::service::service_fn(move |req| {
                    let seen = seen.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, &seen).await) }
                });
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await
                };
            });
        }
    });
    (url, seen)
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Vec<Seen>>,
) -> hyper::Response<Full<Bytes>> {
    seen.lock().unwrap().push(Seen {
        version: req.version(),
        method: req.method().to_string(),
    });
    let reply = |status: u16, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if req.method() != http::Method::POST {
        return reply(405, String::new());
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let result = match msg["method"].as_str() {
        Some("initialize") => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tls-test", "version": "1"}
        }),
        Some("tools/list") => {
            json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
        }
        Some("tools/call") => {
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}]})
        }
        // A notification.
        _ if msg.get("id").is_none() => return reply(202, String::new()),
        // Say `server/discover` (the client's probe for a 2026-07-28 server).
        Some(other) => {
            let error = json!({"code": -32601, "message": format!("Method not found: {other}")});
            return reply(
                200,
                json!({"jsonrpc": "2.0", "id": msg["id"], "error": error}).to_string(),
            );
        }
        None => return reply(400, String::new()),
    };
    reply(
        200,
        json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string(),
    )
}

/// How the test CA is trusted by the child process.
#[derive(Clone, Copy)]
enum Trust<'a> {
    /// Not at all: the system's store only.
    System,
    /// As the only trusted CA (`SSL_CERT_FILE`).
    Only(&'a PathBuf),
    /// Beside the system's (`MCP_OAUTH_EXTRA_CA_CERTS`).
    Extra(&'a PathBuf),
}

fn command(args: &[&str], trust: Trust<'_>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(args)
        .env(
            "MCP_OAUTH_HOME",
            std::env::temp_dir().join(format!("mcp-oauth-tls-{}", std::process::id())),
        )
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("mcp-oauth-tls-no-config"),
        )
        .env_remove("MCP_OAUTH_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("MCP_OAUTH_EXTRA_CA_CERTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    clean_env(&mut cmd);
    match trust {
        Trust::System => {}
        Trust::Only(ca) => {
            cmd.env("SSL_CERT_FILE", ca);
        }
        Trust::Extra(ca) => {
            cmd.env("MCP_OAUTH_EXTRA_CA_CERTS", ca);
        }
    }
    cmd
}

/// Runs `mcp-oauth proxy <url>` with `messages` on stdin; the lines it wrote.
fn run_proxy(url: &str, trust: Trust<'_>, messages: &[Value]) -> Vec<Value> {
    let mut child = command(&["proxy", url, "--no-auth"], trust)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for m in messages {
        writeln!(stdin, "{m}").unwrap();
    }
    drop(stdin);
    let out = wait_output(child);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_output(child: std::process::Child) -> std::process::Output {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the command did not end within 30 s")
        .unwrap()
}

fn handshake() -> Vec<Value> {
    vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "over TLS"}}}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_speaks_http2_or_http1_as_the_servers_alpn_chooses() {
    let pki = Pki::new();
    for (alpn, version) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], http::Version::HTTP_2),
        (&[b"http/1.1".as_slice()][..], http::Version::HTTP_11),
    ] {
        let (url, seen) = server(&pki, alpn).await;
        let ca = pki.ca_file();
        let lines = tokio::task::spawn_blocking({
            let url = url.clone();
            move || run_proxy(&url, Trust::Only(&ca), &handshake())
        })
        .await
        .unwrap();
        let by_id = |id: i64| lines.iter().find(|l| l["id"] == id).cloned();
        assert_eq!(
            by_id(0).unwrap()["result"]["serverInfo"]["name"],
            "tls-test",
            "{lines:?}"
        );
        assert_eq!(
            by_id(1).unwrap()["result"]["content"][0]["text"],
            "over TLS"
        );
        let seen = seen.lock().unwrap().clone();
        let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
        assert_eq!(posts.len(), 3, "{seen:?}");
        assert!(
            posts.iter().all(|s| s.version == version),
            "{version:?} expected: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_system_does_not_trust_is_refused() {
    let pki = Pki::new();
    let (url, seen) = server(&pki, &[b"h2", b"http/1.1"]).await;
    let lines = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run_proxy(&url, Trust::System, &handshake()[..1])
    })
    .await
    .unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let message = lines[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&url), "names the URL: {message}");
    assert!(
        message.contains("invalid peer certificate"),
        "says why: {message}"
    );
    assert!(
        message.contains("MCP_OAUTH_EXTRA_CA_CERTS"),
        "says what to do: {message}"
    );
    assert!(seen.lock().unwrap().is_empty(), "no request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reaches_the_server_with_the_same_tls_configuration() {
    let pki = Pki::new();
    let (url, seen) = server(&pki, &[b"h2", b"http/1.1"]).await;
    let ca = pki.ca_file();
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let child = command(
                &["call", &url, "echo", "--args", r#"{"text":"via call"}"#],
                Trust::Only(&ca),
            )
            .spawn()
            .unwrap();
            wait_output(child)
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("via call"), "{stdout}");
    // reqwest with the shared configuration offers h2 too.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.version == http::Version::HTTP_2),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_ca_file_is_trusted_beside_the_systems_store() {
    let pki = Pki::new();
    let (url, _seen) = server(&pki, &[b"h2", b"http/1.1"]).await;
    let ca = pki.ca_file();
    let lines =
        tokio::task::spawn_blocking(move || run_proxy(&url, Trust::Extra(&ca), &handshake()))
            .await
            .unwrap();
    let reply = lines.iter().find(|l| l["id"] == 1).cloned().unwrap();
    assert_eq!(
        reply["result"]["content"][0]["text"], "over TLS",
        "{lines:?}"
    );
}

#[test]
fn an_unusable_extra_ca_file_stops_the_proxy_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let mut child = command(
        &["proxy", "https://mcp.example.com/mcp", "--no-auth"],
        Trust::Extra(&bad),
    )
    .spawn()
    .unwrap();
    drop(child.stdin.take());
    let out = wait_output(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(
        stderr.contains(&format!("MCP_OAUTH_EXTRA_CA_CERTS={}", bad.display()))
            && stderr.contains("holds no PEM certificate"),
        "{stderr}"
    );
}
