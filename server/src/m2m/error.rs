//! Every way an M2M request can fail, and the one function that renders it in the vendor's
//! envelope: `{"success": false, "error": {"code", "message"}}`.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode, header};
use linkbox_contracts::m2m::{ErrorCode, ErrorDetail, ErrorEnvelope, WARNING_HEADER, messages};
use warp::reply::Response;

use crate::store::m2m::{KeyError, LinkError};
use crate::store::quota::StorageFull;
use crate::wire::{BodyError, json};

/// A failed M2M request: status, code and message all follow from the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{}", messages::MISSING_AUTH)]
    MissingAuth,
    #[error("{}", messages::INVALID_API_KEY)]
    InvalidApiKey,
    #[error("{}", messages::PARTNER_SUSPENDED)]
    PartnerSuspended,
    /// Open mode: the key's short partner id is another key's.
    #[error(
        "This m2m_test_ key maps to a sandbox partner id another key already uses (ids are short hashes of keys); use a different key"
    )]
    KeyCollision,
    /// Open mode: `--max-tenants` reached.
    #[error(
        "This sandbox already holds its maximum number of partners (--max-tenants); new keys are refused until the admin resets it (POST /_sandbox/reset as admin forgets every partner) or it is restarted with a higher limit. Use an existing key"
    )]
    TenantLimit,
    /// A validation failure: the first violation found.
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("{}", messages::BODY_TOO_LARGE)]
    PayloadTooLarge,
    /// A body sent with a `Content-Encoding` other than `identity` (its value, shortened).
    #[error("{}", crate::wire::encoding_refused(.0))]
    UnsupportedEncoding(String),
    /// A body past a caller's share of `--max-bodies-mib` (that many bytes).
    #[error("{}", crate::wire::past_share_message(*.0))]
    PastShare(u64),
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// A path the API serves, with a method it does not; `allowed` goes in `Allow`.
    #[error("Cannot {method} {path}: allowed methods are {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    #[error("{}", messages::ACTIVE_LINK_EXISTS)]
    ActiveLinkExists,
    #[error("{}", messages::LINK_EXPIRED)]
    LinkExpired,
    #[error("{}", messages::REFERENCE_ID_MISMATCH)]
    ReferenceIdMismatch,
    /// The window is full; `frozen` when the sandbox clock is frozen, so it opens again
    /// only when the clock moves (windows read the sandbox clock \[design\]).
    #[error("{}", messages::RATE_LIMITED)]
    RateLimited { retry_after_secs: u64, frozen: bool },
    /// The partner holds what `--max-tenant-mib` allows: a sandbox's limit, not the
    /// vendor's, answered with a status and code the vendor's clients already know.
    #[error("{0}")]
    StorageFull(StorageFull),
    /// The body could not be held ([`crate::bodies`]): a 503 with `Retry-After: 1`.
    #[error("{0}")]
    Busy(&'static str),
}

/// The note on a 429 while the sandbox clock is frozen: `Retry-After` counts its seconds,
/// which do not pass until it is moved. Windows keep reading the frozen clock \[design\]:
/// that is what makes a test of the limits exact (the contract suite's `m2m.rate-limit.*`
/// freeze it), and a test that froze it can free the window by moving it.
pub const FROZEN_WINDOW: &str = "the sandbox clock is frozen: this rate-limit window opens again only when the clock is advanced, set or unfrozen (POST /_sandbox/clock)";

impl ApiError {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::InvalidRequest(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingAuth | ApiError::InvalidApiKey | ApiError::KeyCollision => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::PartnerSuspended | ApiError::TenantLimit | ApiError::StorageFull(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::InvalidRequest(_) | ApiError::LinkExpired | ApiError::ReferenceIdMismatch => {
                StatusCode::BAD_REQUEST
            }
            ApiError::PayloadTooLarge | ApiError::PastShare(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ActiveLinkExists => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::MissingAuth => ErrorCode::Unauthorized,
            ApiError::InvalidApiKey | ApiError::KeyCollision | ApiError::TenantLimit => {
                ErrorCode::InvalidApiKey
            }
            ApiError::PartnerSuspended => ErrorCode::PartnerSuspended,
            ApiError::InvalidRequest(_)
            | ApiError::StorageFull(_)
            | ApiError::PayloadTooLarge
            | ApiError::PastShare(_)
            | ApiError::UnsupportedEncoding(_)
            | ApiError::MethodNotAllowed { .. } => ErrorCode::InvalidRequest,
            ApiError::NotFound(_) => ErrorCode::ResourceNotFound,
            ApiError::ActiveLinkExists => ErrorCode::ActiveLinkExists,
            ApiError::LinkExpired => ErrorCode::LinkExpired,
            ApiError::ReferenceIdMismatch => ErrorCode::ReferenceIdMismatch,
            ApiError::RateLimited { .. } => ErrorCode::RateLimitExceeded,
            ApiError::Busy(_) => ErrorCode::InternalError,
        }
    }

    /// The response: the envelope, plus `Retry-After` on a 429.
    pub fn into_response(self) -> Response {
        let mut response = error_response(self.status(), self.code(), self.to_string());
        match self {
            ApiError::RateLimited {
                retry_after_secs,
                frozen,
            } => {
                let headers = response.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                if frozen {
                    headers.insert(WARNING_HEADER, HeaderValue::from_static(FROZEN_WINDOW));
                }
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(&allowed) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
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

/// The vendor's error envelope with any status, code and message (faults reuse it).
pub fn error_response(status: StatusCode, code: ErrorCode, message: String) -> Response {
    json(
        status,
        &ErrorEnvelope {
            success: false,
            error: ErrorDetail { code, message },
        },
    )
}

/// Turns a handler's outcome into the response.
pub fn render(outcome: Result<Response, ApiError>) -> Response {
    outcome.unwrap_or_else(ApiError::into_response)
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> ApiError {
        match error {
            KeyError::Invalid => ApiError::InvalidApiKey,
            KeyError::Suspended => ApiError::PartnerSuspended,
            KeyError::SlugTaken => ApiError::KeyCollision,
            KeyError::TenantLimit => ApiError::TenantLimit,
            KeyError::StorageFull(full) => ApiError::StorageFull(full),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> ApiError {
        match error {
            LinkError::LinkNotFound => ApiError::NotFound(messages::LINK_NOT_FOUND.into()),
            LinkError::DataRequestNotFound => {
                ApiError::NotFound(messages::DATA_REQUEST_NOT_FOUND.into())
            }
            LinkError::ActiveLinkExists => ApiError::ActiveLinkExists,
            LinkError::Expired => ApiError::LinkExpired,
            LinkError::Revoked | LinkError::NotRevocable => {
                ApiError::invalid(messages::ONLY_ACTIVE_REVOCABLE)
            }
            LinkError::AlreadyFulfilled => ApiError::invalid(messages::DATA_REQUEST_FULFILLED),
            LinkError::ReferenceIdMismatch => ApiError::ReferenceIdMismatch,
            LinkError::StorageFull(full) => ApiError::StorageFull(full),
            LinkError::DataRequestRevoked => ApiError::invalid(
                "The data request is no longer pending: its link has been revoked",
            ),
            LinkError::NoRequestedFields(fields) => ApiError::invalid(format!(
                "The userData field must carry at least one of the requested fields: {}",
                fields.join(", ")
            )),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::PastShare(most) => ApiError::PastShare(most),
            BodyError::Unreadable => ApiError::invalid(messages::INVALID_JSON),
            BodyError::Late => ApiError::invalid(crate::wire::BODY_LATE),
            BodyError::Busy(refused) => ApiError::Busy(crate::wire::busy_message(refused)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_error_has_its_status_and_code() {
        let cases = [
            (ApiError::MissingAuth, 401, ErrorCode::Unauthorized),
            (ApiError::InvalidApiKey, 401, ErrorCode::InvalidApiKey),
            (ApiError::PartnerSuspended, 403, ErrorCode::PartnerSuspended),
            (ApiError::invalid("x"), 400, ErrorCode::InvalidRequest),
            (
                ApiError::NotFound("x".into()),
                404,
                ErrorCode::ResourceNotFound,
            ),
            (ApiError::ActiveLinkExists, 409, ErrorCode::ActiveLinkExists),
            (ApiError::LinkExpired, 400, ErrorCode::LinkExpired),
            (
                ApiError::ReferenceIdMismatch,
                400,
                ErrorCode::ReferenceIdMismatch,
            ),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                    frozen: false,
                },
                429,
                ErrorCode::RateLimitExceeded,
            ),
            (ApiError::PayloadTooLarge, 413, ErrorCode::InvalidRequest),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    /// A body linkbox has no room to hold, and one that came late, in the vendor's envelope.
    #[test]
    fn a_body_not_held_is_a_503_that_says_when_to_retry_and_a_late_one_a_400() {
        let busy = ApiError::from(BodyError::Busy(crate::bodies::Refused::CallerFull));
        assert_eq!(
            (busy.status().as_u16(), busy.code()),
            (503, ErrorCode::InternalError)
        );
        assert!(busy.to_string().contains("--max-bodies-mib"), "{busy}");
        let response = busy.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let late = ApiError::from(BodyError::Late);
        assert_eq!(
            (late.status().as_u16(), late.code()),
            (400, ErrorCode::InvalidRequest)
        );
        assert!(late.to_string().contains("30 seconds"), "{late}");
    }

    #[test]
    fn a_429_says_when_to_retry() {
        let response = ApiError::RateLimited {
            retry_after_secs: 17,
            frozen: false,
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "17");
        assert!(response.headers().get(WARNING_HEADER).is_none());
    }

    /// `Retry-After` counts seconds of the sandbox clock: while it is frozen they do not
    /// pass, and the 429 says so.
    #[test]
    fn a_429_under_a_frozen_clock_says_the_window_waits_for_the_clock() {
        let response = ApiError::RateLimited {
            retry_after_secs: 44,
            frozen: true,
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "44");
        let warning = response.headers()[WARNING_HEADER]
            .to_str()
            .unwrap_or_default();
        assert!(warning.contains("frozen"), "{warning}");
        assert!(warning.contains("advanced"), "{warning}");
    }
}
