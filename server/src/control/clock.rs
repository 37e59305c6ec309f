//! `GET|POST /_sandbox/clock`: read and move the one sandbox clock. The clock is global —
//! every tenant shares it — and moving it expires links, reopens rate-limit windows and
//! fires due webhook retries at once, for everyone. So who may move it is a setting
//! (`--clock`): under `tenants` (the default on a loopback address) any caller may; under
//! `admin` (the default elsewhere) only the admin, and a tenant gets a 403
//! `ADMIN_REQUIRED`. Anyone may read it.

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{ClockChange, ClockView};
use linkbox_contracts::timefmt;
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::app::App;
use crate::clock::StepError;
use crate::wire::{BodyError, Request};

/// GET /_sandbox/clock
pub fn read(request: &Request) -> Result<Response, ControlError> {
    scope(request)?;
    Ok(view(&request.app))
}

/// POST /_sandbox/clock
pub fn change(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    if !scope(request)?.may_move_clock(&request.app) {
        return Err(ControlError::AdminRequired(
            crate::ops::identity::clock_admin_only(&request.app),
        ));
    }
    let change: ClockChange = json(body)?;
    apply(&request.app, change)?;
    Ok(view(&request.app))
}

fn apply(app: &App, change: ClockChange) -> Result<(), ControlError> {
    match (change.advance_seconds, change.set_to, change.frozen) {
        (Some(seconds), None, None) => {
            app.clock
                .advance(time::Duration::seconds(seconds))
                .map_err(|error| match error {
                    StepError::TooFar => {
                        ControlError::invalid("The advanceSeconds field must be within a century")
                    }
                    StepError::OutOfRange(_) => ControlError::invalid(
                        "The advanceSeconds field must keep the sandbox clock between the years 1970 and 9000",
                    ),
                })?;
        }
        (None, Some(to), None) => {
            let to = timefmt::parse(&to).ok_or_else(|| {
                ControlError::invalid("The setTo field must be an RFC 3339 timestamp")
            })?;
            app.clock.set_to(to).map_err(|_| {
                ControlError::invalid(
                    "The setTo field must be between the years 1970 and 9000 (in UTC)",
                )
            })?;
        }
        (None, None, Some(frozen)) => app.clock.set_frozen(frozen),
        _ => {
            return Err(ControlError::invalid(
                "Send exactly one of advanceSeconds, setTo or frozen",
            ));
        }
    }
    Ok(())
}

fn view(app: &App) -> Response {
    let reading = app.clock.reading();
    crate::wire::json(
        StatusCode::OK,
        &ClockView {
            now: timefmt::millis(reading.now),
            offset_seconds: reading.offset.whole_seconds(),
            frozen: reading.frozen,
        },
    )
}
