//! The unauthenticated requests to the MCP endpoint, and what their answers say.

use crate::challenge;
use crate::http::HttpClient;
use serde::Serialize;
use std::time::Duration;

/// One unauthenticated request to the MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// `POST initialize` or `GET`.
    pub request: String,
    /// The URL requested: the MCP server URL as configured.
    pub url: String,
    /// The HTTP status of the answer; absent when there was none (`error` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Every `WWW-Authenticate` field value, as received.
    pub www_authenticate: Vec<String>,
    /// The media type of the answer (`text/html`, `application/json`, …), lower case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Why there was no answer (unreachable, timed out after [`PROBE_TIMEOUT`], …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an unauthenticated MCP request's answer says about the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer at all (the probe's `error` says why).
    Nothing,
    /// 401, or 403 with a challenge: the server asks for authorization.
    Challenge,
    /// A 2xx MCP answer (JSON or an event stream): the server needs no token.
    Open,
    /// Not an MCP server: what it returned instead ("an HTML page").
    NotMcp(String),
    /// Another status (404, 405, a 403 without a challenge, …): discovery may still tell.
    Other,
}

impl Probe {
    pub(super) fn bearer(&self) -> Option<challenge::BearerChallenge> {
        let (c, _) = challenge::parse_challenges_lenient(&self.www_authenticate);
        challenge::bearer(&c)
    }

    /// What the answer says about the URL. A challenge wins over the body (gateways send
    /// HTML 401 pages); an HTML page is never an MCP answer, whatever its status.
    pub fn answer(&self) -> Answer {
        let Some(status) = self.status else {
            return Answer::Nothing;
        };
        if status == 401 || (status == 403 && !self.www_authenticate.is_empty()) {
            return Answer::Challenge;
        }
        let media = self.content_type.as_deref().unwrap_or_default();
        if media == "text/html" || media == "application/xhtml+xml" {
            return Answer::NotMcp("an HTML page".into());
        }
        if (200..300).contains(&status) {
            return match media {
                "application/json" | "text/event-stream" => Answer::Open,
                "" => Answer::Other,
                other => Answer::NotMcp(format!("{} content", crate::util::excerpt(other, 60))),
            };
        }
        Answer::Other
    }

    /// The answer in words, for [`Answer::Open`] and [`Answer::NotMcp`].
    pub fn answer_in_words(&self) -> Option<String> {
        let url = &self.url;
        match self.answer() {
            Answer::Open => Some(format!(
                "{url} did not ask for authorization (it answered the MCP request without a token)"
            )),
            Answer::NotMcp(what) => Some(format!(
                "{url} does not answer as an MCP server (it returned {what}, HTTP {}, to an MCP \
                 request)",
                self.status.unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

/// How long each unauthenticated request of [`probe`] may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The unauthenticated requests: `POST initialize` (what a client sends first, and the
/// only way to see a challenge that only POST gets) and `GET` (what some clients probe
/// with). Also used by `mcp-oauth login` to collect the challenge.
pub async fn probe(http: &HttpClient, url: &str, post: bool) -> Probe {
    let req = if post {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": crate::wire::LATEST_STATEFUL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-oauth", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        http.reqwest()
            .post(url)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .json(&body)
    } else {
        http.reqwest()
            .get(url)
            .header(http::header::ACCEPT, "text/event-stream")
    };
    let name = if post { "POST initialize" } else { "GET" };
    // Only the status and headers matter; a 200 may be an endless event stream.
    match req.timeout(PROBE_TIMEOUT).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty());
            let www_authenticate = resp
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            // A server that needs no authorization may have opened a session: end it.
            if let Some(sid) = resp.headers().get("mcp-session-id").cloned()
                && (200..300).contains(&status)
            {
                drop(resp);
                let _ = http
                    .reqwest()
                    .delete(url)
                    .header("mcp-session-id", sid)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
            Probe {
                request: name.into(),
                url: url.into(),
                status: Some(status),
                www_authenticate,
                content_type,
                error: None,
            }
        }
        Err(e) => Probe {
            request: name.into(),
            url: url.into(),
            status: None,
            www_authenticate: Vec::new(),
            content_type: None,
            error: Some(
                crate::error::Error::from_reqwest(
                    crate::error::Step::McpRequest,
                    url,
                    &e,
                    PROBE_TIMEOUT.as_secs(),
                )
                .to_string(),
            ),
        },
    }
}
