//! Every way a Leaf request can fail, and the one function that renders it in JHipster's
//! problem format (`application/problem+json`), with the request's path.

use std::borrow::Cow;

use http::{HeaderValue, Method, StatusCode, header};
use linkbox_contracts::leaf::{
    CONSTRAINT_VIOLATION, FieldError, PROBLEM_CONTENT_TYPE, PROBLEM_WITH_MESSAGE, Problem,
    VALIDATION_MESSAGE, http_message, messages,
};
use warp::reply::Response;

use crate::store::leaf::LeafError;
use crate::wire::{BodyError, json_with};

/// A failed Leaf request: status, title and detail all follow from the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or not a `Bearer` authorization.
    #[error("{}", messages::FULL_AUTH_REQUIRED)]
    MissingToken,
    /// A token that does not verify: malformed, forged, foreign or of an unknown account.
    #[error("{}", messages::INVALID_TOKEN)]
    InvalidToken,
    #[error("{}", messages::EXPIRED_TOKEN)]
    ExpiredToken,
    #[error("{}", messages::BAD_CREDENTIALS)]
    BadCredentials,
    /// Open mode: `--max-tenants` accounts exist; a new username is refused.
    #[error(transparent)]
    AccountLimit(#[from] crate::store::leaf::AccountLimit),
    /// The account holds what `--max-tenant-mib` allows.
    #[error(transparent)]
    StorageFull(#[from] crate::store::quota::StorageFull),
    /// A body that breaks field rules: every violation, in field order.
    #[error("{} ({} violations)", messages::METHOD_ARGUMENT_NOT_VALID, .0.len())]
    Invalid(Vec<FieldError>),
    /// A request that cannot be read at all (not JSON, not an object, bad query).
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    #[error("Content type '{0}' not supported")]
    UnsupportedMediaType(String),
    #[error("{}", messages::BODY_TOO_LARGE)]
    PayloadTooLarge,
    /// A body past a caller's share of `--max-bodies-mib` (that many bytes).
    #[error("{}", crate::wire::past_share_message(*.0))]
    PastShare(u64),
    /// The body could not be held ([`crate::bodies`]): a 503 with `Retry-After: 1`.
    #[error("{0}")]
    Busy(&'static str),
    /// A user create whose body carries an `id`: ids are minted, never chosen.
    #[error("{}", messages::ID_EXISTS)]
    IdExists,
    #[error("{}", messages::LEAF_USER_NOT_FOUND)]
    UserNotFound,
    #[error("{}", messages::MAGIC_LINK_NOT_FOUND)]
    LinkNotFound,
    /// No endpoint at this path.
    #[error("No endpoint {method} {path}")]
    NoEndpoint { method: Method, path: String },
    /// The path exists, but not with this method.
    #[error("Request method '{method}' not supported")]
    MethodNotAllowed { method: Method, allow: String },
}

impl ApiError {
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::BadRequest(detail.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken
            | ApiError::InvalidToken
            | ApiError::ExpiredToken
            | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::AccountLimit(_) | ApiError::StorageFull(_) => StatusCode::FORBIDDEN,
            ApiError::Invalid(_) | ApiError::BadRequest(_) | ApiError::IdExists => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge | ApiError::PastShare(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UserNotFound | ApiError::LinkNotFound | ApiError::NoEndpoint { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ApiError::MissingToken
            | ApiError::InvalidToken
            | ApiError::ExpiredToken
            | ApiError::BadCredentials => messages::UNAUTHORIZED,
            ApiError::AccountLimit(_) | ApiError::StorageFull(_) => messages::FORBIDDEN,
            ApiError::Invalid(_) => messages::METHOD_ARGUMENT_NOT_VALID,
            ApiError::BadRequest(_) => messages::BAD_REQUEST,
            ApiError::IdExists => messages::ID_EXISTS,
            ApiError::UnsupportedMediaType(_) => messages::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge | ApiError::PastShare(_) => messages::PAYLOAD_TOO_LARGE,
            ApiError::Busy(_) => "Service Unavailable",
            ApiError::UserNotFound => messages::LEAF_USER_NOT_FOUND,
            ApiError::LinkNotFound => messages::MAGIC_LINK_NOT_FOUND,
            ApiError::NoEndpoint { .. } => messages::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => messages::METHOD_NOT_ALLOWED,
        }
    }

    /// The problem body for a request to `path`.
    pub fn problem(&self, path: &str) -> Problem {
        let status = self.status().as_u16();
        let (kind, message, field_errors) = match self {
            ApiError::Invalid(errors) => (
                CONSTRAINT_VIOLATION,
                VALIDATION_MESSAGE.to_owned(),
                Some(errors.clone()),
            ),
            ApiError::IdExists => (
                PROBLEM_WITH_MESSAGE,
                messages::ID_EXISTS_KEY.to_owned(),
                None,
            ),
            _ => (PROBLEM_WITH_MESSAGE, http_message(status), None),
        };
        Problem {
            kind: kind.to_owned(),
            title: self.title().to_owned(),
            status,
            detail: self.to_string(),
            path: path.to_owned(),
            message,
            field_errors,
        }
    }

    /// The response: the problem, plus `Allow` on a 405 and `WWW-Authenticate` on a 401.
    pub fn into_response(self, path: &str) -> Response {
        let mut response = json_with(self.status(), PROBLEM_CONTENT_TYPE, &self.problem(path));
        match &self {
            ApiError::MethodNotAllowed { allow, .. } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
            ApiError::MissingToken | ApiError::InvalidToken | ApiError::ExpiredToken => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Busy(_) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

/// The Leaf problem for an injected fault's `status` on `path` (no handler ran): title the
/// status's reason phrase, message `error.http.<status>`.
pub fn fault(status: StatusCode, path: &str) -> Response {
    problem_with(
        status,
        path,
        "This response was injected by a fault (see GET /_sandbox/faults)".to_owned(),
    )
}

/// A Leaf problem that no handler produced (a fault, an unreachable shadow upstream): title
/// the status's reason phrase, message `error.http.<status>`, and `detail`.
pub fn problem_with(status: StatusCode, path: &str, detail: String) -> Response {
    let problem = Problem {
        kind: PROBLEM_WITH_MESSAGE.to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        path: path.to_owned(),
        message: http_message(status.as_u16()),
        field_errors: None,
    };
    json_with(status, PROBLEM_CONTENT_TYPE, &problem)
}

/// Turns a handler's outcome for a request to `path` into the response.
pub fn render(path: &str, outcome: Result<Response, ApiError>) -> Response {
    outcome.unwrap_or_else(|error| error.into_response(path))
}

impl From<LeafError> for ApiError {
    fn from(error: LeafError) -> ApiError {
        match error {
            LeafError::UserNotFound | LeafError::UserDeleted => ApiError::UserNotFound,
            LeafError::StorageFull(full) => ApiError::StorageFull(full),
            LeafError::LinkNotFound | LeafError::LinkExpired | LeafError::LinkUsedUp => {
                ApiError::LinkNotFound
            }
            LeafError::ExternalIdTaken => ApiError::Invalid(vec![FieldError {
                object_name: linkbox_contracts::leaf::objects::LEAF_USER.to_owned(),
                field: "externalId".to_owned(),
                message: messages::EXTERNAL_ID_TAKEN.to_owned(),
            }]),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::PastShare(most) => ApiError::PastShare(most),
            BodyError::Unreadable => ApiError::bad_request(messages::UNREADABLE_BODY),
            BodyError::Late => ApiError::bad_request(crate::wire::BODY_LATE),
            BodyError::Busy(refused) => ApiError::Busy(crate::wire::busy_message(refused)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status_and_title() {
        let cases = [
            (ApiError::MissingToken, 401, messages::UNAUTHORIZED),
            (ApiError::ExpiredToken, 401, messages::UNAUTHORIZED),
            (ApiError::BadCredentials, 401, messages::UNAUTHORIZED),
            (
                ApiError::Invalid(Vec::new()),
                400,
                messages::METHOD_ARGUMENT_NOT_VALID,
            ),
            (ApiError::bad_request("x"), 400, messages::BAD_REQUEST),
            (ApiError::IdExists, 400, messages::ID_EXISTS),
            (
                ApiError::UnsupportedMediaType("text/plain".into()),
                415,
                messages::UNSUPPORTED_MEDIA_TYPE,
            ),
            (ApiError::PayloadTooLarge, 413, messages::PAYLOAD_TOO_LARGE),
            (ApiError::UserNotFound, 404, "Leaf user not found"),
            (ApiError::LinkNotFound, 404, messages::MAGIC_LINK_NOT_FOUND),
            (
                ApiError::MethodNotAllowed {
                    method: Method::PATCH,
                    allow: "GET".into(),
                },
                405,
                messages::METHOD_NOT_ALLOWED,
            ),
        ];
        for (error, status, title) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.title(), title, "{error:?}");
        }
    }

    /// A body linkbox has no room to hold is a 503 problem saying when to retry.
    #[test]
    fn a_body_not_held_is_a_503_problem_that_says_when_to_retry() {
        let busy = ApiError::from(BodyError::Busy(crate::bodies::Refused::Full));
        assert_eq!(busy.status().as_u16(), 503);
        let problem = busy.problem("/api/authenticate");
        assert_eq!(problem.title, "Service Unavailable");
        assert!(
            problem.detail.contains("--max-bodies-mib"),
            "{}",
            problem.detail
        );
        let response = busy.into_response("/api/authenticate");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            ApiError::from(BodyError::Late).status().as_u16(),
            400,
            "a late body"
        );
    }

    #[test]
    fn a_validation_problem_lists_its_field_errors() {
        let problem = ApiError::Invalid(vec![FieldError {
            object_name: "o".into(),
            field: "expiresIn".into(),
            message: "m".into(),
        }])
        .problem("/p");
        assert_eq!(problem.kind, CONSTRAINT_VIOLATION);
        assert_eq!(problem.message, VALIDATION_MESSAGE);
        assert_eq!(problem.field_errors.map(|errors| errors.len()), Some(1));
        let other = ApiError::LinkNotFound.problem("/p");
        assert_eq!(other.kind, PROBLEM_WITH_MESSAGE);
        assert_eq!(other.message, "error.http.404");
        assert_eq!(other.path, "/p");
        assert!(other.field_errors.is_none());
    }
}
