//! The stateless (2026-07-28) wire: request metadata headers, tool annotations,
//! `subscriptions/listen`.

use super::*;

#[tokio::test]
async fn stateless_wire_sends_request_metadata_headers_and_no_session() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let d = c.request(json!(1), "server/discover", json!({"_meta": modern_meta()})).await;
        assert_eq!(d["result"]["supportedVersions"], json!([MODERN]));
        // tools/list: the tool with an invalid x-mcp-header annotation is left out.
        let tools = c.request(json!(2), "tools/list", json!({"_meta": modern_meta()})).await;
        let names: Vec<&str> = tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["echo"]);
        let r = c
            .request(json!(3), "tools/call", json!({"name": "echo", "arguments": {"text": "t", "region": "us-west1"}, "_meta": modern_meta()}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "t");
        c.request(json!(4), "echo/params", json!({"uri": "file:///tmp/é", "_meta": modern_meta()})).await;
        c.request(json!(5), "resources/read", json!({"uri": "file:///tmp/é", "_meta": modern_meta()})).await;

        let posts = server.seen();
        assert!(posts.iter().all(|r| r.method == "POST"), "no GET or DELETE on the stateless wire");
        for p in &posts {
            assert_eq!(p.header("mcp-protocol-version").as_deref(), Some(MODERN));
            assert_eq!(p.header("mcp-method").unwrap(), p.rpc_method());
            assert!(p.header("mcp-session-id").is_none());
        }
        let call = &server.posts("tools/call")[0];
        assert_eq!(call.header("mcp-name").as_deref(), Some("echo"));
        assert_eq!(call.header("mcp-param-region").as_deref(), Some("us-west1"));
        assert!(server.posts("echo/params")[0].header("mcp-name").is_none());
        assert_eq!(
            server.posts("resources/read")[0].header("mcp-name").as_deref(),
            Some("=?base64?ZmlsZTovLy90bXAvw6k=?=")
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0);
    })
    .await;
}

#[tokio::test]
async fn header_mismatch_refreshes_tool_annotations_and_retries_once() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            sessions: false,
            ..Default::default()
        });
        mock.set_custom(|_, req| {
            (req.is_post("tools/call") && req.header("mcp-param-region").is_none())
                .then(|| Resp::error(400, req.id(), -32020, "Header mismatch: Mcp-Param-Region missing", None))
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        // The client never listed the tools: the proxy does not know the annotation yet.
        let r = c
            .request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "t", "region": "eu"}, "_meta": modern_meta()}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "t", "{r}");
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].header("mcp-param-region").as_deref(), Some("eu"));
        let list = &server.posts("tools/list")[0];
        assert_eq!(list.json()["params"]["_meta"], modern_meta(), "the refresh used the client's _meta");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn subscriptions_listen_streams_until_cancelled_by_closing_it() {
    within(async {
        let mock = Mock::new(Cfg {
            legacy: false,
            modern: true,
            ..Default::default()
        });
        let (listen_tx, mut listen_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("subscriptions/listen").then(|| {
                let (r, tx) = Resp::stream();
                listen_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.send_json(json!({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}})).await;
        let tx = listen_rx.recv().await.unwrap();
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}});
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}});
        tx.send(Bytes::from(": keep-alive\n\n")).await.unwrap();
        tx.send(event(&ack)).await.unwrap();
        assert_eq!(c.recv().await, ack);
        // Requests keep working while the stream is open.
        let r = c.request(json!(9), "tools/call", json!({"name": "echo", "arguments": {"text": "during"}, "_meta": modern_meta()})).await;
        assert_eq!(r["result"]["content"][0]["text"], "during");
        tx.send(event(&changed)).await.unwrap();
        assert_eq!(c.recv().await, changed);
        // Cancelling closes the stream; nothing is POSTed for it.
        c.send_json(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "L", "reason": "done"}})).await;
        tokio::time::timeout(Duration::from_secs(5), tx.closed()).await.expect("the listen stream was not closed");
        assert!(server.posts("notifications/cancelled").is_empty());
        c.silent_for(Duration::from_millis(100)).await;
        // End of input does not wait for the (cancelled) listen stream.
        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
    })
    .await;
}
