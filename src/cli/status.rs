//! `society status [ID] [-o FORMAT] [--watch]`: one row per agent, computed
//! from the files alone (works with the supervisor down) by
//! `society_runtime::client::status`. A report: `-o json` is the
//! `{root, supervisor, problems, agents}` object of FORMAT.md.

use super::exit::Code;
use super::output::{self, Format, OutputArgs, Table};
use super::table;
use society_core::{time, Layout};
use society_runtime::client::status::{Report, Row};
use society_runtime::client::{agents, status};
use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this agent.
    id: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    /// Redraw every second until interrupted (with -o json or jsonl: one
    /// compact JSON document a line, every second; the screen is cleared
    /// only on a terminal).
    #[arg(long)]
    watch: bool,
    /// Only this lead and everyone under it (transitively).
    #[arg(long, value_name = "LEAD", conflicts_with = "id")]
    team: Option<String>,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    let only = match &args.id {
        Some(id) => Some(agents::existing(layout, id)?),
        None => None,
    };
    let team = match &args.team {
        Some(lead) => Some(society_runtime::client::tree::team(
            layout,
            &agents::existing(layout, lead)?,
        )?),
        None => None,
    };
    let terminal = std::io::stdout().is_terminal();
    let format = args.output.format();
    loop {
        let mut report = status::collect(layout, only.as_ref())?;
        if let Some(team) = &team {
            report.agents.retain(|r| team.contains(&r.id));
        }
        if args.output.is_json() && args.watch {
            output::stream(&report)?;
        } else if args.output.is_json() {
            output::report(&report, format)?;
        } else {
            if args.watch && terminal {
                out!("\x1b[2J\x1b[H");
            }
            out!("{}", render(&report, format));
        }
        if !args.watch {
            return Ok(Code::Ok);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The columns; those after SPEND show only with `-o wide`.
const HEADER: [&str; 13] = [
    "ID", "STATE", "FOR", "INBOX", "HANDLED", "DEAD", "CASE", "SPEND", "ROLE", "PID", "BEAT",
    "RESTARTS", "GEN",
];

/// The table, with the supervisor's line above and problems and the
/// reasons of broken agents below, every line fitted like the table.
fn render(report: &Report, format: Format) -> String {
    let mut table = Table::new(&HEADER, format);
    let width = table.width();
    let mut out = String::new();
    let mut line = |text: String| {
        let _ = writeln!(out, "{}", output::fit(&text, width));
    };
    line(match &report.supervisor {
        Some(s) => format!("society {}  supervisor pid {}", report.root, s.pid),
        None => format!(
            "society {}  supervisor not running (`society up` starts it)",
            report.root
        ),
    });
    if let Some(f) = &report.federation {
        let link = match (f.supervisor, f.connected) {
            (None, _) => "down",
            (Some(_), true) => "connected",
            (Some(_), false) => "disconnected",
        };
        line(format!(
            "federation {} → {}  {link}, {} waiting in outbound (`society federation status`)",
            f.society.as_deref().unwrap_or("-"),
            f.servers.join(","),
            f.pending
        ));
    }
    for p in &report.problems {
        line(format!("problem: {p}"));
    }
    if let Some(missing) = report.sandbox.shortfall() {
        line(format!("note: sandbox: {missing}"));
    }
    if report.agents.is_empty() {
        line("no agents yet: `society spawn ROLE` creates one".into());
        return out;
    }
    table
        .keep(0, 32)
        .keep(1, 8)
        .keep(7, 9)
        .wide_only(&[8, 9, 10, 11, 12]);
    for r in &report.agents {
        table.row_painted(cells(r), 1, Some(state_colour(&r.state)));
    }
    let mut out = out + &table.render();
    for r in report.agents.iter().filter(|r| r.state == "broken") {
        if let Some(reason) = &r.reason {
            let _ = writeln!(
                out,
                "{}",
                output::fit(&format!("{}: {reason}", r.id), width)
            );
        }
    }
    out
}

fn cells(r: &Row) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        r.id.to_string(),
        state(r),
        r.state_since.as_deref().map_or_else(dash, table::age),
        // A broken agent's cursor cannot be read: its mail waits, uncounted.
        if r.state == "broken" {
            "?".to_string()
        } else {
            r.inbox_pending.to_string()
        },
        r.handled.to_string(),
        r.dead_lettered.to_string(),
        r.case.clone().unwrap_or_else(dash),
        if r.spend_usd > 0.0 {
            format!("${:.4}", r.spend_usd)
        } else {
            dash()
        },
        r.role.clone(),
        r.pid.map_or_else(dash, |p| p.to_string()),
        r.heartbeat_age_ms
            .map_or_else(dash, |a| format!("{:.1}s", a as f64 / 1000.0)),
        r.restarts.to_string(),
        r.generation.to_string(),
    ]
}

/// The state with what qualifies it: `(held)`, `(blocked 4m 59s)`.
fn state(r: &Row) -> String {
    let mut state = r.state.clone();
    if r.held {
        state.push_str(" (held)");
    }
    match r.sanction.as_ref().and_then(|s| s.blocked_until.as_deref()) {
        Some("until lifted") => state.push_str(" (blocked until unblocked)"),
        Some(until) => {
            let left = time::parse_rfc3339(until)
                .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                .map_or_else(String::new, |d| format!(" {}", table::coarse(d)));
            let _ = write!(state, " (blocked{left})");
        }
        None => {}
    }
    state
}

/// ANSI colour of a state on a terminal.
fn state_colour(state: &str) -> &'static str {
    match state {
        "running" => "32",
        "idle" | "starting" => "36",
        "hung" | "failed" | "broken" => "31",
        "backoff" | "stopping" | "pending" => "33",
        _ => "2",
    }
}
