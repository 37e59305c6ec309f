//! Leaf authentication: `POST /api/authenticate` issues an `id_token`
//! ([`crate::ops::tokens`]), and every other call presents it as `Authorization: Bearer
//! <token>`, verified once per request by the caller's identity.

use std::sync::Arc;

use http::StatusCode;
use linkbox_contracts::leaf::AuthenticateResponse;
use warp::reply::Response;

use super::error::ApiError;
use super::{Request, respond, validate};
use crate::ops::identity::LeafToken;
use crate::ops::tokens;
use crate::store::leaf::Account;

/// POST /api/authenticate
pub fn authenticate(request: &Request) -> Result<Response, ApiError> {
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let login = validate::login(body)?;
    let accounts = request.app.store.leaf();
    if !accounts.check_password(&login.username, &login.password) {
        return Err(ApiError::BadCredentials);
    }
    if !accounts.admits(&login.username) {
        return Err(crate::store::leaf::AccountLimit::Count.into());
    }
    let id_token = tokens::issue(
        accounts,
        &login.username,
        login.remember_me,
        request.app.clock.now(),
    )
    .map_err(|_| ApiError::BadCredentials)?;
    Ok(respond(
        StatusCode::OK,
        &AuthenticateResponse { id_token },
        &login.ignored,
    ))
}

/// The account behind the request's bearer token.
pub fn authorize(request: &Request) -> Result<Arc<Account>, ApiError> {
    account(&request.leaf)
}

/// The account behind a bearer token, or why there is none: also checked before a body is
/// read, so a request that will be refused has none of its body read or held
/// ([`crate::bodies`]).
pub fn account(token: &LeafToken) -> Result<Arc<Account>, ApiError> {
    match token {
        LeafToken::Missing => Err(ApiError::MissingToken),
        LeafToken::Invalid => Err(ApiError::InvalidToken),
        LeafToken::Expired(_) => Err(ApiError::ExpiredToken),
        LeafToken::Valid(account) => Ok(account.clone()),
    }
}
