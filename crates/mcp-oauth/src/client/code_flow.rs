//! The authorization code flow with PKCE and a loopback redirect: the authorization
//! URL, the browser, the callback and the code exchange.

use super::*;

impl OAuthClient {
    /// Registration and the authorization code flow through the browser and the loopback
    /// listener. The browser's page is rendered only once the tokens are in hand.
    pub(super) async fn code_flow_with_loopback(
        &self,
        discovery: &Discovery,
        choice: &ScopeChoice,
    ) -> Result<(ClientRegistration, TokenSet)> {
        let scope = choice.scope.as_deref();
        let listener =
            LoopbackListener::bind(&self.config.redirect, &self.config.server_url).await?;
        let redirect_uri = listener.redirect_uri().to_string();
        let client = self.client_for(discovery, &redirect_uri).await?;
        let pkce = Pkce::new();
        let state = random_token(24);
        let url =
            self.authorization_url(discovery, &client, &redirect_uri, choice, &state, &pkce)?;
        let pending = PendingAuthorization {
            state: state.clone(),
            expected_issuer: discovery.metadata.issuer().to_string(),
            issuer_validated: discovery.issuer_validated(),
            iss_supported: discovery
                .metadata
                .document()
                .authorization_response_iss_parameter_supported
                == Some(true),
            allow_missing_state: false,
        };
        tracing::info!(
            scope = scope.unwrap_or("(none)"),
            "opening the browser for authorization"
        );
        if let Err(e) = self.browser.open(&url) {
            // No browser could be started (no opener, a container, WSL): the listener
            // still waits, so the user can open the URL by hand (the error names it).
            tracing::warn!("{e}; waiting for the redirect all the same");
        }
        // A time-out is not a refusal: the registration is kept (the user may simply
        // not have finished), and only an answer from the authorization server may
        // forget it.
        let (params, responder) = listener.wait(self.config.callback_timeout, &state).await?;
        let outcome = async {
            let code = authorize::validate_callback(&params, &pending)
                .inspect_err(|e| self.note_scope_refusal(&client, e))?;
            self.exchange_code(discovery, &client, &code, &pkce, &redirect_uri, scope)
                .await
        }
        .await;
        match outcome {
            Ok(tokens) => {
                responder.finish(Ok(()));
                Ok((client, tokens))
            }
            Err(e) => {
                responder.finish(Err(e.to_string()));
                Err(e)
            }
        }
    }

    /// The authorization request URL.
    pub(super) fn authorization_url(
        &self,
        discovery: &Discovery,
        client: &ClientRegistration,
        redirect_uri: &str,
        choice: &ScopeChoice,
        state: &str,
        pkce: &Pkce,
    ) -> Result<String> {
        let mut extra = self.config.authorize_params.clone();
        extra.extend(choice.extra_params());
        AuthorizationRequest {
            authorization_endpoint: discovery.metadata.authorization_endpoint().as_str(),
            client_id: &client.client_id,
            redirect_uri,
            scope: choice.scope.as_deref(),
            resource: discovery.resource.as_deref(),
            state,
            code_challenge: &pkce.challenge,
            extra: &extra,
        }
        .url()
    }

    /// Redeems an authorization code (with the PKCE verifier and the `resource`).
    pub(super) async fn exchange_code(
        &self,
        discovery: &Discovery,
        client: &ClientRegistration,
        code: &AuthorizationCode,
        pkce: &Pkce,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Result<TokenSet> {
        let flow_dpop = self
            .flow_dpop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let result = token::request_tokens(
            &self.http,
            &TokenRequest {
                token_endpoint: discovery.metadata.token_endpoint().as_str(),
                client: self.credentials(client).await?,
                grant: Grant::AuthorizationCode {
                    code,
                    verifier: &pkce.verifier,
                    redirect_uri,
                },
                resource: discovery.resource.as_deref(),
                requested_scope: scope,
                dpop: flow_dpop.as_ref().map(|key| DpopContext {
                    key,
                    nonce: &self.as_nonce,
                }),
            },
        )
        .await;
        // A client registered moments ago for this very authorization is not one the
        // server forgot: its refusal says something else (an authentication method it
        // does not take), which registering again would only repeat.
        if let Err(e) = &result
            && e.oauth_error() == Some("invalid_client")
            && !self.registered_in_this_flow(client)
            && self
                .forget_registration(client, "the token endpoint refused the registered client")
                .await
        {
            self.forgot_stale_client.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Whether `client` is the one this authorization registered.
    pub(super) fn registered_in_this_flow(&self, client: &ClientRegistration) -> bool {
        self.fresh_client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(client.client_id.as_str())
    }

    /// Notes a stored dynamic client that the authorization endpoint refused a scope for:
    /// servers that bind a client's scopes when it registers (the MCP Python SDK's
    /// authorization server, FastMCP's OAuth proxy: "Client was not registered with
    /// scope …") refuse every scope they added since, and only a new registration gets
    /// them. `interactive_with_recovery` decides whether to register anew.
    pub(super) fn note_scope_refusal(&self, client: &ClientRegistration, e: &Error) {
        let refused_scope = matches!(
            e,
            Error::AuthorizationRefused { body, .. } if body.error == "invalid_scope"
        );
        if refused_scope
            && client.kind == RegistrationKind::Dynamic
            && !self.registered_in_this_flow(client)
        {
            *self
                .scope_refused_client
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        }
    }

    /// The scope of an authorization request and why ([`scope::select`]).
    pub(super) fn select_scope(
        &self,
        d: &Discovery,
        reason: &Reason,
        interactive: bool,
    ) -> ScopeChoice {
        let step_up = match reason {
            Reason::StepUp(s) => Some(s.as_str()),
            _ => None,
        };
        scope::select(&scope::ScopeInputs::from_discovery(
            d,
            &self.config,
            step_up,
            interactive,
        ))
    }
}
