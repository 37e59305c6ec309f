//! The hosted pages, server-rendered HTML that works without JavaScript and fetches nothing
//! from the network (inline CSS only): what an end user sees — the M2M widget
//! ([`widget`], `/widget/{linkId}/{flow}`) and the Leaf magic-link page ([`magic_link`],
//! `/magic-link/{id}`) — the QA dashboard ([`dashboard`], `/_sandbox/ui`) and a landing
//! page at `/` linking the dashboard, the API reference, the OpenAPI document and the
//! health check.
//!
//! Every value reaches the HTML through `maud`, which escapes it; nothing here builds markup
//! from strings. Pages change state only through the domain operations the control API also
//! uses ([`crate::ops`]).

pub mod dashboard;
pub mod magic_link;
pub mod widget;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use warp::reply::Response;

use crate::wire::{BodyError, Router};

/// The most a page's form post may send: a few fields, urlencoded.
pub const FORM_BYTES: usize = 4 * 1024;

/// The operator's pages: the landing page and the dashboard, under the control API's
/// envelope for what they do not serve.
pub fn routes() -> Router {
    dashboard::routes()
        .merge(Router::new().get("/", |_request: crate::wire::Request| async { landing() }))
}

/// The end user's pages: the M2M widget and the Leaf page, reached from a link's URL by a
/// browser ([`owns`]).
pub fn end_user_routes() -> Router {
    widget::routes().merge(magic_link::routes())
}

/// Whether `path` is an end user's page's (`/widget/…`, `/magic-link/…`): what those paths
/// do not serve is an HTML page too, never an API's JSON ([`not_found`], [`wrong_method`]).
pub fn owns(path: &str) -> bool {
    ["/widget", "/magic-link"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether a request's `Accept` names `text/html` (in any case, as media types are
/// compared): a browser's, which is answered a page where a client is answered an API's
/// body.
pub fn takes_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/html"))
}

/// 404 for an end user's address no page is at.
pub fn not_found(_method: &http::Method, _path: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        document(
            "en",
            "Page not found",
            "",
            html! { main { h1 { "Page not found" } p.error #reason { "There is no page at this address. Open the link you were given again." } } },
        ),
    )
}

/// The page an injected fault's status answers on an end user's address: what a browser
/// shows for such a status, never JSON.
pub fn fault(status: StatusCode) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html(
        status,
        document(
            "en",
            title,
            "",
            html! { main { h1 { (status.as_u16()) " " (title) } p.error #reason { "This page could not be shown. Try again in a moment." } } },
        ),
    )
}

/// The page linkbox's own failure of an end user's request answers with (a 500, a 503 while
/// it is busy or its shared database is away): `message` says what happened and what to
/// do, on a page, never JSON.
pub fn failure(status: StatusCode, message: &str) -> Response {
    html(status, failure_page(status, message))
}

/// The page of [`failure`], also for a request refused before it could be read (a head
/// too large), written out by hand.
pub fn failure_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    document(
        "en",
        title,
        "",
        html! { main { h1 { (status.as_u16()) " " (title) } p.error #reason { (message) } } },
    )
}

/// 405, with `Allow`, for a page's address and a method it does not take.
pub fn wrong_method(method: &http::Method, _path: &str, allow: String) -> Response {
    let mut response = html(
        StatusCode::METHOD_NOT_ALLOWED,
        document(
            "en",
            "Not available",
            "",
            html! { main { h1 { "Not available" } p.error #reason { (format!("This address does not take {method}: open the link you were given again.")) } } },
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// `GET /`: where to go from here.
fn landing() -> Response {
    let body = html! {
        main {
            h1 { "linkbox" }
            p { "A local sandbox of LeapFinancial's M2M partner-link API and Leaf Agriculture's magic-link API." }
            ul {
                li { a href="_sandbox/ui" { "Dashboard" } " — links, webhook deliveries, the request journal, the clock" }
                li { a href="docs" { "API reference" } }
                li { a href="openapi.json" { "OpenAPI document" } }
                li { a href="_sandbox/health" { "Health check" } }
            }
        }
    };
    html(
        StatusCode::OK,
        document_at(Some(&to_root("/")), "en", "linkbox", "", body),
    )
}

/// The way from the page at `path` back to linkbox's root, as a relative reference: `./`
/// for `/` or `/a`, `../` for `/a/b`, `../../` for `/a/b/c`.
pub fn to_root(path: &str) -> String {
    match path.matches('/').count().saturating_sub(1) {
        0 => "./".to_owned(),
        depth => "../".repeat(depth),
    }
}

/// An HTML response; pages show live state, so nothing is cached.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = Response::new(markup.into_string().into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `303 See Other` to `location`, a path on this sandbox.
pub fn see_other(location: &str) -> Response {
    let mut response = Response::new(Bytes::new().into());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A whole document: `lang`, a title, the page's own style after the shared one.
pub fn document(lang: &str, title: &str, style: &str, body: Markup) -> Markup {
    document_at(None, lang, title, style, body)
}

/// [`document`], with its relative links and forms read from `base` (a `<base href>`): the
/// operator's pages write linkbox's paths without their leading `/` and set `base` to
/// [`to_root`] of their own path, so a page reached under a path prefix
/// (`--public-url https://host/base/`) links and posts under it too.
pub fn document_at(
    base: Option<&str>,
    lang: &str,
    title: &str,
    style: &str,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(base) = base { base href=(base); }
                title { (title) }
                style { (PreEscaped(BASE_STYLE)) (PreEscaped(style)) }
            }
            body { (body) }
        }
    }
}

/// Shared CSS. Static text, never built from values.
const BASE_STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2433}\
main{max-width:40rem;margin:2rem auto;padding:1.5rem;border-radius:12px;background:#fff;\
box-shadow:0 2px 12px rgba(0,0,0,.08)}\
h1{font-size:1.4rem;margin-top:0}dl{display:grid;grid-template-columns:max-content 1fr;\
gap:.3rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}\
button{font:inherit;padding:.5rem 1rem;border-radius:8px;border:1px solid #0b5cad;\
background:#0b5cad;color:#fff;cursor:pointer;margin:.2rem 0}\
button.secondary{background:#fff;color:#0b5cad}\
.flash{padding:.6rem 1rem;border-radius:8px;background:#e6f4ea;margin-bottom:1rem}\
.error{padding:.6rem 1rem;border-radius:8px;background:#fdecea;margin-bottom:1rem}\
table{border-collapse:collapse;width:100%;font-size:.85rem}\
th,td{border-bottom:1px solid #e3e6ea;padding:.3rem .4rem;text-align:left;vertical-align:top}\
code{font-size:.85em}";

/// The pairs of an `application/x-www-form-urlencoded` body of at most `limit` bytes, or
/// why it was not read: its status and what to say. A form past the limit is a 413 naming
/// it, not a form of no fields (which each page would refuse for a field it lacks).
pub fn form_pairs(
    body: Result<Bytes, BodyError>,
    limit: usize,
) -> Result<Vec<(String, String)>, FormUnread> {
    let bytes = body.map_err(|error| match error {
        BodyError::TooLarge => FormUnread {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("The form is larger than {} KiB", limit / 1024),
        },
        BodyError::PastShare(_) => FormUnread {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: error.to_string(),
        },
        BodyError::Busy(_) => FormUnread {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: error.to_string(),
        },
        BodyError::Late | BodyError::Unreadable => FormUnread {
            status: StatusCode::BAD_REQUEST,
            message: error.to_string(),
        },
    })?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// A form body not read ([`form_pairs`]).
#[derive(Debug)]
pub struct FormUnread {
    pub status: StatusCode,
    pub message: String,
}

impl FormUnread {
    /// `page`, the page saying so, with this status, and `Retry-After` on a 503 (no room to
    /// hold the form now), as the APIs answer one.
    pub fn answer(&self, mut page: Response) -> Response {
        *page.status_mut() = self.status;
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            page.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
            );
        }
        page
    }

    /// Whether the form was refused for its size alone.
    pub fn too_large(&self) -> bool {
        self.status == StatusCode::PAYLOAD_TOO_LARGE
    }
}

/// The last value of `name` among `pairs`, trimmed, if not empty.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// One path segment, percent-encoded (a space as `%20`: a `+` in a path is a `+`).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, crate::store::m2m::SEGMENT).to_string()
}
