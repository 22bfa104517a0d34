//! Interop of `mcp-oauth proxy` with real third-party software, end to end:
//!
//! * stdio clients: the official MCP Python SDK (`tests/python/proxy_client.py`, its
//!   `stdio_client` + `ClientSession`) and the official TypeScript SDK
//!   (`tests/node/proxy-client.mjs`, `StdioClientTransport` + `Client`); each launches
//!   `mcp-oauth proxy <url>` itself, as a host would;
//! * MCP server: the official Python SDK's FastMCP (`tests/python/mcp_server.py`), in two
//!   wires: session-based with SSE responses (its default), and stateless with JSON
//!   responses (`tests/python/mcp_server_variant.py`, `stateless_http` + `json_response`);
//! * authorization server: `oidc-provider` (`tests/node/oidc-as.mjs`), with `$BROWSER` =
//!   `tests/browser.sh`.
//!
//! What is checked, per wire: two proxies started at once on an empty store share one
//! login (one browser, one authorization_code grant); a later run uses the stored token
//! with no OAuth traffic; with the access token expired, two proxies at once share one
//! refresh (the refresh tokens rotate, so a second refresh would fail); the session is
//! ended with DELETE (session wire).
//!
//! Gated like `real_servers.rs`: needs `MCP_OAUTH_TEST_DEPS` (scripts/bootstrap), skips
//! loudly without it unless `MCP_OAUTH_REQUIRE_REAL=1`. Loopback only.
#![cfg(unix)]

use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
use support::{Deps, Server, clean_env, tail};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn json_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    /// FastMCP defaults: Mcp-Session-Id, SSE responses, GET stream.
    Session,
    /// stateless_http + json_response: no session, JSON responses.
    Stateless,
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    TypeScript,
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
    servers: Vec<Server>,
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
        let tmp = tempfile::Builder::new()
            .prefix("mcp-oauth-proxy-interop.")
            .tempdir()
            .expect("tempdir");
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).unwrap();
        let as_log = logdir.join("as.log");
        let mcp_log = logdir.join("mcp.log");
        let mut cmd = Command::new(&deps.node);
        cmd.arg(&deps.oidc_as)
            .arg("0")
            .env("AS_LOG", &as_log)
            .env("AT_TTL", "300")
            .env("AS_EXIT_ON_STDIN_EOF", "1");
        let oidc = Server::start("oidc-provider", cmd, &logdir);
        let issuer = oidc.field("issuer");
        let mut cmd = Command::new(&deps.python);
        cmd.arg(deps.root.join("tests/python/mcp_server_variant.py"))
            .arg("--issuer")
            .arg(&issuer)
            .env("MCP_LOG", &mcp_log)
            .env("MCP_EXIT_ON_STDIN_EOF", "1")
            .env("PYTHONUNBUFFERED", "1");
        if let Wire::Stateless = wire {
            cmd.env("MCP_STATELESS_HTTP", "1")
                .env("MCP_JSON_RESPONSE", "1");
        }
        let mcp = Server::start("mcp-server", cmd, &logdir);
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
        let status = loop {
            if let Some(s) = run.child.try_wait().unwrap() {
                break s;
            }
            if run.started.elapsed() > RUN_TIMEOUT {
                let _ = run.child.kill();
                let _ = run.child.wait();
                panic!(
                    "{:?} client did not finish within {RUN_TIMEOUT:?}{}",
                    run.sdk,
                    self.dump()
                );
            }
            thread::sleep(Duration::from_millis(25));
        };
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
        json_lines(&self.as_log)
            .iter()
            .filter(|e| e["path"] == "/token" && e["grant_type"] == grant_type)
            .count()
    }

    fn browser_opens(&self) -> usize {
        fs::read_to_string(&self.browser_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" open url="))
            .count()
    }

    fn mcp_requests(&self) -> Vec<Value> {
        json_lines(&self.mcp_log)
    }

    /// Sets `expires_at` of every stored access token to the past (as the store writes:
    /// 0600 temp file, rename).
    fn expire_tokens(&self) -> usize {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut edited = 0;
        let dir = self.home.join("credentials");
        for entry in
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}{}", dir.display(), self.dump()))
        {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let Some(tokens) = v
                .pointer_mut("/record/tokens")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            tokens.insert("expires_at".into(), Value::from(now - 3600));
            let tmp = path.with_extension("json.test-edit");
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .unwrap();
            f.write_all(serde_json::to_string_pretty(&v).unwrap().as_bytes())
                .unwrap();
            f.sync_all().unwrap();
            fs::rename(&tmp, &path).unwrap();
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
        for (name, p) in [
            ("AS log", &self.as_log),
            ("MCP log", &self.mcp_log),
            ("browser log", &self.browser_log),
        ] {
            s += &format!("--- {name}:\n{}\n", tail(p, 4000));
        }
        for server in &self.servers {
            s += &format!(
                "--- {} stderr:\n{}\n",
                server.name,
                tail(&server.stderr_path, 3000)
            );
        }
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
        if std::env::var_os("MCP_OAUTH_KEEP_TEST_LOGS").is_some() {
            let kept = PathBuf::from(format!("{}-kept", self._tmp.path().display()));
            let _ = fs::rename(self._tmp.path(), &kept);
            eprintln!("[proxy_interop] logs kept in {}", kept.display());
        }
    }
}

fn interop(wire: Wire) {
    let Some(deps) = deps() else { return };
    let mut ctx = Ctx::start(deps, wire);

    // 1. Two proxies at once on an empty store: one login, shared.
    let a = ctx.spawn(Sdk::Python);
    let b = ctx.spawn(Sdk::TypeScript);
    let va = ctx.finish(a);
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
    ctx.check(
        va["protocol"] == "2025-11-25",
        &format!(
            "the Python SDK negotiated 2025-11-25 through the proxy ({})",
            va["protocol"]
        ),
    );

    // 2. Stored token: no OAuth traffic at all, and exactly one HTTP request before the
    //    initialize reply.
    let (opens, codes, refreshes) = (
        ctx.browser_opens(),
        ctx.token_requests("authorization_code"),
        ctx.token_requests("refresh_token"),
    );
    let before = ctx.mcp_requests().len();
    let r = ctx.spawn(Sdk::TypeScript);
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
    ctx.check(
        reqs.first().is_some_and(|e| e["status"] == 200),
        &format!("the first request succeeded ({:?})", reqs.first()),
    );

    // 3. Expired access token, two proxies at once: one refresh, shared (refresh tokens
    //    rotate: a second refresh with the old one would revoke the grant).
    ctx.check(
        ctx.expire_tokens() >= 1,
        "marked the stored access token expired",
    );
    let a = ctx.spawn(Sdk::Python);
    let b = ctx.spawn(Sdk::TypeScript);
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
        Wire::Session => {
            let deletes = reqs.iter().filter(|e| e["method"] == "DELETE").count();
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
        }
        Wire::Stateless => {
            ctx.check(
                !reqs.iter().any(|e| e["method"] == "DELETE"),
                "no session, so no DELETE",
            );
            let gets = reqs
                .iter()
                .filter(|e| e["method"] == "GET" && e["path"] == "/mcp")
                .count();
            ctx.check(
                gets <= ctx.runs,
                &format!(
                    "at most one GET stream per proxy ({gets} for {} runs)",
                    ctx.runs
                ),
            );
        }
    }
}

#[test]
fn sdk_stdio_clients_through_the_proxy_session_wire() {
    interop(Wire::Session);
}

#[test]
fn sdk_stdio_clients_through_the_proxy_stateless_wire() {
    interop(Wire::Stateless);
}

fn deps() -> Option<Deps> {
    let deps = support::deps(
        "proxy_interop",
        "the SDK stdio clients -> mcp-oauth proxy -> Python SDK server + oidc-provider test",
    )?;
    for p in [
        "tests/python/proxy_client.py",
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
