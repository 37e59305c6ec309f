//! `/partner/links`: create, list, detail and revoke.

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::m2m::{LinkPage, Pagination};
use warp::reply::Response;

use super::auth::{Quota, authorize, materialize};
use super::error::ApiError;
use super::{success, validate};
use crate::ops::events;
use crate::wire::{BodyError, Request};

/// POST /partner/links
pub fn create(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ApiError> {
    let app = &request.app;
    let partner = authorize(request, Quota::CreateLink)?;
    let body = validate::create_body(&request.headers, body)?;
    let mut created = validate::create_link(body, &app.settings.flows, &app.settings.default_flow)?;
    // The store keeps the metadata as text; the event takes the tree itself.
    let metadata = created.link.metadata.take();
    let callback_url = created.link.callback_url.clone();
    let partner = materialize(request, &partner)?;
    let now = app.clock.now();
    let link = partner.create_link_lent(created.link, metadata.as_ref(), now)?;
    let response = success(StatusCode::CREATED, &link, &created.ignored);
    // The event takes the link's texts the response no longer needs.
    events::link_created(app, &partner, link, metadata, callback_url, now);
    Ok(response)
}

/// GET /partner/links
pub fn list(request: &Request) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let query = validate::list_links(&request.query)?;
    let (items, total) = partner.list_links(
        &query.filter,
        query.page,
        query.limit,
        request.app.clock.now(),
    );
    let page = LinkPage {
        items,
        pagination: Pagination {
            page: query.page,
            limit: query.limit,
            total,
            total_pages: total.div_ceil(u64::from(query.limit)),
        },
    };
    Ok(success(StatusCode::OK, page, &query.ignored))
}

/// GET /partner/links/{linkId}
pub fn detail(request: &Request) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let detail = partner.link(request.param("linkId"))?;
    Ok(success(StatusCode::OK, detail, &[]))
}

/// POST /partner/links/{linkId}/revoke
pub fn revoke(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let (reason, ignored) = validate::revoke(validate::json_body(&request.headers, body)?)?;
    let revoked = partner.revoke_link(request.param("linkId"), reason, request.app.clock.now())?;
    Ok(success(StatusCode::OK, revoked, &ignored))
}
