//! `society selftest --quick` passes on this machine, reports every check
//! with evidence, writes its report, and appends to the society's history.
//! This is how CI runs the self-test (.ci/run → cargo test).

use crate::support::BIN;
use serde_json::Value;
use society_testkit::{records, Society};

#[test]
fn quick_selftest_passes_and_records_history() {
    let s = Society::new(BIN, "");
    let report = s.root().join("report.json");
    let out = s
        .command(&["selftest", "--quick", "--json", "--report"])
        .arg(&report)
        .output()
        .expect("run selftest");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    let failed: Vec<String> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| format!("{}: {}", c["name"], c["evidence"]))
        .collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "selftest failed ({:?}): {failed:#?}",
        out.status.code()
    );
    assert_eq!(doc["passed"], 12);
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for want in [
        "sigkill_mid_message",
        "supervisor_sigkill",
        "many_agents",
        "fsck_clean",
        "approval_restarts",
    ] {
        assert!(names.contains(&want), "missing check {want}");
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report file")).expect("json");
    assert_eq!(written["passed"], 12);
    let history = records(&s.layout().supervisor_dir().join("selftest.jsonl"));
    assert_eq!(history.len(), 1, "one history line per run");
    assert_eq!(history[0]["failed"], 0);
    assert!(
        s.processes().is_empty(),
        "selftest left processes behind: {:?}",
        s.processes()
    );
}

#[test]
fn a_failing_check_fails_the_run_with_evidence() {
    // A scratch society cannot be created under a missing TMPDIR: the check
    // fails for real, and the run must say so and exit 7.
    let s = Society::new(BIN, "");
    let out = s
        .command(&["selftest", "--quick", "--only", "round_trip"])
        .env("TMPDIR", s.root().join("no-such-dir"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL round_trip"), "{text}");
    assert!(
        text.contains("promise: a message to an echo agent comes back once"),
        "{text}"
    );
    assert!(
        text.contains("0/1 passed") && text.contains("FAILED: round_trip"),
        "{text}"
    );
    let history = records(&s.layout().supervisor_dir().join("selftest.jsonl"));
    assert_eq!(history[0]["failed"], 1);
}
