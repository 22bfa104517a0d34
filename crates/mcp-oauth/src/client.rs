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

use crate::authorize::browser::{Browser, Progress};
use crate::authorize::loopback::LoopbackListener;
use crate::authorize::{self, AuthorizationRequest, PendingAuthorization, Pkce};
use crate::challenge;
use crate::client_auth::{ClientAuthMethod, ClientCredentials};
use crate::config::{DpopPolicy, GrantKind, OAuthConfig, SecretSource};
use crate::discovery::{self, Discovery};
use crate::dpop::DpopKey;
use crate::error::{Error, Result, Step};
use crate::http::HttpClient;
use crate::registration;
use crate::secret::AuthorizationCode;
use crate::store::RegistrationKind;
use crate::store::{ClientRegistration, CredentialRecord, CredentialStore, StoreLock, TokenSet};
use crate::token::{self, DpopContext, Grant, TokenRequest, grant_types};
use crate::util::{now_secs, random_token, union_scopes};
use crate::wire::{BoxFuture, Refusal, RequestAuth};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A request is re-sent after at most this many (re-)authorizations.
pub const MAX_AUTHORIZATIONS_PER_REQUEST: u32 = 3;

// Paste and device modes, explicit logins, waiting for sibling processes.
mod interactive;
pub use interactive::LoginOutcome;
// Which scope an authorization request carries, and why.
pub mod scope;
// Retrying the token endpoint through transient failures.
mod retry;
use scope::ScopeChoice;

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
    /// Behind an `Arc` so that the per-request path (every proxied message) does not
    /// copy the record.
    cached: RwLock<Option<Arc<CredentialRecord>>>,
    /// Bumped whenever a new token is put in place, so that a task that waited for
    /// another one's flow can tell that it has nothing left to do.
    generation: AtomicU64,
    /// In-process single flight for refreshes and logins.
    flow: tokio::sync::Mutex<()>,
    /// The latest DPoP nonces from the authorization server and the MCP server.
    as_nonce: std::sync::Mutex<Option<String>>,
    rs_nonce: std::sync::Mutex<Option<String>>,
    /// The DPoP key of the authorization flow under way (set under `flow`).
    flow_dpop: std::sync::Mutex<Option<DpopKey>>,
    /// Client ids this process obtained (registered, or checked at the authorization
    /// endpoint) and saw no refusal of since: not checked again.
    vouched_clients: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The client id the current authorization registered itself, and whether it found
    /// that the server forgot the stored client it presented.
    fresh_client: std::sync::Mutex<Option<String>>,
    forgot_stale_client: std::sync::atomic::AtomicBool,
    /// Whether the store was searched for a credential under an older form of the key.
    legacy_checked: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("server_url", &self.config.server_url)
            .finish()
    }
}

impl OAuthClient {
    pub fn new(
        config: OAuthConfig,
        http: HttpClient,
        store: Arc<dyn CredentialStore>,
        browser: Arc<dyn Browser>,
    ) -> Self {
        // Every OAuth request of this client obeys the server's network policy.
        let http = http.for_config(&config);
        Self {
            config,
            http,
            store,
            browser,
            cached: RwLock::new(None),
            generation: AtomicU64::new(0),
            flow: tokio::sync::Mutex::new(()),
            as_nonce: std::sync::Mutex::new(None),
            rs_nonce: std::sync::Mutex::new(None),
            flow_dpop: std::sync::Mutex::new(None),
            vouched_clients: Default::default(),
            fresh_client: std::sync::Mutex::new(None),
            forgot_stale_client: std::sync::atomic::AtomicBool::new(false),
            legacy_checked: std::sync::atomic::AtomicBool::new(false),
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
        // Renewable with a refresh token, or by minting anew for grants without a user.
        if rec.tokens.refresh_token.is_none() && non_interactive_grant(&rec.grant).is_none() {
            return Ok(None);
        }
        Ok(Some(self.refresh(&rec).await?.tokens))
    }

    /// Runs discovery, registration and the authorization code flow now, storing the
    /// result. `www_authenticate` is the challenge that asked for it (may be empty).
    pub async fn authorize(
        &self,
        www_authenticate: &[String],
        reason: Reason,
    ) -> Result<CredentialRecord> {
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
            *g = rec.map(Arc::new);
        }
        if new_token {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn cached(&self) -> Option<CredentialRecord> {
        self.cached_arc().map(|r| (*r).clone())
    }

    fn cached_arc(&self) -> Option<Arc<CredentialRecord>> {
        self.cached.read().ok().and_then(|g| g.clone())
    }

    async fn load_record(&self) -> Result<Option<CredentialRecord>> {
        let store = self.store.clone();
        let key = self.config.credential_key();
        let mut rec = blocking(move || store.load(&key)).await?;
        if rec.is_none() && !self.legacy_checked.swap(true, Ordering::SeqCst) {
            // Once per client: a credential an earlier version keyed by the URL as typed.
            // Not on every miss, which an open server's requests through the proxy hit.
            let (store, key) = (self.store.clone(), self.config.credential_key());
            let typed = self.config.server_url.clone();
            rec = blocking(move || crate::store::find_legacy(&*store, &key, &typed)).await?;
        }
        // A record is only used for the server it was issued for.
        Ok(rec.filter(|r| crate::store::same_server(&r.server_url, &self.config.server_url)))
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
        // Says so (stderr, progress) when another process holds the lock.
        self.lock_store_noting_wait()
            .await
            .map(|(lock, _waited)| lock)
    }

    /// The cached record, else the stored one.
    async fn current(&self) -> Result<Option<CredentialRecord>> {
        Ok(self.current_arc().await?.map(|r| (*r).clone()))
    }

    async fn current_arc(&self) -> Result<Option<Arc<CredentialRecord>>> {
        if let Some(r) = self.cached_arc() {
            return Ok(Some(r));
        }
        let rec = self.load_record().await?;
        if rec.is_some() {
            self.set_cached(rec, false);
        }
        Ok(self.cached_arc())
    }

    fn expiring(&self, t: &TokenSet) -> bool {
        is_expiring(t, self.config.refresh_margin.as_secs(), now_secs())
    }

    /// Is `url` the resource this client's tokens are for? Same origin and path as the
    /// configured server URL; the query may differ.
    fn is_our_resource(&self, url: &str) -> bool {
        if url == self.config.server_url {
            return true;
        }
        match (
            url::Url::parse(url),
            url::Url::parse(&self.config.server_url),
        ) {
            (Ok(a), Ok(b)) => a.origin() == b.origin() && a.path() == b.path(),
            _ => false,
        }
    }

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
            let Some(kind) = non_interactive_grant(&base.grant) else {
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
        // refuses a refresh without it, AADSTS900144). Asking for exactly what was granted
        // changes nothing at servers that do not need it.
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
                self.forget_registration(&base.client).await;
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
            if let Some(rec) = sent
                && refusal.attempt == 0
                && (rec.tokens.refresh_token.is_some()
                    || non_interactive_grant(&rec.grant).is_some())
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

    /// A `DPoP error="use_dpop_nonce"` challenge with a `DPoP-Nonce` (RFC 9449 §9): keep
    /// the nonce and send the request again with a proof that carries it.
    fn take_rs_nonce(&self, refusal: &Refusal) -> bool {
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

    async fn handle_forbidden(&self, refusal: &Refusal) -> Result<()> {
        let (challenges, _) = challenge::parse_challenges_lenient(&refusal.www_authenticate);
        let bearer = challenge::bearer(&challenges).or_else(|| challenge::dpop(&challenges));
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
    /// flow mutex and the store lock. Announced as [`Progress::Discovering`] until done.
    async fn authorize_locked(
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

    async fn authorize_steps(
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
        let (client, tokens) = match non_interactive(kind) {
            Some(k) => {
                let client = self.non_interactive_client(&discovery, k).await?;
                let target = MintTarget {
                    issuer: &discovery.metadata.issuer,
                    token_endpoint: discovery
                        .metadata
                        .token_endpoint
                        .as_deref()
                        .unwrap_or_default(),
                    resource: discovery.resource.as_deref(),
                };
                let tokens = self
                    .mint(k, &target, &client, scope.as_deref(), dpop_key.as_ref())
                    .await?;
                (client, tokens)
            }
            None => self.interactive_with_recovery(&discovery, choice).await?,
        };
        let record = self.record_from(
            &discovery,
            client,
            tokens,
            grant_name(kind),
            dpop_key.as_ref(),
        );
        self.save_record(&record).await?;
        tracing::info!("authorization complete");
        Ok(record)
    }

    /// The record to store for tokens obtained after `discovery`.
    fn record_from(
        &self,
        discovery: &Discovery,
        client: ClientRegistration,
        tokens: TokenSet,
        grant: &str,
        dpop_key: Option<&DpopKey>,
    ) -> CredentialRecord {
        CredentialRecord {
            server_url: self.config.server_url.clone(),
            resource: discovery
                .prm
                .as_ref()
                .map(|p| p.metadata.resource.clone())
                .unwrap_or_else(|| self.config.server_url.clone()),
            issuer: discovery.metadata.issuer.clone(),
            token_endpoint: discovery
                .metadata
                .token_endpoint
                .clone()
                .unwrap_or_default(),
            revocation_endpoint: discovery.metadata.revocation_endpoint.clone(),
            resource_indicator: discovery.resource.clone(),
            client,
            tokens,
            grant: grant.to_string(),
            dpop_key: dpop_key.map(DpopKey::to_material),
        }
    }

    /// The grant to use with the discovered authorization server (see [`GrantKind::Auto`]).
    fn resolve_grant(&self, d: &Discovery) -> GrantKind {
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
    fn dpop_enabled(&self, d: &Discovery) -> bool {
        match self.config.dpop {
            DpopPolicy::Never => false,
            DpopPolicy::Always => true,
            // Both ends must take part: a DPoP-bound token is useless at a resource
            // server that only knows Bearer (oidc-provider advertises DPoP by default;
            // most MCP servers do not accept it).
            DpopPolicy::Auto => {
                d.resource_accepts_dpop
                    && d.metadata
                        .dpop_signing_alg_values_supported
                        .as_ref()
                        .is_some_and(|algs| algs.iter().any(|a| a == crate::dpop::DPOP_ALG))
            }
        }
    }

    /// The pre-registered client a grant without a user needs, once its credentials may
    /// go to the discovered issuer ([`crate::issuer_pin`]).
    async fn non_interactive_client(
        &self,
        d: &Discovery,
        kind: GrantKind,
    ) -> Result<ClientRegistration> {
        let issuer = &d.metadata.issuer;
        let Some(pre) = self
            .config
            .client
            .as_ref()
            .filter(|c| c.issuer.as_deref().is_none_or(|i| i == issuer))
        else {
            return Err(Error::Action {
                step: Step::Registration,
                message: format!(
                    "{} needs a client registered at {issuer}: pass --client-id, with \
                     --client-secret-env or --private-key when it is confidential",
                    grant_name(kind)
                ),
            });
        };
        crate::issuer_pin::check(&self.store, &self.config, pre, issuer).await?;
        let method =
            registration::pre_registered_auth_method(pre, &d.metadata.token_auth_methods());
        Ok(ClientRegistration {
            issuer: issuer.clone(),
            redirect_uri: String::new(),
            client_id: pre.client_id.clone(),
            // Read from its source at each use, never kept (see `SecretSource`).
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: method,
            kind: RegistrationKind::PreRegistered,
            registered_at: now_secs(),
        })
    }

    /// What `client` presents at the authorization server: with the configured private
    /// key and secret when `client` is the configured client (they belong to that client
    /// id; another client claiming `private_key_jwt` gets no key, and an error saying
    /// so). Every request that carries them is built from this, so this is where they
    /// are held to the issuer the client is pinned to ([`crate::issuer_pin`]: refused
    /// for another); the secret is read from its source now, so a rotated one is used at
    /// once.
    pub(crate) async fn credentials<'a>(
        &'a self,
        client: &'a ClientRegistration,
    ) -> Result<ClientCredentials<'a>> {
        let configured = self
            .config
            .client
            .as_ref()
            .filter(|c| c.client_id == client.client_id)
            .filter(|_| client.kind == RegistrationKind::PreRegistered);
        if let Some(pre) = configured {
            crate::issuer_pin::check(&self.store, &self.config, pre, &client.issuer).await?;
        }
        let key = configured.and_then(|c| c.private_key.as_ref());
        let secret = configured
            .and_then(|c| c.client_secret.as_ref())
            .map(SecretSource::load)
            .transpose()?;
        Ok(ClientCredentials::new(client)
            .with_signing_key(key)
            .with_secret(secret))
    }

    /// Obtains tokens with a grant that needs no user.
    async fn mint(
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
                    Error::Config(
                        "the jwt-bearer grant needs a workload assertion (--assertion-file)".into(),
                    )
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
                return Err(Error::Config(
                    "the authorization code grant needs a user".into(),
                ));
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
    async fn id_jag(
        &self,
        target: &MintTarget<'_>,
        scope: Option<&str>,
    ) -> Result<crate::secret::Assertion> {
        let ent = self.config.enterprise.as_ref().ok_or_else(|| {
            Error::Config("enterprise-managed authorization needs the IdP settings (--idp-token-endpoint, --id-token-file)".into())
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

    /// Registration and the authorization code flow through the browser and the loopback
    /// listener. The browser's page is rendered only once the tokens are in hand.
    async fn code_flow_with_loopback(
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
            expected_issuer: discovery.metadata.issuer.clone(),
            issuer_validated: discovery.issuer_validated(),
            iss_supported: discovery
                .metadata
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
            let code = authorize::validate_callback(&params, &pending)?;
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
    fn authorization_url(
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
            authorization_endpoint: discovery
                .metadata
                .authorization_endpoint
                .as_deref()
                .unwrap_or_default(),
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
    async fn exchange_code(
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
                token_endpoint: discovery
                    .metadata
                    .token_endpoint
                    .as_deref()
                    .unwrap_or_default(),
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
        let fresh = self
            .fresh_client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(client.client_id.as_str());
        if let Err(e) = &result
            && e.oauth_error() == Some("invalid_client")
            && !fresh
            && self.forget_registration(client).await
        {
            self.forgot_stale_client.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Drops a stored dynamic registration that the authorization server no longer
    /// accepts (it was deleted, or the server forgot it on restart), so that the next
    /// attempt registers anew instead of presenting a dead client id forever.
    pub(crate) async fn forget_registration(&self, client: &ClientRegistration) -> bool {
        self.vouched_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&client.client_id);
        if client.kind != RegistrationKind::Dynamic {
            return false;
        }
        let store = self.store.clone();
        let key = crate::store::ClientKey {
            issuer: client.issuer.clone(),
            redirect_uri: client.redirect_uri.clone(),
        };
        match blocking(move || store.remove_client(&key)).await {
            Ok(true) => {
                tracing::warn!(
                    client_id = %client.client_id,
                    "the authorization server refused the registered client; it was forgotten, \
                     and the next authorization registers a new one"
                );
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not forget the registered client");
                false
            }
        }
    }

    /// The scope of an authorization request and why ([`scope::select`]).
    fn select_scope(&self, d: &Discovery, reason: &Reason, interactive: bool) -> ScopeChoice {
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

    /// `Authorization` (and, for a DPoP-bound token, a fresh `DPoP` proof for this
    /// method and URL) for `rec`'s token.
    fn headers_for(
        &self,
        rec: &CredentialRecord,
        method: &str,
        url: &str,
    ) -> Result<http::HeaderMap> {
        let bad = |_| {
            Error::rule(
                Step::McpRequest,
                &self.config.server_url,
                "the access token has characters not allowed in a header",
            )
        };
        let token = rec.tokens.access_token.expose();
        let mut map = http::HeaderMap::new();
        let dpop_bound = rec.tokens.token_type.eq_ignore_ascii_case("dpop");
        match (&rec.dpop_key, dpop_bound) {
            (Some(material), true) => {
                let key = DpopKey::from_material(material)?;
                let nonce = self
                    .rs_nonce
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let proof = key.proof(method, url, Some(token), nonce.as_deref())?;
                let mut auth =
                    http::HeaderValue::from_str(&format!("DPoP {token}")).map_err(bad)?;
                auth.set_sensitive(true);
                map.insert(http::header::AUTHORIZATION, auth);
                map.insert("dpop", http::HeaderValue::from_str(&proof).map_err(bad)?);
            }
            (None, true) => {
                return Err(Error::rule(
                    Step::McpRequest,
                    &self.config.server_url,
                    "the stored token is DPoP-bound but its key is missing; log in again",
                ));
            }
            _ => {
                // The exact casing `Bearer` (RFC 6750 §2.1), whatever `token_type` said.
                let mut auth =
                    http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(bad)?;
                auth.set_sensitive(true);
                map.insert(http::header::AUTHORIZATION, auth);
            }
        }
        Ok(map)
    }

    async fn request_headers_for(&self, method: &str, url: &str) -> Result<http::HeaderMap> {
        if !self.is_our_resource(url) {
            // Never send a token anywhere but the resource it was issued for.
            return Ok(http::HeaderMap::new());
        }
        let Some(rec) = self.current_arc().await? else {
            return Ok(http::HeaderMap::new());
        };
        self.config.check_transport(url)?;
        if !self.expiring(&rec.tokens) {
            return self.headers_for(&rec, method, url);
        }
        if rec.tokens.refresh_token.is_none() && non_interactive_grant(&rec.grant).is_none() {
            // Expired with no way to renew: let the server's challenge start a new flow.
            return Ok(http::HeaderMap::new());
        }
        match self.refresh(&rec).await {
            Ok(next) => self.headers_for(&next, method, url),
            Err(e) => {
                tracing::warn!(error = %e, "renewing the token ahead of expiry failed");
                Ok(http::HeaderMap::new())
            }
        }
    }
}

impl RequestAuth for OAuthClient {
    fn authorization<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Option<http::HeaderValue>>> {
        Box::pin(async move {
            Ok(self
                .request_headers_for("POST", url)
                .await?
                .remove(http::header::AUTHORIZATION))
        })
    }

    fn request_headers<'a>(
        &'a self,
        method: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<http::HeaderMap>> {
        Box::pin(self.request_headers_for(method, url))
    }

    fn on_refusal<'a>(&'a self, refusal: &'a Refusal) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.handle_refusal(refusal))
    }

    fn address_guard(&self) -> Option<Arc<crate::netpolicy::AddressGuard>> {
        self.http.guard().cloned()
    }
}

/// Runs a store operation on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            path: String::new(),
            message: format!("the store task failed: {e}"),
        })?
}

/// Where a grant without a user sends its token request.
struct MintTarget<'a> {
    issuer: &'a str,
    token_endpoint: &'a str,
    resource: Option<&'a str>,
}

/// The grant if it needs no user.
fn non_interactive(kind: GrantKind) -> Option<GrantKind> {
    match kind {
        GrantKind::ClientCredentials | GrantKind::JwtBearer | GrantKind::EnterpriseManaged => {
            Some(kind)
        }
        GrantKind::Auto | GrantKind::AuthorizationCode => None,
    }
}

/// The name stored in [`CredentialRecord::grant`].
fn grant_name(kind: GrantKind) -> &'static str {
    match kind {
        GrantKind::ClientCredentials => "client_credentials",
        GrantKind::JwtBearer => "jwt_bearer",
        GrantKind::EnterpriseManaged => "enterprise_managed",
        GrantKind::Auto | GrantKind::AuthorizationCode => "authorization_code",
    }
}

/// The stored grant name back, when it is one that needs no user.
fn non_interactive_grant(name: &str) -> Option<GrantKind> {
    match name {
        "client_credentials" => Some(GrantKind::ClientCredentials),
        "jwt_bearer" => Some(GrantKind::JwtBearer),
        "enterprise_managed" => Some(GrantKind::EnterpriseManaged),
        _ => None,
    }
}

/// Is the token within the refresh margin of its expiry? The margin is at most half the
/// token's lifetime, so that short-lived tokens (a few seconds, as some servers and
/// tests issue) are not refreshed before every request.
fn is_expiring(t: &TokenSet, margin: u64, now: u64) -> bool {
    let Some(exp) = t.expires_at else {
        return false;
    };
    let lifetime = exp.saturating_sub(t.obtained_at);
    exp <= now + margin.min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;

    fn tokens(obtained_at: u64, expires_at: Option<u64>) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new("a"),
            token_type: "Bearer".into(),
            refresh_token: None,
            expires_at,
            scope: None,
            requested_scope: None,
            obtained_at,
        }
    }

    #[test]
    fn refresh_margin_is_capped_at_half_the_lifetime() {
        // One hour token, 60 s margin: refresh in the last minute.
        let t = tokens(1000, Some(4600));
        assert!(!is_expiring(&t, 60, 4539));
        assert!(is_expiring(&t, 60, 4540));
        // Five second token: the margin shrinks to 2 s, so it is used for 3 s.
        let t = tokens(1000, Some(1005));
        assert!(!is_expiring(&t, 60, 1002));
        assert!(is_expiring(&t, 60, 1003));
        // No expiry: never expiring.
        assert!(!is_expiring(&tokens(1000, None), 60, u64::MAX / 2));
    }
}
