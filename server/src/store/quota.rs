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

/// A write that would take its tenant past its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "This {} would hold more than {limit_mib} MiB in this sandbox, the most one tenant may store (--max-tenant-mib); nothing was stored. {}",
    tenant.name(),
    tenant.remedy()
)]
pub struct StorageFull {
    pub tenant: Tenant,
    pub limit_mib: u64,
}

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

/// One tenant's budget, in counted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    bytes: u64,
    tenant: Tenant,
}

impl Budget {
    /// `mib` MiB for a tenant of kind `tenant`.
    pub fn new(mib: u64, tenant: Tenant) -> Budget {
        Budget {
            bytes: mib.saturating_mul(1024 * 1024),
            tenant,
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

    /// The refusal, naming the budget.
    pub fn full(&self) -> StorageFull {
        StorageFull {
            tenant: self.tenant,
            limit_mib: self.bytes / (1024 * 1024),
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
        let budget = Budget::new(1, Tenant::Partner);
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
        let leaf = Budget::new(1, Tenant::LeafAccount).full().to_string();
        assert!(leaf.starts_with("This Leaf account would hold"), "{leaf}");
        assert!(
            leaf.contains("Delete some of its users or magic links"),
            "{leaf}"
        );
        assert_eq!(
            Budget::new(u64::MAX, Tenant::Partner).admits(u64::MAX, 1),
            Ok(())
        );
    }
}
