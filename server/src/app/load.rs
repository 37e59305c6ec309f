//! Putting a state file's rows back into a fresh sandbox, each through the API of the piece
//! that owns it (store, clock, webhook queue), while the file's sink is still muted. A row
//! that cannot be taken refuses the whole file.

use linkbox_contracts::timefmt;
use serde::de::DeserializeOwned;
use time::Duration;

use super::App;
use crate::persist::{Row, Stored, Table};
use crate::store::leaf::persisted::SIGNING_SECRET;

pub(super) fn restore(app: &App, stored: &Stored) -> Result<(), String> {
    if let Some(secret) = stored.secrets.get(SIGNING_SECRET) {
        app.store.leaf().restore_signing_secret(secret)?;
    }
    if let Some((offset_ms, frozen_at)) = &stored.clock {
        let frozen_at = frozen_at
            .as_deref()
            .map(|text| timefmt::parse(text).ok_or(format!("clock: frozen_at {text:?}")))
            .transpose()?;
        app.clock
            .restore(Duration::milliseconds(*offset_ms), frozen_at);
    }
    restore_m2m(app, stored)?;
    restore_leaf(app, stored)?;
    restore_deliveries(app, stored)
}

fn restore_m2m(app: &App, stored: &Stored) -> Result<(), String> {
    let partners = app.store.m2m();
    for row in stored.rows(Table::M2mPartners) {
        if partners
            .restore_partner(&row.tenant, parse(Table::M2mPartners, row)?)
            .is_none()
        {
            tracing::warn!(partner = %row.tenant, "the state file has a partner this configuration lacks; its rows are ignored");
        }
    }
    let users = stored.by_tenant(Table::M2mUsers);
    let links = stored.by_tenant(Table::M2mLinks);
    let data_requests = stored.by_tenant(Table::M2mDataRequests);
    let operations = stored.by_tenant(Table::M2mOperations);
    for partner in partners.all() {
        let slug: &str = &partner.slug;
        partner
            .restore_rows(
                documents(Table::M2mUsers, users.get(slug))?,
                documents(Table::M2mLinks, links.get(slug))?,
                documents(Table::M2mDataRequests, data_requests.get(slug))?,
                documents(Table::M2mOperations, operations.get(slug))?,
            )
            .map_err(|error| format!("partner {slug}: {error}"))?;
    }
    Ok(())
}

fn restore_leaf(app: &App, stored: &Stored) -> Result<(), String> {
    let accounts = app.store.leaf();
    let users = stored.by_tenant(Table::LeafUsers);
    let links = stored.by_tenant(Table::LeafMagicLinks);
    let names: std::collections::BTreeSet<&str> =
        users.keys().chain(links.keys()).copied().collect();
    for name in names {
        let Some(account) = accounts.account(name) else {
            tracing::warn!(account = %name, "the state file has a Leaf account this configuration lacks; its rows are ignored");
            continue;
        };
        account
            .restore(
                positioned(Table::LeafUsers, users.get(name))?,
                positioned(Table::LeafMagicLinks, links.get(name))?,
            )
            .map_err(|error| format!("Leaf account {name}: {error}"))?;
    }
    Ok(())
}

fn restore_deliveries(app: &App, stored: &Stored) -> Result<(), String> {
    for row in stored.rows(Table::WebhookDeliveries) {
        let Some(partner) = app.store.m2m().by_slug(&row.tenant) else {
            tracing::warn!(partner = %row.tenant, delivery = %row.id, "a delivery of a partner this configuration lacks is ignored");
            continue;
        };
        let delivery = parse(Table::WebhookDeliveries, row)?;
        app.webhooks
            .restore(row.id.clone(), row.position, partner, delivery)?;
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

fn parse<T: DeserializeOwned>(table: Table, row: &Row) -> Result<T, String> {
    serde_json::from_str(&row.doc)
        .map_err(|error| format!("{} row {}: {error}", table.name(), row.id))
}

/// The documents of one tenant's rows, in position order.
fn documents<T: DeserializeOwned>(
    table: Table,
    rows: Option<&Vec<&Row>>,
) -> Result<Vec<T>, String> {
    rows.into_iter()
        .flatten()
        .map(|row| parse(table, row))
        .collect()
}

/// `(id, position, document)` of one tenant's rows, in position order.
fn positioned<T: DeserializeOwned>(
    table: Table,
    rows: Option<&Vec<&Row>>,
) -> Result<Vec<(String, u64, T)>, String> {
    rows.into_iter()
        .flatten()
        .map(|row| Ok((row.id.clone(), row.position, parse(table, row)?)))
        .collect()
}
