//! What the tests of the `mcp-oauth` binary share: the real third-party servers
//! `scripts/bootstrap` installs and how to start them, a sandbox for each test's runs of
//! the binary, waiting for a child process with a limit, and reading what the servers
//! and the headless browser logged.
//!
//! The binary itself is the caller's (`env!("CARGO_BIN_EXE_mcp-oauth")` exists only in
//! the CLI crate's tests): the helpers take its path.

mod deps;
mod files;
mod process;
mod sandbox;
mod servers;

pub use deps::{DEPS_ENV, Deps, REQUIRE_ENV, deps};
pub use files::{
    browser_opens, credential_files, json_lines, keep_logs_on_request, log_tails, now,
    rewrite_as_the_store_does, tail, token_requests,
};
pub use process::{have, lines_of, read_all, repo_root, run_to_files, temp_dir, wait_or_kill};
pub use sandbox::{PROXY_VARS, Sandbox, clean_env};
pub use servers::{
    READY_TIMEOUT, ServerProcess, start_mcp_server, start_oidc_provider, stderr_tails,
};
