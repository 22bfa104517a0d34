//! The authorization endpoint of the development server: parameter checks (PKCE S256,
//! redirect URI, resource), the error page, and the redirect back with the code.

use super::*;

pub(super) async fn authorize(State(s): State<Arc<DevAuthServer>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    match do_authorize(&s, &query) {
        Ok(r) | Err(r) => r,
    }
}

/// Query parameters; a repeated parameter is an error (RFC 6749 §3.1).
pub(super) fn parse_params(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("the parameter {k} is repeated"));
        }
    }
    Ok(out)
}

pub(super) fn error_page(error: &str, description: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Authorization error</title>\
         <h1>Authorization error: {}</h1><p>{}</p>\
         <p>mcp-oauth demo development authorization server. Not redirecting: the client or its \
         redirect URI could not be verified (RFC 6749 §4.1.2.1).</p>",
        html_escape(error),
        html_escape(description)
    );
    let mut resp = (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    resp.extensions_mut().insert(Detail::OAuthError {
        error: error.into(),
        description: description.into(),
        redirected: false,
    });
    resp
}

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `redirect_uri` with `params` appended to its query (kept byte for byte otherwise).
pub(super) fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{}", ser.finish())
}

pub(super) fn redirect(location: &str) -> Response {
    // A Location that is not a valid header value is refused here rather than sent.
    if HeaderValue::from_str(location).is_err() {
        return error_page(
            "server_error",
            "the redirect URI cannot be put in a Location header",
        );
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        "<!doctype html><meta charset=utf-8><title>Redirecting</title><p>Approved automatically \
         (mcp-oauth demo development authorization server); redirecting to the client.",
    )
        .into_response()
}

// Both outcomes are HTTP responses: `Err` is the early exit of a refusal.
#[allow(clippy::result_large_err)]
pub(super) fn do_authorize(s: &DevAuthServer, raw: &str) -> Result<Response, Response> {
    let p = parse_params(raw).map_err(|e| error_page("invalid_request", &e))?;
    // 1. Errors that must not redirect: unknown client, bad redirect URI.
    let client_id = p
        .get("client_id")
        .ok_or_else(|| error_page("invalid_request", "client_id is missing"))?;
    let registered = s
        .client(client_id)
        .ok_or_else(|| {
            error_page(
                "invalid_client",
                &format!(
                    "unknown client_id {client_id:?}. This development server keeps confidential \
                     clients in memory: after a restart, they must register again."
                ),
            )
        })?
        .redirect_uris;
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) if registered.iter().any(|x| x == r) => r.clone(),
        Some(r) => {
            return Err(error_page(
                "invalid_request",
                &format!(
                    "redirect_uri {r:?} is not one of the registered redirect URIs {registered:?} \
                     (exact match required)"
                ),
            ));
        }
        None if registered.len() == 1 => registered[0].clone(),
        None => {
            return Err(error_page(
                "invalid_request",
                "redirect_uri is missing and the client registered several",
            ));
        }
    };
    // 2. Errors that go back to the client, with state and iss.
    let state = p.get("state").cloned();
    let back = |error: &'static str, description: String| -> Response {
        let mut params = vec![
            ("error", error),
            ("error_description", description.as_str()),
        ];
        if let Some(st) = &state {
            params.push(("state", st));
        }
        params.push(("iss", s.issuer()));
        let mut resp = redirect(&with_params(&redirect_uri, &params));
        resp.extensions_mut().insert(Detail::OAuthError {
            error: error.into(),
            description: description.clone(),
            redirected: true,
        });
        resp
    };
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => {
            return Err(back(
                "unsupported_response_type",
                format!("response_type {other:?}: only \"code\" is supported"),
            ));
        }
        None => return Err(back("invalid_request", "response_type is missing".into())),
    }
    let Some(challenge) = p.get("code_challenge") else {
        return Err(back(
            "invalid_request",
            "code_challenge is missing: PKCE (S256) is required".into(),
        ));
    };
    match p.get("code_challenge_method").map(String::as_str) {
        Some("S256") => {}
        Some(m) => {
            return Err(back(
                "invalid_request",
                format!("code_challenge_method {m:?} is not supported: S256 only"),
            ));
        }
        None => {
            return Err(back(
                "invalid_request",
                "code_challenge_method is missing (it would mean \"plain\"): S256 only".into(),
            ));
        }
    }
    if challenge.len() != 43 || !challenge.bytes().all(is_b64url) {
        return Err(back(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest (43 characters)".into(),
        ));
    }
    let resource = match p.get("resource") {
        None => {
            return Err(back(
                "invalid_target",
                format!(
                    "resource is required (RFC 8707; the MCP authorization spec requires it): \
                     this server issues tokens for {:?}",
                    s.config.resources
                ),
            ));
        }
        Some(r) if s.config.resources.iter().any(|x| x == r) => r.clone(),
        Some(r) => {
            return Err(back(
                "invalid_target",
                format!(
                    "resource {r:?} is not served here; this server issues tokens for {:?}",
                    s.config.resources
                ),
            ));
        }
    };
    let scope = s.grant_scope(p.get("scope").map(String::as_str));

    // 3. Approved, without asking anyone: this is a development server.
    let code = random_token(32);
    {
        let mut st = s.lock();
        let now = Instant::now();
        st.codes.retain(|_, c| c.expires > now);
        st.next_grant += 1;
        let grant = st.next_grant;
        st.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: challenge.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                expires: now + s.config.code_ttl,
                used: false,
                grant,
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(st) = &state {
        params.push(("state", st));
    }
    params.push(("iss", s.issuer()));
    let location = with_params(&redirect_uri, &params);
    let mut resp = redirect(&location);
    resp.extensions_mut().insert(Detail::Authorized(Authorized {
        client_id: client_id.clone(),
        subject: DEMO_SUBJECT.into(),
        scope,
        resource,
        redirect_uri,
        location: redact_url(&location),
    }));
    Ok(resp)
}

pub(super) fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

// ---------------------------------------------------------------- /token
