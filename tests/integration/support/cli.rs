//! Running the CLI and reading what it prints.

use serde_json::Value;
use society_testkit::Society;

/// Exit code (-1 for a signal), stdout, stderr of `society ARGS`.
pub fn code(s: &Society, args: &[&str]) -> (i32, String, String) {
    let out = s.run(args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The JSON document `society ARGS` prints (it must succeed).
pub fn json_of(s: &Society, args: &[&str]) -> Value {
    serde_json::from_str(&s.ok(args)).unwrap()
}

/// The lines of README.md's first fenced block after the heading that
/// starts with `heading` (the walk-throughs the tests paste line by line).
pub fn readme_block(heading: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip_while(|l| !l.starts_with("```"))
        .skip(1);
    let mut out = Vec::new();
    for l in lines.by_ref() {
        if l.starts_with("```") {
            return out;
        }
        out.push(l.to_string());
    }
    panic!("README.md: the code block after {heading:?} is not closed");
}
