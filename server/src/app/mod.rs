//! The application handle every route holds: settings, the store, the sandbox clock, the
//! webhook queue, the request journal and the fault table, and the state file's sink; and
//! opening it, fresh or from a state file ([`App::open`]).

mod load;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{RateLimits, Settings};
use crate::drift::Drift;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::persist::{self, Sink};
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
    /// What shadow mode's comparisons found.
    pub drift: Arc<Drift>,
    /// Where changes are kept: nowhere, or the `--state` file.
    pub sink: Sink,
}

impl App {
    /// A fresh, empty sandbox on a clock reading real time.
    pub fn new(settings: Settings) -> App {
        App::with_sink(settings, Sink::off())
    }

    /// The sandbox `settings` describe: in memory, or the one kept in the `--state` file
    /// (created if new).
    /// Refuses, untouched, a file linkbox cannot use.
    pub fn open(settings: Settings) -> Result<App, persist::OpenError> {
        let Some(path) = settings.state.clone() else {
            return Ok(App::new(settings));
        };
        let file = persist::open(&path)?;
        let app = App::with_sink(settings, file.sink());
        let stored = file.read()?;
        let aside = load::restore(&app, &stored).map_err(|error| file.corrupt(error))?;
        file.start()?;
        load::quarantine(&app, aside);
        load::write_defaults(&app);
        Ok(app)
    }

    /// An empty sandbox whose every change goes through `sink`.
    fn with_sink(settings: Settings, sink: Sink) -> App {
        App {
            store: Store::with_sink(&settings, sink.clone()),
            webhooks: Webhooks::with_sink(sink.clone()),
            journal: Journal::new(settings.journal_size),
            faults: Faults::new(),
            drift: Arc::default(),
            settings: Arc::new(settings),
            clock: Clock::with_sink(sink.clone()),
            sink,
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
