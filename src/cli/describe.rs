//! `society describe NAME [-o json|jsonl]`: everything about one agent,
//! case or approval request, as `Key:  value` lines like `kubectl
//! describe` (the library side, and how a name is resolved, is
//! `society_runtime::client::describe`).

use super::exit::Code;
use super::output::{self, OutputArgs};
use super::{table, when};
use serde_json::Value;
use society_core::Layout;
use society_runtime::client::describe::{self, AgentView, ApprovalView, CaseView, Description};
use std::fmt::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An agent id, a case id or an approval request id; `agent/NAME`,
    /// `case/NAME` or `approval/NAME` when a name is more than one.
    name: String,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let description = describe::describe(layout, &args.name)?;
    let format = args.output.format();
    if args.output.is_json() {
        output::report(&description, format)?;
        return Ok(Code::Ok);
    }
    let mut sheet = Sheet::new(output::width(format));
    match &description {
        Description::Agent(a) => agent(&mut sheet, a),
        Description::Case(c) => case(&mut sheet, c),
        Description::Approval(a) => approval(&mut sheet, a),
    }
    out!("{}", sheet.render());
    Ok(Code::Ok)
}

/// `Key:  value` lines, values aligned, and indented lists under a key.
struct Sheet {
    lines: Vec<(String, Option<String>)>,
    width: Option<u16>,
}

impl Sheet {
    fn new(width: Option<u16>) -> Sheet {
        Sheet {
            lines: Vec::new(),
            width,
        }
    }

    fn field(&mut self, key: &str, value: impl Into<String>) {
        self.lines.push((key.to_string(), Some(value.into())));
    }

    /// A key over a list of lines (`<none>` for an empty one).
    fn list(&mut self, key: &str, items: Vec<String>) {
        if items.is_empty() {
            self.field(key, "<none>");
            return;
        }
        self.lines.push((key.to_string(), None));
        for item in items {
            self.lines.push((String::new(), Some(item)));
        }
    }

    fn render(&self) -> String {
        let w = self
            .lines
            .iter()
            .filter(|(k, v)| !k.is_empty() && v.is_some())
            .map(|(k, _)| k.chars().count() + 1)
            .max()
            .unwrap_or(0)
            + 2;
        let mut out = String::new();
        for (key, value) in &self.lines {
            let line = match (key.is_empty(), value) {
                (true, Some(item)) => format!("  {item}"),
                (false, Some(v)) => format!("{:<w$}{v}", format!("{key}:")),
                (_, None) => format!("{key}:"),
            };
            let line = match self.width {
                Some(cols) => table::truncate(&line, cols.into()),
                None => line,
            };
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `14:03:05 (3m ago)`, or `-`.
fn at(ts: Option<&str>) -> String {
    ts.map_or_else(
        || "-".into(),
        |t| format!("{} ({})", when::stamp(t), table::relative(t)),
    )
}

/// `k=v k=v` of an object's fields, `skip` left out and nulls dropped.
fn pairs(v: &Value, skip: &[&str]) -> String {
    let mut out = Vec::new();
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            if skip.contains(&k.as_str()) || val.is_null() {
                continue;
            }
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(format!("{k}={text}"));
        }
    }
    out.join(" ")
}

/// `HH:MM:SS.mmm  event  key=value ...` of a log record.
fn event_line(rec: &Value, skip: &[&str]) -> String {
    let mut skipped = vec!["ts", "event", "gen", "src"];
    skipped.extend_from_slice(skip);
    format!(
        "{}  {:<18} {}",
        rec["ts"]
            .as_str()
            .map_or_else(|| "-".into(), when::stamp_ms),
        rec["event"].as_str().unwrap_or("-"),
        pairs(rec, &skipped)
    )
}

fn agent(s: &mut Sheet, a: &AgentView) {
    let r = &a.status;
    s.field("Name", r.id.to_string());
    s.field("Kind", "agent");
    s.field("Role", r.role.clone());
    s.field("Folder", a.folder.clone());
    s.field(
        "Brain",
        format!(
            "{} {}",
            a.brain["kind"].as_str().unwrap_or("?"),
            pairs(&a.brain, &["kind"])
        ),
    );
    s.field("Keep alive", yes(r.keep_alive));
    s.field("Policy", pairs(&a.policy, &[]));
    let mut state = r.state.clone();
    if r.held {
        state.push_str(" (held)");
    }
    if let Some(since) = &a.since {
        let _ = write!(
            state,
            " for {} (since {})",
            table::age(since),
            when::stamp(since)
        );
    }
    s.field("State", state);
    if let Some(reason) = &r.reason {
        s.field("Reason", reason.clone());
    }
    s.field("Pid", dash(r.pid));
    s.field("Generation", r.generation.to_string());
    s.field("Restarts", r.restarts.to_string());
    s.field(
        "Last exit",
        a.last_exit.as_ref().map_or_else(
            || "-".into(),
            |e| {
                format!(
                    "{}  {}",
                    e["ts"].as_str().map_or_else(|| "-".into(), when::stamp),
                    pairs(e, &["ts"])
                )
            },
        ),
    );
    s.field(
        "Heartbeat",
        r.heartbeat_age_ms
            .map_or("-".into(), |ms| format!("{:.1}s ago", ms as f64 / 1000.0)),
    );
    s.field(
        "Inbox",
        format!(
            "{} pending, cursor {} (segment {}), {} bytes",
            r.inbox_pending, a.inbox.cursor, a.inbox.segment, a.inbox.bytes
        ),
    );
    s.field(
        "Handled",
        format!("{} ({} dead-lettered)", r.handled, r.dead_lettered),
    );
    s.field(
        "In flight",
        a.in_flight.as_ref().map_or("-".into(), |f| pairs(f, &[])),
    );
    s.field(
        "Last error",
        a.last_error
            .as_ref()
            .map_or("-".into(), |e| event_line(e, &[])),
    );
    s.field("Case", dash(r.case.as_ref()));
    if let Some(m) = &a.metadata {
        s.field(
            "Purpose",
            format!(
                "{} ({} served{})",
                m.current_purpose.as_deref().unwrap_or("-"),
                m.total_purposes_served,
                m.retired
                    .as_ref()
                    .map_or(String::new(), |r| format!(", retired {}", r.at))
            ),
        );
        let e = &m.experience;
        let types: Vec<String> = e
            .message_types
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        s.field(
            "Experience",
            format!(
                "{} handled, {} failed; approval rate {}; tags {}; {}",
                e.successful,
                e.failed,
                e.approval_rate
                    .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
                if m.tags.is_empty() {
                    "-".into()
                } else {
                    m.tags.join(",")
                },
                if types.is_empty() {
                    "no types yet".into()
                } else {
                    types.join(", ")
                }
            ),
        );
    }
    if let Some(x) = &r.sanction {
        s.field(
            "Sanction",
            format!(
                "level {}, {} violation(s), blocked until {}{}",
                x.level,
                x.violations,
                x.blocked_until.as_deref().unwrap_or("-"),
                x.last_reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(" ({r})"))
            ),
        );
    }
    if let Some(c) = &a.costs {
        s.field(
            "Spend",
            format!(
                "${:.4} (today ${:.4}), {} call(s), {} in / {} out tokens",
                c.spend.usd,
                c.spend.usd_today,
                c.spend.calls,
                c.spend.input_tokens,
                c.spend.output_tokens
            ),
        );
        s.field("Budget", budget(&c.budget));
        s.field("Society budget", budget(&c.society_budget));
    }
    s.field("Dead letters", a.dead_letters.count.to_string());
    for d in &a.dead_letters.last {
        s.lines.push((String::new(), Some(event_line(d, &[]))));
    }
    s.list(
        "Events",
        a.recent_events
            .iter()
            .map(|e| event_line(e, &["agent"]))
            .collect(),
    );
}

fn budget(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        other => pairs(other, &[]),
    }
}

fn case(s: &mut Sheet, c: &CaseView) {
    let sum = &c.summary;
    s.field("Name", sum.id.clone());
    s.field("Kind", "case");
    s.field("Purpose", dash(sum.purpose.as_ref()));
    s.field(
        "State",
        if c.archived {
            format!("{} (archived)", sum.status.as_str())
        } else {
            sum.status.as_str().to_string()
        },
    );
    s.field("Owner", dash(sum.owner.as_ref()));
    s.field("Priority", dash(sum.priority.as_ref()));
    s.field("Opened", at(sum.created.as_deref()));
    s.field(
        "Due",
        sum.due.as_deref().map_or("-".into(), |d| {
            format!("{} ({})", when::stamp(d), table::relative(d))
        }),
    );
    s.field("Closed", at(c.closed.as_deref()));
    s.field(
        "Participants",
        if sum.agents.is_empty() {
            "-".into()
        } else {
            sum.agents.join(", ")
        },
    );
    s.field(
        "Events",
        format!("{} (last {})", sum.events, at(sum.last_ts.as_deref())),
    );
    s.field("Log", c.log.clone());
    s.list(
        "Timeline",
        c.timeline
            .iter()
            .map(|e| event_line(e, &["case"]))
            .collect(),
    );
}

fn approval(s: &mut Sheet, a: &ApprovalView) {
    s.field("Name", a.id.to_string());
    s.field("Kind", "approval request");
    let from = match &a.held {
        Some(held) => format!(
            "{} (holds a message {} → {} under a routing rule)",
            a.from,
            held["from"].as_str().unwrap_or("?"),
            held["to"].as_str().unwrap_or("?")
        ),
        None => a.from.to_string(),
    };
    s.field("From", from);
    s.field("Case", dash(a.case.as_ref()));
    let state = match &a.decision {
        None => "pending".to_string(),
        Some(d) => format!(
            "{} at {}{}",
            a.state,
            when::stamp(&d.ts),
            d.note
                .as_ref()
                .map_or(String::new(), |n| format!(" with the note {n:?}"))
        ),
    };
    s.field("State", state);
    s.field("Asked", at(Some(&a.ts)));
    s.field("Revision", dash(a.revision));
    s.field("Plan", a.plan.clone());
    s.field("Rationale", dash(a.rationale.as_ref()));
    s.list(
        "Alternatives",
        a.alternatives
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
    );
    if a.decision.is_none() {
        s.field(
            "Answer",
            format!(
                "society approve {id} [--note TEXT]  |  society reject {id} --feedback TEXT",
                id = a.id
            ),
        );
    }
}
