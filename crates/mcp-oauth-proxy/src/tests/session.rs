//! The session-based (2025) wire: handshake, byte-for-byte relaying, server requests,
//! resumption, session renewal, restarts, redirects, HTTP errors, static headers,
//! concurrency.

use super::*;

on_each_client!(
    session_wire_relays_handshake_requests_and_ends_with_delete,
    session_wire_relays_handshake_requests_and_ends_with_delete_on
);
async fn session_wire_relays_handshake_requests_and_ends_with_delete_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        let init = c.initialize().await;
        assert_eq!(init["id"], 0);
        assert_eq!(init["result"]["serverInfo"]["name"], "mock");
        // The GET stream opens after notifications/initialized.
        eventually("GET stream", || server.count("GET") == 1).await;
        let r = c.request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}})).await;
        assert_eq!(r, json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "hi"}]}}));

        let posts: Vec<Req> = server.seen().into_iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 3);
        assert!(posts[0].header("mcp-session-id").is_none(), "initialize carries no session");
        for p in &posts[1..] {
            assert_eq!(p.header("mcp-session-id").as_deref(), Some("session-1"));
            assert_eq!(p.header("mcp-protocol-version").as_deref(), Some("2025-11-25"));
            assert!(p.header("mcp-method").is_none(), "no 2026 headers on the session wire");
            assert_eq!(p.header("accept").as_deref(), Some("application/json, text/event-stream"));
        }
        let get = server.seen().into_iter().find(|r| r.method == "GET").unwrap();
        assert_eq!(get.header("accept").as_deref(), Some("text/event-stream"));
        assert_eq!(get.header("mcp-session-id").as_deref(), Some("session-1"));

        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        let delete = server.seen().into_iter().find(|r| r.method == "DELETE").expect("DELETE at shutdown");
        assert_eq!(delete.header("mcp-session-id").as_deref(), Some("session-1"));
    })
    .await;
}

on_each_client!(
    messages_pass_byte_for_byte_in_both_directions,
    messages_pass_byte_for_byte_in_both_directions_on
);
async fn messages_pass_byte_for_byte_in_both_directions_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        // The server answers with odd formatting and unknown members.
        mock.set_custom(|_, req| {
            (req.rpc_method() == "vendor/unknown").then(|| {
                Resp::raw(
                    200,
                    "application/json; charset=utf-8",
                    format!(
                        "{{\n  \"jsonrpc\": \"2.0\",\r\n  \"id\": {},\n  \"result\": {{\"x-future\": [1, 2.50, \"\\n\\u00e9\"], \"nested\": {{\"a\": null}}}},\n  \"extra\": true\n}}\n",
                        req.id()
                    ),
                )
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let sent = r#"{"jsonrpc":"2.0","id":"req-1","method":"vendor/unknown","params":{"name":{"not":"a string"},"_meta":{"custom/key":[1,{"b":false}]},"big":12345678901234567890,"float":1.50},"futureTopLevel":{"k":"v"}}"#;
        c.send(sent).await;
        let line = c.recv_line().await;
        // Line breaks became spaces; everything else is the server's bytes.
        assert_eq!(
            line,
            "{   \"jsonrpc\": \"2.0\",    \"id\": \"req-1\",   \"result\": {\"x-future\": [1, 2.50, \"\\n\\u00e9\"], \"nested\": {\"a\": null}},   \"extra\": true } "
        );
        let received = server.posts("vendor/unknown");
        assert_eq!(received.len(), 1);
        assert_eq!(&received[0].body[..], sent.as_bytes(), "the request reached the server unchanged");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn server_requests_on_the_get_stream_and_on_response_streams_round_trip() {
    within(async {
        let mock = Mock::new(Cfg::default());
        // tools/call answers with an SSE stream: a server request first, then (once the
        // client answered it) the result.
        let (call_tx, call_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        let call_rx = Arc::new(tokio::sync::Mutex::new(call_rx));
        mock.set_custom(move |_, req| {
            if req.is_post("tools/call") {
                let (r, tx) = Resp::stream();
                call_tx.try_send(tx).unwrap();
                return Some(r);
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        eventually("GET stream", || !mock.get_streams.lock().unwrap().is_empty()).await;

        // A server request on the GET stream reaches the client...
        let ping = json!({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list", "params": {"_meta": {"x": 1}}});
        mock.push_get(ping.clone()).await;
        assert_eq!(c.recv().await, ping);
        // ...and the client's response goes back to the server.
        let answer = json!({"jsonrpc": "2.0", "id": "srv-1", "result": {"roots": [{"uri": "file:///tmp", "name": "tmp"}]}});
        c.send_json(answer.clone()).await;
        eventually("the client's response at the server", || {
            server.seen().iter().any(|r| r.method == "POST" && r.json() == answer)
        })
        .await;
        let posted = server.seen().into_iter().find(|r| r.json() == answer).unwrap();
        assert_eq!(posted.header("mcp-session-id").as_deref(), Some("session-1"));

        // A server request inside a tool call's response stream.
        c.send_json(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})).await;
        let tx = call_rx.lock().await.recv().await.unwrap();
        let elicit = json!({"jsonrpc": "2.0", "id": 99, "method": "elicitation/create", "params": {"message": "ok?", "requestedSchema": {"type": "object"}}});
        tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 0.5}}))).await.unwrap();
        tx.send(event(&elicit)).await.unwrap();
        assert_eq!(c.recv().await["method"], "notifications/progress");
        assert_eq!(c.recv().await, elicit);
        let accept = json!({"jsonrpc": "2.0", "id": 99, "result": {"action": "accept", "content": {}}});
        c.send_json(accept.clone()).await;
        eventually("the elicitation answer at the server", || server.seen().iter().any(|r| r.json() == accept)).await;
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 7, "result": {"content": []}}))).await.unwrap();
        let r = c.recv().await;
        assert_eq!(r["id"], 7);
        assert_eq!(r["result"], json!({"content": []}));
        c.finish().await;
    })
    .await;
}

on_each_client!(
    interrupted_response_stream_is_resumed_with_last_event_id,
    interrupted_response_stream_is_resumed_with_last_event_id_on
);
async fn interrupted_response_stream_is_resumed_with_last_event_id_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| {
            if req.is_post("tools/call") {
                // Priming event, a notification, then the connection closes.
                return Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!(
                        "id: e1\ndata:\n\nretry: 50\nid: e2\ndata: {}\n\n",
                        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}})
                    ),
                ));
            }
            if req.method == "GET" && req.header("last-event-id").is_some() {
                assert_eq!(req.header("last-event-id").as_deref(), Some("e2"));
                assert_eq!(req.header("mcp-session-id").as_deref(), Some("session-1"));
                return Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!("id: e3\ndata: {}\n\n", json!({"jsonrpc": "2.0", "id": 5, "result": {"resumed": true}})),
                ));
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "slow"}})).await;
        assert_eq!(c.recv().await["method"], "notifications/progress");
        assert_eq!(c.recv().await, json!({"jsonrpc": "2.0", "id": 5, "result": {"resumed": true}}));
        assert!(server.seen().iter().any(|r| r.header("last-event-id").as_deref() == Some("e2")));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn expired_session_is_renewed_and_the_request_replayed() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        // The server forgets every session.
        mock.sessions.lock().unwrap().clear();
        let r = c
            .request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "b"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "b", "{r}");
        // The client saw nothing else: no second initialize result.
        c.silent_for(Duration::from_millis(100)).await;
        let inits = server.posts("initialize");
        assert_eq!(inits.len(), 2);
        assert_eq!(
            inits[0].body, inits[1].body,
            "the client's initialize was replayed as is"
        );
        assert_eq!(server.posts("notifications/initialized").len(), 2);
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[1].header("mcp-session-id").as_deref(),
            Some("session-1")
        );
        assert_eq!(
            calls[2].header("mcp-session-id").as_deref(),
            Some("session-2")
        );
        c.finish().await;
    })
    .await;
}

on_each_client!(server_restart_mid_session, server_restart_mid_session_on);
async fn server_restart_mid_session_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        // Crash: connections drop, sessions are lost; back 200 ms later.
        server.stop();
        mock.sessions.lock().unwrap().clear();
        mock.get_streams.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let restart = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.restart().await;
        };
        let (r, ()) = tokio::join!(
            c.request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "after"}})
            ),
            restart
        );
        assert_eq!(r["result"]["content"][0]["text"], "after", "{r}");
        // A new session, and the GET stream reopened on it.
        eventually("GET stream on the new session", || {
            server.seen().iter().any(|r| {
                r.method == "GET" && r.header("mcp-session-id").as_deref() == Some("session-2")
            })
        })
        .await;
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn stream_closed_before_the_response_is_an_error_not_silence() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            ..Default::default()
        });
        mock.set_custom(|_, req| {
            req.is_post("tools/call").then(|| {
                // No event ids: not resumable (and 2026-07-28 streams never are).
                Resp::raw(200, "text/event-stream", format!("data: {}\n\n", json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}})))
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.send_json(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "_meta": modern_meta()}})).await;
        assert_eq!(c.recv().await["method"], "notifications/progress");
        let e = c.recv().await;
        assert_eq!(e["id"], 3);
        assert_eq!(e["error"]["code"], -32603);
        assert!(e["error"]["message"].as_str().unwrap().contains("closed the response stream before the response"), "{e}");
        c.finish().await;
    })
    .await;
}

on_each_client!(
    redirects_are_followed_within_the_origin_only,
    redirects_are_followed_within_the_origin_only_on
);
async fn redirects_are_followed_within_the_origin_only_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let elsewhere = Mock::new(Cfg::default()).serve().await;
        let away = format!("{}/stolen", elsewhere.url);
        mock.set_custom(move |_, req| {
            let moved = |status: u16, location: &str| {
                let mut r = Resp::status(status);
                r.headers.push(("location".into(), location.into()));
                Some(r)
            };
            match (req.rpc_method().as_str(), req.path.as_str()) {
                // 307 and 308 repeat the POST, body and headers, at the new URL.
                ("tools/call", "/mcp") => moved(307, "/v2/mcp"),
                ("tools/call", "/v2/mcp") => moved(308, "/v3/mcp"),
                ("leave", _) => moved(307, &away),
                ("loop", p) => moved(307, p),
                _ => None,
            }
        });
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "moved"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "moved", "{r}");
        let calls = server.posts("tools/call");
        let paths: Vec<&str> = calls.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/mcp", "/v2/mcp", "/v3/mcp"]);
        assert_eq!(
            calls[0].body, calls[2].body,
            "the body is sent again as it was"
        );
        assert_eq!(
            calls[2].header("mcp-session-id").as_deref(),
            Some("session-1")
        );

        // Another origin: not followed (the request's headers would go with it); the
        // client is told.
        let e = c.request(json!(2), "leave", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 307, "{e}");
        assert!(
            elsewhere.seen().is_empty(),
            "nothing reached the other origin"
        );
        // A redirect loop ends with an error, not a hang.
        let e = c.request(json!(3), "loop", json!({})).await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("redirect"),
            "{e}"
        );
        assert!(
            server.posts("loop").len() <= 7,
            "{} requests",
            server.posts("loop").len()
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn http_errors_become_json_rpc_errors_for_the_request() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| match req.rpc_method().as_str() {
            "boom" => Some(Resp::raw(502, "text/html", "<html>bad gateway</html>")),
            "bad" => Some(Resp::error(400, Value::Null, -32602, "Invalid params: nope", Some(json!({"field": "x"})))),
            "wrongtype" => Some(Resp::raw(200, "text/plain", "hello")),
            "notjson" => Some(Resp::raw(200, "application/json", "{oops")),
            _ => None,
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let e = c.request(json!("a"), "boom", json!({})).await;
        assert_eq!(e["id"], "a");
        assert_eq!(e["error"]["code"], -32603);
        assert_eq!(e["error"]["data"]["httpStatus"], 502);
        assert!(e["error"]["message"].as_str().unwrap().contains("bad gateway"));
        // The server's JSON-RPC error is relayed with the client's id.
        let e = c.request(json!("b"), "bad", json!({})).await;
        assert_eq!(e, json!({"jsonrpc": "2.0", "id": "b", "error": {"code": -32602, "message": "Invalid params: nope", "data": {"field": "x"}}}));
        let e = c.request(json!("c"), "wrongtype", json!({})).await;
        assert!(e["error"]["message"].as_str().unwrap().contains("text/plain"));
        let e = c.request(json!("d"), "notjson", json!({})).await;
        assert!(e["error"]["message"].as_str().unwrap().contains("invalid JSON"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn server_without_get_stream_or_sessions() {
    within(async {
        let mock = Mock::new(Cfg {
            sessions: false,
            get_stream: false,
            sse: true,
            ..Default::default()
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "sse"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "sse");
        eventually("one GET attempt", || server.count("GET") == 1).await;
        c.silent_for(Duration::from_millis(100)).await;
        assert_eq!(
            server.count("GET"),
            1,
            "405 means no GET stream: not retried"
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0, "no session, no DELETE");
    })
    .await;
}

#[tokio::test]
async fn static_headers_are_sent_and_protocol_headers_win() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k1"));
        headers.insert("mcp-session-id", HeaderValue::from_static("forged"));
        let mut c = Client::start(&server.url, ProxyOptions { headers, ..opts() }, None);
        c.initialize().await;
        c.request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "a"}}),
        )
        .await;
        let call = &server.posts("tools/call")[0];
        assert_eq!(call.header("x-api-key").as_deref(), Some("k1"));
        assert_eq!(call.header("mcp-session-id").as_deref(), Some("session-1"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn many_requests_in_flight() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let served = Arc::new(AtomicUsize::new(0));
        let s2 = served.clone();
        mock.set_custom(move |_, req| {
            if req.is_post("tools/call") {
                s2.fetch_add(1, Ordering::Relaxed);
            }
            None
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        for i in 0..64 {
            c.send_json(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": format!("n{i}")}}})).await;
        }
        let mut ids = HashSet::new();
        for _ in 0..64 {
            let r = c.recv().await;
            let id = r["id"].as_i64().unwrap();
            assert_eq!(r["result"]["content"][0]["text"], format!("n{id}"));
            ids.insert(id);
        }
        assert_eq!(ids.len(), 64);
        assert_eq!(served.load(Ordering::Relaxed), 64);
        c.finish().await;
    })
    .await;
}
