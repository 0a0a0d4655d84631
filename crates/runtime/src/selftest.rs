//! The self-test: scenarios that prove, with real processes in scratch
//! societies under the system temp dir (never the user's), that the runtime
//! still keeps its promises. `society selftest` runs them every night from
//! cron, and the integration tests run the same functions.
//!
//! A check returns its evidence, or a [`Failed`] saying which expectation
//! was not met; nothing here panics on purpose, so a failed check is a line
//! of the report and never hides a panic elsewhere. Each check builds its
//! own [`Scratch`] society, and ends with `fsck` on it.

mod checks;
mod scratch;

pub use checks::ALL;
pub use scratch::{processes_mentioning, unique_dir, Scratch};

use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    /// An expectation of the check did not hold.
    #[error("{0}")]
    Unmet(String),
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    #[error("`society {args}` failed with {status}; stdout: {stdout}; stderr: {stderr}")]
    Command {
        args: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Failed {
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Failed {
        Failed::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a check proves, and its code.
pub struct Check {
    pub name: &'static str,
    pub promise: &'static str,
    pub run: fn(&Env) -> Result<String, Failed>,
}

/// What every check is given.
pub struct Env {
    /// The `society` binary the scratch societies run.
    pub exe: PathBuf,
    /// The short version: fewer messages, kills and agents.
    pub quick: bool,
}

impl Env {
    pub fn scratch(&self, toml: &str) -> Result<Scratch, Failed> {
        Scratch::new(&self.exe, toml)
    }

    pub(crate) fn pick(&self, quick: usize, full: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// One check's outcome (a line of `society selftest --json`'s `checks`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub promise: &'static str,
    pub passed: bool,
    pub ms: u64,
    pub evidence: String,
}

impl Check {
    /// Runs the check and times it.
    pub fn run(&self, env: &Env) -> CheckResult {
        let t = Instant::now();
        let (passed, evidence) = match (self.run)(env) {
            Ok(evidence) => (true, evidence),
            Err(e) => (false, e.to_string()),
        };
        CheckResult {
            name: self.name,
            promise: self.promise,
            passed,
            ms: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
            evidence,
        }
    }
}

/// The check called `name`.
pub fn check(name: &str) -> Option<&'static Check> {
    ALL.iter().find(|c| c.name == name)
}

/// Polls `f` every 10 ms until it returns `Some`, or fails after `timeout`
/// naming what was awaited.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, Failed> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Failed::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every complete JSON line of a file (invalid lines are skipped; a missing
/// file has none).
pub fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    text[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// Milliseconds, for evidence strings.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
