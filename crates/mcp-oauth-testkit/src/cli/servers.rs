//! Server processes that print one JSON "ready" line (tests/node/oidc-as.mjs, the Python
//! MCP servers), started and killed for one test.

use super::deps::Deps;
use super::files::tail;
use super::sandbox::clean_env;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Time a server has to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process, killed when dropped.
pub struct ServerProcess {
    pub name: &'static str,
    pub child: Child,
    /// Held open: the server exits when it is closed (…_EXIT_ON_STDIN_EOF=1).
    _stdin: Option<ChildStdin>,
    /// The JSON line the server printed once ready.
    pub ready: Value,
    pub stderr_path: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `cmd` (stderr to `<logdir>/<name>.stderr`, no proxy from the environment)
    /// and waits for its ready line, `{"ready": true, ...}` on stdout.
    pub fn start(name: &'static str, mut cmd: Command, logdir: &Path) -> ServerProcess {
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
        let server = ServerProcess {
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

/// For a failure message: the last `max` bytes of each server's stderr.
pub fn stderr_tails(servers: &[ServerProcess], max: usize) -> String {
    servers
        .iter()
        .map(|s| format!("--- {} stderr:\n{}\n", s.name, tail(&s.stderr_path, max)))
        .collect()
}

/// oidc-provider (tests/node/oidc-as.mjs) on a free port, logging its requests to
/// `log`, with 300 s access tokens, the extra `env` (`AS_RFC8414`, `AS_TOKEN_DELAY_MS`,
/// …) and exiting when its stdin closes. Its issuer is `field("issuer")`.
pub fn start_oidc_provider(
    deps: &Deps,
    logdir: &Path,
    log: &Path,
    env: &[(&str, &str)],
) -> ServerProcess {
    let mut cmd = Command::new(&deps.node);
    cmd.arg(&deps.oidc_as)
        .arg("0")
        .env("AS_LOG", log)
        .env("AT_TTL", "300")
        .env("AS_EXIT_ON_STDIN_EOF", "1")
        .envs(env.iter().copied());
    ServerProcess::start("oidc-provider", cmd, logdir)
}

/// An MCP server (`cmd`: an interpreter and its script, e.g. `deps.python` with
/// `deps.mcp_server`) in front of `issuer`, logging its requests to `log` and exiting
/// when its stdin closes. Its URL is `field("url")`.
pub fn start_mcp_server(
    mut cmd: Command,
    issuer: &str,
    log: &Path,
    logdir: &Path,
) -> ServerProcess {
    cmd.arg("--issuer")
        .arg(issuer)
        .env("MCP_LOG", log)
        .env("MCP_EXIT_ON_STDIN_EOF", "1")
        .env("PYTHONUNBUFFERED", "1");
    ServerProcess::start("mcp-server", cmd, logdir)
}
