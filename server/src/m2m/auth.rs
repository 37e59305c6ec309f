//! M2M authorization: the caller's partner (resolved once per request from `X-API-Key` or
//! `Authorization: Bearer <key>`), counted against that partner's rate limit.

use std::sync::Arc;

use linkbox_contracts::m2m;

use super::error::ApiError;
use crate::store::m2m::Partner;
use crate::wire::Request;

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

/// The partner behind the request, counted against its `quota` for this minute. For a
/// key that has not written yet this is an empty partner in no table: reads answer what a
/// new partner sees and create nothing; a handler about to write calls [`materialize`].
pub fn authorize(request: &Request, quota: Quota) -> Result<Arc<Partner>, ApiError> {
    let app = &request.app;
    let partner = request.caller.partner(app).ok_or(ApiError::MissingAuth)??;
    app.store
        .m2m()
        .admit(
            &partner,
            quota == Quota::CreateLink,
            app.limit(quota.per_minute()),
            app.clock.now(),
        )
        .map_err(|retry_after_secs| ApiError::RateLimited {
            retry_after_secs,
            frozen: app.clock.is_frozen(),
        })?;
    Ok(partner)
}

/// The refusal [`authorize`] would answer for who the request says it is, found without
/// counting it against a rate limit: checked before a body is read, so a request that will
/// be refused has none of its body read or held ([`crate::bodies`]).
pub fn refused(request: &Request) -> Option<ApiError> {
    request.caller.key_refusal().map(|refusal| match refusal {
        None => ApiError::MissingAuth,
        Some(error) => error.into(),
    })
}

/// The partner a write acts on: created now, in open mode, if this is the key's first
/// write (refused under `--max-tenants`).
pub fn materialize(request: &Request, partner: &Arc<Partner>) -> Result<Arc<Partner>, ApiError> {
    Ok(request.app.store.m2m().materialize(partner)?)
}
