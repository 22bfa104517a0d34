//! What a new user trips over (issue 18), through the real binary against `mcp-oauth
//! demo --serve --port 0` (its browser: `tests/browser.sh`, curl following redirects) or
//! no server at all: a closed stdout, usage errors, `--args` sources, a second `login`,
//! a corrupted store, and terminal escapes in what a server says.
#![cfg(unix)]

use mcp_oauth_testkit::cli::{
    self, REQUIRE_ENV, Sandbox, ServerProcess, have, lines_of, read_all, repo_root, wait_or_kill,
};
use mcp_oauth_testkit::fault_server::{SilentServer, closed_port};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-oauth");
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A private home (store, configuration) for one test.
struct Home {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
}

impl Home {
    fn new(name: &str) -> Home {
        let dir = cli::temp_dir(&format!("mcp-oauth-new-user-{name}."));
        let sandbox = Sandbox {
            home: dir.path().join("store"),
            config: dir.path().join("config.toml"),
            browser: repo_root().join("tests/browser.sh"),
            browser_log: dir.path().join("browser.log"),
        };
        Home { dir, sandbox }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> PathBuf {
        self.sandbox.home.clone()
    }

    fn browser_log(&self) -> PathBuf {
        self.sandbox.browser_log.clone()
    }

    /// `mcp-oauth <args>` with this home, the headless browser, no proxies, no colours,
    /// no desktop.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.sandbox.command(BIN, args);
        c.env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SSH_CONNECTION")
            .env_remove("SSH_TTY")
            .env("HOME", self.path());
        c
    }

    /// Runs to the end with stdin from `input`, stdout and stderr captured.
    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Out {
        let mut cmd = self.cmd(args);
        run(&mut cmd, input)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, b"")
    }

    fn browser_opens(&self) -> usize {
        self.sandbox.browser_opens()
    }
}

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command, input: &[u8]) -> Out {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mcp-oauth");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = read_all(child.stdout.take().expect("stdout"));
    let err = read_all(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child, STEP_TIMEOUT);
    Out {
        status,
        stdout: out.recv_timeout(Duration::from_secs(5)).unwrap_or_default(),
        stderr: err.recv_timeout(Duration::from_secs(5)).unwrap_or_default(),
    }
}

fn wait_for(child: &mut Child, timeout: Duration) -> ExitStatus {
    wait_or_kill(child, timeout)
        .unwrap_or_else(|| panic!("mcp-oauth did not finish within {timeout:?}"))
}

/// `mcp-oauth demo --serve --port 0`, killed when dropped.
struct Demo {
    child: Child,
    mcp_url: String,
    issuer: String,
}

impl Demo {
    /// `None` (after a notice) when curl, which `tests/browser.sh` needs, is missing.
    fn start(home: &Home, test: &str) -> Option<Demo> {
        if !have("curl") {
            assert!(
                std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
                "curl (for tests/browser.sh) is missing but {REQUIRE_ENV}=1"
            );
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: curl (tests/browser.sh) is not on PATH"
            );
            return None;
        }
        let mut child = home
            .cmd(&["demo", "--serve", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mcp-oauth demo --serve");
        // Drained to the end, so that the server never blocks on its stdout.
        let rx = lines_of(child.stdout.take().expect("stdout"));
        let (mut mcp_url, mut issuer) = (String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let value = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            };
            if let Some(u) = value("MCP server:") {
                mcp_url = u;
            } else if let Some(u) = value("Authorization server:") {
                issuer = u;
            } else if line == "Requests, as they arrive:" {
                break;
            }
        }
        assert!(
            mcp_url.starts_with("http://127.0.0.1:") && issuer.starts_with("http://127.0.0.1:"),
            "demo --serve printed no banner"
        );
        Some(Demo {
            child,
            mcp_url,
            issuer,
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `args` with stdout a pipe whose read end is already closed (`| head -0`, with
/// no race: every write fails with EPIPE).
fn run_with_closed_stdout(home: &Home, args: &[&str]) -> Out {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = home
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mcp-oauth");
    let err = read_all(child.stderr.take().expect("stderr"));
    let status = wait_for(&mut child, STEP_TIMEOUT);
    Out {
        status,
        stdout: String::new(),
        stderr: err.recv_timeout(Duration::from_secs(5)).unwrap_or_default(),
    }
}

fn stored_servers(home: &Home) -> Vec<Value> {
    let o = home.run(&["status", "--json"]);
    assert!(o.status.success(), "{o}");
    serde_json::from_str::<Value>(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {o}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

// ------------------------------------------------------------ 1. a closed stdout

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let home = Home::new("pipe");
    let Some(demo) = Demo::start(&home, "a_closed_stdout_ends_every_command_quietly") else {
        return;
    };
    let url = demo.mcp_url.as_str();
    let quiet = |args: &[&str]| {
        let o = run_with_closed_stdout(&home, args);
        assert!(
            o.code() != Some(101) && !o.stderr.contains("panicked"),
            "mcp-oauth {args:?} with a closed stdout: {o}"
        );
        assert!(o.status.success(), "mcp-oauth {args:?}: {o}");
        o
    };
    // `login | …` has stored the tokens before it printed anything.
    quiet(&["login", url]);
    let stored = stored_servers(&home);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["server_url"], url);
    quiet(&["status"]);
    quiet(&["status", "--json"]);
    quiet(&["token", url]);
    quiet(&["call", url]);
    quiet(&["call", url, "whoami"]);
    quiet(&["doctor", url]);
    quiet(&["completions", "bash"]);
    quiet(&["logout", url]);
    assert!(stored_servers(&home).is_empty(), "logout did its work");
    quiet(&["logout", url]);
    assert_eq!(home.browser_opens(), 1);
    let _ = demo.issuer;
}

// ------------------------------------------- 7. usage errors, in the user's words

#[test]
fn a_bad_server_url_is_a_usage_error_in_words() {
    let home = Home::new("usage");
    let rule =
        "notaurl is not a URL: an MCP server URL starts with https:// (or http:// for loopback)";
    for args in [
        &["login", "notaurl"][..],
        &["token", "notaurl"],
        &["call", "notaurl", "echo"],
        &["doctor", "notaurl"],
        &["status", "notaurl"],
        &["logout", "notaurl"],
        &["proxy", "notaurl"],
    ] {
        let o = home.run(args);
        assert_eq!(o.code(), Some(2), "mcp-oauth {args:?}: {o}");
        assert!(o.stderr.contains(rule), "mcp-oauth {args:?}: {o}");
        assert!(
            !o.stderr.contains("builder error") && !o.stderr.contains("relative URL"),
            "mcp-oauth {args:?}: {o}"
        );
    }
    let o = home.run(&["login", "example.com/mcp"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr.contains("(did you mean https://example.com/mcp?)"),
        "{o}"
    );
    let o = home.run(&["login", "ftp://example.com/mcp"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("its scheme is ftp"), "{o}");
}

#[test]
fn an_empty_profile_is_a_usage_error() {
    let home = Home::new("profile");
    // Before: accepted as a credential of its own, "(profile )", whose suggested next
    // command left the profile out.
    for args in [
        &["token", "http://127.0.0.1:9/mcp", "--profile", ""][..],
        &["login", "http://127.0.0.1:9/mcp", "--profile", " "],
        &["status", "--profile", ""],
        &["logout", "--all", "--profile", ""],
    ] {
        let o = home.run(args);
        assert_eq!(o.code(), Some(2), "mcp-oauth {args:?}: {o}");
        assert!(
            o.stderr
                .contains("--profile (or MCP_OAUTH_PROFILE) is empty: give the profile a name"),
            "mcp-oauth {args:?}: {o}"
        );
    }
}

#[test]
fn bad_tool_arguments_are_a_usage_error() {
    let home = Home::new("args");
    // An unroutable server: the arguments are refused before any request.
    let url = "http://127.0.0.1:9/mcp";
    let o = home.run(&["call", url, "echo", "--args", "nope"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr.contains("--args nope is not JSON (") && o.stderr.contains("a JSON object"),
        "{o}"
    );
    let o = home.run(&["call", url, "echo", "--args", "[1]"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr
            .contains("--args [1] is JSON but not an object (an array)"),
        "{o}"
    );
    assert!(!o.stderr.contains("could not connect"), "{o}");
}

#[test]
fn a_refused_connection_is_one_line() {
    let home = Home::new("refused");
    let url = "http://127.0.0.1:9/mcp";
    let line = "error: could not connect to http://127.0.0.1:9/mcp: connection refused\n";
    for args in [&["login", url][..], &["call", url], &["call", url, "echo"]] {
        let o = home.run(args);
        assert_eq!(o.code(), Some(1), "mcp-oauth {args:?}: {o}");
        assert!(o.stderr.starts_with(line), "mcp-oauth {args:?}: {o}");
        assert!(
            o.stderr
                .contains("next: check the URL, and that the server is running"),
            "mcp-oauth {args:?}: {o}"
        );
        assert_eq!(o.stderr.lines().count(), 2, "mcp-oauth {args:?}: {o}");
    }
    // The HTTP client's detail is kept for -v.
    let o = home.run(&["-v", "call", url]);
    assert!(o.stderr.contains("tcp connect error"), "{o}");
}

#[test]
fn traces_say_a_challenge_in_words() {
    let home = Home::new("trace");
    let Some(demo) = Demo::start(&home, "traces_say_a_challenge_in_words") else {
        return;
    };
    let o = home.run(&["-vv", "login", &demo.mcp_url]);
    assert!(o.status.success(), "{o}");
    assert!(
        o.stderr
            .contains(r#"parsed challenge: resource_metadata=\"http://127.0.0.1:"#),
        "{o}"
    );
    assert!(!o.stderr.contains("BearerChallenge"), "{o}");
}

// ------------------------------------------------- 11. --args inline, @file, stdin

#[test]
fn tool_arguments_inline_from_a_file_or_stdin() {
    let home = Home::new("args-sources");
    let Some(demo) = Demo::start(&home, "tool_arguments_inline_from_a_file_or_stdin") else {
        return;
    };
    let url = demo.mcp_url.as_str();
    let o = home.run(&["call", url, "echo", "--args", r#"{"text":"inline"}"#]);
    assert!(o.status.success(), "{o}");
    assert_eq!(o.stdout.trim(), "inline");

    let file = home.path().join("args.json");
    std::fs::write(&file, r#"{"text":"from a file"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    let o = home.run(&["call", url, "echo", "--args", &at_file]);
    assert!(o.status.success(), "{o}");
    assert_eq!(o.stdout.trim(), "from a file");

    let o = home.run_with_input(
        &["call", url, "echo", "--args", "-"],
        br#"{"text":"from stdin"}"#,
    );
    assert!(o.status.success(), "{o}");
    assert_eq!(o.stdout.trim(), "from stdin");

    // Clear errors, as usage errors (exit 2), before any request.
    let missing = home.path().join("missing.json");
    let at_missing = format!("@{}", missing.display());
    let o = home.run(&["call", url, "echo", "--args", &at_missing]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "--args {at_missing}: there is no file {}",
            missing.display()
        )),
        "{o}"
    );
    std::fs::write(&file, "text: hi").unwrap();
    let o = home.run(&["call", url, "echo", "--args", &at_file]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "--args {at_file} (the file {}) is not JSON (",
            file.display()
        )),
        "{o}"
    );
    let o = home.run_with_input(&["call", url, "echo", "--args", "-"], b"[\"hi\"]");
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr
            .contains("--args - (standard input) is JSON but not an object (an array)"),
        "{o}"
    );
    let o = home.run_with_input(&["call", url, "echo", "--args", "-"], b"");
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("standard input was empty"), "{o}");
    assert_eq!(home.browser_opens(), 1, "one login for all the calls");
}

// ------------------------------------------------- 8. login when logged in already

#[test]
fn a_second_login_says_so_and_force_authorizes_again() {
    let home = Home::new("relogin");
    let Some(demo) = Demo::start(&home, "a_second_login_says_so_and_force_authorizes_again") else {
        return;
    };
    let url = demo.mcp_url.as_str();
    let o = home.run(&["login", url]);
    assert!(o.status.success(), "{o}");
    assert_eq!(home.browser_opens(), 1);

    let o = home.run(&["login", url]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stdout.starts_with(&format!(
            "Already logged in to {url} (a valid credential is stored; nothing was done)\n"
        )),
        "{o}"
    );
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("  expires") && l.contains(" UTC)")),
        "the expiry is named: {o}"
    );
    assert!(
        o.stderr.contains(&format!(
            "to authorize again anyway: mcp-oauth login --force {url}"
        )),
        "{o}"
    );
    assert_eq!(home.browser_opens(), 1, "no second browser: {o}");

    let o = home.run(&["login", url, "--json"]);
    assert!(o.status.success(), "{o}");
    let v: Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(v["already_logged_in"], true, "{v}");
    assert!(v["expires_at"].is_u64(), "{v}");

    // Scopes that the stored credential lacks: a real login.
    let o = home.run(&["login", url, "--scope", "mcp offline_access other"]);
    assert_eq!(home.browser_opens(), 2, "{o}");

    let o = home.run(&["login", url, "--force"]);
    assert!(o.status.success(), "{o}");
    assert!(
        o.stdout.starts_with(&format!("Logged in to {url}\n")),
        "{o}"
    );
    assert_eq!(home.browser_opens(), 3, "--force authorizes again: {o}");
}

// ------------------------------------------------------- 2. a corrupted store

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files
}

/// Runs a command as printed by mcp-oauth (`mcp-oauth logout URL`, `rm PATH`).
fn run_advice(home: &Home, advice: &str) -> Out {
    let words: Vec<&str> = advice.split_whitespace().collect();
    match words.as_slice() {
        ["mcp-oauth", rest @ ..] => home.run(rest),
        ["rm", path] => {
            std::fs::remove_file(path).expect("rm");
            home.run(&["status"])
        }
        _ => panic!("unexpected advice {advice:?}"),
    }
}

#[test]
fn a_corrupted_store_is_listed_and_repaired_by_the_advice() {
    let home = Home::new("corrupt");
    let Some(demo) = Demo::start(
        &home,
        "a_corrupted_store_is_listed_and_repaired_by_the_advice",
    ) else {
        return;
    };
    let url = demo.mcp_url.as_str();
    let creds = home.store().join("credentials");
    let clients = home.store().join("clients");
    assert!(home.run(&["login", url]).status.success());
    let [cred] = &json_files(&creds)[..] else {
        panic!("one credential file")
    };

    // Cut short (as by a full disk): the start still says whose it is.
    let text = std::fs::read(cred).unwrap();
    std::fs::write(cred, &text[..150]).unwrap();
    let o = home.run(&["status"]);
    assert!(o.status.success(), "{o}");
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with(url))
        .unwrap_or_else(|| panic!("{o}"));
    assert!(row.contains("UNREADABLE"), "{o}");
    assert!(o.stdout.contains(&cred.display().to_string()), "{o}");
    assert!(o.stdout.contains("it is truncated"), "{o}");
    assert!(
        o.stdout.contains(&format!("fix: mcp-oauth logout {url}\n")),
        "{o}"
    );
    assert!(
        !o.stderr.contains("WARN"),
        "listed, not hidden in a warning: {o}"
    );
    let listed = stored_servers(&home);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let broken = &listed[0]["unreadable"];
    assert_eq!(listed[0]["server_url"], url);
    assert_eq!(broken["path"], cred.display().to_string());
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .starts_with("it is truncated")
    );
    assert_eq!(broken["fix"], format!("mcp-oauth logout {url}"));

    // `token` gives the same command, and the command repairs the store.
    let o = home.run(&["token", url]);
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stderr
            .contains(&format!("run `mcp-oauth logout {url}` to remove it")),
        "{o}"
    );
    let o = run_advice(&home, broken["fix"].as_str().unwrap());
    assert!(o.status.success(), "{o}");
    assert!(
        o.stdout
            .starts_with("Deleted the unreadable credential file of "),
        "{o}"
    );
    assert!(!cred.exists(), "{o}");
    assert!(stored_servers(&home).is_empty());

    // Garbage that does not say whose it is: still listed, with a command that works,
    // and `logout URL` finds it where URL's credential is kept.
    std::fs::write(cred, "\u{0}\u{1}garbage").unwrap();
    let listed = stored_servers(&home);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0]["server_url"].is_null(), "{listed:?}");
    assert_eq!(
        listed[0]["unreadable"]["fix"],
        format!("rm {}", cred.display())
    );
    let o = home.run(&["logout", url]);
    assert!(o.status.success() && !cred.exists(), "{o}");

    // A corrupt client registration: login works (a new client replaces it), and the
    // warning names the file.
    let [client] = &json_files(&clients)[..] else {
        panic!("one client registration")
    };
    std::fs::write(client, "{").unwrap();
    let o = home.run(&["login", url]);
    assert!(o.status.success(), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "ignoring the unreadable client registration {}",
            client.display()
        )),
        "{o}"
    );
    let reg: Value = serde_json::from_slice(&std::fs::read(client).unwrap()).expect("replaced");
    assert_eq!(reg["registration"]["issuer"], demo.issuer.as_str());

    // `logout --forget-client`: the credential and the server's registration go.
    let o = home.run(&["logout", url, "--forget-client"]);
    assert!(o.status.success(), "{o}");
    assert!(
        o.stdout.contains(&format!(
            "at {}; the next login registers a new client.",
            demo.issuer
        )),
        "{o}"
    );
    assert!(
        json_files(&clients).is_empty() && json_files(&creds).is_empty(),
        "{o}"
    );
    let o = home.run(&["logout", url, "--forget-client"]);
    assert!(
        o.stdout
            .contains("(and no client registration of it is stored); nothing to do"),
        "{o}"
    );
}

// ------------------------------------------------------- 3. one server, one key

#[test]
fn one_server_one_key_however_its_url_is_spelled() {
    use mcp_oauth::store::{CredentialKey, CredentialStore, FileStore};
    let home = Home::new("one-key");
    let Some(demo) = Demo::start(&home, "one_server_one_key_however_its_url_is_spelled") else {
        return;
    };
    let url = demo.mcp_url.as_str();
    let shouting = url.replacen("http://", "HTTP://", 1);
    let o = home.run(&["login", &shouting]);
    assert!(o.status.success(), "{o}");
    let token = |u: &str| {
        let o = home.run(&["token", u]);
        assert!(o.status.success(), "mcp-oauth token {u}: {o}");
        o.stdout
    };
    let first = token(url);
    assert_eq!(token(&format!("{url}#tools")), first);
    let o = home.run(&["login", &format!("{url}#tools")]);
    assert!(
        o.stdout.starts_with("Already logged in to "),
        "a fragment is the same server: {o}"
    );
    assert_eq!(home.browser_opens(), 1);
    let listed = stored_servers(&home);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["server_url"], url, "the canonical URL");
    // The query is part of the server's identity.
    let o = home.run(&["token", &format!("{url}?tenant=a")]);
    assert_eq!(o.code(), Some(3), "{o}");

    // A credential an earlier version stored under the URL as typed is still found, also
    // when typed another way, and moves to the canonical key.
    let store = FileStore::new(home.store());
    let (key, mut record) = store.list().unwrap().pop().unwrap();
    assert!(store.remove(&key).unwrap());
    let legacy = CredentialKey {
        server_url: shouting.clone(),
        profile: None,
    };
    record.server_url = shouting.clone();
    store.save(&legacy, &record).unwrap();
    assert_eq!(token(url), first, "found under the URL as typed before");
    let keys: Vec<_> = store.list().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![key], "moved to the canonical key");

    // The server names itself 127.0.0.1: asked as localhost, the error says which URL to
    // use.
    let localhost = url.replacen("127.0.0.1", "localhost", 1);
    let o = home.run(&["login", &localhost]);
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "only the loopback host is spelled differently: use the URL the server names itself by, {url}"
        )),
        "{o}"
    );
}

// ------------------------ 4. servers that are not protected, or not MCP servers at all

/// The MCP Python SDK's FastMCP without any auth (tests/python/open_mcp_server.py).
fn open_mcp_server(dir: &Path, test: &str) -> Option<ServerProcess> {
    let deps = cli::deps(test, "the tests against an open MCP server")?;
    let mut cmd = Command::new(&deps.python);
    cmd.arg(repo_root().join("tests/python/open_mcp_server.py"))
        .env("MCP_EXIT_ON_STDIN_EOF", "1");
    Some(ServerProcess::start("open-mcp-server", cmd, dir))
}

/// A static web site: `python -m http.server` in a directory with an index.html. The
/// process and its URL.
struct StaticSite {
    child: Child,
    url: String,
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn static_site(dir: &Path, test: &str) -> Option<StaticSite> {
    let deps = cli::deps(test, "the tests against a static web site")?;
    let root = dir.join("site");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!DOCTYPE html>\n<html><head><title>A web site</title></head><body>Hello</body></html>\n",
    )
    .unwrap();
    let mut child = Command::new(&deps.python)
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python -m http.server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "Serving HTTP on 127.0.0.1 port 43210 (http://127.0.0.1:43210/) ..."
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .unwrap_or_else(|| panic!("http.server said {line:?}"));
    Some(StaticSite {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    })
}

#[test]
fn a_server_that_asks_for_no_authorization_is_used_without_it() {
    let home = Home::new("open");
    let test = "a_server_that_asks_for_no_authorization_is_used_without_it";
    let Some(server) = open_mcp_server(home.path(), test) else {
        return;
    };
    let url = server.field("url");
    let o = home.run(&["call", &url]);
    assert!(o.status.success(), "{o}");
    assert!(o.stdout.starts_with("echo\t"), "{o}");
    let o = home.run(&["call", &url, "echo", "--args", r#"{"text":"no token"}"#]);
    assert!(o.status.success(), "{o}");
    assert_eq!(o.stdout.trim(), "no token");

    let said = "did not ask for authorization (it answered the MCP request without a token)";
    let o = home.run(&["login", &url]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stderr.contains(&format!("{url} {said}")), "{o}");
    assert!(o.stderr.contains("nothing to log in to"), "{o}");
    assert!(
        !o.stderr.contains("RFC 7591") && !o.stderr.contains("register"),
        "{o}"
    );
    assert!(stored_servers(&home).is_empty());
    assert_eq!(home.browser_opens(), 0);

    let o = home.run(&["doctor", &url]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains(said), "{o}");
    assert!(!o.stdout.contains("FAIL"), "{o}");
}

#[test]
fn a_web_page_is_not_taken_for_an_mcp_server() {
    let home = Home::new("html");
    let Some(site) = static_site(home.path(), "a_web_page_is_not_taken_for_an_mcp_server") else {
        return;
    };
    let url = site.url.as_str();
    let said = format!("{url} does not answer as an MCP server (it returned an HTML page");
    for args in [&["login", url][..], &["call", url], &["call", url, "echo"]] {
        let o = home.run(args);
        assert_eq!(o.code(), Some(1), "mcp-oauth {args:?}: {o}");
        assert!(
            o.stderr.starts_with(&format!("error: {said}")),
            "mcp-oauth {args:?}: {o}"
        );
        assert!(
            !o.stderr.contains("DOCTYPE") && !o.stderr.contains("/register"),
            "mcp-oauth {args:?}: {o}"
        );
    }
    let o = home.run(&["doctor", url]);
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stdout
            .contains("does not answer as an MCP server (it returned an HTML page"),
        "{o}"
    );
    assert!(o.stderr.starts_with(&format!("error: {said}")), "{o}");
    assert!(!o.stdout.contains("protected resource metadata"), "{o}");
    assert_eq!(home.browser_opens(), 0);
}

// ------------------------------------- 5. progress while waiting, and the true limits

#[test]
fn a_silent_server_gets_the_limit_the_error_states() {
    let home = Home::new("limits");
    // A server that accepts connections and never answers.
    let hanging = SilentServer::start();
    let url = hanging.url("/mcp");
    let started = Instant::now();
    let mut cmd = home.cmd(&["call", &url]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = read_all(child.stderr.take().unwrap());
    let status = wait_for(&mut child, Duration::from_secs(120));
    let elapsed = started.elapsed().as_secs();
    let stderr = err.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let secs: u64 = stderr
        .split(" within ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stated limit: {stderr}"));
    assert!(
        elapsed >= secs && elapsed <= secs + 5,
        "the error says {secs} s, the wait was {elapsed} s: {stderr}"
    );
    // Not a terminal: no spinner, no progress lines.
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
}

/// `mcp-oauth <args>` with stderr (and stdin) on a pseudo-terminal and stdout into a file,
/// as in `mcp-oauth … > out.txt` typed at a terminal.
fn on_a_terminal(home: &Home, args: &[&str], stdout: &Path) -> expectrl::session::OsSession {
    let like = home.cmd(&[]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" >\"$OUT\"")
        .arg(like.get_program())
        .args(args)
        .env("OUT", stdout);
    for (k, v) in like.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    // A terminal as users have it: colours allowed.
    cmd.env_remove("NO_COLOR").env("TERM", "xterm");
    let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(10)));
    session
}

#[test]
fn waits_on_the_network_show_progress_on_a_terminal_only() {
    use expectrl::{Expect, Regex};
    let home = Home::new("spinner");
    // A server that accepts connections and never answers.
    let hanging = SilentServer::start();
    let url = hanging.url("/mcp");
    let out = home.path().join("stdout.txt");
    // `call`: the MCP request, with the limit the error will state.
    let mut s = on_a_terminal(&home, &["call", &url], &out);
    let seen = s
        .expect(Regex(r"Waiting for [^\r]* \(2s[^\r]*gives up after 60 s"))
        .unwrap_or_else(|e| panic!("no progress line on the terminal: {e}"));
    let line = String::from_utf8_lossy(seen.as_bytes()).into_owned();
    let host = url.trim_start_matches("http://").trim_end_matches("/mcp");
    assert!(
        line.contains(&format!("the MCP server at {host}")),
        "{line:?}"
    );
    // It moves: the seconds count up.
    s.expect(Regex(r"\(3s")).expect("the spinner moves on");
    drop(s);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap_or_default(),
        "",
        "nothing on stdout"
    );

    // `login`: the probe.
    let mut s = on_a_terminal(&home, &["login", &url], &out);
    s.expect(Regex(r"\(2s[^\r]*gives up after 15 s"))
        .expect("progress while login asks the server");
    drop(s);
    assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "");
}

// --------------------------------------- 6. a browser that cannot be started

#[test]
fn a_browser_that_cannot_start_leaves_the_url_and_the_login_waiting() {
    let home = Home::new("no-opener");
    let Some(demo) = Demo::start(
        &home,
        "a_browser_that_cannot_start_leaves_the_url_and_the_login_waiting",
    ) else {
        return;
    };
    let mut cmd = home.cmd(&["login", &demo.mcp_url]);
    cmd.env("DISPLAY", ":0")
        .env("BROWSER", home.path().join("no-such-browser"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = read_all(child.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The user's view: what went wrong, then the URL on a line of its own.
    let mut said = Vec::new();
    let auth_url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no URL shown: {said:#?}"));
        said.push(line.clone());
        if let Some(u) = line.trim().strip_prefix(demo.issuer.as_str()) {
            break format!("{}{u}", demo.issuer);
        }
    };
    assert!(
        said.iter()
            .any(|l| l.starts_with("Could not open a browser (") && l.contains("no-such-browser")),
        "{said:#?}"
    );
    assert!(
        said.last().unwrap().starts_with("  http://"),
        "the URL alone on its line: {said:#?}"
    );
    thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting: {said:#?}"
    );
    // The user opens it by hand (the headless follower, in the foreground).
    let follow = Command::new(repo_root().join("tests/browser.sh"))
        .arg(&auth_url)
        .env("BROWSER_FOREGROUND", "1")
        .env("BROWSER_LOG", home.browser_log())
        .env("NO_PROXY", "127.0.0.1,localhost,::1")
        .status()
        .unwrap();
    assert!(follow.success());
    let status = wait_for(&mut child, STEP_TIMEOUT);
    let stdout = out.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{stdout}\n{said:#?}\n{rest:#?}");
    assert!(stdout.starts_with("Logged in to "), "{stdout}");
    let all = said
        .iter()
        .chain(&rest)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !all.contains(" WARN "),
        "said plainly, not as a log line: {all}"
    );
    assert_eq!(all.matches(&auth_url).count(), 1, "the URL once: {all}");
}

// ------------------------------------------------------------- 9. names

#[test]
fn a_server_named_in_the_configuration_is_used_by_its_name() {
    let home = Home::new("names");
    let Some(demo) = Demo::start(
        &home,
        "a_server_named_in_the_configuration_is_used_by_its_name",
    ) else {
        return;
    };
    let url = demo.mcp_url.as_str();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "# existing tables stay valid\n[servers.\"https://other.example/mcp\"]\nscopes = \"a\"\n\n\
             [servers.demo]\nurl = \"{url}\"\nscopes = [\"mcp\", \"offline_access\"]\n"
        ),
    )
    .unwrap();
    let o = home.run(&["login", "demo"]);
    assert!(o.status.success(), "{o}");
    assert!(o.stdout.starts_with(&format!("Logged in to {url}")), "{o}");
    let o = home.run(&["token", "demo"]);
    assert!(o.status.success(), "{o}");
    let o = home.run(&["call", "demo", "echo", "--args", r#"{"text":"by name"}"#]);
    assert!(o.status.success(), "{o}");
    assert_eq!(o.stdout.trim(), "by name");
    let o = home.run(&["doctor", "demo"]);
    assert!(o.status.success(), "{o}");
    assert!(
        o.stdout.starts_with(&format!("mcp-oauth doctor {url}")),
        "{o}"
    );

    // status shows the name, and takes it.
    let o = home.run(&["status"]);
    assert!(
        o.stdout.lines().next().unwrap().starts_with("NAME  SERVER"),
        "{o}"
    );
    assert!(o.stdout.contains(&format!("\ndemo  {url}")), "{o}");
    let v: Value = serde_json::from_str(&home.run(&["status", "demo", "--json"]).stdout).unwrap();
    assert_eq!(v[0]["name"], "demo", "{v}");
    assert_eq!(v[0]["server_url"], url, "{v}");

    // proxy, then logout, by name.
    let mut proxy = home
        .cmd(&["proxy", "demo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reply = exchange(&mut proxy, &tools_list_session());
    assert!(reply.contains("\"echo\""), "{reply}");
    let o = home.run(&["logout", "demo"]);
    assert!(o.status.success(), "{o}");
    assert!(o.stdout.starts_with(&format!("Logged out of {url}")), "{o}");
    assert!(stored_servers(&home).is_empty());

    // An unknown name: a usage error that lists the known ones.
    for args in [
        &["login", "dmeo"][..],
        &["token", "dmeo"],
        &["proxy", "dmeo"],
        &["status", "dmeo"],
    ] {
        let o = home.run(args);
        assert_eq!(o.code(), Some(2), "mcp-oauth {args:?}: {o}");
        assert!(
            o.stderr
                .contains("no server is named dmeo in the configuration file")
                && o.stderr.contains("(names: demo)"),
            "mcp-oauth {args:?}: {o}"
        );
    }
    assert_eq!(home.browser_opens(), 1);
}

/// initialize, initialized, tools/list, as a host sends them on the proxy's stdin.
fn tools_list_session() -> String {
    [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ]
    .join("\n")
        + "\n"
}

/// Writes `input` to the proxy, waits for the reply to id 2, closes its stdin and waits
/// for it to end. The reply line.
fn exchange(proxy: &mut Child, input: &str) -> String {
    let mut stdin = proxy.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = proxy.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(r#""id":2"#) {
                let _ = tx.send(line);
            }
        }
    });
    let err = read_all(proxy.stderr.take().unwrap());
    let reply = rx.recv_timeout(STEP_TIMEOUT);
    drop(stdin);
    let status = wait_for(proxy, STEP_TIMEOUT);
    let stderr = err.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let reply = reply.unwrap_or_else(|_| panic!("no tools/list reply; stderr:\n{stderr}"));
    assert!(status.success(), "{stderr}");
    reply
}

// --------------------------------------------------- 10. coming from mcp-remote

#[test]
fn mcp_remote_arguments_are_understood_or_translated() {
    let home = Home::new("mcp-remote");
    let Some(demo) = Demo::start(&home, "mcp_remote_arguments_are_understood_or_translated") else {
        return;
    };
    let url = demo.mcp_url.as_str();
    // A free port for the callback, as `mcp-remote URL 9696` names one.
    let port = closed_port().to_string();
    let mut proxy = home
        .cmd(&[
            "proxy",
            url,
            &port,
            "--allow-http",
            "--debug",
            "--header",
            "X-Trace: from-mcp-remote",
            "--host",
            "127.0.0.1",
            "--transport",
            "http-first",
            "--enable-proxy",
            "--silent",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reply = exchange(&mut proxy, &tools_list_session());
    assert!(reply.contains("\"echo\""), "{reply}");
    let log = std::fs::read_to_string(home.browser_log()).unwrap();
    assert!(
        log.contains(&format!("redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2F")),
        "the callback port: {log}"
    );

    // What has no equivalent, or would put a secret on the command line, is refused
    // with what to use instead.
    let o = home.run(&["proxy", url, "--ignore-tool", "delete*"]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("--ignore-tool"), "{o}");
    let o = home.run(&[
        "proxy",
        url,
        "--static-oauth-client-info",
        r#"{"client_id":"my-app","client_secret":"s3cr3t-value"}"#,
    ]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(
        o.stderr
            .contains("--client-id my-app --client-secret-env VAR"),
        "{o}"
    );
    assert!(
        !o.stderr.contains("s3cr3t-value"),
        "the secret is not repeated: {o}"
    );
    let o = home.run(&[
        "proxy",
        url,
        "--static-oauth-client-metadata",
        r#"{"scope":"a b"}"#,
    ]);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("--scope"), "{o}");

    // --allow-http and allow_http = true are accepted everywhere a URL is.
    std::fs::write(
        home.path().join("config.toml"),
        format!("[servers.\"{url}\"]\nallow_http = true\n"),
    )
    .unwrap();
    let o = home.run(&["token", url, "--allow-http"]);
    assert!(o.status.success(), "{o}");
}
