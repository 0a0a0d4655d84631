//! Every example society under `examples/` is valid as shipped: copied into
//! a fresh directory, `society init` keeps its `society.toml` and `society
//! check` accepts it (every brain config parsed and range-checked, prompt
//! files included). The llm examples need keys or servers only to run.

use crate::support::BIN;
use society_testkit::Society;
use std::path::Path;

#[test]
fn every_example_society_passes_check() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap().flatten() {
        let toml = entry.path().join("society.toml");
        if !toml.exists() {
            continue;
        }
        let shipped = std::fs::read_to_string(&toml).unwrap();
        let s = Society::from_fixture(BIN, &entry.path());
        s.ok(&["init"]);
        assert_eq!(
            std::fs::read_to_string(s.root().join("society.toml")).unwrap(),
            shipped,
            "init kept {}",
            toml.display()
        );
        let out = s.run(&["check"]);
        assert!(
            out.status.success(),
            "{}: {}",
            toml.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked.push(entry.file_name().to_string_lossy().to_string());
    }
    checked.sort();
    assert!(
        checked.len() >= 5 && checked.iter().any(|c| c == "llm-gateway"),
        "{checked:?}"
    );
}
