//! Crash points for tests: `SOCIETY_FAULTS=name[,name...]` in a process's
//! environment makes [`point`] abort the process (as a SIGKILL would, with no
//! cleanup) when it reaches a point of that name. It lets a test put a crash
//! exactly in a window a random SIGKILL rarely hits — between a rotation's
//! rename and the checkpoint that records it, say. Unset, a point costs one
//! load of a cached flag.

use std::sync::OnceLock;

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("SOCIETY_FAULTS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    })
}

/// Aborts the process if the crash point `name` is armed.
pub fn point(name: &str) {
    if armed().iter().any(|a| a == name) {
        tracing::warn!(point = name, "crash point reached: aborting on purpose");
        std::process::abort();
    }
}

/// Sleeps for `d` if the point `name` is armed: widens a race window that a
/// test must hit every time (concurrent `spawn --purpose` choosing before
/// any of them claims).
pub fn pause(name: &str, d: std::time::Duration) {
    if armed().iter().any(|a| a == name) {
        std::thread::sleep(d);
    }
}
