//! JSON kept as its compact text: a link's `metadata` and a user's `userData` are stored as
//! the few hundred bytes of their serialization instead of a `serde_json::Value` tree, whose
//! every object is a B-tree node of about 600 bytes however few keys it holds — most of
//! a realistic link's memory. They are parsed back when a response or a check needs them.
//!
//! The text is shared, not copied, when a view is taken: a page of the list takes its
//! links' user data under the partner's lock at the cost of a reference count each and
//! parses it after the lock is let go. A user's data of megabytes on each of a hundred
//! links of one page was a hundred copies of it before.

use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value as compact text, kept as a [`RawValue`] so a stored row writes it as it is
/// (no parse to prove it is JSON: it was made as JSON or read back as JSON). Cloned, it is
/// the same text shared.
#[derive(Debug, Clone)]
pub struct Compact(Arc<RawValue>);

impl Compact {
    /// `value` as compact text.
    pub(super) fn new(value: &Value) -> Compact {
        // Serializing a `Value` cannot fail: its keys are strings and its numbers finite.
        Compact(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| null())
                .into(),
        )
    }

    /// JSON text as read back from a stored row, kept as it came: the parser checked it,
    /// and [`Compact::value`] reads it back whatever its spacing.
    pub(super) fn from_raw(raw: Box<RawValue>) -> Compact {
        Compact(raw.into())
    }

    /// The value back. Text written by [`Compact::new`] always parses; `null` otherwise.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// The text, for a row to write as it is.
    pub(super) fn raw(&self) -> &RawValue {
        &self.0
    }

    /// The length of the text in bytes: what parsing it and writing it back out costs.
    pub fn text_len(&self) -> usize {
        self.0.get().len()
    }
}

/// JSON `null`, what a value that did not serialize is kept as.
fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_comes_back_as_it_went_in() {
        let value = json!({"name": {"firstName": "María", "lastName": "a \"quoted\" one"},
                           "n": 12.5, "big": u64::MAX, "list": [1, null, true]});
        let compact = Compact::new(&value);
        assert_eq!(compact.value(), value);
        assert!(compact.0.get().len() < 120, "{}", compact.0);
    }

    #[test]
    fn raw_text_comes_back_as_the_value_it_spells() {
        let raw: Box<serde_json::value::RawValue> =
            serde_json::from_str(r#"{ "b": [1, 2], "a": "x" }"#).unwrap();
        assert_eq!(
            Compact::from_raw(raw).value(),
            json!({"a": "x", "b": [1, 2]})
        );
    }
}
