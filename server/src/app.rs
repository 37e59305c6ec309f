//! The application handle every route holds: settings, the store, the sandbox clock, and
//! the control API's webhook queue, request journal and faults.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{RateLimits, Settings};
use crate::control::faults::Faults;
use crate::control::journal::Journal;
use crate::ratelimit::Limit;
use crate::store::Store;
use crate::webhooks::Webhooks;

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: Clock,
    /// The webhook queue and its delivery records.
    pub webhooks: Webhooks,
    /// The bounded request journal.
    pub journal: Journal,
    /// Injected faults.
    pub faults: Faults,
}

impl App {
    /// A fresh, empty sandbox on a clock reading real time.
    pub fn new(settings: Settings) -> App {
        App {
            store: Store::new(&settings),
            webhooks: Webhooks::new(),
            journal: Journal::new(settings.journal_size),
            faults: Faults::new(),
            settings: Arc::new(settings),
            clock: Clock::new(),
        }
    }

    /// A per-minute limit, or none when `--rate-limits off`.
    pub fn limit(&self, per_minute: u32) -> Limit {
        match self.settings.rate_limits {
            RateLimits::Documented => Limit(Some(per_minute)),
            RateLimits::Off => Limit(None),
        }
    }
}
