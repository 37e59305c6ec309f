//! `POST /_sandbox/reset`: a partner key forgets that partner's links, users, data requests,
//! operations, webhook deliveries, journal entries and faults (its webhook URL and secret
//! stay, like portal settings); a Leaf token forgets that account's users and magic links.
//! Admin forgets everything, in both APIs, and puts the clock back on real time. It takes no
//! query parameter: a `?tenant=` it ignored would forget more than was asked.

use http::StatusCode;
use linkbox_contracts::sandbox::ResetDone;
use warp::reply::Response;

use super::error::ControlError;
use super::scope;
use crate::ops::reset::{Forgot, reset as forget};
use crate::wire::Request;

/// POST /_sandbox/reset
pub fn reset(request: &Request) -> Result<Response, ControlError> {
    let scope = scope(request)?;
    super::error::no_query(
        &request.query,
        "POST /_sandbox/reset takes none, and forgets everything the caller may see (a \
         tenant's data with its key or token, every tenant's as the admin)",
    )?;
    let forgot = forget(&request.app, &scope);
    Ok(crate::wire::json(
        StatusCode::OK,
        &ResetDone {
            scope: match forgot {
                Forgot::Tenant => "tenant",
                Forgot::All => "all",
            }
            .to_owned(),
        },
    ))
}
