//! Test kit for driving the real `society` binary: a society in a temp dir,
//! polling waits with deadlines, JSONL readers, and cleanup that leaves no
//! process behind even when a test panics (every process whose command line
//! mentions the temp root is SIGKILLed on drop).

#![allow(clippy::unwrap_used)]

pub mod fake_llm;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::lock::{self, LockState};
use society_core::{AgentId, Layout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Polls `f` every few milliseconds until it returns `Some`, or panics after
/// `timeout` naming `what` was awaited.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every complete JSON line of a file (invalid lines are skipped).
pub fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap_or_default();
    let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    text[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// A society in a temporary directory.
pub struct Society {
    dir: tempfile::TempDir,
    bin: PathBuf,
    supervisor: Option<Child>,
}

impl Society {
    /// `society init` in a fresh temp dir, then writes `society_toml`.
    pub fn new(bin: impl Into<PathBuf>, society_toml: &str) -> Society {
        let dir = tempfile::Builder::new()
            .prefix("society-test-")
            .tempdir()
            .unwrap();
        let s = Society {
            dir,
            bin: bin.into(),
            supervisor: None,
        };
        s.ok(&["init"]);
        std::fs::write(s.root().join("society.toml"), society_toml).unwrap();
        s
    }

    /// A copy of a checked-in society tree (e.g. `fixtures/v1-basic`).
    pub fn from_fixture(bin: impl Into<PathBuf>, fixture: &Path) -> Society {
        let dir = tempfile::Builder::new()
            .prefix("society-test-")
            .tempdir()
            .unwrap();
        copy_tree(fixture, dir.path());
        Society {
            dir,
            bin: bin.into(),
            supervisor: None,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn layout(&self) -> Layout {
        Layout::at(self.root())
    }

    pub fn agent(&self, id: &str) -> society_core::AgentPaths {
        self.layout().agent(&AgentId::new(id).unwrap())
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A `society --root ROOT ...` command, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("SOCIETY_ROOT")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "society {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts `society supervise` in the foreground as our child and waits until it is ready.
    pub fn start_supervisor(&mut self) -> u32 {
        self.start_supervisor_with(&[])
    }

    /// [`start_supervisor`] with extra environment variables, which the
    /// agents it starts inherit (e.g. an API key).
    pub fn start_supervisor_with(&mut self, env: &[(&str, &str)]) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout().daemon_log())
            .unwrap();
        let child = self
            .command(&["supervise"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.supervisor = Some(child);
        let status = self.layout().supervisor_status();
        wait_until(
            Duration::from_secs(20),
            "the supervisor to be ready",
            || {
                let v: Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
                (v["pid"] == pid && v["state"] == "running").then_some(())
            },
        );
        pid
    }

    /// SIGKILLs the foreground supervisor started by [`start_supervisor`].
    pub fn kill_supervisor(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Has the foreground supervisor exited (crashed)? Reaps it if so.
    pub fn supervisor_exited(&mut self) -> bool {
        let exited = self
            .supervisor
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some());
        if exited {
            self.supervisor = None;
        }
        exited
    }

    /// Sends SIGTERM to the foreground supervisor and waits for it to exit.
    pub fn stop_supervisor(&mut self) -> std::process::ExitStatus {
        let mut child = self.supervisor.take().expect("a foreground supervisor");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "supervisor did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The pid holding an agent's lock, if any.
    pub fn agent_pid(&self, id: &str) -> Option<u32> {
        match lock::probe(&self.agent(id).lock()).unwrap() {
            LockState::Held(info) => info.map(|i| i.pid),
            LockState::Free => None,
        }
    }

    /// A field of `society status ID --json`.
    pub fn status(&self, id: &str) -> Value {
        let out = self.ok(&["status", id, "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["agents"][0].clone()
    }

    /// Waits until `society status ID --json` shows `state`.
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        wait_until(timeout, &format!("agent {id} to be {state}"), || {
            let row = self.status(id);
            (row["state"] == state).then_some(row)
        })
    }

    /// Pids of every live process whose command line mentions this society's root.
    pub fn processes(&self) -> Vec<i32> {
        processes_mentioning(self.root())
    }
}

impl Drop for Society {
    fn drop(&mut self) {
        self.kill_supervisor();
        for pid in processes_mentioning(self.root()) {
            // Agents lead their own process group: take the group with them.
            let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Locks held by children of killed agents would keep files busy; nothing else to do.
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Pids (other than ours) whose `/proc/PID/cmdline` contains `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<i32> {
    let needle = needle.as_os_str().as_encoded_bytes().to_vec();
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        // Zombies have an empty cmdline: they are gone already.
        if cmd.windows(needle.len()).any(|w| w == needle.as_slice()) {
            pids.push(pid);
        }
    }
    pids
}
