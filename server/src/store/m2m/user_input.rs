//! What the M2M API accepts of a user: its `referenceId`, and the documented shape of its
//! `userData`. The create and fulfil paths (`crate::m2m::validate`) hold a request to these
//! rules, and a snapshot restore holds each user it brings back to the same ones, so a
//! restore cannot give the API a user no request could have made. They live here, below
//! both, because the layering lets the route handlers reach the store and not each other.

use linkbox_contracts::m2m::{self, PAYMENT_METHOD_TYPES, messages};
use serde_json::{Map, Value};
use time::macros::format_description;

/// Why `reference_id` is refused as a `referenceId`, `None` when it is accepted: it must
/// not be empty or all blanks (kept as sent otherwise, spaces and all), and must be at most
/// [`m2m::REFERENCE_ID_MAX_LEN`] characters.
pub fn reference_id_refusal(reference_id: &str) -> Option<&'static str> {
    if reference_id.trim().is_empty() {
        Some(messages::REFERENCE_ID_REQUIRED)
    } else if reference_id.chars().count() > m2m::REFERENCE_ID_MAX_LEN {
        Some(messages::REFERENCE_ID_TOO_LONG)
    } else {
        None
    }
}

/// The refusal of a field that must be a string, in the vendor's words.
pub fn must_be_string(field: &str) -> String {
    format!("The {field} field must be a string")
}

/// What a documented `userData` field holds.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    /// `YYYY-MM-DD`.
    Date,
    /// A `data:` URL.
    DataUrl,
    /// One of [`PAYMENT_METHOD_TYPES`], and required.
    PaymentType,
    /// A string, and required.
    RequiredText,
    Object(&'static [(&'static str, Shape)]),
    /// An object, required when its parent's `type` is the one named: a payment method's
    /// details for its kind.
    DetailsOf(&'static str, &'static [(&'static str, Shape)]),
}

const NAME: &[(&str, Shape)] = &[
    ("firstName", Shape::Text),
    ("secondName", Shape::Text),
    ("lastName", Shape::Text),
    ("secondLastName", Shape::Text),
];
const BANK_ACCOUNT: &[(&str, Shape)] = &[
    ("country", Shape::RequiredText),
    ("accountNumber", Shape::RequiredText),
];
const CASH: &[(&str, Shape)] = &[
    ("provider", Shape::RequiredText),
    ("reference", Shape::RequiredText),
];
/// A payment method names its kind and carries that kind's details, whole: a
/// `bank_account` without its `bankAccount`, or details without their members, would be
/// stored and echoed in a shape the API's own schema refuses \[design\].
const PAYMENT_METHOD: &[(&str, Shape)] = &[
    ("type", Shape::PaymentType),
    (
        "bankAccount",
        Shape::DetailsOf("bank_account", BANK_ACCOUNT),
    ),
    ("cash", Shape::DetailsOf("cash", CASH)),
];
/// The documented shape of `userData` (spec: m2m.md, "userData").
const USER_DATA: &[(&str, Shape)] = &[
    ("name", Shape::Object(NAME)),
    ("idNumber", Shape::Text),
    ("idType", Shape::Text),
    ("dob", Shape::Date),
    ("idImage", Shape::DataUrl),
    ("paymentMethod", Shape::Object(PAYMENT_METHOD)),
];

/// Checks `userData` against its documented shape, at every depth: a documented field of
/// the wrong JSON type is refused, the message naming its dot path (the first in field
/// order); keys the shape does not know are returned, as `userData.`-prefixed dot paths, for
/// `X-Linkbox-Warning` (kept in the data as given, as the vendor keeps unknown keys).
pub fn check_user_data_fields(data: &Map<String, Value>) -> Result<Vec<String>, String> {
    let mut unknown = Vec::new();
    check_object(data, USER_DATA, "userData", &mut unknown)?;
    Ok(unknown)
}

/// A user's kept `userData` checked as every request that writes it is: an object, each
/// documented field of its shape ([`check_user_data_fields`]). Not that it carries a
/// payment method: a create requires one, but a fulfilled data request gives a user data
/// without it.
pub fn check_kept_user_data(data: &Value) -> Result<(), String> {
    match data {
        Value::Object(data) => check_user_data_fields(data).map(drop),
        _ => Err(messages::USER_DATA.to_owned()),
    }
}

/// The value of an optional field; `null` counts as absent.
fn optional<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|value| !value.is_null())
}

fn check_object(
    data: &Map<String, Value>,
    shape: &[(&str, Shape)],
    path: &str,
    unknown: &mut Vec<String>,
) -> Result<(), String> {
    for (field, kind) in shape {
        let here = format!("{path}.{field}");
        let value = optional(data, field);
        match (kind, value) {
            (Shape::PaymentType, value) => {
                if !value
                    .and_then(Value::as_str)
                    .is_some_and(|kind| PAYMENT_METHOD_TYPES.contains(&kind))
                {
                    return Err(format!(
                        "The {here} field must be one of: {}",
                        PAYMENT_METHOD_TYPES.join(", ")
                    ));
                }
            }
            (Shape::RequiredText, None) => {
                return Err(format!("The {here} field is required"));
            }
            (Shape::DetailsOf(kind, _), None) => {
                if data.get("type").and_then(Value::as_str) == Some(*kind) {
                    return Err(format!(
                        "The {here} field is required when {path}.type is {kind}"
                    ));
                }
            }
            (_, None) => {}
            (Shape::Text | Shape::RequiredText, Some(value)) => {
                if !value.is_string() {
                    return Err(must_be_string(&here));
                }
            }
            (Shape::Date, Some(value)) => {
                let valid = value.as_str().is_some_and(|text| {
                    time::Date::parse(text, format_description!("[year]-[month]-[day]")).is_ok()
                });
                if !valid {
                    return Err(format!(
                        "The {here} field must be a date in YYYY-MM-DD format"
                    ));
                }
            }
            (Shape::DataUrl, Some(value)) => {
                let valid = value.as_str().is_some_and(|text| {
                    url::Url::parse(text).is_ok_and(|url| url.scheme() == "data")
                });
                if !valid {
                    return Err(format!(
                        "The {here} field must be a data: URL (data:image/png;base64,...)"
                    ));
                }
            }
            (Shape::Object(inner) | Shape::DetailsOf(_, inner), Some(value)) => {
                let Value::Object(object) = value else {
                    return Err(format!("The {here} field must be an object"));
                };
                check_object(object, inner, &here, unknown)?;
            }
        }
    }
    for key in data.keys() {
        if !shape.iter().any(|(field, _)| field == key) {
            unknown.push(format!("{path}.{key}"));
        }
    }
    Ok(())
}
