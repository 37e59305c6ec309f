//! `GET|DELETE /_sandbox/drift`: shadow mode's drift report ([`crate::drift`]). Each tenant
//! reads and clears only the differences its own requests showed; the admin every tenant's,
//! merged. `GET /_sandbox/drift/junit` answers it as JUnit XML (one test case per endpoint
//! and rule) for a CI step to publish; `GET /_sandbox/drift` as JSON.
//!
//! JUnit has a path of its own so that each operation of the OpenAPI document has one
//! answer a generated client can read: given as `?format=junit` alone, the one `getDrift`
//! of two content types broke both generated clients, which read its XML as JSON. The query
//! still works for scripts that use it (`format=json|junit`), and is not in the document.

use http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::wire::{Request, no_content};

/// The report's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    /// JUnit XML as `?format=junit` has always answered it: `application/xml`.
    Junit,
    /// JUnit XML at its own path: `text/xml`, which every client generator reads as text
    /// (openapi-python-client reads `text/*` as a string, and has no reader for
    /// `application/xml`: it left the operation's answer out).
    JunitText,
}

/// GET /_sandbox/drift (`?format=json|junit`, kept for scripts)
pub fn report(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let format = format(&request.query)?;
    Ok(answer(request, scope.slug(), format))
}

/// GET /_sandbox/drift/junit
pub fn junit(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    super::error::no_query(
        &request.query,
        "GET /_sandbox/drift/junit takes none (GET /_sandbox/drift is the report as JSON)",
    )?;
    Ok(answer(request, scope.slug(), Format::JunitText))
}

fn answer(request: &Request, tenant: Option<&str>, format: Format) -> Response {
    let report = request.app.drift.report(tenant);
    let content_type = match format {
        Format::Json => return crate::wire::json(StatusCode::OK, &report),
        Format::Junit => "application/xml; charset=utf-8",
        Format::JunitText => "text/xml; charset=utf-8",
    };
    let mut response = Response::new(crate::drift::junit(&report).into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
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
