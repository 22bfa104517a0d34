//! What the doctor found: the typed, serialisable report (`mcp-oauth doctor --json` prints
//! it as it is; the command line renders it as text).

use crate::discovery::as_metadata::{AuthServerMetadata, MetadataKind};
use crate::discovery::prm::{PrmSource, ProtectedResourceMetadata};
use crate::store::RegistrationKind;
use serde::Serialize;

use super::probe::Probe;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// As the spec wants it.
    Ok,
    /// Worth knowing.
    Info,
    /// A SHOULD is not met, or clients in the field stumble here.
    Warn,
    /// A MUST of the spec is broken.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which step: `challenge`, `prm`, `resource`, `as_metadata`, `issuer`, `pkce`,
    /// `https`, `iss`, `registration`, `refresh`, `machine`.
    pub step: &'static str,
    /// How serious the finding is.
    pub level: Level,
    /// The finding in words.
    pub message: String,
    /// What to change, and where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What a client with a known behaviour experiences at this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientVerdict {
    /// The behaviour, e.g. "ignores resource_metadata and probes only the root".
    pub behaviour: String,
    /// Whether such a client gets through discovery at this server.
    pub works: bool,
    /// The reason, in words (e.g. what the URL it tries answers).
    pub why: String,
    /// What the server could change so that such a client works too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The challenge as parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChallengeReport {
    /// The challenges of the POST probe, as received.
    pub received: Vec<String>,
    /// Why a received header is malformed (RFC 9110 §11.6.1 syntax); empty when all parse.
    pub parse_errors: Vec<String>,
    /// Every challenge's scheme, in order.
    pub schemes: Vec<String>,
    /// Whether one of the challenges is a `Bearer` challenge (RFC 6750 §3).
    pub bearer: bool,
    /// The Bearer challenge's `resource_metadata` parameter as sent: the PRM URL (RFC 9728 §5.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_metadata: Option<String>,
    /// `resource_metadata` resolved against the server URL when it was relative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_metadata_resolved: Option<String>,
    /// The Bearer challenge's `scope` parameter: the scope the server asks for (RFC 6750 §3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The Bearer challenge's `error` parameter, e.g. `invalid_token` (RFC 6750 §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One PRM candidate URL and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrmCandidate {
    /// Where the URL came from: the challenge, or a well-known URL (RFC 9728 §3.1).
    pub source: PrmSource,
    /// The candidate URL as fetched.
    pub url: String,
    /// The HTTP status of the answer; absent when there was none (the `outcome` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A document that identifies this server and names an authorization server.
    pub valid: bool,
    /// The one a spec-following client uses (the first valid one in spec order).
    pub authoritative: bool,
    /// What was concluded.
    pub outcome: String,
    /// The protected resource metadata document served there, valid or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<ProtectedResourceMetadata>,
}

/// One authorization server metadata candidate URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsCandidate {
    /// How the URL was formed from the issuer (RFC 8414 §3.1, OIDC Discovery, configured, or
    /// the 2025-03-26 fallback).
    pub kind: MetadataKind,
    /// The candidate URL as fetched.
    pub url: String,
    /// The HTTP status of the answer; absent when there was none (the `outcome` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A metadata document that passes validation (its `issuer` matches, RFC 8414 §3.3) was
    /// served there.
    pub valid: bool,
    /// The one a spec-following client uses.
    pub used: bool,
    /// What was concluded: `valid`, `REJECTED: <why>`, or why there is no document.
    pub outcome: String,
}

/// One authorization server named by the PRM (or the 2025-03-26 fallback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsReport {
    /// The issuer as named by the PRM's `authorization_servers`.
    pub issuer: String,
    /// Every metadata URL tried for this issuer, in the order a client tries them.
    pub candidates: Vec<AsCandidate>,
    /// The first valid metadata document among the candidates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AuthServerMetadata>,
}

/// The registration options the authorization server offers this client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationReport {
    /// A client id from the configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_registered: Option<String>,
    /// The authorization server advertises `client_id_metadata_document_supported`.
    pub cimd_supported: bool,
    /// The configured URL of this client's Client ID Metadata Document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_metadata_url: Option<String>,
    /// The authorization server's Dynamic Client Registration endpoint (RFC 7591).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// What this client would use, in the spec's priority order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<RegistrationKind>,
    /// How that client would authenticate at the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// The loopback redirect URI this client would send for this server (the one to
    /// register for a pre-registered client); absent when the redirect settings are
    /// unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// What happened when `--login` continued into a real login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginReport {
    /// Whether the login completed.
    pub ok: bool,
    /// The issuer of the authorization server that issued the tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// How the client was registered for the login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationKind>,
    /// The scope granted (or, when the token response named none, the scope requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the access token expires, in seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Whether a refresh token was issued.
    pub refresh_token: bool,
    /// Why the login failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The MCP server URL diagnosed, as given.
    pub server_url: String,
    /// The unauthenticated requests to the server (`POST initialize`, then `GET`).
    pub probes: Vec<Probe>,
    /// The `POST initialize` probe's `WWW-Authenticate` challenge, as parsed.
    pub challenge: ChallengeReport,
    /// Every protected resource metadata candidate URL (RFC 9728), in spec order.
    pub prm: Vec<PrmCandidate>,
    /// The `resource` a spec client sends (`None`: omitted by configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Every authorization server the PRM names, with its metadata candidates.
    pub authorization_servers: Vec<AsReport>,
    /// How this client would register; absent when the doctor found no authorization server
    /// metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationReport>,
    /// The scope the client would request first, and why ([`crate::client::scope`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::client::scope::ScopeChoice>,
    /// Every finding, in the order the steps ran.
    pub checks: Vec<Check>,
    /// What clients with a known behaviour experience at this server.
    pub clients: Vec<ClientVerdict>,
    /// The outcome of the real login `--login` asked for; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginReport>,
}

impl DoctorReport {
    /// How many MUSTs of the spec are broken.
    pub fn must_violations(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Fail)
            .count()
    }

    /// How many findings are warnings: unmet SHOULDs, or places where clients stumble.
    pub fn warnings(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Warn)
            .count()
    }

    /// The validated metadata a spec client uses, if discovery gets that far.
    pub fn metadata(&self) -> Option<&AuthServerMetadata> {
        self.authorization_servers
            .iter()
            .find_map(|a| a.metadata.as_ref())
    }

    pub(super) fn check(
        &mut self,
        step: &'static str,
        level: Level,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            step,
            level,
            message: message.into(),
            fix,
        });
    }

    pub(super) fn client(
        &mut self,
        behaviour: impl Into<String>,
        works: bool,
        why: impl Into<String>,
        fix: Option<String>,
    ) {
        self.clients.push(ClientVerdict {
            behaviour: behaviour.into(),
            works,
            why: why.into(),
            fix,
        });
    }

    /// An empty report on `server_url`, which the steps fill in.
    pub(super) fn new(server_url: String) -> Self {
        DoctorReport {
            server_url,
            probes: Vec::new(),
            challenge: ChallengeReport::default(),
            prm: Vec::new(),
            resource: None,
            authorization_servers: Vec::new(),
            registration: None,
            scope: None,
            checks: Vec::new(),
            clients: Vec::new(),
            login: None,
        }
    }
}

/// How a metadata candidate URL was formed, in the report's words.
pub fn metadata_kind_name(k: MetadataKind) -> &'static str {
    match k {
        MetadataKind::OAuth => "RFC 8414",
        MetadataKind::OidcInserted => "OIDC, path inserted",
        MetadataKind::OidcAppended => "OIDC, path appended",
        MetadataKind::Configured => "configured URL",
        MetadataKind::Legacy => "2025-03-26 fallback",
    }
}
