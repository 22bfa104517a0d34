//! Shared test rig: an in-process issuer (JWKS), a mock RFC 7662 endpoint (the testkit's
//! mock server) and an echo MCP endpoint behind the layer, all on loopback ports. The
//! issuer and the layer are served with axum as an application would: they are what is
//! under test.
#![allow(dead_code)]

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use jsonwebtoken::Algorithm;
use mcp_oauth_server::dev::DevIssuer;
use mcp_oauth_server::{
    Claims, JwtValidator, JwtValidatorBuilder, McpAuthLayer, ProtectedResource,
    ProtectedResourceBuilder, ScopePolicy, TokenValidator,
};
use mcp_oauth_testkit::mock_server::{MockServer, Routes, json};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

pub async fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

pub fn serve(listener: TcpListener, app: Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// A DevIssuer served on its own loopback port.
pub async fn start_issuer(alg: Algorithm) -> Arc<DevIssuer> {
    let (l, addr) = bind().await;
    let issuer = DevIssuer::new(format!("http://{addr}"), alg);
    serve(l, issuer.router());
    issuer
}

/// The inner MCP endpoint: reports what it saw.
pub fn echo_router() -> Router {
    async fn echo(claims: Option<Claims>, req: Request) -> axum::Json<Value> {
        let authorization_seen = req.headers().contains_key(http::header::AUTHORIZATION);
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        axum::Json(json!({
            "sub": claims.as_ref().and_then(|c| c.sub()),
            "client_id": claims.as_ref().and_then(|c| c.client_id()),
            "scopes": claims.as_ref().map(|c| c.scopes()),
            "source": claims.as_ref().map(|c| format!("{:?}", c.source())),
            "authorization_seen": authorization_seen,
            "body": String::from_utf8_lossy(&body),
        }))
    }
    Router::new().route("/mcp", any(echo))
}

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT/mcp`
    pub resource: String,
    pub layer: McpAuthLayer,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Starts echo-behind-layer with the given validator factory and configuration.
pub async fn start_server<V, F>(
    configure: impl FnOnce(ProtectedResourceBuilder) -> ProtectedResourceBuilder,
    policy: ScopePolicy,
    make_validator: F,
) -> Server
where
    V: TokenValidator,
    F: FnOnce(&ProtectedResource) -> V,
{
    let (l, addr) = bind().await;
    let base = format!("http://{addr}");
    let resource_url = format!("{base}/mcp");
    let resource = configure(ProtectedResource::builder(&resource_url))
        .build()
        .unwrap();
    let validator = make_validator(&resource);
    let layer = McpAuthLayer::new(resource, validator).with_scope_policy(policy);
    let app = echo_router().layer(layer.clone());
    serve(l, app);
    Server {
        base,
        resource: resource_url,
        layer,
    }
}

/// A server whose tokens come from `issuer`, JWT-validated; `required_scopes` = `mcp`.
pub async fn start_jwt_server(
    issuer: &DevIssuer,
    policy: ScopePolicy,
    tune: impl FnOnce(JwtValidatorBuilder) -> JwtValidatorBuilder,
) -> (Server, JwtValidator) {
    let iss = issuer.issuer().to_owned();
    let jwks = issuer.jwks_uri();
    let mut validator_out = None;
    let server = start_server(
        |b| {
            b.authorization_server(iss.clone())
                .scopes_supported(["mcp"])
                .required_scopes(["mcp"])
        },
        policy,
        |r| {
            let v = tune(JwtValidator::builder(r).jwks_uri(jwks))
                .build()
                .unwrap();
            validator_out = Some(v.clone());
            v
        },
    )
    .await;
    (server, validator_out.unwrap())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn post_mcp(
    url: &str,
    token: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

pub fn www_authenticate(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub fn tool_call(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": name, "arguments": {"text": "hi"}}})
}

// ---- mock RFC 7662 endpoint ----

/// `POST /introspect`, authenticated with Basic `rs-client:rs-secret`: the answer set for
/// the token, `{"active": false}` for any other.
pub struct MockIntrospection {
    pub url: String,
    responses: Arc<Mutex<HashMap<String, Value>>>,
    server: MockServer,
}

impl MockIntrospection {
    pub fn set(&self, token: &str, response: Value) {
        self.responses
            .lock()
            .unwrap()
            .insert(token.to_owned(), response);
    }

    /// Introspection requests (`POST /introspect`) so far, refused ones included.
    pub fn requests(&self) -> u64 {
        let posts = self.server.requests_to("/introspect");
        posts.iter().filter(|r| r.method == "POST").count() as u64
    }
}

pub fn start_introspection() -> Arc<MockIntrospection> {
    use base64::Engine as _;
    let expected_authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rs-client:rs-secret")
    );
    let responses: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let answers = responses.clone();
    let server = MockServer::serve_handler(Routes::new().post("/introspect", move |_, req| {
        let reply = if req.header("authorization") != Some(expected_authorization.as_str()) {
            json(401, json!({"error": "invalid_client"}))
        } else {
            let form = req.form();
            assert_eq!(
                form.get("token_type_hint").map(String::as_str),
                Some("access_token")
            );
            let token = form.get("token").cloned().unwrap_or_default();
            let answer = answers
                .lock()
                .unwrap()
                .get(&token)
                .cloned()
                .unwrap_or_else(|| json!({"active": false}));
            json(200, answer)
        };
        async move { reply }
    }));
    Arc::new(MockIntrospection {
        url: server.url("/introspect"),
        responses,
        server,
    })
}
