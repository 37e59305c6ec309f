//! The request journal: a bounded ring of the last `--journal-size` requests to the vendor
//! APIs (method, path, query, status, sandbox time, tenant, duration), recorded by a wrapper
//! around every route, and `GET|DELETE /_sandbox/requests` to read and clear it.
//!
//! Control requests (`/_sandbox/...`) are not recorded, so inspecting the journal does not
//! fill it. Each tenant sees and clears only its own entries; admin sees all of them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, Method, StatusCode};
use linkbox_contracts::sandbox::{JournalEntry, JournalPage};
use linkbox_contracts::timefmt;
use parking_lot::Mutex;
use time::OffsetDateTime;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use super::error::{ControlError, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::{DropConnection, query_pairs, raw_query};

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

    fn parse(query: &str) -> Result<JournalFilter, ControlError> {
        let mut filter = JournalFilter::default();
        for (name, value) in query_pairs(query) {
            match name.as_str() {
                "method" => filter.method = Some(value),
                "path" => filter.path = Some(value),
                "status" => {
                    let ok = value.len() == 3
                        && (value.bytes().all(|b| b.is_ascii_digit())
                            || (value.as_bytes()[0].is_ascii_digit() && value.ends_with("xx")));
                    if !ok {
                        return Err(ControlError::invalid(
                            "The status filter must be a status code like 404 or a class like 4xx",
                        ));
                    }
                    filter.status = Some(value);
                }
                other => {
                    return Err(ControlError::invalid(format!(
                        "Unknown filter {other:?}: use method, path or status"
                    )));
                }
            }
        }
        Ok(filter)
    }
}

/// Wraps `inner` so that every request outside `/_sandbox` is recorded with its outcome.
pub fn recorded(app: App, inner: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    let clock = app.clock.clone();
    warp::any()
        .map(move || (Instant::now(), clock.now()))
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(inner)
        .map(
            move |(started, time): (Instant, OffsetDateTime),
                  method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  response: Response| {
                let path = path.as_str();
                if !is_control(path) {
                    app.journal.record(Request {
                        method,
                        path: path.to_owned(),
                        query: (!query.is_empty()).then_some(query),
                        status: response.status().as_u16(),
                        dropped: response.extensions().get::<DropConnection>().is_some(),
                        time,
                        tenant: super::scope::request_tenant(&app, &headers),
                        duration_ms: u64::try_from(started.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                    });
                }
                response
            },
        )
        .boxed()
}

/// Whether `path` is the control API's own.
pub fn is_control(path: &str) -> bool {
    path == "/_sandbox" || path.starts_with("/_sandbox/")
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("requests")
        .and(list(app.clone()).or(clear(app)).unify())
        .boxed()
}

/// GET /_sandbox/requests?method=&path=&status=
fn list(app: App) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .map(|app: App, headers: HeaderMap, query: String| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let filter = JournalFilter::parse(&query)?;
                Ok(crate::http::json(
                    StatusCode::OK,
                    &JournalPage {
                        requests: app.journal.list(&filter, scope.slug()),
                        capacity: app.journal.capacity(),
                    },
                ))
            })())
        })
        .boxed()
}

/// DELETE /_sandbox/requests
fn clear(app: App) -> BoxedFilter<(Response,)> {
    warp::delete()
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render(Scope::of(&app, &headers).map(|scope| {
                app.journal.clear(scope.slug());
                no_content()
            }))
        })
        .boxed()
}

/// 204 with no body.
pub fn no_content() -> Response {
    let mut response = Response::new(Vec::<u8>::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn request(path: &str, status: u16, tenant: Option<&str>) -> Request {
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
    fn filters_match_method_path_prefix_and_status_class() {
        let journal = Journal::new(10);
        journal.record(request("/partner/links", 201, None));
        journal.record(request("/partner/links/x", 404, None));
        journal.record(request("/other", 404, None));
        let filter = |query: &str| JournalFilter::parse(query).expect("valid filter");
        assert_eq!(journal.list(&filter("status=4xx"), None).len(), 2);
        assert_eq!(journal.list(&filter("path=/partner/*"), None).len(), 2);
        assert_eq!(
            journal
                .list(&filter("path=/partner/*&status=404&method=get"), None)
                .len(),
            1
        );
        assert_eq!(journal.list(&filter("method=POST"), None).len(), 0);
        assert!(JournalFilter::parse("status=abc").is_err());
        assert!(JournalFilter::parse("colour=red").is_err());
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
