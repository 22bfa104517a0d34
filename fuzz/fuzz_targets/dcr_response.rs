//! Dynamic Client Registration responses (RFC 7591 §3.2): success and error bodies with
//! any status. A registered client always has a client id; an empty secret is none; an
//! error never quotes the client secret the body carried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::client_auth::ClientAuthMethod;
use mcp_oauth::registration::parse_registration_response;

fuzz_target!(|data: &[u8]| {
    let (head, body) = data.split_at(data.len().min(2));
    let status = match head.first().copied().unwrap_or(0) % 6 {
        0 | 1 => 201,
        2 => 200,
        3 => 400,
        4 => 500,
        _ => 302,
    };
    let supported: Vec<String> = match head.get(1).copied().unwrap_or(0) % 3 {
        0 => vec![],
        1 => vec!["client_secret_post".into()],
        _ => vec!["none".into(), "client_secret_basic".into()],
    };
    let method = if head.get(1).copied().unwrap_or(0) & 4 == 0 {
        ClientAuthMethod::None
    } else {
        ClientAuthMethod::ClientSecretBasic
    };
    let r = parse_registration_response(
        "https://as.example.com",
        "https://as.example.com/register",
        "http://127.0.0.1:1/callback",
        method,
        &supported,
        status,
        body,
    );
    match r {
        Ok(reg) => {
            assert!(!reg.client_id.is_empty());
            assert!(
                reg.client_secret
                    .as_ref()
                    .is_none_or(|s| !s.expose().is_empty())
            );
            if let Some(s) = &reg.client_secret
                && s.expose().len() >= 8
                && !reg.client_id.contains(s.expose())
                && !reg.token_endpoint_auth_method.as_str().contains(s.expose())
            {
                assert!(
                    !format!("{reg:?}").contains(s.expose()),
                    "Debug shows the secret"
                );
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let secret = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("client_secret")
                        .and_then(|s| s.as_str())
                        .map(str::to_string)
                });
            if status < 300
                && let Some(s) = secret
                && s.len() >= 8
                && !String::from_utf8_lossy(body)
                    .replacen(&s, "", 1)
                    .contains(&s)
            {
                assert!(
                    !msg.contains(&s),
                    "the error quotes the client secret: {msg}"
                );
            }
        }
    }
});
