//! `GET|DELETE /_sandbox/requests`: read and forget the request journal's entries, all of
//! them or those one set of filters matches, the same for both ([`crate::journal`]);
//! `POST /_sandbox/requests/verify`: check it holds what a test expects. Control requests
//! (`/_sandbox/...`) are not recorded, so inspecting the journal does not fill it. Each
//! tenant sees, clears and verifies only its own entries; admin all of them.
//!
//! Verification answers `200 {"matched": N}` when the count holds and `409` with the error
//! envelope, `matched` and up to five `nearMisses` (the requests that met the most
//! criteria, newest first among equals, each with the criteria it missed) when it does not.
//! Without `count` it expects at least one match; `count` takes exactly one of `exactly`,
//! `atLeast`, `atMost`.

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{
    JournalPage, SandboxErrorDetail, VerifyCount, VerifyFailure, VerifyRequest, VerifyResult, codes,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warp::reply::Response;

use super::error::{ControlError, json_or_default};
use super::scope;
use crate::journal::{Expectation, JournalFilter};
use crate::wire::{BodyError, Request, no_content};

/// GET /_sandbox/requests?method=&path=&status=&bodyContains=&header=&tenant=&since=
pub fn list(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let filter = filter(&request.query)?;
    let journal = &request.app.journal;
    Ok(crate::wire::json(
        StatusCode::OK,
        &JournalPage {
            requests: journal.list(&filter, scope.slug()),
            capacity: journal.capacity(),
        },
    ))
}

/// DELETE /_sandbox/requests?method=&path=&status=&bodyContains=&header=&tenant=&since=
/// forgets the entries the caller may see that the filters match (all of them without one).
pub fn clear(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let filter = filter(&request.query)?;
    request.app.journal.forget(&filter, scope.slug());
    Ok(no_content())
}

/// POST /_sandbox/requests/verify
pub fn verify(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let verify: VerifyRequest = json_or_default(body)?;
    let (bound, holds, wanted): (String, fn(u64, u64) -> bool, u64) = match verify.count {
        None => (String::from("at least 1"), |found, n| found >= n, 1),
        Some(VerifyCount {
            exactly: Some(n),
            at_least: None,
            at_most: None,
        }) => (format!("exactly {n}"), |found, n| found == n, n),
        Some(VerifyCount {
            exactly: None,
            at_least: Some(n),
            at_most: None,
        }) => (format!("at least {n}"), |found, n| found >= n, n),
        Some(VerifyCount {
            exactly: None,
            at_least: None,
            at_most: Some(n),
        }) => (format!("at most {n}"), |found, n| found <= n, n),
        Some(_) => {
            return Err(ControlError::invalid(
                "The count field must hold exactly one of exactly, atLeast, atMost",
            ));
        }
    };
    if let Some(method) = &verify.method {
        readable_method(method, "method field")?;
    }
    if let Some(path) = &verify.path {
        readable_path(path, "path field")?;
    }
    let expectation = Expectation {
        method: verify.method,
        path: verify.path,
        body_contains: verify.body_contains,
        body_json: verify.body_json.map(serde_json::Value::Object),
    };
    let (matched, near_misses) = request.app.journal.verify(&expectation, scope.slug());
    if holds(matched, wanted) {
        return Ok(crate::wire::json(StatusCode::OK, &VerifyResult { matched }));
    }
    Ok(crate::wire::json(
        StatusCode::CONFLICT,
        &VerifyFailure {
            error: SandboxErrorDetail {
                code: codes::VERIFICATION_FAILED.to_owned(),
                message: format!(
                    "Expected {bound} matching request{}, found {matched}",
                    if wanted == 1 { "" } else { "s" }
                ),
            },
            matched,
            near_misses,
        },
    ))
}

/// `method` if it is an HTTP method (in any case), else the 400 naming `what`: the same on
/// a `verify` and on a list's or delete's filter.
fn readable_method(method: &str, what: &str) -> Result<(), ControlError> {
    if http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err() {
        return Err(ControlError::invalid(format!(
            "The {what} must be an HTTP method, like GET"
        )));
    }
    Ok(())
}

/// `path` if it starts with `/` (a path, or a prefix ending in `*`), else the 400 naming
/// `what`: the same on a `verify` and on a list's or delete's filter.
fn readable_path(path: &str, what: &str) -> Result<(), ControlError> {
    if !path.starts_with('/') {
        return Err(ControlError::invalid(format!(
            "The {what} must start with /, like /partner/links or /partner/links/*"
        )));
    }
    Ok(())
}

/// The journal filter a query string asks for, of a list or of a delete: every filter
/// reads the same on both, and one it does not know, or one given twice (which would
/// otherwise keep one value without a word, and a `DELETE` forget less than asked), is
/// refused, named.
fn filter(query: &str) -> Result<JournalFilter, ControlError> {
    let mut filter = JournalFilter::default();
    for (name, value) in super::error::once_each(query)? {
        match name.as_str() {
            "method" => {
                readable_method(&value, "method filter")?;
                filter.method = Some(value);
            }
            "path" => {
                readable_path(&value, "path filter")?;
                filter.path = Some(value);
            }
            "status" => {
                // A status linkbox can answer: 100 to 599, or a class 1xx to 5xx.
                let ok = match value.as_bytes() {
                    [b'1'..=b'5', rest @ ..] => {
                        rest == b"xx" || (rest.len() == 2 && rest.iter().all(u8::is_ascii_digit))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(ControlError::invalid(
                        "The status filter must be a status code from 100 to 599 like 404, or a \
                         class from 1xx to 5xx like 4xx",
                    ));
                }
                filter.status = Some(value);
            }
            "bodyContains" => filter.body_contains = Some(value),
            "header" => {
                let Some((name, header)) = value.split_once(':') else {
                    return Err(ControlError::invalid(
                        "The header filter must be name:value, like content-type:application/json",
                    ));
                };
                let name = name.trim().to_ascii_lowercase();
                if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(ControlError::invalid(
                        "The header filter must start with a header name, like content-type:application/json",
                    ));
                }
                filter.header = Some((name, header.trim().to_owned()));
            }
            "tenant" if value.is_empty() => {
                return Err(ControlError::invalid(
                    "The tenant filter must name a tenant, as the entries' tenant field does",
                ));
            }
            "tenant" => filter.tenant = Some(value),
            "since" => {
                // A `+` sent bare in a query string reads as a space: `…T10:00:00+01:00`
                // is meant, and no RFC 3339 time holds a space.
                let value = value.replace(' ', "+");
                let since = OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| {
                    ControlError::invalid(
                        "The since filter must be an RFC 3339 time, like 2026-12-01T10:00:00Z",
                    )
                })?;
                filter.since = Some(since);
            }
            other => {
                return Err(ControlError::invalid(format!(
                    "Unknown filter {other:?}: use method, path, status, bodyContains, header, tenant or since"
                )));
            }
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::journal::tests::request;

    #[test]
    fn filters_match_method_path_prefix_and_status_class() {
        let journal = Journal::new(10);
        journal.record(request("/partner/links", 201, None));
        journal.record(request("/partner/links/x", 404, None));
        journal.record(request("/other", 404, None));
        let parsed = |query: &str| filter(query).expect("valid filter");
        assert_eq!(journal.list(&parsed("status=4xx"), None).len(), 2);
        assert_eq!(journal.list(&parsed("path=/partner/*"), None).len(), 2);
        assert_eq!(
            journal
                .list(&parsed("path=/partner/*&status=404&method=get"), None)
                .len(),
            1
        );
        assert_eq!(journal.list(&parsed("method=POST"), None).len(), 0);
        for refused in [
            "abc", "9xx", "0xx", "600", "099", "4x", "4xxx", "40", "4045", "x4x",
        ] {
            assert!(filter(&format!("status={refused}")).is_err(), "{refused}");
        }
        for accepted in ["1xx", "5xx", "100", "599", "418"] {
            assert!(filter(&format!("status={accepted}")).is_ok(), "{accepted}");
        }
        assert!(filter("colour=red").is_err());
        // What a verify refuses, a list's or delete's filter refuses too.
        for unreadable in [
            "method=",
            "method=GE%20T",
            "path=partner",
            "path=",
            "tenant=",
        ] {
            assert!(filter(unreadable).is_err(), "{unreadable}");
        }
        // A `+` sent bare reads as a space; the time meant is taken.
        for since in ["2026-12-07T02:00:00+01:00", "2026-12-07T02:00:00%2B01:00"] {
            let parsed = filter(&format!("since={since}")).expect(since);
            assert_eq!(
                parsed.since.map(OffsetDateTime::unix_timestamp),
                Some(1_796_605_200),
                "{since}"
            );
        }
        // A filter twice is refused, naming it: neither value is quietly dropped.
        for twice in [
            "path=/a&path=/b",
            "status=4xx&status=2xx",
            "method=GET&method=get",
        ] {
            let refused = filter(twice).map(|_| ()).expect_err(twice);
            assert!(
                refused.to_string().contains("given twice"),
                "{twice}: {refused}"
            );
        }
    }
}
