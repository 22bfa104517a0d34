//! The proxy's stdin line framing and JSON-RPC routing parser: the framing matches a
//! plain reference implementation however the input is cut into reads (including
//! lines over the size limit), the fast byte search matches a naive one, single-line
//! output never contains a line break, and message parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth_proxy::fuzzing::{
    Framed, ParsedMessage, find_byte, frame_lines, frame_lines_reference, one_line, parse_message,
    response_error_code,
};

fuzz_target!(|data: &[u8]| {
    let (head, input) = data.split_at(data.len().min(3));
    let max = head.first().copied().unwrap_or(64) as usize + 1;
    // Reads of the sizes the input chooses, or everything at once.
    let pieces: Vec<usize> = if head.get(1).is_some_and(|b| b & 0x80 != 0) {
        Vec::new()
    } else {
        head.iter().skip(1).map(|b| *b as usize % 23 + 1).collect()
    };
    let want = frame_lines_reference(input, max);
    assert_eq!(
        frame_lines(input, max, &pieces),
        want,
        "max {max}, pieces {pieces:?}"
    );

    for needle in [b'\n', b'\r', b'"', head.first().copied().unwrap_or(0)] {
        assert_eq!(
            find_byte(input, needle),
            input.iter().position(|b| *b == needle)
        );
    }
    let single = one_line(input);
    assert_eq!(single.len(), input.len());
    assert!(!single.contains(&b'\n') && !single.contains(&b'\r'));

    for f in &want {
        if let Framed::Message(m) = f {
            let parsed = parse_message(m);
            if let ParsedMessage::Request { id, method, .. } = &parsed {
                assert!(!id.is_empty() && id != "null");
                let _ = method;
            }
            // Valid JSON and its single-line form (what the proxy writes) route the same
            // way: CR can only be whitespace between tokens there.
            let again = parse_message(&one_line(m));
            match (&parsed, &again) {
                (ParsedMessage::ParseError(_), _) => {}
                (ParsedMessage::InvalidRequest(..), ParsedMessage::InvalidRequest(..)) => {}
                _ => assert_eq!(parsed, again),
            }
            let _ = response_error_code(m);
        }
    }
});
