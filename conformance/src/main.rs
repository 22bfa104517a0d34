//! `mcp-oauth-conformance <server-url>`: the client side of the official MCP conformance
//! suite (`@modelcontextprotocol/conformance`), built only on mcp-oauth's public API.
//!
//! It maps `MCP_CONFORMANCE_CONTEXT` into configuration (pre-registered credentials, the
//! issuer they belong to) and `MCP_CONFORMANCE_PROTOCOL_VERSION` into the MCP lifecycle,
//! and nothing else: no behaviour depends on the scenario's name. Then it does what any
//! MCP client does: connect, list tools, call a tool, list tools again.
//!
//! The user agent is an in-process "browser" that follows the authorization server's
//! redirects to the library's real loopback listener, the same path a person's browser
//! takes.

use anyhow::Context;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::browser::Browser;
use mcp_oauth::config::{AssertionSource, EnterpriseSettings, PreRegisteredClient};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::mcp::{McpClient, McpClientOptions, Protocol};
use mcp_oauth::secret::{Assertion, ClientSecret, PrivateKeyPem};
use mcp_oauth::store::MemoryStore;
use mcp_oauth::{OAuthClient, OAuthConfig};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The suite kills the client at 30 s; finish (or fail) before that.
const OVERALL_LIMIT: Duration = Duration::from_secs(25);

/// The client id metadata document URL the suite's mock expects (it is never fetched).
const CIMD_URL: &str = "https://conformance-test.local/client-metadata.json";

/// The suite's context: credentials and the like, each mapped to the configuration
/// setting a user would use for it.
#[derive(Debug, Default, Deserialize)]
struct ScenarioContext {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    /// The issuer the credentials belong to.
    #[serde(default)]
    issuer: Option<String>,
    /// A private key for `private_key_jwt` (`--private-key`).
    #[serde(default)]
    private_key_pem: Option<String>,
    #[serde(default)]
    signing_algorithm: Option<String>,
    /// Enterprise-managed authorization: the IdP and the user's ID token there.
    #[serde(default)]
    idp_client_id: Option<String>,
    #[serde(default)]
    idp_id_token: Option<String>,
    #[serde(default)]
    idp_token_endpoint: Option<String>,
    /// A workload identity token (`--assertion-file`).
    #[serde(default)]
    valid_jwt: Option<String>,
}

/// Follows redirects like a browser that the user clicks "allow" in.
struct FollowingBrowser {
    http: reqwest::Client,
}

impl Browser for FollowingBrowser {
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        let http = self.http.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            match http.get(&url).send().await {
                Ok(r) => {
                    tracing::info!(status = %r.status(), final_url = %r.url().path(), "browser done")
                }
                Err(e) => tracing::warn!(error = %e, "browser request failed"),
            }
        });
        Ok(())
    }
}

fn config(server_url: &str, ctx: &ScenarioContext) -> OAuthConfig {
    let mut c = OAuthConfig::new(server_url);
    if let Some(id) = &ctx.client_id {
        c.client = Some(PreRegisteredClient {
            client_id: id.clone(),
            client_secret: ctx
                .client_secret
                .clone()
                .map(|s| ClientSecret::new(s).into()),
            issuer: ctx.issuer.clone(),
            token_endpoint_auth_method: None,
            private_key: ctx.private_key_pem.as_ref().map(|pem| SigningKey {
                pem: PrivateKeyPem::new(pem.clone()),
                alg: ctx
                    .signing_algorithm
                    .clone()
                    .unwrap_or_else(|| "ES256".into()),
            }),
        });
    }
    if let (Some(endpoint), Some(id_token), Some(idp_client)) = (
        &ctx.idp_token_endpoint,
        &ctx.idp_id_token,
        &ctx.idp_client_id,
    ) {
        c.enterprise = Some(EnterpriseSettings {
            idp_token_endpoint: endpoint.clone(),
            idp_client_id: idp_client.clone(),
            idp_client_secret: None,
            id_token: AssertionSource::Value(Assertion::new(id_token.clone())),
        });
    }
    if let Some(jwt) = &ctx.valid_jwt {
        c.workload_assertion = Some(AssertionSource::Value(Assertion::new(jwt.clone())));
    }
    c.client_metadata_url = Some(CIMD_URL.into());
    c.client_name = "mcp-oauth-conformance".into();
    c.callback_timeout = Duration::from_secs(15);
    c
}

async fn run(server_url: String) -> anyhow::Result<()> {
    let ctx: ScenarioContext = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(s) => serde_json::from_str(&s).context("MCP_CONFORMANCE_CONTEXT is not JSON")?,
        Err(_) => ScenarioContext::default(),
    };
    let protocol = match std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").ok() {
        Some(v) if v == "2026-07-28" => Protocol::Stateless,
        Some(v) => Protocol::Stateful(v),
        // Suites before 0.2 set no version and speak only the stateful wire.
        None => Protocol::Stateful(mcp_oauth::mcp::LATEST_STATEFUL_VERSION.into()),
    };
    let http = HttpClient::new(HttpPolicy::default())?;
    let browser = FollowingBrowser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(Duration::from_secs(20))
            .build()?,
    };
    let oauth = Arc::new(OAuthClient::new(
        config(&server_url, &ctx),
        http.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(browser),
    ));
    let options = McpClientOptions {
        protocol,
        ..Default::default()
    };
    let mcp = McpClient::new(
        server_url.clone(),
        http.reqwest().clone(),
        options,
        Some(oauth),
    );
    mcp.connect().await?;
    let tools = mcp.list_tools().await?;
    tracing::info!(count = tools.len(), "listed tools");
    if let Some(name) = tools
        .first()
        .and_then(|t| t.get("name"))
        .and_then(|n| n.as_str())
    {
        let result = mcp.call_tool(name, serde_json::json!({})).await?;
        println!("{}", mcp_oauth::mcp::text_content(&result));
    }
    mcp.list_tools().await?;
    if let Err(e) = mcp.close().await {
        tracing::info!(error = %e, "closing the session failed");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: mcp-oauth-conformance <server-url>");
        return std::process::ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(async { tokio::time::timeout(OVERALL_LIMIT, run(url)).await });
    match outcome {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: gave up after {} s", OVERALL_LIMIT.as_secs());
            std::process::ExitCode::FAILURE
        }
    }
}
