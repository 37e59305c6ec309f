//! The body of `POST /partner/links`, read member by member in one pass.
//!
//! Every other M2M body is parsed into a `serde_json::Value` and then checked. A create is
//! the request partners send most, and building its top-level object as a map cost a
//! string for each key, a B-tree node, and a lookup and a removal per field: about a tenth
//! of a create's instructions went to parsing its body (callgrind, `docs/benchmarks.md`).
//! Here the known fields' values are parsed straight into the slot for their field, and any
//! other member is skipped, its name kept for `X-Linkbox-Warning`. Nothing the API answers
//! changes: `null` counts as absent, a member sent twice counts once (the last one), ignored
//! names come sorted and once each, as a map's keys did, and any body that is not JSON is
//! `INVALID_JSON` whatever it holds, before a field is looked at.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A field of `POST /partner/links`.
#[derive(Clone, Copy)]
pub enum Field {
    ReferenceId,
    ExpiresInMinutes,
    UserData,
    Metadata,
    Flow,
    Theme,
    Language,
    CallbackUrl,
}

impl Field {
    /// Every field; a field's place in [`CreateBody`] is its discriminant.
    const ALL: [Field; 8] = [
        Field::ReferenceId,
        Field::ExpiresInMinutes,
        Field::UserData,
        Field::Metadata,
        Field::Flow,
        Field::Theme,
        Field::Language,
        Field::CallbackUrl,
    ];

    /// The field's name on the wire.
    fn name(self) -> &'static str {
        match self {
            Field::ReferenceId => "referenceId",
            Field::ExpiresInMinutes => "expiresInMinutes",
            Field::UserData => "userData",
            Field::Metadata => "metadata",
            Field::Flow => "flow",
            Field::Theme => "theme",
            Field::Language => "language",
            Field::CallbackUrl => "callbackUrl",
        }
    }
}

/// A create body's members: each known field's value (`None` when absent or `null`), and
/// the names of the members the API does not know.
#[derive(Default)]
pub struct CreateBody {
    fields: [Option<Value>; Field::ALL.len()],
    unknown: Vec<String>,
}

impl CreateBody {
    /// The value of `field`, taken out of the body.
    pub fn take(&mut self, field: Field) -> Option<Value> {
        self.fields[field as usize].take()
    }

    /// The value of `field`, left in the body.
    pub fn get(&self, field: Field) -> Option<&Value> {
        self.fields[field as usize].as_ref()
    }

    /// Names of the members the API does not know, sorted, each once.
    pub fn into_unknown(self) -> Vec<String> {
        self.unknown
    }
}

/// A whole JSON text, as a create reads it: an object's members, or `None` for any other
/// JSON value.
pub struct Parsed(pub Option<CreateBody>);

impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Parsed, D::Error> {
        deserializer.deserialize_any(ParsedVisitor)
    }
}

struct ParsedVisitor;

impl<'de> Visitor<'de> for ParsedVisitor {
    type Value = Parsed;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut body = CreateBody::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match Field::ALL.into_iter().find(|field| field.name() == key) {
                Some(field) => {
                    let value: Value = map.next_value()?;
                    body.fields[field as usize] = (!value.is_null()).then_some(value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    body.unknown.push(key.into_owned());
                }
            }
        }
        body.unknown.sort_unstable();
        body.unknown.dedup();
        Ok(Parsed(Some(body)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Parsed(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }

    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(Parsed(None))
    }
}

/// A member's name, borrowed from the body unless it had escapes to decode.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key.to_owned())))
    }

    fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Option<Parsed> {
        serde_json::from_str(text).ok()
    }

    fn object(text: &str) -> CreateBody {
        match parse(text) {
            Some(Parsed(Some(body))) => body,
            _ => panic!("not an object: {text}"),
        }
    }

    #[test]
    fn known_fields_land_in_their_slots_and_the_rest_are_named() {
        let mut body = object(
            r#"{"zeta": 1, "referenceId": "u-1", "metadata": {"a": [1, {"b": null}]},
                "alpha": {"deep": [1, 2]}, "language": null, "zeta": 2}"#,
        );
        assert_eq!(body.get(Field::ReferenceId), Some(&json!("u-1")));
        assert_eq!(
            body.take(Field::Metadata),
            Some(json!({"a": [1, {"b": null}]}))
        );
        assert_eq!(body.take(Field::Metadata), None, "taken once");
        assert_eq!(body.get(Field::Language), None, "null is absent");
        assert_eq!(body.get(Field::Flow), None);
        assert_eq!(body.into_unknown(), ["alpha", "zeta"]);
    }

    #[test]
    fn every_field_lands_in_its_own_slot() {
        for (n, field) in Field::ALL.into_iter().enumerate() {
            let body = object(&format!("{{\"{}\": {n}}}", field.name()));
            for other in Field::ALL {
                let expected = (other as usize == field as usize).then(|| json!(n));
                assert_eq!(body.get(other).cloned(), expected, "{}", field.name());
            }
            assert!(body.into_unknown().is_empty());
        }
    }

    #[test]
    fn a_member_sent_twice_counts_as_its_last_and_escaped_names_are_decoded() {
        let body = object(r#"{"referenceId": "first", "referenc\u0065Id": "second"}"#);
        assert_eq!(body.get(Field::ReferenceId), Some(&json!("second")));
        let body = object(r#"{"referenceId": "kept", "referenceId": null}"#);
        assert_eq!(
            body.get(Field::ReferenceId),
            None,
            "the last one, null, wins"
        );
        assert_eq!(object(r#"{"n\u00e9": 1}"#).into_unknown(), ["né"]);
    }

    #[test]
    fn anything_but_an_object_is_other_and_broken_json_is_an_error() {
        for text in [
            "[1, {\"a\": 2}]",
            "\"text\"",
            "12",
            "-1",
            "1.5",
            "true",
            "null",
        ] {
            assert!(matches!(parse(text), Some(Parsed(None))), "{text}");
        }
        for text in [
            "{",
            "{\"referenceId\": }",
            "[1, 2",
            "{\"a\": 1} x",
            "{\"a\" 1}",
            "{\"referenceId\": \"u\",}",
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }
}
