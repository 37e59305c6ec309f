//! CORS, off unless `--cors ORIGIN` (repeatable, or `*`) says otherwise: the vendors' APIs
//! are called server to server, and a browser calling them with a partner key is a bug
//! linkbox should reveal, not hide.
//!
//! With `--cors`, a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! from an allowed origin on a path some route serves is answered 204 with the path's
//! methods read off the route table and the request's own `Access-Control-Request-Headers`;
//! every answer to an allowed origin, errors and injected faults included, carries
//! `Access-Control-Allow-Origin` (the origin itself, or `*` when `*` is configured) and
//! `Vary: Origin`. Anything else, and every preflight without `--cors`, goes through the
//! route table like any request: a 405 with `Allow` (or a 404) in the API's own envelope.

use http::{HeaderMap, HeaderValue, Method, header};
use warp::reply::Response;

use crate::config::Settings;
use crate::wire::{Found, Router};

/// Headers a browser script may read besides the safelisted ones: Leaf's paging headers
/// (`X-Total-Count` and `Link`, which JHipster exposes) among them, and the `Location` of a
/// Leaf user just created.
const EXPOSED: &str = "Allow, Link, Location, Retry-After, X-Linkbox-Warning, X-Total-Count";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_SECS: u32 = 600;

/// The `Access-Control-Allow-Origin` value for a request from `headers`, when CORS is on
/// and its `Origin` is allowed.
pub(super) fn allowed_origin(settings: &Settings, headers: &HeaderMap) -> Option<HeaderValue> {
    if settings.cors.is_empty() {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    if settings.cors.iter().any(|allowed| allowed == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    settings
        .cors
        .iter()
        .any(|allowed| allowed.trim_end_matches('/') == text)
        .then(|| origin.clone())
}

/// The 204 answer to a preflight on a path `router` serves, or `None` for a request that
/// is not one (or that CORS does not allow).
pub(super) fn preflight(
    settings: &Settings,
    router: &Router,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    allowed_origin(settings, headers)?;
    let allow = match router.find(method, path) {
        Found::WrongMethod(allow) => allow,
        Found::Route(..) | Found::Nothing => return None,
    };
    let mut response = crate::wire::no_content();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(MAX_AGE_SECS),
    );
    Some(response)
}

/// Adds `Access-Control-Allow-Origin` to any answer for an allowed origin (`origin`, as
/// [`allowed_origin`] found it before the request moved on to its handler).
pub(super) fn decorate(origin: Option<HeaderValue>, mut response: Response) -> Response {
    let Some(origin) = origin else {
        return response;
    };
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.append(header::VARY, HeaderValue::from_static("Origin"));
    out.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    response
}
