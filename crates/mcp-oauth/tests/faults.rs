//! Fault injection (issue #7): every step of the OAuth flow against servers that fail on
//! purpose, at the transport level (down, connection closed at once, hanging before or
//! after the request, one byte at a time, a body shorter than announced, endless bodies,
//! redirect loops, redirects to another origin) and at the HTTP level (5xx with a debug
//! page that echoes the request, HTML instead of JSON, truncated JSON).
//!
//! Each endpoint lives on its own loopback origin, so that one step can fail while the
//! others work:
//!
//! ```text
//! A  MCP server: protected resource metadata      C  registration endpoint
//! B  authorization server metadata, /authorize     D  token endpoint
//! E  "evil": the target of cross-origin redirects (must never be contacted)
//! ```
//!
//! Every case must end (1) in bounded time, (2) with an error that names the step,
//! (3) with the store unchanged (no credential after a failed login; the old record,
//! byte for byte, after a failed refresh) and (4) without any secret in the error. The
//! matrix is printed (run with `--nocapture` to see it).
//!
//! The servers are `mcp_oauth_testkit::fault_server`'s raw TCP servers, not the
//! testkit's mock server: hyper, under the mock server, always reads the request and
//! writes whole, well-formed responses, and these faults are precisely the ones it
//! cannot produce.

use futures_util::StreamExt;
use mcp_oauth::client::Reason;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::secret::{AccessToken, ClientSecret, RefreshToken};
use mcp_oauth::store::{
    ClientAuthMethod, ClientRegistration, CredentialRecord, CredentialStore, FileStore,
    RegistrationKind, TokenSet,
};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_testkit::browser::FollowingBrowser;
use mcp_oauth_testkit::fault_server::{self as raw, Action, OnAccept, RawReq, RawServer};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Distinctive secrets: none of them may appear in any error message.
const AT1: &str = "at-SECRET-ACCESS-1-71c4e0d2";
const AT2: &str = "at-SECRET-ACCESS-2-9d11f3a8";
const RT1: &str = "rt-SECRET-REFRESH-1-5a7b2c90";
const RT2: &str = "rt-SECRET-REFRESH-2-e8f6d01b";
const CODE: &str = "code-SECRET-AUTHZ-3c9e81f4";
const CS: &str = "cs-SECRET-CLIENT-44b2aa17";
pub const SECRETS: [&str; 6] = [AT1, AT2, RT1, RT2, CODE, CS];

/// Short, so that the hanging cases end soon; not so short that a loaded machine makes a
/// healthy server look slow.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound every case must meet (the slowest, PRM discovery, tries three URLs).
// Generous: this catches hangs, it does not measure speed (2 shared cores under CI load).
const CASE_BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Prm,
    AsMetadata,
    Registration,
    TokenExchange,
    Refresh,
}

impl StepKind {
    const ALL: [StepKind; 5] = [
        StepKind::Prm,
        StepKind::AsMetadata,
        StepKind::Registration,
        StepKind::TokenExchange,
        StepKind::Refresh,
    ];

    /// The step's name as errors print it (`mcp_oauth::Step`'s `Display`).
    fn display(self) -> &'static str {
        match self {
            StepKind::Prm => "protected resource metadata discovery",
            StepKind::AsMetadata => "authorization server metadata discovery",
            StepKind::Registration => "client registration",
            StepKind::TokenExchange => "token exchange",
            StepKind::Refresh => "token refresh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Down,
    ClosedOnAccept,
    HangOnAccept,
    HangAfterRequest,
    SlowBytes,
    Status5xx,
    Html,
    TruncatedJson,
    ShortBody,
    HugeDeclared,
    HugeStreamed,
    RedirectLoop,
    CrossOriginRedirect,
}

impl Fault {
    const ALL: [Fault; 13] = [
        Fault::Down,
        Fault::ClosedOnAccept,
        Fault::HangOnAccept,
        Fault::HangAfterRequest,
        Fault::SlowBytes,
        Fault::Status5xx,
        Fault::Html,
        Fault::TruncatedJson,
        Fault::ShortBody,
        Fault::HugeDeclared,
        Fault::HugeStreamed,
        Fault::RedirectLoop,
        Fault::CrossOriginRedirect,
    ];

    fn describe(self) -> &'static str {
        match self {
            Fault::Down => "server down (connection refused)",
            Fault::ClosedOnAccept => "connection closed right after accept",
            Fault::HangOnAccept => "hangs after accept (reads nothing)",
            Fault::HangAfterRequest => "reads the request, never answers",
            Fault::SlowBytes => "answers one byte every 50 ms",
            Fault::Status5xx => "HTTP 503 with a debug page echoing the request",
            Fault::Html => "HTML (200) instead of JSON",
            Fault::TruncatedJson => "truncated JSON (200)",
            Fault::ShortBody => "body shorter than Content-Length, then closed",
            Fault::HugeDeclared => "10 GiB body (Content-Length)",
            Fault::HugeStreamed => "endless chunked body",
            Fault::RedirectLoop => "same-origin redirect loop",
            Fault::CrossOriginRedirect => "redirect to another origin",
        }
    }

    /// A phrase the error must contain.
    fn phrase(self, step: StepKind) -> &'static str {
        match (self, step) {
            (Fault::Down, _) => "Connection refused",
            (Fault::ClosedOnAccept | Fault::ShortBody, _) => "failed",
            (Fault::HangOnAccept | Fault::HangAfterRequest | Fault::SlowBytes, _) => {
                "no answer from"
            }
            (Fault::Status5xx, _) => "503",
            // The 2025-03-26 fallback: a PRM URL that answers with a page that is not
            // metadata reads as "no PRM here" (single-page apps answer every path so),
            // and the MCP origin's default endpoints are tried: they fail too, and the
            // error says the endpoint was a default for want of usable metadata.
            (Fault::Html | Fault::TruncatedJson, StepKind::Prm) => {
                "That endpoint is a 2025-03-26 default at the MCP server's origin"
            }
            (Fault::Html, StepKind::AsMetadata) => "not JSON",
            (Fault::Html, StepKind::Registration) => "not valid RFC 7591 JSON",
            (Fault::Html | Fault::TruncatedJson, StepKind::TokenExchange | StepKind::Refresh) => {
                "not JSON"
            }
            (Fault::TruncatedJson, StepKind::AsMetadata) => "EOF while parsing",
            (Fault::TruncatedJson, StepKind::Registration) => "EOF while parsing",
            (Fault::HugeDeclared | Fault::HugeStreamed, _) => "larger than the 1048576-byte limit",
            (Fault::RedirectLoop, _) => "too many redirects",
            (Fault::CrossOriginRedirect, _) => "redirected to another origin",
        }
    }

    /// The step the error is expected to name (see [`Fault::phrase`] for the exception).
    fn expected_step(self, step: StepKind) -> StepKind {
        match (self, step) {
            (Fault::Html | Fault::TruncatedJson, StepKind::Prm) => StepKind::Registration,
            _ => step,
        }
    }
}

/// A healthy reply, before a fault is applied to it.
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: v.to_string().into_bytes(),
        }
    }
    fn not_found() -> Reply {
        Reply {
            status: 404,
            content_type: "text/plain",
            headers: Vec::new(),
            body: b"not found".to_vec(),
        }
    }
    fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            content_type: "text/plain",
            headers: vec![("location".into(), location)],
            body: Vec::new(),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let extra: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        raw::response_with(self.status, self.content_type, &extra, &self.body)
    }
}

type Healthy = Arc<dyn Fn(&str, &RawReq) -> Reply + Send + Sync>;

fn prm_server(as_base: String) -> Healthy {
    Arc::new(
        move |base, req| match (req.method.as_str(), req.path.as_str()) {
            (
                "GET",
                "/.well-known/oauth-protected-resource/mcp"
                | "/.well-known/oauth-protected-resource",
            ) => Reply::json(
                200,
                json!({"resource": format!("{base}/mcp"), "authorization_servers": [as_base], "scopes_supported": ["mcp:read"]}),
            ),
            _ => Reply::not_found(),
        },
    )
}

fn as_server(reg_base: String, token_base: String) -> Healthy {
    Arc::new(
        move |base, req| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/.well-known/oauth-authorization-server") => Reply::json(
                200,
                json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{token_base}/token"),
                    "registration_endpoint": format!("{reg_base}/register"),
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": true,
                }),
            ),
            ("GET", "/authorize") => {
                let q = req.query_map();
                let iss: String = url::form_urlencoded::byte_serialize(base.as_bytes()).collect();
                Reply::redirect(format!(
                    "{}?code={CODE}&state={}&iss={iss}",
                    q["redirect_uri"], q["state"]
                ))
            }
            _ => Reply::not_found(),
        },
    )
}

fn registration_server() -> Healthy {
    Arc::new(|_, req| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/register") => Reply::json(
            201,
            json!({"client_id": "client-faults", "client_secret": CS, "token_endpoint_auth_method": "client_secret_basic"}),
        ),
        _ => Reply::not_found(),
    })
}

/// Rotating refresh tokens with reuse detection: `RT1` works once.
#[derive(Default)]
struct TokenState {
    rt1_used: bool,
}

fn token_server(state: Arc<Mutex<TokenState>>) -> Healthy {
    Arc::new(move |_, req| {
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/token") {
            return Reply::not_found();
        }
        let form = req.form();
        let mut st = state.lock().unwrap();
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") if form.get("code").map(String::as_str) == Some(CODE) => {
                Reply::json(
                    200,
                    json!({"access_token": AT1, "token_type": "Bearer", "expires_in": 3600, "refresh_token": RT1}),
                )
            }
            Some("refresh_token")
                if form.get("refresh_token").map(String::as_str) == Some(RT1) && !st.rt1_used =>
            {
                st.rt1_used = true;
                Reply::json(
                    200,
                    json!({"access_token": AT2, "token_type": "Bearer", "expires_in": 3600, "refresh_token": RT2}),
                )
            }
            _ => Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": "grant refused"}),
            ),
        }
    })
}

/// Starts `healthy` with `fault` applied to every request (or not at all).
async fn start(
    healthy: Healthy,
    fault: Option<Fault>,
    evil_base: &str,
) -> (String, Option<RawServer>) {
    let on_accept = match fault {
        Some(Fault::Down) => return (raw::closed_port_base(), None),
        Some(Fault::ClosedOnAccept) => OnAccept::Close,
        Some(Fault::HangOnAccept) => OnAccept::Hang,
        _ => OnAccept::Serve,
    };
    let evil = evil_base.to_string();
    let server = RawServer::start(on_accept, move |base, req| {
        let reply = healthy(base, req);
        match fault {
            None | Some(Fault::Down | Fault::ClosedOnAccept | Fault::HangOnAccept) => {
                Action::Respond(reply.bytes())
            }
            Some(Fault::HangAfterRequest) => Action::Hang,
            Some(Fault::SlowBytes) => Action::Slow(reply.bytes(), Duration::from_millis(50)),
            Some(Fault::Status5xx) => {
                // A framework debug page that shows the request it failed on.
                let page = format!(
                    "<pre>{}\n{} {}?{}\n{:?}</pre>",
                    String::from_utf8_lossy(&req.body),
                    req.method,
                    req.path,
                    req.query,
                    req.headers,
                );
                Action::Respond(raw::response(503, "text/html", page.as_bytes()))
            }
            Some(Fault::Html) => Action::Respond(raw::response(
                200,
                "text/html",
                b"<!doctype html><html><body>Sign in to continue</body></html>",
            )),
            Some(Fault::TruncatedJson) => {
                let cut = &reply.body[..reply.body.len() / 2];
                Action::Respond(raw::response(reply.status, reply.content_type, cut))
            }
            Some(Fault::ShortBody) => Action::Respond(raw::short_body_response(
                reply.body.len() + 500,
                &reply.body,
            )),
            Some(Fault::HugeDeclared) => Action::Endless {
                declared_length: true,
            },
            Some(Fault::HugeStreamed) => Action::Endless {
                declared_length: false,
            },
            Some(Fault::RedirectLoop) => {
                Action::Respond(raw::redirect_response(&format!("{base}{}", req.path)))
            }
            Some(Fault::CrossOriginRedirect) => Action::Respond(raw::response_with(
                307,
                "text/plain",
                &[("location", &format!("{evil}{}", req.path))],
                b"",
            )),
        }
    })
    .await;
    (server.base.clone(), Some(server))
}

fn policy() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: REQUEST_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        ..Default::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn stored_record(server_url: &str, issuer: &str, token_endpoint: &str) -> CredentialRecord {
    CredentialRecord {
        server_url: server_url.into(),
        resource: server_url.into(),
        issuer: issuer.into(),
        token_endpoint: token_endpoint.into(),
        revocation_endpoint: None,
        resource_indicator: Some(server_url.into()),
        client: ClientRegistration {
            issuer: issuer.into(),
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            client_id: "client-faults".into(),
            client_secret: Some(ClientSecret::new(CS)),
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::ClientSecretBasic,
            kind: RegistrationKind::Dynamic,
            registered_at: now(),
        },
        tokens: TokenSet {
            access_token: AccessToken::new(AT1),
            token_type: "Bearer".into(),
            refresh_token: Some(RefreshToken::new(RT1)),
            expires_at: Some(now() - 10),
            scope: Some("mcp:read".into()),
            requested_scope: Some("mcp:read".into()),
            obtained_at: now() - 3600,
        },
        grant: "authorization_code".into(),
        dpop_key: None,
    }
}

/// The bytes of every credential file (the store's own view of "unchanged").
fn credential_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("credentials")) {
        for e in rd.flatten() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

struct Outcome {
    step: StepKind,
    fault: Fault,
    elapsed: Duration,
    error: String,
    failures: Vec<String>,
}

async fn run_case(step: StepKind, fault: Fault) -> Outcome {
    let evil = RawServer::start(OnAccept::Serve, |_, _| {
        Action::Respond(raw::response(200, "text/plain", b"evil"))
    })
    .await;
    let fault_at = |s: StepKind| (s == step).then_some(fault);
    let state: Arc<Mutex<TokenState>> = Arc::default();
    let (d_base, d) = start(
        token_server(state.clone()),
        fault_at(StepKind::TokenExchange).or(fault_at(StepKind::Refresh)),
        &evil.base,
    )
    .await;
    let (c_base, _c) = start(
        registration_server(),
        fault_at(StepKind::Registration),
        &evil.base,
    )
    .await;
    let (b_base, _b) = start(
        as_server(c_base, d_base.clone()),
        fault_at(StepKind::AsMetadata),
        &evil.base,
    )
    .await;
    let (a_base, _a) = start(
        prm_server(b_base.clone()),
        fault_at(StepKind::Prm),
        &evil.base,
    )
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(tmp.path().join("store")));
    let server_url = format!("{a_base}/mcp");
    let mut cfg = OAuthConfig::new(server_url.clone());
    cfg.redirect.port = Some(0);
    cfg.callback_timeout = Duration::from_secs(10);
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(policy()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::new()),
    );
    let mut failures = Vec::new();

    let started = Instant::now();
    let (result, before) = if step == StepKind::Refresh {
        let rec = stored_record(&server_url, &b_base, &format!("{d_base}/token"));
        store
            .save(
                &mcp_oauth::store::CredentialKey::new(server_url.clone()),
                &rec,
            )
            .unwrap();
        let before = credential_files(&tmp.path().join("store"));
        let r = tokio::time::timeout(CASE_BOUND * 2, client.valid_token()).await;
        (r.map(|r| r.map(|_| ())), before)
    } else {
        let challenge = vec![format!(
            "Bearer error=\"invalid_token\", resource_metadata=\"{a_base}/.well-known/oauth-protected-resource/mcp\""
        )];
        let r = tokio::time::timeout(
            CASE_BOUND * 2,
            client.authorize(&challenge, Reason::Unauthorized),
        )
        .await;
        (r.map(|r| r.map(|_| ())), Vec::new())
    };
    let elapsed = started.elapsed();
    let error = match result {
        Err(_) => {
            failures.push(format!("did not end within {:?}", CASE_BOUND * 2));
            String::new()
        }
        Ok(Ok(())) => {
            failures.push("the flow succeeded despite the fault".into());
            String::new()
        }
        Ok(Err(e)) => e.to_string(),
    };
    if elapsed > CASE_BOUND {
        failures.push(format!("took {elapsed:?} (bound {CASE_BOUND:?})"));
    }
    let want_step = fault.expected_step(step).display();
    if !error.is_empty() && !error.contains(want_step) {
        failures.push(format!("the error does not name the step {want_step:?}"));
    }
    let phrase = fault.phrase(step);
    if !error.is_empty() && !error.contains(phrase) {
        failures.push(format!("the error does not say {phrase:?}"));
    }
    let basic = mcp_oauth::token::basic_auth_value("client-faults", CS);
    for s in SECRETS
        .iter()
        .copied()
        .chain([basic.trim_start_matches("Basic ")])
    {
        if error.contains(s) {
            failures.push(format!("the error contains the secret {s}"));
        }
    }
    if let Some(d) = &d {
        for req in d.requests_to("/token") {
            if let Some(v) = req.form().get("code_verifier")
                && error.contains(v.as_str())
            {
                failures.push("the error contains the PKCE verifier".into());
            }
        }
        let code_sends = d
            .requests_to("/token")
            .iter()
            .filter(|r| {
                r.form().get("grant_type").map(String::as_str) == Some("authorization_code")
            })
            .count();
        if code_sends > 1 {
            failures.push(format!(
                "the authorization code was sent {code_sends} times"
            ));
        }
    }
    let after = credential_files(&tmp.path().join("store"));
    if after != before {
        failures.push(if step == StepKind::Refresh {
            "the stored credential changed".to_string()
        } else {
            "a credential was stored".to_string()
        });
    }
    if !evil.requests().is_empty() || evil.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        failures.push("the other origin was contacted".into());
    }
    Outcome {
        step,
        fault,
        elapsed,
        error,
        failures,
    }
}

fn first_line(e: &str, max: usize) -> String {
    let l = e.lines().next().unwrap_or_default();
    if l.chars().count() > max {
        format!("{}…", l.chars().take(max).collect::<String>())
    } else {
        l.to_string()
    }
}

/// The whole matrix: 5 steps × 13 faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn fault_matrix() {
    let cases: Vec<(StepKind, Fault)> = StepKind::ALL
        .iter()
        .flat_map(|s| Fault::ALL.iter().map(move |f| (*s, *f)))
        .collect();
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = futures_util::stream::iter(cases)
        .map(|(s, f)| run_case(s, f))
        .buffer_unordered(6)
        .collect()
        .await;
    outcomes.sort_by_key(|o| {
        (
            StepKind::ALL.iter().position(|s| *s == o.step),
            Fault::ALL.iter().position(|f| *f == o.fault),
        )
    });
    let mut report = String::from("\nfault matrix (step | fault | result | time):\n");
    for o in &outcomes {
        report.push_str(&format!(
            "  {:<40} | {:<48} | {} | {:>5} ms | {}\n",
            o.step.display(),
            o.fault.describe(),
            if o.failures.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            o.elapsed.as_millis(),
            if o.failures.is_empty() {
                first_line(&o.error, 160)
            } else {
                format!("{} — {}", o.failures.join("; "), first_line(&o.error, 300))
            }
        ));
    }
    report.push_str(&format!(
        "  {} cases in {:?}\n",
        outcomes.len(),
        started.elapsed()
    ));
    eprintln!("{report}");
    if let Ok(path) = std::env::var("MCP_OAUTH_FAULT_REPORT") {
        let _ = std::fs::write(path, &report);
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.failures.is_empty()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        outcomes.len(),
        failed
            .iter()
            .map(|o| format!(
                "{:?}/{:?}: {}\n    {}",
                o.step,
                o.fault,
                o.failures.join("; "),
                o.error
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A refresh whose response is lost after the authorization server rotated the refresh
/// token: a lost response is transient, so the refresh is sent once more; the AS refuses
/// it as a reuse (`invalid_grant`), which removes the dead credential cleanly (nothing
/// half-written) and says to log in again.
#[tokio::test]
pub async fn refresh_lost_mid_rotation_is_retried_then_reports_invalid_grant() {
    let state: Arc<Mutex<TokenState>> = Arc::default();
    let healthy = token_server(state.clone());
    let drop_first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let df = drop_first.clone();
    let d = RawServer::start(OnAccept::Serve, move |base, req| {
        let reply = healthy(base, req); // rotates RT1 → RT2 at the AS
        if df.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Action::Close // ... and the response never arrives
        } else {
            Action::Respond(reply.bytes())
        }
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = Arc::new(FileStore::new(dir.clone()));
    let server_url = "http://127.0.0.1:9/mcp".to_string();
    let key = mcp_oauth::store::CredentialKey::new(server_url.clone());
    store
        .save(
            &key,
            &stored_record(
                &server_url,
                "http://127.0.0.1:9",
                &format!("{}/token", d.base),
            ),
        )
        .unwrap();
    let before = credential_files(&dir);
    let client = || {
        OAuthClient::new(
            OAuthConfig::new(server_url.clone()),
            HttpClient::new(policy()).unwrap(),
            store.clone(),
            Arc::new(FollowingBrowser::new()),
        )
    };

    // The lost response is a transient failure: the refresh is sent once more, and the
    // AS, which did rotate, answers invalid_grant. The dead credential goes; nothing else
    // is sent.
    let t = Instant::now();
    let e = client().valid_token().await.unwrap_err();
    assert!(t.elapsed() < CASE_BOUND);
    assert!(state.lock().unwrap().rt1_used, "the AS did rotate");
    assert_eq!(e.oauth_error(), Some("invalid_grant"), "{e}");
    assert!(e.to_string().starts_with("token refresh:"), "{e}");
    for s in SECRETS {
        assert!(!e.to_string().contains(s), "{e}");
    }
    assert!(!before.is_empty());
    assert!(
        store.load(&key).unwrap().is_none(),
        "the dead credential is removed"
    );
    assert!(credential_files(&dir).is_empty());
    assert_eq!(d.requests_to("/token").len(), 2);
}

/// The authorization code is sent once; when the token endpoint then times out, the code
/// is not sent again (it may have been redeemed), and the browser is told that it failed.
#[tokio::test]
pub async fn token_endpoint_timing_out_after_the_code_was_sent() {
    let evil = RawServer::start(OnAccept::Serve, |_, _| {
        Action::Respond(raw::response(200, "text/plain", b""))
    })
    .await;
    let state: Arc<Mutex<TokenState>> = Arc::default();
    let (d_base, d) = start(
        token_server(state),
        Some(Fault::HangAfterRequest),
        &evil.base,
    )
    .await;
    let (c_base, _c) = start(registration_server(), None, &evil.base).await;
    let (b_base, _b) = start(as_server(c_base, d_base), None, &evil.base).await;
    let (a_base, _a) = start(prm_server(b_base), None, &evil.base).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(tmp.path().join("store")));
    let mut cfg = OAuthConfig::new(format!("{a_base}/mcp"));
    cfg.redirect.port = Some(0);
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(policy()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::new()),
    );
    let t = Instant::now();
    let e = client
        .authorize(&[], Reason::Login)
        .await
        .unwrap_err()
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        e.starts_with("token exchange: no answer from") && e.contains("/token"),
        "{e}"
    );
    let d = d.unwrap();
    assert_eq!(
        d.requests_to("/token").len(),
        1,
        "the code was sent exactly once"
    );
    assert_eq!(d.requests_to("/token")[0].form()["code"], CODE);
    assert!(!e.contains(CODE));
    assert!(store.list().unwrap().is_empty());
}

/// A device authorization endpoint that asks for an absurd polling interval (10^15 s):
/// the interval is clamped and the wait never outlasts the deadline. (Before: the first
/// wait was the server's number, and `Instant + interval` could overflow and panic.)
#[tokio::test]
pub async fn device_interval_from_a_hostile_server_is_bounded() {
    use mcp_oauth::authorize::device;
    use mcp_oauth::client_auth::ClientCredentials;
    let d = RawServer::start(OnAccept::Serve, |base, req| match req.path.as_str() {
        "/device" => Action::Respond(raw::json_response(
            200,
            &json!({"device_code": "dc-SECRET-device-0b1c2d3e", "user_code": "ABCD-EFGH",
                    "verification_uri": format!("{base}/verify"), "interval": 1_000_000_000_000_000u64,
                    "expires_in": u64::MAX}),
        )),
        _ => Action::Respond(raw::json_response(400, &json!({"error": "authorization_pending"}))),
    })
    .await;
    let client = ClientRegistration {
        issuer: d.base.clone(),
        redirect_uri: String::new(),
        client_id: "c".into(),
        client_secret: None,
        client_secret_expires_at: None,
        token_endpoint_auth_method: ClientAuthMethod::None,
        kind: RegistrationKind::PreRegistered,
        registered_at: 0,
    };
    let http = HttpClient::new(policy()).unwrap();
    let creds = ClientCredentials::new(&client);
    let auth = device::start(&http, &format!("{}/device", d.base), &creds, None, None)
        .await
        .unwrap();
    assert_eq!(
        auth.interval,
        Duration::from_secs(device::MAX_INTERVAL_SECS)
    );
    let t = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        device::poll(
            &http,
            &format!("{}/token", d.base),
            &creds,
            &auth,
            None,
            None,
            Duration::from_secs(2),
            None,
        ),
    )
    .await
    .expect("bounded by the deadline");
    let e = r.unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.starts_with("authorization: no answer from"), "{e}");
    assert!(!e.contains("dc-SECRET"), "{e}");
}

/// The control case: the same servers without a fault log in and refresh.
#[tokio::test]
pub async fn healthy_login_then_refresh() {
    let evil = RawServer::start(OnAccept::Serve, |_, _| {
        Action::Respond(raw::response(200, "text/plain", b""))
    })
    .await;
    let state: Arc<Mutex<TokenState>> = Arc::default();
    let (d_base, d) = start(token_server(state.clone()), None, &evil.base).await;
    let (c_base, _c) = start(registration_server(), None, &evil.base).await;
    let (b_base, _b) = start(as_server(c_base, d_base), None, &evil.base).await;
    let (a_base, _a) = start(prm_server(b_base), None, &evil.base).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(tmp.path().join("store")));
    let mut cfg = OAuthConfig::new(format!("{a_base}/mcp"));
    cfg.redirect.port = Some(0);
    let client = OAuthClient::new(
        cfg,
        HttpClient::new(policy()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::new()),
    );
    let rec = client.authorize(&[], Reason::Login).await.unwrap();
    assert_eq!(rec.tokens.access_token.expose(), AT1);
    assert_eq!(rec.client.client_secret.as_ref().unwrap().expose(), CS);
    let mut expired = rec.clone();
    expired.tokens.expires_at = Some(now() - 10);
    store
        .save(&client.config().credential_key(), &expired)
        .unwrap();
    let fresh = OAuthClient::new(
        client.config().clone(),
        HttpClient::new(policy()).unwrap(),
        store.clone(),
        Arc::new(FollowingBrowser::new()),
    );
    let t = fresh.valid_token().await.unwrap().unwrap();
    assert_eq!(t.access_token.expose(), AT2);
    assert_eq!(t.refresh_token.unwrap().expose(), RT2);
    let verifier = d.unwrap().requests_to("/token")[0].form()["code_verifier"].clone();
    assert_eq!(verifier.len(), 43);
    *LAST_VERIFIER.lock().unwrap() = Some(verifier);
    assert!(state.lock().unwrap().rt1_used);
    assert!(evil.requests().is_empty());
}

/// The PKCE verifier of the last healthy login (for the log scan of secrets_in_logs.rs).
pub static LAST_VERIFIER: Mutex<Option<String>> = Mutex::new(None);
