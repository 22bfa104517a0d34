//! `mcp-oauth`: OAuth for remote MCP servers from the command line.

// Results go through `out` (a closed stdout must not panic), messages through `ui::say`
// (server-supplied text made safe for a terminal, in one place: `term`).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod config_file;
mod headers;
mod out;
mod progress;
mod proxy;
mod settings;
mod store;
mod term;
mod ui;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mcp-oauth",
    version,
    about = "OAuth for remote MCP servers that simply works",
    long_about = "Connects to OAuth-protected MCP servers: follows the server's challenge to its \
                  protected resource metadata, discovers the authorization server, registers a \
                  client, runs the PKCE authorization code flow in your browser and keeps the \
                  tokens fresh.",
    after_help = "Examples:\n  mcp-oauth login https://example.com/mcp\n  mcp-oauth call https://example.com/mcp echo --args '{\"text\":\"hi\"}'\n  mcp-oauth token --header https://example.com/mcp\n  mcp-oauth status\n  mcp-oauth doctor https://example.com/mcp\n  mcp-oauth logout https://example.com/mcp\n\nCredentials are stored under $MCP_OAUTH_HOME, else the XDG data directory (~/.local/share/mcp-oauth).\nPer-server settings: $MCP_OAUTH_CONFIG, else ~/.config/mcp-oauth/config.toml (see docs/cli.md).\nExit status: 0 success, 1 failure, 2 usage error, 3 `token`: log in first."
)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// mcp-remote's --debug: the same as -vv (debug logging, on stderr).
    #[arg(long, global = true, hide = true)]
    debug: bool,
    /// mcp-remote's --silent: errors only in the log.
    #[arg(long, global = true, hide = true)]
    silent: bool,

    /// Where credentials are kept: `file`, `keychain` (sealed with a key in the OS
    /// keychain) or a PostgreSQL vault, postgres://user@host/db (its key in
    /// MCP_OAUTH_VAULT_KEY or MCP_OAUTH_VAULT_KEY_FILE) [default: [store] url in the
    /// configuration file, else keychain where the OS keychain works, else file; file when
    /// MCP_OAUTH_HOME is set].
    #[arg(long, value_name = "STORE", env = store::STORE_ENV, global = true, hide_env_values = true)]
    store: Option<String>,

    /// Whose credentials, in a vault shared by several users [default: [store] user in
    /// the configuration file, else the user running mcp-oauth].
    #[arg(long, value_name = "NAME", env = store::USER_ENV, global = true)]
    user: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Call a tool on an MCP server (or list its tools), authorizing when challenged.
    Call(commands::call::CallArgs),
    /// Log in to an MCP server now: discovery, registration, authorization; tokens stored.
    Login(commands::login::LoginArgs),
    /// Print a valid access token (refreshed when needed) for scripts.
    Token(commands::token::TokenArgs),
    /// Show the stored credentials (a table, or --json).
    Status(commands::status::StatusArgs),
    /// Delete stored credentials, revoking them at the authorization server (RFC 7009).
    Logout(commands::logout::LogoutArgs),
    /// Explain every step of a server's OAuth discovery, without logging in.
    Doctor(commands::doctor::DoctorArgs),
    /// Print shell completions.
    Completions(commands::completions::CompletionsArgs),
    /// Serve a remote MCP server on stdio (for hosts that launch servers), with OAuth.
    Proxy(proxy::ProxyArgs),
    /// Run a development authorization server and an MCP server on loopback and show the
    /// whole OAuth flow against them, step by step (--serve keeps them running).
    Demo(commands::demo::DemoArgs),
}

fn init_tracing(verbose: u8, silent: bool) {
    let default = match verbose {
        0 if silent => "error",
        0 => "warn",
        1 => "info,mcp_oauth=info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Logs always go to stderr: stdout is for results (and, for `proxy`, protocol).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ui::LogWriter)
        .with_target(false)
        // Colours only on a terminal, never with NO_COLOR.
        .with_ansi(ui::color())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // --debug wins over --silent, as in mcp-remote.
    let verbose = if cli.debug {
        cli.verbose.max(2)
    } else {
        cli.verbose
    };
    init_tracing(verbose, cli.silent);
    store::set_args(store::StoreArgs {
        store: cli.store.clone(),
        user: cli.user.clone(),
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui::say(format_args!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Call(args) => commands::call::run(args).await,
            Command::Login(args) => commands::login::run(args).await,
            Command::Token(args) => commands::token::run(args).await,
            Command::Status(args) => commands::status::run(args).await,
            Command::Logout(args) => commands::logout::run(args).await,
            Command::Doctor(args) => commands::doctor::run(args).await,
            Command::Completions(args) => commands::completions::run(args),
            Command::Proxy(args) => proxy::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output has gone (`| head -1`): nobody is left to tell, and
        // what the command did before printing (a login's tokens) is done.
        Err(e) if out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            ui::print_error(&e);
            ExitCode::from(ui::exit_code(&e))
        }
    }
}
