//! JWKS behaviour: rotation, unknown-kid storms, discovery, algorithms, caching.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use mcp_oauth_server::dev::DevKey;
use mcp_oauth_server::{JwtValidator, ScopePolicy, TokenError, TokenValidator};
use std::time::Duration;

#[tokio::test]
async fn rotation_refetches_once() {
    let issuer = start_issuer(Algorithm::ES256).await;
    // A long cooldown: the rotation must still be picked up (the first miss refetches).
    let (server, validator) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.kid_miss_cooldown(Duration::from_secs(3600))
    })
    .await;
    let url = server.url("/mcp");
    let mint = || issuer.token(&server.resource).scopes(["mcp"]).sign();

    assert_eq!(
        post_mcp(&url, Some(&mint()), &tool_call("a"), &[])
            .await
            .status(),
        200
    );
    assert_eq!(validator.jwks_fetch_count(), 1);
    assert_eq!(issuer.jwks_requests(), 1);

    // The AS rotates: new key published and used, old one withdrawn.
    let old = issuer.signing_key().kid().to_owned();
    let new = issuer.rotate(Algorithm::ES256);
    issuer.remove_key(&old);
    assert_ne!(old, new);

    assert_eq!(
        post_mcp(&url, Some(&mint()), &tool_call("b"), &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        validator.jwks_fetch_count(),
        2,
        "one refetch for the new kid"
    );
    // Further tokens with the new kid: no more fetches.
    for _ in 0..5 {
        assert_eq!(
            post_mcp(&url, Some(&mint()), &tool_call("c"), &[])
                .await
                .status(),
            200
        );
    }
    assert_eq!(validator.jwks_fetch_count(), 2);
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kid_storm_is_rate_limited() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, validator) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.kid_miss_cooldown(Duration::from_secs(3600))
    })
    .await;
    let url = server.url("/mcp");
    let good = issuer.token(&server.resource).scopes(["mcp"]).sign();
    assert_eq!(
        post_mcp(&url, Some(&good), &tool_call("a"), &[])
            .await
            .status(),
        200
    );
    assert_eq!(validator.jwks_fetch_count(), 1);

    // 40 concurrent requests, each with a different unknown kid.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let key = DevKey::generate(Algorithm::ES256, format!("attacker-{i}"));
        let token = issuer
            .token(&server.resource)
            .scopes(["mcp"])
            .key(key)
            .sign();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            post_mcp(&url, Some(&token), &tool_call("a"), &[])
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    // One refetch for the whole storm (concurrent misses share it; later ones are
    // inside the cooldown).
    assert_eq!(validator.jwks_fetch_count(), 2);
    assert_eq!(issuer.jwks_requests(), 2);

    // A real rotation inside the cooldown is not seen until the cooldown ends; tokens
    // with known kids are unaffected.
    assert_eq!(
        post_mcp(&url, Some(&good), &tool_call("a"), &[])
            .await
            .status(),
        200
    );
    assert_eq!(validator.jwks_fetch_count(), 2);
}

#[tokio::test]
async fn zero_cooldown_refetches_on_every_miss() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, validator) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.kid_miss_cooldown(Duration::ZERO)
    })
    .await;
    let v = validator.clone();
    let good = issuer.token(&server.resource).scopes(["mcp"]).sign();
    assert!(v.validate(&good).await.is_ok());
    let stranger = DevKey::generate(Algorithm::ES256, "nope");
    let bad = issuer.token(&server.resource).key(stranger).sign();
    assert_eq!(v.validate(&bad).await, Err(TokenError::UnknownKey));
    assert_eq!(v.validate(&bad).await, Err(TokenError::UnknownKey));
    assert_eq!(validator.jwks_fetch_count(), 3);
}

#[tokio::test]
async fn jwks_uri_discovered_from_issuer_metadata() {
    let issuer = start_issuer(Algorithm::EdDSA).await;
    let iss = issuer.issuer().to_owned();
    let server = start_server(
        |b| b.authorization_server(iss),
        ScopePolicy::new(),
        // No jwks_uri: RFC 8414 metadata of the issuer names it.
        |r| JwtValidator::builder(r).build().unwrap(),
    )
    .await;
    let token = issuer.token(&server.resource).subject("bob").sign();
    let resp = post_mcp(&server.url("/mcp"), Some(&token), &tool_call("a"), &[]).await;
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(seen["sub"], "bob");
}

#[tokio::test]
async fn discovery_refuses_metadata_for_another_issuer() {
    let issuer = start_issuer(Algorithm::ES256).await;
    // The validator expects a different issuer string (a trailing slash) than the one the
    // metadata states: the document is refused, exact comparison.
    let claimed = format!("{}/", issuer.issuer());
    let (l, addr) = bind().await;
    let resource_url = format!("http://{addr}/mcp");
    let resource = mcp_oauth_server::ProtectedResource::builder(&resource_url)
        .authorization_server(issuer.issuer())
        .build()
        .unwrap();
    drop(l);
    let v = JwtValidator::builder(&resource)
        .issuer(claimed.clone())
        .build()
        .unwrap();
    let token = issuer.token(&resource_url).claim("iss", claimed).sign();
    match v.validate(&token).await {
        Err(TokenError::Unavailable(msg)) => assert!(msg.contains("issuer"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_default_algorithm_verifies() {
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let issuer = start_issuer(alg).await;
        let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
        let token = issuer.token(&server.resource).scopes(["mcp"]).sign();
        let claims = v
            .validate(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.scopes(), ["mcp"]);
    }
    // ES384 is not in the default allow-list.
    let issuer = start_issuer(Algorithm::ES384).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let token = issuer.token(&server.resource).sign();
    assert_eq!(
        v.validate(&token).await,
        Err(TokenError::DisallowedAlgorithm)
    );
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.algorithms([Algorithm::ES384])
    })
    .await;
    let token = issuer.token(&server.resource).sign();
    assert!(v.validate(&token).await.is_ok());
}

#[tokio::test]
async fn key_of_another_algorithm_is_not_used() {
    // An RS256 token whose kid names the issuer's EC key.
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let kid = issuer.signing_key().kid().to_owned();
    let rsa = DevKey::generate(Algorithm::RS256, kid);
    let token = issuer.token(&server.resource).key(rsa).sign();
    assert_eq!(v.validate(&token).await, Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn required_typ() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.require_typ(["at+jwt", "application/at+jwt"])
    })
    .await;
    let key = issuer.signing_key();
    let claims = issuer.token(&server.resource).claims();
    assert!(
        v.validate(&key.sign(&claims)).await.is_ok(),
        "DevKey signs with typ at+jwt"
    );
    let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
    h.kid = Some(key.kid().to_owned());
    h.typ = Some("JWT".into());
    assert_eq!(
        v.validate(&key.sign_with_header(&h, &claims)).await,
        Err(TokenError::WrongJwtType)
    );
}

#[tokio::test]
async fn leeway_applies_to_exp_and_nbf() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| {
        b.leeway(Duration::from_secs(60)).cache_ttl(Duration::ZERO)
    })
    .await;
    let now = jsonwebtoken::get_current_timestamp();
    let t = |k: &str, at: u64| issuer.token(&server.resource).claim(k, at).sign();
    assert!(
        v.validate(&t("exp", now - 10)).await.is_ok(),
        "within leeway"
    );
    assert_eq!(
        v.validate(&t("exp", now - 600)).await,
        Err(TokenError::Expired)
    );
    assert!(
        v.validate(&t("nbf", now + 10)).await.is_ok(),
        "within leeway"
    );
    assert_eq!(
        v.validate(&t("nbf", now + 600)).await,
        Err(TokenError::NotYetValid)
    );
}

#[tokio::test]
async fn valid_tokens_are_cached() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let token = issuer.token(&server.resource).sign();
    assert!(v.validate(&token).await.is_ok());
    // The key is withdrawn; the remembered verdict holds (for at most cache_ttl).
    let kid = issuer.signing_key().kid().to_owned();
    issuer.rotate(Algorithm::ES256);
    issuer.remove_key(&kid);
    assert!(v.validate(&token).await.is_ok(), "cached");
}

/// RFC 9068 §4: a JWT access token has `typ` `at+jwt` (or `application/at+jwt`, in any
/// case); anything else (an ID token, a plain `JWT`, no `typ`) is refused by default, with
/// an `error_description` that says why.
#[tokio::test]
async fn jwt_typ_at_jwt_is_required_by_default() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) = start_jwt_server(&issuer, ScopePolicy::new(), |b| b).await;
    let key = issuer.signing_key();
    let claims = issuer.token(&server.resource).scopes(["mcp"]).claims();
    let sign = |typ: Option<&str>| {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.kid = Some(key.kid().to_owned());
        h.typ = typ.map(str::to_owned);
        key.sign_with_header(&h, &claims)
    };
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+JWT",
    ] {
        assert!(v.validate(&sign(Some(typ))).await.is_ok(), "{typ}");
    }
    for typ in [
        Some("JWT"),
        Some("jwt"),
        None,
        Some("at+jwt2"),
        Some("id_token+jwt"),
    ] {
        assert_eq!(
            v.validate(&sign(typ)).await,
            Err(TokenError::WrongJwtType),
            "{typ:?}"
        );
        let resp = post_mcp(
            &server.url("/mcp"),
            Some(&sign(typ)),
            &tool_call("echo"),
            &[],
        )
        .await;
        assert_eq!(resp.status(), 401, "{typ:?}");
        let challenge = www_authenticate(&resp);
        assert!(
            challenge.contains(r#"error="invalid_token""#)
                && challenge.contains("typ header is not at+jwt"),
            "{typ:?}: {challenge}"
        );
    }
}

/// The documented opt-out, for issuers that do not set `typ`: any `typ`, or none.
#[tokio::test]
async fn allow_any_jwt_typ_accepts_other_types() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let (server, v) =
        start_jwt_server(&issuer, ScopePolicy::new(), |b| b.allow_any_jwt_typ()).await;
    let key = issuer.signing_key();
    let claims = issuer.token(&server.resource).scopes(["mcp"]).claims();
    for typ in [Some("JWT"), None, Some("at+jwt")] {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.kid = Some(key.kid().to_owned());
        h.typ = typ.map(str::to_owned);
        let token = key.sign_with_header(&h, &claims);
        assert!(v.validate(&token).await.is_ok(), "{typ:?}");
        let resp = post_mcp(&server.url("/mcp"), Some(&token), &tool_call("echo"), &[]).await;
        assert_eq!(resp.status(), 200, "{typ:?}");
    }
}
