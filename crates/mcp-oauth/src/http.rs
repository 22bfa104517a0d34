//! The one HTTP client every OAuth and MCP request goes through, and its policy:
//! a connect and a total timeout on every request, a size cap on metadata bodies,
//! redirects followed only within the same origin (so a discovery document cannot
//! bounce us, or a token, to another host), rustls, and the proxy environment
//! (`HTTPS_PROXY`, `NO_PROXY`, ...) honoured by reqwest.

use crate::error::{Error, Result, Rule, Step};
use crate::netpolicy::{AddressGuard, HostResolver};
use hyper_util::client::proxy::matcher::Matcher;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

// The resolver the clients connect through.
mod resolve;
pub use resolve::ConnectResolver;

/// The process's one TLS client configuration, shared by every HTTP client the library
/// builds (the OAuth client's reqwest, the proxy's hyper client): rustls with the
/// platform's certificate verifier, TLS 1.2 and 1.3, ALPN h2 and http/1.1, which is
/// what reqwest sets up by itself; plus the CA certificates of the PEM file named by
/// `MCP_OAUTH_EXTRA_CA_CERTS` (a corporate or VPN CA), trusted beside the system's.
/// Shared because the verifier reads the system's certificate store when it is made
/// (about 150 files here, milliseconds of a proxy's cold start): once is enough.
pub fn tls_config() -> Result<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok((**c).clone());
    }
    let extra = match std::env::var_os(crate::util::EXTRA_CA_CERTS_ENV) {
        Some(path) if !path.is_empty() => extra_roots(std::path::Path::new(&path))?,
        _ => Vec::new(),
    };
    let config = build_tls_config(extra)?;
    // Two threads racing here both build one; either is the same configuration.
    Ok((**CONFIG.get_or_init(|| Arc::new(config))).clone())
}

fn build_tls_config(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig> {
    let fail = |m: String| Error::config(format!("cannot set up TLS: {m}"));
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        extra_roots_verifier(extra, provider.clone())
    }
    .map_err(|e| fail(format!("the platform's certificate verifier: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(not(target_os = "android"))]
fn extra_roots_verifier(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> std::result::Result<rustls_platform_verifier::Verifier, rustls::Error> {
    rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
}

#[cfg(target_os = "android")]
fn extra_roots_verifier(
    _: Vec<rustls::pki_types::CertificateDer<'static>>,
    _: Arc<rustls::crypto::CryptoProvider>,
) -> std::result::Result<rustls_platform_verifier::Verifier, rustls::Error> {
    Err(rustls::Error::General(format!(
        "{} is not supported on Android",
        crate::util::EXTRA_CA_CERTS_ENV
    )))
}

/// The certificates of a PEM file, or an error naming the variable and the file.
fn extra_roots(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let var = crate::util::EXTRA_CA_CERTS_ENV;
    let say = |why: String| format!("{var}={}: {why}", path.display());
    let bad = |why: String, e: rustls::pki_types::pem::Error| Error::config_caused(say(why), e);
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read it ({e})"), e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM file of certificates ({e})"), e))?;
    if certs.is_empty() {
        return Err(Error::config(say(
            "holds no PEM certificate (BEGIN CERTIFICATE)".into(),
        )));
    }
    Ok(certs)
}

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
    /// The same client that follows no redirect at all ([`HttpClient::get_first_hop`]).
    first_hop: reqwest::Client,
    policy: HttpPolicy,
    /// Resolves the names the clients connect to (the system's resolver by default).
    resolver: Arc<dyn HostResolver>,
    /// The HTTP proxies from the environment.
    proxies: Proxies,
    /// The network policy of one MCP server's OAuth traffic ([`HttpClient::for_server`]).
    guard: Option<Arc<AddressGuard>>,
}

/// A response read in full (up to the size cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL the request was sent to.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
    /// The body, up to the policy's size cap.
    pub body: Vec<u8>,
    /// The response headers.
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

    /// The start of the body on one line, for messages.
    pub fn text_excerpt(&self) -> String {
        crate::util::excerpt(&String::from_utf8_lossy(&self.body), 200)
    }
}

impl HttpClient {
    /// A client with `policy`, resolving names with the system resolver.
    pub fn new(policy: HttpPolicy) -> Result<Self> {
        Self::with_resolver(policy, Arc::new(crate::netpolicy::SystemResolver))
    }

    /// A client whose names are resolved by `resolver` (for its connections and for the
    /// network policy's checks): the way tests answer for DNS.
    pub fn with_resolver(policy: HttpPolicy, resolver: Arc<dyn HostResolver>) -> Result<Self> {
        let proxies = Proxies::from_environment(|k| std::env::var(k).ok(), true)?;
        Self::build_with(policy, resolver, proxies)
    }

    /// A client whose proxy settings come from `env` (the variables `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, in either case) instead of the process's
    /// environment and the system's settings; names are resolved by `resolver`. For
    /// tests.
    pub fn with_environment(
        policy: HttpPolicy,
        resolver: Arc<dyn HostResolver>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let proxies = Proxies::from_environment(env, false)?;
        Self::build_with(policy, resolver, proxies)
    }

    fn build_with(
        policy: HttpPolicy,
        resolver: Arc<dyn HostResolver>,
        proxies: Proxies,
    ) -> Result<Self> {
        let connect = ConnectResolver::new(resolver.clone(), None);
        let (inner, first_hop) = Self::build_both(&policy, &proxies, connect)?;
        Ok(Self {
            inner,
            first_hop,
            policy,
            resolver,
            proxies,
            guard: None,
        })
    }

    /// The client that follows redirects within the origin, and the one that follows none.
    fn build_both(
        policy: &HttpPolicy,
        proxies: &Proxies,
        connect: ConnectResolver,
    ) -> Result<(reqwest::Client, reqwest::Client)> {
        let connect = connect.with_proxy_hosts(proxies.hosts.clone());
        let redirect = same_origin_redirects(policy.max_redirects);
        let inner = Self::build(policy, proxies, redirect, connect.clone())?;
        let first_hop = Self::build(policy, proxies, reqwest::redirect::Policy::none(), connect)?;
        Ok((inner, first_hop))
    }

    fn build(
        policy: &HttpPolicy,
        proxies: &Proxies,
        redirect: reqwest::redirect::Policy,
        connect: ConnectResolver,
    ) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .redirect(redirect)
            .dns_resolver(Arc::new(connect))
            .user_agent(concat!("mcp-oauth/", env!("CARGO_PKG_VERSION")));
        if let Some(list) = &proxies.reqwest {
            // Replace reqwest's own reading of the environment with the same proxies,
            // minus loopback: a loopback server (the demo, a local MCP server, the
            // redirect listener) is never reachable through a proxy.
            builder = builder.no_proxy();
            for p in list {
                builder = builder.proxy(p.clone());
            }
        }
        builder
            .build()
            .map_err(|e| Error::config_caused(format!("cannot build the HTTP client: {e}"), e))
    }

    /// The same client, checking every request it sends through [`get`](Self::get) and
    /// [`send`](Self::send) against the network policy of the MCP server `server_url`
    /// (see [`crate::netpolicy`]) before anything is sent, and connecting (through
    /// [`reqwest`](Self::reqwest) too) only to addresses the policy allows. The OAuth
    /// client, discovery and `doctor` use it.
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
        self.with_guard(
            AddressGuard::builder(server_url, policy)
                .resolver(self.resolver.clone())
                .build(),
        )
    }

    /// [`for_server`](Self::for_server) for `config`'s server and address policy, with the
    /// hosts of the URLs it configures (authorization server metadata URL, enterprise
    /// IdP token endpoint) trusted as the user's choice.
    pub fn for_config(&self, config: &crate::OAuthConfig) -> HttpClient {
        let trusted: Vec<&str> = config
            .auth_server_metadata_url
            .as_deref()
            .into_iter()
            .chain(
                config
                    .enterprise
                    .as_ref()
                    .map(|e| e.idp_token_endpoint.as_str()),
            )
            .collect();
        let guard = AddressGuard::builder(&config.server_url, config.address_policy)
            .trusting(trusted)
            .resolver(self.resolver.clone())
            .trust_proxy_dns(config.trust_proxy_dns)
            .build();
        if let Some(g) = &self.guard
            && g.server_url() == guard.server_url()
            && g.policy() == guard.policy()
            && g.trusted_hosts() == guard.trusted_hosts()
            && g.trusts_proxy_dns() == guard.trusts_proxy_dns()
        {
            return self.clone();
        }
        self.with_guard(guard)
    }

    /// Like [`for_server`](Self::for_server) with a guard built by the caller. The clients
    /// are built anew: they connect through the guard's resolver.
    pub fn with_guard(&self, guard: Arc<AddressGuard>) -> HttpClient {
        let connect = ConnectResolver::new(guard.resolver().clone(), Some(guard.clone()));
        // The settings are those this client was built with, so building cannot fail now
        // (reqwest's builder fails only on settings).
        let (inner, first_hop) = Self::build_both(&self.policy, &self.proxies, connect)
            .expect("an HTTP client was built before with the same settings");
        HttpClient {
            inner,
            first_hop,
            policy: self.policy.clone(),
            resolver: guard.resolver().clone(),
            proxies: self.proxies.clone(),
            guard: Some(guard),
        }
    }

    /// The network policy this client applies, if any.
    pub fn guard(&self) -> Option<&Arc<AddressGuard>> {
        self.guard.as_ref()
    }

    /// The resolver of this client's connections.
    pub fn resolver(&self) -> &Arc<dyn HostResolver> {
        &self.resolver
    }

    /// `Ok` when the network policy lets this client send a request to `url` (always,
    /// without [`for_server`](Self::for_server)); the refusal, naming the step and the
    /// URL, otherwise. Nothing is sent to `url`.
    pub async fn check_address(&self, step: Step, url: &str) -> Result<()> {
        match &self.guard {
            Some(g) => g
                .check_via(url, self.proxies.applies_to(url))
                .await
                .map_err(|refusal| Error::broke(step, url, Rule::NetworkPolicy(refusal))),
            None => Ok(()),
        }
    }

    /// The underlying client, for MCP traffic (which sets its own per-request timeout).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// The policy the client was built with.
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

    /// GET `url` without following any redirect: a 3xx comes back as it is (status and
    /// headers, no body), anything else is read up to the cap. For looking at what an
    /// endpoint answers first (the authorization endpoint, about a stored client), without
    /// walking into the pages behind it.
    pub async fn get_first_hop(&self, step: Step, url: &str) -> Result<Fetched> {
        self.check_address(step, url).await?;
        let secs = self.policy.request_timeout.as_secs();
        let resp = self
            .first_hop
            .get(url)
            .send()
            .await
            .map_err(|e| request_error(step, url, e, secs))?;
        if resp.status().is_redirection() {
            return Ok(Fetched {
                url: url.to_string(),
                status: resp.status().as_u16(),
                content_type: None,
                body: Vec::new(),
                headers: resp.headers().clone(),
            });
        }
        self.read(step, url, resp).await
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
            .map_err(|e| request_error(step, url, e, secs))?;
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
            return Err(Error::broke(
                step,
                url,
                Rule::CrossOriginRedirect { to: to.to_string() },
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
            .map_err(|e| Error::from_reqwest(step, url, e, secs))?
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

/// Loopback addresses are always excluded from proxying, in addition to `NO_PROXY`.
const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1";

/// The HTTP proxies a client goes through, read once when it is made.
#[derive(Debug, Clone)]
struct Proxies {
    /// Given to reqwest in place of its own reading; `None`: reqwest reads the system's
    /// settings itself (the environment names no proxy).
    reqwest: Option<Vec<reqwest::Proxy>>,
    /// The same choice, to tell which URLs go through a proxy.
    matcher: Arc<Matcher>,
    /// The proxies' hosts: connections to them are not held to the network policy.
    hosts: Arc<[String]>,
}

impl Proxies {
    /// The proxies `get` names (see [`env_proxies`]); when it names none, the system's
    /// settings with `system` (what reqwest reads then), else none at all.
    fn from_environment(get: impl Fn(&str) -> Option<String>, system: bool) -> Result<Proxies> {
        let list = env_proxies(&get)?;
        if !list.is_empty() {
            let urls = proxy_urls(&get);
            let hosts = urls
                .iter()
                .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_string))
                .collect::<Vec<_>>();
            let mut matcher = Matcher::builder().no(no_proxy_list(&get));
            if let Some(https) = urls.https {
                matcher = matcher.https(https);
            }
            if let Some(http) = urls.http {
                matcher = matcher.http(http);
            }
            return Ok(Proxies {
                reqwest: Some(list),
                matcher: Arc::new(matcher.build()),
                hosts: hosts.into(),
            });
        }
        if !system {
            return Ok(Proxies {
                reqwest: Some(Vec::new()),
                matcher: Arc::new(Matcher::builder().build()),
                hosts: Arc::from(Vec::new()),
            });
        }
        let matcher = Matcher::from_system();
        let hosts = system_proxy_hosts(&matcher);
        Ok(Proxies {
            reqwest: None,
            matcher: Arc::new(matcher),
            hosts: hosts.into(),
        })
    }

    /// Does a request to `url` go through a proxy? Never for loopback.
    fn applies_to(&self, url: &str) -> bool {
        proxied(url, &self.matcher)
    }
}

/// The redirect policy of every client that may carry a credential: redirects are
/// followed within the origin of the previous hop only, at most `max` of them. A
/// redirect to another origin is handed back to the caller, who reports it: during
/// OAuth or MCP traffic it is either a misconfiguration or an attack, and following it
/// would take the request (and its token) to a host it was not meant for.
pub fn same_origin_redirects(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error("too many redirects");
        }
        let same_origin = attempt
            .previous()
            .last()
            .is_some_and(|prev| prev.origin() == attempt.url().origin());
        if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Does `matcher` (proxy settings) route `url` through a proxy? Never a loopback URL:
/// the clients exclude loopback from proxying.
pub fn proxied(url: &str, matcher: &Matcher) -> bool {
    let loopback = url::Url::parse(url).is_ok_and(|u| crate::util::is_loopback_url(&u));
    !loopback
        && url
            .parse::<http::Uri>()
            .is_ok_and(|u| matcher.intercept(&u).is_some())
}

/// `NO_PROXY` with loopback added (see [`env_proxies`]).
fn no_proxy_list(get: &impl Fn(&str) -> Option<String>) -> String {
    match ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|n| get(n).filter(|v| !v.trim().is_empty()))
    {
        Some(list) => format!("{LOOPBACK_NO_PROXY},{list}"),
        None => LOOPBACK_NO_PROXY.to_string(),
    }
}

/// The proxy URLs the environment names, per scheme (`ALL_PROXY` for either).
struct ProxyUrls {
    https: Option<String>,
    http: Option<String>,
}

impl ProxyUrls {
    fn iter(&self) -> impl Iterator<Item = &String> {
        self.https.iter().chain(self.http.iter())
    }
}

fn proxy_urls(get: &impl Fn(&str) -> Option<String>) -> ProxyUrls {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| get(n).filter(|v| !v.trim().is_empty()))
    };
    ProxyUrls {
        https: first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
        http: first(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]),
    }
}

/// The hosts of the proxies `matcher` names (the system's settings: macOS, Windows; the
/// environment elsewhere), found by asking which proxy a URL of each scheme would go
/// through.
pub fn system_proxy_hosts(matcher: &Matcher) -> Vec<String> {
    ["http://mcp-oauth.invalid/", "https://mcp-oauth.invalid/"]
        .iter()
        .filter_map(|u| u.parse::<http::Uri>().ok())
        .filter_map(|u| matcher.intercept(&u))
        .filter_map(|i| i.uri().host().map(str::to_string))
        .collect()
}

/// The proxies the environment asks for (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, in
/// either case), each excluding `NO_PROXY` and loopback. Empty when none is set.
fn env_proxies(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<reqwest::Proxy>> {
    let no_proxy = no_proxy_list(get);
    let mut out = Vec::new();
    let ProxyUrls { https, http } = proxy_urls(get);
    for (value, is_https) in [(https, true), (http, false)] {
        if let Some(v) = value {
            let made = if is_https {
                reqwest::Proxy::https(&v)
            } else {
                reqwest::Proxy::http(&v)
            };
            // The proxy URL may hold credentials: name the variable's role, not its value.
            let p = made.map_err(|_| {
                Error::config("a proxy URL in the environment (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY) is not a valid URL")
            })?;
            out.push(p.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
        }
    }
    Ok(out)
}

/// The error of a request that got no response: the network policy's refusal as a rule
/// of `step` (a connection to an address it does not allow), else the transport error.
pub(crate) fn request_error(
    step: Step,
    url: &str,
    e: impl crate::error::ReqwestFailure,
    secs: u64,
) -> Error {
    match refusal_in(e.error()) {
        Some(r) => Error::broke(step, url, Rule::NetworkPolicy(r.0.clone())),
        None => Error::from_reqwest(step, url, e, secs),
    }
}

/// The network policy's refusal among the causes of `e`, if it is one.
pub fn refusal_in<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a crate::netpolicy::Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<crate::netpolicy::Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

fn too_large(step: Step, url: &str, cap: usize) -> Error {
    Error::broke(step, url, Rule::SizeLimit { limit: cap })
}

#[cfg(test)]
mod proxy_tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn no_proxy_variables_means_no_override() {
        assert!(env_proxies(&env(&[])).unwrap().is_empty());
    }

    #[test]
    fn each_scheme_gets_its_proxy() {
        let p = env_proxies(&env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("http_proxy", "http://p2:3128"),
        ]))
        .unwrap();
        assert_eq!(p.len(), 2);
        let p = env_proxies(&env(&[("ALL_PROXY", "http://proxy:3128")])).unwrap();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_bad_proxy_url_is_a_clear_error_without_its_value() {
        let e = env_proxies(&env(&[("HTTPS_PROXY", "http://user:hunter2@[bad")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("hunter2"), "{e}");
    }

    #[tokio::test]
    async fn loopback_bypasses_a_configured_proxy() {
        // A "proxy" that refuses everything: if loopback went through it, the request fails.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok((mut s, _)) = server.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                    .await;
            }
        });
        let proxies = env_proxies(&env(&[(
            "HTTP_PROXY",
            &format!("http://127.0.0.2:{dead_port}"),
        )]))
        .unwrap();
        let mut b = reqwest::Client::builder().no_proxy();
        for p in proxies {
            b = b.proxy(p);
        }
        let client = b.build().unwrap();
        let r = client
            .get(format!("http://127.0.0.1:{port}/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn extra_ca_files_that_cannot_be_used_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for (path, why) in [
            (&missing, "cannot read it"),
            (&empty, "holds no PEM certificate"),
        ] {
            let e = extra_roots(path).unwrap_err().to_string();
            assert!(e.contains("MCP_OAUTH_EXTRA_CA_CERTS="), "{e}");
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_configuration_offers_h2_and_http1() {
        let c = build_tls_config(Vec::new()).unwrap();
        assert_eq!(c.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
