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
//! Not bridged: change notifications (`subscriptions/listen`; the capabilities given to
//! the client say `listChanged: false`, and `resources/subscribe` is refused) and
//! Multi Round-Trip Requests (an `input_required` result becomes an error that says so).

use super::message::{
    Envelope, INTERNAL_ERROR, INVALID_REQUEST, META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL,
    META_SERVER_INFO, META_VERSION, METHOD_NOT_FOUND, error_response, error_response_with,
    result_response,
};
use super::relay::{Conn, Mode, Relay, ReplyCtx};
use crate::mcp::{LATEST_STATEFUL_VERSION, STATEFUL_VERSIONS, STATELESS_VERSION};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// What the legacy client declared in its `initialize`.
#[derive(Debug)]
pub(crate) struct Bridge {
    capabilities: Value,
    client_info: Value,
    log_level: Mutex<Option<Value>>,
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

/// The capabilities a legacy client is told about: what the bridge cannot deliver is
/// switched off.
fn legacy_capabilities(caps: Option<&Value>) -> Value {
    let mut caps = caps.cloned().unwrap_or_else(|| json!({}));
    if let Some(obj) = caps.as_object_mut() {
        for key in ["tools", "prompts", "resources"] {
            if let Some(Value::Object(c)) = obj.get_mut(key) {
                if c.contains_key("listChanged") {
                    c.insert("listChanged".into(), Value::Bool(false));
                }
                if key == "resources" && c.contains_key("subscribe") {
                    c.insert("subscribe".into(), Value::Bool(false));
                }
            }
        }
    }
    caps
}

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
            Err(e) => return e.to_response(Some(id), self.url()),
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
        conn.mode = Mode::Bridged(bridge);
        tracing::info!(url = %self.url(), version, "bridging a {version} client to a {STATELESS_VERSION} server");
        result_response(id, out)
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
        let msg = self.stateless_request(body, &env, STATELESS_VERSION).await;
        if contains(&msg, b"\"input_required\"")
            && serde_json::from_slice::<Value>(&msg)
                .ok()
                .and_then(|v| {
                    v.pointer("/result/resultType")
                        .and_then(Value::as_str)
                        .map(|s| s == "input_required")
                })
                .unwrap_or(false)
        {
            tracing::warn!(
                method = env.method(),
                "the server asked for client input (MRTR), which the bridge cannot relay to a legacy client"
            );
            return error_response(
                Some(id),
                INTERNAL_ERROR,
                "mcp-oauth proxy: the 2026-07-28 server needs input from the client (an \
                 input_required result); bridging that to a legacy client is not supported",
                None,
            );
        }
        msg
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
    fn capabilities_drop_what_is_not_bridged() {
        let c = legacy_capabilities(Some(&json!({
            "tools": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "extensions": {"io.modelcontextprotocol/ui": {}}
        })));
        assert_eq!(c["tools"]["listChanged"], false);
        assert_eq!(c["resources"]["subscribe"], false);
        assert_eq!(c["logging"], json!({}));
        assert_eq!(c["extensions"]["io.modelcontextprotocol/ui"], json!({}));
    }
}
