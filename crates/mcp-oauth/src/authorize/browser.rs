//! Opening the authorization URL in the user's browser.
//!
//! Hand-written rather than the `open` or `webbrowser` crates: `open` ignores `$BROWSER`,
//! and `webbrowser` runs text-mode browsers in the foreground with our stdio, which
//! would corrupt the stdio of `mcp-oauth proxy`. Here the browser always runs detached,
//! with stdin, stdout and stderr pointed at /dev/null.
//!
//! The URL comes from the authorization server's metadata, so it is hostile input: it
//! is always exactly one argument of a program started directly, never text for a shell
//! (no `cmd /C start`, whose parsing of `&`, `|`, `^`, `%`, `(`, `)` no escaping gets
//! right), and only an absolute `http`/`https` URL is opened at all.

use crate::error::{Error, Result, Step};
use std::process::{Command, Stdio};

/// What an authorization is waiting for, for progress displays ([`Browser::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Discovery, registration or a grant without a user is under way: requests to the
    /// MCP server's metadata and its authorization server. Ends with [`Progress::Finished`].
    Discovering {
        /// The MCP server URL.
        server_url: String,
    },
    /// Another process (or client) holds this server's lock: it is logging in or
    /// refreshing. This one waits for it, then uses its result when there is one.
    WaitingForOtherProcess {
        /// The MCP server URL.
        server_url: String,
    },
    /// The other process finished; its result is being looked at.
    OtherProcessDone {
        /// The MCP server URL.
        server_url: String,
    },
    /// Waiting for the user to approve the device code (RFC 8628).
    WaitingForDevice {
        /// Where the user goes to enter the code.
        verification_uri: String,
    },
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
/// the platform's opener (`xdg-open`, `open`, `rundll32 url.dll,FileProtocolHandler`).
/// The URL is always one argument of its own; no shell is involved.
#[derive(Debug, Clone, Default)]
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<()> {
        let url = launchable(url)?;
        let url = url.as_str();
        let mut last_err = None;
        let browser_env = std::env::var("BROWSER").ok();
        for cmd in commands(Platform::CURRENT, browser_env.as_deref(), url) {
            match spawn_detached(&cmd) {
                Ok(()) => return Ok(()),
                Err(e) => last_err = Some(format!("{}: {e}", cmd[0])),
            }
        }
        Err(Error::Action {
            step: Step::Authorization,
            message: format!(
                "could not open a browser ({}); open this URL yourself, {}: {url}",
                last_err.unwrap_or_else(|| "no opener found".into()),
                crate::remedy::Remedy::PasteInsteadOfBrowser
            ),
        })
    }
}

/// The URL to hand to an opener: an absolute `http` or `https` URL, in its canonical
/// serialization. Any other scheme is refused: Windows' opener (and `xdg-open`, `open`)
/// start whatever program is registered for a scheme (`file:` runs executables), so a
/// hostile authorization endpoint must not choose one. The serialization percent-encodes
/// spaces and `"`, the two characters Windows' command-line quoting would wrap the
/// argument in quotes for, so the URL reaches the opener byte for byte.
fn launchable(url: &str) -> Result<url::Url> {
    let refuse = |why: &str| Error::Action {
        step: Step::Authorization,
        message: format!("not opening {url:?} in a browser: {why}"),
    };
    let parsed = url::Url::parse(url).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(refuse(&format!(
            "only http and https URLs are opened, not {other}:"
        ))),
    }
}

/// The operating systems whose default openers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    /// Linux and the other Unix-likes: `xdg-open`.
    Linux,
    MacOs,
    Windows,
}

impl Platform {
    /// The platform this binary was built for.
    const CURRENT: Platform = if cfg!(target_os = "macos") {
        Platform::MacOs
    } else if cfg!(windows) {
        Platform::Windows
    } else {
        Platform::Linux
    };
}

/// The commands to try, in order. Pure (the platform and `$BROWSER` are parameters) so
/// that every platform's argv is tested on every platform.
fn commands(platform: Platform, browser_env: Option<&str>, url: &str) -> Vec<Vec<String>> {
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
    out.push(match platform {
        Platform::MacOs => vec!["open".into(), url.into()],
        // `FileProtocolHandler` passes the rest of rundll32's command line, untouched, to
        // ShellExecute: the URL is not parsed by `cmd`, so `&`, `|`, `^`, `%` stay data.
        Platform::Windows => vec![
            "rundll32".into(),
            "url.dll,FileProtocolHandler".into(),
            url.into(),
        ],
        Platform::Linux => vec!["xdg-open".into(), url.into()],
    });
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
        let c = commands(Platform::CURRENT, Some("firefox --new-tab"), "http://u");
        assert_eq!(c, vec![vec!["firefox", "--new-tab", "http://u"]]);
        let c = commands(Platform::CURRENT, Some("w3m %s:lynx"), "http://u");
        assert_eq!(c, vec![vec!["w3m", "http://u"], vec!["lynx", "http://u"]]);
        assert!(!commands(Platform::CURRENT, None, "http://u").is_empty());
    }

    /// Characters a shell (`cmd`, `sh`) would act on, a `%s` that must not be substituted
    /// again, and a `:` that must not split a `$BROWSER` list.
    const HOSTILE: &str = "https://as.example:8443/authorize?x=|calc&y=^(a)%25&z=\"q\" w&t=%s";

    #[test]
    fn opener_argv_holds_the_url_as_one_untouched_argument() {
        let u = HOSTILE.to_string();
        let expected = [
            (Platform::Linux, vec!["xdg-open".to_string(), u.clone()]),
            (Platform::MacOs, vec!["open".to_string(), u.clone()]),
            (
                Platform::Windows,
                vec![
                    "rundll32".to_string(),
                    "url.dll,FileProtocolHandler".to_string(),
                    u.clone(),
                ],
            ),
        ];
        for (platform, argv) in expected {
            assert_eq!(
                commands(platform, None, HOSTILE),
                vec![argv],
                "{platform:?}"
            );
            // $BROWSER: each `%s` becomes the URL, as one argument; never a shell.
            assert_eq!(
                commands(platform, Some("firefox --new-tab %s"), HOSTILE),
                vec![vec!["firefox".to_string(), "--new-tab".into(), u.clone()]],
                "{platform:?}"
            );
            assert_eq!(
                commands(platform, Some("w3m --url=%s:lynx"), HOSTILE),
                vec![
                    vec!["w3m".to_string(), format!("--url={u}")],
                    vec!["lynx".to_string(), u.clone()],
                ],
                "{platform:?}"
            );
        }
    }

    #[test]
    fn only_http_urls_are_opened() {
        for refused in [
            "file:///C:/Windows/System32/calc.exe",
            "ms-settings:privacy",
            "javascript:alert(1)",
            "--help",
            "as.example/authorize",
        ] {
            let e = launchable(refused).unwrap_err();
            assert!(e.to_string().contains("not opening"), "{refused}: {e}");
        }
        // What reaches the opener: the canonical serialization, in which spaces and
        // quotes are percent-encoded and shell metacharacters are left as they are.
        let u = launchable(HOSTILE).unwrap();
        assert_eq!(
            u.as_str(),
            "https://as.example:8443/authorize?x=|calc&y=^(a)%25&z=%22q%22%20w&t=%s"
        );
        assert_eq!(launchable(u.as_str()).unwrap(), u, "idempotent");
    }
}
