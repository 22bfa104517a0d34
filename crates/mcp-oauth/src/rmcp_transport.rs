//! An [rmcp](https://docs.rs/rmcp) Streamable HTTP client whose requests an
//! [`OAuthClient`] authorizes: [`OAuthStreamableHttpClient`] (cargo feature `rmcp`).
//!
//! rmcp's client transport, [`StreamableHttpClientTransport`], is generic over the HTTP
//! client that sends its requests ([`StreamableHttpClient`]). This one sends them with
//! rmcp's own reqwest implementation, so rmcp keeps every protocol decision (sessions,
//! SSE, protocol versions, limits), through the loop that authorizes every request of
//! this library's own MCP client and of its proxy ([`crate::wire::send_authorized`]):
//!
//! - before every request, the OAuth client's `Authorization` header (and `DPoP` proof,
//!   for sender-constrained tokens), renewed first when the token is about to expire;
//! - a `401`, or a `403` with a challenge, goes to the OAuth client, which adopts a
//!   sibling's token, refreshes, logs in (discovery, registration, the browser) or steps
//!   up (`insufficient_scope`); then the request is sent again. The OAuth client bounds
//!   how often ([`crate::client::MAX_AUTHORIZATIONS_PER_REQUEST`]);
//! - tokens go only to the resource they were issued for: requests to any other URL are
//!   refused before anything is sent, no token goes over plain `http` off loopback, and
//!   the HTTP client is the library's ([`crate::http::HttpClient`]): redirects followed
//!   within the origin only, connections through the OAuth client's network policy.
//!
//! ```no_run
//! use mcp_oauth::authorize::browser::SystemBrowser;
//! use mcp_oauth::http::{HttpClient, HttpPolicy};
//! use mcp_oauth::rmcp_transport::OAuthStreamableHttpClient;
//! use mcp_oauth::store::FileStore;
//! use mcp_oauth::{OAuthClient, OAuthConfig};
//! use rmcp::ServiceExt;
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let oauth = OAuthClient::new(
//!     OAuthConfig::new("http://127.0.0.1:8888/mcp"),
//!     HttpClient::new(HttpPolicy::default())?,
//!     Arc::new(FileStore::default_location()?), // the CLI's store: logins are shared
//!     Arc::new(SystemBrowser),
//! );
//! let transport = OAuthStreamableHttpClient::new(oauth)?.into_transport();
//! let client = ().serve(transport).await?; // logs in on the server's first 401
//! for tool in client.list_all_tools().await? {
//!     println!("{}", tool.name);
//! }
//! client.cancel().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Errors of the authorization (and of the connection) are this library's
//! [`Error`], in [`StreamableHttpError::Client`].
//!
//! Limits, from what rmcp's HTTP client hands back of a refused response: only its first
//! `WWW-Authenticate` field, no `DPoP-Nonce` (so a server that demands DPoP nonces,
//! RFC 9449 §9, cannot be answered), and a `401` without a challenge is an error rather
//! than a reason to log in.

#![warn(missing_docs)]

use crate::OAuthClient;
use crate::error::{Error, Result, Step};
use crate::http::{HttpClient, HttpPolicy};
use crate::wire::{AuthorizedRequest, HttpAttempt, RequestAuth, ResponseHead, send_authorized};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The time one HTTP exchange with the MCP server may take, from the request to the end
/// of its response, unless [`OAuthStreamableHttpClient::with_request_timeout`] says
/// otherwise. Long, because an SSE response lasts as long as the tool call it answers;
/// rmcp reopens its event stream (`GET`) when it ends.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// rmcp's errors with this library's [`Error`] as the client's error.
pub type TransportError = StreamableHttpError<Error>;

/// Request headers, as rmcp's client takes them.
type Headers = HashMap<HeaderName, HeaderValue>;

/// The result of one of rmcp's requests, with its client's error.
type RmcpResult<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

/// rmcp's answer to one attempt, as [`send_authorized`] reads a response: a refusal
/// (rmcp reports a `401`, or a `403` with a challenge, as an error that carries the
/// challenge: it becomes the one `WWW-Authenticate` field), or an answer.
struct Reply<T> {
    /// `401` or `403` for a refusal; for an answer `200`, whatever rmcp saw: the loop
    /// only asks whether it is a refusal.
    status: StatusCode,
    headers: HeaderMap,
    result: RmcpResult<T>,
}

impl<T> Reply<T> {
    /// The reply that rmcp's `result` is; `Err` when it is an error other than a refusal,
    /// which ends the request.
    fn of(result: RmcpResult<T>) -> RmcpResult<Reply<T>> {
        let error = match result {
            Ok(answer) => {
                return Ok(Reply {
                    status: StatusCode::OK,
                    headers: HeaderMap::new(),
                    result: Ok(answer),
                });
            }
            Err(error) => error,
        };
        let (status, challenge) = match &error {
            StreamableHttpError::AuthRequired(e) => {
                (StatusCode::UNAUTHORIZED, &e.www_authenticate_header)
            }
            StreamableHttpError::InsufficientScope(e) => {
                (StatusCode::FORBIDDEN, &e.www_authenticate_header)
            }
            _ => return Err(error),
        };
        let mut headers = HeaderMap::new();
        // rmcp read the challenge from a header as text, so it is a valid header value.
        if let Ok(value) = HeaderValue::from_str(challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        Ok(Reply {
            status,
            headers,
            result: Err(error),
        })
    }
}

impl<T> ResponseHead for Reply<T> {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// One of rmcp's requests, sent by [`send_authorized`] once per attempt: `send` calls
/// rmcp's reqwest client with the attempt's headers.
struct RmcpAttempt<F> {
    send: F,
}

/// What ended a request before an answer: the OAuth client's error (discovery, login,
/// refresh), or rmcp's (not a refusal).
enum AttemptError {
    Authorization(Error),
    Rmcp(StreamableHttpError<reqwest::Error>),
}

impl From<Error> for AttemptError {
    fn from(e: Error) -> Self {
        AttemptError::Authorization(e)
    }
}

impl<T, F, Fut> HttpAttempt for RmcpAttempt<F>
where
    T: Send,
    F: Fn(Headers) -> Fut + Send,
    Fut: Future<Output = RmcpResult<T>> + Send,
{
    type Response = Reply<T>;
    type Error = AttemptError;

    fn send(
        &mut self,
        headers: HeaderMap,
    ) -> impl Future<Output = std::result::Result<Option<Reply<T>>, AttemptError>> + Send {
        // rmcp takes one value per name; every header here has one.
        let headers: Headers = headers
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value)))
            .collect();
        let sent = (self.send)(headers);
        async move { Reply::of(sent.await).map(Some).map_err(AttemptError::Rmcp) }
    }
}

/// An rmcp [`StreamableHttpClient`] whose requests an [`OAuthClient`] authorizes (see
/// the [module documentation](self)). Cheap to clone: clones share the OAuth client,
/// so one login, refresh or step-up serves them all.
#[derive(Debug, Clone)]
pub struct OAuthStreamableHttpClient {
    oauth: Arc<OAuthClient>,
    http: reqwest::Client,
    /// The client's overall time limit, named by time-out errors.
    timeout: Duration,
}

impl OAuthStreamableHttpClient {
    /// A client for the MCP server `oauth` was built for, with the
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(oauth: impl Into<Arc<OAuthClient>>) -> Result<Self> {
        Self::with_request_timeout(oauth, DEFAULT_REQUEST_TIMEOUT)
    }

    /// A client whose HTTP exchanges may each take up to `timeout`. The rest of the HTTP
    /// policy (connect time-out, redirects, proxies) is the OAuth client's, and so is its
    /// network policy: the MCP server's name resolves to the same kind of address for the
    /// MCP traffic as for the OAuth traffic.
    pub fn with_request_timeout(
        oauth: impl Into<Arc<OAuthClient>>,
        timeout: Duration,
    ) -> Result<Self> {
        let oauth = oauth.into();
        let policy = HttpPolicy {
            request_timeout: timeout,
            ..oauth.http().policy().clone()
        };
        let http = HttpClient::new(policy)?;
        let http = match oauth.address_guard() {
            Some(guard) => http.with_guard(guard),
            None => http,
        };
        Ok(Self {
            oauth,
            http: http.reqwest().clone(),
            timeout,
        })
    }

    /// The OAuth client (to log in ahead of time, read the stored credential, log out).
    pub fn oauth(&self) -> &Arc<OAuthClient> {
        &self.oauth
    }

    /// rmcp's transport to the MCP server the OAuth client was built for, with rmcp's
    /// default settings. For other settings, pass this client and a
    /// [`StreamableHttpClientTransportConfig`] with the same URI to
    /// [`StreamableHttpClientTransport::with_client`].
    pub fn into_transport(self) -> StreamableHttpClientTransport<Self> {
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.oauth.config().server_url.clone());
        StreamableHttpClientTransport::with_client(self, config)
    }

    /// Sends one request with `send`, through the library's loop that authorizes every
    /// attempt and answers refusals ([`send_authorized`], as `McpClient` and the proxy
    /// do). rmcp's `auth_header` (a bearer token of the transport's configuration) goes
    /// as an `Authorization` header, which the OAuth client's replaces when it has one.
    async fn authorized<T, F, Fut>(
        &self,
        method: Method,
        uri: &str,
        auth_header: Option<String>,
        custom_headers: Headers,
        send: F,
    ) -> std::result::Result<T, TransportError>
    where
        T: Send,
        F: Fn(Headers) -> Fut + Send,
        Fut: Future<Output = RmcpResult<T>> + Send,
    {
        if !self.oauth.is_our_resource(uri) {
            return Err(StreamableHttpError::Client(self.foreign_resource(uri)));
        }
        let mut headers: HeaderMap = custom_headers.into_iter().collect();
        if let Some(token) = auth_header {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                StreamableHttpError::Client(Error::rule(
                    Step::Config,
                    uri,
                    "the transport's auth_header has characters not allowed in a header",
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let request = AuthorizedRequest {
            method: &method,
            resource: uri,
            defaults: &HeaderMap::new(),
            headers: &headers,
        };
        let auth: &dyn RequestAuth = self.oauth.as_ref();
        match send_authorized(&mut RmcpAttempt { send }, Some(auth), request).await {
            // An answer, or a refusal the OAuth client could not resolve: rmcp's own.
            Ok(sent) => sent
                .into_response()
                .result
                .map_err(|e| self.convert(uri, e)),
            Err(AttemptError::Authorization(e)) => Err(StreamableHttpError::Client(e)),
            Err(AttemptError::Rmcp(e)) => Err(self.convert(uri, e)),
        }
    }

    fn foreign_resource(&self, uri: &str) -> Error {
        Error::rule(
            Step::Config,
            uri,
            format!(
                "the rmcp transport's URI is not the MCP server the OAuth client was built \
                 for ({}); its tokens go only to the resource they were issued for",
                self.oauth.config().server_url
            ),
        )
    }

    /// rmcp's error with the reqwest error turned into this library's (which names a
    /// request the network policy refused as such).
    fn convert(&self, uri: &str, e: StreamableHttpError<reqwest::Error>) -> TransportError {
        let secs = self.timeout.as_secs();
        map_client_error(e, |e| {
            crate::http::request_error(Step::McpRequest, uri, &e, secs)
        })
    }
}

/// `e` with its client error mapped by `f`, every other kind kept as it is.
fn map_client_error<A, B>(
    e: StreamableHttpError<A>,
    f: impl FnOnce(A) -> B,
) -> StreamableHttpError<B>
where
    A: std::error::Error + Send + Sync + 'static,
    B: std::error::Error + Send + Sync + 'static,
{
    use StreamableHttpError as E;
    match e {
        E::Client(e) => E::Client(f(e)),
        E::Sse(e) => E::Sse(e),
        E::Io(e) => E::Io(e),
        E::HttpStatus(e) => E::HttpStatus(e),
        E::UnexpectedEndOfStream => E::UnexpectedEndOfStream,
        E::UnexpectedServerResponse(m) => E::UnexpectedServerResponse(m),
        E::ResponseBodyTooLarge { max_size } => E::ResponseBodyTooLarge { max_size },
        E::UnexpectedContentType(c) => E::UnexpectedContentType(c),
        E::ServerDoesNotSupportSse => E::ServerDoesNotSupportSse,
        E::ServerDoesNotSupportDeleteSession => E::ServerDoesNotSupportDeleteSession,
        E::TokioJoinError(e) => E::TokioJoinError(e),
        E::Deserialize(e) => E::Deserialize(e),
        E::TransportChannelClosed => E::TransportChannelClosed,
        E::MissingSessionIdInResponse => E::MissingSessionIdInResponse,
        E::AuthRequired(e) => E::AuthRequired(e),
        E::InsufficientScope(e) => E::InsufficientScope(e),
        E::ReservedHeaderConflict(h) => E::ReservedHeaderConflict(h),
        E::SessionExpired => E::SessionExpired,
        E::SessionRecoveryTimeout => E::SessionRecoveryTimeout,
        E::ReinitializationFailed(d) => E::ReinitializationFailed(d),
        E::ControlRequestTimeout => E::ControlRequestTimeout,
        // Kinds added after rmcp 3.11 (or by its `auth` feature): their message.
        other => E::UnexpectedServerResponse(other.to_string().into()),
    }
}

/// Each method sends through rmcp's reqwest client, with the OAuth client's credentials
/// and its answers to refusals; the response handling is rmcp's.
impl StreamableHttpClient for OAuthStreamableHttpClient {
    type Error = Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> std::result::Result<StreamableHttpPostResponse, TransportError> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> std::result::Result<StreamableHttpPostResponse, TransportError> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Headers,
        limits: StreamableHttpResponseLimits,
    ) -> std::result::Result<StreamableHttpPostResponse, TransportError> {
        self.authorized(Method::POST, &uri, auth_header, custom_headers, |headers| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                None,
                headers,
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> std::result::Result<(), TransportError> {
        self.authorized(
            Method::DELETE,
            &uri,
            auth_header,
            custom_headers,
            |headers| {
                self.http
                    .delete_session(uri.clone(), session_id.clone(), None, headers)
            },
        )
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> std::result::Result<BoxedSseResponse, TransportError> {
        self.authorized(Method::GET, &uri, auth_header, custom_headers, |headers| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> std::result::Result<BoxedSseResponse, TransportError> {
        self.authorized(Method::GET, &uri, auth_header, custom_headers, |headers| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}

/// docs/library.md's Rust example, compiled by `cargo test --doc` so that it stays true to
/// the API (its `toml` and `sh` blocks are not Rust and are not compiled).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/library.md")]
pub struct LibraryDocDoctests;

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError};

    type RmcpError = StreamableHttpError<reqwest::Error>;

    #[test]
    fn only_refusals_go_to_the_oauth_client() {
        use crate::wire::is_refusal;
        let refused = |e| Reply::<()>::of(Err(e)).expect("a refusal");

        let challenge =
            r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource""#;
        let unauthorized = refused(RmcpError::AuthRequired(AuthRequiredError::new(
            challenge.into(),
        )));
        assert!(is_refusal(unauthorized.status(), unauthorized.headers()));
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unauthorized.headers()[header::WWW_AUTHENTICATE], challenge);

        let step_up = refused(RmcpError::InsufficientScope(InsufficientScopeError::new(
            r#"Bearer error="insufficient_scope", scope="a b""#.into(),
            Some("a b".into()),
        )));
        assert!(is_refusal(step_up.status(), step_up.headers()));
        assert_eq!(step_up.status(), StatusCode::FORBIDDEN);

        let answer = Reply::of(Ok(())).expect("an answer");
        assert!(!is_refusal(answer.status(), answer.headers()));
        // Other errors end the request: they are not replies to send again.
        assert!(Reply::<()>::of(Err(RmcpError::SessionExpired)).is_err());
        assert!(Reply::<()>::of(Err(RmcpError::UnexpectedEndOfStream)).is_err());
    }

    #[test]
    fn rmcp_errors_keep_their_kind() {
        // rmcp renews the session on SessionExpired: the kind must survive the mapping.
        let to_config = |e: std::io::Error| Error::config_caused(e.to_string(), e);
        let session_expired = StreamableHttpError::<std::io::Error>::SessionExpired;
        assert!(matches!(
            map_client_error(session_expired, to_config),
            StreamableHttpError::SessionExpired
        ));
        let client = StreamableHttpError::Client(std::io::Error::other("connection reset"));
        match map_client_error(client, to_config) {
            StreamableHttpError::Client(Error::Config { message: m, .. }) => {
                assert_eq!(m, "connection reset")
            }
            other => panic!("{other:?}"),
        }
    }
}
