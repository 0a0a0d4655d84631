//! Exit codes of every entry point — the CLI's commands, `society supervise`
//! and `society agent-run` — in one table, so a code means the same thing
//! whoever exits with it (the supervisor reads an agent's code to decide
//! between adopting, restarting and giving up). Documented in README.md.

/// A process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    /// Success; for an agent: idle exit, or stopped on request.
    Ok = 0,
    /// An error not covered below: I/O failure, internal error.
    Error = 1,
    /// Bad command-line usage.
    Usage = 2,
    /// In use: what the command must hold itself is another's — the agent
    /// folder is bound to another process, a supervisor already runs
    /// (`supervise`), the `demo --dir` directory already holds a society.
    /// Commands that only *ensure* a state (`up`, `init`) exit 0 instead.
    Locked = 3,
    /// Not found: no society here, unknown agent, case or approval request.
    NotFound = 4,
    /// Invalid input or state: bad id, bad JSON body, oversize message,
    /// invalid `society.toml`, a corrupt state file (for an agent: its
    /// `config.json` or `checkpoint.json` cannot be used).
    Invalid = 5,
    /// Timed out waiting for a state.
    Timeout = 6,
    /// A check failed (demo verification, selftest).
    CheckFailed = 7,
    /// `fsck`: problems were found and all of them repaired.
    FsckRepaired = 8,
    /// `fsck`: problems remain.
    FsckProblems = 9,
    /// The request conflicts with the state: answering a request whose case
    /// is closed, answering an answered request, closing a closed case.
    Conflict = 10,
}

impl Code {
    /// Every code, in order (for the help text and the docs test).
    pub const ALL: [Code; 11] = [
        Code::Ok,
        Code::Error,
        Code::Usage,
        Code::Locked,
        Code::NotFound,
        Code::Invalid,
        Code::Timeout,
        Code::CheckFailed,
        Code::FsckRepaired,
        Code::FsckProblems,
        Code::Conflict,
    ];

    pub const fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A few words, for `--help` and messages about a child's exit.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::Error => "error",
            Code::Usage => "usage",
            Code::Locked => "in use (agent folder locked, supervisor running, demo dir taken)",
            Code::NotFound => "not found (no society, unknown agent, case or request)",
            Code::Invalid => "invalid input or state",
            Code::Timeout => "timed out",
            Code::CheckFailed => "check failed",
            Code::FsckRepaired => "fsck repaired everything",
            Code::FsckProblems => "fsck problems remain",
            Code::Conflict => "conflict with the current state",
        }
    }
}

/// The code of a format error: no society is "not found"; a corrupt or
/// oversize state file, or a symbolic link refused, is invalid state; the
/// rest (I/O) is an error.
pub fn format_code(e: &society_core::FormatError) -> Code {
    use society_core::FormatError as F;
    match e {
        F::NoSociety { .. } | F::NoSocietyAt { .. } => Code::NotFound,
        F::RecordTooLarge { .. } | F::UnsupportedFormat { .. } | F::Json { .. } => Code::Invalid,
        // A symbolic link where society keeps its own file: invalid state.
        F::Io(e) if e.symlinked().is_some() => Code::Invalid,
        _ => Code::Error,
    }
}

impl From<Code> for i32 {
    fn from(c: Code) -> i32 {
        c.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for (i, c) in Code::ALL.into_iter().enumerate() {
            assert_eq!(c.code(), i as i32, "the table is dense and ordered");
            assert_eq!(Code::from_code(c.code()), Some(c));
        }
        assert_eq!(Code::from_code(11), None);
    }
}
