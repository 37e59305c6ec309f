//! `POST|GET|DELETE /_sandbox/faults`: manage the fault table ([`crate::faults`]) that the
//! serving layer applies in front of every vendor route. A status without a body answers in
//! the vendor's own error shape: on `/partner` a 429 is `RATE_LIMIT_EXCEEDED` with
//! `Retry-After`, a 5xx `INTERNAL_ERROR`, and so on; elsewhere linkbox's envelope. Faults set
//! by a partner touch only requests made with that partner's key; admin faults touch every
//! request. Control requests are never faulted, so a sandbox cannot lock itself out.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{FaultPage, FaultRequest};
use warp::reply::Response;

use super::error::{ControlError, json};
use super::{scope, write_scope};
use crate::faults::FaultRefused;
use crate::wire::{BodyError, Request, no_content};

/// POST /_sandbox/faults
pub fn add(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    let scope = write_scope(request)?;
    let fault: FaultRequest = json(body)?;
    let tenant = scope.slug().map(Arc::from);
    let view = request
        .app
        .faults
        .add(fault, tenant)
        .map_err(|refused| match refused {
            FaultRefused::Invalid(message) => ControlError::invalid(message),
            FaultRefused::Full(message) => ControlError::Full(message),
        })?;
    Ok(crate::wire::json(StatusCode::CREATED, &view))
}

/// GET /_sandbox/faults
pub fn list(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    Ok(crate::wire::json(
        StatusCode::OK,
        &FaultPage {
            faults: request.app.faults.list(scope.slug()),
        },
    ))
}

/// DELETE /_sandbox/faults
pub fn clear(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    request.app.faults.clear(scope.slug());
    Ok(no_content())
}
