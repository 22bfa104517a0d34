//! What mcp-oauth knows about identity providers, in one table.
//!
//! mcp-oauth follows the MCP authorization spec by default. Deployed identity providers
//! depart from it in known ways. Each provider that can be recognised by its authorization
//! server's issuer is a [`Quirk`] in [`QUIRKS`]:
//!
//! - how to recognise it ([`IssuerPattern`]: a host, a domain, a path shape);
//! - what it does ([`Behaviour`], each with what mcp-oauth does about it);
//! - the hint `mcp-oauth doctor` prints when it meets that issuer ([`Hint`]), in the
//!   user's words;
//! - the per-server settings that make a client work with it ([`Setting`], spelt as in
//!   the configuration file).
//!
//! The engine does not change course by provider: what it absorbs on its own it absorbs at
//! every server (a refresh carries the granted scope everywhere, a token error is read
//! whatever the HTTP status), and the rest are settings the user chooses, which weaken a
//! check of the spec. So the engine reads this table for the words of its advice
//! ([`crate::discovery::as_metadata::validate`] names [`COGNITO`] and its setting), and
//! `doctor` reads it for its hints ([`for_issuer`]).
//!
//! Providers that cannot be recognised by their issuer (self-hosted libraries such as
//! oidc-provider, better-auth) have no entry; what they do is absorbed at every server:
//! `offline_access` is asked for with `prompt=consent` ([`crate::client::scope`]), an
//! empty granted scope on refresh falls back to the one asked for, and DPoP is used only
//! when the MCP server takes it too ([`crate::config::DpopPolicy::Auto`]).
//!
//! A new quirk: a `const` below, listed in [`QUIRKS`], with its real issuer forms and a
//! lookalike in the tests.

use crate::config::{OAuthConfig, PkceMetadataPolicy, ResourceSetting};
use crate::doctor::Level;
use std::fmt;

/// One identity provider's departures from the spec, and what to do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirk {
    /// The provider's name, as its users know it.
    pub provider: &'static str,
    /// Its issuers: any of these patterns.
    pub issuers: &'static [IssuerPattern],
    /// What it does.
    pub behaviours: &'static [Behaviour],
    /// What `doctor` says when the authorization server is this provider's.
    pub hint: Option<Hint>,
    /// The settings that make a client work with it (`doctor`'s fix: "set … for this
    /// server").
    pub settings: &'static [Setting],
}

/// How to recognise a provider by its authorization server's issuer URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerPattern {
    /// The host is exactly this name.
    Host(&'static str),
    /// The host is this name or a subdomain of it: `auth0.com` matches `acme.auth0.com`,
    /// not `auth0.com.evil.example` nor `notauth0.com`.
    Domain(&'static str),
    /// A regional service host, `<service>.<region>.<domain>` with a one-label region
    /// (`cognito-idp.eu-west-1.amazonaws.com`).
    Regional {
        /// The service's first label (`cognito-idp`).
        service: &'static str,
        /// The provider's domain after the region (`amazonaws.com`).
        domain: &'static str,
    },
    /// The path ends in `/<parent>/<one segment>`, on any host (Keycloak's realms:
    /// `/realms/acme`, and `/auth/realms/acme` before Keycloak 17).
    PathUnder(&'static str),
}

/// A departure from the spec (or from what clients expect), and what mcp-oauth does
/// about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Refuses a `resource` parameter together with v2 scopes (`AADSTS9010010`). mcp-oauth
    /// sends the PRM's `resource` (the spec's MUST) unless the server's settings say
    /// `resource = "omit"` ([`ResourceSetting::Omit`]).
    RefusesResourceWithScopes,
    /// Refuses a refresh without `scope` (`AADSTS900144`). mcp-oauth sends the granted
    /// scope on every refresh, at every server.
    NeedsScopeOnRefresh,
    /// Offers no Dynamic Client Registration: someone registers the client by hand.
    /// mcp-oauth uses a configured `client_id` first (the spec's order: pre-registered,
    /// then a Client ID Metadata Document, then registration).
    NoDynamicRegistration,
    /// Issues a refresh token only when the authorization request asks with
    /// `access_type=offline` and `prompt=consent` (`authorize_params`); `login` warns
    /// when no refresh token came back.
    RefreshTokenOnlyWhenAskedOffline,
    /// Refuses the `offline_access` scope (Keycloak: for dynamically registered clients).
    /// mcp-oauth asks once more without it when it added it on its own, and
    /// `request_offline_access = false` stops adding it.
    RefusesOfflineAccess,
    /// Supports PKCE S256 but leaves `code_challenge_methods_supported` out of its
    /// metadata. mcp-oauth refuses such a server (the spec's MUST) unless the server's
    /// settings say `allow_missing_pkce_metadata = true` ([`PkceMetadataPolicy`]).
    UnadvertisedPkce,
    /// Its issuer is spelt with a trailing slash in one place and without in another.
    /// mcp-oauth tolerates exactly that on an issuer without a path
    /// ([`crate::discovery::as_metadata::issuer_matches`]).
    IssuerTrailingSlash,
    /// Its device authorization response says `verification_url` (the pre-RFC 8628
    /// spelling). mcp-oauth reads either.
    DeviceVerificationUrl,
    /// Issues access tokens for an API only when the authorization request names it
    /// (`audience=…` in `authorize_params`).
    AudienceParameter,
    /// Rotates refresh tokens and revokes the whole family when one is used twice.
    /// mcp-oauth refreshes one credential at a time across processes, re-reading the
    /// store under the lock.
    RotatingRefreshTokens,
    /// Answers token endpoint errors with HTTP 200. mcp-oauth reads an `error` member
    /// whatever the status.
    ErrorsWithHttp200,
    /// Registers a dynamic client with another `token_endpoint_auth_method` than the one
    /// asked for. mcp-oauth uses the one registered.
    RegistersAnotherAuthMethod,
}

/// What `doctor` says about a provider: one check of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// The report's step (`resource`, `refresh`, `pkce`, …).
    pub step: &'static str,
    /// How serious the check is.
    pub level: Level,
    /// The check's message, as the report prints it.
    pub message: &'static str,
    /// No hint when the server's settings already have this one.
    pub unless: Option<Setting>,
}

/// A per-server setting, spelt as in the configuration file (`key = value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `resource = "omit"`: send no `resource` parameter (weakens audience binding).
    OmitResource,
    /// `scopes = "…"`; the value may hold a placeholder the user fills in (`<app-id>`).
    Scopes(&'static str),
    /// `authorize_params = { key = "value", … }`; a value may be a placeholder.
    AuthorizeParams(&'static [(&'static str, &'static str)]),
    /// `allow_missing_pkce_metadata = true`: assume PKCE S256 (weakens a check).
    AllowMissingPkceMetadata,
}

/// Microsoft Entra ID (formerly Azure AD), v2 endpoints.
pub const ENTRA: Quirk = Quirk {
    provider: "Microsoft Entra ID",
    issuers: &[IssuerPattern::Domain("login.microsoftonline.com")],
    behaviours: &[
        Behaviour::RefusesResourceWithScopes,
        Behaviour::NeedsScopeOnRefresh,
        Behaviour::NoDynamicRegistration,
    ],
    hint: Some(Hint {
        step: "resource",
        level: Level::Warn,
        message: "Microsoft Entra ID refuses a resource parameter together with v2 scopes (AADSTS9010010)",
        unless: Some(Setting::OmitResource),
    }),
    settings: &[
        Setting::OmitResource,
        Setting::Scopes("api://<app-id>/.default offline_access"),
    ],
};

/// Google's authorization server (Google-hosted MCP servers, Google sign-in).
pub const GOOGLE: Quirk = Quirk {
    provider: "Google",
    issuers: &[IssuerPattern::Host("accounts.google.com")],
    behaviours: &[
        Behaviour::RefreshTokenOnlyWhenAskedOffline,
        Behaviour::RefusesOfflineAccess,
        Behaviour::NoDynamicRegistration,
        Behaviour::IssuerTrailingSlash,
        Behaviour::DeviceVerificationUrl,
    ],
    hint: Some(Hint {
        step: "refresh",
        level: Level::Warn,
        message: "Google issues refresh tokens only with access_type=offline and prompt=consent, and refuses offline_access",
        unless: None,
    }),
    settings: &[Setting::AuthorizeParams(&[
        ("access_type", "offline"),
        ("prompt", "consent"),
    ])],
};

/// AWS Cognito user pools (issuer `https://cognito-idp.<region>.amazonaws.com/<pool id>`).
pub const COGNITO: Quirk = Quirk {
    provider: "AWS Cognito",
    issuers: &[IssuerPattern::Regional {
        service: "cognito-idp",
        domain: "amazonaws.com",
    }],
    behaviours: &[
        Behaviour::UnadvertisedPkce,
        Behaviour::NoDynamicRegistration,
    ],
    hint: Some(Hint {
        step: "pkce",
        level: Level::Info,
        message: "AWS Cognito supports S256 but does not advertise it",
        unless: None,
    }),
    settings: &[Setting::AllowMissingPkceMetadata],
};

/// Auth0 tenants (`https://<tenant>.auth0.com/`, `https://<tenant>.<region>.auth0.com/`).
/// `doctor` has no hint for it yet.
pub const AUTH0: Quirk = Quirk {
    provider: "Auth0",
    issuers: &[IssuerPattern::Domain("auth0.com")],
    behaviours: &[
        Behaviour::AudienceParameter,
        Behaviour::IssuerTrailingSlash,
        Behaviour::RotatingRefreshTokens,
    ],
    hint: None,
    settings: &[Setting::AuthorizeParams(&[(
        "audience",
        "<API identifier>",
    )])],
};

/// Keycloak realms (`https://<host>/realms/<realm>`). `doctor` has no hint for it yet.
pub const KEYCLOAK: Quirk = Quirk {
    provider: "Keycloak",
    issuers: &[IssuerPattern::PathUnder("realms")],
    behaviours: &[
        Behaviour::RefusesOfflineAccess,
        Behaviour::RegistersAnotherAuthMethod,
    ],
    hint: None,
    settings: &[],
};

/// GitHub's OAuth apps (`https://github.com/login/oauth`). `doctor` has no hint for it yet.
pub const GITHUB: Quirk = Quirk {
    provider: "GitHub",
    issuers: &[IssuerPattern::Host("github.com")],
    behaviours: &[
        Behaviour::ErrorsWithHttp200,
        Behaviour::NoDynamicRegistration,
    ],
    hint: None,
    settings: &[],
};

/// Every known provider, in the order `doctor` prints their hints.
pub const QUIRKS: &[Quirk] = &[ENTRA, GOOGLE, COGNITO, AUTH0, KEYCLOAK, GITHUB];

/// The providers whose pattern `issuer` matches (none when it is no URL).
pub fn for_issuer(issuer: &str) -> impl Iterator<Item = &'static Quirk> {
    let url = url::Url::parse(issuer).ok();
    QUIRKS
        .iter()
        .filter(move |q| url.as_ref().is_some_and(|u| q.matches(u)))
}

impl Quirk {
    /// Whether `issuer` is this provider's.
    pub fn matches(&self, issuer: &url::Url) -> bool {
        self.issuers.iter().any(|p| p.matches(issuer))
    }

    /// Whether the provider does `b`.
    pub fn does(&self, b: Behaviour) -> bool {
        self.behaviours.contains(&b)
    }

    /// The hint for a server with these settings: none when they already follow it.
    pub fn hint_for(&self, config: &OAuthConfig) -> Option<&Hint> {
        self.hint
            .as_ref()
            .filter(|h| h.unless.is_none_or(|s| !s.is_set(config)))
    }

    /// "set `a` and `b` for this server", or `None` without settings.
    pub fn fix(&self) -> Option<String> {
        if self.settings.is_empty() {
            return None;
        }
        let settings: Vec<String> = self.settings.iter().map(Setting::to_string).collect();
        Some(format!("set {} for this server", settings.join(" and ")))
    }
}

impl IssuerPattern {
    /// Whether `issuer` has this shape. Hosts compare without regard to ASCII case.
    pub fn matches(&self, issuer: &url::Url) -> bool {
        let host = issuer
            .host_str()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match *self {
            IssuerPattern::Host(name) => host == name,
            IssuerPattern::Domain(name) => {
                host == name
                    || host
                        .strip_suffix(name)
                        .is_some_and(|sub| sub.ends_with('.'))
            }
            IssuerPattern::Regional { service, domain } => host
                .strip_prefix(service)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_suffix(domain))
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|region| !region.is_empty() && !region.contains('.')),
            IssuerPattern::PathUnder(parent) => {
                let mut segments = issuer.path().trim_end_matches('/').rsplit('/');
                let last = segments.next().unwrap_or_default();
                !last.is_empty() && segments.next() == Some(parent)
            }
        }
    }
}

impl Setting {
    /// Whether the server's settings have this one already (any value where the
    /// suggestion holds a placeholder).
    pub fn is_set(&self, config: &OAuthConfig) -> bool {
        match *self {
            Setting::OmitResource => config.resource == ResourceSetting::Omit,
            Setting::Scopes(_) => config.scopes.is_some(),
            Setting::AuthorizeParams(params) => params
                .iter()
                .all(|(k, _)| config.authorize_params.iter().any(|(ck, _)| ck == k)),
            Setting::AllowMissingPkceMetadata => {
                config.pkce_metadata == PkceMetadataPolicy::AllowMissing
            }
        }
    }
}

impl fmt::Display for Setting {
    /// The configuration file's spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Setting::OmitResource => f.write_str("resource = \"omit\""),
            Setting::Scopes(s) => write!(f, "scopes = {s:?}"),
            Setting::AuthorizeParams(params) => {
                f.write_str("authorize_params = { ")?;
                for (i, (k, v)) in params.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{k} = {v:?}")?;
                }
                f.write_str(" }")
            }
            Setting::AllowMissingPkceMetadata => f.write_str("allow_missing_pkce_metadata = true"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(issuer: &str) -> Vec<&'static str> {
        for_issuer(issuer).map(|q| q.provider).collect()
    }

    /// Each provider's real issuer forms, and lookalikes that must not pass for it.
    #[test]
    fn each_entry_matches_its_issuers_and_not_lookalikes() {
        let cases: &[(&Quirk, &[&str], &[&str])] = &[
            (
                &ENTRA,
                &[
                    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
                    "https://login.microsoftonline.com/common/v2.0",
                    "https://LOGIN.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
                ],
                &[
                    "https://login.microsoftonline.com.evil.example/tenant/v2.0",
                    "https://evil.example/login.microsoftonline.com/v2.0",
                    "https://login-microsoftonline.com/tenant/v2.0",
                    "https://xlogin.microsoftonline.com/tenant/v2.0",
                ],
            ),
            (
                &GOOGLE,
                &[
                    "https://accounts.google.com",
                    "https://accounts.google.com/",
                ],
                &[
                    "https://accounts.google.com.evil.example",
                    "https://evil-accounts.google.com",
                    "https://accounts.google.co",
                    "https://evil.example/accounts.google.com",
                ],
            ),
            (
                &COGNITO,
                &[
                    "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123",
                    "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_XyZ",
                ],
                &[
                    "https://cognito-idp.evil.example/eu-west-1_Abc",
                    "https://cognito-idp.eu-west-1.amazonaws.com.evil.example/x",
                    "https://cognito-idp.amazonaws.com/x",
                    "https://cognito-idp.a.b.amazonaws.com/x",
                    "https://evil.example/cognito-idp.eu-west-1.amazonaws.com",
                ],
            ),
            (
                &AUTH0,
                &[
                    "https://acme.auth0.com/",
                    "https://acme.eu.auth0.com/",
                    "https://acme.us.auth0.com",
                ],
                &[
                    "https://auth0.com.evil.example/",
                    "https://notauth0.com/",
                    "https://evil.example/acme.auth0.com/",
                ],
            ),
            (
                &KEYCLOAK,
                &[
                    "https://sso.example.com/realms/acme",
                    "https://sso.example.com/auth/realms/acme",
                    "http://localhost:8080/realms/master/",
                ],
                &[
                    "https://sso.example.com/realms",
                    "https://sso.example.com/realms/",
                    "https://sso.example.com/realms/acme/protocol/openid-connect",
                    "https://realms.example.com/acme",
                ],
            ),
            (
                &GITHUB,
                &["https://github.com/login/oauth"],
                &[
                    "https://github.com.evil.example/login/oauth",
                    "https://evil.github.io/login/oauth",
                ],
            ),
        ];
        for (quirk, real, lookalikes) in cases {
            for issuer in *real {
                assert_eq!(providers(issuer), [quirk.provider], "{issuer}");
            }
            for issuer in *lookalikes {
                assert!(
                    !providers(issuer).contains(&quirk.provider),
                    "{issuer} passes for {}",
                    quirk.provider
                );
            }
        }
        assert_eq!(cases.len(), QUIRKS.len(), "every entry has cases");
    }

    #[test]
    fn no_match_for_what_is_no_url() {
        assert!(providers("login.microsoftonline.com").is_empty());
        assert!(providers("").is_empty());
        assert!(providers("https://mcp.example.com").is_empty());
    }

    /// The texts `doctor` prints, unchanged since they were written inline there.
    #[test]
    fn fixes_in_the_configuration_files_words() {
        assert_eq!(
            ENTRA.fix().as_deref(),
            Some(
                "set resource = \"omit\" and scopes = \"api://<app-id>/.default offline_access\" \
                 for this server"
            )
        );
        assert_eq!(
            GOOGLE.fix().as_deref(),
            Some(
                "set authorize_params = { access_type = \"offline\", prompt = \"consent\" } for \
                 this server"
            )
        );
        assert_eq!(
            COGNITO.fix().as_deref(),
            Some("set allow_missing_pkce_metadata = true for this server")
        );
        assert_eq!(KEYCLOAK.fix(), None);
    }

    #[test]
    fn a_hint_is_silenced_by_the_setting_it_asks_for() {
        let mut config = OAuthConfig::new("https://mcp.example.com/mcp");
        assert!(ENTRA.hint_for(&config).is_some());
        config.resource = ResourceSetting::Override("https://x.example".into());
        assert!(ENTRA.hint_for(&config).is_some());
        config.resource = ResourceSetting::Omit;
        assert!(ENTRA.hint_for(&config).is_none());
        // Hints without an `unless` are always given.
        config.pkce_metadata = PkceMetadataPolicy::AllowMissing;
        assert!(COGNITO.hint_for(&config).is_some());
        assert!(AUTH0.hint_for(&config).is_none(), "no hint at all");
    }

    #[test]
    fn settings_know_when_they_are_set() {
        let mut config = OAuthConfig::new("https://mcp.example.com/mcp");
        let google = GOOGLE.settings[0];
        assert!(!google.is_set(&config));
        config.authorize_params = vec![("access_type".into(), "offline".into())];
        assert!(!google.is_set(&config), "prompt is missing");
        config
            .authorize_params
            .push(("prompt".into(), "consent".into()));
        assert!(google.is_set(&config));
        assert!(!ENTRA.settings[1].is_set(&config));
        config.scopes = Some("api://x/.default".into());
        assert!(ENTRA.settings[1].is_set(&config));
        assert!(!Setting::AllowMissingPkceMetadata.is_set(&config));
        config.pkce_metadata = PkceMetadataPolicy::AllowMissing;
        assert!(Setting::AllowMissingPkceMetadata.is_set(&config));
    }

    #[test]
    fn behaviours_are_looked_up_by_name() {
        assert!(ENTRA.does(Behaviour::NeedsScopeOnRefresh));
        assert!(!ENTRA.does(Behaviour::UnadvertisedPkce));
        assert!(COGNITO.does(Behaviour::UnadvertisedPkce));
        // Every provider that needs a setting to work says which.
        for q in QUIRKS {
            if q.hint.is_some() {
                assert!(q.fix().is_some(), "{} has a hint without a fix", q.provider);
            }
        }
    }
}
