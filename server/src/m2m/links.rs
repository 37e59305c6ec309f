//! `/partner/links`: create, list, detail and revoke.

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::m2m::{Envelope, LinkItem, LinkPage, Pagination};
use warp::reply::Response;

use super::auth::{Quota, authorize, materialize};
use super::error::{ApiError, render};
use super::{success, validate};
use crate::offload::{self, Turn};
use crate::ops::events;
use crate::store::m2m::Lent;
use crate::wire::{BodyError, Request, add_warnings, stream};

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
    let pagination = Pagination {
        page: query.page,
        limit: query.limit,
        total,
        total_pages: total.div_ceil(u64::from(query.limit)),
    };
    let weight: usize = items.iter().map(Lent::weight).sum();
    // Items carrying user data of megabytes (one user's, on each of its links): the page is
    // sent as it is made, an item at a time ([`stream`]), those heavy to make made off the
    // serving threads. The envelope around them is the empty page's, written as any other.
    let empty = Envelope {
        success: true,
        data: LinkPage {
            items: Vec::new(),
            pagination: pagination.clone(),
        },
    };
    let around = offload::is_heavy(weight)
        .then(|| linkbox_contracts::json::to_vec(&empty).ok())
        .flatten()
        .and_then(|text| stream::around(&text, br#""items":[]"#));
    let Some(around) = around else {
        let items = items.into_iter().map(Lent::<LinkItem>::into_view).collect();
        return Ok(success(
            StatusCode::OK,
            LinkPage { items, pagination },
            &query.ignored,
        ));
    };
    let mut response = stream::json_array(
        StatusCode::OK,
        around,
        items,
        request.caller.tenant().cloned(),
        Lent::weight,
        |item| {
            linkbox_contracts::json::to_vec(&item.into_view()).unwrap_or_else(|error| {
                tracing::error!(%error, "a link did not serialize");
                b"null".to_vec()
            })
        },
    );
    add_warnings(&mut response, &query.ignored);
    Ok(response)
}

/// GET /partner/links/{linkId}: off the serving threads when the link's user data and
/// metadata are large.
pub async fn detail(request: Request) -> Response {
    let found = authorize(&request, Quota::Other)
        .and_then(|partner| Ok(partner.link_lent(request.param("linkId"))?));
    match found {
        Ok(detail) => {
            let turn = Turn::of(offload::is_heavy(detail.weight()), request.caller.tenant());
            offload::answer(turn, move || {
                success(StatusCode::OK, detail.into_view(), &[])
            })
            .await
        }
        Err(error) => render(Err(error)),
    }
}

/// POST /partner/links/{linkId}/revoke
pub fn revoke(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let (reason, ignored) = validate::revoke(validate::json_body(&request.headers, body)?)?;
    let revoked = partner.revoke_link(request.param("linkId"), reason, request.app.clock.now())?;
    Ok(success(StatusCode::OK, revoked, &ignored))
}
