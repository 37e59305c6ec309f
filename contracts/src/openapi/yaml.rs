//! The OpenAPI document as YAML (`linkbox openapi --format yaml`), every string quoted.
//!
//! utoipa's YAML leaves a string plain where YAML 1.2 reads it back as a string, but
//! YAML 1.1 readers — PyYAML, js-yaml, and so openapi-typescript and Redocly — read a plain
//! `2026-02-11T12:00:00.000Z` or `1956-12-31` as a date, and a plain `yes` as a boolean: the
//! document they load is not the JSON one (nine fraction digits of a Leaf example lost to a
//! date's milliseconds). Written here from the JSON value, block style, every key and string
//! is a double-quoted scalar, whose escapes are JSON's own: both YAML versions read it
//! back as exactly the JSON document.

use serde_json::Value;

/// `value` as a YAML document, block style, strings double-quoted.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => sequence(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// A scalar, or an empty collection, as it is written inline.
fn inline(value: &Value) -> String {
    match value {
        Value::Object(_) => String::from("{}"),
        Value::Array(_) => String::from("[]"),
        // JSON's literals (`null`, `true`, numbers) are YAML's, and a JSON string literal is
        // a YAML double-quoted scalar with the same escapes.
        other => other.to_string(),
    }
}

/// Whether `value` is written on its key's line.
fn is_inline(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => true,
    }
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn mapping(map: &serde_json::Map<String, Value>, depth: usize, out: &mut String) {
    for (key, value) in map {
        indent(depth, out);
        entry(key, value, depth, out);
    }
}

/// `key: value` from the current column, the value's own lines indented under it.
fn entry(key: &str, value: &Value, depth: usize, out: &mut String) {
    out.push_str(&Value::String(key.to_owned()).to_string());
    out.push(':');
    if is_inline(value) {
        out.push(' ');
        out.push_str(&inline(value));
        out.push('\n');
        return;
    }
    out.push('\n');
    match value {
        Value::Object(map) => mapping(map, depth + 1, out),
        Value::Array(items) => sequence(items, depth + 1, out),
        _ => {}
    }
}

fn sequence(items: &[Value], depth: usize, out: &mut String) {
    for item in items {
        indent(depth, out);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first entry on the dash's line, the rest aligned under it.
                for (at, (key, value)) in map.iter().enumerate() {
                    if at > 0 {
                        indent(depth + 1, out);
                    }
                    entry(key, value, depth + 1, out);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(inner, depth + 1, out);
            }
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_yaml_1_1_would_read_as_dates_or_booleans_are_quoted() {
        let value = json!({
            "expiresAt": "2026-02-11T12:00:00.000000000Z",
            "dob": "1956-12-31",
            "flag": "yes",
            "count": 3,
            "nothing": null,
            "empty": {},
            "none": [],
            "list": [{"a": "1", "b": [true, "x\ny"]}, ["nested", 2], "plain"],
        });
        let text = to_yaml(&value);
        assert!(text.contains("\"dob\": \"1956-12-31\"\n"), "{text}");
        assert!(text.contains("\"flag\": \"yes\"\n"), "{text}");
        assert!(text.contains("- \"a\": \"1\"\n    \"b\":\n"), "{text}");
        let read: Value = yaml_serde::from_str(&text).expect("YAML");
        assert_eq!(read, value, "{text}");
    }

    #[test]
    fn the_whole_document_reads_back_as_the_json_one() {
        let json: Value = serde_json::from_str(&super::super::json()).expect("JSON");
        let text = to_yaml(&json);
        let read: Value = yaml_serde::from_str(&text).expect("YAML");
        assert_eq!(read, json);
        // No value is left plain: each line's value, if any, is quoted or a JSON literal.
        for line in text.lines() {
            if let Some((_, value)) = line.split_once("\": ") {
                let value = value.trim();
                assert!(
                    value.starts_with('"')
                        || value == "{}"
                        || value == "[]"
                        || value == "null"
                        || value == "true"
                        || value == "false"
                        || value.parse::<f64>().is_ok(),
                    "a plain value: {line}"
                );
            }
        }
    }
}
