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
    JournalPage, MAX_JOURNAL_PAGE, SandboxErrorDetail, VerifyCount, VerifyFailure, VerifyRequest,
    VerifyResult, codes,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warp::reply::Response;

use super::error::{ControlError, json_or_default};
use super::scope;
use crate::journal::{Expectation, JournalFilter};
use crate::wire::{BodyError, Request, no_content};

/// GET /_sandbox/requests?method=&path=&status=&bodyContains=&header=&tenant=&since=
/// &limit=&before=: the filters' matches, newest first, every one or a page at a time.
pub fn list(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let (filter, page) = filter_and_page(&request.query, true)?;
    let journal = &request.app.journal;
    let (requests, total, next_before) =
        journal.page(&filter, scope.slug(), page.before, page.limit);
    Ok(crate::wire::json(
        StatusCode::OK,
        &JournalPage {
            requests,
            capacity: journal.capacity(),
            total,
            next_before,
        },
    ))
}

/// Where a page of `GET /_sandbox/requests` starts and how long it is.
struct Page {
    /// Only entries with a lower `seq`.
    before: Option<u64>,
    limit: usize,
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
    filter_and_page(query, false).map(|(filter, _)| filter)
}

/// The filters of `query`, and with `paged` (a `GET`'s list) its `limit` and `before`,
/// which anything else refuses as it refuses an unknown filter.
fn filter_and_page(query: &str, paged: bool) -> Result<(JournalFilter, Page), ControlError> {
    let mut filter = JournalFilter::default();
    let mut page = Page {
        before: None,
        limit: usize::MAX,
    };
    for (name, value) in super::error::once_each(query)? {
        match name.as_str() {
            "limit" if paged => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=MAX_JOURNAL_PAGE).contains(limit))
                    .ok_or_else(|| {
                        ControlError::invalid(format!(
                            "The limit parameter must be a whole number from 1 to {MAX_JOURNAL_PAGE}"
                        ))
                    })?;
            }
            "before" if paged => {
                page.before = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|before| *before >= 1)
                        .ok_or_else(|| {
                            ControlError::invalid(
                                "The before parameter must be a request's seq, a whole number \
                                 from 1, as nextBefore gives it",
                            )
                        })?,
                );
            }
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
            "limit" | "before" => {
                return Err(ControlError::invalid(format!(
                    "The {name} parameter pages a GET only: a DELETE forgets every entry its \
                     filters match"
                )));
            }
            // The same words on a GET and a DELETE: both read the same filters.
            other => {
                return Err(ControlError::invalid(format!(
                    "Unknown filter {other:?}: use method, path, status, bodyContains, header, \
                     tenant or since (and to page a GET, limit and before)"
                )));
            }
        }
    }
    Ok((filter, page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::journal::tests::request;

    /// A list reads every match, or a page at a time: `limit`, then `before` the page's
    /// `nextBefore`, with the total on every page; a delete takes neither.
    #[test]
    fn a_list_pages_through_the_matches_and_a_delete_takes_no_page() {
        let journal = Journal::new(10);
        for n in 0..5 {
            journal.record(request(&format!("/partner/links/{n}"), 404, None));
        }
        journal.record(request("/other", 200, None));
        let page = |query: &str| {
            let (filter, page) = filter_and_page(query, true).expect("valid");
            journal.page(&filter, None, page.before, page.limit)
        };
        let paths = |entries: &[linkbox_contracts::sandbox::JournalEntry]| {
            entries
                .iter()
                .map(|entry| entry.path.clone())
                .collect::<Vec<_>>()
        };
        let (all, total, next) = page("status=404");
        assert_eq!((all.len(), total, next), (5, 5, None));
        let (first, total, next) = page("status=404&limit=2");
        assert_eq!(paths(&first), ["/partner/links/4", "/partner/links/3"]);
        assert_eq!((total, next), (5, Some(first[1].seq)));
        let before = next.expect("more");
        let (second, _, next) = page(&format!("status=404&limit=2&before={before}"));
        assert_eq!(paths(&second), ["/partner/links/2", "/partner/links/1"]);
        let (last, total, next) = page(&format!(
            "status=404&limit=2&before={}",
            next.expect("more")
        ));
        assert_eq!(
            (paths(&last), total, next),
            (vec!["/partner/links/0".to_owned()], 5, None)
        );
        for refused in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "before=0",
            "before=-1",
            "limit=2&limit=3",
        ] {
            assert!(filter_and_page(refused, true).is_err(), "{refused}");
        }
        for paging in ["limit=2", "before=3"] {
            let refused = filter(paging).expect_err("a delete takes no page");
            assert!(
                format!("{refused:?}").contains("pages a GET only"),
                "{refused:?}"
            );
        }
    }

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
