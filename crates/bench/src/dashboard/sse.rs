//! A second subscriber to the dashboard's event stream, in the harness:
//! when each agent row left the server, by the harness's clock, so that a
//! slow update can be told apart as the server's or the page's.

use super::epoch_ms;
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// `(agent, inbox_pending, received at)` of every `agent` event.
type Heard = Arc<Mutex<Vec<(String, String, f64)>>>;

pub struct Listener {
    heard: Heard,
    stream: TcpStream,
}

impl Listener {
    /// Subscribes to `{base}api/events` (base: `http://127.0.0.1:PORT/`);
    /// returns once the server has answered with its `hello`.
    pub fn start(base: &str) -> anyhow::Result<Listener> {
        let host = base
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix('/'))
            .context("a base URL like http://127.0.0.1:PORT/")?;
        let mut stream = TcpStream::connect(host)?;
        write!(
            stream,
            "GET /api/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        )?;
        let mut lines = BufReader::new(stream.try_clone()?);
        // Headers, then the hello.
        let mut line = String::new();
        loop {
            line.clear();
            anyhow::ensure!(lines.read_line(&mut line)? > 0, "the event stream closed");
            if line.contains("\"hello\"") {
                break;
            }
        }
        let heard = Heard::default();
        let into = heard.clone();
        std::thread::spawn(move || {
            // SSE over chunked HTTP/1.1: each event is one chunk, so a
            // `data:` line is whole; the chunk-size lines are skipped.
            for line in lines.lines() {
                let at = epoch_ms();
                let Ok(line) = line else { return };
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                    continue;
                };
                if v["topic"] == "agent" && !v["row"].is_null() {
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    let queue = v["row"]["inbox_pending"].to_string();
                    if let Ok(mut h) = into.lock() {
                        h.push((id, queue, at));
                    }
                }
            }
        });
        Ok(Listener { heard, stream })
    }

    /// What was heard so far.
    pub fn take(&self) -> Vec<(String, String, f64)> {
        self.heard
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
