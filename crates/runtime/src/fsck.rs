//! `society fsck`: checks a society's files against the format's promises,
//! running or not, and (with `repair`) fixes only what is safe: it terminates
//! torn tails (under the append lock, the same repair any writer would make)
//! and removes heartbeats left by dead processes. It never deletes or
//! rewrites a record.
//!
//! Checks: every JSONL line parses and every envelope validates (file, byte
//! offset, reason — lines already quarantined in a dead-letter file are
//! reported as such, not as problems); the same record (message id, log
//! `src`) twice in a file; torn tails; agent and supervisor
//! cursors inside their files and on line boundaries; in-flight messages that
//! exist; locks and `status.json` against live processes; case logs against
//! approvals; the federation bridge's cursor in `outbound.jsonl` and that its
//! lines leave this society; orphaned processes of the society; file modes; symbolic links
//! the runtime refuses (reported, never repaired: see `symlinks.rs`).

mod checks;
mod files;
mod modes;
mod processes;
mod rebuild;
mod symlinks;

use serde::Serialize;
use society_core::{FormatError, Layout};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Breaks a promise of the format; fsck exits non-zero while one remains.
    Problem,
    /// Worth knowing (e.g. a quarantined line), not a broken promise.
    Note,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Which check found it (`jsonl`, `envelope`, `torn_tail`, `duplicate`, `cursor`, `in_flight`, `status`, `lock`, `approval`, `process`, `mode`, `symlink`, `outbound`).
    pub check: &'static str,
    pub file: Option<PathBuf>,
    pub offset: Option<u64>,
    pub reason: String,
    /// What `--repair` did about it, if anything.
    pub repaired: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub files: usize,
    pub lines: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem && f.repaired.is_none())
            .count()
    }
    pub fn repaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.repaired.is_some())
            .count()
    }

    fn problem(
        &mut self,
        check: &'static str,
        file: Option<PathBuf>,
        offset: Option<u64>,
        reason: String,
    ) -> &mut Finding {
        self.push(Severity::Problem, check, file, offset, reason)
    }

    fn note(
        &mut self,
        check: &'static str,
        file: Option<PathBuf>,
        offset: Option<u64>,
        reason: String,
    ) {
        self.push(Severity::Note, check, file, offset, reason);
    }

    fn push(
        &mut self,
        severity: Severity,
        check: &'static str,
        file: Option<PathBuf>,
        offset: Option<u64>,
        reason: String,
    ) -> &mut Finding {
        self.findings.push(Finding {
            severity,
            check,
            file,
            offset,
            reason,
            repaired: None,
        });
        self.findings.last_mut().expect("just pushed")
    }
}

/// Where a run is, for a progress bar: a large society has many files.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The files to read, counted before reading them.
    Files(usize),
    /// This file is being read.
    File(&'a std::path::Path),
    /// The checks across files: `cursors`, `approvals`, `processes`.
    Phase(&'static str),
}

/// Runs every check. With `repair`, applies the safe repairs and records them.
pub fn run(layout: &Layout, repair: bool) -> Result<Report, FormatError> {
    run_with(layout, repair, &mut |_| {})
}

/// [`run`], telling `progress` where it is.
pub fn run_with(
    layout: &Layout,
    repair: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, FormatError> {
    layout.check_format()?;
    let mut report = Report::default();
    let checked = (|| {
        let scan = files::scan(layout, repair, &mut report, progress)?;
        progress(Progress::Phase("cursors"));
        checks::cursors(layout, &scan, repair, &mut report)?;
        progress(Progress::Phase("approvals"));
        checks::approvals(layout, &mut report)?;
        progress(Progress::Phase("processes"));
        processes::check(layout, repair, &mut report)
    })();
    match checked {
        Ok(()) => {}
        // A file every check needs (the orchestrator's inbox, the
        // supervisor's checkpoint) is a link: it is never read, and the
        // `symlink` check below names it.
        Err(e) if e.symlinked().is_some() => {
            report.note(
                "symlink",
                None,
                None,
                format!("{e}; the checks that need it were skipped"),
            );
        }
        Err(e) => return Err(e),
    }
    progress(Progress::Phase("modes"));
    modes::check(layout, repair, &mut report);
    progress(Progress::Phase("symlinks"));
    symlinks::check(layout, repair, &mut report);
    Ok(report)
}
