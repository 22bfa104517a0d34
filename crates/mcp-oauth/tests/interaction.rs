//! The interaction modes (paste, device grant), revocation, and logins that wait for a
//! sibling, against an in-process authorization server.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_oauth::OAuthConfig;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::browser::{Browser, Progress};
use mcp_oauth::authorize::device::DevicePrompt;
use mcp_oauth::config::{DpopPolicy, Interaction, PreRegisteredClient};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::revocation::{self, TokenRevocation};
use mcp_oauth::secret::PrivateKeyPem;
use mcp_oauth::store::{CredentialStore, MemoryStore};
use mcp_oauth::{Error, OAuthClient};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found, query_map, redirect};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Opts {
    iss_supported: bool,
    device: bool,
    revocation: bool,
    /// Answer `authorization_pending` this many times first.
    pending: usize,
    /// Refuse the access token's revocation with `unsupported_token_type`.
    at_unrevocable: bool,
}

async fn serve(o: Opts) -> MockServer {
    let polls = Arc::new(AtomicUsize::new(0));
    MockServer::start(move |base, req| {
        let o = o.clone();
        let polls = polls.clone();
        async move {
            let form = query_map(&req.body);
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") => json(
                    200,
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["mcp"]}),
                ),
                ("GET", "/.well-known/oauth-authorization-server") => {
                    let mut m = json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/register"),
                        "code_challenge_methods_supported": ["S256"],
                        "authorization_response_iss_parameter_supported": o.iss_supported,
                    });
                    if o.device {
                        m["device_authorization_endpoint"] = json!(format!("{base}/device"));
                    }
                    if o.revocation {
                        m["revocation_endpoint"] = json!(format!("{base}/revoke"));
                    }
                    json(200, m)
                }
                ("POST", "/register") => {
                    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
                    json(
                        201,
                        json!({"client_id": "client-1", "grant_types": body["grant_types"]}),
                    )
                }
                ("GET", "/authorize") => {
                    let q = query_map(&req.query);
                    let mut loc =
                        format!("{}?code=the-code&state={}", q["redirect_uri"], q["state"]);
                    if o.iss_supported {
                        loc.push_str(&format!(
                            "&iss={}",
                            url::form_urlencoded::byte_serialize(base.as_bytes())
                                .collect::<String>()
                        ));
                    }
                    redirect(&loc)
                }
                ("POST", "/device") => json(
                    200,
                    json!({
                        "device_code": "dev-code", "user_code": "ABCD-EFGH",
                        "verification_uri": format!("{base}/activate"),
                        "verification_uri_complete": format!("{base}/activate?user_code=ABCD-EFGH"),
                        "expires_in": 600, "interval": 1,
                    }),
                ),
                ("POST", "/token")
                    if form.get("grant_type").map(String::as_str)
                        == Some(mcp_oauth::authorize::device::GRANT_TYPE) =>
                {
                    assert_eq!(form["device_code"], "dev-code");
                    if polls.fetch_add(1, Ordering::SeqCst) < o.pending {
                        json(400, json!({"error": "authorization_pending"}))
                    } else {
                        json(
                            200,
                            json!({"access_token": "at-dev", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-dev"}),
                        )
                    }
                }
                ("POST", "/token") => {
                    assert_eq!(form["code"], "the-code");
                    json(
                        200,
                        json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1"}),
                    )
                }
                ("POST", "/revoke") => {
                    if o.at_unrevocable
                        && form.get("token_type_hint").map(String::as_str) == Some("access_token")
                    {
                        json(400, json!({"error": "unsupported_token_type"}))
                    } else {
                        json(200, json!({}))
                    }
                }
                _ => not_found(),
            }
        }
    })
}

/// A user: follows the authorization URL to its redirect (with `browser`, which counts
/// the opens) and pastes (part of) it; approves device codes; records progress.
#[derive(Default)]
struct User {
    paste_bare_code: bool,
    browser: FollowingBrowser,
    prompts: Mutex<Vec<DevicePrompt>>,
    progress: Mutex<Vec<Progress>>,
}

impl User {
    fn opened(&self) -> usize {
        self.browser.opened()
    }
}

impl Browser for User {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        self.browser.open(url)
    }

    fn read_pasted_redirect(&self, url: &str, redirect_uri: &str) -> mcp_oauth::Result<String> {
        // What the browser's address bar shows after the AS redirected it.
        // This runs on a blocking thread of the runtime.
        let url = url.to_string();
        let loc = tokio::runtime::Handle::current().block_on(async move {
            let c = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let resp = c.get(url).send().await.unwrap();
            resp.headers()["location"].to_str().unwrap().to_string()
        });
        assert!(loc.starts_with(redirect_uri), "{loc} vs {redirect_uri}");
        if self.paste_bare_code {
            return Ok("the-code".into());
        }
        Ok(loc)
    }

    fn show_device_code(&self, prompt: &DevicePrompt) -> mcp_oauth::Result<()> {
        self.prompts.lock().unwrap().push(prompt.clone());
        Ok(())
    }

    fn progress(&self, event: &Progress) {
        self.progress.lock().unwrap().push(event.clone());
    }
}

fn client(
    base: &str,
    interaction: Interaction,
    store: Arc<MemoryStore>,
    user: Arc<User>,
) -> OAuthClient {
    client_with(base, interaction, store, user, |_| {})
}

fn client_with(
    base: &str,
    interaction: Interaction,
    store: Arc<MemoryStore>,
    user: Arc<User>,
    configure: impl FnOnce(&mut OAuthConfig),
) -> OAuthClient {
    let mut cfg = OAuthConfig::new(format!("{base}/mcp"));
    cfg.interaction = interaction;
    cfg.redirect.port = Some(0);
    cfg.callback_timeout = Duration::from_secs(20);
    cfg.dpop = DpopPolicy::Never;
    configure(&mut cfg);
    OAuthClient::new(
        cfg,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store,
        user,
    )
}

fn challenge(base: &str) -> Vec<String> {
    vec![format!(
        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
    )]
}

#[tokio::test]
async fn paste_mode_uses_the_stable_redirect_uri_without_a_listener() {
    let server = serve(Opts {
        iss_supported: true,
        ..Default::default()
    })
    .await;
    let user = Arc::new(User::default());
    let c = client(
        server.base(),
        Interaction::Paste,
        Arc::new(MemoryStore::new()),
        user.clone(),
    );
    let out = c.login(&challenge(server.base())).await.unwrap();
    assert!(!out.adopted);
    assert_eq!(out.record.tokens.access_token.expose(), "at-1");
    assert_eq!(user.opened(), 0, "no browser in paste mode");
    // Port 0 means "the stable port" in paste mode: a redirect URI that can be registered.
    let port = mcp_oauth::authorize::loopback::stable_port(&format!("{}/mcp", server.base()));
    let tok = &server.requests_to("/token")[0];
    let form = query_map(&tok.body);
    assert_eq!(
        form["redirect_uri"],
        format!("http://127.0.0.1:{port}/callback")
    );
    assert!(form.contains_key("code_verifier"));
}

#[tokio::test]
async fn a_bare_code_is_refused_when_the_as_promises_iss() {
    let server = serve(Opts {
        iss_supported: true,
        ..Default::default()
    })
    .await;
    let user = Arc::new(User {
        paste_bare_code: true,
        ..Default::default()
    });
    let c = client(
        server.base(),
        Interaction::Paste,
        Arc::new(MemoryStore::new()),
        user,
    );
    let e = c.login(&challenge(server.base())).await.unwrap_err();
    assert!(e.to_string().contains("paste the whole URL"), "{e}");
    assert!(server.requests_to("/token").is_empty());

    // Without the promise, a bare code is accepted (the user copied it from their own browser).
    let server = serve(Opts::default()).await;
    let user = Arc::new(User {
        paste_bare_code: true,
        ..Default::default()
    });
    let c = client(
        server.base(),
        Interaction::Paste,
        Arc::new(MemoryStore::new()),
        user,
    );
    c.login(&challenge(server.base())).await.unwrap();
}

#[tokio::test]
async fn device_grant_polls_until_approved() {
    let server = serve(Opts {
        device: true,
        pending: 2,
        ..Default::default()
    })
    .await;
    let user = Arc::new(User::default());
    let c = client(
        server.base(),
        Interaction::Device,
        Arc::new(MemoryStore::new()),
        user.clone(),
    );
    let out = c.login(&challenge(server.base())).await.unwrap();
    assert_eq!(out.record.tokens.access_token.expose(), "at-dev");
    let prompts = user.prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].user_code, "ABCD-EFGH");
    assert_eq!(user.opened(), 0);
    let polls = server.requests_to("/token");
    assert_eq!(polls.len(), 3, "two pending answers, then the tokens");
    let dev = query_map(&server.requests_to("/device")[0].body);
    assert_eq!(
        dev["resource"],
        format!("{}/mcp", server.base()),
        "RFC 8707 resource on the device request"
    );
    assert_eq!(dev["client_id"], "client-1");
    let reg: serde_json::Value =
        serde_json::from_str(&server.requests_to("/register")[0].body).unwrap();
    assert!(
        reg["grant_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == mcp_oauth::authorize::device::GRANT_TYPE),
        "the registration asks for the device grant: {reg}"
    );
    assert!(
        user.progress
            .lock()
            .unwrap()
            .iter()
            .any(|p| matches!(p, Progress::WaitingForDevice { .. }))
    );
}

#[tokio::test]
async fn device_grant_needs_the_endpoint() {
    let server = serve(Opts::default()).await;
    let c = client(
        server.base(),
        Interaction::Device,
        Arc::new(MemoryStore::new()),
        Arc::new(User::default()),
    );
    let e = c.login(&challenge(server.base())).await.unwrap_err();
    assert!(
        matches!(e, Error::Action { .. })
            && e.to_string()
                .contains(mcp_oauth::remedy::Remedy::PasteInsteadOfDevice.phrase()),
        "{e}"
    );
}

#[tokio::test]
async fn a_waiting_login_adopts_the_siblings_credential() {
    let server = serve(Opts::default()).await;
    let store = Arc::new(MemoryStore::new());
    // Two clients on one store behave like two processes: the lock is the store's.
    let slow = Arc::new(User {
        browser: FollowingBrowser::after(Duration::from_millis(600)),
        ..Default::default()
    });
    let second = Arc::new(User::default());
    let a = client(
        server.base(),
        Interaction::Browser,
        store.clone(),
        slow.clone(),
    );
    let b = client(
        server.base(),
        Interaction::Browser,
        store.clone(),
        second.clone(),
    );
    let ch = challenge(server.base());
    let (ra, rb) = tokio::join!(a.login(&ch), async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.login(&ch).await
    });
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(
        !ra.adopted && rb.adopted,
        "the second login waited and adopted"
    );
    assert_eq!(slow.opened() + second.opened(), 1, "one browser");
    assert_eq!(server.requests_to("/token").len(), 1);
    let p = second.progress.lock().unwrap().clone();
    assert!(
        matches!(p.first(), Some(Progress::WaitingForOtherProcess { .. })),
        "{p:?}"
    );
    assert!(store.list().unwrap().len() == 1);
}

#[tokio::test]
async fn revocation_of_a_record() {
    let server = serve(Opts {
        revocation: true,
        at_unrevocable: true,
        ..Default::default()
    })
    .await;
    let c = client(
        server.base(),
        Interaction::Paste,
        Arc::new(MemoryStore::new()),
        Arc::new(User::default()),
    );
    let rec = c.login(&challenge(server.base())).await.unwrap().record;
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let r = revocation::revoke_record(&http, &rec, None, None).await;
    assert_eq!(r.refresh_token, TokenRevocation::Revoked);
    assert!(
        matches!(r.access_token, TokenRevocation::Unsupported(_)),
        "{r:?}"
    );
    assert!(r.complete(), "a JWT the AS cannot revoke is not a failure");
    let reqs = server.requests_to("/revoke");
    let hints: Vec<String> = reqs
        .iter()
        .map(|s| query_map(&s.body)["token_type_hint"].clone())
        .collect();
    assert_eq!(
        hints,
        ["refresh_token", "access_token"],
        "refresh token first"
    );
    assert_eq!(query_map(&reqs[0].body)["token"], "rt-1");
    assert_eq!(query_map(&reqs[0].body)["client_id"], "client-1");

    let mut no_endpoint = rec.clone();
    no_endpoint.revocation_endpoint = None;
    let r = revocation::revoke_record(&http, &no_endpoint, None, None).await;
    assert_eq!(r.refresh_token, TokenRevocation::NotOffered);
}

/// A P-256 key for `private_key_jwt`, and the key that verifies its assertions.
fn es256_key() -> (SigningKey, DecodingKey) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let p = pair.public_key().as_ref();
    let u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (
        SigningKey {
            pem: PrivateKeyPem::new(pem),
            alg: "ES256".into(),
        },
        DecodingKey::from_ec_components(&u.encode(&p[1..33]), &u.encode(&p[33..])).unwrap(),
    )
}

/// The pre-registered client `svc`, authenticating with `key`.
fn private_key_jwt_client(key: &SigningKey) -> impl FnOnce(&mut OAuthConfig) {
    let key = key.clone();
    move |cfg| {
        cfg.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            private_key: Some(key),
            ..Default::default()
        });
    }
}

/// The claims of the `private_key_jwt` assertion in a request body, after checking its
/// type, its signature, and that it is addressed to `issuer`.
fn assertion_claims(body: &str, public: &DecodingKey, issuer: &str) -> Value {
    let f = query_map(body);
    assert_eq!(
        f.get("client_assertion_type").map(String::as_str),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        "{body}"
    );
    assert_eq!(f["client_id"], "svc");
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[issuer]);
    v.set_issuer(&["svc"]);
    jsonwebtoken::decode::<Value>(&f["client_assertion"], public, &v)
        .expect("the assertion verifies, with the issuer as audience")
        .claims
}

#[tokio::test]
async fn device_grant_with_a_private_key_jwt_client() {
    let server = serve(Opts {
        device: true,
        pending: 1,
        ..Default::default()
    })
    .await;
    let (key, public) = es256_key();
    let c = client_with(
        server.base(),
        Interaction::Device,
        Arc::new(MemoryStore::new()),
        Arc::new(User::default()),
        private_key_jwt_client(&key),
    );
    let out = c.login(&challenge(server.base())).await.unwrap();
    assert_eq!(out.record.tokens.access_token.expose(), "at-dev");
    assert!(server.requests_to("/register").is_empty());
    assertion_claims(
        &server.requests_to("/device")[0].body,
        &public,
        server.base(),
    );
    let polls = server.requests_to("/token");
    assert_eq!(polls.len(), 2, "one pending answer, then the tokens");
    let jtis: HashSet<String> = polls
        .iter()
        .map(|p| assertion_claims(&p.body, &public, server.base())["jti"].to_string())
        .collect();
    assert_eq!(jtis.len(), 2, "a new assertion for each poll");
}

#[tokio::test]
async fn revocation_with_a_private_key_jwt_client() {
    let server = serve(Opts {
        revocation: true,
        ..Default::default()
    })
    .await;
    let (key, public) = es256_key();
    let c = client_with(
        server.base(),
        Interaction::Paste,
        Arc::new(MemoryStore::new()),
        Arc::new(User::default()),
        private_key_jwt_client(&key),
    );
    let rec = c.login(&challenge(server.base())).await.unwrap().record;
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let r = revocation::revoke_record(&http, &rec, Some(&key), None).await;
    assert_eq!(r.refresh_token, TokenRevocation::Revoked, "{r:?}");
    assert_eq!(r.access_token, TokenRevocation::Revoked, "{r:?}");
    let reqs = server.requests_to("/revoke");
    assert_eq!(reqs.len(), 2);
    for req in reqs {
        assertion_claims(&req.body, &public, server.base());
    }
}
