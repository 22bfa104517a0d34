//! JWT client assertions (RFC 7523 §2.2, `private_key_jwt`): a short-lived JWT signed
//! with the client's private key, with `iss` = `sub` = client id and `aud` = the
//! authorization server's issuer.

use crate::error::{Error, Result, Step};
use crate::secret::PrivateKeyPem;
use crate::util::{now_secs, random_token};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The assertion type URN (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A private key for signing client assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The private key, PEM-encoded; its type must fit `alg` (EC for `ES*`, Ed25519 for
    /// `EdDSA`, RSA otherwise).
    pub pem: PrivateKeyPem,
    /// `ES256`, `ES384`, `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512` or `EdDSA`.
    pub alg: String,
}

impl SigningKey {
    fn algorithm(&self) -> Result<Algorithm> {
        let alg: Algorithm = self
            .alg
            .parse()
            .map_err(|_| Error::config(format!("signing algorithm {:?} is not known", self.alg)))?;
        match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(Error::config(format!(
                "{:?} is a shared-secret algorithm; private_key_jwt needs an asymmetric one (ES256, RS256, ...)",
                self.alg
            ))),
            a => Ok(a),
        }
    }

    fn encoding_key(&self, alg: Algorithm) -> Result<EncodingKey> {
        let pem = self.pem.expose().as_bytes();
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        };
        key.map_err(|e| {
            Error::config_caused(
                format!("the private key is not a valid PEM {} key: {e}", self.alg),
                e,
            )
        })
    }

    /// Checks that the key parses for its algorithm (at configuration time, so a bad key
    /// is reported before any network traffic).
    pub fn validate(&self) -> Result<()> {
        self.encoding_key(self.algorithm()?).map(|_| ())
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Signs a client assertion for `client_id` addressed to `audience` (the issuer).
pub fn client_assertion(key: &SigningKey, client_id: &str, audience: &str) -> Result<String> {
    let alg = key.algorithm()?;
    let now = now_secs();
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        iat: now,
        exp: now + 300,
        jti: random_token(16),
    };
    let mut header = Header::new(alg);
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, &claims, &key.encoding_key(alg)?).map_err(|e| Error::Signing {
        step: Step::TokenExchange,
        url: audience.to_string(),
        what: "the client assertion",
        source: Box::new(e),
    })
}

/// A fresh ES256 signing key and its public half, for the crate's tests.
#[cfg(test)]
pub(crate) fn test_key() -> (SigningKey, jsonwebtoken::DecodingKey) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let key = SigningKey {
        pem: PrivateKeyPem::new(format!(
            "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
        )),
        alg: "ES256".into(),
    };
    let point = pair.public_key().as_ref();
    let u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let public = jsonwebtoken::DecodingKey::from_ec_components(
        &u.encode(&point[1..33]),
        &u.encode(&point[33..]),
    )
    .unwrap();
    (key, public)
}

/// The claims of a client assertion made with [`test_key`], after checking its
/// signature, its `aud` (`audience`) and that `iss` = `sub`.
#[cfg(test)]
pub(crate) fn verify_for_tests(
    jwt: &str,
    public: &jsonwebtoken::DecodingKey,
    audience: &str,
) -> serde_json::Value {
    let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
    v.set_audience(&[audience]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, public, &v)
        .unwrap_or_else(|e| panic!("the assertion does not verify for aud {audience}: {e}"))
        .claims;
    assert_eq!(claims["iss"], claims["sub"]);
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_audience(&["https://as.example"]);
        v.set_issuer(&["client-1"]);
        v
    }

    #[test]
    fn es256_assertion_verifies_with_the_public_key() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let key = SigningKey {
            pem: PrivateKeyPem::new(pem("PRIVATE KEY", doc.as_ref())),
            alg: "ES256".into(),
        };
        key.validate().unwrap();
        let jwt = client_assertion(&key, "client-1", "https://as.example").unwrap();
        let point = pair.public_key().as_ref();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let dk =
            DecodingKey::from_ec_components(&b64.encode(&point[1..33]), &b64.encode(&point[33..]))
                .unwrap();
        let claims = decode::<serde_json::Value>(&jwt, &dk, &validation(Algorithm::ES256))
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "client-1");
        assert!(claims["exp"].as_u64().unwrap() <= now_secs() + 300);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    }

    #[test]
    fn rs256_assertion_verifies_with_the_public_key() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let key = SigningKey {
            pem: PrivateKeyPem::new(pem("PRIVATE KEY", der.as_ref())),
            alg: "RS256".into(),
        };
        let jwt = client_assertion(&key, "client-1", "https://as.example").unwrap();
        let dk = DecodingKey::from_rsa_der(pair.public_key().as_ref());
        let claims = decode::<serde_json::Value>(&jwt, &dk, &validation(Algorithm::RS256))
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], "client-1");
    }

    #[test]
    fn bad_keys_and_algorithms_are_config_errors() {
        let bad = SigningKey {
            pem: PrivateKeyPem::new(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            alg: "ES256".into(),
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("not a valid PEM")
        );
        let hs = SigningKey {
            alg: "HS256".into(),
            ..bad.clone()
        };
        assert!(
            hs.validate()
                .unwrap_err()
                .to_string()
                .contains("asymmetric")
        );
        let unknown = SigningKey {
            alg: "XX1".into(),
            ..bad
        };
        assert!(unknown.validate().is_err());
    }
}
