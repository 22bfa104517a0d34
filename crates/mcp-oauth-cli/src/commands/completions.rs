//! `mcp-oauth completions <SHELL>`.

use clap::{Args, CommandFactory};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  mcp-oauth completions bash > ~/.local/share/bash-completion/completions/mcp-oauth
  mcp-oauth completions zsh > \"${fpath[1]}/_mcp-oauth\"
  mcp-oauth completions fish > ~/.config/fish/completions/mcp-oauth.fish")]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    pub shell: clap_complete::Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    // Made in memory, then written: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mcp-oauth", &mut script);
    crate::out::bytes(&script)?;
    Ok(())
}
