//! The OAuth redirect (callback) query parser, the pasted-redirect parser and the
//! callback validation: never panics; format → parse round trip; the code never shows in
//! a Debug view or a validation error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::authorize::{CallbackParams, PendingAuthorization, validate_callback};

fn pending(iss_supported: bool, allow_missing_state: bool) -> PendingAuthorization {
    PendingAuthorization {
        state: "state-1234".into(),
        expected_issuer: "https://as.example.com".into(),
        issuer_validated: true,
        iss_supported,
        allow_missing_state,
    }
}

fn check(p: &CallbackParams) {
    let debug = format!("{p:?}");
    if let Some(code) = &p.code {
        let c = code.expose();
        let elsewhere = [
            &p.state,
            &p.iss,
            &p.error,
            &p.error_description,
            &p.error_uri,
        ]
        .iter()
        .any(|f| f.as_deref().is_some_and(|f| f.contains(c)));
        if c.len() >= 8 && !elsewhere && !"CallbackParams".contains(c) {
            assert!(!debug.contains(c), "Debug shows the code: {debug}");
        }
        for (a, b) in [(true, false), (false, true), (false, false)] {
            if let Err(e) = validate_callback(p, &pending(a, b))
                && c.len() >= 8
                && !elsewhere
            {
                assert!(!e.to_string().contains(c), "the error shows the code: {e}");
            }
        }
    }
    // Round trip through a query string.
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("code", p.code.as_ref().map(|c| c.expose().to_string())),
        ("state", p.state.clone()),
        ("iss", p.iss.clone()),
        ("error", p.error.clone()),
        ("error_description", p.error_description.clone()),
        ("error_uri", p.error_uri.clone()),
    ] {
        if let Some(v) = v {
            q.append_pair(k, &v);
        }
    }
    let back = CallbackParams::from_query(&q.finish()).expect("a formatted query parses");
    assert_eq!(&back, p);
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(p) = CallbackParams::from_query(&s) {
        check(&p);
    }
    if let Ok(p) = CallbackParams::from_pasted(&s) {
        check(&p);
    }
});
