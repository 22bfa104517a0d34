//! The token endpoint: client authentication (RFC 6749 §2.3, OAuth 2.1 §2.4), the
//! authorization code exchange and refresh (RFC 6749 §4.1.3, §6), and response parsing
//! that is strict about what matters (an access token, the error body) and tolerant of
//! what real servers get wrong (`token_type` casing, `expires_in` as a string, an error
//! with HTTP 200).

use crate::client_auth::{self, AuthenticatedForm, ClientCredentials};
use crate::credential::TokenSet;
use crate::dpop::DpopKey;
use crate::error::{Error, OAuthErrorBody, Result, Step};
use crate::http::HttpClient;
use crate::secret::{AccessToken, Assertion, AuthorizationCode, PkceVerifier, RefreshToken};
use crate::util::now_secs;
use serde::Deserialize;

pub use crate::client_auth::basic_auth_value;

/// A grant to redeem at the token endpoint.
#[derive(Debug)]
pub enum Grant<'a> {
    /// The authorization code grant (RFC 6749 §4.1.3), with its PKCE verifier (RFC 7636).
    AuthorizationCode {
        /// The code received in the authorization redirect.
        code: &'a AuthorizationCode,
        /// The PKCE verifier whose challenge went with the authorization request.
        verifier: &'a PkceVerifier,
        /// The redirect URI of the authorization request, sent again (RFC 6749 §4.1.3).
        redirect_uri: &'a str,
    },
    /// The refresh token grant (RFC 6749 §6).
    RefreshToken {
        /// The refresh token to redeem.
        refresh_token: &'a RefreshToken,
        /// Scopes to ask for (Entra wants them repeated on refresh:
        /// [`crate::quirks::Behaviour::NeedsScopeOnRefresh`]); `None` keeps the grant's.
        scope: Option<&'a str>,
    },
    /// OAuth 2.1 §4.2 / the MCP `oauth-client-credentials` extension.
    ClientCredentials {
        /// Scopes to ask for; `None` leaves them to the server.
        scope: Option<&'a str>,
    },
    /// RFC 7523 §2.1 authorization grant: a workload identity token, or an ID-JAG.
    JwtBearer {
        /// The assertion to present.
        assertion: &'a Assertion,
        /// Scopes to ask for; `None` leaves them to the server.
        scope: Option<&'a str>,
    },
    /// RFC 8693 token exchange (at an enterprise IdP: ID token → ID-JAG).
    TokenExchange {
        /// The token to exchange (an ID token).
        subject_token: &'a Assertion,
        /// The type URN of `subject_token` (see [`grant_types`]).
        subject_token_type: &'a str,
        /// The type URN of the token wanted (see [`grant_types`]).
        requested_token_type: &'a str,
        /// The authorization server the token is wanted for.
        audience: &'a str,
        /// Scopes to ask for; `None` leaves them to the server.
        scope: Option<&'a str>,
    },
}

/// The grant type URNs used here.
pub mod grant_types {
    /// RFC 7523 JWT bearer grant type.
    pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    /// RFC 8693 token exchange grant type.
    pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    /// RFC 8693 token type of an OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// Token type of an Identity Assertion JWT Authorization Grant (ID-JAG).
    pub const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
}

/// DPoP for one token request: the key, and the latest nonce the server gave
/// (updated in place when the server supplies a new one).
#[derive(Debug)]
pub struct DpopContext<'a> {
    /// The key the DPoP proofs are signed with (RFC 9449).
    pub key: &'a DpopKey,
    /// The latest `DPoP-Nonce` the server gave, if any; replaced when it sends a new one.
    pub nonce: &'a std::sync::Mutex<Option<String>>,
}

/// A token request.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The token endpoint URL.
    pub token_endpoint: &'a str,
    /// The client, and its signing key for `private_key_jwt`.
    pub client: ClientCredentials<'a>,
    /// The grant to redeem.
    pub grant: Grant<'a>,
    /// RFC 8707 `resource`, sent verbatim.
    pub resource: Option<&'a str>,
    /// The scopes asked for, recorded in the result for later step-up unions.
    pub requested_scope: Option<&'a str>,
    /// Sender-constrain the token with DPoP.
    pub dpop: Option<DpopContext<'a>>,
}

#[derive(Deserialize)]
struct RawTokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_uri: Option<String>,
}

fn step_of(grant: &Grant<'_>) -> Step {
    match grant {
        Grant::RefreshToken { .. } => Step::Refresh,
        _ => Step::TokenExchange,
    }
}

/// Builds the form body and headers for the request (exposed for tests): the grant's
/// fields, then the client's authentication ([`client_auth::authenticate`]).
pub fn build_form(req: &TokenRequest<'_>) -> Result<AuthenticatedForm> {
    let step = step_of(&req.grant);
    let mut form: Vec<(String, String)> = Vec::new();
    match &req.grant {
        Grant::AuthorizationCode {
            code,
            verifier,
            redirect_uri,
        } => {
            form.push(("grant_type".into(), "authorization_code".into()));
            form.push(("code".into(), code.expose().into()));
            form.push(("redirect_uri".into(), (*redirect_uri).into()));
            form.push(("code_verifier".into(), verifier.expose().into()));
        }
        Grant::RefreshToken {
            refresh_token,
            scope,
        } => {
            form.push(("grant_type".into(), "refresh_token".into()));
            form.push(("refresh_token".into(), refresh_token.expose().into()));
            if let Some(s) = scope {
                form.push(("scope".into(), (*s).into()));
            }
        }
        Grant::ClientCredentials { scope } => {
            form.push(("grant_type".into(), "client_credentials".into()));
            if let Some(s) = scope {
                form.push(("scope".into(), (*s).into()));
            }
        }
        Grant::JwtBearer { assertion, scope } => {
            form.push(("grant_type".into(), grant_types::JWT_BEARER.into()));
            form.push(("assertion".into(), assertion.expose().into()));
            if let Some(s) = scope {
                form.push(("scope".into(), (*s).into()));
            }
        }
        Grant::TokenExchange {
            subject_token,
            subject_token_type,
            requested_token_type,
            audience,
            scope,
        } => {
            form.push(("grant_type".into(), grant_types::TOKEN_EXCHANGE.into()));
            form.push((
                "requested_token_type".into(),
                (*requested_token_type).into(),
            ));
            form.push(("subject_token".into(), subject_token.expose().into()));
            form.push(("subject_token_type".into(), (*subject_token_type).into()));
            form.push(("audience".into(), (*audience).into()));
            if let Some(s) = scope {
                form.push(("scope".into(), (*s).into()));
            }
        }
    }
    if let Some(r) = req.resource {
        form.push(("resource".into(), r.into()));
    }
    client_auth::authenticate(step, req.token_endpoint, &req.client, form)
}

/// Sends the request and parses the response into a [`TokenSet`]. With DPoP, a
/// `use_dpop_nonce` error is answered once with a new proof carrying the server's nonce
/// (RFC 9449 §8).
pub async fn request_tokens(http: &HttpClient, req: &TokenRequest<'_>) -> Result<TokenSet> {
    let step = step_of(&req.grant);
    let request = build_form(req)?;
    // What we send must not come back in an error (a debug page echoing the request).
    let sent = crate::redact::Sent::from_form(&request.form, request.basic.as_deref())
        .with(req.client.secret().map(|s| s.expose()));
    let mut nonce_retried = false;
    loop {
        // A new proof for each attempt, with the latest nonce (RFC 9449 §8).
        let proof = match &req.dpop {
            Some(d) => {
                let nonce = d.nonce.lock().ok().and_then(|n| n.clone());
                Some(
                    d.key
                        .proof("POST", req.token_endpoint, None, nonce.as_deref())?,
                )
            }
            None => None,
        };
        let fetched =
            client_auth::post_form(http, step, req.token_endpoint, &request, proof).await?;
        let server_nonce = fetched
            .headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let (Some(d), Some(n)) = (&req.dpop, &server_nonce)
            && let Ok(mut slot) = d.nonce.lock()
        {
            *slot = Some(n.clone());
        }
        let body = if (200..300).contains(&fetched.status) {
            fetched.body
        } else {
            sent.scrub_body(&fetched.body)
        };
        let parsed = parse_token_response(
            step,
            req.token_endpoint,
            fetched.status,
            &body,
            req.requested_scope,
        )
        .map_err(|e| sent.scrub(e));
        match parsed {
            Err(e)
                if e.oauth_error() == Some("use_dpop_nonce")
                    && req.dpop.is_some()
                    && server_nonce.is_some()
                    && !nonce_retried =>
            {
                tracing::info!(url = %req.token_endpoint, "the authorization server asked for a DPoP nonce; retrying once with it");
                nonce_retried = true;
            }
            other => return other,
        }
    }
}

/// Parses a token endpoint response (success or RFC 6749 §5.2 error).
pub fn parse_token_response(
    step: Step,
    url: &str,
    status: u16,
    body: &[u8],
    requested_scope: Option<&str>,
) -> Result<TokenSet> {
    let raw: serde_json::Result<RawTokenResponse> = crate::util::from_json_object(body);
    if let Ok(RawTokenResponse {
        error: Some(error),
        error_description,
        error_uri,
        ..
    }) = &raw
    {
        // Also catches errors sent with HTTP 200, as GitHub does
        // (quirks::Behaviour::ErrorsWithHttp200).
        return Err(Error::OAuth {
            step,
            url: url.to_string(),
            status,
            body: OAuthErrorBody {
                error: error.clone(),
                error_description: error_description.clone(),
                error_uri: error_uri.clone(),
            },
        });
    }
    if !(200..300).contains(&status) {
        return Err(Error::Status {
            step,
            url: url.to_string(),
            status,
            body_excerpt: crate::util::excerpt(&String::from_utf8_lossy(body), 200),
        });
    }
    let raw = raw.map_err(|e| {
        // serde's message is left out: it may quote a value of the body, a token.
        let rule = match e.classify() {
            serde_json::error::Category::Data => {
                "the token response is not a JSON object with the members of RFC 6749 §5.1"
            }
            _ => "the token response is not JSON",
        };
        Error::rule(step, url, rule)
    })?;
    let access_token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::rule(step, url, "the token response has no access_token"))?;
    let token_type = raw.token_type.unwrap_or_else(|| "Bearer".into());
    let expires_in = match raw.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_f64().map(|f| f.max(0.0) as u64),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    let now = now_secs();
    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        token_type,
        refresh_token: raw
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(RefreshToken::new),
        // Saturating: `expires_in` is the server's number, up to u64::MAX (fuzz: token_response).
        expires_at: expires_in.map(|s| now.saturating_add(s)),
        scope: raw.scope,
        requested_scope: requested_scope.map(str::to_string),
        obtained_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::CLIENT_ASSERTION_TYPE;
    use crate::client_auth::ClientAuthMethod;
    use crate::credential::{ClientRegistration, RegistrationKind};
    use crate::secret::ClientSecret;

    fn client(method: ClientAuthMethod, secret: Option<&str>) -> ClientRegistration {
        ClientRegistration {
            issuer: "https://as".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            client_id: "id:with space".into(),
            client_secret: secret.map(ClientSecret::new),
            client_secret_expires_at: None,
            token_endpoint_auth_method: method,
            kind: RegistrationKind::Dynamic,
            registered_at: 0,
        }
    }

    #[test]
    fn forms_per_auth_method() {
        let rt = RefreshToken::new("r1");
        for (method, secret, want_basic, want_secret_in_body) in [
            (ClientAuthMethod::None, None, false, false),
            (ClientAuthMethod::ClientSecretBasic, Some("s"), true, false),
            (ClientAuthMethod::ClientSecretPost, Some("s"), false, true),
        ] {
            let c = client(method, secret);
            let AuthenticatedForm { form, basic } = build_form(&TokenRequest {
                token_endpoint: "https://as/token",
                client: ClientCredentials::new(&c),
                grant: Grant::RefreshToken {
                    refresh_token: &rt,
                    scope: None,
                },
                resource: Some("http://localhost:3000"),
                requested_scope: None,
                dpop: None,
            })
            .unwrap();
            assert_eq!(basic.is_some(), want_basic, "{method}");
            assert_eq!(
                form.iter().any(|(k, _)| k == "client_secret"),
                want_secret_in_body,
                "{method}"
            );
            assert_eq!(
                form.iter().any(|(k, _)| k == "client_id"),
                !want_basic,
                "{method}"
            );
            assert!(form.contains(&("resource".into(), "http://localhost:3000".into())));
        }
        let c = client(ClientAuthMethod::ClientSecretBasic, None);
        let err = build_form(&TokenRequest {
            token_endpoint: "https://as/token",
            client: ClientCredentials::new(&c),
            grant: Grant::RefreshToken {
                refresh_token: &rt,
                scope: None,
            },
            resource: None,
            requested_scope: None,
            dpop: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("no client secret"), "{err}");
    }

    #[test]
    fn extension_grant_forms() {
        let a = Assertion::new("jwt.value.sig");
        let c = client(ClientAuthMethod::PrivateKeyJwt, None);
        let (key, public) = crate::assertion::test_key();
        let AuthenticatedForm { form, basic } = build_form(&TokenRequest {
            token_endpoint: "https://as/token",
            client: ClientCredentials::new(&c).with_signing_key(Some(&key)),
            grant: Grant::ClientCredentials { scope: Some("s1") },
            resource: Some("https://r/mcp"),
            requested_scope: None,
            dpop: None,
        })
        .unwrap();
        assert!(basic.is_none());
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some("client_credentials"));
        assert_eq!(get("client_assertion_type"), Some(CLIENT_ASSERTION_TYPE));
        let claims = crate::assertion::verify_for_tests(
            get("client_assertion").unwrap(),
            &public,
            "https://as",
        );
        assert_eq!(claims["sub"], "id:with space");
        assert_eq!(get("scope"), Some("s1"));

        let c = client(ClientAuthMethod::None, None);
        let AuthenticatedForm { form, .. } = build_form(&TokenRequest {
            token_endpoint: "https://idp/token",
            client: ClientCredentials::new(&c),
            grant: Grant::TokenExchange {
                subject_token: &a,
                subject_token_type: grant_types::ID_TOKEN,
                requested_token_type: grant_types::ID_JAG,
                audience: "https://as",
                scope: None,
            },
            resource: Some("https://r/mcp"),
            requested_scope: None,
            dpop: None,
        })
        .unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some(grant_types::TOKEN_EXCHANGE));
        assert_eq!(get("subject_token"), Some("jwt.value.sig"));
        assert_eq!(get("audience"), Some("https://as"));
        assert_eq!(get("resource"), Some("https://r/mcp"));
        assert_eq!(get("client_id"), Some("id:with space"));
    }

    #[test]
    fn tolerant_parsing() {
        let t = parse_token_response(
            Step::TokenExchange,
            "u",
            200,
            br#"{"access_token":"a","token_type":"bearer","expires_in":"3600","refresh_token":"r"}"#,
            Some("x"),
        )
        .unwrap();
        assert_eq!(t.token_type, "bearer");
        assert!(t.expires_at.unwrap() >= now_secs() + 3599);
        assert_eq!(t.refresh_token.unwrap().expose(), "r");
        assert_eq!(t.requested_scope.as_deref(), Some("x"));
    }

    #[test]
    fn errors_are_typed_even_with_200() {
        let e = parse_token_response(
            Step::Refresh,
            "u",
            200,
            br#"{"error":"bad_verification_code"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.oauth_error(), Some("bad_verification_code"));
        let e = parse_token_response(
            Step::Refresh,
            "u",
            400,
            br#"{"error":"invalid_grant","error_description":"expired"}"#,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid_grant: expired"), "{e}");
        let e = parse_token_response(Step::Refresh, "u", 502, b"<html>bad gateway</html>", None)
            .unwrap_err();
        assert!(e.to_string().contains("502"), "{e}");
        let e = parse_token_response(Step::Refresh, "u", 200, br#"{"token_type":"Bearer"}"#, None)
            .unwrap_err();
        assert!(e.to_string().contains("no access_token"), "{e}");
    }
}
