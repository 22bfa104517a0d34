//! The discovery trace: every URL tried during discovery, its HTTP status and what was
//! concluded from it. Errors print it; `mcp-oauth doctor` prints it in full.

use serde::Serialize;
use std::fmt;

/// What was concluded from one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "detail")]
pub enum Verdict {
    /// This document was used.
    Used,
    /// Tried and skipped; the next candidate was tried (the string says why).
    Skipped(String),
    /// Refused because it broke a rule (the string names the rule).
    Rejected(String),
    /// Not requested, because an earlier candidate answered (kept for `doctor`).
    NotTried,
    /// Informational (e.g. the challenge as parsed).
    Note(String),
}

/// One step of discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// What this attempt was for: "challenge", "prm (resource_metadata header)",
    /// "prm (path-inserted well-known)", "as metadata (RFC 8414)", ...
    pub what: String,
    /// The URL tried.
    pub url: String,
    /// HTTP status, when a response came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What was made of the answer.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Every attempt of one discovery run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryTrace {
    /// The attempts, in the order they were made.
    pub attempts: Vec<Attempt>,
}

impl DiscoveryTrace {
    /// Records an attempt (and logs it at debug level, target `mcp_oauth::discovery`).
    pub fn push(
        &mut self,
        what: impl Into<String>,
        url: impl Into<String>,
        status: Option<u16>,
        verdict: Verdict,
    ) {
        let a = Attempt {
            what: what.into(),
            url: url.into(),
            status,
            verdict,
        };
        // As it happens, for `-vv` and for observers such as `mcp-oauth demo` (target
        // `mcp_oauth::discovery`; the fields mirror `Attempt`).
        let (verdict, detail) = match &a.verdict {
            Verdict::Used => ("used", ""),
            Verdict::Skipped(d) => ("skipped", d.as_str()),
            Verdict::Rejected(d) => ("rejected", d.as_str()),
            Verdict::NotTried => ("not tried", ""),
            Verdict::Note(d) => ("note", d.as_str()),
        };
        tracing::debug!(
            target: "mcp_oauth::discovery",
            what = %a.what,
            url = %a.url,
            status = a.status.map_or(0, u64::from),
            verdict,
            detail,
            "discovery attempt"
        );
        self.attempts.push(a);
    }

    /// URLs that were actually requested, in order.
    pub fn requested_urls(&self) -> impl Iterator<Item = &str> {
        self.attempts
            .iter()
            .filter(|a| !matches!(a.verdict, Verdict::NotTried | Verdict::Note(_)))
            .map(|a| a.url.as_str())
    }
}

/// The candidate URLs one discovery step has asked, so that each is asked once: a second
/// request would get the same verdict, and one that hangs would cost another time-out.
/// Kept per step (and per issuer for authorization server metadata, where the same
/// configured URL is checked against each issuer), so it is not derived from the trace.
#[derive(Debug, Default)]
pub(crate) struct AskedUrls(Vec<String>);

impl AskedUrls {
    /// True the first time `url` comes up; after that, records in `trace` that the
    /// candidate `what` was asked already `as_earlier` (the earlier candidate) and is false.
    pub(crate) fn first_time(
        &mut self,
        what: &str,
        url: &str,
        as_earlier: &str,
        trace: &mut DiscoveryTrace,
    ) -> bool {
        if self.0.iter().any(|u| u == url) {
            let note = format!("asked already, as {as_earlier}");
            trace.push(what, url, None, Verdict::Note(note));
            return false;
        }
        self.0.push(url.to_string());
        true
    }
}

impl fmt::Display for DiscoveryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "discovery trace:")?;
        for a in &self.attempts {
            let status = a
                .status
                .map(|s| format!("HTTP {s}"))
                .unwrap_or_else(|| "-".into());
            let verdict = match &a.verdict {
                Verdict::Used => "used".to_string(),
                Verdict::Skipped(why) => format!("skipped: {why}"),
                Verdict::Rejected(why) => format!("REJECTED: {why}"),
                Verdict::NotTried => "not tried".to_string(),
                Verdict::Note(n) => n.clone(),
            };
            writeln!(f, "  - {}: {} [{status}] {verdict}", a.what, a.url)?;
        }
        Ok(())
    }
}
