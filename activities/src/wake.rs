//! Wake-ups for work that waits inside a step: a media task polled every few seconds is
//! waited for here, and the webhook that says it finished (received by this process) cuts the
//! wait short. Durable waits between steps go through the engine's signals instead; this only
//! saves the rest of a poll interval, so a webhook received by another host costs nothing
//! but that interval.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::Notify;

static WAITERS: LazyLock<Mutex<HashMap<String, Arc<Notify>>>> = LazyLock::new(Default::default);

fn waiters() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Notify>>> {
    WAITERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registration for wake-ups under `key`, removed when dropped.
pub struct Waiter {
    key: String,
    notify: Arc<Notify>,
}

impl Waiter {
    /// Register for `key`. A wake that comes before [`Waiter::wait`] is kept for it.
    pub fn new(key: impl Into<String>) -> Waiter {
        let key = key.into();
        let notify = waiters().entry(key.clone()).or_default().clone();
        Waiter { key, notify }
    }

    /// Wait for a wake-up or `d`, whichever comes first.
    pub async fn wait(&self, d: std::time::Duration) {
        let _ = tokio::time::timeout(d, self.notify.notified()).await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut w = waiters();
        if w.get(&self.key)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            w.remove(&self.key);
        }
    }
}

/// Wake the step waiting under `key` in this process; false when none is.
pub fn wake(key: &str) -> bool {
    match waiters().get(key) {
        Some(n) => {
            n.notify_one();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_wake_cuts_the_wait_short_even_when_it_comes_first() {
        let w = Waiter::new("k1");
        assert!(wake("k1"));
        let t = Instant::now();
        w.wait(Duration::from_secs(30)).await;
        assert!(t.elapsed() < Duration::from_secs(5));
        drop(w);
        assert!(!wake("k1"), "gone with its waiter");
    }
}
