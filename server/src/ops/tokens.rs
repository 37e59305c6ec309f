//! Leaf `id_token`s: JWTs (HS256) signed with the sandbox's own key, `exp` on the sandbox
//! clock, so moving the clock forward expires tokens just as it expires links. Issued by
//! `POST /api/authenticate` and by the seeder; verified once per request by
//! [`super::identity`].

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use linkbox_contracts::leaf::{
    self as wire, REMEMBER_ME_LIFETIME_SECS, TOKEN_LIFETIME_SECS, TokenClaims,
};
use time::OffsetDateTime;

use crate::store::leaf::Accounts;

/// A token that could not be signed or does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token could not be signed")]
    Unsigned,
    #[error("the token is malformed, forged or foreign")]
    Invalid,
}

/// A token for `username`, valid 24 hours from `now`, or 30 days with `remember_me`.
pub fn issue(
    accounts: &Accounts,
    username: &str,
    remember_me: bool,
    now: OffsetDateTime,
) -> Result<String, TokenError> {
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
        TokenError::Unsigned
    })
}

/// The claims of a token this sandbox signed, whatever its expiry (the sandbox clock's
/// business, checked by the caller).
pub fn verify(accounts: &Accounts, token: &str) -> Result<TokenClaims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    jsonwebtoken::decode::<TokenClaims>(
        token,
        &DecodingKey::from_secret(&accounts.signing_secret()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|_| TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, Settings};
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
        let token = issue(&accounts, "qa", false, now).expect("signed");
        let claims = verify(&accounts, &token).expect("verifies");
        assert_eq!(claims.sub, "qa");
        assert_eq!(claims.exp - claims.iat, 24 * 60 * 60);
        let long = issue(&accounts, "qa", true, now).expect("signed");
        let claims = verify(&accounts, &long).expect("verifies");
        assert_eq!(claims.exp - claims.iat, 30 * 24 * 60 * 60);
    }

    #[test]
    fn tokens_of_another_sandbox_or_tampered_ones_do_not_verify() {
        let now = datetime!(2030-01-01 00:00 UTC);
        let token = issue(&accounts(), "qa", false, now).expect("signed");
        assert_eq!(verify(&accounts(), &token), Err(TokenError::Invalid));
        assert_eq!(verify(&accounts(), "not.a.jwt"), Err(TokenError::Invalid));
    }
}
