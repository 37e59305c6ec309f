//! Leaf authentication: `POST /api/authenticate` issues a JWT (HS256, signed with the
//! process's random secret, `exp` on the sandbox clock), and every other call presents it as
//! `Authorization: Bearer <token>`.
//!
//! The token's expiry is checked against the sandbox clock, not the wall clock, so moving
//! the clock forward expires tokens just as it expires links.

use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use linkbox_contracts::leaf::{
    self as wire, AuthenticateResponse, REMEMBER_ME_LIFETIME_SECS, TOKEN_LIFETIME_SECS, TokenClaims,
};
use time::OffsetDateTime;
use warp::reply::Response;

use super::error::ApiError;
use super::{Request, respond, validate};
use crate::app::App;
use crate::store::leaf::{Account, Accounts};

/// POST /api/authenticate
pub fn authenticate(request: &Request) -> Result<Response, ApiError> {
    let body = validate::json_object(&request.headers, request.body.clone())?;
    let login = validate::login(body)?;
    let accounts = request.app.store.leaf();
    if !accounts.check_password(&login.username, &login.password) {
        return Err(ApiError::BadCredentials);
    }
    let id_token = issue_token(
        accounts,
        &login.username,
        login.remember_me,
        request.app.clock.now(),
    )?;
    Ok(respond(
        StatusCode::OK,
        &AuthenticateResponse { id_token },
        &login.ignored,
    ))
}

/// A token for `username`, valid 24 hours from `now`, or 30 days with `remember_me`.
pub fn issue_token(
    accounts: &Accounts,
    username: &str,
    remember_me: bool,
    now: OffsetDateTime,
) -> Result<String, ApiError> {
    let lifetime = if remember_me {
        REMEMBER_ME_LIFETIME_SECS
    } else {
        TOKEN_LIFETIME_SECS
    };
    let claims = TokenClaims {
        sub: username.to_owned(),
        auth: wire::TOKEN_AUTHORITY.to_owned(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + lifetime,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&accounts.signing_secret()),
    )
    .map_err(|error| {
        tracing::error!(%error, "token did not sign");
        ApiError::BadCredentials
    })
}

/// The claims of a token this process signed, whatever its expiry.
pub fn verify(accounts: &Accounts, token: &str) -> Result<TokenClaims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is the sandbox clock's business, checked by the caller.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<TokenClaims>(
        token,
        &DecodingKey::from_secret(&accounts.signing_secret()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|_| ApiError::InvalidToken)
}

/// The account behind the request's bearer token.
pub fn authorize(app: &App, headers: &HeaderMap) -> Result<Arc<Account>, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::MissingToken)?;
    let accounts = app.store.leaf();
    let claims = verify(accounts, token)?;
    if claims.exp <= app.clock.now().unix_timestamp() {
        return Err(ApiError::ExpiredToken);
    }
    accounts.account(&claims.sub).ok_or(ApiError::InvalidToken)
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, Settings};
    use http::HeaderValue;
    use time::macros::datetime;

    fn accounts() -> Accounts {
        Accounts::new(&Settings::resolve(
            Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ))
    }

    #[test]
    fn tokens_carry_the_username_and_the_lifetime() {
        let accounts = accounts();
        let now = datetime!(2030-01-01 00:00 UTC);
        let token = issue_token(&accounts, "qa", false, now).expect("signed");
        let claims = verify(&accounts, &token).expect("verifies");
        assert_eq!(claims.sub, "qa");
        assert_eq!(claims.exp - claims.iat, 24 * 60 * 60);
        let long = issue_token(&accounts, "qa", true, now).expect("signed");
        let claims = verify(&accounts, &long).expect("verifies");
        assert_eq!(claims.exp - claims.iat, 30 * 24 * 60 * 60);
    }

    #[test]
    fn tokens_of_another_process_or_tampered_ones_do_not_verify() {
        let now = datetime!(2030-01-01 00:00 UTC);
        let token = issue_token(&accounts(), "qa", false, now).expect("signed");
        assert_eq!(verify(&accounts(), &token), Err(ApiError::InvalidToken));
        assert_eq!(
            verify(&accounts(), "not.a.jwt"),
            Err(ApiError::InvalidToken)
        );
    }

    #[test]
    fn only_bearer_authorizations_carry_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
    }
}
