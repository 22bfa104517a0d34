//! Opening the authorization URL in the user's browser.
//!
//! Hand-written rather than the `open` or `webbrowser` crates: `open` ignores `$BROWSER`,
//! and `webbrowser` runs text-mode browsers in the foreground with our stdio, which
//! would corrupt the stdio of `mcp-oauth proxy`. Here the browser always runs detached,
//! with stdin, stdout and stderr pointed at /dev/null.

use crate::error::{Error, Result, Step};
use std::process::{Command, Stdio};

/// What an authorization is waiting for, for progress displays ([`Browser::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Another process (or client) holds this server's lock: it is logging in or
    /// refreshing. This one waits for it, then uses its result when there is one.
    WaitingForOtherProcess { server_url: String },
    /// The other process finished; its result is being looked at.
    OtherProcessDone { server_url: String },
    /// Waiting for the user to approve the device code (RFC 8628).
    WaitingForDevice { verification_uri: String },
    /// The redirect (or the approval) arrived; redeeming it at the token endpoint.
    Exchanging,
    /// The interactive part of the authorization is over, successfully or not.
    Finished,
}

/// The user's side of an authorization: a browser to open, and the hooks of the other
/// interaction modes ([`crate::config::Interaction`]). Only [`open`](Self::open) has to be
/// written; the others default to plain stdin/stderr behaviour.
pub trait Browser: Send + Sync {
    /// Start showing `url`; must not block until the user is done.
    fn open(&self, url: &str) -> Result<()>;

    /// Paste mode: show `url` and return what the user pasted back (the redirect URL
    /// their browser could not load, or the bare code). Blocking; runs on a blocking
    /// thread. Default: instructions on stderr, one line from stdin.
    fn read_pasted_redirect(&self, url: &str, redirect_uri: &str) -> Result<String> {
        super::paste::read_from_stdin(url, redirect_uri)
    }

    /// Device mode: show where to go and which code to enter. Must not block.
    /// Default: on stderr.
    fn show_device_code(&self, prompt: &super::device::DevicePrompt) -> Result<()> {
        eprintln!("{}", prompt.instructions());
        Ok(())
    }

    /// Progress of the flow (for a spinner, or a line in a log). Default: nothing.
    fn progress(&self, _event: &Progress) {}
}

/// `$BROWSER` when set (a `:`-separated list of commands, each may contain `%s`), else
/// the platform's opener (`xdg-open`, `open`, `cmd /c start`).
#[derive(Debug, Clone, Default)]
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<()> {
        let mut last_err = None;
        for cmd in commands(std::env::var("BROWSER").ok().as_deref(), url) {
            match spawn_detached(&cmd) {
                Ok(()) => return Ok(()),
                Err(e) => last_err = Some(format!("{}: {e}", cmd[0])),
            }
        }
        Err(Error::Action {
            step: Step::Authorization,
            message: format!(
                "could not open a browser ({}); open this URL yourself, or use --no-browser: {url}",
                last_err.unwrap_or_else(|| "no opener found".into())
            ),
        })
    }
}

/// The commands to try, in order.
fn commands(browser_env: Option<&str>, url: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(list) = browser_env.filter(|s| !s.trim().is_empty()) {
        for entry in list.split(':').filter(|e| !e.trim().is_empty()) {
            let mut parts: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
            if parts.iter().any(|p| p.contains("%s")) {
                for p in &mut parts {
                    *p = p.replace("%s", url);
                }
            } else {
                parts.push(url.to_string());
            }
            out.push(parts);
        }
        return out;
    }
    if cfg!(target_os = "macos") {
        out.push(vec!["open".into(), url.into()]);
    } else if cfg!(windows) {
        // `start`'s first quoted argument is a window title; give it an empty one.
        out.push(vec![
            "cmd".into(),
            "/C".into(),
            "start".into(),
            "\"\"".into(),
            url.replace('&', "^&"),
        ]);
    } else {
        out.push(vec!["xdg-open".into(), url.into()]);
    }
    out
}

fn spawn_detached(cmd: &[String]) -> std::io::Result<()> {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Reap it in the background so it does not linger as a zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_env_forms() {
        let c = commands(Some("firefox --new-tab"), "http://u");
        assert_eq!(c, vec![vec!["firefox", "--new-tab", "http://u"]]);
        let c = commands(Some("w3m %s:lynx"), "http://u");
        assert_eq!(c, vec![vec!["w3m", "http://u"], vec!["lynx", "http://u"]]);
        assert!(!commands(None, "http://u").is_empty());
    }
}
