//! `GET /_sandbox/webhooks` (the deliveries the caller may see, newest first, with their
//! attempts, a page at a time: `limit` 1 to 1,000, default 100, and `before` the id of the
//! last delivery of the previous page, as `nextBefore` gives it) and
//! `POST /_sandbox/webhooks/{deliveryId}/replay`.

use http::StatusCode;
use linkbox_contracts::sandbox::{DEFAULT_DELIVERY_PAGE, DeliveryPage, MAX_DELIVERY_PAGE};
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::webhooks::ReplayError;
use crate::wire::Request;

/// GET /_sandbox/webhooks
pub fn list(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let (mut limit, mut before) = (DEFAULT_DELIVERY_PAGE, None);
    for (name, value) in super::error::once_each(&request.query)? {
        match name.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=MAX_DELIVERY_PAGE).contains(limit))
                    .ok_or_else(|| {
                        ControlError::invalid(format!(
                            "The limit parameter must be a whole number from 1 to {MAX_DELIVERY_PAGE}"
                        ))
                    })?;
            }
            "before" => before = Some(value),
            other => {
                return Err(ControlError::invalid(format!(
                    "Unknown parameter {:?}: use limit or before",
                    other.escape_default().to_string()
                )));
            }
        }
    }
    let (deliveries, total, more) = request
        .app
        .webhooks
        .deliveries_page(scope.deliveries(), before.as_deref(), limit)
        .ok_or_else(|| {
            ControlError::invalid("The before parameter must be the id of a delivery you can see")
        })?;
    let next_before = more
        .then(|| deliveries.last().map(|delivery| delivery.id.clone()))
        .flatten();
    Ok(crate::wire::json(
        StatusCode::OK,
        &DeliveryPage {
            deliveries,
            total,
            next_before,
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
