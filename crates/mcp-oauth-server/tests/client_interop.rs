//! What this crate writes, read back by the `mcp-oauth` client: challenges parsed with
//! `mcp_oauth::challenge::parse_challenges` (strict) and metadata found by
//! `mcp_oauth::discovery::prm::discover` in spec order.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use mcp_oauth::challenge::{bearer, parse_challenges};
use mcp_oauth::discovery::prm::{self, PrmSource};
use mcp_oauth::discovery::trace::DiscoveryTrace;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth_server::{JwtValidator, ScopePolicy};

fn parse(resp: &reqwest::Response) -> mcp_oauth::challenge::BearerChallenge {
    let fields: Vec<&str> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let challenges = parse_challenges(&fields).expect("strictly valid challenge");
    assert_eq!(challenges.len(), 1);
    bearer(&challenges).expect("a Bearer challenge")
}

#[tokio::test]
async fn client_reads_challenges_and_metadata() {
    let issuer = start_issuer(Algorithm::ES256).await;
    let policy = ScopePolicy::new().tool("delete_file", ["files:write"]);
    let (server, _) = start_jwt_server(&issuer, policy, |b| b).await;
    let url = server.url("/mcp");
    let expected_rm = server.url("/.well-known/oauth-protected-resource/mcp");

    // 401 without a token.
    let resp = post_mcp(&url, None, &tool_call("echo"), &[]).await;
    let b = parse(&resp);
    assert_eq!(b.resource_metadata.as_deref(), Some(expected_rm.as_str()));
    assert_eq!(b.scope.as_deref(), Some("mcp"));
    assert_eq!(b.error, None);

    // 401 invalid_token.
    let resp = post_mcp(&url, Some("garbage"), &tool_call("echo"), &[]).await;
    let b = parse(&resp);
    assert_eq!(b.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        b.error_description.as_deref(),
        Some("The access token is malformed")
    );
    assert_eq!(b.resource_metadata.as_deref(), Some(expected_rm.as_str()));

    // 403 insufficient_scope.
    let token = issuer.token(&server.resource).scopes(["mcp"]).sign();
    let resp = post_mcp(&url, Some(&token), &tool_call("delete_file"), &[]).await;
    assert_eq!(resp.status(), 403, "{}", www_authenticate(&resp));
    let b = parse(&resp);
    assert_eq!(b.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(b.scope.as_deref(), Some("mcp files:write"));
    assert_eq!(b.resource_metadata.as_deref(), Some(expected_rm.as_str()));

    // Discovery from the challenge's resource_metadata, then from the well-knowns.
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let mut trace = DiscoveryTrace::default();
    let found = prm::discover(&http, &server.resource, Some(&expected_rm), &mut trace)
        .await
        .unwrap()
        .expect("metadata found");
    assert_eq!(found.source, PrmSource::Header);
    assert_eq!(
        found.metadata.resource, server.resource,
        "resource verbatim"
    );
    assert_eq!(found.metadata.authorization_servers, [issuer.issuer()]);
    assert_eq!(
        found.metadata.scopes_supported.as_deref(),
        Some(&["mcp".to_owned()][..])
    );
    assert!(prm::resource_matches(
        &found.metadata.resource,
        &server.resource
    ));

    let mut trace = DiscoveryTrace::default();
    let found = prm::discover(&http, &server.resource, None, &mut trace)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.source, PrmSource::PathInserted);
}

#[tokio::test]
async fn client_without_challenge_finds_root_metadata() {
    // A server that only publishes the root document: a client that ignores
    // resource_metadata still finds it, after the path-inserted miss.
    let issuer = start_issuer(Algorithm::ES256).await;
    let iss = issuer.issuer().to_owned();
    let jwks = issuer.jwks_uri();
    let server = start_server(
        |b| b.authorization_server(iss).serve_path_metadata(false),
        ScopePolicy::new(),
        |r| JwtValidator::builder(r).jwks_uri(jwks).build().unwrap(),
    )
    .await;
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let mut trace = DiscoveryTrace::default();
    let found = prm::discover(&http, &server.resource, None, &mut trace)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.source, PrmSource::Root);
    assert_eq!(found.metadata.resource, server.resource);
    // And the challenge points at the root document.
    let resp = post_mcp(&server.url("/mcp"), None, &tool_call("x"), &[]).await;
    assert_eq!(
        parse(&resp).resource_metadata.as_deref(),
        Some(server.url("/.well-known/oauth-protected-resource").as_str())
    );
}
