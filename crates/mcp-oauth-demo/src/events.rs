//! What the demo servers, the headless browser and the client report, in the order it
//! happens: every producer sends into one unbounded channel ([`EventSink`]), a server
//! *before* it sends its response, so the receiver sees cause before effect.
//!
//! Events never carry a secret: tokens, codes and client secrets appear only as a short
//! prefix with their length ([`redact`]), and URLs go through [`redact_url`].

use serde_json::Value;
use tokio::sync::mpsc;

/// Which demo server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The demo MCP server (resource server).
    Mcp,
    /// The development authorization server.
    Auth,
}

/// One HTTP exchange as a demo server saw it.
#[derive(Debug, Clone)]
pub struct HttpEvent {
    pub side: Side,
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, redacted ([`redact_url`]); empty when there was none.
    pub query: String,
    pub status: u16,
    /// The first product of `User-Agent` (`mcp-oauth/0.1.0`, `node`, ...).
    pub user_agent: Option<String>,
    pub detail: Detail,
}

/// What a server adds to an [`HttpEvent`].
#[derive(Debug, Clone, Default)]
pub enum Detail {
    #[default]
    None,
    /// A request to the MCP endpoint (or any other path of the MCP server).
    Mcp(McpDetail),
    /// The authorization server metadata was served.
    AsMetadata,
    /// The JWKS was served.
    Jwks { kids: Vec<String> },
    /// A client was registered (RFC 7591).
    Registered(Registered),
    /// An authorization request was approved (302 to the client with code, state, iss).
    Authorized(Authorized),
    /// Tokens were issued.
    Token(TokenIssued),
    /// An OAuth error response (JSON at /register and /token, an error redirect or an
    /// error page at /authorize).
    OAuthError {
        error: String,
        description: String,
        /// For /authorize: whether the error went back to the client (redirect) or was
        /// shown to the user (the client or redirect URI could not be trusted).
        redirected: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub struct McpDetail {
    /// JSON-RPC methods of the body (several for a batch); `tools/call` carries the tool
    /// name as `tools/call whoami`.
    pub rpc: Vec<String>,
    /// The credentials presented, redacted (`Bearer eyJhbGciOi…(612 chars)`).
    pub credentials: Option<String>,
    /// The `WWW-Authenticate` field(s) of the response.
    pub www_authenticate: Vec<String>,
    /// `Mcp-Session-Id` of the request or the response, shortened.
    pub session: Option<String>,
    /// `Content-Type` of the response.
    pub content_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Registered {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Authorized {
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub resource: String,
    pub redirect_uri: String,
    /// The redirect, redacted.
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct TokenIssued {
    pub grant_type: String,
    pub client_id: String,
    /// The access token, redacted.
    pub access_token: String,
    /// The JWS algorithm and key id.
    pub alg: String,
    pub kid: String,
    pub audience: String,
    pub scope: String,
    pub expires_in: u64,
    /// The refresh token, redacted, when one was issued.
    pub refresh_token: Option<String>,
    /// For `refresh_token`: the presented one was retired (rotation).
    pub rotated: bool,
}

/// One entry of the client's discovery trace (`mcp_oauth::discovery::trace`), as it was
/// recorded.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryStep {
    pub what: String,
    pub url: String,
    /// 0 when no response came back.
    pub status: u16,
    /// `used`, `skipped`, `rejected`, `not tried` or `note`.
    pub verdict: String,
    pub detail: String,
}

/// The in-process browser.
#[derive(Debug, Clone)]
pub enum BrowserEvent {
    /// The client asked the browser to open this (redacted) URL.
    Open { url: String },
    /// The browser follows a redirect to this (redacted) URL.
    Follow { url: String },
    /// The browser stopped: the last status, or why it gave up.
    Done { url: String, outcome: String },
}

/// What the demo's client reports (results, not HTTP traffic).
#[derive(Debug, Clone)]
pub enum ClientEvent {
    Connected {
        protocol: Option<String>,
        server: Option<String>,
    },
    Tools(Vec<String>),
    ToolResult {
        name: String,
        arguments: Value,
        text: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone)]
pub enum Event {
    Http(Box<HttpEvent>),
    Discovery(DiscoveryStep),
    Browser(BrowserEvent),
    Client(ClientEvent),
}

/// The sending side of the event channel. Cloning is cheap; sending never blocks and
/// never fails (events sent after the receiver is gone are dropped).
#[derive(Debug, Clone, Default)]
pub struct EventSink {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl EventSink {
    /// A sink and its receiver.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventSink { tx: Some(tx) }, rx)
    }

    /// A sink that drops everything.
    pub fn none() -> EventSink {
        EventSink { tx: None }
    }

    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}

/// A secret as `first 10 characters…(N chars)`; short values are cut harder, so that
/// never more than a third of a value is shown.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = (n / 3).min(10);
    let head: String = secret.chars().take(keep).collect();
    format!("{head}…({n} chars)")
}

/// Query parameters whose values are secrets (or single-use credentials).
const SECRET_PARAMS: &[&str] = &[
    "code",
    "code_verifier",
    "access_token",
    "refresh_token",
    "client_secret",
    "id_token",
    "assertion",
    "client_assertion",
];

/// `url` (or a bare query string) with the values of secret parameters shortened to a
/// prefix ([`redact`]) and long opaque values (`state`, `code_challenge`) cut to 8
/// characters. Parameters stay in their order and stay percent-encoded.
pub fn redact_url(url: &str) -> String {
    let (head, query, fragment) = split_url(url);
    let Some(query) = query else {
        return url.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if SECRET_PARAMS.contains(&k) && !v.is_empty() {
                format!("{k}={}", redact(v))
            } else if matches!(k, "state" | "code_challenge" | "nonce") && v.len() > 12 {
                format!("{k}={}…", &v[..8])
            } else {
                pair.to_owned()
            }
        })
        .collect();
    let mut out = format!("{head}?{}", parts.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn split_url(url: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (url, None),
    };
    match rest.split_once('?') {
        Some((h, q)) => (h, Some(q), fragment),
        // A bare query string (no scheme, has `=`).
        None if !rest.contains("://") && rest.contains('=') => ("", Some(rest), fragment),
        None => (rest, None, fragment),
    }
}

/// `Authorization` field values, redacted: the scheme and a prefix of the credentials.
pub fn redact_credentials(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, cred)) => format!("{scheme} {}", redact(cred.trim())),
        None => redact(value),
    }
}

/// The first product token of a `User-Agent` value.
pub fn user_agent_product(value: &str) -> String {
    value.split_whitespace().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact("abcdefghijklmnopqrstuvwxyz0123456789"),
            "abcdefghij…(36 chars)"
        );
        assert_eq!(redact("abc"), "a…(3 chars)");
        assert_eq!(redact(""), "…(0 chars)");
        let u = redact_url(
            "http://127.0.0.1:1/callback?code=SECRETSECRETSECRETSECRET&state=0123456789abcdef&iss=http%3A%2F%2Fx",
        );
        assert_eq!(
            u,
            "http://127.0.0.1:1/callback?code=SECRETSE…(24 chars)&state=01234567…&iss=http%3A%2F%2Fx"
        );
        assert!(!u.contains("SECRETSECRET"));
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(
            redact_url("grant_type=refresh_token&refresh_token=RRRRRRRRRRRRRRRRRRRR"),
            "?grant_type=refresh_token&refresh_token=RRRRRR…(20 chars)"
        );
        assert_eq!(
            redact_credentials("Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig"),
            "Bearer eyJhbGciO…(28 chars)"
        );
        assert_eq!(user_agent_product("mcp-oauth/0.1.0 (x)"), "mcp-oauth/0.1.0");
    }
}
