//! `society tree` and `status --team`: the organisation read from the
//! agents' `config.json` (`org.reports_to`), with each member's state and
//! inbox backlog from [`super::status`] and the escalations and approvals
//! waiting at it from `supervisor/escalations.jsonl` ([`crate::org`]).

use super::status::{self, Row};
use super::ClientError;
use serde::Serialize;
use society_core::org::ORCHESTRATOR;
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, Layout, MsgId};
use std::collections::{BTreeMap, BTreeSet};

/// An escalation or approval waiting at a node.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub item: MsgId,
    /// `escalation` or `approval`.
    pub kind: String,
    /// The parties it is about.
    pub parties: Vec<String>,
    /// When the lead's time is up (RFC 3339); none at the orchestrator.
    pub due: Option<String>,
}

/// A member of the organisation and the team under it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: AgentId,
    pub role: String,
    /// As `status` shows it (running, idle, dormant, failed, …).
    pub state: String,
    /// Messages waiting in its inbox.
    pub inbox_pending: u64,
    /// Escalations and approvals waiting at it.
    pub pending: Vec<Waiting>,
    pub members: Vec<Member>,
}

/// The whole organisation: the orchestrator at the root.
#[derive(Debug, Clone, Serialize)]
pub struct Tree {
    pub root: String,
    /// Items that reached the orchestrator through the organisation and
    /// are still open (approvals not yet answered).
    pub pending: Vec<Waiting>,
    pub members: Vec<Member>,
}

/// Every agent's lead, from its `config.json` (`None`: the orchestrator,
/// or a lead that does not exist, or a config that cannot be read).
pub fn leads(layout: &Layout) -> Result<BTreeMap<AgentId, Option<AgentId>>, ClientError> {
    let ids: BTreeSet<AgentId> = layout.agent_ids()?.into_iter().collect();
    let mut out = BTreeMap::new();
    for id in &ids {
        let cfg: Option<AgentConfig> =
            atomic::read_json(&layout.agent(id).config(), "agent config")
                .ok()
                .flatten();
        let lead = cfg
            .and_then(|c| c.org.reports_to)
            .filter(|l| l != ORCHESTRATOR)
            .and_then(|l| AgentId::new(l).ok())
            .filter(|l| ids.contains(l) && l != id);
        out.insert(id.clone(), lead);
    }
    Ok(out)
}

/// `lead` and everyone under it, transitively.
pub fn team(layout: &Layout, lead: &AgentId) -> Result<BTreeSet<AgentId>, ClientError> {
    let leads = leads(layout)?;
    let mut team = BTreeSet::from([lead.clone()]);
    // Grows until stable; a cycle in hand-edited folders cannot loop.
    loop {
        let before = team.len();
        for (id, up) in &leads {
            if up.as_ref().is_some_and(|u| team.contains(u)) {
                team.insert(id.clone());
            }
        }
        if team.len() == before {
            return Ok(team);
        }
    }
}

/// The organisation with states and pending items.
pub fn tree(layout: &Layout) -> Result<Tree, ClientError> {
    let leads = leads(layout)?;
    let report = status::collect(layout, None)?;
    let rows: BTreeMap<AgentId, Row> = report
        .agents
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let items = crate::org::Items::load(layout)?;
    let mut waiting: BTreeMap<String, Vec<Waiting>> = BTreeMap::new();
    let decided = crate::approvals::decisions(layout)?;
    for i in items.open() {
        if i.kind == crate::org::APPROVAL && decided.contains_key(&i.item) {
            continue;
        }
        // An escalation that reached the orchestrator is in its inbox, read.
        if i.at == ORCHESTRATOR && i.kind == crate::org::ESCALATION {
            continue;
        }
        let due = (i.due > 0).then(|| {
            society_core::time::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(i.due),
            )
        });
        waiting.entry(i.at.clone()).or_default().push(Waiting {
            item: i.item,
            kind: i.kind.clone(),
            parties: i.parties.clone(),
            due,
        });
    }
    let mut children: BTreeMap<Option<AgentId>, Vec<AgentId>> = BTreeMap::new();
    for (id, up) in &leads {
        children.entry(up.clone()).or_default().push(id.clone());
    }
    fn build(
        id: &AgentId,
        rows: &BTreeMap<AgentId, Row>,
        children: &BTreeMap<Option<AgentId>, Vec<AgentId>>,
        waiting: &mut BTreeMap<String, Vec<Waiting>>,
        seen: &mut BTreeSet<AgentId>,
    ) -> Member {
        seen.insert(id.clone());
        let row = rows.get(id);
        let kids = children.get(&Some(id.clone())).cloned().unwrap_or_default();
        let pending = waiting.remove(id.as_str()).unwrap_or_default();
        let mut members = Vec::new();
        for k in &kids {
            if !seen.contains(k) {
                members.push(build(k, rows, children, waiting, seen));
            }
        }
        Member {
            id: id.clone(),
            role: row.map_or_else(String::new, |r| r.role.clone()),
            state: row.map_or_else(|| "unknown".into(), |r| r.state.clone()),
            inbox_pending: row.map_or(0, |r| r.inbox_pending),
            pending,
            members,
        }
    }
    let mut seen = BTreeSet::new();
    let top = children.get(&None).cloned().unwrap_or_default();
    let members = top
        .iter()
        .map(|id| build(id, &rows, &children, &mut waiting, &mut seen))
        .collect();
    Ok(Tree {
        root: ORCHESTRATOR.into(),
        pending: waiting.remove(ORCHESTRATOR).unwrap_or_default(),
        members,
    })
}
