//! The application handle every route holds: settings, the store, the sandbox clock, the
//! webhook queue, the request journal and the fault table, and the state file's sink; and
//! opening it, fresh or from a state file ([`App::open`]).

mod load;
pub mod replica;

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

/// Cheap to clone: one shared [`Parts`], which every field access reaches through `Deref`.
///
/// Every request clones it a few times (into the request, into each step that outlives a
/// borrow) and carries it in its future: one pointer and one reference count, instead of
/// the 296 bytes and the dozen counts of the parts side by side.
#[derive(Clone)]
pub struct App(Arc<Parts>);

/// What an [`App`] shares.
pub struct Parts {
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
    /// Where changes are kept: nowhere, the `--state` file, or the shared database.
    pub sink: Sink,
    /// `--state postgres://…`: this process's part in a sandbox shared by several.
    pub replica: Option<Arc<replica::Replica>>,
    /// The request bodies held at once (`--max-bodies-mib`).
    pub bodies: Arc<crate::bodies::Bodies>,
}

impl std::ops::Deref for App {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl App {
    /// A fresh, empty sandbox on a clock reading real time.
    pub fn new(settings: Settings) -> App {
        App::with_sink(settings, Sink::off(), None)
    }

    /// The sandbox `settings` describe: in memory, the one kept in the `--state` file
    /// (created if new), or the one shared through a PostgreSQL database.
    /// Refuses, untouched, a file or database linkbox cannot use.
    pub async fn open(settings: Settings) -> Result<App, persist::OpenError> {
        if let Some(url) = settings.database.clone() {
            return App::open_shared(settings, &url).await;
        }
        let Some(path) = settings.state.clone() else {
            return Ok(App::new(settings));
        };
        let file = persist::open(&path)?;
        let app = App::with_sink(settings, file.sink(), None);
        let stored = file.read()?;
        let (aside, moved) =
            load::restore(&app, &stored, &file.rows()).map_err(|error| file.corrupt(error))?;
        file.start()?;
        load::quarantine(&app, aside);
        load::rewrite_moved(&app, moved);
        load::write_defaults(&app);
        Ok(app)
    }

    /// Joins the sandbox kept in the PostgreSQL database at `url`: reads all of it back,
    /// under the lock of everything, and writes what a fresh database lacks (the Leaf token
    /// key, configured partners' webhook secrets) in the same transaction, so replicas that
    /// start at once agree on them.
    async fn open_shared(settings: Settings, url: &str) -> Result<App, persist::OpenError> {
        if settings.shadow.m2m.is_some() || settings.shadow.leaf.is_some() {
            return Err(persist::OpenError::Database {
                target: "--state".into(),
                reason: "shadow mode (--shadow-m2m, --shadow-leaf) runs in one process; it \
                         cannot be combined with a PostgreSQL --state"
                    .into(),
            });
        }
        let database = persist::shared::connect(url).await?;
        let failed = |error: persist::shared::Unavailable| persist::OpenError::Database {
            target: error.target.to_string(),
            reason: error.reason,
        };
        let replica = Arc::new(replica::Replica::new(database.clone()));
        let app = App::with_sink(
            settings,
            Sink::shared(database.clone()),
            Some(replica.clone()),
        );
        let (txn, locked) = database
            .begin(persist::shared::Scope::Everything)
            .await
            .map_err(failed)?;
        let stored = database.read_all(&txn).await.map_err(failed)?;
        let (restored, writes) = persist::shared::scoped(true, async {
            // A database keys rows by `(tenant, id)`: rows given back at other positions
            // need no writing again there.
            let aside = persist::shared::muted(|| load::restore(&app, &stored, &stored))
                .map(|(aside, _moved)| aside);
            if aside.is_ok() {
                load::write_defaults(&app);
            }
            aside
        })
        .await;
        let aside = restored.map_err(|reason| persist::OpenError::Database {
            target: database.target().to_string(),
            reason,
        })?;
        load::warn_aside(&aside);
        let committed = txn.commit(writes).await.map_err(failed)?;
        replica.knows(locked.versions);
        replica.knows(committed.versions);
        Ok(app)
    }

    /// An empty sandbox whose every change goes through `sink`; `replica`, its part in a
    /// sandbox shared by several processes.
    fn with_sink(settings: Settings, sink: Sink, replica: Option<Arc<replica::Replica>>) -> App {
        App(Arc::new(Parts {
            store: Store::with_sink(&settings, sink.clone()),
            webhooks: Webhooks::with_sink(sink.clone()),
            // A single process keeps its journal and faults in memory; replicas share theirs.
            journal: Journal::with_sink(settings.journal_size, sink.shared_only()),
            faults: Faults::with_sink(sink.shared_only()),
            drift: Arc::default(),
            bodies: crate::bodies::Bodies::new(settings.max_bodies_mib),
            settings: Arc::new(settings),
            clock: Clock::with_sink(sink.clone()),
            sink,
            replica,
        }))
    }

    /// A per-minute limit, or none when `--rate-limits off`.
    pub fn limit(&self, per_minute: u32) -> Limit {
        match self.settings.rate_limits {
            RateLimits::Documented => Limit(Some(per_minute)),
            RateLimits::Off => Limit(None),
        }
    }
}
