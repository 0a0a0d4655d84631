//! `society costs [--by agent|model|case] [--json]`: what the society's
//! `llm` agents spent, summed from every `agent-*/costs.jsonl` (the `usage`
//! records), with today's (UTC) share. Works with the supervisor down.

use super::exit::Code;
use super::table;
use serde::Serialize;
use serde_json::Value;
use society_core::{jsonl, Layout};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Group the spend by agent, model or case.
    #[arg(long, value_enum, default_value_t = By::Agent)]
    by: By,
    /// Machine-readable output (one JSON document).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum By {
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
}

#[derive(Debug, Serialize)]
struct Report {
    by: By,
    rows: Vec<Row>,
    total: Row,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let today = society_core::time::now_rfc3339()[..10].to_string();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut total = Row {
        key: "total".into(),
        ..Row::default()
    };
    for id in layout.agent_ids()? {
        for rec in usage(&layout.agent(&id).dir)? {
            let key = match args.by {
                By::Agent => id.to_string(),
                By::Model => rec["model"].as_str().unwrap_or("-").to_string(),
                By::Case => rec["case"].as_str().unwrap_or("-").to_string(),
            };
            rows.entry(key.clone())
                .or_insert_with(|| Row {
                    key,
                    ..Row::default()
                })
                .add(&rec, &today);
            total.add(&rec, &today);
        }
    }
    let report = Report {
        by: args.by,
        rows: rows.into_values().collect(),
        total,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Code::Ok);
    }
    if report.rows.is_empty() {
        println!("no model usage recorded yet (agent-*/costs.jsonl)");
        return Ok(Code::Ok);
    }
    let header = match args.by {
        By::Agent => "AGENT",
        By::Model => "MODEL",
        By::Case => "CASE",
    };
    let cells = |r: &Row| {
        [
            r.key.clone(),
            r.calls.to_string(),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            format!(
                "{:.4}{}",
                r.usd,
                if r.unpriced_calls > 0 { "*" } else { "" }
            ),
            format!("{:.4}", r.usd_today),
        ]
    };
    let mut lines: Vec<[String; 6]> = report.rows.iter().map(cells).collect();
    lines.push(cells(&report.total));
    print!(
        "{}",
        table::render(
            [header, "CALLS", "INPUT", "OUTPUT", "USD", "TODAY"],
            &lines,
            |_, _| None
        )
    );
    if report.total.unpriced_calls > 0 {
        println!("* includes calls to models without a [prices.\"MODEL\"] entry in society.toml, counted as $0");
    }
    Ok(Code::Ok)
}

/// USD an agent has spent in total (its `usage` records).
pub fn spend_usd(folder: &Path) -> f64 {
    usage(folder)
        .unwrap_or_default()
        .iter()
        .map(|r| r["usd"].as_f64().unwrap_or(0.0))
        .sum()
}

/// The `usage` records of one agent folder.
fn usage(folder: &Path) -> anyhow::Result<Vec<Value>> {
    let records = jsonl::read_objects(&folder.join("costs.jsonl"), &mut 0)?;
    Ok(records
        .into_iter()
        .filter(|r| r["event"] == "usage")
        .collect())
}
