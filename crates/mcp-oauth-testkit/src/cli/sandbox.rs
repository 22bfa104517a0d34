//! One test's runs of the binary, kept from the machine's settings and from each other.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

/// The proxy variables a child must not inherit: all test traffic is loopback.
pub const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// No proxy from the environment: all test traffic is loopback.
pub fn clean_env(cmd: &mut Command) {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost,::1");
}

/// Where a test's runs of the binary keep their state, and the browser they open.
pub struct Sandbox {
    /// The store (`MCP_OAUTH_HOME`).
    pub home: PathBuf,
    /// The configuration file (`MCP_OAUTH_CONFIG`; it need not exist).
    pub config: PathBuf,
    /// `$BROWSER`, e.g. tests/browser.sh.
    pub browser: PathBuf,
    /// Where tests/browser.sh logs (`BROWSER_LOG`).
    pub browser_log: PathBuf,
}

impl Sandbox {
    /// `program args` with this sandbox's store, configuration file and browser, no
    /// proxy from the environment ([`clean_env`]), no colours, and neither `RUST_LOG`
    /// nor `MCP_OAUTH_PROFILE` from the environment. Stdin, stdout and stderr are the
    /// caller's to set.
    pub fn command(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        clean_env(&mut cmd);
        cmd.args(args)
            .env("MCP_OAUTH_HOME", &self.home)
            .env("MCP_OAUTH_CONFIG", &self.config)
            .env("BROWSER", &self.browser)
            .env("BROWSER_LOG", &self.browser_log)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("MCP_OAUTH_PROFILE");
        cmd
    }

    /// How many times the browser was opened (tests/browser.sh's log).
    pub fn browser_opens(&self) -> usize {
        super::files::browser_opens(&self.browser_log)
    }
}
