//! MCP servers (`[[agent.brain.mcp]]`) against a real stdio MCP server
//! written for the tests (`tests/fixtures/mcp_test_server.rs`, the example
//! `mcp-test-server`), and the exactly-once guarantees of declared tools
//! across SIGKILLs.

use super::support::*;
use crate::command_brain::support::{alive, script};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm};
use society_testkit::{wait_until, Society};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The test server: built by `cargo test` next to the binary under test
/// (`target/<profile>/examples/`). When only the integration tests were
/// built (`cargo test --test integration`), it is built here, in a target
/// directory of its own (the running cargo may hold the lock of ours).
fn server() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let target = Path::new(BIN).parent().unwrap();
        let beside = target.join("examples/mcp-test-server");
        if beside.exists() {
            return beside;
        }
        let own = target.join("mcp-test-server-build");
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args(["build", "--example", "mcp-test-server", "--target-dir"])
            .arg(&own)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example mcp-test-server");
        assert!(
            status.success(),
            "cargo build --example mcp-test-server failed"
        );
        own.join("debug/examples/mcp-test-server")
    })
}

/// `mcp = [{ name = "fx", ... }]` running the test server; the society root
/// as its argument lets the test kit's cleanup find it.
fn fx(s: &Society, extra: &str) -> String {
    format!(
        r#", mcp = [{{ name = "fx", command = ["{}", "{}"]{extra} }}]"#,
        server().display(),
        s.root().display()
    )
}

/// A society with one llm agent, `worker`, whose brain keys `keys(society)`
/// gives (they may name the society's root).
fn society(fake: &FakeLlm, keys: impl Fn(&Society) -> String) -> Society {
    let mut s = Society::new(BIN, "");
    let agent = llm_agent("worker", fake, "openai", &keys(&s), r#"idle_exit = "60s""#);
    std::fs::write(s.root().join("society.toml"), format!("{DEFAULTS}{agent}")).unwrap();
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    s
}

/// Lines of a file in the worker's workspace (none if it does not exist).
fn lines(s: &Society, file: &str) -> Vec<String> {
    std::fs::read_to_string(s.agent("worker").workspace().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_lines(s: &Society, file: &str, n: usize) -> Vec<String> {
    wait_until(SOON, &format!("{n} lines in {file}"), || {
        let l = lines(s, file);
        (l.len() >= n).then_some(l)
    })
}

fn tool_calls(s: &Society) -> Vec<Value> {
    agent_records(s, "worker", "tools.jsonl")
        .into_iter()
        .filter(|r| r["event"] == "tool_call")
        .collect()
}

fn content(req: &society_testkit::fake_llm::Request, call: &str) -> String {
    tool_message(req, call)["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_mcp_servers_tools_are_offered_and_calls_are_routed_to_it() {
    let fake = FakeLlm::start();
    let mut s = society(&fake, |s| fx(s, ""));
    fake.push([
        openai::tool_calls(
            &[
                ("m1", "fx__echo", json!({"text": "hi"})),
                ("m2", "fx__append", json!({"text": "one"})),
                ("m3", "fx__fail", json!({"text": "on purpose"})),
                ("m4", "fx__nope", json!({})),
            ],
            (10, 5),
        ),
        openai::text("done", (20, 5)),
    ]);
    let id = s.ok(&["send", "worker", "use the server"]);
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["text"], "done");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    // Discovered at start and offered as <server>__<tool>, with their schemas.
    let offered = reqs[0].body["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = offered
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for name in [
        "fx__echo",
        "fx__append",
        "fx__append_then_wait",
        "fx__fail",
        "fx__die",
    ] {
        assert!(names.contains(&name), "{name} offered: {names:?}");
    }
    assert_eq!(offered.len(), 8 + 5);
    let echo = offered
        .iter()
        .find(|t| t["function"]["name"] == "fx__echo")
        .unwrap();
    assert_eq!(
        echo["function"]["description"],
        "Answer with the text given."
    );
    let params = &echo["function"]["parameters"];
    assert_eq!(params["type"], "object", "{params}");
    assert_eq!(params["properties"]["text"]["type"], "string", "{params}");
    assert_eq!(params["required"], json!(["text"]), "{params}");

    // Each call reached the server; its result went back to the model.
    assert_eq!(content(&reqs[1], "m1"), "echo: hi");
    assert_eq!(content(&reqs[1], "m2"), "appended one");
    assert_eq!(content(&reqs[1], "m3"), "failed: on purpose");
    assert!(content(&reqs[1], "m4").contains("unknown tool \"fx__nope\""));
    assert_eq!(lines(&s, "mcp-effects.txt"), ["one"]);
    assert_eq!(lines(&s, "mcp-starts.txt").len(), 1, "one server start");

    let calls = tool_calls(&s);
    assert_eq!(calls.len(), 4);
    for (r, tool, ok) in [
        (&calls[0], "echo", true),
        (&calls[1], "append", true),
        (&calls[2], "fail", false),
    ] {
        assert_eq!(r["kind"], "mcp", "{r}");
        assert_eq!(r["server"], "fx", "{r}");
        assert_eq!(r["mcp_tool"], tool, "{r}");
        assert_eq!(r["ok"], ok, "{r}");
    }
    assert_eq!(calls[0]["result"], "echo: hi");
    assert_eq!(calls[0]["args"], json!({"text": "hi"}));
    assert_eq!(calls[3]["ok"], false);
    assert!(calls[3].get("kind").is_none(), "{}", calls[3]);
    let started = events(&s, "worker", "mcp_server_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["tools"], 5);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn a_dead_mcp_server_is_started_again() {
    let fake = FakeLlm::start();
    let mut s = society(&fake, |s| fx(s, ""));
    fake.push([
        openai::tool_calls(&[("a1", "fx__echo", json!({"text": "first"}))], (10, 5)),
        openai::text("one", (10, 5)),
    ]);
    let first = s.ok(&["send", "worker", "first"]);
    wait_orchestrator(&s, "the first reply", |r| r["reply_to"] == first.as_str());
    // Killed between two calls: the next call starts it again, then calls it.
    let pid: i32 = wait_lines(&s, "mcp-starts.txt", 1)[0].parse().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_until(SOON, "the server to be gone", || {
        (!alive(pid)).then_some(())
    });
    fake.push([
        openai::tool_calls(&[("b1", "fx__echo", json!({"text": "second"}))], (10, 5)),
        // It dies in the middle of this call: the model is told.
        openai::tool_calls(&[("b2", "fx__die", json!({}))], (10, 5)),
        openai::tool_calls(&[("b3", "fx__echo", json!({"text": "third"}))], (10, 5)),
        openai::text("two", (10, 5)),
    ]);
    let second = s.ok(&["send", "worker", "second"]);
    wait_orchestrator(&s, "the second reply", |r| r["reply_to"] == second.as_str());
    let reqs = requests_about(&fake, &second);
    assert_eq!(reqs.len(), 4);
    assert_eq!(content(&reqs[1], "b1"), "echo: second");
    let died = content(&reqs[2], "b2");
    assert!(
        died.starts_with("MCP server fx: the server failed during the call")
            && died.contains("may or may not have taken effect"),
        "{died}"
    );
    assert_eq!(content(&reqs[3], "b3"), "echo: third");
    assert_eq!(
        lines(&s, "mcp-starts.txt").len(),
        3,
        "started, restarted twice"
    );
    assert_eq!(events(&s, "worker", "mcp_server_restarted").len(), 2);
    let lost = events(&s, "worker", "mcp_call_lost");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(
        lost[0]["retry"], false,
        "on_interrupt = report: not sent again"
    );
    assert_eq!(
        events(&s, "worker", "started").len(),
        1,
        "one agent process did all this"
    );
    s.stop_supervisor();
}

#[test]
fn a_long_mcp_call_heartbeats_and_a_stop_request_ends_it() {
    let fake = FakeLlm::start();
    let mut s = Society::new(BIN, "");
    let agent = llm_agent(
        "worker",
        &fake,
        "openai",
        &fx(&s, ""),
        r#"idle_exit = "60s", hang_timeout = "2s""#,
    );
    std::fs::write(s.root().join("society.toml"), format!("{DEFAULTS}{agent}")).unwrap();
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    fake.push([
        openai::tool_calls(
            &[(
                "w1",
                "fx__append_then_wait",
                json!({"text": "x", "until": "go"}),
            )],
            (10, 5),
        ),
        openai::text("waited", (10, 5)),
    ]);
    let id = s.ok(&["send", "worker", "wait for it"]);
    wait_lines(&s, "mcp-effects.txt", 1);
    // Longer than hang_timeout: the call heartbeats, so nobody kills the agent.
    let began = std::time::Instant::now();
    let status = s.agent("worker").dir.join("status.json");
    wait_until(SOON, "a fresh heartbeat well past hang_timeout", || {
        let beat = std::fs::metadata(&status).and_then(|m| m.modified()).ok()?;
        let fresh = beat
            .elapsed()
            .is_ok_and(|a| a < std::time::Duration::from_secs(1));
        (began.elapsed() > std::time::Duration::from_millis(3500) && fresh).then_some(())
    });
    std::fs::write(s.agent("worker").workspace().join("go"), "").unwrap();
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["text"], "waited");
    assert_eq!(
        events(&s, "worker", "started").len(),
        1,
        "never killed as hung"
    );

    // A stop request ends a call that would never end.
    fake.push([openai::tool_calls(
        &[(
            "w2",
            "fx__append_then_wait",
            json!({"text": "y", "until": "never"}),
        )],
        (10, 5),
    )]);
    let second = s.ok(&["send", "worker", "wait forever"]);
    wait_lines(&s, "mcp-effects.txt", 2);
    let pid = s.agent_pid("worker").unwrap() as i32;
    let asked = std::time::Instant::now();
    s.ok(&["stop", "worker"]);
    wait_until(SOON, "the worker to exit", || (!alive(pid)).then_some(()));
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "stopped in {:?}",
        asked.elapsed()
    );
    let abandoned = events(&s, "worker", "message_abandoned");
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!(abandoned[0]["id"], second.as_str());
    assert!(
        events(&s, "worker", "message_failed").is_empty(),
        "a stop is not a failure"
    );
    s.stop_supervisor();
}

/// The guarantee, end to end: an own tool and an MCP tool in one case,
/// the agent SIGKILLed in the middle of each, the replacement processes
/// resume, and every tool took effect once and the reply is sent once.
///
/// - The own tool `note` appends its call id to `own-effects.txt` unless
///   the id is there already (the call id is its idempotency key), then
///   waits for `release-1`. Killed there, the call is run again by the
///   next process with the same call id: two runs, one effect.
/// - The MCP tool `append_then_wait` appends to `mcp-effects.txt`, then
///   waits for `release-2`. Killed there, the call is not sent again
///   (`on_interrupt = "report"`): the model is told it was interrupted.
/// - The MCP call `append` that completed before the first kill is not
///   repeated by the replacement.
#[test]
fn declared_tools_take_effect_once_across_sigkills() {
    let fake = FakeLlm::start();
    let mut s = society(&fake, |s| {
        script(
            s.root(),
            "note.sh",
            r#"cat > /dev/null
echo "$SOCIETY_TOOL_CALL_ID $SOCIETY_TOOL_RUN" >> own-runs.txt
grep -qxF "$SOCIETY_TOOL_CALL_ID" own-effects.txt 2>/dev/null || echo "$SOCIETY_TOOL_CALL_ID" >> own-effects.txt
while [ ! -e release-1 ]; do sleep 0.02; done
echo noted
"#,
        );
        format!(
            r#", tools = [{{ name = "note", command = ["tools/note.sh"] }}]{}"#,
            fx(s, "")
        )
    });
    let ws = s.agent("worker").workspace();
    fake.push([
        openai::tool_calls(
            &[
                ("m1", "fx__append", json!({"text": "a"})),
                ("o1", "note", json!({"text": "n"})),
            ],
            (10, 5),
        ),
        openai::tool_calls(
            &[(
                "m2",
                "fx__append_then_wait",
                json!({"text": "b", "until": "release-2"}),
            )],
            (10, 5),
        ),
        openai::text("all done", (10, 5)),
    ]);
    let case = s.ok(&["case", "new", "tools and crashes"]);
    let id = s.ok(&["send", "worker", "do it", "--case", &case]);
    let sigkill = |what: &str| {
        let pid = s
            .agent_pid("worker")
            .unwrap_or_else(|| panic!("{what}: no worker"));
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        wait_until(SOON, "the killed worker to be gone", || {
            (!alive(pid as i32)).then_some(())
        });
    };

    // 1. Killed while `note` waits: the MCP call before it has its result.
    wait_lines(&s, "own-effects.txt", 1);
    assert_eq!(lines(&s, "mcp-effects.txt"), ["a"]);
    sigkill("in note");
    // The replacement runs `note` again, with the same call id.
    let runs = wait_lines(&s, "own-runs.txt", 2);
    std::fs::write(ws.join("release-1"), "").unwrap();

    // 2. Killed while the MCP tool waits.
    wait_until(SOON, "the second step's MCP call", || {
        (lines(&s, "mcp-effects.txt").len() == 2).then_some(())
    });
    sigkill("in append_then_wait");
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    std::fs::write(ws.join("release-2"), "").unwrap();
    assert_eq!(reply["body"]["text"], "all done");
    assert_eq!(reply["gen"], 3, "sent by the second replacement");

    // One effect of each call.
    let call_id = format!("{id}-1-o1");
    assert_eq!(lines(&s, "own-effects.txt"), std::slice::from_ref(&call_id));
    assert_eq!(runs, [format!("{call_id} 1"), format!("{call_id} 2")]);
    assert_eq!(lines(&s, "mcp-effects.txt"), ["a", "b"]);
    assert_eq!(
        lines(&s, "mcp-starts.txt").len(),
        3,
        "one server per process"
    );

    // What the model saw.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "no step was requested twice");
    assert_eq!(content(&reqs[1], "m1"), "appended a");
    assert_eq!(content(&reqs[1], "o1"), "noted\n", "stdout as it is");
    let interrupted = content(&reqs[2], "m2");
    assert!(
        interrupted.starts_with("interrupted: this call to fx__append_then_wait was started")
            && interrupted.contains("may or may not have taken effect"),
        "{interrupted}"
    );

    // tools.jsonl: each result once, by the process that got it.
    let calls: Vec<(String, u64, Value)> = tool_calls(&s)
        .iter()
        .map(|r| {
            (
                r["call"].as_str().unwrap().to_string(),
                r["gen"].as_u64().unwrap(),
                r.get("interrupted").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("m1".to_string(), 1, Value::Null),
            ("o1".to_string(), 2, Value::Null),
            ("m2".to_string(), 3, json!(true)),
        ]
    );
    let conv = agent_records(&s, "worker", &format!("conversations/{case}.jsonl"));
    let started: Vec<(&str, u64, u64)> = conv
        .iter()
        .filter(|l| l["turn"] == "started")
        .map(|l| {
            (
                l["call"].as_str().unwrap(),
                l["run"].as_u64().unwrap(),
                l["gen"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        started,
        [("m1", 1, 1), ("o1", 1, 1), ("o1", 2, 2), ("m2", 1, 2)]
    );
    assert_eq!(orchestrator_from(&s, "worker", "reply").len(), 1);
    let handled = events(&s, "worker", "message_handled");
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["attempt"], 3);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

/// Third-party servers from the npm registry, through `npx` (needs the
/// network the first time): `cargo test -- --ignored third_party_mcp`.
#[test]
#[ignore = "fetches MCP servers from the npm registry with npx"]
fn third_party_mcp_servers_work() {
    let fake = FakeLlm::start();
    // "." is the workspace: servers run there (as in examples/llm-tools).
    let mut s = society(&fake, |_| {
        r#", mcp = [{ name = "files", command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "."], startup_timeout = "5m" }, { name = "everything", command = ["npx", "-y", "@modelcontextprotocol/server-everything"], startup_timeout = "5m" }]"#.to_string()
    });
    let ws = s.agent("worker").workspace().canonicalize().unwrap();
    fake.push([
        openai::tool_calls(
            &[
                (
                    "f1",
                    "files__write_file",
                    json!({"path": ws.join("hello.txt"), "content": "hello from mcp"}),
                ),
                ("f2", "files__list_allowed_directories", json!({})),
                ("e1", "everything__echo", json!({"message": "hi"})),
            ],
            (10, 5),
        ),
        openai::text("done", (10, 5)),
    ]);
    let id = s.ok(&["send", "worker", "go"]);
    let long = std::time::Duration::from_secs(300);
    wait_until(long, "the reply", || {
        orchestrator_from(&s, "worker", "reply")
            .into_iter()
            .find(|r| r["reply_to"] == id.as_str())
    });
    let reqs = fake.requests();
    let names: Vec<String> = reqs[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect();
    eprintln!("offered: {names:?}");
    for call in ["f1", "f2", "e1"] {
        eprintln!("{call}: {}", content(&reqs[1], call));
    }
    assert_eq!(
        std::fs::read_to_string(ws.join("hello.txt")).unwrap(),
        "hello from mcp"
    );
    assert!(content(&reqs[1], "f2").contains(&ws.display().to_string()));
    assert!(content(&reqs[1], "e1").contains("hi"));
    s.stop_supervisor();
}
