//! The records the store's unit tests save. The same fixtures, public, are in
//! `mcp_oauth_testkit::store_contract`, which these tests cannot use: the testkit
//! depends on this crate, so inside it its types would be another crate's.

use super::*;
use crate::secret::{AccessToken, ClientSecret, RefreshToken};

pub fn client(issuer: &str) -> ClientRegistration {
    ClientRegistration {
        issuer: issuer.into(),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
        client_id: "client-123".into(),
        client_secret: Some(ClientSecret::new("client-secret-value")),
        client_secret_expires_at: Some(0),
        token_endpoint_auth_method: ClientAuthMethod::ClientSecretBasic,
        kind: RegistrationKind::Dynamic,
        registered_at: 1_700_000_000,
    }
}

pub fn record(server: &str, access: &str) -> CredentialRecord {
    CredentialRecord {
        server_url: server.into(),
        resource: server.into(),
        issuer: "https://auth.example.com".into(),
        token_endpoint: "https://auth.example.com/token".into(),
        revocation_endpoint: Some("https://auth.example.com/revoke".into()),
        resource_indicator: Some(server.into()),
        client: client("https://auth.example.com"),
        tokens: TokenSet {
            access_token: AccessToken::new(access),
            token_type: "Bearer".into(),
            refresh_token: Some(RefreshToken::new("refresh-token-value")),
            expires_at: Some(1_700_003_600),
            scope: Some("mcp:read".into()),
            requested_scope: Some("mcp:read".into()),
            obtained_at: 1_700_000_000,
        },
        grant: "authorization_code".into(),
        dpop_key: None,
    }
}
