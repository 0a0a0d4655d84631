//! Helpers shared by the llm brain tests: a society whose agents inherit a
//! fake key, agent TOML for the fake server, readers, and the key grep.

pub use crate::support::{BIN, SOON};
use serde_json::Value;
use society_testkit::fake_llm::{FakeLlm, Request};
use society_testkit::{records, wait_until, Society};
use std::path::Path;

pub const KEY: &str = "sk-test-7f3a9c2e-this-must-never-reach-a-file";

/// What every society of these tests starts with (`start` prepends it).
pub const DEFAULTS: &str = r#"
[defaults]
idle_exit = "3s"
heartbeat = "200ms"

[prices."fake-model"]
input = 1.0
output = 2.0

[[agent]]
id = "critic"
brain = { kind = "script", rules = [] }
"#;

/// One `[[agent]]` on an llm brain served by `fake`; `extra` adds brain keys
/// (or replaces the defaults for the key variable and the timeout).
pub fn llm_agent(id: &str, fake: &FakeLlm, provider: &str, extra: &str, policy: &str) -> String {
    let mut brain = format!(
        r#"kind = "llm", provider = "{provider}", base_url = "{}", model = "fake-model", retry_initial = "50ms", retry_max = "2s""#,
        fake.url()
    );
    if !extra.contains("api_key_env") {
        brain.push_str(r#", api_key_env = "TEST_LLM_KEY""#);
    }
    if !extra.contains("timeout") {
        brain.push_str(r#", timeout = "5s""#);
    }
    format!("\n[[agent]]\nid = \"{id}\"\npolicy = {{ {policy} }}\nbrain = {{ {brain}{extra} }}\n")
}

pub fn start(toml: &str) -> Society {
    let mut s = Society::new(BIN, &format!("{DEFAULTS}{toml}"));
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    s
}

/// Requests whose body mentions `text` (a message id: each request carries its message).
pub fn requests_about(fake: &FakeLlm, text: &str) -> Vec<Request> {
    fake.requests()
        .into_iter()
        .filter(|r| r.body.to_string().contains(text))
        .collect()
}

/// Records of `file` in an agent folder.
pub fn agent_records(s: &Society, id: &str, file: &str) -> Vec<Value> {
    records(&s.agent(id).dir.join(file))
}

pub fn events(s: &Society, id: &str, event: &str) -> Vec<Value> {
    agent_records(s, id, "activity.jsonl")
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

/// Waits for the orchestrator's inbox to hold a message matching `f`.
pub fn wait_orchestrator(s: &Society, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    wait_until(SOON, what, || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| f(r))
    })
}

pub fn orchestrator_from(s: &Society, from: &str, kind: &str) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["from"] == from && r["type"] == kind)
        .collect()
}

/// The key must not appear in any file under the society root (daemon.log included).
pub fn assert_key_nowhere(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                files += 1;
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                    "the API key leaked into {}",
                    path.display()
                );
            }
        }
    }
    assert!(
        files > 10,
        "walked only {files} files under {}",
        root.display()
    );
}

pub fn messages(req: &Request) -> Vec<Value> {
    req.body["messages"].as_array().cloned().unwrap_or_default()
}

pub fn tool_message(req: &Request, call: &str) -> Value {
    messages(req)
        .into_iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call)
        .unwrap_or_else(|| panic!("no tool result for {call} in {}", req.body))
}
