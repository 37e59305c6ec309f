//! The route templates of both APIs, as the OpenAPI paths of `linkbox-contracts` name them, and
//! what kind of answer each (method, template) gives: the comparison's rules depend on it.

use std::sync::OnceLock;

use crate::Api;

/// What one endpoint answers, as far as the comparison cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    M2mCreate,
    M2mList,
    M2mDetail,
    M2mRevoke,
    M2mDataRequest,
    M2mSecret,
    LeafAuthenticate,
    LeafLinkCreate,
    LeafLinkList,
    LeafLinkGet,
    LeafLinkDelete,
    LeafUserCreate,
    LeafUserList,
    LeafUserGet,
    LeafUserPut,
    LeafUserDelete,
    /// A path or method no route serves: only status, media type and envelope are compared.
    Other,
}

impl Family {
    /// List answers are compared on the items both sides know, and on paging arithmetic.
    pub(crate) fn is_list(self) -> bool {
        matches!(
            self,
            Family::M2mList | Family::LeafLinkList | Family::LeafUserList
        )
    }

    /// Answers of the Leaf user-management service (where an `id` is a UUID).
    pub(crate) fn is_leaf_user(self) -> bool {
        matches!(
            self,
            Family::LeafUserCreate
                | Family::LeafUserList
                | Family::LeafUserGet
                | Family::LeafUserPut
                | Family::LeafUserDelete
        )
    }
}

/// One route: its template and, per method, the family of its answers.
struct Route {
    api: Api,
    template: String,
    methods: Vec<(&'static str, Family)>,
}

/// The widget types of Leaf's magic links, as path segments.
const LEAF_TYPES: [&str; 3] = ["provider", "authentication", "file-upload"];

fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let m2m = |template: &str, methods: Vec<(&'static str, Family)>| Route {
            api: Api::M2m,
            template: template.to_owned(),
            methods,
        };
        let leaf = |template: String, methods: Vec<(&'static str, Family)>| Route {
            api: Api::Leaf,
            template,
            methods,
        };
        let mut all = vec![
            m2m(
                "/partner/links",
                vec![("GET", Family::M2mList), ("POST", Family::M2mCreate)],
            ),
            m2m("/partner/links/{linkId}", vec![("GET", Family::M2mDetail)]),
            m2m(
                "/partner/links/{linkId}/revoke",
                vec![("POST", Family::M2mRevoke)],
            ),
            m2m(
                "/partner/data-requests/{dataRequestId}",
                vec![("PUT", Family::M2mDataRequest)],
            ),
            m2m(
                "/partner/webhooks/config/regenerate-secret",
                vec![("POST", Family::M2mSecret)],
            ),
            leaf(
                "/api/authenticate".to_owned(),
                vec![("POST", Family::LeafAuthenticate)],
            ),
        ];
        let widgets = linkbox_contracts::leaf::WIDGETS_BASE;
        for kind in LEAF_TYPES {
            all.push(leaf(
                format!("{widgets}/magic-link/{kind}"),
                vec![
                    ("GET", Family::LeafLinkList),
                    ("POST", Family::LeafLinkCreate),
                ],
            ));
            all.push(leaf(
                format!("{widgets}/magic-link/{kind}/{{magicLinkId}}"),
                vec![
                    ("GET", Family::LeafLinkGet),
                    ("DELETE", Family::LeafLinkDelete),
                ],
            ));
            for users in ["users", "user"] {
                all.push(leaf(
                    format!("{widgets}/magic-link/{users}/{{leafUserId}}/{kind}"),
                    vec![("POST", Family::LeafLinkCreate)],
                ));
            }
        }
        let users = linkbox_contracts::leaf::USERS_BASE;
        all.push(leaf(
            format!("{users}/users"),
            vec![
                ("GET", Family::LeafUserList),
                ("POST", Family::LeafUserCreate),
                ("PUT", Family::LeafUserPut),
            ],
        ));
        all.push(leaf(
            format!("{users}/users/{{id}}"),
            vec![
                ("GET", Family::LeafUserGet),
                ("PUT", Family::LeafUserPut),
                ("DELETE", Family::LeafUserDelete),
            ],
        ));
        all
    })
}

/// Whether `path` fits `template`: same number of segments, literals equal, `{...}` anything
/// non-empty.
fn fits(template: &str, path: &str) -> bool {
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let placeholder = want.starts_with('{') && want.ends_with('}');
                if placeholder && got.is_empty() || !placeholder && want != got {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The route template and the family of a request's answers.
pub(crate) fn resolve(api: Api, method: &str, path: &str) -> (String, Family) {
    let path = path.split('?').next().unwrap_or(path);
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let method = method.to_ascii_uppercase();
    for route in routes() {
        if route.api == api && fits(&route.template, trimmed) {
            let family = route
                .methods
                .iter()
                .find(|(name, _)| *name == method)
                .map_or(Family::Other, |(_, family)| *family);
            return (format!("{method} {}", route.template), family);
        }
    }
    let mut template = String::with_capacity(method.len() + 1 + trimmed.len());
    template.push_str(&method);
    template.push(' ');
    for (i, segment) in trimmed.split('/').enumerate() {
        if i > 0 {
            template.push('/');
        }
        if looks_generated(segment) {
            template.push_str("{id}");
        } else {
            template.push_str(segment);
        }
    }
    (template, Family::Other)
}

/// A path segment that is probably an id rather than a word of the API: at least six
/// characters with a digit in them, or 20 characters and more (a base64 id need have no digit).
fn looks_generated(segment: &str) -> bool {
    segment.len() >= 20 || segment.len() >= 6 && segment.bytes().any(|b| b.is_ascii_digit())
}

/// Every route template of `api` with its methods, as `METHOD /template`.
#[cfg(test)]
pub(crate) fn all(api: Api) -> Vec<(String, Family)> {
    routes()
        .iter()
        .filter(|route| route.api == api)
        .flat_map(|route| {
            route
                .methods
                .iter()
                .map(|(method, family)| (format!("{method} {}", route.template), *family))
        })
        .collect()
}
