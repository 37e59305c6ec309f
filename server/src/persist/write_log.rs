//! The write log: each group commit's changes as one compact row of `write_log`, applied to
//! their tables later, many commits at a time.
//!
//! A commit that puts rows straight into their tables rewrites, whole, every page it
//! touches: with four partners creating links, each commit of about twenty creates wrote
//! 40–46 pages (the last leaf of each partner's links and users, their parents, the
//! deliveries' last and first leaves), about 11 KB to the disk per create for 1.1 KB of rows
//! (docs/benchmarks.md). A row of `write_log` is one append to a table keyed by a growing
//! integer, its bytes on overflow pages of their own: a commit writes about as many pages as
//! its changes fill. The changes reach their tables when the writer applies the log
//! ([`super::writer`]): once it holds [`APPLY_AT`] changes or [`APPLY_BYTES`] of documents
//! (so that one apply adds a bounded number of pages to SQLite's log), once no change has
//! come for [`APPLY_IDLE`], or when linkbox stops; then each table's last pages are
//! rewritten once for hundreds of creates.
//!
//! Both steps are SQLite transactions of the one file, so the file is always whole: a change
//! is either in its table, or in `write_log`, never lost between them and never applied
//! twice (the apply deletes the rows it applied in the same transaction). Opening a file
//! applies whatever its log still holds before anything is read ([`apply_all`]), so the
//! layers above only ever see the tables. A reader of the file itself (the `sqlite3` shell)
//! sees each table as of the last apply: at most [`APPLY_IDLE`] behind once writes stop.
//!
//! A row's bytes are [`postcard`]'s encoding of a sequence of [`Entry`]. It is the file's
//! own format, versioned with it: a later build that changes [`Entry`] must first apply, in
//! a migration, the rows an older build left.

use std::time::Duration;

use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::Table;
use super::Write;

/// Changes logged but not applied at which the writer applies them.
pub(super) const APPLY_AT: usize = 2048;
/// Bytes of documents logged but not applied at which the writer applies them.
pub(super) const APPLY_BYTES: usize = 1 << 20;
/// How long without a new change before the writer applies what the log holds.
pub(super) const APPLY_IDLE: Duration = Duration::from_millis(50);

/// One change, as the log stores it and as [`apply`] takes it: borrowed from a [`Write`] or
/// from a row's bytes. Tables are named, not numbered, so the encoding does not depend on
/// the order of [`Table`]'s variants. New variants go at the end.
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
            Write::Journal { .. } => return None,
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

/// `writes` encoded as one row's bytes, in `buffer` (cleared first, its capacity reused).
pub(super) fn encode<'b>(
    writes: &[Write],
    buffer: &'b mut Vec<u8>,
) -> Result<&'b [u8], postcard::Error> {
    buffer.clear();
    let taken = postcard::to_extend(&Batch(writes), std::mem::take(buffer))?;
    *buffer = taken;
    Ok(buffer)
}

/// The entries of one row's bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Entry<'_>>, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Appends `writes` to the log in `transaction`: one row, or several for a batch larger
/// than [`APPLY_AT`], so that no row grows without bound.
pub(super) fn append(
    transaction: &Transaction<'_>,
    writes: &[Write],
    buffer: &mut Vec<u8>,
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare_cached("INSERT INTO write_log (batch) VALUES (?1)")?;
    for chunk in writes.chunks(APPLY_AT) {
        let bytes = encode(chunk, buffer)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        insert.execute(params![bytes])?;
    }
    Ok(())
}

/// Whether the log holds any row.
pub(super) fn is_empty(connection: &Connection) -> rusqlite::Result<bool> {
    connection
        .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM write_log)")?
        .query_row([], |row| row.get(0))
}

/// Applies every row of the log to its tables, oldest first, and empties it, in
/// `transaction`. `apply` puts one entry into its table.
pub(super) fn apply_all(
    transaction: &Transaction<'_>,
    apply: &mut dyn FnMut(&Transaction<'_>, Entry<'_>) -> rusqlite::Result<()>,
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
                apply(transaction, entry)?;
            }
        }
    }
    clear(transaction)
}

/// Empties the log, its rows being applied in the same transaction.
pub(super) fn clear(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("DELETE FROM write_log")?
        .execute([])
        .map(drop)
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

    #[test]
    fn a_batch_reads_back_as_its_entries_in_order_without_the_journal() {
        let writes = writes();
        let mut buffer = vec![1, 2, 3];
        let bytes = encode(&writes, &mut buffer).expect("encodes").to_vec();
        let entries = decode(&bytes).expect("decodes");
        let expected: Vec<Entry<'_>> = writes.iter().filter_map(Entry::of).collect();
        assert_eq!(entries.len(), writes.len() - 1);
        assert_eq!(entries, expected);
        assert!(
            !entries
                .iter()
                .any(|entry| matches!(entry, Entry::Put { doc, .. } if doc.is_empty())),
        );
    }

    #[test]
    fn a_row_cut_short_is_an_error_not_fewer_entries() {
        let writes = writes();
        let mut buffer = Vec::new();
        let bytes = encode(&writes, &mut buffer).expect("encodes").to_vec();
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
