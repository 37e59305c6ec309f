//! `/services/widgets/api/magic-link/...`: the five endpoints of each widget type (provider,
//! authentication, file upload), plus the legacy singular create path
//! `/magic-link/user/{leafUserId}/{type}` that Leaf's docs showed until Nov 2023.

use http::{Method, StatusCode};
use linkbox_contracts::leaf::Widget;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::authorize;
use super::error::{ApiError, render};
use super::{Request, add_paging_headers, no_content, request, respond, validate};
use crate::app::App;

/// The magic-link routes, relative to `/services/widgets/api`.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    collection(app.clone())
        .or(member(app.clone()))
        .unify()
        .or(for_user(app))
        .unify()
        .boxed()
}

/// `/magic-link/{type}`: list, and create with user creation.
fn collection(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("magic-link" / String)
        .and(request(app))
        .map(|segment: String, request: Request| {
            let outcome = match Widget::from_path_segment(&segment) {
                None => Err(request.no_endpoint()),
                Some(widget) => match request.method {
                    Method::GET => list(&request, widget),
                    Method::POST => create_with_user(&request, widget),
                    _ => Err(request.not_allowed("GET, POST")),
                },
            };
            render(&request.path, outcome)
        })
        .boxed()
}

/// `/magic-link/{type}/{magicLinkId}`: get and delete.
fn member(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("magic-link" / String / String)
        .and(request(app))
        .map(|segment: String, id: String, request: Request| {
            let outcome = match Widget::from_path_segment(&segment) {
                None => Err(request.no_endpoint()),
                Some(widget) => match request.method {
                    Method::GET => get(&request, widget, &id),
                    Method::DELETE => delete(&request, widget, &id),
                    _ => Err(request.not_allowed("GET, DELETE")),
                },
            };
            render(&request.path, outcome)
        })
        .boxed()
}

/// `/magic-link/users/{leafUserId}/{type}` and the legacy `/magic-link/user/...`: create for
/// an existing user.
fn for_user(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("magic-link" / String / String / String)
        .and(request(app))
        .map(
            |users: String, leaf_user_id: String, segment: String, request: Request| {
                let widget = Widget::from_path_segment(&segment)
                    .filter(|_| users == "users" || users == "user");
                let outcome = match widget {
                    None => Err(request.no_endpoint()),
                    Some(widget) => match request.method {
                        Method::POST => create_for_user(&request, widget, &leaf_user_id),
                        _ => Err(request.not_allowed("POST")),
                    },
                };
                render(&request.path, outcome)
            },
        )
        .boxed()
}

/// GET /magic-link/{type}
fn list(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
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
fn get(request: &Request, widget: Widget, id: &str) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let link = account.magic_link(widget, id)?;
    Ok(respond(StatusCode::OK, &link, &[]))
}

/// DELETE /magic-link/{type}/{magicLinkId}
fn delete(request: &Request, widget: Widget, id: &str) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    account.delete_magic_link(widget, id)?;
    Ok(no_content())
}

/// POST /magic-link/users/{leafUserId}/{type}
fn create_for_user(
    request: &Request,
    widget: Widget,
    leaf_user_id: &str,
) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let create = validate::create_link(widget, body, Some(leaf_user_id))?;
    let created = account.create_magic_link(create.owner, create.link, request.app.clock.now())?;
    Ok(respond(StatusCode::OK, &created, &create.ignored))
}

/// POST /magic-link/{type}
fn create_with_user(request: &Request, widget: Widget) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let create = validate::create_link(widget, body, None)?;
    let created = account.create_magic_link(create.owner, create.link, request.app.clock.now())?;
    Ok(respond(StatusCode::OK, &created, &create.ignored))
}
