//! The one thread that writes the state file. It sleeps until changes are queued, takes
//! *all* of them, commits them in one transaction and then tells every waiting response how
//! far the file has got. While it commits, new changes pile up and go into the next
//! transaction together: the busier the sandbox, the larger the batches, so durability
//! costs one write of the log per batch rather than per request. Under heavy load (the last
//! batch held many recorded changes) it also lets the next batch gather for up to 2 ms
//! ([`gather`]), so each commit rewrites the same pages for more requests.
//!
//! The write-ahead log is copied back into the file (checkpointed) by a second thread on a
//! connection of its own, asked after a commit leaves the log past [`CHECKPOINT_PAGES`]:
//! SQLite's automatic checkpoint ran inside the commit, so a whole batch waited on the
//! copying and its two `fsync`s, and nothing was committed meanwhile. Under sustained writes
//! the log can only start over once a checkpoint has copied all of it, which the
//! checkpointer racing the writer may never do; past [`LOG_BOUND`] the writer therefore
//! waits for the checkpointer's pass and copies the rest itself, so the log stays bounded.
//!
//! A failed commit (disk full, I/O error) loses nothing: its writes are kept, in order, and
//! committed again with whatever queued up since, every [`RETRY_AFTER`], until a commit
//! succeeds. Meanwhile [`super::Sink::settled`] reports the failure, so the requests that
//! wrote are told their change is not saved yet; once a retry succeeds the failure is
//! cleared and everything goes on as before. Each transaction holds whole requests only,
//! so a request's changes reach the file all together or not at all.

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::hooks::Wal;
use rusqlite::{Connection, params};

use super::{Pending, Queue, Table, Write};

/// How long the writer waits before committing again after a failed commit.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Pages in the write-ahead log past which the checkpointer is asked to copy it back after
/// a commit: SQLite's own default for its automatic checkpoint.
const CHECKPOINT_PAGES: c_int = 1000;
/// Pages past which the writer checkpoints itself, waiting for the checkpointer's pass to
/// end: the log's bound (16 MiB of pages), whatever the load.
const LOG_BOUND: c_int = 4 * CHECKPOINT_PAGES;

/// The longest the writer gathers a batch ([`gather`]).
const GATHER_AT_MOST: Duration = Duration::from_millis(2);
/// While gathering, this long without a new change ends it.
const GATHER_QUIET: Duration = Duration::from_micros(200);
/// Changes in the last batch (each request's recorded together; a create records two or
/// three: its link, its delivery, the oldest delivery it trims) from which the writer
/// gathers the next ([`gather`]).
const GATHER_FROM: u64 = 16;

thread_local! {
    /// Pages in the write-ahead log after this thread's last commit.
    static LOG_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// SQLite's hook after each commit; registering it turns the automatic checkpoint off.
fn note_log_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.set(pages);
    Ok(())
}

pub(super) fn run(queue: &Arc<Queue>, connection: Connection) {
    // One checkpoint at a time: the writer's own, past the log's bound, waits for the
    // checkpointer's to end, then copies the rest (nothing is written meanwhile), so the
    // log starts over at the next commit.
    let one_at_a_time = Mutex::new(());
    let connection = std::thread::scope(|scope| {
        let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let one_at_a_time = &one_at_a_time;
        let started = Connection::open(&queue.path)
            .map_err(|error| error.to_string())
            .and_then(|own| {
                std::thread::Builder::new()
                    .name("linkbox-checkpoint".into())
                    .spawn_scoped(scope, move || {
                        while asked.recv().is_ok() {
                            checkpoint(&own, one_at_a_time);
                        }
                    })
                    .map_err(|error| error.to_string())
            });
        let ask = match started {
            Ok(_) => Some(ask),
            Err(error) => {
                tracing::warn!(%error, "state file checkpointer not started; the writer checkpoints");
                None
            }
        };
        // The checkpointer ends when `write` drops `ask`; the scope waits for it.
        write(queue, connection, ask, one_at_a_time)
    });
    if let Err(error) = connection.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::warn!(%error, "state file checkpoint failed; the write-ahead log still holds every change");
    }
    if let Err((_, error)) = connection.close() {
        tracing::warn!(%error, "state file did not close cleanly");
    }
}

/// Commits whatever is queued, batch after batch, until the queue closes; gives the
/// connection back.
fn write(
    queue: &Arc<Queue>,
    mut connection: Connection,
    checkpointer: Option<std::sync::mpsc::SyncSender<()>>,
    one_at_a_time: &Mutex<()>,
) -> Connection {
    connection.set_prepared_statement_cache_capacity(4 * Table::ALL.len() + 8);
    connection.wal_hook(Some(note_log_pages));
    let statements = Statements::new();
    // Writes of failed commits, oldest first, to be committed before anything newer.
    let mut unsaved: Vec<Write> = Vec::new();
    // Changes recorded in the last batch committed.
    let mut last_batch = 0;
    loop {
        gather(queue, last_batch);
        let (upto, closing) = {
            let mut pending = queue.pending.lock();
            if unsaved.is_empty() {
                while pending.writes.is_empty() && !pending.closing {
                    queue.wake.wait(&mut pending);
                }
            } else if !pending.closing {
                queue.wake.wait_for(&mut pending, RETRY_AFTER);
            }
            let upto = queue.recorded.load(Ordering::Acquire);
            unsaved.append(&mut pending.writes);
            (upto, pending.closing)
        };
        if !unsaved.is_empty() {
            match commit(&mut connection, &statements, &unsaved) {
                Ok(()) => {
                    unsaved.clear();
                    queue.progress.send_modify(|progress| {
                        last_batch = upto.saturating_sub(progress.committed);
                        if progress.failed.take().is_some() {
                            tracing::info!(path = %queue.path.display(), "state file writable again; every change is saved");
                        }
                        progress.committed = upto;
                    });
                    let pages = LOG_PAGES.get();
                    if pages >= CHECKPOINT_PAGES {
                        match &checkpointer {
                            // A full channel is a pass already asked for: it copies all
                            // there is when it runs.
                            Some(ask) if pages < LOG_BOUND => {
                                let _ = ask.try_send(());
                            }
                            _ => checkpoint(&connection, one_at_a_time),
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(%error, path = %queue.path.display(), "state file write failed; retrying");
                    queue.progress.send_modify(|progress| {
                        progress.failed = Some(error.to_string().into());
                    });
                    if closing {
                        tracing::error!(path = %queue.path.display(), "closing with changes the state file does not have");
                        break;
                    }
                }
            }
        }
        if closing && unsaved.is_empty() && queue.pending.lock().writes.is_empty() {
            break;
        }
    }
    connection
}

/// Lets a batch grow before it is committed, when the last one held [`GATHER_FROM`]
/// recorded changes or more (many requests are waiting on the file at once) and changes
/// already wait: until no change has been recorded for [`GATHER_QUIET`], or
/// [`GATHER_AT_MOST`] has passed. Under lighter load every batch is committed as soon as
/// the writer is free, as before: a few clients all waiting on one commit would only wait
/// longer.
///
/// The reason is the log. Each commit writes every page it touched whole, and each table
/// has one rightmost leaf per partner, so with 64 clients creating links for four partners
/// the writer wrote about 19 KB per create (the log, and its share of copying it back);
/// gathered, about 11 KB. Less log to write and copy back means fewer pauses at the log's
/// bound, which set the p99: 22–24 ms before, 9–13 ms gathered.
fn gather(queue: &Queue, last_batch: u64) {
    if !gathers(last_batch, &queue.pending.lock()) {
        return;
    }
    let started = Instant::now();
    let mut recorded = queue.recorded.load(Ordering::Acquire);
    // Slept in slices rather than woken by each change: a wake-up per request is a context
    // switch, and measured a worse p99 than slices (docs/benchmarks.md).
    loop {
        std::thread::sleep(GATHER_QUIET);
        let latest = queue.recorded.load(Ordering::Acquire);
        if !goes_on(started.elapsed(), latest != recorded) || queue.pending.lock().closing {
            return;
        }
        recorded = latest;
    }
}

/// Whether the writer gathers before its next commit ([`gather`]).
fn gathers(last_batch: u64, pending: &Pending) -> bool {
    last_batch >= GATHER_FROM && !pending.writes.is_empty() && !pending.closing
}

/// Whether a gathering begun `gathering` ago goes on, `more` changes having been recorded
/// in its last slice.
fn goes_on(gathering: Duration, more: bool) -> bool {
    more && gathering < GATHER_AT_MOST
}

/// Copies the write-ahead log back into the file; once a pass has copied all of it, the
/// next commit starts the log over. A failure is only logged: the log still holds every
/// change, and the next commit past the bound tries again.
fn checkpoint(connection: &Connection, one_at_a_time: &Mutex<()>) {
    let _only = one_at_a_time.lock();
    match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(_) => LOG_PAGES.set(0),
        Err(error) => {
            tracing::warn!(%error, "state file checkpoint failed; the write-ahead log keeps every change")
        }
    }
}

/// The SQL of each statement, per table, built once so the statement cache is keyed by it.
struct Statements {
    put: Vec<String>,
    delete: Vec<String>,
    clear_tenant: Vec<String>,
    clear_table: Vec<String>,
}

impl Statements {
    fn new() -> Statements {
        let each =
            |sql: fn(&str) -> String| Table::ALL.iter().map(|table| sql(table.name())).collect();
        Statements {
            put: each(|table| {
                format!(
                    "INSERT INTO {table} (tenant, id, position, doc) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (tenant, position, id) DO UPDATE SET doc = excluded.doc"
                )
            }),
            delete: each(|table| {
                format!("DELETE FROM {table} WHERE tenant = ?1 AND position = ?2 AND id = ?3")
            }),
            clear_tenant: each(|table| format!("DELETE FROM {table} WHERE tenant = ?1")),
            clear_table: each(|table| format!("DELETE FROM {table}")),
        }
    }
}

fn index(table: Table) -> usize {
    Table::ALL
        .iter()
        .position(|other| *other == table)
        .unwrap_or_default()
}

fn commit(
    connection: &mut Connection,
    statements: &Statements,
    writes: &[Write],
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for write in writes {
        match write {
            Write::Put {
                table,
                tenant,
                id,
                position,
                doc,
            } => {
                transaction
                    .prepare_cached(&statements.put[index(*table)])?
                    .execute(params![&**tenant, id, position, doc])?;
            }
            Write::Delete {
                table,
                tenant,
                id,
                position,
            } => {
                transaction
                    .prepare_cached(&statements.delete[index(*table)])?
                    .execute(params![&**tenant, position, id])?;
            }
            Write::ClearTenant { table, tenant } => {
                transaction
                    .prepare_cached(&statements.clear_tenant[index(*table)])?
                    .execute(params![&**tenant])?;
            }
            Write::ClearTable(table) => {
                transaction
                    .prepare_cached(&statements.clear_table[index(*table)])?
                    .execute([])?;
            }
            Write::Clock {
                offset_ms,
                frozen_at,
            } => {
                transaction
                    .prepare_cached(
                        "INSERT INTO clock (id, offset_ms, frozen_at) VALUES (1, ?1, ?2) \
                         ON CONFLICT (id) DO UPDATE SET offset_ms = excluded.offset_ms, frozen_at = excluded.frozen_at",
                    )?
                    .execute(params![offset_ms, frozen_at])?;
            }
            Write::Secret { name, value } => {
                transaction
                    .prepare_cached(
                        "INSERT INTO secrets (name, value) VALUES (?1, ?2) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![name, value])?;
            }
            // Only a shared database keeps the journal; a file is never sent one.
            Write::Journal { .. } => {}
            Write::Quarantine { table, row, reason } => {
                let position = i64::try_from(row.position).unwrap_or(i64::MAX);
                transaction
                    .prepare_cached(
                        "INSERT OR REPLACE INTO quarantine (source, tenant, id, position, doc, reason) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![table.name(), row.tenant, row.id, position, row.doc, reason])?;
                transaction
                    .prepare_cached(&statements.delete[index(*table)])?
                    .execute(params![row.tenant, position, row.id])?;
            }
        }
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;

    fn queue() -> Queue {
        Queue {
            path: "gather.db".into(),
            pending: Mutex::new(Pending::default()),
            wake: parking_lot::Condvar::new(),
            recorded: AtomicU64::new(0),
            progress: tokio::sync::watch::channel(super::super::Progress::default()).0,
            muted: AtomicBool::new(false),
            writer: Mutex::new(None),
            lock: Mutex::new(None),
        }
    }

    fn record(queue: &Queue, n: u64) {
        queue
            .pending
            .lock()
            .writes
            .push(Write::ClearTable(Table::M2mLinks));
        queue.recorded.store(n, Ordering::Release);
    }

    #[test]
    fn only_a_busy_writer_gathers() {
        let mut pending = Pending::default();
        assert!(!gathers(GATHER_FROM, &pending), "nothing waits");
        pending.writes.push(Write::ClearTable(Table::M2mLinks));
        assert!(gathers(GATHER_FROM, &pending));
        assert!(
            !gathers(GATHER_FROM - 1, &pending),
            "a few clients waiting on one commit are not held"
        );
        assert!(!gathers(0, &pending), "one request at a time is not held");
        pending.closing = true;
        assert!(!gathers(GATHER_FROM, &pending), "closing is not held");
    }

    #[test]
    fn gathering_waits_for_more_then_ends_when_changes_stop() {
        let queue = queue();
        record(&queue, 1);
        let started = Instant::now();
        let gathered = std::thread::scope(|scope| {
            scope.spawn(|| {
                for n in 2..=5 {
                    record(&queue, n);
                    std::thread::sleep(GATHER_QUIET / 4);
                }
            });
            gather(&queue, GATHER_FROM);
            started.elapsed()
        });
        assert!(gathered >= GATHER_QUIET, "it waited for more: {gathered:?}");
        assert!(gathered < Duration::from_secs(5), "{gathered:?}");
        assert_eq!(queue.pending.lock().writes.len(), 5, "every change is kept");
    }

    #[test]
    fn gathering_goes_on_while_changes_come_and_never_past_its_bound() {
        assert!(goes_on(Duration::ZERO, true));
        assert!(goes_on(GATHER_AT_MOST / 2, true));
        assert!(!goes_on(Duration::ZERO, false), "a quiet slice ends it");
        assert!(
            !goes_on(GATHER_AT_MOST, true),
            "changes that keep coming do not hold a batch past the bound"
        );
    }
}
