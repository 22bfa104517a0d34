//! The engine's rules for what real authorization servers do (issue 15), each against an
//! in-process server that behaves the way the real one is documented to, so that every
//! branch is reached on demand: an OpenID provider that drops `offline_access` without
//! consent and refuses an empty grant (oidc-provider), one that refuses the widened
//! request, one that forgets its clients (a restart), a token endpoint that fails once
//! (a gateway), one that wants `scope` on refresh (Entra). The same behaviours are proven
//! against the real servers in `crates/mcp-oauth-cli/tests/seed_servers.rs`.

use mcp_oauth::client::Reason;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::store::{ClientKey, CredentialKey, CredentialStore, MemoryStore};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::mock_server::{
    MockServer, json, not_found, query_map, redirect, text, urlenc,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OpenID provider with oidc-provider's documented habits.
#[derive(Default)]
struct Provider {
    /// Bumped by a "restart": clients registered before are unknown afterwards.
    generation: AtomicUsize,
    registered: Mutex<Vec<String>>,
    /// Refuse every request that asks for offline_access (as some servers refuse it for
    /// dynamically registered clients).
    refuse_offline_access: AtomicBool,
    /// The user clicks "Deny" at the next authorization.
    deny_next: AtomicBool,
    /// Answer the next token request with a gateway's 503 page.
    fail_next_token: AtomicBool,
    /// Refuse a refresh without `scope` (Entra's AADSTS900144).
    refresh_requires_scope: AtomicBool,
    rotation: AtomicUsize,
    /// The MCP server (`/mcp`) refuses every token with FastMCP's answer to a token it
    /// cannot validate; with `Some(scope)`, its challenge to a token also names that scope.
    refuse_every_token: AtomicBool,
    refusal_scope: Mutex<Option<String>>,
    /// `Some(scopes)`: a client may ask only for the scopes the server had when it
    /// registered (the MCP Python SDK's authorization server and FastMCP's OAuth proxy
    /// record them at registration); these are the server's scopes now.
    bound_scopes: Mutex<Option<String>>,
    /// An unknown client at the authorization endpoint gets the MCP Python SDK's answer
    /// (a 400 with `invalid_request`, "Client ID '…' not found") instead of
    /// oidc-provider's page.
    sdk_style_unknown_client: AtomicBool,
    /// The scopes each client registered with, by client id.
    registered_scopes: Mutex<std::collections::HashMap<String, String>>,
}

impl Provider {
    fn known(&self, client_id: &str) -> bool {
        self.registered
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == client_id)
    }

    fn restart(&self) {
        self.registered.lock().unwrap().clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

async fn provider_server(p: Arc<Provider>) -> MockServer {
    MockServer::start(move |base, req| {
        let p = p.clone();
        async move {
            let q = query_map(&req.query);
            let form = query_map(&req.body);
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") => json(
                    200,
                    // FastMCP's defaults: no scopes, the issuer with a trailing slash.
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/")], "scopes_supported": []}),
                ),
                ("GET", "/.well-known/oauth-authorization-server") => json(
                    200,
                    json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/reg"),
                        "code_challenge_methods_supported": ["S256"],
                        "scopes_supported": ["openid", "offline_access"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "authorization_response_iss_parameter_supported": true,
                    }),
                ),
                ("POST", "/reg") => {
                    let id = format!(
                        "client-{}-{}",
                        p.generation.load(Ordering::SeqCst),
                        p.registered.lock().unwrap().len() + 1
                    );
                    p.registered.lock().unwrap().push(id.clone());
                    if let Some(now) = p.bound_scopes.lock().unwrap().clone() {
                        p.registered_scopes.lock().unwrap().insert(id.clone(), now);
                    }
                    json(
                        201,
                        json!({"client_id": id, "token_endpoint_auth_method": "none"}),
                    )
                }
                ("GET", "/auth") => {
                    if !p.known(&q["client_id"])
                        && p.sdk_style_unknown_client.load(Ordering::SeqCst)
                    {
                        return json(
                            400,
                            json!({"error": "invalid_request", "error_description": format!("Client ID '{}' not found", q["client_id"]), "state": q.get("state")}),
                        );
                    }
                    if !p.known(&q["client_id"]) {
                        // No redirect for an unknown client (RFC 6749 §4.1.2.1): a page.
                        return text(
                            400,
                            "text/html",
                            "<html><h1>oops! something went wrong</h1><pre>error: invalid_client\nerror_description: client is invalid</pre></html>",
                        );
                    }
                    let back = |extra: &str| {
                        redirect(&format!(
                            "{}?{extra}&state={}&iss={}",
                            q["redirect_uri"],
                            q["state"],
                            urlenc(&base)
                        ))
                    };
                    if p.deny_next.swap(false, Ordering::SeqCst) {
                        return back("error=access_denied&error_description=User+denied+access");
                    }
                    let scope = q.get("scope").cloned().unwrap_or_default();
                    if let Some(allowed) = p.registered_scopes.lock().unwrap().get(&q["client_id"])
                        && let Some(missing) = scope
                            .split(' ')
                            .find(|s| !s.is_empty() && !allowed.split(' ').any(|a| a == *s))
                    {
                        return back(&format!(
                            "error=invalid_scope&error_description={}",
                            urlenc(&format!("Client was not registered with scope {missing}"))
                        ));
                    }
                    let asks_offline = scope.split(' ').any(|s| s == "offline_access");
                    if asks_offline && p.refuse_offline_access.load(Ordering::SeqCst) {
                        return back(
                            "error=invalid_scope&error_description=offline_access+is+not+allowed",
                        );
                    }
                    let consent = q.get("prompt").is_some_and(|v| v.contains("consent"));
                    // OIDC Core §11: offline_access only with consent; nothing else asked.
                    let granted: Vec<&str> = scope
                        .split(' ')
                        .filter(|s| !s.is_empty() && (*s != "offline_access" || consent))
                        .collect();
                    if granted.is_empty() && !scope.is_empty() {
                        return back("error=access_denied&error_description=no+scope+was+granted");
                    }
                    back(&format!("code=code-{}", q["client_id"]))
                }
                ("POST", "/token") => {
                    if p.fail_next_token.swap(false, Ordering::SeqCst) {
                        return text(
                            503,
                            "text/html",
                            "<html><body>503 Service Temporarily Unavailable</body></html>",
                        );
                    }
                    let client = form.get("client_id").cloned().unwrap_or_default();
                    if !p.known(&client) {
                        return json(
                            401,
                            json!({"error": "invalid_client", "error_description": "client is invalid"}),
                        );
                    }
                    if form["grant_type"] == "refresh_token"
                        && p.refresh_requires_scope.load(Ordering::SeqCst)
                        && !form.contains_key("scope")
                    {
                        return json(
                            400,
                            json!({"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the following parameter: 'scope'."}),
                        );
                    }
                    let n = p.rotation.fetch_add(1, Ordering::SeqCst);
                    json(
                        200,
                        json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 3600,
                               "refresh_token": format!("rt-{n}"), "scope": "offline_access"}),
                    )
                }
                ("POST", "/mcp") if p.refuse_every_token.load(Ordering::SeqCst) => {
                    let mut www = format!(
                        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
                    );
                    if req.headers.get("authorization").is_some() {
                        www.push_str(", error=\"invalid_token\", error_description=\"Token validation failed: Invalid JWT format (expected 3 parts)\"");
                    }
                    if let Some(scope) = p.refusal_scope.lock().unwrap().as_deref()
                        && req.headers.get("authorization").is_some()
                    {
                        www.push_str(&format!(", scope=\"{scope}\""));
                    }
                    let mut r = json(401, json!({"error": "invalid_token"}));
                    r.headers_mut()
                        .insert("www-authenticate", www.parse().unwrap());
                    r
                }
                _ => not_found(),
            }
        }
    })
}

fn challenge(base: &str) -> Vec<String> {
    vec![format!(
        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
    )]
}

struct Setup {
    server: MockServer,
    provider: Arc<Provider>,
    store: Arc<MemoryStore>,
    browser: Arc<FollowingBrowser>,
    client: Arc<OAuthClient>,
}

async fn setup(browser: FollowingBrowser) -> Setup {
    let provider = Arc::new(Provider::default());
    let server = provider_server(provider.clone()).await;
    let store = Arc::new(MemoryStore::new());
    let browser = Arc::new(browser);
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(5);
    let client = Arc::new(OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store.clone(),
        browser.clone(),
    ));
    Setup {
        server,
        provider,
        store,
        browser,
        client,
    }
}

fn authorize_queries(s: &Setup) -> Vec<std::collections::HashMap<String, String>> {
    s.server
        .requests_to("/auth")
        .iter()
        .map(|r| query_map(&r.query))
        .collect()
}

#[tokio::test]
async fn an_empty_base_scope_asks_an_openid_provider_for_consent() {
    let s = setup(FollowingBrowser::default()).await;
    let rec = s
        .client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .expect("the request is one the provider grants");
    assert!(rec.tokens.refresh_token.is_some());
    let q = authorize_queries(&s);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["scope"], "offline_access");
    assert_eq!(q[0]["prompt"], "consent");
    assert_eq!(s.browser.opened(), 1);
}

#[tokio::test]
async fn a_refused_widening_is_asked_once_more_without_it() {
    let s = setup(FollowingBrowser::default()).await;
    s.provider
        .refuse_offline_access
        .store(true, Ordering::SeqCst);
    s.client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .expect("the second request, without offline_access, is granted");
    let q = authorize_queries(&s);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0]["scope"], "offline_access");
    assert!(
        !q[1].contains_key("scope") && !q[1].contains_key("prompt"),
        "{:?}",
        q[1]
    );
    assert_eq!(s.browser.opened(), 2);
}

#[tokio::test]
async fn the_users_deny_is_final() {
    let s = setup(FollowingBrowser::default()).await;
    s.provider.deny_next.store(true, Ordering::SeqCst);
    let e = s
        .client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .unwrap_err();
    assert_eq!(e.oauth_error(), Some("access_denied"), "{e}");
    assert!(e.to_string().contains("User denied access"), "{e}");
    assert_eq!(s.browser.opened(), 1, "no second tab");
    assert_eq!(s.server.requests_to("/auth").len(), 1);
}

#[tokio::test]
async fn a_configured_scope_is_never_widened_nor_retried() {
    let provider = Arc::new(Provider::default());
    provider.refuse_offline_access.store(true, Ordering::SeqCst);
    let server = provider_server(provider.clone()).await;
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(5);
    cfg.scopes = Some("offline_access".into());
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        Arc::new(MemoryStore::new()),
        Arc::new(FollowingBrowser::default()),
    );
    let e = client
        .authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_scope"), "{e}");
    assert!(
        e.to_string().contains(server.base()),
        "names the issuer: {e}"
    );
    assert_eq!(server.requests_to("/auth").len(), 1);
}

#[tokio::test]
async fn a_restarted_server_gets_one_new_registration_and_one_browser() {
    let s = setup(FollowingBrowser::default()).await;
    s.client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .unwrap();
    s.provider.restart();
    // Expired: the next token request is a refresh, which the server refuses.
    let mut rec = s.client.stored().await.unwrap().unwrap();
    rec.tokens.expires_at = Some(rec.tokens.obtained_at);
    let key = CredentialKey::new(format!("{}/mcp", s.server.base()));
    s.store.save(&key, &rec).unwrap();
    let e = s.client.refresh(&rec).await.unwrap_err();
    assert_eq!(e.oauth_error(), Some("invalid_client"), "{e}");
    assert!(
        s.store.load(&key).unwrap().is_none(),
        "the dead credential is gone"
    );
    let client_key = ClientKey {
        issuer: s.server.base().to_string(),
        redirect_uri: rec.client.redirect_uri.clone(),
    };
    assert!(
        s.store.load_client(&client_key).unwrap().is_none(),
        "and its client"
    );

    let rec2 = s
        .client
        .authorize(&challenge(s.server.base()), Reason::Unauthorized)
        .await
        .unwrap();
    assert_eq!(rec2.client.client_id, "client-1-1");
    assert_eq!(s.server.requests_to("/reg").len(), 2);
    assert_eq!(s.browser.opened(), 2, "one browser per login");
    // The refused client id never went to the browser again.
    let dead: Vec<_> = authorize_queries(&s)
        .into_iter()
        .filter(|q| q["client_id"] == rec.client.client_id)
        .collect();
    assert_eq!(dead.len(), 1, "only the first login's request: {dead:?}");
}

#[tokio::test]
async fn a_stored_client_the_server_forgot_is_replaced_before_the_browser_opens() {
    a_forgotten_client_is_replaced(false).await;
}

/// The same with the MCP Python SDK's authorization server (mcp 2.x, clients in memory):
/// its 400 "Client ID '…' not found" was not taken for a refusal, so the browser got the
/// dead client id, showed the error, and the login waited out its 300 s, every time.
#[tokio::test]
async fn a_client_the_python_sdks_server_forgot_is_replaced_before_the_browser_opens() {
    a_forgotten_client_is_replaced(true).await;
}

async fn a_forgotten_client_is_replaced(sdk_style: bool) {
    let s = setup(FollowingBrowser::default()).await;
    s.provider
        .sdk_style_unknown_client
        .store(sdk_style, Ordering::SeqCst);
    s.client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .unwrap();
    s.provider.restart();
    // The next process (one that did not register or check the stored client itself).
    let next = OAuthClient::new(
        s.client.config().clone(),
        HttpClient::new(HttpPolicy::default()).unwrap(),
        s.store.clone(),
        s.browser.clone(),
    );
    next.authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .expect("a new client, then the login");
    let q = authorize_queries(&s);
    // First login; the check of the stored client (refused with a page); the login with
    // the new client. The browser never saw the dead client id after the restart.
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(q[1]["client_id"], "client-0-1");
    assert!(
        !q[1].contains_key("scope"),
        "the check is not the user's request"
    );
    assert_eq!(q[2]["client_id"], "client-1-1");
    assert_eq!(s.browser.opened(), 2);
    assert_eq!(s.server.requests_to("/reg").len(), 2);
}

#[tokio::test]
async fn a_browser_time_out_keeps_the_registration() {
    let s = setup(FollowingBrowser::idle()).await;
    let mut cfg = s.client.config().clone();
    cfg.callback_timeout = Duration::from_millis(400);
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        s.store.clone(),
        s.browser.clone(),
    );
    for _ in 0..2 {
        let e = client
            .authorize(&challenge(s.server.base()), Reason::Login)
            .await
            .unwrap_err();
        assert!(matches!(e, mcp_oauth::Error::Timeout { .. }), "{e}");
    }
    assert_eq!(
        s.server.requests_to("/reg").len(),
        1,
        "an abandoned login registers no second client"
    );
}

#[tokio::test]
async fn refresh_sends_the_granted_scope_and_rides_out_a_gateway_failure() {
    let s = setup(FollowingBrowser::default()).await;
    let rec = s
        .client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .unwrap();
    s.provider
        .refresh_requires_scope
        .store(true, Ordering::SeqCst);
    s.provider.fail_next_token.store(true, Ordering::SeqCst);
    let next = s
        .client
        .refresh(&rec)
        .await
        .expect("retried, then refreshed");
    assert_ne!(
        next.tokens.access_token.expose(),
        rec.tokens.access_token.expose()
    );
    let refreshes: Vec<_> = s
        .server
        .requests_to("/token")
        .into_iter()
        .map(|r| query_map(&r.body))
        .filter(|f| f["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 2, "the 503, then the retry");
    for f in &refreshes {
        assert_eq!(f["scope"], "offline_access");
    }
    assert_eq!(s.browser.opened(), 1, "no browser for a refresh");
}

#[tokio::test]
async fn a_configured_client_the_server_does_not_know_ends_before_the_browser() {
    let provider = Arc::new(Provider::default());
    let server = provider_server(provider.clone()).await;
    let mut cfg = OAuthConfig::new(format!("{}/mcp", server.base()));
    cfg.callback_timeout = Duration::from_secs(30);
    cfg.client = Some(mcp_oauth::config::PreRegisteredClient {
        client_id: "deleted-app".into(),
        ..Default::default()
    });
    let browser = Arc::new(FollowingBrowser::default());
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        Arc::new(MemoryStore::new()),
        browser.clone(),
    );
    let started = std::time::Instant::now();
    let e = client
        .authorize(&challenge(server.base()), Reason::Login)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no wait for a redirect"
    );
    let m = e.to_string();
    assert!(
        m.contains("deleted-app") && m.contains("invalid_client"),
        "{m}"
    );
    assert_eq!(browser.opened(), 0);
    assert!(
        server.requests_to("/reg").is_empty(),
        "a configured client is not replaced"
    );
}

/// An MCP client authorized by `s.client`, for the server's `/mcp`.
fn mcp_client(s: &Setup) -> mcp_oauth::mcp::McpClient {
    mcp_oauth::mcp::McpClient::new(
        format!("{}/mcp", s.server.base()),
        s.client.http().reqwest().clone(),
        mcp_oauth::mcp::McpClientOptions::default(),
        Some(s.client.clone() as Arc<dyn mcp_oauth::mcp::RequestAuth>),
    )
}

/// FastMCP in front of an OpenID provider that issues an opaque token for `openid`: the
/// token the user has just authorized is refused at once. Before: three authorizations
/// (three tabs to approve), then "still answers HTTP 401 after 3 authorizations".
#[tokio::test]
async fn a_token_refused_as_soon_as_issued_ends_after_one_authorization() {
    let s = setup(FollowingBrowser::default()).await;
    s.provider.refuse_every_token.store(true, Ordering::SeqCst);
    let mcp = mcp_client(&s);
    let e = tokio::time::timeout(Duration::from_secs(30), mcp.connect())
        .await
        .expect("bounded")
        .unwrap_err();
    assert_eq!(s.browser.opened(), 1, "one authorization: {e}");
    assert_eq!(s.server.requests_to("/auth").len(), 1);
    let said = e.to_string();
    assert!(
        said.contains("refused the access token that")
            && said.contains("issued for it moments ago (HTTP 401, error invalid_token: \"Token validation failed: Invalid JWT format (expected 3 parts)\")")
            && said.contains("none was started, and the refused token was not kept"),
        "{said}"
    );
    // `mcp-oauth token` must not hand out a token the server refuses.
    let key = CredentialKey::new(format!("{}/mcp", s.server.base()));
    assert_eq!(
        s.store.load(&key).unwrap(),
        None,
        "the refused credential is gone"
    );
}

/// A 401 whose challenge names a scope the new token lacks is worth one more
/// authorization, for that scope; then the same rule ends it.
#[tokio::test]
async fn a_401_naming_a_missing_scope_gets_one_more_authorization() {
    let s = setup(FollowingBrowser::default()).await;
    s.provider.refuse_every_token.store(true, Ordering::SeqCst);
    *s.provider.refusal_scope.lock().unwrap() = Some("openid mcp:extra".into());
    let mcp = mcp_client(&s);
    let e = tokio::time::timeout(Duration::from_secs(30), mcp.connect())
        .await
        .expect("bounded")
        .unwrap_err();
    let asked: Vec<String> = s
        .server
        .requests_to("/auth")
        .iter()
        .map(|r| {
            query_map(&r.query)
                .get("scope")
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(s.browser.opened(), 2, "{asked:?}: {e}");
    assert!(asked[1].split(' ').any(|x| x == "mcp:extra"), "{asked:?}");
    assert!(e.to_string().contains("issued for it moments ago"), "{e}");
}

/// A login that stores a dynamically registered client.
async fn first_login(s: &Setup) {
    s.client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .expect("the first login");
}

/// A server that binds a client's scopes at registration (the MCP Python SDK's
/// authorization server, FastMCP's OAuth proxy) and has gained a scope since the stored
/// client registered: "Client was not registered with scope mcp:tools". Before: that
/// error, for good (until `logout --forget-client`). Now: one new registration, then the
/// request is granted.
#[tokio::test]
async fn a_stored_client_refused_a_newer_scope_is_registered_anew() {
    let s = setup(FollowingBrowser::default()).await;
    *s.provider.bound_scopes.lock().unwrap() = Some("offline_access".into());
    first_login(&s).await;
    assert_eq!(s.server.requests_to("/reg").len(), 1);
    // The server now also has mcp:tools, and its challenge asks for it.
    *s.provider.bound_scopes.lock().unwrap() = Some("offline_access mcp:tools".into());
    let with_scope = vec![format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\"",
        s.server.base()
    )];
    let rec = s
        .client
        .authorize(&with_scope, Reason::Unauthorized)
        .await
        .expect("granted with a new registration");
    assert_eq!(
        s.server.requests_to("/reg").len(),
        2,
        "one new registration"
    );
    let q = authorize_queries(&s);
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(q[1]["scope"], "mcp:tools offline_access");
    assert_ne!(
        q[1]["client_id"], q[2]["client_id"],
        "the retry used the new client"
    );
    assert_eq!(
        q[2]["scope"], "mcp:tools offline_access",
        "not narrowed first"
    );
    assert_eq!(rec.client.client_id, q[2]["client_id"]);
}

/// oidc-provider-like refusal of the added offline_access for a stored client: asking
/// without it comes first, and no new registration is made.
#[tokio::test]
async fn a_refused_addition_for_a_stored_client_is_narrowed_not_reregistered() {
    let s = setup(FollowingBrowser::default()).await;
    first_login(&s).await;
    s.provider
        .refuse_offline_access
        .store(true, Ordering::SeqCst);
    s.client
        .authorize(&challenge(s.server.base()), Reason::Login)
        .await
        .expect("granted without offline_access");
    assert_eq!(s.server.requests_to("/reg").len(), 1, "no new registration");
    let q = authorize_queries(&s);
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(!q[2].contains_key("scope"), "{q:?}");
}

/// A server that binds scopes at registration and has begun to offer offline_access
/// since the stored client registered: "Client was not registered with scope
/// offline_access". Asking without it would work, without a refresh token, at every
/// login from then on; a new registration gets the refresh token.
#[tokio::test]
async fn a_refusal_that_blames_the_registration_registers_anew_before_narrowing() {
    let s = setup(FollowingBrowser::default()).await;
    let with_scope = vec![format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\"",
        s.server.base()
    )];
    *s.provider.bound_scopes.lock().unwrap() = Some("mcp:tools".into());
    let first = s
        .client
        .authorize(&with_scope, Reason::Login)
        .await
        .expect("granted without offline_access");
    assert!(
        first.tokens.refresh_token.is_some(),
        "the provider issues one anyway"
    );
    let before = authorize_queries(&s).len();
    *s.provider.bound_scopes.lock().unwrap() = Some("mcp:tools offline_access".into());
    s.client
        .authorize(&with_scope, Reason::Login)
        .await
        .expect("granted with a new registration");
    assert_eq!(
        s.server.requests_to("/reg").len(),
        2,
        "one new registration"
    );
    let q = authorize_queries(&s);
    assert_eq!(q.len(), before + 2, "{q:?}");
    assert_eq!(q[before + 1]["scope"], "mcp:tools offline_access", "{q:?}");
    assert_ne!(q[before]["client_id"], q[before + 1]["client_id"]);
}
