//! Reading a state file back: every row of every table, as stored (JSON documents left as
//! text), for the layers above to put back through their own APIs. Nothing here knows what
//! a document holds.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};

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

/// Everything a state file holds.
#[derive(Debug, Default)]
pub struct Stored {
    /// Each entity table's rows, ordered by tenant, then position.
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
