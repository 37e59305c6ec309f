//! Injected faults: the table of faults in force, each matching by method and path
//! ([`PathPattern`]), firing with its `probability` (default 1) and at most `times`
//! times (then it is removed), then delaying (`delayMs`, real time), answering
//! `status`/`body` instead of the real handler, or dropping the connection. Faults set by a
//! partner touch only requests made with that partner's key; admin faults touch every
//! request. `/_sandbox/faults` manages the table; the serving layer strikes it.
//!
//! Each tenant's faults are kept apart from the others' (an index by tenant), so a request
//! checks only the admin faults and its own tenant's: one tenant's thousands of faults cost
//! another tenant nothing. A tenant may have at most [`MAX_FAULTS_PER_TENANT`] in force,
//! the admin [`MAX_ADMIN_FAULTS`]. [design]
//!
//! In a sandbox shared by replicas (`--state postgres://…`) every change of the table —
//! a fault added, cleared, or struck (its hits and remaining count) — is recorded through
//! the [`Sink`] as a row of the database's `faults` table, and each replica reads the table
//! back ([`Faults::restore`]) when another has changed it, so a fault injected through one
//! replica fires on every one, `times` counted across them all.
//!
//! # Path patterns
//! A pattern matches segment by segment: a literal segment matches itself, `*` matches
//! exactly one segment anywhere (`/partner/links/*/revoke`), and a trailing `/**` matches
//! the rest of the path, nothing included (`/partner/**` matches `/partner` and everything
//! under it). The older prefix form stays where it is unambiguous: a last segment made of
//! text and one trailing `*` (`/partner/li*`) matches every path starting with that text.
//! A bare `/*` segment always means one segment: `/partner/*` no longer matches
//! `/partner/links/x/revoke`; write `/partner/**` for that. Any other use of `*` (`a*b`,
//! `**` before the end, `***`) is refused with the pattern named, never silently unmatched,
//! and so is a query string or fragment (`/partner/links?limit=1`): a request's path is
//! matched without its query. Which paths a fault may reach at all (never the control
//! API's; a tenant's, only requests carrying credentials) is the control API's to check,
//! with [`PathPattern::confined_to`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use linkbox_contracts::sandbox::{FaultRequest, FaultView};
use parking_lot::Mutex;
use serde_json::Value;

use crate::persist::{Sink, Table};
use crate::store::ids;

/// Longest delay a fault may add.
const MAX_DELAY_MS: u64 = FaultRequest::DELAY_MS.max.unsigned_abs();
/// The largest body a fault may answer with, as JSON: a vendor's error or a page of
/// results, not a store of its own (a tenant's hundred faults hold at most 6.4 MiB). [design]
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest path pattern and method a fault may name. [design]
pub const MAX_PATH_BYTES: usize = 2048;
const MAX_METHOD_BYTES: usize = 32;

/// Faults one tenant may have in force at once.
pub const MAX_FAULTS_PER_TENANT: usize = 100;
/// What the faults of all tenants together may weigh ([`Fault::weight`]): a tenant's
/// hundred faults weigh at most 6.6 MiB, so keys made up by the hundred would otherwise
/// grow the table without end (the storage budget, `--max-stored-mib`, counts what the
/// vendor APIs store, not faults). Within its last eighth, only a tenant holding less than
/// its share (this over one more than the tenants holding faults) may add one, as the
/// storage budget's reserve does; the admin's faults are not counted. [design]
pub const MAX_TENANT_FAULT_BYTES: usize = 64 * 1024 * 1024;
/// What a fault weighs besides its body and path: its other fields, its place in the
/// table. A fault of a few bytes still counts this, so the cap bounds their number too.
const FAULT_OVERHEAD_BYTES: usize = 512;
/// Faults the admin may have in force at once.
pub const MAX_ADMIN_FAULTS: usize = 1_000;

/// Why a fault was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultRefused {
    /// A field is wrong, or the tenant has its most faults in force: the message says which.
    #[error("{0}")]
    Invalid(String),
    /// All tenants' faults together weigh what the sandbox keeps for them
    /// ([`MAX_TENANT_FAULT_BYTES`]), or this tenant holds its share of the rest.
    #[error("{0}")]
    Full(String),
}

impl From<String> for FaultRefused {
    fn from(message: String) -> FaultRefused {
        FaultRefused::Invalid(message)
    }
}

/// The faults in force: cheap to clone.
#[derive(Clone, Default)]
pub struct Faults {
    list: Arc<Mutex<List>>,
    /// How many faults are in force, set under `list`'s lock by every change to it
    /// ([`Faults::edit`]). Every
    /// vendor request asks [`Faults::strike`], and nearly always there is none: then the
    /// answer is this one load, not the lock both workers contend for and a look-up of the
    /// tenant's list.
    armed: Arc<AtomicUsize>,
    /// A shared database's sink; off for one process, whose faults live in memory only.
    sink: Sink,
}

/// The tenant column of an admin fault's row.
const ADMIN: &str = "";

/// The admin's faults and each tenant's, every list in the order the faults were added.
#[derive(Default)]
struct List {
    admin: Vec<Fault>,
    by_tenant: HashMap<Arc<str>, Vec<Fault>>,
    next_seq: u64,
}

/// The fault table locked for a change ([`Faults::edit`]): on its way out it stores how
/// many faults the table holds, before the lock is let go.
struct Editing<'a> {
    table: parking_lot::MutexGuard<'a, List>,
    armed: &'a AtomicUsize,
}

impl std::ops::Deref for Editing<'_> {
    type Target = List;

    fn deref(&self) -> &List {
        &self.table
    }
}

impl std::ops::DerefMut for Editing<'_> {
    fn deref_mut(&mut self) -> &mut List {
        &mut self.table
    }
}

impl Drop for Editing<'_> {
    fn drop(&mut self) {
        // Runs before the guard field is dropped: the count is stored under the lock.
        self.armed.store(self.table.len(), Ordering::Release);
    }
}

impl List {
    /// How many faults are in force, the admin's and every tenant's.
    fn len(&self) -> usize {
        self.admin.len() + self.by_tenant.values().map(Vec::len).sum::<usize>()
    }

    fn of(&mut self, tenant: Option<&Arc<str>>) -> &mut Vec<Fault> {
        match tenant {
            None => &mut self.admin,
            Some(tenant) => self.by_tenant.entry(tenant.clone()).or_default(),
        }
    }

    /// Whether a fault of `weight` fits for `tenant` (`None`: the admin's): its count within
    /// the most one may hold, and a tenant's within [`List::admits`].
    fn room(&self, tenant: Option<&str>, weight: usize) -> Result<(), FaultRefused> {
        let (count, max) = match tenant {
            None => (self.admin.len(), MAX_ADMIN_FAULTS),
            Some(slug) => (
                self.by_tenant.get(slug).map_or(0, Vec::len),
                MAX_FAULTS_PER_TENANT,
            ),
        };
        if count >= max {
            return Err(FaultRefused::Invalid(format!(
                "At most {max} faults may be in force at once; remove some with DELETE /_sandbox/faults"
            )));
        }
        match tenant {
            Some(slug) => self.admits(slug, weight),
            None => Ok(()),
        }
    }

    /// Whether `tenant` may add a fault of `weight`: all tenants' faults together stay
    /// within [`MAX_TENANT_FAULT_BYTES`], and within its last eighth only a tenant holding
    /// less than its share may add one. Counted over the table, which the cap keeps to
    /// tens of thousands of faults: faults are added by hand, seldom.
    fn admits(&self, tenant: &str, weight: usize) -> Result<(), FaultRefused> {
        let held: usize = self
            .by_tenant
            .get(tenant)
            .map_or(0, |faults| faults.iter().map(|fault| fault.weight).sum());
        let all: usize = self
            .by_tenant
            .values()
            .flatten()
            .map(|fault| fault.weight)
            .sum();
        let others = self
            .by_tenant
            .iter()
            .filter(|(holder, faults)| &***holder != tenant && !faults.is_empty())
            .count();
        // Its share counts one tenant more than hold faults, as if a newcomer were coming:
        // a tenant alone still leaves the last eighth to the next; and no tenant holds more
        // than a slice of that eighth ([`crate::store::quota::reserve_share`]).
        let holders = others as u64 + 1;
        let share = crate::store::quota::reserve_share(MAX_TENANT_FAULT_BYTES as u64, holders);
        let after = all.saturating_add(weight);
        let mib = MAX_TENANT_FAULT_BYTES >> 20;
        if after > MAX_TENANT_FAULT_BYTES {
            return Err(FaultRefused::Full(format!(
                "The faults of all tenants together would weigh more than the {mib} MiB this \
                 sandbox keeps for them; nothing was added. Remove faults no longer needed with \
                 DELETE /_sandbox/faults"
            )));
        }
        if !crate::store::quota::reserve_allows(
            MAX_TENANT_FAULT_BYTES as u64,
            after as u64,
            held.saturating_add(weight) as u64,
            holders,
        ) {
            return Err(FaultRefused::Full(format!(
                "The faults of all tenants together weigh nearly the {mib} MiB this sandbox \
                 keeps for them, and the rest is kept for tenants holding less than their share \
                 ({} KiB each); this tenant's weigh {} KiB. Nothing was added. Remove faults no \
                 longer needed with DELETE /_sandbox/faults",
                share >> 10,
                held >> 10
            )));
        }
        Ok(())
    }

    /// Every fault `tenant` set (`None`: all), in the order they were added.
    fn owned(&self, tenant: Option<&str>) -> Vec<&Fault> {
        let mut faults: Vec<&Fault> = match tenant {
            Some(tenant) => self.by_tenant.get(tenant).into_iter().flatten().collect(),
            None => self
                .admin
                .iter()
                .chain(self.by_tenant.values().flatten())
                .collect(),
        };
        faults.sort_by_key(|fault| fault.seq);
        faults
    }
}

#[derive(Debug, Clone)]
struct Fault {
    id: String,
    method: Option<Method>,
    path: Option<PathPattern>,
    status: Option<StatusCode>,
    body: Option<Value>,
    delay_ms: Option<u64>,
    drop: bool,
    probability: f64,
    remaining: Option<u32>,
    hits: u64,
    tenant: Option<Arc<str>>,
    /// Order of addition, across all lists.
    seq: u64,
    /// What it weighs against [`MAX_TENANT_FAULT_BYTES`]: its body as JSON, its path
    /// pattern and [`FAULT_OVERHEAD_BYTES`].
    weight: usize,
}

/// What a fault does to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Strike {
    pub delay: Option<Duration>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Let the real handler answer.
    Pass,
    Drop,
    Answer {
        status: StatusCode,
        body: Option<Value>,
    },
}

/// Whose faults besides the admin's may strike a request ([`Faults::may_strike`]).
#[derive(Clone, Copy)]
enum Whose<'a> {
    /// Its tenant's (none: a request of no tenant).
    Of(Option<&'a str>),
    /// Any tenant's: a request whose tenant is not known yet.
    Anyone,
}

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Recording every change through `sink` (a shared database's).
    pub fn with_sink(sink: Sink) -> Faults {
        Faults {
            sink,
            ..Faults::default()
        }
    }

    fn put(&self, fault: &Fault) {
        self.sink.record(|changes| {
            let tenant: Arc<str> = fault.tenant.clone().unwrap_or_else(|| ADMIN.into());
            changes.put(
                Table::Faults,
                &tenant,
                fault.id.clone(),
                fault.seq,
                &view(fault),
            );
        });
    }

    /// Whether a fault may strike a request of `tenant` with this method and path: one of
    /// the admin's or the tenant's whose method and path match it, whatever its
    /// probability. A fault on one path is no reason to hold up requests on others (in a
    /// shared database, a request a fault may strike locks the fault table).
    pub fn may_strike(&self, method: &Method, path: &str, tenant: Option<&str>) -> bool {
        self.may_strike_whose(method, path, Whose::Of(tenant))
    }

    /// As [`Faults::may_strike`], for a request whose tenant is not known yet (a path of no
    /// tenant, which any tenant's credentials may still reach): the admin's faults and
    /// every tenant's.
    pub fn may_strike_anyone(&self, method: &Method, path: &str) -> bool {
        self.may_strike_whose(method, path, Whose::Anyone)
    }

    fn may_strike_whose(&self, method: &Method, path: &str, whose: Whose<'_>) -> bool {
        if self.armed.load(Ordering::Acquire) == 0 {
            return false;
        }
        let list = self.list.lock();
        let matches = |fault: &Fault| {
            fault.method.as_ref().is_none_or(|m| m == method)
                && fault.path.as_ref().is_none_or(|p| p.matches(path))
        };
        list.admin.iter().any(matches)
            || match whose {
                Whose::Of(tenant) => tenant
                    .and_then(|tenant| list.by_tenant.get(tenant))
                    .is_some_and(|faults| faults.iter().any(matches)),
                Whose::Anyone => list.by_tenant.values().flatten().any(matches),
            }
    }

    /// Replaces the table with faults read back from a shared database: `(position, view)`
    /// in the order they were added. A fault that no longer parses is left out, and named.
    pub fn restore(&self, rows: Vec<(u64, FaultView)>) {
        let mut list = List::default();
        for (seq, row) in rows {
            let id = row.id.clone();
            match Fault::from_view(seq, row) {
                Ok(fault) => {
                    list.next_seq = list.next_seq.max(seq);
                    list.of(fault.tenant.clone().as_ref()).push(fault);
                }
                Err(reason) => {
                    tracing::warn!(fault = %id, %reason, "a fault row could not be restored")
                }
            }
        }
        *self.edit() = list;
    }

    /// The table, locked for a change. Every change goes through here, so the count
    /// [`Faults::strike`] reads first is set from what the table holds when the change is
    /// done, still under the lock.
    fn edit(&self) -> Editing<'_> {
        Editing {
            table: self.list.lock(),
            armed: &self.armed,
        }
    }

    /// Adds a validated fault for `tenant` (`None`: every request); returns its view, or
    /// a message naming the field that is wrong.
    pub fn add(
        &self,
        request: FaultRequest,
        tenant: Option<Arc<str>>,
    ) -> Result<FaultView, FaultRefused> {
        self.add_checked(check(request)?, tenant)
    }

    /// Whether the table has room for `checked`, a fault of `tenant` (`None`: the admin's),
    /// without adding it: asked before a new tenant is made for it, so that a fault refused
    /// for room makes none (nor takes a `--max-tenants` place).
    pub fn has_room(&self, checked: &Checked, tenant: Option<&str>) -> Result<(), FaultRefused> {
        let request = &checked.request;
        self.edit().room(
            tenant,
            weight(request.body.as_ref(), request.path.as_deref()),
        )
    }

    /// [`Faults::add`] of a fault [`check`] read: a tenant's first write, made only once
    /// the request is known to be one linkbox takes.
    pub fn add_checked(
        &self,
        checked: Checked,
        tenant: Option<Arc<str>>,
    ) -> Result<FaultView, FaultRefused> {
        let Checked {
            request,
            method,
            path,
            status,
            probability,
            drop,
        } = checked;
        let mut table = self.edit();
        let weight = weight(request.body.as_ref(), request.path.as_deref());
        table.room(tenant.as_deref(), weight)?;
        table.next_seq += 1;
        let seq = table.next_seq;
        let fault = Fault {
            seq,
            id: format!("flt_{}", ids::fmt_hex48(ids::hex48())),
            method,
            path,
            status,
            body: request.body,
            delay_ms: request.delay_ms,
            drop,
            probability,
            remaining: request.times,
            hits: 0,
            tenant,
            weight,
        };
        let mut fault = fault;
        while table
            .admin
            .iter()
            .chain(table.by_tenant.values().flatten())
            .any(|kept| kept.id == fault.id)
        {
            fault.id = format!("flt_{}", ids::fmt_hex48(ids::hex48()));
        }
        let view = view(&fault);
        self.put(&fault);
        table.of(fault.tenant.clone().as_ref()).push(fault);
        Ok(view)
    }

    /// The faults `tenant` set (`None`: all).
    pub fn list(&self, tenant: Option<&str>) -> Vec<FaultView> {
        self.list
            .lock()
            .owned(tenant)
            .into_iter()
            .map(view)
            .collect()
    }

    /// Removes the faults `setter` set: a tenant's, or (`None`) the admin's own, leaving
    /// every tenant's in place (`DELETE /_sandbox/faults`: "every fault the caller set").
    pub fn clear_set_by(&self, setter: Option<&str>) {
        if setter.is_some() {
            return self.clear(setter);
        }
        let mut table = self.edit();
        table.admin.clear();
        self.sink
            .record(|changes| changes.clear_tenant(Table::Faults, &ADMIN.into()));
    }

    /// Removes the faults `tenant` set (`None`: all, the admin's and every tenant's, as an
    /// admin reset does).
    pub fn clear(&self, tenant: Option<&str>) {
        let mut table = self.edit();
        match tenant {
            Some(tenant) => {
                table.by_tenant.remove(tenant);
                self.sink
                    .record(|changes| changes.clear_tenant(Table::Faults, &tenant.into()));
            }
            None => {
                *table = List::default();
                self.sink
                    .record(|changes| changes.clear_table(Table::Faults));
            }
        }
    }

    /// What the first matching fault does to this request, counting it; `None` when no fault
    /// fires.
    pub fn strike(&self, method: &Method, path: &str, tenant: Option<&str>) -> Option<Strike> {
        if self.armed.load(Ordering::Acquire) == 0 {
            return None;
        }
        if self.sink.database().is_some() && !crate::persist::shared::faults_held() {
            return None;
        }
        let mut table = self.edit();
        let matches = |fault: &Fault| {
            fault.method.as_ref().is_none_or(|m| m == method)
                && fault.path.as_ref().is_none_or(|p| p.matches(path))
                && fires(fault.probability)
        };
        // The first match among the admin's faults and among the tenant's; of those two,
        // the one added first.
        let admin = table.admin.iter().position(matches);
        let own = tenant
            .and_then(|tenant| table.by_tenant.get(tenant))
            .and_then(|faults| faults.iter().position(matches));
        let admin_first = match (admin, own, tenant) {
            (Some(a), Some(o), Some(tenant)) => {
                table.admin[a].seq < table.by_tenant.get(tenant).map_or(u64::MAX, |f| f[o].seq)
            }
            (Some(_), _, _) => true,
            (None, Some(_), _) => false,
            (None, None, _) => return None,
        };
        let (list, index) = match (admin_first, tenant) {
            (true, _) => (&mut table.admin, admin?),
            (false, Some(tenant)) => (table.by_tenant.get_mut(tenant)?, own?),
            (false, None) => return None,
        };
        let fault = &mut list[index];
        fault.hits += 1;
        let strike = Strike {
            delay: fault.delay_ms.map(Duration::from_millis),
            action: if fault.drop {
                Action::Drop
            } else if fault.status.is_some() || fault.body.is_some() {
                Action::Answer {
                    status: fault.status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body: fault.body.clone(),
                }
            } else {
                Action::Pass
            },
        };
        let mut spent = false;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
            spent = *remaining == 0;
        }
        if spent {
            let fault = list.remove(index);
            self.sink.record(|changes| {
                let tenant: Arc<str> = fault.tenant.clone().unwrap_or_else(|| ADMIN.into());
                changes.delete(Table::Faults, &tenant, fault.id.clone(), fault.seq);
            });
        } else {
            self.put(&list[index]);
        }
        Some(strike)
    }
}

impl Fault {
    /// A fault as a shared database keeps it ([`view`]), checked again.
    fn from_view(seq: u64, row: FaultView) -> Result<Fault, String> {
        let weight = weight(row.body.as_ref(), row.path.as_deref());
        Ok(Fault {
            id: row.id,
            method: row
                .method
                .map(|method| {
                    Method::from_bytes(method.as_bytes()).map_err(|error| error.to_string())
                })
                .transpose()?,
            path: row.path.as_deref().map(PathPattern::parse).transpose()?,
            status: row
                .status
                .map(|status| StatusCode::from_u16(status).map_err(|error| error.to_string()))
                .transpose()?,
            body: row.body,
            delay_ms: row.delay_ms,
            drop: row.drop,
            probability: row.probability,
            remaining: row.remaining,
            hits: row.hits,
            tenant: row.tenant.map(Into::into),
            seq,
            weight,
        })
    }
}

/// What a fault with `body` and `path` weighs ([`MAX_TENANT_FAULT_BYTES`]).
fn weight(body: Option<&Value>, path: Option<&str>) -> usize {
    let body = body.map_or(0, |body| {
        serde_json::to_vec(body).map_or(MAX_BODY_BYTES, |text| text.len())
    });
    FAULT_OVERHEAD_BYTES + body + path.map_or(0, str::len)
}

fn fires(probability: f64) -> bool {
    probability >= 1.0 || (probability > 0.0 && rand::random::<f64>() < probability)
}

fn view(fault: &Fault) -> FaultView {
    FaultView {
        id: fault.id.clone(),
        method: fault.method.as_ref().map(Method::to_string),
        path: fault.path.as_ref().map(|pattern| pattern.text.clone()),
        status: fault.status.map(|status| status.as_u16()),
        body: fault.body.clone(),
        delay_ms: fault.delay_ms,
        drop: fault.drop,
        probability: fault.probability,
        remaining: fault.remaining,
        hits: fault.hits,
        tenant: fault.tenant.as_deref().map(str::to_owned),
    }
}

/// What a wildcard stands for in [`PathPattern::witness`]: a segment no path linkbox
/// serves or names has (a control character, which no route's literal holds).
const FILLER: &str = "\u{1}";

/// A fault's path pattern, checked once when the fault is added (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct PathPattern {
    /// As the fault was given, for its view.
    text: String,
    segments: Vec<Segment>,
    rest: Rest,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Any,
}

/// What a pattern accepts after its segments.
#[derive(Debug, Clone, PartialEq)]
enum Rest {
    /// Nothing: the path has exactly as many segments.
    Nothing,
    /// Anything (a trailing `/**`).
    Anything,
    /// One more segment starting with this text, then anything (the prefix form `/a/b*`).
    Prefix(String),
}

impl PathPattern {
    /// The pattern `text` describes, or a message naming it when the matcher cannot use it.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let Some(relative) = text.strip_prefix('/') else {
            return Err(format!("The path field {text:?} must start with /"));
        };
        // A request's path comes without its query (and a browser sends no fragment), so a
        // pattern holding either could never match.
        if let Some(mark) = text.chars().find(|c| matches!(c, '?' | '#')) {
            let what = if mark == '?' {
                "a query string"
            } else {
                "a fragment"
            };
            return Err(format!(
                "The path field {text:?} holds {what}, and a path pattern takes no query string \
                 or fragment: faults match the request's path alone, so this one could never \
                 fire. Leave out everything from \"{mark}\" on"
            ));
        }
        let unusable = || {
            format!(
                "The path field {text:?} is not a pattern linkbox can match: use * for exactly \
                 one segment and a trailing /** for the rest of the path"
            )
        };
        let parts: Vec<&str> = if relative.is_empty() {
            Vec::new()
        } else {
            relative.split('/').collect()
        };
        let mut segments = Vec::with_capacity(parts.len());
        let mut rest = Rest::Nothing;
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == parts.len();
            match *part {
                "*" => segments.push(Segment::Any),
                "**" if last => rest = Rest::Anything,
                part if !part.contains('*') => segments.push(Segment::Literal(part.to_owned())),
                part => match part.strip_suffix('*') {
                    Some(prefix) if last && !prefix.contains('*') => {
                        rest = Rest::Prefix(prefix.to_owned());
                    }
                    _ => return Err(unusable()),
                },
            }
        }
        Ok(PathPattern {
            text: text.to_owned(),
            segments,
            rest,
        })
    }

    /// Whether every path this pattern matches is one `within` holds, for `within` a set of
    /// paths made of whole subtrees under literal segments (`/_sandbox` and everything under
    /// it) and of literal paths (`/api/authenticate`). Decided on one path the pattern
    /// matches ([`PathPattern::witness`]): each wildcard filled with a segment no literal
    /// names, so a subtree holds it only when the pattern's own leading literals lie in
    /// that subtree (and then so does every path it matches), and a literal path only when
    /// the pattern is that path.
    pub fn confined_to(&self, within: impl Fn(&str) -> bool) -> bool {
        within(&self.witness())
    }

    /// A path this pattern matches whose every wildcard is [`FILLER`].
    fn witness(&self) -> String {
        let mut parts: Vec<String> = self
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(literal) => literal.clone(),
                Segment::Any => FILLER.to_owned(),
            })
            .collect();
        match &self.rest {
            Rest::Nothing => {}
            Rest::Anything => parts.push(FILLER.to_owned()),
            Rest::Prefix(prefix) => parts.push(format!("{prefix}{FILLER}")),
        }
        format!("/{}", parts.join("/"))
    }

    /// Whether `path` (starting with `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        let relative = path.strip_prefix('/').unwrap_or(path);
        let mut parts = if relative.is_empty() {
            Vec::new()
        } else {
            relative.split('/').collect::<Vec<_>>()
        };
        if parts.len() < self.segments.len() {
            return false;
        }
        let tail = parts.split_off(self.segments.len());
        let head_matches = self
            .segments
            .iter()
            .zip(&parts)
            .all(|(segment, part)| match segment {
                Segment::Any => true,
                Segment::Literal(literal) => literal == part,
            });
        head_matches
            && match &self.rest {
                Rest::Nothing => tail.is_empty(),
                Rest::Anything => true,
                Rest::Prefix(prefix) => tail
                    .first()
                    .is_some_and(|first| first.starts_with(prefix.as_str())),
            }
    }
}

/// A fault request read and checked: every field valid, as [`Faults::add`] takes it.
pub struct Checked {
    request: FaultRequest,
    method: Option<Method>,
    path: Option<PathPattern>,
    status: Option<StatusCode>,
    probability: f64,
    drop: bool,
}

/// Reads and checks a fault request, before anything is added or any tenant made for it.
pub fn check(mut request: FaultRequest) -> Result<Checked, FaultRefused> {
    let method = request
        .method
        .take()
        .map(|method| {
            Some(method)
                .filter(|method| method.len() <= MAX_METHOD_BYTES)
                .and_then(|method| Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok())
                .ok_or_else(|| String::from("The method field must be an HTTP method"))
        })
        .transpose()?;
    if request
        .path
        .as_ref()
        .is_some_and(|path| path.len() > MAX_PATH_BYTES)
    {
        return Err(FaultRefused::Invalid(format!(
            "The path field must be at most {MAX_PATH_BYTES} bytes"
        )));
    }
    if let Some(body) = &request.body {
        let bytes = serde_json::to_vec(body).map_or(usize::MAX, |text| text.len());
        if bytes > MAX_BODY_BYTES {
            return Err(FaultRefused::Invalid(format!(
                "The body field must be at most {MAX_BODY_BYTES} bytes as JSON; it is {bytes}"
            )));
        }
    }
    let path = request
        .path
        .as_deref()
        .map(PathPattern::parse)
        .transpose()?;
    let status = request
        .status
        .map(|status| {
            StatusCode::from_u16(status)
                .ok()
                .filter(|status| FaultRequest::STATUS.contains(status.as_u16().into()))
                .ok_or_else(|| {
                    let range = FaultRequest::STATUS;
                    format!(
                        "The status field must be between {} and {}",
                        range.min, range.max
                    )
                })
        })
        .transpose()?;
    let probability = request.probability.unwrap_or(1.0);
    // A fault that could never fire is refused, as one matching only control paths is.
    if !(probability > 0.0 && probability <= 1.0) {
        return Err(FaultRefused::Invalid(String::from(
            "The probability field must be above 0 and at most 1 (a fault of probability 0 \
             would never fire)",
        )));
    }
    if request.delay_ms.is_some_and(|delay| delay > MAX_DELAY_MS) {
        return Err(FaultRefused::Invalid(format!(
            "The delayMs field must be at most {MAX_DELAY_MS}"
        )));
    }
    if request
        .times
        .is_some_and(|times| !FaultRequest::TIMES.contains(times.into()))
    {
        return Err(FaultRefused::Invalid(format!(
            "The times field must be at least {}",
            FaultRequest::TIMES.min
        )));
    }
    if let Some(status) =
        status.filter(|status| matches!(status.as_u16(), 204 | 205 | 304) && request.body.is_some())
    {
        return Err(FaultRefused::Invalid(format!(
            "A fault with status {} cannot carry a body (HTTP sends none with it); leave \
                 out the body field or choose another status",
            status.as_u16()
        )));
    }
    let drop = request.drop.unwrap_or(false);
    if status.is_none() && request.body.is_none() && request.delay_ms.is_none() && !drop {
        return Err(FaultRefused::Invalid(String::from(
            "A fault needs at least one of status, body, delayMs or drop",
        )));
    }
    Ok(Checked {
        request,
        method,
        path,
        status,
        probability,
        drop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(json: serde_json::Value) -> FaultRequest {
        serde_json::from_value(json).expect("fault request")
    }

    /// Keys made up by the dozen, each adding its hundred faults of 60 KiB, fill the table
    /// only up to what all tenants together may hold: then it is full, for the heaviest
    /// holders first, while a tenant holding none may still add one; the admin's faults
    /// are not counted.
    #[test]
    fn all_tenants_faults_together_stay_within_their_cap() {
        let faults = Faults::new();
        let body = "x".repeat(60 * 1024);
        let heavy = || fault(serde_json::json!({"status": 500, "body": body}));
        let weighed = |faults: &Faults| -> usize {
            let list = faults.list.lock();
            list.by_tenant
                .values()
                .flatten()
                .map(|fault| fault.weight)
                .sum()
        };
        let mut tenants = 0;
        let refused = 'fill: loop {
            tenants += 1;
            assert!(tenants < 20, "the table never filled");
            let tenant: Arc<str> = format!("t{tenants}").into();
            for _ in 0..MAX_FAULTS_PER_TENANT {
                if let Err(refused) = faults.add(heavy(), Some(tenant.clone())) {
                    break 'fill refused;
                }
            }
        };
        assert!(matches!(refused, FaultRefused::Full(_)), "{refused}");
        assert!(
            refused.to_string().contains("DELETE /_sandbox/faults"),
            "{refused}"
        );
        let held = weighed(&faults);
        assert!(held <= MAX_TENANT_FAULT_BYTES, "{held}");
        assert!(
            held > MAX_TENANT_FAULT_BYTES - MAX_TENANT_FAULT_BYTES / 8 - 64 * 1024,
            "filled up to the reserve: {held}"
        );
        let last: Arc<str> = format!("t{tenants}").into();
        // Asked before a new tenant is made for it, the table says the same.
        let checked = |request| check(request).expect("a fault");
        assert!(matches!(
            faults.has_room(&checked(heavy()), Some(&last)),
            Err(FaultRefused::Full(_))
        ));
        assert!(matches!(
            faults.add(heavy(), Some(last.clone())),
            Err(FaultRefused::Full(_))
        ));
        let small = || fault(serde_json::json!({"status": 503}));
        assert!(faults.has_room(&checked(small()), Some("newcomer")).is_ok());
        faults
            .add(small(), Some("newcomer".into()))
            .expect("a tenant holding none may still add one");
        faults
            .add(heavy(), None)
            .expect("the admin's are not counted");
        assert!(weighed(&faults) <= MAX_TENANT_FAULT_BYTES);
        // Clearing a tenant's faults makes room for the others.
        faults.clear(Some("t2"));
        faults
            .add(heavy(), Some(last))
            .expect("room once another tenant cleared its own");
    }

    /// A status that carries no body in HTTP is refused with one: it could never be sent.
    #[test]
    fn a_status_without_a_body_in_http_takes_no_body() {
        let faults = Faults::new();
        for status in [204, 205, 304] {
            let refused = faults
                .add(
                    fault(serde_json::json!({"status": status, "body": {"x": 1}})),
                    None,
                )
                .expect_err("a body it cannot send");
            assert!(
                refused.to_string().contains("cannot carry a body"),
                "{refused}"
            );
            faults
                .add(fault(serde_json::json!({"status": status})), None)
                .expect("without a body");
        }
        faults
            .add(
                fault(serde_json::json!({"status": 200, "body": {"x": 1}})),
                None,
            )
            .expect("a status that has a body");
    }

    /// A fault answers like a vendor; it is no place to store data: its body, path and
    /// method are bounded, each refusal naming the field and the limit.
    #[test]
    fn a_faults_body_path_and_method_are_bounded() {
        let faults = Faults::new();
        let at_limit = "x".repeat(MAX_BODY_BYTES - 2);
        assert!(
            faults
                .add(fault(serde_json::json!({"body": at_limit})), None)
                .is_ok()
        );
        let over = "x".repeat(MAX_BODY_BYTES - 1);
        let refused = faults
            .add(fault(serde_json::json!({"body": over})), None)
            .expect_err("a body past the limit");
        assert!(
            refused
                .to_string()
                .contains("The body field must be at most 65536 bytes"),
            "{refused}"
        );
        let long = format!("/partner/{}", "p".repeat(MAX_PATH_BYTES));
        let refused = faults
            .add(
                fault(serde_json::json!({"status": 503, "path": long})),
                None,
            )
            .expect_err("a path past the limit");
        assert!(
            refused
                .to_string()
                .contains("The path field must be at most 2048 bytes"),
            "{refused}"
        );
        let refused = faults
            .add(
                fault(serde_json::json!({"status": 503, "method": "M".repeat(33)})),
                None,
            )
            .expect_err("a method past the limit");
        assert_eq!(
            refused,
            FaultRefused::Invalid("The method field must be an HTTP method".into())
        );
        assert_eq!(faults.list(None).len(), 1, "only the first was added");
    }

    #[test]
    fn a_fault_with_times_fires_that_often_then_is_gone() {
        let faults = Faults::new();
        faults
            .add(fault(serde_json::json!({"status": 503, "times": 2})), None)
            .expect("add");
        for _ in 0..2 {
            assert!(
                faults
                    .strike(&Method::GET, "/partner/links", None)
                    .is_some()
            );
        }
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", None)
                .is_none()
        );
        assert!(faults.list(None).is_empty());
    }

    /// `strike` answers from the count alone while no fault is in force, so every change
    /// to the table must keep the count: a fault added, spent, cleared for its tenant or
    /// for all, or read back from a shared database.
    #[test]
    fn every_change_to_the_table_keeps_the_count_strike_reads_first() {
        let faults = Faults::new();
        let strikes = |tenant: Option<&str>| {
            faults
                .strike(&Method::POST, "/partner/links", tenant)
                .is_some()
        };
        let may_strike = |method: Method, path: &str, tenant: Option<&str>| {
            faults.may_strike(&method, path, tenant)
        };
        assert!(!strikes(Some("acme")));
        assert!(!may_strike(Method::POST, "/partner/links", Some("acme")));

        faults
            .add(fault(serde_json::json!({"status": 503, "times": 1})), None)
            .expect("add");
        assert!(may_strike(Method::POST, "/partner/links", None));
        assert!(strikes(None), "an added fault fires");
        assert!(!strikes(None), "a spent fault is gone");
        assert!(!may_strike(Method::POST, "/partner/links", None));
        // Only a request a fault's method and path match may be struck by it.
        faults
            .add(
                fault(serde_json::json!({"status": 503, "method": "POST", "path": "/partner/links", "probability": 0.01})),
                None,
            )
            .expect("add");
        assert!(may_strike(Method::POST, "/partner/links", Some("acme")));
        assert!(!may_strike(Method::GET, "/partner/links", Some("acme")));
        assert!(!may_strike(Method::POST, "/openapi.json", None));
        // A tenant's own fault may strike a request whose tenant is not known yet.
        faults
            .add(
                fault(serde_json::json!({"status": 418, "path": "/openapi.json"})),
                Some("acme".into()),
            )
            .expect("add");
        assert!(!may_strike(Method::GET, "/openapi.json", None));
        assert!(faults.may_strike_anyone(&Method::GET, "/openapi.json"));
        assert!(!faults.may_strike_anyone(&Method::GET, "/docs"));
        faults.clear(None);

        let acme: Arc<str> = "acme".into();
        faults
            .add(
                fault(serde_json::json!({"status": 503})),
                Some(acme.clone()),
            )
            .expect("add");
        faults
            .add(
                fault(serde_json::json!({"status": 502})),
                Some("globex".into()),
            )
            .expect("add");
        faults.clear(Some("acme"));
        assert!(!strikes(Some("acme")), "a tenant's cleared fault is gone");
        assert!(strikes(Some("globex")), "another tenant's stays");
        // The admin's own DELETE removes the admin's faults only.
        faults
            .add(fault(serde_json::json!({"status": 504})), None)
            .expect("add");
        faults.clear_set_by(None);
        assert!(
            strikes(Some("globex")),
            "a tenant's fault outlives the admin's DELETE"
        );
        assert_eq!(faults.list(None).len(), 1, "the admin's own is gone");
        faults.clear(None);
        assert!(!strikes(Some("globex")), "clearing all leaves none");

        let kept = Faults::new();
        kept.add(fault(serde_json::json!({"status": 500})), Some(acme))
            .expect("add");
        let rows: Vec<(u64, FaultView)> = kept
            .list(None)
            .into_iter()
            .enumerate()
            .map(|(seq, view)| (seq as u64 + 1, view))
            .collect();
        faults.restore(rows);
        assert!(strikes(Some("acme")), "a fault read back fires");
        faults.restore(Vec::new());
        assert!(
            !strikes(Some("acme")),
            "an empty table read back leaves none"
        );
    }

    #[test]
    fn probability_zero_never_fires_and_one_always_does() {
        let faults = Faults::new();
        let refused = faults.add(
            fault(serde_json::json!({"status": 500, "probability": 0.0})),
            None,
        );
        assert!(
            matches!(&refused, Err(FaultRefused::Invalid(said)) if said.contains("never fire")),
            "{refused:?}"
        );
        assert!(faults.strike(&Method::GET, "/x", None).is_none());
        faults.clear(None);
        faults
            .add(
                fault(serde_json::json!({"status": 500, "probability": 1.0})),
                None,
            )
            .expect("add");
        for _ in 0..100 {
            assert!(faults.strike(&Method::GET, "/x", None).is_some());
        }
    }

    #[test]
    fn a_tenants_fault_touches_only_its_own_requests() {
        let faults = Faults::new();
        faults
            .add(
                fault(serde_json::json!({"path": "/partner/*", "drop": true})),
                Some("pa".into()),
            )
            .expect("add");
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", Some("pb"))
                .is_none()
        );
        assert!(
            faults
                .strike(&Method::GET, "/partner/links", None)
                .is_none()
        );
        assert_eq!(
            faults
                .strike(&Method::GET, "/partner/links", Some("pa"))
                .map(|strike| strike.action),
            Some(Action::Drop)
        );
    }

    #[test]
    fn each_tenant_has_its_own_quota_and_the_earliest_fault_fires_first() {
        let faults = Faults::new();
        let tenant: Arc<str> = "pa".into();
        faults
            .add(
                fault(serde_json::json!({"status": 502})),
                Some(tenant.clone()),
            )
            .expect("add");
        faults
            .add(fault(serde_json::json!({"status": 503})), None)
            .expect("admin");
        for _ in 1..MAX_FAULTS_PER_TENANT {
            faults
                .add(
                    fault(serde_json::json!({"path": "/never", "status": 500})),
                    Some(tenant.clone()),
                )
                .expect("within the quota");
        }
        let refused = faults
            .add(
                fault(serde_json::json!({"status": 500})),
                Some(tenant.clone()),
            )
            .expect_err("over the quota");
        assert!(refused.to_string().contains("100"), "{refused}");
        faults
            .add(fault(serde_json::json!({"status": 500})), Some("pb".into()))
            .expect("another tenant's quota is its own");
        let status = |tenant| match faults.strike(&Method::GET, "/x", tenant) {
            Some(Strike {
                action: Action::Answer { status, .. },
                ..
            }) => status.as_u16(),
            other => panic!("{other:?}"),
        };
        assert_eq!(status(Some("pa")), 502, "added before the admin's");
        assert_eq!(status(Some("pb")), 503, "the admin's came first");
        assert_eq!(status(None), 503);
        assert_eq!(faults.list(Some("pa")).len(), MAX_FAULTS_PER_TENANT);
        assert_eq!(faults.list(None).len(), MAX_FAULTS_PER_TENANT + 2);
        faults.clear(Some("pa"));
        assert_eq!(faults.list(None).len(), 2);
    }

    #[test]
    fn bad_faults_are_refused() {
        let faults = Faults::new();
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"status": 99}),
            serde_json::json!({"status": 500, "probability": 1.5}),
            serde_json::json!({"status": 500, "times": 0}),
            serde_json::json!({"status": 500, "path": "partner"}),
            serde_json::json!({"status": 500, "method": "NOT A METHOD"}),
            serde_json::json!({"status": 500, "path": "/partner/**/revoke"}),
            serde_json::json!({"status": 500, "path": "/partner/l*s"}),
            serde_json::json!({"status": 500, "path": "/partner/***"}),
        ] {
            assert!(faults.add(fault(bad.clone()), None).is_err(), "{bad}");
        }
    }

    /// A request's path has no query string or fragment, so a pattern with either would
    /// never match: it is refused, saying what to leave out.
    #[test]
    fn a_pattern_with_a_query_string_or_fragment_is_refused() {
        let error = PathPattern::parse("/partner/links?limit=1").expect_err("refused");
        assert!(error.contains("takes no query string"), "{error}");
        assert!(error.contains("\"?\""), "{error}");
        let error = PathPattern::parse("/partner/links#top").expect_err("refused");
        assert!(error.contains("a fragment"), "{error}");
        assert!(PathPattern::parse("/partner/links").is_ok());
    }

    /// Confinement is decided on one path each pattern matches: within a subtree only when
    /// its leading literals are in it, within a literal path only when it is that path.
    #[test]
    fn a_pattern_is_confined_only_where_every_path_it_matches_is() {
        let within = |path: &str| {
            path == "/_sandbox"
                || path.starts_with("/_sandbox/")
                || path == "/api/authenticate"
                || path == "/"
        };
        for confined in [
            "/_sandbox/clock",
            "/_sandbox/**",
            "/_sandbox",
            "/_sandbox/*/x",
            "/_sandbox/fa*",
            "/api/authenticate",
            "/",
        ] {
            let pattern = PathPattern::parse(confined).expect("pattern");
            assert!(pattern.matches(&pattern.witness()), "{confined}");
            assert!(pattern.confined_to(within), "{confined}");
        }
        for reaching in [
            "/**",
            "/*",
            "/_sand*",
            "/*/clock",
            "/api/*",
            "/api/**",
            "/api/authenticate/**",
            "/partner/links",
        ] {
            let pattern = PathPattern::parse(reaching).expect("pattern");
            assert!(pattern.matches(&pattern.witness()), "{reaching}");
            assert!(!pattern.confined_to(within), "{reaching}");
        }
    }

    #[test]
    fn an_unusable_pattern_is_refused_by_name() {
        let error = PathPattern::parse("/partner/*x*/revoke").expect_err("refused");
        assert!(error.contains("/partner/*x*/revoke"), "{error}");
    }

    #[test]
    fn a_star_matches_exactly_one_segment_anywhere() {
        let pattern = PathPattern::parse("/partner/links/*/revoke").expect("pattern");
        assert!(pattern.matches("/partner/links/abc/revoke"));
        assert!(!pattern.matches("/partner/links/abc"));
        assert!(!pattern.matches("/partner/links/a/b/revoke"));
        assert!(!pattern.matches("/partner/links/abc/revoke/x"));
        let one = PathPattern::parse("/partner/*").expect("pattern");
        assert!(one.matches("/partner/links"));
        assert!(!one.matches("/partner/links/abc"));
    }

    #[test]
    fn a_trailing_double_star_matches_any_rest() {
        let pattern = PathPattern::parse("/partner/**").expect("pattern");
        assert!(pattern.matches("/partner"));
        assert!(pattern.matches("/partner/links"));
        assert!(pattern.matches("/partner/links/abc/revoke"));
        assert!(!pattern.matches("/partnerx/links"));
        assert!(
            PathPattern::parse("/**")
                .expect("pattern")
                .matches("/anything/at/all")
        );
    }

    #[test]
    fn the_prefix_form_and_exact_paths_still_match() {
        let prefix = PathPattern::parse("/partner/li*").expect("pattern");
        assert!(prefix.matches("/partner/links"));
        assert!(prefix.matches("/partner/links/abc/revoke"));
        assert!(!prefix.matches("/partner/data-requests"));
        let exact = PathPattern::parse("/partner/links").expect("pattern");
        assert!(exact.matches("/partner/links"));
        assert!(!exact.matches("/partner/links/abc"));
    }

    #[test]
    fn a_segment_wildcard_fault_strikes_the_paths_it_names() {
        let faults = Faults::new();
        faults
            .add(
                fault(serde_json::json!({"path": "/partner/links/*/revoke", "status": 503})),
                None,
            )
            .expect("add");
        assert!(
            faults
                .strike(&Method::POST, "/partner/links/x1/revoke", None)
                .is_some()
        );
        assert!(
            faults
                .strike(&Method::POST, "/partner/links/x1", None)
                .is_none()
        );
    }
}
