//! `POST|GET|DELETE /_sandbox/faults`: manage the fault table ([`crate::faults`]) that the
//! serving layer applies in front of every vendor route. A status without a body answers in
//! the vendor's own error shape: on `/partner` a 429 is `RATE_LIMIT_EXCEEDED` with
//! `Retry-After`, a 5xx `INTERNAL_ERROR`, and so on; elsewhere linkbox's envelope. Faults set
//! by a partner touch only requests made with that partner's key; admin faults touch every
//! request. Control requests are never faulted, so a sandbox cannot lock itself out.
//!
//! A fault that could never fire is refused (400) rather than kept ([`never_fires`]): one
//! whose path matches only control requests, and a tenant's whose path matches only
//! requests that carry no tenant's credentials — the Leaf login, the pages a browser
//! visits, the API documents — which only the admin's faults touch. `DELETE` takes no query
//! parameter: it removes every fault the caller set, so a `?id=` it ignored would remove
//! more than was asked.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{FaultPage, FaultRequest};
use warp::reply::Response;

use super::error::{ControlError, json};
use super::{scope, write_scope};
use crate::faults::{FaultRefused, PathPattern};
use crate::ops::identity;
use crate::wire::{BodyError, Request, no_content, query_pairs};

/// POST /_sandbox/faults
pub fn add(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    let scope = write_scope(request)?;
    let fault: FaultRequest = json(body)?;
    let tenant = scope.slug().map(Arc::from);
    if let Some(path) = fault.path.as_deref() {
        never_fires(path, tenant.is_some())?;
    }
    let view = request
        .app
        .faults
        .add(fault, tenant)
        .map_err(|refused| match refused {
            FaultRefused::Invalid(message) => ControlError::invalid(message),
            FaultRefused::Full(message) => ControlError::Full(message),
        })?;
    Ok(crate::wire::json(StatusCode::CREATED, &view))
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
    if let Some((name, _)) = query_pairs(&request.query).into_iter().next() {
        return Err(ControlError::invalid(format!(
            "Unknown parameter {:?}: DELETE /_sandbox/faults takes none, and removes every \
             fault you set; nothing was removed. To keep some, remove all and add those back \
             (a fault given times goes by itself once spent)",
            name.escape_default().to_string()
        )));
    }
    request.app.faults.clear(scope.slug());
    Ok(no_content())
}

/// The refusal of a fault with path pattern `text` that could never fire: one matching only
/// control requests, which are never faulted, or, set by a tenant, one matching only
/// requests that never carry a tenant's credentials ([`identity::tenantless`]), which only
/// the admin's faults touch. A pattern that also matches any other path (`/**`, `/*`) is
/// kept. A pattern that does not parse is left for the table to refuse, by name.
fn never_fires(text: &str, tenant: bool) -> Result<(), ControlError> {
    let Ok(pattern) = PathPattern::parse(text) else {
        return Ok(());
    };
    if pattern.confined_to(super::owns) {
        return Err(ControlError::invalid(format!(
            "The path field {text:?} matches only control API paths (/_sandbox), and control \
             requests are never faulted, so this fault could never fire. Name a path of the \
             M2M or Leaf API, or of a page"
        )));
    }
    if tenant && pattern.confined_to(|path| super::owns(path) || identity::tenantless(path)) {
        return Err(ControlError::invalid(format!(
            "Requests to {text} carry no tenant's credentials (the Leaf login \
             /api/authenticate, the pages at /widget, /magic-link and /, and the API documents \
             are reached without them), so only the admin's faults touch them: this fault, set \
             with a tenant's credentials, could never fire. Set it with the admin token (or \
             with no credentials where no admin token is configured)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused: a pattern only control paths match (for anyone), and a tenant's only
    /// tenantless paths match. Kept: a pattern that reaches any other path, and the
    /// admin's on tenantless paths.
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
            assert!(never_fires(pattern, true).is_err(), "{pattern}");
            assert!(never_fires(pattern, false).is_ok(), "{pattern}");
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
                assert!(never_fires(pattern, tenant).is_ok(), "{pattern}");
            }
        }
        assert!(
            never_fires("not a pattern", true).is_ok(),
            "the table names it"
        );
    }
}
