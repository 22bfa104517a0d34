//! Token revocation (RFC 7009), for `mcp-oauth logout`: the refresh token first (which
//! ends the grant at most authorization servers), then the access token.

use crate::assertion::SigningKey;
use crate::client_auth::{self, AuthenticatedForm, ClientCredentials};
use crate::credential::CredentialRecord;
use crate::discovery::as_metadata::require_https;
use crate::error::{Error, OAuthErrorBody, Result, Rule, Step};
use crate::http::HttpClient;
use crate::secret::ClientSecret;
use serde::Serialize;

/// What happened to one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum TokenRevocation {
    /// The authorization server answered 200 (RFC 7009 §2.2: also for a token it did not
    /// know or that was already invalid).
    Revoked,
    /// There was no such token to revoke.
    Absent,
    /// The authorization server advertises no `revocation_endpoint`.
    NotOffered,
    /// The authorization server cannot revoke this kind of token (RFC 7009 §2.2.1
    /// `unsupported_token_type`; e.g. self-contained JWT access tokens): it stays valid
    /// until it expires.
    Unsupported(String),
    /// The request failed; the message says how.
    Failed(String),
}

/// The outcome of revoking one stored credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationReport {
    /// The revocation endpoint used, or `None` when the authorization server offers none.
    pub endpoint: Option<String>,
    /// What became of the refresh token.
    pub refresh_token: TokenRevocation,
    /// What became of the access token.
    pub access_token: TokenRevocation,
}

impl RevocationReport {
    /// Did every token that existed get revoked?
    pub fn complete(&self) -> bool {
        [&self.refresh_token, &self.access_token].iter().all(|t| {
            matches!(
                t,
                TokenRevocation::Revoked
                    | TokenRevocation::Absent
                    | TokenRevocation::Unsupported(_)
            )
        })
    }
}

/// The revocation request (RFC 7009 §2.1) for one token: the token, its type hint, and
/// the client's authentication, as at the token endpoint.
pub fn revocation_request(
    endpoint: &str,
    client: &ClientCredentials<'_>,
    token: &str,
    token_type_hint: &str,
) -> Result<AuthenticatedForm> {
    let form = vec![
        ("token".to_string(), token.to_string()),
        ("token_type_hint".to_string(), token_type_hint.to_string()),
    ];
    client_auth::authenticate(Step::Revocation, endpoint, client, form)
}

/// Revokes one token (RFC 7009 §2.1) with the client's authentication.
pub async fn revoke(
    http: &HttpClient,
    endpoint: &str,
    client: &ClientCredentials<'_>,
    token: &str,
    token_type_hint: &str,
) -> Result<()> {
    let step = Step::Revocation;
    require_https("revocation_endpoint", endpoint)
        .map_err(|r| Error::broke(step, endpoint, Rule::InsecureEndpoint(r)))?;
    let request = revocation_request(endpoint, client, token, token_type_hint)?;
    // What we send must not come back in an error (a debug page echoing the request).
    let sent = crate::redact::Sent::from_form(&request.form, request.basic.as_deref())
        .with(client.secret().map(|s| s.expose()));
    let fetched = client_auth::post_form(http, step, endpoint, &request, None).await?;
    if (200..300).contains(&fetched.status) {
        return Ok(());
    }
    let mut fetched = fetched;
    fetched.body = sent.scrub_body(&fetched.body);
    if let Ok(body) = crate::util::from_json_object::<OAuthErrorBody>(&fetched.body) {
        return Err(Error::OAuth {
            step,
            url: endpoint.to_string(),
            status: fetched.status,
            body,
        });
    }
    Err(Error::Status {
        step,
        url: endpoint.to_string(),
        status: fetched.status,
        body_excerpt: fetched.text_excerpt(),
    })
}

/// Revokes the refresh token and the access token of `record` at its authorization
/// server's revocation endpoint. `signing_key` is the client's key, for a client that
/// authenticates with `private_key_jwt`, and `configured_secret` the secret of a
/// pre-registered client, read from its source (the store keeps neither). Never fails:
/// the report says what happened.
pub async fn revoke_record(
    http: &HttpClient,
    record: &CredentialRecord,
    signing_key: Option<&SigningKey>,
    configured_secret: Option<ClientSecret>,
) -> RevocationReport {
    let client = ClientCredentials::new(&record.client)
        .with_signing_key(signing_key)
        .with_secret(configured_secret);
    let client = &client;
    let Some(endpoint) = record.revocation_endpoint.clone() else {
        return RevocationReport {
            endpoint: None,
            refresh_token: if record.tokens.refresh_token.is_some() {
                TokenRevocation::NotOffered
            } else {
                TokenRevocation::Absent
            },
            access_token: TokenRevocation::NotOffered,
        };
    };
    let one = |token: Option<String>, hint: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            let Some(token) = token else {
                return TokenRevocation::Absent;
            };
            match revoke(http, &endpoint, client, &token, hint).await {
                Ok(()) => {
                    tracing::info!(%endpoint, hint, "token revoked");
                    TokenRevocation::Revoked
                }
                Err(e) if e.oauth_error() == Some("unsupported_token_type") => {
                    tracing::info!(%endpoint, hint, error = %e, "the authorization server cannot revoke this token");
                    TokenRevocation::Unsupported(match &e {
                        crate::Error::OAuth { body, .. } => body.to_string(),
                        other => other.to_string(),
                    })
                }
                Err(e) => {
                    tracing::warn!(%endpoint, hint, error = %e, "revocation failed");
                    TokenRevocation::Failed(e.to_string())
                }
            }
        }
    };
    let refresh_token = one(
        record
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        "refresh_token",
    )
    .await;
    let access_token = one(
        Some(record.tokens.access_token.expose().to_string()),
        "access_token",
    )
    .await;
    RevocationReport {
        endpoint: Some(endpoint),
        refresh_token,
        access_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::{CLIENT_ASSERTION_TYPE, test_key, verify_for_tests};
    use crate::client_auth::ClientAuthMethod;
    use crate::credential::{ClientRegistration, RegistrationKind};

    #[test]
    fn a_private_key_jwt_client_authenticates_at_revocation() {
        let client = ClientRegistration {
            issuer: "https://as.example/tenant".into(),
            redirect_uri: String::new(),
            client_id: "svc".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::PrivateKeyJwt,
            kind: RegistrationKind::PreRegistered,
            registered_at: 0,
        };
        let (key, public) = test_key();
        let endpoint = "https://as.example/oauth/revoke";
        let creds = ClientCredentials::new(&client).with_signing_key(Some(&key));
        let AuthenticatedForm { form, basic } =
            revocation_request(endpoint, &creds, "rt-1", "refresh_token").unwrap();
        assert!(basic.is_none());
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("token"), Some("rt-1"));
        assert_eq!(get("token_type_hint"), Some("refresh_token"));
        assert_eq!(get("client_id"), Some("svc"));
        assert_eq!(get("client_assertion_type"), Some(CLIENT_ASSERTION_TYPE));
        // Addressed to the issuer, as at the token endpoint (not to the revocation URL).
        let claims = verify_for_tests(
            get("client_assertion").unwrap(),
            &public,
            "https://as.example/tenant",
        );
        assert_eq!(claims["sub"], "svc");

        // Without the key: an error that says what is missing.
        let e = revocation_request(endpoint, &ClientCredentials::new(&client), "rt-1", "x")
            .unwrap_err();
        assert!(
            e.to_string().contains("no private key is configured"),
            "{e}"
        );
    }
}
