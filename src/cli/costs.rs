//! `society costs [--by agent|model|case] [-o FORMAT]`: what the society's
//! `llm` agents spent (`society_runtime::client::costs` folds every
//! `agent-*/costs.jsonl`), with today's (UTC: the day budgets count) share.
//! Works with the supervisor down. A report: `-o json` is one object.

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use society_core::Layout;
use society_runtime::client::costs::{self, Row};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Group the spend by agent, model or case.
    #[arg(long, value_enum, default_value_t = By::Agent)]
    by: By,
    #[command(flatten)]
    output: OutputArgs,
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
    let format = args.output.format();
    if args.output.is_json() {
        output::report(&report, format)?;
        return Ok(Code::Ok);
    }
    if report.rows.is_empty() && report.total.unknown_cost_calls == 0 {
        outln!("no model usage recorded yet (agent-*/costs.jsonl)");
        return Ok(Code::Ok);
    }
    let header = match args.by {
        By::Agent => "AGENT",
        By::Model => "MODEL",
        By::Case => "CASE",
    };
    let cells = |r: &Row| {
        vec![
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
    let mut table = Table::new(
        &[header, "CALLS", "INPUT", "OUTPUT", "USD", "TODAY"],
        format,
    );
    table.keep(0, 32);
    for r in report.rows.iter().chain([&report.total]) {
        table.row(cells(r));
    }
    out!("{}", table.render());
    if report.total.unpriced_calls > 0 {
        let note = "* calls to models without [prices.\"MODEL\"] in society.toml count as $0";
        outln!("{}", output::fit(note, table.width()));
    }
    if report.total.unknown_cost_calls > 0 {
        let note = format!(
            "{} call(s) sent but never answered (timed out or cut off) are not counted; \
             a hosted provider may bill them (unknown_cost in costs.jsonl)",
            report.total.unknown_cost_calls
        );
        outln!("{}", output::fit(&note, table.width()));
    }
    Ok(Code::Ok)
}
