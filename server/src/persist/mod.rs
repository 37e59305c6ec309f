//! `--state FILE`: write-through persistence of the whole sandbox to one SQLite file.
//!
//! Reads are always served from memory; the file is only written. Facade: [`Sink`], the
//! handle the store, the clock and the webhook queue hold. Every mutating method describes
//! what it changed to its sink *inside the lock that guards the change*, so the order of the
//! writes in the queue is the order of the changes in memory. [`Sink::settled`] is what the
//! serving layer waits on: a response leaves only once everything queued before it has been
//! committed, so `kill -9` at any moment loses nothing a client saw. In memory (no `--state`) the sink is off: the
//! describing closure never runs and nothing is serialized.
//!
//! A request's changes reach the file together or not at all: the task serving it runs in
//! [`tracking`], and what it records is one unit of the queue, which no append splits
//! (a frame of the write log holds whole requests only; a restart applies whole frames).
//! What a request not done yet has queued is held back, with whatever was queued after it,
//! until it is done: a seed, a reset or a snapshot restore holds back the file's writes
//! (and the answers waiting on them) for as long as its work takes.
//!
//! One process at a time: the file is locked exclusively (`flock`), before anything is
//! written to it, while a sandbox has it open, and a second one is refused naming the holder, from a note the holder keeps beside
//! the file (`FILE-holder`).
//!
//! Internal: [`schema`] recognises, creates and migrates the file; [`writer`] appends
//! whatever has queued up to the [`write_log`] (group commit: by the first response waiting
//! on it, or by a writer thread), a file of frames beside the state file, and runs the
//! thread that applies that log to the tables below, many commits at a time, while the
//! appends go on (a file is opened with its log applied, so the rest only ever reads
//! tables);
//! [`load`] reads a file's rows back, as text, for the layers above to put
//! back through their own APIs ([`Opened::read`]). This module knows none of them: it sits
//! at the bottom of the crate and imports nothing from it.
//!
//! # Tables
//! Every entity table has the same shape — `tenant TEXT, id TEXT, position INTEGER, doc
//! TEXT` (JSON), keyed by `(tenant, position, id)`; `position` orders rows within a tenant.
//! It leads the key so that new rows (each kind's next position) append to their table,
//! where random ids put each on a page of its own; so a row keeps its position while it
//! lives, and a put or a delete names all three. `webhook_deliveries` is keyed by
//! `(position, tenant, id)`: its positions are the one queue's order across partners, so
//! every partner's deliveries append to one page and are trimmed from one.
//!
//! | table | tenant | id | position | doc |
//! |---|---|---|---|---|
//! | `m2m_partners` | slug | slug | 0 | `{key, webhookUrl, webhookSecret}` |
//! | `m2m_users` | slug | `user_…` | creation index | snapshot user |
//! | `m2m_links` | slug | `link_…` | creation index | snapshot link |
//! | `m2m_data_requests` | slug | `dr_…` | link index | snapshot data request |
//! | `m2m_operations` | slug | `link_…` (one per link) | link index | operation view |
//! | `leaf_users` | username | user UUID | creation sequence | fields and credentials |
//! | `leaf_magic_links` | username | magicLinkId | creation sequence | link, usage count |
//! | `webhook_deliveries` | slug | `whd_…` | queue order | body, attempts, schedule |
//!
//! plus `log_applied(log, seq)` (the state file's write log, and the last of its frames
//! the tables above hold), `write_log(seq, batch)` (the log of version-5 files, applied when
//! one is opened), `meta(app, schema_version)`, `clock(id = 1, offset_ms, frozen_at)`,
//! `secrets(name, value)` (the Leaf token signing key, so issued tokens stay valid) and
//! `quarantine(source, tenant, id, position, doc, reason)`: rows found unusable when the file
//! was loaded, moved out of their table (`source`) with the reason, so one bad row never
//! keeps the whole sandbox from starting.

mod load;
pub mod schema;
pub mod shared;
mod write_log;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

pub use load::{FileRows, Row, RowRef, Rows, Stored};
pub use schema::OpenError;

/// An entity table: all share the layout `(tenant, id, position, doc)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    M2mPartners,
    M2mUsers,
    M2mLinks,
    M2mDataRequests,
    M2mOperations,
    LeafUsers,
    LeafMagicLinks,
    WebhookDeliveries,
    /// Injected faults: kept only in a shared database, so that every replica strikes the
    /// same ones (a single process keeps them in memory). Not in [`Table::ALL`].
    Faults,
    /// A partner's rate-limit windows (`id` `create` or `other`, `position` the minute, `doc`
    /// the count): kept only in a shared database, so that replicas count one window
    /// together. Not in [`Table::ALL`].
    RateWindows,
    /// The request journal: kept only in a shared database. Not in [`Table::ALL`].
    Journal,
    /// The open-mode Leaf accounts (one row each, `id` the username, `doc` `{}`): kept only
    /// in a shared database, where an account is a tenant before it holds a user or a link
    /// (its only write a fault), as a partner is by its `m2m_partners` row. One process
    /// keeps its accounts in memory, and its file makes them again from their rows. Not in
    /// [`Table::ALL`]; versioned as its entities are ([`Table::versioned`]).
    LeafAccounts,
}

impl Table {
    pub const ALL: [Table; 8] = [
        Table::M2mPartners,
        Table::M2mUsers,
        Table::M2mLinks,
        Table::M2mDataRequests,
        Table::M2mOperations,
        Table::LeafUsers,
        Table::LeafMagicLinks,
        Table::WebhookDeliveries,
    ];

    /// The tables a partner's reset or snapshot restore replaces.
    pub const M2M_STATE: [Table; 4] = [
        Table::M2mUsers,
        Table::M2mLinks,
        Table::M2mDataRequests,
        Table::M2mOperations,
    ];

    /// Whether the table's rows carry the version of their tenant that wrote them, in a
    /// shared database: the tenant's entities.
    pub fn versioned(self) -> bool {
        self == Table::LeafAccounts || Table::ALL.contains(&self)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Table::M2mPartners => "m2m_partners",
            Table::M2mUsers => "m2m_users",
            Table::M2mLinks => "m2m_links",
            Table::M2mDataRequests => "m2m_data_requests",
            Table::M2mOperations => "m2m_operations",
            Table::LeafUsers => "leaf_users",
            Table::LeafMagicLinks => "leaf_magic_links",
            Table::WebhookDeliveries => "webhook_deliveries",
            Table::Faults => "faults",
            Table::RateWindows => "rate_windows",
            Table::Journal => "journal",
            Table::LeafAccounts => "leaf_accounts",
        }
    }
}

/// One change to the file.
#[derive(Debug)]
enum Write {
    Put {
        table: Table,
        tenant: Arc<str>,
        id: String,
        position: i64,
        doc: String,
    },
    /// Deletes the row `(tenant, position, id)`: a file's rows are keyed by all three.
    Delete {
        table: Table,
        tenant: Arc<str>,
        id: String,
        position: i64,
    },
    ClearTenant {
        table: Table,
        tenant: Arc<str>,
    },
    ClearTable(Table),
    Clock {
        offset_ms: i64,
        frozen_at: Option<String>,
    },
    Secret {
        name: &'static str,
        value: String,
    },
    /// A request journaled in a shared database: a new row of `journal` for `tenant` (its
    /// oldest rows past the journal size are trimmed in the background).
    Journal {
        tenant: Arc<str>,
        doc: String,
    },
    /// Journal rows forgotten (a shared database only), each named as the table keys it:
    /// its tenant and its row number.
    ForgetJournal {
        rows: Vec<(Arc<str>, i64)>,
    },
    /// Moves a row out of its table into `quarantine`.
    Quarantine {
        table: Table,
        row: Row,
        reason: String,
    },
}

impl Write {
    /// The bytes of the document it writes, if any.
    fn doc_len(&self) -> usize {
        match self {
            Write::Put { doc, .. } | Write::Journal { doc, .. } => doc.len(),
            Write::Quarantine { row, .. } => row.doc.len(),
            _ => 0,
        }
    }
}

/// The changes one store operation made, described for the file.
#[derive(Default)]
pub struct Changes {
    writes: Vec<Write>,
    error: Option<String>,
}

/// A row's document: `doc`'s fields, written by `sonic-rs` as `serde_json` writes them
/// ([`linkbox_contracts::json`]), then `raw`'s. Each of those is a field's name and JSON
/// text its caller knows to be JSON (a kept `RawValue`, a webhook body linkbox wrote),
/// added as it is (`null` for none): `serde_json` would parse it again to prove it is
/// JSON, and `sonic-rs` does not know `serde_json`'s raw values. Rows are read by field
/// name, so their order is free.
pub fn document(doc: &impl Serialize, raw: &[(&str, Option<&str>)]) -> Result<String, String> {
    let mut text = linkbox_contracts::json::to_string(doc).map_err(|error| error.to_string())?;
    if raw.is_empty() {
        return Ok(text);
    }
    if !(text.starts_with('{') && text.ends_with('}')) {
        return Err("raw fields need a document that is an object".to_owned());
    }
    text.pop();
    for (name, value) in raw {
        debug_assert!(
            name.bytes().all(|byte| byte.is_ascii_alphanumeric()),
            "a field name to write without escaping: {name:?}"
        );
        if !text.ends_with('{') {
            text.push(',');
        }
        text.push('"');
        text.push_str(name);
        text.push_str("\":");
        text.push_str(value.unwrap_or("null"));
    }
    text.push('}');
    Ok(text)
}

impl Changes {
    /// Inserts or replaces a row.
    pub fn put(
        &mut self,
        table: Table,
        tenant: &Arc<str>,
        id: impl Into<String>,
        position: u64,
        doc: &impl Serialize,
    ) {
        self.put_with_raw(table, tenant, id, position, doc, &[]);
    }

    /// Inserts or replaces a row whose document is `doc`'s fields and then `raw`'s ([`document`]).
    pub fn put_with_raw(
        &mut self,
        table: Table,
        tenant: &Arc<str>,
        id: impl Into<String>,
        position: u64,
        doc: &impl Serialize,
        raw: &[(&str, Option<&str>)],
    ) {
        match document(doc, raw) {
            Ok(doc) => self.writes.push(Write::Put {
                table,
                tenant: tenant.clone(),
                id: id.into(),
                position: i64::try_from(position).unwrap_or(i64::MAX),
                doc,
            }),
            Err(error) => self.error = Some(format!("a {} row: {error}", table.name())),
        }
    }

    /// Deletes a row, named as it was put: its tenant, id and position.
    pub fn delete(
        &mut self,
        table: Table,
        tenant: &Arc<str>,
        id: impl Into<String>,
        position: u64,
    ) {
        self.writes.push(Write::Delete {
            table,
            tenant: tenant.clone(),
            id: id.into(),
            position: i64::try_from(position).unwrap_or(i64::MAX),
        });
    }

    /// Deletes every row of one tenant in `table`.
    pub fn clear_tenant(&mut self, table: Table, tenant: &Arc<str>) {
        self.writes.push(Write::ClearTenant {
            table,
            tenant: tenant.clone(),
        });
    }

    pub fn clear_table(&mut self, table: Table) {
        self.writes.push(Write::ClearTable(table));
    }

    pub fn clock(&mut self, offset: Duration, frozen_at: Option<OffsetDateTime>) {
        self.writes.push(Write::Clock {
            offset_ms: i64::try_from(offset.whole_milliseconds()).unwrap_or(i64::MAX),
            frozen_at: frozen_at.map(linkbox_contracts::timefmt::nanos),
        });
    }

    pub fn secret(&mut self, name: &'static str, value: String) {
        self.writes.push(Write::Secret { name, value });
    }

    /// Journals a request of `tenant` (a shared database only).
    pub fn journal(&mut self, tenant: &Arc<str>, doc: &impl Serialize) {
        match serde_json::to_string(doc) {
            Ok(doc) => self.writes.push(Write::Journal {
                tenant: tenant.clone(),
                doc,
            }),
            Err(error) => self.error = Some(format!("a journal row: {error}")),
        }
    }

    /// Forgets journal rows (a shared database only), each by its tenant and row number.
    pub fn forget_journal(&mut self, rows: Vec<(Arc<str>, i64)>) {
        self.writes.push(Write::ForgetJournal { rows });
    }

    /// Moves `row` of `table` into the `quarantine` table, with why it could not be used.
    pub fn quarantine(&mut self, table: Table, row: &Row, reason: impl Into<String>) {
        self.writes.push(Write::Quarantine {
            table,
            row: row.clone(),
            reason: reason.into(),
        });
    }
}

tokio::task_local! {
    /// What the task running inside [`tracking`] recorded.
    static RECORDED: Tracked;
}

/// A tracked task's changes: whether it recorded any, and its [`Unit`] in a state file's
/// queue.
struct Tracked {
    recorded: std::cell::Cell<bool>,
    unit: Arc<Unit>,
}

impl Tracked {
    fn new(unit: Arc<Unit>) -> Tracked {
        Tracked {
            recorded: std::cell::Cell::new(false),
            unit,
        }
    }
}

/// One request's changes to a state file, which reach its write log together, in one frame,
/// or not at all: the frames are what a restart applies, and one that held a part of a
/// seed, a reset or a restore left the rest of it out after a `kill -9` or a failed save.
///
/// The queue keeps the changes in the order they were made, whoever's they are, so a unit
/// still running holds back, from its first change on, what is appended ([`Pending`]);
/// what comes before it goes on as ever. Opened in the queue with the request's first change
/// and done when the last of its holders lets it go: the request's task, and any work it
/// handed to another thread ([`Carried`]), so a request given up half way (its client
/// gone) lets go of it too.
#[derive(Default)]
struct Unit(Mutex<Option<(Arc<Queue>, u64)>>);

impl Unit {
    /// This unit's number in `queue`, given the first time it records there; `None` for
    /// another sink's queue than the one it has (never the case in one sandbox).
    fn number_in(&self, queue: &Arc<Queue>) -> Option<u64> {
        let mut held = self.0.lock();
        match &*held {
            Some((its, number)) => Arc::ptr_eq(its, queue).then_some(*number),
            None => {
                let number = queue.units.fetch_add(1, Ordering::Relaxed);
                *held = Some((queue.clone(), number));
                Some(number)
            }
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        if let Some((queue, number)) = self.0.get_mut().take() {
            queue.done(number);
        }
    }
}

/// Runs `work` and says whether it recorded any change (through any sink): the serving
/// layer waits for durability only for requests that wrote something. What it records in
/// a state file's queue is one [`Unit`], appended to the write log in one frame once `work`
/// is done; `work` tracked inside a tracked task is part of that task's unit.
///
/// A plain function returning the scoped future, not an `async fn` or block: either would
/// hold `work` twice, and every request's future is built of this one.
pub fn tracking<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = (F::Output, bool)> {
    use futures_util::FutureExt;
    let unit = RECORDED
        .try_with(|tracked| tracked.unit.clone())
        .unwrap_or_default();
    RECORDED.scope(
        Tracked::new(unit),
        work.map(|output| (output, RECORDED.with(|tracked| tracked.recorded.get()))),
    )
}

/// Marks the current tracked task, if any, as having recorded a change, and gives its unit's
/// number in `queue` (a state file's).
fn recorded_in(queue: Option<&Arc<Queue>>) -> Option<u64> {
    RECORDED
        .try_with(|tracked| {
            tracked.recorded.set(true);
            queue.and_then(|queue| tracked.unit.number_in(queue))
        })
        .ok()
        .flatten()
}

/// What a request's task keeps of the changes it records ([`tracking`], and a shared
/// database's request scope), taken along to work it hands to another thread, and what that
/// work recorded, brought back: the work counts as the request's own, as it would have
/// done on the request's thread (the answer waits until the change is durable, and it is in
/// the request's [`Unit`]; on a shared database, the change is in the request's
/// transaction).
pub struct Carried {
    /// Whether the work recorded a change, and the request's unit, when the task is tracked.
    tracked: Option<(bool, Arc<Unit>)>,
    scope: Option<shared::CarriedScope>,
}

impl Carried {
    /// The current task's, to take along.
    pub fn here() -> Carried {
        Carried {
            tracked: RECORDED
                .try_with(|tracked| (false, tracked.unit.clone()))
                .ok(),
            scope: shared::CarriedScope::here(),
        }
    }

    /// Runs `work` on this thread as if in the task it was taken from, and returns what it
    /// recorded.
    pub fn run<T>(self, work: impl FnOnce() -> T) -> (T, Carried) {
        let Carried { tracked, scope } = self;
        let in_scope = move || match scope {
            Some(scope) => {
                let (output, scope) = scope.run(work);
                (output, Some(scope))
            }
            None => (work(), None),
        };
        let Some((_, unit)) = tracked else {
            let (output, scope) = in_scope();
            return (output, Carried { tracked, scope });
        };
        RECORDED.sync_scope(Tracked::new(unit), || {
            let (output, scope) = in_scope();
            let tracked = RECORDED.with(|tracked| (tracked.recorded.get(), tracked.unit.clone()));
            (
                output,
                Carried {
                    tracked: Some(tracked),
                    scope,
                },
            )
        })
    }

    /// Back in the task it was taken from: adds what the work recorded to the task's own.
    pub fn rejoin(self) {
        if let Some((true, _)) = self.tracked {
            let _ = RECORDED.try_with(|tracked| tracked.recorded.set(true));
        }
        if let Some(scope) = self.scope {
            scope.rejoin();
        }
    }
}

/// Linkbox stopped with changes its state file does not have.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unsaved {
    #[error(
        "stopped with changes the state file {} does not have (it could not be written, a full disk?): the changes answered 503 STATE_NOT_SAVED are lost",
        path.display()
    )]
    Failed { path: PathBuf },
    /// The path no longer names the file linkbox opened ([`Queue::in_place`]).
    #[error(
        "the state file {} was deleted or replaced while linkbox had it open ({why}): what this sandbox held is not in the file at that path, and the changes answered 503 STATE_NOT_SAVED are in no file",
        path.display()
    )]
    Gone { path: PathBuf, why: String },
}

/// Where changes go: nowhere (in memory), the state file's write queue, or the request's
/// transaction on a shared database ([`shared`]). Cheap to clone.
#[derive(Clone, Default)]
pub struct Sink(Target);

#[derive(Clone, Default)]
enum Target {
    #[default]
    Memory,
    File(Arc<Queue>),
    Shared(shared::Database),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Target::Memory => f.write_str("Sink(memory)"),
            Target::File(queue) => write!(f, "Sink({})", queue.path.display()),
            Target::Shared(database) => write!(f, "Sink({})", database.target()),
        }
    }
}

/// Why a change was not made durable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the state file {path} could not be written: {reason}")]
pub struct WriteFailed {
    pub path: PathBuf,
    pub reason: Arc<str>,
    /// The path no longer names the file linkbox opened: no retry will save anything, and
    /// the change is in memory only until linkbox stops.
    pub gone: bool,
}

struct Queue {
    path: PathBuf,
    pending: Mutex<Pending>,
    /// Wakes the writer thread.
    wake: Condvar,
    /// The write log, for whoever appends next ([`writer`]); `None` until the writer
    /// starts and once it has stopped.
    lead: Mutex<Option<writer::Lead>>,
    /// Changes recorded so far; a response waits until `committed` reaches the value it
    /// read.
    recorded: AtomicU64,
    progress: watch::Sender<Progress>,
    /// While a file is being loaded, its own rows are not written back.
    muted: AtomicBool,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The exclusive lock on the file, held until [`Sink::close`].
    lock: Mutex<Option<Held>>,
    /// Set by the writer when it stopped with changes the file does not have (it could not
    /// be written, a full disk, until the end): [`Sink::close`] says so.
    lost: AtomicBool,
    /// The next [`Unit`]'s number.
    units: AtomicU64,
    /// The device and inode of the file opened, to tell whether its path still names it.
    identity: (u64, u64),
    /// Set while the path names another file or none ([`Queue::in_place`]).
    gone: AtomicBool,
}

#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    closing: bool,
    /// A response left the writer thread something to do besides what is queued: a
    /// failed append to retry, or an applier to wait for.
    nudged: bool,
    /// The units with changes in `writes` that are not done yet, in the order of their
    /// first change: only what comes before the first of them may be appended.
    open: Vec<Open>,
}

/// A [`Unit`] not done yet, and where its changes start in the queue.
struct Open {
    unit: u64,
    /// The place of its first change in [`Pending::writes`].
    start: usize,
    /// The changes recorded before its first ([`Queue::recorded`]).
    before: u64,
}

impl Pending {
    /// Whether some of what is queued may be appended: it is not all held back by a unit not
    /// done yet.
    fn ready(&self) -> bool {
        !self.writes.is_empty()
            && (self.closing || self.open.first().is_none_or(|open| open.start > 0))
    }

    /// Takes what may be appended, and the count of changes recorded up to it: everything,
    /// or what comes before the first unit not done yet. Closing, everything: no request
    /// is left to finish a unit, and nothing recorded is to stay out of the file.
    fn take(&mut self, recorded: &AtomicU64, fresh: Vec<Write>) -> (Vec<Write>, u64) {
        match self.open.first() {
            Some(first) if !self.closing => {
                let (cut, upto) = (first.start, first.before);
                if cut == 0 {
                    return (Vec::new(), upto);
                }
                let rest = self.writes.split_off(cut);
                for open in &mut self.open {
                    open.start -= cut;
                }
                (std::mem::replace(&mut self.writes, rest), upto)
            }
            _ => {
                self.open.clear();
                let upto = recorded.load(Ordering::Acquire);
                (std::mem::replace(&mut self.writes, fresh), upto)
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Progress {
    committed: u64,
    failed: Option<Arc<str>>,
}

impl Sink {
    /// In memory: records nothing.
    pub fn off() -> Sink {
        Sink(Target::Memory)
    }

    /// Changes go to the shared database's transaction of the request making them.
    pub fn shared(database: shared::Database) -> Sink {
        Sink(Target::Shared(database))
    }

    /// This sink for what only a shared database keeps (faults, the journal): itself when it
    /// is a shared database's, else off (one process keeps those in memory only).
    pub fn shared_only(&self) -> Sink {
        match &self.0 {
            Target::Shared(_) => self.clone(),
            _ => Sink::off(),
        }
    }

    /// The shared database, when there is one.
    pub fn database(&self) -> Option<&shared::Database> {
        match &self.0 {
            Target::Shared(database) => Some(database),
            _ => None,
        }
    }

    /// Queues the changes `describe` lists. `describe` runs only when there is a file, and
    /// must be called inside the lock that guarded the change, so that queue order is
    /// memory order.
    pub fn record(&self, describe: impl FnOnce(&mut Changes)) {
        let queue = match &self.0 {
            Target::Memory => return,
            Target::Shared(database) => {
                let mut changes = Changes::default();
                describe(&mut changes);
                if let Some(error) = changes.error {
                    tracing::error!(%error, "a change could not be serialized");
                }
                if !changes.writes.is_empty() {
                    recorded_in(None);
                    shared::record(database, changes.writes);
                }
                return;
            }
            Target::File(queue) => queue,
        };
        if queue.muted.load(Ordering::Relaxed) {
            return;
        }
        let mut changes = Changes::default();
        describe(&mut changes);
        if let Some(error) = changes.error {
            tracing::error!(%error, "a change could not be serialized");
            queue.progress.send_modify(|progress| {
                progress.failed.get_or_insert_with(|| error.into());
            });
        }
        if changes.writes.is_empty() {
            return;
        }
        let unit = recorded_in(Some(queue));
        let first = {
            let mut pending = queue.pending.lock();
            let first = pending.writes.is_empty();
            if let Some(unit) = unit
                && !pending.open.iter().any(|open| open.unit == unit)
            {
                let open = Open {
                    unit,
                    start: pending.writes.len(),
                    before: queue.recorded.load(Ordering::Acquire),
                };
                pending.open.push(open);
            }
            pending.writes.append(&mut changes.writes);
            queue.recorded.fetch_add(1, Ordering::Release);
            first
        };
        // The writer thread appends what is still queued a moment after a batch starts
        // (what no response waits on); later changes join the batch it will find. A
        // unit's changes wait for it to be done, which wakes the writer then.
        if first && unit.is_none() {
            queue.wake.notify_one();
        }
    }

    /// Completes once every change recorded before the call is committed to the file,
    /// appending them itself when no one else is ([`writer`]: group commit). A shared
    /// database's changes are committed by the request's own transaction, so there is
    /// nothing to wait for here.
    pub async fn settled(&self) -> Result<(), WriteFailed> {
        let Target::File(queue) = &self.0 else {
            return Ok(());
        };
        let target = queue.recorded.load(Ordering::Acquire);
        let done = |progress: &Progress| progress.committed >= target || progress.failed.is_some();
        let settled = {
            let progress = queue.progress.borrow();
            done(&progress).then(|| progress.failed.clone())
        };
        let failed = match settled {
            Some(failed) => failed,
            None => queue.lead_or_wait(done).await,
        };
        match failed {
            None => Ok(()),
            Some(reason) => Err(WriteFailed {
                path: queue.path.clone(),
                reason,
                gone: queue.gone.load(Ordering::Acquire),
            }),
        }
    }

    /// Commits what is queued, checkpoints the write-ahead log into the file and stops the
    /// writer. Blocks; later changes are no longer written. `Err` when changes acknowledged
    /// in memory (answered `503 STATE_NOT_SAVED`) never reached the file: they are lost,
    /// and the process should not end as if all were well.
    pub fn close(&self) -> Result<(), Unsaved> {
        let Target::File(queue) = &self.0 else {
            return Ok(());
        };
        queue.pending.lock().closing = true;
        queue.wake.notify_one();
        let mut panicked = false;
        if let Some(writer) = queue.writer.lock().take()
            && writer.join().is_err()
        {
            tracing::error!("the state file writer panicked");
            panicked = true;
        }
        // The state this sandbox held is not at the path any longer, whatever was saved.
        let gone = queue.in_place();
        queue.lock.lock().take();
        if let Err(why) = gone {
            return Err(Unsaved::Gone {
                path: queue.path.clone(),
                why,
            });
        }
        if panicked || queue.lost.load(Ordering::Acquire) {
            return Err(Unsaved::Failed {
                path: queue.path.clone(),
            });
        }
        Ok(())
    }
}

impl Queue {
    /// Waits until `done`, appending what is queued whenever the log is free: the first
    /// response to find it free writes every change queued, its own and the others', and
    /// those wait on it. Yields to the runtime once first, so the requests its worker
    /// already has in hand queue theirs into the same frame (with a thread that did every
    /// append, and a fixed wait for batches to gather, `--state` creates ran about a tenth
    /// slower: docs/benchmarks.md). Gives the failure, if the file could not be written.
    async fn lead_or_wait(&self, done: impl Fn(&Progress) -> bool) -> Option<Arc<str>> {
        let mut receiver = self.progress.subscribe();
        tokio::task::yield_now().await;
        loop {
            {
                let progress = receiver.borrow_and_update();
                if done(&progress) {
                    return progress.failed.clone();
                }
            }
            // The lead is let go before what it did is told, so a response woken by the
            // telling can take it at once.
            let appended = self.lead.try_lock().and_then(|mut held| {
                held.as_mut()
                    .map(|lead| lead.commit(self, writer::By::Response))
            });
            match appended {
                Some(writer::Published::Deferred) => self.nudge(),
                Some(published @ writer::Published::Committed(_)) => {
                    writer::publish(self, published);
                    continue;
                }
                Some(published @ writer::Published::Failed(_)) => {
                    writer::publish(self, published);
                    self.nudge();
                    continue;
                }
                // Ours was taken by an append not yet told, or the lead is held: what it
                // tells wakes us.
                Some(writer::Published::Nothing) | None => {}
            }
            if receiver.changed().await.is_err() {
                return Some("the writer stopped".into());
            }
        }
    }

    /// Wakes the writer thread for what a response leaves it: a failed append to retry,
    /// or a busy applier to wait for.
    fn nudge(&self) {
        self.pending.lock().nudged = true;
        self.wake.notify_one();
    }

    /// Whether the path still names the file linkbox opened: the file deleted (`rm`), or
    /// another moved over it, every change would go on reaching only a file no one can
    /// open again, and a second linkbox could start on the path (the lock is the old
    /// file's). Says why not, logged once as it happens; then nothing is appended
    /// ([`writer`]), writes are answered `503 STATE_NOT_SAVED` and stopping is an error.
    /// Put back (moved back), the file is written again.
    fn in_place(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let why = match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => None,
            Ok(_) => Some("another file is at its path now".to_owned()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Some("nothing is at its path now".to_owned())
            }
            // Not known to be gone (a directory that cannot be read for a moment, say).
            Err(_) => None,
        };
        match why {
            None => {
                if self.gone.swap(false, Ordering::AcqRel) {
                    tracing::info!(path = %self.path.display(), "the state file is back at its path; writing it again");
                }
                Ok(())
            }
            Some(why) => {
                if !self.gone.swap(true, Ordering::AcqRel) {
                    tracing::error!(path = %self.path.display(), "the state file was deleted or replaced while linkbox has it open ({why}): no change can be saved from now on, and writes are answered 503 STATE_NOT_SAVED; stop linkbox (what it holds is lost) and start it again");
                }
                Err(format!(
                    "the file linkbox opened was deleted or replaced ({why}), so nothing more can be saved"
                ))
            }
        }
    }

    /// The [`Unit`] numbered `unit` is done: what it held back may be appended, and the
    /// writer thread is woken for it (the request's response most often appends it first).
    fn done(&self, unit: u64) {
        let mut pending = self.pending.lock();
        let Some(at) = pending.open.iter().position(|open| open.unit == unit) else {
            return;
        };
        pending.open.remove(at);
        if at == 0 && !pending.writes.is_empty() {
            drop(pending);
            self.wake.notify_one();
        }
    }
}

/// The exclusive lock on a state file, and the note beside it that names the holder.
///
/// The lock is an `flock` on the file itself; the note, `FILE-holder`, says `pid N on
/// HOST` so that a second sandbox refused the file can say who has it. The note is written
/// by the process that just took the lock, and removed before the lock is let go, so while
/// the file is locked its note names the holder (but for the instant between the two; a
/// note a killed process left behind is overwritten by the next holder). It is not read
/// from `/proc/locks`: that file does not list locks a network or FUSE file system keeps,
/// and hides holders in another pid namespace, which is where two containers sharing a
/// volume would meet.
struct Held {
    _file: std::fs::File,
    note: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Before `_file` closes and the lock goes with it; and only this process's note:
        // with the file deleted under it, another linkbox may hold the path's now.
        if read_holder(&self.note).is_none_or(|holder| holder == this_process()) {
            let _ = std::fs::remove_file(&self.note);
        }
    }
}

/// Where the note naming `path`'s holder is kept.
fn holder_note(path: &Path) -> PathBuf {
    beside(path, "-holder")
}

/// The file beside the state file at `path` whose name is `path`'s and `suffix`, as SQLite
/// names its `-wal`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The state file `path` names, its links followed, as SQLite follows them to name its
/// `-wal`: the write log and the holder's note go beside the same file, whatever path it is
/// reached by. Named after a link, a file reached through one and by its own path had two
/// write logs, and after a `kill -9` one start missed what the other's log held while the
/// next applied it over changes made since. Anything but a regular file is refused before
/// it is opened: a FIFO held the start for ever, and a device took SQLite's journal beside
/// it. So is a file of more than one name (hard links), which has no one path to follow.
fn resolved(path: &Path) -> Result<PathBuf, OpenError> {
    let resolved =
        std::fs::canonicalize(path).map_err(|error| OpenError::Io(path.to_owned(), error))?;
    let meta =
        std::fs::metadata(&resolved).map_err(|error| OpenError::Io(path.to_owned(), error))?;
    let kind = meta.file_type();
    if kind.is_file() {
        // Links of another kind, that no path can be followed through to the one name.
        let names = std::os::unix::fs::MetadataExt::nlink(&meta);
        if names > 1 {
            return Err(OpenError::HardLinked(path.to_owned(), names));
        }
        return Ok(resolved);
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file, but a FIFO, a socket or a device"
    };
    Err(OpenError::NotAFile(path.to_owned(), what))
}

/// How often, and how far apart, a lock held without a note is tried again.
const UNNAMED_LOCK_RETRIES: u32 = 20;
const UNNAMED_LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Takes the exclusive lock on `path`, or says who holds it.
///
/// A lock held without a note is most often one being let go: its holder removes the note
/// first, and a process forked at that instant (to start another program) holds a copy of
/// the lock until it starts it. So that one is tried again for a moment before the file is
/// refused; a lock whose note names its holder is refused at once.
fn lock(path: &Path) -> Result<Held, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|error| OpenError::Io(path.to_owned(), error))?;
    let note = holder_note(path);
    let mut retries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => {
                if let Err(error) = std::fs::write(&note, this_process()) {
                    tracing::warn!(
                        "could not write {}: {error}; a second sandbox refused this state file will not be told which process has it",
                        note.display()
                    );
                }
                return Ok(Held { _file: file, note });
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(OpenError::Io(path.to_owned(), error));
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
        }
        let holder = read_holder(&note);
        if holder.is_some() || retries == UNNAMED_LOCK_RETRIES {
            return Err(OpenError::Locked {
                path: path.to_owned(),
                holder: holder
                    .unwrap_or_else(|| "a process that has not said which it is".to_owned()),
            });
        }
        retries += 1;
        std::thread::sleep(UNNAMED_LOCK_PAUSE);
    }
}

/// `pid N on HOST`, or `pid N` where the host has no name to give.
fn this_process() -> String {
    let pid = std::process::id();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty());
    match host {
        Some(host) => format!("pid {pid} on {host}"),
        None => format!("pid {pid}"),
    }
}

/// The holder named in `note`: its first line, if it looks like one [`this_process`] wrote.
fn read_holder(note: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(note)
        .ok()?
        .take(256)
        .read_to_string(&mut text)
        .ok()?;
    let line = text.lines().next()?.trim();
    (line.starts_with("pid ") && line.chars().all(|c| !c.is_control())).then(|| line.to_owned())
}

/// A state file opened and recognised, its rows not yet read back and nothing yet written:
/// its sink records nothing until [`Opened::start`].
pub struct Opened {
    connection: rusqlite::Connection,
    queue: Arc<Queue>,
}

/// Opens (or creates) the state file at `path`. Refuses, without changing a byte, a file
/// that is not a linkbox state file or was written by a newer linkbox.
pub fn open(path: &Path) -> Result<Opened, OpenError> {
    use std::os::unix::fs::MetadataExt;
    // Locked before a byte of it is written: two sandboxes started at once on a new path
    // both made its tables, and the second took the first's for a damaged file ("table
    // meta already exists") instead of being refused naming it. A new path is an empty
    // file to lock, made a state file by `schema::open`.
    schema::make_empty(path)?;
    let path = &resolved(path)?;
    let lock = lock(path)?;
    let mut connection = schema::open(path)?;
    let identity = lock
        ._file
        .metadata()
        .map(|meta| (meta.dev(), meta.ino()))
        .map_err(|error| OpenError::Io(path.to_owned(), error))?;
    writer::recover(&mut connection, path).map_err(|error| OpenError::log(path, error))?;
    let (progress, _) = watch::channel(Progress::default());
    let queue = Arc::new(Queue {
        path: path.to_owned(),
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        lead: Mutex::new(None),
        recorded: AtomicU64::new(0),
        progress,
        muted: AtomicBool::new(true),
        writer: Mutex::new(None),
        lock: Mutex::new(Some(lock)),
        lost: AtomicBool::new(false),
        units: AtomicU64::new(0),
        identity,
        gone: AtomicBool::new(false),
    });
    Ok(Opened { connection, queue })
}

impl Opened {
    /// The sink the sandbox's pieces write through; muted until [`Opened::start`], so what
    /// is put back from the file is not written again.
    pub fn sink(&self) -> Sink {
        Sink(Target::File(self.queue.clone()))
    }

    /// Every row the file holds but the partners' state, which [`Opened::rows`] reads.
    pub fn read(&self) -> Result<Stored, OpenError> {
        load::read(&self.connection).map_err(|error| self.corrupt(error))
    }

    /// The partners' state rows ([`Table::M2M_STATE`]), one partner at a time.
    pub fn rows(&self) -> FileRows {
        FileRows::new(&self.queue.path)
    }

    /// The refusal of this file, for `reason`.
    pub fn corrupt(&self, reason: impl std::fmt::Display) -> OpenError {
        OpenError::corrupt(&self.queue.path, reason)
    }

    /// Starts writing: from now on every recorded change is appended to the write log, by
    /// the response that waits on it or by the writer thread.
    pub fn start(self) -> Result<(), OpenError> {
        let Opened {
            mut connection,
            queue,
        } = self;
        let path = queue.path.clone();
        queue.muted.store(false, Ordering::Relaxed);
        schema::start_writing(&mut connection).map_err(|error| OpenError::sql(&path, &error))?;
        let handle = std::thread::Builder::new()
            .name("linkbox-state".into())
            .spawn({
                let queue = queue.clone();
                move || writer::run(&queue, connection)
            })
            .map_err(|error| OpenError::Io(path.clone(), error))?;
        *queue.writer.lock() = Some(handle);
        tracing::info!(path = %path.display(), "state file open");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{OpenError, document, holder_note, lock};

    /// A lock held without a note (being let go) is waited for a moment; one whose note
    /// names its holder is refused at once, naming it.
    #[test]
    fn a_lock_without_a_note_is_waited_for_and_a_named_one_refused() {
        let dir = tempfile::Builder::new()
            .prefix("linkbox-lock-")
            .tempdir()
            .expect("a directory");
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"").expect("a file");
        let other = std::fs::File::open(&path).expect("opened");
        other.try_lock().expect("locked");
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(other);
        });
        let held = lock(&path).expect("taken once let go");
        letting_go.join().expect("the other holder");
        let refused = lock(&path).map(|_| ()).expect_err("held, and named");
        let OpenError::Locked { holder, .. } = refused else {
            panic!("{refused:?}");
        };
        assert!(holder.starts_with("pid "), "{holder}");
        drop(held);
        assert!(!holder_note(&path).exists(), "the note goes with the lock");
    }

    /// Two sandboxes started at once on a path where there is no file yet: one has it,
    /// and the other is refused naming it, never told the file is damaged by finding the
    /// first one's tables half made.
    #[test]
    fn two_opens_at_once_of_a_new_file_refuse_the_second_naming_the_first() {
        let dir = tempfile::Builder::new()
            .prefix("linkbox-race-")
            .tempdir()
            .expect("a directory");
        for round in 0..8 {
            let path = dir.path().join(format!("state-{round}.db"));
            let start = std::sync::Barrier::new(2);
            let (first, second) = std::thread::scope(|scope| {
                let open = || {
                    start.wait();
                    super::open(&path)
                };
                let first = scope.spawn(open);
                let second = scope.spawn(open);
                (first.join().expect("first"), second.join().expect("second"))
            });
            let (opened, refused) = match (first, second) {
                (Ok(opened), Err(refused)) | (Err(refused), Ok(opened)) => (opened, refused),
                (first, second) => {
                    panic!("round {round}: {:?} and {:?}", first.err(), second.err())
                }
            };
            assert!(
                matches!(refused, OpenError::Locked { .. }),
                "round {round}: {refused}"
            );
            drop(opened);
        }
    }

    #[test]
    fn raw_fields_follow_the_written_ones_as_the_text_they_are() {
        let fields = json!({"id": "link_1", "note": "a \"quoted\" é"});
        let doc = document(
            &fields,
            &[
                ("metadata", Some(r#"{"b":[1,2.5],"a":null}"#)),
                ("userData", None),
            ],
        );
        let doc = doc.expect("a document");
        assert_eq!(
            doc,
            r#"{"id":"link_1","note":"a \"quoted\" é","metadata":{"b":[1,2.5],"a":null},"userData":null}"#
        );
        assert_eq!(
            document(&fields, &[]).expect("a document"),
            fields.to_string()
        );
        let empty = document(&json!({}), &[("body", Some("{}"))]).expect("a document");
        assert_eq!(empty, r#"{"body":{}}"#);
        assert!(document(&json!([1]), &[("body", Some("{}"))]).is_err());
    }
}
