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
//! the machine runs out of memory and everyone loses everything. The sum is taken again at
//! most every [`RECOUNT_MS`] ms by whichever write comes, before it takes its tenant's lock,
//! and never more often than twenty times as long as the last sum took: with keys by the
//! hundred thousand the sum takes milliseconds, and it stays a twentieth of one core.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A write that would take its tenant, or the whole sandbox, past its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageFull {
    pub tenant: Tenant,
    pub limit_mib: u64,
    /// The sandbox's budget (`--max-stored-mib`), not the tenant's.
    pub whole: bool,
}

impl std::fmt::Display for StorageFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.whole {
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

/// How old the sandbox's summed count may be when a write is checked against it.
pub const RECOUNT_MS: u64 = 50;

/// The whole sandbox's budget (`--max-stored-mib`), shared by every tenant's [`Budget`]:
/// checked against the tenants' counts summed, taken again at most every [`RECOUNT_MS`].
pub struct Ceiling {
    bytes: u64,
    /// The sum last taken, when (milliseconds since `epoch`, plus one: 0 is never), and
    /// how long it took (microseconds).
    counted: AtomicU64,
    counted_at: AtomicU64,
    took_us: AtomicU64,
    epoch: Instant,
    /// Sums what every tenant holds; set by the store once its tables exist.
    sum: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
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
            counted_at: AtomicU64::new(0),
            took_us: AtomicU64::new(0),
            epoch: Instant::now(),
            sum: OnceLock::new(),
        })
    }

    /// No ceiling: a store made on its own (tests, tools).
    pub fn none() -> Arc<Ceiling> {
        Ceiling::new(u64::MAX)
    }

    /// How the tenants' counts are summed. It locks each tenant in turn, so it is called
    /// only by a write that holds no tenant's lock.
    pub fn sum_with(&self, sum: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.sum.set(Box::new(sum));
    }

    /// What every tenant holds together, summed at most [`RECOUNT_MS`] ago, or twenty
    /// times as long as the last sum took (by this call when the last sum is older; one
    /// caller at a time sums).
    pub fn total(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let at = self.counted_at.load(Ordering::Acquire);
        let every = RECOUNT_MS.max(self.took_us.load(Ordering::Relaxed) / 50);
        if (at == 0 || now.saturating_sub(at) >= every)
            && self
                .counted_at
                .compare_exchange(at, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && let Some(sum) = self.sum.get()
        {
            let started = Instant::now();
            self.counted.store(sum(), Ordering::Release);
            let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.took_us.store(took, Ordering::Relaxed);
        }
        self.counted.load(Ordering::Acquire)
    }

    /// `Ok` when the sandbox may store `more`. Call it holding no tenant's lock.
    fn admits(&self, tenant: Tenant, more: u64) -> Result<(), StorageFull> {
        if self.bytes == u64::MAX || self.total().saturating_add(more) <= self.bytes {
            Ok(())
        } else {
            Err(StorageFull {
                tenant,
                limit_mib: self.bytes / (1024 * 1024),
                whole: true,
            })
        }
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

    /// `Ok` when a tenant holding `stored` may add `more`.
    pub fn admits(&self, stored: u64, more: u64) -> Result<(), StorageFull> {
        if stored.saturating_add(more) <= self.bytes {
            Ok(())
        } else {
            Err(self.full())
        }
    }

    /// `Ok` when the whole sandbox may store `more`. Call it before taking the tenant's
    /// lock: summing the tenants takes each one's.
    pub fn sandbox_admits(&self, more: u64) -> Result<(), StorageFull> {
        self.ceiling.admits(self.tenant, more)
    }

    /// The refusal, naming the tenant's budget.
    pub fn full(&self) -> StorageFull {
        StorageFull {
            tenant: self.tenant,
            limit_mib: self.bytes / (1024 * 1024),
            whole: false,
        }
    }
}

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

    /// The sandbox's budget reads the tenants' sum, taken again once it is older than
    /// [`RECOUNT_MS`]; a refusal names `--max-stored-mib`.
    #[test]
    fn the_sandbox_budget_reads_a_sum_at_most_a_moment_old() {
        let ceiling = Ceiling::new(1);
        let held = Arc::new(AtomicU64::new(0));
        let counted = held.clone();
        ceiling.sum_with(move || counted.load(Ordering::Relaxed));
        let budget = Budget::new(1, Tenant::Partner, ceiling.clone());
        assert_eq!(budget.sandbox_admits(1024 * 1024), Ok(()));
        held.store(1024 * 1024, Ordering::Relaxed);
        // The sum just taken still reads 0 ...
        assert_eq!(budget.sandbox_admits(1), Ok(()));
        // ... until it is old enough to be taken again.
        std::thread::sleep(std::time::Duration::from_millis(RECOUNT_MS + 10));
        let full = budget.sandbox_admits(1).expect_err("the sandbox is full");
        assert!(full.whole);
        let message = full.to_string();
        assert!(message.contains("--max-stored-mib"), "{message}");
        assert!(
            message.starts_with("This sandbox would hold more than 1 MiB"),
            "{message}"
        );
        assert_eq!(budget.sandbox_admits(0), Ok(()));
        assert_eq!(
            Budget::new(1, Tenant::Partner, Ceiling::none()).sandbox_admits(u64::MAX),
            Ok(())
        );
    }
}
