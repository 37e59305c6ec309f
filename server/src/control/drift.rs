//! `GET|DELETE /_sandbox/drift`: shadow mode's drift report ([`crate::drift`]). Each tenant
//! reads and clears only the differences its own requests showed; the admin every tenant's,
//! merged. `?format=junit` answers JUnit XML (one test case per endpoint and rule) for a CI
//! step to publish; `format=json` (the default) the report as JSON.

use http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::wire::{Request, no_content};

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Junit,
}

/// GET /_sandbox/drift?format=json|junit
pub fn report(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let format = format(&request.query)?;
    let report = request.app.drift.report(scope.slug());
    Ok(match format {
        Format::Json => crate::wire::json(StatusCode::OK, &report),
        Format::Junit => {
            let mut response = Response::new(crate::drift::junit(&report).into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            response
        }
    })
}

/// DELETE /_sandbox/drift
pub fn clear(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    super::error::no_query(
        &request.query,
        "DELETE /_sandbox/drift takes none, and clears the whole report the caller sees",
    )?;
    request.app.drift.clear(scope.slug());
    Ok(no_content())
}

fn format(query: &str) -> Result<Format, ControlError> {
    let mut format = Format::Json;
    for (name, value) in super::error::once_each(query)? {
        match (name.as_str(), value.as_str()) {
            ("format", "json") => format = Format::Json,
            ("format", "junit") => format = Format::Junit,
            ("format", other) => {
                return Err(ControlError::invalid(format!(
                    "Unknown format {other:?}: use json or junit"
                )));
            }
            (other, _) => {
                return Err(ControlError::invalid(format!(
                    "Unknown parameter {other:?}: the drift report takes only format"
                )));
            }
        }
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_json_by_default_junit_on_request_and_nothing_else() {
        assert_eq!(format("").ok(), Some(Format::Json));
        assert_eq!(format("format=junit").ok(), Some(Format::Junit));
        assert_eq!(format("format=json").ok(), Some(Format::Json));
        assert!(format("format=xml").is_err());
        assert!(format("colour=red").is_err());
        assert!(format("format=json&format=junit").is_err());
    }
}
