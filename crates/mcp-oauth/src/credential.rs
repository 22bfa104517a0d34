//! What a credential is made of: the tokens of one token response ([`TokenSet`]), the
//! client they were issued to ([`ClientRegistration`]), and the record that binds them to
//! one MCP server and authorization server ([`CredentialRecord`]), with the grant that
//! obtained them ([`CredentialGrant`]).
//!
//! These are what [`crate::store`] keeps; their JSON is the stored format (files, vault
//! rows, keychain items), so a change to a field's name or form is a change of format.

use crate::client_auth::ClientAuthMethod;
use crate::config::GrantKind;
use crate::secret::{AccessToken, ClientSecret, DpopKeyMaterial, RefreshToken};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// How a client id was obtained (the spec's registration priority order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// Configured by the user.
    PreRegistered,
    /// A Client ID Metadata Document URL used as the client id.
    ClientIdMetadataDocument,
    /// RFC 7591 Dynamic Client Registration.
    Dynamic,
}

impl fmt::Display for RegistrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegistrationKind::PreRegistered => "pre-registered",
            RegistrationKind::ClientIdMetadataDocument => "client id metadata document",
            RegistrationKind::Dynamic => "dynamic client registration",
        })
    }
}

/// A client as known to one authorization server.
///
/// Stored (and read back) without the secret of a pre-registered client: that one lives
/// in the configuration ([`crate::config::SecretSource`]) and is read at each use, so
/// only a secret the authorization server issued (Dynamic Client Registration) is ever
/// written. A record written by an older version that holds a configured secret is read
/// without it: the configured source replaces it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredRegistration", into = "StoredRegistration")]
pub struct ClientRegistration {
    /// The issuer of the authorization server this client id belongs to.
    pub issuer: String,
    /// The redirect URI the client was registered with (its key, with the issuer).
    pub redirect_uri: String,
    /// The client id the authorization server knows the client by.
    pub client_id: String,
    /// A secret the authorization server issued at registration. `None` for a
    /// pre-registered client (its secret comes from the configuration at each use).
    pub client_secret: Option<ClientSecret>,
    /// Unix seconds; `None` or 0 means it does not expire (RFC 7591 §3.2.1).
    pub client_secret_expires_at: Option<u64>,
    /// How the client authenticates; stored as its registered name (`none`,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`).
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// How the client came to be: configured, a metadata document URL, or registered.
    pub kind: RegistrationKind,
    /// Unix seconds.
    pub registered_at: u64,
}

/// The stored form of a [`ClientRegistration`]: the same fields, the same JSON as ever.
/// The conversions both ways drop the secret of a pre-registered client.
#[derive(Serialize, Deserialize)]
struct StoredRegistration {
    issuer: String,
    redirect_uri: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<ClientSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<u64>,
    token_endpoint_auth_method: ClientAuthMethod,
    kind: RegistrationKind,
    registered_at: u64,
}

/// Only a secret the authorization server issued is kept.
fn issued_secret(kind: RegistrationKind, secret: Option<ClientSecret>) -> Option<ClientSecret> {
    secret.filter(|_| kind != RegistrationKind::PreRegistered)
}

impl From<StoredRegistration> for ClientRegistration {
    fn from(s: StoredRegistration) -> Self {
        ClientRegistration {
            client_secret: issued_secret(s.kind, s.client_secret),
            issuer: s.issuer,
            redirect_uri: s.redirect_uri,
            client_id: s.client_id,
            client_secret_expires_at: s.client_secret_expires_at,
            token_endpoint_auth_method: s.token_endpoint_auth_method,
            kind: s.kind,
            registered_at: s.registered_at,
        }
    }
}

impl From<ClientRegistration> for StoredRegistration {
    fn from(r: ClientRegistration) -> Self {
        StoredRegistration {
            client_secret: issued_secret(r.kind, r.client_secret),
            issuer: r.issuer,
            redirect_uri: r.redirect_uri,
            client_id: r.client_id,
            client_secret_expires_at: r.client_secret_expires_at,
            token_endpoint_auth_method: r.token_endpoint_auth_method,
            kind: r.kind,
            registered_at: r.registered_at,
        }
    }
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("issuer", &self.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &crate::secret::redacted(&self.client_secret),
            )
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("kind", &self.kind)
            .finish()
    }
}

/// Tokens from one token response, with the absolute expiry computed when received.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token sent to the MCP server.
    pub access_token: AccessToken,
    /// As returned by the server (`Bearer`, `bearer`, `DPoP`, ...).
    pub token_type: String,
    /// The refresh token, if the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Unix seconds; `None` when the server gave no `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Scopes granted, as returned (space separated); `None` when the response had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes we asked for (space separated), kept for step-up unions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scope: Option<String>,
    /// Unix seconds.
    pub obtained_at: u64,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &crate::secret::redacted(&self.refresh_token),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("requested_scope", &self.requested_scope)
            .finish()
    }
}

/// Everything needed to use and renew the credential of one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The MCP server URL as the user gave it.
    pub server_url: String,
    /// The canonical resource the tokens were issued for: the PRM `resource` string,
    /// verbatim (or the configured override).
    pub resource: String,
    /// The issuer of the authorization server that issued the tokens.
    pub issuer: String,
    /// Token endpoint used for refreshes (from validated metadata), so a refresh needs
    /// no discovery.
    pub token_endpoint: String,
    /// Revocation endpoint (RFC 7009), if the AS advertised one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The resource indicator sent (None when omitted by configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_indicator: Option<String>,
    /// The client the tokens were issued to.
    pub client: ClientRegistration,
    /// The tokens, with their expiry and scopes.
    pub tokens: TokenSet,
    /// How the tokens were obtained, which says how to renew them. Absent in records
    /// written before grants without a user existed: those were authorization codes.
    #[serde(default)]
    pub grant: CredentialGrant,
    /// The DPoP key the tokens are bound to, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<DpopKeyMaterial>,
}

/// How the tokens of a [`CredentialRecord`] were obtained, which says how to renew them:
/// with the refresh token after an authorization code, by minting anew for a grant
/// without a user. Stored as its name (`authorization_code`, `client_credentials`,
/// `jwt_bearer`, `enterprise_managed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum CredentialGrant {
    /// A user authorized in a browser (or by device code, or a pasted redirect).
    #[default]
    AuthorizationCode,
    /// The client on its own behalf ([`GrantKind::ClientCredentials`]).
    ClientCredentials,
    /// A workload identity assertion ([`GrantKind::JwtBearer`]).
    JwtBearer,
    /// An ID-JAG from the enterprise IdP ([`GrantKind::EnterpriseManaged`]).
    EnterpriseManaged,
    /// A name this version does not know (written by a newer one). Kept as it was, so
    /// that saving the record again does not change it; renewed like an authorization
    /// code: with the refresh token, never by minting.
    Other(String),
}

impl CredentialGrant {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            CredentialGrant::AuthorizationCode => "authorization_code",
            CredentialGrant::ClientCredentials => "client_credentials",
            CredentialGrant::JwtBearer => "jwt_bearer",
            CredentialGrant::EnterpriseManaged => "enterprise_managed",
            CredentialGrant::Other(name) => name,
        }
    }

    /// The grant that renews these tokens without a user, if there is one: tokens from
    /// an authorization code (or an unknown grant) are renewed with their refresh token.
    pub fn without_user(&self) -> Option<GrantKind> {
        match self {
            CredentialGrant::ClientCredentials => Some(GrantKind::ClientCredentials),
            CredentialGrant::JwtBearer => Some(GrantKind::JwtBearer),
            CredentialGrant::EnterpriseManaged => Some(GrantKind::EnterpriseManaged),
            CredentialGrant::AuthorizationCode | CredentialGrant::Other(_) => None,
        }
    }
}

impl From<GrantKind> for CredentialGrant {
    /// The grant a resolved [`GrantKind`] records ([`GrantKind::Auto`] is resolved before
    /// any token is obtained; it counts as an authorization code).
    fn from(kind: GrantKind) -> Self {
        match kind {
            GrantKind::ClientCredentials => CredentialGrant::ClientCredentials,
            GrantKind::JwtBearer => CredentialGrant::JwtBearer,
            GrantKind::EnterpriseManaged => CredentialGrant::EnterpriseManaged,
            GrantKind::Auto | GrantKind::AuthorizationCode => CredentialGrant::AuthorizationCode,
        }
    }
}

impl From<&str> for CredentialGrant {
    /// The grant of a stored name; an unknown name is kept as [`CredentialGrant::Other`].
    fn from(name: &str) -> Self {
        match name {
            "authorization_code" => CredentialGrant::AuthorizationCode,
            "client_credentials" => CredentialGrant::ClientCredentials,
            "jwt_bearer" => CredentialGrant::JwtBearer,
            "enterprise_managed" => CredentialGrant::EnterpriseManaged,
            other => CredentialGrant::Other(other.to_string()),
        }
    }
}

impl fmt::Display for CredentialGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a stored name (`record.grant == "client_credentials"`).
impl PartialEq<str> for CredentialGrant {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CredentialGrant {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for CredentialGrant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CredentialGrant {
    /// Any string: an unknown name is kept ([`CredentialGrant::Other`]), as every version
    /// so far has read it, so that a record written by a newer version stays usable.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(CredentialGrant::from(
            String::deserialize(deserializer)?.as_str(),
        ))
    }
}

#[cfg(test)]
mod tests;
