//! `command`: run a program per message. The envelope, and who the agent is,
//! go to the program's stdin as one JSON document; the program answers with
//! JSON lines of actions on stdout. Any agent CLI can be hosted this way.
//!
//! ```toml
//! brain = { kind = "command", program = "examples/command-agent/agent.py",
//!           args = [], timeout = "30s", env = { MODEL = "small" } }
//! ```
//!
//! Theory of operation: one attempt is one process, started in the agent's
//! `workspace/` and leading its own process group, so a timeout or a stop
//! request can SIGKILL everything it started without touching the agent. The
//! group id goes to the runtime ([`crate::Hooks::child_group`]), which keeps
//! it in `status.json`: if the agent dies while the program runs, the next
//! generation kills the group before it starts. stdout is interpreted only
//! after the program exited with 0, and every line is validated before any
//! `write_file` is performed — here, by the brain, and only inside the
//! workspace. A failed attempt therefore has no effect beyond the files the
//! program wrote itself. The protocol is specified in FORMAT.md ("The
//! command brain protocol").

pub(crate) mod protocol;
pub(crate) mod run;
mod workspace;

use crate::{Action, Brain, BrainError, Context};
use serde::Deserialize;
use serde_json::json;
use society_core::Envelope;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Set in the program's environment to the agent folder's absolute path. The
/// runtime's startup sweep kills a leftover process group only if one of its
/// members carries this marker, so a reused group id is never killed.
pub const FOLDER_ENV: &str = "SOCIETY_AGENT_FOLDER";

/// Set in the program's environment to the agent's id, so that it can run
/// `"$SOCIETY_BIN" memory "$SOCIETY_AGENT" query TEXT -o json` (recall).
pub const AGENT_ENV: &str = "SOCIETY_AGENT";
/// Set in the program's environment to the `society` binary running the agent.
pub const BIN_ENV: &str = "SOCIETY_BIN";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The `command` brain, as configured.
pub struct Command {
    /// As written in the config: used in every error message.
    program: String,
    args: Vec<String>,
    timeout: Duration,
    env: BTreeMap<String, String>,
    pass_env: Vec<String>,
    sandbox: crate::sandbox::Settings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[allow(dead_code)] // "command", already matched by `build`
    kind: String,
    #[serde(default)]
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Variables passed through from the runtime's environment.
    #[serde(default)]
    pass_env: Vec<String>,
    /// The program's sandbox (see [`crate::sandbox`]); read by `Settings::from_brain`.
    #[serde(default)]
    #[allow(dead_code)]
    sandbox: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    society_sandbox: Option<serde_json::Value>,
}

impl Command {
    pub fn from_config(config: &serde_json::Value) -> Result<Command, BrainError> {
        let invalid = |reason: String| BrainError::Config {
            kind: "command".into(),
            reason,
        };
        let cfg: Config =
            serde_json::from_value(config.clone()).map_err(|e| invalid(e.to_string()))?;
        if cfg.program.trim().is_empty() {
            return Err(invalid(
                "`program` is required: the path of the program to run per message".into(),
            ));
        }
        let timeout = match cfg.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| invalid(format!("invalid timeout {text:?}: {e}")))?,
        };
        if timeout.is_zero() {
            return Err(invalid("timeout must be longer than zero".into()));
        }
        crate::sandbox::check_names("env", cfg.env.keys()).map_err(invalid)?;
        crate::sandbox::check_names("pass_env", &cfg.pass_env).map_err(invalid)?;
        let sandbox = crate::sandbox::Settings::from_brain(config).map_err(invalid)?;
        Ok(Command {
            program: cfg.program,
            args: cfg.args,
            timeout,
            env: cfg.env,
            pass_env: cfg.pass_env,
            sandbox,
        })
    }

    /// A program with a `/` in it is a path, relative to the society root (the
    /// directory holding `society.toml`); a bare name is looked up on `PATH`.
    fn resolve(&self, root: &Path) -> PathBuf {
        resolve_program(&self.program, root)
    }

    fn failed(&self, reason: String) -> BrainError {
        BrainError::CommandFailed {
            program: self.program.clone(),
            reason,
        }
    }
}

/// A program with a `/` in it is a path, relative to the society root `root`
/// (the directory holding `society.toml`) unless absolute; a bare name is
/// looked up on `PATH`.
pub(crate) fn resolve_program(program: &str, root: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_absolute() || !program.contains('/') {
        return path.to_path_buf();
    }
    let mut full = root.to_path_buf();
    full.extend(path.components().filter(|c| *c != Component::CurDir));
    full
}

/// The agent folder, absolute and canonical, and the society root above it
/// (`<root>/.society-agent/agent-<id>`).
pub(crate) fn folder_and_root(folder: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let folder = std::path::absolute(folder)?.canonicalize()?;
    let root = folder
        .parent()
        .and_then(Path::parent)
        .unwrap_or(&folder)
        .to_path_buf();
    Ok((folder, root))
}

impl Brain for Command {
    fn handle(&mut self, ctx: &mut Context<'_>, msg: &Envelope) -> Result<Vec<Action>, BrainError> {
        let (folder, root) = folder_and_root(ctx.folder)
            .map_err(|e| self.failed(format!("cannot resolve the agent folder: {e}")))?;
        let workspace = folder.join("workspace");
        // A program started in a linked workspace would work outside the
        // society (the agent does not start with one; this is one swapped in
        // since).
        society_core::confine::check(&workspace).map_err(BrainError::Workspace)?;
        let input = json!({
            "message": msg,
            "agent": ctx.agent,
            "role": ctx.role,
            "folder": folder,
            "workspace": workspace,
            "case": msg.case,
            "attempt": ctx.attempt,
            "generation": ctx.gen,
        });
        let mut stdin = input.to_string().into_bytes();
        stdin.push(b'\n');
        let program = self.resolve(&root);
        let mut env = self.env.clone();
        env.insert(AGENT_ENV.into(), ctx.agent.to_string());
        if let Ok(bin) = std::env::current_exe() {
            env.insert(BIN_ENV.into(), bin.to_string_lossy().into_owned());
        }
        let spec = run::Spec {
            program: run::Program {
                name: &self.program,
                program: &program,
                args: &self.args,
                env: &env,
                pass_env: &self.pass_env,
                folder: &folder,
                workspace: &workspace,
                root: &root,
                sandbox: &self.sandbox,
            },
            input: stdin,
            timeout: self.timeout,
            stdout_max: run::STDOUT_MAX,
            id: msg.id.to_string(),
        };
        let done = run::run(&spec, ctx.hooks).map_err(|e| match e {
            run::RunError::Spawn(source) => BrainError::CommandSpawn {
                program: self.program.clone(),
                source,
            },
            run::RunError::Refused(reason) => self.failed(reason),
            run::RunError::OutputHeld => self.failed(
                "its stdout or stderr stayed open after it exited: a process it \
                 started outside its process group still holds them"
                    .into(),
            ),
        })?;
        record(ctx, msg, &self.program, &done);
        match done.ending {
            run::Ending::TimedOut => {
                return Err(BrainError::CommandTimeout {
                    program: self.program.clone(),
                    timeout: humantime::format_duration(self.timeout).to_string(),
                })
            }
            run::Ending::Stopped => return Err(BrainError::Abandoned),
            run::Ending::Exited => {}
        }
        if !done.status.success() {
            return Err(self.failed(exit_reason(&done)));
        }
        if done.stdout.total > done.stdout.bytes.len() as u64 {
            return Err(self.failed(format!(
                "it wrote {} bytes to stdout, more than the {} accepted",
                done.stdout.total,
                run::STDOUT_MAX
            )));
        }
        let ops =
            protocol::parse(&done.stdout.bytes, msg).map_err(|e| BrainError::CommandOutput {
                program: self.program.clone(),
                line: e.line,
                reason: e.reason,
            })?;
        perform(ctx, msg, &workspace, ops)
    }
}

/// Validates every `write_file`, then performs them and the `remember`s
/// (the n-th `remember` of a message gets the memory id derived from the
/// message and n, so a retry stores nothing twice), then returns the rest.
fn perform(
    ctx: &mut Context<'_>,
    msg: &Envelope,
    workspace: &Path,
    ops: Vec<protocol::Op>,
) -> Result<Vec<Action>, BrainError> {
    let mut targets = Vec::new();
    for op in &ops {
        if let protocol::Op::Write { path, .. } = op {
            targets.push(workspace::Target::check(workspace, path)?);
        }
    }
    let mut targets = targets.into_iter();
    let mut actions = Vec::new();
    let mut remembered = 0;
    for op in ops {
        match op {
            protocol::Op::Act(action) => actions.push(action),
            protocol::Op::Remember(note) => {
                let id = society_core::memory::derive_id(&msg.id, &format!("command-{remembered}"));
                remembered += 1;
                let done = society_core::memory::Store::new(ctx.folder).remember(
                    &id,
                    &note,
                    Some(msg.id),
                )?;
                ctx.hooks.log(
                    "remembered",
                    json!({"id": msg.id, "memory": id,
                        "stored": done == society_core::memory::Remembered::Stored}),
                );
            }
            protocol::Op::Write { path, content } => {
                let target = targets.next().expect("one target per write, checked above");
                target.write(content.as_bytes())?;
                ctx.hooks.log(
                    "file_written",
                    json!({"id": msg.id, "path": path, "bytes": content.len()}),
                );
            }
        }
    }
    Ok(actions)
}

/// `command_stderr` (if any) and `command_exited` in `activity.jsonl`.
fn record(ctx: &mut Context<'_>, msg: &Envelope, program: &str, done: &run::Finished) {
    use std::os::unix::process::ExitStatusExt;
    if done.stderr.total > 0 {
        ctx.hooks.log(
            "command_stderr",
            json!({
                "id": msg.id,
                "pid": done.pid,
                "text": String::from_utf8_lossy(&done.stderr.bytes),
                "bytes": done.stderr.total,
                "truncated": done.stderr.total > done.stderr.bytes.len() as u64,
            }),
        );
    }
    let killed = match done.ending {
        run::Ending::Exited => None,
        run::Ending::TimedOut => Some("timeout"),
        run::Ending::Stopped => Some("stop"),
    };
    ctx.hooks.log(
        "command_exited",
        json!({
            "id": msg.id,
            "program": program,
            "pid": done.pid,
            "code": done.status.code(),
            "signal": done.status.signal(),
            "duration_ms": done.elapsed.as_millis() as u64,
            "killed": killed,
        }),
    );
}

/// "exited with code 2 (stderr: last line)", for a program that failed.
fn exit_reason(done: &run::Finished) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (done.status.code(), done.status.signal()) {
        (Some(code), _) => format!("it exited with code {code}"),
        (None, Some(sig)) => format!("it was killed by signal {sig}"),
        (None, None) => format!("it ended with {}", done.status),
    };
    let text = String::from_utf8_lossy(&done.stderr.bytes);
    match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(last) => {
            let last: String = last.chars().take(200).collect();
            format!("{how} (stderr: {last})")
        }
        None => how,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(config: serde_json::Value) -> String {
        match Command::from_config(&config) {
            Err(e @ BrainError::Config { .. }) => e.to_string(),
            Err(e) => panic!("expected a config error, got {e}"),
            Ok(_) => panic!("expected a config error for {config}"),
        }
    }

    #[test]
    fn config_is_validated_when_the_brain_is_built() {
        let e = config_error(json!({"kind": "command"}));
        assert!(e.contains("`program` is required"), "{e}");
        let e = config_error(json!({"kind": "command", "program": "a", "timeout": "soon"}));
        assert!(e.contains("invalid timeout \"soon\""), "{e}");
        let e = config_error(json!({"kind": "command", "program": "a", "timeout": "0s"}));
        assert!(e.contains("longer than zero"), "{e}");
        let e = config_error(json!({"kind": "command", "program": "a", "argz": []}));
        assert!(e.contains("unknown field `argz`"), "{e}");
        let ok = Command::from_config(&json!({"kind": "command", "program": "./a.py"}));
        let root = Path::new("/srv/team");
        assert_eq!(
            ok.as_ref().map(|c| c.resolve(root)).ok(),
            Some(root.join("a.py"))
        );
        let bare = Command::from_config(&json!({"kind": "command", "program": "python3"}));
        assert_eq!(
            bare.map(|c| c.resolve(root)).ok(),
            Some(PathBuf::from("python3"))
        );
    }
}
