//! The lifecycles of [`McpClient`]: the stateful handshake (`initialize`), the probe
//! that tells a 2026-07-28 server from a session-based one, `server/discover`, and a new
//! session when the server ended the old one.

use super::*;

impl McpClient {
    /// The stateful handshake, offering `requested`.
    pub(super) async fn initialize(&self, requested: &str) -> Result<()> {
        let id = self.next_id();
        let msg = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "initialize",
            "params": {
                "protocolVersion": requested,
                "capabilities": {},
                "clientInfo": self.client_info(),
            },
        });
        let none = HeaderMap::new();
        let ctx = PostCtx {
            headers: &none,
            legacy_streams: true,
        };
        let res = self.transport.post(&ctx, body(&msg), Some(id)).await?;
        let session_id = res.session_id.clone();
        let result = self.result_of(res.reply)?.unwrap_or(Value::Null);
        let Some(version) = result.get("protocolVersion").and_then(Value::as_str) else {
            return Err(self.rule("the initialize result has no protocolVersion"));
        };
        if version != requested && !STATEFUL_VERSIONS.contains(&version) {
            return Err(self.rule(format!(
                "the server chose protocol version {:?}, which this client does not speak \
                 (it speaks {})",
                crate::wire::excerpt(version, 40),
                STATEFUL_VERSIONS.join(", ")
            )));
        }
        if let Some(s) = &session_id
            && (s.is_empty() || !s.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        {
            return Err(self.rule(
                "the server assigned an Mcp-Session-Id that is not visible ASCII \
                 (2025-11-25 transports, Session Management)",
            ));
        }
        tracing::debug!(url = %self.url(), version, session = session_id.is_some(), "initialized");

        let mut h = HeaderMap::new();
        if let Some(s) = &session_id {
            h.insert(SESSION_HEADER, self.header_value(s)?);
        }
        h.insert(VERSION_HEADER, self.header_value(version)?);
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ctx = PostCtx {
            headers: &h,
            legacy_streams: true,
        };
        let res = self.transport.post(&ctx, body(&note), None).await?;
        self.result_of(res.reply)?;

        let mut st = self.state();
        st.era = Some(Era::Stateful {
            version: version.to_string(),
            requested: requested.to_string(),
        });
        st.session_id = session_id;
        st.server_capabilities = result.get("capabilities").cloned();
        st.server_info = result.get("serverInfo").cloned();
        Ok(())
    }

    /// [`Protocol::Auto`]: probe with a modern request (`server/discover`) and read the
    /// answer as versioning.md and streamable-http.md "Backward Compatibility" say: a
    /// result or a recognized modern error means a modern server; a 4xx without one, or
    /// a non-modern JSON-RPC error, means a legacy server, and the client falls back to
    /// `initialize`.
    pub(super) async fn probe(&self) -> Result<()> {
        let res = self.post_discover().await?;
        let (status, rpc_error, excerpt) = match res.reply {
            Reply::Message(m) => match RpcError::from_response(&m) {
                None => return self.adopt_discover(&m, false).await,
                Some(e) => (200, Some(e), String::new()),
            },
            Reply::Http {
                status,
                excerpt,
                rpc_error,
            } => (status, rpc_error, excerpt),
            Reply::Accepted => {
                return Err(self.rule("server/discover was answered without a response"));
            }
        };
        match rpc_error {
            Some(e) if e.code == UNSUPPORTED_VERSION => {
                let supported =
                    supported_versions(e.data.as_ref().and_then(|d| d.get("supported")));
                if supported.iter().any(|v| v == STATELESS_VERSION) {
                    return Err(self.rpc_error(e, Some(status)));
                }
                self.initialize_one_of(&supported).await
            }
            Some(e) if e.code == HEADER_MISMATCH || e.code == MISSING_CAPABILITY => {
                Err(self.rpc_error(e, Some(status)))
            }
            // A non-modern JSON-RPC error (on 200 or a 4xx), or a 4xx without one:
            // a legacy server (server/discover is mandatory for modern ones, so even
            // -32601 says "legacy").
            Some(_) if status == 200 || (400..500).contains(&status) => {
                tracing::debug!(url = %self.url(), status, "server/discover failed: legacy server; falling back to initialize");
                self.initialize(LATEST_STATEFUL_VERSION).await
            }
            None if (400..500).contains(&status) => {
                tracing::debug!(url = %self.url(), status, "server/discover failed: legacy server; falling back to initialize");
                self.initialize(LATEST_STATEFUL_VERSION).await
            }
            Some(e) => Err(self.rpc_error(e, Some(status))),
            None => Err(self.status_error(status, excerpt)),
        }
    }

    /// [`Protocol::Stateless`] with `discover`: any failure is an error.
    pub(super) async fn discover_forced(&self) -> Result<()> {
        let res = self.post_discover().await?;
        let msg = match res.reply {
            Reply::Message(m) => m,
            other => {
                self.result_of(other)?;
                return Err(self.rule("server/discover was answered without a response"));
            }
        };
        self.adopt_discover(&msg, true).await
    }

    async fn post_discover(&self) -> Result<PostResult> {
        let id = self.next_id();
        let params = json!({});
        let msg = self.build_message(&Era::Stateless, Some(id), "server/discover", &params)?;
        let headers = self.protocol_headers(&Era::Stateless, None, "server/discover", &params)?;
        let ctx = PostCtx {
            headers: &headers,
            legacy_streams: false,
        };
        self.transport.post(&ctx, body(&msg), Some(id)).await
    }

    /// A `server/discover` response: stay stateless when the server lists 2026-07-28
    /// (or lists nothing), otherwise (`Auto` only) initialize with a listed legacy one.
    async fn adopt_discover(&self, msg: &Value, forced: bool) -> Result<()> {
        let result = self
            .result_of(Reply::Message(msg.clone()))?
            .unwrap_or(Value::Null);
        let listed = result.get("supportedVersions");
        let supported = supported_versions(listed);
        if listed.is_none() || supported.iter().any(|v| v == STATELESS_VERSION) {
            let mut st = self.state();
            st.era = Some(Era::Stateless);
            st.server_capabilities = result.get("capabilities").cloned();
            st.server_info = result
                .get("_meta")
                .and_then(|m| m.get(META_SERVER_INFO))
                .cloned();
            return Ok(());
        }
        if forced {
            return Err(self.rule(format!(
                "the server does not support protocol version {STATELESS_VERSION} \
                 (server/discover lists {})",
                list_versions(&supported)
            )));
        }
        self.initialize_one_of(&supported).await
    }

    /// Initializes with the newest stateful version in `supported`.
    async fn initialize_one_of(&self, supported: &[String]) -> Result<()> {
        match STATEFUL_VERSIONS
            .iter()
            .find(|v| supported.iter().any(|s| s == *v))
        {
            Some(v) => self.initialize(v).await,
            None => Err(self.rule(format!(
                "the server supports protocol versions {}, none of which this client speaks \
                 ({STATELESS_VERSION}, {})",
                list_versions(supported),
                STATEFUL_VERSIONS.join(", ")
            ))),
        }
    }

    /// Renews an expired session (a 404 to a request that carried `stale`).
    pub(super) async fn reinitialize(&self, stale: &str) -> Result<()> {
        let _guard = self.connect_lock.lock().await;
        let requested = {
            let mut st = self.state();
            if st.session_id.as_deref() != Some(stale) {
                return Ok(()); // renewed (or closed) meanwhile
            }
            let Some(Era::Stateful { requested, .. }) = &st.era else {
                return Ok(());
            };
            let requested = requested.clone();
            *st = State::default();
            requested
        };
        tracing::debug!(url = %self.url(), "session expired (HTTP 404); initializing a new one");
        self.initialize(&requested).await
    }
}
