//! The OAuth redirect (callback) query parser, the pasted-redirect parser and the
//! callback validation: never panics; format → parse round trip; the code never shows in
//! a Debug view or a validation error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::authorize::{CallbackParams, PendingAuthorization, validate_callback};
use mcp_oauth::secret::AuthorizationCode;

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
    if let Some(code) = p.code.as_ref().filter(|c| !c.expose().is_empty()) {
        // The code must not show: the Debug view and every validation error are the same
        // with another (non-empty) code in its place. (Looking for the code in the text instead gave a
        // false alarm, crash-d2bfd515: a pasted code that spells the Debug view itself.)
        let mut other = p.clone();
        other.code = Some(AuthorizationCode::new(format!("{}-other", code.expose())));
        assert_eq!(
            format!("{p:?}"),
            format!("{other:?}"),
            "Debug depends on the code"
        );
        for (a, b) in [(true, false), (false, true), (false, false)] {
            let e1 = validate_callback(p, &pending(a, b))
                .err()
                .map(|e| e.to_string());
            let e2 = validate_callback(&other, &pending(a, b))
                .err()
                .map(|e| e.to_string());
            assert_eq!(e1, e2, "a validation error depends on the code");
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
