//! `doctor`'s typed report, as `doctor --json` prints it, when the server cannot be reached.
//! The verdicts on seed-server shapes, with their text snapshots, are in the command line's
//! tests (`crates/mcp-oauth-cli/tests/doctor.rs`), next to the rendering.

use mcp_oauth::OAuthConfig;
use mcp_oauth::doctor;
use mcp_oauth::http::{HttpClient, HttpPolicy};

#[tokio::test]
async fn unreachable_server_is_reported() {
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
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
