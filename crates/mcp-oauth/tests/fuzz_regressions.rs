//! Inputs the fuzz targets (`fuzz/`) found crashing, kept as regression tests named after
//! what they found. Each quotes the crashing input verbatim.

use mcp_oauth::Step;
use mcp_oauth::discovery::as_metadata;
use mcp_oauth::discovery::prm;
use mcp_oauth::discovery::trace::DiscoveryTrace;
use mcp_oauth::token::parse_token_response;

/// fuzz target `token_response`, crash-cb4c1176: `expires_in` of 1e308 (or any value near
/// u64::MAX) overflowed `now + expires_in` — a panic with overflow checks, and without them
/// an expiry in the past, so that every request would refresh the token.
#[test]
fn token_response_huge_expires_in_saturates_instead_of_overflowing() {
    for body in [
        &br#"{"access_token":"y","expires_in":1e308}"#[..],
        br#"{"access_token":"y","expires_in":18446744073709551615}"#,
        br#"{"access_token":"y","expires_in":"18446744073709551615"}"#,
    ] {
        let t =
            parse_token_response(Step::TokenExchange, "https://as/token", 200, body, None).unwrap();
        assert_eq!(
            t.expires_at,
            Some(u64::MAX),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// fuzz target `as_metadata`, crash-d3866b0f: the issuer `h7.0.0.1ttp://127.0.0.1:9` (any
/// non-HTTP scheme) has an opaque origin, serialized as `null`, so the metadata
/// "URLs" were `null/.well-known/oauth-authorization-server`. Such an issuer is refused.
#[test]
fn as_metadata_issuer_with_a_non_http_scheme_has_no_candidates() {
    for issuer in [
        "h7.0.0.1ttp://127.0.0.1:9",
        "urn:example:as",
        "file:///etc/passwd",
        "data:text/plain,x",
    ] {
        let e = as_metadata::candidates(issuer).unwrap_err().to_string();
        assert!(e.contains("https URL"), "{issuer}: {e}");
    }
    assert!(as_metadata::candidates("https://as.example.com").is_ok());
    assert!(as_metadata::candidates("http://127.0.0.1:9").is_ok());
}

/// The same input as a challenge's `resource_metadata`: not fetched, noted in the trace.
#[test]
fn prm_resource_metadata_with_a_non_http_scheme_is_skipped() {
    let mut trace = DiscoveryTrace::default();
    let c = prm::candidates(
        "https://mcp.example.com/mcp",
        Some("h7.0.0.1ttp://127.0.0.1:9"),
        &mut trace,
    )
    .unwrap();
    assert!(
        c.iter()
            .all(|(_, u)| u.starts_with("https://mcp.example.com/")),
        "{c:?}"
    );
    assert!(trace.to_string().contains("not an http(s) URL"), "{trace}");
}

/// fuzz target `token_response`, crash-5942c336: the body `["refresh_token"]` (a JSON array)
/// was read as a token response whose access token is "refresh_token": serde's derive
/// reads a struct from an array by position. Token responses, metadata and registration
/// responses must be JSON objects.
#[test]
fn token_response_that_is_a_json_array_is_refused() {
    let body = b"[ \"refresh_token\"\n\n ]\t\t";
    let err =
        parse_token_response(Step::TokenExchange, "https://as/token", 200, body, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("not a JSON object"), "{msg}");
    assert!(msg.contains("https://as/token"), "{msg}");
    // The same shape as an object is still a token.
    let ok = parse_token_response(
        Step::TokenExchange,
        "https://as/token",
        200,
        br#"{"access_token": "refresh_token"}"#,
        None,
    )
    .unwrap();
    assert_eq!(ok.access_token.expose(), "refresh_token");
}

/// fuzz target `oauth_callback`, crash-d2bfd515: a pasted "code" that spells the start of
/// the Debug view of the parsed callback (`CallbackParams { code: "Some([redacted])", …`)
/// made the target's leak check, which looked for the code in the Debug text, fire. Not a
/// leak: the Debug view is the same whatever the code, which the target now checks.
#[test]
fn oauth_callback_code_that_spells_the_redacted_debug_view_is_not_a_leak() {
    use mcp_oauth::authorize::CallbackParams;
    use mcp_oauth::secret::AuthorizationCode;
    let pasted = r#"CallbackParams { code: "Some([redacted])", state: None, iss: Non"#;
    let p = CallbackParams::from_pasted(pasted).unwrap();
    assert_eq!(p.code.as_ref().map(|c| c.expose()), Some(pasted));
    let mut other = p.clone();
    other.code = Some(AuthorizationCode::new("a-different-code"));
    assert_eq!(format!("{p:?}"), format!("{other:?}"));
    assert!(format!("{p:?}").contains("[redacted]"));
}
