//! What a message tells the user to set, in this library's terms.
//!
//! An error that a setting can get past says so, naming the setting as [`OAuthConfig`]
//! (or the configuration file) names it: this library has no command line. Each such
//! phrase is a [`Remedy`], written into messages through its `Display`, so that a front
//! end that exposes the settings under other names (the `mcp-oauth` command line names
//! its flags) can restate every one of them in its own terms: [`Remedy::ALL`] lists
//! them, and [`Remedy::restate`] replaces each in a text.
//!
//! [`OAuthConfig`]: crate::config::OAuthConfig

use std::fmt;

/// Declares [`Remedy`] from one list: each variant with its phrase, so that the enum,
/// [`Remedy::ALL`] and [`Remedy::phrase`] cannot disagree (a variant missing from `ALL`
/// would never be restated by a front end).
macro_rules! remedies {
    ($($(#[$doc:meta])* $name:ident => $phrase:expr,)*) => {
        /// One phrase of a message that names a setting (see the [module](self)
        /// documentation). The variants are named for the setting; the comment of each
        /// says where it is said.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Remedy {
            $($(#[$doc])* $name,)*
        }

        impl Remedy {
            /// Every phrase, for a front end that restates them.
            pub const ALL: &'static [Remedy] = &[$(Remedy::$name,)*];

            /// The phrase as this library's messages say it.
            pub fn phrase(self) -> &'static str {
                match self {
                    $(Remedy::$name => $phrase,)*
                }
            }
        }
    };
}

remedies! {
    /// A configured client refused at the authorization endpoint.
    CheckClientId => "check the client id (client_id)",
    /// No dynamic registration, and the authorization server takes Client ID Metadata
    /// Documents.
    SetClientMetadataUrl => "set client_metadata_url",
    /// No dynamic registration: register a client and configure it.
    ConfigureRegisteredClient => "pass its id in client_id (and the secret in client_secret, if it has one)",
    /// A client authentication method that needs a secret, without one.
    ConfigureClientSecret => "configure one (client_secret)",
    /// `private_key_jwt` without a private key.
    ConfigurePrivateKey => "no private key is configured (private_key)",
    /// A grant without a user, and no client configured for it.
    ConfigureClientForGrant => "set client_id, with client_secret or private_key",
    /// The jwt-bearer grant without a workload assertion.
    ConfigureWorkloadAssertion => "a workload assertion (workload_assertion)",
    /// Enterprise-managed authorization without the IdP settings.
    ConfigureEnterpriseIdp => "the IdP settings (enterprise)",
    /// Metadata without `code_challenge_methods_supported`.
    AllowMissingPkceMetadata => "set `allow_missing_pkce_metadata = true` for this server",
    /// A refusal of a request without `scope`, from an authorization server that grants
    /// nothing without one.
    SetScopes => "set the scopes to ask for (scopes)",
    /// A private address refused by the network policy.
    AllowPrivateNetworks => "set allow_private_networks",
    /// A name only the HTTP proxy could resolve, refused by the network policy.
    TrustProxyDns => "set trust_proxy_dns = true",
    /// An MCP server over plain http off loopback.
    AllowPlainHttp => "accept the risk for this server with allow_plain_http",
    /// The redirect listener's port is taken.
    ChooseRedirectPort => "choose another port in redirect.port",
    /// No browser could be opened.
    PasteInsteadOfBrowser => "or use Interaction::Paste",
    /// The device grant asked of an authorization server that does not offer it.
    PasteInsteadOfDevice => "use Interaction::Paste to paste",
    /// A configured client bound to its authorization server by the configuration.
    ClientIssuerNamed => "(client_issuer)",
    /// A configured client used with another authorization server than its pin.
    MoveClientIssuer => "say so by setting the client's issuer to",
    /// An issuer pin file that cannot be read.
    NameClientIssuer => "name the client's authorization server as its issuer",
}

impl Remedy {
    /// `text` with each phrase replaced by `say(remedy)`: how a front end puts a
    /// message in its own terms.
    pub fn restate(text: &str, say: impl Fn(Remedy) -> &'static str) -> String {
        Remedy::ALL.iter().fold(text.to_string(), |t, r| {
            if t.contains(r.phrase()) {
                t.replace(r.phrase(), say(*r))
            } else {
                t
            }
        })
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_name_no_flag_and_do_not_contain_each_other() {
        for &a in Remedy::ALL {
            assert!(!a.phrase().contains("--"), "{a:?}");
            for &b in Remedy::ALL {
                assert!(
                    a == b || !a.phrase().contains(b.phrase()),
                    "{a:?} contains {b:?}"
                );
            }
        }
        let said = Remedy::restate(
            "x: set allow_private_networks, which weakens this check",
            |r| match r {
                Remedy::AllowPrivateNetworks => "set it with --flag",
                _ => "?",
            },
        );
        assert_eq!(said, "x: set it with --flag, which weakens this check");
    }

    /// The quirks table spells the PKCE setting for `doctor`; the phrase spells it alike.
    #[test]
    fn the_pkce_phrase_spells_the_setting_as_the_quirks_table() {
        assert_eq!(
            Remedy::AllowMissingPkceMetadata.phrase(),
            format!(
                "set `{}` for this server",
                crate::quirks::Setting::AllowMissingPkceMetadata
            )
        );
    }
}
