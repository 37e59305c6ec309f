//! How a partner's state is written to the state file, row by row, and found again when the
//! file is loaded. Rows hold the same documents a snapshot does, so loading a partner is
//! restoring the snapshot its rows make up.

use std::sync::Arc;

use linkbox_contracts::sandbox::{
    M2mSnapshot, OperationView, SnapshotDataRequest, SnapshotLink, SnapshotUser,
};
use serde::{Deserialize, Serialize};

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
                    ));
                    tables.insert(key, partner.clone());
                    partner
                }
            }
        };
        {
            let mut state = partner.state.lock();
            state.webhook_url = row.webhook_url;
            state.webhook_secret = row.webhook_secret;
        }
        Some(partner)
    }
}

impl Partner {
    /// Writes the partner's row (its key and portal settings).
    pub(super) fn persist_settings(&self, state: &PartnerState) {
        self.record(|changes| {
            changes.put(
                Table::M2mPartners,
                &self.slug,
                &*self.slug,
                0,
                &PartnerRow {
                    key: self.key.as_deref().map(str::to_owned),
                    webhook_url: state.webhook_url.clone(),
                    webhook_secret: state.webhook_secret.clone(),
                },
            );
        });
    }

    /// Puts back the partner's rows read from the state file, each kind in position order,
    /// checked as a snapshot restore checks them.
    pub fn restore_rows(
        &self,
        users: Vec<SnapshotUser>,
        links: Vec<SnapshotLink>,
        data_requests: Vec<SnapshotDataRequest>,
        operations: Vec<OperationView>,
    ) -> Result<(), String> {
        let webhook_url = self.webhook_url();
        self.restore(M2mSnapshot {
            version: super::snapshot::VERSION,
            partner: self.slug.to_string(),
            webhook_url,
            users,
            links,
            data_requests,
            operations,
        })
    }

    /// Writes every partner row again (after a file is loaded: configured partners and
    /// their generated secrets may be new to it).
    pub fn persist_all_settings(&self) {
        self.persist_settings(&self.state.lock());
    }

    pub(super) fn put_user(&self, changes: &mut Changes, state: &PartnerState, index: usize) {
        let user = &state.users[index];
        let row = self.snapshot_user(user);
        changes.put(
            Table::M2mUsers,
            &self.slug,
            row.user_id.clone(),
            index as u64,
            &row,
        );
    }

    pub(super) fn put_link(&self, changes: &mut Changes, state: &PartnerState, index: usize) {
        let row = self.snapshot_link(state, &state.links[index]);
        changes.put(
            Table::M2mLinks,
            &self.slug,
            row.link_id.clone(),
            index as u64,
            &row,
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
