//! Finding the real third-party servers `scripts/bootstrap` installed.
//!
//! They are named by `.deps/test-deps.json`; `scripts/test` runs the tests with
//! `MCP_OAUTH_TEST_DEPS=<abs path of .deps>` and `MCP_OAUTH_REQUIRE_REAL=1`. Without
//! `MCP_OAUTH_TEST_DEPS` a test prints a loud skip notice and passes, unless
//! `MCP_OAUTH_REQUIRE_REAL=1`.

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

/// Names the directory `scripts/bootstrap` installed the dependencies into.
pub const DEPS_ENV: &str = "MCP_OAUTH_TEST_DEPS";
/// `1`: a test that would skip for want of a dependency fails instead.
pub const REQUIRE_ENV: &str = "MCP_OAUTH_REQUIRE_REAL";

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
