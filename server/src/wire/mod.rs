//! Request and response plumbing every surface shares: the route table ([`router`]), the
//! request a handler receives ([`Request`], its body read under a size limit on demand),
//! query strings, JSON responses (whole, or sent as they are made: [`stream`]) and the
//! `X-Linkbox-Warning` header.
//!
//! Nothing here knows an API's error shape: body and query problems come back as values
//! ([`BodyError`]) for each API to render in its own envelope.

mod request;
pub mod router;
pub mod stream;

pub use request::{BodySlot, BodyStream, Request};
pub use router::{Found, Params, Router, decoded as path_param};

use std::collections::HashSet;
use std::hash::Hash;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use linkbox_contracts::m2m::WARNING_HEADER;
use linkbox_contracts::sandbox::{SandboxErrorBody, SandboxErrorDetail};
use serde::Serialize;
use warp::reply::Response;

/// Marks a response whose connection is to be closed without sending it (an injected
/// `drop` fault); the connection loop honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropConnection;

/// Why a request body could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the limit")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
    /// It did not arrive whole within [`request::BODY_READ_TIMEOUT`].
    #[error("{}", BODY_LATE)]
    Late,
    /// Holding it would pass what the bodies read at once may hold ([`crate::bodies`]).
    #[error("{}", busy_message(*.0))]
    Busy(crate::bodies::Refused),
    /// Declared past the most one caller's bodies may hold at once (that many bytes), which
    /// is below the route's own limit: never to be held, so too large, not early.
    #[error("{}", past_share_message(*.0))]
    PastShare(u64),
}

/// What a body declared past a caller's share of `--max-bodies-mib` (`most` bytes) is told,
/// in every API's envelope (a 413): the limit in force, not the route's larger one.
pub fn past_share_message(most: u64) -> String {
    format!(
        "Request body must not exceed {} MiB: the most one caller's request bodies may hold at \
         once in this sandbox (a quarter of --max-bodies-mib)",
        most / (1024 * 1024)
    )
}

/// What a late body is told, in every API's envelope.
pub const BODY_LATE: &str =
    "The request body did not arrive whole within 30 seconds; nothing was done";

/// What a body refused by [`crate::bodies`] is told, in every API's envelope (a 503 with
/// `Retry-After: 1`): a request's body, or the answer to a request that changes nothing.
pub fn busy_message(refused: crate::bodies::Refused) -> &'static str {
    match refused {
        crate::bodies::Refused::Full => {
            "linkbox holds as many bodies at once as it may (request bodies being read, large answers being sent: --max-bodies-mib); nothing was done: retry shortly"
        }
        crate::bodies::Refused::CallerFull => {
            "This caller's bodies held at once (request bodies being read, large answers being sent) already hold a quarter of what linkbox may (--max-bodies-mib); nothing was done: retry once they are answered and read"
        }
    }
}

/// What the answer to a request that changed something is told when linkbox has no room
/// to send it ([`crate::bodies`]; a 503 with `Retry-After: 1`): the change stands.
pub const ANSWER_BUSY: &str = "This request was carried out, but its answer is larger than linkbox may hold now (request bodies being read, large answers being sent: --max-bodies-mib): read the resource again shortly rather than repeating the request";

/// Seconds a refused body's client is asked to wait.
pub const BUSY_RETRY_AFTER_SECS: u32 = 1;

async fn read_limited<S, B>(
    headers: &HeaderMap,
    stream: S,
    limit: usize,
    hold: &mut crate::bodies::Hold,
) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, std::io::Error>>,
    B: bytes::Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    if declared.is_some_and(|length| !hold.could_hold(length)) {
        return Err(BodyError::PastShare(hold.caller_most()));
    }
    let mut stream = std::pin::pin!(stream);
    // What is held is counted as the bytes arrive ([`crate::bodies`]), so what is held in
    // memory must be what arrived. A small declared length is allocated whole at once (one
    // allocation, no copy at the end). A larger one is kept as the parts that arrived, each
    // at its own size, and joined once whole: allocated whole up front, a body trickled in
    // held its declared length in memory as soon as the allocator handed back pages already
    // resident, and 67 bodies of 9 MB declared, 2 MB sent, held 334 MB against the 128 MiB
    // counted. (Grown by doubling instead, a body of 10 MiB left 16 MiB of freed buffers.)
    let whole_at_once = declared.is_some_and(|length| length <= ALLOCATED_AT_ONCE as u64);
    let mut body = BytesMut::with_capacity(if whole_at_once {
        declared.map_or(0, |length| length as usize)
    } else {
        0
    });
    let mut parts: Vec<Bytes> = Vec::new();
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if received + chunk.remaining() > limit {
            return Err(BodyError::TooLarge);
        }
        hold.grow(chunk.remaining() as u64)
            .map_err(BodyError::Busy)?;
        received += chunk.remaining();
        if whole_at_once {
            append(&mut body, &mut chunk);
        } else {
            // Copied at its own size: a part sliced from the connection's read buffer
            // would keep that whole buffer for a few bytes of it.
            let mut part = BytesMut::with_capacity(chunk.remaining());
            append(&mut part, &mut chunk);
            parts.push(part.freeze());
        }
    }
    if whole_at_once {
        return Ok(body.freeze());
    }
    if parts.len() == 1 {
        return Ok(parts.pop().unwrap_or_default());
    }
    let mut joined = BytesMut::with_capacity(received);
    for part in parts {
        joined.extend_from_slice(&part);
    }
    Ok(joined.freeze())
}

/// Copies what is left of `chunk` to the end of `body`.
fn append(body: &mut BytesMut, chunk: &mut impl bytes::Buf) {
    while chunk.has_remaining() {
        let slice = chunk.chunk();
        let len = slice.len();
        body.extend_from_slice(slice);
        chunk.advance(len);
    }
}

/// The largest declared body allocated whole before it arrives ([`read_limited`]).
const ALLOCATED_AT_ONCE: usize = 1024 * 1024;

/// Whether a request with `body` is heavy by its size: worked on off the serving threads
/// ([`crate::offload`]).
pub fn is_heavy(body: &Result<Bytes, BodyError>) -> bool {
    body.as_ref()
        .is_ok_and(|body| crate::offload::is_heavy(body.len()))
}

/// Where the work on `request` with `body` runs: off the serving threads in the request's
/// tenant's turn when the body is heavy by its size, else in place.
pub fn turn(request: &Request, body: &Result<Bytes, BodyError>) -> crate::offload::Turn {
    crate::offload::Turn::of(is_heavy(body), request.caller.tenant())
}

/// Decodes a query string into its pairs, in order.
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

/// `names` with each repeat left out, in the order they first appear: the unknown query
/// parameters a warning names once each. What was seen is kept in a set, so each name
/// costs one look-up: a query of 64 KiB holds some 15,000 distinct names, and comparing
/// each with every one before it took a whole core for most of a second, credentials or
/// not.
pub fn first_seen<T: Hash + Eq>(mut names: Vec<T>) -> Vec<T> {
    let firsts: Vec<bool> = {
        let mut seen = HashSet::with_capacity(names.len());
        names.iter().map(|name| seen.insert(name)).collect()
    };
    let mut firsts = firsts.into_iter();
    // `retain` visits the names in order, once each.
    names.retain(|_| firsts.next().unwrap_or(true));
    names
}

/// Whether a query parameter's value is a whole number too large for a page number (digits
/// only, past `u32::MAX`): such a page is told the upper bound, not that it is no number.
pub fn page_too_large(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|byte| byte.is_ascii_digit())
        && value.parse::<u32>().is_err()
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`,
/// in any case, any parameters). Compared in place, without a lowercased copy: every
/// vendor request with a body asks.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            // Up to the first `;`, found by bytes: a string searcher costs more to set up
            // than this short a value takes to read.
            let end = value.bytes().position(|byte| byte == b';');
            value.get(..end.unwrap_or(value.len()))
        })
        .is_some_and(|mime| {
            let mime = mime.trim();
            let starts = |prefix: &str| {
                mime.get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            };
            let ends = |suffix: &str| {
                mime.len()
                    .checked_sub(suffix.len())
                    .and_then(|at| mime.get(at..))
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            };
            mime.eq_ignore_ascii_case("application/json")
                || (starts("application/") && ends("+json"))
        })
}

/// A JSON response with `status` and `content_type`.
pub fn json_with(
    status: StatusCode,
    content_type: &'static str,
    body: &impl Serialize,
) -> Response {
    let bytes = linkbox_contracts::json::to_vec(body).unwrap_or_else(|error| {
        tracing::error!(%error, "response did not serialize");
        b"{}".to_vec()
    });
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// An `application/json` response.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    json_with(status, "application/json", body)
}

/// A response in linkbox's own error envelope, where no vendor contract applies (the
/// control API, the documentation, paths no API claims): `{"error": {"code": "...",
/// "message": "..."}}` ([`SandboxErrorBody`]).
pub fn sandbox_error(status: StatusCode, code: &'static str, message: String) -> Response {
    json(
        status,
        &SandboxErrorBody {
            error: SandboxErrorDetail {
                code: code.to_owned(),
                message,
            },
        },
    )
}

/// A 204 with an empty body.
pub fn no_content() -> Response {
    let mut response = Response::new(Vec::<u8>::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// How deep a request's JSON may nest (objects and arrays) in the vendor APIs. A snapshot
/// wraps a link's metadata a few levels deeper, and must still read back below serde_json's
/// own limit of 128, so the control API allows [`MAX_CONTROL_JSON_DEPTH`]. [design]
pub const MAX_JSON_DEPTH: usize = 64;
/// How deep a control API request's JSON may nest: a snapshot of links whose metadata nests
/// [`MAX_JSON_DEPTH`] deep. [design]
pub const MAX_CONTROL_JSON_DEPTH: usize = MAX_JSON_DEPTH + 8;

/// Whether `body`, read as JSON text (strings skipped), nests objects and arrays deeper
/// than `limit`, without parsing it.
pub fn nests_deeper_than(body: &[u8], limit: usize) -> bool {
    // Deeper than `limit` takes more than `limit` opening brackets. Counting them is a
    // loop the compiler vectorizes, a tenth of walking the text byte by byte; nearly
    // every body holds a handful and is done with here.
    let opening = body
        .iter()
        .filter(|&&byte| byte == b'{' || byte == b'[')
        .count();
    opening > limit && json_depth(body, limit) > limit
}

/// The deepest nesting of objects and arrays in `body`, read as JSON text (strings skipped),
/// without parsing it; stops counting past `limit`.
fn json_depth(body: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in crate::bodies::outside_strings(body) {
        match byte {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The message of a body nested deeper than `limit`.
pub fn too_deep(limit: usize) -> String {
    format!(
        "The request body nests JSON objects and arrays deeper than the limit of {limit} levels"
    )
}

/// How many JSON values a vendor API request's body may hold ([`crate::bodies`]).
pub use crate::bodies::MAX_JSON_VALUES;

pub use crate::bodies::holds_more_values_than;

/// The message of a body of more than `limit` values.
pub fn too_many_values(limit: usize) -> String {
    format!(
        "The request body holds more JSON values (objects, arrays, their members and items) \
         than the limit of {limit}"
    )
}

/// At most this many `X-Linkbox-Warning` headers name a field; the rest are counted in one
/// more ("and N more ignored unknown fields"). [design]
pub const MAX_WARNINGS: usize = 20;
/// A field name longer than this is cut (with `…`) in its warning. [design]
pub const MAX_WARNING_FIELD_CHARS: usize = 100;

/// One `X-Linkbox-Warning` header per request field the vendor would have ignored silently,
/// up to [`MAX_WARNINGS`]; beyond that one header says how many more there were.
pub fn add_warnings(response: &mut Response, ignored: &[String]) {
    add_bounded(response, ignored, "ignored unknown fields", |name| {
        format!("ignored unknown field \"{name}\"")
    });
}

/// The refusal of a body sent with the `Content-Encoding` `encoding` ([`content_encoding`]),
/// in every API that refuses one.
pub fn encoding_refused(encoding: &str) -> String {
    format!(
        "Content-Encoding {encoding} is not supported: send the request body uncompressed (identity)"
    )
}

/// Whether a body holds nothing but JSON's white space (space, tab, line feed, carriage
/// return): read as no body. Any other byte, a form feed or a vertical tab among them, is
/// text a JSON parser refuses.
pub fn is_json_blank(body: &[u8]) -> bool {
    body.iter()
        .all(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The `Content-Encoding` a body was sent with, quoted and shortened to name in a refusal,
/// unless it is none or `identity`.
///
/// linkbox does not decompress request bodies (a few kilobytes of gzip inflate to the
/// 10 MiB limit, held outside what `--max-bodies-mib` counts), so an encoded body is
/// refused, naming its encoding, rather than parsed as the bytes it is (gzip read as JSON
/// is "not valid JSON"; a plain body labelled `br` was taken as plain) \[design\].
pub fn content_encoding(headers: &HeaderMap) -> Option<String> {
    // A scan of a request's few names, not a hashed look-up: this runs on every create,
    // where the look-up cost about 130 instructions and the scan costs about 30 (callgrind).
    if !headers
        .keys()
        .any(|name| name == http::header::CONTENT_ENCODING)
    {
        return None;
    }
    let values: Vec<&[u8]> = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let identity = values.iter().all(|value| {
        value
            .split(|byte| *byte == b',')
            .map(<[u8]>::trim_ascii)
            .all(|coding| coding.is_empty() || coding.eq_ignore_ascii_case(b"identity"))
    });
    if identity {
        return None;
    }
    // Quoted as sent, at most 64 bytes of it: a header may be kilobytes long.
    let named = String::from_utf8_lossy(&values.join(&b", "[..])).into_owned();
    Some(format!("{:?}", crate::drift::shorten(named, 64)))
}

/// The names of a query's parameters, each once, on an endpoint that takes none (every one
/// but the lists'): ignored, as both vendors' services ignore them, and named in
/// `X-Linkbox-Warning` as unknown body fields are, so `?expiresInMinutes=120` (M2M) or
/// `?expiresIn=3600` (Leaf) sent in the query by mistake does not pass unseen. [design]
fn unknown_query(raw: &str) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    first_seen(
        form_urlencoded::parse(raw.as_bytes())
            .map(|(name, _)| name.into_owned())
            .collect(),
    )
}

/// `response`, with a warning for each parameter of the query `raw` when it is a success
/// (as ignored body fields are named on a success only). The names are read only then: a
/// refusal, of a credential or of a body, costs nothing for a query of thousands.
pub fn warn_of(raw: &str, mut response: Response) -> Response {
    if response.status().is_success() {
        add_warnings(&mut response, &unknown_query(raw));
    }
    response
}

/// One `X-Linkbox-Warning` header per field, worded `<note>: "<field>"` (for what is not
/// an ignored field: an unknown key kept as sent, an unrequested field merged anyway), up
/// to [`MAX_WARNINGS`] as [`add_warnings`].
pub fn add_notes(response: &mut Response, note: &str, fields: &[String]) {
    // Most answers have nothing to note: their "and N more" wording is not made for them
    // (about 500 instructions of every create, callgrind).
    if fields.is_empty() {
        return;
    }
    add_bounded(response, fields, &format!("fields: {note}"), |name| {
        format!("{note}: \"{name}\"")
    });
}

/// The headers of [`add_warnings`] and [`add_notes`]: each field's name cut to
/// [`MAX_WARNING_FIELD_CHARS`] and escaped, and at most [`MAX_WARNINGS`] fields named on a
/// response in all, whatever kinds of note earlier calls added; the rest counted in one
/// "and N more <more>" (of several kinds: "and N more unknown fields").
fn add_bounded(
    response: &mut Response,
    fields: &[String],
    more: &str,
    text: impl Fn(&str) -> String,
) {
    if fields.is_empty() {
        return;
    }
    // What earlier calls added: named fields, and the count of those past the bound.
    let (mut named, mut counted) = (0, None::<usize>);
    for value in response.headers().get_all(WARNING_HEADER) {
        match value
            .to_str()
            .ok()
            .and_then(|text| text.strip_prefix("and "))
        {
            Some(rest) => {
                let earlier = rest.split(' ').next().and_then(|n| n.parse().ok());
                counted = Some(counted.unwrap_or(0) + earlier.unwrap_or(0));
            }
            None => named += 1,
        }
    }
    let room = MAX_WARNINGS.saturating_sub(named);
    let headers = response.headers_mut();
    for field in fields.iter().take(room) {
        let mut name: String = field.chars().take(MAX_WARNING_FIELD_CHARS).collect();
        if name.len() < field.len() {
            name.push('…');
        }
        let name: String = name.escape_default().collect();
        if let Ok(value) = HeaderValue::from_str(&text(&name)) {
            headers.append(WARNING_HEADER, value);
        }
    }
    let beyond = fields.len().saturating_sub(room);
    if beyond == 0 {
        return;
    }
    let line = match counted {
        None => format!("and {beyond} more {more}"),
        Some(earlier) => {
            // One count line in all: the earlier one goes, its number kept.
            let kept: Vec<HeaderValue> = headers
                .get_all(WARNING_HEADER)
                .iter()
                .filter(|value| !value.as_bytes().starts_with(b"and "))
                .cloned()
                .collect();
            headers.remove(WARNING_HEADER);
            for value in kept {
                headers.append(WARNING_HEADER, value);
            }
            format!("and {} more unknown fields", earlier + beyond)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&line) {
        headers.append(WARNING_HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fifteen thousand distinct parameter names, each sent twice: what a 64 KiB query holds.
    fn many_names() -> (Vec<String>, String) {
        let names: Vec<String> = (0..15_000).map(|n| format!("{n:03x}")).collect();
        let raw = names
            .iter()
            .chain(&names)
            .map(|name| format!("{name}=1"))
            .collect::<Vec<_>>()
            .join("&");
        (names, raw)
    }

    #[test]
    fn an_unknown_query_names_each_parameter_once_in_the_order_sent() {
        assert!(unknown_query("").is_empty());
        assert_eq!(unknown_query("b=1&a=2&b=3&c"), ["b", "a", "c"]);
        let (names, raw) = many_names();
        assert_eq!(unknown_query(&raw), names);
    }

    #[test]
    fn a_refusal_names_no_parameter_and_a_success_names_twenty_and_counts_the_rest() {
        let (_, raw) = many_names();
        let refused = warn_of(&raw, json(StatusCode::UNAUTHORIZED, &serde_json::json!({})));
        assert!(refused.headers().get(WARNING_HEADER).is_none());
        let answered = warn_of(&raw, no_content());
        let warnings: Vec<&str> = answered
            .headers()
            .get_all(WARNING_HEADER)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(warnings[0], "ignored unknown field \"000\"");
        assert_eq!(warnings[20], "and 14980 more ignored unknown fields");
    }

    #[test]
    fn a_body_is_heavy_from_the_threshold_on() {
        let of = |len: usize| Ok(Bytes::from(vec![b' '; len]));
        let heavy = crate::offload::HEAVY_BYTES;
        assert!(!is_heavy(&of(0)));
        assert!(!is_heavy(&of(heavy - 1)));
        assert!(is_heavy(&of(heavy)));
        assert!(!is_heavy(&Err(BodyError::TooLarge)));
        assert!(!is_heavy(&Err(BodyError::Unreadable)));
    }

    #[test]
    fn json_depth_counts_objects_and_arrays_but_not_strings() {
        assert_eq!(json_depth(b"1", 64), 0);
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#, 64), 3);
        assert_eq!(json_depth(br#"{"a": "\"[["}"#, 64), 1);
        let deep = "[".repeat(1000);
        assert_eq!(json_depth(deep.as_bytes(), 64), 65);
    }

    #[test]
    fn only_nesting_past_the_limit_is_too_deep() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!nests_deeper_than(nested(64).as_bytes(), 64));
        assert!(nests_deeper_than(nested(65).as_bytes(), 64));
        // Many brackets, none deep: past the count, the walk decides.
        let wide = format!("[{}1]", "[], {}, ".repeat(100));
        assert!(!nests_deeper_than(wide.as_bytes(), 64));
        // Brackets inside strings never count.
        let quoted = format!(r#"{{"a": "{}"}}"#, "[".repeat(100));
        assert!(!nests_deeper_than(quoted.as_bytes(), 64));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(65), "}".repeat(65));
        assert!(nests_deeper_than(deep_object.as_bytes(), 64));
        // Values are counted outside strings only: a long string of commas is one value.
        assert!(!holds_more_values_than(b"[1,2,3]", 3));
        assert!(holds_more_values_than(b"[1,2,3,4]", 3));
        assert!(!holds_more_values_than(br#"{"a":"x,y,z,[{:"}"#, 3));
        assert!(!holds_more_values_than(br#"{"a":"\",,,,"}"#, 3));
        // At the length where it can first hold one more, as where it cannot.
        assert!(holds_more_values_than(b"[[[[", 3));
        assert!(!holds_more_values_than(b"[[[", 3));
        assert!(!holds_more_values_than(b"", 0));
        assert!(holds_more_values_than(b"{", 0));
    }

    /// The `X-Linkbox-Warning` values of `response`, in order.
    fn warnings(response: &Response) -> Vec<&str> {
        response
            .headers()
            .get_all(WARNING_HEADER)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }

    #[test]
    fn warnings_are_folded_after_twenty_and_long_names_cut() {
        let mut response = Response::new(Default::default());
        let mut ignored: Vec<String> = (0..1000).map(|n| format!("f{n}")).collect();
        ignored[0] = "x".repeat(5000);
        add_warnings(&mut response, &ignored);
        let named = warnings(&response);
        assert_eq!(named.len(), MAX_WARNINGS + 1);
        assert!(named[0].len() < 200, "{}", named[0]);
        assert_eq!(named[1], "ignored unknown field \"f1\"");
        assert_eq!(named[MAX_WARNINGS], "and 980 more ignored unknown fields");
    }

    /// The bound is on the response, not on each kind of note: ignored fields, fields kept
    /// as sent and query parameters together name at most 20, and one line counts the rest.
    #[test]
    fn every_kind_of_note_shares_one_bound_and_one_count() {
        let mut response = Response::new(Default::default());
        let names =
            |prefix: &str| -> Vec<String> { (0..25).map(|n| format!("{prefix}{n}")).collect() };
        add_warnings(&mut response, &names("q"));
        add_notes(
            &mut response,
            "unknown field kept as sent",
            &names("userData.u"),
        );
        add_warnings(&mut response, &names("t"));
        let named = warnings(&response);
        assert_eq!(named.len(), MAX_WARNINGS + 1, "{named:?}");
        assert_eq!(named[MAX_WARNINGS], "and 55 more unknown fields");
        let mut few = Response::new(Default::default());
        add_warnings(&mut few, &names("q")[..3]);
        add_notes(
            &mut few,
            "unknown field kept as sent",
            &names("userData.u")[..2],
        );
        assert_eq!(warnings(&few).len(), 5);
    }

    fn with_content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters_and_any_case() {
        assert!(is_json(&with_content_type("application/json")));
        assert!(is_json(&with_content_type(
            "Application/JSON; charset=utf-8"
        )));
        assert!(is_json(&with_content_type("application/merge-patch+json")));
        assert!(!is_json(&with_content_type("text/plain")));
        assert!(!is_json(&with_content_type("application/jsonp")));
        assert!(is_json(&with_content_type("APPLICATION/VND.API+JSON")));
        assert!(is_json(&with_content_type(" application/json ; q=1")));
        assert!(!is_json(&with_content_type("application/json+xml")));
        assert!(!is_json(&with_content_type("text/+json")));
        assert!(!is_json(&with_content_type("+json")));
        assert!(!is_json(&with_content_type("application/")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn query_pairs_are_percent_decoded_in_order() {
        assert_eq!(
            query_pairs("a=1&referenceId=user%2012&a=2"),
            [
                ("a".into(), "1".into()),
                ("referenceId".into(), "user 12".into()),
                ("a".into(), "2".into())
            ]
        );
    }

    #[test]
    fn first_seen_keeps_each_name_once_where_it_first_appears() {
        let names = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(first_seen(names("b a b c a")), names("b a c"));
        assert_eq!(first_seen(Vec::<String>::new()), Vec::<String>::new());
        // Fifteen thousand distinct names (what a 64 KiB query holds), each sent twice.
        let many: Vec<String> = (0..15_000).map(|n| format!("{n:03x}")).collect();
        let twice: Vec<String> = many.iter().chain(many.iter().rev()).cloned().collect();
        assert_eq!(first_seen(twice), many);
    }

    /// A name compared with every one before it is fifteen thousand names' 112 million
    /// comparisons; a set compares a name only with the few that share its hash's bucket.
    #[test]
    fn first_seen_compares_each_name_with_few_others() {
        use std::cell::Cell;
        thread_local!(static COMPARED: Cell<usize> = const { Cell::new(0) });
        #[derive(Debug)]
        struct Counted(u32);
        impl Hash for Counted {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }
        impl PartialEq for Counted {
            fn eq(&self, other: &Counted) -> bool {
                COMPARED.with(|compared| compared.set(compared.get() + 1));
                self.0 == other.0
            }
        }
        impl Eq for Counted {}
        let names: Vec<Counted> = (0..15_000).chain(0..15_000).map(Counted).collect();
        let kept = first_seen(names);
        assert_eq!(kept.len(), 15_000);
        assert!(kept.iter().zip(0..).all(|(name, n)| name.0 == n));
        // Each repeat is compared with its first (15,000), and a few distinct names with
        // another whose hash shares a bucket with theirs.
        let compared = COMPARED.with(Cell::get);
        assert!(compared < 2 * 15_000, "{compared} comparisons");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_even_without_a_length() {
        let bodies = crate::bodies::Bodies::new(16);
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"12345")),
            Ok(Bytes::from_static(b"6789")),
        ]);
        assert_eq!(
            read_limited(&HeaderMap::new(), chunks, 8, &mut bodies.hold(None)).await,
            Err(BodyError::TooLarge)
        );
        let chunks =
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"1234"))]);
        let mut hold = bodies.hold(None);
        assert_eq!(
            read_limited(&HeaderMap::new(), chunks, 8, &mut hold).await,
            Ok(Bytes::from_static(b"1234"))
        );
        assert_eq!((hold.bytes(), bodies.held()), (4, 4));
        drop(hold);
        assert_eq!(bodies.held(), 0);
    }

    /// A body declared larger than what is allocated at once is read part by part and
    /// joined whole, in order, as a small one is read into one buffer.
    #[tokio::test]
    async fn a_large_body_read_in_parts_is_joined_whole_in_order() {
        let bodies = crate::bodies::Bodies::new(64);
        let parts: Vec<Vec<u8>> = (0..40u8).map(|n| vec![n; 64 * 1024 + 3]).collect();
        let whole: Vec<u8> = parts.concat();
        // Declared (past what is allocated at once), and not declared at all.
        for declared in [Some(whole.len()), None] {
            let mut headers = HeaderMap::new();
            if let Some(declared) = declared {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
            }
            let chunks = futures_util::stream::iter(
                parts
                    .iter()
                    .map(|part| Ok::<_, std::io::Error>(Bytes::from(part.clone())))
                    .collect::<Vec<_>>(),
            );
            let mut hold = bodies.hold(None);
            let read = read_limited(&headers, chunks, 10 << 20, &mut hold).await;
            assert_eq!(read.as_deref(), Ok(&whole[..]), "{declared:?}");
            assert_eq!(hold.bytes(), whole.len() as u64);
        }
        // One part, and a small declared body in several: each whole.
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(9));
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"1234")),
            Ok(Bytes::from_static(b"56789")),
        ]);
        let read = read_limited(&headers, chunks, 10, &mut bodies.hold(None)).await;
        assert_eq!(read, Ok(Bytes::from_static(b"123456789")));
    }

    #[tokio::test]
    async fn a_body_past_what_bodies_may_hold_is_refused_as_it_arrives() {
        let bodies = crate::bodies::Bodies::new(16);
        let held: Vec<crate::bodies::Hold> = (0..4)
            .map(|_| {
                let mut hold = bodies.hold(Some(crate::bodies::Share::default()));
                hold.grow(15 * 1024 * 1024 / 4).expect("room");
                hold
            })
            .collect();
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 512 * 1024])),
            Ok(Bytes::from(vec![b' '; 1024 * 1024])),
        ]);
        let mut hold = bodies.hold(Some(crate::bodies::Share::default()));
        assert_eq!(
            read_limited(&HeaderMap::new(), chunks, 10 << 20, &mut hold).await,
            Err(BodyError::Busy(crate::bodies::Refused::Full))
        );
        drop(hold);
        assert_eq!(
            bodies.held(),
            15 * 1024 * 1024,
            "what the refused body held is let go"
        );
        drop(held);
    }
}
