//! What the user sees on stderr: the authorization URL, errors.

use mcp_oauth::authorize::browser::{Browser, SystemBrowser};

/// Shows the authorization URL on stderr, then opens the system browser.
#[derive(Debug, Default)]
pub struct AnnouncingBrowser {
    inner: SystemBrowser,
}

impl Browser for AnnouncingBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        eprintln!("Opening your browser to authorize. If it does not open, visit:\n  {url}");
        self.inner.open(url)
    }
}

pub fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    let mut src = e.source();
    while let Some(s) = src {
        eprintln!("  caused by: {s}");
        src = s.source();
    }
}
