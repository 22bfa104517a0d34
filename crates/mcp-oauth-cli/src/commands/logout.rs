//! `mcp-oauth logout <URL> | --all`: revoke (RFC 7009) and delete stored credentials.

use super::common::{self, same_server};
use crate::args::{Check, server_url};
use crate::out;
use crate::ui::{self, CliError};
use clap::Args;
use mcp_oauth::revocation::{self, RevocationReport, TokenRevocation};
use mcp_oauth::store::{CredentialKey, CredentialStore};
use serde::Serialize;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth logout https://example.com/mcp
  mcp-oauth logout https://example.com/mcp --profile work
  mcp-oauth logout --all

The refresh token, then the access token, are revoked at the authorization server's
revocation endpoint (RFC 7009) when it offers one; the stored credential is deleted either way.
Dynamically registered clients are kept (they are reused at the next login).")]
pub struct LogoutArgs {
    /// The MCP server URL.
    #[arg(value_parser = Check(server_url), required_unless_present = "all", conflicts_with = "all")]
    pub url: Option<String>,
    /// Every stored credential.
    #[arg(long)]
    pub all: bool,
    /// Only this profile (default: every profile of the server).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Delete locally without revoking at the authorization server.
    #[arg(long)]
    pub no_revoke: bool,
    /// Report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Outcome {
    server_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<RevocationReport>,
    deleted: bool,
}

pub async fn run(args: LogoutArgs) -> anyhow::Result<()> {
    let store = common::store()?;
    let http = common::http()?;
    let s2 = store.clone();
    let list = tokio::task::spawn_blocking(move || s2.list()).await??;
    let keys: Vec<CredentialKey> = list
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| {
            args.all
                || args
                    .url
                    .as_deref()
                    .is_some_and(|u| same_server(&k.server_url, u))
        })
        .filter(|k| args.profile.is_none() || k.profile == args.profile)
        .collect();
    if keys.is_empty() {
        if args.json {
            out::line("[]")?;
        } else {
            match &args.url {
                Some(u) => out::line(format_args!("Not logged in to {u}; nothing to do."))?,
                None => out::line("No stored credentials; nothing to do.")?,
            }
        }
        return Ok(());
    }
    let mut outcomes = Vec::new();
    let mut incomplete = 0;
    for key in keys {
        // Hold the server's lock, so that no refresh runs while its grant is revoked.
        let (s, k) = (store.clone(), key.clone());
        let lock = tokio::task::spawn_blocking(move || s.lock(&k)).await??;
        let (s, k) = (store.clone(), key.clone());
        let Some(record) = tokio::task::spawn_blocking(move || s.load(&k)).await?? else {
            continue;
        };
        let revocation = if args.no_revoke {
            None
        } else {
            let r = revocation::revoke_record(&http, &record).await;
            if !r.complete() && r.endpoint.is_some() {
                incomplete += 1;
            }
            Some(r)
        };
        let (s, k) = (store.clone(), key.clone());
        let deleted = tokio::task::spawn_blocking(move || s.remove(&k)).await??;
        drop(lock);
        if !args.json {
            describe(&key, revocation.as_ref(), &record.tokens.expires_at)?;
        }
        outcomes.push(Outcome {
            server_url: key.server_url.clone(),
            profile: key.profile.clone(),
            revocation,
            deleted,
        });
    }
    if args.json {
        out::line(serde_json::to_string_pretty(&outcomes)?)?;
    }
    if incomplete > 0 {
        return Err(CliError {
            message: format!(
                "{incomplete} credential(s) were deleted here but not fully revoked at the authorization server (see above)"
            ),
            hint: Some("revoke the grant in the authorization server's account settings, or retry once it is reachable".into()),
            code: ui::exit::FAILURE,
        }
        .into());
    }
    Ok(())
}

fn describe(
    key: &CredentialKey,
    r: Option<&RevocationReport>,
    expires_at: &Option<u64>,
) -> Result<(), out::OutputError> {
    let who = match &key.profile {
        Some(p) => format!("{} (profile {p})", key.server_url),
        None => key.server_url.clone(),
    };
    out::line(format_args!(
        "Logged out of {who}: stored credential deleted."
    ))?;
    let Some(r) = r else {
        return out::line("  not revoked (--no-revoke)");
    };
    let Some(endpoint) = &r.endpoint else {
        let until = expires_at
            .map(|e| format!(" ({})", ui::relative(e as i64 - ui::now_secs() as i64)))
            .unwrap_or_default();
        return out::line(format_args!(
            "  the authorization server offers no revocation endpoint: the tokens stay valid until they \
             expire{until}"
        ));
    };
    for (name, t) in [
        ("refresh token", &r.refresh_token),
        ("access token", &r.access_token),
    ] {
        match t {
            TokenRevocation::Revoked => out::line(format_args!("  {name} revoked at {endpoint}"))?,
            TokenRevocation::Absent => {}
            TokenRevocation::NotOffered => {
                out::line(format_args!("  {name}: no revocation endpoint"))?
            }
            TokenRevocation::Unsupported(why) => {
                let until = expires_at
                    .map(|e| format!(" ({})", ui::relative(e as i64 - ui::now_secs() as i64)))
                    .unwrap_or_default();
                out::line(format_args!(
                    "  {name}: the authorization server cannot revoke it ({why}); it stays valid until it expires{until}"
                ))?
            }
            TokenRevocation::Failed(e) => out::line(format_args!("  {name} NOT revoked: {e}"))?,
        }
    }
    Ok(())
}
