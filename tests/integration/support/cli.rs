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
