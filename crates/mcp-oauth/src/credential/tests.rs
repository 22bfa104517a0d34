//! The stored form of a credential: records written by earlier versions read unchanged,
//! and written back exactly as they were.

use super::*;
use serde_json::{Value, json};

/// A credential record as this and earlier versions write it (a client from dynamic
/// registration, with the secret the authorization server issued, and a DPoP key).
fn record_json(grant: Option<&str>) -> Value {
    let mut v = json!({
        "server_url": "https://mcp.example.com/mcp",
        "resource": "https://mcp.example.com/mcp",
        "issuer": "https://as.example.com",
        "token_endpoint": "https://as.example.com/token",
        "revocation_endpoint": "https://as.example.com/revoke",
        "resource_indicator": "https://mcp.example.com/mcp",
        "client": {
            "issuer": "https://as.example.com",
            "redirect_uri": "http://127.0.0.1:33418/callback",
            "client_id": "client-123",
            "client_secret": "issued-secret",
            "client_secret_expires_at": 0,
            "token_endpoint_auth_method": "client_secret_post",
            "kind": "dynamic",
            "registered_at": 1700000000
        },
        "tokens": {
            "access_token": "at-1",
            "token_type": "DPoP",
            "refresh_token": "rt-1",
            "expires_at": 1700003600,
            "scope": "mcp:read",
            "requested_scope": "mcp:read offline_access",
            "obtained_at": 1700000000
        },
        "dpop_key": "a2V5LW1hdGVyaWFs"
    });
    if let Some(g) = grant {
        v["grant"] = json!(g);
    }
    v
}

#[test]
fn every_stored_grant_reads_and_writes_back_unchanged() {
    for (name, grant, without_user) in [
        (
            "authorization_code",
            CredentialGrant::AuthorizationCode,
            None,
        ),
        (
            "client_credentials",
            CredentialGrant::ClientCredentials,
            Some(GrantKind::ClientCredentials),
        ),
        (
            "jwt_bearer",
            CredentialGrant::JwtBearer,
            Some(GrantKind::JwtBearer),
        ),
        (
            "enterprise_managed",
            CredentialGrant::EnterpriseManaged,
            Some(GrantKind::EnterpriseManaged),
        ),
    ] {
        let written = record_json(Some(name));
        let record: CredentialRecord = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(record.grant, grant, "{name}");
        assert_eq!(record.grant, name);
        assert_eq!(record.grant.without_user(), without_user, "{name}");
        assert_eq!(serde_json::to_value(&record).unwrap(), written, "{name}");
        if let Some(kind) = without_user {
            assert_eq!(CredentialGrant::from(kind), grant);
        }
    }
    assert_eq!(
        CredentialGrant::from(GrantKind::Auto),
        CredentialGrant::AuthorizationCode
    );
}

/// A record without `grant` (written before grants without a user existed) holds tokens
/// from an authorization code; it is written back with the name.
#[test]
fn a_record_without_a_grant_is_an_authorization_code() {
    let record: CredentialRecord = serde_json::from_value(record_json(None)).unwrap();
    assert_eq!(record.grant, CredentialGrant::AuthorizationCode);
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        record_json(Some("authorization_code"))
    );
}

/// A name this version does not know (from a newer version) is read, renewed like an
/// authorization code (with the refresh token, never by minting), and kept as it was.
#[test]
fn an_unknown_grant_is_kept_as_it_was() {
    let written = record_json(Some("device_code_v9"));
    let record: CredentialRecord = serde_json::from_value(written.clone()).unwrap();
    assert_eq!(
        record.grant,
        CredentialGrant::Other("device_code_v9".into())
    );
    assert_eq!(record.grant.without_user(), None);
    assert_eq!(serde_json::to_value(&record).unwrap(), written);
}
