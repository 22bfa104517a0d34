use super::*;

#[test]
fn metadata_url_order() {
    assert_eq!(
        metadata_urls("https://as.example"),
        [
            "https://as.example/.well-known/oauth-authorization-server",
            "https://as.example/.well-known/openid-configuration"
        ]
    );
    assert_eq!(
        metadata_urls("https://as.example/tenant1/"),
        [
            "https://as.example/.well-known/oauth-authorization-server/tenant1",
            "https://as.example/.well-known/openid-configuration/tenant1",
            "https://as.example/tenant1/.well-known/openid-configuration"
        ]
    );
}

#[test]
fn jwk_filtering() {
    let parse = |v: Value| VerifyKey::from_jwk(&serde_json::from_value::<Jwk>(v).unwrap());
    let ec = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "e1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    });
    let k = parse(ec.clone()).expect("EC signing key");
    assert!(k.fits(Some("e1"), Algorithm::ES256));
    assert!(k.fits(None, Algorithm::ES256));
    assert!(!k.fits(Some("other"), Algorithm::ES256));
    assert!(!k.fits(Some("e1"), Algorithm::ES384), "curve must match");
    assert!(!k.fits(Some("e1"), Algorithm::RS256), "family must match");

    let mut with_alg = ec.clone();
    with_alg["alg"] = "ES256".into();
    assert!(
        parse(with_alg.clone())
            .unwrap()
            .fits(None, Algorithm::ES256)
    );
    with_alg["alg"] = "RS256".into();
    assert!(parse(with_alg).is_none(), "alg of another family");

    let mut enc = ec.clone();
    enc["use"] = "enc".into();
    assert!(parse(enc).is_none());
    let mut ops = ec.clone();
    ops["key_ops"] = serde_json::json!(["encrypt"]);
    assert!(parse(ops).is_none());
    let mut unknown_alg = ec;
    unknown_alg["alg"] = "ECDH-ES".into();
    assert!(parse(unknown_alg).is_none());

    // Symmetric keys are never taken from a JWKS.
    assert!(parse(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})).is_none());
    assert!(parse(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"})).is_none());
}

#[test]
fn builder_refuses_hmac_and_insecure_urls() {
    let r = ProtectedResource::builder("https://h/mcp")
        .authorization_server("https://as")
        .build()
        .unwrap();
    let e = JwtValidator::builder(&r)
        .algorithms([Algorithm::RS256, Algorithm::HS256])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("HMAC"), "{e}");
    assert!(
        JwtValidator::builder(&r)
            .jwks_uri("http://as.example/jwks")
            .build()
            .is_err()
    );
    assert!(JwtValidator::builder(&r).algorithms([]).build().is_err());
    let v = JwtValidator::builder(&r).build().unwrap();
    assert_eq!(v.issuer(), "https://as");
    let dbg = format!("{v:?}");
    assert!(
        dbg.contains("Discover") && dbg.contains("https://h/mcp"),
        "{dbg}"
    );

    let two = ProtectedResource::builder("https://h/mcp")
        .authorization_servers(["https://a", "https://b"])
        .build()
        .unwrap();
    assert!(JwtValidator::builder(&two).build().is_err());
    assert!(
        JwtValidator::builder(&two)
            .issuer("https://b")
            .build()
            .is_ok()
    );
}
