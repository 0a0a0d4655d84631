//! A debate as its case log says it stands. The log is the only record: a
//! debate is rebuilt by folding it (at start, and record by record as the
//! supervisor's batches land), so the state can never disagree with it and
//! survives a SIGKILL of anything.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use society_core::governance::debate::Position;
use society_core::jsonl::read_objects;
use society_core::kinds::case_log;
use society_core::layout::case_of_log_name;
use society_core::{AgentId, CaseId, Layout, MsgId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The fields of a `debate_opened` record: what the request fixed, resolved.
/// Written and read through this one type, so the names cannot drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::supervisor) struct Opened {
    pub decision: String,
    pub proposer: AgentId,
    pub decision_type: String,
    pub plan: Value,
    /// Resolved agent ids, the proposer first.
    pub participants: Vec<AgentId>,
    pub time_limit_ms: u64,
    pub threshold: f64,
    pub min_interval_ms: u64,
    /// Ms since the epoch.
    pub opened_at: u64,
    /// `opened_at + time_limit_ms`: the hard deadline.
    pub deadline: u64,
    /// The `debate_request` message: every message the debate sends has an
    /// id derived from it.
    pub request: MsgId,
    /// The case the proposer asked from: its results go back in it.
    #[serde(default)]
    pub proposer_case: Option<CaseId>,
    /// Requested participants that named no known agent.
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub rationale: Value,
    #[serde(default)]
    pub alternatives: Value,
    pub revision: u64,
    #[serde(default)]
    pub proposal: Value,
    #[serde(default)]
    pub parked: Value,
    #[serde(default)]
    pub then: Value,
}

/// One open debate.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::supervisor) struct Debate {
    pub case: CaseId,
    pub opened: Opened,
    /// Every participant's latest position.
    pub perspectives: BTreeMap<AgentId, Position>,
    /// Replies already recorded (a repeated reply is dropped).
    pub replies: HashSet<MsgId>,
    /// Round requests sent: id → (participant, round, iteration).
    pub asks: HashMap<MsgId, (AgentId, u32, u32)>,
    /// The current round and iteration (round 1 is iteration 0).
    pub round: u32,
    pub iteration: u32,
    /// The current iteration's round requests went out ...
    pub sent: bool,
    /// ... at this time (ms since the epoch).
    pub started: u64,
    /// Who was asked in the current iteration, and who answered in it.
    pub asked: BTreeSet<AgentId>,
    pub answered: BTreeSet<AgentId>,
    /// `consensus` or `debate_expired` is recorded.
    pub ended: bool,
}

impl Debate {
    fn open(case: CaseId, opened: Opened) -> Debate {
        Debate {
            case,
            started: opened.opened_at,
            opened,
            perspectives: BTreeMap::new(),
            replies: HashSet::new(),
            asks: HashMap::new(),
            round: 1,
            iteration: 0,
            sent: false,
            asked: BTreeSet::new(),
            answered: BTreeSet::new(),
            ended: false,
        }
    }

    /// Applies one record of the debate's case log (others are ignored).
    pub fn apply(&mut self, rec: &Value) {
        let num = |k: &str| rec.get(k).and_then(Value::as_u64);
        let agent = |k: &str| {
            rec.get(k)
                .and_then(Value::as_str)
                .and_then(|a| AgentId::new(a).ok())
        };
        let id = rec
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<MsgId>().ok());
        let at = (
            num("round").unwrap_or(1) as u32,
            num("iteration").unwrap_or(0) as u32,
        );
        match rec.get("event").and_then(Value::as_str).unwrap_or("") {
            case_log::PERSPECTIVE => {
                let (Some(who), Some(position)) = (
                    agent("agent"),
                    rec.get("position").and_then(Value::as_object),
                ) else {
                    return;
                };
                if let Some(id) = id {
                    self.replies.insert(id);
                }
                if at == (self.round, self.iteration) {
                    self.answered.insert(who.clone());
                }
                self.perspectives.insert(who, position.clone());
            }
            case_log::ROUND_REQUEST => {
                let Some(to) = agent("to") else { return };
                if at != (self.round, self.iteration) {
                    (self.round, self.iteration) = at;
                    self.asked.clear();
                    self.answered.clear();
                    self.sent = false;
                }
                if !self.sent {
                    self.sent = true;
                    self.started = self.opened.opened_at + num("t_ms").unwrap_or(0);
                }
                if let Some(id) = id {
                    self.asks.insert(id, (to.clone(), at.0, at.1));
                }
                self.asked.insert(to);
            }
            case_log::CONSENSUS | case_log::DEBATE_EXPIRED => self.ended = true,
            _ => {}
        }
    }

    /// Every perspective, in participant order (the proposer first): what
    /// consensus is judged on.
    pub fn positions(&self) -> Vec<(String, Position)> {
        self.opened
            .participants
            .iter()
            .filter_map(|a| Some((a.to_string(), self.perspectives.get(a)?.clone())))
            .collect()
    }
}

/// The open debates, by case.
#[derive(Debug, Default, PartialEq)]
pub(in crate::supervisor) struct Debates {
    map: BTreeMap<CaseId, Debate>,
}

impl Debates {
    /// Folds the case logs of debates (`case-debate-*.jsonl`); the ended
    /// ones are dropped.
    pub fn load(layout: &Layout) -> Debates {
        let mut debates = Debates::default();
        let Ok(entries) = std::fs::read_dir(layout.cases_dir()) else {
            return debates;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(case) = name.to_str().and_then(case_of_log_name) else {
                continue;
            };
            if !case.as_str().starts_with(super::CASE_PREFIX) {
                continue;
            }
            for rec in read_objects(&entry.path(), &mut 0).unwrap_or_default() {
                debates.apply(&case, &rec);
            }
        }
        debates
    }

    /// Applies a record just written to `case`'s log.
    pub fn apply(&mut self, case: &CaseId, rec: &Value) {
        let event = rec.get("event").and_then(Value::as_str);
        if event == Some(case_log::DEBATE_OPENED) {
            // A batch replayed after a crash applies its records again.
            if self.map.contains_key(case) {
                return;
            }
            match serde_json::from_value::<Opened>(rec.clone()) {
                Ok(opened) => {
                    self.map
                        .insert(case.clone(), Debate::open(case.clone(), opened));
                }
                Err(e) => {
                    tracing::error!(case = %case, error = %e, "a debate_opened record cannot be read; the debate is not moderated");
                }
            }
            return;
        }
        let Some(d) = self.map.get_mut(case) else {
            return;
        };
        d.apply(rec);
        if d.ended {
            self.map.remove(case);
        }
    }

    pub fn get(&self, case: &CaseId) -> Option<&Debate> {
        self.map.get(case)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Debate> {
        self.map.values()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The debate a round request belongs to, with the participant it asked,
    /// its round and iteration.
    pub fn by_request(&self, id: &MsgId) -> Option<(&Debate, &(AgentId, u32, u32))> {
        self.map
            .values()
            .find_map(|d| d.asks.get(id).map(|a| (d, a)))
    }
}
