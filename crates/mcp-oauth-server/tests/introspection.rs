//! RFC 7662 introspection behind the layer: active, inactive, caching, audience,
//! endpoint failures.

mod common;

use common::*;
use mcp_oauth_server::{IntrospectionValidator, ScopePolicy, TokenError, TokenValidator};
use serde_json::{Value, json};
use std::sync::Arc;

async fn setup(
    tune: impl FnOnce(
        mcp_oauth_server::IntrospectionValidatorBuilder,
    ) -> mcp_oauth_server::IntrospectionValidatorBuilder,
) -> (Server, Arc<MockIntrospection>, IntrospectionValidator) {
    let mock = start_introspection();
    let endpoint = mock.url.clone();
    let mut out = None;
    let server = start_server(
        |b| {
            b.authorization_server("https://as.example")
                .required_scopes(["mcp"])
        },
        ScopePolicy::new().tool("admin_tool", ["admin"]),
        |r| {
            let v = tune(
                IntrospectionValidator::builder(r, endpoint)
                    .client_credentials("rs-client", "rs-secret"),
            )
            .build()
            .unwrap();
            out = Some(v.clone());
            v
        },
    )
    .await;
    (server, mock, out.unwrap())
}

fn active(server: &Server, scope: &str) -> Value {
    json!({
        "active": true,
        "scope": scope,
        "client_id": "inspector",
        "sub": "carol",
        "aud": server.resource,
        "iss": "https://as.example",
        "token_type": "Bearer",
        "exp": jsonwebtoken::get_current_timestamp() + 600,
    })
}

#[tokio::test]
async fn active_token_is_accepted_and_cached() {
    let (server, mock, validator) = setup(|b| b).await;
    mock.set("opaque-1", active(&server, "mcp"));
    let url = server.url("/mcp");
    for _ in 0..3 {
        let resp = post_mcp(&url, Some("opaque-1"), &tool_call("echo"), &[]).await;
        assert_eq!(resp.status(), 200);
        let seen: Value = resp.json().await.unwrap();
        assert_eq!(seen["sub"], "carol");
        assert_eq!(seen["client_id"], "inspector");
        assert_eq!(seen["source"], "Introspection");
        assert_eq!(seen["authorization_seen"], false);
    }
    assert_eq!(mock.requests(), 1, "later requests answered from the cache");
    assert_eq!(validator.request_count(), 1);

    // Scope policy applies to introspected scopes too.
    let resp = post_mcp(&url, Some("opaque-1"), &tool_call("admin_tool"), &[]).await;
    assert_eq!(resp.status(), 403);
    assert!(www_authenticate(&resp).contains(r#"scope="mcp admin""#));
}

#[tokio::test]
async fn inactive_token_is_401_and_cached() {
    let (server, mock, _) = setup(|b| b).await;
    let url = server.url("/mcp");
    for _ in 0..3 {
        let resp = post_mcp(&url, Some("revoked"), &tool_call("echo"), &[]).await;
        assert_eq!(resp.status(), 401);
        assert!(www_authenticate(&resp).contains(r#"error="invalid_token""#));
        assert!(www_authenticate(&resp).contains("The access token is not active"));
    }
    assert_eq!(mock.requests(), 1, "the negative answer is cached");
}

#[tokio::test]
async fn audience_issuer_expiry_checked() {
    let (server, mock, v) = setup(|b| b.cache_ttl(std::time::Duration::ZERO)).await;
    let mut other_aud = active(&server, "mcp");
    other_aud["aud"] = json!("https://other.example/mcp");
    mock.set("t-aud", other_aud);
    assert_eq!(v.validate("t-aud").await, Err(TokenError::WrongAudience));

    let mut no_aud = active(&server, "mcp");
    no_aud.as_object_mut().unwrap().remove("aud");
    mock.set("t-noaud", no_aud.clone());
    assert_eq!(v.validate("t-noaud").await, Err(TokenError::WrongAudience));

    let mut other_iss = active(&server, "mcp");
    other_iss["iss"] = json!("https://evil.example");
    mock.set("t-iss", other_iss);
    assert_eq!(v.validate("t-iss").await, Err(TokenError::WrongIssuer));

    let mut expired = active(&server, "mcp");
    expired["exp"] = json!(jsonwebtoken::get_current_timestamp() - 3600);
    mock.set("t-exp", expired);
    let resp = post_mcp(&server.url("/mcp"), Some("t-exp"), &tool_call("echo"), &[]).await;
    assert_eq!(resp.status(), 401);
    assert!(www_authenticate(&resp).contains("The access token expired"));

    // Opt-in leniency for ASes that omit `aud`.
    let (server2, mock2, lax) = setup(|b| b.allow_missing_audience(true)).await;
    let _ = server2;
    mock2.set("t-noaud", no_aud);
    assert!(lax.validate("t-noaud").await.is_ok());
}

#[tokio::test]
async fn endpoint_failure_is_503_and_not_cached() {
    let mock = start_introspection();
    let endpoint = mock.url.clone();
    let mut out = None;
    let server = start_server(
        |b| b.authorization_server("https://as.example"),
        ScopePolicy::new(),
        |r| {
            // Wrong credentials: the endpoint answers 401 invalid_client.
            let v = IntrospectionValidator::builder(r, endpoint)
                .client_credentials("rs-client", "wrong")
                .build()
                .unwrap();
            out = Some(v.clone());
            v
        },
    )
    .await;
    mock.set("tok", json!({"active": true, "aud": server.resource}));
    for _ in 0..2 {
        let resp = post_mcp(&server.url("/mcp"), Some("tok"), &tool_call("echo"), &[]).await;
        assert_eq!(resp.status(), 503);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    assert_eq!(mock.requests(), 2, "failures are not cached");
    assert_eq!(out.unwrap().request_count(), 2);
}
