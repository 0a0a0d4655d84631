//! Headless Chromium driven through chromedriver (WebDriver, crate
//! `fantoccini`), for the dashboard benchmark. chromedriver listens on a
//! free loopback port; Chromium gets a fresh profile in a temp dir, and
//! every process started with that profile is killed when the browser is
//! dropped, so nothing outlives a failed run.
//!
//! Chromium runs with `--js-flags=--expose-gc` (the page can collect its
//! garbage before the heap is read) and `--enable-precise-memory-info`
//! (`performance.memory` unrounded).

use crate::peers::{free_port, temp_dir, wait_ready};
use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Browser {
    pub client: fantoccini::Client,
    procs: Processes,
}

/// chromedriver and the Chromium it started (found by their profile dir).
struct Processes {
    driver: Child,
    profile: tempfile::TempDir,
}

/// The binaries: `$CHROMIUM` and `$CHROMEDRIVER`, or the Debian paths.
fn binaries() -> (PathBuf, PathBuf) {
    let from = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    (
        from("CHROMIUM", "/usr/bin/chromium"),
        from("CHROMEDRIVER", "/usr/bin/chromedriver"),
    )
}

impl Browser {
    pub async fn start() -> anyhow::Result<Browser> {
        let (chromium, chromedriver) = binaries();
        anyhow::ensure!(
            chromium.exists() && chromedriver.exists(),
            "no {} or no {} (set CHROMIUM / CHROMEDRIVER)",
            chromium.display(),
            chromedriver.display()
        );
        let port = free_port()?;
        let profile = temp_dir("chromium")?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {}", chromedriver.display()))?;
        // From here on, Drop cleans up whatever was started.
        let procs = Processes { driver, profile };
        wait_ready("chromedriver", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,900".into(),
            "--js-flags=--expose-gc".into(),
            "--enable-precise-memory-info".into(),
            format!("--user-data-dir={}", procs.profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        // Two providers are built in (see Cargo.toml); the first install wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = fantoccini::ClientBuilder::rustls()
            .context("failed to set up TLS for the WebDriver client")?
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("failed to open a Chromium session through chromedriver")?;
        Ok(Browser { client, procs })
    }

    /// Runs `script` in the page; its `return` value.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client
            .execute(script, args)
            .await
            .context("script failed in the page")
    }

    /// Runs `script` in the page; what it passes to its last argument.
    pub async fn wait(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client
            .execute_async(script, args)
            .await
            .context("async script failed in the page")
    }

    /// Resident set size of the largest of Chromium's renderer processes,
    /// KiB: the dashboard's tab (the others are Chromium's spare and blank
    /// renderers, holding no page of ours).
    pub fn renderer_rss_kib(&self) -> u64 {
        society_testkit::processes_mentioning(self.procs.profile.path())
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(15).any(|w| w == b"--type=renderer"))
            })
            .map(|pid| crate::society::status_kib(pid as u32, "VmRSS:"))
            .max()
            .unwrap_or(0)
    }

    /// Ends the session (Chromium exits); Drop does the rest.
    pub async fn close(self) {
        let _ = self.client.close().await;
        drop(self.procs);
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for pid in society_testkit::processes_mentioning(self.profile.path()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
