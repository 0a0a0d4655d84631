//! `society logs [ID] [-f] [--case C] [--json] [-n N]`: activity of every agent,
//! the supervisor and system events, merged by time.

use super::exit::{coded, Code};
use super::history::History;
use serde_json::Value;
use society_core::{AgentId, CaseId, Layout};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this agent's records (with --case: the case's records that
    /// name it as `agent`, `from`, `to` or `by`).
    id: Option<String>,
    /// Keep printing new records as they are written.
    #[arg(short, long)]
    follow: bool,
    /// Only this case's timeline (its case log).
    #[arg(long, value_name = "C")]
    case: Option<String>,
    /// Print records as JSON lines, unchanged.
    #[arg(long)]
    json: bool,
    /// Only the last N records.
    #[arg(short = 'n', value_name = "N")]
    lines: Option<usize>,
}

/// One log, its archived segments included (see `history.rs`).
struct Source {
    history: History,
    only: Option<Only>,
}

/// Keep only records naming `agent` in one of `fields`.
struct Only {
    agent: String,
    fields: &'static [&'static str],
}

impl Only {
    fn keeps(&self, v: &Value) -> bool {
        self.fields
            .iter()
            .any(|f| v.get(*f).and_then(Value::as_str) == Some(self.agent.as_str()))
    }
}

/// The fields of a system event that name the agent it is about.
const EVENT_FIELDS: &[&str] = &["agent"];
/// The fields of a case-log record that name an agent taking part: who wrote
/// it, and who a message, handoff, assignment or decision went from or to.
const CASE_FIELDS: &[&str] = &["agent", "from", "to", "by"];

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let mut sources = sources(layout, &args)?;
    let mut first = Vec::new();
    for s in sources.iter_mut() {
        let only = &s.only;
        let records = s
            .history
            .start(args.lines, |v| only.as_ref().is_none_or(|o| o.keeps(v)))?;
        first.extend(records);
    }
    let mut first = by_time(first);
    if let Some(n) = args.lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    print(&first, args.json);
    if !args.follow {
        return Ok(Code::Ok);
    }
    let paths: Vec<std::path::PathBuf> = sources
        .iter()
        .map(|s| s.history.path().to_path_buf())
        .collect();
    super::follow::follow(&paths, || {
        print(&collect(&mut sources)?, args.json);
        Ok(())
    })
}

fn sources(layout: &Layout, args: &Args) -> anyhow::Result<Vec<Source>> {
    let src = |path: PathBuf, only: Option<Only>| Source {
        history: History::new(layout, path),
        only,
    };
    if let Some(case) = &args.case {
        let case = CaseId::new(case.as_str())?;
        let path = layout.case_log(&case);
        if !path.exists() {
            return Err(coded(
                Code::NotFound,
                format!("no case {case} ({} does not exist)", path.display()),
            ));
        }
        let only = match &args.id {
            // Syntax only: a case may name an agent whose folder is gone, or
            // the orchestrator.
            Some(id) => Some(Only {
                agent: AgentId::new(id.as_str())?.to_string(),
                fields: CASE_FIELDS,
            }),
            None => None,
        };
        return Ok(vec![src(path, only)]);
    }
    let mut out = Vec::new();
    match &args.id {
        Some(id) => {
            let id = AgentId::new(id.as_str())?;
            let paths = layout.agent(&id);
            if !paths.config().exists() {
                return Err(coded(
                    Code::NotFound,
                    format!("no agent {id} in {}", layout.state_dir().display()),
                ));
            }
            out.push(src(paths.activity(), None));
            out.push(src(
                layout.system_events(),
                Some(Only {
                    agent: id.to_string(),
                    fields: EVENT_FIELDS,
                }),
            ));
        }
        None => {
            for id in layout.agent_ids()? {
                out.push(src(layout.agent(&id).activity(), None));
            }
            out.push(src(layout.supervisor_activity(), None));
            out.push(src(layout.system_events(), None));
        }
    }
    Ok(out)
}

/// New complete records from every source, merged by `ts`.
fn collect(sources: &mut [Source]) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for s in sources.iter_mut() {
        let only = &s.only;
        out.extend(
            s.history
                .more()?
                .into_iter()
                .filter(|v| only.as_ref().is_none_or(|o| o.keeps(v))),
        );
    }
    Ok(by_time(out))
}

/// Records with their `ts`, oldest first.
fn by_time(records: Vec<Value>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = records
        .into_iter()
        .map(|v| {
            let ts = v
                .get("ts")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (ts, v)
        })
        .collect();
    // Stable: records of one file with the same millisecond keep their order.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn print(records: &[(String, Value)], json: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for (ts, v) in records {
        let line = if json { v.to_string() } else { human(ts, v) };
        if writeln!(stdout, "{line}").is_err() {
            std::process::exit(Code::Ok.code()); // reader went away (e.g. `| head`)
        }
    }
}

fn human(ts: &str, v: &Value) -> String {
    let time = ts.get(11..23).unwrap_or(ts);
    let agent = v.get("agent").and_then(Value::as_str).unwrap_or("-");
    let event = v.get("event").and_then(Value::as_str).unwrap_or("-");
    let mut rest = String::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if matches!(k.as_str(), "ts" | "event" | "agent") {
                continue;
            }
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            rest.push_str(&format!(" {k}={text}"));
        }
    }
    format!("{time} {agent:<16} {event:<20}{rest}")
}
