//! The network policy (issue #7): SSRF through discovery, plain-HTTP authorization
//! servers, redirects across origins, and tokens sent only to the resource they were
//! issued for.
//!
//! Only loopback traffic: a "public" MCP server is either an address from a documentation
//! range (`203.0.113.0/24`) whose discovery is refused before anything is sent, or a
//! loopback mock whose zone is set to public with [`AddressGuard::with_zone`]. The refused
//! targets (`169.254.169.254`, `10.0.0.7`, ...) are checked before any connection; the
//! tests that point at a loopback port count the connections it accepted (none).

use mcp_oauth::client::Reason;
use mcp_oauth::discovery;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{McpClient, McpClientOptions, RequestAuth};
use mcp_oauth::netpolicy::{AddressGuard, AddressPolicy, ServerZone};
use mcp_oauth::secret::AccessToken;
use mcp_oauth::store::{
    ClientAuthMethod, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore,
    MemoryStore, RegistrationKind, TokenSet,
};
use mcp_oauth::{OAuthClient, OAuthConfig, Step};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::fault_server::{Action, OnAccept, RawServer};
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found, query_map, redirect};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn http() -> HttpClient {
    HttpClient::new(HttpPolicy {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .unwrap()
}

fn challenge(rm: &str) -> Vec<String> {
    vec![format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{rm}\""
    )]
}

/// A loopback port that counts the connections it accepts (and closes each at once,
/// answering none).
async fn counting_listener() -> (String, Arc<AtomicUsize>, RawServer) {
    let server = RawServer::start(OnAccept::Close, |_, _| Action::Close).await;
    (server.base.clone(), server.accepted.clone(), server)
}

/// A public MCP server whose challenge points discovery at an address it must not
/// reach: refused at once, naming the step and the rule, before any connection, and
/// without falling back to other candidates.
#[tokio::test]
async fn public_server_cannot_point_resource_metadata_at_internal_addresses() {
    let (lo_base, accepted, _task) = counting_listener().await;
    let lo_port = lo_base.rsplit(':').next().unwrap().to_string();
    let cfg = OAuthConfig::new("https://203.0.113.10/mcp");
    for (target, class) in [
        (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "cloud instance metadata",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/",
            "cloud instance metadata",
        ),
        (
            "http://2852039166/latest/meta-data/",
            "cloud instance metadata",
        ),
        (
            "http://[::ffff:169.254.169.254]/",
            "cloud instance metadata",
        ),
        (
            "http://100.100.100.200/latest/meta-data/",
            "cloud instance metadata",
        ),
        (
            "http://10.0.0.5/.well-known/oauth-protected-resource",
            "private-network",
        ),
        ("https://192.168.1.1/prm", "private-network"),
        ("https://[fd12::1]/prm", "private-network"),
        ("http://[fe80::1]/prm", "link-local"),
        ("http://169.254.10.10/prm", "link-local"),
        ("http://0.0.0.0/prm", "unspecified"),
        (
            &format!("{lo_base}/.well-known/oauth-protected-resource"),
            "loopback",
        ),
        (&format!("http://localhost:{lo_port}/prm"), "loopback"),
        (&format!("http://[::1]:{lo_port}/prm"), "loopback"),
    ] {
        let t = Instant::now();
        let e = discovery::discover(&http(), &cfg, &challenge(target))
            .await
            .unwrap_err();
        let s = e.to_string();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{target}: {:?}",
            t.elapsed()
        );
        assert!(
            s.starts_with("protected resource metadata discovery: ")
                && s.contains("refused by the network policy"),
            "{target}: {s}"
        );
        assert!(s.contains(class), "{target}: {s}");
        let mcp_oauth::Error::Discovery { trace, .. } = e else {
            panic!("{s}")
        };
        // Nothing else was tried: no well-known URL of the server, no fallback.
        assert_eq!(trace.requested_urls().count(), 1, "{target}: {trace}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no connection reached the loopback port"
    );

    // The same through the client: nothing stored, nothing else attempted.
    let store = Arc::new(MemoryStore::new());
    let client = OAuthClient::new(
        cfg,
        http(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    let e = client
        .authorize(&challenge("http://169.254.169.254/"), Reason::Unauthorized)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "refused by the network policy: 169.254.169.254 is a cloud instance metadata address"
        ),
        "{e}"
    );
    assert!(store.list().unwrap().is_empty());
}

/// A loopback MCP server may use loopback metadata on another port and under the name
/// `localhost` (development servers, every test of this crate).
#[tokio::test]
async fn loopback_server_may_use_loopback_metadata() {
    let server = MockServer::start(|base, req| async move {
        match req.path.as_str() {
            "/prm" => {
                let mcp = base.replace("127.0.0.1", "localhost");
                json(
                    200,
                    json!({"resource": format!("{mcp}/mcp"), "authorization_servers": [mcp]}),
                )
            }
            "/.well-known/oauth-authorization-server" => {
                let b = base.replace("127.0.0.1", "localhost");
                json(
                    200,
                    json!({"issuer": b, "authorization_endpoint": format!("{b}/a"), "token_endpoint": format!("{b}/t"),
                           "code_challenge_methods_supported": ["S256"]}),
                )
            }
            _ => not_found(),
        }
    });
    let lh = server.base().replace("127.0.0.1", "localhost");
    let cfg = OAuthConfig::new(format!("{lh}/mcp"));
    let d = discovery::discover(&http(), &cfg, &challenge(&format!("{}/prm", server.base())))
        .await
        .expect("loopback to loopback is allowed");
    assert_eq!(d.issuer(), lh);
}

/// A mock MCP server on loopback that publishes `prm`, treated as a *public* server.
async fn public_world(prm: serde_json::Value) -> (MockServer, HttpClient, OAuthConfig) {
    let server = MockServer::start(move |base, req| {
        let mut prm = prm.clone();
        async move {
            match req.path.as_str() {
                "/.well-known/oauth-protected-resource/mcp" => {
                    prm["resource"] = json!(format!("{base}/mcp"));
                    json(200, prm)
                }
                _ => not_found(),
            }
        }
    });
    let cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    let guard = AddressGuard::with_zone(
        cfg.server_url.clone(),
        AddressPolicy::Strict,
        ServerZone::Public,
    );
    let http = http().with_guard(guard);
    (server, http, cfg)
}

/// A public server whose PRM names authorization servers on internal addresses:
/// refused before any request to them.
#[tokio::test]
async fn public_server_cannot_point_authorization_servers_at_internal_addresses() {
    let (lo_base, accepted, _task) = counting_listener().await;
    let lo_port = lo_base.rsplit(':').next().unwrap().to_string();
    for (issuer, class) in [
        ("https://10.0.0.7", "10.0.0.7 is a private-network address"),
        (
            "https://172.20.1.1/tenant",
            "172.20.1.1 is a private-network address",
        ),
        ("https://[fd00::7]", "fd00::7 is a private-network address"),
        (
            "https://169.254.169.254",
            "169.254.169.254 is a cloud instance metadata address",
        ),
        ("https://[fe80::2]", "fe80::2 is a link-local address"),
        (
            &format!("http://localhost:{lo_port}"),
            "is a loopback address",
        ),
    ] {
        let (_server, http, cfg) = public_world(json!({"authorization_servers": [issuer]})).await;
        let t = Instant::now();
        let e = discovery::discover(&http, &cfg, &[]).await.unwrap_err();
        let s = e.to_string();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{issuer}: {:?}",
            t.elapsed()
        );
        assert!(
            s.starts_with("authorization server metadata discovery: "),
            "{issuer}: {s}"
        );
        assert!(
            s.contains("refused by the network policy") && s.contains(class),
            "{issuer}: {s}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

/// The escape hatch, and the server's own host, in the same setting.
#[tokio::test]
async fn public_server_may_use_its_own_host_and_the_hatch_is_explicit() {
    // The server's own host (here 127.0.0.1, on another port) is the user's choice.
    let (server, http, cfg) =
        public_world(json!({"authorization_servers": ["http://127.0.0.1:9"]})).await;
    let e = discovery::discover(&http, &cfg, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("network policy"), "{e}");
    assert!(
        e.contains("Connection refused"),
        "tried, and found nothing listening: {e}"
    );
    drop(server);
    // The hatch is checked by the decision table (netpolicy unit tests); here only that it
    // is a setting of the configuration, off by default.
    assert_eq!(
        OAuthConfig::new("https://x").address_policy,
        AddressPolicy::Strict
    );
}

/// Endpoints of the authorization server metadata are checked too: a loopback MCP server
/// (the real zone) whose authorization server sends us to the cloud metadata service.
#[tokio::test]
async fn authorization_server_endpoints_at_metadata_addresses_are_refused() {
    for (reg, token) in [
        (
            Some("https://[fd00:ec2::254]/register"),
            "https://169.254.169.254/token",
        ),
        (None, "https://169.254.169.254/token"),
    ] {
        let registering = reg.is_some();
        let reg = reg.map(str::to_string);
        let server = MockServer::start(move |base, req| {
            let reg = reg.clone();
            async move {
                match (req.method.as_str(), req.path.as_str()) {
                    (_, "/.well-known/oauth-protected-resource/mcp") => json(
                        200,
                        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
                    ),
                    (_, "/.well-known/oauth-authorization-server") => {
                        let mut m = json!({"issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                                       "token_endpoint": token, "code_challenge_methods_supported": ["S256"]});
                        if let Some(r) = reg {
                            m["registration_endpoint"] = json!(r);
                        }
                        json(200, m)
                    }
                    ("GET", "/authorize") => {
                        let q = query_map(&req.query);
                        let iss: String =
                            url::form_urlencoded::byte_serialize(base.as_bytes()).collect();
                        redirect(&format!(
                            "{}?code=c0de-123456&state={}&iss={iss}",
                            q["redirect_uri"], q["state"]
                        ))
                    }
                    _ => not_found(),
                }
            }
        });
        let store = Arc::new(MemoryStore::new());
        let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
        cfg.redirect.port = Some(0);
        cfg.callback_timeout = Duration::from_secs(5);
        if !registering {
            cfg.client = Some(mcp_oauth::config::PreRegisteredClient {
                client_id: "pre".into(),
                ..Default::default()
            });
        }
        let client = OAuthClient::new(
            cfg,
            http(),
            store.clone(),
            Arc::new(FollowingBrowser::default()),
        );
        let e = client
            .authorize(&[], Reason::Login)
            .await
            .unwrap_err()
            .to_string();
        if registering {
            assert!(
                e.starts_with("client registration: https://[fd00:ec2::254]/register: refused by the network policy"),
                "{e}"
            );
        } else {
            assert!(
                e.starts_with(
                    "token exchange: https://169.254.169.254/token: refused by the network policy"
                ),
                "{e}"
            );
        }
        assert!(store.list().unwrap().is_empty());
    }
}

fn record(
    server_url: &str,
    token_endpoint: &str,
    access_token: &str,
    expires_in: i64,
) -> CredentialRecord {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    CredentialRecord {
        server_url: server_url.into(),
        resource: server_url.into(),
        issuer: "http://127.0.0.1:9".into(),
        token_endpoint: token_endpoint.into(),
        revocation_endpoint: None,
        resource_indicator: Some(server_url.into()),
        client: ClientRegistration {
            issuer: "http://127.0.0.1:9".into(),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            client_id: "c".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::None,
            kind: RegistrationKind::Dynamic,
            registered_at: now,
        },
        tokens: TokenSet {
            access_token: AccessToken::new(access_token),
            token_type: "Bearer".into(),
            refresh_token: Some(mcp_oauth::secret::RefreshToken::new(
                "rt-SECRET-ssrf-refresh-1",
            )),
            expires_at: Some((now as i64 + expires_in) as u64),
            scope: None,
            requested_scope: None,
            obtained_at: now,
        },
        grant: "authorization_code".into(),
        dpop_key: None,
    }
}

/// A stored record whose token endpoint is an internal address (a tampered file, or a
/// record from before this policy): the refresh is refused before anything is sent, and
/// the record stays as it was.
#[tokio::test]
async fn refresh_to_a_metadata_address_is_refused_and_the_record_kept() {
    let store = Arc::new(MemoryStore::new());
    let server_url = "http://127.0.0.1:9/mcp";
    let rec = record(
        server_url,
        "http://169.254.169.254/token",
        "at-SECRET-ssrf-1",
        -10,
    );
    store.save(&CredentialKey::new(server_url), &rec).unwrap();
    let client = OAuthClient::new(
        OAuthConfig::new(server_url),
        http(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    let e = client.valid_token().await.unwrap_err().to_string();
    assert!(
        e.starts_with("token refresh: http://169.254.169.254/token: refused by the network policy"),
        "{e}"
    );
    assert!(!e.contains("rt-SECRET"), "{e}");
    assert_eq!(
        store.load(&CredentialKey::new(server_url)).unwrap(),
        Some(rec)
    );
}

/// No plain-HTTP authorization server off loopback: not even its metadata is fetched.
#[tokio::test]
async fn plain_http_authorization_servers_are_refused_off_loopback() {
    let server = MockServer::start(|base, req| async move {
        match req.path.as_str() {
            "/.well-known/oauth-protected-resource/mcp" => json(
                200,
                json!({"resource": format!("{base}/mcp"), "authorization_servers": ["http://as.example.com"]}),
            ),
            _ => not_found(),
        }
    });
    let cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    let e = discovery::discover(&http(), &cfg, &[]).await.unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("\"http://as.example.com\" uses http") && s.contains("must use https"),
        "{s}"
    );
    let mcp_oauth::Error::Discovery { step, trace, .. } = e else {
        panic!()
    };
    assert_eq!(step, Step::AuthServerMetadata);
    assert!(
        !trace
            .requested_urls()
            .any(|u| u.contains("as.example.com/.well-known")),
        "{trace}"
    );

    // Endpoints of a (loopback) authorization server's metadata: every one must be https
    // unless on loopback, the revocation and device endpoints included.
    for (field, value) in [
        ("token_endpoint", "http://203.0.113.5/token"),
        ("registration_endpoint", "http://203.0.113.5/register"),
        ("revocation_endpoint", "http://203.0.113.5/revoke"),
        ("device_authorization_endpoint", "http://203.0.113.5/device"),
    ] {
        let server = MockServer::start(move |base, req| async move {
            match req.path.as_str() {
                "/.well-known/oauth-protected-resource/mcp" => json(
                    200,
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
                ),
                "/.well-known/oauth-authorization-server" => {
                    let mut m = json!({"issuer": base, "authorization_endpoint": format!("{base}/a"),
                                       "token_endpoint": format!("{base}/t"), "code_challenge_methods_supported": ["S256"]});
                    m[field] = json!(value);
                    json(200, m)
                }
                _ => not_found(),
            }
        });
        let cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
        let s = discovery::discover(&http(), &cfg, &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            s.contains(field) && s.contains("must use https"),
            "{field}: {s}"
        );
    }
}

/// Redirects during discovery: followed within the origin, never to another one.
#[tokio::test]
async fn discovery_redirects_stay_within_the_origin() {
    let other = MockServer::start(|base, _req| async move {
        json(
            200,
            json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
        )
    });
    let other_base = other.base().to_string();
    let server = MockServer::start(move |base, req| {
        let other_base = other_base.clone();
        async move {
            match req.path.as_str() {
                "/prm-elsewhere" => redirect(&format!(
                    "{other_base}/.well-known/oauth-protected-resource/mcp"
                )),
                "/prm-here" => redirect("/.well-known/oauth-protected-resource/mcp"),
                "/.well-known/oauth-protected-resource/mcp" => json(
                    200,
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
                ),
                "/.well-known/oauth-authorization-server" => json(
                    200,
                    json!({"issuer": base, "authorization_endpoint": format!("{base}/a"),
                           "token_endpoint": format!("{base}/t"), "code_challenge_methods_supported": ["S256"]}),
                ),
                _ => not_found(),
            }
        }
    });
    let cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    let d = discovery::discover(
        &http(),
        &cfg,
        &challenge(&format!("{}/prm-here", server.base())),
    )
    .await
    .expect("same-origin redirect followed");
    assert_eq!(d.issuer(), server.base());

    let d = discovery::discover(
        &http(),
        &cfg,
        &challenge(&format!("{}/prm-elsewhere", server.base())),
    )
    .await
    .expect("the well-known URL is used after the refused redirect");
    assert!(
        d.trace.to_string().contains("redirected to another origin"),
        "the refused redirect is in the trace: {}",
        d.trace
    );
    assert!(
        other.log().is_empty(),
        "the other origin was never contacted"
    );
}

/// A PRM (reached through a cross-origin `resource_metadata`) that names another
/// origin's resource: no token is requested for it, and nothing reaches that origin.
#[tokio::test]
async fn prm_naming_another_origin_gets_no_token() {
    let evil = MockServer::start(|_base, _req| async move { json(200, json!({})) });
    let evil_base = evil.base().to_string();
    let prm_host = MockServer::start(move |base, _req| {
        let evil_base = evil_base.clone();
        async move {
            json(
                200,
                json!({"resource": format!("{evil_base}/mcp"), "authorization_servers": [base]}),
            )
        }
    });
    let server = MockServer::start(|_base, _req| async move { not_found() });
    let store = Arc::new(MemoryStore::new());
    let client = OAuthClient::new(
        OAuthConfig::new(format!("{}/mcp", server.base())),
        http(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    let e = client
        .authorize(
            &challenge(&format!("{}/prm", prm_host.base())),
            Reason::Unauthorized,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("RFC 9728") && e.contains(evil.base()), "{e}");
    assert_eq!(
        prm_host.paths(),
        ["/prm"],
        "only the PRM was fetched: no metadata, no token request"
    );
    assert!(evil.log().is_empty());
    assert!(store.list().unwrap().is_empty());
}

/// A token is only ever sent to the resource it was issued for: not to another origin
/// the MCP server redirects to, and not when asked for headers for another URL.
#[tokio::test]
async fn token_never_follows_a_redirect_to_another_origin() {
    const AT: &str = "at-SECRET-only-for-the-resource-6d2f";
    let evil = MockServer::start(|_base, _req| async move {
        json(200, json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
    });
    let evil_base = evil.base().to_string();
    let server = MockServer::start(move |_base, req| {
        let evil_base = evil_base.clone();
        async move {
            let mut r = redirect(&format!("{evil_base}/mcp"));
            *r.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
            if req.path == "/mcp" { r } else { not_found() }
        }
    });
    let server_url = format!("{}/mcp", server.base());
    let store = Arc::new(MemoryStore::new());
    store
        .save(
            &CredentialKey::new(server_url.clone()),
            &record(&server_url, "http://127.0.0.1:9/t", AT, 3600),
        )
        .unwrap();
    let oauth = Arc::new(OAuthClient::new(
        OAuthConfig::new(server_url.clone()),
        http(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    ));
    // Headers: only for the resource.
    let ours = oauth.request_headers("POST", &server_url).await.unwrap();
    assert_eq!(
        ours.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {AT}")
    );
    let theirs = oauth
        .request_headers("POST", &format!("{}/mcp", evil.base()))
        .await
        .unwrap();
    assert!(theirs.is_empty(), "no credential for another origin");
    let same_origin_other_path = oauth
        .request_headers("POST", &format!("{}/admin", server.base()))
        .await
        .unwrap();
    assert!(
        same_origin_other_path.is_empty(),
        "nor for another path of the same origin"
    );

    // The MCP client: the server redirects the request (with its token) elsewhere.
    let mcp = McpClient::new(
        server_url.clone(),
        oauth.http().reqwest().clone(),
        McpClientOptions::default(),
        Some(oauth.clone() as Arc<dyn RequestAuth>),
    );
    let r = tokio::time::timeout(Duration::from_secs(10), mcp.connect())
        .await
        .expect("bounded");
    assert!(r.is_err(), "a redirect to another origin is not followed");
    assert!(evil.log().is_empty(), "the other origin received nothing");
    let sent = server.requests_to("/mcp");
    assert!(!sent.is_empty());
}
