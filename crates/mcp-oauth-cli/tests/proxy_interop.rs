//! Interop of `mcp-oauth proxy` with real third-party software, end to end:
//!
//! * stdio clients: the official MCP Python SDK 1.x (`tests/python/proxy_client.py`, its
//!   `stdio_client` + `ClientSession`), the official TypeScript SDK
//!   (`tests/node/proxy-client.mjs`, `StdioClientTransport` + `Client`), and the Python
//!   SDK 2.x (`tests/python/proxy_client_modern.py`, `Client` in `mode="auto"`: it probes
//!   `server/discover` and speaks 2026-07-28); each launches `mcp-oauth proxy <url>`
//!   itself, as a host would;
//! * MCP server: `tests/python/mcp_server.py` on the Python SDK 1.x's FastMCP (`.deps/venv`)
//!   in two wires: session-based with SSE responses (its default), and stateless with JSON
//!   responses (`tests/python/mcp_server_variant.py`, `stateless_http` + `json_response`);
//!   and on the SDK 2.x's MCPServer (`.deps/venv-modern`), which serves 2026-07-28 beside
//!   the initialize handshake, or 2026-07-28 alone with `MCP_MODERN_ONLY=1` (the SDK has
//!   no such setting; the fixture refuses legacy requests as the spec says);
//! * authorization server: `oidc-provider` (`tests/node/oidc-as.mjs`), with `$BROWSER` =
//!   `tests/browser.sh`.
//!
//! The wires (`Wire`): the 1.x server's session and stateless wires (1.x and TypeScript
//! clients); the 2026-07-28 wire end to end (2.x client and server); the era bridge (1.x
//! and TypeScript clients, 2026-07-28-only 2.x server); the 2.x server's session wire
//! (1.x and TypeScript clients).
//!
//! What is checked, per wire: two proxies started at once on an empty store share one
//! login (one browser, one authorization_code grant); a later run uses the stored token
//! with no OAuth traffic; with the access token expired, two proxies at once share one
//! refresh (the refresh tokens rotate, so a second refresh would fail); every run's tool
//! calls return the token's subject and audience; and what went over the wire, from the
//! server's request log: the session ended with DELETE (session wires); every POST with
//! `MCP-Protocol-Version: 2026-07-28`, `Mcp-Method`, `Mcp-Name` for the tool calls and no
//! `Mcp-Session-Id` (2026-07-28 and bridged); bridged, each proxy's `initialize` refused
//! with 400, answered from `server/discover`, and the bridge named in the proxy's log.
//!
//! Gated like `real_servers.rs`: needs `MCP_OAUTH_TEST_DEPS` (scripts/bootstrap), skips
//! loudly without it unless `MCP_OAUTH_REQUIRE_REAL=1`. Loopback only.
#![cfg(unix)]

use mcp_oauth_testkit::cli::{
    self, Deps, ServerProcess, browser_opens, clean_env, credential_files, json_lines,
    keep_logs_on_request, log_tails, now, rewrite_as_the_store_does, start_mcp_server,
    start_oidc_provider, stderr_tails, tail, wait_or_kill,
};
use serde_json::Value;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// What the proxy logs (at info, the runs' default) when it bridges a legacy client to a
/// 2026-07-28-only server.
const BRIDGING: &str = "the server is 2026-07-28-only; bridging the client's initialize";

#[derive(Clone, Copy, Debug)]
enum Wire {
    /// SDK 1.x FastMCP defaults: Mcp-Session-Id, SSE responses, GET stream.
    Session,
    /// SDK 1.x stateless_http + json_response: no session, JSON responses.
    Stateless,
    /// SDK 2.x client and server (dual-era): the 2026-07-28 wire end to end.
    Modern,
    /// SDK 2.x server made 2026-07-28-only (MCP_MODERN_ONLY=1), legacy clients: the
    /// proxy's era bridge.
    Bridged,
    /// SDK 2.x server (dual-era), legacy clients: its initialize handshake and sessions.
    DualEraSession,
}

impl Wire {
    /// The two SDK clients of the runs (the second also runs alone).
    fn clients(self) -> [Sdk; 2] {
        match self {
            Wire::Modern => [Sdk::PythonModern, Sdk::PythonModern],
            _ => [Sdk::Python, Sdk::TypeScript],
        }
    }

    /// Whether the server is the SDK 2.x one (.deps/venv-modern).
    fn sdk2_server(self) -> bool {
        matches!(self, Wire::Modern | Wire::Bridged | Wire::DualEraSession)
    }
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    /// SDK 1.x `ClientSession` (initialize handshake).
    Python,
    TypeScript,
    /// SDK 2.x `Client`, `mode="auto"`: `server/discover`, then 2026-07-28.
    PythonModern,
}

impl Sdk {
    /// The protocol version the client must report, where it reports one (the
    /// TypeScript SDK's stdio transport does not).
    fn protocol(self) -> Option<&'static str> {
        match self {
            Sdk::Python => Some("2025-11-25"),
            Sdk::TypeScript => None,
            Sdk::PythonModern => Some("2026-07-28"),
        }
    }
}

struct Ctx {
    deps: Deps,
    _tmp: tempfile::TempDir,
    home: PathBuf,
    logdir: PathBuf,
    as_log: PathBuf,
    mcp_log: PathBuf,
    browser_log: PathBuf,
    url: String,
    servers: Vec<ServerProcess>,
    runs: usize,
}

struct Run {
    sdk: Sdk,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Ctx {
    fn start(deps: Deps, wire: Wire) -> Ctx {
        let tmp = cli::temp_dir("mcp-oauth-proxy-interop.");
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).unwrap();
        let as_log = logdir.join("as.log");
        let mcp_log = logdir.join("mcp.log");
        let oidc = start_oidc_provider(&deps, &logdir, &as_log, &[]);
        let issuer = oidc.field("issuer");
        let mcp = start_mcp_server(mcp_server_command(&deps, wire), &issuer, &mcp_log, &logdir);
        let url = mcp.field("url");
        eprintln!("[proxy_interop] {wire:?} wire: MCP {url}, issuer {issuer}");
        Ctx {
            home: tmp.path().join("home"),
            browser_log: logdir.join("browser.log"),
            logdir,
            as_log,
            mcp_log,
            url,
            servers: vec![oidc, mcp],
            runs: 0,
            deps,
            _tmp: tmp,
        }
    }

    /// The stderr of run `n` (the SDK client's, with the proxy's log).
    fn run_stderr(&self, n: usize) -> String {
        fs::read_to_string(self.logdir.join(format!("run{n}.stderr"))).unwrap_or_default()
    }

    /// How many runs' proxies logged `line`.
    fn runs_logging(&self, line: &str) -> usize {
        (1..=self.runs)
            .filter(|&n| self.run_stderr(n).contains(line))
            .count()
    }

    /// Starts an SDK stdio client that launches `mcp-oauth proxy <url>`.
    fn spawn(&mut self, sdk: Sdk) -> Run {
        self.runs += 1;
        let n = self.runs;
        let out = self.logdir.join(format!("run{n}.stdout"));
        let err = self.logdir.join(format!("run{n}.stderr"));
        let mut cmd = match sdk {
            Sdk::Python => {
                let mut c = Command::new(&self.deps.python);
                c.arg(self.deps.root.join("tests/python/proxy_client.py"));
                c
            }
            Sdk::TypeScript => {
                let mut c = Command::new(&self.deps.node);
                c.arg(self.deps.root.join("tests/node/proxy-client.mjs"));
                c
            }
            Sdk::PythonModern => {
                let mut c = Command::new(&self.deps.python_modern);
                c.arg(self.deps.root.join("tests/python/proxy_client_modern.py"));
                c
            }
        };
        cmd.arg(env!("CARGO_BIN_EXE_mcp-oauth"))
            .arg("proxy")
            .arg(&self.url)
            .env("MCP_OAUTH_HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.logdir)
            .env_remove("MCP_OAUTH_CONFIG")
            .env("BROWSER", &self.deps.browser)
            .env("BROWSER_LOG", &self.browser_log)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        clean_env(&mut cmd);
        eprintln!(
            "[proxy_interop] run {n}: {sdk:?} SDK client -> mcp-oauth proxy {}",
            self.url
        );
        Run {
            sdk,
            child: cmd.spawn().expect("spawn the SDK client"),
            out,
            err,
            started: Instant::now(),
        }
    }

    /// Waits for a run and checks its output.
    fn finish(&self, mut run: Run) -> Value {
        let left = RUN_TIMEOUT.saturating_sub(run.started.elapsed());
        let status = wait_or_kill(&mut run.child, left).unwrap_or_else(|| {
            panic!(
                "{:?} client did not finish within {RUN_TIMEOUT:?}{}",
                run.sdk,
                self.dump()
            )
        });
        let stdout = fs::read_to_string(&run.out).unwrap_or_default();
        assert!(
            status.success(),
            "{:?} client failed ({status}); stdout {stdout:?}\nstderr:\n{}{}",
            run.sdk,
            tail(&run.err, 6000),
            self.dump()
        );
        let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "{:?} client printed no JSON ({e}): {stdout:?}{}",
                run.sdk,
                self.dump()
            )
        });
        assert_eq!(v["server"], "mcp-oauth-test-server", "{v}");
        assert_eq!(v["tools"], serde_json::json!(["echo", "whoami"]), "{v}");
        assert_eq!(v["echo"], "through the proxy", "{v}");
        if let Some(protocol) = run.sdk.protocol() {
            assert_eq!(
                v["protocol"], protocol,
                "the {:?} client's protocol version through the proxy: {v}",
                run.sdk
            );
        }
        assert_eq!(v["whoami"]["sub"], "test-user", "{v}");
        assert_eq!(
            v["whoami"]["aud"],
            self.url.as_str(),
            "the token is bound to the MCP URL: {v}"
        );
        eprintln!(
            "[proxy_interop]   {:?} client ok in {:.2}s",
            run.sdk,
            run.started.elapsed().as_secs_f64()
        );
        v
    }

    fn token_requests(&self, grant_type: &str) -> usize {
        cli::token_requests(&json_lines(&self.as_log), Some(grant_type))
    }

    fn browser_opens(&self) -> usize {
        browser_opens(&self.browser_log)
    }

    fn mcp_requests(&self) -> Vec<Value> {
        json_lines(&self.mcp_log)
    }

    /// Sets `expires_at` of every stored access token to the past (as the store writes:
    /// 0600 temp file, rename).
    fn expire_tokens(&self) -> usize {
        let now = now();
        let mut edited = 0;
        let dir = self.home.join("credentials");
        if let Err(e) = fs::read_dir(&dir) {
            panic!("{}: {e}{}", dir.display(), self.dump());
        }
        for path in credential_files(&self.home) {
            let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let Some(tokens) = v
                .pointer_mut("/record/tokens")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            tokens.insert("expires_at".into(), Value::from(now - 3600));
            rewrite_as_the_store_does(&path, &v);
            edited += 1;
        }
        edited
    }

    fn dump(&self) -> String {
        let mut s = format!(
            "\n===== diagnostics (logs in {}) =====\n",
            self.logdir.display()
        );
        for n in 1..=self.runs {
            s += &format!(
                "--- run {n} stderr:\n{}\n",
                tail(&self.logdir.join(format!("run{n}.stderr")), 4000)
            );
        }
        s += &log_tails(
            &[
                ("AS log", &self.as_log),
                ("MCP log", &self.mcp_log),
                ("browser log", &self.browser_log),
            ],
            4000,
        );
        s += &stderr_tails(&self.servers, 3000);
        s
    }

    #[track_caller]
    fn check(&self, cond: bool, what: &str) {
        assert!(cond, "{what}{}", self.dump());
        eprintln!("[proxy_interop]   ok: {what}");
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        while let Some(s) = self.servers.pop() {
            drop(s);
        }
        keep_logs_on_request(self._tmp.path(), "proxy_interop");
    }
}

/// The MCP server of `wire`: the SDK 1.x one through mcp_server_variant.py, or
/// mcp_server.py on the SDK 2.x.
fn mcp_server_command(deps: &Deps, wire: Wire) -> Command {
    if wire.sdk2_server() {
        let mut cmd = Command::new(&deps.python_modern);
        cmd.arg(deps.root.join("tests/python/mcp_server.py"));
        if let Wire::Bridged = wire {
            cmd.env("MCP_MODERN_ONLY", "1");
        }
        return cmd;
    }
    let mut cmd = Command::new(&deps.python);
    cmd.arg(deps.root.join("tests/python/mcp_server_variant.py"));
    if let Wire::Stateless = wire {
        cmd.env("MCP_STATELESS_HTTP", "1")
            .env("MCP_JSON_RESPONSE", "1");
    }
    cmd
}

fn interop(wire: Wire) {
    let Some(deps) = deps() else { return };
    let mut ctx = Ctx::start(deps, wire);
    let [first, second] = wire.clients();

    // 1. Two proxies at once on an empty store: one login, shared.
    let a = ctx.spawn(first);
    let b = ctx.spawn(second);
    ctx.finish(a);
    ctx.finish(b);
    ctx.check(
        ctx.browser_opens() == 1,
        &format!(
            "one browser for two proxies (opened {})",
            ctx.browser_opens()
        ),
    );
    ctx.check(
        ctx.token_requests("authorization_code") == 1,
        "one authorization_code grant",
    );

    // 2. Stored token: no OAuth traffic at all, and exactly one HTTP request before the
    //    initialize reply.
    let (opens, codes, refreshes) = (
        ctx.browser_opens(),
        ctx.token_requests("authorization_code"),
        ctx.token_requests("refresh_token"),
    );
    let before = ctx.mcp_requests().len();
    let r = ctx.spawn(second);
    ctx.finish(r);
    ctx.check(
        (
            ctx.browser_opens(),
            ctx.token_requests("authorization_code"),
            ctx.token_requests("refresh_token"),
        ) == (opens, codes, refreshes),
        "a stored token: no browser, no token request",
    );
    let reqs: Vec<Value> = ctx.mcp_requests().into_iter().skip(before).collect();
    ctx.check(
        reqs.iter()
            .all(|e| e["path"] == "/mcp" && e["authorization"] == true),
        "a stored token: only MCP requests, all with credentials (no discovery)",
    );
    first_requests(&ctx, wire, &reqs);

    // 3. Expired access token, two proxies at once: one refresh, shared (refresh tokens
    //    rotate: a second refresh with the old one would revoke the grant).
    ctx.check(
        ctx.expire_tokens() >= 1,
        "marked the stored access token expired",
    );
    let a = ctx.spawn(first);
    let b = ctx.spawn(second);
    ctx.finish(a);
    ctx.finish(b);
    ctx.check(
        ctx.token_requests("refresh_token") == refreshes + 1,
        &format!(
            "one refresh_token grant for two proxies (saw {})",
            ctx.token_requests("refresh_token") - refreshes
        ),
    );
    ctx.check(ctx.browser_opens() == opens, "no browser for the refresh");
    let refused: Vec<Value> = json_lines(&ctx.as_log)
        .into_iter()
        .filter(|e| e["path"] == "/token" && e.get("error").is_some())
        .collect();
    ctx.check(
        refused.is_empty(),
        &format!("the AS refused no token request ({refused:?})"),
    );

    // 4. The wire.
    let reqs = ctx.mcp_requests();
    match wire {
        Wire::Session | Wire::DualEraSession => session_wire(&ctx, &reqs),
        Wire::Stateless => stateless_wire(&ctx, &reqs),
        Wire::Modern => modern_wire(&ctx, &reqs),
        Wire::Bridged => bridged_wire(&ctx, &reqs),
    }
}

/// The first requests of a run with a stored token went through: the `initialize` (or
/// `server/discover`) POST; bridged, the refused `initialize`, then `server/discover`.
fn first_requests(ctx: &Ctx, wire: Wire, reqs: &[Value]) {
    if let Wire::Bridged = wire {
        ctx.check(
            reqs.first()
                .is_some_and(|e| e["status"] == 400 && e["protocol_version"].is_null())
                && reqs
                    .get(1)
                    .is_some_and(|e| e["mcp_method"] == "server/discover" && e["status"] == 200),
            &format!(
                "bridged: the initialize was refused (400), then server/discover succeeded ({:?})",
                &reqs[..reqs.len().min(2)]
            ),
        );
        return;
    }
    ctx.check(
        reqs.first().is_some_and(|e| e["status"] == 200),
        &format!("the first request succeeded ({:?})", reqs.first()),
    );
}

fn posts(reqs: &[Value]) -> Vec<&Value> {
    reqs.iter()
        .filter(|e| e["method"] == "POST" && e["path"] == "/mcp")
        .collect()
}

fn count(reqs: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    reqs.iter().filter(|e| f(e)).count()
}

fn session_wire(ctx: &Ctx, reqs: &[Value]) {
    let deletes = count(reqs, |e| e["method"] == "DELETE");
    ctx.check(
        deletes == ctx.runs,
        &format!(
            "every proxy ended its session with DELETE ({deletes} for {} runs)",
            ctx.runs
        ),
    );
    ctx.check(
        reqs.iter()
            .any(|e| e["method"] == "GET" && e["status"] == 200),
        "the GET stream was opened",
    );
    let sessionless = count_refs(&posts(reqs), |e| {
        e["authorization"] == true && e["session"] == false
    });
    ctx.check(
        sessionless == ctx.runs,
        &format!(
            "every authorized POST but each proxy's initialize carried Mcp-Session-Id \
             ({sessionless} without for {} runs)",
            ctx.runs
        ),
    );
    ctx.check(
        posts(reqs).iter().all(|e| e["mcp_method"].is_null()),
        "no request on the 2026-07-28 wire (no Mcp-Method header)",
    );
    ctx.check(
        ctx.runs_logging(BRIDGING) == 0,
        "no proxy bridged (the server answered initialize)",
    );
}

fn stateless_wire(ctx: &Ctx, reqs: &[Value]) {
    ctx.check(
        !reqs.iter().any(|e| e["method"] == "DELETE"),
        "no session, so no DELETE",
    );
    let gets = count(reqs, |e| e["method"] == "GET" && e["path"] == "/mcp");
    ctx.check(
        gets <= ctx.runs,
        &format!(
            "at most one GET stream per proxy ({gets} for {} runs)",
            ctx.runs
        ),
    );
}

/// Every authorized POST carried the 2026-07-28 headers, none a session, and the tool
/// calls named their tool in Mcp-Name; no GET stream, no DELETE.
fn modern_requests(ctx: &Ctx, posts: &[&Value]) {
    ctx.check(
        posts.iter().all(|e| {
            e["protocol_version"] == "2026-07-28"
                && e["mcp_method"].is_string()
                && e["session"] == false
        }),
        &format!(
            "all {} POSTs: MCP-Protocol-Version 2026-07-28, an Mcp-Method, no Mcp-Session-Id",
            posts.len()
        ),
    );
    let calls = |name: &str| {
        count_refs(posts, |e| {
            e["mcp_method"] == "tools/call" && e["mcp_name"] == name && e["status"] == 200
        })
    };
    ctx.check(
        calls("echo") == ctx.runs && calls("whoami") == ctx.runs,
        &format!(
            "each run's tools/call echo and whoami went out with Mcp-Name ({} and {} for {} runs)",
            calls("echo"),
            calls("whoami"),
            ctx.runs
        ),
    );
    let lists = count_refs(posts, |e| e["mcp_method"] == "tools/list");
    ctx.check(
        lists >= ctx.runs,
        &format!("tools/list on the 2026-07-28 wire ({lists})"),
    );
}

fn count_refs(reqs: &[&Value], f: impl Fn(&Value) -> bool) -> usize {
    reqs.iter().filter(|e| f(e)).count()
}

fn modern_wire(ctx: &Ctx, reqs: &[Value]) {
    let authorized: Vec<&Value> = posts(reqs)
        .into_iter()
        .filter(|e| e["authorization"] == true)
        .collect();
    modern_requests(ctx, &authorized);
    let discovers = count_refs(&authorized, |e| {
        e["mcp_method"] == "server/discover" && e["status"] == 200
    });
    ctx.check(
        discovers == ctx.runs,
        &format!(
            "each SDK 2.x client's server/discover reached the server ({discovers} for {} runs)",
            ctx.runs
        ),
    );
    ctx.check(
        !reqs
            .iter()
            .any(|e| e["path"] == "/mcp" && (e["method"] == "GET" || e["method"] == "DELETE")),
        "no GET stream, no DELETE (no session)",
    );
    ctx.check(
        ctx.runs_logging(BRIDGING) == 0,
        "no proxy bridged (the client spoke 2026-07-28 itself)",
    );
}

fn bridged_wire(ctx: &Ctx, reqs: &[Value]) {
    ctx.check(
        ctx.runs_logging(BRIDGING) == ctx.runs,
        &format!(
            "every proxy logged {BRIDGING:?} ({} of {} runs)",
            ctx.runs_logging(BRIDGING),
            ctx.runs
        ),
    );
    let authorized: Vec<&Value> = posts(reqs)
        .into_iter()
        .filter(|e| e["authorization"] == true)
        .collect();
    let (legacy, modern): (Vec<&Value>, Vec<&Value>) = authorized
        .into_iter()
        .partition(|e| e["protocol_version"].is_null());
    ctx.check(
        legacy.len() == ctx.runs && legacy.iter().all(|e| e["status"] == 400),
        &format!(
            "one legacy POST per proxy (its initialize), refused with 400 ({:?})",
            legacy
        ),
    );
    modern_requests(ctx, &modern);
    let discovers = count_refs(&modern, |e| {
        e["mcp_method"] == "server/discover" && e["status"] == 200
    });
    ctx.check(
        discovers == ctx.runs,
        &format!(
            "each proxy answered initialize from server/discover ({discovers} for {} runs)",
            ctx.runs
        ),
    );
    ctx.check(
        !reqs.iter().any(|e| e["method"] == "DELETE"),
        "no session, so no DELETE",
    );
}

#[test]
fn sdk_stdio_clients_through_the_proxy_session_wire() {
    interop(Wire::Session);
}

#[test]
fn sdk_stdio_clients_through_the_proxy_stateless_wire() {
    interop(Wire::Stateless);
}

/// Python SDK 2.3.0 client -> proxy -> Python SDK 2.3.0 server, on 2026-07-28.
#[test]
fn sdk2_stdio_client_through_the_proxy_2026_wire() {
    interop(Wire::Modern);
}

/// Legacy SDK clients (Python 1.x, TypeScript) -> proxy -> a 2026-07-28-only SDK 2.3.0
/// server: the era bridge.
#[test]
fn legacy_sdk_clients_bridged_to_a_2026_only_sdk2_server() {
    interop(Wire::Bridged);
}

/// Legacy SDK clients -> proxy -> the dual-era SDK 2.3.0 server: its session wire.
#[test]
fn legacy_sdk_clients_through_the_proxy_to_a_dual_era_sdk2_server() {
    interop(Wire::DualEraSession);
}

fn deps() -> Option<Deps> {
    let deps = cli::deps(
        "proxy_interop",
        "the SDK stdio clients -> mcp-oauth proxy -> Python SDK server + oidc-provider test",
    )?;
    for p in [
        "tests/python/proxy_client.py",
        "tests/python/proxy_client_modern.py",
        "tests/python/mcp_server.py",
        "tests/python/mcp_server_variant.py",
        "tests/node/proxy-client.mjs",
        "tests/node/node_modules/@modelcontextprotocol/sdk/package.json",
    ] {
        assert!(
            deps.root.join(p).exists(),
            "{p} is missing; run scripts/bootstrap"
        );
    }
    Some(deps)
}
