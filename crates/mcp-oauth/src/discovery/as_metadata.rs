//! Authorization server metadata: RFC 8414 and OpenID Connect Discovery 1.0, tried in
//! the order the MCP spec gives, each document validated before use (issuer identity,
//! PKCE S256, HTTPS endpoints).

use super::endpoint::Endpoint;
use super::trace::{DiscoveryTrace, Verdict};
use crate::config::PkceMetadataPolicy;
use crate::error::{Error, Result, Step};
use crate::http::HttpClient;
use serde::Serialize;
use url::Url;

pub use super::validated::{MetadataRejection, ValidatedMetadata, validate};
pub use mcp_oauth_types::metadata::AuthServerMetadata;

/// Which well-known form a candidate URL uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataKind {
    /// RFC 8414, path inserted after the well-known prefix.
    OAuth,
    /// OIDC Discovery, path inserted (RFC 8414 §5 compatibility form).
    OidcInserted,
    /// OIDC Discovery, path appended (OIDC Discovery 1.0 §4).
    OidcAppended,
    /// A URL given by configuration.
    Configured,
    /// The 2025-03-26 fallback at the MCP server's origin.
    Legacy,
}

impl MetadataKind {
    /// How this kind is named in the discovery trace.
    pub fn label(self) -> &'static str {
        match self {
            MetadataKind::OAuth => "as metadata (RFC 8414)",
            MetadataKind::OidcInserted => "as metadata (OIDC, path inserted)",
            MetadataKind::OidcAppended => "as metadata (OIDC, path appended)",
            MetadataKind::Configured => "as metadata (configured URL)",
            MetadataKind::Legacy => "as metadata (2025-03-26 fallback at the MCP origin)",
        }
    }
}

/// The metadata URLs to try for `issuer`, in the spec's order.
///
/// RFC 8414 §3.1 removes a terminating `/` after the host before inserting the
/// well-known segment, so `https://as.example/` and `https://as.example` share one
/// candidate list; for a path, a trailing slash is dropped likewise.
pub fn candidates(issuer: &str) -> Result<Vec<(MetadataKind, String)>> {
    let url = Url::parse(issuer).map_err(|e| {
        Error::rule(
            Step::AuthServerMetadata,
            issuer,
            format!("authorization server issuer is not an absolute URL: {e}"),
        )
    })?;
    // A non-HTTP scheme has an opaque origin, whose serialization is "null" (fuzz:
    // as_metadata): no metadata URL can be built from it.
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(Error::rule(
            Step::AuthServerMetadata,
            issuer,
            "an issuer identifier is an https URL (RFC 8414 §2)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::rule(
            Step::AuthServerMetadata,
            issuer,
            "an issuer identifier has no query or fragment (RFC 8414 §2)",
        ));
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![
            (
                MetadataKind::OAuth,
                format!("{origin}/.well-known/oauth-authorization-server"),
            ),
            (
                MetadataKind::OidcInserted,
                format!("{origin}/.well-known/openid-configuration"),
            ),
        ]
    } else {
        vec![
            (
                MetadataKind::OAuth,
                format!("{origin}/.well-known/oauth-authorization-server{path}"),
            ),
            (
                MetadataKind::OidcInserted,
                format!("{origin}/.well-known/openid-configuration{path}"),
            ),
            (
                MetadataKind::OidcAppended,
                format!("{origin}{path}/.well-known/openid-configuration"),
            ),
        ]
    })
}

/// Does the metadata's `issuer` equal the identifier we used?
///
/// Simple string comparison (RFC 8414 §3.3), with one tolerance: for an issuer without a
/// path, a single trailing slash on either side. RFC 8414 §3.1 itself drops that slash
/// when building the metadata URL, so both strings name the same document, and common
/// deployments differ exactly there (FastMCP publishes `http://host:port/` for
/// `http://host:port`; Google, Auth0 and others vary:
/// [`crate::quirks::Behaviour::IssuerTrailingSlash`]). Any other difference (host, port,
/// scheme, case, path) is a mismatch.
pub fn issuer_matches(published: &str, expected: &str) -> bool {
    if published == expected {
        return true;
    }
    let (a, b) = if published.len() > expected.len() {
        (published, expected)
    } else {
        (expected, published)
    };
    a.strip_suffix('/') == Some(b) && Url::parse(a).is_ok_and(|u| u.path() == "/")
}

/// Authorization server endpoints must use HTTPS, except on loopback (development
/// servers, RFC 8252 §8.3's loopback exception). The error is the rule broken.
pub fn require_https(name: &str, value: &str) -> std::result::Result<(), String> {
    Endpoint::parse(name, value).map(drop)
}

/// Fetch and validate one candidate, for a report on the document itself (`doctor`):
/// [`fetch_validated`]'s outcome, as published.
pub async fn fetch_candidate(
    http: &HttpClient,
    kind: MetadataKind,
    url: &str,
    expected_issuer: Option<&str>,
    pkce: PkceMetadataPolicy,
    trace: &mut DiscoveryTrace,
) -> Option<(AuthServerMetadata, Vec<String>)> {
    fetch_validated(http, kind, url, expected_issuer, pkce, trace)
        .await
        .map(|(meta, warnings)| (meta.into_document(), warnings))
}

/// Fetch and validate one candidate. `None` means "try the next one"; the trace says why.
pub async fn fetch_validated(
    http: &HttpClient,
    kind: MetadataKind,
    url: &str,
    expected_issuer: Option<&str>,
    pkce: PkceMetadataPolicy,
    trace: &mut DiscoveryTrace,
) -> Option<(ValidatedMetadata, Vec<String>)> {
    let label = kind.label();
    let fetched = match http.get(Step::AuthServerMetadata, url).await {
        Ok(f) => f,
        Err(e) => {
            trace.push(label, url, None, Verdict::Skipped(e.to_string()));
            return None;
        }
    };
    let status = Some(fetched.status);
    if !(200..300).contains(&fetched.status) {
        trace.push(
            label,
            url,
            status,
            Verdict::Skipped(format!("HTTP {}", fetched.status)),
        );
        return None;
    }
    if !fetched.looks_like_json() {
        trace.push(
            label,
            url,
            status,
            Verdict::Skipped(format!("not JSON: {}", fetched.text_excerpt())),
        );
        return None;
    }
    let meta: AuthServerMetadata = match crate::util::from_json_object(&fetched.body) {
        Ok(m) => m,
        Err(e) => {
            trace.push(
                label,
                url,
                status,
                Verdict::Skipped(format!(
                    "not an authorization server metadata document: {e}"
                )),
            );
            return None;
        }
    };
    if let Some(expected) = expected_issuer
        && !issuer_matches(&meta.issuer, expected)
    {
        trace.push(
            label,
            url,
            status,
            Verdict::Rejected(format!(
                "issuer {:?} is not the issuer {expected:?} the metadata was requested for \
                 (RFC 8414 §3.3: the document must not be used)",
                meta.issuer
            )),
        );
        return None;
    }
    match validate(&meta, url, pkce) {
        Ok((meta, warnings)) => {
            let verdict = if warnings.is_empty() {
                Verdict::Used
            } else {
                Verdict::Note(format!("used, with warnings: {}", warnings.join("; ")))
            };
            trace.push(label, url, status, verdict);
            Some((meta, warnings))
        }
        Err(rejection) => {
            trace.push(label, url, status, Verdict::Rejected(rejection.to_string()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        candidates(issuer)
            .unwrap()
            .into_iter()
            .map(|(_, u)| u)
            .collect()
    }

    #[test]
    fn pathless_issuer_candidates() {
        let want = [
            "https://auth.example.com/.well-known/oauth-authorization-server",
            "https://auth.example.com/.well-known/openid-configuration",
        ];
        assert_eq!(urls("https://auth.example.com"), want);
        assert_eq!(urls("https://auth.example.com/"), want);
    }

    #[test]
    fn issuer_with_path_candidates_in_spec_order() {
        assert_eq!(
            urls("https://auth.example.com/tenant1"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn issuer_comparison() {
        assert!(issuer_matches("http://h:1", "http://h:1"));
        assert!(issuer_matches("http://h:1/", "http://h:1"));
        assert!(issuer_matches("http://h:1", "http://h:1/"));
        assert!(!issuer_matches("http://h:1/t/", "http://h:1/t"));
        assert!(!issuer_matches("http://h:1//", "http://h:1"));
        assert!(!issuer_matches(
            "https://attacker.example.com",
            "http://h:1"
        ));
        assert!(!issuer_matches("HTTP://h:1", "http://h:1"));
        assert!(!issuer_matches("http://h:1/tenant1", "http://h:1"));
    }

    fn meta() -> AuthServerMetadata {
        AuthServerMetadata {
            issuer: "https://as.example".into(),
            authorization_endpoint: Some("https://as.example/authorize".into()),
            token_endpoint: Some("https://as.example/token".into()),
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn pkce_rules() {
        assert!(validate(&meta(), "u", PkceMetadataPolicy::Require).is_ok());
        let mut m = meta();
        m.code_challenge_methods_supported = Some(vec!["plain".into()]);
        let e = validate(&m, "u", PkceMetadataPolicy::AllowMissing).unwrap_err();
        assert!(e.to_string().contains("without S256"), "{e}");
        m.code_challenge_methods_supported = None;
        let e = validate(&m, "u", PkceMetadataPolicy::Require).unwrap_err();
        assert!(e.to_string().contains("allow_missing_pkce_metadata"), "{e}");
        let (_, w) = validate(&m, "u", PkceMetadataPolicy::AllowMissing).unwrap();
        assert_eq!(w.len(), 1);
    }

    /// The endpoints are typed, and kept as published (`url::Url` would write
    /// `http://127.0.0.1:9/`); the document is kept whole.
    #[test]
    fn validated_metadata_keeps_the_endpoints_as_published() {
        let mut m = meta();
        m.issuer = "http://127.0.0.1:9".into();
        m.authorization_endpoint = Some("http://127.0.0.1:9".into());
        m.token_endpoint = Some("http://127.0.0.1:9/t".into());
        let (v, warnings) = validate(&m, "u", PkceMetadataPolicy::Require).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(v.issuer(), "http://127.0.0.1:9");
        assert_eq!(v.authorization_endpoint().as_str(), "http://127.0.0.1:9");
        assert_eq!(v.token_endpoint().as_str(), "http://127.0.0.1:9/t");
        assert!(v.registration_endpoint().is_none());
        assert_eq!(v.document(), &m);
        // A missing endpoint is reported before the PKCE rule.
        m.token_endpoint = None;
        m.code_challenge_methods_supported = None;
        assert_eq!(
            validate(&m, "u", PkceMetadataPolicy::Require).unwrap_err(),
            MetadataRejection::MissingEndpoint("token_endpoint")
        );
    }

    #[test]
    fn https_required_off_loopback() {
        let mut m = meta();
        m.token_endpoint = Some("http://as.example/token".into());
        let e = validate(&m, "u", PkceMetadataPolicy::Require)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token_endpoint") && e.contains("https"), "{e}");
        m.issuer = "http://127.0.0.1:9".into();
        m.authorization_endpoint = Some("http://localhost:9/a".into());
        m.token_endpoint = Some("http://127.0.0.1:9/t".into());
        assert!(validate(&m, "u", PkceMetadataPolicy::Require).is_ok());
    }
}
