//! `mcp-oauth logout <URL> | --all`: revoke (RFC 7009) and delete stored credentials.

use super::common::{self, UnreadableDetail, UnreadableSummary, same_server};
use crate::args::{Check, profile, server};
use crate::out;
use crate::settings::{OAuthArgs, server_url_of};
use crate::store::Store;
use crate::ui::{self, CliError};
use clap::Args;
use mcp_oauth::assertion::SigningKey;
use mcp_oauth::authorize::loopback;
use mcp_oauth::config::RedirectSettings;
use mcp_oauth::revocation::{self, RevocationReport, TokenRevocation};
use mcp_oauth::secret::ClientSecret;
use mcp_oauth::store::{
    ClientAuthMethod, ClientKey, CredentialKey, CredentialRecord, RegistrationKind, UnreadableFile,
};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth logout https://example.com/mcp
  mcp-oauth logout https://example.com/mcp --profile work
  mcp-oauth logout https://example.com/mcp --forget-client   # and register anew next time
  mcp-oauth logout --all

The refresh token, then the access token, are revoked at the authorization server's
revocation endpoint (RFC 7009) when it offers one; the stored credential is deleted either way.
A credential file that cannot be read is deleted too (there is nothing in it to revoke).
Dynamically registered clients are kept (they are reused at the next login) unless
--forget-client is given. A pre-registered client authenticates its revocation requests
with the credentials of the server's settings in the configuration file (private_key_file,
client_secret_env, client_secret_file), or with --private-key, --client-secret-env or
--client-secret-file: the store keeps neither keys nor configured secrets.")]
pub struct LogoutArgs {
    /// The MCP server URL, or its name in the configuration file.
    #[arg(value_parser = Check(server), required_unless_present = "all", conflicts_with = "all")]
    pub url: Option<String>,
    /// Every stored credential.
    #[arg(long)]
    pub all: bool,
    /// Only this profile (default: every profile of the server).
    #[arg(long, value_name = "NAME", value_parser = Check(profile))]
    pub profile: Option<String>,
    /// Delete locally without revoking at the authorization server.
    #[arg(long)]
    pub no_revoke: bool,
    /// Also forget the server's dynamic client registration(s), so that the next login
    /// registers a new client (for a client the authorization server no longer knows, or
    /// that was registered with settings that have changed).
    #[arg(long)]
    pub forget_client: bool,
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
    /// The environment variable holding a pre-registered client's secret, when the
    /// configuration file does not name it (the store keeps no configured secret).
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// Like --client-secret-env, from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "client_secret_env")]
    pub client_secret_file: Option<PathBuf>,
}

impl LogoutArgs {
    /// What a pre-registered client authenticates its revocation requests with: the
    /// server's settings as `login` reads them (the configuration file, for the record's
    /// profile), with --private-key / --client-secret-env / --client-secret-file on top.
    /// The key for `private_key_jwt`, the secret (read now) for a secret method; `None`
    /// for other clients, and when nothing is found (revocation then fails with an error
    /// that says so, and the logout reports it).
    fn configured_credentials(
        &self,
        key: &CredentialKey,
        record: &CredentialRecord,
    ) -> (Option<SigningKey>, Option<ClientSecret>) {
        if record.client.kind != RegistrationKind::PreRegistered {
            return (None, None);
        }
        let method = record.client.token_endpoint_auth_method;
        let wants_key = method == ClientAuthMethod::PrivateKeyJwt;
        let wants_secret = matches!(
            method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        );
        if !wants_key && !wants_secret {
            return (None, None);
        }
        let settings = OAuthArgs {
            profile: key.profile.clone(),
            client_id: Some(record.client.client_id.clone()),
            private_key: self.private_key.clone().filter(|_| wants_key),
            private_key_alg: self.private_key_alg.clone().filter(|_| wants_key),
            client_secret_env: self.client_secret_env.clone().filter(|_| wants_secret),
            client_secret_file: self.client_secret_file.clone().filter(|_| wants_secret),
            ..Default::default()
        };
        let client = match settings.resolve(&key.server_url) {
            Ok(resolved) => resolved.config.client,
            Err(e) => {
                tracing::warn!(server = %key.server_url, error = %e, "cannot read the client's credentials");
                return (None, None);
            }
        };
        let Some(client) = client else {
            return (None, None);
        };
        if wants_key {
            return (client.private_key, None);
        }
        let secret = client.client_secret.map(|s| s.load()).transpose();
        match secret {
            Ok(secret) => (None, secret),
            Err(e) => {
                tracing::warn!(server = %key.server_url, error = %e, "cannot read the client's secret");
                (None, None)
            }
        }
    }
}

#[derive(Serialize)]
struct Outcome {
    /// Null for an unreadable file that does not say whose it is.
    server_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation: Option<RevocationReport>,
    /// When the deleted access token expires (Unix seconds): until then it stays valid
    /// wherever it was not revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token_expires_at: Option<u64>,
    /// The file could not be read (and was deleted): path and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<UnreadableDetail>,
    deleted: bool,
}

/// A client registration forgotten (`--forget-client`).
#[derive(Serialize)]
struct Forgotten {
    issuer: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    /// The file, when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

pub async fn run(mut args: LogoutArgs) -> anyhow::Result<()> {
    args.url = args.url.map(|u| server_url_of(&u, None)).transpose()?;
    let store = common::store()?;
    let http = common::http()?;
    let s2 = store.clone();
    let scan = tokio::task::spawn_blocking(move || s2.scan_credentials()).await??;
    let keys: Vec<CredentialKey> = scan
        .entries
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
    let broken = common::unreadable_for(
        &store,
        scan.unreadable,
        args.url.as_deref(),
        args.profile.as_deref(),
    );
    let mut outcomes = Vec::new();
    let mut clients_used = Vec::new();
    let mut incomplete = 0;
    for key in keys {
        // Hold the server's lock, so that no refresh runs while its grant is revoked.
        let (s, k) = (store.clone(), key.clone());
        let lock = tokio::task::spawn_blocking(move || s.shared().lock(&k)).await??;
        let (s, k) = (store.clone(), key.clone());
        let Some(record) = tokio::task::spawn_blocking(move || s.shared().load(&k)).await?? else {
            continue;
        };
        if record.client.kind == RegistrationKind::Dynamic {
            clients_used.push(ClientKey {
                issuer: record.client.issuer.clone(),
                redirect_uri: record.client.redirect_uri.clone(),
            });
        }
        let revocation = if args.no_revoke {
            None
        } else {
            let (signing_key, secret) = args.configured_credentials(&key, &record);
            let r = {
                let _wait = crate::progress::network("Revoking the tokens", None);
                revocation::revoke_record(&http, &record, signing_key.as_ref(), secret).await
            };
            if !r.complete() && r.endpoint.is_some() {
                incomplete += 1;
            }
            Some(r)
        };
        let (s, k) = (store.clone(), key.clone());
        let deleted = tokio::task::spawn_blocking(move || s.shared().remove(&k)).await??;
        drop(lock);
        if !args.json {
            describe(&key, revocation.as_ref(), &record.tokens.expires_at)?;
        }
        outcomes.push(Outcome {
            server_url: Some(key.server_url.clone()),
            profile: key.profile.clone(),
            revocation,
            access_token_expires_at: record.tokens.expires_at,
            unreadable: None,
            deleted,
        });
    }
    for file in broken {
        let deleted = remove_unreadable(&store, &file).await?;
        let summary = UnreadableSummary::new(&file);
        if !args.json && deleted {
            let whose = match &file.key {
                Some(k) => format!("of {} ", who(k)),
                None => String::new(),
            };
            out::line(format_args!(
                "Deleted the unreadable credential file {whose}({}): {}. There was nothing in it to revoke.",
                summary.unreadable.path, summary.unreadable.reason
            ))?;
        }
        outcomes.push(Outcome {
            server_url: summary.server_url,
            profile: summary.profile,
            revocation: None,
            access_token_expires_at: None,
            unreadable: Some(summary.unreadable),
            deleted,
        });
    }
    let forgotten = if args.forget_client {
        let url = if args.all { None } else { args.url.clone() };
        let s = store.clone();
        tokio::task::spawn_blocking(move || forget_clients(&s, url.as_deref(), clients_used))
            .await??
    } else {
        Vec::new()
    };
    if !args.json {
        for f in &forgotten {
            out::line(format_args!(
                "Forgot the client registration {} at {}; the next login registers a new client.",
                f.client_id.as_deref().unwrap_or("(unreadable file)"),
                f.issuer
                    .as_deref()
                    .unwrap_or("an unknown authorization server"),
            ))?;
        }
    }
    if outcomes.is_empty() && forgotten.is_empty() {
        if args.json {
            out::line("[]")?;
        } else {
            let clients = if args.forget_client {
                " (and no client registration of it is stored)"
            } else {
                ""
            };
            match &args.url {
                Some(u) if !args.all => out::line(format_args!(
                    "Not logged in to {u}{clients}; nothing to do."
                ))?,
                _ => out::line(format_args!(
                    "No stored credentials{clients}; nothing to do."
                ))?,
            }
        }
        return Ok(());
    }
    if args.json {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Entry<'a> {
            Credential(&'a Outcome),
            Client { forgot_client: &'a Forgotten },
        }
        let all: Vec<Entry> = (outcomes.iter().map(Entry::Credential))
            .chain(forgotten.iter().map(|f| Entry::Client { forgot_client: f }))
            .collect();
        // A failed revocation quotes the library's message: in the command line's terms.
        out::line(ui::in_cli_terms(&serde_json::to_string_pretty(&all)?))?;
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

fn who(key: &CredentialKey) -> String {
    match &key.profile {
        Some(p) => format!("{} (profile {p})", key.server_url),
        None => key.server_url.clone(),
    }
}

/// Deletes an unreadable credential file, under its server's lock when it says whose it
/// is (a login in progress may be about to replace it).
async fn remove_unreadable(store: &Store, file: &UnreadableFile) -> anyhow::Result<bool> {
    let (s, f) = (store.clone(), file.clone());
    Ok(tokio::task::spawn_blocking(move || {
        let _lock = match &f.key {
            Some(k) => Some(s.shared().lock(k)?),
            None => None,
        };
        s.remove_unreadable(&f)
    })
    .await??)
}

/// `--forget-client`: the dynamic registrations the server's credentials used
/// (`used`), and any registration with the redirect URI a login to `url` uses by
/// default (its port is derived from the URL), which also finds the registration of a
/// server whose credential file could not be read; every one with `--all` (`url` None).
/// Unreadable registration files go too when they still say whose they are.
fn forget_clients(
    store: &Store,
    url: Option<&str>,
    used: Vec<ClientKey>,
) -> anyhow::Result<Vec<Forgotten>> {
    let default_redirect =
        url.and_then(|u| loopback::redirect_uri_for(&RedirectSettings::default(), u).ok());
    let wanted = |k: &ClientKey| {
        url.is_none() || used.contains(k) || default_redirect.as_deref() == Some(&k.redirect_uri)
    };
    let scan = store.scan_clients()?;
    let mut forgotten = Vec::new();
    for (key, reg) in scan.entries {
        if wanted(&key) && store.shared().remove_client(&key)? {
            forgotten.push(Forgotten {
                issuer: Some(reg.issuer),
                client_id: Some(reg.client_id),
                redirect_uri: Some(reg.redirect_uri),
                path: None,
            });
        }
    }
    for file in scan.unreadable {
        let mine = match &file.key {
            Some(k) => wanted(k),
            None => url.is_none(),
        };
        if mine && store.remove_unreadable(&file)? {
            forgotten.push(Forgotten {
                issuer: file.key.as_ref().map(|k| k.issuer.clone()),
                client_id: None,
                redirect_uri: file.key.as_ref().map(|k| k.redirect_uri.clone()),
                path: Some(file.path.display().to_string()),
            });
        }
    }
    Ok(forgotten)
}

/// What becomes of a refresh token that was not revoked: its lifetime is the
/// authorization server's, and this client does not know it.
const REFRESH_TOKEN_FATE: &str = "  the refresh token stays valid until the authorization server \
     expires it or the grant is revoked there";

/// What becomes of an access token that was not revoked: "stays valid until it expires
/// (in 4m)", or "had expired already (3m ago)".
fn access_token_fate(expires_at: &Option<u64>) -> String {
    match expires_at {
        None => "stays valid until it expires".into(),
        Some(e) => {
            let left = *e as i64 - ui::now_secs() as i64;
            if left > 0 {
                format!("stays valid until it expires ({})", ui::relative(left))
            } else {
                format!("had expired already ({})", ui::relative(left))
            }
        }
    }
}

fn describe(
    key: &CredentialKey,
    r: Option<&RevocationReport>,
    expires_at: &Option<u64>,
) -> Result<(), out::OutputError> {
    out::line(format_args!(
        "Logged out of {}: stored credential deleted.",
        who(key)
    ))?;
    let Some(r) = r else {
        return out::line("  not revoked (--no-revoke)");
    };
    let access_fate = format!("  the access token {}", access_token_fate(expires_at));
    let Some(endpoint) = &r.endpoint else {
        out::line(
            "  the authorization server offers no revocation endpoint (RFC 7009): nothing was revoked",
        )?;
        out::line(&access_fate)?;
        if !matches!(r.refresh_token, TokenRevocation::Absent) {
            out::line(REFRESH_TOKEN_FATE)?;
        }
        return Ok(());
    };
    for (name, t, fate) in [
        ("refresh token", &r.refresh_token, REFRESH_TOKEN_FATE),
        ("access token", &r.access_token, access_fate.as_str()),
    ] {
        match t {
            TokenRevocation::Revoked => out::line(format_args!("  {name} revoked at {endpoint}"))?,
            TokenRevocation::Absent => {}
            TokenRevocation::NotOffered => {
                out::line(format_args!("  {name}: no revocation endpoint"))?
            }
            TokenRevocation::Unsupported(why) => {
                out::line(format_args!(
                    "  {name}: the authorization server cannot revoke it ({why})"
                ))?;
                out::line(fate)?;
            }
            TokenRevocation::Failed(e) => out::line(format_args!(
                "  {name} NOT revoked: {}",
                ui::in_cli_terms(e)
            ))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access token that expired before the logout is not said to "stay valid".
    #[test]
    fn the_access_tokens_fate_follows_its_expiry() {
        let now = ui::now_secs();
        assert!(
            access_token_fate(&Some(now + 300)).starts_with("stays valid until it expires (in ")
        );
        assert!(access_token_fate(&Some(now - 23)).starts_with("had expired already ("));
        assert_eq!(access_token_fate(&None), "stays valid until it expires");
    }
}
