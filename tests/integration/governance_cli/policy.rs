//! `society policy show|set`.

use crate::support::{code, json_of, BIN};
use serde_json::{json, Value};
use society_testkit::Society;

#[test]
fn policy_set_validates_logs_and_shows_per_role() {
    let s = Society::new(
        BIN,
        "[autonomy]\nimpact_max = 0.7\n\n[autonomy.role.director]\ncore_expertise = [\"shot\"]\n",
    );
    s.ok(&["spawn", "dp", "--id", "dp", "--no-start"]);
    let layout = s.layout();

    let shown = json_of(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(shown["version"], 0, "{shown:#}");
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.7);
    assert_eq!(
        shown["roles"]["director"]["autonomy"]["core_expertise"],
        json!(["shot"])
    );
    assert_eq!(
        shown["roles"]["dp"]["autonomy"]["core_expertise"],
        json!([]),
        "dp has no override"
    );
    assert_eq!(shown["changes"], json!([]));

    let out = s.ok(&["policy", "set", "autonomy.risk_max", "0.6"]);
    assert_eq!(out, "autonomy.risk_max: 0.8 (default) → 0.6");
    let out = s.ok(&[
        "policy",
        "set",
        "autonomy.role.director.baselines.lighting",
        "autonomous",
    ]);
    assert_eq!(
        out,
        "autonomy.role.director.baselines.lighting: (unset) → autonomous"
    );
    let out = s.ok(&["policy", "set", "autonomy.impact_max", "0.75"]);
    assert_eq!(out, "autonomy.impact_max: 0.7 → 0.75");

    let log = std::fs::read_to_string(layout.policy_log()).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    for (args, names) in [
        (
            ["autonomy.impact_max", "1.5"],
            ["autonomy.impact_max", "0 to 1"],
        ),
        (["autonomy.impact_maxx", "0.5"], ["impact_maxx", "unknown"]),
        (["debate.threshold", "-1"], ["debate.threshold", "0 to 1"]),
        (
            ["nothing.at_all", "1"],
            ["unknown policy key", "nothing.at_all"],
        ),
        (
            ["autonomy.role.director.baselines.lighting", "sometimes"],
            ["lighting", "sometimes"],
        ),
    ] {
        let (rc, out, err) = code(&s, &["policy", "set", args[0], args[1]]);
        assert_eq!(rc, 5, "{args:?}: {out}{err}");
        for n in names {
            assert!(err.contains(n), "{args:?}: {n:?} in {err}");
        }
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let after = std::fs::read_to_string(layout.policy_log()).unwrap();
    assert_eq!(after, log, "a refused value is not logged");

    let shown = json_of(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(shown["version"], 3);
    assert_eq!(shown["source"], "policy.json");
    assert_eq!(shown["policy"]["autonomy"]["risk_max"], 0.6);
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.75);
    let director = &shown["roles"]["director"]["autonomy"];
    assert_eq!(director["baselines"]["lighting"], "autonomous");
    assert_eq!(
        director["risk_max"], 0.6,
        "a base change reaches every role"
    );
    assert_eq!(shown["roles"]["dp"]["autonomy"]["baselines"], json!({}));
    let changes = shown["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[2]["key"], "autonomy.impact_max");
    assert_eq!(changes[2]["previous"], 0.7);
    assert_eq!(changes[2]["value"], 0.75);

    let one = json_of(&s, &["policy", "show", "--role", "director", "-o", "json"]);
    assert_eq!(one["roles"].as_object().unwrap().len(), 1, "{one:#}");
    let table = s.ok(&["policy", "show", "--role", "director"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("autonomy.baselines.lighting") && l.contains("autonomous")),
        "{table}"
    );
    let table = s.ok(&["policy", "show"]);
    assert!(
        table.contains("director  autonomy.baselines.lighting"),
        "{table}"
    );

    // society.toml edited since policy.json was published: show says so,
    // and still shows what agents read.
    std::fs::write(
        s.root().join("society.toml"),
        "[autonomy]\nimpact_max = 0.5\n",
    )
    .unwrap();
    let (rc, out, err) = code(&s, &["policy", "show", "-o", "json"]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("differs from the published policy.json"),
        "{err}"
    );
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["policy"]["autonomy"]["impact_max"], 0.75);

    let nowhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["policy", "show"])
        .current_dir(nowhere.path())
        .env_remove("SOCIETY_ROOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("society init"));
}
