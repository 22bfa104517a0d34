//! Property tests of JWT access token validation (issue #7), next to the fuzz targets
//! `server_jwt` and `server_jwks` in `fuzz/`: against a JWK set installed without any
//! network, any string as a token never panics and is never accepted; a token signed
//! with the set's key is accepted exactly when its claims are right; any JSON as the JWK
//! set never panics, and symmetric keys in it are never used.

use mcp_oauth_server::dev::DevKey;
use mcp_oauth_server::jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_oauth_server::{JwtValidator, ProtectedResource, TokenError, TokenValidator};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;

const RESOURCE: &str = "https://mcp.example.com/mcp";
const ISSUER: &str = "https://as.example.com";

struct Fixture {
    rt: tokio::runtime::Runtime,
    validator: JwtValidator,
    key: DevKey,
    /// For installing arbitrary sets (each install replaces the keys).
    scratch: JwtValidator,
}

fn validator() -> JwtValidator {
    let resource = ProtectedResource::builder(RESOURCE)
        .authorization_server(ISSUER)
        .build()
        .unwrap();
    JwtValidator::builder(&resource)
        // Never fetched: keys are installed; a closed loopback port otherwise.
        .jwks_uri("http://127.0.0.1:9/jwks")
        .jwks_max_age(Duration::from_secs(1 << 30))
        .kid_miss_cooldown(Duration::from_secs(1 << 30))
        .build()
        .unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = DevKey::generate(Algorithm::ES256, "k1");
        let validator = validator();
        let jwks = json!({"keys": [key.jwk()]});
        assert_eq!(
            validator.install_jwks_for_tests(jwks.to_string().as_bytes()),
            1
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            rt,
            validator,
            key,
            scratch: self::validator(),
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_tokens_never_panic_and_are_refused(s in ".{0,200}", parts in prop::collection::vec("[A-Za-z0-9_-]{0,40}", 3)) {
        let f = fixture();
        prop_assert!(f.rt.block_on(f.validator.validate(&s)).is_err());
        let jwt_shaped = parts.join(".");
        prop_assert!(f.rt.block_on(f.validator.validate(&jwt_shaped)).is_err());
    }

    #[test]
    fn signed_tokens_are_accepted_exactly_when_the_claims_are_right(
        iss_ok in any::<bool>(),
        aud in prop::sample::select(vec!["right", "wrong", "list", "missing"]),
        exp_offset in prop::sample::select(vec![-3600i64, -10, 600, 0]),
        with_exp in any::<bool>(),
        nbf_offset in prop::option::of(prop::sample::select(vec![-60i64, 3600])),
        bound in any::<bool>(),
        scope in "[a-z: ]{0,20}",
    ) {
        let f = fixture();
        let mut claims = json!({"sub": "u", "scope": scope});
        claims["iss"] = json!(if iss_ok { ISSUER } else { "https://evil.example.com" });
        match aud {
            "right" => claims["aud"] = json!(RESOURCE),
            "wrong" => claims["aud"] = json!("https://other.example.com/mcp"),
            "list" => claims["aud"] = json!(["https://other.example.com", RESOURCE]),
            _ => {}
        }
        if with_exp { claims["exp"] = json!(now() + exp_offset); }
        if let Some(n) = nbf_offset { claims["nbf"] = json!(now() + n); }
        if bound { claims["cnf"] = json!({"jkt": "abc"}); }
        let token = f.key.sign(&claims);
        let r = f.rt.block_on(f.validator.validate(&token));
        // exp within the leeway (30 s) of now still passes.
        let exp_ok = with_exp && exp_offset > -30;
        let nbf_ok = nbf_offset.is_none_or(|n| n < 30);
        let want = iss_ok && matches!(aud, "right" | "list") && exp_ok && nbf_ok && !bound;
        prop_assert_eq!(r.is_ok(), want, "{:?} for {}", r, claims);
        if let Ok(c) = r {
            prop_assert_eq!(c.issuer(), Some(ISSUER));
        }
    }

    #[test]
    fn arbitrary_jwks_never_panic(v in jwks_like(), token in ".{0,60}") {
        let f = fixture();
        f.scratch.install_jwks_for_tests(v.to_string().as_bytes());
        prop_assert!(f.rt.block_on(f.scratch.validate(&token)).is_err());
    }

    #[test]
    fn symmetric_keys_are_never_used(secret in "[A-Za-z0-9]{16,40}") {
        let f = fixture();
        let v = &f.scratch;
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_bytes());
        let jwks = json!({"keys": [{"kty": "oct", "k": k, "kid": "h1", "alg": "HS256"}]});
        prop_assert_eq!(v.install_jwks_for_tests(jwks.to_string().as_bytes()), 0);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("h1".into());
        let claims = json!({"iss": ISSUER, "aud": RESOURCE, "exp": now() + 600, "sub": "u"});
        let token = mcp_oauth_server::jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
        let r = f.rt.block_on(v.validate(&token));
        prop_assert!(matches!(r, Err(TokenError::DisallowedAlgorithm)), "{:?}", r);
    }
}

/// JSON that looks like a JWK set often enough to reach the key parsing.
fn jwks_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just(json!("RSA")),
        Just(json!("EC")),
        Just(json!("OKP")),
        Just(json!("oct")),
        Just(json!("P-256")),
        Just(json!("Ed25519")),
        Just(json!("sig")),
        Just(json!("enc")),
        Just(json!(["verify"])),
        "[A-Za-z0-9_-]{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
    ];
    let key = prop::collection::btree_map(
        prop::sample::select(vec![
            "kty", "crv", "x", "y", "n", "e", "k", "kid", "alg", "use", "key_ops",
        ]),
        field,
        0..8,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    prop_oneof![
        prop::collection::vec(key, 0..4).prop_map(|keys| json!({ "keys": keys })),
        Just(json!({"keys": "nope"})),
        Just(json!([])),
        Just(Value::Null),
    ]
}
