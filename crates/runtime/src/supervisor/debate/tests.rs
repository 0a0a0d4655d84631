//! The debate state machine, driven in memory the way the supervisor drives
//! it: inbox lines planned by the planner, timer steps by `step::next`, and
//! every plan "landed" by folding its case-log records back into the
//! debates (as `commit.rs` does), at a clock the test moves.

#![allow(clippy::unwrap_used)]

mod input;
mod rounds;

use super::case_of;
use super::fold::Debates;
use super::request::DebateRequest;
use super::step::{self, Next};
use crate::config::RoutingConfig;
use crate::supervisor::cases::Cases;
use crate::supervisor::guard::Guard;
use crate::supervisor::plan::Plan;
use crate::supervisor::planner::{Directory, Planner};
use serde_json::{json, Value};
use society_core::kinds::{case_log, message};
use society_core::layout::case_of_log_name;
use society_core::state::{AgentConfig, Policy};
use society_core::{AgentId, AgentPaths, CaseId, Envelope, Layout, MsgId, Party};
use std::collections::{BTreeMap, HashMap, HashSet};

const T0: u64 = 1_700_000_000_000;

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

/// A supervisor's planning state, in memory, with a clock.
struct Sim {
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
    now: u64,
    /// Every message delivered to an inbox, in order.
    sent: Vec<Envelope>,
    /// Every case-log record and system event landed, in order.
    log: Vec<Value>,
    events: Vec<Value>,
}

impl Sim {
    fn new(agents: &[(&str, &str)]) -> Sim {
        let layout = Layout::at("/nonexistent/society-debate-tests");
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
        Sim {
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
            now: T0,
            sent: Vec::new(),
            log: Vec::new(),
            events: Vec::new(),
        }
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
            society: None,
            federated: false,
        }
    }

    /// What a commit does with the plan's records (see `commit.rs`).
    fn land(&mut self, plan: Plan) {
        for d in &plan.deliveries {
            let rec: Value = serde_json::from_slice(&d.record).unwrap();
            if d.dest == self.layout.system_events() {
                self.events.push(rec);
            } else if d.dest.starts_with(self.layout.cases_dir()) {
                let name = d.dest.file_name().unwrap().to_str().unwrap();
                let case = case_of_log_name(name).unwrap();
                self.cases.apply(&case, &rec);
                self.debates.apply(&case, &rec);
                self.log.push(rec);
            } else if d.dest != self.layout.agent_to_agent() {
                self.sent.push(Envelope::parse(&d.record).unwrap());
            }
        }
        for env in plan.approvals {
            self.approvals.insert(env.id, env);
        }
    }

    /// A batch of the supervisor's inbox.
    fn inbox(&mut self, envs: &[Envelope]) {
        let mut plan = Plan::at(self.now);
        for env in envs {
            self.planner().request(&mut plan, env.clone());
        }
        self.land(plan);
    }

    /// One timer step of every debate, as `debate_tick`; the steps taken.
    fn tick(&mut self) -> Vec<&'static str> {
        let alive = |a: &AgentId| self.agents.0.contains_key(a);
        let mut plans = Vec::new();
        let mut steps = Vec::new();
        for d in self.debates.iter() {
            let mut plan = Plan::at(self.now);
            match step::next(d, self.now, &alive) {
                Next::Wait(_) => continue,
                Next::Ask {
                    round,
                    iteration,
                    to,
                } => {
                    steps.push("ask");
                    self.planner()
                        .debate_ask(&mut plan, d, round, iteration, &to)
                }
                Next::Agree(c) => {
                    steps.push("agree");
                    self.planner().debate_agree(&mut plan, d, &c)
                }
                Next::Expire { reason, state } => {
                    steps.push("expire");
                    self.planner().debate_expire(&mut plan, d, &reason, &state)
                }
            }
            plans.push(plan);
        }
        for plan in plans {
            self.land(plan);
        }
        steps
    }

    /// The next step's due time, as `debate_wait` sees it.
    fn wait(&self) -> Option<u64> {
        let alive = |a: &AgentId| self.agents.0.contains_key(a);
        let d = self.debates.iter().next()?;
        match step::next(d, self.now, &alive) {
            Next::Wait(at) => Some(at),
            _ => Some(self.now),
        }
    }

    /// Round requests sent to `agent`, in order.
    fn asked(&self, agent: &str) -> Vec<Envelope> {
        self.sent
            .iter()
            .filter(|e| e.kind == message::ROUND_REQUEST && e.to.to_string() == agent)
            .cloned()
            .collect()
    }

    fn to(&self, agent: &str, kind: &str) -> Vec<Envelope> {
        self.sent
            .iter()
            .filter(|e| e.kind == kind && e.to.to_string() == agent)
            .cloned()
            .collect()
    }

    /// `agent`'s reply to its latest round request.
    fn answer(&mut self, agent: &str, position: Value) -> Envelope {
        let rr = self.asked(agent).pop().expect("a round request to answer");
        let env = reply(agent, &rr, json!({"position": position}));
        self.inbox(std::slice::from_ref(&env));
        env
    }

    /// What a restarted supervisor would rebuild from the logs written so
    /// far: it must be the state the running one holds.
    fn assert_refolds(&self) {
        let mut again = Debates::default();
        for rec in &self.log {
            let case = CaseId::new(rec["case"].as_str().unwrap()).unwrap();
            again.apply(&case, rec);
        }
        assert_eq!(
            again, self.debates,
            "the fold of the log differs from the live state"
        );
    }

    /// The events of the case log, in order.
    fn story(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                match s("event").as_str() {
                    "perspective" => format!(
                        "perspective {} r{}i{}",
                        s("agent"),
                        r["round"],
                        r["iteration"]
                    ),
                    "round_request" => format!(
                        "round_request {} r{}i{}",
                        s("to"),
                        r["round"],
                        r["iteration"]
                    ),
                    other => other.to_string(),
                }
            })
            .collect()
    }
}

fn aid(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn reply(from: &str, to: &Envelope, body: Value) -> Envelope {
    let mut env = Envelope::new(
        from.parse().unwrap(),
        Party::Supervisor,
        message::PERSPECTIVE,
        body,
    );
    env.reply_to = Some(to.id);
    env.case = to.case.clone();
    env
}

fn request(body: Value) -> Envelope {
    let from = body["agent"].as_str().unwrap_or("director").to_string();
    let mut env = Envelope::new(
        from.parse().unwrap(),
        Party::Supervisor,
        message::DEBATE_REQUEST,
        body,
    );
    env.case = Some(CaseId::new("ep-11").unwrap());
    env
}

/// A lighting decision by `director`, debated with `dp`.
fn lighting(position: Value) -> Value {
    json!({"decision": "ep11-lighting", "agent": "director", "decision_type": "lighting",
        "plan": {"contrast": "high", "haze": "no"}, "position": position,
        "rationale": "anomalous atmosphere", "alternatives": ["flat"],
        "participants": ["dp"], "time_limit_ms": 1000, "threshold": 0.8,
        "min_interval_ms": 100, "revision": 1, "proposal": {"p": 1},
        "parked": {"id": "x"}, "then": [{"to": "editor"}]})
}

fn film_crew() -> Sim {
    Sim::new(&[("director", "director"), ("dp", "dp"), ("editor", "editor")])
}

fn case() -> CaseId {
    case_of("ep11-lighting")
}
