//! `society dashboard` over plain HTTP (the browser tests are in
//! `dashboard.rs`): what no response may carry (a secret, a file outside
//! the society), bad actions refused with nothing written, and the page
//! living through a supervisor restart — all against the real binary on a
//! loopback port.

use crate::support::{ECHO_TOML, SOON};
use society_testkit::{wait_until, Society};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `society dashboard --listen 127.0.0.1:0`.
pub struct Dashboard {
    child: Child,
    pub port: u16,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dashboard {
    pub fn start(s: &Society, env: &[(&str, &str)]) -> Dashboard {
        let mut cmd: Command = s.command(&["dashboard", "--listen", "127.0.0.1:0"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("society dashboard: http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let port = url.trim_end_matches('/').parse().unwrap();
        Dashboard { child, port }
    }

    /// One request; the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.set_read_timeout(Some(SOON)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        conn.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        let status = resp[9..12].parse().unwrap();
        let body = resp
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[], "")
    }

    /// The CSRF token of the page.
    pub fn csrf(&self) -> String {
        let (_, page) = self.get("/");
        let at = page.find("name=\"csrf\" content=\"").unwrap() + 21;
        page[at..at + 32].to_string()
    }

    pub fn post(&self, path: &str, csrf: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.request(
            "POST",
            path,
            &[
                ("X-Society-CSRF", csrf),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }

    /// Opens the event stream and waits for its first event (`hello`):
    /// what changes after this returns is heard.
    pub fn events(&self) -> Events {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        write!(
            conn,
            "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut events = Events {
            conn,
            buf: String::new(),
            seen: Vec::new(),
        };
        events.until(SOON, |d| d.contains("\"topic\":\"hello\""));
        assert!(!events.seen.is_empty(), "the event stream did not open");
        events
    }
}

/// An open event stream.
pub struct Events {
    conn: TcpStream,
    buf: String,
    /// Every event's data read so far, in order.
    pub seen: Vec<String>,
}

impl Events {
    /// Reads until `want` matches one event's data (its data then, or
    /// `None` once the deadline passed).
    pub fn until(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 8192];
        loop {
            while let Some(at) = self.buf.find("data: ") {
                let rest = &self.buf[at + 6..];
                let Some(end) = rest.find('\n') else { break };
                let data = rest[..end].to_string();
                self.buf = rest[end..].to_string();
                self.seen.push(data.clone());
                if want(&data) {
                    return Some(data);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.conn.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
                Err(_) => {} // the read timeout: look again until the deadline
            }
        }
    }
}

/// A secret in the dashboard's environment never appears in a response or
/// an event, even when a message carries it; a log linked to a file
/// outside the society is not read.
#[test]
fn no_secret_and_no_outside_file_reaches_a_response() {
    const SECRET: &str = "sk-dashboard-test-0123456789abcdef";
    let mut s = Society::new(crate::support::BIN, ECHO_TOML);
    s.start_supervisor();
    let agent = "echo";
    // Outside the society: a JSON-lines file the page must never show.
    let outside = tempfile::tempdir().unwrap();
    let secret_file = outside.path().join("decisions.jsonl");
    std::fs::write(
        &secret_file,
        "{\"event\":\"outside-marker\",\"ts\":\"2026-01-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let decisions = s.agent(agent).decisions();
    let _ = std::fs::remove_file(&decisions);
    std::os::unix::fs::symlink(&secret_file, &decisions).unwrap();

    let d = Dashboard::start(&s, &[("OPENAI_API_KEY", SECRET)]);
    let mut stream = d.events();
    // The user pasted the key into a message: it is in the inbox file.
    s.ok(&["send", agent, &format!("the key is {SECRET}")]);
    stream.until(SOON, |data| data.contains(&format!("\"id\":\"{agent}\"")));
    let events = stream.seen.clone();
    assert!(
        events.iter().any(|e| e.contains("\"topic\":\"agent\"")),
        "no event for {agent}: {events:?}"
    );
    let inbox = std::fs::read_to_string(s.agent(agent).inbox()).unwrap();
    assert!(
        inbox.contains(SECRET),
        "the test's message is not in the inbox"
    );
    let (status, body) = wait_until(SOON, "the message in the agent's view", || {
        let (st, b) = d.get(&format!("/api/agents/{agent}"));
        b.contains("the key is").then_some((st, b))
    });
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("the key is [redacted]"), "{body}");
    for (what, text) in [
        ("agent view", body.clone()),
        ("status", d.get("/api/status").1),
        ("events", events.join("\n")),
        ("page", d.get("/agents").1),
    ] {
        assert!(
            !text.contains(SECRET),
            "the secret is in the {what}: {text}"
        );
        assert!(
            !text.contains("outside-marker"),
            "a file outside the society is in the {what}"
        );
    }
    // No path leads to a file: only the compiled-in assets are served.
    for path in [
        "/../../etc/passwd",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/agents/../../../../etc/passwd",
    ] {
        let (status, body) = d.get(path);
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(
            !body.contains("root:") && !body.contains("[package]"),
            "{path}: {body}"
        );
    }
}

/// Bad actions get a clear error naming what was wrong, and write nothing.
#[test]
fn bad_actions_are_refused_and_write_nothing() {
    let mut s = Society::new(crate::support::BIN, ECHO_TOML);
    s.start_supervisor();
    let d = Dashboard::start(&s, &[]);
    let csrf = d.csrf();
    let control = s.layout().supervisor_inbox();
    let size = || std::fs::metadata(&control).map_or(0, |m| m.len());
    let before = size();
    let cases: &[(&str, &str, u16, &str)] = &[
        ("/api/approve", "{not json", 400, "invalid"),
        (
            "/api/approve",
            r#"{"id":"01M8S9B6K8DEXBZ077M72YF5MV"}"#,
            400,
            "request_id",
        ),
        (
            "/api/approve",
            r#"{"request_id":"x","id":"01M8S9B6K8DEXBZ077M72YF5MV"}"#,
            400,
            "request_id",
        ),
        (
            "/api/approve",
            r#"{"request_id":"abcdefgh01","id":"nope"}"#,
            400,
            "not a request id",
        ),
        (
            "/api/approve",
            r#"{"request_id":"abcdefgh02","id":"01M8S9B6K8DEXBZ077M72YF5MV"}"#,
            404,
            "01M8S9B6K8DEXBZ077M72YF5MV",
        ),
        (
            "/api/reject",
            r#"{"request_id":"abcdefgh03","id":"01M8S9B6K8DEXBZ077M72YF5MV","note":"  "}"#,
            400,
            "feedback",
        ),
        (
            "/api/stop",
            r#"{"request_id":"abcdefgh04","id":"ghost-1"}"#,
            404,
            "ghost-1",
        ),
        (
            "/api/stop",
            r#"{"request_id":"abcdefgh05","id":"../etc"}"#,
            400,
            "../etc",
        ),
        (
            "/api/send",
            r#"{"request_id":"abcdefgh06","to":"ghost-1","body":"hi"}"#,
            404,
            "ghost-1",
        ),
        (
            "/api/send",
            r#"{"request_id":"abcdefgh07","to":"echo","body":[1]}"#,
            400,
            "text or a JSON object",
        ),
        (
            "/api/cases/open",
            r#"{"request_id":"abcdefgh08","purpose":" "}"#,
            400,
            "purpose",
        ),
        (
            "/api/cases/close",
            r#"{"request_id":"abcdefgh09","id":"c-nothing"}"#,
            404,
            "c-nothing",
        ),
    ];
    for (path, body, want, says) in cases {
        let (status, answer) = d.post(path, &csrf, body);
        assert_eq!(status, *want, "{path} {body}: {answer}");
        assert_eq!(answer["ok"], false, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(says),
            "{path} {body}: error {error:?} does not say {says:?}"
        );
    }
    // Without the page's CSRF header nothing is done either.
    let (status, _) = d.request(
        "POST",
        "/api/cases/open",
        &[("Content-Type", "application/json")],
        r#"{"request_id":"abcdefgh10","purpose":"sneaky"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = d.request(
        "POST",
        "/api/cases/open",
        &[("X-Society-CSRF", &csrf), ("Origin", "http://evil.example")],
        r#"{"request_id":"abcdefgh11","purpose":"sneaky"}"#,
    );
    assert_eq!(status, 403);
    assert_eq!(
        size(),
        before,
        "a refused action wrote to the supervisor's inbox"
    );
    // A good one, sent twice with one request id, is done once.
    let body = r#"{"request_id":"abcdefgh12","purpose":"once"}"#;
    let (status, first) = d.post("/api/cases/open", &csrf, body);
    assert_eq!(status, 200, "{first}");
    let (_, again) = d.post("/api/cases/open", &csrf, body);
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["case"], first["case"]);
    let opens = society_testkit::records(&control)
        .into_iter()
        .filter(|r| r.to_string().contains("\"once\""))
        .count();
    assert_eq!(opens, 1, "one request id, one case-open request");
}

/// The dashboard reads files, not the supervisor: it answers with the
/// supervisor down and hears it come back.
#[test]
fn the_dashboard_lives_through_a_supervisor_restart() {
    let mut s = Society::new(crate::support::BIN, ECHO_TOML);
    let pid = s.start_supervisor();
    let d = Dashboard::start(&s, &[]);
    let summary = |d: &Dashboard| {
        serde_json::from_str::<serde_json::Value>(&d.get("/api/summary").1).unwrap()
    };
    assert_eq!(summary(&d)["supervisor"], pid);
    s.stop_supervisor();
    let (status, body) = d.get("/api/status");
    assert_eq!(status, 200, "{body}");
    assert_eq!(summary(&d)["supervisor"], serde_json::Value::Null);
    let mut stream = d.events();
    s.start_supervisor();
    let up = stream
        .until(SOON, |data| {
            data.contains("\"topic\":\"supervisor\"") && !data.contains("null")
        })
        .unwrap_or_else(|| panic!("no supervisor event: {:?}", stream.seen));
    assert!(up.contains("\"pid\":"), "{up}");
    let new_pid = summary(&d)["supervisor"].as_u64().unwrap();
    assert!(up.contains(&new_pid.to_string()), "{up} vs {new_pid}");
}
