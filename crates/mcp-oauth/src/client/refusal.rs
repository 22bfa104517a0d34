//! Answering the server's refusals: a 401 (adopt a sibling's token, refresh, or authorize
//! again) and a 403 `insufficient_scope` (step-up).

use super::*;

impl OAuthClient {
    pub(super) async fn handle_refusal(&self, refusal: &Refusal) -> Result<()> {
        let entry_generation = self.generation.load(Ordering::SeqCst);
        if refusal.attempt >= MAX_AUTHORIZATIONS_PER_REQUEST {
            let (challenges, _) = challenge::parse_challenges_lenient(&refusal.www_authenticate);
            let b = challenge::bearer(&challenges);
            if refusal.status == 403 {
                return Err(Error::StepUpExhausted {
                    attempts: refusal.attempt,
                    scope: b.and_then(|b| b.scope).unwrap_or_default(),
                });
            }
            return Err(Error::Action {
                step: Step::Authorization,
                message: format!(
                    "{} still answers HTTP {} after {} authorizations; giving up (run `mcp-oauth \
                     doctor {}` to see why)",
                    refusal.url, refusal.status, refusal.attempt, self.config.server_url
                ),
            });
        }
        match refusal.status {
            401 => self.handle_unauthorized(refusal, entry_generation).await,
            403 => self.handle_forbidden(refusal).await,
            other => Err(Error::Status {
                step: Step::McpRequest,
                url: refusal.url.clone(),
                status: other,
                body_excerpt: String::new(),
            }),
        }
    }

    pub(super) async fn handle_unauthorized(
        &self,
        refusal: &Refusal,
        entry_generation: u64,
    ) -> Result<()> {
        if self.take_rs_nonce(refusal) {
            return Ok(());
        }
        if refusal.sent_credentials {
            tracing::info!(url = %refusal.url, "the server refused the access token");
            let sent = self.cached();
            // Another task put a new token in place while this request was in flight.
            if self.generation.load(Ordering::SeqCst) != entry_generation {
                return Ok(());
            }
            // The token the user just authorized is refused: another authorization would
            // get the same kind of token and be refused the same way (FastMCP refusing
            // the opaque token an OpenID provider issues for `openid`, a server whose
            // JWKS lags a key rotation), so the user would approve in vain, tab after tab.
            // Only a challenge for scopes that token lacks is worth another authorization.
            // (`attempt` > 0: this very request led to that authorization; a token that
            // served for a while and is refused later is refreshed or renewed as usual.)
            if refusal.attempt > 0
                && self.user_authorized_generation.load(Ordering::SeqCst) == entry_generation
                && !self.challenge_wants_more_scope(refusal, sent.as_ref())
            {
                self.discard_refused(sent.as_ref()).await;
                return Err(self.fresh_token_refused(refusal, sent.as_ref()));
            }
            if let Some(rec) = sent
                && refusal.attempt == 0
                && (rec.tokens.refresh_token.is_some() || rec.grant.without_user().is_some())
            {
                match self.refresh(&rec).await {
                    Ok(_) => return Ok(()),
                    // The token endpoint is down, not the grant: a browser would not help,
                    // and the refresh token stays for the next attempt.
                    Err(e) if retry::is_transient(&e) => return Err(e),
                    Err(e) => tracing::info!(error = %e, "refresh did not help; authorizing again"),
                }
            }
        }
        let _flow = self.flow.lock().await;
        if self.generation.load(Ordering::SeqCst) != entry_generation {
            return Ok(());
        }
        let _lock = self.lock_store().await?;
        // A sibling process may have logged in while we waited for the lock.
        let stored = self.load_record().await?;
        let cached = self.cached();
        if let Some(s) = stored
            && cached
                .as_ref()
                .is_none_or(|c| c.tokens.access_token != s.tokens.access_token)
            && !self.expiring(&s.tokens)
        {
            tracing::info!("adopting credentials obtained by another process");
            self.set_cached(Some(s), true);
            return Ok(());
        }
        self.authorize_locked(&refusal.www_authenticate, Reason::Unauthorized)
            .await
            .map(|_| ())
    }

    /// Whether the refusal's challenge names a scope that `sent` was neither granted nor
    /// asked for: a server that says "insufficient scope" with a 401.
    fn challenge_wants_more_scope(
        &self,
        refusal: &Refusal,
        sent: Option<&CredentialRecord>,
    ) -> bool {
        let Some(wanted) = token_challenge(refusal).and_then(|b| b.scope) else {
            return false;
        };
        let had = sent.map_or_else(String::new, |r| {
            union_scopes([
                r.tokens.scope.as_deref().unwrap_or_default(),
                r.tokens.requested_scope.as_deref().unwrap_or_default(),
            ])
        });
        wanted
            .split_whitespace()
            .any(|s| !had.split_whitespace().any(|h| h == s))
    }

    /// The error for a server that refuses the token the user has just authorized: what
    /// the server said, and whose configuration it is.
    fn fresh_token_refused(&self, refusal: &Refusal, sent: Option<&CredentialRecord>) -> Error {
        let said = token_challenge(refusal)
            .map(|b| {
                let mut said = String::new();
                if let Some(e) = b.error {
                    said.push_str(&format!(", error {}", crate::util::excerpt(&e, 60)));
                }
                if let Some(d) = b.error_description {
                    said.push_str(&format!(": \"{}\"", crate::util::excerpt(&d, 300)));
                }
                said
            })
            .unwrap_or_default();
        let issuer = sent.map_or("its authorization server", |r| r.issuer.as_str());
        Error::Action {
            step: Step::McpRequest,
            message: format!(
                "{} refused the access token that {issuer} issued for it moments ago (HTTP \
                 {}{said}). That token comes from an authorization made just now, so another \
                 would only get the same kind of token: none was started, and the refused \
                 token was not kept. The server does not accept this authorization server's \
                 tokens as issued (its checks of their audience, issuer, signature or format, \
                 or its token introspection): that is for the server's operator to fix, or for \
                 its settings (the scope asked for decides the kind of token some \
                 authorization servers issue)",
                refusal.url, refusal.status
            ),
        }
    }

    /// Drops the stored credential whose access token the server refused, if it is still
    /// the stored one (a sibling process may have replaced it since): a token the server
    /// will not take is no credential, and `token` must not hand it out.
    async fn discard_refused(&self, sent: Option<&CredentialRecord>) {
        let Some(sent) = sent else {
            return;
        };
        let _lock = match self.lock_store().await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "could not drop the refused credential");
                return;
            }
        };
        match self.load_record().await {
            Ok(Some(stored)) if stored.tokens.access_token == sent.tokens.access_token => {
                let (store, key) = (self.store.clone(), self.config.credential_key());
                if let Err(e) = blocking(move || store.remove(&key)).await {
                    tracing::warn!(error = %e, "could not drop the refused credential");
                }
                self.set_cached(None, false);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not drop the refused credential"),
        }
    }

    /// A `DPoP error="use_dpop_nonce"` challenge with a `DPoP-Nonce` (RFC 9449 §9): keep
    /// the nonce and send the request again with a proof that carries it.
    pub(super) fn take_rs_nonce(&self, refusal: &Refusal) -> bool {
        let Some(nonce) = &refusal.dpop_nonce else {
            return false;
        };
        let (challenges, _) = challenge::parse_challenges_lenient(&refusal.www_authenticate);
        let asks_for_nonce = challenge::dpop(&challenges)
            .and_then(|c| c.error)
            .is_some_and(|e| e == "use_dpop_nonce");
        if !asks_for_nonce {
            return false;
        }
        let mut slot = self.rs_nonce.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_deref() == Some(nonce.as_str()) {
            // The same nonce was already sent and refused: retrying would loop.
            return false;
        }
        tracing::info!("the MCP server asked for a DPoP nonce; retrying with it");
        *slot = Some(nonce.clone());
        true
    }

    pub(super) async fn handle_forbidden(&self, refusal: &Refusal) -> Result<()> {
        let Some(b) =
            token_challenge(refusal).filter(|b| b.error.as_deref() == Some("insufficient_scope"))
        else {
            return Err(Error::Status {
                step: Step::McpRequest,
                url: refusal.url.clone(),
                status: 403,
                body_excerpt: "forbidden, and not an insufficient_scope challenge".into(),
            });
        };
        let previous = self
            .cached()
            .and_then(|r| r.tokens.requested_scope.or(r.tokens.scope))
            .unwrap_or_default();
        let wanted = union_scopes([previous.as_str(), b.scope.as_deref().unwrap_or_default()]);
        tracing::info!(scope = %wanted, "the server needs more scopes (step-up authorization)");
        let _flow = self.flow.lock().await;
        let _lock = self.lock_store().await?;
        self.authorize_locked(&refusal.www_authenticate, Reason::StepUp(wanted))
            .await
            .map(|_| ())
    }
}

/// The refusal's `Bearer` challenge, else its `DPoP` one (a DPoP-bound token's refusal).
fn token_challenge(refusal: &Refusal) -> Option<challenge::BearerChallenge> {
    let (challenges, _) = challenge::parse_challenges_lenient(&refusal.www_authenticate);
    challenge::bearer(&challenges).or_else(|| challenge::dpop(&challenges))
}
