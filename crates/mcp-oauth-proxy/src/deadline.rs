//! The time a request may go without hearing from the server
//! ([`super::ProxyOptions::request_timeout`]).
//!
//! The clock of a request starts when the proxy takes it and restarts at every event the
//! server sends on the request's response stream (progress notifications, log messages,
//! requests of its own), so a long tool call that reports progress stays alive while a
//! server that accepted the request and went silent is given up on: the same choice as
//! the TypeScript SDK's `resetTimeoutOnProgress`. Time spent authorizing (a refresh, or a
//! user logging in in the browser) does not count: the clock stops meanwhile.
//!
//! The clock is a task-local of the request's task, so the code that reads the server's
//! answer marks progress with [`touch`] without having it passed along.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    static CLOCK: Arc<Clock>;
}

/// The clock of one request.
#[derive(Debug)]
struct Clock {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the server was last heard from (or the clock last restarted).
    last: Instant,
    /// Authorizations under way: the clock does not run while there is one.
    paused: u32,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            state: Mutex::new(State {
                last: Instant::now(),
                paused: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self) {
        self.state().last = Instant::now();
    }

    /// When the request runs out of time, `None` while the clock is stopped.
    fn deadline(&self, limit: Duration) -> Option<Instant> {
        let s = self.state();
        (s.paused == 0).then(|| s.last + limit)
    }
}

/// Marks that the server sent something for the current request (nothing outside a
/// request's task).
pub(crate) fn touch() {
    let _ = CLOCK.try_with(|c| c.touch());
}

/// The current request's clock, stopped until the returned [`Stopped`] is dropped: for
/// a wait that ends elsewhere (the client answering a request the server sent on this
/// request's stream). `None` outside a request's task.
pub(crate) fn stop_current() -> Option<Stopped> {
    let clock = CLOCK.try_with(Arc::clone).ok()?;
    clock.state().paused += 1;
    Some(Stopped(clock))
}

/// A stopped clock; dropping it restarts the clock from zero.
#[derive(Debug)]
pub(crate) struct Stopped(Arc<Clock>);

impl Drop for Stopped {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.paused = s.paused.saturating_sub(1);
        s.last = Instant::now();
    }
}

/// Runs `fut` (an authorization) with the current request's clock stopped; the clock
/// restarts from zero when it ends.
pub(crate) async fn stopped<F: Future>(fut: F) -> F::Output {
    let _restart = stop_current();
    fut.await
}

/// Runs `fut` as a request's task: `None` when `limit` passed without a word from the
/// server (`fut` is then dropped, which closes its connection). No limit: runs to its end.
pub(crate) async fn bounded<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    let clock = Arc::new(Clock::new());
    let fut = CLOCK.scope(clock.clone(), fut);
    let Some(limit) = limit else {
        return Some(fut.await);
    };
    tokio::pin!(fut);
    loop {
        // While stopped, look again a limit later (or when the future ends).
        let wake = clock
            .deadline(limit)
            .unwrap_or_else(|| Instant::now() + limit);
        tokio::select! {
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(wake) => {
                if clock.deadline(limit).is_some_and(|d| d <= Instant::now()) {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_ends_a_request_and_progress_keeps_it_alive() {
        let limit = Some(Duration::from_secs(10));
        // Silent for longer than the limit.
        let silent = bounded(limit, tokio::time::sleep(Duration::from_secs(11))).await;
        assert_eq!(silent, None);
        // Thirty seconds in all, but never ten without progress.
        let chatty = bounded(limit, async {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(3)).await;
                touch();
            }
            "done"
        })
        .await;
        assert_eq!(chatty, Some("done"));
        // No limit.
        assert_eq!(
            bounded(None, async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                1
            })
            .await,
            Some(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn authorization_time_does_not_count() {
        let limit = Some(Duration::from_secs(10));
        let out = bounded(limit, async {
            // A login that takes a minute, then an answer within the limit.
            stopped(tokio::time::sleep(Duration::from_secs(60))).await;
            tokio::time::sleep(Duration::from_secs(9)).await;
            "answered"
        })
        .await;
        assert_eq!(out, Some("answered"));
        // A wait that ends elsewhere (the client answering the server).
        let out = bounded(limit, async {
            let stop = stop_current().expect("inside a request");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(stop);
            });
            tokio::time::sleep(Duration::from_secs(65)).await;
            "answered"
        })
        .await;
        assert_eq!(out, Some("answered"));
        assert!(stop_current().is_none(), "no clock outside a request");
        // After the authorization, the clock runs again.
        let out = bounded(limit, async {
            stopped(async {}).await;
            tokio::time::sleep(Duration::from_secs(11)).await;
        })
        .await;
        assert_eq!(out, None);
    }
}
