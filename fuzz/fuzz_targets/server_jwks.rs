//! The resource server's reading of a JWK set (mcp-oauth-server): any JSON as the
//! fetched set, then a token validated against it. Never panics; symmetric (`oct`) keys
//! and keys for other uses are never used, so a token "signed" with HS256 and a key from
//! the set is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth_server::{JwtValidator, ProtectedResource, TokenValidator};
use std::sync::OnceLock;

struct Fixture {
    rt: tokio::runtime::Runtime,
    validator: JwtValidator,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let resource = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://as.example.com")
            .build()
            .unwrap();
        let validator = JwtValidator::builder(&resource)
            .jwks_uri("http://127.0.0.1:9/jwks")
            .jwks_max_age(std::time::Duration::from_secs(1 << 30))
            .kid_miss_cooldown(std::time::Duration::from_secs(1 << 30))
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture { rt, validator }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // The set, then (after a 0xFF byte, which JSON text never contains) the token.
    let (jwks, token) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    f.validator.install_jwks_for_tests(jwks);
    let token = String::from_utf8_lossy(token);
    let r = f.rt.block_on(f.validator.validate(&token));
    if r.is_ok() {
        // Only possible with a real signature by a key of the set: the fuzzer cannot
        // produce one, except with a symmetric key, which must never be used.
        let header = mcp_oauth_server::jsonwebtoken::decode_header(token.as_ref()).unwrap();
        assert!(!matches!(
            header.alg,
            mcp_oauth_server::jsonwebtoken::Algorithm::HS256
                | mcp_oauth_server::jsonwebtoken::Algorithm::HS384
                | mcp_oauth_server::jsonwebtoken::Algorithm::HS512
        ));
    }
});
