//! End-to-end test of the `mcp-oauth` binary against real third-party servers:
//!
//! * authorization server: `oidc-provider` (tests/node/oidc-as.mjs, Node 22 from tests/node),
//!   with open DCR, PKCE, RFC 8707 resource indicators (JWT access tokens with `aud` = the
//!   MCP URL), rotating refresh tokens and headless auto-login/consent;
//! * MCP server: the official MCP Python SDK (tests/python/mcp_server.py), whose 401 names
//!   its protected resource metadata at `/.well-known/oauth-protected-resource/mcp` (the
//!   root well-known URL is a 404);
//! * browser: tests/browser.sh (curl following redirects) as `$BROWSER`.
//!
//! The dependencies are installed by `scripts/bootstrap`, which writes
//! `.deps/test-deps.json`; `scripts/test` runs this test with `MCP_OAUTH_TEST_DEPS=<abs
//! path of .deps>` and `MCP_OAUTH_REQUIRE_REAL=1`. Without `MCP_OAUTH_TEST_DEPS` the test
//! prints a loud skip notice and passes, unless `MCP_OAUTH_REQUIRE_REAL=1`.
//!
//! All traffic is on 127.0.0.1. Every child process is killed when the test ends (guards),
//! and the servers also exit when their stdin (a pipe held by this process) closes.
#![cfg(unix)]

use mcp_oauth_testkit::cli::{
    self, Deps, ServerProcess, browser_opens, clean_env, credential_files, json_lines,
    keep_logs_on_request, log_tails, now, rewrite_as_the_store_does, start_mcp_server,
    start_oidc_provider, stderr_tails, tail, wait_or_kill,
};
use serde_json::Value;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const FIRST_RUN_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

struct RunOutput {
    status: ExitStatus,
    stdout: String,
}

/// Everything one test needs: servers, paths and the logs they write.
struct Ctx {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    logdir: PathBuf,
    as_log: PathBuf,
    mcp_log: PathBuf,
    browser_log: PathBuf,
    browser: PathBuf,
    mcp_url: String,
    issuer: String,
    // Dropped last-to-first: MCP server, then the AS.
    servers: Vec<ServerProcess>,
    runs: usize,
}

/// Server variants.
#[derive(Clone, Copy)]
struct Variant {
    /// `mcp_server.py --prm-as`: "exact" (issuer verbatim) or "sdk" (the unmodified SDK's
    /// PRM, whose pydantic URL type adds a trailing slash to the path-less issuer).
    prm_as: &'static str,
    /// Whether oidc-as.mjs serves its metadata at the RFC 8414 well-known URL too (false:
    /// 404 there, only /.well-known/openid-configuration works).
    rfc8414: bool,
}

const DEFAULT: Variant = Variant {
    prm_as: "exact",
    rfc8414: true,
};

impl Ctx {
    fn start(deps: &Deps, variant: Variant) -> Ctx {
        let tmp = cli::temp_dir("mcp-oauth-real-servers.");
        let logdir = tmp.path().join("logs");
        fs::create_dir_all(&logdir).expect("create log dir");
        let as_log = logdir.join("as.log");
        let mcp_log = logdir.join("mcp.log");
        let browser_log = logdir.join("browser.log");

        let rfc8414 = if variant.rfc8414 { "1" } else { "0" };
        let oidc = start_oidc_provider(deps, &logdir, &as_log, &[("AS_RFC8414", rfc8414)]);
        let issuer = oidc.field("issuer");

        let mut cmd = Command::new(&deps.python);
        cmd.arg(&deps.mcp_server)
            .arg("--prm-as")
            .arg(variant.prm_as);
        let mcp = start_mcp_server(cmd, &issuer, &mcp_log, &logdir);
        let mcp_url = mcp.field("url");

        Ctx {
            home: tmp.path().join("home"),
            logdir,
            as_log,
            mcp_log,
            browser_log,
            browser: deps.browser.clone(),
            mcp_url,
            issuer,
            servers: vec![oidc, mcp],
            runs: 0,
            _tmp: tmp,
        }
    }

    /// Runs `mcp-oauth <args>` with the test's store, browser and no proxy.
    fn mcp_oauth(&mut self, args: &[&str], timeout: Duration) -> RunOutput {
        self.runs += 1;
        let n = self.runs;
        let out_path = self.logdir.join(format!("run{n}.stdout"));
        let err_path = self.logdir.join(format!("run{n}.stderr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        clean_env(&mut cmd);
        cmd.args(args)
            .env("MCP_OAUTH_HOME", &self.home)
            .env("BROWSER", &self.browser)
            .env("BROWSER_LOG", &self.browser_log)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"));
        eprintln!("[real_servers] run {n}: mcp-oauth {}", args.join(" "));
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn mcp-oauth");
        let status = wait_or_kill(&mut child, timeout).unwrap_or_else(|| {
            panic!(
                "mcp-oauth {} did not finish within {timeout:?}\n{}",
                args.join(" "),
                self.dump()
            )
        });
        let out = RunOutput {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        };
        eprintln!(
            "[real_servers] run {n}: {} in {:.1}s",
            out.status,
            started.elapsed().as_secs_f64()
        );
        out
    }

    fn as_entries(&self) -> Vec<Value> {
        json_lines(&self.as_log)
    }

    /// Number of `POST /token` requests with this grant_type (any grant_type if None).
    fn token_requests(&self, grant_type: Option<&str>) -> usize {
        cli::token_requests(&self.as_entries(), grant_type)
    }

    /// Times `$BROWSER` was invoked.
    fn browser_opens(&self) -> usize {
        browser_opens(&self.browser_log)
    }

    fn root_prm_requests(&self) -> Vec<Value> {
        json_lines(&self.mcp_log)
            .into_iter()
            .filter(|e| {
                e["path"].as_str().is_some_and(|p| {
                    p.trim_end_matches('/') == "/.well-known/oauth-protected-resource"
                })
            })
            .collect()
    }

    fn credential_files(&self) -> Vec<PathBuf> {
        credential_files(&self.home)
    }

    /// Sets `record.tokens.expires_at` of every stored credential to `when`; returns how
    /// many records were edited. Written like the store writes (0600 temp file + rename).
    fn expire_access_tokens(&self, when: u64) -> usize {
        let mut edited = 0;
        for path in self.credential_files() {
            let text = fs::read_to_string(&path).expect("read credential file");
            let mut v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let Some(tokens) = v
                .get_mut("record")
                .and_then(|r| r.get_mut("tokens"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            assert!(
                tokens.get("refresh_token").is_some_and(|t| !t.is_null()),
                "stored record in {} has no refresh_token, so it cannot be refreshed \
                 (oidc-provider issued one: see the AS log)\n{}",
                path.display(),
                self.dump()
            );
            tokens.insert("expires_at".into(), Value::from(when));
            rewrite_as_the_store_does(&path, &v);
            edited += 1;
        }
        edited
    }

    /// Everything useful for a failure message.
    fn dump(&self) -> String {
        let mut s = format!(
            "\n===== diagnostics (logs in {}; MCP {}; issuer {}) =====\n",
            self.logdir.display(),
            self.mcp_url,
            self.issuer
        );
        for n in 1..=self.runs {
            for ext in ["stdout", "stderr"] {
                let p = self.logdir.join(format!("run{n}.{ext}"));
                s += &format!("--- mcp-oauth run {n} {ext}:\n{}\n", tail(&p, 6000));
            }
        }
        s += &log_tails(
            &[
                ("AS log", &self.as_log),
                ("MCP log", &self.mcp_log),
                ("browser log", &self.browser_log),
            ],
            6000,
        );
        s += &stderr_tails(&self.servers, 4000);
        for p in self.credential_files() {
            s += &format!("--- stored credential file: {}\n", p.display());
        }
        s
    }

    #[track_caller]
    fn check(&self, cond: bool, what: &str) {
        if !cond {
            panic!("{what}{}", self.dump());
        }
        eprintln!("[real_servers]   ok: {what}");
    }

    #[track_caller]
    fn check_success(&self, out: &RunOutput, what: &str) {
        self.check(
            out.status.success(),
            &format!("{what}: mcp-oauth exited with {}", out.status),
        );
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // MCP server first, then the authorization server.
        while let Some(server) = self.servers.pop() {
            drop(server);
        }
        keep_logs_on_request(self._tmp.path(), "real_servers");
    }
}

#[test]
fn python_sdk_server_with_oidc_provider() {
    let Some(deps) = deps() else { return };
    let mut ctx = Ctx::start(&deps, DEFAULT);
    let url = ctx.mcp_url.clone();
    let echo_args = ["call", url.as_str(), "echo", "--args", r#"{"text":"hi"}"#];

    // (a) First run: full discovery + DCR + browser authorization + token, then the call.
    let out = ctx.mcp_oauth(&echo_args, FIRST_RUN_TIMEOUT);
    ctx.check_success(&out, "first call (authorization through $BROWSER)");
    ctx.check(
        out.stdout.contains("hi"),
        &format!(
            "first call prints the echo result (stdout {:?})",
            out.stdout
        ),
    );
    ctx.check(
        ctx.browser_opens() == 1,
        &format!(
            "the browser was opened once (opened {})",
            ctx.browser_opens()
        ),
    );
    ctx.check(
        ctx.token_requests(Some("authorization_code")) == 1,
        "exactly one authorization_code grant at the AS",
    );
    ctx.check(
        ctx.root_prm_requests().is_empty(),
        "no request for the root /.well-known/oauth-protected-resource after the first run",
    );
    ctx.check(
        !ctx.credential_files().is_empty(),
        "a credential record was stored under $MCP_OAUTH_HOME/credentials",
    );

    // (c) Second run: stored access token, no browser, no token request.
    let (opens, tokens) = (ctx.browser_opens(), ctx.token_requests(None));
    let out = ctx.mcp_oauth(&echo_args, RUN_TIMEOUT);
    ctx.check_success(&out, "second call (stored token)");
    ctx.check(
        out.stdout.contains("hi"),
        "second call prints the echo result",
    );
    ctx.check(
        ctx.browser_opens() == opens,
        "second call opened no browser",
    );
    ctx.check(
        ctx.token_requests(None) == tokens,
        "second call made no /token request",
    );

    // (d) Expired access token: exactly one refresh_token grant, no browser.
    let edited = ctx.expire_access_tokens(now() - 3600);
    ctx.check(edited >= 1, "marked the stored access token as expired");
    let (opens, codes, refreshes) = (
        ctx.browser_opens(),
        ctx.token_requests(Some("authorization_code")),
        ctx.token_requests(Some("refresh_token")),
    );
    let out = ctx.mcp_oauth(&echo_args, RUN_TIMEOUT);
    ctx.check_success(&out, "third call (expired access token)");
    ctx.check(
        out.stdout.contains("hi"),
        "third call prints the echo result",
    );
    ctx.check(
        ctx.token_requests(Some("refresh_token")) == refreshes + 1,
        &format!(
            "exactly one refresh_token grant reached the AS (saw {})",
            ctx.token_requests(Some("refresh_token")) - refreshes
        ),
    );
    ctx.check(
        ctx.token_requests(Some("authorization_code")) == codes,
        "no new authorization_code grant",
    );
    ctx.check(ctx.browser_opens() == opens, "third call opened no browser");
    let refresh = ctx
        .as_entries()
        .into_iter()
        .rev()
        .find(|e| e["path"] == "/token" && e["grant_type"] == "refresh_token")
        .expect("refresh entry");
    ctx.check(
        refresh["status"] == 200 && refresh.get("error").is_none(),
        &format!("the refresh succeeded at the AS ({refresh})"),
    );
    ctx.check(
        refresh["resource"] == url.as_str() || refresh["resource"] == serde_json::json!([url]),
        &format!("the refresh request carried resource={url} ({refresh})"),
    );

    // Tools list: no tool name. Uses the refreshed (stored) token.
    let tokens = ctx.token_requests(None);
    let out = ctx.mcp_oauth(&["call", url.as_str()], RUN_TIMEOUT);
    ctx.check_success(&out, "tools list");
    ctx.check(
        out.stdout.contains("echo"),
        &format!("tools list mentions echo (stdout {:?})", out.stdout),
    );
    ctx.check(
        ctx.token_requests(None) == tokens,
        "tools list reused the refreshed access token (no /token request)",
    );
    ctx.check(ctx.browser_opens() == opens, "tools list opened no browser");

    // (e) The rotated refresh token was persisted: a second refresh works too. (With the
    // old, already used refresh token oidc-provider would answer invalid_grant and revoke
    // the whole grant: reuse detection.)
    ctx.check(
        ctx.expire_access_tokens(now() - 3600) >= 1,
        "marked the refreshed access token as expired",
    );
    let refreshes = ctx.token_requests(Some("refresh_token"));
    let out = ctx.mcp_oauth(&echo_args, RUN_TIMEOUT);
    ctx.check_success(&out, "fifth call (second refresh, rotated refresh token)");
    ctx.check(
        out.stdout.contains("hi"),
        "fifth call prints the echo result",
    );
    ctx.check(
        ctx.token_requests(Some("refresh_token")) == refreshes + 1,
        "exactly one more refresh_token grant",
    );
    ctx.check(ctx.browser_opens() == opens, "fifth call opened no browser");

    // (b) Over all runs: never the root PRM; no token request was refused.
    ctx.check(
        ctx.root_prm_requests().is_empty(),
        &format!(
            "the MCP server never saw a request for the root \
             /.well-known/oauth-protected-resource ({:?})",
            ctx.root_prm_requests()
        ),
    );
    let refused: Vec<Value> = ctx
        .as_entries()
        .into_iter()
        .filter(|e| e["path"] == "/token" && e.get("error").is_some())
        .collect();
    ctx.check(
        refused.is_empty(),
        &format!("the AS refused no token request ({refused:?})"),
    );
}

/// A first call (browser authorization) and a second one (stored token) against a
/// server variant.
fn authorize_then_reuse(deps: &Deps, variant: Variant) -> Ctx {
    let mut ctx = Ctx::start(deps, variant);
    let url = ctx.mcp_url.clone();
    let args = ["call", url.as_str(), "echo", "--args", r#"{"text":"hi"}"#];
    let out = ctx.mcp_oauth(&args, FIRST_RUN_TIMEOUT);
    ctx.check_success(&out, "first call (authorization through $BROWSER)");
    ctx.check(
        out.stdout.contains("hi"),
        "first call prints the echo result",
    );
    ctx.check(ctx.browser_opens() == 1, "the browser was opened once");
    let tokens = ctx.token_requests(None);
    let out = ctx.mcp_oauth(&args, RUN_TIMEOUT);
    ctx.check_success(&out, "second call (stored token)");
    ctx.check(
        out.stdout.contains("hi"),
        "second call prints the echo result",
    );
    ctx.check(ctx.browser_opens() == 1, "second call opened no browser");
    ctx.check(
        ctx.token_requests(None) == tokens,
        "second call made no /token request",
    );
    ctx.check(
        ctx.root_prm_requests().is_empty(),
        "no request for the root /.well-known/oauth-protected-resource",
    );
    ctx
}

/// The unmodified Python SDK lists the issuer in PRM `authorization_servers` as
/// "http://127.0.0.1:<port>/" (pydantic adds the slash) while oidc-provider's metadata says
/// "http://127.0.0.1:<port>": a path-less issuer differing only by that trailing slash
/// (python-sdk #1919) must still work.
#[test]
fn python_sdk_prm_with_trailing_slash_issuer() {
    let Some(deps) = deps() else { return };
    let ctx = authorize_then_reuse(
        &deps,
        Variant {
            prm_as: "sdk",
            rfc8414: true,
        },
    );
    ctx.check(
        fs::read_to_string(&ctx.mcp_log)
            .unwrap_or_default()
            .contains("/.well-known/oauth-protected-resource/mcp"),
        "the client read the SDK's PRM",
    );
}

/// An authorization server with metadata only at /.well-known/openid-configuration (404 at
/// the RFC 8414 URL): the client must fall back to OpenID Connect discovery.
#[test]
fn oidc_discovery_fallback() {
    let Some(deps) = deps() else { return };
    let ctx = authorize_then_reuse(
        &deps,
        Variant {
            prm_as: "exact",
            rfc8414: false,
        },
    );
    ctx.check(
        ctx.as_entries()
            .iter()
            .any(|e| e["path"] == "/.well-known/openid-configuration" && e["status"] == 200),
        "the client read the AS metadata from /.well-known/openid-configuration",
    );
}

fn deps() -> Option<Deps> {
    cli::deps(
        "real_servers",
        "the real oidc-provider + MCP Python SDK test",
    )
}
