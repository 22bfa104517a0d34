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
