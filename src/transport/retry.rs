//! Bounded retries with exponential backoff and full jitter, for 429, 5xx and timeouts.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Each request's own timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
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
        }
    }

    pub fn backoff(&self) -> Backoff {
        Backoff { policy: self.clone(), attempt: 0 }
    }
}

/// The retry state of one call.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
}

impl Backoff {
    /// Counts an attempt that failed in a retryable way; returns how long to wait before the
    /// next, or None when the attempts are spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= self.policy.max_attempts {
            return None;
        }
        let exponential = self.policy.base_delay.saturating_mul(1u32 << (self.attempt - 1).min(16));
        let capped = exponential.min(self.policy.max_delay);
        // Jitter between half and all of the delay, so clients that failed together spread out.
        let jitter = 0.5 + fastrand::f64() * 0.5;
        Some(capped.mul_f64(jitter))
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_jittered_and_bounded() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            request_timeout: Duration::from_secs(1),
        };
        let mut backoff = policy.backoff();
        let delays: Vec<Duration> = std::iter::from_fn(|| backoff.next_delay()).collect();
        assert_eq!(delays.len(), 4, "5 attempts mean 4 waits");
        let bounds = [(50, 100), (100, 200), (150, 300), (150, 300)];
        for (delay, (low, high)) in delays.iter().zip(bounds) {
            assert!((low..=high).contains(&(delay.as_millis() as u64)), "{delay:?} not in {low}..={high} ms");
        }
    }
}
