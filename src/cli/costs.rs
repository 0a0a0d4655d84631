//! `society costs [--by agent|model|case] [--json]`: what the society's
//! `llm` agents spent (`society_runtime::client::costs` folds every
//! `agent-*/costs.jsonl`), with today's (UTC) share. Works with the
//! supervisor down.

use super::exit::Code;
use super::table;
use society_core::Layout;
use society_runtime::client::costs::{self, Row};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Group the spend by agent, model or case.
    #[arg(long, value_enum, default_value_t = By::Agent)]
    by: By,
    /// Machine-readable output (one JSON document).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    Agent,
    Model,
    Case,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let by = match args.by {
        By::Agent => costs::By::Agent,
        By::Model => costs::By::Model,
        By::Case => costs::By::Case,
    };
    let report = costs::fold(layout, by)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Code::Ok);
    }
    if report.rows.is_empty() {
        outln!("no model usage recorded yet (agent-*/costs.jsonl)");
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
    out!(
        "{}",
        table::render(
            [header, "CALLS", "INPUT", "OUTPUT", "USD", "TODAY"],
            &lines,
            |_, _| None
        )
    );
    if report.total.unpriced_calls > 0 {
        outln!("* includes calls to models without a [prices.\"MODEL\"] entry in society.toml, counted as $0");
    }
    Ok(Code::Ok)
}
