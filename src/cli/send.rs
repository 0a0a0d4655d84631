//! `society send TO [TEXT] [--json BODY] [--type T] [--case C]`.
//!
//! The CLI delivers human messages itself (DESIGN.md): it validates, appends
//! to the recipient's inbox, mirrors to `messages/agent-to-agent.jsonl`, asks
//! the supervisor to record it in the case log when it carries a case, then
//! makes sure a supervisor runs so a dormant recipient is started.

use super::daemon::ensure_supervisor;
use super::exit::{coded, coded_hint, Code};
use society_core::jsonl::{append_one, Durability};
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, CaseId, Envelope, Layout, Party};
use society_runtime::control::Request;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipient: an agent id or role:<role>.
    to: String,
    /// Message text (becomes {"text": TEXT}).
    text: Option<String>,
    /// Message body as a JSON object instead of TEXT.
    #[arg(long, value_name = "BODY")]
    json: Option<String>,
    /// Message type.
    #[arg(long = "type", default_value = "task", value_name = "T")]
    kind: String,
    /// Case id the message belongs to.
    #[arg(long, value_name = "C")]
    case: Option<String>,
    /// Do not start the supervisor (the message waits until one runs).
    #[arg(long)]
    no_start: bool,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let env = build(&args)?;
    deliver(layout, &env)?;
    if !args.no_start {
        ensure_supervisor(layout)?;
    }
    println!("{}", env.id);
    Ok(Code::Ok)
}

fn build(args: &Args) -> anyhow::Result<Envelope> {
    let to: Party = args.to.parse()?;
    let body = match (&args.text, &args.json) {
        (Some(_), Some(_)) => {
            return Err(coded(
                Code::Usage,
                "give either TEXT or --json BODY, not both",
            ))
        }
        (Some(t), None) => serde_json::json!({ "text": t }),
        (None, Some(j)) => {
            let v: serde_json::Value = serde_json::from_str(j)
                .map_err(|e| coded(Code::Invalid, format!("--json is not valid JSON: {e}")))?;
            if !v.is_object() {
                return Err(coded(
                    Code::Invalid,
                    "--json must be a JSON object, e.g. '{\"text\":\"hi\"}'",
                ));
            }
            v
        }
        (None, None) => {
            return Err(coded(
                Code::Usage,
                "nothing to send: give TEXT or --json BODY",
            ))
        }
    };
    if !society_core::envelope::valid_type(&args.kind) {
        return Err(coded(
            Code::Invalid,
            format!(
                "invalid --type {:?}: types match [a-z0-9_.-]{{1,64}}",
                args.kind
            ),
        ));
    }
    let mut env = Envelope::new(Party::Orchestrator, to, args.kind.clone(), body);
    env.case = args.case.as_deref().map(CaseId::new).transpose()?;
    Ok(env)
}

/// Resolves the recipient and appends the message to its inbox.
pub fn deliver(layout: &Layout, env: &Envelope) -> anyhow::Result<AgentId> {
    let id = resolve(layout, env)?;
    let paths = layout.agent(&id);
    let max_record = match atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        Ok(Some(cfg)) => cfg.policy.max_record,
        Ok(None) => return Err(coded(Code::NotFound, format!("no agent {id}"))),
        // A broken folder still receives mail: it waits in the inbox.
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: agent {id} cannot run until repaired ({e}); the message waits in its inbox"
            );
            society_core::DEFAULT_MAX_RECORD
        }
    };
    let line = env.to_line();
    if line.len() + 1 > max_record {
        return Err(coded_hint(
            Code::Invalid,
            format!(
                "message of {} bytes exceeds agent {id}'s max_record ({} bytes); nothing was sent",
                line.len() + 1,
                max_record
            ),
            "write the payload to a file in the agent's workspace/ and send its path",
        ));
    }
    append_one(&paths.inbox(), &line, Durability::Durable, max_record)?;
    // The message is delivered: the mirror is a copy for `tail` and `grep`,
    // and failing to write it must not make the sender believe it was not.
    if let Err(e) = append_one(
        &layout.agent_to_agent(),
        &line,
        Durability::Flushed,
        usize::MAX,
    ) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "warning: message {} is delivered to {id}, but it is missing from {}: {e}",
            env.id,
            layout.agent_to_agent().display()
        );
    }
    if env.case.is_some() {
        // The supervisor is the only writer of case logs: it records this
        // message in the case log when it reads the request (at once, or
        // when it next starts).
        let request = Request::Reflect {
            message: Box::new(env.clone()),
            delivered_to: id.clone(),
        };
        society_runtime::control::send(layout, &request)?;
    }
    Ok(id)
}

fn resolve(layout: &Layout, env: &Envelope) -> anyhow::Result<AgentId> {
    let to = &env.to;
    match to {
        Party::Agent(id) => {
            if layout.agent(id).config().exists() {
                Ok(id.clone())
            } else {
                Err(coded_hint(
                    Code::NotFound,
                    format!(
                        "no agent {id} in {}; nothing was sent",
                        layout.state_dir().display()
                    ),
                    "`society status` lists agents; `society spawn ROLE --id ID` creates one",
                ))
            }
        }
        Party::Role(role) => {
            let mut candidates = Vec::new();
            for id in layout.agent_ids()? {
                // An unreadable config (a broken agent) is no candidate.
                let cfg: Option<AgentConfig> =
                    atomic::read_json(&layout.agent(&id).config(), "agent config")
                        .ok()
                        .flatten();
                if cfg.is_some_and(|c| c.role == *role) {
                    candidates.push(id);
                }
            }
            let refs: Vec<&AgentId> = candidates.iter().collect();
            society_runtime::roles::pick(&refs, env)
                .cloned()
                .ok_or_else(|| {
                    coded(
                        Code::NotFound,
                        format!("no agent has role {role}; nothing was sent"),
                    )
                })
        }
        Party::Orchestrator | Party::Supervisor => Err(coded(
            Code::Invalid,
            format!("cannot send to {to}: send to an agent id or role:<role>"),
        )),
    }
}
