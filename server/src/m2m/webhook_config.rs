//! `POST /partner/webhooks/config/regenerate-secret`: a new signing secret, shown once.
//! The vendor answers this one without the `success`/`data` envelope. [doc]
//!
//! It takes no fields. A body, when one is sent, is read as every M2M body is: JSON or
//! nothing (a 400 for JSON that does not parse, is no object or is of another type, a 415
//! compressed, a 413 past the limit), each field named in `X-Linkbox-Warning` as ignored;
//! a body refused rotates nothing. [design]

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::m2m::{RegeneratedSecret, messages};
use warp::reply::Response;

use super::auth::{Quota, authorize, materialize};
use super::error::ApiError;
use super::validate;
use crate::wire::{BodyError, Request};

/// POST /partner/webhooks/config/regenerate-secret
pub fn regenerate(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ApiError> {
    let partner = authorize(request, Quota::Other)?;
    let ignored = validate::no_fields(validate::json_body(&request.headers, body)?)?;
    let partner = materialize(request, &partner)?;
    let secret = partner.regenerate_webhook_secret();
    let mut response = crate::wire::json(
        StatusCode::OK,
        &RegeneratedSecret {
            webhook_secret: secret,
            message: messages::REGENERATED_SECRET.to_owned(),
        },
    );
    crate::wire::add_warnings(&mut response, &ignored);
    Ok(response)
}
