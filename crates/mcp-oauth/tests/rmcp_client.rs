//! An rmcp client authorized through `mcp_oauth::rmcp_transport`, against the demo's real
//! servers (crates/mcp-oauth-demo, in process, on loopback): the development
//! authorization server approves every request, and the demo's headless browser follows
//! its redirects to the client's loopback listener, so logins need nobody.
//!
//! What the servers saw is read from their event log (and, for the step-up server built
//! here, from a log of its own):
//!
//! - `first_request_is_refused_then_the_client_logs_in`: a request without a token, the
//!   `401`, one login, then every request with the token;
//! - `a_second_client_reuses_the_stored_login`: no login, no token request, no `401`;
//! - `an_expiring_token_is_refreshed_in_the_running_session`: tokens that live 2 s (the
//!   demo's `access_token_ttl` knob); the same rmcp session goes on after a refresh;
//! - `a_refused_token_is_refreshed_and_the_request_sent_again`: the server refuses the
//!   stored access token (replaced in the store by one it does not know: the demo has no
//!   revocation of access tokens); `401 invalid_token`, a refresh, the request again;
//! - `step_up_on_insufficient_scope`: a tool that needs one more scope (a `ScopePolicy`
//!   on an rmcp server behind `McpAuthLayer`, with the demo's authorization server):
//!   `403 insufficient_scope`, a second login with both scopes, the call again;
//! - `tokens_go_only_to_their_resource`: a transport pointed at another URL is refused
//!   before anything is sent; a cross-origin redirect is not followed.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::rmcp_transport::OAuthStreamableHttpClient;
use mcp_oauth::secret::AccessToken;
use mcp_oauth::store::{CredentialStore, MemoryStore};
use mcp_oauth::{OAuthClient, OAuthConfig};
use mcp_oauth_demo::auth_server::{DevAuthServer, DevAuthServerConfig};
use mcp_oauth_demo::browser::HeadlessBrowser;
use mcp_oauth_demo::events::{BrowserEvent, Detail, Event, EventSink, Side};
use mcp_oauth_demo::{DemoOptions, DemoServers};
use mcp_oauth_server::{JwtValidator, McpAuthLayer, ProtectedResource, ScopePolicy};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolRequestParams, ServerCapabilities, ServerConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{RoleClient, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;

// ----------------------------------------------------------------- the client

/// The OAuth client of `url`, with `store`, logging in through the demo's browser.
fn oauth_client(url: &str, store: &Arc<MemoryStore>, events: &EventSink) -> OAuthClient {
    let mut config = OAuthConfig::new(url);
    config.client_name = "rmcp_client test".into();
    config.callback_timeout = Duration::from_secs(20);
    OAuthClient::new(
        config,
        HttpClient::new(HttpPolicy::default()).unwrap(),
        store.clone(),
        Arc::new(HeadlessBrowser::new(events.clone())),
    )
}

/// What a user writes: the OAuth client's transport, served by rmcp.
async fn connect(oauth: OAuthClient) -> RunningService<RoleClient, ()> {
    let transport = OAuthStreamableHttpClient::new(oauth)
        .unwrap()
        .into_transport();
    ().serve(transport).await.expect("the rmcp client connects")
}

async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// The text of a tool call's result.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: serde_json::Value,
) -> String {
    let serde_json::Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"));
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    texts.join("")
}

/// An error and its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

// ----------------------------------------------------------------- what the servers saw

/// One request to the MCP endpoint.
#[derive(Debug, Clone)]
struct McpRequest {
    method: String,
    status: u16,
    /// The `Authorization` header, redacted.
    credentials: Option<String>,
    www_authenticate: Vec<String>,
}

/// What the demo's servers and browser reported since the last look.
#[derive(Debug, Default)]
struct Seen {
    /// Requests to `/mcp`, in order.
    mcp: Vec<McpRequest>,
    /// Browser tabs opened: interactive logins.
    logins: usize,
    /// Scopes of the approved authorization requests.
    authorized: Vec<String>,
    /// `(grant_type, scope)` of each token response.
    tokens: Vec<(String, String)>,
}

impl Seen {
    fn grant_types(&self) -> Vec<&str> {
        self.tokens.iter().map(|(g, _)| g.as_str()).collect()
    }
}

fn seen(rx: &mut UnboundedReceiver<Event>) -> Seen {
    let mut out = Seen::default();
    while let Ok(event) = rx.try_recv() {
        match event {
            Event::Http(h) => match h.detail {
                Detail::Mcp(m) if h.side == Side::Mcp && h.path == "/mcp" => {
                    out.mcp.push(McpRequest {
                        method: h.method,
                        status: h.status,
                        credentials: m.credentials,
                        www_authenticate: m.www_authenticate,
                    })
                }
                Detail::Authorized(a) => out.authorized.push(a.scope),
                Detail::Token(t) => out.tokens.push((t.grant_type, t.scope)),
                _ => {}
            },
            Event::Browser(BrowserEvent::Open { .. }) => out.logins += 1,
            _ => {}
        }
    }
    out
}

/// The demo's servers, what they report, and a store for the clients.
struct Demo {
    servers: DemoServers,
    events: EventSink,
    rx: UnboundedReceiver<Event>,
    store: Arc<MemoryStore>,
}

impl Demo {
    async fn start(options: DemoOptions) -> Demo {
        let (events, rx) = EventSink::channel();
        let servers = DemoServers::start(&options, events.clone()).await.unwrap();
        Demo {
            servers,
            events,
            rx,
            store: Arc::new(MemoryStore::new()),
        }
    }

    fn oauth(&self) -> OAuthClient {
        oauth_client(&self.servers.mcp_url, &self.store, &self.events)
    }

    fn seen(&mut self) -> Seen {
        seen(&mut self.rx)
    }

    /// Logs in with a first client (which lists the tools) and closes it.
    async fn log_in(&mut self) {
        let client = connect(self.oauth()).await;
        assert_eq!(tool_names(&client).await, ["echo", "whoami"]);
        client.cancel().await.unwrap();
        assert_eq!(self.seen().logins, 1);
    }
}

// ----------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_request_is_refused_then_the_client_logs_in() {
    let mut demo = Demo::start(DemoOptions::default()).await;
    let client = connect(demo.oauth()).await;
    let tools = tool_names(&client).await;
    let whoami = call(&client, "whoami", serde_json::json!({})).await;
    let echo = call(&client, "echo", serde_json::json!({"text": "hi from rmcp"})).await;
    client.cancel().await.unwrap();

    assert_eq!(tools, ["echo", "whoami"]);
    assert_eq!(echo, "hi from rmcp");
    let claims: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(claims["sub"], "demo-user");
    assert_eq!(claims["aud"], serde_json::json!([demo.servers.mcp_url]));

    let seen = demo.seen();
    let first = &seen.mcp[0];
    assert_eq!(
        (first.method.as_str(), first.status),
        ("POST", 401),
        "{seen:#?}"
    );
    assert_eq!(
        first.credentials, None,
        "the first request carries no token"
    );
    assert!(
        first.www_authenticate[0].contains(demo.servers.prm_url()),
        "{first:?}"
    );
    assert_eq!(seen.logins, 1, "one login: {seen:#?}");
    assert_eq!(seen.authorized, ["mcp offline_access"]);
    assert_eq!(seen.grant_types(), ["authorization_code"]);
    // After the login, every request carries the token and none is refused.
    for r in &seen.mcp[1..] {
        assert!(
            r.credentials
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer ")),
            "{r:?}"
        );
        assert!(r.status < 400, "{r:?}");
    }
    assert!(
        seen.mcp.len() >= 4,
        "initialize/discover, tools/list, two calls: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_reuses_the_stored_login() {
    let mut demo = Demo::start(DemoOptions::default()).await;
    demo.log_in().await;

    let client = connect(demo.oauth()).await;
    assert_eq!(tool_names(&client).await, ["echo", "whoami"]);
    client.cancel().await.unwrap();

    let seen = demo.seen();
    assert_eq!(seen.logins, 0, "{seen:#?}");
    assert!(seen.tokens.is_empty(), "no token request: {seen:#?}");
    assert!(!seen.mcp.is_empty());
    for r in &seen.mcp {
        assert!(r.credentials.is_some() && r.status < 400, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_refreshed_in_the_running_session() {
    let ttl = Duration::from_secs(2);
    let mut demo = Demo::start(DemoOptions {
        access_token_ttl: ttl,
        ..DemoOptions::default()
    })
    .await;
    let client = connect(demo.oauth()).await;
    assert_eq!(tool_names(&client).await, ["echo", "whoami"]);
    let before = demo.seen();
    assert_eq!(before.logins, 1);

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(
        call(&client, "echo", serde_json::json!({"text": "later"})).await,
        "later"
    );
    client.cancel().await.unwrap();

    let seen = demo.seen();
    assert_eq!(seen.logins, 0, "no new login: {seen:#?}");
    assert_eq!(seen.grant_types(), ["refresh_token"], "{seen:#?}");
    for r in &seen.mcp {
        assert!(r.credentials.is_some() && r.status < 400, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_and_the_request_sent_again() {
    let mut demo = Demo::start(DemoOptions::default()).await;
    demo.log_in().await;
    // The server stops accepting the access token the store holds (the client still
    // thinks it good for an hour).
    let key = demo.oauth().config().credential_key();
    let mut record = demo.store.load(&key).unwrap().expect("a stored login");
    let refused = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.bm90LWEtc2lnbmF0dXJl";
    record.tokens.access_token = AccessToken::new(refused);
    demo.store.save(&key, &record).unwrap();

    let client = connect(demo.oauth()).await;
    assert_eq!(tool_names(&client).await, ["echo", "whoami"]);
    client.cancel().await.unwrap();

    let seen = demo.seen();
    let first = &seen.mcp[0];
    assert_eq!(first.status, 401, "{seen:#?}");
    assert!(
        first.credentials.is_some(),
        "the refused token was sent: {first:?}"
    );
    assert!(
        first.www_authenticate[0].contains("invalid_token"),
        "{first:?}"
    );
    assert_eq!(seen.grant_types(), ["refresh_token"], "{seen:#?}");
    assert_eq!(seen.logins, 0, "a refresh, not a login: {seen:#?}");
    for r in &seen.mcp[1..] {
        assert!(r.credentials.is_some() && r.status < 400, "{r:?}");
    }
    let stored = demo.store.load(&key).unwrap().unwrap();
    assert_ne!(stored.tokens.access_token.expose(), refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_go_only_to_their_resource() {
    let mut demo = Demo::start(DemoOptions::default()).await;
    demo.log_in().await;

    // A transport pointed at another path of the same server: refused, nothing sent.
    let other = format!("{}/other", demo.servers.mcp_origin);
    let client = OAuthStreamableHttpClient::new(demo.oauth()).unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(other),
    );
    let err = ().serve(transport).await.expect_err("refused");
    assert!(
        chain(&err).contains("not the MCP server"),
        "{}",
        chain(&err)
    );
    let seen = demo.seen();
    assert!(seen.mcp.is_empty(), "{seen:#?}");

    // A server that holds a token for itself and redirects to another origin (the demo's
    // MCP server): the redirect is not followed, so the token does not go there.
    let log = RequestLog::default();
    let redirect_to = demo.servers.mcp_url.clone();
    let app = Router::new()
        .fallback(move || {
            let to = redirect_to.clone();
            async move { axum::response::Redirect::temporary(&to) }
        })
        .layer(middleware::from_fn_with_state(log.clone(), record));
    let redirector = serve(app).await;
    let url = format!("{redirector}/mcp");
    let key = demo.oauth().config().credential_key();
    let mut record = demo.store.load(&key).unwrap().unwrap();
    record.server_url = url.clone();
    let oauth = oauth_client(&url, &demo.store, &demo.events);
    demo.store
        .save(&oauth.config().credential_key(), &record)
        .unwrap();
    let err = ()
        .serve(
            OAuthStreamableHttpClient::new(oauth)
                .unwrap()
                .into_transport(),
        )
        .await
        .expect_err("a redirect is not an MCP response");
    let redirector_saw = log.entries();
    assert_eq!(redirector_saw.len(), 1, "{}", chain(&err));
    assert_eq!(redirector_saw[0].status, 307);
    assert!(redirector_saw[0].authorized, "its own token went to it");
    let seen = demo.seen();
    assert!(
        seen.mcp.is_empty(),
        "nothing reached the other origin: {seen:#?}"
    );
}

// ----------------------------------------------------------------- step-up

/// Tools of the step-up server: `ping` needs the resource's scope (`mcp`), `admin`
/// needs `admin` too.
#[derive(Clone)]
struct StepUpTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl StepUpTools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Answers pong (scope mcp)")]
    fn ping(&self) -> String {
        "pong".into()
    }

    #[tool(description = "Answers admin ok (scopes mcp and admin)")]
    fn admin(&self) -> String {
        "admin ok".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for StepUpTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// One request a test server answered.
#[derive(Debug, Clone)]
struct Logged {
    path: String,
    status: u16,
    authorized: bool,
    www_authenticate: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<Logged>>>);

impl RequestLog {
    fn entries(&self) -> Vec<Logged> {
        self.0.lock().unwrap().clone()
    }
}

async fn record(State(log): State<RequestLog>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let authorized = req.headers().contains_key(http::header::AUTHORIZATION);
    let resp = next.run(req).await;
    let www_authenticate = resp
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    log.0.lock().unwrap().push(Logged {
        path,
        status: resp.status().as_u16(),
        authorized,
        www_authenticate,
    });
    resp.into_response()
}

/// Serves `app` on a free loopback port; its origin.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_on_insufficient_scope() {
    let (events, mut rx) = EventSink::channel();
    let as_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", as_listener.local_addr().unwrap());
    let mcp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_url = format!("http://{}/mcp", mcp_listener.local_addr().unwrap());

    // The demo's authorization server, with one more scope.
    let mut as_config = DevAuthServerConfig::new(&issuer, &mcp_url);
    as_config.scopes.push("admin".into());
    let auth = DevAuthServer::new(as_config, events.clone());
    let as_app = auth.router();
    tokio::spawn(async move { axum::serve(as_listener, as_app).await.unwrap() });

    // An rmcp server behind McpAuthLayer, like the demo's, whose `admin` tool needs
    // `admin`: the layer answers 403 insufficient_scope naming `mcp admin`.
    let resource = ProtectedResource::builder(&mcp_url)
        .authorization_server(&issuer)
        .scopes_supported(["mcp", "admin"])
        .required_scopes(["mcp"])
        .build()
        .unwrap();
    let validator = JwtValidator::builder(&resource)
        .jwks_uri(auth.jwks_uri())
        .build()
        .unwrap();
    let layer = McpAuthLayer::new(resource, validator)
        .with_scope_policy(ScopePolicy::new().tool("admin", ["admin"]));
    let service = StreamableHttpService::new(
        || Ok(StepUpTools::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let log = RequestLog::default();
    let mcp_app = Router::new()
        .nest_service("/mcp", service)
        .route_layer(layer.clone())
        .merge(layer.metadata_router())
        .layer(middleware::from_fn_with_state(log.clone(), record));
    tokio::spawn(async move { axum::serve(mcp_listener, mcp_app).await.unwrap() });

    let store = Arc::new(MemoryStore::new());
    let client = connect(oauth_client(&mcp_url, &store, &events)).await;
    assert_eq!(call(&client, "ping", serde_json::json!({})).await, "pong");
    assert_eq!(
        call(&client, "admin", serde_json::json!({})).await,
        "admin ok"
    );
    client.cancel().await.unwrap();

    let seen = seen(&mut rx);
    assert_eq!(seen.logins, 2, "a login, then the step-up: {seen:#?}");
    assert_eq!(seen.authorized.len(), 2, "{seen:#?}");
    assert_eq!(seen.authorized[0], "mcp offline_access");
    let stepped: Vec<&str> = seen.authorized[1].split(' ').collect();
    assert!(
        stepped.contains(&"mcp") && stepped.contains(&"admin"),
        "the step-up asks for both: {seen:#?}"
    );
    let requests: Vec<Logged> = log
        .entries()
        .into_iter()
        .filter(|l| l.path.starts_with("/mcp"))
        .collect();
    let forbidden: Vec<&Logged> = requests.iter().filter(|l| l.status == 403).collect();
    assert_eq!(forbidden.len(), 1, "{requests:#?}");
    let challenge = forbidden[0].www_authenticate.as_deref().unwrap_or_default();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("admin"),
        "{challenge}"
    );
    // The 403 is followed by the same call with the new token, which passes.
    let last = requests.iter().rev().find(|l| l.status == 200).unwrap();
    assert!(last.authorized);
}
