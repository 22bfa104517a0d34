//! The `mcp-oauth proxy` binary as a host runs it: stdin/stdout pipes, flags, signals.
//! Against a minimal session-based MCP server on 127.0.0.1 (the testkit's mock server);
//! no external dependencies. (The relay itself is tested in the library, crates/mcp-oauth/
//! src/proxy/tests.rs; real SDKs and servers in proxy_interop.rs.)
#![cfg(unix)]

use mcp_oauth_testkit::cli::{PROXY_VARS, wait_or_kill};
use mcp_oauth_testkit::fault_server::SilentServer;
use mcp_oauth_testkit::mock_server::{
    MockServer, RecordedRequest, Reply, empty, json, with_header,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A session-based MCP server: initialize (session "s1"), 202 for notifications,
/// `tools/call` echoes `arguments.text`, DELETE ends the session.
fn server() -> MockServer {
    MockServer::start(|_, req| async move { mcp_answer(&req) })
}

fn mcp_answer(req: &RecordedRequest) -> Reply {
    let body = req.json();
    match req.method.as_str() {
        "GET" => empty(405),
        "DELETE" => empty(200),
        _ if body["method"] == "initialize" => with_header(
            json(
                200,
                json!({"jsonrpc": "2.0", "id": body["id"], "result": {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "cli-test", "version": "1"}}}),
            ),
            "mcp-session-id",
            "s1",
        ),
        _ if body.get("id").is_none() => empty(202),
        _ if body["method"] == "tools/call" => json(
            200,
            json!({"jsonrpc": "2.0", "id": body["id"], "result": {"content": [{"type": "text", "text": body["params"]["arguments"]["text"]}]}}),
        ),
        _ => json(
            200,
            json!({"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "Method not found"}}),
        ),
    }
}

fn proxy(args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.arg("proxy")
        .args(args)
        .env(
            "MCP_OAUTH_HOME",
            std::env::temp_dir().join(format!("mcp-oauth-proxy-cli-{}", std::process::id())),
        )
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("mcp-oauth-proxy-cli-no-config"),
        )
        .env_remove("MCP_OAUTH_CONFIG")
        .env("NO_PROXY", "127.0.0.1")
        .env("PROXY_CLI_SECRET", "s3cret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd.spawn().expect("spawn mcp-oauth proxy")
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    wait_or_kill(child, limit)
        .unwrap_or_else(|| panic!("mcp-oauth proxy did not exit within {limit:?}"))
}

fn stdout_lines(child: &mut Child) -> Vec<Value> {
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    s.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {l:?}"))
        })
        .collect()
}

/// Runs the proxy with `args` and no input, expecting it to refuse to start: a failure
/// exit status and nothing on stdout. Returns what it wrote on stderr.
fn refused(args: &[&str]) -> String {
    let mut child = proxy(args);
    drop(child.stdin.take());
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(!status.success(), "{args:?} was accepted");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(stdout_lines(&mut child).is_empty(), "nothing on stdout");
    err
}

#[test]
fn relays_stdio_with_static_headers_and_ends_the_session_at_eof() {
    let server = server();
    let url = server.url("/mcp");
    let mut child = proxy(&[
        &url,
        "--no-auth",
        "--header",
        "X-Test: v=${PROXY_CLI_SECRET}",
        "--transport",
        "http",
    ]);
    {
        let mut stdin = child.stdin.take().unwrap();
        for msg in [
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).to_string(),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
            "this is not JSON".to_string(),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "via the binary"}}}).to_string(),
        ] {
            writeln!(stdin, "{msg}").unwrap();
        }
        // Closing stdin ends the run once the call is answered.
    }
    let status = wait(&mut child, Duration::from_secs(20));
    let lines = stdout_lines(&mut child);
    assert!(status.success(), "exit status {status}");
    let by_id = |id: Value| lines.iter().find(|l| l["id"] == id).cloned();
    assert_eq!(
        by_id(json!(0)).unwrap()["result"]["serverInfo"]["name"],
        "cli-test"
    );
    assert_eq!(
        by_id(json!(1)).unwrap()["result"]["content"][0]["text"],
        "via the binary"
    );
    let parse_error = lines
        .iter()
        .find(|l| l["error"]["code"] == -32700)
        .expect("a parse error for the bad line");
    assert_eq!(parse_error["id"], Value::Null);
    assert_eq!(lines.len(), 3, "{lines:?}");

    let seen = server.requests();
    let posts: Vec<&RecordedRequest> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 3);
    assert!(seen.iter().all(|s| s.header("x-test") == Some("v=s3cret")));
    assert!(
        seen.iter()
            .all(|s| !s.headers.contains_key("authorization")),
        "--no-auth sends no credentials"
    );
    assert_eq!(posts[2].header("mcp-session-id"), Some("s1"));
    let delete = seen
        .iter()
        .find(|s| s.method == "DELETE")
        .expect("DELETE at the end");
    assert_eq!(delete.header("mcp-session-id"), Some("s1"));
    assert_eq!(posts[1].json()["method"], "notifications/initialized");
}

/// The proxy grows both stdio pipes (they are the host's too, so the host sees it) so
/// that a 100 KB message crosses in one write.
#[cfg(target_os = "linux")]
#[test]
fn stdio_pipes_are_grown_for_large_messages() {
    let server = server();
    let url = server.url("/mcp");
    let mut child = proxy(&[&url, "--no-auth"]);
    let mut stdin = child.stdin.take().unwrap();
    let before = rustix::pipe::fcntl_getpipe_size(&stdin).unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("cli-test"), "{line}");
    // Answered: the proxy set up its stdio before reading the request.
    let sizes = (
        rustix::pipe::fcntl_getpipe_size(&stdin).unwrap(),
        rustix::pipe::fcntl_getpipe_size(stdout.get_ref()).unwrap(),
    );
    drop(stdin);
    assert!(wait(&mut child, Duration::from_secs(20)).success());
    assert!(
        before < 256 * 1024,
        "smaller by default (Linux: 64 KiB), {before}"
    );
    assert_eq!(sizes, (256 * 1024, 256 * 1024));
}

#[test]
fn sigterm_stops_the_proxy_and_ends_the_session() {
    let server = server();
    let url = server.url("/mcp");
    // Without the idle spin (the other tests run with the default).
    let mut child = proxy(&[&url, "--no-auth", "--idle-spin", "0"]);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("cli-test"), "{line}");
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        server.requests().iter().any(|s| s.method == "DELETE"),
        "the session was ended"
    );
    drop(stdin);
}

#[test]
fn paste_mode_is_refused_because_stdin_carries_the_protocol() {
    let server = server();
    let url = server.url("/mcp");
    let err = refused(&[&url, "--no-browser"]);
    assert!(err.contains("paste mode"), "{err}");
}

#[test]
fn bad_header_flags_are_usage_errors() {
    for bad in ["no colon here", "X-Missing: ${PROXY_CLI_UNSET_VARIABLE}"] {
        refused(&["http://127.0.0.1:9/mcp", "--no-auth", "--header", bad]);
    }
}

#[test]
fn configuration_file_headers_are_sent_and_the_command_line_overrides_them() {
    let server = server();
    let url = server.url("/mcp");
    let dir = std::env::temp_dir().join(format!("mcp-oauth-proxy-cli-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[defaults]\nheaders = {{ \"X-Everywhere\" = \"d\" }}\n\n\
             [servers.\"{url}\"]\nheaders = {{ \"X-Api-Key\" = \"${{PROXY_CLI_SECRET}}\", \"X-Tenant\" = \"from-file\" }}\n"
        ),
    )
    .unwrap();
    let mut child = proxy(&[
        &url,
        "--no-auth",
        "--config",
        config.to_str().unwrap(),
        "--header",
        "x-tenant: from-flag",
    ]);
    {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            "{}",
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        )
        .unwrap();
    }
    let status = wait(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    let lines = stdout_lines(&mut child);
    assert_eq!(lines[0]["result"]["serverInfo"]["name"], "cli-test");
    let seen = server.requests();
    let post = seen.iter().find(|s| s.method == "POST").expect("a POST");
    let h = |k: &str| post.header(k);
    assert_eq!(h("x-api-key"), Some("s3cret"), "${{VAR}} is expanded");
    assert_eq!(h("x-everywhere"), Some("d"), "[defaults] applies");
    assert_eq!(h("x-tenant"), Some("from-flag"), "the flag wins");

    // A variable that is not set is an error naming the key, before anything is sent.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[defaults]\nheaders = { \"X-Api-Key\" = \"${PROXY_CLI_UNSET_VARIABLE}\" }\n",
    )
    .unwrap();
    let err = refused(&[
        "http://127.0.0.1:9/mcp",
        "--no-auth",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert!(
        err.contains("X-Api-Key") && err.contains("PROXY_CLI_UNSET_VARIABLE"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// The two tests below talk to a `SilentServer`: it accepts connections and never answers
// (nor reads), which is what a hung server looks like from the proxy. The connections
// are held until the test ends.

fn initialize(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).to_string()
}

/// The next stdout line as JSON, or `None` when none comes within `limit`.
fn next_line_within(lines: &std::sync::mpsc::Receiver<String>, limit: Duration) -> Option<Value> {
    let line = lines.recv_timeout(limit).ok()?;
    Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
}

/// Issue 17, item 5: a request to a server that never answers ends, after
/// --request-timeout, in a JSON-RPC error for that request (code -32001, what the MCP
/// SDKs use for a request timeout), not in silence.
#[test]
fn a_server_that_never_answers_gets_a_timeout_error() {
    let hung = SilentServer::start();
    let url = hung.url("/mcp");
    let mut child = proxy(&[
        &url,
        "--no-auth",
        "--transport",
        "http",
        "--request-timeout",
        "2",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", initialize(7)).unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let reply = next_line_within(&lines, Duration::from_secs(20));
    let Some(reply) = reply else {
        let _ = child.kill();
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        panic!("no answer to the request within 20 s; stderr:\n{err}");
    };
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 s") && message.contains(&url),
        "{message}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));
    drop(stdin);
    assert!(wait(&mut child, Duration::from_secs(20)).success());
}

/// Issue 17, item 5: at end of input, a request still unanswered after the shutdown grace
/// gets a JSON-RPC error before the proxy exits (it used to exit 0 in silence).
#[test]
fn at_end_of_input_a_request_in_flight_still_gets_an_answer() {
    let hung = SilentServer::start();
    let url = hung.url("/mcp");
    let mut child = proxy(&[
        &url,
        "--no-auth",
        "--transport",
        "http",
        "--shutdown-grace",
        "1",
    ]);
    {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", initialize(3)).unwrap();
    }
    let status = wait(&mut child, Duration::from_secs(20));
    let lines = stdout_lines(&mut child);
    assert!(status.success(), "exit status {status}");
    assert_eq!(lines.len(), 1, "one answer for the one request: {lines:?}");
    assert_eq!(lines[0]["id"], 3, "{lines:?}");
    assert_eq!(lines[0]["error"]["code"], -32001, "{lines:?}");
}
