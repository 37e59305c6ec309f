//! `GET|POST /_sandbox/clock`: read and move the one sandbox clock. The clock is global —
//! every tenant shares it — so any caller may move it; moving it expires links, reopens
//! rate-limit windows and fires due webhook retries at once.

use http::{HeaderMap, StatusCode};
use linkbox_contracts::sandbox::{ClockChange, ClockView};
use linkbox_contracts::timefmt;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, json, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::body;

/// Largest step accepted, either way: a century, well inside what timestamps can show.
const MAX_STEP_SECONDS: i64 = 100 * 366 * 24 * 3600;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("clock")
        .and(read(app.clone()).or(change(app)).unify())
        .boxed()
}

/// GET /_sandbox/clock
fn read(app: App) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| render(Scope::of(&app, &headers).map(|_| view(&app))))
        .boxed()
}

/// POST /_sandbox/clock {advanceSeconds | setTo | frozen}
fn change(app: App) -> BoxedFilter<(Response,)> {
    warp::post()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(4 * 1024))
        .map(|app: App, headers: HeaderMap, body| {
            render((|| {
                Scope::of(&app, &headers)?;
                let change: ClockChange = json(body)?;
                apply(&app, change)?;
                Ok(view(&app))
            })())
        })
        .boxed()
}

fn apply(app: &App, change: ClockChange) -> Result<(), ControlError> {
    match (change.advance_seconds, change.set_to, change.frozen) {
        (Some(seconds), None, None) => {
            if seconds.abs() > MAX_STEP_SECONDS {
                return Err(ControlError::invalid(
                    "The advanceSeconds field must be within a century",
                ));
            }
            app.clock
                .advance(time::Duration::seconds(seconds))
                .map_err(|error| {
                    ControlError::invalid(format!("The advanceSeconds field moves {error}"))
                })?;
        }
        (None, Some(to), None) => {
            let to = timefmt::parse(&to).ok_or_else(|| {
                ControlError::invalid("The setTo field must be an RFC 3339 timestamp")
            })?;
            app.clock.set_to(to).map_err(|_| {
                ControlError::invalid("The setTo field must be between the years 1970 and 9000")
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
    crate::http::json(
        StatusCode::OK,
        &ClockView {
            now: timefmt::millis(reading.now),
            offset_seconds: reading.offset.whole_seconds(),
            frozen: reading.frozen,
        },
    )
}
