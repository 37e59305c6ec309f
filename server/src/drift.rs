//! The drift report of shadow mode: what the comparisons of the vendor's answers with
//! linkbox's own found, kept per tenant and read back at `GET /_sandbox/drift`.
//!
//! A difference is kept once per tenant, endpoint, rule and pointer, with a count, the first
//! and the last example and when each was seen (wall clock: drift is about real traffic,
//! not the sandbox clock). A tenant sees and clears only its own entries; the admin sees
//! every tenant's, merged by endpoint, rule and pointer. Bounds: at most
//! [`MAX_DIFFERENCES`] kinds of difference and [`MAX_ERRORS`] recent errors per tenant, and
//! [`MAX_TOTAL_DIFFERENCES`] kinds across all tenants. A new kind past the tenant's bound is
//! counted in `errors`, not kept. Past the bound in all, the tenant holding the most kinds
//! gives up the one it saw longest ago, so that a few tenants cannot fill the report for
//! everyone; when the new kind's tenant holds within one of the most, its kind is counted
//! instead. At most [`MAX_TENANTS`] tenants are kept apart — past
//! that, a new tenant's comparisons are counted under no tenant (the admin's view) — and
//! example values longer than [`MAX_VALUE_BYTES`] when serialised are cut to a string, and
//! error messages past [`MAX_MESSAGE_BYTES`] are cut, saying how long they were, as are
//! endpoints and pointers past [`MAX_PLACE_BYTES`]. So a
//! stranger with fresh keys cannot make the report grow without bound. An M2M key in an
//! endpoint, a pointer or a message (a path a client sent one in by mistake, a field the
//! vendor named with one) is redacted as the journal redacts it ([`crate::keys`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use linkbox_contracts::sandbox::{DriftDifference, DriftError, DriftExample, DriftReport};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::keys::without_keys;

/// Kinds of difference kept per tenant.
pub const MAX_DIFFERENCES: usize = 500;
/// Recent errors kept per tenant.
pub const MAX_ERRORS: usize = 20;
/// Kinds of difference kept across all tenants.
pub const MAX_TOTAL_DIFFERENCES: usize = 10_000;
/// Tenants kept apart.
pub const MAX_TENANTS: usize = 1_000;
/// Longest example value kept as it is, serialised.
pub const MAX_VALUE_BYTES: usize = 2048;
/// Longest error message kept whole: a message may quote what a client sent (a path of
/// 60 KB), and twenty of them per tenant, a thousand tenants, must stay small.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest endpoint or pointer kept whole: an endpoint no route knows is the client's own
/// path (60 KB under the head's limit) and a pointer the vendor's field names, each kept in
/// every kind and every recent error; past this they are cut, saying how long they were
/// (distinct ones alike that far are then one kind).
pub const MAX_PLACE_BYTES: usize = 256;

/// One difference one comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// `status`, `format`, ... (the comparison's rule names).
    pub rule: &'static str,
    pub pointer: String,
    pub upstream: Value,
    pub linkbox: Value,
    pub fact: Option<&'static str>,
    /// Whether the fact is the vendor's documented behaviour.
    pub doc: bool,
}

/// A difference seen for the first time (for this tenant): worth a line on stderr.
#[derive(Debug, Clone, PartialEq)]
pub struct New {
    pub endpoint: String,
    pub rule: &'static str,
    pub pointer: String,
    pub upstream: Value,
    pub linkbox: Value,
    pub doc: bool,
}

/// The report's store.
#[derive(Default)]
pub struct Drift {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tenants: HashMap<String, Tenant>,
    /// Kinds kept across all tenants.
    kinds: usize,
}

impl Inner {
    /// `tenant`'s entry, or the no-tenant one when too many tenants are kept already.
    fn tenant(&mut self, tenant: Option<&str>) -> &mut Tenant {
        let label = self.label(tenant).to_owned();
        self.tenants.entry(label).or_default()
    }

    /// The label `tenant`'s entries are kept under: its own, or the no-tenant one when too
    /// many tenants are kept already.
    fn label<'a>(&self, tenant: Option<&'a str>) -> &'a str {
        let label = tenant.unwrap_or(NO_TENANT);
        if self.tenants.contains_key(label) || self.tenants.len() < MAX_TENANTS {
            label
        } else {
            NO_TENANT
        }
    }

    /// With the report full, makes room for one more kind of the tenant `label`, which
    /// holds `holds`: the tenant holding the most kinds, if it holds at least two more,
    /// loses the kind it saw longest ago (and is told why in its recent errors). Whether
    /// there is room now.
    fn make_room(&mut self, label: &str, holds: usize, now: OffsetDateTime) -> bool {
        let Some((most, _)) = self
            .tenants
            .iter()
            .filter(|(other, _)| other.as_str() != label)
            .map(|(other, seen)| (other, seen.differences.len()))
            .filter(|&(_, count)| count > holds + 1)
            .max_by_key(|&(_, count)| count)
        else {
            return false;
        };
        let most = most.clone();
        let Some(seen) = self.tenants.get_mut(&most) else {
            return false;
        };
        let Some(stalest) = seen
            .differences
            .iter()
            .min_by_key(|(_, entry)| entry.last_seen)
            .map(|(key, _)| key.clone())
        else {
            return false;
        };
        seen.differences.remove(&stalest);
        seen.errors += 1;
        push_error(
            &mut seen.recent,
            &stalest.0,
            format!(
                "a kind of difference ({} at {:?}) was dropped to make room for another \
                 tenant's: the report holds {MAX_TOTAL_DIFFERENCES} in all, and the tenant \
                 holding the most gives up the one it saw longest ago",
                stalest.1, stalest.2
            ),
            now,
        );
        self.kinds -= 1;
        true
    }
}

#[derive(Default)]
struct Tenant {
    compared: u64,
    errors: u64,
    recent: VecDeque<DriftError>,
    differences: HashMap<Key, Entry>,
}

type Key = (String, &'static str, String);

struct Entry {
    first: DriftExample,
    last: Option<DriftExample>,
    count: u64,
    first_seen: OffsetDateTime,
    last_seen: OffsetDateTime,
    fact: Option<&'static str>,
    doc: bool,
}

/// The label a request without a tenant is kept under; only the admin sees it.
const NO_TENANT: &str = "";

impl Drift {
    /// Counts one comparison of a request to `endpoint` and keeps what it found; returns the
    /// differences this tenant had not seen before.
    pub fn record(&self, tenant: Option<&str>, endpoint: &str, found: Vec<Found>) -> Vec<New> {
        let endpoint = &*shorten(without_keys(endpoint).into_owned(), MAX_PLACE_BYTES);
        let now = OffsetDateTime::now_utc();
        let mut inner = self.inner.lock();
        let label = inner.label(tenant).to_owned();
        inner.tenant(tenant).compared += 1;
        let mut new = Vec::new();
        for found in found {
            let example = DriftExample {
                upstream: cut(found.upstream),
                linkbox: cut(found.linkbox),
            };
            let key = (
                endpoint.to_owned(),
                found.rule,
                shorten(without_keys(&found.pointer).into_owned(), MAX_PLACE_BYTES),
            );
            let holds = {
                let seen = inner.tenants.entry(label.clone()).or_default();
                if let Some(entry) = seen.differences.get_mut(&key) {
                    entry.count += 1;
                    entry.last_seen = now;
                    entry.last = Some(example);
                    continue;
                }
                seen.differences.len()
            };
            // Past the bound of all tenants together, the tenant holding the most makes
            // room, so that a few tenants' traffic cannot fill the report for everyone.
            let full = if holds >= MAX_DIFFERENCES {
                Some(format!("{MAX_DIFFERENCES} per tenant"))
            } else if inner.kinds >= MAX_TOTAL_DIFFERENCES && !inner.make_room(&label, holds, now) {
                Some(format!(
                    "{MAX_TOTAL_DIFFERENCES} in all, and this tenant holds as many as any other"
                ))
            } else {
                None
            };
            let seen = inner.tenants.entry(label.clone()).or_default();
            if let Some(full) = full {
                seen.errors += 1;
                push_error(
                    &mut seen.recent,
                    endpoint,
                    format!(
                        "a new kind of difference ({} at {:?}) was not kept: the report holds \
                         {full}; DELETE /_sandbox/drift to start over",
                        found.rule, key.2
                    ),
                    now,
                );
                continue;
            }
            new.push(New {
                endpoint: endpoint.to_owned(),
                rule: found.rule,
                pointer: key.2.clone(),
                upstream: example.upstream.clone(),
                linkbox: example.linkbox.clone(),
                doc: found.doc,
            });
            seen.differences.insert(
                key,
                Entry {
                    first: example,
                    last: None,
                    count: 1,
                    first_seen: now,
                    last_seen: now,
                    fact: found.fact,
                    doc: found.doc,
                },
            );
            inner.kinds += 1;
        }
        new
    }

    /// Records a request that could not be compared.
    pub fn error(&self, tenant: Option<&str>, endpoint: &str, message: String) {
        let message = without_keys(&message).into_owned();
        let mut inner = self.inner.lock();
        let tenant = inner.tenant(tenant);
        tenant.errors += 1;
        push_error(
            &mut tenant.recent,
            &without_keys(endpoint),
            message,
            OffsetDateTime::now_utc(),
        );
    }

    /// Says `message` among the recent errors about a request that was compared (what its
    /// comparison passed over), without counting it as an error: it is counted as compared.
    pub fn note(&self, tenant: Option<&str>, endpoint: &str, message: String) {
        let message = without_keys(&message).into_owned();
        let mut inner = self.inner.lock();
        push_error(
            &mut inner.tenant(tenant).recent,
            &without_keys(endpoint),
            message,
            OffsetDateTime::now_utc(),
        );
    }

    /// The report for one tenant, or for everyone (`None`) merged by endpoint, rule and
    /// pointer.
    pub fn report(&self, tenant: Option<&str>) -> DriftReport {
        let inner = self.inner.lock();
        let mut compared = 0;
        let mut errors = 0;
        let mut recent: Vec<DriftError> = Vec::new();
        let mut merged: BTreeMap<&Key, Merged> = BTreeMap::new();
        for (label, seen) in &inner.tenants {
            if tenant.is_some_and(|wanted| wanted != label) {
                continue;
            }
            compared += seen.compared;
            errors += seen.errors;
            recent.extend(seen.recent.iter().cloned());
            for (key, entry) in &seen.differences {
                merged
                    .entry(key)
                    .and_modify(|merged| merged.add(entry))
                    .or_insert_with(|| Merged::of(entry));
            }
        }
        recent.sort_by(|a, b| b.at.cmp(&a.at));
        recent.truncate(MAX_ERRORS);
        // A tenant whose comparisons went to the no-tenant entry reads an empty report that
        // would say "no drift": it says where they went instead.
        if let Some(wanted) = tenant
            && inner.label(Some(wanted)) == NO_TENANT
            && wanted != NO_TENANT
        {
            recent.insert(
                0,
                DriftError {
                    endpoint: String::new(),
                    message: format!(
                        "{ELSEWHERE} {MAX_TENANTS} tenants apart and holds that many: \
                         this tenant's comparisons are counted under no tenant, in the admin's \
                         report, until the admin clears the report (DELETE /_sandbox/drift)"
                    ),
                    at: format(OffsetDateTime::now_utc()),
                },
            );
        }
        let mut differences: Vec<(OffsetDateTime, DriftDifference)> = merged
            .into_iter()
            .map(|((endpoint, rule, pointer), merged)| {
                (
                    merged.last_seen,
                    DriftDifference {
                        id: id(endpoint, rule, pointer),
                        endpoint: endpoint.clone(),
                        rule: (*rule).to_owned(),
                        pointer: pointer.clone(),
                        upstream: merged.first.upstream,
                        linkbox: merged.first.linkbox,
                        last: merged.last,
                        count: merged.count,
                        first_seen: format(merged.first_seen),
                        last_seen: format(merged.last_seen),
                        tag: if merged.doc { "doc" } else { "design" }.to_owned(),
                        fact: merged.fact.map(str::to_owned),
                    },
                )
            })
            .collect();
        differences.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        DriftReport {
            compared,
            errors,
            recent_errors: recent,
            differences: differences.into_iter().map(|(_, diff)| diff).collect(),
        }
    }

    /// Forgets one tenant's entries and counts, or everyone's.
    pub fn clear(&self, tenant: Option<&str>) {
        let mut inner = self.inner.lock();
        match tenant {
            Some(label) => {
                if let Some(gone) = inner.tenants.remove(label) {
                    inner.kinds -= gone.differences.len();
                }
            }
            None => *inner = Inner::default(),
        }
    }
}

/// One difference across tenants, for the admin's report.
struct Merged {
    first: DriftExample,
    first_seen: OffsetDateTime,
    last: Option<DriftExample>,
    last_seen: OffsetDateTime,
    count: u64,
    fact: Option<&'static str>,
    doc: bool,
}

impl Merged {
    fn of(entry: &Entry) -> Merged {
        Merged {
            first: entry.first.clone(),
            first_seen: entry.first_seen,
            last: entry.last.clone(),
            last_seen: entry.last_seen,
            count: entry.count,
            fact: entry.fact,
            doc: entry.doc,
        }
    }

    fn add(&mut self, entry: &Entry) {
        self.count += entry.count;
        if entry.first_seen < self.first_seen {
            // The other tenant's first example is older: it becomes the first, and what
            // was first is at worst the last.
            self.last = self.last.take().or_else(|| Some(self.first.clone()));
            self.first = entry.first.clone();
            self.first_seen = entry.first_seen;
        }
        if entry.last_seen > self.last_seen {
            self.last = entry.last.clone().or_else(|| Some(entry.first.clone()));
            self.last_seen = entry.last_seen;
        }
    }
}

fn push_error(
    recent: &mut VecDeque<DriftError>,
    endpoint: &str,
    message: String,
    at: OffsetDateTime,
) {
    if recent.len() >= MAX_ERRORS {
        recent.pop_back();
    }
    recent.push_front(DriftError {
        endpoint: shorten(endpoint.to_owned(), MAX_PLACE_BYTES),
        message: shorten(message, MAX_MESSAGE_BYTES),
        at: format(at),
    });
}

/// `message`, or its first `limit` bytes (at a character's edge) saying how long it was.
pub fn shorten(mut message: String, limit: usize) -> String {
    let length = message.len();
    if length <= limit {
        return message;
    }
    let mut end = limit;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!("… ({length} bytes in all)"));
    // Kept for as long as the report is: without its first allocation, which `truncate`
    // keeps (a 60 KB path held whole behind each 256-byte one).
    message.shrink_to_fit();
    message
}

/// A stable id for one endpoint, rule and pointer.
fn id(endpoint: &str, rule: &str, pointer: &str) -> String {
    let digest = Sha256::new()
        .chain_update(endpoint)
        .chain_update([0])
        .chain_update(rule)
        .chain_update([0])
        .chain_update(pointer)
        .finalize();
    format!("drift_{}", hex::encode(&digest[..6]))
}

fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `value`, or a string saying how long it was when it is too long to keep.
fn cut(value: Value) -> Value {
    let length = value.to_string().len();
    if length <= MAX_VALUE_BYTES {
        value
    } else {
        Value::String(format!("({length} bytes of JSON, not kept)"))
    }
}

/// The report as JUnit XML: one test suite, one test case per endpoint and rule, failing
/// with every pointer it was seen at.
pub fn junit(report: &DriftReport) -> String {
    let mut cases: BTreeMap<(&str, &str), Vec<&DriftDifference>> = BTreeMap::new();
    for difference in &report.differences {
        cases
            .entry((difference.endpoint.as_str(), difference.rule.as_str()))
            .or_default()
            .push(difference);
    }
    let elsewhere = report
        .recent_errors
        .iter()
        .find(|error| error.message.starts_with(ELSEWHERE));
    let errors = usize::from(elsewhere.is_some());
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"linkbox shadow drift\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\">\n",
        cases.len() + errors,
        cases.len()
    ));
    xml.push_str(&format!(
        "  <testsuite name=\"drift\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\">\n",
        cases.len() + errors,
        cases.len()
    ));
    xml.push_str(&format!(
        "    <properties><property name=\"compared\" value=\"{}\"/><property name=\"errors\" value=\"{}\"/></properties>\n",
        report.compared, report.errors
    ));
    for ((endpoint, rule), differences) in &cases {
        let mut text = String::new();
        for difference in differences {
            text.push_str(&format!(
                "[{}] {} at {:?}: upstream {} / linkbox {} ({} time(s), {}{})\n",
                difference.tag,
                difference.rule,
                difference.pointer,
                difference.upstream,
                difference.linkbox,
                difference.count,
                difference.first_seen,
                difference
                    .fact
                    .as_deref()
                    .map(|fact| format!(", fact {fact}"))
                    .unwrap_or_default(),
            ));
        }
        xml.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
            escape(endpoint),
            escape(rule),
            escape(&format!("{} difference(s) under rule {rule}", differences.len())),
            escape(rule),
            escape(&text),
        ));
    }
    if let Some(note) = elsewhere {
        xml.push_str(&format!(
            "    <testcase classname=\"drift report\" name=\"this tenant's comparisons\">\n      <error message=\"{}\" type=\"elsewhere\"/>\n    </testcase>\n",
            escape(&note.message),
        ));
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// How the note to a tenant whose comparisons went to the no-tenant entry begins: its
/// JUnit report fails on it rather than passing with no test case.
const ELSEWHERE: &str = "the drift report keeps";

/// XML text and attribute escaping.
fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_error_messages_are_cut_at_a_characters_edge_saying_how_long() {
        let drift = Drift::default();
        let long = format!("not compared: the vendor's {}", "é".repeat(40_000));
        drift.error(Some("globex"), "GET /partner/links/{id}", long.clone());
        drift.error(Some("globex"), "GET /partner/links/{id}", "short".into());
        let report = drift.report(Some("globex"));
        let kept = &report.recent_errors[1].message;
        assert!(kept.len() < MAX_MESSAGE_BYTES + 40, "{}", kept.len());
        assert!(kept.starts_with("not compared: the vendor's é"));
        assert!(
            kept.ends_with(&format!("… ({} bytes in all)", long.len())),
            "{kept}"
        );
        assert_eq!(report.recent_errors[0].message, "short");
    }

    /// A client's 60 KB path (an endpoint no route knows) and a vendor's long field name
    /// are kept cut, in each kind and each recent error, saying how long they were: ten
    /// thousand kinds of them held 600 MB.
    #[test]
    fn long_endpoints_and_pointers_are_cut_where_they_are_kept() {
        let drift = Drift::default();
        let endpoint = format!("GET /partner/{}", "abcdefghijklmnopqrs/".repeat(3_000));
        let pointer = format!("/data/{}", "f".repeat(10_000));
        let new = drift.record(
            Some("globex"),
            &endpoint,
            vec![found("extra", &pointer, json!(1), Value::Null)],
        );
        assert_eq!(new.len(), 1);
        drift.error(Some("globex"), &endpoint, "not compared".into());
        let report = drift.report(Some("globex"));
        let kept = &report.differences[0];
        for (place, whole) in [(&kept.endpoint, &endpoint), (&kept.pointer, &pointer)] {
            assert!(place.len() < MAX_PLACE_BYTES + 40, "{}", place.len());
            assert!(
                place.ends_with(&format!("… ({} bytes in all)", whole.len())),
                "{place}"
            );
        }
        let error = &report.recent_errors[0].endpoint;
        assert!(error.len() < MAX_PLACE_BYTES + 40, "{}", error.len());
        // The same long place again is the same kind.
        drift.record(
            Some("globex"),
            &endpoint,
            vec![found("extra", &pointer, json!(2), Value::Null)],
        );
        let report = drift.report(Some("globex"));
        assert_eq!(report.differences.len(), 1);
        assert_eq!(report.differences[0].count, 2);
    }

    /// A text cut is kept in an allocation of its size, not the original's.
    #[test]
    fn a_cut_text_holds_only_what_it_keeps() {
        let kept = shorten("abcdefghijklmnopqrs/".repeat(3_000), MAX_PLACE_BYTES);
        assert!(
            kept.capacity() < MAX_PLACE_BYTES + 40,
            "{}",
            kept.capacity()
        );
        let kept = shorten("é".repeat(30_000), MAX_MESSAGE_BYTES);
        assert!(
            kept.capacity() < MAX_MESSAGE_BYTES + 40,
            "{}",
            kept.capacity()
        );
    }

    fn found(rule: &'static str, pointer: &str, upstream: Value, linkbox: Value) -> Found {
        Found {
            rule,
            pointer: pointer.to_owned(),
            upstream,
            linkbox,
            fact: Some("M2M-CREATE-DEFAULT-EXPIRY"),
            doc: true,
        }
    }

    #[test]
    fn a_difference_is_kept_once_with_a_count_and_its_first_and_last_examples() {
        let drift = Drift::default();
        let endpoint = "POST /partner/links";
        let new = drift.record(
            Some("acme"),
            endpoint,
            vec![found("value", "/data/language", json!("en"), json!("es"))],
        );
        assert_eq!(new.len(), 1);
        let again = drift.record(
            Some("acme"),
            endpoint,
            vec![found("value", "/data/language", json!("fr"), json!("es"))],
        );
        assert!(again.is_empty(), "seen before: {again:?}");
        drift.record(Some("acme"), endpoint, Vec::new());
        let report = drift.report(Some("acme"));
        assert_eq!(report.compared, 3);
        assert_eq!(report.differences.len(), 1);
        let difference = &report.differences[0];
        assert_eq!(difference.count, 2);
        assert_eq!(difference.upstream, json!("en"));
        assert_eq!(
            difference.last.as_ref().map(|last| &last.upstream),
            Some(&json!("fr"))
        );
        assert_eq!(difference.tag, "doc");
        assert_eq!(
            difference.fact.as_deref(),
            Some("M2M-CREATE-DEFAULT-EXPIRY")
        );
        assert!(difference.id.starts_with("drift_"));
    }

    #[test]
    fn tenants_see_and_clear_their_own_and_the_admin_sees_them_merged() {
        let drift = Drift::default();
        let endpoint = "GET /partner/links/{linkId}";
        for tenant in ["acme", "globex"] {
            drift.record(
                Some(tenant),
                endpoint,
                vec![found("status", "", json!(200), json!(404))],
            );
        }
        drift.error(Some("globex"), endpoint, "upstream unreachable".into());
        assert_eq!(drift.report(Some("acme")).errors, 0);
        assert_eq!(drift.report(Some("globex")).errors, 1);
        let all = drift.report(None);
        assert_eq!((all.compared, all.errors), (2, 1));
        assert_eq!(all.differences.len(), 1);
        assert_eq!(all.differences[0].count, 2);
        drift.clear(Some("acme"));
        assert!(drift.report(Some("acme")).differences.is_empty());
        assert_eq!(drift.report(None).differences[0].count, 1);
        drift.clear(None);
        assert_eq!(drift.report(None).compared, 0);
    }

    #[test]
    fn kinds_past_the_bound_are_counted_as_errors_not_kept() {
        let drift = Drift::default();
        for n in 0..MAX_DIFFERENCES + 3 {
            drift.record(
                Some("acme"),
                "GET /x",
                vec![found("value", &format!("/{n}"), json!(1), json!(2))],
            );
        }
        let report = drift.report(Some("acme"));
        assert_eq!(report.differences.len(), MAX_DIFFERENCES);
        assert_eq!(report.errors, 3);
        assert!(report.recent_errors[0].message.contains("was not kept"));
    }

    /// A key in an endpoint, a pointer or a message is redacted, as the journal redacts it.
    #[test]
    fn keys_in_endpoints_pointers_and_messages_are_redacted() {
        let drift = Drift::default();
        let key = "m2m_test_LEAK91xxxxxxxxxxxxxxxxxxxxxxxxxx";
        drift.record(
            Some("acme"),
            &format!("GET /partner/links/{key}"),
            vec![found(
                "missing-field",
                &format!("/data/{key}"),
                json!(1),
                json!(null),
            )],
        );
        drift.error(
            Some("acme"),
            "GET /partner/links/{linkId}",
            format!("the vendor's m2m%5Ftest%5FLEAK60xx was never in an answer; on /x/{key}"),
        );
        let shown = serde_json::to_string(&drift.report(Some("acme"))).expect("json");
        assert!(!shown.contains("LEAK"), "{shown}");
        assert!(shown.contains("/data/[redacted]"), "{shown}");
    }

    #[test]
    fn tenants_and_kinds_are_bounded_across_the_whole_report() {
        let drift = Drift::default();
        for n in 0..MAX_TENANTS + 5 {
            let tenant = format!("t{n}");
            drift.record(
                Some(&tenant),
                "GET /x",
                vec![found("value", &format!("/{n}"), json!(1), json!(2))],
            );
        }
        let all = drift.report(None);
        assert_eq!(all.compared, (MAX_TENANTS + 5) as u64);
        // The tenants past the bound share the no-tenant entry, which only the admin sees.
        assert_eq!(all.differences.len(), MAX_TENANTS + 5);
        let past = drift.report(Some("t1004"));
        assert!(past.differences.is_empty());
        // Its own report says where its comparisons went, not "no drift".
        assert!(
            past.recent_errors[0]
                .message
                .contains("counted under no tenant"),
            "{past:?}"
        );
        assert!(drift.report(Some("t0")).recent_errors.is_empty());
        // Its JUnit report fails on it, rather than passing with no test case.
        let xml = junit(&past);
        assert!(
            xml.contains("errors=\"1\"") && xml.contains("type=\"elsewhere\""),
            "{xml}"
        );
        assert!(!junit(&drift.report(Some("t0"))).contains("elsewhere"));
        assert_eq!(drift.report(Some("t0")).differences.len(), 1);
        // Kinds across all tenants stop at their bound.
        for tenant in 0..30 {
            let tenant = format!("t{tenant}");
            for n in 0..400 {
                drift.record(
                    Some(&tenant),
                    "GET /y",
                    vec![found(
                        "value",
                        &format!("/{tenant}/{n}"),
                        json!(1),
                        json!(2),
                    )],
                );
            }
        }
        assert_eq!(drift.report(None).differences.len(), MAX_TOTAL_DIFFERENCES);
        assert!(
            drift.report(Some("t29")).errors > 0,
            "the refusals are counted"
        );
        // Clearing a tenant gives its kinds back.
        drift.clear(Some("t1"));
        let new = drift.record(
            Some("t2"),
            "GET /z",
            vec![found("value", "/z", json!(1), json!(2))],
        );
        assert_eq!(new.len(), 1);
    }

    /// Past the bound of all tenants together, the tenant holding the most kinds gives up
    /// the one it saw longest ago for another tenant's new one; a tenant holding as many
    /// as any other is refused instead.
    #[test]
    fn past_the_bound_in_all_the_tenant_holding_the_most_makes_room() {
        let drift = Drift::default();
        let record = |tenant: &str, pointer: String| {
            drift.record(
                Some(tenant),
                "GET /x",
                vec![found("value", &pointer, json!(1), json!(2))],
            )
        };
        // The report full: the busiest tenant at the bound, its first kind the stalest,
        // and twenty others below it.
        record("busiest", "/busiest/0".to_owned());
        std::thread::sleep(std::time::Duration::from_millis(5));
        for n in 1..MAX_DIFFERENCES {
            record("busiest", format!("/busiest/{n}"));
        }
        let others = 20;
        let each = (MAX_TOTAL_DIFFERENCES - MAX_DIFFERENCES) / others;
        for tenant in 0..others {
            for n in 0..each {
                record(&format!("t{tenant}"), format!("/t{tenant}/{n}"));
            }
        }
        assert_eq!(drift.report(None).differences.len(), MAX_TOTAL_DIFFERENCES);

        assert_eq!(record("quiet", "/quiet".to_owned()).len(), 1, "kept");
        assert_eq!(drift.report(None).differences.len(), MAX_TOTAL_DIFFERENCES);
        let busiest = drift.report(Some("busiest"));
        assert_eq!(busiest.differences.len(), MAX_DIFFERENCES - 1);
        assert!(
            busiest
                .differences
                .iter()
                .all(|d| d.pointer != "/busiest/0")
        );
        assert_eq!(busiest.errors, 1);
        assert!(busiest.recent_errors[0].message.contains("to make room"));
        assert_eq!(drift.report(Some("t0")).differences.len(), each);

        // The busiest still holds the most: its own new kind is refused.
        assert!(record("busiest", "/busiest/new".to_owned()).is_empty());
        let busiest = drift.report(Some("busiest"));
        assert_eq!(busiest.differences.len(), MAX_DIFFERENCES - 1);
        assert!(
            busiest.recent_errors[0]
                .message
                .contains("as many as any other")
        );
    }

    #[test]
    fn long_values_are_cut_and_junit_has_one_case_per_endpoint_and_rule() {
        let drift = Drift::default();
        let long = json!("x".repeat(MAX_VALUE_BYTES * 2));
        drift.record(
            Some("acme"),
            "POST /partner/links",
            vec![
                found("value", "/a", long, json!("<b>")),
                found("value", "/b", json!(1), json!(2)),
                found("status", "", json!(201), json!(400)),
            ],
        );
        let report = drift.report(None);
        let cut = report
            .differences
            .iter()
            .find(|difference| difference.pointer == "/a")
            .expect("kept");
        assert!(
            cut.upstream
                .as_str()
                .is_some_and(|text| text.contains("not kept"))
        );
        let xml = junit(&report);
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
        assert!(xml.contains("&lt;b&gt;"), "{xml}");
        assert!(xml.contains("name=\"status\""));
    }
}
