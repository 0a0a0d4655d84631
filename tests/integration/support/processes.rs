//! Processes a test starts itself, and the locks processes hold.

use society_core::lock::{self, LockState};
use society_testkit::wait_until;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Kills a helper process on drop, so a failing test leaves nothing behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_exit(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    wait_until(timeout, what, || child.try_wait().unwrap())
}

/// Is the lock file at `path` free (nobody holds it)?
pub fn lock_free(path: &Path) -> bool {
    matches!(lock::probe(path).unwrap(), LockState::Free)
}
