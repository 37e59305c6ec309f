//! The answer a fault gives instead of the real handler: its `body` as given (a JSON value,
//! or text), or — for a status without a body — the error shape of the API whose path it
//! is: on M2M paths the M2M envelope (a 429 is `RATE_LIMIT_EXCEEDED`, a 5xx
//! `INTERNAL_ERROR`, ...), on Leaf paths a Leaf problem (`application/problem+json`,
//! `error.http.<status>`), on an end user's page (`/widget/…`, `/magic-link/…`) a page
//! saying so, elsewhere linkbox's own. A 429 on a vendor path or a page always carries
//! `Retry-After`, whatever its body.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use linkbox_contracts::m2m::{ErrorCode, messages};
use serde_json::Value;
use warp::reply::Response;

use crate::control;
use crate::m2m::error::error_response;

/// Seconds a faulted 429 asks the client to wait.
const FAULT_RETRY_AFTER_SECS: u64 = 60;

/// The answer a faulted request gets.
pub(super) fn answer(path: &str, status: StatusCode, body: Option<Value>) -> Response {
    let vendor = crate::m2m::owns(path) || crate::leaf::owns(path) || crate::pages::owns(path);
    let mut response = shaped(path, status, body);
    if vendor && status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(FAULT_RETRY_AFTER_SECS),
        );
    }
    response
}

fn shaped(path: &str, status: StatusCode, body: Option<Value>) -> Response {
    // Statuses HTTP sends no body with answer with none, and say no content type.
    if matches!(status.as_u16(), 204 | 205 | 304) {
        let mut response = Response::new(Bytes::new().into());
        *response.status_mut() = status;
        return response;
    }
    match body {
        Some(Value::String(text)) => {
            let mut response = Response::new(text.into());
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Some(body) => crate::wire::json(status, &body),
        None if crate::m2m::owns(path) && !status.is_success() && !status.is_redirection() => {
            m2m_error(status)
        }
        None if crate::leaf::owns(path) && !status.is_success() && !status.is_redirection() => {
            crate::leaf::error::fault(status, path)
        }
        None if crate::pages::owns(path) && !status.is_success() && !status.is_redirection() => {
            crate::pages::fault(status)
        }
        // A success or a redirect is no error, in any API's shape: the status alone (a 200
        // on `/partner` read an "Internal server error" envelope).
        None if status.is_success() || status.is_redirection() => {
            let mut response = Response::new(Bytes::new().into());
            *response.status_mut() = status;
            response
        }
        None => control::error(
            status,
            "FAULT_INJECTED",
            "This response was injected by a fault (see GET /_sandbox/faults)".to_owned(),
        ),
    }
}

/// The M2M API's own shape for a faulted status.
fn m2m_error(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        401 => (ErrorCode::InvalidApiKey, messages::INVALID_API_KEY),
        403 => (ErrorCode::PartnerSuspended, messages::PARTNER_SUSPENDED),
        404 => (ErrorCode::ResourceNotFound, "Resource not found"),
        409 => (ErrorCode::ActiveLinkExists, messages::ACTIVE_LINK_EXISTS),
        429 => (ErrorCode::RateLimitExceeded, messages::RATE_LIMITED),
        400..=499 => (ErrorCode::InvalidRequest, "Invalid request"),
        _ => (ErrorCode::InternalError, messages::INTERNAL),
    };
    error_response(status, code, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_faulted_status_without_a_body_in_http_says_no_content_type() {
        for path in [
            "/partner/links",
            "/services/widgets/api/x",
            "/_sandbox/clock",
        ] {
            let response = answer(path, StatusCode::NO_CONTENT, None);
            assert_eq!(response.status(), 204);
            assert!(
                response.headers().get(header::CONTENT_TYPE).is_none(),
                "{path}"
            );
        }
    }

    #[test]
    fn a_faulted_success_or_redirect_without_a_body_is_its_status_alone() {
        for path in ["/partner/links", "/services/widgets/api/x", "/widget/x"] {
            for status in [StatusCode::OK, StatusCode::CREATED, StatusCode::FOUND] {
                let response = answer(path, status, None);
                assert_eq!(response.status(), status);
                assert!(
                    response.headers().get(header::CONTENT_TYPE).is_none(),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn a_faulted_m2m_429_has_the_vendor_shape_and_retry_after() {
        let response = answer("/partner/links", StatusCode::TOO_MANY_REQUESTS, None);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
    }

    #[test]
    fn a_faulted_leaf_status_is_a_leaf_problem() {
        let path = "/services/usermanagement/api/users";
        let response = answer(path, StatusCode::SERVICE_UNAVAILABLE, None);
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let response = answer("/api/authenticate", StatusCode::TOO_MANY_REQUESTS, None);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
        let custom = answer(
            "/partner/links",
            StatusCode::TOO_MANY_REQUESTS,
            Some(serde_json::json!({"custom": true})),
        );
        assert_eq!(custom.headers()[header::RETRY_AFTER], "60");
        let control = answer("/elsewhere", StatusCode::TOO_MANY_REQUESTS, None);
        assert!(control.headers().get(header::RETRY_AFTER).is_none());
    }
}
