//! An [rmcp](https://docs.rs/rmcp) Streamable HTTP client whose requests an
//! [`OAuthClient`] authorizes: [`OAuthStreamableHttpClient`] (cargo feature `rmcp`).
//!
//! rmcp's client transport, [`StreamableHttpClientTransport`], is generic over the HTTP
//! client that sends its requests ([`StreamableHttpClient`]). This one sends them with
//! rmcp's own reqwest implementation, so rmcp keeps every protocol decision (sessions,
//! SSE, protocol versions, limits), and puts the OAuth client in front of each of them,
//! the way this library's own MCP client (`mcp_oauth::mcp::McpClient`) does:
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
use crate::client::MAX_AUTHORIZATIONS_PER_REQUEST;
use crate::error::{Error, Result, Step};
use crate::http::{HttpClient, HttpPolicy};
use crate::wire::{Refusal, RequestAuth};
use http::{HeaderName, HeaderValue, Method, header};
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

/// What one attempt of a request sends, credentials included.
struct AuthorizedRequest {
    /// rmcp's bearer token: the caller's, when the OAuth client has none.
    auth_header: Option<String>,
    headers: Headers,
}

impl AuthorizedRequest {
    /// Whether the request presents credentials (a refusal then means they were refused,
    /// not missing).
    fn carries_credentials(&self) -> bool {
        self.auth_header.is_some() || self.headers.contains_key(&header::AUTHORIZATION)
    }
}

/// The status and challenge of a refusal that authorization may resolve: a `401`, or a
/// `403` with a challenge (rmcp's client reports both only with a challenge).
fn challenge_of<E>(e: &StreamableHttpError<E>) -> Option<(u16, String)>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match e {
        StreamableHttpError::AuthRequired(e) => Some((401, e.www_authenticate_header.clone())),
        StreamableHttpError::InsufficientScope(e) => Some((403, e.www_authenticate_header.clone())),
        _ => None,
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

    /// Sends one request with `send`, authorized, and answers refusals: `send` is called
    /// again after each refusal the OAuth client resolved.
    async fn authorized<T, F, Fut>(
        &self,
        method: Method,
        uri: &str,
        auth_header: Option<String>,
        custom_headers: Headers,
        send: F,
    ) -> std::result::Result<T, TransportError>
    where
        F: Fn(Option<String>, Headers) -> Fut,
        Fut: Future<Output = std::result::Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        if !self.oauth.is_our_resource(uri) {
            return Err(StreamableHttpError::Client(self.foreign_resource(uri)));
        }
        let mut attempt = 0;
        loop {
            let request = self
                .credentials(&method, uri, auth_header.clone(), custom_headers.clone())
                .await?;
            let sent_credentials = request.carries_credentials();
            let result = send(request.auth_header, request.headers).await;
            let Some((status, challenge)) = result.as_ref().err().and_then(challenge_of) else {
                return result.map_err(|e| self.convert(uri, e));
            };
            tracing::debug!(url = %uri, status, attempt, "MCP server refused the request");
            // The OAuth client gives up first; this bounds the loop whatever it does.
            if attempt > MAX_AUTHORIZATIONS_PER_REQUEST {
                return result.map_err(|e| self.convert(uri, e));
            }
            let refusal = Refusal {
                url: uri.to_string(),
                status,
                www_authenticate: vec![challenge],
                sent_credentials,
                attempt,
                // rmcp's client does not hand back the response's headers.
                dpop_nonce: None,
            };
            self.oauth
                .on_refusal(&refusal)
                .await
                .map_err(StreamableHttpError::Client)?;
            attempt += 1;
        }
    }

    /// The OAuth client's credentials added to what rmcp asked for (`auth_header`,
    /// `custom_headers`). Like `McpClient`'s, they replace the caller's `Authorization`
    /// when there are any.
    async fn credentials(
        &self,
        method: &Method,
        uri: &str,
        auth_header: Option<String>,
        mut headers: Headers,
    ) -> std::result::Result<AuthorizedRequest, TransportError> {
        let ours = self
            .oauth
            .request_headers(method.as_str(), uri)
            .await
            .map_err(StreamableHttpError::Client)?;
        let auth_header = auth_header.filter(|_| !ours.contains_key(header::AUTHORIZATION));
        for (name, mut value) in ours {
            if let Some(name) = name {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        Ok(AuthorizedRequest {
            auth_header,
            headers,
        })
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
        self.authorized(
            Method::POST,
            &uri,
            auth_header,
            custom_headers,
            |auth, headers| {
                self.http.post_message_with_response_limits(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    auth,
                    headers,
                    limits,
                )
            },
        )
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
            |auth, headers| {
                self.http
                    .delete_session(uri.clone(), session_id.clone(), auth, headers)
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
        self.authorized(
            Method::GET,
            &uri,
            auth_header,
            custom_headers,
            |auth, headers| {
                self.http.get_stream(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    auth,
                    headers,
                )
            },
        )
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
        self.authorized(
            Method::GET,
            &uri,
            auth_header,
            custom_headers,
            |auth, headers| {
                self.http.get_stream_with_max_sse_event_size(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    auth,
                    headers,
                    max_sse_event_size,
                )
            },
        )
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

    type RmcpError = StreamableHttpError<std::io::Error>;

    #[test]
    fn only_challenges_go_to_the_oauth_client() {
        let challenge =
            r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource""#;
        let unauthorized = RmcpError::AuthRequired(AuthRequiredError::new(challenge.into()));
        assert_eq!(challenge_of(&unauthorized), Some((401, challenge.into())));
        let step_up = RmcpError::InsufficientScope(InsufficientScopeError::new(
            r#"Bearer error="insufficient_scope", scope="a b""#.into(),
            Some("a b".into()),
        ));
        assert_eq!(challenge_of(&step_up).map(|(s, _)| s), Some(403));
        assert_eq!(challenge_of(&RmcpError::SessionExpired), None);
        assert_eq!(challenge_of(&RmcpError::UnexpectedEndOfStream), None);
    }

    #[test]
    fn rmcp_errors_keep_their_kind() {
        // rmcp renews the session on SessionExpired: the kind must survive the mapping.
        let to_config = |e: std::io::Error| Error::Config(e.to_string());
        assert!(matches!(
            map_client_error(RmcpError::SessionExpired, to_config),
            StreamableHttpError::SessionExpired
        ));
        let client = RmcpError::Client(std::io::Error::other("connection reset"));
        match map_client_error(client, to_config) {
            StreamableHttpError::Client(Error::Config(m)) => assert_eq!(m, "connection reset"),
            other => panic!("{other:?}"),
        }
    }
}
