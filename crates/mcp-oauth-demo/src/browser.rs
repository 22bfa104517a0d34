//! The demo's user agent: instead of opening a real browser, it follows the redirects
//! itself (the development authorization server approves with a `302`), up to the
//! client's loopback redirect URI, and reports each hop.

use crate::events::{BrowserEvent, Event, EventSink, redact_url};
use mcp_oauth::authorize::browser::Browser;
use std::time::Duration;

/// Most redirects followed.
const MAX_HOPS: usize = 10;

/// A [`Browser`] that follows redirects in-process, loopback only.
#[derive(Debug, Clone)]
pub struct HeadlessBrowser {
    http: reqwest::Client,
    events: EventSink,
}

impl HeadlessBrowser {
    pub fn new(events: EventSink) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .user_agent("mcp-oauth-demo-browser")
            .build()
            .expect("a reqwest client without proxies or TLS settings builds");
        Self { http, events }
    }
}

impl Browser for HeadlessBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        self.events.send(Event::Browser(BrowserEvent::Open {
            url: redact_url(url),
        }));
        let (http, events, url) = (self.http.clone(), self.events.clone(), url.to_owned());
        tokio::spawn(async move {
            let (last, outcome) = follow(&http, &events, url).await;
            events.send(Event::Browser(BrowserEvent::Done {
                url: redact_url(&last),
                outcome,
            }));
        });
        Ok(())
    }
}

/// Follows redirects from `url`; returns the last URL and what happened there.
async fn follow(http: &reqwest::Client, events: &EventSink, mut url: String) -> (String, String) {
    for hop in 0..=MAX_HOPS {
        if !is_loopback(&url) {
            return (url, "stopped: not a loopback URL".into());
        }
        if hop > 0 {
            events.send(Event::Browser(BrowserEvent::Follow {
                url: redact_url(&url),
            }));
        }
        let resp = match http.get(&url).send().await {
            Ok(r) => r,
            Err(e) => return (url, format!("request failed: {e}")),
        };
        let status = resp.status();
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(loc) if status.is_redirection() => {
                url = match url::Url::parse(&url).and_then(|base| base.join(&loc)) {
                    Ok(next) => next.to_string(),
                    Err(e) => return (url, format!("bad Location {loc:?}: {e}")),
                };
            }
            _ => return (url, format!("HTTP {}", status.as_u16())),
        }
    }
    (url, format!("gave up after {MAX_HOPS} redirects"))
}

fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}
