//! Error types of the format layer. Every variant names the path it concerns.

use std::path::PathBuf;

/// An I/O operation on a society file failed.
///
/// Its message is "failed to {op} {path}", the cause in its source — except
/// for a symbolic link refused ([`crate::confine::Symlinked`]): that reason
/// is said in the message itself, since it is what the reader must act on
/// and the texts the runtime records (escalations, `status`, dead letters)
/// carry only the message.
#[derive(Debug)]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError {
            op,
            path: path.into(),
            source,
        }
    }

    /// The symbolic link this failure is the refusal of, if it is one.
    pub fn symlinked(&self) -> Option<&crate::confine::Symlinked> {
        crate::confine::Symlinked::of(&self.source)
    }
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failed to {} {}", self.op, self.path.display())?;
        match self.symlinked() {
            Some(link) if link.link == self.path => write!(f, ": it is {}", link.reason()),
            Some(link) => write!(f, ": {link}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // A refused link is said in the message already.
        match self.symlinked() {
            Some(_) => None,
            None => Some(&self.source),
        }
    }
}

/// Something in the society's files is not what the format says it must be.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{} is not valid JSON for {what}: {source}", path.display())]
    Json {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("record of {size} bytes for {} exceeds max_record ({max} bytes); write big payloads to workspace/ and send the path", path.display())]
    RecordTooLarge {
        path: PathBuf,
        size: usize,
        max: usize,
    },
    #[error("{} has format {found}; this society binary reads formats {} to {supported} (a newer society wrote it: use that binary)", path.display(), crate::OLDEST_FORMAT)]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("no society found: no .society-agent/ in {} or any parent; run `society init` or pass --root", start.display())]
    NoSociety { start: PathBuf },
    /// The root was given (`--root`, `SOCIETY_ROOT`) and holds no society.
    #[error("no society in {} (given by {given_by}): it holds no .society-agent/{}", root.display(), if *.is_state_dir { "; it is itself a society's .society-agent/, and the root is the directory holding it" } else { "" })]
    NoSocietyAt {
        root: PathBuf,
        given_by: &'static str,
        /// The path given is a `.society-agent/` itself.
        is_state_dir: bool,
    },
}

impl FormatError {
    /// The symbolic link this failure is the refusal of, if it is one.
    pub fn symlinked(&self) -> Option<&crate::confine::Symlinked> {
        match self {
            FormatError::Io(e) => e.symlinked(),
            _ => None,
        }
    }
}

/// Shorthand used throughout the crate.
pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |source| IoError::new(op, path, source)
}
