//! `mcp-oauth doctor <URL>`: explain every step of discovery, without logging in. The
//! probing and the checks are the library's ([`mcp_oauth::doctor`]); the text is
//! [`render`]'s.

mod render;

use super::common;
use crate::args::{Check, server};
use crate::out;
use crate::progress;
use crate::settings::OAuthArgs;
use crate::ui::{self, CliError};
use clap::Args;
use mcp_oauth::doctor::{self, LoginReport};
use render::{Style, render};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth doctor https://example.com/mcp
  mcp-oauth doctor https://example.com/mcp --json | jq '.checks[] | select(.level == \"fail\")'
  mcp-oauth doctor https://example.com/mcp --login

Sends an unauthenticated POST initialize and GET, asks every protected resource metadata URL
and every authorization server metadata URL the spec defines (not only the first that works),
checks the resource, issuer, PKCE, HTTPS and registration options, and says which known
client behaviours fail at this server and how to fix it. Exit status 1 when a MUST of the
spec is broken (or, with --login, when the login fails).")]
pub struct DoctorArgs {
    /// The MCP server URL, or its name in the configuration file.
    #[arg(value_parser = Check(server))]
    pub url: String,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Continue into a real login, and report it too.
    #[arg(long)]
    pub login: bool,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let url = args.oauth.server_url_of(&args.url)?;
    let resolved = args.oauth.resolve(&url)?;
    if let Some(f) = &resolved.config_file {
        ui::say(format_args!("settings: {}", f.display()));
    }
    let http = common::http()?;
    let mut report = {
        let _wait = progress::network(
            format!(
                "Examining {}: its challenge, metadata and authorization server",
                progress::host_of(&url)
            ),
            None,
        );
        doctor::diagnose(&http, &resolved.config).await
    };
    if resolved.static_authorization.is_some() {
        ui::say(format_args!(
            "note: a static Authorization header is configured for {url}: mcp-oauth does not use OAuth there"
        ));
    }
    if args.login {
        let store = common::store()?;
        let oauth = common::oauth_client(resolved.config.clone(), http.clone(), store);
        let challenge = report
            .probes
            .first()
            .map(|p| p.www_authenticate.clone())
            .unwrap_or_default();
        report.login = Some(match oauth.login(&challenge).await {
            Ok(o) => LoginReport {
                ok: true,
                issuer: Some(o.record.issuer.clone()),
                registration: Some(o.record.client.kind),
                scope: o
                    .record
                    .tokens
                    .scope
                    .clone()
                    .or(o.record.tokens.requested_scope.clone()),
                expires_at: o.record.tokens.expires_at,
                refresh_token: o.record.tokens.refresh_token.is_some(),
                error: None,
            },
            Err(e) => LoginReport {
                ok: false,
                issuer: None,
                registration: None,
                scope: None,
                expires_at: None,
                refresh_token: false,
                error: Some(e.to_string()),
            },
        });
    }
    // The report quotes the library's messages: in the command line's terms.
    if args.json {
        out::line(ui::in_cli_terms(&serde_json::to_string_pretty(&report)?))?;
    } else {
        out::text(&ui::in_cli_terms(&render(
            &report,
            Style {
                color: ui::color_stdout(),
            },
        )))?;
    }
    // Not an MCP server at all: that, rather than a count of broken MUSTs.
    if let Some(e) = report.probes.first().and_then(common::not_mcp) {
        return Err(e);
    }
    let fails = report.must_violations();
    let login_failed = report.login.as_ref().is_some_and(|l| !l.ok);
    if fails > 0 || login_failed {
        return Err(CliError {
            message: if fails > 0 {
                format!(
                    "{url} breaks {fails} MUST{} of the MCP authorization spec (FAIL above)",
                    if fails == 1 { "" } else { "s" }
                )
            } else {
                format!("the login to {url} failed (see above)")
            },
            hint: None,
            code: ui::exit::FAILURE,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The settings doctor suggests for an identity provider (`mcp_oauth::quirks`) are
    /// spelt as the configuration file wants them: a server table with them loads.
    #[test]
    fn suggested_settings_are_configuration_file_keys() {
        for quirk in mcp_oauth::quirks::QUIRKS {
            let settings: Vec<String> = quirk.settings.iter().map(|s| s.to_string()).collect();
            let text = format!(
                "[servers.\"https://mcp.example.com/mcp\"]\n{}\n",
                settings.join("\n")
            );
            let file = crate::config_file::parse(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", quirk.provider));
            file.settings_for("https://mcp.example.com/mcp", None)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", quirk.provider));
        }
    }
}
