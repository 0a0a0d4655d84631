//! A scratch society: a fresh directory under the system temp dir, driven
//! through the real `society` binary as a user would, and left behind with
//! nothing running and nothing on disk. Every step returns an error instead
//! of panicking, so a self-test check that fails is a report, not a crash.

use super::{wait_until, Failed};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use society_core::lock::{self, LockState};
use society_core::{AgentPaths, Layout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A society in a directory of its own, removed on drop together with every
/// process whose command line names it.
pub struct Scratch {
    root: PathBuf,
    exe: PathBuf,
    supervisor: Option<Child>,
}

impl Scratch {
    /// `society init` in a new directory, then `society_toml` written over
    /// the commented default.
    pub fn new(exe: impl Into<PathBuf>, society_toml: &str) -> Result<Scratch, Failed> {
        let s = Scratch::empty(exe, "society-scratch-")?;
        s.ok(&["init"])?;
        let toml = s.root.join("society.toml");
        std::fs::write(&toml, society_toml).map_err(|e| Failed::io("write", &toml, e))?;
        Ok(s)
    }

    /// A copy of a society tree (e.g. a checked-in fixture).
    pub fn copy_of(exe: impl Into<PathBuf>, tree: &Path) -> Result<Scratch, Failed> {
        let s = Scratch::empty(exe, "society-scratch-")?;
        copy_tree(tree, &s.root)?;
        Ok(s)
    }

    /// An empty scratch directory named `PREFIX` and a unique suffix.
    pub fn empty(exe: impl Into<PathBuf>, prefix: &str) -> Result<Scratch, Failed> {
        // What this process writes into the society is society's, as its own
        // processes make it: the owner's alone (`society` sets the same umask).
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        Ok(Scratch {
            root: unique_dir(prefix)?,
            exe: exe.into(),
            supervisor: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }

    pub fn layout(&self) -> Layout {
        Layout::at(&self.root)
    }

    /// The folder of agent `id` (not checked: a scratch society's ids are
    /// the caller's own literals).
    pub fn agent(&self, id: &str) -> AgentPaths {
        let dir = format!("{}{id}", society_core::layout::names::AGENT_DIR_PREFIX);
        AgentPaths::new(self.layout().state_dir().join(dir))
    }

    /// A `society --root ROOT ARGS` command, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .env_remove("SOCIETY_ROOT")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<Output, Failed> {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failed::io("run", &self.exe, e))
    }

    /// Runs and requires success; returns the trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String, Failed> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(Failed::Command {
                args: args.join(" "),
                status: out.status.to_string(),
                stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `society ARGS --json`, parsed.
    pub fn json(&self, args: &[&str]) -> Result<Value, Failed> {
        let out = self.ok(args)?;
        serde_json::from_str(&out)
            .map_err(|e| Failed::Unmet(format!("society {args:?} printed no JSON ({e}): {out}")))
    }

    /// Starts `society supervise` in the foreground as our child, and waits
    /// until it is ready.
    pub fn start_supervisor(&mut self) -> Result<u32, Failed> {
        self.start_supervisor_with(&[])
    }

    /// [`Scratch::start_supervisor`] with extra environment variables, which
    /// the agents it starts inherit (e.g. an API key).
    pub fn start_supervisor_with(&mut self, env: &[(&str, &str)]) -> Result<u32, Failed> {
        let log_path = self.layout().daemon_log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Failed::io("open", &log_path, e))?;
        let child = self
            .command(&["supervise"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| Failed::io("start", &self.exe, e))?;
        let pid = child.id();
        self.supervisor = Some(child);
        let status = self.layout().supervisor_status();
        // A supervisor that exits at start is said at once, with its log;
        // one that is not ready in time is said with its log too.
        let log_tail = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        let ready = wait_until(
            Duration::from_secs(20),
            "the supervisor to be ready",
            || {
                if let Some(exit) = self
                    .supervisor
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    return Some(Err(exit));
                }
                let v: Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
                (v["pid"] == pid && v["state"] == "running").then_some(Ok(()))
            },
        );
        match ready {
            Ok(Ok(())) => Ok(pid),
            Ok(Err(exit)) => {
                self.supervisor = None;
                Err(Failed::Unmet(format!(
                    "the supervisor exited at start ({exit}); daemon.log ends:\n{}",
                    log_tail()
                )))
            }
            Err(e) => Err(Failed::Unmet(format!(
                "{e}; status.json: {}; daemon.log ends:\n{}",
                std::fs::read_to_string(&status).unwrap_or_default(),
                log_tail()
            ))),
        }
    }

    /// SIGKILLs the foreground supervisor, if one runs.
    pub fn kill_supervisor(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Has the foreground supervisor exited? Reaps it if so.
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

    /// SIGTERM to the foreground supervisor; waits (30 s) for it to exit.
    pub fn stop_supervisor(&mut self) -> Result<ExitStatus, Failed> {
        let Some(mut child) = self.supervisor.take() else {
            return Err(Failed::Unmet("no foreground supervisor to stop".into()));
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failed::Timeout {
                        what: "the supervisor to exit after SIGTERM".into(),
                        timeout: Duration::from_secs(30),
                    });
                }
                Err(e) => return Err(Failed::io("wait for", &self.exe, e)),
            }
        }
    }

    /// The pid holding an agent's lock, if it is held and names one.
    pub fn agent_pid(&self, id: &str) -> Result<Option<u32>, Failed> {
        let path = self.agent(id).lock();
        match lock::probe(&path) {
            Ok(LockState::Held(info)) => Ok(info.map(|i| i.pid)),
            Ok(LockState::Free) => Ok(None),
            Err(e) => Err(Failed::Unmet(format!(
                "cannot probe {}: {e}",
                path.display()
            ))),
        }
    }

    /// Agent `id`'s row of `society status ID --json`.
    pub fn status(&self, id: &str) -> Result<Value, Failed> {
        Ok(self.json(&["status", id, "--json"])?["agents"][0].clone())
    }

    /// Waits until `society status ID --json` shows `state`; returns the row.
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Result<Value, Failed> {
        wait_until(timeout, &format!("agent {id} to be {state}"), || {
            let row = self.status(id).ok()?;
            (row["state"] == state).then_some(row)
        })
    }

    /// Pids of every live process whose command line names this society.
    pub fn processes(&self) -> Vec<i32> {
        processes_mentioning(&self.root)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.kill_supervisor();
        for pid in processes_mentioning(&self.root) {
            // Agents lead their own process group: take the group with them.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Creates `TEMP/PREFIX<suffix>`, a directory nobody else has: the suffix
/// has a fixed width, so no scratch root is a prefix of another (cleanup
/// finds processes by the root in their command line).
pub fn unique_dir(prefix: &str) -> Result<PathBuf, Failed> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{:08x}{n:08x}{nanos:08x}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Failed::io("create", &dir, e)),
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), Failed> {
    std::fs::create_dir_all(to).map_err(|e| Failed::io("create", to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Failed::io("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Failed::io("read", from, e))?;
        let target = to.join(entry.file_name());
        let is_dir = entry
            .file_type()
            .map_err(|e| Failed::io("stat", &entry.path(), e))?
            .is_dir();
        if is_dir {
            copy_tree(&entry.path(), &target)?;
        } else {
            // Content only: `copy` would keep the source's (checked-out) mode.
            let bytes =
                std::fs::read(entry.path()).map_err(|e| Failed::io("read", &entry.path(), e))?;
            std::fs::write(&target, bytes).map_err(|e| Failed::io("write", &target, e))?;
        }
    }
    Ok(())
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
