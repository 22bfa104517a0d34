//! The `mcp-oauth` commands (`login`, `token`, `status`, `logout`, `doctor`) driven as a
//! user or a script would, against the real servers of `real_servers.rs`: `oidc-provider`
//! (tests/node/oidc-as.mjs: DCR, PKCE, resource indicators, rotating refresh tokens with
//! reuse detection, RFC 7009 revocation, RFC 8628 device flow) and the MCP Python SDK
//! (tests/python/mcp_server.py).
//!
//! Gated like `real_servers.rs`: without `MCP_OAUTH_TEST_DEPS` each test prints a skip
//! notice and passes, unless `MCP_OAUTH_REQUIRE_REAL=1` (which `scripts/test` sets).
//! Loopback only; every child process is killed when its test ends.
#![cfg(unix)]

use mcp_oauth_testkit::cli::{
    self, Deps, Sandbox, ServerProcess, credential_files, keep_logs_on_request, now,
    rewrite_as_the_store_does, start_mcp_server, start_oidc_provider, tail, wait_or_kill,
};
use serde_json::Value;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Servers, a private store and the logs.
struct Env {
    tmp: tempfile::TempDir,
    home: PathBuf,
    logdir: PathBuf,
    as_log: PathBuf,
    browser_log: PathBuf,
    sandbox: Sandbox,
    url: String,
    issuer: String,
    as_stderr: PathBuf,
    servers: Vec<ServerProcess>,
    runs: std::cell::Cell<usize>,
}

impl Drop for Env {
    fn drop(&mut self) {
        while let Some(s) = self.servers.pop() {
            drop(s);
        }
        keep_logs_on_request(self.tmp.path(), "commands");
    }
}

impl Env {
    fn start(deps: &Deps) -> Env {
        Env::start_with(deps, &[])
    }

    /// With extra environment for the authorization server (tests/node/oidc-as.mjs).
    fn start_with(deps: &Deps, as_env: &[(&str, &str)]) -> Env {
        let tmp = cli::temp_dir("mcp-oauth-commands.");
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).unwrap();
        let as_log = logdir.join("as.jsonl");
        let oidc = start_oidc_provider(deps, &logdir, &as_log, as_env);
        let issuer = oidc.field("issuer");
        let mut cmd = Command::new(&deps.python);
        cmd.arg(&deps.mcp_server);
        let mcp = start_mcp_server(cmd, &issuer, &logdir.join("mcp.jsonl"), &logdir);
        let url = mcp.field("url");
        let as_stderr = oidc.stderr_path.clone();
        let browser_log = logdir.join("browser.log");
        Env {
            home: tmp.path().join("home"),
            sandbox: Sandbox {
                home: tmp.path().join("home"),
                config: tmp.path().join("config.toml"),
                browser: deps.browser.clone(),
                browser_log: browser_log.clone(),
            },
            browser_log,
            as_log,
            logdir,
            url,
            issuer,
            as_stderr,
            servers: vec![oidc, mcp],
            runs: std::cell::Cell::new(0),
            tmp,
        }
    }

    /// `mcp-oauth <args>` with this test's store, no configuration file, the headless
    /// browser, no proxy and no colours.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.command(env!("CARGO_BIN_EXE_mcp-oauth"), args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.cmd(args), args)
    }

    fn run_cmd(&self, mut cmd: Command, args: &[&str]) -> Out {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let out_path = self.logdir.join(format!("run{n}.stdout"));
        let err_path = self.logdir.join(format!("run{n}.stderr"));
        cmd.stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn mcp-oauth");
        let status = wait_or_kill(&mut child, RUN_TIMEOUT)
            .unwrap_or_else(|| panic!("mcp-oauth {args:?} hung\n{}", self.dump()));
        let out = Out {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            elapsed: started.elapsed(),
        };
        eprintln!(
            "[commands] run {n}: mcp-oauth {} -> {} in {:?}",
            args.join(" "),
            out.status,
            out.elapsed
        );
        out
    }

    fn as_entries(&self) -> Vec<Value> {
        fs::read_to_string(&self.as_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn token_requests(&self, grant: Option<&str>) -> usize {
        cli::token_requests(&self.as_entries(), grant)
    }

    fn browser_opens(&self) -> usize {
        self.sandbox.browser_opens()
    }

    fn credential_file(&self) -> PathBuf {
        let mut v = credential_files(&self.home);
        assert_eq!(
            v.len(),
            1,
            "one stored credential expected in {}\n{}",
            self.home.join("credentials").display(),
            self.dump()
        );
        v.remove(0)
    }

    fn stored(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.credential_file()).unwrap()).unwrap()
    }

    /// Sets the stored access token's expiry, written as the store writes (temp + rename).
    fn expire_access_token(&self, when: u64) {
        let path = self.credential_file();
        let mut v = self.stored();
        v["record"]["tokens"]["expires_at"] = Value::from(when);
        rewrite_as_the_store_does(&path, &v);
    }

    /// Does the MCP server accept this access token (POST initialize answered 200)?
    fn mcp_accepts(&self, token: &str) -> bool {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "-X", "POST"])
            .args(["-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream"])
            .arg("-H")
            .arg(format!("authorization: Bearer {token}"))
            .arg("--data")
            .arg(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#)
            .arg(&self.url)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout) == "200"
    }

    /// A refresh at the AS with this refresh token, directly: the OAuth error code, or
    /// "ok".
    fn try_refresh(&self, refresh_token: &str, client_id: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", "--noproxy", "*", "-X", "POST"])
            .arg(format!("{}/token", self.issuer))
            .args(["--data-urlencode", "grant_type=refresh_token"])
            .arg("--data-urlencode")
            .arg(format!("refresh_token={refresh_token}"))
            .arg("--data-urlencode")
            .arg(format!("client_id={client_id}"))
            .output()
            .expect("curl");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| "ok".into())
    }

    fn grants_revoked_at_as(&self) -> usize {
        fs::read_to_string(&self.as_stderr)
            .unwrap_or_default()
            .matches("grant.revoked")
            .count()
    }

    fn dump(&self) -> String {
        let mut s = format!(
            "\n===== diagnostics (MCP {}, issuer {}) =====\n",
            self.url, self.issuer
        );
        for n in 1..=self.runs.get() {
            for ext in ["stdout", "stderr"] {
                s += &format!(
                    "--- run {n} {ext}:\n{}\n",
                    tail(&self.logdir.join(format!("run{n}.{ext}")), 3000)
                );
            }
        }
        s += &format!("--- AS log:\n{}\n", tail(&self.as_log, 5000));
        s += &format!("--- AS stderr:\n{}\n", tail(&self.as_stderr, 3000));
        s += &format!("--- browser log:\n{}\n", tail(&self.browser_log, 2000));
        s
    }

    #[track_caller]
    fn check(&self, cond: bool, what: &str) {
        if !cond {
            panic!("{what}{}", self.dump());
        }
        eprintln!("[commands]   ok: {what}");
    }

    /// Logs in through the headless browser; returns the run.
    fn login(&self, extra: &[&str]) -> Out {
        let mut args = vec!["login", self.url.as_str()];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        self.check(out.status.success(), &format!("login {extra:?} succeeded"));
        out
    }
}

/// A child whose stderr is read line by line as it comes.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    fn spawn(mut cmd: Command) -> Live {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mcp-oauth");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The first stderr line for which `f` gives something.
    fn wait_for<T>(&mut self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    eprintln!("[commands]   stderr: {l}");
                    let hit = f(&l);
                    self.seen.push(l);
                    if let Some(v) = hit {
                        return v;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no stderr line for {what}; saw:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    fn finish(mut self) -> (ExitStatus, String, String) {
        drop(self.child.stdin.take());
        let status = wait_or_kill(&mut self.child, RUN_TIMEOUT).expect("mcp-oauth finished");
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        (status, out, self.seen.join("\n"))
    }
}

/// curl with a cookie jar, one hop at a time, until a redirect to `stop_prefix`; returns
/// that URL (the one a browser without a listener behind it fails to load).
fn follow_until(url: &str, stop_prefix: &str, jar: &Path) -> String {
    let mut url = url.to_string();
    for _ in 0..20 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{redirect_url}",
                "--noproxy",
                "*",
                "-c",
            ])
            .arg(jar)
            .arg("-b")
            .arg(jar)
            .arg(&url)
            .output()
            .expect("curl");
        let next = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!next.is_empty(), "{url} did not redirect");
        if next.starts_with(stop_prefix) {
            return next;
        }
        url = next;
    }
    panic!("too many redirects");
}

/// The value of `<input ... name="NAME" value="...">` in an HTML page.
fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let i = html.find(&needle)? + needle.len();
    let j = html[i..].find('"')? + i;
    Some(html[i..j].to_string())
}

/// Approves a device code like a person at oidc-provider's pages: the verification URL
/// with the code, the confirmation form, then the (auto-completed) login and consent.
fn approve_device(verification_uri_complete: &str, jar: &Path) {
    let curl = |args: &[&str]| -> String {
        let out = Command::new("curl")
            .args(["-s", "--noproxy", "*", "-c"])
            .arg(jar)
            .arg("-b")
            .arg(jar)
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let action = format!(
        "{}/device",
        verification_uri_complete
            .split("/device")
            .next()
            .expect("a /device URL")
    );
    let page = curl(&[verification_uri_complete]);
    let xsrf = input_value(&page, "xsrf").unwrap_or_else(|| panic!("no xsrf in {page}"));
    let code = input_value(&page, "user_code").unwrap_or_else(|| panic!("no user_code in {page}"));
    let confirm = curl(&[
        "--data-urlencode",
        &format!("xsrf={xsrf}"),
        "--data-urlencode",
        &format!("user_code={code}"),
        &action,
    ]);
    let xsrf = input_value(&confirm, "xsrf")
        .unwrap_or_else(|| panic!("no confirmation form in {confirm}"));
    let done = curl(&[
        "-L",
        "--data-urlencode",
        &format!("xsrf={xsrf}"),
        "--data-urlencode",
        &format!("user_code={code}"),
        "--data-urlencode",
        "confirm=yes",
        &action,
    ]);
    assert!(
        done.to_lowercase().contains("success"),
        "device approval did not end on the success page:\n{done}"
    );
}

// ------------------------------------------------------------------------------------

/// login → status --json → token (and --header) → logout with revocation observed at the
/// AS; secrets never on stderr, even at -vvv.
#[test]
fn login_status_token_logout() {
    let Some(deps) = deps("login_status_token_logout") else {
        return;
    };
    let env = Env::start(&deps);
    let url = env.url.clone();

    let out = env.login(&["--dpop", "never"]);
    env.check(out.stdout.contains("Logged in to"), "login says so");
    env.check(
        out.stdout.contains("scopes granted        mcp:tools"),
        "login prints the granted scopes",
    );
    env.check(
        out.stdout.contains("expires               in 5m"),
        "login prints the expiry",
    );
    env.check(
        out.stdout.contains("refresh token         yes"),
        "login says a refresh token came back",
    );
    env.check(env.browser_opens() == 1, "login opened the browser once");
    env.check(
        env.token_requests(Some("authorization_code")) == 1,
        "one authorization_code grant",
    );
    // The challenge came from a real MCP request, not a GET probe.
    let mcp_log = fs::read_to_string(env.logdir.join("mcp.jsonl")).unwrap_or_default();
    env.check(
        mcp_log.lines().any(|l| {
            l.contains("\"method\": \"POST\"")
                && l.contains("\"path\": \"/mcp\"")
                && l.contains("401")
        }),
        "login collected the challenge with a POST to the MCP endpoint",
    );

    let out = env.run(&["status", "--json"]);
    env.check(out.status.success(), "status --json succeeded");
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let e = &v[0];
    env.check(
        v.as_array().is_some_and(|a| a.len() == 1),
        "status --json lists one credential",
    );
    env.check(e["server_url"] == url.as_str(), "status: server");
    env.check(e["issuer"] == env.issuer.as_str(), "status: issuer");
    env.check(e["registration"] == "dynamic", "status: registered by DCR");
    env.check(e["scope"] == "mcp:tools", "status: scopes");
    env.check(
        e["refresh_token"] == true && e["expired"] == false,
        "status: refresh available, not expired",
    );
    env.check(
        e["expires_in"]
            .as_i64()
            .is_some_and(|s| s > 200 && s <= 300),
        "status: expires_in",
    );
    env.check(!out.stdout.contains("eyJ"), "status --json prints no token");
    let out = env.run(&["status"]);
    env.check(
        out.stdout.contains("SERVER") && out.stdout.contains(&url) && out.stdout.contains("DCR"),
        "status table",
    );

    let requests = env.token_requests(None);
    let out = env.run(&["token", &url]);
    let token = out.stdout.trim().to_string();
    env.check(
        out.status.success() && token.starts_with("eyJ"),
        "token prints the access token",
    );
    env.check(
        env.mcp_accepts(&token),
        "the MCP server accepts the printed token",
    );
    let out = env.run(&["token", "--header", &url]);
    env.check(
        out.stdout.trim() == format!("Authorization: Bearer {token}"),
        "token --header",
    );
    env.check(
        env.token_requests(None) == requests,
        "a valid token needs no /token request",
    );

    // -vvv: every step traced, no secret shown.
    let stored = env.stored();
    let rt = stored["record"]["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id = stored["record"]["client"]["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.expire_access_token(now() - 10);
    let out = env.run(&["-vvv", "token", &url]);
    let fresh = out.stdout.trim().to_string();
    env.check(
        out.status.success() && fresh != token,
        "token refreshed an expired token",
    );
    env.check(!out.stderr.is_empty(), "-vvv traces on stderr");
    env.check(
        !out.stderr.contains(&fresh) && !out.stderr.contains(&token) && !out.stderr.contains(&rt),
        "-vvv shows neither access nor refresh tokens",
    );

    // logout: revoked at the AS, deleted here.
    let stored = env.stored();
    let rt = stored["record"]["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    env.check(
        env.try_refresh("definitely-not-a-token", &client_id) == "invalid_grant",
        "(the AS refuses unknown refresh tokens)",
    );
    let revocations_before = env
        .as_entries()
        .iter()
        .filter(|e| e["path"] == "/token/revocation")
        .count();
    let out = env.run(&["logout", &url]);
    env.check(out.status.success(), "logout succeeded");
    env.check(
        out.stdout.contains("refresh token revoked at"),
        "logout reports the revocation",
    );
    let revs: Vec<Value> = env
        .as_entries()
        .into_iter()
        .filter(|e| e["path"] == "/token/revocation")
        .collect();
    env.check(
        revs.len() == revocations_before + 2,
        "two revocation requests (refresh, then access token)",
    );
    env.check(
        revs.iter()
            .any(|e| e["token_type_hint"] == "refresh_token" && e["status"] == 200),
        "the AS answered 200 to the refresh token's revocation",
    );
    env.check(
        env.try_refresh(&rt, &client_id) == "invalid_grant",
        "the revoked refresh token is dead at the AS",
    );
    let out = env.run(&["status", "--json"]);
    env.check(out.stdout.trim() == "[]", "nothing stored after logout");
    let out = env.run(&["logout", &url]);
    env.check(
        out.status.success() && out.stdout.contains("Not logged in"),
        "a second logout is a no-op",
    );
}

/// `token` never starts a browser: without credentials it exits 3 with a hint.
#[test]
fn token_without_credentials_exits_3() {
    let Some(deps) = deps("token_without_credentials_exits_3") else {
        return;
    };
    let env = Env::start(&deps);
    let out = env.run(&["token", &env.url]);
    env.check(out.status.code() == Some(3), "exit status 3");
    env.check(out.stdout.is_empty(), "nothing on stdout");
    env.check(
        out.stderr.contains(&format!("mcp-oauth login {}", env.url)),
        "the hint names the login command",
    );
    env.check(env.browser_opens() == 0, "no browser");
    env.check(env.as_entries().is_empty(), "no request to the AS");
}

/// `login --no-browser`: the authorization URL on stderr, the failed redirect's URL pasted
/// on stdin (nothing listens on the redirect URI).
#[test]
fn paste_mode_through_stdin() {
    let Some(deps) = deps("paste_mode_through_stdin") else {
        return;
    };
    let env = Env::start(&deps);
    let mut live = Live::spawn(env.cmd(&["login", &env.url, "--no-browser"]));
    let auth_url = live.wait_for("the authorization URL", |l| {
        let t = l.trim();
        t.starts_with(&env.issuer).then(|| t.to_string())
    });
    let redirect_uri = live.wait_for("the redirect URI", |l| {
        l.find("sent to http://127.0.0.1:").map(|i| {
            let rest = &l[i + "sent to ".len()..];
            rest.split('…')
                .next()
                .unwrap_or(rest)
                .trim_end_matches(',')
                .to_string()
        })
    });
    // doctor names the redirect URI a login sends (the one a client registered by hand
    // needs).
    let doctor = env.run(&["doctor", &env.url]);
    let said = &doctor.stdout;
    env.check(
        said.lines()
            .any(|l| l.trim() == format!("redirect URI: {redirect_uri}")),
        &format!("doctor names the login's redirect URI {redirect_uri}:\n{said}"),
    );
    let pasted = follow_until(&auth_url, &redirect_uri, &env.tmp.path().join("paste.jar"));
    env.check(
        pasted.contains("code=") && pasted.contains("state=") && pasted.contains("iss="),
        "the AS redirected with code, state and iss",
    );
    writeln!(live.child.stdin.as_mut().unwrap(), "{pasted}").unwrap();
    let (status, stdout, stderr) = live.finish();
    env.check(
        status.success(),
        &format!("paste login succeeded (stderr: {stderr})"),
    );
    env.check(
        stdout.contains("Logged in to") && stdout.contains("refresh token         yes"),
        "paste login summary",
    );
    env.check(env.browser_opens() == 0, "paste mode opened no browser");
    env.check(
        env.token_requests(Some("authorization_code")) == 1,
        "one authorization_code grant",
    );
    let out = env.run(&["token", &env.url]);
    env.check(out.status.success(), "the pasted login's token is usable");

    // A wrong paste (state of another request) is refused before any token request
    // (--force: a valid credential is stored, and login would only say so).
    let mut live = Live::spawn(env.cmd(&["login", &env.url, "--no-browser", "--force"]));
    live.wait_for("the authorization URL", |l| {
        l.trim().starts_with(&env.issuer).then_some(())
    });
    let codes = env.token_requests(Some("authorization_code"));
    writeln!(
        live.child.stdin.as_mut().unwrap(),
        "{}?code=abc&state=forged&iss={}",
        redirect_uri,
        env.issuer
    )
    .unwrap();
    let (status, _, stderr) = live.finish();
    env.check(
        !status.success() && stderr.contains("state"),
        "a forged state is refused",
    );
    env.check(
        env.token_requests(Some("authorization_code")) == codes,
        "no token request for a refused paste",
    );
}

/// `login --device` (RFC 8628) against oidc-provider's device flow.
#[test]
fn device_grant() {
    let Some(deps) = deps("device_grant") else {
        return;
    };
    let env = Env::start(&deps);
    // DPoP forced on: the Python SDK server does not accept DPoP, so `auto` would not bind.
    let mut cmd = env.cmd(&["login", &env.url, "--device", "--dpop", "always"]);
    cmd.env_remove("BROWSER");
    let mut live = Live::spawn(cmd);
    let complete = live.wait_for("the verification URI with the code", |l| {
        l.trim()
            .strip_prefix("(or open ")
            .and_then(|r| r.split(", which carries").next())
            .map(str::to_string)
    });
    env.check(
        complete.starts_with(&format!("{}/device", env.issuer)),
        "verification_uri_complete at the AS",
    );
    approve_device(&complete, &env.tmp.path().join("device.jar"));
    let (status, stdout, stderr) = live.finish();
    env.check(
        status.success(),
        &format!("device login succeeded (stderr: {stderr})"),
    );
    env.check(
        stdout.contains("Logged in to") && stdout.contains("scopes granted        mcp:tools"),
        "device login summary",
    );
    let grants: Vec<Value> = env
        .as_entries()
        .into_iter()
        .filter(|e| {
            e["path"] == "/token"
                && e["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
        })
        .collect();
    env.check(
        grants.iter().any(|e| e["status"] == 200),
        "a device_code grant succeeded at the AS",
    );
    env.check(
        env.as_entries()
            .iter()
            .any(|e| e["path"] == "/device/auth" && e["status"] == 200),
        "device authorization request",
    );
    env.check(
        env.token_requests(Some("authorization_code")) == 0,
        "no authorization code grant",
    );
    env.check(env.browser_opens() == 0, "no browser");
    // Bound to the flow's DPoP key like the code flow's tokens.
    let out = env.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    env.check(
        v[0]["token_type"] == "DPoP",
        "the device grant's token is DPoP-bound (proof sent while polling)",
    );

    // By default (DPoP auto) the token is a plain Bearer token: oidc-provider offers DPoP,
    // but the Python SDK server does not, and a DPoP-bound token would be useless there.
    // The credential works for MCP requests. (--force: the DPoP-bound credential is valid.)
    let mut cmd = env.cmd(&["login", &env.url, "--device", "--force"]);
    cmd.env_remove("BROWSER");
    let mut live = Live::spawn(cmd);
    let complete = live.wait_for("the verification URI with the code", |l| {
        l.trim()
            .strip_prefix("(or open ")
            .and_then(|r| r.split(", which carries").next())
            .map(str::to_string)
    });
    approve_device(&complete, &env.tmp.path().join("device2.jar"));
    let (status, _, stderr) = live.finish();
    env.check(
        status.success(),
        &format!("second device login succeeded (stderr: {stderr})"),
    );
    let out = env.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    env.check(
        v[0]["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "DPoP auto gives a Bearer token when the MCP server does not take DPoP",
    );
    let out = env.run(&["call", &env.url, "echo", "--args", r#"{"text":"device"}"#]);
    env.check(
        out.status.success() && out.stdout.contains("device"),
        "the device login's credential works for call",
    );
    env.check(
        env.token_requests(Some("authorization_code")) == 0,
        "still no authorization code grant",
    );
}

/// N = 5 processes ask for a token at once while the stored one is expired: one refresh
/// request reaches the AS (rotating refresh tokens with reuse detection), all five print
/// a valid token, and the grant survives. The AS answers token requests after 1 s, so
/// that the five surely overlap (a refresh otherwise takes ~15 ms, less than the time
/// between two process starts).
#[test]
fn five_processes_share_one_refresh() {
    let Some(deps) = deps("five_processes_share_one_refresh") else {
        return;
    };
    let env = Env::start_with(&deps, &[("AS_TOKEN_DELAY_MS", "1000")]);
    env.login(&["--dpop", "never"]);
    let client_id = env.stored()["record"]["client"]["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.expire_access_token(now() - 3600);
    let refreshes = env.token_requests(Some("refresh_token"));
    let revoked = env.grants_revoked_at_as();

    const N: usize = 5;
    let started = Instant::now();
    let children: Vec<(Child, PathBuf, PathBuf)> = (0..N)
        .map(|i| {
            let o = env.logdir.join(format!("conc{i}.stdout"));
            let e = env.logdir.join(format!("conc{i}.stderr"));
            let mut cmd = env.cmd(&["token", &env.url]);
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
            started.elapsed(),
        ));
    }
    let wall = started.elapsed();
    let ok = results.iter().filter(|r| r.0.success()).count();
    let tokens: std::collections::BTreeSet<&str> = results.iter().map(|r| r.1.as_str()).collect();
    let valid = results.iter().filter(|r| env.mcp_accepts(&r.1)).count();
    let waited = results
        .iter()
        .filter(|r| r.2.contains("waiting for it"))
        .count();
    let refresh_requests = env.token_requests(Some("refresh_token")) - refreshes;
    let figures = format!(
        "N={N}: exit 0: {ok}/{N}; refresh requests at the AS: {refresh_requests}; distinct tokens printed: {}; \
         tokens accepted by the MCP server: {valid}/{N}; processes that said they waited: {waited}; \
         wall time {} ms (slowest process)",
        tokens.len(),
        wall.as_millis()
    );
    eprintln!("[commands] concurrency figures: {figures}");
    let _ = fs::write(env.logdir.join("concurrency-figures.txt"), &figures);
    for (i, r) in results.iter().enumerate() {
        eprintln!(
            "[commands]   process {i}: {} after {:?}; stderr: {}",
            r.0,
            r.3,
            r.2.trim()
        );
    }
    env.check(ok == N, "all five exited 0");
    env.check(
        refresh_requests == 1,
        "exactly one refresh request reached the AS",
    );
    env.check(
        valid == N,
        "all five printed a token the MCP server accepts",
    );
    env.check(
        tokens.len() == 1,
        "all five printed the same (refreshed) token",
    );
    env.check(
        waited == N - 1,
        "the four processes that waited for the refresh said so on stderr",
    );
    let errors: Vec<Value> = env
        .as_entries()
        .into_iter()
        .filter(|e| e["path"] == "/token" && e.get("error").is_some())
        .collect();
    env.check(
        errors.is_empty(),
        &format!("no token request was refused ({errors:?})"),
    );
    env.check(
        env.grants_revoked_at_as() == revoked,
        "the AS revoked no grant (no refresh token reuse)",
    );
    // The grant is alive: the rotated refresh token works again.
    env.expire_access_token(now() - 3600);
    let out = env.run(&["token", &env.url]);
    env.check(
        out.status.success() && env.mcp_accepts(out.stdout.trim()),
        "a later refresh works: the grant was not revoked",
    );
    let rt = env.stored()["record"]["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    env.check(
        !rt.is_empty() && env.try_refresh("x", &client_id) == "invalid_grant",
        "(sanity)",
    );
}

/// Five processes that all need a login at once open one browser: one runs the flow, the
/// others wait for it and use its result.
#[test]
fn five_logins_open_one_browser() {
    let Some(deps) = deps("five_logins_open_one_browser") else {
        return;
    };
    let env = Env::start(&deps);
    const N: usize = 5;
    let children: Vec<(Child, PathBuf, PathBuf)> = (0..N)
        .map(|i| {
            let o = env.logdir.join(format!("login{i}.stdout"));
            let e = env.logdir.join(format!("login{i}.stderr"));
            let mut cmd = env.cmd(&["token", "--login", &env.url, "--dpop", "never"]);
            cmd.stdout(File::create(&o).unwrap())
                .stderr(File::create(&e).unwrap());
            (cmd.spawn().unwrap(), o, e)
        })
        .collect();
    let mut results = Vec::new();
    for (mut c, o, e) in children {
        let st = wait_or_kill(&mut c, RUN_TIMEOUT).expect("token --login finished");
        results.push((
            st,
            fs::read_to_string(o).unwrap().trim().to_string(),
            fs::read_to_string(e).unwrap(),
        ));
    }
    let tokens: std::collections::BTreeSet<&str> = results.iter().map(|r| r.1.as_str()).collect();
    let waited = results
        .iter()
        .filter(|r| r.2.contains("waiting for it"))
        .count();
    eprintln!(
        "[commands] login figures: N={N}: browser opens {}; authorization_code grants {}; distinct tokens {}; waited {waited}",
        env.browser_opens(),
        env.token_requests(Some("authorization_code")),
        tokens.len()
    );
    env.check(results.iter().all(|r| r.0.success()), "all five exited 0");
    env.check(env.browser_opens() == 1, "one browser, not five");
    env.check(
        env.token_requests(Some("authorization_code")) == 1,
        "one authorization_code grant",
    );
    env.check(
        tokens.len() == 1 && results.iter().all(|r| env.mcp_accepts(&r.1)),
        "all five print the same valid token",
    );
    env.check(
        waited == N - 1,
        "the four others said they were waiting for another process",
    );
}

/// `doctor` on the seed server (the Python SDK + oidc-provider), human and JSON.
#[test]
fn doctor_on_the_seed_server() {
    let Some(deps) = deps("doctor_on_the_seed_server") else {
        return;
    };
    let env = Env::start(&deps);
    let out = env.run(&["doctor", &env.url]);
    env.check(out.status.success(), "doctor exits 0 (no MUST broken)");
    let mcp_port = env
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let as_port = env
        .issuer
        .trim_start_matches("http://127.0.0.1:")
        .to_string();
    // The redirect URI's port is derived from the server URL, whose port is random here.
    let redirect_port = mcp_oauth::authorize::loopback::stable_port(&env.url);
    let text = out
        .stdout
        .replace(&format!("127.0.0.1:{mcp_port}"), "127.0.0.1:<MCP>")
        .replace(&format!("127.0.0.1:{as_port}"), "127.0.0.1:<AS>")
        .replace(
            &format!("127.0.0.1:{redirect_port}/callback"),
            "127.0.0.1:<REDIRECT>/callback",
        );
    insta::assert_snapshot!("doctor_seed_server", text);
    env.check(
        env.as_entries().iter().all(|e| e["path"] != "/token"),
        "doctor made no token request",
    );
    let out = env.run(&["doctor", "--json", &env.url]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    env.check(
        v["prm"][0]["authoritative"] == true,
        "--json: the header's PRM is authoritative",
    );
    env.check(
        v["clients"].as_array().is_some_and(|c| {
            c.iter()
                .any(|x| x["works"] == false && x["why"] == "root answers HTTP 404")
        }),
        "--json: the root-only client fails: root answers 404",
    );
    let out = env.run(&["doctor", "--login", &env.url, "--dpop", "never"]);
    env.check(
        out.status.success()
            && out.stdout.contains("7. Login")
            && out.stdout.contains("logged in at"),
        "doctor --login reports the login",
    );
    env.check(
        env.token_requests(Some("authorization_code")) == 1,
        "doctor --login logged in once",
    );
}

/// Per-server settings from the configuration file: a static Authorization header turns
/// OAuth off (`token` prints it, `call` sends it, `login` refuses), a profile keeps its
/// own credential.
#[test]
fn configuration_file_settings() {
    let Some(deps) = deps("configuration_file_settings") else {
        return;
    };
    let env = Env::start(&deps);
    // Profiles: a separate credential per account.
    env.login(&["--profile", "work", "--dpop", "never"]);
    let out = env.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    env.check(
        v[0]["profile"] == "work",
        "the login is stored under its profile",
    );
    let out = env.run(&["token", &env.url]);
    env.check(
        out.status.code() == Some(3),
        "no credential without the profile",
    );
    let mut cmd = env.cmd(&["token", &env.url]);
    cmd.env("MCP_OAUTH_PROFILE", "work");
    let out = env.run_cmd(cmd, &["token", "(MCP_OAUTH_PROFILE=work)"]);
    env.check(
        out.status.success(),
        "MCP_OAUTH_PROFILE selects the profile",
    );
    let good = out.stdout.trim().to_string();

    // A static header from an environment variable: OAuth off.
    fs::write(
        env.tmp.path().join("config.toml"),
        format!(
            "[servers.\"{}\"]\nauthorization_env = \"TEST_MCP_TOKEN\"\n",
            env.url
        ),
    )
    .unwrap();
    let mut cmd = env.cmd(&["token", "--header", &env.url]);
    cmd.env("TEST_MCP_TOKEN", &good);
    let out = env.run_cmd(cmd, &["token", "--header", "(static)"]);
    env.check(
        out.stdout.trim() == format!("Authorization: Bearer {good}"),
        "token prints the static header",
    );
    env.check(
        out.stderr.contains("OAuth is off"),
        "the static header is logged",
    );
    let mut cmd = env.cmd(&["call", &env.url, "echo", "--args", r#"{"text":"static"}"#]);
    cmd.env("TEST_MCP_TOKEN", &good);
    let tokens_before = env.token_requests(None);
    let out = env.run_cmd(cmd, &["call", "(static)"]);
    env.check(
        out.status.success() && out.stdout.contains("static"),
        "call sends the static header",
    );
    env.check(
        env.token_requests(None) == tokens_before && env.browser_opens() == 1,
        "no OAuth traffic with a static header",
    );
    let mut cmd = env.cmd(&["login", &env.url]);
    cmd.env("TEST_MCP_TOKEN", &good);
    let out = env.run_cmd(cmd, &["login", "(static)"]);
    env.check(
        !out.status.success() && out.stderr.contains("static Authorization header"),
        "login refuses when OAuth is off",
    );

    // A broken file names itself.
    fs::write(
        env.tmp.path().join("config.toml"),
        "[servers.\"x\"]\nclient_secret = \"no\"\n",
    )
    .unwrap();
    let out = env.run(&["token", &env.url]);
    env.check(
        !out.status.success()
            && out.stderr.contains("config.toml")
            && out.stderr.contains("client_secret"),
        "an unknown key is an error naming the file and the key",
    );
}

fn deps(test: &str) -> Option<Deps> {
    cli::deps(&format!("commands::{test}"), "the real-server test")
}
