//! DNS rebinding around the network policy (issue 17, item 3): a name that resolves to
//! an allowed address when it is checked and to a refused one when the client connects.
//! The resolver is injected ([`HostResolver`]): no real DNS, and the only address ever
//! connected to is loopback (the "public" answers are documentation addresses that the
//! policy only looks at).

use mcp_oauth::authorize::browser::Browser;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{BoxFuture, RequestAuth};
use mcp_oauth::netpolicy::{AddressGuard, AddressPolicy, HostResolver, ServerZone};
use mcp_oauth::store::MemoryStore;
use mcp_oauth::{OAuthClient, OAuthConfig, Step};
use mcp_oauth_proxy::{Proxy, ProxyOptions};
use mcp_oauth_testkit::mock_server::{MockServer, json, redirect};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A DNS server that answers each name with the next address of its list (the last one
/// from then on), and records what was asked.
#[derive(Debug)]
struct Rebinding {
    answers: Vec<IpAddr>,
    lookups: AtomicUsize,
    asked: Mutex<Vec<String>>,
}

impl Rebinding {
    fn new(answers: &[&str]) -> Arc<Rebinding> {
        Arc::new(Rebinding {
            answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
            lookups: AtomicUsize::new(0),
            asked: Mutex::new(Vec::new()),
        })
    }
}

impl HostResolver for Rebinding {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(host.to_string());
            let n = self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(vec![self.answers[n.min(self.answers.len() - 1)]])
        })
    }
}

struct NoBrowser;

impl Browser for NoBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        panic!("no browser in this test ({url})");
    }
}

fn policy() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// A loopback server that records every request and answers 200 `{}`: the internal
/// service an attacker would like the client to reach.
async fn internal_service() -> MockServer {
    MockServer::start(|_, _| async { json(200, json!({})) })
}

fn port_of(base: &str) -> &str {
    base.rsplit(':').next().unwrap()
}

/// A public server's discovery names `as.rebind.test`, which resolves to a public
/// address when it is checked and to 127.0.0.1 when the client connects: nothing may
/// reach the loopback service.
#[tokio::test]
async fn a_name_rebound_after_the_check_is_not_connected_to() {
    let internal = internal_service().await;
    let dns = Rebinding::new(&["203.0.113.7", "127.0.0.1"]);
    let guard = AddressGuard::builder("https://mcp.example.com/mcp", AddressPolicy::Strict)
        .zone(ServerZone::Public)
        .resolver(dns.clone())
        .build();
    let http = HttpClient::with_resolver(policy(), dns.clone())
        .unwrap()
        .with_guard(guard);
    let url = format!(
        "http://as.rebind.test:{}/.well-known/oauth-authorization-server",
        port_of(internal.base())
    );
    let result = http.get(Step::AuthServerMetadata, &url).await;
    assert!(
        internal.paths().is_empty(),
        "the loopback service was reached through the rebound name: {:?} ({result:?})",
        internal.paths()
    );
    let e = result.expect_err("the connection is refused").to_string();
    assert!(
        e.contains("network policy") && e.contains("127.0.0.1") && e.contains("as.rebind.test"),
        "{e}"
    );
}

/// The proxy's connections to the MCP server go through the resolver of the server's
/// network policy: a server whose name was public when its zone was set (the zone
/// decides what its discovery may reach) and resolves to loopback when the proxy
/// connects is refused, not reached.
#[tokio::test]
async fn the_proxy_connects_only_where_the_servers_zone_was_decided() {
    let mcp = internal_service().await;
    let dns = Rebinding::new(&["203.0.113.9", "127.0.0.1"]);
    let url = format!("http://mcp.rebind.test:{}/mcp", port_of(mcp.base()));
    let oauth = OAuthClient::new(
        OAuthConfig::new(url.clone()),
        HttpClient::with_resolver(policy(), dns.clone()).unwrap(),
        Arc::new(MemoryStore::new()),
        Arc::new(NoBrowser),
    );
    let oauth: Arc<dyn RequestAuth> = Arc::new(oauth);
    let guard = oauth
        .address_guard()
        .expect("the OAuth client has a policy");
    assert_eq!(guard.zone().await, ServerZone::Public);

    let proxy = Proxy::new(url.clone(), ProxyOptions::default(), Some(oauth)).unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let input = format!("{init}\n");
    let (proxy_out, mut out) = tokio::io::duplex(1 << 16);
    tokio::time::timeout(
        Duration::from_secs(20),
        proxy.run(input.as_bytes(), proxy_out, std::future::pending()),
    )
    .await
    .expect("the proxy ends")
    .unwrap();
    let mut output = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut out, &mut output)
        .await
        .unwrap();
    assert!(
        mcp.paths().is_empty(),
        "the proxy reached {} through the rebound name: {:?}",
        mcp.base(),
        mcp.paths()
    );
    let reply: serde_json::Value = serde_json::from_slice(&output).unwrap();
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("network policy"), "{reply}");
}

/// The policy holds for the connection of a redirect too: a same-origin redirect whose
/// new connection finds the name rebound to the cloud metadata address is refused there
/// (nothing is sent to it: the refusal comes from the resolver).
#[tokio::test]
async fn a_redirect_connects_only_to_checked_addresses() {
    let server = MockServer::start(|_, req| async move {
        match req.path.as_str() {
            "/start" => {
                let mut r = redirect("/next");
                // A new connection for the redirect, so a new lookup.
                r.headers_mut()
                    .insert("connection", "close".parse().unwrap());
                r
            }
            _ => json(200, json!({"reached": req.path})),
        }
    });
    // A loopback server's discovery may use loopback; never the metadata service.
    let dns = Rebinding::new(&["127.0.0.1", "127.0.0.1", "169.254.169.254"]);
    let guard = AddressGuard::builder("http://127.0.0.1:1/mcp", AddressPolicy::Strict)
        .zone(ServerZone::Loopback)
        .resolver(dns.clone())
        .build();
    let http = HttpClient::with_resolver(policy(), dns.clone())
        .unwrap()
        .with_guard(guard);
    let url = format!("http://as.rebind.test:{}/start", port_of(server.base()));
    let e = http
        .get(Step::AuthServerMetadata, &url)
        .await
        .expect_err("the redirect's connection is refused")
        .to_string();
    assert!(
        e.contains("169.254.169.254") && e.contains("cloud instance metadata"),
        "{e}"
    );
    assert_eq!(server.paths(), ["/start"], "only the first hop was served");
    assert_eq!(dns.lookups.load(Ordering::SeqCst), 3);
}
