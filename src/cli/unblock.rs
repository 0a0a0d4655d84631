//! `society unblock ID`: lifts the sanction the router imposed on an agent
//! whose messages were refused too often (see `society status`, and the
//! `escalation` in `society inbox` that announced it). Like an approval, it
//! is a durable request to the supervisor: acted on at once if it runs, when
//! it next starts otherwise; it never starts the supervisor itself.

use super::exit::Code;
use society_core::Layout;
use society_runtime::client::supervisor::supervisor_pid;
use society_runtime::client::{agents, answers};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sanctioned agent.
    id: String,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = agents::existing(layout, &args.id)?;
    answers::unblock(layout, &id)?;
    if supervisor_pid(layout).is_some() {
        outln!(
            "{id} unblocked: its messages to agents are delivered again, its refusals forgotten"
        );
    } else {
        outln!(
            "{id} unblocked when the supervisor next starts (`society up`); recorded in {}",
            layout.supervisor_inbox().display()
        );
    }
    Ok(Code::Ok)
}
