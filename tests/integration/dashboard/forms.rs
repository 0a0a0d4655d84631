//! The page's other actions, each checked in the files it must write: a
//! case opened from the cases view and closed from its own view, a message
//! sent from the send view, an agent stopped and restarted from its view.

use super::browser::{
    clear_flash, open, text_of, wait_css, wait_flash, wait_for, wait_view, Driver,
};
use super::server::Dashboard;
use super::{demo_society, running_pid};
use crate::support::{json_of, SOON};
use fantoccini::{Client, Locator};
use serde_json::Value;
use society_testkit::{records, wait_until};

/// Types `text` into the field `css` (emptied first).
async fn fill(c: &Client, css: &str, text: &str) {
    let el = c.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Clicks `css` and waits for the action's outcome, which must be `ok`.
/// The views redraw themselves as events arrive: a button found just before
/// a redraw is found again.
async fn act(c: &Client, css: &str, what: &str) {
    clear_flash(c).await;
    wait_for(c, &format!("a click on {css}"), async || {
        match c.find(Locator::Css(css)).await.ok()?.click().await {
            Ok(()) => Some(()),
            Err(e) if e.is_stale_element_reference() => None,
            Err(e) => panic!("{what}: cannot click {css}: {e}"),
        }
    })
    .await;
    let (kind, text) = wait_flash(c).await;
    assert_eq!(kind, "ok", "{what}: {text}");
}

/// The `data-case` of every row of `table#cases` (`None` if the table was
/// redrawn while it was read).
async fn case_rows(c: &Client) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    for tr in c
        .find_all(Locator::Css("table#cases tr[data-case]"))
        .await
        .ok()?
    {
        ids.push(tr.attr("data-case").await.ok()??);
    }
    Some(ids)
}

#[test]
fn forms_and_buttons_write_what_the_cli_writes() {
    let mut s = demo_society(&["research"]);
    s.start_supervisor();
    let pid = running_pid(&s, "research");
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    let driver = Driver::start();
    driver.session(async |c| {
        // Open a case; its row appears without a reload.
        open(c, &dash.page("/cases"), "cases").await;
        assert_eq!(case_rows(c).await, Some(vec![]), "no cases yet");
        fill(
            c,
            r#"form#case-open input[name="purpose"]"#,
            "an episode on comets",
        )
        .await;
        act(c, "form#case-open button[type=submit]", "open a case").await;
        let case = wait_for(c, "the new case's row", async || case_rows(c).await?.pop()).await;
        let listed = json_of(&s, &["case", "list", "--json"]);
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["id"], case.as_str());
        assert_eq!(listed[0]["purpose"], "an episode on comets");

        // What is being typed survives a live update of the list.
        fill(c, r#"form#case-open input[name="purpose"]"#, "half-typed").await;
        s.ok(&["case", "new", "opened from the CLI"]);
        wait_for(c, "the CLI's case in the list", async || {
            (case_rows(c).await?.len() == 2).then_some(())
        })
        .await;
        let typed = c
            .find(Locator::Css(r#"form#case-open input[name="purpose"]"#))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(
            typed.as_deref(),
            Some("half-typed"),
            "a live update wiped the form"
        );
        fill(c, r#"form#case-open input[name="purpose"]"#, "").await;

        // Send research a task (in no case: work going on in a case
        // while it is closed is another matter).
        c.find(Locator::Css(r#"a[data-view="send"]"#))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_view(c, "send").await;
        fill(c, r#"form#send input[name="to"]"#, "role:research").await;
        fill(c, r#"form#send input[name="type"]"#, "task").await;
        fill(
            c,
            r#"form#send textarea[name="body"]"#,
            r#"{"topic": "comets"}"#,
        )
        .await;
        act(c, "form#send button[type=submit]", "send a task").await;
        let task: Value = wait_until(SOON, "the task in research's inbox", || {
            records(&s.agent("research").inbox())
                .into_iter()
                .find(|r| r["type"] == "task" && r["from"] == "orchestrator")
        });
        assert_eq!(task["to"], "role:research");
        assert_eq!(
            task["body"]["topic"], "comets",
            "a JSON body stays JSON: {task}"
        );

        // Stop research, then restart it.
        open(c, &dash.page("/agents/research"), "agent").await;
        wait_css(c, r#"#agent[data-agent="research"]"#).await;
        act(c, r#"button[data-action="stop"]"#, "stop research").await;
        wait_until(SOON, "research to be stopped and held", || {
            (s.agent_pid("research").is_none() && s.status("research")["held"] == true)
                .then_some(())
        });
        act(c, r#"button[data-action="restart"]"#, "restart research").await;
        let again = wait_until(SOON, "research to run again", || {
            s.agent_pid("research")
                .filter(|p| *p != pid && s.status("research")["held"] == false)
        });
        assert_ne!(again, pid);

        // Close the case from its page.
        open(c, &dash.page(&format!("/cases/{case}")), "case").await;
        wait_css(c, &format!(r#"#case[data-case="{case}"]"#)).await;
        act(c, r#"button[data-action="close-case"]"#, "close the case").await;
        wait_until(SOON, "the case to be closed", || {
            let doc = json_of(&s, &["case", "show", &case, "--json"]);
            (doc["case"]["status"] == "closed").then_some(())
        });
        c.find(Locator::Css(r#"a[data-view="cases"]"#))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_view(c, "cases").await;
        let status = format!(r#"table#cases tr[data-case="{case}"] td[data-col="status"]"#);
        wait_for(c, "the cases view to show it closed", async || {
            (text_of(c, &status).await? == "closed").then_some(())
        })
        .await;
    });
}
