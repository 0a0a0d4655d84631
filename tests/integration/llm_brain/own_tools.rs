//! Own tools (`[[agent.brain.tools]]`): programs declared in the brain
//! table, offered to the model beside the built-in tools, run per call in
//! the agent's workspace with the arguments on stdin.

use super::support::*;
use crate::command_brain::support::{alive, script, wait_pids, Reap, HANG_WITH_GRANDCHILD};
use crate::support::code;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm};
use society_testkit::{wait_until, Society};
use std::time::Duration;

/// `tools = [...]` for the brain table.
fn tools(entries: &[&str]) -> String {
    format!(", tools = [{}]", entries.join(", "))
}

#[test]
fn declared_tools_run_with_their_arguments_and_the_model_gets_their_output() {
    let fake = FakeLlm::start();
    let toml = llm_agent(
        "worker",
        &fake,
        "openai",
        &tools(&[
            r#"{ name = "word_count", description = "Count the words of a text.", parameters = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }, command = ["tools/wc.sh", "--words"] }"#,
            r#"{ name = "loud", command = ["sh", "-c", "printf '%0100d' 0"], max_output = 10 }"#,
            r#"{ name = "broken", command = ["tools/broken.sh"] }"#,
            r#"{ name = "slow", command = ["tools/slow.sh"], timeout = "1s" }"#,
        ]),
        "",
    );
    let mut s = start(&toml);
    script(
        s.root(),
        "wc.sh",
        // The arguments, the first program argument, the call's environment, the cwd.
        r#"input=$(cat)
words=$(printf '%s' "$input" | sed 's/.*"text":"\([^"]*\)".*/\1/' | wc -w)
printf 'words=%s args=%s argv=%s run=%s name=%s agent=%s id=%s cwd=%s' "$words" "$input" "$1" "$SOCIETY_TOOL_RUN" "$SOCIETY_TOOL_NAME" "$SOCIETY_AGENT_ID" "$SOCIETY_TOOL_CALL_ID" "$(pwd)"
"#,
    );
    script(
        s.root(),
        "broken.sh",
        "echo 'partial output'\necho 'line one' >&2\necho 'bad input: no text' >&2\nexit 3\n",
    );
    script(s.root(), "slow.sh", HANG_WITH_GRANDCHILD);
    fake.push([
        openai::tool_calls(
            &[
                ("c1", "word_count", json!({"text": "one two three"})),
                ("c2", "loud", json!({})),
                ("c3", "broken", json!({})),
                ("c4", "slow", json!({})),
            ],
            (10, 5),
        ),
        openai::text("three words", (20, 5)),
    ]);
    let id = s.ok(&["send", "worker", "count the words"]);
    let pids = wait_pids(&s, "worker");
    let _reap = Reap::new(&pids);
    let reply = wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    assert_eq!(reply["body"]["text"], "three words");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    // Offered beside the built-in tools, with the declared schema.
    let offered = reqs[0].body["tools"].as_array().unwrap().clone();
    assert_eq!(offered.len(), 12, "8 built-in + 4 own");
    let wc = offered
        .iter()
        .find(|t| t["function"]["name"] == "word_count")
        .unwrap();
    assert_eq!(wc["function"]["description"], "Count the words of a text.");
    assert_eq!(
        wc["function"]["parameters"],
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
    );
    let result = |call: &str| -> String {
        tool_message(&reqs[1], call)["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ws = s.agent("worker").workspace().canonicalize().unwrap();
    assert_eq!(
        result("c1"),
        format!(
            "words=3 args={{\"text\":\"one two three\"}} argv=--words run=1 name=word_count agent=worker id={id}-1-c1 cwd={}",
            ws.display()
        )
    );
    assert_eq!(
        result("c2"),
        "0000000000\n[output cut: the tool wrote 100 bytes, the first 10 are shown (max_output)]"
    );
    assert_eq!(
        result("c3"),
        "the tool exited with status 3\nstderr: line one\nbad input: no text"
    );
    assert_eq!(
        result("c4"),
        "timed out after 1s: its process group was killed"
    );
    // The whole group, grandchild included.
    wait_until(
        Duration::from_secs(5),
        "the slow tool's group to be gone",
        || pids.iter().all(|p| !alive(*p)).then_some(()),
    );

    // tools.jsonl: a start and a result per call.
    let log = agent_records(&s, "worker", "tools.jsonl");
    let started: Vec<&Value> = log
        .iter()
        .filter(|r| r["event"] == "tool_started")
        .collect();
    let calls: Vec<&Value> = log.iter().filter(|r| r["event"] == "tool_call").collect();
    assert_eq!(started.len(), 4, "{log:?}");
    assert_eq!(
        calls
            .iter()
            .map(|r| (r["tool"].as_str().unwrap(), r["ok"].as_bool().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("word_count", true),
            ("loud", true),
            ("broken", false),
            ("slow", false)
        ]
    );
    for r in &calls {
        assert_eq!(r["kind"], "own", "{r}");
        assert_eq!(r["run"], 1, "{r}");
        assert_eq!(r["id"], id.as_str(), "{r}");
    }
    assert_eq!(calls[0]["args"], json!({"text": "one two three"}));
    assert!(calls[3]["ms"].as_u64().unwrap() >= 1000, "{}", calls[3]);
    // The conversation recorded each start before its result.
    let conv = agent_records(&s, "worker", &format!("conversations/{id}.jsonl"));
    let kinds: Vec<&str> = conv.iter().map(|l| l["turn"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user",
            "assistant",
            "started",
            "tool",
            "started",
            "tool",
            "started",
            "tool",
            "started",
            "tool",
            "assistant"
        ]
    );
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn bad_tool_declarations_are_refused_at_load() {
    let fake = FakeLlm::start();
    let s = Society::new(BIN, "");
    for (extra, says) in [
        (
            tools(&[r#"{ name = "word count", command = ["wc"] }"#]),
            r#"tool "word count": a tool name must match [a-zA-Z0-9_-]{1,64}"#,
        ),
        (
            tools(&[r#"{ name = "reply", command = ["wc"] }"#]),
            r#"tool "reply" clashes with the built-in tool of that name"#,
        ),
        (
            tools(&[
                r#"{ name = "wc", command = ["wc"] }"#,
                r#"{ name = "wc", command = ["wc", "-l"] }"#,
            ]),
            r#"tool "wc" is declared twice"#,
        ),
        (
            tools(&[r#"{ name = "wc", command = ["wc"], parameters = { type = "string" } }"#]),
            r#"tool "wc": `parameters` must be a JSON schema of type "object""#,
        ),
        (
            tools(&[r#"{ name = "wc", command = [] }"#]),
            r#"tool "wc": `command` must name a program"#,
        ),
        (
            tools(&[r#"{ name = "wc", command = ["wc"], timeout = "0s" }"#]),
            r#"tool "wc": `timeout` must be longer than zero"#,
        ),
        (
            r#", mcp = [{ name = "fs__x", command = ["srv"] }]"#.to_string(),
            r#"MCP server "fs__x": a server name must match"#,
        ),
        (
            r#", mcp = [{ name = "fs" }]"#.to_string(),
            r#"MCP server "fs": `command` must name a program"#,
        ),
    ] {
        std::fs::write(
            s.root().join("society.toml"),
            llm_agent("model", &fake, "openai", &extra, ""),
        )
        .unwrap();
        for args in [vec!["check"], vec!["spawn", "model", "--no-start"]] {
            let (rc, _, err) = code(&s, &args);
            assert_eq!(rc, 5, "society {args:?} with {extra}: {err}");
            assert!(
                err.contains(says) && err.contains("agent model"),
                "society {args:?} names the agent, the tool and the fault: {err}"
            );
        }
    }
    assert_eq!(fake.count(), 0);
}

/// `examples/llm-tools/`: its society.toml passes `society check` as it is
/// (no server starts), and, pointed at the fake model without its MCP
/// server (which npx would fetch), its own tools work as documented.
#[test]
fn the_llm_tools_example_checks_and_its_own_tools_work() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/llm-tools");
    let toml = std::fs::read_to_string(example.join("society.toml")).unwrap();
    let fake = FakeLlm::start();
    let local = toml
        .replace("http://localhost:11434", &fake.url())
        .split("[[agent.brain.mcp]]")
        .next()
        .unwrap()
        .to_string();
    let mut s = Society::new(BIN, &toml);
    let tools = s.root().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for name in ["word_count.py", "add_note.py"] {
        std::fs::copy(example.join("tools").join(name), tools.join(name)).unwrap();
    }
    let (rc, _, err) = code(&s, &["check"]);
    assert_eq!(rc, 0, "{err}");
    std::fs::write(s.root().join("society.toml"), local).unwrap();
    s.start_supervisor_with(&[("LOCAL_LLM_KEY", KEY)]);
    fake.push([
        openai::tool_calls(
            &[
                (
                    "w",
                    "word_count",
                    json!({"text": "the tide comes in twice a day"}),
                ),
                ("n", "add_note", json!({"text": "seven words"})),
                ("x", "word_count", json!({})),
            ],
            (10, 5),
        ),
        openai::text("Seven words, noted.", (10, 5)),
    ]);
    let id = s.ok(&["send", "clerk", "count and note"]);
    wait_orchestrator(&s, "the clerk's reply", |r| r["reply_to"] == id.as_str());
    let reqs = fake.requests();
    assert_eq!(tool_message(&reqs[1], "w")["content"], "7\n");
    assert_eq!(tool_message(&reqs[1], "n")["content"], "noted\n");
    let failed = tool_message(&reqs[1], "x")["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        failed.starts_with(
            "the tool exited with status 1\nstderr: word_count needs a string argument `text`"
        ),
        "{failed}"
    );
    let notes = s.agent("clerk").workspace().join("notes.md");
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        format!("- seven words <!-- {id}-1-n -->\n")
    );
    // The same call run again (as after a crash) adds nothing.
    let again = std::process::Command::new(tools.join("add_note.py"))
        .current_dir(s.agent("clerk").workspace())
        .env("SOCIETY_TOOL_CALL_ID", format!("{id}-1-n"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(br#"{"text": "seven words"}"#)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), "noted already\n");
    assert_eq!(std::fs::read_to_string(&notes).unwrap().lines().count(), 1);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
