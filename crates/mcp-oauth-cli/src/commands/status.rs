//! `mcp-oauth status [URL]`: what is stored.

use super::common::{self, CredentialSummary, UnreadableSummary, same_server};
use crate::args::{Check, profile, server};
use crate::config_file::{self, ConfigFile};
use crate::out;
use crate::settings::server_url_of;
use crate::ui::{self, bold_out};
use clap::Args;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth status
  mcp-oauth status https://example.com/mcp --json | jq '.[0].expires_in'

Reads the credential store only (no network). Secrets are never printed. A credential file
that cannot be read is listed too (EXPIRES says UNREADABLE; in --json it has an
\"unreadable\" object with its path, the reason and the command that fixes it).")]
pub struct StatusArgs {
    /// Only this MCP server (its URL, or its name in the configuration file).
    #[arg(value_parser = Check(server))]
    pub url: Option<String>,
    /// Only this profile.
    #[arg(long, value_name = "NAME", value_parser = Check(profile))]
    pub profile: Option<String>,
    /// A JSON array for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(mut args: StatusArgs) -> anyhow::Result<()> {
    args.url = args.url.map(|u| server_url_of(&u, None)).transpose()?;
    let store = common::store()?;
    let s = store.clone();
    let scan = tokio::task::spawn_blocking(move || s.scan_credentials()).await??;
    let names = server_names();
    let rows: Vec<CredentialSummary> = scan
        .entries
        .iter()
        .filter(|(k, _)| {
            args.url
                .as_deref()
                .is_none_or(|u| same_server(&k.server_url, u))
        })
        .filter(|(k, _)| args.profile.is_none() || k.profile == args.profile)
        .map(|(k, r)| CredentialSummary {
            name: names.name_of(&k.server_url).map(str::to_owned),
            ..CredentialSummary::new(k, r)
        })
        .collect();
    let broken: Vec<UnreadableSummary> = common::unreadable_for(
        &store,
        scan.unreadable,
        args.url.as_deref(),
        args.profile.as_deref(),
    )
    .iter()
    .map(UnreadableSummary::new)
    .collect();
    if args.json {
        // One array: the credentials, then the unreadable files (scripts that read
        // `.[0].expires_in` keep working).
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Stored(&'a CredentialSummary),
            Unreadable(&'a UnreadableSummary),
        }
        let all: Vec<Entry> = (rows.iter().map(Entry::Stored))
            .chain(broken.iter().map(Entry::Unreadable))
            .collect();
        out::line(serde_json::to_string_pretty(&all)?)?;
        return Ok(());
    }
    if rows.is_empty() && broken.is_empty() {
        match &args.url {
            Some(u) => out::line(format_args!(
                "No stored credentials for {u}. Log in with `mcp-oauth login {u}`."
            ))?,
            None => out::line(format_args!(
                "No stored credentials (store: {}).",
                store.describe()
            ))?,
        }
        return Ok(());
    }
    let mut table: Vec<Vec<String>> = rows.iter().map(row).collect();
    table.extend(broken.iter().map(|b| {
        vec![
            "-".into(),
            b.server_url.clone().unwrap_or_else(|| "?".into()),
            b.profile.clone().unwrap_or_else(|| "-".into()),
            "-".into(),
            "-".into(),
            "-".into(),
            "UNREADABLE".into(),
            "-".into(),
        ]
    }));
    // The NAME column only when the configuration file names a server listed here.
    let named = rows.iter().any(|r| r.name.is_some());
    let mut header = vec![
        "NAME", "SERVER", "PROFILE", "ISSUER", "CLIENT", "SCOPES", "EXPIRES", "REFRESH",
    ];
    if !named {
        header.remove(0);
        for r in &mut table {
            r.remove(0);
        }
    }
    print_table(&header, &table)?;
    if !broken.is_empty() {
        out::line("\nUnreadable credential files (the tokens in them cannot be used):")?;
        for b in &broken {
            out::line(format_args!(
                "  {}\n    {}\n    fix: {}",
                b.unreadable.path, b.unreadable.reason, b.unreadable.fix
            ))?;
        }
    }
    out::line(format_args!("\nStore: {}", store.describe()))?;
    Ok(())
}

/// The names of the configuration file's servers. Status reads the store; a configuration
/// file that cannot be read costs the names only (with a warning), not the listing.
fn server_names() -> ConfigFile {
    let Some(path) = config_file::default_path() else {
        return ConfigFile::default();
    };
    config_file::load(&path, false).unwrap_or_else(|e| {
        ui::warn(&format!("{e}; server names are not shown"));
        ConfigFile::default()
    })
}

fn row(s: &CredentialSummary) -> Vec<String> {
    vec![
        s.name.clone().unwrap_or_else(|| "-".into()),
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
}

fn print_table(header: &[&str], table: &[Vec<String>]) -> Result<(), out::OutputError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in table {
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
    Ok(())
}
