//! Playing the Leaf end user: `POST /_sandbox/leaf/magic-links/{id}/access` counts one visit
//! of the link's page, and `POST /_sandbox/leaf/magic-links/{id}/connect {provider}` connects
//! the link's Leaf user to a provider the link allows. Scoped by the Leaf account's
//! `Authorization: Bearer <id_token>`: another account's link is 404. The admin plays the
//! end user of any account's link, as it does M2M's.
//!
//! Both are [`crate::ops::leaf`]'s, which the hosted page calls too, so the page and the
//! control API can never disagree.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::LeafConnectRequest;
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::ops::leaf;
use crate::store::leaf::Account;
use crate::wire::{BodyError, Request};

/// The account whose link the path names, as the caller's scope sees it.
fn owner(request: &Request) -> Result<Arc<Account>, ControlError> {
    scope(request)?
        .magic_link_owner(&request.app, request.param("id"))?
        .ok_or_else(|| ControlError::NotFound("Magic link not found".into()))
}

/// POST /_sandbox/leaf/magic-links/{id}/access
pub fn access(request: &Request) -> Result<Response, ControlError> {
    let account = owner(request)?;
    let link = leaf::access(&request.app, &account, request.param("id"))?;
    Ok(crate::wire::json(StatusCode::OK, &link))
}

/// POST /_sandbox/leaf/magic-links/{id}/connect {provider}
pub fn connect(
    request: &Request,
    body: Result<Bytes, BodyError>,
) -> Result<Response, ControlError> {
    let account = owner(request)?;
    let connect: LeafConnectRequest = json(body)?;
    let user = leaf::connect(
        &request.app,
        &account,
        request.param("id"),
        &connect.provider,
    )?;
    Ok(crate::wire::json(StatusCode::OK, &user))
}
