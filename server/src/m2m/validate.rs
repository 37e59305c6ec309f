//! Validation of M2M request bodies and queries, in the vendor's words.
//!
//! Bodies are read as JSON values (a create's members one by one, without a map of their
//! own: [`super::create_body`]) and checked field by field in a fixed order, so the error
//! names the *first* violation, as the vendor does. Fields a body carries that the API does
//! not know are ignored (as the real API does) but named, for the `X-Linkbox-Warning` header.
//!
//! `from` and `to` of the list query take an RFC 3339 date-time or a date alone, as a Node
//! service doing `new Date(from)` would: a date alone is the start of that day in UTC for
//! `from` and its last instant for `to`, so `to=2026-02-10` includes the whole day. A link
//! created without `flow` gets the configured default flow (`default_flow`, else the
//! documented `m2m-basic` when `flows` lists it, else the first of `flows`), never one the
//! configuration would refuse.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use linkbox_contracts::m2m::{self as wire, Language, LinkStatus, Visibility, messages};
use linkbox_contracts::timefmt;
use serde_json::{Map, Value};
use time::Duration;
use time::macros::format_description;

use linkbox_contracts::json::javascript_numbers;

use super::create_body::{CreateBody, Field, Parsed};
use super::error::ApiError;
use crate::ops::m2m::is_acceptable_callback;
use crate::store::m2m::{LinkFilter, NewLink, user_input};
use crate::wire::{BodyError, first_seen, is_json, query_pairs};

/// Query parameters of `GET /partner/links`.
const LIST_PARAMS: [&str; 7] = [
    "page",
    "limit",
    "from",
    "to",
    "visibility",
    "status",
    "referenceId",
];

/// A request body as JSON: `None` when the body is empty. A non-empty body must say it is
/// JSON and parse as JSON.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Result<Option<Value>, ApiError> {
    match json_text(headers, body)? {
        None => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(messages::INVALID_JSON)),
    }
}

/// A `POST /partner/links` body, checked as [`json_body`] checks a body and read in one
/// pass over its members ([`super::create_body`]); an empty body has none.
pub fn create_body(
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Result<CreateBody, ApiError> {
    let Some(text) = json_text(headers, body)? else {
        return Ok(CreateBody::default());
    };
    match parse(&text) {
        Some(Parsed(Some(body))) => Ok(body),
        Some(Parsed(None)) => Err(ApiError::invalid(messages::BODY_NOT_OBJECT)),
        None => Err(ApiError::invalid(messages::INVALID_JSON)),
    }
}

/// A body that is to be read as JSON: `None` when it is empty; refused when it does not say
/// it is JSON, nests deeper than [`crate::wire::MAX_JSON_DEPTH`] or holds more than
/// [`crate::wire::MAX_JSON_VALUES`] values.
fn json_text(
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Result<Option<Bytes>, ApiError> {
    let body = body?;
    if crate::wire::is_json_blank(&body) {
        return Ok(None);
    }
    // linkbox does not decompress request bodies (`wire::content_encoding`): the vendor's
    // Express parser inflates gzip and deflate ones. [design]
    if let Some(encoding) = crate::wire::content_encoding(headers) {
        return Err(ApiError::UnsupportedEncoding(encoding));
    }
    if !is_json(headers) {
        return Err(ApiError::invalid(messages::CONTENT_TYPE));
    }
    if crate::wire::nests_deeper_than(&body, crate::wire::MAX_JSON_DEPTH) {
        return Err(ApiError::invalid(crate::wire::too_deep(
            crate::wire::MAX_JSON_DEPTH,
        )));
    }
    if crate::wire::holds_more_values_than(&body, crate::wire::MAX_JSON_VALUES) {
        return Err(ApiError::invalid(crate::wire::too_many_values(
            crate::wire::MAX_JSON_VALUES,
        )));
    }
    Ok(Some(body))
}

/// `text` read as JSON, `None` when it is not JSON. JSON text is UTF-8: checked once over
/// the whole body, the parser then reads its strings without checking each again (it
/// would, string by string, reading bytes: eight strings in a small create, about 800
/// instructions). Text that is not UTF-8 is not JSON either way.
fn parse<'de, T: serde::Deserialize<'de>>(text: &'de [u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(text).ok()?).ok()
}

/// The body as an object; an empty body counts as `{}`, as the vendor's JSON parser does.
fn object(body: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    match body {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ApiError::invalid(messages::BODY_NOT_OBJECT)),
    }
}

/// Names of the fields `body` carries that are not in `known`.
pub fn unknown_fields(body: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    body.keys()
        .filter(|key| !known.contains(&key.as_str()))
        .cloned()
        .collect()
}

/// The value of an optional field; `null` counts as absent.
fn optional<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|value| !value.is_null())
}

fn must_be_string(field: &str) -> ApiError {
    ApiError::invalid(user_input::must_be_string(field))
}

/// Takes `field` out of `body`, read as [`optional`] reads it (absent or `null`: `None`), so
/// what a request sent is moved into what linkbox keeps instead of copied.
fn take(body: &mut Map<String, Value>, field: &str) -> Option<Value> {
    body.remove(field).filter(|value| !value.is_null())
}

/// The required, non-empty `referenceId` string, within its length, taken out of `body`.
fn required_reference_id(body: &mut Map<String, Value>) -> Result<String, ApiError> {
    checked_reference_id(take(body, "referenceId"))
}

/// `referenceId`'s value (`None`: absent or `null`) as the required, non-empty string,
/// within its length.
fn checked_reference_id(value: Option<Value>) -> Result<String, ApiError> {
    match value {
        None => Err(ApiError::invalid(messages::REFERENCE_ID_REQUIRED)),
        Some(Value::String(text)) => match user_input::reference_id_refusal(&text) {
            Some(refusal) => Err(ApiError::invalid(refusal)),
            None => Ok(text),
        },
        Some(_) => Err(must_be_string("referenceId")),
    }
}

/// A validated create-link request and the unknown fields it carried.
pub struct CreateLink {
    pub link: NewLink,
    pub ignored: Vec<String>,
}

/// Validates a `POST /partner/links` body against the accepted `flows`; without `flow`, a
/// link gets `default_flow`.
pub fn create_link(
    mut body: CreateBody,
    flows: &[String],
    default_flow: &str,
) -> Result<CreateLink, ApiError> {
    let reference_id = checked_reference_id(body.take(Field::ReferenceId))?;
    let expires_in = body
        .get(Field::ExpiresInMinutes)
        .map(expires_in_minutes)
        .transpose()?;
    let (user_data, nested) = match body.take(Field::UserData) {
        Some(mut value) => {
            let nested = user_data(&value)?;
            javascript_numbers(&mut value);
            (Some(value), nested)
        }
        None => (None, Vec::new()),
    };
    let metadata = match body.take(Field::Metadata) {
        None => None,
        Some(mut value @ Value::Object(_)) => {
            javascript_numbers(&mut value);
            Some(value)
        }
        Some(_) => return Err(ApiError::invalid(messages::METADATA)),
    };
    let flow: Arc<str> = match body.get(Field::Flow) {
        None => default_flow.into(),
        Some(Value::String(flow)) if flows.iter().any(|known| known == flow) => {
            flow.as_str().into()
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "The flow field must be one of: {}",
                flows.join(", ")
            )));
        }
    };
    let theme = match body.take(Field::Theme) {
        None => None,
        Some(Value::String(theme)) => Some(theme),
        Some(_) => return Err(must_be_string("theme")),
    };
    let language = match body.get(Field::Language) {
        None => None,
        Some(value) => Some(
            value
                .as_str()
                .and_then(Language::parse)
                .ok_or_else(|| ApiError::invalid(messages::LANGUAGE))?,
        ),
    };
    let callback_url = match body.take(Field::CallbackUrl) {
        None => None,
        Some(Value::String(url)) if is_acceptable_callback(&url) => Some(url),
        Some(_) => return Err(ApiError::invalid(messages::CALLBACK_URL)),
    };
    let mut ignored = body.into_unknown();
    ignored.extend(nested);
    Ok(CreateLink {
        ignored,
        link: NewLink {
            reference_id,
            expires_in,
            user_data,
            metadata,
            flow,
            theme,
            language,
            callback_url,
        },
    })
}

fn expires_in_minutes(value: &Value) -> Result<Duration, ApiError> {
    let minutes = value
        .as_f64()
        .filter(|minutes| {
            (f64::from(wire::EXPIRES_IN_MINUTES_MIN)..=f64::from(wire::EXPIRES_IN_MINUTES_MAX))
                .contains(minutes)
        })
        .ok_or_else(|| ApiError::invalid(messages::EXPIRES_IN_MINUTES))?;
    Ok(Duration::milliseconds((minutes * 60_000.0).round() as i64))
}

/// Checks `userData` (required to carry a payment method), returning the dot paths of the
/// keys its documented shape does not know.
fn user_data(value: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Object(data) = value else {
        return Err(ApiError::invalid(messages::USER_DATA));
    };
    if optional(data, "paymentMethod").is_none() {
        // Type errors of the fields before it come first, as the vendor checks in order.
        check_user_data_fields(data)?;
        return Err(ApiError::invalid(messages::PAYMENT_METHOD_REQUIRED));
    }
    check_user_data_fields(data)
}

/// [`user_input::check_user_data_fields`], its refusal in the API's envelope.
fn check_user_data_fields(data: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    user_input::check_user_data_fields(data).map_err(ApiError::invalid)
}

/// A validated `GET /partner/links` query.
#[derive(Debug)]
pub struct ListLinks {
    pub page: u32,
    pub limit: u32,
    pub filter: LinkFilter,
    pub ignored: Vec<String>,
}

/// Validates the query of `GET /partner/links`; when a parameter repeats, the last wins.
pub fn list_links(raw_query: &str) -> Result<ListLinks, ApiError> {
    let mut query = ListLinks {
        page: wire::DEFAULT_PAGE,
        limit: wire::DEFAULT_LIMIT,
        filter: LinkFilter::default(),
        ignored: Vec::new(),
    };
    for (name, value) in query_pairs(raw_query) {
        match name.as_str() {
            "page" => {
                query.page = value.parse().ok().filter(|page| *page >= 1).ok_or_else(|| {
                    // A whole number too large to page to is told so, not called less than 1.
                    if crate::wire::page_too_large(&value) {
                        ApiError::invalid(format!(
                            "The page query parameter must be at most {}",
                            u32::MAX
                        ))
                    } else {
                        ApiError::invalid(
                            "The page query parameter must be an integer greater than or equal to 1",
                        )
                    }
                })?;
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=wire::MAX_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "The limit query parameter must be an integer between 1 and {}",
                            wire::MAX_LIMIT
                        ))
                    })?;
            }
            "from" | "to" => {
                let at = bound(&value, name == "to").ok_or_else(|| {
                    ApiError::invalid(format!(
                        "The {name} query parameter {}",
                        messages::DATE_BOUND
                    ))
                })?;
                if name == "from" {
                    query.filter.from = Some(at);
                } else {
                    query.filter.to = Some(at);
                }
            }
            "visibility" => {
                query.filter.visibility = Some(match value.as_str() {
                    "active" => Visibility::Active,
                    "expired" => Visibility::Expired,
                    _ => {
                        return Err(ApiError::invalid(
                            "The visibility query parameter must be one of: active, expired",
                        ));
                    }
                });
            }
            "status" => {
                query.filter.status = Some(
                    LinkStatus::ALL
                        .into_iter()
                        .find(|status| status.as_str() == value)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "The status query parameter must be one of: created, opened, revoked",
                            )
                        })?,
                );
            }
            "referenceId" => query.filter.reference_id = Some(value),
            _ if !LIST_PARAMS.contains(&name.as_str()) => query.ignored.push(name),
            _ => {}
        }
    }
    query.ignored = first_seen(query.ignored);
    Ok(query)
}

/// A `from`/`to` bound, in ISO 8601 as the vendor documents it: a date-time with an offset
/// (RFC 3339's, or ISO 8601's others — to the minute, basic format); one without, read as
/// UTC (the time zone of a server doing `new Date(from)`); or a date alone — its first
/// instant in UTC, or its last when `end` is set.
fn bound(value: &str, end: bool) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Iso8601;
    if let Some(at) = timefmt::parse(value) {
        return Some(at);
    }
    if value.contains('T') {
        if let Ok(at) = time::OffsetDateTime::parse(value, &Iso8601::DEFAULT) {
            return Some(at);
        }
        return time::PrimitiveDateTime::parse(value, &Iso8601::DEFAULT)
            .ok()
            .map(time::PrimitiveDateTime::assume_utc);
    }
    let day = time::Date::parse(value, format_description!("[year]-[month]-[day]")).ok()?;
    let at = if end {
        day.with_hms_nano(23, 59, 59, 999_999_999).ok()?
    } else {
        day.midnight()
    };
    Some(at.assume_utc())
}

/// A validated revoke body: the optional reason, and unknown fields.
pub fn revoke(body: Option<Value>) -> Result<(Option<String>, Vec<String>), ApiError> {
    let body = object(body)?;
    let reason = match optional(&body, "reason") {
        None => None,
        Some(Value::String(reason)) => Some(reason.clone()),
        Some(_) => return Err(must_be_string("reason")),
    };
    Ok((reason, unknown_fields(&body, &["reason"])))
}

/// The fields of a body of an endpoint that takes none (absent or an object), every one
/// ignored.
pub fn no_fields(body: Option<Value>) -> Result<Vec<String>, ApiError> {
    Ok(unknown_fields(&object(body)?, &[]))
}

/// A validated fulfil body.
pub struct Fulfil {
    pub reference_id: String,
    pub user_data: Value,
    pub ignored: Vec<String>,
}

/// Validates a `PUT /partner/data-requests/{id}` body.
pub fn fulfil(body: Option<Value>) -> Result<Fulfil, ApiError> {
    let mut body = object(body)?;
    let reference_id = required_reference_id(&mut body)?;
    let (user_data, nested) = match optional(&body, "userData") {
        None => return Err(ApiError::invalid(messages::USER_DATA_REQUIRED)),
        Some(Value::Object(data)) => {
            let nested = check_user_data_fields(data)?;
            let mut data = Value::Object(data.clone());
            javascript_numbers(&mut data);
            (data, nested)
        }
        Some(_) => return Err(ApiError::invalid(messages::USER_DATA)),
    };
    let mut ignored = unknown_fields(&body, &["referenceId", "userData"]);
    ignored.extend(nested);
    Ok(Fulfil {
        reference_id,
        user_data,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flows() -> Vec<String> {
        vec![wire::DEFAULT_FLOW.to_owned()]
    }

    /// `body` as [`create_body`] reads it off the wire.
    fn parsed(body: Value) -> CreateBody {
        match serde_json::from_value(body) {
            Ok(Parsed(Some(body))) => body,
            _ => panic!("a create body is an object"),
        }
    }

    fn create(body: Value) -> Result<CreateLink, ApiError> {
        create_link(parsed(body), &flows(), wire::DEFAULT_FLOW)
    }

    fn message(result: Result<CreateLink, ApiError>) -> String {
        match result {
            Ok(_) => "accepted".into(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_seed_example_is_accepted_with_its_values() {
        let created = create(json!({
            "referenceId": "user-12345", "expiresInMinutes": 120,
            "metadata": {"orderId": "ORD-2026-001", "campaign": "february-promo"},
            "flow": "m2m-basic", "theme": "dark", "language": "es",
            "callbackUrl": "https://api.example.com/callbacks/m2m"
        }))
        .expect("valid");
        assert_eq!(created.link.reference_id, "user-12345");
        assert_eq!(created.link.expires_in, Some(Duration::minutes(120)));
        assert_eq!(created.link.language, Some(Language::Es));
        assert!(created.ignored.is_empty());
    }

    #[test]
    fn reference_id_is_required_non_empty_and_bounded() {
        assert_eq!(message(create(json!({}))), messages::REFERENCE_ID_REQUIRED);
        assert_eq!(
            message(create(json!({"referenceId": ""}))),
            messages::REFERENCE_ID_REQUIRED
        );
        assert_eq!(
            message(create(json!({"referenceId": null}))),
            messages::REFERENCE_ID_REQUIRED
        );
        assert_eq!(
            message(create(json!({"referenceId": " \t\n"}))),
            messages::REFERENCE_ID_REQUIRED
        );
        let padded = create(json!({"referenceId": " pad "})).expect("kept as sent");
        assert_eq!(padded.link.reference_id, " pad ");
        assert_eq!(
            message(create(json!({"referenceId": 7}))),
            "The referenceId field must be a string"
        );
        assert_eq!(
            message(create(json!({"referenceId": "x".repeat(255)}))),
            "accepted"
        );
        assert_eq!(
            message(create(json!({"referenceId": "x".repeat(256)}))),
            messages::REFERENCE_ID_TOO_LONG
        );
    }

    #[test]
    fn expiry_bounds_are_inclusive() {
        for (minutes, outcome) in [
            (json!(4), messages::EXPIRES_IN_MINUTES),
            (json!(5), "accepted"),
            (json!(10080), "accepted"),
            (json!(10081), messages::EXPIRES_IN_MINUTES),
            (json!("120"), messages::EXPIRES_IN_MINUTES),
            (json!(4.99), messages::EXPIRES_IN_MINUTES),
            // `-0` (serde_json's -0.0) is refused as 0 is, as a Node vendor's range check
            // refuses -0.
            (json!(0), messages::EXPIRES_IN_MINUTES),
            (
                serde_json::from_str("-0").expect("-0"),
                messages::EXPIRES_IN_MINUTES,
            ),
        ] {
            let result = create(json!({"referenceId": "r", "expiresInMinutes": minutes}));
            assert_eq!(message(result), outcome, "{minutes}");
        }
    }

    #[test]
    fn callback_urls_must_be_https_or_loopback_http_and_not_too_long() {
        use linkbox_contracts::m2m::MAX_URL_CHARS;
        let long = |chars: usize| {
            let mut url = "https://api.example.com/hook?pad=".to_owned();
            url.extend(std::iter::repeat_n('a', chars - url.len()));
            url
        };
        for (url, ok) in [
            ("https://api.example.com/hook", true),
            ("http://127.0.0.1:9000/hook", true),
            ("http://localhost/hook", true),
            ("http://[::1]:9000/hook", true),
            ("http://api.example.com/hook", false),
            ("ftp://api.example.com/hook", false),
            ("not a url", false),
            // The parser mends each of these into a URL with a host; none is written with one.
            ("https:///x", false),
            ("https:x", false),
            ("https://\\x/hook", false),
            ("http:///localhost/hook", false),
            (&long(MAX_URL_CHARS), true),
            (&long(MAX_URL_CHARS + 1), false),
        ] {
            assert_eq!(is_acceptable_callback(url), ok, "{url}");
        }
    }

    #[test]
    fn the_first_violation_is_reported() {
        let result = create(json!({"referenceId": "r", "expiresInMinutes": 1, "language": "fr"}));
        assert_eq!(message(result), messages::EXPIRES_IN_MINUTES);
    }

    #[test]
    fn user_data_needs_a_payment_method() {
        assert_eq!(
            message(create(
                json!({"referenceId": "r", "userData": {"idType": "CURP"}})
            )),
            messages::PAYMENT_METHOD_REQUIRED
        );
        assert_eq!(
            message(create(json!({"referenceId": "r", "userData": []}))),
            messages::USER_DATA
        );
        assert_eq!(
            message(create(
                json!({"referenceId": "r", "userData": {"paymentMethod": {
                "type": "bank_account",
                "bankAccount": {"country": "MX", "accountNumber": "0123"}}}})
            )),
            "accepted"
        );
    }

    #[test]
    fn a_payment_method_carries_its_kinds_details_whole() {
        let refused = |payment: Value| {
            message(create(
                json!({"referenceId": "r", "userData": {"paymentMethod": payment}}),
            ))
        };
        assert_eq!(
            refused(json!({"type": "bank_account"})),
            "The userData.paymentMethod.bankAccount field is required when userData.paymentMethod.type is bank_account"
        );
        assert_eq!(
            refused(
                json!({"type": "cash", "bankAccount": {"country": "MX", "accountNumber": "1"}})
            ),
            "The userData.paymentMethod.cash field is required when userData.paymentMethod.type is cash"
        );
        assert_eq!(
            refused(json!({"type": "bank_account", "bankAccount": {}})),
            "The userData.paymentMethod.bankAccount.country field is required"
        );
        assert_eq!(
            refused(
                json!({"type": "bank_account", "bankAccount": {"country": "MX", "accountNumber": null}})
            ),
            "The userData.paymentMethod.bankAccount.accountNumber field is required"
        );
        assert_eq!(
            refused(json!({"type": "cash", "cash": {"provider": "OXXO"}})),
            "The userData.paymentMethod.cash.reference field is required"
        );
        // Details of the other kind are checked when sent, and kept as sent.
        assert_eq!(
            refused(
                json!({"type": "cash", "cash": {"provider": "OXXO", "reference": "R1"}, "bankAccount": {}})
            ),
            "The userData.paymentMethod.bankAccount.country field is required"
        );
        assert_eq!(
            refused(json!({"type": "cash", "cash": {"provider": "OXXO", "reference": "R1"}})),
            "accepted"
        );
        // A data request's fulfil is held to the same shape.
        assert!(
            fulfil(Some(json!({"referenceId": "u", "userData": {"paymentMethod": {"type": "cash", "cash": {}}}})))
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_are_ignored_but_named() {
        let created = create(json!({"referenceId": "r", "expiresInMinute": 5})).expect("valid");
        assert_eq!(created.ignored, ["expiresInMinute"]);
    }

    #[test]
    fn nested_user_data_is_checked_like_the_top_level() {
        let created = create(serde_json::json!({"referenceId": "u", "userData": {
            "name": {"firstname": "Ana", "lastName": "Ruiz"},
            "paymentMethod": {"type": "bank_account", "bankAcount": {"country": "MX"},
                "bankAccount": {"country": "MX", "accountNumber": "0123"}},
            "phone": "5"
        }}))
        .map_err(|_| ())
        .expect("valid");
        assert_eq!(
            created.ignored,
            [
                "userData.name.firstname",
                "userData.paymentMethod.bankAcount",
                "userData.phone"
            ]
        );
        let wrong = create(serde_json::json!({"referenceId": "u", "userData": {
            "paymentMethod": {"type": "bank_account", "bankAccount": {"country": "MX", "accountNumber": 5}}
        }}));
        assert_eq!(
            message(wrong),
            "The userData.paymentMethod.bankAccount.accountNumber field must be a string"
        );
        let image = create(serde_json::json!({"referenceId": "u", "userData": {
            "idImage": "https://example.com/id.png", "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R1"}}
        }}));
        assert!(message(image).contains("userData.idImage"));
        let image = create(serde_json::json!({"referenceId": "u", "userData": {
            "idImage": "data:image/png;base64,iVBORw0KGgo=", "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R1"}}
        }}));
        assert!(image.is_ok());
        let fulfil_typo = fulfil(Some(
            serde_json::json!({"referenceId": "u", "userData": {"name": {"fristName": "A"}}}),
        ))
        .map_err(|_| ())
        .expect("valid");
        assert_eq!(fulfil_typo.ignored, ["userData.name.fristName"]);
        assert!(
            fulfil(Some(
                serde_json::json!({"referenceId": "u", "userData": {"name": {"firstName": 1}}})
            ))
            .is_err()
        );
    }

    #[test]
    fn a_create_without_flow_gets_the_configured_default() {
        let flows = vec!["m2m-express".to_owned()];
        let created = create_link(parsed(json!({"referenceId": "u"})), &flows, "m2m-express")
            .map_err(|_| ())
            .expect("valid");
        assert_eq!(&*created.link.flow, "m2m-express");
    }

    #[test]
    fn list_queries_default_and_validate() {
        let query = list_links("").expect("defaults");
        assert_eq!((query.page, query.limit), (1, 20));
        assert!(list_links("limit=100&page=3&status=opened&visibility=expired").is_ok());
        for bad in [
            "page=0",
            "limit=0",
            "limit=101",
            "status=done",
            "visibility=all",
            "from=x",
            "from=2026-02-30",
            "to=2026-2-10",
            "to=10/02/2026",
        ] {
            assert!(list_links(bad).is_err(), "{bad}");
        }
        let days = list_links("from=2026-02-10&to=2026-02-10").expect("date-only bounds");
        assert_eq!(
            days.filter.from,
            Some(time::macros::datetime!(2026-02-10 00:00 UTC))
        );
        assert_eq!(
            days.filter.to,
            Some(time::macros::datetime!(2026-02-10 23:59:59.999_999_999 UTC))
        );
        assert_eq!(list_links("pageSize=5").expect("ok").ignored, ["pageSize"]);
        let names: Vec<String> = (0..15_000).map(|n| format!("{n:03x}")).collect();
        let raw: Vec<String> = names.iter().map(|name| format!("{name}=1")).collect();
        let raw = format!("{}&limit=5&{}", raw.join("&"), raw.join("&"));
        let many = list_links(&raw).expect("ignored");
        assert_eq!((many.limit, many.ignored), (5, names));
        assert_eq!(
            list_links("page=4294967295").expect("past the end").page,
            u32::MAX
        );
        let message = |query: &str| match list_links(query) {
            Err(ApiError::InvalidRequest(message)) => message.to_string(),
            other => panic!("{query}: {other:?}"),
        };
        assert_eq!(
            message("page=4294967296"),
            "The page query parameter must be at most 4294967295"
        );
        assert_eq!(
            message("page=18446744073709551616"),
            "The page query parameter must be at most 4294967295"
        );
        for small in [
            "page=0", "page=000", "page=-1", "page=1.5", "page=", "page=+1",
        ] {
            assert!(
                message(small).ends_with("greater than or equal to 1"),
                "{small}"
            );
        }
        // ISO 8601 beyond RFC 3339: to the minute, the basic format, another offset, and
        // no offset at all (read as UTC).
        for (bound, at) in [
            (
                "2026-12-06T03:00Z",
                time::macros::datetime!(2026-12-06 03:00 UTC),
            ),
            (
                "20261206T030005Z",
                time::macros::datetime!(2026-12-06 03:00:05 UTC),
            ),
            (
                "2026-12-06T03:00%2B01:00",
                time::macros::datetime!(2026-12-06 02:00 UTC),
            ),
            (
                "2026-12-06T03:00:05",
                time::macros::datetime!(2026-12-06 03:00:05 UTC),
            ),
            (
                "2026-12-06T03:00:05.250",
                time::macros::datetime!(2026-12-06 03:00:05.25 UTC),
            ),
        ] {
            let query = list_links(&format!("from={bound}")).expect(bound);
            assert_eq!(query.filter.from, Some(at), "{bound}");
        }
        for bad in [
            "2026-12-06T25:00Z",
            "2026-12-06T",
            "T03:00Z",
            "2026-12-06T03:00Zjunk",
        ] {
            assert_eq!(
                message(&format!("from={bad}")),
                "The from query parameter must be an ISO 8601 date-time or a YYYY-MM-DD date",
                "{bad}"
            );
        }
        assert_eq!(
            message("to=yesterday"),
            "The to query parameter must be an ISO 8601 date-time or a YYYY-MM-DD date"
        );
    }

    #[test]
    fn text_is_read_as_json_exactly_when_its_bytes_are() {
        let bodies: [&[u8]; 9] = [
            br#"{"referenceId":"user-1","metadata":{"a":[1,2.5,null]}}"#,
            "{\"name\":\"Jos\u{e9} \u{1f600}\",\"e\":\"\\u00e9\\n\"}".as_bytes(),
            b"{\"referenceId\": \"\xff\xfe\"}",
            b"{\"a\": 1}\xff",
            b"\xef\xbb\xbf{}",
            b"{\"a\": \"\xed\xa0\x80\"}",
            b"[1, 2",
            b"",
            b"  {}  ",
        ];
        for body in bodies {
            let as_bytes = serde_json::from_slice::<Value>(body).ok();
            assert_eq!(
                parse::<Value>(body),
                as_bytes,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
