//! The stdio side: newline-delimited messages in, one writer task out.

use bytes::Bytes;
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One unit read from the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line, without its terminator (LF or CRLF).
    Message(Vec<u8>),
    /// A line longer than the limit; it was read to its end and dropped. Carries its
    /// length in bytes.
    TooLong(usize),
    /// End of input.
    Eof,
}

/// Reads lines of at most `max` bytes; longer lines are consumed and reported, never
/// buffered whole. [`next`](Self::next) is cancel-safe: a partial line is kept here.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    line: Vec<u8>,
    dropped: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(input: R, max: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(256 * 1024, input),
            max,
            line: Vec::new(),
            dropped: 0,
        }
    }

    pub(crate) async fn next(&mut self) -> io::Result<Line> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(if self.dropped > 0 {
                    Line::TooLong(std::mem::take(&mut self.dropped))
                } else if self.line.is_empty() {
                    Line::Eof
                } else {
                    Line::Message(trim_cr(std::mem::take(&mut self.line)))
                });
            }
            let (chunk, consumed, done) = match super::message::find_byte(available, b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if self.dropped > 0 {
                self.dropped += chunk.len();
            } else if self.line.len() + chunk.len() > self.max {
                self.dropped = self.line.len() + chunk.len();
                self.line = Vec::new();
            } else {
                self.line.extend_from_slice(chunk);
            }
            self.inner.consume(consumed);
            if done {
                return Ok(if self.dropped > 0 {
                    Line::TooLong(std::mem::take(&mut self.dropped))
                } else {
                    Line::Message(trim_cr(std::mem::take(&mut self.line)))
                });
            }
        }
    }
}

fn trim_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// The sending half of the output: each message is one line (the caller guarantees it
/// holds no line break; see [`super::message::one_line`]).
#[derive(Clone, Debug)]
pub(crate) struct Output {
    tx: mpsc::Sender<Bytes>,
}

impl Output {
    /// Queues one message; returns `false` once the output is gone.
    pub(crate) async fn send(&self, msg: Bytes) -> bool {
        self.tx.send(msg).await.is_ok()
    }
}

/// The writer task: ends with an error when writing fails (the reader went away), or
/// with `Ok` once closed (or every [`Output`] is dropped) and the queue is written.
pub(crate) struct Writer {
    pub task: JoinHandle<io::Result<()>>,
    close: Option<oneshot::Sender<()>>,
}

impl Writer {
    /// Writes what is queued, flushes, and ends the task.
    pub(crate) async fn close(mut self) -> io::Result<()> {
        if let Some(c) = self.close.take() {
            let _ = c.send(());
        }
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// `spin` is kicked after each flush: the client's next message is likely to follow.
pub(crate) fn spawn_writer<W>(output: W, spin: super::spin::Spin) -> (Output, Writer)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    let (close_tx, mut close_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(64 * 1024, output);
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = &mut close_rx => {
                    // Closing: write what is already queued, then stop.
                    write_queued(&mut w, &mut rx).await?;
                    None
                }
            };
            let Some(msg) = msg else { break };
            write_line(&mut w, &msg).await?;
            // Write whatever else is queued before flushing: one flush per burst. Under
            // load (more was queued), yielding once lets responses that complete in the
            // same scheduler tick join it; a lone message is flushed at once.
            if write_queued(&mut w, &mut rx).await? {
                tokio::task::yield_now().await;
                write_queued(&mut w, &mut rx).await?;
            }
            w.flush().await?;
            spin.kick();
        }
        w.flush().await
    });
    (
        Output { tx },
        Writer {
            task,
            close: Some(close_tx),
        },
    )
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut BufWriter<W>, msg: &[u8]) -> io::Result<()> {
    w.write_all(msg).await?;
    w.write_all(b"\n").await
}

/// Writes every message already queued, without waiting; were there any?
async fn write_queued<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    rx: &mut mpsc::Receiver<Bytes>,
) -> io::Result<bool> {
    let mut any = false;
    while let Ok(msg) = rx.try_recv() {
        any = true;
        write_line(w, &msg).await?;
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &'static [u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        loop {
            let l = r.next().await.unwrap();
            let eof = l == Line::Eof;
            out.push(l);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_and_bounds_them() {
        let got = lines(b"a\r\nbb\n\n0123456789abc\ncc", 10).await;
        assert_eq!(
            got,
            vec![
                Line::Message(b"a".to_vec()),
                Line::Message(b"bb".to_vec()),
                Line::Message(vec![]),
                Line::TooLong(13),
                Line::Message(b"cc".to_vec()),
                Line::Eof
            ]
        );
        let got = lines(b"0123456789abc", 10).await;
        assert_eq!(got, vec![Line::TooLong(13), Line::Eof]);
    }

    #[tokio::test]
    async fn long_lines_across_buffer_refills() {
        let mut data = vec![b'x'; 600 * 1024];
        data.push(b'\n');
        data.extend_from_slice(b"ok\n");
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let got = lines(data, 1024 * 1024).await;
        assert!(matches!(&got[0], Line::Message(m) if m.len() == 600 * 1024));
        assert_eq!(got[1], Line::Message(b"ok".to_vec()));
        let got = lines(data, 100 * 1024).await;
        assert_eq!(got[0], Line::TooLong(600 * 1024));
        assert_eq!(got[1], Line::Message(b"ok".to_vec()));
    }
}
