//! The process's stop signal (SIGTERM, Ctrl-C): every wait of a client (a retry's backoff, a
//! rate limit) ends on it, and a stage stops at its next step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Tells every part of the process to stop, once. Clones share the signal.
#[derive(Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown").field("triggered", &self.is_triggered()).finish()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Self { flag: Arc::new(AtomicBool::new(false)), sender: Arc::new(sender) }
    }

    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// Resolves once the shutdown is triggered.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        if *receiver.borrow_and_update() {
            return;
        }
        let _ = receiver.changed().await;
    }

    /// Sleeps `duration`, or less if the shutdown comes first; true when it slept the whole way.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.wait() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_sleep_ends_at_the_shutdown() {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.trigger();
        });
        let started = std::time::Instant::now();
        assert!(!shutdown.sleep(Duration::from_secs(30)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(shutdown.is_triggered());
        assert!(!shutdown.sleep(Duration::from_secs(30)).await, "once triggered, every later wait ends at once");
    }
}
