//! An incremental Server-Sent Events parser (WHATWG HTML, "Parsing an event stream").
//!
//! Hand-written on purpose: the crates that exist either own the HTTP request (and so
//! would bypass our authorization, size cap and time-out handling) or want a `Stream`
//! of `Result`s with their own error type. What the MCP client needs is much smaller:
//! bytes in, events out, in whatever pieces the network delivers them, never panicking
//! and never failing on malformed input. That is about a hundred lines.
//!
//! Behaviour, per the WHATWG algorithm:
//! - lines end in CRLF, LF or CR, and a CRLF may be split across two chunks;
//! - a UTF-8 byte order mark at the very start is skipped; invalid UTF-8 is replaced
//!   with U+FFFD (line splitting happens on bytes, which is safe because CR and LF never
//!   occur inside a multi-byte UTF-8 sequence);
//! - `data:` lines accumulate, joined with LF; `event:` sets the type (default
//!   `message`); `id:` sets the last event id unless the value contains NUL; `retry:`
//!   sets the reconnection time when the value is all ASCII digits; lines starting with
//!   `:` are comments; unknown fields are ignored; a single space after the colon is
//!   removed;
//! - an empty line dispatches the event, unless no `data` line was seen.
//!
//! One deliberate deviation: at the end of the stream, [`SseParser::finish`] processes
//! a last line that has no line terminator and dispatches a pending event that has data,
//! where a browser would discard it. For a request/response protocol a final message
//! the server did send is worth more than strictness; a truly truncated message fails
//! JSON parsing later anyway.
//!
//! The parser keeps at most one line and one event in memory; the caller bounds the
//! total input (the MCP client caps every response body).

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type; `message` when the stream did not name one.
    pub event: String,
    /// The data lines, joined with `\n`.
    pub data: String,
    /// The last event id in effect when this event was dispatched (`None` when the
    /// stream never set one).
    pub id: Option<String>,
}

/// Incremental parser: feed it chunks with [`push`](Self::push), then call
/// [`finish`](Self::finish) at the end of the stream.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unterminated line.
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    /// No line has been completed yet (the BOM check applies to the first line only).
    seen_line: bool,
    data: String,
    event_type: String,
    last_id: Option<String>,
    retry_ms: Option<u64>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk of the stream and returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some((&b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            self.line.extend_from_slice(&rest[..pos]);
            let terminator = rest[pos];
            rest = &rest[pos + 1..];
            if terminator == b'\r' {
                match rest.split_first() {
                    Some((&b'\n', tail)) => rest = tail,
                    Some(_) => {}
                    // The LF, if any, is in the next chunk.
                    None => self.after_cr = true,
                }
            }
            self.end_line(&mut out);
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// Ends the stream: processes an unterminated last line and returns the pending
    /// event, if it has data (see the module documentation). The parser is then empty
    /// and can be reused for a new stream (the last event id is kept).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.after_cr = false;
        self.seen_line = false;
        self.dispatch(&mut out);
        out.pop()
    }

    /// The last event id the stream set (`id:` field), if any and not empty.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref().filter(|s| !s.is_empty())
    }

    /// The reconnection time the stream asked for (`retry:` field), if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry_ms.map(Duration::from_millis)
    }

    /// How long to wait before reconnecting to (or resuming) the stream: its
    /// [`retry`](Self::retry), or [`DEFAULT_SSE_RETRY`](super::DEFAULT_SSE_RETRY) when it
    /// set none.
    pub fn reconnect_delay(&self) -> Duration {
        self.retry().unwrap_or(super::DEFAULT_SSE_RETRY)
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let mut bytes = raw.as_slice();
        if !self.seen_line {
            self.seen_line = true;
            if let Some(tail) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = tail;
            }
        }
        if bytes.is_empty() {
            self.dispatch(out);
            return;
        }
        if bytes[0] == b':' {
            return; // comment
        }
        let line = String::from_utf8_lossy(bytes);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            // Only ASCII digits (`parse` alone would accept a leading `+`); a number too
            // large for u64 is ignored like any other invalid value.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        // Keep the line buffer's allocation for the next line.
        self.line = raw;
        self.line.clear();
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(SseEvent {
            event: if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.to_string(),
            data: data.to_string(),
            id: id.map(str::to_string),
        }
    }

    /// Parses `input` fed as the given chunks, including `finish`.
    fn parse_chunks(chunks: &[&[u8]]) -> (Vec<SseEvent>, SseParser) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        out.extend(p.finish());
        (out, p)
    }

    fn parse(input: &str) -> Vec<SseEvent> {
        parse_chunks(&[input.as_bytes()]).0
    }

    const SAMPLE: &str = "\u{feff}: keep-alive comment\r\n\
        id: 1\r\n\
        retry: 2500\r\n\
        data:\r\n\
        \r\n\
        event: message\n\
        data: {\"jsonrpc\":\"2.0\",\n\
        data:  \"method\":\"notifications/progress\"}\n\
        \n\
        :\r\
        id: 2\r\
        data: café ☕\r\
        \r\
        event: custom\r\n\
        data\r\n\
        data:x\r\n\
        \r\n\
        data: {\"id\":1,\"result\":{}}";

    fn sample_expected() -> Vec<SseEvent> {
        vec![
            ev("message", "", Some("1")),
            ev(
                "message",
                "{\"jsonrpc\":\"2.0\",\n \"method\":\"notifications/progress\"}",
                Some("1"),
            ),
            ev("message", "café ☕", Some("2")),
            ev("custom", "\nx", Some("2")),
            ev("message", "{\"id\":1,\"result\":{}}", Some("2")),
        ]
    }

    #[test]
    fn sample_in_one_piece() {
        let (events, p) = parse_chunks(&[SAMPLE.as_bytes()]);
        assert_eq!(events, sample_expected());
        assert_eq!(p.last_event_id(), Some("2"));
        assert_eq!(p.retry(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn sample_split_at_every_byte_position() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let (events, _) = parse_chunks(&[&bytes[..i], &bytes[i..]]);
            assert_eq!(events, sample_expected(), "split at byte {i}");
        }
    }

    #[test]
    fn sample_split_at_every_pair_of_positions() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let (events, _) = parse_chunks(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(events, sample_expected(), "split at bytes {i} and {j}");
            }
        }
    }

    #[test]
    fn sample_one_byte_at_a_time() {
        let chunks: Vec<&[u8]> = SAMPLE.as_bytes().chunks(1).collect();
        let (events, _) = parse_chunks(&chunks);
        assert_eq!(events, sample_expected());
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, Vec<SseEvent>)] = &[
            ("empty stream", "", vec![]),
            ("only comments", ": a\n:b\r\n\r\n", vec![]),
            ("lf", "data: a\n\n", vec![ev("message", "a", None)]),
            ("crlf", "data: a\r\n\r\n", vec![ev("message", "a", None)]),
            ("cr", "data: a\r\r", vec![ev("message", "a", None)]),
            (
                "multi-line data",
                "data: a\ndata: b\ndata:c\n\n",
                vec![ev("message", "a\nb\nc", None)],
            ),
            (
                "only one leading space removed",
                "data:  two\n\n",
                vec![ev("message", " two", None)],
            ),
            (
                "colon in value kept",
                "data: a:b: c\n\n",
                vec![ev("message", "a:b: c", None)],
            ),
            (
                "field without colon",
                "data\n\n",
                vec![ev("message", "", None)],
            ),
            (
                "empty data dispatches an empty event",
                "data:\n\n",
                vec![ev("message", "", None)],
            ),
            ("no data, no event", "event: x\nid: 7\n\n", vec![]),
            (
                "event type resets after dispatch",
                "event: a\ndata: 1\n\ndata: 2\n\n",
                vec![ev("a", "1", None), ev("message", "2", None)],
            ),
            (
                "event type resets even without data",
                "event: a\n\ndata: 2\n\n",
                vec![ev("message", "2", None)],
            ),
            (
                "id persists",
                "id: 5\ndata: a\n\ndata: b\n\n",
                vec![ev("message", "a", Some("5")), ev("message", "b", Some("5"))],
            ),
            (
                "id with NUL ignored",
                "id: 5\ndata: a\n\nid: x\0y\ndata: b\n\n",
                vec![ev("message", "a", Some("5")), ev("message", "b", Some("5"))],
            ),
            (
                "unknown fields ignored",
                "foo: bar\ndata: a\nbaz\n\n",
                vec![ev("message", "a", None)],
            ),
            (
                "field names are case-sensitive",
                "Data: a\ndata: b\n\n",
                vec![ev("message", "b", None)],
            ),
            (
                "no trailing newline",
                "data: {\"a\":1}",
                vec![ev("message", "{\"a\":1}", None)],
            ),
            (
                "no blank line at the end",
                "data: a\n",
                vec![ev("message", "a", None)],
            ),
            (
                "trailing comment without newline",
                "data: a\n\n: bye",
                vec![ev("message", "a", None)],
            ),
            (
                "bom only at start",
                "\u{feff}data: a\n\n\u{feff}data: b\n\n",
                vec![ev("message", "a", None)],
            ),
            (
                "blank lines between events",
                "\n\n\r\ndata: a\n\n\n\n",
                vec![ev("message", "a", None)],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(&parse(input), expected, "case: {name}");
        }
    }

    #[test]
    fn retry_field() {
        for (input, expected) in [
            ("retry: 1000\n\n", Some(1000)),
            ("retry: 10x\n\n", None),
            ("retry:\n\n", None),
            ("retry: -5\n\n", None),
            ("retry: +5\n\n", None),
            ("retry: 99999999999999999999999\n\n", None),
            ("retry: 1\nretry: bad\n\n", Some(1)),
        ] {
            let (_, p) = parse_chunks(&[input.as_bytes()]);
            assert_eq!(p.retry(), expected.map(Duration::from_millis), "{input:?}");
        }
    }

    #[test]
    fn empty_chunks_change_nothing() {
        let (events, _) = parse_chunks(&[b"data: a\r", b"", b"", b"\nevent: e\r\n", b"", b"\r\n"]);
        assert_eq!(events, vec![ev("e", "a", None)]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_ending() {
        // "data: a\r" | "\n\r" | "\n": CRLF CRLF, i.e. one line then one blank line.
        let (events, _) = parse_chunks(&[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(events, vec![ev("message", "a", None)]);
        // A CR at the end of a chunk followed by data: the CR alone ends the line.
        let (events, _) = parse_chunks(&[b"data: a\r", b"data: b\r\r"]);
        assert_eq!(events, vec![ev("message", "a\nb", None)]);
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let (events, _) = parse_chunks(&[b"data: \xff\xfe\xc3\n\n", b"data: \xe2\x82", b"\n\n"]);
        assert_eq!(events.len(), 2);
        assert!(events[0].data.contains('\u{fffd}'));
    }

    #[test]
    fn multibyte_split_inside_character() {
        let bytes = "data: ☕\n\n".as_bytes();
        for i in 0..=bytes.len() {
            let (events, _) = parse_chunks(&[&bytes[..i], &bytes[i..]]);
            assert_eq!(events, vec![ev("message", "☕", None)], "split at {i}");
        }
    }

    #[test]
    fn parser_is_reusable_after_finish() {
        let mut p = SseParser::new();
        assert!(p.push(b"id: 3\ndata: a").is_empty());
        assert_eq!(p.finish(), Some(ev("message", "a", Some("3"))));
        assert_eq!(p.push(b"data: b\n\n"), vec![ev("message", "b", Some("3"))]);
        assert_eq!(p.last_event_id(), Some("3"));
    }

    #[test]
    fn empty_id_resets_last_event_id() {
        let (events, p) = parse_chunks(&[b"id: 1\ndata: a\n\nid\ndata: b\n\n"]);
        assert_eq!(events[1].id.as_deref(), Some(""));
        assert_eq!(p.last_event_id(), None);
    }
}
