//! What the user sees on stderr: the authorization URL, progress while waiting (a
//! spinner on a terminal, [`crate::progress`]; a plain line for waits on the user
//! otherwise), colours that respect `NO_COLOR`, and errors that name the step, the URL,
//! the HTTP status and the next command to run.

use crate::progress::{self, Waiting};
use mcp_oauth::authorize::browser::{Browser, Progress, SystemBrowser};
use mcp_oauth::authorize::device::DevicePrompt;
use mcp_oauth::authorize::paste;
use mcp_oauth::remedy::Remedy;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Colours on stderr: only on a terminal, never with `NO_COLOR` set (https://no-color.org)
/// or `TERM=dumb`.
pub fn color() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb")
            && std::io::stderr().is_terminal()
    })
}

/// Colours on stdout (for `doctor` and `status` output).
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && std::io::stdout().is_terminal()
}

pub fn paint(code: &str, s: &str) -> String {
    if color() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub fn bold(s: &str) -> String {
    paint("1", s)
}

/// Bold on stdout (only when stdout is a terminal and colours are allowed).
pub fn bold_out(s: &str) -> String {
    if color_stdout() {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// One line (or several) on stderr, made safe for the terminal ([`crate::term::clean`]):
/// everything the CLI says on stderr goes through here. A write error is ignored: there
/// is nowhere left to report it, and it must not panic as `eprintln!` does.
pub fn say(text: impl std::fmt::Display) {
    let text = format!("{}\n", crate::term::clean(&text.to_string(), color()));
    let _ = progress::write_clear(text.as_bytes());
}

pub fn warn(msg: &str) {
    say(format_args!(
        "{} {}",
        paint("1;33", "warning:"),
        in_cli_terms(msg)
    ));
}

/// The log's writer: stderr, with the spinner's line cleared before each record.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        progress::write_clear(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

/// The user's side of the flows: opens the system browser (announcing the URL), reads a
/// pasted redirect, shows device codes, and shows progress.
pub struct AnnouncingBrowser {
    inner: SystemBrowser,
    /// How long a login waits for the user (the browser, the paste, the device
    /// approval): the limit the progress line states.
    user_timeout: Duration,
    /// The wait shown now, if any.
    shown: Mutex<Option<Waiting>>,
}

impl std::fmt::Debug for AnnouncingBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnnouncingBrowser")
    }
}

impl AnnouncingBrowser {
    pub fn new(user_timeout: Duration) -> Self {
        AnnouncingBrowser {
            inner: SystemBrowser,
            user_timeout,
            shown: Mutex::new(None),
        }
    }

    /// Shows a wait on the user: a spinner on a terminal, one plain line otherwise.
    fn wait_on_user(&self, message: &str) {
        if !std::io::stderr().is_terminal() {
            say(message);
        }
        self.show(progress::waiting(
            message,
            Some(self.user_timeout),
            Duration::ZERO,
        ));
    }

    /// Shows a wait on the network (on a terminal only, after a second).
    fn wait_on_network(&self, message: &str) {
        self.show(progress::network(message, None));
    }

    fn show(&self, wait: Waiting) {
        let mut g = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        // The old wait ends before the new one is pushed (the guard drops after `*g = …`
        // otherwise, taking the outer wait's place in the stack with it).
        drop(g.take());
        *g = Some(wait);
    }

    fn stop(&self) {
        let mut g = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        drop(g.take());
    }
}

impl Drop for AnnouncingBrowser {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Browser for AnnouncingBrowser {
    /// A browser that cannot be started does not end the login: the URL is shown for the
    /// user to open, and the redirect listener keeps waiting (as mcp-remote does).
    fn open(&self, url: &str) -> mcp_oauth::Result<()> {
        self.stop();
        match self.inner.open(url) {
            Ok(()) => say(format_args!(
                "Opening your browser to authorize. If it does not open, visit:\n  {url}"
            )),
            Err(e) => {
                tracing::info!(error = %e, "the browser could not be started");
                say(format_args!(
                    "Could not open a browser ({}). Open this URL in a browser to authorize; \
                     waiting for it:\n  {url}",
                    opener_failure(&e)
                ));
            }
        }
        self.wait_on_user("Waiting for the browser to come back");
        Ok(())
    }

    fn read_pasted_redirect(&self, url: &str, redirect_uri: &str) -> mcp_oauth::Result<String> {
        self.stop();
        say(bold("Paste mode (no browser on this machine)"));
        say(paste::instructions(url, redirect_uri));
        let line = paste::read_line(&mut std::io::stdin().lock())?;
        Ok(line)
    }

    fn show_device_code(&self, prompt: &DevicePrompt) -> mcp_oauth::Result<()> {
        self.stop();
        say(format_args!(
            "To authorize, open {} on any device and enter the code\n\n    {}\n",
            prompt.verification_uri,
            bold(&prompt.user_code)
        ));
        if let Some(c) = &prompt.verification_uri_complete {
            say(format_args!("(or open {c}, which carries the code)\n"));
        }
        Ok(())
    }

    fn progress(&self, event: &Progress) {
        match event {
            Progress::Discovering { server_url } => self.wait_on_network(&format!(
                "Finding the authorization server of {}",
                progress::host_of(server_url)
            )),
            Progress::WaitingForOtherProcess { server_url } => self.wait_on_user(&format!(
                "Another mcp-oauth process is logging in to (or refreshing) {server_url}; waiting for it"
            )),
            Progress::OtherProcessDone { .. } => {
                self.stop();
                say("The other process finished; using its result.");
            }
            Progress::WaitingForDevice { .. } => {
                self.wait_on_user("Waiting for the code to be approved")
            }
            Progress::Exchanging => self.wait_on_network("Exchanging the code for tokens"),
            Progress::Finished => self.stop(),
            _ => {}
        }
    }
}

/// Why no browser could be started, without the URL (shown on a line of its own).
fn opener_failure(e: &mcp_oauth::Error) -> String {
    let text = match e {
        mcp_oauth::Error::Action { message, .. } => message.as_str(),
        _ => return e.to_string(),
    };
    // "could not open a browser (<why>); open this URL yourself, …: <url>"
    text.strip_prefix("could not open a browser (")
        .and_then(|rest| rest.rsplit_once("); open this URL yourself"))
        .map_or_else(|| e.to_string(), |(why, _)| why.to_string())
}

/// An error the command line prints with a next step, and exits with a given code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Exit codes.
pub mod exit {
    /// Any failure.
    pub const FAILURE: u8 = 1;
    /// A usage error found after parsing (clap's own exit with 2 before).
    pub const USAGE: u8 = 2;
    /// `token`: no usable credential and `--login` was not given.
    pub const LOGIN_REQUIRED: u8 = 3;
}

/// `e` with the next command to run for `server_url`, from what went wrong.
pub fn with_hint(e: anyhow::Error, server_url: &str) -> anyhow::Error {
    if e.downcast_ref::<CliError>().is_some() {
        return e;
    }
    if let Some(line) = connect_line(&e) {
        return anyhow::Error::new(CliError {
            message: line,
            hint: Some(CONNECT_HINT.into()),
            code: exit::FAILURE,
        });
    }
    let hint = hint_for(&e, server_url);
    anyhow::Error::new(CliError {
        message: in_words(&e),
        hint,
        code: exit::FAILURE,
    })
}

/// What to do when a connection failed.
pub const CONNECT_HINT: &str =
    "check the URL, and that the server is running and reachable from here";

/// A failed connection in one line, if `e` is one.
fn connect_line(e: &anyhow::Error) -> Option<String> {
    match e.downcast_ref()? {
        mcp_oauth::Error::Transport { url, message, .. } => connect_failure(url, message),
        _ => None,
    }
}

/// The message of `e` with its causes, except that a failed connection is one line
/// ("could not connect to URL: connection refused"): the HTTP library's chain of causes
/// says the same five times over, so it is logged at -v only. The causes stop at a
/// library error whose message already says what its source says.
fn in_words(e: &anyhow::Error) -> String {
    if let Some(line) = connect_line(e) {
        return line;
    }
    let mut message = e.to_string();
    let mut cur: &(dyn std::error::Error + 'static) = e.as_ref();
    while !covers_its_source(cur)
        && let Some(s) = cur.source()
    {
        message.push_str(&format!("\n  caused by: {s}"));
        cur = s;
    }
    message
}

fn covers_its_source(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<mcp_oauth::Error>()
        .is_some_and(mcp_oauth::Error::message_covers_source)
}

/// "could not connect to URL: connection refused" when `detail` (an HTTP client's
/// error chain) is one of the common connection failures; the detail goes to the log
/// (-v).
pub fn connect_failure(url: &str, detail: &str) -> Option<String> {
    const KNOWN: &[(&str, &str)] = &[
        ("connection refused", "connection refused"),
        ("dns error", "the host name does not resolve"),
        ("failed to lookup address", "the host name does not resolve"),
        (
            "name or service not known",
            "the host name does not resolve",
        ),
        ("no route to host", "no route to the host"),
        ("network is unreachable", "the network is unreachable"),
        ("connection reset", "the connection was reset"),
    ];
    let lower = detail.to_ascii_lowercase();
    let (_, words) = KNOWN.iter().find(|(k, _)| lower.contains(k))?;
    tracing::info!(%url, detail, "connection failed");
    Some(format!("could not connect to {url}: {words}"))
}

fn hint_for(e: &anyhow::Error, url: &str) -> Option<String> {
    hint_for_error(e.downcast_ref::<mcp_oauth::Error>()?, url)
}

fn hint_for_error(err: &mcp_oauth::Error, url: &str) -> Option<String> {
    use mcp_oauth::{Error, Step};
    let doctor = format!("run `mcp-oauth doctor {url}` to see every step of discovery");
    let login = format!("run `mcp-oauth login {url}`");
    Some(match err {
        Error::AtDefaultEndpoint { error, .. } => return hint_for_error(error, url),
        Error::OAuth { body, .. } if body.error == "invalid_grant" => {
            format!("the authorization server no longer accepts the stored grant; {login}")
        }
        Error::OAuth {
            step: Step::Registration,
            ..
        } => format!("{doctor}; or pre-register a client (--client-id)"),
        Error::Timeout {
            step: Step::Authorization,
            ..
        } => format!(
            "nothing came back in time; on a machine without a browser use --no-browser (paste) or \
             --device; if the browser showed the authorization server's error about the client, \
             forget the stored registration with `mcp-oauth logout {url} --forget-client` and try again"
        ),
        Error::Discovery { .. } => doctor,
        // doctor cannot see this one (it never logs in): say what usually causes it.
        Error::Rule {
            rule: mcp_oauth::error::Rule::IssuerMismatch(_),
            ..
        } => "the authorization server's redirect named another issuer. An OAuth proxy in front \
              of another authorization server that passes its upstream's redirect on unchanged \
              (the MCP TypeScript SDK's ProxyOAuthServerProvider does) looks like this to every \
              client; its operator must fix it, since accepting it would disable mix-up \
              protection"
            .into(),
        Error::Rule { step, .. }
        | Error::Signing { step, .. }
        | Error::Status { step, .. }
        | Error::Transport { step, .. }
        | Error::Timeout { step, .. } => match step {
            Step::Refresh => format!("{login}, or {doctor}"),
            Step::Store => return None,
            _ => doctor,
        },
        Error::Action {
            step: Step::Registration,
            ..
        } => doctor,
        Error::Config { .. } => format!("check the settings (`mcp-oauth {} --help`)", "login"),
        _ => return None,
    })
}

pub fn print_error(e: &anyhow::Error) {
    if let Some(c) = e.downcast_ref::<CliError>() {
        say(format_args!(
            "{} {}",
            paint("1;31", "error:"),
            in_cli_terms(&c.message)
        ));
        if let Some(h) = &c.hint {
            say(format_args!("{} {h}", paint("1;36", "next:")));
        }
        return;
    }
    say(format_args!(
        "{} {}",
        paint("1;31", "error:"),
        in_cli_terms(&in_words(e))
    ));
}

/// A text that may quote the library's messages (an error, a `doctor` report), with each
/// setting they name restated as the command line sets it: the library names its
/// settings (`allow_private_networks`), the command line adds its flags
/// (`--allow-private-networks`). Applied once, where the text is printed.
pub fn in_cli_terms(text: &str) -> String {
    Remedy::restate(text, flag_phrase)
}

/// How the command line says each [`Remedy`] of the library.
fn flag_phrase(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::CheckClientId => "check the client id (--client-id)",
        Remedy::SetClientMetadataUrl => "set client_metadata_url (--client-metadata-url)",
        Remedy::ConfigureRegisteredClient => {
            "pass its id with --client-id (and the secret with --client-secret-env or \
             --client-secret-file, if it has one)"
        }
        Remedy::ConfigureClientSecret => "configure one (client_secret_env / --client-secret-env)",
        Remedy::ConfigurePrivateKey => "no private key is configured (--private-key)",
        Remedy::ConfigureClientForGrant => {
            "pass --client-id, with --client-secret-env or --private-key"
        }
        Remedy::ConfigureWorkloadAssertion => "a workload assertion (--assertion-file)",
        Remedy::ConfigureEnterpriseIdp => {
            "the IdP settings (--idp-token-endpoint, --id-token-file)"
        }
        Remedy::AllowMissingPkceMetadata => {
            "set `allow_missing_pkce_metadata = true` for this server \
             (--allow-missing-pkce-metadata)"
        }
        Remedy::SetScopes => {
            "ask for the scopes it needs with --scope (or `scopes = \"…\"` in the server's \
             section of the configuration file)"
        }
        Remedy::AllowPrivateNetworks => "set allow_private_networks (--allow-private-networks)",
        Remedy::TrustProxyDns => "set trust_proxy_dns = true (--trust-proxy-dns)",
        Remedy::AllowPlainHttp => "accept the risk for this server with --allow-http",
        Remedy::ChooseRedirectPort => "choose another port with --redirect-port",
        Remedy::PasteInsteadOfBrowser => "or use --no-browser",
        Remedy::PasteInsteadOfDevice => "use --no-browser to paste",
        Remedy::ClientIssuerNamed => "(client_issuer / --client-issuer)",
        Remedy::MoveClientIssuer => "say so with --client-issuer",
        Remedy::NameClientIssuer => "name the client's authorization server with --client-issuer",
    }
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<CliError>()
        .map_or(exit::FAILURE, |c| c.code)
}

/// "in 4m 10s" / "3m ago" / "now".
pub fn relative(secs_from_now: i64) -> String {
    let a = secs_from_now.unsigned_abs();
    let s = if a >= 86400 {
        format!("{}d {}h", a / 86400, (a % 86400) / 3600)
    } else if a >= 3600 {
        format!("{}h {}m", a / 3600, (a % 3600) / 60)
    } else if a >= 60 {
        format!("{}m {}s", a / 60, a % 60)
    } else {
        format!("{a}s")
    };
    if secs_from_now >= 0 {
        format!("in {s}")
    } else {
        format!("{s} ago")
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `iss` of another issuer cannot be diagnosed by doctor (it does not log in), so
    /// the hint says what usually causes it instead of sending the user there.
    #[test]
    fn an_issuer_mismatch_hint_names_the_usual_cause() {
        use mcp_oauth::error::Rule;
        use mcp_oauth::{Error, Step};
        let e = Error::Rule {
            step: Step::Authorization,
            url: "http://127.0.0.1:1/callback".into(),
            rule: Rule::IssuerMismatch("iss \"http://upstream\" is not the issuer".into()),
        };
        let hint = hint_for_error(&e, "http://127.0.0.1:2/mcp").unwrap();
        assert!(
            hint.contains("OAuth proxy") && !hint.contains("doctor"),
            "{hint}"
        );
    }

    #[test]
    fn an_error_at_a_default_endpoint_gets_the_hint_of_the_error_inside() {
        use mcp_oauth::error::OAuthErrorBody;
        use mcp_oauth::{Error, Step};
        let url = "https://mcp.example.com/mcp";
        let refused = || Error::OAuth {
            step: Step::Registration,
            url: "https://mcp.example.com/register".into(),
            status: 400,
            body: OAuthErrorBody {
                error: "invalid_client_metadata".into(),
                error_description: None,
                error_uri: None,
            },
        };
        let direct = hint_for(&anyhow::Error::new(refused()), url);
        assert!(
            direct.as_deref().is_some_and(|h| h.contains("--client-id")),
            "{direct:?}"
        );
        let wrapped = Error::AtDefaultEndpoint {
            error: Box::new(refused()),
            trace: Default::default(),
        };
        assert_eq!(hint_for(&anyhow::Error::new(wrapped), url), direct);
    }

    /// A library error whose message says its source ends the causes; another error's
    /// causes are listed as before.
    #[test]
    fn causes_are_said_once() {
        let io = || std::io::Error::other("disk on fire");
        let store = mcp_oauth::Error::Store {
            path: "/s".into(),
            message: "writing it failed: disk on fire".into(),
            source: Some(Box::new(io())),
        };
        let e = anyhow::Error::new(store).context("cannot save the credential");
        assert_eq!(
            in_words(&e),
            "cannot save the credential\n  caused by: credential store: /s: writing it failed: \
             disk on fire"
        );
        let e = anyhow::Error::new(io()).context("cannot read the configuration");
        assert_eq!(
            in_words(&e),
            "cannot read the configuration\n  caused by: disk on fire"
        );
    }

    /// The library names settings, the command line its flags: a library message reads
    /// on the command line as it did when the library named the flags itself.
    #[test]
    fn library_messages_are_restated_with_the_flags() {
        let config = mcp_oauth::OAuthConfig::new("http://mcp.example.com/mcp");
        let e = config
            .check_transport("http://mcp.example.com/mcp")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("--"), "{e}");
        assert_eq!(
            in_cli_terms(&e),
            "configuration: http://mcp.example.com/mcp: the MCP server is reached over plain \
             http on a host that is not loopback, so its access token would cross the network \
             unencrypted (OAuth 2.1 §1.5); use its https URL, or accept the risk for this \
             server with --allow-http (allow_http = true in the configuration file)"
        );
        let pkce = mcp_oauth::discovery::validated::MetadataRejection::PkceUnverifiable;
        assert_eq!(
            in_cli_terms(&pkce.to_string()),
            "metadata does not list code_challenge_methods_supported, so PKCE support cannot \
             be verified (the MCP spec requires refusing such a server); if you trust it (e.g. \
             AWS Cognito), set `allow_missing_pkce_metadata = true` for this server \
             (--allow-missing-pkce-metadata), which weakens this check"
        );
        for &r in Remedy::ALL {
            let said = flag_phrase(r);
            assert!(said.contains("--"), "{r:?} names no flag: {said}");
            // One pass restates each phrase once: no flag phrase holds another phrase.
            for &other in Remedy::ALL {
                assert!(
                    other == r || !said.contains(other.phrase()),
                    "{r:?} holds {other:?}"
                );
            }
        }
    }

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(relative(250), "in 4m 10s");
        assert_eq!(relative(-59), "59s ago");
        assert_eq!(relative(90000), "in 1d 1h");
    }
}
