//! A moment as the store keeps it: whole milliseconds since the Unix epoch, UTC, in 8 bytes.
//! An `OffsetDateTime` takes 16, and its `Option` just as many; a link holds four moments,
//! so this saves 32 bytes on every link. Nothing observable is lost: every time the APIs
//! show has millisecond precision (cut, not rounded), and snapshots and the state file
//! already keep milliseconds.

use time::OffsetDateTime;

/// A moment, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(i64);

impl Stamp {
    /// `at`, cut to the millisecond.
    pub fn of(at: OffsetDateTime) -> Stamp {
        let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
        // `OffsetDateTime` spans ±9999 years, well inside an `i64` of milliseconds.
        Stamp(i64::try_from(millis).unwrap_or(i64::MAX))
    }

    /// The moment, in UTC.
    pub fn at(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// An optional [`Stamp`] in the same 8 bytes: `i64::MIN`, a moment no `OffsetDateTime`
/// reaches, stands for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeStamp(i64);

impl MaybeStamp {
    pub const NONE: MaybeStamp = MaybeStamp(i64::MIN);

    pub fn of(at: Option<OffsetDateTime>) -> MaybeStamp {
        at.map_or(MaybeStamp::NONE, |at| MaybeStamp(Stamp::of(at).0))
    }

    pub fn get(self) -> Option<OffsetDateTime> {
        (self != MaybeStamp::NONE).then(|| Stamp(self.0).at())
    }

    pub fn is_none(self) -> bool {
        self == MaybeStamp::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_moment_keeps_its_milliseconds_and_loses_only_what_the_apis_never_show() {
        let at = datetime!(2026-02-10 12:00:00.123456789 UTC);
        assert_eq!(Stamp::of(at).at(), datetime!(2026-02-10 12:00:00.123 UTC));
        assert_eq!(
            linkbox_contracts::timefmt::millis(Stamp::of(at).at()),
            linkbox_contracts::timefmt::millis(at)
        );
        let before = datetime!(1969-12-31 23:59:59.9999 UTC);
        assert_eq!(
            Stamp::of(before).at(),
            datetime!(1969-12-31 23:59:59.999 UTC)
        );
        assert!(Stamp::of(before) < Stamp::of(at));
        let offset = datetime!(2026-02-10 13:00:00.5 +01:00);
        assert_eq!(Stamp::of(offset).at(), datetime!(2026-02-10 12:00:00.5 UTC));
    }

    #[test]
    fn none_is_not_a_moment() {
        assert_eq!(MaybeStamp::of(None).get(), None);
        assert!(MaybeStamp::NONE.is_none());
        let at = datetime!(2026-02-10 12:00:00.5 UTC);
        assert_eq!(MaybeStamp::of(Some(at)).get(), Some(at));
        assert!(!MaybeStamp::of(Some(at)).is_none());
        assert_eq!(std::mem::size_of::<MaybeStamp>(), 8);
    }
}
