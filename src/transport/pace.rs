//! Pacing the calls to one API (or one operation of it) at the rate its owner publishes, with
//! governor's GCRA limiter. Two rules keep us under the limit whatever happens around us:
//! - every limiter starts empty, so a process that starts right after another one (back-to-back
//!   cron cycles, a restart) waits as if the API's own bucket were used up;
//! - the interval between calls is a little longer than the published one, so network jitter
//!   never lands a call a millisecond early at the API.

use super::Shutdown;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// How much slower than the published rate we call (5%).
const SAFETY_MARGIN: f64 = 1.05;

/// A wait that a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped by a signal while waiting for the rate limit")]
pub struct Stopped;

pub struct Pace {
    limiter: DefaultDirectRateLimiter,
    rate: f64,
    burst: u32,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace").field("rate", &self.rate).field("burst", &self.burst).finish()
    }
}

impl Pace {
    /// At most `rate` calls a second (less the margin), `burst` at once, starting empty.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let interval = Duration::from_secs_f64(SAFETY_MARGIN / rate.max(f64::MIN_POSITIVE));
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| unreachable!("a positive interval is a quota"))
            .allow_burst(burst);
        let limiter = RateLimiter::direct(quota);
        // Empty at the start: the API's own bucket may have been used up by the process before.
        let _ = limiter.check_n(burst);
        Self { limiter, rate, burst: burst.get() }
    }

    /// Waits until the next call is allowed, or until the shutdown.
    pub async fn ready(&self, shutdown: &Shutdown) -> Result<(), Stopped> {
        if shutdown.is_triggered() {
            return Err(Stopped);
        }
        tokio::select! {
            _ = self.limiter.until_ready() => Ok(()),
            _ = shutdown.wait() => Err(Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn calls_start_after_one_interval_and_never_come_faster_than_the_rate() {
        let pace = Pace::new(20.0, 3);
        let shutdown = Shutdown::new();
        let started = Instant::now();
        let mut times = Vec::new();
        for _ in 0..6 {
            pace.ready(&shutdown).await.unwrap();
            times.push(started.elapsed());
        }
        // 20/s with the margin: one call every 52.5 ms, and the first only after one interval.
        assert!(times[0] >= Duration::from_millis(52), "the bucket starts empty: {times:?}");
        assert!(times[5] >= Duration::from_millis(6 * 52), "six calls take six intervals: {times:?}");
    }

    #[tokio::test]
    async fn the_shutdown_ends_a_wait() {
        let pace = Pace::new(0.01, 1);
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.trigger();
        });
        let started = Instant::now();
        assert_eq!(pace.ready(&shutdown).await, Err(Stopped));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
