//! `society logs [ID] [-f] [--case C] [--agent A] [--event E] [--since T]
//! [--until T] [-n N] [-o FORMAT]`: activity of every agent, the supervisor
//! and system events, merged by time.

use super::exit::{coded, Code};
use super::history::History;
use super::output::{self, Format, OutputArgs};
use serde_json::Value;
use society_core::{AgentId, CaseId, Layout};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this agent's records (same as --agent; `supervisor` is the
    /// supervisor's own log).
    id: Option<String>,
    /// Only these agents' records (repeatable; with --case: the case's
    /// records that name one as `agent`, `from`, `to` or `by`).
    #[arg(long, value_name = "A")]
    agent: Vec<String>,
    /// Keep printing new records as they are written (after the last 10,
    /// unless -n or --since says otherwise).
    #[arg(short, long)]
    follow: bool,
    /// Only this case's timeline (its case log).
    #[arg(long, value_name = "C")]
    case: Option<String>,
    /// Only records of this event (repeatable): message_handled,
    /// message_failed, agent_started, agent_exited, … (FORMAT.md lists them).
    #[arg(long, value_name = "E")]
    event: Vec<String>,
    /// Only records at or after this time: 10m (ago), today, 14:05,
    /// 2026-11-30 14:05 (local), or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = super::timespec::parse)]
    since: Option<jiff::Timestamp>,
    /// Only records at or before this time (as --since).
    #[arg(long, value_name = "TIME", value_parser = super::timespec::parse)]
    until: Option<jiff::Timestamp>,
    /// Only the last N records (of those the filters keep).
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
}

/// What `-f` shows before following when neither `-n` nor `--since` says:
/// the last lines, as `tail -f` and `journalctl -f` do.
const FOLLOW_LAST: usize = 10;

/// One log, its archived segments included (see `history.rs`).
struct Source {
    history: History,
    only: Option<Only>,
}

/// Keep only records naming one of `agents` in one of `fields`.
struct Only {
    agents: Vec<String>,
    fields: &'static [&'static str],
}

impl Only {
    fn keeps(&self, v: &Value) -> bool {
        self.fields.iter().any(|f| {
            v.get(*f)
                .and_then(Value::as_str)
                .is_some_and(|a| self.agents.iter().any(|x| x == a))
        })
    }
}

/// The filters every record passes through: the source's agent filter,
/// then --event, --since and --until.
struct Filter {
    events: Vec<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
}

impl Filter {
    fn keeps(&self, only: Option<&Only>, v: &Value) -> bool {
        only.is_none_or(|o| o.keeps(v))
            && (self.events.is_empty()
                || v.get("event")
                    .and_then(Value::as_str)
                    .is_some_and(|e| self.events.iter().any(|x| x == e)))
            && super::timespec::within(v.get("ts").and_then(Value::as_str), self.since, self.until)
    }
}

/// The fields of a system event that name the agent it is about.
const EVENT_FIELDS: &[&str] = &["agent"];
/// The fields of a case-log record that name an agent taking part: who wrote
/// it, and who a message, handoff, assignment or decision went from or to.
const CASE_FIELDS: &[&str] = &["agent", "from", "to", "by"];

pub fn run(layout: &Layout, mut args: Args) -> anyhow::Result<Code> {
    let format = args.output.format();
    if args.follow && args.lines.is_none() && args.since.is_none() {
        args.lines = Some(FOLLOW_LAST);
    }
    let filter = Filter {
        events: std::mem::take(&mut args.event),
        since: args.since,
        until: args.until,
    };
    let mut sources = sources(layout, &args)?;
    let mut first = Vec::new();
    for s in sources.iter_mut() {
        let only = s.only.as_ref();
        let records = s.history.start(args.lines, |v| filter.keeps(only, v))?;
        first.extend(records);
    }
    let mut first = by_time(first);
    if let Some(n) = args.lines {
        let skip = first.len().saturating_sub(n);
        first.drain(..skip);
    }
    if !args.follow {
        if format == Format::Json {
            let records: Vec<&Value> = first.iter().map(|(_, v)| v).collect();
            return output::list(&records, format).map(|()| Code::Ok);
        }
        print(&first, format)?;
        return Ok(Code::Ok);
    }
    print(&first, format)?;
    let paths: Vec<std::path::PathBuf> = sources
        .iter()
        .map(|s| s.history.path().to_path_buf())
        .collect();
    // Following every agent follows the agents created meanwhile too (their
    // files are read from the start: everything in them is new).
    let every_agent = args.case.is_none() && args.id.is_none() && args.agent.is_empty();
    super::follow::follow(&paths, || {
        if every_agent {
            for id in layout.agent_ids()? {
                let activity = layout.agent(&id).activity();
                if !sources.iter().any(|s| s.history.path() == activity) {
                    sources.push(Source {
                        history: History::new(layout, activity),
                        only: None,
                    });
                }
            }
        }
        let new = collect(&mut sources, &filter)?;
        print(&new, format)
    })
}

fn sources(layout: &Layout, args: &Args) -> anyhow::Result<Vec<Source>> {
    let agents = args
        .id
        .iter()
        .chain(&args.agent)
        .map(|a| AgentId::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
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
        // Syntax only: a case may name an agent whose folder is gone, or
        // the orchestrator.
        let only = (!agents.is_empty()).then(|| Only {
            agents: agents.iter().map(ToString::to_string).collect(),
            fields: CASE_FIELDS,
        });
        return Ok(vec![src(path, only)]);
    }
    let mut out = Vec::new();
    match agents.is_empty() {
        false => {
            for id in &agents {
                // The supervisor writes a log of its own, like an agent.
                if id.as_str() == "supervisor" {
                    out.push(src(layout.supervisor_activity(), None));
                    continue;
                }
                let paths = layout.agent(id);
                if !paths.config().exists() {
                    return Err(coded(
                        Code::NotFound,
                        format!("no agent {id} in {}", layout.state_dir().display()),
                    ));
                }
                out.push(src(paths.activity(), None));
            }
            out.push(src(
                layout.system_events(),
                Some(Only {
                    agents: agents.iter().map(ToString::to_string).collect(),
                    fields: EVENT_FIELDS,
                }),
            ));
        }
        true => {
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
fn collect(sources: &mut [Source], filter: &Filter) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for s in sources.iter_mut() {
        let only = s.only.as_ref();
        out.extend(
            s.history
                .more()?
                .into_iter()
                .filter(|v| filter.keeps(only, v)),
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

/// Records as JSON lines (unchanged) or human lines, cut to the width
/// (see [`output::width`]).
fn print(records: &[(String, Value)], format: Format) -> anyhow::Result<()> {
    let json = matches!(format, Format::Json | Format::Jsonl);
    let width = output::width(format);
    for (ts, v) in records {
        if json {
            outln!("{v}");
        } else {
            outln!("{}", output::fit(&human(ts, v), width));
        }
    }
    Ok(())
}

/// `TIME  AGENT  EVENT  key=value …`, the time local (see `when`).
fn human(ts: &str, v: &Value) -> String {
    let time = super::when::stamp_ms(ts);
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
        .trim_end()
        .to_string()
}
