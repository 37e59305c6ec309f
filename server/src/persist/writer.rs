//! The one thread that writes the state file. It sleeps until changes are queued, takes
//! *all* of them, commits them in one transaction and then tells every waiting response how
//! far the file has got. While it commits, new changes pile up and go into the next
//! transaction together: the busier the sandbox, the larger the batches, so durability
//! costs one write of SQLite's log per batch rather than per request. A batch is committed to
//! the write log, one compact row, and the log is applied to the tables later, many
//! batches at a time ([`write_log`]): so a commit writes about as many pages as its changes
//! fill, and is cheap enough that a batch is committed as soon as the writer is free (an
//! earlier writer let busy batches gather for up to 2 ms, so that each commit rewrote the
//! tables' last pages for more requests; with the log, the clients' wait cost more than it
//! saved: docs/benchmarks.md).
//!
//! The write-ahead log is copied back into the file (checkpointed) by a second thread on a
//! connection of its own, asked after a commit leaves the log past [`CHECKPOINT_BYTES`]:
//! SQLite's automatic checkpoint ran inside the commit, so a whole batch waited on the
//! copying and its two `fsync`s, and nothing was committed meanwhile. Under sustained writes
//! the log can only start over once a checkpoint has copied all of it, which the
//! checkpointer racing the writer may never do; past [`LOG_BOUND_BYTES`] the writer therefore
//! waits for the checkpointer's pass and copies the rest itself, so the log stays bounded.
//!
//! A failed commit (disk full, I/O error) loses nothing: its writes are kept, in order, and
//! committed again with whatever queued up since, every [`RETRY_AFTER`], until a commit
//! succeeds. Meanwhile [`super::Sink::settled`] reports the failure, so the requests that
//! wrote are told their change is not saved yet; once a retry succeeds the failure is
//! cleared and everything goes on as before. Each transaction holds whole requests only,
//! so a request's changes reach the file all together or not at all. A failed apply loses
//! nothing either, and no request waits on it: the write log keeps every change until an
//! apply succeeds, tried again every [`RETRY_AFTER`] from the log itself (the changes are
//! no longer kept in memory meanwhile), and once more when linkbox stops; what is left is
//! applied when the file is next opened.

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::hooks::Wal;
use rusqlite::{Connection, Transaction, params};

use super::write_log::{self, APPLY_AT, APPLY_BYTES, APPLY_IDLE, Entry};
use super::{Queue, Table, Write};

/// How long the writer waits before committing again after a failed commit.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bytes of pages in the write-ahead log past which the checkpointer is asked to copy it
/// back after a commit: SQLite's own default for its automatic checkpoint, 1,000 pages of
/// 4 KiB (500 of this version's 8 KiB, [`super::schema::PAGE_SIZE`]).
const CHECKPOINT_BYTES: i64 = 1000 * 4096;
/// Bytes of pages past which the writer checkpoints itself, waiting for the checkpointer's
/// pass to end: the log's bound (16 MiB of pages, and the commit that crossed it: at most an
/// apply of [`APPLY_BYTES`] of documents), whatever the load.
const LOG_BOUND_BYTES: i64 = 4 * CHECKPOINT_BYTES;

/// [`CHECKPOINT_BYTES`] and [`LOG_BOUND_BYTES`] in pages of `connection`'s file.
fn log_thresholds(connection: &Connection) -> (c_int, c_int) {
    let page = connection
        .pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0))
        .unwrap_or(4096)
        .max(512);
    let pages = |bytes: i64| c_int::try_from(bytes / page).unwrap_or(c_int::MAX);
    (pages(CHECKPOINT_BYTES), pages(LOG_BOUND_BYTES))
}

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

/// Commits whatever is queued, batch after batch, to the write log, and applies the log to
/// the tables when it is due ([`write_log`]), until the queue closes; gives the connection
/// back.
fn write(
    queue: &Arc<Queue>,
    mut connection: Connection,
    checkpointer: Option<std::sync::mpsc::SyncSender<()>>,
    one_at_a_time: &Mutex<()>,
) -> Connection {
    connection.set_prepared_statement_cache_capacity(4 * Table::ALL.len() + 8);
    connection.wal_hook(Some(note_log_pages));
    let (checkpoint_pages, log_bound) = log_thresholds(&connection);
    let statements = Statements::new();
    // Writes of failed commits, oldest first, to be committed before anything newer.
    let mut unsaved: Vec<Write> = Vec::new();
    let mut unapplied = Unapplied::default();
    // The bytes of the write log's last row, its capacity kept from batch to batch.
    let mut buffer = Vec::new();
    let after_commit = |connection: &Connection| {
        let pages = LOG_PAGES.get();
        if pages >= checkpoint_pages {
            match &checkpointer {
                // A full channel is a pass already asked for: it copies all there is
                // when it runs.
                Some(ask) if pages < log_bound => {
                    let _ = ask.try_send(());
                }
                _ => checkpoint(connection, one_at_a_time),
            }
        }
    };
    loop {
        let (upto, closing, idle) = {
            let mut pending = queue.pending.lock();
            let mut idle = false;
            if unsaved.is_empty() {
                while pending.writes.is_empty() && !pending.closing {
                    if unapplied.is_empty() {
                        queue.wake.wait(&mut pending);
                    } else if queue.wake.wait_for(&mut pending, APPLY_IDLE).timed_out() {
                        idle = pending.writes.is_empty();
                        break;
                    }
                }
            } else if !pending.closing {
                queue.wake.wait_for(&mut pending, RETRY_AFTER);
            }
            let upto = queue.recorded.load(Ordering::Acquire);
            unsaved.append(&mut pending.writes);
            (upto, pending.closing, idle)
        };
        if !unsaved.is_empty() {
            match log(&mut connection, &unsaved, &mut buffer) {
                Ok(()) => {
                    unapplied.logged(&mut unsaved);
                    queue.progress.send_modify(|progress| {
                        if progress.failed.take().is_some() {
                            tracing::info!(path = %queue.path.display(), "state file writable again; every change is saved");
                        }
                        progress.committed = upto;
                    });
                    after_commit(&connection);
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
        if unsaved.is_empty() && unapplied.due(idle, closing) {
            match apply(&mut connection, &statements, &unapplied) {
                Ok(()) => unapplied = Unapplied::default(),
                Err(error) => {
                    // Nothing is lost: the log keeps every change until an apply succeeds.
                    tracing::warn!(%error, path = %queue.path.display(), "state file: applying the write log failed; it keeps every change");
                    unapplied.failed();
                }
            }
            after_commit(&connection);
        }
        if closing && unsaved.is_empty() && queue.pending.lock().writes.is_empty() {
            break;
        }
    }
    connection
}

/// What the write log holds that the tables do not yet.
#[derive(Default)]
struct Unapplied {
    /// The changes logged since the last apply, oldest first, while they are all of them.
    writes: Vec<Write>,
    /// The bytes of the documents in `writes`.
    bytes: usize,
    /// An apply failed: the next reads the log instead of `writes`, which is no longer kept
    /// (so a failing apply holds no memory), no sooner than this.
    from_log: Option<Instant>,
}

impl Unapplied {
    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.from_log.is_none()
    }

    /// `writes` were committed to the log.
    fn logged(&mut self, writes: &mut Vec<Write>) {
        if self.from_log.is_some() {
            writes.clear();
        } else {
            self.bytes += writes.iter().map(Write::doc_len).sum::<usize>();
            self.writes.append(writes);
        }
    }

    /// Whether to apply now: the log holds [`APPLY_AT`] changes or [`APPLY_BYTES`] of
    /// documents, or the writer is idle; after a failure, once [`RETRY_AFTER`] has passed.
    /// Closing, always (but for nothing).
    fn due(&self, idle: bool, closing: bool) -> bool {
        match self.from_log {
            Some(since) => closing || since.elapsed() >= RETRY_AFTER,
            None => {
                !self.writes.is_empty()
                    && (idle
                        || closing
                        || self.writes.len() >= APPLY_AT
                        || self.bytes >= APPLY_BYTES)
            }
        }
    }

    fn failed(&mut self) {
        *self = Unapplied {
            from_log: Some(Instant::now()),
            ..Unapplied::default()
        };
    }
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

/// The place of the table named `name` in [`Table::ALL`], and so in [`Statements`].
fn index(name: &str) -> rusqlite::Result<usize> {
    Table::ALL
        .iter()
        .position(|table| table.name() == name)
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("the write log names no table {name:?}").into(),
            )
        })
}

/// Commits `writes` to the write log: one transaction, a row or a few.
fn log(
    connection: &mut Connection,
    writes: &[Write],
    buffer: &mut Vec<u8>,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    write_log::append(&transaction, writes, buffer)?;
    transaction.commit()
}

/// Applies what the log holds to the tables and empties it, in one transaction.
fn apply(
    connection: &mut Connection,
    statements: &Statements,
    unapplied: &Unapplied,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    if unapplied.from_log.is_some() {
        apply_logged(&transaction, statements)?;
    } else {
        for entry in unapplied.writes.iter().filter_map(Entry::of) {
            apply_entry(&transaction, statements, entry)?;
        }
        write_log::clear(&transaction)?;
    }
    transaction.commit()
}

/// Applies whatever the write log of a file being opened still holds (linkbox stopped
/// before applying it), so that reading the file finds every change in its table.
pub(super) fn apply_log(connection: &mut Connection) -> rusqlite::Result<()> {
    if write_log::is_empty(connection)? {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    apply_logged(&transaction, &Statements::new())?;
    transaction.commit()
}

/// Applies every row of the write log, as its bytes read, and empties it.
fn apply_logged(transaction: &Transaction<'_>, statements: &Statements) -> rusqlite::Result<()> {
    write_log::apply_all(transaction, &mut |transaction, entry| {
        apply_entry(transaction, statements, entry)
    })
}

/// Makes one change to its table.
fn apply_entry(
    transaction: &Transaction<'_>,
    statements: &Statements,
    entry: Entry<'_>,
) -> rusqlite::Result<()> {
    match entry {
        Entry::Put {
            table,
            tenant,
            id,
            position,
            doc,
        } => {
            transaction
                .prepare_cached(&statements.put[index(table)?])?
                .execute(params![tenant, id, position, doc])?;
        }
        Entry::Delete {
            table,
            tenant,
            id,
            position,
        } => {
            transaction
                .prepare_cached(&statements.delete[index(table)?])?
                .execute(params![tenant, position, id])?;
        }
        Entry::ClearTenant { table, tenant } => {
            transaction
                .prepare_cached(&statements.clear_tenant[index(table)?])?
                .execute(params![tenant])?;
        }
        Entry::ClearTable { table } => {
            transaction
                .prepare_cached(&statements.clear_table[index(table)?])?
                .execute([])?;
        }
        Entry::Clock {
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
        Entry::Secret { name, value } => {
            transaction
                .prepare_cached(
                    "INSERT INTO secrets (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![name, value])?;
        }
        Entry::Quarantine {
            table,
            tenant,
            id,
            position,
            doc,
            reason,
        } => {
            transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO quarantine (source, tenant, id, position, doc, reason) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![table, tenant, id, position, doc, reason])?;
            transaction
                .prepare_cached(&statements.delete[index(table)?])?
                .execute(params![tenant, position, id])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh state file at the latest schema, in a directory of its own.
    struct File(std::path::PathBuf);

    impl File {
        fn new(name: &str) -> File {
            let dir =
                std::env::temp_dir().join(format!("linkbox-writer-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temporary directory");
            File(dir.join("state.db"))
        }

        fn open(&self) -> Connection {
            super::super::schema::open(&self.0).expect("a state file")
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn link(tenant: &Arc<str>, position: i64) -> Write {
        Write::Put {
            table: Table::M2mLinks,
            tenant: tenant.clone(),
            id: format!("link_{position}"),
            position,
            doc: format!(r#"{{"referenceId":"customer-{position}"}}"#),
        }
    }

    fn links(connection: &Connection) -> Vec<(String, i64, String)> {
        let mut select = connection
            .prepare("SELECT tenant, position, doc FROM m2m_links ORDER BY tenant, position")
            .expect("select");
        select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("links")
    }

    fn logged(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT count(*) FROM write_log", [], |row| row.get(0))
            .expect("count")
    }

    #[test]
    fn the_log_thresholds_are_the_same_bytes_whatever_the_page_size() {
        let file = File::new("thresholds");
        let connection = file.open();
        // A file linkbox makes: 8 KiB pages.
        assert_eq!(log_thresholds(&connection), (500, 2_000));
        let old = Connection::open_in_memory().expect("in-memory database");
        old.pragma_update(None, "page_size", 4096)
            .expect("page size");
        assert_eq!(log_thresholds(&old), (1_000, 4_000));
    }

    #[test]
    fn a_logged_batch_is_in_the_log_until_applied_then_only_in_its_tables() {
        let file = File::new("apply");
        let mut connection = file.open();
        let acme: Arc<str> = Arc::from("acme");
        let writes: Vec<Write> = (0..3).map(|position| link(&acme, position)).collect();
        let mut buffer = Vec::new();
        log(&mut connection, &writes, &mut buffer).expect("logged");
        assert_eq!(logged(&connection), 1, "one commit, one row");
        assert!(links(&connection).is_empty(), "not applied yet");

        let mut unapplied = Unapplied::default();
        let mut batch = writes;
        unapplied.logged(&mut batch);
        assert!(batch.is_empty() && !unapplied.is_empty());
        apply(&mut connection, &Statements::new(), &unapplied).expect("applied");
        assert_eq!(logged(&connection), 0, "the apply empties the log");
        assert_eq!(
            links(&connection),
            (0..3)
                .map(|n| (
                    "acme".to_owned(),
                    n,
                    format!(r#"{{"referenceId":"customer-{n}"}}"#)
                ))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_file_opened_with_rows_in_its_log_gets_them_in_their_tables_in_order() {
        // linkbox stopped (killed) after commits to the log and before applying them.
        let file = File::new("reopen");
        let acme: Arc<str> = Arc::from("acme");
        let bravo: Arc<str> = Arc::from("bravo");
        {
            let mut connection = file.open();
            let mut buffer = Vec::new();
            log(
                &mut connection,
                &[link(&acme, 0), link(&bravo, 0)],
                &mut buffer,
            )
            .expect("first");
            // A later commit replaces a row and clears another partner's: applied in the
            // order they were committed, not table by table.
            let replaced = Write::Put {
                table: Table::M2mLinks,
                tenant: acme.clone(),
                id: "link_0".into(),
                position: 0,
                doc: "{\"referenceId\":\"renamed\"}".into(),
            };
            let cleared = Write::ClearTenant {
                table: Table::M2mLinks,
                tenant: bravo.clone(),
            };
            log(
                &mut connection,
                &[replaced, cleared, link(&bravo, 1)],
                &mut buffer,
            )
            .expect("second");
            assert_eq!(logged(&connection), 2);
        }
        let mut connection = file.open();
        apply_log(&mut connection).expect("applied on opening");
        assert_eq!(logged(&connection), 0);
        assert_eq!(
            links(&connection),
            vec![
                (
                    "acme".to_owned(),
                    0,
                    r#"{"referenceId":"renamed"}"#.to_owned()
                ),
                (
                    "bravo".to_owned(),
                    1,
                    r#"{"referenceId":"customer-1"}"#.to_owned()
                ),
            ]
        );
        apply_log(&mut connection).expect("an empty log is nothing to do");
        assert_eq!(links(&connection).len(), 2);
    }

    #[test]
    fn an_unreadable_log_row_refuses_the_file_and_keeps_the_row() {
        let file = File::new("unreadable");
        let mut connection = file.open();
        connection
            .execute("INSERT INTO write_log (batch) VALUES (x'05ff')", [])
            .expect("a broken row");
        let error = apply_log(&mut connection).expect_err("refused");
        assert!(error.to_string().contains("write_log row 1"), "{error}");
        assert_eq!(logged(&connection), 1, "nothing thrown away");
    }

    #[test]
    fn an_apply_is_due_at_its_size_when_idle_or_closing_and_after_a_failure_once_retried() {
        let acme: Arc<str> = Arc::from("acme");
        let mut unapplied = Unapplied::default();
        assert!(!unapplied.due(true, true), "nothing to apply");
        unapplied.logged(&mut vec![link(&acme, 0)]);
        assert!(!unapplied.due(false, false), "a busy writer waits for more");
        assert!(unapplied.due(true, false), "an idle one applies");
        assert!(unapplied.due(false, true), "a closing one applies");
        let mut many: Vec<Write> = (1..APPLY_AT as i64).map(|n| link(&acme, n)).collect();
        unapplied.logged(&mut many);
        assert!(
            unapplied.due(false, false),
            "{APPLY_AT} changes are applied at once"
        );

        let mut big = Unapplied::default();
        let doc = "x".repeat(APPLY_BYTES / 4);
        for position in 0..4 {
            assert!(!big.due(false, false), "{position} quarter(s) of the bytes");
            big.logged(&mut vec![Write::Put {
                table: Table::M2mLinks,
                tenant: acme.clone(),
                id: format!("link_{position}"),
                position,
                doc: doc.clone(),
            }]);
        }
        assert!(
            big.due(false, false),
            "{APPLY_BYTES} bytes of documents are applied at once"
        );

        unapplied.failed();
        assert!(!unapplied.is_empty(), "the log still holds them");
        assert!(
            !unapplied.due(true, false),
            "not again before {RETRY_AFTER:?}"
        );
        assert!(
            unapplied.due(false, true),
            "but tried once more when closing"
        );
        let mut later = vec![link(&acme, 9_999)];
        unapplied.logged(&mut later);
        assert!(
            later.is_empty() && unapplied.writes.is_empty() && unapplied.bytes == 0,
            "a failing apply keeps nothing in memory: the log has it"
        );
        unapplied.from_log = Instant::now().checked_sub(RETRY_AFTER);
        assert!(unapplied.due(false, false), "retried from the log");
    }
}
