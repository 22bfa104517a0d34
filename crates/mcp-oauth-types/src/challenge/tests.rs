//! Unit and property tests of the challenge parser.
#[test]
fn a_bearer_challenge_in_words() {
    let b = BearerChallenge {
        scope: Some("mcp".into()),
        resource_metadata: Some("https://h/.well-known/oauth-protected-resource".into()),
        ..Default::default()
    };
    assert_eq!(
        b.to_string(),
        r#"resource_metadata="https://h/.well-known/oauth-protected-resource", scope="mcp""#
    );
    assert_eq!(BearerChallenge::default().to_string(), "no parameters");
}

use super::*;
use proptest::prelude::*;

fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.to_owned(),
        token68: None,
        params: params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn t68(scheme: &str, token68: &str) -> Challenge {
    Challenge {
        scheme: scheme.to_owned(),
        token68: Some(token68.to_owned()),
        params: Vec::new(),
    }
}

fn parse1(field: &str) -> Result<Vec<Challenge>, ChallengeParseError> {
    parse_challenges(&[field])
}

fn lenient1(field: &str) -> (Vec<Challenge>, Vec<ChallengeParseError>) {
    parse_challenges_lenient(&[field])
}

fn offsets(errors: &[ChallengeParseError]) -> Vec<usize> {
    errors.iter().map(|e| e.offset).collect()
}

/// Well-formed headers, most of them as real servers send them.
#[test]
fn real_world_headers() {
    let cases: Vec<(&str, &str, Vec<Challenge>)> = vec![
        (
            "MCP seed server",
            r#"Bearer error="invalid_token", resource_metadata="http://localhost:8888/.well-known/oauth-protected-resource/mcp""#,
            vec![ch(
                "Bearer",
                &[
                    ("error", "invalid_token"),
                    (
                        "resource_metadata",
                        "http://localhost:8888/.well-known/oauth-protected-resource/mcp",
                    ),
                ],
            )],
        ),
        (
            "MCP TypeScript SDK",
            r#"Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:3000/.well-known/oauth-protected-resource/mcp""#,
            vec![ch(
                "Bearer",
                &[
                    ("error", "invalid_token"),
                    ("error_description", "Missing Authorization header"),
                    (
                        "resource_metadata",
                        "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                    ),
                ],
            )],
        ),
        (
            "GitHub",
            r#"Bearer realm="GitHub", error="invalid_token""#,
            vec![ch(
                "Bearer",
                &[("realm", "GitHub"), ("error", "invalid_token")],
            )],
        ),
        (
            "Microsoft (empty realm)",
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
            vec![ch(
                "Bearer",
                &[
                    ("realm", ""),
                    (
                        "authorization_uri",
                        "https://login.microsoftonline.com/common/oauth2/authorize",
                    ),
                    ("client_id", "00000003-0000-0000-c000-000000000000"),
                ],
            )],
        ),
        (
            "Basic then Bearer",
            r#"Basic realm="x", Bearer scope="a b""#,
            vec![
                ch("Basic", &[("realm", "x")]),
                ch("Bearer", &[("scope", "a b")]),
            ],
        ),
        ("scheme alone", "Negotiate", vec![ch("Negotiate", &[])]),
        (
            "token68 with padding",
            "Basic dXNlcjpwYXNz=",
            vec![t68("Basic", "dXNlcjpwYXNz=")],
        ),
        (
            "token68 with / + and double padding, then another challenge",
            "Negotiate a+b/c==, Bearer",
            vec![t68("Negotiate", "a+b/c=="), ch("Bearer", &[])],
        ),
        (
            "DPoP then Bearer",
            r#"DPoP algs="ES256 PS256", Bearer resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
            vec![
                ch("DPoP", &[("algs", "ES256 PS256")]),
                ch(
                    "Bearer",
                    &[(
                        "resource_metadata",
                        "https://x/.well-known/oauth-protected-resource/mcp",
                    )],
                ),
            ],
        ),
        (
            "relative resource_metadata",
            r#"Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp""#,
            vec![ch(
                "Bearer",
                &[(
                    "resource_metadata",
                    "/.well-known/oauth-protected-resource/mcp",
                )],
            )],
        ),
        (
            "uppercase names, BWS around '='",
            r#"BEARER RESOURCE_METADATA = "x""#,
            vec![ch("BEARER", &[("resource_metadata", "x")])],
        ),
        (
            "insufficient_scope (403)",
            r#"Bearer error="insufficient_scope", scope="files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error_description="Additional file write permission required""#,
            vec![ch(
                "Bearer",
                &[
                    ("error", "insufficient_scope"),
                    ("scope", "files:write"),
                    (
                        "resource_metadata",
                        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                    ),
                    (
                        "error_description",
                        "Additional file write permission required",
                    ),
                ],
            )],
        ),
        (
            "RFC 9110 §11.6.1 example (token value, escapes)",
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
            vec![
                ch(
                    "Newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", r#"Login to "apps""#),
                    ],
                ),
                ch("Basic", &[("realm", "simple")]),
            ],
        ),
        (
            "RFC 7616 Digest (commas inside quoted values)",
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5"#,
            vec![
                ch(
                    "Digest",
                    &[
                        ("realm", "http-auth@example.org"),
                        ("qop", "auth, auth-int"),
                        ("algorithm", "SHA-256"),
                        ("nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
                        ("opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
                    ],
                ),
                ch(
                    "Digest",
                    &[
                        ("realm", "http-auth@example.org"),
                        ("qop", "auth, auth-int"),
                        ("algorithm", "MD5"),
                    ],
                ),
            ],
        ),
        (
            "Keycloak",
            r#"Bearer realm="myrealm", error="invalid_token", error_description="Token verification failed""#,
            vec![ch(
                "Bearer",
                &[
                    ("realm", "myrealm"),
                    ("error", "invalid_token"),
                    ("error_description", "Token verification failed"),
                ],
            )],
        ),
        (
            "no space after commas",
            r#"Bearer realm="x",error="invalid_token",Basic realm="y""#,
            vec![
                ch("Bearer", &[("realm", "x"), ("error", "invalid_token")]),
                ch("Basic", &[("realm", "y")]),
            ],
        ),
        (
            "empty list elements",
            r#" , ,Bearer realm="x",, error="e" ,, Basic ,"#,
            vec![
                ch("Bearer", &[("realm", "x"), ("error", "e")]),
                ch("Basic", &[]),
            ],
        ),
        (
            "tabs as OWS/BWS and after the scheme",
            "Bearer\trealm\t=\t\"x\"\t,\terror=\"y\"",
            vec![ch("Bearer", &[("realm", "x"), ("error", "y")])],
        ),
        (
            "param right after a bare scheme and comma",
            r#"Bearer, realm="x""#,
            vec![ch("Bearer", &[("realm", "x")])],
        ),
        (
            "escapes: \\\" \\\\ and an escaped ordinary char",
            r#"Bearer error_description="a \"quoted\" word, a back\\slash and \x""#,
            vec![ch(
                "Bearer",
                &[(
                    "error_description",
                    r#"a "quoted" word, a back\slash and x"#,
                )],
            )],
        ),
        (
            "unquoted URL values (leniency)",
            "Bearer resource_metadata=https://x/y?a=b&c=d, error=invalid_token",
            vec![ch(
                "Bearer",
                &[
                    ("resource_metadata", "https://x/y?a=b&c=d"),
                    ("error", "invalid_token"),
                ],
            )],
        ),
        (
            "unquoted IPv6 URL (leniency)",
            "Bearer resource_metadata=http://[::1]:8080/.well-known/oauth-protected-resource",
            vec![ch(
                "Bearer",
                &[(
                    "resource_metadata",
                    "http://[::1]:8080/.well-known/oauth-protected-resource",
                )],
            )],
        ),
        (
            "single quotes are part of a token value",
            "Bearer realm='x'",
            vec![ch("Bearer", &[("realm", "'x'")])],
        ),
        (
            "non-ASCII in quoted and unquoted values",
            "Bearer error_description=\"café ☕ \\é\", realm=naïve",
            vec![ch(
                "Bearer",
                &[("error_description", "café ☕ é"), ("realm", "naïve")],
            )],
        ),
        (
            "whitespace in quoted value is kept; around elements it is not",
            "  Bearer   realm=\"  a  \"  ,  scope = \"x\"  ",
            vec![ch("Bearer", &[("realm", "  a  "), ("scope", "x")])],
        ),
        (
            "token68 with trailing whitespace",
            "Basic abc== , Bearer",
            vec![t68("Basic", "abc=="), ch("Bearer", &[])],
        ),
        (
            "a new challenge whose only content is a param named like a scheme",
            r#"Bearer realm="x", Basic =abc"#,
            // `token BWS "="` is always an auth-param, so `basic` is a param here.
            vec![ch("Bearer", &[("realm", "x"), ("basic", "abc")])],
        ),
    ];
    for (name, field, expected) in cases {
        let parsed = parse1(field).unwrap_or_else(|e| panic!("{name}: {field:?}: {e}"));
        assert_eq!(parsed, expected, "{name}: {field:?}");
        let (lenient, errors) = lenient1(field);
        assert_eq!(lenient, expected, "{name} (lenient)");
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn empty_inputs_give_no_challenges() {
    assert_eq!(parse_challenges::<&str>(&[]), Ok(vec![]));
    assert_eq!(parse1(""), Ok(vec![]));
    assert_eq!(parse1("  ,  ,, "), Ok(vec![]));
    assert_eq!(parse_challenges(&["", " "]), Ok(vec![]));
}

#[test]
fn several_fields() {
    let fields = [
        r#"DPoP algs="ES256""#,
        r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource""#,
        "Basic realm=\"b\", Negotiate",
    ];
    assert_eq!(
        parse_challenges(&fields),
        Ok(vec![
            ch("DPoP", &[("algs", "ES256")]),
            ch(
                "Bearer",
                &[(
                    "resource_metadata",
                    "https://x/.well-known/oauth-protected-resource"
                )]
            ),
            ch("Basic", &[("realm", "b")]),
            ch("Negotiate", &[]),
        ])
    );
    // Owned strings work too.
    let owned: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    assert_eq!(parse_challenges(&owned).unwrap().len(), 4);
}

#[test]
fn param_name_inside_a_quoted_value_is_not_a_param() {
    let field = r#"Bearer error_description="see resource_metadata=\"http://evil\"""#;
    let parsed = parse1(field).unwrap();
    assert_eq!(
        parsed,
        vec![ch(
            "Bearer",
            &[(
                "error_description",
                r#"see resource_metadata="http://evil""#
            )]
        )]
    );
    let b = bearer(&parsed).unwrap();
    assert_eq!(b.resource_metadata, None);
    assert_eq!(
        b.error_description.as_deref(),
        Some(r#"see resource_metadata="http://evil""#)
    );

    // Also when the injected text looks like a whole list element.
    let field = r#"Bearer error_description="x\", resource_metadata=\"http://evil", realm="r""#;
    let b = bearer(&parse1(field).unwrap()).unwrap();
    assert_eq!(b.resource_metadata, None);
    assert_eq!(b.realm.as_deref(), Some("r"));
}

#[test]
fn unescaped_quote_in_a_value_does_not_inject_a_param() {
    // A server that forgot to escape: the value ends at the inner quote, the rest is
    // junk glued to it (no comma), so the element is reported and dropped.
    let field = r#"Bearer error_description="bad "resource_metadata="http://evil", realm="r""#;
    let (parsed, errors) = lenient1(field);
    let b = bearer(&parsed).unwrap();
    assert_eq!(b.resource_metadata, None);
    assert_eq!(b.error_description, None);
    assert_eq!(b.realm.as_deref(), Some("r"));
    assert_eq!(
        offsets(&errors),
        vec![field.find("resource_metadata").unwrap()]
    );
    assert!(parse1(field).is_err());
}

#[test]
fn missing_comma_between_params_is_an_error() {
    let field = r#"Bearer realm="x" error="y", scope="s""#;
    let (parsed, errors) = lenient1(field);
    assert_eq!(parsed, vec![ch("Bearer", &[("scope", "s")])]);
    assert_eq!(offsets(&errors), vec![17]);
    assert_eq!(parse1(field).unwrap_err().offset, 17);

    // An unquoted multi-word value is not split into params either.
    let field = "Bearer error_description=see resource_metadata=http://evil";
    let (parsed, errors) = lenient1(field);
    assert_eq!(parsed, vec![ch("Bearer", &[])]);
    assert_eq!(offsets(&errors), vec![29]);
}

#[test]
fn duplicate_params_first_wins() {
    let field =
        r#"Bearer resource_metadata="https://good", RESOURCE_METADATA="https://evil", realm="r""#;
    let (parsed, errors) = lenient1(field);
    assert_eq!(
        parsed,
        vec![ch(
            "Bearer",
            &[("resource_metadata", "https://good"), ("realm", "r")]
        )]
    );
    assert_eq!(offsets(&errors), vec![41]);
    assert!(
        errors[0].message.contains("duplicate"),
        "{}",
        errors[0].message
    );
    assert_eq!(parse1(field).unwrap_err().offset, 41);
    // The same name in two different challenges is not a duplicate.
    assert!(parse1(r#"Basic realm="a", Bearer realm="b""#).is_ok());
}

#[test]
fn malformed_inputs_give_offsets() {
    // (input, error offsets, challenges kept by the lenient parser)
    let cases: Vec<(&str, Vec<usize>, Vec<Challenge>)> = vec![
        (r#"Bearer realm="x"#, vec![13], vec![ch("Bearer", &[])]),
        (r#"Bearer realm="abc\"#, vec![13], vec![ch("Bearer", &[])]),
        // BWS makes this `token BWS "=" ...`: a param named `bearer`, with no scheme before it.
        (r#"Bearer ="x""#, vec![0], vec![]),
        (
            r#"Bearer realm="x", ="y""#,
            vec![18],
            vec![ch("Bearer", &[("realm", "x")])],
        ),
        ("\"", vec![0], vec![]),
        ("\"\"", vec![0], vec![]),
        ("=", vec![0], vec![]),
        ("@", vec![0], vec![]),
        (r#"Bearer"x""#, vec![6], vec![]),
        (r#"realm="x""#, vec![0], vec![]),
        (
            r#"Basic abc=, realm="x""#,
            vec![12],
            vec![t68("Basic", "abc=")],
        ),
        // `realm=` then a comma is a token68 (the grammar says so); then a param follows it.
        (
            r#"Bearer realm=, error="x""#,
            vec![15],
            vec![t68("Bearer", "realm=")],
        ),
        (
            r#"Bearer realm = , error="x""#,
            vec![15],
            vec![ch("Bearer", &[("error", "x")])],
        ),
        ("Bearer realm==x", vec![13], vec![ch("Bearer", &[])]),
        (
            "Bearer realm=\"a\u{1}b\", error=\"e\"",
            vec![15],
            vec![ch("Bearer", &[("error", "e")])],
        ),
        (
            "Bearer realm=\"a\\\u{0}\"",
            vec![16],
            vec![ch("Bearer", &[])],
        ),
        ("Bearer realm=a\u{7f}b", vec![14], vec![ch("Bearer", &[])]),
        ("Basic abc def", vec![6], vec![ch("Basic", &[])]),
        (r#"Bearer realm="a"b"#, vec![16], vec![ch("Bearer", &[])]),
        // Recovery skips `"b"` as a quoted-string and resumes at the comma.
        (
            "Bearer realm=a\"b\", x=\"y\"",
            vec![14],
            vec![ch("Bearer", &[("x", "y")])],
        ),
        ("Bearer é", vec![7], vec![ch("Bearer", &[])]),
        ("Béarer realm=\"x\"", vec![1], vec![]),
        // One bad element; the challenges around it survive.
        (
            r#"Basic realm="a", Bearer error_description=Missing Authorization header, resource_metadata="https://x/prm""#,
            vec![50], // "Authorization": the value was the unquoted `Missing`
            vec![
                ch("Basic", &[("realm", "a")]),
                ch("Bearer", &[("resource_metadata", "https://x/prm")]),
            ],
        ),
        (
            r#"Basic realm="a", Evil@ x="y", Bearer resource_metadata="z""#,
            vec![21],
            vec![
                ch("Basic", &[("realm", "a")]),
                ch("Bearer", &[("resource_metadata", "z")]),
            ],
        ),
        // A param after a malformed scheme is not credited to the challenge before it.
        (
            r#"Basic realm="a", Evil@, resource_metadata="http://evil", Bearer"#,
            vec![21, 24],
            vec![ch("Basic", &[("realm", "a")]), ch("Bearer", &[])],
        ),
        // A comma inside an unterminated quoted-string does not restart parsing.
        (
            r#"Bearer realm="x, scope=y"#,
            vec![13],
            vec![ch("Bearer", &[])],
        ),
        // Quotes pair up as the grammar says: the quoted-string is `"x, resource_metadata="`
        // and the URL after it is junk, not a parameter.
        (
            r#"Bearer realm="x, resource_metadata="http://evil""#,
            vec![36],
            vec![ch("Bearer", &[])],
        ),
    ];
    for (field, want_offsets, want) in cases {
        let (parsed, errors) = lenient1(field);
        assert_eq!(offsets(&errors), want_offsets, "{field:?}: {errors:?}");
        assert_eq!(parsed, want, "{field:?}");
        let strict = parse1(field).expect_err(field);
        assert_eq!(strict.offset, want_offsets[0], "{field:?}");
        for e in &errors {
            assert!(field.is_char_boundary(e.offset), "{field:?} {e:?}");
            assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn error_messages_and_display() {
    let e = parse1(r#"Bearer realm="x"#).unwrap_err();
    assert_eq!(e.message, "unterminated quoted-string");
    assert_eq!(
        e.to_string(),
        "malformed WWW-Authenticate at byte 13: unterminated quoted-string"
    );
    let e = parse1("Bearer ,=x").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (8, "'=' without a parameter name")
    );
    let e = parse1("Bearer é").unwrap_err();
    assert!(e.message.contains("'é'"), "{}", e.message);
}

#[test]
fn token68_versus_param_at_the_end() {
    // `realm=` alone after the scheme is, by the grammar, a token68.
    assert_eq!(parse1("Bearer realm="), Ok(vec![t68("Bearer", "realm=")]));
    assert_eq!(
        parse1("Basic dXNlcjpwYXNz"),
        Ok(vec![t68("Basic", "dXNlcjpwYXNz")])
    );
    assert_eq!(
        parse1("Basic dXNlcjpwYXNz=, Basic realm=\"x\""),
        Ok(vec![
            t68("Basic", "dXNlcjpwYXNz="),
            ch("Basic", &[("realm", "x")])
        ])
    );
}

#[test]
fn malformed_field_does_not_lose_other_fields() {
    let fields = [r#"Bearer realm="x"#, r#"DPoP algs="ES256""#, "Basic \"oops"];
    let (parsed, errors) = parse_challenges_lenient(&fields);
    assert_eq!(
        parsed,
        vec![
            ch("Bearer", &[]),
            ch("DPoP", &[("algs", "ES256")]),
            ch("Basic", &[])
        ]
    );
    // Offsets are in `fields.join(", ")`.
    let combined = fields.join(", ");
    assert_eq!(offsets(&errors), vec![13, combined.rfind('"').unwrap()]);
    assert_eq!(&combined[errors[1].offset..], "\"oops");
    assert_eq!(parse_challenges(&fields).unwrap_err().offset, 13);

    // A field never continues the previous field's challenge.
    let (parsed, errors) = parse_challenges_lenient(&["Bearer", r#"realm="x""#]);
    assert_eq!(parsed, vec![ch("Bearer", &[])]);
    assert_eq!(offsets(&errors), vec![8]);
}

#[test]
fn typed_views() {
    let parsed = parse1(
        r#"Basic realm="b", DPoP algs="ES256", error="use_dpop_nonce", bearer realm="first", scope="a b", Bearer realm="second""#,
    )
    .unwrap();
    assert_eq!(
        bearer(&parsed),
        Some(BearerChallenge {
            realm: Some("first".into()),
            scope: Some("a b".into()),
            ..Default::default()
        })
    );
    let d = dpop(&parsed).unwrap();
    assert_eq!(d.error.as_deref(), Some("use_dpop_nonce"));
    assert_eq!(for_scheme(&parsed, "dpop"), Some(d));
    assert_eq!(parsed[1].param("ALGS"), Some("ES256"));
    assert!(parsed[1].is("DPOP"));
    assert_eq!(for_scheme(&parsed, "Negotiate"), None);
    assert_eq!(bearer(&parse1("Basic abc=").unwrap()), None);
    assert_eq!(bearer(&[]), None);

    // The MCP seed, as discovery reads it.
    let b = bearer(
        &parse1(r#"Bearer error="invalid_token", resource_metadata="http://localhost:8888/.well-known/oauth-protected-resource/mcp""#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(b.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        b.resource_metadata.as_deref(),
        Some("http://localhost:8888/.well-known/oauth-protected-resource/mcp")
    );
    assert_eq!(b.realm, None);

    // Uppercase everything.
    let b = bearer(&parse1(r#"BEARER RESOURCE_METADATA = "x""#).unwrap()).unwrap();
    assert_eq!(b.resource_metadata.as_deref(), Some("x"));

    // A token68 Bearer challenge has no parameters.
    assert_eq!(
        bearer(&parse1("Bearer abc").unwrap()),
        Some(BearerChallenge::default())
    );
}

#[test]
fn formatting() {
    let c = ch(
        "Bearer",
        &[
            ("error", "insufficient_scope"),
            ("error_description", r#"say "hi" \ bye"#),
            ("realm", ""),
        ],
    );
    let s = format_challenge(&c);
    assert_eq!(
        s,
        r#"Bearer error="insufficient_scope", error_description="say \"hi\" \\ bye", realm="""#
    );
    assert_eq!(c.to_string(), s);
    assert_eq!(parse1(&s), Ok(vec![c.clone()]));
    assert_eq!(format_challenge(&ch("Negotiate", &[])), "Negotiate");
    assert_eq!(
        format_challenge(&t68("Basic", "dXNlcjpwYXNz=")),
        "Basic dXNlcjpwYXNz="
    );
    let list = vec![
        ch("DPoP", &[("algs", "ES256")]),
        t68("Basic", "a=="),
        ch("Negotiate", &[]),
        c,
    ];
    let s = format_challenges(&list);
    assert!(
        s.starts_with(r#"DPoP algs="ES256", Basic a==, Negotiate, Bearer "#),
        "{s}"
    );
    assert_eq!(parse1(&s), Ok(list));
    assert_eq!(format_challenges(&[]), "");
}

#[test]
fn adversarial_inputs_are_fast_and_do_not_panic() {
    let n = 20_000;
    let inputs = [
        "\"".repeat(n),
        ",".repeat(n),
        "=".repeat(n),
        "\\".repeat(n),
        "a".repeat(n),
        "a ".repeat(n),
        "a=".repeat(n),
        "a=\"".repeat(n),
        format!("Bearer {}", "a".repeat(n)),
        format!("Bearer {}", "=".repeat(n)),
        format!("Bearer realm=\"{}", "\\\"".repeat(n)),
        format!(
            "Bearer {}",
            (0..n).map(|i| format!("p{i}=\"v\", ")).collect::<String>()
        ),
        format!("Bearer {}", "x=\"v\", ".repeat(n)),
        "é\"".repeat(n),
    ];
    let start = std::time::Instant::now();
    for input in &inputs {
        let (parsed, errors) = lenient1(input);
        for e in &errors {
            assert!(input.is_char_boundary(e.offset));
        }
        let _ = (parsed, errors);
    }
    // Linear work: well under a second even in debug builds (generous bound for CI).
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    let many = format!(
        "Bearer {}",
        (0..n).map(|i| format!("p{i}=\"v\", ")).collect::<String>()
    );
    assert_eq!(parse1(&many).unwrap()[0].params.len(), n);
    let dups = format!("Bearer {}", "x=\"v\", ".repeat(n));
    let (parsed, errors) = lenient1(&dups);
    assert_eq!(parsed[0].params.len(), 1);
    assert_eq!(errors.len(), n - 1);
}

// ---- property tests ----

fn scheme_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"
}

fn challenge_strategy() -> impl Strategy<Value = Challenge> {
    let name = "[a-z0-9!#$%&'*+.^_`|~-]{1,10}";
    // Printable values: anything but controls (spaces, quotes, backslashes, commas,
    // '=' and non-ASCII all included).
    let value = prop_oneof!["\\PC{0,16}", "[ -~]{0,16}", "[\"\\\\, =a]{0,8}",];
    let params = prop::collection::vec((name, value), 0..6).prop_map(|ps| {
        let mut seen = HashSet::new();
        ps.into_iter()
            .filter(|(n, _)| seen.insert(n.clone()))
            .collect::<Vec<_>>()
    });
    let with_params = (scheme_strategy(), params).prop_map(|(scheme, params)| Challenge {
        scheme,
        token68: None,
        params,
    });
    let with_token68 =
        (scheme_strategy(), "[A-Za-z0-9._~+/-]{1,12}={0,2}").prop_map(|(scheme, token68)| {
            Challenge {
                scheme,
                token68: Some(token68),
                params: Vec::new(),
            }
        });
    prop_oneof![3 => with_params, 1 => with_token68]
}

fn check_invariants(fields: &[String]) {
    let (parsed, errors) = parse_challenges_lenient(fields);
    let combined = fields.join(", ");
    for e in &errors {
        assert!(e.offset <= combined.len(), "{e:?}");
        assert!(combined.is_char_boundary(e.offset), "{e:?}");
    }
    for c in &parsed {
        assert!(!c.scheme.is_empty() && c.scheme.bytes().all(is_tchar));
        assert!(c.token68.is_none() || c.params.is_empty());
        let mut seen = HashSet::new();
        for (n, _) in &c.params {
            assert!(!n.is_empty() && n.bytes().all(is_tchar));
            assert_eq!(n, &n.to_ascii_lowercase());
            assert!(seen.insert(n), "duplicate {n}");
        }
    }
    match parse_challenges(fields) {
        Ok(strict) => {
            assert!(errors.is_empty());
            assert_eq!(strict, parsed);
        }
        Err(e) => assert_eq!(Some(&e), errors.first()),
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_strings(s in ".*") {
        check_invariants(&[s]);
    }

    #[test]
    fn never_panics_on_header_like_strings(
        fields in prop::collection::vec("[A-Za-z0-9 \t,=\"\\\\/+:;@'é\u{1}]{0,40}", 0..4)
    ) {
        check_invariants(&fields);
    }

    #[test]
    fn parse_format_round_trip(c in challenge_strategy()) {
        let formatted = format_challenge(&c);
        prop_assert_eq!(parse_challenges(&[&formatted]), Ok(vec![c]), "{}", formatted);
    }

    #[test]
    fn parse_format_round_trip_lists(
        list in prop::collection::vec(challenge_strategy(), 0..5),
        split in any::<bool>(),
    ) {
        // One field, or one field per challenge: same result.
        let fields = if split {
            list.iter().map(format_challenge).collect::<Vec<_>>()
        } else {
            vec![format_challenges(&list)]
        };
        prop_assert_eq!(parse_challenges(&fields), Ok(list));
    }
}
