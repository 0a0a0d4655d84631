//! `society dashboard` as a child process of the test: started on a free
//! port, its address read from the first line it prints, killed on drop.

use crate::support::Reaped;
use society_testkit::Society;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// How long the dashboard may take to print a line at startup.
const STARTUP: Duration = Duration::from_secs(30);

pub struct Dashboard {
    /// What it printed first: `society dashboard: http://ADDR/[?token=T]`.
    pub url: String,
    pub port: u16,
    lines: Receiver<String>,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
    child: Reaped,
}

impl Dashboard {
    /// `society --root ROOT dashboard --listen LISTEN`.
    pub fn start(s: &Society, listen: &str) -> Dashboard {
        let logs = tempfile::tempdir().unwrap();
        let stderr = logs.path().join("dashboard.stderr");
        let child = s
            .command(&["dashboard", "--listen", listen])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("society dashboard starts");
        let mut child = Reaped(child);
        let out = child.0.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        // Drained to the end, so the dashboard never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Dashboard {
            url: String::new(),
            port: 0,
            lines,
            stderr,
            _logs: logs,
            child,
        };
        let first = d.next_line();
        d.url = first
            .strip_prefix("society dashboard: ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        d.port = port_of(&d.url);
        d
    }

    /// The next line it prints (the test fails after a deadline, with its
    /// stderr).
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(STARTUP) {
            Ok(line) => line,
            Err(e) => {
                let status = self.child.0.try_wait().unwrap();
                panic!(
                    "no line from society dashboard ({e}; exit status {status:?}); stderr:\n{}",
                    self.stderr()
                )
            }
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The page at `path` (`/agents`), on loopback whatever it listens on.
    pub fn page(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The port of `http://HOST:PORT/...`.
fn port_of(url: &str) -> u16 {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url:?}"));
    let authority = rest.split('/').next().unwrap();
    let port = authority.rsplit(':').next().unwrap();
    port.parse()
        .unwrap_or_else(|e| panic!("no port in {url:?}: {e}"))
}
