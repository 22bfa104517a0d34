//! The proxy's HTTP client for MCP traffic, and the response type the relay reads.
//!
//! By default the proxy sends through hyper's pooled client (`hyper-util`, with the
//! library's one TLS configuration, [`mcp_oauth::http::tls_config`]) directly. Every
//! relayed message is one request, and on that path reqwest's own layers show in `perf`
//! under the benchmark in `bench/`: it converts the URL to a URI, clones its connector
//! service, and passes each request through a redirect layer that parses the URL once
//! more and a retry layer. Without them the proxy's CPU time per small call in the
//! benchmark's bursts fell by about a quarter (38-40 to 26-28 µs). The few things
//! reqwest did for us are done here: redirects within the server's origin, the user
//! agent, the connect timeout.
//!
//! reqwest is still used when the environment routes the server through an HTTP proxy
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, the system settings; its proxy support is
//! complete), and when the caller brings its own client ([`super::Proxy::with_client`]).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use mcp_oauth::error::error_chain;
use mcp_oauth::http::{ConnectResolver, proxied};
use std::time::Duration;

/// Redirects followed within the server's origin before giving up.
const MAX_REDIRECTS: usize = 5;
/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);

pub(crate) const USER_AGENT: &str = concat!("mcp-oauth-proxy/", env!("CARGO_PKG_VERSION"));

/// Where the proxy's requests go through.
// One value per proxy, reached on every request: its size is moot, a box an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Client {
    /// hyper's pooled client, used directly (the default).
    Hyper(HyperClient),
    /// A reqwest client (an HTTP proxy from the environment, or the caller's client).
    Reqwest(reqwest::Client),
}

#[derive(Clone)]
pub(crate) struct HyperClient {
    inner: legacy::Client<HttpsConnector<HttpConnector<ConnectResolver>>, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Client::Hyper(_) => "Client::Hyper",
            Client::Reqwest(_) => "Client::Reqwest",
        })
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) struct SendFailure {
    /// Nothing was sent: the connection could not be established.
    pub connect: bool,
    /// What went wrong, with its causes.
    pub message: String,
}

impl Client {
    /// The client for the MCP endpoint `url`: hyper's, unless the environment routes
    /// `url` through an HTTP proxy (loopback never is: a loopback server is not
    /// reachable through a proxy, the rule of [`mcp_oauth::http::HttpClient`] too).
    /// Names are resolved through `connect` (the network policy's resolver when the
    /// proxy authorizes with an [`mcp_oauth::OAuthClient`]).
    pub(crate) fn for_url(
        url: &str,
        connect_timeout: Duration,
        connect: ConnectResolver,
    ) -> mcp_oauth::Result<Client> {
        let matcher = Matcher::from_system();
        if proxied(url, &matcher) {
            tracing::debug!(
                url,
                "an HTTP proxy from the environment applies; using reqwest"
            );
            // The proxy's host is the environment's choice, not held to the policy.
            let connect =
                connect.with_proxy_hosts(mcp_oauth::http::system_proxy_hosts(&matcher).into());
            return Ok(Client::Reqwest(super::http_client_resolving(
                connect_timeout,
                connect,
            )?));
        }
        Ok(Client::Hyper(HyperClient::new(connect_timeout, connect)?))
    }

    /// Sends one request. `uri` is `url` parsed (the caller keeps the MCP endpoint's
    /// parsed once); `None` parses `url` here.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        uri: Option<&Uri>,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, SendFailure> {
        match self {
            Client::Hyper(h) => h.send(method, url, uri, headers, body).await,
            Client::Reqwest(r) => {
                let mut req = r.request(method, url).headers(headers);
                if let Some(b) = body {
                    req = req.body(b);
                }
                // Boxed: reqwest's future is large, and would make every request's
                // state machine as large on the hyper path too.
                Box::pin(req.send())
                    .await
                    .map(Response::Reqwest)
                    .map_err(|e| SendFailure {
                        connect: e.is_connect() && mcp_oauth::http::refusal_in(&e).is_none(),
                        message: error_chain(&e),
                    })
            }
        }
    }
}

impl HyperClient {
    fn new(connect_timeout: Duration, connect: ConnectResolver) -> mcp_oauth::Result<HyperClient> {
        let mut tls = mcp_oauth::http::tls_config()?;
        // hyper-rustls sets the ALPN protocols itself (the same two), and refuses a
        // configuration that has them.
        tls.alpn_protocols.clear();
        let mut tcp = HttpConnector::new_with_resolver(connect);
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let inner = legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(HyperClient { inner })
    }

    async fn send(
        &self,
        mut method: Method,
        url: &str,
        uri: Option<&Uri>,
        mut headers: HeaderMap,
        mut body: Option<Bytes>,
    ) -> Result<Response, SendFailure> {
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        let mut current = match uri {
            Some(u) => u.clone(),
            None => url.parse::<Uri>().map_err(|e| SendFailure {
                connect: false,
                message: format!("invalid URL {url:?}: {e}"),
            })?,
        };
        let mut hops = 0;
        loop {
            let mut req = http::Request::new(Full::new(body.clone().unwrap_or_default()));
            *req.method_mut() = method.clone();
            *req.uri_mut() = current.clone();
            *req.headers_mut() = headers.clone();
            let resp = self.inner.request(req).await.map_err(|e| SendFailure {
                // Refused by the network policy: trying again would only repeat it.
                connect: e.is_connect() && mcp_oauth::http::refusal_in(&e).is_none(),
                message: error_chain(&e),
            })?;
            let Some(next) = same_origin_redirect(&current, &resp) else {
                return Ok(Response::Hyper(resp));
            };
            if hops >= MAX_REDIRECTS {
                return Err(SendFailure {
                    connect: false,
                    message: format!("{url}: too many redirects (more than {MAX_REDIRECTS})"),
                });
            }
            hops += 1;
            // What browsers and reqwest do: 303, and 301/302 after a POST, continue as
            // a GET without the body; 307 and 308 repeat the request as it was.
            let status = resp.status();
            if status == StatusCode::SEE_OTHER && method != Method::HEAD
                || (status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && method == Method::POST
            {
                method = Method::GET;
                body = None;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
            }
            tracing::debug!(from = %current, to = %next, status = status.as_u16(), "following a redirect within the origin");
            current = next;
        }
    }
}

/// The target of a redirect response when it stays on `from`'s origin; other
/// redirects are handed back to the caller as they are (credentials never follow a
/// redirect to another origin).
fn same_origin_redirect<B>(from: &Uri, resp: &http::Response<B>) -> Option<Uri> {
    if !matches!(
        resp.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        return None;
    }
    let location = resp.headers().get(header::LOCATION)?.to_str().ok()?;
    let base = url::Url::parse(&from.to_string()).ok()?;
    let next = base.join(location).ok()?;
    if next.origin() != base.origin() {
        return None;
    }
    next.as_str().parse().ok()
}

/// A response from either client.
#[derive(Debug)]
pub(crate) enum Response {
    Hyper(http::Response<Incoming>),
    Reqwest(reqwest::Response),
}

impl Response {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Response::Hyper(r) => r.status(),
            Response::Reqwest(r) => r.status(),
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            Response::Hyper(r) => r.headers(),
            Response::Reqwest(r) => r.headers(),
        }
    }

    /// The body's length, when the server declared it.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            Response::Hyper(r) => r.body().size_hint().exact(),
            Response::Reqwest(r) => r.content_length(),
        }
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Response::Hyper(r) => loop {
                match r.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(error_chain(&e)),
                    // Trailers carry no data: read on.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            Response::Reqwest(r) => r.chunk().await.map_err(|e| error_chain(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: u16, location: &str) -> http::Response<()> {
        http::Response::builder()
            .status(status)
            .header(header::LOCATION, location)
            .body(())
            .unwrap()
    }

    #[test]
    fn only_redirects_within_the_origin_are_followed() {
        let from: Uri = "http://127.0.0.1:8080/mcp".parse().unwrap();
        let next = |status, location| same_origin_redirect(&from, &redirect(status, location));
        assert_eq!(
            next(307, "/mcp/").map(|u| u.to_string()),
            Some("http://127.0.0.1:8080/mcp/".into())
        );
        assert_eq!(
            next(308, "http://127.0.0.1:8080/v2/mcp").map(|u| u.to_string()),
            Some("http://127.0.0.1:8080/v2/mcp".into())
        );
        // Another port, host or scheme is another origin.
        assert_eq!(next(307, "http://127.0.0.1:9090/mcp"), None);
        assert_eq!(next(302, "https://127.0.0.1:8080/mcp"), None);
        assert_eq!(next(301, "http://evil.example/mcp"), None);
        // Not a redirect, or no usable Location.
        assert_eq!(next(200, "/elsewhere"), None);
        assert_eq!(next(304, "/elsewhere"), None);
        let no_location = http::Response::builder().status(307).body(()).unwrap();
        assert_eq!(same_origin_redirect(&from, &no_location), None);
    }

    #[test]
    fn an_http_proxy_from_the_environment_is_used_except_for_loopback() {
        let matcher = Matcher::builder()
            .http("http://proxy.internal:3128")
            .https("http://proxy.internal:3128")
            .no("corp.example")
            .build();
        assert!(proxied("https://mcp.example.com/mcp", &matcher));
        assert!(proxied("http://10.0.0.1/mcp", &matcher));
        assert!(
            !proxied("https://mcp.corp.example/mcp", &matcher),
            "NO_PROXY"
        );
        for url in [
            "http://127.0.0.1:1/mcp",
            "http://localhost/mcp",
            "http://[::1]:8/mcp",
        ] {
            assert!(!proxied(url, &matcher), "{url}");
        }
        let none = Matcher::builder().build();
        assert!(!proxied("https://mcp.example.com/mcp", &none));
    }
}
