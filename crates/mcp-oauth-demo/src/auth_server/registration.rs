//! Dynamic Client Registration (RFC 7591) at the development server: what it accepts and
//! refuses, and the stateless public client ids it hands out.

use super::*;

pub(super) const GRANTS: &[&str] = &["authorization_code", "refresh_token"];
pub(super) const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

pub(super) async fn register(
    State(s): State<Arc<DevAuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match do_register(&s, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

pub(super) fn do_register(
    s: &DevAuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let bad = |d: String| OAuthError::new("invalid_client_metadata", d);
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(OAuthError::new(
            "invalid_request",
            "the registration request must be application/json (RFC 7591 §3.1)",
        ));
    }
    let meta: Value = serde_json::from_slice(body)
        .map_err(|e| OAuthError::new("invalid_request", format!("the body is not JSON: {e}")))?;
    let Value::Object(meta) = meta else {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be a JSON object",
        ));
    };
    let strings = |name: &str| -> Result<Option<Vec<String>>, OAuthError> {
        match meta.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| bad(format!("{name} must be an array of strings"))),
            Some(_) => Err(bad(format!("{name} must be an array of strings"))),
        }
    };
    let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            "redirect_uris is required: this server only does the authorization code flow",
        ));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri).map_err(|why| {
            OAuthError::new(
                "invalid_redirect_uri",
                format!("redirect URI {uri:?}: {why}"),
            )
        })?;
    }
    let grant_types = strings("grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(bad(format!(
            "grant type {g:?} is not supported (supported: {})",
            GRANTS.join(", ")
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad("grant_types must include authorization_code".into()));
    }
    let response_types = strings("response_types")?.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(bad("only the response type \"code\" is supported".into()));
    }
    // RFC 7591 §2: the default is client_secret_basic.
    let auth_method = match meta.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "client_secret_basic".to_owned(),
        Some(Value::String(m)) if AUTH_METHODS.contains(&m.as_str()) => m.clone(),
        Some(other) => {
            return Err(bad(format!(
                "token_endpoint_auth_method {other} is not supported (supported: {})",
                AUTH_METHODS.join(", ")
            )));
        }
    };
    let client_name = meta
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let secret = (auth_method != "none").then(|| random_token(32));
    let client_id = if secret.is_none() {
        public_client_id(&grant_types, &redirect_uris)
    } else {
        format!("demo-{}", random_token(12))
    };
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = meta.clone();
    out.insert("client_id".into(), client_id.clone().into());
    out.insert("client_id_issued_at".into(), issued_at.into());
    out.insert("redirect_uris".into(), json!(redirect_uris));
    out.insert("grant_types".into(), json!(grant_types));
    out.insert("response_types".into(), json!(response_types));
    out.insert(
        "token_endpoint_auth_method".into(),
        auth_method.clone().into(),
    );
    if let Some(secret) = &secret {
        out.insert("client_secret".into(), secret.clone().into());
        out.insert("client_secret_expires_at".into(), 0.into());
    }
    s.lock().clients.insert(
        client_id.clone(),
        Client {
            secret_hash: secret.as_deref().map(sha256),
            auth_method: auth_method.clone(),
            redirect_uris: redirect_uris.clone(),
            grant_types: grant_types.clone(),
        },
    );
    let mut resp = (
        StatusCode::CREATED,
        no_store(),
        axum::Json(Value::Object(out)),
    )
        .into_response();
    resp.extensions_mut().insert(Detail::Registered(Registered {
        client_id,
        client_name,
        redirect_uris,
        token_endpoint_auth_method: auth_method,
        grant_types,
    }));
    Ok(resp)
}

/// RFC 8252 / OAuth 2.1 §2.3: absolute, no fragment; `http` only for loopback hosts;
/// private-use schemes (`com.example.app:/cb`, `vscode://…`) accepted.
pub(super) fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    let u = url::Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if u.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment");
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" => match u.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err("http is only allowed for loopback hosts (127.0.0.1, [::1], localhost)"),
        },
        "javascript" | "data" | "file" | "vbscript" => Err("scheme not allowed"),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- /authorize

/// `demo-` + base64url(`a` or `r` (with the refresh_token grant), a space, the redirect
/// URIs separated by spaces).
pub(super) fn public_client_id(grant_types: &[String], redirect_uris: &[String]) -> String {
    let flag = if grant_types.iter().any(|g| g == "refresh_token") {
        "r"
    } else {
        "a"
    };
    let raw = format!("{flag} {}", redirect_uris.join(" "));
    format!("demo-{}", URL_SAFE_NO_PAD.encode(raw))
}

pub(super) fn decode_public_client_id(client_id: &str) -> Option<Client> {
    let raw = URL_SAFE_NO_PAD
        .decode(client_id.strip_prefix("demo-")?)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (flag, uris) = raw.split_once(' ')?;
    let grant_types = match flag {
        "a" => vec!["authorization_code".to_owned()],
        "r" => vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        _ => return None,
    };
    let redirect_uris: Vec<String> = uris.split(' ').map(str::to_owned).collect();
    if redirect_uris.iter().any(|u| check_redirect_uri(u).is_err()) {
        return None;
    }
    Some(Client {
        secret_hash: None,
        auth_method: "none".into(),
        redirect_uris,
        grant_types,
    })
}
