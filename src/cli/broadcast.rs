//! `society broadcast [TEXT | --json BODY | --body-file FILE] [--role R] [--type T]`: one message from the
//! orchestrator to every agent, or every agent of a role. Each copy is an
//! ordinary human message (own id, delivered like `society send`), so every
//! recipient handles and answers it on its own.
//!
//! stdout is one `AGENT MESSAGE_ID` line per copy delivered, for `cut` and
//! `while read`; what was not delivered is said on stderr.

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
