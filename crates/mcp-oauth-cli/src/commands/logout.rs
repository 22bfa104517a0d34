//! `mcp-oauth logout <URL> | --all`: revoke (RFC 7009) and delete stored credentials.

use super::common::{self, same_server};
use crate::settings::OAuthArgs;
use crate::ui::{self, CliError};
use clap::Args;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::revocation::{self, RevocationReport, TokenRevocation};
use mcp_oauth::store::{ClientAuthMethod, CredentialKey, CredentialRecord, CredentialStore};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth logout https://example.com/mcp
  mcp-oauth logout https://example.com/mcp --profile work
  mcp-oauth logout --all

The refresh token, then the access token, are revoked at the authorization server's
revocation endpoint (RFC 7009) when it offers one; the stored credential is deleted either way.
Dynamically registered clients are kept (they are reused at the next login). A client that
authenticates with private_key_jwt signs its revocation requests with the private_key_file
of the server's settings in the configuration file, or with --private-key.")]
pub struct LogoutArgs {
    /// The MCP server URL.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
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
    /// PEM private key (PKCS#8) of a private_key_jwt client, when the configuration file
    /// does not name it (the store keeps no keys).
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Algorithm of --private-key [default: ES256].
    #[arg(long, value_name = "ALG", requires = "private_key")]
    pub private_key_alg: Option<String>,
}

impl LogoutArgs {
    /// The key that signs a `private_key_jwt` client's revocation requests: the server's
    /// settings as `login` reads them (the configuration file, for the record's profile),
    /// with `--private-key` on top. `None` for other clients, and when no key is found
    /// (revocation then fails with an error that says so, and the logout reports it).
    fn signing_key(&self, key: &CredentialKey, record: &CredentialRecord) -> Option<SigningKey> {
        if record.client.token_endpoint_auth_method != ClientAuthMethod::PrivateKeyJwt {
            return None;
        }
        let settings = OAuthArgs {
            profile: key.profile.clone(),
            client_id: Some(record.client.client_id.clone()),
            private_key: self.private_key.clone(),
            private_key_alg: self.private_key_alg.clone(),
            ..Default::default()
        };
        match settings.resolve(&key.server_url) {
            Ok(resolved) => resolved.config.client.and_then(|c| c.private_key),
            Err(e) => {
                tracing::warn!(server = %key.server_url, error = %e, "cannot read the client's private key");
                None
            }
        }
    }
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
            println!("[]");
        } else {
            match &args.url {
                Some(u) => println!("Not logged in to {u}; nothing to do."),
                None => println!("No stored credentials; nothing to do."),
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
            let signing_key = args.signing_key(&key, &record);
            let r = revocation::revoke_record(&http, &record, signing_key.as_ref()).await;
            if !r.complete() && r.endpoint.is_some() {
                incomplete += 1;
            }
            Some(r)
        };
        let (s, k) = (store.clone(), key.clone());
        let deleted = tokio::task::spawn_blocking(move || s.remove(&k)).await??;
        drop(lock);
        if !args.json {
            describe(&key, revocation.as_ref(), &record.tokens.expires_at);
        }
        outcomes.push(Outcome {
            server_url: key.server_url.clone(),
            profile: key.profile.clone(),
            revocation,
            deleted,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
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

fn describe(key: &CredentialKey, r: Option<&RevocationReport>, expires_at: &Option<u64>) {
    let who = match &key.profile {
        Some(p) => format!("{} (profile {p})", key.server_url),
        None => key.server_url.clone(),
    };
    println!("Logged out of {who}: stored credential deleted.");
    let Some(r) = r else {
        println!("  not revoked (--no-revoke)");
        return;
    };
    let Some(endpoint) = &r.endpoint else {
        let until = expires_at
            .map(|e| format!(" ({})", ui::relative(e as i64 - ui::now_secs() as i64)))
            .unwrap_or_default();
        println!(
            "  the authorization server offers no revocation endpoint: the tokens stay valid until they \
             expire{until}"
        );
        return;
    };
    for (name, t) in [
        ("refresh token", &r.refresh_token),
        ("access token", &r.access_token),
    ] {
        match t {
            TokenRevocation::Revoked => println!("  {name} revoked at {endpoint}"),
            TokenRevocation::Absent => {}
            TokenRevocation::NotOffered => println!("  {name}: no revocation endpoint"),
            TokenRevocation::Unsupported(why) => {
                let until = expires_at
                    .map(|e| format!(" ({})", ui::relative(e as i64 - ui::now_secs() as i64)))
                    .unwrap_or_default();
                println!(
                    "  {name}: the authorization server cannot revoke it ({why}); it stays valid until it expires{until}"
                )
            }
            TokenRevocation::Failed(e) => println!("  {name} NOT revoked: {e}"),
        }
    }
}
