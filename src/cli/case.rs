//! `society case new|show|list|close`: cases from the orchestrator's side.
//!
//! The supervisor owns case logs: `new` and `close` are requests to it
//! (`control` envelopes in `supervisor/inbox.jsonl`), and the command waits
//! until the log shows the effect. `show` and `list` only read the logs — and
//! the pointers a close leaves behind — so they work with the supervisor down.

mod open;
mod view;

use crate::cli::exit::Code;
use society_core::Layout;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Open a case; prints its id once the supervisor has created its log.
    New(open::NewArgs),
    /// One case: a header and its timeline (open or archived).
    Show(view::ShowArgs),
    /// Every case, open and archived (table, or --json).
    List(view::ListArgs),
    /// Close a case; the supervisor archives its log.
    Close(open::CloseArgs),
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::New(args) => open::new(layout, args),
        Command::Show(args) => view::show(layout, args),
        Command::List(args) => view::list(layout, args),
        Command::Close(args) => open::close(layout, args),
    }
}
