//! Waiting for a society to settle.

use society_testkit::wait_until;
use std::time::{Duration, Instant};

/// Waits (up to `timeout`, failing with `what`) until `reading` has not
/// changed for `quiet`; returns how long it kept changing, from `start`.
pub fn wait_quiet<T: PartialEq>(
    timeout: Duration,
    what: &str,
    quiet: Duration,
    start: Instant,
    mut reading: impl FnMut() -> T,
) -> Duration {
    let mut last = reading();
    let mut changed = Instant::now();
    let mut lasted = start.elapsed();
    wait_until(timeout, what, || {
        let now = reading();
        if now != last {
            last = now;
            changed = Instant::now();
            lasted = start.elapsed();
        }
        (changed.elapsed() >= quiet).then_some(())
    });
    lasted
}
