//! One replica of a sandbox shared through PostgreSQL (`--state postgres://…`): how a
//! request gets its turn, how this process's copy of a tenant is brought up to date before
//! the request acts on it, and how what it changed reaches the database before it is
//! answered ([`App::within`]).
//!
//! The database side is [`crate::persist::shared`]; this module adds what needs the whole
//! sandbox: putting a tenant's rows back into the store, the clock and the webhook queue
//! (`load::apply_tenant` for the rows changed since a copy's version, `load::reload_tenant`
//! for all of them), and the background catch-up ([`catch_up`]) that keeps an idle
//! replica's copy (and so its webhook engine) at most about a second behind.
//!
//! Within one process a request on a tenant waits for that tenant's turn (one of
//! `STRIPES` local locks, by a hash of its name) before it takes a database connection,
//! so many requests on one tenant queue here rather than each holding a connection while
//! the row lock makes them wait anyway; a request on everything waits for all of them.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use linkbox_contracts::timefmt;
use tokio::sync::{Mutex as TurnLock, RwLock};

use super::App;
use crate::persist::shared::{self, Database, Scope, Unavailable};

/// Local turns on tenants, by a hash of the tenant's name. Two tenants sharing one take
/// turns on this replica: at 64, one pair in 64 did, so a page view held up by its own
/// tenant's lock held up an unrelated tenant too; at 4,096 (a few hundred kilobytes of
/// mutexes), one pair in 4,096.
const STRIPES: usize = 4096;
/// How often an idle replica compares its copies with the database.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// Claims are forgotten this long after their lease ended.
const CLAIMS_KEPT: Duration = Duration::from_secs(3600);

/// What a request may touch, decided from its method, path and credentials before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Nothing kept (health, documents, a request refused before it reads anything).
    Nothing,
    /// No tenant, but the fault table and the journal: a request of no tenant to a
    /// surface a fault may strike and the journal records (a vendor API's without usable
    /// credentials, a page naming no link). It locks no tenant, reads the fault table back
    /// when another replica changed it and locks it when a fault may strike, and commits
    /// its journal entry before it is answered.
    Stranger,
    /// One tenant (a partner's slug, or `leaf:<username>`); `create` when the request may
    /// write, so a tenant's first write is locked as well.
    Tenant { name: String, create: bool },
    /// Any tenant, the clock, or the whole sandbox.
    Everything,
    /// As [`Hint::Everything`], asked by tenant `0` (a seed, a reset, a clock move by a key
    /// or a Leaf token), whose row is made first when missing: every other row is locked
    /// as it stands, and a row another request is making is not there to lock, so two
    /// requests of one new tenant would otherwise both act on it at once (two seeds of a
    /// new Leaf account giving their links the same positions).
    Caller(String),
    /// As [`Hint::Everything`], with the journal read back first (the admin's journal
    /// request).
    Journal,
    /// A tenant's journal request: its own row locked and its own journal read back. Every
    /// lock and the whole table, for a tenant who sees only its own entries, made each
    /// stranger's read of an empty journal cost every other tenant a wait.
    TenantJournal(String),
    /// The background pass catching up on one tenant: only if no request, here or on
    /// another replica, holds it now. Requests catch up on their own tenants; a pass that
    /// waited for a lock would hold this replica's turn meanwhile, and every request that
    /// needs every tenant would wait behind it (20 to 30 s, not the 10 s promised).
    CatchUp(String),
}

/// A request a fault may strike (one outside the control API): its method and path, and
/// the tenants its credentials name ([`crate::ops::identity::tenant_hint`]: its key's and
/// its Leaf token's), whose faults strike it whatever tenant it locks: a login carrying
/// another account's token, a widget page carrying another partner's key. Both, since which
/// of them is the caller is known only inside the transaction (a key refused there, its
/// partner id taken or past `--max-tenants`, leaves the token's account the caller).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    pub callers: [Option<&'a str>; 2],
}

/// This process's part in a shared sandbox.
pub struct Replica {
    database: Database,
    /// The version of the fault table memory holds (-1: none, or not what the database
    /// has). A copy read back replaces memory's only when it is of a newer version
    /// ([`App::reload_faults`]), so a read that raced a strike never takes the strike back.
    faults: parking_lot::Mutex<i64>,
    /// Held shared by a request on one tenant, exclusively by one on everything.
    everything: RwLock<()>,
    stripes: Vec<TurnLock<()>>,
}

impl Replica {
    pub(super) fn new(database: Database) -> Replica {
        Replica {
            database,
            faults: parking_lot::Mutex::new(-1),
            everything: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| TurnLock::new(())).collect(),
        }
    }

    fn stripe(&self, name: &str) -> &TurnLock<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or_default();
        &self.stripes[index]
    }

    /// Records that memory holds `versions` of these tenants.
    pub(super) fn knows(&self, versions: impl IntoIterator<Item = (String, i64)>) {
        self.database.known().lock().extend(versions);
    }

    fn forget(&self, names: &HashSet<String>) {
        let mut known = self.database.known().lock();
        for name in names {
            known.remove(name);
        }
    }
}

/// Marks the tenants a request may have changed in memory as unknown unless the request
/// committed: a failed or abandoned request leaves this replica's copy to be read back.
/// How long one step of a request's transaction (taking its locks, reading rows, writing
/// and committing) may go without an answer from the database. Past it the request is a
/// 503, its transaction dropped (its connection closed, so the server rolls it back) and
/// its tenants read back when next used: a connection cut off, or a server that stalled,
/// answers nothing at all, and without a bound the request waited for the connection's
/// idle timeout and was closed unanswered. Waiting for a lock another replica holds is
/// bounded by the server ([`crate::persist::shared`]'s `lock_timeout`). [design]
const DATABASE_STEP: Duration = Duration::from_secs(30);

/// `work`, one step of a request's transaction, within [`DATABASE_STEP`].
async fn step<T>(
    replica: &Replica,
    work: impl Future<Output = Result<T, Unavailable>>,
) -> Result<T, Unavailable> {
    tokio::time::timeout(DATABASE_STEP, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(replica)))
}

/// A step that got no answer within [`DATABASE_STEP`].
fn timed_out(replica: &Replica) -> Unavailable {
    Unavailable {
        target: replica.database.target().clone(),
        reason: format!(
            "no answer within {} s (the connection is cut off, or the server stalled)",
            DATABASE_STEP.as_secs()
        ),
        in_doubt: false,
        busy: false,
    }
}

struct Unsettled<'a> {
    replica: &'a Replica,
    /// The tenants the request locked and caught up on.
    names: HashSet<String>,
    /// The tenants its work changed in memory: also read back when next used, should
    /// nothing be committed.
    changed: HashSet<String>,
    /// Whether its work may have changed the fault table in memory (it held the table's
    /// lock): the copy is read back when next used, should nothing be committed.
    faults: bool,
    settled: bool,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.replica.forget(&self.names);
            self.replica.forget(&self.changed);
            if self.faults {
                *self.replica.faults.lock() = -1;
            }
        }
    }
}

impl App {
    /// In a sandbox shared by replicas, the username of the Leaf account whose magic link
    /// `id` is, as the database has it (`Ok(None)`: no account's, or no shared database).
    pub async fn magic_link_owner(&self, id: &str) -> Result<Option<String>, Unavailable> {
        match &self.replica {
            Some(replica) => replica.database.magic_link_owner(id).await,
            None => Ok(None),
        }
    }

    /// Runs `work` as one transaction of the shared database when there is one: with the
    /// locks `hint` names taken, this replica's copy of every tenant they cover brought up
    /// to date, and what `work` changed committed before it returns. Without a database it
    /// just runs `work`.
    ///
    /// Every request of every sandbox passes through here, so the shared database's part
    /// (its locks, reads and transaction: tens of kilobytes of future) is boxed and only
    /// built when it runs. Inline, it sized every request's future for it, and each request
    /// paid for copying that size a few times over.
    /// It is a plain function for the same reason: an `async fn` would hold `work` twice.
    pub fn within<'a, F: Future + 'a>(
        &'a self,
        hint: &'a Hint,
        work: F,
    ) -> impl Future<Output = Result<F::Output, Unavailable>> + 'a {
        self.within_request(hint, None, work)
    }

    /// As [`App::within`], for a request to `target`, which a fault may strike: the fault
    /// table is locked for it only when a fault in force matches it.
    pub fn within_request<'a, F: Future + 'a>(
        &'a self,
        hint: &'a Hint,
        target: Option<Target<'a>>,
        work: F,
    ) -> impl Future<Output = Result<F::Output, Unavailable>> + 'a {
        use futures_util::FutureExt;
        use futures_util::future::Either;
        match &self.replica {
            Some(replica) if *hint != Hint::Nothing => {
                Either::Left(Box::pin(self.within_database(replica, hint, target, work)))
            }
            _ => Either::Right(work.map(Ok)),
        }
    }

    async fn within_database<F: Future>(
        &self,
        replica: &Replica,
        hint: &Hint,
        target: Option<Target<'_>>,
        work: F,
    ) -> Result<F::Output, Unavailable> {
        let (scope, _everything, _turn) = match hint {
            Hint::Nothing => return Ok(work.await),
            Hint::Stranger => (
                Scope::Stranger,
                Turn::Shared(replica.everything.read().await),
                None,
            ),
            Hint::Tenant { name, create } => (
                Scope::Tenant {
                    name,
                    create: *create,
                },
                Turn::Shared(replica.everything.read().await),
                Some(replica.stripe(name).lock().await),
            ),
            Hint::TenantJournal(name) => (
                Scope::Tenant {
                    name,
                    create: false,
                },
                Turn::Shared(replica.everything.read().await),
                Some(replica.stripe(name).lock().await),
            ),
            Hint::Everything | Hint::Journal => (
                Scope::Everything,
                Turn::Exclusive(replica.everything.write().await),
                None,
            ),
            Hint::Caller(name) => (
                Scope::EverythingFor(name),
                Turn::Exclusive(replica.everything.write().await),
                None,
            ),
            Hint::CatchUp(name) => {
                let (Ok(turn), Ok(stripe)) = (
                    replica.everything.try_read(),
                    replica.stripe(name).try_lock(),
                ) else {
                    return Ok(work.await);
                };
                (Scope::Unheld(name), Turn::Shared(turn), Some(stripe))
            }
        };
        let (txn, locked) = step(replica, replica.database.begin(scope)).await?;
        self.sync_clock(&locked.clock);
        let mut unsettled = Unsettled {
            replica,
            names: locked.versions.keys().cloned().collect(),
            changed: HashSet::new(),
            faults: false,
            settled: false,
        };
        if let Hint::Tenant { name, .. } = hint
            && !locked.versions.contains_key(name)
        {
            unsettled.names.insert(name.clone());
            // The database has nothing of the tenant, so nothing a copy here holds was
            // committed: a first write rolled back (its 503 said nothing was changed).
            if self.holds(name) {
                let nothing = crate::persist::Stored::default();
                shared::muted(|| super::load::reload_tenant(self, name, &nothing));
            }
        }
        self.catch_up_behind(replica, &txn, &locked).await?;
        // A tenant's first write, where `--max-tenants` bounds how many there are: one new
        // tenant at a time across replicas (the sandbox row's lock, held to the commit), with
        // every tenant the database has in this replica's copy first, so the store counts
        // them all. Counting only the tenants a replica had caught up on, a burst of new keys
        // spread over the replicas passed the bound by as many as came at once. A first
        // write is one by a tenant the database has nothing of once this copy has caught up
        // on it: a new key, or one an admin reset forgot (its `tenants` row outlives it).
        // A control request's first write (a fault, a webhook config, a seed) has the sandbox
        // row already, but read the tenants' list before it had it: the list is read again,
        // or first writes on other replicas committed meanwhile went uncounted.
        let first_write = match hint {
            Hint::Tenant { name, create: true } => Some((name, true)),
            Hint::Caller(name) => Some((name, false)),
            _ => None,
        };
        if let Some((name, lock)) = first_write
            && self.settings.max_tenants.is_some()
            && !self.has_tenant(name)
        {
            if lock {
                step(replica, txn.lock_faults()).await?;
            }
            let seen = step(replica, txn.tenant_versions()).await?;
            self.catch_up_behind(replica, &txn, &seen).await?;
        }
        // A partner's rate-limit windows are counted in the database, by every replica.
        if let Hint::Tenant { name, .. } = hint
            && self.settings.rate_limits == crate::config::RateLimits::Documented
            && let Some(partner) = self.store.m2m().by_slug(name)
        {
            let rows = step(replica, txn.rate_windows(name)).await?;
            partner.set_windows(rows.iter().filter_map(|row| {
                Some((
                    row.id == "create",
                    i64::try_from(row.position).ok()?,
                    row.doc.parse().ok()?,
                ))
            }));
        }
        // The fault table: read back when another replica changed it, and locked when it
        // may strike this request, so `times` counts across replicas.
        let mut faults = locked.faults;
        let tenant = match hint {
            Hint::Tenant { name, .. } => Some(name.as_str()),
            _ => None,
        };
        // Locked already, or (the background pass, the control API) never struck by a fault.
        let faults_locked = matches!(
            hint,
            Hint::Everything
                | Hint::Journal
                | Hint::TenantJournal(_)
                | Hint::Caller(_)
                | Hint::CatchUp(_)
        );
        let journal = match hint {
            Hint::Journal => Some(None),
            Hint::TenantJournal(name) => Some(Some(name.as_str())),
            _ => None,
        };
        if let Some(tenant) = journal {
            let rows = step(replica, txn.journal_rows(tenant)).await?;
            super::load::reload_journal(self, tenant, rows);
        }
        if faults != *replica.faults.lock() {
            step(replica, self.reload_faults(&txn)).await?;
        }
        // A request of no tenant may carry a tenant's credentials all the same (a key on
        // `/openapi.json`): any tenant's fault may strike it.
        // The faults that strike a request are its caller's, which need not be the tenant
        // it locks (a login locks the account its body names): counted only under the
        // tenant's name, a caller's fault struck without the table's lock, `times` over.
        let strikable = target.is_some_and(|target| match hint {
            Hint::Stranger => self.faults.may_strike_anyone(target.method, target.path),
            _ => {
                self.faults.may_strike(target.method, target.path, tenant)
                    || target.callers.iter().any(|caller| {
                        caller.is_some()
                            && *caller != tenant
                            && self.faults.may_strike(target.method, target.path, *caller)
                    })
            }
        });
        if !faults_locked && strikable {
            faults = step(replica, txn.lock_faults()).await?;
            if faults != *replica.faults.lock() {
                step(replica, self.reload_faults(&txn)).await?;
            }
        }
        // A request that took no fault lock strikes no fault: the copy of the table may read
        // one back meanwhile (another request of this replica's), but only the lock counts
        // its `times` across replicas.
        unsettled.faults = faults_locked || strikable;
        let (output, writes) = shared::scoped(unsettled.faults, work).await;
        unsettled.changed = writes.tenants().into_iter().collect();
        // A request that locked one tenant commits changes of that tenant only: one of
        // another was made on a copy that may be stale, without its lock. That is a bug
        // (a page once read its tenant off an id its route decoded otherwise); nothing of
        // it is committed, and the copies it changed are read back.
        let only = match hint {
            Hint::Tenant { name, .. } | Hint::TenantJournal(name) => Some(Some(name)),
            Hint::Stranger => Some(None),
            _ => None,
        };
        if let Some(name) = only
            && let Some(other) = unsettled.changed.iter().find(|other| Some(*other) != name)
        {
            let name = name.map_or("none", String::as_str);
            tracing::error!(locked = %name, changed = %other, "a request changed a tenant it had not locked: nothing of it was committed");
            let refused = Unavailable {
                target: replica.database.target().clone(),
                reason: format!("the request changed tenant {other} but locked only {name}"),
                in_doubt: false,
                busy: false,
            };
            let _ = tokio::time::timeout(DATABASE_STEP, txn.rollback()).await;
            return Err(refused);
        }
        if writes.is_empty() {
            // Not waited for past the step's deadline: dropped, the transaction closes its
            // connection and the server rolls it back.
            let _ = tokio::time::timeout(DATABASE_STEP, txn.rollback()).await;
            unsettled.settled = true;
            return Ok(output);
        }
        // A commit that times out may have been made before its answer was lost.
        let committed = tokio::time::timeout(DATABASE_STEP, txn.commit(writes))
            .await
            .unwrap_or_else(|_| {
                Err(Unavailable {
                    in_doubt: true,
                    ..timed_out(replica)
                })
            })?;
        // Memory holds exactly what was committed for the tenants this request had caught
        // up; any other tenant it touched is read back when next used.
        replica.knows(
            committed
                .versions
                .into_iter()
                .filter(|(name, _)| unsettled.names.contains(name)),
        );
        // Memory holds the fault table's version `faults` and this request's changes to it,
        // which is the version committed: no read-back came between, as none is of a newer
        // version than `faults` while the request holds the table's lock. One that came
        // after the commit is of the committed version, or newer.
        if let Some(committed) = committed.faults {
            let mut copy = replica.faults.lock();
            if *copy == faults {
                *copy = committed;
            }
        }
        unsettled.settled = true;
        Ok(output)
    }

    /// Brings this process's copy of every tenant `seen` names up to the version read
    /// there, where it is behind.
    async fn catch_up_behind(
        &self,
        replica: &Replica,
        txn: &shared::Txn,
        seen: &shared::Locked,
    ) -> Result<(), Unavailable> {
        let behind: Vec<(String, i64)> = {
            let known = replica.database.known().lock();
            seen.versions
                .iter()
                .filter(|(name, version)| known.get(*name) != Some(version))
                .map(|(name, version)| (name.clone(), *version))
                .collect()
        };
        for (name, version) in behind {
            step(replica, self.catch_up_tenant(txn, seen, &name)).await?;
            replica.knows([(name, version)]);
        }
        Ok(())
    }

    /// Whether tenant `name` is in this process's tables: a partner or a Leaf account, made
    /// or read back; a stranger (a key or username that has only read) is not.
    fn has_tenant(&self, name: &str) -> bool {
        match name.strip_prefix("leaf:") {
            Some(username) => self.store.leaf().existing(username).is_some(),
            None => self.store.m2m().by_slug(name).is_some(),
        }
    }

    /// Whether this process's memory holds anything of tenant `name`: an open-mode
    /// partner or account, or a configured one's links, users or magic links.
    fn holds(&self, name: &str) -> bool {
        self.has_tenant(name)
            && self
                .store
                .m2m()
                .by_slug(name)
                .is_none_or(|partner| partner.is_open() || partner.link_count() > 0)
    }

    /// Brings this process's copy of tenant `name` to the version `locked` read: only the
    /// rows written since the copy's version when no row was deleted meanwhile, else (or
    /// when those do not fit the copy) every row.
    async fn catch_up_tenant(
        &self,
        txn: &shared::Txn,
        locked: &shared::Locked,
        name: &str,
    ) -> Result<(), Unavailable> {
        let replica = self.replica.as_ref();
        let since = replica
            .and_then(|replica| replica.database.known().lock().get(name).copied())
            .filter(|known| {
                locked
                    .cleared
                    .get(name)
                    .is_none_or(|cleared| cleared <= known)
            });
        if let Some(since) = since {
            let rows = txn.rows_since(name, Some(since)).await?;
            match shared::muted(|| super::load::apply_tenant(self, name, &rows)) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::warn!(tenant = name, %error, "changed rows did not fit this replica's copy; reading the tenant back whole");
                }
            }
        }
        let rows = txn.tenant_rows(name).await?;
        shared::muted(|| super::load::reload_tenant(self, name, &rows));
        Ok(())
    }

    /// Reads the fault table back into memory when the database's is of a newer version than
    /// memory's. A read that is not newer is dropped: it may have been made before a strike
    /// this replica is committing, and put back, the strike would be taken back and the
    /// fault fire once more than its `times` (a read made without the table's lock, by the
    /// background pass or a request no fault matched, raced the holder of the lock).
    async fn reload_faults(&self, txn: &shared::Txn) -> Result<(), Unavailable> {
        let (rows, version) = txn.fault_rows().await?;
        let Some(replica) = &self.replica else {
            return Ok(());
        };
        let mut copy = replica.faults.lock();
        if version > *copy {
            shared::muted(|| super::load::reload_faults(self, &rows));
            *copy = version;
        }
        Ok(())
    }

    /// Sets the sandbox clock to the database's reading when it differs.
    fn sync_clock(&self, (offset_ms, frozen_at): &(i64, Option<String>)) {
        let frozen_at = frozen_at.as_deref().and_then(timefmt::parse);
        let offset = time::Duration::milliseconds(*offset_ms);
        if self.clock.setting() != (offset, frozen_at) {
            self.clock.restore(offset, frozen_at);
        }
    }
}

/// A local turn held for the length of a request.
enum Turn<'a> {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// Keeps `app`'s copies and clock at most about [`CATCH_UP_EVERY`] behind the database
/// while nothing asks for them, so the webhook engine sees other replicas' deliveries and
/// clock moves; runs until `shutdown` completes.
pub async fn catch_up(app: App, shutdown: impl Future<Output = ()>) {
    let Some(replica) = app.replica.clone() else {
        return;
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(CATCH_UP_EVERY) => {}
        }
        ticks += 1;
        match replica.database.poll().await {
            Ok((versions, clock)) => {
                app.sync_clock(&clock);
                let stale: Vec<String> = {
                    let known = replica.database.known().lock();
                    versions
                        .into_iter()
                        .filter(|(name, version)| known.get(name) != Some(version))
                        .map(|(name, _)| name)
                        .collect()
                };
                for name in stale {
                    let hint = Hint::CatchUp(name);
                    if let Err(error) = app.within(&hint, async {}).await {
                        tracing::warn!(%error, "catching up with the database failed");
                        break;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "catching up with the database failed"),
        }
        if ticks.is_multiple_of(5)
            && let Err(error) = replica
                .database
                .trim_journal(
                    app.journal.capacity(),
                    crate::journal::SHARED_ROWS,
                    linkbox_contracts::sandbox::JOURNAL_MAX_BYTES,
                )
                .await
        {
            tracing::warn!(%error, "the shared journal could not be trimmed");
        }
        if ticks.is_multiple_of(60)
            && let Err(error) = replica.database.forget_claims(CLAIMS_KEPT).await
        {
            tracing::warn!(%error, "old webhook claims could not be forgotten");
        }
    }
}
