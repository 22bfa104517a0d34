//! Authorization: requests held on a refusal, authorized and replayed; refresh,
//! step-up, failures.

use super::*;

#[tokio::test]
async fn valid_stored_token_means_one_http_request_before_the_first_reply() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("good".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("good"), &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.send_json(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}})).await;
        let r = c.recv().await;
        assert!(r.get("result").is_some());
        assert_eq!(server.seen().len(), 1, "exactly one HTTP request before the first reply");
        assert_eq!(server.seen()[0].header("authorization").as_deref(), Some("Bearer good"));
        assert!(auth.refusals().is_empty());
        c.finish().await;
    })
    .await;
}

on_each_client!(
    unauthorized_request_is_held_authorized_and_replayed,
    unauthorized_request_is_held_authorized_and_replayed_on
);
async fn unauthorized_request_is_held_authorized_and_replayed_on(backend: Backend) {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("fresh".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(None, &["fresh"]);
        let mut c = Client::start_on(backend, &server.url, opts(), Some(auth.clone()));
        let init = c.initialize().await;
        assert!(init.get("result").is_some(), "{init}");
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "ok"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "ok");
        let refusals = auth.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].status, 401);
        assert!(!refusals[0].sent_credentials);
        assert_eq!(refusals[0].url, server.url);
        let inits = server.posts("initialize");
        assert_eq!(inits.len(), 2, "the refused initialize was replayed");
        assert_eq!(inits[0].body, inits[1].body);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn token_expiry_mid_session_refreshes_and_keeps_the_session() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("t1".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("t1"), &["t2"]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.initialize().await;
        c.request(json!(1), "tools/call", json!({"name": "echo", "arguments": {"text": "a"}})).await;
        // t1 expires at the server.
        mock.cfg.lock().unwrap().token = Some("t2".into());
        // Several requests in flight at once hit the expiry.
        for i in 2..5 {
            c.send_json(json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": format!("m{i}")}}})).await;
        }
        let mut got = HashMap::new();
        for _ in 2..5 {
            let r = c.recv().await;
            got.insert(r["id"].as_i64().unwrap(), r["result"]["content"][0]["text"].as_str().unwrap().to_string());
        }
        assert_eq!(got.len(), 3);
        assert!(auth.refusals().iter().all(|r| r.sent_credentials));
        let calls = server.posts("tools/call");
        assert!(calls.iter().all(|r| r.header("mcp-session-id").as_deref() == Some("session-1")), "same session throughout");
        assert_eq!(server.posts("initialize").len(), 1);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn insufficient_scope_triggers_step_up_and_replay() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("user".into()),
            admin_token: Some("admin".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(Some("user"), &["admin"]);
        let mut c = Client::start(&server.url, opts(), Some(auth.clone()));
        c.initialize().await;
        let r = c
            .request(
                json!(1),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "root"}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], "root");
        let refusals = auth.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].status, 403);
        assert!(refusals[0].www_authenticate[0].contains("insufficient_scope"));
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn failed_authorization_is_an_error_response_and_the_proxy_goes_on() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("never".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let auth = FakeAuth::new(None, &[]);
        let mut c = Client::start(&server.url, opts(), Some(auth));
        let e = c.request(json!(0), "initialize", json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}})).await;
        assert_eq!(e["id"], 0);
        assert!(e["error"]["message"].as_str().unwrap().contains("the user closed the browser"), "{e}");
        c.send("not json").await;
        assert_eq!(c.recv().await["error"]["code"], -32700);
        c.finish().await;
    })
    .await;
}

#[tokio::test]
async fn without_authorization_a_401_says_so() {
    within(async {
        let mock = Mock::new(Cfg {
            token: Some("x".into()),
            ..Default::default()
        });
        let server = mock.serve().await;
        let mut c = Client::start(&server.url, opts(), None);
        let e = c.request(json!(0), "initialize", json!({})).await;
        assert_eq!(e["error"]["data"]["httpStatus"], 401);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("authorization")
        );
        c.finish().await;
    })
    .await;
}
