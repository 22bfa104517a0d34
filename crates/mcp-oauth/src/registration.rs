//! Client registration in the spec's priority order: a pre-registered client from
//! configuration, then a Client ID Metadata Document URL (when the authorization server
//! supports it), then Dynamic Client Registration (RFC 7591), else an error that tells
//! the user what to register.
//!
//! A client id is bound to the issuer that issued it: registrations are stored under
//! (issuer, redirect URI) and only ever presented to that issuer (SEP-2352).

use crate::client_auth::ClientAuthMethod;
use crate::config::{OAuthConfig, PreRegisteredClient};
use crate::credential::{ClientRegistration, RegistrationKind};
use crate::discovery::Discovery;
use crate::discovery::endpoint::Endpoint;
use crate::error::{Error, OAuthErrorBody, Result, Step};
use crate::http::HttpClient;
use crate::remedy::Remedy;
use crate::secret::ClientSecret;
use crate::store::{ClientKey, CredentialStore};
use crate::util::now_secs;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Picks `client_secret_basic` or `client_secret_post` for a client that has a secret,
/// from what the AS supports (RFC 8414's default is `client_secret_basic`).
pub fn secret_auth_method(supported: &[String]) -> ClientAuthMethod {
    let offers = |m: ClientAuthMethod| m.offered_in(supported);
    if !offers(ClientAuthMethod::ClientSecretBasic) && offers(ClientAuthMethod::ClientSecretPost) {
        ClientAuthMethod::ClientSecretPost
    } else {
        ClientAuthMethod::ClientSecretBasic
    }
}

/// The `token_endpoint_auth_method` a dynamic registration asks for. A public client (no
/// secret) is what a native app is (RFC 8252 §8.4); only when the authorization server
/// accepts no public client, a secret: `client_secret_post` when it is offered, since the
/// MCP Python SDK's authorization server (FastMCP's too) reads `client_id` from the body
/// only, refusing `client_secret_basic` at the token endpoint ("Missing client_id") and at
/// revocation (python-sdk#3545, #3508); a registration states its method, so the server
/// holds the client to the one asked for.
pub fn dynamic_auth_method(
    meta: &crate::discovery::as_metadata::AuthServerMetadata,
) -> ClientAuthMethod {
    let supported = meta.token_auth_methods();
    let offers = |m: ClientAuthMethod| m.offered_in(&supported);
    if meta.token_endpoint_auth_methods_supported.is_none() || offers(ClientAuthMethod::None) {
        ClientAuthMethod::None
    } else if offers(ClientAuthMethod::ClientSecretPost) {
        ClientAuthMethod::ClientSecretPost
    } else {
        secret_auth_method(&supported)
    }
}

/// The registration of the configured client `pre` at `issuer`, with the method it
/// authenticates with there. Its secret is read from its source at each use and never
/// kept (see `SecretSource`), so the record holds none.
pub(crate) fn pre_registered(
    pre: &PreRegisteredClient,
    issuer: String,
    redirect_uri: String,
    meta: &crate::discovery::as_metadata::AuthServerMetadata,
) -> ClientRegistration {
    ClientRegistration {
        issuer,
        redirect_uri,
        client_id: pre.client_id.clone(),
        client_secret: None,
        client_secret_expires_at: None,
        token_endpoint_auth_method: pre_registered_auth_method(pre, &meta.token_auth_methods()),
        kind: RegistrationKind::PreRegistered,
        registered_at: now_secs(),
    }
}

/// How a pre-registered client authenticates: as configured, else `private_key_jwt` with
/// a private key, a secret method the AS supports with a secret, `none` without either.
pub fn pre_registered_auth_method(
    pre: &PreRegisteredClient,
    supported: &[String],
) -> ClientAuthMethod {
    match (
        pre.token_endpoint_auth_method,
        &pre.private_key,
        &pre.client_secret,
    ) {
        (Some(m), _, _) => m,
        (None, Some(_), _) => ClientAuthMethod::PrivateKeyJwt,
        (None, None, Some(_)) => secret_auth_method(supported),
        (None, None, None) => ClientAuthMethod::None,
    }
}

/// Obtain the client to use with the discovered authorization server. A stored dynamic
/// client is first checked at the authorization endpoint, unless its id is `vouched`
/// (this process obtained it already). The flag says whether the client
/// was registered just now.
pub async fn obtain_client(
    http: &HttpClient,
    config: &OAuthConfig,
    discovery: &Discovery,
    redirect_uri: &str,
    store: &Arc<dyn CredentialStore>,
    vouched: &std::collections::HashSet<String>,
) -> Result<(ClientRegistration, bool)> {
    let validated = &discovery.metadata;
    let meta = validated.document();
    let issuer = meta.issuer.clone();

    if let Some(pre) = &config.client {
        let bound_elsewhere = pre.issuer.as_deref().is_some_and(|i| i != issuer);
        if !bound_elsewhere {
            // Refused here, before a browser is sent to this authorization server.
            crate::issuer_pin::check(store, config, pre, &issuer).await?;
            tracing::info!(client_id = %pre.client_id, %issuer, "using the pre-registered client");
            let reg = pre_registered(pre, issuer, redirect_uri.to_string(), meta);
            // A configured client cannot be registered anew: one the authorization
            // server does not know (or whose redirect URI it does not have) ends here,
            // instead of in a browser tab that can never come back.
            if !vouched.contains(&reg.client_id)
                && let Some(answer) =
                    stored_client_refused(http, config, validated.authorization_endpoint(), &reg)
                        .await
            {
                return Err(Error::Action {
                    step: Step::Registration,
                    message: format!(
                        "the authorization server {} refused the configured client {} at its \
                         authorization endpoint ({answer}); {} and that the redirect URI \
                         {redirect_uri} is registered for it there",
                        reg.issuer,
                        reg.client_id,
                        Remedy::CheckClientId
                    ),
                });
            }
            return Ok((reg, false));
        }
        tracing::info!(
            configured = pre.issuer.as_deref().unwrap_or_default(),
            %issuer,
            "the pre-registered client belongs to another authorization server; not presenting it here"
        );
    }

    if meta.client_id_metadata_document_supported == Some(true)
        && let Some(url) = &config.client_metadata_url
    {
        tracing::info!(client_id = %url, "using a client ID metadata document");
        return Ok((
            ClientRegistration {
                issuer,
                redirect_uri: redirect_uri.to_string(),
                client_id: url.clone(),
                client_secret: None,
                client_secret_expires_at: None,
                token_endpoint_auth_method: ClientAuthMethod::None,
                kind: RegistrationKind::ClientIdMetadataDocument,
                registered_at: now_secs(),
            },
            false,
        ));
    }

    if let Some(endpoint) = validated.registration_endpoint() {
        let key = ClientKey {
            issuer: issuer.clone(),
            redirect_uri: redirect_uri.to_string(),
        };
        let stored = {
            let store = store.clone();
            let key = key.clone();
            crate::client::blocking(move || store.load_client(&key)).await?
        };
        if let Some(reg) = stored.filter(|r| r.issuer == issuer && !secret_expired(r)) {
            let refused = if vouched.contains(&reg.client_id) {
                None
            } else {
                stored_client_refused(http, config, validated.authorization_endpoint(), &reg).await
            };
            match refused {
                None => {
                    tracing::info!(client_id = %reg.client_id, %issuer, "reusing the dynamically registered client");
                    return Ok((reg, false));
                }
                Some(answer) => {
                    // An authorization server that forgot the client (restarted, cleaned
                    // up) shows the user an error page instead of redirecting (RFC 6749
                    // §4.1.2.1): the browser would never come back. Register anew first.
                    tracing::warn!(
                        client_id = %reg.client_id,
                        %issuer,
                        answer = %answer,
                        "the authorization server no longer knows the stored client; registering a new one"
                    );
                    let (store, key) = (store.clone(), key.clone());
                    crate::client::blocking(move || store.remove_client(&key)).await?;
                }
            }
        }
        let reg = register(http, config, discovery, endpoint.as_str(), redirect_uri)
            .await
            .map_err(|e| discovery.explain_default_endpoint(e))?;
        let store = store.clone();
        let reg2 = reg.clone();
        crate::client::blocking(move || store.save_client(&key, &reg2)).await?;
        return Ok((reg, true));
    }

    let cimd_hint = if meta.client_id_metadata_document_supported == Some(true) {
        format!(
            " or {} to your client ID metadata document",
            Remedy::SetClientMetadataUrl
        )
    } else {
        String::new()
    };
    Err(Error::Action {
        step: Step::Registration,
        message: format!(
            "the authorization server {issuer} offers no dynamic client registration{}; \
             register a client there with redirect URI {redirect_uri} and {}{cimd_hint}",
            if meta.client_id_metadata_document_supported == Some(true) {
                ""
            } else {
                " and does not support client ID metadata documents"
            },
            Remedy::ConfigureRegisteredClient
        ),
    })
}

/// How long the look at the authorization endpoint may take before the stored client is
/// used without it.
const CLIENT_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Asks the authorization endpoint about a stored or configured client before a user is
/// sent there: an authorization request with throwaway `state` and PKCE values, whose first
/// answer alone is read (no redirect is followed, so no login page is walked into). A
/// redirect or a page means the client is known; a 4xx page that names the client or its
/// redirect URI means it is not, and that answer is returned. Anything else (a time-out,
/// a 5xx, a page that says nothing of the client) gives `None`: the check cannot tell,
/// and the client is used. Device mode never visits the authorization endpoint.
async fn stored_client_refused(
    http: &HttpClient,
    config: &OAuthConfig,
    authorization_endpoint: &Endpoint,
    reg: &ClientRegistration,
) -> Option<String> {
    if config.interaction == crate::config::Interaction::Device {
        return None;
    }
    let pkce = crate::authorize::Pkce::new();
    let url = crate::authorize::AuthorizationRequest {
        authorization_endpoint: authorization_endpoint.as_str(),
        client_id: &reg.client_id,
        redirect_uri: &reg.redirect_uri,
        scope: None,
        resource: None,
        state: &crate::util::random_token(16),
        code_challenge: &pkce.challenge,
        extra: &[],
    }
    .url()
    .ok()?;
    let fetched = tokio::time::timeout(
        CLIENT_CHECK_TIMEOUT,
        http.get_first_hop(Step::Authorization, &url),
    )
    .await
    .ok()?
    .ok()?;
    client_refusal(fetched.status, &fetched.body)
}

/// The refusal of a client in an authorization endpoint's answer, if it is one.
///
/// A 400 that is not a redirect is one, whatever it says: RFC 6749 §4.1.2.1 has the
/// authorization endpoint redirect every error back to the client except an invalid
/// client id or redirect URI, which it shows the user instead (the MCP Python SDK's
/// `{"error": "invalid_request", "error_description": "Client ID '…' not found"}`). Other
/// 4xx statuses (a login wall, a firewall's 403) count only when they name the client.
fn client_refusal(status: u16, body: &[u8]) -> Option<String> {
    if !(400..500).contains(&status) {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    // oidc-provider's page and JSON say `invalid_client`; others "Unrecognized
    // client_id", "unknown client", "client not found", "Client ID '…' not found", or name
    // the redirect URI that is no longer registered.
    const SIGNS: &[&str] = &[
        "invalid_client",
        "invalid client",
        "unknown client",
        "client not found",
        "unrecognized client",
        "client_id",
        "client id",
        "redirect_uri",
        "invalid_redirect_uri",
    ];
    (status == 400 || SIGNS.iter().any(|s| lower.contains(s)))
        .then(|| format!("HTTP {status}: {}", crate::util::excerpt(&text, 160)))
}

fn secret_expired(r: &ClientRegistration) -> bool {
    matches!(r.client_secret_expires_at, Some(t) if t != 0 && t <= now_secs() + 60)
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_expires_at: Option<u64>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// RFC 7591 registration of a native (loopback-redirect) client.
pub async fn register(
    http: &HttpClient,
    config: &OAuthConfig,
    discovery: &Discovery,
    endpoint: &str,
    redirect_uri: &str,
) -> Result<ClientRegistration> {
    let meta = discovery.metadata.document();
    let supported = meta.token_auth_methods();
    let method = dynamic_auth_method(meta);
    let mut grant_types = vec!["authorization_code"];
    if meta
        .grant_types_supported
        .as_ref()
        .is_none_or(|g| g.iter().any(|x| x == "refresh_token"))
    {
        grant_types.push("refresh_token");
    }
    if config.interaction == crate::config::Interaction::Device
        && discovery.metadata.device_authorization_endpoint().is_some()
    {
        grant_types.push(crate::authorize::device::GRANT_TYPE);
    }
    let body = json!({
        "client_name": config.client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "native",
    });
    tracing::info!(%endpoint, "registering a client (RFC 7591)");
    let req = http.reqwest().post(endpoint).json(&body);
    let fetched = http.send(Step::Registration, endpoint, req).await?;
    parse_registration_response(
        &meta.issuer,
        endpoint,
        redirect_uri,
        method,
        &supported,
        fetched.status,
        &fetched.body,
    )
}

/// Reads an RFC 7591 registration response (success, §3.2.1, or error, §3.2.2) into the
/// client to store. `method` is the `token_endpoint_auth_method` that was asked for and
/// `supported` the AS's methods. Exposed for tests and the fuzz targets.
pub fn parse_registration_response(
    issuer: &str,
    endpoint: &str,
    redirect_uri: &str,
    method: ClientAuthMethod,
    supported: &[String],
    status: u16,
    body: &[u8],
) -> Result<ClientRegistration> {
    if !(200..300).contains(&status) {
        if let Ok(err) = crate::util::from_json_object::<OAuthErrorBody>(body) {
            return Err(Error::OAuth {
                step: Step::Registration,
                url: endpoint.to_string(),
                status,
                body: err,
            });
        }
        return Err(Error::Status {
            step: Step::Registration,
            url: endpoint.to_string(),
            status,
            body_excerpt: crate::util::excerpt(&String::from_utf8_lossy(body), 200),
        });
    }
    let resp: RegistrationResponse = crate::util::from_json_object(body).map_err(|e| {
        Error::rule(
            Step::Registration,
            endpoint,
            format!("the registration response is not valid RFC 7591 JSON: {e}"),
        )
    })?;
    if resp.client_id.is_empty() {
        return Err(Error::rule(
            Step::Registration,
            endpoint,
            "the registration response has an empty client_id",
        ));
    }
    // Some servers send `"client_secret": ""` for public clients: that is no secret.
    let client_secret = resp
        .client_secret
        .filter(|s| !s.is_empty())
        .map(ClientSecret::new);
    let token_endpoint_auth_method = match resp.token_endpoint_auth_method.as_deref() {
        // RFC 7591 §3.2.1: the server may register another method than the one asked for.
        Some(registered) => registered.parse().map_err(|e| {
            Error::rule(
                Step::Registration,
                endpoint,
                format!("the authorization server registered the client with {e}"),
            )
        })?,
        None if client_secret.is_some() && method == ClientAuthMethod::None => {
            secret_auth_method(supported)
        }
        None => method,
    };
    Ok(ClientRegistration {
        issuer: issuer.to_string(),
        redirect_uri: redirect_uri.to_string(),
        client_id: resp.client_id,
        client_secret,
        client_secret_expires_at: resp.client_secret_expires_at,
        token_endpoint_auth_method,
        kind: RegistrationKind::Dynamic,
        registered_at: now_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts_as_a_refused_client() {
        let page = b"<html><body><h1>oops! something went wrong</h1><pre><strong>error</strong>: \
            invalid_client<br><strong>error_description</strong>: client is invalid</pre></body></html>";
        let r = client_refusal(400, page).unwrap();
        assert!(
            r.starts_with("HTTP 400: ") && r.contains("invalid_client"),
            "{r}"
        );
        assert!(client_refusal(422, br#"{"message":"Unrecognized client_id"}"#).is_some());
        // A redirect, a login page, a server failure, or a 4xx about something else: the
        // client is not known to be refused.
        assert!(client_refusal(303, b"").is_none());
        assert!(client_refusal(200, b"<form>log in</form>").is_none());
        assert!(client_refusal(500, b"invalid_client").is_none());
        assert!(client_refusal(403, b"<html>Forbidden by the firewall</html>").is_none());
        // The MCP Python SDK's authorization endpoint (mcp 2.x) for a client it lost.
        let sdk = br#"{"error":"invalid_request","error_description":"Client ID '3cd85baa' not found","state":"x"}"#;
        assert!(client_refusal(400, sdk).is_some());
        assert!(
            client_refusal(404, sdk).is_some(),
            "named, whatever the status"
        );
        // Any other 400 that is not a redirect: §4.1.2.1 leaves only the client for it.
        assert!(client_refusal(400, b"<html>Bad Request</html>").is_some());
    }

    #[test]
    fn dynamic_registration_asks_for_a_public_client_else_client_secret_post() {
        let meta = |m: Option<&[&str]>| crate::discovery::as_metadata::AuthServerMetadata {
            token_endpoint_auth_methods_supported: m
                .map(|v| v.iter().map(|x| x.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(dynamic_auth_method(&meta(None)).as_str(), "none");
        assert_eq!(
            dynamic_auth_method(&meta(Some(&["client_secret_basic", "none"]))).as_str(),
            "none"
        );
        // FastMCP's and the MCP Python SDK's authorization servers.
        assert_eq!(
            dynamic_auth_method(&meta(Some(&["client_secret_post", "client_secret_basic"])))
                .as_str(),
            "client_secret_post"
        );
        assert_eq!(
            dynamic_auth_method(&meta(Some(&["client_secret_basic"]))).as_str(),
            "client_secret_basic"
        );
    }

    #[test]
    fn secret_method_choice() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            secret_auth_method(&s(&["client_secret_post"])),
            ClientAuthMethod::ClientSecretPost
        );
        assert_eq!(
            secret_auth_method(&s(&["client_secret_post", "client_secret_basic"])),
            ClientAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            secret_auth_method(&s(&["none"])),
            ClientAuthMethod::ClientSecretBasic
        );
    }

    #[test]
    fn a_registered_method_we_do_not_implement_is_named() {
        let parse = |body: &str| {
            parse_registration_response(
                "https://as",
                "https://as/register",
                "http://127.0.0.1:1/cb",
                ClientAuthMethod::None,
                &[],
                201,
                body.as_bytes(),
            )
        };
        let reg = parse(r#"{"client_id":"c","token_endpoint_auth_method":"client_secret_post","client_secret":"s"}"#)
            .unwrap();
        assert_eq!(
            reg.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretPost
        );
        let e = parse(r#"{"client_id":"c","token_endpoint_auth_method":"tls_client_auth"}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("token_endpoint_auth_method tls_client_auth is not supported"),
            "{e}"
        );
    }
}
