//! LeapFinancial's M2M partner API under `/partner`: links, data requests and the webhook
//! secret, each in its own module with its filters and handlers.
//!
//! Handlers return `Result<Response, ApiError>`; [`error::render`] is the one place an error
//! becomes the vendor's envelope. Every request under `/partner` that no endpoint takes —
//! unknown path or wrong method — falls through to [`fallback`], which answers in the same
//! envelope: 404 for an unknown path, 405 with `Allow` for a known path and another method
//! [design].

pub(crate) mod auth;
mod data_requests;
pub mod error;
mod links;
pub mod validate;
mod webhook_config;

use http::{HeaderValue, Method};
use linkbox_contracts::m2m::{Envelope, WARNING_HEADER};
use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use crate::app::App;
use error::ApiError;

/// Every M2M route, and the fallback for the rest of `/partner`.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let endpoints = links::routes(app.clone())
        .or(data_requests::routes(app.clone()))
        .unify()
        .or(webhook_config::routes(app))
        .unify();
    warp::path("partner")
        .and(endpoints.or(fallback()).unify())
        .boxed()
}

/// 404 in the M2M envelope for any other method or path under `/partner`.
fn fallback() -> BoxedFilter<(Response,)> {
    warp::method()
        .and(warp::path::full())
        .map(|method: Method, path: FullPath| {
            let path = path.as_str();
            match allowed_methods(path) {
                Some(allowed) => ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    path: path.to_owned(),
                    allowed,
                }
                .into_response(),
                None => {
                    ApiError::NotFound(format!("Cannot {method} {path}").into()).into_response()
                }
            }
        })
        .boxed()
}

/// The methods the M2M API serves on `path`, or `None` for a path it does not serve. Kept
/// beside the routes above; `tests::every_route_is_in_the_method_table` holds them together.
fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["partner", "links"] => Some("GET, POST"),
        ["partner", "links", id] if !id.is_empty() => Some("GET"),
        ["partner", "links", id, "revoke"] if !id.is_empty() => Some("POST"),
        ["partner", "data-requests", id] if !id.is_empty() => Some("PUT"),
        ["partner", "webhooks", "config", "regenerate-secret"] => Some("POST"),
        _ => None,
    }
}

/// `{"success": true, "data": ...}` with `status`, naming each ignored request field.
fn success<T: Serialize>(status: http::StatusCode, data: T, ignored: &[String]) -> Response {
    let mut response = crate::http::json(
        status,
        &Envelope {
            success: true,
            data,
        },
    );
    add_warnings(&mut response, ignored);
    response
}

/// One `X-Linkbox-Warning` header per field the vendor would have ignored silently.
pub fn add_warnings(response: &mut Response, ignored: &[String]) {
    for field in ignored {
        let text = format!(
            "ignored unknown field \"{}\"",
            field.escape_default().collect::<String>()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(WARNING_HEADER, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_method_table() {
        for (method, path) in [
            ("GET", "/partner/links"),
            ("POST", "/partner/links"),
            ("GET", "/partner/links/link_x_000000000000"),
            ("POST", "/partner/links/link_x_000000000000/revoke"),
            ("PUT", "/partner/data-requests/dr_x_000000000000"),
            ("POST", "/partner/webhooks/config/regenerate-secret"),
        ] {
            let allowed = allowed_methods(path).unwrap_or_default();
            assert!(allowed.split(", ").any(|m| m == method), "{method} {path}");
        }
        assert_eq!(allowed_methods("/partner"), None);
        assert_eq!(allowed_methods("/partner/links/x/y"), None);
    }
}
