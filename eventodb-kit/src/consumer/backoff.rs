//! Capped exponential backoff with jitter.

use std::time::Duration;

/// The wait before try `attempt + 1` (after `attempt` failures, from 1): `initial` doubled
/// per failure, capped at `max`, then a random 50 % to 100 % of that (so that many clients
/// retrying together spread out).
pub(crate) fn delay(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = initial.saturating_mul(1u32 << exponent).min(max);
    full.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_stays_under_the_cap() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..40 {
            let full = initial.saturating_mul(1 << (attempt - 1).min(30)).min(max);
            let wait = delay(initial, max, attempt);
            assert!(wait <= full, "attempt {attempt}: {wait:?} > {full:?}");
            assert!(
                wait >= full / 2,
                "attempt {attempt}: {wait:?} < half of {full:?}"
            );
        }
        assert!(delay(initial, max, 30) >= Duration::from_secs(1));
    }
}
