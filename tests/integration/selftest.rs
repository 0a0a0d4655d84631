//! The self-test's checks are library functions
//! (`society_runtime::selftest`): each runs here as a test of its own, at
//! `--quick` size, exactly as `society selftest` runs it from cron. The CLI
//! around them is tested once: its report, its history line, and a failing
//! check that fails the run with evidence.

use crate::support::BIN;
use serde_json::Value;
use society_runtime::selftest::{self, Env};
use society_testkit::{records, Society};

/// Runs check `name` through the library, as `society selftest --quick` does.
fn check(name: &str) {
    let check = selftest::check(name).unwrap_or_else(|| panic!("no check {name}"));
    let env = Env {
        exe: BIN.into(),
        quick: true,
    };
    let r = check.run(&env);
    assert!(r.passed, "{name} ({}): {}", r.promise, r.evidence);
}

/// One test per check, named after it.
macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            check(stringify!($name));
        })*

        #[test]
        fn every_check_of_the_selftest_runs_here() {
            let here = [$(stringify!($name)),*];
            for c in &selftest::ALL {
                assert!(here.contains(&c.name), "check {} has no test here", c.name);
            }
        }
    };
}

checks!(
    round_trip,
    multi_stage_case,
    sigkill_mid_message,
    supervisor_sigkill,
    torn_tail,
    lock_contention,
    hung_agent,
    crash_loop,
    approval_restarts,
    message_loop,
    many_agents,
    fsck_clean,
    film_crew_learns,
);

#[test]
fn the_cli_reports_every_check_and_records_history() {
    let s = Society::new(BIN, "");
    let report = s.root().join("report.json");
    let out = s
        .command(&["selftest", "--quick", "--json", "--report"])
        .arg(&report)
        .args(["--only", "_t"])
        .output()
        .expect("run selftest");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    assert!(
        out.status.success(),
        "selftest failed ({:?}): {doc:#}",
        out.status.code()
    );
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let want: Vec<&str> = selftest::ALL
        .iter()
        .map(|c| c.name)
        .filter(|n| n.contains("_t"))
        .collect();
    assert_eq!(names, want, "--only picks by substring, in order");
    for c in doc["checks"].as_array().expect("checks") {
        assert_eq!(c["passed"], true, "{c}");
        assert!(c["evidence"].as_str().is_some_and(|e| !e.is_empty()), "{c}");
        assert!(c["promise"].as_str().is_some_and(|e| !e.is_empty()), "{c}");
    }
    assert_eq!(doc["passed"], want.len());
    let written: Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report file")).expect("json");
    assert_eq!(written["passed"], want.len());
    let history = records(&s.layout().selftest_history());
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
