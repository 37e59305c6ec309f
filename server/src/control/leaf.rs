//! Playing the Leaf end user: `POST /_sandbox/leaf/magic-links/{id}/access` counts one visit
//! of the link's page, and `POST /_sandbox/leaf/magic-links/{id}/connect {provider}` connects
//! the link's Leaf user to a provider the link allows. Scoped by the Leaf account's
//! `Authorization: Bearer <id_token>`: another account's link is 404.
//!
//! The hosted page (`crate::pages::magic_link`) calls [`access`] and [`connect`] too, so the
//! page and the control API can never disagree.
//!
//! Only an access counts against `maxUsage`; connecting does not (it happens on a page that
//! was already counted when it was opened), but an expired link connects nothing.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use linkbox_contracts::leaf::{self as wire, AllowedProvider, Provider, Widget};
use linkbox_contracts::sandbox::LeafConnectRequest;
use linkbox_contracts::timefmt;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, json, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::body;
use crate::store::leaf::{Account, LeafError};

const MAX_BODY: usize = 4 * 1024;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("leaf" / "magic-links" / ..)
        .and(access_route(app.clone()).or(connect_route(app)).unify())
        .boxed()
}

/// POST /_sandbox/leaf/magic-links/{id}/access
fn access_route(app: App) -> BoxedFilter<(Response,)> {
    warp::path!(String / "access")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|id: String, app: App, headers: HeaderMap| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let link = access(&app, scope.leaf()?, &id)?;
                Ok(crate::http::json(StatusCode::OK, &link))
            })())
        })
        .boxed()
}

/// POST /_sandbox/leaf/magic-links/{id}/connect {provider}
fn connect_route(app: App) -> BoxedFilter<(Response,)> {
    warp::path!(String / "connect")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(MAX_BODY))
        .map(|id: String, app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let account = scope.leaf()?;
                let request: LeafConnectRequest = json(body)?;
                let user = connect(&app, account, &id, &request.provider)?;
                Ok(crate::http::json(StatusCode::OK, &user))
            })())
        })
        .boxed()
}

/// Counts one access of `id`'s page: `usageCount` + 1 and `lastAccessedAt`; refused (410)
/// once the link has expired or been used `maxUsage` times.
pub fn access(
    app: &App,
    account: &Arc<Account>,
    id: &str,
) -> Result<wire::MagicLink, ControlError> {
    account
        .access_magic_link(id, app.clock.now())
        .map_err(link_error)
}

/// Connects `id`'s Leaf user to `provider`, which the link must allow; returns the user.
pub fn connect(
    app: &App,
    account: &Arc<Account>,
    id: &str,
    provider: &str,
) -> Result<wire::LeafUser, ControlError> {
    let link = account.find_magic_link(id).map_err(link_error)?;
    let provider = Provider::parse(provider).ok_or_else(|| {
        ControlError::invalid(
            "The provider field must be one of: JohnDeere, ClimateFieldView, CNHI, AgLeader, \
             Trimble, RavenSlingshot, Stara",
        )
    })?;
    let now = app.clock.now();
    if timefmt::parse(&link.expires_at).is_some_and(|expires_at| expires_at <= now) {
        return Err(link_error(LeafError::LinkExpired));
    }
    if !allowed_providers(&link).contains(&provider) {
        return Err(ControlError::Invalid(Cow::Owned(format!(
            "The provider {} is not allowed by this link",
            provider.as_str()
        ))));
    }
    account
        .connect_provider(&link.leaf_user_id, provider, now)
        .map_err(link_error)
}

/// The providers a link lets its user connect: every one for `All`, the one of an
/// authentication link, none for a file upload.
pub fn allowed_providers(link: &wire::MagicLink) -> Vec<Provider> {
    match link.widget {
        Widget::Provider => {
            let allowed = link.allowed_providers.as_deref().unwrap_or_default();
            Provider::ALL
                .into_iter()
                .filter(|provider| {
                    allowed.iter().any(|entry| {
                        *entry == AllowedProvider::All || *entry == AllowedProvider::from(*provider)
                    })
                })
                .collect()
        }
        Widget::Authentication => link.provider.into_iter().collect(),
        Widget::FileUpload => Vec::new(),
    }
}

/// A Leaf store refusal in linkbox's envelope.
pub fn link_error(error: LeafError) -> ControlError {
    match error {
        LeafError::LinkNotFound => ControlError::NotFound("Magic link not found".into()),
        LeafError::UserNotFound => ControlError::NotFound("Leaf user not found".into()),
        LeafError::LinkExpired => {
            ControlError::Gone("LINK_EXPIRED", "Magic link has expired".into())
        }
        LeafError::LinkUsedUp => ControlError::Gone(
            "LINK_USED_UP",
            "Magic link has been used up: its usageCount reached maxUsage".into(),
        ),
        LeafError::ExternalIdTaken => ControlError::Conflict("CONFLICT", error.to_string().into()),
    }
}
