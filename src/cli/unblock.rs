//! `society unblock ID`: lifts the sanction the router imposed on an agent
//! whose messages were refused too often (see `society status`, and the
//! `escalation` in `society inbox` that announced it). Like an approval, it
//! is a durable request to the supervisor: acted on at once if it runs, when
//! it next starts otherwise; it never starts the supervisor itself.

use super::exit::{coded, Code};
use society_core::{AgentId, Layout};
use society_runtime::client::supervisor::supervisor_pid;
use society_runtime::control::{self, Request};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sanctioned agent.
    id: String,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let id = AgentId::new(args.id.as_str())?;
    if !layout.agent(&id).config().exists() {
        return Err(coded(
            Code::NotFound,
            format!("no agent {id} in {}", layout.state_dir().display()),
        ));
    }
    control::send(layout, &Request::Unblock { agent: id.clone() })?;
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
