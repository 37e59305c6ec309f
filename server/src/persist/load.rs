//! Reading a state file back: every row of every table, as stored (JSON documents left as
//! text), for the layers above to put back through their own APIs. Nothing here knows what
//! a document holds.
//!
//! A partner's state ([`Table::M2M_STATE`]: users, links, data requests, operations) can
//! be a million rows, so a state file's are not read into memory with the rest: [`Rows`]
//! hands them out one partner at a time, borrowed straight from SQLite, in the table's key
//! order (tenant, position, id), which needs no sort. The layer above parses each document as it
//! comes and keeps only what it makes of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::Table;

/// One row of an entity table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub tenant: String,
    pub id: String,
    pub position: u64,
    /// The JSON document, as written.
    pub doc: String,
}

/// One row, borrowed from where it was read.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    pub position: u64,
    /// The JSON document, as written.
    pub doc: &'a str,
}

impl Row {
    /// The row, borrowed.
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            tenant: &self.tenant,
            id: &self.id,
            position: self.position,
            doc: &self.doc,
        }
    }
}

impl RowRef<'_> {
    pub fn to_row(&self) -> Row {
        Row {
            tenant: self.tenant.to_owned(),
            id: self.id.to_owned(),
            position: self.position,
            doc: self.doc.to_owned(),
        }
    }
}

/// Rows handed out one tenant at a time: a state file's, read from it as they are asked
/// for ([`FileRows`]), or rows already read ([`Stored`], a shared database's).
pub trait Rows: Sync {
    /// Calls `each` with every row of `table` whose tenant is `tenant`, in no set order,
    /// until `each` returns `false`. `Err`: the rows could not be read.
    fn each(
        &self,
        table: Table,
        tenant: &str,
        each: &mut dyn FnMut(RowRef<'_>) -> bool,
    ) -> Result<(), String>;
}

/// A state file's rows, read as they are asked for, each call on a read-only connection of
/// its own, so that calls on several threads read at once.
pub struct FileRows {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl FileRows {
    pub(super) fn new(path: &Path) -> FileRows {
        FileRows {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn connection(&self) -> rusqlite::Result<Connection> {
        if let Some(connection) = self.idle.lock().pop() {
            return Ok(connection);
        }
        Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
}

impl Rows for FileRows {
    fn each(
        &self,
        table: Table,
        tenant: &str,
        each: &mut dyn FnMut(RowRef<'_>) -> bool,
    ) -> Result<(), String> {
        let text = |error: rusqlite::Error| format!("{}: {error}", table.name());
        let connection = self.connection().map_err(text)?;
        {
            // The primary key is (tenant, position, id): this reads one range of it, in
            // order, no sort.
            let sql = format!(
                "SELECT id, position, doc FROM {} WHERE tenant = ?1",
                table.name()
            );
            let mut statement = connection.prepare_cached(&sql).map_err(text)?;
            let mut rows = statement.query([tenant]).map_err(text)?;
            while let Some(row) = rows.next().map_err(text)? {
                let column = |index: usize| {
                    row.get_ref(index)
                        .and_then(|value| value.as_str().map_err(Into::into))
                        .map_err(text)
                };
                let position = row.get::<_, i64>(1).map_err(text)?;
                let row = RowRef {
                    tenant,
                    id: column(0)?,
                    position: u64::try_from(position).unwrap_or_default(),
                    doc: column(2)?,
                };
                if !each(row) {
                    break;
                }
            }
        }
        self.idle.lock().push(connection);
        Ok(())
    }
}

impl Rows for Stored {
    fn each(
        &self,
        table: Table,
        tenant: &str,
        each: &mut dyn FnMut(RowRef<'_>) -> bool,
    ) -> Result<(), String> {
        let rows = self.rows(table);
        let start = rows.partition_point(|row| row.tenant.as_str() < tenant);
        for row in rows[start..].iter().take_while(|row| row.tenant == tenant) {
            if !each(row.as_ref()) {
                break;
            }
        }
        Ok(())
    }
}

/// Everything a state file or shared database holds; for a state file, all but the
/// partners' state ([`Table::M2M_STATE`]), which [`FileRows`] reads when it is asked for.
#[derive(Debug, Default)]
pub struct Stored {
    /// Each entity table's rows, ordered by tenant (in byte order), then position.
    pub tables: BTreeMap<&'static str, Vec<Row>>,
    /// `secrets(name, value)`.
    pub secrets: BTreeMap<String, String>,
    /// The clock row: offset in milliseconds and the frozen reading, if any.
    pub clock: Option<(i64, Option<String>)>,
}

impl Stored {
    /// The rows of `table`, in tenant and position order.
    pub fn rows(&self, table: Table) -> &[Row] {
        self.tables.get(table.name()).map_or(&[], Vec::as_slice)
    }

    /// The rows of `table` grouped by tenant, each group in position order.
    pub fn by_tenant(&self, table: Table) -> BTreeMap<&str, Vec<&Row>> {
        let mut grouped: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in self.rows(table) {
            grouped.entry(row.tenant.as_str()).or_default().push(row);
        }
        grouped
    }
}

pub(super) fn read(connection: &Connection) -> Result<Stored, String> {
    let text = |error: rusqlite::Error| error.to_string();
    let mut stored = Stored::default();
    let mut statement = connection
        .prepare("SELECT name, value FROM secrets")
        .map_err(text)?;
    let secrets = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(text)?;
    for secret in secrets {
        let (name, value) = secret.map_err(text)?;
        stored.secrets.insert(name, value);
    }
    stored.clock = connection
        .query_row(
            "SELECT offset_ms, frozen_at FROM clock WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(text)?;
    for table in Table::ALL {
        if Table::M2M_STATE.contains(&table) {
            continue;
        }
        let order = if table == Table::WebhookDeliveries {
            "position"
        } else {
            "tenant, position"
        };
        let sql = format!(
            "SELECT tenant, id, position, doc FROM {} ORDER BY {order}",
            table.name()
        );
        let mut statement = connection.prepare(&sql).map_err(text)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Row {
                    tenant: row.get(0)?,
                    id: row.get(1)?,
                    position: u64::try_from(row.get::<_, i64>(2)?).unwrap_or_default(),
                    doc: row.get(3)?,
                })
            })
            .map_err(text)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().map_err(text)?;
        stored.tables.insert(table.name(), rows);
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tenant: &str, id: &str, position: u64) -> Row {
        Row {
            tenant: tenant.into(),
            id: id.into(),
            position,
            doc: "{}".into(),
        }
    }

    #[test]
    fn stored_rows_are_handed_out_one_tenant_at_a_time() {
        let mut stored = Stored::default();
        stored.tables.insert(
            Table::M2mLinks.name(),
            vec![
                row("acme-b", "l1", 0),
                row("acme-b", "l2", 1),
                row("acmea", "l3", 0),
                row("zeta", "l4", 0),
            ],
        );
        let ids = |tenant: &str| {
            let mut ids = Vec::new();
            stored
                .each(Table::M2mLinks, tenant, &mut |row| {
                    ids.push(row.id.to_owned());
                    true
                })
                .unwrap();
            ids
        };
        assert_eq!(ids("acme-b"), ["l1", "l2"]);
        assert_eq!(ids("acmea"), ["l3"]);
        assert_eq!(ids("zeta"), ["l4"]);
        assert!(ids("acme").is_empty());
        assert!(ids("other").is_empty());
        let mut first = Vec::new();
        stored
            .each(Table::M2mLinks, "acme-b", &mut |row| {
                first.push(row.id.to_owned());
                false
            })
            .unwrap();
        assert_eq!(first, ["l1"], "stops when told");
    }
}
