//! `society broadcast [TEXT | --json BODY | --body-file FILE] [--role R] [--type T]`: one message from the
//! orchestrator to every agent, or every agent of a role. Each copy is an
//! ordinary human message (own id, delivered like `society send`), so every
//! recipient handles and answers it on its own.

use super::body::Body;
use super::daemon::{start_for, NoStart};
use super::exit::Code;
use super::render;
use society_core::Layout;
use society_runtime::client::send;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    body: Body,
    /// Only agents of this role.
    #[arg(long, value_name = "R")]
    role: Option<String>,
    /// Message type.
    #[arg(long = "type", default_value = "broadcast", value_name = "T")]
    kind: String,
    #[command(flatten)]
    start: NoStart,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let body = args.body.value()?;
    let done = send::broadcast(layout, args.role.as_deref(), &args.kind, &body)?;
    for d in &done.sent {
        render::warn(&d.warnings);
    }
    for (id, e) in &done.failed {
        eprintln!("not delivered to {id}: {e}");
    }
    if !done.sent.is_empty() {
        start_for(layout, args.start.no_start)?;
        let ids: Vec<&str> = done.sent.iter().map(|d| d.agent.as_str()).collect();
        outln!("sent to {} agent(s): {}", ids.len(), ids.join(" "));
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
