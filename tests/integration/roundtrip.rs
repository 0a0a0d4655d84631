//! A message to an echo agent comes back once, through a real supervisor and
//! a real agent process that starts on demand and idles out.

use crate::support::{wait_reply, BIN};
use society_testkit::{records, Society};
use std::time::Duration;

const TOML: &str = r#"
[defaults]
idle_exit = "1s"
heartbeat = "200ms"

[[agent]]
id = "echo"
role = "echo"
brain = "echo"
"#;

#[test]
fn echo_round_trip_and_on_demand_lifecycle() {
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    assert_eq!(s.status("echo")["state"], "dormant");
    assert_eq!(s.agent_pid("echo"), None, "no process before mail arrives");

    let id = s.ok(&["send", "echo", "hello"]);
    let inbox = s.layout().orchestrator_inbox();
    let reply = wait_reply(&s, &id);
    assert_eq!(reply["from"], "echo");
    assert_eq!(reply["to"], "orchestrator");
    assert_eq!(reply["body"]["text"], "hello");
    assert_eq!(reply["gen"], 1);

    let row = s.wait_state("echo", "idle", Duration::from_secs(10));
    assert!(row["pid"].as_u64().is_some());
    assert_eq!(row["generation"], 1);
    assert_eq!(row["handled"], 1);
    // idle_exit = 1s: the process goes away and the folder is dormant.
    s.wait_state("echo", "dormant", Duration::from_secs(10));
    let events: Vec<String> = records(&s.agent("echo").activity())
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        events,
        [
            "started",
            "message_received",
            "message_handled",
            "idle_exit",
            "stopped"
        ],
        "activity log of one on-demand activation"
    );
    assert_eq!(records(&inbox).len(), 1, "exactly one reply");
    let st = s.stop_supervisor();
    assert!(st.success());
    assert!(
        s.processes().is_empty(),
        "no process left after shutdown: {:?}",
        s.processes()
    );
}
