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

/// One phrase of a message that names a setting (see the [module](self) documentation).
/// The variants are named for the setting; the comment of each says where it is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Remedy {
    /// A configured client refused at the authorization endpoint.
    CheckClientId,
    /// No dynamic registration, and the authorization server takes Client ID Metadata
    /// Documents.
    SetClientMetadataUrl,
    /// No dynamic registration: register a client and configure it.
    ConfigureRegisteredClient,
    /// A client authentication method that needs a secret, without one.
    ConfigureClientSecret,
    /// `private_key_jwt` without a private key.
    ConfigurePrivateKey,
    /// A grant without a user, and no client configured for it.
    ConfigureClientForGrant,
    /// The jwt-bearer grant without a workload assertion.
    ConfigureWorkloadAssertion,
    /// Enterprise-managed authorization without the IdP settings.
    ConfigureEnterpriseIdp,
    /// Metadata without `code_challenge_methods_supported`.
    AllowMissingPkceMetadata,
    /// A private address refused by the network policy.
    AllowPrivateNetworks,
    /// A name only the HTTP proxy could resolve, refused by the network policy.
    TrustProxyDns,
    /// An MCP server over plain http off loopback.
    AllowPlainHttp,
    /// The redirect listener's port is taken.
    ChooseRedirectPort,
    /// No browser could be opened.
    PasteInsteadOfBrowser,
    /// The device grant asked of an authorization server that does not offer it.
    PasteInsteadOfDevice,
    /// A configured client bound to its authorization server by the configuration.
    ClientIssuerNamed,
    /// A configured client used with another authorization server than its pin.
    MoveClientIssuer,
    /// An issuer pin file that cannot be read.
    NameClientIssuer,
}

impl Remedy {
    /// Every phrase, for a front end that restates them.
    pub const ALL: [Remedy; 18] = [
        Remedy::CheckClientId,
        Remedy::SetClientMetadataUrl,
        Remedy::ConfigureRegisteredClient,
        Remedy::ConfigureClientSecret,
        Remedy::ConfigurePrivateKey,
        Remedy::ConfigureClientForGrant,
        Remedy::ConfigureWorkloadAssertion,
        Remedy::ConfigureEnterpriseIdp,
        Remedy::AllowMissingPkceMetadata,
        Remedy::AllowPrivateNetworks,
        Remedy::TrustProxyDns,
        Remedy::AllowPlainHttp,
        Remedy::ChooseRedirectPort,
        Remedy::PasteInsteadOfBrowser,
        Remedy::PasteInsteadOfDevice,
        Remedy::ClientIssuerNamed,
        Remedy::MoveClientIssuer,
        Remedy::NameClientIssuer,
    ];

    /// The phrase as this library's messages say it.
    pub fn phrase(self) -> &'static str {
        match self {
            Remedy::CheckClientId => "check the client id (client_id)",
            Remedy::SetClientMetadataUrl => "set client_metadata_url",
            Remedy::ConfigureRegisteredClient => {
                "pass its id in client_id (and the secret in client_secret, if it has one)"
            }
            Remedy::ConfigureClientSecret => "configure one (client_secret)",
            Remedy::ConfigurePrivateKey => "no private key is configured (private_key)",
            Remedy::ConfigureClientForGrant => "set client_id, with client_secret or private_key",
            Remedy::ConfigureWorkloadAssertion => "a workload assertion (workload_assertion)",
            Remedy::ConfigureEnterpriseIdp => "the IdP settings (enterprise)",
            Remedy::AllowMissingPkceMetadata => {
                "set `allow_missing_pkce_metadata = true` for this server"
            }
            Remedy::AllowPrivateNetworks => "set allow_private_networks",
            Remedy::TrustProxyDns => "set trust_proxy_dns = true",
            Remedy::AllowPlainHttp => "accept the risk for this server with allow_plain_http",
            Remedy::ChooseRedirectPort => "choose another port in redirect.port",
            Remedy::PasteInsteadOfBrowser => "or use Interaction::Paste",
            Remedy::PasteInsteadOfDevice => "use Interaction::Paste to paste",
            Remedy::ClientIssuerNamed => "(client_issuer)",
            Remedy::MoveClientIssuer => "say so by setting the client's issuer to",
            Remedy::NameClientIssuer => "name the client's authorization server as its issuer",
        }
    }

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
        for a in Remedy::ALL {
            assert!(!a.phrase().contains("--"), "{a:?}");
            for b in Remedy::ALL {
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
