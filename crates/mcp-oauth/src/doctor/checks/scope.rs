//! The scope the client would request first, and why: the same rules as a login
//! ([`crate::client::scope`]).

use crate::client::scope::{self, ScopeInputs};
use crate::config::OAuthConfig;
use crate::discovery::as_metadata::MetadataKind;
use crate::discovery::prm::ProtectedResourceMetadata;
use crate::doctor::DoctorReport;

/// The scope the client would request, by the same rules as a login.
pub(in crate::doctor) fn plan(
    r: &mut DoctorReport,
    config: &OAuthConfig,
    prm: Option<&ProtectedResourceMetadata>,
) {
    let Some(meta) = r.metadata().cloned() else {
        return;
    };
    let found_by_oidc = r.authorization_servers.iter().any(|a| {
        a.candidates.iter().any(|c| {
            c.used
                && matches!(
                    c.kind,
                    MetadataKind::OidcInserted | MetadataKind::OidcAppended
                )
        })
    });
    let openid = meta.is_openid_provider() || found_by_oidc;
    let choice = scope::select(&ScopeInputs {
        challenge: r.challenge.scope.as_deref(),
        scopes_supported: prm.and_then(|p| p.scopes_supported.as_deref()),
        as_offers_offline_access: meta.supports_scope(scope::OFFLINE_ACCESS),
        as_is_openid_provider: openid,
        ..ScopeInputs::from_settings(config)
    });
    if choice.base.is_none() && openid && meta.supports_scope(scope::OFFLINE_ACCESS) {
        r.client(
            "adds offline_access alone to an empty scope, without prompt=consent",
            false,
            "the server names no scope (no challenge scope, no scopes_supported), and an OpenID \
             provider that applies OpenID Connect Core §11 grants offline_access only with \
             consent: such a request grants nothing and is refused (oidc-provider answers \
             access_denied; some providers grant it anyway)",
            Some(
                "publish scopes_supported in the protected resource metadata (or a scope in the \
                 challenge); mcp-oauth asks for consent with offline_access"
                    .into(),
            ),
        );
    }
    r.scope = Some(choice);
}
