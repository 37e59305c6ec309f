//! The map from the upstream's ids and tokens to the shadow's, learnt from the answers to
//! the same request, and the rewriting of a later request before it is applied to the
//! shadow: path segments, query values, JSON string values of the body and the Bearer
//! token.
//!
//! Ids are unique across tenants on both sides (they carry the partner's slug, or are
//! random), so one map serves every tenant. It holds at most [`MAX_IDS`] pairs; past that
//! the oldest are forgotten first, and a request naming a forgotten id reaches the shadow
//! unmapped (its answer is then a 404 where the upstream's is not: a reported difference).

use std::collections::{HashMap, VecDeque};

use http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;
use serde_json::Value;

/// Pairs kept at most.
pub const MAX_IDS: usize = 200_000;

/// Upstream id → shadow id.
#[derive(Default)]
pub struct Ids {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Ids {
    /// Remembers that the upstream's `upstream` is the shadow's `shadow`.
    pub fn learn(&self, pairs: Vec<(String, String)>) {
        let mut inner = self.inner.lock();
        for (upstream, shadow) in pairs {
            if upstream.is_empty() || (upstream == shadow && !inner.map.contains_key(&upstream)) {
                // The same on both sides (an echoed value): nothing to rewrite.
                continue;
            }
            if inner.map.insert(upstream.clone(), shadow).is_none() {
                inner.order.push_back(upstream);
            }
            while inner.order.len() > MAX_IDS {
                if let Some(oldest) = inner.order.pop_front() {
                    inner.map.remove(&oldest);
                }
            }
        }
    }

    /// The shadow's id for the upstream's `id`.
    pub fn shadow(&self, id: &str) -> Option<String> {
        self.inner.lock().map.get(id).cloned()
    }

    /// `path` with every segment that is a known upstream id replaced by the shadow's.
    pub fn path(&self, path: &str) -> String {
        let inner = self.inner.lock();
        path.split('/')
            .map(|segment| inner.map.get(segment).map_or(segment, String::as_str))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The raw query with every value that is a known upstream id replaced; unchanged (as
    /// sent) when none is.
    pub fn query(&self, query: &str) -> String {
        let inner = self.inner.lock();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if !pairs.iter().any(|(_, value)| inner.map.contains_key(value)) {
            return query.to_owned();
        }
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &pairs {
            out.append_pair(name, inner.map.get(value).unwrap_or(value));
        }
        out.finish()
    }

    /// A JSON body with every string that is a known upstream id replaced; `None` when the
    /// body is not JSON or names none.
    pub fn body(&self, body: &[u8]) -> Option<Vec<u8>> {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        let inner = self.inner.lock();
        if !replace(&mut value, &inner.map) {
            return None;
        }
        serde_json::to_vec(&value).ok()
    }

    /// Replaces a Bearer token the upstream issued with the shadow's; whether there was one
    /// and it was known.
    pub fn bearer(&self, headers: &mut HeaderMap) -> Bearer {
        let Some(token) = crate::ops::identity::bearer(headers) else {
            return Bearer::None;
        };
        let Some(shadow) = self.shadow(token) else {
            return Bearer::Unknown;
        };
        match HeaderValue::from_str(&format!("Bearer {shadow}")) {
            Ok(value) => {
                headers.insert(header::AUTHORIZATION, value);
                Bearer::Mapped
            }
            Err(_) => Bearer::Unknown,
        }
    }
}

/// What [`Ids::bearer`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    None,
    Unknown,
    Mapped,
}

/// Replaces known ids among `value`'s strings; whether any was.
fn replace(value: &mut Value, map: &HashMap<String, String>) -> bool {
    match value {
        Value::String(text) => match map.get(text.as_str()) {
            Some(shadow) => {
                shadow.clone_into(text);
                true
            }
            None => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| replace(item, map) | changed),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |changed, item| replace(item, map) | changed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        let ids = Ids::default();
        ids.learn(vec![
            (
                "link_acme_aaaaaaaaaaaa".into(),
                "link_acme_bbbbbbbbbbbb".into(),
            ),
            ("tok-up".into(), "tok-shadow".into()),
        ]);
        ids
    }

    #[test]
    fn paths_queries_bodies_and_tokens_are_rewritten_and_the_rest_left_alone() {
        let ids = ids();
        assert_eq!(
            ids.path("/partner/links/link_acme_aaaaaaaaaaaa/revoke"),
            "/partner/links/link_acme_bbbbbbbbbbbb/revoke"
        );
        assert_eq!(ids.path("/partner/links/other"), "/partner/links/other");
        assert_eq!(
            ids.query("linkId=link_acme_aaaaaaaaaaaa&limit=5"),
            "linkId=link_acme_bbbbbbbbbbbb&limit=5"
        );
        assert_eq!(
            ids.query("a=%20b&limit=5"),
            "a=%20b&limit=5",
            "untouched as sent"
        );
        let body = ids
            .body(br#"{"ids":["link_acme_aaaaaaaaaaaa"],"n":{"x":"tok-up"},"k":1}"#)
            .expect("rewritten");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).expect("json"),
            serde_json::json!({"ids":["link_acme_bbbbbbbbbbbb"],"n":{"x":"tok-shadow"},"k":1})
        );
        assert_eq!(ids.body(br#"{"referenceId":"u-1"}"#), None);
        assert_eq!(ids.body(b"not json"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok-up"),
        );
        assert_eq!(ids.bearer(&mut headers), Bearer::Mapped);
        assert_eq!(headers[header::AUTHORIZATION], "Bearer tok-shadow");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(ids.bearer(&mut headers), Bearer::Unknown);
        assert_eq!(ids.bearer(&mut HeaderMap::new()), Bearer::None);
    }

    #[test]
    fn the_oldest_pairs_are_forgotten_past_the_bound() {
        let ids = Ids::default();
        ids.learn(
            (0..MAX_IDS + 2)
                .map(|n| (format!("up-{n}"), format!("sh-{n}")))
                .collect(),
        );
        assert_eq!(ids.shadow("up-0"), None);
        assert_eq!(ids.shadow("up-1"), None);
        assert_eq!(ids.shadow("up-2").as_deref(), Some("sh-2"));
    }
}
