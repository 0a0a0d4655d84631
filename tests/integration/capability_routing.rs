//! `role:R` by capability and load: a message that `needs` capabilities goes
//! only to an agent of the role that has them all; otherwise to the agent
//! with the least waiting in its inbox; a case stays with the agent that has
//! it; and a batch re-planned after a crash places its messages where the
//! interrupted one did, whatever the load has become.

use crate::support::{BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};

const TEAM: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"
backoff_initial = "50ms"

[roles.dev]
brain = "echo"
capabilities = ["rust"]

[[agent]]
id = "d1"
role = "dev"

[[agent]]
id = "d2"
role = "dev"
capabilities = ["rust", "sql"]

[[agent]]
id = "d3"
role = "dev"
capabilities = ["sql"]

[[agent]]
id = "dispatch"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "job"
actions = [ { do = "forward", to = "role:dev", type = "task" } ]
[[agent.brain.rules]]
type = "db_job"
actions = [ { do = "forward", to = "role:dev", type = "task", needs = ["sql", "rust"] } ]
"#;

/// Messages in an agent's inbox, by type.
fn inbox(s: &Society, id: &str, kind: &str) -> Vec<Value> {
    records(&s.agent(id).inbox())
        .into_iter()
        .filter(|r| r["type"] == kind)
        .collect()
}

fn holders(s: &Society, kind: &str) -> Vec<(String, usize)> {
    ["d1", "d2", "d3"]
        .iter()
        .map(|a| (a.to_string(), inbox(s, a, kind).len()))
        .collect()
}

#[test]
fn needs_pick_the_agent_with_every_capability_from_the_cli_and_the_router() {
    let mut s = Society::new(BIN, TEAM);
    s.start_supervisor();
    // Distinct bodies: identical copies would be a flood to the receiver.
    for i in 0..4 {
        let text = format!("job {i}");
        s.ok(&[
            "send", "role:dev", "--type", "cli_db", "--needs", "sql,rust", &text,
        ]);
        s.ok(&["send", "dispatch", "--type", "db_job", &text]);
    }
    wait_until(SOON, "every routed db task delivered", || {
        (inbox(&s, "d2", "task").len() == 4).then_some(())
    });
    assert_eq!(
        inbox(&s, "d2", "cli_db").len(),
        4,
        "{:?}",
        holders(&s, "cli_db")
    );
    for other in ["d1", "d3"] {
        assert!(inbox(&s, other, "cli_db").is_empty());
        assert!(inbox(&s, other, "task").is_empty());
    }
    // Nobody has `go`: refused with the reason, nothing sent.
    let out = s.run(&["send", "role:dev", "--needs", "go", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no agent of role dev has every capability") && err.contains("(go)"),
        "{err}"
    );
    let out = s.run(&["send", "role:dev", "--needs", "Bad Need", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"Bad Need\""));
}

#[test]
fn the_least_loaded_agent_gets_the_next_message_and_a_case_stays_put() {
    let mut s = Society::new(BIN, TEAM);
    s.start_supervisor();
    // Stopped agents still take mail: it waits in their inboxes (load).
    for a in ["d1", "d2", "d3"] {
        s.ok(&["stop", a]);
    }
    let big = "z".repeat(2000);
    for _ in 0..3 {
        s.ok(&["send", "d1", "--type", "backlog", "--no-start", &big]);
    }
    for _ in 0..2 {
        s.ok(&["send", "d2", "--type", "backlog", "--no-start", "zzzz"]);
    }
    // Six jobs through the router: d3 (empty) fills up to d2, then they
    // share; d1, far behind, gets none.
    for i in 0..6 {
        s.ok(&["send", "dispatch", "--type", "job", &format!("zzz{i}")]);
        wait_until(SOON, "the job is placed", || {
            let now: usize = holders(&s, "task").iter().map(|(_, n)| n).sum();
            (now == i + 1).then_some(())
        });
    }
    let placed = holders(&s, "task");
    assert_eq!(placed[0].1, 0, "{placed:?}");
    let (d2, d3) = (placed[1].1, placed[2].1);
    assert!(
        d3 > d2 && d2 >= 1,
        "the emptier inbox gets more: {placed:?}"
    );

    // The CLI path weighs load the same way.
    for i in 0..3 {
        s.ok(&[
            "send",
            "role:dev",
            "--type",
            "cli_job",
            "--no-start",
            &format!("zzz{i}"),
        ]);
    }
    assert!(
        inbox(&s, "d1", "cli_job").is_empty(),
        "{:?}",
        holders(&s, "cli_job")
    );

    // A case sticks to its agent although it becomes the busiest.
    let case = s.ok(&["case", "new", "sticky"]).trim().to_string();
    let mut first = None;
    for i in 0..4 {
        let text = format!("zzz{i}");
        s.ok(&[
            "send",
            "role:dev",
            "--type",
            "case_job",
            "--case",
            &case,
            "--no-start",
            &text,
        ]);
        let who = wait_until(SOON, "the case message is placed", || {
            holders(&s, "case_job")
                .into_iter()
                .find(|(_, n)| *n == i + 1)
                .map(|(a, _)| a)
        });
        // The supervisor records the case's owner from the reflection.
        wait_until(SOON, "the case has its owner", || {
            let log = records(&s.layout().case_log(&case.parse().unwrap()));
            log.iter()
                .any(|r| r["event"] == "assigned" && r["to"] == who.as_str())
                .then_some(())
        });
        match &first {
            None => first = Some(who),
            Some(f) => assert_eq!(&who, f, "the case moved: {:?}", holders(&s, "case_job")),
        }
    }
}

#[test]
fn a_batch_replanned_after_a_crash_keeps_its_picks() {
    let mut s = Society::new(BIN, TEAM);
    s.start_supervisor();
    for a in ["d1", "d2", "d3"] {
        s.ok(&["stop", a]);
    }
    s.stop_supervisor();
    // The supervisor saves the batch that places the job, then dies.
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "supervisor.role_batch.saved")]);
    s.ok(&["send", "dispatch", "--type", "job", "--no-start", "zzzz"]);
    wait_until(SOON, "the supervisor died at the crash point", || {
        s.supervisor_exited().then_some(())
    });
    let ckpt: Value =
        serde_json::from_slice(&std::fs::read(s.layout().supervisor_checkpoint()).unwrap())
            .unwrap();
    let picks = ckpt["pending"]["picks"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(picks.len(), 1, "{ckpt}");
    let (msg, picked) = picks.into_iter().next().unwrap();
    let picked = picked.as_str().unwrap().to_string();
    assert!(holders(&s, "task").iter().all(|(_, n)| *n == 0));
    // Now the picked agent is by far the busiest: a fresh plan would choose
    // another one. The recorded pick stands.
    for i in 0..5 {
        s.ok(&[
            "send",
            &picked,
            "--type",
            "backlog",
            "--no-start",
            &format!("zzz{i}"),
        ]);
    }
    s.start_supervisor();
    wait_until(SOON, "the job is delivered", || {
        (holders(&s, "task").iter().map(|(_, n)| n).sum::<usize>() == 1).then_some(())
    });
    let got = inbox(&s, &picked, "task");
    assert_eq!(got.len(), 1, "{:?}", holders(&s, "task"));
    assert_eq!(got[0]["id"], msg.as_str());
}
