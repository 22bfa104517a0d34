use super::*;

#[test]
fn redirect_uri_rules() {
    assert!(check_redirect_uri("http://127.0.0.1:4567/callback").is_ok());
    assert!(check_redirect_uri("http://localhost:3334/oauth/callback").is_ok());
    assert!(check_redirect_uri("http://[::1]:80/cb").is_ok());
    assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
    assert!(check_redirect_uri("com.example.app:/cb").is_ok());
    assert!(check_redirect_uri("http://example.com/cb").is_err());
    assert!(check_redirect_uri("http://127.0.0.1/cb#frag").is_err());
    assert!(check_redirect_uri("/relative").is_err());
    assert!(check_redirect_uri("javascript:alert(1)").is_err());
}

#[test]
fn public_client_ids_survive_a_restart() {
    let grants = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
    let uris = vec![
        "http://127.0.0.1:4567/callback".to_owned(),
        "http://localhost:3334/oauth/callback".to_owned(),
    ];
    let id = public_client_id(&grants, &uris);
    // Another process (a restarted demo) knows it without any state.
    let fresh = DevAuthServer::new(
        DevAuthServerConfig::new("http://127.0.0.1:1", "http://127.0.0.1:2/mcp"),
        EventSink::none(),
    );
    let c = fresh.client(&id).expect("decoded");
    assert_eq!(c.redirect_uris, uris);
    assert_eq!(c.grant_types, grants);
    assert!(c.secret_hash.is_none());
    assert!(fresh.client("demo-AAAA").is_none());
    assert!(fresh.client("nope").is_none());
    let bad = format!("demo-{}", URL_SAFE_NO_PAD.encode("r http://example.com/cb"));
    assert!(fresh.client(&bad).is_none(), "non-loopback http refused");
}

#[test]
fn scope_granting() {
    let s = DevAuthServer::new(
        DevAuthServerConfig::new("http://127.0.0.1:1", "http://127.0.0.1:2/mcp"),
        EventSink::none(),
    );
    assert_eq!(s.grant_scope(None), "mcp");
    assert_eq!(
        s.grant_scope(Some("mcp offline_access")),
        "mcp offline_access"
    );
    assert_eq!(s.grant_scope(Some("openid profile")), "mcp");
    assert_eq!(s.grant_scope(Some("offline_access")), "mcp offline_access");
    assert_eq!(s.grant_scope(Some("mcp mcp")), "mcp");
}

#[test]
fn params() {
    assert!(parse_params("a=1&a=2").is_err());
    assert_eq!(
        with_params(
            "http://127.0.0.1:1/cb",
            &[("code", "x y"), ("iss", "http://i")]
        ),
        "http://127.0.0.1:1/cb?code=x+y&iss=http%3A%2F%2Fi"
    );
    assert_eq!(
        with_params("http://127.0.0.1:1/cb?k=v", &[("code", "c")]),
        "http://127.0.0.1:1/cb?k=v&code=c"
    );
}
