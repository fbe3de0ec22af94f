//! Repeated failures of one kind of database call, logged when they begin, at most once per
//! interval while they last (with how many there were), and once when they end. A database
//! that is down for a minute writes a handful of lines, not one per retry.

use std::time::{Duration, Instant};

/// One kind of call's trouble.
pub(crate) struct Trouble {
    what: &'static str,
    every: Duration,
    since: Option<Instant>,
    last_log: Option<Instant>,
    failures: u64,
}

impl Trouble {
    /// Trouble with `what` ("claiming runs", "heart-beating"), logged at most every `every`.
    pub(crate) fn new(what: &'static str, every: Duration) -> Self {
        Trouble {
            what,
            every,
            since: None,
            last_log: None,
            failures: 0,
        }
    }

    /// A call failed. Returns whether this failure was logged.
    pub(crate) fn failed(&mut self, worker: &str, error: &dyn std::fmt::Display) -> bool {
        self.failures += 1;
        let now = Instant::now();
        match self.since {
            None => {
                self.since = Some(now);
                self.last_log = Some(now);
                tracing::warn!(
                    worker,
                    error = %error,
                    "{} failed; retrying with back-off (logged again every {}s while it lasts)",
                    self.what,
                    self.every.as_secs()
                );
                true
            }
            Some(since) if self.last_log.is_none_or(|l| now - l >= self.every) => {
                self.last_log = Some(now);
                tracing::warn!(
                    worker,
                    error = %error,
                    failures = self.failures,
                    for_s = (now - since).as_secs(),
                    "{} still failing",
                    self.what
                );
                true
            }
            Some(_) => false,
        }
    }

    /// A call succeeded: if it had been failing, say it works again.
    pub(crate) fn ok(&mut self, worker: &str) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                worker,
                failures = self.failures,
                after_s = since.elapsed().as_secs(),
                "{} works again",
                self.what
            );
            self.failures = 0;
            self.last_log = None;
        }
    }

    /// Whether calls are failing now.
    #[cfg(test)]
    pub(crate) fn failing(&self) -> bool {
        self.since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_outage_is_logged_a_few_times_not_once_per_retry() {
        let mut t = Trouble::new("claiming runs", Duration::from_millis(50));
        let mut logged = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(220) {
            if t.failed("w", &"connection refused") {
                logged += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // The first failure, then one per 50 ms: about five lines for about a hundred failures.
        assert!((4..=6).contains(&logged), "{logged} lines");
        assert!(t.failing());
        t.ok("w");
        assert!(!t.failing());
        assert!(t.failed("w", &"again"), "a new outage is logged at once");
    }
}
