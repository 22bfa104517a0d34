//! `doctor` against a seed server shaped like the MCP Python SDK + oidc-provider pair, and
//! variants no real server produces on demand: each snapshot is the human report (ports
//! normalised), and the key verdicts are asserted on the typed report too.
//!
//! The probing and the verdicts are the library's (`mcp_oauth::doctor`); the text is the
//! command line's, so these tests live here. `render.rs` uses nothing of the command line,
//! so it is compiled here on its own.

#[path = "../src/commands/doctor/render.rs"]
mod render;

use mcp_oauth::OAuthConfig;
use mcp_oauth::doctor::{self, DoctorReport, Level};
use mcp_oauth::http::{HttpClient, HttpPolicy};
use mcp_oauth_testkit::mock_server::{MockServer, json, not_found, text};
use render::{Style, render};
use serde_json::json;

/// What the two servers (MCP + authorization server) do.
#[derive(Clone)]
struct Seed {
    /// The `resource_metadata` parameter: `Abs` the absolute URL of `prm_at`, `Rel` the
    /// same path relative, `None` no parameter.
    header: Header,
    /// Where the PRM is served: path-inserted and/or root.
    prm_path: bool,
    prm_root: bool,
    /// `None`: correct `<mcp>/mcp`.
    prm_resource: Option<String>,
    /// Issuer path ("" or "/tenant1").
    issuer_path: &'static str,
    /// Spell the issuer in the PRM with a trailing slash.
    prm_issuer_slash: bool,
    rfc8414: bool,
    oidc_inserted: bool,
    oidc_appended: bool,
    s256: Option<Vec<&'static str>>,
    registration: bool,
    /// GET /mcp is challenged too (the SDK does).
    get_challenged: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Header {
    Abs,
    Rel,
    None,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            header: Header::Abs,
            prm_path: true,
            prm_root: false,
            prm_resource: None,
            issuer_path: "",
            prm_issuer_slash: false,
            rfc8414: true,
            oidc_inserted: true,
            oidc_appended: false,
            s256: Some(vec!["S256"]),
            registration: true,
            get_challenged: true,
        }
    }
}

struct World {
    mcp: MockServer,
    auth: MockServer,
}

async fn start(seed: Seed) -> World {
    let s = seed.clone();
    let auth = MockServer::start(move |base, req| {
        let s = s.clone();
        async move {
            let issuer = format!("{base}{}", s.issuer_path);
            let meta = {
                let mut m = json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/auth"),
                    "token_endpoint": format!("{issuer}/token"),
                    "revocation_endpoint": format!("{issuer}/token/revocation"),
                    "response_types_supported": ["code"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "scopes_supported": ["openid", "offline_access"],
                    "authorization_response_iss_parameter_supported": true,
                });
                if let Some(v) = &s.s256 {
                    m["code_challenge_methods_supported"] = json!(v);
                }
                if s.registration {
                    m["registration_endpoint"] = json!(format!("{issuer}/reg"));
                }
                m
            };
            let p = s.issuer_path;
            let path = req.path.as_str();
            if s.rfc8414 && path == format!("/.well-known/oauth-authorization-server{p}") {
                return json(200, meta);
            }
            if s.oidc_inserted && path == format!("/.well-known/openid-configuration{p}") {
                return json(200, meta);
            }
            if s.oidc_appended
                && !p.is_empty()
                && path == format!("{p}/.well-known/openid-configuration")
            {
                return json(200, meta);
            }
            json(404, json!({"error": "not_found"}))
        }
    });
    let as_issuer = format!(
        "{}{}{}",
        auth.base(),
        seed.issuer_path,
        if seed.prm_issuer_slash { "/" } else { "" }
    );
    let s = seed.clone();
    let mcp = MockServer::start(move |base, req| {
        let s = s.clone();
        let as_issuer = as_issuer.clone();
        async move {
            let prm = json!({
                "resource": s.prm_resource.clone().unwrap_or_else(|| format!("{base}/mcp")),
                "authorization_servers": [as_issuer],
                "scopes_supported": ["mcp:tools"],
                "bearer_methods_supported": ["header"],
            });
            match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/.well-known/oauth-protected-resource/mcp") if s.prm_path => {
                    json(200, prm)
                }
                ("GET", "/.well-known/oauth-protected-resource") if s.prm_root => json(200, prm),
                (m, "/mcp") if m == "POST" || (m == "GET" && s.get_challenged) => {
                    let where_ = if s.prm_path {
                        "/.well-known/oauth-protected-resource/mcp"
                    } else {
                        "/.well-known/oauth-protected-resource"
                    };
                    let www = match s.header {
                        Header::Abs => format!(
                            "Bearer error=\"invalid_token\", error_description=\"Authentication required\", \
                             resource_metadata=\"{base}{where_}\""
                        ),
                        Header::Rel => format!(
                            "Bearer error=\"invalid_token\", resource_metadata=\"{where_}\""
                        ),
                        Header::None => "Bearer realm=\"mcp\"".to_string(),
                    };
                    let mut r = json(401, json!({"error": "invalid_token"}));
                    r.headers_mut()
                        .insert("www-authenticate", www.parse().unwrap());
                    r
                }
                ("GET", "/mcp") => text(405, "text/plain", "method not allowed"),
                _ => not_found(),
            }
        }
    });
    World { mcp, auth }
}

async fn diagnose(seed: Seed) -> (DoctorReport, String) {
    let w = start(seed).await;
    let http = HttpClient::new(HttpPolicy::default()).unwrap();
    let cfg = OAuthConfig::new(format!("{}/mcp", w.mcp.base()));
    let report = doctor::diagnose(&http, &cfg).await;
    let mut text = render(&report, Style::default())
        .replace(w.mcp.base(), "http://127.0.0.1:<MCP>")
        .replace(w.auth.base(), "http://127.0.0.1:<AS>");
    // The redirect URI's port is derived from the server URL, whose port is random here.
    if let Some(uri) = report
        .registration
        .as_ref()
        .and_then(|r| r.redirect_uri.as_ref())
    {
        text = text.replace(uri.as_str(), "http://127.0.0.1:<REDIRECT>/callback");
    }
    (report, text)
}

fn verdict<'a>(r: &'a DoctorReport, behaviour_prefix: &str) -> &'a doctor::ClientVerdict {
    r.clients
        .iter()
        .find(|v| v.behaviour.starts_with(behaviour_prefix))
        .unwrap_or_else(|| panic!("no verdict {behaviour_prefix:?} in {:#?}", r.clients))
}

fn fails(r: &DoctorReport, step: &str) -> bool {
    r.checks
        .iter()
        .any(|c| c.step == step && c.level == Level::Fail)
}

#[tokio::test]
async fn seed_server_path_only_prm() {
    let (r, text) = diagnose(Seed::default()).await;
    insta::assert_snapshot!("seed", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(verdict(&r, "follows the spec").works);
    let root = verdict(&r, "ignores resource_metadata and probes only the root");
    assert!(!root.works);
    assert!(root.why.contains("root answers HTTP 404"), "{}", root.why);
    assert_eq!(
        root.fix.as_deref(),
        Some("also serve the PRM at /.well-known/oauth-protected-resource")
    );
    let auth = r.prm.iter().filter(|c| c.authoritative).count();
    assert_eq!(auth, 1);
    assert!(r.prm[0].authoritative, "the header's URL is authoritative");
}

#[tokio::test]
async fn root_only_prm() {
    let (r, text) = diagnose(Seed {
        prm_path: false,
        prm_root: true,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("root_only_prm", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(verdict(&r, "ignores resource_metadata and probes only the root").works);
}

#[tokio::test]
async fn relative_resource_metadata() {
    let (r, text) = diagnose(Seed {
        header: Header::Rel,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("relative_resource_metadata", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(r.challenge.resource_metadata_resolved.is_some());
    assert!(!verdict(&r, "does not resolve a relative resource_metadata").works);
    assert!(r.prm[0].authoritative && r.prm[0].valid);
}

#[tokio::test]
async fn no_resource_metadata_parameter() {
    let (r, text) = diagnose(Seed {
        header: Header::None,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("no_header_parameter", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(!verdict(&r, "relies only on resource_metadata").works);
    assert!(verdict(&r, "follows the spec").works);
    assert!(
        r.checks
            .iter()
            .any(|c| c.step == "prm" && c.level == Level::Warn)
    );
}

#[tokio::test]
async fn wrong_resource_is_a_must_violation() {
    let (r, text) = diagnose(Seed {
        prm_resource: Some("https://other.example.com/mcp".into()),
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("wrong_resource", text);
    assert!(fails(&r, "resource"), "{text}");
    assert!(
        r.authorization_servers.is_empty(),
        "a correct client stops at the PRM"
    );
    assert!(!verdict(&r, "follows the spec").works);
}

#[tokio::test]
async fn oidc_only_authorization_server() {
    let (r, text) = diagnose(Seed {
        rfc8414: false,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("oidc_only_as", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(!verdict(&r, "tries only RFC 8414").works);
    assert!(verdict(&r, "tries only OpenID Connect").works);
}

#[tokio::test]
async fn issuer_with_a_path() {
    let (r, text) = diagnose(Seed {
        issuer_path: "/tenant1",
        rfc8414: false,
        oidc_inserted: false,
        oidc_appended: true,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("issuer_with_path", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    let cands = &r.authorization_servers[0].candidates;
    assert_eq!(cands.len(), 3, "three candidates for an issuer with a path");
    assert!(cands[2].used && cands[2].valid);
    assert!(verdict(&r, "appends the well-known suffix").works);
    assert!(
        !verdict(
            &r,
            "looks for authorization server metadata only at the MCP"
        )
        .works
    );
}

#[tokio::test]
async fn no_registration_endpoint() {
    let (r, text) = diagnose(Seed {
        registration: false,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("no_registration_endpoint", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(r.checks.iter().any(|c| {
        c.step == "registration"
            && c.message
                .contains("no registration endpoint and no CIMD: clients need pre-registration")
    }));
    assert!(!verdict(&r, "needs Dynamic Client Registration").works);
}

#[tokio::test]
async fn missing_pkce_metadata_is_a_must_violation() {
    let (r, text) = diagnose(Seed {
        s256: None,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("no_pkce_metadata", text);
    assert!(fails(&r, "pkce"), "{text}");
    assert!(!verdict(&r, "refuses an authorization server without S256").works);
}

#[tokio::test]
async fn issuer_trailing_slash_in_prm() {
    let (r, text) = diagnose(Seed {
        prm_issuer_slash: true,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("issuer_trailing_slash", text);
    assert_eq!(r.must_violations(), 0, "{text}");
    assert!(
        text.contains("issuer differs from PRM by a trailing slash"),
        "{text}"
    );
    assert!(!verdict(&r, "compares the issuer strictly").works);
}

#[tokio::test]
async fn only_post_is_challenged() {
    let (r, text) = diagnose(Seed {
        get_challenged: false,
        ..Default::default()
    })
    .await;
    insta::assert_snapshot!("post_only_challenge", text);
    let v = verdict(&r, "sends a GET");
    assert!(!v.works && v.why.contains("405"), "{}", v.why);
}
