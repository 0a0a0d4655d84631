//! What the society's `llm` agents spent, folded from every agent's
//! `costs.jsonl` (its `usage` records), with today's share: the UTC day,
//! the one an agent's `usd_per_day` budget counts. Reads files only, so it
//! works with the supervisor down.

use super::ClientError;
use serde::Serialize;
use serde_json::Value;
use society_core::{jsonl, AgentPaths, Layout};
use std::collections::BTreeMap;
use std::path::Path;

/// How spend is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Agent,
    Model,
    Case,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub key: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub usd: f64,
    pub usd_today: f64,
    /// Calls to a model without a `[prices]` entry (counted as $0).
    pub unpriced_calls: u64,
    /// Calls sent but never answered (timed out, cut off): `unknown_cost`
    /// records, which a hosted provider may still bill. Not in `calls`.
    pub unknown_cost_calls: u64,
}

impl Row {
    fn add(&mut self, rec: &Value, today: &str) {
        let usd = rec["usd"].as_f64().unwrap_or(0.0);
        self.calls += 1;
        self.input_tokens += rec["input_tokens"].as_u64().unwrap_or(0);
        self.output_tokens += rec["output_tokens"].as_u64().unwrap_or(0);
        self.usd += usd;
        if rec["ts"].as_str().is_some_and(|t| t.starts_with(today)) {
            self.usd_today += usd;
        }
        if rec["priced"] == false {
            self.unpriced_calls += 1;
        }
    }

    /// Counts a `usage` or an `unknown_cost` record.
    fn count(&mut self, rec: &Value, today: &str) {
        if rec["event"] == society_core::kinds::ledger::UNKNOWN_COST {
            self.unknown_cost_calls += 1;
        } else {
            self.add(rec, today);
        }
    }
}

/// `society costs -o json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub by: By,
    /// The UTC date `usd_today` counts (`YYYY-MM-DD`).
    pub today: String,
    pub rows: Vec<Row>,
    pub total: Row,
}

/// Sums every agent's usage, grouped `by`.
pub fn fold(layout: &Layout, by: By) -> Result<Report, ClientError> {
    let today = society_core::time::now_rfc3339()[..10].to_string();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut total = Row {
        key: "total".into(),
        ..Row::default()
    };
    for id in layout.agent_ids()? {
        for rec in counted(&layout.agent(&id).dir)? {
            let key = match by {
                By::Agent => id.to_string(),
                By::Model => rec["model"].as_str().unwrap_or("-").to_string(),
                By::Case => rec["case"].as_str().unwrap_or("-").to_string(),
            };
            rows.entry(key.clone())
                .or_insert_with(|| Row {
                    key,
                    ..Row::default()
                })
                .count(&rec, &today);
            total.count(&rec, &today);
        }
    }
    Ok(Report {
        by,
        today,
        rows: rows.into_values().collect(),
        total,
    })
}

/// One agent's usage, summed (`key` is its id).
pub fn of_agent(layout: &Layout, id: &society_core::AgentId) -> Result<Row, ClientError> {
    let today = society_core::time::now_rfc3339()[..10].to_string();
    let mut row = Row {
        key: id.to_string(),
        ..Row::default()
    };
    for rec in counted(&layout.agent(id).dir)? {
        row.count(&rec, &today);
    }
    Ok(row)
}

/// USD an agent has spent in total (its `usage` records).
pub fn spend_usd(folder: &Path) -> f64 {
    // A fold from +0.0: `sum()` of no floats is -0.0, which JSON prints.
    usage(folder)
        .unwrap_or_default()
        .iter()
        .map(|r| r["usd"].as_f64().unwrap_or(0.0))
        .fold(0.0, |total, usd| total + usd)
}

/// The `usage` and `unknown_cost` records of one agent folder.
fn counted(folder: &Path) -> Result<Vec<Value>, ClientError> {
    let path = AgentPaths::new(folder.to_path_buf()).costs();
    let records = jsonl::read_objects(&path, &mut 0)?;
    Ok(records
        .into_iter()
        .filter(|r| {
            r["event"] == society_core::kinds::ledger::USAGE
                || r["event"] == society_core::kinds::ledger::UNKNOWN_COST
        })
        .collect())
}

/// The `usage` records of one agent folder.
fn usage(folder: &Path) -> Result<Vec<Value>, ClientError> {
    let path = AgentPaths::new(folder.to_path_buf()).costs();
    let records = jsonl::read_objects(&path, &mut 0)?;
    Ok(records
        .into_iter()
        .filter(|r| r["event"] == society_core::kinds::ledger::USAGE)
        .collect())
}
