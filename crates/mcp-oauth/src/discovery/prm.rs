//! Protected Resource Metadata (RFC 9728) discovery, in the order the MCP spec gives:
//! the `resource_metadata` URL of the challenge (absolute, or relative to the request
//! URL), else the path-inserted well-known URL, else the root one. The root is never
//! asked before the path-inserted URL.

use super::trace::{AskedUrls, DiscoveryTrace, Verdict};
use crate::error::{Error, Result, Step};
use crate::http::HttpClient;
use serde::Serialize;
use url::Url;

use mcp_oauth_types::metadata::PRM_WELL_KNOWN as WELL_KNOWN;

pub use mcp_oauth_types::metadata::ProtectedResourceMetadata;

/// Where a PRM candidate URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrmSource {
    /// `resource_metadata` in the `WWW-Authenticate` challenge.
    Header,
    /// `/.well-known/oauth-protected-resource/<path>`.
    PathInserted,
    /// `/.well-known/oauth-protected-resource`.
    Root,
}

impl PrmSource {
    /// How this source is named in the discovery trace.
    pub fn label(self) -> &'static str {
        match self {
            PrmSource::Header => "prm (resource_metadata of the challenge)",
            PrmSource::PathInserted => "prm (path-inserted well-known)",
            PrmSource::Root => "prm (root well-known)",
        }
    }
}

/// A PRM document found and validated.
#[derive(Debug, Clone)]
pub struct FoundPrm {
    /// The validated document.
    pub metadata: ProtectedResourceMetadata,
    /// The URL it was fetched from.
    pub url: String,
    /// Where that URL came from.
    pub source: PrmSource,
}

/// The candidate URLs, in order. `resource_metadata` is resolved against the server URL
/// when relative (RFC 9728 §5.1 says it is a URL; relative references are common enough
/// in the wild, and resolving them is unambiguous).
pub fn candidates(
    server_url: &str,
    resource_metadata: Option<&str>,
    trace: &mut DiscoveryTrace,
) -> Result<Vec<(PrmSource, String)>> {
    let base = Url::parse(server_url).map_err(|e| {
        Error::config_caused(
            format!("the MCP server URL {server_url:?} is not an absolute URL: {e}"),
            e,
        )
    })?;
    let mut out = Vec::new();
    if let Some(rm) = resource_metadata {
        match Url::parse(rm) {
            Ok(u) if !matches!(u.scheme(), "https" | "http") => trace.push(
                "challenge",
                rm,
                None,
                Verdict::Skipped("resource_metadata is not an http(s) URL".into()),
            ),
            // Absolute: keep the string as sent.
            Ok(_) => out.push((PrmSource::Header, rm.to_string())),
            Err(url::ParseError::RelativeUrlWithoutBase) => match base.join(rm) {
                Ok(abs) => {
                    trace.push(
                        "challenge",
                        rm,
                        None,
                        Verdict::Note(format!("relative resource_metadata resolved to {abs}")),
                    );
                    out.push((PrmSource::Header, abs.to_string()));
                }
                Err(e) => trace.push(
                    "challenge",
                    rm,
                    None,
                    Verdict::Skipped(format!("resource_metadata cannot be resolved: {e}")),
                ),
            },
            Err(e) => trace.push(
                "challenge",
                rm,
                None,
                Verdict::Skipped(format!("resource_metadata is not a URL: {e}")),
            ),
        }
    }
    let origin = origin_of(&base);
    let path = base.path();
    if !(path.is_empty() || path == "/") {
        out.push((
            PrmSource::PathInserted,
            format!("{origin}{WELL_KNOWN}{path}"),
        ));
    }
    out.push((PrmSource::Root, format!("{origin}{WELL_KNOWN}")));
    Ok(out)
}

/// `scheme://host[:port]` without a trailing slash.
pub(crate) fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Does the PRM `resource` identify the MCP server at `server_url`?
///
/// RFC 9728 §3.3 asks for identity with the URL the metadata was derived from. MCP
/// servers commonly publish a less specific identifier (their origin, as the spec's
/// canonical-URI examples allow), so we accept a `resource` that has the same origin and
/// whose path is the server path or a path-segment prefix of it. Anything else (another
/// host, scheme or port, or an unrelated path) is refused: a token for it could be
/// replayed against a different resource.
pub fn resource_matches(resource: &str, server_url: &str) -> bool {
    let (Ok(r), Ok(s)) = (Url::parse(resource), Url::parse(server_url)) else {
        return false;
    };
    if r.fragment().is_some() || r.origin() != s.origin() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = s.path().trim_end_matches('/');
    rp.is_empty() || sp == rp || sp.starts_with(&format!("{rp}/"))
}

/// `server_url` with the host of `resource`, when the two differ only in how they spell
/// the loopback host (`localhost`, `127.0.0.1`, `[::1]`) and `resource` would identify
/// the server so spelled. The resource cannot be accepted as it is (a token's audience
/// is compared as a string), but the user can type the URL the server names itself by.
fn spelled_as_the_resource(resource: &str, server_url: &str) -> Option<String> {
    let (Ok(r), Ok(mut s)) = (Url::parse(resource), Url::parse(server_url)) else {
        return None;
    };
    let loopback = crate::util::is_loopback_url;
    if r.host_str() == s.host_str() || !loopback(&r) || !loopback(&s) {
        return None;
    }
    s.set_host(r.host_str()).ok()?;
    let respelled = s.to_string();
    resource_matches(resource, &respelled).then_some(respelled)
}

/// What one PRM candidate URL answered.
#[derive(Debug, Clone)]
pub enum PrmFetch {
    /// A PRM document (not yet checked against the server).
    Document {
        /// The HTTP status of the response.
        status: u16,
        /// The parsed document.
        metadata: ProtectedResourceMetadata,
    },
    /// Not usable; try the next candidate. `status` when a response came back.
    Unusable {
        /// The HTTP status, when a response came back.
        status: Option<u16>,
        /// Why the answer cannot be used.
        why: String,
    },
}

/// Fetches one candidate URL.
pub async fn fetch(http: &HttpClient, url: &str) -> PrmFetch {
    let fetched = match http.get(Step::ResourceMetadata, url).await {
        Ok(f) => f,
        Err(e) => {
            return PrmFetch::Unusable {
                status: None,
                why: e.to_string(),
            };
        }
    };
    let status = Some(fetched.status);
    if !(200..300).contains(&fetched.status) {
        return PrmFetch::Unusable {
            status,
            why: format!("HTTP {}", fetched.status),
        };
    }
    if !fetched.looks_like_json() {
        return PrmFetch::Unusable {
            status,
            why: format!("not JSON: {}", fetched.text_excerpt()),
        };
    }
    match crate::util::from_json_object(&fetched.body) {
        Ok(metadata) => PrmFetch::Document {
            status: fetched.status,
            metadata,
        },
        Err(e) => PrmFetch::Unusable {
            status,
            why: format!("not a protected resource metadata document: {e}"),
        },
    }
}

/// The rule a fetched PRM document breaks for `server_url`, if any: its `resource` must
/// identify the server, and it must list an authorization server.
pub fn check(metadata: &ProtectedResourceMetadata, server_url: &str) -> Option<String> {
    if !resource_matches(&metadata.resource, server_url) {
        let advice = match spelled_as_the_resource(&metadata.resource, server_url) {
            Some(url) => format!(
                "; only the loopback host is spelled differently: use the URL the server \
                 names itself by, {url}"
            ),
            None => String::new(),
        };
        return Some(format!(
            "protected resource metadata names resource {:?}, which does not identify the \
             MCP server {server_url:?} (RFC 9728 §3.3); refusing to request tokens for it{advice}",
            metadata.resource
        ));
    }
    if metadata.authorization_servers.is_empty() {
        return Some(
            "protected resource metadata lists no authorization_servers \
             (the MCP spec requires at least one)"
                .into(),
        );
    }
    None
}

/// Fetch candidates in order; the first valid document wins. A document whose `resource`
/// does not identify the server is a hard error (no fallback: the server is telling us
/// its tokens belong elsewhere). `Ok(None)` when no candidate had a document.
pub async fn discover(
    http: &HttpClient,
    server_url: &str,
    resource_metadata: Option<&str>,
    trace: &mut DiscoveryTrace,
) -> Result<Option<FoundPrm>> {
    let cands = candidates(server_url, resource_metadata, trace)?;
    // The first candidate that failed without an answer (time-out, refused connection,
    // oversized or redirected away) or with a 5xx: without any document, that is an
    // error of this step, not the "no metadata here" that the 2025-03-26 fallback is for.
    let mut hard_failure: Option<String> = None;
    // The challenge usually names the path-inserted well-known URL itself: a URL is asked
    // once, so that one that hangs costs one time-out, not two.
    let mut asked = AskedUrls::default();
    let mut iter = cands.into_iter();
    while let Some((source, url)) = iter.next() {
        let as_earlier = "the challenge's resource_metadata";
        if !asked.first_time(source.label(), &url, as_earlier, trace) {
            continue;
        }
        // A server that points discovery at an address the network policy refuses is
        // hostile or broken: stop here rather than try the next candidate.
        if let Err(e) = http.check_address(Step::ResourceMetadata, &url).await {
            trace.push(source.label(), &url, None, Verdict::Rejected(e.to_string()));
            return Err(Error::Discovery {
                step: Step::ResourceMetadata,
                message: e.to_string(),
                trace: trace.clone(),
            });
        }
        let (status, metadata) = match fetch(http, &url).await {
            PrmFetch::Unusable { status, why } => {
                if hard_failure.is_none() && status.is_none_or(|s| s >= 500) {
                    hard_failure = Some(match status {
                        None => why.clone(),
                        Some(_) => format!("{url}: {why}"),
                    });
                }
                trace.push(source.label(), &url, status, Verdict::Skipped(why));
                continue;
            }
            PrmFetch::Document { status, metadata } => (status, metadata),
        };
        if let Some(rule) = check(&metadata, server_url) {
            trace.push(
                source.label(),
                &url,
                Some(status),
                Verdict::Rejected(rule.clone()),
            );
            return Err(Error::Discovery {
                step: Step::ResourceMetadata,
                message: format!("{url}: {rule}"),
                trace: trace.clone(),
            });
        }
        trace.push(source.label(), &url, Some(status), Verdict::Used);
        for (s, rest) in iter {
            trace.push(s.label(), rest, None, Verdict::NotTried);
        }
        return Ok(Some(FoundPrm {
            metadata,
            url,
            source,
        }));
    }
    if let Some(why) = hard_failure {
        return Err(Error::Discovery {
            step: Step::ResourceMetadata,
            message: format!(
                "no protected resource metadata could be read ({why}); not falling back to the \
                 2025-03-26 default endpoints, which are only for servers without metadata"
            ),
            trace: trace.clone(),
        });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(server: &str, rm: Option<&str>) -> Vec<String> {
        let mut t = DiscoveryTrace::default();
        candidates(server, rm, &mut t)
            .unwrap()
            .into_iter()
            .map(|(_, u)| u)
            .collect()
    }

    #[test]
    fn candidate_order_header_then_path_then_root() {
        assert_eq!(
            urls(
                "http://localhost:8888/mcp",
                Some("http://localhost:8888/.well-known/oauth-protected-resource/mcp")
            ),
            [
                "http://localhost:8888/.well-known/oauth-protected-resource/mcp",
                "http://localhost:8888/.well-known/oauth-protected-resource/mcp",
                "http://localhost:8888/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            urls("https://example.com/public/mcp", None),
            [
                "https://example.com/.well-known/oauth-protected-resource/public/mcp",
                "https://example.com/.well-known/oauth-protected-resource",
            ]
        );
    }

    #[test]
    fn server_at_root_has_no_path_candidate() {
        assert_eq!(
            urls("https://example.com", None),
            ["https://example.com/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            urls("https://example.com/", None),
            ["https://example.com/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn relative_resource_metadata_is_resolved_against_the_request_url() {
        assert_eq!(
            urls(
                "https://h.example/a/mcp",
                Some("/.well-known/oauth-protected-resource/a/mcp")
            )[0],
            "https://h.example/.well-known/oauth-protected-resource/a/mcp"
        );
        assert_eq!(
            urls("https://h.example/a/mcp", Some("meta.json"))[0],
            "https://h.example/a/meta.json"
        );
    }

    #[test]
    fn absolute_resource_metadata_is_kept_verbatim() {
        // No normalisation: the string the server sent is the one requested.
        assert_eq!(
            urls(
                "http://h:1/mcp",
                Some("http://h:1/custom/metadata/location.json")
            )[0],
            "http://h:1/custom/metadata/location.json"
        );
    }

    #[test]
    fn a_loopback_host_spelled_differently_names_the_url_to_use() {
        let prm = |resource: &str| -> ProtectedResourceMetadata {
            serde_json::from_value(serde_json::json!({
                "resource": resource,
                "authorization_servers": ["http://127.0.0.1:9"],
            }))
            .unwrap()
        };
        let e = check(
            &prm("http://127.0.0.1:3000/mcp"),
            "http://localhost:3000/mcp",
        )
        .unwrap();
        assert!(
            e.ends_with("use the URL the server names itself by, http://127.0.0.1:3000/mcp"),
            "{e}"
        );
        let e = check(&prm("http://localhost:3000"), "http://[::1]:3000/mcp?x=1").unwrap();
        assert!(e.ends_with("by, http://localhost:3000/mcp?x=1"), "{e}");
        // Another port, another host, another path: no advice.
        for (r, s) in [
            ("http://127.0.0.1:3001/mcp", "http://localhost:3000/mcp"),
            ("https://mcp.example.com/mcp", "http://localhost:3000/mcp"),
            ("http://127.0.0.1:3000/other", "http://localhost:3000/mcp"),
        ] {
            let e = check(&prm(r), s).unwrap();
            assert!(!e.contains("spelled differently"), "{r} vs {s}: {e}");
        }
    }

    #[test]
    fn resource_matching() {
        for (r, s, want) in [
            (
                "http://localhost:3000/mcp",
                "http://localhost:3000/mcp",
                true,
            ),
            ("http://localhost:3000", "http://localhost:3000/mcp", true),
            ("http://localhost:3000/", "http://localhost:3000/mcp", true),
            (
                "HTTP://LOCALHOST:3000/mcp",
                "http://localhost:3000/mcp",
                true,
            ),
            ("https://h/mcp", "https://h:443/mcp/", true),
            ("https://h/mcp", "https://h/mcp/sub", true),
            (
                "https://evil.example.com/mcp",
                "http://localhost:3000/mcp",
                false,
            ),
            (
                "http://localhost:3001/mcp",
                "http://localhost:3000/mcp",
                false,
            ),
            (
                "https://localhost:3000/mcp",
                "http://localhost:3000/mcp",
                false,
            ),
            (
                "http://localhost:3000/mc",
                "http://localhost:3000/mcp",
                false,
            ),
            (
                "http://localhost:3000/other",
                "http://localhost:3000/mcp",
                false,
            ),
            (
                "http://localhost:3000/mcp#x",
                "http://localhost:3000/mcp",
                false,
            ),
            ("not a url", "http://localhost:3000/mcp", false),
        ] {
            assert_eq!(resource_matches(r, s), want, "{r} vs {s}");
        }
    }
}
