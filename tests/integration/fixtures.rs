//! Checked-in trees of old formats keep loading (FORMAT.md, versioning).

use crate::support::BIN;
use society_testkit::{records, wait_until, Society};
use std::path::Path;
use std::time::Duration;

#[test]
fn v1_basic_fixture_loads_and_resumes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-basic");
    let mut s = Society::from_fixture(BIN, &fixture);
    let row = s.status("echo");
    assert_eq!(
        row["state"], "pending",
        "one message waits in the fixture: {row}"
    );
    assert_eq!(row["inbox_pending"], 1);
    assert_eq!(row["generation"], 1);
    assert_eq!(row["handled"], 1);

    s.start_supervisor();
    let inbox = s.layout().orchestrator_inbox();
    wait_until(
        Duration::from_secs(20),
        "the reply to the pending message",
        || {
            records(&inbox)
                .iter()
                .any(|r| r["reply_to"] == "01JF0000000000000000000002")
                .then_some(())
        },
    );
    let replies = records(&inbox);
    assert_eq!(
        replies.len(),
        2,
        "the already-handled message is not handled again"
    );
    let format: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.layout().format_json()).unwrap()).unwrap();
    assert_eq!(
        format["format"], 2,
        "opened for writing, the tree is upgraded"
    );
    let row = s.status("echo");
    assert_eq!(row["generation"], 2);
    assert_eq!(row["handled"], 2);
    assert!(
        s.layout().cases_dir().is_dir(),
        "missing directories are recreated"
    );
    s.stop_supervisor();
}

#[test]
fn a_tree_of_a_newer_format_is_refused_by_name() {
    let s = Society::new(BIN, "[[agent]]\nid = \"e1\"\nbrain = \"echo\"\n");
    std::fs::write(s.layout().format_json(), br#"{"format": 3}"#).unwrap();
    let (code, _, err) = crate::support::code(&s, &["status"]);
    assert_eq!(code, 5, "invalid state");
    assert!(
        err.contains("format.json has format 3") && err.contains("reads formats 1 to 2"),
        "{err}"
    );
}
