//! README.md's "Five-minute tour", pasted line by line into one shell as a
//! new user would: every line must succeed. `cargo install` is the only line
//! not run (the binary under test is put first on PATH instead), and the
//! tour's directory is a scratch one.

use crate::support::{paste, readme_block, BIN};
use std::process::Command;

#[test]
fn the_five_minute_tour_works_pasted_line_by_line() {
    let lines = readme_block("## Five-minute tour");
    assert!(
        lines.iter().any(|l| l.starts_with("society describe"))
            && lines.iter().any(|l| l.starts_with("society top"))
            && lines.iter().any(|l| l.contains("logs --since")),
        "the tour shows describe, top and logs --since: {lines:#?}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let team = scratch.path().join("team");
    // `cargo install` is not run: the binary under test is first on PATH.
    let lines: Vec<String> = lines
        .into_iter()
        .filter(|l| !l.starts_with("cargo install"))
        .collect();
    let out = paste(&lines, "/tmp/team", &team, scratch.path());
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Whatever happened, nothing of the tour keeps running.
    let _ = Command::new(BIN)
        .args(["down", "--timeout", "20s"])
        .current_dir(&team)
        .output();
    assert!(
        out.status.success(),
        "a tour line failed:\n{err}\nstdout:\n{stdout}"
    );
    assert!(stdout.contains("helper-1"), "{stdout}");
}
