//! `PUT /partner/data-requests/{dataRequestId}`: the partner answers a data request with the
//! user data it asked for.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use linkbox_contracts::m2m::MAX_BODY_BYTES;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::{Quota, authorize};
use super::error::{ApiError, render};
use super::{success, validate};
use crate::app::App;
use crate::http::{BodyError, body};

/// PUT /partner/data-requests/{dataRequestId}
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("data-requests" / String)
        .and(warp::put())
        .and(warp::any().map(move || app.clone()))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY_BYTES))
        .map(
            |id: String, app: App, headers: HeaderMap, body: Result<Bytes, BodyError>| {
                render(fulfil(&app, &headers, &id, body))
            },
        )
        .boxed()
}

fn fulfil(
    app: &App,
    headers: &HeaderMap,
    data_request_id: &str,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::Other)?;
    let request = validate::fulfil(validate::json_body(headers, body)?)?;
    let fulfilled = partner.fulfil_data_request(
        data_request_id,
        &request.reference_id,
        request.user_data,
        app.clock.now(),
    )?;
    Ok(success(StatusCode::OK, fulfilled, &request.ignored))
}
