//! Symbolic links the runtime refuses (`society_core::confine`): any link
//! among society's own files below `.society-agent/` (an agent folder, an
//! inbox, a case log, `cases/`…), wherever it points, and a link in a
//! workspace that leads out of it. Each is a problem: what lies behind it
//! is refused — the agent is not listed, or cannot run, or a file tool
//! refuses the path.
//!
//! `--repair` leaves them alone: what a link points at may be the real
//! files (a folder moved to another disk and linked back), and removing or
//! replacing the link could hide them or fork them into two copies; only a
//! person can tell which is right.

use super::Report;
use society_core::confine::{self, BeneathError};
use society_core::layout::agent_of_dir_name;
use society_core::Layout;
use std::path::Path;

/// What `--repair` says it did not do, and why.
const NOT_REPAIRED: &str = "left as it is by --repair: what it points at may be the real files — \
                            put them in place of the link, or remove the link";

pub(super) fn check(layout: &Layout, repair: bool, report: &mut Report) {
    walk(layout, layout.state_dir(), repair, report);
}

fn walk(layout: &Layout, dir: &Path, repair: bool, report: &mut Report) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_symlink() => own_link(layout, &path, repair, report),
            Ok(t) if t.is_dir() && is_workspace(&path) => workspace(&path, repair, report),
            Ok(t) if t.is_dir() => walk(layout, &path, repair, report),
            _ => {}
        }
    }
}

/// A link among society's own files: refused wherever it points.
fn own_link(layout: &Layout, path: &Path, repair: bool, report: &mut Report) {
    let Err(link) = confine::check(path) else {
        return;
    };
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(agent_of_dir_name)
    };
    let parent = path.parent().unwrap_or(layout.state_dir());
    let effect = if parent == layout.state_dir() && name(path).is_some() {
        "it is no agent: not listed, never started, nothing delivered through it".to_string()
    } else if let Some(id) = name(parent).filter(|id| {
        parent.parent() == Some(layout.state_dir())
            && layout.agent(id).own_entries().iter().any(|e| e == path)
    }) {
        format!("agent {id} cannot run until it is replaced by what it points at, or removed")
    } else {
        "society neither reads nor writes through it".to_string()
    };
    let mut reason = format!("{}; {effect}", link.reason());
    if repair {
        reason.push_str(&format!(" ({NOT_REPAIRED})"));
    }
    report.problem("symlink", Some(path.to_path_buf()), None, reason);
}

/// An agent's `workspace/` (live or archived): its files are the agent's,
/// and a link in it is refused only when it leads out of it.
fn is_workspace(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "workspace")
        && path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(society_core::layout::names::AGENT_DIR_PREFIX))
}

fn workspace(ws: &Path, repair: bool, report: &mut Report) {
    let Ok(base) = confine::open(
        ws,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        0,
    ) else {
        return;
    };
    let mut stack = vec![ws.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_symlink() => {
                    let rel = path.strip_prefix(ws).unwrap_or(&path);
                    let opened =
                        confine::open_beneath(&base, ws, rel, nix::fcntl::OFlag::O_PATH, rel);
                    if let Err(BeneathError::Outside { resolved, .. }) = opened {
                        let target = std::fs::read_link(&path).unwrap_or_default();
                        let mut reason = format!(
                            "a symbolic link (to {}) that leads out of workspace/{}; the agent's \
                             file tools refuse it",
                            target.display(),
                            resolved
                                .filter(|r| *r != target)
                                .map(|r| format!(", to {}", r.display()))
                                .unwrap_or_default()
                        );
                        if repair {
                            reason.push_str(&format!(" ({NOT_REPAIRED})"));
                        }
                        report.problem("symlink", Some(path), None, reason);
                    }
                }
                _ => {}
            }
        }
    }
}
