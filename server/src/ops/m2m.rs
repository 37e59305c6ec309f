//! Playing the M2M end user: open a link, complete or cancel its transfer, each sending its
//! documented webhook. The control API (`/_sandbox/m2m/...`) and the widget page both come
//! through here.

use std::sync::Arc;

use linkbox_contracts::m2m::{DeviceInfo, OperationAmount};
use linkbox_contracts::sandbox::{
    DataRequestView, OpenLinkRequest, OpenedLink, OperationRequest, OperationView,
};
use linkbox_contracts::timefmt;

use super::{Error, events};
use crate::app::App;
use crate::store::m2m::{NewOperation, Partner};

/// Opens `link_id` as its end user: the first open sends `link.opened` and, when the user's
/// CIP data is incomplete, `user.data_request`.
pub fn open_link(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
    device: OpenLinkRequest,
) -> Result<OpenedLink, Error> {
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

/// Completes a transfer on `link_id` and sends `operation.created`.
pub fn complete_operation(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
    request: OperationRequest,
) -> Result<OperationView, Error> {
    let request = new_operation(request)?;
    let operation = partner.create_operation(link_id, request, app.clock.now())?;
    let link = partner.link(link_id)?;
    events::operation_created(app, partner, &link, &operation);
    Ok(operation)
}

/// Cancels `link_id`'s live operation and sends `operation.cancelled`.
pub fn cancel_operation(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
) -> Result<OperationView, Error> {
    let operation = partner.cancel_operation(link_id, app.clock.now())?;
    let link = partner.link(link_id)?;
    events::operation_cancelled(app, partner, &link, &operation);
    Ok(operation)
}

/// The smallest amount a transfer may send: a cent. [design]
pub const MIN_AMOUNT: f64 = linkbox_contracts::sandbox::OperationRequest::MIN_AMOUNT;
/// The largest amount a transfer may send: one billion. [design]
pub const MAX_AMOUNT: f64 = linkbox_contracts::sandbox::OperationRequest::MAX_AMOUNT;
/// The largest exchange rate a transfer may use. [design]
pub const MAX_EXCHANGE_RATE: f64 = linkbox_contracts::sandbox::OperationRequest::MAX_EXCHANGE_RATE;

/// Checks the amounts and derives what the recipient gets: (amount − fee) × exchangeRate,
/// to the cent.
///
/// Every number is finite and within a stated range before it reaches arithmetic or
/// storage: amount in [0.01, [`MAX_AMOUNT`]], fee in [0, amount), exchangeRate in
/// (0, [`MAX_EXCHANGE_RATE`]]. So what the recipient gets is at most 10¹³, exact to the cent
/// in an `f64`, and never infinite (an infinite amount used to be stored as `null` and make
/// the state file unreadable).
fn new_operation(request: OperationRequest) -> Result<NewOperation, Error> {
    let send = request.amount;
    if !send_in_range(send) {
        return Err(Error::invalid(format!(
            "The amount field must be a number from 0.01 to {MAX_AMOUNT:.0}"
        )));
    }
    // A fee of `-0` is no fee: kept as 0, as a vendor in JavaScript echoes it (`-0` is
    // written `0`), never shown back as `-0.0`.
    let fee = request.fee.filter(|&fee| fee != 0.0).unwrap_or(0.0);
    if !fee_in_range(fee, send) {
        return Err(Error::invalid(
            "The fee field must be at least 0 and less than the amount",
        ));
    }
    let rate = request.exchange_rate.unwrap_or(1.0);
    if !rate.is_finite() || rate <= 0.0 || rate > MAX_EXCHANGE_RATE {
        return Err(Error::invalid(format!(
            "The exchangeRate field must be a number greater than 0 and at most {MAX_EXCHANGE_RATE:.0}"
        )));
    }
    let receive = ((send - fee) * rate * 100.0).round() / 100.0;
    if !receive.is_finite() {
        return Err(Error::invalid(
            "The amount, fee and exchangeRate fields give no finite amount received",
        ));
    }
    let currency = |field: &str, value: Option<String>, default: &str| {
        let value = value.unwrap_or_else(|| default.to_owned());
        if is_currency(&value) {
            Ok(value)
        } else {
            Err(Error::invalid(format!(
                "The {field} field must be a three-letter ISO 4217 code like USD"
            )))
        }
    };
    let send_currency = currency("sendCurrency", request.send_currency, "USD")?;
    let receive_currency = currency("receiveCurrency", request.receive_currency, &send_currency)?;
    Ok(NewOperation {
        amount: OperationAmount {
            send,
            receive,
            fee,
            send_currency,
            receive_currency,
        },
    })
}

/// An amount sent, from 0.01 to [`MAX_AMOUNT`].
fn send_in_range(send: f64) -> bool {
    (MIN_AMOUNT..=MAX_AMOUNT).contains(&send)
}

/// A fee, from 0 to less than what is sent.
fn fee_in_range(fee: f64, send: f64) -> bool {
    fee.is_finite() && fee >= 0.0 && fee < send
}

/// A currency code as ISO 4217 writes one: three capital letters.
fn is_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// The field of a stored operation's amount no operation made through the API could have,
/// with the rule it breaks, or `None`: [`new_operation`]'s bounds, held to what it stores
/// (what was received, rather than the rate that gave it: at most the send less the fee at
/// [`MAX_EXCHANGE_RATE`]). A snapshot restore holds its operations to it.
pub fn impossible_amount(amount: &OperationAmount) -> Option<(&'static str, String)> {
    let most_received = ((amount.send - amount.fee) * MAX_EXCHANGE_RATE * 100.0).round() / 100.0;
    let currency = || "a three-letter ISO 4217 code like USD".to_owned();
    if !send_in_range(amount.send) {
        Some(("send", format!("from 0.01 to {MAX_AMOUNT:.0}")))
    } else if !fee_in_range(amount.fee, amount.send) {
        Some(("fee", "at least 0 and less than the send".to_owned()))
    } else if !(0.0..=most_received).contains(&amount.receive)
        // Rounded to the cent, as every operation rounds it.
        || (amount.receive * 100.0).round() / 100.0 != amount.receive
    {
        Some((
            "receive",
            format!(
                "what the send less the fee comes to at an exchange rate above 0 and at most \
                 {MAX_EXCHANGE_RATE:.0}, rounded to the cent"
            ),
        ))
    } else if !is_currency(&amount.send_currency) {
        Some(("sendCurrency", currency()))
    } else if !is_currency(&amount.receive_currency) {
        Some(("receiveCurrency", currency()))
    } else {
        None
    }
}

/// [`is_acceptable_callback`] in words, for the control API's messages: "The url field
/// {URL_RULE}".
pub const URL_RULE: &str =
    "must be an HTTPS URL, or http to localhost, 127.0.0.1 or [::1], of at most 2084 characters";

/// An https URL, or http to a loopback host for local receivers, of at most
/// [`MAX_URL_CHARS`](linkbox_contracts::m2m::MAX_URL_CHARS): what the vendor accepts as a
/// `callbackUrl` or webhook URL. [doc + design]
pub fn is_acceptable_callback(text: &str) -> bool {
    let most = linkbox_contracts::m2m::MAX_URL_CHARS;
    // Counted in characters, and only when the bytes could be too many.
    if text.len() > most && text.chars().count() > most {
        return false;
    }
    if !super::writes_host(text) {
        return false;
    }
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_rule_states_the_limit_in_force() {
        let most = linkbox_contracts::m2m::MAX_URL_CHARS;
        assert!(URL_RULE.ends_with(&format!("of at most {most} characters")));
    }

    #[test]
    fn a_callback_is_taken_only_as_the_parser_reads_it() {
        assert!(is_acceptable_callback("https://example.com/x"));
        assert!(is_acceptable_callback("http://127.0.0.1:9000/hook"));
        // The parser would trim or drop each of these spaces and control characters, and
        // the URL as sent is what is stored and called.
        for url in [
            " https://example.com/x",
            "https://example.com/x\n",
            "https://exa\tmple.com/x",
            "https://example.com/a b",
            "https://example.com/\u{7f}",
        ] {
            assert!(!is_acceptable_callback(url), "{url:?}");
        }
    }

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

    /// What every operation stores is an amount a restore takes back; a `receive` not
    /// rounded to the cent is one none stores.
    #[test]
    fn every_operations_amount_is_possible_and_a_sub_cent_receive_is_not() {
        for amount in [0.01, 1.0, 100.5, 999.99, 12_345.67, MAX_AMOUNT] {
            for fee in [0.0, 0.005, 0.01, 2.25] {
                for rate in [0.0001, 0.5, 1.0, 17.1234, 19.87, MAX_EXCHANGE_RATE] {
                    let Ok(operation) = new_operation(OperationRequest {
                        amount,
                        fee: Some(fee),
                        exchange_rate: Some(rate),
                        ..OperationRequest::default()
                    }) else {
                        continue;
                    };
                    assert_eq!(
                        impossible_amount(&operation.amount),
                        None,
                        "{amount} {fee} {rate}: {:?}",
                        operation.amount
                    );
                }
            }
        }
        let mut operation = new_operation(OperationRequest {
            amount: 100.5,
            fee: Some(2.25),
            exchange_rate: Some(17.1234),
            ..OperationRequest::default()
        })
        .expect("valid");
        assert_eq!(operation.amount.receive, 1682.37);
        operation.amount.receive = 1682.375;
        assert_eq!(
            impossible_amount(&operation.amount).map(|(field, _)| field),
            Some("receive")
        );
    }

    #[test]
    fn a_negative_zero_fee_is_no_fee() {
        let operation = new_operation(OperationRequest {
            amount: 100.0,
            fee: Some(-0.0),
            ..OperationRequest::default()
        })
        .expect("valid");
        assert!(
            operation.amount.fee.is_sign_positive(),
            "{:?}",
            operation.amount
        );
        let shown = serde_json::to_value(&operation.amount).expect("json");
        assert_eq!(shown["fee"].to_string(), "0", "{shown}");
    }

    #[test]
    fn the_largest_transfer_stays_finite_and_exact() {
        let operation = new_operation(OperationRequest {
            amount: MAX_AMOUNT,
            exchange_rate: Some(MAX_EXCHANGE_RATE),
            ..OperationRequest::default()
        })
        .expect("valid");
        assert_eq!(operation.amount.receive, 1e13);
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
                amount: 1e307,
                ..OperationRequest::default()
            },
            OperationRequest {
                amount: f64::INFINITY,
                ..OperationRequest::default()
            },
            OperationRequest {
                amount: 0.001,
                ..OperationRequest::default()
            },
            OperationRequest {
                amount: MAX_AMOUNT,
                exchange_rate: Some(MAX_EXCHANGE_RATE * 2.0),
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
