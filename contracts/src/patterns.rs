//! The patterns request schemas hold text to, as the server checks it: written once here,
//! for the `schemars` schemas (`schemas/`) and for the OpenAPI document, whose `utoipa`
//! attributes take the same text as literals (a test holds each literal to its constant).
//!
//! They are written in the regular expressions every JSON Schema validator shares (ECMA
//! 262's, Python's, Rust's `regex`): classes of explicit characters, `\uXXXX` escapes, no
//! Unicode properties.

/// A string that is not blank: it holds a character other than white space, as the server
/// counts it — Unicode's `White_Space`, which Rust's `trim` removes: ASCII's six, U+0085,
/// U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F and U+3000. (ASCII's alone
/// took a name of no-break spaces the server refuses.)
pub const NOT_BLANK: &str = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

/// An absolute `http` or `https` URL that writes its host, with no white space or control
/// character anywhere in it, its ends included, as the server takes a Leaf link's
/// `companyLogo` and `headerImage`. (The server also parses it; a host no parser takes, such
/// as `https://a b`, is refused by both, and one as `https://[x` by the server alone.)
pub const WEB_URL: &str = "^[Hh][Tt][Tt][Pp][Ss]?://[^/\\\\?#:@\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$";

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{NOT_BLANK, WEB_URL};

    /// Every pattern of the OpenAPI document that speaks of Unicode's white space (the
    /// `utoipa` literals) is one of these constants, as the `schemars` schemas are.
    #[test]
    fn the_documents_literals_are_the_constants() {
        fn patterns<'a>(node: &'a Value, found: &mut Vec<&'a str>) {
            match node {
                Value::Object(fields) => {
                    for (key, value) in fields {
                        match (key.as_str(), value) {
                            ("pattern", Value::String(pattern)) => found.push(pattern),
                            _ => patterns(value, found),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| patterns(item, found)),
                _ => {}
            }
        }
        let document: Value = serde_json::from_str(&crate::openapi::json()).expect("json");
        let mut found = Vec::new();
        patterns(&document, &mut found);
        let unicode: Vec<&str> = found
            .into_iter()
            .filter(|pattern| pattern.contains("\\u3000"))
            .collect();
        assert!(
            unicode
                .iter()
                .all(|pattern| [NOT_BLANK, WEB_URL].contains(pattern)),
            "{unicode:#?}"
        );
        assert!(unicode.contains(&NOT_BLANK) && unicode.contains(&WEB_URL));
    }
}
