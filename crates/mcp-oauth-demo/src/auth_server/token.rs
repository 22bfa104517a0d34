//! The token endpoint of the development server: client authentication, code
//! redemption (PKCE, redirect URI, resource) and refresh with rotation.

use super::*;

pub(super) async fn token(
    State(s): State<Arc<DevAuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match do_token(&s, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

pub(super) fn do_token(
    s: &DevAuthServer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::new(
            "invalid_request",
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let raw = std::str::from_utf8(body)
        .map_err(|_| OAuthError::new("invalid_request", "the body is not UTF-8"))?;
    let p = parse_params(raw).map_err(|e| OAuthError::new("invalid_request", e))?;
    let client_id = authenticate(s, headers, &p)?;
    let grant_type = p
        .get("grant_type")
        .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is missing"))?;
    let client_grants = s
        .client(&client_id)
        .map(|c| c.grant_types)
        .unwrap_or_default();
    if GRANTS.contains(&grant_type.as_str()) && !client_grants.iter().any(|g| g == grant_type) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("the client did not register the {grant_type} grant"),
        ));
    }
    let (resource, scope, grant, rotated) = match grant_type.as_str() {
        "authorization_code" => {
            let (resource, scope, grant) = redeem_code(s, &client_id, &p)?;
            (resource, scope, grant, false)
        }
        "refresh_token" => {
            let (resource, scope, grant) = redeem_refresh(s, &client_id, &p)?;
            (resource, scope, grant, true)
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported (authorization_code, refresh_token)"
                ),
            ));
        }
    };

    let ttl = s.config.access_token_ttl;
    let access_token = s
        .keys
        .token(&resource)
        .subject(DEMO_SUBJECT)
        .client_id(&client_id)
        .scopes(scope.split(' ').filter(|x| !x.is_empty()))
        .expires_in(ttl)
        .sign();
    let refresh_token = client_grants.iter().any(|g| g == "refresh_token").then(|| {
        let rt = format!("rt-{}", random_token(32));
        let mut st = s.lock();
        let now = Instant::now();
        st.refresh_tokens.retain(|_, r| r.expires > now);
        st.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client_id.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                expires: now + s.config.refresh_token_ttl,
                retired: false,
                grant,
            },
        );
        rt
    });
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
    });
    if let Some(rt) = &refresh_token {
        body["refresh_token"] = rt.clone().into();
    }
    let key = s.keys.signing_key();
    let mut resp = (StatusCode::OK, no_store(), axum::Json(body)).into_response();
    resp.extensions_mut().insert(Detail::Token(TokenIssued {
        grant_type: grant_type.clone(),
        client_id,
        access_token: redact(&access_token),
        alg: format!("{:?}", key.alg()),
        kid: key.kid().to_owned(),
        audience: resource,
        scope,
        expires_in: ttl.as_secs(),
        refresh_token: refresh_token.as_deref().map(redact),
        rotated,
    }));
    Ok(resp)
}

/// Client authentication (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`,
/// or a public client naming itself. Returns the client id.
pub(super) fn authenticate(
    s: &DevAuthServer,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let fail = |d: String, basic_used: bool| {
        let mut e = OAuthError::new("invalid_client", d);
        e.basic_challenge = basic_used;
        e
    };
    let (client_id, secret, basic_used) = if let Some(b64) = basic {
        let decoded = STANDARD
            .decode(b64.as_bytes())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| fail("malformed Basic credentials".into(), true))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| fail("malformed Basic credentials".into(), true))?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded.
        let dec = |x: &str| {
            url::form_urlencoded::parse(format!("x={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if p.contains_key("client_secret") {
            return Err(fail(
                "use one client authentication method, not two".into(),
                true,
            ));
        }
        if let Some(form_id) = p.get("client_id")
            && *form_id != dec(id)
        {
            return Err(fail(
                "client_id differs from the Basic credentials".into(),
                true,
            ));
        }
        (dec(id), Some(dec(secret)), true)
    } else {
        let id = p.get("client_id").cloned().ok_or_else(|| {
            OAuthError::new(
                "invalid_request",
                "client_id is missing (and no Basic credentials)",
            )
        })?;
        (id, p.get("client_secret").cloned(), false)
    };
    let client = s.client(&client_id).ok_or_else(|| {
        fail(
            format!(
                "unknown client {client_id:?} (confidential clients are kept in memory: after a \
                 restart, register again)"
            ),
            basic_used,
        )
    })?;
    match (&client.secret_hash, secret.as_deref()) {
        (None, None) => Ok(client_id),
        // Some public clients send an empty secret with Basic.
        (None, Some("")) => Ok(client_id),
        (None, Some(_)) => Err(fail(
            "this client is public (token_endpoint_auth_method none): it has no secret".into(),
            basic_used,
        )),
        (Some(_), None) => Err(fail(
            format!(
                "client {client_id:?} must authenticate ({})",
                client.auth_method
            ),
            basic_used,
        )),
        (Some(hash), Some(given)) if sha256(given) == *hash => Ok(client_id),
        (Some(_), Some(_)) => Err(fail("wrong client secret".into(), basic_used)),
    }
}

pub(super) fn redeem_code(
    s: &DevAuthServer,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<(String, String, u64), OAuthError> {
    let code = p
        .get("code")
        .ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
    let verifier = p.get("code_verifier").ok_or_else(|| {
        OAuthError::new(
            "invalid_request",
            "code_verifier is missing: PKCE is required",
        )
    })?;
    let mut st = s.lock();
    let Some(c) = st.codes.get_mut(code) else {
        return Err(OAuthError::new(
            "invalid_grant",
            "unknown or expired authorization code",
        ));
    };
    if c.used {
        // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
        let grant = c.grant;
        st.revoked.insert(grant, true);
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code was already used; the tokens issued from it are revoked",
        ));
    }
    if c.expires <= Instant::now() {
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code expired",
        ));
    }
    if c.client_id != client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the authorization code was issued to another client",
        ));
    }
    if let Some(r) = p.get("redirect_uri")
        && *r != c.redirect_uri
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| is_b64url(b) || b == b'.' || b == b'~')
    {
        return Err(OAuthError::new(
            "invalid_grant",
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier));
    if computed != c.code_challenge {
        return Err(OAuthError::new(
            "invalid_grant",
            "PKCE verification failed: BASE64URL(SHA256(code_verifier)) != code_challenge",
        ));
    }
    if let Some(r) = p.get("resource")
        && *r != c.resource
    {
        return Err(OAuthError::new(
            "invalid_target",
            format!(
                "resource {r:?} differs from the authorized resource {:?}",
                c.resource
            ),
        ));
    }
    c.used = true;
    Ok((c.resource.clone(), c.scope.clone(), c.grant))
}

pub(super) fn redeem_refresh(
    s: &DevAuthServer,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<(String, String, u64), OAuthError> {
    let rt = p
        .get("refresh_token")
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
    let mut st = s.lock();
    let Some(r) = st.refresh_tokens.get_mut(rt) else {
        return Err(OAuthError::new(
            "invalid_grant",
            "unknown or expired refresh token",
        ));
    };
    if r.client_id != client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    if r.retired {
        // Reuse of a rotated refresh token: someone has a copy. Revoke the grant.
        let grant = r.grant;
        st.revoked.insert(grant, true);
        return Err(OAuthError::new(
            "invalid_grant",
            "this refresh token was already used (rotation); the grant is revoked",
        ));
    }
    if r.expires <= Instant::now() {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token expired",
        ));
    }
    let (resource, granted, grant) = (r.resource.clone(), r.scope.clone(), r.grant);
    if st.revoked.get(&grant).copied().unwrap_or(false) {
        return Err(OAuthError::new("invalid_grant", "the grant was revoked"));
    }
    if let Some(res) = p.get("resource")
        && *res != resource
    {
        return Err(OAuthError::new(
            "invalid_target",
            format!("resource {res:?} differs from the grant's {resource:?}"),
        ));
    }
    let scope = match p.get("scope") {
        None => granted,
        Some(req) => {
            let have: Vec<&str> = granted.split(' ').collect();
            if let Some(extra) = req.split(' ').find(|x| !x.is_empty() && !have.contains(x)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("scope {extra:?} was not granted; a refresh can only narrow the scope"),
                ));
            }
            req.split(' ')
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if let Some(r) = st.refresh_tokens.get_mut(rt) {
        r.retired = true;
    }
    Ok((resource, scope, grant))
}

// ---------------------------------------------------------------- helpers
