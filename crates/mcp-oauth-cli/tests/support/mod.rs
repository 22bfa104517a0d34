//! What the tests against real third-party servers share (`real_servers.rs`,
//! `commands.rs`, `proxy_interop.rs`): finding the dependencies `scripts/bootstrap`
//! installed, and starting a server process that prints one JSON "ready" line.
//!
//! The dependencies are named by `.deps/test-deps.json`; `scripts/test` runs the tests
//! with `MCP_OAUTH_TEST_DEPS=<abs path of .deps>` and `MCP_OAUTH_REQUIRE_REAL=1`. Without
//! `MCP_OAUTH_TEST_DEPS` a test prints a loud skip notice and passes, unless
//! `MCP_OAUTH_REQUIRE_REAL=1`.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use serde_json::Value;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DEPS_ENV: &str = "MCP_OAUTH_TEST_DEPS";
pub const REQUIRE_ENV: &str = "MCP_OAUTH_REQUIRE_REAL";
/// Time a server has to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Paths from `.deps/test-deps.json` (written by scripts/bootstrap).
pub struct Deps {
    /// The repository the dependencies were installed for.
    pub root: PathBuf,
    pub node: PathBuf,
    /// The venv with the MCP Python SDK 1.x (the 2025 wires).
    pub python: PathBuf,
    /// The venv with the MCP Python SDK 2.x (2026-07-28 beside the 2025 wire).
    pub python_modern: PathBuf,
    pub oidc_as: PathBuf,
    pub mcp_server: PathBuf,
    pub browser: PathBuf,
    /// The venv with PyPI `fastmcp` (the FastMCP framework 4.x).
    pub python_fastmcp: PathBuf,
    /// tests/python/fastmcp_server.py: the seed report's server as FastMCP users write it.
    pub fastmcp_server: PathBuf,
}

/// The dependencies, or `None` (after a loud notice) when they are not configured and
/// skipping is allowed. `test` names the test, `what` says what would not run.
pub fn deps(test: &str, what: &str) -> Option<Deps> {
    let dir = match std::env::var_os(DEPS_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
                panic!(
                    "{DEPS_ENV} is not set but {REQUIRE_ENV}=1: {test} must not be skipped. Run \
                     scripts/test (or scripts/bootstrap, then set {DEPS_ENV}=<repo>/.deps)."
                );
            }
            // Written to the real stderr, not eprintln!, so that libtest's output capture
            // does not hide it.
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\nSKIPPED {test}: {DEPS_ENV} is not set, so {what} did NOT run.\nRun \
                 scripts/test (or scripts/bootstrap and {DEPS_ENV}=<repo>/.deps cargo test) to \
                 run it.\n{bar}\n"
            );
            return None;
        }
    };
    let manifest = dir.join("test-deps.json");
    let text = fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "{DEPS_ENV}={} but {} is unreadable ({e}); run scripts/bootstrap",
            dir.display(),
            manifest.display()
        )
    });
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", manifest.display()));
    let path = |k: &str| {
        let p = PathBuf::from(
            v[k].as_str()
                .unwrap_or_else(|| panic!("{} has no \"{k}\"", manifest.display())),
        );
        assert!(
            p.exists(),
            "{} (\"{k}\" in {}) does not exist; run scripts/bootstrap",
            p.display(),
            manifest.display()
        );
        p
    };
    Some(Deps {
        root: path("root"),
        node: path("node"),
        python: path("python"),
        python_modern: path("python_modern"),
        oidc_as: path("oidc_as"),
        mcp_server: path("mcp_server"),
        browser: path("browser"),
        python_fastmcp: path("python_fastmcp"),
        fastmcp_server: path("fastmcp_server"),
    })
}

/// No proxy from the environment: all test traffic is loopback.
pub fn clean_env(cmd: &mut Command) {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost,::1");
}

/// A server process, killed when dropped.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    /// Held open: the server exits when it is closed (…_EXIT_ON_STDIN_EOF=1).
    _stdin: Option<ChildStdin>,
    /// The JSON line the server printed once ready.
    pub ready: Value,
    pub stderr_path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd` (stderr to `<logdir>/<name>.stderr`) and waits for its ready line,
    /// `{"ready": true, ...}` on stdout.
    pub fn start(name: &'static str, mut cmd: Command, logdir: &Path) -> Server {
        let stderr_path = logdir.join(format!("{name}.stderr"));
        clean_env(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("create stderr log"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child can never block on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        let server = Server {
            name,
            child,
            _stdin: stdin,
            ready: serde_json::from_str(line.trim()).unwrap_or(Value::Null),
            stderr_path,
        };
        assert!(
            server.ready["ready"] == Value::Bool(true),
            "{name} did not print its ready line within {READY_TIMEOUT:?} (got {line:?}); \
             stderr:\n{}",
            tail(&server.stderr_path, 4000)
        );
        eprintln!("[{name}] ready: {}", server.ready);
        server
    }

    /// A string member of the ready line.
    pub fn field(&self, key: &str) -> String {
        self.ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("{} ready line has no {key}: {}", self.name, self.ready))
            .to_owned()
    }
}

/// The last `max` bytes of a file (for failure messages).
pub fn tail(path: &Path, max: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    if s.len() > max {
        let mut cut = s.len() - max;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("...{}", &s[cut..]);
    }
    s
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// With `MCP_OAUTH_KEEP_TEST_LOGS` set, moves a test's temporary directory (its logs and
/// store) to `<dir>-kept` instead of letting it be deleted, and says where.
pub fn keep_logs_on_request(dir: &Path, test: &str) {
    if std::env::var_os("MCP_OAUTH_KEEP_TEST_LOGS").is_some() {
        let mut name = dir.as_os_str().to_owned();
        name.push("-kept");
        let kept = PathBuf::from(name);
        let _ = fs::rename(dir, &kept);
        eprintln!("[{test}] logs kept in {}", kept.display());
    }
}

/// The JSON lines of a server's request log (missing file: none); a line that is not
/// JSON fails the test, naming it.
pub fn json_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
        .collect()
}
