//! The `machine` step: what the authorization server offers clients without a user
//! (agents, CI jobs, company deployments), and sender-constrained tokens (DPoP).

use crate::discovery::as_metadata::AuthServerMetadata;
use crate::discovery::prm::ProtectedResourceMetadata;
use crate::doctor::{ChallengeReport, DoctorReport, Level};

/// Whether the MCP server takes DPoP-bound tokens: a `DPoP` challenge, or a PRM that
/// requires them or lists signing algorithms for them.
pub(in crate::doctor) fn resource_accepts_dpop(
    challenge: &ChallengeReport,
    prm: Option<&ProtectedResourceMetadata>,
) -> bool {
    challenge
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case("DPoP"))
        || prm.is_some_and(|p| {
            p.dpop_bound_access_tokens_required == Some(true)
                || p.dpop_signing_alg_values_supported
                    .as_ref()
                    .is_some_and(|a| !a.is_empty())
        })
}

/// What the authorization server offers for clients without a user (agents, CI jobs,
/// company deployments) and for sender-constrained tokens.
pub(in crate::doctor) fn checks(
    r: &mut DoctorReport,
    meta: &AuthServerMetadata,
    resource_dpop: bool,
) {
    let grants = meta.grant_types_supported.as_deref().unwrap_or_default();
    let methods = meta.token_auth_methods();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let offers = |g: &str| grants.iter().any(|x| x == g);
    let as_dpop = meta
        .dpop_signing_alg_values_supported
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| x == crate::dpop::DPOP_ALG));
    r.check(
        "machine",
        Level::Info,
        format!(
            "without a user: client_credentials {}, private_key_jwt {}, jwt-bearer (workload \
             identity, enterprise ID-JAG) {}; DPoP: authorization server {}, MCP server {} \
             (tokens are DPoP-bound only when both support it)",
            yes_no(offers("client_credentials")),
            yes_no(methods.iter().any(|m| m == "private_key_jwt")),
            yes_no(offers(crate::token::grant_types::JWT_BEARER)),
            if as_dpop { "ES256" } else { "no" },
            yes_no(resource_dpop),
        ),
        None,
    );
}
