//! Which authorization server a configured client's credentials may go to.
//!
//! A client id, its secret and its private key belong to one authorization server. The
//! MCP server names the authorization server (its protected resource metadata, or its
//! own origin in the 2025-03-26 fallback), so a server that changes its mind (or lies)
//! would otherwise receive `Authorization: Basic <id>:<secret>` at its token endpoint
//! without the user noticing. A configured client that presents a credential (a secret, a
//! private key, a workload assertion) is therefore pinned to one issuer, per server URL
//! and client id:
//!
//! - the issuer the configuration names (`client_issuer`, `--client-issuer`), which also
//!   becomes the stored pin, so that the choice holds without the flag later on;
//! - else the first issuer the client is used with, stored before the credential is first
//!   sent (trust on first use); the pin outlives logout.
//!
//! Another issuer is refused before anything is sent to it, with an error naming both
//! issuers and the flag that moves the client. A public client (an id alone) is not
//! pinned: it has nothing to lose.

use crate::client::blocking;
use crate::config::{OAuthConfig, PreRegisteredClient};
use crate::error::{Error, Result, Step};
use crate::remedy::Remedy;
use crate::store::{CredentialStore, IssuerPin, IssuerPinKey};
use std::sync::Arc;

/// Does `pre`, used under `config`, send something an authorization server could reuse?
pub(crate) fn presents_credentials(config: &OAuthConfig, pre: &PreRegisteredClient) -> bool {
    pre.client_secret.is_some() || pre.private_key.is_some() || config.workload_assertion.is_some()
}

/// What to do with a configured client and an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send: the issuer is the pinned one.
    Allow,
    /// Send, after storing this pin (first use, or the configuration named a new issuer).
    Pin(IssuerPin),
    /// Do not send: the client belongs to `pinned`.
    Refuse { pinned: IssuerPin },
}

/// The decision for `issuer`, given the configured issuer and the stored pin. Pure.
pub(crate) fn decide(
    configured: Option<&str>,
    stored: Option<&IssuerPin>,
    issuer: &str,
    now: u64,
) -> Decision {
    let pin = |configured| {
        Decision::Pin(IssuerPin {
            issuer: issuer.to_string(),
            pinned_at: now,
            configured,
        })
    };
    match (configured, stored) {
        (Some(c), _) if c != issuer => Decision::Refuse {
            pinned: IssuerPin {
                issuer: c.to_string(),
                pinned_at: now,
                configured: true,
            },
        },
        // The configuration names this issuer: that is the pin from now on.
        (Some(_), Some(p)) if p.issuer == issuer && p.configured => Decision::Allow,
        (Some(_), _) => pin(true),
        (None, Some(p)) if p.issuer == issuer => Decision::Allow,
        (None, Some(p)) => Decision::Refuse { pinned: p.clone() },
        (None, None) => pin(false),
    }
}

/// `Ok` when `pre`'s credentials may be sent to `issuer` for `config`'s server; pins the
/// client at first use. A client without credentials passes.
pub(crate) async fn check(
    store: &Arc<dyn CredentialStore>,
    config: &OAuthConfig,
    pre: &PreRegisteredClient,
    issuer: &str,
) -> Result<()> {
    if !presents_credentials(config, pre) {
        return Ok(());
    }
    let key = IssuerPinKey {
        server_url: config.server_url.clone(),
        client_id: pre.client_id.clone(),
    };
    let stored = {
        let (store, key) = (store.clone(), key.clone());
        blocking(move || store.load_issuer_pin(&key)).await?
    };
    match decide(
        pre.issuer.as_deref(),
        stored.as_ref(),
        issuer,
        crate::util::now_secs(),
    ) {
        Decision::Allow => Ok(()),
        Decision::Pin(pin) => {
            tracing::info!(
                client_id = %pre.client_id,
                %issuer,
                configured = pin.configured,
                "the configured client's credentials are pinned to this authorization server"
            );
            let store = store.clone();
            blocking(move || store.save_issuer_pin(&key, &pin)).await
        }
        Decision::Refuse { pinned } => Err(refusal(config, pre, &pinned, issuer)),
    }
}

/// The error for a client pinned to `pinned` that `config`'s server sends to `issuer`.
fn refusal(
    config: &OAuthConfig,
    pre: &PreRegisteredClient,
    pinned: &IssuerPin,
    issuer: &str,
) -> Error {
    let server = &config.server_url;
    let id = &pre.client_id;
    let why = if pinned.configured {
        format!(
            "the client {id} belongs to the authorization server {} {}",
            pinned.issuer,
            Remedy::ClientIssuerNamed
        )
    } else {
        format!(
            "the client {id} is pinned to the authorization server {}, the first one its \
             credentials were used with",
            pinned.issuer
        )
    };
    Error::Action {
        step: Step::Registration,
        message: format!(
            "{why}, but {server} now sends it to {issuer}: its client secret or private key is \
             not sent there. If the client really belongs to {issuer} now, {} {issuer} \
             (client_issuer in the configuration file); otherwise {server} may be trying to \
             obtain the client's credentials",
            Remedy::MoveClientIssuer
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(issuer: &str, configured: bool) -> IssuerPin {
        IssuerPin {
            issuer: issuer.into(),
            pinned_at: 7,
            configured,
        }
    }

    #[test]
    fn first_use_pins_and_another_issuer_is_refused() {
        let (a, b) = ("https://as-a.example", "https://as-b.example");
        assert_eq!(decide(None, None, a, 7), Decision::Pin(pin(a, false)));
        assert_eq!(decide(None, Some(&pin(a, false)), a, 9), Decision::Allow);
        assert_eq!(
            decide(None, Some(&pin(a, false)), b, 9),
            Decision::Refuse {
                pinned: pin(a, false)
            }
        );
        // A pin the configuration made holds without the configuration, too.
        assert_eq!(
            decide(None, Some(&pin(a, true)), b, 9),
            Decision::Refuse {
                pinned: pin(a, true)
            }
        );
    }

    #[test]
    fn the_configured_issuer_wins_and_becomes_the_pin() {
        let (a, b) = ("https://as-a.example", "https://as-b.example");
        assert_eq!(
            decide(Some(b), Some(&pin(a, false)), b, 7),
            Decision::Pin(pin(b, true))
        );
        assert_eq!(decide(Some(b), Some(&pin(b, true)), b, 9), Decision::Allow);
        assert_eq!(decide(Some(b), None, b, 7), Decision::Pin(pin(b, true)));
        assert!(matches!(
            decide(Some(b), Some(&pin(b, true)), a, 9),
            Decision::Refuse { pinned } if pinned.issuer == b && pinned.configured
        ));
    }

    #[test]
    fn the_refusal_names_both_issuers_and_the_setting() {
        let mut config = OAuthConfig::new("https://mcp.example/mcp");
        config.client = Some(PreRegisteredClient {
            client_id: "svc".into(),
            ..Default::default()
        });
        let pre = config.client.clone().unwrap();
        let m = refusal(
            &config,
            &pre,
            &pin("https://as-a.example", false),
            "https://evil.example",
        )
        .to_string();
        for part in [
            "svc",
            "https://as-a.example",
            "https://evil.example",
            &format!("{} https://evil.example", Remedy::MoveClientIssuer),
            "https://mcp.example/mcp",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
    }
}
