//! Sending as the orchestrator: resolving the recipient, appending to its
//! inbox, mirroring to `messages/agent-to-agent.jsonl`, and asking the
//! supervisor to record the message in its case log (DESIGN.md: human
//! messages are delivered by the client itself, not routed).

use super::ClientError;
use crate::control::{self, Request};
use serde_json::Value;
use society_core::jsonl::{append_one, Durability};
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, Envelope, Layout, MsgId, Party};

/// A message delivered to one agent.
#[derive(Debug)]
pub struct Delivered {
    pub agent: AgentId,
    /// The id of the copy this agent got.
    pub message: MsgId,
    /// Things the sender should know, none of which undoes the delivery
    /// (the recipient cannot run until repaired; the mirror failed).
    pub warnings: Vec<String>,
}

/// What a broadcast did: every recipient gets its own copy, and one
/// recipient's refusal costs the others nothing.
#[derive(Debug)]
pub struct Broadcast {
    /// The broadcast's id (`society broadcast status ID`).
    pub id: MsgId,
    pub sent: Vec<Delivered>,
    pub failed: Vec<(AgentId, ClientError)>,
    /// Things to know that undo nothing (the `sent` record is missing).
    pub warnings: Vec<String>,
}

/// Refuses a message type outside `[a-z0-9_.-]{1,64}`.
pub fn check_type(kind: &str) -> Result<(), ClientError> {
    if society_core::envelope::valid_type(kind) {
        Ok(())
    } else {
        Err(ClientError::BadType { kind: kind.into() })
    }
}

/// Refuses a capability name outside `[a-z0-9_.-]{1,64}` in `--needs`.
pub fn check_needs(needs: &[String]) -> Result<(), ClientError> {
    society_core::envelope::check_needs(needs).map_err(|reason| ClientError::BadNeeds { reason })
}

/// Where a message goes: to this society (its `to` made local when it
/// names this society: `agent-1@north` in north), or to another one.
pub fn localise(layout: &Layout, env: &mut Envelope) -> Result<bool, ClientError> {
    let Some(society) = env.to.society() else {
        return Ok(true);
    };
    let cfg = crate::config::SocietyConfig::load(&layout.society_toml())?;
    if cfg.society.name.as_ref() == Some(society) {
        env.to = env.to.local().clone();
        return Ok(true);
    }
    if cfg.society.name.is_none() || cfg.federation.is_none() {
        return Err(ClientError::NotFederated {
            to: env.to.clone(),
            society: society.to_string(),
            toml: layout.society_toml(),
        });
    }
    Ok(false)
}

/// A message to another society: appended to the supervisor's inbox, from
/// where the router writes it to `supervisor/outbound.jsonl` and the
/// federation bridge publishes it (see `localise`).
pub fn forward(layout: &Layout, env: &Envelope) -> Result<(), ClientError> {
    let line = env.to_line();
    if line.len() + 1 > society_core::MAX_RECORD_LIMIT {
        return Err(ClientError::NotAnAgent { to: env.to.clone() });
    }
    append_one(
        &layout.supervisor_inbox(),
        &line,
        Durability::Durable,
        society_core::MAX_RECORD_LIMIT,
    )?;
    Ok(())
}

/// Resolves the recipient and appends the message to its inbox.
pub fn deliver(layout: &Layout, env: &Envelope) -> Result<Delivered, ClientError> {
    let id = resolve(layout, env)?;
    let paths = layout.agent(&id);
    let mut warnings = Vec::new();
    if let Err(link) = society_core::confine::check_folder(&paths) {
        // Its inbox is whole (checked by `resolve`, refused again by the
        // append if it changed meanwhile): the message waits there.
        warnings.push(format!(
            "agent {id} cannot run until repaired ({link}); the message waits in its inbox"
        ));
    }
    let max_record = match atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        Ok(Some(cfg)) => cfg.policy.max_record,
        Ok(None) => {
            return Err(ClientError::NoAgent {
                id,
                dir: layout.state_dir().to_path_buf(),
                sending: true,
            })
        }
        // A broken folder still receives mail: it waits in the inbox.
        Err(e) => {
            warnings.push(format!(
                "agent {id} cannot run until repaired ({e}); the message waits in its inbox"
            ));
            society_core::DEFAULT_MAX_RECORD
        }
    };
    let line = env.to_line();
    if line.len() + 1 > max_record {
        return Err(ClientError::Oversize {
            id,
            bytes: line.len() + 1,
            max: max_record,
        });
    }
    append_one(&paths.inbox(), &line, Durability::Durable, max_record)?;
    // The message is delivered: the mirror is a copy for `tail` and `grep`,
    // and failing to write it must not make the sender believe it was not.
    if let Err(e) = append_one(
        &layout.agent_to_agent(),
        &line,
        Durability::Flushed,
        max_record,
    ) {
        warnings.push(format!(
            "message {} is delivered to {id}, but it is missing from {}: {e}",
            env.id,
            layout.agent_to_agent().display()
        ));
    }
    if env.case.is_some() {
        // The supervisor is the only writer of case logs: it records this
        // message in the case log when it reads the request (at once, or
        // when it next starts).
        let request = Request::Reflect {
            message: Box::new(env.clone()),
            delivered_to: id.clone(),
        };
        control::send(layout, &request)?;
    }
    Ok(Delivered {
        agent: id,
        message: env.id,
        warnings,
    })
}

/// The agent a message goes to: its id if that agent exists, or one agent
/// of `role:R` (the same pick the router makes).
pub fn resolve(layout: &Layout, env: &Envelope) -> Result<AgentId, ClientError> {
    match &env.to {
        Party::Agent(id) => {
            // Never followed (`confine`): a linked folder or inbox would
            // deliver into whatever it points at.
            if let Err(link) = society_core::confine::check(&layout.agent(id).inbox()) {
                return Err(ClientError::Symlinked {
                    id: id.clone(),
                    link,
                    sending: true,
                });
            }
            if layout.agent(id).config().exists() {
                Ok(id.clone())
            } else {
                Err(ClientError::NoAgent {
                    id: id.clone(),
                    dir: layout.state_dir().to_path_buf(),
                    sending: true,
                })
            }
        }
        Party::Role(role) => {
            let mut configs = Vec::new();
            for id in layout.agent_ids()? {
                // An unreadable config (a broken agent) is no candidate.
                let cfg: Option<AgentConfig> =
                    atomic::read_json(&layout.agent(&id).config(), "agent config")
                        .ok()
                        .flatten();
                if let Some(cfg) = cfg.filter(|c| c.role == *role) {
                    configs.push(cfg);
                }
            }
            // Failed or broken agents, as the supervisor last saw them.
            let status: Option<crate::supervisor::state::SupervisorStatus> =
                atomic::read_json(&layout.supervisor_status(), "supervisor status")
                    .ok()
                    .flatten();
            let dead = |id: &AgentId| {
                status
                    .as_ref()
                    .and_then(|s| s.agents.get(id))
                    .is_some_and(|a| a.phase == "failed" || a.phase == "broken")
            };
            let candidates: Vec<crate::roles::Candidate<'_>> = configs
                .iter()
                .map(|c| crate::roles::Candidate {
                    id: &c.id,
                    capabilities: &c.capabilities,
                    alive: !dead(&c.id),
                })
                .collect();
            let on_case: Vec<String> = match &env.case {
                Some(case) => super::cases::load(layout, case)?
                    .map(|l| crate::roles::on_case(&l.summary))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let on_case: Vec<&str> = on_case.iter().map(String::as_str).collect();
            crate::roles::pick(&candidates, env, &on_case, |id| {
                crate::roles::inbox_depth(&layout.agent(id))
            })
            .map_err(|why| match why {
                crate::roles::NoPick::NoRole => ClientError::NoRole { role: role.clone() },
                crate::roles::NoPick::NotCapable { needs } => ClientError::NotCapable {
                    role: role.clone(),
                    needs,
                },
            })
        }
        to @ (Party::Orchestrator | Party::Supervisor | Party::Remote { .. }) => {
            Err(ClientError::NotAnAgent { to: to.clone() })
        }
    }
}

/// Every agent with a config, or every agent of `role`, sorted by id.
pub fn agents(layout: &Layout, role: Option<&str>) -> Result<Vec<AgentId>, ClientError> {
    let mut out = Vec::new();
    for id in layout.agent_ids()? {
        // An unreadable config (a broken agent) is no recipient; it does not
        // stop the others from getting theirs.
        let cfg: Option<AgentConfig> =
            atomic::read_json(&layout.agent(&id).config(), "agent config")
                .ok()
                .flatten();
        if cfg.is_some_and(|c| role.is_none_or(|r| c.role == r)) {
            out.push(id);
        }
    }
    Ok(out)
}

/// How recipients acknowledge a broadcast, and by when.
#[derive(Debug, Clone)]
pub struct BroadcastOptions {
    /// Only the brain acknowledges, by replying with type `ack`.
    pub explicit: bool,
    /// Unacknowledged after this long escalates to the orchestrator once.
    pub deadline: std::time::Duration,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            explicit: false,
            deadline: crate::broadcast::DEFAULT_DEADLINE,
        }
    }
}

/// One message from the orchestrator to every agent (or every agent of
/// `role`), each copy an ordinary message with its own id, acknowledged
/// automatically (see [`broadcast_with`]).
pub fn broadcast(
    layout: &Layout,
    role: Option<&str>,
    kind: &str,
    body: &Value,
) -> Result<Broadcast, ClientError> {
    broadcast_with(layout, role, kind, body, &BroadcastOptions::default())
}

/// A broadcast with acknowledgement: its record in
/// `messages/broadcast.jsonl` (written before any copy), then one copy per
/// recipient — id `derive(broadcast, index)`, body with
/// `broadcast: {id, ack}` added — and a `sent` record of what was delivered.
pub fn broadcast_with(
    layout: &Layout,
    role: Option<&str>,
    kind: &str,
    body: &Value,
    opts: &BroadcastOptions,
) -> Result<Broadcast, ClientError> {
    use crate::broadcast as bc;
    use society_core::kinds::broadcast as names;
    if let Some(role) = role {
        society_core::id::validate_role(role)?;
    }
    check_type(kind)?;
    if body.get(names::BODY_FIELD).is_some() {
        return Err(ClientError::ReservedField {
            field: names::BODY_FIELD,
        });
    }
    let targets = agents(layout, role)?;
    if targets.is_empty() {
        return Err(ClientError::NoRecipients {
            role: role.map(String::from),
            dir: layout.state_dir().to_path_buf(),
        });
    }
    let id = MsgId::generate();
    let ack = if opts.explicit {
        names::EXPLICIT
    } else {
        names::AUTO
    };
    let now = std::time::SystemTime::now();
    // A deadline past what the clock can say is as good as none.
    let due = now
        .checked_add(opts.deadline)
        .unwrap_or(now + std::time::Duration::from_secs(100 * 366 * 24 * 3600));
    let body_json = serde_json::to_vec(body).unwrap_or_default();
    let record = bc::Record {
        id,
        ts: society_core::time::now_rfc3339(),
        by: "orchestrator".into(),
        kind: kind.into(),
        role: role.map(String::from),
        ack: ack.into(),
        recipients: targets.clone(),
        deadline: society_core::time::format_rfc3339(due),
        deadline_ms: society_core::time::unix_ms(due),
        body_sha256: super::shared::sha256_hex(&body_json),
        body: (body_json.len() <= bc::BODY_KEPT).then(|| body.clone()),
    };
    append_one(
        &layout.broadcast_log(),
        &bc::record_line(&record),
        Durability::Durable,
        society_core::MAX_RECORD_LIMIT,
    )?;
    let mut out = Broadcast {
        id,
        sent: Vec::new(),
        failed: Vec::new(),
        warnings: Vec::new(),
    };
    let mut copy_body = body.clone();
    if let Some(b) = copy_body.as_object_mut() {
        b.insert(
            names::BODY_FIELD.into(),
            serde_json::json!({"id": id, "ack": ack}),
        );
    }
    for (index, agent) in targets.into_iter().enumerate() {
        let mut env = Envelope::new(
            Party::Orchestrator,
            Party::Agent(agent.clone()),
            kind,
            copy_body.clone(),
        );
        env.id = MsgId::derive(&id, index as u32);
        match deliver(layout, &env) {
            Ok(d) => out.sent.push(d),
            Err(e) => out.failed.push((agent, e)),
        }
    }
    let copies = out
        .sent
        .iter()
        .map(|d| (d.agent.clone(), d.message))
        .collect();
    let failed = out
        .failed
        .iter()
        .map(|(a, e)| (a.clone(), e.to_string()))
        .collect();
    if let Err(e) = append_one(
        &layout.broadcast_log(),
        &bc::sent_line(&id, &copies, &failed),
        Durability::Flushed,
        society_core::MAX_RECORD_LIMIT,
    ) {
        out.warnings.push(format!(
            "the copies of broadcast {id} are delivered, but their record is missing from {}: {e}",
            layout.broadcast_log().display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Code;
    use crate::provision::provision;
    use serde_json::json;
    use society_core::state::Policy;

    /// A society with agents `(id, role, max_record)`, no processes.
    fn society(agents: &[(&str, &str, usize)]) -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::at(dir.path());
        layout.create().expect("layout");
        for (id, role, max_record) in agents {
            let cfg = AgentConfig {
                id: AgentId::new(*id).expect("id"),
                role: (*role).into(),
                brain: json!({"kind": "echo"}),
                keep_alive: false,
                policy: Policy {
                    max_record: *max_record,
                    ..Policy::default()
                },
                capabilities: Vec::new(),
                org: Default::default(),
            };
            provision(&layout, &cfg, "test").expect("provision");
        }
        (dir, layout)
    }

    fn to(party: &str, body: Value) -> Envelope {
        Envelope::new(
            Party::Orchestrator,
            party.parse().expect("party"),
            "task",
            body,
        )
    }

    fn inbox_len(layout: &Layout, id: &str) -> usize {
        let path = layout.agent(&AgentId::new(id).expect("id")).inbox();
        std::fs::read(path).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
    }

    #[test]
    fn delivery_appends_to_the_recipient_and_the_mirror() {
        let (_d, layout) = society(&[("a", "worker", 1 << 20)]);
        let done = deliver(&layout, &to("a", json!({"text": "hi"}))).expect("delivered");
        assert_eq!(done.agent.as_str(), "a");
        assert!(done.warnings.is_empty(), "{:?}", done.warnings);
        assert_eq!(inbox_len(&layout, "a"), 1);
        let mirror = std::fs::read_to_string(layout.agent_to_agent()).expect("mirror");
        assert_eq!(mirror.lines().count(), 1);
    }

    #[test]
    fn refusals_name_what_was_wrong_and_send_nothing() {
        let (_d, layout) = society(&[("a", "worker", 256), ("b", "worker", 1 << 20)]);
        let big = to("a", json!({"text": "x".repeat(300)}));
        let cases: Vec<(Envelope, Code, &str)> = vec![
            (
                big,
                Code::Invalid,
                "exceeds agent a's max_record (256 bytes)",
            ),
            (
                to("nobody", json!({})),
                Code::NotFound,
                "no agent nobody in",
            ),
            (
                to("role:judge", json!({})),
                Code::NotFound,
                "no agent has role judge",
            ),
            (
                to("orchestrator", json!({})),
                Code::Invalid,
                "cannot send to orchestrator",
            ),
        ];
        for (env, code, says) in cases {
            let err = deliver(&layout, &env).expect_err("refused");
            assert_eq!(err.exit_code(), code, "{err}");
            assert!(err.to_string().contains(says), "{err}");
            assert!(err.to_string().contains("nothing was sent") || code == Code::Invalid);
        }
        assert_eq!(inbox_len(&layout, "a") + inbox_len(&layout, "b"), 0);
        let mirror = std::fs::read(layout.agent_to_agent()).unwrap_or_default();
        assert!(mirror.is_empty(), "nothing mirrored");
    }

    #[test]
    fn a_role_resolves_to_one_of_its_agents_the_same_for_a_case() {
        let (_d, layout) = society(&[
            ("w1", "worker", 1 << 20),
            ("w2", "worker", 1 << 20),
            ("j", "judge", 1 << 20),
        ]);
        let mut env = to("role:worker", json!({}));
        env.case = Some(society_core::CaseId::new("c1").expect("case"));
        let first = resolve(&layout, &env).expect("resolved");
        assert!(["w1", "w2"].contains(&first.as_str()), "{first}");
        for _ in 0..5 {
            let mut again = to("role:worker", json!({}));
            again.case = env.case.clone();
            assert_eq!(
                resolve(&layout, &again).expect("resolved"),
                first,
                "same case, same agent"
            );
        }
        assert_eq!(agents(&layout, Some("worker")).expect("list").len(), 2);
        assert_eq!(agents(&layout, None).expect("list").len(), 3);
    }

    #[test]
    fn a_broadcast_reaches_every_agent_of_the_role_and_reports_each_refusal() {
        let (_d, layout) = society(&[
            ("w1", "worker", 1 << 20),
            ("w2", "worker", 200),
            ("j", "judge", 1 << 20),
        ]);
        let body = json!({"text": "y".repeat(250)});
        let done = broadcast(&layout, Some("worker"), "broadcast", &body).expect("broadcast");
        let sent: Vec<&str> = done.sent.iter().map(|d| d.agent.as_str()).collect();
        assert_eq!(sent, ["w1"]);
        assert_eq!(done.failed.len(), 1);
        assert_eq!(done.failed[0].0.as_str(), "w2");
        assert_eq!(done.failed[0].1.exit_code(), Code::Invalid);
        assert_eq!(inbox_len(&layout, "j"), 0, "not of the role");
        let none = broadcast(&layout, Some("nobody"), "broadcast", &body).expect_err("no one");
        assert_eq!(none.exit_code(), Code::NotFound);
        let bad = broadcast(&layout, None, "Bad Type", &body).expect_err("bad type");
        assert_eq!(bad.exit_code(), Code::Invalid);
    }
}
