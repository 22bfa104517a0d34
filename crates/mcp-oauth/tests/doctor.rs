//! `doctor`'s typed report, as `doctor --json` prints it, when the server cannot be reached.
//! The verdicts on seed-server shapes, with their text snapshots, are in the command line's
//! tests (`crates/mcp-oauth-cli/tests/doctor.rs`), next to the rendering.

use mcp_oauth::OAuthConfig;
use mcp_oauth::doctor;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth_testkit::fault_server::closed_port;

#[tokio::test]
async fn unreachable_server_is_reported() {
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let port = closed_port();
    let r = doctor::diagnose(
        &http,
        &OAuthConfig::new(format!("http://127.0.0.1:{port}/mcp")),
    )
    .await;
    assert!(r.must_violations() >= 1);
    assert!(
        r.checks[0].message.contains("could not be reached"),
        "{:?}",
        r.checks
    );
    // The JSON form is what scripts read.
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["checks"][0]["level"], "fail");
}

/// A 2025-03-26 server (no protected resource metadata: the MCP origin is the
/// authorization server) whose metadata names the issuer with a trailing slash, like the
/// MCP Python SDK's legacy example. The issuer check speaks of the origin, not of a PRM
/// that does not exist, and says what would fix it.
#[tokio::test]
async fn an_issuer_apart_from_the_origin_is_said_in_the_fallbacks_terms() {
    use mcp_oauth_testkit::mock_server::{MockServer, json, not_found};
    let server = MockServer::start(|base, req| async move {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/mcp") | ("GET", "/mcp") => {
                let mut r = json(401, serde_json::json!({"error": "invalid_token"}));
                r.headers_mut()
                    .insert("www-authenticate", "Bearer".parse().unwrap());
                r
            }
            ("GET", "/.well-known/oauth-authorization-server") => json(
                200,
                serde_json::json!({
                    "issuer": format!("{base}/"),
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "registration_endpoint": format!("{base}/register"),
                    "code_challenge_methods_supported": ["S256"],
                }),
            ),
            _ => not_found(),
        }
    });
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let r = doctor::diagnose(&http, &OAuthConfig::new(format!("{}/mcp", server.base()))).await;
    let issuer = r
        .checks
        .iter()
        .find(|c| c.step == "issuer")
        .unwrap_or_else(|| panic!("no issuer check: {:#?}", r.checks));
    assert!(
        issuer
            .message
            .contains("without protected resource metadata the MCP server's origin")
            && !issuer.message.contains("PRM names"),
        "{}",
        issuer.message
    );
    assert!(
        issuer
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("serve protected resource metadata")),
        "{:?}",
        issuer.fix
    );
}
