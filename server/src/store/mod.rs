//! The sandbox's state behind one cheap-to-clone handle.
//!
//! Tenants are the unit of locking: a request takes a brief read lock on the tenant table to
//! find its tenant, then that tenant's own mutex. No lock is ever held across an `.await`, and
//! no global write lock guards the links, so one tenant's growth never stalls another's
//! requests.
//!
//! - [`m2m`]: partners, their links, users and data requests.
//! - [`leaf`]: Leaf accounts, their users and magic links.
//! - [`quota`]: what each tenant may store (`--max-tenant-mib`).

pub mod chunked;
pub mod ids;
pub mod index;
pub mod leaf;
pub mod m2m;
pub mod quota;
pub mod stamp;

use std::sync::Arc;

use crate::config::Settings;
use crate::persist::Sink;

/// The handle every route holds.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    m2m: m2m::Partners,
    leaf: leaf::Accounts,
}

impl Store {
    /// In memory.
    pub fn new(settings: &Settings) -> Store {
        Store::with_sink(settings, Sink::off())
    }

    /// Writing every change through `sink` (the state file).
    pub fn with_sink(settings: &Settings, sink: Sink) -> Store {
        Store {
            shared: Arc::new(Shared {
                m2m: m2m::Partners::with_sink(settings, sink.clone()),
                leaf: leaf::Accounts::with_sink(settings, sink),
            }),
        }
    }

    /// The M2M partners.
    pub fn m2m(&self) -> &m2m::Partners {
        &self.shared.m2m
    }

    /// The Leaf accounts.
    pub fn leaf(&self) -> &leaf::Accounts {
        &self.shared.leaf
    }
}
