//! [`McpClient`]: the lifecycles (stateful 2025 sessions, stateless 2026-07-28 requests,
//! and the choice between them) on top of the transport.

use super::RequestAuth;
use super::transport::{
    PostCtx, PostResult, Reply, RpcError, SESSION_HEADER, Transport, VERSION_HEADER,
};
use crate::error::{Error, Result, Step};
use crate::wire::headers::{self, ParamHeader};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

mod lifecycle;

const STEP: Step = Step::McpRequest;

use crate::wire::error_code::{HEADER_MISMATCH, MISSING_CAPABILITY, UNSUPPORTED_VERSION};
use crate::wire::{
    LATEST_STATEFUL_VERSION, META_CAPABILITIES, META_CLIENT_INFO, META_SERVER_INFO, META_VERSION,
    STATEFUL_VERSIONS, STATELESS_VERSION,
};

/// Pages of `tools/list` followed before giving up.
const MAX_PAGES: usize = 100;

/// Which lifecycle to speak.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Try the stateless 2026-07-28 lifecycle first (`server/discover`) and fall back to
    /// `initialize` when the server turns out to be a session-based one.
    #[default]
    Auto,
    /// The session-based lifecycle (`initialize`), offering this protocol version.
    Stateful(String),
    /// The stateless 2026-07-28 lifecycle: no handshake, metadata on every request.
    Stateless,
}

impl Protocol {
    /// A forced protocol version: `2026-07-28` means [`Protocol::Stateless`], anything
    /// else [`Protocol::Stateful`] with that version.
    pub fn for_version(version: &str) -> Self {
        if version == STATELESS_VERSION {
            Protocol::Stateless
        } else {
            Protocol::Stateful(version.to_string())
        }
    }
}

/// Options of an [`McpClient`].
#[derive(Clone)]
pub struct McpClientOptions {
    /// Which lifecycle to speak (by default [`Protocol::Auto`]: 2026-07-28 when the
    /// server speaks it, else a session).
    pub protocol: Protocol,
    /// `clientInfo.name`.
    pub client_name: String,
    /// `clientInfo.version`.
    pub client_version: String,
    /// Time allowed for one HTTP exchange, from sending the request to the end of the
    /// response (an SSE response included). Time spent in the authorization hook is not
    /// counted.
    pub request_timeout: Duration,
    /// Sent on every request; the protocol's own headers take precedence, and so does
    /// the `Authorization` header from the [`RequestAuth`] hook when it returns one.
    pub headers: HeaderMap,
    /// Largest response body read (an SSE stream counts as one body).
    pub max_response_bytes: usize,
    /// With [`Protocol::Stateless`], call `server/discover` on [`McpClient::connect`].
    /// ([`Protocol::Auto`] always does: it is how it tells the eras apart.)
    pub discover: bool,
}

impl Default for McpClientOptions {
    fn default() -> Self {
        Self {
            protocol: Protocol::Auto,
            client_name: env!("CARGO_PKG_NAME").to_string(),
            client_version: env!("CARGO_PKG_VERSION").to_string(),
            request_timeout: Duration::from_secs(60),
            headers: HeaderMap::new(),
            max_response_bytes: 16 * 1024 * 1024,
            discover: false,
        }
    }
}

/// Header values are left out: extra headers may carry credentials.
impl std::fmt::Debug for McpClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClientOptions")
            .field("protocol", &self.protocol)
            .field("client_name", &self.client_name)
            .field("client_version", &self.client_version)
            .field("request_timeout", &self.request_timeout)
            .field("headers", &crate::wire::header_names(&self.headers))
            .field("max_response_bytes", &self.max_response_bytes)
            .field("discover", &self.discover)
            .finish()
    }
}

#[derive(Debug, Clone)]
enum Era {
    Stateful {
        /// The version the server chose.
        version: String,
        /// The version we offered (offered again when the session has to be renewed).
        requested: String,
    },
    Stateless,
}

#[derive(Debug, Default)]
struct State {
    era: Option<Era>,
    session_id: Option<String>,
    server_capabilities: Option<Value>,
    server_info: Option<Value>,
    /// `x-mcp-header` annotations by tool name, from the last `tools/list` (stateless).
    tool_headers: HashMap<String, Vec<ParamHeader>>,
}

/// A small MCP client over Streamable HTTP.
///
/// All methods take `&self`; the client can be shared (`Arc<McpClient>`) between tasks.
/// [`request`](Self::request) and the helpers connect on first use.
pub struct McpClient {
    transport: Transport,
    options: McpClientOptions,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Serializes handshakes (connect, session renewal, close).
    connect_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for McpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClient")
            .field("url", &self.transport.url)
            .field("protocol", &self.options.protocol)
            .field("protocol_version", &self.protocol_version())
            .finish_non_exhaustive()
    }
}

impl McpClient {
    /// A client for the MCP endpoint `url` (used exactly as given).
    pub fn new(
        url: impl Into<String>,
        http: reqwest::Client,
        options: McpClientOptions,
        auth: Option<Arc<dyn RequestAuth>>,
    ) -> Self {
        let mut extra = options.headers.clone();
        for (name, value) in extra.iter_mut() {
            if name == http::header::AUTHORIZATION
                || name == http::header::PROXY_AUTHORIZATION
                || name == http::header::COOKIE
            {
                value.set_sensitive(true);
            }
        }
        let transport = Transport::new(
            url.into(),
            http,
            auth,
            extra,
            options.request_timeout,
            options.max_response_bytes,
        );
        Self {
            transport,
            options,
            next_id: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            connect_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The MCP endpoint.
    pub fn url(&self) -> &str {
        &self.transport.url
    }

    /// The protocol version in use: the negotiated one on a stateful connection,
    /// `2026-07-28` on a stateless one, `None` before [`connect`](Self::connect).
    pub fn protocol_version(&self) -> Option<String> {
        match &self.state().era {
            Some(Era::Stateful { version, .. }) => Some(version.clone()),
            Some(Era::Stateless) => Some(STATELESS_VERSION.to_string()),
            None => None,
        }
    }

    /// The server's capabilities, from `initialize` or `server/discover`.
    pub fn server_capabilities(&self) -> Option<Value> {
        self.state().server_capabilities.clone()
    }

    /// The server's self-description (`serverInfo`), when it sent one.
    pub fn server_info(&self) -> Option<Value> {
        self.state().server_info.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn is_stateless(&self) -> bool {
        matches!(self.state().era, Some(Era::Stateless))
    }

    /// Performs the lifecycle handshake, if not done yet: `initialize` +
    /// `notifications/initialized` for a stateful server; for a stateless one nothing,
    /// or `server/discover` (always with [`Protocol::Auto`], which uses it to tell the
    /// eras apart; with [`Protocol::Stateless`] when [`McpClientOptions::discover`]).
    pub async fn connect(&self) -> Result<()> {
        let _guard = self.connect_lock.lock().await;
        if self.state().era.is_some() {
            return Ok(());
        }
        match self.options.protocol.clone() {
            Protocol::Stateful(version) => self.initialize(&version).await,
            Protocol::Stateless => {
                if self.options.discover {
                    self.discover_forced().await
                } else {
                    self.state().era = Some(Era::Stateless);
                    Ok(())
                }
            }
            Protocol::Auto => self.probe().await,
        }
    }

    /// Sends a request and returns its `result`. A JSON-RPC error becomes
    /// [`Error::JsonRpc`].
    pub async fn request(&self, method: &str, params: Value) -> Result<Value> {
        match self.exchange(method, &params, true).await {
            // A stateless server says the `Mcp-Param-*` headers are wrong: the tool's
            // schema may have changed. Re-list the tools and try once more, as
            // streamable-http.md "Client Behavior" suggests.
            Err(Error::JsonRpc { code, .. })
                if code == HEADER_MISMATCH && method == "tools/call" && self.is_stateless() =>
            {
                tracing::debug!(url = %self.url(), "header mismatch on tools/call; refreshing the tool list");
                self.list_tools().await?;
                self.exchange(method, &params, true).await
            }
            other => other,
        }
        .map(|v| v.unwrap_or(Value::Null))
    }

    /// Sends a notification (expects `202 Accepted`).
    pub async fn notify(&self, method: &str, params: Value) -> Result<()> {
        self.exchange(method, &params, false).await.map(|_| ())
    }

    /// Every tool of the server, following `nextCursor` (at most 100 pages). On a
    /// stateless connection, tools whose `x-mcp-header` annotations are invalid are
    /// left out (with a warning), as streamable-http.md requires.
    pub async fn list_tools(&self) -> Result<Vec<Value>> {
        let mut tools = Vec::new();
        let mut annotations = HashMap::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let result = self
                .exchange("tools/list", &params, true)
                .await?
                .unwrap_or(Value::Null);
            let Some(page) = result.get("tools").and_then(Value::as_array) else {
                return Err(self.rule("the tools/list result has no `tools` array"));
            };
            let stateless = self.is_stateless();
            for tool in page {
                let name = tool.get("name").and_then(Value::as_str);
                if stateless {
                    match headers::tool_param_headers(tool) {
                        Ok(h) => {
                            if let Some(name) = name {
                                annotations.insert(name.to_string(), h);
                            }
                        }
                        Err(reason) => {
                            tracing::warn!(url = %self.url(), tool = ?name, %reason, "leaving out a tool with an invalid x-mcp-header annotation");
                            continue;
                        }
                    }
                }
                tools.push(tool.clone());
            }
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => {
                    if !seen.insert(c.to_string()) {
                        return Err(
                            self.rule("tools/list returned a nextCursor it had already returned")
                        );
                    }
                    cursor = Some(c.to_string());
                }
                _ => {
                    if stateless {
                        self.state().tool_headers = annotations;
                    }
                    return Ok(tools);
                }
            }
        }
        Err(self.rule(format!(
            "tools/list returned more than {MAX_PAGES} pages; giving up"
        )))
    }

    /// Calls a tool and returns the result object (`content`, `isError`, ...). A result
    /// with `isError: true` is returned as is; only protocol errors are errors.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value> {
        let mut params = json!({ "name": name });
        if !arguments.is_null() {
            params["arguments"] = arguments;
        }
        self.request("tools/call", params).await
    }

    /// Ends the connection: DELETE with the session id on a stateful server that gave
    /// one (a 405 or 404 answer is fine). The client can connect again afterwards.
    pub async fn close(&self) -> Result<()> {
        let _guard = self.connect_lock.lock().await;
        let old = std::mem::take(&mut *self.state());
        let (Some(Era::Stateful { version, .. }), Some(session)) = (old.era, old.session_id) else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, self.header_value(&session)?);
        headers.insert(VERSION_HEADER, self.header_value(&version)?);
        let (status, body) = self.transport.delete(&headers).await?;
        if (200..300).contains(&status) || status == 404 || status == 405 {
            Ok(())
        } else {
            Err(self.status_error(status, body))
        }
    }

    // ---------------------------------------------------------------------------------
    // Messages
    // ---------------------------------------------------------------------------------

    /// Sends one request (`expect_response`) or notification, connecting first if need
    /// be and renewing an expired session once.
    async fn exchange(
        &self,
        method: &str,
        params: &Value,
        expect_response: bool,
    ) -> Result<Option<Value>> {
        let mut renewed = false;
        for _ in 0..3 {
            let (era, session) = {
                let st = self.state();
                (st.era.clone(), st.session_id.clone())
            };
            let Some(era) = era else {
                self.connect().await?;
                continue;
            };
            let id = expect_response.then(|| self.next_id());
            let msg = self.build_message(&era, id, method, params)?;
            let headers = self.protocol_headers(&era, session.as_deref(), method, params)?;
            let stateful = matches!(era, Era::Stateful { .. });
            let ctx = PostCtx {
                headers: &headers,
                legacy_streams: stateful,
            };
            let res = self.transport.post(&ctx, body(&msg), id).await?;
            match (&res.reply, &session) {
                (Reply::Http { status: 404, .. }, Some(stale)) if stateful && !renewed => {
                    renewed = true;
                    self.reinitialize(stale).await?;
                    continue;
                }
                _ => return self.result_of(res.reply),
            }
        }
        Err(self.rule("could not establish a connection to send the request on"))
    }

    /// The `result` of a reply (`None` for an accepted notification); errors otherwise.
    fn result_of(&self, reply: Reply) -> Result<Option<Value>> {
        match reply {
            Reply::Accepted => Ok(None),
            Reply::Message(mut m) => {
                if let Some(e) = RpcError::from_response(&m) {
                    return Err(self.rpc_error(e, None));
                }
                match m.get_mut("result") {
                    Some(r) => Ok(Some(r.take())),
                    None => Err(self.rule(
                        "the JSON-RPC response has neither a result nor a valid error object",
                    )),
                }
            }
            Reply::Http {
                status,
                excerpt,
                rpc_error,
            } => match rpc_error {
                Some(e) => Err(self.rpc_error(e, Some(status))),
                None => Err(self.status_error(status, excerpt)),
            },
        }
    }

    /// The JSON-RPC message for `method`: with `_meta` on a stateless connection.
    fn build_message(
        &self,
        era: &Era,
        id: Option<u64>,
        method: &str,
        params: &Value,
    ) -> Result<Value> {
        let mut msg = Map::new();
        msg.insert("jsonrpc".into(), "2.0".into());
        if let Some(id) = id {
            msg.insert("id".into(), id.into());
        }
        msg.insert("method".into(), method.into());
        match era {
            Era::Stateful { .. } => {
                if !params.is_null() {
                    msg.insert("params".into(), params.clone());
                }
            }
            Era::Stateless => {
                let mut p = match params {
                    Value::Null => Map::new(),
                    Value::Object(m) => m.clone(),
                    _ => {
                        return Err(Error::config(format!(
                            "the params of an MCP {method} request must be a JSON object"
                        )));
                    }
                };
                let meta = p
                    .entry("_meta")
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(meta) = meta else {
                    return Err(Error::config(format!(
                        "params._meta of an MCP {method} request must be a JSON object"
                    )));
                };
                meta.insert(META_VERSION.into(), STATELESS_VERSION.into());
                meta.entry(META_CAPABILITIES).or_insert_with(|| json!({}));
                meta.entry(META_CLIENT_INFO)
                    .or_insert_with(|| self.client_info());
                msg.insert("params".into(), Value::Object(p));
            }
        }
        Ok(Value::Object(msg))
    }

    /// The protocol headers of a POST (Accept, Content-Type and Authorization are the
    /// transport's).
    fn protocol_headers(
        &self,
        era: &Era,
        session: Option<&str>,
        method: &str,
        params: &Value,
    ) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        match era {
            Era::Stateful { version, .. } => {
                if let Some(s) = session {
                    h.insert(SESSION_HEADER, self.header_value(s)?);
                }
                h.insert(VERSION_HEADER, self.header_value(version)?);
            }
            Era::Stateless => {
                h.insert(VERSION_HEADER, HeaderValue::from_static(STATELESS_VERSION));
                let m = HeaderValue::from_str(method).map_err(|_| {
                    Error::config(format!(
                        "the MCP method name {method:?} cannot be sent as a header value"
                    ))
                })?;
                h.insert("mcp-method", m);
                if let Some(name) = headers::mcp_name(method, params) {
                    h.insert("mcp-name", headers::encode_header_value(name));
                }
                if method == "tools/call"
                    && let Some(tool) = params.get("name").and_then(Value::as_str)
                {
                    let arguments = params.get("arguments").unwrap_or(&Value::Null);
                    let st = self.state();
                    for ph in st.tool_headers.get(tool).into_iter().flatten() {
                        if let Some(v) = headers::param_value(arguments, &ph.path) {
                            h.insert(ph.name.clone(), v);
                        }
                    }
                }
            }
        }
        Ok(h)
    }

    fn client_info(&self) -> Value {
        json!({
            "name": self.options.client_name,
            "version": self.options.client_version,
        })
    }

    fn header_value(&self, s: &str) -> Result<HeaderValue> {
        HeaderValue::from_str(s).map_err(|_| {
            self.rule(format!(
                "{:?} cannot be sent as a header value",
                crate::wire::excerpt(s, 60)
            ))
        })
    }

    fn rule(&self, rule: impl Into<String>) -> Error {
        Error::rule(STEP, self.url(), rule)
    }

    /// An HTTP error status without a JSON-RPC error in the body.
    fn status_error(&self, status: u16, body_excerpt: String) -> Error {
        Error::Status {
            step: STEP,
            url: self.url().to_string(),
            status,
            body_excerpt,
        }
    }

    fn rpc_error(&self, e: RpcError, status: Option<u16>) -> Error {
        let context = match status {
            Some(s) if s != 200 => format!("HTTP {s} from {}", self.url()),
            _ => format!("from {}", self.url()),
        };
        Error::JsonRpc {
            code: e.code,
            message: if e.message.is_empty() {
                format!("({context})")
            } else {
                format!("{} ({context})", e.message)
            },
            data: e.data,
        }
    }
}

/// The text of a tool result: the `text` of every `type: "text"` content item, joined
/// with newlines.
pub fn text_content(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn body(msg: &Value) -> Bytes {
    Bytes::from(msg.to_string())
}

fn supported_versions(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn list_versions(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.iter()
            .take(10)
            .map(|s| crate::wire::excerpt(s, 40))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
