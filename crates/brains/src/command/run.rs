//! One run of the program: spawn it in its own process group, feed stdin,
//! capture stdout and stderr, and wait — heartbeating — until it exits, times
//! out or the agent is asked to stop.
//!
//! Why threads: stdin, stdout and stderr are pipes that must all move at once
//! (a program that writes a lot before reading its input would otherwise
//! deadlock with us), and a blocking `waitid` in a thread wakes us the moment
//! the program ends. The waiter uses `WNOWAIT`, so the leader stays a zombie
//! until we reap it: its pid — the group id — cannot be reused while we
//! SIGKILL the group, which we always do, to take down anything the program
//! left running.

use crate::{sandbox, Hooks};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Most stdout accepted from one run; more fails the attempt.
pub(crate) const STDOUT_MAX: usize = 16 << 20;
/// Largest stderr excerpt kept (and recorded in `activity.jsonl`).
const STDERR_KEEP: usize = 64 << 10;
/// How often we heartbeat and check for a stop request while waiting.
const TICK: Duration = Duration::from_millis(50);
/// How long the pipes may stay open after the whole group is dead.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
const THREAD_STACK: usize = 64 << 10;

pub(crate) struct Spec<'a> {
    pub program: Program<'a>,
    pub input: Vec<u8>,
    pub timeout: Duration,
    /// Most stdout kept ([`Captured::total`] still counts all of it).
    pub stdout_max: usize,
    /// The message id, for the log records.
    pub id: String,
}

/// Every program the brains start — a `command` brain's program, an `llm`
/// brain's own tools and MCP servers — is built here: its working directory
/// (the agent's `workspace/`), its environment (rebuilt from nothing: what
/// the config adds and passes, and the folder marker the sweeps look for),
/// its sandbox ([`crate::sandbox`]). How it is wired (pipes) is the
/// caller's. One place, so that the sandbox and the environment rules apply
/// to all of them alike. `Err`: the program must not run, and why.
pub(crate) fn program_command(
    p: &Program<'_>,
) -> Result<(std::process::Command, sandbox::Jail), String> {
    let mut pass_env = p.sandbox.pass_env.clone();
    pass_env.extend(p.pass_env.iter().cloned());
    let mut env = sandbox::environment(p.workspace, &pass_env, p.env);
    env.insert(
        super::FOLDER_ENV.into(),
        p.folder.to_string_lossy().into_owned(),
    );
    let place = sandbox::Place {
        program: p.program,
        args: p.args,
        folder: p.folder,
        workspace: p.workspace,
        root: p.root,
    };
    sandbox::command(p.sandbox, &place, env, p.name)
}

/// One program to start, as configured and resolved.
pub(crate) struct Program<'a> {
    /// As written in the config, for messages.
    pub name: &'a str,
    pub program: &'a Path,
    pub args: &'a [String],
    /// The config's `env` and the runtime's own variables.
    pub env: &'a BTreeMap<String, String>,
    /// The config's `pass_env` (the sandbox's are added).
    pub pass_env: &'a [String],
    pub folder: &'a Path,
    pub workspace: &'a Path,
    /// The society root: relative sandbox paths are relative to it.
    pub root: &'a Path,
    pub sandbox: &'a sandbox::Settings,
}

pub(crate) enum Ending {
    Exited,
    TimedOut,
    Stopped,
}

/// What a pipe gave: the first bytes, and how many there were in all.
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    pub total: u64,
}

pub(crate) struct Finished {
    pub pid: i32,
    pub ending: Ending,
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
}

pub(crate) enum RunError {
    Spawn(std::io::Error),
    /// The sandbox refused to start it (`mode = "required"` without Landlock).
    Refused(String),
    /// The group is dead but something (outside it) still holds a pipe.
    OutputHeld,
}

pub(crate) fn run(spec: &Spec<'_>, hooks: &mut dyn Hooks) -> Result<Finished, RunError> {
    let (mut cmd, jail) = program_command(&spec.program).map_err(RunError::Refused)?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    let started = Instant::now();
    let pid = child.id() as i32;
    // Before anything else can fail: from here on the group must not outlive us.
    hooks.child_group(Some(pid));
    hooks.log(
        "command_started",
        json!({"id": spec.id, "program": spec.program.name, "path": spec.program.program,
               "pid": pid, "sandbox": jail.summary}),
    );
    let pipes = match start_threads(&mut child, spec.input.clone(), spec.stdout_max) {
        Ok(p) => p,
        Err(e) => {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            hooks.child_group(None);
            return Err(RunError::Spawn(e));
        }
    };
    let deadline = started + spec.timeout;
    let mut ending = Ending::Exited;
    loop {
        let now = Instant::now();
        if now >= deadline {
            ending = Ending::TimedOut;
            break;
        }
        match pipes.exited.recv_timeout((deadline - now).min(TICK)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        hooks.heartbeat();
        if hooks.should_stop() {
            ending = Ending::Stopped;
            break;
        }
    }
    let elapsed = started.elapsed();
    // Everything on a timeout or stop; whatever the program left behind after
    // a normal exit. The leader is not reaped yet, so the group id is ours.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    // The leader is dead or dying: the waiter reports and hangs up.
    while pipes.exited.recv().is_ok() {}
    let status = child.wait();
    // Whatever it started that left the group (`setsid`): the cgroup's
    // members, or the processes carrying the agent's marker.
    let contained = jail.end();
    if contained.any() {
        hooks.log(
            "sandbox_contained",
            json!({"id": spec.id, "program": spec.program.name, "pid": pid,
                   "killed": contained.leftovers,
                   "process_limit_hits": contained.process_limit_hits}),
        );
    }
    hooks.child_group(None);
    let status = status.map_err(RunError::Spawn)?;
    let grace = Instant::now() + OUTPUT_GRACE;
    // No secret the agent knows (keys, secret-named `pass_env` values)
    // goes from a program's output into a file or to a model.
    let stdout = collect(&pipes.stdout, grace)?.scrubbed();
    let stderr = collect(&pipes.stderr, grace)?.scrubbed();
    Ok(Finished {
        pid,
        ending,
        status,
        elapsed,
        stdout,
        stderr,
    })
}

struct Pipes {
    exited: Receiver<()>,
    stdout: Receiver<Captured>,
    stderr: Receiver<Captured>,
}

fn start_threads(
    child: &mut std::process::Child,
    input: Vec<u8>,
    stdout_max: usize,
) -> std::io::Result<Pipes> {
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the child's pipes were not set up"));
    };
    // Not joined: it ends when the program has read everything or closed
    // its stdin (a broken pipe is the program's choice, not an error).
    spawn("command-stdin", move || {
        let _ = stdin.write_all(&input);
    })?;
    let stdout = capture("command-stdout", stdout, stdout_max)?;
    let stderr = capture("command-stderr", stderr, STDERR_KEEP)?;
    let (tx, exited) = mpsc::channel();
    let pid = Pid::from_raw(child.id() as i32);
    spawn("command-wait", move || loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => {
                let _ = tx.send(());
                return;
            }
        }
    })?;
    Ok(Pipes {
        exited,
        stdout,
        stderr,
    })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(f)
        .map(drop)
}

/// Reads a pipe to its end, keeping the first `keep` bytes.
fn capture(
    name: &str,
    mut pipe: impl Read + Send + 'static,
    keep: usize,
) -> std::io::Result<Receiver<Captured>> {
    let (tx, rx) = mpsc::channel();
    spawn(name, move || {
        let mut got = Captured {
            bytes: Vec::new(),
            total: 0,
        };
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    got.total += n as u64;
                    let room = keep.saturating_sub(got.bytes.len());
                    got.bytes.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(got);
    })?;
    Ok(rx)
}

impl Captured {
    /// Known secrets redacted; `total` counts the bytes as redacted.
    fn scrubbed(self) -> Captured {
        let kept = self.bytes.len() as u64;
        let bytes = crate::secrets::scrub_bytes(self.bytes);
        Captured {
            total: self.total - kept + bytes.len() as u64,
            bytes,
        }
    }
}

fn collect(rx: &Receiver<Captured>, until: Instant) -> Result<Captured, RunError> {
    rx.recv_timeout(until.saturating_duration_since(Instant::now()))
        .map_err(|_| RunError::OutputHeld)
}
