//! Where a peer server runs: a free loopback port and a temp dir that is
//! removed when the peer is dropped.

use anyhow::Context;
use std::time::{Duration, Instant};

/// A port nothing listens on right now (the kernel picks it; the listener is
/// closed again before the peer binds it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("failed to find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

pub fn temp_dir(tag: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("society-bench-{tag}-"))
        .tempdir()
        .with_context(|| format!("failed to create a temp dir for {tag}"))
}

/// Polls `ready` until it holds, for at most 10 s (a server starting up).
pub fn wait_ready(what: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        anyhow::ensure!(Instant::now() < deadline, "{what} not ready within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
