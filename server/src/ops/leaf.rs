//! Playing the Leaf end user: count one visit of a magic link's page, connect the link's
//! user to a provider the link allows. The control API (`/_sandbox/leaf/...`) and the hosted
//! magic-link page both come through here.
//!
//! Only an access counts against `maxUsage`; connecting does not (it happens on a page that
//! was already counted when it was opened), but an expired link connects nothing.
//! Disconnecting — clearing a provider's credentials on the link's user — is offered only
//! by a link whose `settings.disconnectEnabled` is true, for a provider the link allows.

use std::borrow::Cow;
use std::sync::Arc;

use linkbox_contracts::leaf::{self as wire, AllowedProvider, Provider, Widget};
use linkbox_contracts::timefmt;

use super::Error;
use crate::app::App;
use crate::store::leaf::{Account, LeafError};

/// Counts one access of `id`'s page: `usageCount` + 1 and `lastAccessedAt`; refused (410)
/// once the link has expired or been used `maxUsage` times.
pub fn access(app: &App, account: &Arc<Account>, id: &str) -> Result<wire::MagicLink, Error> {
    account
        .access_magic_link(id, app.clock.now())
        .map_err(Error::from)
}

/// What [`access`] would answer now, without counting the access.
pub fn peek(app: &App, account: &Arc<Account>, id: &str) -> Result<wire::MagicLink, Error> {
    account
        .peek_magic_link(id, app.clock.now())
        .map_err(Error::from)
}

/// Connects `id`'s Leaf user to `provider`, which the link must allow; returns the user.
pub fn connect(
    app: &App,
    account: &Arc<Account>,
    id: &str,
    provider: &str,
) -> Result<wire::LeafUser, Error> {
    let (link, provider) = usable(app, account, id, provider)?;
    account
        .connect_provider(&link.leaf_user_id, provider, app.clock.now())
        .map_err(Error::from)
}

/// Clears `provider`'s credentials on `id`'s Leaf user; the link must allow the provider
/// and have `disconnectEnabled`. Returns the user.
pub fn disconnect(
    app: &App,
    account: &Arc<Account>,
    id: &str,
    provider: &str,
) -> Result<wire::LeafUser, Error> {
    let (link, provider) = usable(app, account, id, provider)?;
    if !link.settings.disconnect_enabled {
        return Err(Error::invalid(
            "This link does not allow disconnecting a provider",
        ));
    }
    account
        .disconnect_provider(&link.leaf_user_id, provider)
        .map_err(Error::from)
}

/// The link `id`, unexpired and with its Leaf user, and `provider`, which it allows.
fn usable(
    app: &App,
    account: &Arc<Account>,
    id: &str,
    provider: &str,
) -> Result<(wire::MagicLink, Provider), Error> {
    let link = account.find_magic_link(id).map_err(Error::from)?;
    account.check_user_kept(id).map_err(Error::from)?;
    let provider = Provider::parse(provider).ok_or_else(|| {
        Error::invalid(
            "The provider field must be one of: JohnDeere, ClimateFieldView, CNHI, AgLeader, \
             Trimble, RavenSlingshot, Stara",
        )
    })?;
    let now = app.clock.now();
    if timefmt::parse(&link.expires_at).is_some_and(|expires_at| expires_at <= now) {
        return Err(LeafError::LinkExpired.into());
    }
    if !allowed_providers(&link).contains(&provider) {
        return Err(Error::Invalid(Cow::Owned(format!(
            "The provider {} is not allowed by this link",
            provider.as_str()
        ))));
    }
    Ok((link, provider))
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
