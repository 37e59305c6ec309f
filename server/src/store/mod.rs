//! The sandbox's state behind one cheap-to-clone handle.
//!
//! Tenants are the unit of locking: a request takes a brief read lock on the tenant table to
//! find its tenant, then that tenant's own mutex. No lock is ever held across an `.await`, and
//! no global write lock guards the links, so one tenant's growth never stalls another's
//! requests.
//!
//! - [`m2m`]: partners, their links, users and data requests.
//! - [`leaf`]: Leaf accounts, their users and magic links.
//! - [`quota`]: what each tenant, and the whole sandbox, may store (`--max-tenant-mib`,
//!   `--max-stored-mib`).
//! - [`numbered`]: where a seed's search for a free `-N` variant of a name picks up.

pub mod chunked;
pub mod ids;
pub mod index;
pub mod leaf;
pub mod m2m;
pub mod numbered;
pub mod quota;
pub mod stamp;

use std::sync::Arc;

use crate::config::Settings;
use crate::persist::Sink;
use quota::{Ceiling, Summed, TENANT_WEIGHT};

/// The handle every route holds.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    m2m: m2m::Partners,
    leaf: leaf::Accounts,
    /// The whole sandbox's budget (`--max-stored-mib`).
    ceiling: Arc<Ceiling>,
}

impl Store {
    /// In memory.
    pub fn new(settings: &Settings) -> Store {
        Store::with_sink(settings, Sink::off())
    }

    /// Writing every change through `sink` (the state file).
    pub fn with_sink(settings: &Settings, sink: Sink) -> Store {
        let ceiling = Ceiling::new(settings.max_stored_mib);
        let shared = Arc::new(Shared {
            m2m: m2m::Partners::with_ceiling(settings, sink.clone(), ceiling.clone()),
            leaf: leaf::Accounts::with_ceiling(settings, sink, ceiling.clone()),
            ceiling: ceiling.clone(),
        });
        // What every tenant holds, summed for `--max-stored-mib` until the store is
        // gone. Held weakly: the tenants hold the ceiling.
        let tables = Arc::downgrade(&shared);
        ceiling.sum_with(move || tables.upgrade().map(|shared| shared.sum()));
        Store { shared }
    }

    /// The M2M partners.
    pub fn m2m(&self) -> &m2m::Partners {
        &self.shared.m2m
    }

    /// The Leaf accounts.
    pub fn leaf(&self) -> &leaf::Accounts {
        &self.shared.leaf
    }

    /// What the sandbox's budget (`--max-stored-mib`) counts every tenant as holding
    /// together: the last sum, and what writes were admitted to add since.
    pub fn stored(&self) -> u64 {
        self.shared.ceiling.total()
    }

    /// What every tenant holds together now, summed (each tenant read under its lock).
    pub fn held(&self) -> u64 {
        self.shared.sum().bytes
    }
}

impl Shared {
    /// Every tenant's holdings summed: each weighs its own record besides what it holds;
    /// only a tenant holding something counts among the holders who share the reserve.
    fn sum(&self) -> Summed {
        let partners = self.m2m.all().into_iter().map(|p| p.stored());
        let accounts = self.leaf.all().into_iter().map(|a| a.stored());
        partners
            .chain(accounts)
            .fold(Summed::default(), |sum, held| Summed {
                bytes: sum.bytes + TENANT_WEIGHT + held,
                holders: sum.holders + u64::from(held > 0),
            })
    }
}
