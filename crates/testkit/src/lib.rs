//! Test kit for driving the real `society` binary: a society in a temp dir,
//! polling waits with deadlines, JSONL readers, and cleanup that leaves no
//! process behind even when a test panics (every process whose command line
//! mentions the temp root is SIGKILLed on drop).
//!
//! [`fuzz`] holds what the fuzz targets in `fuzz/` check, shared with the
//! stable test that replays their seeds and regressions.

#![allow(clippy::unwrap_used)]

pub mod fake_llm;
pub mod fuzz;

use serde_json::Value;
use society_core::Layout;
use society_runtime::selftest::{self, Scratch};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub use society_runtime::selftest::{processes_mentioning, records};

/// Polls `f` every few milliseconds until it returns `Some`, or panics after
/// `timeout` naming `what` was awaited.
pub fn wait_until<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    match selftest::wait_until(timeout, what, f) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// A society in a temporary directory: the self-test's [`Scratch`], whose
/// failures are panics here (a failed test, with the reason).
pub struct Society {
    inner: Scratch,
}

fn ok<T>(r: Result<T, selftest::Failed>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

impl Society {
    /// `society init` in a fresh temp dir, then writes `society_toml`.
    pub fn new(bin: impl Into<PathBuf>, society_toml: &str) -> Society {
        let s = Society {
            inner: ok(Scratch::empty(bin, "society-test-")),
        };
        s.ok(&["init"]);
        std::fs::write(s.root().join("society.toml"), society_toml).unwrap();
        s
    }

    /// A copy of a checked-in society tree (e.g. `fixtures/v1-basic`).
    pub fn from_fixture(bin: impl Into<PathBuf>, fixture: &Path) -> Society {
        Society {
            inner: ok(Scratch::copy_of(bin, fixture)),
        }
    }

    pub fn root(&self) -> &Path {
        self.inner.root()
    }

    pub fn layout(&self) -> Layout {
        self.inner.layout()
    }

    pub fn agent(&self, id: &str) -> society_core::AgentPaths {
        self.inner.agent(id)
    }

    pub fn bin(&self) -> &Path {
        self.inner.exe()
    }

    /// A `society --root ROOT ...` command, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        self.inner.command(args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        ok(self.inner.run(args))
    }

    /// Runs and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.inner.ok(args))
    }

    /// Starts `society supervise` in the foreground as our child and waits until it is ready.
    pub fn start_supervisor(&mut self) -> u32 {
        ok(self.inner.start_supervisor())
    }

    /// [`Society::start_supervisor`] with extra environment variables, which
    /// the agents it starts inherit (e.g. an API key).
    pub fn start_supervisor_with(&mut self, env: &[(&str, &str)]) -> u32 {
        ok(self.inner.start_supervisor_with(env))
    }

    /// SIGKILLs the foreground supervisor started by [`Society::start_supervisor`].
    pub fn kill_supervisor(&mut self) {
        self.inner.kill_supervisor();
    }

    /// Has the foreground supervisor exited (crashed)? Reaps it if so.
    pub fn supervisor_exited(&mut self) -> bool {
        self.inner.supervisor_exited()
    }

    /// Sends SIGTERM to the foreground supervisor and waits for it to exit.
    pub fn stop_supervisor(&mut self) -> std::process::ExitStatus {
        ok(self.inner.stop_supervisor())
    }

    /// The pid holding an agent's lock, if any.
    pub fn agent_pid(&self, id: &str) -> Option<u32> {
        ok(self.inner.agent_pid(id))
    }

    /// Agent `id`'s row of `society status ID --json`.
    pub fn status(&self, id: &str) -> Value {
        ok(self.inner.status(id))
    }

    /// Waits until `society status ID --json` shows `state`.
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        ok(self.inner.wait_state(id, state, timeout))
    }

    /// Pids of every live process whose command line mentions this society's root.
    pub fn processes(&self) -> Vec<i32> {
        self.inner.processes()
    }
}
