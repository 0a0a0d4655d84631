//! The guards below the page, in raw HTTP on loopback: the token of a
//! non-loopback listener, the CSRF header of every action, the `Host` of a
//! loopback listener, request ids answered once, and paths that never lead
//! out of the compiled-in assets.

use super::http::{Reply, Request};
use super::server::Dashboard;
use super::{demo_society, episode, publish_request};
use crate::support::{json_of, BIN, ECHO_TOML};
use serde_json::json;
use society_testkit::{records, Society};
use std::os::unix::fs::PermissionsExt as _;

/// The CSRF token the page carries (`<meta name="csrf" content="…">`).
fn csrf_of(page: &Reply) -> String {
    let at = page
        .body
        .find(r#"<meta name="csrf" content=""#)
        .unwrap_or_else(|| panic!("no csrf meta in the page: {}", page.body));
    let rest = &page.body[at + r#"<meta name="csrf" content=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn a_non_loopback_listener_answers_only_with_its_token() {
    let s = Society::new(BIN, ECHO_TOML);
    let path = s.layout().state_dir().join("dashboard").join("token");
    let mut dash = Dashboard::start(&s, "0.0.0.0:0");
    let (base, token) = dash
        .url
        .split_once("?token=")
        .unwrap_or_else(|| panic!("the first start shows the token: {:?}", dash.url));
    assert_eq!(base, format!("http://0.0.0.0:{}/", dash.port));
    let token = token.to_string();
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        format!("{mode:o}"),
        "600",
        "{} is the owner's alone",
        path.display()
    );
    let port = dash.port;
    let bearer = format!("Bearer {token}");

    for target in ["/api/status", "/", "/agents", "/assets/app.js"] {
        let r = Request::get(port, target).send();
        assert_eq!(r.status, 401, "{target} without the token: {r:?}");
        assert!(!r.body.contains("\"agents\""), "{target}: {}", r.body);
    }
    assert_eq!(Request::get(port, "/api/events").status(), 401);
    let wrong = Request::get(port, "/api/status")
        .header("Authorization", &format!("Bearer {}", "0".repeat(64)))
        .send();
    assert_eq!(wrong.status, 401, "a wrong token: {wrong:?}");
    assert_eq!(
        Request::get(port, &format!("/agents?token={}", "0".repeat(64)))
            .send()
            .status,
        401
    );

    let ok = Request::get(port, "/api/status")
        .header("Authorization", &bearer)
        .send();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.json()["agents"].is_array(), "{}", ok.body);
    let events = Request::get(port, "/api/events")
        .header("Authorization", &bearer)
        .status();
    assert_eq!(events, 200);
    // The URL's token is traded for a cookie, which then suffices.
    let visit = Request::get(port, &format!("/agents?token={token}")).send();
    assert!((300..400).contains(&visit.status), "a redirect: {visit:?}");
    let cookie = visit.header("set-cookie").expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let page = Request::get(port, "/agents").header("Cookie", pair).send();
    assert_eq!(page.status, 200, "{page:?}");
    drop(dash);

    // Started again: the same token, not shown; where it is, instead.
    dash = Dashboard::start(&s, "0.0.0.0:0");
    assert_eq!(dash.url, format!("http://0.0.0.0:{}/", dash.port));
    assert_eq!(dash.next_line(), format!("token: in {}", path.display()));
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    let r = Request::get(dash.port, "/api/status").send();
    assert_eq!(r.status, 401);
    let r = Request::get(dash.port, "/api/status")
        .header("Authorization", &bearer)
        .send();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn actions_need_the_csrf_header_and_are_answered_once() {
    let mut s = demo_society(&[]);
    s.start_supervisor();
    episode(&s, "tides");
    let id = publish_request(&s, "tides");
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    let port = dash.port;
    let inbox = s.layout().supervisor_inbox();
    let written = || std::fs::read(&inbox).unwrap();
    let before = written();
    let cases_before = json_of(&s, &["case", "list", "--json"]);
    let research_inbox = || records(&s.agent("research").inbox()).len();
    let research_before = research_inbox();

    let page = Request::get(port, "/approvals").send();
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = csrf_of(&page);
    let approve = json!({"request_id": "r-csrf-0001", "id": id, "note": "no header"});
    let refused = [
        Request::post(port, "/api/approve", &approve),
        Request::post(port, "/api/approve", &approve).header("X-Society-CSRF", "0123abcd"),
        // The right token from another origin.
        Request::post(port, "/api/approve", &approve)
            .header("X-Society-CSRF", &csrf)
            .header("Origin", "http://evil.example"),
        Request::post(
            port,
            "/api/send",
            &json!({"request_id": "r-csrf-0002", "to": "research", "type": "task", "body": "{}"}),
        ),
        Request::post(
            port,
            "/api/cases/open",
            &json!({"request_id": "r-csrf-0003", "purpose": "sneaky"}),
        ),
        Request::post(
            port,
            "/api/stop",
            &json!({"request_id": "r-csrf-0004", "id": "research"}),
        ),
    ];
    for r in refused {
        let reply = r.send();
        assert_eq!(reply.status, 403, "{reply:?}");
        assert_eq!(reply.json()["ok"], false);
    }
    // A loopback listener answers loopback hosts only (DNS rebinding).
    let rebound = Request::get(port, "/api/status")
        .header("Host", "evil.example")
        .send();
    assert_eq!(rebound.status, 403, "{rebound:?}");
    assert_eq!(written(), before, "nothing reached the supervisor's inbox");
    assert_eq!(json_of(&s, &["case", "list", "--json"]), cases_before);
    assert_eq!(research_inbox(), research_before);
    let pending = json_of(&s, &["approvals", "--json"]);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");

    // With the header: answered, and the same request id again gets the
    // same answer without a second decision.
    let approve = json!({"request_id": "r-twice-0001", "id": id, "note": "once"});
    let send = || {
        Request::post(port, "/api/approve", &approve)
            .header("X-Society-CSRF", &csrf)
            .header("Origin", &format!("http://127.0.0.1:{port}"))
            .send()
    };
    let first = send();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["ok"], true);
    let again = send();
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["ok"], true);
    assert_eq!(again.json()["replayed"], true, "{}", again.body);
    let decides: Vec<_> = records(&inbox)
        .into_iter()
        .filter(|r| r["body"]["op"] == "decide" && r["body"]["request"] == id.as_str())
        .collect();
    assert_eq!(decides.len(), 1, "{decides:?}");
    assert_eq!(decides[0]["body"]["note"], "once");
}

#[test]
fn paths_never_leave_the_compiled_in_assets() {
    let s = Society::new(BIN, ECHO_TOML);
    let dash = Dashboard::start(&s, "127.0.0.1:0");
    std::fs::write(s.root().join("secret.txt"), "the society root's own file").unwrap();
    let targets = [
        "/../../etc/passwd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/assets/../../Cargo.toml",
        "/assets/../../../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/app.js/../../Cargo.toml",
        "/assets/society.toml",
        "/assets/../society.toml",
        "/society.toml",
        "/secret.txt",
        "/assets/secret.txt",
        "/.society-agent/supervisor/inbox.jsonl",
        "/assets/../.society-agent/supervisor/inbox.jsonl",
        "//etc/passwd",
        "/assets//etc/passwd",
    ];
    for target in targets {
        let r = Request::get(dash.port, target).send();
        assert!(
            r.status == 404 || r.status == 400,
            "GET {target}: {} {}",
            r.status,
            r.body
        );
        for leaked in [
            "root:",
            "[workspace]",
            "[[agent]]",
            "the society root's own file",
        ] {
            assert!(
                !r.body.contains(leaked),
                "GET {target} served a file: {}",
                r.body
            );
        }
    }
    // The page's own assets are there (the check above is not vacuous).
    let js = Request::get(dash.port, "/assets/app.js").send();
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().contains("javascript"));
}
