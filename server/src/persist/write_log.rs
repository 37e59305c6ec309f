//! The write log: each group commit's changes as one compact frame appended to a plain file
//! beside the state file (`FILE-log`), applied to their tables later, many commits at a
//! time, by a thread of their own.
//!
//! A commit that puts rows straight into their tables rewrites, whole, every page it
//! touches: with four partners creating links, each commit of about twenty creates wrote
//! 40–46 pages (the last leaf of each partner's links and users, their parents, the
//! deliveries' last and first leaves), about 11 KB to the disk per create for 1.1 KB of rows
//! (docs/benchmarks.md). A frame is the batch's bytes and a 24-byte header, written with one
//! `write`: a commit writes what its changes fill, and no page of SQLite's. The changes reach
//! their tables when the writer hands them to the applier ([`super::writer`]): once they
//! number [`APPLY_AT`] or hold [`APPLY_BYTES`] of documents, once no change has come for
//! [`APPLY_IDLE`], or when linkbox stops. The applier puts them into their tables in one
//! SQLite transaction, while the writer goes on appending: so a request never waits on an
//! apply (with the log a table of the state file, each apply held every commit back for
//! its 2–4 ms, and the clients with them).
//!
//! # Files and frames
//! At a hand-over the writer renames `FILE-log` to `FILE-log.applying`, which the applier
//! reads or applies from memory, and starts a new `FILE-log`; the applier removes
//! `FILE-log.applying` once its transaction is on the disk (its commits are
//! `synchronous = FULL`), and only then is the next hand-over made. So at most two log
//! files exist, and every change is in a table, or in one of them.
//!
//! A frame is `length: u32, crc: u32, seq: u64, log: u64, bytes` (little-endian): `seq`
//! counts the commits of the file, one by one; `log` is the state file's own random
//! number (`log_applied.log`), so a log left beside another state file is never applied to
//! this one; `crc` is the CRC-32 of `seq`, `log` and `bytes`. The state file keeps, in
//! `log_applied.seq`, the last `seq` its tables hold, set by the transaction that applied
//! it: frames at or below it are skipped, so a frame is never applied twice.
//!
//! Opening a state file applies whatever its log files still hold ([`super::writer::recover`])
//! before anything is read, so the layers above only ever see the tables. The frames after
//! `log_applied.seq` are applied in order, each the next `seq`, up to the first that is
//! cut short, fails its CRC or is missing: what a power cut can leave at the end of a file
//! that was not yet forced to the disk, as SQLite's own write-ahead log does (and what a
//! commit of `synchronous = NORMAL` may lose, too). A frame whose CRC holds but whose bytes
//! cannot be read is not a cut: the file is refused, and its log kept, so no change a
//! client was told was saved goes missing quietly. A reader of the state file itself (the
//! `sqlite3` shell) sees each table as of the last apply: at most [`APPLY_IDLE`] and one
//! apply behind once writes stop.
//!
//! The bytes are [`postcard`]'s encoding of a sequence of [`Entry`]. It is the file's own
//! format, versioned with it: a later build that changes [`Entry`] must first apply the
//! frames an older build left. Files of schema version 5 kept their log in a `write_log`
//! table; [`apply_table`] applies what one still holds when it is opened.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::Table;
use super::{Write, beside};

/// Changes logged but not applied at which the writer hands them to the applier.
pub(super) const APPLY_AT: usize = 2048;
/// Bytes of documents logged but not applied at which the writer hands them over.
pub(super) const APPLY_BYTES: usize = 1 << 20;
/// How long without a new change before the writer hands over what the log holds.
pub(super) const APPLY_IDLE: Duration = Duration::from_millis(50);

/// The bytes of a frame's header: length, CRC, `seq`, `log`.
const HEADER: usize = 24;

/// One change, as the log stores it and as the applier takes it: borrowed from a [`Write`] or
/// from a row's bytes. Tables are named, not numbered, so the encoding does not depend on
/// the order of [`super::Table`]'s variants. New variants go at the end.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Entry<'a> {
    Put {
        table: &'a str,
        tenant: &'a str,
        id: &'a str,
        position: i64,
        doc: &'a str,
    },
    Delete {
        table: &'a str,
        tenant: &'a str,
        id: &'a str,
        position: i64,
    },
    ClearTenant {
        table: &'a str,
        tenant: &'a str,
    },
    ClearTable {
        table: &'a str,
    },
    Clock {
        offset_ms: i64,
        frozen_at: Option<&'a str>,
    },
    Secret {
        name: &'a str,
        value: &'a str,
    },
    Quarantine {
        table: &'a str,
        tenant: &'a str,
        id: &'a str,
        position: i64,
        doc: &'a str,
        reason: &'a str,
    },
}

impl<'a> Entry<'a> {
    /// The entry of `write`; `None` for what a file never keeps (the journal).
    pub(super) fn of(write: &'a Write) -> Option<Entry<'a>> {
        Some(match write {
            Write::Put {
                table,
                tenant,
                id,
                position,
                doc,
            } => Entry::Put {
                table: table.name(),
                tenant,
                id,
                position: *position,
                doc,
            },
            Write::Delete {
                table,
                tenant,
                id,
                position,
            } => Entry::Delete {
                table: table.name(),
                tenant,
                id,
                position: *position,
            },
            Write::ClearTenant { table, tenant } => Entry::ClearTenant {
                table: table.name(),
                tenant,
            },
            Write::ClearTable(table) => Entry::ClearTable {
                table: table.name(),
            },
            Write::Clock {
                offset_ms,
                frozen_at,
            } => Entry::Clock {
                offset_ms: *offset_ms,
                frozen_at: frozen_at.as_deref(),
            },
            Write::Secret { name, value } => Entry::Secret { name, value },
            Write::Journal { .. } | Write::ForgetJournal { .. } => return None,
            Write::Quarantine { table, row, reason } => Entry::Quarantine {
                table: table.name(),
                tenant: &row.tenant,
                id: &row.id,
                position: i64::try_from(row.position).unwrap_or(i64::MAX),
                doc: &row.doc,
                reason,
            },
        })
    }
}

/// Serializes `writes` as a sequence of entries of known length, without collecting them.
struct Batch<'a>(&'a [Write]);

impl Serialize for Batch<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let entries = || self.0.iter().filter_map(Entry::of);
        let mut sequence = serializer.serialize_seq(Some(entries().count()))?;
        for entry in entries() {
            sequence.serialize_element(&entry)?;
        }
        sequence.end()
    }
}

/// The entries of one frame's (or `write_log` row's) bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Entry<'_>>, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Why the log could not be written, read or applied.
#[derive(Debug, thiserror::Error)]
pub(super) enum LogError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: frame {seq} has a sound CRC but cannot be read ({reason}); refusing to drop it", path.display())]
    Unreadable {
        path: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error(
        "{}: {what}, yet a sound frame of this state file's log follows it (frame {later}): \
         damage, not the end a power cut leaves; refusing to open the state file so that no \
         change is dropped quietly (nothing was modified). To open it all the same, move the \
         write log aside, {log} and {log}.applying (whichever are there): the file then opens \
         as its tables hold it, without any change the log holds, those before the damage \
         included",
        path.display(),
        log = path.display().to_string().trim_end_matches(".applying")
    )]
    Damaged {
        path: PathBuf,
        what: &'static str,
        later: u64,
    },
    #[error(
        "{}: the log of another state file (left beside this one, or copied with it); \
         refusing to open the state file rather than apply or delete it (nothing was \
         modified). Move it aside, or delete it if that other file's changes are not wanted",
        path.display()
    )]
    Foreign { path: PathBuf },
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the write log holds commits up to {through}, but its file gave only up to {read}")]
    Short { through: u64, read: u64 },
}

/// `FILE-log`: the log the writer appends to.
pub(super) fn log_path(state: &Path) -> PathBuf {
    beside(state, "-log")
}

/// `FILE-log.applying`: the log handed to the applier.
pub(super) fn applying_path(state: &Path) -> PathBuf {
    beside(state, "-log.applying")
}

/// The state file's log number and the last `seq` its tables hold.
pub(super) fn applied(connection: &Connection) -> rusqlite::Result<(u64, u64)> {
    connection
        .prepare_cached("SELECT log, seq FROM log_applied WHERE id = 1")?
        .query_row([], |row| {
            Ok((
                row.get::<_, i64>(0)?.cast_unsigned(),
                row.get::<_, i64>(1)?.cast_unsigned(),
            ))
        })
}

/// Records, in the transaction that applied it, that the tables hold every frame up to
/// `seq`.
pub(super) fn set_applied(transaction: &Transaction<'_>, seq: u64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("UPDATE log_applied SET seq = ?1 WHERE id = 1")?
        .execute([seq.cast_signed()])
        .map(drop)
}

/// The writer's side: appends frames to `FILE-log` and hands it over.
pub(super) struct Log {
    path: PathBuf,
    applying: PathBuf,
    log: u64,
    /// `None` after a failed write, or before the first: the next append opens the file
    /// again, cut back to the `len` bytes of whole frames it holds.
    file: Option<File>,
    len: u64,
    /// The `seq` of the last frame written.
    last: u64,
    buffer: Vec<u8>,
}

impl Log {
    /// The log of the state file at `state`, whose tables hold every frame up to `applied`.
    /// `FILE-log` is started over at the first append: [`super::writer::recover`] applied
    /// what it held.
    pub(super) fn new(state: &Path, log: u64, applied: u64) -> Log {
        Log {
            path: log_path(state),
            applying: applying_path(state),
            log,
            file: None,
            len: 0,
            last: applied,
            buffer: Vec::new(),
        }
    }

    /// Appends `writes` as one frame, with one `write`. On failure the file is as it was
    /// (what a failed write left of the frame is cut off before the next append).
    pub(super) fn append(&mut self, writes: &[Write]) -> Result<(), LogError> {
        let seq = self.last + 1;
        let frame =
            frame(seq, self.log, writes, &mut self.buffer).map_err(|error| LogError::Io {
                path: self.path.clone(),
                error: io::Error::other(error),
            })?;
        let written = match &mut self.file {
            Some(file) => file.write_all(frame),
            None => open_at(&self.path, self.len).and_then(|mut file| {
                let written = file.write_all(frame);
                self.file = Some(file);
                written
            }),
        };
        match written {
            Ok(()) => {
                self.len += frame.len() as u64;
                self.last = seq;
                Ok(())
            }
            Err(error) => {
                self.file = None;
                Err(LogError::Io {
                    path: self.path.clone(),
                    error,
                })
            }
        }
    }

    /// Hands the log over: `FILE-log` becomes `FILE-log.applying` (which must not exist)
    /// and the next append starts a new one. Gives the `seq` of its last frame.
    pub(super) fn seal(&mut self) -> Result<u64, LogError> {
        // A handed-over log still there was not applied (an applier that failed and gave
        // up as linkbox stopped): renamed over, its changes would be gone. The log stays
        // as it is, and both are applied when the file is next opened.
        if self.applying.exists() {
            return Err(LogError::Io {
                path: self.applying.clone(),
                error: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the log handed over before is not applied yet",
                ),
            });
        }
        std::fs::rename(&self.path, &self.applying).map_err(|error| LogError::Io {
            path: self.path.clone(),
            error,
        })?;
        self.file = None;
        self.len = 0;
        Ok(self.last)
    }
}

/// `path` opened for appending after its first `len` bytes, cut back to them if it holds
/// more (created if missing).
fn open_at(path: &Path, len: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() > len {
        file.set_len(len)?;
    }
    file.seek(SeekFrom::Start(len))?;
    Ok(file)
}

/// `writes` as the frame `seq` of log `log`, in `buffer` (its capacity reused).
fn frame<'b>(
    seq: u64,
    log: u64,
    writes: &[Write],
    buffer: &'b mut Vec<u8>,
) -> Result<&'b [u8], postcard::Error> {
    buffer.clear();
    buffer.resize(HEADER, 0);
    let mut taken = postcard::to_extend(&Batch(writes), std::mem::take(buffer))?;
    let length =
        u32::try_from(taken.len() - HEADER).map_err(|_| postcard::Error::SerializeBufferFull)?;
    taken[8..16].copy_from_slice(&seq.to_le_bytes());
    taken[16..24].copy_from_slice(&log.to_le_bytes());
    let crc = crc32fast::hash(&taken[8..]);
    taken[0..4].copy_from_slice(&length.to_le_bytes());
    taken[4..8].copy_from_slice(&crc.to_le_bytes());
    *buffer = taken;
    Ok(buffer)
}

/// How a read of log files ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Replayed {
    /// The `seq` of the last frame applied (or the `applied` it started from).
    pub last: u64,
    /// Why the read stopped before a file's end, if it did: a frame cut short, damaged, of
    /// another log, or not the next.
    pub cut: Option<String>,
}

/// Applies, in order, the frames of `files` after `applied` that belong to log `log`,
/// each the next `seq`, until the first that is cut short, damaged or missing (a power
/// cut's tail). Files that do not exist hold nothing.
///
/// A cut that a sound frame of the same log follows (later in its file, or in a later file)
/// is no tail but damage: [`LogError::Damaged`], so that the caller keeps the files and
/// applies nothing, rather than drop the changes after it. A frame of another state file's
/// log is [`LogError::Foreign`], for the same reason.
pub(super) fn replay(
    files: &[PathBuf],
    log: u64,
    applied: u64,
    apply: &mut dyn FnMut(Entry<'_>) -> rusqlite::Result<()>,
) -> Result<Replayed, LogError> {
    let mut replayed = Replayed {
        last: applied,
        cut: None,
    };
    let mut bytes = Vec::new();
    for (index, path) in files.iter().enumerate() {
        let io = |error| LogError::Io {
            path: path.clone(),
            error,
        };
        // Where the frame being read starts in the file.
        let mut offset = 0;
        let cut = |replayed: Replayed, offset: u64, what: &'static str| match sound_frame_after(
            files,
            index,
            offset,
            log,
            replayed.last,
        )? {
            Some(later) => Err(LogError::Damaged {
                path: path.clone(),
                what,
                later,
            }),
            None => Ok(cut(replayed, path, what)),
        };
        let mut file = match File::open(path) {
            Ok(file) => io::BufReader::new(file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io(error)),
        };
        loop {
            // Read as far as the file goes, not sized by the header: a damaged length must
            // not make a start allocate gigabytes before finding the frame cut short.
            bytes.clear();
            match (&mut file)
                .take(HEADER as u64)
                .read_to_end(&mut bytes)
                .map_err(io)?
            {
                0 => break,
                HEADER => {}
                _ => return cut(replayed, offset, "a frame's header cut short"),
            }
            let field =
                |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
            let length = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let (seq, of) = (field(8), field(16));
            let read = (&mut file)
                .take(length as u64)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if read < length {
                return cut(replayed, offset, "a frame cut short");
            }
            if crc32fast::hash(&bytes[8..]) != crc {
                return cut(replayed, offset, "a frame that fails its CRC");
            }
            if of != log {
                return Err(LogError::Foreign { path: path.clone() });
            }
            let start = offset;
            offset += (HEADER + length) as u64;
            if seq <= replayed.last {
                continue;
            }
            if seq != replayed.last + 1 {
                return cut(replayed, start, "a frame after a missing one");
            }
            let entries = decode(&bytes[HEADER..]).map_err(|error| LogError::Unreadable {
                path: path.clone(),
                seq,
                reason: error.to_string(),
            })?;
            for entry in entries {
                apply(entry)?;
            }
            replayed.last = seq;
        }
    }
    Ok(replayed)
}

/// The `seq` of a sound frame of log `log` after `applied`, anywhere from byte `offset` of
/// `files[index]` on or in the files after it: what tells damage from a power cut's tail.
/// Every byte is tried as a frame's start (a damaged length hides where the next frame
/// starts); the log's number is compared before any CRC is computed, so a scan costs a
/// pass over the bytes.
fn sound_frame_after(
    files: &[PathBuf],
    index: usize,
    offset: u64,
    log: u64,
    applied: u64,
) -> Result<Option<u64>, LogError> {
    use std::os::unix::fs::FileExt;
    let number = log.to_le_bytes();
    for (at, path) in files.iter().enumerate().skip(index) {
        let io = |error| LogError::Io {
            path: path.clone(),
            error,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io(error)),
        };
        // As far as the file's length goes, and no further: what is not a plain file (a
        // device standing in for a full disk) has none, and reads without end. Read a
        // window at a time, so a large log costs no more memory than a small one.
        let length = file.metadata().map_err(io)?.len();
        let mut window = vec![0u8; SCAN_WINDOW];
        let mut base = if at == index { offset } else { 0 };
        while base + HEADER as u64 <= length {
            let read = usize::try_from((length - base).min(SCAN_WINDOW as u64)).unwrap_or(0);
            file.read_exact_at(&mut window[..read], base).map_err(io)?;
            // Every start whose header lies whole in the window.
            let starts = read + 1 - HEADER;
            for start in 0..starts {
                if window[start + 16..start + 24] == number
                    && let Some(seq) =
                        sound_frame_at(&file, base + start as u64, length, applied).map_err(io)?
                {
                    return Ok(Some(seq));
                }
            }
            base += starts as u64;
        }
    }
    Ok(None)
}

/// Bytes of a log read at once while looking for a sound frame.
const SCAN_WINDOW: usize = 64 * 1024;

/// The `seq` of the frame starting at byte `start` of `file` (`length` bytes long), if
/// it is a whole frame, after `applied`, whose CRC holds (its log's number already
/// matched); its bytes are read a window at a time.
fn sound_frame_at(file: &File, start: u64, length: u64, applied: u64) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, start)?;
    let bytes = u64::from(u32::from_le_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let seq = u64::from_le_bytes([
        header[8], header[9], header[10], header[11], header[12], header[13], header[14],
        header[15],
    ]);
    if seq <= applied || start + HEADER as u64 + bytes > length {
        return Ok(None);
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[8..]);
    let mut chunk = vec![0u8; SCAN_WINDOW];
    let (mut at, mut left) = (start + HEADER as u64, bytes);
    while left > 0 {
        let read = usize::try_from(left.min(SCAN_WINDOW as u64)).unwrap_or(SCAN_WINDOW);
        file.read_exact_at(&mut chunk[..read], at)?;
        hasher.update(&chunk[..read]);
        at += read as u64;
        left -= read as u64;
    }
    Ok((hasher.finalize() == crc).then_some(seq))
}

fn cut(replayed: Replayed, path: &Path, what: &str) -> Replayed {
    Replayed {
        cut: Some(format!(
            "{} ends in {what}; the frames from there on are not applied",
            path.display()
        )),
        ..replayed
    }
}

/// Whether a file of schema version 5 left changes in its `write_log` table.
pub(super) fn table_is_empty(connection: &Connection) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM write_log)")?
        .query_row([], |row| row.get(0))
}

/// Applies every row of a version-5 file's `write_log` table, as its bytes read, and
/// empties it.
pub(super) fn apply_table(
    transaction: &Transaction<'_>,
    apply: &mut dyn FnMut(Entry<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    {
        let mut select = transaction.prepare("SELECT seq, batch FROM write_log ORDER BY seq")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let bytes = row.get_ref(1)?.as_blob()?;
            let entries = decode(bytes).map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Blob,
                    format!("write_log row {seq} cannot be read: {error}").into(),
                )
            })?;
            for entry in entries {
                apply(entry)?;
            }
        }
    }
    transaction
        .prepare_cached("DELETE FROM write_log")?
        .execute([])
        .map(drop)
}

/// Frame 1 of log `log`: its CRC sound, its bytes no sequence of entries.
#[cfg(test)]
pub(super) fn unreadable_frame(log: u64) -> Vec<u8> {
    let bytes = [0x05, 0xff];
    let mut checked = Vec::new();
    checked.extend_from_slice(&1u64.to_le_bytes());
    checked.extend_from_slice(&log.to_le_bytes());
    checked.extend_from_slice(&bytes);
    let mut frame = Vec::new();
    frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&checked).to_le_bytes());
    frame.extend_from_slice(&checked);
    frame
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::persist::Row;

    fn writes() -> Vec<Write> {
        let tenant: Arc<str> = Arc::from("acme");
        vec![
            Write::Put {
                table: Table::M2mLinks,
                tenant: tenant.clone(),
                id: "link_1".into(),
                position: 7,
                doc: r#"{"id":"link_1","metadata":{"quote":"\"é\""}}"#.into(),
            },
            Write::Delete {
                table: Table::WebhookDeliveries,
                tenant: tenant.clone(),
                id: "whd_1".into(),
                position: 3,
            },
            Write::ClearTenant {
                table: Table::M2mUsers,
                tenant: tenant.clone(),
            },
            Write::ClearTable(Table::LeafUsers),
            Write::Clock {
                offset_ms: -5,
                frozen_at: Some("2026-01-01T00:00:00Z".into()),
            },
            Write::Secret {
                name: "leaf_signing_key",
                value: "s3cret".into(),
            },
            Write::Journal {
                tenant,
                doc: "{}".into(),
            },
            Write::Quarantine {
                table: Table::M2mLinks,
                row: Row {
                    tenant: "acme".into(),
                    id: "link_2".into(),
                    position: 9,
                    doc: "not json".into(),
                },
                reason: "bad".into(),
            },
        ]
    }

    /// A directory of its own, removed when dropped.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(name: &str) -> Dir {
            tempfile::Builder::new()
                .prefix(&format!("linkbox-write-log-{name}-"))
                .tempdir()
                .map(Dir)
                .expect("temporary directory")
        }

        fn state(&self) -> PathBuf {
            self.0.path().join("state.db")
        }
    }

    const LOG: u64 = 0x5EED;

    /// Each entry `replay` applies, written out, and how it ended.
    fn read_back(files: &[PathBuf], log: u64, applied: u64) -> (Vec<String>, Replayed) {
        let mut seen = Vec::new();
        let replayed = replay(files, log, applied, &mut |entry| {
            seen.push(format!("{entry:?}"));
            Ok(())
        })
        .expect("replayed");
        (seen, replayed)
    }

    fn link(position: i64) -> Write {
        Write::Put {
            table: Table::M2mLinks,
            tenant: Arc::from("acme"),
            id: format!("link_{position}"),
            position,
            doc: format!(r#"{{"referenceId":"customer-{position}"}}"#),
        }
    }

    fn expected(writes: &[Write]) -> Vec<String> {
        writes
            .iter()
            .filter_map(Entry::of)
            .map(|entry| format!("{entry:?}"))
            .collect()
    }

    #[test]
    fn frames_read_back_as_their_entries_in_order_without_the_journal() {
        let dir = Dir::new("order");
        let mut log = Log::new(&dir.state(), LOG, 0);
        let writes = writes();
        log.append(&writes[..3]).expect("first frame");
        log.append(&writes[3..]).expect("second frame");
        let (seen, replayed) = read_back(&[log_path(&dir.state())], LOG, 0);
        assert_eq!(seen, expected(&writes));
        assert_eq!(seen.len(), writes.len() - 1, "the journal is not logged");
        assert_eq!(replayed, Replayed { last: 2, cut: None });
    }

    #[test]
    fn frames_already_applied_are_skipped_and_a_handed_over_log_comes_first() {
        let dir = Dir::new("seal");
        let mut log = Log::new(&dir.state(), LOG, 10);
        log.append(&[link(0)]).expect("frame 11");
        log.append(&[link(1)]).expect("frame 12");
        assert_eq!(log.seal().expect("handed over"), 12);
        assert!(!log_path(&dir.state()).exists(), "renamed, not copied");
        log.append(&[link(2)]).expect("frame 13, in a new file");
        let files = [applying_path(&dir.state()), log_path(&dir.state())];
        let (seen, replayed) = read_back(&files, LOG, 10);
        assert_eq!(seen, expected(&[link(0), link(1), link(2)]));
        assert_eq!(replayed.last, 13);
        let (seen, replayed) = read_back(&files, LOG, 12);
        assert_eq!(seen, expected(&[link(2)]), "only the frames after 12");
        assert_eq!(replayed.last, 13);
        let error = replay(&files, LOG + 1, 10, &mut |_| {
            panic!("another state file's log is not applied")
        })
        .expect_err("refused");
        assert!(matches!(error, LogError::Foreign { .. }), "{error}");
        assert!(error.to_string().contains("Move it aside"), "{error}");
    }

    /// A log of three frames of one link each, in `dir`: its path, its bytes and a frame's
    /// length (the three are the same size).
    fn three_frames(dir: &Dir) -> (PathBuf, Vec<u8>, usize) {
        let mut log = Log::new(&dir.state(), LOG, 0);
        for position in 0..3 {
            log.append(&[link(position)]).expect("frame");
        }
        let path = log_path(&dir.state());
        let whole = std::fs::read(&path).expect("log");
        let frame = whole.len() / 3;
        (path, whole, frame)
    }

    #[test]
    fn a_frame_cut_short_or_damaged_ends_the_log_there() {
        let dir = Dir::new("cut");
        let (path, whole, frame) = three_frames(&dir);

        // A power cut in the middle of the last frame.
        std::fs::write(&path, &whole[..whole.len() - 5]).expect("cut");
        let (seen, replayed) = read_back(std::slice::from_ref(&path), LOG, 0);
        assert_eq!(seen, expected(&[link(0), link(1)]));
        assert_eq!(replayed.last, 2);
        assert!(replayed.cut.expect("said").contains("cut short"));

        // A power cut in the middle of the last frame's header.
        std::fs::write(&path, &whole[..2 * frame + HEADER / 2]).expect("cut");
        let (seen, replayed) = read_back(std::slice::from_ref(&path), LOG, 0);
        assert_eq!(seen, expected(&[link(0), link(1)]));
        assert_eq!(replayed.last, 2);
        assert!(replayed.cut.expect("said").contains("header cut short"));

        // One byte of the last frame's document changed: its CRC fails, and the log ends
        // there.
        let mut damaged = whole.clone();
        damaged[2 * frame + HEADER + 3] ^= 0x20;
        std::fs::write(&path, &damaged).expect("damaged");
        let (seen, replayed) = read_back(std::slice::from_ref(&path), LOG, 0);
        assert_eq!(seen, expected(&[link(0), link(1)]));
        assert!(replayed.cut.expect("said").contains("CRC"));
    }

    #[test]
    fn damage_that_sound_frames_follow_refuses_the_log_rather_than_drop_them() {
        let dir = Dir::new("damage");
        let (path, whole, frame) = three_frames(&dir);
        let refused = |bytes: &[u8], files: &[PathBuf]| {
            std::fs::write(&path, bytes).expect("written");
            let mut applied = 0;
            let error = replay(files, LOG, 0, &mut |_| {
                applied += 1;
                Ok(())
            })
            .expect_err("refused");
            (error, applied)
        };
        let only = std::slice::from_ref(&path);

        // One byte of the second frame's document changed: the third is sound.
        let mut damaged = whole.clone();
        damaged[frame + HEADER + 3] ^= 0x20;
        let (error, _) = refused(&damaged, only);
        assert!(
            matches!(error, LogError::Damaged { later: 3, what, .. } if what.contains("CRC")),
            "{error}"
        );
        assert!(
            error.to_string().contains("nothing was modified"),
            "{error}"
        );

        // The second frame's length damaged: where the third starts is found all the same.
        let mut length = whole.clone();
        length[frame..frame + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let (error, _) = refused(&length, only);
        assert!(
            matches!(error, LogError::Damaged { later: 3, .. }),
            "{error}"
        );

        // The second frame missing altogether: the third is not the next.
        let mut gap = whole[..frame].to_vec();
        gap.extend_from_slice(&whole[2 * frame..]);
        let (error, _) = refused(&gap, only);
        assert!(
            matches!(error, LogError::Damaged { later: 3, what, .. } if what.contains("missing")),
            "{error}"
        );

        // A handed-over log cut short, and the frames after it in the next file.
        let applying = applying_path(&dir.state());
        std::fs::write(&applying, &whole[..frame + HEADER / 2]).expect("applying");
        let next = log_path(&dir.state());
        let files = [applying.clone(), next.clone()];
        let (error, _) = refused(&whole[2 * frame..], &files);
        assert!(
            matches!(error, LogError::Damaged { later: 3, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_damaged_length_is_a_frame_cut_short_whatever_it_claims() {
        let dir = Dir::new("length");
        let mut log = Log::new(&dir.state(), LOG, 0);
        log.append(&[link(0)]).expect("frame 1");
        log.append(&[link(1)]).expect("frame 2");
        let path = log_path(&dir.state());
        let mut bytes = std::fs::read(&path).expect("log");
        let second = bytes.len() / 2;
        bytes[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &bytes).expect("damaged");
        let (seen, replayed) = read_back(std::slice::from_ref(&path), LOG, 0);
        assert_eq!(seen, expected(&[link(0)]));
        assert_eq!(replayed.last, 1);
        assert!(replayed.cut.expect("said").contains("cut short"));
    }

    #[test]
    fn a_sound_frame_whose_bytes_cannot_be_read_is_an_error_not_a_cut() {
        let dir = Dir::new("unreadable");
        let path = log_path(&dir.state());
        std::fs::write(&path, unreadable_frame(LOG)).expect("log");
        let error = replay(&[path], LOG, 0, &mut |_| Ok(())).expect_err("refused");
        assert!(
            matches!(error, LogError::Unreadable { seq: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("frame 1"), "{error}");
    }

    /// The scan for a sound frame past damage reads a window at a time: one that lies
    /// windows away from the damage, and one whose header straddles a window's edge, are
    /// found all the same.
    #[test]
    fn a_sound_frame_windows_past_the_damage_is_found() {
        let dir = Dir::new("windows");
        let mut log = Log::new(&dir.state(), LOG, 0);
        let frames = 3000;
        for position in 0..frames {
            log.append(&[link(position)]).expect("frame");
        }
        let path = log_path(&dir.state());
        let whole = std::fs::read(&path).expect("log");
        assert!(whole.len() > 3 * SCAN_WINDOW, "{} bytes", whole.len());
        // Where each frame starts, read off their lengths.
        let mut starts = vec![0];
        while let Some(&at) = starts.last().filter(|&&at| at < whole.len()) {
            let length = u32::from_le_bytes(whole[at..at + 4].try_into().expect("4 bytes"));
            starts.push(at + HEADER + length as usize);
        }
        starts.pop();
        assert_eq!(starts.len(), frames as usize);
        // A frame whose header straddles the edge of the first window the scan reads, which
        // starts at the damaged frame: damage from `first` on, the next sound one at `k`.
        let (first, straddling) = (1..starts.len())
            .find_map(|first| {
                let edge = starts[first] + SCAN_WINDOW;
                starts
                    .iter()
                    .position(|&at| at < edge && at + HEADER > edge)
                    .map(|k| (first, k))
            })
            .expect("some frame straddles a window's edge");
        for (from, first_sound) in [(first, straddling), (1, frames as usize - 1)] {
            let mut damaged = whole.clone();
            damaged[starts[from]..starts[first_sound]].fill(0);
            std::fs::write(&path, &damaged).expect("damaged");
            let error =
                replay(std::slice::from_ref(&path), LOG, 0, &mut |_| Ok(())).expect_err("refused");
            let seq = first_sound as u64 + 1;
            assert!(
                matches!(error, LogError::Damaged { later, .. } if later == seq),
                "{error}"
            );
        }
    }

    /// A handed-over log not applied yet (an applier that gave up as linkbox stopped) is
    /// never renamed over: the next hand-over fails and both logs keep their frames.
    #[test]
    fn a_log_handed_over_and_not_applied_is_never_handed_over_again() {
        let dir = Dir::new("seal-twice");
        let mut log = Log::new(&dir.state(), LOG, 0);
        log.append(&[link(0)]).expect("frame 1");
        assert_eq!(log.seal().expect("handed over"), 1);
        let applying = applying_path(&dir.state());
        let handed = std::fs::read(&applying).expect("handed over");
        log.append(&[link(1)]).expect("frame 2");
        let error = log.seal().expect_err("the first is not applied");
        assert!(error.to_string().contains("not applied yet"), "{error}");
        assert_eq!(std::fs::read(&applying).expect("kept"), handed);
        let files = [applying, log_path(&dir.state())];
        let (seen, replayed) = read_back(&files, LOG, 0);
        assert_eq!(seen, expected(&[link(0), link(1)]));
        assert_eq!(replayed.last, 2);
    }

    #[test]
    fn a_failed_append_writes_nothing_and_the_next_one_takes_its_place() {
        let dir = Dir::new("full");
        let path = log_path(&dir.state());
        std::os::unix::fs::symlink("/dev/full", &path).expect("a full disk");
        let mut log = Log::new(&dir.state(), LOG, 0);
        let error = log.append(&[link(0)]).expect_err("no space");
        assert!(error.to_string().contains("-log"), "{error}");
        // Room again: the path names a file.
        std::fs::remove_file(&path).expect("symlink removed");
        log.append(&[link(0)]).expect("appended");
        log.append(&[link(1)]).expect("appended");
        let (seen, replayed) = read_back(&[path], LOG, 0);
        assert_eq!(seen, expected(&[link(0), link(1)]));
        assert_eq!(replayed.last, 2, "the failed append used no seq");
    }

    #[test]
    fn a_legacy_row_cut_short_is_an_error_not_fewer_entries() {
        let writes = writes();
        let mut buffer = Vec::new();
        let bytes = frame(1, LOG, &writes, &mut buffer).expect("encodes")[HEADER..].to_vec();
        assert_eq!(decode(&bytes).expect("decodes").len(), writes.len() - 1);
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
