//! Step 3: authorization server metadata (RFC 8414, OpenID Connect Discovery), every
//! candidate URL of every server the PRM names, and what the metadata a spec client uses
//! says: issuer, PKCE, HTTPS, `iss`, `resource`, refresh, and the identity provider's
//! known quirks ([`crate::quirks`]).

use super::no_document;
use super::prm::PrmFinding;
use crate::config::{OAuthConfig, PkceMetadataPolicy, ResourceSetting};
use crate::discovery::as_metadata::{self, AuthServerMetadata, MetadataKind};
use crate::discovery::prm::ProtectedResourceMetadata;
use crate::discovery::trace::{DiscoveryTrace, Verdict};
use crate::doctor::{AsCandidate, AsReport, DoctorReport, Level, metadata_kind_name};
use crate::http::HttpClient;
use crate::quirks::{self, Setting};

/// Sets the `resource` a spec client sends and fetches every metadata candidate of every
/// authorization server the PRM names (or of the MCP origin, the 2025-03-26 fallback, when
/// no candidate served a PRM at all).
pub(in crate::doctor) async fn fetch_all(
    r: &mut DoctorReport,
    http: &HttpClient,
    config: &OAuthConfig,
    server: &url::Url,
    prm: &PrmFinding,
) {
    let server_url = r.server_url.clone();
    // 3. Authorization server metadata: every candidate of every listed server.
    match &prm.document {
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
        None if !prm.any_document => {
            // 2025-03-26 fallback: the MCP origin is the authorization server.
            let origin = server.origin().ascii_serialization();
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
            PkceMetadataPolicy::AllowMissing,
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
pub(in crate::doctor) fn pick_used(r: &mut DoctorReport, config: &OAuthConfig) -> Option<String> {
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

/// The checks on the metadata of the authorization server a spec client uses (`used`).
pub(in crate::doctor) fn checks(
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
                metadata_kind_name(c.kind)
            ),
            None,
        );
    }
    issuer(r, used, &meta, prm_doc.is_some());
    pkce(r, &meta, config);
    https(r, &meta);
    iss(r, &meta);
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
    resource(r, config, prm_doc);
    quirk_hints(r, &meta, config);
    refresh_and_endpoints(r, &meta);
}

/// The metadata's issuer against the one the PRM names (RFC 8414 §3.3), or, without a
/// PRM (`from_prm` false: the 2025-03-26 fallback), against the MCP server's origin.
fn issuer(r: &mut DoctorReport, used: &str, meta: &AuthServerMetadata, from_prm: bool) {
    if !from_prm {
        if meta.issuer == used {
            r.check(
                "issuer",
                Level::Ok,
                format!("the metadata's issuer {used:?} is the MCP server's origin (2025-03-26)"),
                None,
            );
        } else {
            r.check(
                "issuer",
                Level::Warn,
                format!(
                    "without protected resource metadata the MCP server's origin {used:?} is the \
                     authorization server (2025-03-26), and its metadata names the issuer {:?}: \
                     a trailing slash apart (RFC 8414 §3.3 wants them identical; mcp-oauth \
                     tolerates it, strict clients refuse the metadata)",
                    meta.issuer
                ),
                Some(format!(
                    "serve protected resource metadata (RFC 9728) naming the issuer exactly as {:?}",
                    meta.issuer
                )),
            );
        }
        return;
    }
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
}

/// PKCE S256, which MCP clients MUST use and see advertised.
fn pkce(r: &mut DoctorReport, meta: &AuthServerMetadata, config: &OAuthConfig) {
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
                if config.pkce_metadata == PkceMetadataPolicy::AllowMissing {
                    " (this configuration sets allow_missing_pkce_metadata, which weakens the check, so mcp-oauth proceeds)"
                } else {
                    ""
                }
            ),
            Some(format!(
                "advertise \"code_challenge_methods_supported\": [\"S256\"]; as a client of a server you trust \
                 ({}), set {} (--allow-missing-pkce-metadata)",
                quirks::COGNITO.provider,
                Setting::AllowMissingPkceMetadata,
            )),
        ),
    }
}

/// Every endpoint over https (plain http on loopback is the development exception).
fn https(r: &mut DoctorReport, meta: &AuthServerMetadata) {
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
}

/// RFC 9207 `iss` in authorization responses (mix-up protection).
fn iss(r: &mut DoctorReport, meta: &AuthServerMetadata) {
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
}

/// The `resource` parameter this configuration sends (RFC 8707).
fn resource(
    r: &mut DoctorReport,
    config: &OAuthConfig,
    prm_doc: Option<&ProtectedResourceMetadata>,
) {
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
}

/// What the identity provider behind this issuer is known to need ([`quirks::QUIRKS`]).
fn quirk_hints(r: &mut DoctorReport, meta: &AuthServerMetadata, config: &OAuthConfig) {
    for quirk in quirks::for_issuer(&meta.issuer) {
        if let Some(hint) = quirk.hint_for(config) {
            r.check(hint.step, hint.level, hint.message, quirk.fix());
        }
    }
}

/// Refresh tokens, and the optional endpoints (revocation, device authorization).
fn refresh_and_endpoints(r: &mut DoctorReport, meta: &AuthServerMetadata) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Check;

    fn hints(issuer: &str, config: &OAuthConfig) -> Vec<Check> {
        let mut r = DoctorReport::new("https://mcp.example.com/mcp".into());
        let meta = AuthServerMetadata {
            issuer: issuer.into(),
            ..Default::default()
        };
        quirk_hints(&mut r, &meta, config);
        r.checks
    }

    fn check(step: &'static str, level: Level, message: &str, fix: &str) -> Check {
        Check {
            step,
            level,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// The hints read from `crate::quirks`, word for word what `doctor` printed when they
    /// were written inline here.
    #[test]
    fn identity_provider_hints() {
        let config = OAuthConfig::new("https://mcp.example.com/mcp");
        assert_eq!(
            hints("https://login.microsoftonline.com/tenant/v2.0", &config),
            [check(
                "resource",
                Level::Warn,
                "Microsoft Entra ID refuses a resource parameter together with v2 scopes (AADSTS9010010)",
                "set resource = \"omit\" and scopes = \"api://<app-id>/.default offline_access\" for this server",
            )]
        );
        assert_eq!(
            hints("https://accounts.google.com", &config),
            [check(
                "refresh",
                Level::Warn,
                "Google issues refresh tokens only with access_type=offline and prompt=consent, and refuses offline_access",
                "set authorize_params = { access_type = \"offline\", prompt = \"consent\" } for this server",
            )]
        );
        assert_eq!(
            hints(
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
                &config
            ),
            [check(
                "pkce",
                Level::Info,
                "AWS Cognito supports S256 but does not advertise it",
                "set allow_missing_pkce_metadata = true for this server",
            )]
        );
        // Providers without a hint, and other servers: nothing.
        for issuer in [
            "https://acme.auth0.com/",
            "https://sso.example.com/realms/acme",
            "https://auth.example.com",
        ] {
            assert_eq!(hints(issuer, &config), [], "{issuer}");
        }
        // Entra's hint is its advice to omit the resource: not once that is done.
        let omitted = OAuthConfig {
            resource: ResourceSetting::Omit,
            ..config
        };
        assert_eq!(
            hints("https://login.microsoftonline.com/tenant/v2.0", &omitted),
            []
        );
    }
}
