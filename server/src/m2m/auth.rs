//! M2M authentication: the `X-API-Key` header (or `Authorization: Bearer <key>`), resolved to
//! a partner, then counted against that partner's rate limit.

use std::sync::Arc;

use http::{HeaderMap, header};
use linkbox_contracts::m2m;

use super::error::ApiError;
use crate::app::App;
use crate::store::m2m::Partner;

/// The key a request presents, if any. `X-API-Key` wins over a Bearer token.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let api_key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty());
    api_key.or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|key| !key.is_empty())
    })
}

/// The documented rate-limit buckets: create-link has its own. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    CreateLink,
    Other,
}

impl Quota {
    fn per_minute(self) -> u32 {
        match self {
            Quota::CreateLink => m2m::CREATE_LINK_PER_MINUTE,
            Quota::Other => m2m::OTHER_PER_MINUTE,
        }
    }
}

/// The partner behind the request, counted against its `quota` for this minute.
pub fn authorize(app: &App, headers: &HeaderMap, quota: Quota) -> Result<Arc<Partner>, ApiError> {
    let key = presented_key(headers).ok_or(ApiError::MissingAuth)?;
    let partner = app.store.m2m().authenticate(key)?;
    partner
        .admit(
            quota == Quota::CreateLink,
            app.limit(quota.per_minute()),
            app.clock.now(),
        )
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    Ok(partner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_api_key_header_wins_over_bearer() {
        let map = headers(&[("x-api-key", "a"), ("authorization", "Bearer b")]);
        assert_eq!(presented_key(&map), Some("a"));
    }

    #[test]
    fn a_bearer_token_is_accepted_as_the_key() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer k")])),
            Some("k")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic k")])),
            None
        );
        assert_eq!(presented_key(&headers(&[("x-api-key", " ")])), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }
}
