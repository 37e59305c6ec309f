//! `/services/usermanagement/api/users`: Leaf users — list (filtered and always paged, as
//! Leaf's lists are), get, create, full replace and delete.

use http::{HeaderValue, StatusCode, header};
use linkbox_contracts::leaf::DEFAULT_PAGE_SIZE;
use warp::reply::Response;

use super::auth::authorize;
use super::error::ApiError;
use super::validate::{self, Page};
use super::{Request, add_paging_headers, no_content, respond};

/// GET /users
pub fn list(request: &Request) -> Result<Response, ApiError> {
    let account = authorize(request)?;
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
pub fn get(request: &Request) -> Result<Response, ApiError> {
    let id = request.param("id");
    let account = authorize(request)?;
    Ok(respond(StatusCode::OK, &account.user(id)?, &[]))
}

/// POST /users
pub fn create(request: &Request) -> Result<Response, ApiError> {
    let account = authorize(request)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let user = validate::user(body, false, None)?;
    let account = request.app.store.leaf().materialize(&account)?;
    let created = account.create_user(user.fields)?;
    let mut response = respond(StatusCode::CREATED, &created, &user.ignored);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{}", request.path, created.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// PUT /users/{id} (and PUT /users, with the id in the body)
pub fn replace(request: &Request, path_id: Option<&str>) -> Result<Response, ApiError> {
    let account = authorize(request)?;
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let user = validate::user(body, true, path_id)?;
    let id = user.id.as_deref().or(path_id).unwrap_or_default();
    let replaced = account.replace_user(id, user.fields)?;
    Ok(respond(StatusCode::OK, &replaced, &user.ignored))
}

/// DELETE /users/{id}
pub fn delete(request: &Request) -> Result<Response, ApiError> {
    let id = request.param("id");
    let account = authorize(request)?;
    account.delete_user(id)?;
    Ok(no_content())
}
