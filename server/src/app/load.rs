//! Putting a state file's rows back into a fresh sandbox, each through the API of the piece
//! that owns it (store, clock, webhook queue), while the file's sink is still muted.
//!
//! A row that cannot be taken is *quarantined* instead of refusing the whole file: a row
//! that does not parse on its own, or every state row of a partner or Leaf account whose
//! rows do not restore together (one tenant starts empty, every other tenant is untouched).
//! [`restore`] returns what it set aside; once the file is writable, [`quarantine`] moves
//! those rows to the file's `quarantine` table and names it in a startup warning. Only the
//! clock row and the Leaf signing key, which every tenant shares, still refuse the file.

use std::sync::Arc;

use linkbox_contracts::timefmt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::Duration;

use super::App;
use crate::persist::{Row, RowRef, Rows, Stored, Table};
use crate::store::leaf::Account;
use crate::store::m2m::persisted::{LinkDoc, UserDoc};
use crate::store::m2m::{Load, LoadLinks, Partner};
use linkbox_contracts::sandbox::{OperationView, SnapshotDataRequest};

/// A row set aside at load, and why.
pub(super) struct Quarantined {
    table: Table,
    row: Row,
    reason: String,
}

/// Rows set aside so far.
#[derive(Default)]
pub(super) struct Aside(Vec<Quarantined>);

impl Aside {
    fn put_ref(&mut self, table: Table, row: RowRef<'_>, reason: impl Into<String>) {
        self.0.push(Quarantined {
            table,
            row: row.to_row(),
            reason: reason.into(),
        });
    }

    fn put(&mut self, table: Table, row: &Row, reason: impl Into<String>) {
        self.put_ref(table, row.as_ref(), reason);
    }

    /// Sets aside every row of `groups`, all for one reason.
    fn put_all(&mut self, groups: &[(Table, Option<&Vec<&Row>>)], reason: &str) {
        for (table, rows) in groups {
            for row in rows.iter().copied().flatten() {
                self.put(*table, row, reason);
            }
        }
    }

    /// The parsed documents of `rows`; a row that does not parse is set aside.
    fn documents<'r, T: Deserialize<'r>>(
        &mut self,
        table: Table,
        rows: Option<&Vec<&'r Row>>,
    ) -> Vec<T> {
        let mut documents = Vec::new();
        for row in rows.into_iter().flatten() {
            match parse(table, row) {
                Ok(document) => documents.push(document),
                Err(reason) => self.put(table, row, reason),
            }
        }
        documents
    }

    /// `(id, position, document)` of `rows`; a row that does not parse is set aside.
    fn positioned<T: DeserializeOwned>(
        &mut self,
        table: Table,
        rows: Option<&Vec<&Row>>,
    ) -> Vec<(String, u64, T)> {
        let mut documents = Vec::new();
        for row in rows.into_iter().flatten() {
            match parse(table, row) {
                Ok(document) => documents.push((row.id.clone(), row.position, document)),
                Err(reason) => self.put(table, row, reason),
            }
        }
        documents
    }
}

/// Rows given back at other positions than the ones they had (a row set aside left a gap
/// in a partner's creation order, a delivery was out of queue order): a file keys rows by
/// position, so these are written again at theirs ([`rewrite_moved`]) once it is writable.
#[derive(Default)]
pub(super) struct Moved {
    partners: Vec<Arc<Partner>>,
    /// `(tenant, id, position in the file)` of each delivery.
    deliveries: Vec<(Arc<str>, String, u64)>,
}

/// Writes the rows `restore` gave back at other positions again, at theirs. Runs once the
/// file is writable, before anything else can change them.
pub(super) fn rewrite_moved(app: &App, moved: Moved) {
    for partner in &moved.partners {
        tracing::info!(partner = %partner.slug, "state file rows renumbered in creation order");
        partner.rewrite();
    }
    for (tenant, id, from) in &moved.deliveries {
        app.webhooks.rewrite(tenant, id, *from);
    }
}

/// Moves the rows `restore` set aside into the file's `quarantine` table, with a warning
/// naming it. Runs once the file is writable.
pub(super) fn quarantine(app: &App, aside: Aside) {
    if aside.0.is_empty() {
        return;
    }
    for item in &aside.0 {
        tracing::warn!(table = item.table.name(), tenant = %item.row.tenant, id = %item.row.id, reason = %item.reason, "state file row quarantined");
    }
    let count = aside.0.len();
    app.sink.record(|changes| {
        for item in &aside.0 {
            changes.quarantine(item.table, &item.row, item.reason.clone());
        }
    });
    tracing::warn!(
        rows = count,
        "the state file had {count} unusable row(s); they were moved to its `quarantine` table \
         (source, tenant, id, position, doc, reason) and the sandbox started without them"
    );
}
use crate::store::leaf::persisted::SIGNING_SECRET;

/// Logs the rows a shared database's load left out (they stay in the database).
pub(super) fn warn_aside(aside: &Aside) {
    for item in &aside.0 {
        tracing::warn!(table = item.table.name(), tenant = %item.row.tenant, id = %item.row.id, reason = %item.reason, "a database row could not be restored; it is left out of this replica's copy");
    }
}

/// Puts back everything `stored` holds, and the partners' state from `rows` (a state
/// file's, read as needed, or `stored` again).
pub(super) fn restore(
    app: &App,
    stored: &Stored,
    rows: &dyn Rows,
) -> Result<(Aside, Moved), String> {
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
    let mut aside = Aside::default();
    let mut moved = Moved::default();
    restore_m2m(app, stored, rows, &mut aside, &mut moved)?;
    restore_leaf(app, stored, &mut aside);
    restore_deliveries(app, stored, &mut aside, &mut moved);
    Ok((aside, moved))
}

/// Replaces the journal with the rows of a shared database's `journal` table, each entry
/// numbered by its row: the whole journal, or one tenant's ring with its rows.
pub(super) fn reload_journal(app: &App, tenant: Option<&str>, rows: Vec<(i64, String)>) {
    let mut entries = Vec::with_capacity(rows.len());
    for (id, doc) in rows {
        match serde_json::from_str::<linkbox_contracts::sandbox::JournalEntry>(&doc) {
            Ok(mut entry) => {
                entry.seq = u64::try_from(id).unwrap_or_default();
                entries.push(entry);
            }
            Err(error) => tracing::warn!(row = id, %error, "a journal row could not be restored"),
        }
    }
    match tenant {
        Some(label) => app.journal.restore_tenant(label, entries),
        None => app.journal.restore(entries),
    }
}

/// Replaces the fault table with the rows of a shared database's `faults` table.
pub(super) fn reload_faults(app: &App, rows: &[Row]) {
    let mut faults = Vec::new();
    for row in rows {
        match parse(Table::Faults, row) {
            Ok(view) => faults.push((row.position, view)),
            Err(reason) => {
                tracing::warn!(fault = %row.id, %reason, "a fault row could not be restored")
            }
        }
    }
    app.faults.restore(faults);
}

fn restore_m2m(
    app: &App,
    stored: &Stored,
    rows: &dyn Rows,
    aside: &mut Aside,
    moved: &mut Moved,
) -> Result<(), String> {
    let partners = app.store.m2m();
    for row in stored.rows(Table::M2mPartners) {
        let settings = match parse(Table::M2mPartners, row) {
            Ok(settings) => settings,
            Err(reason) => {
                aside.put(Table::M2mPartners, row, reason);
                continue;
            }
        };
        if partners.restore_partner(&row.tenant, settings).is_none() {
            tracing::warn!(partner = %row.tenant, "the state file has a partner this configuration lacks; its rows are ignored");
        }
    }
    for partner in partners.all() {
        if restore_partner_rows(&partner, rows, aside)? {
            moved.partners.push(partner);
        }
    }
    Ok(())
}

/// Partner `slug`'s rows of users, links, data requests and operations in `stored`.
fn partner_rows<'a>(stored: &'a Stored, slug: &str) -> [Option<Vec<&'a Row>>; 4] {
    Table::M2M_STATE.map(|table| stored.by_tenant(table).remove(slug))
}

/// Puts back one partner's users, links, data requests and operations, each row parsed
/// and made compact as it is read (a row that does not parse is set aside), or, when they
/// do not restore together, starts the partner empty with every one set aside. `Err` only
/// when the rows cannot be read; `Ok(true)` when the rows are to be written again at the
/// positions they now have ([`Load::finish`]).
///
/// The links are read on a second thread while this one reads the users: the two are most
/// of a large file, and each row is parsed on its own.
fn restore_partner_rows(
    partner: &Partner,
    rows: &dyn Rows,
    aside: &mut Aside,
) -> Result<bool, String> {
    let slug: &str = &partner.slug;
    let mut load = partner.load();
    let (users, links) = std::thread::scope(|scope| {
        // Once this thread has the users in, the links' thread finds each link's user.
        let (ready, users_in) = std::sync::mpsc::channel::<&Load<'_>>();
        let links = scope.spawn(move || {
            let mut read = read_links(partner, rows)?;
            if let Ok(load) = users_in.recv()
                && read.failed.is_none()
            {
                keep(load.resolve(&mut read.links), &mut read.failed);
            }
            Ok::<_, String>(read)
        });
        let users = read_users(&mut load, rows, aside);
        if matches!(&users, Ok(read) if read.failed.is_none()) {
            // The links' thread is gone only if it panicked, which `join` passes on.
            let _ = ready.send(&load);
        }
        drop(ready);
        // A panic on the links' thread is a bug; it is passed on, not turned into data.
        let links = links
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (users, links)
    });
    let users = users?;
    let links = links?;
    aside.0.extend(links.aside.0);
    let loaded = match users.failed.or(links.failed) {
        Some(error) => Err(error),
        None => load.finish(links.links, users.data_requests, users.operations),
    };
    let error = match loaded {
        Ok(moved) => return Ok(moved),
        Err(error) => error,
    };
    partner.reset();
    let reason = format!("partner {slug}: {error}");
    // Rows already set aside (they did not parse) keep their own reason.
    let already: std::collections::HashSet<(Table, String)> = aside
        .0
        .iter()
        .filter(|item| item.row.tenant == slug)
        .map(|item| (item.table, item.row.id.clone()))
        .collect();
    for table in Table::M2M_STATE {
        rows.each(table, slug, &mut |row| {
            if !already.contains(&(table, row.id.to_owned())) {
                aside.put_ref(table, row, reason.clone());
            }
            true
        })?;
    }
    Ok(false)
}

/// What the users' thread read: the users went into the [`Load`]; a partner's data
/// requests and operations, few beside its links, are read there too.
struct UsersRead {
    failed: Option<String>,
    data_requests: Vec<SnapshotDataRequest>,
    operations: Vec<OperationView>,
}

/// Takes a partner's users into `load` (their creation order made), then reads its data
/// requests and operations. A row that does not parse is set aside.
fn read_users(
    load: &mut Load<'_>,
    rows: &dyn Rows,
    aside: &mut Aside,
) -> Result<UsersRead, String> {
    let slug = load.slug().to_owned();
    let mut failed = None;
    rows.each(Table::M2mUsers, &slug, &mut |row| {
        match parse_ref::<UserDoc>(Table::M2mUsers, row) {
            Ok(doc) => keep(load.user(row.position, doc), &mut failed),
            Err(reason) => aside.put_ref(Table::M2mUsers, row, reason),
        }
        failed.is_none()
    })?;
    if failed.is_none() {
        keep(load.add_users(), &mut failed);
    }
    Ok(UsersRead {
        failed,
        data_requests: owned_documents(rows, Table::M2mDataRequests, &slug, aside)?,
        operations: owned_documents(rows, Table::M2mOperations, &slug, aside)?,
    })
}

/// What the links' thread read.
struct LinksRead<'p> {
    links: LoadLinks<'p>,
    aside: Aside,
    failed: Option<String>,
}

/// A partner's links, the rows set aside among them, and the first error.
fn read_links<'p>(partner: &'p Partner, rows: &dyn Rows) -> Result<LinksRead<'p>, String> {
    let mut links = partner.load_links();
    let mut aside = Aside::default();
    let mut failed = None;
    rows.each(Table::M2mLinks, &partner.slug, &mut |row| {
        match parse_ref::<LinkDoc>(Table::M2mLinks, row) {
            Ok(doc) => keep(links.link(row.position, doc), &mut failed),
            Err(reason) => aside.put_ref(Table::M2mLinks, row, reason),
        }
        failed.is_none()
    })?;
    Ok(LinksRead {
        links,
        aside,
        failed,
    })
}

/// Keeps the first error of a partner's rows.
fn keep(result: Result<(), String>, failed: &mut Option<String>) {
    if let Err(error) = result {
        failed.get_or_insert(error);
    }
}

/// The parsed documents of `tenant`'s rows of `table`; a row that does not parse is set
/// aside.
fn owned_documents<T: DeserializeOwned>(
    rows: &dyn Rows,
    table: Table,
    tenant: &str,
    aside: &mut Aside,
) -> Result<Vec<T>, String> {
    let mut documents = Vec::new();
    rows.each(table, tenant, &mut |row| {
        match parse_ref(table, row) {
            Ok(document) => documents.push(document),
            Err(reason) => aside.put_ref(table, row, reason),
        }
        true
    })?;
    Ok(documents)
}

/// Puts back one Leaf account's users and magic links, or, when they do not restore
/// together, starts the account empty with every one set aside.
fn restore_account_rows(
    account: &Account,
    users: Option<&Vec<&Row>>,
    links: Option<&Vec<&Row>>,
    aside: &mut Aside,
) {
    let restored = account.restore(
        aside.positioned(Table::LeafUsers, users),
        aside.positioned(Table::LeafMagicLinks, links),
    );
    if let Err(error) = restored {
        account.reset();
        aside.put_all(
            &[(Table::LeafUsers, users), (Table::LeafMagicLinks, links)],
            &format!("Leaf account {}: {error}", account.username),
        );
    }
}

fn restore_leaf(app: &App, stored: &Stored, aside: &mut Aside) {
    let accounts = app.store.leaf();
    let users = stored.by_tenant(Table::LeafUsers);
    let links = stored.by_tenant(Table::LeafMagicLinks);
    // An account row alone names an account too (a shared database's: its only write
    // may be a fault).
    let made = stored.by_tenant(Table::LeafAccounts);
    let names: std::collections::BTreeSet<&str> = users
        .keys()
        .chain(links.keys())
        .chain(made.keys())
        .copied()
        .collect();
    for name in names {
        let Some(account) = accounts.account(name) else {
            tracing::warn!(account = %name, "the state file has a Leaf account this configuration lacks; its rows are ignored");
            continue;
        };
        restore_account_rows(&account, users.get(name), links.get(name), aside);
    }
}

fn restore_deliveries(app: &App, stored: &Stored, aside: &mut Aside, moved: &mut Moved) {
    for row in stored.rows(Table::WebhookDeliveries) {
        let Some(partner) = app.store.m2m().by_slug(&row.tenant) else {
            tracing::warn!(partner = %row.tenant, delivery = %row.id, "a delivery of a partner this configuration lacks is ignored");
            continue;
        };
        let restored = parse(Table::WebhookDeliveries, row).and_then(|delivery| {
            app.webhooks
                .restore(row.id.clone(), row.position, partner, delivery)
        });
        match restored {
            Ok(seq) if seq != row.position => {
                moved.deliveries.push((
                    Arc::from(row.tenant.as_str()),
                    row.id.clone(),
                    row.position,
                ));
            }
            Ok(_) => {}
            Err(reason) => aside.put(Table::WebhookDeliveries, row, reason),
        }
    }
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

fn parse<'r, T: Deserialize<'r>>(table: Table, row: &'r Row) -> Result<T, String> {
    parse_ref(table, row.as_ref())
}

fn parse_ref<'r, T: Deserialize<'r>>(table: Table, row: RowRef<'r>) -> Result<T, String> {
    serde_json::from_str(row.doc)
        .map_err(|error| format!("{} row {}: {error}", table.name(), row.id))
}

/// Replaces this process's copy of tenant `name` (a partner's slug, or `leaf:<username>`)
/// with its rows read back from the shared database. A row that does not restore is logged
/// and left out (the database keeps it); a tenant whose rows do not restore together starts
/// empty here, as at load.
pub(super) fn reload_tenant(app: &App, name: &str, stored: &Stored) {
    let mut aside = Aside::default();
    match name.strip_prefix("leaf:") {
        Some(username) => reload_leaf(app, username, stored, &mut aside),
        None => reload_partner(app, name, stored, &mut aside),
    }
    warn_aside(&aside);
}

fn reload_partner(app: &App, slug: &str, stored: &Stored, aside: &mut Aside) {
    let partners = app.store.m2m();
    let partner = match stored.rows(Table::M2mPartners).first() {
        Some(row) => match parse(Table::M2mPartners, row) {
            Ok(settings) => partners.restore_partner(slug, settings),
            Err(reason) => {
                aside.put(Table::M2mPartners, row, reason);
                partners.by_slug(slug)
            }
        },
        // No partner row: the database has no such partner (another replica's admin
        // reset forgot it, or its first write here was rolled back). A copy kept here
        // would serve what no other replica sees, count against `--max-tenants`, and write
        // rows no partner row names; its next write makes it again, row included.
        None if partners.drop_open(slug) => {
            app.webhooks.forget_tenant(slug);
            return;
        }
        None => partners.by_slug(slug),
    };
    let Some(partner) = partner else {
        return;
    };
    // Rows already read cannot fail to be read.
    if let Err(error) = restore_partner_rows(&partner, stored, aside) {
        tracing::warn!(partner = %slug, %error, "a partner's rows could not be read back");
    }
    app.webhooks.forget_tenant(slug);
    for row in stored.rows(Table::WebhookDeliveries) {
        let restored = parse(Table::WebhookDeliveries, row).and_then(|delivery| {
            app.webhooks
                .restore(row.id.clone(), row.position, partner.clone(), delivery)
        });
        if let Err(reason) = restored {
            aside.put(Table::WebhookDeliveries, row, reason);
        }
    }
}

fn reload_leaf(app: &App, username: &str, stored: &Stored, aside: &mut Aside) {
    let single = |table| stored.by_tenant(table).remove(username);
    let (users, links) = (single(Table::LeafUsers), single(Table::LeafMagicLinks));
    // Nothing of the account in the database (as [`reload_partner`] without a partner
    // row): an open-mode account is dropped here too, not kept empty. Its account row alone
    // keeps it: a fault may be all it wrote.
    if users.is_none()
        && links.is_none()
        && single(Table::LeafAccounts).is_none()
        && app.store.leaf().drop_open(username)
    {
        return;
    }
    let Some(account) = app.store.leaf().account(username) else {
        return;
    };
    account.reset();
    restore_account_rows(&account, users.as_ref(), links.as_ref(), aside);
}

/// Puts the rows of tenant `name` that a shared database changed since this process's copy
/// onto the copy, each replacing the one with its id or joining. `Err` when they do not fit
/// the copy (it may then be half changed: read the tenant back whole).
pub(super) fn apply_tenant(app: &App, name: &str, stored: &Stored) -> Result<(), String> {
    let mut aside = Aside::default();
    let applied = match name.strip_prefix("leaf:") {
        Some(username) => {
            let account = app
                .store
                .leaf()
                .account(username)
                .ok_or_else(|| format!("no Leaf account {username}"))?;
            let single = |table| stored.by_tenant(table).remove(username);
            let (users, links) = (single(Table::LeafUsers), single(Table::LeafMagicLinks));
            account.apply_rows(
                aside.positioned(Table::LeafUsers, users.as_ref()),
                aside.positioned(Table::LeafMagicLinks, links.as_ref()),
            )
        }
        None => apply_partner(app, name, stored, &mut aside),
    };
    warn_aside(&aside);
    applied
}

fn apply_partner(app: &App, slug: &str, stored: &Stored, aside: &mut Aside) -> Result<(), String> {
    let partners = app.store.m2m();
    if let Some(row) = stored.rows(Table::M2mPartners).first() {
        partners.restore_partner(slug, parse(Table::M2mPartners, row)?);
    }
    let partner = partners
        .by_slug(slug)
        .ok_or_else(|| format!("no partner {slug}"))?;
    let [users, links, data_requests, operations] = partner_rows(stored, slug);
    partner.apply_rows(
        aside.documents(Table::M2mUsers, users.as_ref()),
        aside.documents(Table::M2mLinks, links.as_ref()),
        aside.documents(Table::M2mDataRequests, data_requests.as_ref()),
        aside.documents(Table::M2mOperations, operations.as_ref()),
    )?;
    for row in stored.rows(Table::WebhookDeliveries) {
        parse(Table::WebhookDeliveries, row).and_then(|delivery| {
            app.webhooks
                .restore(row.id.clone(), row.position, partner.clone(), delivery)
        })?;
    }
    Ok(())
}
