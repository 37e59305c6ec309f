//! The request journal: a bounded ring of the last `--journal-size` requests to the vendor
//! APIs (method, path, query, status, sandbox time, tenant, duration). The serving layer
//! records each request; `GET|DELETE /_sandbox/requests` reads and clears it. Each tenant
//! sees and clears only its own entries; admin sees all of them.

use std::collections::VecDeque;
use std::sync::Arc;

use http::Method;
use linkbox_contracts::sandbox::JournalEntry;
use linkbox_contracts::timefmt;
use parking_lot::Mutex;
use time::OffsetDateTime;

/// The journal handle: cheap to clone, bounded, oldest entries dropped first.
#[derive(Clone)]
pub struct Journal {
    ring: Arc<Mutex<Ring>>,
}

struct Ring {
    entries: VecDeque<Entry>,
    capacity: usize,
    next_seq: u64,
}

struct Entry {
    seq: u64,
    method: Method,
    path: String,
    query: Option<String>,
    status: u16,
    dropped: bool,
    time: OffsetDateTime,
    tenant: Option<Arc<str>>,
    duration_ms: u64,
}

/// One request to record.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub dropped: bool,
    pub time: OffsetDateTime,
    pub tenant: Option<Arc<str>>,
    pub duration_ms: u64,
}

/// `GET /_sandbox/requests` filters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalFilter {
    pub method: Option<String>,
    /// Exact, or a prefix when it ends with `*`.
    pub path: Option<String>,
    /// `404`, or a class like `4xx`.
    pub status: Option<String>,
}

impl Journal {
    /// A journal keeping the last `capacity` requests (at least one).
    pub fn new(capacity: usize) -> Journal {
        let capacity = capacity.max(1);
        Journal {
            ring: Arc::new(Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(4_096)),
                capacity,
                next_seq: 1,
            })),
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity
    }

    pub fn record(&self, request: Request) {
        let mut ring = self.ring.lock();
        if ring.entries.len() >= ring.capacity {
            ring.entries.pop_front();
        }
        let seq = ring.next_seq;
        ring.next_seq += 1;
        ring.entries.push_back(Entry {
            seq,
            method: request.method,
            path: request.path,
            query: request.query,
            status: request.status,
            dropped: request.dropped,
            time: request.time,
            tenant: request.tenant,
            duration_ms: request.duration_ms,
        });
    }

    /// Matching entries `tenant` may see (`None`: all), newest first.
    pub fn list(&self, filter: &JournalFilter, tenant: Option<&str>) -> Vec<JournalEntry> {
        let ring = self.ring.lock();
        ring.entries
            .iter()
            .rev()
            .filter(|entry| visible(entry, tenant) && filter.matches(entry))
            .map(|entry| JournalEntry {
                seq: entry.seq,
                method: entry.method.to_string(),
                path: entry.path.clone(),
                query: entry.query.clone(),
                status: entry.status,
                dropped: entry.dropped,
                time: timefmt::millis(entry.time),
                tenant: entry.tenant.as_deref().map(str::to_owned),
                duration_ms: entry.duration_ms,
            })
            .collect()
    }

    /// Forgets the entries `tenant` may see (`None`: all).
    pub fn clear(&self, tenant: Option<&str>) {
        self.ring
            .lock()
            .entries
            .retain(|entry| !visible(entry, tenant));
    }
}

fn visible(entry: &Entry, tenant: Option<&str>) -> bool {
    tenant.is_none_or(|slug| entry.tenant.as_deref() == Some(slug))
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
            .is_none_or(|method| entry.method.as_str().eq_ignore_ascii_case(method))
            && self
                .path
                .as_deref()
                .is_none_or(|pattern| path_matches(pattern, &entry.path))
            && self.status.as_deref().is_none_or(|status| {
                let code = entry.status.to_string();
                match status.strip_suffix("xx") {
                    Some(class) => code.starts_with(class),
                    None => code == status,
                }
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    /// A `GET path` answered `status`, for `tenant`.
    pub(crate) fn request(path: &str, status: u16, tenant: Option<&str>) -> Request {
        Request {
            method: Method::GET,
            path: path.into(),
            query: None,
            status,
            dropped: false,
            time: datetime!(2026-02-10 12:00 UTC),
            tenant: tenant.map(Into::into),
            duration_ms: 1,
        }
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
