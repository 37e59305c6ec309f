//! `PUT /partner/data-requests/{dataRequestId}`: the partner answers a data request with the
//! user data it asked for.

use bytes::Bytes;
use http::StatusCode;
use warp::reply::Response;

use super::auth::{Quota, authorize};
use super::error::ApiError;
use super::{success, validate};
use crate::wire::{BodyError, Request};

/// PUT /partner/data-requests/{dataRequestId}
pub fn fulfil(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let fulfil = validate::fulfil(validate::json_body(&request.headers, body)?)?;
    let fulfilled = partner.fulfil_data_request(
        request.param("dataRequestId"),
        &fulfil.reference_id,
        fulfil.user_data,
        request.app.clock.now(),
    )?;
    Ok(success(StatusCode::OK, fulfilled, &fulfil.ignored))
}
