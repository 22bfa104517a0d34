//! The Server-Sent Events parser of the MCP client and the proxy: never panics, and the
//! events do not depend on how the stream was cut into chunks (all at once, byte by
//! byte, or pieces whose sizes the input chooses); events formatted as SSE parse back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::mcp::sse::{SseEvent, SseParser};

fn run(chunks: &[&[u8]]) -> (Vec<SseEvent>, Option<String>, Option<std::time::Duration>) {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c));
    }
    out.extend(p.finish());
    (out, p.last_event_id().map(str::to_string), p.retry())
}

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = data.split_at(data.len().min(4));
    let whole = run(&[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes), whole, "byte by byte");
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (sizes.get(i % sizes.len().max(1)).copied().unwrap_or(7) as usize % 17 + 1)
            .min(rest.len());
        pieces.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    assert_eq!(run(&pieces), whole, "in pieces");

    // format → parse: each event as data lines (no CR/LF inside a line), `event:` when
    // it is not the default.
    for ev in &whole.0 {
        if ev.event.contains(['\r', '\n']) || ev.event.is_empty() {
            continue;
        }
        let mut text = String::new();
        if ev.event != "message" {
            text.push_str(&format!("event: {}\n", ev.event));
        }
        for line in ev.data.split('\n') {
            if line.contains('\r') {
                return;
            }
            text.push_str(&format!("data: {line}\n"));
        }
        text.push('\n');
        let (again, _, _) = run(&[text.as_bytes()]);
        assert_eq!(again.len(), 1, "{text:?}");
        assert_eq!(
            (&again[0].event, &again[0].data),
            (&ev.event, &ev.data),
            "{text:?}"
        );
    }
});
