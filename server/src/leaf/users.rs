//! `/services/usermanagement/api/users`: Leaf users — list (filtered and always paged, as
//! Leaf's lists are), get, create, full replace and delete.

use http::{HeaderValue, Method, StatusCode, header};
use linkbox_contracts::leaf::DEFAULT_PAGE_SIZE;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::authorize;
use super::error::{ApiError, render};
use super::validate::{self, Page};
use super::{Request, add_paging_headers, no_content, request, respond};
use crate::app::App;

/// The user routes, relative to `/services/usermanagement/api`.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    collection(app.clone()).or(member(app)).unify().boxed()
}

/// `/users`: list, create, and replace with the id in the body.
fn collection(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("users")
        .and(request(app))
        .map(|request: Request| {
            let outcome = match request.method {
                Method::GET => list(&request),
                Method::POST => create(&request),
                Method::PUT => replace(&request, None),
                _ => Err(request.not_allowed("GET, POST, PUT")),
            };
            render(&request.path, outcome)
        })
        .boxed()
}

/// `/users/{id}`: get, replace and delete.
fn member(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("users" / String)
        .and(request(app))
        .map(|id: String, request: Request| {
            let outcome = match request.method {
                Method::GET => get(&request, &id),
                Method::PUT => replace(&request, Some(&id)),
                Method::DELETE => delete(&request, &id),
                _ => Err(request.not_allowed("GET, PUT, DELETE")),
            };
            render(&request.path, outcome)
        })
        .boxed()
}

/// GET /users
fn list(request: &Request) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let query = validate::list_query(&request.query, &["email", "name", "externalId"])?;
    let page = query.page.unwrap_or(Page {
        page: 0,
        size: DEFAULT_PAGE_SIZE,
    });
    let (users, total) = account.list_users(&query.users, page.page, page.size);
    let mut response = respond(StatusCode::OK, &users, &query.ignored);
    add_paging_headers(&mut response, request, &query.pairs, page, total);
    Ok(response)
}

/// GET /users/{id}
fn get(request: &Request, id: &str) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    Ok(respond(StatusCode::OK, &account.user(id)?, &[]))
}

/// POST /users
fn create(request: &Request) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let user = validate::user(body, false, None)?;
    let created = account.create_user(user.fields)?;
    let mut response = respond(StatusCode::CREATED, &created, &user.ignored);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{}", request.path, created.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// PUT /users/{id} (and PUT /users, with the id in the body)
fn replace(request: &Request, path_id: Option<&str>) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let user = validate::user(body, true, path_id)?;
    let id = user.id.as_deref().or(path_id).unwrap_or_default();
    let replaced = account.replace_user(id, user.fields)?;
    Ok(respond(StatusCode::OK, &replaced, &user.ignored))
}

/// DELETE /users/{id}
fn delete(request: &Request, id: &str) -> Result<Response, ApiError> {
    let account = authorize(&request.app, &request.headers)?;
    account.delete_user(id)?;
    Ok(no_content())
}
