//! Hardening (issue #7) at the level of the `mcp-oauth` binary, against a small
//! in-process MCP server + authorization server on loopback (no external dependency):
//!
//! - no secret in any output: every command run with `RUST_LOG=trace`, and every byte
//!   they print (stderr, and stdout except the token that `token` is asked to print)
//!   scanned for every secret the servers issued or received;
//! - ten processes refreshing one credential at once, with rotating refresh tokens and
//!   reuse detection: exactly one refresh per expiry, no `invalid_grant`, no revocation;
//! - `mcp-oauth token` killed with SIGKILL at random points of a refresh: the store is
//!   always readable and holds the old or the new credential.
//!
//! The authorization server rotates refresh tokens and treats the reuse of a rotated one
//! as theft (the whole grant is revoked), as OAuth 2.1 §4.3.1 recommends; it counts what
//! happened. Tokens, codes and secrets are distinctive strings, so that a scan finds them.
#![cfg(unix)]

use mcp_oauth::store::{CredentialKey, CredentialRecord, CredentialStore, FileStore};
use mcp_oauth_testkit::cli::{self, Sandbox, now, repo_root, wait_or_kill};
use mcp_oauth_testkit::mock_server::{
    MockServer, RecordedRequest, Reply, json, not_found, redirect, text, with_header,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "client-cli-hardening";
const CS: &str = "cs-SECRET-CLI-3e9f0a2b";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn at(n: u32) -> String {
    format!("at-SECRET-CLI-{n:04}-8f3e1c")
}
fn rt(n: u32) -> String {
    format!("rt-SECRET-CLI-{n:04}-c72a90")
}
fn code(n: u32) -> String {
    format!("code-SECRET-CLI-{n:04}-1b5d77")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// 503 with a debug page that shows the request (form and headers).
    Echo503,
    /// `invalid_grant` whose description quotes the refresh token it refused.
    InvalidGrantQuoting,
}

/// The authorization server's state and counters.
#[derive(Default)]
struct As {
    next: u32,
    codes: HashMap<String, bool>,
    /// The live refresh token.
    current_rt: Option<String>,
    used_rts: HashSet<String>,
    valid_ats: HashSet<String>,
    /// Every secret value issued or received (scanned for in the outputs).
    secrets: BTreeSet<String>,
    revoked: bool,
    reuse_detection: bool,
    refreshes: usize,
    code_exchanges: usize,
    reuse_detected: usize,
    invalid_grants: usize,
    refresh_delay: Duration,
    fail: Option<Fail>,
}

impl As {
    fn issue(&mut self) -> Value {
        self.next += 1;
        let (a, r) = (at(self.next), rt(self.next));
        self.secrets.insert(a.clone());
        self.secrets.insert(r.clone());
        self.valid_ats.insert(a.clone());
        self.current_rt = Some(r.clone());
        json!({"access_token": a, "token_type": "Bearer", "expires_in": 3600, "refresh_token": r, "scope": "mcp:tools"})
    }
}

struct World {
    /// Dropped first: the server stops before its state and the directory go.
    _server: MockServer,
    state: Arc<Mutex<As>>,
    url: String,
    tmp: tempfile::TempDir,
    home: PathBuf,
    sandbox: Sandbox,
}

/// What the servers answer, and how long the token endpoint takes to (a refresh can be
/// made slow, to widen the window in which processes race or are killed).
struct Answer {
    reply: Reply,
    after: Duration,
}

fn at_once(reply: Reply) -> Answer {
    Answer {
        reply,
        after: Duration::ZERO,
    }
}

fn reply(status: u16, v: Value) -> Answer {
    at_once(json(status, v))
}

fn handle(state: &Mutex<As>, base: &str, req: &RecordedRequest) -> Answer {
    let mut st = state.lock().unwrap();
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/oauth-protected-resource/mcp") => reply(
            200,
            json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["mcp:tools"]}),
        ),
        ("GET", "/.well-known/oauth-authorization-server") => reply(
            200,
            json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "revocation_endpoint": format!("{base}/revoke"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "authorization_response_iss_parameter_supported": true,
            }),
        ),
        ("POST", "/register") => {
            st.secrets.insert(CS.to_string());
            reply(
                201,
                json!({"client_id": CLIENT_ID, "client_secret": CS, "client_secret_expires_at": 0,
                       "token_endpoint_auth_method": "client_secret_basic"}),
            )
        }
        ("GET", "/authorize") => {
            let q = req.query_map();
            st.next += 1;
            let c = code(st.next);
            st.secrets.insert(c.clone());
            st.codes.insert(c.clone(), false);
            let iss: String = url::form_urlencoded::byte_serialize(base.as_bytes()).collect();
            at_once(redirect(&format!(
                "{}?code={c}&state={}&iss={iss}",
                q["redirect_uri"], q["state"]
            )))
        }
        ("POST", "/token") | ("POST", "/revoke") => {
            let form = req.form();
            for k in ["code_verifier", "code", "refresh_token", "token"] {
                if let Some(v) = form.get(k) {
                    st.secrets.insert(v.clone());
                }
            }
            let basic = mcp_oauth::token::basic_auth_value(CLIENT_ID, CS);
            if req.header("authorization") != Some(basic.as_str()) {
                return reply(401, json!({"error": "invalid_client"}));
            }
            if let Some(f) = st.fail {
                return match f {
                    Fail::Echo503 => at_once(text(
                        503,
                        "text/html",
                        format!(
                            "<h1>Service Unavailable</h1><pre>{}\n{:?}</pre>",
                            req.body, req.headers
                        ),
                    )),
                    Fail::InvalidGrantQuoting => {
                        st.invalid_grants += 1;
                        let t = form
                            .get("refresh_token")
                            .or(form.get("token"))
                            .cloned()
                            .unwrap_or_default();
                        reply(
                            400,
                            json!({"error": "invalid_grant", "error_description": format!("refresh token {t} is not valid")}),
                        )
                    }
                };
            }
            if req.path == "/revoke" {
                return at_once(text(200, "application/json", ""));
            }
            match form.get("grant_type").map(String::as_str) {
                Some("authorization_code") => {
                    let c = form.get("code").cloned().unwrap_or_default();
                    if st.codes.get(&c) != Some(&false) {
                        st.invalid_grants += 1;
                        return reply(400, json!({"error": "invalid_grant"}));
                    }
                    st.codes.insert(c, true);
                    st.code_exchanges += 1;
                    st.revoked = false;
                    st.used_rts.clear();
                    let body = st.issue();
                    reply(200, body)
                }
                Some("refresh_token") => {
                    let given = form.get("refresh_token").cloned().unwrap_or_default();
                    let live = st.current_rt.as_deref() == Some(given.as_str());
                    let reused = st.used_rts.contains(&given);
                    if st.revoked || !(live || (reused && !st.reuse_detection)) {
                        if reused && st.reuse_detection {
                            // A rotated refresh token came back: treat it as stolen.
                            st.reuse_detected += 1;
                            st.revoked = true;
                            st.valid_ats.clear();
                        }
                        st.invalid_grants += 1;
                        return reply(400, json!({"error": "invalid_grant"}));
                    }
                    st.used_rts.insert(given);
                    st.refreshes += 1;
                    let body = st.issue();
                    let delay = st.refresh_delay;
                    Answer {
                        reply: json(200, body),
                        after: delay,
                    }
                }
                _ => reply(400, json!({"error": "unsupported_grant_type"})),
            }
        }
        ("POST", "/mcp") => {
            let token = req
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !st.valid_ats.contains(token) {
                return at_once(with_header(
                    text(401, "application/json", "{}"),
                    "www-authenticate",
                    &format!(
                        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
                    ),
                ));
            }
            let msg: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
            let result = match method {
                "initialize" => {
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                                       "serverInfo": {"name": "hardening", "version": "1"}})
                }
                m if m.starts_with("notifications/") => {
                    return at_once(text(202, "application/json", ""));
                }
                "tools/list" => {
                    json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
                }
                "tools/call" => json!({"content": [{"type": "text", "text": "echoed"}]}),
                _ => {
                    return reply(
                        200,
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
                    );
                }
            };
            reply(200, json!({"jsonrpc": "2.0", "id": id, "result": result}))
        }
        _ => at_once(not_found()),
    }
}

impl World {
    fn start() -> World {
        let state: Arc<Mutex<As>> = Arc::new(Mutex::new(As {
            reuse_detection: true,
            ..Default::default()
        }));
        let s2 = state.clone();
        let server = MockServer::start(move |base, req| {
            let answer = handle(&s2, &base, &req);
            async move {
                tokio::time::sleep(answer.after).await;
                answer.reply
            }
        });
        let url = server.url("/mcp");
        let tmp = cli::temp_dir("mcp-oauth-hardening.");
        let home = tmp.path().join("home");
        let sandbox = Sandbox {
            home: home.clone(),
            config: tmp.path().join("config.toml"),
            browser: repo_root().join("tests/browser.sh"),
            browser_log: tmp.path().join("browser.log"),
        };
        World {
            _server: server,
            state,
            url,
            tmp,
            home,
            sandbox,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.command(env!("CARGO_BIN_EXE_mcp-oauth"), args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn store(&self) -> FileStore {
        FileStore::new(self.home.clone())
    }

    fn key(&self) -> CredentialKey {
        CredentialKey::new(self.url.clone())
    }

    fn record(&self) -> Option<CredentialRecord> {
        self.store()
            .load(&self.key())
            .expect("the store is always readable")
    }

    /// Makes the stored access token expired (as a clock moving on would).
    fn expire(&self) {
        let mut rec = self.record().expect("a stored credential");
        rec.tokens.expires_at = Some(now() - 3600);
        self.store().save(&self.key(), &rec).unwrap();
    }

    fn with<T>(&self, f: impl FnOnce(&mut As) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

struct Out {
    args: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command, label: &str, dir: &std::path::Path) -> Out {
    let o = dir.join(format!("{label}.stdout"));
    let e = dir.join(format!("{label}.stderr"));
    cmd.stdout(File::create(&o).unwrap())
        .stderr(File::create(&e).unwrap());
    let mut child = cmd.spawn().expect("spawn mcp-oauth");
    let status = wait_or_kill(&mut child, RUN_TIMEOUT).unwrap_or_else(|| panic!("{label} hung"));
    Out {
        args: label.to_string(),
        status,
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
    }
}

/// Every command, with every log line at `trace`: no access token, refresh token, client
/// secret, authorization code or PKCE verifier in any log line or error message.
#[test]
fn no_secret_in_any_output_at_trace_level() {
    let w = World::start();
    let logs = w.tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let mut outs: Vec<Out> = Vec::new();
    let go = |outs: &mut Vec<Out>, w: &World, args: &[&str], stdin: Option<&str>| -> usize {
        let label = format!("{:02}-{}", outs.len() + 1, args[0]);
        let mut cmd = w.cmd(args);
        cmd.env("RUST_LOG", "trace");
        let out = if let Some(input) = stdin {
            let o = logs.join(format!("{label}.stdout"));
            let e = logs.join(format!("{label}.stderr"));
            cmd.stdin(Stdio::piped())
                .stdout(File::create(&o).unwrap())
                .stderr(File::create(&e).unwrap());
            let mut child = cmd.spawn().unwrap();
            {
                use std::io::Write;
                let mut sin = child.stdin.take().unwrap();
                sin.write_all(input.as_bytes()).unwrap();
            }
            let status = wait_or_kill(&mut child, RUN_TIMEOUT).expect("proxy ended");
            Out {
                args: label,
                status,
                stdout: fs::read_to_string(o).unwrap_or_default(),
                stderr: fs::read_to_string(e).unwrap_or_default(),
            }
        } else {
            run(cmd, &label, &logs)
        };
        outs.push(out);
        outs.len() - 1
    };

    let i = go(&mut outs, &w, &["login", &w.url], None);
    assert!(outs[i].status.success(), "login: {}", outs[i].stderr);
    let i = go(&mut outs, &w, &["status", "--json"], None);
    assert!(outs[i].status.success());
    let i = go(&mut outs, &w, &["call", &w.url], None);
    assert!(outs[i].status.success(), "call: {}", outs[i].stderr);
    let i = go(&mut outs, &w, &["token", &w.url], None);
    assert_eq!(
        outs[i].stdout.trim(),
        at(2),
        "token prints the token, and only it"
    );
    w.expire();
    let i = go(
        &mut outs,
        &w,
        &["call", &w.url, "echo", "--args", "{\"text\":\"hi\"}"],
        None,
    );
    assert!(
        outs[i].status.success(),
        "call after expiry: {}",
        outs[i].stderr
    );
    w.expire();
    let i = go(&mut outs, &w, &["token", &w.url], None);
    assert_eq!(outs[i].stdout.trim(), at(4));
    let proxy_input = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        "\n"
    );
    let i = go(&mut outs, &w, &["proxy", &w.url], Some(proxy_input));
    assert!(
        outs[i].stdout.contains("\"echo\""),
        "proxy relayed tools/list: {}\n{}",
        outs[i].stdout,
        outs[i].stderr
    );
    go(&mut outs, &w, &["doctor", &w.url], None);
    // Failures: the AS echoes the request in a 503 page, then quotes the refresh token.
    w.expire();
    w.with(|s| s.fail = Some(Fail::Echo503));
    let i = go(&mut outs, &w, &["token", &w.url], None);
    assert!(
        !outs[i].status.success() && outs[i].stderr.contains("503"),
        "{}",
        outs[i].stderr
    );
    w.with(|s| s.fail = Some(Fail::InvalidGrantQuoting));
    let i = go(&mut outs, &w, &["token", &w.url], None);
    assert!(
        outs[i].stderr.contains("invalid_grant") || outs[i].stderr.contains("log in"),
        "{}",
        outs[i].stderr
    );
    // Log in again (--force: the stored credential may be renewable), and log out while
    // the revocation endpoint echoes the request.
    w.with(|s| s.fail = None);
    let i = go(&mut outs, &w, &["login", "--force", &w.url], None);
    assert!(outs[i].status.success(), "second login: {}", outs[i].stderr);
    w.with(|s| s.fail = Some(Fail::Echo503));
    go(&mut outs, &w, &["logout", &w.url], None);
    w.with(|s| s.fail = None);
    go(&mut outs, &w, &["status"], None);

    let (secrets, exchanges) = w.with(|s| (s.secrets.clone(), s.code_exchanges));
    assert_eq!(exchanges, 2);
    let basic = mcp_oauth::token::basic_auth_value(CLIENT_ID, CS);
    let mut needles: Vec<String> = secrets.into_iter().collect();
    needles.push(basic.trim_start_matches("Basic ").to_string());
    assert!(needles.len() >= 12, "{needles:?}");
    let mut leaks = Vec::new();
    let mut trace_lines = 0;
    let mut bytes = 0;
    for o in &outs {
        trace_lines += o.stderr.lines().filter(|l| l.contains("TRACE")).count();
        bytes += o.stderr.len() + o.stdout.len();
        // `token` prints exactly the token asked for; every other stdout is scanned.
        let stdout = if o.args.ends_with("-token") {
            ""
        } else {
            o.stdout.as_str()
        };
        for (what, text) in [("stderr", o.stderr.as_str()), ("stdout", stdout)] {
            for (n, line) in text.lines().enumerate() {
                for s in &needles {
                    if line.contains(s.as_str()) {
                        leaks.push(format!("{} {what} line {}: {s}: {line}", o.args, n + 1));
                    }
                }
            }
        }
    }
    eprintln!(
        "[hardening] no-secret scan: {} commands, {} secrets looked for, {trace_lines} TRACE lines, {bytes} bytes of output",
        outs.len(),
        needles.len()
    );
    assert!(
        trace_lines > 100,
        "tracing at trace level was on ({trace_lines} TRACE lines)"
    );
    assert!(
        leaks.is_empty(),
        "secrets in the output:\n{}",
        leaks.join("\n")
    );
}

/// Ten processes need a refresh of the same expired credential at once, three times:
/// each time exactly one refresh reaches the AS, all ten print the same new token, no
/// request is refused and the grant is never revoked.
#[test]
fn ten_processes_refresh_once_per_expiry() {
    const N: usize = 10;
    const ROUNDS: usize = 3;
    let w = World::start();
    let logs = w.tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let out = run(w.cmd(&["login", &w.url]), "login", &logs);
    assert!(out.status.success(), "login: {}", out.stderr);
    w.with(|s| s.refresh_delay = Duration::from_millis(800));
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        w.expire();
        let before = w.with(|s| s.refreshes);
        let started = Instant::now();
        let children: Vec<(Child, PathBuf, PathBuf)> = (0..N)
            .map(|i| {
                let o = logs.join(format!("r{round}-p{i}.stdout"));
                let e = logs.join(format!("r{round}-p{i}.stderr"));
                let mut cmd = w.cmd(&["token", &w.url]);
                cmd.stdout(File::create(&o).unwrap())
                    .stderr(File::create(&e).unwrap());
                (cmd.spawn().unwrap(), o, e)
            })
            .collect();
        let mut results = Vec::new();
        for (mut c, o, e) in children {
            let st = wait_or_kill(&mut c, RUN_TIMEOUT).expect("token finished");
            results.push((
                st,
                fs::read_to_string(o).unwrap().trim().to_string(),
                fs::read_to_string(e).unwrap(),
            ));
        }
        let wall = started.elapsed();
        let (refreshes, invalid, reuse, revoked, current_at) = w.with(|s| {
            (
                s.refreshes - before,
                s.invalid_grants,
                s.reuse_detected,
                s.revoked,
                at(s.next),
            )
        });
        let ok = results.iter().filter(|r| r.0.success()).count();
        let tokens: BTreeSet<&str> = results.iter().map(|r| r.1.as_str()).collect();
        let waited = results
            .iter()
            .filter(|r| r.2.contains("waiting for it"))
            .count();
        let line = format!(
            "round {round}: exit 0 {ok}/{N}, refreshes at the AS {refreshes}, distinct tokens {}, \
             waited (said so) {waited}, invalid_grant {invalid}, reuse detected {reuse}, revoked {revoked}, wall {} ms",
            tokens.len(),
            wall.as_millis()
        );
        eprintln!("[hardening] {line}");
        figures.push(line);
        for (i, r) in results.iter().enumerate() {
            assert!(r.0.success(), "round {round} process {i}: {}\n{}", r.0, r.2);
        }
        assert_eq!(refreshes, 1, "round {round}: exactly one refresh");
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: one token for all: {tokens:?}"
        );
        assert_eq!(
            tokens.iter().next().copied(),
            Some(current_at.as_str()),
            "round {round}: the refreshed token"
        );
        assert_eq!(
            (invalid, reuse, revoked),
            (0, 0, false),
            "round {round}: no refusal, no revocation"
        );
    }
    let _ = fs::write(w.tmp.path().join("figures.txt"), figures.join("\n"));
    // The grant is alive: the MCP server accepts the latest token.
    let out = run(w.cmd(&["call", &w.url]), "call-after", &logs);
    assert!(out.status.success(), "{}", out.stderr);
}

/// `mcp-oauth token` killed (SIGKILL) at random points while it refreshes: the store is
/// readable after every kill and holds a credential the AS issued (the old one, or the
/// new one when the kill came after the write). Bounded: 60 kills or 60 s.
#[test]
fn sigkill_during_refresh_never_breaks_the_store() {
    let w = World::start();
    let logs = w.tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let out = run(w.cmd(&["login", &w.url]), "login", &logs);
    assert!(out.status.success(), "login: {}", out.stderr);
    // Refreshes answer after 0-40 ms, so kills land before, during and after the write;
    // a kill after the AS rotated but before the write leaves the old (rotated) refresh
    // token, which this AS accepts again (no reuse detection here: that is the grant-loss
    // case of the fault matrix).
    w.with(|s| s.reuse_detection = false);
    let mut seed = now() ^ 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // How long a whole refresh takes here: the kills are spread over that time.
    w.expire();
    w.with(|s| s.refresh_delay = Duration::from_millis(20));
    let t = Instant::now();
    let out = run(w.cmd(&["token", &w.url]), "token-calibrate", &logs);
    assert!(out.status.success(), "{}", out.stderr);
    let span = (t.elapsed().as_millis() as u64 * 13 / 10).max(20);
    let started = Instant::now();
    let (mut kills, mut completed, mut old, mut new) = (0, 0, 0, 0);
    while kills < 60 && started.elapsed() < Duration::from_secs(60) {
        w.expire();
        let before = w.record().unwrap();
        w.with(|s| s.refresh_delay = Duration::from_millis(rand(40)));
        let mut cmd = w.cmd(&["token", &w.url]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rand(span)));
        if child.try_wait().unwrap().is_some() {
            completed += 1;
        } else {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let after = w
            .record()
            .expect("a credential is still stored after the kill");
        let issued = w.with(|s| s.secrets.clone());
        let rt_after = after
            .tokens
            .refresh_token
            .as_ref()
            .unwrap()
            .expose()
            .to_string();
        assert!(
            issued.contains(&rt_after),
            "the stored refresh token is one the AS issued"
        );
        if after.tokens.access_token == before.tokens.access_token {
            assert_eq!(
                after, before,
                "unchanged means byte for byte the old record"
            );
            old += 1;
        } else {
            assert!(
                after.tokens.expires_at.unwrap() > now(),
                "a new record is a whole new record"
            );
            new += 1;
        }
    }
    let leftovers = fs::read_dir(w.home.join("credentials"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    eprintln!(
        "[hardening] SIGKILL during refresh: {kills} kills + {completed} runs that finished first in {:?} \
         (kill points spread over {span} ms); afterwards old record {old}, new record {new}, broken 0; \
         temporary files left by kills: {leftovers}",
        started.elapsed()
    );
    assert!(kills >= 20, "enough kills landed ({kills})");
    assert!(
        old > 0 && new > 0,
        "kills landed both before and after the write (old {old}, new {new})"
    );
    // And the credential still works.
    w.expire();
    let out = run(w.cmd(&["token", &w.url]), "token-after", &logs);
    assert!(out.status.success(), "{}", out.stderr);
}
