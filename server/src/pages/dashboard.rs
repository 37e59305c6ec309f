//! The QA dashboard, `/_sandbox/ui`: per tenant, the links and their states (M2M and Leaf),
//! the webhook deliveries with their attempts and a replay button, the request journal, and
//! the sandbox clock with an "advance" control. Plain forms, no JavaScript, no cookies.
//!
//! Who is looking is said by a form field (or query parameter) `key` (an M2M key) or
//! `token` (a Leaf `id_token`, or the admin token), turned into the same headers the
//! control API reads and resolved by the same [`identity`]; with neither, on a sandbox
//! without `--admin-token`, the person at this machine is the admin and sees every tenant,
//! as the control API's keyless caller does (and is refused as it is: another origin's
//! page, a foreign `Host`). The dashboard is never framed by another page, and its buttons
//! do nothing when their form comes from another origin's page or names a foreign `Host`,
//! whatever credential it carries ([`identity::foreign_page`]). The sign-in form POSTs, and
//! every button carries the credential in a hidden field, so it stays out of URLs (and out of
//! browser history and proxy logs); `?key=` / `?token=` work too, for bookmarks and
//! scripts, at that cost. Nothing is remembered between requests. The journal never records
//! `/_sandbox` paths, so the credential is not kept there either.
//!
//! Tables say how much they show: M2M links come 100 a page ("showing 1–100 of 1,270",
//! `page`, filters `status` and `referenceId` as form fields or query parameters); the other
//! tables show the newest 100 and say so when there are more. An empty table says "none
//! yet". Times read `2026-12-01 10:00:00 UTC`, the exact RFC 3339 value on hover (`title`).
//! Consecutive identical webhook attempts (same status, same error) fold into one line with
//! a count. The Drift section lists shadow mode's differences (`GET /_sandbox/drift`), the
//! newest 100, with how many requests were compared and how many could not be.
//!
//! A link's id opens linkbox's own page for it (root-relative `/widget/…`, `/magic-link/…`),
//! not the link's `url`, which `--m2m-widget-base` / `--leaf-link-base` may point elsewhere.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use linkbox_contracts::leaf::Widget;
use linkbox_contracts::m2m::{LinkStatus, Visibility};
use linkbox_contracts::sandbox::{DeliveryAttempt, DeliveryStatus};
use linkbox_contracts::timefmt;
use maud::{Markup, html};
use warp::reply::Response;

use super::{document_at, field, form_pairs, html as page, to_root};
use crate::app::App;
use crate::offload;
use crate::ops::identity::{self, Refusal, Scope};
use crate::store::m2m::{Lent, LinkFilter};
use crate::webhooks::ReplayError;
use crate::wire::{Request, Router, query_pairs};

const STYLE: &str = "body{background:#eef2f6}main{max-width:76rem}section{margin-top:1.5rem}\
form.inline{display:inline}";

/// Whether `path` is the dashboard's: its page, or a button's address under it.
pub fn owns(path: &str) -> bool {
    path.strip_prefix("/_sandbox/ui")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The dashboard's routes.
pub fn routes() -> Router {
    Router::new()
        // The page is made on a heavy thread: it shows the newest hundred requests of every
        // tenant it may see, each query redacted as it is shown, and strangers' queries of
        // tens of kilobytes made one view stall every request of its serving thread for
        // seconds.
        .get("/_sandbox/ui", |request: Request| async move {
            let whose = request.caller.tenant().cloned();
            offload::run(whose, move || {
                unframed(dashboard(&request, &query_pairs(&request.query), None))
            })
            .await
        })
        // A button's address opened as a page (a reload, a bookmark) is the dashboard; the
        // credential its form carried is not in the address, so it asks for one again.
        .get("/_sandbox/ui/{*action}", |request: Request| async move {
            super::see_other(&format!("{}_sandbox/ui", to_root(&request.path)))
        })
        .post(
            "/_sandbox/ui/{*action}",
            |mut request: Request| async move {
                let form = match form_pairs(
                    request.body(DASHBOARD_FORM_BYTES).await,
                    DASHBOARD_FORM_BYTES,
                ) {
                    Ok(form) => form,
                    Err(unread) => {
                        let said = format!("Nothing was done: {}.", unread.message);
                        return unframed(
                            unread.answer(page(unread.status, sign_in(&request.path, Some(&said)))),
                        );
                    }
                };
                let action = request.param("action");
                if ACTIONS.contains(&action)
                    && let Some(refusal) = identity::foreign_page(&request.app, &request.headers)
                {
                    let why = match refusal {
                        Refusal::ForeignHost => "it names a host that is not this machine",
                        _ => "its Origin header names another site",
                    };
                    let message = format!("{FOREIGN_FORM} ({why}).");
                    return unframed(page(
                        StatusCode::FORBIDDEN,
                        sign_in(&request.path, Some(&message)),
                    ));
                }
                let whose = request.caller.tenant().cloned();
                offload::run(whose, move || {
                    let (status, message) = act(&request, request.param("action"), &form)
                        .map_or((StatusCode::OK, None), |(status, said)| {
                            (status, Some(said))
                        });
                    let mut response = dashboard(&request, &form, message);
                    // The page of an action refused as the API refuses it carries its
                    // status (a sign-in page keeps its own).
                    if response.status() == StatusCode::OK {
                        *response.status_mut() = status;
                    }
                    unframed(response)
                })
                .await
            },
        )
        // Read before a shared sandbox's transaction: a button's form sent slowly, or
        // never, held every tenant's lock on every replica while it was waited for.
        .reading(DASHBOARD_FORM_BYTES)
}

/// The most a dashboard form may send: a credential, filters and a button's fields.
pub const DASHBOARD_FORM_BYTES: usize = 16 * 1024;

/// The buttons that change something: what [`act`] runs.
const ACTIONS: [&str; 2] = ["replay", "clock"];

/// Why a button's form posted from another site's page does nothing.
const FOREIGN_FORM: &str = "Nothing was done: the dashboard's buttons act only from its own \
page, whatever credential their form carries, and this form came from another site's page";

/// The dashboard is never shown inside another page's frame: its buttons act as whoever is
/// looking (the keyless admin, on a developer's machine), so a page of another site must
/// not be able to lay them under its own and borrow the clicks.
fn unframed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// Who the form's credential names, resolved as any request's caller is.
fn scope_of(app: &App, headers: &HeaderMap) -> Result<Scope, Refusal> {
    identity::resolve(app, headers).scope(app)
}

/// Who is looking: the form's credential; or, with none, the request itself, which on a
/// sandbox without `--admin-token` is the admin when it is a person at this machine (the
/// control API's keyless admin, refused the same way to another origin's page, a foreign
/// `Host` or a webhook). `None`: nobody yet, so the sign-in form.
fn viewer(request: &Request, form: &[(String, String)]) -> Option<Result<Scope, Refusal>> {
    match headers(form) {
        Some(headers) => Some(scope_of(&request.app, &headers)),
        None if request.app.settings.admin_token.is_none() => {
            Some(request.caller.scope(&request.app))
        }
        None => None,
    }
}

/// The credentials as the control API's headers: both, when the form carries a key and a
/// token, so the page acts for whom the control API would ([`crate::ops::identity`]: the
/// token's account before the key's partner). Turned into the key alone, a form carrying
/// both showed and moved the partner the control API would not have acted on. One that
/// cannot be a header's value (a control character in it) is sent as a value that is not
/// text, which the control API refuses as an invalid credential: it was given, so it is
/// never read as none — which, without `--admin-token`, would be the admin.
pub fn headers(form: &[(String, String)]) -> Option<HeaderMap> {
    let unreadable = || HeaderValue::from_bytes(&[0xff]).ok();
    let mut headers = HeaderMap::new();
    if let Some(key) = field(form, "key") {
        let value = HeaderValue::from_str(key).ok().or_else(unreadable)?;
        headers.insert("x-api-key", value);
    }
    if let Some(token) = field(form, "token") {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .or_else(|| HeaderValue::from_bytes(b"Bearer \xff").ok())?;
        headers.insert(header::AUTHORIZATION, value);
    }
    (!headers.is_empty()).then_some(headers)
}

/// Runs a button's action; returns what to tell the user, and the status of the page that
/// tells it: a refusal's as the control API's for the same request (a tenant's clock button
/// under `--clock admin` a 403, an unknown delivery a 404, one in flight a 409, a step that
/// is no whole number of seconds within a century a 400), a success's 200.
fn act(
    request: &Request,
    action: &str,
    form: &[(String, String)],
) -> Option<(StatusCode, Result<String, String>)> {
    let app = &request.app;
    let scope = viewer(request, form)?.ok()?;
    let refused = |status: StatusCode, said: String| Some((status, Err(said)));
    let said = match action {
        "replay" => {
            let id = field(form, "delivery").unwrap_or_default();
            match app.webhooks.replay(id, scope.deliveries(), app.clock.now()) {
                Ok(_) => format!("Delivery {id} queued again."),
                Err(error @ ReplayError::NotFound) => {
                    return refused(StatusCode::NOT_FOUND, error.to_string());
                }
                Err(error @ ReplayError::InFlight) => {
                    return refused(StatusCode::CONFLICT, error.to_string());
                }
            }
        }
        "clock" if !scope.may_move_clock(app) => {
            let why = crate::ops::identity::clock_admin_only(app);
            return Some((StatusCode::FORBIDDEN, Err(why.into())));
        }
        "clock" => {
            const WHOLE: &str =
                "advanceSeconds must be a whole number of seconds, within a century";
            let seconds = field(form, "advanceSeconds").and_then(|value| value.parse::<i64>().ok());
            let Some(seconds) = seconds else {
                return refused(StatusCode::BAD_REQUEST, WHOLE.into());
            };
            match app.clock.advance(time::Duration::seconds(seconds)) {
                Ok(()) => format!("Clock moved by {seconds} s."),
                Err(crate::clock::StepError::TooFar) => {
                    return refused(StatusCode::BAD_REQUEST, WHOLE.into());
                }
                Err(crate::clock::StepError::OutOfRange(error)) => {
                    return refused(StatusCode::BAD_REQUEST, format!("Not moved: {error}."));
                }
            }
        }
        _ => return None,
    };
    Some((StatusCode::OK, Ok(said)))
}

fn dashboard(
    request: &Request,
    form: &[(String, String)],
    message: Option<Result<String, String>>,
) -> Response {
    let app = &request.app;
    let Some(scope) = viewer(request, form) else {
        return page(StatusCode::OK, sign_in(&request.path, None));
    };
    let scope = match scope {
        Ok(scope) => scope,
        Err(error) => {
            return page(
                StatusCode::UNAUTHORIZED,
                sign_in(&request.path, Some(&error.to_string())),
            );
        }
    };
    // Every credential the page was given, as [`headers`] reads them: with only one of a
    // key and a token, a button acted for another tenant than the page showed.
    let hidden = html! {
        @if let Some(key) = field(form, "key") { input type="hidden" name="key" value=(key); }
        @if let Some(token) = field(form, "token") { input type="hidden" name="token" value=(token); }
    };
    let label = match &scope {
        Scope::Admin => "every tenant (admin)".to_owned(),
        Scope::Tenant(partner) => format!("M2M partner {}", partner.slug),
        Scope::Leaf(account, _) => format!("Leaf account {}", account.username),
    };
    let reading = app.clock.reading();
    let body = html! {
        main {
            h1 { "linkbox dashboard" }
            p #tenant { "Tenant: " strong { (label) } }
            @match &message {
                Some(Ok(text)) => p.flash role="status" { (text) },
                Some(Err(text)) => p.error role="alert" { (text) },
                None => {},
            }
            section #clock {
                h2 { "Clock" }
                p { "Now " code #now { (timefmt::millis(reading.now)) } ", offset "
                    (reading.offset.whole_seconds()) " s" @if reading.frozen { ", frozen" } }
                form method="post" action="_sandbox/ui/clock" {
                    (hidden)
                    label { "Advance by (seconds) " input name="advanceSeconds" type="number" value="3600"; }
                    " " button #advance type="submit" { "Advance" }
                }
            }
            (m2m_links(app, &scope, form, &hidden))
            (leaf_links(app, &scope))
            (deliveries(app, &scope, &hidden))
            (journal(app, &scope))
            (drift(app, &scope))
            @if matches!(scope, Scope::Admin) {
                section #look-as {
                    h2 { "Look as one tenant" }
                    (credentials_form())
                }
            }
        }
    };
    page(
        StatusCode::OK,
        document_at(
            Some(&to_root(&request.path)),
            "en",
            "linkbox dashboard",
            STYLE,
            body,
        ),
    )
}

/// The sign-in page for a request at `path`.
fn sign_in(path: &str, error: Option<&str>) -> Markup {
    let body = html! {
        main {
            h1 { "linkbox dashboard" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            (credentials_form())
        }
    };
    document_at(Some(&to_root(path)), "en", "linkbox dashboard", STYLE, body)
}

/// The form naming who looks: the sign-in page's, and the admin's to look as one tenant.
fn credentials_form() -> Markup {
    html! {
        form method="post" action="_sandbox/ui" {
            p { label { "M2M API key " input name="key" type="password" autocomplete="off"; } }
            p { "or" }
            p { label { "Leaf id_token (or admin token) " input name="token" type="password" autocomplete="off"; } }
            button #sign-in type="submit" { "Open" }
        }
    }
}

/// M2M links a page of the dashboard shows.
const PAGE: u32 = 100;

/// What the status filter offers besides the M2M API's link statuses: its `visibility`.
const EXPIRED: &str = "expired";

fn m2m_links(app: &App, scope: &Scope, form: &[(String, String)], hidden: &Markup) -> Markup {
    let partners = match scope {
        Scope::Admin => app.store.m2m().all(),
        Scope::Tenant(partner) => vec![partner.clone()],
        Scope::Leaf(..) => return html! {},
    };
    let now = app.clock.now();
    // The list API's own filters: a status, or `expired` (its `visibility`). A value that is
    // neither, or a page that is no page, is said so above the list, which then shows all.
    let mut refused = Vec::new();
    let status_text = field(form, "status").filter(|status| !status.is_empty());
    let (status, visibility) = match status_text {
        None => (None, None),
        Some(EXPIRED) => (None, Some(Visibility::Expired)),
        Some(text) => match LinkStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
        {
            Some(status) => (Some(status), None),
            None => {
                refused.push(format!(
                    "No status \"{text}\": a link is {}, or {EXPIRED}; showing every link.",
                    LinkStatus::ALL.map(LinkStatus::as_str).join(", ")
                ));
                (None, None)
            }
        },
    };
    let reference_id = field(form, "referenceId").filter(|reference| !reference.is_empty());
    let filter = LinkFilter {
        status,
        visibility,
        reference_id: reference_id.map(str::to_owned),
        ..LinkFilter::default()
    };
    let page_text = field(form, "page").filter(|page| !page.is_empty());
    let page = page_text
        .and_then(|page| page.parse::<u32>().ok())
        .filter(|page| *page >= 1);
    if let (Some(text), None) = (page_text, page) {
        refused.push(format!(
            "No page \"{text}\": a page is a whole number from 1; showing the first."
        ));
    }
    let page = page.unwrap_or(1);
    let (items, total) = if let [partner] = partners.as_slice() {
        partner.list_links(&filter, page, PAGE, now)
    } else {
        // Partner after partner, in the order `all` gives: each partner's matches are
        // counted (nothing copied), and only the page's links are copied. Copying every
        // link of every partner to show a hundred took seconds and gigabytes at 500,000.
        let skip = u64::from(page - 1) * u64::from(PAGE);
        let mut total = 0u64;
        let mut items = Vec::new();
        for partner in &partners {
            let before = total;
            total += partner.list_links(&filter, 1, 0, now).1;
            let wanted = PAGE as usize - items.len();
            if wanted == 0 || total <= skip {
                continue;
            }
            // Where the page starts among this partner's matches (0 once it has started).
            let from = usize::try_from(skip.saturating_sub(before)).unwrap_or(usize::MAX);
            let upto = u32::try_from(from.saturating_add(wanted)).unwrap_or(u32::MAX);
            let (some, _) = partner.list_links(&filter, 1, upto, now);
            items.extend(some.into_iter().skip(from));
        }
        (items, total)
    };
    let first = u64::from(page - 1) * u64::from(PAGE) + 1;
    let last = first + items.len() as u64 - 1;
    let pages = total.div_ceil(u64::from(PAGE)).max(1);
    html! {
        section #m2m-links {
            h2 { "M2M links" }
            form method="post" action="_sandbox/ui/links" {
                (hidden)
                @for text in &refused { p.error role="alert" { (text) } }
                label { "Status " select name="status" {
                    option value="" selected[status_text.is_none()] { "any" }
                    @for name in LinkStatus::ALL.map(LinkStatus::as_str).into_iter().chain([EXPIRED]) {
                        option value=(name) selected[status_text == Some(name)] { (name) }
                    }
                } }
                " "
                label { "referenceId " input name="referenceId" value=(reference_id.unwrap_or_default()); }
                " " button #filter type="submit" { "Filter" }
                @if items.is_empty() {
                    p #links-count { "showing 0 of " (thousands(total)) }
                } @else {
                    p #links-count { "showing " (thousands(first)) "–" (thousands(last)) " of " (thousands(total)) }
                }
                @if page > 1 {
                    button.secondary name="page" value=(page - 1) type="submit" { "← Previous" }
                    " "
                }
                @if u64::from(page) < pages {
                    button.secondary #next name="page" value=(page + 1) type="submit" { "Next →" }
                }
            }
            table {
                tr { th { "linkId" } th { "referenceId" } th { "status" } th { "created" }
                     th { "expires" } th { "opened" } th { "operation" } }
                @if items.is_empty() { tr { td.none colspan="7" { "none yet" } } }
                @for item in items.iter().map(Lent::view) {
                    @let expired = item.status != LinkStatus::Revoked
                        && timefmt::parse(&item.expires_at).is_some_and(|at| at <= now);
                    tr {
                        td { a href=(own_page(&item.url, &app.settings.m2m_widget_base, "widget")) { code { (item.link_id) } } }
                        td { (item.reference_id) }
                        td { (serde_json::to_value(item.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                             @if expired { " (expired)" } }
                        td { (when(&item.created_at)) } td { (when(&item.expires_at)) }
                        td { @match item.opened_at.as_deref() { Some(at) => (when(at)), None => "—" } }
                        td { (item.operation_id.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
    }
}

/// Where a link's anchor goes: linkbox's own page for it, from linkbox's root (the page's
/// `<base>`, [`super::to_root`]), whatever base
/// `--m2m-widget-base` or `--leaf-link-base` gives the APIs' URLs. That base may be the
/// vendor's own host, which knows nothing of the sandbox's links, and whoever clicks here
/// means to play the end user in this sandbox. `url` is `{base}{rest}`; `path` is the
/// page's own route in place of the base.
fn own_page(url: &str, base: &str, path: &str) -> String {
    url.strip_prefix(base)
        .map_or_else(|| url.to_owned(), |rest| format!("{path}{rest}"))
}

/// `n` with thousands separators: 1,270.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An RFC 3339 time, readable, with the exact value on hover.
fn when(exact: &str) -> Markup {
    let readable = timefmt::parse(exact)
        .and_then(|at| {
            at.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| exact.to_owned());
    html! { time datetime=(exact) title=(exact) { (readable) } }
}

/// Consecutive attempts with the same outcome, folded: (first, how many).
fn folded(attempts: &[DeliveryAttempt]) -> Vec<(&DeliveryAttempt, usize)> {
    let mut out: Vec<(&DeliveryAttempt, usize)> = Vec::new();
    for attempt in attempts {
        match out.last_mut() {
            Some((last, count))
                if last.status_code == attempt.status_code && last.error == attempt.error =>
            {
                *count += 1;
            }
            _ => out.push((attempt, 1)),
        }
    }
    out
}

fn leaf_links(app: &App, scope: &Scope) -> Markup {
    let accounts = match scope {
        Scope::Admin => app.store.leaf().all(),
        Scope::Leaf(account, _) => vec![account.clone()],
        Scope::Tenant(_) => return html! {},
    };
    let now = app.clock.now();
    html! {
        section #leaf-links {
            h2 { "Leaf magic links" }
            table {
                tr { th { "id" } th { "widget" } th { "user" } th { "usage" } th { "expires" } th { "state" } }
                @if accounts.iter().all(|account| Widget::ALL.into_iter().all(|widget| account.list_magic_links(widget, None, Some((0, 1))).0.is_empty())) {
                    tr { td.none colspan="6" { "none yet" } }
                }
                @for account in &accounts {
                    @for widget in Widget::ALL {
                        @let (links, total) = account.list_magic_links(widget, None, Some((0, 100)));
                        @if total > links.len() as u64 {
                            tr { td colspan="6" {
                                "showing the newest " (links.len()) " of " (thousands(total)) " "
                                (widget.path_segment()) " links"
                                @if matches!(scope, Scope::Admin) { " of " (account.username) }
                                " (GET /services/widgets/api/magic-link/" (widget.path_segment()) " lists them all)"
                            } }
                        }
                        @for link in &links {
                            @let user = account.user(&link.leaf_user_id).map(|user| user.name).unwrap_or_default();
                            @let expired = timefmt::parse(&link.expires_at).is_some_and(|at| at <= now);
                            tr {
                                td { a href=(own_page(&link.link, &app.settings.leaf_link_base, "magic-link")) { code { (link.id) } } }
                                td { (widget.path_segment()) }
                                td { (user) }
                                td { (link.usage_count) " / " (link.max_usage) }
                                td { (when(&link.expires_at)) }
                                td { @if expired { "expired" } @else if link.usage_count >= link.max_usage { "used up" } @else { "active" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn deliveries(app: &App, scope: &Scope, hidden: &Markup) -> Markup {
    if matches!(scope, Scope::Leaf(..)) {
        return html! {};
    }
    let deliveries = app.webhooks.deliveries(scope.deliveries());
    html! {
        section #deliveries {
            h2 { "Webhook deliveries" }
            table {
                tr { th { "id" } th { "event" } th { "status" } th { "attempts" } th { "next attempt" } th {} }
                @if deliveries.is_empty() { tr { td.none colspan="6" { "none yet" } } }
                @if deliveries.len() > 100 { tr { td colspan="6" { "showing the newest 100 of " (thousands(deliveries.len() as u64)) } } }
                @for delivery in deliveries.iter().take(100) {
                    tr {
                        td { code { (delivery.id) } }
                        td.event { (delivery.event) }
                        td { (match delivery.status { DeliveryStatus::Pending => "pending", DeliveryStatus::Delivered => "delivered", DeliveryStatus::Failed => "failed" }) }
                        td {
                            ol {
                                @for (attempt, count) in folded(&delivery.attempts) {
                                    li { (when(&attempt.at)) " → "
                                        @if let Some(code) = attempt.status_code { (code) }
                                        @if let Some(error) = &attempt.error { (error) }
                                        @if count > 1 { span.repeat { " (×" (count) ")" } } }
                                }
                            }
                        }
                        td { @match delivery.next_attempt_at.as_deref() { Some(at) => (when(at)), None => "—" } }
                        td {
                            form.inline method="post" action="_sandbox/ui/replay" {
                                (hidden)
                                input type="hidden" name="delivery" value=(delivery.id);
                                button.secondary type="submit" { "Replay" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn journal(app: &App, scope: &Scope) -> Markup {
    let (total, entries) = app.journal.newest(scope.slug(), 100);
    html! {
        section #journal {
            h2 { "Request journal" }
            table {
                tr { th { "#" } th { "time" } th { "method" } th { "path" } th { "status" } th { "ms" } }
                @if entries.is_empty() { tr { td.none colspan="6" { "none yet" } } }
                @if total > entries.len() { tr { td colspan="6" { "showing the newest 100 of " (thousands(total as u64)) } } }
                @for entry in &entries {
                    tr {
                        td { (entry.seq) } td { (when(&entry.time)) } td { (entry.method) }
                        td { code { (entry.path) @if let Some(query) = &entry.query { "?" (query) } } }
                        td { @match entry.status { Some(status) => (status), None => "dropped" } }
                        td { (entry.duration_ms) }
                    }
                }
            }
        }
    }
}

fn drift(app: &App, scope: &Scope) -> Markup {
    let report = app.drift.report(scope.slug());
    let shadowed = app.settings.shadow.any();
    html! {
        section #drift {
            h2 { "Drift" }
            p { (thousands(report.compared)) " requests compared, " (thousands(report.errors)) " not compared"
                @if !shadowed { " (shadow mode is off: start linkbox with --shadow-m2m or --shadow-leaf)" } }
            table {
                tr { th { "endpoint" } th { "rule" } th { "where" } th { "vendor" } th { "linkbox" } th { "count" } th { "tag" } th { "last seen" } }
                @if report.differences.is_empty() { tr { td.none colspan="8" { "none yet" } } }
                @if report.differences.len() > 100 { tr { td colspan="8" { "showing the newest 100 of " (thousands(report.differences.len() as u64)) } } }
                @for difference in report.differences.iter().take(100) {
                    tr {
                        td { code { (difference.endpoint) } } td { (difference.rule) }
                        td { code { (difference.pointer) } }
                        td { code { (difference.upstream) } } td { code { (difference.linkbox) } }
                        td { (difference.count) }
                        td { (difference.tag) @if let Some(fact) = &difference.fact { " " code { (fact) } } }
                        td { (when(&difference.last_seen)) }
                    }
                }
            }
            @for error in report.recent_errors.iter().take(5) {
                p.error { code { (error.endpoint) } ": " (error.message) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Options, Settings};

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_270), "1,270");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn identical_consecutive_attempts_fold() {
        let attempt = |error: &str| DeliveryAttempt {
            at: "2026-12-01T10:00:00.000Z".into(),
            url: None,
            status_code: None,
            error: Some(error.into()),
            duration_ms: 0,
        };
        let attempts = [
            attempt("not sent"),
            attempt("not sent"),
            attempt("not sent"),
            attempt("refused"),
        ];
        let counts: Vec<usize> = folded(&attempts).iter().map(|(_, count)| *count).collect();
        assert_eq!(counts, [3, 1]);
    }

    #[tokio::test]
    async fn the_dashboard_pages_links_and_says_how_many_there_are() {
        let app = App::new(Settings::resolve(
            Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ));
        let partner = app
            .store
            .m2m()
            .authenticate(crate::ops::seed::DEMO_KEY)
            .expect("partner");
        for batch in 0..3 {
            crate::ops::seed::seed_m2m(&app, &partner, 500, batch, None).expect("seed");
        }
        let page = |query: &str| {
            let form = query_pairs(&format!("key={}&{query}", crate::ops::seed::DEMO_KEY));
            let request = Request::new(
                app.clone(),
                http::Method::GET,
                "/_sandbox/ui".into(),
                String::new(),
                HeaderMap::new(),
                identity::resolve(&app, &HeaderMap::new()),
                None,
            );
            let response = dashboard(&request, &form, None);
            String::from_utf8_lossy(
                &futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
                    response.into_body(),
                ))
                .expect("ready")
                .expect("body")
                .to_bytes(),
            )
            .into_owned()
        };
        let first = page("");
        assert!(first.contains("showing 1–100 of 1,500"), "paging line");
        assert!(first.contains("title=\"20"), "exact time on hover");
        let second = page("page=2");
        assert!(second.contains("showing 101–200 of 1,500"));
        let none = page("referenceId=nobody");
        assert!(none.contains("none yet") && none.contains("showing 0 of 0"));
    }
}
