//! The loopback redirect listener (RFC 8252 §7.3): a one-shot HTTP server on a
//! loopback address that receives the authorization response. The page it shows tells
//! the truth: it is rendered only after the caller has finished the token exchange.
//!
//! Hand-written on hyper rather than axum: it serves one route once, and the library
//! should not pull a web framework into every client.

use super::CallbackParams;
use crate::config::RedirectSettings;
use crate::error::{Error, Result, Rule, Step};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A bound listener and the redirect URI that reaches it.
#[derive(Debug)]
pub struct LoopbackListener {
    listeners: Vec<TcpListener>,
    redirect_uri: String,
    path: String,
}

/// The port used when none is configured: derived from the server URL, so that the same
/// server always gets the same redirect URI (a pre-registered redirect URI keeps working,
/// and a dynamically registered client can be reused). Below the Linux and Windows
/// ephemeral ranges so it rarely collides with outgoing connections.
pub fn stable_port(server_url: &str) -> u16 {
    use sha2::{Digest, Sha256};
    // The spellings of one server share its port, and so its registered redirect URI.
    let d = Sha256::digest(crate::store::canonical_server_url(server_url).as_bytes());
    10000 + (u16::from_be_bytes([d[0], d[1]]) % 20000)
}

/// The redirect URI for `settings` without binding anything: for paste and device modes,
/// where the authorization server must still see the registered loopback redirect URI but
/// nothing listens on it. A port of 0 ("any free port") means the stable port here.
pub fn redirect_uri_for(settings: &RedirectSettings, server_url: &str) -> Result<String> {
    bind_addrs(&settings.host)?;
    let port = settings
        .port
        .filter(|p| *p != 0)
        .unwrap_or_else(|| stable_port(server_url));
    Ok(format_redirect_uri(&settings.host, port, &settings.path))
}

fn format_redirect_uri(host: &str, port: u16, path: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("http://{host}:{port}{path}")
}

fn bind_addrs(host: &str) -> Result<Vec<IpAddr>> {
    if host.eq_ignore_ascii_case("localhost") {
        // `localhost` may resolve to either family in the browser: listen on both.
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
        Error::config(format!(
            "redirect host {host:?} must be `localhost` or a loopback IP literal (RFC 8252 §7.3)"
        ))
    })?;
    if !ip.is_loopback() {
        return Err(Error::config(format!(
            "redirect host {host:?} is not a loopback address; the listener only binds loopback"
        )));
    }
    Ok(vec![ip])
}

impl LoopbackListener {
    /// Binds the listener for `settings`; `server_url` picks the stable default port.
    pub async fn bind(settings: &RedirectSettings, server_url: &str) -> Result<Self> {
        let addrs = bind_addrs(&settings.host)?;
        let explicit = settings.port;
        let first_port = explicit.unwrap_or_else(|| stable_port(server_url));
        let listeners = match bind_all(&addrs, first_port).await {
            Ok(l) => l,
            Err(e) if explicit.is_none() => {
                tracing::warn!(port = first_port, error = %e, "the stable redirect port is busy; using a random one");
                bind_all(&addrs, 0)
                    .await
                    .map_err(|e| bind_error(&settings.host, 0, e))?
            }
            Err(e) => return Err(bind_error(&settings.host, first_port, e)),
        };
        let port = listeners[0]
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(first_port);
        let host = if settings.host.contains(':') && !settings.host.starts_with('[') {
            format!("[{}]", settings.host)
        } else {
            settings.host.clone()
        };
        let path = if settings.path.starts_with('/') {
            settings.path.clone()
        } else {
            format!("/{}", settings.path)
        };
        Ok(Self {
            listeners,
            redirect_uri: format!("http://{host}:{port}{path}"),
            path,
        })
    }

    /// The redirect URI to register and send, with the port the listener got.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Serves until the response to the pending authorization (the one whose `state` is
    /// `state`) arrives, or `timeout` passes. Any other request to the redirect path (a
    /// bare `GET`, a prefetch, a stale tab, a page that guessed the port) gets an error
    /// page and is otherwise ignored: it cannot end the login. The browser's request is
    /// kept waiting until [`CallbackResponder::finish`] is called with the outcome.
    pub async fn wait(
        self,
        timeout: Duration,
        state: &str,
    ) -> Result<(CallbackParams, CallbackResponder)> {
        let (params_tx, params_rx) =
            oneshot::channel::<std::result::Result<CallbackParams, String>>();
        let (outcome_tx, outcome_rx) =
            watch::channel::<Option<std::result::Result<(), String>>>(None);
        let shared = Arc::new(Shared {
            path: self.path.clone(),
            state: state.to_string(),
            params_tx: Mutex::new(Some(params_tx)),
            outcome_rx,
        });
        let tasks: Vec<JoinHandle<()>> = self
            .listeners
            .into_iter()
            .map(|l| tokio::spawn(accept_loop(l, shared.clone())))
            .collect();
        let responder = CallbackResponder { outcome_tx };
        let result = tokio::time::timeout(timeout, params_rx).await;
        // Stop accepting now: the port is free again for the next login, while the
        // browser's connection, served by its own task, waits for the outcome.
        // Awaited, so that the port is closed before this returns: a second login right
        // after (a retry) binds the same stable port instead of finding it busy.
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        match result {
            Ok(Ok(Ok(params))) => Ok((params, responder)),
            Ok(Ok(Err(msg))) => {
                responder.finish(Err(msg.clone()));
                Err(Error::broke(
                    Step::Authorization,
                    self.redirect_uri,
                    Rule::Redirect(msg),
                ))
            }
            Ok(Err(_)) => Err(Error::broke(
                Step::Authorization,
                self.redirect_uri,
                Rule::Redirect("the redirect listener stopped".into()),
            )),
            Err(_) => {
                drop(responder);
                Err(Error::Timeout {
                    step: Step::Authorization,
                    url: self.redirect_uri,
                    secs: timeout.as_secs(),
                })
            }
        }
    }
}

async fn bind_all(addrs: &[IpAddr], port: u16) -> std::io::Result<Vec<TcpListener>> {
    let first = TcpListener::bind(SocketAddr::new(addrs[0], port)).await?;
    let port = first.local_addr()?.port();
    let mut out = vec![first];
    for ip in &addrs[1..] {
        // Best effort: IPv6 loopback may be disabled.
        if let Ok(l) = TcpListener::bind(SocketAddr::new(*ip, port)).await {
            out.push(l);
        }
    }
    Ok(out)
}

fn bind_error(host: &str, port: u16, e: std::io::Error) -> Error {
    Error::config_caused(
        format!(
            "cannot listen for the authorization redirect on {host}:{port}: {e}; {} (and \
             register that redirect URI)",
            crate::remedy::Remedy::ChooseRedirectPort
        ),
        e,
    )
}

struct Shared {
    path: String,
    /// The pending authorization's `state`: only a response carrying it is taken.
    state: String,
    params_tx: Mutex<Option<oneshot::Sender<std::result::Result<CallbackParams, String>>>>,
    outcome_rx: watch::Receiver<Option<std::result::Result<(), String>>>,
}

/// Sends the final page to the waiting browser. Dropping it without calling
/// [`CallbackResponder::finish`] shows the browser an error page.
#[derive(Debug)]
pub struct CallbackResponder {
    outcome_tx: watch::Sender<Option<std::result::Result<(), String>>>,
}

impl CallbackResponder {
    /// Renders the outcome in the browser.
    pub fn finish(self, outcome: std::result::Result<(), String>) {
        let _ = self.outcome_tx.send(Some(outcome));
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, shared.clone()));
            // No keep-alive: a browser that kept this connection open would send the
            // next login's redirect here, to a flow that is already over, instead of
            // to the new listener.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
) -> std::result::Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.uri().path() != shared.path {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This address only receives the authorization redirect.",
        ));
    }
    let query = req.uri().query().unwrap_or_default();
    if !carries_state(query, &shared.state) {
        let error = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.into_owned());
        tracing::warn!(
            error = ?error,
            "ignored a request to the redirect listener that is not the response to the \
             pending authorization (its state does not match); still waiting"
        );
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Not the pending authorization",
            "This is not the response to the login in progress (its state does not match), \
             so it was ignored; mcp-oauth is still waiting for that response. If you started \
             several logins, finish the newest one.",
        ));
    }
    let sender = shared.params_tx.lock().ok().and_then(|mut g| g.take());
    let Some(sender) = sender else {
        return Ok(page(
            StatusCode::OK,
            "Already handled",
            "This authorization response was already received. You can close this tab.",
        ));
    };
    let parsed = CallbackParams::from_query(query);
    let _ = sender.send(parsed);
    let mut rx = shared.outcome_rx.clone();
    // Hold the browser until the token exchange is done, so the page tells the truth.
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if let Some(o) = rx.borrow().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                return Err("the client stopped before finishing".to_string());
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("the client did not finish in time".into()));
    Ok(match outcome {
        Ok(()) => page(
            StatusCode::OK,
            "Authorized",
            "mcp-oauth received the tokens. You can close this tab and return to your terminal.",
        ),
        Err(msg) => page(StatusCode::BAD_REQUEST, "Authorization failed", &msg),
    })
}

/// Whether one of the query's `state` parameters is the pending one (a repeated `state`
/// still reaches the flow, which refuses it with its reason).
fn carries_state(query: &str, state: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "state" && v == state)
}

fn page(status: StatusCode, title: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{t}</h1><p>{m}</p></body></html>",
        t = html_escape(title),
        m = html_escape(message)
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(port: u16) -> RedirectSettings {
        RedirectSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            path: "/callback".into(),
        }
    }

    #[test]
    fn redirect_uri_without_a_listener() {
        let s = RedirectSettings::default();
        let port = stable_port("http://h/mcp");
        assert_eq!(
            redirect_uri_for(&s, "http://h/mcp").unwrap(),
            format!("http://127.0.0.1:{port}/callback")
        );
        let s = RedirectSettings {
            host: "::1".into(),
            port: Some(8765),
            path: "oauth/cb".into(),
        };
        assert_eq!(
            redirect_uri_for(&s, "http://h/mcp").unwrap(),
            "http://[::1]:8765/oauth/cb"
        );
        let s = RedirectSettings {
            host: "example.com".into(),
            ..Default::default()
        };
        assert!(redirect_uri_for(&s, "http://h/mcp").is_err());
    }

    #[tokio::test]
    async fn page_waits_for_the_outcome() {
        let l = LoopbackListener::bind(&settings(0), "http://x")
            .await
            .unwrap();
        let uri = l.redirect_uri().to_string();
        assert!(
            uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"),
            "{uri}"
        );
        let browser = tokio::spawn({
            let uri = uri.clone();
            async move {
                let r = reqwest::get(format!("{uri}?code=abc&state=s"))
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        });
        let (params, responder) = l.wait(Duration::from_secs(5), "s").await.unwrap();
        assert_eq!(params.code.as_ref().unwrap().expose(), "abc");
        assert!(!browser.is_finished());
        responder.finish(Err("token exchange failed: invalid_grant".into()));
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), browser)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 400);
        assert!(body.contains("invalid_grant"), "{body}");
    }

    #[tokio::test]
    async fn a_pooled_browser_connection_reaches_the_next_listener() {
        // One client with a connection pool, as a browser has: the second login's
        // redirect must reach the second listener, not the first flow's connection.
        let browser = reqwest::Client::new();
        let settings = settings(0);
        let first = LoopbackListener::bind(&settings, "http://x").await.unwrap();
        let uri = first.redirect_uri().to_string();
        let port: u16 = uri
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let b1 = browser.clone();
        let u1 = uri.clone();
        let t1 = tokio::spawn(async move {
            b1.get(format!("{u1}?code=one&state=s"))
                .send()
                .await
                .unwrap()
                .status()
        });
        let (p1, r1) = first.wait(Duration::from_secs(5), "s").await.unwrap();
        r1.finish(Ok(()));
        assert_eq!(t1.await.unwrap(), 200);
        assert_eq!(p1.code.unwrap().expose(), "one");

        let second = LoopbackListener::bind(
            &RedirectSettings {
                port: Some(port),
                ..settings
            },
            "http://x",
        )
        .await
        .unwrap();
        assert_eq!(second.redirect_uri(), uri);
        let t2 = tokio::spawn(async move {
            browser
                .get(format!("{uri}?code=two&state=s"))
                .send()
                .await
                .unwrap()
                .status()
        });
        let (p2, r2) = second.wait(Duration::from_secs(5), "s").await.unwrap();
        r2.finish(Ok(()));
        assert_eq!(p2.code.unwrap().expose(), "two");
        assert_eq!(t2.await.unwrap(), 200);
    }

    #[tokio::test]
    async fn other_paths_are_404_and_timeout_is_bounded() {
        let l = LoopbackListener::bind(&settings(0), "http://x")
            .await
            .unwrap();
        let base = l.redirect_uri().trim_end_matches("/callback").to_string();
        let probe = tokio::spawn(async move {
            reqwest::get(format!("{base}/favicon.ico"))
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        let err = l.wait(Duration::from_millis(300), "s").await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(probe.await.unwrap(), 404);
    }

    #[tokio::test]
    async fn stray_requests_are_answered_and_ignored() {
        let l = LoopbackListener::bind(&settings(0), "http://x")
            .await
            .unwrap();
        let uri = l.redirect_uri().to_string();
        let browser = tokio::spawn(async move {
            let mut statuses = Vec::new();
            // A bare GET (a prefetch), a response for another login, an error without
            // state, then the real one.
            for q in [
                "",
                "?code=evil&state=other",
                "?error=access_denied",
                "?code=good&state=s",
            ] {
                let r = reqwest::get(format!("{uri}{q}")).await.unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        });
        let (params, responder) = l.wait(Duration::from_secs(5), "s").await.unwrap();
        assert_eq!(params.code.as_ref().unwrap().expose(), "good");
        responder.finish(Ok(()));
        assert_eq!(browser.await.unwrap(), [400, 400, 400, 200]);
    }

    #[tokio::test]
    async fn the_port_is_free_when_wait_returns() {
        // A second login right after the first (a retry) binds the same stable port; the
        // first listener's accept tasks must be gone by then, not merely told to stop.
        let l = LoopbackListener::bind(&settings(0), "http://x")
            .await
            .unwrap();
        let after_colon = l.redirect_uri().rsplit(':').next().unwrap();
        let port: u16 = after_colon.split('/').next().unwrap().parse().unwrap();
        let e = l.wait(Duration::from_millis(50), "s").await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        LoopbackListener::bind(&settings(port), "http://x")
            .await
            .expect("the port is free again");
    }

    #[tokio::test]
    async fn explicit_busy_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = LoopbackListener::bind(&settings(port), "http://x")
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&port.to_string()), "{e}");
    }

    #[test]
    fn non_loopback_host_is_refused() {
        assert!(bind_addrs("example.com").is_err());
        assert!(bind_addrs("10.0.0.1").is_err());
        assert_eq!(bind_addrs("localhost").unwrap().len(), 2);
        assert!(bind_addrs("[::1]").is_ok());
    }

    #[test]
    fn stable_port_is_stable_and_in_range() {
        let p = stable_port("https://example.com/mcp");
        assert_eq!(p, stable_port("https://example.com/mcp"));
        assert!((10000..30000).contains(&p));
    }
}
