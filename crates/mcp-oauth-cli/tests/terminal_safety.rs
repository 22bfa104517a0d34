//! Terminal escape sequences from the network never reach the terminal raw (issue 17,
//! item 7): an authorization server whose `error_description` retitles the window
//! (`ESC ] 0 ; pwned BEL`) and clears the screen (`ESC [ 2 J`). A mock server
//! (MCP server, metadata and authorization server on one origin) refuses the client
//! registration with that description; `login` must say so with the controls escaped.
#![cfg(unix)]

use mcp_oauth_testkit::cli::clean_env;
use mcp_oauth_testkit::mock_server::{MockServer, Reply, Routes, json, text, with_header};
use serde_json::json;
use std::process::Command;

const HOSTILE: &str = "client refused\u{1b}]0;pwned\u{7}\u{1b}[2J, try again";

/// The MCP endpoint's challenge, pointing at the metadata on the same origin.
async fn challenge(base: String) -> Reply {
    let prm = format!("{base}/.well-known/oauth-protected-resource/mcp");
    with_header(
        text(401, "text/plain", ""),
        "www-authenticate",
        &format!(r#"Bearer resource_metadata="{prm}", scope="mcp""#),
    )
}

fn server() -> MockServer {
    MockServer::serve_handler(
        Routes::new()
            .post("/mcp", |base, _| challenge(base))
            .get("/mcp", |base, _| challenge(base))
            .get(
                "/.well-known/oauth-protected-resource/mcp",
                |base, _| async move {
                    json(
                        200,
                        json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}),
                    )
                },
            )
            .get(
                "/.well-known/oauth-authorization-server",
                |base, _| async move {
                    json(
                        200,
                        json!({
                            "issuer": base,
                            "authorization_endpoint": format!("{base}/authorize"),
                            "token_endpoint": format!("{base}/token"),
                            "registration_endpoint": format!("{base}/register"),
                            "response_types_supported": ["code"],
                            "code_challenge_methods_supported": ["S256"],
                        }),
                    )
                },
            )
            .post("/register", |_, _| async {
                json(
                    400,
                    json!({"error": "invalid_client_metadata", "error_description": HOSTILE}),
                )
            }),
    )
}

#[test]
fn an_error_description_cannot_drive_the_terminal() {
    let server = server();
    let home = tempfile::tempdir().unwrap();
    let url = server.url("/mcp");
    for verbose in [&[][..], &["-v"]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        clean_env(&mut cmd);
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
