//! `/services/widgets/api/magic-link/...`: the five endpoints of each widget type (provider,
//! authentication, file upload), plus the legacy singular create path
//! `/magic-link/user/{leafUserId}/{type}` that Leaf's docs showed until Nov 2023.

use http::StatusCode;
use linkbox_contracts::leaf::Widget;
use warp::reply::Response;

use super::auth::authorize;
use super::error::ApiError;
use super::{Request, add_paging_headers, no_content, respond, validate};

/// GET /magic-link/{type}
pub fn list(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let account = authorize(request)?;
    let query = validate::list_query(&request.query, &["leafUserId"])?;
    let (links, total) = account.list_magic_links(
        widget,
        query.leaf_user_id.as_deref(),
        query.page.map(|page| (page.page, page.size)),
    );
    let mut response = respond(StatusCode::OK, &links, &query.ignored);
    if let Some(page) = query.page {
        add_paging_headers(&mut response, request, &query.pairs, page, total);
    }
    Ok(response)
}

/// GET /magic-link/{type}/{magicLinkId}
pub fn get(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let id = request.param("magicLinkId");
    let account = authorize(request)?;
    let link = account.magic_link(widget, id)?;
    Ok(respond(StatusCode::OK, &link, &[]))
}

/// DELETE /magic-link/{type}/{magicLinkId}
pub fn delete(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let id = request.param("magicLinkId");
    let account = authorize(request)?;
    account.delete_magic_link(widget, id)?;
    Ok(no_content())
}

/// POST /magic-link/users/{leafUserId}/{type}
pub fn create_for_user(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let leaf_user_id = request.param("leafUserId");
    let account = authorize(request)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let create = validate::create_link(widget, body, Some(leaf_user_id))?;
    let created = account.create_magic_link(create.owner, create.link, request.app.clock.now())?;
    Ok(respond(StatusCode::OK, &created, &create.ignored))
}

/// POST /magic-link/{type}
pub fn create_with_user(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let account = authorize(request)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let create = validate::create_link(widget, body, None)?;
    let account = request.app.store.leaf().materialize(&account)?;
    let created = account.create_magic_link(create.owner, create.link, request.app.clock.now())?;
    Ok(respond(StatusCode::OK, &created, &create.ignored))
}
