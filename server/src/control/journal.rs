//! `GET|DELETE /_sandbox/requests`: read and clear the request journal ([`crate::journal`]).
//! Control requests (`/_sandbox/...`) are not recorded, so inspecting the journal does not
//! fill it. Each tenant sees and clears only its own entries; admin sees all of them.

use http::StatusCode;
use linkbox_contracts::sandbox::JournalPage;
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::journal::JournalFilter;
use crate::wire::{Request, no_content, query_pairs};

/// GET /_sandbox/requests?method=&path=&status=
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

/// DELETE /_sandbox/requests
pub fn clear(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    request.app.journal.clear(scope.slug());
    Ok(no_content())
}

/// The journal filter a query string asks for.
fn filter(query: &str) -> Result<JournalFilter, ControlError> {
    let mut filter = JournalFilter::default();
    for (name, value) in query_pairs(query) {
        match name.as_str() {
            "method" => filter.method = Some(value),
            "path" => filter.path = Some(value),
            "status" => {
                let ok = value.len() == 3
                    && (value.bytes().all(|b| b.is_ascii_digit())
                        || (value.as_bytes()[0].is_ascii_digit() && value.ends_with("xx")));
                if !ok {
                    return Err(ControlError::invalid(
                        "The status filter must be a status code like 404 or a class like 4xx",
                    ));
                }
                filter.status = Some(value);
            }
            other => {
                return Err(ControlError::invalid(format!(
                    "Unknown filter {other:?}: use method, path or status"
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
        assert!(filter("status=abc").is_err());
        assert!(filter("colour=red").is_err());
    }
}
