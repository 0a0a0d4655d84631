//! `society case show` and `society case list`: folds of the case logs, read
//! from the files alone (the supervisor may be down).

use crate::cli::exit::{coded_hint, Code};
use crate::cli::table;
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
    /// Print {"case": SUMMARY, "events": [RECORDS]}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only cases in this status (or `open`: anything not resolved, closed or cancelled).
    #[arg(long, value_name = "S")]
    status: Option<String>,
    /// Only cases this agent owns or took part in.
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Print a JSON array of case summaries.
    #[arg(long)]
    json: bool,
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
    if args.json {
        let doc = serde_json::json!({
            "case": Row { case: loaded.summary, archived: loaded.archived },
            "log": loaded.path,
            "events": loaded.records,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Code::Ok);
    }
    let c = &loaded.summary;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let status = if loaded.archived {
        format!("{} (archived)", c.status.as_str())
    } else {
        c.status.as_str().to_string()
    };
    let due = c
        .due
        .as_ref()
        .map_or("-".into(), |d| format!("{d} ({})", table::relative(d)));
    let agents = if c.agents.is_empty() {
        "-".to_string()
    } else {
        c.agents.join(", ")
    };
    for (k, v) in [
        ("case", c.id.clone()),
        ("purpose", dash(&c.purpose)),
        ("status", status),
        ("owner", dash(&c.owner)),
        ("priority", dash(&c.priority)),
        ("created", dash(&c.created)),
        ("due", due),
        ("agents", agents),
        ("log", loaded.path.display().to_string()),
    ] {
        let _ = writeln!(out, "{k:<9} {v}");
    }
    out.push('\n');
    for rec in &loaded.records {
        let _ = writeln!(out, "{}", event_line(rec));
    }
    out!("{out}");
    Ok(Code::Ok)
}

/// `HH:MM:SS.mmm  event  agent  key=value ...`
fn event_line(rec: &Value) -> String {
    let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("-");
    let mut rest = String::new();
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
            let _ = write!(rest, " {k}={text}");
        }
    }
    format!(
        "{}  {:<20} {:<16}{rest}",
        table::clock(s("ts")),
        s("event"),
        s("agent")
    )
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
                eprintln!("warning: skipping case {id}: {e}");
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
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        outln!("no cases");
    } else {
        out!("{}", render(&rows));
    }
    Ok(Code::Ok)
}

fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let c = &r.case;
            let due = match &c.due {
                Some(d) if c.status.is_open() => table::relative(d),
                _ => "-".into(),
            };
            [
                c.id.clone(),
                c.status.as_str().to_string(),
                c.owner.clone().unwrap_or_else(|| "-".into()),
                c.priority.clone().unwrap_or_else(|| "-".into()),
                due,
                c.events.to_string(),
                table::truncate(c.purpose.as_deref().unwrap_or("-"), 60),
            ]
        })
        .collect();
    let header = [
        "ID", "STATUS", "OWNER", "PRIORITY", "DUE", "EVENTS", "PURPOSE",
    ];
    table::render(header, &cells, |row, col| {
        let c = &rows[row].case;
        match col {
            1 => Some(status_colour(c.status)),
            4 if cells[row][4].ends_with(" ago") => Some("31"),
            _ => None,
        }
    })
}

fn status_colour(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Escalated | CaseStatus::Blocked => "31",
        CaseStatus::Waiting => "33",
        CaseStatus::InProgress => "32",
        CaseStatus::New | CaseStatus::Assigned => "36",
        CaseStatus::Resolved | CaseStatus::Closed | CaseStatus::Cancelled => "2",
    }
}
