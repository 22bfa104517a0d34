//! FastMCP's OAuth proxy in front of a real OpenID provider, through the `mcp-oauth`
//! binary: how FastMCP users put an MCP server in front of Auth0, Google, Azure, Keycloak
//! or any OIDC identity provider (FastMCP's classes for those are this proxy).
//!
//! * MCP server: FastMCP 4.x with `OIDCProxy` (tests/python/fastmcp_oidc_proxy_server.py):
//!   for the MCP client it is the authorization server (DCR, its own consent page, its own
//!   tokens); upstream it sends the user to the provider with one confidential client.
//! * Upstream provider: oidc-provider with `AS_PROFILE=default` (tests/node/oidc-as.mjs),
//!   its upstream client registered once as an administrator would in an IdP console (a
//!   confidential client for the proxy's callback URL).
//! * The user: tests/consent-browser.py, which clicks "approve" on the proxy's consent
//!   page (a form with a CSRF token bound to a cookie) where tests/browser.sh stops.
//!
//! `OIDCProxy` as its docstring writes it cannot work with oidc-provider's defaults (no
//! scope reaches the provider, which grants nothing): the bent configuration (scopes, and
//! `prompt=consent` for a refresh token; the server script says why) is the main test,
//! and the unbent one is tested for what a user then sees and what to do about it.
//!
//! Every assertion is on what the servers and the browser saw (the proxy's and the
//! provider's request logs, the browser log), beside the tool's answers.
#![cfg(unix)]

use serde_json::Value;
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use mcp_oauth_testkit::cli::{
    self, Deps, ServerProcess, clean_env, json_lines, keep_logs_on_request, start_oidc_provider,
    token_requests,
};

/// The provider's access-token lifetime, which the proxy's tokens copy: the client
/// refreshes once half of it is left.
const AT_TTL: u64 = 8;
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

struct Ctx {
    deps: Deps,
    tmp: tempfile::TempDir,
    as_log: PathBuf,
    mcp_log: PathBuf,
    browser_log: PathBuf,
    url: String,
    runs: usize,
    _servers: Vec<ServerProcess>,
}

impl Ctx {
    /// The provider, its client for the proxy, and the proxy (`--minimal`: unbent).
    fn start(deps: Deps, name: &str, minimal: bool) -> Ctx {
        let tmp = cli::temp_dir(&format!("mcp-oauth-{name}."));
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).unwrap();
        let as_log = logdir.join("as.log");
        let ttl = AT_TTL.to_string();
        let provider = start_oidc_provider(
            &deps,
            &logdir,
            &as_log,
            &[("AS_PROFILE", "default"), ("AT_TTL", ttl.as_str())],
        );
        let issuer = provider.field("issuer");
        let port = free_port();
        let (client_id, secret) = register_upstream_client(&issuer, port);
        let mcp_log = logdir.join("fastmcp.log");
        let mut cmd = Command::new(&deps.python_fastmcp);
        cmd.arg(deps.root.join("tests/python/fastmcp_oidc_proxy_server.py"))
            .args(["--upstream", &issuer, "--port", &port.to_string()])
            .args(minimal.then_some("--minimal"))
            .env("UPSTREAM_CLIENT_ID", client_id)
            .env("UPSTREAM_CLIENT_SECRET", secret)
            // Where the proxy keeps its clients and tokens: this test's, not the user's.
            .env("FASTMCP_HOME", tmp.path().join("fastmcp-home"))
            .env("MCP_LOG", &mcp_log)
            .env("MCP_EXIT_ON_STDIN_EOF", "1")
            .env("PYTHONUNBUFFERED", "1");
        let proxy = ServerProcess::start("fastmcp-oidc-proxy", cmd, &logdir);
        Ctx {
            url: proxy.field("url"),
            browser_log: logdir.join("browser.log"),
            deps,
            tmp,
            as_log,
            mcp_log,
            runs: 0,
            _servers: vec![provider, proxy],
        }
    }

    fn env(&self, cmd: &mut Command, home: &str) {
        clean_env(cmd);
        cmd.env("MCP_OAUTH_HOME", self.tmp.path().join(home))
            .env("BROWSER", self.deps.root.join("tests/consent-browser.py"))
            .env("BROWSER_LOG", &self.browser_log)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "mcp_oauth=info")
            .env_remove("MCP_OAUTH_PROFILE")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    fn mcp_oauth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        cmd.args(args);
        self.env(&mut cmd, "home");
        cmd
    }

    /// Runs `cmd` (bounded); its output, whatever its exit.
    fn run(&mut self, mut cmd: Command) -> Output {
        self.runs += 1;
        let n = self.runs;
        cli::run_to_files(&mut cmd, self.tmp.path(), &format!("run{n}"), RUN_TIMEOUT)
            .unwrap_or_else(|| panic!("run {n} ({cmd:?}) did not end within {RUN_TIMEOUT:?}"))
    }

    /// Runs `cmd`, asserting success; its stdout.
    fn ok(&mut self, cmd: Command) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "run {} failed ({}):\n{}\n{}",
            self.runs,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.dump()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn browser_opens(&self) -> usize {
        cli::browser_opens(&self.browser_log)
    }

    /// The proxy's request log, and the provider's.
    fn proxy_saw(&self) -> Vec<Value> {
        json_lines(&self.mcp_log)
    }

    fn provider_saw(&self) -> Vec<Value> {
        json_lines(&self.as_log)
    }

    fn proxy_requests(&self, method: &str, path: &str) -> usize {
        self.proxy_saw()
            .iter()
            .filter(|e| e["method"] == method && e["path"] == path)
            .count()
    }

    fn dump(&self) -> String {
        cli::log_tails(
            &[
                ("browser", self.browser_log.as_path()),
                ("proxy", self.mcp_log.as_path()),
                ("provider", self.as_log.as_path()),
            ],
            3000,
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The provider's confidential client for the proxy, registered as an administrator would
/// (here through the provider's open registration endpoint): its id and secret.
fn register_upstream_client(issuer: &str, proxy_port: u16) -> (String, String) {
    let body = serde_json::json!({
        "client_name": "FastMCP OIDCProxy",
        "redirect_uris": [format!("http://127.0.0.1:{proxy_port}/auth/callback")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let mut curl = Command::new("curl");
    clean_env(&mut curl);
    let out = curl
        .args([
            "-sS",
            "-f",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
        ])
        .args(["-d", &body.to_string(), &format!("{issuer}/reg")])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "registering the upstream client: {out:?}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("registration JSON");
    (
        v["client_id"].as_str().expect("client_id").to_string(),
        v["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_string(),
    )
}

/// Login through the proxy's consent page, the stored token, a refresh through the proxy
/// (which refreshes upstream), the stdio proxy for an MCP host, and logout.
#[test]
fn call_and_proxy_through_fastmcps_oidc_proxy() {
    let Some(deps) = cli::deps(
        "call_and_proxy_through_fastmcps_oidc_proxy",
        "FastMCP's OIDCProxy in front of oidc-provider",
    ) else {
        return;
    };
    let mut ctx = Ctx::start(deps, "fastmcp-oidc-proxy", false);
    let url = ctx.url.clone();

    // 1. First use: the proxy's DCR, its consent page, the provider's login and consent.
    let who: Value = serde_json::from_str(&ctx.ok(ctx.mcp_oauth(&["call", &url, "whoami"])))
        .expect("whoami JSON");
    assert_eq!(who["sub"], "test-user", "{who}");
    assert!(
        who["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("mcp:tools"),
        "{who}"
    );
    assert_eq!(ctx.browser_opens(), 1, "{}", ctx.dump());
    let browser = fs::read_to_string(&ctx.browser_log).unwrap();
    assert!(
        browser.contains("consent approve"),
        "the proxy's consent page: {browser}"
    );
    assert_eq!(ctx.proxy_requests("POST", "/register"), 1);
    let upstream_codes: Vec<Value> = ctx
        .provider_saw()
        .into_iter()
        .filter(|e| e["path"] == "/token" && e["grant_type"] == "authorization_code")
        .collect();
    assert_eq!(upstream_codes.len(), 1, "{}", ctx.dump());
    assert_eq!(upstream_codes[0]["status"], 200);
    assert_eq!(
        upstream_codes[0]["refresh_token_issued"],
        true,
        "offline_access reached the provider with prompt=consent: {}",
        ctx.dump()
    );

    // 2. The stored token: no browser, no token request at the proxy.
    let tokens_before = ctx.proxy_requests("POST", "/token");
    let echoed = ctx.ok(ctx.mcp_oauth(&["call", &url, "echo", "--args", r#"{"text":"hi"}"#]));
    assert_eq!(echoed.trim(), "hi");
    assert_eq!(ctx.browser_opens(), 1);
    assert_eq!(ctx.proxy_requests("POST", "/token"), tokens_before);

    // 3. After expiry: the proxy's refresh token, which the proxy redeems upstream.
    thread::sleep(Duration::from_secs(AT_TTL / 2 + 1));
    let upstream_refreshes = token_requests(&ctx.provider_saw(), Some("refresh_token"));
    let started = Instant::now();
    let echoed = ctx.ok(ctx.mcp_oauth(&["call", &url, "echo", "--args", r#"{"text":"later"}"#]));
    assert_eq!(echoed.trim(), "later");
    assert_eq!(ctx.browser_opens(), 1, "refreshed without the browser");
    assert!(
        ctx.proxy_requests("POST", "/token") > tokens_before,
        "a refresh at the proxy: {}",
        ctx.dump()
    );
    let upstream_after = token_requests(&ctx.provider_saw(), Some("refresh_token"));
    assert_eq!(
        upstream_after,
        upstream_refreshes + 1,
        "the proxy refreshed upstream once: {}",
        ctx.dump()
    );
    eprintln!(
        "[fastmcp_oidc_proxy] refresh through the proxy: {} ms; upstream refreshes {upstream_refreshes} -> {upstream_after}",
        started.elapsed().as_millis(),
    );

    // 4. An MCP host through `mcp-oauth proxy` (the Python SDK's stdio client), with its
    //    own store: one more login, then the tool.
    let mut host = Command::new(&ctx.deps.python);
    host.arg(ctx.deps.root.join("tests/python/stdio_tool_client.py"))
        .args(["echo", r#"{"text":"through the proxy"}"#])
        .arg(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["proxy", &url]);
    ctx.env(&mut host, "host-home");
    let out = ctx.ok(host);
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("null");
    let v: Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(v["text"], "through the proxy", "{out}");
    assert_eq!(ctx.browser_opens(), 2, "one login for the host's own store");
    assert_eq!(ctx.proxy_requests("POST", "/register"), 2, "its own client");

    // 5. logout deletes the credential; the MCP requests that carried a token were all
    //    accepted (none refused after a login).
    let logout = ctx.ok(ctx.mcp_oauth(&["logout", &url]));
    assert!(logout.contains("stored credential deleted"), "{logout}");
    let refused_with_token = ctx
        .proxy_saw()
        .iter()
        .filter(|e| e["path"] == "/mcp" && e["authorization"] == true && e["status"] == 401)
        .count();
    assert_eq!(refused_with_token, 0, "{}", ctx.dump());
    keep_logs_on_request(ctx.tmp.path(), "call_and_proxy_through_fastmcps_oidc_proxy");
}

/// `OIDCProxy` as its docstring writes it: no scope reaches the provider, which grants
/// nothing. The user is told that no scope was asked for and how to ask for one.
#[test]
fn the_unbent_oidc_proxy_is_refused_and_the_error_says_why() {
    let Some(deps) = cli::deps(
        "the_unbent_oidc_proxy_is_refused_and_the_error_says_why",
        "FastMCP's OIDCProxy in front of oidc-provider",
    ) else {
        return;
    };
    let mut ctx = Ctx::start(deps, "fastmcp-oidc-proxy-minimal", true);
    let url = ctx.url.clone();
    let out = ctx.run(ctx.mcp_oauth(&["call", &url, "whoami"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", ctx.dump());
    assert!(
        stderr.contains("refused: access_denied")
            && stderr.contains("No scope was asked for")
            && stderr.contains("--scope"),
        "{stderr}"
    );
    assert_eq!(ctx.browser_opens(), 1, "one authorization, no retry loop");
    // What the provider saw: an authorization without any scope, refused.
    let upstream: Vec<Value> = ctx
        .provider_saw()
        .into_iter()
        .filter(|e| e["route"] == "authorization" || e["route"] == "resume")
        .collect();
    assert!(
        upstream.iter().all(|e| e.get("scope").is_none()),
        "no scope reached the provider: {}",
        ctx.dump()
    );
    keep_logs_on_request(
        ctx.tmp.path(),
        "the_unbent_oidc_proxy_is_refused_and_the_error_says_why",
    );
}
