//! `mcp-oauth login <URL>`: authorize now.

use super::common::{self, CredentialSummary};
use crate::args::{Check, server};
use crate::out;
use crate::progress;
use crate::settings::OAuthArgs;
use crate::ui::{self, CliError, bold_out, with_hint};
use clap::Args;
use mcp_oauth::doctor::{self, Answer};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth login https://example.com/mcp
  mcp-oauth login https://example.com/mcp --no-browser          # over SSH: paste the redirect
  mcp-oauth login https://example.com/mcp --device              # RFC 8628 device code
  mcp-oauth login https://example.com/mcp --profile work
  mcp-oauth login https://example.com/mcp --force               # authorize again anyway
  mcp-oauth login https://example.com/mcp --client-id my-app --client-secret-env MY_SECRET \\
      --redirect-uri http://localhost:3118/callback

A real MCP request (POST initialize, no token) collects the server's 401 challenge first, so
servers that only challenge POST work too. The tokens are stored; other mcp-oauth commands,
and other processes, use them. When a valid credential (with the scopes asked for) is stored
already, login says so and exits 0 without opening the browser; --force authorizes again.")]
pub struct LoginArgs {
    /// The MCP server URL, e.g. https://example.com/mcp, or its name in the configuration
    /// file ([servers.NAME] url = "…").
    #[arg(value_parser = Check(server))]
    pub url: String,
    /// Print the stored credential's description as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Authorize again even when a valid credential is stored.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let url = args.oauth.server_url_of(&args.url)?;
    let resolved = args.oauth.resolve(&url)?;
    if resolved.static_authorization.is_some() {
        return Err(CliError {
            message: format!("OAuth is off for {url}: a static Authorization header is configured for it"),
            hint: Some("remove authorization_env / authorization_file (or --authorization-env) to log in with OAuth".into()),
            code: ui::exit::FAILURE,
        }
        .into());
    }
    let http = common::http()?;
    let store = common::store()?;
    let oauth = common::oauth_client(resolved.config.clone(), http.clone(), store);
    let stored = if args.force {
        None
    } else {
        let _wait = progress::network("Checking the stored credential", None);
        still_valid(&oauth, &resolved.config).await
    };
    if let Some(record) = stored {
        let summary = CredentialSummary::new(&resolved.config.credential_key(), &record);
        if args.json {
            let mut v = serde_json::to_value(&summary)?;
            v["already_logged_in"] = serde_json::Value::Bool(true);
            out::line(serde_json::to_string_pretty(&v)?)?;
        } else {
            print_summary(&summary, Header::Already)?;
        }
        ui::say(format_args!(
            "A valid credential is stored; to authorize again anyway: mcp-oauth login --force {url}"
        ));
        return Ok(());
    }
    let probe = {
        let _wait = progress::network(
            format!(
                "Asking {} whether it needs authorization",
                progress::host_of(&url)
            ),
            Some(doctor::PROBE_TIMEOUT),
        );
        // Through the OAuth client's policy, so that the server's name has one zone for both.
        doctor::probe(oauth.http(), &url, true).await
    };
    if let Some(e) = common::not_mcp(&probe) {
        return Err(e);
    }
    match (probe.answer(), probe.status, &probe.error) {
        (Answer::Challenge, ..) => {
            tracing::info!("the server asked for authorization; its challenge starts discovery")
        }
        (Answer::Open, ..) if !args.force => {
            ui::say(format_args!(
                "{}: there is nothing to log in to. `mcp-oauth call {url}` works without a login \
                 (--force tries discovery all the same).",
                probe.answer_in_words().unwrap_or_default()
            ));
            return Ok(());
        }
        (_, Some(s), _) => ui::warn(&format!(
            "{url} answered an unauthenticated MCP request with HTTP {s}, not 401; trying discovery without a challenge"
        )),
        (_, None, e) => {
            let e = e.as_deref().unwrap_or_default();
            let connect = ui::connect_failure(&url, e);
            return Err(CliError {
                message: connect.clone().unwrap_or_else(|| {
                    if e.is_empty() {
                        format!("MCP request: cannot reach {url}")
                    } else {
                        e.to_string()
                    }
                }),
                hint: Some(if connect.is_some() {
                    ui::CONNECT_HINT.into()
                } else {
                    format!(
                        "check the URL and the network; `mcp-oauth doctor {url}` shows every step"
                    )
                }),
                code: ui::exit::FAILURE,
            }
            .into());
        }
    }
    let outcome = oauth
        .login(&probe.www_authenticate)
        .await
        .map_err(|e| with_hint(e.into(), &url))?;
    let key = resolved.config.credential_key();
    let summary = CredentialSummary::new(&key, &outcome.record);
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["adopted"] = serde_json::Value::Bool(outcome.adopted);
        out::line(serde_json::to_string_pretty(&v)?)?;
    } else {
        print_summary(
            &summary,
            if outcome.adopted {
                Header::Adopted
            } else {
                Header::LoggedIn
            },
        )?;
    }
    if !summary.refresh_token {
        ui::warn(&format!(
            "no refresh token came back: you will have to log in again when the access token expires ({}). \
             Some servers issue one only when asked: Google needs --authorize-param access_type=offline \
             --authorize-param prompt=consent; others need the offline_access scope.",
            summary.expiry_text()
        ));
    }
    Ok(())
}

/// The stored credential that a login would replace, when it is still good: valid (or
/// renewed without the user: a refresh token, a grant without a user) and holding the
/// scopes asked for. A login is then a second browser trip for nothing.
async fn still_valid(
    oauth: &mcp_oauth::OAuthClient,
    config: &mcp_oauth::OAuthConfig,
) -> Option<mcp_oauth::store::CredentialRecord> {
    match oauth.valid_token().await {
        Ok(Some(_)) => {}
        Ok(None) => return None,
        Err(e) => {
            tracing::info!(error = %e, "the stored credential cannot be renewed; logging in");
            return None;
        }
    }
    let record = oauth.stored().await.ok()??;
    let held = record
        .tokens
        .scope
        .as_deref()
        .or(record.tokens.requested_scope.as_deref())
        .unwrap_or_default();
    let wanted = config.scopes.as_deref().unwrap_or_default();
    let missing: Vec<&str> = wanted
        .split(' ')
        .filter(|w| !w.is_empty() && !held.split(' ').any(|h| h == *w))
        .collect();
    if !missing.is_empty() {
        tracing::info!(missing = %missing.join(" "), "the stored credential lacks scopes asked for; logging in");
        return None;
    }
    Some(record)
}

/// The first line of a login's summary.
pub enum Header {
    LoggedIn,
    /// Another process had just logged in; its credential is used.
    Adopted,
    /// A valid credential was already stored; nothing was done.
    Already,
}

pub fn print_summary(s: &CredentialSummary, header: Header) -> Result<(), out::OutputError> {
    let who = match &s.profile {
        Some(p) => format!("{} (profile {p})", s.server_url),
        None => s.server_url.clone(),
    };
    match header {
        Header::LoggedIn => out::line(format_args!("{} {who}", bold_out("Logged in to")))?,
        Header::Adopted => out::line(format_args!(
            "{} {who} (another process had just logged in; its credential is used)",
            bold_out("Logged in to")
        ))?,
        Header::Already => out::line(format_args!(
            "{} {who} (a valid credential is stored; nothing was done)",
            bold_out("Already logged in to")
        ))?,
    }
    let scope = match (&s.scope, &s.requested_scope) {
        (Some(g), _) => g.clone(),
        (None, Some(r)) => format!("not stated by the server (asked for: {r})"),
        (None, None) => "not stated by the server".into(),
    };
    let rows = [
        ("authorization server", s.issuer.clone()),
        ("client", format!("{} ({})", s.client_id, s.registration)),
        (
            "resource",
            s.resource_indicator
                .clone()
                .unwrap_or_else(|| "(not sent)".into()),
        ),
        ("scopes granted", scope),
        ("expires", s.expiry_text()),
        (
            "refresh token",
            if s.refresh_token {
                "yes".into()
            } else {
                "no".into()
            },
        ),
    ];
    for (k, v) in rows {
        out::line(format_args!("  {k:<21} {v}"))?;
    }
    Ok(())
}
