//! Leaf Agriculture's magic-link API: `/api/authenticate`, the widgets service's magic links
//! under `/services/widgets/api`, and Leaf users under `/services/usermanagement/api`, each
//! in its own module, all in one route table ([`routes`]).
//!
//! Handlers return `Result<Response, ApiError>`; [`error::render`] is the one place an error
//! becomes JHipster's problem body, and [`not_found`] and [`wrong_method`] answer everything
//! else under `/api` and `/services` in the same shape: 404 for an unknown path, 405 with the
//! `Allow` the route table lists for a known path and another method.

mod auth;
pub mod error;
mod magic_links;
mod users;
pub mod validate;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use linkbox_contracts::leaf::{MAX_BODY_BYTES, TOTAL_COUNT_HEADER, Widget};
use serde::Serialize;
use warp::reply::Response;

use crate::app::App;
use crate::offload;
use crate::ops::identity::LeafToken;
use crate::wire::{self, BodyError, Params, Router, add_warnings};
use error::{ApiError, render};
use validate::Page;

/// Whether `path` is the Leaf API's.
pub fn owns(path: &str) -> bool {
    ["/api", "/services"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The one Leaf route that takes no token: it issues them.
pub const AUTHENTICATE: &str = "/api/authenticate";
const WIDGETS: &str = "/services/widgets/api/magic-link";
const USERS: &str = "/services/usermanagement/api/users";

/// Every Leaf route.
pub fn routes() -> Router {
    let mut router = Router::new();
    router = serve(
        router,
        Method::POST,
        AUTHENTICATE.into(),
        auth::authenticate,
    );
    for widget in Widget::ALL {
        let segment = widget.path_segment();
        let collection = format!("{WIDGETS}/{segment}");
        let member = format!("{WIDGETS}/{segment}/{{magicLinkId}}");
        router = serve_list(router, collection.clone(), move |request| {
            magic_links::list(request, widget)
        });
        router = serve(router, Method::POST, collection, move |request| {
            magic_links::create_with_user(request, widget)
        });
        router = serve(router, Method::GET, member.clone(), move |request| {
            magic_links::get(request, widget)
        });
        router = serve(router, Method::DELETE, member, move |request| {
            magic_links::delete(request, widget)
        });
        // The legacy singular `user` path Leaf's docs showed until Nov 2023 still works.
        for users in ["users", "user"] {
            let path = format!("{WIDGETS}/{users}/{{leafUserId}}/{segment}");
            router = serve(router, Method::POST, path, move |request| {
                magic_links::create_for_user(request, widget)
            });
        }
    }
    router = serve_list(router, USERS.into(), users::list);
    router = serve(router, Method::POST, USERS.into(), users::create);
    router = serve(router, Method::PUT, USERS.into(), |request| {
        users::replace(request, None)
    });
    let member = format!("{USERS}/{{id}}");
    router = serve(router, Method::GET, member.clone(), users::get);
    router = serve(router, Method::PUT, member.clone(), |request| {
        users::replace(request, Some(request.param("id")))
    });
    serve(router, Method::DELETE, member, users::delete)
}

/// Adds a route whose handler reads the whole body first (up to Leaf's limit). These routes
/// take no query parameters: a success names each one sent in `X-Linkbox-Warning`, as M2M's
/// do ([`wire::warn_of`]), so `?expiresIn=3600` sent in the query by mistake does not pass
/// unseen. [design]
fn serve<H>(router: Router, method: Method, pattern: String, handler: H) -> Router
where
    H: Fn(&Request) -> Result<Response, ApiError> + Clone + Send + Sync + 'static,
{
    serve_weighed(
        router,
        method,
        pattern,
        |_| false,
        move |request: &Request| Ok(wire::warn_of(&request.query, handler(request)?)),
    )
}

/// Adds a `GET` of a list: asked for without `page` or `size`, a Leaf list is every item the
/// account holds (tens of megabytes for an account seeded to its budget), so it is made
/// off the serving threads ([`offload`]), as M2M's heavy pages are, and cannot hold up
/// other tenants' requests; a page is at most a hundred items, made in place.
fn serve_list<H>(router: Router, pattern: String, handler: H) -> Router
where
    H: Fn(&Request) -> Result<Response, ApiError> + Clone + Send + Sync + 'static,
{
    let unpaged = |request: &wire::Request| {
        !form_urlencoded::parse(request.query.as_bytes())
            .any(|(name, _)| name == "page" || name == "size")
    };
    serve_weighed(router, Method::GET, pattern, unpaged, handler)
}

/// [`serve`], made off the serving threads whatever its body when `heavy` says so.
fn serve_weighed<H>(
    router: Router,
    method: Method,
    pattern: String,
    heavy: fn(&wire::Request) -> bool,
    handler: H,
) -> Router
where
    H: Fn(&Request) -> Result<Response, ApiError> + Clone + Send + Sync + 'static,
{
    // Every route but the one that issues tokens takes a token, checked by its handler
    // first: without one, its body is not read at all.
    let needs_token = pattern != AUTHENTICATE;
    // Only a `POST` or a `PUT` takes a body. One sent to a `GET` or a `DELETE` is not waited
    // for (nor asked for with `100 Continue`) and not journaled: it is drained unread after
    // the answer, as on every route that takes none.
    let reads = method == Method::POST || method == Method::PUT;
    let router = router.route(method, pattern, move |mut request: wire::Request| {
        let handler = handler.clone();
        async move {
            if needs_token && let Err(refused) = auth::account(request.caller.leaf()) {
                return render(&request.path, Err(refused));
            }
            let body = if reads {
                request.body(MAX_BODY_BYTES).await
            } else {
                Ok(Bytes::new())
            };
            let turn = if heavy(&request) {
                offload::Turn::Heavy(request.caller.tenant().cloned())
            } else {
                wire::turn(&request, &body)
            };
            offload::answer(turn, move || {
                let request = Request::read(request, body);
                render(&request.path, handler(&request))
            })
            .await
        }
    });
    if reads {
        router.reading(MAX_BODY_BYTES)
    } else {
        router
    }
}

/// 404 problem for a request under `/api` or `/services` that no route takes.
pub fn not_found(method: &Method, path: &str) -> Response {
    ApiError::NoEndpoint {
        method: method.clone(),
        path: path.to_owned(),
    }
    .into_response(path)
}

/// 405 problem, with `Allow`, for a known path and another method.
pub fn wrong_method(method: &Method, path: &str, allow: String) -> Response {
    ApiError::MethodNotAllowed {
        method: method.clone(),
        allow,
    }
    .into_response(path)
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
    leaf: LeafToken,
    params: Params,
}

impl Request {
    fn read(request: wire::Request, body: Result<Bytes, BodyError>) -> Request {
        let params = request.params().clone();
        let request = request.into_parts();
        Request {
            leaf: request.caller.leaf().clone(),
            app: request.app,
            method: request.method,
            path: request.path,
            headers: request.headers,
            query: request.query,
            body,
            params,
        }
    }

    /// The path parameter `name`.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }
}

/// A JSON response with `status`, naming each ignored request field.
fn respond<T: Serialize>(status: StatusCode, body: &T, ignored: &[String]) -> Response {
    let mut response = crate::wire::json(status, body);
    add_warnings(&mut response, ignored);
    response
}

use crate::wire::no_content;

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

    #[test]
    fn paging_links_follow_jhipsters_order_and_keep_other_parameters() {
        let request = Request {
            app: app(),
            method: Method::GET,
            path: "/p".into(),
            headers: HeaderMap::new(),
            query: String::new(),
            body: Ok(Bytes::new()),
            leaf: LeafToken::Missing,
            params: Params::default(),
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
