//! Pre-registered client credentials through the `mcp-oauth` binary (issue 17, items 1
//! and 6), against loopback mock servers (the testkit's): an MCP server (which is also the
//! authorization server of the 2025-03-26 fallback when it serves no protected resource
//! metadata) and two authorization servers, all three taking the same client.
//!
//! - A configured secret is read from its source at each use and never written to the
//!   store: a refresh after the secret file changed sends the new secret.
//! - A configured secret goes only to the issuer the client is pinned to: the first one
//!   it was used with, or the one `--client-issuer` names. A server whose metadata later
//!   points at another authorization server (or drops its metadata, making its own origin
//!   the authorization server) gets a refusal that names both issuers, and the other
//!   authorization server receives nothing.
#![cfg(unix)]

use mcp_oauth::store::{CredentialKey, CredentialStore, FileStore};
use mcp_oauth_testkit::cli::{self, Sandbox, repo_root};
use mcp_oauth_testkit::mock_server::{
    self as mock, MockServer, RecordedRequest, Reply, json, not_found, redirect, with_header,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const CLIENT_ID: &str = "pre-registered-client";
const SECRET_1: &str = "cs-CONFIGURED-one-7d21";
const SECRET_2: &str = "cs-CONFIGURED-two-94be";
const SECRET_ENV: &str = "TEST_MCP_CLIENT_SECRET";

/// Which server plays which part.
const AS_0: usize = 0;
const AS_1: usize = 1;
/// The MCP server, as the authorization server of the 2025-03-26 fallback.
const MCP: usize = 2;

/// What the protected resource metadata names.
#[derive(Clone, Copy)]
enum Prm {
    /// This authorization server.
    As(usize),
    /// No metadata: the MCP origin is the authorization server (2025-03-26 fallback).
    Absent,
}

/// A request to a token endpoint.
#[derive(Debug, Clone)]
struct TokenCall {
    server: usize,
    grant_type: String,
    authorization: Option<String>,
}

struct State {
    bases: Vec<String>,
    prm: Prm,
    /// The secret each server accepts.
    accepts: [String; 3],
    token_calls: Vec<TokenCall>,
    /// Every request each server received.
    seen: [Vec<RecordedRequest>; 3],
    next: u32,
}

fn basic(secret: &str) -> String {
    mcp_oauth::token::basic_auth_value(CLIENT_ID, secret)
}

fn reply(status: u16, v: Value) -> Reply {
    json(status, v)
}

/// The authorization server part of server `me`.
fn authorization_server(st: &mut State, me: usize, base: &str, req: &RecordedRequest) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/oauth-authorization-server") => reply(
            200,
            json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "authorization_response_iss_parameter_supported": true,
            }),
        ),
        ("GET", "/authorize") => {
            let q = req.query_map();
            let iss: String = url::form_urlencoded::byte_serialize(base.as_bytes()).collect();
            redirect(&format!(
                "{}?code=code-{me}&state={}&iss={iss}",
                q["redirect_uri"], q["state"]
            ))
        }
        ("POST", "/token") => {
            let form = req.form();
            let call = TokenCall {
                server: me,
                grant_type: form.get("grant_type").cloned().unwrap_or_default(),
                authorization: req.header("authorization").map(str::to_string),
            };
            st.token_calls.push(call.clone());
            if call.authorization.as_deref() != Some(basic(&st.accepts[me]).as_str()) {
                return reply(401, json!({"error": "invalid_client"}));
            }
            st.next += 1;
            let n = st.next;
            let mut body = json!({"access_token": format!("at-{me}-{n}"), "token_type": "Bearer", "expires_in": 3600});
            if call.grant_type != "client_credentials" {
                body["refresh_token"] = json!(format!("rt-{me}-{n}"));
            }
            reply(200, body)
        }
        _ => not_found(),
    }
}

fn handle(state: &Mutex<State>, me: usize, base: &str, req: &RecordedRequest) -> Reply {
    let mut st = state.lock().unwrap();
    st.seen[me].push(req.clone());
    if me != MCP {
        return authorization_server(&mut st, me, base, req);
    }
    match (req.method.as_str(), req.path.as_str(), st.prm) {
        ("POST", "/mcp", prm) => {
            let challenge = match prm {
                Prm::As(_) => format!(
                    r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
                ),
                Prm::Absent => "Bearer".to_string(),
            };
            with_header(
                mock::text(401, "application/json", "{}"),
                "www-authenticate",
                &challenge,
            )
        }
        ("GET", "/.well-known/oauth-protected-resource/mcp", Prm::As(i)) => reply(
            200,
            json!({"resource": format!("{base}/mcp"), "authorization_servers": [st.bases[i]]}),
        ),
        ("GET", p, Prm::As(_)) if p.starts_with("/.well-known/") => not_found(),
        ("GET", "/.well-known/oauth-protected-resource/mcp", Prm::Absent) => not_found(),
        _ => authorization_server(&mut st, me, base, req),
    }
}

struct World {
    /// Dropped first: the servers stop before their state and the directory go.
    servers: Vec<MockServer>,
    state: Arc<Mutex<State>>,
    url: String,
    tmp: tempfile::TempDir,
}

impl World {
    fn start(prm: Prm) -> World {
        let state = Arc::new(Mutex::new(State {
            bases: Vec::new(),
            prm,
            accepts: [SECRET_1.into(), SECRET_1.into(), SECRET_1.into()],
            token_calls: Vec::new(),
            seen: Default::default(),
            next: 0,
        }));
        let servers: Vec<MockServer> = (0..3)
            .map(|me| {
                let s = state.clone();
                MockServer::start(move |base, req| {
                    let reply = handle(&s, me, &base, &req);
                    async move { reply }
                })
            })
            .collect();
        state.lock().unwrap().bases = servers.iter().map(|s| s.base().to_string()).collect();
        let url = servers[MCP].url("/mcp");
        let tmp = cli::temp_dir("mcp-oauth-client-secrets.");
        World {
            servers,
            state,
            url,
            tmp,
        }
    }

    fn base(&self, i: usize) -> String {
        self.servers[i].base().to_string()
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn run(&self, args: &[&str]) -> Output {
        let sandbox = Sandbox {
            home: self.home(),
            config: self.tmp.path().join("absent.toml"),
            browser: repo_root().join("tests/browser.sh"),
            browser_log: self.tmp.path().join("browser.log"),
        };
        sandbox
            .command(env!("CARGO_BIN_EXE_mcp-oauth"), args)
            .env(SECRET_ENV, SECRET_1)
            .stdin(Stdio::null())
            .output()
            .expect("run mcp-oauth")
    }

    /// Makes the stored access token expired (as a clock moving on would).
    fn expire(&self) {
        let store = FileStore::new(self.home());
        let key = CredentialKey::new(self.url.clone());
        let mut rec = store.load(&key).unwrap().expect("a stored credential");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        rec.tokens.expires_at = Some(now - 3600);
        store.save(&key, &rec).unwrap();
    }

    /// Everything under the store directory, as text.
    fn store_text(&self) -> String {
        fn walk(dir: &Path, out: &mut String) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        let mut out = String::new();
        walk(&self.home(), &mut out);
        out
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Item 6: the secret of a pre-registered client is read from its file at each use and
/// is not kept in the store, so rotating it takes effect at the next refresh.
#[test]
fn a_rotated_client_secret_is_read_at_the_next_refresh() {
    let w = World::start(Prm::As(AS_0));
    let secret_file = w.tmp.path().join("client-secret");
    std::fs::write(&secret_file, format!("{SECRET_1}\n")).unwrap();
    let file = secret_file.to_str().unwrap();
    let client = ["--client-id", CLIENT_ID, "--client-secret-file", file];

    let o = w.run(&[&["login", &w.url][..], &client].concat());
    assert!(o.status.success(), "login: {}", text(&o));

    // The secret is rotated at the authorization server and in the file.
    std::fs::write(&secret_file, format!("{SECRET_2}\n")).unwrap();
    w.with(|s| s.accepts[AS_0] = SECRET_2.into());
    w.expire();
    let o = w.run(&[&["token", &w.url][..], &client].concat());
    let refreshes: Vec<TokenCall> = w.with(|s| {
        s.token_calls
            .iter()
            .filter(|c| c.grant_type == "refresh_token")
            .cloned()
            .collect()
    });
    assert_eq!(
        refreshes.last().and_then(|c| c.authorization.clone()),
        Some(basic(SECRET_2)),
        "the refresh must authenticate with the secret now in the file: {refreshes:?}\n{}",
        text(&o)
    );
    assert!(o.status.success(), "token: {}", text(&o));
    let store = w.store_text();
    assert!(store.contains(CLIENT_ID), "a credential is stored: {store}");
    assert!(
        !store.contains(SECRET_1) && !store.contains(SECRET_2),
        "the configured secret was written to the store:\n{store}"
    );
}
/// Item 1: a configured secret goes only to the issuer its client is pinned to.
#[test]
fn a_configured_secret_goes_only_to_the_issuer_it_is_pinned_to() {
    let w = World::start(Prm::As(AS_0));
    let client = [
        "--client-id",
        CLIENT_ID,
        "--client-secret-env",
        SECRET_ENV,
        "--client-credentials",
    ];
    let login = |extra: &[&str]| w.run(&[&["login", &w.url][..], &client, extra].concat());

    // First use: the client is pinned to the issuer it is used with.
    let o = login(&[]);
    assert!(o.status.success(), "first login: {}", text(&o));
    assert!(
        w.with(|s| s.token_calls.iter().any(|c| c.server == AS_0)),
        "the first login used AS 0"
    );

    // The server now names another authorization server; the user logs out and in again.
    // The pin outlives the logout.
    w.with(|s| s.prm = Prm::As(AS_1));
    let o = w.run(&["logout", &w.url, "--no-revoke"]);
    assert!(o.status.success(), "logout: {}", text(&o));
    for (what, prm, other) in [
        ("another authorization server", Prm::As(AS_1), AS_1),
        (
            "the 2025-03-26 fallback to the MCP origin",
            Prm::Absent,
            MCP,
        ),
    ] {
        w.with(|s| {
            s.prm = prm;
            s.token_calls.clear();
            s.seen[other].clear();
        });
        let o = login(&[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            w.with(|s| s.token_calls.clone())
                .iter()
                .filter(|c| c.server == other)
                .count(),
            0,
            "{what}: the secret went to {}\n{}",
            w.base(other),
            text(&o)
        );
        assert!(!o.status.success(), "{what}: {}", text(&o));
        assert!(
            err.contains(&w.base(AS_0)) && err.contains(&w.base(other)),
            "{what}: the refusal names both issuers: {err}"
        );
        assert!(
            err.contains("--client-issuer"),
            "{what}: the refusal names the flag: {err}"
        );
        // Nothing that carries the secret reached the other server.
        for r in w.with(|s| s.seen[other].clone()) {
            assert!(
                r.header("authorization").is_none() && !r.body.contains(SECRET_1),
                "{what}: {} got {} {} with credentials",
                w.base(other),
                r.method,
                r.path
            );
        }
    }

    // The user moves the client on purpose: --client-issuer names the issuer.
    w.with(|s| s.prm = Prm::As(AS_1));
    let issuer_1 = w.base(AS_1);
    let o = login(&["--client-issuer", &issuer_1]);
    assert!(o.status.success(), "with --client-issuer: {}", text(&o));
    assert!(w.with(|s| s.token_calls.iter().any(|c| c.server == AS_1)));
    // That choice is the pin from now on: AS 1 without the flag, and AS 0 refused.
    let o = login(&["--force"]);
    assert!(o.status.success(), "pinned to AS 1: {}", text(&o));
    w.with(|s| {
        s.prm = Prm::As(AS_0);
        s.token_calls.clear();
    });
    let o = login(&["--force"]);
    assert!(
        !o.status.success(),
        "AS 0 is no longer the pin: {}",
        text(&o)
    );
    assert!(w.with(|s| s.token_calls.is_empty()));
}
