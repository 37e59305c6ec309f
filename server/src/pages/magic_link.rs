//! The Leaf magic-link page, `GET /magic-link/{id}`: what a link's `link` points at. It is
//! reached without a token, so the link is found across accounts by its id. Styled by the
//! link's `settings` (background colour, company name and logo, header image, the Leaf
//! user's name when `showLeafUserName`).
//!
//! Each GET is one access (`usageCount` + 1, `lastAccessedAt`), through the same function as
//! `POST /_sandbox/leaf/magic-links/{id}/access`; an expired or used-up link is a 410 page
//! saying which, and so is a link whose Leaf user was deleted (the API still lists it; no
//! one can use it). A HEAD answers as the GET would and counts nothing. The page's forms — connect a provider, upload a `.zip` — are not accesses:
//! the visit that showed them was already counted, so they answer with the page re-rendered
//! (no redirect to the GET, which would count again) and are refused only once the link has
//! expired. Connecting goes through the control API's `connect`. A link with
//! `settings.disconnectEnabled` also offers, for each connected provider, a "Disconnect"
//! form (`POST /magic-link/{id}/disconnect {provider}`) that clears that provider's
//! credentials on the Leaf user. Uploads are kept as
//! metadata (name, size, time), never parsed.
//!
//! An upload is checked against its link before its body is read: unknown (404), expired
//! or used up (410; a used-up link takes uploads for [`UPLOAD_GRACE`] after its last
//! visit), not a file-upload link or already holding [`MAX_UPLOADS_PER_LINK`] files (400).
//! Then the file: at most [`MAX_UPLOAD_BYTES`] (413), a name of at most
//! [`MAX_FILE_NAME_BYTES`] (400), a `.zip` (415). A browser (`Accept: text/html`) gets the
//! page back with the reason; any other client gets Leaf's problem body.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, Method, StatusCode, header};
use linkbox_contracts::leaf::{self as wire, Provider, Widget};
use linkbox_contracts::timefmt;
use maud::{Markup, html};
use warp::reply::Response;

use super::{FORM_BYTES, document, field, form_pairs, html as page, segment};
use crate::app::App;
use crate::ops::Error;
use crate::ops::leaf::{access, allowed_providers, connect, disconnect, peek};
use crate::store::leaf::{Account, LeafError, Upload};
use crate::wire::BodyError;
use crate::wire::{Request, Router};

/// Why a link whose Leaf user was deleted refuses its page, its forms and its uploads.
const USER_DELETED: &str =
    "The Leaf user this link was made for has been deleted. Ask for a new link.";

/// The largest file a file-upload link takes.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// Room for the multipart framing around the file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The hosted magic-link page's routes.
pub fn routes() -> Router {
    Router::new()
        .get("/magic-link/{id}", |request: Request| async move {
            let head = request.method == Method::HEAD;
            show(request.param("id"), &request.app, head)
        })
        // A form's address opened as a page (a reload, a bookmark, history) is the page: a
        // visit, counted as any other.
        .get("/magic-link/{id}/connect", |request: Request| async move {
            back_to_the_page(&request)
        })
        .get(
            "/magic-link/{id}/disconnect",
            |request: Request| async move { back_to_the_page(&request) },
        )
        .get("/magic-link/{id}/upload", |request: Request| async move {
            back_to_the_page(&request)
        })
        .post(
            "/magic-link/{id}/connect",
            |mut request: Request| async move {
                let body = request.body(FORM_BYTES).await;
                provider_form(
                    request.param("id"),
                    &request.app,
                    body,
                    ProviderAction::Connect,
                )
            },
        )
        .reading(FORM_BYTES)
        .post(
            "/magic-link/{id}/disconnect",
            |mut request: Request| async move {
                let body = request.body(FORM_BYTES).await;
                provider_form(
                    request.param("id"),
                    &request.app,
                    body,
                    ProviderAction::Disconnect,
                )
            },
        )
        .reading(FORM_BYTES)
        .post(
            "/magic-link/{id}/upload",
            |mut request: Request| async move {
                let id = request.param("id").to_owned();
                let answer = Answer::for_request(&request);
                // The link is checked before a byte of the body is read: a refused upload
                // is answered at once, and its body is not buffered.
                let account = match upload_target(&id, &request.app) {
                    Ok(account) => account,
                    Err((account, refusal)) => {
                        return answer.refuse(&request.app, account.as_ref(), &id, refusal);
                    }
                };
                // Held as the link's account's: each account's uploads have their own share
                // of the bodies held at once, not every page's one anonymous quarter.
                let whose = Some(account.body_share.clone());
                let body = request
                    .body_of(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD, whose)
                    .await;
                upload_form(&id, &request.app, &request.headers, &account, body, answer).await
            },
        )
        .reading(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD)
}

/// GET /magic-link/{id}; a HEAD (served by this route) answers as the GET would, without
/// counting the visit.
fn show(id: &str, app: &App, head: bool) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    let visit = if head { peek } else { access };
    match visit(app, &account, id) {
        Ok(link) => render(app, &account, &link, StatusCode::OK, None),
        Err(error) => refusal(&error),
    }
}

/// What the provider form of the page does: connect or disconnect the named provider.
#[derive(Debug, Clone, Copy)]
enum ProviderAction {
    Connect,
    Disconnect,
}

/// POST /magic-link/{id}/connect or /disconnect {provider}: the action, then the page again
/// with what happened, or the refusal.
fn provider_form(
    id: &str,
    app: &App,
    body: Result<Bytes, BodyError>,
    action: ProviderAction,
) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    if let Err(error) = account.check_user_kept(id) {
        return refusal(&error.into());
    }
    let form = match form_pairs(body, FORM_BYTES) {
        Ok(form) => form,
        Err(unread) => {
            return unread.answer(rerender(
                app,
                &account,
                id,
                unread.status,
                Err(unread.message.clone()),
            ));
        }
    };
    let provider = field(&form, "provider").unwrap_or_default();
    let (outcome, done) = match action {
        ProviderAction::Connect => (connect(app, &account, id, provider), "Connected to"),
        ProviderAction::Disconnect => {
            (disconnect(app, &account, id, provider), "Disconnected from")
        }
    };
    match outcome {
        Ok(_) => rerender(
            app,
            &account,
            id,
            StatusCode::OK,
            Ok(format!("{done} {provider}.")),
        ),
        Err(error @ Error::Invalid(_)) => rerender(
            app,
            &account,
            id,
            StatusCode::BAD_REQUEST,
            Err(error.to_string()),
        ),
        Err(error) => refusal(&error),
    }
}

/// How long after its last visit a used-up link still takes uploads: the visit that used
/// it up showed the form, and its upload belongs to that visit. [design]
pub const UPLOAD_GRACE: time::Duration = time::Duration::minutes(30);
/// Files one link takes at most. [design]
pub const MAX_UPLOADS_PER_LINK: usize = 20;
/// Bytes of a file name at most. [design]
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Why an upload was refused: a status, a title and a detail naming the rule.
struct UploadRefusal {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl UploadRefusal {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        UploadRefusal {
            status,
            title,
            detail: detail.into(),
        }
    }

    fn of(error: LeafError) -> Self {
        match error {
            LeafError::LinkExpired => {
                Self::new(StatusCode::GONE, "Gone", "The magic link has expired")
            }
            LeafError::LinkUsedUp => Self::new(
                StatusCode::GONE,
                "Gone",
                format!(
                    "The magic link has been used up (maxUsage visits) and its last visit was more than {} minutes ago",
                    UPLOAD_GRACE.whole_minutes()
                ),
            ),
            LeafError::StorageFull(full) => {
                Self::new(StatusCode::FORBIDDEN, "Forbidden", full.to_string())
            }
            LeafError::UserDeleted | LeafError::UserNotFound => {
                Self::new(StatusCode::GONE, "Gone", USER_DELETED)
            }
            _ => Self::new(StatusCode::NOT_FOUND, "Not Found", "Magic link not found"),
        }
    }
}

/// How refusals of an upload are answered: the page again for a browser (`Accept` names
/// `text/html`), else Leaf's problem body.
struct Answer {
    html: bool,
    path: String,
}

impl Answer {
    fn for_request(request: &Request) -> Answer {
        Answer {
            html: super::takes_html(&request.headers),
            path: request.path.clone(),
        }
    }

    fn refuse(
        &self,
        app: &App,
        account: Option<&Arc<Account>>,
        id: &str,
        refusal: UploadRefusal,
    ) -> Response {
        let busy = refusal.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = self.refusal_response(app, account, id, refusal);
        if busy {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                http::HeaderValue::from(crate::wire::BUSY_RETRY_AFTER_SECS),
            );
        }
        response
    }

    fn refusal_response(
        &self,
        app: &App,
        account: Option<&Arc<Account>>,
        id: &str,
        refusal: UploadRefusal,
    ) -> Response {
        if !self.html {
            let problem = wire::Problem {
                kind: wire::PROBLEM_WITH_MESSAGE.to_owned(),
                title: refusal.title.to_owned(),
                status: refusal.status.as_u16(),
                detail: refusal.detail,
                path: self.path.clone(),
                message: format!("error.http.{}", refusal.status.as_u16()),
                field_errors: None,
            };
            return crate::wire::json_with(refusal.status, wire::PROBLEM_CONTENT_TYPE, &problem);
        }
        match (refusal.status, account) {
            (StatusCode::NOT_FOUND | StatusCode::GONE, _) | (_, None) => {
                refusal_page(refusal.status, &refusal.detail)
            }
            (status, Some(account)) => rerender(app, account, id, status, Err(refusal.detail)),
        }
    }
}

/// The account of file-upload link `id`, if it takes a file now: it exists, has not
/// expired, is not used up (or was last visited at most [`UPLOAD_GRACE`] ago), is a
/// file-upload link, and holds fewer than [`MAX_UPLOADS_PER_LINK`] files. A refusal of a
/// link that is still there comes with its account, so a browser gets the page again.
fn upload_target(
    id: &str,
    app: &App,
) -> Result<Arc<Account>, (Option<Arc<Account>>, UploadRefusal)> {
    let gone = |error| (None, UploadRefusal::of(error));
    let account = app
        .store
        .leaf()
        .owner_of_link(id)
        .ok_or(gone(LeafError::LinkNotFound))?;
    let link = account.find_magic_link(id).map_err(gone)?;
    account.check_user_kept(id).map_err(gone)?;
    let now = app.clock.now();
    if is_expired(app, &link) {
        return Err(gone(LeafError::LinkExpired));
    }
    let last_visit = link.last_accessed_at.as_deref().and_then(timefmt::parse);
    let in_grace = last_visit.is_some_and(|at| now <= at + UPLOAD_GRACE);
    if link.usage_count >= link.max_usage && !in_grace {
        return Err(gone(LeafError::LinkUsedUp));
    }
    if link.widget != Widget::FileUpload {
        let refusal = UploadRefusal::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "This link does not take files",
        );
        return Err((Some(account), refusal));
    }
    if account.uploads(id).len() >= MAX_UPLOADS_PER_LINK {
        return Err((Some(account), too_many_uploads()));
    }
    Ok(account)
}

fn too_many_uploads() -> UploadRefusal {
    UploadRefusal::new(
        StatusCode::BAD_REQUEST,
        "Bad Request",
        format!("This link already holds {MAX_UPLOADS_PER_LINK} files, the most one link takes"),
    )
}

/// POST /magic-link/{id}/upload (multipart, one `file` part), once [`upload_target`] has
/// let it in.
async fn upload_form(
    id: &str,
    app: &App,
    headers: &HeaderMap,
    account: &Arc<Account>,
    body: Result<Bytes, BodyError>,
    answer: Answer,
) -> Response {
    let outcome = match body {
        Err(BodyError::TooLarge) => Err(UploadRefusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            too_large(),
        )),
        Err(BodyError::PastShare(most)) => Err(UploadRefusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            crate::wire::past_share_message(most),
        )),
        Err(BodyError::Unreadable) => Err(UploadRefusal::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "The upload could not be read",
        )),
        Err(BodyError::Late) => Err(UploadRefusal::new(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            crate::wire::BODY_LATE,
        )),
        Err(BodyError::Busy(refused)) => Err(UploadRefusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            crate::wire::busy_message(refused),
        )),
        Ok(body) => read_zip(headers, body).await,
    };
    let (file_name, size) = match outcome {
        Ok(file) => file,
        Err(refusal) => return answer.refuse(app, Some(account), id, refusal),
    };
    let upload = Upload {
        file_name: file_name.clone(),
        size,
        uploaded_at: app.clock.now(),
    };
    match account.record_upload(id, upload, MAX_UPLOADS_PER_LINK) {
        Ok(true) => rerender(
            app,
            account,
            id,
            StatusCode::OK,
            Ok(format!("Received {file_name} ({size} bytes).")),
        ),
        Ok(false) => answer.refuse(app, Some(account), id, too_many_uploads()),
        Err(error) => answer.refuse(app, Some(account), id, UploadRefusal::of(error)),
    }
}

fn too_large() -> String {
    format!(
        "The file is larger than {} MiB, the most one upload takes",
        MAX_UPLOAD_BYTES / (1024 * 1024)
    )
}

/// The name and size of the one `.zip` file in a multipart body, or why it was refused (a
/// second `file` part too: it would be dropped unseen).
async fn read_zip(headers: &HeaderMap, body: Bytes) -> Result<(String, u64), UploadRefusal> {
    let bad = |message: &str| UploadRefusal::new(StatusCode::BAD_REQUEST, "Bad Request", message);
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| bad("Send the file as multipart/form-data"))?;
    let chunks = stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(chunks, boundary);
    let mut file = None;
    while let Some(part) = multipart
        .next_field()
        .await
        .map_err(|_| bad("The upload is not valid multipart/form-data"))?
    {
        if part.name() != Some("file") {
            continue;
        }
        if file.is_some() {
            return Err(bad(
                "Upload one file at a time: this form takes a single .zip file",
            ));
        }
        let file_name = part.file_name().unwrap_or_default().to_owned();
        if file_name.len() > MAX_FILE_NAME_BYTES {
            return Err(bad(&format!(
                "The file name is {} bytes long; at most {MAX_FILE_NAME_BYTES} are accepted",
                file_name.len()
            )));
        }
        let bytes = part
            .bytes()
            .await
            .map_err(|_| bad("The upload is not valid multipart/form-data"))?;
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(UploadRefusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                too_large(),
            ));
        }
        let zip_name = file_name.to_ascii_lowercase().ends_with(".zip");
        // Local file header, or the end record of an empty archive.
        let zip_bytes = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06");
        if !zip_name || !zip_bytes {
            return Err(UploadRefusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                "Only .zip files are accepted",
            ));
        }
        file = Some((file_name, bytes.len() as u64));
    }
    file.ok_or_else(|| bad("Choose a .zip file to upload"))
}

fn is_expired(app: &App, link: &wire::MagicLink) -> bool {
    timefmt::parse(&link.expires_at).is_some_and(|expires_at| expires_at <= app.clock.now())
}

/// 303 from a form's address (`…/{id}/{form}`) to the page, relative (as the form's own
/// action is).
fn back_to_the_page(request: &Request) -> Response {
    super::see_other(&format!("../{}", segment(request.param("id"))))
}

/// The page again after a form, without counting an access.
fn rerender(
    app: &App,
    account: &Arc<Account>,
    id: &str,
    status: StatusCode,
    message: Result<String, String>,
) -> Response {
    match account.find_magic_link(id) {
        Ok(link) => render(app, account, &link, status, Some(message)),
        Err(error) => refusal(&error.into()),
    }
}

/// The page of `link`; `message`, a form's outcome, is there exactly when the page answers
/// that form's POST (at the form's own address).
fn render(
    app: &App,
    account: &Arc<Account>,
    link: &wire::MagicLink,
    status: StatusCode,
    message: Option<Result<String, String>>,
) -> Response {
    let settings = &link.settings;
    let user = account.user(&link.leaf_user_id).ok();
    let connected = |provider: Provider| {
        user.as_ref()
            .and_then(|user| serde_json::to_value(user).ok())
            .is_some_and(|user| !user[provider.credentials_field()].is_null())
    };
    let company = settings.company_name.as_deref().unwrap_or("Leaf");
    // The forms' address relative to this page's, so a page served under a path prefix
    // (`--public-url https://host/base/`) posts under it too: the GET is at
    // `…/magic-link/{id}`, a form's answer at `…/magic-link/{id}/{form}`.
    let base = match message {
        None => format!("./{}", segment(&link.id)),
        Some(_) => ".".to_owned(),
    };
    let body = html! {
        main {
            @if let Some(image) = &settings.header_image {
                img #header-image src=(image) alt="" style="width:100%;border-radius:8px";
            }
            header style="display:flex;align-items:center;gap:.8rem" {
                @if let Some(logo) = &settings.company_logo {
                    img #company-logo src=(logo) alt=(company) style="height:48px";
                }
                h1 #company-name { (company) }
            }
            @match &message {
                Some(Ok(text)) => p.flash role="status" { (text) },
                Some(Err(text)) => p.error role="alert" { (text) },
                None => {},
            }
            @if settings.show_leaf_user_name {
                @if let Some(user) = &user { p #leaf-user-name { "Hello, " (user.name) } }
            }
            p #usage { "Visit " (link.usage_count) " of " (link.max_usage) }
            @match link.widget {
                Widget::FileUpload => (upload_section(app, account, link, &base)),
                _ => {
                    p { "Connect your farm data provider." }
                    @for provider in allowed_providers(link) {
                        form method="post" action={ (base) "/connect" } {
                            input type="hidden" name="provider" value=(provider.as_str());
                            @if connected(provider) {
                                button.secondary type="submit" data-provider=(provider.as_str()) {
                                    "Connected: " (provider.as_str())
                                }
                            } @else {
                                button type="submit" data-provider=(provider.as_str()) {
                                    "Connect " (provider.as_str())
                                }
                            }
                        }
                        @if settings.disconnect_enabled && connected(provider) {
                            form method="post" action={ (base) "/disconnect" } {
                                input type="hidden" name="provider" value=(provider.as_str());
                                button.secondary type="submit" data-disconnect=(provider.as_str()) {
                                    "Disconnect " (provider.as_str())
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let style = format!(
        "body{{background:{}}}",
        background(&settings.background_color)
    );
    page(status, document("en", company, &style, body))
}

fn upload_section(
    _app: &App,
    account: &Arc<Account>,
    link: &wire::MagicLink,
    base: &str,
) -> Markup {
    let uploads = account.uploads(&link.id);
    html! {
        form method="post" action={ (base) "/upload" } enctype="multipart/form-data" {
            label { "Upload your files (.zip, up to 25 MiB) "
                input type="file" name="file" accept=".zip,application/zip";
            }
            " "
            button type="submit" { "Upload" }
        }
        @if !uploads.is_empty() {
            ul #uploads {
                @for upload in &uploads {
                    li { (upload.file_name) " — " (upload.size) " bytes — " (timefmt::millis(upload.uploaded_at)) }
                }
            }
        }
    }
}

/// The link's background colour when it is a hex colour (the API validates it; the check
/// is repeated because it lands inside CSS), else the default.
fn background(color: &str) -> &str {
    let hex = color.strip_prefix('#').unwrap_or_default();
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        color
    } else {
        wire::DEFAULT_BACKGROUND_COLOR
    }
}

/// A page with `status` saying only `detail`.
fn refusal_page(status: StatusCode, detail: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Link not found",
        StatusCode::GONE if detail == USER_DELETED => "This link's user no longer exists",
        StatusCode::GONE => "This link can no longer be used",
        _ => "The upload was refused",
    };
    page(
        status,
        document(
            "en",
            title,
            "",
            html! { main { h1 { (title) } p.error #reason { (detail) } } },
        ),
    )
}

/// A 404 or 410 page saying why.
fn refusal(error: &Error) -> Response {
    // A connect past a storage budget: the page says which and how to make room.
    if let Error::Leaf(LeafError::StorageFull(full)) = error {
        let title = "This link's account has no room left";
        return page(
            StatusCode::FORBIDDEN,
            document(
                "en",
                title,
                "",
                html! { main { h1 { (title) } p.error #reason { (full.to_string()) } } },
            ),
        );
    }
    let (status, title, detail) = match error {
        Error::Leaf(LeafError::LinkExpired) => (
            StatusCode::GONE,
            "This link has expired",
            "Ask for a new link: this one is past its expiry time.",
        ),
        Error::Leaf(LeafError::LinkUsedUp) => (
            StatusCode::GONE,
            "This link has been used up",
            "It has been opened as many times as it allows (maxUsage). Ask for a new link.",
        ),
        Error::Leaf(LeafError::UserDeleted | LeafError::UserNotFound) => (
            StatusCode::GONE,
            "This link's user no longer exists",
            USER_DELETED,
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "Link not found",
            "There is no magic link at this address.",
        ),
    };
    page(
        status,
        document(
            "en",
            title,
            "",
            html! { main { h1 { (title) } p.error #reason { (detail) } } },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_colours_reach_the_css() {
        assert_eq!(background("#abc"), "#abc");
        assert_eq!(background("#A0B1C2"), "#A0B1C2");
        assert_eq!(background("red;}body{x"), wire::DEFAULT_BACKGROUND_COLOR);
        assert_eq!(background("#abcd"), wire::DEFAULT_BACKGROUND_COLOR);
    }
}
