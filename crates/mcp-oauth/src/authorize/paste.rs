//! Paste mode, for machines where the browser cannot reach a loopback listener (an SSH
//! session, a container, a remote IDE): the user opens the authorization URL wherever
//! they have a browser; the authorization server redirects that browser to the loopback
//! redirect URI, which fails to load there; the user copies the URL from the address bar
//! (or only the `code`) and pastes it here. The redirect URI is still the registered
//! loopback one, so a pre-registered client needs nothing new.
//!
//! The pasted URL goes through the same checks as a real redirect (RFC 9207 `iss`,
//! `state`, `error`); a bare code carries neither, so it is accepted only from an
//! authorization server that does not promise `iss`.

use crate::error::{Error, Result, Step};
use std::io::{BufRead, IsTerminal};

/// What to tell the user in paste mode.
pub fn instructions(url: &str, redirect_uri: &str) -> String {
    format!(
        "Open this URL in a browser on any machine and authorize:\n\n  {url}\n\n\
         The browser is then sent to {redirect_uri}…, which will fail to load (nothing \
         listens there). Copy the whole URL from its address bar and paste it here, then \
         press Enter:"
    )
}

/// The default [`Browser::read_pasted_redirect`](super::browser::Browser::read_pasted_redirect):
/// instructions on stderr, then one line from stdin.
pub fn read_from_stdin(url: &str, redirect_uri: &str) -> Result<String> {
    eprintln!("{}", instructions(url, redirect_uri));
    read_line(&mut std::io::stdin().lock())
}

/// Reads one non-empty line (blank lines are skipped, so a stray Enter does not end the
/// flow).
pub fn read_line(input: &mut impl BufRead) -> Result<String> {
    loop {
        let mut line = String::new();
        let n = input.read_line(&mut line).map_err(|e| Error::Action {
            step: Step::Authorization,
            message: format!("cannot read the pasted redirect URL from stdin: {e}"),
        })?;
        if n == 0 {
            return Err(Error::Action {
                step: Step::Authorization,
                message: "stdin closed before a redirect URL or code was pasted".into(),
            });
        }
        let line = line.trim();
        if !line.is_empty() {
            return Ok(line.to_string());
        }
    }
}

/// Why a browser on this machine probably cannot reach a loopback listener here, or
/// `None` when it probably can. `$BROWSER` being set means the user has told us how to
/// open one, so it wins over the guesses.
pub fn headless_reason() -> Option<&'static str> {
    headless_reason_from(&|k| std::env::var_os(k).filter(|v| !v.is_empty()).is_some())
}

fn headless_reason_from(has: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    if has("BROWSER") {
        return None;
    }
    if has("SSH_CONNECTION") || has("SSH_CLIENT") || has("SSH_TTY") {
        return Some("this is an SSH session");
    }
    if cfg!(all(unix, not(target_os = "macos"))) && !has("DISPLAY") && !has("WAYLAND_DISPLAY") {
        return Some("there is no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)");
    }
    None
}

/// Is stdin a terminal (so that a person can paste into it)?
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_non_empty_line() {
        let mut input =
            std::io::Cursor::new("\n  \nhttp://127.0.0.1:1/callback?code=x&state=y \nmore\n");
        assert_eq!(
            read_line(&mut input).unwrap(),
            "http://127.0.0.1:1/callback?code=x&state=y"
        );
        let mut empty = std::io::Cursor::new("\n");
        assert!(
            read_line(&mut empty)
                .unwrap_err()
                .to_string()
                .contains("stdin closed")
        );
    }

    #[test]
    fn headless_detection() {
        let env = |vars: &'static [&'static str]| move |k: &str| vars.contains(&k);
        assert_eq!(
            headless_reason_from(&env(&["SSH_CONNECTION", "DISPLAY"])),
            Some("this is an SSH session")
        );
        assert_eq!(headless_reason_from(&env(&["SSH_TTY", "BROWSER"])), None);
        assert_eq!(headless_reason_from(&env(&["WAYLAND_DISPLAY"])), None);
        if cfg!(all(unix, not(target_os = "macos"))) {
            assert!(headless_reason_from(&env(&[])).is_some());
        }
    }

    #[test]
    fn instructions_name_both_urls() {
        let s = instructions("https://as/authorize?x=1", "http://127.0.0.1:1/callback");
        assert!(
            s.contains("https://as/authorize?x=1") && s.contains("http://127.0.0.1:1/callback")
        );
    }
}
