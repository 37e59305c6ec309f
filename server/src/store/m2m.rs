//! M2M partners and everything they own: links, users (one per `referenceId`), data requests,
//! webhook settings and rate-limit windows.
//!
//! [`Partners`] resolves an API key to a [`Partner`]; each partner's state sits behind its
//! own mutex and is changed only through the intention-revealing methods below, which also
//! enforce the lifecycle rules of `m2m.md` (one active link per user, revoke rules, data
//! request states). Views are built here, in the wire types of `linkbox-contracts`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use linkbox_contracts::m2m::{
    self as wire, CIP_FIELDS, DataRequestStatus, Language, LinkStatus, Visibility,
};
use linkbox_contracts::timefmt;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::chunked::ChunkedVec;
use super::ids;
use super::index::{PositionIndex, ServerKeys};
use super::numbered::{Held, Numbered};
use super::quota::{self, Budget, Ceiling, StorageFull, Tenant};
use super::stamp::{MaybeStamp, Stamp};
use crate::config::{PartnerConfig, Settings};
use crate::persist::Sink;
use crate::ratelimit::{Limit, Window};
use compact::Compact;

/// What a path segment keeps as it is (RFC 3986's unreserved characters); every other
/// character is percent-encoded.
pub const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod budget_tests;
mod compact;
mod operations;
pub mod persisted;
mod snapshot;
#[cfg(test)]
mod tests_support;
pub mod user_input;

pub use operations::{NewOperation, OperationError};
pub use snapshot::{Load, LoadLinks, Rebuilt, SnapshotChanged, SnapshotPieces};

/// Why a key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is malformed, unknown, revoked or a live key")]
    Invalid,
    #[error("the partner is suspended")]
    Suspended,
    /// Open mode: the key's short slug already belongs to another key's partner.
    #[error("the key's partner id is already taken by another key")]
    SlugTaken,
    /// Open mode: `--max-tenants` partners exist already.
    #[error("the sandbox holds its maximum number of partners")]
    TenantLimit,
    /// Open mode: the sandbox has no room for one more partner (`--max-stored-mib`).
    #[error(transparent)]
    StorageFull(StorageFull),
}

/// What a key names ([`Partners::lookup`]).
#[derive(Clone)]
pub enum Lookup {
    /// A partner already known (suspended or not).
    Known(Arc<Partner>),
    /// No partner yet: open mode creates this slug's partner on its first write.
    New(Arc<str>),
    /// A key linkbox refuses.
    Refused(KeyError),
}

impl Lookup {
    /// The slug of the partner the key names, known or to be created.
    pub fn slug(&self) -> Option<Arc<str>> {
        match self {
            Lookup::Known(partner) => Some(partner.slug.clone()),
            Lookup::New(slug) => Some(slug.clone()),
            Lookup::Refused(_) => None,
        }
    }
}

/// A lifecycle rule a request broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("link not found")]
    LinkNotFound,
    #[error("the user already has an active link")]
    ActiveLinkExists,
    #[error("the link has expired")]
    Expired,
    #[error("the link is revoked")]
    Revoked,
    #[error("only created or opened links can be revoked")]
    NotRevocable,
    #[error("data request not found")]
    DataRequestNotFound,
    #[error("the data request is already fulfilled")]
    AlreadyFulfilled,
    #[error("the referenceId does not match the data request's")]
    ReferenceIdMismatch,
    /// The data request's link was revoked: its pending requests ended with it.
    #[error("the data request's link has been revoked")]
    DataRequestRevoked,
    /// A fulfil whose `userData` carries none of the requested fields (named here).
    #[error("the userData carries none of the requested fields")]
    NoRequestedFields(Vec<String>),
    /// The write would take the partner past `--max-tenant-mib`.
    #[error(transparent)]
    StorageFull(#[from] StorageFull),
}

/// Why a snapshot was not restored; the partner is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot does not hold together: the message says where.
    #[error("{0}")]
    Invalid(String),
    /// Restored, the partner would hold more than `--max-tenant-mib`.
    #[error(transparent)]
    StorageFull(#[from] StorageFull),
}

/// The partner table: API key → partner, and slug → partner (no scans).
///
/// A tenant is identified by its full key. In open mode the slug shown in ids is a short
/// hash of the key (`p` + 8 hex digits), so two keys may share one; the second key of such
/// a pair is refused ([`KeyError::SlugTaken`]), never merged into the first's partner.
pub struct Partners {
    tables: RwLock<Tables>,
    /// Config mode: only the keys loaded at startup exist.
    closed: bool,
    /// Open mode: at most this many partners (`--max-tenants`).
    max_tenants: Option<usize>,
    /// What each partner may store (`--max-tenant-mib`).
    budget: Budget,
    widget_base: Arc<str>,
    sink: Sink,
    /// Open mode: the rate-limit windows of keys that have only read so far, and so have no
    /// partner yet ([`Partners::stranger`]); at most [`STRANGER_WINDOWS`] of them.
    strangers: Mutex<HashMap<Box<str>, Windows>>,
}

/// How many times a partner's webhook URL may have changed in this process (set, restored,
/// forgotten, or read back from a shared database): the webhook engine then moves the
/// attempts waiting for a place to the receivers their URLs name now.
static WEBHOOK_URL_CHANGES: AtomicU64 = AtomicU64::new(0);

/// The count of [`WEBHOOK_URL_CHANGES`]: when it moved, some partner's URL may have.
pub fn webhook_url_changes() -> u64 {
    WEBHOOK_URL_CHANGES.load(Ordering::Relaxed)
}

/// Counts a change of some partner's webhook URL ([`webhook_url_changes`]).
fn webhook_url_changed() {
    WEBHOOK_URL_CHANGES.fetch_add(1, Ordering::Relaxed);
}

/// How many keys without a partner have their read windows kept at once. Past it, windows
/// of earlier minutes are dropped first, then all of them: a key that has never written
/// owns nothing a lost window could protect.
pub const STRANGER_WINDOWS: usize = 10_000;

/// A partner's two rate-limit windows: create-link, and everything else.
#[derive(Debug, Default, Clone, Copy)]
struct Windows {
    create: Window,
    other: Window,
}

#[derive(Default)]
struct Tables {
    by_key: HashMap<Box<str>, Arc<Partner>>,
    by_slug: HashMap<Arc<str>, Arc<Partner>>,
}

impl Tables {
    fn insert(&mut self, key: &str, partner: Arc<Partner>) {
        self.by_slug.insert(partner.slug.clone(), partner.clone());
        self.by_key.insert(key.into(), partner);
    }
}

impl Partners {
    /// In memory.
    pub fn new(settings: &Settings) -> Partners {
        Partners::with_sink(settings, Sink::off())
    }

    /// Writing every change through `sink`.
    pub fn with_sink(settings: &Settings, sink: Sink) -> Partners {
        Partners::with_ceiling(settings, sink, Ceiling::none())
    }

    /// Writing every change through `sink`, each partner's budget under `ceiling`, the
    /// whole sandbox's.
    pub fn with_ceiling(settings: &Settings, sink: Sink, ceiling: Arc<Ceiling>) -> Partners {
        let widget_base: Arc<str> = settings.m2m_widget_base.as_str().into();
        let budget = Budget::new(settings.max_tenant_mib, Tenant::Partner, ceiling);
        let mut tables = Tables::default();
        for config in &settings.partners {
            let partner = Arc::new(Partner::configured(
                config,
                widget_base.clone(),
                sink.clone(),
                budget.clone(),
            ));
            for key in &config.keys {
                tables.insert(key, partner.clone());
            }
        }
        Partners {
            closed: !settings.partners.is_empty(),
            max_tenants: settings.max_tenants,
            budget,
            tables: RwLock::new(tables),
            widget_base,
            sink,
            strangers: Mutex::new(HashMap::new()),
        }
    }

    /// The partner a key belongs to. In open mode every well-formed `m2m_test_` key is its
    /// own partner, created on first use; `m2m_live_` keys are always refused.
    pub fn authenticate(&self, key: &str) -> Result<Arc<Partner>, KeyError> {
        if !wire::is_test_key(key) {
            return Err(KeyError::Invalid);
        }
        if let Some(partner) = self.tables.read().by_key.get(key) {
            return partner.check_active();
        }
        if self.closed {
            return Err(KeyError::Invalid);
        }
        let mut tables = self.tables.write();
        if let Some(partner) = tables.by_key.get(key) {
            return partner.check_active();
        }
        if tables.by_slug.contains_key(open_mode_slug(key).as_str()) {
            return Err(KeyError::SlugTaken);
        }
        if self
            .max_tenants
            .is_some_and(|max| tables.by_slug.len() >= max)
        {
            return Err(KeyError::TenantLimit);
        }
        // A partner weighs something before it holds anything: keys made up by the
        // thousand are bounded by the sandbox's budget, not only by `--max-tenants`.
        self.budget.admits_tenant().map_err(KeyError::StorageFull)?;
        let partner = Partner::open(
            key,
            self.widget_base.clone(),
            self.sink.clone(),
            self.budget.clone(),
        );
        {
            let mut state = partner.state.lock();
            if let Some(windows) = self.strangers.lock().remove(key) {
                state.create_window = windows.create;
                state.other_window = windows.other;
                partner.record_window(true, windows.create);
                partner.record_window(false, windows.other);
            }
            partner.persist_settings(&state);
        }
        let partner = Arc::new(partner);
        tables.insert(key, partner.clone());
        partner.check_active()
    }

    /// An open-mode partner for a key that has none yet, to answer its reads with: empty,
    /// in no table, writing nothing to the state file. Reads never create a tenant; the
    /// first write does ([`Partners::materialize`]).
    pub fn stranger(&self, key: &str) -> Arc<Partner> {
        let mut partner = Partner::open(
            key,
            self.widget_base.clone(),
            Sink::off(),
            self.budget.clone(),
        );
        partner.stranger = true;
        Arc::new(partner)
    }

    /// The partner a write acts on: `partner` itself when it is in the table, else (a
    /// [`stranger`](Partners::stranger)) the partner its key creates now — refused, and
    /// nothing created, when `--max-tenants` is reached or its slug is taken meanwhile.
    pub fn materialize(&self, partner: &Arc<Partner>) -> Result<Arc<Partner>, KeyError> {
        match (&partner.key, partner.stranger) {
            (Some(key), true) => self.authenticate(key),
            _ => partner.check_active(),
        }
    }

    /// Counts one request of `partner` against its window for create-link (`create`) or
    /// every other endpoint ([`Partner::admit`]); a stranger's windows are kept here, by
    /// key, until its first write hands them to the partner it creates.
    ///
    /// A stranger looked up before another request's write made its partner is counted
    /// against that partner: counted here after the hand-over, it went to windows nobody
    /// read again, and a new key's first burst of concurrent creates passed 100 a minute.
    /// The table stays read-locked while a stranger is counted, so no hand-over falls
    /// between the look and the count.
    pub fn admit(
        &self,
        partner: &Partner,
        create: bool,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<(), u64> {
        let (Some(key), true) = (&partner.key, partner.stranger) else {
            return partner.admit(create, limit, now);
        };
        let tables = self.tables.read();
        if let Some(made) = tables.by_key.get(&**key).cloned() {
            drop(tables);
            return made.admit(create, limit, now);
        }
        let mut strangers = self.strangers.lock();
        if strangers.len() >= STRANGER_WINDOWS && !strangers.contains_key(&**key) {
            let minute = now.unix_timestamp().div_euclid(60);
            strangers.retain(|_, windows| {
                windows.create.minute() == minute || windows.other.minute() == minute
            });
            if strangers.len() >= STRANGER_WINDOWS {
                strangers.clear();
            }
        }
        let windows = strangers.entry(key.clone()).or_default();
        let window = if create {
            &mut windows.create
        } else {
            &mut windows.other
        };
        window.admit(limit, now)
    }

    /// The partner whose slug is `slug`.
    pub fn by_slug(&self, slug: &str) -> Option<Arc<Partner>> {
        self.tables.read().by_slug.get(slug).cloned()
    }

    /// What `key` names, without creating anything: a partner already known, the open-mode
    /// partner it would create, or a refusal.
    pub fn lookup(&self, key: &str) -> Lookup {
        if !wire::is_test_key(key) {
            return Lookup::Refused(KeyError::Invalid);
        }
        let tables = self.tables.read();
        if let Some(partner) = tables.by_key.get(key) {
            return Lookup::Known(partner.clone());
        }
        if self.closed {
            return Lookup::Refused(KeyError::Invalid);
        }
        let slug = open_mode_slug(key);
        if tables.by_slug.contains_key(slug.as_str()) {
            return Lookup::Refused(KeyError::SlugTaken);
        }
        if self
            .max_tenants
            .is_some_and(|max| tables.by_slug.len() >= max)
        {
            return Lookup::Refused(KeyError::TenantLimit);
        }
        Lookup::New(slug.into())
    }

    /// The admin reset: every open-mode partner forgotten whole (webhook URL and secret
    /// too) and dropped from the table, so `--max-tenants` counts from none again and a
    /// restart finds no trace of them; a configured partner (config mode) keeps its
    /// settings and forgets its state ([`Partner::reset`]).
    pub fn reset_all(&self) {
        let mut tables = self.tables.write();
        for partner in tables.by_slug.values() {
            if partner.key.is_some() {
                partner.forget();
            } else {
                partner.reset();
            }
        }
        tables.by_slug.retain(|_, partner| partner.key.is_none());
        tables.by_key.retain(|_, partner| partner.key.is_none());
    }

    /// Drops open-mode partner `slug` from the table, as the admin reset does, when
    /// another replica's reset or a rolled-back first write left the shared database
    /// without it: its key makes it again on its next write. `false` for a configured
    /// partner (it stays, its state read back) or one not in the table.
    pub fn drop_open(&self, slug: &str) -> bool {
        let mut tables = self.tables.write();
        let Some(partner) = tables
            .by_slug
            .get(slug)
            .filter(|partner| partner.key.is_some())
        else {
            return false;
        };
        let key = partner.key.clone();
        partner.forget();
        tables.by_slug.remove(slug);
        if let Some(key) = key {
            tables.by_key.remove(&*key);
        }
        true
    }

    /// Every partner known so far (each once, however many keys it has).
    pub fn all(&self) -> Vec<Arc<Partner>> {
        let mut partners: Vec<Arc<Partner>> =
            self.tables.read().by_slug.values().cloned().collect();
        partners.sort_by(|a, b| a.slug.cmp(&b.slug));
        partners
    }
}

/// The open-mode slug of a key: `p` + 8 hex digits of its SHA-256.
pub fn open_mode_slug(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("p{}", hex::encode(&digest[..4]))
}

/// One M2M partner: fixed settings plus mutable state.
pub struct Partner {
    pub slug: Arc<str>,
    pub suspended: bool,
    pub default_expires_in_minutes: u32,
    pub theme: Option<String>,
    /// The key an open-mode partner was created by (its slug is derived from it).
    key: Option<Box<str>>,
    /// Not in the partner table: a key that has only read so far ([`Partners::stranger`]).
    stranger: bool,
    /// Bumped by every change of the state (under its lock), so a snapshot streamed piece
    /// by piece notices a change between pieces.
    changes: AtomicU64,
    /// The size of the largest snapshot `GET` wrote of this partner, which `PUT` accepts
    /// back whatever its size.
    largest_snapshot: AtomicUsize,
    /// The size of the snapshot last measured ([`Partner::snapshot_size_now`]), with the
    /// `changes` it was measured at.
    measured_snapshot: Mutex<(u64, usize)>,
    widget_base: Arc<str>,
    sink: Sink,
    /// What the partner may store (`--max-tenant-mib`), against [`PartnerState::stored`].
    budget: Budget,
    /// What the config file says of its webhooks; `None` for an open-mode partner.
    configured: Option<persisted::ConfiguredHooks>,
    state: Mutex<PartnerState>,
    /// The permutations `userId`s and `operationId`s are minted through, made on first use.
    minters: std::sync::OnceLock<[ids::Minter; 2]>,
    /// What its requests' bodies hold now ([`crate::bodies`]).
    pub body_share: crate::bodies::Share,
}

#[derive(Default)]
struct PartnerState {
    /// In creation order; a link's index never changes.
    links: ChunkedVec<Link>,
    /// Each link's position, by the suffix of its id.
    link_index: PositionIndex<ServerKeys>,
    users: ChunkedVec<User>,
    /// Each user's position, by its `referenceId` (kept in the user, not again here).
    user_index: PositionIndex,
    data_requests: HashMap<u64, DataRequest>,
    webhook_url: Option<String>,
    webhook_secret: String,
    create_window: Window,
    other_window: Window,
    /// The latest operation of each link (by link index), made through the control API.
    operations: HashMap<u32, operations::Operation>,
    /// Counts behind the next `userId` and `operationId` ([`ids::Minter`]).
    minted_users: ids::Minted,
    minted_operations: ids::Minted,
    /// What the links and users weigh together ([`Link::weight`], [`User::weight`]): kept
    /// as they change, checked against [`Partner::budget`] by the writes that add to it.
    stored: u64,
    /// Where a seed's search for a free `referenceId` variant picks up
    /// ([`Partner::free_reference`]).
    numbered: Numbered,
}

impl PartnerState {
    /// What the partner is counted as holding: its links and users ([`PartnerState::stored`])
    /// and its webhook URL.
    fn counted(&self) -> u64 {
        self.stored + quota::text(self.webhook_url.as_deref())
    }

    /// The position of the user with `reference_id`.
    fn user_of(&self, reference_id: &str) -> Option<u32> {
        let users = &self.users;
        self.user_index
            .get(reference_id, |i| &*users[i as usize].reference_id)
    }

    /// The position of the link whose id ends in `suffix`.
    fn link_at(&self, suffix: u64) -> Option<u32> {
        let links = &self.links;
        self.link_index.get(&suffix, |i| links[i as usize].suffix)
    }

    /// Indexes the user at `index` by `reference_id`, its own (it is pushed right before
    /// or right after); a user already indexed under it is kept and returned.
    fn index_user(&mut self, reference_id: &str, index: u32) -> Option<u32> {
        let users = &self.users;
        self.user_index
            .insert(reference_id, index, |i| &*users[i as usize].reference_id)
    }

    /// Indexes the link at `index` by `suffix`, its own, as [`PartnerState::index_user`].
    fn index_link(&mut self, suffix: u64, index: u32) -> Option<u32> {
        let links = &self.links;
        self.link_index
            .insert(&suffix, index, |i| links[i as usize].suffix)
    }

    /// Room in both indexes for this many more users and links.
    fn reserve_indexes(&mut self, users: usize, links: usize) {
        self.user_index.reserve(users);
        self.link_index.reserve(links);
    }
}

struct Link {
    suffix: u64,
    user: u32,
    status: LinkStatus,
    token: Uuid,
    flow: Arc<str>,
    language: Option<Language>,
    metadata: Option<Compact>,
    created_at: Stamp,
    expires_at: Stamp,
    opened_at: MaybeStamp,
    revoked_at: MaybeStamp,
    /// The texts most links lack ([`Extras`]).
    extras: Option<Box<Extras>>,
}

/// A link's texts that most links never get: a theme and a callback URL given at create, a
/// revoke reason, the operation completed through it. Behind one pointer, a link without
/// any costs 8 bytes for the four instead of 64 (a realistic link's memory is the issue's
/// budget of 1 KiB at a million links).
#[derive(Debug, Default, PartialEq)]
struct Extras {
    theme: Option<Box<str>>,
    callback_url: Option<Box<str>>,
    revoke_reason: Option<Box<str>>,
    operation_id: Option<Box<str>>,
}

impl Extras {
    /// These texts, or nothing to keep when none is set.
    fn boxed(self) -> Option<Box<Extras>> {
        (self != Extras::default()).then(|| Box::new(self))
    }
}

/// What a link's record, its id in the index and its fixed fields are counted as: about
/// what a bare link costs in memory ([`crate::store::quota`]).
const LINK_WEIGHT: u64 = 192;
/// What a user's record and its index entry are counted as.
const USER_WEIGHT: u64 = 96;

impl Link {
    /// What the link counts against its partner's budget: its base and every text a client
    /// gave it.
    fn weight(&self) -> u64 {
        let texts = self.extras.as_deref().map_or(0, |extras| {
            quota::text(extras.theme.as_deref())
                + quota::text(extras.callback_url.as_deref())
                + quota::text(extras.revoke_reason.as_deref())
                + quota::text(extras.operation_id.as_deref())
        });
        LINK_WEIGHT + compact_len(self.metadata.as_ref()) + texts
    }

    fn extra(&self, field: fn(&Extras) -> &Option<Box<str>>) -> Option<&str> {
        self.extras
            .as_deref()
            .and_then(|extras| field(extras).as_deref())
    }

    fn theme(&self) -> Option<&str> {
        self.extra(|extras| &extras.theme)
    }

    fn callback_url(&self) -> Option<&str> {
        self.extra(|extras| &extras.callback_url)
    }

    fn revoke_reason(&self) -> Option<&str> {
        self.extra(|extras| &extras.revoke_reason)
    }

    fn operation_id(&self) -> Option<&str> {
        self.extra(|extras| &extras.operation_id)
    }

    /// Sets one of the texts, keeping nothing when all four end up unset.
    fn set_extra(
        &mut self,
        field: fn(&mut Extras) -> &mut Option<Box<str>>,
        value: Option<Box<str>>,
    ) {
        if value.is_none() && self.extras.is_none() {
            return;
        }
        let extras = self.extras.get_or_insert_with(Box::default);
        *field(extras) = value;
        if **extras == Extras::default() {
            self.extras = None;
        }
    }
}

impl Partner {
    /// Records a change of the state (the caller holds its lock) for the state file, and
    /// counts it for snapshots being streamed.
    fn record(&self, describe: impl FnOnce(&mut crate::persist::Changes)) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.sink.record(describe);
    }

    /// The permutation this partner's `kind` ids (`user`, `op`) are minted through.
    fn minter(&self, kind: IdKind) -> &ids::Minter {
        let minters = self.minters.get_or_init(|| {
            [IdKind::User, IdKind::Operation]
                .map(|kind| ids::Minter::new(&format!("{}:{}", kind.prefix(), self.slug)))
        });
        &minters[kind as usize]
    }
}

/// The ids minted by counting through an [`ids::Minter`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdKind {
    User = 0,
    Operation = 1,
}

impl IdKind {
    /// The id's prefix, which also keys its permutation.
    fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Operation => "op",
        }
    }
}

impl Link {
    fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.status != LinkStatus::Revoked && self.expires_at.at() <= now
    }

    fn is_active(&self, now: OffsetDateTime) -> bool {
        self.status != LinkStatus::Revoked && self.expires_at.at() > now
    }
}

/// A user's link positions ([`User::links`]).
type UserLinks = smallvec::SmallVec<[u32; 4]>;

// No larger than the `Vec` it replaced (smallvec's `union` layout): every user holds one.
const _: () = assert!(std::mem::size_of::<UserLinks>() == std::mem::size_of::<Vec<u32>>());

/// The bytes of a kept JSON text, counted.
fn compact_len(compact: Option<&Compact>) -> u64 {
    compact.map_or(0, |compact| compact.raw().get().len() as u64)
}

impl User {
    /// What the user counts against its partner's budget.
    fn weight(&self) -> u64 {
        USER_WEIGHT + self.reference_id.len() as u64 + compact_len(self.data.as_ref())
    }
}

struct User {
    suffix: [u8; 6],
    reference_id: Box<str>,
    data: Option<Compact>,
    /// This user's links, oldest first. Only the last can be active: a new link is refused
    /// while another is. Up to four are kept in place, in the 24 bytes a `Vec` takes: most
    /// users have one link, and a `Vec` of it was an allocation of its own per user.
    links: UserLinks,
}

struct DataRequest {
    suffix: u64,
    link: u32,
    required_fields: Vec<String>,
    fulfilled_at: Option<OffsetDateTime>,
}

/// A validated `POST /partner/links` body.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    pub reference_id: String,
    /// `None`: the partner's default.
    pub expires_in: Option<Duration>,
    pub user_data: Option<Value>,
    pub metadata: Option<Value>,
    pub flow: Arc<str>,
    pub theme: Option<String>,
    pub language: Option<Language>,
    pub callback_url: Option<String>,
}

/// The list filters of `GET /partner/links`, already validated.
#[derive(Debug, Clone, Default)]
pub struct LinkFilter {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub visibility: Option<Visibility>,
    pub status: Option<LinkStatus>,
    pub reference_id: Option<String>,
}

/// A view of a link taken under its partner's lock, the JSON texts clients gave it (the
/// user's data, the link's metadata) lent rather than parsed ([`Compact`]): a text of
/// megabytes costs the lock a reference count, and is parsed once the lock is let go,
/// off the serving threads when it is large ([`Lent::weight`]).
#[derive(Debug, Clone)]
pub struct Lent<T> {
    view: T,
    user_data: Option<Compact>,
    metadata: Option<Compact>,
}

impl<T> Lent<T> {
    /// The view without the lent texts (`null` in their place), for a reader that shows
    /// neither.
    pub fn view(&self) -> &T {
        &self.view
    }

    /// Bytes of JSON text the view's parse and serialization would go through.
    pub fn weight(&self) -> usize {
        [&self.user_data, &self.metadata]
            .into_iter()
            .flatten()
            .map(Compact::text_len)
            .sum()
    }
}

impl Lent<wire::LinkItem> {
    /// The item, its user's data parsed.
    pub fn into_view(self) -> wire::LinkItem {
        wire::LinkItem {
            user_data: self.user_data.as_ref().map(Compact::value),
            ..self.view
        }
    }
}

impl Lent<wire::LinkDetail> {
    /// The detail, its user's data and metadata parsed.
    pub fn into_view(self) -> wire::LinkDetail {
        wire::LinkDetail {
            item: wire::LinkItem {
                user_data: self.user_data.as_ref().map(Compact::value),
                ..self.view.item
            },
            metadata: self.metadata.as_ref().map(Compact::value),
            ..self.view
        }
    }
}

/// The outcome of opening a link as the end user.
#[derive(Debug, Clone)]
pub struct Opened {
    pub link: wire::LinkDetail,
    /// True only the first time: `openedAt` is set once and `link.opened` sent once.
    pub first_open: bool,
    /// The data request created by this open, when the user's CIP data is incomplete.
    pub data_request: Option<DataRequestView>,
}

/// A data request as the webhook and the control API show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRequestView {
    pub data_request_id: String,
    pub reference_id: String,
    pub link_id: String,
    pub required_fields: Vec<String>,
    pub status: DataRequestStatus,
    pub expires_at: OffsetDateTime,
}

impl Partner {
    fn configured(
        config: &PartnerConfig,
        widget_base: Arc<str>,
        sink: Sink,
        budget: Budget,
    ) -> Partner {
        let state = PartnerState {
            webhook_url: config.webhook_url.clone(),
            webhook_secret: config
                .webhook_secret
                .clone()
                .unwrap_or_else(new_webhook_secret),
            ..PartnerState::default()
        };
        Partner {
            slug: config.slug.as_str().into(),
            suspended: config.suspended,
            default_expires_in_minutes: config
                .default_expires_in_minutes
                .unwrap_or(wire::DEFAULT_EXPIRES_IN_MINUTES),
            theme: config.theme.clone(),
            key: None,
            stranger: false,
            changes: AtomicU64::new(0),
            largest_snapshot: AtomicUsize::new(0),
            measured_snapshot: Mutex::new((u64::MAX, 0)),
            widget_base,
            sink,
            budget,
            configured: Some(persisted::ConfiguredHooks {
                webhook_url: config.webhook_url.clone(),
                webhook_secret: config.webhook_secret.clone(),
            }),
            state: Mutex::new(state),
            minters: std::sync::OnceLock::new(),
            body_share: crate::bodies::Share::default(),
        }
    }

    fn open(key: &str, widget_base: Arc<str>, sink: Sink, budget: Budget) -> Partner {
        Partner {
            slug: open_mode_slug(key).into(),
            suspended: false,
            default_expires_in_minutes: wire::DEFAULT_EXPIRES_IN_MINUTES,
            theme: None,
            key: Some(key.into()),
            stranger: false,
            changes: AtomicU64::new(0),
            largest_snapshot: AtomicUsize::new(0),
            measured_snapshot: Mutex::new((u64::MAX, 0)),
            widget_base,
            sink,
            budget,
            configured: None,
            state: Mutex::new(PartnerState {
                webhook_secret: new_webhook_secret(),
                ..PartnerState::default()
            }),
            minters: std::sync::OnceLock::new(),
            body_share: crate::bodies::Share::default(),
        }
    }

    /// The webhook URL the config file gives this partner, if any.
    pub fn configured_webhook_url(&self) -> Option<&str> {
        self.configured.as_ref()?.webhook_url.as_deref()
    }

    /// Whether this is an open-mode partner (made by its key), not a configured one.
    pub fn is_open(&self) -> bool {
        self.key.is_some()
    }

    /// The partner, unless it is suspended.
    pub fn check_active(self: &Arc<Self>) -> Result<Arc<Partner>, KeyError> {
        if self.suspended {
            Err(KeyError::Suspended)
        } else {
            Ok(self.clone())
        }
    }

    /// Counts one request against the partner's per-minute window for create-link (`create`)
    /// or every other endpoint; `Err` carries the seconds until the window reopens.
    pub fn admit(&self, create: bool, limit: Limit, now: OffsetDateTime) -> Result<(), u64> {
        let mut state = self.state.lock();
        let window = if create {
            &mut state.create_window
        } else {
            &mut state.other_window
        };
        let before = (window.minute(), window.count());
        let admitted = window.admit(limit, now);
        if (window.minute(), window.count()) != before {
            self.record_window(create, *window);
        }
        admitted
    }

    /// Replicas count one window together: it is a row of the shared database (a file does
    /// not keep windows, as a single process's memory does not outlive it).
    fn record_window(&self, create: bool, window: Window) {
        if self.sink.database().is_none() {
            return;
        }
        self.sink.record(|changes| {
            changes.put(
                crate::persist::Table::RateWindows,
                &self.slug,
                if create { "create" } else { "other" },
                u64::try_from(window.minute()).unwrap_or_default(),
                &window.count(),
            );
        });
    }

    /// Sets the rate-limit windows to what a shared database counted: `(create, minute,
    /// count)` for each row.
    pub fn set_windows(&self, windows: impl IntoIterator<Item = (bool, i64, u32)>) {
        let mut state = self.state.lock();
        for (create, minute, count) in windows {
            let window = Window::at(minute, count);
            if create {
                state.create_window = window;
            } else {
                state.other_window = window;
            }
        }
    }

    /// Creates a link, and the user on the first link for its `referenceId`; a returning
    /// user's `userData` is merged with the new one.
    pub fn create_link(
        &self,
        mut new: NewLink,
        now: OffsetDateTime,
    ) -> Result<wire::CreatedLink, LinkError> {
        let metadata = new.metadata.take();
        self.create_link_lent(new, metadata.as_ref(), now)
    }

    /// [`Partner::create_link`] with the link's `metadata` lent instead of given (the store
    /// keeps it as compact JSON text, not as the tree), so a caller that needs the tree
    /// afterwards — the `link.created` event — does not copy it. `new.metadata` must be
    /// `None`.
    pub fn create_link_lent(
        &self,
        new: NewLink,
        metadata: Option<&Value>,
        now: OffsetDateTime,
    ) -> Result<wire::CreatedLink, LinkError> {
        self.create_link_judged(new, metadata, now, now)
    }

    /// A seed's create: the link made at `now`, an instant in the past, and its
    /// `referenceId`'s user found with an active link or not as of `judged_at`, the seed's
    /// own instant. A user whose earlier links are all revoked or expired by then is a
    /// returning user, as a create at that instant would find them (docs/seeding.md); judged
    /// at `now`, an earlier seed's link of the same age would still hold it.
    pub fn create_link_judged(
        &self,
        new: NewLink,
        metadata: Option<&Value>,
        now: OffsetDateTime,
        judged_at: OffsetDateTime,
    ) -> Result<wire::CreatedLink, LinkError> {
        debug_assert!(new.metadata.is_none(), "metadata is lent, not given");
        let expires_in = new
            .expires_in
            .unwrap_or_else(|| Duration::minutes(i64::from(self.default_expires_in_minutes)));
        // The link is made before the partner's lock and answered after it: every request
        // of the partner waits on that lock, and under it a create only finds its user,
        // draws a fresh suffix and stores. (One key shared by a CI fleet's runners makes all
        // of them wait on the same lock.)
        let flow = new.flow.clone();
        let mut link = Link {
            suffix: 0,
            user: 0,
            status: LinkStatus::Created,
            token: ids::uuid_v4(),
            flow: new.flow,
            language: new.language,
            metadata: metadata.map(Compact::new),
            created_at: Stamp::of(now),
            expires_at: Stamp::of(now + expires_in),
            opened_at: MaybeStamp::NONE,
            revoked_at: MaybeStamp::NONE,
            extras: Extras {
                theme: new.theme.map(Into::into),
                callback_url: new.callback_url.map(Into::into),
                ..Extras::default()
            }
            .boxed(),
        };
        let (token, created_at, expires_at) = (link.token, link.created_at, link.expires_at);
        // `userData` as the new user keeps it, or to merge into a returning user's.
        let patch = new.user_data.map(|data| {
            let compact = Compact::new(&data);
            (data, compact)
        });
        let link_weight = link.weight();
        // The most the create adds, its user counted as new: one that could take the
        // partner past its budget is refused before anything changes.
        let most = link_weight
            + USER_WEIGHT
            + new.reference_id.len() as u64
            + compact_len(patch.as_ref().map(|(_, compact)| compact));
        let mut guard = self.state.lock();
        let state = &mut *guard;
        self.budget.admits(state.counted(), most)?;
        // The `referenceId`'s user, or a new one indexed at the next position in the same
        // look-up (the index hashes the key once; the user is pushed right below).
        let next = state.users.len() as u32;
        let returning = state.index_user(new.reference_id.as_str(), next);
        let user_index = match returning {
            Some(index) => {
                let user = &state.users[index as usize];
                if let Some(&last) = user.links.last()
                    && state.links[last as usize].is_active(judged_at)
                {
                    return Err(LinkError::ActiveLinkExists);
                }
                index
            }
            None => {
                let suffix = state.minted_users.next(self.minter(IdKind::User), || {
                    state.users.iter().map(|user| user.suffix)
                });
                state.users.push(User {
                    suffix,
                    reference_id: new.reference_id.as_str().into(),
                    data: None,
                    links: UserLinks::new(),
                });
                next
            }
        };
        // A fresh suffix, indexed at the next position in the look-up that proves it fresh
        // (the link is pushed right below).
        let link_index = state.links.len() as u32;
        let mut suffix = ids::hex48();
        while state.index_link(suffix, link_index).is_some() {
            suffix = ids::hex48();
        }
        let user = &mut state.users[user_index as usize];
        let counted = if returning.is_some() {
            user.weight()
        } else {
            0
        };
        match (patch, &user.data) {
            (Some((_, compact)), None) => user.data = Some(compact),
            (Some((data, _)), Some(_)) => merge_into(&mut user.data, data),
            (None, _) => {}
        }
        state.stored = state.stored.saturating_sub(counted) + user.weight() + link_weight;
        user.links.push(link_index);
        link.suffix = suffix;
        link.user = user_index;
        state.links.push(link);
        self.record(|changes| {
            self.put_user(changes, state, user_index as usize);
            self.put_link(changes, state, link_index as usize);
        });
        drop(guard);
        Ok(wire::CreatedLink {
            link_id: self.link_id(suffix),
            reference_id: new.reference_id,
            status: LinkStatus::Created,
            url: self.url(suffix, &flow),
            token: ids::uuid_text(&token),
            expires_at: timefmt::millis(expires_at.at()),
            created_at: timefmt::millis(created_at.at()),
        })
    }

    /// One page of links, newest first, and the number matching the filter.
    pub fn list_links(
        &self,
        filter: &LinkFilter,
        page: u32,
        limit: u32,
        now: OffsetDateTime,
    ) -> (Vec<Lent<wire::LinkItem>>, u64) {
        let state = self.state.lock();
        let skip = (page.saturating_sub(1) as usize).saturating_mul(limit as usize);
        let take = limit as usize;
        let matches = |link: &Link| {
            filter.from.is_none_or(|from| link.created_at.at() >= from)
                && filter.to.is_none_or(|to| link.created_at.at() <= to)
                && filter.status.is_none_or(|status| link.status == status)
                && filter.visibility.is_none_or(|visibility| match visibility {
                    Visibility::Active => link.is_active(now),
                    Visibility::Expired => link.is_expired(now),
                })
        };
        // The candidates, oldest first: one user's links, or all of them.
        let user_links: Option<&[u32]> = filter.reference_id.as_ref().map(|reference_id| {
            state
                .user_of(reference_id.as_str())
                .map_or(&[][..], |user| state.users[user as usize].links.as_slice())
        });
        let count = user_links.map_or(state.links.len(), <[u32]>::len);
        let candidate = |i: usize| match user_links {
            Some(links) => &state.links[links[i] as usize],
            None => &state.links[i],
        };
        let unfiltered = filter.from.is_none()
            && filter.to.is_none()
            && filter.status.is_none()
            && filter.visibility.is_none();
        if unfiltered {
            // Every candidate matches: walk only the requested page.
            let items = (0..count)
                .rev()
                .skip(skip)
                .take(take)
                .map(|i| self.item(&state, candidate(i)))
                .collect();
            return (items, count as u64);
        }
        let mut total = 0u64;
        let mut items = Vec::with_capacity(take.min(64));
        for link in (0..count).rev().map(candidate).filter(|link| matches(link)) {
            if total as usize >= skip && items.len() < take {
                items.push(self.item(&state, link));
            }
            total += 1;
        }
        (items, total)
    }

    /// A link of this partner, with its detail fields.
    pub fn link(&self, link_id: &str) -> Result<wire::LinkDetail, LinkError> {
        self.link_lent(link_id)
            .map(Lent::<wire::LinkDetail>::into_view)
    }

    /// A link of this partner, with its detail fields, its user data and metadata lent
    /// ([`Lent`]): for a response that may parse them off the serving threads.
    pub fn link_lent(&self, link_id: &str) -> Result<Lent<wire::LinkDetail>, LinkError> {
        let state = self.state.lock();
        let index = self.find_link(&state, link_id)?;
        Ok(self.detail(&state, &state.links[index]))
    }

    /// Revokes a created or opened link that has not expired.
    pub fn revoke_link(
        &self,
        link_id: &str,
        reason: Option<String>,
        now: OffsetDateTime,
    ) -> Result<wire::RevokedLink, LinkError> {
        let mut state = self.state.lock();
        let index = self.find_link(&state, link_id)?;
        let link = &mut state.links[index];
        if link.status == LinkStatus::Revoked {
            return Err(LinkError::NotRevocable);
        }
        if link.is_expired(now) {
            return Err(LinkError::Expired);
        }
        let added = quota::text(reason.as_deref());
        self.budget.admits(state.counted(), added)?;
        state.stored += added;
        let link = &mut state.links[index];
        link.status = LinkStatus::Revoked;
        link.revoked_at = MaybeStamp::of(Some(now));
        link.set_extra(|extras| &mut extras.revoke_reason, reason.map(Into::into));
        let (suffix, user) = (link.suffix, link.user);
        let PartnerState {
            users, numbered, ..
        } = &mut *state;
        numbered.released(&users[user as usize].reference_id);
        self.record(|changes| self.put_link(changes, &state, index));
        Ok(wire::RevokedLink {
            link_id: self.link_id(suffix),
            status: LinkStatus::Revoked,
            revoked_at: timefmt::millis(now),
        })
    }

    /// Opens a link as its end user would: the first open sets `opened`/`openedAt` and, when
    /// the user's CIP data is incomplete, creates a data request for the missing fields.
    pub fn open_link(&self, link_id: &str, now: OffsetDateTime) -> Result<Opened, LinkError> {
        let mut state = self.state.lock();
        let index = self.find_link(&state, link_id)?;
        let link = &state.links[index];
        if link.status == LinkStatus::Revoked {
            return Err(LinkError::Revoked);
        }
        if link.is_expired(now) {
            return Err(LinkError::Expired);
        }
        let first_open = link.opened_at.is_none();
        let mut data_request = None;
        if first_open {
            let data = state.users[link.user as usize]
                .data
                .as_ref()
                .map(Compact::value);
            let missing = missing_cip_fields(data.as_ref());
            let expires_at = link.expires_at.at();
            let link_ref = &mut state.links[index];
            link_ref.status = LinkStatus::Opened;
            link_ref.opened_at = MaybeStamp::of(Some(now));
            if !missing.is_empty() {
                let mut suffix = ids::hex48();
                while state.data_requests.contains_key(&suffix) {
                    suffix = ids::hex48();
                }
                state.data_requests.insert(
                    suffix,
                    DataRequest {
                        suffix,
                        link: index as u32,
                        required_fields: missing,
                        fulfilled_at: None,
                    },
                );
                data_request = self.data_request_view(&state, suffix, now, expires_at);
                self.record(|changes| self.put_data_request(changes, &state, suffix));
            }
            self.record(|changes| self.put_link(changes, &state, index));
        }
        let link = self.detail(&state, &state.links[index]);
        drop(state);
        Ok(Opened {
            link: link.into_view(),
            first_open,
            data_request,
        })
    }

    /// The data requests of this partner, newest first by link.
    pub fn data_requests(&self, now: OffsetDateTime) -> Vec<DataRequestView> {
        let state = self.state.lock();
        let mut suffixes: Vec<(u32, u64)> = state
            .data_requests
            .values()
            .map(|request| (request.link, request.suffix))
            .collect();
        suffixes.sort_unstable_by(|a, b| b.cmp(a));
        suffixes
            .into_iter()
            .filter_map(|(link, suffix)| {
                let expires_at = state.links[link as usize].expires_at.at();
                self.data_request_view(&state, suffix, now, expires_at)
            })
            .collect()
    }

    /// Fulfils a pending data request: checks its state (a revoked link ends its requests,
    /// as an expired one does), its `referenceId`, and that `user_data` carries at least one
    /// of the requested fields; then merges `user_data` into the user's data. Returns the
    /// answer and the dot paths `user_data` carried that were not requested (merged all
    /// the same, and named for `X-Linkbox-Warning`).
    pub fn fulfil_data_request(
        &self,
        data_request_id: &str,
        reference_id: &str,
        user_data: Value,
        now: OffsetDateTime,
    ) -> Result<(wire::FulfilledDataRequest, Vec<String>), LinkError> {
        // The most the merge adds: the patch kept whole.
        let patch = Compact::new(&user_data);
        let mut state = self.state.lock();
        let suffix = ids::suffix_of(data_request_id, "dr", &self.slug)
            .and_then(ids::parse_hex48)
            .filter(|suffix| state.data_requests.contains_key(suffix))
            .ok_or(LinkError::DataRequestNotFound)?;
        let request = &state.data_requests[&suffix];
        let link = &state.links[request.link as usize];
        if request.fulfilled_at.is_some() {
            return Err(LinkError::AlreadyFulfilled);
        }
        if link.status == LinkStatus::Revoked {
            return Err(LinkError::DataRequestRevoked);
        }
        if link.is_expired(now) {
            return Err(LinkError::Expired);
        }
        let user_index = link.user as usize;
        if &*state.users[user_index].reference_id != reference_id {
            return Err(LinkError::ReferenceIdMismatch);
        }
        let mut carried = Vec::new();
        leaf_paths(&user_data, "", &mut carried);
        let requested = &request.required_fields;
        if !carried.iter().any(|path| requested.contains(path)) {
            return Err(LinkError::NoRequestedFields(requested.clone()));
        }
        let unrequested: Vec<String> = carried
            .into_iter()
            .filter(|path| !requested.contains(path))
            .map(|path| format!("userData.{path}"))
            .collect();
        let link_id = self.link_id(link.suffix);
        self.budget
            .admits(state.counted(), compact_len(Some(&patch)))?;
        let user = &mut state.users[user_index];
        let counted = user.weight();
        if user.data.is_none() {
            user.data = Some(patch);
        } else {
            merge_into(&mut user.data, user_data);
        }
        let weight = user.weight();
        state.stored = state.stored.saturating_sub(counted) + weight;
        if let Some(request) = state.data_requests.get_mut(&suffix) {
            request.fulfilled_at = Some(now);
        }
        self.record(|changes| {
            self.put_user(changes, &state, user_index);
            self.put_data_request(changes, &state, suffix);
        });
        let fulfilled = wire::FulfilledDataRequest {
            data_request_id: data_request_id.to_owned(),
            status: DataRequestStatus::Fulfilled,
            link_id,
            message: wire::messages::DATA_REQUEST_FULFILLED_OK.to_owned(),
            fulfilled_at: timefmt::millis(now),
        };
        Ok((fulfilled, unrequested))
    }

    /// Replaces the webhook signing secret; the old one stops signing at once.
    pub fn regenerate_webhook_secret(&self) -> String {
        let secret = new_webhook_secret();
        let mut state = self.state.lock();
        state.webhook_secret = secret.clone();
        self.persist_settings(&state);
        secret
    }

    /// The current webhook signing secret.
    pub fn webhook_secret(&self) -> String {
        self.state.lock().webhook_secret.clone()
    }

    /// The partner-level webhook URL (the vendor's portal setting).
    pub fn webhook_url(&self) -> Option<String> {
        self.state.lock().webhook_url.clone()
    }

    /// Sets the partner-level webhook URL. Its bytes count against the partner's budget and
    /// the sandbox's like any text a client gives ([`crate::store::quota`]): a longer URL
    /// past either is refused, and nothing changes.
    pub fn set_webhook_url(&self, url: Option<String>) -> Result<(), StorageFull> {
        let mut state = self.state.lock();
        let (was, will) = (
            quota::text(state.webhook_url.as_deref()),
            quota::text(url.as_deref()),
        );
        if will > was {
            self.budget.admits(state.counted(), will - was)?;
        }
        state.webhook_url = url;
        webhook_url_changed();
        self.persist_settings(&state);
        Ok(())
    }

    /// The first of `base`, `base-2`, `base-3`, … that no active link holds at `now`: what a
    /// create of it would not refuse as [`LinkError::ActiveLinkExists`] (unless another
    /// create takes it first). A seed of the same `rngSeed` again asks for each of its
    /// names; the search picks up past the variants an earlier one found held
    /// ([`Numbered`]), so the hundredth seed costs a look-up or two a link, as the first.
    pub fn free_reference(&self, base: &str, now: OffsetDateTime) -> Option<String> {
        let mut state = self.state.lock();
        let PartnerState {
            links,
            users,
            user_index,
            numbered,
            ..
        } = &mut *state;
        // Every variant held is a user's: one more than there are users is free.
        let most = u32::try_from(users.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        numbered.first_free(base, Some(now), most, |name| {
            let user = user_index.get(name, |i| &*users[i as usize].reference_id);
            match user.and_then(|user| users[user as usize].links.last()) {
                Some(&last) if links[last as usize].is_active(now) => {
                    Held::Until(links[last as usize].expires_at.at())
                }
                _ => Held::Free,
            }
        })
    }

    /// How many names [`Partner::free_reference`] has looked up.
    #[cfg(test)]
    pub fn references_looked_up(&self) -> u64 {
        self.state.lock().numbered.looked_up()
    }

    /// Number of stored links.
    pub fn link_count(&self) -> usize {
        self.state.lock().links.len()
    }

    /// Holds the partner's state locked until the guard drops: a test's way to keep a
    /// write waiting half way.
    #[cfg(test)]
    pub fn hold(&self) -> impl Drop + '_ {
        self.state.lock()
    }

    /// What the partner's links, users and webhook URL are counted as holding
    /// ([`crate::store::quota`]).
    pub fn stored(&self) -> u64 {
        self.state.lock().counted()
    }

    /// `Ok` when the partner may add `more` counted bytes to what it holds now: a check
    /// before writes that are each admitted as they are made.
    pub fn allows(&self, more: u64) -> Result<(), StorageFull> {
        self.budget.allows(self.stored(), more)
    }

    fn find_link(&self, state: &PartnerState, link_id: &str) -> Result<usize, LinkError> {
        ids::suffix_of(link_id, "link", &self.slug)
            .and_then(ids::parse_hex48)
            .and_then(|suffix| state.link_at(suffix))
            .map(|index| index as usize)
            .ok_or(LinkError::LinkNotFound)
    }

    fn link_id(&self, suffix: u64) -> String {
        let mut id = String::with_capacity("link__".len() + self.slug.len() + 12);
        self.push_link_id(&mut id, suffix);
        id
    }

    /// Appends `link_<slug>_<suffix>` (a `format!` of it spent as much again in the
    /// formatter as in the copying).
    fn push_link_id(&self, text: &mut String, suffix: u64) {
        text.push_str("link_");
        text.push_str(&self.slug);
        text.push('_');
        ids::push_hex48(text, suffix);
    }

    /// The widget URL of the link whose id ends in `suffix`, in `flow` (a path segment,
    /// percent-encoded: a flow a config names `m2m express` or `a/b` is one segment).
    fn url(&self, suffix: u64, flow: &str) -> String {
        let mut url = String::with_capacity(
            self.widget_base.len() + "/link__/".len() + self.slug.len() + 12 + flow.len(),
        );
        url.push_str(&self.widget_base);
        url.push('/');
        self.push_link_id(&mut url, suffix);
        url.push('/');
        url.extend(percent_encoding::utf8_percent_encode(flow, SEGMENT));
        url
    }

    /// A link as the list shows it, its user's data lent ([`Lent`]).
    fn item(&self, state: &PartnerState, link: &Link) -> Lent<wire::LinkItem> {
        let user = &state.users[link.user as usize];
        let view = wire::LinkItem {
            link_id: self.link_id(link.suffix),
            reference_id: user.reference_id.to_string(),
            status: link.status,
            url: self.url(link.suffix, &link.flow),
            expires_at: timefmt::millis(link.expires_at.at()),
            created_at: timefmt::millis(link.created_at.at()),
            opened_at: link.opened_at.get().map(timefmt::millis),
            user_id: format!("user_{}_{}", self.slug, ids::fmt_alnum6(&user.suffix)),
            operation_id: link.operation_id().map(str::to_owned),
            user_data: None,
        };
        Lent {
            view,
            user_data: user.data.clone(),
            metadata: None,
        }
    }

    /// A link's detail, its user data and metadata lent ([`Lent`]).
    fn detail(&self, state: &PartnerState, link: &Link) -> Lent<wire::LinkDetail> {
        let item = self.item(state, link);
        let view = wire::LinkDetail {
            item: item.view,
            token: ids::uuid_text(&link.token),
            metadata: None,
            flow: link.flow.to_string(),
            theme: link.theme().map(str::to_owned),
            language: link.language,
            callback_url: link.callback_url().map(str::to_owned),
            revoked_at: link.revoked_at.get().map(timefmt::millis),
            revoke_reason: link.revoke_reason().map(str::to_owned),
        };
        Lent {
            view,
            user_data: item.user_data,
            metadata: link.metadata.clone(),
        }
    }

    fn data_request_view(
        &self,
        state: &PartnerState,
        suffix: u64,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Option<DataRequestView> {
        let request = state.data_requests.get(&suffix)?;
        let link = &state.links[request.link as usize];
        let status = match request.fulfilled_at {
            Some(_) => DataRequestStatus::Fulfilled,
            None if link.is_expired(now) || link.status == LinkStatus::Revoked => {
                DataRequestStatus::Expired
            }
            None => DataRequestStatus::Pending,
        };
        Some(DataRequestView {
            data_request_id: format!("dr_{}_{}", self.slug, ids::fmt_hex48(suffix)),
            reference_id: state.users[link.user as usize].reference_id.to_string(),
            link_id: self.link_id(link.suffix),
            required_fields: request.required_fields.clone(),
            status,
            expires_at,
        })
    }
}

fn new_webhook_secret() -> String {
    format!(
        "{}{}",
        wire::WEBHOOK_SECRET_PREFIX,
        ids::alphanumeric(wire::WEBHOOK_SECRET_LEN)
    )
}

/// Merges `patch` into `target`: objects key by key (recursively), anything else replaced.
/// The dot paths of `value`'s non-null leaves (objects are walked, anything else is a leaf).
fn leaf_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(inner, &path, out);
            }
        }
        Value::Null => {}
        _ if !prefix.is_empty() => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// Merges a returning user's new `userData` (`patch`) into what is kept: field by field, a
/// `null` counting as absent (it keeps the stored value, as it is no value on a create),
/// and a `paymentMethod` of another `type` replacing the stored one whole (a user paid in
/// cash has no bank account left over from the method before). [design]
fn merge_into(target: &mut Option<Compact>, patch: Value) {
    let merged = match target.as_ref().map(Compact::value) {
        Some(mut existing) => {
            let switched = |data: &Value| data.pointer("/paymentMethod/type").cloned();
            if let (Some(new), Some(kept)) = (switched(&patch), existing.as_object_mut())
                && kept
                    .get("paymentMethod")
                    .and_then(|method| method.get("type"))
                    .is_some_and(|old| *old != new)
            {
                kept.remove("paymentMethod");
            }
            merge_value(&mut existing, patch);
            existing
        }
        None => patch,
    };
    *target = Some(Compact::new(&merged));
}

fn merge_value(target: &mut Value, patch: Value) {
    match (target, patch) {
        (_, Value::Null) => {}
        (Value::Object(target), Value::Object(patch)) => merge_objects(target, patch),
        (target, patch) => *target = patch,
    }
}

fn merge_objects(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match target.get_mut(&key) {
            Some(existing) => merge_value(existing, value),
            None => {
                target.insert(key, value);
            }
        }
    }
}

/// The CIP fields (dot paths) that `data` lacks or holds empty.
fn missing_cip_fields(data: Option<&Value>) -> Vec<String> {
    CIP_FIELDS
        .iter()
        .filter(|path| {
            let value = path
                .split('.')
                .try_fold(data.unwrap_or(&Value::Null), |value, key| value.get(key));
            !matches!(value, Some(Value::String(text)) if !text.trim().is_empty())
        })
        .map(|path| (*path).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use serde_json::json;
    use time::macros::datetime;

    const KEY: &str = "m2m_test_0123456789abcdefghijklmnopqrstuv";
    const NOW: OffsetDateTime = datetime!(2026-02-10 12:00 UTC);

    fn partner() -> Arc<Partner> {
        let settings = Settings::resolve(Options::default(), ([127, 0, 0, 1], 8642).into());
        Partners::new(&settings)
            .authenticate(KEY)
            .expect("open mode accepts test keys")
    }

    fn new_link(reference_id: &str) -> NewLink {
        NewLink {
            reference_id: reference_id.into(),
            flow: wire::DEFAULT_FLOW.into(),
            ..NewLink::default()
        }
    }

    /// A request that looked its key up as a stranger, counted after another request's
    /// write made the key's partner, counts against that partner's window.
    #[test]
    fn a_stranger_counted_after_its_partner_is_made_counts_against_the_partner() {
        let settings = Settings::resolve(Options::default(), ([127, 0, 0, 1], 8642).into());
        let partners = Partners::new(&settings);
        let limit = Limit(Some(2));
        let looked_up = partners.stranger(KEY);
        assert_eq!(partners.admit(&looked_up, true, limit, NOW), Ok(()));
        let made = partners
            .authenticate(KEY)
            .expect("open mode accepts test keys");
        assert_eq!(partners.admit(&looked_up, true, limit, NOW), Ok(()));
        assert!(partners.admit(&looked_up, true, limit, NOW).is_err());
        assert!(partners.admit(&made, true, limit, NOW).is_err());
        // The other endpoints' window is the partner's own.
        assert_eq!(partners.admit(&looked_up, false, limit, NOW), Ok(()));
        assert_eq!(partners.admit(&made, false, limit, NOW), Ok(()));
        assert!(partners.admit(&looked_up, false, limit, NOW).is_err());
    }

    /// What a seed of the same `rngSeed` again is given: the first variant of a
    /// `referenceId` no active link holds, as a search from the start would find it, even
    /// after an earlier search went past it.
    #[test]
    fn a_free_reference_is_the_first_variant_no_active_link_holds() {
        let partner = partner();
        let take = |now: OffsetDateTime| {
            let reference = partner.free_reference("cust", now).expect("free");
            let mut new = new_link(&reference);
            new.expires_in = Some(Duration::hours(1));
            let link = partner.create_link(new, now).expect("created");
            (reference, link.link_id)
        };
        let taken: Vec<(String, String)> = (0..4).map(|_| take(NOW)).collect();
        let references: Vec<&str> = taken.iter().map(|(reference, _)| &**reference).collect();
        assert_eq!(references, ["cust", "cust-2", "cust-3", "cust-4"]);
        let before = partner.references_looked_up();
        assert_eq!(take(NOW).0, "cust-5");
        assert_eq!(partner.references_looked_up() - before, 2);
        // A revoked link's `referenceId` is free again.
        partner
            .revoke_link(&taken[1].1, None, NOW)
            .expect("revoked");
        assert_eq!(take(NOW).0, "cust-2");
        // So is an expired one's, once its link has expired.
        let later = NOW + Duration::hours(2);
        assert_eq!(take(later).0, "cust");
        assert_eq!(take(later).0, "cust-2");
    }

    #[test]
    fn lent_metadata_is_kept_as_given_metadata_is() {
        let partner = partner();
        let metadata = serde_json::json!({"orderId": "A1", "n": [1, 2]});
        let lent = partner
            .create_link_lent(new_link("u1"), Some(&metadata), NOW)
            .expect("lent");
        let mut given = new_link("u2");
        given.metadata = Some(metadata.clone());
        let given = partner.create_link(given, NOW).expect("given");
        for link_id in [&lent.link_id, &given.link_id] {
            let detail = partner.link(link_id).expect("detail");
            assert_eq!(detail.metadata.as_ref(), Some(&metadata));
        }
    }

    #[test]
    fn a_link_without_a_theme_callback_reason_or_operation_keeps_no_extras() {
        // 160 bytes with the four texts inline; the bound keeps them out of line.
        assert!(
            std::mem::size_of::<Link>() <= 104,
            "{}",
            std::mem::size_of::<Link>()
        );
        let partner = partner();
        let plain = partner.create_link(new_link("u1"), NOW).expect("plain");
        let mut themed = new_link("u2");
        themed.theme = Some("dark".into());
        themed.callback_url = Some("https://partner.example/hooks".into());
        let themed = partner.create_link(themed, NOW).expect("themed");
        let extras_of = |link_id: &str| {
            let state = partner.state.lock();
            let suffix = ids::parse_hex48(link_id.rsplit('_').next().unwrap_or_default());
            let index = suffix.and_then(|suffix| state.link_at(suffix));
            index.map(|index| {
                state.links[index as usize].extras.as_deref().map(|e| {
                    (
                        e.theme.is_some(),
                        e.callback_url.is_some(),
                        e.revoke_reason.is_some(),
                    )
                })
            })
        };
        assert_eq!(extras_of(&plain.link_id), Some(None));
        assert_eq!(extras_of(&themed.link_id), Some(Some((true, true, false))));
        let detail = partner.link(&themed.link_id).expect("detail");
        assert_eq!(detail.theme.as_deref(), Some("dark"));
        assert_eq!(
            detail.callback_url.as_deref(),
            Some("https://partner.example/hooks")
        );

        partner
            .revoke_link(&plain.link_id, None, NOW)
            .expect("revoke");
        assert_eq!(
            extras_of(&plain.link_id),
            Some(None),
            "no reason, nothing kept"
        );
        partner
            .revoke_link(&themed.link_id, Some("fraud".into()), NOW)
            .expect("revoke");
        assert_eq!(extras_of(&themed.link_id), Some(Some((true, true, true))));
        let detail = partner.link(&themed.link_id).expect("detail");
        assert_eq!(detail.revoke_reason.as_deref(), Some("fraud"));
        assert_eq!(detail.theme.as_deref(), Some("dark"), "the others are kept");
    }

    #[test]
    fn setting_and_clearing_a_link_s_texts_keeps_extras_only_while_one_is_set() {
        let mut link = Link {
            suffix: 1,
            user: 0,
            status: LinkStatus::Created,
            token: Uuid::nil(),
            flow: Arc::from(wire::DEFAULT_FLOW),
            language: None,
            metadata: None,
            created_at: Stamp::of(NOW),
            expires_at: Stamp::of(NOW),
            opened_at: MaybeStamp::NONE,
            revoked_at: MaybeStamp::NONE,
            extras: None,
        };
        link.set_extra(|extras| &mut extras.revoke_reason, None);
        assert!(link.extras.is_none());
        link.set_extra(|extras| &mut extras.operation_id, Some("op_1".into()));
        assert_eq!(link.operation_id(), Some("op_1"));
        link.set_extra(|extras| &mut extras.revoke_reason, Some("r".into()));
        assert_eq!(
            (link.operation_id(), link.revoke_reason()),
            (Some("op_1"), Some("r"))
        );
        link.set_extra(|extras| &mut extras.operation_id, None);
        assert_eq!(
            (link.operation_id(), link.revoke_reason()),
            (None, Some("r"))
        );
        link.set_extra(|extras| &mut extras.revoke_reason, None);
        assert!(link.extras.is_none(), "all unset: nothing kept");
    }

    #[test]
    fn open_mode_slugs_are_p_and_eight_hex_digits() {
        let slug = open_mode_slug(KEY);
        assert_eq!(slug.len(), 9);
        assert!(slug.starts_with('p'));
        assert!(slug[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(partner().slug.as_ref(), slug);
    }

    #[test]
    fn a_second_link_for_an_active_user_conflicts_until_the_first_expires() {
        let partner = partner();
        partner
            .create_link(new_link("u1"), NOW)
            .expect("first link");
        assert_eq!(
            partner.create_link(new_link("u1"), NOW).err(),
            Some(LinkError::ActiveLinkExists)
        );
        // The refused create stored nothing: its link is made before the lock, and the
        // index look-up that found the user indexed nothing new.
        {
            let state = partner.state.lock();
            assert_eq!((state.links.len(), state.users.len()), (1, 1));
            assert_eq!((state.link_index.len(), state.user_index.len()), (1, 1));
        }
        let later = NOW + Duration::minutes(60);
        assert!(partner.create_link(new_link("u1"), later).is_ok());
        let state = partner.state.lock();
        assert_eq!((state.links.len(), state.users.len()), (2, 1));
        assert_eq!(state.users[0].links.as_slice(), &[0, 1]);
    }

    /// A user keeps four link positions in place and the rest beside it: a filter by
    /// `referenceId` lists every one of them, newest first, under one `userId`.
    #[test]
    fn a_user_with_more_links_than_are_kept_in_place_lists_them_all() {
        let partner = partner();
        let mut created = Vec::new();
        for n in 0..7 {
            let at = NOW + Duration::days(n);
            let link = partner.create_link(new_link("u1"), at).expect("link");
            partner
                .revoke_link(&link.link_id, None, at)
                .expect("revoke");
            created.push(link.link_id);
        }
        partner
            .create_link(new_link("u2"), NOW)
            .expect("another user");
        let filter = LinkFilter {
            reference_id: Some("u1".into()),
            ..LinkFilter::default()
        };
        let (items, total) = partner.list_links(&filter, 1, 100, NOW);
        assert_eq!(total, 7);
        let items: Vec<_> = items.iter().map(Lent::view).collect();
        let listed: Vec<&str> = items.iter().map(|item| item.link_id.as_str()).collect();
        let newest_first: Vec<&str> = created.iter().rev().map(String::as_str).collect();
        assert_eq!(listed, newest_first);
        assert!(items.iter().all(|item| item.user_id == items[0].user_id));
    }

    #[test]
    fn returning_users_keep_their_id_and_merge_user_data() {
        let partner = partner();
        let mut first = new_link("u1");
        first.user_data = Some(json!({"name": {"firstName": "Ana"}, "idType": "CURP"}));
        let created = partner.create_link(first, NOW).expect("first");
        partner
            .revoke_link(&created.link_id, None, NOW)
            .expect("revoke");
        let mut second = new_link("u1");
        second.user_data = Some(json!({"name": {"lastName": "Ruiz"}, "idType": "INE"}));
        let created_again = partner.create_link(second, NOW).expect("second");
        let first_detail = partner.link(&created.link_id).expect("first");
        let second_detail = partner.link(&created_again.link_id).expect("second");
        assert_eq!(first_detail.item.user_id, second_detail.item.user_id);
        assert_eq!(
            second_detail.item.user_data,
            Some(json!({"name": {"firstName": "Ana", "lastName": "Ruiz"}, "idType": "INE"}))
        );
    }

    #[test]
    fn a_returning_users_nulls_keep_what_is_stored_and_a_new_payment_method_replaces() {
        let partner = partner();
        let mut first = new_link("u1");
        first.user_data = Some(json!({"dob": "1990-01-01", "name": {"firstName": "Ana"},
            "paymentMethod": {"type": "bank_account",
                "bankAccount": {"accountNumber": "111", "country": "MX"}}}));
        let created = partner.create_link(first, NOW).expect("first");
        partner
            .revoke_link(&created.link_id, None, NOW)
            .expect("revoke");
        let mut second = new_link("u1");
        second.user_data = Some(json!({"dob": null, "name": null,
            "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO"}}}));
        let again = partner.create_link(second, NOW).expect("second");
        let detail = partner.link(&again.link_id).expect("detail");
        assert_eq!(
            detail.item.user_data,
            Some(json!({"dob": "1990-01-01", "name": {"firstName": "Ana"},
                "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO"}}}))
        );
        // The same method's fields are merged into it.
        let mut data = Some(Compact::new(&json!({"paymentMethod": {"type": "cash",
            "cash": {"provider": "OXXO"}}})));
        merge_into(
            &mut data,
            json!({"paymentMethod": {"type": "cash", "cash": {"reference": "R1"}}}),
        );
        assert_eq!(
            data.as_ref().map(Compact::value),
            Some(json!({"paymentMethod": {"type": "cash",
                "cash": {"provider": "OXXO", "reference": "R1"}}}))
        );
    }

    #[test]
    fn opening_an_incomplete_user_creates_one_data_request_for_the_missing_fields() {
        let partner = partner();
        let mut new = new_link("u1");
        new.user_data = Some(json!({"name": {"firstName": "Ana", "secondName": "María",
            "lastName": "Ruiz", "secondLastName": "Soto"}, "idType": "CURP"}));
        let created = partner.create_link(new, NOW).expect("link");
        let opened = partner.open_link(&created.link_id, NOW).expect("open");
        assert!(opened.first_open);
        assert_eq!(opened.link.item.status, LinkStatus::Opened);
        let request = opened.data_request.expect("a data request");
        assert_eq!(request.required_fields, ["idNumber", "dob"]);
        assert_eq!(request.expires_at, NOW + Duration::minutes(60));
        let again = partner
            .open_link(&created.link_id, NOW + Duration::minutes(1))
            .expect("open");
        assert!(!again.first_open);
        assert!(again.data_request.is_none());
        assert_eq!(again.link.item.opened_at, Some(timefmt::millis(NOW)));
    }

    #[test]
    fn a_complete_user_gets_no_data_request() {
        assert!(
            missing_cip_fields(Some(&json!({"name": {"firstName": "A", "secondName": "B",
            "lastName": "C", "secondLastName": "D"}, "idNumber": "1", "idType": "CURP",
            "dob": "1990-01-01"})))
            .is_empty()
        );
        assert_eq!(missing_cip_fields(None).len(), CIP_FIELDS.len());
    }

    #[test]
    fn revoking_a_link_ends_its_data_requests() {
        let partner = partner();
        let created = partner.create_link(new_link("u1"), NOW).expect("link");
        let request = partner
            .open_link(&created.link_id, NOW)
            .expect("open")
            .data_request
            .expect("request");
        partner
            .revoke_link(&created.link_id, None, NOW)
            .expect("revoke");
        assert_eq!(
            partner
                .fulfil_data_request(
                    &request.data_request_id,
                    "u1",
                    json!({"dob": "1990-01-01"}),
                    NOW
                )
                .err(),
            Some(LinkError::DataRequestRevoked)
        );
        let detail = partner.link(&created.link_id).expect("detail");
        assert_eq!(detail.item.user_data, None);
    }

    #[test]
    fn fulfilling_checks_state_then_reference_then_merges() {
        let partner = partner();
        let created = partner.create_link(new_link("u1"), NOW).expect("link");
        let request = partner
            .open_link(&created.link_id, NOW)
            .expect("open")
            .data_request
            .expect("request");
        let id = request.data_request_id;
        assert_eq!(
            partner
                .fulfil_data_request(&id, "other", json!({}), NOW)
                .err(),
            Some(LinkError::ReferenceIdMismatch)
        );
        assert_eq!(
            partner
                .fulfil_data_request(&id, "u1", json!({"phone": "5"}), NOW)
                .err(),
            Some(LinkError::NoRequestedFields(
                request.required_fields.clone()
            ))
        );
        let (done, unrequested) = partner
            .fulfil_data_request(&id, "u1", json!({"dob": "1990-01-01"}), NOW)
            .expect("fulfil");
        assert_eq!(done.status, DataRequestStatus::Fulfilled);
        assert!(unrequested.is_empty(), "{unrequested:?}");
        assert_eq!(
            partner.fulfil_data_request(&id, "u1", json!({}), NOW).err(),
            Some(LinkError::AlreadyFulfilled)
        );
        let detail = partner.link(&created.link_id).expect("detail");
        assert_eq!(detail.item.user_data, Some(json!({"dob": "1990-01-01"})));
    }

    #[test]
    fn revoking_twice_or_after_expiry_is_refused() {
        let partner = partner();
        let created = partner.create_link(new_link("u1"), NOW).expect("link");
        partner
            .revoke_link(&created.link_id, Some("fraud".into()), NOW)
            .expect("revoke");
        assert_eq!(
            partner.revoke_link(&created.link_id, None, NOW).err(),
            Some(LinkError::NotRevocable)
        );
        let other = partner.create_link(new_link("u2"), NOW).expect("link");
        assert_eq!(
            partner
                .revoke_link(&other.link_id, None, NOW + Duration::hours(2))
                .err(),
            Some(LinkError::Expired)
        );
    }

    #[test]
    fn lists_are_newest_first_and_count_every_match() {
        let partner = partner();
        for i in 0..5 {
            partner
                .create_link(new_link(&format!("u{i}")), NOW + Duration::seconds(i))
                .expect("link");
        }
        let (items, total) = partner.list_links(&LinkFilter::default(), 2, 2, NOW);
        assert_eq!(total, 5);
        let refs: Vec<_> = items
            .iter()
            .map(|item| item.view().reference_id.as_str())
            .collect();
        assert_eq!(refs, ["u2", "u1"]);
    }
}
