//! One retry policy for every client (backon's exponential backoff with jitter): what an
//! attempt came to decides whether another is made, and the process's shutdown ends a backoff
//! at once instead of waiting it out.

use super::Shutdown;
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Each request's own timeout.
    pub request_timeout: Duration,
    /// Ends every backoff and rate-limit wait (SIGTERM).
    pub shutdown: Shutdown,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            shutdown: Shutdown::new(),
        }
    }
}

impl RetryPolicy {
    /// Short delays and timeouts, for tests and the demo's sandboxes.
    pub fn fast() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            request_timeout: Duration::from_secs(2),
            shutdown: Shutdown::new(),
        }
    }

    /// The same policy, stopped by `shutdown`.
    pub fn stopped_by(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = shutdown.clone();
        self
    }

    /// Delays from half the base delay, doubling, capped, each with up to as much again of
    /// jitter, so clients that failed together spread out.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay / 2)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }
}

/// What one attempt came to, when it did not succeed.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Nothing happened at the other end (throttled, unreachable, a read that failed): worth
    /// another try. The text says what happened.
    Retry(String),
    /// It may have taken effect (a write whose answer was lost): another try could do it twice,
    /// so the caller reads the outside system before anything is sent again.
    Unsure(String),
    /// Final: the outside system said no.
    Fail(E),
}

/// Why a call gave up.
#[derive(Debug)]
pub enum GaveUp<E> {
    Failed(E),
    /// No usable answer after `attempts` (or the shutdown came); for a write the outcome is
    /// unknown.
    Unanswered {
        attempts: u32,
        last: String,
        /// The shutdown ended the attempts: nothing is wrong with the other side.
        stopped: bool,
    },
}

/// Runs `attempt` until it succeeds, fails for good, the attempts are spent, or the process is
/// stopping.
pub async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    mut attempt: F,
) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    // Atomic only so the future stays Send; one call's attempts are sequential.
    let attempts = AtomicU32::new(0);
    let stop_retrying = policy.shutdown.clone();
    let sleeper = policy.shutdown.clone();
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt()
    })
    .retry(policy.backoff())
    .sleep(move |delay| {
        let shutdown = sleeper.clone();
        async move {
            shutdown.sleep(delay).await;
        }
    })
    .when(|failure| matches!(failure, Attempt::Retry(_)) && !stop_retrying.is_triggered())
    .notify(|failure, delay| {
        if let Attempt::Retry(text) = failure {
            tracing::warn!(operation, attempt = attempts.load(Ordering::Relaxed), delay_ms = delay.as_millis() as u64, failure = %text, "retrying");
        }
    })
    .await;
    result.map_err(|failure| match failure {
        Attempt::Fail(error) => GaveUp::Failed(error),
        Attempt::Retry(last) | Attempt::Unsure(last) => {
            let stopped = policy.shutdown.is_triggered();
            let last = if stopped { format!("{last} (stopped by a signal)") } else { last };
            GaveUp::Unanswered { attempts: attempts.load(Ordering::Relaxed).max(1), last, stopped }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            request_timeout: Duration::from_secs(1),
            shutdown: Shutdown::new(),
        }
    }

    #[tokio::test]
    async fn retryable_failures_are_tried_again_until_the_attempts_are_spent() {
        let calls = Cell::new(0);
        let result: Result<(), GaveUp<()>> = with_retries(&policy(), "op", || {
            calls.set(calls.get() + 1);
            async { Err(Attempt::Retry("HTTP 503".into())) }
        })
        .await;
        assert!(
            matches!(result, Err(GaveUp::Unanswered { attempts: 4, ref last, stopped: false }) if last == "HTTP 503")
        );
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn a_refusal_or_an_unsure_write_is_not_tried_again() {
        let calls = Cell::new(0);
        let refused: Result<(), GaveUp<&str>> = with_retries(&policy(), "op", || {
            calls.set(calls.get() + 1);
            async { Err(Attempt::Fail("400")) }
        })
        .await;
        assert!(matches!(refused, Err(GaveUp::Failed("400"))));
        let unsure: Result<(), GaveUp<()>> =
            with_retries(&policy(), "op", || async { Err(Attempt::Unsure("timed out".into())) }).await;
        assert!(matches!(unsure, Err(GaveUp::Unanswered { attempts: 1, .. })));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn the_shutdown_ends_a_long_backoff_at_once() {
        let mut slow = policy();
        slow.base_delay = Duration::from_secs(60);
        slow.max_delay = Duration::from_secs(60);
        let trigger = slow.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            trigger.trigger();
        });
        let started = std::time::Instant::now();
        let result: Result<(), GaveUp<()>> =
            with_retries(&slow, "op", || async { Err(Attempt::Retry("HTTP 500".into())) }).await;
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        match result {
            Err(GaveUp::Unanswered { last, stopped, .. }) => {
                assert!(stopped && last.ends_with("(stopped by a signal)"), "{last}")
            }
            other => panic!("{other:?}"),
        }
    }
}
