//! Newtypes for secrets. Their `Debug` never shows the value, so a secret that ends up
//! in a `tracing` field, an error or a `{:?}` stays hidden. Reading one is explicit:
//! [`Secret::expose`].

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself. Call sites are the places that put it on the wire.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An OAuth access token (RFC 6749 §1.4).
    AccessToken
);
secret_type!(
    /// An OAuth refresh token (RFC 6749 §1.5).
    RefreshToken
);
secret_type!(
    /// A client secret issued at registration or configured by the user.
    ClientSecret
);
secret_type!(
    /// An authorization code from the redirect (RFC 6749 §4.1.2).
    AuthorizationCode
);
secret_type!(
    /// A PKCE code verifier (RFC 7636 §4.1).
    PkceVerifier
);
secret_type!(
    /// A device verification code (RFC 8628 §3.2); the user never sees it.
    DeviceCode
);

secret_type!(
    /// A PEM-encoded private key (PKCS#8), for `private_key_jwt` client authentication.
    PrivateKeyPem
);
secret_type!(
    /// A JWT handed to us to present: a workload identity token (RFC 7523 assertion) or
    /// an enterprise ID token (the subject of an RFC 8693 exchange).
    Assertion
);
secret_type!(
    /// A DPoP private key (PKCS#8 DER, base64url), kept with the credential it is bound to.
    DpopKeyMaterial
);

/// Shorthand used by the `Debug` impls of structs that hold optional secrets.
pub fn redacted<T>(v: &Option<T>) -> &'static str {
    if v.is_some() {
        "Some([redacted])"
    } else {
        "None"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("very-secret-token");
        let s = format!("{t:?} {:?}", Some(RefreshToken::new("rt-value")));
        assert!(!s.contains("very-secret-token"), "{s}");
        assert!(!s.contains("rt-value"), "{s}");
        assert!(s.contains("AccessToken([redacted])"), "{s}");
    }

    #[test]
    fn serde_is_transparent() {
        let t = ClientSecret::new("s3");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"s3\"");
        let back: ClientSecret = serde_json::from_str("\"s3\"").unwrap();
        assert_eq!(back.expose(), "s3");
    }
}
