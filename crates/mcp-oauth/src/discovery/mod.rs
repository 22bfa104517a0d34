//! Discovery: from a refused MCP request to validated authorization server metadata.
//!
//! Every run starts from the challenge it was given and records every attempt in a
//! [`trace::DiscoveryTrace`]. Nothing is cached between runs, least of all a failure:
//! a server that was misconfigured a minute ago may be fixed now.

pub mod as_metadata;
pub mod endpoint;
pub mod prm;
pub mod trace;
pub mod validated;

use crate::challenge::{self, BearerChallenge};
use crate::config::{OAuthConfig, ResourceSetting};
use crate::error::{Error, Result, Step};
use crate::http::HttpClient;
use as_metadata::{AuthServerMetadata, MetadataKind};
use endpoint::Endpoint;
use prm::FoundPrm;
use trace::{AskedUrls, DiscoveryTrace, Verdict};
use validated::{MetadataRejection, ValidatedMetadata};

/// How the authorization server metadata was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// A validated metadata document at this URL.
    Document {
        /// Which well-known URL (or setting) the document came from.
        kind: MetadataKind,
        /// The document's URL.
        url: String,
    },
    /// 2025-03-26 back-compat: no metadata anywhere; the default endpoints
    /// `/authorize`, `/token`, `/register` at the MCP server's origin.
    LegacyDefaults,
}

/// The outcome of discovery.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The MCP server URL, as the user gave it.
    pub server_url: String,
    /// The Bearer challenge that started this run, if any.
    pub challenge: Option<BearerChallenge>,
    /// The protected resource metadata, when one was found (absent in 2025-03-26 mode).
    pub prm: Option<FoundPrm>,
    /// The RFC 8707 `resource` to send, or `None` when configured to omit it.
    pub resource: Option<String>,
    /// The authorization server's metadata, validated: its required endpoints are there.
    pub metadata: ValidatedMetadata,
    /// How the metadata was obtained.
    pub metadata_source: MetadataSource,
    /// Checks that passed only because a setting weakened them.
    pub warnings: Vec<String>,
    /// Whether the resource server accepts DPoP-bound tokens: it challenged with the
    /// `DPoP` scheme, or its metadata lists DPoP algorithms or requires DPoP.
    pub resource_accepts_dpop: bool,
    /// Every URL tried, and what it answered.
    pub trace: DiscoveryTrace,
}

impl Discovery {
    /// The issuer recorded for RFC 9207 validation and credential binding.
    pub fn issuer(&self) -> &str {
        self.metadata.issuer()
    }

    /// Whether the issuer was validated from a metadata document.
    pub fn issuer_validated(&self) -> bool {
        matches!(self.metadata_source, MetadataSource::Document { .. })
    }

    /// Whether the authorization server is an OpenID Connect provider: its document says
    /// so, or it was found at an OpenID Connect Discovery URL.
    pub fn is_openid_provider(&self) -> bool {
        self.metadata.document().is_openid_provider()
            || matches!(
                self.metadata_source,
                MetadataSource::Document {
                    kind: MetadataKind::OidcInserted | MetadataKind::OidcAppended,
                    ..
                }
            )
    }

    /// The scopes the protected resource metadata lists, if any.
    pub fn scopes_supported(&self) -> Option<&[String]> {
        self.prm
            .as_ref()
            .and_then(|p| p.metadata.scopes_supported.as_deref())
    }

    /// `err` as it is, unless the endpoint that produced it is one of the 2025-03-26
    /// defaults: then with the reason that endpoint was used and the trace
    /// ([`Error::AtDefaultEndpoint`]).
    pub(crate) fn explain_default_endpoint(&self, err: Error) -> Error {
        if self.metadata_source != MetadataSource::LegacyDefaults {
            return err;
        }
        Error::AtDefaultEndpoint {
            error: Box::new(err),
            trace: self.trace.clone(),
        }
    }
}

/// Parses the challenge(s) and records them in the trace. Malformed fields are noted,
/// not fatal: discovery then falls back to the well-known URLs.
pub fn read_challenge(
    www_authenticate: &[String],
    trace: &mut DiscoveryTrace,
) -> Option<BearerChallenge> {
    for v in www_authenticate {
        trace.push(
            "challenge",
            v.as_str(),
            None,
            Verdict::Note("WWW-Authenticate as received".into()),
        );
    }
    let (challenges, errors) = challenge::parse_challenges_lenient(www_authenticate);
    for e in errors {
        trace.push("challenge", "", None, Verdict::Skipped(e.to_string()));
    }
    // A server that only accepts DPoP-bound tokens challenges with `DPoP`, whose
    // parameters (resource_metadata, scope, error) read the same way.
    let bearer = challenge::bearer(&challenges).or_else(|| challenge::dpop(&challenges));
    if let Some(b) = &bearer {
        trace.push(
            "challenge",
            "",
            None,
            Verdict::Note(format!("parsed challenge: {b}")),
        );
    } else if !www_authenticate.is_empty() {
        trace.push(
            "challenge",
            "",
            None,
            Verdict::Note("no Bearer challenge".into()),
        );
    }
    bearer
}

/// Runs discovery for `config.server_url` after a refusal carrying `www_authenticate`.
pub async fn discover(
    http: &HttpClient,
    config: &OAuthConfig,
    www_authenticate: &[String],
) -> Result<Discovery> {
    // Every URL fetched below obeys the server's network policy (crate::netpolicy).
    let http = &http.for_config(config);
    let mut trace = DiscoveryTrace::default();
    let challenge = read_challenge(www_authenticate, &mut trace);
    let (all_challenges, _) = challenge::parse_challenges_lenient(www_authenticate);
    let dpop_challenged = all_challenges.iter().any(|c| c.is("DPoP"));
    let rm = challenge
        .as_ref()
        .and_then(|c| c.resource_metadata.as_deref());
    let prm = prm::discover(http, &config.server_url, rm, &mut trace).await?;

    let (metadata, metadata_source, warnings) = match &prm {
        Some(found) => {
            find_as_metadata(
                http,
                config,
                &found.metadata.authorization_servers,
                &mut trace,
            )
            .await?
        }
        None => legacy_metadata(http, config, &mut trace).await?,
    };

    let resource = match &config.resource {
        ResourceSetting::FromMetadata => Some(match &prm {
            Some(p) => p.metadata.resource.clone(),
            // 2025-03-26 mode has no PRM: the server URL is the best resource identifier.
            None => config.server_url.clone(),
        }),
        ResourceSetting::Override(r) => Some(r.clone()),
        ResourceSetting::Omit => None,
    };

    let prm_dpop = prm.as_ref().is_some_and(|p| {
        p.metadata.dpop_bound_access_tokens_required == Some(true)
            || p.metadata
                .dpop_signing_alg_values_supported
                .as_ref()
                .is_some_and(|a| !a.is_empty())
    });
    Ok(Discovery {
        resource_accepts_dpop: dpop_challenged || prm_dpop,
        server_url: config.server_url.clone(),
        challenge,
        prm,
        resource,
        metadata,
        metadata_source,
        warnings,
        trace,
    })
}

type Found = (ValidatedMetadata, MetadataSource, Vec<String>);

async fn find_as_metadata(
    http: &HttpClient,
    config: &OAuthConfig,
    servers: &[String],
    trace: &mut DiscoveryTrace,
) -> Result<Found> {
    let chosen: Vec<&String> = match &config.authorization_server {
        Some(pick) => {
            let hit: Vec<&String> = servers.iter().filter(|s| *s == pick).collect();
            if hit.is_empty() {
                return Err(Error::Discovery {
                    step: Step::AuthServerMetadata,
                    message: format!(
                        "the configured authorization server {pick:?} is not among those the \
                         server lists: {servers:?}"
                    ),
                    trace: trace.clone(),
                });
            }
            hit
        }
        None => servers.iter().collect(),
    };
    for issuer in chosen {
        // Metadata is not even fetched over plain HTTP from a non-loopback host.
        if let Err(rule) = as_metadata::require_https("authorization server", issuer) {
            trace.push(
                "authorization server",
                issuer.as_str(),
                None,
                Verdict::Rejected(rule),
            );
            continue;
        }
        let mut cands = Vec::new();
        if let Some(u) = &config.auth_server_metadata_url {
            cands.push((MetadataKind::Configured, u.clone()));
        }
        match as_metadata::candidates(issuer) {
            Ok(c) => cands.extend(c),
            Err(e) => {
                trace.push(
                    "authorization server",
                    issuer.as_str(),
                    None,
                    Verdict::Rejected(e.to_string()),
                );
                continue;
            }
        }
        // A configured URL that is also a well-known one is asked once: the verdict would
        // be the same, and one that hangs would cost two time-outs.
        let mut asked = AskedUrls::default();
        let mut iter = cands.into_iter();
        while let Some((kind, url)) = iter.next() {
            if !asked.first_time(kind.label(), &url, "auth_server_metadata_url", trace) {
                continue;
            }
            if let Some((meta, warnings)) = as_metadata::fetch_validated(
                http,
                kind,
                &url,
                Some(issuer),
                config.pkce_metadata,
                trace,
            )
            .await
            {
                for (k, rest) in iter {
                    trace.push(k.label(), rest, None, Verdict::NotTried);
                }
                return Ok((meta, MetadataSource::Document { kind, url }, warnings));
            }
        }
    }
    Err(Error::Discovery {
        step: Step::AuthServerMetadata,
        message: format!(
            "no usable authorization server metadata for {servers:?} (each candidate is listed \
             below); if the server publishes it elsewhere, set auth_server_metadata_url"
        ),
        trace: trace.clone(),
    })
}

/// 2025-03-26 back-compat: the MCP server's origin is the authorization server.
async fn legacy_metadata(
    http: &HttpClient,
    config: &OAuthConfig,
    trace: &mut DiscoveryTrace,
) -> Result<Found> {
    let server = url::Url::parse(&config.server_url).map_err(|e| {
        Error::config_caused(
            format!(
                "the MCP server URL {:?} is not an absolute URL: {e}",
                config.server_url
            ),
            e,
        )
    })?;
    let origin = prm::origin_of(&server);
    trace.push(
        "authorization server",
        origin.as_str(),
        None,
        Verdict::Note("no protected resource metadata: 2025-03-26 fallback, the MCP origin is the authorization server".into()),
    );
    let (kind, url) = match &config.auth_server_metadata_url {
        Some(u) => (MetadataKind::Configured, u.clone()),
        None => (
            MetadataKind::Legacy,
            format!("{origin}/.well-known/oauth-authorization-server"),
        ),
    };
    if let Some((meta, warnings)) =
        as_metadata::fetch_validated(http, kind, &url, Some(&origin), config.pkce_metadata, trace)
            .await
    {
        return Ok((meta, MetadataSource::Document { kind, url }, warnings));
    }
    // Not-found metadata is what the 2025-03-26 default endpoints are for. A document
    // that was found but rejected (wrong issuer, no S256) must not be bypassed this way.
    // Nor must one that could not be read at all (time-out, refused connection, 5xx):
    // the defaults are for servers that have no metadata, not for servers that are down.
    if trace.attempts.last().is_some_and(|a| {
        matches!(a.verdict, Verdict::Rejected(_))
            || (matches!(a.verdict, Verdict::Skipped(_)) && a.status.is_none_or(|s| s >= 500))
    }) {
        return Err(Error::Discovery {
            step: Step::AuthServerMetadata,
            message: format!(
                "the authorization server metadata at {url} was rejected or could not be read"
            ),
            trace: trace.clone(),
        });
    }
    let meta = AuthServerMetadata {
        issuer: origin.clone(),
        authorization_endpoint: Some(format!("{origin}/authorize")),
        token_endpoint: Some(format!("{origin}/token")),
        registration_endpoint: Some(format!("{origin}/register")),
        // No metadata to check: the 2025-03-26 revision says to use S256.
        code_challenge_methods_supported: Some(vec!["S256".into()]),
        ..Default::default()
    };
    // The https rule, stated for the endpoints the flow needs: the issuer and `/register`
    // share their origin, so they pass when these do.
    let meta = Endpoint::parse("authorization_endpoint", &format!("{origin}/authorize"))
        .and_then(|_| Endpoint::parse("token_endpoint", &format!("{origin}/token")))
        .map_err(MetadataRejection::InsecureEndpoint)
        .and_then(|_| ValidatedMetadata::from_document(meta))
        .map_err(|rejection| Error::Discovery {
            step: Step::AuthServerMetadata,
            message: rejection.to_string(),
            trace: trace.clone(),
        })?;
    trace.push(
        "as metadata (2025-03-26 default endpoints)",
        format!("{origin}/authorize, {origin}/token, {origin}/register"),
        None,
        Verdict::Used,
    );
    Ok((meta, MetadataSource::LegacyDefaults, Vec::new()))
}
