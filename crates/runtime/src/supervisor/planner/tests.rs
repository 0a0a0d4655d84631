//! Unit tests of the planner, table-style where the cases line up. Each
//! builds the planner's inputs in memory — a directory of agents, a routing
//! policy, guard and case state; the layout only names files, under a root
//! that does not exist — plans one line or a batch, and reads the plan back
//! as short labels (`inbox:b:task`, `case:c1:assigned`, `events:undeliverable`),
//! in the order the commit would append them.

#![allow(clippy::unwrap_used)]

mod cases;
mod federation;
mod limits;
mod mirrors;
mod org;
mod refusals;
mod requests;
mod routing;

use super::{Directory, LineOutcome, Planner};
use crate::config::{RouteAction, RouteRule, RoutingConfig};
use crate::supervisor::cases::Cases;
use crate::supervisor::debate::Debates;
use crate::supervisor::guard::Guard;
use crate::supervisor::plan::Plan;
use serde_json::{json, Value};
use society_core::case::{CaseStatus, CaseSummary};
use society_core::jsonl::Line;
use society_core::state::{AgentConfig, Policy};
use society_core::{AgentId, AgentPaths, CaseId, Envelope, Layout, MsgId};
use std::collections::{BTreeMap, HashMap, HashSet};

/// When every test batch is planned (ms since the epoch).
const NOW: u64 = 1_700_000_000_000;

#[derive(Default)]
struct Agents(BTreeMap<AgentId, (AgentConfig, AgentPaths)>);

impl Directory for Agents {
    fn get(&self, id: &AgentId) -> Option<(&AgentConfig, &AgentPaths)> {
        self.0.get(id).map(|(c, p)| (c, p))
    }

    fn with_role(&self, role: &str) -> Vec<&AgentId> {
        self.0
            .iter()
            .filter(|(_, (c, _))| c.role == role)
            .map(|(id, _)| id)
            .collect()
    }
}

/// The planner's inputs, owned.
struct World {
    layout: Layout,
    routing: RoutingConfig,
    agents: Agents,
    guard: Guard,
    cases: Cases,
    debates: Debates,
    segs: BTreeMap<AgentId, u64>,
    approvals: HashMap<MsgId, Envelope>,
    decided: HashSet<MsgId>,
    items: crate::org::Items,
    society: Option<society_core::SocietyName>,
    federated: bool,
}

impl World {
    /// Agents as `(id, role)`, default policies, routing that allows all.
    fn new(agents: &[(&str, &str)]) -> World {
        let layout = Layout::at("/nonexistent/society-planner-tests");
        let mut dir = Agents::default();
        for (id, role) in agents {
            let cfg = AgentConfig {
                id: aid(id),
                role: role.to_string(),
                brain: json!({"kind": "echo"}),
                keep_alive: false,
                policy: Policy::default(),
                capabilities: Vec::new(),
                org: Default::default(),
            };
            dir.0.insert(aid(id), (cfg, layout.agent(&aid(id))));
        }
        World {
            layout,
            routing: RoutingConfig::default(),
            agents: dir,
            guard: Guard::default(),
            cases: Cases::default(),
            debates: Debates::default(),
            segs: BTreeMap::new(),
            approvals: HashMap::new(),
            decided: HashSet::new(),
            items: crate::org::Items::default(),
            society: None,
            federated: false,
        }
    }

    fn policy(&mut self, id: &str) -> &mut Policy {
        &mut self.agents.0.get_mut(&aid(id)).unwrap().0.policy
    }

    fn rules(&mut self, default: RouteAction, rules: &[(&str, &str, &str, RouteAction)]) {
        self.routing = RoutingConfig {
            default,
            gates: Vec::new(),
            rules: rules
                .iter()
                .map(|(from, to, kind, action)| RouteRule {
                    from: from.to_string(),
                    to: to.to_string(),
                    kind: kind.to_string(),
                    action: *action,
                })
                .collect(),
        };
    }

    /// Preloads a case-log record, as if read from the log at start.
    fn case_record(&mut self, case: &str, rec: Value) {
        self.cases.apply(&cid(case), &rec);
    }

    fn planner(&self) -> Planner<'_> {
        Planner {
            layout: &self.layout,
            routing: &self.routing,
            agents: &self.agents,
            guard: &self.guard,
            cases: &self.cases,
            debates: &self.debates,
            segs: &self.segs,
            inbox_seg: 0,
            approvals: &self.approvals,
            decided: &self.decided,
            items: &self.items,
            society: self.society.as_ref(),
            federated: self.federated,
        }
    }

    /// Plans `env` as the next line of its sender's outbox.
    fn route(&self, env: &Envelope) -> (LineOutcome, Plan) {
        let (mut outcomes, plan) = self.batch(std::slice::from_ref(env));
        (outcomes.remove(0), plan)
    }

    /// Plans `envs` as one batch of their (first) sender's outbox.
    fn batch(&self, envs: &[Envelope]) -> (Vec<LineOutcome>, Plan) {
        let owner = aid(&envs[0].from.to_string());
        let lines: Vec<Vec<u8>> = envs.iter().map(Envelope::to_line).collect();
        self.lines(&owner, &lines)
    }

    /// Plans raw lines of `owner`'s outbox, starting at offset 0.
    fn lines(&self, owner: &AgentId, lines: &[Vec<u8>]) -> (Vec<LineOutcome>, Plan) {
        let mut plan = Plan::at(NOW);
        let mut offset = 0;
        let mut outcomes = Vec::new();
        for bytes in lines {
            let end = offset + bytes.len() as u64 + 1;
            let line = Line {
                offset,
                end,
                bytes: bytes.clone(),
            };
            outcomes.push(self.planner().line(&mut plan, owner, &line));
            offset = end;
        }
        (outcomes, plan)
    }

    /// Each append of the plan as `<destination>:<type or event>`.
    fn labels(&self, plan: &Plan) -> Vec<String> {
        plan.deliveries
            .iter()
            .map(|d| self.label(&d.dest, &serde_json::from_slice(&d.record).unwrap()))
            .collect()
    }

    fn label(&self, dest: &std::path::Path, rec: &Value) -> String {
        let field = |k: &str| rec[k].as_str().unwrap_or("?").to_string();
        let l = &self.layout;
        if dest == l.agent_to_agent() {
            return format!("mirror:{}", field("type"));
        }
        if dest == l.orchestrator_inbox() {
            return format!("orchestrator:{}", field("type"));
        }
        if dest == l.federation_outbound() {
            return format!("outbound:{}", field("type"));
        }
        if dest == l.supervisor_inbox() {
            return format!("supervisor:{}", field("type"));
        }
        if dest == l.supervisor_escalations() {
            return format!(
                "org:{}:{}",
                field("event"),
                field("at").replace('?', &field("to"))
            );
        }
        if dest == l.supervisor_deadletter() {
            return format!("supervisor-deadletter:{}", field("event"));
        }
        if dest == l.system_events() {
            return format!("events:{}", field("event"));
        }
        if dest.starts_with(l.cases_dir()) {
            return format!("case:{}:{}", field("case"), field("event"));
        }
        for (id, (_, paths)) in &self.agents.0 {
            if dest == paths.inbox() {
                return format!("inbox:{id}:{}", field("type"));
            }
            if dest == paths.deadletter() {
                return format!("deadletter:{id}:{}", field("event"));
            }
        }
        format!("?{}", dest.display())
    }

    /// The records of the appends labelled `label`.
    fn records(&self, plan: &Plan, label: &str) -> Vec<Value> {
        plan.deliveries
            .iter()
            .map(|d| serde_json::from_slice::<Value>(&d.record).unwrap())
            .zip(self.labels(plan))
            .filter(|(_, l)| l == label)
            .map(|(r, _)| r)
            .collect()
    }
}

fn aid(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn cid(s: &str) -> CaseId {
    CaseId::new(s).unwrap()
}

fn msg(from: &str, to: &str, kind: &str, body: Value) -> Envelope {
    Envelope::new(from.parse().unwrap(), to.parse().unwrap(), kind, body)
}

fn in_case(mut env: Envelope, case: &str) -> Envelope {
    env.case = Some(cid(case));
    env
}

/// A case as the plan leaves it.
fn case_after<'p>(plan: &'p Plan, case: &str) -> &'p CaseSummary {
    plan.cases.get(&cid(case)).unwrap()
}

fn status_after(plan: &Plan, case: &str) -> CaseStatus {
    case_after(plan, case).status
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
