//! linkbox's own control API under `/_sandbox`, and the JSON error envelope linkbox uses
//! where no vendor contract applies: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every endpoint but `GET /_sandbox/health` says who is asking ([`crate::ops::identity`]): a partner's
//! `X-API-Key` (or `Authorization: Bearer <key>`) scopes it to that partner — another
//! partner's link id is 404, its journal entries and deliveries are invisible;
//! `Authorization: Bearer <--admin-token>` sees every tenant; and when no admin token is
//! configured, a request with no key at all is an admin request.
//!
//! Errors, all in the envelope above ([`error::ControlError`]): 401 `UNAUTHORIZED` (no key
//! where one is needed), 401 `INVALID_API_KEY`, 403 `PARTNER_SUSPENDED`, 400
//! `INVALID_REQUEST` (bad body or query; the message names the field), 400 `TENANT_REQUIRED`
//! (an admin call to an endpoint that acts on one partner), 404 `NOT_FOUND`, 409 with a
//! lifecycle code (`LINK_EXPIRED`, `LINK_REVOKED`, `LINK_NOT_OPENED`, `OPERATION_EXISTS`,
//! `NO_OPERATION`, `DELIVERY_IN_FLIGHT`), 410 `LINK_EXPIRED` / `LINK_USED_UP` /
//! `LEAF_USER_DELETED` for a Leaf link that can no longer be used, 413 for an oversized
//! body, 415 for a body of a type that is not JSON.
//!
//! Every endpoint reads its body one way ([`body_first`]), an endpoint that takes none as
//! well ([`call`], [`heavy`]: nothing or `{}`, any field refused, named); only the health
//! check reads nothing of it, and the snapshot's restore takes fields it does not know (a
//! later linkbox's).
//!
//! One file per concern: [`clock`], [`drift`] (shadow mode's report), [`m2m`] (playing the end user and the portal), [`leaf`]
//! (playing the Leaf end user), [`seed`] (fake data), [`webhooks`], [`journal`], [`faults`],
//! [`snapshot`], [`reset`]; every route in one table ([`routes`]). The caller is the one the
//! serving layer resolved ([`crate::ops::identity`]); what the control API does that another
//! surface does too lives in [`crate::ops`].

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

use crate::offload::{self, Turn};
use crate::ops::identity::Scope;
use crate::wire::router::CALLERS_MOST;
pub use crate::wire::sandbox_error as error;
use crate::wire::{self, BodyError, Request, Router};
use error::{ControlError, render};

pub mod clock;
pub mod drift;
pub mod error;
pub mod faults;
pub mod journal;
pub mod leaf;
pub mod m2m;
pub mod reset;
pub mod seed;
pub mod snapshot;
pub mod webhooks;

/// Who a control request acts for. A key (or Leaf username) that has not written yet is
/// an empty stranger here: reads answer as for a new tenant and create nothing.
fn scope(request: &Request) -> Result<Scope, ControlError> {
    Ok(request.caller.scope(&request.app)?)
}

/// Who a control request that stores something for its tenant acts for: the tenant made
/// real on its first write (refused under `--max-tenants`).
fn write_scope(request: &Request) -> Result<Scope, ControlError> {
    Ok(scope(request)?.materialize(&request.app)?)
}

/// Limits of the control API's bodies.
const SMALL_BODY: usize = 4 * 1024;
const BODY: usize = 16 * 1024;
const LARGE_BODY: usize = 64 * 1024;

/// Every control route. Each that reads a body says how much ([`Router::reading`]), so that
/// a shared sandbox can read it before the request's transaction (`http::answer`); the
/// snapshot's restore, whose limit is the caller's own, is read so up to what one caller
/// may have read at once, and measured against its own limit in the transaction.
pub fn routes() -> Router {
    Router::new()
        .get_fixed("/_sandbox/health", health)
        .get("/_sandbox/clock", call(clock::read))
        .reading(SMALL_BODY)
        .post("/_sandbox/clock", with_body(SMALL_BODY, clock::change))
        .reading(SMALL_BODY)
        .post("/_sandbox/reset", heavy(reset::reset))
        .reading(SMALL_BODY)
        .post(
            "/_sandbox/m2m/links/{linkId}/open",
            with_body(LARGE_BODY, m2m::open),
        )
        .reading(LARGE_BODY)
        .post(
            "/_sandbox/m2m/links/{linkId}/operation",
            with_body(LARGE_BODY, m2m::operation),
        )
        .reading(LARGE_BODY)
        .post(
            "/_sandbox/m2m/links/{linkId}/operation/cancel",
            call(m2m::cancel),
        )
        .reading(SMALL_BODY)
        .put(
            "/_sandbox/m2m/webhook-config",
            with_body(LARGE_BODY, m2m::webhook_config),
        )
        .reading(LARGE_BODY)
        .post("/_sandbox/leaf/magic-links/{id}/access", call(leaf::access))
        .reading(SMALL_BODY)
        .post(
            "/_sandbox/leaf/magic-links/{id}/connect",
            with_body(SMALL_BODY, leaf::connect),
        )
        .reading(SMALL_BODY)
        .get("/_sandbox/webhooks", heavy(webhooks::list))
        .reading(SMALL_BODY)
        .post(
            "/_sandbox/webhooks/{deliveryId}/replay",
            call(webhooks::replay),
        )
        .reading(SMALL_BODY)
        .get("/_sandbox/drift", heavy(drift::report))
        .reading(SMALL_BODY)
        .get("/_sandbox/drift/junit", heavy(drift::junit))
        .reading(SMALL_BODY)
        .delete("/_sandbox/drift", call(drift::clear))
        .reading(SMALL_BODY)
        .get("/_sandbox/requests", heavy(journal::list))
        .reading(SMALL_BODY)
        .delete("/_sandbox/requests", heavy(journal::clear))
        .reading(SMALL_BODY)
        .post(
            "/_sandbox/requests/verify",
            heavy_with_body(BODY, journal::verify),
        )
        .reading(BODY)
        .post("/_sandbox/faults", with_body(LARGE_BODY, faults::add))
        .reading(LARGE_BODY)
        .get("/_sandbox/faults", heavy(faults::list))
        .reading(SMALL_BODY)
        .delete("/_sandbox/faults", call(faults::clear))
        .reading(SMALL_BODY)
        .get("/_sandbox/snapshot", heavy(snapshot::take))
        .reading(SMALL_BODY)
        .put("/_sandbox/snapshot", |mut request: Request| async move {
            if let Err(refusal) = request.caller.scope(&request.app) {
                return ControlError::from(refusal).into_response();
            }
            if let Some(refused) = refused_type(&request) {
                return refused.into_response();
            }
            // No larger than one caller may have read at once (`--max-bodies-mib`).
            let most = usize::try_from(request.app.bodies.caller_most()).unwrap_or(usize::MAX);
            let limit = snapshot::restore_limit(&request).min(most);
            let body = match request.body(limit).await {
                // Read before the transaction, to what one caller may read at once.
                Ok(body) if body.len() > limit => Err(BodyError::TooLarge),
                body => body,
            };
            if body == Err(BodyError::TooLarge) {
                return ControlError::TooLarge(Some(limit)).into_response();
            }
            let whose = request.caller.tenant().cloned();
            offload::run(whose, move || render(snapshot::restore(&request, body))).await
        })
        .reading(CALLERS_MOST)
        .post("/_sandbox/seed", heavy_with_body(BODY, seed::seed))
        .reading(BODY)
}

/// A handler of an endpoint that takes no body. One sent all the same is read as the
/// others' are ([`body_first`]: refused before it is read for a stranger or a type that is
/// not JSON, 413 past [`SMALL_BODY`]) and must be nothing or `{}` ([`error::no_body`]): a
/// field it does not take is refused, named, rather than ignored.
fn call(
    handler: fn(&Request) -> Result<Response, ControlError>,
) -> impl Fn(Request) -> BoxedAnswer + Clone + Send + Sync + 'static {
    body_first(SMALL_BODY, false, taking_none(handler))
}

/// [`call`] for a handler that walks a tenant's or the whole sandbox's state: it runs off
/// the serving threads ([`offload`]).
fn heavy(
    handler: fn(&Request) -> Result<Response, ControlError>,
) -> impl Fn(Request) -> BoxedAnswer + Clone + Send + Sync + 'static {
    body_first(SMALL_BODY, true, taking_none(handler))
}

/// `handler`, after the body it does not take is found to be nothing ([`error::no_body`]).
fn taking_none(
    handler: fn(&Request) -> Result<Response, ControlError>,
) -> impl Fn(&Request, Result<Bytes, BodyError>) -> Result<Response, ControlError>
+ Copy
+ Send
+ Sync
+ 'static {
    move |request, body| {
        error::no_body(body)?;
        handler(request)
    }
}

/// A handler that reads the body first, up to `limit` bytes; off the serving threads when
/// the body is large ([`wire::is_heavy`]).
fn with_body(
    limit: usize,
    handler: fn(&Request, Result<Bytes, BodyError>) -> Result<Response, ControlError>,
) -> impl Fn(Request) -> BoxedAnswer + Clone + Send + Sync + 'static {
    body_first(limit, false, handler)
}

/// A handler that reads the body first, up to `limit` bytes, and whatever its size does
/// enough work to run off the serving threads ([`offload`]).
fn heavy_with_body(
    limit: usize,
    handler: fn(&Request, Result<Bytes, BodyError>) -> Result<Response, ControlError>,
) -> impl Fn(Request) -> BoxedAnswer + Clone + Send + Sync + 'static {
    body_first(limit, true, handler)
}

/// How a control endpoint reads its body (the snapshot's restore, whose limit is its own,
/// likewise): [`with_body`], and [`heavy_with_body`] when `heavy`.
fn body_first<H>(
    limit: usize,
    heavy: bool,
    handler: H,
) -> impl Fn(Request) -> BoxedAnswer + Clone + Send + Sync + 'static
where
    H: Fn(&Request, Result<Bytes, BodyError>) -> Result<Response, ControlError>
        + Copy
        + Send
        + Sync
        + 'static,
{
    move |mut request: Request| {
        Box::pin(async move {
            // A request with no one to act for is refused before its body is read (or
            // held, [`crate::bodies`]): the handler would refuse it first all the same.
            if let Err(refusal) = request.caller.scope(&request.app) {
                return ControlError::from(refusal).into_response();
            }
            if let Some(refused) = refused_type(&request) {
                return refused.into_response();
            }
            let body = request.body(limit).await;
            if body == Err(BodyError::TooLarge) {
                return ControlError::TooLarge(Some(limit)).into_response();
            }
            let turn = Turn::of(heavy || wire::is_heavy(&body), request.caller.tenant());
            offload::answer(turn, move || render(handler(&request, body))).await
        })
    }
}

/// Whether a control request's body would be refused before it is read: no one to act
/// for, or a type the control API does not read ([`refused_type`]).
pub fn refuses_unread(request: &Request) -> bool {
    request.caller.scope(&request.app).is_err() || refused_type(request).is_some()
}

/// A body said to be of a type the control API does not read (`text/plain`, XML,
/// multipart), or sent encoded (`Content-Encoding: gzip`), refused before it is read: 415. Bodies are JSON; one sent with no type, or
/// as `application/x-www-form-urlencoded` (what `curl -d` says unless told otherwise), is
/// read as JSON. A request without a body has no type to refuse, whatever it says. [design]
fn refused_type(request: &Request) -> Option<ControlError> {
    if !request.has_body() {
        return None;
    }
    // An encoded body is not decompressed: refused as the M2M API refuses one.
    if let Some(encoding) = wire::content_encoding(&request.headers) {
        return Some(ControlError::UnsupportedType(wire::encoding_refused(
            &encoding,
        )));
    }
    let given = request.headers.get(http::header::CONTENT_TYPE)?;
    if wire::is_json(&request.headers) {
        return None;
    }
    let text = given.to_str().unwrap_or_default();
    let mime = text.split(';').next().unwrap_or_default().trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return None;
    }
    Some(ControlError::UnsupportedType(format!(
        "Request body must be application/json, not {}",
        String::from_utf8_lossy(given.as_bytes())
    )))
}

/// A route's answer, boxed.
type BoxedAnswer = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// GET /_sandbox/health
/// The health check's answer. Its body never changes, so it is serialized once: probes ask
/// often, and each would otherwise pay for two strings and a buffer.
fn health() -> Response {
    static BODY: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let health = linkbox_contracts::sandbox::Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        serde_json::to_vec(&health).unwrap_or_default().into()
    });
    let mut response = Response::new(body.clone().into());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether `path` is the control API's (`/_sandbox` and everything under it): never faulted,
/// never journaled.
pub fn owns(path: &str) -> bool {
    path == "/_sandbox" || path.starts_with("/_sandbox/")
}

/// 404 in linkbox's envelope for every path no surface claims.
pub fn not_found(method: &Method, path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("No route for {method} {path}"),
    )
}

/// 405 in linkbox's envelope, with `Allow`, for a known path and another method.
pub fn wrong_method(method: &Method, path: &str, allow: String) -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {path}: use {allow}"),
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is serialized once and served again: every answer is the same JSON.
    #[tokio::test]
    async fn the_health_check_answers_ok_and_the_version_every_time() {
        use http_body_util::BodyExt;
        for _ in 0..2 {
            let response = health();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()[http::header::CONTENT_TYPE],
                "application/json"
            );
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(
                body,
                serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
            );
        }
    }
}
