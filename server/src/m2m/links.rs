//! `/partner/links`: create, list, detail and revoke.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use linkbox_contracts::m2m::{LinkPage, MAX_BODY_BYTES, Pagination};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::{Quota, authorize};
use super::error::{ApiError, render};
use super::{success, validate};
use crate::app::App;
use crate::http::{BodyError, body, raw_query};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    create(app.clone())
        .or(list(app.clone()))
        .unify()
        .or(detail(app.clone()))
        .unify()
        .or(revoke(app))
        .unify()
        .boxed()
}

fn with_app(app: App) -> impl Filter<Extract = (App,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// POST /partner/links
fn create(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY_BYTES))
        .map(
            |app: App, headers: HeaderMap, body: Result<Bytes, BodyError>| {
                render(create_link(&app, &headers, body))
            },
        )
        .boxed()
}

fn create_link(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::CreateLink)?;
    let body = validate::json_body(headers, body)?;
    let request = validate::create_link(body, &app.settings.flows)?;
    let (metadata, callback_url) = (
        request.link.metadata.clone(),
        request.link.callback_url.clone(),
    );
    let created = partner.create_link(request.link, app.clock.now())?;
    crate::webhooks::events::link_created(app, &partner, &created, metadata, callback_url);
    Ok(success(StatusCode::CREATED, created, &request.ignored))
}

/// GET /partner/links
fn list(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links")
        .and(warp::get())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .map(|app: App, headers: HeaderMap, query: String| {
            render(list_links(&app, &headers, &query))
        })
        .boxed()
}

fn list_links(app: &App, headers: &HeaderMap, query: &str) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::Other)?;
    let query = validate::list_links(query)?;
    let (items, total) =
        partner.list_links(&query.filter, query.page, query.limit, app.clock.now());
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
fn detail(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links" / String)
        .and(warp::get())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|link_id: String, app: App, headers: HeaderMap| {
            render(link_detail(&app, &headers, &link_id))
        })
        .boxed()
}

fn link_detail(app: &App, headers: &HeaderMap, link_id: &str) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::Other)?;
    let detail = partner.link(link_id)?;
    Ok(success(StatusCode::OK, detail, &[]))
}

/// POST /partner/links/{linkId}/revoke
fn revoke(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links" / String / "revoke")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY_BYTES))
        .map(
            |link_id: String, app: App, headers: HeaderMap, body: Result<Bytes, BodyError>| {
                render(revoke_link(&app, &headers, &link_id, body))
            },
        )
        .boxed()
}

fn revoke_link(
    app: &App,
    headers: &HeaderMap,
    link_id: &str,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::Other)?;
    let (reason, ignored) = validate::revoke(validate::json_body(headers, body)?)?;
    let revoked = partner.revoke_link(link_id, reason, app.clock.now())?;
    Ok(success(StatusCode::OK, revoked, &ignored))
}
