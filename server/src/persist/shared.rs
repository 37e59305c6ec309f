//! `--state postgres://…`: several linkbox processes (*replicas*) sharing one sandbox
//! through one PostgreSQL database.
//!
//! Each replica keeps the sandbox in memory, as a single process does, and the database is
//! the truth they share. Every request that may touch a tenant runs in one database
//! transaction ([`Database::begin`]) that first locks that tenant's row of `tenants`
//! (`SELECT … FOR UPDATE`): two replicas never act on one tenant at once, and each acts on
//! the newest state, because a replica whose copy is older than the row's `version` reads
//! back first the rows written since its copy's version ([`Txn::rows_since`]: every entity
//! row carries the version that wrote it), or the whole tenant when it lost rows meanwhile
//! (`tenants.cleared`). The changes the request makes in
//! memory are described through the [`super::Sink`] as for the SQLite file, collected for
//! this request only ([`scoped`]), and written by [`Txn::commit`] with the tenant's version
//! bumped, before the response leaves. So every invariant a tenant's lock keeps in one
//! process (one active link per reference, usage never past `maxUsage`, ids minted once) is
//! kept across replicas by the database's row lock.
//!
//! Requests that reach more than one tenant (the control API, the pages, Leaf's
//! authenticate) lock every `tenants` row, in name order, and then `sandbox`
//! ([`Scope::Everything`]). The sandbox clock is the `sandbox` row's `offset_ms` and
//! `frozen_at`, read by every transaction, so a request always sees the current clock.
//!
//! A change made outside any request (a webhook attempt's outcome) is written by a
//! background task in its own transaction, which bumps the version of every tenant it
//! touched, so the other replicas read it back. Webhook attempts themselves are claimed
//! ([`Database::claim`]): each `(delivery, attempt)` row is won by one replica for a lease.
//!
//! Faults, rate-limit windows and the request journal have tables here too (a single
//! process keeps them in memory only).
//!
//! Portable SQL only: `INSERT … ON CONFLICT`, `SELECT … FOR UPDATE`, `RETURNING`, `BIGINT`
//! and `TEXT` columns, one sequence, `row_number()`, and `now()`; no advisory locks, no
//! `LISTEN`, no stored procedures.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::{OpenError, Row, Stored, Table, Write};

/// The schema version this build writes.
pub const LATEST: i32 = 3;

/// Every step from version 0, in order; each runs in its own transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "
    CREATE TABLE tenants (name TEXT PRIMARY KEY, version BIGINT NOT NULL, cleared BIGINT NOT NULL DEFAULT 0);
    CREATE TABLE sandbox (id INT PRIMARY KEY CHECK (id = 1), offset_ms BIGINT NOT NULL, frozen_at TEXT, faults_version BIGINT NOT NULL);
    INSERT INTO sandbox (id, offset_ms, frozen_at, faults_version) VALUES (1, 0, NULL, 0);
    CREATE SEQUENCE journal_seq;
    CREATE TABLE journal (tenant TEXT NOT NULL, id BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX journal_by_id ON journal (id);
    CREATE TABLE rate_windows (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE faults (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE m2m_partners (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX m2m_partners_changes ON m2m_partners (tenant, version);
    CREATE TABLE m2m_users (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX m2m_users_changes ON m2m_users (tenant, version);
    CREATE TABLE m2m_links (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX m2m_links_changes ON m2m_links (tenant, version);
    CREATE TABLE m2m_data_requests (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX m2m_data_requests_changes ON m2m_data_requests (tenant, version);
    CREATE TABLE m2m_operations (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX m2m_operations_changes ON m2m_operations (tenant, version);
    CREATE TABLE leaf_users (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX leaf_users_changes ON leaf_users (tenant, version);
    CREATE TABLE leaf_magic_links (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX leaf_magic_links_changes ON leaf_magic_links (tenant, version);
    CREATE TABLE webhook_deliveries (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX webhook_deliveries_changes ON webhook_deliveries (tenant, version);
    CREATE TABLE quarantine (source TEXT NOT NULL, tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (source, tenant, id));
    CREATE TABLE webhook_claims (delivery TEXT NOT NULL, attempt BIGINT NOT NULL, holder TEXT NOT NULL, until_ms BIGINT NOT NULL, PRIMARY KEY (delivery, attempt));
    ",
    ),
    // A Leaf page's link found by its id alone, whichever account made it
    // ([`Database::magic_link_owner`]).
    (
        2,
        "CREATE INDEX leaf_magic_links_by_id ON leaf_magic_links (id);",
    ),
    // The open-mode Leaf accounts, each a tenant from its first write on, whatever it wrote
    // ([`Table::LeafAccounts`]): every account the database holds a user, a link or a fault
    // of has one, or a replica that read it would drop it once those were gone (its own reset)
    // while the replica that reset it still counted it.
    (
        3,
        "
    CREATE TABLE leaf_accounts (tenant TEXT NOT NULL, id TEXT NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (tenant, id));
    CREATE INDEX leaf_accounts_changes ON leaf_accounts (tenant, version);
    INSERT INTO leaf_accounts (tenant, id, position, doc, version)
        SELECT named.tenant, named.tenant, 0, '{}', COALESCE(tenants.version, 0)
        FROM (SELECT tenant FROM leaf_users UNION SELECT tenant FROM leaf_magic_links
              UNION SELECT substr(tenant, 6) FROM faults WHERE tenant LIKE 'leaf:%') AS named
        LEFT JOIN tenants ON tenants.name = 'leaf:' || named.tenant;
    ",
    ),
];

/// Connections one replica holds at most.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, and a connection for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a lock another replica holds, at most (PostgreSQL's
/// `lock_timeout`); past it, a 503 with `Retry-After`. [design]
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a transaction may sit idle before the server ends it and lets its locks go
/// (`idle_in_transaction_session_timeout`): its replica froze or was cut off mid-request.
/// Longer than any request's own work inside its transaction. [design]
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a replica waits before trying again to write changes made outside a request.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Batches of such changes kept while the database is unreachable; past it the oldest are
/// dropped, with an error logged.
const MAX_BACKGROUND_BATCHES: usize = 100_000;

/// The database, as a pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// `host:port/database`, never the password: what every message names.
    target: Arc<str>,
    background: mpsc::UnboundedSender<Vec<Write>>,
    /// This process's name on the webhook claims it takes.
    holder: Arc<str>,
    /// The database version of each tenant this process's memory holds, as its requests
    /// and background pass caught up on them ([`Database::known`]).
    known: Arc<parking_lot::Mutex<HashMap<String, i64>>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.target)
    }
}

/// The database could not serve a request: the caller answers 503 with `Retry-After`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the sandbox database at {target} is unavailable: {reason}")]
pub struct Unavailable {
    pub target: Arc<str>,
    pub reason: String,
    /// Whether the request's changes may have been committed all the same: the connection
    /// was lost, or the step timed out, while its `COMMIT` was on its way — the server may
    /// have committed before its answer was lost. Otherwise nothing was changed.
    pub in_doubt: bool,
    /// Whether the database answered but a lock the request needed was held past
    /// `LOCK_TIMEOUT` (another request, on this replica or another, held it): busy, not
    /// down.
    pub busy: bool,
}

/// What went wrong, with the server's own message and SQLSTATE when it sent one (the
/// driver's `Display` says only "db error").
fn reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// `host:port/database` of a connection string, without user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("postgres");
    format!("{host}:{port}/{database}")
}

/// Connects to the database at `url`, creates or migrates linkbox's schema, and starts the
/// background writer. Fails, naming the host, when the database cannot be reached or holds
/// a schema newer than this build's.
pub async fn connect(url: &str) -> Result<Database, OpenError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|error| OpenError::Database {
            target: "the --state URL".into(),
            reason: format!("not a usable PostgreSQL URL: {error}"),
        })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("linkbox");
    // Bounds the server keeps for this replica's sessions: a lock another replica holds
    // is waited for at most LOCK_TIMEOUT, then the request is a 503 (not a wait without
    // end behind a replica that froze holding it); and a transaction left idle that long
    // (its replica paused, or cut off) is ended by the server, its locks let go. Notices
    // (`relation "linkbox_meta" already exists, skipping` on every start but the first) are
    // not sent: nothing in them is for linkbox's log.
    let bounds = format!(
        "-c lock_timeout={}ms -c idle_in_transaction_session_timeout={}ms \
         -c client_min_messages=warning",
        LOCK_TIMEOUT.as_millis(),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {bounds}"),
        _ => bounds,
    };
    config.options(&options);
    let target: Arc<str> = describe(&config).into();
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|error| OpenError::Database {
            target: target.to_string(),
            reason: error.to_string(),
        })?;
    let client = pool.get().await.map_err(|error| OpenError::Unreachable {
        target: target.to_string(),
        reason: error.reason(),
    })?;
    migrate(&client, &target).await?;
    drop(client);
    let (background, queue) = mpsc::unbounded_channel();
    let holder = format!(
        "{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    );
    let database = Database {
        pool,
        target,
        background,
        holder: holder.into(),
        known: Arc::default(),
    };
    tokio::spawn(write_in_background(database.clone(), queue));
    tracing::info!(database = %database.target, "sharing the sandbox through PostgreSQL");
    Ok(database)
}

/// Brings the schema to [`LATEST`], one transaction per step, each holding the `meta` row
/// so two replicas starting at once migrate it once.
async fn migrate(client: &Object, target: &str) -> Result<(), OpenError> {
    let failed = |error: tokio_postgres::Error| OpenError::Database {
        target: target.to_owned(),
        reason: reason(&error),
    };
    // Two replicas creating the table at once may race in the catalog; the loser retries.
    let mut tries = 0;
    loop {
        let created = client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS linkbox_meta (id INT PRIMARY KEY CHECK (id = 1), app TEXT NOT NULL, schema_version INT NOT NULL);
                 INSERT INTO linkbox_meta (id, app, schema_version) VALUES (1, 'linkbox', 0) ON CONFLICT (id) DO NOTHING;",
            )
            .await;
        match created {
            Ok(()) => break,
            Err(error) if tries < 5 => {
                tries += 1;
                tracing::debug!(%error, "schema creation raced; trying again");
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(error) => return Err(failed(error)),
        }
    }
    loop {
        client.batch_execute("BEGIN").await.map_err(failed)?;
        let row = client
            .query_one(
                "SELECT app, schema_version FROM linkbox_meta WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(failed)?;
        let (app, version): (String, i32) = (row.get(0), row.get(1));
        if app != super::schema::APP {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(OpenError::Database {
                target: target.to_owned(),
                reason: format!("its linkbox_meta table belongs to {app:?}, not linkbox"),
            });
        }
        if version > LATEST {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(OpenError::DatabaseTooNew {
                target: target.to_owned(),
                found: version,
                latest: LATEST,
            });
        }
        let Some((to, sql)) = MIGRATIONS.iter().find(|(to, _)| *to == version + 1) else {
            client.batch_execute("COMMIT").await.map_err(failed)?;
            return Ok(());
        };
        client.batch_execute(sql).await.map_err(failed)?;
        client
            .execute("UPDATE linkbox_meta SET schema_version = $1", &[to])
            .await
            .map_err(failed)?;
        client.batch_execute("COMMIT").await.map_err(failed)?;
        tracing::info!(version = to, database = %target, "database schema migrated");
    }
}

/// Anything that can stop a database step, described for a message.
trait Failure {
    fn reason(&self) -> String;

    /// Whether it was a lock held past `LOCK_TIMEOUT`.
    fn busy(&self) -> bool {
        false
    }
}

impl Failure for tokio_postgres::Error {
    fn reason(&self) -> String {
        reason(self)
    }

    /// A lock timeout, or what follows one in the same pipeline: a lock's statement and
    /// the sandbox row's read go together, and when the lock times out the read is refused
    /// as in a failed transaction, which may be the error that comes back first.
    fn busy(&self) -> bool {
        use tokio_postgres::error::SqlState;
        self.code().is_some_and(|code| {
            *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::IN_FAILED_SQL_TRANSACTION
        })
    }
}

impl Failure for deadpool_postgres::PoolError {
    fn reason(&self) -> String {
        match self {
            deadpool_postgres::PoolError::Backend(error) => reason(error),
            other => other.to_string(),
        }
    }
}

impl Failure for &str {
    fn reason(&self) -> String {
        (*self).to_owned()
    }
}

/// What a transaction locks.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One tenant's row (its label: a partner's slug, or `leaf:<username>`). `create`: the
    /// row is made first when missing, so a tenant's first write is locked too.
    Tenant { name: &'a str, create: bool },
    /// The `sandbox` row and every tenant's row.
    Everything,
    /// As [`Scope::Everything`], with tenant `0`'s row made first when missing: the insert
    /// waits for another transaction making the same row, so two requests of one new
    /// tenant are locked one after the other.
    EverythingFor(&'a str),
    /// One tenant's row, only if no other transaction holds it (`FOR UPDATE SKIP LOCKED`):
    /// when one does, the row reads as absent and nothing of the tenant is locked.
    Unheld(&'a str),
    /// No tenant's row: the `sandbox` row read, not locked (the clock and the fault
    /// table's version), for a request of no tenant that a fault may strike and the
    /// journal records.
    Stranger,
}

/// What a transaction read when it took its locks.
#[derive(Debug, Clone, Default)]
pub struct Locked {
    /// The version of each locked tenant (absent: no row yet).
    pub versions: BTreeMap<String, i64>,
    /// The version at which each locked tenant last lost rows (deleted or cleared): a copy
    /// older than that is read back whole; a newer one only reads the rows changed since.
    pub cleared: BTreeMap<String, i64>,
    /// The sandbox clock: offset in milliseconds and the frozen reading, if any.
    pub clock: (i64, Option<String>),
    /// The version of the fault table (locked only with [`Scope::Everything`], or by
    /// [`Txn::lock_faults`]).
    pub faults: i64,
}

impl Locked {
    /// The clock and the fault table's version, from a row of [`SELECT_SANDBOX`]'s columns.
    fn read_sandbox(&mut self, sandbox: &tokio_postgres::Row) {
        self.clock = (sandbox.get(0), sandbox.get(1));
        self.faults = sandbox.get(2);
    }
}

/// What a commit changed: the new version of every tenant it touched, and of the fault
/// table when it changed that.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    pub versions: BTreeMap<String, i64>,
    pub faults: Option<i64>,
}

/// One open transaction. Dropped without [`Txn::commit`] or [`Txn::rollback`], its
/// connection is closed rather than returned to the pool, so the server rolls it back.
pub struct Txn {
    client: Option<Object>,
    target: Arc<str>,
    /// The tenant row this transaction made (to drop again if nothing was written).
    created: Option<String>,
}

impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// What became of a claim on a webhook attempt ([`Database::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This process makes the attempt.
    Won,
    /// Another replica holds it for this long yet.
    Held(Duration),
    /// A reset this process has not caught up on forgot the delivery: no one makes it.
    Forgotten,
}

impl Database {
    /// `host:port/database`.
    pub fn target(&self) -> &Arc<str> {
        &self.target
    }

    fn unavailable(&self, error: impl Failure) -> Unavailable {
        Unavailable {
            target: self.target.clone(),
            reason: error.reason(),
            in_doubt: false,
            busy: error.busy(),
        }
    }

    /// Opens a transaction holding `scope`'s locks.
    pub async fn begin(&self, scope: Scope<'_>) -> Result<(Txn, Locked), Unavailable> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        let mut txn = Txn {
            client: Some(client),
            target: self.target.clone(),
            created: None,
        };
        let locked = match &txn.client {
            Some(client) => lock(client, scope).await,
            None => return Err(self.unavailable("no connection")),
        };
        let (locked, created) = locked.map_err(|error| txn.failed(error))?;
        txn.created = created;
        Ok((txn, locked))
    }

    /// Every row the database holds, for a replica starting up.
    pub async fn read_all(&self, txn: &Txn) -> Result<Stored, Unavailable> {
        let client = txn.client().map_err(|error| self.unavailable(error))?;
        read_all(client)
            .await
            .map_err(|error| self.unavailable(error))
    }

    /// The database version of each tenant this process's memory holds: set as requests
    /// and the background pass catch up on a tenant and commit its changes, cleared for a
    /// tenant whose copy may no longer be the database's.
    pub fn known(&self) -> &parking_lot::Mutex<HashMap<String, i64>> {
        &self.known
    }

    /// Claims attempt number `attempt` of delivery `delivery` of partner `tenant` for this
    /// process for `lease`. A claim is won once: not even its holder wins it again before
    /// it lapses.
    ///
    /// A delivery a reset on another replica forgot is not claimed: this process's copy of
    /// the partner predates a deletion of its rows (`tenants.cleared` past the version it
    /// knows) and the delivery's row is gone. A copy up to date, or a row still there (a
    /// delivery just made, its request not committed yet, or one that outlived a trim),
    /// is claimed as before.
    pub async fn claim(
        &self,
        tenant: &str,
        delivery: &str,
        attempt: usize,
        lease: Duration,
    ) -> Result<Claim, Unavailable> {
        let attempt = i64::try_from(attempt).unwrap_or(i64::MAX);
        let holder: &str = &self.holder;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        // Nothing known of the partner (a copy being read back): claimed, as before.
        let known = self.known.lock().get(tenant).copied().unwrap_or(i64::MAX);
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        let won = client
            .query_opt(
                "INSERT INTO webhook_claims (delivery, attempt, holder, until_ms) \
                 SELECT $1, $2, $3, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) + $4 \
                 WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = $5 AND cleared > $6) \
                 OR EXISTS (SELECT 1 FROM webhook_deliveries WHERE tenant = $5 AND id = $1) \
                 ON CONFLICT (delivery, attempt) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms \
                 WHERE webhook_claims.until_ms < CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) \
                 RETURNING holder",
                &[&delivery, &attempt, &holder, &lease_ms, &tenant, &known],
            )
            .await
            .map_err(|error| self.unavailable(error))?;
        if won.is_some() {
            return Ok(Claim::Won);
        }
        let row = client
            .query_one(
                "SELECT (SELECT until_ms - CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) \
                 FROM webhook_claims WHERE delivery = $1 AND attempt = $2), \
                 EXISTS (SELECT 1 FROM tenants WHERE name = $3 AND cleared > $4) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE tenant = $3 AND id = $1)",
                &[&delivery, &attempt, &tenant, &known],
            )
            .await
            .map_err(|error| self.unavailable(error))?;
        if row.get::<_, bool>(1) {
            return Ok(Claim::Forgotten);
        }
        let left = row.get::<_, Option<i64>>(0).unwrap_or(0);
        Ok(Claim::Held(Duration::from_millis(
            u64::try_from(left.max(1)).unwrap_or(1),
        )))
    }

    /// Keeps the newest `per_tenant` journal rows of each tenant, and of those at most
    /// `in_all` together: past that, the tenants holding the most rows lose their oldest
    /// first, as the journal's rings in memory do, so a flood of requests from new keys
    /// never pushes out the rows of a tenant that holds fewer. Rows are kept by their rank
    /// within their tenant, the newest first: every tenant's newest, then every tenant's
    /// second newest, and so on; and in that order at most `bytes` of rows are kept, so a
    /// journal read, which reads them all back, reads no more than the journal shows.
    pub async fn trim_journal(
        &self,
        per_tenant: usize,
        in_all: i64,
        bytes: usize,
    ) -> Result<u64, Unavailable> {
        let per_tenant = i64::try_from(per_tenant).unwrap_or(i64::MAX);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        client
            .execute(
                "DELETE FROM journal WHERE id IN (SELECT id FROM \
                 (SELECT id, newer, row_number() OVER (ORDER BY newer, id DESC) AS place, \
                 sum(octet_length(doc)) OVER (ORDER BY newer, id DESC ROWS UNBOUNDED PRECEDING) AS held FROM \
                 (SELECT id, doc, row_number() OVER (PARTITION BY tenant ORDER BY id DESC) AS newer FROM journal) ranked) placed \
                 WHERE newer > $1 OR place > $2 OR held > $3)",
                &[&per_tenant, &in_all, &bytes],
            )
            .await
            .map_err(|error| self.unavailable(error))
    }

    /// Extends this process's claim on attempt `attempt` of `delivery` to `lease` from now.
    pub async fn renew(
        &self,
        delivery: &str,
        attempt: usize,
        lease: Duration,
    ) -> Result<(), Unavailable> {
        let attempt = i64::try_from(attempt).unwrap_or(i64::MAX);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let holder: &str = &self.holder;
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        client
            .execute(
                "UPDATE webhook_claims SET until_ms = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) + $4 \
                 WHERE delivery = $1 AND attempt = $2 AND holder = $3",
                &[&delivery, &attempt, &holder, &lease_ms],
            )
            .await
            .map_err(|error| self.unavailable(error))?;
        Ok(())
    }

    /// Forgets claims whose lease ended more than `age` ago (their attempts are long
    /// recorded).
    pub async fn forget_claims(&self, age: Duration) -> Result<u64, Unavailable> {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        client
            .execute(
                "DELETE FROM webhook_claims WHERE until_ms < CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - $1",
                &[&age_ms],
            )
            .await
            .map_err(|error| self.unavailable(error))
    }

    /// The username of the Leaf account whose magic link `id` is, if any: read without a
    /// lock, before a page of a link this process has not seen takes its account's lock
    /// (an id is made once, by one account, so its owner does not change).
    pub async fn magic_link_owner(&self, id: &str) -> Result<Option<String>, Unavailable> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        let row = client
            .query_opt(
                "SELECT tenant FROM leaf_magic_links WHERE id = $1 LIMIT 1",
                &[&id],
            )
            .await
            .map_err(|error| self.unavailable(error))?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Every tenant's version and the sandbox clock, unlocked: what a replica compares its
    /// copies with.
    pub async fn poll(
        &self,
    ) -> Result<(BTreeMap<String, i64>, (i64, Option<String>)), Unavailable> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| self.unavailable(error))?;
        let rows = client
            .query("SELECT name, version FROM tenants", &[])
            .await
            .map_err(|error| self.unavailable(error))?;
        let clock = client
            .query_one("SELECT offset_ms, frozen_at FROM sandbox WHERE id = 1", &[])
            .await
            .map_err(|error| self.unavailable(error))?;
        Ok((
            rows.iter()
                .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
                .collect(),
            (clock.get(0), clock.get(1)),
        ))
    }

    /// Queues changes made outside any request for the background writer.
    fn write_later(&self, writes: Vec<Write>) {
        if self.background.send(writes).is_err() {
            tracing::error!(database = %self.target, "the background writer has stopped; a change made outside a request is not saved");
        }
    }
}

impl Txn {
    fn client(&self) -> Result<&Object, &'static str> {
        self.client.as_ref().ok_or("the transaction is closed")
    }

    fn failed(&self, error: impl Failure) -> Unavailable {
        Unavailable {
            target: self.target.clone(),
            reason: error.reason(),
            in_doubt: false,
            busy: error.busy(),
        }
    }
}

const SELECT_TENANT: &str = "SELECT version, cleared FROM tenants WHERE name = $1 FOR UPDATE";
const SELECT_UNHELD_TENANT: &str =
    "SELECT version, cleared FROM tenants WHERE name = $1 FOR UPDATE SKIP LOCKED";
const SELECT_SANDBOX: &str =
    "SELECT offset_ms, frozen_at, faults_version FROM sandbox WHERE id = 1";
const INSERT_TENANT: &str =
    "INSERT INTO tenants (name, version) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING";

/// Begins a transaction on `client` and takes `scope`'s locks; says which tenant row it
/// made.
async fn lock(
    client: &Object,
    scope: Scope<'_>,
) -> Result<(Locked, Option<String>), tokio_postgres::Error> {
    let mut created = None;
    {
        let mut locked = Locked::default();
        if let Scope::Stranger = scope {
            let sandbox = client.prepare_cached(SELECT_SANDBOX).await?;
            let (_, sandbox) = tokio::try_join!(
                client.batch_execute("BEGIN"),
                client.query_one(&sandbox, &[]),
            )?;
            locked.read_sandbox(&sandbox);
            return Ok((locked, None));
        }
        let one = match scope {
            Scope::Tenant { name, create } => Some((name, create, SELECT_TENANT)),
            Scope::Unheld(name) => Some((name, false, SELECT_UNHELD_TENANT)),
            Scope::Everything | Scope::EverythingFor(_) | Scope::Stranger => None,
        };
        match one {
            Some((name, create, sql)) => {
                // BEGIN, the row lock and the sandbox row in one pipeline: the sandbox row
                // is read after the lock is granted, as the statements run in order.
                let select = client.prepare_cached(sql).await?;
                let sandbox = client.prepare_cached(SELECT_SANDBOX).await?;
                let by_name: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&name];
                let (_, mut row, sandbox) = tokio::try_join!(
                    client.batch_execute("BEGIN"),
                    client.query_opt(&select, &by_name),
                    client.query_one(&sandbox, &[]),
                )?;
                locked.read_sandbox(&sandbox);
                if row.is_none() && create {
                    let insert = client.prepare_cached(INSERT_TENANT).await?;
                    let (made, again) = tokio::try_join!(
                        client.execute(&insert, &by_name),
                        client.query_opt(&select, &by_name),
                    )?;
                    if made == 1 {
                        created = Some(name.to_owned());
                    }
                    row = again;
                }
                if let Some(row) = row {
                    locked.versions.insert(name.to_owned(), row.get(0));
                    locked.cleared.insert(name.to_owned(), row.get(1));
                }
            }
            None => {
                client.batch_execute("BEGIN").await?;
                if let Scope::EverythingFor(name) = scope {
                    let insert = client.prepare_cached(INSERT_TENANT).await?;
                    if client.execute(&insert, &[&name]).await? == 1 {
                        created = Some(name.to_owned());
                    }
                }
                // Tenant rows first, then the sandbox row: the order a request on one
                // tenant takes its own row and then (to strike a fault) the sandbox row.
                for row in client
                    .query(
                        "SELECT name, version, cleared FROM tenants ORDER BY name FOR UPDATE",
                        &[],
                    )
                    .await?
                {
                    locked.versions.insert(row.get(0), row.get(1));
                    locked.cleared.insert(row.get(0), row.get(2));
                }
                let sandbox = client
                    .query_one(
                        "SELECT offset_ms, frozen_at, faults_version FROM sandbox WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await?;
                locked.read_sandbox(&sandbox);
            }
        }
        Ok((locked, created))
    }
}

impl Txn {
    /// Every row of tenant `name` (a slug: its partner, users, links, data requests,
    /// operations and deliveries; `leaf:<username>`: its users and magic links).
    pub async fn tenant_rows(&self, name: &str) -> Result<Stored, Unavailable> {
        self.rows_since(name, None).await
    }

    /// The rows of tenant `name` written after its version `since` (every row: `None`).
    pub async fn rows_since(&self, name: &str, since: Option<i64>) -> Result<Stored, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let (tables, tenant): (&[Table], &str) = match name.strip_prefix("leaf:") {
            Some(username) => (
                &[Table::LeafAccounts, Table::LeafUsers, Table::LeafMagicLinks],
                username,
            ),
            None => (
                &[
                    Table::M2mPartners,
                    Table::M2mUsers,
                    Table::M2mLinks,
                    Table::M2mDataRequests,
                    Table::M2mOperations,
                    Table::WebhookDeliveries,
                ],
                name,
            ),
        };
        let mut stored = Stored::default();
        let since = since.unwrap_or(i64::MIN);
        // Every table's statement prepared first, then the queries as one pipeline.
        let mut statements = Vec::with_capacity(tables.len());
        for table in tables {
            let sql = format!(
                "SELECT tenant, id, position, doc FROM {} WHERE tenant = $1 AND version > $2 ORDER BY position",
                table.name()
            );
            statements.push(
                client
                    .prepare_cached(&sql)
                    .await
                    .map_err(|error| self.failed(error))?,
            );
        }
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &since];
        let results = futures_util::future::try_join_all(
            statements
                .iter()
                .map(|statement| client.query(statement, &params)),
        )
        .await
        .map_err(|error| self.failed(error))?;
        for (table, rows) in tables.iter().zip(results) {
            stored
                .tables
                .insert(table.name(), rows.iter().map(entity_row).collect());
        }
        Ok(stored)
    }

    /// Locks the fault table (the sandbox row) for a request about to strike it; returns its
    /// version, to catch up on when another replica changed it meanwhile.
    /// Every tenant the database has, with its version and the version it last lost rows
    /// at, as [`Locked`] holds them (without locking them).
    pub async fn tenant_versions(&self) -> Result<Locked, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let rows = client
            .query("SELECT name, version, cleared FROM tenants", &[])
            .await
            .map_err(|error| self.failed(error))?;
        let mut seen = Locked::default();
        for row in rows {
            seen.versions.insert(row.get(0), row.get(1));
            seen.cleared.insert(row.get(0), row.get(2));
        }
        Ok(seen)
    }

    pub async fn lock_faults(&self) -> Result<i64, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let row = client
            .query_one(
                "SELECT faults_version FROM sandbox WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(|error| self.failed(error))?;
        Ok(row.get(0))
    }

    /// The rate-limit windows of partner `slug`.
    pub async fn rate_windows(&self, slug: &str) -> Result<Vec<Row>, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let statement = client
            .prepare_cached("SELECT tenant, id, position, doc FROM rate_windows WHERE tenant = $1")
            .await
            .map_err(|error| self.failed(error))?;
        let rows = client
            .query(&statement, &[&slug])
            .await
            .map_err(|error| self.failed(error))?;
        Ok(rows.iter().map(entity_row).collect())
    }

    /// The journal's rows, oldest first: `(id, doc)`; of one tenant (its label) or of all.
    pub async fn journal_rows(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<(i64, String)>, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let rows = match tenant {
            Some(tenant) => {
                client
                    .query(
                        "SELECT id, doc FROM journal WHERE tenant = $1 ORDER BY id",
                        &[&tenant],
                    )
                    .await
            }
            None => {
                client
                    .query("SELECT id, doc FROM journal ORDER BY id", &[])
                    .await
            }
        }
        .map_err(|error| self.failed(error))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Every fault in force, in the order they were added, with the fault table's version
    /// they are of.
    pub async fn fault_rows(&self) -> Result<(Vec<Row>, i64), Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        // One statement, so one snapshot: the rows are of the version read with them.
        let rows = client
            .query(
                "SELECT s.faults_version, f.tenant, f.id, f.position, f.doc \
                 FROM sandbox s LEFT JOIN faults f ON TRUE WHERE s.id = 1 ORDER BY f.position",
                &[],
            )
            .await
            .map_err(|error| self.failed(error))?;
        let version = rows.first().map_or(0, |row| row.get(0));
        let faults = rows
            .iter()
            .filter_map(|row| {
                Some(Row {
                    tenant: row.get::<_, Option<String>>(1)?,
                    id: row.get(2),
                    position: u64::try_from(row.get::<_, i64>(3)).unwrap_or_default(),
                    doc: row.get(4),
                })
            })
            .collect();
        Ok((faults, version))
    }

    /// Writes `writes`, bumps the version of every tenant they touched (and of the fault
    /// table when they touched it) and commits.
    pub async fn commit(mut self, writes: Writes) -> Result<Committed, Unavailable> {
        let client = self.client().map_err(|error| self.failed(error))?;
        let versions = apply(client, &writes.0, Some(self.created.as_deref()))
            .await
            .map_err(|error| self.failed(error))?;
        client.batch_execute("COMMIT").await.map_err(|error| {
            // The server refusing the commit is an answer (nothing was committed); a
            // connection lost on the way is not: the server may have committed first.
            let in_doubt = error.as_db_error().is_none();
            Unavailable {
                in_doubt,
                ..self.failed(error)
            }
        })?;
        if let Some(client) = self.client.take() {
            drop(client);
        }
        Ok(versions)
    }

    /// Ends the transaction writing nothing.
    pub async fn rollback(mut self) {
        if let Some(client) = self.client.take()
            && client.batch_execute("ROLLBACK").await.is_err()
        {
            drop(Object::take(client));
        }
    }
}

/// The tenant label a write belongs to, if any.
fn tenant_of(write: &Write) -> Option<String> {
    let (table, tenant) = match write {
        Write::Put { table, tenant, .. }
        | Write::Delete { table, tenant, .. }
        | Write::ClearTenant { table, tenant } => (*table, &**tenant),
        Write::Quarantine { table, row, .. } => (*table, row.tenant.as_str()),
        Write::ClearTable(_)
        | Write::Clock { .. }
        | Write::Secret { .. }
        | Write::Journal { .. }
        | Write::ForgetJournal { .. } => return None,
    };
    Some(match table {
        Table::LeafAccounts | Table::LeafUsers | Table::LeafMagicLinks => {
            format!("leaf:{tenant}")
        }
        Table::Faults | Table::RateWindows | Table::Journal => return None,
        _ => tenant.to_owned(),
    })
}

/// Bumps the versions of the tenants `writes` touch (locking their rows, in name order,
/// before any other row, as every request does), runs `writes`, and drops the tenant row
/// `created` made by this transaction when nothing was written to it.
/// Writes `writes` in the client's transaction: a request's (`request`, with the tenant
/// whose row it made, if it did), or changes made outside any request (`None`).
async fn apply(
    client: &Object,
    writes: &[Write],
    request: Option<Option<&str>>,
) -> Result<Committed, tokio_postgres::Error> {
    let created = request.flatten();
    let outside = request.is_none();
    let touched: BTreeSet<String> = writes.iter().filter_map(tenant_of).collect();
    let every_tenant = writes
        .iter()
        .any(|write| matches!(write, Write::ClearTable(table) if Table::ALL.contains(table)));
    let faults_touched = writes.iter().any(|write| {
        matches!(
            write,
            Write::Put {
                table: Table::Faults,
                ..
            } | Write::Delete {
                table: Table::Faults,
                ..
            } | Write::ClearTenant {
                table: Table::Faults,
                ..
            } | Write::ClearTable(Table::Faults)
        )
    });
    // Tenants some of whose rows go: a replica behind them reads them back whole.
    let cleared: BTreeSet<String> = writes
        .iter()
        .filter(|write| match write {
            Write::Delete { table, .. } | Write::ClearTenant { table, .. } => table.versioned(),
            Write::Quarantine { .. } => true,
            _ => false,
        })
        .filter_map(tenant_of)
        .collect();
    let mut versions = BTreeMap::new();
    if every_tenant {
        for row in client
            .query(
                "UPDATE tenants SET version = version + 1, cleared = version + 1 RETURNING name, version",
                &[],
            )
            .await?
        {
            versions.insert(row.get(0), row.get(1));
        }
    }
    // Prepared first, so the bumps go out in name order (the order rows are locked in).
    let bump = client
        .prepare_cached(
            "INSERT INTO tenants (name, version, cleared) VALUES ($1, 1, CASE WHEN $2 THEN 1 ELSE 0 END) \
             ON CONFLICT (name) DO UPDATE SET version = tenants.version + 1, \
             cleared = CASE WHEN $2 THEN tenants.version + 1 ELSE tenants.cleared END \
             RETURNING version",
        )
        .await?;
    let bumps = touched.iter().map(|name| {
        let (bump, deleted) = (&bump, cleared.contains(name));
        async move {
            let row = client.query_one(bump, &[name, &deleted]).await?;
            Ok::<_, tokio_postgres::Error>((name.clone(), row.get::<_, i64>(0)))
        }
    });
    versions.extend(futures_util::future::try_join_all(bumps).await?);
    let faults = if faults_touched {
        let row = client
            .query_one(
                "UPDATE sandbox SET faults_version = faults_version + 1 WHERE id = 1 RETURNING faults_version",
                &[],
            )
            .await?;
        Some(row.get(0))
    } else {
        None
    };
    let steps: Vec<Step> = writes
        .iter()
        .flat_map(|write| {
            let version = tenant_of(write)
                .and_then(|name| versions.get(&name).copied())
                .unwrap_or_default();
            steps(write, version, outside)
        })
        .collect();
    pipeline(client, &steps).await?;
    if let Some(name) = created
        && !versions.contains_key(name)
    {
        client
            .execute(
                "DELETE FROM tenants WHERE name = $1 AND version = 0",
                &[&name],
            )
            .await?;
    }
    Ok(Committed { versions, faults })
}

/// One statement of a commit and its parameters.
type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;
type Step = (String, Vec<Param>);

/// The statements `write` runs, in order; an entity row is stamped with `version`, its
/// tenant's version after this commit. Changes made `outside` any request are a webhook
/// engine's (an attempt's outcome, a delivery put off or dropped): they change a delivery
/// the database still has and never make one. A tenant's reset through another replica may
/// have forgotten it while the attempt was in flight; written as a request writes, the
/// outcome put it back, retried and listed after the reset.
fn steps(write: &Write, version: i64, outside: bool) -> Vec<Step> {
    fn text(value: &str) -> Param {
        Box::new(value.to_owned())
    }
    match write {
        Write::Put {
            table: Table::WebhookDeliveries,
            tenant,
            id,
            position,
            doc,
        } if outside => vec![(
            format!(
                "UPDATE {} SET position = $3, doc = $4, version = $5 WHERE tenant = $1 AND id = $2",
                Table::WebhookDeliveries.name()
            ),
            vec![text(tenant), text(id), Box::new(*position), text(doc), Box::new(version)],
        )],
        Write::Put {
            table,
            tenant,
            id,
            position,
            doc,
        } if table.versioned() => vec![(
            format!(
                "INSERT INTO {} (tenant, id, position, doc, version) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant, id) DO UPDATE SET position = EXCLUDED.position, doc = EXCLUDED.doc, version = EXCLUDED.version",
                table.name()
            ),
            vec![text(tenant), text(id), Box::new(*position), text(doc), Box::new(version)],
        )],
        Write::Put {
            table,
            tenant,
            id,
            position,
            doc,
        } => vec![(
            format!(
                "INSERT INTO {} (tenant, id, position, doc) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, id) DO UPDATE SET position = EXCLUDED.position, doc = EXCLUDED.doc",
                table.name()
            ),
            vec![text(tenant), text(id), Box::new(*position), text(doc)],
        )],
        Write::Delete {
            table, tenant, id, ..
        } => vec![(
            format!("DELETE FROM {} WHERE tenant = $1 AND id = $2", table.name()),
            vec![text(tenant), text(id)],
        )],
        Write::ClearTenant { table, tenant } => vec![(
            format!("DELETE FROM {} WHERE tenant = $1", table.name()),
            vec![text(tenant)],
        )],
        Write::ClearTable(table) => vec![(format!("DELETE FROM {}", table.name()), Vec::new())],
        Write::Clock {
            offset_ms,
            frozen_at,
        } => vec![(
            "UPDATE sandbox SET offset_ms = $1, frozen_at = $2 WHERE id = 1".to_owned(),
            vec![Box::new(*offset_ms), Box::new(frozen_at.clone())],
        )],
        Write::Secret { name, value } => vec![(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
                .to_owned(),
            vec![text(name), text(value)],
        )],
        // Each tenant's rows past `keep` are trimmed in the background
        // ([`Database::trim_journal`]); a replica reading the table keeps only `keep`.
        Write::Journal { tenant, doc, .. } => vec![(
            "INSERT INTO journal (tenant, id, doc) VALUES ($1, nextval('journal_seq'), $2)"
                .to_owned(),
            vec![text(tenant), text(doc)],
        )],
        Write::ForgetJournal { rows } => rows
            .iter()
            .map(|(tenant, id)| -> Step {
                (
                    "DELETE FROM journal WHERE tenant = $1 AND id = $2".to_owned(),
                    vec![text(tenant), Box::new(*id)],
                )
            })
            .collect(),
        Write::Quarantine { table, row, reason } => vec![
            (
                "INSERT INTO quarantine (source, tenant, id, position, doc, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (source, tenant, id) DO UPDATE SET position = EXCLUDED.position, doc = EXCLUDED.doc, reason = EXCLUDED.reason"
                    .to_owned(),
                vec![
                    text(table.name()),
                    text(&row.tenant),
                    text(&row.id),
                    Box::new(i64::try_from(row.position).unwrap_or(i64::MAX)),
                    text(&row.doc),
                    text(reason),
                ],
            ),
            (
                format!("DELETE FROM {} WHERE tenant = $1 AND id = $2", table.name()),
                vec![text(&row.tenant), text(&row.id)],
            ),
        ],
    }
}

/// Runs `steps` in order as one pipeline: every statement prepared first (from the
/// connection's cache after the first time), then all sent at once, so a commit of a few
/// rows costs about one round trip rather than one per row.
async fn pipeline(client: &Object, steps: &[Step]) -> Result<(), tokio_postgres::Error> {
    let mut statements = Vec::with_capacity(steps.len());
    for (sql, _) in steps {
        statements.push(client.prepare_cached(sql).await?);
    }
    let executions = steps
        .iter()
        .zip(&statements)
        .map(|((_, params), statement)| {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|param| &**param as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            async move { client.execute(statement, &params).await }
        });
    futures_util::future::try_join_all(executions).await?;
    Ok(())
}

fn entity_row(row: &tokio_postgres::Row) -> Row {
    Row {
        tenant: row.get(0),
        id: row.get(1),
        position: u64::try_from(row.get::<_, i64>(2)).unwrap_or_default(),
        doc: row.get(3),
    }
}

async fn read_all(client: &Object) -> Result<Stored, tokio_postgres::Error> {
    let mut stored = Stored::default();
    for row in client.query("SELECT name, value FROM secrets", &[]).await? {
        stored.secrets.insert(row.get(0), row.get(1));
    }
    let clock = client
        .query_one("SELECT offset_ms, frozen_at FROM sandbox WHERE id = 1", &[])
        .await?;
    stored.clock = Some((clock.get(0), clock.get(1)));
    for table in Table::ALL.into_iter().chain([Table::LeafAccounts]) {
        let sql = format!(
            "SELECT tenant, id, position, doc FROM {} ORDER BY position",
            table.name()
        );
        let mut rows: Vec<Row> = client
            .query(&sql, &[])
            .await?
            .iter()
            .map(entity_row)
            .collect();
        if table != Table::WebhookDeliveries {
            // By tenant in byte order, as `Stored` promises: the database's collation may
            // order names otherwise (`acme-b` after `acmea`). The sort is stable, so each
            // tenant's rows stay in position order.
            rows.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        }
        stored.tables.insert(table.name(), rows);
    }
    Ok(stored)
}

/// Writes changes made outside any request, each batch in its own transaction, in order;
/// a batch that fails is tried again every [`RETRY_AFTER`] until it is written.
async fn write_in_background(database: Database, mut queue: mpsc::UnboundedReceiver<Vec<Write>>) {
    let mut waiting: std::collections::VecDeque<Vec<Write>> = std::collections::VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(batch) => waiting.push_back(batch),
                None => return,
            }
        }
        while let Ok(batch) = queue.try_recv() {
            waiting.push_back(batch);
        }
        while waiting.len() > MAX_BACKGROUND_BATCHES {
            waiting.pop_front();
            tracing::error!(database = %database.target, "too many changes made outside requests wait for the database; the oldest is dropped");
        }
        let Some(batch) = waiting.front() else {
            continue;
        };
        let written = async {
            let client = database
                .pool
                .get()
                .await
                .map_err(|error| error.to_string())?;
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|error| error.to_string())?;
            let applied = apply(&client, batch, None).await;
            let outcome = match applied {
                Ok(_) => client.batch_execute("COMMIT").await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                drop(Object::take(client));
                return Err(error.to_string());
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => {
                waiting.pop_front();
            }
            Err(error) => {
                tracing::error!(%error, database = %database.target, "a change made outside a request could not be written; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// The changes one request recorded, to be written by [`Txn::commit`].
#[derive(Default)]
pub struct Writes(Vec<Write>);

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tenants these changes belong to (their labels).
    pub fn tenants(&self) -> BTreeSet<String> {
        self.0.iter().filter_map(tenant_of).collect()
    }
}

/// What the task inside [`scoped`] has recorded.
#[derive(Default)]
struct Collected {
    writes: Vec<Write>,
    muted: bool,
    /// The request does not hold the fault table's lock ([`faults_held`]).
    faults_unheld: bool,
}

tokio::task_local! {
    static SCOPE: RefCell<Collected>;
}

/// Runs `work`, collecting the changes it records through a shared [`super::Sink`];
/// `faults_held` says whether its transaction holds the fault table's lock.
pub async fn scoped<F: std::future::Future>(faults_held: bool, work: F) -> (F::Output, Writes) {
    let collected = Collected {
        faults_unheld: !faults_held,
        ..Collected::default()
    };
    SCOPE
        .scope(RefCell::new(collected), async {
            let output = work.await;
            let writes = SCOPE.with(|collected| std::mem::take(&mut collected.borrow_mut().writes));
            (output, Writes(writes))
        })
        .await
}

/// Whether the current task may strike a fault: a request whose transaction holds the
/// fault table's lock, or work outside any request's scope. A request that did not take the
/// lock (no fault in force matched it when it began) strikes none, though its replica's copy
/// of the table may meanwhile have read back a fault that matches: struck unlocked, from
/// that copy, while another replica struck it under the lock, the fault fired once more
/// than its `times`.
pub fn faults_held() -> bool {
    SCOPE
        .try_with(|collected| !collected.borrow().faults_unheld)
        .unwrap_or(true)
}

/// Runs `work` recording nothing: a replica putting back rows it read from the database.
/// Outside [`scoped`], it runs in a scope of its own.
pub fn muted<T>(work: impl FnOnce() -> T) -> T {
    let set = |value: bool| {
        SCOPE
            .try_with(|collected| std::mem::replace(&mut collected.borrow_mut().muted, value))
            .ok()
    };
    match set(true) {
        Some(before) => {
            let output = work();
            set(before);
            output
        }
        None => SCOPE.sync_scope(
            RefCell::new(Collected {
                muted: true,
                ..Collected::default()
            }),
            work,
        ),
    }
}

/// A request's scope ([`scoped`]) taken to work done on another thread: whether it was
/// muted, and what the work recorded there, to add to the request's own.
pub(super) struct CarriedScope {
    muted: bool,
    faults_unheld: bool,
    writes: Vec<Write>,
}

impl CarriedScope {
    /// The current task's scope, if it is in one.
    pub(super) fn here() -> Option<CarriedScope> {
        SCOPE
            .try_with(|collected| {
                let collected = collected.borrow();
                CarriedScope {
                    muted: collected.muted,
                    faults_unheld: collected.faults_unheld,
                    writes: Vec::new(),
                }
            })
            .ok()
    }

    /// Runs `work` in a scope like the one taken, keeping what it records.
    pub(super) fn run<T>(mut self, work: impl FnOnce() -> T) -> (T, CarriedScope) {
        let collected = RefCell::new(Collected {
            muted: self.muted,
            faults_unheld: self.faults_unheld,
            writes: Vec::new(),
        });
        let output = SCOPE.sync_scope(collected, || {
            let output = work();
            self.writes =
                SCOPE.with(|collected| std::mem::take(&mut collected.borrow_mut().writes));
            output
        });
        (output, self)
    }

    /// Adds what the work recorded to the current task's scope, after what it recorded
    /// before: the task waited for the work, so nothing of its own came in between.
    pub(super) fn rejoin(self) {
        let _ = SCOPE.try_with(|collected| collected.borrow_mut().writes.extend(self.writes));
    }
}

/// Where a shared sink's changes go: into the request's scope, nowhere while muted, or
/// (outside any request) to the background writer.
pub(super) fn record(database: &Database, writes: Vec<Write>) {
    let mut writes = Some(writes);
    let inside = SCOPE.try_with(|collected| {
        let mut collected = collected.borrow_mut();
        if !collected.muted
            && let Some(writes) = writes.take()
        {
            collected.writes.extend(writes);
        }
    });
    if inside.is_err()
        && let Some(writes) = writes
    {
        database.write_later(writes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writes of one change: a secret named `name`.
    fn change(name: &'static str) -> Vec<Write> {
        let mut changes = super::super::Changes::default();
        changes.secret(name, "value".to_owned());
        changes.writes
    }

    /// What work on another thread records in the scope it was given joins the request's
    /// scope, after what the request recorded before handing it over.
    #[tokio::test]
    async fn writes_made_on_another_thread_join_the_requests_scope_after_its_own() {
        let ((), writes) = scoped(true, async {
            SCOPE.with(|collected| collected.borrow_mut().writes.extend(change("first")));
            let carried = CarriedScope::here().expect("in a scope");
            let ((), carried) = std::thread::spawn(move || {
                carried.run(|| {
                    SCOPE.with(|collected| collected.borrow_mut().writes.extend(change("second")));
                })
            })
            .join()
            .expect("the thread");
            carried.rejoin();
        })
        .await;
        let order: Vec<String> = writes.0.iter().map(|write| format!("{write:?}")).collect();
        assert_eq!(order.len(), 2, "{order:?}");
        assert!(
            order[0].contains("first") && order[1].contains("second"),
            "{order:?}"
        );
        assert!(CarriedScope::here().is_none(), "no scope outside a request");
    }

    /// A request that does not hold the fault table's lock strikes no fault, in its own
    /// task, muted, or in work it hands to another thread; one that holds it, and work
    /// outside any request, may.
    #[tokio::test]
    async fn only_a_request_holding_the_fault_lock_may_strike() {
        assert!(faults_held(), "outside any request");
        for held in [true, false] {
            let (seen, _) = scoped(held, async {
                let carried = CarriedScope::here().expect("in a scope");
                let (elsewhere, _) = std::thread::spawn(move || carried.run(faults_held))
                    .join()
                    .expect("the thread");
                [faults_held(), muted(faults_held), elsewhere]
            })
            .await;
            assert_eq!(seen, [held; 3], "held: {held}");
        }
    }
}
