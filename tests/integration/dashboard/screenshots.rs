//! Every view of the page rendered over a society with something in it,
//! reached the way a person reaches it (the navigation links, an agent's and
//! a case's address), and photographed: one PNG per view in
//! `target/dashboard-screenshots/` (not committed), for a person to look at.

use super::browser::{count, open, wait_css, wait_view, Driver};
use super::server::Dashboard;
use super::{demo_society, episode, publish_request};
use fantoccini::{Client, Locator};
use std::path::{Path, PathBuf};

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    // Last run's pictures go: each one left at the end is this run's.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves what the browser shows as `<view>.png`.
async fn photograph(c: &Client, dir: &Path, view: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{view}: not a PNG ({} bytes)",
        png.len()
    );
    std::fs::write(dir.join(format!("{view}.png")), png).unwrap();
}

/// Each of `selectors` matches something on the current view.
async fn has_all(c: &Client, view: &str, selectors: &[&str]) {
    for css in selectors {
        assert!(count(c, css).await > 0, "{view}: nothing matches {css}");
    }
}

#[test]
fn every_view_renders_and_is_photographed() {
    let mut s = demo_society(&["research"]);
    s.start_supervisor();
    let case = episode(&s, "tides");
    publish_request(&s, "tides");
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    let dir = screenshot_dir();
    let driver = Driver::start();
    driver.session(async |c| {
        open(c, &dash.page("/"), "agents").await;
        has_all(c, "agents", &[r#"table#agents tr[data-agent="research"]"#]).await;
        photograph(c, &dir, "agents").await;

        let navigated: [(&str, &[&str]); 6] = [
            (
                "cases",
                &[
                    &format!(r#"table#cases tr[data-case="{case}"] td[data-col="status"]"#),
                    r#"form#case-open input[name="purpose"]"#,
                    "form#case-open button[type=submit], form#case-open input[type=submit]",
                ],
            ),
            ("approvals", &["div.approval[data-approval]"]),
            ("flow", &[]),
            ("costs", &[]),
            ("metrics", &[]),
            (
                "send",
                &[
                    r#"form#send input[name="to"]"#,
                    r#"form#send input[name="type"]"#,
                    r#"form#send textarea[name="body"]"#,
                    "form#send button[type=submit], form#send input[type=submit]",
                ],
            ),
        ];
        for (view, selectors) in navigated {
            let nav = format!(r#"a[data-view="{view}"]"#);
            c.find(Locator::Css(&nav))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            wait_view(c, view).await;
            let path = c.current_url().await.unwrap().path().to_string();
            assert_eq!(path, format!("/{view}"), "the address follows the view");
            has_all(c, view, selectors).await;
            photograph(c, &dir, view).await;
        }

        open(c, &dash.page("/agents/research"), "agent").await;
        wait_css(c, r#"#agent[data-agent="research"]"#).await;
        has_all(
            c,
            "agent",
            &[
                r#"button[data-action="stop"]"#,
                r#"button[data-action="restart"]"#,
                r#"button[data-action="unblock"]"#,
                "#activity",
                "#inbox",
                "#outbox",
                "#deadletters",
                "#decisions",
                "#conversation",
            ],
        )
        .await;
        photograph(c, &dir, "agent").await;

        open(c, &dash.page(&format!("/cases/{case}")), "case").await;
        wait_css(c, &format!(r#"#case[data-case="{case}"]"#)).await;
        has_all(
            c,
            "case",
            &["#timeline", r#"button[data-action="close-case"]"#],
        )
        .await;
        photograph(c, &dir, "case").await;
    });
    for view in [
        "agents",
        "agent",
        "cases",
        "case",
        "approvals",
        "flow",
        "costs",
        "metrics",
        "send",
    ] {
        assert!(dir.join(format!("{view}.png")).is_file(), "{view}.png");
    }
}
