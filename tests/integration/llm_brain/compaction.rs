//! History compaction: a long case is summarised and continues, the file
//! keeps every turn; "context too long" compacts and retries once; a
//! SIGKILL during the summary call redoes it once.

use super::support::*;
use serde_json::{json, Value};
use society_testkit::fake_llm::{openai, FakeLlm, Reply, Request};
use society_testkit::{records, wait_until};
use std::time::Duration;

/// A summary request: no tools, one user message holding the transcript.
fn is_summary(r: &Request) -> bool {
    r.body.get("tools").is_none()
}

fn transcript(r: &Request) -> String {
    let m = messages(r);
    assert_eq!(m.len(), 2, "instructions and the transcript: {}", r.body);
    assert_eq!(m[0]["role"], "system");
    assert_eq!(m[1]["role"], "user");
    m[1]["content"].as_str().unwrap().to_string()
}

/// The text of each non-system message of a request.
fn contents(r: &Request) -> Vec<String> {
    messages(r)
        .iter()
        .skip(1)
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect()
}

fn send_and_reply(s: &society_testkit::Society, to: &str, text: &str, case: &str) -> Value {
    let id = s.ok(&["send", to, text, "--case", case]);
    wait_orchestrator(s, &format!("the reply to {text:?}"), |r| {
        r["reply_to"] == id.as_str()
    })
}

fn conversation(s: &society_testkit::Society, id: &str, case: &str) -> Vec<Value> {
    agent_records(s, id, &format!("conversations/{case}.jsonl"))
}

#[test]
fn a_long_case_is_compacted_and_continues_with_the_full_history_on_disk() {
    let fake = FakeLlm::start();
    // Compaction past 50% of a 100k window; the fake's usage figures push
    // the conversation there (the request bodies alone are ~2k tokens).
    let mut s = start(&format!(
        "{}\n[prices.\"small-model\"]\ninput = 0.1\noutput = 0.2\n",
        llm_agent(
            "writer",
            &fake,
            "openai",
            r#", context_window = 100000, compact_at = 0.5, compact_keep = 1, compact_model = "small-model", compact_max_tokens = 200"#,
            "",
        )
    ));
    fake.push([
        openai::text("noted one", (1000, 10)),
        openai::tool_calls(
            &[(
                "c1",
                "write_file",
                json!({"path": "output/two.md", "content": "BRAVO-2"}),
            )],
            (2000, 10),
        ),
        openai::text("noted two", (60000, 10)),
        openai::text(
            "SUMMARY: the code is ALPHA-1; BRAVO-2 is in output/two.md",
            (500, 20),
        ),
        openai::text("The code was ALPHA-1.", (900, 10)),
        openai::text("Still ALPHA-1.", (1200, 10)),
    ]);
    let case = s.ok(&["case", "new", "a long case"]);
    send_and_reply(&s, "writer", "fact one: the code is ALPHA-1", &case);
    send_and_reply(&s, "writer", "fact two: write BRAVO-2 down", &case);
    assert_eq!(fake.count(), 3, "no compaction below the threshold");
    let r = send_and_reply(&s, "writer", "what was the code?", &case);
    assert_eq!(r["body"]["text"], "The code was ALPHA-1.");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5, "exactly one summary request");
    assert_eq!(reqs.iter().filter(|r| is_summary(r)).count(), 1);
    let summary = &reqs[3];
    assert!(is_summary(summary), "{}", summary.body);
    assert_eq!(summary.body["model"], "small-model", "compact_model");
    assert_eq!(summary.body["max_tokens"], 200, "compact_max_tokens");
    let text = transcript(summary);
    for older in [
        "fact one: the code is ALPHA-1",
        "noted one",
        "fact two: write BRAVO-2 down",
        "write_file",
        "wrote 7 bytes to output/two.md",
        "noted two",
    ] {
        assert!(
            text.contains(older),
            "{older:?} not in the transcript:\n{text}"
        );
    }
    assert!(
        !text.contains("what was the code"),
        "the current message is kept"
    );

    // The next real request: the summary, then only the current message.
    let next = &reqs[4];
    assert_eq!(next.body["model"], "fake-model");
    assert_eq!(next.body["tools"].as_array().unwrap().len(), 8);
    let c = contents(next);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].contains("SUMMARY: the code is ALPHA-1"), "{}", c[0]);
    assert!(c[1].contains("what was the code?"), "{}", c[1]);
    assert!(!next.body.to_string().contains("fact one"));

    // The case continues from the summary, without compacting again.
    let r = send_and_reply(&s, "writer", "and now?", &case);
    assert_eq!(r["body"]["text"], "Still ALPHA-1.");
    let last = &fake.requests()[5];
    let c = contents(last);
    assert_eq!(
        c.len(),
        4,
        "summary, the kept exchange, the new message: {c:?}"
    );
    assert!(c[0].contains("SUMMARY"));
    assert_eq!(c[2], "The code was ALPHA-1.");

    // The file holds every original turn plus the summary line.
    let conv = conversation(&s, "writer", &case);
    let kinds: Vec<&str> = conv.iter().map(|t| t["turn"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user",
            "assistant",
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "summary",
            "assistant",
            "user",
            "assistant"
        ],
        "{conv:?}"
    );
    let line = conv.iter().find(|t| t["turn"] == "summary").unwrap();
    assert_eq!(line["upto"], 6);
    assert_eq!(line["model"], "small-model");
    assert_eq!(line["usage"], json!({"input": 500, "output": 20}));
    assert!(conv[0]["text"].as_str().unwrap().contains("fact one"));

    // Charged as a compaction, at the small model's price; logged.
    let costs = agent_records(&s, "writer", "costs.jsonl");
    assert_eq!(costs.len(), 6);
    let charged: Vec<&Value> = costs
        .iter()
        .filter(|c| c["purpose"] == "compaction")
        .collect();
    assert_eq!(charged.len(), 1, "{costs:?}");
    assert_eq!(charged[0]["model"], "small-model");
    assert_eq!(charged[0]["case"], case.as_str());
    assert!((charged[0]["usd"].as_f64().unwrap() - 0.000054).abs() < 1e-12);
    let logged = events(&s, "writer", "llm_compacted");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["reason"], "context_window");
    assert_eq!(logged[0]["turns"], 6);
    assert_eq!(logged[0]["tokens_before"], 60010);
    assert!(logged[0]["tokens_after"].as_u64().unwrap() < 50000);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn context_too_long_compacts_once_and_retries_or_says_it_did_not_help() {
    let fake = FakeLlm::start();
    let stuck = FakeLlm::start();
    // No context_window: only the provider's refusal compacts.
    let mut s = start(&format!(
        "{}{}",
        llm_agent("writer", &fake, "openai", "", ""),
        llm_agent("stuck", &stuck, "openai", "", "max_attempts = 1"),
    ));
    let too_long = || {
        Reply::error(
            400,
            "context_length_exceeded",
            "This model's maximum context length is 8192 tokens",
        )
    };
    fake.push([
        openai::text("one", (10, 1)),
        openai::text("two", (10, 1)),
        too_long(),
        openai::text("SUMMARY of one", (30, 5)),
        openai::text("three", (10, 1)),
    ]);
    let case = s.ok(&["case", "new", "refused once"]);
    send_and_reply(&s, "writer", "first: remember ONE", &case);
    send_and_reply(&s, "writer", "second: remember TWO", &case);
    let id = s.ok(&["send", "writer", "third", "--case", &case]);
    let r = wait_orchestrator(&s, "the reply after compaction", |r| {
        r["reply_to"] == id.as_str()
    });
    assert_eq!(r["body"]["text"], "three");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5, "refused, summarised, retried once");
    assert!(is_summary(&reqs[3]));
    assert_eq!(
        reqs[3].body["model"], "fake-model",
        "no compact_model: the agent's"
    );
    let text = transcript(&reqs[3]);
    assert!(
        text.contains("remember ONE") && !text.contains("remember TWO"),
        "compact_keep = 2 by default: {text}"
    );
    let c = contents(&reqs[4]);
    assert_eq!(
        c.len(),
        4,
        "summary, second message and answer, third: {c:?}"
    );
    assert!(c[0].contains("SUMMARY of one"));
    assert!(c[1].contains("remember TWO") && c[3].contains("third"));
    assert_eq!(
        contents(&reqs[2]).len(),
        5,
        "the refused request had it all"
    );
    let handled = wait_until(SOON, "message_handled", || {
        events(&s, "writer", "message_handled")
            .into_iter()
            .find(|e| e["id"] == id.as_str())
    });
    assert_eq!(handled["attempt"], 1, "no failed attempt");
    assert!(events(&s, "writer", "message_failed").is_empty());
    assert!(records(&s.agent("writer").dir.join("deadletter.jsonl")).is_empty());
    let logged = events(&s, "writer", "llm_compacted");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["reason"], "context_too_long");

    // Refused again after compacting: the attempt fails, saying so.
    stuck.push([
        openai::text("one", (10, 1)),
        openai::text("two", (10, 1)),
        too_long(),
        openai::text("SUMMARY", (30, 5)),
        too_long(),
    ]);
    let case = s.ok(&["case", "new", "refused twice"]);
    send_and_reply(&s, "stuck", "first", &case);
    send_and_reply(&s, "stuck", "second", &case);
    s.ok(&["send", "stuck", "third", "--case", &case]);
    let failed = wait_until(SOON, "stuck gives up", || {
        events(&s, "stuck", "message_failed").into_iter().next()
    });
    let e = failed["error"].as_str().unwrap();
    assert!(
        e.contains("does not fit the context window")
            && e.contains("compaction did not help")
            && e.contains("compact_keep (now 2)")
            && e.contains("context_window"),
        "{e}"
    );
    assert_eq!(failed["permanent"], true);
    wait_until(SOON, "the dead letter", || {
        (!events(&s, "stuck", "message_dead_lettered").is_empty()).then_some(())
    });
    assert_eq!(stuck.count(), 5, "one compaction, one retry, no more");
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

#[test]
fn a_sigkill_during_the_summary_call_redoes_it_once() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "writer",
        &fake,
        "openai",
        r#", timeout = "60s", context_window = 100000, compact_keep = 1"#,
        "",
    ));
    fake.push([
        openai::text("noted", (80000, 10)),
        // The summary call hangs long enough to kill the agent during it.
        openai::text("never used", (1, 1)).delayed(Duration::from_secs(40)),
        openai::text("SUMMARY: noted", (50, 5)),
        openai::text("answered", (100, 5)),
    ]);
    let case = s.ok(&["case", "new", "killed while compacting"]);
    send_and_reply(&s, "writer", "first", &case);
    let id = s.ok(&["send", "writer", "second", "--case", &case]);
    wait_until(SOON, "the summary call", || {
        (fake.count() == 2).then_some(())
    });
    assert!(is_summary(&fake.requests()[1]));
    let pid = s.agent_pid("writer").expect("the writer runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let reply = wait_orchestrator(&s, "the reply after the crash", |r| {
        r["reply_to"] == id.as_str()
    });
    assert_eq!(reply["body"]["text"], "answered");
    assert_eq!(reply["gen"], 2, "sent by the replacement");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4, "the summary redone once, then the call");
    assert!(is_summary(&reqs[2]));
    assert_eq!(reqs[2].body, reqs[1].body, "the same cut summarised again");
    let c = contents(&reqs[3]);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].contains("SUMMARY: noted") && c[1].contains("second"));

    let conv = conversation(&s, "writer", &case);
    assert_eq!(
        conv.iter().filter(|t| t["turn"] == "summary").count(),
        1,
        "one summary line: {conv:?}"
    );
    assert_eq!(conv.len(), 5, "user, assistant, user, summary, assistant");
    assert_eq!(events(&s, "writer", "llm_compacted").len(), 1);
    let costs = agent_records(&s, "writer", "costs.jsonl");
    assert_eq!(
        costs.len(),
        3,
        "the killed call was never answered: {costs:?}"
    );
    assert_eq!(
        costs
            .iter()
            .filter(|c| c["purpose"] == "compaction")
            .count(),
        1
    );
    // No duplicate outputs.
    assert_eq!(records(&s.agent("writer").outbox()).len(), 2);
    assert_eq!(orchestrator_from(&s, "writer", "reply").len(), 2);
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}
