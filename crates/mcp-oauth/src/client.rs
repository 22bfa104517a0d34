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
use crate::credential::{
    ClientRegistration, CredentialGrant, CredentialRecord, RegistrationKind, TokenSet,
};
use crate::discovery::endpoint::Endpoint;
use crate::discovery::{self, Discovery};
use crate::dpop::DpopKey;
use crate::error::{Error, Result, Rule, Step};
use crate::http::HttpClient;
use crate::registration;
use crate::remedy::Remedy;
use crate::secret::AuthorizationCode;
use crate::store::{CredentialStore, StoreLock};
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
// Refreshing a credential.
mod refresh;
// Answering 401 and 403 refusals.
mod refusal;
// Obtaining a credential: discovery, then the grant that fits.
mod grants;
use grants::MintTarget;
// The authorization code flow with PKCE and a loopback redirect.
mod code_flow;
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
    /// The generation of the token a user's authorization (the browser, a paste, a device
    /// code) put in place last; `u64::MAX` for none. A 401 for exactly that token is not
    /// answered with another authorization (see `refusal.rs`).
    user_authorized_generation: AtomicU64,
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
    /// A stored client the authorization endpoint refused a scope for (`invalid_scope`),
    /// which a new registration may fix (see `interactive_with_recovery`).
    scope_refused_client: std::sync::Mutex<Option<ClientRegistration>>,
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
    /// A client for `config`'s MCP server: it sends its requests through `http` (under the
    /// configuration's network policy), keeps credentials in `store`, and has `browser`
    /// open the authorization page.
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
            user_authorized_generation: AtomicU64::new(u64::MAX),
            flow: tokio::sync::Mutex::new(()),
            as_nonce: std::sync::Mutex::new(None),
            rs_nonce: std::sync::Mutex::new(None),
            flow_dpop: std::sync::Mutex::new(None),
            vouched_clients: Default::default(),
            fresh_client: std::sync::Mutex::new(None),
            forgot_stale_client: std::sync::atomic::AtomicBool::new(false),
            scope_refused_client: std::sync::Mutex::new(None),
            legacy_checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The HTTP client OAuth requests go through.
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
        if rec.tokens.refresh_token.is_none() && rec.grant.without_user().is_none() {
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
    pub fn is_our_resource(&self, url: &str) -> bool {
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

    /// Drops a stored dynamic registration that the authorization server no longer
    /// accepts (it was deleted, the server forgot it on restart, or it lacks a scope the
    /// server has since gained), so that the next attempt registers anew instead of
    /// presenting a dead client id forever. `why` says what the server refused, for the
    /// one log line about it.
    pub(crate) async fn forget_registration(&self, client: &ClientRegistration, why: &str) -> bool {
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
                    "{why}; the registered client was forgotten, and the next authorization \
                     registers a new one"
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
                return Err(Error::broke(
                    Step::McpRequest,
                    &self.config.server_url,
                    Rule::MissingCredential(
                        "the stored token is DPoP-bound but its key is missing; log in again"
                            .into(),
                    ),
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
        if rec.tokens.refresh_token.is_none() && rec.grant.without_user().is_none() {
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
            source: Some(Box::new(e)),
        })?
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
