//! `agent-<id>/costs.jsonl`: what an agent spent, and the budget decisions
//! about it. Append-only and fsynced; every line has `ts`, `event`, `agent`,
//! `gen`:
//!
//! * `usage` — one per model answer: `provider, model, input_tokens,
//!   output_tokens, usd, priced, case, id` (the message being handled), `step`.
//!   Written *before* the answer enters the conversation, so a crash can
//!   only count a call the provider billed, never miss one.
//! * `budget_requested` — the agent asked to extend `scope` (`request` is the
//!   approval request's id), `budget_extended` / `budget_rejected` — the
//!   orchestrator's answer, with the amounts (`tokens`, `usd`) and `by`.
//!
//! Reading sums these lines into a [`Tally`] per agent; the society-wide
//! tally adds up every `agent-*/costs.jsonl` (reading other folders is fine;
//! an agent writes only its own).

use super::budget::Scope;
use super::error::LlmError;
use serde_json::{json, Map, Value};
use society_core::jsonl::{append_one, read_objects, Durability};
use society_core::kinds::ledger as kind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The ledger of an agent folder (`AgentPaths::costs`).
fn file(folder: &Path) -> PathBuf {
    society_core::AgentPaths::new(folder.to_path_buf()).costs()
}

/// Spend and extensions found in one or more ledgers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub tokens_today: u64,
    pub tokens_total: u64,
    pub usd_today: f64,
    pub usd_total: f64,
    /// Extensions granted per scope (today's only, for daily scopes).
    pub extended: HashMap<Scope, (u64, f64)>,
}

impl Tally {
    fn add(&mut self, rec: &Value, today: &str) {
        let is_today = rec["ts"].as_str().is_some_and(|ts| ts.starts_with(today));
        match rec["event"].as_str() {
            Some(kind::USAGE) => {
                let tokens = rec["input_tokens"].as_u64().unwrap_or(0)
                    + rec["output_tokens"].as_u64().unwrap_or(0);
                let usd = rec["usd"].as_f64().unwrap_or(0.0);
                self.tokens_total += tokens;
                self.usd_total += usd;
                if is_today {
                    self.tokens_today += tokens;
                    self.usd_today += usd;
                }
            }
            Some(kind::BUDGET_EXTENDED) => {
                let Some(scope) = rec["scope"].as_str().and_then(Scope::parse) else {
                    return;
                };
                if scope.daily() && !is_today {
                    return;
                }
                let e = self.extended.entry(scope).or_default();
                e.0 += rec["tokens"].as_u64().unwrap_or(0);
                e.1 += rec["usd"].as_f64().unwrap_or(0.0);
            }
            _ => {}
        }
    }
}

/// Today's UTC date as `YYYY-MM-DD` (the prefix of every `ts` of today).
pub fn today() -> String {
    society_core::time::now_rfc3339()[..10].to_string()
}

/// Every valid line of a ledger (a missing file is empty).
pub fn records(path: &Path) -> Result<Vec<Value>, LlmError> {
    read_objects(path, &mut 0).map_err(|source| LlmError::Ledger {
        path: path.to_path_buf(),
        source,
    })
}

/// The tally of one agent's ledger.
pub fn tally(folder: &Path) -> Result<Tally, LlmError> {
    let today = today();
    let mut t = Tally::default();
    for rec in records(&file(folder))? {
        t.add(&rec, &today);
    }
    Ok(t)
}

/// The tally of every agent of the society that `folder` belongs to
/// (`.society-agent/agent-*/costs.jsonl`).
pub fn society_tally(folder: &Path) -> Result<Tally, LlmError> {
    let state = folder.parent().unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(state).map_err(|e| LlmError::Ledger {
        path: state.to_path_buf(),
        source: society_core::IoError::new("list", state, e),
    })?;
    let today = today();
    let mut t = Tally::default();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(society_core::layout::names::AGENT_DIR_PREFIX)
        {
            continue;
        }
        for rec in records(&file(&entry.path()))? {
            t.add(&rec, &today);
        }
    }
    Ok(t)
}

/// An agent's own ledger, for writing.
pub struct Ledger {
    path: PathBuf,
    agent: String,
    gen: u64,
}

impl Ledger {
    pub fn new(folder: &Path, agent: &str, gen: u64) -> Ledger {
        Ledger {
            path: file(folder),
            agent: agent.to_string(),
            gen,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, event: &str, fields: Value) -> Result<(), LlmError> {
        let mut obj = Map::new();
        obj.insert("ts".into(), json!(society_core::time::now_rfc3339()));
        obj.insert("event".into(), json!(event));
        obj.insert("agent".into(), json!(self.agent));
        obj.insert("gen".into(), json!(self.gen));
        if let Value::Object(f) = fields {
            obj.extend(f);
        }
        let bytes = serde_json::to_vec(&Value::Object(obj)).expect("a JSON map always serialises");
        append_one(
            &self.path,
            &bytes,
            Durability::Durable,
            society_core::DEFAULT_MAX_RECORD,
        )
        .map(drop)
        .map_err(|source| LlmError::Record {
            path: self.path.clone(),
            source,
        })
    }

    /// The first record of `event` about approval request `request`.
    pub fn find(&self, event: &str, request: &str) -> Result<Option<Value>, LlmError> {
        Ok(records(&self.path)?
            .into_iter()
            .find(|r| r["event"] == event && r["request"] == request))
    }

    /// Appends `event` about `request` unless it is already there (a
    /// repeated handling after a crash writes it once).
    pub fn once(&self, event: &str, request: &str, fields: Value) -> Result<(), LlmError> {
        if self.find(event, request)?.is_none() {
            let mut fields = fields;
            fields["request"] = json!(request);
            self.append(event, fields)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_own_and_society_ledgers_by_day_and_scope() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("agent-a"), dir.path().join("agent-b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        std::fs::create_dir_all(&b).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("supervisor")).expect("mkdir");
        let la = Ledger::new(&a, "a", 1);
        la.append(
            "usage",
            json!({"input_tokens": 10, "output_tokens": 5, "usd": 0.5}),
        )
        .expect("append");
        la.once(
            "budget_extended",
            "r1",
            json!({"scope": "agent.tokens_per_day", "tokens": 100, "usd": 0}),
        )
        .expect("append");
        la.once(
            "budget_extended",
            "r1",
            json!({"scope": "agent.tokens_per_day", "tokens": 100, "usd": 0}),
        )
        .expect("a repeat is written once");
        // Yesterday's spend counts in the total only; yesterday's daily extension not at all.
        let old = json!({"ts": "2000-01-01T00:00:00.000Z", "event": "usage", "agent": "b", "gen": 1,
            "input_tokens": 1000, "output_tokens": 0, "usd": 1.0});
        let old_ext = json!({"ts": "2000-01-01T00:00:00.000Z", "event": "budget_extended", "agent": "b",
            "gen": 1, "scope": "society.tokens_per_day", "tokens": 7, "request": "r0"});
        std::fs::write(file(&b), format!("{old}\n{old_ext}\n")).expect("write");
        Ledger::new(&b, "b", 1)
            .append(
                "budget_extended",
                json!({"scope": "society.usd_total", "tokens": 0, "usd": 2.0, "request": "r2"}),
            )
            .expect("append");

        let mine = tally(&a).expect("tally");
        assert_eq!((mine.tokens_today, mine.tokens_total), (15, 15));
        let daily = Scope::parse("agent.tokens_per_day").expect("scope");
        assert_eq!(mine.extended.get(&daily), Some(&(100, 0.0)));
        let all = society_tally(&a).expect("society tally");
        assert_eq!((all.tokens_today, all.tokens_total), (15, 1015));
        assert!((all.usd_total - 1.5).abs() < 1e-9 && (all.usd_today - 0.5).abs() < 1e-9);
        let soc_usd = Scope::parse("society.usd_total").expect("scope");
        assert_eq!(all.extended.get(&soc_usd), Some(&(0, 2.0)));
        assert_eq!(
            all.extended
                .get(&Scope::parse("society.tokens_per_day").expect("scope")),
            None
        );
    }
}
