//! Typed errors. Every error names the step of the flow it happened in and, where there
//! is one, the URL and the rule that was broken, so that a user can act on it without
//! reading logs. None of them ever carries a secret.

use crate::discovery::trace::DiscoveryTrace;
use std::fmt;

/// The step of the MCP authorization flow an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Talking to the MCP server itself.
    McpRequest,
    /// Parsing the `WWW-Authenticate` challenge.
    Challenge,
    /// Protected Resource Metadata discovery (RFC 9728).
    ResourceMetadata,
    /// Authorization server metadata discovery (RFC 8414 / OIDC Discovery).
    AuthServerMetadata,
    /// Client registration (pre-registered, CIMD or RFC 7591).
    Registration,
    /// The authorization request and its redirect (RFC 6749 §4.1, RFC 9207).
    Authorization,
    /// Exchanging the code at the token endpoint.
    TokenExchange,
    /// Refreshing a token.
    Refresh,
    /// Revoking a token (RFC 7009).
    Revocation,
    /// Reading or writing the credential store.
    Store,
    /// Configuration given by the user.
    Config,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::McpRequest => "MCP request",
            Step::Challenge => "WWW-Authenticate challenge",
            Step::ResourceMetadata => "protected resource metadata discovery",
            Step::AuthServerMetadata => "authorization server metadata discovery",
            Step::Registration => "client registration",
            Step::Authorization => "authorization",
            Step::TokenExchange => "token exchange",
            Step::Refresh => "token refresh",
            Step::Revocation => "token revocation",
            Step::Store => "credential store",
            Step::Config => "configuration",
        })
    }
}

/// An OAuth error response body (RFC 6749 §5.2, also used by RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct OAuthErrorBody {
    /// The OAuth error code (`invalid_grant`, `invalid_client_metadata`, ...).
    pub error: String,
    /// The server's human-readable explanation, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page about the error, if the server named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl fmt::Display for OAuthErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        if let Some(u) = &self.error_uri {
            write!(f, " (see {u})")?;
        }
        Ok(())
    }
}

/// A source error kept with an [`Error`] whose message already says what it says.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the library can fail with. Most variants name the [`Step`] of the flow and
/// the URL they happened at; none carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be sent or its response could not be read. `message` says
    /// how, with the causes of `source` (the HTTP client's error, when there is one).
    #[error("{step}: request to {url} failed: {message}")]
    Transport {
        /// The step of the flow the error happened in.
        step: Step,
        /// The URL the request went to.
        url: String,
        /// What failed, with the causes of `source`.
        message: String,
        /// The HTTP client's error, when there is one.
        #[source]
        source: Option<Source>,
    },

    /// No response within the configured time.
    #[error("{step}: no answer from {url} within {secs} s")]
    Timeout {
        /// The step of the flow the error happened in.
        step: Step,
        /// The URL the request went to.
        url: String,
        /// The configured time-out, in seconds.
        secs: u64,
    },

    /// An HTTP status that the step cannot use.
    #[error("{step}: {url} answered HTTP {status}{}", excerpt_suffix(.body_excerpt))]
    Status {
        /// The step of the flow the error happened in.
        step: Step,
        /// The URL the request went to.
        url: String,
        /// The HTTP status code of the response.
        status: u16,
        /// The start of the response body (empty if there was none), with secrets removed.
        body_excerpt: String,
    },

    /// A response, a document, a request or a setting broke a rule; [`Rule`] says which,
    /// by cause.
    #[error("{step}: {url}: {rule}")]
    Rule {
        /// The step of the flow the error happened in.
        step: Step,
        /// The URL of the response, document or request that broke the rule.
        url: String,
        /// The rule that was broken.
        rule: Rule,
    },

    /// A signature the request needs could not be made (a DPoP proof, a client
    /// assertion); `what` names it.
    #[error("{step}: {url}: cannot sign {what}: {source}")]
    Signing {
        /// The step of the flow the error happened in.
        step: Step,
        /// The URL the signed request was for.
        url: String,
        /// What could not be signed (a DPoP proof, a client assertion).
        what: &'static str,
        /// The signing library's error.
        #[source]
        source: Source,
    },

    /// An OAuth error response (RFC 6749 §5.2).
    #[error("{step}: {url} returned OAuth error {body}")]
    OAuth {
        /// The step of the flow the error happened in.
        step: Step,
        /// The endpoint that answered with the error.
        url: String,
        /// The HTTP status code of the error response.
        status: u16,
        /// The error response's body.
        body: OAuthErrorBody,
    },

    /// The authorization server answered the authorization request with an error in its
    /// redirect (RFC 6749 §4.1.2.1): the user denied, or the server refused the request.
    #[error(
        "authorization: the authorization server {issuer} refused: {body}{}",
        .note.as_deref().map(|n| format!("\n  {n}")).unwrap_or_default()
    )]
    AuthorizationRefused {
        /// The issuer of the authorization server that refused.
        issuer: String,
        /// The error parameters of the redirect.
        body: OAuthErrorBody,
        /// What this client knows that may explain the refusal (the request it made),
        /// and what to do about it.
        note: Option<String>,
    },

    /// Discovery found nothing usable; the trace says what was tried.
    #[error("{step}: {message}\n{trace}")]
    Discovery {
        /// The step of the flow the error happened in.
        step: Step,
        /// What was missing.
        message: String,
        /// Each URL tried and what it answered.
        trace: DiscoveryTrace,
    },

    /// `error` came from one of the 2025-03-26 default endpoints (`/register`, ...), used
    /// because discovery found no usable metadata; `trace` says what each metadata URL
    /// answered. Without it, a broken metadata document reads as "`/register` answered
    /// 404", which sends the user to the wrong place. `error` is kept whole (not a source:
    /// the message shows it), so its type and OAuth error code still tell what happened.
    #[error(
        "{error}\n  That endpoint is a 2025-03-26 default at the MCP server's origin, assumed \
         because no protected resource metadata was usable and the origin publishes no \
         authorization server metadata; the trace below lists what each URL answered. Fix the \
         server's metadata, or set auth_server_metadata_url if it is published elsewhere.\n{trace}"
    )]
    AtDefaultEndpoint {
        /// The error the default endpoint answered with.
        error: Box<Error>,
        /// What each metadata URL answered during discovery.
        trace: DiscoveryTrace,
    },

    /// The user has to do something (pre-register a client, accept a setting, ...).
    #[error("{step}: {message}")]
    Action {
        /// The step of the flow the error happened in.
        step: Step,
        /// What the user has to do, and how.
        message: String,
    },

    /// Step-up authorization did not satisfy the server.
    #[error(
        "authorization: the server still answers insufficient_scope after {attempts} \
         re-authorizations (last scopes requested: {scope}); giving up"
    )]
    StepUpExhausted {
        /// How many re-authorizations were made.
        attempts: u32,
        /// The space-separated scopes requested last.
        scope: String,
    },

    /// Reading or writing the credential store. `message` says what went wrong and what
    /// to do about it; `source` is the I/O (or task) error it comes from, if any.
    #[error("credential store: {path}: {message}")]
    Store {
        /// The store's file or directory.
        path: String,
        /// What went wrong and what to do about it.
        message: String,
        /// The I/O (or task) error it comes from, if any.
        #[source]
        source: Option<Source>,
    },

    /// A credential store outside this crate (a database, a keychain) failed; `source`
    /// says how. `store` names it without secrets (`postgres://host:5432/db`).
    #[error("credential store {store}: {message}")]
    StoreBackend {
        /// The store's name, without secrets (`postgres://host:5432/db`).
        store: String,
        /// What the store was doing, or could not do.
        message: String,
        /// The store's own error.
        #[source]
        source: Source,
    },

    /// A JSON-RPC error returned by the MCP server.
    #[error("MCP server returned error {code}: {message}")]
    JsonRpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The error's message.
        message: String,
        /// The error's `data` member, if any.
        data: Option<serde_json::Value>,
    },

    /// Invalid configuration, or something a setting names that cannot be used (a key or
    /// secret file, a redirect port). `message` says what and how to fix it, with the
    /// causes of `source` when there is one.
    #[error("configuration: {message}")]
    Config {
        /// What is wrong and how to fix it, with the causes of `source`.
        message: String,
        /// The error it comes from (reading a file, parsing a key), if any.
        #[source]
        source: Option<Source>,
    },
}

/// The rule an [`Error::Rule`] broke, by cause. Its text names the rule (and, for a
/// refusal that a setting can lift, the setting).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The network policy refused the address a URL leads to (SSRF protection, see
    /// [`crate::netpolicy`]); the text is the policy's refusal.
    NetworkPolicy(String),
    /// A redirect to another origin, which is never followed.
    CrossOriginRedirect {
        /// The URL the redirect led to.
        to: String,
    },
    /// A response body larger than the limit (in bytes).
    SizeLimit {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The MCP server is reached over plain http on a host that is not loopback, so its
    /// access token would cross the network unencrypted (OAuth 2.1 §1.5);
    /// [`OAuthConfig::allow_plain_http`](crate::config::OAuthConfig::allow_plain_http)
    /// accepts that risk.
    PlainHttp,
    /// An authorization server endpoint (or issuer) that is not an https URL, plain http
    /// being accepted on loopback only.
    InsecureEndpoint(String),
    /// RFC 9207: the authorization response names another issuer than the one the request
    /// went to, or none where one was promised (mix-up protection).
    IssuerMismatch(String),
    /// The authorization response's `state` is absent or not the request's (CSRF
    /// protection).
    StateMismatch(String),
    /// The authorization redirect (received or pasted) cannot be used, or was not
    /// received.
    Redirect(String),
    /// A credential the request needs is not there: the client's secret or private key,
    /// the issuer its assertion is addressed to, the stored token's DPoP key.
    MissingCredential(String),
    /// A response, document or value that breaks its protocol (RFC 6749, 7591, 8414,
    /// 8628, MCP, ...).
    Protocol(String),
}

impl Rule {
    /// The rule with `f` applied to the text it carries (to scrub echoed secrets).
    pub(crate) fn map_text(self, f: impl Fn(&str) -> String) -> Rule {
        match self {
            Rule::NetworkPolicy(t) => Rule::NetworkPolicy(f(&t)),
            Rule::CrossOriginRedirect { to } => Rule::CrossOriginRedirect { to: f(&to) },
            Rule::InsecureEndpoint(t) => Rule::InsecureEndpoint(f(&t)),
            Rule::IssuerMismatch(t) => Rule::IssuerMismatch(f(&t)),
            Rule::StateMismatch(t) => Rule::StateMismatch(f(&t)),
            Rule::Redirect(t) => Rule::Redirect(f(&t)),
            Rule::MissingCredential(t) => Rule::MissingCredential(f(&t)),
            Rule::Protocol(t) => Rule::Protocol(f(&t)),
            Rule::SizeLimit { .. } | Rule::PlainHttp => self,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NetworkPolicy(t)
            | Rule::InsecureEndpoint(t)
            | Rule::IssuerMismatch(t)
            | Rule::StateMismatch(t)
            | Rule::Redirect(t)
            | Rule::MissingCredential(t)
            | Rule::Protocol(t) => f.write_str(t),
            Rule::CrossOriginRedirect { to } => write!(
                f,
                "redirected to another origin ({to}); cross-origin redirects are not followed"
            ),
            Rule::SizeLimit { limit } => {
                write!(f, "response body is larger than the {limit}-byte limit")
            }
            Rule::PlainHttp => write!(
                f,
                "the MCP server is reached over plain http on a host that is not loopback, so \
                 its access token would cross the network unencrypted (OAuth 2.1 §1.5); use \
                 its https URL, or {} (allow_http = true in the configuration file)",
                crate::remedy::Remedy::AllowPlainHttp
            ),
        }
    }
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// A reqwest error given to [`Error::from_reqwest`]: owned, it becomes the error's
/// source; lent, only its text is kept (enough for a caller that reports the text).
pub(crate) trait ReqwestFailure {
    fn error(&self) -> &reqwest::Error;
    fn into_source(self) -> Option<Source>;
}

impl ReqwestFailure for reqwest::Error {
    fn error(&self) -> &reqwest::Error {
        self
    }
    fn into_source(self) -> Option<Source> {
        Some(Box::new(self))
    }
}

impl ReqwestFailure for &reqwest::Error {
    fn error(&self) -> &reqwest::Error {
        self
    }
    fn into_source(self) -> Option<Source> {
        None
    }
}

impl Error {
    /// A response or document that broke its protocol ([`Rule::Protocol`]).
    pub(crate) fn rule(step: Step, url: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::broke(step, url, Rule::Protocol(rule.into()))
    }

    /// `rule` broken at `url` during `step`.
    pub(crate) fn broke(step: Step, url: impl Into<String>, rule: Rule) -> Self {
        Error::Rule {
            step,
            url: url.into(),
            rule,
        }
    }

    /// A credential store error without an underlying one.
    pub(crate) fn store(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Store {
            path: path.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Maps a reqwest error, telling time-outs apart from other transport failures.
    /// reqwest's own message is used without its URL part: URLs are named by us.
    pub(crate) fn from_reqwest(step: Step, url: &str, err: impl ReqwestFailure, secs: u64) -> Self {
        if err.error().is_timeout() {
            return Error::Timeout {
                step,
                url: url.to_string(),
                secs,
            };
        }
        Error::Transport {
            step,
            url: url.to_string(),
            message: crate::util::error_chain(err.error()),
            source: err.into_source(),
        }
    }

    /// The OAuth error code, when this is an OAuth error response.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Error::OAuth { body, .. } | Error::AuthorizationRefused { body, .. } => {
                Some(&body.error)
            }
            Error::AtDefaultEndpoint { error, .. } => error.oauth_error(),
            _ => None,
        }
    }

    /// A configuration error with no underlying cause.
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config {
            message: message.into(),
            source: None,
        }
    }

    /// A configuration error caused by `source`; `message` should say what the source
    /// says (its text is not appended).
    pub fn config_caused(message: impl Into<String>, source: impl Into<Source>) -> Error {
        Error::Config {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether the message already says what the [`source`](std::error::Error::source)
    /// says (its text and causes, or what they mean), so that a printer walking the
    /// sources stops here rather than say it twice.
    pub fn message_covers_source(&self) -> bool {
        matches!(
            self,
            Error::Transport { .. }
                | Error::Store { .. }
                | Error::Signing { .. }
                | Error::Config { .. }
        )
    }
}

/// The library's result type, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error's message with its causes (each said once), and what to do about an
/// untrusted certificate.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_str = s.to_string();
        if !message.contains(&s_str) {
            message.push_str(": ");
            message.push_str(&s_str);
        }
        src = s.source();
    }
    if message.contains("invalid peer certificate") {
        message.push_str(&format!(
            " (this machine does not trust the server's certificate; to trust a private \
             CA, name its PEM file in {})",
            crate::util::EXTRA_CA_CERTS_ENV
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each cause says what the single rule string said before rules were typed.
    #[test]
    fn rules_by_cause_read_as_before() {
        let shown = |rule: Rule| Error::broke(Step::McpRequest, "https://u", rule).to_string();
        assert_eq!(
            shown(Rule::SizeLimit { limit: 1024 }),
            "MCP request: https://u: response body is larger than the 1024-byte limit"
        );
        assert_eq!(
            shown(Rule::CrossOriginRedirect {
                to: "https://elsewhere/".into()
            }),
            "MCP request: https://u: redirected to another origin (https://elsewhere/); \
             cross-origin redirects are not followed"
        );
        assert_eq!(
            shown(Rule::NetworkPolicy("refused".into())),
            "MCP request: https://u: refused"
        );
        assert_eq!(
            Error::rule(Step::Registration, "https://r", "no client_id").to_string(),
            "client registration: https://r: no client_id"
        );
        assert!(matches!(
            Error::rule(Step::Registration, "u", "x"),
            Error::Rule {
                rule: Rule::Protocol(_),
                ..
            }
        ));
    }

    /// A source is kept beside a message that already says it: the text is as before,
    /// and a printer walking the sources knows to stop.
    #[test]
    fn sources_are_kept_and_their_text_is_said_once() {
        use std::error::Error as _;
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = Error::Store {
            path: "/s".into(),
            message: "permission denied while reading it".into(),
            source: Some(Box::new(io)),
        };
        assert_eq!(
            e.to_string(),
            "credential store: /s: permission denied while reading it"
        );
        let source = e.source().expect("the I/O error");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        assert!(e.message_covers_source());
        assert!(Error::store("/s", "m").source().is_none());
        assert!(Error::config("x").source().is_none());
        let unreadable = std::io::Error::from(std::io::ErrorKind::NotFound);
        let config = Error::config_caused(
            format!("cannot read the key file k: {unreadable}"),
            unreadable,
        );
        assert_eq!(
            config
                .source()
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|e| e.kind()),
            Some(std::io::ErrorKind::NotFound)
        );
        assert!(config.message_covers_source());
    }

    /// The HTTP client's error is the source of a transport error when it is given, and
    /// the text is the same either way.
    #[tokio::test]
    async fn a_transport_error_keeps_the_http_clients_error() {
        use std::error::Error as _;
        // Nothing listens on port 1 of loopback: the connection is refused.
        let err = reqwest::Client::new()
            .get("http://127.0.0.1:1/")
            .send()
            .await
            .unwrap_err();
        let lent = Error::from_reqwest(Step::McpRequest, "http://127.0.0.1:1/", &err, 5);
        let given = Error::from_reqwest(Step::McpRequest, "http://127.0.0.1:1/", err, 5);
        assert_eq!(lent.to_string(), given.to_string());
        assert!(matches!(given, Error::Transport { .. }), "{given}");
        assert!(lent.source().is_none());
        assert!(
            given
                .source()
                .is_some_and(|s| s.downcast_ref::<reqwest::Error>().is_some())
        );
    }
}
