//! MCP servers (`[[agent.brain.mcp]]`, FORMAT.md "MCP servers"): programs
//! speaking the Model Context Protocol on stdio, whose tools are offered to
//! the model as `<server>__<tool>`.
//!
//! Theory of operation. The client is the official SDK (`rmcp`), which is
//! async: the brain keeps a small current-thread tokio runtime for it, and
//! every wait on a server (start, listing, a call) runs on this thread in
//! ticks, heartbeating and watching for a stop request between them, like
//! the model call in [`super::http`]. Servers start at the first message
//! the process handles (validating a config starts nothing); their tools are
//! listed then and stay the same for the life of the process, so every
//! request of a conversation offers the same tools. A server is a child of
//! the agent, in the agent's process group (the supervisor's group kill of
//! a hung or stopped agent reaches it), started in `workspace/` with the
//! folder marker like every program a brain starts; its stdin closes when
//! the agent dies, which ends a well-behaved stdio server. Its stderr goes
//! to the agent's stderr (`daemon.log`).
//!
//! A server found dead before a call is started again, then called. A
//! call during which the server dies (or which times out, which stops the
//! server) may or may not have taken effect: with `on_interrupt = "report"`
//! (the default) the model is told so and the server starts again at the
//! next call; with `"rerun"` the server is started again and the call sent
//! once more.

use super::conversation::ToolCall;
use super::own_tools::{check_env, default_max_output, valid_name, OnInterrupt};
use super::tools::{truncate, Definition, Outcome};
use crate::command::run::{program_command, Program};
use crate::Hooks;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::ServiceExt;
use serde::Deserialize;
use serde_json::{json, Value};
use society_core::time::duration_str;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How often a wait heartbeats and checks for a stop request.
const TICK: Duration = Duration::from_millis(50);
/// Longest server name: `<server>__<tool>` must leave room for the tool.
const SERVER_NAME_MAX: usize = 32;
/// Longest tool name the providers accept.
const TOOL_NAME_MAX: usize = 64;

/// One `[[agent.brain.mcp]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub name: String,
    /// Program and arguments, as for own tools.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables passed through from the runtime's environment.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Longest one call may take.
    #[serde(default = "default_timeout", with = "duration_str")]
    pub timeout: Duration,
    /// Longest the start (spawn, handshake, tool listing) may take.
    #[serde(default = "default_startup_timeout", with = "duration_str")]
    pub startup_timeout: Duration,
    /// Bytes of a result kept; the rest is cut, with a note saying so.
    #[serde(default = "default_max_output")]
    pub max_output: usize,
    #[serde(default = "report")]
    pub on_interrupt: OnInterrupt,
    /// The brain's sandbox settings (filled in by `LlmConfig::parse`).
    #[serde(skip)]
    pub sandbox: crate::sandbox::Settings,
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_startup_timeout() -> Duration {
    Duration::from_secs(30)
}
fn report() -> OnInterrupt {
    OnInterrupt::Report
}

/// A server lives as long as the agent process: RLIMIT_CPU, which counts
/// CPU time over a process's whole life, would end a healthy one that has
/// simply run for long. Everything else of the sandbox applies.
fn long_lived(settings: &crate::sandbox::Settings) -> crate::sandbox::Settings {
    crate::sandbox::Settings {
        cpu: crate::sandbox::NO_CPU_LIMIT,
        ..settings.clone()
    }
}

/// Validates every server entry; says which one and why when one is wrong.
pub fn check(servers: &[McpServer]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for s in servers {
        let what = format!("MCP server {:?}", s.name);
        if !valid_name(&s.name, SERVER_NAME_MAX) || s.name.contains("__") {
            return Err(format!(
                "{what}: a server name must match [a-zA-Z0-9_-]{{1,{SERVER_NAME_MAX}}} without `__` (its tools are offered as <server>__<tool>)"
            ));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(format!("{what} is declared twice"));
        }
        if s.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(format!(
                "{what}: `command` must name a program, e.g. command = [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"]"
            ));
        }
        if s.timeout.is_zero() || s.startup_timeout.is_zero() {
            return Err(format!(
                "{what}: `timeout` and `startup_timeout` must be longer than zero"
            ));
        }
        if s.max_output == 0 {
            return Err(format!("{what}: `max_output` must be at least 1 byte"));
        }
        check_env(&what, &s.env, &s.pass_env)?;
    }
    Ok(())
}

/// A server's tool as offered to the model.
#[derive(Debug, Clone)]
pub struct Exposed {
    pub server: usize,
    /// Its name at the server.
    pub tool: String,
    pub definition: Definition,
}

struct Live {
    client: RunningService<RoleClient, ()>,
    child: tokio::process::Child,
    pid: Option<u32>,
    /// Dropped last: kills what the server left in its cgroup.
    _jail: crate::sandbox::Jail,
}

struct Server {
    cfg: McpServer,
    live: Option<Live>,
    /// Times started by this process.
    starts: u32,
}

/// The servers of one agent, and the tools they offer.
pub struct Mcp {
    servers: Vec<Server>,
    /// Built with the first server start.
    rt: Option<tokio::runtime::Runtime>,
    /// Set once every server has started and listed its tools.
    tools: Option<Vec<Exposed>>,
}

/// How a wait ended.
enum Waited<T> {
    Done(T),
    TimedOut,
    Stopped,
}

/// Why there is no answer from a server.
pub enum Failure {
    /// The agent is stopping.
    Stopped,
    /// Starting a server failed (for [`Mcp::prepare`]).
    Start { server: String, reason: String },
}

impl Mcp {
    pub fn new(servers: &[McpServer]) -> Mcp {
        Mcp {
            servers: servers
                .iter()
                .map(|cfg| Server {
                    cfg: cfg.clone(),
                    live: None,
                    starts: 0,
                })
                .collect(),
            rt: None,
            tools: None,
        }
    }

    /// The servers' tools, once [`Mcp::prepare`] has listed them.
    pub fn tools(&self) -> &[Exposed] {
        self.tools.as_deref().unwrap_or_default()
    }

    pub fn server_name(&self, server: usize) -> &str {
        &self.servers[server].cfg.name
    }

    pub fn on_interrupt(&self, server: usize) -> OnInterrupt {
        self.servers[server].cfg.on_interrupt
    }

    /// Starts every server and lists its tools, once per process. `taken`:
    /// names already offered (built-in and own tools), which no MCP tool may take.
    pub fn prepare(
        &mut self,
        folder: &Path,
        taken: &[String],
        hooks: &mut dyn Hooks,
    ) -> Result<(), Failure> {
        if self.tools.is_some() {
            return Ok(());
        }
        let mut names: std::collections::HashSet<String> = taken.iter().cloned().collect();
        let mut exposed = Vec::new();
        for i in 0..self.servers.len() {
            let listed = self.start(i, folder, hooks, true)?;
            for tool in listed {
                let server = &self.servers[i].cfg.name;
                let at_server = tool.name.to_string();
                let name = exposed_name(server, &at_server);
                if !names.insert(name.clone()) {
                    hooks.log(
                        "mcp_tool_skipped",
                        json!({"server": server, "tool": at_server, "name": name,
                            "reason": "another tool is offered under this name"}),
                    );
                    continue;
                }
                let mut parameters = Value::Object((*tool.input_schema).clone());
                if parameters.get("type").is_none() {
                    parameters["type"] = json!("object");
                }
                if parameters.get("properties").is_none() {
                    parameters["properties"] = json!({});
                }
                exposed.push(Exposed {
                    server: i,
                    tool: at_server,
                    definition: Definition {
                        name,
                        description: tool.description.as_deref().unwrap_or("").to_string(),
                        parameters,
                    },
                });
            }
        }
        self.tools = Some(exposed);
        Ok(())
    }

    /// Starts server `i` (again), and lists its tools if `list`.
    fn start(
        &mut self,
        i: usize,
        folder: &Path,
        hooks: &mut dyn Hooks,
        list: bool,
    ) -> Result<Vec<rmcp::model::Tool>, Failure> {
        self.stop(i);
        let name = self.servers[i].cfg.name.clone();
        let fail = |reason: String| Failure::Start {
            server: name.clone(),
            reason,
        };
        if self.rt.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(format!("cannot build the async runtime: {e}")))?;
            self.rt = Some(rt);
        }
        let (folder, root) = crate::command::folder_and_root(folder)
            .map_err(|e| fail(format!("cannot resolve the agent folder: {e}")))?;
        let cfg = self.servers[i].cfg.clone();
        let program = crate::command::resolve_program(&cfg.command[0], &root);
        let workspace = folder.join("workspace");
        let (cmd, jail) = program_command(&Program {
            name: &cfg.command[0],
            program: &program,
            args: &cfg.command[1..],
            env: &cfg.env,
            pass_env: &cfg.pass_env,
            folder: &folder,
            workspace: &workspace,
            root: &root,
            sandbox: &long_lived(&cfg.sandbox),
        })
        .map_err(fail)?;
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let rt = self.rt.as_ref().expect("built above");
        let started = async move {
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("could not start {}: {e}", cfg.command[0]))?;
            let pid = child.id();
            let mut jail = jail;
            if let Some(pid) = pid {
                jail.keep_session(pid as i32);
            }
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("its pipes were not set up".to_string());
            };
            let client =
                ().serve((stdout, stdin))
                    .await
                    .map_err(|e| format!("the MCP handshake failed: {e}"))?;
            let tools = if list {
                client
                    .list_all_tools()
                    .await
                    .map_err(|e| format!("listing its tools failed: {e}"))?
            } else {
                Vec::new()
            };
            Ok((
                Live {
                    client,
                    child,
                    pid,
                    _jail: jail,
                },
                tools,
            ))
        };
        let limit = self.servers[i].cfg.startup_timeout;
        let outcome = wait(rt, hooks, limit, started);
        let server = &mut self.servers[i];
        match outcome {
            Waited::Done(Ok((live, tools))) => {
                server.starts += 1;
                hooks.log(
                    "mcp_server_started",
                    json!({"server": name, "pid": live.pid, "start": server.starts, "tools": tools.len()}),
                );
                server.live = Some(live);
                Ok(tools)
            }
            Waited::Done(Err(reason)) => {
                hooks.log(
                    "mcp_server_failed",
                    json!({"server": name, "reason": reason}),
                );
                Err(Failure::Start {
                    server: name,
                    reason,
                })
            }
            Waited::TimedOut => {
                let reason = format!(
                    "it did not start and list its tools within {} (startup_timeout)",
                    humantime::format_duration(limit)
                );
                hooks.log(
                    "mcp_server_failed",
                    json!({"server": name, "reason": reason}),
                );
                Err(Failure::Start {
                    server: name,
                    reason,
                })
            }
            Waited::Stopped => Err(Failure::Stopped),
        }
    }

    /// Stops server `i` if it runs (SIGKILL; its pipes close).
    fn stop(&mut self, i: usize) {
        if let (Some(live), Some(rt)) = (self.servers[i].live.take(), &self.rt) {
            // Inside the runtime: dropping the service cancels its tasks.
            let _enter = rt.enter();
            drop(live);
        }
    }

    /// Is server `i` running? A server that exited is reaped and forgotten.
    fn alive(&mut self, i: usize) -> bool {
        let Some(live) = self.servers[i].live.as_mut() else {
            return false;
        };
        let exited = {
            let _enter = self.rt.as_ref().map(|rt| rt.enter());
            !matches!(live.child.try_wait(), Ok(None))
        };
        if exited || live.client.is_closed() {
            self.stop(i);
            return false;
        }
        true
    }

    /// Calls `exposed` for `call`. `None`: the agent is stopping (the call
    /// has no result).
    pub fn call(
        &mut self,
        exposed: &Exposed,
        call: &ToolCall,
        folder: &Path,
        hooks: &mut dyn Hooks,
    ) -> Option<Outcome> {
        let i = exposed.server;
        let failed = |result: String| Some(Outcome { result, ok: false });
        let Value::Object(args) = call.args.clone() else {
            return failed("the arguments must be a JSON object".into());
        };
        let mut retried = false;
        loop {
            if !self.alive(i) {
                let again = self.servers[i].starts > 0;
                match self.start(i, folder, hooks, false) {
                    Ok(_) => {}
                    Err(Failure::Stopped) => return None,
                    Err(Failure::Start { server, reason }) => {
                        return failed(format!(
                            "MCP server {server} could not be started: {reason}"
                        ))
                    }
                }
                if again {
                    hooks.log(
                        "mcp_server_restarted",
                        json!({"server": self.servers[i].cfg.name, "start": self.servers[i].starts}),
                    );
                }
            }
            let server = &self.servers[i];
            let cfg = &server.cfg;
            let live = server.live.as_ref().expect("started above");
            let rt = self.rt.as_ref().expect("a server started");
            let params =
                CallToolRequestParams::new(exposed.tool.clone()).with_arguments(args.clone());
            let answer = wait(rt, hooks, cfg.timeout, live.client.call_tool(params));
            let (name, timeout, max_output, policy) = (
                cfg.name.clone(),
                cfg.timeout,
                cfg.max_output,
                cfg.on_interrupt,
            );
            let lost = match answer {
                Waited::Stopped => return None,
                Waited::Done(Ok(result)) => {
                    let v = serde_json::to_value(&result).unwrap_or(Value::Null);
                    let text = truncate(&render(&v), max_output);
                    let ok = v.get("isError").and_then(Value::as_bool) != Some(true);
                    return Some(Outcome { result: text, ok });
                }
                Waited::Done(Err(ServiceError::McpError(e))) => {
                    return failed(format!(
                        "MCP server {name} answered with an error: {}",
                        e.message
                    ))
                }
                // A stop's group SIGTERM may have reached the server first:
                // the call is interrupted, not lost.
                Waited::Done(Err(_)) if hooks.should_stop() => return None,
                Waited::Done(Err(e)) => format!("the server failed during the call ({e})"),
                Waited::TimedOut => format!(
                    "no answer within {} (timeout): the server was stopped",
                    humantime::format_duration(timeout)
                ),
            };
            self.stop(i);
            hooks.log(
                "mcp_call_lost",
                json!({"server": name, "tool": exposed.tool, "call": call.id, "reason": lost,
                    "retry": policy == OnInterrupt::Rerun && !retried}),
            );
            if policy == OnInterrupt::Rerun && !retried {
                retried = true;
                continue;
            }
            return failed(format!(
                "MCP server {name}: {lost}; the call may or may not have taken effect. The server starts again at the next call."
            ));
        }
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.stop(i);
        }
    }
}

/// Runs `fut` on `rt` for at most `limit`, heartbeating every tick and
/// giving up when the agent is asked to stop.
fn wait<F: Future>(
    rt: &tokio::runtime::Runtime,
    hooks: &mut dyn Hooks,
    limit: Duration,
    fut: F,
) -> Waited<F::Output> {
    let deadline = Instant::now() + limit;
    rt.block_on(async move {
        let mut fut = std::pin::pin!(fut);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            if let Ok(v) = tokio::time::timeout((deadline - now).min(TICK), fut.as_mut()).await {
                return Waited::Done(v);
            }
            hooks.heartbeat();
            if hooks.should_stop() {
                return Waited::Stopped;
            }
        }
    })
}

/// `<server>__<tool>`, with characters the providers refuse replaced by
/// `_`, and cut to 64 with a hash of the whole when longer.
fn exposed_name(server: &str, tool: &str) -> String {
    let full: String = format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if full.len() <= TOOL_NAME_MAX {
        return full;
    }
    // FNV-1a: stable across builds and platforms.
    let hash = format!("{server}__{tool}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{}_{:08x}", &full[..TOOL_NAME_MAX - 9], hash as u32)
}

/// A tool result as text for the model: text blocks as they are, other
/// blocks described; the structured result when there is no content.
fn render(result: &Value) -> String {
    let mut parts = Vec::new();
    for block in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        let s = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
        parts.push(match kind {
            "text" => s("text").to_string(),
            "image" | "audio" => format!(
                "[{kind} {}, {} bytes of base64 not shown]",
                s("mimeType"),
                s("data").len()
            ),
            "resource" => {
                let r = block.get("resource").cloned().unwrap_or(Value::Null);
                match r.get("text").and_then(Value::as_str) {
                    Some(text) => text.to_string(),
                    None => format!(
                        "[resource {}]",
                        r.get("uri").and_then(Value::as_str).unwrap_or("")
                    ),
                }
            }
            "resource_link" => format!("[resource link {} {}]", s("name"), s("uri")),
            _ => block.to_string(),
        });
    }
    if parts.is_empty() {
        if let Some(v) = result.get("structuredContent") {
            return v.to_string();
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_validated() {
        let parse = |v: Value| -> Result<Vec<McpServer>, String> {
            let s: Vec<McpServer> = serde_json::from_value(v).map_err(|e| e.to_string())?;
            check(&s)?;
            Ok(s)
        };
        let ok = parse(json!([{"name": "files", "command": ["srv"]}])).expect("valid");
        assert_eq!(ok[0].on_interrupt, OnInterrupt::Report);
        assert_eq!(ok[0].timeout, Duration::from_secs(60));
        for (bad, says) in [
            (json!([{"name": "a__b", "command": ["x"]}]), "without `__`"),
            (json!([{"name": "a.b", "command": ["x"]}]), "must match"),
            (
                json!([{"name": "x".repeat(33), "command": ["x"]}]),
                "must match",
            ),
            (
                json!([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["x"]}]),
                "declared twice",
            ),
            (
                json!([{"name": "a", "command": [" "]}]),
                "`command` must name a program",
            ),
            (
                json!([{"name": "a", "command": ["x"], "timeout": "0s"}]),
                "longer than zero",
            ),
            (
                json!([{"name": "a", "command": ["x"], "url": "http://x"}]),
                "unknown field `url`",
            ),
        ] {
            match parse(bad.clone()) {
                Err(e) => assert!(e.contains(says), "{bad}: {e}"),
                Ok(_) => panic!("accepted {bad}"),
            }
        }
    }

    #[test]
    fn exposed_names_fit_the_providers() {
        assert_eq!(exposed_name("files", "read_file"), "files__read_file");
        assert_eq!(exposed_name("fs", "dir.list/all"), "fs__dir_list_all");
        let long = exposed_name("server", &"t".repeat(100));
        assert_eq!(long.len(), 64);
        assert_ne!(long, exposed_name("server", &"t".repeat(101)));
    }

    #[test]
    fn results_render_as_text() {
        let r = json!({"content": [
            {"type": "text", "text": "one"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
            {"type": "resource_link", "name": "b", "uri": "file:///b"}
        ]});
        assert_eq!(
            render(&r),
            "one\n[image image/png, 4 bytes of base64 not shown]\nbody\n[resource link b file:///b]"
        );
        assert_eq!(
            render(&json!({"content": [], "structuredContent": {"n": 1}})),
            "{\"n\":1}"
        );
    }
}
