//! What the credential commands share: the HTTP client, the store, the OAuth client, and
//! the description of a stored credential (`login`, `status`).

use crate::progress;
use crate::store::Store;
use crate::ui::{self, AnnouncingBrowser, CliError};
use mcp_oauth::OAuthClient;
use mcp_oauth::OAuthConfig;
use mcp_oauth::doctor;
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth::store::{
    self, CredentialKey, CredentialRecord, RegistrationKind, UnreadableFile, canonical_server_url,
};
use serde::Serialize;
use std::sync::Arc;

pub fn http() -> anyhow::Result<HttpClient> {
    Ok(HttpClient::new(HttpPolicy::default())?)
}

/// What to do about a URL that is not an MCP server.
pub const NOT_MCP_HINT: &str = "check the URL: it must be the MCP endpoint itself (often ending in /mcp, or /sse), not a page of the web site";

/// The error for a URL whose answer shows that it is no MCP server (a web page), if it is
/// one; `None` for any other answer.
pub fn not_mcp(probe: &doctor::Probe) -> Option<anyhow::Error> {
    let doctor::Answer::NotMcp(_) = probe.answer() else {
        return None;
    };
    Some(
        CliError {
            message: probe.answer_in_words()?,
            hint: Some(NOT_MCP_HINT.into()),
            code: ui::exit::FAILURE,
        }
        .into(),
    )
}

/// An MCP request's failure in words: when the server's answer made no sense as MCP (an
/// HTTP error page, a body of another type), one unauthenticated request tells whether
/// the URL is an MCP server at all, and says so when it is not.
pub async fn mcp_failure(e: mcp_oauth::Error, http: &HttpClient, url: &str) -> anyhow::Error {
    use mcp_oauth::{Error, Step};
    if let Error::Status {
        step: Step::McpRequest,
        ..
    }
    | Error::Rule {
        step: Step::McpRequest,
        ..
    } = &e
    {
        let probe = {
            let _wait = progress::network(
                format!("Asking {} what it is", progress::host_of(url)),
                Some(doctor::PROBE_TIMEOUT),
            );
            doctor::probe(http, url, true).await
        };
        if let Some(e) = not_mcp(&probe) {
            return e;
        }
    }
    ui::with_hint(e.into(), url)
}

/// The store chosen for this run (`--store`, `MCP_OAUTH_STORE`, `[store]`, else files).
pub fn store() -> anyhow::Result<Store> {
    crate::store::open()
}

pub fn oauth_client(config: OAuthConfig, http: HttpClient, store: Store) -> OAuthClient {
    let browser = AnnouncingBrowser::new(config.callback_timeout);
    OAuthClient::new(config, http, store.shared(), Arc::new(browser))
}

/// A stored credential, without its secrets (`status --json`, `login --json`).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialSummary {
    /// The name the configuration file gives the server, if any (`status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub server_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_indicator: Option<String>,
    pub issuer: String,
    pub registration: RegistrationKind,
    pub client_id: String,
    /// Scopes granted, as the token response stated them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_scope: Option<String>,
    pub token_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Seconds until expiry (negative: expired); absent when the server gave no lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    pub expired: bool,
    pub refresh_token: bool,
    pub obtained_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
}

impl CredentialSummary {
    pub fn new(key: &CredentialKey, r: &CredentialRecord) -> Self {
        let now = ui::now_secs() as i64;
        let expires_in = r.tokens.expires_at.map(|e| e as i64 - now);
        CredentialSummary {
            name: None,
            server_url: key.server_url.clone(),
            profile: key.profile.clone(),
            resource: r.resource.clone(),
            resource_indicator: r.resource_indicator.clone(),
            issuer: r.issuer.clone(),
            registration: r.client.kind,
            client_id: r.client.client_id.clone(),
            scope: r.tokens.scope.clone(),
            requested_scope: r.tokens.requested_scope.clone(),
            token_type: r.tokens.token_type.clone(),
            expires_at: r.tokens.expires_at,
            expires_in,
            expired: expires_in.is_some_and(|s| s <= 0),
            refresh_token: r.tokens.refresh_token.is_some(),
            obtained_at: r.tokens.obtained_at,
            revocation_endpoint: r.revocation_endpoint.clone(),
        }
    }

    pub fn registration_short(&self) -> &'static str {
        match self.registration {
            RegistrationKind::PreRegistered => "pre-registered",
            RegistrationKind::ClientIdMetadataDocument => "CIMD",
            RegistrationKind::Dynamic => "DCR",
        }
    }

    pub fn expiry_text(&self) -> String {
        match (self.expires_at, self.expires_in) {
            (Some(at), Some(s)) if s <= 0 => {
                format!("expired {} ({})", ui::relative(s), ui::utc(at))
            }
            (Some(at), Some(s)) => format!("{} ({})", ui::relative(s), ui::utc(at)),
            _ => "not stated by the server".into(),
        }
    }
}

/// Does a stored key belong to `url` (the same server however spelled: see
/// [`mcp_oauth::store::canonical_server_url`])? A trailing slash is forgiven here, in
/// what the user names: `status https://h/mcp/` finds `https://h/mcp`.
pub fn same_server(key_url: &str, url: &str) -> bool {
    let trimmed = |u: &str| canonical_server_url(u).trim_end_matches('/').to_string();
    store::same_server(key_url, url) || trimmed(key_url) == trimmed(url)
}

/// The unreadable credential files that belong to `url` (every one without it) and
/// `profile`. A file that no longer says whose it is belongs to `url` when it is where
/// `url`'s credential would be kept (the name is a hash of the server and profile).
pub fn unreadable_for(
    store: &Store,
    files: Vec<UnreadableFile>,
    url: Option<&str>,
    profile: Option<&str>,
) -> Vec<UnreadableFile> {
    let here = url.and_then(|u| {
        store
            .as_file()?
            .credential_file(&CredentialKey::new(u).with_profile(profile.map(str::to_owned)))
            .ok()
    });
    files
        .into_iter()
        .filter(|f| match (&f.key, url) {
            (Some(k), _) => {
                url.is_none_or(|u| same_server(&k.server_url, u))
                    && profile.is_none_or(|p| k.profile.as_deref() == Some(p))
            }
            (None, None) => profile.is_none(),
            (None, Some(_)) => here.as_ref() == Some(&f.path),
        })
        .collect()
}

/// An unreadable credential file as `status --json` and `logout --json` show it.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableSummary {
    /// The server, when the file still says (else null).
    pub server_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub unreadable: UnreadableDetail,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnreadableDetail {
    pub path: String,
    pub reason: String,
    /// The command that fixes it.
    pub fix: String,
}

impl UnreadableSummary {
    pub fn new(f: &UnreadableFile) -> Self {
        UnreadableSummary {
            server_url: f.key.as_ref().map(|k| k.server_url.clone()),
            profile: f.key.as_ref().and_then(|k| k.profile.clone()),
            unreadable: UnreadableDetail {
                path: f.path.display().to_string(),
                reason: f.reason.clone(),
                fix: f.fix_command(),
            },
        }
    }
}
