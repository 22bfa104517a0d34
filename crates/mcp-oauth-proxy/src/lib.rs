//! A stdio ⇄ Streamable HTTP bridge with authorization: [`Proxy`].
//!
//! The proxy reads newline-delimited JSON-RPC messages (the stdio transport) and relays
//! them to a remote MCP server, and relays everything the server sends back, one
//! message per line. Messages pass through as the bytes they arrived as; the proxy
//! reads only what it must to route them (`id`, `method`, `params.name`/`uri`, the
//! protocol version in `params._meta`), so unknown methods, members and future
//! additions pass unchanged. Nothing but protocol messages is written to the output.
//!
//! Both generations of the HTTP transport are spoken, chosen per message (see
//! [`relay`](self) for the rules): the session-based 2025 wire (session id, GET stream,
//! resumption, session renewal, DELETE), the stateless 2026-07-28 wire (request metadata
//! headers, `subscriptions/listen` streams), the bridge between a legacy client and a
//! modern-only server, and the 2024-11-05 HTTP+SSE transport.
//!
//! Authorization is a [`RequestAuth`] (usually an [`mcp_oauth::OAuthClient`]): every request
//! carries its `Authorization` header (refreshed ahead of expiry, kept in memory); a
//! 401, or a 403 with a challenge, holds the request while the hook authorizes (login,
//! refresh, step-up; single-flight within and across processes), then replays it.
//!
//! Bad input never stops the proxy: a line that is not JSON is answered with a JSON-RPC
//! parse error (-32700), a message that is not JSON-RPC with -32600, an over-long line
//! with -32600 (it is read to its end and dropped); upstream failures become error
//! responses to the request they belong to.

mod bridge;
mod client;
mod deadline;
// Entry points for the fuzz targets and property tests (not API).
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod relay;
mod spin;
mod sse_transport;
mod stdio;
mod upstream;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::HeaderMap;
use mcp_oauth::error::{Error, Result};
use mcp_oauth::wire::RequestAuth;
use relay::Relay;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use stdio::{Line, LineReader};
use tokio::io::{AsyncRead, AsyncWrite};
use upstream::Upstream;

/// Which HTTP transport to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransportMode {
    /// Streamable HTTP, falling back to HTTP+SSE when the server answers the client's
    /// `initialize` with 400, 404 or 405 and no 2026-07-28 error.
    #[default]
    Auto,
    /// Streamable HTTP only.
    StreamableHttp,
    /// The deprecated HTTP+SSE transport (2024-11-05) for the session wire.
    Sse,
}

/// [`ProxyOptions::idle_spin`] by default.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(100);

/// [`ProxyOptions::request_timeout`] by default: five minutes without a word from the
/// server, long enough for slow tool calls that send no progress.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Options of a [`Proxy`].
#[derive(Clone)]
pub struct ProxyOptions {
    /// Which HTTP transport to speak (by default Streamable HTTP, falling back to
    /// HTTP+SSE).
    pub transport: TransportMode,
    /// Sent on every request (the protocol's headers and the hook's `Authorization`
    /// take precedence).
    pub headers: HeaderMap,
    /// Largest message accepted in either direction (a longer input line is answered
    /// with an error; a longer server message fails its request).
    pub max_message_bytes: usize,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// How long a request may go without hearing from the server: from when it is sent,
    /// and again from every event of its response stream (progress keeps a long call
    /// alive); time spent authorizing does not count. The request then gets a JSON-RPC
    /// error (-32001, the SDKs' request timeout) and, on the session wire, the server a
    /// `notifications/cancelled`. `None`: no limit. `subscriptions/listen` is never
    /// limited (it is open until cancelled).
    pub request_timeout: Option<Duration>,
    /// At end of input, how long requests in flight may still take; those still
    /// unanswered then get a JSON-RPC error (-32001).
    pub shutdown_grace: Duration,
    /// Answer a legacy client's `initialize` from `server/discover` when the server is
    /// 2026-07-28-only, and stamp the per-request metadata in.
    pub bridge_eras: bool,
    /// After each message, how long to keep polling for the next event before sleeping
    /// (zero: sleep at once). Saves the wake-ups that dominate a fast server's round trip
    /// on virtual machines, for at most this much CPU per message (see `spin.rs`).
    pub idle_spin: Duration,
    /// How the library's error messages reach the host, in an error response: the
    /// command line restates the library's remedies with its own flags
    /// (`mcp_oauth::remedy::Remedy`). By default, as the library says them.
    pub error_words: fn(&str) -> String,
}

/// [`ProxyOptions::error_words`]' default: the library's words, unchanged.
fn as_said(text: &str) -> String {
    text.to_string()
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            transport: TransportMode::Auto,
            headers: HeaderMap::new(),
            max_message_bytes: 64 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            shutdown_grace: Duration::from_secs(10),
            bridge_eras: true,
            idle_spin: DEFAULT_IDLE_SPIN,
            error_words: as_said,
        }
    }
}

/// Header values are left out: they may carry credentials.
impl std::fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("transport", &self.transport)
            .field("headers", &mcp_oauth::wire::header_names(&self.headers))
            .field("max_message_bytes", &self.max_message_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("bridge_eras", &self.bridge_eras)
            .field("idle_spin", &self.idle_spin)
            .finish()
    }
}

/// How a run ended, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyReport {
    /// What ended the run.
    pub ended_by: EndedBy,
    /// Lines read from the input.
    pub lines_in: u64,
    /// HTTP requests sent to the server (not counting authorization traffic).
    pub http_requests: u64,
}

/// What ended a [`Proxy::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The input reached end of file.
    EndOfInput,
    /// The shutdown future completed (a signal).
    Shutdown,
    /// The output could not be written (the client went away).
    OutputClosed,
}

/// A stdio ⇄ Streamable HTTP proxy for one MCP server.
pub struct Proxy {
    upstream: Arc<Upstream>,
    options: ProxyOptions,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.upstream.url)
            .field("options", &self.options)
            .field("auth", &self.upstream.has_auth())
            .finish()
    }
}

impl Proxy {
    /// A proxy for the MCP endpoint `url`, with its own HTTP client: hyper's pooled
    /// client with rustls, used directly (the cheapest per relayed message), or, when
    /// the environment routes `url` through an HTTP proxy, reqwest (see
    /// [`http_client`]). Either way: a connect timeout but no total timeout, redirects
    /// followed only within the server's origin, no Nagle delay, connections reused.
    pub fn new(
        url: impl Into<String>,
        options: ProxyOptions,
        auth: Option<Arc<dyn RequestAuth>>,
    ) -> Result<Self> {
        let url = url.into();
        // The connections to the server go through the resolver of its authorization
        // traffic's network policy, so that the server's name resolves to one kind of
        // address for both (see `mcp_oauth::netpolicy`).
        let guard = auth.as_ref().and_then(|a| a.address_guard());
        let resolver = guard.as_ref().map_or_else(
            || {
                Arc::new(mcp_oauth::netpolicy::SystemResolver)
                    as Arc<dyn mcp_oauth::netpolicy::HostResolver>
            },
            |g| g.resolver().clone(),
        );
        let connect = mcp_oauth::http::ConnectResolver::new(resolver, guard);
        let http = client::Client::for_url(&url, options.connect_timeout, connect)?;
        Ok(Self::with_http(url, options, http, auth))
    }

    /// A proxy using the given reqwest client for MCP traffic. The client must not have
    /// a total request timeout: response streams stay open as long as the server wants.
    pub fn with_client(
        url: impl Into<String>,
        options: ProxyOptions,
        http: reqwest::Client,
        auth: Option<Arc<dyn RequestAuth>>,
    ) -> Self {
        Self::with_http(url.into(), options, client::Client::Reqwest(http), auth)
    }

    fn with_http(
        url: String,
        options: ProxyOptions,
        http: client::Client,
        auth: Option<Arc<dyn RequestAuth>>,
    ) -> Self {
        let upstream = Arc::new(Upstream::new(url, http, auth, options.headers.clone()));
        Self { upstream, options }
    }

    /// Relays between `input`/`output` (the stdio client) and the server until the input
    /// ends (requests in flight get [`ProxyOptions::shutdown_grace`] to finish), the
    /// `shutdown` future completes (everything stops at once), or the output fails.
    /// In the first two cases every request still in flight is then answered with a
    /// JSON-RPC error, so that none is left without an answer. The session, if any, is
    /// ended with DELETE in all three cases.
    pub async fn run<R, W, S>(&self, input: R, output: W, shutdown: S) -> Result<ProxyReport>
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
        S: Future<Output = ()> + Send,
    {
        // Dropped, and so stopped, when this run ends or is cancelled.
        let (spin, _spinner) = spin::Spin::start(self.options.idle_spin);
        let (out, mut writer) = stdio::spawn_writer(output, spin.clone());
        let relay = Relay::start(self.upstream.clone(), out.clone(), self.options.clone());
        let mut reader = LineReader::new(input, self.options.max_message_bytes);
        let mut lines_in = 0u64;
        let mut writer_result = None;
        tokio::pin!(shutdown);
        let ended_by = loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break EndedBy::Shutdown,
                r = &mut writer.task => {
                    writer_result = Some(r);
                    break EndedBy::OutputClosed;
                }
                line = reader.next() => match line {
                    Ok(Line::Message(bytes)) => {
                        lines_in += 1;
                        relay.dispatch(Bytes::from(bytes)).await;
                        // The server's answer is on its way.
                        spin.kick();
                    }
                    Ok(Line::TooLong(n)) => {
                        lines_in += 1;
                        tracing::warn!(bytes = n, limit = self.options.max_message_bytes, "dropping an input line over the size limit");
                        out.send(message::error_response(
                            None,
                            message::INVALID_REQUEST,
                            &format!(
                                "Invalid Request: the message is {n} bytes, over the proxy's {} byte limit",
                                self.options.max_message_bytes
                            ),
                            None,
                        ))
                        .await;
                    }
                    Ok(Line::Eof) => break EndedBy::EndOfInput,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the input failed; shutting down");
                        break EndedBy::EndOfInput;
                    }
                },
            }
        };
        tracing::debug!(?ended_by, "proxy shutting down");
        if ended_by == EndedBy::EndOfInput {
            tokio::select! {
                biased;
                _ = &mut shutdown => {}
                _ = relay.drain(self.options.shutdown_grace) => {}
            }
        }
        // Every request the client sent ends in an answer: those still in flight get an
        // error (unless nobody reads the output any more).
        let unanswered = match ended_by {
            EndedBy::EndOfInput => Some((
                message::REQUEST_TIMEOUT,
                format!(
                    "the input ended, and the server did not answer within the shutdown grace \
                     ({} s)",
                    self.options.shutdown_grace.as_secs()
                ),
            )),
            EndedBy::Shutdown => Some((
                message::INTERNAL_ERROR,
                "the proxy was stopped before the server answered".to_string(),
            )),
            EndedBy::OutputClosed => None,
        };
        relay.close(unanswered).await;
        drop(relay);
        drop(out);
        let written = match writer_result {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(std::io::Error::other(e)),
            None => writer.close().await,
        };
        let report = ProxyReport {
            ended_by,
            lines_in,
            http_requests: self.upstream.requests.load(Ordering::Relaxed),
        };
        match written {
            Err(e) if ended_by != EndedBy::OutputClosed => Err(Error::Transport {
                step: mcp_oauth::error::Step::McpRequest,
                url: "stdout".into(),
                message: format!("writing to the client failed: {e}"),
                source: Some(Box::new(e)),
            }),
            _ => Ok(report),
        }
    }

    /// HTTP requests sent to the server so far.
    pub fn http_requests(&self) -> u64 {
        self.upstream.requests.load(Ordering::Relaxed)
    }
}

/// The process's stdin and stdout as async streams for [`Proxy::run`]. Pipes (FIFOs)
/// and sockets (what Node-based hosts use for a child's stdio) are polled directly;
/// anything else (a terminal, a file) goes through tokio's `stdin()`/`stdout()`, which
/// hand every read and write to a blocking thread. Must be called within a tokio runtime.
pub fn stdio() -> (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
) {
    #[cfg(unix)]
    {
        (
            unix_stdio::reader().unwrap_or_else(|| Box::new(tokio::io::stdin())),
            unix_stdio::writer().unwrap_or_else(|| Box::new(tokio::io::stdout())),
        )
    }
    #[cfg(not(unix))]
    {
        (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
    }
}

#[cfg(unix)]
mod unix_stdio {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    use tokio::io::{AsyncRead, AsyncWrite};

    enum Kind {
        Fifo(std::fs::File),
        Socket(std::os::unix::net::UnixStream),
    }

    /// A duplicate of `fd` when it is a pipe or a socket. (The duplicate shares the open
    /// file description, so making it non-blocking affects fd 0/1 of this process only,
    /// not the other end.)
    fn kind(fd: std::os::fd::BorrowedFd<'_>) -> Option<Kind> {
        let owned: OwnedFd = fd.try_clone_to_owned().ok()?;
        let file = std::fs::File::from(owned);
        let ft = file.metadata().ok()?.file_type();
        if ft.is_fifo() {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            enlarge_pipe(&file);
            Some(Kind::Fifo(file))
        } else if ft.is_socket() {
            let s = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
            s.set_nonblocking(true).ok()?;
            Some(Kind::Socket(s))
        } else {
            None
        }
    }

    /// Pipe buffer the proxy asks for on Linux (the default is 64 KiB).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const PIPE_BUFFER: usize = 256 * 1024;

    /// Grows a pipe's buffer to [`PIPE_BUFFER`] so that a message of up to that size
    /// crosses it in one write: with the default 64 KiB a 100 KB message takes the
    /// writer and the reader two wake-ups each (measured in alternating bench runs: p50
    /// of 100 KB calls through the proxy 1.33-1.51x direct without, 1.27-1.31x with).
    /// Not more: a user's pipe buffers share a limit (`/proc/sys/fs/pipe-user-pages-soft`,
    /// 64 MiB by default), past which the user's new pipes get one page. Best effort: a
    /// refusal (the limit, `pipe-max-size`) leaves the pipe as it is.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn enlarge_pipe(pipe: &std::fs::File) {
        let current = rustix::pipe::fcntl_getpipe_size(pipe).unwrap_or(usize::MAX);
        if current < PIPE_BUFFER
            && let Err(e) = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_BUFFER)
        {
            tracing::debug!(error = %e, current, "cannot grow the stdio pipe's buffer");
        }
    }

    pub(super) fn reader() -> Option<Box<dyn AsyncRead + Unpin + Send>> {
        match kind(std::io::stdin().as_fd())? {
            Kind::Fifo(f) => tokio::net::unix::pipe::Receiver::from_file(f)
                .ok()
                .map(|r| Box::new(r) as Box<dyn AsyncRead + Unpin + Send>),
            Kind::Socket(s) => tokio::net::UnixStream::from_std(s)
                .ok()
                .map(|r| Box::new(r) as Box<dyn AsyncRead + Unpin + Send>),
        }
    }

    pub(super) fn writer() -> Option<Box<dyn AsyncWrite + Unpin + Send>> {
        match kind(std::io::stdout().as_fd())? {
            Kind::Fifo(f) => tokio::net::unix::pipe::Sender::from_file(f)
                .ok()
                .map(|w| Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>),
            Kind::Socket(s) => tokio::net::UnixStream::from_std(s)
                .ok()
                .map(|w| Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>),
        }
    }
}

/// The reqwest client the proxy uses for MCP traffic when an HTTP proxy from the
/// environment applies: a connect timeout but no total timeout (streams stay open),
/// redirects followed only within the same origin, no Nagle delay, connections kept for
/// reuse.
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client> {
    http_client_resolving(
        connect_timeout,
        mcp_oauth::http::ConnectResolver::new(Arc::new(mcp_oauth::netpolicy::SystemResolver), None),
    )
}

/// [`http_client`], resolving names through `connect`.
fn http_client_resolving(
    connect_timeout: Duration,
    connect: mcp_oauth::http::ConnectResolver,
) -> Result<reqwest::Client> {
    let redirect = mcp_oauth::http::same_origin_redirects(5);
    reqwest::Client::builder()
        .tls_backend_preconfigured(mcp_oauth::http::tls_config()?)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(redirect)
        .dns_resolver(Arc::new(connect))
        .user_agent(client::USER_AGENT)
        .build()
        .map_err(|e| Error::config_caused(format!("cannot build the HTTP client: {e}"), e))
}
