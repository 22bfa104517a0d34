//! Grants without a user (client credentials, workload identity, enterprise-managed) and
//! DPoP, against a small in-process authorization server that checks what the RFCs say,
//! verifying every JWT we send with the public key.
//!
//! The official conformance suite runs the same flows against its own mocks; these tests
//! pin the details it does not show: the nonce retry, fresh `jti`s, no retry after a
//! rejected assertion.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::browser::Browser;
use mcp_oauth::client::Reason;
use mcp_oauth::config::{AssertionSource, PreRegisteredClient};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::secret::{Assertion, ClientSecret, PrivateKeyPem};
use mcp_oauth::store::{CredentialStore, MemoryStore};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// No browser may be opened by a grant without a user.
struct NoBrowser;

impl Browser for NoBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        panic!("a grant without a user opened a browser for {url}");
    }
}

#[derive(Clone, Default)]
struct AsOptions {
    grants: Vec<&'static str>,
    auth_methods: Vec<&'static str>,
    dpop: bool,
    require_nonce: bool,
    /// Refuse every token request with this OAuth error.
    refuse_with: Option<&'static str>,
}

async fn serve(o: AsOptions) -> MockServer {
    MockServer::start(move |base, req| {
        let o = o.clone();
        async move {
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") => json(
                    200,
                    json!({"resource": format!("{base}/mcp"), "authorization_servers": [base], "scopes_supported": ["mcp:x"]}),
                ),
                ("GET", "/.well-known/oauth-authorization-server") => {
                    let mut m = json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "code_challenge_methods_supported": ["S256"],
                        "grant_types_supported": o.grants,
                        "token_endpoint_auth_methods_supported": o.auth_methods,
                    });
                    if o.dpop {
                        m["dpop_signing_alg_values_supported"] = json!(["ES256"]);
                    }
                    json(200, m)
                }
                ("POST", "/token") => {
                    if let Some(err) = o.refuse_with {
                        return json(
                            400,
                            json!({"error": err, "error_description": "refused on purpose"}),
                        );
                    }
                    if o.require_nonce {
                        let proof = req
                            .headers
                            .get("dpop")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        if claims_unverified(proof)
                            .get("nonce")
                            .and_then(Value::as_str)
                            != Some("as-nonce-1")
                        {
                            let mut r = json(400, json!({"error": "use_dpop_nonce"}));
                            r.headers_mut()
                                .insert("dpop-nonce", "as-nonce-1".parse().unwrap());
                            return r;
                        }
                    }
                    let token_type = if o.dpop { "DPoP" } else { "Bearer" };
                    json(
                        200,
                        json!({"access_token": "at-1", "token_type": token_type, "expires_in": 3600}),
                    )
                }
                _ => not_found(),
            }
        }
    })
}

fn claims_unverified(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn client(base: &str, cfg: impl FnOnce(&mut OAuthConfig)) -> (OAuthClient, Arc<MemoryStore>) {
    let mut c = OAuthConfig::new(format!("{base}/mcp"));
    cfg(&mut c);
    let store = Arc::new(MemoryStore::new());
    (
        OAuthClient::new(
            c,
            HttpClient::new(HttpPolicy::default()).unwrap(),
            store.clone(),
            Arc::new(NoBrowser),
        ),
        store,
    )
}

fn challenge(base: &str) -> Vec<String> {
    vec![format!(
        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
    )]
}

/// A P-256 key as PEM plus the matching decoding key.
fn es256_key() -> (String, DecodingKey) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let p = pair.public_key().as_ref();
    let u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    (
        pem,
        DecodingKey::from_ec_components(&u.encode(&p[1..33]), &u.encode(&p[33..])).unwrap(),
    )
}

#[tokio::test]
async fn client_credentials_with_private_key_jwt() {
    let server = serve(AsOptions {
        grants: vec!["client_credentials"],
        auth_methods: vec!["private_key_jwt"],
        ..Default::default()
    })
    .await;
    let (pem, public) = es256_key();
    let (c, store) = client(server.base(), |c| {
        c.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            private_key: Some(SigningKey {
                pem: PrivateKeyPem::new(pem),
                alg: "ES256".into(),
            }),
            ..Default::default()
        });
    });
    let rec = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap();
    assert_eq!(rec.grant, "client_credentials");
    let f = server.requests_to("/token")[0].form();
    assert_eq!(f["grant_type"], "client_credentials");
    assert_eq!(f["scope"], "mcp:x");
    assert_eq!(f["resource"], format!("{}/mcp", server.base()));
    assert_eq!(
        f["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[server.base()]);
    v.set_issuer(&["svc"]);
    let claims = jsonwebtoken::decode::<Value>(&f["client_assertion"], &public, &v)
        .expect("assertion verifies")
        .claims;
    assert_eq!(claims["sub"], "svc");
    assert_eq!(store.list().unwrap().len(), 1);
}

#[tokio::test]
async fn expired_client_credentials_token_is_reminted_without_a_browser() {
    let server = serve(AsOptions {
        grants: vec!["client_credentials"],
        auth_methods: vec!["client_secret_basic"],
        ..Default::default()
    })
    .await;
    let (c, _) = client(server.base(), |c| {
        c.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            client_secret: Some(ClientSecret::new("s3cret").into()),
            ..Default::default()
        });
    });
    let mut rec = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap();
    rec.tokens.expires_at = Some(1);
    let renewed = c.refresh(&rec).await.unwrap();
    assert_eq!(renewed.grant, "client_credentials");
    let reqs = server.requests_to("/token");
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.form()["grant_type"], "client_credentials");
        let basic = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(basic.starts_with("Basic "));
    }
}

#[tokio::test]
async fn dpop_nonce_is_retried_once_with_a_fresh_proof() {
    let server = serve(AsOptions {
        grants: vec!["client_credentials"],
        auth_methods: vec!["client_secret_post"],
        dpop: true,
        require_nonce: true,
        ..Default::default()
    })
    .await;
    let (c, _) = client(server.base(), |c| {
        c.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            client_secret: Some(ClientSecret::new("s").into()),
            ..Default::default()
        });
    });
    // The resource server signals DPoP support with its challenge scheme.
    let dpop_challenge = vec![format!(
        "DPoP algs=\"ES256\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.base()
    )];
    let rec = c
        .authorize(&dpop_challenge, Reason::Unauthorized)
        .await
        .unwrap();
    assert_eq!(rec.tokens.token_type, "DPoP");
    assert!(rec.dpop_key.is_some());
    let reqs = server.requests_to("/token");
    assert_eq!(reqs.len(), 2, "one refusal, one retry");
    let mut jtis = HashSet::new();
    for (i, r) in reqs.iter().enumerate() {
        let proof = r.headers.get("dpop").unwrap().to_str().unwrap();
        let header = jsonwebtoken::decode_header(proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let key = DecodingKey::from_jwk(header.jwk.as_ref().unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.required_spec_claims = HashSet::new();
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(proof, &key, &v)
            .expect("proof verifies")
            .claims;
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], format!("{}/token", server.base()));
        assert_eq!(
            claims.get("nonce").and_then(Value::as_str),
            if i == 0 { None } else { Some("as-nonce-1") }
        );
        assert!(
            jtis.insert(claims["jti"].as_str().unwrap().to_string()),
            "jti reused"
        );
    }
    // The resource request carries the DPoP scheme and a proof bound to the token.
    use mcp_oauth::mcp::RequestAuth;
    let headers = c
        .request_headers("POST", &format!("{}/mcp", server.base()))
        .await
        .unwrap();
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("DPoP ")
    );
    let proof = headers["dpop"].to_str().unwrap();
    let claims = claims_unverified(proof);
    assert_eq!(claims["htu"], format!("{}/mcp", server.base()));
    assert!(claims["ath"].is_string());
    // And never for another URL.
    assert!(
        c.request_headers("POST", "http://127.0.0.1:1/elsewhere")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn no_dpop_when_only_the_authorization_server_supports_it() {
    // oidc-provider advertises DPoP by default; a Bearer-only MCP server would refuse a
    // DPoP-bound token, so without a DPoP challenge or DPoP fields in the PRM the client
    // asks for a plain Bearer token.
    let server = serve(AsOptions {
        grants: vec!["client_credentials"],
        auth_methods: vec!["client_secret_post"],
        dpop: true,
        ..Default::default()
    })
    .await;
    let (c, _) = client(server.base(), |c| {
        c.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            client_secret: Some(ClientSecret::new("s").into()),
            ..Default::default()
        });
    });
    let rec = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap();
    assert!(rec.dpop_key.is_none());
    assert!(
        server.requests_to("/token")[0]
            .headers
            .get("dpop")
            .is_none()
    );
}

#[tokio::test]
async fn rejected_workload_assertion_is_not_retried_nor_swapped_for_another_grant() {
    let server = serve(AsOptions {
        grants: vec!["urn:ietf:params:oauth:grant-type:jwt-bearer"],
        auth_methods: vec!["none"],
        refuse_with: Some("invalid_grant"),
        ..Default::default()
    })
    .await;
    let (c, store) = client(server.base(), |c| {
        c.client = Some(PreRegisteredClient {
            client_id: "workload".into(),
            ..Default::default()
        });
        c.workload_assertion = Some(AssertionSource::Value(Assertion::new("eyJ.workload.jwt")));
    });
    let err = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_grant"), "{err}");
    let reqs = server.requests_to("/token");
    assert_eq!(reqs.len(), 1, "exactly one token request");
    let f = reqs[0].form();
    assert_eq!(
        f["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(f["assertion"], "eyJ.workload.jwt");
    assert_eq!(f["client_id"], "workload");
    assert!(server.requests_to("/authorize").is_empty());
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test]
async fn client_credentials_without_a_client_is_an_actionable_error() {
    let server = serve(AsOptions {
        grants: vec!["client_credentials"],
        auth_methods: vec!["client_secret_basic"],
        ..Default::default()
    })
    .await;
    let (c, _) = client(server.base(), |c| {
        c.grant = mcp_oauth::config::GrantKind::ClientCredentials
    });
    let e = c
        .authorize(&challenge(server.base()), Reason::Unauthorized)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(mcp_oauth::remedy::Remedy::ConfigureClientForGrant.phrase()),
        "{e}"
    );
    assert!(server.requests_to("/token").is_empty());
}
