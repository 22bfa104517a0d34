//! DPoP (RFC 9449): a per-credential P-256 key pair and the proofs signed with it, for
//! the token endpoint (`htm`, `htu`, `iat`, `jti`, and the server's `nonce`) and for
//! every resource request (plus `ath`, the hash of the access token).
//!
//! Keys are generated with aws-lc-rs (the crypto stack rustls already brings) and proofs
//! signed with `jsonwebtoken`; only the JWK export is done here, because neither crate
//! turns a generated key into its public JWK.

use crate::error::{Error, Result, Step};
use crate::secret::DpopKeyMaterial;
use crate::util::{now_secs, random_token};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The one algorithm we sign DPoP proofs with.
pub const DPOP_ALG: &str = "ES256";

/// A DPoP key pair.
#[derive(Clone)]
pub struct DpopKey {
    pkcs8: Vec<u8>,
    jwk: Jwk,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopKey([redacted])")
    }
}

fn key_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::config_caused(format!("DPoP key: {e}"), e)
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

impl DpopKey {
    /// A fresh P-256 key pair.
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(key_error)?;
        Self::from_pkcs8(doc.as_ref().to_vec())
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(key_error)?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::config("DPoP key: unexpected public key encoding"));
        }
        let jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                y: URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        };
        Ok(Self { pkcs8, jwk })
    }

    /// The key as stored with its credential.
    pub fn to_material(&self) -> DpopKeyMaterial {
        DpopKeyMaterial::new(URL_SAFE_NO_PAD.encode(&self.pkcs8))
    }

    /// The key stored with a credential (the inverse of [`DpopKey::to_material`]); an
    /// error when the stored value is not a base64url PKCS#8 P-256 key.
    pub fn from_material(m: &DpopKeyMaterial) -> Result<Self> {
        let der = URL_SAFE_NO_PAD.decode(m.expose()).map_err(|e| {
            Error::config_caused(format!("DPoP key: stored key is not base64url: {e}"), e)
        })?;
        Self::from_pkcs8(der)
    }

    /// The public key as a JWK (what goes in the proof header).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// RFC 7638 thumbprint of the public key (`cnf.jkt` of bound tokens).
    pub fn thumbprint(&self) -> String {
        let AlgorithmParameters::EllipticCurve(ec) = &self.jwk.algorithm else {
            unreachable!("DPoP keys are EC keys")
        };
        // Required members in lexicographic order, no whitespace (RFC 7638 §3).
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            ec.x, ec.y
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for one HTTP request. `access_token` is given for resource requests
    /// (`ath`); `nonce` when a server asked for one.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String> {
        self.proof_at(method, url, access_token, nonce, now_secs())
    }

    pub(crate) fn proof_at(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: u64,
    ) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let claims = ProofClaims {
            jti: random_token(16),
            htm: method,
            htu: htu(url)?,
            iat,
            ath: access_token.map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes()))),
            nonce,
        };
        let key = EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| Error::Signing {
            step: Step::TokenExchange,
            url: url.to_string(),
            what: "a DPoP proof",
            source: Box::new(e),
        })
    }
}

/// `htu`: the request URL without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &str) -> Result<String> {
    let mut u = url::Url::parse(url)
        .map_err(|e| Error::config_caused(format!("DPoP htu {url:?} is not a URL: {e}"), e))?;
    u.set_query(None);
    u.set_fragment(None);
    Ok(u.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    use std::collections::HashSet;

    fn verify(proof: &str) -> serde_json::Value {
        let header = decode_header(proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk = header.jwk.expect("jwk in header");
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.required_spec_claims = HashSet::new();
        v.validate_exp = false;
        decode::<serde_json::Value>(proof, &key, &v).unwrap().claims
    }

    #[test]
    fn token_endpoint_proof_verifies_with_the_public_key() {
        let k = DpopKey::generate().unwrap();
        let p = k
            .proof("POST", "https://as.example/token?x=1#f", None, None)
            .unwrap();
        let c = verify(&p);
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], "https://as.example/token");
        assert!(c.get("ath").is_none() && c.get("nonce").is_none());
        assert!((c["iat"].as_u64().unwrap() as i64 - now_secs() as i64).abs() <= 1);
    }

    #[test]
    fn resource_proof_carries_ath_and_nonce_and_fresh_jti() {
        let k = DpopKey::generate().unwrap();
        let a = verify(
            &k.proof("POST", "http://localhost:1/mcp", Some("tok"), Some("n-1"))
                .unwrap(),
        );
        let b = verify(
            &k.proof("POST", "http://localhost:1/mcp", Some("tok"), Some("n-1"))
                .unwrap(),
        );
        // ath = base64url(SHA-256("tok"))
        assert_eq!(a["ath"], URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")));
        assert_eq!(a["nonce"], "n-1");
        assert_ne!(a["jti"], b["jti"]);
    }

    #[test]
    fn iat_is_what_the_clock_says() {
        // A skewed clock shows up as iat, verbatim; servers allow a window (the suite ±300 s).
        let k = DpopKey::generate().unwrap();
        let c = verify(
            &k.proof_at("GET", "https://r/x", None, None, 1_000_000)
                .unwrap(),
        );
        assert_eq!(c["iat"], 1_000_000);
    }

    #[test]
    fn material_round_trip_keeps_the_key() {
        let k = DpopKey::generate().unwrap();
        let back = DpopKey::from_material(&k.to_material()).unwrap();
        assert_eq!(k.thumbprint(), back.thumbprint());
        assert_eq!(k.thumbprint().len(), 43);
        assert!(!format!("{k:?}").contains(&k.to_material().expose()[..10]));
    }
}
