//! LeapFinancial's M2M partner API under `/partner`: links, data requests and the webhook
//! secret, each in its own module with its filters and handlers.
//!
//! Handlers return `Result<Response, ApiError>`; [`error::render`] is the one place an error
//! becomes the vendor's envelope. Every request under `/partner` that no endpoint takes —
//! unknown path or wrong method — falls through to [`fallback`], which answers 404 in the
//! same envelope, as the vendor's Express-style router does [design].

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
            ApiError::NotFound(format!("Cannot {method} {}", path.as_str()).into()).into_response()
        })
        .boxed()
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
