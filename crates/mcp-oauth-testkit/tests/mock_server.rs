//! The testkit's own servers and browser do what the suites rely on.

use mcp_oauth::authorize::browser::Browser;
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::fault_server::{SilentServer, closed_port_base};
use mcp_oauth_testkit::mock_server::{
    MockServer, Routes, empty, json, not_found, redirect, with_header,
};
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_request_is_recorded_whole() {
    let server =
        MockServer::start(
            |base, req| async move { json(200, json!({"base": base, "path": req.path})) },
        );
    let reply: serde_json::Value = client()
        .post(server.url("/token?x=1&y=two"))
        .header("x-test", "yes")
        .body("grant_type=refresh_token&scope=a%20b")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply, json!({"base": server.base(), "path": "/token"}));
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/token");
    assert_eq!(req.query_map()["y"], "two");
    assert_eq!(req.header("x-test"), Some("yes"));
    assert_eq!(req.form()["scope"], "a b");
    assert_eq!(server.paths(), ["/token"]);
    assert_eq!(server.requests_to("/token").len(), 1);
    assert!(server.requests_to("/other").is_empty());
}

#[tokio::test]
async fn a_route_table_answers_by_method_and_path() {
    let server = MockServer::serve_handler(
        Routes::new()
            .get("/a", |_, _| async { json(200, json!("a")) })
            .post("/a", |_, _| async {
                with_header(empty(201), "x-made", "1")
            })
            .get(
                "/go",
                |base, _| async move { redirect(&format!("{base}/a")) },
            ),
    );
    let c = client();
    let get = c.get(server.url("/a")).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let post = c.post(server.url("/a")).send().await.unwrap();
    assert_eq!(
        (
            post.status().as_u16(),
            post.headers()["x-made"].to_str().unwrap()
        ),
        (201, "1")
    );
    let go = c.get(server.url("/go")).send().await.unwrap();
    assert_eq!(go.headers()["location"], server.url("/a").as_str());
    assert_eq!(
        c.delete(server.url("/a")).send().await.unwrap().status(),
        404
    );
    assert_eq!(c.get(server.url("/b")).send().await.unwrap().status(), 404);
    assert_eq!(server.log().len(), 5, "unmatched requests are recorded too");

    let with_fallback = MockServer::serve_handler(
        Routes::new().fallback(|_, _| async { json(418, json!("teapot")) }),
    );
    let r = c.get(with_fallback.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 418);
}

#[tokio::test]
async fn a_stopped_server_refuses_and_a_restarted_one_serves_on_the_same_port() {
    let mut server = MockServer::start(|_, _| async { not_found() });
    let (base, port) = (server.base().to_string(), server.port());
    let c = client();
    c.get(server.url("/before")).send().await.unwrap();

    server.stop();
    assert!(!server.is_running());
    // The kept-alive connection was closed with the server; a new one is refused.
    let closed = c
        .get(format!("{base}/while-down"))
        .send()
        .await
        .unwrap_err();
    assert!(!closed.is_timeout(), "{closed:?}");
    let refused = client()
        .get(format!("{base}/while-down"))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    let fresh = client();
    assert_eq!(
        fresh
            .get(server.url("/after"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        server.paths(),
        ["/before", "/after"],
        "the log outlives a stop"
    );

    let log = server.log();
    drop(server);
    assert_eq!(log.len(), 2, "and the server");
}

/// A plain `#[test]` (no runtime of its own) gets the same server: what the CLI tests
/// use when they drive the binary.
#[test]
fn serves_a_test_without_a_runtime() {
    let server = MockServer::start(|_, req| async move { json(200, json!({"got": req.body})) });
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    write!(
        stream,
        "POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"got":"hi"}"#), "{answer}");
    let seen = server.log().wait_for(1, Duration::from_secs(5)).unwrap();
    assert_eq!(seen[0].body, "hi");
    assert!(
        server
            .log()
            .wait_for(2, Duration::from_millis(50))
            .is_none()
    );
}

#[tokio::test]
async fn the_following_browser_follows_to_the_redirect_uri_or_stays_idle() {
    let server = MockServer::serve_handler(
        Routes::new()
            .get("/authorize", |base, _| async move {
                redirect(&format!("{base}/callback"))
            })
            .get("/callback", |_, _| async { json(200, json!("done")) }),
    );
    let browser = FollowingBrowser::new();
    browser.open(&server.url("/authorize")).unwrap();
    let seen = tokio::task::spawn_blocking({
        let log = server.log();
        move || log.wait_for(2, Duration::from_secs(10))
    })
    .await
    .unwrap()
    .expect("the browser reached the callback");
    assert_eq!(seen[1].path, "/callback");
    assert_eq!(browser.opened(), 1);

    let idle = FollowingBrowser::idle();
    idle.open(&server.url("/authorize")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((idle.opened(), server.log().len()), (1, 2));
}

#[test]
fn a_silent_server_accepts_and_never_answers_and_a_closed_port_refuses() {
    let silent = SilentServer::start();
    let port: u16 = silent.base().rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );

    let closed = closed_port_base();
    let port: u16 = closed.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
