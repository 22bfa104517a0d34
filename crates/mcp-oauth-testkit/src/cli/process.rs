//! Child processes with a limit, and what is on the machine.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How often a waiting test looks at the child again.
const POLL: Duration = Duration::from_millis(20);

/// The child's exit status; `None` when it did not exit within `limit`, after it was
/// killed (and reaped).
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on a child") {
            return Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Runs `cmd` with stdin closed and its stdout and stderr in `<dir>/<name>.stdout` and
/// `.stderr` (files, not pipes: a grandchild that keeps a pipe open cannot hang the
/// test), for at most `limit`. `None` when it had to be killed; the files stay for the
/// failure message either way.
pub fn run_to_files(
    cmd: &mut Command,
    dir: &Path,
    name: &str,
    limit: Duration,
) -> Option<std::process::Output> {
    let (out, err) = (
        dir.join(format!("{name}.stdout")),
        dir.join(format!("{name}.stderr")),
    );
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("create stdout file"))
        .stderr(std::fs::File::create(&err).expect("create stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status = wait_or_kill(&mut child, limit)?;
    Some(std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    })
}

/// A child's stream line by line, read on a thread (so that a read can time out). The
/// thread keeps draining once nobody listens, so that the child never blocks on a full
/// pipe.
pub fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut listening = true;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if listening && tx.send(line).is_err() {
                listening = false;
            }
        }
    });
    rx
}

/// All of a child's stream, read on a thread (so that the wait can time out), as text.
pub fn read_all(mut stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// A test's own temporary directory, `<prefix>XXXXXX` in the system's, removed when
/// dropped (unless [`keep_logs_on_request`](super::keep_logs_on_request) moved it).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// The repository's root directory (tests/, scripts/ …).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Whether `tool --version` runs and succeeds.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
