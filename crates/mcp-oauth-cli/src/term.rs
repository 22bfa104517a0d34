//! Text from the network made safe for a terminal, in one place.
//!
//! Servers choose much of what the CLI prints: an `error_description`, a device flow's
//! `verification_uri` and `user_code`, a client id, a tool's text. A control character in
//! it reaches the terminal as a command: `ESC ] 0 ; … BEL` retitles the window, `ESC [ 2 J`
//! clears the screen, others move the cursor to forge output or, on some terminals, write
//! to the clipboard. Every line the CLI writes to stderr ([`crate::ui::say`]) and to a
//! terminal on stdout ([`crate::out`]) goes through [`clean`].

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every C0 control character but newline and tab, DEL and every C1 control
/// character shown as an escape (`\x1b`, `\u{9b}`), so that it is seen and never acted
/// on. With `keep_sgr`, colour sequences (`ESC [ digits;… m`, the only ones the CLI
/// writes itself, and only when colours are on) stay: they can change colours and
/// nothing else.
pub fn clean(text: &str, keep_sgr: bool) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if keep_sgr && c == '\x1b' {
            let sgr = sgr_len(rest);
            if sgr > 0 {
                out.push_str(&rest[..sgr]);
                rest = &rest[sgr..];
                continue;
            }
        }
        if is_unsafe(c) {
            match u32::from(c) {
                n @ 0..=0x7f => {
                    let _ = write!(out, "\\x{n:02x}");
                }
                n => {
                    let _ = write!(out, "\\u{{{n:x}}}");
                }
            }
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The length of the SGR sequence `ESC [ [0-9;]* m` at the start of `s`, or 0.
fn sgr_len(s: &str) -> usize {
    let Some(params) = s.strip_prefix("\x1b[") else {
        return 0;
    };
    let n = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    if params.as_bytes().get(n) == Some(&b'm') {
        2 + n + 1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_acted_on() {
        let hostile = "bad \x1b]0;pwned\x07\x1b[2Jclient\r\n\tnext \u{9b}31m \x7f";
        assert_eq!(
            clean(hostile, false),
            "bad \\x1b]0;pwned\\x07\\x1b[2Jclient\\x0d\n\tnext \\u{9b}31m \\x7f"
        );
        assert_eq!(clean(hostile, true), clean(hostile, false), "not colours");
        assert!(matches!(clean("plain text\n", false), Cow::Borrowed(_)));
        // Our own colours stay when colours are on, and only then.
        let ours = "\x1b[1;31merror:\x1b[0m x";
        assert_eq!(clean(ours, true), ours);
        assert_eq!(clean(ours, false), "\\x1b[1;31merror:\\x1b[0m x");
    }
}
