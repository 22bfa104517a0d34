//! Era bridging: a legacy client (it speaks the `initialize` handshake, 2025-11-25 and
//! earlier) in front of a server that speaks only 2026-07-28.
//!
//! - `initialize` is answered from `server/discover`: the client gets an
//!   `InitializeResult` with the version it asked for (when the proxy knows it), the
//!   server's capabilities, `serverInfo` and `instructions`.
//! - Every later request gets the per-request `_meta` stamped in (protocol version, the
//!   client's capabilities and `clientInfo` from its `initialize`, and the log level it
//!   set) and goes out on the stateless wire with the request metadata headers.
//! - What 2026-07-28 removed is answered by the proxy: `ping` (an empty result),
//!   `logging/setLevel` (remembered, sent as `io.modelcontextprotocol/logLevel`);
//!   `notifications/initialized` and `notifications/roots/list_changed` are dropped;
//!   `notifications/cancelled` closes the request's response stream.
//!
//! - Multi Round-Trip Requests: an `input_required` result's input requests
//!   (`elicitation/create`, `sampling/createMessage`, `roots/list`) are sent to the client
//!   as server-initiated requests under the proxy's ids; its results go back on a retry of
//!   the original request (a new id, `inputResponses`, `requestState` echoed unchanged),
//!   and the final reply reaches the client under the id of its own request.
//!
//! - Change notifications: after the client's `notifications/initialized`, the proxy keeps
//!   a `subscriptions/listen` stream open for the list changes the server offers and
//!   relays `notifications/*/list_changed` (reopening a stream that ends, and then telling
//!   the client to re-list, since changes in between were not seen).
//!
//! Not bridged: resource subscriptions (`resources/subscribe` is refused and the
//! capabilities given to the client say `subscribe: false`).

use super::message::{
    Envelope, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, META_CAPABILITIES, META_CLIENT_INFO,
    META_LOG_LEVEL, META_SERVER_INFO, META_VERSION, METHOD_NOT_FOUND, error_response,
    error_response_with, result_response,
};
use super::relay::{Conn, Mode, Relay, ReplyCtx};
use bytes::Bytes;
use mcp_oauth::wire::{LATEST_STATEFUL_VERSION, STATEFUL_VERSIONS, STATELESS_VERSION};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What the legacy client declared in its `initialize`.
#[derive(Debug)]
pub(crate) struct Bridge {
    capabilities: Value,
    client_info: Value,
    log_level: Mutex<Option<Value>>,
    /// The `subscriptions/listen` filter for the change notifications the server offers
    /// (`toolsListChanged`, ...); empty when it offers none.
    changes: OnceLock<Map<String, Value>>,
    /// Whether the change listener was started (once, at `notifications/initialized`).
    listening: AtomicBool,
}

impl Bridge {
    fn meta(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(META_VERSION.into(), STATELESS_VERSION.into());
        m.insert(META_CAPABILITIES.into(), self.capabilities.clone());
        m.insert(META_CLIENT_INFO.into(), self.client_info.clone());
        if let Some(level) = self
            .log_level
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            m.insert(META_LOG_LEVEL.into(), level);
        }
        m
    }

    /// The request with the 2026-07-28 `_meta` stamped in (members the client set itself
    /// are kept, except the protocol version).
    fn stamp(&self, bytes: &[u8]) -> Result<Bytes, String> {
        let mut v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let obj = v.as_object_mut().ok_or("not a JSON object")?;
        let params = obj
            .entry("params")
            .or_insert_with(|| Value::Object(Map::new()));
        if params.is_null() {
            *params = Value::Object(Map::new());
        }
        let params = params
            .as_object_mut()
            .ok_or("params must be a JSON object to be sent to a 2026-07-28 server")?;
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        let meta = meta
            .as_object_mut()
            .ok_or("params._meta must be a JSON object")?;
        for (k, val) in self.meta() {
            if k == META_VERSION {
                meta.insert(k, val);
            } else {
                meta.entry(k).or_insert(val);
            }
        }
        Ok(Bytes::from(v.to_string()))
    }

    /// A notification from the client: nothing 2026-07-28 has a use for over HTTP.
    pub(crate) fn client_notification(&self, env: &Envelope) {
        tracing::debug!(
            method = env.method(),
            "bridged: not forwarding a client notification to the 2026-07-28 server"
        );
    }
}

/// The capabilities a legacy client is told about: what the bridge cannot deliver
/// (resource subscriptions) is switched off.
fn legacy_capabilities(caps: Option<&Value>) -> Value {
    let mut caps = caps.cloned().unwrap_or_else(|| json!({}));
    if let Some(Value::Object(c)) = caps.get_mut("resources")
        && c.contains_key("subscribe")
    {
        c.insert("subscribe".into(), Value::Bool(false));
    }
    caps
}

/// The change notifications to listen for: those the server's capabilities offer.
fn change_filter(caps: Option<&Value>) -> Map<String, Value> {
    let mut filter = Map::new();
    for (capability, key) in [
        ("tools", "toolsListChanged"),
        ("prompts", "promptsListChanged"),
        ("resources", "resourcesListChanged"),
    ] {
        let offered = caps
            .and_then(|c| c.get(capability))
            .and_then(|c| c.get("listChanged"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if offered {
            filter.insert(key.into(), Value::Bool(true));
        }
    }
    filter
}

/// The legacy notification for each kind of change in a `subscriptions/listen` filter.
fn change_notifications(filter: &Map<String, Value>) -> impl Iterator<Item = &'static str> + '_ {
    [
        ("toolsListChanged", "notifications/tools/list_changed"),
        ("promptsListChanged", "notifications/prompts/list_changed"),
        (
            "resourcesListChanged",
            "notifications/resources/list_changed",
        ),
    ]
    .into_iter()
    .filter(|(key, _)| filter.contains_key(*key))
    .map(|(_, method)| method)
}

/// Waits before listening again after a stream ended: doubling from 1 s to 30 s, back
/// to 1 s after a stream that lasted a minute.
/// (Milliseconds in the unit tests, so that reopening and giving up are quick to see.)
const LISTEN_RETRY_MIN: Duration = if cfg!(test) {
    Duration::from_millis(10)
} else {
    Duration::from_secs(1)
};
const LISTEN_RETRY_MAX: Duration = if cfg!(test) {
    Duration::from_millis(80)
} else {
    Duration::from_secs(30)
};
const LISTEN_HEALTHY: Duration = Duration::from_secs(60);
/// A listen stream open this long counts as established even without an acknowledgement.
const LISTEN_ESTABLISHED: Duration = Duration::from_secs(10);
/// Consecutive streams that end before being established, after which the proxy stops.
const LISTEN_MAX_FAILURES: u32 = 5;

impl Relay {
    /// Answers the client's `initialize` from `server/discover`.
    pub(crate) async fn bridge_initialize(
        self: &Arc<Self>,
        conn: &mut Conn,
        init: &Bytes,
        id: &Value,
    ) -> Bytes {
        let init: Value = serde_json::from_slice(init).unwrap_or(Value::Null);
        let params = init.get("params");
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or(LATEST_STATEFUL_VERSION);
        let bridge = Arc::new(Bridge {
            capabilities: params
                .and_then(|p| p.get("capabilities"))
                .cloned()
                .unwrap_or_else(|| json!({})),
            client_info: params
                .and_then(|p| p.get("clientInfo"))
                .cloned()
                .unwrap_or_else(
                    || json!({"name": "mcp-oauth-proxy", "version": env!("CARGO_PKG_VERSION")}),
                ),
            log_level: Mutex::new(None),
            changes: OnceLock::new(),
            listening: AtomicBool::new(false),
        });
        let disc_id = self.next_internal_id();
        let body = json!({
            "jsonrpc": "2.0",
            "id": disc_id,
            "method": "server/discover",
            "params": {"_meta": bridge.meta()},
        });
        let env = Envelope {
            id: Some(disc_id.clone()),
            method: Some("server/discover".into()),
            version: Some(STATELESS_VERSION.into()),
            ..Default::default()
        };
        let headers = match self.stateless_headers(&env, STATELESS_VERSION, &[]) {
            Ok(h) => h,
            Err(m) => return error_response(Some(id), INTERNAL_ERROR, &m, None),
        };
        let reply = match self
            .up
            .post(self.url(), headers, Bytes::from(body.to_string()))
            .await
        {
            Ok(resp) => self.read_reply(resp, &disc_id, &ReplyCtx::default()).await,
            Err(e) => Err(e.into()),
        };
        let msg: Value = match reply {
            Ok(m) => serde_json::from_slice(&m).unwrap_or(Value::Null),
            Err(e) => return e.to_response(Some(id), self.url(), self.opts.error_words),
        };
        if let Some(err) = msg.get("error") {
            return error_response_with(Some(id), err.clone());
        }
        let result = msg.get("result").cloned().unwrap_or(Value::Null);
        let supported: Vec<&str> = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !supported.is_empty() && !supported.contains(&STATELESS_VERSION) {
            return error_response(
                Some(id),
                INTERNAL_ERROR,
                &format!(
                    "mcp-oauth proxy: the server supports protocol versions {}; the proxy \
                     bridges only to {STATELESS_VERSION}",
                    supported.join(", ")
                ),
                None,
            );
        }
        let version = if STATEFUL_VERSIONS.contains(&requested) {
            requested
        } else {
            LATEST_STATEFUL_VERSION
        };
        let mut out = json!({
            "protocolVersion": version,
            "capabilities": legacy_capabilities(result.get("capabilities")),
            "serverInfo": result
                .pointer(&format!("/_meta/{}", META_SERVER_INFO.replace('/', "~1")))
                .cloned()
                .unwrap_or_else(|| json!({"name": "unknown", "version": "0"})),
        });
        if let Some(i) = result.get("instructions") {
            out["instructions"] = i.clone();
        }
        let _ = bridge
            .changes
            .set(change_filter(result.get("capabilities")));
        conn.mode = Mode::Bridged(bridge);
        tracing::info!(url = %self.url(), version, "bridging a {version} client to a {STATELESS_VERSION} server");
        result_response(id, out)
    }

    /// A notification from the bridged client. `notifications/initialized` starts the
    /// change listener; the rest has no use on the 2026-07-28 wire.
    pub(crate) fn bridged_notification(self: &Arc<Self>, bridge: &Arc<Bridge>, env: &Envelope) {
        let filter = bridge.changes.get().filter(|f| !f.is_empty());
        if env.method() == "notifications/initialized"
            && let Some(filter) = filter
            && !bridge.listening.swap(true, Ordering::SeqCst)
        {
            let (me, bridge, filter) = (self.clone(), bridge.clone(), filter.clone());
            self.spawn_background(async move { me.listen_for_changes(bridge, filter).await });
            return;
        }
        bridge.client_notification(env);
    }

    /// Keeps a `subscriptions/listen` stream open for the bridged client: the server's
    /// list-changed notifications are relayed to it (the acknowledgement is not: the
    /// subscription is the proxy's). A stream that ends is opened again after a pause,
    /// and the client is told that the lists may have changed meanwhile.
    async fn listen_for_changes(self: Arc<Self>, bridge: Arc<Bridge>, filter: Map<String, Value>) {
        self.hide_acknowledgements();
        let mut wait = LISTEN_RETRY_MIN;
        let mut failures = 0;
        let mut missed = false;
        loop {
            if missed {
                // Changes while no stream was open were not seen: the client re-lists.
                for method in change_notifications(&filter) {
                    let note = json!({"jsonrpc": "2.0", "method": method});
                    self.send_out(Bytes::from(note.to_string())).await;
                }
            }
            let acks = self.acknowledgements();
            let opened = Instant::now();
            let error = match self.listen_once(&bridge, &filter).await {
                Ok(error) => error,
                Err(m) => {
                    tracing::warn!("cannot listen for change notifications: {m}");
                    return;
                }
            };
            let code = error
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(Value::as_i64);
            if matches!(code, Some(METHOD_NOT_FOUND | INVALID_PARAMS)) {
                tracing::warn!(error = %error.unwrap_or_default(), "the server refused subscriptions/listen; change notifications are not bridged");
                return;
            }
            // A stream counts as established when the server acknowledged it or it stayed
            // open a while; a server that keeps failing is given up on (and the client is
            // not told to re-list every time).
            let lasted = opened.elapsed();
            let established = self.acknowledgements() != acks || lasted >= LISTEN_ESTABLISHED;
            if established {
                failures = 0;
            } else {
                failures += 1;
                if failures >= LISTEN_MAX_FAILURES {
                    tracing::warn!(error = %error.as_ref().map_or_else(|| "none".to_string(), |e| e.to_string()), failures, "subscriptions/listen keeps failing; change notifications are no longer bridged");
                    return;
                }
            }
            if lasted >= LISTEN_HEALTHY {
                wait = LISTEN_RETRY_MIN;
            }
            tracing::debug!(?wait, error = %error.as_ref().map_or_else(|| "none".to_string(), |e| e.to_string()), "the change notification stream ended; listening again");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(LISTEN_RETRY_MAX);
            missed = established;
        }
    }

    /// One `subscriptions/listen` stream, until it ends: the error it ended with, if any.
    async fn listen_once(
        self: &Arc<Self>,
        bridge: &Bridge,
        filter: &Map<String, Value>,
    ) -> Result<Option<Value>, String> {
        let id = self.next_internal_id();
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": {"notifications": filter}});
        let body = bridge.stamp(request.to_string().as_bytes())?;
        let env = Envelope {
            id: Some(id),
            method: Some("subscriptions/listen".into()),
            version: Some(STATELESS_VERSION.into()),
            ..Default::default()
        };
        let reply = self.stateless_request(body, &env, STATELESS_VERSION).await;
        Ok(serde_json::from_slice::<Value>(&reply)
            .ok()
            .and_then(|v| v.get("error").cloned()))
    }

    /// A request of the bridged client.
    pub(crate) async fn bridged_request(
        self: &Arc<Self>,
        bytes: Bytes,
        env: &Envelope,
        bridge: Arc<Bridge>,
    ) -> Bytes {
        let id = env.id.as_ref().unwrap_or(&Value::Null);
        match env.method() {
            "ping" => return result_response(id, json!({})),
            "logging/setLevel" => {
                let level = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.pointer("/params/level").cloned());
                *bridge.log_level.lock().unwrap_or_else(|e| e.into_inner()) = level;
                return result_response(id, json!({}));
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                return error_response(
                    Some(id),
                    METHOD_NOT_FOUND,
                    "Method not found: resource subscriptions are not bridged to a 2026-07-28 server",
                    None,
                );
            }
            _ => {}
        }
        let body = match bridge.stamp(&bytes) {
            Ok(b) => b,
            Err(m) => {
                return error_response(
                    Some(id),
                    INVALID_REQUEST,
                    &format!("Invalid Request: {m}"),
                    None,
                );
            }
        };
        let mut env = env.clone();
        env.version = Some(STATELESS_VERSION.into());
        let mut msg = self
            .stateless_request(body.clone(), &env, STATELESS_VERSION)
            .await;
        // Multi Round-Trip Requests: the server's input requests go to the client as the
        // server-initiated requests it knows, and the request is retried with its answers.
        let mut rounds = 0;
        while let Some(input) = InputRequired::from_reply(&msg) {
            if rounds == MAX_INPUT_ROUNDS {
                tracing::warn!(
                    method = env.method(),
                    rounds,
                    "the server keeps asking for input; giving up"
                );
                return error_response(
                    Some(id),
                    INTERNAL_ERROR,
                    &format!(
                        "mcp-oauth proxy: the server still needed input after {MAX_INPUT_ROUNDS} \
                         rounds of input requests"
                    ),
                    None,
                );
            }
            rounds += 1;
            tracing::debug!(
                method = env.method(),
                requests = input.requests.len(),
                rounds,
                "the server asked for client input (MRTR); relaying it to the client"
            );
            let responses = match self.gather_input(&input).await {
                Ok(r) => r,
                Err(m) => return error_response(Some(id), INTERNAL_ERROR, &m, None),
            };
            // A retry is a new request (a new id, MRTR client requirements).
            let retry_id = self.next_internal_id();
            let retry = match retry_body(&body, &retry_id, responses, input.state) {
                Ok(b) => b,
                Err(m) => return error_response(Some(id), INTERNAL_ERROR, &m, None),
            };
            env.id = Some(retry_id);
            let reply = self.stateless_request(retry, &env, STATELESS_VERSION).await;
            msg = with_id(&reply, id);
        }
        msg
    }

    /// Sends each input request to the client and collects its results, keyed as the
    /// server keyed the requests. An error answer (the user declined, the client cannot
    /// sample) fails the original request with that error's message.
    async fn gather_input(&self, input: &InputRequired) -> Result<Map<String, Value>, String> {
        let asks = input.requests.iter().map(|(key, req)| async move {
            // The client (a user, perhaps) answering is not the server being silent.
            let answer =
                super::deadline::stopped(self.ask_client(&req.method, req.params.as_ref())).await;
            (key, &req.method, answer)
        });
        let mut responses = Map::new();
        let mut failure = None;
        // All are awaited even after a failure: the client answers each of them.
        for (key, method, answer) in futures_util::future::join_all(asks).await {
            let answer = answer.and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            match answer.as_ref().and_then(|a| a.get("result")) {
                Some(result) => {
                    responses.insert(key.clone(), result.clone());
                }
                None => {
                    let why = answer
                        .as_ref()
                        .and_then(|a| a.pointer("/error/message"))
                        .and_then(Value::as_str)
                        .unwrap_or("no answer")
                        .to_string();
                    failure.get_or_insert(format!(
                        "mcp-oauth proxy: the server needed input ({method}, \"{key}\") and the \
                         client answered with an error: {why}"
                    ));
                }
            }
        }
        match failure {
            Some(m) => Err(m),
            None => Ok(responses),
        }
    }
}

/// Input-request rounds for one request before the proxy gives up.
const MAX_INPUT_ROUNDS: usize = 16;

/// One request of an `InputRequiredResult`.
#[derive(Debug, PartialEq)]
struct InputRequest {
    method: String,
    params: Option<Value>,
}

/// An `input_required` result (2026-07-28 Multi Round-Trip Requests).
#[derive(Debug, PartialEq)]
struct InputRequired {
    requests: Vec<(String, InputRequest)>,
    /// `requestState`, echoed on the retry exactly as received.
    state: Option<Value>,
}

impl InputRequired {
    /// The `input_required` result in a reply, if it is one. Requests without a string
    /// `method` are skipped (there is nothing to ask the client).
    fn from_reply(msg: &[u8]) -> Option<InputRequired> {
        if !contains(msg, b"\"input_required\"") {
            return None;
        }
        let v: Value = serde_json::from_slice(msg).ok()?;
        let result = v.get("result")?;
        if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
            return None;
        }
        let requests = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(key, r)| {
                let method = r.get("method")?.as_str()?.to_string();
                let params = r.get("params").cloned();
                Some((key.clone(), InputRequest { method, params }))
            })
            .collect();
        Some(InputRequired {
            requests,
            state: result.get("requestState").cloned(),
        })
    }
}

/// The original (stamped) request with a new `id`, `params.inputResponses` and
/// `params.requestState` (removed when the server sent none).
fn retry_body(
    body: &[u8],
    id: &Value,
    responses: Map<String, Value>,
    state: Option<Value>,
) -> Result<Bytes, String> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object_mut().ok_or("not a JSON object")?;
    obj.insert("id".into(), id.clone());
    let params = obj
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("params is not an object")?;
    params.insert("inputResponses".into(), Value::Object(responses));
    match state {
        Some(s) => params.insert("requestState".into(), s),
        None => params.remove("requestState"),
    };
    Ok(Bytes::from(v.to_string()))
}

/// `msg` (a response) with its `id` replaced by `id`: the client gets the answer to a
/// retry under the id of its own request.
fn with_id(msg: &[u8], id: &Value) -> Bytes {
    match serde_json::from_slice::<Value>(msg) {
        Ok(mut v) if v.is_object() => {
            v["id"] = id.clone();
            Bytes::from(v.to_string())
        }
        _ => Bytes::copy_from_slice(msg),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_keeps_the_clients_members() {
        let b = Bridge {
            capabilities: json!({"roots": {}}),
            client_info: json!({"name": "host", "version": "1"}),
            log_level: Mutex::new(Some(json!("debug"))),
            changes: OnceLock::new(),
            listening: AtomicBool::new(false),
        };
        let out = b
            .stamp(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":5,"io.modelcontextprotocol/clientInfo":{"name":"own"}}}}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let meta = &v["params"]["_meta"];
        assert_eq!(meta[META_VERSION], "2026-07-28");
        assert_eq!(meta["progressToken"], 5);
        assert_eq!(meta[META_CLIENT_INFO]["name"], "own");
        assert_eq!(meta[META_CAPABILITIES], json!({"roots": {}}));
        assert_eq!(meta[META_LOG_LEVEL], "debug");
        assert_eq!(v["params"]["name"], "x");
        let out = b
            .stamp(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["params"]["_meta"][META_VERSION], "2026-07-28");
        assert!(b.stamp(br#"{"id":1,"method":"x","params":[1]}"#).is_err());
    }

    #[test]
    fn input_required_results_are_read_and_retries_carry_the_answers() {
        let reply = br#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list"},"b":{"method":"elicitation/create","params":{"message":"?"}},"bad":{"params":{}}},"requestState":"s"}}"#;
        let input = InputRequired::from_reply(reply).unwrap();
        let keys: Vec<&str> = input.requests.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"], "a request without a method is skipped");
        assert_eq!(input.requests[0].1.params, None);
        assert_eq!(input.requests[1].1.params, Some(json!({"message": "?"})));
        assert_eq!(input.state, Some(json!("s")));
        // Complete results, errors and the word in a string are not input requests.
        for msg in [
            &br#"{"jsonrpc":"2.0","id":3,"result":{"resultType":"complete","content":[{"type":"text","text":"\"input_required\""}]}}"#[..],
            br#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"\"input_required\""}}"#,
            b"not json \"input_required\"",
        ] {
            assert_eq!(InputRequired::from_reply(msg), None);
        }

        let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","requestState":"stale"}}"#;
        let answers = Map::from_iter([("a".to_string(), json!({"roots": []}))]);
        let retry = retry_body(body, &json!("r-1"), answers.clone(), None).unwrap();
        let v: Value = serde_json::from_slice(&retry).unwrap();
        assert_eq!(v["id"], "r-1");
        assert_eq!(v["params"]["name"], "x");
        assert_eq!(v["params"]["inputResponses"]["a"], json!({"roots": []}));
        assert!(
            v["params"].get("requestState").is_none(),
            "no state sent when none was given"
        );
        let retry = retry_body(
            br#"{"jsonrpc":"2.0","id":3,"method":"prompts/get"}"#,
            &json!(9),
            answers,
            Some(json!("s2")),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&retry).unwrap();
        assert_eq!(v["params"]["requestState"], "s2");

        let r = with_id(br#"{"jsonrpc":"2.0","id":"r-1","result":{}}"#, &json!(3));
        assert_eq!(serde_json::from_slice::<Value>(&r).unwrap()["id"], 3);
    }

    #[test]
    fn capabilities_drop_what_is_not_bridged_and_list_changes_are_listened_for() {
        let server = json!({
            "tools": {"listChanged": true},
            "prompts": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "extensions": {"io.modelcontextprotocol/ui": {}}
        });
        let c = legacy_capabilities(Some(&server));
        assert_eq!(c["tools"]["listChanged"], true);
        assert_eq!(c["resources"]["listChanged"], true);
        assert_eq!(c["resources"]["subscribe"], false);
        assert_eq!(c["logging"], json!({}));
        assert_eq!(c["extensions"]["io.modelcontextprotocol/ui"], json!({}));
        let filter = change_filter(Some(&server));
        assert_eq!(
            Value::Object(filter.clone()),
            json!({"toolsListChanged": true, "resourcesListChanged": true})
        );
        let methods: Vec<&str> = change_notifications(&filter).collect();
        assert_eq!(
            methods,
            [
                "notifications/tools/list_changed",
                "notifications/resources/list_changed"
            ]
        );
        assert!(change_filter(Some(&json!({"tools": {}}))).is_empty());
        assert!(change_filter(None).is_empty());
    }
}
