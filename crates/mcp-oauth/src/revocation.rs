//! Token revocation (RFC 7009), for `mcp-oauth logout`: the refresh token first (which
//! ends the grant at most authorization servers), then the access token.

use crate::client_auth;
use crate::discovery::as_metadata::require_https;
use crate::error::{Error, OAuthErrorBody, Result, Step};
use crate::http::HttpClient;
use crate::store::{ClientRegistration, CredentialRecord};
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
    pub endpoint: Option<String>,
    pub refresh_token: TokenRevocation,
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

/// Revokes one token (RFC 7009 §2.1) with the client's authentication.
pub async fn revoke(
    http: &HttpClient,
    endpoint: &str,
    client: &ClientRegistration,
    token: &str,
    token_type_hint: &str,
) -> Result<()> {
    let step = Step::Revocation;
    require_https("revocation_endpoint", endpoint).map_err(|r| Error::rule(step, endpoint, r))?;
    let form = vec![
        ("token".to_string(), token.to_string()),
        ("token_type_hint".to_string(), token_type_hint.to_string()),
    ];
    let sent = crate::redact::Sent::from_form(&form, None)
        .with(client.client_secret.as_ref().map(|s| s.expose()));
    let fetched = client_auth::post_form(http, step, endpoint, client, form, None).await?;
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
/// server's revocation endpoint. Never fails: the report says what happened.
pub async fn revoke_record(http: &HttpClient, record: &CredentialRecord) -> RevocationReport {
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
            match revoke(http, &endpoint, &record.client, &token, hint).await {
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
