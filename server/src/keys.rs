//! M2M keys in text: finding them and redacting them, as sent (`m2m_test_…`, in any case),
//! or percent-encoded in a part of a path, a query or a form (`m2m%5Ftest%5F…`). Every
//! place that shows what a client sent — the journal, the request log, the drift report —
//! shows it through these, so none of them quotes a credential.

use std::borrow::Cow;

use linkbox_contracts::sandbox::REDACTED;

/// The prefixes of M2M keys, which are redacted wherever they appear in text.
pub const KEY_PREFIXES: [&str; 2] = ["m2m_test_", "m2m_live_"];

/// Whether `text` holds an M2M key's prefix, in any case (an upper-cased key, as an
/// endpoint shows a method, is still most of one).
pub fn holds_key(text: &[u8]) -> bool {
    // Every request's headers and body are scanned: only at an `m` or `M` (the one bit
    // `| 0x20` folds) are the prefixes compared.
    let mut at = 0;
    while let Some(found) = text[at..]
        .iter()
        .position(|byte| byte | 0x20 == b'm')
        .map(|i| at + i)
    {
        let rest = &text[found..];
        if KEY_PREFIXES.iter().any(|prefix| {
            rest.get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
        }) {
            return true;
        }
        at = found + 1;
    }
    false
}

/// `text` with every M2M key (`m2m_test_` or `m2m_live_`, in any case, and the letters
/// and digits after it) redacted, in one pass: text of nothing but key prefixes, megabytes
/// of it, costs its length, not its length squared.
pub fn redact_keys(text: &str) -> String {
    // ASCII case folding keeps every byte where it is.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = lower[at..].find("m2m_").map(|i| at + i) {
        let Some(prefix) = KEY_PREFIXES
            .iter()
            .find(|prefix| lower[found..].starts_with(*prefix))
        else {
            at = found + 1;
            continue;
        };
        let after = found + prefix.len();
        let key_end = text[after..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(text.len(), |i| after + i);
        out.push_str(&text[copied..found]);
        out.push_str(REDACTED);
        (copied, at) = (key_end, key_end);
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
