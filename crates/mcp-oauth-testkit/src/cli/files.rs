//! Reading what the servers, the headless browser and the store wrote.

use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Seconds since the epoch.
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

/// How many `/token` requests an authorization server's log entries (tests/node/
/// oidc-as.mjs: `path`, `grant_type`) show, of `grant_type` if given.
pub fn token_requests(entries: &[Value], grant_type: Option<&str>) -> usize {
    entries
        .iter()
        .filter(|e| e["path"] == "/token")
        .filter(|e| grant_type.is_none_or(|g| e["grant_type"] == g))
        .count()
}

/// For a failure message: the last `max` bytes of each named log.
pub fn log_tails(logs: &[(&str, &Path)], max: usize) -> String {
    logs.iter()
        .map(|(name, path)| format!("--- {name}:\n{}\n", tail(path, max)))
        .collect()
}

/// How many times tests/browser.sh was opened, from its `BROWSER_LOG` (missing: none).
pub fn browser_opens(browser_log: &Path) -> usize {
    fs::read_to_string(browser_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" open url="))
        .count()
}

/// The credential files of a file store (`<home>/credentials/*.json`), sorted; none when
/// the directory does not exist.
pub fn credential_files(home: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(home.join("credentials"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Replaces the JSON file at `path` with `value` the way the file store writes (a new
/// 0600 file beside it, synced, renamed over it), so that a reader never sees half of it.
pub fn rewrite_as_the_store_does(path: &Path, value: &Value) {
    let tmp = path.with_extension("json.test-edit");
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&tmp)
        .unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    f.write_all(serde_json::to_string_pretty(value).unwrap().as_bytes())
        .unwrap();
    f.sync_all().unwrap();
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
