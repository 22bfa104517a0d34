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
