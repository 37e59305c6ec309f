//! Random identifiers in the vendors' formats, and their compact stored forms.
//!
//! M2M ids are `<kind>_<partnerSlug>_<suffix>`: the slug is the tenant's, so only the random
//! suffix is stored (as an integer for the 12-hex ids), which keeps a million links small.
//!
//! Every id is unique within its scope, however many exist:
//! - 12-hex ids (links, data requests, webhook deliveries, faults) are drawn at random and
//!   drawn again while the scope's index already holds the value;
//! - six-alphanumeric ids (`userId`, `operationId`), whose space (62^6) is small enough for
//!   random draws to collide after a few hundred thousand, are minted from a per-partner
//!   counter sent through a keyed permutation of that space ([`Minter`]): distinct counts
//!   give distinct ids by construction, and the ids still look random. A restored partner
//!   resumes its counters past every id it holds, so neither a restart nor an imported
//!   snapshot can bring a repeat.
//! - Leaf ids are random UUIDs (122 random bits): a repeat is not a practical possibility.

use rand::Rng;
use rand::distr::Alphanumeric;

/// A random (version 4) UUID from the thread's generator, a CSPRNG seeded from the system:
/// `Uuid::new_v4` asks the kernel for each one (`getrandom`), a system call that was 2% of a
/// create's CPU.
pub fn uuid_v4() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::rng().random()).into_uuid()
}

/// A random 48-bit value, shown as 12 lowercase hex digits.
pub fn hex48() -> u64 {
    rand::rng().random::<u64>() & 0xffff_ffff_ffff
}

/// Shows a 48-bit value as 12 lowercase hex digits, written straight into whatever formats
/// it (an id is built by one `format!`, not from an intermediate `String`).
pub fn fmt_hex48(value: u64) -> Hex48 {
    Hex48(value)
}

/// A 48-bit value shown as 12 lowercase hex digits ([`fmt_hex48`]).
#[derive(Debug, Clone, Copy)]
pub struct Hex48(u64);

impl std::fmt::Display for Hex48 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.digits().as_str())
    }
}

impl Hex48 {
    /// The twelve digits, by `hex` from the value's low six bytes (`{:012x}` went through
    /// the formatter's padding, a few hundred instructions for each id of a create).
    fn digits(self) -> Digits {
        let mut digits = [b'0'; 12];
        // Six bytes in, twelve digits out: the sizes match, so this cannot fail.
        let _ = hex::encode_to_slice(&self.0.to_be_bytes()[2..], &mut digits);
        Digits(digits)
    }
}

/// Twelve lowercase hex digits.
struct Digits([u8; 12]);

impl Digits {
    fn as_str(&self) -> &str {
        // `hex` writes ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Appends `value`'s 12 lowercase hex digits to `text`, as [`fmt_hex48`] shows them.
pub fn push_hex48(text: &mut String, value: u64) {
    text.push_str(Hex48(value).digits().as_str());
}

/// A version 4 UUID in its hyphenated lowercase form, written by `uuid` without going
/// through `Display`.
pub fn uuid_text(uuid: &uuid::Uuid) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    (*uuid.hyphenated().encode_lower(&mut buffer)).to_owned()
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

/// The alphabet of six-character ids, in digit order.
const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// How many six-character ids there are: 62^6.
pub const ALNUM6_SPACE: u64 = 62u64.pow(6);

/// A keyed permutation of `0..62^6`, shown as six alphanumerics: the `n`-th id a counter
/// mints. Two affine steps modulo 62^6 around a reversal of the base-62 digits; every step
/// is a bijection, so the whole is one, and [`Minter::index`] undoes it.
#[derive(Debug, Clone, Copy)]
pub struct Minter {
    steps: [(u64, u64); 2],
    /// Each step's multiplier's inverse, for [`Minter::index`] (a state file's million ids
    /// are each undone once at load).
    inverses: [u64; 2],
}

impl Minter {
    /// The permutation for `scope` (e.g. `"user:acme"`), the same on every run.
    pub fn new(scope: &str) -> Minter {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(scope.as_bytes());
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_le_bytes(bytes) % ALNUM6_SPACE
        };
        // A multiplier must be a unit modulo 2^6 * 31^6: odd and not a multiple of 31.
        let unit = |value: u64| {
            let mut value = value | 1;
            while value.is_multiple_of(31) {
                value = (value + 2) % ALNUM6_SPACE;
            }
            value
        };
        let steps = [(unit(word(0)), word(8)), (unit(word(16)), word(24))];
        Minter {
            steps,
            inverses: steps.map(|(a, _)| inverse_mod(a, ALNUM6_SPACE)),
        }
    }

    /// The id of count `n` (taken modulo 62^6).
    pub fn mint(&self, n: u64) -> [u8; 6] {
        let mut value = n % ALNUM6_SPACE;
        value = affine(self.steps[0], value);
        value = reverse_digits(value);
        value = affine(self.steps[1], value);
        let mut out = [0u8; 6];
        for slot in out.iter_mut().rev() {
            *slot = ALNUM[(value % 62) as usize];
            value /= 62;
        }
        out
    }

    /// The count that mints `id`, or `None` for characters outside the alphabet.
    pub fn index(&self, id: &[u8; 6]) -> Option<u64> {
        let mut value = 0u64;
        for byte in id {
            let digit = ALNUM.iter().position(|c| c == byte)? as u64;
            value = value * 62 + digit;
        }
        value = unaffine(self.steps[1], self.inverses[1], value);
        value = reverse_digits(value);
        Some(unaffine(self.steps[0], self.inverses[0], value))
    }
}

/// The count behind a [`Minter`]'s next id. Counting up from where every id held so far
/// leaves off ([`Minted::past`]) gives an id no one holds, until the count passes the end of
/// the space: only a restored id near that end takes it there, and from then on counts
/// repeat ids issued before, so each is checked against the ids held.
#[derive(Debug, Default)]
pub struct Minted {
    count: u64,
    /// The ids held, gathered once the count has passed the end of the space.
    held: Option<std::collections::HashSet<[u8; 6]>>,
}

impl Minted {
    /// Counts on past `id`, one held (a restored id, or one read from the state file).
    pub fn past(&mut self, minter: &Minter, id: &[u8; 6]) {
        if let Some(index) = minter.index(id) {
            self.count = self.count.max(index + 1);
        }
        if let Some(held) = self.held.as_mut() {
            held.insert(*id);
        }
    }

    /// A fresh id; `held` lists every id in use, and is read at most once.
    pub fn next<I>(&mut self, minter: &Minter, held: impl FnOnce() -> I) -> [u8; 6]
    where
        I: Iterator<Item = [u8; 6]>,
    {
        let mut held = Some(held);
        loop {
            let id = minter.mint(self.count);
            self.count += 1;
            if self.count <= ALNUM6_SPACE {
                return id;
            }
            let taken = self.held.get_or_insert_with(|| {
                held.take().map(|held| held().collect()).unwrap_or_default()
            });
            if taken.insert(id) {
                return id;
            }
        }
    }
}

fn affine((a, b): (u64, u64), x: u64) -> u64 {
    ((u128::from(a) * u128::from(x) + u128::from(b)) % u128::from(ALNUM6_SPACE)) as u64
}

/// Undoes [`affine`]`((a, b), _)`, given `a`'s inverse.
fn unaffine((_, b): (u64, u64), inverse: u64, y: u64) -> u64 {
    let shifted = (y + ALNUM6_SPACE - b) % ALNUM6_SPACE;
    ((u128::from(inverse) * u128::from(shifted)) % u128::from(ALNUM6_SPACE)) as u64
}

/// `a`'s inverse modulo `m` (extended Euclid); `a` must be a unit.
fn inverse_mod(a: u64, m: u64) -> u64 {
    let (mut r0, mut r1) = (i128::from(m), i128::from(a));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i128::from(m)) as u64
}

fn reverse_digits(mut value: u64) -> u64 {
    let mut out = 0;
    for _ in 0..6 {
        out = out * 62 + value % 62;
        value /= 62;
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
    fn minting_past_the_last_id_skips_the_ids_held() {
        let minter = Minter::new("user:acme");
        let mut minted = Minted::default();
        let first = minted.next(&minter, || -> std::iter::Empty<[u8; 6]> {
            unreachable!("the ids held are read only past the end of the space")
        });
        assert_eq!(first, minter.mint(0));
        let second = minter.mint(1);
        minted.past(&minter, &second);
        let last = minter.mint(ALNUM6_SPACE - 1);
        minted.past(&minter, &last);
        // 0 and 1 are held, and `last` was the end of the space: the count wraps to 2.
        let held = [first, second, last];
        assert_eq!(minted.next(&minter, || held.into_iter()), minter.mint(2));
        assert_eq!(
            minted.next(&minter, || -> std::iter::Empty<[u8; 6]> {
                unreachable!("gathered once")
            }),
            minter.mint(3)
        );
        // An id restored later is held too.
        minted.past(&minter, &minter.mint(4));
        assert_eq!(minted.next(&minter, std::iter::empty), minter.mint(5));
    }

    #[test]
    fn uuids_are_version_4_rfc_variant_and_differ() {
        let (a, b) = (uuid_v4(), uuid_v4());
        for uuid in [a, b] {
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random), "{uuid}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{uuid}");
        }
        assert_ne!(a, b);
    }

    #[test]
    fn hex48_round_trips_through_twelve_hex_digits() {
        for _ in 0..100 {
            let value = hex48();
            let text = fmt_hex48(value).to_string();
            assert_eq!(text.len(), 12);
            assert_eq!(parse_hex48(&text), Some(value));
        }
    }

    #[test]
    fn hex_digits_and_uuid_text_are_what_format_writes() {
        for value in [0, 1, 0xabc, 0xffff_ffff_ffff, hex48(), hex48()] {
            let mut text = String::from("x_");
            push_hex48(&mut text, value);
            assert_eq!(text, format!("x_{value:012x}"));
            assert_eq!(fmt_hex48(value).to_string(), format!("{value:012x}"));
        }
        let uuid = uuid_v4();
        assert_eq!(uuid_text(&uuid), uuid.to_string());
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
    fn minted_ids_never_repeat_far_beyond_the_birthday_bound() {
        // Random six-alphanumeric ids collide after ~300k; a million counts are well past
        // that, and the permutation's inverse proves every one distinct.
        let minter = Minter::new("user:acme");
        let mut seen = std::collections::HashSet::new();
        for n in 0..1_000_000u64 {
            let id = minter.mint(n);
            assert!(seen.insert(id), "count {n} repeated an id");
            if n % 9973 == 0 {
                assert_eq!(minter.index(&id), Some(n));
                assert!(fmt_alnum6(&id).bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }
        for n in [ALNUM6_SPACE - 1, ALNUM6_SPACE / 2, 123_456_789] {
            assert_eq!(minter.index(&minter.mint(n)), Some(n));
        }
        assert_ne!(minter.mint(0), Minter::new("user:other").mint(0));
        assert_eq!(minter.index(b"ab-cd!"), None);
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
