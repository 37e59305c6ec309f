//! The Leaf magic-link page, `GET /magic-link/{id}`: what a link's `link` points at. It is
//! reached without a token, so the link is found across accounts by its id. Styled by the
//! link's `settings` (background colour, company name and logo, header image, the Leaf
//! user's name when `showLeafUserName`).
//!
//! Each GET is one access (`usageCount` + 1, `lastAccessedAt`), through the same function as
//! `POST /_sandbox/leaf/magic-links/{id}/access`; an expired or used-up link is a 410 page
//! saying which. The page's forms — connect a provider, upload a `.zip` — are not accesses:
//! the visit that showed them was already counted, so they answer with the page re-rendered
//! (no redirect to the GET, which would count again) and are refused only once the link has
//! expired. Connecting goes through the control API's `connect`. A link with
//! `settings.disconnectEnabled` also offers, for each connected provider, a "Disconnect"
//! form (`POST /magic-link/{id}/disconnect {provider}`) that clears that provider's
//! credentials on the Leaf user. Uploads are kept as
//! metadata (name, size, time), never parsed.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, StatusCode, header};
use linkbox_contracts::leaf::{self as wire, Provider, Widget};
use linkbox_contracts::timefmt;
use maud::{Markup, html};
use warp::reply::Response;

use super::{document, field, form_pairs, html as page, segment};
use crate::app::App;
use crate::ops::Error;
use crate::ops::leaf::{access, allowed_providers, connect, disconnect};
use crate::store::leaf::{Account, LeafError, Upload};
use crate::wire::BodyError;
use crate::wire::{Request, Router};

/// The largest file a file-upload link takes.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// Room for the multipart framing around the file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The hosted magic-link page's routes.
pub fn routes() -> Router {
    Router::new()
        .get("/magic-link/{id}", |request: Request| async move {
            show(request.param("id"), &request.app)
        })
        .post(
            "/magic-link/{id}/connect",
            |mut request: Request| async move {
                let body = request.body(4 * 1024).await;
                connect_form(request.param("id"), &request.app, body)
            },
        )
        .post(
            "/magic-link/{id}/disconnect",
            |mut request: Request| async move {
                let body = request.body(4 * 1024).await;
                disconnect_form(request.param("id"), &request.app, body)
            },
        )
        .post(
            "/magic-link/{id}/upload",
            |mut request: Request| async move {
                let body = request.body(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD).await;
                upload_form(request.param("id"), &request.app, &request.headers, body).await
            },
        )
}

/// GET /magic-link/{id}
fn show(id: &str, app: &App) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    match access(app, &account, id) {
        Ok(link) => render(app, &account, &link, StatusCode::OK, None),
        Err(error) => refusal(&error),
    }
}

/// POST /magic-link/{id}/connect {provider}
fn connect_form(id: &str, app: &App, body: Result<Bytes, BodyError>) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    let form = form_pairs(body);
    let provider = field(&form, "provider").unwrap_or_default();
    match connect(app, &account, id, provider) {
        Ok(_) => rerender(
            app,
            &account,
            id,
            StatusCode::OK,
            Ok(format!("Connected to {provider}.")),
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

/// POST /magic-link/{id}/disconnect {provider}
fn disconnect_form(id: &str, app: &App, body: Result<Bytes, BodyError>) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    let form = form_pairs(body);
    let provider = field(&form, "provider").unwrap_or_default();
    match disconnect(app, &account, id, provider) {
        Ok(_) => rerender(
            app,
            &account,
            id,
            StatusCode::OK,
            Ok(format!("Disconnected from {provider}.")),
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

/// POST /magic-link/{id}/upload (multipart, one `file` part)
async fn upload_form(
    id: &str,
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Response {
    let Some(account) = app.store.leaf().owner_of_link(id) else {
        return refusal(&LeafError::LinkNotFound.into());
    };
    let link = match account.find_magic_link(id) {
        Ok(link) => link,
        Err(error) => return refusal(&error.into()),
    };
    if is_expired(app, &link) {
        return refusal(&LeafError::LinkExpired.into());
    }
    if link.widget != Widget::FileUpload {
        let message = "This link does not take files".to_owned();
        return rerender(app, &account, id, StatusCode::BAD_REQUEST, Err(message));
    }
    let outcome = match body {
        Err(BodyError::TooLarge) => Err((StatusCode::PAYLOAD_TOO_LARGE, too_large())),
        Err(BodyError::Unreadable) => Err((
            StatusCode::BAD_REQUEST,
            "The upload could not be read".into(),
        )),
        Ok(body) => read_zip(headers, body).await,
    };
    match outcome {
        Ok((file_name, size)) => {
            let upload = Upload {
                file_name: file_name.clone(),
                size,
                uploaded_at: app.clock.now(),
            };
            if let Err(error) = account.record_upload(id, upload) {
                return refusal(&error.into());
            }
            rerender(
                app,
                &account,
                id,
                StatusCode::OK,
                Ok(format!("Received {file_name} ({size} bytes).")),
            )
        }
        Err((status, message)) => rerender(app, &account, id, status, Err(message)),
    }
}

fn too_large() -> String {
    format!(
        "The file is larger than {} MiB",
        MAX_UPLOAD_BYTES / (1024 * 1024)
    )
}

/// The name and size of the one `.zip` file in a multipart body, or why it was refused.
async fn read_zip(headers: &HeaderMap, body: Bytes) -> Result<(String, u64), (StatusCode, String)> {
    let bad = |message: &str| (StatusCode::BAD_REQUEST, message.to_owned());
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| bad("Send the file as multipart/form-data"))?;
    let chunks = stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(chunks, boundary);
    while let Some(part) = multipart
        .next_field()
        .await
        .map_err(|_| bad("The upload is not valid multipart/form-data"))?
    {
        if part.name() != Some("file") {
            continue;
        }
        let file_name = part.file_name().unwrap_or_default().to_owned();
        let bytes = part
            .bytes()
            .await
            .map_err(|_| bad("The upload is not valid multipart/form-data"))?;
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, too_large()));
        }
        let zip_name = file_name.to_ascii_lowercase().ends_with(".zip");
        // Local file header, or the end record of an empty archive.
        let zip_bytes = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06");
        if !zip_name || !zip_bytes {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Only .zip files are accepted".to_owned(),
            ));
        }
        return Ok((file_name, bytes.len() as u64));
    }
    Err(bad("Choose a .zip file to upload"))
}

fn is_expired(app: &App, link: &wire::MagicLink) -> bool {
    timefmt::parse(&link.expires_at).is_some_and(|expires_at| expires_at <= app.clock.now())
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
    let base = format!("/magic-link/{}", segment(&link.id));
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

/// A 404 or 410 page saying why.
fn refusal(error: &Error) -> Response {
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
