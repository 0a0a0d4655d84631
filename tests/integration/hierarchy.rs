//! The organisation (SOCIETY.md O1/O2): orchestrator ← two leads ← six
//! workers. Escalations and approval requests go to the lowest common
//! supervisor of their parties, up the chain when a lead does not answer in
//! time or is asked beyond its scope, and reach the orchestrator last, the
//! chain recorded. Cycles and missing leads are refused at load.

use crate::support::{code, json_of, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::time::Duration;

/// Workers: `complain` escalates with a second party (`body.with`),
/// `ask` requests approval (no amount), `spend` sends an approval request
/// naming an amount; every answer is reported to the orchestrator.
const WORKER: &str = r#"
kind = "script"
[[rules]]
type = "complain"
actions = [{ do = "escalate", reason = "{{body.reason}}", context = { parties = ["{{body.with}}"] } }]
[[rules]]
type = "ask"
actions = [{ do = "request_approval", plan = "{{body.plan}}" }]
[[rules]]
type = "spend"
actions = [{ do = "send", to = "orchestrator", type = "approval_request", body = { plan = "spend", usd = "{{body.usd}}" } }]
[[rules]]
type = "approval_response"
actions = [{ do = "send", to = "orchestrator", type = "got_answer", body = { approved = "{{body.approved}}", by = "{{body.by}}", request = "{{body.request}}" } }]
"#;

fn org_toml(lead_b_within: &str) -> String {
    let worker = |id: &str, team: &str| {
        let mut s = format!("\n[[agent]]\nid = \"{id}\"\nrole = \"{team}\"\n[agent.brain]\n");
        for line in WORKER.lines().filter(|l| !l.is_empty()) {
            s.push_str(&line.replace("[[rules]]", "[[agent.brain.rules]]"));
            s.push('\n');
        }
        s
    };
    let mut t = format!(
        r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[roles.team-a]
reports_to = "lead-a"
[roles.team-b]
reports_to = "lead-b"

# Answers escalations (handled) and approvals (yes) — within its scope.
[[agent]]
id = "lead-a"
role = "lead"
answer_within = "1m"
approve = {{ kinds = ["plan"], max_usd = 5.0 }}
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "escalation"
actions = [{{ do = "reply", type = "handled", body = {{ note = "sorted in team a" }} }}]
[[agent.brain.rules]]
type = "approval_request"
actions = [{{ do = "reply", type = "approval_decision", body = {{ approve = true, note = "fine by lead-a" }} }}]

# Never answers.
[[agent]]
id = "lead-b"
role = "lead"
answer_within = "{lead_b_within}"
brain = {{ kind = "script" }}
"#
    );
    for id in ["a1", "a2", "a3"] {
        t.push_str(&worker(id, "team-a"));
    }
    for id in ["b1", "b2", "b3"] {
        t.push_str(&worker(id, "team-b"));
    }
    t
}

fn escalations(s: &Society) -> Vec<Value> {
    records(&s.layout().supervisor_escalations())
}

fn orchestrator_inbox(s: &Society, kind: &str) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|m| m["type"] == kind)
        .collect()
}

fn send(s: &Society, to: &str, kind: &str, body: &str) -> String {
    s.ok(&["send", to, "--type", kind, "--json", body])
        .trim()
        .to_string()
}

fn nodes(chain: &Value) -> Vec<(String, String)> {
    chain
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or("").to_string(),
                n["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn an_escalation_stops_at_the_team_lead_and_between_teams_reaches_the_orchestrator() {
    let mut s = Society::new(BIN, &org_toml("1m"));
    s.start_supervisor();

    // Two workers of team a: their lead handles it; the orchestrator never sees it.
    send(
        &s,
        "a1",
        "complain",
        r#"{"reason": "a2 broke my build", "with": "a2"}"#,
    );
    let answered = wait_until(SOON, "lead-a handles the escalation", || {
        escalations(&s)
            .into_iter()
            .find(|r| r["event"] == "answered")
    });
    assert_eq!(answered["by"], "lead-a");
    assert_eq!(answered["how"], "handled");
    assert_eq!(answered["note"], "sorted in team a");
    assert_eq!(
        nodes(&answered["chain"]),
        [("lead-a".into(), "handled".into())]
    );
    let opened: Vec<Value> = escalations(&s)
        .into_iter()
        .filter(|r| r["event"] == "opened")
        .collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["at"], "lead-a");
    assert_eq!(opened[0]["parties"], serde_json::json!(["a1", "a2"]));
    // The lead got it from the supervisor, with the chain in the body.
    let at_lead: Vec<Value> = records(&s.agent("lead-a").inbox())
        .into_iter()
        .filter(|m| m["type"] == "escalation")
        .collect();
    assert_eq!(at_lead.len(), 1);
    assert_eq!(at_lead[0]["from"], "supervisor");
    assert_eq!(at_lead[0]["body"]["reason"], "a2 broke my build");
    assert_eq!(at_lead[0]["body"]["chain"][0]["node"], "lead-a");
    assert!(orchestrator_inbox(&s, "escalation").is_empty());

    // A worker of each team: no shared lead, so the orchestrator, chain recorded.
    send(
        &s,
        "a3",
        "complain",
        r#"{"reason": "b1 is late", "with": "b1"}"#,
    );
    let esc = wait_until(SOON, "the cross-team escalation", || {
        orchestrator_inbox(&s, "escalation").into_iter().next()
    });
    assert_eq!(esc["body"]["agent"], "a3");
    assert_eq!(esc["body"]["parties"], serde_json::json!(["a3", "b1"]));
    assert_eq!(
        nodes(&esc["body"]["chain"]),
        [("orchestrator".into(), String::new())]
    );
    assert!(records(&s.agent("lead-a").inbox())
        .iter()
        .all(|m| m["body"]["reason"] != "b1 is late"));
    assert!(records(&s.agent("lead-b").inbox())
        .iter()
        .all(|m| m["body"]["reason"] != "b1 is late"));
}

#[test]
fn a_lead_that_does_not_answer_in_time_is_skipped() {
    let mut s = Society::new(BIN, &org_toml("1s"));
    s.start_supervisor();
    send(
        &s,
        "b1",
        "complain",
        r#"{"reason": "b2 took my slot", "with": "b2"}"#,
    );
    let opened = wait_until(SOON, "the escalation waits at lead-b", || {
        escalations(&s).into_iter().find(|r| r["event"] == "opened")
    });
    assert_eq!(opened["at"], "lead-b");
    let esc = wait_until(SOON, "it reaches the orchestrator", || {
        orchestrator_inbox(&s, "escalation").into_iter().next()
    });
    // The batch's other destination (the log) lands just after the inbox.
    wait_until(SOON, "the move is logged", || {
        escalations(&s).into_iter().find(|r| r["event"] == "moved")
    });
    assert_eq!(
        nodes(&esc["body"]["chain"]),
        [
            ("lead-b".into(), "timeout".into()),
            ("orchestrator".into(), String::new())
        ]
    );
    let moved: Vec<Value> = escalations(&s)
        .into_iter()
        .filter(|r| r["event"] == "moved")
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        (moved[0]["from"].as_str(), moved[0]["to"].as_str()),
        (Some("lead-b"), Some("orchestrator"))
    );
    assert_eq!(moved[0]["why"], "timeout");
    // Not before its time: about a second after it was opened.
    let t = |r: &Value| society_core::time::parse_rfc3339(r["ts"].as_str().unwrap()).unwrap();
    let waited = t(&moved[0]).duration_since(t(&opened)).unwrap();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // A late answer from the lead is refused with a notice.
    let lead_msg = records(&s.agent("lead-b").inbox())
        .into_iter()
        .find(|m| m["type"] == "escalation")
        .unwrap();
    assert_eq!(lead_msg["body"]["item"], esc["id"]);
}

#[test]
fn a_lead_approves_within_its_scope_and_the_rest_goes_up() {
    let mut s = Society::new(BIN, &org_toml("1m"));
    s.start_supervisor();

    // Within scope (a plan, no amount): lead-a approves; a1 gets the answer.
    send(&s, "a1", "ask", r#"{"plan": "rename the module"}"#);
    let got = wait_until(SOON, "a1's answer", || {
        orchestrator_inbox(&s, "got_answer").into_iter().next()
    });
    assert_eq!(got["from"], "a1");
    assert_eq!(got["body"]["approved"], true);
    assert_eq!(got["body"]["by"], "lead-a");
    let request = got["body"]["request"].as_str().unwrap().to_string();
    // Never the orchestrator's to answer: not pending, and a late answer is refused.
    assert!(orchestrator_inbox(&s, "approval_request").is_empty());
    assert_eq!(
        json_of(&s, &["approvals", "-o", "json"]),
        serde_json::json!([])
    );
    let (rc, _, err) = code(&s, &["approve", &request]);
    assert_ne!(rc, 0);
    assert!(err.contains("already approved by lead lead-a"), "{err}");

    // Beyond scope (50 USD > max_usd 5): lead-a is skipped, the orchestrator decides.
    send(&s, "a2", "spend", r#"{"usd": 50.0}"#);
    let pending = wait_until(SOON, "the request at the orchestrator", || {
        let v = json_of(&s, &["approvals", "-o", "json"]);
        v.as_array()?
            .first()
            .cloned()
            .filter(|a| a["at"].is_string())
    });
    assert_eq!(pending["at"], "orchestrator");
    assert_eq!(pending["chain"][0]["node"], "lead-a");
    assert_eq!(pending["chain"][0]["outcome"], "out_of_scope");
    assert!(
        pending["chain"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_usd"),
        "{pending}"
    );
    let table = s.ok(&["approvals"]);
    assert!(table.contains("at: orchestrator"), "{table}");
    assert!(
        records(&s.agent("lead-a").inbox())
            .iter()
            .filter(|m| m["type"] == "approval_request")
            .count()
            == 1
    );
    let id = pending["id"].as_str().unwrap();
    s.ok(&["approve", id]);
    wait_until(SOON, "a2's answer", || {
        orchestrator_inbox(&s, "got_answer")
            .into_iter()
            .find(|m| m["from"] == "a2" && m["body"]["approved"] == true)
    });
}

#[test]
fn a_lead_answering_beyond_its_scope_is_refused_and_the_request_goes_up() {
    // lead-a approves anything it is sent; its scope is narrowed by a
    // reload while the request waits at it, so its answer is beyond it.
    let toml = org_toml("1m");
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    s.ok(&["stop", "lead-a"]);
    send(&s, "a1", "ask", r#"{"plan": "delete the cache"}"#);
    wait_until(SOON, "the request waits at lead-a", || {
        escalations(&s)
            .into_iter()
            .find(|r| r["event"] == "opened" && r["at"] == "lead-a")
    });
    let table = s.ok(&["approvals"]);
    assert!(table.contains("at: lead-a"), "{table}");
    let narrowed = toml.replace(
        r#"approve = { kinds = ["plan"], max_usd = 5.0 }"#,
        r#"approve = { kinds = ["route"] }"#,
    );
    std::fs::write(s.root().join("society.toml"), narrowed).unwrap();
    s.ok(&["config", "reload"]);
    s.ok(&["restart", "lead-a"]);
    let moved = wait_until(
        SOON,
        "the answer is refused and the request goes up",
        || escalations(&s).into_iter().find(|r| r["event"] == "moved"),
    );
    assert_eq!(moved["from"], "lead-a");
    assert_eq!(moved["to"], "orchestrator");
    assert_eq!(moved["why"], "out_of_scope");
    let notice = wait_until(SOON, "lead-a is told", || {
        records(&s.agent("lead-a").inbox())
            .into_iter()
            .find(|m| m["type"] == "message_blocked")
    });
    assert!(
        notice["body"]["reason"]
            .as_str()
            .unwrap()
            .contains("beyond your scope"),
        "{notice}"
    );
    let pending = json_of(&s, &["approvals", "-o", "json"]);
    assert_eq!(pending[0]["at"], "orchestrator", "{pending}");
    assert!(orchestrator_inbox(&s, "got_answer").is_empty());
}

#[test]
fn cycles_and_missing_leads_are_refused_at_load_with_the_chain() {
    let cyc = r#"
[[agent]]
id = "x"
reports_to = "y"
[[agent]]
id = "y"
reports_to = "z"
[[agent]]
id = "z"
reports_to = "x"
"#;
    let s = Society::new(BIN, cyc);
    let (rc, out, err) = code(&s, &["check"]);
    assert_ne!(rc, 0, "{out}");
    assert!(err.contains("reports_to cycle: x → y → z → x"), "{err}");

    let missing = "[[agent]]\nid = \"x\"\nreports_to = \"ghost\"\n";
    let s = Society::new(BIN, missing);
    let (rc, _, err) = code(&s, &["check"]);
    assert_ne!(rc, 0);
    assert!(err.contains("x → ghost"), "{err}");
    assert!(err.contains("names no declared agent"), "{err}");

    let outside = "[[agent]]\nid = \"x\"\nreports_to = \"supervisor\"\n";
    let s = Society::new(BIN, outside);
    let (rc, _, err) = code(&s, &["check"]);
    assert_ne!(rc, 0);
    assert!(err.contains("outside the society"), "{err}");

    // A role whose lead is missing is refused too (its spawned agents would report to it).
    let role = "[roles.w]\nreports_to = \"nobody\"\n";
    let s = Society::new(BIN, role);
    let (rc, _, err) = code(&s, &["check"]);
    assert_ne!(rc, 0);
    assert!(err.contains("role w") && err.contains("nobody"), "{err}");

    // Bad values of the other keys, named.
    for (toml, want) in [
        (
            "[[agent]]\nid = \"x\"\nanswer_within = \"soon\"\n",
            "answer_within \"soon\"",
        ),
        (
            "[[agent]]\nid = \"x\"\napprove = { kinds = [\"all\"] }\n",
            "approve.kinds: \"all\"",
        ),
        (
            "[[agent]]\nid = \"x\"\napprove = { max_usd = -1.0 }\n",
            "approve.max_usd",
        ),
        (
            "[[agent]]\nid = \"x\"\napprove = { budget = 1 }\n",
            "budget",
        ),
    ] {
        let s = Society::new(BIN, toml);
        let (rc, _, err) = code(&s, &["check"]);
        assert_ne!(rc, 0, "{toml}");
        assert!(err.contains(want), "{toml}: {err}");
    }

    // And the supervisor refuses to start on it.
    let s = Society::new(BIN, cyc);
    let (rc, _, err) = code(&s, &["supervise"]);
    assert_ne!(rc, 0);
    assert!(err.contains("reports_to cycle"), "{err}");

    // A running society refuses it at `config reload` and keeps its organisation.
    let mut s = Society::new(BIN, &org_toml("1m"));
    s.start_supervisor();
    let toml = org_toml("1m").replace(
        "id = \"lead-a\"\nrole = \"lead\"\n",
        "id = \"lead-a\"\nrole = \"lead\"\nreports_to = \"a1\"\n",
    );
    std::fs::write(s.root().join("society.toml"), toml).unwrap();
    let (rc, _, err) = code(&s, &["config", "reload"]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("reports_to cycle: lead-a → a1 → lead-a"),
        "{err}"
    );
    let tree = json_of(&s, &["tree", "-o", "json"]);
    assert_eq!(tree["members"][0]["id"], "lead-a", "{tree}");
}

#[test]
fn tree_and_status_by_team() {
    let mut s = Society::new(BIN, &org_toml("1m"));
    s.start_supervisor();
    // A worker spawned later of a team's role reports to the role's lead.
    s.ok(&["spawn", "team-b", "--id", "b4"]);
    let tree = json_of(&s, &["tree", "-o", "json"]);
    assert_eq!(tree["root"], "orchestrator");
    let members = tree["members"].as_array().unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&tree["members"]), ["lead-a", "lead-b"]);
    assert_eq!(ids(&members[0]["members"]), ["a1", "a2", "a3"]);
    assert_eq!(ids(&members[1]["members"]), ["b1", "b2", "b3", "b4"]);
    assert!(members[0]["state"].is_string());

    // Something waiting at lead-b shows at it.
    s.ok(&["stop", "lead-b"]);
    send(&s, "b1", "complain", r#"{"reason": "noise", "with": "b2"}"#);
    let tree = wait_until(SOON, "the item shows at lead-b", || {
        let t = json_of(&s, &["tree", "-o", "json"]);
        (t["members"][1]["pending"].as_array()?.len() == 1).then_some(t)
    });
    let waiting = &tree["members"][1]["pending"][0];
    assert_eq!(waiting["kind"], "escalation");
    assert_eq!(waiting["parties"], serde_json::json!(["b1", "b2"]));
    let text = s.ok(&["tree"]);
    assert!(text.starts_with("orchestrator\n"), "{text}");
    assert!(text.contains("├─ lead-a"), "{text}");
    assert!(text.contains("│  ├─ a1"), "{text}");
    assert!(
        text.contains("lead-b  lead  ") && text.contains("waiting: escalation"),
        "{text}"
    );

    let team = json_of(&s, &["status", "--team", "lead-a", "-o", "json"]);
    assert_eq!(ids(&team["agents"]), ["a1", "a2", "a3", "lead-a"]);
    let (rc, _, err) = code(&s, &["status", "--team", "nobody"]);
    assert_ne!(rc, 0);
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn an_item_waiting_at_a_lead_survives_a_supervisor_sigkill_once() {
    let mut s = Society::new(BIN, &org_toml("3s"));
    s.start_supervisor();
    send(&s, "b1", "ask", r#"{"plan": "repaint"}"#);
    send(
        &s,
        "b2",
        "complain",
        r#"{"reason": "b3 again", "with": "b3"}"#,
    );
    wait_until(SOON, "both wait at lead-b", || {
        let at: Vec<Value> = escalations(&s)
            .into_iter()
            .filter(|r| r["event"] == "opened")
            .collect();
        (at.len() == 2).then_some(())
    });
    // The approval skipped lead-b (no scope) and waits at the orchestrator;
    // the escalation waits at lead-b.
    s.kill_supervisor();
    let pending = json_of(&s, &["approvals", "-o", "json"]);
    assert_eq!(pending[0]["at"], "orchestrator");
    let tree = json_of(&s, &["tree", "-o", "json"]);
    assert_eq!(tree["members"][1]["pending"].as_array().unwrap().len(), 1);
    s.start_supervisor();
    let esc = wait_until(SOON, "the escalation moves up after the restart", || {
        orchestrator_inbox(&s, "escalation").into_iter().next()
    });
    assert_eq!(esc["body"]["chain"][0]["outcome"], "timeout");
    // Kill again after the move: nothing is redone. A new escalation, handled
    // after the restart, shows the new supervisor has run its timers.
    s.kill_supervisor();
    s.start_supervisor();
    send(
        &s,
        "a1",
        "complain",
        r#"{"reason": "after the restart", "with": "a2"}"#,
    );
    wait_until(SOON, "lead-a handles the new one", || {
        escalations(&s)
            .into_iter()
            .find(|r| r["event"] == "answered")
    });
    let by_event = |e: &str| escalations(&s).iter().filter(|r| r["event"] == e).count();
    assert_eq!((by_event("opened"), by_event("moved")), (3, 1));
    assert_eq!(orchestrator_inbox(&s, "escalation").len(), 1);
    assert_eq!(orchestrator_inbox(&s, "approval_request").len(), 1);
    let at_lead = records(&s.agent("lead-b").inbox())
        .into_iter()
        .filter(|m| m["type"] == "escalation")
        .count();
    assert_eq!(at_lead, 1);
}

/// A crash between a batch's appends and its checkpoint — the item opened
/// at the lead, then the lead's answer — is resumed at the restart against
/// the state before the batch: nothing doubled, no answer refused as late.
#[test]
fn a_crash_mid_batch_neither_doubles_nor_refuses_an_item() {
    for point in ["opened", "answered"] {
        let mut s = Society::new(BIN, &org_toml("1m"));
        let fault = format!("supervisor.escalations.{point}");
        s.start_supervisor_with(&[("SOCIETY_FAULTS", fault.as_str())]);
        send(
            &s,
            "a1",
            "complain",
            r#"{"reason": "a2 again", "with": "a2"}"#,
        );
        wait_until(SOON, "the supervisor aborts at the crash point", || {
            s.supervisor_exited().then_some(())
        });
        assert!(
            escalations(&s).iter().any(|r| r["event"] == point),
            "{point}: the record landed before the crash"
        );
        s.start_supervisor();
        wait_until(SOON, "lead-a's answer is recorded", || {
            escalations(&s)
                .into_iter()
                .find(|r| r["event"] == "answered")
        });
        let count = |e: &str| escalations(&s).iter().filter(|r| r["event"] == e).count();
        assert_eq!((count("opened"), count("answered")), (1, 1), "{point}");
        let inbox = records(&s.agent("lead-a").inbox());
        let kinds = |k: &str| inbox.iter().filter(|m| m["type"] == k).count();
        assert_eq!(kinds("escalation"), 1, "{point}: {inbox:?}");
        assert_eq!(kinds("message_blocked"), 0, "{point}: {inbox:?}");
        assert!(orchestrator_inbox(&s, "escalation").is_empty(), "{point}");
    }
}

/// A lead that escalates while handling an item passes it up, chain kept.
#[test]
fn a_lead_escalating_passes_the_item_up_with_its_chain() {
    let toml = org_toml("1m").replace(
        "answer_within = \"1m\"\nbrain = { kind = \"script\" }",
        "answer_within = \"1m\"\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\ntype = \"escalation\"\nactions = [{ do = \"escalate\", reason = \"beyond me: {{body.reason}}\" }]",
    );
    assert!(toml.contains("beyond me"), "{toml}");
    let mut s = Society::new(BIN, &toml);
    s.start_supervisor();
    send(
        &s,
        "b1",
        "complain",
        r#"{"reason": "b2 sings", "with": "b2"}"#,
    );
    let esc = wait_until(SOON, "the escalation reaches the orchestrator", || {
        orchestrator_inbox(&s, "escalation").into_iter().next()
    });
    assert_eq!(
        nodes(&esc["body"]["chain"]),
        [
            ("lead-b".into(), "escalated".into()),
            ("orchestrator".into(), String::new())
        ]
    );
    assert_eq!(esc["body"]["chain"][0]["reason"], "beyond me: b2 sings");
    assert_eq!(esc["body"]["reason"], "b2 sings", "the original reason");
    assert_eq!(
        orchestrator_inbox(&s, "escalation").len(),
        1,
        "not a second, new escalation"
    );
}
