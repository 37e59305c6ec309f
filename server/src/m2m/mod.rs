//! LeapFinancial's M2M partner API under `/partner`: links, data requests and the webhook
//! secret, each in its own module, all in one route table ([`routes`]).
//!
//! Handlers return `Result<Response, ApiError>`; [`error::render`] is the one place an error
//! becomes the vendor's envelope. Every request under `/partner` that no route takes answers
//! in the same envelope ([`not_found`], [`wrong_method`]): 404 for an unknown path, 405 with
//! the `Allow` the route table lists for a known path and another method [design].

pub mod auth;
mod create_body;
mod data_requests;
pub mod error;
mod links;
pub mod validate;
mod webhook_config;

use http::Method;
use linkbox_contracts::m2m::{Envelope, MAX_BODY_BYTES};
use serde::Serialize;
use warp::reply::Response;

use crate::offload;
use crate::wire::{self, Request, Router, add_warnings, warn_of};
use error::{ApiError, render};

/// Whether `path` is the M2M API's: under `/partner`, in any letter case, as its routes
/// take their fixed parts (Express's default).
pub fn owns(path: &str) -> bool {
    const BASE: &str = "/partner";
    path.get(..BASE.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(BASE))
        && matches!(path.as_bytes().get(BASE.len()), None | Some(b'/'))
}

/// Every M2M route.
pub fn routes() -> Router {
    Router::new()
        .get("/partner/links", |request: Request| async move {
            render(links::list(&request))
        })
        .post("/partner/links", |mut request: Request| async move {
            if let Some(refused) = auth::refused(&request) {
                return refused.into_response();
            }
            let query = request.query.clone();
            let body = request.body(MAX_BODY_BYTES).await;
            let response = offload::answer(wire::turn(&request, &body), move || {
                render(links::create(&request, body))
            })
            .await;
            warn_of(&query, response)
        })
        .reading(MAX_BODY_BYTES)
        .get("/partner/links/{linkId}", |request: Request| async move {
            let query = request.query.clone();
            warn_of(&query, links::detail(request).await)
        })
        .post(
            "/partner/links/{linkId}/revoke",
            |mut request: Request| async move {
                if let Some(refused) = auth::refused(&request) {
                    return refused.into_response();
                }
                let query = request.query.clone();
                let body = request.body(MAX_BODY_BYTES).await;
                let response = offload::answer(wire::turn(&request, &body), move || {
                    render(links::revoke(&request, body))
                })
                .await;
                warn_of(&query, response)
            },
        )
        .reading(MAX_BODY_BYTES)
        .put(
            "/partner/data-requests/{dataRequestId}",
            |mut request: Request| async move {
                if let Some(refused) = auth::refused(&request) {
                    return refused.into_response();
                }
                let query = request.query.clone();
                let body = request.body(MAX_BODY_BYTES).await;
                let response = offload::answer(wire::turn(&request, &body), move || {
                    render(data_requests::fulfil(&request, body))
                })
                .await;
                warn_of(&query, response)
            },
        )
        .reading(MAX_BODY_BYTES)
        .post(
            "/partner/webhooks/config/regenerate-secret",
            |mut request: Request| async move {
                if let Some(refused) = auth::refused(&request) {
                    return refused.into_response();
                }
                let body = request.body(MAX_BODY_BYTES).await;
                warn_of(
                    &request.query,
                    render(webhook_config::regenerate(&request, body)),
                )
            },
        )
        .reading(MAX_BODY_BYTES)
}

/// 404 in the M2M envelope for a path under `/partner` no route has.
pub fn not_found(method: &Method, path: &str) -> Response {
    ApiError::NotFound(format!("Cannot {method} {path}").into()).into_response()
}

/// 405 in the M2M envelope, with `Allow`, for a known path and another method.
pub fn wrong_method(method: &Method, path: &str, allowed: String) -> Response {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
        allowed,
    }
    .into_response()
}

/// What the warning about an unknown key inside `userData` says: such keys are not ignored
/// but kept in the user's data as sent, as the vendor keeps them. [design]
pub const KEPT_AS_SENT: &str = "unknown field kept as sent";

/// `{"success": true, "data": ...}` with `status`, naming each unknown request field: an
/// ignored one, or one inside `userData`, which is kept as sent ([`KEPT_AS_SENT`]).
fn success<T: Serialize>(status: http::StatusCode, data: T, unknown: &[String]) -> Response {
    let mut response = crate::wire::json(
        status,
        &Envelope {
            success: true,
            data,
        },
    );
    let (kept, ignored): (Vec<String>, Vec<String>) = unknown
        .iter()
        .cloned()
        .partition(|field| field.starts_with("userData."));
    add_warnings(&mut response, &ignored);
    crate::wire::add_notes(&mut response, KEPT_AS_SENT, &kept);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Found;

    #[test]
    fn the_table_lists_each_documented_operation_once() {
        let table = routes();
        let listed: Vec<String> = table
            .list()
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        assert_eq!(
            listed,
            [
                "GET /partner/links",
                "POST /partner/links",
                "GET /partner/links/{linkId}",
                "POST /partner/links/{linkId}/revoke",
                "PUT /partner/data-requests/{dataRequestId}",
                "POST /partner/webhooks/config/regenerate-secret",
            ]
        );
        assert!(matches!(
            table.find(&Method::DELETE, "/partner/links"),
            Found::WrongMethod(allow) if allow == "GET, HEAD, POST"
        ));
        assert!(matches!(
            table.find(&Method::GET, "/partner/links/x/y"),
            Found::Nothing
        ));
    }
}
