//! `WWW-Authenticate` parsing: never panics, offsets are char boundaries inside the
//! input, strict and lenient agree, and every parsed challenge survives
//! format → parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::challenge::{
    bearer, dpop, format_challenge, format_challenges, parse_challenges, parse_challenges_lenient,
};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    // Several header fields: NUL (never allowed in a field value) separates them.
    let fields: Vec<&str> = s.split('\0').collect();
    let (parsed, errors) = parse_challenges_lenient(&fields);
    let combined = fields.join(", ");
    for e in &errors {
        assert!(e.offset <= combined.len(), "{e:?}");
        assert!(combined.is_char_boundary(e.offset), "{e:?}");
    }
    let sendable = |c: &mcp_oauth::challenge::Challenge| {
        c.params
            .iter()
            .all(|(_, v)| !v.chars().any(|ch| ch.is_control() && ch != '\t'))
    };
    for c in &parsed {
        assert!(!c.scheme.is_empty());
        assert!(c.token68.is_none() || c.params.is_empty());
        if sendable(c) {
            let f = format_challenge(c);
            assert_eq!(parse_challenges(&[&f]), Ok(vec![c.clone()]), "{f:?}");
        }
    }
    if parsed.iter().all(sendable) {
        let all = format_challenges(&parsed);
        assert_eq!(parse_challenges(&[&all]), Ok(parsed.clone()), "{all:?}");
    }
    let _ = bearer(&parsed);
    let _ = dpop(&parsed);
    match parse_challenges(&fields) {
        Ok(strict) => {
            assert!(errors.is_empty());
            assert_eq!(strict, parsed);
        }
        Err(e) => assert_eq!(Some(&e), errors.first()),
    }
});
