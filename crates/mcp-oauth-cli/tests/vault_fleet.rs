//! The PostgreSQL vault at fleet scale, on this machine (issue 20): a real PostgreSQL
//! (Debian's, started in a temporary directory on loopback), oidc-provider with rotating
//! refresh tokens and reuse detection (`oidc-as.mjs`, its token endpoint slowed by
//! `AS_TOKEN_DELAY_MS` so that the workers overlap for sure), the Python SDK's MCP server,
//! and 16 worker processes of the real `mcp-oauth token`, each a separate "machine":
//! its own empty MCP_OAUTH_HOME and HOME, nothing shared but the vault.
//!
//! 1. One expired credential, 16 workers at once: exactly one refresh at the AS, no
//!    grant revoked, every worker prints the same valid token.
//! 2. The worker holding the refresh lock is killed (SIGKILL) while its refresh is at
//!    the AS: another worker completes, within the lease (here: at once, as the lock
//!    dies with the holder's connection); still no grant revoked.
//! 3. PostgreSQL crashes and restarts while a worker is refreshing: every worker
//!    recovers, the credential is kept, one refresh, no grant revoked.
//! 4. Benchmark: `mcp-oauth token` with a valid token, 16 workers, the vault against the
//!    file store, in one run.
//!
//! Needs MCP_OAUTH_TEST_DEPS (see mcp_oauth_testkit::cli) and PostgreSQL; skips loudly without
//! them unless MCP_OAUTH_REQUIRE_REAL=1.
#![cfg(unix)]

#[path = "../../mcp-oauth-store-postgres/tests/support/pg.rs"]
mod pg;

use mcp_oauth::store::{CredentialKey, CredentialStore};
use mcp_oauth_store_postgres::{EndUser, KeyRing, PgStore, PgStoreOptions};
use mcp_oauth_testkit::cli::{
    self, PROXY_VARS, ServerProcess, now, start_mcp_server, start_oidc_provider, tail,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const WORKERS: usize = 16;
/// base64 of 32 bytes of 7.
const VAULT_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const USER: &str = "fleet-user";
/// The token endpoint answers after this long: every worker starts while the first
/// refresh is still at the AS.
const TOKEN_DELAY_MS: u64 = 1500;
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

struct Fleet {
    tmp: tempfile::TempDir,
    pg: pg::Postgres,
    db_url: String,
    as_log: PathBuf,
    as_stderr: PathBuf,
    mcp_url: String,
    browser: PathBuf,
    runs: usize,
    _servers: Vec<ServerProcess>,
}

struct Run {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    started: Instant,
}

struct Done {
    name: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// From start to exit.
    took: Duration,
    ended: Instant,
}

impl Fleet {
    fn start(test: &str) -> Option<Fleet> {
        let deps = cli::deps(test, "the PostgreSQL vault fleet test")?;
        let pg = pg::Postgres::start(test)?;
        let db_url = pg.database("vault");
        let tmp = cli::temp_dir("mcp-oauth-vault-fleet.");
        let logs = tmp.path().join("logs");
        fs::create_dir_all(&logs).unwrap();
        let as_log = logs.join("as.log");
        let token_delay = TOKEN_DELAY_MS.to_string();
        let oidc = start_oidc_provider(
            &deps,
            &logs,
            &as_log,
            &[("AS_TOKEN_DELAY_MS", token_delay.as_str())],
        );
        let issuer = oidc.field("issuer");
        let as_stderr = oidc.stderr_path.clone();
        let mut cmd = Command::new(&deps.python);
        cmd.arg(&deps.mcp_server);
        let mcp = start_mcp_server(cmd, &issuer, &logs.join("mcp.log"), &logs);
        let mcp_url = mcp.field("url");
        Some(Fleet {
            pg,
            db_url,
            as_log,
            as_stderr,
            mcp_url,
            browser: deps.browser.clone(),
            runs: 0,
            tmp,
            _servers: vec![oidc, mcp],
        })
    }

    /// `mcp-oauth <args>` as worker `name`: its own empty home directories (a separate
    /// machine), the vault as its store. `application_name` names it in the database.
    fn spawn(&mut self, name: &str, store: &str, args: &[&str]) -> Run {
        self.spawn_with_stdin(name, store, args, None)
    }

    /// [`spawn`](Self::spawn) with stdin from a file. `store`: "vault" (MCP_OAUTH_STORE),
    /// "vault-config" (`[store]` in the configuration file), or "file".
    fn spawn_with_stdin(
        &mut self,
        name: &str,
        store: &str,
        args: &[&str],
        stdin: Option<&Path>,
    ) -> Run {
        self.runs += 1;
        let n = self.runs;
        let dir = self.tmp.path().join(format!("machines/{n}-{name}"));
        fs::create_dir_all(dir.join("home")).unwrap();
        let logs = self.tmp.path().join("logs");
        let (stdout, stderr) = (
            logs.join(format!("{n}-{name}.stdout")),
            logs.join(format!("{n}-{name}.stderr")),
        );
        let config = dir.join("config.toml");
        let vault_url = format!("{}?application_name={name}", self.db_url);
        let store = match store {
            "vault" => Some(vault_url),
            "vault-config" => {
                fs::write(
                    &config,
                    format!("[store]\nurl = {vault_url:?}\nuser = {USER:?}\n"),
                )
                .unwrap();
                None
            }
            _ => Some("file".to_string()),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.join("home"))
            .env("MCP_OAUTH_HOME", dir.join("mcp-oauth"))
            .env("MCP_OAUTH_CONFIG", &config)
            .env("MCP_OAUTH_VAULT_KEY", VAULT_KEY)
            .env("BROWSER", &self.browser)
            .env("BROWSER_LOG", logs.join("browser.log"))
            .env("NO_PROXY", "127.0.0.1,localhost,::1")
            .env("RUST_LOG", "info")
            .stdin(match stdin {
                Some(p) => Stdio::from(File::open(p).unwrap()),
                None => Stdio::null(),
            })
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap());
        if let Some(store) = store {
            cmd.env("MCP_OAUTH_STORE", store)
                .env("MCP_OAUTH_USER", USER);
        }
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        Run {
            name: name.to_string(),
            child: cmd.spawn().expect("spawn mcp-oauth"),
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    fn vault(&self) -> PgStore {
        let keys = KeyRing::from_lookup(|n| (n == "MCP_OAUTH_VAULT_KEY").then(|| VAULT_KEY.into()))
            .unwrap();
        PgStore::open(
            &self.db_url,
            PgStoreOptions::new(EndUser::new(USER).unwrap(), keys),
        )
        .unwrap()
    }

    fn key(&self) -> CredentialKey {
        CredentialKey::new(self.mcp_url.clone())
    }

    /// Makes the stored access token expired, as time would.
    fn expire(&self) {
        let vault = self.vault();
        let mut rec = vault
            .load(&self.key())
            .unwrap()
            .expect("a stored credential");
        rec.tokens.expires_at = Some(now() - 60);
        vault.save(&self.key(), &rec).unwrap();
    }

    fn as_entries(&self) -> Vec<Value> {
        fs::read_to_string(&self.as_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Successful refreshes at the AS, and refused ones.
    fn refreshes(&self) -> (usize, usize) {
        let entries = self.as_entries();
        let refresh = entries
            .iter()
            .filter(|e| e["path"] == "/token" && e["grant_type"] == "refresh_token");
        let ok = refresh.clone().filter(|e| e["status"] == 200).count();
        (ok, refresh.count() - ok)
    }

    /// Grants oidc-provider revoked (reuse detection revokes the whole grant).
    fn revoked_grants(&self) -> usize {
        fs::read_to_string(&self.as_stderr)
            .unwrap_or_default()
            .matches("grant.revoked")
            .count()
    }

    /// The `application_name` of the connection that holds an advisory lock (the worker
    /// refreshing), if any; not the migrators' lock (classid/objid: the two halves of
    /// its key, schema.rs MIGRATION_LOCK).
    fn lock_holder(&self) -> Option<String> {
        let out = self.pg.psql(
            "vault",
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.datname = 'vault' \
             AND NOT (l.classid = 1835233325 AND l.objid = 1868658036)",
        );
        (!out.is_empty()).then_some(out)
    }

    fn workers(&mut self, round: &str, args: &[&str]) -> Vec<Run> {
        (0..WORKERS)
            .map(|i| self.spawn(&format!("{round}-w{i:02}"), "vault", args))
            .collect()
    }
}

fn finish(mut run: Run) -> Done {
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        if run.started.elapsed() > RUN_TIMEOUT {
            let _ = run.child.kill();
            panic!(
                "{} did not finish within {RUN_TIMEOUT:?}: {}",
                run.name,
                tail(&run.stderr, 3000)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ended = Instant::now();
    Done {
        name: run.name,
        status,
        stdout: fs::read_to_string(&run.stdout)
            .unwrap_or_default()
            .trim()
            .to_string(),
        stderr: fs::read_to_string(&run.stderr).unwrap_or_default(),
        took: ended - run.started,
        ended,
    }
}

/// Waits for every run, polling all of them (so that `ended` is when each one exited).
fn finish_all(runs: Vec<Run>) -> Vec<Done> {
    let mut pending: Vec<Run> = runs;
    let mut done = Vec::new();
    let started = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for mut r in pending {
            if r.child.try_wait().unwrap().is_some() {
                done.push(finish(r));
            } else if started.elapsed() > RUN_TIMEOUT {
                let _ = r.child.kill();
                panic!(
                    "{} did not finish within {RUN_TIMEOUT:?}: {}",
                    r.name,
                    tail(&r.stderr, 3000)
                );
            } else {
                still.push(r);
            }
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(5));
    }
    done
}

/// The access token is a JWT that has not expired.
fn assert_valid_jwt(token: &str) {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token:.12}…"));
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims["exp"].as_u64().unwrap() > now(),
        "an expired token: {claims}"
    );
}

/// Every worker succeeded with the same valid token; returns it.
fn one_token(done: &[Done]) -> String {
    for d in done {
        assert!(
            d.status.success(),
            "{} failed ({}): {}",
            d.name,
            d.status,
            tail_str(&d.stderr)
        );
    }
    let tokens: BTreeSet<&str> = done.iter().map(|d| d.stdout.as_str()).collect();
    assert_eq!(
        tokens.len(),
        1,
        "the workers printed {} different tokens",
        tokens.len()
    );
    let token = tokens.into_iter().next().unwrap().to_string();
    assert_valid_jwt(&token);
    token
}

fn tail_str(s: &str) -> &str {
    &s[s.len().saturating_sub(3000)..]
}

/// Waits until some worker holds the refresh lock; returns its name.
fn wait_for_holder(f: &Fleet, within: Duration) -> String {
    let t = Instant::now();
    loop {
        if let Some(h) = f.lock_holder() {
            return h;
        }
        assert!(
            t.elapsed() < within,
            "no worker took the refresh lock within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn a_fleet_shares_one_vault() {
    let test = "a_fleet_shares_one_vault";
    let Some(mut f) = Fleet::start(test) else {
        return;
    };
    let t0 = Instant::now();
    let mut figures = Vec::new();

    // One login, on a machine of its own, into the vault.
    let url = f.mcp_url.clone();
    let login = finish(f.spawn("login", "vault", &["login", &url]));
    assert!(login.status.success(), "login: {}", tail_str(&login.stderr));
    assert!(
        f.vault().load(&f.key()).unwrap().is_some(),
        "the login went to the vault"
    );

    // 1. Sixteen machines, one expired credential.
    f.expire();
    let (before, refused_before) = f.refreshes();
    let started = Instant::now();
    let runs = f.workers("r1", &["token", &url]);
    let done = finish_all(runs);
    let wall = started.elapsed();
    let token = one_token(&done);
    let (after, refused) = f.refreshes();
    let waited = done
        .iter()
        .filter(|d| d.stderr.contains("waiting for it"))
        .count();
    figures.push(format!(
        "1. {WORKERS} workers, one expired credential: refreshes at the AS {}, refused {}, \
         grants revoked {}, workers with a valid token {}/{WORKERS} (one token), said they waited {waited}, \
         wall {} ms (token endpoint delay {TOKEN_DELAY_MS} ms)",
        after - before,
        refused - refused_before,
        f.revoked_grants(),
        done.len(),
        wall.as_millis()
    ));
    assert_eq!(after - before, 1, "exactly one refresh at the AS");
    assert_eq!((refused - refused_before, f.revoked_grants()), (0, 0));
    // The MCP server takes the token (through the vault: no refresh, no login).
    let call = finish(f.spawn("call", "vault", &["call", &url, "whoami"]));
    assert!(call.status.success(), "call: {}", tail_str(&call.stderr));
    assert_eq!(f.refreshes().0, after, "the call needed no refresh");
    let stored = f.vault().load(&f.key()).unwrap().unwrap();
    assert_eq!(stored.tokens.access_token.expose(), token);
    // The proxy too takes its token from the vault.
    let input = f.tmp.path().join("initialize.jsonl");
    fs::write(
        &input,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fleet","version":"1"}}}"#
            .to_string()
            + "\n",
    )
    .unwrap();
    let proxy = finish(f.spawn_with_stdin(
        "proxy",
        "vault",
        &["proxy", &url, "--shutdown-grace", "20"],
        Some(&input),
    ));
    assert!(proxy.status.success(), "proxy: {}", tail_str(&proxy.stderr));
    assert!(
        proxy.stdout.contains("\"serverInfo\""),
        "proxy: {}\n{}",
        proxy.stdout,
        tail_str(&proxy.stderr)
    );
    // status, with the vault chosen by the configuration file, says so.
    let status = finish(f.spawn("status", "vault-config", &["status"]));
    assert!(
        status.status.success(),
        "status: {}",
        tail_str(&status.stderr)
    );
    for expected in [
        url.as_str(),
        "Store: PostgreSQL vault postgres://postgres@127.0.0.1:",
        &format!("user {USER}"),
        "chosen by [store] in the configuration file",
    ] {
        assert!(
            status.stdout.contains(expected),
            "status lacks {expected:?}:\n{}",
            status.stdout
        );
    }
    assert!(!status.stdout.contains(&token), "status printed the token");
    assert_eq!(f.refreshes().0, after, "proxy and status needed no refresh");

    // 2. The worker refreshing is killed mid-refresh (its request is at the AS).
    f.expire();
    let (before, refused_before) = f.refreshes();
    let runs = f.workers("r2", &["token", &url]);
    let holder = wait_for_holder(&f, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(TOKEN_DELAY_MS / 3));
    let mut killed = None;
    let mut rest = Vec::new();
    for mut r in runs {
        if r.name == holder {
            r.child.kill().unwrap(); // SIGKILL
            r.child.wait().unwrap();
            killed = Some(Instant::now());
        } else {
            rest.push(r);
        }
    }
    let killed = killed.unwrap_or_else(|| panic!("the holder {holder} is not a worker"));
    let done = finish_all(rest);
    let first_ok = done
        .iter()
        .filter(|d| d.status.success())
        .map(|d| d.ended)
        .min()
        .expect("a worker completed");
    let recovered = first_ok.saturating_duration_since(killed);
    let last = done
        .iter()
        .map(|d| d.ended)
        .max()
        .unwrap()
        .saturating_duration_since(killed);
    one_token(&done);
    let (after, refused) = f.refreshes();
    figures.push(format!(
        "2. the lock holder ({holder}) SIGKILLed {} ms into the AS's {TOKEN_DELAY_MS} ms: the first of \
         the other {} workers had its token {} ms after the kill, the last {} ms; successful refreshes \
         at the AS {}, refused {}, grants revoked {}",
        TOKEN_DELAY_MS / 3,
        done.len(),
        recovered.as_millis(),
        last.as_millis(),
        after - before,
        refused - refused_before,
        f.revoked_grants()
    ));
    assert_eq!(
        (refused - refused_before, f.revoked_grants()),
        (0, 0),
        "no refusal, no revocation"
    );
    assert_eq!(
        after - before,
        1,
        "one successful refresh: the killed one never completed"
    );
    // Within the lease (120 s); in fact at once: the lock died with the holder's
    // connection, so the next worker's own refresh (1.5 s at this AS) is all it took.
    assert!(
        recovered < Duration::from_secs(10),
        "recovered in {recovered:?}"
    );

    // 3. PostgreSQL crashes and restarts while a worker is refreshing.
    f.expire();
    let (before, refused_before) = f.refreshes();
    let runs = f.workers("r3", &["token", &url]);
    let holder = wait_for_holder(&f, Duration::from_secs(20));
    let restart_at = Instant::now();
    let down = f.pg.restart();
    let done = finish_all(runs);
    let last = done
        .iter()
        .map(|d| d.ended)
        .max()
        .unwrap()
        .saturating_duration_since(restart_at);
    let token = one_token(&done);
    let (after, refused) = f.refreshes();
    // The waiters found the holder's lease from before the crash and waited for its
    // result (without the lease they would have redeemed the same refresh token).
    let lease_waiters = done
        .iter()
        .filter(|d| d.stderr.contains("waiting for its lease"))
        .count();
    figures.push(format!(
        "3. PostgreSQL crashed (SIGQUIT) and restarted while {holder} was refreshing: down {} ms; \
         all {WORKERS} workers had the same valid token, the last {} ms after the crash; successful \
         refreshes at the AS {}, refused {}, grants revoked {}; workers that waited for the \
         holder's lease {lease_waiters}",
        down.as_millis(),
        last.as_millis(),
        after - before,
        refused - refused_before,
        f.revoked_grants()
    ));
    assert_eq!(
        (refused - refused_before, f.revoked_grants()),
        (0, 0),
        "no refusal, no revocation"
    );
    assert_eq!(after - before, 1, "one refresh across the restart");
    let stored = f
        .vault()
        .load(&f.key())
        .unwrap()
        .expect("the credential survived the restart");
    assert_eq!(stored.tokens.access_token.expose(), token);

    // 4. Benchmark: a valid token, fetched by 16 workers at once, 8 times each: the vault,
    // then the file store (one shared directory, as on one machine).
    let file_home = f.tmp.path().join("shared-file-store");
    let rec = f.vault().load(&f.key()).unwrap().unwrap();
    mcp_oauth::store::FileStore::new(file_home.clone())
        .save(&f.key(), &rec)
        .unwrap();
    for store in ["vault", "file"] {
        let mut took = Vec::new();
        let started = Instant::now();
        for round in 0..8 {
            let runs: Vec<Run> = (0..WORKERS)
                .map(|i| {
                    let name = format!("bench-{store}-{round}-{i:02}");
                    if store == "vault" {
                        f.spawn(&name, "vault", &["token", &url])
                    } else {
                        // The file store's workers share one directory: one machine.
                        spawn_with_home(&f, &name, &file_home, &url)
                    }
                })
                .collect();
            for d in finish_all(runs) {
                assert!(d.status.success(), "{}: {}", d.name, tail_str(&d.stderr));
                took.push(d.took);
            }
        }
        let wall = started.elapsed();
        took.sort();
        figures.push(format!(
            "4. benchmark, {store}: {} `mcp-oauth token` runs ({WORKERS} at a time): p50 {} ms, p99 {} ms, \
             {:.0} tokens/s",
            took.len(),
            percentile(&took, 0.5).as_millis(),
            percentile(&took, 0.99).as_millis(),
            took.len() as f64 / wall.as_secs_f64()
        ));
    }
    assert_eq!(f.refreshes().0, after, "the benchmark needed no refresh");

    // logout through the vault: revoked at the AS and deleted from the vault.
    let logout = finish(f.spawn("logout", "vault", &["logout", &url]));
    assert!(
        logout.status.success(),
        "logout: {}",
        tail_str(&logout.stderr)
    );
    assert!(
        f.vault().load(&f.key()).unwrap().is_none(),
        "logout left the credential in the vault"
    );

    figures.push(format!("whole test: {:.1} s", t0.elapsed().as_secs_f64()));
    for line in &figures {
        eprintln!("[vault_fleet] {line}");
    }
    let _ = fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("vault-fleet-figures.txt"),
        figures.join("\n"),
    );
}

/// A worker of the file store: `home` is its MCP_OAUTH_HOME.
fn spawn_with_home(f: &Fleet, name: &str, home: &Path, url: &str) -> Run {
    let logs = f.tmp.path().join("logs");
    let (stdout, stderr) = (
        logs.join(format!("{name}.stdout")),
        logs.join(format!("{name}.stderr")),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(["token", url])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("MCP_OAUTH_HOME", home)
        .env("MCP_OAUTH_CONFIG", home.join("none.toml"))
        .env("MCP_OAUTH_STORE", "file")
        .env("NO_PROXY", "127.0.0.1,localhost,::1")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    Run {
        name: name.to_string(),
        child: cmd.spawn().unwrap(),
        stdout,
        stderr,
        started: Instant::now(),
    }
}
