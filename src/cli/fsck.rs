//! `society fsck [--repair] [-o FORMAT]`. A report: `-o json` is one
//! object, counts and every finding. The human output is one sentence per
//! finding, never cut: a finding is read whole, not scanned like a table.

use super::exit::Code;
use super::output::{self, OutputArgs};
use serde::Serialize;
use society_core::Layout;
use society_runtime::fsck::{self, Finding, Severity};
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply the safe repairs (terminate torn tails, remove stale heartbeats); never deletes a record.
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// `society fsck -o json`.
#[derive(Serialize)]
struct Doc<'a> {
    root: &'a Path,
    files: usize,
    lines: u64,
    /// Problems left (not repaired).
    problems: usize,
    repaired: usize,
    /// The exit code the command returns.
    exit_code: i32,
    findings: &'a [Finding],
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    // A bar on a terminal's stderr: a large society has many files.
    let bar = super::progress::bar(0);
    let state_dir = layout.state_dir();
    let report = fsck::run_with(layout, args.repair, &mut |p| match p {
        fsck::Progress::Files(n) => bar.set_length(n as u64 + 3),
        fsck::Progress::File(path) => {
            bar.inc(1);
            let name = path.strip_prefix(state_dir).unwrap_or(path);
            bar.set_message(name.display().to_string());
        }
        fsck::Progress::Phase(phase) => {
            bar.inc(1);
            bar.set_message(phase);
        }
    });
    drop(bar);
    let report = report?;
    let (problems, repaired) = (report.problems(), report.repaired());
    let code = match (problems, repaired) {
        (0, 0) => Code::Ok,
        (0, _) => Code::FsckRepaired,
        _ => Code::FsckProblems,
    };
    if args.output.is_json() {
        let doc = Doc {
            root: layout.root(),
            files: report.files,
            lines: report.lines,
            problems,
            repaired,
            exit_code: code.code(),
            findings: &report.findings,
        };
        output::report(&doc, args.output.format())?;
        return Ok(code);
    }
    let state = layout.state_dir();
    for f in &report.findings {
        let place = match (&f.file, f.offset) {
            (Some(p), Some(o)) => format!("{}@{o}", p.strip_prefix(state).unwrap_or(p).display()),
            (Some(p), None) => p.strip_prefix(state).unwrap_or(p).display().to_string(),
            (None, _) => "-".into(),
        };
        let kind = match (f.severity, &f.repaired) {
            (_, Some(_)) => "repaired",
            (Severity::Problem, None) => "PROBLEM",
            (Severity::Note, None) => "note",
        };
        outln!("{kind:<8} {:<10} {place}: {}", f.check, f.reason);
        if let Some(r) = &f.repaired {
            outln!("{:<8} {:<10} → {r}", "", "");
        }
    }
    let verdict = match code {
        Code::Ok => "clean".to_string(),
        Code::FsckRepaired => format!("{repaired} repaired, nothing left"),
        _ if args.repair => format!("{problems} problem(s) remain after {repaired} repair(s)"),
        _ => format!(
            "{problems} problem(s); `society fsck --repair` fixes what the files prove (torn tails, stale heartbeats, checkpoints and cursors, quarantine of bad log lines)"
        ),
    };
    outln!(
        "fsck {}: {} files, {} lines: {verdict}",
        layout.root().display(),
        report.files,
        report.lines
    );
    Ok(code)
}
