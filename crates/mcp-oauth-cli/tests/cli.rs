//! The command line without any server: help, completions, settings errors, an empty
//! store. (The commands against real servers are in `commands.rs`.)

use mcp_oauth_testkit::mock_server::{MockServer, json};
use std::process::{Command, Output};

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(args)
        .env("MCP_OAUTH_HOME", home.path())
        .env("MCP_OAUTH_CONFIG", home.path().join("absent.toml"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("MCP_OAUTH_PROFILE")
        .env_remove("MCP_OAUTH_STORE")
        .env_remove("MCP_OAUTH_USER");
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
        weak, 5,
        "--no-resource, --allow-missing-pkce-metadata, --allow-private-networks, --allow-http \
         and --trust-proxy-dns:\n{out}"
    );
    for flag in [
        "--no-browser",
        "--device",
        "--client-secret-env",
        "--client-secret-file",
        "--client-issuer",
        "--trust-proxy-dns",
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

/// `status` names the store in use and why; a store that is neither `file` nor a
/// PostgreSQL URL is refused, without echoing the URL (it may hold a password).
#[test]
fn the_store_is_named_and_chosen() {
    let (out, _) = text(&run(&["status"], &[]));
    // MCP_OAUTH_HOME (set by these tests) names a directory: the file store, said why.
    assert!(
        out.contains("store: file store ") && out.contains("MCP_OAUTH_HOME names the directory"),
        "{out}"
    );
    let (out, _) = text(&run(&["status", "--store", "file"], &[]));
    assert!(
        out.contains("(chosen by --store or MCP_OAUTH_STORE)"),
        "{out}"
    );
    for o in [
        run(&["status", "--store", "mysql://u:hunter2@db/x"], &[]),
        run(
            &["token", "https://mcp.example.com/mcp"],
            &[("MCP_OAUTH_STORE", "mysql://u:hunter2@db/x")],
        ),
    ] {
        let (_, err) = text(&o);
        assert!(!o.status.success());
        assert!(
            err.contains("expected `file`, `keychain` or a postgres://"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
    // A vault needs its key before anything is read.
    let o = run(
        &["status", "--store", "postgres://127.0.0.1:1/vault"],
        &[("MCP_OAUTH_VAULT_KEY", "")],
    );
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("MCP_OAUTH_VAULT_KEY"),
        "{err}"
    );
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

/// A P-256 key made for this test only (`openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256`); it authenticates nothing anywhere.
const TEST_ONLY_P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCaMDjQWXiKf+WTq7
geKQyInmkaifAsGKv2zvCS6cO5uhRANCAAQmEK2fQUcs5sqrdplt/lyudKp210Ww
xyv4PsV/NjPyWEznLm+4RBF3XKEXmvl/dD4IG/tQ6UXy+ZZKC9L+zK9b
-----END PRIVATE KEY-----
";

/// A revocation endpoint on loopback that answers 200 `{}` to every request.
fn revocation_endpoint() -> MockServer {
    MockServer::start(|_, _| async { json(200, serde_json::json!({})) })
}

/// `logout` revokes for a client that authenticates with `private_key_jwt`, with the key
/// of the server's settings in the configuration file, or with `--private-key`.
#[test]
fn logout_revokes_for_a_private_key_jwt_client() {
    use mcp_oauth::secret::{AccessToken, RefreshToken};
    use mcp_oauth::store::{
        ClientAuthMethod, ClientRegistration, CredentialKey, CredentialRecord, CredentialStore,
        FileStore, RegistrationKind, TokenSet,
    };
    let endpoint = revocation_endpoint();
    let base = endpoint.base().to_string();
    let mut received = 0;
    let server_url = format!("{base}/mcp");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, TEST_ONLY_P256_KEY).unwrap();
    let record = CredentialRecord {
        server_url: server_url.clone(),
        resource: server_url.clone(),
        issuer: base.clone(),
        token_endpoint: format!("{base}/token"),
        revocation_endpoint: Some(format!("{base}/revoke")),
        resource_indicator: Some(server_url.clone()),
        client: ClientRegistration {
            issuer: base.clone(),
            redirect_uri: String::new(),
            client_id: "svc".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::PrivateKeyJwt,
            kind: RegistrationKind::PreRegistered,
            registered_at: 0,
        },
        tokens: TokenSet {
            access_token: AccessToken::new("at-1"),
            token_type: "Bearer".into(),
            refresh_token: Some(RefreshToken::new("rt-1")),
            expires_at: None,
            scope: None,
            requested_scope: None,
            obtained_at: 0,
        },
        grant: "client_credentials".into(),
        dpop_key: None,
    };
    let with_file = dir.path().join("config.toml");
    std::fs::write(
        &with_file,
        format!(
            "[servers.\"{server_url}\"]\nclient_id = \"svc\"\nprivate_key_file = \"{}\"\n",
            key_file.display()
        ),
    )
    .unwrap();
    let key_flag = key_file.to_str().unwrap();
    for (config, flags) in [
        (with_file.clone(), vec![]),
        (
            dir.path().join("absent.toml"),
            vec!["--private-key", key_flag],
        ),
    ] {
        FileStore::new(home.clone())
            .save(&CredentialKey::new(&server_url), &record)
            .unwrap();
        let mut args = vec!["logout", server_url.as_str()];
        args.extend(&flags);
        let o = run(
            &args,
            &[
                ("MCP_OAUTH_HOME", home.to_str().unwrap()),
                ("MCP_OAUTH_CONFIG", config.to_str().unwrap()),
            ],
        );
        let (out, err) = text(&o);
        assert!(o.status.success(), "{flags:?}\n{out}\n{err}");
        assert!(out.contains("refresh token revoked at"), "{out}");
        for _ in ["refresh_token", "access_token"] {
            received += 1;
            let body = &endpoint
                .log()
                .wait_for(received, std::time::Duration::from_secs(5))
                .expect("a revocation request")[received - 1]
                .body;
            assert!(
                body.contains("client_id=svc")
                    && body.contains(
                        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                    )
                    && body.contains("client_assertion=ey"),
                "{flags:?}: {body}"
            );
        }
    }
}
