//! `mcp-oauth status [URL]`: what is stored.

use super::common::{self, CredentialSummary, same_server};
use crate::args::{Check, server_url};
use crate::out;
use crate::ui::{self, bold_out};
use clap::Args;
use mcp_oauth::store::CredentialStore;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth status
  mcp-oauth status https://example.com/mcp --json | jq '.[0].expires_in'

Reads the credential store only (no network). Secrets are never printed.")]
pub struct StatusArgs {
    /// Only this MCP server.
    #[arg(value_parser = Check(server_url))]
    pub url: Option<String>,
    /// Only this profile.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// A JSON array for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let store = common::store()?;
    let dir = store.dir().to_path_buf();
    let list = tokio::task::spawn_blocking(move || store.list()).await??;
    let rows: Vec<CredentialSummary> = list
        .iter()
        .filter(|(k, _)| {
            args.url
                .as_deref()
                .is_none_or(|u| same_server(&k.server_url, u))
        })
        .filter(|(k, _)| args.profile.is_none() || k.profile == args.profile)
        .map(|(k, r)| CredentialSummary::new(k, r))
        .collect();
    if args.json {
        out::line(serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        match &args.url {
            Some(u) => out::line(format_args!(
                "No stored credentials for {u}. Log in with `mcp-oauth login {u}`."
            ))?,
            None => out::line(format_args!(
                "No stored credentials (store: {}).",
                dir.display()
            ))?,
        }
        return Ok(());
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|s| {
            [
                s.server_url.clone(),
                s.profile.clone().unwrap_or_else(|| "-".into()),
                s.issuer.clone(),
                s.registration_short().to_string(),
                s.scope
                    .clone()
                    .or_else(|| s.requested_scope.clone())
                    .unwrap_or_else(|| "-".into()),
                match (s.expires_at, s.expires_in) {
                    (Some(_), Some(x)) if x <= 0 => format!("expired {}", ui::relative(x)),
                    (Some(_), Some(x)) => ui::relative(x),
                    _ => "unknown".into(),
                },
                if s.refresh_token {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    let header = [
        "SERVER", "PROFILE", "ISSUER", "CLIENT", "SCOPES", "EXPIRES", "REFRESH",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &table {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    out::line(bold_out(&line(
        header.iter().map(|h| h.to_string()).collect(),
    )))?;
    for row in table {
        out::line(line(row.to_vec()))?;
    }
    out::line(format_args!("\nStore: {}", dir.display()))?;
    Ok(())
}
