//! When the sender scans the stream heads again: rounds of claims, and a pause after a round
//! that found nothing to send.
//!
//! A claim scans at most [`HEAD_SCAN`](crate::outbox::backend::HEAD_SCAN) streams, from where
//! the last one stopped; a round is the claims from the first stream to the last. A round
//! that leased rows is followed by another at once (streams may have become sendable while it
//! ran); one that leased nothing ends the scanning until something wakes the sender.
//!
//! Two ways this went wrong before:
//! - A round ended only when one claim scanned every stream from the first. With more held
//!   streams than one claim scans, that never happened, and the sender scanned without a
//!   pause for as long as the streams were held: with 1,000 streams waiting out their backoff
//!   while EventoDB was down, 1,700 scans in 5 s kept a PostgreSQL core 70% busy.
//! - Every commit that writes to the outbox wakes the sender, and each wake-up started a
//!   round. When no stream can be sent (EventoDB is down, or streams are parked behind a
//!   failed row) each round finds nothing, and the application's commits kept starting new
//!   ones. After a few rounds in a row that found nothing, the sender now waits a few times
//!   as long as the last one took before it scans again, so such scans take at most a fifth
//!   of the time.
//!
//! Not after the first ones: in normal running, a round that leased rows is followed by one
//! that finds nothing, and so are a recorded send and the end of a stream task: three per
//! event when events come one at a time. Pausing from the first, and then from the third,
//! put off the next commit's claim (commit → sent p50 9 to 15 ms on PostgreSQL in the outbox
//! bench, against 3 to 5), where a round took a few milliseconds.

use std::time::Duration;

use tokio::time::Instant;

/// A round that found nothing is followed by a pause this many times as long as the round,
/// from the [`PAUSE_FROM`]th such round in a row.
const PAUSE_PER_FRUITLESS: u32 = 4;

/// The first fruitless round in a row that pauses.
const PAUSE_FROM: u32 = 8;

/// Where the rounds of claims stand.
#[derive(Debug, Default)]
pub(super) struct ClaimRounds {
    /// Some claim of the current round leased rows.
    leased: bool,
    /// Time spent in the claims of the current round, while none leased rows.
    fruitless: Duration,
    /// Rounds in a row that leased nothing.
    fruitless_rounds: u32,
    /// No claim starts before this.
    paused_until: Option<Instant>,
}

impl ClaimRounds {
    /// Records a claim that ran from `started` to `ended`, leased `rows` rows and, if
    /// `reached_end`, scanned up to the last stream without filling the free slots. Returns
    /// whether the next claim should follow at once. `longest` caps the pause (the poll
    /// interval: a poll would scan then anyway).
    pub(super) fn claimed(
        &mut self,
        started: Instant,
        ended: Instant,
        rows: usize,
        reached_end: bool,
        longest: Duration,
    ) -> bool {
        self.leased |= rows > 0;
        if !self.leased {
            self.fruitless += ended.saturating_duration_since(started);
        }
        if !reached_end {
            return true;
        }
        let leased = self.leased;
        if leased {
            self.fruitless_rounds = 0;
        } else {
            self.fruitless_rounds = self.fruitless_rounds.saturating_add(1);
            if self.fruitless_rounds >= PAUSE_FROM {
                let pause = self
                    .fruitless
                    .saturating_mul(PAUSE_PER_FRUITLESS)
                    .min(longest);
                self.paused_until = Some(ended + pause);
            }
        }
        self.leased = false;
        self.fruitless = Duration::ZERO;
        leased
    }

    /// When the next claim may start: `None` for at once.
    pub(super) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|at| *at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// Claims of `ms` milliseconds each, one right after the other, from `start`: what each
    /// returned, and when the round after them may start.
    fn run(
        rounds: &mut ClaimRounds,
        start: Instant,
        claims: &[(u32, usize, bool)],
    ) -> (Vec<bool>, Option<Instant>, Instant) {
        let mut at = start;
        let mut on = Vec::new();
        for &(ms, rows, reached_end) in claims {
            let ended = at + MS * ms;
            on.push(rounds.claimed(at, ended, rows, reached_end, POLL));
            at = ended;
        }
        (on, rounds.paused_until(at), at)
    }

    #[test]
    fn a_round_goes_on_until_it_reaches_the_last_stream() {
        let mut rounds = ClaimRounds::default();
        let (on, paused, _) = run(
            &mut rounds,
            Instant::now(),
            &[(3, 0, false), (3, 0, false), (3, 0, false)],
        );
        assert_eq!(on, [true, true, true]);
        assert_eq!(paused, None);
    }

    #[test]
    fn the_eighth_round_in_a_row_that_found_nothing_pauses_four_times_its_length() {
        let mut rounds = ClaimRounds::default();
        let mut claims = vec![(1, 0, true); 7];
        claims.extend([(3, 0, false), (2, 0, true)]);
        let (on, paused, end) = run(&mut rounds, Instant::now(), &claims);
        let mut expected = vec![false; 7];
        expected.extend([true, false]);
        assert_eq!(on, expected);
        assert_eq!(paused, Some(end + MS * 20));
        assert_eq!(rounds.paused_until(end + MS * 20), None);
        // And every one after it.
        let (_, paused, end) = run(&mut rounds, end + MS * 20, &[(1, 0, true)]);
        assert_eq!(paused, Some(end + MS * 4));
    }

    #[test]
    fn a_round_that_leased_rows_is_followed_by_another_at_once() {
        let mut rounds = ClaimRounds::default();
        let mut claims = vec![(1, 0, true); 7];
        claims.extend([(5, 0, false), (5, 3, true)]);
        let (on, paused, end) = run(&mut rounds, Instant::now(), &claims);
        assert_eq!(on[7..], [true, true]);
        assert_eq!(paused, None);
        // It starts the count again.
        let (on, paused, _) = run(&mut rounds, end, &[(1, 0, true); 7]);
        assert_eq!(on, [false; 7]);
        assert_eq!(paused, None);
    }

    #[test]
    fn the_pause_never_exceeds_the_poll_interval() {
        let mut rounds = ClaimRounds::default();
        let mut claims = vec![(1, 0, true); 7];
        claims.push((2_000, 0, true));
        let (_, paused, end) = run(&mut rounds, Instant::now(), &claims);
        assert_eq!(paused, Some(end + POLL));
    }
}
