//! Refreshing a credential (RFC 6749 §6): single-flight, rotation, the granted scope sent
//! back, transient failures ridden out, a forgotten client forgotten here too.

use super::*;

impl OAuthClient {
    /// Renew `rec`'s token, single-flight across tasks and processes: with its refresh
    /// token, or, for grants that need no user (client credentials, workload and
    /// enterprise assertions), by minting a new one. A token that a sibling obtained
    /// while we waited is adopted instead.
    pub async fn refresh(&self, rec: &CredentialRecord) -> Result<CredentialRecord> {
        let _flow = self.flow.lock().await;
        let _lock = self.lock_store().await?;
        let latest = self.load_record().await?;
        if let Some(latest) = &latest
            && latest.tokens.access_token != rec.tokens.access_token
            && !self.expiring(&latest.tokens)
        {
            tracing::info!("adopting a token refreshed by another process");
            self.set_cached(Some(latest.clone()), true);
            return Ok(latest.clone());
        }
        let base = latest.unwrap_or_else(|| rec.clone());
        let dpop_key = base
            .dpop_key
            .as_ref()
            .map(DpopKey::from_material)
            .transpose()?;
        let Some(rt) = base.tokens.refresh_token.clone() else {
            let Some(kind) = base.grant.without_user() else {
                return Err(Error::Action {
                    step: Step::Refresh,
                    message: format!(
                        "no refresh token is stored for {}; log in again (mcp-oauth login {})",
                        base.server_url, base.server_url
                    ),
                });
            };
            tracing::info!(grant = %base.grant, "minting a new access token");
            let tokens = self
                .mint(
                    kind,
                    &MintTarget {
                        issuer: &base.issuer,
                        token_endpoint: &base.token_endpoint,
                        resource: base.resource_indicator.as_deref(),
                    },
                    &base.client,
                    base.tokens.requested_scope.as_deref(),
                    dpop_key.as_ref(),
                )
                .await?;
            let mut next = base.clone();
            next.tokens = tokens;
            self.save_record(&next).await?;
            return Ok(next);
        };
        // The granted scope goes on every refresh (RFC 6749 §6 allows it; Microsoft Entra
        // refuses a refresh without it, AADSTS900144: quirks::Behaviour::NeedsScopeOnRefresh).
        // Asking for exactly what was granted changes nothing at servers that do not need it.
        // oidc-provider answers `"scope": ""` for a grant of `offline_access` alone: then
        // what was asked for.
        let refresh_scope = scope::non_empty(base.tokens.scope.as_deref())
            .or_else(|| scope::non_empty(base.tokens.requested_scope.as_deref()));
        tracing::info!(
            token_endpoint = %base.token_endpoint,
            scope = refresh_scope.unwrap_or("(none)"),
            "refreshing the access token"
        );
        let request = TokenRequest {
            token_endpoint: &base.token_endpoint,
            client: self.credentials(&base.client).await?,
            grant: Grant::RefreshToken {
                refresh_token: &rt,
                scope: refresh_scope,
            },
            resource: base.resource_indicator.as_deref(),
            requested_scope: base.tokens.requested_scope.as_deref(),
            dpop: dpop_key.as_ref().map(|key| DpopContext {
                key,
                nonce: &self.as_nonce,
            }),
        };
        let result =
            retry::through_transient_failures(|| token::request_tokens(&self.http, &request)).await;
        match result {
            Ok(mut tokens) => {
                // RFC 6749 §6: without a new refresh token, the old one stays valid.
                if tokens.refresh_token.is_none() {
                    tokens.refresh_token = Some(rt);
                }
                if tokens.requested_scope.is_none() {
                    tokens.requested_scope = base.tokens.requested_scope.clone();
                }
                let mut next = base.clone();
                next.tokens = tokens;
                self.save_record(&next).await?;
                Ok(next)
            }
            Err(e) if e.oauth_error() == Some("invalid_grant") => {
                // The grant is dead (expired, revoked, or a rotated token reused). Drop
                // the tokens so the next step is a fresh authorization; we hold the lock,
                // so no sibling has changed the record since we read it.
                tracing::warn!(error = %e, "the refresh token was refused; a new authorization is needed");
                let store = self.store.clone();
                let key = self.config.credential_key();
                blocking(move || store.remove(&key)).await?;
                self.set_cached(None, false);
                Err(e)
            }
            Err(e) if e.oauth_error() == Some("invalid_client") => {
                // The authorization server no longer knows the client (it restarted, or
                // the registration was deleted): its refresh token is dead with it. Forget
                // both, so that the next authorization registers a new client instead of
                // sending the user to an error page with the refused client id.
                tracing::warn!(error = %e, "the authorization server refused the client at refresh");
                self.forget_registration(
                    &base.client,
                    "the client is unknown to the authorization server",
                )
                .await;
                let store = self.store.clone();
                let key = self.config.credential_key();
                blocking(move || store.remove(&key)).await?;
                self.set_cached(None, false);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
