//! Terminal escape sequences from the network never reach the terminal raw (issue 17,
//! item 7): an authorization server whose `error_description` retitles the window
//! (`ESC ] 0 ; pwned BEL`) and clears the screen (`ESC [ 2 J`). A hand-written server
//! (MCP server, metadata and authorization server on one origin) refuses the client
//! registration with that description; `login` must say so with the controls escaped.
#![cfg(unix)]

use mcp_oauth_testkit::fault_server as raw;
mod support;

use raw::{Action, OnAccept, RawServer, json_response, response, response_with};
use serde_json::json;
use std::process::Command;

const HOSTILE: &str = "client refused\u{1b}]0;pwned\u{7}\u{1b}[2J, try again";

fn handle(base: &str, req: &raw::RawReq) -> Action {
    let prm = format!("{base}/.well-known/oauth-protected-resource/mcp");
    Action::Respond(match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/mcp") | ("GET", "/mcp") => response_with(
            401,
            "text/plain",
            &[(
                "www-authenticate",
                &format!(r#"Bearer resource_metadata="{prm}", scope="mcp""#),
            )],
            b"",
        ),
        ("GET", "/.well-known/oauth-protected-resource/mcp") => json_response(
            200,
            &json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
        ),
        ("GET", "/.well-known/oauth-authorization-server") => json_response(
            200,
            &json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "registration_endpoint": format!("{base}/register"),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }),
        ),
        ("POST", "/register") => json_response(
            400,
            &json!({"error": "invalid_client_metadata", "error_description": HOSTILE}),
        ),
        _ => response(404, "text/plain", b"not found"),
    })
}

#[test]
fn an_error_description_cannot_drive_the_terminal() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(RawServer::start(OnAccept::Serve, handle));
    let home = tempfile::tempdir().unwrap();
    let url = format!("{}/mcp", server.base);
    for verbose in [&[][..], &["-v"]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        support::clean_env(&mut cmd);
        cmd.args(verbose)
            .args(["login", &url])
            .env("MCP_OAUTH_HOME", home.path().join("store"))
            .env("MCP_OAUTH_CONFIG", home.path().join("absent.toml"))
            .env("BROWSER", "/bin/false")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG");
        let o = cmd.output().expect("run mcp-oauth");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        // The message arrives, its controls shown as escapes.
        assert!(
            err.contains(r"client refused\x1b]0;pwned\x07\x1b[2J, try again"),
            "{verbose:?}: {err}"
        );
        for raw in [b'\x1b', b'\x07'] {
            assert!(
                !o.stderr.contains(&raw) && !o.stdout.contains(&raw),
                "{verbose:?}: a raw {raw:#x} reached the terminal: {err}"
            );
        }
    }
    assert!(!server.requests_to("/register").is_empty());
}
