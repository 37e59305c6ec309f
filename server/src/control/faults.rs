//! `POST|GET|DELETE /_sandbox/faults`: manage the fault table ([`crate::faults`]) that the
//! serving layer applies in front of every vendor route. A status without a body answers in
//! the vendor's own error shape: on `/partner` a 429 is `RATE_LIMIT_EXCEEDED` with
//! `Retry-After`, a 5xx `INTERNAL_ERROR`, and so on; elsewhere linkbox's envelope. Faults set
//! by a partner touch only requests made with that partner's key; admin faults touch every
//! request. Control requests are never faulted, so a sandbox cannot lock itself out.
//!
//! A fault that could never fire is refused (400) rather than kept ([`never_fires`]): one
//! whose path matches only control requests. A tenant's fault whose path matches only
//! requests that are usually reached without credentials — the Leaf login, the pages a
//! browser visits, the API documents — is kept, with an `X-Linkbox-Warning` saying it
//! touches only those requests that carry the tenant's own key or token (a fault's tenant
//! is read from a request's credentials, whatever its path), and that the admin's faults
//! touch them all. `DELETE` takes no query parameter: it removes every fault the caller
//! set, so a `?id=` it ignored would remove more than was asked.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{FaultPage, FaultRequest};
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::faults::{FaultRefused, PathPattern};
use crate::ops::identity;
use crate::wire::{BodyError, Request, no_content};

/// POST /_sandbox/faults
pub fn add(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    // Read and checked before the caller's tenant is made: a request refused makes none
    // (nor counts one toward `--max-tenants`).
    let fault: FaultRequest = json(body)?;
    let tenanted = scope(request)?.slug().is_some();
    let warning = match fault.path.as_deref() {
        Some(path) => never_fires(path, tenanted)?,
        None => None,
    };
    let refusal = |refused| match refused {
        FaultRefused::Invalid(message) => ControlError::invalid(message),
        FaultRefused::Full(message) => ControlError::Full(message),
    };
    let checked = crate::faults::check(fault).map_err(refusal)?;
    let unmade = scope(request)?;
    request
        .app
        .faults
        .has_room(&checked, unmade.slug())
        .map_err(refusal)?;
    let scope = unmade.materialize(&request.app)?;
    let tenant = scope.slug().map(Arc::from);
    let view = request
        .app
        .faults
        .add_checked(checked, tenant)
        .map_err(refusal)?;
    let mut response = crate::wire::json(StatusCode::CREATED, &view);
    if let Some(warning) = warning
        && let Ok(value) = http::HeaderValue::from_str(&warning)
    {
        response
            .headers_mut()
            .insert(linkbox_contracts::m2m::WARNING_HEADER, value);
    }
    Ok(response)
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
    super::error::no_query(
        &request.query,
        "DELETE /_sandbox/faults takes none, and removes every fault you set (to keep some, \
         remove all and add those back; a fault given times goes by itself once spent)",
    )?;
    request.app.faults.clear_set_by(scope.slug());
    Ok(no_content())
}

/// The refusal of a fault with path pattern `text` that could never fire: one matching only
/// control requests, which are never faulted. Otherwise the warning for a tenant's fault
/// matching only requests usually reached without credentials ([`identity::tenantless`]):
/// it touches only those that carry the tenant's own. A pattern that also matches any other
/// path (`/**`, `/*`) is neither. A pattern that does not parse is left for the table to
/// refuse, by name.
fn never_fires(text: &str, tenant: bool) -> Result<Option<String>, ControlError> {
    let Ok(pattern) = PathPattern::parse(text) else {
        return Ok(None);
    };
    if pattern.confined_to(super::owns) {
        return Err(ControlError::invalid(format!(
            "The path field {text:?} matches only control API paths (/_sandbox), and control \
             requests are never faulted, so this fault could never fire. Name a path of the \
             M2M or Leaf API, or of a page"
        )));
    }
    if tenant && pattern.confined_to(|path| super::owns(path) || identity::tenantless(path)) {
        return Ok(Some(format!(
            "requests to {} are usually made without credentials (the Leaf login, the pages \
             a browser visits, the API documents): this fault touches only those that carry \
             your own key or token; the admin's faults touch them all",
            text.escape_default()
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused: a pattern only control paths match (for anyone). Kept with a warning: a
    /// tenant's only tenantless paths match. Kept as it is: a pattern that reaches any other
    /// path, and the admin's on tenantless paths.
    #[test]
    fn only_a_fault_that_can_never_fire_is_refused() {
        for pattern in [
            "/_sandbox",
            "/_sandbox/clock",
            "/_sandbox/**",
            "/_sandbox/*",
        ] {
            for tenant in [false, true] {
                assert!(never_fires(pattern, tenant).is_err(), "{pattern}");
            }
        }
        for pattern in [
            "/api/authenticate",
            "/widget/**",
            "/widget/*/transfer",
            "/magic-link/**",
            "/magic-link",
            "/",
            "/docs/**",
            "/openapi.json",
        ] {
            let warned = never_fires(pattern, true).expect("kept");
            assert!(
                warned.is_some_and(|warning| warning.contains("only those that carry your own")),
                "{pattern}"
            );
            assert_eq!(
                never_fires(pattern, false).expect("kept"),
                None,
                "{pattern}"
            );
        }
        for pattern in [
            "/**",
            "/*",
            "/api/*",
            "/api/**",
            "/partner/**",
            "/services/**",
            "/wid*",
            "/elsewhere",
            "/_sandbo*",
        ] {
            for tenant in [false, true] {
                assert_eq!(
                    never_fires(pattern, tenant).expect("kept"),
                    None,
                    "{pattern}"
                );
            }
        }
        assert_eq!(
            never_fires("not a pattern", true).expect("the table names it"),
            None
        );
    }
}
