//! The request journal: the last `--journal-size` requests of each tenant to the vendor
//! APIs (method, path, query, status (none for a request a fault dropped), sandbox time,
//! tenant, duration, and both sides' headers and bodies). The serving layer records each
//! request; `GET|DELETE /_sandbox/requests` reads and forgets it (what one filter matches,
//! [`JournalFilter`], or all of it) and `POST /_sandbox/requests/verify` counts what
//! matches an expectation. Each tenant sees and clears only its own entries; admin sees all
//! of them.
//!
//! What an entry shows ([`Entry::view`]): headers with lower-case names, `X-API-Key`,
//! `Authorization`, `Cookie` and `Set-Cookie` as `[redacted]`; bodies as text, JSON fields
//! named like a secret (`password`, `secret`, `webhookSecret`, `token`, `id_token`, `apiKey`,
//! any case) redacted before the body is cut at `JOURNAL_BODY_LIMIT` bytes, and in a body
//! that is not JSON or in the query, the value of each secret `name=value` pair or
//! `"name": "value"` member and every M2M key ([`redact_text`]). Recording runs
//! on every vendor request and reading seldom, so an entry keeps what it was given (a copy
//! of the path, the query, and both sides' headers and bodies, all in one buffer:
//! [`Texts`]) and redacts it when read; only a body over the limit is redacted and cut at
//! once.
//!
//! Each tenant (partner slug, `leaf:<username>`, or no tenant at all) has its own ring of at
//! most `--journal-size` entries, so one tenant's traffic never pushes out another's; all
//! rings together hold at most `JOURNAL_MAX_BYTES` ([`Entry::size`]), and past that the
//! ring holding the most bytes loses its oldest entry first.
//!
//! In a sandbox shared by replicas (`--state postgres://…`) each entry is also written, as
//! shown, to the database's `journal` table (the last `--journal-size` of each tenant, and at
//! most [`SHARED_ROWS`] and `JOURNAL_MAX_BYTES` in all, the tenants holding the most losing their oldest first past
//! that), and a replica reads that table back before it answers a journal request
//! ([`Journal::restore`]), so the journal shows every replica's requests. Read back, an
//! entry's `seq` is its row's number, so a filtered delete names the rows it forgets by it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, Method};
use linkbox_contracts::sandbox::{
    JOURNAL_BODY_LIMIT, JOURNAL_MAX_BYTES, JournalEntry, JournalMessage, NearMiss, REDACTED,
};
use linkbox_contracts::timefmt;
use parking_lot::Mutex;
use serde_json::Value;
use time::OffsetDateTime;

use crate::keys::{decoded_name, holds_key, redact_keys, without_keys};
use crate::persist::{Sink, Table};

/// Journal rows a shared database keeps in all, past each tenant's own bound.
pub const SHARED_ROWS: i64 = 100_000;

/// The journal handle: cheap to clone, bounded, oldest entries dropped first.
#[derive(Clone)]
pub struct Journal {
    rings: Arc<Mutex<Rings>>,
    /// A shared database's sink; off for one process.
    sink: Sink,
}

/// Every tenant's ring, each bounded by entries, all of them together by bytes.
struct Rings {
    /// By tenant label; requests with no tenant under [`UNTENANTED`].
    rings: HashMap<Arc<str>, Ring>,
    /// Each non-empty ring of a tenant that exists by the bytes it holds, to find the
    /// largest.
    by_bytes: BTreeSet<(usize, Arc<str>)>,
    /// The same for the rings of callers without a tenant that exists ([`Ring::established`]):
    /// they give way first. Made-up keys cost nothing; forty thousand of them, a request
    /// each, made a neighbour's ring the largest and emptied it.
    strangers: BTreeSet<(usize, Arc<str>)>,
    /// Entries one ring keeps (`--journal-size`).
    capacity: usize,
    next_seq: u64,
    /// Sum of [`Entry::size`] over every ring.
    bytes: usize,
}

/// The ring of requests that had no tenant (no key, a refused one): labels are never empty.
const UNTENANTED: &str = "";

/// What a ring costs besides its entries (its label, its slots in two maps), counted
/// toward [`JOURNAL_MAX_BYTES`] while the ring exists.
const RING_BYTES: usize = 256;

/// One tenant's entries, oldest first.
#[derive(Default)]
struct Ring {
    /// Each behind a pointer, so a ring of one entry (a key seen once) holds one pointer's
    /// room spare; shared, so that a list or a verify copies them out and reads them after
    /// the lock.
    entries: VecDeque<Arc<Entry>>,
    /// Sum of [`Entry::size`] over `entries`.
    bytes: usize,
    /// Whether any of its entries was recorded while its tenant existed.
    established: bool,
}

/// One journaled request.
pub struct Entry {
    seq: u64,
    method: Method,
    /// `None` when a fault dropped the connection unanswered.
    status: Option<u16>,
    /// How each side's body is held ([`Body`]).
    kept: Kept,
    time: OffsetDateTime,
    tenant: Option<Arc<str>>,
    duration_ms: u64,
    /// The path, the query, the request's headers and body, the response's headers and body,
    /// one after another in one buffer, as [`Texts`] lays them out.
    texts: Texts,
    /// Its tenant existed (had written) when it was recorded ([`Request::established`]).
    established: bool,
    /// How its request body, kept as received, is shown, once it first is: as it was sent
    /// (`None`: nothing in it redacted, nothing cut), or rewritten, that text kept with
    /// whether it was cut. A filter or a `verify` reads every body it is asked about: each
    /// is redacted once, not again on every call (a tenant's searches of bodies crafted to
    /// be slow to redact held the heavy threads for seconds each). A text kept is at most
    /// about the size of the body it is of, which is at most [`JOURNAL_BODY_LIMIT`] kept
    /// raw: the journal's bytes at most about double while every body is rewritten.
    request_shown: OnceLock<Option<(Box<str>, bool)>>,
}

/// An entry's text in one allocation: an entry is made on every vendor request and freed,
/// long after, when its ring has moved on, by then out of every cache. One buffer is one
/// allocation to make and one to free where a string per part was six.
///
/// The parts, in order: the path, the query, the request's headers, the response's
/// headers, the request's body, the response's body (the headers first, so that both are
/// packed into the buffer the request's were, and copied once). Headers are packed as
/// [`Opening`] packs them: each pair as its name's length (2 bytes), its value's length
/// (4 bytes), the name and the value. An empty query or body is no query or body.
struct Texts {
    buffer: Box<[u8]>,
    /// Where each part but the last ends.
    ends: [u32; 5],
}

/// How an entry holds its bodies: as received (redacted and cut when read), or already
/// shown: a body over `JOURNAL_BODY_LIMIT` is redacted and cut when recorded, and an entry
/// read back from a shared database was shown when it was written.
#[derive(Clone, Copy, Default)]
struct Kept {
    request: Body,
    response: Body,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Body {
    /// As received.
    #[default]
    Raw,
    /// As shown, whole.
    Shown,
    /// As shown, cut at `JOURNAL_BODY_LIMIT`.
    Cut,
}

/// The bytes a packed header pair spends on its two lengths.
const PAIR_PREFIX: usize = 6;

/// What the journal takes of a request before its handler does: the path, the query and the
/// headers, copied and packed into the buffer the entry's [`Texts`] are made from. (A parsed
/// request's header values are views into the connection's read buffer; holding those would
/// keep that whole buffer alive for as long as the entry.)
pub struct Opening {
    buffer: Vec<u8>,
    path_end: u32,
    query_end: u32,
}

impl Opening {
    pub fn of(path: &str, query: &str, headers: &HeaderMap) -> Opening {
        Opening::of_pairs(path, query, headers.len(), pairs_of(headers))
    }

    /// The bytes of the path, the query and the headers, as packed.
    pub fn bytes(&self) -> usize {
        self.buffer.len()
    }
}

/// `headers` as `(name, value)` pairs.
fn pairs_of(headers: &HeaderMap) -> impl Iterator<Item = (&str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
}

/// Appends `pairs` to `buffer`, each as its two lengths, its name and its value.
fn pack<'a>(buffer: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a [u8])>) {
    for (name, value) in pairs {
        // hyper refuses a header block this large long before either length could
        // overflow; a pair that somehow would is left out rather than misread.
        let (Ok(name_len), Ok(value_len)) = (u16::try_from(name.len()), u32::try_from(value.len()))
        else {
            continue;
        };
        buffer.extend_from_slice(&name_len.to_le_bytes());
        buffer.extend_from_slice(&value_len.to_le_bytes());
        buffer.extend_from_slice(name.as_bytes());
        buffer.extend_from_slice(value);
    }
}

/// The pairs [`pack`] wrote into `packed`.
fn unpack(packed: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    let mut rest = packed;
    std::iter::from_fn(move || {
        let (lengths, tail) = rest.split_at_checked(PAIR_PREFIX)?;
        let name_len = usize::from(u16::from_le_bytes([lengths[0], lengths[1]]));
        let value_len = usize::try_from(u32::from_le_bytes([
            lengths[2], lengths[3], lengths[4], lengths[5],
        ]))
        .ok()?;
        let (name, tail) = tail.split_at_checked(name_len)?;
        let (value, tail) = tail.split_at_checked(value_len)?;
        rest = tail;
        // Names were a `HeaderName`'s or a shown entry's: text.
        Some((std::str::from_utf8(name).ok()?, value))
    })
}

/// Where `buffer` ends, as a part's end. A journal entry's parts are each bounded (the
/// request head by hyper, the bodies by `READ_BACK_LIMIT` or the body cap), so 4 GiB is far
/// out of reach; past it the end saturates, and the parts after it read back empty rather
/// than wrong.
fn end(buffer: &[u8]) -> u32 {
    u32::try_from(buffer.len()).unwrap_or(u32::MAX)
}

/// One request to record.
pub struct Request<'a> {
    pub method: Method,
    /// The path, query and headers, taken before the handler ran.
    pub opening: Opening,
    /// The status answered; `None` when a fault dropped the connection unanswered (its
    /// response, never sent, is empty).
    pub status: Option<u16>,
    pub time: OffsetDateTime,
    pub tenant: Option<Arc<str>>,
    /// Whether its tenant exists: has written, or is configured. The rings of callers that
    /// have not (no credentials, or a key or username made up for a read) give way first
    /// when all rings together are full.
    pub established: bool,
    pub duration_ms: u64,
    pub request_body: Option<&'a [u8]>,
    pub response_headers: &'a HeaderMap,
    pub response_body: Option<&'a [u8]>,
}

/// `GET /_sandbox/requests` filters, and `DELETE /_sandbox/requests`'s.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalFilter {
    pub method: Option<String>,
    /// Exact, or a prefix when it ends with `*`.
    pub path: Option<String>,
    /// A status from `100` to `599` (`404`), or a class from `1xx` to `5xx` (`4xx`).
    pub status: Option<String>,
    /// Text the request body contains.
    pub body_contains: Option<String>,
    /// A request header: lower-case name, exact value.
    pub header: Option<(String, String)>,
    /// The tenant label.
    pub tenant: Option<String>,
    /// At or after this sandbox time.
    pub since: Option<OffsetDateTime>,
}

/// What `POST /_sandbox/requests/verify` looks for; `None` criteria match everything.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Expectation {
    pub method: Option<String>,
    pub path: Option<String>,
    pub body_contains: Option<String>,
    pub body_json: Option<Value>,
}

/// Near misses a failed verification shows at most.
pub const NEAR_MISSES: usize = 5;

impl Journal {
    /// A journal keeping the last `capacity` requests (at least one) of each tenant.
    pub fn new(capacity: usize) -> Journal {
        Journal::with_sink(capacity, Sink::off())
    }

    /// Writing every entry through `sink` (a shared database's).
    pub fn with_sink(capacity: usize, sink: Sink) -> Journal {
        Journal {
            rings: Arc::new(Mutex::new(Rings::empty(capacity.max(1)))),
            sink,
        }
    }

    /// Replaces every ring with the entries a shared database keeps, oldest first, each
    /// numbered by its row (`seq`). Rings are bounded as when recording.
    pub fn restore(&self, entries: Vec<JournalEntry>) {
        let mut rings = Rings::empty(self.capacity());
        for entry in entries.into_iter().filter_map(Entry::from_view) {
            rings.next_seq = rings.next_seq.max(entry.seq + 1);
            rings.admit(entry);
        }
        *self.rings.lock() = rings;
    }

    /// Replaces the ring of tenant `label` with `entries` (a shared database's rows of it),
    /// the other rings as they are: a tenant's journal request reads its own rows back, not
    /// every tenant's.
    pub fn restore_tenant(&self, label: &str, entries: Vec<JournalEntry>) {
        let label: Arc<str> = label.into();
        let mut rings = self.rings.lock();
        rings.remove_ring(&label);
        for mut entry in entries.into_iter().filter_map(Entry::from_view) {
            // The row's tenant, not the label as shown (a Leaf account named with a key is
            // shown redacted).
            entry.tenant = Some(label.clone());
            rings.next_seq = rings.next_seq.max(entry.seq + 1);
            rings.admit(entry);
        }
    }

    /// How many entries each tenant's ring keeps.
    pub fn capacity(&self) -> usize {
        self.rings.lock().capacity
    }

    /// Records a request in its tenant's ring: past the ring's capacity its tenant's oldest
    /// entry goes; past [`JOURNAL_MAX_BYTES`] in all, the oldest entry of whichever ring
    /// holds the most bytes goes, so a busy tenant pays for its own traffic.
    ///
    /// In a sandbox shared by replicas the entry's row is its view, redacted: made before
    /// the journal's lock is taken, which every request recorded waits for (made under it,
    /// a stranger's bodies crafted to be slow to redact held every request of every tenant).
    pub fn record(&self, request: Request<'_>) {
        let mut entry = Entry::new(request);
        let mut row = self.sink.database().is_some().then(|| entry.view());
        let mut rings = self.rings.lock();
        entry.seq = rings.next_seq;
        rings.next_seq += 1;
        if let Some(row) = row.as_mut() {
            row.seq = entry.seq;
        }
        self.sink.record(|changes| {
            let label: Arc<str> = entry.tenant.clone().unwrap_or_else(|| UNTENANTED.into());
            match &row {
                Some(row) => changes.journal(&label, row),
                None => changes.journal(&label, &entry.view()),
            }
        });
        rings.admit(entry);
    }

    /// Whether recording a request whose head (path, query and headers) is `head` bytes,
    /// with bodies of these lengths, is heavy work ([`crate::offload`]): a body past
    /// [`JOURNAL_BODY_LIMIT`] is redacted and cut as it is recorded; in a sandbox shared by
    /// replicas every part is, for its row, once they hold more than [`SHARED_LIGHT_BYTES`].
    /// Redacting text crafted for it takes some microseconds a byte.
    pub fn heavy_to_record(&self, head: usize, bodies: &[usize]) -> bool {
        bodies.iter().any(|&len| len > JOURNAL_BODY_LIMIT)
            || (self.sink.database().is_some()
                && head + bodies.iter().sum::<usize>() > SHARED_LIGHT_BYTES)
    }
}

/// What a request may hold (head and bodies) to be recorded where it was served in a
/// sandbox shared by replicas, whose rows are redacted as they are recorded. [design]
pub const SHARED_LIGHT_BYTES: usize = 2 * 1024;

impl Rings {
    fn empty(capacity: usize) -> Rings {
        Rings {
            rings: HashMap::new(),
            by_bytes: BTreeSet::new(),
            strangers: BTreeSet::new(),
            capacity,
            next_seq: 1,
            bytes: 0,
        }
    }

    /// Keeps `entry` in its tenant's ring, dropping what the bounds say.
    fn admit(&mut self, entry: Entry) {
        let label: Arc<str> = entry.tenant.clone().unwrap_or_else(|| UNTENANTED.into());
        if let Some(entry) = self.admit_in_place(&label, entry) {
            self.admit_slowly(label, entry);
        }
    }

    /// What nearly every request finds: its tenant's ring exists and is at most full, and
    /// the journal is within its bytes once that ring's oldest entry makes room. Then the
    /// ring is looked up once and moves once in `by_bytes`, and the oldest entry's
    /// allocation is reused. Anything else gets `entry` back, for [`Rings::admit_slowly`].
    fn admit_in_place(&mut self, label: &Arc<str>, entry: Entry) -> Option<Entry> {
        let capacity = self.capacity;
        let Some(ring) = self.rings.get_mut(label) else {
            return Some(entry);
        };
        let full = ring.entries.len() == capacity;
        if capacity == 0
            || ring.entries.len() > capacity
            || (entry.established && !ring.established)
        {
            return Some(entry);
        }
        let freed = if full {
            ring.entries.front().map_or(0, |oldest| oldest.size())
        } else {
            0
        };
        let size = entry.size();
        if self.bytes.saturating_sub(freed) + size > JOURNAL_MAX_BYTES {
            return Some(entry);
        }
        let before = ring.bytes;
        let oldest = if full { ring.entries.pop_front() } else { None };
        // The oldest entry's allocation is reused unless a list still reads it.
        let slot = match oldest {
            Some(mut oldest) => match Arc::get_mut(&mut oldest) {
                Some(slot) => {
                    *slot = entry;
                    oldest
                }
                None => Arc::new(entry),
            },
            None => Arc::new(entry),
        };
        ring.entries.push_back(slot);
        ring.bytes = before.saturating_sub(freed) + size;
        self.bytes = self.bytes.saturating_sub(freed) + size;
        if ring.bytes != before {
            let set = if ring.established {
                &mut self.by_bytes
            } else {
                &mut self.strangers
            };
            set.remove(&(before, label.clone()));
            set.insert((ring.bytes, label.clone()));
        }
        None
    }

    /// [`Rings::admit`] for a new ring, a ring over a lowered capacity, or a journal at its
    /// bytes: the tenant's oldest entries go first, then the largest rings' oldest.
    fn admit_slowly(&mut self, label: Arc<str>, entry: Entry) {
        let rings = self;
        let capacity = rings.capacity;
        while rings
            .rings
            .get(&label)
            .is_some_and(|ring| ring.entries.len() >= capacity)
        {
            rings.pop_oldest(&label);
        }
        let size = entry.size()
            + if rings.rings.contains_key(&label) {
                0
            } else {
                RING_BYTES
            };
        while rings.bytes + size > JOURNAL_MAX_BYTES {
            let Some((_, largest)) = rings
                .strangers
                .last()
                .or_else(|| rings.by_bytes.last())
                .cloned()
            else {
                break;
            };
            rings.pop_oldest(&largest);
        }
        rings.push(label, entry);
    }
}

impl Journal {
    /// The entries `tenant` may see (`None`: all), newest first. The admin's are every
    /// ring's, sorted after the lock is let go: every request recorded waits for that lock,
    /// and sorting tens of thousands of entries under it held every vendor request up for
    /// hundreds of milliseconds while an admin looked at the journal.
    fn visible(&self, tenant: Option<&str>) -> Vec<Arc<Entry>> {
        let mut visible = self.rings.lock().gathered(tenant);
        if tenant.is_none() {
            visible.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.seq));
        }
        visible
    }

    /// How many of the entries `tenant` may see (`None`: all) match `expectation`, and the
    /// closest of those that do not: most criteria met first, then newest.
    pub fn verify(&self, expectation: &Expectation, tenant: Option<&str>) -> (u64, Vec<NearMiss>) {
        let visible = self.visible(tenant);
        let mut matched = 0;
        let mut misses: Vec<(usize, &Entry, Vec<String>)> = Vec::new();
        for entry in &visible {
            let missed = expectation.missed(entry);
            if missed.is_empty() {
                matched += 1;
            } else {
                misses.push((missed.len(), entry, missed));
            }
        }
        misses.sort_by_key(|(count, entry, _)| (*count, std::cmp::Reverse(entry.seq)));
        let near = misses
            .into_iter()
            .take(NEAR_MISSES)
            .map(|(_, entry, missed)| NearMiss {
                missed,
                request: entry.view(),
            })
            .collect();
        (matched, near)
    }

    /// Matching entries `tenant` may see (`None`: all), newest first.
    pub fn list(&self, filter: &JournalFilter, tenant: Option<&str>) -> Vec<JournalEntry> {
        let visible = self.visible(tenant);
        visible
            .iter()
            .filter(|entry| filter.matches(entry))
            .map(|entry| entry.view())
            .collect()
    }

    /// A page of [`Journal::list`]: the matching entries older than `before` (a `seq`; all
    /// without it), newest first, at most `limit` of them, with how many match in all and,
    /// when older ones remain, the `seq` to ask for them `before`. Only the page's entries
    /// are shown (their bodies redacted), not every match.
    pub fn page(
        &self,
        filter: &JournalFilter,
        tenant: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> (Vec<JournalEntry>, usize, Option<u64>) {
        let visible = self.visible(tenant);
        let matching: Vec<&Arc<Entry>> = visible
            .iter()
            .filter(|entry| filter.matches(entry))
            .collect();
        let mut older = matching
            .iter()
            .filter(|entry| before.is_none_or(|before| entry.seq < before));
        let shown: Vec<JournalEntry> = older
            .by_ref()
            .take(limit)
            .map(|entry| entry.view())
            .collect();
        let next_before = older
            .next()
            .and_then(|_| shown.last().map(|entry| entry.seq));
        (shown, matching.len(), next_before)
    }

    /// How many entries `tenant` may see (`None`: all), and the newest `most` of them
    /// without their headers and bodies: a table of requests (the dashboard's) reads no
    /// body, so none is redacted for it.
    pub fn newest(&self, tenant: Option<&str>, most: usize) -> (usize, Vec<JournalEntry>) {
        let visible = self.visible(tenant);
        let newest = visible
            .iter()
            .take(most)
            .map(|entry| entry.summary())
            .collect();
        (visible.len(), newest)
    }

    /// Forgets the entries `tenant` may see (`None`: all).
    pub fn clear(&self, tenant: Option<&str>) {
        let mut rings = self.rings.lock();
        self.sink.record(|changes| match tenant {
            Some(label) => changes.clear_tenant(Table::Journal, &label.into()),
            None => changes.clear_table(Table::Journal),
        });
        match tenant {
            Some(label) if label != UNTENANTED => rings.remove_ring(&label.into()),
            Some(_) => {}
            None => {
                rings.rings.clear();
                rings.by_bytes.clear();
                rings.strangers.clear();
                rings.bytes = 0;
            }
        }
    }

    /// Forgets the entries `tenant` may see (`None`: all) that `filter` matches; without a
    /// criterion, all of them ([`Journal::clear`]). Entries are matched as a list matches
    /// them, after letting the lock go (a body may be read for it), and forgotten under it
    /// again: one recorded meanwhile stays, and one pushed out meanwhile is gone already.
    pub fn forget(&self, filter: &JournalFilter, tenant: Option<&str>) {
        if *filter == JournalFilter::default() {
            return self.clear(tenant);
        }
        let visible = self.visible(tenant);
        let matched: HashSet<u64> = visible
            .iter()
            .filter(|entry| filter.matches(entry))
            .map(|entry| entry.seq)
            .collect();
        drop(visible);
        if matched.is_empty() {
            return;
        }
        let mut rings = self.rings.lock();
        let forgotten = rings.forget(tenant, &matched);
        if forgotten.is_empty() {
            return;
        }
        self.sink.record(|changes| {
            changes.forget_journal(
                forgotten
                    .into_iter()
                    .map(|(label, seq)| (label, i64::try_from(seq).unwrap_or(i64::MAX)))
                    .collect(),
            );
        });
    }
}

impl Rings {
    /// Drops `label`'s ring whole.
    fn remove_ring(&mut self, label: &Arc<str>) {
        if let Some(ring) = self.rings.remove(label) {
            self.bytes = self.bytes.saturating_sub(ring.bytes + RING_BYTES);
            self.by_bytes.remove(&(ring.bytes, label.clone()));
            self.strangers.remove(&(ring.bytes, label.clone()));
        }
    }

    /// Drops the oldest entry of `label`'s ring (and the ring, once empty).
    fn pop_oldest(&mut self, label: &Arc<str>) {
        let Some(ring) = self.rings.get_mut(label) else {
            return;
        };
        let set = if ring.established {
            &mut self.by_bytes
        } else {
            &mut self.strangers
        };
        set.remove(&(ring.bytes, label.clone()));
        if let Some(old) = ring.entries.pop_front() {
            let size = old.size();
            ring.bytes = ring.bytes.saturating_sub(size);
            self.bytes = self.bytes.saturating_sub(size);
        }
        if ring.entries.is_empty() {
            self.rings.remove(label);
            self.bytes = self.bytes.saturating_sub(RING_BYTES);
        } else {
            set.insert((ring.bytes, label.clone()));
        }
    }

    /// Drops the entries numbered in `matched` from the rings `tenant` may see (`None`:
    /// all), and each ring left empty; the `(label, seq)` of each entry dropped.
    fn forget(&mut self, tenant: Option<&str>, matched: &HashSet<u64>) -> Vec<(Arc<str>, u64)> {
        let labels: Vec<Arc<str>> = match tenant {
            Some(UNTENANTED) => Vec::new(),
            Some(label) => self
                .rings
                .get_key_value(label)
                .map(|(label, _)| label.clone())
                .into_iter()
                .collect(),
            None => self.rings.keys().cloned().collect(),
        };
        let mut forgotten = Vec::new();
        for label in labels {
            let Some(ring) = self.rings.get_mut(&label) else {
                continue;
            };
            let before = ring.bytes;
            let mut freed = 0;
            ring.entries.retain(|entry| {
                let kept = !matched.contains(&entry.seq);
                if !kept {
                    freed += entry.size();
                    forgotten.push((label.clone(), entry.seq));
                }
                kept
            });
            if freed == 0 {
                continue;
            }
            let set = if ring.established {
                &mut self.by_bytes
            } else {
                &mut self.strangers
            };
            set.remove(&(before, label.clone()));
            ring.bytes = before.saturating_sub(freed);
            self.bytes = self.bytes.saturating_sub(freed);
            if ring.entries.is_empty() {
                self.rings.remove(&label);
                self.bytes = self.bytes.saturating_sub(RING_BYTES);
            } else {
                set.insert((ring.bytes, label));
            }
        }
        forgotten
    }

    fn push(&mut self, label: Arc<str>, entry: Entry) {
        let size = entry.size();
        if !self.rings.contains_key(&label) {
            self.bytes += RING_BYTES;
        }
        let ring = self.rings.entry(label.clone()).or_default();
        let was = if ring.established {
            &mut self.by_bytes
        } else {
            &mut self.strangers
        };
        was.remove(&(ring.bytes, label.clone()));
        ring.established |= entry.established;
        ring.bytes += size;
        ring.entries.push_back(Arc::new(entry));
        let set = if ring.established {
            &mut self.by_bytes
        } else {
            &mut self.strangers
        };
        set.insert((ring.bytes, label));
        self.bytes += size;
    }

    /// The entries `tenant` may see (`None`: every ring's), newest first, shared: the
    /// caller reads them after letting the lock go, which every recorded request takes.
    /// The entries `tenant` may see (`None`: all): one ring's newest first, every ring's in
    /// no order ([`Journal::visible`] sorts them once the lock is let go).
    fn gathered(&self, tenant: Option<&str>) -> Vec<Arc<Entry>> {
        match tenant {
            Some(label) if label != UNTENANTED => self
                .rings
                .get(label)
                .map(|ring| ring.entries.iter().rev().cloned().collect())
                .unwrap_or_default(),
            Some(_) => Vec::new(),
            None => self
                .rings
                .values()
                .flat_map(|ring| ring.entries.iter().cloned())
                .collect(),
        }
    }
}

/// What an entry costs besides its text: itself, its allocation, its slot in the ring and its
/// buffer's bookkeeping, counted toward [`JOURNAL_MAX_BYTES`].
const ENTRY_BYTES: usize = 256;

/// The parts of [`Texts`], by their index.
const PATH: usize = 0;
const QUERY: usize = 1;
const REQUEST_HEADERS: usize = 2;
const RESPONSE_HEADERS: usize = 3;
const REQUEST_BODY: usize = 4;
const RESPONSE_BODY: usize = 5;

impl Texts {
    /// `opening`, the response's headers packed after it, then both bodies, in a buffer of
    /// exactly their size.
    fn new<'a>(
        opening: Opening,
        response_headers: impl Iterator<Item = (&'a str, &'a [u8])>,
        request_body: &[u8],
        response_body: &[u8],
    ) -> Texts {
        let mut front = opening.buffer;
        let request_headers_end = end(&front);
        pack(&mut front, response_headers);
        let response_headers_end = end(&front);
        let mut buffer = Vec::with_capacity(front.len() + request_body.len() + response_body.len());
        buffer.extend_from_slice(&front);
        buffer.extend_from_slice(request_body);
        let request_body_end = end(&buffer);
        buffer.extend_from_slice(response_body);
        Texts {
            buffer: buffer.into_boxed_slice(),
            ends: [
                opening.path_end,
                opening.query_end,
                request_headers_end,
                response_headers_end,
                request_body_end,
            ],
        }
    }

    /// Part number `part` ([`PATH`] … [`RESPONSE_BODY`]).
    fn part(&self, part: usize) -> &[u8] {
        let at = |end: u32| usize::try_from(end).unwrap_or(usize::MAX);
        let start = part
            .checked_sub(1)
            .and_then(|before| self.ends.get(before))
            .map_or(0, |end| at(*end));
        let end = self
            .ends
            .get(part)
            .map_or(self.buffer.len(), |end| at(*end));
        self.buffer.get(start..end).unwrap_or_default()
    }

    /// A part that was text when it was given (the path, the query).
    fn text(&self, part: usize) -> &str {
        std::str::from_utf8(self.part(part)).unwrap_or_default()
    }
}

impl Opening {
    /// [`Opening::of`] headers given as `(name, value)` pairs, `count` of them.
    fn of_pairs<'a>(
        path: &str,
        query: &str,
        count: usize,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Opening {
        // Room for the usual request's headers and the response's that [`Texts::new`]
        // adds, so the headers are read once, not once to measure and once to copy; a
        // request with more grows the buffer, which is dropped once the entry is made.
        let room = path.len() + query.len() + (count + RESPONSE_PAIRS) * PAIR_ROOM;
        let mut buffer = Vec::with_capacity(room);
        buffer.extend_from_slice(path.as_bytes());
        let path_end = end(&buffer);
        buffer.extend_from_slice(query.as_bytes());
        let query_end = end(&buffer);
        pack(&mut buffer, headers);
        Opening {
            buffer,
            path_end,
            query_end,
        }
    }
}

/// Room an [`Opening`] sets aside for a header pair: a packed pair's lengths, and a name
/// and value of a usual size.
const PAIR_ROOM: usize = PAIR_PREFIX + 58;

/// Header pairs of a usual response, for the room an [`Opening`] sets aside.
const RESPONSE_PAIRS: usize = 4;

impl Entry {
    /// The entry for `request`, numbered 0 until the journal numbers it.
    fn new(request: Request<'_>) -> Entry {
        let (request_body, request_kept) = keep_body(request.request_body);
        let (response_body, response_kept) = keep_body(request.response_body);
        let texts = Texts::new(
            request.opening,
            pairs_of(request.response_headers),
            &request_body,
            &response_body,
        );
        Entry {
            seq: 0,
            method: request.method,
            status: request.status,
            kept: Kept {
                request: request_kept,
                response: response_kept,
            },
            time: request.time,
            tenant: request.tenant,
            duration_ms: request.duration_ms,
            texts,
            established: request.established,
            request_shown: OnceLock::new(),
        }
    }

    /// Roughly the bytes this entry holds in memory: its text, its method (a client may
    /// send one of any length: 64 KB methods, uncounted, grew the journal far past its
    /// bound) and tenant's label, and what holding it costs ([`ENTRY_BYTES`]).
    pub fn size(&self) -> usize {
        ENTRY_BYTES
            + self.texts.buffer.len()
            + self.method.as_str().len()
            + self.tenant.as_deref().map_or(0, str::len)
    }

    fn path(&self) -> &str {
        self.texts.text(PATH)
    }

    /// The method, the path and the tenant's label as the journal shows them, and as its
    /// filters match them: a filter matched against what is redacted would tell a key one
    /// character at a time (`?path=/partner/links/m2m_live_X*`).
    fn shown_method(&self) -> Cow<'_, str> {
        without_keys(self.method.as_str())
    }

    fn shown_path(&self) -> Cow<'_, str> {
        without_keys(self.path())
    }

    fn shown_tenant(&self) -> Option<Cow<'_, str>> {
        self.tenant.as_deref().map(without_keys)
    }

    fn view(&self) -> JournalEntry {
        JournalEntry {
            request: {
                let (body, body_truncated) = self.request_body();
                JournalMessage {
                    headers: self.request_headers(),
                    body: body.map(Cow::into_owned),
                    body_truncated,
                }
            },
            response: self.message(RESPONSE_HEADERS, RESPONSE_BODY, self.kept.response),
            ..self.summary()
        }
    }

    /// The entry as [`Entry::view`] shows it, without its headers and bodies.
    fn summary(&self) -> JournalEntry {
        let query = self.texts.text(QUERY);
        JournalEntry {
            seq: self.seq,
            method: without_keys(self.method.as_str()).into_owned(),
            // A key sent in the path by mistake (`/partner/links/m2m_test_…`) is redacted
            // as one in the query is.
            path: without_keys(self.path()).into_owned(),
            query: (!query.is_empty()).then(|| redact_query(query)),
            status: self.status,
            dropped: self.status.is_none(),
            time: timefmt::millis(self.time),
            tenant: self
                .tenant
                .as_deref()
                .map(|label| without_keys(label).into_owned()),
            duration_ms: self.duration_ms,
            request: JournalMessage::default(),
            response: JournalMessage::default(),
        }
    }

    /// One side of the exchange as the journal shows it.
    fn message(&self, headers: usize, body: usize, kept: Body) -> JournalMessage {
        let (body, body_truncated) = show(self.texts.part(body), kept);
        JournalMessage {
            headers: show_headers(unpack(self.texts.part(headers))),
            body,
            body_truncated,
        }
    }

    /// An entry as a shared database keeps it ([`Entry::view`]); `None` when it does not
    /// read back.
    fn from_view(shown: JournalEntry) -> Option<Entry> {
        let opening = Opening::of_pairs(
            &shown.path,
            shown.query.as_deref().unwrap_or_default(),
            shown.request.headers.len(),
            shown_pairs(&shown.request),
        );
        let (request_body, request_kept) = shown_body(&shown.request);
        let (response_body, response_kept) = shown_body(&shown.response);
        let texts = Texts::new(
            opening,
            shown_pairs(&shown.response),
            request_body,
            response_body,
        );
        Some(Entry {
            seq: shown.seq,
            method: Method::from_bytes(shown.method.as_bytes()).ok()?,
            // A row written before dropped requests were shown without a status still says
            // the 200 its unsent response held.
            status: shown.status.filter(|_| !shown.dropped),
            kept: Kept {
                request: request_kept,
                response: response_kept,
            },
            time: timefmt::parse(&shown.time)?,
            tenant: shown.tenant.map(Into::into),
            duration_ms: shown.duration_ms,
            texts,
            established: true,
            request_shown: OnceLock::new(),
        })
    }

    /// The request body as the journal shows it (redacted, cut), `""` when there was none.
    fn body(&self) -> Cow<'_, str> {
        self.request_body().0.unwrap_or_default()
    }

    /// The request body as the journal shows it, none when empty, and whether it was cut
    /// ([`show`]): read where it lies once it is known to be shown as sent.
    fn request_body(&self) -> (Option<Cow<'_, str>>, bool) {
        let body = self.texts.part(REQUEST_BODY);
        if body.is_empty() {
            return (None, false);
        }
        if self.kept.request != Body::Raw {
            return (
                Some(String::from_utf8_lossy(body)),
                self.kept.request == Body::Cut,
            );
        }
        let shown = self.request_shown.get_or_init(|| {
            let (shown, cut) = redact_and_cut(body);
            (cut || shown.as_bytes() != body).then(|| (shown.into_boxed_str(), cut))
        });
        match shown {
            // Shown as sent: text (it equalled the text shown), read where it lies.
            None => (Some(String::from_utf8_lossy(body)), false),
            Some((text, cut)) => (Some(Cow::Borrowed(text)), *cut),
        }
    }

    /// The request's headers as the journal shows them.
    fn request_headers(&self) -> BTreeMap<String, String> {
        show_headers(unpack(self.texts.part(REQUEST_HEADERS)))
    }
}

/// A shown message's headers as `(name, value)` pairs.
fn shown_pairs(message: &JournalMessage) -> impl Iterator<Item = (&str, &[u8])> {
    let pairs = message.headers.iter();
    pairs.map(|(name, value)| (name.as_str(), value.as_bytes()))
}

/// A shown message's body, and how an entry keeps it.
fn shown_body(message: &JournalMessage) -> (&[u8], Body) {
    let kept = if message.body_truncated {
        Body::Cut
    } else {
        Body::Shown
    };
    (message.body.as_deref().unwrap_or_default().as_bytes(), kept)
}

/// A body as an entry keeps it: as received, unless it is over `JOURNAL_BODY_LIMIT`, which
/// is redacted and cut at once rather than kept whole.
fn keep_body(body: Option<&[u8]>) -> (Cow<'_, [u8]>, Body) {
    match body {
        Some(body) if body.len() > JOURNAL_BODY_LIMIT => {
            let (shown, cut) = redact_and_cut(body);
            let kept = if cut { Body::Cut } else { Body::Shown };
            (Cow::Owned(shown.into_bytes()), kept)
        }
        body => (Cow::Borrowed(body.unwrap_or_default()), Body::Raw),
    }
}

/// A body as the journal shows it, and whether it was cut: none when empty; as received,
/// redacted and cut; or as it was kept, already shown.
fn show(body: &[u8], kept: Body) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match kept {
        Body::Raw => {
            let (body, cut) = redact_and_cut(body);
            (Some(body), cut)
        }
        Body::Shown | Body::Cut => (
            Some(String::from_utf8_lossy(body).into_owned()),
            kept == Body::Cut,
        ),
    }
}

/// `body` with secrets redacted ([`redact_body`]), then within `JOURNAL_BODY_LIMIT` bytes;
/// and whether it had to be made shorter. A JSON object or array keeps its shape, its long
/// strings shortened ([`shortened_json`]), so that `bodyJson` still finds its other fields
/// (a create carrying a 20 KB `idImage` still shows its `referenceId`); any other body, or
/// one of too many short values, is cut at `JOURNAL_BODY_LIMIT` bytes (on a character's
/// boundary).
///
/// A long body of too many values to read as a tree ([`few_values`]) is redacted as text
/// ([`redact_text`]) as far as it is kept, and cut: text redaction reads text cut short
/// (a string, an array or a part runs to the end), and what it keeps of a body depends
/// only on what comes before, never on what follows.
fn redact_and_cut(body: &[u8]) -> (String, bool) {
    match without_nuls(body) {
        Some(text) => redact_and_cut_utf8(&text),
        None => redact_and_cut_utf8(body),
    }
}

/// A body holding NUL bytes, without them: text sent as UTF-16 or UTF-32 (as .NET's
/// `Encoding.Unicode` sends a string, with or without a byte order mark, whatever its
/// length or its charset parameter says), or holding some such text beside UTF-8 (a
/// multipart form's parts), reads as its ASCII letters, where its secrets are found as in
/// any body. Read byte by byte, `p\0a\0s\0s\0…` named none, and a password and a key
/// showed in clear between the zeros; decoded whole as UTF-16, a body that only began so
/// showed its UTF-8 rest as other characters, readable back. UTF-8 holds no zero byte but
/// NUL's, so its text is kept whole.
fn without_nuls(body: &[u8]) -> Option<Vec<u8>> {
    body.contains(&0)
        .then(|| body.iter().copied().filter(|byte| *byte != 0).collect())
}

/// [`redact_and_cut`] of a body read as UTF-8.
fn redact_and_cut_utf8(body: &[u8]) -> (String, bool) {
    if body.len() > JOURNAL_BODY_LIMIT && !few_values(body) {
        let text = String::from_utf8_lossy(body);
        let mut shown = redact_text(&text[..char_floor(&text, JOURNAL_BODY_LIMIT)]);
        shown.truncate(char_floor(&shown, JOURNAL_BODY_LIMIT));
        return (shown, true);
    }
    let mut body = redact_body(body);
    let cut = body.len() > JOURNAL_BODY_LIMIT;
    if cut && let Some(shortened) = shortened_json(&body) {
        return (shortened, true);
    }
    if cut {
        body.truncate(char_floor(&body, JOURNAL_BODY_LIMIT));
    }
    (body, cut)
}

/// The largest character boundary of `text` at or before `at`.
fn char_floor(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The most values (counted as [`few_values`] counts them) that JSON text may hold and
/// still be read as a tree ([`Value`]) to be redacted or shortened. A tree costs some
/// hundreds of bytes a value (`{"":0},`, seven bytes sent, is a map of its own), so a
/// megabyte of small values would take some 200 MB to read, for a journal that keeps 16 KiB
/// of it; 4,096 of them take about 3 MB.
const MOST_TREE_VALUES: usize = 4096;

/// Whether `text` holds at most [`MOST_TREE_VALUES`] values, counted, from above, as the
/// bytes outside strings that open or separate them (`{`, `[`, `,`, `:`): a note of commas
/// is one value.
fn few_values(text: &[u8]) -> bool {
    !crate::bodies::holds_more_values_than(text, MOST_TREE_VALUES)
}

/// The strings of a body that is too long, each shortened to at most this many characters
/// and a note of what was left out; then, if that is not enough, to [`SHORTEST_STRING`].
const SHORTENED_STRING: usize = 256;
const SHORTEST_STRING: usize = 32;

/// `body`, a JSON object or array over `JOURNAL_BODY_LIMIT`, with its long strings cut short
/// (`"data:image/png;base64,iVBO…[20480 more bytes]"`) so that it fits, still JSON; `None`
/// when it is not JSON or does not fit even so.
fn shortened_json(body: &str) -> Option<String> {
    let json = serde_json::from_str::<Value>(body).ok()?;
    if !json.is_object() && !json.is_array() {
        return None;
    }
    [SHORTENED_STRING, SHORTEST_STRING]
        .into_iter()
        .find_map(|most| {
            let mut json = json.clone();
            shorten_strings(&mut json, most);
            let text = json.to_string();
            (text.len() <= JOURNAL_BODY_LIMIT).then_some(text)
        })
}

fn shorten_strings(value: &mut Value, most: usize) {
    match value {
        Value::String(text) => {
            if let Some((end, _)) = text.char_indices().nth(most) {
                let left_out = text.len() - end;
                text.truncate(end);
                text.push_str(&format!("…[{left_out} more bytes]"));
            }
        }
        Value::Object(fields) => fields
            .values_mut()
            .for_each(|field| shorten_strings(field, most)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| shorten_strings(item, most)),
        _ => {}
    }
}

/// Headers as the journal shows them: secret ones redacted, repeated names joined with
/// `, `, bytes that are not UTF-8 replaced.
fn show_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> BTreeMap<String, String> {
    let mut kept = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        // An M2M key sent as a header's name (`X-m2m_test_…: 1`) is redacted as a value is.
        let name = without_keys(name);
        let name = name.as_ref();
        let value = if is_secret_header(name) {
            REDACTED.to_owned()
        } else {
            // An M2M key in any other header (a client's own `X-Partner-Key`, a `Referer`
            // quoting one percent-encoded) too, and a secret its value holds as a body
            // would (`Referer: …?password=…`, `X-Meta: {"password": …}`).
            let value = String::from_utf8_lossy(value);
            let value = if may_hold_secret(value.as_bytes()) {
                // Read as a string's text too (`Upstream 401: {\"token\": …}`, JSON text
                // a client escaped into the header): shown so when that redacts more.
                // Read so whatever else in it was redacted (a key quoted before it).
                let shown = redact_text(&value);
                let unescaped = json_text(&shown);
                match &unescaped {
                    Cow::Owned(unescaped) => {
                        let shown_unescaped = redact_text(unescaped);
                        if shown_unescaped != *unescaped {
                            Cow::Owned(shown_unescaped)
                        } else {
                            Cow::Owned(shown)
                        }
                    }
                    _ => Cow::Owned(shown),
                }
            } else {
                value
            };
            match without_keys(&value) {
                Cow::Borrowed(_) => value.into_owned(),
                Cow::Owned(shown) => shown,
            }
        };
        kept.entry(name.to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    kept
}

/// Whether a header (its name in lower case) is secret: a credential's, or one named like a
/// secret field (`X-Auth-Token`, `X-Api-Secret`), as the drift report reads them too.
fn is_secret_header(name: &str) -> bool {
    matches!(
        name,
        "x-api-key" | "authorization" | "cookie" | "set-cookie" | "proxy-authorization"
    ) || is_secret_field(name)
}

/// Words that make a JSON field secret, wherever they appear in its name, ignoring case,
/// `_` and `-`: the usual names of passwords (`passwd`, `pwd`, `passphrase`), keys
/// (`apiKey`, `accessKey`, `privateKey`; a bare `key` names too much that is not one) and
/// credentials as well.
const SECRET_WORDS: [&[u8]; 11] = [
    b"password",
    b"passwd",
    b"pwd",
    b"passphrase",
    b"secret",
    b"token",
    b"apikey",
    b"accesskey",
    b"privatekey",
    b"credential",
    b"authorization",
];

fn is_secret_field(name: &str) -> bool {
    contains_secret_word(name.as_bytes())
}

/// Whether `text`, lowercased and without `_` and `-`, contains one of [`SECRET_WORDS`].
fn contains_secret_word(text: &[u8]) -> bool {
    let normalized: Vec<u8> = text
        .iter()
        .filter(|byte| !matches!(byte, b'_' | b'-'))
        .map(u8::to_ascii_lowercase)
        .collect();
    SECRET_WORDS
        .iter()
        .any(|word| normalized.windows(word.len()).any(|window| window == *word))
}

/// The body as text, its secrets redacted: as JSON when it parses as JSON, else as text
/// ([`redact_text`]).
///
/// Recording runs on every request, so a body in which no field name can be secret (no
/// secret word anywhere in it, no `\u` or `%` escape that could spell one, and no M2M
/// key) is kept as sent without being parsed; only the others are parsed, redacted and
/// written back (JSON), or redacted as text ([`redact_text`]).
fn redact_body(body: &[u8]) -> String {
    if !may_hold_secret(body) {
        return String::from_utf8_lossy(body).into_owned();
    }
    match serde_json::from_slice::<Value>(body) {
        // A string sent as the whole body is redacted as a field's would be: JSON text in
        // it within, and any key. A body naming a member twice is read as text: the value
        // parsed keeps only the last of them, and a secret in another would pass unseen.
        Ok(json) if !names_a_member_twice(body) => {
            let mut shown = json.clone();
            redact_json(&mut shown);
            let text = String::from_utf8_lossy(body);
            if shown == json {
                // Nothing to redact: the body as sent, its spacing and order, which a
                // `bodyContains` written from it matches.
                return text.into_owned();
            }
            // Redacted in place where the text redaction reads the body as the JSON one
            // does, so the body keeps its spacing and order; else written out again.
            let in_place = redact_text(&text);
            if serde_json::from_str::<Value>(&in_place).is_ok_and(|read| read == shown) {
                in_place
            } else {
                shown.to_string()
            }
        }
        _ => redact_text(&String::from_utf8_lossy(body)),
    }
}

/// Whether `text` may hold a secret: a secret word anywhere in it, a `\u` or `%` escape
/// that could spell one, or an M2M key. Text without any is kept as it is, unparsed.
fn may_hold_secret(text: &[u8]) -> bool {
    contains_secret_word(text)
        || text.windows(2).any(|pair| pair == b"\\u")
        || text.contains(&b'%')
        || holds_key(text)
}

/// Whether `json` (JSON text) names a member twice in one of its objects.
fn names_a_member_twice(json: &[u8]) -> bool {
    serde_json::from_slice::<Unique>(json).is_err()
}

/// JSON read for its members' names alone: an object naming one twice does not read.
struct Unique;

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("JSON whose objects name each member once")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Unique, A::Error> {
        while items.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut members: A) -> Result<Unique, A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = members.next_key::<String>()? {
            if !names.insert(name) {
                return Err(serde::de::Error::custom("a member named twice"));
            }
            members.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// JSON text (a string's, sent as a value) with its secrets redacted, when it holds any: as
/// JSON when it reads as an object or an array naming each member once, else as text that
/// is not JSON; JSON text after other text in the string, by its members. `None` when
/// nothing in it is redacted.
///
/// JSON text held in a string in JSON text is read to [`JSON_TEXT_LEVELS`] levels: each
/// level reads its text again, and a body of string after string each opening another
/// (`["["["…`, which a string read on past quotes that cannot close it makes of any
/// length) would cost its length times their number, and the stack a frame each.
///
/// Past those levels, text that may hold a secret is not shown at all: `[redacted]`, where
/// it was shown as sent.
fn redacted_json_text(text: &str) -> Option<String> {
    if !may_hold_secret(text.as_bytes()) {
        return None;
    }
    let Some(_level) = JsonTextLevel::enter() else {
        return Some(REDACTED.to_owned());
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('"') {
        // JSON text encoded twice (`JSON.stringify` of a string of JSON text): the string
        // it spells, read again.
        let inner = serde_json::from_str::<String>(trimmed).ok()?;
        let shown = redacted_json_text(&inner)?;
        return serde_json::to_string(&shown).ok();
    }
    if !trimmed.starts_with(['{', '[']) {
        // JSON text after other text (`Upstream 401: {"token": …}`): the JSON value the
        // first `{` opens read as JSON text where it reads, then its secret members read
        // colon by colon.
        let start = text.find('{')?;
        let joined = match json_value_end(&text[start..]) {
            Some(length) => {
                let json = &text[start..start + length];
                match redacted_json_text(json) {
                    Some(shown) => Cow::Owned(format!(
                        "{}{shown}{}",
                        &text[..start],
                        &text[start + length..]
                    )),
                    None => Cow::Borrowed(text),
                }
            }
            None => Cow::Borrowed(text),
        };
        let shown = redact_named(&joined);
        return (shown != text).then(|| shown.into_owned());
    }
    let tree = if few_values(text.as_bytes()) {
        serde_json::from_str::<Value>(text).ok()
    } else {
        None
    };
    let shown = match tree {
        Some(inner) if !(inner.is_object() || inner.is_array()) => return None,
        Some(mut inner) if !names_a_member_twice(text.as_bytes()) => {
            let before = inner.clone();
            redact_json(&mut inner);
            if inner == before {
                return None;
            }
            inner.to_string()
        }
        _ => redact_text(text),
    };
    (shown != text).then_some(shown)
}

/// The length of the JSON object or array `text` starts with, when it reads as one (with
/// few enough values to read whole, [`few_values`]); text may follow it.
fn json_value_end(text: &str) -> Option<usize> {
    if !few_values(text.as_bytes()) {
        return None;
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    Some(values.byte_offset())
}

/// How deep [`redacted_json_text`] reads JSON text held in strings of JSON text.
const JSON_TEXT_LEVELS: u8 = 4;

thread_local! {
    /// The levels of [`redacted_json_text`] this thread is within.
    static JSON_TEXT_LEVEL: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// One level of [`redacted_json_text`], left when dropped.
struct JsonTextLevel;

impl JsonTextLevel {
    /// A level deeper, or `None` past [`JSON_TEXT_LEVELS`].
    fn enter() -> Option<JsonTextLevel> {
        let level = JSON_TEXT_LEVEL.get();
        (level < JSON_TEXT_LEVELS).then(|| {
            JSON_TEXT_LEVEL.set(level + 1);
            JsonTextLevel
        })
    }
}

impl Drop for JsonTextLevel {
    fn drop(&mut self) {
        JSON_TEXT_LEVEL.set(JSON_TEXT_LEVEL.get().saturating_sub(1));
    }
}

/// The query as the journal shows it: a secret parameter's value redacted, as in a body.
fn redact_query(query: &str) -> String {
    if may_hold_secret(query.as_bytes()) {
        redact_text(query)
    } else {
        query.to_owned()
    }
}

/// Text that is not JSON (a form body, JSON cut short or malformed, a query string) with
/// its secrets redacted: the value of each `name=value` pair and each `"name": "value"`
/// member whose name is secret, and every M2M key. A login sent with curl's default form
/// type, or JSON with a trailing comma, is a client bug the journal must not keep a
/// password from.
fn redact_text(text: &str) -> String {
    let text = &redact_multipart(text);
    redact_keys(&redact_named(&redact_members(&redact_pairs(text))))
}

/// Whether `text` reads as JSON text, well formed or not: an object or an array, after
/// white space, a byte order mark (as Windows and .NET clients send), or the `)]}'` line
/// some APIs put before JSON.
fn json_like(text: &str) -> bool {
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let text = text
        .strip_prefix(")]}'")
        .map_or(text, |rest| rest.trim_start_matches([',', '\r', '\n', ' ']));
    text.starts_with(['{', '['])
}

/// `text` with the value of each `name=value` pair whose name is secret redacted
/// ([`redact_pair`]): a form, a query, or a URL or a header's parameters quoted in text.
fn redact_pairs(text: &str) -> String {
    let json_like = json_like(text);
    // One string written pair by pair: a string a pair would cost a body of a million `&`
    // some 50 MB.
    let mut pairs = String::with_capacity(text.len());
    for (index, pair) in text.split('&').enumerate() {
        if index > 0 {
            pairs.push('&');
        }
        redact_pair(pair, json_like, &mut pairs);
    }
    pairs
}

/// One `name=value` pair of text, written to `out` with its value redacted when its name is
/// secret, and any M2M key percent-encoded in it redacted.
///
/// The name is what follows the last character a form's name does not hold as sent (a
/// quote, a brace, a comma, a colon, a `?`, a `;`, a space): in JSON text or a URL the pair
/// is read from there (`"url": "https://x/?password=…"`), and text before it
/// (`{"note":"password","url":"https://x/?q`) names nothing. A secret value in a string of
/// JSON text (`json_like`) ends with the string. A value holding `;name=…` with a secret
/// name (`a=1;password=…`, as older forms separate pairs) is redacted from there: splitting
/// pairs at every `;` would show the rest of a password holding one.
fn redact_pair(pair: &str, json_like: bool, out: &mut String) {
    let Some((name, value)) = pair.split_once('=') else {
        // Text of no pair (a header's value, a query's bare word, a message): each word
        // percent-encoded is read decoded, as a pair's value is, so a URL quoted encoded
        // (`https%3A%2F%2Fx%2F%3Ftoken%3D…`) shows `token%3D%5Bredacted%5D`. (JSON text's
        // strings are read so where they are read as strings; a word of it holding no quote,
        // outside them or in text only opening as JSON does, is read as here.)
        out.push_str(&shown_text(pair, json_like));
        return;
    };
    // `password = …`: spaces around the `=` do not hide the name.
    let trimmed = name.trim_end();
    let bare = match trimmed.rfind(ends_a_name) {
        Some(at) => &trimmed[at + 1..],
        None => trimmed,
    };
    // In JSON text, a secret value in a string ends with the string: at its first quote
    // that no backslash escapes.
    // In other text, at the end of its line: a `text/plain` form's or an `.env` file's
    // next line is a pair of its own.
    let value_end = |value: &str| {
        if json_like {
            string_end(value.as_bytes(), 0)
        } else {
            value.find(['\r', '\n']).unwrap_or(value.len())
        }
    };
    // Text before the name (a message, a header's value, a bare word of a query) may hold a
    // percent-encoded word as text of no pair does: read decoded as there, whatever `=`
    // comes after it on the line.
    out.push_str(&shown_text(name, json_like));
    out.push('=');
    let mut rest = value;
    if is_secret_field(&decoded_name(bare)) {
        out.push_str(REDACTED);
        rest = &value[value_end(value)..];
    }
    // What follows, read for further secret pairs and keys, each part once.
    while let Some(from) = secret_pair_in(rest) {
        out.push_str(&without_keys(&rest[..from]));
        out.push_str(REDACTED);
        rest = &rest[from + value_end(&rest[from..])..];
    }
    if json_like {
        // In JSON text, the value ends with its string.
        let end = string_end(rest.as_bytes(), 0).min(rest.len());
        out.push_str(&shown_value(&rest[..end]));
        out.push_str(&without_keys(&rest[end..]));
    } else {
        // Line by line: a `text/plain` form's or an `.env` file's lines, a multipart part's,
        // are each their own, and re-encoding one's secret re-encoded every line after it
        // (then no search for their text found them).
        for line in rest.split_inclusive('\n') {
            let text = line.trim_end_matches(['\r', '\n']);
            out.push_str(&shown_value(text));
            out.push_str(&line[text.len()..]);
        }
    }
}

/// What [`shown_value`] leaves as sent when it encodes a value again: the characters a URL
/// never needs to encode.
const VALUE_AS_SENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A pair's value as shown: its M2M keys redacted, and, where it is percent-encoded, the
/// secrets it spells once decoded (a `redirect_uri` of `https%3A%2F%2Fx%2F%3Ftoken%3D…`, a
/// `state` of `%7B%22token%22%3A…%7D`) redacted and the value encoded again. Decoded
/// values are read to the levels JSON text is ([`JsonTextLevel`]): one encoded past them
/// that may hold a secret is not shown at all.
fn shown_value(value: &str) -> Cow<'_, str> {
    let keyless = without_keys(value);
    if !keyless.contains('%') {
        return keyless;
    }
    // What is left once its keys are redacted is read decoded all the same: a key joined to
    // an encoded URL (`m2m_test_…/https%3A…%3Ftoken%3D…`) hid the URL's token.
    let redacted = {
        let decoded = decoded_name(&keyless);
        // Nothing decoded (`100%`), or nothing that could spell a secret.
        if *decoded == *keyless || !may_hold_secret(decoded.as_bytes()) {
            Shown::AsIs
        } else if let Some(_level) = JsonTextLevel::enter() {
            let mut redacted =
                redacted_json_text(&decoded).unwrap_or_else(|| redact_text(&decoded));
            if redacted == *decoded && decoded.contains('%') {
                // Encoded more than once: decoded again.
                redacted = shown_value(&decoded).into_owned();
            }
            if redacted == *decoded {
                Shown::AsIs
            } else {
                Shown::Rewritten(redacted)
            }
        } else {
            Shown::Hidden
        }
    };
    match redacted {
        Shown::AsIs => keyless,
        Shown::Hidden => Cow::Borrowed(REDACTED),
        Shown::Rewritten(redacted) => {
            Cow::Owned(percent_encoding::utf8_percent_encode(&redacted, VALUE_AS_SENT).to_string())
        }
    }
}

/// What [`shown_value`] makes of a percent-encoded value.
enum Shown {
    /// Shown as it was (its keys redacted).
    AsIs,
    /// Encoded deeper than is read: hidden whole.
    Hidden,
    /// Its secrets redacted, decoded: encoded again to be shown.
    Rewritten(String),
}

/// A character that ends the text before a pair's name: no form's name holds one as sent.
fn ends_a_name(c: char) -> bool {
    matches!(c, '"' | '{' | '}' | ',' | ':' | '?' | ';') || c.is_whitespace()
}

/// Where the value of the first pair with a secret name begins inside `value`, another
/// pair's value (`a=1;password=…`, `user=a password=…`, `username="u", password="…"`, a
/// URL's `https://x/?token=…`, a `text/plain` form's or an `.env` file's lines): a name
/// after a `;`, a `,`, white space or a `?`, up to its `=`. Each byte is read once: the
/// name after each separator is read only to the next separator or `=`.
fn secret_pair_in(value: &str) -> Option<usize> {
    // A `+` is a form's space.
    // Any white space, a vertical tab and those beyond ASCII (a no-break space, U+2028)
    // too: a byte of a character beyond ASCII never starts a name a secret word spells.
    let separates = |byte: &u8| {
        matches!(byte, b';' | b',' | b'?' | b'+' | 0x0b)
            || byte.is_ascii_whitespace()
            || *byte >= 0x80
    };
    let space = |byte: &u8| matches!(byte, b' ' | b'\t' | b'+');
    let bytes = value.as_bytes();
    let mut at = 0;
    while let Some(separator) = bytes[at..].iter().position(separates).map(|i| at + i) {
        // Spaces after the separator and around the `=` do not hide the name.
        let mut start = separator + 1;
        while bytes.get(start).is_some_and(space) {
            start += 1;
        }
        let end = bytes[start..]
            .iter()
            .position(|byte| separates(byte) || *byte == b'=')
            .map_or(bytes.len(), |i| start + i);
        let mut equals = end;
        while bytes.get(equals).is_some_and(space) {
            equals += 1;
        }
        if end > start
            && bytes.get(equals) == Some(&b'=')
            && is_secret_field(&decoded_name(&value[start..end]))
        {
            return Some(equals + 1);
        }
        at = end;
    }
    None
}

/// `text` with the value of each `"name": …` member whose name is secret redacted, in text
/// that need not parse as JSON: a string value to its closing quote (or the end, cut
/// short), an array or an object to the bracket that closes it, anything else to the next
/// `,`, `}` or `]`. A name is read with its escapes (`"pass\u0077ord"`). Each colon is read
/// on its own, so no walk from the start that malformed text put out of step (`"C:\"`, a
/// quote escaped by mistake) can hide a member: its name is found by looking back from it
/// to the unescaped quote before, never past the one that closed the name before it, so
/// the pass is linear.
fn redact_named(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let (mut copied, mut at) = (0, 0);
    while let Some(colon) = bytes[at..].iter().position(|b| *b == b':').map(|i| at + i) {
        at = colon + 1;
        let mut end = colon;
        while end > copied && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        if end <= copied {
            continue;
        }
        // A name's closing quote is not escaped; the look back from one stops at the quote
        // before it, so no byte is looked back over for two colons. A name in single quotes
        // (a Python dict's text) or none (a JavaScript object's, `password: …` in a
        // message) is looked back over at most 256 bytes.
        let close = end - 1;
        // A name in double quotes is JSON's, whose value the mark replaces as a string.
        let json_name = bytes[close] == b'"';
        let name = match bytes[close] {
            quote @ (b'"' | b'\'') if !escaped(bytes, close) => {
                let from = if quote == b'"' {
                    copied
                } else {
                    copied.max(close.saturating_sub(256))
                };
                let Some(open) = (from..close)
                    .rev()
                    .find(|&i| bytes[i] == quote && !escaped(bytes, i))
                else {
                    continue;
                };
                if quote == b'"' {
                    json_text(&text[open + 1..close])
                } else {
                    Cow::Borrowed(&text[open + 1..close])
                }
            }
            byte if is_bare_name_byte(byte) => {
                let floor = copied.max(end.saturating_sub(256));
                let open = (floor..end)
                    .rev()
                    .take_while(|&i| is_bare_name_byte(bytes[i]))
                    .last()
                    .unwrap_or(end);
                Cow::Borrowed(&text[open..end])
            }
            _ => continue,
        };
        if !is_secret_field(&name) {
            continue;
        }
        let mut start = colon + 1;
        while bytes.get(start).is_some_and(u8::is_ascii_whitespace) {
            start += 1;
        }
        let quoted_mark = if json_name {
            format!("\"{REDACTED}\"")
        } else {
            REDACTED.to_owned()
        };
        let (from, to, mark) = match bytes.get(start) {
            None => continue,
            Some(b'"') => (start + 1, closing_quote(bytes, start + 1), REDACTED),
            Some(b'\'') => (start + 1, quote_end(bytes, start + 1, b'\''), REDACTED),
            Some(b'{' | b'[') => (start, container_end(bytes, start), quoted_mark.as_str()),
            Some(_) => {
                let end = bytes[start..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b'\n' | b'\r'))
                    .map_or(bytes.len(), |i| start + i);
                (
                    start,
                    start + text[start..end].trim_end().len(),
                    quoted_mark.as_str(),
                )
            }
        };
        at = at.max(to);
        if text[from..to] == *mark {
            continue;
        }
        out.push_str(&text[copied..from]);
        out.push_str(mark);
        copied = to;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether the byte at `at` is escaped: an odd run of `\` before it (at most 64 looked at).
/// A byte of a name given without quotes before a colon (`password: …`).
fn is_bare_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'$')
}

fn escaped(bytes: &[u8], at: usize) -> bool {
    bytes[at.saturating_sub(64)..at]
        .iter()
        .rev()
        .take_while(|byte| **byte == b'\\')
        .count()
        % 2
        == 1
}

/// `text` with the content of each part of a `multipart/form-data` body whose name is
/// secret (`Content-Disposition: form-data; name="password"`, in any case, the name quoted
/// or not, percent-encoded or not, `name = "…"` with spaces, or RFC 7578's `name*=`) redacted, to the body's next boundary line or the end;
/// lines may end in CRLF or LF.
fn redact_multipart(text: &str) -> Cow<'_, str> {
    // ASCII case folding keeps every byte where it is.
    let lower = text.to_ascii_lowercase();
    if !lower.contains("form-data") {
        return Cow::Borrowed(text);
    }
    // The body's own delimiter (`--` and the boundary) ends a part where a whole line is
    // it: the first line starting `--` that a part's header follows, or else the first
    // line starting `--` (a preamble may hold one too); text without one falls back to any
    // line starting `--`.
    let opens_part = |line: &str| line.starts_with("--");
    let mut lines = text.lines().peekable();
    let mut first = None;
    let mut headed = None;
    while let Some(line) = lines.next() {
        if !opens_part(line) {
            continue;
        }
        first.get_or_insert(line);
        let next = lines.peek().map(|next| next.get(..8).unwrap_or(next));
        if next.is_some_and(|next| next.eq_ignore_ascii_case("content-")) {
            headed = Some(line);
            break;
        }
    }
    let delimiter = headed
        .or(first)
        .map(|line| format!("\n{}", line.trim_end()))
        .filter(|delimiter| delimiter.len() > "\n--".len())
        .unwrap_or_else(|| "\n--".to_owned());
    let whole_line = delimiter.len() > "\n--".len();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = lower[at..].find("name").map(|i| at + i) {
        at = found + "name".len();
        // `name`, not `filename`; then `=`, or RFC 7578's `*=` (an RFC 5987 value), with
        // spaces around either.
        if !lower[..found].ends_with([' ', ';', '\t']) {
            continue;
        }
        let rest = text[at..].trim_start_matches([' ', '\t']);
        let extended = rest.starts_with('*');
        let rest = rest.trim_start_matches('*').trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        at = text.len() - rest.trim_start_matches([' ', '\t']).len();
        let quoted = text[at..].starts_with('"');
        let start = at + usize::from(quoted);
        let end = text[start..]
            .find(|c: char| {
                if quoted {
                    c == '"'
                } else {
                    matches!(c, ';' | '\r' | '\n' | ' ')
                }
            })
            .map_or(text.len(), |i| start + i);
        at = end;
        let name = &text[start..end];
        // An extended name is `charset'language'` and the name percent-encoded.
        let name = match name.rsplit_once('\'') {
            Some((_, encoded)) if extended => encoded,
            _ => name,
        };
        // A browser percent-encodes some characters of a part's name.
        let secret =
            is_secret_field(name) || (name.contains('%') && is_secret_field(&decoded_name(name)));
        if !secret {
            continue;
        }
        // Each search stops at its first match: one that ran to the end of the text for
        // each part made a body of many parts cost its size squared.
        let Some(content) = blank_line_end(text, end) else {
            break;
        };
        let content_end =
            delimiter_line(text, content, &delimiter, whole_line).map_or(text.len(), |at| {
                if text[..at].ends_with('\r') {
                    at - 1
                } else {
                    at
                }
            });
        out.push_str(&text[copied..content]);
        out.push_str(REDACTED);
        (copied, at) = (content_end, content_end);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where the first line at or after `from` that is `delimiter` (a `\n` and the line) starts
/// (its `\n`): with `whole_line`, a line that is the delimiter and nothing more but a
/// closing `--` and spaces, as RFC 2046 has it; else any line starting so.
fn delimiter_line(text: &str, from: usize, delimiter: &str, whole_line: bool) -> Option<usize> {
    let mut at = from;
    while let Some(found) = text[at..].find(delimiter).map(|i| at + i) {
        let rest = &text[found + delimiter.len()..];
        let rest = rest.strip_prefix("--").unwrap_or(rest);
        let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
        if !whole_line || line.trim().is_empty() {
            return Some(found);
        }
        at = found + delimiter.len();
    }
    None
}

/// Where the first blank line at or after `from` ends (LF or CRLF line endings): where a
/// multipart part's headers end and its content begins.
fn blank_line_end(text: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(line_end) = text[at..].find('\n').map(|i| at + i) {
        let next = &text[line_end + 1..];
        if next.starts_with('\n') {
            return Some(line_end + 2);
        }
        if next.starts_with("\r\n") {
            return Some(line_end + 3);
        }
        at = line_end + 1;
    }
    None
}

/// `text` with each string that spells an M2M key only through `\u` escapes redacted, and
/// each string holding JSON text redacted within ([`redacted_json_text`]), in text that
/// need not parse as JSON (a string cut short runs to the end). Secret members are
/// [`redact_named`]'s, read colon by colon.
///
/// A stray quote in a hand-built body (`"note": "5" screen"`) would put every later name
/// and value out of step, so a string is read on past a quote that cannot close it: one
/// followed by anything but `:`, `,`, `}`, `]` or another string (or the end) is taken as
/// part of the string, and the walk stays in step with the members after it.
fn redact_members(text: &str) -> String {
    let json_like = json_like(text);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    // Replaces `text[from..to]` with `mark`.
    let redact = |out: &mut String, copied: &mut usize, from: usize, to: usize, mark: &str| {
        out.push_str(&text[*copied..from]);
        out.push_str(mark);
        *copied = to;
    };
    while let Some(open) = bytes[at..].iter().position(|b| *b == b'"').map(|i| at + i) {
        let close = closing_quote(bytes, open + 1);
        let literal = &text[open + 1..close];
        let mut next = close + 1;
        while bytes.get(next).is_some_and(u8::is_ascii_whitespace) {
            next += 1;
        }
        if bytes.get(next) != Some(&b':') {
            // A value (an array's item, a string sent as the whole text): a key spelled
            // with escapes, or JSON text held in it.
            if spells_key_escaped(literal) {
                redact(&mut out, &mut copied, open + 1, close, REDACTED);
            } else if let Some(shown) = redacted_literal(literal, json_like) {
                redact(&mut out, &mut copied, open + 1, close, &shown);
            }
            at = next.min(bytes.len());
            continue;
        }
        next += 1;
        while bytes.get(next).is_some_and(u8::is_ascii_whitespace) {
            next += 1;
        }
        if spells_key_escaped(literal) {
            redact(&mut out, &mut copied, open + 1, close, REDACTED);
        }
        if bytes.get(next) == Some(&b'"') {
            let value_end = closing_quote(bytes, next + 1);
            let value = &text[next + 1..value_end];
            if spells_key_escaped(value) {
                redact(&mut out, &mut copied, next + 1, value_end, REDACTED);
            } else if let Some(shown) = redacted_literal(value, json_like) {
                redact(&mut out, &mut copied, next + 1, value_end, &shown);
            }
            at = (value_end + 1).min(bytes.len());
        } else {
            at = next.min(bytes.len());
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The index of the quote that closes the string whose text starts at `from`, read on past
/// any quote that cannot close one (see [`redact_members`]), or the text's length.
fn closing_quote(bytes: &[u8], from: usize) -> usize {
    let mut close = string_end(bytes, from);
    loop {
        let mut next = close + 1;
        while bytes.get(next).is_some_and(u8::is_ascii_whitespace) {
            next += 1;
        }
        match bytes.get(next) {
            // A string straight after is the next member, a comma left out.
            None | Some(b':' | b',' | b'}' | b']' | b'"') => return close.min(bytes.len()),
            Some(_) if close < bytes.len() => close = string_end(bytes, close + 1),
            Some(_) => return bytes.len(),
        }
    }
}

/// The index just past the `]` or `}` closing the array or object that opens at `from`,
/// past the strings within, or the text's length when it is not closed.
fn container_end(bytes: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut at = from;
    while let Some(byte) = bytes.get(at) {
        match byte {
            b'"' => at = string_end(bytes, at + 1),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

/// A JSON string's text (between its quotes) with its escapes read. Where they do not all
/// read (a quote escaped by mistake, `C:\Users`, `it\'s`, a control character sent as is,
/// a string cut short), each that does is read and every other kept as sent: JSON text in
/// such a string, or a secret name, is still read as such.
fn json_text(literal: &str) -> Cow<'_, str> {
    if !literal.contains('\\') {
        return Cow::Borrowed(literal);
    }
    if let Ok(text) = serde_json::from_str::<String>(&format!("\"{literal}\"")) {
        return Cow::Owned(text);
    }
    let mut out = String::with_capacity(literal.len());
    let mut rest = literal;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let read = match escape.as_bytes().get(1) {
            Some(b'"') => Some(('"', 2)),
            Some(b'\\') => Some(('\\', 2)),
            Some(b'/') => Some(('/', 2)),
            Some(b'b') => Some(('\u{8}', 2)),
            Some(b'f') => Some(('\u{c}', 2)),
            Some(b'n') => Some(('\n', 2)),
            Some(b'r') => Some(('\r', 2)),
            Some(b't') => Some(('\t', 2)),
            Some(b'u') => escape
                .get(2..6)
                .filter(|hex| hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .and_then(char::from_u32)
                .map(|read| (read, 6)),
            _ => None,
        };
        match read {
            Some((read, length)) => {
                out.push(read);
                rest = &escape[length..];
            }
            None => {
                out.push('\\');
                rest = &escape[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether a JSON string's text spells an M2M key only once its `\u` escapes are read
/// (`m2m\u005ftest_…`); one spelled as sent is left to [`redact_keys`].
fn spells_key_escaped(literal: &str) -> bool {
    literal.contains("\\u") && holds_key(json_text(literal).as_bytes())
}

/// A JSON string's text (between its quotes) in text that is not JSON, its value shown as
/// a JSON body's string's is ([`redacted_string`]: JSON text in it, a message, pairs, an
/// encoded URL), written back as a string's text; `None` when nothing in it is redacted.
/// In text that is not JSON text (`json_like`), where quotes need not close a JSON string
/// (a multipart form's `name="…"` and the part after it), only JSON text in one is read.
/// Read to the levels JSON text is ([`JsonTextLevel`]).
fn redacted_literal(literal: &str, json_like: bool) -> Option<String> {
    if !may_hold_secret(literal.as_bytes()) || !(json_like || literal.contains(['{', '['])) {
        return None;
    }
    // A level of its own where no JSON text in it counts one (a string in the string, and
    // one in that, each read again).
    let _level = if literal.contains(['{', '[']) {
        None
    } else {
        let Some(level) = JsonTextLevel::enter() else {
            return Some(REDACTED.to_owned());
        };
        Some(level)
    };
    let text = json_text(literal);
    let shown = if json_like {
        redacted_string(&text)?
    } else {
        redacted_json_text(&text)?
    };
    let quoted = serde_json::to_string(&shown).ok()?;
    Some(quoted[1..quoted.len() - 1].to_owned())
}

/// The index of the `"` closing a JSON string whose text starts at `from` (past a `\`
/// escape), or the text's length when it is not closed.
fn string_end(bytes: &[u8], from: usize) -> usize {
    quote_end(bytes, from, b'"')
}

/// The index of the first `quote` from `from` that no backslash escapes, or the text's
/// length: where a string in `"` (JSON's) or in `'` (a Python dict's text) closes.
fn quote_end(bytes: &[u8], from: usize, quote: u8) -> usize {
    let mut at = from;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'\\' {
            at += 2;
        } else if byte == quote {
            return at;
        } else {
            at += 1;
        }
    }
    bytes.len()
}

/// `value`, found in an answer at `pointer` (a JSON pointer, or a header's name), with its
/// secrets redacted as the journal shows them: whole when the pointer names a secret field
/// or header (`/webhookSecret`, `/id_token`, `set-cookie`), else each secret field within.
/// For reports that quote answers, such as the drift report's examples.
pub fn redact_at(pointer: &str, mut value: Value) -> Value {
    let names_secret = pointer
        .split(['/', ':', ' '])
        .any(|segment| is_secret_field(segment) || is_secret_header(&segment.to_ascii_lowercase()));
    if names_secret && !value.is_null() {
        return Value::String(REDACTED.to_owned());
    }
    redact_json(&mut value);
    value
}

fn redact_json(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if is_secret_field(name) {
                    redact_leaves(field);
                } else {
                    redact_json(field);
                }
            }
            // An M2M key used as a field's name is redacted too.
            if fields.keys().any(|name| holds_key(name.as_bytes())) {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(name, field)| {
                        if holds_key(name.as_bytes()) {
                            (redact_keys(&name), field)
                        } else {
                            (name, field)
                        }
                    })
                    .collect();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::String(text) => {
            if let Some(shown) = redacted_string(text) {
                *text = shown;
            }
        }
        _ => {}
    }
}

/// A JSON string's value as the journal shows it, wherever the string is (a JSON body's, or
/// one in text that is not JSON); `None` when nothing in it is redacted.
fn redacted_string(text: &str) -> Option<String> {
    if !may_hold_secret(text.as_bytes()) {
        return None;
    }
    // An object sent as JSON text (a `metadata` string holding `{"clientSecret": …}`) is
    // redacted within, and stays text; JSON text that does not parse is redacted as a body
    // that does not is.
    let mut shown = match redacted_json_text(text) {
        // Pairs around JSON text after other text (`token=… {"a": 1}`) too.
        Some(shown) if shown.contains('=') => redact_pairs(&shown),
        Some(shown) => shown,
        // Any other text is read as a body that is not JSON is: a message (`login failed,
        // password: …`), JSON text after other text however deep, pairs with spaces around
        // their `=`, a URL's or a form's secret parameter (`https://x/?token=…`).
        None => redact_text(text),
    };
    // JSON text after other text whose quotes are escaped once more than the string's own
    // (`Upstream 401: {\"token\": …}`, or `\u0022` as .NET writes them), read with those
    // escapes read, whatever else in the string was redacted.
    if escaped_json_after_text(&shown)
        && let Some(_level) = JsonTextLevel::enter()
        && let Some(redacted) = redacted_string(&json_text(&shown))
    {
        let quoted = serde_json::to_string(&redacted).ok()?;
        shown = quoted[1..quoted.len() - 1].to_owned();
    }
    // A word percent-encoded (`"redirect_uri": "https%3A%2F%2Fx%2F%3Ftoken%3D…"`, or such a
    // URL quoted in a message), read decoded.
    let shown = match shown_words(&shown) {
        Cow::Owned(words) => words,
        Cow::Borrowed(_) => shown,
    };
    // An M2M key is redacted wherever it is, as sent, or percent-encoded in a path or a
    // query the value quotes ("Cannot PUT /partner/links/m2m%5Ftest%5F…").
    let shown = match without_keys(&shown) {
        Cow::Owned(keyless) => keyless,
        Cow::Borrowed(_) => shown,
    };
    (shown != text).then_some(shown)
}

/// Whether the first JSON object in `text` has its quotes escaped once more than `text`'s
/// own (`{\"token\": …}`, `{\u0022token\u0022: …}`): JSON text escaped into a message.
/// Never so for JSON text whose first object reads as it is (a string in it may hold such
/// text, read as that string's own).
fn escaped_json_after_text(text: &str) -> bool {
    text.find('{').is_some_and(|at| {
        let inside = text[at + 1..].trim_start();
        inside.starts_with("\\\"") || inside.starts_with("\\u0022")
    })
}

/// Text of no pair's value ([`redact_pair`]): its keys redacted, and each word in it that
/// is percent-encoded read decoded ([`shown_words`]); in JSON-like text, only words holding
/// no quote (a JSON string's word is read where the string is).
fn shown_text(text: &str, json_like: bool) -> Cow<'_, str> {
    if !text.contains('%') {
        return without_keys(text);
    }
    if !json_like {
        return shown_words(text);
    }
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(|c: char| c.is_ascii_whitespace()) {
        if piece.contains('"') {
            out.push_str(&without_keys(piece));
        } else {
            out.push_str(&shown_words(piece));
        }
    }
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// `text` with each word in it (between white space) that is percent-encoded shown as
/// [`shown_value`] shows a pair's value.
fn shown_words(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for piece in text.split_inclusive(|c: char| c.is_ascii_whitespace()) {
        let (word, space) = piece.split_at(
            piece
                .trim_end_matches(|c: char| c.is_ascii_whitespace())
                .len(),
        );
        let shown = shown_value(word);
        changed |= shown != word;
        out.push_str(&shown);
        out.push_str(space);
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// A secret field's value redacted: a value in it, or each in an array or object it holds
/// (`"deviceTokens": ["…", "…"]`), which keep their shape.
fn redact_leaves(value: &mut Value) {
    match value {
        Value::Object(fields) => fields.values_mut().for_each(redact_leaves),
        Value::Array(items) => items.iter_mut().for_each(redact_leaves),
        leaf => *leaf = Value::String(REDACTED.to_owned()),
    }
}

/// Whether `actual` contains `expected`: every field of an expected object, recursively;
/// arrays element by element, of the same length; anything else equal.
pub fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected.iter().all(|(name, want)| {
            actual
                .get(name)
                .is_some_and(|have| json_contains(have, want))
        }),
        (Value::Array(actual), Value::Array(expected)) => {
            actual.len() == expected.len()
                && actual
                    .iter()
                    .zip(expected)
                    .all(|(have, want)| json_contains(have, want))
        }
        _ => actual == expected,
    }
}

impl Expectation {
    /// The criteria `entry` fails, by their field names.
    fn missed(&self, entry: &Entry) -> Vec<String> {
        let mut missed = Vec::new();
        if self
            .method
            .as_deref()
            .is_some_and(|method| !entry.shown_method().eq_ignore_ascii_case(method))
        {
            missed.push("method".to_owned());
        }
        if self
            .path
            .as_deref()
            .is_some_and(|pattern| !path_matches(pattern, &entry.shown_path()))
        {
            missed.push("path".to_owned());
        }
        if self
            .body_contains
            .as_deref()
            .is_some_and(|text| !entry.body().contains(text))
        {
            missed.push("bodyContains".to_owned());
        }
        if let Some(expected) = &self.body_json {
            let holds = serde_json::from_str::<Value>(&entry.body())
                .is_ok_and(|actual| json_contains(&actual, expected));
            if !holds {
                missed.push("bodyJson".to_owned());
            }
        }
        missed
    }
}

/// Whether `path` matches `pattern`: exactly, or by prefix when the pattern ends with `*`.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

impl JournalFilter {
    fn matches(&self, entry: &Entry) -> bool {
        self.method
            .as_deref()
            .is_none_or(|method| entry.shown_method().eq_ignore_ascii_case(method))
            && self
                .path
                .as_deref()
                .is_none_or(|pattern| path_matches(pattern, &entry.shown_path()))
            // A dropped request was answered no status: no status filter matches it.
            && self.status.as_deref().is_none_or(|status| {
                entry.status.is_some_and(|code| {
                    let code = code.to_string();
                    match status.strip_suffix("xx") {
                        Some(class) => code.starts_with(class),
                        None => code == status,
                    }
                })
            })
            && self
                .body_contains
                .as_deref()
                .is_none_or(|text| entry.body().contains(text))
            && self.header.as_ref().is_none_or(|(name, value)| {
                entry
                    .request_headers()
                    .get(name)
                    .is_some_and(|have| have == value || have.split(", ").any(|one| one == value))
            })
            && self
                .tenant
                .as_deref()
                .is_none_or(|tenant| entry.shown_tenant().as_deref() == Some(tenant))
            && self.since.is_none_or(|since| entry.time >= since)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    static NO_HEADERS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);

    /// A `GET path` answered `status`, for `tenant`.
    pub(crate) fn request(path: &str, status: u16, tenant: Option<&str>) -> Request<'static> {
        Request {
            method: Method::GET,
            opening: Opening::of(path, "", &NO_HEADERS),
            status: Some(status),
            time: datetime!(2026-02-10 12:00 UTC),
            tenant: tenant.map(Into::into),
            established: true,
            duration_ms: 1,
            request_body: None,
            response_headers: &NO_HEADERS,
            response_body: None,
        }
    }

    fn with_body<'a>(path: &str, body: &'a str) -> Request<'a> {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "m2m_test_secret".parse().expect("value"));
        headers.insert("content-type", "application/json".parse().expect("value"));
        Request {
            method: Method::POST,
            opening: Opening::of(path, "", &headers),
            request_body: Some(body.as_bytes()),
            ..request(path, 201, Some("pa"))
        }
    }

    /// One side of an exchange as the journal shows it.
    fn message(headers: &HeaderMap, body: Option<&[u8]>) -> JournalMessage {
        let (body, body_truncated) = show(body.unwrap_or_default(), Body::Raw);
        JournalMessage {
            headers: show_headers(pairs_of(headers)),
            body,
            body_truncated,
        }
    }

    /// A body sent as UTF-16 or UTF-32, with a byte order mark or without, of odd length,
    /// or only in part (a multipart form's file beside UTF-8 parts), shows its ASCII text
    /// with its secrets redacted; a body of UTF-8 text keeps every byte.
    #[test]
    fn text_sent_as_utf16_or_utf32_is_read_for_its_secrets() {
        let key = "m2m_test_cccccccccccccccccccccccccccccccc";
        let json = format!(r#"{{"referenceId":"r","password":"hunter2","note":"{key}"}}"#);
        let utf16 = |little: bool, text: &str| -> Vec<u8> {
            text.encode_utf16()
                .flat_map(|unit| {
                    if little {
                        unit.to_le_bytes()
                    } else {
                        unit.to_be_bytes()
                    }
                })
                .collect()
        };
        let utf32: Vec<u8> = json
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        let with_mark: Vec<u8> = [0xff, 0xfe].into_iter().chain(utf16(true, &json)).collect();
        let odd: Vec<u8> = utf16(true, &json).into_iter().chain([b'\n']).collect();
        for body in [
            utf16(true, &json),
            utf16(false, &json),
            with_mark,
            odd,
            utf32,
        ] {
            let (shown, cut) = redact_and_cut(&body);
            assert!(!cut);
            let plain = shown.replace('\0', "");
            assert!(
                !plain.contains("hunter2") && !plain.contains(key),
                "{shown}"
            );
            assert!(shown.contains(r#""referenceId":"r""#), "{shown}");
        }
        // A multipart form whose first part is a UTF-16 file and whose others are UTF-8.
        let mut mixed = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".to_vec();
        mixed.extend(utf16(true, &"Notepad text. ".repeat(40)));
        mixed.extend(
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nmy key is \
              m2m_test_7kJYAeC9KMn6I1f2lcwzNUZTvo4gOx6n\r\n--XyZ--\r\n",
        );
        let (shown, _) = redact_and_cut(&mixed);
        assert!(
            !shown.contains("hunter2") && !shown.contains("m2m_test_7kJ"),
            "{shown}"
        );
        assert!(shown.contains("Notepad text."), "{shown}");
        let form: Vec<u8> = utf16(true, "user=qa&password=hunter2");
        assert_eq!(redact_and_cut(&form).0, "user=qa&password=[redacted]");
        assert_eq!(without_nuls("plain UTF-8 — ünïcode".as_bytes()), None);
    }

    /// A percent-encoded URL or JSON text outside any pair (a header's value, a query's bare
    /// word, a line of text) is read decoded, as a pair's value is.
    #[test]
    fn an_encoded_secret_outside_any_pair_is_read_decoded() {
        for text in [
            "https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX",
            "redirect to https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX now",
            "%7B%22token%22%3A%22Zq7hunterX%22%7D",
        ] {
            let shown = redact_text(text);
            assert!(!shown.contains("Zq7hunterX"), "{text}: {shown}");
            assert!(shown.contains("%5Bredacted%5D"), "{text}: {shown}");
        }
        assert_eq!(redact_text("100%25 done"), "100%25 done");
        // A line's encoded secret is redacted in its line, the lines around it as sent.
        let lines = "a=1\nnote=https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX\r\nb=2\n";
        let shown = redact_text(lines);
        assert!(!shown.contains("Zq7hunterX"), "{shown}");
        assert!(
            shown.starts_with("a=1\n") && shown.ends_with("\r\nb=2\n"),
            "{shown}"
        );
        assert_eq!(redact_query("https%3A%2F%2Fx%2F"), "https%3A%2F%2Fx%2F");
        // Whatever `=` comes after it: a later line of a pair, a header's parameter, a
        // query's next pair, a form's value.
        for text in [
            "callback failed: https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX\nretry=1\n",
            "https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX; v=1",
            "https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX=1",
        ] {
            let shown = redact_text(text);
            assert!(!shown.contains("Zq7hunterX"), "{text}: {shown}");
            assert!(shown.contains("%5Bredacted%5D"), "{text}: {shown}");
        }
        for query in [
            "https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX+x=1",
            "https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX&x=1",
            // Text opening as JSON does, and a key joined to the URL.
            "[&https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX",
            "[=1&https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX=1",
            "u=whsec_abc,https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX",
            "u=m2m_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX",
        ] {
            let shown = redact_query(query);
            assert!(!shown.contains("Zq7hunterX"), "{query}: {shown}");
        }
        for text in [
            "[https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX]",
            "{\"u\": https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX, }",
            "[ https%3A%2F%2Fx%2F%3Fpassword%3DZq7hunterX",
            "m2m_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:https%3A%2F%2Fx%2F%3Ftoken%3DZq7hunterX",
        ] {
            let shown = redact_text(text);
            assert!(!shown.contains("Zq7hunterX"), "{text}: {shown}");
        }
    }

    /// Recording is heavy work for a body past what is kept raw, which is redacted and cut
    /// as it is recorded (bodies crafted to be slow to redact, of 16 to 64 KiB, held their
    /// serving thread for most of a second each); a head of any size is only copied.
    #[test]
    fn recording_a_body_past_what_is_kept_raw_is_heavy() {
        let journal = Journal::new(10);
        assert!(!journal.heavy_to_record(60_000, &[JOURNAL_BODY_LIMIT, 0]));
        assert!(journal.heavy_to_record(100, &[JOURNAL_BODY_LIMIT + 1, 0]));
        assert!(journal.heavy_to_record(100, &[0, JOURNAL_BODY_LIMIT + 1]));
        assert!(!journal.heavy_to_record(100, &[]));
    }

    /// A body rewritten to be shown (a secret redacted) is rewritten once and kept: every
    /// later read (a search, a `verify`, a page) reads the text kept, and a body shown as
    /// sent is read where it lies. Redacted again on every read, a tenant's searches of
    /// bodies crafted to be slow to redact held the heavy threads for seconds each.
    #[test]
    fn a_body_rewritten_to_be_shown_is_rewritten_once() {
        let secret = Entry::new(with_body("/partner/links", r#"{"password":"hunter2"}"#));
        let plain = Entry::new(with_body("/partner/links", r#"{"referenceId":"r1"}"#));
        for entry in [&secret, &plain] {
            let (first, _) = entry.request_body();
            let first = first.expect("a body");
            let (again, _) = entry.request_body();
            let again = again.expect("a body");
            assert!(
                matches!((&first, &again), (Cow::Borrowed(a), Cow::Borrowed(b)) if a.as_ptr() == b.as_ptr()),
                "{first} read from where it is kept, both times"
            );
        }
        assert!(secret.body().contains(REDACTED), "{}", secret.body());
        assert!(!secret.body().contains("hunter2"));
    }

    /// The usual names of passwords, keys and credentials are secret fields too; a bare
    /// `key` is not.
    #[test]
    fn the_usual_names_of_passwords_keys_and_credentials_are_secret() {
        let body = r#"{"pwd":"a1","passwd":"a2","db_passphrase":"a3","accessKey":"a4","private_key":"a5","credentials":{"user":"qa","pass":"a6"},"key":"shown","passport":"shown-too"}"#;
        let shown = redact_body(body.as_bytes());
        for secret in ["a1", "a2", "a3", "a4", "a5", "a6"] {
            assert!(
                !shown.contains(&format!("\"{secret}\"")),
                "{secret}: {shown}"
            );
        }
        assert!(shown.contains(r#""key":"shown""#), "{shown}");
        assert!(shown.contains(r#""passport":"shown-too""#), "{shown}");
    }

    /// An entry's size counts its method and its tenant's label, whatever their length.
    #[test]
    fn an_entry_counts_a_long_method_and_tenant() {
        let method = Method::from_bytes("X".repeat(64_000).as_bytes()).expect("a method");
        let plain = Entry::new(request("/partner/zzz", 405, None));
        let long = Entry::new(Request {
            method,
            ..request("/partner/zzz", 405, None)
        });
        assert!(
            long.size() + "GET".len() >= plain.size() + 64_000,
            "{}",
            long.size()
        );
        let tenant = format!("leaf:{}", "u".repeat(256));
        let named = Entry::new(request("/partner/zzz", 405, Some(&tenant)));
        assert!(named.size() >= plain.size() + tenant.len());
    }

    /// A request a fault dropped was answered nothing: it shows no status, says `dropped`,
    /// and no status filter takes it for a 200; a row kept by an older linkbox, which wrote
    /// the 200 its unsent response held, reads back the same way.
    #[test]
    fn a_dropped_request_shows_no_status_and_matches_no_status_filter() {
        let journal = Journal::new(10);
        journal.record(request("/partner/links", 200, Some("pa")));
        journal.record(Request {
            status: None,
            ..request("/partner/links", 200, Some("pa"))
        });
        let newest = &journal.list(&JournalFilter::default(), None)[0];
        assert_eq!(newest.status, None);
        assert!(newest.dropped);
        let shown = serde_json::to_value(newest).expect("json");
        assert_eq!(shown["status"], Value::Null);
        for status in ["2xx", "200"] {
            let filter = JournalFilter {
                status: Some(status.to_owned()),
                ..JournalFilter::default()
            };
            let answered = journal.list(&filter, None);
            assert_eq!(answered.len(), 1, "{status}");
            assert!(!answered[0].dropped, "{status}");
        }
        let mut older = newest.clone();
        older.status = Some(200);
        let restored = Journal::new(10);
        restored.restore(vec![older]);
        let read = &restored.list(&JournalFilter::default(), None)[0];
        assert_eq!((read.status, read.dropped), (None, true));
    }

    #[test]
    fn packed_headers_read_back_every_pair_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("accept", "text/plain".parse().expect("value"));
        headers.append("x-trace", "".parse().expect("value"));
        headers.append("accept", "application/json".parse().expect("value"));
        let opaque = http::HeaderValue::from_bytes(b"caf\xe9 \xff").expect("value");
        headers.append("x-opaque", opaque);
        let long = "v".repeat(70_000);
        headers.append("x-long", long.parse().expect("value"));
        let mut packed = Vec::new();
        pack(&mut packed, pairs_of(&headers));
        let read: Vec<(&str, &[u8])> = unpack(&packed).collect();
        let given: Vec<(&str, &[u8])> = pairs_of(&headers).collect();
        assert_eq!(read, given);
        assert_eq!(read.len(), 5);
        // Shown as before: repeated names joined, bytes that are not UTF-8 replaced.
        let shown = show_headers(unpack(&packed));
        assert_eq!(shown["accept"], "text/plain, application/json");
        assert_eq!(shown["x-trace"], "");
        assert_eq!(shown["x-opaque"], "caf\u{fffd} \u{fffd}");
        assert_eq!(shown["x-long"].len(), 70_000);
        assert_eq!(unpack(&[]).count(), 0);
    }

    #[test]
    fn every_part_of_an_entry_reads_back_from_its_one_buffer() {
        let mut request_headers = HeaderMap::new();
        request_headers.insert("x-api-key", "m2m_test_secret".parse().expect("value"));
        request_headers.insert("x-trace", "t-1".parse().expect("value"));
        // More than the room an opening sets aside, so its buffer grows.
        for n in 0..40 {
            let name = http::HeaderName::try_from(format!("x-extra-{n}")).expect("name");
            request_headers.insert(name, "v".repeat(n * 7).parse().expect("value"));
        }
        let mut response_headers = HeaderMap::new();
        response_headers.insert("content-type", "application/json".parse().expect("value"));
        response_headers.append("set-cookie", "a=1".parse().expect("value"));
        let long = format!(
            r#"{{"password":"hunter2","pad":"{}"}}"#,
            "é".repeat(JOURNAL_BODY_LIMIT)
        );
        // The query, then the request's body and the response's.
        type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: [Case; 4] = [
            ("", None, None),
            (
                "limit=5&cursor=c_1",
                Some(br#"{"referenceId":"u-1"}"#),
                Some(br#"{"id":"link_1"}"#),
            ),
            ("a=b", Some(b""), Some(long.as_bytes())),
            ("", Some(long.as_bytes()), Some(b"plain text")),
        ];
        for (query, request_body, response_body) in cases {
            let journal = Journal::new(10);
            journal.record(Request {
                method: Method::POST,
                opening: Opening::of("/partner/links/l_1", query, &request_headers),
                request_body,
                response_headers: &response_headers,
                response_body,
                ..request("/ignored", 201, Some("pa"))
            });
            let shown = journal.list(&JournalFilter::default(), None).remove(0);
            assert_eq!(shown.path, "/partner/links/l_1");
            assert_eq!(shown.query.as_deref(), (!query.is_empty()).then_some(query));
            assert_eq!(shown.method, "POST");
            assert_eq!(
                shown.request,
                message(&request_headers, request_body),
                "{query}"
            );
            assert_eq!(
                shown.response,
                message(&response_headers, response_body),
                "{query}"
            );
            assert_eq!(shown.request.headers["x-api-key"], REDACTED);
            assert_eq!(shown.response.headers["set-cookie"], REDACTED);
            // As a shared database gives it back: the same entry, shown the same way.
            let restored = Journal::new(10);
            restored.restore(vec![shown.clone()]);
            let again = restored.list(&JournalFilter::default(), None).remove(0);
            assert_eq!(again, shown, "{query}");
            let entry = Entry::from_view(shown).expect("reads back");
            // What an entry counts toward the bound covers what it holds: its text, the
            // entry itself, its allocation's two counts and the pointer its ring keeps.
            let held = entry.texts.buffer.len()
                + std::mem::size_of::<Entry>()
                + 2 * std::mem::size_of::<usize>()
                + std::mem::size_of::<Arc<Entry>>();
            assert!(entry.size() >= held, "{} < {held}", entry.size());
        }
    }

    #[test]
    fn a_quoted_answer_is_redacted_by_where_it_was_found_and_within() {
        use serde_json::json;
        let secret = json!("whsec_abcdef");
        assert_eq!(redact_at("/webhookSecret", secret.clone()), json!(REDACTED));
        assert_eq!(redact_at("/data/id_token", secret.clone()), json!(REDACTED));
        assert_eq!(redact_at("set-cookie", secret.clone()), json!(REDACTED));
        assert_eq!(redact_at("/webhookSecret", Value::Null), Value::Null);
        assert_eq!(
            redact_at("/data/status", json!("created")),
            json!("created")
        );
        assert_eq!(
            redact_at("/data", json!({"token": "t", "linkId": "l"})),
            json!({"token": REDACTED, "linkId": "l"})
        );
    }

    #[test]
    fn secrets_in_bodies_that_are_not_json_and_in_queries_are_redacted() {
        // A login with curl's default form type, and one of JSON with a trailing comma.
        assert_eq!(
            redact_body(b"username=qa&password=Hunter2-secret"),
            "username=qa&password=[redacted]"
        );
        assert_eq!(
            redact_body(b"user=qa&pass%77ord=Hunter2&x=1"),
            "user=qa&pass%77ord=[redacted]&x=1"
        );
        assert_eq!(
            redact_body(br#"{"username":"qa","password":"Hunter2-secret",}"#),
            r#"{"username":"qa","password":"[redacted]",}"#
        );
        // Cut short inside the secret, and with an escaped quote before it.
        assert_eq!(
            redact_body(br#"{"note":"a \"b\"","clientSecret": "S3cret"#),
            r#"{"note":"a \"b\"","clientSecret": "[redacted]"#
        );
        // A key anywhere in text that is not JSON.
        assert_eq!(
            redact_body(b"{\"referenceId\":\"x\",\"k\":\"m2m_test_abc123XYZ\""),
            "{\"referenceId\":\"x\",\"k\":\"[redacted]\""
        );
        assert_eq!(
            redact_query("page=2&password=S3cretPW!&limit=5"),
            "page=2&password=[redacted]&limit=5"
        );
        assert_eq!(
            redact_query("key=m2m_live_0123abc&x=1"),
            "key=[redacted]&x=1"
        );
        assert_eq!(redact_query("page=2&limit=5"), "page=2&limit=5");
        // A key percent-encoded, as a form encoder may send it, in a value or a name.
        assert_eq!(
            redact_query("key=m2m%5Ftest%5F0123abc&x=1"),
            "key=[redacted]&x=1"
        );
        assert_eq!(
            redact_body(b"a=1&m2m_live%5F0123abc=2&note=see+m2m%5ftest_9z"),
            "a=1&[redacted]=2&note=[redacted]"
        );
        assert_eq!(redact_query("q=100%25&x=a+b"), "q=100%25&x=a+b");
        // Text without secrets is kept as it is.
        assert_eq!(redact_body(b"hello=world&a=b"), "hello=world&a=b");
        // Malformed JSON: a name spelled with escapes, a value that is not a string, and a
        // key spelled only with escapes.
        assert_eq!(
            redact_body(br#"{"referenceId":"m1","pass\u0077ord":"esc-hunter",}"#),
            r#"{"referenceId":"m1","pass\u0077ord":"[redacted]",}"#
        );
        assert_eq!(
            redact_body(br#"{"password": 123456789 ,"apiKey":true}x"#),
            r#"{"password": "[redacted]" ,"apiKey":"[redacted]"}x"#
        );
        assert_eq!(
            redact_body(br#"{"x":"m2m\u005ftest_FFFF","y":"ok",}"#),
            r#"{"x":"[redacted]","y":"ok",}"#
        );
        // A multipart form's secret part, and not a part whose file name is secret-like.
        let multipart = "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nmp-hunter\r\n\
                         --b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"token.txt\"\r\n\r\n\
                         plain\r\n--b--\r\n";
        let shown = redact_body(multipart.as_bytes());
        assert!(!shown.contains("mp-hunter"), "{shown}");
        // In other cases, unquoted, and with LF line endings.
        for variant in [
            "--b\r\nContent-Disposition: Form-Data; name=\"Password\"\r\n\r\nmp-hunter\r\n--b--",
            "--b\r\nContent-Disposition: form-data; name=password\r\n\r\nmp-hunter\r\n--b--",
            "--b\nContent-Disposition: form-data; name=\"password\"\n\nmp-hunter\n--b--\n",
        ] {
            let shown = redact_body(variant.as_bytes());
            assert!(
                !shown.contains("mp-hunter") && shown.contains("--b--"),
                "{shown}"
            );
        }
        // A secret part runs to the body's own boundary, not to a line that merely starts
        // `--` nor one that starts with the boundary, after any preamble; a part's name a
        // browser percent-encoded is read decoded.
        for variant in [
            "a preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nl1\r\n--x\r\nhunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nl1\r\n--XyZabc\r\nhunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nmp-\n--hunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name=\"pass%77ord\"\r\n\r\nmp-hunter\r\n--XyZ--",
            // Spaces around `=`, and RFC 7578's extended name (`name*=`).
            "--XyZ\r\nContent-Disposition: form-data; name = \"password\"\r\n\r\nmp-hunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data;name\t=password\r\n\r\nmp-hunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name*=UTF-8''pass%77ord\r\n\r\nmp-hunter\r\n--XyZ--",
            "--XyZ\r\nContent-Disposition: form-data; name *= utf-8'en'password\r\n\r\nmp-hunter\r\n--XyZ--",
        ] {
            let shown = redact_body(variant.as_bytes());
            assert!(
                !shown.contains("hunter") && shown.ends_with("[redacted]\r\n--XyZ--"),
                "{shown}"
            );
        }
        // Malformed JSON: a secret field's array or object, and a key spelled with escapes
        // as a field's name.
        assert_eq!(
            redact_body(br#"{"password": ["a", {"b": "]"}], "n": 1,"#),
            r#"{"password": "[redacted]", "n": 1,"#
        );
        assert_eq!(
            redact_body(br#"{"token": {"v": "cut short"#),
            r#"{"token": "[redacted]""#
        );
        assert_eq!(
            redact_body(br#"{"m2m\u005ftest_LEAK11x": 1,"#),
            r#"{"[redacted]": 1,"#
        );
        // A value quoting a path that holds a key percent-encoded (linkbox's own 405).
        let quoted = redact_body(
            br#"{"error":{"message":"Cannot PUT /partner/links/m2m%5Ftest%5FLEAK96x: no"}}"#,
        );
        assert!(
            !quoted.contains("LEAK") && quoted.contains("/partner/links/[redacted]: no"),
            "{quoted}"
        );
        // Many secret parts, each found and redacted in one pass over the text.
        let parts =
            "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n".repeat(5_000);
        let each = redact_body(parts.as_bytes());
        assert_eq!(each.matches("[redacted]").count(), 5_000);
        assert!(!each.contains("\r\n\r\nx"));
        // Text of nothing but key prefixes is redacted whole (in one pass).
        let many = "m2m_test_ab ".repeat(20_000);
        assert_eq!(redact_keys(&many), "[redacted] ".repeat(20_000));
        assert!(
            shown.contains("name=\"password\"\r\n\r\n[redacted]\r\n--b") && shown.contains("plain"),
            "{shown}"
        );
    }

    /// A secret field holding an array or an object has every value in it redacted, and
    /// JSON text sent as the whole body is redacted within as a field's is.
    #[test]
    fn a_secret_fields_array_or_object_and_a_body_of_json_text_are_redacted_within() {
        let body =
            br#"{"metadata":{"password":["arr-hunter",7],"token":{"v":"obj-hunter"},"n":1}}"#;
        assert_eq!(
            redact_body(body),
            r#"{"metadata":{"n":1,"password":["[redacted]","[redacted]"],"token":{"v":"[redacted]"}}}"#
        );
        let text = br#""{\"password\":\"top-hunter\"}""#;
        let shown = redact_body(text);
        assert!(
            !shown.contains("top-hunter") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn secrets_are_redacted_however_their_field_name_is_spelled() {
        for body in [
            r#"{"pass_word":"hunter2"}"#,
            r#"{"API-Key":"hunter2"}"#,
            r#"{"pass\u0077ord":"hunter2"}"#,
        ] {
            let kept = message(&HeaderMap::new(), Some(body.as_bytes()));
            let kept = kept.body.expect("body");
            assert!(!kept.contains("hunter2"), "{body} kept as {kept}");
            assert!(kept.contains(REDACTED), "{kept}");
        }
        // A body with nothing secret in it is kept exactly as sent.
        let plain = "{ \"referenceId\": \"user-42\" }";
        let kept = message(&HeaderMap::new(), Some(plain.as_bytes()));
        assert_eq!(kept.body.as_deref(), Some(plain));
    }

    #[test]
    fn entries_keep_headers_and_bodies_with_secrets_redacted() {
        let journal = Journal::new(10);
        journal.record(with_body(
            "/partner/links",
            r#"{"referenceId":"user-42","password":"hunter2","nested":{"webhookSecret":"whsec_x"}}"#,
        ));
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        assert_eq!(entry.request.headers["x-api-key"], REDACTED);
        assert_eq!(entry.request.headers["content-type"], "application/json");
        let body = entry.request.body.as_deref().expect("body");
        assert!(body.contains("user-42"), "{body}");
        assert!(
            !body.contains("hunter2") && !body.contains("whsec_x"),
            "{body}"
        );
    }

    /// An M2M key is redacted wherever it appears: in any JSON value, whatever its field's
    /// name, and in any header.
    #[test]
    fn an_m2m_key_in_any_value_or_header_is_redacted() {
        let key = "m2m_test_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let live = "m2m_live_cccccccccccccccccccccccccccccccc";
        let body = format!(
            r#"{{"referenceId":"r2","metadata":{{"note":"{key}","n2":"see {live} here"}}}}"#
        );
        let journal = Journal::new(10);
        let mut request = with_body("/partner/links", &body);
        let mut headers = HeaderMap::new();
        headers.insert("x-other", key.parse().expect("value"));
        request.opening = Opening::of("/partner/links", "", &headers);
        journal.record(request);
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        let body = entry.request.body.as_deref().expect("body");
        assert!(!body.contains(key) && !body.contains(live), "{body}");
        assert!(
            body.contains("r2") && body.contains("see [redacted] here"),
            "{body}"
        );
        assert_eq!(entry.request.headers["x-other"], REDACTED);

        // As a field's name, a header's name, or in the path.
        let body = format!(r#"{{"referenceId":"r3","metadata":{{"{key}":1}}}}"#);
        let path = format!("/partner/links/{key}");
        let mut request = with_body(&path, &body);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(format!("x-{key}").as_bytes()).expect("a name"),
            "1".parse().expect("value"),
        );
        request.opening = Opening::of(&path, "", &headers);
        journal.record(request);
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        let shown = serde_json::to_string(entry).expect("json");
        assert!(!shown.contains(key), "{shown}");
        assert_eq!(entry.path, "/partner/links/[redacted]");

        // Percent-encoded in the path.
        let path = "/partner/links/m2m%5Ftest%5Fbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/x";
        journal.record(with_body(path, "{}"));
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        assert_eq!(entry.path, "/partner/links/[redacted]/x");

        // The filters match what is shown, not what was redacted: a prefix cannot tell a
        // key one character at a time.
        let secret_path = "/partner/links/m2m_live_Xy7Qzzzz";
        journal.record(with_body(secret_path, "{}"));
        let count = |query: JournalFilter| journal.list(&query, None).len();
        let by_path = |path: &str| JournalFilter {
            path: Some(path.to_owned()),
            ..JournalFilter::default()
        };
        assert_eq!(count(by_path("/partner/links/m2m_live_X*")), 0);
        assert_eq!(count(by_path(secret_path)), 0);
        assert_eq!(count(by_path("/partner/links/[redacted]")), 2);
        let expect = Expectation {
            path: Some("/partner/links/m2m_live_Xy*".to_owned()),
            ..Expectation::default()
        };
        assert_eq!(journal.verify(&expect, None).0, 0);

        // A key sent as the method, or as a Leaf account's name in the tenant's label.
        let mut request = with_body("/partner/links", "{}");
        request.method = Method::from_bytes(key.as_bytes()).expect("a method token");
        request.tenant = Some(format!("leaf:{live}").into());
        journal.record(request);
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        assert_eq!(entry.method, REDACTED);
        assert_eq!(entry.tenant.as_deref(), Some("leaf:[redacted]"));
        let by_tenant = |tenant: &str| JournalFilter {
            tenant: Some(tenant.to_owned()),
            ..JournalFilter::default()
        };
        assert_eq!(count(by_tenant(&format!("leaf:{live}"))), 0);
        assert_eq!(count(by_tenant("leaf:[redacted]")), 1);
    }

    #[test]
    fn recorded_messages_are_shown_redacted_and_cut_whichever_way_they_were_kept() {
        let journal = Journal::new(10);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer hunter2".parse().expect("value"));
        headers.append("x-trace", "one".parse().expect("value"));
        headers.append("x-trace", "two".parse().expect("value"));
        let long = format!(
            r#"{{"password":"hunter2","pad":"{}"}}"#,
            "z".repeat(JOURNAL_BODY_LIMIT)
        );
        journal.record(Request {
            opening: Opening::of("/partner/links", "", &headers),
            request_body: Some(long.as_bytes()),
            response_body: Some(br#"{"data":{"linkId":"link_1","token":"hunter2"}}"#),
            ..request("/partner/links", 201, Some("pa"))
        });
        let entry = &journal.list(&JournalFilter::default(), None)[0];
        assert_eq!(entry.request.headers["authorization"], REDACTED);
        assert_eq!(entry.request.headers["x-trace"], "one, two");
        let request_body = entry.request.body.as_deref().expect("request body");
        assert!(entry.request.body_truncated);
        assert!(request_body.len() <= JOURNAL_BODY_LIMIT);
        assert!(!request_body.contains("hunter2"), "{request_body}");
        // Still JSON, its long string shortened and saying by how much.
        let shown: Value = serde_json::from_str(request_body).expect("still JSON");
        assert_eq!(shown["password"], REDACTED);
        let pad = shown["pad"].as_str().expect("pad");
        assert_eq!(
            pad,
            format!(
                "{}…[{} more bytes]",
                "z".repeat(256),
                JOURNAL_BODY_LIMIT - 256
            )
        );
        let response_body = entry.response.body.as_deref().expect("response body");
        assert!(!entry.response.body_truncated);
        assert!(response_body.contains("link_1"), "{response_body}");
        assert!(!response_body.contains("hunter2"), "{response_body}");
    }

    #[test]
    fn secrets_in_strings_whose_escapes_do_not_all_read_and_after_other_text_are_redacted() {
        for body in [
            // JSON text in a string with an escape that does not read, a quote escaped by
            // mistake, or a line end sent as is.
            r#"{"config":"{\"password\":\"S1x\",\"dir\":\"C:\Users\"}"}"#,
            r#"{"m":"{\"password\": \"S1x\", \"n\": \"it\'s\"}"}"#,
            "{\"m\":\"{\n  \\\"password\\\": \\\"S1x\\\"\n}\"}",
            // A `\u`-spelled name with a tab sent as is, and a key with a bad escape.
            "{\"pass\\u0077ord\t\": \"S1x\"}",
            r#"{"k":"m2m\u005ftest_S1xABC123\q"}"#,
            // JSON text after other text in a string, in a well-formed body.
            r#"{"error":"Upstream 401: {\"token\":\"S1x\"}"}"#,
            // `;` before a secret pair, in a form and a query.
            "a=1;password=S1x",
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(!shown.contains("S1x"), "{body} -> {shown}");
        }
        assert!(!redact_query("a=1;token=S1x&b=2").contains("S1x"));
        // A password holding a `;` is redacted whole.
        assert_eq!(
            redact_body(b"password=ab;cd&x=1"),
            "password=[redacted]&x=1"
        );
    }

    #[test]
    fn secrets_in_json_text_items_quoted_urls_and_later_pairs_are_redacted() {
        let many = format!(",{}0]", "0,".repeat(MOST_TREE_VALUES));
        for body in [
            // JSON text in an array's item, on the text path (malformed, or too many
            // values to read as a tree) and after other text.
            format!(r#"["{{\"password\":\"S3CR3T\"}}"{many}"#),
            format!(r#"["Upstream 401: {{\"token\": \"S3CR3T\"}}"{many}"#),
            r#"["{\"password\":\"S3CR3T\"}",]"#.to_owned(),
            r#"{"a": ["{\"token\": \"S3CR3T\"}"],}"#.to_owned(),
            // A secret value in JSON text ends at the quote no backslash escapes.
            r#"{"url": "https://x/?password=ab\"S3CR3T", }"#.to_owned(),
            r#"{"q": "a=1;password=ab\"S3CR3T", }"#.to_owned(),
            // A secret pair after a space or a comma in another pair's value.
            r#"{"cmd": "login user=a password=S3CR3T",}"#.to_owned(),
            "user=a password=S3CR3T".to_owned(),
            // A URL's secret parameter in a value of well-formed JSON.
            r#"{"cb": "https://x/?password=S3CR3T"}"#.to_owned(),
        ] {
            let (shown, _) = redact_and_cut(body.as_bytes());
            assert!(!shown.contains("S3CR3T"), "{body} -> {shown}");
        }
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-meta", r#""{\"token\": \"S3CR3T\"}""#),
            ("x-error", r#"Upstream 401: {\"token\": \"S3CR3T\"}"#),
            ("x-custom-auth", r#"Digest username="u", password="S3CR3T""#),
            ("x-other", "user=a, password=S3CR3T"),
        ] {
            headers.insert(name, value.parse().expect("value"));
        }
        let shown = format!("{:?}", show_headers(pairs_of(&headers)));
        assert!(!shown.contains("S3CR3T"), "{shown}");
    }

    #[test]
    fn strings_opening_strings_are_read_to_a_few_levels_not_one_a_string() {
        // Each `"[` an array's item holding JSON text holding another: read to a few
        // levels, not to a stack frame and a pass over the rest each.
        for count in [4_000, 40_000] {
            let body = format!("[{}\"token", "\"[".repeat(count));
            let (shown, _) = redact_and_cut(body.as_bytes());
            assert!(shown.starts_with("[\"["), "{}", &shown[..20]);
        }
        // Within those levels, JSON text in JSON text is still read.
        let nested = serde_json::json!({"a": serde_json::json!({"b": serde_json::json!({"token": "S1"}).to_string()}).to_string()});
        let shown = redact_body(nested.to_string().as_bytes());
        assert!(!shown.contains("S1"), "{shown}");
    }

    /// JSON text encoded twice, JSON text in a member of JSON after other text, and JSON
    /// text past the levels read: none shows its secret.
    #[test]
    fn json_text_encoded_twice_or_after_text_and_nested_is_redacted() {
        let twice = serde_json::to_string(&serde_json::json!({"token": "HUNTER2"}).to_string())
            .expect("a string");
        let thrice = serde_json::to_string(&twice).expect("a string");
        let after = format!(
            "Upstream 401: {}",
            serde_json::json!({"body": serde_json::json!({"token": "HUNTER3"}).to_string()})
        );
        let mut deep = serde_json::json!({"token": "HUNTER4"}).to_string();
        for _ in 0..6 {
            deep = serde_json::json!({ "d": deep }).to_string();
        }
        for note in [twice.clone(), thrice, after.clone(), deep] {
            let body = serde_json::json!({"referenceId": "r", "metadata": {"note": note}});
            let shown = redact_body(body.to_string().as_bytes());
            assert!(!shown.contains("HUNTER"), "{shown}");
            assert!(shown.contains("\"referenceId\":\"r\""), "{shown}");
        }
        // What is not secret stays readable.
        let shown = redacted_json_text(&after).expect("redacted");
        assert!(shown.starts_with("Upstream 401: {\"body\":"), "{shown}");
        let shown = redacted_json_text(&twice).expect("redacted");
        assert_eq!(
            serde_json::from_str::<String>(&shown).ok().as_deref(),
            Some(r#"{"token":"[redacted]"}"#)
        );
    }

    /// Hand-built text naming a secret in single quotes, without quotes, or with spaces
    /// around a form's `=`, and a secret spelled percent-encoded in a query's or a form's
    /// value: none shows it; what is not secret stays.
    #[test]
    fn secrets_named_by_hand_or_percent_encoded_in_a_value_are_redacted() {
        for body in [
            "{'username': 'leafu', 'password': 'HUNTER4'}",
            r#"{username: "leafu", password: "HUNTER5"}"#,
            "Upstream 401: {'token': 'HUNTER6'}",
            "password: HUNTER7\nnext: line",
            "username=leafu&password = HUNTER8",
            "username=leafu&state=%7B%22token%22%3A%22HUNTER9%22%7D",
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(!shown.contains("HUNTER"), "{body} -> {shown}");
            assert!(
                ["leafu", "next", "Upstream"]
                    .iter()
                    .any(|kept| shown.contains(kept)),
                "{shown}"
            );
        }
        let query = "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Ftoken%3DHUNTER%26a%3D1&x=2";
        let shown = redact_query(query);
        assert!(!shown.contains("HUNTER"), "{shown}");
        assert!(
            shown.starts_with(
                "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Ftoken%3D%5Bredacted%5D"
            ),
            "{shown}"
        );
        assert!(shown.ends_with("&x=2"), "{shown}");
        // Encoded again and again, past the levels read: not shown at all.
        let mut deep = "token=HUNTER".to_owned();
        for _ in 0..6 {
            deep = percent_encoding::utf8_percent_encode(&deep, VALUE_AS_SENT).to_string();
        }
        assert!(!redact_query(&format!("q={deep}")).contains("HUNTER"));
        // A colon after a word that names nothing secret keeps its text.
        assert_eq!(
            redact_body(b"time: 12:30, place: here"),
            "time: 12:30, place: here"
        );
    }

    /// In a JSON body's string: a secret named without quotes in a message, JSON text
    /// encoded twice after other text, a pair after another with spaces or a form's `+`
    /// around its `=`, and a value percent-encoded whole or within malformed JSON.
    /// The fourth audit's cases: escaped JSON after a key already redacted, or escaped as
    /// `\u0022`; JSON text after a byte order mark or an XSSI prefix; line breaks beyond
    /// LF and CR; and what a secret's line does not hold kept.
    #[test]
    fn escaped_json_beside_other_secrets_and_json_after_a_bom_are_redacted() {
        for note in [
            r#"key m2m_test_0123456789abcdef0123456789abcdef; Upstream 401: {\"token\": \"S3CR3Tx\"}"#,
            r#"Upstream 401: {\u0022token\u0022:\u0022S3CR3Tx\u0022}"#,
            "user=a\u{b}password=S3CR3Tx",
            "user=a\u{2028}password=S3CR3Tx",
            "user=a\u{a0}password=S3CR3Tx",
        ] {
            let body = serde_json::json!({"referenceId": "r", "note": note});
            let shown = redact_body(body.to_string().as_bytes());
            assert!(!shown.contains("S3CR3Tx"), "{note} -> {shown}");
        }
        for text in [
            "\u{feff}{\"a\":\"r\",\"redirect_uri\":\"https%3A%2F%2Fx%2F%3Ftoken%3DS3CR3Tx\"}",
            "\u{feff}{\"a\":\"r\",\"note\":\"user=a\\npassword=S3CR3Tx\"}",
            ")]}'\n{\"a\":\"r\",\"redirect_uri\":\"https%3A%2F%2Fx%2F%3Ftoken%3DS3CR3Tx\"}",
        ] {
            let shown = redact_body(text.as_bytes());
            assert!(!shown.contains("S3CR3Tx"), "{text:?} -> {shown}");
        }
        // A header quoting a key, then escaped JSON.
        let header = r#"key m2m_test_0123456789abcdef0123456789abcdef; Upstream 401: {\"token\": \"S3CR3Tx\"}"#;
        let shown = show_headers([("x-up", header.as_bytes())].into_iter());
        assert!(!shown["x-up"].contains("S3CR3Tx"), "{shown:?}");
        // An .env file keeps its other lines.
        assert_eq!(
            redact_body(b"A=1\nDB_PASSWORD=S3CR3Tx\nDEBUG=true\nPORT=8080"),
            "A=1\nDB_PASSWORD=[redacted]\nDEBUG=true\nPORT=8080"
        );
        // JSON text holding JSON text holding JSON text, and no secret, is shown as sent.
        for sent in [
            r#"{"referenceId":"r","metadata":"{\"cart\": \"[\\\"50% off\\\"]\"}"}"#,
            r#"{"referenceId":"r","metadata":"{\"a\": \"{\\\"b\\\": \\\"Reset password\\\"}\"}"}"#,
            r#"{"s":"[\"[\\\"50%\\\"]\"]"}"#,
        ] {
            assert!(serde_json::from_str::<Value>(sent).is_ok(), "{sent}");
            assert_eq!(redact_body(sent.as_bytes()), sent);
        }
    }

    #[test]
    fn secrets_in_messages_and_encoded_values_within_json_strings_are_redacted() {
        let twice_after = format!(
            "Upstream 401: {}",
            serde_json::to_string(&serde_json::json!({"token": "S3CR3Tx"}).to_string())
                .expect("a string")
        );
        for note in [
            "login failed password: S3CR3Tx".to_owned(),
            "login failed, 'password': 'S3CR3Tx'".to_owned(),
            twice_after,
            "Upstream 401: {\"a\":1} and {\"body\": \"{\\\"token\\\": \\\"S3CR3Tx\\\"}\"}"
                .to_owned(),
            "user=a password = S3CR3Tx".to_owned(),
            "a=1; password = S3CR3Tx".to_owned(),
            "msg=login+failed+password=S3CR3Tx".to_owned(),
            "https%3A%2F%2Fx%2F%3Ftoken%3DS3CR3Tx".to_owned(),
            // An encoded URL quoted in a message with a pair of its own.
            "redirect to https%3A%2F%2Fx%2F%3Ftoken%3DS3CR3Tx failed (status=400)".to_owned(),
            // JSON text escaped once more than the string, after other text.
            r#"Upstream 401: {\"token\": \"S3CR3Tx\"}"#.to_owned(),
            // Pairs on lines of their own.
            "user=a\npassword=S3CR3Tx".to_owned(),
        ] {
            let body = serde_json::json!({"referenceId": "r", "note": note});
            let shown = redact_body(body.to_string().as_bytes());
            assert!(!shown.contains("S3CR3Tx"), "{note} -> {shown}");
            assert!(shown.contains("\"referenceId\":\"r\""), "{shown}");
        }
        for text in [
            r#"{"u": "https://x/?r=https%3A%2F%2Fy%2F%3Ftoken%3DS3CR3Tx",}"#,
            "a=1+password+=+S3CR3Tx",
            "a=1,password =S3CR3Tx",
            // A text/plain form's and an .env file's lines.
            "user=a\r\npassword=S3CR3Tx\r\n",
            "username=alice\npassword=S3CR3Tx\n",
            // Malformed JSON (a member named twice, a trailing comma) is read as text, and
            // its strings as a JSON body's are.
            r#"{"a":"r","a":"r2","redirect_uri":"https%3A%2F%2Fx%2Fcb%3Ftoken%3DS3CR3Tx"}"#,
            r#"{"a":"r","redirect_uri":"https%3A%2F%2Fx%2Fcb%3Ftoken%3DS3CR3Tx",}"#,
            r#"{"a":"r","a":"r","state":"%7B%22token%22%3A%22S3CR3Tx%22%7D"}"#,
            r#"{"a":"r","a":"r","note":"x \"password\": \"S3CR3Tx\""}"#,
        ] {
            let shown = redact_body(text.as_bytes());
            assert!(!shown.contains("S3CR3Tx"), "{text} -> {shown}");
        }
        // Ordinary text keeps its words.
        assert_eq!(
            redact_body(br#"{"note":"time: 12:30, then a=1 b = 2"}"#),
            r#"{"note":"time: 12:30, then a=1 b = 2"}"#
        );
    }

    #[test]
    fn every_secret_pair_of_a_value_is_redacted_also_after_a_url_s_question_mark() {
        for body in [
            r#"{"q": "a=1;password=x", "r": "b=2;token=SECRET1",}"#,
            r#"{"u":"https://x/?token=A", "v":"https://y/?password=SECRET1",}"#,
            r#"{"u":"https://x/?token=A", "n":"m2m%5Ftest%5Fabcdefghijklmnopqrstuvwxyz012345",}"#,
            "referenceId=r&next=https://x/?token=SECRET1&a=1",
            r#"{"referenceId":"r","note":"next=https://x/?token=SECRET1"}"#,
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(
                !shown.contains("SECRET1") && !shown.contains("m2m%5Ftest"),
                "{body} -> {shown}"
            );
        }
        assert!(!redact_query("q=a%3Fb&next=https://x/?token=SECRET1&w=2").contains("SECRET1"));
    }

    #[test]
    fn pairs_in_a_long_value_are_read_in_one_pass() {
        // Each `;` looked on to the next `=`: a value of them cost its length squared.
        let body = format!("token&a={}=", ";".repeat(400_000));
        let shown = redact_body(body.as_bytes());
        assert_eq!(shown.len(), body.len());
        let spaced = format!("token&a={}password=x", " b".repeat(200_000));
        assert!(redact_body(spaced.as_bytes()).ends_with("password=[redacted]"));
    }

    #[test]
    fn a_note_of_commas_is_one_value_and_a_percent_encoded_key_is_redacted_alone() {
        // Counted outside strings, two members are two values: still JSON, `bodyJson` finds
        // them.
        let note = format!(
            r#"{{"referenceId":"ref-1","note":"{}"}}"#,
            "a, ".repeat(7_000)
        );
        let (shown, cut) = redact_and_cut(note.as_bytes());
        assert!(cut);
        let tree: Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(tree["referenceId"], "ref-1");
        // On the text path, a key percent-encoded in a string is redacted, not the text
        // around it.
        let body = format!(
            r#"{{"note":"m2m%5Ftest%5Fabcdefghijklmnopqrstuvwxyz012345","keep":"visible","a":[{}0]}}"#,
            "0,".repeat(MOST_TREE_VALUES)
        );
        let (shown, _) = redact_and_cut(body.as_bytes());
        assert!(
            shown.starts_with(r#"{"note":"[redacted]","keep":"visible""#),
            "{}",
            &shown[..80]
        );
    }

    #[test]
    fn text_that_only_mentions_a_secret_word_is_shown_as_sent() {
        // Read as text (a member named twice), the words before a URL's `=` name nothing.
        for body in [
            r#"{"a":1,"a":2,"note":"password","url":"https://x/?q=1"}"#,
            r#"{"note":"reset password","url":"https://x/?q=1&r=2",}"#,
        ] {
            assert_eq!(redact_body(body.as_bytes()), body);
        }
        // A URL's secret parameter in JSON text is redacted to the end of its string.
        assert_eq!(
            redact_body(br#"{"a":1,"a":2,"url":"https://x/?password=S1x","b":"c"}"#),
            r#"{"a":1,"a":2,"url":"https://x/?password=[redacted]","b":"c"}"#
        );
    }

    #[test]
    fn a_preamble_line_starting_with_two_dashes_is_not_taken_for_the_boundary() {
        let body = "This is a preamble\r\n-- signed by client --\r\n--XyZ\r\n\
                    Content-Disposition: form-data; name=\"password\"\r\n\r\nS1x\r\n--XyZ\r\n\
                    Content-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n--XyZ--\r\n";
        let shown = redact_body(body.as_bytes());
        assert!(!shown.contains("S1x"), "{shown}");
        assert!(shown.contains("bob\r\n--XyZ--"), "{shown}");
    }

    #[test]
    fn headers_named_like_secrets_and_secrets_in_header_values_are_redacted() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-auth-token", "S1x-a"),
            ("x-api-secret", "S1x-b"),
            ("x-meta", r#"{"password":"S1x-c"}"#),
            ("referer", "http://x/?password=S1x-d&q=1"),
            ("x-plain", "a=1; token-ish words, kept"),
        ] {
            headers.insert(name, value.parse().expect("value"));
        }
        let shown = show_headers(pairs_of(&headers));
        let all = format!("{shown:?}");
        assert!(!all.contains("S1x"), "{all}");
        assert_eq!(shown["referer"], "http://x/?password=[redacted]&q=1");
        assert_eq!(shown["x-plain"], "a=1; token-ish words, kept");
    }

    #[test]
    fn a_long_body_of_too_many_values_is_read_as_text_as_far_as_it_is_kept() {
        // Within the bound, a long body is read as a tree: its long strings shortened, it
        // stays JSON.
        let values = |count: usize| {
            format!(
                "[\"{}\",{{\"password\":\"S1x\"}}{}]",
                "x".repeat(JOURNAL_BODY_LIMIT),
                ",1".repeat(count)
            )
        };
        let (shown, cut) = redact_and_cut(values(MOST_TREE_VALUES - 10).as_bytes());
        assert!(cut);
        let tree: Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(tree[1]["password"], REDACTED);
        // Past it, reading the tree would cost hundreds of bytes a value: the body is
        // redacted as text as far as it is kept, and cut.
        let (shown, cut) = redact_and_cut(values(MOST_TREE_VALUES).as_bytes());
        assert!(cut && shown.len() == JOURNAL_BODY_LIMIT, "{}", shown.len());
        assert!(shown.starts_with("[\"xxx") && !shown.contains("S1x"));
        let secret_late = format!(
            "{}{{\"password\":\"S1x\"}}",
            "{\"a\":0},".repeat(JOURNAL_BODY_LIMIT / 8)
        );
        let (shown, _) = redact_and_cut(secret_late.as_bytes());
        assert!(!shown.contains("S1x") && shown.len() <= JOURNAL_BODY_LIMIT);
        let (shown, _) =
            redact_and_cut(format!("{}{{\"password\":\"S1x", "{\"a\":0},".repeat(2047)).as_bytes());
        assert!(!shown.contains("S1x"), "{}", &shown[shown.len() - 40..]);
        assert!(!few_values(",".repeat(MOST_TREE_VALUES + 1).as_bytes()));
        assert!(few_values(",".repeat(MOST_TREE_VALUES).as_bytes()));
    }

    #[test]
    fn a_body_reads_the_same_on_every_read_once_known_to_be_shown_as_sent() {
        let journal = Journal::new(10);
        let as_sent = "{ \"referenceId\" : \"u-1\",\n \"b\": 1e2 }";
        let secret = r#"{"referenceId": "u-2", "password": "hunter2"}"#;
        let invalid = b"{\"referenceId\": \"u-3\xff\"}";
        journal.record(with_body("/partner/links", as_sent));
        journal.record(with_body("/partner/links", secret));
        journal.record(Request {
            request_body: Some(invalid),
            ..with_body("/partner/links", "")
        });
        let contains = |text: &str| JournalFilter {
            body_contains: Some(text.to_owned()),
            ..JournalFilter::default()
        };
        let expect = |text: &str| Expectation {
            body_contains: Some(text.to_owned()),
            ..Expectation::default()
        };
        for _ in 0..3 {
            let bodies: Vec<Option<String>> = journal
                .list(&JournalFilter::default(), None)
                .into_iter()
                .map(|entry| entry.request.body)
                .collect();
            assert_eq!(
                bodies,
                [
                    Some("{\"referenceId\": \"u-3\u{fffd}\"}".to_owned()),
                    Some(r#"{"referenceId": "u-2", "password": "[redacted]"}"#.to_owned()),
                    Some(as_sent.to_owned()),
                ]
            );
            assert_eq!(journal.list(&contains(": 1e2 }"), None).len(), 1);
            assert_eq!(journal.verify(&expect(": 1e2 }"), None).0, 1);
            assert!(journal.list(&contains("hunter2"), None).is_empty());
            assert_eq!(journal.verify(&expect("hunter2"), None).0, 0);
            assert_eq!(journal.verify(&expect("[redacted]"), None).0, 1);
            assert_eq!(journal.verify(&expect("u-3\u{fffd}"), None).0, 1);
        }
    }

    #[test]
    fn secrets_in_an_object_sent_as_json_text_are_redacted_within() {
        let quoted = serde_json::json!({
            "metadata": r#"{"clientSecret": "CLIENTSECRET1", "plan": "gold", "password": "HUNTER2pw"}"#,
            "note": "{not json, and password: kept}",
        });
        let shown = redact_at("/data", quoted);
        let metadata = shown["metadata"].as_str().expect("still text");
        assert!(
            !metadata.contains("CLIENTSECRET1") && !metadata.contains("HUNTER2pw"),
            "{metadata}"
        );
        assert!(metadata.contains("gold"), "{metadata}");
        // A secret named without quotes, as a JavaScript object's text names it.
        assert_eq!(shown["note"], "{not json, and password: [redacted]}");
    }

    #[test]
    fn long_bodies_are_cut_at_the_stated_size() {
        let long = "x".repeat(JOURNAL_BODY_LIMIT + 10);
        let kept = message(&HeaderMap::new(), Some(long.as_bytes()));
        assert!(kept.body_truncated);
        assert_eq!(kept.body.map(|body| body.len()), Some(JOURNAL_BODY_LIMIT));
        // JSON of too many short values to fit however its strings are shortened: cut too.
        let many = serde_json::to_string(&vec!["abcdefgh"; JOURNAL_BODY_LIMIT / 8]).expect("json");
        let kept = message(&HeaderMap::new(), Some(many.as_bytes()));
        assert!(kept.body_truncated);
        assert_eq!(kept.body.map(|body| body.len()), Some(JOURNAL_BODY_LIMIT));
    }

    /// A create whose `userData` carries a large image is still found by its other fields.
    #[test]
    fn a_long_json_body_keeps_its_shape_and_bodyjson_finds_it() {
        let journal = Journal::new(10);
        let image = format!("data:image/png;base64,{}", "QUJD".repeat(5_000));
        let body = serde_json::json!({
            "referenceId": "user-42",
            "userData": {"idImage": image, "paymentMethod": {"type": "cash"}},
        })
        .to_string();
        journal.record(with_body("/partner/links", &body));
        let found = |expected: Value| {
            let expectation = Expectation {
                method: None,
                path: None,
                body_contains: None,
                body_json: Some(expected),
            };
            journal.verify(&expectation, None).0
        };
        assert_eq!(found(serde_json::json!({"referenceId": "user-42"})), 1);
        assert_eq!(
            found(serde_json::json!({"userData": {"paymentMethod": {"type": "cash"}}})),
            1
        );
        assert_eq!(found(serde_json::json!({"referenceId": "user-43"})), 0);
    }

    #[test]
    fn the_ring_stays_under_its_byte_bound() {
        let journal = Journal::new(100_000);
        let big = "y".repeat(JOURNAL_BODY_LIMIT);
        for _ in 0..(2 * JOURNAL_MAX_BYTES / JOURNAL_BODY_LIMIT) {
            journal.record(with_body("/partner/links", &big));
        }
        let rings = journal.rings.lock();
        assert!(rings.bytes <= JOURNAL_MAX_BYTES, "{}", rings.bytes);
        let ring = &rings.rings["pa"];
        assert!(ring.entries.len() < 2 * JOURNAL_MAX_BYTES / JOURNAL_BODY_LIMIT);
        assert_eq!(
            ring.bytes,
            ring.entries.iter().map(|entry| entry.size()).sum::<usize>()
        );
        assert_eq!(rings.bytes, ring.bytes + RING_BYTES);
    }

    /// The rings' books agree with their entries: every ring's bytes, its place in
    /// `by_bytes`, and the journal's total.
    fn books_balance(rings: &Rings) {
        assert_eq!(
            rings.by_bytes.len() + rings.strangers.len(),
            rings.rings.len()
        );
        let mut total = 0;
        for (label, ring) in &rings.rings {
            assert!(
                !ring.entries.is_empty(),
                "{label}: an empty ring is dropped"
            );
            assert!(ring.entries.len() <= rings.capacity.max(1), "{label}");
            let bytes: usize = ring.entries.iter().map(|entry| entry.size()).sum();
            assert_eq!(ring.bytes, bytes, "{label}");
            let set = if ring.established {
                &rings.by_bytes
            } else {
                &rings.strangers
            };
            assert!(set.contains(&(ring.bytes, label.clone())), "{label}");
            total += bytes + RING_BYTES;
        }
        assert_eq!(rings.bytes, total);
        assert!(rings.bytes <= JOURNAL_MAX_BYTES);
    }

    #[test]
    fn the_books_balance_through_full_rings_new_rings_and_the_byte_bound() {
        let big = "y".repeat(JOURNAL_BODY_LIMIT);
        for capacity in [1, 3, 1_000] {
            let journal = Journal::new(capacity);
            for n in 0..(3 * JOURNAL_MAX_BYTES / JOURNAL_BODY_LIMIT) {
                let body = if n % 3 == 0 { big.as_str() } else { "{}" };
                let mut entry = with_body("/partner/links", body);
                entry.tenant = Some(format!("p{}", n % 7).into());
                if n % 11 == 0 {
                    entry.tenant = None;
                }
                journal.record(entry);
                books_balance(&journal.rings.lock());
            }
            let kept = journal.list(&JournalFilter::default(), Some("p1"));
            assert!(!kept.is_empty() && kept.len() <= capacity, "{capacity}");
            assert!(kept.windows(2).all(|pair| pair[0].seq > pair[1].seq));
        }
    }

    #[test]
    fn a_busy_tenant_evicts_only_its_own_entries() {
        let journal = Journal::new(3);
        journal.record(request("/quiet", 200, Some("pquiet")));
        for n in 0..10 {
            journal.record(request(&format!("/busy/{n}"), 200, Some("pbusy")));
        }
        let quiet = journal.list(&JournalFilter::default(), Some("pquiet"));
        assert_eq!(quiet.len(), 1);
        assert_eq!(quiet[0].path, "/quiet");
        let busy = journal.list(&JournalFilter::default(), Some("pbusy"));
        let paths: Vec<_> = busy.iter().map(|entry| entry.path.as_str()).collect();
        assert_eq!(paths, ["/busy/9", "/busy/8", "/busy/7"]);
        // Admin sees every ring, newest first across tenants.
        let all = journal.list(&JournalFilter::default(), None);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].path, "/busy/9");
        assert_eq!(all[3].path, "/quiet");
    }

    #[test]
    fn past_the_byte_bound_the_largest_ring_pays() {
        let journal = Journal::new(100_000);
        let big = "y".repeat(JOURNAL_BODY_LIMIT);
        journal.record(with_body("/quiet", "{}"));
        let quiet_seq = journal.list(&JournalFilter::default(), Some("pa"))[0].seq;
        let mut noisy = with_body("/noisy", &big);
        noisy.tenant = Some("pnoisy".into());
        let probe = Journal::new(1);
        probe.record(noisy);
        let per_entry = probe.rings.lock().bytes;
        for _ in 0..(JOURNAL_MAX_BYTES / per_entry + 50) {
            let mut noisy = with_body("/noisy", &big);
            noisy.tenant = Some("pnoisy".into());
            journal.record(noisy);
        }
        let quiet = journal.list(&JournalFilter::default(), Some("pa"));
        assert_eq!(quiet.len(), 1);
        assert_eq!(quiet[0].seq, quiet_seq);
        assert!(journal.rings.lock().bytes <= JOURNAL_MAX_BYTES);
    }

    /// Rings of callers whose tenant does not exist (made-up keys, each a request) give way
    /// before any existing tenant's ring, however many they are and however small.
    #[test]
    fn past_the_byte_bound_made_up_keys_give_way_first() {
        let journal = Journal::new(100_000);
        for n in 0..300 {
            journal.record(request(
                &format!("/partner/links/{n}"),
                200,
                Some("pneighbour"),
            ));
        }
        let padding = "z".repeat(16_000);
        let mut made_up = 0;
        while made_up < 3 * JOURNAL_MAX_BYTES / 16_000 {
            let mut stranger = with_body("/partner/links", &padding);
            stranger.tenant = Some(format!("pstranger{made_up}").into());
            stranger.established = false;
            journal.record(stranger);
            made_up += 1;
        }
        assert!(journal.rings.lock().bytes <= JOURNAL_MAX_BYTES);
        let neighbour = journal.list(&JournalFilter::default(), Some("pneighbour"));
        assert_eq!(neighbour.len(), 300, "the neighbour's journal is whole");
        books_balance(&journal.rings.lock());
        // Once a stranger's tenant exists, its ring is one of the others.
        let mut known = request("/partner/links", 200, Some("pstranger1"));
        known.established = true;
        journal.record(known);
        books_balance(&journal.rings.lock());
    }

    #[test]
    fn verify_counts_matches_and_ranks_near_misses() {
        let journal = Journal::new(10);
        journal.record(with_body(
            "/partner/links",
            r#"{"referenceId":"user-42","userData":{"a":1}}"#,
        ));
        journal.record(with_body("/partner/links", r#"{"referenceId":"user-7"}"#));
        journal.record(request("/partner/links", 200, Some("pa")));
        let expectation = Expectation {
            method: Some("post".into()),
            path: Some("/partner/links".into()),
            body_json: Some(serde_json::json!({"referenceId": "user-42"})),
            ..Expectation::default()
        };
        let (matched, near) = journal.verify(&expectation, None);
        assert_eq!(matched, 1);
        assert_eq!(near[0].missed, ["bodyJson"]);
        assert_eq!(near[1].missed, ["method", "bodyJson"]);
        assert_eq!(journal.verify(&expectation, Some("other")).0, 0);
    }

    #[test]
    fn json_containment_is_recursive_and_arrays_go_element_by_element() {
        let actual = serde_json::json!({"a": {"b": 1, "c": [1, {"d": 2, "e": 3}]}, "f": null});
        assert!(json_contains(
            &actual,
            &serde_json::json!({"a": {"c": [1, {"d": 2}]}})
        ));
        assert!(!json_contains(
            &actual,
            &serde_json::json!({"a": {"c": [1]}})
        ));
        assert!(!json_contains(&actual, &serde_json::json!({"a": {"b": 2}})));
        assert!(!json_contains(&actual, &serde_json::json!({"g": null})));
    }

    /// A stray quote in a hand-built body does not put the members after it out of step.
    #[test]
    fn a_stray_quote_does_not_hide_the_secret_after_it() {
        for body in [
            r#"{"note": "5" screen", "password": "hunter2A"}"#,
            r#"{"n": 5", "password": "hunter2B"}"#,
            r#"{"note": "say "hi" now", "token": "hunter2C", "x": 1"#,
            r#"{"password": "hun"ter2D", "n": 1}"#,
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(
                !shown.contains("hunter2") && !shown.contains("ter2D"),
                "{body} shown as {shown}"
            );
            assert!(shown.contains(REDACTED), "{shown}");
        }
    }

    /// A member named twice hides nothing: the body is read as text, every member of it.
    #[test]
    fn a_member_named_twice_hides_no_secret() {
        for body in [
            r#"{"a":{"password":"hunter2"},"a":1}"#,
            r#"{"a":"m2m_test_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB","a":1}"#,
            r#"{"metadata":"{\"clientSecret\":\"hunter2\"}","metadata":"x"}"#,
            r#"{"password":"hunter2","password":"[redacted]"}"#,
            r#"{"pass\u0077ord":"hunter2","pass\u0077ord":"[redacted]"}"#,
            r#"{"m":"{\"a\":{\"token\":\"hunter2\"},\"a\":1}"}"#,
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(
                !shown.contains("hunter2") && !shown.contains("BBBB"),
                "{body} shown as {shown}"
            );
        }
        assert!(names_a_member_twice(br#"{"x":[{"a":1,"a":2}]}"#));
        assert!(!names_a_member_twice(
            br#"{"a":{"a":1},"b":[{"a":2},{"a":3}]}"#
        ));
    }

    /// In malformed JSON a secret member is found from its colon wherever the walk from the
    /// start lost step: after a comma left out, a quote escaped by mistake, JSON text in a
    /// string.
    #[test]
    fn a_secret_member_is_found_however_the_text_around_it_is_broken() {
        for body in [
            "{\n  \"user\": \"bob\"\n  \"password\": \"hunter2\"\n}",
            r#"{"user": "bob" "password": "hunter2", "x": 1}"#,
            r#"{"path":"C:\", "password":"hunter2",}"#,
            r#"{"path":"C:\", "token": {"v": "hunter2"},}"#,
            r#"{"meta":"{\"password\":\"hunter2\"}", }"#,
        ] {
            let shown = redact_body(body.as_bytes());
            assert!(!shown.contains("hunter2"), "{body} shown as {shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        // However long the name.
        let long = format!(r#"{{"{}password": "hunter2","#, "x".repeat(300));
        assert!(!redact_body(long.as_bytes()).contains("hunter2"));
        // Broken text that names no secret is left as it was.
        let plain = r#"{"path":"C:\", "note": "ok", "n": 1 "m": 2"#;
        assert_eq!(redact_body(plain.as_bytes()), plain);
        // Many colons after quotes cost one look back each.
        let many = "\"a\":".repeat(50_000);
        assert_eq!(redact_named(&many), many.as_str());
    }

    /// JSON text in a string that does not parse is redacted as a body that does not.
    #[test]
    fn malformed_json_text_in_a_string_is_redacted_within() {
        let body = br#"{"data": "{\"password\": \"hunter2B\",}", "plan": "gold"}"#;
        let shown = redact_body(body);
        assert!(
            !shown.contains("hunter2B") && shown.contains("gold"),
            "{shown}"
        );
        let quoted = serde_json::json!({"raw": r#"{"password": "5" x", "token": "DRIFTa2"}"#});
        let shown = redact_at("/data", quoted).to_string();
        assert!(!shown.contains("DRIFTa2"), "{shown}");
    }

    /// A JSON body is shown as sent, spacing and order, unless something in it is
    /// redacted; then too where redacting it in place reads the same.
    #[test]
    fn a_json_body_keeps_its_spacing_and_order_where_it_can() {
        for body in [
            r#"{"referenceId": "ord-2", "note": "100%"}"#,
            r#"{"referenceId": "ord-3", "note": "my token"}"#,
            r#"{"referenceId": "ord-4", "note": "é"}"#,
        ] {
            assert_eq!(redact_body(body.as_bytes()), body);
        }
        assert_eq!(
            redact_body(br#"{"referenceId": "ord-5", "password": "hunter2"}"#),
            r#"{"referenceId": "ord-5", "password": "[redacted]"}"#
        );
    }

    /// A key percent-encoded in a header's value is redacted, as in a query.
    #[test]
    fn a_percent_encoded_key_in_a_header_is_redacted() {
        let headers = [
            ("referer", b"http://x/?key=m2m%5Ftest%5FLEAKc1".as_slice()),
            ("x-other", b"m2m%5ftest%5fLEAKa7".as_slice()),
            ("x-plain", b"100%".as_slice()),
        ];
        let shown = show_headers(headers.into_iter());
        assert!(!shown["referer"].contains("LEAK"), "{shown:?}");
        assert_eq!(shown["x-other"], REDACTED);
        assert_eq!(shown["x-plain"], "100%");
    }

    /// The dashboard's table reads the newest entries without their bodies.
    #[test]
    fn the_newest_entries_come_without_bodies_and_with_the_count() {
        let journal = Journal::new(10);
        for n in 0..4 {
            journal.record(with_body(
                &format!("/partner/links/{n}"),
                r#"{"password":"x"}"#,
            ));
        }
        let (total, newest) = journal.newest(None, 2);
        assert_eq!(total, 4);
        let paths: Vec<_> = newest.iter().map(|entry| entry.path.as_str()).collect();
        assert_eq!(paths, ["/partner/links/3", "/partner/links/2"]);
        assert!(
            newest
                .iter()
                .all(|entry| entry.request.body.is_none() && entry.request.headers.is_empty())
        );
        let listed = journal.list(&JournalFilter::default(), None);
        assert_eq!(listed[0].seq, newest[0].seq);
        assert!(listed[0].request.body.is_some());
    }

    #[test]
    fn the_ring_keeps_only_the_newest_entries_up_to_its_capacity() {
        let journal = Journal::new(3);
        for n in 0..5 {
            journal.record(request(&format!("/partner/links/{n}"), 200, None));
        }
        let entries = journal.list(&JournalFilter::default(), None);
        let paths: Vec<_> = entries.iter().map(|entry| entry.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/partner/links/4", "/partner/links/3", "/partner/links/2"]
        );
        assert_eq!(entries[0].seq, 5);
    }

    /// A list or a verify reads the entries it copied out after the lock is let go; a
    /// request recorded meanwhile into a full ring takes a new allocation instead of
    /// overwriting the one being read. When nobody reads it, the oldest is reused.
    #[test]
    fn an_entry_read_after_the_lock_is_not_overwritten_by_a_newer_one() {
        let journal = Journal::new(1);
        journal.record(request("/a", 200, Some("pa")));
        let held = journal.visible(Some("pa"));
        journal.record(request("/b", 200, Some("pa")));
        assert_eq!(held[0].path(), "/a");
        let listed = journal.list(&JournalFilter::default(), Some("pa"));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, "/b");
        drop(held);
        let before = Arc::as_ptr(&journal.visible(Some("pa"))[0]);
        journal.record(request("/c", 200, Some("pa")));
        let after = journal.visible(Some("pa"));
        assert_eq!(after[0].path(), "/c");
        assert_eq!(
            Arc::as_ptr(&after[0]),
            before,
            "the oldest entry's allocation reused"
        );
    }

    /// A filtered delete forgets what a list with the same filter shows and nothing else,
    /// within what the caller may see; a ring it empties goes, and the books still balance.
    #[test]
    fn a_filtered_forget_drops_only_the_matching_entries_the_caller_may_see() {
        let journal = Journal::new(10);
        for (path, status, tenant) in [
            ("/a", 200, Some("pa")),
            ("/a/x", 404, Some("pa")),
            ("/b", 404, Some("pa")),
            ("/a", 404, Some("pb")),
            ("/a", 404, None),
            ("/c", 201, Some("pc")),
        ] {
            journal.record(request(path, status, tenant));
        }
        let paths = |tenant: Option<&str>| -> Vec<String> {
            journal
                .list(&JournalFilter::default(), tenant)
                .into_iter()
                .map(|entry| entry.path)
                .collect()
        };
        let status_4xx = JournalFilter {
            status: Some("4xx".into()),
            path: Some("/a*".into()),
            ..JournalFilter::default()
        };
        journal.forget(&status_4xx, Some("pa"));
        assert_eq!(paths(Some("pa")), ["/b", "/a"]);
        assert_eq!(paths(Some("pb")), ["/a"], "another tenant's entry stays");
        books_balance(&journal.rings.lock());
        // The admin's delete reaches every ring, `tenant` naming one of them.
        journal.forget(
            &JournalFilter {
                tenant: Some("pc".into()),
                ..JournalFilter::default()
            },
            None,
        );
        assert!(paths(Some("pc")).is_empty());
        assert!(
            !journal.rings.lock().rings.contains_key("pc"),
            "an empty ring goes"
        );
        journal.forget(&status_4xx, None);
        assert_eq!(paths(None), ["/b", "/a"], "the untenanted ring's too");
        assert_eq!(journal.rings.lock().rings.len(), 1);
        books_balance(&journal.rings.lock());
    }

    #[test]
    fn a_tenant_sees_and_clears_only_its_own_entries() {
        let journal = Journal::new(10);
        journal.record(request("/a", 200, Some("pa")));
        journal.record(request("/b", 200, Some("pb")));
        journal.record(request("/c", 401, None));
        assert_eq!(journal.list(&JournalFilter::default(), Some("pa")).len(), 1);
        journal.clear(Some("pa"));
        assert_eq!(journal.list(&JournalFilter::default(), Some("pa")).len(), 0);
        assert_eq!(journal.list(&JournalFilter::default(), None).len(), 2);
    }
}
