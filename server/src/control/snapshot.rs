//! `GET|PUT /_sandbox/snapshot`: the caller's whole M2M state as JSON, and its restore.
//! A snapshot belongs to one partner (its ids embed the slug), so both need a partner key.

use http::{HeaderMap, StatusCode};
use linkbox_contracts::sandbox::M2mSnapshot;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, json, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::body;

/// Largest snapshot accepted.
const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("snapshot")
        .and(take(app.clone()).or(restore(app)).unify())
        .boxed()
}

/// GET /_sandbox/snapshot
fn take(app: App) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let snapshot = scope.partner()?.snapshot();
                Ok(crate::http::json(StatusCode::OK, &snapshot))
            })())
        })
        .boxed()
}

/// PUT /_sandbox/snapshot
fn restore(app: App) -> BoxedFilter<(Response,)> {
    warp::put()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_SNAPSHOT_BYTES))
        .map(|app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let partner = scope.partner()?;
                let snapshot: M2mSnapshot = json(body)?;
                partner.restore(snapshot).map_err(ControlError::invalid)?;
                Ok(crate::http::json(StatusCode::OK, &partner.snapshot()))
            })())
        })
        .boxed()
}
