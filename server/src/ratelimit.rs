//! Fixed one-minute rate-limit windows on the sandbox clock.
//!
//! The vendor documents per-minute limits without saying how the minute is counted; linkbox
//! counts calendar minutes of the sandbox clock [design], so a test can reopen a window by
//! moving the clock instead of sleeping. A frozen clock holds a window as it stands (the
//! contract suite's limit cases freeze it to count exactly); the 429 then says that its
//! `Retry-After` waits for the clock (`m2m::error::FROZEN_WINDOW`).

use time::OffsetDateTime;

/// How many requests a window admits; `None` admits everything (`--rate-limits off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u32>);

/// One counter per minute of the sandbox clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct Window {
    minute: i64,
    count: u32,
}

impl Window {
    /// A window of `minute` that has counted `count` requests.
    pub fn at(minute: i64, count: u32) -> Window {
        Window { minute, count }
    }

    /// How many requests this window has counted.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The minute of the sandbox clock (seconds since the epoch / 60) this window counts.
    pub fn minute(&self) -> i64 {
        self.minute
    }

    /// Counts a request, or says in how many whole seconds the next window opens.
    pub fn admit(&mut self, limit: Limit, now: OffsetDateTime) -> Result<(), u64> {
        let Limit(Some(max)) = limit else {
            return Ok(());
        };
        let seconds = now.unix_timestamp();
        let minute = seconds.div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.count = 0;
        }
        if self.count >= max {
            let elapsed_ms = seconds.rem_euclid(60) * 1000 + i64::from(now.millisecond());
            let wait_ms = 60_000 - elapsed_ms;
            return Err((wait_ms as u64).div_ceil(1000).max(1));
        }
        self.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn admits_up_to_the_limit_then_says_when_to_retry() {
        let mut window = Window::default();
        let now = datetime!(2026-02-10 12:00:15.250 UTC);
        for _ in 0..3 {
            assert_eq!(window.admit(Limit(Some(3)), now), Ok(()));
        }
        assert_eq!(window.admit(Limit(Some(3)), now), Err(45));
    }

    #[test]
    fn the_next_minute_reopens_the_window() {
        let mut window = Window::default();
        let now = datetime!(2026-02-10 12:00:59 UTC);
        assert_eq!(window.admit(Limit(Some(1)), now), Ok(()));
        assert_eq!(window.admit(Limit(Some(1)), now), Err(1));
        assert_eq!(
            window.admit(Limit(Some(1)), now + Duration::seconds(1)),
            Ok(())
        );
    }

    #[test]
    fn no_limit_admits_everything() {
        let mut window = Window::default();
        let now = datetime!(2026-02-10 12:00 UTC);
        for _ in 0..10_000 {
            assert_eq!(window.admit(Limit(None), now), Ok(()));
        }
    }
}
