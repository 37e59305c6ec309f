//! The QA dashboard, `/_sandbox/ui`: per tenant, the links and their states (M2M and Leaf),
//! the webhook deliveries with their attempts and a replay button, the request journal, and
//! the sandbox clock with an "advance" control. Plain forms, no JavaScript, no cookies.
//!
//! Who is looking is said by a form field (or query parameter) `key` (an M2M key) or
//! `token` (a Leaf `id_token`, or the admin token), turned into the same headers the
//! control API reads and resolved by the same [`identity`]. The sign-in form POSTs, and every
//! button carries the credential in a hidden field, so it stays out of URLs (and out of
//! browser history and proxy logs); `?key=` / `?token=` work too, for bookmarks and
//! scripts, at that cost. Nothing is remembered between requests. The journal never records
//! `/_sandbox` paths, so the credential is not kept there either.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use linkbox_contracts::leaf::Widget;
use linkbox_contracts::m2m::LinkStatus;
use linkbox_contracts::sandbox::DeliveryStatus;
use linkbox_contracts::timefmt;
use maud::{Markup, html};
use warp::reply::Response;

use super::{document, field, form_pairs, html as page};
use crate::app::App;
use crate::journal::JournalFilter;
use crate::ops::identity::{self, Refusal, Scope};
use crate::store::m2m::LinkFilter;
use crate::wire::{Request, Router, query_pairs};

const STYLE: &str = "body{background:#eef2f6}main{max-width:76rem}section{margin-top:1.5rem}\
form.inline{display:inline}";

/// The dashboard's routes.
pub fn routes() -> Router {
    Router::new()
        .get("/_sandbox/ui", |request: Request| async move {
            dashboard(&request.app, &query_pairs(&request.query), None)
        })
        .post(
            "/_sandbox/ui/{*action}",
            |mut request: Request| async move {
                let form = form_pairs(request.body(16 * 1024).await);
                let message = act(&request.app, request.param("action"), &form);
                dashboard(&request.app, &form, message)
            },
        )
}

/// Who the form's credential names, resolved as any request's caller is.
fn scope_of(app: &App, headers: &HeaderMap) -> Result<Scope, Refusal> {
    identity::resolve(app, headers).scope(app)
}

/// The credential as the control API's headers.
fn headers(form: &[(String, String)]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    if let Some(key) = field(form, "key") {
        headers.insert("x-api-key", HeaderValue::from_str(key).ok()?);
    } else if let Some(token) = field(form, "token") {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        headers.insert(header::AUTHORIZATION, value);
    } else {
        return None;
    }
    Some(headers)
}

/// Runs a button's action; returns what to tell the user.
fn act(app: &App, action: &str, form: &[(String, String)]) -> Option<Result<String, String>> {
    let scope = scope_of(app, &headers(form)?).ok()?;
    match action {
        "replay" => {
            let id = field(form, "delivery").unwrap_or_default();
            Some(
                app.webhooks
                    .replay(id, scope.deliveries(), app.clock.now())
                    .map(|_| format!("Delivery {id} queued again."))
                    .map_err(|error| error.to_string()),
            )
        }
        "clock" if !scope.may_move_clock(app) => {
            Some(Err(crate::ops::identity::CLOCK_ADMIN_ONLY.into()))
        }
        "clock" => {
            let seconds = field(form, "advanceSeconds").and_then(|value| value.parse::<i64>().ok());
            match seconds {
                Some(seconds) if seconds.abs() <= 100 * 366 * 24 * 3600 => Some(
                    app.clock
                        .advance(time::Duration::seconds(seconds))
                        .map(|()| format!("Clock moved by {seconds} s."))
                        .map_err(|error| format!("Not moved: {error}.")),
                ),
                _ => Some(Err(
                    "advanceSeconds must be a whole number of seconds".into()
                )),
            }
        }
        _ => None,
    }
}

fn dashboard(
    app: &App,
    form: &[(String, String)],
    message: Option<Result<String, String>>,
) -> Response {
    let Some(headers) = headers(form) else {
        return page(StatusCode::OK, sign_in(None));
    };
    let scope = match scope_of(app, &headers) {
        Ok(scope) => scope,
        Err(error) => return page(StatusCode::UNAUTHORIZED, sign_in(Some(&error.to_string()))),
    };
    let hidden = html! {
        @if let Some(key) = field(form, "key") { input type="hidden" name="key" value=(key); }
        @else if let Some(token) = field(form, "token") { input type="hidden" name="token" value=(token); }
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
                form method="post" action="/_sandbox/ui/clock" {
                    (hidden)
                    label { "Advance by (seconds) " input name="advanceSeconds" type="number" value="3600"; }
                    " " button #advance type="submit" { "Advance" }
                }
            }
            (m2m_links(app, &scope))
            (leaf_links(app, &scope))
            (deliveries(app, &scope, &hidden))
            (journal(app, &scope))
        }
    };
    page(
        StatusCode::OK,
        document("en", "linkbox dashboard", STYLE, body),
    )
}

fn sign_in(error: Option<&str>) -> Markup {
    let body = html! {
        main {
            h1 { "linkbox dashboard" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/_sandbox/ui" {
                p { label { "M2M API key " input name="key" type="password" autocomplete="off"; } }
                p { "or" }
                p { label { "Leaf id_token (or admin token) " input name="token" type="password" autocomplete="off"; } }
                button #sign-in type="submit" { "Open" }
            }
        }
    };
    document("en", "linkbox dashboard", STYLE, body)
}

fn m2m_links(app: &App, scope: &Scope) -> Markup {
    let partners = match scope {
        Scope::Admin => app.store.m2m().all(),
        Scope::Tenant(partner) => vec![partner.clone()],
        Scope::Leaf(..) => return html! {},
    };
    let now = app.clock.now();
    html! {
        section #m2m-links {
            h2 { "M2M links" }
            table {
                tr { th { "linkId" } th { "referenceId" } th { "status" } th { "created" }
                     th { "expires" } th { "opened" } th { "operation" } }
                @for partner in &partners {
                    @let (items, _) = partner.list_links(&LinkFilter::default(), 1, 100, now);
                    @for item in &items {
                        @let expired = item.status != LinkStatus::Revoked
                            && timefmt::parse(&item.expires_at).is_some_and(|at| at <= now);
                        tr {
                            td { a href=(item.url) { code { (item.link_id) } } }
                            td { (item.reference_id) }
                            td { (serde_json::to_value(item.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                                 @if expired { " (expired)" } }
                            td { (item.created_at) } td { (item.expires_at) }
                            td { (item.opened_at.as_deref().unwrap_or("—")) }
                            td { (item.operation_id.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
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
                @for account in &accounts {
                    @for widget in Widget::ALL {
                        @let (links, _) = account.list_magic_links(widget, None, Some((0, 100)));
                        @for link in &links {
                            @let user = account.user(&link.leaf_user_id).map(|user| user.name).unwrap_or_default();
                            @let expired = timefmt::parse(&link.expires_at).is_some_and(|at| at <= now);
                            tr {
                                td { a href=(link.link) { code { (link.id) } } }
                                td { (widget.path_segment()) }
                                td { (user) }
                                td { (link.usage_count) " / " (link.max_usage) }
                                td { (link.expires_at) }
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
                @for delivery in deliveries.iter().take(100) {
                    tr {
                        td { code { (delivery.id) } }
                        td.event { (delivery.event) }
                        td { (match delivery.status { DeliveryStatus::Pending => "pending", DeliveryStatus::Delivered => "delivered", DeliveryStatus::Failed => "failed" }) }
                        td {
                            ol {
                                @for attempt in &delivery.attempts {
                                    li { (attempt.at) " → "
                                        @if let Some(code) = attempt.status_code { (code) }
                                        @if let Some(error) = &attempt.error { (error) } }
                                }
                            }
                        }
                        td { (delivery.next_attempt_at.as_deref().unwrap_or("—")) }
                        td {
                            form.inline method="post" action="/_sandbox/ui/replay" {
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
    let entries = app.journal.list(&JournalFilter::default(), scope.slug());
    html! {
        section #journal {
            h2 { "Request journal" }
            table {
                tr { th { "#" } th { "time" } th { "method" } th { "path" } th { "status" } th { "ms" } }
                @for entry in entries.iter().take(100) {
                    tr {
                        td { (entry.seq) } td { (entry.time) } td { (entry.method) }
                        td { code { (entry.path) @if let Some(query) = &entry.query { "?" (query) } } }
                        td { (entry.status) } td { (entry.duration_ms) }
                    }
                }
            }
        }
    }
}
