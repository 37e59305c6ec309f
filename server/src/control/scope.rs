//! Who a control request acts for. The same `X-API-Key` (or Bearer key) as the M2M API
//! scopes it to that partner; a Leaf `id_token` as `Authorization: Bearer` scopes it to that
//! Leaf account; `Authorization: Bearer <--admin-token>` sees every tenant; with no admin
//! token configured, a request presenting no key at all is an admin request (a sandbox on a
//! developer's machine needs no ceremony).
//!
//! Tenants are named in the journal and in faults by a label: the partner's slug, or
//! `leaf:<username>` for a Leaf account (slugs are lowercase letters and digits, so the two
//! never collide).

use std::sync::Arc;

use http::{HeaderMap, header};

use super::error::ControlError;
use crate::app::App;
use crate::m2m::auth::presented_key;
use crate::store::leaf::Account;
use crate::store::m2m::Partner;
use crate::webhooks::Visible;

/// The caller of a control endpoint.
#[derive(Clone)]
pub enum Scope {
    /// Every tenant.
    Admin,
    /// One M2M partner.
    Tenant(Arc<Partner>),
    /// One Leaf account, and its tenant label `leaf:<username>`.
    Leaf(Arc<Account>, String),
}

/// The tenant label of a Leaf account.
pub fn leaf_label(username: &str) -> String {
    format!("leaf:{username}")
}

/// The tenant label of whoever presents these headers, for recording: the partner slug of
/// an `X-API-Key` (or Bearer key), or `leaf:<username>` of a valid Leaf token. Never creates
/// a tenant.
pub fn request_tenant(app: &App, headers: &HeaderMap) -> Option<Arc<str>> {
    let key = presented_key(headers)?;
    if let Some(slug) = app.store.m2m().tenant_of(key) {
        return Some(slug);
    }
    crate::leaf::verify(app.store.leaf(), key)
        .ok()
        .map(|claims| leaf_label(&claims.sub).into())
}

impl Scope {
    /// Resolves the caller; never counts against the vendor's rate limits.
    pub fn of(app: &App, headers: &HeaderMap) -> Result<Scope, ControlError> {
        if let Some(token) = &app.settings.admin_token
            && bearer(headers) == Some(token.as_str())
        {
            return Ok(Scope::Admin);
        }
        if let Some(account) = leaf_account(app, headers)? {
            let label = leaf_label(&account.username);
            return Ok(Scope::Leaf(account, label));
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
            Scope::Leaf(_, label) => Some(label),
        }
    }

    /// The Leaf account, for endpoints that act on exactly one.
    pub fn leaf(&self) -> Result<&Arc<Account>, ControlError> {
        match self {
            Scope::Leaf(account, _) => Ok(account),
            _ => Err(ControlError::LeafTokenRequired),
        }
    }

    /// The partner, for endpoints that act on exactly one.
    pub fn partner(&self) -> Result<&Arc<Partner>, ControlError> {
        match self {
            Scope::Admin | Scope::Leaf(..) => Err(ControlError::TenantRequired),
            Scope::Tenant(partner) => Ok(partner),
        }
    }

    /// Which webhook deliveries the caller sees.
    pub fn deliveries(&self) -> Visible<'_> {
        match self {
            Scope::Admin => Visible::All,
            Scope::Tenant(partner) => Visible::Tenant(&partner.slug),
            // Webhooks are M2M's: a Leaf account has none, so it sees none.
            Scope::Leaf(_, label) => Visible::Tenant(label),
        }
    }

    /// The partner owning `link_id`: the caller's own (another tenant's id is 404 there),
    /// or for admin the partner whose slug the id embeds.
    pub fn link_owner(&self, app: &App, link_id: &str) -> Result<Arc<Partner>, ControlError> {
        match self {
            Scope::Tenant(partner) => Ok(partner.clone()),
            Scope::Leaf(..) => Err(ControlError::NotFound("Link not found".into())),
            Scope::Admin => link_id
                .strip_prefix("link_")
                .and_then(|rest| rest.rsplit_once('_'))
                .and_then(|(slug, _)| app.store.m2m().by_slug(slug))
                .ok_or_else(|| ControlError::NotFound("Link not found".into())),
        }
    }
}

/// The Leaf account of a Bearer token this process signed: `None` when the request carries
/// no such token (it may be an M2M key), an error when the token has expired on the sandbox
/// clock.
fn leaf_account(app: &App, headers: &HeaderMap) -> Result<Option<Arc<Account>>, ControlError> {
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    let accounts = app.store.leaf();
    let Ok(claims) = crate::leaf::verify(accounts, token) else {
        return Ok(None);
    };
    if claims.exp <= app.clock.now().unix_timestamp() {
        return Err(ControlError::ExpiredToken);
    }
    Ok(accounts.account(&claims.sub))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
