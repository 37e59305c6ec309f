//! The route table: one list of `(method, path pattern, handler)` per surface, and the one
//! place a path is matched. The same table that serves a request answers what it does not
//! serve — a known path with another method is [`Found::WrongMethod`] with the `Allow` list
//! read off the table, so there is no second list to keep in step — and lists itself for
//! the test that holds the routes and the OpenAPI document together.
//!
//! A pattern is a path whose segments are literals or `{name}` (exactly one non-empty
//! segment), and whose last segment may be `{*name}` (whatever is left, possibly empty).
//! Routes are built once, at start-up; matching allocates only the parameters it returns.
//!
//! A route whose handler reads the body whole says up to how many bytes ([`Router::reading`]):
//! a request a fault answers in the route's place is read as far as the route would have
//! read it, so the journal keeps its body as it keeps any other ([`Router::reads`]).

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

/// A route's read limit ([`Router::reading`]) that is as much as one caller may have read
/// at once (`--max-bodies-mib`): for a route whose own limit depends on its caller's state
/// (a snapshot's restore), so that a shared sandbox can still read its body before the
/// request's transaction, holding no lock while a client sends it slowly.
pub const CALLERS_MOST: usize = usize::MAX;

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
    /// The most bytes its handler reads of the body, when it reads it whole.
    reads: Option<usize>,
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
            reads: None,
        });
        self
    }

    /// Says that the route added last reads the body whole, up to `limit` bytes (the limit
    /// its handler reads with; [`CALLERS_MOST`] for one whose limit depends on its caller's
    /// state, and which measures the body against it once read).
    ///
    /// # Panics
    /// On a table without routes: a programming error caught by every test that builds it.
    pub fn reading(mut self, limit: usize) -> Router {
        let route = self
            .routes
            .last_mut()
            .expect("reading() follows the route it describes");
        route.reads = Some(limit);
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

    /// `path` as Express routes it to one of these routes, when it is not that already:
    /// the letter case of a route's fixed segments, and one trailing slash, do not count
    /// (Express's default `case sensitive routing` and `strict routing` are both off), so
    /// `/PARTNER/Links/` is routed, journaled and answered as `/partner/links`. Its
    /// parameters are kept as sent. `None` when no route takes it so, or it needs nothing.
    pub fn canonical(&self, path: &str) -> Option<String> {
        let trimmed = path.strip_suffix('/').filter(|rest| !rest.is_empty());
        if trimmed.is_none() && !path.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return None;
        }
        let path = trimmed.unwrap_or(path);
        let parts = split(path)?;
        self.routes.iter().find_map(|route| {
            let rest = matches!(route.segments.last(), Some(Segment::Rest(_)));
            if rest || parts.count != route.segments.len() {
                return None;
            }
            let mut canonical = String::with_capacity(path.len());
            for (index, segment) in route.segments.iter().enumerate() {
                let sent = parts.segment(index);
                canonical.push('/');
                match segment {
                    Segment::Literal(literal) if literal.eq_ignore_ascii_case(sent) => {
                        canonical.push_str(literal);
                    }
                    Segment::Param(_) if !sent.is_empty() => canonical.push_str(sent),
                    _ => return None,
                }
            }
            Some(canonical)
        })
    }

    /// Looks `method path` up. The first route whose pattern and method match wins; a HEAD
    /// without a route of its own is served by the path's GET route (the serving layer
    /// strips the body), so `Allow` lists HEAD wherever it lists GET.
    pub fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let mut get = None;
        let mut other_methods = false;
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
            other_methods = true;
        }
        if *method == Method::HEAD
            && let Some((handler, params)) = get
        {
            return Found::Route(handler, params);
        }
        if !other_methods {
            return Found::Nothing;
        }
        // Only a 405 lists the path's methods, so they are gathered here, in table order,
        // by a second pass: a request its route answers (a create, whose path the list's
        // GET shares) allocates nothing for them.
        let mut allowed: Vec<&Method> = Vec::new();
        for route in &self.routes {
            if matches(&route.segments, &parts).is_some() && !allowed.contains(&&route.method) {
                allowed.push(&route.method);
            }
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

    /// The most bytes the route serving `method path` reads of the body ([`Router::reading`]);
    /// `None` when it reads none, or when no route serves it. The route is the one
    /// [`Router::find`] picks (a HEAD's is its path's GET route).
    pub fn reads(&self, method: &Method, path: &str) -> Option<usize> {
        let parts = split(path)?;
        let serving = |method: &Method| {
            self.routes
                .iter()
                .find(|route| route.method == *method && matches(&route.segments, &parts).is_some())
        };
        let route = match serving(method) {
            Some(route) => route,
            None if *method == Method::HEAD => serving(&Method::GET)?,
            None => return None,
        };
        route.reads
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
    let fixed = parts.len() - usize::from(parts[last].starts_with("{*"));
    assert!(
        fixed <= MAX_FIXED,
        "{pattern}: more than {MAX_FIXED} segments before a rest"
    );
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

/// The most fixed segments (literals and `{name}`s) a pattern may have.
const MAX_FIXED: usize = 14;

/// A path without its leading `/`, how many segments it has, and where the first ones
/// start: found in one pass, so matching a route compares slices instead of splitting the
/// path again for every route of the same length (eight splits a create, about 800
/// instructions).
struct Parts<'a> {
    text: &'a str,
    count: usize,
    /// Where segment `n` starts in `text`, for the first `MAX_FIXED + 2` (enough for the
    /// end of every fixed segment and the start of a rest parameter); 0 past `count`.
    starts: [usize; MAX_FIXED + 2],
}

/// `path`'s [`Parts`], `None` if it does not start with `/`.
fn split(path: &str) -> Option<Parts<'_>> {
    let text = path.strip_prefix('/')?;
    let mut starts = [0; MAX_FIXED + 2];
    let mut count = 1;
    for (at, byte) in text.bytes().enumerate() {
        if byte == b'/' {
            if let Some(start) = starts.get_mut(count) {
                *start = at + 1;
            }
            count += 1;
        }
    }
    Some(Parts {
        text,
        count,
        starts,
    })
}

impl Parts<'_> {
    /// Segment `index`, for an index below both `count` and `MAX_FIXED + 1`.
    fn segment(&self, index: usize) -> &str {
        let start = self.starts.get(index).copied().unwrap_or(self.text.len());
        let end = match self.starts.get(index + 1) {
            Some(next) if index + 1 < self.count => next - 1,
            _ => self.text.len(),
        };
        self.text.get(start..end).unwrap_or_default()
    }

    /// Everything from segment `index` on (a rest parameter), `""` past the last.
    fn from(&self, index: usize) -> &str {
        if index >= self.count {
            return "";
        }
        let start = self.starts.get(index).copied().unwrap_or(self.text.len());
        self.text.get(start..).unwrap_or_default()
    }
}

/// A path parameter as the vendors' frameworks hand it to their handlers: percent-decoded
/// (Express decodes `req.params`, Spring its path variables), so `%6Cink_…` names the same
/// link as `link_…`. A segment that does not decode to UTF-8 is kept as sent, and names
/// nothing. Literal segments are matched as sent, as Express matches its routes.
pub fn decoded(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_owned();
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_or_else(|_| segment.to_owned(), std::borrow::Cow::into_owned)
}

/// The parameters of `parts` if they match `segments`.
fn matches(segments: &[Segment], parts: &Parts<'_>) -> Option<Params> {
    let rest = matches!(segments.last(), Some(Segment::Rest(_)));
    let fixed = segments.len() - usize::from(rest);
    if parts.count < fixed || (!rest && parts.count != fixed) {
        return None;
    }
    let fits = segments[..fixed]
        .iter()
        .enumerate()
        .all(|(index, segment)| match segment {
            Segment::Literal(literal) => parts.segment(index) == &**literal,
            Segment::Param(_) => !parts.segment(index).is_empty(),
            Segment::Rest(_) => false,
        });
    if !fits {
        return None;
    }
    let mut params = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(_) => {}
            Segment::Param(name) => params.push((name.clone(), decoded(parts.segment(index)))),
            Segment::Rest(name) => params.push((name.clone(), parts.from(index).to_owned())),
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

    /// What a route reads of the body is the route `find` picks: its own method's, a HEAD's
    /// GET route's; nothing for a route that reads none or a path no route serves.
    #[test]
    fn a_route_says_how_much_of_the_body_it_reads() {
        let table = Router::new()
            .get("/leaf/users", ok)
            .reading(10)
            .post("/leaf/users", ok)
            .reading(20)
            .get("/partner/links", ok);
        assert_eq!(table.reads(&Method::GET, "/leaf/users"), Some(10));
        assert_eq!(table.reads(&Method::HEAD, "/leaf/users"), Some(10));
        assert_eq!(table.reads(&Method::POST, "/leaf/users"), Some(20));
        assert_eq!(table.reads(&Method::GET, "/partner/links"), None);
        assert_eq!(table.reads(&Method::DELETE, "/leaf/users"), None);
        assert_eq!(table.reads(&Method::POST, "/nowhere"), None);
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

    /// What matching means, written the plain way: both split, compared piece by piece.
    fn plainly(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        let pieces: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let segments = parse(pattern);
        let mut params = Vec::new();
        for (index, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if *pieces.get(index)? != &**literal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let piece = pieces.get(index).filter(|piece| !piece.is_empty())?;
                    params.push((name.to_string(), (*piece).to_owned()));
                }
                Segment::Rest(name) => {
                    params.push((name.to_string(), pieces.get(index..)?.join("/")));
                    return Some(params);
                }
            }
        }
        (pieces.len() == segments.len()).then_some(params)
    }

    #[test]
    fn paths_of_any_depth_match_as_splitting_them_would() {
        use rand::{Rng, SeedableRng};
        let words = ["", "a", "b", "links", "é"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut matched = 0;
        for _ in 0..20_000 {
            let piece = |rng: &mut rand::rngs::StdRng| words[rng.random_range(0..words.len())];
            let depth = rng.random_range(1..=MAX_FIXED + 4);
            let path: Vec<&str> = (0..depth).map(|_| piece(&mut rng)).collect();
            // Most patterns are drawn from the path, so that many match; some pieces changed.
            let fixed = rng.random_range(1..=MAX_FIXED.min(depth + 1));
            let mut pattern: Vec<String> = (0..fixed)
                .map(|n| match (path.get(n), rng.random_range(0..10)) {
                    (_, 0) => piece(&mut rng).to_owned(),
                    (Some(_), 1..=3) => format!("{{p{n}}}"),
                    (Some(kept), _) => (*kept).to_owned(),
                    (None, _) => piece(&mut rng).to_owned(),
                })
                .collect();
            if fixed < depth && rng.random_bool(0.5) || rng.random_bool(0.1) {
                pattern.push("{*rest}".to_owned());
            }
            let path = format!("/{}", path.join("/"));
            let pattern = format!("/{}", pattern.join("/"));
            let parts = split(&path).expect("a path");
            let found = matches(&parse(&pattern), &parts).map(|params| {
                let params = params.0.into_iter();
                params
                    .map(|(name, value)| (name.to_string(), value))
                    .collect()
            });
            assert_eq!(found, plainly(&pattern, &path), "{pattern} against {path}");
            matched += usize::from(found.is_some());
        }
        assert!(matched > 2_000, "only {matched} of the cases matched");
    }

    #[test]
    #[should_panic(expected = "more than 14 segments")]
    fn a_pattern_deeper_than_matching_reads_is_refused_when_built() {
        let _ = Router::new().get(format!("/{}", ["a"; MAX_FIXED + 1].join("/")), ok);
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
