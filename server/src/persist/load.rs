//! Reading a state file back into a fresh [`App`], while its sink is muted (nothing read is
//! written back). Rows are grouped by tenant and handed to the store, which checks them as
//! it checks a snapshot: a row it cannot take makes the whole file refused.

use std::collections::BTreeMap;

use linkbox_contracts::timefmt;
use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use time::Duration;

use super::Table;
use crate::app::App;
use crate::store::leaf::persisted::SIGNING_SECRET;

/// `(id, position, document)` of each row, grouped by tenant.
type Rows<T> = BTreeMap<String, Vec<(String, u64, T)>>;

pub(super) fn load(connection: &Connection, app: &App) -> Result<(), String> {
    let secret: Option<String> = connection
        .query_row(
            "SELECT value FROM secrets WHERE name = ?1",
            [SIGNING_SECRET],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| error.to_string())?;
    if let Some(secret) = secret {
        app.store.leaf().restore_signing_secret(&secret)?;
    }
    let clock: Option<(i64, Option<String>)> = connection
        .query_row(
            "SELECT offset_ms, frozen_at FROM clock WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|error| error.to_string())?;
    if let Some((offset_ms, frozen_at)) = clock {
        let frozen_at = frozen_at
            .map(|text| timefmt::parse(&text).ok_or(format!("clock: frozen_at {text:?}")))
            .transpose()?;
        app.clock
            .restore(Duration::milliseconds(offset_ms), frozen_at);
    }
    load_m2m(connection, app)?;
    load_leaf(connection, app)?;
    load_deliveries(connection, app)
}

fn load_m2m(connection: &Connection, app: &App) -> Result<(), String> {
    let partners = app.store.m2m();
    for (slug, rows) in rows(connection, Table::M2mPartners)? {
        for (_, _, row) in rows {
            if partners.restore_partner(&slug, row).is_none() {
                tracing::warn!(partner = %slug, "the state file has a partner this configuration lacks; its rows are ignored");
            }
        }
    }
    let mut users = rows(connection, Table::M2mUsers)?;
    let mut links = rows(connection, Table::M2mLinks)?;
    let mut data_requests = rows(connection, Table::M2mDataRequests)?;
    let mut operations = rows(connection, Table::M2mOperations)?;
    for partner in partners.all() {
        let slug = partner.slug.to_string();
        let users = strip(users.remove(&slug).unwrap_or_default());
        let links = strip(links.remove(&slug).unwrap_or_default());
        let data_requests = strip(data_requests.remove(&slug).unwrap_or_default());
        let operations = strip(operations.remove(&slug).unwrap_or_default());
        partner
            .restore_rows(users, links, data_requests, operations)
            .map_err(|error| format!("partner {slug}: {error}"))?;
    }
    Ok(())
}

fn load_leaf(connection: &Connection, app: &App) -> Result<(), String> {
    let accounts = app.store.leaf();
    let mut links = rows(connection, Table::LeafMagicLinks)?;
    let mut users = rows(connection, Table::LeafUsers)?;
    let names: std::collections::BTreeSet<String> =
        users.keys().chain(links.keys()).cloned().collect();
    for name in names {
        let (users, links) = (
            users.remove(&name).unwrap_or_default(),
            links.remove(&name).unwrap_or_default(),
        );
        if users.is_empty() && links.is_empty() {
            continue;
        }
        match accounts.account(&name) {
            Some(account) => account
                .restore(users, links)
                .map_err(|error| format!("Leaf account {name}: {error}"))?,
            None => {
                tracing::warn!(account = %name, "the state file has a Leaf account this configuration lacks; its rows are ignored");
            }
        }
    }
    Ok(())
}

fn load_deliveries(connection: &Connection, app: &App) -> Result<(), String> {
    let mut statement = connection
        .prepare("SELECT tenant, id, position, doc FROM webhook_deliveries ORDER BY position")
        .map_err(|error| error.to_string())?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(|error| error.to_string())?;
    for row in rows {
        let (slug, id, position, doc) = row.map_err(|error| error.to_string())?;
        let Some(partner) = app.store.m2m().by_slug(&slug) else {
            tracing::warn!(partner = %slug, delivery = %id, "a delivery of a partner this configuration lacks is ignored");
            continue;
        };
        let row = serde_json::from_str(&doc)
            .map_err(|error| format!("webhook_deliveries row {id}: {error}"))?;
        app.webhooks.restore(
            id,
            u64::try_from(position).unwrap_or_default(),
            partner,
            row,
        )?;
    }
    Ok(())
}

/// Writes what a loaded file may lack: the Leaf token key and every partner's settings
/// (configured partners, and the secrets generated for them, may be new to the file).
pub(super) fn write_defaults(app: &App) {
    let secret = app.store.leaf().signing_secret_hex();
    app.sink
        .record(|changes| changes.secret(SIGNING_SECRET, secret));
    for partner in app.store.m2m().all() {
        partner.persist_all_settings();
    }
}

/// Every row of `table`, documents parsed, grouped by tenant in position order.
fn rows<T: DeserializeOwned>(connection: &Connection, table: Table) -> Result<Rows<T>, String> {
    let sql = format!(
        "SELECT tenant, id, position, doc FROM {} ORDER BY tenant, position",
        table.name()
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(|error| error.to_string())?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(|error| error.to_string())?;
    let mut grouped: Rows<T> = BTreeMap::new();
    for row in rows {
        let (tenant, id, position, doc) = row.map_err(|error| error.to_string())?;
        let parsed = serde_json::from_str(&doc)
            .map_err(|error| format!("{} row {id}: {error}", table.name()))?;
        grouped.entry(tenant).or_default().push((
            id,
            u64::try_from(position).unwrap_or_default(),
            parsed,
        ));
    }
    Ok(grouped)
}

fn strip<T>(rows: Vec<(String, u64, T)>) -> Vec<T> {
    rows.into_iter().map(|(_, _, row)| row).collect()
}
