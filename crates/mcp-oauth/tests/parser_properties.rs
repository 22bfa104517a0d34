//! Property tests for every parser of network input (issue #7), next to the fuzz targets
//! in `fuzz/`: "never panics" on arbitrary input, and `parse(format(x)) == x` wherever a
//! formatter exists. (The `WWW-Authenticate` parser has its own in `src/challenge.rs`.)

use mcp_oauth::Step;
use mcp_oauth::authorize::CallbackParams;
use mcp_oauth::client_auth::ClientAuthMethod;
use mcp_oauth::config::PkceMetadataPolicy;
use mcp_oauth::discovery::as_metadata::{self, AuthServerMetadata};
use mcp_oauth::discovery::prm::{self, ProtectedResourceMetadata};
use mcp_oauth::discovery::trace::DiscoveryTrace;
use mcp_oauth::mcp::sse::{SseEvent, SseParser};
use mcp_oauth::netpolicy::{AddressPolicy, ServerZone, classify_ip, decide};
use mcp_oauth::registration::parse_registration_response;
use mcp_oauth::secret::AuthorizationCode;
use mcp_oauth::token::parse_token_response;
use mcp_oauth_proxy::fuzzing::{Framed, frame_lines, frame_lines_reference, parse_message};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};

fn text() -> impl Strategy<Value = String> {
    // Printable and not: quotes, backslashes, non-ASCII, controls.
    "[a-zA-Z0-9 :/._?&=%#\"\\\\é€\u{1}\u{7f}-]{0,24}"
}

fn opt_list() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(prop::collection::vec(text(), 0..4))
}

fn prm_strategy() -> impl Strategy<Value = ProtectedResourceMetadata> {
    (
        text(),
        prop::collection::vec(text(), 0..3),
        opt_list(),
        opt_list(),
        prop::option::of(text()),
        opt_list(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(resource, servers, scopes, bearer, name, dpop_algs, dpop_req)| {
                ProtectedResourceMetadata {
                    resource,
                    authorization_servers: servers,
                    scopes_supported: scopes,
                    bearer_methods_supported: bearer,
                    resource_name: name,
                    dpop_signing_alg_values_supported: dpop_algs,
                    dpop_bound_access_tokens_required: dpop_req,
                }
            },
        )
}

fn as_strategy() -> impl Strategy<Value = AuthServerMetadata> {
    (
        (
            text(),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
        ),
        (
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
        ),
        (
            opt_list(),
            opt_list(),
            opt_list(),
            opt_list(),
            opt_list(),
            opt_list(),
        ),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |((issuer, a, t, r), (rev, dev, jwks), (sc, rt, gt, cc, am, dp), (iss, cimd))| {
                AuthServerMetadata {
                    issuer,
                    authorization_endpoint: a,
                    token_endpoint: t,
                    registration_endpoint: r,
                    revocation_endpoint: rev,
                    device_authorization_endpoint: dev,
                    jwks_uri: jwks,
                    scopes_supported: sc,
                    response_types_supported: rt,
                    grant_types_supported: gt,
                    code_challenge_methods_supported: cc,
                    token_endpoint_auth_methods_supported: am,
                    authorization_response_iss_parameter_supported: iss,
                    client_id_metadata_document_supported: cimd,
                    dpop_signing_alg_values_supported: dp,
                    ..Default::default()
                }
            },
        )
}

fn sse_event() -> impl Strategy<Value = SseEvent> {
    (
        "[a-z/]{1,10}",
        prop::collection::vec("[^\r\n]{0,12}", 1..4),
        prop::option::of("[a-z0-9]{1,6}"),
    )
        .prop_map(|(event, lines, id)| SseEvent {
            event,
            data: lines.join("\n"),
            id,
        })
}

fn format_sse(events: &[SseEvent]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!("event: {}\n", e.event));
        if let Some(id) = &e.id {
            out.push_str(&format!("id: {id}\n"));
        }
        for line in e.data.split('\n') {
            out.push_str(&format!("data: {line}\n"));
        }
        out.push('\n');
    }
    out
}

fn parse_sse(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c));
    }
    out.extend(p.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // ---- Protected Resource Metadata --------------------------------------------------

    #[test]
    fn prm_parse_format_round_trip(m in prm_strategy()) {
        let text = serde_json::to_vec(&m).unwrap();
        prop_assert_eq!(serde_json::from_slice::<ProtectedResourceMetadata>(&text).unwrap(), m);
    }

    #[test]
    fn prm_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), s in ".{0,80}") {
        if let Ok(m) = serde_json::from_slice::<ProtectedResourceMetadata>(&bytes) {
            let _ = prm::check(&m, "https://mcp.example.com/mcp");
        }
        let mut t = DiscoveryTrace::default();
        let c = prm::candidates("https://mcp.example.com/a/mcp", Some(&s), &mut t).unwrap();
        prop_assert!(!c.is_empty());
        let _ = prm::resource_matches(&s, "https://mcp.example.com/mcp");
    }

    // ---- Authorization server metadata ------------------------------------------------

    #[test]
    fn as_metadata_parse_format_round_trip(m in as_strategy()) {
        let text = serde_json::to_vec(&m).unwrap();
        prop_assert_eq!(serde_json::from_slice::<AuthServerMetadata>(&text).unwrap(), m);
    }

    #[test]
    fn as_metadata_parsing_never_panics(m in as_strategy(), s in ".{0,80}") {
        let _ = as_metadata::validate(&m, "https://as.example.com/x", PkceMetadataPolicy::Require);
        let _ = as_metadata::validate(&m, "https://as.example.com/x", PkceMetadataPolicy::AllowMissing);
        let _ = as_metadata::candidates(&s);
        let _ = as_metadata::issuer_matches(&s, &m.issuer);
        let _ = as_metadata::require_https("x", &s);
    }

    // ---- Dynamic Client Registration responses ----------------------------------------

    #[test]
    fn dcr_response_parse_format_round_trip(
        client_id in "[!-~]{1,20}",
        secret in prop::option::of("[!-~]{0,20}"),
        expires in prop::option::of(any::<u64>()),
        method in prop::option::of(prop::sample::select(ClientAuthMethod::ALL.to_vec())),
        status in prop::sample::select(vec![200u16, 201]),
    ) {
        let mut body = json!({"client_id": client_id});
        if let Some(s) = &secret { body["client_secret"] = json!(s); }
        if let Some(e) = expires { body["client_secret_expires_at"] = json!(e); }
        if let Some(m) = method { body["token_endpoint_auth_method"] = json!(m.as_str()); }
        let reg = parse_registration_response(
            "https://as", "https://as/register", "http://127.0.0.1:1/cb", ClientAuthMethod::None, &[], status,
            body.to_string().as_bytes(),
        ).unwrap();
        prop_assert_eq!(&reg.client_id, &client_id);
        prop_assert_eq!(reg.client_secret.as_ref().map(|s| s.expose().to_string()), secret.filter(|s| !s.is_empty()));
        prop_assert_eq!(reg.client_secret_expires_at, expires);
        if let Some(m) = method { prop_assert_eq!(reg.token_endpoint_auth_method, m); }
    }

    #[test]
    fn dcr_response_with_a_method_we_do_not_implement(method in "[a-z_]{1,20}") {
        prop_assume!(method.parse::<ClientAuthMethod>().is_err());
        let body = json!({"client_id": "c", "token_endpoint_auth_method": method});
        let e = parse_registration_response(
            "https://as", "https://as/register", "http://127.0.0.1:1/cb", ClientAuthMethod::None, &[], 201,
            body.to_string().as_bytes(),
        ).unwrap_err();
        let shown = format!("token_endpoint_auth_method {method} is not supported");
        prop_assert!(e.to_string().contains(&shown), "{}", e);
    }

    #[test]
    fn dcr_response_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..200), status in 100u16..600) {
        let _ = parse_registration_response("https://as", "https://as/register", "http://127.0.0.1:1/cb", ClientAuthMethod::None, &[], status, &body);
    }

    // ---- The OAuth callback ----------------------------------------------------------

    #[test]
    fn callback_parse_format_round_trip(
        code in prop::option::of(".{0,20}"),
        state in prop::option::of(".{0,20}"),
        iss in prop::option::of(".{0,20}"),
        error in prop::option::of(".{0,20}"),
        desc in prop::option::of(".{0,20}"),
    ) {
        let want = CallbackParams {
            code: code.clone().map(AuthorizationCode::new),
            state: state.clone(),
            iss: iss.clone(),
            error: error.clone(),
            error_description: desc.clone(),
            error_uri: None,
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("code", code), ("state", state), ("iss", iss), ("error", error), ("error_description", desc)] {
            if let Some(v) = v { q.append_pair(k, &v); }
        }
        let query = q.finish();
        prop_assert_eq!(CallbackParams::from_query(&query).unwrap(), want.clone());
        // The same, pasted as the redirect URL.
        let pasted = format!("http://127.0.0.1:5000/callback?{query}");
        prop_assert_eq!(CallbackParams::from_pasted(&pasted).unwrap(), want);
    }

    #[test]
    fn callback_parsing_never_panics(s in ".{0,120}") {
        let _ = CallbackParams::from_query(&s);
        let _ = CallbackParams::from_pasted(&s);
    }

    // ---- Token responses ---------------------------------------------------------------

    #[test]
    fn token_response_parse_format_round_trip(
        at in "[!-~]{1,30}",
        rt in prop::option::of("[!-~]{1,30}"),
        token_type in prop::option::of("[A-Za-z]{1,8}"),
        expires in prop::option::of(0u64..10_000_000),
        expires_as_string in any::<bool>(),
        scope in prop::option::of("[a-z: ]{0,20}"),
    ) {
        let mut body = json!({"access_token": at});
        if let Some(r) = &rt { body["refresh_token"] = json!(r); }
        if let Some(t) = &token_type { body["token_type"] = json!(t); }
        if let Some(e) = expires {
            body["expires_in"] = if expires_as_string { json!(e.to_string()) } else { json!(e) };
        }
        if let Some(s) = &scope { body["scope"] = json!(s); }
        let t = parse_token_response(Step::TokenExchange, "https://as/token", 200, body.to_string().as_bytes(), Some("req")).unwrap();
        prop_assert_eq!(t.access_token.expose(), at.as_str());
        prop_assert_eq!(t.refresh_token.as_ref().map(|r| r.expose().to_string()), rt);
        prop_assert_eq!(t.token_type, token_type.unwrap_or_else(|| "Bearer".into()));
        prop_assert_eq!(t.expires_at.map(|e| e - t.obtained_at), expires);
        prop_assert_eq!(t.scope, scope);
        prop_assert_eq!(t.requested_scope.as_deref(), Some("req"));
    }

    #[test]
    fn token_error_parse_format_round_trip(
        error in "[a-z_]{1,20}",
        desc in prop::option::of("[ -~]{0,30}"),
        status in prop::sample::select(vec![200u16, 400, 401]),
    ) {
        let mut body = json!({"error": error});
        if let Some(d) = &desc { body["error_description"] = json!(d); }
        let e = parse_token_response(Step::Refresh, "https://as/token", status, body.to_string().as_bytes(), None).unwrap_err();
        prop_assert_eq!(e.oauth_error(), Some(error.as_str()));
        match e {
            mcp_oauth::Error::OAuth { body, .. } => prop_assert_eq!(body.error_description, desc),
            other => prop_assert!(false, "{other}"),
        }
    }

    #[test]
    fn token_response_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..200), status in 100u16..600) {
        let _ = parse_token_response(Step::Refresh, "https://as/token", status, &body, None);
    }

    #[test]
    fn token_response_json_never_panics(v in json_value()) {
        let _ = parse_token_response(Step::Refresh, "https://as/token", 200, v.to_string().as_bytes(), None);
    }

    // ---- SSE -------------------------------------------------------------------------------

    #[test]
    fn sse_parse_format_round_trip(events in prop::collection::vec(sse_event(), 0..5), cut in 1usize..9) {
        let text = format_sse(&events);
        let mut want = events.clone();
        // `id` stays in effect for the events after it.
        let mut last = None;
        for e in &mut want {
            if e.id.is_some() { last = e.id.clone(); } else { e.id = last.clone(); }
        }
        prop_assert_eq!(parse_sse(&[text.as_bytes()]), want.clone());
        let pieces: Vec<&[u8]> = text.as_bytes().chunks(cut).collect();
        prop_assert_eq!(parse_sse(&pieces), want);
    }

    #[test]
    fn sse_parsing_never_panics_and_ignores_chunking(bytes in prop::collection::vec(any::<u8>(), 0..300), cut in 1usize..13) {
        let whole = parse_sse(&[&bytes]);
        let pieces: Vec<&[u8]> = bytes.chunks(cut).collect();
        prop_assert_eq!(parse_sse(&pieces), whole);
    }

    // ---- The proxy's JSON-RPC line framing ---------------------------------------------

    #[test]
    fn jsonrpc_framing_parse_format_round_trip(
        msgs in prop::collection::vec(json_value(), 0..6),
        crlf in any::<bool>(),
        pieces in prop::collection::vec(1usize..40, 0..5),
    ) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let input: String = msgs.iter().map(|m| format!("{m}{sep}")).collect();
        let framed = frame_lines(input.as_bytes(), 1 << 20, &pieces);
        let want: Vec<Framed> = msgs.iter().map(|m| Framed::Message(m.to_string().into_bytes())).collect();
        prop_assert_eq!(framed, want);
    }

    #[test]
    fn jsonrpc_framing_matches_the_reference(
        bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'{', b'}', b'"', b'\n', b'\r', b' ', 0xff]), 0..300),
        max in 1usize..40,
        pieces in prop::collection::vec(1usize..40, 0..5),
    ) {
        let want = frame_lines_reference(&bytes, max);
        prop_assert_eq!(frame_lines(&bytes, max, &pieces), want);
        for f in frame_lines_reference(&bytes, usize::MAX) {
            if let Framed::Message(m) = f { let _ = parse_message(&m); }
        }
    }

    #[test]
    fn jsonrpc_parsing_never_panics(v in json_value()) {
        let _ = parse_message(v.to_string().as_bytes());
    }

    // ---- The network policy ------------------------------------------------------------

    #[test]
    fn address_classes_agree_across_ipv4_and_mapped_ipv6(ip in any::<u32>()) {
        let v4 = Ipv4Addr::from(ip);
        let c = classify_ip(IpAddr::V4(v4));
        prop_assert_eq!(classify_ip(IpAddr::V6(v4.to_ipv6_mapped())), c);
        for zone in [ServerZone::Public, ServerZone::Private, ServerZone::Loopback] {
            let strict = decide(zone, c, AddressPolicy::Strict).is_ok();
            prop_assert!(!strict || decide(zone, c, AddressPolicy::AllowPrivateNetworks).is_ok());
        }
    }
}

/// Arbitrary JSON, JSON-RPC shaped often enough to reach the routing code.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z/ \"\\\\é]{0,10}".prop_map(Value::String),
    ];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        any_json.clone(),
        (any_json.clone(), prop::sample::select(vec!["initialize", "tools/call", "resources/read", "notifications/cancelled"]), any_json)
            .prop_map(|(id, method, params)| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})),
    ]
}
