//! The sandbox clock: real time plus an offset, optionally frozen.
//!
//! Every timestamp, expiry, rate-limit window and token lifetime reads this clock, so moving
//! it forward expires links at once. Nothing in linkbox sleeps until an expiry: expiry is a
//! comparison against [`Clock::now`].

use std::sync::Arc;

use linkbox_contracts::sandbox::ClockChange;
use parking_lot::RwLock;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::persist::Sink;

/// A cheap-to-clone handle on the one sandbox clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    state: Arc<RwLock<State>>,
    /// Woken whenever the clock is set, so work scheduled on the sandbox clock (webhook
    /// retries) runs at once instead of at its next periodic check.
    moved: Arc<tokio::sync::Notify>,
    /// Where each setting of the clock is kept (the state file, or nowhere).
    sink: Sink,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Added to real time.
    offset: Duration,
    /// When set, the clock reads this instant until unfrozen.
    frozen_at: Option<OffsetDateTime>,
}

/// What the clock reads and how it is set, as reported by the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    pub now: OffsetDateTime,
    pub offset: Duration,
    pub frozen: bool,
}

impl Clock {
    /// A clock that reads real time.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// A clock reading real time whose every setting is written through `sink`.
    pub fn with_sink(sink: Sink) -> Clock {
        Clock {
            sink,
            ..Clock::default()
        }
    }

    /// Keeps the new setting, inside the lock that made it so writes stay in order.
    fn persist(&self, state: &State) {
        self.sink
            .record(|changes| changes.clock(state.offset, state.frozen_at));
    }

    /// The sandbox's current time, to the millisecond (the precision both APIs show).
    pub fn now(&self) -> OffsetDateTime {
        let state = *self.state.read();
        truncate_to_millis(state.frozen_at.unwrap_or_else(|| offset_now(state.offset)))
    }

    /// Whether the clock is frozen.
    pub fn is_frozen(&self) -> bool {
        self.state.read().frozen_at.is_some()
    }

    pub fn reading(&self) -> ClockReading {
        let state = *self.state.read();
        ClockReading {
            now: truncate_to_millis(state.frozen_at.unwrap_or_else(|| offset_now(state.offset))),
            // How far ahead of real time it reads now: a frozen clock falls behind as real
            // time passes, where its offset kept the figure of when it was frozen.
            offset: state.frozen_at.map_or(state.offset, |at| at - real_now()),
            frozen: state.frozen_at.is_some(),
        }
    }

    /// Completes after the next time the clock is advanced, set, frozen or unfrozen (or at
    /// once if that happened since the last wait). Meant for one waiter: the webhook engine.
    pub async fn moved(&self) {
        self.moved.notified().await;
    }

    fn tell_moved(&self) {
        self.moved.notify_one();
    }

    /// Moves the clock by `by` (forward when positive), frozen or not: at most
    /// [`MAX_STEP_SECONDS`] either way, and only within [`YEARS`].
    pub fn advance(&self, by: Duration) -> Result<(), StepError> {
        // `unsigned_abs`: the smallest `i64` has no `abs`.
        if by.whole_seconds().unsigned_abs() > MAX_STEP_SECONDS.unsigned_abs() {
            return Err(StepError::TooFar);
        }
        {
            let mut state = self.state.write();
            let real = real_now();
            let reading = state
                .frozen_at
                .unwrap_or_else(|| reading_at(real, state.offset));
            let to = check_range(reading.checked_add(by))?;
            match state.frozen_at {
                Some(_) => {
                    state.offset += by;
                    state.frozen_at = Some(to);
                }
                // From the reading shown: a clock that ran into the end of 9000 shows its
                // last millisecond, and a step back from there is a step back from that,
                // not from the time its offset would have reached.
                None => state.offset = to - real,
            }
            self.persist(&state);
        }
        self.tell_moved();
        Ok(())
    }

    /// Sets the clock so that it reads `to` now.
    pub fn set_to(&self, to: OffsetDateTime) -> Result<(), OutOfRange> {
        // Kept in UTC, as every other reading is, so a frozen clock reads UTC too.
        let to = check_range(Some(to))?;
        {
            let mut state = self.state.write();
            state.offset = to - real_now();
            if state.frozen_at.is_some() {
                state.frozen_at = Some(to);
            }
            self.persist(&state);
        }
        self.tell_moved();
        Ok(())
    }

    /// Freezes the clock at its current reading, or lets it run again from there.
    pub fn set_frozen(&self, frozen: bool) {
        {
            let mut state = self.state.write();
            match (frozen, state.frozen_at) {
                // The reading it shows, which stops at the end of 9000 ([`offset_now`]).
                (true, None) => state.frozen_at = Some(offset_now(state.offset)),
                (false, Some(at)) => {
                    state.offset = at - real_now();
                    state.frozen_at = None;
                }
                _ => {}
            }
            self.persist(&state);
        }
        self.tell_moved();
    }

    /// Restores an offset saved earlier (persistence, snapshots).
    pub fn set_offset(&self, offset: Duration) {
        let mut state = self.state.write();
        state.offset = offset;
        self.persist(&state);
        drop(state);
        self.tell_moved();
    }

    /// Restores a setting kept in the state file: the offset, and the reading it is frozen
    /// at, if it is.
    /// The offset and the frozen reading, as [`Clock::restore`] takes them.
    pub fn setting(&self) -> (Duration, Option<OffsetDateTime>) {
        let state = *self.state.read();
        (state.offset, state.frozen_at)
    }

    pub fn restore(&self, offset: Duration, frozen_at: Option<OffsetDateTime>) {
        *self.state.write() = State { offset, frozen_at };
        self.tell_moved();
    }

    /// Back to real time, running.
    pub fn reset(&self) {
        let mut state = self.state.write();
        *state = State::default();
        self.persist(&state);
        drop(state);
        self.tell_moved();
    }
}

/// The years the sandbox clock may show: wide enough for any test, narrow enough that every
/// expiry computed from it (a year at most) stays representable.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9000;

/// A clock change that would leave [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sandbox clock must stay between the years 1970 and 9000")]
pub struct OutOfRange;

/// The largest step [`Clock::advance`] takes: a century, as `advanceSeconds` declares it.
pub const MAX_STEP_SECONDS: i64 = ClockChange::ADVANCE_SECONDS.max;

/// Why [`Clock::advance`] did not move the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("a step must be within a century")]
    TooFar,
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
}

/// `reading` in UTC, when it is a time within [`YEARS`]. The years are UTC's, whatever offset
/// the time was written in: `9000-12-31T23:59:59-23:59` is already 9001, and
/// `1970-01-01T00:00:00+23:59` still 1969.
fn check_range(reading: Option<OffsetDateTime>) -> Result<OffsetDateTime, OutOfRange> {
    reading
        .and_then(|at| at.checked_to_offset(UtcOffset::UTC))
        .filter(|at| YEARS.contains(&at.year()))
        .ok_or(OutOfRange)
}

/// The last instant of [`YEARS`]: a running clock set close to it stops there rather than
/// run into the year 9001.
const LATEST: OffsetDateTime = time::macros::datetime!(9000-12-31 23:59:59.999 UTC);

/// Real time plus `offset`, at most [`LATEST`]; an offset restored from elsewhere that
/// overflows saturates instead of panicking.
fn offset_now(offset: Duration) -> OffsetDateTime {
    // A clock never moved reads the real time as it is: adding a zero offset to a
    // calendar date costs more than reading the time (three reads a create).
    if offset.is_zero() {
        return real_now();
    }
    reading_at(real_now(), offset)
}

/// The reading at the real time `real`, [`offset_now`]'s.
fn reading_at(real: OffsetDateTime, offset: Duration) -> OffsetDateTime {
    real.checked_add(offset).map_or(
        if offset.is_negative() {
            OffsetDateTime::UNIX_EPOCH
        } else {
            LATEST
        },
        |at| at.min(LATEST),
    )
}

fn real_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn truncate_to_millis(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000_000)
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_new_clock_reads_real_time() {
        let clock = Clock::new();
        let drift = clock.now() - OffsetDateTime::now_utc();
        assert!(drift.abs() < Duration::seconds(1), "drift {drift}");
    }

    #[test]
    fn advancing_moves_the_reading_forward() {
        let clock = Clock::new();
        let before = clock.now();
        clock.advance(Duration::hours(2)).expect("in range");
        let moved = clock.now() - before;
        assert!(moved >= Duration::hours(2) && moved < Duration::hours(2) + Duration::seconds(1));
        assert_eq!(clock.reading().offset, Duration::hours(2));
    }

    #[test]
    fn a_frozen_clock_stands_still_until_advanced() {
        let clock = Clock::new();
        clock
            .set_to(datetime!(2030-01-01 00:00 UTC))
            .expect("in range");
        clock.set_frozen(true);
        let first = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), first);
        clock.advance(Duration::seconds(90)).expect("in range");
        assert_eq!(clock.now(), first + Duration::seconds(90));
        assert!(clock.reading().frozen);
    }

    /// A running clock set `before` the end of 9000 and left to run past it: pinned at its
    /// last millisecond, its offset beyond.
    fn pinned(before: Duration) -> Clock {
        let clock = Clock::new();
        clock.set_to(LATEST - before).expect("in range");
        std::thread::sleep(std::time::Duration::try_from(before * 3).expect("positive"));
        assert_eq!(clock.now(), LATEST);
        clock
    }

    /// A running clock that reached the last millisecond of 9000 stays there, and freezing
    /// it freezes what it shows, not the year 9001 its offset would reach.
    #[test]
    fn a_clock_frozen_at_the_end_of_its_years_shows_the_last_millisecond() {
        let clock = pinned(Duration::milliseconds(10));
        clock.set_frozen(true);
        assert_eq!(clock.now(), LATEST);
        assert!(clock.advance(Duration::seconds(-1)).is_ok());
        assert_eq!(clock.now(), LATEST - Duration::seconds(1));
    }

    /// A running clock that ran into the end of 9000 steps back from the reading it shows,
    /// not from the time its offset reached past it.
    #[test]
    fn a_step_back_from_the_end_of_its_years_starts_from_the_last_millisecond() {
        let clock = pinned(Duration::milliseconds(100));
        clock.advance(Duration::seconds(-10)).expect("in range");
        let stepped = clock.now() - (LATEST - Duration::seconds(10));
        assert!(
            stepped >= Duration::ZERO && stepped < Duration::milliseconds(150),
            "{stepped} after the step"
        );
        assert!(!clock.reading().frozen);
    }

    /// A frozen clock's offset is how far ahead of real time it reads now: it falls behind
    /// as real time passes, where it kept the figure of when it was frozen.
    #[test]
    fn a_frozen_clocks_offset_is_of_its_reading_now() {
        let clock = Clock::new();
        clock.restore(Duration::ZERO, Some(real_now() - Duration::seconds(10)));
        let offset = clock.reading().offset.whole_seconds();
        assert!((-11..=-10).contains(&offset), "offset {offset}");
        clock.advance(Duration::seconds(30)).expect("in range");
        let offset = clock.reading().offset.whole_seconds();
        assert!((19..=20).contains(&offset), "offset {offset}");
    }

    #[test]
    fn unfreezing_runs_on_from_the_frozen_reading() {
        let clock = Clock::new();
        clock.set_frozen(true);
        clock
            .set_to(datetime!(2031-06-01 12:00 UTC))
            .expect("in range");
        clock.set_frozen(false);
        let drift = clock.now() - datetime!(2031-06-01 12:00 UTC);
        assert!(
            drift >= Duration::ZERO && drift < Duration::seconds(1),
            "drift {drift}"
        );
        assert!(!clock.reading().frozen);
    }

    #[test]
    fn the_clock_refuses_to_leave_its_years_and_never_panics() {
        let clock = Clock::new();
        clock
            .set_to(datetime!(8999-12-31 00:00 UTC))
            .expect("in range");
        assert_eq!(
            clock.advance(Duration::days(800)),
            Err(StepError::OutOfRange(OutOfRange))
        );
        for seconds in [
            i64::MIN,
            i64::MAX,
            MAX_STEP_SECONDS + 1,
            -MAX_STEP_SECONDS - 1,
        ] {
            assert_eq!(
                clock.advance(Duration::seconds(seconds)),
                Err(StepError::TooFar),
                "{seconds}"
            );
        }
        assert_eq!(
            clock.set_to(datetime!(9999-12-31 00:00 UTC)),
            Err(OutOfRange)
        );
        assert_eq!(
            clock.set_to(datetime!(1969-12-31 00:00 UTC)),
            Err(OutOfRange)
        );
        assert_eq!(clock.now().year(), 8999);
        // The years are UTC's, whatever offset the time is written in.
        assert_eq!(
            clock.set_to(datetime!(9000-12-31 23:59:59 -23:59)),
            Err(OutOfRange)
        );
        assert_eq!(
            clock.set_to(datetime!(1970-01-01 00:00 +23:59)),
            Err(OutOfRange)
        );
        assert_eq!(clock.now().year(), 8999);
        clock.set_frozen(true);
        clock
            .set_to(datetime!(9000-12-31 23:59:59 +00:01))
            .expect("still 9000 in UTC");
        assert_eq!(clock.now(), datetime!(9000-12-31 23:58:59 UTC));
        assert_eq!(clock.now().offset(), UtcOffset::UTC);
        clock.set_frozen(false);
        // An offset restored from elsewhere that overflows saturates instead of panicking.
        clock.set_offset(Duration::MAX);
        assert_eq!(clock.now().year(), 9000);
        // A running clock set to the last second of 9000 stops at its end, not in 9001.
        clock
            .set_to(datetime!(9000-12-31 23:59:59.900 UTC))
            .expect("in range");
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert_eq!(clock.now(), datetime!(9000-12-31 23:59:59.999 UTC));
    }

    #[test]
    fn readings_have_millisecond_precision() {
        let clock = Clock::new();
        assert_eq!(clock.now().nanosecond() % 1_000_000, 0);
    }
}
