//! A browser for the engine's authorization code flow that needs no person: it follows
//! the authorization URL's redirects the way a browser whose user clicks "allow" would,
//! as far as the client's loopback redirect listener.

use mcp_oauth::authorize::browser::Browser;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many redirects a visit follows: the authorization server's own hops, then the
/// client's redirect URI. A loop ends here instead of hanging the test.
const MAX_REDIRECTS: usize = 5;

/// A browser whose user clicks "allow": each [`open`](Browser::open) visits the URL in
/// the background and follows the redirects. Counts how often it was opened.
#[derive(Debug, Default)]
pub struct FollowingBrowser {
    opened: AtomicUsize,
    /// A user who walked away: the URL is never visited.
    idle: bool,
    /// How long the user takes before the URL is visited.
    delay: Duration,
}

impl FollowingBrowser {
    /// Visits every URL at once.
    pub fn new() -> FollowingBrowser {
        FollowingBrowser::default()
    }

    /// A user who walked away: every URL is counted, none is visited.
    pub fn idle() -> FollowingBrowser {
        FollowingBrowser {
            idle: true,
            ..FollowingBrowser::default()
        }
    }

    /// A user who takes `delay` before the URL is visited.
    pub fn after(delay: Duration) -> FollowingBrowser {
        FollowingBrowser {
            delay,
            ..FollowingBrowser::default()
        }
    }

    /// How many times a URL was opened.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
}

impl Browser for FollowingBrowser {
    /// Must be called inside a tokio runtime (the engine's): the visit is a task of it.
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        if self.idle {
            return Ok(());
        }
        let (url, delay) = (url.to_string(), self.delay);
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .build()
                .expect("a reqwest client with default settings");
            // The page at the end (or a failure) is the test's to judge, from what the
            // client and the servers saw.
            let _ = client.get(url).send().await;
        });
        Ok(())
    }
}
