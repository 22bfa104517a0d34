//! The doctor's report as text: one numbered section per step, then the checks, the
//! verdicts on clients with known behaviours, the login (with `--login`) and a summary.
//!
//! It uses nothing of the command line but `mcp_oauth`'s report types, so that
//! `tests/doctor.rs` compiles this file on its own (`#[path]`) and snapshots the text of
//! reports made against mock servers.

use mcp_oauth::discovery::prm::PrmSource;
use mcp_oauth::doctor::{DoctorReport, Level, metadata_kind_name};
use std::fmt::Write as _;

/// ANSI styling for [`render`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn level(&self, l: Level) -> String {
        let tag = format!("{:<4}", level_tag(l));
        match l {
            Level::Ok => self.paint("32", &tag),
            Level::Info => self.paint("36", &tag),
            Level::Warn => self.paint("33", &tag),
            Level::Fail => self.paint("1;31", &tag),
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

fn level_tag(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Fail => "FAIL",
    }
}

fn source_name(s: PrmSource) -> &'static str {
    match s {
        PrmSource::Header => "resource_metadata",
        PrmSource::PathInserted => "path-inserted",
        PrmSource::Root => "root",
    }
}

/// The human rendering of `report`.
pub fn render(report: &DoctorReport, style: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}",
        style.bold(&format!("mcp-oauth doctor {}", report.server_url))
    );
    challenge(&mut o, report, style);
    protected_resource(&mut o, report, style);
    authorization_servers(&mut o, report, style);
    registration(&mut o, report, style);
    checks(&mut o, report, style);
    clients(&mut o, report, style);
    login(&mut o, report, style);
    summary(&mut o, report, style);
    o
}

/// 1. The unauthenticated requests and the challenge as parsed.
fn challenge(o: &mut String, report: &DoctorReport, style: Style) {
    let _ = writeln!(
        o,
        "\n{}",
        style.bold("1. Challenge (unauthenticated requests)")
    );
    for p in &report.probes {
        match (p.status, &p.error) {
            (Some(s), _) => {
                let _ = writeln!(o, "   {} → HTTP {s}", p.request);
            }
            (None, Some(e)) => {
                let _ = writeln!(o, "   {} → failed: {e}", p.request);
            }
            _ => {}
        }
        for w in &p.www_authenticate {
            let _ = writeln!(o, "     WWW-Authenticate: {w}");
        }
    }
    let c = &report.challenge;
    if c.received.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "   parsed: schemes {:?}; Bearer: {}",
        c.schemes,
        if c.bearer { "yes" } else { "no" }
    );
    if let Some(rm) = &c.resource_metadata {
        let _ = write!(o, "     resource_metadata = {rm}");
        match &c.resource_metadata_resolved {
            Some(abs) => {
                let _ = writeln!(o, " (relative; resolved to {abs})");
            }
            None => {
                let _ = writeln!(o, " (absolute)");
            }
        }
    }
    if let Some(s) = &c.scope {
        let _ = writeln!(o, "     scope = {s}");
    }
    if let Some(e) = &c.error {
        let _ = writeln!(o, "     error = {e}");
    }
}

/// 2. Every PRM candidate, and the authoritative document.
fn protected_resource(o: &mut String, report: &DoctorReport, style: Style) {
    if report.prm.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n{}",
        style.bold("2. Protected resource metadata (RFC 9728), every candidate")
    );
    for p in &report.prm {
        let mark = if p.authoritative {
            style.paint("32", "  ← authoritative")
        } else {
            String::new()
        };
        let status = p
            .status
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "   {:<17} {} [{status}] {}{mark}",
            source_name(p.source),
            p.url,
            p.outcome
        );
    }
    if let Some(d) = report
        .prm
        .iter()
        .find(|p| p.authoritative)
        .and_then(|p| p.document.as_ref())
    {
        let _ = writeln!(o, "   resource: {:?}", d.resource);
        let _ = writeln!(o, "   authorization_servers: {:?}", d.authorization_servers);
        if let Some(s) = &d.scopes_supported {
            let _ = writeln!(o, "   scopes_supported: {s:?}");
        }
    }
}

/// 3. Every metadata candidate of every authorization server, and the endpoints used.
fn authorization_servers(o: &mut String, report: &DoctorReport, style: Style) {
    if report.authorization_servers.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n{}",
        style.bold("3. Authorization server metadata, every candidate")
    );
    for a in &report.authorization_servers {
        let _ = writeln!(o, "   issuer {}", a.issuer);
        for cand in &a.candidates {
            let status = cand
                .status
                .map(|s| format!("HTTP {s}"))
                .unwrap_or_else(|| "-".into());
            let used = if cand.used {
                style.paint("32", "  ← used")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "     {:<20} {} [{status}] {}{used}",
                metadata_kind_name(cand.kind),
                cand.url,
                cand.outcome
            );
        }
        if let Some(m) = &a.metadata {
            let _ = writeln!(
                o,
                "     authorization_endpoint: {}",
                m.authorization_endpoint.as_deref().unwrap_or("-")
            );
            let _ = writeln!(
                o,
                "     token_endpoint: {}",
                m.token_endpoint.as_deref().unwrap_or("-")
            );
            let _ = writeln!(
                o,
                "     code_challenge_methods_supported: {}",
                m.code_challenge_methods_supported
                    .as_ref()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_else(|| "(absent)".into())
            );
        }
    }
}

/// 4. The registration options and what this client would use; the scope asked for.
fn registration(o: &mut String, report: &DoctorReport, style: Style) {
    if let Some(reg) = &report.registration {
        let _ = writeln!(o, "\n{}", style.bold("4. Client registration"));
        let _ = writeln!(
            o,
            "   pre-registered client: {}",
            reg.pre_registered.as_deref().unwrap_or("none configured")
        );
        let _ = writeln!(
            o,
            "   client ID metadata documents: {}",
            if reg.cimd_supported {
                "supported"
            } else {
                "not supported"
            }
        );
        let _ = writeln!(
            o,
            "   dynamic registration: {}",
            reg.registration_endpoint.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            o,
            "   this client would use: {}",
            reg.chosen
                .map(|k| k.to_string())
                .unwrap_or_else(|| "nothing: pre-registration needed".into())
        );
        if let Some(m) = &reg.token_endpoint_auth_method {
            let _ = writeln!(o, "   token endpoint authentication: {m}");
        }
        if let Some(uri) = &reg.redirect_uri {
            let _ = writeln!(o, "   redirect URI: {uri}");
        }
    }
    if let Some(c) = &report.scope {
        let _ = writeln!(o, "   scope requested first: {}", c.explain());
    }
}

/// 5. Every finding, with its fix.
fn checks(o: &mut String, report: &DoctorReport, style: Style) {
    let _ = writeln!(o, "\n{}", style.bold("5. Checks"));
    for c in &report.checks {
        let _ = writeln!(o, "   {} [{}] {}", style.level(c.level), c.step, c.message);
        if let Some(f) = &c.fix {
            let _ = writeln!(o, "        fix: {f}");
        }
    }
}

/// 6. What clients with known behaviours experience.
fn clients(o: &mut String, report: &DoctorReport, style: Style) {
    if report.clients.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{}", style.bold("6. Clients with known behaviours"));
    for v in &report.clients {
        let tag = if v.works {
            style.paint("32", "works")
        } else {
            style.paint("1;31", "FAILS")
        };
        let _ = writeln!(o, "   {tag}  a client that {}: {}", v.behaviour, v.why);
        if let Some(f) = &v.fix {
            let _ = writeln!(o, "          fix: {f}");
        }
    }
}

/// 7. The login that `--login` continued into.
fn login(o: &mut String, report: &DoctorReport, style: Style) {
    let Some(l) = &report.login else {
        return;
    };
    let _ = writeln!(o, "\n{}", style.bold("7. Login"));
    if l.ok {
        let _ = writeln!(
            o,
            "   {} logged in at {} ({}); scope {}; refresh token: {}",
            style.level(Level::Ok),
            l.issuer.as_deref().unwrap_or("?"),
            l.registration.map(|k| k.to_string()).unwrap_or_default(),
            l.scope.as_deref().unwrap_or("(none granted)"),
            if l.refresh_token { "yes" } else { "no" }
        );
    } else {
        let _ = writeln!(
            o,
            "   {} {}",
            style.level(Level::Fail),
            l.error.as_deref().unwrap_or("failed")
        );
    }
}

/// The count of broken MUSTs and of warnings.
fn summary(o: &mut String, report: &DoctorReport, style: Style) {
    let fails = report.must_violations();
    let summary = format!(
        "\n{} MUST violation{}, {} warning{}.",
        fails,
        if fails == 1 { "" } else { "s" },
        report.warnings(),
        if report.warnings() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "{}",
        if fails > 0 {
            style.paint("1;31", &summary)
        } else {
            style.bold(&summary)
        }
    );
}
