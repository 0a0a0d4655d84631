//! Private files: everything under `.society-agent/` is the owner's alone —
//! files 0600, directories 0700 (society sets its umask to 077). A file or
//! directory that others may read or write is a problem; `--repair` takes
//! the group's and others' bits away. Symlinks are not followed.

use super::Report;
use society_core::Layout;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(super) fn check(layout: &Layout, repair: bool, report: &mut Report) {
    walk(layout.state_dir(), repair, report);
}

fn walk(dir: &Path, repair: bool, report: &mut Report) {
    visit(dir, repair, report);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, repair, report),
            Ok(t) if t.is_file() => visit(&path, repair, report),
            _ => {}
        }
    }
}

fn visit(path: &Path, repair: bool, report: &mut Report) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let kind = if meta.is_dir() { "directory" } else { "file" };
    let finding = report.problem(
        "mode",
        Some(path.to_path_buf()),
        None,
        format!(
            "{kind} mode {mode:04o} lets other users read or write it (society's files are 0600, its directories 0700)"
        ),
    );
    if repair {
        let fixed = mode & 0o700;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(fixed)) {
            Ok(()) => finding.repaired = Some(format!("mode set to {fixed:04o}")),
            Err(e) => finding.reason.push_str(&format!("; cannot change it: {e}")),
        }
    }
}
