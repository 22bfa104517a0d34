//! Bad input: lines that are not JSON-RPC, and messages over the size limit, in either
//! direction.

use super::*;

#[tokio::test]
async fn bad_input_lines_get_errors_and_the_proxy_keeps_going() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                max_message_bytes: 4096,
                ..opts()
            },
            None,
        );
        c.initialize().await;
        c.send("this is not json").await;
        let e = c.recv().await;
        assert_eq!(e, json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e["error"]["message"]}}));
        assert!(e["error"]["message"].as_str().unwrap().starts_with("Parse error"));
        c.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call""#).await;
        assert_eq!(c.recv().await["error"]["code"], -32700);
        c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xff\xfe\"}\n").await;
        let e = c.recv().await;
        assert_eq!(e["error"]["code"], -32700);
        assert!(e["error"]["message"].as_str().unwrap().contains("UTF-8"));
        c.send("[1, 2]").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        assert_eq!(c.recv().await["error"]["code"], -32600);
        c.send("42").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        c.send(r#"{"jsonrpc":"2.0","id":3}"#).await;
        let e = c.recv().await;
        assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(3), json!(-32600)));
        c.send("[]").await;
        assert_eq!(c.recv().await["error"]["code"], -32600);
        // Over the limit: read to its end, answered, dropped.
        c.send(&format!(r#"{{"jsonrpc":"2.0","id":4,"method":"x","params":{{"p":"{}"}}}}"#, "a".repeat(5000))).await;
        let e = c.recv().await;
        assert_eq!(e["error"]["code"], -32600);
        assert!(e["error"]["message"].as_str().unwrap().contains("limit"));
        // Blank lines are ignored; CRLF is accepted.
        c.send_raw(b"\n   \r\n").await;
        c.send_raw(br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}"#).await;
        c.send_raw(b"\r\n").await;
        let r = c.recv().await;
        assert_eq!(r["result"]["content"][0]["text"], "still here");
        // A batch: each member on its own.
        c.send(r#"[{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b1"}}},{"jsonrpc":"2.0","method":"notifications/progress","params":{}}]"#).await;
        assert_eq!(c.recv().await["result"]["content"][0]["text"], "b1");
        assert_eq!(server.posts("x").len(), 0, "nothing invalid reached the server");
        c.finish().await;
    })
    .await;
}

on_each_client!(
    ten_megabyte_messages_in_both_directions,
    ten_megabyte_messages_in_both_directions_on
);
async fn ten_megabyte_messages_in_both_directions_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start_on(backend, &server.url, opts(), None);
        c.initialize().await;
        let big = "x".repeat(10 * 1024 * 1024);
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": big}}),
            )
            .await;
        assert_eq!(
            r["result"]["content"][0]["text"].as_str().map(str::len),
            Some(big.len())
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_server_message_fails_its_request_only() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| {
            let big =
                json!({"jsonrpc": "2.0", "id": req.id(), "result": {"pad": "w".repeat(100_000)}});
            match req.rpc_method().as_str() {
                "big/json" => Some(Resp::json(big)),
                "big/sse" => Some(Resp::raw(
                    200,
                    "text/event-stream",
                    format!("data: {big}\n\n"),
                )),
                _ => None,
            }
        });
        let server = mock.serve().await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                max_message_bytes: 64 * 1024,
                ..opts()
            },
            None,
        );
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "y".repeat(60_000)}}),
            )
            .await;
        assert!(r.get("result").is_some(), "under the limit");
        for (id, method) in [(2, "big/json"), (3, "big/sse")] {
            let e = c.request(json!(id), method, json!({})).await;
            assert_eq!(e["id"], id);
            assert!(
                e["error"]["message"].as_str().unwrap().contains("limit"),
                "{e}"
            );
        }
        let r = c
            .request(
                json!(4),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "ok"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "ok");
        c.finish().await;
    })
    .await;
}
