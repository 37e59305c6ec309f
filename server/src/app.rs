//! The application handle every route holds: settings, the store and the sandbox clock.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{RateLimits, Settings};
use crate::ratelimit::Limit;
use crate::store::Store;

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: Clock,
}

impl App {
    /// A fresh, empty sandbox on a clock reading real time.
    pub fn new(settings: Settings) -> App {
        App {
            store: Store::new(&settings),
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
