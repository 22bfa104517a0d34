//! `mcp-oauth demo`, end to end, as a user runs it:
//!
//! * `demo_prints_every_step`: the narrated run, headless, checked for every step in
//!   order (the 401 and its challenge, which metadata URL and why, the AS metadata,
//!   registration, the browser hop, the token, the tool call and its result, the closing
//!   root-probe line), for exit 0, for its duration, and for leaked secrets;
//! * `demo_serve_mcp_oauth_call`: `demo --serve --port 0`, then `mcp-oauth call` against
//!   it (with `tests/browser.sh`, curl following redirects, as `$BROWSER`), twice: the
//!   second call uses the stored token; Ctrl-C (SIGINT) stops the servers;
//! * foreign clients against `demo --serve` (need the pinned Node packages from
//!   `scripts/bootstrap`; gated like `real_servers.rs` by `MCP_OAUTH_TEST_DEPS`, skipped
//!   loudly without it unless `MCP_OAUTH_REQUIRE_REAL=1`):
//!   - `demo_serve_typescript_sdk`: the official TypeScript SDK's Streamable HTTP client
//!     with its OAuth client provider (`tests/node/demo-ts-client.mjs`);
//!   - `demo_serve_mcp_remote`: `mcp-remote` (its browser opened through `open` →
//!     xdg-open → `$BROWSER` = `tests/browser.sh`), driven over stdio with JSON-RPC.
//!
//! Every client completes OAuth (dynamic registration, PKCE, `resource`, `iss`) and calls
//! a tool. Loopback only.
#![cfg(unix)]

use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mcp_oauth_testkit::cli::{
    self, PROXY_VARS, REQUIRE_ENV, browser_opens, have, lines_of, repo_root, wait_or_kill,
};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-oauth");
/// The issue's bound for the narrated run.
const DEMO_LIMIT: Duration = Duration::from_secs(30);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// What makes xdg-open pick a desktop's browser instead of `$BROWSER`.
const DESKTOP_VARS: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_CURRENT_DESKTOP",
    "DESKTOP_SESSION",
    "KDE_FULL_SESSION",
    "GNOME_DESKTOP_SESSION_ID",
    "MATE_DESKTOP_SESSION_ID",
    "LXQT_SESSION_CONFIG",
    "DBUS_SESSION_BUS_ADDRESS",
    "WSL_DISTRO_NAME",
];

/// A command with no proxies, no colours, no desktop, and no user configuration.
fn command(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    for var in PROXY_VARS.iter().chain(DESKTOP_VARS) {
        c.env_remove(var);
    }
    c.env_remove("RUST_LOG")
        .env_remove("MCP_OAUTH_CONFIG")
        .env_remove("MCP_OAUTH_PROFILE")
        .env("NO_PROXY", "127.0.0.1,localhost,::1")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("MCP_OAUTH_HOME", home.join("mcp-oauth"));
    c
}

fn tempdir(name: &str) -> tempfile::TempDir {
    cli::temp_dir(&format!("mcp-oauth-demo-{name}."))
}

/// Waits for `child` to exit, killing it after `timeout`.
fn wait_for(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    wait_or_kill(child, timeout)
        .unwrap_or_else(|| panic!("{what} did not finish within {timeout:?}"))
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn run(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let out = lines_of(child.stdout.take().expect("stdout"));
    let err = lines_of(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child, timeout, what);
    let elapsed = started.elapsed();
    let collect = |rx: Receiver<String>| {
        let mut s = String::new();
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    };
    Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
        elapsed,
    }
}

/// Asserts that `markers` appear in `text` in this order.
fn assert_in_order(text: &str, markers: &[&str]) {
    let mut pos = 0;
    for m in markers {
        match text[pos..].find(m) {
            Some(i) => pos += i + m.len(),
            None => panic!("{m:?} missing (or out of order) after byte {pos} of:\n{text}"),
        }
    }
}

/// Longest run of token characters after each occurrence of `prefix`.
fn longest_after(text: &str, prefix: &str) -> usize {
    text.match_indices(prefix)
        .map(|(i, _)| {
            text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn demo_prints_every_step() {
    let tmp = tempdir("run");
    let mut cmd = command(BIN, tmp.path());
    cmd.arg("demo");
    let out = run(cmd, DEMO_LIMIT, "mcp-oauth demo");
    let text = &out.stdout;
    assert!(
        out.status.success(),
        "mcp-oauth demo failed ({}):\n{text}\nstderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(out.elapsed < DEMO_LIMIT, "took {:?}", out.elapsed);
    eprintln!("[demo] ran in {:?}:\n{text}", out.elapsed);
    assert_in_order(
        text,
        &[
            // Header: both servers, the AS labelled.
            "MCP server            http://127.0.0.1:",
            "/.well-known/oauth-protected-resource/mcp (the root is 404)",
            "DEVELOPMENT ONLY",
            // The 401 and its challenge.
            " 1. MCP request without a token",
            "/mcp server/discover (no Authorization header)",
            "MCP server → 401 Unauthorized",
            "WWW-Authenticate: Bearer resource_metadata=\"http://127.0.0.1:",
            "/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\"",
            "No error=\"invalid_token\": no token was presented (RFC 6750 §3.1)",
            // Which PRM URL, and why (from the client's discovery trace).
            " 2. Protected resource metadata (RFC 9728)",
            "/.well-known/oauth-protected-resource/mcp → 200",
            "scopes_supported [\"mcp\"]",
            "client's discovery trace: prm (resource_metadata of the challenge) → used",
            "why: the 401 challenge's resource_metadata named this URL",
            "not needed: prm (root well-known) /.well-known/oauth-protected-resource",
            // AS metadata.
            " 3. Authorization server metadata (RFC 8414)",
            "/.well-known/oauth-authorization-server → 200",
            "code_challenge_methods_supported [\"S256\"], authorization_response_iss_parameter_supported true",
            "client's discovery trace: as metadata (RFC 8414) → used",
            // Registration.
            " 4. Dynamic client registration (RFC 7591)",
            "/register → 201",
            "\"mcp-oauth demo\" (a public client: token_endpoint_auth_method none)",
            "redirect_uris [\"http://127.0.0.1:",
            // The browser hop.
            " 5. Authorization: the browser hop",
            "browser → GET http://127.0.0.1:",
            "/authorize?response_type=code&client_id=demo-",
            "code_challenge_method=S256",
            "&resource=http%3A%2F%2F127.0.0.1%3A",
            "authorization server → 302 approved for \"demo-user\"",
            "browser → GET http://127.0.0.1:",
            "/callback?code=",
            "&iss=http%3A%2F%2F127.0.0.1%3A",
            // The token.
            " 6. Token request (authorization_code with the PKCE code_verifier and the resource)",
            "/token → 200",
            "access token   eyJ",
            "JWT ES256 (kid key-1), aud \"http://127.0.0.1:",
            "refresh token  rt-",
            // The tool call and its result.
            " 7. MCP request with the token: server/discover",
            "(Authorization: Bearer eyJ",
            "→ 200",
            "the MCP server fetched the authorization server's keys",
            "connected: protocol ",
            "tools: echo, whoami",
            "tools/call whoami",
            "whoami({}) → {",
            "\"sub\":\"demo-user\"",
            "Done in ",
            "A client that probes only the root would have seen: GET http://127.0.0.1:",
            "/.well-known/oauth-protected-resource → 404",
        ],
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("A client that probes only the root would have seen")
            && last.contains("needs authentication"),
        "last line: {last:?}"
    );
    // No secret in full: tokens and codes appear as a short prefix only.
    assert!(longest_after(text, "eyJ") < 20, "a JWT leaked:\n{text}");
    assert!(
        longest_after(text, "rt-") < 15,
        "a refresh token leaked:\n{text}"
    );
    assert!(longest_after(text, "code=") < 15, "a code leaked:\n{text}");
    assert!(
        longest_after(text, "code_verifier=") == 0,
        "a verifier leaked:\n{text}"
    );
}

/// `mcp-oauth demo --serve --port 0`, running.
struct Serve {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    mcp_url: String,
    issuer: String,
}

impl Serve {
    fn start(home: &Path) -> Serve {
        let mut child = command(BIN, home)
            .args(["demo", "--serve", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mcp-oauth demo --serve");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let mut serve = Serve {
            child,
            lines,
            log: Vec::new(),
            mcp_url: String::new(),
            issuer: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match serve.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!("demo --serve printed no banner:\n{}", serve.log.join("\n")),
            };
            serve.log.push(line.clone());
            let value = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            };
            if let Some(u) = value("MCP server:") {
                serve.mcp_url = u;
            } else if let Some(u) = value("Authorization server:") {
                serve.issuer = u;
            } else if line == "Requests, as they arrive:" {
                break;
            }
        }
        assert!(serve.mcp_url.starts_with("http://127.0.0.1:") && serve.mcp_url.ends_with("/mcp"));
        assert!(serve.issuer.starts_with("http://127.0.0.1:"));
        let banner = serve.log.join("\n");
        assert!(
            banner.contains("root metadata") && banner.contains("→ 404 (on purpose)"),
            "{banner}"
        );
        assert!(banner.contains("DEVELOPMENT ONLY"), "{banner}");
        assert!(
            banner.contains(&format!("mcp-oauth call {} whoami", serve.mcp_url)),
            "{banner}"
        );
        serve
    }

    /// The request log so far (waits until `line` matches, or `timeout`).
    fn wait_for_log(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        if self.log.iter().any(|l| pred(l)) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.log.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn log_text(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        self.log.join("\n")
    }

    /// Ctrl-C, as a user stops it: SIGINT, then a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -INT {pid}");
        let status = wait_for(
            &mut self.child,
            Duration::from_secs(10),
            "demo --serve after SIGINT",
        );
        let log = {
            while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                self.log.push(l);
            }
            self.log.join("\n")
        };
        assert!(
            status.success(),
            "demo --serve exited with {status} after SIGINT:\n{log}"
        );
        assert!(log.ends_with("Stopped."), "{log}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_serve_mcp_oauth_call() {
    if !have("curl") {
        if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
            panic!("curl (for tests/browser.sh) is missing but {REQUIRE_ENV}=1");
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED demo_serve_mcp_oauth_call: curl (tests/browser.sh) is not on PATH"
        );
        return;
    }
    let tmp = tempdir("call");
    let mut serve = Serve::start(tmp.path());
    let browser_log = tmp.path().join("browser.log");
    let call = |args: &[&str]| {
        let mut cmd = command(BIN, tmp.path());
        cmd.arg("call")
            .arg(&serve.mcp_url)
            .args(args)
            .env("BROWSER", repo_root().join("tests/browser.sh"))
            .env("BROWSER_LOG", &browser_log);
        let out = run(cmd, STEP_TIMEOUT, "mcp-oauth call");
        assert!(
            out.status.success(),
            "mcp-oauth call {args:?} failed ({}):\n{}\nstderr:\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out
    };

    let out = call(&["whoami"]);
    let who: Value = serde_json::from_str(out.stdout.trim()).expect("whoami prints JSON");
    assert_eq!(who["sub"], "demo-user", "{who}");
    assert_eq!(who["aud"], json!([serve.mcp_url]), "{who}");
    assert_eq!(who["iss"], serve.issuer.as_str(), "{who}");
    assert_eq!(who["scope"], "mcp offline_access", "{who}");
    assert!(
        out.stderr.contains("Opening your browser to authorize"),
        "{}",
        out.stderr
    );

    // The stored token is used: no second browser, no second registration.
    let out = call(&["echo", "--args", r#"{"text":"hello again"}"#]);
    assert_eq!(out.stdout.trim(), "hello again");
    assert_eq!(
        browser_opens(&browser_log),
        1,
        "the browser was opened again"
    );

    assert!(
        serve.wait_for_log(|l| l.contains("tools/call echo"), STEP_TIMEOUT),
        "no tools/call echo in the log:\n{}",
        serve.log_text()
    );
    let log = serve.log_text();
    assert_in_order(
        &log,
        &[
            "mcp POST /mcp → 401  server/discover; no token; WWW-Authenticate: Bearer resource_metadata=",
            "mcp GET /.well-known/oauth-protected-resource/mcp → 200",
            "as  GET /.well-known/oauth-authorization-server → 200",
            "as  POST /register → 201  registered demo-",
            "as  GET /authorize → 302  approved demo-",
            "as  POST /token → 200  authorization_code for demo-",
            "mcp POST /mcp → 200  tools/call whoami; Bearer eyJ",
            "mcp POST /mcp → 200  tools/call echo; Bearer eyJ",
        ],
    );
    assert_eq!(log.matches("POST /register").count(), 1, "{log}");
    assert!(
        !log.contains("GET /.well-known/oauth-protected-resource →"),
        "root probed:\n{log}"
    );
    serve.stop();
}

// ---------------------------------------------------------------- foreign clients

#[test]
fn demo_serve_typescript_sdk() {
    let Some(deps) = cli::deps(
        "demo_serve_typescript_sdk",
        "the TypeScript SDK client against mcp-oauth demo --serve",
    ) else {
        return;
    };
    let tmp = tempdir("ts-sdk");
    let mut serve = Serve::start(tmp.path());
    let mut cmd = command(&deps.node, tmp.path());
    cmd.arg(deps.root.join("tests/node/demo-ts-client.mjs"))
        .arg(&serve.mcp_url)
        .current_dir(deps.root.join("tests/node"));
    let out = run(cmd, STEP_TIMEOUT, "tests/node/demo-ts-client.mjs");
    assert!(
        out.status.success(),
        "the TypeScript SDK client failed ({}):\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        out.stdout,
        out.stderr,
        serve.log_text()
    );
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON line");
    eprintln!("[demo] TypeScript SDK: {r}");
    assert_eq!(r["unauthorized_first"], true, "{r}");
    assert_eq!(r["iss"], serve.issuer.as_str(), "{r}");
    assert_eq!(r["tools"], json!(["echo", "whoami"]), "{r}");
    assert_eq!(r["echo"], "hello from the TypeScript SDK", "{r}");
    assert_eq!(r["whoami"]["sub"], "demo-user", "{r}");
    assert_eq!(r["whoami"]["aud"], json!([serve.mcp_url]), "{r}");
    assert_eq!(r["whoami"]["client_id"], r["client_id"], "{r}");
    assert_eq!(r["refresh_token"], true, "{r}");
    assert!(
        serve.wait_for_log(|l| l.contains("tools/call whoami"), STEP_TIMEOUT),
        "{}",
        serve.log_text()
    );
    let log = serve.log_text();
    assert_in_order(
        &log,
        &[
            "mcp POST /mcp → 401  initialize; no token",
            "mcp GET /.well-known/oauth-protected-resource/mcp → 200",
            "as  POST /register → 201",
            "\"MCP TypeScript SDK (mcp-oauth demo test)\" (none)",
            "as  GET /authorize → 302  approved",
            "as  POST /token → 200  authorization_code",
            "mcp POST /mcp → 200  initialize; Bearer eyJ",
            "tools/call echo; Bearer eyJ",
            "tools/call whoami; Bearer eyJ",
        ],
    );
    serve.stop();
}

/// A stdio JSON-RPC peer: lines in, lines out.
struct Stdio2 {
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Stdio2 {
    fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").expect("write to mcp-remote");
        self.stdin.flush().expect("flush");
    }

    fn response(&mut self, id: u64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no response {id} within {timeout:?}; stdout so far:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["id"] == json!(id)
            {
                return v;
            }
        }
    }
}

#[test]
fn demo_serve_mcp_remote() {
    let Some(deps) = cli::deps(
        "demo_serve_mcp_remote",
        "mcp-remote against mcp-oauth demo --serve",
    ) else {
        return;
    };
    let tmp = tempdir("mcp-remote");
    let mut serve = Serve::start(tmp.path());
    let browser_log = tmp.path().join("browser.log");
    let stderr_path = tmp.path().join("mcp-remote.stderr");
    let mut child = command(&deps.node, tmp.path())
        .arg(
            deps.root
                .join("tests/node/node_modules/mcp-remote/dist/proxy.js"),
        )
        .arg(&serve.mcp_url)
        // mcp-remote opens the browser with `open` → xdg-open → $BROWSER (no desktop).
        .env("BROWSER", deps.root.join("tests/browser.sh"))
        .env("BROWSER_LOG", &browser_log)
        .env("MCP_REMOTE_CONFIG_DIR", tmp.path().join("mcp-remote"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start mcp-remote");
    let mut peer = Stdio2 {
        stdin: child.stdin.take().expect("stdin"),
        lines: lines_of(child.stdout.take().expect("stdout")),
        seen: Vec::new(),
    };
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    peer.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "mcp-oauth-demo-test", "version": "1.0.0"}}}),
    );
    let init = peer.response(1, STEP_TIMEOUT);
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "mcp-oauth-demo",
        "{init}\nmcp-remote stderr:\n{}",
        stderr()
    );
    peer.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    peer.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let tools = peer.response(2, STEP_TIMEOUT);
    let mut names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "whoami"]);
    peer.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}}));
    let call = peer.response(3, STEP_TIMEOUT);
    let text = call["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{call}"));
    let who: Value = serde_json::from_str(text).expect("whoami JSON");
    eprintln!("[demo] mcp-remote whoami: {who}");
    assert_eq!(who["sub"], "demo-user");
    assert_eq!(who["aud"], json!([serve.mcp_url]));
    assert_eq!(who["iss"], serve.issuer.as_str());
    peer.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "through mcp-remote"}}}));
    let echo = peer.response(4, STEP_TIMEOUT);
    assert_eq!(
        echo["result"]["content"][0]["text"], "through mcp-remote",
        "{echo}"
    );

    // Closing stdin ends mcp-remote.
    drop(peer);
    let status = wait_for(
        &mut child,
        Duration::from_secs(20),
        "mcp-remote after stdin EOF",
    );
    assert!(
        status.success() || status.code().is_none(),
        "mcp-remote: {status}\n{}",
        stderr()
    );
    assert_eq!(
        browser_opens(&browser_log),
        1,
        "browser log:\n{}",
        std::fs::read_to_string(&browser_log).unwrap_or_default()
    );

    let log = serve.log_text();
    assert_in_order(
        &log,
        &[
            "→ 401",
            "mcp GET /.well-known/oauth-protected-resource/mcp → 200",
            "as  POST /register → 201",
            "redirect_uris [\"http://localhost:",
            "as  GET /authorize → 302  approved",
            "as  POST /token → 200  authorization_code",
            "initialize; Bearer eyJ",
            "tools/call whoami; Bearer eyJ",
            "tools/call echo; Bearer eyJ",
        ],
    );
    serve.stop();
}
