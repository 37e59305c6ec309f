//! Each tenant's storage budget (`--max-tenant-mib`): how much of what a client sends a
//! partner or a Leaf account may keep, so one tenant of a shared sandbox cannot fill the
//! machine's memory (or its state file) for everyone else.
//!
//! A tenant's state is *counted*, not measured: each link and user weighs a fixed base (what
//! its record and index entries take, about what a bare one costs in memory) plus the bytes
//! of every text a client gave it — `metadata`, `userData`, `referenceId`, theme, callback
//! URL, revoke reason; a Leaf user's fields and provider credentials; a magic link's settings.
//! The count is kept as the state changes (creates, merges, revokes, deletes, snapshot
//! restores, rows loaded from a state file or another replica) and read in O(1) by a write
//! that adds to it. A write that would take the count past the budget is refused before it
//! changes anything; reads, deletes and everything else go on. A reset empties the count.
//!
//! The whole sandbox has a budget too (`--max-stored-mib`, [`Ceiling`]): the tenants'
//! counts summed, so keys made up by the thousand cannot each fill their own budget until
//! the machine runs out of memory and everyone loses everything. The sum is taken by a
//! thread of its own every [`RECOUNT_MS`] ms, and never more often than a hundred times as
//! long as the last sum took, nor less often than once a second: with keys by the hundred
//! thousand a sum takes milliseconds, and it stays a hundredth of one core (a sum slowed by
//! a busy machine does not put the next far off). No request waits for it. What a write is
//! admitted to add is counted at once as *pending* until the next sum has seen it, so writes
//! between two sums, however many a busy machine lets through, cannot pass the budget. Its
//! last eighth is kept for tenants below their share ([`Ceiling`]), so one tenant cannot fill
//! it for everyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A write that would take its tenant, or the whole sandbox, past its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageFull {
    pub tenant: Tenant,
    pub limit_mib: u64,
    /// The sandbox's budget (`--max-stored-mib`), not the tenant's.
    pub whole: bool,
    /// Refused in the sandbox's reserve ([`Ceiling`]): the share, in bytes, a tenant may
    /// hold and still write there.
    pub share: Option<u64>,
}

impl std::fmt::Display for StorageFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(share) = self.share.filter(|_| self.whole) {
            let share = if share >= 1024 * 1024 {
                format!("{} MiB", share / (1024 * 1024))
            } else {
                format!("{} KiB", share / 1024)
            };
            write!(
                f,
                "This sandbox holds nearly {} MiB across its tenants, the most it may store \
                 (--max-stored-mib), and its last eighth is kept for tenants holding less \
                 than their share ({share} each); this {} holds more. Nothing was stored. {}",
                self.limit_mib,
                self.tenant.name(),
                self.tenant.remedy()
            )
        } else if self.whole {
            write!(
                f,
                "This sandbox would hold more than {} MiB across its tenants, the most it may \
                 store (--max-stored-mib); nothing was stored. Tenants that reset (POST \
                 /_sandbox/reset) make room for everyone",
                self.limit_mib
            )
        } else {
            write!(
                f,
                "This {} would hold more than {} MiB in this sandbox, the most one tenant may \
                 store (--max-tenant-mib); nothing was stored. {}",
                self.tenant.name(),
                self.limit_mib,
                self.tenant.remedy()
            )
        }
    }
}

impl std::error::Error for StorageFull {}

/// The kind of tenant a budget is for: what the refusal calls it, and how it makes room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant {
    Partner,
    LeafAccount,
}

impl Tenant {
    fn name(self) -> &'static str {
        match self {
            Tenant::Partner => "partner",
            Tenant::LeafAccount => "Leaf account",
        }
    }

    /// A partner's links are never deleted, only reset; a Leaf account's users and links
    /// are.
    fn remedy(self) -> &'static str {
        match self {
            Tenant::Partner => "Reset it (POST /_sandbox/reset) to store more",
            Tenant::LeafAccount => {
                "Delete some of its users or magic links, or reset it (POST /_sandbox/reset), to store more"
            }
        }
    }
}

/// How many slices a shared cap's reserve (its last eighth) is cut into: in it a tenant may
/// hold at most one, a 512th of the cap ([`reserve_allows`]). [design]
pub const RESERVE_SLICES: u64 = 64;

/// The share a tenant may hold and still write in a shared cap's reserve (its last eighth):
/// the cap over one more tenant than the `holders` that hold anything (the next to come has
/// a share too), and at most a slice of the reserve ([`RESERVE_SLICES`]).
///
/// The reserve is there so that one tenant, or a few, filling a cap that all share (the
/// stored state, the faults, the pending deliveries) leave room for everyone else. With
/// the share alone, the tenants that happened to be below it while the cap filled (a few
/// made-up keys, each loading data) took the reserve too, and every other tenant was then
/// refused. With the slice, it takes [`RESERVE_SLICES`] tenants to fill it, while a small
/// tenant (a teammate's few links) still writes. [design]
pub fn reserve_share(cap: u64, holders: u64) -> u64 {
    (cap / holders.saturating_add(1)).min((cap / 8 / RESERVE_SLICES).max(1))
}

/// Whether a write that takes a shared cap's total to `after`, and its tenant's part of it
/// to `held_after`, fits: anyone's within seven eighths of `cap`, and in the last eighth
/// only a tenant that stays within [`reserve_share`]. `holders` counts the tenants holding
/// anything.
pub fn reserve_allows(cap: u64, after: u64, held_after: u64, holders: u64) -> bool {
    after <= cap && (after <= cap - cap / 8 || held_after <= reserve_share(cap, holders))
}

/// How often the sandbox's tenants are summed, at most.
pub const RECOUNT_MS: u64 = 100;
/// The longest pause between two sums, however long the last took.
const MOST_PAUSE: Duration = Duration::from_secs(1);

/// The whole sandbox's budget (`--max-stored-mib`), shared by every tenant's [`Budget`]:
/// checked against the tenants' counts summed by a thread of its own ([`Ceiling::sum_with`]),
/// so no request waits for a sum.
///
/// Its last eighth is a reserve: past seven eighths, only a tenant that would still hold
/// no more than its share ([`reserve_share`]: the budget divided among the tenants holding
/// anything and one more, and at most a 512th of it) may write. One tenant filling the
/// sandbox (its own budget may be as large as the sandbox's), or a few, thus stop at seven
/// eighths, and the others go on writing. [design]
pub struct Ceiling {
    bytes: u64,
    /// The sum last taken.
    counted: AtomicU64,
    /// What writes were admitted to add since before the last sum began: a write the sum
    /// has not seen yet is counted here, so the budget holds between sums however fast
    /// writes come. A write admitted while a sum runs may be counted twice, here and in
    /// the sum, until the next sum: the budget errs on the side of refusing.
    pending: AtomicU64,
    /// How many tenants held anything at the last sum.
    holders: AtomicU64,
    /// Whether the thread that sums is running: without it nothing is checked (and nothing
    /// pending would ever be let go).
    summing: AtomicBool,
}

/// What a sum of every tenant found ([`Ceiling::sum_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summed {
    /// What they hold together, counted.
    pub bytes: u64,
    /// How many hold anything.
    pub holders: u64,
}

impl std::fmt::Debug for Ceiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceiling")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Ceiling {
    /// `mib` MiB for the whole sandbox; nothing is summed until [`Ceiling::sum_with`].
    pub fn new(mib: u64) -> Arc<Ceiling> {
        Arc::new(Ceiling {
            bytes: mib.saturating_mul(1024 * 1024),
            counted: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            holders: AtomicU64::new(0),
            summing: AtomicBool::new(false),
        })
    }

    /// No ceiling: a store made on its own (tests, tools).
    pub fn none() -> Arc<Ceiling> {
        Ceiling::new(u64::MAX)
    }

    /// Sums what every tenant holds with `sum` on a thread of its own, every [`RECOUNT_MS`]
    /// or, when a sum takes longer than a hundredth of that, a hundred times as long as the
    /// last one took, up to a second (with keys by the hundred thousand a sum takes
    /// milliseconds: it stays a hundredth of one core). `sum` returns `None` once the store
    /// is gone, and the thread ends.
    pub fn sum_with(self: &Arc<Self>, sum: impl Fn() -> Option<Summed> + Send + 'static) {
        if self.bytes == u64::MAX {
            return;
        }
        let ceiling = Arc::downgrade(self);
        self.summing.store(true, Ordering::Release);
        let spawned = std::thread::Builder::new()
            .name("linkbox-stored".into())
            .spawn(move || {
                let mut pause = Duration::from_millis(RECOUNT_MS);
                loop {
                    std::thread::sleep(pause);
                    let started = Instant::now();
                    // What was pending before the sum began: a write holds its tenant's
                    // lock from its admission until it has changed the tenant, so the sum,
                    // reading each tenant under its lock, sees it. (A new Leaf account
                    // admitted but not yet recorded as the sum passes is counted by
                    // neither until the next sum: a tenant's weight, a moment.)
                    let Some(seen) = ceiling
                        .upgrade()
                        .map(|ceiling| ceiling.pending.load(Ordering::Acquire))
                    else {
                        return;
                    };
                    let (Some(total), Some(ceiling)) = (sum(), ceiling.upgrade()) else {
                        return;
                    };
                    ceiling.counted.store(total.bytes, Ordering::Release);
                    ceiling.pending.fetch_sub(seen, Ordering::AcqRel);
                    ceiling.holders.store(total.holders, Ordering::Release);
                    // At most a second: one sum slowed by a busy machine (20 ms) put the
                    // next 2 s away, and writes meanwhile passed a 16 MiB budget 2.4 times.
                    pause = (started.elapsed() * 100)
                        .clamp(Duration::from_millis(RECOUNT_MS), MOST_PAUSE);
                }
            });
        if let Err(error) = spawned {
            self.summing.store(false, Ordering::Release);
            tracing::error!(%error, "the thread that sums what tenants store did not start: --max-stored-mib is not checked");
        }
    }

    /// What every tenant held together at the last sum, and what writes were admitted to
    /// add since (at most: a write's admission counts the most it may add).
    pub fn total(&self) -> u64 {
        self.counted
            .load(Ordering::Acquire)
            .saturating_add(self.pending.load(Ordering::Acquire))
    }

    /// [`Ceiling::allows`] a write, and counts it as pending until the next sum: for a write
    /// about to be made, under its tenant's lock.
    fn admits(&self, tenant: Tenant, stored: u64, more: u64) -> Result<(), StorageFull> {
        self.allows(tenant, stored, more)?;
        if self.bytes != u64::MAX && self.summing.load(Ordering::Acquire) {
            self.pending.fetch_add(more, Ordering::AcqRel);
        }
        Ok(())
    }

    /// `Ok` when the sandbox may store `more` for a tenant holding `stored`: anyone's below
    /// seven eighths, in the last eighth only a tenant that stays within its share.
    fn allows(&self, tenant: Tenant, stored: u64, more: u64) -> Result<(), StorageFull> {
        let after = self.total().saturating_add(more);
        if self.bytes == u64::MAX || after <= self.bytes - self.bytes / 8 {
            return Ok(());
        }
        let holders = self.holders.load(Ordering::Acquire);
        let share = reserve_share(self.bytes, holders);
        if reserve_allows(self.bytes, after, stored.saturating_add(more), holders) {
            return Ok(());
        }
        Err(StorageFull {
            tenant,
            limit_mib: self.bytes / (1024 * 1024),
            whole: true,
            share: (after <= self.bytes).then_some(share),
        })
    }
}

/// One tenant's budget, in counted bytes, and the sandbox's it shares.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: u64,
    tenant: Tenant,
    ceiling: Arc<Ceiling>,
}

impl Budget {
    /// `mib` MiB for a tenant of kind `tenant`, under `ceiling`.
    pub fn new(mib: u64, tenant: Tenant, ceiling: Arc<Ceiling>) -> Budget {
        Budget {
            bytes: mib.saturating_mul(1024 * 1024),
            tenant,
            ceiling,
        }
    }

    /// `Ok` when a tenant holding `stored` may add `more`, and the whole sandbox may too
    /// (as of the last sum and what was admitted since: a read of two numbers, so it may
    /// be asked under the tenant's lock). What is admitted is counted against the
    /// sandbox's budget at once: asked by a write about to be made, under its tenant's
    /// lock (a check before a write is [`Budget::allows`]).
    pub fn admits(&self, stored: u64, more: u64) -> Result<(), StorageFull> {
        // A write that adds nothing (a revoke without a reason, a replace that shrinks)
        // is never refused, however full the tenant or the sandbox.
        if more == 0 {
            return Ok(());
        }
        if stored.saturating_add(more) > self.bytes {
            return Err(self.full());
        }
        self.sandbox_admits(stored, more)
    }

    /// What [`Budget::admits`] would answer, counting nothing: a check before writes that
    /// are each admitted as they are made.
    pub fn allows(&self, stored: u64, more: u64) -> Result<(), StorageFull> {
        if more == 0 {
            return Ok(());
        }
        if stored.saturating_add(more) > self.bytes {
            return Err(self.full());
        }
        self.ceiling.allows(self.tenant, stored, more)
    }

    /// `Ok` when the whole sandbox may store `more` for a tenant holding `stored`, as of
    /// the last sum and what was admitted since; counted as admitted.
    fn sandbox_admits(&self, stored: u64, more: u64) -> Result<(), StorageFull> {
        self.ceiling.admits(self.tenant, stored, more)
    }

    /// `Ok` when the sandbox has room for one more tenant ([`TENANT_WEIGHT`]).
    pub fn admits_tenant(&self) -> Result<(), StorageFull> {
        self.sandbox_admits(0, TENANT_WEIGHT)
    }

    /// The refusal, naming the tenant's budget.
    pub fn full(&self) -> StorageFull {
        StorageFull {
            tenant: self.tenant,
            limit_mib: self.bytes / (1024 * 1024),
            whole: false,
            share: None,
        }
    }
}

/// What a tenant itself is counted as in the sandbox's sum (`--max-stored-mib`), whatever
/// it holds: its record, tables, windows and secret, about what an empty partner or Leaf
/// account costs in memory. Without it, keys or usernames made up by the hundred thousand,
/// each writing a setting and nothing else, were counted as holding nothing and grew the
/// sandbox without bound. A new tenant is admitted only while the sandbox has room for it.
pub const TENANT_WEIGHT: u64 = 1024;

/// A text's bytes, counted.
pub fn text(text: Option<&str>) -> u64 {
    text.map_or(0, |text| text.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_admits_up_to_its_size_and_names_it_past_that() {
        let budget = Budget::new(1, Tenant::Partner, Ceiling::none());
        assert_eq!(budget.admits(0, 1024 * 1024), Ok(()));
        assert_eq!(budget.admits(1024 * 1024 - 10, 10), Ok(()));
        let full = budget.admits(1024 * 1024 - 10, 11).unwrap_err();
        assert_eq!(full.limit_mib, 1);
        let message = full.to_string();
        assert!(
            message.starts_with("This partner would hold more than 1 MiB"),
            "{message}"
        );
        assert!(message.contains("--max-tenant-mib"), "{message}");
        assert!(
            message.ends_with("Reset it (POST /_sandbox/reset) to store more"),
            "{message}"
        );
        let leaf = Budget::new(1, Tenant::LeafAccount, Ceiling::none())
            .full()
            .to_string();
        assert!(leaf.starts_with("This Leaf account would hold"), "{leaf}");
        assert!(
            leaf.contains("Delete some of its users or magic links"),
            "{leaf}"
        );
        assert_eq!(
            Budget::new(u64::MAX, Tenant::Partner, Ceiling::none()).admits(u64::MAX, 1),
            Ok(())
        );
    }

    /// A few tenants filling a shared cap leave its reserve to everyone else: the reserve
    /// takes [`RESERVE_SLICES`] tenants to fill.
    #[test]
    fn a_few_fillers_do_not_take_the_reserve() {
        let cap = 32u64 << 20;
        // Five tenants fill it, each writing 1 KiB at a time while the cap lets it.
        let mut held = [0u64; 5];
        let mut total = 0;
        for (n, tenant) in held.iter_mut().enumerate() {
            while reserve_allows(cap, total + 1024, *tenant + 1024, n as u64 + 1) {
                *tenant += 1024;
                total += 1024;
            }
        }
        assert!(
            total <= cap - cap / 8 + 5 * (cap / 8 / RESERVE_SLICES),
            "{total}"
        );
        // A quiet tenant holding three links still writes.
        assert!(reserve_allows(cap, total + 2048, 4096, 6));
    }

    /// Past seven eighths of the sandbox's budget, only a tenant that stays within its share
    /// may write; past the whole of it, nobody.
    #[test]
    fn the_last_eighth_is_kept_for_tenants_below_their_share() {
        const MIB: u64 = 1024 * 1024;
        let ceiling = Ceiling::new(1024);
        let budget = Budget::new(1024, Tenant::Partner, ceiling.clone());
        // Below seven eighths, anyone.
        ceiling.counted.store(800 * MIB, Ordering::Relaxed);
        ceiling.holders.store(2, Ordering::Relaxed);
        assert_eq!(budget.admits(800 * MIB, 50 * MIB), Ok(()));
        // In the last eighth: one tenant holds anything; with the next to come, a share is
        // 512 MiB, but no tenant holds more than a 512th of the budget (2 MiB) there.
        ceiling.holders.store(1, Ordering::Relaxed);
        ceiling.counted.store(900 * MIB, Ordering::Relaxed);
        let refused = budget.admits(900 * MIB, 1).expect_err("past its share");
        assert!(refused.whole);
        assert_eq!(refused.share, Some(2 * MIB));
        let message = refused.to_string();
        assert!(message.contains("last eighth"), "{message}");
        assert!(message.contains("(2 MiB each)"), "{message}");
        assert!(message.contains("this partner holds more"), "{message}");
        assert_eq!(budget.admits(MIB, MIB / 2), Ok(()), "within its share");
        // A write that adds nothing (a revoke without a reason) is never refused.
        assert_eq!(budget.admits(900 * MIB, 0), Ok(()), "adds nothing");
        assert_eq!(
            Budget::new(1, Tenant::Partner, ceiling.clone()).admits(2 * MIB, 0),
            Ok(()),
            "a tenant past its own budget adds nothing"
        );
        assert!(budget.admits(MIB, MIB + 1).is_err(), "past the slice");
        // Many holders: the share is the smaller.
        ceiling.holders.store(1023, Ordering::Relaxed);
        assert!(
            budget.admits(MIB / 2, MIB / 2 + 1).is_err(),
            "past a 1024th"
        );
        // Past the whole budget, nobody.
        ceiling.holders.store(1, Ordering::Relaxed);
        let refused = budget
            .admits(MIB / 2, 200 * MIB)
            .expect_err("past the whole");
        assert_eq!(refused.share, None);
        assert!(
            refused
                .to_string()
                .contains("would hold more than 1024 MiB")
        );
    }

    /// The sandbox's budget reads the tenants' sum, taken by a thread of its own every
    /// [`RECOUNT_MS`]; a refusal names `--max-stored-mib`; the thread ends with the store.
    #[test]
    fn the_sandbox_budget_reads_a_sum_taken_beside_the_requests() {
        let ceiling = Ceiling::new(1);
        let held = Arc::new(AtomicU64::new(0));
        let store = Arc::new(());
        let (counted, alive) = (held.clone(), Arc::downgrade(&store));
        // Held by the thread's closure: back to one owner once the thread has ended.
        let token = Arc::new(());
        let held_by_thread = token.clone();
        ceiling.sum_with(move || {
            let _ = &held_by_thread;
            alive.upgrade().map(|_| Summed {
                bytes: counted.load(Ordering::Relaxed),
                holders: 1,
            })
        });
        let budget = Budget::new(1, Tenant::Partner, ceiling.clone());
        assert_eq!(budget.allows(0, 512 * 1024), Ok(()));
        held.store(1024 * 1024, Ordering::Relaxed);
        let waited = Instant::now();
        while budget.allows(0, 1).is_ok() {
            assert!(waited.elapsed() < Duration::from_secs(5), "never summed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let full = budget
            .sandbox_admits(0, 1)
            .expect_err("the sandbox is full");
        assert!(full.whole);
        let message = full.to_string();
        assert!(message.contains("--max-stored-mib"), "{message}");
        assert!(
            message.starts_with("This sandbox would hold more than 1 MiB"),
            "{message}"
        );
        assert_eq!(budget.allows(0, 0), Ok(()));
        // The store gone, the thread ends.
        drop(store);
        let waited = Instant::now();
        while Arc::strong_count(&token) > 1 {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "the thread went on"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            Budget::new(1, Tenant::Partner, Ceiling::none()).sandbox_admits(0, u64::MAX),
            Ok(())
        );
    }

    /// What a write is admitted to add counts against the sandbox's budget at once, before
    /// any sum has seen it: writes between two sums, however many, cannot pass it. Once a
    /// sum has been taken, what it saw is no longer pending; a check counts nothing.
    #[test]
    fn writes_between_two_sums_cannot_pass_the_sandbox_budget() {
        const KIB: u64 = 1024;
        let ceiling = Ceiling::new(1);
        let held = Arc::new(AtomicU64::new(0));
        let store = Arc::new(());
        let (counted, alive) = (held.clone(), Arc::downgrade(&store));
        ceiling.sum_with(move || {
            alive.upgrade().map(|_| Summed {
                bytes: counted.load(Ordering::Relaxed),
                holders: 1,
            })
        });
        let budget = Budget::new(1, Tenant::Partner, ceiling.clone());
        // Checks count nothing.
        for _ in 0..10 {
            assert_eq!(budget.allows(0, 800 * KIB), Ok(()));
        }
        assert_eq!(budget.admits(0, 800 * KIB), Ok(()));
        // The sum has not seen the write yet, whenever it comes: the next is refused.
        let refused = budget.admits(0, 200 * KIB).expect_err("pending counts");
        assert!(refused.whole, "{refused}");
        assert!(ceiling.total() >= 800 * KIB, "{}", ceiling.total());
        // The write lands; one admitted besides it is never made. Once a sum has seen the
        // store, only what it holds is counted.
        held.store(800 * KIB, Ordering::Relaxed);
        assert_eq!(budget.admits(0, 10 * KIB), Ok(()));
        let waited = Instant::now();
        while ceiling.total() != 800 * KIB {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "never let go: {}",
                ceiling.total()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(budget.admits(0, 50 * KIB), Ok(()));
        drop(store);
    }
}
