//! `society case show` and `society case list`: folds of the case logs, read
//! from the files alone (the supervisor may be down). `show` is a report
//! (`-o json`: `{case, log, events}`), `list` a list (`-o json`: an array of
//! case summaries).

use crate::cli::exit::{coded_hint, Code};
use crate::cli::output::{self, Format, OutputArgs, Table};
use crate::cli::{render, table, when};
use serde::Serialize;
use serde_json::Value;
use society_core::case::{CaseStatus, CaseSummary};
use society_core::{AgentId, CaseId, Layout};
use society_runtime::client::case_control::no_case;
use society_runtime::client::cases as store;
use std::fmt::Write;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Case id.
    id: String,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only cases in this status (or `open`: anything not resolved, closed or cancelled).
    #[arg(long, value_name = "S")]
    status: Option<String>,
    /// Only cases this agent owns or took part in.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

const STATUSES: &str =
    "new, assigned, in_progress, waiting, blocked, escalated, resolved, closed, cancelled, open";

#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    case: CaseSummary,
    archived: bool,
}

pub fn show(layout: &Layout, args: ShowArgs) -> anyhow::Result<Code> {
    let case = CaseId::new(args.id.as_str())?;
    let Some(loaded) = store::load(layout, &case)? else {
        return Err(no_case(layout, &case).into());
    };
    let format = args.output.format();
    if args.output.is_json() {
        let doc = serde_json::json!({
            "case": Row { case: loaded.summary, archived: loaded.archived },
            "log": loaded.path,
            "events": loaded.records,
        });
        output::report(&doc, format)?;
        return Ok(Code::Ok);
    }
    let c = &loaded.summary;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let status = if loaded.archived {
        format!("{} (archived)", c.status.as_str())
    } else {
        c.status.as_str().to_string()
    };
    let at = |ts: &Option<String>, rel: fn(&str) -> String| {
        ts.as_deref()
            .map_or("-".into(), |t| format!("{} ({})", when::stamp(t), rel(t)))
    };
    let agents = if c.agents.is_empty() {
        "-".to_string()
    } else {
        c.agents.join(", ")
    };
    let mut timeline = Table::new(&["TIME", "EVENT", "AGENT", "DETAILS"], format);
    timeline.keep(0, 19).keep(1, 20).keep(2, 20);
    let width = timeline.width();
    let mut out = String::new();
    for (k, v) in [
        ("case", c.id.clone()),
        ("purpose", dash(&c.purpose)),
        ("status", status),
        ("owner", dash(&c.owner)),
        ("priority", dash(&c.priority)),
        (
            "created",
            at(&c.created, |t| format!("{} ago", table::age(t))),
        ),
        ("due", at(&c.due, table::relative)),
        ("agents", agents),
        ("log", loaded.path.display().to_string()),
    ] {
        let _ = writeln!(out, "{}", output::fit(&format!("{k:<9} {v}"), width));
    }
    out.push('\n');
    for rec in &loaded.records {
        timeline.row(event_cells(rec));
    }
    out.push_str(&timeline.render());
    out!("{out}");
    Ok(Code::Ok)
}

/// `TIME  EVENT  AGENT  key=value ...` of one case-log record.
fn event_cells(rec: &Value) -> Vec<String> {
    let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("-");
    let mut rest = Vec::new();
    if let Some(obj) = rec.as_object() {
        for (k, val) in obj {
            if matches!(k.as_str(), "ts" | "event" | "agent" | "case") {
                continue;
            }
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            rest.push(format!("{k}={text}"));
        }
    }
    vec![
        when::stamp(s("ts")),
        s("event").to_string(),
        s("agent").to_string(),
        rest.join(" "),
    ]
}

pub fn list(layout: &Layout, args: ListArgs) -> anyhow::Result<Code> {
    let status = match args.status.as_deref() {
        None | Some("open") => None,
        Some(s) => Some(CaseStatus::parse(s).ok_or_else(|| {
            coded_hint(
                Code::Invalid,
                format!("invalid --status {s:?}"),
                format!("valid statuses: {STATUSES}"),
            )
        })?),
    };
    let only_open = args.status.as_deref() == Some("open");
    let agent = args.agent.as_deref().map(AgentId::new).transpose()?;
    let mut rows = Vec::new();
    for id in store::all_ids(layout)? {
        // One unreadable case (e.g. a damaged pointer) must not hide the others.
        let loaded = match store::load(layout, &id) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                render::warn(&[format!("skipping case {id}: {e}")]);
                continue;
            }
        };
        let c = loaded.summary;
        if status.is_some_and(|s| s != c.status) || (only_open && !c.status.is_open()) {
            continue;
        }
        if let Some(a) = &agent {
            if c.owner.as_deref() != Some(a.as_str()) && !c.agents.iter().any(|x| x == a.as_str()) {
                continue;
            }
        }
        rows.push(Row {
            case: c,
            archived: loaded.archived,
        });
    }
    // Oldest first; logs without a `created` record sort by their first event.
    rows.sort_by(|a, b| {
        let key = |r: &Row| r.case.created.clone().or_else(|| r.case.last_ts.clone());
        key(a).cmp(&key(b)).then_with(|| a.case.id.cmp(&b.case.id))
    });
    let format = args.output.format();
    if args.output.is_json() {
        output::list(&rows, format)?;
    } else if rows.is_empty() {
        outln!("no cases");
    } else {
        out!("{}", render(&rows, format));
    }
    Ok(Code::Ok)
}

/// Columns PRIORITY and EVENTS show only with `-o wide`.
fn render(rows: &[Row], format: Format) -> String {
    let mut t = Table::new(
        &[
            "ID", "STATUS", "OWNER", "PRIORITY", "DUE", "AGE", "EVENTS", "PURPOSE",
        ],
        format,
    );
    // The id is what `case show` takes: never cut.
    t.keep(0, 32).keep(1, 11).wide_only(&[3, 6]);
    for r in rows {
        let c = &r.case;
        let due = match &c.due {
            Some(d) if c.status.is_open() => table::relative(d),
            _ => "-".into(),
        };
        let overdue = due.ends_with(" ago");
        let age = c
            .created
            .as_deref()
            .or(c.last_ts.as_deref())
            .map_or("-".into(), table::age);
        t.row_colours(
            vec![
                c.id.clone(),
                c.status.as_str().to_string(),
                c.owner.clone().unwrap_or_else(|| "-".into()),
                c.priority.clone().unwrap_or_else(|| "-".into()),
                due,
                age,
                c.events.to_string(),
                c.purpose.clone().unwrap_or_else(|| "-".into()),
            ],
            &[
                (1, Some(status_colour(c.status))),
                (4, overdue.then_some("31")),
            ],
        );
    }
    t.render()
}

fn status_colour(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Escalated | CaseStatus::Blocked => "31",
        CaseStatus::Waiting | CaseStatus::AwaitingGate => "33",
        CaseStatus::InProgress => "32",
        CaseStatus::New | CaseStatus::Assigned => "36",
        CaseStatus::Resolved | CaseStatus::Closed | CaseStatus::Cancelled => "2",
    }
}
