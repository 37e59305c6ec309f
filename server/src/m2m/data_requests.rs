//! `PUT /partner/data-requests/{dataRequestId}`: the partner answers a data request with the
//! user data it asked for. A revoked link's requests are over (refused like an expired
//! link's); a `userData` with none of the requested fields is a 400 naming them; fields it
//! carries beyond those asked for are merged, as the vendor merges, and named in
//! `X-Linkbox-Warning` with their `userData.` dot path.

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
    let (fulfilled, unrequested) = partner.fulfil_data_request(
        request.param("dataRequestId"),
        &fulfil.reference_id,
        fulfil.user_data,
        request.app.clock.now(),
    )?;
    let unrequested: Vec<String> = unrequested
        .into_iter()
        .filter(|path| !fulfil.ignored.contains(path))
        .collect();
    let mut response = success(StatusCode::OK, fulfilled, &fulfil.ignored);
    crate::wire::add_notes(&mut response, "not requested, merged anyway", &unrequested);
    Ok(response)
}
