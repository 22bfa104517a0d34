//! The command line without any server: help, completions, settings errors, an empty
//! store. (The commands against real servers are in `commands.rs`.)

use std::process::{Command, Output};

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(args)
        .env("MCP_OAUTH_HOME", home.path())
        .env("MCP_OAUTH_CONFIG", home.path().join("absent.toml"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("MCP_OAUTH_PROFILE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run mcp-oauth")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_commands_with_examples() {
    let (out, _) = text(&run(&["--help"], &[]));
    for c in [
        "login",
        "token",
        "status",
        "logout",
        "doctor",
        "completions",
        "call",
    ] {
        assert!(out.contains(&format!("  {c}")), "--help lacks {c}:\n{out}");
    }
    assert!(out.contains("Examples:"), "{out}");
    for c in [
        "login",
        "token",
        "status",
        "logout",
        "doctor",
        "completions",
    ] {
        let (out, _) = text(&run(&[c, "--help"], &[]));
        assert!(
            out.contains("Examples:"),
            "{c} --help has no examples:\n{out}"
        );
    }
}

#[test]
fn escape_hatches_are_named_in_help() {
    let (out, _) = text(&run(&["login", "--help"], &[]));
    // Every setting that weakens a check says so.
    let weak = out.matches("WEAKENS SECURITY").count();
    assert_eq!(
        weak, 3,
        "--no-resource, --allow-missing-pkce-metadata and --allow-private-networks:\n{out}"
    );
    for flag in [
        "--no-browser",
        "--device",
        "--client-secret-env",
        "--client-secret-file",
        "--authorize-param",
        "--as-metadata-url",
        "--redirect-uri",
        "--redirect-port",
        "--profile",
        "--authorization-env",
        "--dpop",
    ] {
        assert!(out.contains(flag), "login --help lacks {flag}");
    }
    assert!(
        !out.contains("--client-secret "),
        "a secret must never be a flag value"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = run(&["completions", shell], &[]);
        let (out, _) = text(&o);
        assert!(
            o.status.success() && out.contains("mcp-oauth") && out.contains("logout"),
            "{shell}"
        );
    }
}

#[test]
fn status_of_an_empty_store() {
    let o = run(&["status", "--json"], &[]);
    assert!(o.status.success());
    assert_eq!(text(&o).0.trim(), "[]");
    let (out, _) = text(&run(&["status"], &[]));
    assert!(out.contains("No stored credentials"), "{out}");
    let o = run(&["logout", "--all"], &[]);
    assert!(o.status.success(), "logout of nothing is fine");
}

#[test]
fn token_without_credentials_exits_3_and_opens_nothing() {
    // An unroutable server: `token` must not even try it without --login.
    let o = run(
        &["token", "http://127.0.0.1:9/mcp"],
        &[("BROWSER", "/bin/false")],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("mcp-oauth login http://127.0.0.1:9/mcp"),
        "{err}"
    );
}

#[test]
fn configuration_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[servers.\"http://127.0.0.1:9/mcp\"]\nscopes = 3\n").unwrap();
    let o = run(
        &["token", "http://127.0.0.1:9/mcp"],
        &[("MCP_OAUTH_CONFIG", cfg.to_str().unwrap())],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("config.toml") && err.contains("scopes"),
        "{err}"
    );
    // --config names a file that must exist.
    let o = run(
        &[
            "token",
            "http://127.0.0.1:9/mcp",
            "--config",
            "/nonexistent/x.toml",
        ],
        &[],
    );
    assert!(text(&o).1.contains("/nonexistent/x.toml"));
    // A secret source without a client id is refused.
    let o = run(
        &[
            "token",
            "http://127.0.0.1:9/mcp",
            "--client-secret-env",
            "X",
        ],
        &[],
    );
    assert!(text(&o).1.contains("client id"), "{}", text(&o).1);
}

#[test]
fn static_header_from_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[servers.\"https://mcp.example.com/mcp\"]\nauthorization_env = \"MY_MCP_TOKEN\"\n",
    )
    .unwrap();
    let envs = [
        ("MCP_OAUTH_CONFIG", cfg.to_str().unwrap()),
        ("MY_MCP_TOKEN", "Token abc"),
    ];
    let o = run(
        &["token", "--header", "https://mcp.example.com/mcp/"],
        &envs,
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out.trim(),
        "Authorization: Token abc",
        "the URL matches without its trailing slash"
    );
    assert!(
        err.contains("OAuth is off"),
        "the static header is logged: {err}"
    );
    let o = run(&["login", "https://mcp.example.com/mcp"], &envs);
    assert!(!o.status.success() && text(&o).1.contains("static Authorization header"));
}

#[test]
fn doctor_of_an_unreachable_server_fails_with_a_reason() {
    let o = run(&["doctor", "http://127.0.0.1:9/mcp"], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("could not be reached"), "{out}");
    assert!(err.contains("MUST"), "{err}");
}
