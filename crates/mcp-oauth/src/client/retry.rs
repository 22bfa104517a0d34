//! Retrying a token endpoint request through transient failures: a gateway's 5xx page,
//! a connection reset, `temporarily_unavailable`. A refresh that fails that way is tried
//! again after a short pause, at most [`ATTEMPTS`] times in all; an answer from the
//! authorization server (`invalid_grant`, `invalid_client`, …) is final at once. Nothing
//! is forgotten because of a transient failure: the refresh token and the client
//! registration stay for the next attempt.

use crate::error::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// Attempts in all, first included.
pub(crate) const ATTEMPTS: usize = 3;

/// The pause before the second and third attempts: short, since a user or an MCP host
/// is waiting, and bounded (about 2 s in all, besides the requests themselves).
const BACKOFF: [Duration; ATTEMPTS - 1] = [Duration::from_millis(400), Duration::from_millis(1600)];

/// Whether `e` may pass if the same request is sent again: the server (or something in
/// front of it) failed, rather than answered. A time-out is not retried: the wait it
/// already cost is the configured bound.
pub(crate) fn is_transient(e: &Error) -> bool {
    match e {
        Error::Transport { .. } => true,
        Error::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        Error::OAuth { body, status, .. } => {
            matches!(
                body.error.as_str(),
                "temporarily_unavailable" | "server_error"
            ) || (*status >= 500 && body.error != "invalid_grant" && body.error != "invalid_client")
        }
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or [`ATTEMPTS`] are spent.
pub(crate) async fn through_transient_failures<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Err(e) if is_transient(&e) && n < BACKOFF.len() => {
                tracing::warn!(error = %e, attempt = n + 1, "transient failure at the token endpoint; trying again");
                tokio::time::sleep(BACKOFF[n]).await;
                n += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{OAuthErrorBody, Step};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn status(code: u16) -> Error {
        Error::Status {
            step: Step::Refresh,
            url: "u".into(),
            status: code,
            body_excerpt: "<html>Bad Gateway</html>".into(),
        }
    }

    fn oauth(code: &str, status: u16) -> Error {
        Error::OAuth {
            step: Step::Refresh,
            url: "u".into(),
            status,
            body: OAuthErrorBody {
                error: code.into(),
                error_description: None,
                error_uri: None,
            },
        }
    }

    #[test]
    fn what_is_transient() {
        assert!(is_transient(&status(503)));
        assert!(is_transient(&status(502)));
        assert!(is_transient(&status(429)));
        assert!(!is_transient(&status(400)));
        assert!(!is_transient(&status(404)));
        assert!(is_transient(&oauth("temporarily_unavailable", 400)));
        assert!(is_transient(&oauth("server_error", 500)));
        assert!(!is_transient(&oauth("invalid_grant", 400)));
        assert!(!is_transient(&oauth("invalid_client", 401)));
        assert!(!is_transient(&oauth("invalid_grant", 500)));
        assert!(is_transient(&Error::Transport {
            step: Step::Refresh,
            url: "u".into(),
            message: "connection reset".into(),
            source: None,
        }));
        assert!(!is_transient(&Error::Timeout {
            step: Step::Refresh,
            url: "u".into(),
            secs: 30
        }));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_stop_at_a_final_answer() {
        let calls = AtomicUsize::new(0);
        let r: Result<()> = through_transient_failures(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status(503))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);

        let calls = AtomicUsize::new(0);
        let r = through_transient_failures(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(status(503)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let calls = AtomicUsize::new(0);
        let r: Result<()> = through_transient_failures(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(oauth("invalid_grant", 400))
        })
        .await;
        assert_eq!(r.unwrap_err().oauth_error(), Some("invalid_grant"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
