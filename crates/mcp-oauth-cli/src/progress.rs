//! Progress on stderr while the command waits: on a terminal, one spinner line that says
//! what is awaited, for how long so far and, where there is one, the limit after which
//! the command gives up. Never on stdout, and nothing at all when stderr is not a
//! terminal (a log or a pipe gets no carriage returns).
//!
//! Waits nest: the innermost one is shown, and when it ends the one around it shows
//! again (a `call` waits for the MCP server, which waits for a login, which waits for the
//! browser). A wait on the network shows only once it has lasted [`NETWORK_DELAY`], so
//! fast commands draw nothing. Every other write to stderr (`ui::say`, the log) clears the
//! spinner's line first ([`write_clear`]), so that no message lands in the middle of it;
//! the spinner draws itself again below.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a wait on the network lasts before it is shown.
pub const NETWORK_DELAY: Duration = Duration::from_secs(1);

/// The spinner's frame time.
const TICK: Duration = Duration::from_millis(100);

/// Longest message drawn, in characters: a spinner line that wraps cannot be cleared.
const MAX_MESSAGE: usize = 64;

struct Wait {
    id: u64,
    message: String,
    limit: Option<Duration>,
    since: Instant,
    delay: Duration,
}

struct State {
    waits: Vec<Wait>,
    next_id: u64,
    /// A spinner line is on the terminal now.
    drawn: bool,
    /// The drawing thread runs.
    drawing: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    waits: Vec::new(),
    next_id: 0,
    drawn: false,
    drawing: false,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A wait being shown; it ends when dropped.
#[must_use = "the wait ends when this is dropped"]
pub struct Waiting {
    id: Option<u64>,
}

/// Shows `message` once the wait has lasted `delay`, with `limit` (the time after which
/// the command gives up) when there is one. Nothing when stderr is not a terminal.
pub fn waiting(message: impl Into<String>, limit: Option<Duration>, delay: Duration) -> Waiting {
    if !std::io::stderr().is_terminal() {
        return Waiting { id: None };
    }
    let message = crate::term::clean(&shorten(&message.into()), false).into_owned();
    let mut st = state();
    let id = st.next_id;
    st.next_id += 1;
    st.waits.push(Wait {
        id,
        message,
        limit,
        since: Instant::now(),
        delay,
    });
    if !st.drawing {
        st.drawing = true;
        std::thread::spawn(draw_loop);
    }
    Waiting { id: Some(id) }
}

/// A wait on the network: shown after [`NETWORK_DELAY`].
pub fn network(message: impl Into<String>, limit: Option<Duration>) -> Waiting {
    waiting(message, limit, NETWORK_DELAY)
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut st = state();
        st.waits.retain(|w| w.id != id);
        // The wait it was nested in shows again, timed afresh: what it waited for (a
        // request) starts again once the inner wait (a login) is over.
        if let Some(outer) = st.waits.last_mut() {
            outer.since = Instant::now();
        }
        if st.waits.is_empty() && st.drawn {
            // At once: the command may end (and print its result) right after.
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            st.drawn = false;
        }
    }
}

/// Writes `text` to stderr (locked), clearing the spinner's line first. Everything else
/// that writes to stderr goes through here, so the two never share a line.
pub fn write_clear(text: &[u8]) -> std::io::Result<()> {
    let mut st = state();
    let mut err = std::io::stderr().lock();
    if st.drawn {
        err.write_all(b"\r\x1b[2K")?;
        st.drawn = false;
    }
    err.write_all(text)?;
    err.flush()
}

/// Clears the spinner's line, before a result is written to stdout on the same terminal.
pub fn clear_line() {
    let mut st = state();
    if st.drawn {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"\r\x1b[2K");
        let _ = err.flush();
        st.drawn = false;
    }
}

fn draw_loop() {
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut frame = 0;
    loop {
        std::thread::sleep(TICK);
        let mut st = state();
        let Some(w) = st.waits.last() else {
            st.drawing = false;
            return;
        };
        let elapsed = w.since.elapsed();
        let line = (elapsed >= w.delay).then(|| {
            let limit = w
                .limit
                .map(|l| format!("; gives up after {} s", l.as_secs()))
                .unwrap_or_default();
            format!(
                "\r\x1b[2K{} {} ({}s{limit}, Ctrl-C to cancel)",
                crate::ui::paint("36", &frames[frame % frames.len()].to_string()),
                w.message,
                elapsed.as_secs()
            )
        });
        let mut err = std::io::stderr().lock();
        match line {
            Some(line) => {
                let _ = err.write_all(line.as_bytes());
                st.drawn = true;
                frame += 1;
            }
            None if st.drawn => {
                let _ = err.write_all(b"\r\x1b[2K");
                st.drawn = false;
            }
            None => {}
        }
        let _ = err.flush();
    }
}

/// At most [`MAX_MESSAGE`] characters, cut with an ellipsis.
fn shorten(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message.to_string();
    }
    let mut s: String = message.chars().take(MAX_MESSAGE - 1).collect();
    s.push('…');
    s
}

/// The host (and port) of `url`, for messages that must stay short.
pub fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_and_hosts_named() {
        assert_eq!(shorten("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(shorten(&long).chars().count(), MAX_MESSAGE);
        assert!(shorten(&long).ends_with('…'));
        assert_eq!(host_of("http://127.0.0.1:8888/mcp"), "127.0.0.1:8888");
        assert_eq!(host_of("https://mcp.example.com/mcp?x"), "mcp.example.com");
    }
}
