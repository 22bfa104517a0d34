//! `mcp-oauth doctor`: walks the whole chain the MCP authorization spec defines for one
//! server and explains every step, without logging in.
//!
//! Unlike [`crate::discovery::discover`], which stops at the first usable document, the
//! doctor asks *every* candidate (each PRM URL, each authorization server metadata URL),
//! so that it can say which one a spec-following client uses and which clients with a
//! known shortcut fail, and why. It reuses discovery's pieces ([`prm::candidates`],
//! [`prm::fetch`], [`prm::check`], [`as_metadata::candidates`],
//! [`as_metadata::fetch_candidate`]) so that its verdicts are the engine's.
//!
//! The report is a typed, serialisable struct ([`DoctorReport`], `--json`) with a plain
//! text rendering ([`DoctorReport::render`]). [`DoctorReport::must_violations`] counts
//! broken MUSTs of the spec; the command line exits non-zero when there is one.

use crate::challenge;
use crate::config::{OAuthConfig, ResourceSetting};
use crate::discovery::as_metadata::{self, AuthServerMetadata, MetadataKind};
use crate::discovery::prm::{self, PrmFetch, PrmSource, ProtectedResourceMetadata};
use crate::discovery::trace::{DiscoveryTrace, Verdict};
use crate::http::HttpClient;
use crate::store::RegistrationKind;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

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

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which step: `challenge`, `prm`, `resource`, `as_metadata`, `issuer`, `pkce`,
    /// `https`, `iss`, `registration`, `refresh`.
    pub step: &'static str,
    pub level: Level,
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
    pub works: bool,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// One unauthenticated request to the MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// `POST initialize` or `GET`.
    pub request: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Every `WWW-Authenticate` field value, as received.
    pub www_authenticate: Vec<String>,
    /// The media type of the answer (`text/html`, `application/json`, …), lower case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an unauthenticated MCP request's answer says about the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer at all (the probe's `error` says why).
    Nothing,
    /// 401, or 403 with a challenge: the server asks for authorization.
    Challenge,
    /// A 2xx MCP answer (JSON or an event stream): the server needs no token.
    Open,
    /// Not an MCP server: what it returned instead ("an HTML page").
    NotMcp(String),
    /// Another status (404, 405, a 403 without a challenge, …): discovery may still tell.
    Other,
}

impl Probe {
    fn bearer(&self) -> Option<challenge::BearerChallenge> {
        let (c, _) = challenge::parse_challenges_lenient(&self.www_authenticate);
        challenge::bearer(&c)
    }

    /// What the answer says about the URL. A challenge wins over the body (gateways send
    /// HTML 401 pages); an HTML page is never an MCP answer, whatever its status.
    pub fn answer(&self) -> Answer {
        let Some(status) = self.status else {
            return Answer::Nothing;
        };
        if status == 401 || (status == 403 && !self.www_authenticate.is_empty()) {
            return Answer::Challenge;
        }
        let media = self.content_type.as_deref().unwrap_or_default();
        if media == "text/html" || media == "application/xhtml+xml" {
            return Answer::NotMcp("an HTML page".into());
        }
        if (200..300).contains(&status) {
            return match media {
                "application/json" | "text/event-stream" => Answer::Open,
                "" => Answer::Other,
                other => Answer::NotMcp(format!("{} content", crate::util::excerpt(other, 60))),
            };
        }
        Answer::Other
    }

    /// The answer in words, for [`Answer::Open`] and [`Answer::NotMcp`].
    pub fn answer_in_words(&self) -> Option<String> {
        let url = &self.url;
        match self.answer() {
            Answer::Open => Some(format!(
                "{url} did not ask for authorization (it answered the MCP request without a token)"
            )),
            Answer::NotMcp(what) => Some(format!(
                "{url} does not answer as an MCP server (it returned {what}, HTTP {}, to an MCP \
                 request)",
                self.status.unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

/// The challenge as parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChallengeReport {
    /// The challenges of the POST probe, as received.
    pub received: Vec<String>,
    pub parse_errors: Vec<String>,
    /// Every challenge's scheme, in order.
    pub schemes: Vec<String>,
    pub bearer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_metadata: Option<String>,
    /// `resource_metadata` resolved against the server URL when it was relative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_metadata_resolved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One PRM candidate URL and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrmCandidate {
    pub source: PrmSource,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A document that identifies this server and names an authorization server.
    pub valid: bool,
    /// The one a spec-following client uses (the first valid one in spec order).
    pub authoritative: bool,
    /// What was concluded.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<ProtectedResourceMetadata>,
}

/// One authorization server metadata candidate URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsCandidate {
    pub kind: MetadataKind,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub valid: bool,
    /// The one a spec-following client uses.
    pub used: bool,
    pub outcome: String,
}

/// One authorization server named by the PRM (or the 2025-03-26 fallback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsReport {
    /// The issuer as named by the PRM's `authorization_servers`.
    pub issuer: String,
    pub candidates: Vec<AsCandidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AuthServerMetadata>,
}

/// The registration options the authorization server offers this client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationReport {
    /// A client id from the configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_registered: Option<String>,
    pub cimd_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_metadata_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// What this client would use, in the spec's priority order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<RegistrationKind>,
    /// How that client would authenticate at the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
}

/// What happened when `--login` continued into a real login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginReport {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    pub refresh_token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    pub server_url: String,
    pub probes: Vec<Probe>,
    pub challenge: ChallengeReport,
    pub prm: Vec<PrmCandidate>,
    /// The `resource` a spec client sends (`None`: omitted by configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub authorization_servers: Vec<AsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationReport>,
    /// The scope the client would request first, and why ([`crate::client::scope`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::client::scope::ScopeChoice>,
    pub checks: Vec<Check>,
    pub clients: Vec<ClientVerdict>,
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

    fn check(
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

    fn client(
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
}

/// How long each unauthenticated request of [`probe`] may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The unauthenticated requests: `POST initialize` (what a client sends first, and the
/// only way to see a challenge that only POST gets) and `GET` (what some clients probe
/// with). Also used by `mcp-oauth login` to collect the challenge.
pub async fn probe(http: &HttpClient, url: &str, post: bool) -> Probe {
    let req = if post {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": crate::wire::LATEST_STATEFUL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-oauth", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        http.reqwest()
            .post(url)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .json(&body)
    } else {
        http.reqwest()
            .get(url)
            .header(http::header::ACCEPT, "text/event-stream")
    };
    let name = if post { "POST initialize" } else { "GET" };
    // Only the status and headers matter; a 200 may be an endless event stream.
    match req.timeout(PROBE_TIMEOUT).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty());
            let www_authenticate = resp
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            // A server that needs no authorization may have opened a session: end it.
            if let Some(sid) = resp.headers().get("mcp-session-id").cloned()
                && (200..300).contains(&status)
            {
                drop(resp);
                let _ = http
                    .reqwest()
                    .delete(url)
                    .header("mcp-session-id", sid)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
            Probe {
                request: name.into(),
                url: url.into(),
                status: Some(status),
                www_authenticate,
                content_type,
                error: None,
            }
        }
        Err(e) => Probe {
            request: name.into(),
            url: url.into(),
            status: None,
            www_authenticate: Vec::new(),
            content_type: None,
            error: Some(
                crate::error::Error::from_reqwest(
                    crate::error::Step::McpRequest,
                    url,
                    &e,
                    PROBE_TIMEOUT.as_secs(),
                )
                .to_string(),
            ),
        },
    }
}

/// Diagnoses `config.server_url`. Never fails: what cannot be reached is a finding.
pub async fn diagnose(http: &HttpClient, config: &OAuthConfig) -> DoctorReport {
    // Every URL the server hands out is fetched under its network policy (crate::netpolicy).
    let http = &http.for_config(config);
    let server_url = config.server_url.clone();
    let mut r = DoctorReport {
        server_url: server_url.clone(),
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
    };
    let parsed_url = match url::Url::parse(&server_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            r.check(
                "challenge",
                Level::Fail,
                format!("{server_url:?} is not an absolute http(s) URL"),
                Some("give the MCP endpoint's full URL, e.g. https://example.com/mcp".into()),
            );
            return r;
        }
    };
    if parsed_url.scheme() == "http" && !is_loopback(&parsed_url) {
        r.check(
            "https",
            Level::Fail,
            format!("the MCP server is reached over plain http ({server_url}); tokens would travel unencrypted (OAuth 2.1 §1.5)"),
            Some("serve the MCP endpoint over https".into()),
        );
    }

    // 1. The challenge.
    let post = probe(http, &server_url, true).await;
    let get = probe(http, &server_url, false).await;
    r.probes = vec![post.clone(), get.clone()];
    read_challenge(&mut r, &post);
    // A server that needs no token, or a URL that is no MCP server: OAuth discovery has
    // nothing to find there, and its findings would only mislead.
    match post.answer() {
        Answer::Open => {
            let words = post.answer_in_words().unwrap_or_default();
            r.check(
                "challenge",
                Level::Info,
                format!("{words}: an MCP client needs no OAuth here"),
                None,
            );
            return r;
        }
        Answer::NotMcp(_) => {
            r.check(
                "challenge",
                Level::Fail,
                post.answer_in_words().unwrap_or_default(),
                Some(
                    "give the URL of the MCP endpoint itself (often ending in /mcp, or /sse), \
                     not of a web page"
                        .into(),
                ),
            );
            return r;
        }
        _ => {}
    }
    let Some(status) = post.status else {
        r.check(
            "challenge",
            Level::Fail,
            format!(
                "the MCP server could not be reached: {}",
                post.error.clone().unwrap_or_default()
            ),
            Some(
                "check the URL, the network and the proxy settings (HTTPS_PROXY, NO_PROXY)".into(),
            ),
        );
        return r;
    };
    match status {
        401 => r.check("challenge", Level::Ok, "an unauthenticated POST initialize is answered 401", None),
        403 if !r.challenge.bearer => r.check(
            "challenge",
            Level::Warn,
            "an unauthenticated POST initialize is answered 403 without a Bearer challenge: that is a \
             firewall or WAF refusal, not an OAuth challenge (the spec wants 401)",
            Some("let unauthenticated requests reach the MCP server, which answers 401".into()),
        ),
        s if (200..300).contains(&s) => r.check(
            "challenge",
            Level::Info,
            format!("an unauthenticated POST initialize is answered HTTP {s}: this server does not require authorization for it"),
            None,
        ),
        s => r.check(
            "challenge",
            Level::Warn,
            format!("an unauthenticated POST initialize is answered HTTP {s}, not 401"),
            None,
        ),
    }
    if status == 401 && !r.challenge.bearer {
        r.check(
            "challenge",
            Level::Fail,
            "the 401 carries no Bearer challenge in WWW-Authenticate (RFC 6750 §3, RFC 9728 §5.1)",
            Some(
                "answer 401 with `WWW-Authenticate: Bearer resource_metadata=\"<PRM URL>\"`".into(),
            ),
        );
    }

    // 2. Protected resource metadata: every candidate.
    let mut trace = DiscoveryTrace::default();
    let rm = r.challenge.resource_metadata.clone();
    let candidates = match prm::candidates(&server_url, rm.as_deref(), &mut trace) {
        Ok(c) => c,
        Err(e) => {
            r.check("prm", Level::Fail, e.to_string(), None);
            return r;
        }
    };
    for (source, url) in candidates {
        let cand = match prm::fetch(http, &url).await {
            PrmFetch::Unusable { status, why } => PrmCandidate {
                source,
                url,
                status,
                valid: false,
                authoritative: false,
                outcome: no_document(status, why),
                document: None,
            },
            PrmFetch::Document { status, metadata } => {
                let rule = prm::check(&metadata, &server_url);
                PrmCandidate {
                    source,
                    url,
                    status: Some(status),
                    valid: rule.is_none(),
                    authoritative: false,
                    outcome: rule
                        .map(|r| format!("REJECTED: {r}"))
                        .unwrap_or_else(|| "valid".into()),
                    document: Some(metadata),
                }
            }
        };
        r.prm.push(cand);
    }
    // Spec order: the first candidate with a document is the one a client acts on (one
    // that breaks a rule stops a correct client; it does not fall through).
    let first_doc = r.prm.iter().position(|c| c.document.is_some());
    if let Some(i) = first_doc {
        r.prm[i].authoritative = r.prm[i].valid;
    }
    prm_checks(&mut r, first_doc);
    let prm_doc =
        first_doc.and_then(|i| r.prm[i].valid.then(|| r.prm[i].document.clone()).flatten());

    // 3. Authorization server metadata: every candidate of every listed server.
    match &prm_doc {
        Some(doc) => {
            r.resource = match &config.resource {
                ResourceSetting::FromMetadata => Some(doc.resource.clone()),
                ResourceSetting::Override(s) => Some(s.clone()),
                ResourceSetting::Omit => None,
            };
            for issuer in &doc.authorization_servers {
                let rep = as_report(http, config, issuer, None).await;
                r.authorization_servers.push(rep);
            }
        }
        None if first_doc.is_none() => {
            // 2025-03-26 fallback: the MCP origin is the authorization server.
            let origin = parsed_url.origin().ascii_serialization();
            r.resource = match &config.resource {
                ResourceSetting::FromMetadata => Some(server_url.clone()),
                ResourceSetting::Override(s) => Some(s.clone()),
                ResourceSetting::Omit => None,
            };
            let legacy = format!("{origin}/.well-known/oauth-authorization-server");
            let rep = as_report(http, config, &origin, Some(legacy)).await;
            r.authorization_servers.push(rep);
        }
        None => {}
    }
    let used_issuer = pick_used(&mut r, config);
    as_checks(&mut r, prm_doc.as_ref(), used_issuer.as_deref(), config);
    if let Some(meta) = r.metadata().cloned() {
        let resource_dpop = r
            .challenge
            .schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case("DPoP"))
            || prm_doc.as_ref().is_some_and(|p| {
                p.dpop_bound_access_tokens_required == Some(true)
                    || p.dpop_signing_alg_values_supported
                        .as_ref()
                        .is_some_and(|a| !a.is_empty())
            });
        machine_checks(&mut r, &meta, resource_dpop);
    }
    registration_checks(&mut r, config);
    scope_plan(&mut r, config, prm_doc.as_ref());
    client_verdicts(&mut r, &parsed_url, &post, &get, prm_doc.as_ref());
    r
}

/// "no document" rather than "HTTP 404" next to "[HTTP 404]".
fn no_document(status: Option<u16>, why: String) -> String {
    match status {
        Some(s) if why == format!("HTTP {s}") => "no document".into(),
        _ => why,
    }
}

fn is_loopback(u: &url::Url) -> bool {
    crate::util::is_loopback_url(u)
}

fn read_challenge(r: &mut DoctorReport, post: &Probe) {
    let (challenges, errors) = challenge::parse_challenges_lenient(&post.www_authenticate);
    let bearer = challenge::bearer(&challenges);
    let mut c = ChallengeReport {
        received: post.www_authenticate.clone(),
        parse_errors: errors.iter().map(|e| e.to_string()).collect(),
        schemes: challenges.iter().map(|c| c.scheme.clone()).collect(),
        bearer: bearer.is_some(),
        ..Default::default()
    };
    if let Some(b) = bearer {
        c.scope = b.scope;
        c.error = b.error;
        if let Some(rm) = b.resource_metadata {
            if url::Url::parse(&rm).is_err()
                && let Ok(abs) = url::Url::parse(&r.server_url).and_then(|base| base.join(&rm))
            {
                c.resource_metadata_resolved = Some(abs.to_string());
            }
            c.resource_metadata = Some(rm);
        }
    }
    for e in &c.parse_errors {
        r.checks.push(Check {
            step: "challenge",
            level: Level::Warn,
            message: format!("the WWW-Authenticate header is malformed: {e}"),
            fix: Some("send RFC 9110 §11.6.1 syntax: quoted-string values, comma-separated".into()),
        });
    }
    r.challenge = c;
}

fn prm_checks(r: &mut DoctorReport, first_doc: Option<usize>) {
    let header = r
        .prm
        .iter()
        .find(|c| c.source == PrmSource::Header)
        .cloned();
    let rm = r.challenge.resource_metadata.clone();
    match (&rm, &header) {
        (Some(_), Some(h)) if h.valid => r.check(
            "prm",
            Level::Ok,
            format!("the challenge's resource_metadata ({}) serves a valid document", h.url),
            None,
        ),
        // A document that breaks a rule is reported by the `resource` check below.
        (Some(_), Some(h)) if h.document.is_some() => {}
        (Some(_), Some(h)) => r.check(
            "prm",
            Level::Fail,
            format!(
                "the challenge's resource_metadata ({}) does not serve a usable document: {}",
                h.url, h.outcome
            ),
            Some("serve the protected resource metadata at the URL the challenge names".into()),
        ),
        (Some(rm), None) => r.check(
            "prm",
            Level::Warn,
            format!("the challenge's resource_metadata {rm:?} is not a URL"),
            None,
        ),
        (None, _) if r.challenge.bearer => r.check(
            "prm",
            Level::Warn,
            "the Bearer challenge has no resource_metadata parameter: clients must fall back to the \
             well-known URLs (RFC 9728 §5.1 makes it the primary mechanism)",
            Some("add resource_metadata=\"<PRM URL>\" to the challenge".into()),
        ),
        _ => {}
    }
    if r.challenge.resource_metadata_resolved.is_some() {
        r.check(
            "prm",
            Level::Warn,
            format!(
                "resource_metadata {:?} is relative; RFC 9728 §5.1 wants a URL (mcp-oauth resolves it against the \
                 server URL, many clients do not)",
                rm.unwrap_or_default()
            ),
            Some("send an absolute resource_metadata URL".into()),
        );
    }
    match first_doc {
        None => r.check(
            "prm",
            Level::Fail,
            "no protected resource metadata at any candidate URL: MCP servers MUST implement RFC 9728 \
             (clients fall back to the 2025-03-26 behaviour, the MCP origin as authorization server)",
            Some(format!(
                "serve the PRM at {}",
                r.prm.iter().map(|c| c.url.as_str()).next().unwrap_or("/.well-known/oauth-protected-resource")
            )),
        ),
        Some(i) if !r.prm[i].valid => {
            let c = r.prm[i].clone();
            r.check(
                "resource",
                Level::Fail,
                format!("{}: {}", c.url, c.outcome.trim_start_matches("REJECTED: ")),
                Some(format!(
                    "publish \"resource\": {:?} (or the server's origin) in the PRM",
                    r.server_url
                )),
            );
        }
        Some(i) => {
            let c = r.prm[i].clone();
            let doc = c.document.clone().unwrap_or_else(unreachable_doc);
            r.check(
                "resource",
                Level::Ok,
                format!("the PRM resource {:?} identifies the server (RFC 9728 §3.3)", doc.resource),
                None,
            );
            // Documents that disagree with the authoritative one.
            for other in r.prm.clone().iter().filter(|o| o.url != c.url && o.document.is_some()) {
                let od = other.document.clone().unwrap_or_else(unreachable_doc);
                if od.resource != doc.resource || od.authorization_servers != doc.authorization_servers {
                    r.check(
                        "prm",
                        Level::Warn,
                        format!(
                            "{} serves a different document (resource {:?}, authorization_servers {:?}) than \
                             the authoritative {}: clients that probe it get other answers",
                            other.url, od.resource, od.authorization_servers, c.url
                        ),
                        None,
                    );
                }
            }
        }
    }
}

fn unreachable_doc() -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource: String::new(),
        authorization_servers: Vec::new(),
        scopes_supported: None,
        bearer_methods_supported: None,
        resource_name: None,
        ..Default::default()
    }
}

/// Fetches every metadata candidate of `issuer`.
async fn as_report(
    http: &HttpClient,
    config: &OAuthConfig,
    issuer: &str,
    legacy: Option<String>,
) -> AsReport {
    let mut cands: Vec<(MetadataKind, String)> = Vec::new();
    if let Some(u) = &config.auth_server_metadata_url {
        cands.push((MetadataKind::Configured, u.clone()));
    }
    match legacy {
        Some(u) => cands.push((MetadataKind::Legacy, u)),
        None => match as_metadata::candidates(issuer) {
            Ok(c) => cands.extend(c),
            Err(e) => {
                return AsReport {
                    issuer: issuer.to_string(),
                    candidates: vec![AsCandidate {
                        kind: MetadataKind::OAuth,
                        url: issuer.to_string(),
                        status: None,
                        valid: false,
                        used: false,
                        outcome: e.to_string(),
                    }],
                    metadata: None,
                };
            }
        },
    }
    let mut out = AsReport {
        issuer: issuer.to_string(),
        candidates: Vec::new(),
        metadata: None,
    };
    for (kind, url) in cands {
        let mut t = DiscoveryTrace::default();
        // PKCE is judged below with the spec's rule; here a missing field still yields
        // the document, so that the rest of it can be examined.
        let got = as_metadata::fetch_candidate(
            http,
            kind,
            &url,
            Some(issuer),
            crate::config::PkceMetadataPolicy::AllowMissing,
            &mut t,
        )
        .await;
        let attempt = t.attempts.last();
        let outcome = match attempt.map(|a| &a.verdict) {
            Some(Verdict::Used) | Some(Verdict::Note(_)) => "valid".to_string(),
            Some(Verdict::Skipped(w)) => no_document(attempt.and_then(|a| a.status), w.clone()),
            Some(Verdict::Rejected(w)) => format!("REJECTED: {w}"),
            _ => String::new(),
        };
        out.candidates.push(AsCandidate {
            kind,
            url,
            status: attempt.and_then(|a| a.status),
            valid: got.is_some(),
            used: false,
            outcome,
        });
        if out.metadata.is_none()
            && let Some((meta, _)) = got
        {
            out.metadata = Some(meta);
        }
    }
    out
}

/// Marks the candidate a spec client uses; returns the issuer used.
fn pick_used(r: &mut DoctorReport, config: &OAuthConfig) -> Option<String> {
    let pick = config.authorization_server.clone();
    for a in &mut r.authorization_servers {
        if pick.as_ref().is_some_and(|p| p != &a.issuer) {
            continue;
        }
        if let Some(c) = a.candidates.iter_mut().find(|c| c.valid) {
            c.used = true;
            return Some(a.issuer.clone());
        }
    }
    None
}

fn as_checks(
    r: &mut DoctorReport,
    prm_doc: Option<&ProtectedResourceMetadata>,
    used: Option<&str>,
    config: &OAuthConfig,
) {
    if r.authorization_servers.is_empty() {
        return;
    }
    let Some(used) = used else {
        let tried: Vec<String> = r
            .authorization_servers
            .iter()
            .flat_map(|a| {
                a.candidates
                    .iter()
                    .map(|c| format!("{} ({})", c.url, c.outcome))
            })
            .collect();
        r.check(
            "as_metadata",
            Level::Fail,
            format!(
                "no usable authorization server metadata (RFC 8414 or OIDC Discovery MUST be provided); tried: {}",
                tried.join("; ")
            ),
            Some(
                "serve the metadata at the issuer's well-known URL, or tell clients where it is \
                 (auth_server_metadata_url / --as-metadata-url)"
                    .into(),
            ),
        );
        return;
    };
    let Some(rep) = r
        .authorization_servers
        .iter()
        .find(|a| a.issuer == used)
        .cloned()
    else {
        return;
    };
    let Some(meta) = rep.metadata.clone() else {
        return;
    };
    let used_c = rep.candidates.iter().find(|c| c.used).cloned();
    if let Some(c) = &used_c {
        r.check(
            "as_metadata",
            Level::Ok,
            format!(
                "authorization server metadata for {used} at {} ({})",
                c.url,
                kind_name(c.kind)
            ),
            None,
        );
    }
    // Issuer identity.
    if meta.issuer == used {
        r.check(
            "issuer",
            Level::Ok,
            format!(
                "the metadata's issuer {:?} is the issuer the PRM names",
                meta.issuer
            ),
            None,
        );
    } else {
        r.check(
            "issuer",
            Level::Warn,
            format!(
                "issuer differs from PRM by a trailing slash: the PRM names {used:?}, the metadata says {:?} \
                 (RFC 8414 §3.3 wants them identical; mcp-oauth tolerates a trailing slash on a path-less \
                 issuer, strict clients refuse the metadata)",
                meta.issuer
            ),
            Some(format!("list the issuer exactly as {:?} in the PRM's authorization_servers", meta.issuer)),
        );
    }
    // PKCE.
    match &meta.code_challenge_methods_supported {
        Some(m) if m.iter().any(|x| x == "S256") => {
            r.check("pkce", Level::Ok, "PKCE S256 is advertised (code_challenge_methods_supported)", None)
        }
        Some(m) => r.check(
            "pkce",
            Level::Fail,
            format!("code_challenge_methods_supported is {m:?}, without S256: MCP clients MUST use S256"),
            Some("support and advertise S256".into()),
        ),
        None => r.check(
            "pkce",
            Level::Fail,
            format!(
                "the metadata omits code_challenge_methods_supported: MCP clients MUST refuse to proceed{}",
                if config.pkce_metadata == crate::config::PkceMetadataPolicy::AllowMissing {
                    " (this configuration sets allow_missing_pkce_metadata, which weakens the check, so mcp-oauth proceeds)"
                } else {
                    ""
                }
            ),
            Some(
                "advertise \"code_challenge_methods_supported\": [\"S256\"]; as a client of a server you trust \
                 (AWS Cognito), set allow_missing_pkce_metadata = true (--allow-missing-pkce-metadata)"
                    .into(),
            ),
        ),
    }
    // HTTPS.
    let mut insecure = Vec::new();
    let mut loopback = false;
    for (name, v) in [
        ("issuer", Some(meta.issuer.as_str())),
        (
            "authorization_endpoint",
            meta.authorization_endpoint.as_deref(),
        ),
        ("token_endpoint", meta.token_endpoint.as_deref()),
        (
            "registration_endpoint",
            meta.registration_endpoint.as_deref(),
        ),
        ("revocation_endpoint", meta.revocation_endpoint.as_deref()),
        (
            "device_authorization_endpoint",
            meta.device_authorization_endpoint.as_deref(),
        ),
    ] {
        let Some(v) = v else { continue };
        if let Err(e) = as_metadata::require_https(name, v) {
            insecure.push(e);
        } else if v.starts_with("http:") {
            loopback = true;
        }
    }
    if insecure.is_empty() {
        r.check(
            "https",
            Level::Ok,
            if loopback {
                "authorization server endpoints use https, or plain http on loopback (the development exception)"
            } else {
                "authorization server endpoints use https"
            },
            None,
        );
    } else {
        r.check(
            "https",
            Level::Fail,
            insecure.join("; "),
            Some("serve every authorization server endpoint over https".into()),
        );
    }
    // iss.
    if meta.authorization_response_iss_parameter_supported == Some(true) {
        r.check(
            "iss",
            Level::Ok,
            "authorization_response_iss_parameter_supported: clients require and compare `iss` on the redirect (RFC 9207)",
            None,
        );
    } else {
        r.check(
            "iss",
            Level::Info,
            "the authorization server does not advertise `iss` in authorization responses (RFC 9207 SHOULD): \
             mix-up protection is weaker",
            None,
        );
    }
    if meta
        .response_types_supported
        .as_ref()
        .is_some_and(|t| !t.iter().any(|x| x == "code"))
    {
        r.check(
            "as_metadata",
            Level::Fail,
            "response_types_supported lacks \"code\"",
            None,
        );
    }
    // resource.
    match (&config.resource, prm_doc) {
        (ResourceSetting::Omit, _) => r.check(
            "resource",
            Level::Warn,
            "this configuration omits the resource parameter (resource = \"omit\"), which weakens audience binding \
             and breaks the spec's MUST; only for authorization servers that refuse it (Microsoft Entra)",
            None,
        ),
        (ResourceSetting::Override(s), _) => r.check(
            "resource",
            Level::Info,
            format!("this configuration sends resource {s:?} instead of the PRM's"),
            None,
        ),
        (ResourceSetting::FromMetadata, Some(d)) => r.check(
            "resource",
            Level::Ok,
            format!("clients send resource={:?} (RFC 8707) on the authorization and token requests, verbatim", d.resource),
            None,
        ),
        _ => {}
    }
    // Identity-provider quirks.
    let host = url::Url::parse(&meta.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if host.ends_with("login.microsoftonline.com") && config.resource != ResourceSetting::Omit {
        r.check(
            "resource",
            Level::Warn,
            "Microsoft Entra ID refuses a resource parameter together with v2 scopes (AADSTS9010010)",
            Some("set resource = \"omit\" and scopes = \"api://<app-id>/.default offline_access\" for this server".into()),
        );
    }
    if host == "accounts.google.com" {
        r.check(
            "refresh",
            Level::Warn,
            "Google issues refresh tokens only with access_type=offline and prompt=consent, and refuses offline_access",
            Some("set authorize_params = { access_type = \"offline\", prompt = \"consent\" } for this server".into()),
        );
    }
    if host.starts_with("cognito-idp.") {
        r.check(
            "pkce",
            Level::Info,
            "AWS Cognito supports S256 but does not advertise it",
            Some("set allow_missing_pkce_metadata = true for this server".into()),
        );
    }
    let rt = meta
        .grant_types_supported
        .as_ref()
        .is_none_or(|g| g.iter().any(|x| x == "refresh_token"));
    r.check(
        "refresh",
        if rt { Level::Ok } else { Level::Info },
        if rt {
            "refresh tokens are available (grant_types_supported includes refresh_token or is absent)".to_string()
        } else {
            "grant_types_supported lacks refresh_token: expect a new login whenever the access token expires".into()
        },
        None,
    );
    r.check(
        "as_metadata",
        Level::Info,
        format!(
            "revocation endpoint (RFC 7009): {}; device authorization endpoint (RFC 8628): {}",
            meta.revocation_endpoint.as_deref().unwrap_or("none"),
            meta.device_authorization_endpoint
                .as_deref()
                .unwrap_or("none")
        ),
        None,
    );
}

/// What the authorization server offers for clients without a user (agents, CI jobs,
/// company deployments) and for sender-constrained tokens.
fn machine_checks(r: &mut DoctorReport, meta: &AuthServerMetadata, resource_dpop: bool) {
    let grants = meta.grant_types_supported.as_deref().unwrap_or_default();
    let methods = meta.token_auth_methods();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let offers = |g: &str| grants.iter().any(|x| x == g);
    let as_dpop = meta
        .dpop_signing_alg_values_supported
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| x == crate::dpop::DPOP_ALG));
    r.check(
        "machine",
        Level::Info,
        format!(
            "without a user: client_credentials {}, private_key_jwt {}, jwt-bearer (workload \
             identity, enterprise ID-JAG) {}; DPoP: authorization server {}, MCP server {} \
             (tokens are DPoP-bound only when both support it)",
            yes_no(offers("client_credentials")),
            yes_no(methods.iter().any(|m| m == "private_key_jwt")),
            yes_no(offers(crate::token::grant_types::JWT_BEARER)),
            if as_dpop { "ES256" } else { "no" },
            yes_no(resource_dpop),
        ),
        None,
    );
}

/// The scope the client would request, by the same rules as a login.
fn scope_plan(r: &mut DoctorReport, config: &OAuthConfig, prm: Option<&ProtectedResourceMetadata>) {
    let Some(meta) = r.metadata().cloned() else {
        return;
    };
    let found_by_oidc = r.authorization_servers.iter().any(|a| {
        a.candidates.iter().any(|c| {
            c.used
                && matches!(
                    c.kind,
                    MetadataKind::OidcInserted | MetadataKind::OidcAppended
                )
        })
    });
    let openid = meta.is_openid_provider() || found_by_oidc;
    let choice = crate::client::scope::select(&crate::client::scope::ScopeInputs {
        challenge: r.challenge.scope.as_deref(),
        scopes_supported: prm.and_then(|p| p.scopes_supported.as_deref()),
        as_offers_offline_access: meta.supports_scope(crate::client::scope::OFFLINE_ACCESS),
        as_is_openid_provider: openid,
        ..crate::client::scope::ScopeInputs::from_settings(config)
    });
    if choice.base.is_none() && openid && meta.supports_scope(crate::client::scope::OFFLINE_ACCESS)
    {
        r.client(
            "adds offline_access alone to an empty scope, without prompt=consent",
            false,
            "the server names no scope (no challenge scope, no scopes_supported), and an OpenID \
             provider that applies OpenID Connect Core §11 grants offline_access only with \
             consent: such a request grants nothing and is refused (oidc-provider answers \
             access_denied; some providers grant it anyway)",
            Some(
                "publish scopes_supported in the protected resource metadata (or a scope in the \
                 challenge); mcp-oauth asks for consent with offline_access"
                    .into(),
            ),
        );
    }
    r.scope = Some(choice);
}

fn registration_checks(r: &mut DoctorReport, config: &OAuthConfig) {
    let Some(meta) = r.metadata().cloned() else {
        return;
    };
    let pre = config
        .client
        .as_ref()
        .filter(|c| c.issuer.as_deref().is_none_or(|i| i == meta.issuer))
        .map(|c| c.client_id.clone());
    let cimd = meta.client_id_metadata_document_supported == Some(true);
    let chosen = if pre.is_some() {
        Some(RegistrationKind::PreRegistered)
    } else if cimd && config.client_metadata_url.is_some() {
        Some(RegistrationKind::ClientIdMetadataDocument)
    } else if meta.registration_endpoint.is_some() {
        Some(RegistrationKind::Dynamic)
    } else {
        None
    };
    let auth_method = match chosen {
        Some(RegistrationKind::PreRegistered) => config.client.as_ref().map(|c| {
            crate::registration::pre_registered_auth_method(c, &meta.token_auth_methods())
        }),
        Some(RegistrationKind::ClientIdMetadataDocument) => {
            Some(crate::client_auth::ClientAuthMethod::None)
        }
        Some(RegistrationKind::Dynamic) => Some(crate::registration::dynamic_auth_method(&meta)),
        None => None,
    }
    .map(|m| m.as_str().to_string());
    r.registration = Some(RegistrationReport {
        token_endpoint_auth_method: auth_method,
        pre_registered: pre.clone(),
        cimd_supported: cimd,
        client_metadata_url: config.client_metadata_url.clone(),
        registration_endpoint: meta.registration_endpoint.clone(),
        chosen,
    });
    let offers = format!(
        "client ID metadata documents: {}; dynamic registration: {}",
        if cimd { "supported" } else { "not supported" },
        meta.registration_endpoint.as_deref().unwrap_or("none")
    );
    match chosen {
        Some(k) => r.check("registration", Level::Ok, format!("registration: {k} ({offers})"), None),
        None => r.check(
            "registration",
            Level::Warn,
            format!("no registration endpoint and no CIMD: clients need pre-registration ({offers})"),
            Some(
                "register a client at the authorization server (redirect URI: see `mcp-oauth login --help`) \
                 and pass --client-id, or set client_id in the config file"
                    .into(),
            ),
        ),
    }
}

fn kind_name(k: MetadataKind) -> &'static str {
    match k {
        MetadataKind::OAuth => "RFC 8414",
        MetadataKind::OidcInserted => "OIDC, path inserted",
        MetadataKind::OidcAppended => "OIDC, path appended",
        MetadataKind::Configured => "configured URL",
        MetadataKind::Legacy => "2025-03-26 fallback",
    }
}

fn source_name(s: PrmSource) -> &'static str {
    match s {
        PrmSource::Header => "resource_metadata",
        PrmSource::PathInserted => "path-inserted",
        PrmSource::Root => "root",
    }
}

fn client_verdicts(
    r: &mut DoctorReport,
    server: &url::Url,
    post: &Probe,
    get: &Probe,
    prm_doc: Option<&ProtectedResourceMetadata>,
) {
    let meta = r.metadata().cloned();
    let as_ok = meta.is_some();
    let s256 = meta
        .as_ref()
        .and_then(|m| m.code_challenge_methods_supported.as_ref())
        .is_some_and(|m| m.iter().any(|x| x == "S256"));
    let cand = |src: PrmSource| r.prm.iter().find(|c| c.source == src).cloned();
    let (header, path, root) = (
        cand(PrmSource::Header),
        cand(PrmSource::PathInserted),
        cand(PrmSource::Root),
    );
    let status_of = |c: &Option<PrmCandidate>| match c {
        Some(c) => match c.status {
            Some(s) if c.valid => format!("HTTP {s}, valid"),
            Some(s) if c.document.is_none() => format!("HTTP {s}"),
            Some(s) => format!("HTTP {s}, {}", c.outcome),
            None => c.outcome.clone(),
        },
        None => "not applicable".into(),
    };
    let valid = |c: &Option<PrmCandidate>| c.as_ref().is_some_and(|c| c.valid);

    // The spec's client.
    let spec_ok = prm_doc.is_some() && as_ok && s256;
    r.client(
        "follows the spec (resource_metadata, then the path-inserted and root well-known URLs; RFC 8414 then OIDC)",
        spec_ok,
        if spec_ok {
            "discovery completes; this is mcp-oauth's path".to_string()
        } else {
            "discovery stops: see the FAIL checks above".to_string()
        },
        None,
    );
    // A GET probe.
    if post.status == Some(401) {
        let get_bearer = get.bearer();
        let works = get.status == Some(401) && get_bearer.is_some();
        r.client(
            "sends a GET (not a POST) to collect the challenge",
            works,
            match get.status {
                Some(s) if works => format!("GET is answered {s} with a Bearer challenge too"),
                Some(s) => format!(
                    "GET is answered HTTP {s} without a Bearer challenge; only POST is challenged"
                ),
                None => format!("GET failed: {}", get.error.clone().unwrap_or_default()),
            },
            (!works).then(|| {
                "send the same 401 challenge to every method, or make clients POST".to_string()
            }),
        );
    }
    // Root-only probers.
    if path.is_some() || header.is_some() {
        let works = valid(&root);
        r.client(
            "ignores resource_metadata and probes only the root well-known URL",
            works,
            format!("root answers {}", status_of(&root)),
            (!works)
                .then(|| "also serve the PRM at /.well-known/oauth-protected-resource".to_string()),
        );
    }
    // Well-known only (no header support).
    let wk = valid(&path) || valid(&root);
    r.client(
        "ignores resource_metadata and tries the well-known URLs (path-inserted, then root)",
        wk,
        format!(
            "path-inserted: {}; root: {}",
            status_of(&path),
            status_of(&root)
        ),
        (!wk && path.iter().chain(root.iter()).all(|c| c.document.is_none())).then(|| {
            format!(
                "serve the PRM at {}",
                path.as_ref()
                    .or(root.as_ref())
                    .map(|c| c.url.clone())
                    .unwrap_or_default()
            )
        }),
    );
    // Header only.
    match (
        &r.challenge.resource_metadata,
        &r.challenge.resource_metadata_resolved,
    ) {
        (None, _) => r.client(
            "relies only on resource_metadata in the challenge (no well-known fallback)",
            false,
            "the challenge has no resource_metadata parameter",
            Some("add resource_metadata=\"<absolute PRM URL>\" to the 401 challenge".into()),
        ),
        (Some(rm), Some(abs)) => r.client(
            "does not resolve a relative resource_metadata",
            false,
            format!(
                "resource_metadata is {rm:?}, relative (resolved: {abs}){}",
                if wk {
                    "; such clients still succeed through the well-known fallback"
                } else {
                    ""
                }
            ),
            Some(format!("send resource_metadata=\"{abs}\"")),
        ),
        _ => {}
    }
    if meta.is_some() {
        r.client(
            "refuses an authorization server without S256 in its metadata",
            s256,
            if s256 {
                "S256 is advertised".to_string()
            } else {
                "code_challenge_methods_supported does not list S256".to_string()
            },
            (!s256)
                .then(|| "advertise \"code_challenge_methods_supported\": [\"S256\"]".to_string()),
        );
    }
    // Issuer strictness and metadata URL styles.
    let used_rep = r
        .authorization_servers
        .iter()
        .find(|a| a.candidates.iter().any(|c| c.used))
        .cloned();
    if let (Some(rep), Some(m)) = (&used_rep, &meta) {
        let strict = rep.issuer == m.issuer;
        r.client(
            "compares the issuer strictly (no trailing-slash tolerance)",
            strict,
            if strict {
                "the PRM's authorization server and the metadata's issuer are the same string"
                    .to_string()
            } else {
                format!(
                    "issuer differs from PRM by a trailing slash: {:?} vs {:?}",
                    rep.issuer, m.issuer
                )
            },
            (!strict).then(|| format!("name the issuer as {:?} in the PRM", m.issuer)),
        );
        let ok_kind = |k: MetadataKind| rep.candidates.iter().any(|c| c.kind == k && c.valid);
        let oauth = ok_kind(MetadataKind::OAuth);
        let oidc = ok_kind(MetadataKind::OidcInserted) || ok_kind(MetadataKind::OidcAppended);
        if rep.candidates.iter().any(|c| c.kind == MetadataKind::OAuth) {
            r.client(
                "tries only RFC 8414 (/.well-known/oauth-authorization-server)",
                oauth,
                describe_kind(rep, MetadataKind::OAuth),
                (!oauth).then(|| "also serve RFC 8414 metadata".to_string()),
            );
            r.client(
                "tries only OpenID Connect discovery (/.well-known/openid-configuration)",
                oidc,
                describe_kind(rep, MetadataKind::OidcInserted),
                (!oidc).then(|| "also serve /.well-known/openid-configuration".to_string()),
            );
        }
        let issuer_path = url::Url::parse(&rep.issuer)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !issuer_path.is_empty() {
            let appended = ok_kind(MetadataKind::OidcAppended);
            r.client(
                "appends the well-known suffix to an issuer with a path (OIDC style only)",
                appended,
                describe_kind(rep, MetadataKind::OidcAppended),
                None,
            );
            r.client(
                "inserts the well-known segment but knows only RFC 8414 (issuer with a path)",
                oauth,
                describe_kind(rep, MetadataKind::OAuth),
                None,
            );
        }
        // 2025-03-26 clients look for metadata at the MCP origin.
        let origin = server.origin().ascii_serialization();
        let legacy_ok = oauth && issuer_path.is_empty() && m.issuer.trim_end_matches('/') == origin;
        r.client(
            "looks for authorization server metadata only at the MCP server's origin (2025-03-26)",
            legacy_ok,
            if legacy_ok {
                "the authorization server is the MCP origin".to_string()
            } else {
                format!(
                    "the authorization server {} is not the MCP origin {origin}",
                    m.issuer
                )
            },
            None,
        );
        let dcr = m.registration_endpoint.is_some();
        r.client(
            "needs Dynamic Client Registration (no pre-registration, no CIMD)",
            dcr,
            match &m.registration_endpoint {
                Some(e) => format!("registration_endpoint {e}"),
                None => "no registration_endpoint".to_string(),
            },
            (!dcr).then(|| {
                "offer RFC 7591 registration or CIMD, or document the client to pre-register"
                    .to_string()
            }),
        );
    }
}

fn describe_kind(rep: &AsReport, k: MetadataKind) -> String {
    rep.candidates
        .iter()
        .filter(|c| {
            c.kind == k || (k == MetadataKind::OidcInserted && c.kind == MetadataKind::OidcAppended)
        })
        .map(|c| match c.status {
            Some(s) => format!(
                "{} answers HTTP {s}{}",
                c.url,
                if c.valid { ", valid" } else { "" }
            ),
            None => format!("{}: {}", c.url, c.outcome),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// ANSI styling for [`DoctorReport::render`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn level(&self, l: Level) -> String {
        let tag = format!("{:<4}", l.tag());
        match l {
            Level::Ok => self.paint("32", &tag),
            Level::Info => self.paint("36", &tag),
            Level::Warn => self.paint("33", &tag),
            Level::Fail => self.paint("1;31", &tag),
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

impl DoctorReport {
    /// The human rendering.
    pub fn render(&self, style: Style) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}",
            style.bold(&format!("mcp-oauth doctor {}", self.server_url))
        );
        let _ = writeln!(
            o,
            "\n{}",
            style.bold("1. Challenge (unauthenticated requests)")
        );
        for p in &self.probes {
            match (p.status, &p.error) {
                (Some(s), _) => {
                    let _ = writeln!(o, "   {} → HTTP {s}", p.request);
                }
                (None, Some(e)) => {
                    let _ = writeln!(o, "   {} → failed: {e}", p.request);
                }
                _ => {}
            }
            for w in &p.www_authenticate {
                let _ = writeln!(o, "     WWW-Authenticate: {w}");
            }
        }
        let c = &self.challenge;
        if !c.received.is_empty() {
            let _ = writeln!(
                o,
                "   parsed: schemes {:?}; Bearer: {}",
                c.schemes,
                if c.bearer { "yes" } else { "no" }
            );
            if let Some(rm) = &c.resource_metadata {
                let _ = write!(o, "     resource_metadata = {rm}");
                match &c.resource_metadata_resolved {
                    Some(abs) => {
                        let _ = writeln!(o, " (relative; resolved to {abs})");
                    }
                    None => {
                        let _ = writeln!(o, " (absolute)");
                    }
                }
            }
            if let Some(s) = &c.scope {
                let _ = writeln!(o, "     scope = {s}");
            }
            if let Some(e) = &c.error {
                let _ = writeln!(o, "     error = {e}");
            }
        }
        if !self.prm.is_empty() {
            let _ = writeln!(
                o,
                "\n{}",
                style.bold("2. Protected resource metadata (RFC 9728), every candidate")
            );
            for p in &self.prm {
                let mark = if p.authoritative {
                    style.paint("32", "  ← authoritative")
                } else {
                    String::new()
                };
                let status = p
                    .status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    o,
                    "   {:<17} {} [{status}] {}{mark}",
                    source_name(p.source),
                    p.url,
                    p.outcome
                );
            }
            if let Some(d) = self
                .prm
                .iter()
                .find(|p| p.authoritative)
                .and_then(|p| p.document.as_ref())
            {
                let _ = writeln!(o, "   resource: {:?}", d.resource);
                let _ = writeln!(o, "   authorization_servers: {:?}", d.authorization_servers);
                if let Some(s) = &d.scopes_supported {
                    let _ = writeln!(o, "   scopes_supported: {s:?}");
                }
            }
        }
        if !self.authorization_servers.is_empty() {
            let _ = writeln!(
                o,
                "\n{}",
                style.bold("3. Authorization server metadata, every candidate")
            );
            for a in &self.authorization_servers {
                let _ = writeln!(o, "   issuer {}", a.issuer);
                for cand in &a.candidates {
                    let status = cand
                        .status
                        .map(|s| format!("HTTP {s}"))
                        .unwrap_or_else(|| "-".into());
                    let used = if cand.used {
                        style.paint("32", "  ← used")
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "     {:<20} {} [{status}] {}{used}",
                        kind_name(cand.kind),
                        cand.url,
                        cand.outcome
                    );
                }
                if let Some(m) = &a.metadata {
                    let _ = writeln!(
                        o,
                        "     authorization_endpoint: {}",
                        m.authorization_endpoint.as_deref().unwrap_or("-")
                    );
                    let _ = writeln!(
                        o,
                        "     token_endpoint: {}",
                        m.token_endpoint.as_deref().unwrap_or("-")
                    );
                    let _ = writeln!(
                        o,
                        "     code_challenge_methods_supported: {}",
                        m.code_challenge_methods_supported
                            .as_ref()
                            .map(|v| format!("{v:?}"))
                            .unwrap_or_else(|| "(absent)".into())
                    );
                }
            }
        }
        if let Some(reg) = &self.registration {
            let _ = writeln!(o, "\n{}", style.bold("4. Client registration"));
            let _ = writeln!(
                o,
                "   pre-registered client: {}",
                reg.pre_registered.as_deref().unwrap_or("none configured")
            );
            let _ = writeln!(
                o,
                "   client ID metadata documents: {}",
                if reg.cimd_supported {
                    "supported"
                } else {
                    "not supported"
                }
            );
            let _ = writeln!(
                o,
                "   dynamic registration: {}",
                reg.registration_endpoint.as_deref().unwrap_or("none")
            );
            let _ = writeln!(
                o,
                "   this client would use: {}",
                reg.chosen
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| "nothing: pre-registration needed".into())
            );
            if let Some(m) = &reg.token_endpoint_auth_method {
                let _ = writeln!(o, "   token endpoint authentication: {m}");
            }
        }
        if let Some(c) = &self.scope {
            let _ = writeln!(o, "   scope requested first: {}", c.explain());
        }
        let _ = writeln!(o, "\n{}", style.bold("5. Checks"));
        for c in &self.checks {
            let _ = writeln!(o, "   {} [{}] {}", style.level(c.level), c.step, c.message);
            if let Some(f) = &c.fix {
                let _ = writeln!(o, "        fix: {f}");
            }
        }
        if !self.clients.is_empty() {
            let _ = writeln!(o, "\n{}", style.bold("6. Clients with known behaviours"));
            for v in &self.clients {
                let tag = if v.works {
                    style.paint("32", "works")
                } else {
                    style.paint("1;31", "FAILS")
                };
                let _ = writeln!(o, "   {tag}  a client that {}: {}", v.behaviour, v.why);
                if let Some(f) = &v.fix {
                    let _ = writeln!(o, "          fix: {f}");
                }
            }
        }
        if let Some(l) = &self.login {
            let _ = writeln!(o, "\n{}", style.bold("7. Login"));
            if l.ok {
                let _ = writeln!(
                    o,
                    "   {} logged in at {} ({}); scope {}; refresh token: {}",
                    style.level(Level::Ok),
                    l.issuer.as_deref().unwrap_or("?"),
                    l.registration.map(|k| k.to_string()).unwrap_or_default(),
                    l.scope.as_deref().unwrap_or("(none granted)"),
                    if l.refresh_token { "yes" } else { "no" }
                );
            } else {
                let _ = writeln!(
                    o,
                    "   {} {}",
                    style.level(Level::Fail),
                    l.error.as_deref().unwrap_or("failed")
                );
            }
        }
        let fails = self.must_violations();
        let summary = format!(
            "\n{} MUST violation{}, {} warning{}.",
            fails,
            if fails == 1 { "" } else { "s" },
            self.warnings(),
            if self.warnings() == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            o,
            "{}",
            if fails > 0 {
                style.paint("1;31", &summary)
            } else {
                style.bold(&summary)
            }
        );
        o
    }
}
