//! `POST /partner/webhooks/config/regenerate-secret`: a new signing secret, shown once.
//! The vendor answers this one without the `success`/`data` envelope. [doc]

use http::{HeaderMap, StatusCode};
use linkbox_contracts::m2m::{RegeneratedSecret, messages};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::{Quota, authorize};
use super::error::{ApiError, render};
use crate::app::App;

/// POST /partner/webhooks/config/regenerate-secret
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("webhooks" / "config" / "regenerate-secret")
        .and(warp::post())
        .and(warp::any().map(move || app.clone()))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| render(regenerate(&app, &headers)))
        .boxed()
}

fn regenerate(app: &App, headers: &HeaderMap) -> Result<Response, ApiError> {
    let partner = authorize(app, headers, Quota::Other)?;
    let secret = partner.regenerate_webhook_secret();
    Ok(crate::http::json(
        StatusCode::OK,
        &RegeneratedSecret {
            webhook_secret: secret,
            message: messages::REGENERATED_SECRET.to_owned(),
        },
    ))
}
