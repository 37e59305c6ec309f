//! linkbox's own control API under `/_sandbox`, and the JSON error envelope linkbox uses
//! where no vendor contract applies: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every endpoint but `GET /_sandbox/health` says who is asking ([`scope`]): a partner's
//! `X-API-Key` (or `Authorization: Bearer <key>`) scopes it to that partner — another
//! partner's link id is 404, its journal entries and deliveries are invisible;
//! `Authorization: Bearer <--admin-token>` sees every tenant; and when no admin token is
//! configured, a request with no key at all is an admin request.
//!
//! Errors, all in the envelope above ([`error::ControlError`]): 401 `UNAUTHORIZED` (no key
//! where one is needed), 401 `INVALID_API_KEY`, 403 `PARTNER_SUSPENDED`, 400
//! `INVALID_REQUEST` (bad body or query; the message names the field), 400 `TENANT_REQUIRED`
//! (an admin call to an endpoint that acts on one partner), 404 `NOT_FOUND`, 409 with a
//! lifecycle code (`LINK_EXPIRED`, `LINK_REVOKED`, `LINK_NOT_OPENED`, `OPERATION_EXISTS`,
//! `NO_OPERATION`, `DELIVERY_IN_FLIGHT`), 410 `LINK_EXPIRED` / `LINK_USED_UP` for a Leaf link
//! that can no longer be used, 413 for an oversized body.
//!
//! One file per concern: [`clock`], [`m2m`] (playing the end user and the portal), [`leaf`]
//! (playing the Leaf end user), [`seed`] (fake data),
//! [`webhooks`], [`journal`] (also the recording wrapper), [`faults`] (also the gate),
//! [`snapshot`], [`reset`].

use http::{Method, StatusCode};
use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use crate::app::App;

pub mod clock;
pub mod error;
pub mod faults;
pub mod journal;
pub mod leaf;
pub mod m2m;
pub mod reset;
pub mod scope;
pub mod seed;
pub mod snapshot;
pub mod webhooks;

/// linkbox's own error body.
#[derive(Debug, Serialize)]
pub struct SandboxError {
    pub error: SandboxErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct SandboxErrorDetail {
    /// `NOT_FOUND`, `INVALID_REQUEST`, `UNAUTHORIZED`, ...
    pub code: &'static str,
    pub message: String,
}

/// A linkbox error response.
pub fn error(status: StatusCode, code: &'static str, message: String) -> Response {
    crate::http::json(
        status,
        &SandboxError {
            error: SandboxErrorDetail { code, message },
        },
    )
}

/// The control API's routes.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let endpoints = clock::routes(app.clone())
        .or(reset::routes(app.clone()))
        .unify()
        .or(m2m::routes(app.clone()))
        .unify()
        .or(leaf::routes(app.clone()))
        .unify()
        .or(webhooks::routes(app.clone()))
        .unify()
        .or(journal::routes(app.clone()))
        .unify()
        .or(faults::routes(app.clone()))
        .unify()
        .or(snapshot::routes(app.clone()))
        .unify()
        .or(seed::routes(app))
        .unify();
    health()
        .or(warp::path("_sandbox").and(endpoints))
        .unify()
        .boxed()
}

/// Hands each request the app.
pub(crate) fn with_app(
    app: App,
) -> impl Filter<Extract = (App,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// GET /_sandbox/health
fn health() -> BoxedFilter<(Response,)> {
    warp::path!("_sandbox" / "health")
        .and(warp::get())
        .map(|| {
            crate::http::json(
                StatusCode::OK,
                &linkbox_contracts::sandbox::Health {
                    status: "ok".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                },
            )
        })
        .boxed()
}

/// 404 in linkbox's envelope for every path no API claims.
pub fn fallback() -> BoxedFilter<(Response,)> {
    warp::method()
        .and(warp::path::full())
        .map(|method: Method, path: FullPath| {
            error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("No route for {method} {}", path.as_str()),
            )
        })
        .boxed()
}
