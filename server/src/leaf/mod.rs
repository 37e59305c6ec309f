//! Leaf Agriculture's magic-link API: `/api/authenticate`, the widgets service's magic links
//! under `/services/widgets/api`, and Leaf users under `/services/usermanagement/api`, each
//! in its own module.
//!
//! Every route matches its path first and then dispatches on the method, so a known path with
//! another method is 405 and an unknown path 404. Handlers return `Result<Response,
//! ApiError>`; [`error::render`] is the one place an error becomes JHipster's problem body,
//! and [`fallback`] answers everything else under `/api` and `/services` in the same shape.

mod auth;
pub mod error;
mod magic_links;
mod users;
pub mod validate;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use linkbox_contracts::leaf::{MAX_BODY_BYTES, TOTAL_COUNT_HEADER};
use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use crate::app::App;
use crate::http::{BodyError, body, raw_query};
use error::{ApiError, render};
use validate::Page;

pub use auth::{issue_token, verify};

/// Every Leaf route, and the fallback for the rest of `/api` and `/services`.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let authenticate = warp::path!("api" / "authenticate")
        .and(request(app.clone()))
        .map(|request: Request| {
            let outcome = match request.method {
                Method::POST => auth::authenticate(&request),
                _ => Err(request.not_allowed("POST")),
            };
            render(&request.path, outcome)
        })
        .boxed();
    let widgets = warp::path!("services" / "widgets" / "api" / ..)
        .and(magic_links::routes(app.clone()))
        .boxed();
    let users = warp::path!("services" / "usermanagement" / "api" / ..)
        .and(users::routes(app))
        .boxed();
    authenticate
        .or(widgets)
        .unify()
        .or(users)
        .unify()
        .or(fallback())
        .unify()
        .boxed()
}

/// 404 problem for any request under `/api` or `/services` that no endpoint takes.
fn fallback() -> BoxedFilter<(Response,)> {
    warp::path("api")
        .or(warp::path("services"))
        .unify()
        .and(warp::method())
        .and(warp::path::full())
        .map(|method: Method, path: FullPath| {
            let path = path.as_str().to_owned();
            ApiError::NoEndpoint {
                method,
                path: path.clone(),
            }
            .into_response(&path)
        })
        .boxed()
}

/// Everything a Leaf handler reads from a request.
pub struct Request {
    pub app: App,
    pub method: Method,
    /// The path, without the query: every problem body names it.
    pub path: String,
    pub headers: HeaderMap,
    pub query: String,
    pub body: Result<Bytes, BodyError>,
}

impl Request {
    /// The 405 for this request's method on a path that allows `allow`.
    fn not_allowed(&self, allow: &'static str) -> ApiError {
        ApiError::MethodNotAllowed {
            method: self.method.clone(),
            allow,
        }
    }

    /// The 404 of a path that looked like an endpoint but is not one.
    fn no_endpoint(&self) -> ApiError {
        ApiError::NoEndpoint {
            method: self.method.clone(),
            path: self.path.clone(),
        }
    }
}

/// Reads a request whole. Never rejects.
fn request(
    app: App,
) -> impl Filter<Extract = (Request,), Error = std::convert::Infallible> + Clone {
    warp::any()
        .map(move || app.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(body(MAX_BODY_BYTES))
        .map(
            |app, method, path: FullPath, headers, query, body| Request {
                app,
                method,
                path: path.as_str().to_owned(),
                headers,
                query,
                body,
            },
        )
}

/// A JSON response with `status`, naming each ignored request field.
fn respond<T: Serialize>(status: StatusCode, body: &T, ignored: &[String]) -> Response {
    let mut response = crate::http::json(status, body);
    crate::m2m::add_warnings(&mut response, ignored);
    response
}

/// A 204 with an empty body.
fn no_content() -> Response {
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Adds Leaf's paging headers: `X-Total-Count`, and `Link` with `next`, `prev`, `last` and
/// `first` (JHipster's order), each URL the request's own with `page` and `size` replaced.
fn add_paging_headers(
    response: &mut Response,
    request: &Request,
    pairs: &[(String, String)],
    page: Page,
    total: u64,
) {
    let headers = response.headers_mut();
    headers.insert(TOTAL_COUNT_HEADER, HeaderValue::from(total));
    let pages = total.div_ceil(u64::from(page.size));
    let last = pages.saturating_sub(1);
    let current = u64::from(page.page);
    let url = |number: u64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            if name != "page" && name != "size" {
                query.append_pair(name, value);
            }
        }
        query.append_pair("page", &number.to_string());
        query.append_pair("size", &page.size.to_string());
        format!(
            "<{}{}?{}>",
            request.app.settings.public_url,
            request.path,
            query.finish()
        )
    };
    let mut links = Vec::new();
    if current < last {
        links.push(format!("{}; rel=\"next\"", url(current + 1)));
    }
    if current > 0 {
        links.push(format!("{}; rel=\"prev\"", url(current - 1)));
    }
    links.push(format!("{}; rel=\"last\"", url(last)));
    links.push(format!("{}; rel=\"first\"", url(0)));
    if let Ok(value) = HeaderValue::from_str(&links.join(",")) {
        headers.insert(header::LINK, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, Settings};

    fn app() -> App {
        App::new(Settings::resolve(
            Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ))
    }

    async fn problem(method: &str, path: &str) -> (u16, serde_json::Value) {
        let response = warp::test::request()
            .method(method)
            .path(path)
            .reply(&routes(app()))
            .await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = serde_json::from_slice(response.body()).expect("json");
        (response.status().as_u16(), body)
    }

    #[tokio::test]
    async fn unknown_paths_under_api_and_services_are_404_problems() {
        for path in ["/api/unknown", "/services/widgets/api/nothing"] {
            let (status, body) = problem("GET", path).await;
            assert_eq!(status, 404);
            assert_eq!(body["path"], path);
            assert_eq!(body["message"], "error.http.404");
        }
    }

    #[tokio::test]
    async fn a_known_path_with_another_method_is_a_405_problem() {
        let (status, body) = problem("DELETE", "/services/widgets/api/magic-link/provider").await;
        assert_eq!(status, 405);
        assert_eq!(body["title"], "Method Not Allowed");
    }

    #[tokio::test]
    async fn a_request_without_a_token_is_a_401_problem() {
        let (status, body) = problem("GET", "/services/usermanagement/api/users").await;
        assert_eq!(status, 401);
        assert_eq!(
            body["detail"],
            linkbox_contracts::leaf::messages::FULL_AUTH_REQUIRED
        );
    }

    #[test]
    fn paging_links_follow_jhipsters_order_and_keep_other_parameters() {
        let request = Request {
            app: app(),
            method: Method::GET,
            path: "/p".into(),
            headers: HeaderMap::new(),
            query: String::new(),
            body: Ok(Bytes::new()),
        };
        let mut response = no_content();
        let pairs = vec![("leafUserId".to_owned(), "u".to_owned())];
        add_paging_headers(
            &mut response,
            &request,
            &pairs,
            Page { page: 0, size: 2 },
            0,
        );
        assert_eq!(response.headers()[TOTAL_COUNT_HEADER], "0");
        assert_eq!(
            response.headers()[header::LINK],
            "<http://127.0.0.1:1/p?leafUserId=u&page=0&size=2>; rel=\"last\",\
             <http://127.0.0.1:1/p?leafUserId=u&page=0&size=2>; rel=\"first\""
        );
    }
}
