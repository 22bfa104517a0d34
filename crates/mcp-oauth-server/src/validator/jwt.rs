//! JWT access tokens (RFC 9068 and the common variants) verified locally against the
//! authorization server's JWKS.
//!
//! What is checked, in order: size; header (`alg` in the allow-list, which never
//! contains `none` or an HMAC algorithm; no `crit`; `typ` `at+jwt` unless configured
//! otherwise, RFC 9068 §4); the signature,
//! with a JWKS key whose `kid`, key type, curve, `alg`, `use` and `key_ops` all fit the
//! token (keys embedded in the token, `jku`, `x5u`, are ignored); `iss` equal to the
//! configured issuer; `aud` containing the canonical resource; `exp` (required) and
//! `nbf` with a small leeway; no `cnf` (a key-bound token is not a bearer token).
//!
//! The JWKS is fetched on first use and cached for `jwks_max_age`. A token signed with
//! an unknown `kid` triggers one refetch (the AS may have rotated its keys), at most once
//! per `kid_miss_cooldown` however many unknown kids arrive, and concurrent misses share
//! one fetch. Valid tokens are cached (by SHA-256 of the token) until their `exp`, at
//! most `cache_ttl`, so a client reusing its token costs a hash and a map lookup.

use super::{BoxFuture, HttpSettings, TokenError, TokenValidator, now_secs, read_capped};
use crate::cache::{TokenCache, token_key};
use crate::claims::{Claims, ClaimsSource};
use crate::config::ProtectedResource;
use crate::error::ConfigError;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The algorithms accepted unless configured otherwise.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];

/// Largest token looked at (a JWT access token is typically well under 2 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The JOSE `typ` of a JWT access token (RFC 9068 §4), in its short and its full media
/// type form (RFC 7515 §4.1.9 lets the `application/` prefix be omitted); compared
/// case-insensitively. Required by default: it is what tells an access token from an ID
/// token or another JWT the same issuer signs with the same keys for the same audience.
pub const ACCESS_TOKEN_TYPS: [&str; 2] = ["at+jwt", "application/at+jwt"];

/// Validates JWT access tokens against a JWKS. Cheap to clone (shared state).
///
/// ```no_run
/// # use mcp_oauth_server::{ProtectedResource, JwtValidator};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
///     .authorization_server("https://auth.example.com")
///     .build()?;
/// // Audience: the canonical resource; issuer: the only authorization server;
/// // JWKS: discovered from the issuer's metadata unless `jwks_uri` is given.
/// let validator = JwtValidator::builder(&resource)
///     .jwks_uri("https://auth.example.com/.well-known/jwks.json")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    /// One per accepted algorithm: jsonwebtoken wants all algorithms of a `Validation`
    /// in one family.
    validations: Vec<(Algorithm, Validation)>,
    leeway_secs: u64,
    /// `None`: any `typ` (the opt-out, [`JwtValidatorBuilder::allow_any_jwt_typ`]).
    required_typ: Option<Vec<String>>,
    jwks: Jwks,
    cache: TokenCache<Claims>,
    cache_ttl: Duration,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algorithms", &self.inner.algorithms)
            .field("jwks", &self.inner.jwks.source)
            .field("leeway_secs", &self.inner.leeway_secs)
            .field("required_typ", &self.inner.required_typ)
            .finish_non_exhaustive()
    }
}

/// Builder for [`JwtValidator`]; see [`JwtValidator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JwtValidatorBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    required_typ: Option<Vec<String>>,
    jwks_max_age: Duration,
    kid_miss_cooldown: Duration,
    cache_ttl: Duration,
    cache_max_entries: usize,
    http: HttpSettings,
}

impl JwtValidator {
    /// A validator for tokens meant for `resource`: the audience is the canonical
    /// resource URI, and the issuer is the resource's authorization server when it lists
    /// exactly one (otherwise set [`issuer`](JwtValidatorBuilder::issuer)).
    pub fn builder(resource: &ProtectedResource) -> JwtValidatorBuilder {
        let issuer = match resource.authorization_servers() {
            [only] => Some(only.clone()),
            _ => None,
        };
        JwtValidatorBuilder {
            issuer,
            audiences: vec![resource.resource().to_owned()],
            jwks_uri: None,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: Duration::from_secs(30),
            required_typ: Some(ACCESS_TOKEN_TYPS.map(String::from).to_vec()),
            jwks_max_age: Duration::from_secs(600),
            kid_miss_cooldown: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(300),
            cache_max_entries: 10_000,
            http: HttpSettings::default(),
        }
    }

    /// Fetches the JWKS now (e.g. at startup), instead of on the first request.
    pub async fn refresh_jwks(&self) -> Result<(), TokenError> {
        let generation = self.inner.jwks.current().generation;
        self.inner.jwks.refresh(Trigger::Initial, generation).await
    }

    /// How many times the JWKS (and, when discovering, the metadata) was requested.
    pub fn jwks_fetch_count(&self) -> u64 {
        self.inner.jwks.fetches.load(Ordering::Relaxed)
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Not API: installs a JWK set (its JSON) as if it had just been fetched, for the fuzz
    /// targets (`fuzz/` at the repository root) and tests that must not use the network.
    /// Keys are read exactly as from a fetched set. Returns how many are usable.
    #[doc(hidden)]
    pub fn install_jwks_for_tests(&self, jwks_json: &[u8]) -> usize {
        let keys = serde_json::from_slice::<Value>(jwks_json)
            .ok()
            .as_ref()
            .and_then(|v| v.get("keys"))
            .and_then(Value::as_array)
            .map(|keys| usable_keys(keys))
            .unwrap_or_default();
        let usable = keys.len();
        let jwks = &self.inner.jwks;
        let next = Arc::new(KeySet {
            keys,
            generation: jwks.current().generation + 1,
            fetched_at: Some(Instant::now()),
        });
        *jwks.keys.write().unwrap_or_else(|e| e.into_inner()) = next;
        usable
    }

    async fn validate_uncached(&self, token: &str) -> Result<Claims, TokenError> {
        let inner = &*self.inner;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let Some((_, validation)) = inner.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Err(TokenError::DisallowedAlgorithm);
        };
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            // RFC 7515 §4.1.11: no extension is understood here.
            return Err(TokenError::Malformed);
        }
        if let Some(accepted) = &inner.required_typ {
            let ok = header
                .typ
                .as_deref()
                .is_some_and(|t| accepted.iter().any(|a| a.eq_ignore_ascii_case(t)));
            if !ok {
                return Err(TokenError::WrongJwtType);
            }
        }
        let kid = header.kid.as_deref();
        let keys = inner.jwks.keys_for(kid, header.alg).await?;
        let mut result = Err(TokenError::UnknownKey);
        for key in keys.find(kid, header.alg) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    result = Ok(data.claims);
                    break;
                }
                Err(e) => {
                    let mapped = map_jwt_error(e.kind());
                    let try_next = mapped == TokenError::BadSignature;
                    result = Err(mapped);
                    if !try_next {
                        break;
                    }
                }
            }
        }
        let raw = result?;
        if let Some(cnf) = raw.get("cnf").and_then(Value::as_object)
            && (cnf.contains_key("jkt") || cnf.contains_key("x5t#S256"))
        {
            return Err(TokenError::BoundToken);
        }
        Ok(Claims::from_map(raw, ClaimsSource::Jwt))
    }
}

impl TokenValidator for JwtValidator {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, TokenError>> {
        Box::pin(async move {
            if token.len() > MAX_TOKEN_BYTES {
                return Err(TokenError::Malformed);
            }
            let key = token_key(token);
            if let Some(claims) = self.inner.cache.get(&key) {
                return Ok(claims);
            }
            if token.bytes().filter(|b| *b == b'.').count() != 2 {
                return Err(TokenError::Malformed);
            }
            let claims = self.validate_uncached(token).await?;
            if let Some(exp) = claims.expires_at() {
                let left = Duration::from_secs(exp.saturating_sub(now_secs()));
                self.inner
                    .cache
                    .insert(key, claims.clone(), left.min(self.inner.cache_ttl));
            }
            Ok(claims)
        })
    }

    fn validate_now(&self, token: &str) -> Option<Result<Claims, TokenError>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Some(Err(TokenError::Malformed));
        }
        self.inner.cache.get(&token_key(token)).map(Ok)
    }
}

fn map_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(match c.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "nbf" => "nbf",
            "sub" => "sub",
            _ => "claim",
        }),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => TokenError::DisallowedAlgorithm,
        _ => TokenError::Malformed,
    }
}

impl JwtValidatorBuilder {
    /// The expected `iss` (exact string comparison). Required when the resource lists
    /// several authorization servers.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Another accepted audience besides the canonical resource URI (e.g. a legacy
    /// identifier). A token is accepted when its `aud` contains any of them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The JWKS URL. Without it the `jwks_uri` of the issuer's metadata (RFC 8414, then
    /// OpenID Connect Discovery) is used, after checking the metadata's `issuer`.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// The accepted signature algorithms (default RS256, ES256, PS256, EdDSA). HMAC
    /// algorithms are refused by `build`: a JWKS publishes public keys.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 30 s, whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Accept these JOSE `typ` header values (case-insensitive) instead of the default
    /// [`ACCESS_TOKEN_TYPS`] (`at+jwt`, `application/at+jwt`, RFC 9068 §4): for an
    /// issuer that marks its access tokens with another type of its own.
    pub fn require_typ<I, S>(mut self, accepted: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_typ = Some(accepted.into_iter().map(Into::into).collect());
        self
    }

    /// Accept a token whatever its `typ` header says, or without one. WEAKENS A CHECK:
    /// only for an issuer that does not mark its access tokens `at+jwt` (RFC 9068 §4),
    /// and then only when nothing else it signs with these keys (ID tokens, logout
    /// tokens) can carry this resource as its audience, since such a JWT would be
    /// accepted as an access token. Logged at build time.
    pub fn allow_any_jwt_typ(mut self) -> Self {
        self.required_typ = None;
        self
    }

    /// How long a fetched JWKS is used before it is fetched again (default 10 min).
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age;
        self
    }

    /// Minimum time between two refetches caused by unknown `kid`s (default 30 s).
    pub fn kid_miss_cooldown(mut self, cooldown: Duration) -> Self {
        self.kid_miss_cooldown = cooldown;
        self
    }

    /// Longest time a validated token is remembered (default 5 min; never past its
    /// `exp`). `Duration::ZERO` verifies every request.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Bound on remembered tokens (default 10 000).
    pub fn cache_max_entries(mut self, n: usize) -> Self {
        self.cache_max_entries = n;
        self
    }

    /// TCP/TLS connect timeout for JWKS and metadata requests (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.http.connect_timeout = t;
        self
    }

    /// Whole-request timeout for JWKS and metadata requests (default 10 s).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.http.request_timeout = t;
        self
    }

    /// Accept plain-http JWKS and issuer URLs on non-loopback hosts. Loopback is always
    /// accepted; anything else over http lets a network attacker substitute keys.
    pub fn allow_insecure_http(mut self, on: bool) -> Self {
        self.http.allow_insecure_http = on;
        self
    }

    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        let issuer = self.issuer.ok_or_else(|| {
            ConfigError::Validator(
                "JwtValidator: no issuer (the resource lists several authorization servers; \
                 call .issuer(..))"
                    .into(),
            )
        })?;
        if self.audiences.is_empty() {
            return Err(ConfigError::Validator("JwtValidator: no audience".into()));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::Validator(
                "JwtValidator: no algorithm accepted".into(),
            ));
        }
        if let Some(a) = self
            .algorithms
            .iter()
            .find(|a| a.family() == AlgorithmFamily::Hmac)
        {
            return Err(ConfigError::Validator(format!(
                "JwtValidator: {a:?} is an HMAC algorithm; JWKS validation only accepts \
                 asymmetric signatures"
            )));
        }
        match &self.required_typ {
            Some(accepted) if accepted.is_empty() => {
                return Err(ConfigError::Validator(
                    "JwtValidator: require_typ with no type would accept no token \
                     (allow_any_jwt_typ turns the check off)"
                        .into(),
                ));
            }
            Some(_) => {}
            None => tracing::warn!(
                %issuer,
                "JwtValidator: allow_any_jwt_typ: JWTs are accepted as access tokens whatever \
                 their typ header (the RFC 9068 at+jwt check is off)"
            ),
        }
        let source = match self.jwks_uri {
            Some(uri) => {
                self.http.check_url("jwks_uri", &uri)?;
                JwksSource::Uri(uri)
            }
            None => {
                self.http.check_url("issuer", &issuer)?;
                JwksSource::Discover
            }
        };

        let validations = self
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.leeway = self.leeway.as_secs();
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.set_audience(&self.audiences);
                v.set_issuer(&[issuer.as_str()]);
                // Without these, jsonwebtoken skips the iss/aud checks when the claim
                // is absent.
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                (alg, v)
            })
            .collect();

        let http = self.http.client()?;
        Ok(JwtValidator {
            inner: Arc::new(Inner {
                audiences: self.audiences,
                algorithms: self.algorithms,
                validations,
                leeway_secs: self.leeway.as_secs(),
                required_typ: self.required_typ,
                jwks: Jwks {
                    http,
                    settings: self.http,
                    source,
                    issuer: issuer.clone(),
                    keys: RwLock::new(Arc::new(KeySet::default())),
                    refresh: tokio::sync::Mutex::new(RefreshState::default()),
                    max_age: self.jwks_max_age,
                    kid_miss_cooldown: self.kid_miss_cooldown,
                    failure_backoff: self.kid_miss_cooldown.min(Duration::from_secs(5)),
                    fetches: AtomicU64::new(0),
                },
                issuer,
                cache: TokenCache::new(self.cache_max_entries),
                cache_ttl: self.cache_ttl,
            }),
        })
    }
}

// ---- JWKS ----

#[derive(Debug, Clone)]
enum JwksSource {
    Uri(String),
    /// From the issuer's authorization server metadata.
    Discover,
}

struct VerifyKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl VerifyKey {
    fn fits(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        if let Some(kid) = kid
            && self.kid.as_deref() != Some(kid)
        {
            return false;
        }
        if self.family != alg.family() || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (alg, &self.curve) {
            (Algorithm::ES256, Some(EllipticCurve::P256))
            | (Algorithm::ES384, Some(EllipticCurve::P384))
            | (Algorithm::EdDSA, Some(EllipticCurve::Ed25519)) => true,
            (Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA, _) => false,
            _ => true,
        }
    }

    /// The usable signature-verification key of a JWK, if it is one. Symmetric (`oct`)
    /// keys, encryption keys and unknown key types are skipped.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        match &jwk.common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(_) => return None,
        }
        if let Some(ops) = &jwk.common.key_operations
            && !ops.contains(&KeyOperations::Verify)
        {
            return None;
        }
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return None,
            Some(ka) => match Algorithm::try_from(ka) {
                Ok(a) if a.family() != AlgorithmFamily::Hmac => Some(a),
                _ => return None,
            },
        };
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                (AlgorithmFamily::Ed, Some(EllipticCurve::Ed25519))
            }
            _ => return None,
        };
        if alg.is_some_and(|a| a.family() != family) {
            return None;
        }
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(VerifyKey {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            curve,
            key,
        })
    }
}

/// The signature-verification keys of a JWK set's `keys` array; anything unparsable
/// or unusable is skipped (one odd key must not take the others down).
fn usable_keys(keys: &[Value]) -> Vec<VerifyKey> {
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter_map(|jwk| VerifyKey::from_jwk(&jwk))
        .collect()
}

#[derive(Default)]
struct KeySet {
    keys: Vec<VerifyKey>,
    /// 0 until the first successful fetch; bumped by each one.
    generation: u64,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn find<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> {
        self.keys.iter().filter(move |k| k.fits(kid, alg))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Initial,
    Stale,
    KidMiss,
}

#[derive(Default)]
struct RefreshState {
    last_kid_miss_fetch: Option<Instant>,
    last_failure: Option<Instant>,
    discovered_uri: Option<String>,
}

struct Jwks {
    http: reqwest::Client,
    settings: HttpSettings,
    source: JwksSource,
    issuer: String,
    keys: RwLock<Arc<KeySet>>,
    /// Single flight: one fetch at a time; waiters see its result.
    refresh: tokio::sync::Mutex<RefreshState>,
    max_age: Duration,
    kid_miss_cooldown: Duration,
    failure_backoff: Duration,
    fetches: AtomicU64,
}

impl Jwks {
    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A key set that has at least one key fitting `kid`/`alg`, fetching or refetching as
    /// the rules allow.
    async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<KeySet>, TokenError> {
        let mut set = self.current();
        if set.generation == 0 {
            self.refresh(Trigger::Initial, 0).await?;
            set = self.current();
        } else if set.fetched_at.is_none_or(|t| t.elapsed() >= self.max_age) {
            if let Err(e) = self.refresh(Trigger::Stale, set.generation).await {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the cached keys");
            }
            set = self.current();
        }
        if set.find(kid, alg).next().is_some() {
            return Ok(set);
        }
        // Unknown kid: the authorization server may have rotated its keys.
        self.refresh(Trigger::KidMiss, set.generation).await?;
        let set = self.current();
        if set.find(kid, alg).next().is_some() {
            Ok(set)
        } else {
            Err(TokenError::UnknownKey)
        }
    }

    async fn refresh(&self, trigger: Trigger, seen_generation: u64) -> Result<(), TokenError> {
        let mut state = self.refresh.lock().await;
        let current = self.current();
        if current.generation != seen_generation {
            return Ok(()); // fetched while we waited
        }
        let now = Instant::now();
        if state
            .last_failure
            .is_some_and(|t| now.duration_since(t) < self.failure_backoff)
        {
            return Err(TokenError::Unavailable(
                "the last JWKS fetch failed moments ago".into(),
            ));
        }
        if trigger == Trigger::KidMiss {
            if state
                .last_kid_miss_fetch
                .is_some_and(|t| now.duration_since(t) < self.kid_miss_cooldown)
            {
                tracing::debug!("unknown kid; JWKS refetch rate-limited");
                return Ok(());
            }
            state.last_kid_miss_fetch = Some(now);
        }
        match self.fetch(&mut state).await {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), ?trigger, "JWKS fetched");
                let next = Arc::new(KeySet {
                    keys,
                    generation: current.generation + 1,
                    fetched_at: Some(Instant::now()),
                });
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = next;
                state.last_failure = None;
                Ok(())
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                tracing::warn!(error = %e, ?trigger, "JWKS fetch failed");
                Err(TokenError::Unavailable(e))
            }
        }
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Vec<VerifyKey>, String> {
        let uri = match &self.source {
            JwksSource::Uri(u) => u.clone(),
            JwksSource::Discover => match &state.discovered_uri {
                Some(u) => u.clone(),
                None => {
                    let u = self.discover_jwks_uri().await?;
                    state.discovered_uri = Some(u.clone());
                    u
                }
            },
        };
        let body = self
            .get_json(&uri, "application/jwk-set+json, application/json")
            .await?;
        let keys = body
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{uri}: not a JWK set (no \"keys\" array)"))?;
        let usable = usable_keys(keys);
        if usable.is_empty() {
            return Err(format!("{uri}: the JWK set has no usable signature key"));
        }
        Ok(usable)
    }

    async fn get_json(&self, url: &str, accept: &str) -> Result<Value, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .get(url)
            .header(http::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        let body = read_capped(resp, self.settings.max_body_bytes)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// RFC 8414 §3.1 (path insertion), then OpenID Connect Discovery (insertion and
    /// appending), as the MCP spec orders them; the document's `issuer` must be the
    /// configured issuer, exactly.
    async fn discover_jwks_uri(&self) -> Result<String, String> {
        let mut errors = Vec::new();
        for url in metadata_urls(&self.issuer) {
            let doc = match self.get_json(&url, "application/json").await {
                Ok(d) => d,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                errors.push(format!("{url}: issuer does not match {:?}", self.issuer));
                continue;
            }
            let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
                errors.push(format!("{url}: no jwks_uri"));
                continue;
            };
            self.settings
                .check_url("jwks_uri", jwks_uri)
                .map_err(|e| e.to_string())?;
            return Ok(jwks_uri.to_owned());
        }
        Err(format!(
            "no usable authorization server metadata: {}",
            errors.join("; ")
        ))
    }
}

fn metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

#[cfg(test)]
mod tests;
