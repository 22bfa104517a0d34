//! The layer end to end over loopback: metadata, challenges, token checks, scopes,
//! token stripping, body handling.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_oauth_server::dev::DevKey;
use mcp_oauth_server::{ScopePolicy, WELL_KNOWN_PRM};
use serde_json::{Value, json};
use std::time::Duration;

const RM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

fn rm(server: &Server) -> String {
    format!(r#"resource_metadata="{}{RM_PATH}""#, server.base)
}

#[tokio::test]
async fn metadata_at_both_well_knowns() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, _) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let c = client();
    let mut docs = Vec::new();
    for path in [RM_PATH, WELL_KNOWN_PRM] {
        let resp = c.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        assert_eq!(resp.headers()["content-type"], "application/json");
        docs.push(resp.json::<Value>().await.unwrap());
    }
    assert_eq!(docs[0], docs[1]);
    assert_eq!(
        docs[0],
        json!({
            "resource": server.resource,
            "authorization_servers": [issuer.issuer()],
            "scopes_supported": ["mcp"],
            "bearer_methods_supported": ["header"],
        })
    );
    // No token needed, and a bad one is ignored.
    let resp = c
        .get(server.url(RM_PATH))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Not a document method.
    let resp = c.post(server.url(RM_PATH)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn root_metadata_can_be_disabled() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let iss = issuer.issuer().to_owned();
    let jwks = issuer.jwks_uri();
    let server = start_server(
        |b| b.authorization_server(iss).serve_root_metadata(false),
        ScopePolicy::new(),
        |r| {
            mcp_oauth_server::JwtValidator::builder(r)
                .jwks_uri(jwks)
                .build()
                .unwrap()
        },
    )
    .await;
    let c = client();
    assert_eq!(
        c.get(server.url(RM_PATH)).send().await.unwrap().status(),
        200
    );
    // Not served by this layer, so not exempt from authentication: challenged like any
    // other path.
    let resp = c.get(server.url(WELL_KNOWN_PRM)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_some());
    // The challenge still points at the path-inserted document.
    let resp = post_mcp(&server.url("/mcp"), None, &tool_call("echo"), &[]).await;
    assert_eq!(www_authenticate(&resp), format!("Bearer {}", rm(&server)));
}

#[tokio::test]
async fn cors_preflight_on_well_knowns() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, _) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    for path in [RM_PATH, WELL_KNOWN_PRM] {
        let resp = client()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "https://inspector.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("GET")
        );
        assert_eq!(h["access-control-allow-headers"], "mcp-protocol-version");
    }
    // A preflight to the MCP endpoint itself is not challenged (it carries no token).
    let resp = client()
        .request(reqwest::Method::OPTIONS, server.url("/mcp"))
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 401);
}

#[tokio::test]
async fn no_token_is_401_without_error() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, _) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let url = server.url("/mcp");
    let expected = format!(r#"Bearer {}, scope="mcp""#, rm(&server));

    let resp = post_mcp(&url, None, &tool_call("echo"), &[]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(www_authenticate(&resp), expected);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // Another scheme counts as no bearer credentials.
    let resp = client()
        .post(&url)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(www_authenticate(&resp), expected);
    // Browser clients can read the challenge.
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        resp.headers()["access-control-expose-headers"],
        "WWW-Authenticate"
    );

    // GET (the SSE stream) is protected too.
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

async fn expect_invalid_token(server: &Server, token: &str, description: &str) {
    let resp = post_mcp(&server.url("/mcp"), Some(token), &tool_call("echo"), &[]).await;
    assert_eq!(resp.status(), 401, "{description}");
    let h = www_authenticate(&resp);
    assert_eq!(
        h,
        format!(
            r#"Bearer {}, scope="mcp", error="invalid_token", error_description="{description}""#,
            rm(server)
        )
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_token() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, validator) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let aud = server.resource.clone();
    let good = || issuer.token(&aud).subject("alice").scopes(["mcp"]);

    expect_invalid_token(&server, "not-a-jwt", "The access token is malformed").await;
    expect_invalid_token(&server, "a.b.c", "The access token is malformed").await;

    // Same kid, different key material: bad signature.
    let kid = issuer.signing_key().kid().to_owned();
    let impostor = DevKey::generate(Algorithm::ES256, kid);
    expect_invalid_token(
        &server,
        &good().key(impostor).sign(),
        "The access token signature is invalid",
    )
    .await;
    // Tampered payload.
    let t = good().sign();
    let parts: Vec<&str> = t.split('.').collect();
    let forged_payload = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
        claims["scope"] = "mcp admin".into();
        e.encode(serde_json::to_vec(&claims).unwrap())
    };
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    expect_invalid_token(&server, &tampered, "The access token signature is invalid").await;

    let now = jsonwebtoken::get_current_timestamp();
    expect_invalid_token(
        &server,
        &good().claim("exp", now - 120).sign(),
        "The access token expired",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().claim("nbf", now + 600).sign(),
        "The access token is not valid yet",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().claim("aud", "https://other.example/mcp").sign(),
        "The access token was not issued for this resource",
    )
    .await;
    // The origin alone is not this resource.
    expect_invalid_token(
        &server,
        &good().claim("aud", server.base.clone()).sign(),
        "The access token was not issued for this resource",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().claim("iss", "https://evil.example").sign(),
        "The access token was not issued by the expected authorization server",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().without("aud").sign(),
        "The access token lacks a required claim",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().without("iss").sign(),
        "The access token lacks a required claim",
    )
    .await;
    expect_invalid_token(
        &server,
        &good().without("exp").sign(),
        "The access token lacks a required claim",
    )
    .await;
    expect_invalid_token(
        &server,
        &good()
            .claim(
                "cnf",
                json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
            )
            .sign(),
        "The access token is sender-constrained and cannot be used as a bearer token",
    )
    .await;
    // An unknown kid (after one rate-limited refetch).
    let stranger = DevKey::generate(Algorithm::ES256, "stranger");
    expect_invalid_token(
        &server,
        &good().key(stranger).sign(),
        "The access token is signed with an unknown key",
    )
    .await;

    // Algorithm confusion: HS256 keyed with the public JWK, and `alg: none`.
    let claims = good().claims();
    let jwk_json = serde_json::to_vec(issuer.signing_key().jwk()).unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(issuer.signing_key().kid().to_owned());
    let hs = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&jwk_json)).unwrap();
    expect_invalid_token(
        &server,
        &hs,
        "The access token uses a signing algorithm that is not accepted",
    )
    .await;
    let none = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(serde_json::to_vec(&claims).unwrap())
        )
    };
    // `none` is not even an algorithm name to jsonwebtoken.
    expect_invalid_token(&server, &none, "The access token is malformed").await;

    // A good token still works after all that.
    let resp = post_mcp(
        &server.url("/mcp"),
        Some(&good().sign()),
        &tool_call("echo"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(validator.jwks_fetch_count() >= 1);
}

#[tokio::test]
async fn malformed_authorization_is_400() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, _) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let url = server.url("/mcp");
    let token = issuer.token(&server.resource).scopes(["mcp"]).sign();

    let resp = client()
        .post(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(www_authenticate(&resp).contains(r#"error="invalid_request""#));

    let resp = client()
        .post(format!("{url}?access_token={token}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(www_authenticate(&resp).contains(r#"error="invalid_request""#));

    let resp = client()
        .post(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    // reqwest/hyper may trim the trailing space; either way it is not a token.
    assert!(matches!(resp.status().as_u16(), 400 | 401));
}

#[tokio::test]
async fn valid_token_reaches_handler_without_authorization_header() {
    let issuer = start_issuer(Algorithm::RS256).await;
    let (server, _) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let token = issuer
        .token(&server.resource)
        .subject("alice")
        .client_id("inspector")
        .scopes(["mcp", "extra"])
        .sign();
    let body = tool_call("echo");
    // Twice: the second time the verdict comes from the cache (the synchronous path).
    for _ in 0..2 {
        let resp = post_mcp(&server.url("/mcp"), Some(&token), &body, &[]).await;
        assert_eq!(resp.status(), 200);
        let seen: Value = resp.json().await.unwrap();
        assert_eq!(seen["sub"], "alice");
        assert_eq!(seen["client_id"], "inspector");
        assert_eq!(seen["scopes"], json!(["mcp", "extra"]));
        assert_eq!(seen["source"], "Jwt");
        assert_eq!(
            seen["authorization_seen"], false,
            "the token must not reach the handler"
        );
        assert_eq!(
            serde_json::from_str::<Value>(seen["body"].as_str().unwrap()).unwrap(),
            body
        );
    }
    // Same for a token lacking the required scope: 403 both times.
    let weak = issuer.token(&server.resource).scopes(["extra"]).sign();
    for _ in 0..2 {
        let resp = post_mcp(&server.url("/mcp"), Some(&weak), &body, &[]).await;
        assert_eq!(resp.status(), 403);
        assert!(www_authenticate(&resp).contains(r#"scope="mcp", error="insufficient_scope""#));
    }
}

#[tokio::test]
async fn scope_policy_per_tool_and_method() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let policy = ScopePolicy::new()
        .method("tools/call", ["tools"])
        .tool("delete_file", ["files:write"])
        .implies("files:admin", ["files:write"]);
    let (server, _) = start_jwt_server(&issuer, policy, |b| b).await;
    let url = server.url("/mcp");
    let token = |scopes: &[&str]| issuer.token(&server.resource).scopes(scopes).sign();

    // Base scope only: tools/list is fine, tools/call needs `tools`.
    let t = token(&["mcp"]);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    assert_eq!(post_mcp(&url, Some(&t), &list, &[]).await.status(), 200);
    let resp = post_mcp(&url, Some(&t), &tool_call("echo"), &[]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        www_authenticate(&resp),
        format!(
            r#"Bearer {}, scope="mcp tools", error="insufficient_scope", error_description="The access token lacks scopes this operation needs""#,
            rm(&server)
        )
    );

    // The protected tool: every needed scope in one challenge.
    let t = token(&["mcp", "tools"]);
    assert_eq!(
        post_mcp(&url, Some(&t), &tool_call("echo"), &[])
            .await
            .status(),
        200
    );
    let resp = post_mcp(&url, Some(&t), &tool_call("delete_file"), &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(
        www_authenticate(&resp).contains(r#"scope="mcp tools files:write""#),
        "{}",
        www_authenticate(&resp)
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "mcp tools files:write");

    // Granted, directly or through the hierarchy.
    for scopes in [
        &["mcp", "tools", "files:write"][..],
        &["mcp", "tools", "files:admin"],
    ] {
        let resp = post_mcp(&url, Some(&token(scopes)), &tool_call("delete_file"), &[]).await;
        assert_eq!(resp.status(), 200, "{scopes:?}");
        let seen: Value = resp.json().await.unwrap();
        // The body the handler sees is the one sent.
        assert_eq!(
            serde_json::from_str::<Value>(seen["body"].as_str().unwrap()).unwrap(),
            tool_call("delete_file")
        );
    }

    // A batch needs the union of its messages' scopes.
    let batch = json!([tool_call("echo"), tool_call("delete_file")]);
    let resp = post_mcp(&url, Some(&t), &batch, &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(www_authenticate(&resp).contains(r#"scope="mcp tools files:write""#));

    // Missing the base scope: 403 as well, naming the base scope.
    let resp = post_mcp(&url, Some(&token(&["tools"])), &list, &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(www_authenticate(&resp).contains(r#"scope="mcp""#));
}

#[tokio::test]
async fn mcp_method_and_name_headers() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let policy = ScopePolicy::new().tool("delete_file", ["files:write"]);
    let (server, _) = start_jwt_server(&issuer, policy, |b| b).await;
    let url = server.url("/mcp");
    let t = issuer.token(&server.resource).scopes(["mcp"]).sign();

    // Headers agreeing with the body.
    let resp = post_mcp(
        &url,
        Some(&t),
        &tool_call("echo"),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
    )
    .await;
    assert_eq!(resp.status(), 200);

    // A harmless name in the header cannot hide the tool in the body.
    let resp = post_mcp(
        &url,
        Some(&t),
        &tool_call("delete_file"),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020);
    assert_eq!(body["id"], 7);

    let resp = post_mcp(
        &url,
        Some(&t),
        &tool_call("echo"),
        &[("mcp-method", "tools/list")],
    )
    .await;
    assert_eq!(resp.status(), 400);

    // Base64-encoded name, decoded before comparing: matches, then the policy applies.
    let resp = post_mcp(
        &url,
        Some(&t),
        &tool_call("delete_file"),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZGVsZXRlX2ZpbGU=?="),
        ],
    )
    .await;
    assert_eq!(resp.status(), 403);

    // Without a JSON-RPC body the headers decide.
    let resp = client()
        .post(&url)
        .bearer_auth(&t)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "delete_file")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client()
        .get(&url)
        .bearer_auth(&t)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "delete_file")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn body_cap() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let iss = issuer.issuer().to_owned();
    let jwks = issuer.jwks_uri();
    let (l, addr) = bind().await;
    let resource_url = format!("http://{addr}/mcp");
    let resource = mcp_oauth_server::ProtectedResource::builder(&resource_url)
        .authorization_server(iss)
        .build()
        .unwrap();
    let v = mcp_oauth_server::JwtValidator::builder(&resource)
        .jwks_uri(jwks)
        .build()
        .unwrap();
    let layer = mcp_oauth_server::McpAuthLayer::new(resource, v)
        .with_scope_policy(ScopePolicy::new().tool("x", ["y"]))
        .with_max_body_bytes(1024);
    serve(l, echo_router().layer(layer));
    let t = issuer.token(&resource_url).sign();
    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"s":"x".repeat(4096)}}});
    let resp = post_mcp(&resource_url, Some(&t), &big, &[]).await;
    assert_eq!(resp.status(), 413);
    // Chunked (no Content-Length) too.
    let stream = futures_stream(serde_json::to_vec(&big).unwrap());
    let resp = client()
        .post(&resource_url)
        .bearer_auth(&t)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let small = tool_call("echo");
    assert_eq!(
        post_mcp(&resource_url, Some(&t), &small, &[])
            .await
            .status(),
        200
    );
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(
        bytes
            .chunks(100)
            .map(|c| Ok(c.to_vec()))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn jwks_unreachable_is_503() {
    let (l, addr) = bind().await;
    drop(l); // nothing listens there now
    let issuer_url = format!("http://{addr}");
    let jwks = format!("{issuer_url}/jwks");
    let iss = issuer_url.clone();
    let server = start_server(
        |b| b.authorization_server(iss),
        ScopePolicy::new(),
        |r| {
            mcp_oauth_server::JwtValidator::builder(r)
                .jwks_uri(jwks)
                .connect_timeout(Duration::from_secs(2))
                .build()
                .unwrap()
        },
    )
    .await;
    let key = DevKey::generate(Algorithm::ES256, "k");
    let token = key.sign(&json!({"iss": issuer_url, "aud": server.resource, "exp": jsonwebtoken::get_current_timestamp() + 60}));
    let resp = post_mcp(&server.url("/mcp"), Some(&token), &tool_call("echo"), &[]).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("www-authenticate").is_none());
    assert!(resp.headers().get("retry-after").is_some());
}

/// Only the metadata documents this layer serves, and real CORS preflights (an `OPTIONS`
/// with `Origin` and `Access-Control-Request-Method`), skip authentication: any other
/// `/.well-known/` path, and any other `OPTIONS`, is challenged like the rest.
#[tokio::test]
async fn only_metadata_and_real_preflights_skip_authentication() {
    use axum::Router;
    use axum::routing::any;
    use mcp_oauth_server::{JwtValidator, McpAuthLayer, ProtectedResource};
    const REACHED: &str = "reached the inner service";
    let issuer = start_issuer(Algorithm::ES256).await;
    let (listener, addr) = bind().await;
    let base = format!("http://{addr}");
    let resource = ProtectedResource::builder(format!("{base}/mcp"))
        .authorization_server(issuer.issuer())
        .build()
        .unwrap();
    let validator = JwtValidator::builder(&resource)
        .jwks_uri(issuer.jwks_uri())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/mcp", any(|| async { REACHED }))
        .route("/.well-known/internal-config", any(|| async { REACHED }))
        .route(
            "/.well-known/oauth-protected-resource/other",
            any(|| async { REACHED }),
        )
        .layer(McpAuthLayer::new(resource, validator));
    serve(listener, app);
    let c = client();
    let (origin, acrm) = ("origin", "access-control-request-method");
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(reqwest::Method, &str, Headers); 6] = [
        (reqwest::Method::GET, "/.well-known/internal-config", &[]),
        (
            reqwest::Method::GET,
            "/.well-known/oauth-protected-resource/other",
            &[],
        ),
        (reqwest::Method::OPTIONS, "/mcp", &[]),
        (
            reqwest::Method::OPTIONS,
            "/mcp",
            &[(origin, "https://app.example")],
        ),
        (reqwest::Method::OPTIONS, "/mcp", &[(acrm, "POST")]),
        (
            reqwest::Method::OPTIONS,
            "/.well-known/internal-config",
            &[(origin, "https://app.example")],
        ),
    ];
    for (method, path, headers) in cases {
        let mut req = c.request(method.clone(), format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let challenge = www_authenticate(&resp);
        let body = resp.text().await.unwrap();
        assert_eq!(status, 401, "{method} {path} {headers:?}: {body}");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert_ne!(body, REACHED);
    }

    // A real preflight goes through (it never carries credentials).
    let resp = c
        .request(reqwest::Method::OPTIONS, format!("{base}/mcp"))
        .header(origin, "https://app.example")
        .header(acrm, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), REACHED);
    // Both metadata documents are answered by the layer, without a token.
    for path in [RM_PATH, WELL_KNOWN_PRM] {
        let resp = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    // Another well-known path is served to an authenticated request.
    let token = issuer.token(format!("{base}/mcp")).scopes(["mcp"]).sign();
    let resp = c
        .get(format!("{base}/.well-known/internal-config"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), REACHED);
}
