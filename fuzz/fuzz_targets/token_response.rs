//! Token endpoint responses (RFC 6749 §5.1/§5.2 and what real servers send instead):
//! never panics; a success has an access token and a sane expiry; Debug never shows a
//! token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::Step;
use mcp_oauth::token::parse_token_response;

fuzz_target!(|data: &[u8]| {
    let (head, body) = data.split_at(data.len().min(1));
    let status = match head.first().copied().unwrap_or(0) % 5 {
        0 | 1 => 200,
        2 => 400,
        3 => 401,
        _ => 503,
    };
    let step = if status == 200 {
        Step::TokenExchange
    } else {
        Step::Refresh
    };
    match parse_token_response(
        step,
        "https://as.example.com/token",
        status,
        body,
        Some("mcp:read"),
    ) {
        Ok(t) => {
            assert!((200..300).contains(&status));
            let at = t.access_token.expose();
            assert!(!at.is_empty());
            assert!(
                t.refresh_token
                    .as_ref()
                    .is_none_or(|r| !r.expose().is_empty())
            );
            assert!(t.expires_at.is_none_or(|e| e >= t.obtained_at));
            let debug = format!("{t:?}");
            for secret in [Some(at), t.refresh_token.as_ref().map(|r| r.expose())]
                .into_iter()
                .flatten()
            {
                let in_plain_fields = [
                    t.token_type.as_str(),
                    t.scope.as_deref().unwrap_or(""),
                    "mcp:read",
                    // The Debug output's own words (a token may be "refresh_token").
                    "TokenSet access_token token_type refresh_token expires_at obtained_at \
                     requested_scope scope",
                ]
                .iter()
                .any(|f| f.contains(secret))
                    || "AccessToken([redacted]) Some([redacted]) None".contains(secret)
                    || t.expires_at.is_some_and(|e| e.to_string().contains(secret));
                if secret.len() >= 6 && !in_plain_fields {
                    assert!(!debug.contains(secret), "Debug shows a token: {debug}");
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.oauth_error();
        }
    }
});
