//! How a partner's state is written to the state file, row by row, and found again when the
//! file is loaded. Rows hold the same documents a snapshot does, so loading a partner is
//! restoring the snapshot its rows make up.

use std::borrow::Cow;
use std::sync::Arc;

use linkbox_contracts::m2m::{Language, LinkStatus};
use linkbox_contracts::sandbox::{RawJson, SnapshotLink, SnapshotUser};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Partner, PartnerState, Partners, open_mode_slug};
use crate::persist::{Changes, Table};

/// A partner's row in `m2m_partners`: what is not in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerRow {
    /// The key an open-mode partner was created by; none for a configured partner.
    pub key: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    /// A configured partner's webhook settings as its config file gave them when the row
    /// was written: a load compares them with the config file it starts with, so the later
    /// of a change through the API and an edit of the config file wins. Rows written before
    /// it was kept have none, and their settings win as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<ConfiguredHooks>,
}

/// What a partner's config file says of its webhooks (each `None` when it says nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredHooks {
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

/// A `m2m_users` row's document (a snapshot's user), written from the partner's state and
/// read back: text borrowed wherever it needs no copy (from the state, or from the row where
/// it needs no unescaping), `userData` kept as the JSON text it is stored as.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDoc<'a> {
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    #[serde(borrow)]
    pub reference_id: Cow<'a, str>,
    /// Written after the other fields, as the text it is kept as ([`crate::persist::document`]).
    #[serde(skip_serializing)]
    pub user_data: Option<Cow<'a, RawValue>>,
}

/// A `m2m_links` row's document (a snapshot's link), like [`UserDoc`]. Its fields are a
/// [`SnapshotLink`]'s, so the row is the document a snapshot holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDoc<'a> {
    #[serde(borrow)]
    pub link_id: Cow<'a, str>,
    #[serde(borrow)]
    pub reference_id: Cow<'a, str>,
    pub status: LinkStatus,
    #[serde(borrow)]
    pub token: Cow<'a, str>,
    #[serde(borrow)]
    pub flow: Cow<'a, str>,
    #[serde(borrow)]
    pub theme: Option<Cow<'a, str>>,
    pub language: Option<Language>,
    #[serde(borrow)]
    pub callback_url: Option<Cow<'a, str>>,
    /// Written after the other fields, like [`UserDoc::user_data`].
    #[serde(skip_serializing)]
    pub metadata: Option<Cow<'a, RawValue>>,
    #[serde(borrow)]
    pub created_at: Cow<'a, str>,
    #[serde(borrow)]
    pub expires_at: Cow<'a, str>,
    #[serde(borrow)]
    pub opened_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub revoked_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub revoke_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub operation_id: Option<Cow<'a, str>>,
}

impl UserDoc<'_> {
    /// The fields [`crate::persist::document`] adds after the others, as the text they are.
    pub fn raw(&self) -> [(&'static str, Option<&str>); 1] {
        [("userData", self.user_data.as_deref().map(RawValue::get))]
    }
}

impl LinkDoc<'_> {
    /// The fields [`crate::persist::document`] adds after the others, as the text they are.
    pub fn raw(&self) -> [(&'static str, Option<&str>); 1] {
        [("metadata", self.metadata.as_deref().map(RawValue::get))]
    }
}

/// A snapshot's value as the compact text it is kept as, read as a tree on its own (the
/// restore counted its values first and refused it unread past the limit): `None` for one
/// that does not read, which the restore refused too.
fn compact<'a>(raw: &RawJson) -> Option<Cow<'a, RawValue>> {
    let value = raw.parse().ok()?;
    serde_json::value::to_raw_value(&value).ok().map(Cow::Owned)
}

impl<'a> From<&'a SnapshotUser> for UserDoc<'a> {
    fn from(user: &'a SnapshotUser) -> Self {
        UserDoc {
            user_id: Cow::Borrowed(&user.user_id),
            reference_id: Cow::Borrowed(&user.reference_id),
            user_data: user.user_data.as_ref().and_then(compact),
        }
    }
}

impl<'a> From<&'a SnapshotLink> for LinkDoc<'a> {
    fn from(link: &'a SnapshotLink) -> Self {
        let text = |value: &'a Option<String>| value.as_deref().map(Cow::Borrowed);
        LinkDoc {
            link_id: Cow::Borrowed(&link.link_id),
            reference_id: Cow::Borrowed(&link.reference_id),
            status: link.status,
            token: Cow::Borrowed(&link.token),
            flow: Cow::Borrowed(&link.flow),
            theme: text(&link.theme),
            language: link.language,
            callback_url: text(&link.callback_url),
            metadata: link.metadata.as_ref().and_then(compact),
            created_at: Cow::Borrowed(&link.created_at),
            expires_at: Cow::Borrowed(&link.expires_at),
            opened_at: text(&link.opened_at),
            revoked_at: text(&link.revoked_at),
            revoke_reason: text(&link.revoke_reason),
            operation_id: text(&link.operation_id),
        }
    }
}

impl Partners {
    /// The partner a `m2m_partners` row belongs to, with its portal settings restored:
    /// a configured partner by slug, or (open mode) the partner of the key it was created by.
    /// `None` when this configuration has no such partner.
    pub fn restore_partner(&self, slug: &str, row: PartnerRow) -> Option<Arc<Partner>> {
        let partner = match self.by_slug(slug) {
            Some(partner) => partner,
            None => {
                let key = row.key.as_deref()?;
                if self.closed || open_mode_slug(key) != slug {
                    return None;
                }
                let mut tables = self.tables.write();
                if let Some(partner) = tables.by_key.get(key) {
                    partner.clone()
                } else {
                    let partner = Arc::new(Partner::open(
                        key,
                        self.widget_base.clone(),
                        self.sink.clone(),
                        self.budget.clone(),
                    ));
                    tables.insert(key, partner.clone());
                    partner
                }
            }
        };
        {
            let mut state = partner.state.lock();
            let (url, secret) = partner.later_hooks(row);
            if state.webhook_url != url {
                state.webhook_url = url;
                super::webhook_url_changed();
            }
            state.webhook_secret = secret;
        }
        Some(partner)
    }
}

impl Partner {
    /// The webhook URL and secret a loaded `row` leaves this partner with: the row's (set
    /// through the API, or generated and kept), unless the config file has changed a setting
    /// since the row was written; the edit is the later change, and wins. A secret the
    /// config file no longer gives is kept: deliveries must be signed with something.
    fn later_hooks(&self, row: PartnerRow) -> (Option<String>, String) {
        let (Some(now), Some(then)) = (&self.configured, &row.configured) else {
            return (row.webhook_url, row.webhook_secret);
        };
        let url = if now.webhook_url == then.webhook_url {
            row.webhook_url
        } else {
            tracing::info!(partner = %self.slug, "the config file's webhook_url changed since the state file was written: it replaces the stored one");
            now.webhook_url.clone()
        };
        let secret = match &now.webhook_secret {
            Some(secret) if now.webhook_secret != then.webhook_secret => {
                tracing::info!(partner = %self.slug, "the config file's webhook_secret changed since the state file was written: it replaces the stored one");
                secret.clone()
            }
            _ => row.webhook_secret,
        };
        (url, secret)
    }

    /// Writes the partner's row (its key and portal settings).
    pub(super) fn persist_settings(&self, state: &PartnerState) {
        self.record(|changes| self.put_settings(changes, state));
    }

    /// The partner's row (its key, webhook URL and secret, and portal settings) in
    /// `changes`.
    pub(super) fn put_settings(&self, changes: &mut Changes, state: &PartnerState) {
        changes.put(
            Table::M2mPartners,
            &self.slug,
            &*self.slug,
            0,
            &PartnerRow {
                key: self.key.as_deref().map(str::to_owned),
                webhook_url: state.webhook_url.clone(),
                webhook_secret: state.webhook_secret.clone(),
                configured: self.configured.clone(),
            },
        );
    }

    /// Writes every partner row again (after a file is loaded: configured partners and
    /// their generated secrets may be new to it).
    pub fn persist_all_settings(&self) {
        self.persist_settings(&self.state.lock());
    }

    pub(super) fn put_user(&self, changes: &mut Changes, state: &PartnerState, index: usize) {
        let row = self.user_doc(&state.users[index]);
        changes.put_with_raw(
            Table::M2mUsers,
            &self.slug,
            row.user_id.as_ref(),
            index as u64,
            &row,
            &row.raw(),
        );
    }

    pub(super) fn put_link(&self, changes: &mut Changes, state: &PartnerState, index: usize) {
        let row = self.link_doc(state, &state.links[index]);
        changes.put_with_raw(
            Table::M2mLinks,
            &self.slug,
            row.link_id.as_ref(),
            index as u64,
            &row,
            &row.raw(),
        );
    }

    pub(super) fn put_data_request(
        &self,
        changes: &mut Changes,
        state: &PartnerState,
        suffix: u64,
    ) {
        if let Some(request) = state.data_requests.get(&suffix) {
            let row = self.snapshot_data_request(state, request);
            changes.put(
                Table::M2mDataRequests,
                &self.slug,
                row.data_request_id.clone(),
                u64::from(request.link),
                &row,
            );
        }
    }

    /// The operation of link `index`, keyed by the link: a new operation replaces the
    /// cancelled one.
    pub(super) fn put_operation(&self, changes: &mut Changes, state: &PartnerState, index: usize) {
        let row = self.operation_view(state, index);
        changes.put(
            Table::M2mOperations,
            &self.slug,
            row.link_id.clone(),
            index as u64,
            &row,
        );
    }

    /// Deletes the partner's links, users, data requests and operations.
    pub(super) fn clear_state(&self, changes: &mut Changes) {
        for table in Table::M2M_STATE {
            changes.clear_tenant(table, &self.slug);
        }
    }

    /// Writes every link, user, data request and operation.
    pub(super) fn put_all(&self, changes: &mut Changes, state: &PartnerState) {
        for index in 0..state.users.len() {
            self.put_user(changes, state, index);
        }
        for index in 0..state.links.len() {
            self.put_link(changes, state, index);
        }
        for &suffix in state.data_requests.keys() {
            self.put_data_request(changes, state, suffix);
        }
        for &index in state.operations.keys() {
            self.put_operation(changes, state, index as usize);
        }
    }
}
