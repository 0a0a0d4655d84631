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
    #[command(after_help = examples!(
        "society case new \"episode on tides\" --assign role:research --due 2h",
        "society case new \"weekly digest\" --priority low --no-start"
    ))]
    New(open::NewArgs),
    /// One case: a header and its timeline (open or archived).
    #[command(after_help = examples!(
        "society case show c-01J...",
        "society case show c-01J... --json | jq -c '.events[] | {ts, event, agent}'"
    ))]
    Show(view::ShowArgs),
    /// Every case, open and archived, oldest first.
    #[command(after_help = examples!(
        "society case list",
        "society case list --status open --agent research-1",
        "society case list --json | jq -r '.[] | select(.status == \"escalated\") | .id'"
    ))]
    List(view::ListArgs),
    /// Close a case; the supervisor archives its log.
    #[command(after_help = examples!("society case close c-01J... --reason done"))]
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
