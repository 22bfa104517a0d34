//! The MCP TypeScript SDK's own example server, exactly as npm ships it, through the
//! `mcp-oauth` binary: `mcp-oauth call`, and `mcp-oauth proxy` driven by the MCP Python
//! SDK's stdio client.
//!
//! The example is `dist/esm/examples/server/simpleStreamableHttp.js` of
//! `@modelcontextprotocol/sdk` (pinned in tests/node/package.json), run unchanged with the
//! flags its README gives: `--oauth`, and `--oauth-strict` (tokens must be issued for this
//! server, RFC 8707). It is what a user who starts from the SDK's docs runs, and it
//! differs from every pair we wrote ourselves:
//! - two origins, both named `localhost` (hard-coded): the MCP server, and a demo
//!   authorization server (`setupAuthServer`, the SDK's in-memory provider) on another
//!   port;
//! - the MCP server checks tokens by RFC 7662 introspection at that authorization server;
//! - its authorization server issues no refresh token and has no revocation endpoint.
//!
//! The only setting is the ports, through the example's own `MCP_PORT` and
//! `MCP_AUTH_PORT` (its defaults, 3000 and 3001, could be taken on a test machine).
//!
//! Every assertion is on what the server printed (its console log of each request and of
//! the token it accepted: client, scopes, resource) and on the browser's log, beside the
//! tool's answer.
#![cfg(unix)]

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mcp_oauth_testkit::cli::{self, Deps, clean_env, keep_logs_on_request, tail};

/// A run of the tool (or the SDK client with the proxy) ends within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// The example prints this once both of its servers listen.
const READY_LINE: &str = "MCP Streamable HTTP Server listening on port";

/// The example server, killed when dropped.
struct Example {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Starts the example with `flags` and waits for its ready line.
    fn start(deps: &Deps, dir: &Path, flags: &[&str]) -> Example {
        let script = deps.root.join(
            "tests/node/node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/\
             simpleStreamableHttp.js",
        );
        assert!(
            script.exists(),
            "{} is missing; run scripts/bootstrap",
            script.display()
        );
        let (mcp_port, auth_port) = (free_port(), free_port());
        let log = dir.join("example.log");
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new(&deps.node);
        clean_env(&mut cmd);
        cmd.arg(&script)
            .args(flags)
            .env("MCP_PORT", mcp_port.to_string())
            .env("MCP_AUTH_PORT", auth_port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().expect("start node");
        let example = Example {
            child,
            log,
            url: format!("http://localhost:{mcp_port}/mcp"),
        };
        let started = Instant::now();
        while !example.printed().contains(READY_LINE) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the example did not start within 30 s:\n{}",
                tail(&example.log, 4000)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        example
    }

    /// Everything the example printed so far.
    fn printed(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests reached the MCP handler with a token the example accepted (it
    /// prints "Authenticated user:" for each).
    fn authenticated_requests(&self) -> usize {
        self.printed().matches("Authenticated user:").count()
    }
}

/// A port nobody listens on now (the example binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test's store, browser and logs.
struct Ctx {
    deps: Deps,
    tmp: tempfile::TempDir,
    home: PathBuf,
    browser_log: PathBuf,
    runs: usize,
}

impl Ctx {
    fn new(deps: Deps, prefix: &str) -> Ctx {
        let tmp = cli::temp_dir(prefix);
        Ctx {
            home: tmp.path().join("home"),
            browser_log: tmp.path().join("browser.log"),
            deps,
            tmp,
            runs: 0,
        }
    }

    fn env(&self, cmd: &mut Command) {
        clean_env(cmd);
        cmd.env("MCP_OAUTH_HOME", &self.home)
            .env("BROWSER", &self.deps.browser)
            .env("BROWSER_LOG", &self.browser_log)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("MCP_OAUTH_PROFILE")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    fn mcp_oauth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        cmd.args(args);
        self.env(&mut cmd);
        cmd
    }

    /// The Python SDK's stdio client running `mcp-oauth proxy url`, calling `tool`.
    fn proxy_client(&self, url: &str, tool: &str, args: &str) -> Command {
        let mut cmd = Command::new(&self.deps.python);
        cmd.arg(self.deps.root.join("tests/python/stdio_tool_client.py"))
            .args([tool, args])
            .arg(env!("CARGO_BIN_EXE_mcp-oauth"))
            .args(["proxy", url]);
        self.env(&mut cmd);
        cmd
    }

    fn browser_opens(&self) -> usize {
        cli::browser_opens(&self.browser_log)
    }

    /// Runs `cmd` to completion (bounded), asserting success; its stdout.
    fn run(&mut self, mut cmd: Command, example: &Example) -> String {
        self.runs += 1;
        let n = self.runs;
        let name = format!("run{n}");
        let done = cli::run_to_files(&mut cmd, self.tmp.path(), &name, RUN_TIMEOUT);
        let status = done.as_ref().map(|o| o.status);
        let out = done
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "run {n} ({cmd:?}) ended {status:?}\nstdout:\n{out}\nstderr:\n{}\nexample:\n{}",
            tail(&self.tmp.path().join(format!("{name}.stderr")), 4000),
            tail(&example.log, 4000)
        );
        out
    }

    /// `cmd`'s output, without asserting success.
    fn output(&self, mut cmd: Command) -> Output {
        cmd.stdin(Stdio::null()).output().expect("spawn")
    }
}

/// What the example printed of the tokens it accepted: each names the resource it was
/// issued for (the example's `resource: URL { href: '…' }`) and its scopes.
fn assert_tokens_were_for(example: &Example) {
    let printed = example.printed();
    let href = format!("href: '{}'", example.url);
    assert!(
        printed.contains(&href),
        "the example accepted no token issued for {} (RFC 8707 resource):\n{}",
        example.url,
        tail(&example.log, 4000)
    );
    assert!(
        printed.contains("scopes: [ 'mcp:tools' ]"),
        "the tokens do not carry the scope the example advertises (mcp:tools):\n{}",
        tail(&example.log, 4000)
    );
}

/// `--oauth`: log in through `call`, use the stored token, then `doctor`, `status` and
/// `logout` (the demo AS has no revocation endpoint), and log in again.
#[test]
fn the_ts_sdk_example_through_call() {
    let Some(deps) = cli::deps(
        "the_ts_sdk_example_through_call",
        "the MCP TypeScript SDK's example server",
    ) else {
        return;
    };
    let mut ctx = Ctx::new(deps, "mcp-oauth-ts-example.");
    let example = Example::start(&ctx.deps, ctx.tmp.path(), &["--oauth"]);
    let url = example.url.clone();

    // 1. First use: discovery across the two origins, registration, one browser.
    let tools = ctx.run(ctx.mcp_oauth(&["call", &url]), &example);
    assert!(tools.contains("greet"), "no tool list: {tools}");
    assert_eq!(ctx.browser_opens(), 1, "first use opens the browser once");
    assert!(example.authenticated_requests() > 0);
    assert_tokens_were_for(&example);

    // 2. The stored token is used: no browser.
    let before = example.authenticated_requests();
    let hello = ctx.run(
        ctx.mcp_oauth(&["call", &url, "greet", "--args", r#"{"name":"call"}"#]),
        &example,
    );
    assert_eq!(hello.trim(), "Hello, call!");
    assert_eq!(ctx.browser_opens(), 1, "the stored token was not used");
    assert!(example.authenticated_requests() > before);

    // 3. doctor finds no violation; status shows the credential (no refresh token: the
    //    demo AS issues none).
    let doctor = ctx.output(ctx.mcp_oauth(&["doctor", &url]));
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "doctor failed:\n{said}");
    assert!(said.contains("0 MUST violations"), "{said}");
    let status = ctx.run(ctx.mcp_oauth(&["status", "--json"]), &example);
    let status: serde_json::Value = serde_json::from_str(&status).expect("status --json");
    let entry = status
        .as_array()
        .and_then(|a| a.iter().find(|c| c["server_url"] == url.as_str()))
        .unwrap_or_else(|| panic!("status does not list {url}: {status}"));
    assert_eq!(entry["resource"], url.as_str(), "{entry}");
    assert_eq!(entry["registration"], "dynamic", "{entry}");
    assert_eq!(entry["refresh_token"], false, "{entry}");

    // 4. logout deletes the credential and says the tokens stay valid (no revocation
    //    endpoint); the next use logs in again, without registering anew.
    let logout = ctx.run(ctx.mcp_oauth(&["logout", &url]), &example);
    assert!(logout.contains("stored credential deleted"), "{logout}");
    // Its authorization server has no revocation endpoint and issued no refresh token.
    assert!(
        logout.contains("no revocation endpoint (RFC 7009): nothing was revoked"),
        "{logout}"
    );
    assert!(
        logout.contains("the access token stays valid until it expires (in "),
        "{logout}"
    );
    assert!(!logout.contains("refresh token"), "{logout}");
    let hello = ctx.run(
        ctx.mcp_oauth(&["call", &url, "greet", "--args", r#"{"name":"again"}"#]),
        &example,
    );
    assert_eq!(hello.trim(), "Hello, again!");
    assert_eq!(ctx.browser_opens(), 2, "after logout, one more login");
    keep_logs_on_request(ctx.tmp.path(), "the_ts_sdk_example_through_call");
}

/// `--oauth-strict` (the example accepts only tokens issued for itself) through the proxy,
/// driven by the Python SDK's stdio client: one login, then the stored token.
#[test]
fn the_strict_ts_sdk_example_through_the_proxy() {
    let Some(deps) = cli::deps(
        "the_strict_ts_sdk_example_through_the_proxy",
        "the MCP TypeScript SDK's example server",
    ) else {
        return;
    };
    let mut ctx = Ctx::new(deps, "mcp-oauth-ts-example-strict.");
    let example = Example::start(&ctx.deps, ctx.tmp.path(), &["--oauth", "--oauth-strict"]);
    let url = example.url.clone();
    for (run, name) in ["proxy", "again"].iter().enumerate() {
        let out = ctx.run(
            ctx.proxy_client(&url, "greet", &format!(r#"{{"name":"{name}"}}"#)),
            &example,
        );
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or("null");
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        assert_eq!(
            v["text"],
            format!("Hello, {name}!"),
            "run {}: {out}",
            run + 1
        );
        assert!(
            v["tools"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "greet")),
            "{out}"
        );
        assert_eq!(ctx.browser_opens(), 1, "run {}: one login in all", run + 1);
    }
    assert_tokens_were_for(&example);
    // logout --json: nothing to revoke at, and when the access token, still valid, expires.
    let out = ctx.run(ctx.mcp_oauth(&["logout", &url, "--json"]), &example);
    let v: serde_json::Value = serde_json::from_str(&out).expect("logout --json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        v[0]["deleted"] == true
            && v[0]["access_token_expires_at"]
                .as_u64()
                .is_some_and(|e| e > now),
        "{v}"
    );
    keep_logs_on_request(
        ctx.tmp.path(),
        "the_strict_ts_sdk_example_through_the_proxy",
    );
}
