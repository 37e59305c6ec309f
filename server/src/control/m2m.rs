//! Playing the M2M end user and the vendor's portal: `POST /_sandbox/m2m/links/{linkId}/open`,
//! `.../operation`, `.../operation/cancel`, and `PUT /_sandbox/m2m/webhook-config`. Each
//! change sends its documented webhook.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{OpenLinkRequest, OperationRequest, WebhookConfig};
use warp::reply::Response;

use super::error::{ControlError, json, json_or_default};
use super::{scope, write_scope};
use crate::ops::identity::Scope;
use crate::ops::m2m::{
    URL_RULE, cancel_operation, complete_operation, is_acceptable_callback, open_link,
};
use crate::store::m2m::Partner;
use crate::wire::{BodyError, Request};

/// The partner owning the path's link, as `scope` sees it (another tenant's is not found).
fn owner(request: &Request, scope: &Scope) -> Result<Arc<Partner>, ControlError> {
    scope
        .link_owner(&request.app, request.param("linkId"))
        .ok_or_else(|| ControlError::NotFound("Link not found".into()))
}

/// POST /_sandbox/m2m/links/{linkId}/open {userAgent, platform, language}
pub fn open(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let device: OpenLinkRequest = json_or_default(body)?;
    let partner = owner(request, &scope)?;
    let view = open_link(&request.app, &partner, request.param("linkId"), device)?;
    Ok(crate::wire::json(StatusCode::OK, &view))
}

/// POST /_sandbox/m2m/links/{linkId}/operation {amount, fee?, exchangeRate?, sendCurrency?, receiveCurrency?}
pub fn operation(
    request: &Request,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let operation: OperationRequest = json(body)?;
    let partner = owner(request, &scope)?;
    let view = complete_operation(&request.app, &partner, request.param("linkId"), operation)?;
    Ok(crate::wire::json(StatusCode::CREATED, &view))
}

/// POST /_sandbox/m2m/links/{linkId}/operation/cancel
pub fn cancel(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    let partner = owner(request, &scope)?;
    let view = cancel_operation(&request.app, &partner, request.param("linkId"))?;
    Ok(crate::wire::json(StatusCode::OK, &view))
}

/// PUT /_sandbox/m2m/webhook-config {url}
pub fn webhook_config(
    request: &Request,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ControlError> {
    // Read and checked before the caller's tenant is made: a request refused makes none
    // (nor counts one toward `--max-tenants`).
    scope(request)?.partner()?;
    let config: WebhookConfig = json(body)?;
    if let Some(url) = &config.url
        && !is_acceptable_callback(url)
    {
        return Err(ControlError::invalid(format!("The url field {URL_RULE}")));
    }
    let scope = write_scope(request)?;
    let partner = scope.partner()?;
    partner.set_webhook_url(config.url)?;
    Ok(crate::wire::json(
        StatusCode::OK,
        &WebhookConfig {
            url: partner.webhook_url(),
        },
    ))
}
