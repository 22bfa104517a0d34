//! The metadata documents of MCP authorization, as the client reads them and the server
//! publishes them: Protected Resource Metadata (RFC 9728) and authorization server
//! metadata (RFC 8414 / OpenID Connect Discovery 1.0).
//!
//! Only the fields MCP clients use are typed; strings are kept exactly as published,
//! because `resource` and `issuer` are identifiers compared byte for byte (a parsed
//! `url::Url` would add a trailing `/` to `http://h:p`).

use serde::{Deserialize, Serialize};

/// The root well-known path of Protected Resource Metadata (RFC 9728 §3); a resource with
/// a path publishes its document at this path followed by its own (path insertion).
pub const PRM_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The fields of a PRM document that MCP clients use. Strings are kept exactly as
/// published: `resource` is sent back verbatim as the RFC 8707 indicator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (RFC 9728 §2), sent back verbatim as the RFC 8707 `resource`.
    pub resource: String,
    /// Issuer identifiers of the authorization servers the resource accepts tokens from.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the document lists as supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// How the resource accepts bearer tokens (RFC 6750 methods: `header`, `body`, `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// A human-readable name of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// RFC 9728 §2: DPoP algorithms the resource accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9728 §2: the resource always requires DPoP-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
}

/// The fields of RFC 8414 / OIDC metadata this client uses. Strings are kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServerMetadata {
    /// The issuer identifier, compared byte for byte with the one the client expected.
    pub issuer: String,
    /// The authorization endpoint (RFC 6749 §3.1).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint (RFC 6749 §3.2).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The Dynamic Client Registration endpoint (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The token revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// The authorization server's JSON Web Key Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes the document lists as supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Response types the authorization endpoint supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// Grant types the token endpoint supports (RFC 8414 default when absent: code and implicit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// PKCE methods (RFC 7636); MCP requires `S256` to be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication methods of the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the authorization response carries `iss`, which the client must then check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Client ID Metadata Documents are accepted as client ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
    /// DPoP proof algorithms accepted (RFC 9449 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// OpenID Connect Discovery fields, kept only to tell an OpenID provider (whose
    /// rules for `offline_access` differ: see `client::scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// ID token signing algorithms (OIDC Discovery), one of the marks of an OpenID provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
}

impl AuthServerMetadata {
    /// Whether the document describes an OpenID Connect provider: it lists the `openid`
    /// scope, or has the fields OpenID Connect Discovery requires of one.
    pub fn is_openid_provider(&self) -> bool {
        self.supports_scope("openid")
            || self.id_token_signing_alg_values_supported.is_some()
            || self.userinfo_endpoint.is_some()
    }

    /// Whether `scopes_supported` lists `scope`.
    pub fn supports_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }

    /// Token endpoint auth methods, with RFC 8414's default when absent.
    pub fn token_auth_methods(&self) -> Vec<String> {
        self.token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()])
    }
}
