//! `society selftest [--quick] [--json] [--report FILE]`: proves, with real
//! processes in scratch societies under the system temp dir (never the
//! user's), that the runtime still keeps its promises. Meant for a nightly
//! cron job (scripts/nightly-selftest.sh).
//!
//! The checks are `society_runtime::selftest`'s (the integration tests run
//! the same functions); this file chooses them, shows progress (a bar on
//! stderr, only on a terminal) and renders the report.

use super::exit::{coded_hint, Code};
use serde_json::json;
use society_core::jsonl::{append_one, Durability};
use society_core::Layout;
use society_runtime::selftest::{self, Check, CheckResult};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The short version (well under a minute on 2 cores): fewer messages, kills and agents.
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON instead of lines.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Run only the checks whose name contains this (`--list` shows them).
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// List the checks and their promises; run nothing.
    #[arg(long)]
    list: bool,
}

pub fn run(root: Option<&Layout>, args: Args) -> anyhow::Result<Code> {
    let env = selftest::Env {
        exe: std::env::current_exe()?,
        quick: args.quick,
    };
    let list: Vec<&Check> = selftest::ALL
        .iter()
        .filter(|c| args.only.as_deref().is_none_or(|o| c.name.contains(o)))
        .collect();
    if args.list {
        for c in &list {
            outln!("{:<20} {}", c.name, c.promise);
        }
        return Ok(Code::Ok);
    }
    if list.is_empty() {
        return Err(coded_hint(
            Code::Usage,
            format!(
                "no check's name contains {:?}: nothing to run",
                args.only.as_deref().unwrap_or_default()
            ),
            "`society selftest --list` lists the checks",
        ));
    }
    let started = Instant::now();
    let mut results: Vec<CheckResult> = Vec::new();
    let bar = super::progress::bar(list.len());
    for check in &list {
        bar.set_message(check.name);
        let r = check.run(&env);
        bar.inc(1);
        if !args.json {
            bar.suspend(|| report_line(&r))?;
        }
        results.push(r);
    }
    bar.finish_and_clear();
    let failed = results.iter().filter(|r| !r.passed).count();
    let total = started.elapsed();
    let doc = json!({
        "ts": society_core::time::now_rfc3339(), "version": env!("CARGO_PKG_VERSION"), "quick": args.quick,
        "passed": results.len() - failed, "failed": failed, "duration_ms": total.as_millis() as u64, "checks": results,
    });
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .map_err(|e| anyhow::anyhow!("failed to write {}: {e}", path.display()))?;
    }
    let summary = format!(
        "selftest: {}/{} passed in {:.1}s{}",
        results.len() - failed,
        results.len(),
        total.as_secs_f64(),
        if failed > 0 {
            format!(
                " — FAILED: {}",
                results
                    .iter()
                    .filter(|r| !r.passed)
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    );
    if args.json {
        note!("{summary}");
    } else {
        outln!("{summary}");
    }
    record_history(root, &doc);
    Ok(if failed == 0 {
        Code::Ok
    } else {
        Code::CheckFailed
    })
}

/// Appends the run's summary to the society's history, if there is a society here.
fn record_history(root: Option<&Layout>, doc: &serde_json::Value) {
    let Some(layout) = root else { return };
    let mut line = doc.clone();
    if let Some(obj) = line.as_object_mut() {
        obj.insert("event".into(), json!("selftest"));
        if let Some(checks) = obj.get_mut("checks").and_then(|c| c.as_array_mut()) {
            for c in checks.iter_mut() {
                if let Some(o) = c.as_object_mut() {
                    o.remove("evidence");
                }
            }
        }
    }
    let path = layout.selftest_history();
    let bytes = serde_json::to_vec(&line).unwrap_or_default();
    if let Err(e) = append_one(&path, &bytes, Durability::Durable, usize::MAX) {
        note!("warning: could not append to {}: {e}", path.display());
    }
}

/// A check's `PASS`/`FAIL` line, and the promise it failed to keep.
fn report_line(r: &CheckResult) -> anyhow::Result<()> {
    outln!(
        "{} {:<20} {:>5.1}s  {}",
        if r.passed { "PASS" } else { "FAIL" },
        r.name,
        r.ms as f64 / 1000.0,
        r.evidence
    );
    if !r.passed {
        outln!("     promise: {}", r.promise);
    }
    Ok(())
}
