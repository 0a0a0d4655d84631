//! `society completions SHELL`: the completion script for bash, zsh, fish,
//! elvish or PowerShell, generated from the clap definition (so it never
//! falls behind a new command or flag), on stdout.

use super::exit::Code;
use super::StdoutError;
use clap_complete::Shell;
use std::io::Write as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<Code> {
    let mut cmd = super::help::visible(&super::help::command());
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "society", &mut script);
    std::io::stdout().write_all(&script).map_err(StdoutError)?;
    Ok(Code::Ok)
}
