//! How a Leaf account's users and magic links are written to the state file, and read back.

use std::collections::BTreeMap;

use linkbox_contracts::leaf::{AllowedProvider, LinkSettings, Provider, ProviderCredentials};
use linkbox_contracts::timefmt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Account, AccountState, Accounts, Link, LinkKind, User, UserFields};
use crate::persist::{Changes, Table};

/// The name of the token signing key in the `secrets` table.
pub const SIGNING_SECRET: &str = "leaf_token_signing_key";

/// A `leaf_users` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub external_id: Option<String>,
    pub credentials: BTreeMap<String, ProviderCredentials>,
}

/// A `leaf_magic_links` row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRow {
    pub leaf_user_id: String,
    pub kind: KindRow,
    pub settings: LinkSettings,
    pub created_at: String,
    pub expires_at: String,
    pub last_accessed_at: Option<String>,
    pub usage_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "widget", rename_all = "camelCase")]
pub enum KindRow {
    Provider {
        allowed_providers: Vec<AllowedProvider>,
    },
    Authentication {
        provider: Provider,
    },
    FileUpload,
}

impl Accounts {
    /// The token signing key, hex, as the `secrets` table keeps it.
    pub fn signing_secret_hex(&self) -> String {
        hex::encode(self.signing_secret())
    }

    /// Signs tokens with a key kept earlier, so tokens issued before a restart stay valid.
    pub fn restore_signing_secret(&self, text: &str) -> Result<(), String> {
        let bytes = hex::decode(text).map_err(|error| format!("token signing key: {error}"))?;
        let secret = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| "token signing key: not 32 bytes".to_owned())?;
        *self.secret.write() = secret;
        Ok(())
    }
}

impl Account {
    pub(super) fn put_user(&self, changes: &mut Changes, id: Uuid, user: &User) {
        let row = UserRow {
            name: user.fields.name.clone(),
            email: user.fields.email.clone(),
            phone: user.fields.phone.clone(),
            address: user.fields.address.clone(),
            external_id: user.fields.external_id.clone(),
            credentials: user
                .credentials
                .iter()
                .filter_map(|(provider, credentials)| {
                    let name = serde_json::to_value(provider).ok()?.as_str()?.to_owned();
                    Some((name, credentials.clone()))
                })
                .collect(),
        };
        changes.put(
            Table::LeafUsers,
            &self.username,
            id.to_string(),
            user.seq,
            &row,
        );
    }

    pub(super) fn delete_user_row(&self, changes: &mut Changes, id: Uuid, seq: u64) {
        changes.delete(Table::LeafUsers, &self.username, id.to_string(), seq);
    }

    pub(super) fn put_link(&self, changes: &mut Changes, id: &str, link: &Link) {
        let row = LinkRow {
            leaf_user_id: link.user.to_string(),
            kind: match &link.kind {
                LinkKind::Provider(allowed) => KindRow::Provider {
                    allowed_providers: allowed.clone(),
                },
                LinkKind::Authentication(provider) => KindRow::Authentication {
                    provider: *provider,
                },
                LinkKind::FileUpload => KindRow::FileUpload,
            },
            settings: link.settings.clone(),
            created_at: timefmt::nanos(link.created_at),
            expires_at: timefmt::nanos(link.expires_at),
            last_accessed_at: link.last_accessed_at.map(timefmt::nanos),
            usage_count: link.usage_count,
        };
        changes.put(Table::LeafMagicLinks, &self.username, id, link.seq, &row);
    }

    pub(super) fn delete_link_row(&self, changes: &mut Changes, id: &str, seq: u64) {
        changes.delete(Table::LeafMagicLinks, &self.username, id, seq);
    }

    /// Puts back users and links read from the state file: `(id, sequence, row)` each.
    pub fn restore(
        &self,
        users: Vec<(String, u64, UserRow)>,
        links: Vec<(String, u64, LinkRow)>,
    ) -> Result<(), String> {
        let mut state = AccountState::default();
        self.merge(&mut state, users, links)?;
        *self.state.lock() = state;
        Ok(())
    }

    /// Puts rows a shared database changed since this copy's version onto the copy: each
    /// user and magic link replaces the one with its id, or joins. On `Err` the copy may be
    /// half changed: read it back whole.
    pub fn apply_rows(
        &self,
        users: Vec<(String, u64, UserRow)>,
        links: Vec<(String, u64, LinkRow)>,
    ) -> Result<(), String> {
        let mut state = self.state.lock();
        // Rows of another replica may rename or remove users, unseen.
        state.numbered.clear();
        self.merge(&mut state, users, links)
    }

    fn merge(
        &self,
        state: &mut AccountState,
        users: Vec<(String, u64, UserRow)>,
        links: Vec<(String, u64, LinkRow)>,
    ) -> Result<(), String> {
        for (id, seq, row) in users {
            let id = Uuid::parse_str(&id).map_err(|_| format!("Leaf user id {id:?}"))?;
            let mut credentials = std::collections::HashMap::new();
            for (name, value) in row.credentials {
                let provider: Provider = serde_json::from_value(serde_json::Value::String(name))
                    .map_err(|error| format!("Leaf user {id}: {error}"))?;
                credentials.insert(provider, value);
            }
            state.put_user(
                id,
                User {
                    seq,
                    fields: UserFields {
                        name: row.name,
                        email: row.email,
                        phone: row.phone,
                        address: row.address,
                        external_id: row.external_id,
                    },
                    credentials,
                },
            );
            state.next_seq = state.next_seq.max(seq);
        }
        for (id, seq, row) in links {
            let time = |text: &str| {
                timefmt::parse(text).ok_or_else(|| format!("magic link {id}: timestamp {text:?}"))
            };
            let link = Link {
                seq,
                user: Uuid::parse_str(&row.leaf_user_id)
                    .map_err(|_| format!("magic link {id}: leafUserId {:?}", row.leaf_user_id))?,
                kind: match row.kind {
                    KindRow::Provider { allowed_providers } => {
                        LinkKind::Provider(allowed_providers)
                    }
                    KindRow::Authentication { provider } => LinkKind::Authentication(provider),
                    KindRow::FileUpload => LinkKind::FileUpload,
                },
                settings: row.settings,
                created_at: time(&row.created_at)?,
                expires_at: time(&row.expires_at)?,
                last_accessed_at: row.last_accessed_at.as_deref().map(time).transpose()?,
                usage_count: row.usage_count,
            };
            if let Some(kept) = state.links.get(&id) {
                state.link_order.remove(&kept.seq);
                state.stored = state.stored.saturating_sub(kept.weight());
            }
            state.link_order.insert(seq, id.clone());
            self.index_link(&id);
            state.stored += link.weight();
            state.links.insert(id, link);
            state.next_seq = state.next_seq.max(seq);
        }
        Ok(())
    }
}
