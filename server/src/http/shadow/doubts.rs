//! Resources the vendor may have changed behind the shadow's back: weather on a request that
//! changes things.
//!
//! A changing request (any method but `GET`, `HEAD` and `OPTIONS`) that the vendor answered
//! with a 5xx, or that got no answer at all, may or may not have been done — behind a
//! gateway a 502 often follows a change that was made. Shadow mode does not apply such a
//! request (it would guess), so from then on the vendor and the shadow may disagree about
//! that resource for reasons that are weather, not drift: a `GET` sees the vendor's revoked
//! link where the shadow's is still active, and the client's retry gets "already revoked"
//! from the vendor and a 200 from the shadow.
//!
//! So the resource is *in doubt*: a difference found on it is an error of the report,
//! naming the request that caused the doubt, not a difference. The doubt ends with the next
//! changing request on the same resource that both sides answered (typically the client's
//! retry), whatever its comparison found — after it, both sides hold what was asked. A 429
//! raises no doubt: the vendor says it did nothing.
//!
//! A resource is the request's path up to its first id (`/partner/links/lnk_…` for
//! `…/revoke`), or the whole path where there is none (the collection a create adds to),
//! per tenant. At most [`MAX_DOUBTS`] are kept; past that, the oldest is forgotten (its
//! later differences count as drift again).
//!
//! Only the shadow's worker reads and writes them, in the order the vendor answered, so they
//! need no lock.

use std::collections::HashMap;

use http::Method;
use linkbox_suite::Api;
use linkbox_suite::shadow as compare;

/// Resources in doubt kept at most.
pub const MAX_DOUBTS: usize = 10_000;

/// The resources in doubt, by tenant and resource.
#[derive(Default)]
pub struct Doubts {
    held: HashMap<(Option<String>, String), Doubt>,
    raised: u64,
}

struct Doubt {
    /// When it was raised, in raises: the smallest is forgotten first.
    order: u64,
    /// The request that raised it and what became of it, in words.
    cause: String,
}

/// Whether `method` can change what the vendor holds.
pub fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The resource a request to `path` is about: the path up to and including its first id
/// segment (as the route template places ids), or the whole path.
pub fn resource(api: Api, method: &Method, path: &str) -> String {
    let endpoint = compare::endpoint(api, method.as_str(), path);
    let template = endpoint
        .split_once(' ')
        .map_or(endpoint.as_str(), |(_, template)| template);
    let mut kept = Vec::new();
    for (segment, shape) in path.split('/').zip(template.split('/')) {
        kept.push(segment);
        if shape.starts_with('{') {
            return kept.join("/");
        }
    }
    path.to_owned()
}

impl Doubts {
    /// Puts `resource` of `tenant` in doubt because of `cause`.
    pub fn raise(&mut self, tenant: Option<&str>, resource: String, cause: String) {
        self.raised += 1;
        let order = self.raised;
        self.held.insert(
            (tenant.map(str::to_owned), resource),
            Doubt { order, cause },
        );
        if self.held.len() > MAX_DOUBTS
            && let Some(oldest) = self
                .held
                .iter()
                .min_by_key(|(_, doubt)| doubt.order)
                .map(|(key, _)| key.clone())
        {
            self.held.remove(&oldest);
        }
    }

    /// The cause of the doubt over `resource` of `tenant`, if it is in doubt; a changing
    /// request (`settles`) ends the doubt as it reads it.
    pub fn over(&mut self, tenant: Option<&str>, resource: &str, settles: bool) -> Option<String> {
        let key = (tenant.map(str::to_owned), resource.to_owned());
        if settles {
            self.held.remove(&key).map(|doubt| doubt.cause)
        } else {
            self.held.get(&key).map(|doubt| doubt.cause.clone())
        }
    }

    /// How many resources are in doubt.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_the_path_up_to_its_first_id() {
        let revoke = "/partner/links/lnk_acme_0001/revoke";
        assert_eq!(
            resource(Api::M2m, &Method::POST, revoke),
            "/partner/links/lnk_acme_0001"
        );
        assert_eq!(
            resource(Api::M2m, &Method::GET, "/partner/links/lnk_acme_0001"),
            "/partner/links/lnk_acme_0001"
        );
        assert_eq!(
            resource(Api::M2m, &Method::POST, "/partner/links"),
            "/partner/links",
            "a create is about the collection it adds to"
        );
        let widgets = linkbox_contracts::leaf::WIDGETS_BASE;
        assert_eq!(
            resource(
                Api::Leaf,
                &Method::POST,
                &format!("{widgets}/magic-link/users/user-1/provider")
            ),
            format!("{widgets}/magic-link/users/user-1"),
            "a magic link made for a user is about that user"
        );
        assert_eq!(
            resource(
                Api::Leaf,
                &Method::DELETE,
                &format!("{widgets}/magic-link/provider/ml-1")
            ),
            format!("{widgets}/magic-link/provider/ml-1")
        );
    }

    #[test]
    fn only_methods_that_change_raise_or_settle_doubt() {
        assert!(changes(&Method::POST) && changes(&Method::PUT) && changes(&Method::DELETE));
        assert!(!changes(&Method::GET) && !changes(&Method::HEAD) && !changes(&Method::OPTIONS));
    }

    #[test]
    fn a_read_keeps_the_doubt_and_a_change_settles_it_per_tenant() {
        let mut doubts = Doubts::default();
        doubts.raise(Some("acme"), "/partner/links/a".into(), "the 502".into());
        assert_eq!(doubts.over(Some("other"), "/partner/links/a", true), None);
        assert_eq!(doubts.over(Some("acme"), "/partner/links/b", false), None);
        assert_eq!(
            doubts
                .over(Some("acme"), "/partner/links/a", false)
                .as_deref(),
            Some("the 502")
        );
        assert_eq!(
            doubts
                .over(Some("acme"), "/partner/links/a", true)
                .as_deref(),
            Some("the 502"),
            "the settling request is itself still weather"
        );
        assert_eq!(doubts.over(Some("acme"), "/partner/links/a", false), None);
    }

    #[test]
    fn past_the_bound_the_oldest_doubt_is_forgotten() {
        let mut doubts = Doubts::default();
        for n in 0..=MAX_DOUBTS {
            doubts.raise(None, format!("/partner/links/{n}"), format!("cause {n}"));
        }
        assert_eq!(doubts.len(), MAX_DOUBTS);
        assert_eq!(doubts.over(None, "/partner/links/0", false), None);
        assert_eq!(
            doubts.over(None, "/partner/links/1", false).as_deref(),
            Some("cause 1")
        );
        let last = format!("/partner/links/{MAX_DOUBTS}");
        assert!(doubts.over(None, &last, false).is_some());
    }
}
