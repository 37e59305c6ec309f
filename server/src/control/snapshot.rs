//! `GET|PUT /_sandbox/snapshot`: the caller's whole M2M state as JSON, and its restore.
//! A snapshot belongs to one partner (its ids embed the slug), so both need a partner key.

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::M2mSnapshot;
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::wire::{BodyError, Request};

/// Largest snapshot accepted.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// GET /_sandbox/snapshot
pub fn take(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let snapshot = scope.partner()?.snapshot();
    Ok(crate::wire::json(StatusCode::OK, &snapshot))
}

/// PUT /_sandbox/snapshot
pub fn restore(
    request: &Request,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let partner = scope.partner()?;
    let snapshot: M2mSnapshot = json(body)?;
    partner.restore(snapshot).map_err(ControlError::invalid)?;
    Ok(crate::wire::json(StatusCode::OK, &partner.snapshot()))
}
