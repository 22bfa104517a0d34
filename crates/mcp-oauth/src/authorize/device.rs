//! The device authorization grant (RFC 8628), for machines without a usable browser when
//! the authorization server advertises `device_authorization_endpoint`: the client asks
//! for a device code, the user enters the user code on another device, and the client
//! polls the token endpoint until the user has approved (or refused, or the code expired).

use crate::client_auth::{self, AuthenticatedForm, ClientCredentials};
use crate::credential::TokenSet;
use crate::discovery::as_metadata::require_https;
use crate::error::{Error, OAuthErrorBody, Result, Rule, Step};
use crate::http::HttpClient;
use crate::secret::DeviceCode;
use crate::token::parse_token_response;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The grant type of the token request (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// The device code, sent with each poll of the token endpoint.
    pub device_code: DeviceCode,
    /// The code the user enters at the verification URI.
    pub user_code: String,
    /// Where the user goes to enter the code.
    pub verification_uri: String,
    /// A verification URI that carries the code, if the server gave one.
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes.
    pub expires_in: Duration,
    /// Minimum time between polls.
    pub interval: Duration,
}

/// What the user has to see: where to go and which code to enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrompt {
    /// The code the user enters at the verification URI.
    pub user_code: String,
    /// Where the user goes to enter the code.
    pub verification_uri: String,
    /// A verification URI that carries the code, if the server gave one.
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the code.
    pub expires_in: Duration,
}

impl DevicePrompt {
    /// The text to show the user: where to go, the code, and when it expires.
    pub fn instructions(&self) -> String {
        let mut s = format!(
            "To authorize, open {} on any device and enter the code\n\n    {}\n",
            self.verification_uri, self.user_code
        );
        if let Some(c) = &self.verification_uri_complete {
            s.push_str(&format!("\n(or open {c}, which carries the code)\n"));
        }
        s.push_str(&format!(
            "\nThe code expires in {} minutes.",
            self.expires_in.as_secs().div_ceil(60)
        ));
        s
    }
}

impl DeviceAuthorization {
    /// What the user has to see of this authorization.
    pub fn prompt(&self) -> DevicePrompt {
        DevicePrompt {
            user_code: self.user_code.clone(),
            verification_uri: self.verification_uri.clone(),
            verification_uri_complete: self.verification_uri_complete.clone(),
            expires_in: self.expires_in,
        }
    }
}

#[derive(Deserialize)]
struct RawDeviceResponse {
    device_code: String,
    user_code: String,
    #[serde(default)]
    verification_uri: Option<String>,
    /// Google's pre-RFC spelling ([`crate::quirks::Behaviour::DeviceVerificationUrl`]).
    #[serde(default)]
    verification_url: Option<String>,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    interval: Option<serde_json::Value>,
}

/// The longest poll interval accepted from a server (RFC 8628 sets none; 5 s is usual).
pub const MAX_INTERVAL_SECS: u64 = 60;

fn number(v: &Option<serde_json::Value>) -> Option<u64> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The device authorization request (RFC 8628 §3.1): the scopes, the RFC 8707
/// `resource`, and the client's authentication, as at the token endpoint.
pub fn start_request(
    endpoint: &str,
    client: &ClientCredentials<'_>,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<AuthenticatedForm> {
    let mut form = Vec::new();
    if let Some(s) = scope {
        form.push(("scope".to_string(), s.to_string()));
    }
    if let Some(r) = resource {
        form.push(("resource".to_string(), r.to_string()));
    }
    client_auth::authenticate(Step::Authorization, endpoint, client, form)
}

/// Asks the authorization server for a device code (RFC 8628 §3.1), with the RFC 8707
/// `resource` and the scopes.
pub async fn start(
    http: &HttpClient,
    endpoint: &str,
    client: &ClientCredentials<'_>,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<DeviceAuthorization> {
    let step = Step::Authorization;
    require_https("device_authorization_endpoint", endpoint)
        .map_err(|r| Error::broke(step, endpoint, Rule::InsecureEndpoint(r)))?;
    let request = start_request(endpoint, client, scope, resource)?;
    tracing::info!(%endpoint, "requesting a device code (RFC 8628)");
    let fetched = client_auth::post_form(http, step, endpoint, &request, None).await?;
    if !(200..300).contains(&fetched.status) {
        if let Ok(body) = crate::util::from_json_object::<OAuthErrorBody>(&fetched.body) {
            return Err(Error::OAuth {
                step,
                url: endpoint.to_string(),
                status: fetched.status,
                body,
            });
        }
        return Err(Error::Status {
            step,
            url: endpoint.to_string(),
            status: fetched.status,
            body_excerpt: fetched.text_excerpt(),
        });
    }
    let raw: RawDeviceResponse = crate::util::from_json_object(&fetched.body).map_err(|e| {
        Error::rule(
            step,
            endpoint,
            format!("the device authorization response is not RFC 8628 JSON: {e}"),
        )
    })?;
    let verification_uri = raw
        .verification_uri
        .or(raw.verification_url)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::rule(
                step,
                endpoint,
                "the device authorization response has no verification_uri",
            )
        })?;
    if raw.device_code.is_empty() || raw.user_code.is_empty() {
        return Err(Error::rule(
            step,
            endpoint,
            "the device authorization response has an empty device_code or user_code",
        ));
    }
    Ok(DeviceAuthorization {
        device_code: DeviceCode::new(raw.device_code),
        user_code: raw.user_code,
        verification_uri,
        verification_uri_complete: raw.verification_uri_complete.filter(|u| !u.is_empty()),
        expires_in: Duration::from_secs(number(&raw.expires_in).unwrap_or(600).max(1)),
        // RFC 8628 §3.2: 5 seconds when absent.
        // Bounded: the server's number is waited for before each poll.
        interval: Duration::from_secs(
            number(&raw.interval)
                .unwrap_or(5)
                .clamp(1, MAX_INTERVAL_SECS),
        ),
    })
}

/// Makes the `DPoP` proof of one token request (RFC 9449), for DPoP-bound tokens.
pub type DpopProof<'a> = &'a (dyn Fn() -> Result<String> + Send + Sync);

/// One poll of the token endpoint (RFC 8628 §3.4): the device code, the RFC 8707
/// `resource`, and the client's authentication (a new assertion each time, for
/// `private_key_jwt`).
pub fn poll_request(
    token_endpoint: &str,
    client: &ClientCredentials<'_>,
    device_code: &DeviceCode,
    resource: Option<&str>,
) -> Result<AuthenticatedForm> {
    let mut form = vec![
        ("grant_type".to_string(), GRANT_TYPE.to_string()),
        ("device_code".to_string(), device_code.expose().to_string()),
    ];
    if let Some(r) = resource {
        form.push(("resource".to_string(), r.to_string()));
    }
    client_auth::authenticate(Step::TokenExchange, token_endpoint, client, form)
}

/// Polls the token endpoint (RFC 8628 §3.4-3.5) until the user approves, refuses, the
/// code expires, or `timeout` passes. `authorization_pending` waits one interval;
/// `slow_down` adds five seconds to it.
#[allow(clippy::too_many_arguments)]
pub async fn poll(
    http: &HttpClient,
    token_endpoint: &str,
    client: &ClientCredentials<'_>,
    auth: &DeviceAuthorization,
    resource: Option<&str>,
    requested_scope: Option<&str>,
    timeout: Duration,
    dpop: Option<DpopProof<'_>>,
) -> Result<TokenSet> {
    let step = Step::TokenExchange;
    let deadline = Instant::now() + timeout.min(auth.expires_in);
    let mut interval = auth.interval;
    loop {
        // Never past the deadline, whatever the interval.
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
        let request = poll_request(token_endpoint, client, &auth.device_code, resource)?;
        let proof = dpop.map(|f| f()).transpose()?;
        let fetched = client_auth::post_form(http, step, token_endpoint, &request, proof).await?;
        match parse_token_response(
            step,
            token_endpoint,
            fetched.status,
            &fetched.body,
            requested_scope,
        ) {
            Ok(tokens) => return Ok(tokens),
            Err(e) => match e.oauth_error() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                Some("access_denied") => {
                    return Err(Error::Action {
                        step: Step::Authorization,
                        message: "the user refused the device authorization (access_denied)".into(),
                    });
                }
                Some("expired_token") => {
                    return Err(Error::Action {
                        step: Step::Authorization,
                        message:
                            "the device code expired before it was approved; run the login again"
                                .into(),
                    });
                }
                _ => return Err(e),
            },
        }
        if Instant::now()
            .checked_add(interval)
            .is_none_or(|t| t > deadline)
        {
            return Err(Error::Timeout {
                step: Step::Authorization,
                url: auth.verification_uri.clone(),
                secs: timeout.min(auth.expires_in).as_secs(),
            });
        }
        tracing::debug!(
            interval_secs = interval.as_secs(),
            "device authorization pending"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_mentions_code_and_uri() {
        let p = DevicePrompt {
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://as.example/device".into(),
            verification_uri_complete: Some("https://as.example/device?user_code=WDJB-MJHT".into()),
            expires_in: Duration::from_secs(1800),
        };
        let s = p.instructions();
        assert!(
            s.contains("WDJB-MJHT")
                && s.contains("https://as.example/device")
                && s.contains("30 minutes"),
            "{s}"
        );
    }

    #[test]
    fn a_private_key_jwt_client_authenticates_at_the_device_endpoints() {
        use crate::assertion::{CLIENT_ASSERTION_TYPE, test_key, verify_for_tests};
        use crate::client_auth::ClientAuthMethod;
        use crate::credential::{ClientRegistration, RegistrationKind};
        let client = ClientRegistration {
            issuer: "https://as.example".into(),
            redirect_uri: String::new(),
            client_id: "svc".into(),
            client_secret: None,
            client_secret_expires_at: None,
            token_endpoint_auth_method: ClientAuthMethod::PrivateKeyJwt,
            kind: RegistrationKind::PreRegistered,
            registered_at: 0,
        };
        let (key, public) = test_key();
        let creds = ClientCredentials::new(&client).with_signing_key(Some(&key));
        let start = start_request(
            "https://as.example/device",
            &creds,
            Some("mcp"),
            Some("https://mcp.example/mcp"),
        )
        .unwrap();
        let code = DeviceCode::new("dev-code");
        let polls =
            [1, 2].map(|_| poll_request("https://as.example/token", &creds, &code, None).unwrap());
        let mut jtis = std::collections::HashSet::new();
        for AuthenticatedForm { form, basic } in std::iter::once(start).chain(polls) {
            assert!(basic.is_none());
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("client_id"), Some("svc"));
            assert_eq!(get("client_assertion_type"), Some(CLIENT_ASSERTION_TYPE));
            // Addressed to the issuer, whichever endpoint the request goes to.
            let claims = verify_for_tests(
                get("client_assertion").unwrap(),
                &public,
                "https://as.example",
            );
            jtis.insert(claims["jti"].to_string());
        }
        assert_eq!(jtis.len(), 3, "a new assertion for every request");
    }

    #[test]
    fn tolerant_numbers() {
        assert_eq!(number(&Some(serde_json::json!("7"))), Some(7));
        assert_eq!(number(&Some(serde_json::json!(9))), Some(9));
        assert_eq!(number(&None), None);
    }
}
