//! `society skills list AGENT` and `society skills copy FROM TO [NAME]`
//! (`society_runtime::client::skills`).

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use society_core::Layout;
use society_runtime::client::{agents, skills};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// An agent's skills (the entries of its skills/ folder).
    #[command(after_help = examples!(
        "society skills list writer-1",
        "society skills list writer-1 -o json | jq -r '.[].name'"
    ))]
    List {
        /// Agent id.
        agent: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Copy skills/ (or one skill in it) from one agent to another; each file atomically.
    #[command(after_help = examples!(
        "society skills copy writer-1 writer-3                  # all of skills/",
        "society skills copy writer-1 writer-3 prompts/review.md",
        "society skills copy writer-1 writer-3 tone.md --force  # replace writer-3's tone.md"
    ))]
    Copy {
        /// The agent to copy from.
        from: String,
        /// The agent to copy to (it may be running).
        to: String,
        /// One skill: a file or folder inside FROM's skills/ (default: all of them).
        name: Option<String>,
        /// Replace a skill the target has with other content.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::List { agent, output } => {
            let id = agents::existing(layout, &agent)?;
            let list = skills::list(layout, &id)?;
            if output.is_json() {
                output::list(&list, output.format())?;
                return Ok(Code::Ok);
            }
            let mut t = Table::new(&["SKILL", "FILES", "BYTES", "MODIFIED"], output.format());
            for s in &list {
                t.row(vec![
                    s.name.clone(),
                    s.files.to_string(),
                    s.bytes.to_string(),
                    s.modified.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            out!("{}", t.render());
        }
        Command::Copy {
            from,
            to,
            name,
            force,
            output,
        } => {
            let from = agents::existing(layout, &from)?;
            let to = agents::existing(layout, &to)?;
            let copied = skills::copy(layout, &from, &to, name.as_deref(), force)?;
            if output.is_json() {
                output::report(&copied, output.format())?;
                return Ok(Code::Ok);
            }
            for f in &copied.copied {
                outln!("copied skills/{f} from {from} to {to}");
            }
            for f in &copied.unchanged {
                outln!("{to} already has skills/{f}");
            }
            if copied.copied.is_empty() && copied.unchanged.is_empty() {
                outln!("{from} has no skills to copy");
            }
        }
    }
    Ok(Code::Ok)
}
