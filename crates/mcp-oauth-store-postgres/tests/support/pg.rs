//! A real PostgreSQL for tests: Debian's `postgresql` package (`scripts/bootstrap`
//! installs it), a cluster made by `initdb` in a temporary directory, listening on a free
//! loopback port only, run by an unprivileged user when the test runs as root
//! (PostgreSQL refuses to run as root), stopped and deleted on drop.
//!
//! Without `initdb` a test prints a loud notice and passes, unless
//! `MCP_OAUTH_REQUIRE_REAL=1` (scripts/test sets it).

#![allow(dead_code)]

use mcp_oauth_testkit::fault_server::closed_port;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user PostgreSQL runs as when the tests run as root.
const UNPRIVILEGED: (u32, u32) = (65534, 65534); // nobody:nogroup

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

/// `initdb` on PATH, else in Debian's versioned directory (the newest).
fn bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() {
                return Some(
                    std::fs::canonicalize(d.join("initdb"))
                        .ok()?
                        .parent()?
                        .to_path_buf(),
                );
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY-free: /proc/self/status is enough and keeps libc out of the tests.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl Postgres {
    /// A new cluster, started; `None` (after a loud notice) when PostgreSQL is not
    /// installed and skipping is allowed.
    pub fn start(test: &str) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            if std::env::var("MCP_OAUTH_REQUIRE_REAL").as_deref() == Ok("1") {
                panic!("{test}: PostgreSQL's initdb is not installed; run scripts/bootstrap");
            }
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\nSKIPPED {test}: PostgreSQL (initdb) is not installed, so it did NOT \
                 run.\nRun scripts/bootstrap (apt-get install postgresql) to run it.\n{bar}\n"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("mcp-oauth-pg.")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if is_root() {
            chown(dir.path());
            chown(&data);
        }
        let out = as_postgres(Command::new(bin.join("initdb")))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            bin,
            port: closed_port(),
            child: None,
        };
        pg.run();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (again, on the same port) and waits until it accepts
    /// connections.
    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .unwrap();
        let child = as_postgres(Command::new(self.bin.join("postgres")))
            .args(["-D", self.data().to_str().unwrap()])
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    fn wait_ready(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                started.elapsed() < within,
                "PostgreSQL did not start within {within:?}: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as a crash would (`immediate`: SIGQUIT, no checkpoint; the next
    /// start recovers from the WAL), and waits for it to exit.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// A crash, then a start on the same port; returns how long it was down.
    pub fn restart(&mut self) -> Duration {
        let t = Instant::now();
        self.crash();
        self.run();
        t.elapsed()
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        s[s.len().saturating_sub(3000)..].to_string()
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                &format!("CREATE DATABASE \"{name}\""),
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with psql; returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: the temporary directory goes next.
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// As the unprivileged user when we are root.
fn as_postgres(mut cmd: Command) -> Command {
    if is_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(UNPRIVILEGED.0).gid(UNPRIVILEGED.1);
        // Its HOME (/nonexistent) is not ours either.
        cmd.env("HOME", "/tmp");
    }
    cmd
}

fn chown(path: &Path) {
    let status = Command::new("chown")
        .arg(format!("{}:{}", UNPRIVILEGED.0, UNPRIVILEGED.1))
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown {}", path.display());
}
