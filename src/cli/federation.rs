//! `society federation status`: this society's link to the others over
//! NATS JetStream (SCALING.md). `--json` is one object, documented in
//! FORMAT.md ("Federation").

use super::exit::Code;
use super::output::{self, OutputArgs};
use super::table;
use society_core::Layout;
use society_runtime::federation;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The link: connected, messages waiting in outbound.jsonl, counts, the last error.
    #[command(after_help = examples!(
        "society federation status",
        "society federation status --json | jq .pending"
    ))]
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::Status(args) => status(layout, args),
    }
}

fn status(layout: &Layout, args: StatusArgs) -> anyhow::Result<Code> {
    let r = federation::report(layout)?;
    if args.output.is_json() {
        output::report(&r, args.output.format())?;
        return Ok(Code::Ok);
    }
    let name = r.society.as_deref().unwrap_or("(no [society] name)");
    if !r.federated {
        outln!("society {name}: not federated (add [federation] nats_url to society.toml; see SCALING.md)");
        if r.pending > 0 {
            outln!("{} message(s) wait in outbound.jsonl", r.pending);
        }
        return Ok(Code::Ok);
    }
    let link = match (r.supervisor, r.connected) {
        (None, _) => "down (the supervisor is not running; `society up`)".to_string(),
        (Some(pid), true) => format!(
            "connected{} (supervisor pid {pid})",
            r.since
                .as_deref()
                .map_or(String::new(), |s| format!(" for {}", table::age(s)))
        ),
        (Some(pid), false) => format!("disconnected, reconnecting (supervisor pid {pid})"),
    };
    outln!("society {name} → {}", r.servers.join(", "));
    outln!("link:      {link}");
    outln!(
        "outbound:  {} waiting ({} of {} bytes acknowledged)",
        r.pending,
        r.cursor,
        r.outbound_bytes
    );
    outln!(
        "this run:  {} published, {} received, {} duplicates dropped, {} refused",
        r.published,
        r.received,
        r.duplicates,
        r.refused
    );
    if let Some(e) = &r.last_error {
        outln!("last error: {e}");
    }
    Ok(Code::Ok)
}
