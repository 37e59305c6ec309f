//! `GET /_sandbox/webhooks` (every delivery the caller may see, newest first, with its
//! attempts) and `POST /_sandbox/webhooks/{deliveryId}/replay`.

use http::{HeaderMap, StatusCode};
use linkbox_contracts::sandbox::DeliveryPage;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::webhooks::ReplayError;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    list(app.clone()).or(replay(app)).unify().boxed()
}

/// GET /_sandbox/webhooks
fn list(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("webhooks")
        .and(warp::get())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render(Scope::of(&app, &headers).map(|scope| {
                crate::http::json(
                    StatusCode::OK,
                    &DeliveryPage {
                        deliveries: app.webhooks.deliveries(scope.deliveries()),
                    },
                )
            }))
        })
        .boxed()
}

/// POST /_sandbox/webhooks/{deliveryId}/replay
fn replay(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("webhooks" / String / "replay")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|id: String, app: App, headers: HeaderMap| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let view = app
                    .webhooks
                    .replay(&id, scope.deliveries(), app.clock.now())
                    .map_err(|error| match error {
                        ReplayError::NotFound => ControlError::NotFound(error.to_string().into()),
                        ReplayError::InFlight => {
                            ControlError::Conflict("DELIVERY_IN_FLIGHT", error.to_string().into())
                        }
                    })?;
                Ok(crate::http::json(StatusCode::ACCEPTED, &view))
            })())
        })
        .boxed()
}
