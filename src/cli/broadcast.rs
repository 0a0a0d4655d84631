//! `society broadcast [TEXT | --json BODY | --body-file FILE] [--role R]
//! [--type T] [--ack auto|explicit] [--deadline D]`: one message from the
//! orchestrator to every agent, or every agent of a role, that each
//! recipient acknowledges; `society broadcast status ID` shows who has,
//! `society broadcast list` every broadcast.
//!
//! Each copy is an ordinary human message (own id, delivered like `society
//! send`) whose body also carries `broadcast: {id, ack}`. stdout is one
//! `AGENT MESSAGE_ID` line per copy delivered, for `cut` and `while read`;
//! the broadcast's id, and what was not delivered, are said on stderr.

use super::body::Body;
use super::daemon::{start_for, NoStart};
use super::exit::{coded, Code};
use super::output::{self, OutputArgs, Table};
use super::{render, table};
use society_core::Layout;
use society_runtime::client::broadcast::{self as status, Status};
use society_runtime::client::send::{self, BroadcastOptions};
use std::time::Duration;

/// The longest `--deadline`: an acknowledgement due later is no deadline.
const MAX_DEADLINE: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    cmd: Option<Command>,
    #[command(flatten)]
    send: SendArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Who has and has not acknowledged a broadcast, and when.
    #[command(after_help = examples!(
        "society broadcast status 01J...",
        "society broadcast status 01J... -o json | jq -r '.missing[]'"
    ))]
    Status(StatusArgs),
    /// Every broadcast: acknowledged, waiting, escalated.
    #[command(after_help = examples!("society broadcast list", "society broadcast list -o json | jq '.[] | select(.state == \"escalated\")'"))]
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    body: Body,
    /// Only agents of this role.
    #[arg(long, value_name = "R")]
    role: Option<String>,
    /// Message type.
    #[arg(long = "type", default_value = "broadcast", value_name = "T")]
    kind: String,
    /// How recipients acknowledge: `auto` (their runtime, on handling the
    /// copy) or `explicit` (their brain replies with type `ack`).
    #[arg(long, value_enum, default_value_t = AckMode::Auto)]
    ack: AckMode,
    /// Unacknowledged after this long (`30s`, `10m`, `2h`) escalates the
    /// missing agents to you, once.
    #[arg(long, value_name = "D", default_value = "10m", value_parser = humantime::parse_duration)]
    deadline: Duration,
    #[command(flatten)]
    start: NoStart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AckMode {
    Auto,
    Explicit,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The broadcast's id (said on stderr when it was sent; `broadcast list`).
    id: String,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    match args.cmd {
        Some(Command::Status(a)) => show(layout, a),
        Some(Command::List(a)) => list(layout, a),
        None => send_all(layout, args.send),
    }
}

fn send_all(layout: &Layout, args: SendArgs) -> anyhow::Result<Code> {
    let body = args.body.value()?;
    if args.deadline.is_zero() || args.deadline > MAX_DEADLINE {
        return Err(coded(
            Code::Usage,
            format!(
                "--deadline {} is out of range: more than 0, at most a year",
                humantime::format_duration(args.deadline)
            ),
        ));
    }
    let opts = BroadcastOptions {
        explicit: args.ack == AckMode::Explicit,
        deadline: args.deadline,
    };
    let done = send::broadcast_with(layout, args.role.as_deref(), &args.kind, &body, &opts)?;
    note!(
        "broadcast {} to {} agent(s), ack {}, deadline {}",
        done.id,
        done.sent.len() + done.failed.len(),
        if opts.explicit { "explicit" } else { "auto" },
        humantime::format_duration(args.deadline)
    );
    render::warn(&done.warnings);
    for d in &done.sent {
        render::warn(&d.warnings);
    }
    for (id, e) in &done.failed {
        note!("not delivered to {id}: {e}");
    }
    if !done.sent.is_empty() {
        start_for(layout, args.start.no_start)?;
        for d in &done.sent {
            outln!("{} {}", d.agent, d.message);
        }
    }
    let total = done.sent.len() + done.failed.len();
    let count = done.failed.len();
    match done.failed.into_iter().next() {
        None => Ok(Code::Ok),
        // The first failure's own exit code stands (e.g. 5 for an oversize message).
        Some((id, first)) => Err(anyhow::Error::new(first).context(format!(
            "{count} of {total} deliveries failed (first: {id})"
        ))),
    }
}

fn show(layout: &Layout, args: StatusArgs) -> anyhow::Result<Code> {
    let s = status::status(layout, &args.id)?;
    let format = args.output.format();
    if args.output.is_json() {
        output::report(&s, format)?;
        return Ok(Code::Ok);
    }
    outln!(
        "broadcast {} ({}, ack {}): {} of {} acknowledged, {}; deadline {}",
        s.id,
        s.kind,
        s.ack,
        s.acked,
        s.recipients.len(),
        s.state,
        super::when::stamp(&s.deadline)
    );
    let mut t = Table::new(&["AGENT", "ACKED", "HOW", "WHEN", "MESSAGE"], format);
    t.keep(0, 64);
    for r in &s.recipients {
        let acked = match (&r.ack_ts, &r.undelivered) {
            (Some(_), _) => "yes",
            (None, Some(_)) => "undelivered",
            (None, None) => "no",
        };
        t.row(vec![
            r.agent.to_string(),
            acked.into(),
            r.how.clone().unwrap_or_else(|| "-".into()),
            r.ack_ts.as_deref().map_or("-".into(), table::age),
            r.message.map_or("-".into(), |m| m.to_string()),
        ]);
    }
    out!("{}", t.render());
    if let Some(e) = &s.escalated {
        outln!(
            "escalated {} (escalation {}): {}",
            super::when::stamp(&e.ts),
            e.escalation,
            e.missing
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Code::Ok)
}

fn list(layout: &Layout, args: ListArgs) -> anyhow::Result<Code> {
    let all: Vec<Status> = status::list(layout)?;
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&all, format)?;
        return Ok(Code::Ok);
    }
    if all.is_empty() {
        outln!("no broadcasts");
        return Ok(Code::Ok);
    }
    let mut t = Table::new(
        &["ID", "AGE", "TYPE", "ACK", "ACKED", "STATE", "MISSING"],
        format,
    );
    t.keep(0, 26);
    for s in &all {
        t.row(vec![
            s.id.to_string(),
            table::age(&s.ts),
            s.kind.clone(),
            s.ack.clone(),
            format!("{}/{}", s.acked, s.recipients.len()),
            s.state.into(),
            s.missing
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}
