//! Obtaining a credential: discovery, then the grant that fits (authorization code with
//! a user, or a grant without one: client credentials, JWT bearer, enterprise-managed
//! ID-JAG), and the record that is stored.

use super::*;

impl OAuthClient {
    /// Discovery, registration, authorization, token exchange; the caller holds the
    /// flow mutex and the store lock. Announced as [`Progress::Discovering`] until done.
    pub(super) async fn authorize_locked(
        &self,
        www_authenticate: &[String],
        reason: Reason,
    ) -> Result<CredentialRecord> {
        self.browser.progress(&Progress::Discovering {
            server_url: self.config.server_url.clone(),
        });
        let result = self.authorize_steps(www_authenticate, reason).await;
        self.browser.progress(&Progress::Finished);
        result
    }

    pub(super) async fn authorize_steps(
        &self,
        www_authenticate: &[String],
        reason: Reason,
    ) -> Result<CredentialRecord> {
        self.config.check_transport(&self.config.server_url)?;
        let discovery = discovery::discover(&self.http, &self.config, www_authenticate).await?;
        for w in &discovery.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(
            issuer = %discovery.issuer(),
            resource = discovery.resource.as_deref().unwrap_or("(omitted)"),
            "discovered the authorization server"
        );
        let kind = self.resolve_grant(&discovery);
        let choice = self.select_scope(&discovery, &reason, kind == GrantKind::AuthorizationCode);
        let scope = choice.scope.clone();
        let dpop_key = if self.dpop_enabled(&discovery) {
            Some(DpopKey::generate()?)
        } else {
            None
        };
        *self.flow_dpop.lock().unwrap_or_else(|p| p.into_inner()) = dpop_key.clone();
        let without_user = CredentialGrant::from(kind).without_user();
        let (client, tokens) = match without_user {
            Some(k) => {
                let client = self.non_interactive_client(&discovery, k).await?;
                let target = MintTarget {
                    issuer: discovery.metadata.issuer(),
                    token_endpoint: discovery.metadata.token_endpoint().as_str(),
                    resource: discovery.resource.as_deref(),
                };
                let tokens = self
                    .mint(k, &target, &client, scope.as_deref(), dpop_key.as_ref())
                    .await?;
                (client, tokens)
            }
            None => self.interactive_with_recovery(&discovery, choice).await?,
        };
        let record = self.record_from(&discovery, client, tokens, kind, dpop_key.as_ref());
        self.save_record(&record).await?;
        if without_user.is_none() {
            self.user_authorized_generation
                .store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        tracing::info!("authorization complete");
        Ok(record)
    }

    /// The record to store for tokens obtained after `discovery`.
    pub(super) fn record_from(
        &self,
        discovery: &Discovery,
        client: ClientRegistration,
        tokens: TokenSet,
        grant: GrantKind,
        dpop_key: Option<&DpopKey>,
    ) -> CredentialRecord {
        CredentialRecord {
            server_url: self.config.server_url.clone(),
            resource: discovery
                .prm
                .as_ref()
                .map(|p| p.metadata.resource.clone())
                .unwrap_or_else(|| self.config.server_url.clone()),
            issuer: discovery.metadata.issuer().to_string(),
            token_endpoint: discovery.metadata.token_endpoint().to_string(),
            revocation_endpoint: discovery
                .metadata
                .revocation_endpoint()
                .map(Endpoint::to_string),
            resource_indicator: discovery.resource.clone(),
            client,
            tokens,
            grant: grant.into(),
            dpop_key: dpop_key.map(DpopKey::to_material),
        }
    }

    /// The grant to use with the discovered authorization server (see [`GrantKind::Auto`]).
    pub(super) fn resolve_grant(&self, d: &Discovery) -> GrantKind {
        if self.config.grant != GrantKind::Auto {
            return self.config.grant;
        }
        if self.config.workload_assertion.is_some() {
            return GrantKind::JwtBearer;
        }
        if self.config.enterprise.is_some() {
            return GrantKind::EnterpriseManaged;
        }
        let has_credentials = self
            .config
            .client
            .as_ref()
            .is_some_and(|c| c.client_secret.is_some() || c.private_key.is_some());
        let grants = d
            .metadata
            .document()
            .grant_types_supported
            .as_deref()
            .unwrap_or_default();
        let offers = |g: &str| grants.iter().any(|x| x == g);
        if has_credentials && offers("client_credentials") && !offers("authorization_code") {
            tracing::info!(
                "the authorization server offers client_credentials and not authorization_code; using client credentials"
            );
            return GrantKind::ClientCredentials;
        }
        GrantKind::AuthorizationCode
    }

    /// Whether to bind tokens to a DPoP key with this authorization server.
    pub(super) fn dpop_enabled(&self, d: &Discovery) -> bool {
        match self.config.dpop {
            DpopPolicy::Never => false,
            DpopPolicy::Always => true,
            // Both ends must take part: a DPoP-bound token is useless at a resource
            // server that only knows Bearer (oidc-provider advertises DPoP by default;
            // most MCP servers do not accept it).
            DpopPolicy::Auto => {
                d.resource_accepts_dpop
                    && d.metadata
                        .document()
                        .dpop_signing_alg_values_supported
                        .as_ref()
                        .is_some_and(|algs| algs.iter().any(|a| a == crate::dpop::DPOP_ALG))
            }
        }
    }

    /// The pre-registered client a grant without a user needs, once its credentials may
    /// go to the discovered issuer ([`crate::issuer_pin`]).
    pub(super) async fn non_interactive_client(
        &self,
        d: &Discovery,
        kind: GrantKind,
    ) -> Result<ClientRegistration> {
        let issuer = d.metadata.issuer();
        let Some(pre) = self
            .config
            .client
            .as_ref()
            .filter(|c| c.issuer.as_deref().is_none_or(|i| i == issuer))
        else {
            return Err(Error::Action {
                step: Step::Registration,
                message: format!(
                    "{} needs a client registered at {issuer}: {} when it is confidential",
                    CredentialGrant::from(kind),
                    Remedy::ConfigureClientForGrant
                ),
            });
        };
        crate::issuer_pin::check(&self.store, &self.config, pre, issuer).await?;
        // No redirect: these grants need no user.
        Ok(registration::pre_registered(
            pre,
            issuer.to_string(),
            String::new(),
            d.metadata.document(),
        ))
    }

    /// Obtains tokens with a grant that needs no user.
    pub(super) async fn mint(
        &self,
        kind: GrantKind,
        target: &MintTarget<'_>,
        client: &ClientRegistration,
        scope: Option<&str>,
        dpop_key: Option<&DpopKey>,
    ) -> Result<TokenSet> {
        let assertion_owned;
        let grant = match kind {
            GrantKind::ClientCredentials => Grant::ClientCredentials { scope },
            GrantKind::JwtBearer => {
                let source = self.config.workload_assertion.as_ref().ok_or_else(|| {
                    Error::config(format!(
                        "the jwt-bearer grant needs {}",
                        Remedy::ConfigureWorkloadAssertion
                    ))
                })?;
                assertion_owned = source.load()?;
                Grant::JwtBearer {
                    assertion: &assertion_owned,
                    scope,
                }
            }
            GrantKind::EnterpriseManaged => {
                assertion_owned = self.id_jag(target, scope).await?;
                Grant::JwtBearer {
                    assertion: &assertion_owned,
                    scope,
                }
            }
            GrantKind::Auto | GrantKind::AuthorizationCode => {
                return Err(Error::config("the authorization code grant needs a user"));
            }
        };
        // No retry on failure: a rejected assertion is reported as is (retrying the same
        // assertion, or falling back to another grant, would only hide the problem).
        token::request_tokens(
            &self.http,
            &TokenRequest {
                token_endpoint: target.token_endpoint,
                client: self.credentials(client).await?,
                grant,
                resource: target.resource,
                requested_scope: scope,
                dpop: dpop_key.map(|key| DpopContext {
                    key,
                    nonce: &self.as_nonce,
                }),
            },
        )
        .await
    }

    /// Enterprise-managed authorization, first leg: exchange the user's ID token at the
    /// enterprise IdP for an ID-JAG addressed to the MCP authorization server (RFC 8693).
    pub(super) async fn id_jag(
        &self,
        target: &MintTarget<'_>,
        scope: Option<&str>,
    ) -> Result<crate::secret::Assertion> {
        let ent = self.config.enterprise.as_ref().ok_or_else(|| {
            Error::config(format!(
                "enterprise-managed authorization needs {}",
                Remedy::ConfigureEnterpriseIdp
            ))
        })?;
        let id_token = ent.id_token.load()?;
        let idp_secret = ent
            .idp_client_secret
            .as_ref()
            .map(SecretSource::load)
            .transpose()?;
        let idp_client = ClientRegistration {
            issuer: String::new(),
            redirect_uri: String::new(),
            client_id: ent.idp_client_id.clone(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: if ent.idp_client_secret.is_some() {
                ClientAuthMethod::ClientSecretBasic
            } else {
                ClientAuthMethod::None
            },
            kind: RegistrationKind::PreRegistered,
            registered_at: now_secs(),
        };
        tracing::info!(idp = %ent.idp_token_endpoint, audience = %target.issuer, "exchanging the ID token for an ID-JAG");
        let jag = token::request_tokens(
            &self.http,
            &TokenRequest {
                token_endpoint: &ent.idp_token_endpoint,
                client: ClientCredentials::new(&idp_client).with_secret(idp_secret),
                grant: Grant::TokenExchange {
                    subject_token: &id_token,
                    subject_token_type: grant_types::ID_TOKEN,
                    requested_token_type: grant_types::ID_JAG,
                    audience: target.issuer,
                    scope,
                },
                resource: target.resource,
                requested_scope: scope,
                dpop: None,
            },
        )
        .await?;
        Ok(crate::secret::Assertion::new(jag.access_token.expose()))
    }
}

/// Where a grant without a user sends its token request.
pub(super) struct MintTarget<'a> {
    pub(super) issuer: &'a str,
    pub(super) token_endpoint: &'a str,
    pub(super) resource: Option<&'a str>,
}
