//! `society inbox [-f] [--since T] [-n N] [-o FORMAT]`: what agents and the supervisor
//! addressed to the orchestrator (`orchestrator/inbox.jsonl`) — replies,
//! escalations, approval requests — one line per message.

use super::exit::Code;
use super::output::{self, Format, OutputArgs};
use super::table;
use serde_json::Value;
use society_core::Layout;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new messages as they arrive (after the last 10,
    /// unless -n or --since says otherwise).
    #[arg(short, long)]
    follow: bool,
    /// Only messages at or after this time: 10m (ago), today, 14:05,
    /// 2026-11-30 14:05 (local), or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = super::timespec::parse)]
    since: Option<jiff::Timestamp>,
    /// Only the last N messages.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, mut args: Args) -> anyhow::Result<Code> {
    let format = args.output.format();
    if args.follow && args.lines.is_none() && args.since.is_none() {
        args.lines = Some(10);
    }
    let since = args.since;
    let keep =
        move |v: &Value| super::timespec::within(v.get("ts").and_then(Value::as_str), since, None);
    let path = layout.orchestrator_inbox();
    // The archived segments too (only as far back as -n needs).
    let mut history = super::history::History::new(layout, path.clone());
    let mut first = history.start(args.lines, keep)?;
    if let Some(n) = args.lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    if !args.follow && format == Format::Json {
        return output::list(&first, format).map(|()| Code::Ok);
    }
    print(&first, format)?;
    if !args.follow {
        return Ok(Code::Ok);
    }
    super::follow::follow(std::slice::from_ref(&path), || {
        let new: Vec<Value> = history.more()?.into_iter().filter(keep).collect();
        print(&new, format)
    })
}

/// Messages as JSON lines (unchanged) or human lines cut to the width.
fn print(records: &[Value], format: Format) -> anyhow::Result<()> {
    let json = matches!(format, Format::Json | Format::Jsonl);
    let width = output::width(format);
    for v in records {
        if json {
            outln!("{v}");
        } else {
            outln!("{}", output::fit(&human(v), width));
        }
    }
    Ok(())
}

/// `TIME  from  type  case  [id=ID]  summary`: approval requests carry
/// their id, which `society approve` / `reject` take.
fn human(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-");
    let kind = s("type");
    // The id before the free text: a line cut to the terminal keeps it.
    let id = if kind == society_core::kinds::message::APPROVAL_REQUEST {
        format!("id={}  ", s("id"))
    } else {
        String::new()
    };
    format!(
        "{}  {:<14}  {:<18}  {:<10}  {id}{}",
        super::when::stamp_ms(s("ts")),
        s("from"),
        kind,
        s("case"),
        summary(v.get("body").unwrap_or(&Value::Null))
    )
    .trim_end()
    .to_string()
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
