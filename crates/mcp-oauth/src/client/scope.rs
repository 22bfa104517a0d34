//! Which `scope` an authorization request carries, and why.
//!
//! The base scope follows the MCP specification's order: the user's setting, else the
//! step-up union, else the challenge's `scope`, else the protected resource metadata's
//! `scopes_supported`, else none. On top of it the client may add `offline_access` to get
//! a refresh token, but only in a form the authorization server honours:
//!
//! - an OpenID Connect provider grants `offline_access` only when the request also asks
//!   for consent (OpenID Connect Core §11: "prompt … MUST contain consent"); oidc-provider
//!   silently drops it otherwise, and a request left with no scope is refused with
//!   `access_denied`. So with an OpenID provider the addition comes with `prompt=consent`,
//!   or, when the user set another `prompt`, it is left out;
//! - a user's scope setting is never widened.
//!
//! Because the addition is the client's own idea, a refusal of the widened request
//! (`access_denied`, `invalid_scope`) is answered by asking once more without it
//! ([`ScopeChoice::without_addition`]).

use crate::discovery::Discovery;
use crate::util::union_scopes;
use serde::Serialize;

/// `offline_access`: the OpenID Connect scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Where the base scope came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSource {
    /// The user's setting (`--scope`, `scopes` in the configuration file).
    Configured,
    /// The union of the scopes held and the ones a `403 insufficient_scope` asked for.
    StepUp,
    /// The `scope` of the server's `WWW-Authenticate` challenge.
    Challenge,
    /// The protected resource metadata's `scopes_supported`.
    ResourceMetadata,
    /// Nothing named a scope.
    None,
}

/// Whether `offline_access` was added, and why (not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum OfflineAccess {
    /// Added; `with_consent` when `prompt=consent` goes with it (an OpenID provider).
    Added {
        /// Whether `prompt=consent` goes with it (an OpenID provider).
        with_consent: bool,
    },
    /// Not added, for this reason.
    NotAdded {
        /// Why it was not added.
        reason: String,
    },
}

/// The scope of one authorization request, with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeChoice {
    /// What the request's `scope` parameter carries (`None`: no parameter).
    pub scope: Option<String>,
    /// The base scope before any addition.
    pub base: Option<String>,
    /// What named the base scope.
    pub source: ScopeSource,
    /// Whether `offline_access` was added, and why (not).
    pub offline_access: OfflineAccess,
}

/// What the choice is made from.
#[derive(Debug, Clone, Copy)]
pub struct ScopeInputs<'a> {
    /// The user's scope setting.
    pub configured: Option<&'a str>,
    /// The step-up union, when this authorization is a step-up.
    pub step_up: Option<&'a str>,
    /// The `scope` of the server's `WWW-Authenticate` challenge.
    pub challenge: Option<&'a str>,
    /// The protected resource metadata's `scopes_supported`.
    pub scopes_supported: Option<&'a [String]>,
    /// The authorization server lists `offline_access` in `scopes_supported`.
    pub as_offers_offline_access: bool,
    /// The authorization server is an OpenID Connect provider.
    pub as_is_openid_provider: bool,
    /// The user's `request_offline_access` setting.
    pub request_offline_access: bool,
    /// A grant with a user (refresh tokens are for those).
    pub interactive: bool,
    /// The `prompt` the user set among the extra authorization parameters.
    pub user_prompt: Option<&'a str>,
}

impl<'a> ScopeInputs<'a> {
    /// The inputs from a discovery and the settings.
    pub fn from_discovery(
        d: &'a Discovery,
        config: &'a crate::config::OAuthConfig,
        step_up: Option<&'a str>,
        interactive: bool,
    ) -> Self {
        Self {
            step_up,
            challenge: d.challenge.as_ref().and_then(|c| c.scope.as_deref()),
            scopes_supported: d.scopes_supported(),
            as_offers_offline_access: d.metadata.document().supports_scope(OFFLINE_ACCESS),
            as_is_openid_provider: d.is_openid_provider(),
            interactive,
            ..Self::from_settings(config)
        }
    }

    /// What the settings say (the user's scope, `request_offline_access`, the `prompt`
    /// among the extra authorization parameters); the rest empty, for the caller to fill.
    pub fn from_settings(config: &'a crate::config::OAuthConfig) -> Self {
        Self {
            configured: config.scopes.as_deref(),
            step_up: None,
            challenge: None,
            scopes_supported: None,
            as_offers_offline_access: false,
            as_is_openid_provider: false,
            request_offline_access: config.request_offline_access,
            interactive: true,
            user_prompt: config
                .authorize_params
                .iter()
                .find(|(k, _)| k == "prompt")
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// `s` unless it is empty or blank.
pub(crate) fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// The spec's order for the base scope, then the `offline_access` decision.
pub fn select(i: &ScopeInputs<'_>) -> ScopeChoice {
    let joined = i
        .scopes_supported
        .filter(|s| !s.is_empty())
        .map(|s| s.join(" "));
    let (base, source) = if let Some(s) = non_empty(i.configured) {
        (Some(s.to_string()), ScopeSource::Configured)
    } else if let Some(s) = non_empty(i.step_up) {
        (Some(s.to_string()), ScopeSource::StepUp)
    } else if let Some(s) = non_empty(i.challenge) {
        (Some(s.to_string()), ScopeSource::Challenge)
    } else if let Some(s) = non_empty(joined.as_deref()) {
        (Some(s.to_string()), ScopeSource::ResourceMetadata)
    } else {
        (None, ScopeSource::None)
    };
    let offline_access = offline_decision(i, source, base.as_deref());
    let scope = match offline_access {
        OfflineAccess::Added { .. } => Some(union_scopes([
            base.as_deref().unwrap_or_default(),
            OFFLINE_ACCESS,
        ])),
        OfflineAccess::NotAdded { .. } => base.clone(),
    };
    ScopeChoice {
        scope,
        base,
        source,
        offline_access,
    }
}

fn offline_decision(i: &ScopeInputs<'_>, source: ScopeSource, base: Option<&str>) -> OfflineAccess {
    let not = |reason: &str| OfflineAccess::NotAdded {
        reason: reason.to_string(),
    };
    if source == ScopeSource::Configured {
        return not("the configured scope is sent as it is");
    }
    if !i.interactive {
        return not("a grant without a user gets no refresh token");
    }
    if !i.request_offline_access {
        return not("request_offline_access is off");
    }
    if !i.as_offers_offline_access {
        return not("the authorization server does not list offline_access");
    }
    if base.is_some_and(|b| b.split_whitespace().any(|s| s == OFFLINE_ACCESS)) {
        return not("the scope already has it");
    }
    if !i.as_is_openid_provider {
        return OfflineAccess::Added {
            with_consent: false,
        };
    }
    match i.user_prompt {
        None => OfflineAccess::Added { with_consent: true },
        Some(p) if p.split_whitespace().any(|v| v == "consent") => OfflineAccess::Added {
            // The user's prompt already asks for consent.
            with_consent: false,
        },
        Some(_) => not(
            "an OpenID provider grants it only with prompt=consent, and the configured prompt \
             is another one",
        ),
    }
}

impl ScopeChoice {
    /// Whether the client added `offline_access` on its own.
    pub fn widened(&self) -> bool {
        matches!(self.offline_access, OfflineAccess::Added { .. })
    }

    /// The same request without the client's addition: what to ask once more after the
    /// widened request was refused. `None` when nothing was added.
    pub fn without_addition(&self, refusal: &str) -> Option<ScopeChoice> {
        self.widened().then(|| ScopeChoice {
            scope: self.base.clone(),
            base: self.base.clone(),
            source: self.source,
            offline_access: OfflineAccess::NotAdded {
                reason: format!(
                    "the authorization server refused the request with it ({refusal}); asked \
                     again without it"
                ),
            },
        })
    }

    /// Authorization parameters that go with the choice (`prompt=consent`).
    pub fn extra_params(&self) -> Vec<(String, String)> {
        match self.offline_access {
            OfflineAccess::Added { with_consent: true } => {
                vec![("prompt".to_string(), "consent".to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// One line for the log and `doctor`: what is sent and why.
    pub fn explain(&self) -> String {
        let sent = match &self.scope {
            Some(s) => format!("scope \"{s}\""),
            None => "no scope parameter".to_string(),
        };
        let from = match self.source {
            ScopeSource::Configured => "from the configuration",
            ScopeSource::StepUp => "the step-up union of the scopes held and those challenged",
            ScopeSource::Challenge => "from the server's WWW-Authenticate challenge",
            ScopeSource::ResourceMetadata => "the protected resource metadata's scopes_supported",
            ScopeSource::None => "nothing named a scope (no challenge scope, no scopes_supported)",
        };
        let offline = match &self.offline_access {
            OfflineAccess::Added { with_consent: true } => {
                "; offline_access added for a refresh token, with prompt=consent (an OpenID \
                 provider grants it only then, OpenID Connect Core §11)"
                    .to_string()
            }
            OfflineAccess::Added {
                with_consent: false,
            } => "; offline_access added for a refresh token".to_string(),
            OfflineAccess::NotAdded { reason } => format!("; offline_access not added: {reason}"),
        };
        format!("{sent}: base {from}{offline}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ScopeInputs<'static> {
        ScopeInputs {
            configured: None,
            step_up: None,
            challenge: None,
            scopes_supported: None,
            as_offers_offline_access: true,
            as_is_openid_provider: true,
            request_offline_access: true,
            interactive: true,
            user_prompt: None,
        }
    }

    #[test]
    fn empty_base_with_an_openid_provider_asks_for_consent() {
        // FastMCP (scopes_supported []) in front of oidc-provider: offline_access alone
        // would be dropped without consent and the request refused.
        let empty: &[String] = &[];
        let c = select(&ScopeInputs {
            scopes_supported: Some(empty),
            ..inputs()
        });
        assert_eq!(c.source, ScopeSource::None);
        assert_eq!(c.scope.as_deref(), Some("offline_access"));
        assert_eq!(c.extra_params(), [("prompt".into(), "consent".into())]);
        assert!(c.explain().contains("prompt=consent"), "{}", c.explain());
        let retry = c.without_addition("access_denied").unwrap();
        assert_eq!(retry.scope, None);
        assert!(retry.extra_params().is_empty());
        assert!(retry.without_addition("x").is_none());
        assert!(
            retry.explain().contains("access_denied"),
            "{}",
            retry.explain()
        );
    }

    #[test]
    fn a_plain_oauth_server_gets_offline_access_without_prompt() {
        let c = select(&ScopeInputs {
            challenge: Some("mcp"),
            as_is_openid_provider: false,
            ..inputs()
        });
        assert_eq!(c.scope.as_deref(), Some("mcp offline_access"));
        assert!(c.extra_params().is_empty());
        assert_eq!(c.source, ScopeSource::Challenge);
    }

    #[test]
    fn a_users_prompt_decides() {
        let c = select(&ScopeInputs {
            user_prompt: Some("login consent"),
            ..inputs()
        });
        assert_eq!(c.scope.as_deref(), Some("offline_access"));
        assert!(c.extra_params().is_empty());
        let c = select(&ScopeInputs {
            user_prompt: Some("login"),
            challenge: Some("mcp"),
            ..inputs()
        });
        assert_eq!(c.scope.as_deref(), Some("mcp"));
        assert!(!c.widened());
    }

    #[test]
    fn the_configured_scope_always_wins_and_is_never_widened() {
        let c = select(&ScopeInputs {
            configured: Some("a b"),
            step_up: Some("c"),
            challenge: Some("d"),
            ..inputs()
        });
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(c.source, ScopeSource::Configured);
        assert!(!c.widened());
    }

    #[test]
    fn spec_order_and_the_other_reasons_not_to_add() {
        let supported = vec!["x".to_string(), "y".to_string()];
        let c = select(&ScopeInputs {
            scopes_supported: Some(&supported),
            as_offers_offline_access: false,
            ..inputs()
        });
        assert_eq!(
            (c.scope.as_deref(), c.source),
            (Some("x y"), ScopeSource::ResourceMetadata)
        );
        let c = select(&ScopeInputs {
            step_up: Some("s"),
            challenge: Some("d"),
            request_offline_access: false,
            ..inputs()
        });
        assert_eq!(
            (c.scope.as_deref(), c.source),
            (Some("s"), ScopeSource::StepUp)
        );
        let c = select(&ScopeInputs {
            interactive: false,
            ..inputs()
        });
        assert_eq!(c.scope, None);
        let c = select(&ScopeInputs {
            challenge: Some("mcp offline_access"),
            ..inputs()
        });
        assert_eq!(c.scope.as_deref(), Some("mcp offline_access"));
        assert!(!c.widened());
    }
}
