//! What a failed model call costs the message: every attempt recorded (group
//! commit included), permanent errors dead-lettered at once, and a provider's
//! `Retry-After` honoured across attempts and restarts.

use super::support::*;
use society_testkit::fake_llm::{openai, FakeLlm, Reply};
use society_testkit::{records, wait_until};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A society whose agents exist, its supervisor stopped (messages sent now queue up).
fn stopped(toml: &str) -> society_testkit::Society {
    let mut s = start(toml);
    s.stop_supervisor();
    s
}

fn dead_lettered(s: &society_testkit::Society, id: &str, n: usize) {
    wait_until(LONG, &format!("{n} dead letters of {id}"), || {
        (events(s, id, "message_dead_lettered").len() == n).then_some(())
    });
}

/// Three messages queued while the supervisor is down are group-committed;
/// a failed attempt inside the batch is recorded like any other.
#[test]
fn every_attempt_is_recorded_even_inside_a_batch() {
    let fake = FakeLlm::start();
    // An empty queue answers 500: every call fails, retryably.
    let mut s = stopped(&llm_agent(
        "worker",
        &fake,
        "openai",
        ", retries = 0",
        "max_attempts = 3",
    ));
    let ids: Vec<String> = (0..3)
        .map(|i| s.ok(&["send", "worker", &format!("job {i}"), "--no-start"]))
        .collect();
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    dead_lettered(&s, "worker", 3);
    let failed = events(&s, "worker", "message_failed");
    for id in &ids {
        let calls = requests_about(&fake, id).len();
        let recorded = failed.iter().filter(|e| e["id"] == id.as_str()).count();
        assert_eq!(
            (calls, recorded),
            (3, 3),
            "message {id}: model calls and recorded attempts"
        );
    }
    s.stop_supervisor();
}

/// 401, 403, 400 and a malformed answer fail the message at once: one call,
/// one `message_failed`, a dead letter naming the status and the provider's words.
#[test]
fn permanent_errors_dead_letter_at_the_first_failure() {
    let cases: [(&str, Reply, &str); 4] = [
        (
            "badkey",
            Reply::error(401, "invalid_api_key", "Incorrect API key provided"),
            "HTTP 401: Incorrect API key provided",
        ),
        (
            "forbidden",
            Reply::error(403, "forbidden", "Project lacks access"),
            "HTTP 403: Project lacks access",
        ),
        (
            "badreq",
            Reply::error(400, "invalid_request_error", "temperature out of range"),
            "HTTP 400): temperature out of range",
        ),
        (
            "garbled",
            Reply::raw(200, "{\"choices\": ["),
            "malformed response",
        ),
    ];
    let fakes: Vec<FakeLlm> = cases.iter().map(|_| FakeLlm::start()).collect();
    let toml: String = cases
        .iter()
        .zip(&fakes)
        .map(|((id, _, _), fake)| llm_agent(id, fake, "openai", "", "max_attempts = 3"))
        .collect();
    let mut s = stopped(&toml);
    for ((id, reply, _), fake) in cases.iter().zip(&fakes) {
        fake.push((0..10).map(|_| reply.clone()));
        s.ok(&["send", id, "one", "--no-start"]);
        s.ok(&["send", id, "two", "--no-start"]);
    }
    s.start_supervisor_with(&[("TEST_LLM_KEY", KEY)]);
    for ((id, _, words), fake) in cases.iter().zip(&fakes) {
        dead_lettered(&s, id, 2);
        assert_eq!(fake.count(), 2, "{id}: one call per message");
        let failed = events(&s, id, "message_failed");
        assert_eq!(failed.len(), 2, "{id}: {failed:?}");
        assert!(failed
            .iter()
            .all(|f| f["attempt"] == 1 && f["permanent"] == true));
        let dead = events(&s, id, "message_dead_lettered");
        let reason = dead[0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("permanent error on attempt 1") && reason.contains(words),
            "{id}: {reason}"
        );
    }
    s.stop_supervisor();
    assert_key_nowhere(s.root());
}

/// A `Retry-After` longer than `retry_max` defers the message: no attempt is
/// counted and no request is sent before the time, even by the next process
/// after a SIGKILL during the wait.
#[test]
fn retry_after_defers_the_message_across_a_restart() {
    let (long, short) = (FakeLlm::start(), FakeLlm::start());
    let toml = llm_agent("long", &long, "openai", "", "max_attempts = 2")
        + &llm_agent(
            "short",
            &short,
            "openai",
            ", retries = 1",
            "max_attempts = 2",
        );
    let mut s = start(&toml);
    // retry_max is 2s: 4s is beyond it, so the brain gives the wait to the runtime.
    long.push([
        Reply::error(429, "rate_limit_exceeded", "slow down").header("retry-after", "4"),
        openai::text("after the wait", (1, 1)),
    ]);
    // Within retry_max, but retries run out on a 429: the message still waits.
    short.push([
        Reply::error(429, "rate_limit_exceeded", "slow down").header("retry-after", "1"),
        Reply::error(429, "rate_limit_exceeded", "slow down").header("retry-after", "1"),
        Reply::error(429, "rate_limit_exceeded", "slow down").header("retry-after", "1"),
        openai::text("after three waits", (1, 1)),
    ]);
    let long_id = s.ok(&["send", "long", "go"]);
    let short_id = s.ok(&["send", "short", "go"]);
    let deferred = wait_until(SOON, "long's message deferred", || {
        events(&s, "long", "message_deferred").into_iter().next()
    });
    assert_eq!(deferred["id"], long_id.as_str());
    assert!(deferred["reason"].as_str().unwrap().contains("4s"));
    let pid = s.agent_pid("long").expect("long waits in its process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    for (id, msg, text) in [
        ("long", &long_id, "after the wait"),
        ("short", &short_id, "after three waits"),
    ] {
        let r = wait_orchestrator(&s, &format!("{id}'s reply"), |r| {
            r["reply_to"] == msg.as_str()
        });
        assert_eq!(r["body"]["text"], text);
        assert!(events(&s, id, "message_failed").is_empty(), "{id}");
        // The reply can be routed before the agent records it handled.
        let handled = society_testkit::wait_until(SOON, "the message recorded handled", || {
            events(&s, id, "message_handled").into_iter().next()
        });
        assert_eq!(handled["attempt"], 1, "{id}: a wait is not an attempt");
    }
    let gaps = |fake: &FakeLlm| -> Vec<Duration> {
        let r = fake.requests();
        r.windows(2).map(|w| w[1].at - w[0].at).collect()
    };
    let g = gaps(&long);
    assert_eq!(g.len(), 1);
    assert!(g[0] >= Duration::from_secs(4), "the restart waited: {g:?}");
    assert_eq!(
        events(&s, "long", "started").len(),
        2,
        "a replacement process sent the second request"
    );
    let g = gaps(&short);
    assert_eq!(g.len(), 3);
    assert!(g.iter().all(|d| *d >= Duration::from_secs(1)), "{g:?}");
    assert_eq!(events(&s, "short", "message_deferred").len(), 1);
    s.stop_supervisor();
    let _ = records(&s.layout().orchestrator_inbox());
}

/// A request that timed out was sent, and may be billed: the ledger says so.
#[test]
fn a_timed_out_call_leaves_an_unknown_cost_line() {
    let fake = FakeLlm::start();
    let mut s = start(&llm_agent(
        "slow",
        &fake,
        "openai",
        r#", retries = 1, timeout = "300ms""#,
        "",
    ));
    fake.push([
        openai::text("too late", (1, 1)).delayed(Duration::from_secs(3)),
        openai::text("in time", (1, 1)),
    ]);
    let id = s.ok(&["send", "slow", "go"]);
    wait_orchestrator(&s, "the reply", |r| r["reply_to"] == id.as_str());
    let costs = agent_records(&s, "slow", "costs.jsonl");
    let kinds: Vec<&str> = costs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unknown_cost", "usage"], "{costs:?}");
    let unknown = &costs[0];
    assert_eq!(unknown["id"], id.as_str());
    assert_eq!(unknown["step"], 1);
    let sent = fake.requests()[0].body.to_string().len() as u64;
    let bytes = unknown["request_bytes"].as_u64().unwrap();
    assert!(
        bytes > 100 && bytes.abs_diff(sent) < 64,
        "{bytes} vs {sent}"
    );
    assert!(unknown["reason"].as_str().unwrap().contains("timeout"));
    // `society costs` counts it apart from the answered calls, and says so.
    let report: serde_json::Value = serde_json::from_str(&s.ok(&["costs", "-o", "json"])).unwrap();
    assert_eq!(report["total"]["calls"], 1, "{report}");
    assert_eq!(report["total"]["unknown_cost_calls"], 1, "{report}");
    let table = s.ok(&["costs"]);
    assert!(
        table.contains("1 call(s) sent but never answered"),
        "{table}"
    );
    s.stop_supervisor();
}
