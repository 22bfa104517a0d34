//! `mcp-oauth token <URL>`: a valid access token for scripts.

use super::common;
use crate::args::{Check, server};
use crate::out;
use crate::settings::OAuthArgs;
use crate::ui::{self, CliError, with_hint};
use clap::Args;
use mcp_oauth::doctor;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  curl -H \"$(mcp-oauth token --header https://example.com/mcp)\" https://example.com/mcp ...
  TOKEN=$(mcp-oauth token https://example.com/mcp) || mcp-oauth login https://example.com/mcp

Refreshes the stored token when it is about to expire (one refresh for all processes that ask
at once; the others wait and use its result). Never opens a browser unless --login is given.
Exit status: 0 with the token on stdout; 3 when there is no usable credential (log in first);
1 on other errors.")]
pub struct TokenArgs {
    /// The MCP server URL, or its name in the configuration file.
    #[arg(value_parser = Check(server))]
    pub url: String,
    /// Print `Authorization: Bearer <token>` instead of the bare token.
    #[arg(long)]
    pub header: bool,
    /// Log in (browser, paste or device) when there is no usable credential.
    #[arg(long)]
    pub login: bool,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let url = args.oauth.server_url_of(&args.url)?;
    let resolved = args.oauth.resolve(&url)?;
    if let Some(value) = &resolved.static_authorization {
        // The configured credential is this server's token.
        if args.header {
            out::line(format_args!("Authorization: {value}"))?;
        } else {
            out::line(value.split_once(' ').map_or(value.as_str(), |(_, t)| t))?;
        }
        return Ok(());
    }
    let http = common::http()?;
    let store = common::store()?;
    let oauth = common::oauth_client(resolved.config.clone(), http.clone(), store);
    let valid = {
        let _wait = crate::progress::network("Renewing the access token", None);
        oauth.valid_token().await
    };
    let tokens = match valid {
        Ok(Some(t)) => t,
        outcome => {
            let why = match &outcome {
                Err(e) => format!("the stored credential could not be renewed: {e}"),
                _ => format!(
                    "no usable credential for {url}{} (not logged in, or expired without a refresh token)",
                    resolved
                        .config
                        .profile
                        .as_deref()
                        .map(|p| format!(" (profile {p})"))
                        .unwrap_or_default()
                ),
            };
            if !args.login {
                if let Err(e) = outcome
                    && e.oauth_error() != Some("invalid_grant")
                {
                    return Err(with_hint(e.into(), &url));
                }
                return Err(CliError {
                    message: why,
                    hint: Some(format!(
                        "run `mcp-oauth login {url}`, or `mcp-oauth token --login {url}`"
                    )),
                    code: ui::exit::LOGIN_REQUIRED,
                }
                .into());
            }
            tracing::info!("{why}; logging in");
            let probe = doctor::probe(oauth.http(), &url, true).await;
            let outcome = oauth
                .token_or_login(&probe.www_authenticate)
                .await
                .map_err(|e| with_hint(e.into(), &url))?;
            outcome.record.tokens
        }
    };
    let scheme = if tokens.token_type.eq_ignore_ascii_case("dpop") {
        ui::warn(
            "this token is DPoP-bound: every request needs a DPoP proof made with its key, so it is of \
             little use on its own; log in with --dpop never (or dpop = \"never\" in the configuration \
             file) for a plain Bearer token",
        );
        "DPoP"
    } else {
        "Bearer"
    };
    if args.header {
        out::line(format_args!(
            "Authorization: {scheme} {}",
            tokens.access_token.expose()
        ))?;
    } else {
        out::line(tokens.access_token.expose())?;
    }
    Ok(())
}
