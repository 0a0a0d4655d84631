//! Approving from the page: a click writes the same `decide` request that
//! `society approve` writes, the supervisor delivers it, the requester
//! finishes the case; a double click answers once.

use super::browser::{clear_flash, count, open, wait_css, wait_flash, wait_for, Driver};
use super::server::Dashboard;
use super::{demo_society, episode, publish_request, PIPELINE};
use crate::support::json_of;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::Locator;
use serde_json::{json, Value};
use society_testkit::{records, wait_until, Society};

/// The `decide` control requests for approval request `id` in the
/// supervisor's inbox (what `society approve` writes).
fn decides(s: &Society, id: &str) -> Vec<Value> {
    records(&s.layout().supervisor_inbox())
        .into_iter()
        .filter(|r| r["type"] == "control" && r["from"] == "orchestrator")
        .map(|r| r["body"].clone())
        .filter(|b| b["op"] == "decide" && b["request"] == id)
        .collect()
}

/// The `result` the requester sent the orchestrator for `case`, once it is there.
fn wait_result(s: &Society, case: &str) -> Value {
    wait_until(PIPELINE, &format!("the result of case {case}"), || {
        records(&s.layout().orchestrator_inbox())
            .into_iter()
            .find(|r| r["type"] == "result" && r["case"] == case)
    })
}

/// The `event` names of a case's log, in order.
fn case_events(s: &Society, case: &str) -> Vec<String> {
    json_of(s, &["case", "show", case, "--json"])["events"]
        .as_array()
        .expect("a case has events")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn approval(id: &str) -> String {
    format!(r#"div.approval[data-approval="{id}"]"#)
}

#[test]
fn approving_in_the_page_decides_once_and_the_case_completes() {
    let mut s = demo_society(&[]);
    s.start_supervisor();
    let tides = episode(&s, "tides");
    let volcanoes = episode(&s, "volcanoes");
    let first = publish_request(&s, "tides");
    let second = publish_request(&s, "volcanoes");
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    let driver = Driver::start();
    driver.session(async |c| {
        open(c, &dash.page("/approvals"), "approvals").await;
        wait_css(c, &approval(&second)).await;
        let note = wait_css(c, &format!("{} textarea[name=note]", approval(&first))).await;
        note.send_keys("ship it").await.unwrap();
        let approve = format!(r#"{} button[data-action="approve"]"#, approval(&first));
        clear_flash(c).await;
        c.find(Locator::Css(&approve))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let (kind, text) = wait_flash(c).await;
        assert_eq!(kind, "ok", "the approval's outcome: {text}");
        wait_for(c, "the approved request to leave the list", async || {
            (count(c, &approval(&first)).await == 0).then_some(())
        })
        .await;
        assert_eq!(count(c, &approval(&second)).await, 1, "the other one stays");

        // A double click: two clicks, as fast as the browser takes them.
        let approve = format!(r#"{} button[data-action="approve"]"#, approval(&second));
        let button = c.find(Locator::Css(&approve)).await.unwrap();
        let twice = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: button,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        clear_flash(c).await;
        c.perform_actions(twice).await.unwrap();
        let (kind, text) = wait_flash(c).await;
        assert_eq!(
            kind, "ok",
            "a double click is one approval, not an error: {text}"
        );
        wait_for(
            c,
            "the double-clicked request to leave the list",
            async || (count(c, &approval(&second)).await == 0).then_some(()),
        )
        .await;
    });

    // What the clicks wrote, and what followed, in the files.
    let result = wait_result(&s, &tides);
    assert_eq!(result["from"], "quality");
    assert_eq!(result["body"]["topic"], "tides", "{result}");
    assert_eq!(
        result["body"]["note"], "ship it",
        "the note typed in the page"
    );
    wait_result(&s, &volcanoes);
    assert_eq!(
        decides(&s, &first),
        [json!({"op": "decide", "request": first, "approve": true, "note": "ship it"})]
    );
    let twice = decides(&s, &second);
    assert_eq!(twice.len(), 1, "a double click decides once: {twice:?}");
    assert_eq!(twice[0]["approve"], true);
    for case in [&tides, &volcanoes] {
        let events = case_events(&s, case);
        let at = |e: &str| events.iter().position(|x| x == e);
        let (approved, completed) = (at("approved"), at("completed"));
        assert!(
            approved.is_some() && completed.is_some() && approved < completed,
            "case {case}: approved, then completed: {events:?}"
        );
        assert_eq!(events.iter().filter(|e| *e == "approved").count(), 1);
    }
    let results = records(&s.layout().orchestrator_inbox())
        .into_iter()
        .filter(|r| r["type"] == "result")
        .count();
    assert_eq!(results, 2, "one result per episode");
}
