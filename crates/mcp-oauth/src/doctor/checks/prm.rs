//! Step 2: protected resource metadata (RFC 9728), every candidate URL in spec order, and
//! the `resource` check (RFC 9728 §3.3).

use super::no_document;
use crate::discovery::prm::{self, PrmFetch, PrmSource, ProtectedResourceMetadata};
use crate::discovery::trace::DiscoveryTrace;
use crate::doctor::{DoctorReport, Level, PrmCandidate};
use crate::http::HttpClient;

/// What the PRM step leaves for the next ones.
pub(in crate::doctor) struct PrmFinding {
    /// Some candidate served a document, valid or not. Without any, clients fall back to
    /// the 2025-03-26 behaviour (the MCP origin as authorization server).
    pub any_document: bool,
    /// The authoritative document, when it is valid: what a spec client acts on.
    pub document: Option<ProtectedResourceMetadata>,
}

/// Asks every candidate URL and checks what they serve. `None` (a FAIL check) when the
/// candidates cannot even be formed.
pub(in crate::doctor) async fn examine(
    r: &mut DoctorReport,
    http: &HttpClient,
) -> Option<PrmFinding> {
    let server_url = r.server_url.clone();
    let mut trace = DiscoveryTrace::default();
    let rm = r.challenge.resource_metadata.clone();
    let candidates = match prm::candidates(&server_url, rm.as_deref(), &mut trace) {
        Ok(c) => c,
        Err(e) => {
            r.check("prm", Level::Fail, e.to_string(), None);
            return None;
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
    checks(r, first_doc);
    let document =
        first_doc.and_then(|i| r.prm[i].valid.then(|| r.prm[i].document.clone()).flatten());
    Some(PrmFinding {
        any_document: first_doc.is_some(),
        document,
    })
}

fn checks(r: &mut DoctorReport, first_doc: Option<usize>) {
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
