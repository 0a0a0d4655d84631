//! Human output: tables, with colour only on a TTY and never with NO_COLOR.

use society_runtime::client::status::Report;
use std::fmt::Write;
use std::io::IsTerminal;

pub fn colour_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(text: &str, state: &str) -> String {
    if !colour_enabled() {
        return text.to_string();
    }
    let code = match state {
        "running" => "32",
        "idle" | "starting" => "36",
        "hung" | "failed" | "broken" => "31",
        "backoff" | "stopping" | "pending" => "33",
        _ => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

pub fn status_table(report: &Report) -> String {
    let mut out = String::new();
    match &report.supervisor {
        Some(s) => {
            let _ = writeln!(out, "society {}  supervisor pid {}", report.root, s.pid);
        }
        None => {
            let _ = writeln!(
                out,
                "society {}  supervisor not running (`society up` starts it)",
                report.root
            );
        }
    }
    for p in &report.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    if report.agents.is_empty() {
        let _ = writeln!(out, "no agents yet: `society spawn ROLE` creates one");
        return out;
    }
    let header = [
        "ID", "ROLE", "STATE", "PID", "BEAT", "INBOX", "CASE", "RESTARTS", "GEN", "HANDLED",
        "SPEND",
    ];
    let rows: Vec<[String; 11]> = report
        .agents
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.role.clone(),
                {
                    let mut state = r.state.clone();
                    if r.held {
                        state.push_str(" (held)");
                    }
                    match r.sanction.as_ref().and_then(|s| s.blocked_until.as_deref()) {
                        Some("until lifted") => state.push_str(" (blocked until unblocked)"),
                        Some(until) => {
                            let left = society_core::time::parse_rfc3339(until)
                                .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                                .map_or_else(String::new, |d| {
                                    format!(
                                        " {}",
                                        humantime::format_duration(std::time::Duration::from_secs(
                                            d.as_secs()
                                        ))
                                    )
                                });
                            state.push_str(&format!(" (blocked{left})"));
                        }
                        None => {}
                    }
                    state
                },
                r.pid.map_or("-".into(), |p| p.to_string()),
                r.heartbeat_age_ms
                    .map_or("-".into(), |a| format!("{:.1}s", a as f64 / 1000.0)),
                r.inbox_pending.to_string(),
                r.case.clone().unwrap_or_else(|| "-".into()),
                r.restarts.to_string(),
                r.generation.to_string(),
                r.handled.to_string(),
                if r.spend_usd > 0.0 {
                    format!("${:.4}", r.spend_usd)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], out: &mut String, state: Option<&str>| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let padded = format!("{cell:<w$}");
            let text = match (i, state) {
                (2, Some(s)) => paint(&padded, s),
                _ => padded,
            };
            let _ = write!(
                out,
                "{text}{}",
                if i + 1 < cells.len() { "  " } else { "\n" }
            );
        }
    };
    line(&header.map(String::from), &mut out, None);
    for (row, r) in rows.iter().zip(&report.agents) {
        line(row, &mut out, Some(&r.state));
    }
    for r in report.agents.iter().filter(|r| r.state == "broken") {
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "{}: {reason}", r.id);
        }
    }
    out
}

/// Warnings on stderr, one a line (stderr may be closed: they are not worth
/// a failure).
pub fn warn(warnings: &[String]) {
    use std::io::Write as _;
    for w in warnings {
        let _ = writeln!(std::io::stderr(), "warning: {w}");
    }
}
