//! Step 1: the MCP server's URL and its answer to an unauthenticated request (the 401
//! challenge, RFC 9728 §5.1).

use crate::challenge;
use crate::doctor::{Answer, ChallengeReport, Check, DoctorReport, Level, Probe};
use std::ops::ControlFlow;

/// The server URL, parsed; `None` (a FAIL check) when it is no absolute http(s) URL. A
/// plain-http URL off loopback is a FAIL too, but the doctor goes on.
pub(in crate::doctor) fn server_url(r: &mut DoctorReport) -> Option<url::Url> {
    let server_url = r.server_url.clone();
    let parsed_url = match url::Url::parse(&server_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            r.check(
                "challenge",
                Level::Fail,
                format!("{server_url:?} is not an absolute http(s) URL"),
                Some("give the MCP endpoint's full URL, e.g. https://example.com/mcp".into()),
            );
            return None;
        }
    };
    if parsed_url.scheme() == "http" && !crate::util::is_loopback_url(&parsed_url) {
        r.check(
            "https",
            Level::Fail,
            format!("the MCP server is reached over plain http ({server_url}); tokens would travel unencrypted (OAuth 2.1 §1.5)"),
            Some("serve the MCP endpoint over https".into()),
        );
    }
    Some(parsed_url)
}

/// Reads the POST probe's challenge into the report, and judges the answer. `Break`: there
/// is nothing for OAuth discovery to find (no MCP server, or one that needs no token, or
/// none that answers), and its findings would only mislead.
pub(in crate::doctor) fn examine(r: &mut DoctorReport, post: &Probe) -> ControlFlow<()> {
    read(r, post);
    // A server that needs no token, or a URL that is no MCP server: OAuth discovery has
    // nothing to find there, and its findings would only mislead.
    match post.answer() {
        Answer::Open => {
            let words = post.answer_in_words().unwrap_or_default();
            r.check(
                "challenge",
                Level::Info,
                format!("{words}: an MCP client needs no OAuth here"),
                None,
            );
            return ControlFlow::Break(());
        }
        Answer::NotMcp(_) => {
            r.check(
                "challenge",
                Level::Fail,
                post.answer_in_words().unwrap_or_default(),
                Some(
                    "give the URL of the MCP endpoint itself (often ending in /mcp, or /sse), \
                     not of a web page"
                        .into(),
                ),
            );
            return ControlFlow::Break(());
        }
        _ => {}
    }
    let Some(status) = post.status else {
        r.check(
            "challenge",
            Level::Fail,
            format!(
                "the MCP server could not be reached: {}",
                post.error.clone().unwrap_or_default()
            ),
            Some(
                "check the URL, the network and the proxy settings (HTTPS_PROXY, NO_PROXY)".into(),
            ),
        );
        return ControlFlow::Break(());
    };
    match status {
        401 => r.check("challenge", Level::Ok, "an unauthenticated POST initialize is answered 401", None),
        403 if !r.challenge.bearer => r.check(
            "challenge",
            Level::Warn,
            "an unauthenticated POST initialize is answered 403 without a Bearer challenge: that is a \
             firewall or WAF refusal, not an OAuth challenge (the spec wants 401)",
            Some("let unauthenticated requests reach the MCP server, which answers 401".into()),
        ),
        s if (200..300).contains(&s) => r.check(
            "challenge",
            Level::Info,
            format!("an unauthenticated POST initialize is answered HTTP {s}: this server does not require authorization for it"),
            None,
        ),
        s => r.check(
            "challenge",
            Level::Warn,
            format!("an unauthenticated POST initialize is answered HTTP {s}, not 401"),
            None,
        ),
    }
    if status == 401 && !r.challenge.bearer {
        r.check(
            "challenge",
            Level::Fail,
            "the 401 carries no Bearer challenge in WWW-Authenticate (RFC 6750 §3, RFC 9728 §5.1)",
            Some(
                "answer 401 with `WWW-Authenticate: Bearer resource_metadata=\"<PRM URL>\"`".into(),
            ),
        );
    }
    ControlFlow::Continue(())
}

/// The POST probe's challenges as parsed; a malformed header is a WARN.
fn read(r: &mut DoctorReport, post: &Probe) {
    let (challenges, errors) = challenge::parse_challenges_lenient(&post.www_authenticate);
    let bearer = challenge::bearer(&challenges);
    let mut c = ChallengeReport {
        received: post.www_authenticate.clone(),
        parse_errors: errors.iter().map(|e| e.to_string()).collect(),
        schemes: challenges.iter().map(|c| c.scheme.clone()).collect(),
        bearer: bearer.is_some(),
        ..Default::default()
    };
    if let Some(b) = bearer {
        c.scope = b.scope;
        c.error = b.error;
        if let Some(rm) = b.resource_metadata {
            if url::Url::parse(&rm).is_err()
                && let Ok(abs) = url::Url::parse(&r.server_url).and_then(|base| base.join(&rm))
            {
                c.resource_metadata_resolved = Some(abs.to_string());
            }
            c.resource_metadata = Some(rm);
        }
    }
    for e in &c.parse_errors {
        r.checks.push(Check {
            step: "challenge",
            level: Level::Warn,
            message: format!("the WWW-Authenticate header is malformed: {e}"),
            fix: Some("send RFC 9110 §11.6.1 syntax: quoted-string values, comma-separated".into()),
        });
    }
    r.challenge = c;
}
