//! Headless Chromium driven through chromedriver (WebDriver, with
//! fantoccini). One browser at a time in this test binary: each Chromium
//! takes most of a core, and the machines running the tests have two.
//!
//! A missing browser is installed by `scripts/install-browser.sh` (the
//! project's own scripts install what its tests need); chromedriver runs as
//! our child in a process group of its own, and whatever of Chromium is left
//! when a test ends, passed or failed, is SIGKILLed: found by its profile
//! directory, which is unique to the test.

use super::http::Request;
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use society_testkit::processes_mentioning;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Deadline for what the page should show well within a second or two:
/// generous, for Chromium on a loaded two-core machine.
pub const PAGE_SOON: Duration = Duration::from_secs(30);

/// Serialises the tests that start a browser.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// A chromedriver of our own, with a fresh Chromium profile.
pub struct Driver {
    driver: Option<Group>,
    port: u16,
    profile: tempfile::TempDir,
    // Last: released after the processes are gone.
    _serial: MutexGuard<'static, ()>,
}

/// A child leading a process group of its own, SIGKILLed with its group on
/// drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

impl Driver {
    /// Waits for the browser to be free, installs it if it is missing, and
    /// starts chromedriver on a free port.
    pub fn start() -> Driver {
        // A test that failed with the lock held poisons it; the next one may
        // still run (its own processes are gone: see Drop).
        let serial = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        ensure_installed();
        let profile = tempfile::Builder::new()
            .prefix("society-chromium-")
            .tempdir()
            .unwrap();
        let mut last = String::new();
        // Another process may take the free port first: then another one.
        for _ in 0..5 {
            let port = free_port();
            let log = profile.path().join("chromedriver.log");
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
            let mut driver = Group(child);
            match wait_ready(&mut driver.0, port) {
                Ok(()) => {
                    return Driver {
                        driver: Some(driver),
                        port,
                        profile,
                        _serial: serial,
                    }
                }
                Err(e) => last = e,
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    /// Runs `test` in a new browser session, in a tokio runtime of its own
    /// (current thread), and closes the session afterwards.
    pub fn session(&self, test: impl AsyncFnOnce(&Client)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Either provider will do; a second test finds it installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        rt.block_on(async {
            let client = ClientBuilder::rustls()
                .expect("rustls with the native roots")
                .capabilities(capabilities(self.profile.path()))
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
                .unwrap_or_else(|e| panic!("no browser session: {e}"));
            test(&client).await;
            client.close().await.unwrap();
        });
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        drop(self.driver.take());
        // Chromium's processes name the profile on their command lines
        // (in case one left chromedriver's process group).
        for pid in processes_mentioning(self.profile.path()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Polls chromedriver's `GET /status` until it says it is ready.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("chromedriver exited: {status}"));
        }
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if up && Request::get(port, "/status").send().json()["value"]["ready"] == true {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not ready on port {port} within 20 s"))
}

fn capabilities(profile: &Path) -> serde_json::Map<String, Value> {
    let user_data = profile.join("profile");
    // The background-networking flags keep Chromium from calling Google's
    // hosts, which a closed network refuses (and slowly).
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1400,900",
                format!("--user-data-dir={}", user_data.display()),
            ],
        },
    });
    match caps {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object"),
    }
}

/// Runs `scripts/install-browser.sh` when Chromium or chromedriver is missing.
fn ensure_installed() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-browser.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success() && Path::new(CHROMEDRIVER).exists(),
        "the browser tests need {CHROMIUM} and {CHROMEDRIVER}; {} could not install them ({}):\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// A port nobody listens on right now (chromedriver takes it a moment later).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `check` (an async closure over the page, or the files) until it
/// returns `Some`, or fails the test after [`PAGE_SOON`] naming `what` and
/// saying what the page showed then.
pub async fn wait_for<T>(c: &Client, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PAGE_SOON;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {PAGE_SOON:?} waiting for {what}; {}",
                page_state(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the page shows, for a failure's message: its address, the view
/// that says it is ready, the event stream's state, the flash, and the
/// start of the view's text.
async fn page_state(c: &Client) -> String {
    let script =
        "const t = (s) => { const e = document.querySelector(s); return e ? e.innerText : null; };
        return JSON.stringify({url: location.href, ready: document.body.dataset.ready || null,
          live: (document.getElementById('live') || {dataset: {}}).dataset.state || null,
          flash: t('#flash'), view: (t('#view') || '').slice(0, 2000)});";
    match c.execute(script, vec![]).await {
        Ok(Value::String(s)) => format!("the page: {s}"),
        other => format!("the page could not be read: {other:?}"),
    }
}

/// Waits until `css` matches an element.
pub async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(PAGE_SOON)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(el) => el,
        Err(e) => panic!(
            "no element {css} within {PAGE_SOON:?} ({e}); {}",
            page_state(c).await
        ),
    }
}

/// Waits until the current view says it has rendered its data
/// (`body[data-ready=VIEW]`) and the event stream is open.
pub async fn wait_view(c: &Client, view: &str) {
    wait_css(c, &format!("body[data-ready=\"{view}\"]")).await;
    wait_css(c, "#live[data-state=\"open\"]").await;
}

/// Opens `url` and waits for `view` to be ready.
pub async fn open(c: &Client, url: &str, view: &str) {
    c.goto(url).await.unwrap();
    wait_view(c, view).await;
}

/// The text of the first element matching `css`, if there is one.
pub async fn text_of(c: &Client, css: &str) -> Option<String> {
    let el = c.find(Locator::Css(css)).await.ok()?;
    el.text().await.ok().map(|t| t.trim().to_string())
}

/// Attribute `attr` of the first element matching `css`, if any.
pub async fn attr_of(c: &Client, css: &str, attr: &str) -> Option<String> {
    let el = c.find(Locator::Css(css)).await.ok()?;
    el.attr(attr).await.ok().flatten()
}

/// How many elements match `css`.
pub async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.map_or(0, |v| v.len())
}

/// Waits for the outcome of an action in `#flash`; returns its kind
/// (`ok` or `error`) and its text.
pub async fn wait_flash(c: &Client) -> (String, String) {
    let f = wait_css(c, "#flash[data-kind]").await;
    let kind = f.attr("data-kind").await.unwrap().unwrap_or_default();
    (kind, f.text().await.unwrap_or_default())
}

/// Forgets the outcome `#flash` shows, so that [`wait_flash`] waits for the
/// next one.
pub async fn clear_flash(c: &Client) {
    c.execute(
        "const f = document.getElementById('flash'); delete f.dataset.kind; f.textContent = '';",
        vec![],
    )
    .await
    .unwrap();
}
