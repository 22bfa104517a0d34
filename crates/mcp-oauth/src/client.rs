//! [`OAuthClient`]: the OAuth side of one MCP server. It hands the MCP client an
//! `Authorization` header for every request and answers refusals:
//!
//! - 401 with a token: adopt a token another task or process obtained meanwhile, else
//!   refresh once, else authorize again from the new challenge;
//! - 401 without a token: discovery from the challenge, registration, authorization;
//! - 403 `insufficient_scope`: step-up with the union of the scopes asked for before and
//!   the challenged ones.
//!
//! Each request may be refused and retried at most [`MAX_AUTHORIZATIONS_PER_REQUEST`]
//! times. Refreshes and logins are single-flight within the process (a mutex) and across
//! processes (the store's lock), and a token obtained by a sibling is adopted instead of
//! burning a rotating refresh token twice.

use crate::authorize::browser::Browser;
use crate::authorize::loopback::LoopbackListener;
use crate::authorize::{self, AuthorizationRequest, PendingAuthorization, Pkce};
use crate::challenge;
use crate::config::OAuthConfig;
use crate::discovery::{self, Discovery};
use crate::error::{Error, Result, Step};
use crate::http::HttpClient;
use crate::mcp::{BoxFuture, Refusal, RequestAuth};
use crate::registration;
use crate::secret::AuthorizationCode;
use crate::store::{ClientRegistration, CredentialRecord, CredentialStore, StoreLock, TokenSet};
use crate::token::{self, Grant, TokenRequest};
use crate::util::{now_secs, random_token, union_scopes};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A request is re-sent after at most this many (re-)authorizations.
pub const MAX_AUTHORIZATIONS_PER_REQUEST: u32 = 3;

/// Why an interactive authorization is being run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No usable credential.
    Unauthorized,
    /// Step-up: this scope set is needed.
    StepUp(String),
    /// Asked for explicitly (`mcp-oauth login`).
    Login,
}

/// The OAuth client of one MCP server.
pub struct OAuthClient {
    config: OAuthConfig,
    http: HttpClient,
    store: Arc<dyn CredentialStore>,
    browser: Arc<dyn Browser>,
    /// The record in use; `None` until loaded or obtained.
    cached: RwLock<Option<CredentialRecord>>,
    /// Bumped whenever a new token is put in place, so that a task that waited for
    /// another one's flow can tell that it has nothing left to do.
    generation: AtomicU64,
    /// In-process single flight for refreshes and logins.
    flow: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient").field("server_url", &self.config.server_url).finish()
    }
}

impl OAuthClient {
    pub fn new(
        config: OAuthConfig,
        http: HttpClient,
        store: Arc<dyn CredentialStore>,
        browser: Arc<dyn Browser>,
    ) -> Self {
        Self {
            config,
            http,
            store,
            browser,
            cached: RwLock::new(None),
            generation: AtomicU64::new(0),
            flow: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The stored credential for this server, if any (read from the store).
    pub async fn stored(&self) -> Result<Option<CredentialRecord>> {
        let rec = self.load_record().await?;
        self.set_cached(rec.clone(), false);
        Ok(rec)
    }

    /// A currently valid access token, refreshing it when it is about to expire. Never
    /// starts an interactive authorization.
    pub async fn valid_token(&self) -> Result<Option<TokenSet>> {
        let Some(rec) = self.current().await? else {
            return Ok(None);
        };
        if !self.expiring(&rec.tokens) {
            return Ok(Some(rec.tokens));
        }
        if rec.tokens.refresh_token.is_none() {
            return Ok(None);
        }
        Ok(Some(self.refresh(&rec).await?.tokens))
    }

    /// Runs discovery, registration and the authorization code flow now, storing the
    /// result. `www_authenticate` is the challenge that asked for it (may be empty).
    pub async fn authorize(&self, www_authenticate: &[String], reason: Reason) -> Result<CredentialRecord> {
        let _flow = self.flow.lock().await;
        let _lock = self.lock_store().await?;
        self.authorize_locked(www_authenticate, reason).await
    }

    /// Deletes the stored credential of this server.
    pub async fn forget(&self) -> Result<bool> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        self.set_cached(None, true);
        blocking(move || store.remove(&key)).await
    }

    // ----- internals -------------------------------------------------------------

    fn set_cached(&self, rec: Option<CredentialRecord>, new_token: bool) {
        if let Ok(mut g) = self.cached.write() {
            *g = rec;
        }
        if new_token {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn cached(&self) -> Option<CredentialRecord> {
        self.cached.read().ok().and_then(|g| g.clone())
    }

    async fn load_record(&self) -> Result<Option<CredentialRecord>> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        let rec = blocking(move || store.load(&key)).await?;
        // A record is only used for the server it was issued for.
        Ok(rec.filter(|r| r.server_url == self.config.server_url))
    }

    async fn save_record(&self, rec: &CredentialRecord) -> Result<()> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        let rec2 = rec.clone();
        blocking(move || store.save(&key, &rec2)).await?;
        self.set_cached(Some(rec.clone()), true);
        Ok(())
    }

    async fn lock_store(&self) -> Result<StoreLock> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        blocking(move || store.lock(&key)).await
    }

    /// The cached record, else the stored one.
    async fn current(&self) -> Result<Option<CredentialRecord>> {
        if let Some(r) = self.cached() {
            return Ok(Some(r));
        }
        let rec = self.load_record().await?;
        if rec.is_some() {
            self.set_cached(rec.clone(), false);
        }
        Ok(rec)
    }

    fn expiring(&self, t: &TokenSet) -> bool {
        t.expires_at
            .is_some_and(|exp| exp <= now_secs() + self.config.refresh_margin.as_secs())
    }

    /// Is `url` the resource this client's tokens are for? Same origin and path as the
    /// configured server URL; the query may differ.
    fn is_our_resource(&self, url: &str) -> bool {
        if url == self.config.server_url {
            return true;
        }
        match (url::Url::parse(url), url::Url::parse(&self.config.server_url)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin() && a.path() == b.path(),
            _ => false,
        }
    }

    /// Refresh `rec`'s token, single-flight across tasks and processes. A token that a
    /// sibling obtained while we waited is adopted instead.
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
        let Some(rt) = base.tokens.refresh_token.clone() else {
            return Err(Error::Action {
                step: Step::Refresh,
                message: "no refresh token is stored; log in again".into(),
            });
        };
        tracing::info!(token_endpoint = %base.token_endpoint, "refreshing the access token");
        let result = token::request_tokens(
            &self.http,
            &TokenRequest {
                token_endpoint: &base.token_endpoint,
                client: &base.client,
                grant: Grant::RefreshToken {
                    refresh_token: &rt,
                    scope: None,
                },
                resource: base.resource_indicator.as_deref(),
                requested_scope: base.tokens.requested_scope.as_deref(),
            },
        )
        .await;
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
            Err(e) => Err(e),
        }
    }

    async fn handle_refusal(&self, refusal: &Refusal) -> Result<()> {
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

    async fn handle_unauthorized(&self, refusal: &Refusal, entry_generation: u64) -> Result<()> {
        if refusal.sent_credentials {
            tracing::info!(url = %refusal.url, "the server refused the access token");
            let sent = self.cached();
            // Another task put a new token in place while this request was in flight.
            if self.generation.load(Ordering::SeqCst) != entry_generation {
                return Ok(());
            }
            if let Some(rec) = sent
                && refusal.attempt == 0
                && rec.tokens.refresh_token.is_some()
            {
                match self.refresh(&rec).await {
                    Ok(_) => return Ok(()),
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
            && cached.as_ref().is_none_or(|c| c.tokens.access_token != s.tokens.access_token)
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

    async fn handle_forbidden(&self, refusal: &Refusal) -> Result<()> {
        let (challenges, _) = challenge::parse_challenges_lenient(&refusal.www_authenticate);
        let bearer = challenge::bearer(&challenges);
        let Some(b) = bearer.filter(|b| b.error.as_deref() == Some("insufficient_scope")) else {
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

    /// Discovery, registration, authorization, token exchange; the caller holds the
    /// flow mutex and the store lock.
    async fn authorize_locked(&self, www_authenticate: &[String], reason: Reason) -> Result<CredentialRecord> {
        let discovery = discovery::discover(&self.http, &self.config, www_authenticate).await?;
        for w in &discovery.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(
            issuer = %discovery.issuer(),
            resource = discovery.resource.as_deref().unwrap_or("(omitted)"),
            "discovered the authorization server"
        );
        let scope = self.select_scope(&discovery, &reason);
        let (client, tokens) = self.code_flow_with_loopback(&discovery, scope.as_deref()).await?;
        let record = self.record_from(&discovery, client, tokens);
        self.save_record(&record).await?;
        tracing::info!("authorization complete");
        Ok(record)
    }

    /// The record to store for tokens obtained after `discovery`.
    fn record_from(&self, discovery: &Discovery, client: ClientRegistration, tokens: TokenSet) -> CredentialRecord {
        CredentialRecord {
            server_url: self.config.server_url.clone(),
            resource: discovery
                .prm
                .as_ref()
                .map(|p| p.metadata.resource.clone())
                .unwrap_or_else(|| self.config.server_url.clone()),
            issuer: discovery.metadata.issuer.clone(),
            token_endpoint: discovery.metadata.token_endpoint.clone().unwrap_or_default(),
            revocation_endpoint: discovery.metadata.revocation_endpoint.clone(),
            resource_indicator: discovery.resource.clone(),
            client,
            tokens,
        }
    }

    /// Registration and the authorization code flow through the browser and the loopback
    /// listener. The browser's page is rendered only once the tokens are in hand.
    async fn code_flow_with_loopback(
        &self,
        discovery: &Discovery,
        scope: Option<&str>,
    ) -> Result<(ClientRegistration, TokenSet)> {
        let listener = LoopbackListener::bind(&self.config.redirect, &self.config.server_url).await?;
        let redirect_uri = listener.redirect_uri().to_string();
        let client =
            registration::obtain_client(&self.http, &self.config, discovery, &redirect_uri, &self.store).await?;
        let pkce = Pkce::new();
        let state = random_token(24);
        let url = self.authorization_url(discovery, &client, &redirect_uri, scope, &state, &pkce)?;
        let pending = PendingAuthorization {
            state,
            expected_issuer: discovery.metadata.issuer.clone(),
            issuer_validated: discovery.issuer_validated(),
            iss_supported: discovery.metadata.authorization_response_iss_parameter_supported == Some(true),
            allow_missing_state: false,
        };
        tracing::info!(scope = scope.unwrap_or("(none)"), "opening the browser for authorization");
        self.browser.open(&url)?;
        let (params, responder) = listener.wait(self.config.callback_timeout).await?;
        let outcome = async {
            let code = authorize::validate_callback(&params, &pending)?;
            self.exchange_code(discovery, &client, &code, &pkce, &redirect_uri, scope).await
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
    fn authorization_url(
        &self,
        discovery: &Discovery,
        client: &ClientRegistration,
        redirect_uri: &str,
        scope: Option<&str>,
        state: &str,
        pkce: &Pkce,
    ) -> Result<String> {
        AuthorizationRequest {
            authorization_endpoint: discovery.metadata.authorization_endpoint.as_deref().unwrap_or_default(),
            client_id: &client.client_id,
            redirect_uri,
            scope,
            resource: discovery.resource.as_deref(),
            state,
            code_challenge: &pkce.challenge,
            extra: &self.config.authorize_params,
        }
        .url()
    }

    /// Redeems an authorization code (with the PKCE verifier and the `resource`).
    async fn exchange_code(
        &self,
        discovery: &Discovery,
        client: &ClientRegistration,
        code: &AuthorizationCode,
        pkce: &Pkce,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Result<TokenSet> {
        token::request_tokens(
            &self.http,
            &TokenRequest {
                token_endpoint: discovery.metadata.token_endpoint.as_deref().unwrap_or_default(),
                client,
                grant: Grant::AuthorizationCode {
                    code,
                    verifier: &pkce.verifier,
                    redirect_uri,
                },
                resource: discovery.resource.as_deref(),
                requested_scope: scope,
            },
        )
        .await
    }

    /// The spec's scope selection: configuration > step-up union > challenge `scope` >
    /// PRM `scopes_supported` > none; plus `offline_access` when the AS lists it.
    fn select_scope(&self, d: &Discovery, reason: &Reason) -> Option<String> {
        let base = if let Some(s) = &self.config.scopes {
            Some(s.clone())
        } else if let Reason::StepUp(s) = reason {
            Some(s.clone())
        } else if let Some(s) = d.challenge.as_ref().and_then(|c| c.scope.clone()) {
            Some(s)
        } else {
            d.scopes_supported().filter(|s| !s.is_empty()).map(|s| s.join(" "))
        };
        let base = base.filter(|s| !s.trim().is_empty());
        if self.config.scopes.is_none()
            && self.config.request_offline_access
            && d.metadata.supports_scope("offline_access")
        {
            let s = union_scopes([base.as_deref().unwrap_or_default(), "offline_access"]);
            return Some(s);
        }
        base
    }

    fn header_for(&self, tokens: &TokenSet) -> Result<http::HeaderValue> {
        let mut v = http::HeaderValue::from_str(&format!("Bearer {}", tokens.access_token.expose()))
            .map_err(|_| Error::rule(Step::McpRequest, &self.config.server_url, "the access token has characters not allowed in a header"))?;
        v.set_sensitive(true);
        Ok(v)
    }

    async fn authorization_header(&self, url: &str) -> Result<Option<http::HeaderValue>> {
        if !self.is_our_resource(url) {
            // Never send a token anywhere but the resource it was issued for.
            return Ok(None);
        }
        let Some(rec) = self.current().await? else {
            return Ok(None);
        };
        if !self.expiring(&rec.tokens) {
            return self.header_for(&rec.tokens).map(Some);
        }
        if rec.tokens.refresh_token.is_none() {
            // Expired with no way to renew: let the server's challenge start a new flow.
            return Ok(None);
        }
        match self.refresh(&rec).await {
            Ok(next) => self.header_for(&next.tokens).map(Some),
            Err(e) => {
                tracing::warn!(error = %e, "refreshing ahead of expiry failed");
                Ok(None)
            }
        }
    }
}

impl RequestAuth for OAuthClient {
    fn authorization<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Option<http::HeaderValue>>> {
        Box::pin(self.authorization_header(url))
    }

    fn on_refusal<'a>(&'a self, refusal: &'a Refusal) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.handle_refusal(refusal))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Store {
        path: String::new(),
        message: format!("the store task failed: {e}"),
    })?
}
