//! The mapping from errors to exit codes (the table itself is
//! `society_runtime::exit::Code`, shared with `supervise` and `agent-run`).
//! Documented in README.md.

use society_core::{FormatError, IoError};
use society_runtime::client::ClientError;

pub use society_runtime::exit::Code;

pub const HELP: &str =
    "Exit codes: 0 ok, 1 error, 2 usage, 3 in use (agent folder locked, supervisor running, demo dir taken), \
4 not found (no society, unknown agent, case or request), 5 invalid input or state, 6 timed out, 7 check failed, \
8 fsck repaired everything, 9 fsck problems remain, 10 conflict with the current state.";

/// An error that carries its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
}

pub fn coded(code: Code, message: impl Into<String>) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
        hint: None,
    }
    .into()
}

pub fn coded_hint(
    code: Code,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
        hint: Some(hint.into()),
    }
    .into()
}

/// The error's chain, with the error a transparent [`ClientError`] wraps
/// (a format or I/O error) in its place: `source()` skips it.
fn causes(err: &anyhow::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    for cause in err.chain() {
        match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Format(e)) => out.push(e),
            Some(ClientError::Io(e)) => out.push(e),
            _ => out.push(cause),
        }
    }
    out
}

pub fn classify(err: &anyhow::Error) -> Code {
    for cause in causes(err) {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<society_runtime::agent::AgentError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<society_runtime::supervisor::SupervisorError>() {
            return e.exit_code();
        }
        if cause
            .downcast_ref::<society_runtime::config::ConfigError>()
            .is_some()
            || cause.downcast_ref::<society_core::id::IdError>().is_some()
        {
            return Code::Invalid;
        }
        if let Some(e) = cause.downcast_ref::<FormatError>() {
            // A corrupt state file (format.json, a checkpoint) is invalid state.
            return society_runtime::exit::format_code(e);
        }
        if let Some(e) = cause.downcast_ref::<IoError>() {
            // A symbolic link refused (`confine`) is invalid state.
            return if e.symlinked().is_some() {
                Code::Invalid
            } else {
                Code::Error
            };
        }
    }
    Code::Error
}

pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in causes(err) {
        if let Some(Coded { hint: Some(h), .. }) = cause.downcast_ref::<Coded>() {
            return Some(h.clone());
        }
        if let Some(h) = cause
            .downcast_ref::<ClientError>()
            .and_then(ClientError::hint)
        {
            return Some(h);
        }
        match cause.downcast_ref::<FormatError>() {
            Some(FormatError::NoSociety { .. }) => {
                return Some(
                    "run `society init` here, or pass --root DIR / set SOCIETY_ROOT".into(),
                )
            }
            Some(FormatError::NoSocietyAt {
                root,
                is_state_dir: true,
                ..
            }) => {
                let parent = root.parent().unwrap_or(root);
                return Some(format!("use --root {}", parent.display()));
            }
            Some(FormatError::NoSocietyAt { root, .. }) => {
                return Some(format!(
                    "`society init {}` creates one there; without --root or SOCIETY_ROOT the nearest one above the current directory is used",
                    root.display()
                ))
            }
            _ => {}
        }
        match cause.downcast_ref::<society_runtime::supervisor::SupervisorError>() {
            Some(society_runtime::supervisor::SupervisorError::Checkpoint { .. }) => {
                return Some(
                    "`society fsck --repair` rebuilds the checkpoint from what the files show was routed"
                        .into(),
                )
            }
            Some(society_runtime::supervisor::SupervisorError::AlreadyRunning { root, .. }) => {
                return Some(format!(
                    "one supervisor per society: `society status` shows it, `society --root {} down` stops it",
                    root.display()
                ))
            }
            _ => {}
        }
        if let Some(FormatError::Json {
            what: "format.json",
            path,
            ..
        }) = cause.downcast_ref::<FormatError>()
        {
            return Some(format!(
                "{} must read {{\"format\": 1}}; restore it (for example from a backup) and run `society fsck`",
                path.display()
            ));
        }
        let io = cause
            .downcast_ref::<IoError>()
            .or(match cause.downcast_ref::<FormatError>() {
                Some(FormatError::Io(e)) => Some(e),
                _ => None,
            });
        if let Some(io) = io.filter(|io| io.source.raw_os_error() == Some(nix::libc::ENOSPC)) {
            return Some(format!(
                "the disk holding {} is full: free space and try again; nothing was written",
                io.path.display()
            ));
        }
    }
    None
}
