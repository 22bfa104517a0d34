//! Client authentication at the authorization server endpoints other than the token
//! endpoint: device authorization (RFC 8628 §3.1) and revocation (RFC 7009 §2.1) use the
//! token endpoint's rules, so a client authenticates there exactly as it does for a token.

use crate::error::{Error, Result, Step};
use crate::store::ClientRegistration;
use crate::token::basic_auth_value;

/// Adds the client's credentials to `form` and returns the `Authorization: Basic` value
/// when the client uses `client_secret_basic`.
pub(crate) fn authenticate(
    step: Step,
    url: &str,
    client: &ClientRegistration,
    form: &mut Vec<(String, String)>,
) -> Result<Option<String>> {
    let secret = || {
        client.client_secret.as_ref().ok_or_else(|| {
            Error::rule(
                step,
                url,
                format!(
                    "client {} uses {} but has no client secret; configure one \
                     (client_secret_env / --client-secret-env)",
                    client.client_id, client.token_endpoint_auth_method
                ),
            )
        })
    };
    match client.token_endpoint_auth_method.as_str() {
        "none" => {
            form.push(("client_id".into(), client.client_id.clone()));
            Ok(None)
        }
        "client_secret_basic" => Ok(Some(basic_auth_value(
            &client.client_id,
            secret()?.expose(),
        ))),
        "client_secret_post" => {
            let s = secret()?.expose().to_string();
            form.push(("client_id".into(), client.client_id.clone()));
            form.push(("client_secret".into(), s));
            Ok(None)
        }
        other => Err(Error::rule(
            step,
            url,
            format!("client authentication method {other:?} is not supported at this endpoint"),
        )),
    }
}

/// POSTs `form` (with the client's credentials, and a `DPoP` proof when given) to `url`
/// and reads the response.
pub(crate) async fn post_form(
    http: &crate::http::HttpClient,
    step: Step,
    url: &str,
    client: &ClientRegistration,
    mut form: Vec<(String, String)>,
    dpop_proof: Option<String>,
) -> Result<crate::http::Fetched> {
    let basic = authenticate(step, url, client, &mut form)?;
    let mut req = http
        .reqwest()
        .post(url)
        .header(http::header::ACCEPT, "application/json")
        .form(&form);
    if let Some(b) = basic {
        req = req.header(http::header::AUTHORIZATION, b);
    }
    if let Some(p) = dpop_proof {
        req = req.header("DPoP", p);
    }
    http.send(step, url, req).await
}
