//! The fuzz targets' checks on stable: every committed seed
//! (`fuzz/seeds/<target>/`) and every input that once broke a target
//! (`fuzz/regressions/<target>/`) goes through the same function the
//! libFuzzer binary calls (`society_testkit::fuzz`).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            files.push(entry.expect("a readable directory entry").path());
        }
    }
    files.sort();
    files
}

/// Runs `target`'s check on each of its inputs, and names every one that fails.
fn run(target: &str) {
    let (_, check) = society_testkit::fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no seeds for fuzz target {target} in fuzz/seeds/{target}/"
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable input");
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target} fails on: {failed:#?}");
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            run(stringify!($name));
        })*

        #[test]
        fn every_target_is_tested_here_and_has_a_binary() {
            let here = [$(stringify!($name)),*];
            let bins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
            for (name, _) in society_testkit::fuzz::TARGETS {
                assert!(here.contains(name), "fuzz target {name} has no test here");
                assert!(
                    bins.join(format!("{name}.rs")).is_file(),
                    "fuzz target {name} has no fuzz/fuzz_targets/{name}.rs"
                );
            }
        }
    };
}

targets!(
    envelope,
    jsonl_reader,
    society_toml,
    command_protocol,
    script_rules,
    llm_response,
    llm_stream,
);
