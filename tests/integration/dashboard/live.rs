//! The agents view follows the processes as they change, from the event
//! stream alone: an agent SIGKILLed and restarted by the supervisor shows
//! its new pid and one more restart, and the page was never reloaded (a
//! value left on `window` survives).

use super::browser::{attr_of, count, open, text_of, wait_for, Driver};
use super::server::Dashboard;
use super::{demo_society, running_pid};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

/// `td[data-col=COL]` of agent `id`'s row.
fn cell(id: &str, col: &str) -> String {
    format!(r#"table#agents tr[data-agent="{id}"] td[data-col="{col}"]"#)
}

#[test]
fn the_agents_view_follows_a_sigkilled_agent_without_a_reload() {
    let mut s = demo_society(&["research"]);
    s.start_supervisor();
    let pid = running_pid(&s, "research");
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    let driver = Driver::start();
    driver.session(async |c| {
        open(c, &dash.page("/agents"), "agents").await;
        for id in ["research", "script", "audio", "quality"] {
            let row = format!(r#"table#agents tr[data-agent="{id}"]"#);
            assert_eq!(count(c, &row).await, 1, "one row for {id}");
        }
        let pid_cell = cell("research", "pid");
        wait_for(c, "research's pid in its row", async || {
            (text_of(c, &pid_cell).await? == pid.to_string()).then_some(())
        })
        .await;
        let restarts_cell = cell("research", "restarts");
        let restarts = |text: Option<String>| text.and_then(|t| t.parse::<u64>().ok());
        // Read while the row may be drawn again (a live update replaces it):
        // waited for, not read once.
        let before = wait_for(c, "a number in research's restarts cell", async || {
            restarts(text_of(c, &restarts_cell).await)
        })
        .await;
        let marker = c
            .execute("window.__marker = 42; return window.__marker;", vec![])
            .await
            .unwrap();
        assert_eq!(marker, json!(42));

        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let new_pid = wait_for(c, "a new pid in research's row", async || {
            let shown: u32 = text_of(c, &pid_cell).await?.parse().ok()?;
            (shown != pid).then_some(shown)
        })
        .await;
        assert_eq!(
            s.agent_pid("research"),
            Some(new_pid),
            "the row shows the process that holds research's lock"
        );
        wait_for(c, "one more restart in research's row", async || {
            (restarts(text_of(c, &restarts_cell).await)? > before).then_some(())
        })
        .await;
        // The row's state is the one the CLI reports, once both agree.
        let row = r#"table#agents tr[data-agent="research"]"#;
        wait_for(c, "the row's state to match `society status`", async || {
            let shown = attr_of(c, row, "data-state").await?;
            (s.status("research")["state"] == shown.as_str()).then_some(())
        })
        .await;

        let marker = c.execute("return window.__marker;", vec![]).await.unwrap();
        assert_eq!(marker, json!(42), "the page was updated without a reload");
        assert_eq!(
            attr_of(c, "#live", "data-state").await.as_deref(),
            Some("open"),
            "the event stream is still connected"
        );
    });
}
