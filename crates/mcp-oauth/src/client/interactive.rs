//! The interactive side of [`OAuthClient`]: the three ways of involving the user
//! ([`Interaction`]: browser + loopback listener, paste, device grant), explicit logins,
//! and coordination with sibling processes (one flow at a time per server; the others
//! say that they wait, then use its result).

use super::scope::ScopeChoice;
#[cfg(test)]
use super::scope::{OfflineAccess, ScopeSource};
use super::{OAuthClient, Reason, blocking};
use crate::authorize::browser::Progress;
use crate::authorize::{self, CallbackParams, PendingAuthorization, Pkce, device, loopback};
use crate::config::Interaction;
use crate::credential::{ClientRegistration, CredentialRecord, RegistrationKind, TokenSet};
use crate::discovery::Discovery;
use crate::error::{Error, Result, Rule, Step};
use crate::registration;
use crate::store::{ClientKey, StoreLock};
use crate::util::{now_secs, random_token};
use std::sync::atomic::Ordering;

/// The result of [`OAuthClient::login`] and [`OAuthClient::token_or_login`].
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The credential, as stored.
    pub record: CredentialRecord,
    /// `true` when no flow ran here: the credential is the one another process had just
    /// obtained while this one waited for it (or a stored, still valid one).
    pub adopted: bool,
}

impl OAuthClient {
    /// An explicit login (`mcp-oauth login`): discovery, registration and a new
    /// authorization, stored. If another process was already logging in to this server
    /// when this one started, this one waits for it and adopts its fresh credential
    /// instead of opening a second browser.
    pub async fn login(&self, www_authenticate: &[String]) -> Result<LoginOutcome> {
        let started = now_secs();
        let _flow = self.flow.lock().await;
        let (_lock, waited) = self.lock_store_noting_wait().await?;
        if waited
            && let Some(rec) = self.load_record().await?
            && rec.tokens.obtained_at >= started
            && !self.expiring(&rec.tokens)
        {
            tracing::info!(
                "adopting the credentials another process obtained while this one waited"
            );
            self.set_cached(Some(rec.clone()), true);
            return Ok(LoginOutcome {
                record: rec,
                adopted: true,
            });
        }
        let record = self
            .authorize_locked(www_authenticate, Reason::Login)
            .await?;
        Ok(LoginOutcome {
            record,
            adopted: false,
        })
    }

    /// A valid credential: the stored one (refreshed when needed), else one from an
    /// interactive authorization. When several processes call this at once for a server
    /// without credentials, one runs the flow and the others wait and adopt its result.
    pub async fn token_or_login(&self, www_authenticate: &[String]) -> Result<LoginOutcome> {
        match self.valid_token().await {
            Ok(Some(_)) => {
                if let Some(record) = self.current().await? {
                    return Ok(LoginOutcome {
                        record,
                        adopted: true,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "the stored credential cannot be renewed; authorizing again")
            }
        }
        let _flow = self.flow.lock().await;
        let _lock = self.lock_store_noting_wait().await?.0;
        if let Some(rec) = self.load_record().await?
            && !self.expiring(&rec.tokens)
        {
            tracing::info!("adopting the credentials another process obtained");
            self.set_cached(Some(rec.clone()), true);
            return Ok(LoginOutcome {
                record: rec,
                adopted: true,
            });
        }
        let record = self
            .authorize_locked(www_authenticate, Reason::Unauthorized)
            .await?;
        Ok(LoginOutcome {
            record,
            adopted: false,
        })
    }

    /// The store lock of this server, and whether another holder had to be waited for
    /// (which is announced through [`Progress`] and the log).
    pub(super) async fn lock_store_noting_wait(&self) -> Result<(StoreLock, bool)> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        let (s2, k2) = (store.clone(), key.clone());
        if let Some(lock) = blocking(move || s2.try_lock(&k2)).await? {
            return Ok((lock, false));
        }
        let server_url = self.config.server_url.clone();
        tracing::info!(%server_url, "another process is logging in to or refreshing this server; waiting for it");
        self.browser.progress(&Progress::WaitingForOtherProcess {
            server_url: server_url.clone(),
        });
        let lock = blocking(move || store.lock(&key)).await;
        self.browser
            .progress(&Progress::OtherProcessDone { server_url });
        Ok((lock?, true))
    }

    /// [`interactive_flow`](Self::interactive_flow), run once more when the first run
    /// failed in a way a second one can mend without the user's help:
    ///
    /// - the authorization server refused a request that the client widened on its own
    ///   (`offline_access`): asked again without the addition;
    /// - the token endpoint refused the dynamically registered client (`invalid_client`):
    ///   the registration was forgotten, and a new one is made.
    ///
    /// Each at most once, so a user sees at most one more browser tab.
    pub(super) async fn interactive_with_recovery(
        &self,
        discovery: &Discovery,
        first: ScopeChoice,
    ) -> Result<(ClientRegistration, TokenSet)> {
        *self.fresh_client.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.forgot_stale_client.store(false, Ordering::SeqCst);
        *self
            .scope_refused_client
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        let mut choice = first;
        let mut narrowed = false;
        let mut reregistered = false;
        loop {
            tracing::info!("authorization request: {}", choice.explain());
            let err = match self.interactive_flow(discovery, &choice).await {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            let code = err.oauth_error().unwrap_or_default().to_string();
            // A stored client the authorization endpoint refused a scope for: registered
            // before the server's scopes changed, perhaps (see `note_scope_refusal`).
            let scope_refused = self
                .scope_refused_client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            // The refusal blames the registration, or names a scope of the base request
            // (not the offline_access this client added): a new registration first, since
            // asking without the addition would be refused the same way, or would give up
            // the refresh token that a new registration gets.
            if !reregistered
                && blames_the_registration(&err, &choice)
                && let Some(client) = &scope_refused
                && self.register_anew_after(client, &err).await
            {
                reregistered = true;
                continue;
            }
            if !narrowed
                && refuses_the_scope(&err)
                && let Some(narrower) = choice.without_addition(&code)
            {
                tracing::warn!(
                    error = %err,
                    "the authorization server refused the request that the client widened \
                     with offline_access; asking once more without it"
                );
                choice = narrower;
                narrowed = true;
                continue;
            }
            if !reregistered
                && let Some(client) = &scope_refused
                && self.register_anew_after(client, &err).await
            {
                reregistered = true;
                continue;
            }
            if !reregistered && self.forgot_stale_client.swap(false, Ordering::SeqCst) {
                tracing::info!("authorizing once more, with a new registration");
                reregistered = true;
                continue;
            }
            return Err(explain_a_scopeless_refusal(err, &choice));
        }
    }

    /// Forgets the stored `client` that was refused a scope (`err`), so that the next
    /// round registers a new one; `false` when there was nothing to forget.
    async fn register_anew_after(&self, client: &ClientRegistration, err: &Error) -> bool {
        let why = format!(
            "the authorization server refused a scope for the client registered earlier ({err})"
        );
        let forgotten = self.forget_registration(client, &why).await;
        if forgotten {
            tracing::info!("authorizing once more, with a new registration");
        }
        forgotten
    }

    /// The client to present for `discovery` and `redirect_uri`
    /// ([`registration::obtain_client`]). A stored dynamic client is checked at the
    /// authorization endpoint unless this process already obtained it (registered it, or
    /// checked it, and saw no refusal since): the check is an authorization request as
    /// the server sees it, so it is made once, not before every step-up.
    pub(super) async fn client_for(
        &self,
        discovery: &Discovery,
        redirect_uri: &str,
    ) -> Result<ClientRegistration> {
        let vouched = self
            .vouched_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (client, registered_now) = registration::obtain_client(
            &self.http,
            &self.config,
            discovery,
            redirect_uri,
            &self.store,
            &vouched,
        )
        .await?;
        self.vouched_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client.client_id.clone());
        if registered_now {
            *self.fresh_client.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(client.client_id.clone());
        }
        Ok(client)
    }

    /// Registration plus the user's part, by the configured [`Interaction`].
    pub(super) async fn interactive_flow(
        &self,
        discovery: &Discovery,
        choice: &ScopeChoice,
    ) -> Result<(ClientRegistration, TokenSet)> {
        let scope = choice.scope.as_deref();
        let result = match self.config.interaction {
            Interaction::Browser => self.code_flow_with_loopback(discovery, choice).await,
            Interaction::Paste => self.code_flow_with_paste(discovery, choice).await,
            Interaction::Device => self.device_flow(discovery, scope).await,
        };
        self.browser.progress(&Progress::Finished);
        result
    }

    /// The authorization code flow with the redirect pasted back by the user.
    async fn code_flow_with_paste(
        &self,
        discovery: &Discovery,
        choice: &ScopeChoice,
    ) -> Result<(ClientRegistration, TokenSet)> {
        let scope = choice.scope.as_deref();
        let redirect_uri =
            loopback::redirect_uri_for(&self.config.redirect, &self.config.server_url)?;
        let client = self.client_for(discovery, &redirect_uri).await?;
        let pkce = Pkce::new();
        let state = random_token(24);
        let url =
            self.authorization_url(discovery, &client, &redirect_uri, choice, &state, &pkce)?;
        let iss_supported = discovery
            .metadata
            .document()
            .authorization_response_iss_parameter_supported
            == Some(true);
        tracing::info!(scope = scope.unwrap_or("(none)"), %redirect_uri, "paste mode: waiting for the pasted redirect");
        let browser = self.browser.clone();
        let (u, r) = (url.clone(), redirect_uri.clone());
        let timeout = self.config.callback_timeout;
        let pasted = match tokio::time::timeout(
            timeout,
            blocking(move || browser.read_pasted_redirect(&u, &r)),
        )
        .await
        {
            Ok(p) => p?,
            Err(_) => {
                return Err(Error::Timeout {
                    step: Step::Authorization,
                    url: redirect_uri,
                    secs: timeout.as_secs(),
                });
            }
        };
        let bare_code = !pasted.contains('=');
        let params = CallbackParams::from_pasted(&pasted).map_err(|m| {
            Error::broke(
                Step::Authorization,
                "the pasted redirect",
                Rule::Redirect(m),
            )
        })?;
        if bare_code && iss_supported {
            return Err(Error::Action {
                step: Step::Authorization,
                message: format!(
                    "a bare code was pasted, but {} promises an `iss` parameter in its redirects \
                     (RFC 9207), which only the whole URL carries; paste the whole URL from the \
                     browser's address bar",
                    discovery.metadata.issuer()
                ),
            });
        }
        let pending = PendingAuthorization {
            state,
            expected_issuer: discovery.metadata.issuer().to_string(),
            issuer_validated: discovery.issuer_validated(),
            iss_supported,
            // The user pasted a code from their own browser; a pasted URL must carry state.
            allow_missing_state: bare_code,
        };
        let code = authorize::validate_callback(&params, &pending)
            .inspect_err(|e| self.note_scope_refusal(&client, e))?;
        self.browser.progress(&Progress::Exchanging);
        let tokens = self
            .exchange_code(discovery, &client, &code, &pkce, &redirect_uri, scope)
            .await?;
        Ok((client, tokens))
    }

    /// The device authorization grant (RFC 8628).
    async fn device_flow(
        &self,
        discovery: &Discovery,
        scope: Option<&str>,
    ) -> Result<(ClientRegistration, TokenSet)> {
        let meta = &discovery.metadata;
        let Some(endpoint) = meta.device_authorization_endpoint() else {
            return Err(Error::Action {
                step: Step::Authorization,
                message: format!(
                    "the authorization server {} does not advertise a device_authorization_endpoint \
                     (RFC 8628), so the device grant cannot be used with it; {} the redirect URL \
                     instead",
                    meta.issuer(),
                    crate::remedy::Remedy::PasteInsteadOfDevice
                ),
            });
        };
        let token_endpoint = meta.token_endpoint().as_str();
        // The registration still names the loopback redirect URI (registrations are kept
        // per issuer and redirect URI, and DCR needs one for the code grant).
        let redirect_uri =
            loopback::redirect_uri_for(&self.config.redirect, &self.config.server_url)?;
        let mut client = self.client_for(discovery, &redirect_uri).await?;
        let resource = discovery.resource.as_deref();
        let auth = match device::start(
            &self.http,
            endpoint.as_str(),
            &self.credentials(&client).await?,
            scope,
            resource,
        )
        .await
        {
            Err(e)
                if client.kind == RegistrationKind::Dynamic
                    && matches!(
                        e.oauth_error(),
                        Some("unauthorized_client" | "invalid_client")
                    ) =>
            {
                // A client registered earlier for the browser flow, without the device
                // grant: register a new one that has it.
                tracing::info!(error = %e, "the stored client may not use the device grant; registering a new one");
                let store = self.store.clone();
                let key = ClientKey {
                    issuer: meta.issuer().to_string(),
                    redirect_uri: redirect_uri.clone(),
                };
                blocking(move || store.remove_client(&key)).await?;
                client = self.client_for(discovery, &redirect_uri).await?;
                device::start(
                    &self.http,
                    endpoint.as_str(),
                    &self.credentials(&client).await?,
                    scope,
                    resource,
                )
                .await?
            }
            other => other?,
        };
        self.browser.show_device_code(&auth.prompt())?;
        self.browser.progress(&Progress::WaitingForDevice {
            verification_uri: auth.verification_uri.clone(),
        });
        // The same DPoP key as the other interactive flows (see `authorize_locked`).
        let flow_dpop = self
            .flow_dpop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let proof = |key: &crate::dpop::DpopKey| {
            let nonce = self
                .as_nonce
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            key.proof("POST", token_endpoint, None, nonce.as_deref())
        };
        let make_proof = flow_dpop.as_ref().map(|k| move || proof(k));
        let tokens = device::poll(
            &self.http,
            token_endpoint,
            &self.credentials(&client).await?,
            &auth,
            resource,
            scope,
            self.config.callback_timeout,
            make_proof.as_ref().map(|f| f as device::DpopProof<'_>),
        )
        .await?;
        Ok((client, tokens))
    }
}

/// A refusal of a request that carried no `scope` (the server named none: no scope in
/// its challenge or metadata), which said nothing of a user: some authorization servers
/// grant nothing without a scope (oidc-provider: "no scope was granted", often without a
/// description in the redirect), so the error says that none was asked for, and how to.
fn explain_a_scopeless_refusal(err: Error, choice: &ScopeChoice) -> Error {
    match err {
        Error::AuthorizationRefused {
            issuer,
            body,
            note: None,
        } if choice.scope.is_none() && refuses_the_scope_body(&body) => {
            Error::AuthorizationRefused {
                issuer,
                body,
                note: Some(format!(
                    "No scope was asked for, since neither the MCP server's challenge nor its \
                     metadata names one, and some authorization servers grant nothing without \
                     one: {}.",
                    crate::remedy::Remedy::SetScopes
                )),
            }
        }
        other => other,
    }
}

/// Whether an `invalid_scope` refusal blames the client's registration ("Client was not
/// registered with scope offline_access": the MCP Python and TypeScript SDKs' authorization
/// servers, FastMCP's proxy) or names a scope of `choice`'s base request.
fn blames_the_registration(err: &Error, choice: &ScopeChoice) -> bool {
    let Error::AuthorizationRefused { body, .. } = err else {
        return false;
    };
    let Some(described) = body.error_description.as_deref() else {
        return false;
    };
    let names_a_base_scope = choice
        .base
        .as_deref()
        .is_some_and(|base| base.split_whitespace().any(|s| described.contains(s)));
    body.error == "invalid_scope"
        && (names_a_base_scope || described.to_ascii_lowercase().contains("registered"))
}

/// Whether an authorization refusal is about the requested scope, so that asking again
/// without the client's own addition may pass: `invalid_scope`, or an `access_denied`
/// that says nothing (oidc-provider's answer when no scope was granted) or speaks of the
/// scope. An `access_denied` that is the user's "Deny" (its description says so) is
/// final: a second browser tab would only ask the user again.
fn refuses_the_scope(err: &Error) -> bool {
    let Error::AuthorizationRefused { body, .. } = err else {
        return err.oauth_error() == Some("invalid_scope");
    };
    refuses_the_scope_body(body)
}

/// [`refuses_the_scope`] of an authorization response's error parameters.
fn refuses_the_scope_body(body: &crate::error::OAuthErrorBody) -> bool {
    match body.error.as_str() {
        "invalid_scope" => true,
        "access_denied" => match body.error_description.as_deref() {
            None => true,
            Some(d) => {
                let d = d.to_ascii_lowercase();
                d.contains("scope") && !d.contains("user")
            }
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorBody;

    fn refused(error: &str, description: Option<&str>) -> Error {
        Error::AuthorizationRefused {
            issuer: "https://as".into(),
            body: OAuthErrorBody {
                error: error.into(),
                error_description: description.map(str::to_string),
                error_uri: None,
            },
            note: None,
        }
    }

    #[test]
    fn only_a_refusal_of_the_scope_is_asked_again() {
        assert!(refuses_the_scope(&refused(
            "invalid_scope",
            Some("offline_access not allowed")
        )));
        // oidc-provider when nothing was granted: no description.
        assert!(refuses_the_scope(&refused("access_denied", None)));
        assert!(refuses_the_scope(&refused(
            "access_denied",
            Some("no scope was granted")
        )));
        // The user's "Deny" (better-auth, oidc-provider's aborted interaction).
        assert!(!refuses_the_scope(&refused(
            "access_denied",
            Some("User denied access")
        )));
        assert!(!refuses_the_scope(&refused(
            "access_denied",
            Some("End-User aborted interaction")
        )));
        assert!(!refuses_the_scope(&refused("server_error", None)));
    }

    fn choice(scope: Option<&str>) -> ScopeChoice {
        ScopeChoice {
            scope: scope.map(str::to_string),
            base: scope.map(str::to_string),
            source: ScopeSource::None,
            offline_access: OfflineAccess::NotAdded {
                reason: "test".into(),
            },
        }
    }

    /// FastMCP's OIDC proxy with no scopes configured sends none upstream, and
    /// oidc-provider grants nothing: "refused: access_denied", no description. The error
    /// says that no scope was asked for, and how to ask for one; not after a user's "no",
    /// nor when a scope was sent.
    #[test]
    fn a_refusal_of_a_request_without_scope_says_so() {
        let said = explain_a_scopeless_refusal(refused("access_denied", None), &choice(None));
        assert_eq!(said.oauth_error(), Some("access_denied"));
        let text = said.to_string();
        assert!(
            text.contains("refused: access_denied\n  No scope was asked for")
                && text.contains(crate::remedy::Remedy::SetScopes.phrase()),
            "{text}"
        );
        let deny = refused("access_denied", Some("User denied access"));
        assert!(
            !explain_a_scopeless_refusal(deny, &choice(None))
                .to_string()
                .contains("No scope")
        );
        let scoped = refused("access_denied", None);
        assert!(
            !explain_a_scopeless_refusal(scoped, &choice(Some("mcp")))
                .to_string()
                .contains("No scope")
        );
    }
}
