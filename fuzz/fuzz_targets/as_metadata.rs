//! Authorization server metadata (RFC 8414 / OIDC Discovery): the document parser,
//! validation, issuer comparison, candidate URLs for an issuer, and the https rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::config::PkceMetadataPolicy;
use mcp_oauth::discovery::as_metadata::{self, AuthServerMetadata};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<AuthServerMetadata>(data) {
        for pkce in [
            PkceMetadataPolicy::Require,
            PkceMetadataPolicy::AllowMissing,
        ] {
            if as_metadata::validate(
                &m,
                "https://as.example.com/.well-known/oauth-authorization-server",
                pkce,
            )
            .is_ok()
            {
                // A usable document has the endpoints the flow needs, over https or loopback.
                for e in [
                    m.authorization_endpoint.as_deref(),
                    m.token_endpoint.as_deref(),
                ] {
                    let e = e.expect("validated metadata has the endpoint");
                    assert!(as_metadata::require_https("endpoint", e).is_ok(), "{e}");
                }
            }
        }
        assert!(as_metadata::issuer_matches(&m.issuer, &m.issuer));
        let _ = as_metadata::issuer_matches(&m.issuer, "https://as.example.com");
        let _ = m.token_auth_methods();
        let text = serde_json::to_string(&m).unwrap();
        let back: AuthServerMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
    let s = String::from_utf8_lossy(data);
    if let Ok(cands) = as_metadata::candidates(&s) {
        assert!(cands.len() == 2 || cands.len() == 3);
        for (_, u) in cands {
            assert!(url::Url::parse(&u).is_ok(), "{u}");
        }
    }
    let _ = as_metadata::require_https("x", &s);
    let _ = as_metadata::issuer_matches(&s, "https://as.example.com/");
});
