//! The seed report's own setup, as its users run it, end to end through the `mcp-oauth`
//! binary: `mcp-oauth call`, and `mcp-oauth proxy` driven by the MCP Python SDK's stdio
//! client.
//!
//! * MCP server: FastMCP 4.x (PyPI `fastmcp`, tests/python/fastmcp_server.py) exactly as
//!   its docs write it: `RemoteAuthProvider` + `JWTVerifier`, no scope configuration,
//!   `mcp.run(transport="streamable-http", path="/mcp")`. Its challenge names no scope, its
//!   metadata has `scopes_supported: []` and names the issuer with a trailing slash.
//! * Authorization server: oidc-provider 9.x with `AS_PROFILE=default` (its own defaults
//!   but for what an RFC 8707 deployment with open DCR must configure): `offline_access`
//!   only with `prompt=consent`, an empty grant refused with `access_denied`, rotating
//!   refresh tokens, clients and grants in memory (a restart forgets them), HTML error
//!   pages.
//!
//! Bent, each for one scenario and said so where it is set: `AS_CONTROL=1` (a 503 gateway
//! page for one refresh), `AS_REFRESH_REQUIRES_SCOPE=1` (Entra's AADSTS900144 for a refresh
//! without `scope`; the unbent AS accepts both, so every refresh of the run proves that
//! `scope` is sent), `AS_KEY_FILE` (the signing key survives a restart, as a deployment's
//! configured keys do: FastMCP re-reads the JWKS for an unknown key at most every 30 s),
//! and a short `AT_TTL` (so that tokens expire within the test).
//!
//! Every assertion is on what the servers and the browser saw (their request logs), beside
//! the tool's answer.
#![cfg(unix)]

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mcp_oauth_testkit::cli::{
    self, Deps, ServerProcess, clean_env, json_lines, keep_logs_on_request, tail,
};

/// Access-token lifetime: the client refreshes once half of it is left.
const AT_TTL: u64 = 8;
/// A run of the tool (or the SDK client with the proxy) ends within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
enum Via {
    /// `mcp-oauth call URL whoami`.
    Call,
    /// The MCP Python SDK's stdio client (tests/python/proxy_client.py) running
    /// `mcp-oauth proxy URL`.
    Proxy,
}

struct Ctx {
    deps: Deps,
    _tmp: tempfile::TempDir,
    logdir: PathBuf,
    home: PathBuf,
    as_log: PathBuf,
    mcp_log: PathBuf,
    browser_log: PathBuf,
    key_file: PathBuf,
    as_port: u16,
    issuer: String,
    mcp_url: String,
    /// The AS, then FastMCP.
    auth_server: Option<ServerProcess>,
    _mcp: ServerProcess,
    runs: usize,
    /// When the newest access token was obtained (by the run that got it).
    token_at: Instant,
}

impl Ctx {
    fn start(deps: Deps) -> Ctx {
        let tmp = cli::temp_dir("mcp-oauth-seed.");
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).unwrap();
        let key_file = tmp.path().join("as-signing-key.json");
        let as_log = logdir.join("as.log");
        let auth_server = start_as(&deps, &logdir, &as_log, &key_file, 0);
        let issuer = auth_server.field("issuer");
        let as_port = auth_server.ready["port"].as_u64().expect("port") as u16;
        let mcp_log = logdir.join("mcp.log");
        let mut cmd = Command::new(&deps.python_fastmcp);
        cmd.arg(&deps.fastmcp_server)
            .args(["--issuer", &issuer, "--port", "0"])
            .env("MCP_LOG", &mcp_log)
            .env("MCP_EXIT_ON_STDIN_EOF", "1")
            .env("PYTHONUNBUFFERED", "1");
        let mcp = ServerProcess::start("fastmcp", cmd, &logdir);
        let mcp_url = mcp.field("url");
        Ctx {
            home: tmp.path().join("home"),
            browser_log: logdir.join("browser.log"),
            deps,
            logdir,
            as_log,
            mcp_log,
            key_file,
            as_port,
            issuer,
            mcp_url,
            auth_server: Some(auth_server),
            _mcp: mcp,
            runs: 0,
            token_at: Instant::now(),
            _tmp: tmp,
        }
    }

    /// Stops the authorization server and starts it again on the same port: every
    /// registered client and grant is gone (oidc-provider's memory adapter).
    fn restart_as(&mut self) {
        drop(self.auth_server.take());
        let s = start_as(
            &self.deps,
            &self.logdir,
            &self.as_log,
            &self.key_file,
            self.as_port,
        );
        assert_eq!(s.field("issuer"), self.issuer);
        self.auth_server = Some(s);
    }

    /// The next token request of `grant_type` gets a 503 gateway page, once.
    fn fail_next_token(&self, grant_type: &str) {
        let url = format!(
            "{}/__test/fail-next-token?status=503&body=html&grant_type={grant_type}",
            self.issuer
        );
        let out = Command::new("curl")
            .args(["-sf", "-X", "POST", &url])
            .output()
            .expect("curl");
        assert!(out.status.success(), "arming the failure: {out:?}");
    }

    /// Waits until the newest access token is within the client's refresh margin.
    fn wait_for_expiry(&self) {
        let usable = Duration::from_secs(AT_TTL / 2 + 1);
        if let Some(left) = usable.checked_sub(self.token_at.elapsed()) {
            thread::sleep(left);
        }
    }

    fn command(&self, args: &[&str], browser: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        cmd.args(args);
        self.env(&mut cmd, browser);
        cmd
    }

    fn env(&self, cmd: &mut Command, browser: &Path) {
        clean_env(cmd);
        cmd.env("MCP_OAUTH_HOME", &self.home)
            .env("BROWSER", browser)
            .env("BROWSER_LOG", &self.browser_log)
            .env("RUST_LOG", "mcp_oauth=info")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    /// One use of the server through `via`: the tool's `whoami` answer.
    fn use_server(&mut self, via: Via, browser: &Path) -> Value {
        let cmd = match via {
            Via::Call => self.command(&["call", &self.mcp_url, "whoami"], browser),
            Via::Proxy => {
                let mut c = Command::new(&self.deps.python);
                c.arg(self.deps.root.join("tests/python/proxy_client.py"))
                    .arg(env!("CARGO_BIN_EXE_mcp-oauth"))
                    .args(["proxy", &self.mcp_url]);
                self.env(&mut c, browser);
                c
            }
        };
        let out = self.run(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'));
        let v: Value = serde_json::from_str(line.unwrap_or("null")).unwrap_or(Value::Null);
        let whoami = match via {
            Via::Call => v,
            Via::Proxy => v["whoami"].clone(),
        };
        assert_eq!(
            whoami["aud"].as_str(),
            Some(self.mcp_url.as_str()),
            "run {} via {via:?}: no whoami answer for {}: {stdout}\n{}",
            self.runs,
            self.mcp_url,
            self.dump()
        );
        whoami
    }

    /// Runs `cmd` to completion (bounded), asserting success.
    fn run(&mut self, mut cmd: Command) -> Output {
        self.runs += 1;
        let n = self.runs;
        let err_path = self.logdir.join(format!("run{n}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&err_path).unwrap());
        let mut child = cmd.spawn().expect("spawn");
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                panic!(
                    "run {n} did not end within {RUN_TIMEOUT:?}\n{}",
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "run {n} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            self.dump()
        );
        out
    }

    fn as_lines(&self) -> Vec<Value> {
        json_lines(&self.as_log)
    }

    fn browser_lines(&self, word: &str) -> Vec<String> {
        fs::read_to_string(&self.browser_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(word))
            .map(str::to_string)
            .collect()
    }

    fn browser_opens(&self) -> usize {
        self.browser_lines(" open ").len()
    }

    fn dump(&self) -> String {
        let mut s = String::new();
        for f in [
            "as.log",
            "mcp.log",
            "browser.log",
            "oidc-provider.stderr",
            "fastmcp.stderr",
        ] {
            s.push_str(&format!("--- {f}\n{}\n", tail(&self.logdir.join(f), 4000)));
        }
        for n in 1..=self.runs {
            let f = format!("run{n}.stderr");
            s.push_str(&format!("--- {f}\n{}\n", tail(&self.logdir.join(&f), 3000)));
        }
        s
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // The servers first, so that their logs are complete.
        drop(self.auth_server.take());
        keep_logs_on_request(self._tmp.path(), "seed_servers");
    }
}

fn start_as(deps: &Deps, logdir: &Path, log: &Path, key_file: &Path, port: u16) -> ServerProcess {
    let mut cmd = Command::new(&deps.node);
    cmd.arg(&deps.oidc_as)
        .arg(port.to_string())
        .env("AS_PROFILE", "default")
        .env("AS_LOG", log)
        .env("AT_TTL", AT_TTL.to_string())
        // Bends, each for one scenario (see the module comment).
        .env("AS_CONTROL", "1")
        .env("AS_REFRESH_REQUIRES_SCOPE", "1")
        .env("AS_KEY_FILE", key_file)
        .env("AS_EXIT_ON_STDIN_EOF", "1");
    ServerProcess::start("oidc-provider", cmd, logdir)
}

fn is(v: &Value, method: &str, path: &str) -> bool {
    v["method"] == method && v["path"] == path
}

fn token_requests<'a>(lines: &'a [Value], grant_type: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| is(v, "POST", "/token") && v["grant_type"] == grant_type)
        .collect()
}

fn count(lines: &[Value], method: &str, path: &str) -> usize {
    lines.iter().filter(|v| is(v, method, path)).count()
}

/// The whole story of one user with the seed's setup, through `via`.
fn seed_story(via: Via) {
    let Some(deps) = cli::deps(
        "seed_servers",
        "the FastMCP + oidc-provider end-to-end test",
    ) else {
        return;
    };
    let mut ctx = Ctx::start(deps);
    let plain = ctx.deps.browser.clone();
    let stray = ctx.deps.root.join("tests/stray-browser.sh");

    // 0. doctor says which scope a login will send, and why.
    let doctor = ctx.command(&["doctor", "--json", &ctx.mcp_url.clone()], &plain);
    let out = ctx.run(doctor);
    let report: Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    assert_eq!(report["scope"]["source"], "none", "{report}");
    assert_eq!(report["scope"]["scope"], "offline_access", "{report}");
    assert_eq!(report["scope"]["offline_access"]["decision"], "added");
    assert_eq!(report["scope"]["offline_access"]["with_consent"], true);
    assert_eq!(ctx.browser_opens(), 0);

    // 1. First login, with two stray requests at the redirect listener before the real
    //    response: the scope is one the OpenID provider grants (offline_access with
    //    consent), and the strays are answered with an error page and ignored.
    ctx.use_server(via, &stray);
    ctx.token_at = Instant::now();
    let a = ctx.as_lines();
    assert_eq!(count(&a, "POST", "/reg"), 1, "{}", ctx.dump());
    let auth: Vec<&Value> = a.iter().filter(|v| is(v, "GET", "/auth")).collect();
    assert_eq!(auth.len(), 1, "{}", ctx.dump());
    assert_eq!(auth[0]["scope"], "offline_access");
    assert_eq!(auth[0]["prompt"], "consent");
    assert_eq!(auth[0]["resource"].as_str(), Some(ctx.mcp_url.as_str()));
    let code = token_requests(&a, "authorization_code");
    assert_eq!(code.len(), 1);
    assert_eq!(code[0]["status"], 200);
    assert_eq!(code[0]["refresh_token_issued"], true, "{}", ctx.dump());
    assert_eq!(ctx.browser_opens(), 1);
    let strays = ctx.browser_lines("stray status=");
    assert_eq!(strays.len(), 2, "{}", ctx.dump());
    assert!(
        strays.iter().all(|l| l.ends_with("status=400")),
        "{strays:?}"
    );
    let m = json_lines(&ctx.mcp_log);
    let first_post = m.iter().find(|v| is(v, "POST", "/mcp")).unwrap();
    assert_eq!(
        (
            first_post["status"].clone(),
            first_post["authorization"].clone()
        ),
        (401.into(), false.into())
    );
    assert!(
        m.iter()
            .any(|v| is(v, "POST", "/mcp") && v["status"] == 200 && v["authorization"] == true)
    );

    // 2. Second run: the stored token, no browser, nothing asked of the AS.
    let before = ctx.as_lines().len();
    ctx.use_server(via, &plain);
    let after = ctx.as_lines();
    assert!(
        after[before..]
            .iter()
            .all(|v| v["path"] != "/token" && v["path"] != "/reg" && v["path"] != "/auth"),
        "the second run talked to the AS: {:?}",
        &after[before..]
    );
    assert_eq!(ctx.browser_opens(), 1);

    // 3. After expiry: one refresh, carrying the scope (the AS refuses one without it),
    //    no browser.
    ctx.wait_for_expiry();
    let before = ctx.as_lines().len();
    ctx.use_server(via, &plain);
    ctx.token_at = Instant::now();
    let after = ctx.as_lines();
    let refreshes = token_requests(&after[before..], "refresh_token");
    assert_eq!(refreshes.len(), 1, "{}", ctx.dump());
    assert_eq!(refreshes[0]["status"], 200);
    assert_eq!(refreshes[0]["scope_param"], true);
    assert_eq!(refreshes[0]["scope"], "offline_access");
    assert_eq!(ctx.browser_opens(), 1);

    // 4. The token endpoint answers 503 (a gateway page) once during a refresh: retried,
    //    the refresh token and the client kept, no browser.
    ctx.fail_next_token("refresh_token");
    ctx.wait_for_expiry();
    let before = ctx.as_lines().len();
    ctx.use_server(via, &plain);
    ctx.token_at = Instant::now();
    let after = ctx.as_lines();
    let statuses: Vec<Value> = token_requests(&after[before..], "refresh_token")
        .iter()
        .map(|v| v["status"].clone())
        .collect();
    assert_eq!(statuses, [503, 200], "{}", ctx.dump());
    assert_eq!(count(&after[before..], "POST", "/reg"), 0);
    assert_eq!(ctx.browser_opens(), 1);

    // 5. The AS restarts (clients and grants lost); the token expires: the refresh is
    //    refused (invalid_client), then exactly one new registration and one browser.
    let old_client = code[0]["client_id"].as_str().unwrap().to_string();
    ctx.restart_as();
    ctx.wait_for_expiry();
    let before = ctx.as_lines().len();
    ctx.use_server(via, &plain);
    ctx.token_at = Instant::now();
    let after = ctx.as_lines();
    let new = &after[before..];
    let refreshes = token_requests(new, "refresh_token");
    assert_eq!(refreshes.len(), 1, "{}", ctx.dump());
    assert_eq!(refreshes[0]["status"], 401);
    assert_eq!(refreshes[0]["error"], "invalid_client");
    assert_eq!(count(new, "POST", "/reg"), 1, "{}", ctx.dump());
    assert_eq!(ctx.browser_opens(), 2, "{}", ctx.dump());
    assert!(
        !new.iter()
            .any(|v| is(v, "GET", "/auth") && v["client_id"] == old_client.as_str()),
        "the dead client id was sent to the authorization endpoint: {}",
        ctx.dump()
    );

    // 6. The AS restarts again, and the user logs out: the next use starts from the
    //    stored registration, which the AS no longer knows (its authorization endpoint
    //    shows an error page, no redirect). The client finds that out before the browser
    //    opens, registers anew, and the one browser it opens completes.
    let client2 = token_requests(new, "authorization_code")[0]["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    ctx.restart_as();
    let logout = ctx.command(&["logout", &ctx.mcp_url.clone()], &plain);
    ctx.run(logout);
    let before = ctx.as_lines().len();
    ctx.use_server(via, &plain);
    let after = ctx.as_lines();
    let new = &after[before..];
    let dead: Vec<&Value> = new
        .iter()
        .filter(|v| is(v, "GET", "/auth") && v["client_id"] == client2.as_str())
        .collect();
    assert_eq!(dead.len(), 1, "only the client's own check: {}", ctx.dump());
    assert_eq!(dead[0]["status"], 400);
    assert!(
        dead[0].get("scope").is_none(),
        "the check is not the user's request"
    );
    assert_eq!(count(new, "POST", "/reg"), 1, "{}", ctx.dump());
    assert_eq!(ctx.browser_opens(), 3, "{}", ctx.dump());
}

#[test]
fn seed_setup_through_call() {
    seed_story(Via::Call);
}

#[test]
fn seed_setup_through_the_proxy_with_the_python_sdk_client() {
    seed_story(Via::Proxy);
}
