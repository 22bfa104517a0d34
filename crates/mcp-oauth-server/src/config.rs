//! [`ProtectedResource`]: what the MCP server *is* to OAuth (its canonical URI, its
//! authorization servers, its scopes) and how it publishes that (RFC 9728 Protected
//! Resource Metadata at the path-inserted and the root well-known URIs).

use crate::error::ConfigError;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::fmt;
use url::Url;

/// The RFC 9728 §3 well-known path suffix.
pub use mcp_oauth_types::metadata::PRM_WELL_KNOWN as WELL_KNOWN_PRM;

/// The protected resource (the MCP server) as OAuth sees it. Build with
/// [`ProtectedResource::builder`]; immutable afterwards and cheap to share (the layer
/// keeps it behind an `Arc`).
///
/// ```
/// use mcp_oauth_server::ProtectedResource;
///
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .scopes_supported(["mcp:read", "mcp:write"])
///     .required_scopes(["mcp:read"])
///     .serve_root_metadata(true)
///     .build()
///     .unwrap();
/// assert_eq!(
///     resource.resource_metadata_url(),
///     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// assert_eq!(
///     resource.metadata_paths(),
///     vec!["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
/// );
/// ```
#[derive(Clone)]
pub struct ProtectedResource {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Option<Vec<String>>,
    required_scopes: Vec<String>,
    cors: bool,
    /// `/.well-known/oauth-protected-resource/<path>`, when the resource has a path and
    /// serving it is enabled.
    path_inserted: Option<String>,
    /// Whether `/.well-known/oauth-protected-resource` is served.
    serve_root: bool,
    resource_metadata_url: String,
    metadata: Value,
    metadata_json: Bytes,
}

impl fmt::Debug for ProtectedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResource")
            .field("resource", &self.resource)
            .field("authorization_servers", &self.authorization_servers)
            .field("scopes_supported", &self.scopes_supported)
            .field("required_scopes", &self.required_scopes)
            .field("resource_metadata_url", &self.resource_metadata_url)
            .field("metadata_paths", &self.metadata_paths())
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

impl ProtectedResource {
    /// Starts a configuration for the MCP server whose canonical URI (RFC 8707 §2, the
    /// PRM `resource`) is `resource`, e.g. `https://mcp.example.com/mcp`. The string is
    /// kept verbatim: it is published as is and compared as is with token audiences.
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceBuilder {
        ProtectedResourceBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: None,
            required_scopes: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            extra: Map::new(),
            serve_path_metadata: true,
            serve_root_metadata: true,
            resource_metadata_url: None,
            cors: true,
        }
    }

    /// The canonical resource URI, verbatim.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The authorization servers listed in the metadata (at least one).
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// `scopes_supported` of the metadata, if configured.
    pub fn scopes_supported(&self) -> Option<&[String]> {
        self.scopes_supported.as_deref()
    }

    /// Scopes every request needs; also the `scope` of the `401` challenge.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The absolute metadata URL put in `resource_metadata` of every challenge.
    pub fn resource_metadata_url(&self) -> &str {
        &self.resource_metadata_url
    }

    /// The local request paths at which the metadata document is served, path-inserted
    /// first. Empty when both are disabled (the metadata is then published elsewhere).
    pub fn metadata_paths(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(2);
        if let Some(p) = &self.path_inserted {
            out.push(p.as_str());
        }
        if self.serve_root {
            out.push(WELL_KNOWN_PRM);
        }
        out
    }

    /// The metadata document (RFC 9728 §2) as JSON.
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }

    /// The metadata document, serialized once.
    pub fn metadata_json(&self) -> &Bytes {
        &self.metadata_json
    }

    /// Whether CORS headers are added to metadata and challenge responses.
    pub fn cors(&self) -> bool {
        self.cors
    }

    pub(crate) fn is_metadata_path(&self, path: &str) -> bool {
        (self.serve_root && path == WELL_KNOWN_PRM) || self.path_inserted.as_deref() == Some(path)
    }
}

/// Builder for [`ProtectedResource`]; see [`ProtectedResource::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Option<Vec<String>>,
    required_scopes: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    extra: Map<String, Value>,
    serve_path_metadata: bool,
    serve_root_metadata: bool,
    resource_metadata_url: Option<String>,
    cors: bool,
}

impl ProtectedResourceBuilder {
    /// Adds an authorization server (its issuer identifier) to `authorization_servers`.
    /// At least one is required (MCP authorization-server discovery).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Adds several authorization servers.
    pub fn authorization_servers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authorization_servers
            .extend(issuers.into_iter().map(Into::into));
        self
    }

    /// `scopes_supported` of the metadata: the minimal set for basic functionality (what
    /// a client asks for when the challenge names no scope).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Scopes every request needs. They are the `scope` of the `401` challenge and part of
    /// every `403 insufficient_scope`. Operation-specific scopes come from a
    /// [`crate::ScopePolicy`].
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `resource_name` of the metadata (human-readable).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation` of the metadata (a URL).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Any other metadata field (RFC 9728 §2 and extensions), e.g.
    /// `resource_signing_alg_values_supported`. Cannot override the fields set by the
    /// typed methods (`resource`, `authorization_servers`, ...).
    pub fn metadata_field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// Serve the metadata at the path-inserted well-known URI
    /// (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`). Default on.
    pub fn serve_path_metadata(mut self, on: bool) -> Self {
        self.serve_path_metadata = on;
        self
    }

    /// Also serve the metadata at the root well-known URI
    /// (`/.well-known/oauth-protected-resource`), for clients that ignore the challenge's
    /// `resource_metadata` and skip the path-inserted URI. Default on. Turn it off when
    /// several resources share the host, since only one of them can own the root. (For
    /// an origin-only resource the root *is* the path-inserted URI, governed by
    /// [`serve_path_metadata`](Self::serve_path_metadata).)
    pub fn serve_root_metadata(mut self, on: bool) -> Self {
        self.serve_root_metadata = on;
        self
    }

    /// Overrides the absolute metadata URL advertised in `resource_metadata` (by default
    /// derived from the resource URI: path-inserted when served, else root).
    pub fn resource_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata_url = Some(url.into());
        self
    }

    /// CORS for browser-based clients: metadata responses carry
    /// `Access-Control-Allow-Origin: *` (and answer preflights); challenges to requests
    /// with an `Origin` carry `Access-Control-Allow-Origin: *` and expose
    /// `WWW-Authenticate`. Default on.
    pub fn cors(mut self, on: bool) -> Self {
        self.cors = on;
        self
    }

    /// Validates and freezes the configuration.
    pub fn build(self) -> Result<ProtectedResource, ConfigError> {
        let (origin, path) = split_resource(&self.resource)?;
        if self.authorization_servers.is_empty() {
            return Err(ConfigError::NoAuthorizationServer);
        }
        for issuer in &self.authorization_servers {
            check_absolute_http_url("authorization server", issuer)?;
        }
        let scopes_supported = match self.scopes_supported {
            Some(s) => Some(check_scopes(s)?),
            None => None,
        };
        let required_scopes = check_scopes(self.required_scopes)?;
        for s in scopes_supported.iter().flatten().chain(&required_scopes) {
            if s == "offline_access" {
                tracing::warn!(
                    "scope offline_access is configured on the protected resource; the MCP \
                     spec says resource servers SHOULD NOT advertise it"
                );
            }
        }
        if let Some(url) = &self.resource_metadata_url {
            check_absolute_http_url("resource_metadata URL", url)?;
        }

        // RFC 9728 §3.1: a terminating slash right after the host is dropped.
        let has_path = !(path.is_empty() || path == "/");
        let path_inserted =
            (has_path && self.serve_path_metadata).then(|| format!("{WELL_KNOWN_PRM}{path}"));
        // For an origin-only resource the path-inserted URI *is* the root one.
        let serve_root = self.serve_root_metadata || (!has_path && self.serve_path_metadata);
        let resource_metadata_url = match self.resource_metadata_url {
            Some(url) => url,
            None if has_path && (self.serve_path_metadata || !serve_root) => {
                format!("{origin}{WELL_KNOWN_PRM}{path}")
            }
            None => format!("{origin}{WELL_KNOWN_PRM}"),
        };

        let prm = mcp_oauth_types::metadata::ProtectedResourceMetadata {
            resource: self.resource.clone(),
            authorization_servers: self.authorization_servers.clone(),
            scopes_supported: scopes_supported.clone(),
            bearer_methods_supported: Some(vec!["header".to_owned()]),
            resource_name: self.resource_name,
            ..Default::default()
        };
        let mut metadata = match serde_json::to_value(&prm) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!("a struct serializes to an object"),
        };
        if let Some(doc) = self.resource_documentation {
            metadata.insert("resource_documentation".into(), Value::String(doc));
        }
        for (k, v) in self.extra {
            if metadata.contains_key(&k) {
                return Err(ConfigError::MetadataFieldConflict(k));
            }
            metadata.insert(k, v);
        }
        let metadata = Value::Object(metadata);
        let metadata_json = Bytes::from(serde_json::to_vec(&metadata).expect("JSON value"));
        Ok(ProtectedResource {
            resource: self.resource,
            authorization_servers: self.authorization_servers,
            scopes_supported,
            required_scopes,
            cors: self.cors,
            path_inserted,
            serve_root,
            resource_metadata_url,
            metadata,
            metadata_json,
        })
    }
}

/// Splits a canonical resource URI into its origin (`scheme://authority`) and its path,
/// both as written (no normalization), after checking that it is an absolute http(s) URI
/// with a host and without query, fragment or userinfo.
fn split_resource(resource: &str) -> Result<(&str, &str), ConfigError> {
    let bad = |why: &str| ConfigError::InvalidResource {
        resource: resource.to_owned(),
        reason: why.to_owned(),
    };
    let url = Url::parse(resource).map_err(|e| bad(&format!("not an absolute URI ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad(
            "the scheme must be https (or http for local development)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if resource.contains('#') {
        return Err(bad(
            "a resource URI must not contain a fragment (RFC 8707 §2)",
        ));
    }
    if resource.contains('?') {
        return Err(bad(
            "a query component is not supported (RFC 8707 §2 says SHOULD NOT)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("userinfo is not allowed"));
    }
    if resource
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("whitespace or control characters"));
    }
    let after_scheme = resource
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| bad("no authority"))?;
    let path_start = resource[after_scheme..]
        .find('/')
        .map_or(resource.len(), |i| after_scheme + i);
    if path_start == after_scheme {
        return Err(bad("no host"));
    }
    Ok((&resource[..path_start], &resource[path_start..]))
}

fn check_absolute_http_url(what: &'static str, url: &str) -> Result<(), ConfigError> {
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::InvalidUrl {
            what,
            url: url.to_owned(),
            reason: "not an http(s) URL with a host".into(),
        }),
        Err(e) => Err(ConfigError::InvalidUrl {
            what,
            url: url.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`. Checked here so that
/// every scope can go in a quoted-string of a challenge as is. Duplicates are dropped.
pub(crate) fn check_scopes(scopes: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !is_scope_token(&s) {
            return Err(ConfigError::InvalidScope(s));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(resource: &str) -> Result<ProtectedResource, ConfigError> {
        ProtectedResource::builder(resource)
            .authorization_server("https://as.example")
            .build()
    }

    #[test]
    fn well_known_paths_and_urls() {
        let r = build("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            r.resource_metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            r.metadata_paths(),
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert!(r.is_metadata_path("/.well-known/oauth-protected-resource"));
        assert!(r.is_metadata_path("/.well-known/oauth-protected-resource/mcp"));
        assert!(!r.is_metadata_path("/.well-known/oauth-protected-resource/other"));

        // Origin-only resources: one document at the root, with or without the slash.
        for res in ["https://mcp.example.com", "https://mcp.example.com/"] {
            let r = build(res).unwrap();
            assert_eq!(
                r.resource_metadata_url(),
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            );
            assert_eq!(r.metadata_paths(), [WELL_KNOWN_PRM]);
            assert_eq!(r.resource(), res, "kept verbatim");
            // Turning the root off does not unpublish the only document there is.
            let r = ProtectedResource::builder(res)
                .authorization_server("https://as.example")
                .serve_root_metadata(false)
                .build()
                .unwrap();
            assert_eq!(r.metadata_paths(), [WELL_KNOWN_PRM]);
        }

        // Verbatim: port, case, trailing slash, deeper paths.
        let r = build("https://MCP.example.com:8443/a/b/mcp/").unwrap();
        assert_eq!(r.resource(), "https://MCP.example.com:8443/a/b/mcp/");
        assert_eq!(
            r.resource_metadata_url(),
            "https://MCP.example.com:8443/.well-known/oauth-protected-resource/a/b/mcp/"
        );
        assert_eq!(
            r.metadata()["resource"],
            "https://MCP.example.com:8443/a/b/mcp/"
        );
    }

    #[test]
    fn serving_switches() {
        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .serve_root_metadata(false)
            .build()
            .unwrap();
        assert_eq!(
            r.metadata_paths(),
            ["/.well-known/oauth-protected-resource/mcp"]
        );
        assert!(!r.is_metadata_path(WELL_KNOWN_PRM));

        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .serve_path_metadata(false)
            .build()
            .unwrap();
        assert_eq!(r.metadata_paths(), [WELL_KNOWN_PRM]);
        assert_eq!(
            r.resource_metadata_url(),
            "https://h/.well-known/oauth-protected-resource"
        );

        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .resource_metadata_url("https://cdn.example/prm.json")
            .build()
            .unwrap();
        assert_eq!(r.resource_metadata_url(), "https://cdn.example/prm.json");
    }

    #[test]
    fn metadata_document() {
        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_servers(["https://as1", "https://as2/tenant"])
            .scopes_supported(["mcp:read", "mcp:read", "mcp:write"])
            .resource_name("Echo")
            .resource_documentation("https://h/docs")
            .metadata_field("resource_policy_uri", "https://h/policy".into())
            .build()
            .unwrap();
        let doc: Value = serde_json::from_slice(r.metadata_json()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "resource": "https://h/mcp",
                "authorization_servers": ["https://as1", "https://as2/tenant"],
                "scopes_supported": ["mcp:read", "mcp:write"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Echo",
                "resource_documentation": "https://h/docs",
                "resource_policy_uri": "https://h/policy",
            })
        );
        let err = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .metadata_field("resource", "https://evil".into())
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::MetadataFieldConflict(ref k) if k == "resource"));
    }

    #[test]
    fn rejects_bad_configuration() {
        for bad in [
            "mcp.example.com",
            "/mcp",
            "ftp://h/mcp",
            "https://h/mcp#frag",
            "https://h/mcp?x=1",
            "https://user:pw@h/mcp",
            "https:///mcp",
        ] {
            assert!(
                matches!(build(bad), Err(ConfigError::InvalidResource { .. })),
                "{bad}: {:?}",
                build(bad)
            );
        }
        assert!(matches!(
            ProtectedResource::builder("https://h/mcp").build(),
            Err(ConfigError::NoAuthorizationServer)
        ));
        assert!(matches!(
            ProtectedResource::builder("https://h/mcp")
                .authorization_server("as.example")
                .build(),
            Err(ConfigError::InvalidUrl { .. })
        ));
        for scope in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(matches!(
                ProtectedResource::builder("https://h/mcp")
                    .authorization_server("https://as")
                    .required_scopes([scope])
                    .build(),
                Err(ConfigError::InvalidScope(_))
            ));
        }
        let e = build("https://h/mcp#x").unwrap_err().to_string();
        assert!(e.contains("fragment"), "{e}");
    }
}
