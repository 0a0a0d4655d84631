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

/// Runs `lines` in one `bash -c` with `set -e`, as a user pasting them
/// would, in `cwd`, with the binary under test first on PATH and `from`
/// (a README's scratch path) replaced by `to`. Each line is echoed on stderr
/// first, so a failure names it.
pub fn paste(
    lines: &[String],
    from: &str,
    to: &std::path::Path,
    cwd: &std::path::Path,
) -> std::process::Output {
    let bin_dir = std::path::Path::new(super::BIN)
        .parent()
        .expect("the binary's directory");
    // A line may start a program in the background (`society dashboard &`):
    // it ends with the shell, whatever line the shell stops at.
    let mut script = String::from("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for line in lines {
        let line = line.replace(from, &to.display().to_string());
        script.push_str(&format!(
            "echo \"+ {}\" >&2\n{line}\n",
            line.replace('"', "\\\"")
        ));
    }
    std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("SOCIETY_ROOT")
        .current_dir(cwd)
        .output()
        .expect("bash runs")
}
