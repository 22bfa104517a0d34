//! The engine against servers that break the rules on purpose: each case must end in a
//! clear error naming the URL and the rule, with nothing requested that should not be
//! (no authorization request after a bad PRM, no token request after a bad `iss`) and
//! nothing written to the store.

use mcp_oauth::client::Reason;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::store::{CredentialStore, MemoryStore};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::mock_server::{
    MockServer, json, not_found, query_map, redirect, text, urlenc,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct World {
    /// `None`: the correct `<base>/mcp`.
    prm_resource: Option<String>,
    /// `None`: the correct issuer (the base URL).
    published_issuer: Option<String>,
    s256: Option<Vec<&'static str>>,
    iss: Iss,
    iss_supported: bool,
    as_metadata_html: bool,
    as_metadata_huge: bool,
    as_metadata_hangs: bool,
    /// Serve a PRM at all?
    prm: bool,
    /// The PRM URL answers with an HTML page (200), as single-page apps answer every path.
    prm_html: bool,
    as_metadata: bool,
    /// Serve `/register` at all?
    registration: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Iss {
    Correct,
    Absent,
    Wrong,
}

impl Default for World {
    fn default() -> Self {
        Self {
            prm_resource: None,
            published_issuer: None,
            s256: Some(vec!["S256"]),
            iss: Iss::Correct,
            iss_supported: true,
            as_metadata_html: false,
            as_metadata_huge: false,
            as_metadata_hangs: false,
            prm: true,
            prm_html: false,
            as_metadata: true,
            registration: true,
        }
    }
}

async fn serve(w: World) -> MockServer {
    MockServer::start(move |base, req| {
        let w = w.clone();
        async move {
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") if w.prm_html => {
                    text(200, "text/html", "<html><body>Welcome</body></html>")
                }
                ("GET", "/.well-known/oauth-protected-resource/mcp") if w.prm => json(
                    200,
                    json!({
                        "resource": w.prm_resource.clone().unwrap_or(format!("{base}/mcp")),
                        "authorization_servers": [base],
                        "scopes_supported": ["mcp:read"],
                    }),
                ),
                ("GET", "/.well-known/oauth-authorization-server") if w.as_metadata => {
                    if w.as_metadata_hangs {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    if w.as_metadata_html {
                        return text(200, "text/html", "<html><body>Sign in</body></html>");
                    }
                    if w.as_metadata_huge {
                        return text(200, "application/json", vec![b' '; 3 * 1024 * 1024]);
                    }
                    let mut m = json!({
                        "issuer": w.published_issuer.clone().unwrap_or(base.clone()),
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/register"),
                        "response_types_supported": ["code"],
                        "authorization_response_iss_parameter_supported": w.iss_supported,
                    });
                    if let Some(s) = &w.s256 {
                        m["code_challenge_methods_supported"] = json!(s);
                    }
                    json(200, m)
                }
                ("POST", "/register") if w.registration => {
                    json(201, json!({"client_id": "client-1"}))
                }
                ("GET", "/authorize") => {
                    let q = query_map(&req.query);
                    let mut loc =
                        format!("{}?code=the-code&state={}", q["redirect_uri"], q["state"]);
                    match w.iss {
                        Iss::Correct => loc.push_str(&format!("&iss={}", urlenc(&base))),
                        Iss::Wrong => loc.push_str("&iss=https%3A%2F%2Fevil.example.com"),
                        Iss::Absent => {}
                    }
                    redirect(&loc)
                }
                ("POST", "/token") => json(
                    200,
                    json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1"}),
                ),
                _ => not_found(),
            }
        }
    })
}

fn config(base: &str) -> OAuthConfig {
    let mut cfg = OAuthConfig::new(format!("{base}/mcp"));
    cfg.redirect.port = Some(0);
    cfg.callback_timeout = Duration::from_secs(5);
    cfg
}

fn client_for(cfg: OAuthConfig, policy: HttpPolicy, store: Arc<MemoryStore>) -> OAuthClient {
    OAuthClient::new(
        cfg,
        HttpClient::new(policy).unwrap(),
        store,
        Arc::new(FollowingBrowser::default()),
    )
}

fn client(base: &str, policy: HttpPolicy, store: Arc<MemoryStore>) -> OAuthClient {
    client_for(config(base), policy, store)
}

fn challenge(base: &str) -> Vec<String> {
    vec![format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
    )]
}

async fn run(
    w: World,
) -> (
    MockServer,
    Arc<MemoryStore>,
    mcp_oauth::Result<mcp_oauth::store::CredentialRecord>,
) {
    run_with(w, HttpPolicy::default(), None).await
}

async fn run_with(
    w: World,
    policy: HttpPolicy,
    header: Option<Vec<String>>,
) -> (
    MockServer,
    Arc<MemoryStore>,
    mcp_oauth::Result<mcp_oauth::store::CredentialRecord>,
) {
    let server = serve(w).await;
    let store = Arc::new(MemoryStore::new());
    let c = client(server.base(), policy, store.clone());
    let header = header.unwrap_or_else(|| challenge(server.base()));
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        c.authorize(&header, Reason::Unauthorized),
    )
    .await
    .expect("the flow must end in bounded time");
    (server, store, r)
}

fn store_is_empty(store: &MemoryStore) -> bool {
    store.list().unwrap().is_empty()
}

#[tokio::test]
async fn happy_path_sends_resource_verbatim_and_never_probes_root() {
    let (server, store, r) = run(World::default()).await;
    let rec = r.expect("flow succeeds");
    assert_eq!(rec.resource, format!("{}/mcp", server.base()));
    assert_eq!(rec.issuer, server.base());
    let authz = &server.requests_to("/authorize")[0];
    let q = query_map(&authz.query);
    assert_eq!(q["resource"], format!("{}/mcp", server.base()));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "mcp:read");
    let token = &server.requests_to("/token")[0];
    let form = query_map(&token.body);
    assert_eq!(form["resource"], format!("{}/mcp", server.base()));
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code_verifier"].len(), 43);
    assert!(
        !server
            .paths()
            .iter()
            .any(|p| p == "/.well-known/oauth-protected-resource")
    );
    assert_eq!(store.list().unwrap().len(), 1);
}

#[tokio::test]
async fn wrong_resource_is_refused_before_any_authorization() {
    let w = World {
        prm_resource: Some("https://evil.example.com/mcp".into()),
        ..Default::default()
    };
    let (server, store, r) = run(w).await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("RFC 9728") && e.contains("https://evil.example.com/mcp"),
        "{e}"
    );
    assert!(
        e.contains("/.well-known/oauth-protected-resource/mcp"),
        "names the PRM URL: {e}"
    );
    assert!(server.requests_to("/authorize").is_empty());
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let w = World {
        published_issuer: Some("https://attacker.example.com".into()),
        ..Default::default()
    };
    let (server, store, r) = run(w).await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("attacker.example.com") && e.contains("RFC 8414"),
        "{e}"
    );
    assert!(e.contains("/.well-known/oauth-authorization-server"), "{e}");
    assert!(server.requests_to("/authorize").is_empty());
    assert!(server.requests_to("/register").is_empty());
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn missing_or_wrong_pkce_metadata_is_refused() {
    let (_, store, r) = run(World {
        s256: None,
        ..Default::default()
    })
    .await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("code_challenge_methods_supported") && e.contains("allow_missing_pkce_metadata"),
        "{e}"
    );
    assert!(store_is_empty(&store));
    let (server, _, r) = run(World {
        s256: Some(vec!["plain"]),
        ..Default::default()
    })
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("without S256"), "{e}");
    assert!(server.requests_to("/authorize").is_empty());
}

#[tokio::test]
async fn wrong_iss_stops_before_the_token_endpoint() {
    for supported in [true, false] {
        let w = World {
            iss: Iss::Wrong,
            iss_supported: supported,
            ..Default::default()
        };
        let (server, store, r) = run(w).await;
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("evil.example.com") && e.contains("RFC 9207"),
            "{e}"
        );
        assert!(server.requests_to("/token").is_empty());
        assert!(store_is_empty(&store));
    }
    let (server, _, r) = run(World {
        iss: Iss::Absent,
        ..Default::default()
    })
    .await;
    assert!(r.unwrap_err().to_string().contains("has no iss"));
    assert!(server.requests_to("/token").is_empty());
    let (_, _, r) = run(World {
        iss: Iss::Absent,
        iss_supported: false,
        ..Default::default()
    })
    .await;
    r.expect("no iss, not advertised: proceed");
}

#[tokio::test]
async fn html_metadata_is_skipped_and_reported() {
    let (_, store, r) = run(World {
        as_metadata_html: true,
        ..Default::default()
    })
    .await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("not JSON") && e.contains("/.well-known/oauth-authorization-server"),
        "{e}"
    );
    assert!(
        e.contains("/.well-known/openid-configuration"),
        "tried the OIDC candidate too: {e}"
    );
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn oversized_metadata_is_refused() {
    let (_, store, r) = run(World {
        as_metadata_huge: true,
        ..Default::default()
    })
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("larger than"), "{e}");
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn hanging_server_times_out_in_bounded_time() {
    let policy = HttpPolicy {
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let start = Instant::now();
    let (_, store, r) = run_with(
        World {
            as_metadata_hangs: true,
            ..Default::default()
        },
        policy,
        None,
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("no answer from") && e.contains("/.well-known/oauth-authorization-server"),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn malformed_challenge_falls_back_to_the_path_inserted_well_known() {
    let header = vec!["Bearer resource_metadata=\"unterminated".to_string()];
    let (server, _, r) = run_with(World::default(), HttpPolicy::default(), Some(header)).await;
    r.expect("discovery recovers through the well-known URL");
    let prm = server
        .paths()
        .into_iter()
        .find(|p| p.contains("oauth-protected-resource"))
        .unwrap();
    assert_eq!(prm, "/.well-known/oauth-protected-resource/mcp");
}

#[tokio::test]
async fn relative_resource_metadata_is_resolved() {
    let header =
        vec!["Bearer resource_metadata=\"/.well-known/oauth-protected-resource/mcp\"".to_string()];
    let (server, _, r) = run_with(World::default(), HttpPolicy::default(), Some(header)).await;
    r.expect("relative URL resolved against the request URL");
    assert_eq!(
        server
            .requests_to("/.well-known/oauth-protected-resource/mcp")
            .len(),
        1
    );
}

#[tokio::test]
async fn legacy_fallback_uses_default_endpoints() {
    let w = World {
        prm: false,
        as_metadata: false,
        ..Default::default()
    };
    let (server, store, r) = run_with(w, HttpPolicy::default(), Some(vec!["Bearer".into()])).await;
    let rec = r.expect("2025-03-26 fallback works");
    assert_eq!(rec.token_endpoint, format!("{}/token", server.base()));
    assert_eq!(server.requests_to("/register").len(), 1);
    assert_eq!(store.list().unwrap().len(), 1);
    // Both well-knowns were tried, the path-inserted one first.
    let paths = server.paths();
    let pi = paths
        .iter()
        .position(|p| p == "/.well-known/oauth-protected-resource/mcp")
        .unwrap();
    let root = paths
        .iter()
        .position(|p| p == "/.well-known/oauth-protected-resource")
        .unwrap();
    assert!(pi < root);
}

#[tokio::test]
async fn a_configured_metadata_url_that_is_a_well_known_one_is_asked_once() {
    let server = serve(World {
        as_metadata_html: true,
        ..Default::default()
    })
    .await;
    let as_url = format!("{}/.well-known/oauth-authorization-server", server.base());
    let mut cfg = config(server.base());
    cfg.auth_server_metadata_url = Some(as_url.clone());
    let c = client_for(cfg, HttpPolicy::default(), Arc::new(MemoryStore::new()));
    let e = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not JSON") && e.contains(&as_url), "{e}");
    assert!(
        e.contains("asked already, as auth_server_metadata_url"),
        "{e}"
    );
    assert_eq!(
        server
            .requests_to("/.well-known/oauth-authorization-server")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_failed_default_endpoint_says_why_the_defaults_were_used() {
    // The PRM URL that the challenge names answers with a web page, the origin has no AS
    // metadata: the 2025-03-26 defaults are tried, and /register is 404. The error must
    // not stop at "/register answered 404": it says that endpoint was a default, assumed
    // for want of metadata, and lists what the metadata URLs answered.
    let w = World {
        prm_html: true,
        as_metadata: false,
        registration: false,
        ..Default::default()
    };
    let (server, store, r) = run(w).await;
    let err = r.unwrap_err();
    // The error from /register is kept whole inside, for callers that match on it.
    match &err {
        mcp_oauth::Error::AtDefaultEndpoint { error, .. } => assert!(
            matches!(**error, mcp_oauth::Error::Status { status: 404, .. }),
            "{error:?}"
        ),
        other => panic!("not an error at a default endpoint: {other:?}"),
    }
    let e = err.to_string();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base());
    assert!(e.starts_with("client registration: "), "{e}");
    assert!(
        !e.contains("client registration: client registration"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}/register answered HTTP 404", server.base())),
        "{e}"
    );
    assert!(e.contains("2025-03-26 default"), "{e}");
    assert!(
        e.contains("no protected resource metadata was usable"),
        "{e}"
    );
    assert!(e.contains(&prm_url) && e.contains("not JSON"), "{e}");
    assert!(store_is_empty(&store));
}

#[tokio::test]
async fn a_registration_endpoint_from_metadata_fails_without_the_fallback_story() {
    let w = World {
        registration: false,
        ..Default::default()
    };
    let (server, _, r) = run(w).await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains(&format!("{}/register answered HTTP 404", server.base())),
        "{e}"
    );
    assert!(!e.contains("2025-03-26"), "{e}");
}

#[tokio::test]
async fn dcr_registration_is_reused_for_the_same_issuer() {
    let server = serve(World::default()).await;
    let store = Arc::new(MemoryStore::new());
    // The default redirect port is stable per server, so the redirect URI, and with it
    // the registration, stays the same across logins.
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(5);
    let c = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    c.authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap();
    c.authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap();
    assert_eq!(server.requests_to("/register").len(), 1);
    let redirects: Vec<String> = server
        .requests_to("/authorize")
        .iter()
        .map(|r| query_map(&r.query)["redirect_uri"].clone())
        .collect();
    // The browser's two requests: the client this process registered is not checked
    // again before the second.
    assert_eq!(redirects.len(), 2);
    assert_eq!(redirects[0], redirects[1]);

    // The next process checks the stored client once at the authorization endpoint
    // (a throwaway request that names no scope), then reuses it.
    let next = OAuthClient::new(
        c.config().clone(),
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    next.authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap();
    assert_eq!(server.requests_to("/register").len(), 1);
    let with_scope: Vec<bool> = server
        .requests_to("/authorize")
        .iter()
        .map(|r| query_map(&r.query).contains_key("scope"))
        .collect();
    assert_eq!(with_scope, [true, true, false, true]);
}

#[tokio::test]
async fn a_registration_the_server_no_longer_accepts_is_replaced() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let registrations = Arc::new(AtomicUsize::new(0));
    // Set once the server has forgotten client-1 (say, it restarted with an in-memory
    // store); its authorization endpoint does not look the client up, its token endpoint
    // does.
    let forgot = Arc::new(AtomicBool::new(false));
    let (regs, gone) = (registrations.clone(), forgot.clone());
    let server = MockServer::start(move |base, req| {
        let (regs, gone) = (regs.clone(), gone.clone());
        async move {
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") => json(
                    200,
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
                ),
                ("GET", "/.well-known/oauth-authorization-server") => json(
                    200,
                    json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/register"),
                        "code_challenge_methods_supported": ["S256"],
                    }),
                ),
                ("POST", "/register") => {
                    let n = regs.fetch_add(1, Ordering::SeqCst) + 1;
                    json(201, json!({"client_id": format!("client-{n}")}))
                }
                ("GET", "/authorize") => {
                    let q = query_map(&req.query);
                    redirect(&format!(
                        "{}?code=c&state={}",
                        q["redirect_uri"], q["state"]
                    ))
                }
                ("POST", "/token") => {
                    if gone.load(Ordering::SeqCst)
                        && query_map(&req.body)["client_id"] == "client-1"
                    {
                        json(
                            401,
                            json!({"error": "invalid_client", "error_description": "unknown client"}),
                        )
                    } else {
                        json(
                            200,
                            json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600}),
                        )
                    }
                }
                _ => not_found(),
            }
        }
    });
    let store = Arc::new(MemoryStore::new());
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(5);
    let c = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::default()),
    );
    let rec = c
        .authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap();
    assert_eq!(rec.client.client_id, "client-1");
    forgot.store(true, Ordering::SeqCst);
    // The token endpoint refuses the stored client-1: the client forgets it, registers
    // client-2 and authorizes once more, in the same call.
    let rec = c
        .authorize(&challenge(server.base()), Reason::Login)
        .await
        .expect("registers anew and authorizes once more");
    assert_eq!(rec.client.client_id, "client-2");
    assert_eq!(registrations.load(Ordering::SeqCst), 2);
    assert_eq!(server.requests_to("/token").len(), 3);
}

#[tokio::test]
async fn a_client_registered_moments_ago_and_refused_is_not_registered_again() {
    // A token endpoint that refuses the new client's authentication (as the MCP Python
    // SDK's does for client_secret_basic): registering again would only repeat it.
    let server = MockServer::start(move |base, req| async move {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/.well-known/oauth-protected-resource/mcp") => json(
                200,
                json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
            ),
            ("GET", "/.well-known/oauth-authorization-server") => json(
                200,
                json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "registration_endpoint": format!("{base}/register"),
                    "code_challenge_methods_supported": ["S256"],
                }),
            ),
            ("POST", "/register") => json(201, json!({"client_id": "c1"})),
            ("GET", "/authorize") => {
                let q = query_map(&req.query);
                redirect(&format!(
                    "{}?code=c&state={}",
                    q["redirect_uri"], q["state"]
                ))
            }
            ("POST", "/token") => json(
                401,
                json!({"error": "invalid_client", "error_description": "Missing client_id"}),
            ),
            _ => not_found(),
        }
    });
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(5);
    let c = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        Arc::new(MemoryStore::new()),
        Arc::new(FollowingBrowser::default()),
    );
    let e = c
        .authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_client"), "{e}");
    assert_eq!(server.requests_to("/register").len(), 1);
    assert_eq!(server.requests_to("/authorize").len(), 1, "one browser");
}
