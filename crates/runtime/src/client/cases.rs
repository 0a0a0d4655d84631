//! Finding and reading case logs: open ones in `supervisor/cases/`, closed ones
//! in `archive/<date>/` through the pointer `case-<id>.archived.json` a close
//! leaves behind (or, while the supervisor is between moving the log and
//! writing the pointer, by looking in the archive itself).

use super::ClientError;
use serde_json::Value;
use society_core::case::{CasePointer, CaseSummary};
use society_core::layout::{case_log_name, case_of_log_name, case_of_pointer_name};
use society_core::{atomic, CaseId, Layout};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// A case log that was found.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub archived: bool,
    pub records: Vec<Value>,
    pub summary: CaseSummary,
}

pub fn pointer(layout: &Layout, case: &CaseId) -> Result<Option<CasePointer>, ClientError> {
    Ok(atomic::read_json(
        &layout.case_pointer(case),
        "case archive pointer",
    )?)
}

/// The archived log a pointer names, refusing paths that leave `.society-agent/`.
pub fn archived_path(
    layout: &Layout,
    case: &CaseId,
    p: &CasePointer,
) -> Result<PathBuf, ClientError> {
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
    let name = case_log_name(case);
    Ok(layout
        .archive_days()
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
    let mut scan = |dir: &Path, pointers: bool| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = case_of_log_name(name)
                .or_else(|| pointers.then(|| case_of_pointer_name(name)).flatten());
            ids.extend(id);
        }
    };
    scan(&layout.cases_dir(), true);
    for day in layout.archive_days() {
        scan(&day, false);
    }
    Ok(ids)
}
