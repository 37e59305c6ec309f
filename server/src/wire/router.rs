//! The route table: one list of `(method, path pattern, handler)` per surface, and the one
//! place a path is matched. The same table that serves a request answers what it does not
//! serve — a known path with another method is [`Found::WrongMethod`] with the `Allow` list
//! read off the table, so there is no second list to keep in step — and lists itself for
//! the test that holds the routes and the OpenAPI document together.
//!
//! A pattern is a path whose segments are literals or `{name}` (exactly one non-empty
//! segment), and whose last segment may be `{*name}` (whatever is left, possibly empty).
//! Routes are built once, at start-up; matching allocates only the parameters it returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Method;
use warp::reply::Response;

use super::Request;

/// A boxed handler future.
pub type Reply = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A route's handler.
pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// A fixed answer: one that reads nothing of the request and nothing of the sandbox.
pub type Fixed = fn() -> Response;

/// One surface's routes.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// The `GET` paths answered by a [`Fixed`] answer, each also one of `routes`.
    fixed: Vec<(&'static str, Fixed)>,
}

#[derive(Clone)]
struct Route {
    method: Method,
    pattern: Arc<str>,
    segments: Vec<Segment>,
    handler: Handler,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param(Arc<str>),
    Rest(Arc<str>),
}

/// What the table says about a request.
pub enum Found<'a> {
    /// The route that serves it, with the path's parameters by name.
    Route(&'a Handler, Params),
    /// The path is served, not with this method: the methods that are, for `Allow`.
    WrongMethod(String),
    /// No route has this path.
    Nothing,
}

/// Path parameters, by the names the pattern gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(Arc<str>, String)>);

impl Params {
    /// The parameter `name`, or `""` when the pattern has none by that name.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| &**key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds `method pattern` served by `handler`.
    ///
    /// # Panics
    /// On a malformed pattern: a programming error caught by every test that builds the
    /// table.
    pub fn route<F, Fut>(mut self, method: Method, pattern: impl Into<String>, handler: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let pattern: Arc<str> = pattern.into().into();
        let segments = parse(&pattern);
        self.routes.push(Route {
            method,
            pattern,
            segments,
            handler: Arc::new(move |request| Box::pin(handler(request))),
        });
        self
    }

    pub fn get<F, Fut>(self, pattern: impl Into<String>, handler: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.route(Method::GET, pattern, handler)
    }

    pub fn post<F, Fut>(self, pattern: impl Into<String>, handler: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.route(Method::POST, pattern, handler)
    }

    pub fn put<F, Fut>(self, pattern: impl Into<String>, handler: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.route(Method::PUT, pattern, handler)
    }

    pub fn delete<F, Fut>(self, pattern: impl Into<String>, handler: F) -> Router
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Adds `GET path` (an exact path, no parameters) answered by `answer`, which reads
    /// nothing of the request and nothing of the sandbox: the serving layer may answer it
    /// before it reads anything else of the request ([`Router::fixed`]). It is a route like
    /// any other too, so HEAD, 405s and the route list see it.
    pub fn get_fixed(mut self, path: &'static str, answer: Fixed) -> Router {
        assert!(
            !path.contains('{'),
            "{path}: a fixed answer's path has no parameters"
        );
        self.fixed.push((path, answer));
        self.get(path, move |_: Request| std::future::ready(answer()))
    }

    /// The fixed answer to `GET path`, when the route that serves it is one: the first
    /// route matching the path, as [`Router::find`] would pick it.
    pub fn fixed(&self, path: &str) -> Option<Fixed> {
        let (_, answer) = self.fixed.iter().find(|(fixed, _)| *fixed == path)?;
        let parts = split(path)?;
        self.routes
            .iter()
            .find(|route| route.method == Method::GET && matches(&route.segments, &parts).is_some())
            .filter(|route| &*route.pattern == path)
            .map(|_| *answer)
    }

    /// Every route of `other` after this table's own.
    pub fn merge(mut self, other: Router) -> Router {
        self.routes.extend(other.routes);
        self.fixed.extend(other.fixed);
        self
    }

    /// Looks `method path` up. The first route whose pattern and method match wins; a HEAD
    /// without a route of its own is served by the path's GET route (the serving layer
    /// strips the body), so `Allow` lists HEAD wherever it lists GET.
    pub fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let mut allowed: Vec<&Method> = Vec::new();
        let mut get = None;
        // Segments counted once, not split once per route: most routes are then turned
        // away by their segment count, without reading the path again.
        let Some(parts) = split(path) else {
            return Found::Nothing;
        };
        for route in &self.routes {
            let Some(params) = matches(&route.segments, &parts) else {
                continue;
            };
            if route.method == *method {
                return Found::Route(&route.handler, params);
            }
            if route.method == Method::GET && get.is_none() {
                get = Some((&route.handler, params));
            }
            if !allowed.contains(&&route.method) {
                allowed.push(&route.method);
            }
        }
        if *method == Method::HEAD
            && let Some((handler, params)) = get
        {
            return Found::Route(handler, params);
        }
        if allowed.is_empty() {
            return Found::Nothing;
        }
        let mut allow: Vec<&str> = Vec::new();
        for method in allowed {
            allow.push(method.as_str());
            if *method == Method::GET {
                allow.push(Method::HEAD.as_str());
            }
        }
        Found::WrongMethod(allow.join(", "))
    }

    /// `(method, pattern)` of every route, in table order.
    pub fn list(&self) -> impl Iterator<Item = (&Method, &str)> {
        self.routes
            .iter()
            .map(|route| (&route.method, &*route.pattern))
    }
}

fn parse(pattern: &str) -> Vec<Segment> {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| {
            match part
                .strip_prefix('{')
                .and_then(|inner| inner.strip_suffix('}'))
            {
                Some(rest) if rest.starts_with('*') => {
                    assert!(index == last, "{pattern}: {{*..}} must come last");
                    Segment::Rest(rest[1..].into())
                }
                Some(name) => {
                    assert!(!name.is_empty(), "{pattern}: an unnamed parameter");
                    Segment::Param(name.into())
                }
                None => {
                    assert!(!part.contains(['{', '}']), "{pattern}: a stray brace");
                    Segment::Literal(part.into())
                }
            }
        })
        .collect()
}

/// A path without its leading `/`, and how many segments it has.
struct Parts<'a> {
    text: &'a str,
    count: usize,
}

/// `path`'s [`Parts`], `None` if it does not start with `/`.
fn split(path: &str) -> Option<Parts<'_>> {
    let text = path.strip_prefix('/')?;
    let count = text.bytes().filter(|&byte| byte == b'/').count() + 1;
    Some(Parts { text, count })
}

/// The parameters of `parts` if they match `segments`.
fn matches(segments: &[Segment], parts: &Parts<'_>) -> Option<Params> {
    let rest = matches!(segments.last(), Some(Segment::Rest(_)));
    let fixed = segments.len() - usize::from(rest);
    if parts.count < fixed || (!rest && parts.count != fixed) {
        return None;
    }
    // The fixed segments one by one, then what follows them whole: a rest parameter.
    let pieces = || parts.text.splitn(fixed + 1, '/');
    let fits = segments[..fixed]
        .iter()
        .zip(pieces())
        .all(|(segment, piece)| match segment {
            Segment::Literal(literal) => piece == &**literal,
            Segment::Param(_) => !piece.is_empty(),
            Segment::Rest(_) => false,
        });
    if !fits {
        return None;
    }
    let mut pieces = pieces();
    let mut params = Vec::new();
    for segment in segments {
        match segment {
            Segment::Literal(_) => {
                pieces.next();
            }
            Segment::Param(name) | Segment::Rest(name) => {
                params.push((name.clone(), pieces.next().unwrap_or_default().to_owned()));
            }
        }
    }
    Some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok(_: Request) -> Response {
        Response::new("".into())
    }

    fn table() -> Router {
        Router::new()
            .get("/partner/links", ok)
            .post("/partner/links", ok)
            .get("/partner/links/{linkId}", ok)
            .post("/partner/links/{linkId}/revoke", ok)
            .get("/docs/{*file}", ok)
    }

    fn allow(found: Found<'_>) -> Option<String> {
        match found {
            Found::WrongMethod(allow) => Some(allow),
            _ => None,
        }
    }

    #[test]
    fn a_route_matches_its_method_and_names_its_parameters() {
        let table = table();
        match table.find(&Method::POST, "/partner/links/link_a/revoke") {
            Found::Route(_, params) => assert_eq!(params.get("linkId"), "link_a"),
            _ => panic!("not routed"),
        }
        match table.find(&Method::GET, "/docs/a/b.css") {
            Found::Route(_, params) => assert_eq!(params.get("file"), "a/b.css"),
            _ => panic!("not routed"),
        }
        for (path, file) in [("/docs/", ""), ("/docs", ""), ("/docs/a//b/", "a//b/")] {
            match table.find(&Method::GET, path) {
                Found::Route(_, params) => assert_eq!(params.get("file"), file, "{path}"),
                _ => panic!("{path} not routed"),
            }
        }
    }

    #[test]
    fn another_method_on_a_known_path_lists_the_allowed_ones_from_the_table() {
        let table = table();
        assert_eq!(
            allow(table.find(&Method::DELETE, "/partner/links")).as_deref(),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            allow(table.find(&Method::PUT, "/partner/links/x")).as_deref(),
            Some("GET, HEAD")
        );
    }

    #[test]
    fn head_is_served_by_the_get_route() {
        let table = table();
        match table.find(&Method::HEAD, "/partner/links/link_a") {
            Found::Route(_, params) => assert_eq!(params.get("linkId"), "link_a"),
            _ => panic!("HEAD not routed"),
        }
        assert_eq!(
            allow(table.find(&Method::HEAD, "/partner/links/x/revoke")).as_deref(),
            Some("POST")
        );
    }

    #[test]
    fn unknown_paths_and_empty_parameters_match_nothing() {
        let table = table();
        for path in [
            "/partner",
            "/partner/links/",
            "/partner/links//revoke",
            "/partner/links/x/y",
            "partner/links",
        ] {
            assert!(
                matches!(table.find(&Method::GET, path), Found::Nothing),
                "{path}"
            );
        }
    }

    fn fixed_answer() -> Response {
        Response::new("fixed".into())
    }

    #[test]
    fn a_fixed_answer_is_found_only_where_find_would_pick_it() {
        let fixed = Router::new().get_fixed("/health", fixed_answer);
        assert!(fixed.fixed("/health").is_some());
        assert!(fixed.fixed("/health/").is_none());
        assert!(fixed.fixed("/other").is_none());
        assert!(matches!(
            fixed.find(&Method::GET, "/health"),
            Found::Route(..)
        ));
        assert!(matches!(
            fixed.find(&Method::HEAD, "/health"),
            Found::Route(..)
        ));
        let merged = Router::new()
            .get("/other", |_: Request| async { fixed_answer() })
            .merge(fixed.clone());
        assert!(merged.fixed("/health").is_some(), "merging keeps it");
        // An earlier route that serves the same path answers it, so it is not fixed.
        let shadowed = Router::new()
            .get("/{any}", |_: Request| async { fixed_answer() })
            .merge(fixed);
        assert!(shadowed.fixed("/health").is_none());
    }
}
