//! Shutdown and time limits: end of input, the shutdown signal, silent servers,
//! progress, a closed output.

use super::*;

#[tokio::test]
async fn end_of_input_waits_for_requests_in_flight() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (slow_tx, mut slow_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                slow_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}}),
        )
        .await;
        let tx = slow_rx.recv().await.unwrap();
        c.close_input();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(event(
            &json!({"jsonrpc": "2.0", "id": 1, "result": {"late": true}}),
        ))
        .await
        .unwrap();
        assert_eq!(c.recv().await["result"]["late"], true);
        let report = c.join().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        assert_eq!(server.count("DELETE"), 1);
    })
    .await;
}

#[tokio::test]
async fn shutdown_signal_stops_at_once_and_ends_the_session() {
    within(async {
        let mock = Mock::new(Cfg::default());
        mock.set_custom(|_, req| req.is_post("tools/call").then(|| Resp::stream().0));
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "forever"}})).await;
        eventually("the call reached the server", || server.posts("tools/call").len() == 1).await;
        let report = c.signal().await;
        assert_eq!(report.ended_by, EndedBy::Shutdown);
        assert_eq!(server.count("DELETE"), 1);
    })
    .await;
}

/// Issue 17, item 5: a response stream that stays silent past the request timeout is
/// given up: the client gets -32001 for its request, the server `notifications/cancelled`.
#[tokio::test]
async fn a_silent_response_stream_is_given_up_and_cancelled_at_the_server() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let held = hold_streams(&mock, "hangs");
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(400)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        let r = c
            .request(json!("call-1"), "tools/call", json!({"name": "hangs"}))
            .await;
        assert_eq!(r["id"], "call-1", "{r}");
        assert_eq!(r["error"]["code"], -32001, "{r}");
        eventually("the server was told", || {
            server.posts("notifications/cancelled").len() == 1
        })
        .await;
        let cancel = server.posts("notifications/cancelled")[0].json();
        assert_eq!(cancel["params"]["requestId"], "call-1");
        // The proxy goes on.
        let r = c
            .request(
                json!(2),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "x"}}),
            )
            .await;
        assert_eq!(r["id"], 2, "{r}");
        c.finish().await;
        drop(held);
    })
    .await;
}

/// Answers `tools/call` of the tool `name` with a response stream that stays open and
/// silent: its senders are kept in the returned list.
fn hold_streams(mock: &Arc<Mock>, name: &'static str) -> Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> {
    let held: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>> = Arc::default();
    let h = held.clone();
    mock.set_custom(move |_, req| {
        (req.is_post("tools/call") && req.json()["params"]["name"] == name).then(|| {
            let (r, tx) = Resp::stream();
            h.lock().unwrap().push(tx);
            r
        })
    });
    held
}

/// A long call that reports progress is not given up: each event of its stream starts
/// the request's clock again.
#[tokio::test]
async fn progress_keeps_a_long_call_alive_past_the_request_timeout() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (stream_tx, mut stream_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                stream_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(500)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow", "_meta": {"progressToken": "p"}}}))
            .await;
        let tx = stream_rx.recv().await.unwrap();
        // Six progress notifications 250 ms apart: 1.5 s in all, three times the limit.
        for n in 1..=6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            tx.send(event(&json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "p", "progress": n}})))
                .await
                .unwrap();
            assert_eq!(c.recv().await["params"]["progress"], n);
        }
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 1, "result": {"done": true}})))
            .await
            .unwrap();
        let r = c.recv().await;
        assert_eq!(r["result"]["done"], true, "{r}");
        assert!(server.posts("notifications/cancelled").is_empty());
        c.finish().await;
    })
    .await;
}

/// While the client answers a request the server sent on a call's stream (a user filling
/// in an elicitation), the call's clock is stopped.
#[tokio::test]
async fn a_server_request_waiting_for_the_client_does_not_count_as_silence() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let (stream_tx, mut stream_rx) = mpsc::channel::<mpsc::Sender<Bytes>>(1);
        mock.set_custom(move |_, req| {
            req.is_post("tools/call").then(|| {
                let (r, tx) = Resp::stream();
                stream_tx.try_send(tx).unwrap();
                r
            })
        });
        let server = mock.serve().await;
        let options = ProxyOptions {
            request_timeout: Some(Duration::from_millis(300)),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "asks"}}))
            .await;
        let tx = stream_rx.recv().await.unwrap();
        tx.send(event(&json!({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create", "params": {"message": "name?"}})))
            .await
            .unwrap();
        assert_eq!(c.recv().await["method"], "elicitation/create");
        // The user takes longer than the limit.
        tokio::time::sleep(Duration::from_millis(900)).await;
        c.send_json(json!({"jsonrpc": "2.0", "id": "e1", "result": {"action": "accept", "content": {"name": "x"}}}))
            .await;
        eventually("the answer reached the server", || {
            server.seen().iter().any(|r| r.method == "POST" && r.json()["id"] == "e1")
        })
        .await;
        tx.send(event(&json!({"jsonrpc": "2.0", "id": 1, "result": {"done": true}})))
            .await
            .unwrap();
        let r = c.recv().await;
        assert_eq!(r["result"]["done"], true, "{r}");
        c.finish().await;
    })
    .await;
}

/// At end of input, a request the server has not answered within the shutdown grace is
/// answered with an error before the proxy ends.
#[tokio::test]
async fn end_of_input_answers_what_the_grace_did_not() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let _held = hold_streams(&mock, "forever");
        let server = mock.serve().await;
        let options = ProxyOptions {
            shutdown_grace: Duration::from_millis(300),
            ..opts()
        };
        let mut c = Client::start(&server.url, options, None);
        c.initialize().await;
        c.send_json(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "forever"}})).await;
        eventually("the call reached the server", || server.posts("tools/call").len() == 1).await;
        c.close_input();
        let r = c.recv().await;
        assert_eq!(r["id"], 9, "{r}");
        assert_eq!(r["error"]["code"], -32001, "{r}");
        let report = c.join().await;
        assert_eq!(report.ended_by, EndedBy::EndOfInput);
        assert!(c.lines.recv().await.is_none(), "nothing else");
    })
    .await;
}

#[tokio::test]
async fn output_closed_ends_the_run() {
    within(async {
        let mock = Mock::new(Cfg::default());
        let server = mock.serve().await;
        let proxy = Proxy::with_client(&server.url, opts(), test_http(), None);
        let (mut input, proxy_in) = tokio::io::duplex(1024);
        let (proxy_out, output) = tokio::io::duplex(1024);
        drop(output);
        let task =
            tokio::spawn(
                async move { proxy.run(proxy_in, proxy_out, std::future::pending()).await },
            );
        input.write_all(b"garbage\n").await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(report.ended_by, EndedBy::OutputClosed);
    })
    .await;
}
