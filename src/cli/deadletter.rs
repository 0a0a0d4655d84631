//! `society deadletter list [AGENT]` and `deadletter retry ID|--all AGENT`:
//! see `society_runtime::client::deadletter`. `list` is a list: `-o json`
//! is an array of dead letters, oldest first per agent.

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use super::table;
use society_core::{AgentId, Layout, MsgId};
use society_runtime::client::deadletter;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Dead letters of every agent, or of one.
    #[command(after_help = examples!(
        "society deadletter list",
        "society deadletter list writer -o wide",
        "society deadletter list --json | jq -r '.[] | select(.retryable) | .id'"
    ))]
    List(ListArgs),
    /// Put dead-lettered messages back into the agent's inbox (same id).
    #[command(after_help = examples!(
        "society deadletter retry 01J...",
        "society deadletter retry --all writer"
    ))]
    Retry(RetryArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this agent's.
    agent: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The dead-lettered message's id (with --all: the agent).
    #[arg(value_name = "ID|AGENT")]
    target: String,
    /// Every retryable dead letter of the agent named.
    #[arg(long)]
    all: bool,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::List(args) => list(layout, args),
        Command::Retry(args) => retry(layout, args),
    }
}

fn list(layout: &Layout, args: ListArgs) -> anyhow::Result<Code> {
    let agent = args.agent.map(AgentId::new).transpose()?;
    let letters = deadletter::list(layout, agent.as_ref())?;
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&letters, format)?;
        return Ok(Code::Ok);
    }
    if letters.is_empty() {
        outln!("no dead letters");
        return Ok(Code::Ok);
    }
    let mut t = Table::new(
        &[
            "AGENT", "ID", "AGE", "EVENT", "FROM", "TYPE", "RETRY", "REASON",
        ],
        format,
    );
    // The id is what `retry` takes: never cut. Sender and type show with `-o wide`.
    t.keep(1, 26).wide_only(&[4, 5]);
    for l in &letters {
        let retry = match (l.retried, l.retryable) {
            (true, _) => "pending",
            (false, true) => "yes",
            (false, false) => "no",
        };
        t.row(vec![
            l.agent.to_string(),
            l.id.map_or("-".into(), |i| i.to_string()),
            l.ts.as_deref().map_or("-".into(), table::age),
            l.event.clone(),
            l.from.clone().unwrap_or_else(|| "-".into()),
            l.kind.clone().unwrap_or_else(|| "-".into()),
            retry.into(),
            l.reason.clone().unwrap_or_default(),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}

fn retry(layout: &Layout, args: RetryArgs) -> anyhow::Result<Code> {
    let done = if args.all {
        let agent = AgentId::new(args.target)?;
        let done = deadletter::retry_all(layout, &agent)?;
        if done.is_empty() {
            outln!("nothing to retry for {agent}");
        }
        done
    } else {
        vec![deadletter::retry(layout, args.target.parse::<MsgId>()?)?]
    };
    for r in &done {
        outln!("{} {}", r.agent, r.id);
    }
    Ok(Code::Ok)
}
