//! Discovery behind an HTTP proxy (issue 17, item 4): a name that does not resolve here
//! would be resolved by the proxy, where the network policy cannot follow it (an intranet
//! name only the proxy knows). Such a URL is refused unless the user trusts the proxy's
//! resolution. The proxy is a loopback mock that records what it is asked for; the
//! resolver is injected (every name is unknown), and the environment too.

use mcp_oauth::OAuthConfig;
use mcp_oauth::discovery;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::BoxFuture;
use mcp_oauth::netpolicy::HostResolver;
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A DNS server that knows no name.
#[derive(Debug)]
struct NoSuchName;

impl HostResolver for NoSuchName {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host}: no such name"),
            ))
        })
    }
}

/// The client of a process whose environment names `proxy` as its HTTP proxy.
fn client_behind(proxy: &str) -> HttpClient {
    let proxy = proxy.to_string();
    HttpClient::with_environment(
        HttpPolicy {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        Arc::new(NoSuchName),
        move |k| (k == "HTTP_PROXY").then(|| proxy.clone()),
    )
    .unwrap()
}

/// A loopback HTTP proxy that records the requests it is asked to forward (as absolute
/// URLs) and answers them itself.
async fn recording_proxy() -> MockServer {
    MockServer::start(|_, _| async {
        json(
            200,
            json!({"resource": "http://intranet.corp.test/mcp", "authorization_servers": []}),
        )
    })
}

fn challenge() -> Vec<String> {
    vec![
        r#"Bearer resource_metadata="http://intranet.corp.test/.well-known/oauth-protected-resource""#
            .to_string(),
    ]
}

/// A server points discovery at an intranet name: it does not resolve here, and the
/// proxy would resolve it, so it is refused with the reason and the setting that allows
/// it; the proxy is asked for nothing.
#[tokio::test]
async fn a_name_only_the_proxy_could_resolve_is_refused() {
    let proxy = recording_proxy().await;
    let http = client_behind(proxy.base());
    // The MCP server itself is on loopback, which no proxy serves.
    let mcp = MockServer::start(|_, _| async { not_found() });
    let cfg = OAuthConfig::new(format!("{}/mcp", mcp.base()));
    let result = discovery::discover(&http, &cfg, &challenge()).await;
    let asked: Vec<String> = proxy
        .requests()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        asked.is_empty(),
        "the proxy was asked for {asked:?} ({result:?})"
    );
    let e = result.expect_err("refused").to_string();
    assert!(
        e.contains("intranet.corp.test") && e.contains("proxy") && e.contains("trust_proxy_dns"),
        "{e}"
    );
}

/// With trust_proxy_dns, the user lets the proxy resolve what does not resolve here: the
/// request goes through it (the documented way to reach an authorization server on the
/// proxy's network).
#[tokio::test]
async fn trust_proxy_dns_lets_the_proxy_resolve_it() {
    let proxy = recording_proxy().await;
    let http = client_behind(proxy.base());
    let mcp = MockServer::start(|_, _| async { not_found() });
    let mut cfg = OAuthConfig::new(format!("{}/mcp", mcp.base()));
    cfg.trust_proxy_dns = true;
    // The metadata the proxy answers names another resource: discovery fails after it.
    let _ = discovery::discover(&http, &cfg, &challenge()).await;
    let asked = proxy.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].path, "/.well-known/oauth-protected-resource");
}

/// Without a proxy, a name that does not resolve fails as it always did: at the
/// connection, with the resolver's error (nothing to fail closed against).
#[tokio::test]
async fn without_a_proxy_an_unknown_name_fails_at_the_connection() {
    let http = HttpClient::with_environment(HttpPolicy::default(), Arc::new(NoSuchName), |_| None)
        .unwrap();
    let mcp = MockServer::start(|_, _| async { not_found() });
    let cfg = OAuthConfig::new(format!("{}/mcp", mcp.base()));
    let e = discovery::discover(&http, &cfg, &challenge())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no such name") && !e.contains("trust_proxy_dns"),
        "{e}"
    );
}
