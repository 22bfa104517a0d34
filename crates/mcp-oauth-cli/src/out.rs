//! Everything the commands print on stdout goes through here.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`mcp-oauth status |
//! head -1`: exit 101 and a panic message, about 2 runs in 5). Here a failed write is an
//! [`OutputError`] that the command returns like any other error, and `main` ends quietly
//! when it is a closed pipe ([`is_closed_pipe`]), as `demo` (which writes through an
//! `io::Write`) did already. Whatever a command did before its first write (a login's
//! stored tokens) stays done. `clippy::print_stdout` is denied in the crate so that no
//! `println!` comes back. On a terminal, the text is made safe first ([`crate::term`]).

use std::fmt;
use std::io::{self, Write};

/// Writing the result to stdout failed.
#[derive(Debug)]
pub struct OutputError {
    source: io::Error,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot write to standard output")
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<io::Error> for OutputError {
    fn from(source: io::Error) -> Self {
        OutputError { source }
    }
}

/// `text` as it is, then a newline.
pub fn line(text: impl fmt::Display) -> Result<(), OutputError> {
    write(format_args!("{text}\n"))
}

/// `text` without a newline added (for text that ends with its own).
pub fn text(text: &str) -> Result<(), OutputError> {
    write(format_args!("{text}"))
}

/// Bytes made elsewhere (shell completions).
pub fn bytes(bytes: &[u8]) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

fn write(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    if to_terminal() {
        // The same terminal may show a progress line on stderr: not in the middle of it.
        crate::progress::clear_line();
        // Server-supplied text (a tool's output, a client id) must not drive the
        // terminal; into a pipe or a file it stays as it came (it is data there).
        out.write_all(crate::term::clean(&args.to_string(), crate::ui::color_stdout()).as_bytes())?;
    } else {
        out.write_fmt(args)?;
    }
    // Stdout is line-buffered: flush, so that a closed pipe is reported by this call
    // and not by an exit-time flush nobody checks.
    out.flush()?;
    Ok(())
}

fn to_terminal() -> bool {
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TERMINAL.get_or_init(|| io::IsTerminal::is_terminal(&io::stdout()))
}

/// Was `e` caused by a reader that closed stdout (EPIPE)? Then there is nobody left to
/// tell, and the command ends quietly.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
