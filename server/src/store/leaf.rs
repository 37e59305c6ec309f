//! Leaf accounts and everything they own: Leaf users (with their provider connections) and
//! magic links.
//!
//! [`Accounts`] checks credentials and resolves a username to an [`Account`]; each account's
//! state sits behind its own mutex and is changed only through the methods below, which keep
//! the rules of `leaf.md` (create-or-reuse by `externalId`, links only for the account's own
//! users, per-widget lookups). Views are built here, in the wire types of `linkbox-contracts`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use linkbox_contracts::leaf::{
    self as wire, AllowedProvider, LinkSettings, Provider, ProviderCredentials, Widget,
};
use linkbox_contracts::timefmt;
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::ids;
use super::index::ShardedMap;
use super::numbered::{Held, Numbered};
use super::quota::{self, Budget, Ceiling, StorageFull, Tenant};
use crate::config::Settings;
use crate::persist::{Sink, Table};

pub mod persisted;

/// Why a request about a user or a link could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("Leaf user not found")]
    UserNotFound,
    #[error("magic link not found")]
    LinkNotFound,
    #[error("another Leaf user already has this externalId")]
    ExternalIdTaken,
    #[error("the magic link has expired")]
    LinkExpired,
    #[error("the magic link has been used up")]
    LinkUsedUp,
    /// The link is kept (and listed) after its Leaf user was deleted, but no end user can
    /// use it any more: there is no one to connect.
    #[error("the magic link's Leaf user has been deleted")]
    UserDeleted,
    /// The write would take the account past `--max-tenant-mib`.
    #[error(transparent)]
    StorageFull(#[from] StorageFull),
}

/// Open mode: a new username would make one more Leaf account than the sandbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountLimit {
    /// It holds `--max-tenants` accounts.
    #[error(
        "This sandbox already holds its maximum number of Leaf accounts (--max-tenants); new usernames are refused until the admin resets it (POST /_sandbox/reset as admin forgets every account) or it is restarted with a higher limit. Use an existing account"
    )]
    Count,
    /// It has no room for one more account (`--max-stored-mib`).
    #[error(transparent)]
    Full(StorageFull),
}

/// The account table: username → account, plus the token signing secret.
pub struct Accounts {
    by_name: RwLock<HashMap<Box<str>, Arc<Account>>>,
    /// Open mode, `--max-tenants`: the most accounts there may be.
    max_accounts: Option<usize>,
    /// What each account may store (`--max-tenant-mib`).
    budget: Budget,
    /// Magic link id → owner's username, kept by the accounts as links come and go, so the
    /// hosted page finds a link's account without scanning every account.
    link_owners: LinkOwners,
    /// Config mode: username → (password, maxUsage). Empty in open mode.
    configured: HashMap<String, (String, u32)>,
    /// HS256 secret of the tokens: random, so in memory no token outlives the process; with
    /// a state file it is kept there, so tokens outlive restarts.
    secret: RwLock<[u8; 32]>,
    link_base: Arc<str>,
    sink: Sink,
}

impl Accounts {
    /// In memory.
    pub fn new(settings: &Settings) -> Accounts {
        Accounts::with_sink(settings, Sink::off())
    }

    /// Writing every change through `sink`.
    pub fn with_sink(settings: &Settings, sink: Sink) -> Accounts {
        Accounts::with_ceiling(settings, sink, Ceiling::none())
    }

    /// Writing every change through `sink`, each account's budget under `ceiling`, the
    /// whole sandbox's.
    pub fn with_ceiling(settings: &Settings, sink: Sink, ceiling: Arc<Ceiling>) -> Accounts {
        let configured = settings
            .leaf_accounts
            .iter()
            .map(|account| {
                (
                    account.username.clone(),
                    (
                        account.password.clone(),
                        account.max_usage.unwrap_or(wire::DEFAULT_MAX_USAGE),
                    ),
                )
            })
            .collect();
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Accounts {
            by_name: RwLock::new(HashMap::new()),
            max_accounts: settings.max_tenants,
            budget: Budget::new(settings.max_tenant_mib, Tenant::LeafAccount, ceiling),
            link_owners: LinkOwners::default(),
            configured,
            secret: RwLock::new(secret),
            link_base: settings.leaf_link_base.as_str().into(),
            sink,
        }
    }

    /// The admin reset: every account forgets its users and magic links, and in open mode
    /// the accounts themselves are dropped, so `--max-tenants` counts from none again (a
    /// token issued before still reads as its account, made again on its next write).
    pub fn reset_all(&self) {
        let mut by_name = self.by_name.write();
        for account in by_name.values() {
            account.reset();
        }
        if self.configured.is_empty() {
            self.sink.shared_only().record(|changes| {
                for account in by_name.values() {
                    changes.delete(
                        Table::LeafAccounts,
                        &account.username,
                        &*account.username,
                        0,
                    );
                }
            });
            by_name.clear();
        }
    }

    /// The account of `username` if it is in the table; creates none.
    pub fn existing(&self, username: &str) -> Option<Arc<Account>> {
        self.by_name.read().get(username).cloned()
    }

    /// Drops open-mode account `username` from the table, as the admin reset does, when
    /// another replica's reset or a rolled-back first write left the shared database
    /// without any of its rows: a token of it reads as it, and its next write makes it
    /// again. `false` in config mode (accounts stay, their state read back).
    pub fn drop_open(&self, username: &str) -> bool {
        if !self.configured.is_empty() {
            return false;
        }
        if let Some(account) = self.by_name.write().remove(username) {
            account.reset();
        }
        true
    }

    /// Whether `username` may log in with `password`: in open mode any non-empty pair
    /// whose username holds no U+0000, which no database names an account by (a sandbox
    /// shared through PostgreSQL answered such a login 503, for good). [design]
    pub fn check_password(&self, username: &str, password: &str) -> bool {
        if self.configured.is_empty() {
            return !username.is_empty() && !username.contains('\0') && !password.is_empty();
        }
        self.configured
            .get(username)
            .is_some_and(|(expected, _)| expected == password)
    }

    /// The secret tokens are signed with.
    pub fn signing_secret(&self) -> [u8; 32] {
        *self.secret.read()
    }

    /// The account of `username`, created on first use; `None` for a name no configured
    /// account has (or an empty one).
    pub fn account(&self, username: &str) -> Option<Arc<Account>> {
        if username.is_empty() {
            return None;
        }
        if let Some(account) = self.by_name.read().get(username) {
            return Some(account.clone());
        }
        let fresh = self.fresh(username, false)?;
        let mut by_name = self.by_name.write();
        let account = match by_name.entry(username.into()) {
            Entry::Occupied(entry) => entry.get().clone(),
            Entry::Vacant(entry) => {
                let account = entry.insert(Arc::new(fresh)).clone();
                // In a shared database an open-mode account is a tenant from its first
                // write on, whatever it writes: a fault alone leaves no user or link.
                if self.configured.is_empty() {
                    self.sink.shared_only().record(|changes| {
                        changes.put(
                            Table::LeafAccounts,
                            &account.username,
                            username,
                            0,
                            &serde_json::Map::new(),
                        );
                    });
                }
                account
            }
        };
        Some(account)
    }

    /// A new, empty account of `username`, in no table; `None` for a name no configured
    /// account has. A `stranger` writes nothing and indexes no link.
    fn fresh(&self, username: &str, stranger: bool) -> Option<Account> {
        let max_usage = if self.configured.is_empty() {
            wire::DEFAULT_MAX_USAGE
        } else {
            self.configured.get(username)?.1
        };
        let (sink, link_owners) = if stranger {
            (Sink::off(), LinkOwners::default())
        } else {
            (self.sink.clone(), self.link_owners.clone())
        };
        Some(Account {
            username: username.into(),
            max_usage,
            link_base: self.link_base.clone(),
            sink,
            link_owners,
            stranger,
            budget: self.budget.clone(),
            state: Mutex::new(AccountState::default()),
            body_share: crate::bodies::Share::default(),
        })
    }

    /// The account of `username` for a request to act through: the one in the table, or
    /// for a name that has not written yet an empty *stranger* in no table, writing
    /// nothing, so reads create no tenant; `None` as [`Accounts::account`]. A write goes
    /// through [`Accounts::materialize`] first.
    pub fn find(&self, username: &str) -> Option<Arc<Account>> {
        if username.is_empty() {
            return None;
        }
        if let Some(account) = self.by_name.read().get(username) {
            return Some(account.clone());
        }
        self.fresh(username, true).map(Arc::new)
    }

    /// Whether `username` has an account or may have one made: `--max-tenants` (open
    /// mode) bounds how many there are.
    pub fn admits(&self, username: &str) -> bool {
        self.max_accounts.is_none_or(|max| {
            let by_name = self.by_name.read();
            by_name.contains_key(username) || by_name.len() < max
        })
    }

    /// The account a write acts on: `account` itself, or for a stranger the account of
    /// its username, created now; refused once `--max-tenants` accounts exist.
    pub fn materialize(&self, account: &Arc<Account>) -> Result<Arc<Account>, AccountLimit> {
        if !account.stranger {
            return Ok(account.clone());
        }
        if !self.admits(&account.username) {
            return Err(AccountLimit::Count);
        }
        // An account weighs something before it holds anything: usernames made up by the
        // thousand are bounded by the sandbox's budget, not only by `--max-tenants`.
        if !self.by_name.read().contains_key(&*account.username) {
            self.budget.admits_tenant().map_err(AccountLimit::Full)?;
        }
        Ok(self
            .account(&account.username)
            .unwrap_or_else(|| account.clone()))
    }

    /// Every account seen so far, by username.
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut accounts: Vec<Arc<Account>> = self.by_name.read().values().cloned().collect();
        accounts.sort_by(|a, b| a.username.cmp(&b.username));
        accounts
    }

    /// The account owning magic link `id`, whatever its widget: the hosted page is reached
    /// without a token, so it finds the link by id alone (ids are random UUIDs).
    pub fn owner_of_link(&self, id: &str) -> Option<Arc<Account>> {
        let username = self.link_owners.read().get(id)?.clone();
        let account = self.by_name.read().get(&*username)?.clone();
        let owns = account.state.lock().links.contains_key(id);
        owns.then_some(account)
    }

    /// Records that the user behind `leaf_user_id` connected `provider` (hosted page,
    /// control API).
    pub fn connect_provider(
        &self,
        account: &str,
        leaf_user_id: &str,
        provider: Provider,
        now: OffsetDateTime,
    ) -> Result<wire::LeafUser, LeafError> {
        self.account(account)
            .ok_or(LeafError::UserNotFound)?
            .connect_provider(leaf_user_id, provider, now)
    }

    /// Counts one access of a magic link's page (hosted page, control API).
    pub fn access_magic_link(
        &self,
        account: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<wire::MagicLink, LeafError> {
        self.account(account)
            .ok_or(LeafError::LinkNotFound)?
            .access_magic_link(id, now)
    }
}

/// Magic link id → the username of the account owning it.
type LinkOwners = Arc<RwLock<ShardedMap<Box<str>, Arc<str>>>>;

/// One Leaf account (a tenant): fixed settings plus mutable state.
pub struct Account {
    pub username: Arc<str>,
    /// Accesses each of its magic links allows.
    pub max_usage: u32,
    link_base: Arc<str>,
    sink: Sink,
    link_owners: LinkOwners,
    /// Not in the account table: a username that has only read so far.
    stranger: bool,
    /// What the account may store (`--max-tenant-mib`), against [`AccountState::stored`].
    budget: Budget,
    state: Mutex<AccountState>,
    /// What its requests' bodies (and its links' uploads) hold now ([`crate::bodies`]).
    pub body_share: crate::bodies::Share,
}

#[derive(Default)]
struct AccountState {
    users: ShardedMap<Uuid, User>,
    /// Creation sequence → user id: the users' listing order.
    user_order: BTreeMap<u64, Uuid>,
    /// `externalId` → user: unique in an account (create and replace refuse a taken one, and
    /// replicas write a tenant one at a time against its current rows), so create-or-reuse
    /// and the `externalId` filter find a user without walking them all.
    by_external_id: ShardedMap<String, Uuid>,
    links: ShardedMap<String, Link>,
    /// Creation sequence → link id: newest last, listed newest first.
    link_order: BTreeMap<u64, String>,
    next_seq: u64,
    /// Files uploaded through file-upload links' hosted pages, by link id: metadata only.
    uploads: HashMap<String, Vec<Upload>>,
    /// What the users, links and uploads weigh together ([`User::weight`],
    /// [`Link::weight`], [`Upload::weight`]): kept as they change, checked against
    /// [`Account::budget`] by the writes that add to it.
    stored: u64,
    /// Where a seed's search for a free `externalId` variant picks up
    /// ([`Account::free_external_id`]).
    numbered: Numbered,
}

/// What a Leaf user's record and its index entries are counted as
/// ([`crate::store::quota`]).
const USER_WEIGHT: u64 = 160;
/// What a provider's credentials on a user are counted as (their texts are linkbox's own,
/// of fixed length).
const CREDENTIALS_WEIGHT: u64 = 128;
/// What a magic link's record, its id and its index entries are counted as.
const LINK_WEIGHT: u64 = 256;
/// What a recorded upload is counted as besides its file name.
const UPLOAD_WEIGHT: u64 = 48;

impl User {
    /// What the user counts against its account's budget.
    fn weight(&self) -> u64 {
        USER_WEIGHT
            + fields_weight(&self.fields)
            + CREDENTIALS_WEIGHT * self.credentials.len() as u64
    }
}

/// The bytes of a user's client-set fields.
fn fields_weight(fields: &UserFields) -> u64 {
    (fields.name.len() + fields.email.len()) as u64
        + quota::text(fields.phone.as_deref())
        + quota::text(fields.address.as_deref())
        + quota::text(fields.external_id.as_deref())
}

impl Link {
    /// What the link counts against its account's budget.
    fn weight(&self) -> u64 {
        let settings = &self.settings;
        let providers = match &self.kind {
            LinkKind::Provider(allowed) => allowed.len() as u64,
            LinkKind::Authentication(_) | LinkKind::FileUpload => 0,
        };
        LINK_WEIGHT
            + settings.background_color.len() as u64
            + quota::text(settings.company_logo.as_deref())
            + quota::text(settings.company_name.as_deref())
            + quota::text(settings.header_image.as_deref())
            + 8 * providers
    }
}

impl Upload {
    /// What the record counts against its account's budget.
    fn weight(&self) -> u64 {
        UPLOAD_WEIGHT + self.file_name.len() as u64
    }
}

/// A file taken by a file-upload link's page: what it was, not what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub file_name: String,
    pub size: u64,
    pub uploaded_at: OffsetDateTime,
}

struct User {
    seq: u64,
    fields: UserFields,
    credentials: HashMap<Provider, ProviderCredentials>,
}

/// The fields of a Leaf user a client sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub external_id: Option<String>,
}

/// The user filters of `GET /users`, already validated; each is an exact match.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub email: Option<String>,
    pub name: Option<String>,
    pub external_id: Option<String>,
}

/// What distinguishes the three kinds of link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Provider(Vec<AllowedProvider>),
    Authentication(Provider),
    FileUpload,
}

impl LinkKind {
    pub fn widget(&self) -> Widget {
        match self {
            LinkKind::Provider(_) => Widget::Provider,
            LinkKind::Authentication(_) => Widget::Authentication,
            LinkKind::FileUpload => Widget::FileUpload,
        }
    }
}

/// A validated create body.
#[derive(Debug, Clone)]
pub struct NewMagicLink {
    pub kind: LinkKind,
    pub expires_in: Duration,
    pub settings: LinkSettings,
}

/// Whose link it is: an existing user, or the one with an `externalId` (created if new).
#[derive(Debug, Clone)]
pub enum LinkOwner {
    Existing(String),
    ByExternalId {
        external_id: String,
        name: Option<String>,
        email: Option<String>,
    },
}

struct Link {
    seq: u64,
    user: Uuid,
    kind: LinkKind,
    settings: LinkSettings,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    last_accessed_at: Option<OffsetDateTime>,
    usage_count: u32,
}

/// A new magicLinkId: the URL-safe base64 text, without padding, of a random UUID's string.
/// Leaf's ids are standard base64; the URL-safe alphabet keeps every id usable as a path
/// segment of the hosted page and the API.
pub fn new_magic_link_id() -> String {
    URL_SAFE_NO_PAD.encode(ids::uuid_v4().to_string())
}

/// Whether `id` has a magicLinkId's form ([`new_magic_link_id`]): text that is no such id
/// names no link, whoever asks.
pub fn is_magic_link_id(id: &str) -> bool {
    id.len() == 48
        && URL_SAFE_NO_PAD
            .decode(id)
            .ok()
            .and_then(|decoded| String::from_utf8(decoded).ok())
            .is_some_and(|text| uuid::Uuid::parse_str(&text).is_ok())
}

impl AccountState {
    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn external_id_taken(&self, external_id: &str, except: Option<Uuid>) -> bool {
        self.by_external_id
            .get(external_id)
            .is_some_and(|owner| Some(*owner) != except)
    }

    /// Puts `user` in as `id`, in place of the user of that id if there is one, keeping the
    /// listing order and the `externalId` index.
    fn put_user(&mut self, id: Uuid, user: User) -> &mut User {
        self.remove_user(id);
        self.stored += user.weight();
        self.user_order.insert(user.seq, id);
        if let Some(external_id) = &user.fields.external_id {
            self.by_external_id.insert(external_id.clone(), id);
        }
        self.users.put(id, user)
    }

    /// Takes user `id` out, with its place in the listing order and the index.
    fn remove_user(&mut self, id: Uuid) -> Option<User> {
        let user = self.users.remove(&id)?;
        self.stored = self.stored.saturating_sub(user.weight());
        self.user_order.remove(&user.seq);
        if let Some(external_id) = &user.fields.external_id {
            self.by_external_id.remove(external_id);
            self.numbered.released(external_id);
        }
        Some(user)
    }

    /// Replaces the client-set fields of user `id`.
    fn replace_fields(&mut self, id: Uuid, fields: UserFields) -> Option<&mut User> {
        let user = self.users.get_mut(&id)?;
        self.stored =
            self.stored.saturating_sub(fields_weight(&user.fields)) + fields_weight(&fields);
        let old = std::mem::replace(&mut user.fields, fields);
        if old.external_id != user.fields.external_id {
            if let Some(external_id) = &old.external_id {
                self.by_external_id.remove(external_id);
                self.numbered.released(external_id);
            }
            if let Some(external_id) = &user.fields.external_id {
                self.by_external_id.insert(external_id.clone(), id);
            }
        }
        Some(user)
    }

    fn user_id(&self, id: &str) -> Result<Uuid, LeafError> {
        Uuid::parse_str(id)
            .ok()
            .filter(|id| self.users.contains_key(id))
            .ok_or(LeafError::UserNotFound)
    }
}

impl Account {
    /// Holds the account's state locked until the guard drops: a test's way to keep a
    /// request waiting half way.
    #[cfg(test)]
    pub fn hold(&self) -> impl Drop + '_ {
        self.state.lock()
    }

    /// Whether this account is in the table: it has written, or is configured; not a
    /// stranger made up for a read ([`Accounts::find`]).
    pub fn exists(&self) -> bool {
        !self.stranger
    }

    /// `POST /users`.
    pub fn create_user(&self, fields: UserFields) -> Result<wire::LeafUser, LeafError> {
        let mut state = self.state.lock();
        if let Some(external_id) = &fields.external_id
            && state.external_id_taken(external_id, None)
        {
            return Err(LeafError::ExternalIdTaken);
        }
        self.budget
            .admits(state.stored, USER_WEIGHT + fields_weight(&fields))?;
        let id = ids::uuid_v4();
        let user = insert_user(&mut state, id, fields);
        self.sink.record(|changes| self.put_user(changes, id, user));
        Ok(user.view(id))
    }

    /// `GET /users/{id}`.
    pub fn user(&self, id: &str) -> Result<wire::LeafUser, LeafError> {
        let state = self.state.lock();
        let id = state.user_id(id)?;
        state
            .users
            .get(&id)
            .map(|user| user.view(id))
            .ok_or(LeafError::UserNotFound)
    }

    /// `GET /users`: one page, oldest first, and the number of matches.
    pub fn list_users(
        &self,
        filter: &UserFilter,
        page: u32,
        size: u32,
    ) -> (Vec<wire::LeafUser>, u64) {
        let state = self.state.lock();
        // With an `externalId`, at most the one user it names; else all, in order.
        let candidates: Box<dyn Iterator<Item = &Uuid>> = match &filter.external_id {
            Some(external_id) => Box::new(state.by_external_id.get(external_id).into_iter()),
            None => Box::new(state.user_order.values()),
        };
        let matching: Vec<(&Uuid, &User)> = candidates
            .filter_map(|id| state.users.get(id).map(|user| (id, user)))
            .filter(|(_, user)| {
                let fields = &user.fields;
                filter
                    .email
                    .as_ref()
                    .is_none_or(|email| *email == fields.email)
                    && filter.name.as_ref().is_none_or(|name| *name == fields.name)
                    && filter
                        .external_id
                        .as_ref()
                        .is_none_or(|external| fields.external_id.as_ref() == Some(external))
            })
            .collect();
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(page as usize * size as usize)
            .take(size as usize)
            .map(|(id, user)| user.view(*id))
            .collect();
        (items, total)
    }

    /// `PUT /users/{id}`: replaces every client-set field; connections stay.
    pub fn replace_user(&self, id: &str, fields: UserFields) -> Result<wire::LeafUser, LeafError> {
        let mut state = self.state.lock();
        let id = state.user_id(id)?;
        if let Some(external_id) = &fields.external_id
            && state.external_id_taken(external_id, Some(id))
        {
            return Err(LeafError::ExternalIdTaken);
        }
        if let Some(user) = state.users.get(&id) {
            let (now, then) = (fields_weight(&user.fields), fields_weight(&fields));
            self.budget.admits(state.stored, then.saturating_sub(now))?;
        }
        let user = state
            .replace_fields(id, fields)
            .ok_or(LeafError::UserNotFound)?;
        self.sink.record(|changes| self.put_user(changes, id, user));
        Ok(user.view(id))
    }

    /// `DELETE /users/{id}`. Its magic links stay listed, as records of what was sent.
    pub fn delete_user(&self, id: &str) -> Result<(), LeafError> {
        let mut state = self.state.lock();
        let id = state.user_id(id)?;
        let Some(user) = state.remove_user(id) else {
            return Ok(());
        };
        self.sink
            .record(|changes| self.delete_user_row(changes, id, user.seq));
        Ok(())
    }

    /// Fills the user's credentials object for `provider`.
    pub fn connect_provider(
        &self,
        leaf_user_id: &str,
        provider: Provider,
        now: OffsetDateTime,
    ) -> Result<wire::LeafUser, LeafError> {
        let mut state = self.state.lock();
        let id = state.user_id(leaf_user_id)?;
        // Credentials of a fixed size, one per provider: a new provider's counted and
        // admitted as any write (seven a user, some 900 bytes, passed both budgets twice
        // over); one connected again adds nothing.
        let known = state
            .users
            .get(&id)
            .ok_or(LeafError::UserNotFound)?
            .credentials
            .contains_key(&provider);
        if !known {
            self.budget.admits(state.stored, CREDENTIALS_WEIGHT)?;
        }
        let user = state.users.get_mut(&id).ok_or(LeafError::UserNotFound)?;
        let counted = user.weight();
        user.credentials.insert(
            provider,
            ProviderCredentials {
                id: ids::uuid_v4().to_string(),
                status: "VALID".to_owned(),
                created_time: timefmt::millis(now),
            },
        );
        let weight = user.weight();
        state.stored = state.stored.saturating_sub(counted) + weight;
        let user = state.users.get(&id).ok_or(LeafError::UserNotFound)?;
        self.sink.record(|changes| self.put_user(changes, id, user));
        Ok(user.view(id))
    }

    /// Clears `provider`'s credentials on a Leaf user (nothing to clear is not an error).
    pub fn disconnect_provider(
        &self,
        leaf_user_id: &str,
        provider: Provider,
    ) -> Result<wire::LeafUser, LeafError> {
        let mut state = self.state.lock();
        let id = state.user_id(leaf_user_id)?;
        let user = state.users.get_mut(&id).ok_or(LeafError::UserNotFound)?;
        if user.credentials.remove(&provider).is_some() {
            state.stored = state.stored.saturating_sub(CREDENTIALS_WEIGHT);
            let user = state.users.get(&id).ok_or(LeafError::UserNotFound)?;
            self.sink.record(|changes| self.put_user(changes, id, user));
            return Ok(user.view(id));
        }
        Ok(user.view(id))
    }

    /// Creates a magic link for `owner`.
    pub fn create_magic_link(
        &self,
        owner: LinkOwner,
        link: NewMagicLink,
        now: OffsetDateTime,
    ) -> Result<wire::MagicLinkCreated, LeafError> {
        let mut settings = link.settings;
        if link.kind == LinkKind::FileUpload {
            settings.disconnect_enabled = false;
        }
        let made = Link {
            seq: 0,
            user: Uuid::nil(),
            kind: link.kind,
            settings,
            created_at: now,
            expires_at: now + link.expires_in,
            last_accessed_at: None,
            usage_count: 0,
        };
        // The most the create adds: the link, and a user made for an `externalId`.
        let owner_most = match &owner {
            LinkOwner::Existing(_) => 0,
            LinkOwner::ByExternalId {
                external_id,
                name,
                email,
            } => {
                USER_WEIGHT
                    + 3 * external_id.len() as u64
                    + quota::text(name.as_deref())
                    + quota::text(email.as_deref())
            }
        };
        let mut state = self.state.lock();
        self.budget
            .admits(state.stored, made.weight() + owner_most)?;
        let user = match owner {
            LinkOwner::Existing(id) => state.user_id(&id)?,
            LinkOwner::ByExternalId {
                external_id,
                name,
                email,
            } => match state.by_external_id.get(&external_id).copied() {
                Some(id) => id,
                None => {
                    let id = ids::uuid_v4();
                    let fields = UserFields {
                        name: name.unwrap_or_else(|| external_id.clone()),
                        email: email.unwrap_or_else(|| external_id.clone()),
                        phone: None,
                        address: None,
                        external_id: Some(external_id),
                    };
                    let user = insert_user(&mut state, id, fields);
                    self.sink.record(|changes| self.put_user(changes, id, user));
                    id
                }
            },
        };
        let id = new_magic_link_id();
        let seq = state.next_seq();
        let expires_at = made.expires_at;
        state.link_order.insert(seq, id.clone());
        self.index_link(&id);
        state.stored += made.weight();
        state.links.insert(id.clone(), Link { seq, user, ..made });
        self.sink.record(|changes| {
            if let Some(link) = state.links.get(&id) {
                self.put_link(changes, &id, link);
            }
        });
        Ok(wire::MagicLinkCreated {
            link: self.link_url(&id),
            id,
            leaf_user_id: user.to_string(),
            expires_at: timefmt::nanos(expires_at),
        })
    }

    /// A `widget` link of this account; a link of another widget is not found.
    pub fn magic_link(&self, widget: Widget, id: &str) -> Result<wire::MagicLink, LeafError> {
        let state = self.state.lock();
        let link = state
            .links
            .get(id)
            .filter(|link| link.kind.widget() == widget)
            .ok_or(LeafError::LinkNotFound)?;
        Ok(self.view(id, link))
    }

    /// The account's `widget` links, newest first, optionally of one user and paged
    /// (`(page, size)`); with the number of matches.
    pub fn list_magic_links(
        &self,
        widget: Widget,
        leaf_user_id: Option<&str>,
        page: Option<(u32, u32)>,
    ) -> (Vec<wire::MagicLink>, u64) {
        let state = self.state.lock();
        let user = leaf_user_id.map(|id| Uuid::parse_str(id).ok());
        let matching: Vec<(&String, &Link)> = state
            .link_order
            .values()
            .rev()
            .filter_map(|id| state.links.get(id).map(|link| (id, link)))
            .filter(|(_, link)| link.kind.widget() == widget)
            .filter(|(_, link)| user.is_none_or(|user| user == Some(link.user)))
            .collect();
        let total = matching.len() as u64;
        let (skip, take) = match page {
            Some((page, size)) => (page as usize * size as usize, size as usize),
            None => (0, usize::MAX),
        };
        let items = matching
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|(id, link)| self.view(id, link))
            .collect();
        (items, total)
    }

    /// Deletes a `widget` link of this account.
    pub fn delete_magic_link(&self, widget: Widget, id: &str) -> Result<(), LeafError> {
        let mut state = self.state.lock();
        match state.links.get(id) {
            Some(link) if link.kind.widget() == widget => {
                let seq = link.seq;
                if let Some(link) = state.links.remove(id) {
                    state.stored = state.stored.saturating_sub(link.weight());
                }
                self.link_owners.write().remove(id);
                state.link_order.remove(&seq);
                self.sink
                    .record(|changes| self.delete_link_row(changes, id, seq));
                Ok(())
            }
            _ => Err(LeafError::LinkNotFound),
        }
    }

    /// Counts one access of a link's page, of any widget; refused once it has expired or
    /// been used `maxUsage` times.
    pub fn access_magic_link(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<wire::MagicLink, LeafError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let link = state.links.get_mut(id).ok_or(LeafError::LinkNotFound)?;
        self.check_access(link, state.users.contains_key(&link.user), now)?;
        link.usage_count += 1;
        link.last_accessed_at = Some(now);
        self.sink.record(|changes| self.put_link(changes, id, link));
        Ok(self.view(id, link))
    }

    /// What [`Account::access_magic_link`] would answer now — the link as the access would
    /// leave it, or the refusal — without counting the access: a HEAD of the page.
    pub fn peek_magic_link(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<wire::MagicLink, LeafError> {
        let state = self.state.lock();
        let link = state.links.get(id).ok_or(LeafError::LinkNotFound)?;
        self.check_access(link, state.users.contains_key(&link.user), now)?;
        let mut view = self.view(id, link);
        view.usage_count += 1;
        view.last_accessed_at = Some(timefmt::millis(now));
        Ok(view)
    }

    /// Why `link` may not be accessed at `now`, if it may not; `user_kept` is whether its
    /// Leaf user still exists.
    fn check_access(
        &self,
        link: &Link,
        user_kept: bool,
        now: OffsetDateTime,
    ) -> Result<(), LeafError> {
        if !user_kept {
            return Err(LeafError::UserDeleted);
        }
        if link.expires_at <= now {
            return Err(LeafError::LinkExpired);
        }
        if link.usage_count >= self.max_usage {
            return Err(LeafError::LinkUsedUp);
        }
        Ok(())
    }

    /// Refused with [`LeafError::UserDeleted`] when link `id`'s Leaf user has been deleted:
    /// what the hosted page checks before its forms act.
    pub fn check_user_kept(&self, id: &str) -> Result<(), LeafError> {
        let state = self.state.lock();
        let link = state.links.get(id).ok_or(LeafError::LinkNotFound)?;
        if state.users.contains_key(&link.user) {
            Ok(())
        } else {
            Err(LeafError::UserDeleted)
        }
    }

    /// A link of any widget, without counting an access.
    pub fn find_magic_link(&self, id: &str) -> Result<wire::MagicLink, LeafError> {
        let state = self.state.lock();
        let link = state.links.get(id).ok_or(LeafError::LinkNotFound)?;
        Ok(self.view(id, link))
    }

    /// Records a file uploaded through link `id`'s page, unless the link holds `max`
    /// files already (`Ok(false)`).
    pub fn record_upload(&self, id: &str, upload: Upload, max: usize) -> Result<bool, LeafError> {
        let mut state = self.state.lock();
        if !state.links.contains_key(id) {
            return Err(LeafError::LinkNotFound);
        }
        if state
            .uploads
            .get(id)
            .is_some_and(|uploads| uploads.len() >= max)
        {
            return Ok(false);
        }
        self.budget.admits(state.stored, upload.weight())?;
        state.stored += upload.weight();
        state.uploads.entry(id.to_owned()).or_default().push(upload);
        Ok(true)
    }

    /// The files uploaded through link `id`'s page, oldest first.
    pub fn uploads(&self, id: &str) -> Vec<Upload> {
        self.state
            .lock()
            .uploads
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// What the account's users, links and uploads are counted as holding
    /// ([`crate::store::quota`]).
    pub fn stored(&self) -> u64 {
        self.state.lock().stored
    }

    /// `Ok` when the account may add `more` counted bytes to what it holds now: a check
    /// before writes that are each admitted as they are made.
    pub fn allows(&self, more: u64) -> Result<(), StorageFull> {
        self.budget.allows(self.stored(), more)
    }

    /// The first of `base`, `base-2`, `base-3`, … no user of the account has as its
    /// `externalId`: what a create of it would not refuse as [`LeafError::ExternalIdTaken`]
    /// (unless another create takes it first). As [`crate::store::m2m::Partner::free_reference`],
    /// the search picks up past the variants an earlier seed found taken ([`Numbered`]).
    pub fn free_external_id(&self, base: &str) -> Option<String> {
        let mut state = self.state.lock();
        let AccountState {
            by_external_id,
            numbered,
            ..
        } = &mut *state;
        // Every variant taken is a user's: one more than there are users is free.
        let most = u32::try_from(by_external_id.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        numbered.first_free(base, None, most, |name| {
            if by_external_id.contains_key(name) {
                Held::ForGood
            } else {
                Held::Free
            }
        })
    }

    /// How many names [`Account::free_external_id`] has looked up.
    #[cfg(test)]
    pub fn external_ids_looked_up(&self) -> u64 {
        self.state.lock().numbered.looked_up()
    }

    /// Number of Leaf users.
    pub fn user_count(&self) -> usize {
        self.state.lock().users.len()
    }

    /// Forgets every user, link and upload of this account (in the state file too).
    pub fn reset(&self) {
        let mut state = self.state.lock();
        {
            let mut owners = self.link_owners.write();
            for id in state.links.keys() {
                owners.remove(id.as_str());
            }
        }
        // Nothing kept is nothing to forget ([`crate::store::m2m::Partner::reset`]).
        let held = !(state.users.is_empty() && state.links.is_empty());
        *state = AccountState::default();
        if held {
            self.sink.record(|changes| {
                changes.clear_tenant(crate::persist::Table::LeafUsers, &self.username);
                changes.clear_tenant(crate::persist::Table::LeafMagicLinks, &self.username);
            });
        }
    }

    /// Records in the shared index that this account owns link `id`.
    fn index_link(&self, id: &str) {
        self.link_owners
            .write()
            .insert(id.into(), self.username.clone());
    }

    fn link_url(&self, id: &str) -> String {
        format!("{}/{id}", self.link_base)
    }

    fn view(&self, id: &str, link: &Link) -> wire::MagicLink {
        let (allowed_providers, provider) = match &link.kind {
            LinkKind::Provider(allowed) => (Some(allowed.clone()), None),
            LinkKind::Authentication(provider) => (None, Some(*provider)),
            LinkKind::FileUpload => (None, None),
        };
        wire::MagicLink {
            id: id.to_owned(),
            link: self.link_url(id),
            created_at: timefmt::millis(link.created_at),
            expires_at: timefmt::millis(link.expires_at),
            last_accessed_at: link.last_accessed_at.map(timefmt::millis),
            leaf_user_id: link.user.to_string(),
            max_usage: self.max_usage,
            usage_count: link.usage_count,
            widget: link.kind.widget(),
            settings: link.settings.clone(),
            allowed_providers,
            provider,
        }
    }
}

fn insert_user(state: &mut AccountState, id: Uuid, fields: UserFields) -> &User {
    let seq = state.next_seq();
    state.put_user(
        id,
        User {
            seq,
            fields,
            credentials: HashMap::new(),
        },
    )
}

impl User {
    fn view(&self, id: Uuid) -> wire::LeafUser {
        let credentials = |provider| self.credentials.get(&provider).cloned();
        wire::LeafUser {
            id: id.to_string(),
            name: self.fields.name.clone(),
            email: self.fields.email.clone(),
            phone: self.fields.phone.clone(),
            address: self.fields.address.clone(),
            external_id: self.fields.external_id.clone(),
            john_deere_credentials: credentials(Provider::JohnDeere),
            climate_field_view_credentials: credentials(Provider::ClimateFieldView),
            cnhi_credentials: credentials(Provider::Cnhi),
            trimble_credentials: credentials(Provider::Trimble),
            ag_leader_credentials: credentials(Provider::AgLeader),
            raven_slingshot_credentials: credentials(Provider::RavenSlingshot),
            stara_credentials: credentials(Provider::Stara),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LeafAccountConfig, Options};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    fn accounts(configured: Vec<LeafAccountConfig>) -> Accounts {
        let mut settings =
            Settings::resolve(Options::default(), "127.0.0.1:1".parse().expect("addr"));
        settings.leaf_accounts = configured;
        Accounts::new(&settings)
    }

    fn provider_link() -> NewMagicLink {
        NewMagicLink {
            kind: LinkKind::Provider(vec![AllowedProvider::All]),
            expires_in: Duration::seconds(900),
            settings: LinkSettings::default(),
        }
    }

    fn by_external_id(external_id: &str) -> LinkOwner {
        LinkOwner::ByExternalId {
            external_id: external_id.into(),
            name: None,
            email: None,
        }
    }

    #[test]
    fn magic_link_ids_are_unpadded_url_safe_base64_of_a_uuid() {
        for _ in 0..50 {
            let id = new_magic_link_id();
            assert_eq!(id.len(), 48);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            let decoded = URL_SAFE_NO_PAD.decode(&id).expect("base64");
            let text = String::from_utf8(decoded).expect("utf-8");
            assert!(Uuid::parse_str(&text).is_ok(), "{text}");
            assert!(is_magic_link_id(&id), "{id}");
        }
        for other in ["garbage", "", &"A".repeat(48)] {
            assert!(!is_magic_link_id(other), "{other}");
        }
    }

    #[test]
    fn open_mode_accepts_any_non_empty_credentials() {
        let accounts = accounts(Vec::new());
        assert!(accounts.check_password("anyone", "x"));
        assert!(!accounts.check_password("", "x"));
        assert!(!accounts.check_password("anyone", ""));
        assert_eq!(
            accounts.account("anyone").expect("account").max_usage,
            wire::DEFAULT_MAX_USAGE
        );
    }

    #[test]
    fn config_mode_knows_only_its_accounts_and_their_max_usage() {
        let accounts = accounts(vec![LeafAccountConfig {
            username: "qa".into(),
            password: "pw".into(),
            max_usage: Some(5),
        }]);
        assert!(accounts.check_password("qa", "pw"));
        assert!(!accounts.check_password("qa", "wrong"));
        assert!(!accounts.check_password("other", "pw"));
        assert!(accounts.account("other").is_none());
        assert_eq!(accounts.account("qa").expect("account").max_usage, 5);
    }

    /// What a seed of the same `rngSeed` again is given: the first variant of an
    /// `externalId` no user has, as a search from the start would find it, even after an
    /// earlier search went past it.
    #[test]
    fn a_free_external_id_is_the_first_variant_no_user_has() {
        let account = accounts(Vec::new()).account("a").expect("account");
        let take = || {
            let external_id = account.free_external_id("farm").expect("free");
            let fields = UserFields {
                name: "n".into(),
                email: "e".into(),
                external_id: Some(external_id.clone()),
                ..UserFields::default()
            };
            let user = account.create_user(fields.clone()).expect("created");
            (external_id, user.id, fields)
        };
        let taken: Vec<_> = (0..4).map(|_| take()).collect();
        let ids: Vec<&str> = taken.iter().map(|(id, ..)| id.as_str()).collect();
        assert_eq!(ids, ["farm", "farm-2", "farm-3", "farm-4"]);
        let before = account.external_ids_looked_up();
        assert_eq!(take().0, "farm-5");
        assert_eq!(account.external_ids_looked_up() - before, 2);
        // A deleted user's `externalId` is free again; so is the one a user was renamed from.
        account.delete_user(&taken[2].1).expect("deleted");
        assert_eq!(take().0, "farm-3");
        let (_, renamed, fields) = &taken[1];
        let fields = UserFields {
            external_id: Some("elsewhere".into()),
            ..fields.clone()
        };
        account.replace_user(renamed, fields).expect("renamed");
        assert_eq!(take().0, "farm-2");
        assert_eq!(take().0, "farm-6");
    }

    #[test]
    fn the_same_external_id_reuses_the_user() {
        let account = accounts(Vec::new()).account("a").expect("account");
        let first = account
            .create_magic_link(by_external_id("ext"), provider_link(), NOW)
            .expect("created");
        let second = account
            .create_magic_link(by_external_id("ext"), provider_link(), NOW)
            .expect("created");
        assert_eq!(first.leaf_user_id, second.leaf_user_id);
        let user = account.user(&first.leaf_user_id).expect("user");
        assert_eq!((user.name.as_str(), user.email.as_str()), ("ext", "ext"));
    }

    #[test]
    fn an_external_id_follows_its_user_through_replace_delete_and_restore() {
        let account = accounts(Vec::new()).account("a").expect("account");
        let fields = |external_id: &str| UserFields {
            name: "n".into(),
            email: "e".into(),
            external_id: Some(external_id.into()),
            ..UserFields::default()
        };
        let owner = |external_id: &str| {
            account
                .create_magic_link(by_external_id(external_id), provider_link(), NOW)
                .expect("created")
                .leaf_user_id
        };
        let listed = |external_id: &str| {
            let filter = UserFilter {
                external_id: Some(external_id.into()),
                ..UserFilter::default()
            };
            let (users, total) = account.list_users(&filter, 0, 10);
            assert_eq!(total, users.len() as u64);
            users.into_iter().map(|user| user.id).collect::<Vec<_>>()
        };
        let first = account.create_user(fields("x")).expect("created").id;
        assert_eq!(owner("x"), first);
        assert_eq!(listed("x"), [first.as_str()]);
        assert_eq!(
            account.create_user(fields("x")).map(|user| user.id),
            Err(LeafError::ExternalIdTaken)
        );

        // A replace moves the user to its new externalId and frees the old one.
        account.replace_user(&first, fields("y")).expect("replaced");
        assert_eq!(owner("y"), first);
        let second = owner("x");
        assert_ne!(second, first);
        assert_eq!(listed("x"), [second.as_str()]);
        assert_eq!(listed("y"), [first.as_str()]);
        assert_eq!(
            account
                .replace_user(&second, fields("y"))
                .map(|user| user.id),
            Err(LeafError::ExternalIdTaken)
        );
        // Replacing a user's fields with its own externalId keeps it.
        account
            .replace_user(&second, fields("x"))
            .expect("replaced");
        assert_eq!(owner("x"), second);
        let other_name = UserFilter {
            name: Some("someone else".into()),
            external_id: Some("x".into()),
            ..UserFilter::default()
        };
        assert_eq!(account.list_users(&other_name, 0, 10).1, 0);

        // A deleted user's externalId is free again.
        account.delete_user(&first).expect("deleted");
        assert!(listed("y").is_empty());
        let third = account.create_user(fields("y")).expect("created").id;
        assert_eq!(owner("y"), third);

        // Users read back from the state file are found by externalId too.
        let row = persisted::UserRow {
            name: "n".into(),
            email: "e".into(),
            phone: None,
            address: None,
            external_id: Some("z".into()),
            credentials: BTreeMap::new(),
        };
        let restored = Uuid::from_u128(7);
        account
            .restore(vec![(restored.to_string(), 1, row)], Vec::new())
            .expect("restored");
        assert_eq!(owner("z"), restored.to_string());
        assert!(listed("x").is_empty(), "the restore replaced every user");
        assert_ne!(owner("x"), second);
    }

    #[test]
    fn accesses_count_until_the_link_is_used_up_or_expired() {
        let accounts = accounts(Vec::new());
        let account = accounts.account("a").expect("account");
        let link = account
            .create_magic_link(by_external_id("e"), provider_link(), NOW)
            .expect("created");
        for count in 1..=3 {
            let view = accounts
                .access_magic_link("a", &link.id, NOW)
                .expect("access");
            assert_eq!(view.usage_count, count);
            assert_eq!(
                view.last_accessed_at.as_deref(),
                Some("2030-01-01T00:00:00.000Z")
            );
        }
        assert_eq!(
            accounts.access_magic_link("a", &link.id, NOW),
            Err(LeafError::LinkUsedUp)
        );
        let other = account
            .create_magic_link(by_external_id("e"), provider_link(), NOW)
            .expect("created");
        assert_eq!(
            account.access_magic_link(&other.id, NOW + Duration::seconds(900)),
            Err(LeafError::LinkExpired)
        );
    }

    #[test]
    fn connecting_a_provider_fills_its_credentials() {
        let accounts = accounts(Vec::new());
        let account = accounts.account("a").expect("account");
        let user = account
            .create_user(UserFields {
                name: "n".into(),
                email: "e".into(),
                ..UserFields::default()
            })
            .expect("created");
        assert!(user.stara_credentials.is_none());
        let connected = accounts
            .connect_provider("a", &user.id, Provider::Stara, NOW)
            .expect("connected");
        assert!(connected.stara_credentials.is_some());
        assert!(connected.john_deere_credentials.is_none());
        assert_eq!(
            accounts.connect_provider("b", &user.id, Provider::Stara, NOW),
            Err(LeafError::UserNotFound)
        );
    }

    #[test]
    fn a_links_owner_is_found_by_index_and_forgotten_with_the_link() {
        let accounts = accounts(Vec::new());
        let (a, b) = (
            accounts.account("a").expect("account"),
            accounts.account("b").expect("account"),
        );
        let first = a
            .create_magic_link(by_external_id("e"), provider_link(), NOW)
            .expect("created");
        let second = b
            .create_magic_link(by_external_id("e"), provider_link(), NOW)
            .expect("created");
        let owner = |id: &str| {
            accounts
                .owner_of_link(id)
                .map(|account| account.username.clone())
        };
        assert_eq!(owner(&first.id).as_deref(), Some("a"));
        assert_eq!(owner(&second.id).as_deref(), Some("b"));
        assert_eq!(owner("no-such-link"), None);
        a.delete_magic_link(Widget::Provider, &first.id)
            .expect("deleted");
        assert_eq!(owner(&first.id), None);
        b.reset();
        assert_eq!(owner(&second.id), None);
        assert!(accounts.link_owners.read().is_empty());
    }

    fn fields(name: &str, address_bytes: usize) -> UserFields {
        UserFields {
            name: name.into(),
            email: format!("{name}@example.com"),
            address: Some("a".repeat(address_bytes)),
            ..UserFields::default()
        }
    }

    /// Each write adds to the account's count what the matching delete takes away: the
    /// count of an account whose users and links are all gone again is where it started.
    #[test]
    fn the_count_returns_to_zero_when_everything_added_is_deleted() {
        let account = accounts(Vec::new()).account("a").expect("account");
        let user = account.create_user(fields("ana", 1_000)).expect("user");
        let one_user = account.stored();
        assert!(one_user > 1_000, "{one_user}");
        account
            .replace_user(&user.id, fields("ana", 5_000))
            .expect("replace");
        assert_eq!(account.stored(), one_user + 4_000);
        account
            .connect_provider(&user.id, Provider::JohnDeere, NOW)
            .expect("connect");
        let mut link = provider_link();
        link.settings.company_name = Some("n".repeat(700));
        let made = account
            .create_magic_link(by_external_id("farmer-1"), link, NOW)
            .expect("link and its user");
        let upload = Upload {
            file_name: "field.zip".into(),
            size: 10,
            uploaded_at: NOW,
        };
        assert_eq!(account.record_upload(&made.id, upload, 20), Ok(true));
        assert!(account.stored() > one_user + 4_000 + 700);
        account
            .delete_magic_link(Widget::Provider, &made.id)
            .expect("delete link");
        account
            .disconnect_provider(&user.id, Provider::JohnDeere)
            .expect("disconnect");
        account
            .delete_user(&made.leaf_user_id)
            .expect("delete its user");
        account.delete_user(&user.id).expect("delete user");
        // The upload stays recorded (and counted) until a reset.
        assert_eq!(account.stored(), UPLOAD_WEIGHT + "field.zip".len() as u64);
        account.reset();
        assert_eq!(account.stored(), 0);
    }

    /// Users, magic links, replacements and uploads that would pass the budget are refused
    /// before they change anything.
    #[test]
    fn writes_past_the_budget_are_refused_and_change_nothing() {
        let mut settings = Settings::resolve(
            Options {
                max_tenant_mib: Some(1),
                ..Options::default()
            },
            "127.0.0.1:1".parse().expect("addr"),
        );
        settings.leaf_accounts = Vec::new();
        let account = Accounts::new(&settings).account("a").expect("account");
        let mut made = 0;
        let refused = loop {
            match account.create_user(fields(&format!("u{made}"), 200_000)) {
                Ok(_) => made += 1,
                Err(error) => break error,
            }
            assert!(made < 10);
        };
        assert_eq!(
            made, 5,
            "five users of 200 kB fit in 1 MiB, the sixth does not"
        );
        let LeafError::StorageFull(full) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(full.tenant, Tenant::LeafAccount);
        let stored = account.stored();
        assert_eq!(account.list_users(&UserFilter::default(), 0, 100).1, 5);
        let user = account.list_users(&UserFilter::default(), 0, 1).0[0]
            .id
            .clone();
        assert!(matches!(
            account.replace_user(&user, fields("u0", 400_000)),
            Err(LeafError::StorageFull(_))
        ));
        assert_eq!(
            account.user(&user).expect("user").address.map(|a| a.len()),
            Some(200_000)
        );
        // At its budget, a replace that adds nothing still goes through.
        account
            .replace_user(&user, fields("u0", 199_000))
            .expect("a smaller replace");
        assert!(account.stored() < stored);
        let stored = account.stored();
        let mut link = provider_link();
        link.settings.header_image = Some("h".repeat(100_000));
        assert!(matches!(
            account.create_magic_link(by_external_id("new"), link, NOW),
            Err(LeafError::StorageFull(_))
        ));
        assert_eq!(account.list_magic_links(Widget::Provider, None, None).1, 0);
        assert!(account.find_magic_link("nothing").is_err());
        assert_eq!(account.stored(), stored, "nothing refused was counted");
        // A small link still fits; its uploads are counted too.
        let small = account
            .create_magic_link(LinkOwner::Existing(user.clone()), provider_link(), NOW)
            .expect("a small link fits");
        let big_name = Upload {
            file_name: "f".repeat(1_000_000),
            size: 1,
            uploaded_at: NOW,
        };
        assert!(matches!(
            account.record_upload(&small.id, big_name, 20),
            Err(LeafError::StorageFull(_))
        ));
        assert!(account.uploads(&small.id).is_empty());
        // Filled to within a user's weight, a provider's credentials are refused too,
        // and the account stays within its budget; one connected again adds nothing.
        for (n, size) in [100_000, 10_000, 1_000, 100, 1].into_iter().enumerate() {
            let mut made = 0;
            while account
                .create_user(fields(&format!("f{n}-{made}"), size))
                .is_ok()
            {
                made += 1;
            }
        }
        let (connected, refused): (Vec<_>, Vec<_>) = Provider::ALL
            .into_iter()
            .map(|provider| (provider, account.connect_provider(&user, provider, NOW)))
            .partition(|(_, connected)| connected.is_ok());
        assert!(
            refused.len() >= 6,
            "{} of 7 connects refused",
            refused.len()
        );
        assert!(
            refused
                .iter()
                .all(|(_, refused)| matches!(refused, Err(LeafError::StorageFull(_))))
        );
        assert!(account.stored() <= 1024 * 1024, "{}", account.stored());
        if let Some((provider, _)) = connected.first() {
            account
                .connect_provider(&user, *provider, NOW)
                .expect("connected again");
        }
        account.reset();
        assert!(account.create_user(fields("again", 200_000)).is_ok());
    }
}
