//! Who a control request acts for. The same `X-API-Key` (or Bearer key) as the M2M API
//! scopes it to that partner; `Authorization: Bearer <--admin-token>` sees every tenant;
//! with no admin token configured, a request presenting no key at all is an admin request
//! (a sandbox on a developer's machine needs no ceremony).

use std::sync::Arc;

use http::{HeaderMap, header};

use super::error::ControlError;
use crate::app::App;
use crate::m2m::auth::presented_key;
use crate::store::m2m::Partner;
use crate::webhooks::Visible;

/// The caller of a control endpoint.
#[derive(Clone)]
pub enum Scope {
    /// Every tenant.
    Admin,
    /// One M2M partner.
    Tenant(Arc<Partner>),
}

impl Scope {
    /// Resolves the caller; never counts against the vendor's rate limits.
    pub fn of(app: &App, headers: &HeaderMap) -> Result<Scope, ControlError> {
        if let Some(token) = &app.settings.admin_token
            && bearer(headers) == Some(token.as_str())
        {
            return Ok(Scope::Admin);
        }
        match presented_key(headers) {
            Some(key) => Ok(Scope::Tenant(app.store.m2m().authenticate(key)?)),
            None if app.settings.admin_token.is_none() => Ok(Scope::Admin),
            None => Err(ControlError::MissingAuth),
        }
    }

    /// The tenant's slug, or `None` for admin.
    pub fn slug(&self) -> Option<&str> {
        match self {
            Scope::Admin => None,
            Scope::Tenant(partner) => Some(&partner.slug),
        }
    }

    /// The partner, for endpoints that act on exactly one.
    pub fn partner(&self) -> Result<&Arc<Partner>, ControlError> {
        match self {
            Scope::Admin => Err(ControlError::TenantRequired),
            Scope::Tenant(partner) => Ok(partner),
        }
    }

    /// Which webhook deliveries the caller sees.
    pub fn deliveries(&self) -> Visible<'_> {
        match self {
            Scope::Admin => Visible::All,
            Scope::Tenant(partner) => Visible::Tenant(&partner.slug),
        }
    }

    /// The partner owning `link_id`: the caller's own (another tenant's id is 404 there),
    /// or for admin the partner whose slug the id embeds.
    pub fn link_owner(&self, app: &App, link_id: &str) -> Result<Arc<Partner>, ControlError> {
        match self {
            Scope::Tenant(partner) => Ok(partner.clone()),
            Scope::Admin => link_id
                .strip_prefix("link_")
                .and_then(|rest| rest.rsplit_once('_'))
                .and_then(|(slug, _)| app.store.m2m().by_slug(slug))
                .ok_or_else(|| ControlError::NotFound("Link not found".into())),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
