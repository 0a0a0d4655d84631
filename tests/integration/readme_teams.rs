//! README.md's "Teams and leads" walk-through over `examples/teams`, pasted
//! line by line into one shell from the repository's root, as a new user
//! would: every line must succeed. Then what the README says happened is
//! checked in the files: the escalation within a team stopped at its lead,
//! the one between teams reached the orchestrator, `cam-2`'s request waits
//! at the orchestrator and `mic-2`'s was approved by `lead-sound`, the drone
//! shot reached `cam-3`, `mic-2` remembered its note, every agent
//! acknowledged the broadcast, and the shared file has its version.

use crate::support::{paste, readme_block, BIN, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until};
use std::path::Path;
use std::process::Command;

#[test]
fn the_teams_walk_through_works_pasted_line_by_line() {
    let lines = readme_block("### Teams and leads");
    for cmd in [
        "society tree",
        "society status --team",
        "--needs",
        "society shared put",
        "society broadcast",
        "society memory",
        "--purpose",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(cmd)),
            "the walk-through shows {cmd}: {lines:#?}"
        );
    }
    assert_eq!(
        lines.last().map(String::as_str),
        Some("society down"),
        "it ends with down"
    );
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("teams");
    // Everything but the final `down`: the files are checked first.
    let out = paste(
        &lines[..lines.len() - 1],
        "/tmp/teams",
        &dir,
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let down = || {
        let _ = Command::new(BIN)
            .args(["down", "--timeout", "20s"])
            .current_dir(&dir)
            .output();
    };
    if !out.status.success() {
        down();
        panic!("a walk-through line failed:\n{err}\nstdout:\n{stdout}");
    }
    let state = dir.join(".society-agent");
    let agent = |id: &str, file: &str| state.join(format!("agent-{id}")).join(file);
    let check = || -> Result<(), String> {
        // Within a team: the lead settled it. Between teams: the orchestrator.
        let log = records(&state.join("supervisor/escalations.jsonl"));
        let answered_by_lead = log.iter().any(|r| {
            r["event"] == "answered" && r["kind"] == "escalation" && r["by"] == "lead-sound"
        });
        let at_orchestrator: Vec<&Value> = log
            .iter()
            .filter(|r| r["event"] == "opened" && r["at"] == "orchestrator")
            .collect();
        let approved_by_lead = log
            .iter()
            .any(|r| r["event"] == "answered" && r["how"] == "approved" && r["by"] == "lead-sound");
        let orch = records(&state.join("orchestrator/inbox.jsonl"));
        let cross_team = orch.iter().any(|r| {
            r["type"] == "escalation"
                && r["body"]["reason"]
                    .as_str()
                    .is_some_and(|t| t.contains("cam-1 blocks"))
        });
        let shot = records(&agent("cam-3", "inbox.jsonl"))
            .iter()
            .any(|r| r["type"] == "shot");
        let memory = records(&agent("mic-2", "memory.jsonl"))
            .iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("hall rings")));
        let acks = records(&state.join("messages/broadcast.jsonl"))
            .iter()
            .filter(|r| r["event"] == "ack")
            .count();
        let shared =
            std::fs::read_to_string(state.join("shared/call-sheet.md")).unwrap_or_default();
        let facts = [
            ("within a team, lead-sound answered", answered_by_lead),
            (
                "two items wait at the orchestrator",
                at_orchestrator.len() >= 2,
            ),
            ("lead-sound approved mic-2", approved_by_lead),
            (
                "the cross-team escalation reached the orchestrator",
                cross_team,
            ),
            ("cam-3 got the drone shot", shot),
            ("mic-2 remembered", memory),
            ("all 8 acknowledged", acks >= 8),
            ("the call sheet is shared", shared.contains("Call time")),
        ];
        match facts.iter().find(|(_, ok)| !ok) {
            None => Ok(()),
            Some((what, _)) => Err(what.to_string()),
        }
    };
    let mut last = String::new();
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(SOON, "the walk-through's outcomes", || match check() {
            Ok(()) => Some(()),
            Err(e) => {
                last = e;
                None
            }
        })
    }));
    down();
    assert!(ok.is_ok(), "not yet true: {last}\nstdout:\n{stdout}");
    // What the README prints: the tree, the approval waiting at the
    // orchestrator, a reused-or-new folder for the purpose.
    assert!(
        stdout.contains("lead-sound") && stdout.contains("cam-3"),
        "{stdout}"
    );
    assert!(stdout.contains("at: orchestrator"), "{stdout}");
    assert!(stdout.contains("call-sheet.md v1"), "{stdout}");
}
