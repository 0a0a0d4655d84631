//! Exit codes, and the mapping from errors to them. Documented in README.md.

use society_core::{FormatError, IoError};

pub const OK: i32 = 0;
/// Anything else: I/O failure, internal error.
pub const ERROR: i32 = 1;
/// Bad command-line usage.
pub const USAGE: i32 = 2;
/// A lock is held: the agent folder is bound to another process, or a supervisor already runs.
pub const LOCKED: i32 = 3;
/// Not found: no society here, unknown agent, case or approval request.
pub const NOT_FOUND: i32 = 4;
/// Invalid input: bad id, bad JSON body, oversize message, invalid society.toml.
pub const INVALID: i32 = 5;
/// Timed out waiting for a state (spawn --wait, up, down, stop).
pub const TIMEOUT: i32 = 6;
/// A check failed (demo verification, selftest).
pub const CHECK_FAILED: i32 = 7;
/// `fsck`: problems were found and all of them repaired.
pub const FSCK_REPAIRED: i32 = 8;
/// `fsck`: problems remain.
pub const FSCK_PROBLEMS: i32 = 9;

pub const HELP: &str =
    "Exit codes: 0 ok, 1 error, 2 usage, 3 lock held (folder in use / supervisor running), \
4 not found (no society, unknown agent, case or request), 5 invalid input, 6 timed out, 7 check failed, 8 fsck repaired everything, 9 fsck problems remain.";

/// An error that carries its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

pub fn coded(code: i32, message: impl Into<String>) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
        hint: None,
    }
    .into()
}

pub fn coded_hint(code: i32, message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
        hint: Some(hint.into()),
    }
    .into()
}

pub fn classify(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(e) = cause.downcast_ref::<society_runtime::agent::AgentError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<society_runtime::supervisor::SupervisorError>() {
            return match e {
                society_runtime::supervisor::SupervisorError::AlreadyRunning { .. } => LOCKED,
                society_runtime::supervisor::SupervisorError::Config(_) => INVALID,
                _ => ERROR,
            };
        }
        if cause
            .downcast_ref::<society_runtime::config::ConfigError>()
            .is_some()
            || cause.downcast_ref::<society_core::id::IdError>().is_some()
        {
            return INVALID;
        }
        if let Some(e) = cause.downcast_ref::<FormatError>() {
            return match e {
                FormatError::NoSociety { .. } => NOT_FOUND,
                FormatError::RecordTooLarge { .. } | FormatError::UnsupportedFormat { .. } => {
                    INVALID
                }
                _ => ERROR,
            };
        }
        if cause.downcast_ref::<IoError>().is_some() {
            return ERROR;
        }
    }
    ERROR
}

pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(Coded { hint: Some(h), .. }) = cause.downcast_ref::<Coded>() {
            return Some(h.clone());
        }
        if let Some(FormatError::NoSociety { .. }) = cause.downcast_ref::<FormatError>() {
            return Some("run `society init` here, or pass --root DIR / set SOCIETY_ROOT".into());
        }
    }
    None
}
