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
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be sent or its response could not be read.
    #[error("{step}: request to {url} failed: {message}")]
    Transport {
        step: Step,
        url: String,
        message: String,
    },

    /// No response within the configured time.
    #[error("{step}: no answer from {url} within {secs} s")]
    Timeout { step: Step, url: String, secs: u64 },

    /// An HTTP status that the step cannot use.
    #[error("{step}: {url} answered HTTP {status}{}", excerpt_suffix(.body_excerpt))]
    Status {
        step: Step,
        url: String,
        status: u16,
        body_excerpt: String,
    },

    /// A response or document broke a rule of the spec (the message names it).
    #[error("{step}: {url}: {rule}")]
    Rule {
        step: Step,
        url: String,
        rule: String,
    },

    /// An OAuth error response (RFC 6749 §5.2).
    #[error("{step}: {url} returned OAuth error {body}")]
    OAuth {
        step: Step,
        url: String,
        status: u16,
        body: OAuthErrorBody,
    },

    /// The authorization server answered the authorization request with an error in its
    /// redirect (RFC 6749 §4.1.2.1): the user denied, or the server refused the request.
    #[error("authorization: the authorization server {issuer} refused: {body}")]
    AuthorizationRefused {
        issuer: String,
        body: OAuthErrorBody,
    },

    /// Discovery found nothing usable; the trace says what was tried.
    #[error("{step}: {message}\n{trace}")]
    Discovery {
        step: Step,
        message: String,
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
        error: Box<Error>,
        trace: DiscoveryTrace,
    },

    /// The user has to do something (pre-register a client, accept a setting, ...).
    #[error("{step}: {message}")]
    Action { step: Step, message: String },

    /// Step-up authorization did not satisfy the server.
    #[error(
        "authorization: the server still answers insufficient_scope after {attempts} \
         re-authorizations (last scopes requested: {scope}); giving up"
    )]
    StepUpExhausted { attempts: u32, scope: String },

    /// Reading or writing the credential store.
    #[error("credential store: {path}: {message}")]
    Store { path: String, message: String },

    /// A credential store outside this crate (a database, a keychain) failed; `source`
    /// says how. `store` names it without secrets (`postgres://host:5432/db`).
    #[error("credential store {store}: {message}")]
    StoreBackend {
        store: String,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A JSON-RPC error returned by the MCP server.
    #[error("MCP server returned error {code}: {message}")]
    JsonRpc {
        code: i64,
        message: String,
        data: Option<serde_json::Value>,
    },

    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl Error {
    pub(crate) fn rule(step: Step, url: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Rule {
            step,
            url: url.into(),
            rule: rule.into(),
        }
    }

    /// Maps a reqwest error, telling time-outs apart from other transport failures.
    /// reqwest's own message is used without its URL part: URLs are named by us.
    pub(crate) fn from_reqwest(step: Step, url: &str, err: &reqwest::Error, secs: u64) -> Self {
        if err.is_timeout() {
            return Error::Timeout {
                step,
                url: url.to_string(),
                secs,
            };
        }
        Error::Transport {
            step,
            url: url.to_string(),
            message: crate::util::error_chain(err),
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
}

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
