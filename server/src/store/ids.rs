//! Random identifiers in the vendors' formats, and their compact stored forms.
//!
//! M2M ids are `<kind>_<partnerSlug>_<suffix>`: the slug is the tenant's, so only the random
//! suffix is stored (as an integer for the 12-hex ids), which keeps a million links small.

use rand::Rng;
use rand::distr::Alphanumeric;

/// A random 48-bit value, shown as 12 lowercase hex digits.
pub fn hex48() -> u64 {
    rand::rng().random::<u64>() & 0xffff_ffff_ffff
}

/// Shows a 48-bit value as 12 lowercase hex digits.
pub fn fmt_hex48(value: u64) -> String {
    format!("{value:012x}")
}

/// Reads 12 lowercase hex digits back (the inverse of [`fmt_hex48`]).
pub fn parse_hex48(text: &str) -> Option<u64> {
    if text.len() == 12 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        u64::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

/// `n` random ASCII letters and digits.
pub fn alphanumeric(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Six random letters and digits, stored inline.
pub fn alnum6() -> [u8; 6] {
    let mut out = [0u8; 6];
    for (slot, byte) in out.iter_mut().zip(rand::rng().sample_iter(&Alphanumeric)) {
        *slot = byte;
    }
    out
}

/// Shows six stored alphanumerics.
pub fn fmt_alnum6(value: &[u8; 6]) -> &str {
    // Only ever filled from `Alphanumeric`, which yields ASCII.
    std::str::from_utf8(value).unwrap_or("000000")
}

/// Splits `<kind>_<slug>_<suffix>` when kind and slug are the expected ones.
pub fn suffix_of<'a>(id: &'a str, kind: &str, slug: &str) -> Option<&'a str> {
    id.strip_prefix(kind)?
        .strip_prefix('_')?
        .strip_prefix(slug)?
        .strip_prefix('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex48_round_trips_through_twelve_hex_digits() {
        for _ in 0..100 {
            let value = hex48();
            let text = fmt_hex48(value);
            assert_eq!(text.len(), 12);
            assert_eq!(parse_hex48(&text), Some(value));
        }
    }

    #[test]
    fn parse_hex48_refuses_other_text() {
        assert_eq!(parse_hex48("ABCDEF012345"), None);
        assert_eq!(parse_hex48("abcdef01234"), None);
        assert_eq!(parse_hex48("abcdef01234g"), None);
    }

    #[test]
    fn alnum6_is_six_ascii_alphanumerics() {
        let value = alnum6();
        assert!(
            fmt_alnum6(&value)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert_eq!(alphanumeric(24).len(), 24);
    }

    #[test]
    fn suffix_of_checks_kind_and_slug() {
        assert_eq!(
            suffix_of("link_acme_a1b2c3d4e5f6", "link", "acme"),
            Some("a1b2c3d4e5f6")
        );
        assert_eq!(suffix_of("link_other_a1b2c3d4e5f6", "link", "acme"), None);
        assert_eq!(suffix_of("dr_acme_a1b2c3d4e5f6", "link", "acme"), None);
    }
}
