//! `GET /_sandbox/webhooks` (every delivery the caller may see, newest first, with its
//! attempts) and `POST /_sandbox/webhooks/{deliveryId}/replay`.

use http::StatusCode;
use linkbox_contracts::sandbox::DeliveryPage;
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::webhooks::ReplayError;
use crate::wire::Request;

/// GET /_sandbox/webhooks
pub fn list(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    Ok(crate::wire::json(
        StatusCode::OK,
        &DeliveryPage {
            deliveries: request.app.webhooks.deliveries(scope.deliveries()),
        },
    ))
}

/// POST /_sandbox/webhooks/{deliveryId}/replay
pub fn replay(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let app = &request.app;
    let view = app
        .webhooks
        .replay(
            request.param("deliveryId"),
            scope.deliveries(),
            app.clock.now(),
        )
        .map_err(|error| match error {
            ReplayError::NotFound => ControlError::NotFound(error.to_string().into()),
            ReplayError::InFlight => {
                ControlError::Conflict("DELIVERY_IN_FLIGHT", error.to_string().into())
            }
        })?;
    Ok(crate::wire::json(StatusCode::ACCEPTED, &view))
}
