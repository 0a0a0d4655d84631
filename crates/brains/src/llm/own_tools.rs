//! Own tools: programs an agent's brain table declares as tools
//! (`[[agent.brain.tools]]`, FORMAT.md "Own tools").
//!
//! A call runs the program the way the `command` brain runs its program
//! ([`crate::command::run`]): in the agent's `workspace/`, leading its own
//! process group (recorded in `status.json`, so a replacement process kills
//! what a killed one left running), heartbeating and watching for a stop
//! request while it runs; a timeout or a stop SIGKILLs the whole group. The
//! call's arguments are its stdin (one JSON object and a newline), its
//! stdout is the result; a non-zero exit, a timeout or a failure to start
//! is a failed call whose result says so (with the end of stderr).
//!
//! The program learns which call it serves from `SOCIETY_TOOL_CALL_ID`,
//! which stays the same when an interrupted call is run again (see
//! [`OnInterrupt`]): a tool with effects can use it as an idempotency key.

use super::toolbox::Invocation;
use super::tools::{Definition, Outcome, BUILT_IN};
use crate::command::run;
use crate::Hooks;
use serde::Deserialize;
use serde_json::{json, Value};
use society_core::time::duration_str;
use std::collections::BTreeMap;
use std::time::Duration;

/// The call's idempotency key: `<message id>-<step>-<model's call id>`.
pub const CALL_ID_ENV: &str = "SOCIETY_TOOL_CALL_ID";
/// The tool's name, as declared.
pub const NAME_ENV: &str = "SOCIETY_TOOL_NAME";
/// 1 for the first run of a call, 2 for its re-run after an interruption, ...
pub const RUN_ENV: &str = "SOCIETY_TOOL_RUN";
/// The agent's id.
pub const AGENT_ENV: &str = "SOCIETY_AGENT_ID";

/// Longest end of stderr a failed call's result carries.
const STDERR_TAIL: usize = 2000;

/// What a call that was started but has no recorded result does when the
/// conversation resumes (after a crash, a SIGKILL or a stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// Run it again, with the same call id (at-least-once; the id is the
    /// idempotency key). The default of own tools.
    Rerun,
    /// Do not run it again: its result tells the model the call was
    /// interrupted and may or may not have taken effect. The default of
    /// MCP servers.
    Report,
}

impl OnInterrupt {
    pub fn name(self) -> &'static str {
        match self {
            OnInterrupt::Rerun => "rerun",
            OnInterrupt::Report => "report",
        }
    }
}

/// One `[[agent.brain.tools]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnTool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON schema of the arguments: an object schema.
    #[serde(default = "empty_schema")]
    pub parameters: Value,
    /// Program and arguments. A program with a `/` is relative to the
    /// society root; a bare name is looked up on `PATH`.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_timeout", with = "duration_str")]
    pub timeout: Duration,
    /// Bytes of stdout kept; the rest is cut, with a note saying so.
    #[serde(default = "default_max_output")]
    pub max_output: usize,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables passed through from the runtime's environment.
    #[serde(default)]
    pub pass_env: Vec<String>,
    #[serde(default = "rerun")]
    pub on_interrupt: OnInterrupt,
    /// The brain's sandbox settings (filled in by `LlmConfig::parse`).
    #[serde(skip)]
    pub sandbox: crate::sandbox::Settings,
}

fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn default_max_output() -> usize {
    64 * 1024
}
fn rerun() -> OnInterrupt {
    OnInterrupt::Rerun
}

/// `[a-zA-Z0-9_-]{1,max}`: what both providers accept as a tool name.
pub(super) fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Environment variable names a program can be given or passed.
pub(super) fn check_env(
    what: &str,
    env: &BTreeMap<String, String>,
    pass_env: &[String],
) -> Result<(), String> {
    crate::sandbox::check_names(&format!("{what}: env"), env.keys())?;
    crate::sandbox::check_names(&format!("{what}: pass_env"), pass_env)
}

/// Validates every declared tool; says which one and why when one is wrong.
pub fn check(tools: &[OwnTool]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for t in tools {
        let what = format!("tool {:?}", t.name);
        if !valid_name(&t.name, 64) {
            return Err(format!(
                "{what}: a tool name must match [a-zA-Z0-9_-]{{1,64}}"
            ));
        }
        if t.name.contains("__") {
            return Err(format!(
                "{what}: `__` is reserved for MCP tools (<server>__<tool>)"
            ));
        }
        if BUILT_IN.contains(&t.name.as_str()) {
            return Err(format!(
                "{what} clashes with the built-in tool of that name (built-in: {})",
                BUILT_IN.join(", ")
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(format!("{what} is declared twice"));
        }
        if t.parameters.get("type").and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "{what}: `parameters` must be a JSON schema of type \"object\", e.g. {{ type = \"object\", properties = {{ text = {{ type = \"string\" }} }} }}"
            ));
        }
        if t.parameters
            .get("properties")
            .is_some_and(|p| !p.is_object())
        {
            return Err(format!("{what}: `parameters.properties` must be a table"));
        }
        if t.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(format!(
                "{what}: `command` must name a program, e.g. command = [\"python3\", \"tool.py\"]"
            ));
        }
        if t.timeout.is_zero() {
            return Err(format!("{what}: `timeout` must be longer than zero"));
        }
        if t.max_output == 0 {
            return Err(format!("{what}: `max_output` must be at least 1 byte"));
        }
        check_env(&what, &t.env, &t.pass_env)?;
    }
    Ok(())
}

impl OwnTool {
    pub fn definition(&self) -> Definition {
        Definition {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }

    /// Runs the program for `call`. `None`: the agent is stopping (the
    /// program's group was killed; the call has no result).
    pub fn run(&self, inv: &Invocation<'_>, hooks: &mut dyn Hooks) -> Option<Outcome> {
        let Invocation {
            call,
            call_id,
            run: run_no,
            agent,
            msg,
            folder,
        } = *inv;
        let failed = |result: String| Some(Outcome { result, ok: false });
        let (folder, root) = match crate::command::folder_and_root(folder) {
            Ok(f) => f,
            Err(e) => return failed(format!("cannot resolve the agent folder: {e}")),
        };
        let workspace = folder.join("workspace");
        let configured = &self.command[0];
        let program = crate::command::resolve_program(configured, &root);
        let mut env = self.env.clone();
        env.insert(CALL_ID_ENV.into(), call_id.into());
        env.insert(NAME_ENV.into(), self.name.clone());
        env.insert(RUN_ENV.into(), run_no.to_string());
        env.insert(AGENT_ENV.into(), agent.into());
        let mut input = serde_json::to_vec(&call.args).expect("a JSON value always serialises");
        input.push(b'\n');
        let spec = run::Spec {
            program: run::Program {
                name: configured,
                program: &program,
                args: &self.command[1..],
                env: &env,
                pass_env: &self.pass_env,
                folder: &folder,
                workspace: &workspace,
                root: &root,
                sandbox: &self.sandbox,
            },
            input,
            timeout: self.timeout,
            stdout_max: self.max_output,
            id: msg.into(),
        };
        let done = match run::run(&spec, hooks) {
            Ok(done) => done,
            Err(run::RunError::Spawn(e)) => {
                return failed(format!("could not start {configured}: {e}"))
            }
            Err(run::RunError::Refused(reason)) => return failed(reason),
            Err(run::RunError::OutputHeld) => {
                return failed(
                    "its stdout or stderr stayed open after it exited: a process it started \
                     outside its process group still holds them"
                        .into(),
                )
            }
        };
        let stderr = stderr_tail(&done.stderr.bytes);
        match done.ending {
            run::Ending::Stopped => return None,
            run::Ending::TimedOut => {
                return failed(format!(
                    "timed out after {}: its process group was killed{stderr}",
                    humantime::format_duration(self.timeout)
                ))
            }
            run::Ending::Exited => {}
        }
        if !done.status.success() {
            use std::os::unix::process::ExitStatusExt;
            let how = match (done.status.code(), done.status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                (None, None) => format!("ended with {}", done.status),
            };
            return failed(format!("the tool {how}{stderr}"));
        }
        let mut result = String::from_utf8_lossy(&done.stdout.bytes).into_owned();
        let kept = done.stdout.bytes.len() as u64;
        if done.stdout.total > kept {
            result.push_str(&format!(
                "\n[output cut: the tool wrote {} bytes, the first {kept} are shown (max_output)]",
                done.stdout.total
            ));
        }
        Some(Outcome { result, ok: true })
    }
}

/// "\nstderr: <its end>", or nothing for an empty stderr.
fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let mut start = text.len().saturating_sub(STDERR_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = if start > 0 { "…" } else { "" };
    format!("\nstderr: {cut}{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(v: Value) -> Result<Vec<OwnTool>, String> {
        let t: Vec<OwnTool> = serde_json::from_value(v).map_err(|e| e.to_string())?;
        check(&t)?;
        Ok(t)
    }

    #[test]
    fn declared_tools_are_validated() {
        let ok = tools(json!([{"name": "word_count", "command": ["wc"]}])).expect("valid");
        assert_eq!(ok[0].timeout, Duration::from_secs(30));
        assert_eq!(ok[0].max_output, 65536);
        assert_eq!(ok[0].on_interrupt, OnInterrupt::Rerun);
        assert_eq!(ok[0].parameters["type"], "object");
        for (bad, says) in [
            (
                json!([{"name": "a b", "command": ["x"]}]),
                "must match [a-zA-Z0-9_-]{1,64}",
            ),
            (
                json!([{"name": "x".repeat(65), "command": ["x"]}]),
                "must match",
            ),
            (
                json!([{"name": "fs__read", "command": ["x"]}]),
                "reserved for MCP",
            ),
            (
                json!([{"name": "reply", "command": ["x"]}]),
                "clashes with the built-in tool",
            ),
            (
                json!([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]),
                "declared twice",
            ),
            (
                json!([{"name": "a", "command": ["x"], "parameters": {"type": "string"}}]),
                "of type \"object\"",
            ),
            (
                json!([{"name": "a", "command": ["x"], "parameters": {"type": "object", "properties": 3}}]),
                "must be a table",
            ),
            (
                json!([{"name": "a", "command": []}]),
                "`command` must name a program",
            ),
            (json!([{"name": "a"}]), "`command` must name a program"),
            (
                json!([{"name": "a", "command": ["x"], "timeout": "0s"}]),
                "longer than zero",
            ),
            (
                json!([{"name": "a", "command": ["x"], "timeout": "soon"}]),
                "invalid duration",
            ),
            (
                json!([{"name": "a", "command": ["x"], "max_output": 0}]),
                "at least 1 byte",
            ),
            (
                json!([{"name": "a", "command": ["x"], "env": {"A=B": "c"}}]),
                "invalid environment variable",
            ),
            (
                json!([{"name": "a", "command": ["x"], "on_interrupt": "maybe"}]),
                "unknown variant",
            ),
            (
                json!([{"name": "a", "command": ["x"], "comand": ["x"]}]),
                "unknown field `comand`",
            ),
        ] {
            match tools(bad.clone()) {
                Err(e) => assert!(e.contains(says), "{bad}: {e}"),
                Ok(_) => panic!("accepted {bad}"),
            }
        }
    }

    #[test]
    fn the_end_of_stderr_is_kept() {
        assert_eq!(stderr_tail(b""), "");
        assert_eq!(stderr_tail(b"oops\n"), "\nstderr: oops");
        let long = "x".repeat(5000) + "the end";
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.ends_with("the end") && tail.len() < 2100, "{tail}");
    }
}
