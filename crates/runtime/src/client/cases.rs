//! Finding and reading case logs: open ones in `supervisor/cases/`, closed ones
//! in `archive/<date>/` through the pointer `case-<id>.archived.json` a close
//! leaves behind (or, while the supervisor is between moving the log and
//! writing the pointer, by looking in the archive itself).

use super::ClientError;
use serde::Deserialize;
use serde_json::Value;
use society_core::case::CaseSummary;
use society_core::{atomic, CaseId, Layout};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// What `case close` leaves in `supervisor/cases/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Pointer {
    /// The archived log, relative to `.society-agent/`.
    pub archived: String,
}

/// A case log that was found.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub archived: bool,
    pub records: Vec<Value>,
    pub summary: CaseSummary,
}

pub fn pointer(layout: &Layout, case: &CaseId) -> Result<Option<Pointer>, ClientError> {
    Ok(atomic::read_json(
        &layout.case_pointer(case),
        "case archive pointer",
    )?)
}

/// The archived log a pointer names, refusing paths that leave `.society-agent/`.
pub fn archived_path(layout: &Layout, case: &CaseId, p: &Pointer) -> Result<PathBuf, ClientError> {
    let rel = Path::new(&p.archived);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ClientError::BadPointer {
            pointer: layout.case_pointer(case),
            archived: p.archived.clone(),
            state_dir: layout.state_dir().to_path_buf(),
        });
    }
    Ok(layout.state_dir().join(rel))
}

/// Where the case's log is now: `(path, archived)`.
fn locate(layout: &Layout, case: &CaseId) -> Result<Option<(PathBuf, bool)>, ClientError> {
    let open = layout.case_log(case);
    if open.is_file() {
        return Ok(Some((open, false)));
    }
    if let Some(p) = pointer(layout, case)? {
        return Ok(Some((archived_path(layout, case, &p)?, true)));
    }
    let name = format!("case-{case}.jsonl");
    Ok(archive_days(layout)
        .into_iter()
        .rev()
        .map(|day| day.join(&name))
        .find(|p| p.is_file())
        .map(|p| (p, true)))
}

/// Loads a case's log and folds it; `None` if there is no such case.
pub fn load(layout: &Layout, case: &CaseId) -> Result<Option<Loaded>, ClientError> {
    // A close moves the log while we read: look again where it went.
    for _ in 0..3 {
        let Some((path, archived)) = locate(layout, case)? else {
            return Ok(None);
        };
        let records = read_records(&path)?;
        if records.is_empty() && !path.exists() {
            continue;
        }
        let summary = CaseSummary::fold(case.as_str(), &records);
        return Ok(Some(Loaded {
            path,
            archived,
            records,
            summary,
        }));
    }
    Ok(None)
}

/// Every complete, valid JSON record of a log, in order.
pub fn read_records(path: &Path) -> Result<Vec<Value>, ClientError> {
    Ok(society_core::jsonl::read_objects(path, &mut 0)?)
}

/// Ids of every case: open logs, archive pointers and archived logs.
pub fn all_ids(layout: &Layout) -> Result<BTreeSet<CaseId>, ClientError> {
    let mut ids = BTreeSet::new();
    let mut scan = |dir: &Path, suffixes: &[&str]| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("case-")) else {
                continue;
            };
            let id = suffixes.iter().find_map(|s| rest.strip_suffix(s));
            if let Some(id) = id.and_then(|i| CaseId::new(i).ok()) {
                ids.insert(id);
            }
        }
    };
    scan(&layout.cases_dir(), &[".jsonl", ".archived.json"]);
    for day in archive_days(layout) {
        scan(&day, &[".jsonl"]);
    }
    Ok(ids)
}

/// `archive/<yyyy-mm-dd>/` folders, oldest first (not the folders of
/// rotated segments, `archive/agent-<id>/` and the like).
fn archive_days(layout: &Layout) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(layout.archive_dir()) else {
        return Vec::new();
    };
    let is_day = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.len() == 10
                && n.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        })
    };
    let mut days: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_day(p))
        .collect();
    days.sort();
    days
}
