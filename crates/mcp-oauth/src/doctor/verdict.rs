//! The last step: what clients with a known behaviour (a shortcut some clients in the field
//! take, or a stricter reading of a spec) experience at this server, and what the server
//! could change so that they work too.

use crate::discovery::as_metadata::{AuthServerMetadata, MetadataKind};
use crate::discovery::prm::{PrmSource, ProtectedResourceMetadata};
use crate::doctor::{AsReport, DoctorReport, PrmCandidate, Probe};

/// One [`crate::doctor::ClientVerdict`] per known client behaviour that applies here.
pub(super) fn client_verdicts(
    r: &mut DoctorReport,
    server: &url::Url,
    post: &Probe,
    get: &Probe,
    prm_doc: Option<&ProtectedResourceMetadata>,
) {
    let meta = r.metadata().cloned();
    let s256 = meta
        .as_ref()
        .and_then(|m| m.code_challenge_methods_supported.as_ref())
        .is_some_and(|m| m.iter().any(|x| x == "S256"));
    // The spec's client.
    let spec_ok = prm_doc.is_some() && meta.is_some() && s256;
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
    challenge_probe(r, post, get);
    prm_shortcuts(r);
    if let Some(meta) = &meta {
        metadata_shortcuts(r, server, meta, s256);
    }
}

/// Clients that collect the challenge with a GET.
fn challenge_probe(r: &mut DoctorReport, post: &Probe, get: &Probe) {
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
}

/// Clients that take a shortcut to the protected resource metadata: only the root URL,
/// only the well-known URLs, only the challenge's `resource_metadata`.
fn prm_shortcuts(r: &mut DoctorReport) {
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
}

/// Clients stricter or narrower than the spec about the authorization server's metadata:
/// PKCE, the issuer's spelling, where the metadata is looked for, registration.
fn metadata_shortcuts(r: &mut DoctorReport, server: &url::Url, m: &AuthServerMetadata, s256: bool) {
    r.client(
        "refuses an authorization server without S256 in its metadata",
        s256,
        if s256 {
            "S256 is advertised".to_string()
        } else {
            "code_challenge_methods_supported does not list S256".to_string()
        },
        (!s256).then(|| "advertise \"code_challenge_methods_supported\": [\"S256\"]".to_string()),
    );
    // Issuer strictness and metadata URL styles.
    let used_rep = r
        .authorization_servers
        .iter()
        .find(|a| a.candidates.iter().any(|c| c.used))
        .cloned();
    if let Some(rep) = &used_rep {
        let strict = rep.issuer == m.issuer;
        r.client(
            "compares the issuer strictly (no trailing-slash tolerance)",
            strict,
            if strict {
                "the PRM's authorization server and the metadata's issuer are the same string"
                    .to_string()
            } else {
                format!(
                    "the issuer expected ({:?}, from the PRM or the MCP origin) and the metadata's \
                     ({:?}) differ by a trailing slash",
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

/// What the candidates of kind `k` answered (OIDC counts both of its URL styles).
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
