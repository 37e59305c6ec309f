//! Fault injection: `POST|GET|DELETE /_sandbox/faults`, and the gate in front of every
//! vendor route that applies them.
//!
//! A fault matches by method and path (exact, or a prefix ending in `*`), fires with its
//! `probability` (default 1) and at most `times` times (then it is removed), and then delays
//! (`delayMs`, real time), answers `status`/`body` instead of the real handler, or drops the
//! connection. A delay-only fault lets the real handler answer afterwards. A status without a
//! body answers in the vendor's own error shape: on `/partner` a 429 is `RATE_LIMIT_EXCEEDED`
//! with `Retry-After`, a 5xx `INTERNAL_ERROR`, and so on; elsewhere linkbox's envelope.
//! Faults set by a partner touch only requests made with that partner's key; admin faults
//! touch every request. Control requests are never faulted, so a sandbox cannot lock itself
//! out.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use linkbox_contracts::m2m::{ErrorCode, messages};
use linkbox_contracts::sandbox::{FaultPage, FaultRequest, FaultView};
use parking_lot::Mutex;
use serde_json::Value;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use super::error::{ControlError, json, render};
use super::journal::{is_control, no_content, path_matches};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::{DropConnection, body};
use crate::m2m::error::error_response;
use crate::store::ids;

/// Seconds a faulted 429 asks the client to wait.
const FAULT_RETRY_AFTER_SECS: u64 = 60;
/// Longest delay a fault may add.
const MAX_DELAY_MS: u64 = 120_000;

/// The faults in force: cheap to clone.
#[derive(Clone, Default)]
pub struct Faults {
    list: Arc<Mutex<Vec<Fault>>>,
}

#[derive(Debug, Clone)]
struct Fault {
    id: String,
    method: Option<Method>,
    path: Option<String>,
    status: Option<StatusCode>,
    body: Option<Value>,
    delay_ms: Option<u64>,
    drop: bool,
    probability: f64,
    remaining: Option<u32>,
    hits: u64,
    tenant: Option<Arc<str>>,
}

/// What a fault does to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Strike {
    pub delay: Option<Duration>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Let the real handler answer.
    Pass,
    Drop,
    Answer {
        status: StatusCode,
        body: Option<Value>,
    },
}

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Adds a validated fault for `tenant` (`None`: every request); returns its view.
    fn add(
        &self,
        request: FaultRequest,
        tenant: Option<Arc<str>>,
    ) -> Result<FaultView, ControlError> {
        let method = request
            .method
            .map(|method| {
                Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| ControlError::invalid("The method field must be an HTTP method"))
            })
            .transpose()?;
        if request
            .path
            .as_deref()
            .is_some_and(|path| !path.starts_with('/'))
        {
            return Err(ControlError::invalid("The path field must start with /"));
        }
        let status = request
            .status
            .map(|status| {
                StatusCode::from_u16(status)
                    .ok()
                    .filter(|status| (200..600).contains(&status.as_u16()))
                    .ok_or_else(|| {
                        ControlError::invalid("The status field must be between 200 and 599")
                    })
            })
            .transpose()?;
        let probability = request.probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&probability) {
            return Err(ControlError::invalid(
                "The probability field must be between 0 and 1",
            ));
        }
        if request.delay_ms.is_some_and(|delay| delay > MAX_DELAY_MS) {
            return Err(ControlError::invalid(format!(
                "The delayMs field must be at most {MAX_DELAY_MS}"
            )));
        }
        if request.times == Some(0) {
            return Err(ControlError::invalid("The times field must be at least 1"));
        }
        let drop = request.drop.unwrap_or(false);
        if status.is_none() && request.body.is_none() && request.delay_ms.is_none() && !drop {
            return Err(ControlError::invalid(
                "A fault needs at least one of status, body, delayMs or drop",
            ));
        }
        let fault = Fault {
            id: format!("flt_{}", ids::fmt_hex48(ids::hex48())),
            method,
            path: request.path,
            status,
            body: request.body,
            delay_ms: request.delay_ms,
            drop,
            probability,
            remaining: request.times,
            hits: 0,
            tenant,
        };
        let view = view(&fault);
        self.list.lock().push(fault);
        Ok(view)
    }

    /// The faults `tenant` set (`None`: all).
    fn list(&self, tenant: Option<&str>) -> Vec<FaultView> {
        self.list
            .lock()
            .iter()
            .filter(|fault| owned_by(fault, tenant))
            .map(view)
            .collect()
    }

    /// Removes the faults `tenant` set (`None`: all).
    pub fn clear(&self, tenant: Option<&str>) {
        self.list.lock().retain(|fault| !owned_by(fault, tenant));
    }

    /// What the first matching fault does to this request, counting it; `None` when no fault
    /// fires.
    pub fn strike(&self, method: &Method, path: &str, tenant: Option<&str>) -> Option<Strike> {
        let mut list = self.list.lock();
        let index = list.iter().position(|fault| {
            fault.method.as_ref().is_none_or(|m| m == method)
                && fault.path.as_deref().is_none_or(|p| path_matches(p, path))
                && fault
                    .tenant
                    .as_deref()
                    .is_none_or(|owner| Some(owner) == tenant)
                && fires(fault.probability)
        })?;
        let fault = &mut list[index];
        fault.hits += 1;
        let strike = Strike {
            delay: fault.delay_ms.map(Duration::from_millis),
            action: if fault.drop {
                Action::Drop
            } else if fault.status.is_some() || fault.body.is_some() {
                Action::Answer {
                    status: fault.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body: fault.body.clone(),
                }
            } else {
                Action::Pass
            },
        };
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                list.remove(index);
            }
        }
        Some(strike)
    }
}

fn fires(probability: f64) -> bool {
    probability >= 1.0 || (probability > 0.0 && rand::random::<f64>() < probability)
}

fn owned_by(fault: &Fault, tenant: Option<&str>) -> bool {
    tenant.is_none_or(|slug| fault.tenant.as_deref() == Some(slug))
}

fn view(fault: &Fault) -> FaultView {
    FaultView {
        id: fault.id.clone(),
        method: fault.method.as_ref().map(Method::to_string),
        path: fault.path.clone(),
        status: fault.status.map(|status| status.as_u16()),
        body: fault.body.clone(),
        delay_ms: fault.delay_ms,
        drop: fault.drop,
        probability: fault.probability,
        remaining: fault.remaining,
        hits: fault.hits,
        tenant: fault.tenant.as_deref().map(str::to_owned),
    }
}

/// The answer a faulted request gets.
fn faulted_response(path: &str, status: StatusCode, body: Option<Value>) -> Response {
    match body {
        Some(Value::String(text)) => {
            let mut response = Response::new(text.into());
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Some(body) => crate::http::json(status, &body),
        None if path.starts_with("/partner") => m2m_error(status),
        None if status.is_success() || status.is_redirection() => {
            let mut response = Response::new(Bytes::new().into());
            *response.status_mut() = status;
            response
        }
        None => super::error(
            status,
            "FAULT_INJECTED",
            "This response was injected by a fault (see GET /_sandbox/faults)".to_owned(),
        ),
    }
}

/// The M2M API's own shape for a faulted status.
fn m2m_error(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        401 => (ErrorCode::InvalidApiKey, messages::INVALID_API_KEY),
        403 => (ErrorCode::PartnerSuspended, messages::PARTNER_SUSPENDED),
        404 => (ErrorCode::ResourceNotFound, "Resource not found"),
        409 => (ErrorCode::ActiveLinkExists, messages::ACTIVE_LINK_EXISTS),
        429 => (ErrorCode::RateLimitExceeded, messages::RATE_LIMITED),
        400..=499 => (ErrorCode::InvalidRequest, "Invalid request"),
        _ => (ErrorCode::InternalError, messages::INTERNAL),
    };
    let mut response = error_response(status, code, message.to_owned());
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(FAULT_RETRY_AFTER_SECS),
        );
    }
    response
}

/// Puts the fault gate in front of `inner`.
pub fn gated(app: App, inner: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(with_app(app))
        .and_then(
            |method: Method, path: FullPath, headers: HeaderMap, app: App| async move {
                let path = path.as_str();
                if is_control(path) {
                    return Err(warp::reject::not_found());
                }
                let tenant = super::scope::request_tenant(&app, &headers);
                let Some(strike) = app.faults.strike(&method, path, tenant.as_deref()) else {
                    return Err(warp::reject::not_found());
                };
                if let Some(delay) = strike.delay {
                    tokio::time::sleep(delay).await;
                }
                match strike.action {
                    Action::Pass => Err(warp::reject::not_found()),
                    Action::Drop => {
                        let mut response = Response::new(Bytes::new().into());
                        response.extensions_mut().insert(DropConnection);
                        Ok(response)
                    }
                    Action::Answer { status, body } => Ok(faulted_response(path, status, body)),
                }
            },
        )
        .or(inner)
        .unify()
        .boxed()
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("faults")
        .and(
            add(app.clone())
                .or(list_faults(app.clone()))
                .unify()
                .or(clear_faults(app))
                .unify(),
        )
        .boxed()
}

/// POST /_sandbox/faults
fn add(app: App) -> BoxedFilter<(Response,)> {
    warp::post()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(64 * 1024))
        .map(|app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let request: FaultRequest = json(body)?;
                let tenant = scope.slug().map(Arc::from);
                let view = app.faults.add(request, tenant)?;
                Ok(crate::http::json(StatusCode::CREATED, &view))
            })())
        })
        .boxed()
}

/// GET /_sandbox/faults
fn list_faults(app: App) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render(Scope::of(&app, &headers).map(|scope| {
                crate::http::json(
                    StatusCode::OK,
                    &FaultPage {
                        faults: app.faults.list(scope.slug()),
                    },
                )
            }))
        })
        .boxed()
}

/// DELETE /_sandbox/faults
fn clear_faults(app: App) -> BoxedFilter<(Response,)> {
    warp::delete()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render(Scope::of(&app, &headers).map(|scope| {
                app.faults.clear(scope.slug());
                no_content()
            }))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(json: serde_json::Value) -> FaultRequest {
        serde_json::from_value(json).expect("fault request")
    }

    #[test]
    fn a_fault_with_times_fires_that_often_then_is_gone() {
        let faults = Faults::new();
        faults
            .add(fault(serde_json::json!({"status": 503, "times": 2})), None)
            .expect("add");
        for _ in 0..2 {
            assert!(
                faults
                    .strike(&Method::GET, "/partner/links", None)
                    .is_some()
            );
        }
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", None)
                .is_none()
        );
        assert!(faults.list(None).is_empty());
    }

    #[test]
    fn probability_zero_never_fires_and_one_always_does() {
        let faults = Faults::new();
        faults
            .add(
                fault(serde_json::json!({"status": 500, "probability": 0.0})),
                None,
            )
            .expect("add");
        for _ in 0..100 {
            assert!(faults.strike(&Method::GET, "/x", None).is_none());
        }
        faults.clear(None);
        faults
            .add(
                fault(serde_json::json!({"status": 500, "probability": 1.0})),
                None,
            )
            .expect("add");
        for _ in 0..100 {
            assert!(faults.strike(&Method::GET, "/x", None).is_some());
        }
    }

    #[test]
    fn a_tenants_fault_touches_only_its_own_requests() {
        let faults = Faults::new();
        faults
            .add(
                fault(serde_json::json!({"path": "/partner/*", "drop": true})),
                Some("pa".into()),
            )
            .expect("add");
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", Some("pb"))
                .is_none()
        );
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", None)
                .is_none()
        );
        assert_eq!(
            faults
                .strike(&Method::GET, "/partner/links", Some("pa"))
                .map(|strike| strike.action),
            Some(Action::Drop)
        );
    }

    #[test]
    fn bad_faults_are_refused() {
        let faults = Faults::new();
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"status": 99}),
            serde_json::json!({"status": 500, "probability": 1.5}),
            serde_json::json!({"status": 500, "times": 0}),
            serde_json::json!({"status": 500, "path": "partner"}),
            serde_json::json!({"status": 500, "method": "NOT A METHOD"}),
        ] {
            assert!(faults.add(fault(bad.clone()), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_faulted_m2m_429_has_the_vendor_shape_and_retry_after() {
        let response = faulted_response("/partner/links", StatusCode::TOO_MANY_REQUESTS, None);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
    }
}
