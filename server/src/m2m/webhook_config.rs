//! `POST /partner/webhooks/config/regenerate-secret`: a new signing secret, shown once.
//! The vendor answers this one without the `success`/`data` envelope. [doc]

use http::StatusCode;
use linkbox_contracts::m2m::{RegeneratedSecret, messages};
use warp::reply::Response;

use super::auth::{Quota, authorize, materialize};
use super::error::ApiError;
use crate::wire::Request;

/// POST /partner/webhooks/config/regenerate-secret
pub fn regenerate(request: &Request) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let partner = materialize(request, &partner)?;
    let secret = partner.regenerate_webhook_secret();
    Ok(crate::wire::json(
        StatusCode::OK,
        &RegeneratedSecret {
            webhook_secret: secret,
            message: messages::REGENERATED_SECRET.to_owned(),
        },
    ))
}
