//! Entry points into the proxy's parsers for the fuzz targets (`fuzz/` at the repository
//! root) and the property tests. Not API: hidden from the documentation, may change
//! with the proxy.

use super::message::{self, Envelope, Invalid, Kind};
use super::stdio::{Line, LineReader};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// What the proxy makes of one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedMessage {
    Request {
        id: String,
        method: String,
        mcp_name: Option<String>,
    },
    Notification {
        method: String,
    },
    Response {
        id: String,
    },
    /// Answered with -32700.
    ParseError(String),
    /// Answered with -32600 (and the id, when one could be read).
    InvalidRequest(String, Option<String>),
}

/// Reads one message the way the proxy routes it ([`Envelope::parse`]).
pub fn parse_message(bytes: &[u8]) -> ParsedMessage {
    match Envelope::parse(bytes) {
        Ok(env) => match env.kind() {
            Some(Kind::Request) => ParsedMessage::Request {
                id: env.id.as_ref().map(message::id_key).unwrap_or_default(),
                method: env.method().to_string(),
                mcp_name: env.mcp_name().map(str::to_string),
            },
            Some(Kind::Notification) => ParsedMessage::Notification {
                method: env.method().to_string(),
            },
            Some(Kind::Response) => ParsedMessage::Response {
                id: env.id.as_ref().map(message::id_key).unwrap_or_default(),
            },
            None => unreachable!("Envelope::parse returns only messages of a kind"),
        },
        Err(Invalid::Parse(m)) => ParsedMessage::ParseError(m),
        Err(Invalid::Request(m, id)) => {
            ParsedMessage::InvalidRequest(m, id.as_ref().map(message::id_key))
        }
    }
}

/// One unit of the proxy's line framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    Message(Vec<u8>),
    TooLong(usize),
}

/// An in-memory input delivered in pieces of the given sizes (cycled; 0 counts as 1).
struct Pieces<'a> {
    data: &'a [u8],
    pos: usize,
    sizes: &'a [usize],
    next: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let size = if self.sizes.is_empty() {
            usize::MAX
        } else {
            let s = self.sizes[self.next % self.sizes.len()].max(1);
            self.next += 1;
            s
        };
        let n = size.min(buf.remaining()).min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Splits `input` into messages exactly as the proxy's stdin reader does, with lines
/// longer than `max` bytes dropped and reported; the input arrives in pieces of the
/// sizes given (an empty list: all at once).
pub fn frame_lines(input: &[u8], max: usize, pieces: &[usize]) -> Vec<Framed> {
    let mut reader = LineReader::new(
        Pieces {
            data: input,
            pos: 0,
            sizes: pieces,
            next: 0,
        },
        max,
    );
    let mut out = Vec::new();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        // The reader never waits (the input is in memory): one poll completes it.
        let fut = std::pin::pin!(reader.next());
        let line = match fut.poll(&mut cx) {
            Poll::Ready(Ok(line)) => line,
            Poll::Ready(Err(e)) => panic!("reading from memory failed: {e}"),
            Poll::Pending => panic!("an in-memory read is never pending"),
        };
        match line {
            Line::Message(m) => out.push(Framed::Message(m)),
            Line::TooLong(n) => out.push(Framed::TooLong(n)),
            Line::Eof => return out,
        }
    }
}

/// The framing [`frame_lines`] must produce, written the obvious way.
pub fn frame_lines_reference(input: &[u8], max: usize) -> Vec<Framed> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    let mut emit = |raw: &[u8]| {
        if raw.len() > max {
            out.push(Framed::TooLong(raw.len()));
        } else {
            out.push(Framed::Message(
                raw.strip_suffix(b"\r").unwrap_or(raw).to_vec(),
            ));
        }
    };
    for s in segments {
        emit(s);
    }
    if !last.is_empty() {
        emit(last);
    }
    out
}

/// The proxy's fast byte search.
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    message::find_byte(hay, needle)
}

/// A message made into one output line.
pub fn one_line(bytes: &[u8]) -> Vec<u8> {
    message::one_line(bytes::Bytes::copy_from_slice(bytes)).to_vec()
}

/// The error code of a JSON-RPC error response.
pub fn response_error_code(msg: &[u8]) -> Option<i64> {
    super::relay::response_error_code(msg)
}
