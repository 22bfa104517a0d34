//! The development authorization server and the demo MCP server, over HTTP on loopback:
//! the protocol rules they enforce (and the errors they give), and the narrated run.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_oauth_demo::events::{Detail, Event, EventSink};
use mcp_oauth_demo::{DemoOptions, DemoServers};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

async fn start() -> DemoServers {
    DemoServers::start(&DemoOptions::default(), EventSink::none())
        .await
        .unwrap()
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce(seed: &str) -> Pkce {
    let verifier = format!("{seed:-<43}");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

const REDIRECT: &str = "http://127.0.0.1:45999/callback";

async fn register(s: &DemoServers, body: Value) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{}/register", s.issuer()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn public_client(s: &DemoServers) -> String {
    let (status, body) = register(
        s,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"], "client_name": "test"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

/// GET /authorize with `params`; the response status and its Location's query.
async fn authorize(
    s: &DemoServers,
    params: &[(&str, &str)],
) -> (StatusCode, HashMap<String, String>, String) {
    let r = http()
        .get(format!("{}/authorize", s.issuer()))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let query = location
        .split_once('?')
        .map(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    (status, query, location)
}

fn auth_params<'a>(client_id: &'a str, p: &'a Pkce, resource: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "mcp offline_access"),
        ("state", "st-123"),
        ("code_challenge", &p.challenge),
        ("code_challenge_method", "S256"),
        ("resource", resource),
    ]
}

async fn token(s: &DemoServers, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{}/token", s.issuer()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (status, r.json().await.unwrap())
}

async fn code_for(s: &DemoServers, client_id: &str, p: &Pkce) -> String {
    let (status, q, loc) = authorize(s, &auth_params(client_id, p, &s.mcp_url)).await;
    assert_eq!(status, StatusCode::FOUND, "{loc}");
    q["code"].clone()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn metadata_is_rfc8414_and_what_mcp_needs() {
    let s = start().await;
    let r = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            s.issuer()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], s.issuer());
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(m["scopes_supported"], json!(["mcp", "offline_access"]));
    assert_eq!(
        m["registration_endpoint"],
        format!("{}/register", s.issuer())
    );
    assert!(
        m["mcp_oauth_demo"]
            .as_str()
            .unwrap()
            .contains("DEVELOPMENT ONLY")
    );
    // Not an OpenID provider.
    let r = http()
        .get(format!("{}/.well-known/openid-configuration", s.issuer()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn registration_rules() {
    let s = start().await;
    for (body, error) in [
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1:1/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": "http://127.0.0.1:1/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, b) = register(&s, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {b}");
        assert_eq!(b["error"], error, "{body} → {b}");
    }
    // Public native client.
    let (status, b) = register(
        &s,
        json!({"redirect_uris": [REDIRECT, "http://localhost:3334/oauth/callback", "com.example.app:/cb"],
               "token_endpoint_auth_method": "none", "application_type": "native"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert!(b["client_id"].as_str().unwrap().starts_with("demo-"));
    assert!(b.get("client_secret").is_none());
    assert_eq!(b["grant_types"], json!(["authorization_code"]));
    assert_eq!(b["application_type"], "native", "metadata is echoed");
    // RFC 7591's default method: client_secret_basic, with a secret.
    let (status, b) = register(&s, json!({"redirect_uris": [REDIRECT]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(b["token_endpoint_auth_method"], "client_secret_basic");
    assert!(b["client_secret"].as_str().unwrap().len() > 20);
    assert_eq!(b["client_secret_expires_at"], 0);
    // Not JSON.
    let r = http()
        .post(format!("{}/register", s.issuer()))
        .form(&[("redirect_uris", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unverified_uri() {
    let s = start().await;
    let client = public_client(&s).await;
    let p = pkce("a");
    // Unknown client: an error page, no redirect.
    let mut params = auth_params("nobody", &p, &s.mcp_url);
    let (status, _, loc) = authorize(&s, &params).await;
    assert_eq!((status, loc.as_str()), (StatusCode::BAD_REQUEST, ""));
    // Redirect URI not registered (exact match: another port is another URI).
    params = auth_params(&client, &p, &s.mcp_url);
    params[2] = ("redirect_uri", "http://127.0.0.1:45998/callback");
    let (status, _, loc) = authorize(&s, &params).await;
    assert_eq!((status, loc.as_str()), (StatusCode::BAD_REQUEST, ""));
    // A repeated parameter.
    params = auth_params(&client, &p, &s.mcp_url);
    params.push(("client_id", &client));
    let (status, _, _) = authorize(&s, &params).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A change to the authorization request parameters.
type Edit = dyn Fn(&mut Vec<(&str, &str)>);

#[tokio::test]
async fn authorize_errors_go_back_with_state_and_iss() {
    let s = start().await;
    let client = public_client(&s).await;
    let p = pkce("b");
    let cases: Vec<(Box<Edit>, &str)> = vec![
        (
            Box::new(|v| v.retain(|(k, _)| *k != "code_challenge")),
            "invalid_request",
        ),
        (
            Box::new(|v| v.retain(|(k, _)| *k != "code_challenge_method")),
            "invalid_request",
        ),
        (
            Box::new(|v| v[6] = ("code_challenge_method", "plain")),
            "invalid_request",
        ),
        (
            Box::new(|v| v[5] = ("code_challenge", "short")),
            "invalid_request",
        ),
        (
            Box::new(|v| v.retain(|(k, _)| *k != "resource")),
            "invalid_target",
        ),
        (
            Box::new(|v| v[7] = ("resource", "http://127.0.0.1:1/other")),
            "invalid_target",
        ),
        (
            Box::new(|v| v[0] = ("response_type", "token")),
            "unsupported_response_type",
        ),
    ];
    for (edit, error) in cases {
        let mut params = auth_params(&client, &p, &s.mcp_url);
        edit(&mut params);
        let (status, q, loc) = authorize(&s, &params).await;
        assert_eq!(status, StatusCode::FOUND, "{params:?}");
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(q["error"], error, "{params:?} → {loc}");
        assert_eq!(q["state"], "st-123");
        assert_eq!(q["iss"], s.issuer());
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn code_flow_with_pkce_resource_and_rotating_refresh_tokens() {
    let s = start().await;
    let client = public_client(&s).await;
    let p = pkce("c");
    let (status, q, _) = authorize(&s, &auth_params(&client, &p, &s.mcp_url)).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], s.issuer(), "RFC 9207");
    let code = q["code"].clone();
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("code_verifier", verifier.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("client_id", client.clone()),
            ("resource", s.mcp_url.clone()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(s, &f).await
        }
    };
    // Wrong verifier, wrong resource, wrong redirect URI: refused (the code survives).
    let (st, b) = send(form(&code, &pkce("wrong").verifier)).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{b}"
    );
    let mut f = form(&code, &p.verifier);
    f[5].1 = "http://127.0.0.1:1/elsewhere".into();
    let (st, b) = send(f).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target")),
        "{b}"
    );
    let mut f = form(&code, &p.verifier);
    f[3].1 = "http://127.0.0.1:1/cb".into();
    let (_, b) = send(f).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");
    let mut f = form(&code, &p.verifier);
    f.retain(|(k, _)| *k != "code_verifier");
    let (_, b) = send(f).await;
    assert_eq!(b["error"], "invalid_request", "{b}");

    // Redeemed.
    let (st, t) = send(form(&code, &p.verifier)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "mcp offline_access");
    assert_eq!(t["expires_in"], 3600);
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], s.issuer());
    assert_eq!(c["aud"], s.mcp_url.as_str());
    assert_eq!(c["sub"], "demo-user");
    assert_eq!(c["client_id"], client.as_str());
    assert_eq!(c["scope"], "mcp offline_access");
    assert!(c["exp"].as_u64().unwrap() > c["iat"].as_u64().unwrap());
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();

    // Refresh: rotation.
    let refresh = |rt: &str, extra: Option<(&'static str, &'static str)>| {
        let mut f = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt.to_owned()),
            ("client_id", client.clone()),
        ];
        if let Some((k, v)) = extra {
            f.push((k, v.to_owned()));
        }
        f
    };
    let (_, b) = send(refresh(&rt1, Some(("scope", "mcp admin")))).await;
    assert_eq!(b["error"], "invalid_scope", "{b}");
    let (st, t2) = send(refresh(&rt1, Some(("scope", "mcp")))).await;
    assert_eq!(st, StatusCode::OK, "{t2}");
    assert_eq!(t2["scope"], "mcp", "a refresh may narrow the scope");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // The retired token presented again: reuse, the grant is revoked (rt2 dies too).
    let (_, b) = send(refresh(&rt1, None)).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");
    let (_, b) = send(refresh(&rt2, None)).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");

    // A code used twice: refused, and what it issued is revoked.
    let p2 = pkce("d");
    let code2 = code_for(&s, &client, &p2).await;
    let (st, t3) = send(form(&code2, &p2.verifier)).await;
    assert_eq!(st, StatusCode::OK);
    let (_, b) = send(form(&code2, &p2.verifier)).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");
    let (_, b) = send(refresh(t3["refresh_token"].as_str().unwrap(), None)).await;
    assert_eq!(b["error"], "invalid_grant", "{b}");

    // Unknown grant types.
    let (_, b) = token(&s, &[("grant_type", "password"), ("client_id", &client)]).await;
    assert_eq!(b["error"], "unsupported_grant_type", "{b}");
}

#[tokio::test]
async fn confidential_clients_authenticate() {
    let s = start().await;
    let (_, reg) = register(
        &s,
        json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"]}),
    )
    .await;
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let p = pkce("e");
    let exchange = |code: String, auth: Option<String>, post_secret: Option<&str>| {
        let s = &s;
        let verifier = p.verifier.clone();
        let post_secret = post_secret.map(str::to_owned);
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT.to_owned()),
            ];
            if let Some(sec) = post_secret {
                form.push(("client_id", id.to_owned()));
                form.push(("client_secret", sec));
            }
            let mut req = http().post(format!("{}/token", s.issuer())).form(&form);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status(), challenge, r.json::<Value>().await.unwrap())
        }
    };
    let basic =
        |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    // Wrong secret with Basic: 401 invalid_client and a Basic challenge.
    let code = code_for(&s, id, &p).await;
    let (st, ch, b) = exchange(code.clone(), Some(basic(id, "nope")), None).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(ch.unwrap().starts_with("Basic"));
    // No authentication at all.
    let (st, _, b) = exchange(code.clone(), None, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    // client_secret_basic.
    let (st, _, b) = exchange(code, Some(basic(id, secret)), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert!(
        b.get("refresh_token").is_none(),
        "refresh_token grant not registered"
    );
    // client_secret_post.
    let code = code_for(&s, id, &p).await;
    let (st, _, b) = exchange(code, None, Some(secret)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn mcp_server_is_the_seed() {
    let s = start().await;
    let h = http();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let post = |token: Option<String>| {
        let mut r = h
            .post(&s.mcp_url)
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    // 401 without a token: resource_metadata at the path-suffixed URL, no error.
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", s.mcp_origin);
    assert_eq!(
        r.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{prm_url}\", scope=\"mcp\"").as_str()
    );
    // A bad token: error="invalid_token".
    let r = post(Some("garbage".into())).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // The metadata at the path-suffixed URL only; the root is 404.
    let r = h.get(&prm_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["resource"], s.mcp_url.as_str());
    assert_eq!(m["authorization_servers"], json!([s.issuer()]));
    let r = h.get(s.root_prm_url()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // CORS for browser-based clients: preflight answered, challenge readable.
    let r = h
        .request(reqwest::Method::OPTIONS, &s.mcp_url)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let r = post(None).await.unwrap();
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("www-authenticate")
    );

    // A token from the dev AS works; one for another audience does not.
    let client = public_client(&s).await;
    let p = pkce("f");
    let code = code_for(&s, &client, &p).await;
    let (_, t) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &p.verifier),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
        ],
    )
    .await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let r = post(Some(at)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("mcp-session-id"));
}

#[tokio::test]
async fn events_name_every_exchange_without_secrets() {
    let (events, mut rx) = EventSink::channel();
    let s = DemoServers::start(&DemoOptions::default(), events)
        .await
        .unwrap();
    let client = public_client(&s).await;
    let p = pkce("g");
    let code = code_for(&s, &client, &p).await;
    let (_, t) = token(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &p.verifier),
            ("client_id", &client),
        ],
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        seen.push(ev);
    }
    let text = format!("{seen:?}");
    assert!(
        !text.contains(at) && !text.contains(rt) && !text.contains(&code),
        "{text}"
    );
    assert!(!text.contains(&p.verifier));
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Http(h) => Some(match h.detail {
                Detail::Registered(_) => "registered",
                Detail::Authorized(_) => "authorized",
                Detail::Token(_) => "token",
                _ => "other",
            }),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["registered", "authorized", "token"]);
}

#[tokio::test]
async fn narrated_run() {
    let mut out = Vec::new();
    let summary = mcp_oauth_demo::run(&DemoOptions::default(), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(summary.tools, ["echo", "whoami"], "{text}");
    let who: Value = serde_json::from_str(&summary.tool_result).unwrap();
    assert_eq!(who["sub"], "demo-user");
    assert_eq!(summary.root_probe_status, 404);
    assert!(text.lines().last().unwrap().contains("→ 404"), "{text}");
}
