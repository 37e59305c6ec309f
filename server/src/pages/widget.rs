//! The M2M widget, `GET /widget/{linkId}/{flow}`: the end user's page a link's `url` points
//! at. It is reached without an API key, so the link is found across partners by the slug
//! its id embeds. Opening it opens the link exactly as `POST /_sandbox/m2m/links/{id}/open`
//! does (same function, same webhooks); its two forms complete or cancel a transfer through
//! the same functions as the control API's `.../operation` and `.../operation/cancel`, then
//! redirect back (POST, redirect, GET), which opens nothing new: only the first open counts.
//! A HEAD answers as the GET would (404, 410, or the page) and opens nothing.
//!
//! Text comes in English and Spanish: `?lang=en|es`, else the link's `language`, else the
//! browser's `Accept-Language`, else English. Revoked or expired: 410; unknown: 404.
//!
//! The `link.opened` event's device info is the device's, not the page's: `platform` read
//! off the `User-Agent` (`ios` for iPhone, iPad and iPod, `android`, `web` for any other
//! browser, else the user agent's first product name, lowercased, such as `curl`),
//! `language` the first tag of `Accept-Language` as sent, and `userAgent` verbatim.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode, header};
use linkbox_contracts::m2m::{LinkDetail, LinkStatus};
use linkbox_contracts::sandbox::{OpenLinkRequest, OperationRequest, OperationView};
use linkbox_contracts::timefmt;
use maud::{Markup, html};
use warp::reply::Response;

use super::{FORM_BYTES, document, field, form_pairs, html as page, see_other, segment};
use crate::app::App;
use crate::ops::Error;
use crate::ops::identity::Scope;
use crate::ops::m2m::{MAX_AMOUNT, cancel_operation, complete_operation, open_link};
use crate::store::m2m::{DataRequestView, LinkError, OperationError, Partner};
use crate::wire::query_pairs;
use crate::wire::{Request, Router};

/// The amount the "complete" form suggests: only a suggestion, since a form posted without
/// an amount is refused rather than completed with this one.
const DEFAULT_AMOUNT: &str = "100.00";

/// The refusal of the "complete" form posted without an amount, as the control API words
/// its own.
const AMOUNT_REQUIRED: &str = "The amount field is required";

/// The widget's forms, each a route of its own: an unknown action is no route (a 404).
const FORMS: [(&str, Form); 2] = [("operation", Form::Operation), ("cancel", Form::Cancel)];

/// The widget's two forms.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Complete a transfer.
    Operation,
    /// Cancel it.
    Cancel,
}

/// The widget page's routes.
pub fn routes() -> Router {
    let mut router = Router::new().get("/widget/{linkId}/{flow}", |request: Request| async move {
        show(&request)
    });
    for (action, form) in FORMS {
        let address = format!("/widget/{{linkId}}/{{flow}}/{action}");
        router = router
            .post(address.clone(), move |mut request: Request| async move {
                let body = request.body(FORM_BYTES).await;
                act(&request, form, body)
            })
            .reading(FORM_BYTES)
            // A form's address opened as a page (a reload, a bookmark, history) is the page.
            .get(address, |request: Request| async move {
                back_to_the_page(&request)
            });
    }
    router
}

/// 303 from a form's address (`…/{flow}/{action}`) to the page, relative (as the form's
/// own action is), in the language the address names.
fn back_to_the_page(request: &Request) -> Response {
    let query = query_pairs(&request.query);
    let lang = field(&query, "lang")
        .and_then(Lang::parse)
        .map(|lang| format!("?lang={}", lang.code()))
        .unwrap_or_default();
    see_other(&format!("../{}{lang}", segment(request.param("flow"))))
}

/// Which language the page speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// A language tag's primary subtag (`es` of `es-MX`), in any case: `estonian` is no
    /// `es`.
    fn parse(text: &str) -> Option<Lang> {
        let primary = text.split(|c: char| !c.is_ascii_alphabetic()).next();
        match primary.map(str::to_ascii_lowercase).as_deref() {
            Some("en") => Some(Lang::En),
            Some("es") => Some(Lang::Es),
            _ => None,
        }
    }

    fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Es => &ES,
        }
    }
}

/// Every visible string of the widget, per language.
pub struct Text {
    title: &'static str,
    link: &'static str,
    reference: &'static str,
    status: &'static str,
    opened_at: &'static str,
    expires_at: &'static str,
    theme: &'static str,
    language: &'static str,
    default_theme: &'static str,
    created: &'static str,
    opened: &'static str,
    revoked: &'static str,
    transfer: &'static str,
    amount: &'static str,
    complete: &'static str,
    cancel: &'static str,
    operation: &'static str,
    completed: &'static str,
    cancelled: &'static str,
    no_operation: &'static str,
    data_request: &'static str,
    pending: &'static str,
    fulfilled: &'static str,
    expired_request: &'static str,
    required: &'static str,
    done_completed: &'static str,
    done_cancelled: &'static str,
    gone_title: &'static str,
    gone_expired: &'static str,
    gone_revoked: &'static str,
    missing_title: &'static str,
    missing_body: &'static str,
    refused: &'static str,
    amount_required: &'static str,
    amount_invalid: &'static str,
    not_opened: &'static str,
    operation_exists: &'static str,
    no_operation_to_cancel: &'static str,
    form_too_large: &'static str,
}

static EN: Text = Text {
    title: "Send money",
    link: "Link",
    reference: "Reference",
    status: "Status",
    opened_at: "Opened at",
    expires_at: "Expires at",
    theme: "Theme",
    language: "Language",
    default_theme: "default",
    created: "created",
    opened: "opened",
    revoked: "revoked",
    transfer: "Your transfer",
    amount: "Amount (USD)",
    complete: "Complete transfer",
    cancel: "Cancel transfer",
    operation: "Operation",
    completed: "completed",
    cancelled: "cancelled",
    no_operation: "No transfer yet.",
    data_request: "We need more information",
    pending: "pending",
    fulfilled: "received",
    expired_request: "expired",
    required: "Requested",
    done_completed: "Transfer completed.",
    done_cancelled: "Transfer cancelled.",
    gone_title: "This link can no longer be used",
    gone_expired: "The link has expired. Ask for a new one.",
    gone_revoked: "The link was revoked. Ask for a new one.",
    missing_title: "Link not found",
    missing_body: "There is no link at this address.",
    refused: "That could not be done",
    amount_required: AMOUNT_REQUIRED,
    amount_invalid: "The amount field must be a number from 0.01 to 1000000000",
    not_opened: "The link has not been opened: open it first",
    operation_exists: "The link already has an operation; cancel it first",
    no_operation_to_cancel: "The link has no operation to cancel",
    form_too_large: "The form is larger than 4 KiB",
};

static ES: Text = Text {
    title: "Enviar dinero",
    link: "Enlace",
    reference: "Referencia",
    status: "Estado",
    opened_at: "Abierto el",
    expires_at: "Vence el",
    theme: "Tema",
    language: "Idioma",
    default_theme: "predeterminado",
    created: "creado",
    opened: "abierto",
    revoked: "revocado",
    transfer: "Tu envío",
    amount: "Monto (USD)",
    complete: "Completar envío",
    cancel: "Cancelar envío",
    operation: "Operación",
    completed: "completada",
    cancelled: "cancelada",
    no_operation: "Todavía no hay envío.",
    data_request: "Necesitamos más información",
    pending: "pendiente",
    fulfilled: "recibida",
    expired_request: "vencida",
    required: "Solicitado",
    done_completed: "Envío completado.",
    done_cancelled: "Envío cancelado.",
    gone_title: "Este enlace ya no se puede usar",
    gone_expired: "El enlace venció. Pide uno nuevo.",
    gone_revoked: "El enlace fue revocado. Pide uno nuevo.",
    missing_title: "Enlace no encontrado",
    missing_body: "No hay ningún enlace en esta dirección.",
    refused: "No se pudo realizar",
    amount_required: "Falta el monto.",
    amount_invalid: "El monto debe ser un número de 0.01 a 1000000000.",
    not_opened: "El enlace todavía no se abrió: ábrelo primero.",
    operation_exists: "El enlace ya tiene un envío; cancélalo primero.",
    no_operation_to_cancel: "El enlace no tiene un envío que cancelar.",
    form_too_large: "El formulario pasa de 4 KiB.",
};

/// GET /widget/{linkId}/{flow}
fn show(request: &Request) -> Response {
    let (app, headers) = (&request.app, &request.headers);
    let (link_id, flow) = (request.param("linkId"), request.param("flow"));
    let query = query_pairs(&request.query);
    let (partner, detail) = match find(app, link_id, flow) {
        Ok(found) => found,
        Err(error) => return refusal(choose_lang(&query, None, headers), None, &error),
    };
    let lang = choose_lang(&query, Some(&detail), headers);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let device = OpenLinkRequest {
        platform: user_agent.as_deref().and_then(platform),
        language: headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(first_language),
        user_agent,
    };
    // A HEAD (served by this route) answers as the GET would and opens nothing: a link
    // checker or a chat app's preview must not play the end user.
    let refused = if request.method == Method::HEAD {
        unopenable(app, &detail)
    } else {
        open_link(app, &partner, link_id, device).err()
    };
    if let Some(error) = refused {
        return refusal(lang, theme_of(&detail, &partner), &error);
    }
    let flash = match field(&query, "done") {
        Some("completed") => Some(lang.text().done_completed),
        Some("cancelled") => Some(lang.text().done_cancelled),
        _ => None,
    };
    render(app, &partner, link_id, lang, flash)
}

/// The platform a `User-Agent` names: `ios`, `android`, `web` or its first product's name.
fn platform(user_agent: &str) -> Option<String> {
    let ua = user_agent.to_ascii_lowercase();
    if ["iphone", "ipad", "ipod", "ios "]
        .iter()
        .any(|tag| ua.contains(tag))
    {
        return Some("ios".to_owned());
    }
    if ua.contains("android") {
        return Some("android".to_owned());
    }
    if ua.starts_with("mozilla/") || ua.starts_with("opera/") {
        return Some("web".to_owned());
    }
    let product = ua
        .split(['/', ' '])
        .next()
        .filter(|name| !name.is_empty())?;
    Some(product.to_owned())
}

/// The first language tag of an `Accept-Language` header (`es-MX` of `es-MX,es;q=0.9`).
fn first_language(accept: &str) -> Option<String> {
    let tag = accept.split(',').next()?.split(';').next()?.trim();
    (!tag.is_empty() && tag != "*").then(|| tag.to_owned())
}

/// POST /widget/{linkId}/{flow}/operation {amount} and POST /widget/{linkId}/{flow}/cancel
fn act(
    request: &Request,
    action: Form,
    body: Result<bytes::Bytes, crate::wire::BodyError>,
) -> Response {
    let (app, headers) = (&request.app, &request.headers);
    let (link_id, flow) = (request.param("linkId"), request.param("flow"));
    let query = query_pairs(&request.query);
    let (partner, detail) = match find(app, link_id, flow) {
        Ok(found) => found,
        Err(error) => return refusal(choose_lang(&query, None, headers), None, &error),
    };
    let lang = choose_lang(&query, Some(&detail), headers);
    let form = match form_pairs(body, FORM_BYTES) {
        Ok(form) => form,
        Err(unread) => {
            let text = lang.text();
            let reason = if unread.too_large() {
                text.form_too_large.into()
            } else {
                Cow::from(unread.message.as_str())
            };
            let theme = theme_of(&detail, &partner);
            return unread.answer(refusal_page(
                lang,
                theme,
                unread.status,
                text.refused,
                &reason,
            ));
        }
    };
    let outcome = match action {
        // A missing or empty amount is refused, as the control API refuses a body without
        // one: the form's suggested amount is the page's, not a default of the action.
        Form::Operation => match field(&form, "amount") {
            None => Err(Error::invalid(AMOUNT_REQUIRED)),
            Some(amount) => {
                let request = OperationRequest {
                    amount: amount.parse::<f64>().unwrap_or(f64::NAN),
                    ..OperationRequest::default()
                };
                complete_operation(app, &partner, link_id, request).map(|_| "completed")
            }
        },
        Form::Cancel => cancel_operation(app, &partner, link_id).map(|_| "cancelled"),
    };
    match outcome {
        // Relative to the form's address (`…/{flow}/{action}`), as the form's own action is
        // relative to the page's: behind a proxy that serves linkbox under a path
        // (`--public-url https://host/base/`), both stay under it.
        Ok(done) => see_other(&format!(
            "../{}?lang={}&done={done}",
            segment(flow),
            lang.code()
        )),
        Err(error) => refusal(lang, theme_of(&detail, &partner), &error),
    }
}

/// The link's partner and detail, when the id names a link whose flow is `flow`.
/// Why opening the link would be refused, as [`open_link`] would say: revoked, or expired.
fn unopenable(app: &App, detail: &LinkDetail) -> Option<Error> {
    let item = &detail.item;
    if item.status == LinkStatus::Revoked {
        return Some(Error::Link(LinkError::Revoked));
    }
    let now = app.clock.now();
    timefmt::parse(&item.expires_at)
        .is_some_and(|expires| expires <= now)
        .then_some(Error::Link(LinkError::Expired))
}

fn find(app: &App, link_id: &str, flow: &str) -> Result<(Arc<Partner>, LinkDetail), Error> {
    let not_found = || Error::Link(LinkError::LinkNotFound);
    let partner = Scope::Admin
        .link_owner(app, link_id)
        .ok_or_else(not_found)?;
    let detail = partner.link(link_id).map_err(|_| not_found())?;
    if detail.flow != flow {
        return Err(not_found());
    }
    Ok((partner, detail))
}

fn choose_lang(query: &[(String, String)], link: Option<&LinkDetail>, headers: &HeaderMap) -> Lang {
    field(query, "lang")
        .and_then(Lang::parse)
        .or_else(|| {
            link.and_then(|link| link.language).and_then(|language| {
                serde_json::to_value(language)
                    .ok()
                    .and_then(|value| value.as_str().and_then(Lang::parse))
            })
        })
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|value| value.to_str().ok())
                .and_then(preferred_lang)
        })
        .unwrap_or(Lang::En)
}

/// The page language an `Accept-Language` header prefers (RFC 9110, 12.5.4): of its tags
/// whose primary subtag is `en` or `es`, the one of the highest weight, the first of
/// equals; `q=0` is "not acceptable", and an item whose weight does not read is skipped. So
/// `de,es` and `ca,es;q=0.8,en;q=0.3` are Spanish, and `en;q=0.1,es;q=0.9` too.
fn preferred_lang(accept: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let weight = match parts.find_map(|part| {
            let part = part.trim();
            part.strip_prefix("q=").or_else(|| part.strip_prefix("Q="))
        }) {
            None => 1000,
            Some(q) => match q.trim().parse::<f32>() {
                Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u16,
                _ => continue,
            },
        };
        if weight == 0 {
            continue;
        }
        let primary = tag.split('-').next().unwrap_or_default();
        let lang = if primary.eq_ignore_ascii_case("en") {
            Lang::En
        } else if primary.eq_ignore_ascii_case("es") {
            Lang::Es
        } else {
            continue;
        };
        if best.is_none_or(|(heaviest, _)| weight > heaviest) {
            best = Some((weight, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The page of a live link.
fn render(
    app: &App,
    partner: &Arc<Partner>,
    link_id: &str,
    lang: Lang,
    flash: Option<&str>,
) -> Response {
    let text = lang.text();
    let Ok(detail) = partner.link(link_id) else {
        return refusal(lang, None, &LinkError::LinkNotFound.into());
    };
    let operation = partner.operation(link_id);
    let request = partner
        .data_requests(app.clock.now())
        .into_iter()
        .find(|request| request.link_id == link_id);
    let theme = theme_of(&detail, partner).unwrap_or(text.default_theme);
    let status = match detail.item.status {
        LinkStatus::Created => text.created,
        LinkStatus::Opened => text.opened,
        LinkStatus::Revoked => text.revoked,
    };
    // Relative to the page's address (`…/widget/{linkId}/{flow}`), so a page served under a
    // path prefix posts under it too.
    let action = |what: &str| format!("./{}/{what}?lang={}", segment(&detail.flow), lang.code());
    let live_operation = operation
        .as_ref()
        .is_some_and(|operation| operation.cancelled_at.is_none());
    let body = html! {
        main class={ "theme-" (theme_class(theme)) } {
            @if let Some(flash) = flash { p.flash role="status" { (flash) } }
            h1 { (text.title) }
            dl {
                dt { (text.link) } dd { code { (detail.item.link_id) } }
                dt { (text.reference) } dd { (detail.item.reference_id) }
                dt { (text.status) } dd #status { (status) }
                @if let Some(opened_at) = &detail.item.opened_at {
                    dt { (text.opened_at) } dd { (opened_at) }
                }
                dt { (text.expires_at) } dd { (detail.item.expires_at) }
                dt { (text.theme) } dd #theme { (theme) }
                dt { (text.language) } dd { (lang.code()) }
            }
            @if let Some(request) = &request { (data_request(text, request)) }
            h2 { (text.transfer) }
            (operation_state(text, operation.as_ref()))
            @if live_operation {
                form method="post" action=(action("cancel")) {
                    button.secondary #cancel type="submit" { (text.cancel) }
                }
            } @else {
                form method="post" action=(action("operation")) {
                    label { (text.amount) " "
                        input name="amount" type="number" min="0.01" step="0.01"
                            max=(MAX_AMOUNT) required value=(DEFAULT_AMOUNT);
                    }
                    " "
                    button #complete type="submit" { (text.complete) }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        document(lang.code(), text.title, theme_style(theme), body),
    )
}

fn data_request(text: &Text, request: &DataRequestView) -> Markup {
    let state = match request.status {
        linkbox_contracts::m2m::DataRequestStatus::Pending => text.pending,
        linkbox_contracts::m2m::DataRequestStatus::Fulfilled => text.fulfilled,
        linkbox_contracts::m2m::DataRequestStatus::Expired => text.expired_request,
    };
    html! {
        section #data-request {
            h2 { (text.data_request) }
            dl {
                dt { (text.status) } dd #data-request-status { (state) }
                dt { (text.required) } dd {
                    @for field in &request.required_fields { code { (field) } " " }
                }
            }
        }
    }
}

fn operation_state(text: &Text, operation: Option<&OperationView>) -> Markup {
    match operation {
        None => html! { p #operation { (text.no_operation) } },
        Some(operation) => html! {
            p #operation {
                (text.operation) " " code { (operation.operation_id) } ": "
                @if operation.cancelled_at.is_some() { (text.cancelled) } @else { (text.completed) }
                " — " (format!("{:.2}", operation.amount.send)) " " (operation.amount.send_currency)
            }
        },
    }
}

/// The link's theme, else its partner's.
fn theme_of<'a>(detail: &'a LinkDetail, partner: &'a Partner) -> Option<&'a str> {
    detail.theme.as_deref().or(partner.theme.as_deref())
}

/// A 404 or 410 page saying why, or the refusal of a button, in the page's language and,
/// once the link is known, its theme.
fn refusal(lang: Lang, theme: Option<&str>, error: &Error) -> Response {
    let text = lang.text();
    let (status, title, body): (StatusCode, &str, Cow<'_, str>) = match error {
        Error::Link(LinkError::LinkNotFound) | Error::Operation(OperationError::LinkNotFound) => (
            StatusCode::NOT_FOUND,
            text.missing_title,
            text.missing_body.into(),
        ),
        Error::Link(LinkError::Expired) | Error::Operation(OperationError::Expired) => {
            (StatusCode::GONE, text.gone_title, text.gone_expired.into())
        }
        Error::Link(LinkError::Revoked | LinkError::NotRevocable)
        | Error::Operation(OperationError::Revoked) => {
            (StatusCode::GONE, text.gone_title, text.gone_revoked.into())
        }
        // The form's one field is the amount: missing, or not one the operations API takes.
        Error::Invalid(message) => (
            StatusCode::BAD_REQUEST,
            text.refused,
            if message == AMOUNT_REQUIRED {
                text.amount_required
            } else {
                text.amount_invalid
            }
            .into(),
        ),
        Error::Operation(refused) => {
            let reason = match refused {
                OperationError::NotOpened => text.not_opened,
                OperationError::OperationExists => text.operation_exists,
                _ => text.no_operation_to_cancel,
            };
            (StatusCode::CONFLICT, text.refused, reason.into())
        }
        // What the page has no words of its own for (a sandbox limit) is said as the API
        // says it.
        _ => (StatusCode::CONFLICT, text.refused, error.to_string().into()),
    };
    refusal_page(lang, theme, status, title, &body)
}

/// A page saying why not: `title`, then `reason`, in the page's language and theme.
fn refusal_page(
    lang: Lang,
    theme: Option<&str>,
    status: StatusCode,
    title: &str,
    reason: &str,
) -> Response {
    let theme = theme.unwrap_or(lang.text().default_theme);
    page(
        status,
        document(
            lang.code(),
            title,
            theme_style(theme),
            html! { main class={ "theme-" (theme_class(theme)) } { h1 { (title) } p.error #reason { (reason) } } },
        ),
    )
}

/// A CSS class from a theme name: letters, digits and dashes only.
fn theme_class(theme: &str) -> String {
    theme
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The partner's theme: `dark` is dark, anything else the light default.
fn theme_style(theme: &str) -> &'static str {
    if theme.eq_ignore_ascii_case("dark") {
        "body{background:#10151c}main{background:#1c2430;color:#e8edf3}\
         button.secondary{background:#1c2430;color:#8cc4ff}"
    } else {
        "body{background:#eef2f6}"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English page says a refusal as the API does: its words are the API's own.
    #[test]
    fn english_refusals_are_the_apis_words() {
        assert_eq!(
            EN.amount_invalid,
            format!("The amount field must be a number from 0.01 to {MAX_AMOUNT:.0}")
        );
        assert_eq!(EN.not_opened, OperationError::NotOpened.to_string());
        assert_eq!(
            EN.operation_exists,
            OperationError::OperationExists.to_string()
        );
        assert_eq!(
            EN.no_operation_to_cancel,
            OperationError::NoOperation.to_string()
        );
    }

    #[test]
    fn languages_parse_from_codes_and_accept_language() {
        assert_eq!(Lang::parse("es"), Some(Lang::Es));
        assert_eq!(Lang::parse("es-MX,es;q=0.9"), Some(Lang::Es));
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse("e"), None);
        assert_eq!(Lang::parse("es_MX"), Some(Lang::Es));
        for word in ["estonian", "esperanto", "english", "enx"] {
            assert_eq!(Lang::parse(word), None, "{word}");
        }
    }

    #[test]
    fn the_platform_and_language_are_the_devices() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let pixel = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
        let desktop = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        assert_eq!(platform(iphone).as_deref(), Some("ios"));
        assert_eq!(platform(pixel).as_deref(), Some("android"));
        assert_eq!(platform(desktop).as_deref(), Some("web"));
        assert_eq!(platform("curl/8.5.0").as_deref(), Some("curl"));
        assert_eq!(platform(""), None);
        assert_eq!(
            first_language("es-MX,es;q=0.9,en;q=0.8").as_deref(),
            Some("es-MX")
        );
        assert_eq!(first_language("fr;q=0.7").as_deref(), Some("fr"));
        assert_eq!(first_language("*"), None);
    }

    #[test]
    fn the_page_language_is_the_best_weighted_of_english_and_spanish() {
        for (accept, expected) in [
            ("de,es", Some(Lang::Es)),
            ("ca,es;q=0.8,en;q=0.3", Some(Lang::Es)),
            ("en;q=0.1,es;q=0.9", Some(Lang::Es)),
            ("es-MX", Some(Lang::Es)),
            ("en-GB,es;q=0.9", Some(Lang::En)),
            ("es;q=0.5,en;q=0.5", Some(Lang::Es)),
            ("es;q=0,en;q=0.2", Some(Lang::En)),
            ("es;q=oops,en;q=0.2", Some(Lang::En)),
            ("fr,de", None),
            ("estonian", None),
            ("*", None),
        ] {
            assert_eq!(preferred_lang(accept), expected, "{accept}");
        }
    }

    #[test]
    fn theme_classes_keep_only_safe_characters() {
        assert_eq!(theme_class("Dark Mode\"><"), "dark-mode---");
    }
}
