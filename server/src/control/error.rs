//! Every way a control request can fail, rendered in one place into linkbox's own envelope
//! `{"error": {"code", "message"}}` (see [`crate::wire::sandbox_error`]).

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{WholeRange, WholeRanges, codes};
use serde::de::DeserializeOwned;
use warp::reply::Response;

use crate::ops::{self, identity::Refusal};
use crate::store::leaf::LeafError;
use crate::store::m2m::{LinkError, OperationError};
use crate::store::quota::StorageFull;
use crate::wire::BodyError;

/// A failed control request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No one to act for: missing or refused credentials, or the wrong kind of tenant.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// A body past its endpoint's limit, in bytes when the route says which.
    #[error("{}", too_large(*.0))]
    TooLarge(Option<usize>),
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// A lifecycle rule: the code says which.
    #[error("{1}")]
    Conflict(&'static str, Cow<'static, str>),
    /// Only the admin may do this; the message says what and why.
    #[error("{0}")]
    AdminRequired(&'static str),
    /// A Leaf link that can no longer be used: the code says why.
    #[error("{1}")]
    Gone(&'static str, Cow<'static, str>),
    /// The tenant holds what `--max-tenant-mib` allows.
    #[error(transparent)]
    StorageFull(#[from] StorageFull),
    /// Something the sandbox keeps for all tenants together is full (the faults' table):
    /// the message says what, and how to make room.
    #[error("{0}")]
    Full(String),
    /// The body could not be held ([`crate::bodies`]): a 503 with `Retry-After: 1`.
    #[error("{0}")]
    Busy(&'static str),
    /// A body of a type the control API does not read: 415.
    #[error("{0}")]
    UnsupportedType(String),
}

impl ControlError {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> ControlError {
        ControlError::Invalid(message.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ControlError::Refused(refusal) => match refusal {
                Refusal::MissingAuth
                | Refusal::ExpiredToken
                | Refusal::Delivery
                | Refusal::CrossOrigin
                | Refusal::ForeignHost
                | Refusal::UnreadableCredential => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
                Refusal::InvalidKey | Refusal::KeyCollision => {
                    (StatusCode::UNAUTHORIZED, codes::INVALID_API_KEY)
                }
                Refusal::Suspended => (StatusCode::FORBIDDEN, codes::PARTNER_SUSPENDED),
                Refusal::TenantLimit => (StatusCode::FORBIDDEN, codes::INVALID_API_KEY),
                Refusal::AccountLimit(crate::store::leaf::AccountLimit::Full(_))
                | Refusal::StorageFull(_) => (StatusCode::FORBIDDEN, codes::STORAGE_FULL),
                Refusal::AccountLimit(_) => (StatusCode::FORBIDDEN, codes::UNAUTHORIZED),
                Refusal::TenantRequired | Refusal::LeafTokenRequired => {
                    (StatusCode::BAD_REQUEST, codes::TENANT_REQUIRED)
                }
            },
            ControlError::Invalid(_) => (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST),
            ControlError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, codes::INVALID_REQUEST),
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ControlError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ControlError::AdminRequired(_) => (StatusCode::FORBIDDEN, codes::ADMIN_REQUIRED),
            ControlError::Gone(code, _) => (StatusCode::GONE, code),
            ControlError::StorageFull(_) | ControlError::Full(_) => {
                (StatusCode::FORBIDDEN, codes::STORAGE_FULL)
            }
            ControlError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::BODIES_FULL),
            ControlError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, codes::INVALID_REQUEST)
            }
        }
    }

    pub fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = super::error(status, code, self.to_string());
        if matches!(self, ControlError::Busy(_)) {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// Turns a control handler's outcome into the response.
pub fn render(outcome: Result<Response, ControlError>) -> Response {
    outcome.unwrap_or_else(ControlError::into_response)
}

/// The body parsed as `T`; an empty body is `T::default()`.
pub fn json_or_default<T: DeserializeOwned + WholeRanges + Default>(
    body: Result<Bytes, BodyError>,
) -> Result<T, ControlError> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(&body)
}

/// What an endpoint that takes no body reads of one: no field at all.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl WholeRanges for NoFields {}

/// A control endpoint's query parameters, each at most once: a repeated one is refused,
/// named (`?limit=1&limit=2` would otherwise keep one value without a word), as the
/// journal's filters are.
pub fn once_each(query: &str) -> Result<Vec<(String, String)>, ControlError> {
    let pairs = crate::wire::query_pairs(query);
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return Err(ControlError::invalid(format!(
            "The {:?} parameter is given twice: give it once",
            name.escape_default().to_string()
        )));
    }
    Ok(pairs)
}

/// The query of an endpoint that forgets something and takes no parameter: any is refused,
/// named, before anything is forgotten — a `?tenant=` or `?id=` it ignored would forget more
/// than was asked. `what` is the endpoint and what it forgets, e.g. "DELETE
/// /_sandbox/faults takes none, and removes every fault you set".
pub fn no_query(query: &str, what: &str) -> Result<(), ControlError> {
    match crate::wire::query_pairs(query).into_iter().next() {
        None => Ok(()),
        Some((name, _)) => Err(ControlError::invalid(format!(
            "Unknown parameter {:?}: {what}; nothing was done",
            name.escape_default().to_string()
        ))),
    }
}

/// The body of an endpoint that takes none, read as every control body is: none (or
/// whitespace) and `{}` are nothing; a field is refused, named, and what is not a JSON
/// object is refused as such.
pub fn no_body(body: Result<Bytes, BodyError>) -> Result<(), ControlError> {
    json_or_default::<NoFields>(body).map(|NoFields {}| ())
}

/// The body parsed as `T`; required.
pub fn json<T: DeserializeOwned + WholeRanges>(
    body: Result<Bytes, BodyError>,
) -> Result<T, ControlError> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ControlError::invalid("Request body is required"));
    }
    parse(&body)
}

/// What a body past its endpoint's `limit` is told.
fn too_large(limit: Option<usize>) -> String {
    match limit {
        Some(limit) if limit >= 1024 * 1024 => format!(
            "Request body must not exceed {} MiB on this endpoint",
            limit / (1024 * 1024)
        ),
        Some(limit) => format!(
            "Request body must not exceed {} KiB on this endpoint",
            limit / 1024
        ),
        None => String::from("Request body must not exceed this endpoint's limit"),
    }
}

fn parse<T: DeserializeOwned + WholeRanges>(body: &[u8]) -> Result<T, ControlError> {
    let limit = crate::wire::MAX_CONTROL_JSON_DEPTH;
    if crate::wire::nests_deeper_than(body, limit) {
        return Err(ControlError::invalid(crate::wire::too_deep(limit)));
    }
    // Every control body is an object: serde would also read a struct from an array of
    // its fields in order (`[60, null, null]` moving the clock), which no client means.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ControlError::invalid("Request body must be a JSON object"));
    }
    // The path to the value that failed (`bodyJson`, `links[3].status`) goes in the message,
    // and a whole number's range is that field's when it declares one.
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let range = T::WHOLE_RANGES.iter().find(|range| range.field == path);
        let error = in_words(&error.into_inner().to_string(), range);
        ControlError::invalid(if path == "." {
            format!("Invalid request body: {error}")
        } else {
            format!("Invalid request body at {path}: {error}")
        })
    })?;
    reader
        .end()
        .map_err(|error| ControlError::invalid(format!("Invalid request body: {error}")))?;
    Ok(value)
}

/// serde's message with Rust's integer type names (`expected u32`) put as the range a
/// client may send: the field's own when it declares one (`field`: `count` takes 1 to
/// 1000, not a `u32`'s), else the type's. A partner writing Python or TypeScript should not
/// need Rust to read it.
fn in_words(message: &str, field: Option<&WholeRange>) -> String {
    let ranges = [
        ("u16", 0, i128::from(u16::MAX)),
        ("u32", 0, i128::from(u32::MAX)),
        ("u64", 0, i128::from(u64::MAX)),
        ("usize", 0, i128::try_from(usize::MAX).unwrap_or(i128::MAX)),
        ("i64", i128::from(i64::MIN), i128::from(i64::MAX)),
    ];
    let mut message = message.to_owned();
    for (name, low, high) in ranges {
        let (low, high) = field.map_or((low, high), |field| {
            (i128::from(field.min), i128::from(field.max))
        });
        message = message.replace(
            &format!("expected {name}"),
            &format!("expected a whole number from {low} to {high}"),
        );
    }
    // A whole number written with a fraction (`3600.0`, as Python's `total_seconds()` gives
    // it) is a float to JSON's readers: say so, rather than seem to call 3600 not whole.
    // `-0` is one too (serde_json reads it as the float -0.0, whatever JavaScript makes of
    // it), and was not written with a fraction: it is told to write 0.
    if message.contains("expected a whole number")
        && let Some(at) = message.find("floating point `")
        && let Some(length) = message[at + 16..].find('`')
        && let Ok(value) = message[at + 16..at + 16 + length].parse::<f64>()
        && value.fract() == 0.0
        && !message[at + 16..at + 16 + length].contains(['e', 'E'])
    {
        message.push_str(if value == 0.0 && value.is_sign_negative() {
            " (write 0: a negative zero is not a whole number here)"
        } else {
            " (write it without a fraction: 3600, not 3600.0)"
        });
    }
    // A whole number past u64 is read as a float and would be echoed in exponent form
    // (`1e20`), which the client never sent.
    if let Some(at) = message.find("floating point `")
        && let Some(length) = message[at + 16..].find('`')
        && message[at + 16..at + 16 + length].contains(['e', 'E'])
    {
        message.replace_range(at..at + 16 + length + 1, "number out of range");
    }
    // Rust's names of the types a value was read into, put as the JSON value they take.
    for (rust, json) in [
        ("expected struct ", "an object"),
        ("expected enum ", "a string"),
    ] {
        while let Some(at) = message.find(rust) {
            let name = message[at + rust.len()..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(message.len(), |end| at + rust.len() + end);
            message.replace_range(at..name, &format!("expected {json}"));
        }
    }
    // serde's names of JSON values, put in JSON's own terms.
    for (rust, json) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("floating point `", "number `"),
        ("integer `", "number `"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: object"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("there are no fields", "this endpoint takes no fields"),
    ] {
        message = message.replace(rust, json);
    }
    message
}

impl From<BodyError> for ControlError {
    fn from(error: BodyError) -> ControlError {
        match error {
            BodyError::TooLarge => ControlError::TooLarge(None),
            BodyError::PastShare(most) => {
                ControlError::TooLarge(Some(usize::try_from(most).unwrap_or(usize::MAX)))
            }
            BodyError::Unreadable => ControlError::invalid("Request body could not be read"),
            BodyError::Late => ControlError::invalid(crate::wire::BODY_LATE),
            BodyError::Busy(refused) => ControlError::Busy(crate::wire::busy_message(refused)),
        }
    }
}

const LINK_NOT_FOUND: &str = "Link not found";

impl From<LinkError> for ControlError {
    fn from(error: LinkError) -> ControlError {
        match error {
            LinkError::LinkNotFound => ControlError::NotFound(LINK_NOT_FOUND.into()),
            LinkError::Expired => {
                ControlError::Conflict("LINK_EXPIRED", "Magic link has expired".into())
            }
            LinkError::Revoked | LinkError::NotRevocable => {
                ControlError::Conflict("LINK_REVOKED", "The link is revoked".into())
            }
            LinkError::StorageFull(full) => ControlError::StorageFull(full),
            other => ControlError::Conflict(codes::CONFLICT, other.to_string().into()),
        }
    }
}

impl From<OperationError> for ControlError {
    fn from(error: OperationError) -> ControlError {
        let code = match error {
            OperationError::LinkNotFound => return ControlError::NotFound(LINK_NOT_FOUND.into()),
            OperationError::Expired => "LINK_EXPIRED",
            OperationError::Revoked => "LINK_REVOKED",
            OperationError::NotOpened => "LINK_NOT_OPENED",
            OperationError::OperationExists => "OPERATION_EXISTS",
            OperationError::NoOperation => "NO_OPERATION",
        };
        ControlError::Conflict(code, error.to_string().into())
    }
}

impl From<LeafError> for ControlError {
    fn from(error: LeafError) -> ControlError {
        match error {
            LeafError::LinkNotFound => ControlError::NotFound("Magic link not found".into()),
            LeafError::UserNotFound => ControlError::NotFound("Leaf user not found".into()),
            LeafError::LinkExpired => {
                ControlError::Gone("LINK_EXPIRED", "Magic link has expired".into())
            }
            LeafError::LinkUsedUp => ControlError::Gone(
                "LINK_USED_UP",
                "Magic link has been used up: its usageCount reached maxUsage".into(),
            ),
            LeafError::UserDeleted => ControlError::Gone(
                "LEAF_USER_DELETED",
                "The magic link's Leaf user has been deleted: the link is kept, but no one can use it".into(),
            ),
            LeafError::ExternalIdTaken => {
                ControlError::Conflict(codes::CONFLICT, error.to_string().into())
            }
            LeafError::StorageFull(full) => ControlError::StorageFull(full),
        }
    }
}

impl From<ops::Error> for ControlError {
    fn from(error: ops::Error) -> ControlError {
        match error {
            ops::Error::Link(error) => error.into(),
            ops::Error::Operation(error) => error.into(),
            ops::Error::Leaf(error) => error.into(),
            ops::Error::Invalid(message) => ControlError::Invalid(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: DeserializeOwned + WholeRanges + std::fmt::Debug>(body: &str) -> String {
        match parse::<T>(body.as_bytes()) {
            Err(ControlError::Invalid(message)) => message.into_owned(),
            other => panic!("{body} should be refused, got {other:?}"),
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        #[allow(dead_code)]
        count: u32,
        #[allow(dead_code)]
        #[serde(default)]
        shift: Option<i64>,
    }

    impl WholeRanges for Counts {}

    /// A shared cap that is full (the faults' table) is the storage budget's answer: 403
    /// `STORAGE_FULL`, with the message that says how to make room.
    #[test]
    fn a_full_shared_cap_is_a_403_storage_full() {
        let full = ControlError::Full("remove faults with DELETE /_sandbox/faults".into());
        assert_eq!(
            full.status_and_code(),
            (StatusCode::FORBIDDEN, codes::STORAGE_FULL)
        );
        assert_eq!(
            full.to_string(),
            "remove faults with DELETE /_sandbox/faults"
        );
    }

    #[test]
    fn integer_errors_name_the_range_not_the_rust_type() {
        let negative = refusal::<Counts>(r#"{"count": -1}"#);
        assert!(
            negative.starts_with(
                "Invalid request body at count: invalid value: number `-1`, \
                 expected a whole number from 0 to 4294967295"
            ),
            "{negative}"
        );
        let fraction = refusal::<Counts>(r#"{"count": 1.5}"#);
        assert!(
            fraction.contains("number `1.5`, expected a whole number from 0 to"),
            "{fraction}"
        );
        let written_as_fraction = refusal::<Counts>(r#"{"count": 3600.0}"#);
        assert!(
            written_as_fraction.contains("number `3600.0`")
                && written_as_fraction.contains("without a fraction"),
            "{written_as_fraction}"
        );
        assert!(!fraction.contains("without a fraction"), "{fraction}");
        // `-0` was written without a fraction; it is told to write 0.
        let negative_zero = refusal::<Counts>(r#"{"count": -0}"#);
        assert!(
            negative_zero.contains("write 0") && !negative_zero.contains("without a fraction"),
            "{negative_zero}"
        );
        let text = refusal::<Counts>(r#"{"count": 1, "shift": "x"}"#);
        assert!(
            text.contains("at shift: invalid type: string \"x\", expected a whole number from -"),
            "{text}"
        );
        for message in [negative, fraction, text] {
            assert!(!message.contains("expected u") && !message.contains("expected i"));
            assert!(!message.contains("floating point") && !message.contains("integer `"));
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Amount {
        amount: f64,
    }

    impl WholeRanges for Amount {}

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        count: Counts,
    }

    impl WholeRanges for Nested {}

    /// A number of the wrong kind is told the whole numbers its field takes, as the field
    /// declares them, not its type's: what the clock, a fault and a seed were told.
    #[test]
    fn a_number_of_the_wrong_kind_is_told_its_fields_own_range() {
        use linkbox_contracts::sandbox::{ClockChange, FaultRequest, SeedRequest};
        for (message, range) in [
            (
                refusal::<ClockChange>(r#"{"advanceSeconds": "10"}"#),
                "from -3162240000 to 3162240000",
            ),
            (
                refusal::<ClockChange>(r#"{"advanceSeconds": 1e30}"#),
                "from -3162240000 to 3162240000",
            ),
            (
                refusal::<FaultRequest>(r#"{"status": "500"}"#),
                "from 200 to 599",
            ),
            (
                refusal::<FaultRequest>(r#"{"status": 70000}"#),
                "from 200 to 599",
            ),
            (
                refusal::<FaultRequest>(r#"{"delayMs": 1.5}"#),
                "from 0 to 120000",
            ),
            (
                refusal::<FaultRequest>(r#"{"times": -1}"#),
                "from 1 to 4294967295",
            ),
            (
                refusal::<SeedRequest>(r#"{"api": "m2m", "count": "3"}"#),
                "from 1 to 1000",
            ),
        ] {
            assert!(
                message.contains(&format!("expected a whole number {range}")),
                "{message}"
            );
        }
        // A field that declares no range of its own takes its type's.
        let seed = refusal::<SeedRequest>(r#"{"api": "m2m", "count": 3, "rngSeed": -1}"#);
        assert!(
            seed.contains("at rngSeed: invalid value: number `-1`, expected a whole number from 0 to 18446744073709551615"),
            "{seed}"
        );
    }

    #[test]
    fn rusts_type_names_and_numbers_never_sent_stay_out_of_messages() {
        let nested = refusal::<Nested>(r#"{"count": 5}"#);
        assert!(
            nested.contains("at count: invalid type: number `5`, expected an object"),
            "{nested}"
        );
        let huge = refusal::<Counts>(r#"{"count": 99999999999999999999}"#);
        assert!(
            huge.contains(
                "at count: invalid type: number out of range, expected a whole number from 0 to"
            ),
            "{huge}"
        );
        for message in [nested, huge] {
            assert!(
                !message.contains("struct") && !message.contains("e+"),
                "{message}"
            );
            assert!(
                !message.contains("Counts") && !message.contains("1e"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_number_is_asked_for_as_a_number_and_bodies_are_objects() {
        let array = refusal::<Amount>(r#"{"amount": [1]}"#);
        assert!(
            array.contains("invalid type: array, expected a number"),
            "{array}"
        );
        let text = refusal::<Amount>(r#"{"amount": "10"}"#);
        assert!(
            text.ends_with("expected a number at line 1 column 15"),
            "{text}"
        );
        for body in ["[60, null]", "  [1]", "\"x\"", "5"] {
            assert_eq!(
                refusal::<Counts>(body),
                "Request body must be a JSON object",
                "{body}"
            );
        }
    }

    /// An endpoint that takes no body takes none, blank or `{}`, and refuses anything else
    /// as the endpoints that take one refuse what they do not take.
    #[test]
    fn a_body_where_none_is_taken_is_nothing_or_empty() {
        for nothing in ["", " \n", "{}", " { } "] {
            assert_eq!(no_body(Ok(Bytes::from(nothing))), Ok(()), "{nothing:?}");
        }
        let refused = |body: &'static str| match no_body(Ok(Bytes::from(body))) {
            Err(ControlError::Invalid(message)) => message.into_owned(),
            other => panic!("{body} should be refused, got {other:?}"),
        };
        assert_eq!(
            refused(r#"{"x": 1}"#),
            "Invalid request body at x: unknown field `x`, this endpoint takes no fields at \
             line 1 column 4"
        );
        assert_eq!(refused("[]"), "Request body must be a JSON object");
        assert_eq!(refused("garbage"), "Request body must be a JSON object");
    }

    #[test]
    fn an_oversized_body_is_told_its_endpoints_limit() {
        assert_eq!(
            ControlError::TooLarge(Some(4 * 1024)).to_string(),
            "Request body must not exceed 4 KiB on this endpoint"
        );
        assert_eq!(
            ControlError::TooLarge(Some(64 * 1024 * 1024)).to_string(),
            "Request body must not exceed 64 MiB on this endpoint"
        );
    }
}
