//! `GET|PUT /_sandbox/snapshot`: the caller's whole M2M state as JSON, and its restore.
//! A snapshot belongs to one partner (its ids embed the slug), so both need a partner key.
//!
//! Both answer with the snapshot streamed link by link ([`SnapshotPieces`]): the extra
//! memory of a GET is one piece, whatever the partner holds. A PUT takes back whatever
//! size a GET wrote: its body may be as large as the largest of [`MAX_SNAPSHOT_BYTES`],
//! the largest snapshot this process wrote of the partner, and (for a partner of 50,000
//! links or more, as after a restart with `--state`) what a GET would write now. That last
//! is measured only for a body that may be larger than both others (its declared length is,
//! or it declares none), and at most once per state of the partner: measuring writes the
//! whole snapshot, about a second per half a million links.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use linkbox_contracts::sandbox::M2mSnapshot;
use warp::Reply;
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::ops::m2m::{URL_RULE, impossible_amount, is_acceptable_callback};
use crate::store::m2m::{Partner, RestoreError, SnapshotPieces};
use crate::wire::{BodyError, Request};

/// Largest snapshot accepted from a partner no larger snapshot was written of.
pub const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// Links from which a PUT's limit also counts what a GET would write now.
const MEASURED_FROM_LINKS: usize = 50_000;

/// GET /_sandbox/snapshot
pub fn take(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    Ok(streamed(scope.partner()?))
}

/// The body limit of a PUT by this request's caller (see the module documentation).
pub fn restore_limit(request: &Request) -> usize {
    let Ok(scope) = scope(request) else {
        return MAX_SNAPSHOT_BYTES;
    };
    let Ok(partner) = scope.partner() else {
        return MAX_SNAPSHOT_BYTES;
    };
    let known = MAX_SNAPSHOT_BYTES.max(partner.largest_snapshot());
    let declared = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if !needs_measure(partner.link_count(), declared, known) {
        return known;
    }
    known.max(partner.snapshot_size_now())
}

/// Whether a PUT declaring `declared` bytes to a partner of `links` links needs the partner
/// measured, when `known` bytes are allowed already: only a body that may be larger than
/// every size known does. A PUT that declares a length within them (an empty one, a
/// mistyped one) costs nothing.
fn needs_measure(links: usize, declared: Option<u64>, known: usize) -> bool {
    links >= MEASURED_FROM_LINKS && declared.is_none_or(|length| length > known as u64)
}

/// PUT /_sandbox/snapshot
pub fn restore(
    request: &Request,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ControlError> {
    // Read and checked on the partner as it is (a new key's stranger), so that a snapshot
    // refused makes no tenant; made real only for one that restores.
    let scope = scope(request)?;
    let snapshot: M2mSnapshot = json(body)?;
    let rebuilt = {
        let partner = scope.partner()?;
        check_urls(partner, &snapshot)?;
        check_flows(&request.app.settings.flows, &snapshot)?;
        check_amounts(&snapshot)?;
        partner.rebuilt(snapshot).map_err(refused)?
    };
    let scope = scope.materialize(&request.app)?;
    let partner = scope.partner()?;
    partner.restore_rebuilt(rebuilt).map_err(refused)?;
    Ok(streamed(partner))
}

/// A restore refused, as the control API answers it.
fn refused(error: RestoreError) -> ControlError {
    match error {
        RestoreError::Invalid(message) => ControlError::invalid(message),
        RestoreError::StorageFull(full) => ControlError::StorageFull(full),
    }
}

/// Every link's `flow` one this sandbox serves, as a create is held to: a restored link of
/// another flow would be served a widget no create could have made.
fn check_flows(flows: &[String], snapshot: &M2mSnapshot) -> Result<(), ControlError> {
    match snapshot
        .links
        .iter()
        .find(|link| !flows.contains(&link.flow))
    {
        Some(link) => Err(ControlError::invalid(format!(
            "Invalid request body at links: link {} has flow {:?}, which this sandbox does not \
             serve (its flows: {})",
            link.link_id,
            link.flow,
            flows.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Every operation's amount one `POST /_sandbox/m2m/links/{linkId}/operation` could have
/// stored ([`impossible_amount`]), or a 400 naming the first that no operation could.
fn check_amounts(snapshot: &M2mSnapshot) -> Result<(), ControlError> {
    for (index, operation) in snapshot.operations.iter().enumerate() {
        if let Some((field, rule)) = impossible_amount(&operation.amount) {
            return Err(ControlError::invalid(format!(
                "Invalid request body at operations[{index}].amount.{field}: operation {}'s \
                 {field} must be {rule}",
                operation.operation_id
            )));
        }
    }
    Ok(())
}

/// The snapshot's URLs, held to the rule `PUT /_sandbox/m2m/webhook-config` and a link's
/// `callbackUrl` are: HTTPS, or http to a loopback host. A `webhookUrl` equal to the
/// partner's own, or to the one its config file gives, passes as it is, so a snapshot of a
/// partner whose URL a config file set restores as it was taken, also once a test has
/// changed the URL since.
fn check_urls(partner: &Partner, snapshot: &M2mSnapshot) -> Result<(), ControlError> {
    if let Some(url) = &snapshot.webhook_url
        && partner.webhook_url().as_deref() != Some(url.as_str())
        && partner.configured_webhook_url() != Some(url.as_str())
        && !is_acceptable_callback(url)
    {
        return Err(ControlError::invalid(format!(
            "Invalid request body at webhookUrl: it {URL_RULE}"
        )));
    }
    let bad = snapshot.links.iter().position(|link| {
        link.callback_url
            .as_deref()
            .is_some_and(|url| !is_acceptable_callback(url))
    });
    match bad {
        Some(index) => Err(ControlError::invalid(format!(
            "Invalid request body at links[{index}].callbackUrl: it {URL_RULE}"
        ))),
        None => Ok(()),
    }
}

/// 200 with the partner's snapshot, written piece by piece as the client reads it.
fn streamed(partner: &Arc<Partner>) -> Response {
    let pieces: SnapshotPieces = partner.snapshot_pieces();
    let mut response = warp::reply::stream(futures_util::stream::iter(pieces)).into_response();
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_body_that_may_pass_every_known_size_has_a_large_partner_measured() {
        let known = MAX_SNAPSHOT_BYTES;
        let large = MEASURED_FROM_LINKS;
        // An empty, a small and a body as large as allowed already: nothing to measure.
        for declared in [0, 1, known as u64] {
            assert!(!needs_measure(large, Some(declared), known), "{declared}");
        }
        // Larger than every size known, or of a length not declared: measured.
        assert!(needs_measure(large, Some(known as u64 + 1), known));
        assert!(needs_measure(large, None, known));
        // A smaller partner's snapshot is never measured: it fits what is allowed already.
        assert!(!needs_measure(large - 1, Some(u64::MAX), known));
        assert!(!needs_measure(large - 1, None, known));
    }
}
