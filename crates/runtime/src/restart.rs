//! Restart policy: exponential backoff, and s6's permanent-failure rule (more
//! than `burst` failures within `window` ends in `failed`). Pure state, so it
//! is unit-tested without processes.

use society_core::state::Policy;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct RestartState {
    failures: VecDeque<Instant>,
    next_backoff: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart once this much time has passed.
    RestartAfter(Duration),
    /// Too many failures: stay down until an explicit restart.
    Failed,
}

impl RestartState {
    pub fn on_failure(&mut self, now: Instant, policy: &Policy) -> Verdict {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            self.failures.pop_front();
        }
        if self.failures.is_empty() {
            self.next_backoff = None;
        }
        self.failures.push_back(now);
        if self.failures.len() > policy.burst as usize {
            return Verdict::Failed;
        }
        let delay = self.next_backoff.unwrap_or(policy.backoff_initial);
        self.next_backoff = Some(
            (delay * 2)
                .min(policy.backoff_max)
                .max(Duration::from_millis(1)),
        );
        Verdict::RestartAfter(delay)
    }

    /// The process that just failed had made progress (handled messages):
    /// it is not crash-looping at start, so the next restart is immediate
    /// again. The failure still counts toward `burst` within `window`.
    pub fn progressed(&mut self) {
        self.next_backoff = None;
    }

    pub fn reset(&mut self) {
        self.failures.clear();
        self.next_backoff = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_then_fails() {
        let policy = Policy {
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(35),
            burst: 4,
            window: Duration::from_secs(60),
            ..Policy::default()
        };
        let mut s = RestartState::default();
        let t = Instant::now();
        let delays: Vec<_> = (0..4).map(|_| s.on_failure(t, &policy)).collect();
        assert_eq!(
            delays,
            [10, 20, 35, 35].map(|ms| Verdict::RestartAfter(Duration::from_millis(ms)))
        );
        assert_eq!(s.on_failure(t, &policy), Verdict::Failed);
    }

    #[test]
    fn progress_resets_the_backoff_but_not_the_burst_count() {
        let policy = Policy {
            backoff_initial: Duration::from_millis(10),
            burst: 2,
            ..Policy::default()
        };
        let mut s = RestartState::default();
        let t = Instant::now();
        assert_eq!(
            s.on_failure(t, &policy),
            Verdict::RestartAfter(Duration::from_millis(10))
        );
        s.progressed();
        assert_eq!(
            s.on_failure(t, &policy),
            Verdict::RestartAfter(Duration::from_millis(10))
        );
        assert_eq!(s.on_failure(t, &policy), Verdict::Failed);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let policy = Policy {
            burst: 1,
            window: Duration::from_millis(100),
            ..Policy::default()
        };
        let mut s = RestartState::default();
        let t = Instant::now();
        assert!(matches!(s.on_failure(t, &policy), Verdict::RestartAfter(_)));
        let later = t + Duration::from_millis(500);
        assert_eq!(
            s.on_failure(later, &policy),
            Verdict::RestartAfter(policy.backoff_initial)
        );
        assert_eq!(s.on_failure(later, &policy), Verdict::Failed);
    }
}
