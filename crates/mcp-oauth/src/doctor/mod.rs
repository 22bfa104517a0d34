//! `mcp-oauth doctor`: walks the whole chain the MCP authorization spec defines for one
//! server and explains every step, without logging in.
//!
//! Unlike [`crate::discovery::discover`], which stops at the first usable document, the
//! doctor asks *every* candidate (each PRM URL, each authorization server metadata URL),
//! so that it can say which one a spec-following client uses and which clients with a
//! known shortcut fail, and why. It reuses discovery's pieces
//! ([`prm::candidates`](crate::discovery::prm::candidates),
//! [`prm::fetch`](crate::discovery::prm::fetch), [`prm::check`](crate::discovery::prm::check),
//! [`as_metadata::candidates`](crate::discovery::as_metadata::candidates),
//! [`as_metadata::fetch_candidate`](crate::discovery::as_metadata::fetch_candidate)) so
//! that its verdicts are the engine's, and the identity-provider hints come from
//! [`crate::quirks`], which the engine reads too.
//!
//! - [`probe`](mod@probe): the unauthenticated requests ([`probe()`], also used by `login`);
//! - `checks`: one module per step (challenge, PRM, authorization server, machine
//!   clients, registration, scope), in the order [`diagnose`] runs them;
//! - `verdict`: what clients with a known behaviour experience at this server;
//! - [`report`]: the typed, serialisable result ([`DoctorReport`], `--json`).
//!
//! The text rendering is the command line's (`mcp-oauth-cli`, `commands/doctor/render.rs`).
//! [`DoctorReport::must_violations`] counts broken MUSTs of the spec; the command line
//! exits non-zero when there is one.

mod checks;
pub mod probe;
pub mod report;
mod verdict;

pub use probe::{Answer, PROBE_TIMEOUT, Probe, probe};
pub use report::{
    AsCandidate, AsReport, ChallengeReport, Check, ClientVerdict, DoctorReport, Level, LoginReport,
    PrmCandidate, RegistrationReport, metadata_kind_name,
};

use crate::config::OAuthConfig;
use crate::http::HttpClient;

/// Diagnoses `config.server_url`. Never fails: what cannot be reached is a finding.
pub async fn diagnose(http: &HttpClient, config: &OAuthConfig) -> DoctorReport {
    // Every URL the server hands out is fetched under its network policy (crate::netpolicy).
    let http = &http.for_config(config);
    let mut r = DoctorReport::new(config.server_url.clone());
    let Some(server) = checks::challenge::server_url(&mut r) else {
        return r;
    };

    // 1. The challenge.
    let post = probe(http, &r.server_url, true).await;
    let get = probe(http, &r.server_url, false).await;
    r.probes = vec![post.clone(), get.clone()];
    if checks::challenge::examine(&mut r, &post).is_break() {
        return r;
    }

    // 2. Protected resource metadata: every candidate.
    let Some(prm) = checks::prm::examine(&mut r, http).await else {
        return r;
    };
    let prm_doc = prm.document.as_ref();

    // 3. Authorization server metadata: every candidate of every listed server.
    checks::auth_server::fetch_all(&mut r, http, config, &server, &prm).await;
    let used_issuer = checks::auth_server::pick_used(&mut r, config);
    checks::auth_server::checks(&mut r, prm_doc, used_issuer.as_deref(), config);
    if let Some(meta) = r.metadata().cloned() {
        let resource_dpop = checks::machine::resource_accepts_dpop(&r.challenge, prm_doc);
        checks::machine::checks(&mut r, &meta, resource_dpop);
    }

    // 4. Registration, the scope, and what other clients would experience.
    checks::registration::checks(&mut r, config);
    checks::scope::plan(&mut r, config, prm_doc);
    verdict::client_verdicts(&mut r, &server, &post, &get, prm_doc);
    r
}
