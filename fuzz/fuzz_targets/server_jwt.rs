//! The resource server's JWT access token validation (mcp-oauth-server), against a fixed
//! JWK set (installed, never fetched):
//!
//! - mode 0: the input is the token;
//! - mode 1: the input is a claims object, signed with the set's key, so that the claim
//!   checks (iss, aud, exp, nbf, cnf, scope) are reached;
//! - mode 2: the input is a JOSE header, used with valid claims and a valid signature.
//!
//! Never panics; a token is accepted only with the right issuer and audience.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth_server::dev::DevKey;
use mcp_oauth_server::jsonwebtoken::{Algorithm, Header};
use mcp_oauth_server::{JwtValidator, ProtectedResource, TokenValidator};
use serde_json::{Value, json};
use std::sync::OnceLock;

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://as.example.com";

struct Fixture {
    rt: tokio::runtime::Runtime,
    validator: JwtValidator,
    key: DevKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = DevKey::generate(Algorithm::ES256, "k1");
        let other = DevKey::generate(Algorithm::EdDSA, "k2");
        let resource = ProtectedResource::builder(RESOURCE)
            .authorization_server(ISSUER)
            .build()
            .unwrap();
        // Never fetched: the keys are installed, the URL is a closed loopback port, and the
        // refetch limits are far away.
        let validator = JwtValidator::builder(&resource)
            .jwks_uri("http://127.0.0.1:9/jwks")
            .jwks_max_age(std::time::Duration::from_secs(1 << 30))
            .kid_miss_cooldown(std::time::Duration::from_secs(1 << 30))
            .build()
            .unwrap();
        let jwks = json!({"keys": [key.jwk(), other.jwk()]});
        assert_eq!(
            validator.install_jwks_for_tests(jwks.to_string().as_bytes()),
            2
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture { rt, validator, key }
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            f.key.sign(&Value::Object(claims))
        }
        _ => {
            let Ok(header) = serde_json::from_slice::<Header>(rest) else {
                return;
            };
            let claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "u", "exp": now() + 600, "scope": "a b"});
            if header.alg != Algorithm::ES256 {
                return; // the key signs ES256 only
            }
            f.key.sign_with_header(&header, &claims)
        }
    };
    let result = f.rt.block_on(f.validator.validate(&token));
    if let Ok(claims) = result {
        assert_eq!(
            claims.issuer(),
            Some(ISSUER),
            "accepted a token of another issuer"
        );
        assert!(
            claims.audience().iter().any(|a| a == RESOURCE),
            "accepted a token for another audience"
        );
    }
});
