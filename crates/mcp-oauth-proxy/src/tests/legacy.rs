//! The HTTP+SSE transport (2024-11-05) and era bridging (a legacy client and a
//! 2026-07-28-only server, and the reverse).

use super::*;

/// A 2024-11-05 HTTP+SSE server: GET /mcp opens the stream and names /messages?s=N;
/// POSTs there are answered on the stream.
async fn http_sse_server(
    token: Option<&'static str>,
) -> (Server, Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>) {
    let streams: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> = Arc::new(Mutex::new(Vec::new()));
    let s2 = streams.clone();
    let server = Server::start(Arc::new(move |req: Req| {
        let streams = s2.clone();
        Box::pin(async move {
            if let Some(t) = token
                && req.header("authorization").as_deref() != Some(&format!("Bearer {t}"))
            {
                return Resp::status(401).header("www-authenticate", "Bearer");
            }
            match (req.method.as_str(), req.path.split('?').next().unwrap()) {
                ("GET", "/mcp") => {
                    let (r, tx) = Resp::stream();
                    let n = {
                        let mut s = streams.lock().unwrap();
                        s.push(tx.clone());
                        s.len() - 1
                    };
                    tx.send(Bytes::from(format!("event: endpoint\ndata: /messages?s={n}\n\n"))).await.unwrap();
                    r
                }
                ("POST", "/mcp") => Resp::status(405),
                ("POST", "/messages") => {
                    let n: usize = req.path.split("s=").nth(1).unwrap().parse().unwrap();
                    let tx = streams.lock().unwrap()[n].clone();
                    let msg = req.json();
                    if let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) {
                        let result = match method {
                            "initialize" => json!({"protocolVersion": "2024-11-05", "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}),
                            _ => json!({"echo": msg["params"]}),
                        };
                        let _ = tx.send(event(&json!({"jsonrpc": "2.0", "id": id, "result": result}))).await;
                    }
                    Resp::status(202)
                }
                _ => Resp::status(404),
            }
        })
    }))
    .await;
    (server, streams)
}

#[tokio::test]
async fn http_sse_transport_by_fallback_and_reconnect() {
    within(async {
        let (server, streams) = http_sse_server(Some("tok")).await;
        let auth = FakeAuth::new(Some("tok"), &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth));
        let init = c.initialize().await;
        assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "{init}");
        let r = c.request(json!(1), "tools/call", json!({"name": "x"})).await;
        assert_eq!(r["result"]["echo"]["name"], "x");
        let posts: Vec<Req> = server.seen().into_iter().filter(|r| r.path.starts_with("/messages")).collect();
        assert!(posts.iter().all(|r| r.header("authorization").as_deref() == Some("Bearer tok")));
        // A server notification on the stream reaches the client.
        let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hello"}});
        let tx = streams.lock().unwrap()[0].clone();
        tx.send(event(&note)).await.unwrap();
        assert_eq!(c.recv().await, note);
        // The stream is lost: the proxy reconnects and replays the handshake.
        streams.lock().unwrap().clear();
        drop(tx);
        eventually("reconnected", || streams.lock().unwrap().len() == 1).await;
        eventually("handshake replayed", || {
            server.seen().iter().filter(|r| r.path == "/messages?s=0" && r.rpc_method() == "notifications/initialized").count() == 1
        })
        .await;
        let r = c.request(json!(2), "tools/call", json!({"name": "y"})).await;
        assert_eq!(r["result"]["echo"]["name"], "y");
        c.silent_for(Duration::from_millis(100)).await;
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn http_sse_transport_forced() {
    within(async {
        let (server, _streams) = http_sse_server(None).await;
        let mut c = Client::start(
            &server.url,
            ProxyOptions {
                transport: TransportMode::Sse,
                ..opts()
            },
            None,
        );
        let init = c.initialize().await;
        assert_eq!(init["result"]["serverInfo"]["name"], "old");
        eventually("initialize and initialized went to the endpoint", || {
            server.count("POST") == 2
        })
        .await;
        assert!(
            server
                .seen()
                .iter()
                .filter(|r| r.method == "POST")
                .all(|r| r.path.starts_with("/messages")),
            "no Streamable HTTP attempt"
        );
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn endpoint_on_another_origin_is_refused() {
    within(async {
        let server = Server::start(Arc::new(|req: Req| {
            Box::pin(async move {
                if req.method == "GET" {
                    let (r, tx) = Resp::stream();
                    tx.send(Bytes::from(
                        "event: endpoint\ndata: http://evil.example/steal\n\n",
                    ))
                    .await
                    .unwrap();
                    std::mem::forget(tx);
                    r
                } else {
                    Resp::status(405)
                }
            })
        }))
        .await;
        let mut c = Client::start(&server.url, opts(), None);
        let e = c.request(json!(0), "initialize", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 405, "{e}");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn legacy_client_is_bridged_to_a_modern_only_server() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let init = c.initialize().await;
        assert_eq!(init["id"], 0);
        let result = &init["result"];
        assert_eq!(result["protocolVersion"], "2025-11-25");
        assert_eq!(result["serverInfo"]["name"], "modern-mock");
        assert_eq!(result["instructions"], "be nice");
        assert_eq!(
            result["capabilities"]["tools"]["listChanged"], true,
            "change notifications are bridged"
        );
        // ping and logging/setLevel are answered by the proxy.
        assert_eq!(
            c.request(json!(1), "ping", json!(null)).await,
            json!({"jsonrpc": "2.0", "id": 1, "result": {}})
        );
        assert_eq!(
            c.request(json!(2), "logging/setLevel", json!({"level": "debug"}))
                .await["result"],
            json!({})
        );
        let tools = c.request(json!(3), "tools/list", json!({})).await;
        assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 1);
        let r = c
            .request(
                json!(4),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "bridged", "region": "ap"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "bridged");

        let call = &server.posts("tools/call")[0];
        let meta = &call.json()["params"]["_meta"];
        assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], MODERN);
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"],
            json!({"name": "host", "version": "1"})
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({"sampling": {}})
        );
        assert_eq!(meta["io.modelcontextprotocol/logLevel"], "debug");
        assert_eq!(call.header("mcp-name").as_deref(), Some("echo"));
        assert_eq!(call.header("mcp-param-region").as_deref(), Some("ap"));
        assert!(server.posts("ping").is_empty());
        assert!(server.posts("notifications/initialized").is_empty());
        let discover = &server.posts("server/discover")[0];
        assert_eq!(
            discover.json()["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
            "host"
        );
        c.finish().await;
        assert_eq!(server.count("DELETE"), 0);
    })
    .await;
}

#[tokio::test]
async fn bridged_clients_get_list_changes_from_a_listen_stream_the_proxy_keeps_open() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        let (listen_tx, mut listen_rx) = mpsc::channel::<(Value, mpsc::Sender<Bytes>)>(4);
        mock.set_custom(move |_, req| {
            req.is_post("subscriptions/listen").then(|| {
                let (r, tx) = Resp::stream();
                listen_tx.try_send((req.json(), tx)).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        let (listen, tx) = listen_rx.recv().await.expect("a subscriptions/listen request");
        assert_eq!(
            listen["params"]["notifications"],
            json!({"toolsListChanged": true}),
            "what the server offers"
        );
        assert_eq!(
            listen["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
            "host"
        );
        let sub = listen["id"].clone();
        let meta = json!({"io.modelcontextprotocol/subscriptionId": sub});
        tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"notifications": {"toolsListChanged": true}, "_meta": meta}})))
            .await
            .unwrap();
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": meta}});
        tx.send(event(&changed)).await.unwrap();
        // The acknowledgement is the proxy's business; the change reaches the client.
        assert_eq!(c.recv().await, changed);
        // Requests go on meanwhile.
        let r = c
            .request(json!(5), "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "hi");
        // The server ends the stream: the proxy listens again and tells the client to
        // re-list (changes in between were not seen).
        drop(tx);
        let (_, tx2) = listen_rx.recv().await.expect("the stream is opened again");
        assert_eq!(
            c.recv().await,
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        );
        c.silent_for(Duration::from_millis(100)).await;
        let report = c.finish().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        drop(tx2);
        assert_eq!(server.posts("subscriptions/listen").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_listen_stream_that_keeps_failing_is_given_up_without_spamming_the_client() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        mock.set_custom(|_, req| {
            req.is_post("subscriptions/listen")
                .then(|| Resp::raw(500, "text/plain", "overloaded"))
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        eventually("five listen attempts", || {
            server.posts("subscriptions/listen").len() >= 5
        })
        .await;
        // No re-list hints for streams that never opened, and no sixth attempt.
        c.silent_for(Duration::from_millis(400)).await;
        assert_eq!(server.posts("subscriptions/listen").len(), 5);
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "still fine"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "still fine");
        c.finish().await;
    })
    .await;
}

/// A tool on a modern-only server that needs input (MRTR): sampling and roots on the first
/// try; with the answers and the state, the result quotes them.
fn asking_tool(_: &Mock, req: &Req) -> Option<Resp> {
    let msg = req.json();
    if req.rpc_method() != "tools/call" || msg["params"]["name"] != "ask" {
        return None;
    }
    let p = &msg["params"];
    let result = match p.get("inputResponses") {
        None => json!({
            "resultType": "input_required",
            "inputRequests": {
                "capital": {"method": "sampling/createMessage", "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "Capital of France?"}}], "maxTokens": 10}},
                "where": {"method": "roots/list"}
            },
            "requestState": "opaque state, echoed exactly"
        }),
        Some(r) => json!({
            "resultType": "complete",
            "content": [{"type": "text", "text": format!(
                "{} in {} ({})",
                r["capital"]["content"]["text"].as_str().unwrap_or("?"),
                r["where"]["roots"][0]["uri"].as_str().unwrap_or("?"),
                p["requestState"].as_str().unwrap_or("no state"),
            )}]
        }),
    };
    Some(Resp::result(req, result))
}

#[tokio::test]
async fn bridged_input_requests_reach_the_legacy_client_and_the_request_is_retried() {
    within(async {
        let mock = Mock::new(Cfg::modern_only());
        mock.set_custom(asking_tool);
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}))
            .await;
        // The two input requests arrive as server-initiated requests, under the proxy's ids.
        let mut asked = Vec::new();
        for _ in 0..2 {
            asked.push(c.recv().await);
        }
        asked.sort_by_key(|m| m["method"].as_str().unwrap_or("").to_string());
        assert_eq!(asked[0]["method"], "roots/list");
        assert_eq!(asked[1]["method"], "sampling/createMessage");
        assert_eq!(asked[1]["params"]["maxTokens"], 10);
        assert_ne!(asked[0]["id"], asked[1]["id"]);
        assert_ne!(asked[0]["id"], json!(7));
        // The client answers (in reverse order).
        c.send_json(json!({"jsonrpc": "2.0", "id": asked[1]["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}}))
            .await;
        c.send_json(json!({"jsonrpc": "2.0", "id": asked[0]["id"], "result": {"roots": [{"uri": "file:///work"}]}}))
            .await;
        let r = c.recv().await;
        assert_eq!(r["id"], 7, "the final reply has the client's id: {r}");
        assert_eq!(
            r["result"]["content"][0]["text"],
            "Paris in file:///work (opaque state, echoed exactly)"
        );
        let calls = server.posts("tools/call");
        assert_eq!(calls.len(), 2, "the original request and one retry");
        let (first, retry) = (calls[0].json(), calls[1].json());
        assert_eq!(first["id"], 7);
        assert_ne!(retry["id"], first["id"], "a retry is a new request");
        assert_eq!(retry["params"]["requestState"], "opaque state, echoed exactly");
        assert_eq!(
            retry["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN
        );
        // The client's answers were not relayed to the server as messages of their own.
        assert_eq!(server.posts("").len(), 0);

        // A client that answers an input request with an error fails the request.
        c.send_json(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "ask", "arguments": {}}}))
            .await;
        for _ in 0..2 {
            let ask = c.recv().await;
            let answer = if ask["method"] == "sampling/createMessage" {
                json!({"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -1, "message": "User rejected sampling request"}})
            } else {
                json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": []}})
            };
            c.send_json(answer).await;
        }
        let r = c.recv().await;
        assert_eq!(r["id"], 8);
        let m = r["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("sampling/createMessage") && m.contains("User rejected sampling request"),
            "{m}"
        );
        assert_eq!(server.posts("tools/call").len(), 3, "no retry after a refusal");
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn modern_client_on_a_legacy_server_gets_the_servers_error() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        // A dual-era client probes; the legacy server's answer lets it fall back.
        let e = c
            .request(
                json!("probe"),
                "server/discover",
                json!({"_meta": modern_meta()}),
            )
            .await;
        assert_eq!(e["id"], "probe");
        assert!(e.get("error").is_some(), "{e}");
        let init = c.initialize().await;
        assert!(init.get("result").is_some());
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "legacy"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "legacy");
        c.finish().await;
        let _ = server;
    })
    .await;
}
