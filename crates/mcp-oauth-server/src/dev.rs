//! An in-process token issuer for tests, examples and demos (feature `dev`): it
//! generates signing keys, serves them as a JWKS (plus minimal RFC 8414 metadata), and
//! mints JWT access tokens. **Never use it in production**: it has no users, no
//! authorization endpoint, and signs whatever it is asked to.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mcp_oauth_server::dev::DevIssuer;
//! use jsonwebtoken::Algorithm;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let issuer = DevIssuer::new(format!("http://{}", listener.local_addr()?), Algorithm::ES256);
//! tokio::spawn(axum::serve(listener, issuer.router()).into_future());
//! let token = issuer
//!     .token("http://127.0.0.1:8080/mcp")
//!     .subject("alice")
//!     .scopes(["mcp"])
//!     .sign();
//! # Ok(()) }
//! ```

use crate::validator::now_secs;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A generated signing key and its public JWK.
#[derive(Clone)]
pub struct DevKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl fmt::Debug for DevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl DevKey {
    /// Generates a key for `alg`: RS256/RS384/RS512/PS256/PS384/PS512 (RSA 2048),
    /// ES256, ES384 or EdDSA (Ed25519).
    ///
    /// # Panics
    /// For HMAC algorithms, or if key generation fails.
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        let rng = SystemRandom::new();
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let curve = if alg == Algorithm::ES256 {
                    &ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let doc = EcdsaKeyPair::generate_pkcs8(curve, &rng).expect("EC key generation");
                EncodingKey::from_ec_der(doc.as_ref())
            }
            Algorithm::EdDSA => {
                let doc = Ed25519KeyPair::generate_pkcs8v1(&rng).expect("Ed25519 key generation");
                EncodingKey::from_ed_der(doc.as_ref())
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .expect("RSA key generation");
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                    kp.as_der().expect("RSA PKCS#8");
                EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der.as_ref()).as_bytes())
                    .expect("RSA PEM")
            }
            other => panic!("DevKey: {other:?} is not an asymmetric signature algorithm"),
        };
        let kid = kid.into();
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        DevKey {
            kid,
            alg,
            encoding,
            jwk,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public key, as published in the JWKS.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` with this key (header: `alg`, `kid`, `typ: at+jwt`).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` with this key under an arbitrary header (for negative tests).
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("signing")
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The issuer: published keys, the signing key (the last one added), counters.
pub struct DevIssuer {
    issuer: String,
    keys: RwLock<Vec<DevKey>>,
    jwks_requests: AtomicU64,
    next_kid: AtomicU64,
}

impl fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field(
                "keys",
                &*self.keys.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// An issuer with identifier `issuer` (e.g. `http://127.0.0.1:PORT`, where its
    /// [`router`](Self::router) is served) and one signing key for `alg`.
    pub fn new(issuer: impl Into<String>, alg: Algorithm) -> Arc<Self> {
        let this = Arc::new(DevIssuer {
            issuer: issuer.into(),
            keys: RwLock::new(Vec::new()),
            jwks_requests: AtomicU64::new(0),
            next_kid: AtomicU64::new(1),
        });
        this.rotate(alg);
        this
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `{issuer}/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer.trim_end_matches('/'))
    }

    /// Generates a new key (`kid` = `key-N`), publishes it and signs with it from now
    /// on. Older keys stay published until [`remove_key`](Self::remove_key).
    pub fn rotate(&self, alg: Algorithm) -> String {
        let kid = format!("key-{}", self.next_kid.fetch_add(1, Ordering::Relaxed));
        self.add_key(DevKey::generate(alg, kid.clone()));
        kid
    }

    /// Publishes `key` and makes it the signing key.
    pub fn add_key(&self, key: DevKey) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
    }

    /// Unpublishes a key.
    pub fn remove_key(&self, kid: &str) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k| k.kid != kid);
    }

    /// The current signing key.
    pub fn signing_key(&self) -> DevKey {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
            .expect("DevIssuer has a key")
    }

    /// The published JWK set.
    pub fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        json!({"keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()})
    }

    /// How many times the JWKS was served.
    pub fn jwks_requests(&self) -> u64 {
        self.jwks_requests.load(Ordering::Relaxed)
    }

    /// `GET /jwks` and `GET /.well-known/oauth-authorization-server` (issuer and
    /// `jwks_uri` only: enough for JWKS discovery).
    pub fn router(self: &Arc<Self>) -> Router {
        let jwks = self.clone();
        let meta = self.clone();
        Router::new()
            .route(
                "/jwks",
                get(move || {
                    let this = jwks.clone();
                    async move {
                        this.jwks_requests.fetch_add(1, Ordering::Relaxed);
                        axum::Json(this.jwks())
                    }
                }),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || {
                    let this = meta.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": this.issuer,
                            "jwks_uri": this.jwks_uri(),
                            "response_types_supported": ["code"],
                        }))
                    }
                }),
            )
    }

    /// Starts a token for `audience` (the canonical resource URI), valid for an hour.
    pub fn token(&self, audience: impl Into<String>) -> TokenBuilder<'_> {
        let now = now_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("aud".into(), audience.into().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + 3600).into());
        claims.insert(
            "jti".into(),
            format!("jti-{}", self.next_kid.fetch_add(1, Ordering::Relaxed)).into(),
        );
        TokenBuilder {
            issuer: self,
            claims,
            key: None,
        }
    }
}

/// A token being minted; see [`DevIssuer::token`].
#[must_use]
pub struct TokenBuilder<'a> {
    issuer: &'a DevIssuer,
    claims: Map<String, Value>,
    key: Option<DevKey>,
}

impl TokenBuilder<'_> {
    pub fn subject(self, sub: impl Into<String>) -> Self {
        self.claim("sub", sub.into())
    }

    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        self.claim("client_id", client_id.into())
    }

    /// `scope`, space-separated.
    pub fn scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let s = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.claim("scope", s)
    }

    /// `exp` = now + `ttl`.
    pub fn expires_in(self, ttl: Duration) -> Self {
        self.claim("exp", now_secs() + ttl.as_secs())
    }

    /// Any claim (overrides).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Signs with `key` instead of the issuer's current key.
    pub fn key(mut self, key: DevKey) -> Self {
        self.key = Some(key);
        self
    }

    pub fn claims(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    pub fn sign(self) -> String {
        let key = self.key.unwrap_or_else(|| self.issuer.signing_key());
        key.sign(&Value::Object(self.claims))
    }
}
