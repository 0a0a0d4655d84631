//! The debate state machine, driven in memory the way the supervisor drives
//! it: inbox lines planned by the planner, timer steps by `step::next`, and
//! every plan "landed" by folding its case-log records back into the
//! debates (as `commit.rs` does), at a clock the test moves.

#![allow(clippy::unwrap_used)]

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

#[test]
fn consensus_after_round_one() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    assert_eq!(
        s.story(),
        ["created", "debate_opened", "perspective director r1i0"]
    );
    let d = s.debates.get(&case()).unwrap();
    assert_eq!(d.opened.participants, [aid("director"), aid("dp")]);
    assert_eq!(d.opened.deadline, T0 + 1000);

    assert_eq!(s.tick(), ["ask"]);
    let rr = s.asked("dp");
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0].case, Some(case()));
    assert_eq!(rr[0].body["round"], 1);
    assert_eq!(rr[0].body["iteration"], 0);
    assert_eq!(
        rr[0].body["perspectives"],
        json!({"director": {"contrast": "high"}})
    );
    assert_eq!(rr[0].body["debate"], case().as_str());
    assert!(s.asked("director").is_empty(), "round 1 asks the others");
    // Waiting for dp: until the end of the iteration at the latest.
    assert_eq!(s.tick(), Vec::<&str>::new());
    assert_eq!(s.wait(), Some(T0 + 100));

    s.now += 10;
    s.answer("dp", json!({"contrast": "high"}));
    assert_eq!(s.tick(), ["agree"]);
    assert_eq!(
        s.story(),
        [
            "created",
            "debate_opened",
            "perspective director r1i0",
            "round_request dp r1i0",
            "perspective dp r1i0",
            "consensus",
            "completed"
        ]
    );
    let consensus = &s.log[5];
    assert_eq!(
        consensus["agreed_plan"],
        json!({"contrast": "high", "haze": "no"})
    );
    assert_eq!(consensus["agreement"], 1.0);
    assert_eq!(consensus["iterations"], 0);
    assert_eq!(consensus["duration_ms"], 10);
    let result = s.to("director", message::DEBATE_RESULT);
    assert_eq!(result.len(), 1);
    let body = &result[0].body;
    assert_eq!(body["consensus"], true);
    assert_eq!(body["decision"], "ep11-lighting");
    assert_eq!(body["debate"], case().as_str());
    assert_eq!(body["proposal"], json!({"p": 1}));
    assert_eq!(body["parked"], json!({"id": "x"}));
    assert_eq!(body["then"], json!([{"to": "editor"}]));
    assert_eq!(body["revision"], 1);
    assert_eq!(result[0].case, Some(CaseId::new("ep-11").unwrap()));
    // Ended: no more steps, no more timers.
    assert!(s.debates.is_empty());
    assert_eq!(s.tick(), Vec::<&str>::new());
}

/// SOCIETY.md §4, Episode 11: `{contrast: high}` vs `{contrast: high, haze:
/// yes}` is 0.5; in iteration 1 the proposer adopts haze → 1.0.
#[test]
fn consensus_in_round_two_iteration_one() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.tick();
    s.now += 20;
    s.answer("dp", json!({"contrast": "high", "haze": "yes"}));
    // The iteration is over (everyone answered) without consensus; round 2
    // waits for the pacing interval.
    assert_eq!(s.tick(), Vec::<&str>::new());
    assert_eq!(s.wait(), Some(T0 + 100));
    s.now = T0 + 100;
    assert_eq!(s.tick(), ["ask"]);
    let to_director = s.asked("director");
    let to_dp = s.asked("dp");
    assert_eq!((to_director.len(), to_dp.len()), (1, 2));
    let rr = &to_director[0];
    assert_eq!(
        (rr.body["round"].clone(), rr.body["iteration"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        rr.body["perspectives"],
        json!({"director": {"contrast": "high"}, "dp": {"contrast": "high", "haze": "yes"}})
    );
    s.now += 30;
    s.answer("director", json!({"contrast": "high", "haze": "yes"}));
    assert_eq!(s.tick(), Vec::<&str>::new(), "dp has not answered yet");
    s.answer("dp", json!({"contrast": "high", "haze": "yes"}));
    assert_eq!(s.tick(), ["agree"]);
    let consensus = s.log.iter().find(|r| r["event"] == "consensus").unwrap();
    assert_eq!(consensus["agreement"], 1.0);
    assert_eq!(consensus["iterations"], 1);
    assert_eq!(
        consensus["agreed_plan"],
        json!({"contrast": "high", "haze": "yes"})
    );
    assert_eq!(
        s.to("director", message::DEBATE_RESULT)[0].body["iterations"],
        1
    );
}

/// The film-crew fixture of Episode 1: split on contrast until the deadline.
#[test]
fn expiry_escalates_with_the_areas_of_disagreement() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(
        json!({"contrast": "low", "palette": "blue"}),
    ))]);
    s.tick();
    let mut rounds = 0;
    loop {
        let rr = s.asked("dp").pop().unwrap();
        if rr.body["iteration"] == rounds {
            s.answer("dp", json!({"contrast": "high", "palette": "blue"}));
        }
        // The director never answers a round 2 request: it keeps its position.
        // Next due time: never past the deadline.
        let at = s.wait().unwrap();
        assert!(at <= T0 + 1000, "a step due at {at} is past the deadline");
        s.now = at.max(s.now + 1);
        let steps = s.tick();
        if steps.contains(&"expire") {
            break;
        }
        rounds += 1;
        assert!(rounds < 50, "the debate never expired");
    }
    assert_eq!(s.now, T0 + 1000, "expired exactly at the deadline");
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(expired["areas_of_disagreement"], json!(["contrast"]));
    assert_eq!(expired["areas_of_agreement"], json!({"palette": "blue"}));
    assert_eq!(
        expired["recommendation"],
        "Escalate to higher authority for resolution"
    );
    assert_eq!(expired["duration_ms"], 1000);
    assert_eq!(
        expired["final_perspectives"],
        json!({"director": {"contrast": "low", "palette": "blue"},
               "dp": {"contrast": "high", "palette": "blue"}})
    );
    assert!(expired["iterations"].as_u64().unwrap() >= 1);
    let asks = s.to("orchestrator", message::APPROVAL_REQUEST);
    assert_eq!(asks.len(), 1);
    let ask = &asks[0];
    assert_eq!(ask.from, Party::Supervisor);
    assert_eq!(ask.case, Some(case()));
    assert_eq!(ask.body["kind"], "debate");
    assert_eq!(ask.body["agent"], "director");
    assert_eq!(ask.body["areas_of_disagreement"], json!(["contrast"]));
    assert_eq!(ask.body["then"], json!([{"to": "editor"}]));
    assert!(s.approvals.contains_key(&ask.id));
    let result = &s.to("director", message::DEBATE_RESULT)[0];
    assert_eq!(result.body["consensus"], false);
    assert_eq!(result.body["escalated"], json!(ask.id));
    assert_eq!(s.story().last().unwrap(), "approval_requested");
    assert!(s.debates.is_empty());
    // Pacing: every iteration started at least min_interval after the last.
    let starts: Vec<u64> = s
        .log
        .iter()
        .filter(|r| r["event"] == "round_request" && r["to"] == "dp")
        .map(|r| r["t_ms"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 100), "{starts:?}");

    // The orchestrator approves: the answer goes to the proposer.
    let decide = Envelope::new(
        Party::Orchestrator,
        Party::Supervisor,
        message::CONTROL,
        json!({"op": "decide", "request": ask.id, "approve": true, "note": "go dark"}),
    );
    s.inbox(&[decide]);
    let answers = s.to("director", message::APPROVAL_RESPONSE);
    assert_eq!(answers.len(), 1, "{:?}", s.events);
    let a = &answers[0];
    assert_eq!(a.reply_to, Some(ask.id));
    assert_eq!(a.body["approved"], true);
    assert_eq!(a.body["decision"], "approved");
    assert_eq!(a.body["note"], "go dark");
    assert_eq!(a.body["proposal"], json!({"p": 1}));
    assert_eq!(a.body["then"], json!([{"to": "editor"}]));
    assert_eq!(a.body["parked"], json!({"id": "x"}));
    assert_eq!(a.case, Some(CaseId::new("ep-11").unwrap()));
    assert_eq!(s.cases.get(&case()).unwrap().status.as_str(), "resolved");
}

#[test]
fn a_participant_that_does_not_answer_keeps_its_perspective() {
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["participants"] = json!(["role:dp", "editor"]);
    body["threshold"] = json!(1.0);
    s.inbox(&[request(body)]);
    s.tick();
    s.answer("dp", json!({"contrast": "low"}));
    s.answer("editor", json!({"contrast": "high"}));
    s.now = T0 + 100;
    assert_eq!(s.tick(), ["ask"], "iteration 1");
    s.answer("director", json!({"contrast": "high"}));
    s.answer("dp", json!({"contrast": "high"}));
    // The editor stays silent: its iteration does not end until the pacing
    // interval, and then its round-1 position still counts.
    assert_eq!(s.tick(), Vec::<&str>::new());
    s.now = T0 + 199;
    assert_eq!(s.tick(), Vec::<&str>::new());
    s.now = T0 + 200;
    assert_eq!(s.tick(), ["agree"]);
    let consensus = s.log.iter().find(|r| r["event"] == "consensus").unwrap();
    assert_eq!(
        consensus["final_perspectives"]["editor"],
        json!({"contrast": "high"})
    );
    // An answer to a round that is over, a repeat, or one that is not an
    // object changes nothing: the debate has ended.
    assert!(s.debates.is_empty());
}

#[test]
fn bad_perspectives_are_refused_and_the_previous_one_stands() {
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.tick();
    s.answer("dp", json!("high contrast please"));
    let blocked = s.to("dp", message::MESSAGE_BLOCKED);
    assert_eq!(blocked.len(), 1);
    let reason = blocked[0].body["reason"].as_str().unwrap();
    assert!(reason.contains("position must be an object"), "{reason}");
    assert!(!s.story().iter().any(|e| e == "perspective dp r1i0"));
    // A non-participant's perspective is refused too.
    let rr = s.asked("dp").pop().unwrap();
    let intruder = reply("editor", &rr, json!({"position": {"contrast": "low"}}));
    s.inbox(&[intruder]);
    let reason = s.to("editor", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("not a participant"),
        "{reason}"
    );
    // A good answer, then the same reply again (a redelivery): recorded once.
    let good = reply("dp", &rr, json!({"position": {"contrast": "high"}}));
    s.inbox(&[good.clone(), good.clone()]);
    s.inbox(&[good]);
    let n = s
        .story()
        .iter()
        .filter(|e| *e == "perspective dp r1i0")
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_replayed_request_opens_one_debate() {
    let mut s = film_crew();
    let req = request(lighting(json!({"contrast": "high"})));
    // Twice in one batch, then once more in a later one, then a new
    // message for the same decision.
    s.inbox(&[req.clone(), req.clone()]);
    s.inbox(&[req]);
    s.inbox(&[request(lighting(json!({"contrast": "low"})))]);
    let opened = s.story().iter().filter(|e| *e == "debate_opened").count();
    assert_eq!(opened, 1);
    let dups = s
        .events
        .iter()
        .filter(|e| e["event"] == "debate_duplicate")
        .count();
    assert_eq!(dups, 3);
    assert_eq!(s.tick(), ["ask"]);
    assert_eq!(s.tick(), Vec::<&str>::new(), "round 1 is asked once");
    assert_eq!(s.asked("dp").len(), 1);
    assert!(s.to("director", message::MESSAGE_BLOCKED).is_empty());

    // Another agent proposing the same decision would wait forever: refused.
    let mut theirs = lighting(json!({"contrast": "low"}));
    theirs["agent"] = json!("dp");
    s.inbox(&[request(theirs)]);
    let reason = s.to("dp", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("already debated in case")
            && reason.as_str().unwrap().contains("proposed by director"),
        "{reason}"
    );
    // Once the debate is over, asking again is refused too (the result was sent).
    s.answer("dp", json!({"contrast": "high"}));
    assert_eq!(s.tick(), ["agree"]);
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    let blocked = s.to("director", message::MESSAGE_BLOCKED);
    assert_eq!(blocked.len(), 1);
    let reason = blocked[0].body["reason"].as_str().unwrap();
    assert!(reason.contains("was already debated"), "{reason}");
    assert_eq!(
        s.story().iter().filter(|e| *e == "debate_opened").count(),
        1
    );
}

#[test]
fn no_one_to_debate_with_expires_at_once() {
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["participants"] = json!(["ghost", "role:nobody"]);
    s.inbox(&[request(body)]);
    let d = s.debates.get(&case()).unwrap();
    assert_eq!(d.opened.participants, [aid("director")]);
    assert_eq!(d.opened.skipped, ["ghost", "role:nobody"]);
    assert_eq!(s.tick(), ["expire"]);
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(
        expired["reason"],
        "no participant besides the proposer could be resolved"
    );
    assert_eq!(s.to("orchestrator", message::APPROVAL_REQUEST).len(), 1);

    // Participants removed meanwhile: expires at the next step.
    let mut s = film_crew();
    s.inbox(&[request(lighting(json!({"contrast": "high"})))]);
    s.tick();
    s.agents.0.remove(&aid("dp"));
    assert_eq!(s.tick(), ["expire"]);
    let expired = s
        .log
        .iter()
        .find(|r| r["event"] == "debate_expired")
        .unwrap();
    assert_eq!(
        expired["reason"],
        "every participant besides the proposer is gone"
    );
}

#[test]
fn bad_requests_are_refused_with_the_field_named() {
    let cases = [
        ("decision", json!(null), "decision is missing"),
        ("decision", json!(7), "decision must be a string"),
        ("plan", json!(3), "plan must be an object or a string"),
        ("position", json!("low"), "position must be an object"),
        ("participants", json!("dp"), "participants must be a list"),
        (
            "participants",
            json!(["../x"]),
            "neither an agent id nor role",
        ),
        (
            "time_limit_ms",
            json!(0),
            "time_limit_ms must be a whole number",
        ),
        (
            "time_limit_ms",
            json!(-5),
            "time_limit_ms must be a whole number",
        ),
        (
            "threshold",
            json!(1.5),
            "threshold must be a number in (0, 1]",
        ),
        ("threshold", json!(null), "threshold is missing"),
        ("min_interval_ms", json!(null), "min_interval_ms is missing"),
        ("revision", json!("1"), "revision must be a whole number"),
        ("alternatives", json!("x"), "alternatives must be a list"),
    ];
    for (field, value, want) in cases {
        let mut body = lighting(json!({"contrast": "high"}));
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        let err = DebateRequest::parse(&body).unwrap_err();
        assert!(err.contains(want), "{field}: {err:?} lacks {want:?}");
    }
    // Refused to the sender, nothing opened.
    let mut s = film_crew();
    let mut body = lighting(json!({"contrast": "high"}));
    body["threshold"] = json!(2);
    s.inbox(&[request(body)]);
    let blocked = s.to("director", message::MESSAGE_BLOCKED);
    assert!(blocked[0].body["reason"]
        .as_str()
        .unwrap()
        .starts_with("debate request refused: threshold"));
    assert!(s.log.is_empty());
    // The body's agent must be the sender.
    let mut env = request(lighting(json!({"contrast": "high"})));
    env.from = "dp".parse().unwrap();
    s.inbox(&[env]);
    let reason = s.to("dp", message::MESSAGE_BLOCKED)[0].body["reason"].clone();
    assert!(
        reason.as_str().unwrap().contains("is not the sender dp"),
        "{reason}"
    );
    assert!(s.log.is_empty());
}

#[test]
fn case_ids_are_valid_and_stable() {
    let a = case_of("ep11-lighting");
    assert!(a.as_str().starts_with("debate-ep11-lighting-"), "{a}");
    assert_eq!(a, case_of("ep11-lighting"));
    assert_ne!(a, case_of("EP11-lighting"), "the hash keeps case apart");
    let long = "Ünïcode/../decision with spaces and a very long name indeed, longer than any id";
    let b = case_of(long);
    assert!(b.as_str().len() <= 63, "{b}");
    assert!(case_of("***").as_str().starts_with("debate-"));
    assert_eq!(case_log::DEBATE_OPENED, "debate_opened");
}

/// A batch re-planned after a crash (some of its records landed) plans the
/// whole opening again, and the commit skips what landed: the replay is not
/// taken for a duplicate of itself.
#[test]
fn a_batch_replayed_after_a_crash_plans_its_opening_again() {
    let mut s = film_crew();
    let req = request(lighting(json!({"contrast": "high"})));
    // The first attempt landed its `created` record, then the process died.
    let mut first = Plan::at(s.now);
    s.planner().request(&mut first, req.clone());
    let created = first.deliveries[0].clone();
    assert!(created.key.ends_with("/created"), "{}", created.key);
    let rec: Value = serde_json::from_slice(&created.record).unwrap();
    s.cases.apply(&case(), &rec);
    // The re-plan knows what landed.
    let mut again = Plan::at(s.now);
    again.present = Some(HashSet::from([(created.dest.clone(), created.key.clone())]));
    s.planner().request(&mut again, req.clone());
    let keys: Vec<&str> = again.deliveries.iter().map(|d| d.key.as_str()).collect();
    let first_keys: Vec<&str> = first.deliveries.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, first_keys, "the same records, under the same keys");
    // Without that knowledge, the case's existence means a duplicate: it
    // opens nothing.
    let mut fresh = Plan::at(s.now);
    s.planner().request(&mut fresh, req);
    let keys: Vec<&str> = fresh.deliveries.iter().map(|d| d.key.as_str()).collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("/created") || k.ends_with("/debate_opened")),
        "{keys:?}"
    );
}
