//! Playing the M2M end user and the vendor's portal: `POST /_sandbox/m2m/links/{linkId}/open`,
//! `.../operation`, `.../operation/cancel`, and `PUT /_sandbox/m2m/webhook-config`. Each
//! change sends its documented webhook.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use linkbox_contracts::m2m::{DeviceInfo, OperationAmount};
use linkbox_contracts::sandbox::{
    DataRequestView, OpenLinkRequest, OpenedLink, OperationRequest, OperationView, WebhookConfig,
};
use linkbox_contracts::timefmt;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, json, json_or_default, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::body;
use crate::m2m::validate::is_acceptable_callback;
use crate::store::m2m::{NewOperation, Partner};
use crate::webhooks::events;

const MAX_BODY: usize = 64 * 1024;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path("m2m")
        .and(
            open(app.clone())
                .or(operation(app.clone()))
                .unify()
                .or(cancel(app.clone()))
                .unify()
                .or(webhook_config(app))
                .unify(),
        )
        .boxed()
}

/// POST /_sandbox/m2m/links/{linkId}/open {userAgent, platform, language}
fn open(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links" / String / "open")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY))
        .map(|link_id: String, app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let device: OpenLinkRequest = json_or_default(body)?;
                open_link(&app, &scope, &link_id, device)
            })())
        })
        .boxed()
}

fn open_link(
    app: &App,
    scope: &Scope,
    link_id: &str,
    device: OpenLinkRequest,
) -> Result<Response, ControlError> {
    let partner = scope.link_owner(app, link_id)?;
    let view = open_as_end_user(app, &partner, link_id, device)?;
    Ok(crate::http::json(StatusCode::OK, &view))
}

/// Opens `link_id` as its end user: the first open sends `link.opened` and, when the user's
/// CIP data is incomplete, `user.data_request`. The widget page opens links through here.
pub fn open_as_end_user(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
    device: OpenLinkRequest,
) -> Result<OpenedLink, ControlError> {
    let opened = partner.open_link(link_id, app.clock.now())?;
    if opened.first_open {
        let device = DeviceInfo {
            user_agent: device.user_agent,
            platform: device.platform,
            language: device.language,
        };
        events::link_opened(app, partner, &opened.link, device);
    }
    if let Some(request) = &opened.data_request {
        events::data_request(app, partner, &opened.link, request);
    }
    Ok(OpenedLink {
        link_id: opened.link.item.link_id.clone(),
        status: opened.link.item.status,
        opened_at: opened.link.item.opened_at.clone(),
        first_open: opened.first_open,
        data_request: opened.data_request.map(|request| DataRequestView {
            reply_endpoint: events::reply_endpoint(app, &request.data_request_id),
            data_request_id: request.data_request_id,
            required_fields: request.required_fields,
            expires_at: timefmt::millis(request.expires_at),
        }),
    })
}

/// Completes a transfer on `link_id` and sends `operation.created`. The widget page's
/// "complete" button comes through here.
pub fn complete_operation(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
    request: OperationRequest,
) -> Result<OperationView, ControlError> {
    let request = new_operation(request)?;
    let operation = partner.create_operation(link_id, request, app.clock.now())?;
    let link = partner.link(link_id)?;
    events::operation_created(app, partner, &link, &operation);
    Ok(operation)
}

/// Cancels `link_id`'s live operation and sends `operation.cancelled`. The widget page's
/// "cancel" button comes through here.
pub fn cancel_operation(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
) -> Result<OperationView, ControlError> {
    let operation = partner.cancel_operation(link_id, app.clock.now())?;
    let link = partner.link(link_id)?;
    events::operation_cancelled(app, partner, &link, &operation);
    Ok(operation)
}

/// POST /_sandbox/m2m/links/{linkId}/operation {amount, fee?, exchangeRate?, sendCurrency?, receiveCurrency?}
fn operation(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links" / String / "operation")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY))
        .map(|link_id: String, app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let request: OperationRequest = json(body)?;
                let partner = scope.link_owner(&app, &link_id)?;
                let operation = complete_operation(&app, &partner, &link_id, request)?;
                Ok(crate::http::json(StatusCode::CREATED, &operation))
            })())
        })
        .boxed()
}

/// POST /_sandbox/m2m/links/{linkId}/operation/cancel
fn cancel(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("links" / String / "operation" / "cancel")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|link_id: String, app: App, headers: HeaderMap| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let partner = scope.link_owner(&app, &link_id)?;
                let operation = cancel_operation(&app, &partner, &link_id)?;
                Ok(crate::http::json(StatusCode::OK, &operation))
            })())
        })
        .boxed()
}

/// Checks the amounts and derives what the recipient gets: (amount − fee) × exchangeRate,
/// to the cent.
fn new_operation(request: OperationRequest) -> Result<NewOperation, ControlError> {
    let send = request.amount;
    if !send.is_finite() || send <= 0.0 {
        return Err(ControlError::invalid(
            "The amount field must be a number greater than 0",
        ));
    }
    let fee = request.fee.unwrap_or(0.0);
    if !fee.is_finite() || fee < 0.0 || fee >= send {
        return Err(ControlError::invalid(
            "The fee field must be at least 0 and less than the amount",
        ));
    }
    let rate = request.exchange_rate.unwrap_or(1.0);
    if !rate.is_finite() || rate <= 0.0 {
        return Err(ControlError::invalid(
            "The exchangeRate field must be a number greater than 0",
        ));
    }
    let currency = |field: &str, value: Option<String>, default: &str| {
        let value = value.unwrap_or_else(|| default.to_owned());
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(value)
        } else {
            Err(ControlError::invalid(format!(
                "The {field} field must be a three-letter ISO 4217 code like USD"
            )))
        }
    };
    let send_currency = currency("sendCurrency", request.send_currency, "USD")?;
    let receive_currency = currency("receiveCurrency", request.receive_currency, &send_currency)?;
    Ok(NewOperation {
        amount: OperationAmount {
            send,
            receive: ((send - fee) * rate * 100.0).round() / 100.0,
            fee,
            send_currency,
            receive_currency,
        },
    })
}

/// PUT /_sandbox/m2m/webhook-config {url}
fn webhook_config(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("webhook-config")
        .and(warp::put())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY))
        .map(|app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let partner: &Arc<_> = scope.partner()?;
                let config: WebhookConfig = json(body)?;
                if let Some(url) = &config.url
                    && !is_acceptable_callback(url)
                {
                    return Err(ControlError::invalid(
                        "The url field must be an HTTPS URL, or http to localhost, 127.0.0.1 or [::1]",
                    ));
                }
                partner.set_webhook_url(config.url);
                Ok(crate::http::json(
                    StatusCode::OK,
                    &WebhookConfig {
                        url: partner.webhook_url(),
                    },
                ))
            })())
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_receives_the_amount_less_fee_at_the_rate() {
        let operation = new_operation(OperationRequest {
            amount: 100.0,
            fee: Some(3.5),
            exchange_rate: Some(17.2),
            receive_currency: Some("MXN".into()),
            ..OperationRequest::default()
        })
        .expect("valid");
        assert_eq!(operation.amount.receive, 1659.8);
        assert_eq!(operation.amount.send_currency, "USD");
        assert_eq!(operation.amount.receive_currency, "MXN");
    }

    #[test]
    fn bad_amounts_are_refused() {
        for request in [
            OperationRequest::default(),
            OperationRequest {
                amount: 10.0,
                fee: Some(10.0),
                ..OperationRequest::default()
            },
            OperationRequest {
                amount: 10.0,
                send_currency: Some("usd".into()),
                ..OperationRequest::default()
            },
        ] {
            assert!(new_operation(request.clone()).is_err(), "{request:?}");
        }
    }
}
