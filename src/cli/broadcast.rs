//! `society broadcast TEXT [--role R] [--type T]`: one message from the
//! orchestrator to every agent, or every agent of a role. Each copy is an
//! ordinary human message (own id, delivered like `society send`), so every
//! recipient handles and answers it on its own.

use super::daemon::ensure_supervisor;
use super::exit::{coded, coded_hint, Code};
use super::send::deliver;
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, Envelope, Layout, Party};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Message text (becomes {"text": TEXT}).
    text: String,
    /// Only agents of this role.
    #[arg(long, value_name = "R")]
    role: Option<String>,
    /// Message type.
    #[arg(long = "type", default_value = "broadcast", value_name = "T")]
    kind: String,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    if let Some(role) = &args.role {
        society_core::id::validate_role(role)?;
    }
    if !society_core::envelope::valid_type(&args.kind) {
        return Err(coded(
            Code::Invalid,
            format!(
                "invalid --type {:?}: types match [a-z0-9_.-]{{1,64}}",
                args.kind
            ),
        ));
    }
    let targets = agents(layout, args.role.as_deref())?;
    if targets.is_empty() {
        let what = match &args.role {
            Some(r) => format!("no agent has role {r}"),
            None => "no agents".to_string(),
        };
        return Err(coded_hint(
            Code::NotFound,
            format!(
                "{what} in {}; nothing was sent",
                layout.state_dir().display()
            ),
            "`society status` lists agents; `society spawn ROLE` creates one",
        ));
    }
    let body = serde_json::json!({ "text": args.text });
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    for id in targets {
        let env = Envelope::new(
            Party::Orchestrator,
            Party::Agent(id.clone()),
            args.kind.clone(),
            body.clone(),
        );
        // One recipient's refusal (e.g. its max_record) must not cost the others their copy.
        match deliver(layout, &env) {
            Ok(_) => sent.push(id),
            Err(e) => {
                eprintln!("not delivered to {id}: {e:#}");
                failed.push((id, e));
            }
        }
    }
    if !sent.is_empty() {
        ensure_supervisor(layout)?;
        let ids: Vec<&str> = sent.iter().map(AgentId::as_str).collect();
        println!("sent to {} agent(s): {}", sent.len(), ids.join(" "));
    }
    let total = sent.len() + failed.len();
    let count = failed.len();
    match failed.into_iter().next() {
        None => Ok(Code::Ok),
        // The first failure's own exit code stands (e.g. 5 for an oversize message).
        Some((id, first)) => Err(first.context(format!(
            "{count} of {total} deliveries failed (first: {id})"
        ))),
    }
}

/// Every agent with a config, or every agent of `role`, sorted by id.
pub fn agents(layout: &Layout, role: Option<&str>) -> anyhow::Result<Vec<AgentId>> {
    let mut out = Vec::new();
    for id in layout.agent_ids()? {
        let cfg: Option<AgentConfig> =
            atomic::read_json(&layout.agent(&id).config(), "agent config")?;
        if cfg.is_some_and(|c| role.is_none_or(|r| c.role == r)) {
            out.push(id);
        }
    }
    Ok(out)
}
