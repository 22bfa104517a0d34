//! The one HTTP client every OAuth and MCP request goes through, and its policy:
//! a connect and a total timeout on every request, a size cap on metadata bodies,
//! redirects followed only within the same origin (so a discovery document cannot
//! bounce us, or a token, to another host), rustls, and the proxy environment
//! (`HTTPS_PROXY`, `NO_PROXY`, ...) honoured by reqwest.

use crate::error::{Error, Result, Step};
use std::time::Duration;

/// Knobs of the HTTP policy. The defaults suit interactive use.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Time to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time for a whole OAuth request (headers and body).
    pub request_timeout: Duration,
    /// Largest metadata/token/registration body accepted.
    pub max_body_bytes: usize,
    /// Most same-origin redirects followed for one request.
    pub max_redirects: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// A `reqwest::Client` built with [`HttpPolicy`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: HttpPolicy,
    /// The network policy of one MCP server's OAuth traffic ([`HttpClient::for_server`]).
    guard: Option<std::sync::Arc<crate::netpolicy::AddressGuard>>,
}

/// A response read in full (up to the size cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub headers: http::HeaderMap,
}

impl Fetched {
    /// Does the body look like JSON (by content type, or by its first byte when the
    /// server sent no or a generic content type)?
    pub fn looks_like_json(&self) -> bool {
        match self.content_type.as_deref().map(|c| c.to_ascii_lowercase()) {
            Some(ct) if ct.contains("json") => true,
            Some(ct) if ct.starts_with("text/html") => false,
            _ => self
                .body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{'),
        }
    }

    pub fn text_excerpt(&self) -> String {
        crate::util::excerpt(&String::from_utf8_lossy(&self.body), 200)
    }
}

impl HttpClient {
    pub fn new(policy: HttpPolicy) -> Result<Self> {
        let max_redirects = policy.max_redirects;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error("too many redirects");
            }
            let same_origin = attempt
                .previous()
                .last()
                .is_some_and(|prev| prev.origin() == attempt.url().origin());
            if same_origin {
                attempt.follow()
            } else {
                // Hand the 3xx back to the caller, who reports it: a redirect to another
                // origin during OAuth is either a misconfiguration or an attack.
                attempt.stop()
            }
        });
        let inner = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .redirect(redirect)
            .user_agent(concat!("mcp-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner,
            policy,
            guard: None,
        })
    }

    /// The same client, checking every request it sends through [`get`](Self::get) and
    /// [`send`](Self::send) against the network policy of the MCP server `server_url`
    /// (see [`crate::netpolicy`]) before anything is sent. The OAuth client, discovery and
    /// `doctor` use it; MCP traffic (through [`reqwest`](Self::reqwest)) is not checked.
    pub fn for_server(
        &self,
        server_url: &str,
        policy: crate::netpolicy::AddressPolicy,
    ) -> HttpClient {
        if let Some(g) = &self.guard
            && g.server_url() == server_url
            && g.policy() == policy
        {
            return self.clone();
        }
        HttpClient {
            guard: Some(crate::netpolicy::AddressGuard::new(server_url, policy)),
            ..self.clone()
        }
    }

    /// Like [`for_server`](Self::for_server) with a guard built by the caller.
    pub fn with_guard(&self, guard: std::sync::Arc<crate::netpolicy::AddressGuard>) -> HttpClient {
        HttpClient {
            guard: Some(guard),
            ..self.clone()
        }
    }

    /// `Ok` when the network policy lets this client send a request to `url` (always,
    /// without [`for_server`](Self::for_server)); the refusal, naming the step and the
    /// URL, otherwise. Nothing is sent to `url`.
    pub async fn check_address(&self, step: Step, url: &str) -> Result<()> {
        match &self.guard {
            Some(g) => g
                .check(url)
                .await
                .map_err(|rule| Error::rule(step, url, rule)),
            None => Ok(()),
        }
    }

    /// The underlying client, for MCP traffic (which sets its own per-request timeout).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// GET `url` asking for JSON and read the body up to the cap.
    pub async fn get(&self, step: Step, url: &str) -> Result<Fetched> {
        let req = self
            .inner
            .get(url)
            .header(http::header::ACCEPT, "application/json");
        self.send(step, url, req).await
    }

    /// Send a prepared request and read the body up to the cap.
    pub async fn send(
        &self,
        step: Step,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Fetched> {
        self.check_address(step, url).await?;
        let secs = self.policy.request_timeout.as_secs();
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(step, url, &e, secs))?;
        self.read(step, url, resp).await
    }

    async fn read(&self, step: Step, url: &str, mut resp: reqwest::Response) -> Result<Fetched> {
        let secs = self.policy.request_timeout.as_secs();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if resp.status().is_redirection() {
            let to = headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no Location)");
            return Err(Error::rule(
                step,
                url,
                format!(
                    "redirected to another origin ({to}); cross-origin redirects are not followed"
                ),
            ));
        }
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cap = self.policy.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large(step, url, cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::from_reqwest(step, url, &e, secs))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_large(step, url, cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: url.to_string(),
            status,
            content_type,
            body,
            headers,
        })
    }
}

fn too_large(step: Step, url: &str, cap: usize) -> Error {
    Error::rule(
        step,
        url,
        format!("response body is larger than the {cap}-byte limit"),
    )
}
