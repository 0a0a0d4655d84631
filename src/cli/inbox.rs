//! `society inbox [-f] [--json] [-n N]`: what agents and the supervisor
//! addressed to the orchestrator (`orchestrator/inbox.jsonl`) — replies,
//! escalations, approval requests — one line per message.

use super::exit::Code;
use super::table;
use serde_json::Value;
use society_core::Layout;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new messages as they arrive.
    #[arg(short, long)]
    follow: bool,
    /// Print messages as JSON lines, unchanged.
    #[arg(long)]
    json: bool,
    /// Only the last N messages.
    #[arg(short = 'n', value_name = "N")]
    lines: Option<usize>,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let path = layout.orchestrator_inbox();
    // The archived segments too (only as far back as -n needs).
    let mut history = super::history::History::new(layout, path.clone());
    let mut first = history.start(args.lines, |_| true)?;
    if let Some(n) = args.lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    print(&first, args.json);
    if !args.follow {
        return Ok(Code::Ok);
    }
    super::follow::follow(std::slice::from_ref(&path), || {
        print(&history.more()?, args.json);
        Ok(())
    })
}

fn print(records: &[Value], json: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for v in records {
        let line = if json { v.to_string() } else { human(v) };
        if writeln!(stdout, "{line}").is_err() {
            std::process::exit(Code::Ok.code()); // reader went away (e.g. `| head`)
        }
    }
}

/// `HH:MM:SS.mmm  from  type  case  summary`; approval requests end with
/// their id, which `society approve` / `reject` take.
fn human(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-");
    let kind = s("type");
    let mut line = format!(
        "{}  {:<14}  {:<18}  {:<10}  {}",
        table::clock(s("ts")),
        s("from"),
        kind,
        s("case"),
        summary(v.get("body").unwrap_or(&Value::Null))
    );
    if kind == society_core::kinds::message::APPROVAL_REQUEST {
        line.push_str(&format!("  id={}", s("id")));
    }
    line
}

/// body.text, body.plan or body.reason; else the compact body, cut to 80 characters.
fn summary(body: &Value) -> String {
    let text = ["text", "plan", "reason"]
        .iter()
        .find_map(|k| body.get(k).and_then(Value::as_str))
        .map_or_else(|| body.to_string(), str::to_string);
    table::truncate(&text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summarises_bodies() {
        assert_eq!(summary(&json!({"text": "hi", "plan": "p"})), "hi");
        assert_eq!(summary(&json!({"plan": "p"})), "p");
        assert_eq!(summary(&json!({"n": 1})), r#"{"n":1}"#);
        assert_eq!(
            summary(&json!({"text": "x".repeat(100)})).chars().count(),
            80
        );
    }
}
