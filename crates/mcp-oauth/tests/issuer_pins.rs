//! A configured client's credentials go only to the issuer it is pinned to (issue 17,
//! item 1), for every way they are sent: a private key (client credentials grant), a
//! secret in the authorization code flow (refused before the browser is sent anywhere),
//! and a refresh of a stored credential. Two loopback authorization servers and an MCP
//! server whose protected resource metadata switches from the first to the second.

use mcp_oauth::assertion::SigningKey;
use mcp_oauth::client::Reason;
use mcp_oauth::config::{GrantKind, PreRegisteredClient, SecretSource};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::secret::{ClientSecret, PrivateKeyPem};
use mcp_oauth::store::{CredentialStore, MemoryStore};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found, query_map, redirect, urlenc};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An authorization server taking any client (as a hostile one would).
async fn authorization_server() -> MockServer {
    MockServer::start(|base, req| async move {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/.well-known/oauth-authorization-server") => json(
                200,
                json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "response_types_supported": ["code"],
                    "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
                    "authorization_response_iss_parameter_supported": true,
                }),
            ),
            ("GET", "/authorize") => {
                let q = query_map(&req.query);
                redirect(&format!(
                    "{}?code=c&state={}&iss={}",
                    q["redirect_uri"],
                    q["state"],
                    urlenc(&base)
                ))
            }
            ("POST", "/token") => json(
                200,
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt"}),
            ),
            _ => not_found(),
        }
    })
}

/// Two authorization servers and an MCP server naming the one in `current`.
struct World {
    mcp: MockServer,
    a: MockServer,
    b: MockServer,
    current: Arc<Mutex<String>>,
}

impl World {
    async fn start() -> World {
        let a = authorization_server().await;
        let b = authorization_server().await;
        let current = Arc::new(Mutex::new(a.base().to_string()));
        let c2 = current.clone();
        let mcp = MockServer::start(move |base, req| {
            let as_base = c2.lock().unwrap().clone();
            async move {
                match req.path.as_str() {
                    "/.well-known/oauth-protected-resource/mcp" => json(
                        200,
                        json!({"resource": format!("{base}/mcp"), "authorization_servers": [as_base]}),
                    ),
                    _ => not_found(),
                }
            }
        });
        World { mcp, a, b, current }
    }

    fn switch_to_b(&self) {
        *self.current.lock().unwrap() = self.b.base().to_string();
    }

    fn challenge(&self) -> Vec<String> {
        vec![format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            self.mcp.base()
        )]
    }

    fn client(
        &self,
        store: &Arc<MemoryStore>,
        pre: PreRegisteredClient,
        grant: GrantKind,
    ) -> OAuthClient {
        let mut c = OAuthConfig::new(format!("{}/mcp", self.mcp.base()));
        c.client = Some(pre);
        c.grant = grant;
        c.redirect.port = Some(0);
        c.callback_timeout = Duration::from_secs(5);
        OAuthClient::new(
            c,
            HttpClient::new(HttpPolicy::default()).unwrap(),
            store.clone(),
            Arc::new(FollowingBrowser::default()),
        )
    }

    /// Every request `b` received, as "METHOD path".
    fn seen_by_b(&self) -> Vec<String> {
        self.b
            .requests()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }
}

fn assert_refused(e: &mcp_oauth::Error, w: &World) {
    let m = e.to_string();
    assert!(
        m.contains(w.a.base())
            && m.contains(w.b.base())
            && m.contains(mcp_oauth::remedy::Remedy::MoveClientIssuer.phrase()),
        "{m}"
    );
}

fn es256_key() -> SigningKey {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use base64::Engine;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    SigningKey {
        pem: PrivateKeyPem::new(format!(
            "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
        )),
        alg: "ES256".into(),
    }
}

#[tokio::test]
async fn a_private_key_signs_only_for_the_pinned_issuer() {
    let w = World::start().await;
    let store = Arc::new(MemoryStore::new());
    let pre = PreRegisteredClient {
        client_id: "svc".into(),
        private_key: Some(es256_key()),
        ..Default::default()
    };
    let cc = GrantKind::ClientCredentials;
    let c = w.client(&store, pre.clone(), cc);
    let rec = c.authorize(&w.challenge(), Reason::Login).await.unwrap();
    assert_eq!(rec.issuer, w.a.base());
    assert_eq!(rec.grant, "client_credentials");

    w.switch_to_b();
    store.remove(&c.config().credential_key()).unwrap();
    let e = w
        .client(&store, pre, cc)
        .authorize(&w.challenge(), Reason::Login)
        .await
        .unwrap_err();
    assert_refused(&e, &w);
    assert!(
        w.b.requests_to("/token").is_empty(),
        "b got a client assertion: {:?}",
        w.seen_by_b()
    );
}

#[tokio::test]
async fn a_secret_in_the_code_flow_goes_only_to_the_pinned_issuer() {
    let w = World::start().await;
    let store = Arc::new(MemoryStore::new());
    let pre = PreRegisteredClient {
        client_id: "app".into(),
        client_secret: Some(SecretSource::Value(ClientSecret::new("app-secret"))),
        ..Default::default()
    };
    let rec = w
        .client(&store, pre.clone(), GrantKind::Auto)
        .authorize(&w.challenge(), Reason::Login)
        .await
        .unwrap();
    assert_eq!(rec.issuer, w.a.base());
    assert_eq!(rec.grant, "authorization_code");

    w.switch_to_b();
    let e = w
        .client(&store, pre, GrantKind::Auto)
        .authorize(&w.challenge(), Reason::Login)
        .await
        .unwrap_err();
    assert_refused(&e, &w);
    // Refused before the browser went to b, and nothing was posted there.
    let seen = w.seen_by_b();
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /.well-known/oauth-authorization-server")),
        "b saw more than its metadata: {seen:?}"
    );
}

/// A stored credential from b (an older version that pinned nothing, say), while the
/// client is pinned to a: its refresh does not send the secret to b.
#[tokio::test]
async fn a_refresh_does_not_send_the_secret_past_the_pin() {
    let w = World::start().await;
    let store = Arc::new(MemoryStore::new());
    let pre = PreRegisteredClient {
        client_id: "app".into(),
        client_secret: Some(SecretSource::Value(ClientSecret::new("app-secret"))),
        ..Default::default()
    };
    let c = w.client(&store, pre.clone(), GrantKind::Auto);
    let rec = c.authorize(&w.challenge(), Reason::Login).await.unwrap();
    // The same credential, as if b had issued it.
    let mut from_b = rec.clone();
    from_b.issuer = w.b.base().to_string();
    from_b.client.issuer = w.b.base().to_string();
    from_b.token_endpoint = format!("{}/token", w.b.base());
    from_b.tokens.expires_at = Some(1);
    store.save(&c.config().credential_key(), &from_b).unwrap();
    let e = w
        .client(&store, pre, GrantKind::Auto)
        .refresh(&from_b)
        .await
        .unwrap_err();
    assert_refused(&e, &w);
    assert!(w.b.requests_to("/token").is_empty(), "{:?}", w.seen_by_b());
}
