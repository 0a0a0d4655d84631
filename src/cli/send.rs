//! `society send TO [TEXT | --json BODY | --body-file FILE] [--type T] [--case C] [--needs CAP,..]`.
//!
//! The CLI delivers human messages itself (DESIGN.md) through
//! `society_runtime::client::send`, then makes sure a supervisor runs so a
//! dormant recipient is started.

use super::body::Body;
use super::daemon::start_for;
use super::exit::Code;
use super::render;
use society_core::{CaseId, Envelope, Layout, Party};
use society_runtime::client::send;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipient: an agent id or role:<role>; `@SOCIETY` after either
    /// sends to another society (`[federation]` in society.toml).
    to: String,
    #[command(flatten)]
    body: Body,
    /// Message type.
    #[arg(long = "type", default_value = "task", value_name = "T")]
    kind: String,
    /// Case id the message belongs to.
    #[arg(long, value_name = "C")]
    case: Option<String>,
    /// For role:<role>: capabilities the recipient must have (comma-separated
    /// or repeated); the least loaded agent of the role that has them all.
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    needs: Vec<String>,
    /// Do not start the supervisor (the message waits until one runs).
    #[arg(long)]
    no_start: bool,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let mut env = build(&args)?;
    if send::localise(layout, &mut env)? {
        let done = send::deliver(layout, &env)?;
        render::warn(&done.warnings);
    } else {
        // To another society: the supervisor's router and bridge send it.
        send::forward(layout, &env)?;
    }
    start_for(layout, args.no_start)?;
    outln!("{}", env.id);
    Ok(Code::Ok)
}

fn build(args: &Args) -> anyhow::Result<Envelope> {
    let to: Party = args.to.parse()?;
    let body = args.body.value()?;
    send::check_type(&args.kind)?;
    let mut env = Envelope::new(Party::Orchestrator, to, args.kind.clone(), body);
    env.case = args.case.as_deref().map(CaseId::new).transpose()?;
    send::check_needs(&args.needs)?;
    env.needs = args.needs.clone();
    Ok(env)
}
