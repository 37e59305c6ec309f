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
//! naming the request that caused the doubt, not a difference. A read of the collection it
//! belongs to (a list shows the vendor's revoked link as well) is compared on its other
//! items, the ones in doubt passed over ([`Doubts::within`]): a doubt on one link excuses
//! what a list says of that link, never the rest of the list, however long it lasts. The doubt on
//! one resource (a link, a user) ends with the next changing request on it that both sides
//! answered (typically the client's retry), whatever its comparison found — after it, both
//! sides hold what was asked. The doubt on a collection (a create whose answer was lost)
//! ends only with a change both sides answered alike: a retried create that the vendor
//! refuses (its link exists) and the shadow makes leaves each with a link the other lacks.
//! So that real drift in creates is not excused for ever, it ends anyway after
//! [`UNSETTLED_CHANGES`] changes answered unalike. A 429 raises no doubt: the vendor says it
//! did nothing.
//!
//! A change both sides answered, one with a success and the other without (the vendor's 200
//! to a revoke linkbox's own rate limits answer 429), raises one as well on the resource it
//! names, unless it settles a doubt: its status difference is reported, and what follows
//! from it on the resource is not reported again. A create so answered puts in doubt only
//! the key it names that must be unique ([`keyed`]: an M2M `referenceId`, with one active
//! link each; a Leaf `externalId`, one user each), not its collection or the user it adds a
//! link to: what only one side holds meets no later comparison but a create of the same key
//! (lists compare the items both sides know, and a link the shadow never saw is not
//! compared) — the retry the vendor answers 201 and linkbox 409, which follows and settles
//! it — while another create's own difference is drift again: a vendor refusing every
//! create linkbox makes is that many status differences.
//!
//! A resource is the request's path up to its first id (`/partner/links/lnk_…` for
//! `…/revoke`; for a Leaf `PUT …/users`, the user its body's `id` names), or the whole path
//! where there is none (the collection a create adds to), per tenant. At most
//! [`MAX_DOUBTS`] are kept; past that, the oldest is forgotten (its later differences count
//! as drift again).
//!
//! Only the shadow's worker reads and writes them, in the order the vendor answered, so they
//! need no lock.

use std::collections::HashMap;

use http::Method;
use linkbox_suite::Api;
use linkbox_suite::shadow as compare;
use serde_json::Value;

/// Resources in doubt kept at most.
pub const MAX_DOUBTS: usize = 10_000;
/// The longest resource path kept as it is: a path no route knows is the client's own (60 KB
/// under the head's limit), and a doubt keeps it, so longer ones are kept to this many bytes
/// (their start, so a collection still finds them under it; two alike that far are one
/// resource). Its cause, which quotes the request, is cut as the report's messages are.
pub const MAX_PATH_BYTES: usize = 1024;
/// The longest key a doubt on it names as it is; a longer one is named by its start and a
/// hash of it whole.
const MAX_KEY_BYTES: usize = 256;
/// Changes to a collection in doubt, answered unalike, after which its doubt ends anyway.
pub const UNSETTLED_CHANGES: u8 = 3;

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
    /// For a collection: the changes answered unalike it may still see before its doubt
    /// ends; `None` for one resource.
    unsettled: Option<u8>,
}

/// What a request is about, for doubt: its resource, and whether that is a collection.
pub struct Resource {
    pub path: String,
    /// A collection, or a create's key ([`keyed`]): its doubt is settled by a change that
    /// settles it or after [`UNSETTLED_CHANGES`], and excuses none of its reads.
    pub collection: bool,
}

/// Whether `method` can change what the vendor holds.
pub fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The resource a request to `path` with `body` is about: the path up to and including its
/// first id segment (as the route template places ids); the user a Leaf `PUT …/users`
/// names in its body's `id`; or the whole path, a collection.
pub fn resource(api: Api, method: &Method, path: &str, body: Option<&Value>) -> Resource {
    let endpoint = compare::endpoint(api, method.as_str(), path);
    let template = endpoint
        .split_once(' ')
        .map_or(endpoint.as_str(), |(_, template)| template);
    let mut kept = Vec::new();
    for (segment, shape) in path.split('/').zip(template.split('/')) {
        kept.push(segment);
        if shape.starts_with('{') {
            return Resource {
                path: kept.join("/"),
                collection: false,
            };
        }
    }
    let users = format!("{}/users", linkbox_contracts::leaf::USERS_BASE);
    if api == Api::Leaf
        && *method == Method::PUT
        && path == users
        && let Some(id) = body.and_then(|body| body.get("id")).and_then(Value::as_str)
    {
        return Resource {
            path: format!("{users}/{id}"),
            collection: false,
        };
    }
    Resource {
        path: path.to_owned(),
        collection: true,
    }
}

/// The key a create's body names that the API holds unique, as a resource of its own: an
/// M2M create's `referenceId` (one active link each), a Leaf create's `externalId` (one user
/// each, whether made by the user-management service or with a magic link). Its path is
/// no path a request names (`/partner/links#referenceId=…`), so no list passes it over.
pub fn keyed(api: Api, body: Option<&Value>) -> Option<Resource> {
    let name = match api {
        Api::M2m => "referenceId",
        Api::Leaf => "externalId",
        Api::Sandbox => return None,
    };
    Some(key(api, body?.get(name)?.as_str()?))
}

/// The resource of the unique key `key` of `api`'s creates ([`keyed`]).
pub fn key(api: Api, key: &str) -> Resource {
    let (name, base) = match api {
        Api::M2m => ("referenceId", "/partner/links".to_owned()),
        Api::Leaf | Api::Sandbox => (
            "externalId",
            format!("{}/users", linkbox_contracts::leaf::USERS_BASE),
        ),
    };
    // Kept whole, however long: two long keys alike in their first KiB are two keys.
    let path = match key.len() > MAX_KEY_BYTES {
        false => format!("{base}#{name}={key}"),
        true => {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(key, &mut hasher);
            let start = &key[..key.floor_char_boundary(MAX_KEY_BYTES)];
            format!(
                "{base}#{name}={start}…{:016x}",
                std::hash::Hasher::finish(&hasher)
            )
        }
    };
    // Settled as a collection's doubt is, by a change that settles it (for a key, a create
    // of it either side made), or after a few that do not: its reads are never excused.
    Resource {
        path,
        collection: true,
    }
}

/// The Leaf user a create's answer names (a magic link's `leafUserId`, a user's `id`), as
/// the resource its reads are about.
pub fn user_named(api: Api, answer: &[u8]) -> Option<Resource> {
    if api != Api::Leaf {
        return None;
    }
    let answer: Value = serde_json::from_slice(answer).ok()?;
    let id = answer
        .get("leafUserId")
        .or_else(|| answer.get("id"))
        .and_then(Value::as_str)?;
    Some(Resource {
        path: format!("{}/users/{id}", linkbox_contracts::leaf::USERS_BASE),
        collection: false,
    })
}

/// The id segment of `path` where its route template places one (`lnk_…` of
/// `/partner/links/lnk_…/revoke`), if it has one.
pub fn id_of<'a>(api: Api, method: &Method, path: &'a str) -> Option<&'a str> {
    let endpoint = compare::endpoint(api, method.as_str(), path);
    let template = endpoint.split_once(' ')?.1;
    path.split('/')
        .zip(template.split('/'))
        .find(|(_, shape)| shape.starts_with('{'))
        .map(|(segment, _)| segment)
}

/// `path` as a doubt keeps it: its first [`MAX_PATH_BYTES`], at a character's edge.
fn kept(path: &str) -> String {
    let mut end = path.len().min(MAX_PATH_BYTES);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_owned()
}

impl Doubts {
    /// Puts `resource` of `tenant` in doubt because of `cause`.
    pub fn raise(&mut self, tenant: Option<&str>, resource: &Resource, cause: String) {
        self.raised += 1;
        let order = self.raised;
        self.held.insert(
            (tenant.map(str::to_owned), kept(&resource.path)),
            Doubt {
                order,
                cause: crate::drift::shorten(cause, crate::drift::MAX_MESSAGE_BYTES),
                unsettled: resource.collection.then_some(UNSETTLED_CHANGES),
            },
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

    /// The cause of the doubt over `resource` itself of `tenant`, if there is one. A
    /// change both sides answered (`Some(settles)`: for a collection, answered with the same
    /// status on both; for a key, made by either side) ends the doubt on its own resource
    /// as it reads it: always on one resource, and on a collection or key when it settles
    /// or is the last of its [`UNSETTLED_CHANGES`]. A read (`None`) leaves it,
    /// and is in doubt only where it reads one resource: a link lost by a create is one the
    /// shadow never saw, which a list does not compare, so a doubt on a collection excuses
    /// none of its reads.
    pub fn over(
        &mut self,
        tenant: Option<&str>,
        resource: &str,
        change: Option<bool>,
    ) -> Option<String> {
        let key = (tenant.map(str::to_owned), kept(resource));
        let Some(settles) = change else {
            return self
                .held
                .get(&key)
                .filter(|doubt| doubt.unsettled.is_none())
                .map(|doubt| doubt.cause.clone());
        };
        let doubt = self.held.get_mut(&key)?;
        match &mut doubt.unsettled {
            Some(left) if !settles && *left > 1 => {
                *left -= 1;
                Some(doubt.cause.clone())
            }
            _ => self.held.remove(&key).map(|doubt| doubt.cause),
        }
    }

    /// The resources of the collection `collection` of `tenant` in doubt, oldest first: each
    /// one's id (the segment after the collection's path) and its doubt's cause. A read of
    /// the collection passes them over.
    pub fn within(&self, tenant: Option<&str>, collection: &str) -> Vec<(String, String)> {
        let under = format!("{}/", kept(collection));
        let mut found: Vec<(u64, String, String)> = self
            .held
            .iter()
            .filter(|((holder, _), _)| holder.as_deref() == tenant)
            .filter_map(|((_, held), doubt)| {
                let id = held.strip_prefix(&under)?.split('/').next()?;
                Some((doubt.order, id.to_owned(), doubt.cause.clone()))
            })
            .collect();
        found.sort_unstable_by_key(|(order, ..)| *order);
        found
            .into_iter()
            .map(|(_, id, cause)| (id, cause))
            .collect()
    }

    /// Puts `resource` of `tenant` in doubt because of `cause`, and `key` with it (the key
    /// another create of the same thing would name), when it is another resource.
    pub fn raise_with(
        &mut self,
        tenant: Option<&str>,
        resource: &Resource,
        key: Option<Resource>,
        cause: String,
    ) {
        if let Some(key) = key.filter(|key| key.path != resource.path) {
            self.raise(tenant, &key, cause.clone());
        }
        self.raise(tenant, resource, cause);
    }

    /// Whether `resource` itself of `tenant` is in doubt.
    pub fn holds(&self, tenant: Option<&str>, resource: &str) -> bool {
        self.held
            .contains_key(&(tenant.map(str::to_owned), kept(resource)))
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
    use serde_json::json;

    fn item(path: &str) -> Resource {
        Resource {
            path: path.to_owned(),
            collection: false,
        }
    }

    #[test]
    fn a_resource_is_the_path_up_to_its_first_id() {
        let of = |api, method: Method, path: &str, body: Option<Value>| {
            let resource = resource(api, &method, path, body.as_ref());
            (resource.path, resource.collection)
        };
        let revoke = "/partner/links/lnk_acme_0001/revoke";
        assert_eq!(
            of(Api::M2m, Method::POST, revoke, None),
            ("/partner/links/lnk_acme_0001".to_owned(), false)
        );
        assert_eq!(
            id_of(Api::M2m, &Method::POST, revoke),
            Some("lnk_acme_0001")
        );
        assert_eq!(
            of(Api::M2m, Method::POST, "/partner/links", None),
            ("/partner/links".to_owned(), true),
            "a create is about the collection it adds to"
        );
        assert_eq!(id_of(Api::M2m, &Method::POST, "/partner/links"), None);
        let widgets = linkbox_contracts::leaf::WIDGETS_BASE;
        assert_eq!(
            of(
                Api::Leaf,
                Method::POST,
                &format!("{widgets}/magic-link/users/user-1/provider"),
                None
            ),
            (format!("{widgets}/magic-link/users/user-1"), false),
            "a magic link made for a user is about that user"
        );
        let users = format!("{}/users", linkbox_contracts::leaf::USERS_BASE);
        assert_eq!(
            of(Api::Leaf, Method::PUT, &users, Some(json!({"id": "u-7"}))),
            (format!("{users}/u-7"), false),
            "a replace names its user in its body"
        );
        assert_eq!(
            of(Api::Leaf, Method::POST, &users, Some(json!({"id": "u-7"}))),
            (users.clone(), true)
        );
        let key = |api, body: Value| keyed(api, Some(&body)).map(|key| (key.path, key.collection));
        assert_eq!(
            key(Api::M2m, json!({"referenceId": "r-1"})),
            Some(("/partner/links#referenceId=r-1".to_owned(), true)),
            "a create's unique key, under no list's path, settled as a collection is"
        );
        assert_eq!(
            key(Api::Leaf, json!({"externalId": "e-1"})),
            Some((format!("{users}#externalId=e-1"), true))
        );
        assert_eq!(key(Api::M2m, json!({"metadata": {}})), None);
        let long = |last: &str| {
            key(
                Api::M2m,
                json!({"referenceId": format!("{}{last}", "😀".repeat(300))}),
            )
            .map(|(path, _)| path)
            .unwrap_or_default()
        };
        assert_ne!(
            long("a"),
            long("b"),
            "long keys alike but at their end are two"
        );
        assert!(long("a").len() < MAX_KEY_BYTES + 64, "{}", long("a").len());
    }

    /// A client's 60 KB path in doubt is kept to its first KiB, its cause cut too: ten
    /// thousand of them held 1.5 GB. The same long path is still the one in doubt, and
    /// its collection still finds it.
    #[test]
    fn a_long_path_in_doubt_is_kept_short_and_still_found() {
        let mut doubts = Doubts::default();
        let long = format!("/partner/{}", "abcdefghijklmnopqrs/".repeat(3_000));
        let cause = format!("POST {long} was answered 503");
        doubts.raise(Some("acme"), &item(&long), cause.clone());
        let ((_, path), doubt) = doubts.held.iter().next().expect("held");
        assert_eq!(path.len(), MAX_PATH_BYTES, "its first KiB");
        assert!(
            doubt.cause.len() < crate::drift::MAX_MESSAGE_BYTES + 40,
            "{}",
            doubt.cause.len()
        );
        assert!(doubts.holds(Some("acme"), &long));
        let within = doubts.within(Some("acme"), "/partner");
        assert_eq!(within.len(), 1, "{within:?}");
        assert_eq!(within[0].0, "abcdefghijklmnopqrs");
        assert!(within[0].1.starts_with("POST /partner/abc"), "{within:?}");
        assert!(doubts.over(Some("acme"), &long, Some(true)).is_some());
        assert_eq!(doubts.len(), 0);
    }

    #[test]
    fn only_methods_that_change_raise_or_settle_doubt() {
        assert!(changes(&Method::POST) && changes(&Method::PUT) && changes(&Method::DELETE));
        assert!(!changes(&Method::GET) && !changes(&Method::HEAD) && !changes(&Method::OPTIONS));
    }

    #[test]
    fn a_read_keeps_the_doubt_and_a_change_settles_it_per_tenant() {
        let mut doubts = Doubts::default();
        doubts.raise(Some("acme"), &item("/partner/links/a"), "the 502".into());
        assert_eq!(
            doubts.over(Some("other"), "/partner/links/a", Some(false)),
            None
        );
        assert_eq!(doubts.over(Some("acme"), "/partner/links/b", None), None);
        assert_eq!(
            doubts
                .over(Some("acme"), "/partner/links/a", None)
                .as_deref(),
            Some("the 502")
        );
        assert_eq!(
            doubts.over(Some("acme"), "/partner/links", None),
            None,
            "a list of the collection is not in doubt as a whole"
        );
        assert_eq!(
            doubts.within(Some("acme"), "/partner/links"),
            [("a".to_owned(), "the 502".to_owned())],
            "but passes over the link in doubt"
        );
        assert_eq!(doubts.within(Some("other"), "/partner/links"), []);
        assert_eq!(
            doubts
                .over(Some("acme"), "/partner/links/a", Some(false))
                .as_deref(),
            Some("the 502"),
            "the settling request is itself still weather, answered alike or not"
        );
        assert_eq!(doubts.over(Some("acme"), "/partner/links/a", None), None);
        assert_eq!(doubts.within(Some("acme"), "/partner/links"), []);
    }

    /// A create retried into the vendor's 409 and the shadow's 201 leaves each with a link the
    /// other lacks: the collection stays in doubt until a change is answered alike, or for
    /// [`UNSETTLED_CHANGES`] changes at most.
    #[test]
    fn a_collection_settles_on_a_change_answered_alike_or_after_a_few() {
        let mut doubts = Doubts::default();
        let links = Resource {
            path: "/partner/links".into(),
            collection: true,
        };
        doubts.raise(None, &links, "the lost create".into());
        assert!(doubts.over(None, "/partner/links", Some(false)).is_some());
        assert!(
            doubts.over(None, "/partner/links", None).is_none(),
            "a read of the collection is compared"
        );
        assert!(doubts.holds(None, "/partner/links"), "still");
        assert!(doubts.over(None, "/partner/links", Some(true)).is_some());
        assert!(!doubts.holds(None, "/partner/links"), "settled");
        doubts.raise(None, &links, "another".into());
        for _ in 0..UNSETTLED_CHANGES {
            assert!(doubts.over(None, "/partner/links", Some(false)).is_some());
        }
        assert!(!doubts.holds(None, "/partner/links"), "ended");
    }

    #[test]
    fn past_the_bound_the_oldest_doubt_is_forgotten() {
        let mut doubts = Doubts::default();
        for n in 0..=MAX_DOUBTS {
            doubts.raise(
                None,
                &item(&format!("/partner/links/{n}")),
                format!("cause {n}"),
            );
        }
        assert_eq!(doubts.len(), MAX_DOUBTS);
        assert_eq!(doubts.over(None, "/partner/links/0", None), None);
        assert_eq!(
            doubts.over(None, "/partner/links/1", None).as_deref(),
            Some("cause 1")
        );
        let last = format!("/partner/links/{MAX_DOUBTS}");
        assert!(doubts.over(None, &last, None).is_some());
    }
}
