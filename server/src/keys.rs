//! Credentials in text: finding them and redacting them. M2M keys as sent (`m2m_test_…`,
//! in any case), or percent-encoded in a part of a path, a query or a form
//! (`m2m%5Ftest%5F…`); and the credentials linkbox itself issues, which it can tell by
//! their form: webhook secrets (`whsec_…`) and Leaf's tokens (JWTs, `eyJ….eyJ….…`). Every
//! place that shows what a client sent — the journal, the request log, the drift report —
//! shows it through these, so none of them quotes a credential, wherever it was put.

use std::borrow::Cow;

use linkbox_contracts::m2m::WEBHOOK_SECRET_PREFIX;
use linkbox_contracts::sandbox::REDACTED;

/// The prefixes of M2M keys, which are redacted wherever they appear in text.
pub const KEY_PREFIXES: [&str; 2] = ["m2m_test_", "m2m_live_"];

/// Whether `text` holds a credential: an M2M key's prefix in any case
/// (an upper-cased key, as an endpoint shows a method, is still most of one), a webhook
/// secret's, or a JWT.
pub fn holds_key(text: &[u8]) -> bool {
    // Every request's headers and body are scanned: only at an `m`, a `w` or an `e` (the
    // one bit `| 0x20` folds) is more compared.
    Credentials::new(text).next().is_some()
}

/// Where each credential in a text starts and ends, in one pass.
struct Credentials<'a> {
    text: &'a [u8],
    at: usize,
    /// Past a JWT's first part that led to none: no JWT starts within it ([`jwt_end`]).
    no_jwt_before: usize,
}

impl<'a> Credentials<'a> {
    fn new(text: &'a [u8]) -> Credentials<'a> {
        Credentials {
            text,
            at: 0,
            no_jwt_before: 0,
        }
    }
}

impl Iterator for Credentials<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while let Some(found) = self.text[self.at..]
            .iter()
            .position(|byte| matches!(byte | 0x20, b'm' | b'w' | b'e'))
            .map(|i| self.at + i)
        {
            let rest = &self.text[found..];
            let prefixed = KEY_PREFIXES
                .iter()
                .chain([&WEBHOOK_SECRET_PREFIX])
                .find(|prefix| {
                    rest.get(..prefix.len())
                        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
                });
            let end = match prefixed {
                Some(prefix) => Some(key_end(self.text, found + prefix.len())),
                None if found >= self.no_jwt_before => match jwt_end(self.text, found) {
                    Ok(end) => Some(end),
                    Err(first_part_end) => {
                        self.no_jwt_before = first_part_end;
                        None
                    }
                },
                None => None,
            };
            match end {
                Some(end) => {
                    self.at = end;
                    return Some((found, end));
                }
                None => self.at = found + 1,
            }
        }
        self.at = self.text.len();
        None
    }
}

/// Where the letters and digits from `at` end.
fn alphanumeric_end(text: &[u8], at: usize) -> usize {
    text[at..]
        .iter()
        .position(|byte| !byte.is_ascii_alphanumeric())
        .map_or(text.len(), |i| at + i)
}

/// Where a key or a webhook secret whose text starts at `at` ends: its letters and digits,
/// and, where they run into a JWT's header glued to it (`whsec_…eyJ….eyJ….…`), the JWT's
/// further dotted parts too, which would otherwise be left in clear after it.
fn key_end(text: &[u8], at: usize) -> usize {
    let end = alphanumeric_end(text, at);
    if text[at..end].windows(3).any(|window| window == b"eyJ") {
        dotted_parts_end(text, end)
    } else {
        end
    }
}

/// Past the further dotted base64url parts from `end` (`.part.part`), or `end`.
fn dotted_parts_end(text: &[u8], mut end: usize) -> usize {
    while text.get(end) == Some(&b'.')
        && text
            .get(end + 1)
            .is_some_and(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
    {
        end = base64url_end(text, end + 1);
    }
    end
}

/// Where the base64url characters from `at` end.
fn base64url_end(text: &[u8], at: usize) -> usize {
    text[at..]
        .iter()
        .position(|byte| !(byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')))
        .map_or(text.len(), |i| at + i)
}

/// Where the JWT starting at `at` ends (`eyJ…` `.` `eyJ…` `.` `…`: a JSON header and a JSON
/// payload, base64url, and a signature), or where its first part ended when there is none:
/// a JWT starting later within that part would end the same way, so none is looked for
/// there, and text of `eyJeyJ…` costs its length, not its length squared.
fn jwt_end(text: &[u8], at: usize) -> Result<usize, usize> {
    const START: &[u8] = b"eyJ";
    if !text[at..].starts_with(START) {
        return Err(at + 1);
    }
    let header_end = base64url_end(text, at);
    let payload = header_end + 1;
    if text.get(header_end) != Some(&b'.') || !text[payload..].starts_with(START) {
        return Err(header_end);
    }
    let payload_end = base64url_end(text, payload);
    if text.get(payload_end) != Some(&b'.') {
        return Err(header_end);
    }
    // Further dotted parts belong to it too: `eyJx.` glued before a JWT made the JWT's
    // payload read as a signature, and its own signature was left out.
    Ok(dotted_parts_end(text, base64url_end(text, payload_end + 1)))
}

/// `text` with every credential redacted ([`holds_key`]: M2M keys, webhook secrets, JWTs),
/// in one pass: text of nothing but key prefixes, megabytes of it, costs its length, not
/// its length squared.
pub fn redact_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    // Each credential starts and ends at an ASCII byte, a character's boundary.
    for (start, end) in Credentials::new(text.as_bytes()) {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// `part` of a form, a query or a path, or `[redacted]` when it spells an M2M key only
/// once percent-decoded (`m2m%5Ftest%5F…`, as a form encoder may send a key). One that
/// spells it as sent is left to [`redact_keys`], which keeps the text around the key.
pub fn encoded_key_redacted(part: &str) -> Cow<'_, str> {
    if part.contains(['%', '+']) && holds_key(decoded_name(part).as_bytes()) {
        Cow::Borrowed(REDACTED)
    } else {
        Cow::Borrowed(part)
    }
}

/// The characters around the parts of a path, a query, a message or text of JSON that
/// [`without_keys`] decodes one by one (a quote: a key in a string of JSON text is redacted
/// within the string's quotes).
const PART_ENDS: [char; 9] = ['/', ' ', '?', '&', '=', ':', ',', ';', '"'];

/// `text` (a path, a method, a tenant's label, a message quoting them) with every M2M key
/// redacted, as sent (`/partner/links/m2m_test_…`) or percent-encoded in a part of it
/// (`m2m%5Ftest%5F…`). For every place that shows such text: the journal, the request log,
/// the drift report.
pub fn without_keys(text: &str) -> Cow<'_, str> {
    let decoded = if text.contains('%') {
        Cow::Owned(
            text.split_inclusive(PART_ENDS)
                .map(|token| {
                    let part = token.trim_end_matches(PART_ENDS);
                    format!("{}{}", encoded_key_redacted(part), &token[part.len()..])
                })
                .collect::<String>(),
        )
    } else {
        Cow::Borrowed(text)
    };
    if holds_key(decoded.as_bytes()) {
        Cow::Owned(redact_keys(&decoded))
    } else {
        decoded
    }
}

/// `name` (of a form's or a query's pair) percent-decoded, `+` read as a space.
pub fn decoded_name(name: &str) -> String {
    percent_encoding::percent_decode_str(&name.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials linkbox issues are found by their form wherever they are put: a
    /// webhook secret, a Leaf token (a JWT); text merely like one is kept.
    #[test]
    fn webhook_secrets_and_jwts_are_redacted_wherever_they_are() {
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFmdSJ9.c2lnbmF0dXJl-_x";
        let text = format!("Bearer {jwt} and whsec_lBU7abc9, then m2m_test_K; done");
        assert!(holds_key(text.as_bytes()));
        assert_eq!(
            redact_keys(&text),
            "Bearer [redacted] and [redacted], then [redacted]; done"
        );
        assert_eq!(
            redact_keys(&format!("{{\"h\":\"{jwt}\"}}")),
            r#"{"h":"[redacted]"}"#
        );
        for kept in [
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGc.notjson.sig",
            "the eye. eyJ. eyJ.eyJ",
            "everyone sees whsec as a word",
        ] {
            assert_eq!(redact_keys(kept), kept, "{kept}");
        }
        // A JWT after text like a JWT's beginning is redacted to its signature.
        assert_eq!(
            redact_keys(&format!("note: eyJx.{jwt}.")),
            "note: [redacted]."
        );
        // A key inside what began as a JWT's first part is still a key.
        assert_eq!(redact_keys("eyJabc_m2m_test_Q1"), "eyJabc_[redacted]");
        // A JWT glued to a secret or a key is redacted with it, signature and all; a key
        // followed by a dotted word is not read on.
        for glued in [format!("whsec_Ab3{jwt}."), format!("M2M_TEST_0f{jwt}.")] {
            assert_eq!(redact_keys(&format!("note: {glued}")), "note: [redacted].");
        }
        assert_eq!(redact_keys("m2m_test_0f.json"), "[redacted].json");
    }

    /// Text of JWT beginnings that lead to none costs its length: read again from each
    /// `eyJ`, these 1.2 MB would take minutes.
    #[test]
    fn text_of_jwt_beginnings_costs_its_length() {
        let text = "eyJ".repeat(200_000) + "." + &"eyJ".repeat(200_000);
        assert!(!holds_key(text.as_bytes()));
        assert_eq!(redact_keys(&text), text);
    }

    #[test]
    fn a_key_is_found_in_any_case_and_nothing_else_is() {
        for text in [
            "m2m_test_abc",
            "x M2M_LIVE_Q",
            "mmm2m_Test_",
            "/partner/links/m2M_tEsT_1",
        ] {
            assert!(holds_key(text.as_bytes()), "{text}");
        }
        for text in ["", "m", "m2m_test", "m2m-test_abc", "mam2m_tes", "Mm2m_liv"] {
            assert!(!holds_key(text.as_bytes()), "{text}");
        }
    }

    /// What shows a method, a path or a label (the journal, the log, the drift report)
    /// shows no key: as sent, upper-cased, or percent-encoded in a part of it.
    #[test]
    fn text_quoting_a_request_shows_no_key() {
        for (text, shown) in [
            ("M2M_TEST_ABC9 /partner/links", "[redacted] /partner/links"),
            (
                "the vendor answered 501 to m2m_test_abc9 /partner/links/m2m%5Flive%5Fx1/revoke",
                "the vendor answered 501 to [redacted] /partner/links/[redacted]/revoke",
            ),
            ("leaf:m2m_live_q", "leaf:[redacted]"),
            (
                "GET /partner/links/lnk_1?x=100%25",
                "GET /partner/links/lnk_1?x=100%25",
            ),
        ] {
            assert_eq!(without_keys(text), shown, "{text}");
        }
        assert!(matches!(
            without_keys("POST /partner/links"),
            Cow::Borrowed(_)
        ));
    }
}
