//! `society demo film-crew` end to end, the way a user runs it: twelve
//! episodes of real agent processes proposing decisions, real debates in
//! the supervisor, a simulated orchestrator. The share of decisions that
//! ask for approval must fall, and every number must follow from the files.

use crate::support::BIN;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn the_film_crew_learns_to_ask_less_and_the_files_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fc");
    let out = Command::new(BIN)
        .args(["demo", "film-crew", "--json", "--dir"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["falling"], true, "{doc:#}");
    let bands: Vec<f64> = doc["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["share"].as_f64().unwrap())
        .collect();
    assert_eq!(bands.len(), 3);
    // The source's bands: 60-70 % early, 30-40 % in the middle, 10-15 % late.
    assert!(bands[0] >= 0.55 && bands[0] <= 0.75, "{bands:?}");
    assert!(bands[1] >= 0.25 && bands[1] <= 0.45, "{bands:?}");
    assert!(bands[2] >= 0.08 && bands[2] <= 0.2, "{bands:?}");
    assert!(doc["debates"]["consensus"].as_u64().unwrap() >= 1);
    assert!(doc["debates"]["expired"].as_u64().unwrap() >= 1);

    // Re-derive every episode's numbers from decisions.jsonl alone.
    let state = root.join(".society-agent");
    let mut case_of: BTreeMap<String, String> = BTreeMap::new();
    let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
    let mut asked: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&state).unwrap().flatten() {
        let path = entry.path().join("decisions.jsonl");
        if let Ok(text) = std::fs::read_to_string(&path) {
            lines.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
    }
    for l in lines.iter().filter(|l| l["event"] == "assessed") {
        let case = l["case"].as_str().unwrap().to_string();
        case_of.insert(l["decision"].as_str().unwrap().into(), case.clone());
        *decisions.entry(case).or_default() += 1;
    }
    for l in lines.iter().filter(|l| l["event"] == "approval_requested") {
        let case = &case_of[l["decision"].as_str().unwrap()];
        *asked.entry(case.clone()).or_default() += 1;
    }
    let episodes = doc["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 12);
    for ep in episodes {
        let case = ep["case"].as_str().unwrap();
        assert_eq!(ep["decisions"], decisions[case], "{ep}");
        assert_eq!(ep["asked"], asked.get(case).copied().unwrap_or(0), "{ep}");
    }
    // Nothing left running: the supervisor's lock is free.
    let layout = society_core::Layout::at(&root);
    assert!(!matches!(
        society_core::lock::probe(&layout.supervisor_lock()).unwrap(),
        society_core::lock::LockState::Held(_)
    ));
}
