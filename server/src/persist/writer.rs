//! Who writes a state file: the responses that wait on it, a writer thread, an applier
//! thread.
//!
//! Changes are queued in memory ([`super::Sink::record`]); the log file and what goes with
//! it are one [`Lead`], and whoever holds it takes *all* that is queued, appends it to the
//! write log as one frame ([`write_log`]) and then tells every waiting response how far the
//! log has got. Most often that is a response: the first whose change is not yet in the
//! log and that finds the lead free writes everything queued, its own change and every
//! other, and the rest wait on it ([`super::Sink::settled`], group commit as databases do
//! it). It yields once to its runtime first, so the requests its worker already has in hand
//! queue their changes into the same frame; while it writes, new changes pile up and go
//! into the next frame together. The busier the sandbox, the larger the frames, so
//! durability costs one `write` per frame rather than per request, and a response waits on
//! no other thread. (A thread that did every append, woken by each batch's first change,
//! left the two cores idle a tenth of the time while the responses waited for it to be
//! scheduled; `--state` creates ran 11% slower with it, over three alternated rounds:
//! docs/benchmarks.md.)
//!
//! The writer thread (`linkbox-state`) appends what no response waits on (a webhook's
//! attempt, the clock's tick) [`GRACE`] after it is queued, retries a failed append, waits
//! for a busy applier, and hands the log over when it has been idle and when linkbox
//! stops. A response never blocks on those: it leaves them to the writer thread
//! ([`Published::Deferred`]).
//!
//! The applier (`linkbox-apply`) owns the SQLite connection. The writer hands it the log,
//! and the changes it holds, once they are due ([`write_log::APPLY_AT`] and the rest); it
//! applies them in one transaction, records the last frame applied in the same transaction,
//! and removes the log file once the commit is on the disk. The writer appends meanwhile,
//! to a new file, and hands over again only once the applier is done. SQLite copies its
//! own write-ahead log back into the file (checkpoints) after the applier's commits, once
//! the log holds [`CHECKPOINT_BYTES`] of pages: no request waits on that either. Nor does
//! any checkpoint wait for a reader of the file ([`cut_back`]): the applier waiting on a
//! reader would hold up the writer, and every response behind it.
//!
//! A failed append (disk full, I/O error) loses nothing: its writes are kept, in order, and
//! written again by the writer thread with whatever queued up since, every [`RETRY_AFTER`],
//! until a write succeeds. Meanwhile [`super::Sink::settled`] reports the failure, so the requests that
//! wrote are told their change is not saved yet; once a retry succeeds the failure is
//! cleared and everything goes on as before. Each frame holds whole requests only (an
//! append takes nothing of a request not done yet, nor what was queued after it:
//! [`super::Pending::take`]), so a request's changes reach the log all together or not at
//! all, however many frames its work spans. A failed apply loses nothing
//! either, and no request waits on it: the log file keeps every change until an apply
//! succeeds, tried again every [`RETRY_AFTER`] from the file itself (the changes are no
//! longer kept in memory meanwhile), and once more when linkbox stops; what is left is
//! applied when the file is next opened ([`recover`]). While an apply is failing the writer
//! keeps appending to `FILE-log`, and keeps at most [`KEPT_AT`] changes in memory for the
//! next hand-over (past it, the applier reads them from the file too). An applier that is
//! only behind, not failing, holds the appends back instead once that much waits for it (the
//! writer thread waits for it; a response leaves that to the thread and waits), so
//! that the log, an apply and SQLite's write-ahead log stay bounded under any load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};
use rusqlite::{CachedStatement, Connection, Transaction, params};

use super::write_log::{self, APPLY_AT, APPLY_BYTES, APPLY_IDLE, Entry, Log, LogError};
use super::{Queue, Table, Write};

/// How long the writer waits before writing again after a failed append, and the applier
/// before applying again after a failed apply.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bytes of pages in SQLite's write-ahead log past which the applier's commit checkpoints
/// it: SQLite's own default, 1,000 pages of 4 KiB (500 of this version's 8 KiB,
/// [`super::schema::PAGE_SIZE`]). The log is at most this and one apply's pages.
const CHECKPOINT_BYTES: i64 = 1000 * 4096;

/// How often the writer thread looks whether the state file is still at its path while
/// nothing is appended (every append looks first): so that a file deleted while linkbox is
/// idle is reported within about this long, not at the next write.
const IN_PLACE_EVERY: Duration = Duration::from_secs(1);

/// How long after a batch's first change the writer thread appends what is still queued:
/// what a response waits on is that response's to append, at once; what is left then is
/// what no response waits on, or came in while a response was appending.
const GRACE: Duration = Duration::from_millis(1);

/// Changes (or bytes of documents, [`KEPT_BYTES`]) logged while the applier is busy past
/// which the writer waits for it; or, while an apply is failing, drops them from memory,
/// and the applier reads them from the log file.
const KEPT_AT: usize = 4 * APPLY_AT;
const KEPT_BYTES: usize = 4 * APPLY_BYTES;

/// [`CHECKPOINT_BYTES`] in pages of `connection`'s file.
fn checkpoint_pages(connection: &Connection) -> i64 {
    let page = connection
        .pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0))
        .unwrap_or(4096)
        .max(512);
    CHECKPOINT_BYTES / page
}

/// What the writer hands the applier: the log file `FILE-log.applying`, up to its frame
/// `through`, and its changes when the writer still has them all.
pub(super) struct Job {
    through: u64,
    writes: Option<Vec<Vec<Write>>>,
}

/// Whether the applier has a job, and whether linkbox is stopping.
#[derive(Default)]
struct Turn {
    busy: bool,
    /// The job in hand failed at least once: it is retried from its file.
    failing: bool,
    closing: bool,
}

#[derive(Default)]
pub(super) struct Applier {
    turn: Mutex<Turn>,
    changed: Condvar,
}

impl Applier {
    /// Takes the applier for a job, if it is free.
    fn take(&self) -> bool {
        let mut turn = self.turn.lock();
        !std::mem::replace(&mut turn.busy, true)
    }

    /// The job is done, or given up.
    fn free(&self) {
        let mut turn = self.turn.lock();
        turn.busy = false;
        turn.failing = false;
        self.changed.notify_all();
    }

    /// The job in hand failed, and will be retried.
    fn failed(&self) {
        self.turn.lock().failing = true;
        self.changed.notify_all();
    }

    /// Waits until the applier is free (true), or is failing (false).
    fn wait_free_unless_failing(&self) -> bool {
        let mut turn = self.turn.lock();
        while turn.busy && !turn.failing {
            self.changed.wait(&mut turn);
        }
        !turn.busy
    }

    fn close(&self) {
        self.turn.lock().closing = true;
        self.changed.notify_all();
    }

    fn wait_free(&self) {
        let mut turn = self.turn.lock();
        while turn.busy {
            self.changed.wait(&mut turn);
        }
    }

    /// After a failed apply: whether to try again, after [`RETRY_AFTER`] (or at once when
    /// linkbox starts stopping meanwhile: the last try); not once it is stopping.
    fn retry(&self) -> bool {
        let mut turn = self.turn.lock();
        if turn.closing {
            return false;
        }
        self.changed.wait_for(&mut turn, RETRY_AFTER);
        true
    }
}

pub(super) fn run(queue: &Arc<Queue>, connection: Connection) {
    let (log, applied) = match write_log::applied(&connection) {
        Ok(found) => found,
        Err(error) => {
            // `recover` read the same row moments ago; nothing can be written safely.
            tracing::error!(%error, path = %queue.path.display(), "state file has no log record; nothing will be saved");
            queue.progress.send_modify(|progress| {
                progress.failed = Some(error.to_string().into());
            });
            return;
        }
    };
    let pages = checkpoint_pages(&connection);
    if let Err(error) = connection.pragma_update(None, "wal_autocheckpoint", pages) {
        tracing::warn!(%error, "state file: checkpoint threshold not set; SQLite's default applies");
    }

    let applier = Arc::new(Applier::default());
    let (hand, jobs) = mpsc::channel::<Job>();
    let connection = std::thread::scope(|scope| {
        let path = queue.path.as_path();
        let applying = applier.clone();
        let started = std::thread::Builder::new()
            .name("linkbox-apply".into())
            .spawn_scoped(scope, move || {
                apply_jobs(connection, path, &jobs, &applying)
            });
        let thread = match started {
            Ok(thread) => thread,
            Err(error) => {
                tracing::error!(%error, "state file applier not started; nothing will be saved");
                queue.progress.send_modify(|progress| {
                    progress.failed = Some(error.to_string().into());
                });
                return None;
            }
        };
        let lead = Lead {
            log: Log::new(&queue.path, log, applied),
            unsaved: Vec::new(),
            unapplied: Unapplied::default(),
            room: 0,
            hand,
            applier,
        };
        write(queue, lead);
        thread.join().ok()
    });
    let Some(connection) = connection else {
        return;
    };
    if let Err(error) = truncate_wal(&connection) {
        tracing::warn!(%error, "state file checkpoint failed; the write-ahead log still holds every change");
    }
    if let Err((_, error)) = connection.close() {
        tracing::warn!(%error, "state file did not close cleanly");
    }
}

/// The write log and what goes with it: whoever holds it (in [`super::Queue`]) appends
/// what is queued.
pub(super) struct Lead {
    log: Log,
    /// Writes of failed appends, oldest first, to be written before anything newer.
    unsaved: Vec<Write>,
    unapplied: Unapplied,
    /// The room the next batch starts with: about the last one's, so the requests that
    /// queue a batch do not grow it under the queue's lock.
    room: usize,
    hand: mpsc::Sender<Job>,
    applier: Arc<Applier>,
}

/// Who appends: a response's task, which must neither block on the applier nor retry a
/// failed append, or the writer thread, which may, and which knows whether the queue has
/// been idle or is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Response,
    Writer { idle: bool, closing: bool },
}

/// What an append did, to tell the waiting responses once the lead is let go (told while
/// it is held, a response woken by it would find the lead taken, and wait again).
#[derive(Debug)]
pub(super) enum Published {
    /// Nothing was queued: what was is in the log, told by whoever appended it.
    Nothing,
    /// Every change recorded up to this count is in the log.
    Committed(u64),
    /// The append failed; its writes are kept for the writer thread to retry.
    Failed(String),
    /// Left to the writer thread, which the response wakes: a failed append waits to be
    /// retried, or the applier is behind and is waited for.
    Deferred,
}

impl Lead {
    /// Appends everything queued as one frame, and hands the log to the applier when due.
    pub(super) fn commit(&mut self, queue: &Queue, by: By) -> Published {
        let (idle, closing) = match by {
            By::Response if !self.unsaved.is_empty() || self.unapplied.is_over_bound() => {
                return Published::Deferred;
            }
            By::Response => (false, false),
            By::Writer { idle, closing } => (idle, closing),
        };
        let fresh = Vec::with_capacity(self.room);
        let upto = {
            // What a request not done yet has queued stays for a later frame, with what
            // came after it (`Pending::take`): a frame holds whole requests only.
            let (mut taken, upto) = queue.pending.lock().take(&queue.recorded, fresh);
            // The batch is taken whole, not copied, unless failed appends wait before it.
            if self.unsaved.is_empty() {
                self.unsaved = taken;
            } else {
                self.unsaved.append(&mut taken);
            }
            upto
        };
        let mut published = Published::Nothing;
        if !self.unsaved.is_empty() {
            self.room = self.unsaved.len();
            // Nothing is appended for a file that is no longer at its path: a frame there
            // would reach no file linkbox opens again (`Queue::in_place`).
            published = match queue.in_place().map(|()| self.log.append(&self.unsaved)) {
                Ok(Ok(())) => {
                    self.unapplied.logged(&mut self.unsaved);
                    Published::Committed(upto)
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "state file write failed; retrying");
                    Published::Failed(error.to_string())
                }
                Err(gone) => Published::Failed(gone),
            };
        }
        // The log beside a path that names another file now is left alone: another linkbox
        // may have started on that path since.
        let in_place = !queue.gone.load(Ordering::Acquire);
        if self.unsaved.is_empty()
            && in_place
            && self.unapplied.due(idle, closing)
            && self.applier.take()
        {
            hand_over(
                &mut self.log,
                &mut self.unapplied,
                &self.hand,
                &self.applier,
            );
        } else if by != By::Response && in_place && self.unapplied.is_over_bound() {
            // The applier is behind: wait for it, so that nothing grows without bound; but
            // not for one that is failing, whose file keeps what it cannot apply.
            if self.applier.wait_free_unless_failing() && self.applier.take() {
                hand_over(
                    &mut self.log,
                    &mut self.unapplied,
                    &self.hand,
                    &self.applier,
                );
            } else {
                self.unapplied.drop_writes();
            }
        }
        published
    }
}

/// Tells the waiting responses what an append did.
pub(super) fn publish(queue: &Queue, published: Published) {
    match published {
        Published::Nothing | Published::Deferred => {}
        Published::Committed(upto) => queue.progress.send_modify(|progress| {
            if progress.failed.take().is_some() {
                tracing::info!(path = %queue.path.display(), "state file writable again; every change is saved");
            }
            // Two appends may tell in the other order than they appended.
            progress.committed = progress.committed.max(upto);
        }),
        Published::Failed(error) => queue.progress.send_modify(|progress| {
            progress.failed = Some(error.into());
        }),
    }
}

/// The writer thread: appends what is left queued [`GRACE`] after it came, retries failed
/// appends, hands the log over when idle, until the queue closes and the applier has had
/// all.
fn write(queue: &Arc<Queue>, lead: Lead) {
    *queue.lead.lock() = Some(lead);
    let (mut retrying, mut unapplied) = (false, false);
    let mut looked = std::time::Instant::now();
    // Whether the file is still at its path, looked at every [`IN_PLACE_EVERY`] while no
    // append does (each append looks first).
    let look = |looked: &mut std::time::Instant| {
        if looked.elapsed() >= IN_PLACE_EVERY {
            *looked = std::time::Instant::now();
            let _ = queue.in_place();
        }
    };
    loop {
        let (closing, idle) = {
            let mut pending = queue.pending.lock();
            let mut idle = false;
            if retrying {
                if !pending.closing {
                    queue.wake.wait_for(&mut pending, RETRY_AFTER);
                }
            } else {
                while !pending.ready() && !pending.closing && !pending.nudged {
                    if !unapplied {
                        if queue.wake.wait_for(&mut pending, APPLY_IDLE).timed_out() {
                            // Responses append without waking the writer: what they logged
                            // is handed over once idle all the same (a held lead is a
                            // response appending; the next look sees it).
                            unapplied = MutexGuard::unlocked(&mut pending, || {
                                look(&mut looked);
                                queue.lead.try_lock().is_some_and(|held| {
                                    held.as_ref().is_some_and(|lead| !lead.unapplied.is_empty())
                                })
                            });
                        }
                    } else if queue.wake.wait_for(&mut pending, APPLY_IDLE).timed_out() {
                        idle = !pending.ready();
                        break;
                    }
                }
                if pending.ready() && !pending.closing && !pending.nudged {
                    MutexGuard::unlocked(&mut pending, || std::thread::sleep(GRACE));
                }
            }
            pending.nudged = false;
            (pending.closing, idle)
        };
        let published = {
            let mut held = queue.lead.lock();
            let Some(lead) = held.as_mut() else {
                return;
            };
            let published = lead.commit(queue, By::Writer { idle, closing });
            retrying = !lead.unsaved.is_empty();
            unapplied = !lead.unapplied.is_empty();
            published
        };
        publish(queue, published);
        if closing && retrying {
            tracing::error!(path = %queue.path.display(), "closing with changes the state file does not have");
            queue.lost.store(true, Ordering::Release);
            break;
        }
        if closing && queue.pending.lock().writes.is_empty() {
            break;
        }
    }
    let Some(mut lead) = queue.lead.lock().take() else {
        return;
    };
    lead.applier.close();
    if !lead.unapplied.is_empty() && queue.in_place().is_ok() {
        lead.applier.wait_free();
        if lead.applier.take() {
            hand_over(
                &mut lead.log,
                &mut lead.unapplied,
                &lead.hand,
                &lead.applier,
            );
        }
    }
    lead.applier.wait_free();
}

/// Hands `FILE-log` and what `unapplied` holds to the applier, which the caller took.
fn hand_over(
    log: &mut Log,
    unapplied: &mut Unapplied,
    hand: &mpsc::Sender<Job>,
    applier: &Applier,
) {
    match log.seal() {
        Ok(through) => {
            let taken = std::mem::take(unapplied);
            let job = Job {
                through,
                writes: (!taken.incomplete).then_some(taken.batches),
            };
            if hand.send(job).is_err() {
                applier.free();
            }
        }
        Err(error) => {
            // The log stays where it is, and grows: handed over at the next try.
            tracing::warn!(%error, "state file: the write log could not be handed over; trying again");
            applier.free();
        }
    }
}

/// What the log holds that the tables do not, and the applier has not been handed.
#[derive(Default)]
struct Unapplied {
    /// The changes logged since the last hand-over, a batch as it was logged, oldest
    /// first, while they are all of them (kept as they came: copying each batch into one
    /// list was a sixth of the writer's time under load).
    batches: Vec<Vec<Write>>,
    /// The changes in `batches`.
    count: usize,
    /// The bytes of their documents.
    bytes: usize,
    /// Some changes were logged but not kept: the applier reads them from the file.
    incomplete: bool,
}

impl Unapplied {
    fn is_empty(&self) -> bool {
        self.count == 0 && !self.incomplete
    }

    /// `writes` were appended to the log.
    fn logged(&mut self, writes: &mut Vec<Write>) {
        if self.incomplete {
            writes.clear();
        } else {
            self.bytes += writes.iter().map(Write::doc_len).sum::<usize>();
            self.count += writes.len();
            self.batches.push(std::mem::take(writes));
        }
    }

    /// Holds more than the writer keeps while the applier is busy.
    fn is_over_bound(&self) -> bool {
        self.count > KEPT_AT || self.bytes > KEPT_BYTES
    }

    /// No longer keeps the changes: the log file has them.
    fn drop_writes(&mut self) {
        *self = Unapplied {
            incomplete: true,
            ..Unapplied::default()
        };
    }

    /// Whether to hand over now: the log holds [`APPLY_AT`] changes or [`APPLY_BYTES`] of
    /// documents, or some that were not kept, or the writer is idle or closing (but never
    /// nothing).
    fn due(&self, idle: bool, closing: bool) -> bool {
        !self.is_empty()
            && (idle
                || closing
                || self.incomplete
                || self.count >= APPLY_AT
                || self.bytes >= APPLY_BYTES)
    }
}

/// The applier: applies each job handed over, retrying a failed one from its file, until
/// the writer is done; gives the connection back.
fn apply_jobs(
    mut connection: Connection,
    state: &Path,
    jobs: &mpsc::Receiver<Job>,
    applier: &Applier,
) -> Connection {
    connection.set_prepared_statement_cache_capacity(4 * Table::ALL.len() + 8);
    let statements = Statements::new();
    let applying = write_log::applying_path(state);
    let mut wal = state.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    while let Ok(mut job) = jobs.recv() {
        loop {
            match apply(&mut connection, &statements, &applying, &job) {
                Ok(()) => {
                    cut_back(&connection, &wal);
                    break;
                }
                Err(error) => {
                    // Nothing is lost: the log file keeps every change until an apply
                    // succeeds.
                    tracing::warn!(%error, path = %state.display(), "state file: applying the write log failed; it keeps every change");
                    job.writes = None;
                    applier.failed();
                    if !applier.retry() {
                        break;
                    }
                }
            }
        }
        applier.free();
    }
    connection
}

/// The `-wal` file's size past which the applier empties it and cuts it to nothing: three
/// times the checkpoint threshold, past what ordinary applies reach (the threshold and one
/// apply, about 10 MB).
const WAL_CUT_BACK_BYTES: u64 = 3 * CHECKPOINT_BYTES as u64;

/// How long the applier's connection waits for a lock another connection to the file holds
/// (rusqlite's default): for its own transactions, which only another writer of the file
/// (someone's `sqlite3 FILE 'UPDATE …'`) can hold up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Cuts SQLite's write-ahead log back to nothing once it has grown past
/// [`WAL_CUT_BACK_BYTES`]. A checkpoint copies the log into the file but leaves the `-wal`
/// file as large as it grew: the one apply of a reset of a tenant of a hundred thousand
/// links grew it to 71 MB, and it stayed so, doubling the state's size on the disk.
///
/// Only tried, never waited for: a reader of the file (`sqlite3 FILE 'SELECT …'`, a
/// connection left in a transaction) that still reads an older state keeps the log from
/// being cut back, and a truncating checkpoint that waited for it held the applier for the
/// whole busy timeout, then the writer behind it, then every response (creates stalled five
/// seconds in every five while someone read the file). So while a reader holds the log the
/// `-wal` file grows by every apply's pages, and it is cut back by the first apply after
/// the reader lets go.
fn cut_back(connection: &Connection, wal: &Path) {
    if std::fs::metadata(wal).map_or(0, |meta| meta.len()) <= WAL_CUT_BACK_BYTES {
        return;
    }
    match truncate_wal(connection) {
        Ok(true) => {}
        Ok(false) => tracing::debug!(
            "state file: a reader holds the write-ahead log; it is cut back once the reader is done"
        ),
        Err(error) => {
            tracing::warn!(%error, "state file: the write-ahead log could not be cut back; it keeps its size until the next try");
        }
    }
}

/// Checkpoints the whole write-ahead log and truncates it, if no reader of the file holds
/// it; never waits for one (a checkpoint that finds a reader copies what it can, as the
/// applier's own do). Whether the log was cut back.
fn truncate_wal(connection: &Connection) -> rusqlite::Result<bool> {
    connection.busy_timeout(Duration::ZERO)?;
    // Its row is `(busy, log pages, pages checkpointed)`: `busy` is 1 when a reader (or a
    // writer) held the log and it was left as it is.
    let checkpointed = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(checkpointed? == 0)
}

/// Applies a job in one transaction, and removes its log file once that is on the disk.
fn apply(
    connection: &mut Connection,
    statements: &Statements,
    applying: &Path,
    job: &Job,
) -> Result<(), LogError> {
    let transaction = connection.transaction()?;
    let (log, applied) = write_log::applied(&transaction)?;
    if applied < job.through {
        let mut changes = Applying::new(&transaction, statements);
        match &job.writes {
            Some(batches) => {
                for entry in batches.iter().flatten().filter_map(Entry::of) {
                    changes.apply(entry)?;
                }
            }
            None => {
                let replayed =
                    write_log::replay(&[applying.to_owned()], log, applied, &mut |entry| {
                        changes.apply(entry)
                    })?;
                if replayed.last < job.through {
                    return Err(LogError::Short {
                        through: job.through,
                        read: replayed.last,
                    });
                }
            }
        }
        drop(changes);
        write_log::set_applied(&transaction, job.through)?;
    }
    transaction.commit()?;
    remove(applying)
}

/// Applies what a file being opened still has in its write log (linkbox stopped before
/// applying it): a version-5 file's `write_log` rows, then the frames of `FILE-log.applying`
/// and `FILE-log` after the last its tables hold, so that reading the file finds every
/// change in its table. Removes `FILE-log.applying`; the writer starts `FILE-log` over.
pub(super) fn recover(connection: &mut Connection, state: &Path) -> Result<(), LogError> {
    let statements = Statements::new();
    if !write_log::table_is_empty(connection)? {
        let transaction = connection.transaction()?;
        let mut changes = Applying::new(&transaction, &statements);
        write_log::apply_table(&transaction, &mut |entry| changes.apply(entry))?;
        drop(changes);
        transaction.commit()?;
    }
    let applying = write_log::applying_path(state);
    let transaction = connection.transaction()?;
    let (log, applied) = write_log::applied(&transaction)?;
    let mut changes = Applying::new(&transaction, &statements);
    let replayed = write_log::replay(
        &[applying.clone(), write_log::log_path(state)],
        log,
        applied,
        &mut |entry| changes.apply(entry),
    )?;
    drop(changes);
    if let Some(cut) = &replayed.cut {
        tracing::warn!(path = %state.display(), "{cut}");
    }
    if replayed.last > applied {
        write_log::set_applied(&transaction, replayed.last)?;
        tracing::info!(path = %state.display(), frames = replayed.last - applied, "state file: applied what its write log held");
    }
    transaction.commit()?;
    // Both files are applied, to the cut if there was one; `FILE-log` is cut back to
    // nothing by the writer's first append (every start appends the file's defaults).
    remove(&applying)
}

/// Removes a log file that was applied, if it is there.
fn remove(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(LogError::Io {
            path: path.to_owned(),
            error,
        }),
        _ => Ok(()),
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

/// The changes of one transaction being made: each table's put and delete statements are
/// prepared the first time they are needed and kept until the transaction's last change.
/// (Taking them from the connection's cache for every change hashed their SQL each time:
/// 5% of the applier's time under a load of creates, docs/benchmarks.md.)
struct Applying<'t> {
    transaction: &'t Transaction<'t>,
    statements: &'t Statements,
    put: [Option<CachedStatement<'t>>; Table::ALL.len()],
    delete: [Option<CachedStatement<'t>>; Table::ALL.len()],
}

impl<'t> Applying<'t> {
    fn new(transaction: &'t Transaction<'t>, statements: &'t Statements) -> Applying<'t> {
        Applying {
            transaction,
            statements,
            put: Default::default(),
            delete: Default::default(),
        }
    }

    /// The statement of `table` in `kept`, prepared from `sql` the first time.
    fn held<'a>(
        transaction: &'t Transaction<'t>,
        kept: &'a mut [Option<CachedStatement<'t>>; Table::ALL.len()],
        sql: &'t [String],
        table: &str,
    ) -> rusqlite::Result<&'a mut CachedStatement<'t>> {
        let at = index(table)?;
        match &mut kept[at] {
            Some(statement) => Ok(statement),
            empty => Ok(empty.insert(transaction.prepare_cached(&sql[at])?)),
        }
    }

    /// Makes one change to its table.
    fn apply(&mut self, entry: Entry<'_>) -> rusqlite::Result<()> {
        let transaction = self.transaction;
        let statements = self.statements;
        match entry {
            Entry::Put {
                table,
                tenant,
                id,
                position,
                doc,
            } => {
                Self::held(transaction, &mut self.put, &statements.put, table)?
                    .execute(params![tenant, id, position, doc])?;
            }
            Entry::Delete {
                table,
                tenant,
                id,
                position,
            } => {
                Self::held(transaction, &mut self.delete, &statements.delete, table)?
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
                Self::held(transaction, &mut self.delete, &statements.delete, table)?
                    .execute(params![tenant, position, id])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A fresh state file at the latest schema, in a directory of its own removed when
    /// dropped.
    struct File {
        path: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl File {
        fn new(name: &str) -> File {
            let dir = tempfile::Builder::new()
                .prefix(&format!("linkbox-writer-{name}-"))
                .tempdir()
                .expect("temporary directory");
            File {
                path: dir.path().join("state.db"),
                _dir: dir,
            }
        }

        fn open(&self) -> Connection {
            super::super::schema::open(&self.path).expect("a state file")
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

    fn applied(connection: &Connection) -> u64 {
        write_log::applied(connection).expect("log_applied").1
    }

    /// A log of `file`'s own, as its writer would append.
    fn log_of(file: &File, connection: &Connection) -> Log {
        let (log, applied) = write_log::applied(connection).expect("log_applied");
        Log::new(&file.path, log, applied)
    }

    /// `batches` appended to `file`'s log, a frame each, and handed over, as the writer
    /// does: the last frame's `seq`, and `FILE-log.applying`.
    fn handed_over(file: &File, connection: &Connection, batches: &[&[Write]]) -> (u64, PathBuf) {
        let mut log = log_of(file, connection);
        for batch in batches {
            log.append(batch).expect("logged");
        }
        let through = log.seal().expect("handed over");
        (through, write_log::applying_path(&file.path))
    }

    /// The lead of `file`'s log with nothing unsaved or unapplied, and the receiving end of
    /// its hand-overs.
    fn lead_of(
        file: &File,
        connection: &Connection,
        applier: Arc<Applier>,
    ) -> (Lead, mpsc::Receiver<Job>) {
        let (hand, jobs) = mpsc::channel();
        let lead = Lead {
            log: log_of(file, connection),
            unsaved: Vec::new(),
            unapplied: Unapplied::default(),
            room: 0,
            hand,
            applier,
        };
        (lead, jobs)
    }

    /// `file` opened with its log's lead for whoever appends and no writer thread, so only
    /// a response's append writes the log; and the receiving end of its hand-overs.
    fn appended_by_responses(file: &File) -> (super::super::Opened, mpsc::Receiver<Job>) {
        let opened = super::super::open(&file.path).expect("opened");
        let (lead, jobs) = lead_of(file, &opened.connection, Arc::default());
        *opened.queue.lead.lock() = Some(lead);
        opened.queue.muted.store(false, Ordering::Relaxed);
        (opened, jobs)
    }

    /// Records link `position` of partner `acme` through `sink`.
    fn put_link(sink: &super::super::Sink, position: u64) {
        let acme: Arc<str> = Arc::from("acme");
        sink.record(|changes| {
            changes.put(
                Table::M2mLinks,
                &acme,
                format!("link_{position}"),
                position,
                &position,
            );
        });
    }

    /// The frames `FILE-log` holds, replayed, and the changes in them.
    fn logged_changes(file: &File, connection: &Connection) -> (u64, usize) {
        let (log, applied) = write_log::applied(connection).expect("log record");
        let mut changes = 0;
        let replayed = write_log::replay(
            &[write_log::log_path(&file.path)],
            log,
            applied,
            &mut |_| {
                changes += 1;
                Ok(())
            },
        )
        .expect("a readable log");
        (replayed.last - applied, changes)
    }

    #[tokio::test]
    async fn a_response_appends_the_queue_itself_when_the_log_is_free() {
        let file = File::new("lead");
        // The log for whoever appends, and no writer thread: only a response can append.
        let (opened, _jobs) = appended_by_responses(&file);
        let queue = opened.queue.clone();
        let sink = opened.sink();
        let record = |position: u64| put_link(&sink, position);
        record(0);
        record(1);
        let settled = tokio::time::timeout(Duration::from_secs(5), sink.settled()).await;
        assert!(
            matches!(settled, Ok(Ok(()))),
            "the response appended what it waits on, with no writer thread: {settled:?}"
        );
        assert_eq!(
            logged_changes(&file, &opened.connection),
            (1, 2),
            "both changes queued, one frame"
        );
        assert!(queue.pending.lock().writes.is_empty());

        // Nothing new: nothing to wait on, and nothing appended.
        let settled = tokio::time::timeout(Duration::from_secs(5), sink.settled()).await;
        assert!(matches!(settled, Ok(Ok(()))));
        assert_eq!(logged_changes(&file, &opened.connection), (1, 2));
    }

    /// A request's changes reach the write log in one frame, however many it records and
    /// whoever appends meanwhile: another response's append takes only what was queued
    /// before the request's first change, and holds back what was queued after it, until
    /// the request is done; one given up half way (its task dropped) is done too.
    #[tokio::test]
    async fn a_requests_changes_reach_the_log_in_one_frame_whoever_appends_meanwhile() {
        let file = File::new("unit");
        // No writer thread: only the appends below write the log.
        let (opened, _jobs) = appended_by_responses(&file);
        let queue = opened.queue.clone();
        let sink = opened.sink();
        let record = |position: u64| put_link(&sink, position);
        // Another response appending what is queued, as `Sink::settled` does.
        let append = || {
            let published = queue
                .lead
                .lock()
                .as_mut()
                .expect("the lead")
                .commit(&queue, By::Response);
            publish(&queue, published);
        };
        // Recorded by no request: a webhook attempt, say.
        let elsewhere = |position: u64| {
            let sink = sink.clone();
            tokio::spawn(async move { put_link(&sink, position) })
        };

        elsewhere(0).await.expect("recorded");
        let ((), wrote) = super::super::tracking(async {
            record(1);
            record(2);
            append();
            assert_eq!(
                logged_changes(&file, &opened.connection),
                (1, 1),
                "what came before the request is appended, none of the request's"
            );
            elsewhere(3).await.expect("recorded");
            record(4);
            append();
            assert_eq!(
                logged_changes(&file, &opened.connection),
                (1, 1),
                "nor what came after its first change, while it is not done"
            );
        })
        .await;
        assert!(wrote);
        append();
        assert_eq!(
            logged_changes(&file, &opened.connection),
            (2, 5),
            "the request's changes, and what came between them, in one frame once it is done"
        );

        // A request given up half way, its task dropped, is done all the same.
        let given_up = super::super::tracking(async {
            record(5);
            std::future::pending::<()>().await;
        });
        assert!(
            futures_util::FutureExt::now_or_never(given_up).is_none(),
            "never done"
        );
        append();
        assert_eq!(logged_changes(&file, &opened.connection), (3, 6));
        assert!(queue.pending.lock().open.is_empty());
    }

    #[test]
    fn a_response_leaves_a_failed_append_and_a_busy_applier_to_the_writer_thread() {
        let file = File::new("defer");
        let opened = super::super::open(&file.path).expect("opened");
        let queue = opened.queue.clone();
        let acme: Arc<str> = Arc::from("acme");
        let applier = Arc::new(Applier::default());
        assert!(applier.take(), "the applier is busy with a job");
        let (mut lead, _jobs) = lead_of(&file, &opened.connection, applier);
        lead.unsaved.push(link(&acme, 0));
        queue.pending.lock().writes.push(link(&acme, 1));

        // A failed append waits for its retry: a response neither retries it nor takes
        // what is queued.
        assert!(matches!(
            lead.commit(&queue, By::Response),
            Published::Deferred
        ));
        assert_eq!(queue.pending.lock().writes.len(), 1, "left queued");
        assert_eq!(
            logged_changes(&file, &opened.connection),
            (0, 0),
            "nothing written"
        );

        // The writer thread retries it, with what is queued.
        let by_writer = By::Writer {
            idle: false,
            closing: false,
        };
        assert!(matches!(
            lead.commit(&queue, by_writer),
            Published::Committed(_)
        ));
        assert!(lead.unsaved.is_empty() && queue.pending.lock().writes.is_empty());
        assert_eq!(logged_changes(&file, &opened.connection), (1, 2));

        // Past the bound of changes kept for a busy applier, a response does not wait for
        // it (that would hold a runtime thread): it leaves the queue to the writer thread.
        let mut many: Vec<Write> = (2..=KEPT_AT as i64 + 2).map(|n| link(&acme, n)).collect();
        lead.unapplied.logged(&mut many);
        assert!(lead.unapplied.is_over_bound());
        queue.pending.lock().writes.push(link(&acme, 9_999));
        assert!(matches!(
            lead.commit(&queue, By::Response),
            Published::Deferred
        ));
        assert_eq!(queue.pending.lock().writes.len(), 1, "left queued");
    }

    #[tokio::test]
    async fn a_change_no_response_waits_on_is_appended_by_the_writer_thread() {
        let file = File::new("background");
        let opened = super::super::open(&file.path).expect("opened");
        let queue = opened.queue.clone();
        let sink = opened.sink();
        opened.start().expect("started");
        let acme: Arc<str> = Arc::from("acme");
        // A response's change, then long enough for the writer thread to have handed the
        // log over and gone to sleep with nothing to wait for.
        sink.record(|changes| changes.put(Table::M2mLinks, &acme, "link_0", 0, &0));
        sink.settled().await.expect("saved");
        tokio::time::sleep(APPLY_IDLE * 6).await;
        // A webhook attempt or a clock tick: recorded, never settled.
        sink.record(|changes| changes.put(Table::M2mLinks, &acme, "link_1", 1, &1));
        let mut progress = queue.progress.subscribe();
        let appended = tokio::time::timeout(
            Duration::from_secs(5),
            progress.wait_for(|progress| progress.committed >= 2),
        )
        .await
        .map(|waited| waited.is_ok());
        assert_eq!(appended, Ok(true), "appended without anyone waiting on it");
        sink.close().expect("every change saved");
        let connection = file.open();
        assert_eq!(links(&connection).len(), 2, "and in its table once closed");
    }

    /// The size of the file at `path`, 0 for none.
    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |meta| meta.len())
    }

    /// A reader of `path` in a transaction, as a `sqlite3` shell in the middle of a long
    /// query holds one: it reads the file as it is now until it lets go.
    fn reader_of(path: &Path) -> Connection {
        let reader = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("a reader");
        reader.execute_batch("BEGIN").expect("a transaction");
        reader
            .query_row("SELECT count(*) FROM m2m_links", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect("read");
        reader
    }

    /// A reader of the file that still reads an older state keeps the write-ahead log from
    /// being cut back: the cut back is only tried, and comes back while the reader holds
    /// the log, leaving it as it is (waiting the reader out held the applier, the writer
    /// behind it and every response for SQLite's busy timeout). Once the reader lets go,
    /// the log is cut back to nothing.
    #[test]
    fn cutting_the_write_ahead_log_back_never_waits_for_a_reader() {
        let file = File::new("cut-back");
        let mut connection = file.open();
        super::super::schema::start_writing(&mut connection).expect("write-ahead logging");
        let wal = super::super::beside(&file.path, "-wal");
        let reader = reader_of(&file.path);
        let doc = "x".repeat(1 << 20);
        let mut position = 0_i64;
        while size(&wal) <= WAL_CUT_BACK_BYTES {
            connection
                .execute(
                    "INSERT INTO m2m_links (tenant, id, position, doc) VALUES ('acme', ?1, ?2, ?3)",
                    params![format!("link_{position}"), position, doc],
                )
                .expect("a row");
            position += 1;
        }
        let (returned, told) = mpsc::channel::<()>();
        let returned_while_held = std::thread::scope(|scope| {
            let holding = scope.spawn(move || {
                // Lets go once the cut back has come back, or after half the busy timeout:
                // a cut back that waited for the reader would then cut the log back.
                let returned = told.recv_timeout(BUSY_TIMEOUT / 2).is_ok();
                reader.execute_batch("COMMIT").expect("let go");
                returned
            });
            cut_back(&connection, &wal);
            let _ = returned.send(());
            holding.join().expect("the reader")
        });
        assert!(
            returned_while_held,
            "the cut back waited for the reader to let go"
        );
        assert!(
            size(&wal) > WAL_CUT_BACK_BYTES,
            "the log a reader holds is left as it is"
        );
        cut_back(&connection, &wal);
        assert_eq!(size(&wal), 0, "cut back once the reader is done");
    }

    /// Writes go on being acknowledged while a reader of the file holds a transaction,
    /// however far that makes the write-ahead log grow past the size it is cut back at; and
    /// once the reader lets go, the log is cut back.
    #[tokio::test]
    async fn writes_are_acknowledged_while_a_reader_holds_the_file_and_its_log_is_cut_back_after() {
        // Four times what these writes take in a debug build; a cut back that waited for
        // the reader held every write up for the busy timeout (5 s) each time the applier
        // came to it, which the writes past the cut back size make six times or more.
        const HANG_GUARD: Duration = Duration::from_secs(20);
        let file = File::new("reader");
        let opened = super::super::open(&file.path).expect("opened");
        let sink = opened.sink();
        opened.start().expect("started");
        let wal = super::super::beside(&file.path, "-wal");
        let reader = reader_of(&file.path);
        let acme: Arc<str> = Arc::from("acme");
        let doc = "x".repeat(256 << 10);
        // Past the cut back size, then six times the documents a busy applier may fall
        // behind by before the writes wait for it.
        let beyond = 6 * KEPT_BYTES / doc.len();
        let started = std::time::Instant::now();
        let (mut position, mut past) = (0_u64, None);
        while past.is_none_or(|at| position < at + beyond as u64) {
            sink.record(|changes| {
                changes.put(
                    Table::M2mLinks,
                    &acme,
                    format!("link_{position}"),
                    position,
                    &doc,
                );
            });
            let settled = tokio::time::timeout(HANG_GUARD, sink.settled()).await;
            assert!(
                matches!(settled, Ok(Ok(()))),
                "write {position} acknowledged while the reader holds the file: {settled:?}"
            );
            assert!(
                started.elapsed() < HANG_GUARD,
                "{position} writes, held up by the reader"
            );
            position += 1;
            if past.is_none() && size(&wal) > WAL_CUT_BACK_BYTES {
                past = Some(position);
            }
        }
        assert!(
            size(&wal) > WAL_CUT_BACK_BYTES,
            "the log grows while the reader holds it"
        );
        drop(reader);
        sink.record(|changes| changes.put(Table::M2mLinks, &acme, "link_last", position, &0));
        sink.settled().await.expect("saved");
        let deadline = std::time::Instant::now() + HANG_GUARD;
        while size(&wal) > WAL_CUT_BACK_BYTES {
            assert!(
                std::time::Instant::now() < deadline,
                "the log is still {} bytes once the reader let go",
                size(&wal)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sink.close().expect("every change saved");
    }

    /// A state file moved away, or replaced by another moved over its path, while linkbox
    /// has it: writes are refused as not saved, and for good (`gone`), since nothing
    /// written to the old file would be found again; moved back, it is written again, with
    /// what was refused meanwhile. Deleted, stopping is an error that says so, even with
    /// nothing refused.
    #[tokio::test]
    async fn a_file_moved_or_deleted_under_linkbox_is_not_written_and_stopping_says_so() {
        let file = File::new("gone");
        let opened = super::super::open(&file.path).expect("opened");
        let sink = opened.sink();
        opened.start().expect("started");
        let acme: Arc<str> = Arc::from("acme");
        let put = |position: u64| {
            sink.record(|changes| {
                changes.put(
                    Table::M2mLinks,
                    &acme,
                    format!("link_{position}"),
                    position,
                    &0,
                );
            });
        };
        put(0);
        sink.settled().await.expect("saved");
        // Handed over and applied: the next append would start `FILE-log` again.
        let log = write_log::log_path(&file.path);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while log.exists() {
            assert!(std::time::Instant::now() < deadline, "never handed over");
            tokio::time::sleep(APPLY_IDLE).await;
        }

        let aside = file.path.with_extension("aside");
        std::fs::rename(&file.path, &aside).expect("moved away");
        put(1);
        let refused = sink.settled().await.expect_err("nothing is at the path");
        assert!(refused.gone, "{refused}");
        let other = file.path.with_extension("other");
        std::fs::write(&other, b"").expect("another file");
        std::fs::rename(&other, &file.path).expect("moved over the path");
        put(2);
        let refused = sink
            .settled()
            .await
            .expect_err("another file is at the path");
        assert!(
            refused.gone && refused.to_string().contains("replaced"),
            "{refused}"
        );
        assert!(
            !log.exists(),
            "nothing appended beside a path that names another file"
        );

        std::fs::rename(&aside, &file.path).expect("moved back");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            put(3);
            match sink.settled().await {
                Ok(()) => break,
                Err(failed) => assert!(
                    std::time::Instant::now() < deadline,
                    "never written again: {failed}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sink.close().expect("every change saved");
        assert_eq!(
            links(&file.open()).len(),
            4,
            "the changes refused while it was away are in it"
        );

        let deleted = File::new("deleted");
        let opened = super::super::open(&deleted.path).expect("opened");
        let sink = opened.sink();
        opened.start().expect("started");
        std::fs::remove_file(&deleted.path).expect("deleted");
        let stopped = sink.close().expect_err("what it held is in no file");
        assert!(
            matches!(stopped, super::super::Unsaved::Gone { .. }),
            "{stopped}"
        );
    }

    /// A response that appends what is queued before the writer thread wakes for it leaves
    /// the writer asleep with nothing queued; what the response logged is handed to the
    /// applier once idle all the same, and reaches its table.
    #[tokio::test]
    async fn what_a_response_appended_is_handed_over_once_idle_without_the_writer() {
        let file = File::new("response-led");
        let opened = super::super::open(&file.path).expect("opened");
        let queue = opened.queue.clone();
        let sink = opened.sink();
        opened.start().expect("started");
        // Long enough for the writer to have handed the start's own frame over and gone to
        // sleep with nothing to wait for.
        tokio::time::sleep(APPLY_IDLE * 6).await;
        let acme: Arc<str> = Arc::from("acme");
        // Queued without waking the writer, as a record the response takes first leaves it.
        queue.pending.lock().writes.push(link(&acme, 0));
        queue.recorded.fetch_add(1, Ordering::Release);
        let published = queue
            .lead
            .lock()
            .as_mut()
            .expect("the writer's lead")
            .commit(&queue, By::Response);
        assert!(matches!(published, Published::Committed(_)));
        publish(&queue, published);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while links(&file.open()).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the response's frame never reached its table"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sink.close().expect("every change saved");
    }

    #[test]
    fn the_checkpoint_threshold_is_the_same_bytes_whatever_the_page_size() {
        let file = File::new("thresholds");
        let connection = file.open();
        // A file linkbox makes: 8 KiB pages.
        assert_eq!(checkpoint_pages(&connection), 500);
        let old = Connection::open_in_memory().expect("in-memory database");
        old.pragma_update(None, "page_size", 4096)
            .expect("page size");
        assert_eq!(checkpoint_pages(&old), 1_000);
    }

    #[test]
    fn a_job_puts_its_changes_in_their_tables_records_them_and_removes_its_log() {
        let file = File::new("apply");
        let mut connection = file.open();
        let acme: Arc<str> = Arc::from("acme");
        let writes: Vec<Write> = (0..3).map(|position| link(&acme, position)).collect();
        let (through, applying) = handed_over(&file, &connection, &[&writes]);
        assert!(links(&connection).is_empty(), "not applied yet");
        assert!(applying.exists());

        let job = Job {
            through,
            writes: Some(vec![writes]),
        };
        apply(&mut connection, &Statements::new(), &applying, &job).expect("applied");
        assert!(!applying.exists(), "the applied log is removed");
        assert_eq!(applied(&connection), through);
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
    fn a_job_without_its_changes_reads_them_from_its_log_and_a_short_log_is_an_error() {
        let file = File::new("from-file");
        let mut connection = file.open();
        let acme: Arc<str> = Arc::from("acme");
        let (through, applying) =
            handed_over(&file, &connection, &[&[link(&acme, 0)], &[link(&acme, 1)]]);
        let short = Job {
            through: through + 1,
            writes: None,
        };
        let error = apply(&mut connection, &Statements::new(), &applying, &short)
            .expect_err("the file lacks a frame");
        assert!(matches!(error, LogError::Short { .. }), "{error}");
        assert!(
            links(&connection).is_empty(),
            "nothing of a failed job is applied"
        );
        assert!(applying.exists(), "its log is kept");

        let job = Job {
            through,
            writes: None,
        };
        apply(&mut connection, &Statements::new(), &applying, &job).expect("applied");
        assert_eq!(links(&connection).len(), 2);
        assert_eq!(applied(&connection), 2);
    }

    #[test]
    fn a_file_opened_with_frames_in_its_logs_gets_them_in_their_tables_in_order() {
        // linkbox stopped (killed) after appending to the log, one handed over and one not,
        // and before applying either.
        let file = File::new("reopen");
        let acme: Arc<str> = Arc::from("acme");
        let bravo: Arc<str> = Arc::from("bravo");
        {
            let connection = file.open();
            let mut log = log_of(&file, &connection);
            log.append(&[link(&acme, 0), link(&bravo, 0)])
                .expect("first");
            log.seal().expect("handed over");
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
            log.append(&[replaced, cleared, link(&bravo, 1)])
                .expect("second");
        }
        let mut connection = file.open();
        recover(&mut connection, &file.path).expect("applied on opening");
        let expected = vec![
            (
                "acme".to_owned(),
                0,
                r#"{"referenceId":"renamed"}"#.to_owned(),
            ),
            (
                "bravo".to_owned(),
                1,
                r#"{"referenceId":"customer-1"}"#.to_owned(),
            ),
        ];
        assert_eq!(links(&connection), expected);
        assert_eq!(applied(&connection), 2);
        assert!(!write_log::applying_path(&file.path).exists());
        recover(&mut connection, &file.path).expect("applied frames are skipped");
        assert_eq!(links(&connection), expected);
        // The writer's first append starts `FILE-log` over: it holds that frame alone.
        let mut log = log_of(&file, &connection);
        log.append(&[link(&acme, 7)]).expect("frame 3");
        let (number, _) = write_log::applied(&connection).expect("log_applied");
        let read = |after: u64| {
            let mut seen = Vec::new();
            let replayed = write_log::replay(
                &[write_log::log_path(&file.path)],
                number,
                after,
                &mut |entry| {
                    seen.push(format!("{entry:?}"));
                    Ok(())
                },
            );
            (seen, replayed)
        };
        let (seen, replayed) = read(0);
        assert!(seen.is_empty(), "frames 1 and 2 are gone: {seen:?}");
        assert!(
            matches!(replayed, Err(LogError::Damaged { later: 3, .. })),
            "read from before frame 1, frame 3 is not the next: {replayed:?}"
        );
        let (seen, replayed) = read(2);
        assert_eq!(seen.len(), 1, "frame 3 follows");
        assert!(replayed.is_ok_and(|replayed| replayed.cut.is_none()));
        recover(&mut connection, &file.path).expect("reopened");
        assert_eq!(links(&connection).len(), 3, "the new frame applied, once");
    }

    #[test]
    fn frames_a_killed_applier_applied_but_left_behind_are_not_applied_again() {
        let file = File::new("twice");
        let mut connection = file.open();
        let acme: Arc<str> = Arc::from("acme");
        let (through, applying) = handed_over(&file, &connection, &[&[link(&acme, 0)]]);
        let kept = std::fs::read(&applying).expect("log");
        let job = Job {
            through,
            writes: None,
        };
        apply(&mut connection, &Statements::new(), &applying, &job).expect("applied");
        // Killed between the commit and the removal: the file is back; a later change to
        // the row must survive the next opening.
        std::fs::write(&applying, kept).expect("left behind");
        connection
            .execute("UPDATE m2m_links SET doc = '{\"later\":true}'", [])
            .expect("a later change");
        recover(&mut connection, &file.path).expect("opened");
        assert_eq!(
            links(&connection),
            vec![("acme".to_owned(), 0, r#"{"later":true}"#.to_owned())]
        );
    }

    #[test]
    fn an_unreadable_frame_refuses_the_file_and_keeps_the_log() {
        let file = File::new("unreadable");
        let mut connection = file.open();
        let (log, _) = write_log::applied(&connection).expect("log_applied");
        let frame = write_log::unreadable_frame(log);
        let path = write_log::log_path(&file.path);
        std::fs::write(&path, &frame).expect("log");
        let error = recover(&mut connection, &file.path).expect_err("refused");
        assert!(error.to_string().contains("frame 1"), "{error}");
        assert_eq!(
            std::fs::read(&path).expect("kept"),
            frame,
            "nothing thrown away"
        );
    }

    #[test]
    fn an_unreadable_row_of_a_version_5_log_refuses_the_file_and_keeps_the_row() {
        let file = File::new("legacy");
        let mut connection = file.open();
        connection
            .execute("INSERT INTO write_log (batch) VALUES (x'05ff')", [])
            .expect("a broken row");
        let error = recover(&mut connection, &file.path).expect_err("refused");
        assert!(error.to_string().contains("write_log row 1"), "{error}");
        let logged: i64 = connection
            .query_row("SELECT count(*) FROM write_log", [], |row| row.get(0))
            .expect("count");
        assert_eq!(logged, 1, "nothing thrown away");
    }

    #[test]
    fn a_hand_over_is_due_at_its_size_when_idle_or_closing_and_once_changes_were_dropped() {
        let acme: Arc<str> = Arc::from("acme");
        let mut unapplied = Unapplied::default();
        assert!(!unapplied.due(true, true), "nothing to apply");
        unapplied.logged(&mut vec![link(&acme, 0)]);
        assert!(!unapplied.due(false, false), "a busy writer waits for more");
        assert!(unapplied.due(true, false), "an idle one hands over");
        assert!(unapplied.due(false, true), "a closing one hands over");
        let mut many: Vec<Write> = (1..APPLY_AT as i64).map(|n| link(&acme, n)).collect();
        unapplied.logged(&mut many);
        assert!(
            unapplied.due(false, false),
            "{APPLY_AT} changes are handed over at once"
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
            "{APPLY_BYTES} bytes of documents are handed over at once"
        );

        unapplied.drop_writes();
        assert!(!unapplied.is_empty(), "the log still holds them");
        assert!(unapplied.due(false, false), "the file is handed over");
        let mut later = vec![link(&acme, 9_999)];
        unapplied.logged(&mut later);
        assert!(
            later.is_empty() && unapplied.batches.is_empty() && unapplied.bytes == 0,
            "once some are dropped, none are kept: the log has them"
        );
    }

    #[test]
    fn a_failed_apply_is_retried_until_closing_then_tried_once_more() {
        let applier = Applier::default();
        assert!(applier.take(), "free at first");
        assert!(!applier.take(), "one job at a time");
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                applier.close();
            });
            assert!(applier.retry(), "the last try, woken by closing");
        });
        assert!(started.elapsed() < RETRY_AFTER, "not a whole retry's wait");
        assert!(!applier.retry(), "no more once closing");
        applier.free();
        assert!(applier.take());
    }

    #[test]
    fn a_writer_ahead_of_the_applier_waits_for_it_unless_it_is_failing() {
        let applier = Applier::default();
        assert!(
            applier.wait_free_unless_failing(),
            "a free applier: no wait"
        );
        assert!(applier.take());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                applier.free();
            });
            assert!(
                applier.wait_free_unless_failing(),
                "waited until the busy applier was free"
            );
        });
        assert!(applier.take());
        applier.failed();
        assert!(
            !applier.wait_free_unless_failing(),
            "a failing applier is not waited for"
        );
        applier.free();
        assert!(applier.take(), "free again once its job is done");
    }

    #[test]
    fn the_writer_keeps_a_bounded_number_of_changes_and_bytes_for_a_busy_applier() {
        let acme: Arc<str> = Arc::from("acme");
        let mut unapplied = Unapplied::default();
        let mut many: Vec<Write> = (0..KEPT_AT as i64).map(|n| link(&acme, n)).collect();
        unapplied.logged(&mut many);
        assert!(!unapplied.is_over_bound(), "{KEPT_AT} changes are kept");
        unapplied.logged(&mut vec![link(&acme, KEPT_AT as i64)]);
        assert!(unapplied.is_over_bound(), "one more is too many");

        let mut big = Unapplied::default();
        big.logged(&mut vec![Write::Put {
            table: Table::M2mLinks,
            tenant: acme.clone(),
            id: "link_big".into(),
            position: 0,
            doc: "x".repeat(KEPT_BYTES + 1),
        }]);
        assert!(
            big.is_over_bound(),
            "{KEPT_BYTES} bytes of documents at most"
        );
        big.drop_writes();
        assert!(!big.is_over_bound() && !big.is_empty(), "the file has them");
    }
}
