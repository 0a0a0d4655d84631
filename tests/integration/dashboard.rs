//! `society dashboard` driven the way a person drives it: headless Chromium
//! (through chromedriver) on the real page, served by the real binary over a
//! real society with its supervisor and agents running. What the page shows
//! is checked against the processes, and what the page does is checked in
//! the files — never in the page alone. Below the page, raw HTTP checks the
//! guards (token, CSRF, paths).
//!
//! The page's DOM contract (ids, `data-*` attributes) is what these tests
//! select on, and nothing else: restyling the page must not break them.

mod approve;
mod browser;
mod forms;
mod guards;
mod http;
mod live;
mod screenshots;
mod server;

use crate::support::{json_of, SOON};
use society_testkit::{wait_until, Society};
use std::time::Duration;

/// The demo's four-stage pipeline (research → script → audio → quality,
/// quality asking for approval before it publishes).
const DEMO_TOML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/demo/society.toml"
));

/// Long enough for a task to go through the whole demo pipeline (~2 s of
/// work) on a loaded machine.
const PIPELINE: Duration = Duration::from_secs(60);

/// The demo society, with the agents in `keep_alive` kept running (the
/// others start on demand).
fn demo_society(keep_alive: &[&str]) -> Society {
    let mut toml = DEMO_TOML.to_string();
    for id in keep_alive {
        let line = format!("id = \"{id}\"\n");
        assert!(toml.contains(&line), "no agent {id} in the demo");
        toml = toml.replace(&line, &format!("{line}keep_alive = true\n"));
    }
    Society::new(crate::support::BIN, &toml)
}

/// Opens a case for an episode on `topic` and sends research its task, as
/// the demo does; returns the case id.
fn episode(s: &Society, topic: &str) -> String {
    let case = s.ok(&["case", "new", &format!("a podcast episode on {topic}")]);
    let body = serde_json::json!({ "topic": topic }).to_string();
    s.ok(&["send", "role:research", "--json", &body, "--case", &case]);
    case
}

/// Waits until quality asks to publish the episode on `topic`; returns the
/// request's id (from `society approvals --json`).
fn publish_request(s: &Society, topic: &str) -> String {
    let plan = format!("publish the episode on {topic}");
    wait_until(PIPELINE, &format!("the request to {plan}"), || {
        let list = json_of(s, &["approvals", "--json"]);
        list.as_array()?
            .iter()
            .find(|r| r["plan"] == plan.as_str() && r["from"] == "quality")
            .map(|r| r["id"].as_str().expect("a request has an id").to_string())
    })
}

/// Waits (up to [`SOON`]) until agent `id` is running; returns its pid.
fn running_pid(s: &Society, id: &str) -> u32 {
    wait_until(SOON, &format!("{id} to run"), || s.agent_pid(id))
}
