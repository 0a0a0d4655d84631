//! `society llm status` and `society llm reset [CIRCUIT]`: the circuit
//! breakers of the llm brains (`.society-agent/circuits/`, see
//! `society_brains::llm::circuit`). `status -o json` is an array of circuit
//! states; `reset` prints each circuit it closed.

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use super::table;
use society_brains::llm::circuit;
use society_core::Layout;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Circuits with refused keys counted, and whether they are open.
    #[command(after_help = examples!(
        "society llm status",
        "society llm status --json | jq -r '.[] | select(.open) | .name'"
    ))]
    Status(StatusArgs),
    /// Close a circuit (or all): parked agents call the provider again.
    #[command(after_help = examples!(
        "society llm reset",
        "society llm reset openai-api.openai.com-OPENAI_API_KEY"
    ))]
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The circuit's name, as `society llm status` shows it (default: every circuit).
    circuit: Option<String>,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::Status(args) => status(layout, args),
        Command::Reset(args) => reset(layout, args),
    }
}

fn status(layout: &Layout, args: StatusArgs) -> anyhow::Result<Code> {
    let circuits = circuit::list(layout.state_dir());
    for path in circuit::unreadable(layout.state_dir()) {
        note!(
            "warning: {} is not a readable circuit file: it counts as closed (remove it)",
            path.display()
        );
    }
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&circuits, format)?;
        return Ok(Code::Ok);
    }
    if circuits.is_empty() {
        outln!("every circuit closed: no refused keys counted");
        return Ok(Code::Ok);
    }
    let mut t = Table::new(
        &["CIRCUIT", "STATE", "REFUSALS", "OPENED", "BY", "LAST ERROR"],
        format,
    );
    // The name is what `reset` takes: never cut.
    t.keep(0, 40);
    for c in &circuits {
        t.row(vec![
            c.name.clone(),
            if c.open { "open" } else { "closed" }.into(),
            c.failures.to_string(),
            c.opened_at.as_deref().map_or("-".into(), table::age),
            c.opened_by.clone().unwrap_or_else(|| "-".into()),
            c.last_error.clone(),
        ]);
    }
    out!("{}", t.render());
    Ok(Code::Ok)
}

fn reset(layout: &Layout, args: ResetArgs) -> anyhow::Result<Code> {
    let name = args.circuit.as_deref();
    let closed = circuit::reset(layout.state_dir(), name)?;
    match (closed.is_empty(), name) {
        (true, Some(n)) => anyhow::bail!(
            "no circuit named {n:?}: `society llm status` lists them ({})",
            list_names(layout)
        ),
        (true, None) => outln!("nothing to reset: no circuit has refused keys counted"),
        _ => {}
    }
    for c in &closed {
        outln!(
            "closed {} ({} refusal{}{})",
            c.name,
            c.failures,
            if c.failures == 1 { "" } else { "s" },
            if c.open { ", was open" } else { "" }
        );
    }
    Ok(Code::Ok)
}

fn list_names(layout: &Layout) -> String {
    let names: Vec<String> = circuit::list(layout.state_dir())
        .into_iter()
        .map(|c| c.name)
        .collect();
    if names.is_empty() {
        "there are none".into()
    } else {
        names.join(", ")
    }
}
