//! A token bucket: `rate` tokens a second refill a bucket of `burst`, one token per call, as
//! Amazon and the marketplaces meter their APIs. Driven by tokio's clock, so tests can pause it.

use std::sync::Mutex;
use tokio::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate_per_second: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate_per_second: rate_per_second.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(BucketState { tokens: burst, refilled_at: Instant::now() }),
        }
    }

    /// Waits until a token is free, then takes it.
    pub async fn acquire(&self) {
        loop {
            if self.try_acquire() {
                return;
            }
            let missing = {
                let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                1.0 - state.tokens
            };
            tokio::time::sleep(Duration::from_secs_f64(missing.max(0.0) / self.rate_per_second)).await;
        }
    }

    /// Takes a token if one is free now (a server refusing excess calls with 429).
    pub fn try_acquire(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(state.refilled_at).as_secs_f64() * self.rate_per_second;
        state.tokens = (state.tokens + refill).min(self.burst);
        state.refilled_at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The least time `calls` calls can take from a full bucket (the benchmark's lower bound).
    pub fn lower_bound(&self, calls: u32) -> Duration {
        let beyond_burst = (f64::from(calls) - self.burst).max(0.0);
        Duration::from_secs_f64(beyond_burst / self.rate_per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_burst_is_free_then_calls_are_spaced_by_the_rate() {
        let bucket = TokenBucket::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..4 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((1.99..2.01).contains(&elapsed), "4 calls past the burst at 2/s take 2 s, took {elapsed}");
        assert_eq!(bucket.lower_bound(7), Duration::from_secs(2));
    }
}
