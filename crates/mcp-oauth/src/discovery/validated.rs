//! Authorization server metadata the flow can use: [`validate`] turns a document
//! ([`AuthServerMetadata`], as published, which `doctor` reports on whether valid or not)
//! into [`ValidatedMetadata`], whose required endpoints are there and typed
//! ([`Endpoint`]), or says which rule the document broke ([`MetadataRejection`]).

use super::endpoint::Endpoint;
use crate::config::PkceMetadataPolicy;
use crate::quirks;
use crate::remedy::Remedy;
use mcp_oauth_types::metadata::AuthServerMetadata;
use std::fmt;

/// Why a metadata document cannot be used. The text names the rule (it goes into the
/// discovery trace).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataRejection {
    /// An endpoint the authorization code flow needs is absent (the field's name).
    MissingEndpoint(&'static str),
    /// `response_types_supported` is listed without `code`.
    NoCodeResponseType,
    /// `code_challenge_methods_supported` is listed without `S256` (the methods listed).
    NoS256(Vec<String>),
    /// `code_challenge_methods_supported` is absent, so PKCE support cannot be verified,
    /// and [`PkceMetadataPolicy::Require`] is in force.
    PkceUnverifiable,
    /// An endpoint (or the issuer) is not a URL, or not https off loopback: the rule
    /// as [`Endpoint::parse`] states it.
    InsecureEndpoint(String),
}

impl fmt::Display for MetadataRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRejection::MissingEndpoint(name) => write!(f, "metadata has no {name}"),
            MetadataRejection::NoCodeResponseType => {
                f.write_str("response_types_supported does not include \"code\"")
            }
            MetadataRejection::NoS256(methods) => write!(
                f,
                "code_challenge_methods_supported is {methods:?}, without S256: PKCE S256 is \
                 required (OAuth 2.1, MCP authorization spec)"
            ),
            MetadataRejection::PkceUnverifiable => write!(
                f,
                "metadata does not list code_challenge_methods_supported, so PKCE support \
                 cannot be verified (the MCP spec requires refusing such a server); if you \
                 trust it (e.g. {}), {}, which weakens this check",
                quirks::COGNITO.provider,
                Remedy::AllowMissingPkceMetadata
            ),
            MetadataRejection::InsecureEndpoint(rule) => f.write_str(rule),
        }
    }
}

impl std::error::Error for MetadataRejection {}

/// Authorization server metadata that passed [`validate`]: the authorization and token
/// endpoints are present, and every endpoint is an https URL (http on loopback), kept as
/// published. Everything else is read from [`document`](Self::document).
#[derive(Debug, Clone)]
pub struct ValidatedMetadata {
    document: AuthServerMetadata,
    authorization_endpoint: Endpoint,
    token_endpoint: Endpoint,
    registration_endpoint: Option<Endpoint>,
    revocation_endpoint: Option<Endpoint>,
    device_authorization_endpoint: Option<Endpoint>,
}

impl ValidatedMetadata {
    /// `document` with its endpoints checked against the https rule, in the order the
    /// fields are listed (the first that breaks it is reported). The authorization and
    /// token endpoints must be present.
    pub(crate) fn from_document(
        document: AuthServerMetadata,
    ) -> Result<ValidatedMetadata, MetadataRejection> {
        let endpoint = |name: &'static str, value: Option<&str>| {
            value
                .map(|v| Endpoint::parse(name, v))
                .transpose()
                .map_err(MetadataRejection::InsecureEndpoint)
        };
        let required = |name: &'static str, value: Option<&str>| {
            endpoint(name, value)?.ok_or(MetadataRejection::MissingEndpoint(name))
        };
        // The issuer is an identifier, compared as a string: checked, not kept parsed.
        endpoint("issuer", Some(&document.issuer))?;
        Ok(ValidatedMetadata {
            authorization_endpoint: required(
                "authorization_endpoint",
                document.authorization_endpoint.as_deref(),
            )?,
            token_endpoint: required("token_endpoint", document.token_endpoint.as_deref())?,
            registration_endpoint: endpoint(
                "registration_endpoint",
                document.registration_endpoint.as_deref(),
            )?,
            revocation_endpoint: endpoint(
                "revocation_endpoint",
                document.revocation_endpoint.as_deref(),
            )?,
            device_authorization_endpoint: endpoint(
                "device_authorization_endpoint",
                document.device_authorization_endpoint.as_deref(),
            )?,
            document,
        })
    }

    /// The issuer identifier, as published (and checked against the expected one).
    pub fn issuer(&self) -> &str {
        &self.document.issuer
    }

    /// The authorization endpoint (RFC 6749 §3.1).
    pub fn authorization_endpoint(&self) -> &Endpoint {
        &self.authorization_endpoint
    }

    /// The token endpoint (RFC 6749 §3.2).
    pub fn token_endpoint(&self) -> &Endpoint {
        &self.token_endpoint
    }

    /// The Dynamic Client Registration endpoint (RFC 7591), if offered.
    pub fn registration_endpoint(&self) -> Option<&Endpoint> {
        self.registration_endpoint.as_ref()
    }

    /// The revocation endpoint (RFC 7009), if offered.
    pub fn revocation_endpoint(&self) -> Option<&Endpoint> {
        self.revocation_endpoint.as_ref()
    }

    /// The device authorization endpoint (RFC 8628), if offered.
    pub fn device_authorization_endpoint(&self) -> Option<&Endpoint> {
        self.device_authorization_endpoint.as_ref()
    }

    /// The document as published: the supported scopes, grant types, methods, ...
    pub fn document(&self) -> &AuthServerMetadata {
        &self.document
    }

    /// The document as published, for a report on it.
    pub fn into_document(self) -> AuthServerMetadata {
        self.document
    }
}

/// Checks that make a document unusable, in this order: the required endpoints, the
/// `code` response type, PKCE S256 (per `pkce`), then the https rule for the issuer and
/// every endpoint. On success, the warnings of checks that passed only because `pkce`
/// weakened them. `doc_url` is the document's URL.
pub fn validate(
    meta: &AuthServerMetadata,
    doc_url: &str,
    pkce: PkceMetadataPolicy,
) -> Result<(ValidatedMetadata, Vec<String>), MetadataRejection> {
    let _ = doc_url;
    let mut warnings = Vec::new();
    for (name, value) in [
        ("authorization_endpoint", &meta.authorization_endpoint),
        ("token_endpoint", &meta.token_endpoint),
    ] {
        if value.is_none() {
            return Err(MetadataRejection::MissingEndpoint(name));
        }
    }
    if let Some(rt) = &meta.response_types_supported
        && !rt.iter().any(|r| r == "code")
    {
        return Err(MetadataRejection::NoCodeResponseType);
    }
    match (&meta.code_challenge_methods_supported, pkce) {
        (Some(m), _) if m.iter().any(|x| x == "S256") => {}
        (Some(m), _) => return Err(MetadataRejection::NoS256(m.clone())),
        (None, PkceMetadataPolicy::Require) => return Err(MetadataRejection::PkceUnverifiable),
        (None, PkceMetadataPolicy::AllowMissing) => warnings.push(
            "metadata omits code_challenge_methods_supported; using S256 anyway because \
             allow_missing_pkce_metadata is set (weakens a security check)"
                .to_string(),
        ),
    }
    Ok((ValidatedMetadata::from_document(meta.clone())?, warnings))
}
