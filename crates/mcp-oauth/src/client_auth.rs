//! Client authentication at the authorization server (RFC 6749 §2.3, OAuth 2.1 §2.4,
//! RFC 7523 §2.2): one implementation for every endpoint where the client authenticates.
//! The token endpoint sets the rules; device authorization (RFC 8628 §3.1) and
//! revocation (RFC 7009 §2.1) follow them, so a client authenticates there exactly as it
//! does for a token: [`authenticate`] is the only place that adds credentials to a
//! request, and `post_form` the only one that sends such a request. A new method is a
//! new [`ClientAuthMethod`] variant: the compiler then points at the `match` in
//! [`authenticate`], the one place that applies it.

use crate::assertion::{self, CLIENT_ASSERTION_TYPE, SigningKey};
use crate::credential::ClientRegistration;
use crate::error::{Error, Result, Rule, Step};
use crate::remedy::Remedy;
use crate::secret::ClientSecret;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// How a client authenticates: its registered `token_endpoint_auth_method` (RFC 7591
/// §2). Parsed once, where the method enters (configuration, registration response,
/// stored client); stored and sent as the registered string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMethod {
    /// `none`: a public client; its `client_id` goes in the body (native apps, RFC 8252
    /// §8.4).
    None,
    /// `client_secret_basic`: the id and secret in an `Authorization: Basic` header.
    ClientSecretBasic,
    /// `client_secret_post`: the id and secret in the body.
    ClientSecretPost,
    /// `private_key_jwt`: a JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// Every method this client implements.
    pub const ALL: [ClientAuthMethod; 4] = [
        ClientAuthMethod::None,
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
        ClientAuthMethod::PrivateKeyJwt,
    ];

    /// Whether an authorization server's list of methods
    /// (`token_endpoint_auth_methods_supported`, as published) names this one.
    pub fn offered_in(self, supported: &[String]) -> bool {
        supported.iter().any(|s| s == self.as_str())
    }

    /// The registered name (RFC 7591 §2, RFC 7523 §9).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::None => "none",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuthMethod {
    type Err = UnsupportedAuthMethod;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnsupportedAuthMethod {
                method: s.to_string(),
            })
    }
}

impl Serialize for ClientAuthMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ClientAuthMethod {
    /// Through [`FromStr`], so that an unknown method is named in the error (serde's own
    /// "unknown variant" message is hidden by the store, which cannot tell it from a
    /// message quoting a secret).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A `token_endpoint_auth_method` this client does not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedAuthMethod {
    /// The method, as it was given.
    pub method: String,
}

impl fmt::Display for UnsupportedAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Unquoted (a quote would make the store hide the message) but escaped and
        // bounded: the value may come from a server.
        let shown: String = self.method.chars().take(64).collect();
        write!(
            f,
            "token_endpoint_auth_method {} is not supported by mcp-oauth (supported: ",
            shown.escape_debug()
        )?;
        let names: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        write!(f, "{})", names.join(", "))
    }
}

impl std::error::Error for UnsupportedAuthMethod {}

/// What a client presents at the authorization server: its registration, the key that
/// signs its assertions when it uses `private_key_jwt`, and the secret of a pre-registered
/// client (both live in the configuration and are read for each request; the store
/// never holds them, only a secret the authorization server issued at registration).
#[derive(Debug, Clone)]
pub struct ClientCredentials<'a> {
    /// The client's registration: its id, issuer and authentication method.
    pub registration: &'a ClientRegistration,
    /// The key that signs `private_key_jwt` assertions, if the client has one.
    pub signing_key: Option<&'a SigningKey>,
    /// The configured secret, read from its source for this request; it takes the place
    /// of the registration's.
    pub configured_secret: Option<ClientSecret>,
}

impl<'a> ClientCredentials<'a> {
    /// A client without a signing key: enough for every method but `private_key_jwt`.
    pub fn new(registration: &'a ClientRegistration) -> Self {
        Self {
            registration,
            signing_key: None,
            configured_secret: None,
        }
    }

    /// With the key that signs the client's assertions.
    pub fn with_signing_key(self, signing_key: Option<&'a SigningKey>) -> Self {
        Self {
            signing_key,
            ..self
        }
    }

    /// With the configured secret of a pre-registered client.
    pub fn with_secret(self, configured_secret: Option<ClientSecret>) -> Self {
        Self {
            configured_secret,
            ..self
        }
    }

    /// The secret this client authenticates with: the configured one, else the one the
    /// authorization server issued at registration.
    pub fn secret(&self) -> Option<&ClientSecret> {
        self.configured_secret
            .as_ref()
            .or(self.registration.client_secret.as_ref())
    }
}

/// A request body with the client's authentication in it.
#[derive(Debug)]
pub struct AuthenticatedForm {
    /// The form fields, with the client's credentials added where the method puts them.
    pub form: Vec<(String, String)>,
    /// The `Authorization: Basic …` value, for `client_secret_basic`.
    pub basic: Option<String>,
}

/// Adds `client`'s authentication to `form`, the body of a request to `url` (an endpoint
/// of `step`). For `private_key_jwt`, a new assertion (new `jti`, RFC 7523 §3) addressed
/// to the client's issuer is signed for every request.
pub fn authenticate(
    step: Step,
    url: &str,
    client: &ClientCredentials<'_>,
    mut form: Vec<(String, String)>,
) -> Result<AuthenticatedForm> {
    let reg = client.registration;
    let secret = || {
        client.secret().ok_or_else(|| {
            Error::broke(
                step,
                url,
                Rule::MissingCredential(format!(
                    "client {} uses {} but has no client secret; {}",
                    reg.client_id,
                    reg.token_endpoint_auth_method,
                    Remedy::ConfigureClientSecret
                )),
            )
        })
    };
    let mut basic = None;
    match reg.token_endpoint_auth_method {
        ClientAuthMethod::None => form.push(("client_id".into(), reg.client_id.clone())),
        ClientAuthMethod::ClientSecretBasic => {
            basic = Some(basic_auth_value(&reg.client_id, secret()?.expose()));
        }
        ClientAuthMethod::ClientSecretPost => {
            let s = secret()?.expose().to_string();
            form.push(("client_id".into(), reg.client_id.clone()));
            form.push(("client_secret".into(), s));
        }
        ClientAuthMethod::PrivateKeyJwt => {
            let assertion = client_assertion(step, url, client)?;
            form.push(("client_id".into(), reg.client_id.clone()));
            form.push(("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()));
            form.push(("client_assertion".into(), assertion));
        }
    }
    Ok(AuthenticatedForm { form, basic })
}

/// A signed `private_key_jwt` assertion for one request, addressed to the issuer the
/// client belongs to.
fn client_assertion(step: Step, url: &str, client: &ClientCredentials<'_>) -> Result<String> {
    let reg = client.registration;
    let key = client.signing_key.ok_or_else(|| {
        Error::broke(
            step,
            url,
            Rule::MissingCredential(format!(
                "client {} uses private_key_jwt but {}",
                reg.client_id,
                Remedy::ConfigurePrivateKey
            )),
        )
    })?;
    if reg.issuer.is_empty() {
        return Err(Error::broke(
            step,
            url,
            Rule::MissingCredential(format!(
                "client {} uses private_key_jwt but its authorization server is not known, so \
                 there is no audience for the assertion",
                reg.client_id
            )),
        ));
    }
    assertion::client_assertion(key, &reg.client_id, &reg.issuer)
}

/// Percent-encoding for HTTP Basic client credentials: RFC 6749 §2.3.1 says the id and
/// secret are `application/x-www-form-urlencoded` before base64.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `Authorization: Basic` value for a client.
pub fn basic_auth_value(client_id: &str, secret: &str) -> String {
    let raw = format!("{}:{}", form_encode(client_id), form_encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// POSTs an authenticated form (with a `DPoP` proof when given) to `url` and reads the
/// response.
pub(crate) async fn post_form(
    http: &crate::http::HttpClient,
    step: Step,
    url: &str,
    request: &AuthenticatedForm,
    dpop_proof: Option<String>,
) -> Result<crate::http::Fetched> {
    let mut req = http
        .reqwest()
        .post(url)
        .header(http::header::ACCEPT, "application/json")
        .form(&request.form);
    if let Some(b) = &request.basic {
        req = req.header(http::header::AUTHORIZATION, b);
    }
    if let Some(p) = dpop_proof {
        req = req.header("DPoP", p);
    }
    http.send(step, url, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_encodes_before_base64() {
        // RFC 6749 §2.3.1: form-urlencode, then base64.
        let v = basic_auth_value("id:with space", "s&c/t");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "id%3Awith+space:s%26c%2Ft"
        );
    }

    #[test]
    fn methods_keep_their_registered_names() {
        for m in ClientAuthMethod::ALL {
            assert_eq!(m.as_str().parse::<ClientAuthMethod>(), Ok(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()), "stored as before");
            assert_eq!(serde_json::from_str::<ClientAuthMethod>(&json).unwrap(), m);
        }
        let e = "tls_client_auth".parse::<ClientAuthMethod>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "token_endpoint_auth_method tls_client_auth is not supported by mcp-oauth \
             (supported: none, client_secret_basic, client_secret_post, private_key_jwt)"
        );
        let e = serde_json::from_str::<ClientAuthMethod>("\"client_secret_jwt\"").unwrap_err();
        assert!(
            e.to_string().contains("client_secret_jwt is not supported"),
            "{e}"
        );
    }
}
