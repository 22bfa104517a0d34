//! The stateless (2026-07-28) wire: requests carry their protocol version and the
//! request metadata headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` from the tools'
//! `x-mcp-header` annotations, which are learned from `tools/list` and refreshed on a
//! header mismatch); no session.

use super::{Relay, ReplyCtx, ReplyError, lock};
use crate::message::{Envelope, HEADER_MISMATCH, INVALID_REQUEST, error_response};
use crate::upstream::VERSION_HEADER;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use mcp_oauth::wire::headers;
use serde_json::Value;
use std::sync::Arc;

impl Relay {
    /// A request on the stateless (2026-07-28) wire.
    pub(crate) async fn stateless_request(
        self: &Arc<Self>,
        bytes: Bytes,
        env: &Envelope,
        version: &str,
    ) -> Bytes {
        let id = env.id.as_ref();
        let mut refreshed = false;
        loop {
            let headers = match self.stateless_headers(env, version, &bytes) {
                Ok(h) => h,
                Err(m) => return error_response(id, INVALID_REQUEST, &m, None),
            };
            let resp = match self.up.post(self.url(), headers, bytes.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    return ReplyError::from(e).to_response(id, self.url(), self.opts.error_words);
                }
            };
            let ctx = ReplyCtx {
                relay_others: true,
                resume: None,
            };
            let reply = self
                .read_reply(resp, id.unwrap_or(&Value::Null), &ctx)
                .await;
            let mismatch = match &reply {
                Err(e) => e.rpc_code() == Some(HEADER_MISMATCH),
                Ok(msg) => response_error_code(msg) == Some(HEADER_MISMATCH),
            };
            if mismatch && env.method() == "tools/call" && !refreshed {
                // The tool's x-mcp-header annotations may have changed: re-list the tools
                // and try once more (streamable-http.md, "Client Behavior").
                refreshed = true;
                tracing::info!(url = %self.url(), "header mismatch on tools/call; refreshing the tool list");
                if self.refresh_tools(version, &bytes).await {
                    continue;
                }
            }
            return match reply {
                Ok(msg) if env.method() == "tools/list" => self.learn_tools(msg),
                Ok(msg) => msg,
                Err(e) => e.to_response(id, self.url(), self.opts.error_words),
            };
        }
    }

    /// The request metadata headers of a stateless request.
    pub(crate) fn stateless_headers(
        &self,
        env: &Envelope,
        version: &str,
        bytes: &[u8],
    ) -> Result<HeaderMap, String> {
        let mut h = HeaderMap::new();
        let invalid = |what: &str| {
            format!("Invalid Request: the {what} cannot be sent as an HTTP header value")
        };
        h.insert(
            VERSION_HEADER,
            HeaderValue::from_str(version).map_err(|_| invalid("protocol version"))?,
        );
        h.insert(
            HeaderName::from_static("mcp-method"),
            HeaderValue::from_str(env.method()).map_err(|_| invalid("method name"))?,
        );
        if let Some(name) = env.mcp_name() {
            h.insert(
                HeaderName::from_static("mcp-name"),
                headers::encode_header_value(name),
            );
        }
        if env.method() == "tools/call"
            && let Some(tool) = env.name.as_deref()
        {
            let annotations = lock(&self.tools).get(tool).cloned().unwrap_or_default();
            if !annotations.is_empty()
                && let Ok(msg) = serde_json::from_slice::<Value>(bytes)
            {
                let args = msg.pointer("/params/arguments").unwrap_or(&Value::Null);
                for ph in &annotations {
                    if let Some(v) = headers::param_value(args, &ph.path) {
                        h.insert(ph.name.clone(), v);
                    }
                }
            }
        }
        Ok(h)
    }

    /// A `tools/list` response on the HTTP wire: records the tools' `x-mcp-header`
    /// annotations and leaves out tools whose annotations are invalid (the spec's MUST
    /// for Streamable HTTP clients). Untouched unless a tool has to go.
    pub(crate) fn learn_tools(&self, msg: Bytes) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<Value>(&msg) else {
            return msg;
        };
        let Some(tools) = v.pointer_mut("/result/tools").and_then(Value::as_array_mut) else {
            return msg;
        };
        let mut removed = false;
        let mut learned = Vec::new();
        tools.retain(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
            match headers::tool_param_headers(tool) {
                Ok(h) => {
                    learned.push((name.to_string(), h));
                    true
                }
                Err(reason) => {
                    tracing::warn!(tool = name, %reason, "leaving out a tool with an invalid x-mcp-header annotation");
                    removed = true;
                    false
                }
            }
        });
        {
            let mut map = lock(&self.tools);
            for (name, h) in learned {
                map.insert(name, h);
            }
        }
        if removed {
            Bytes::from(v.to_string())
        } else {
            msg
        }
    }

    /// Re-lists the tools (all pages) with the `_meta` of the client's request, to learn
    /// their current annotations. Returns whether it worked.
    async fn refresh_tools(&self, version: &str, request: &[u8]) -> bool {
        let meta = serde_json::from_slice::<Value>(request)
            .ok()
            .and_then(|v| v.pointer("/params/_meta").cloned())
            .unwrap_or_else(|| serde_json::json!({ crate::message::META_VERSION: version }));
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let id = self.next_internal_id();
            let mut params = serde_json::json!({ "_meta": meta });
            if let Some(c) = &cursor {
                params["cursor"] = Value::String(c.clone());
            }
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
            let env = Envelope {
                id: Some(id.clone()),
                method: Some("tools/list".into()),
                version: Some(version.to_string()),
                ..Default::default()
            };
            let Ok(headers) = self.stateless_headers(&env, version, &[]) else {
                return false;
            };
            let Ok(resp) = self
                .up
                .post(self.url(), headers, Bytes::from(body.to_string()))
                .await
            else {
                return false;
            };
            let ctx = ReplyCtx::default();
            let Ok(msg) = self.read_reply(resp, &id, &ctx).await else {
                return false;
            };
            let msg = self.learn_tools(msg);
            cursor = serde_json::from_slice::<Value>(&msg)
                .ok()
                .and_then(|v| {
                    v.pointer("/result/nextCursor")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                return true;
            }
        }
        false
    }
}

/// The JSON-RPC error code of a response, if it is an error response.
pub(crate) fn response_error_code(msg: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Resp {
        error: Option<ErrorCode>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorCode {
        code: Option<i64>,
    }
    serde_json::from_slice::<Resp>(msg).ok()?.error?.code
}
