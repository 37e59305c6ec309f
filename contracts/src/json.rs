//! JSON text of a body: written by `sonic-rs` into a buffer that starts at the size most
//! bodies fit, byte for byte what `serde_json` writes.
//!
//! `serde_json` escapes a string by looking each byte up in a table; a create's 201 and its
//! `link.created` body are mostly strings (ids, URLs, timestamps), and that loop was 11% of
//! the instructions of a create. `sonic-rs` serializes the same `Serialize` types and checks
//! strings sixteen bytes at a time: 2.7k fewer instructions for those two bodies, 6% of a
//! create (callgrind, `docs/benchmarks.md`). Its output is `serde_json`'s, which debug
//! builds check on every body (so every test of the suite checks it too), and the tests
//! below on the strings and numbers where two writers could differ.
//!
//! `serde_json::to_vec` starts from an empty buffer and grows it by doubling: a link's
//! 201 (about 310 bytes) or a webhook body (about 350) went through seven reallocations and
//! copies on their way. `sonic-rs` asks, before each string, for room for that string with
//! every byte escaped (six times its length): a link's URL of 70 characters asks for 455
//! bytes past what is written. From 512 bytes, both of a create's bodies still grew once,
//! on that URL (callgrind counted two growths per create); from [`ROOM`] bytes, neither
//! does, and only bodies with long strings grow.
//!
//! Not for types holding a `serde_json::value::RawValue`: `sonic-rs` does not know its
//! marker and would write it as an object (the debug check says so at once). No wire type
//! holds one.

use serde::Serialize;

/// Bytes a body's buffer starts with.
pub const ROOM: usize = 1024;

/// `value` as compact JSON text, as `serde_json::to_vec` writes it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> sonic_rs::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(ROOM);
    sonic_rs::to_writer(&mut bytes, value)?;
    #[cfg(debug_assertions)]
    if let Ok(expected) = serde_json::to_vec(value) {
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected),
            "sonic-rs and serde_json wrote different JSON"
        );
    }
    Ok(bytes)
}

/// `value` as compact JSON text, as [`to_vec`] writes it.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> sonic_rs::Result<String> {
    // sonic-rs writes UTF-8; the check is one pass, a word at a time over ASCII.
    String::from_utf8(to_vec(value)?).map_err(serde::ser::Error::custom)
}

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Whole numbers in `value` written as integers, as a JavaScript server writes back what
/// it parsed: `JSON.parse` reads `1e2`, `100.0` and `-0` as the numbers 100 and 0, and
/// `JSON.stringify` writes them `100` and `0`, where a float kept as one is written `100.0`
/// and `-0.0`. Fractions, and numbers past 2^53 (which a JavaScript number does not hold
/// exactly), stay as they are. For the M2M API's stored JSON (its vendor runs on Node);
/// Leaf's runs on Java, which writes a parsed `1e2` back as `100.0` too.
pub fn javascript_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            if let Some(whole) = number.as_f64().filter(|_| number.is_f64()).and_then(whole) {
                *number = serde_json::Number::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(javascript_numbers),
        Value::Object(members) => members.values_mut().for_each(javascript_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// Serializes an `f64` field as [`javascript_numbers`] writes a number: a whole one
/// within 2^53 as an integer (`100`, not `100.0`).
pub fn javascript_number<S: serde::Serializer>(
    value: &f64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match whole(*value) {
        Some(whole) => serializer.serialize_i64(whole),
        None => serializer.serialize_f64(*value),
    }
}

/// `value` as the integer it is, when it is a whole number within 2^53: exact, as such a
/// float converts without rounding.
fn whole(value: f64) -> Option<i64> {
    (value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER).then_some(value as i64)
}

/// How many JSON values a vendor API request's body may hold, counted as
/// [`holds_more_values_than`] counts them. A body is read as a tree of values, and a value
/// costs some hundreds of bytes there (`{"":0},`, seven bytes sent, is a map of its own),
/// so a megabyte of small values took some 120 MB to read; 10,000 take a few MB at most,
/// and no request the vendors document comes near: a create's `metadata`, a Leaf user, a
/// login hold tens. A long string is one value, however long. [design]
pub const MAX_JSON_VALUES: usize = 10_000;

/// Whether `body`, read as JSON text, holds more than `limit` values, counted from above as
/// the bytes outside strings that open or separate them (`{`, `[`, `,`, `:`), without
/// parsing it.
pub fn holds_more_values_than(body: &[u8], limit: usize) -> bool {
    // Each separator is a byte: a body of `limit` bytes or fewer holds no more than `limit`
    // (every create the vendors document, settled without reading it: about 1,000
    // instructions of a small create's 48,000, callgrind).
    if body.len() <= limit {
        return false;
    }
    // As the server's `wire::nests_deeper_than`: a count the compiler vectorizes settles nearly every body.
    let separators = |byte: &&u8| matches!(byte, b'{' | b'[' | b',' | b':');
    if body.iter().filter(separators).count() <= limit {
        return false;
    }
    outside_strings(body)
        .filter(|byte| separators(&byte))
        .nth(limit)
        .is_some()
}

/// The bytes of `body`, read as JSON text, outside its strings (each string's quotes and
/// text left out; a `\` escapes the byte after it), without parsing it.
pub fn outside_strings(body: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    body.iter().copied().filter(move |&byte| {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            return false;
        }
        in_string = byte == b'"';
        !in_string
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde_json(value: &impl Serialize) {
        let written = to_vec(value).expect("serializes");
        let expected = serde_json::to_vec(value).expect("serializes");
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected)
        );
        let text = to_string(value).expect("serializes");
        assert_eq!(text.as_bytes(), expected);
    }

    #[test]
    fn whole_numbers_are_written_as_javascript_writes_them() {
        let mut value: serde_json::Value = serde_json::from_str(
            r#"{"a": 1e2, "b": -0, "c": -0.0, "d": 5.0, "e": 1.5, "f": [2E1, 7],
                "g": 9007199254740994.0, "h": 1e300, "i": 12345678901234567890}"#,
        )
        .expect("json");
        javascript_numbers(&mut value);
        assert_eq!(
            serde_json::to_string(&value).expect("text"),
            r#"{"a":100,"b":0,"c":0,"d":5,"e":1.5,"f":[20,7],"g":9007199254740994.0,"h":1e+300,"i":12345678901234567890}"#
        );
        #[derive(Serialize)]
        struct Amount {
            #[serde(serialize_with = "javascript_number")]
            send: f64,
            #[serde(serialize_with = "javascript_number")]
            fee: f64,
        }
        let written = to_string(&Amount {
            send: 100.0,
            fee: 2.5,
        })
        .expect("text");
        assert_eq!(written, r#"{"send":100,"fee":2.5}"#);
    }

    #[test]
    fn writes_what_serde_json_writes_at_any_size() {
        for length in [0, 10, 15, 16, 17, 31, 32, 33, ROOM, 3 * ROOM] {
            same_as_serde_json(&json!({"text": "x".repeat(length), "n": [1, 2.5, null]}));
        }
    }

    #[test]
    fn escapes_every_byte_as_serde_json_does() {
        // Every ASCII character, alone and at every offset of a 16- and 32-byte block.
        for byte in 0u8..=127 {
            let c = char::from(byte);
            same_as_serde_json(&c.to_string());
            for at in [0, 7, 15, 16, 31] {
                let mut text = "a".repeat(40);
                text.insert(at, c);
                same_as_serde_json(&json!({ text.clone(): text }));
            }
        }
        for text in [
            "María José Hernández",
            "emoji 🎉 and \u{2028}\u{2029} separators",
            "\u{7f}\u{80}\u{ff}\u{fffd}",
            "tab\tnew\nline\r\u{0}\u{1f}\"quoted\" back\\slash /slash",
        ] {
            same_as_serde_json(&text);
            same_as_serde_json(&json!({ text: [text, {text: text}] }));
        }
    }

    #[test]
    fn writes_numbers_as_serde_json_does() {
        let numbers = json!([
            0,
            -0.0,
            1,
            -1,
            u64::MAX,
            i64::MIN,
            0.1,
            1.5e300,
            -2.5e-300,
            1e21,
            1e-7,
            123456789.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324
        ]);
        same_as_serde_json(&numbers);
        // Not finite: `null`, as serde_json writes it.
        same_as_serde_json(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        same_as_serde_json(&[0.1f32, 16_777_217.0f32]);
        same_as_serde_json(&(u128::from(u64::MAX), -5i8, 300u16));
    }

    #[test]
    fn writes_structs_options_and_maps_as_serde_json_does() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Link<'a> {
            link_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            theme: Option<&'a str>,
            callback_url: Option<&'a str>,
            metadata: serde_json::Value,
            tags: Vec<&'a str>,
            unit: (),
            flag: bool,
        }
        same_as_serde_json(&Link {
            link_id: "link_p1_0a",
            theme: None,
            callback_url: None,
            metadata: json!({"z": 1, "a": {"nested": [true, false, null, "x"]}, "": ""}),
            tags: vec![],
            unit: (),
            flag: true,
        });
        let map: std::collections::BTreeMap<u32, &str> = [(2, "two"), (10, "ten")].into();
        same_as_serde_json(&map);
    }
}
