//! Symbolic links never lead the runtime out of the society.
//!
//! Theory of operation. Two kinds of places, two rules:
//!
//! * **The society's own files and folders**: everything below
//!   `.society-agent/` that society creates — agent folders, inboxes,
//!   outboxes, logs, case logs, state files, locks. None of them is ever a
//!   symbolic link, so none is followed, wherever it points: an inbox linked
//!   to a file outside would be appended to (and its content read back into
//!   `deadletter.jsonl`), an agent folder linked to another agent's would give
//!   two ids one folder. [`open`] resolves the path below the state directory
//!   in one step with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a
//!   link anywhere on the way — the agent folder, `cases/`, the inbox itself —
//!   refuses the open, also when it was swapped in after a check. The error
//!   is [`Symlinked`]: it names the link and where it leads. The state
//!   directory itself, and the path above it, are the user's choice and are
//!   followed (a society kept on another disk and reached through a link is
//!   fine). A path with no `.society-agent` among its ancestors is no
//!   society file (a test's scratch file, `/dev/full`): only its last
//!   component is refused as a link (`O_NOFOLLOW`).
//! * **A workspace**: the agent's (and its programs') own files, where a link
//!   may make sense. [`open_beneath`] opens a path below a directory,
//!   following links only while they stay below it; the directory itself is
//!   one of society's own (opened with [`open`]), so a linked `workspace/` is
//!   refused.
//!
//! A kernel without `openat2` (before Linux 5.6) gets the same answers from
//! an `lstat` of each component before the open: right, but not proof
//! against a link swapped in between.

mod beneath;
mod own;

pub use beneath::{open_beneath, read_beneath, write_beneath, BeneathError};
pub use own::{check, check_folder, create_dir_all, open};

use std::path::{Path, PathBuf};

/// Where a symbolic link leads, judged against the society's state
/// directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leads {
    /// Out of `.society-agent/`.
    Outside,
    /// To another place below `.society-agent/`.
    Inside,
    /// To nothing that exists.
    Nowhere,
    /// Not judged: the link is not below a state directory.
    Unjudged,
}

/// A symbolic link where society keeps its own file or folder: refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is {}", link.display(), self.reason())]
pub struct Symlinked {
    /// The link itself: the file, or a folder on the way to it.
    pub link: PathBuf,
    /// What the link holds, as written.
    pub target: PathBuf,
    pub leads: Leads,
}

impl Symlinked {
    /// What is wrong with the link, without its path.
    pub fn reason(&self) -> String {
        let place = match self.leads {
            Leads::Outside => ", outside .society-agent/",
            Leads::Inside => ", inside .society-agent/",
            Leads::Nowhere => ", which does not exist",
            Leads::Unjudged => "",
        };
        format!(
            "a symbolic link (to {}{place}); society never follows a symbolic link among its own files",
            self.target.display()
        )
    }

    /// The refusal as an I/O error, for the callers of `open(2)`-like
    /// functions (an [`crate::IoError`] carrying it says why in its message).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The refusal an I/O error carries, if it is one.
    pub fn of(e: &std::io::Error) -> Option<&Symlinked> {
        e.get_ref()?.downcast_ref()
    }

    /// The link at `link`, judged against the state directory `state`.
    pub(crate) fn at(link: &Path, state: Option<&Path>) -> Symlinked {
        let target = std::fs::read_link(link).unwrap_or_default();
        let leads = match (state, std::fs::canonicalize(link)) {
            (None, _) => Leads::Unjudged,
            (Some(_), Err(_)) => Leads::Nowhere,
            (Some(state), Ok(real)) => match std::fs::canonicalize(state) {
                Ok(state) if real.starts_with(&state) => Leads::Inside,
                _ => Leads::Outside,
            },
        };
        Symlinked {
            link: link.to_path_buf(),
            target,
            leads,
        }
    }
}

#[cfg(test)]
mod tests;
