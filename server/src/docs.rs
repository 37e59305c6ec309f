//! The contract as a document: `GET /openapi.json` (byte for byte the committed
//! `openapi/linkbox.openapi.json`) and a browsable Swagger UI at `/docs`, served from assets
//! compiled into the binary — no network at build or run time.

use std::sync::{Arc, LazyLock};

use http::{HeaderValue, StatusCode, header};
use utoipa_swagger_ui::Config;
use warp::reply::Response;

use crate::wire::{Request, Router};

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(linkbox_contracts::openapi::json);
/// The document's address relative to the UI's (`/docs/`), as every link of linkbox's own
/// pages is: behind a proxy serving linkbox under a path (`--public-url https://host/base/`)
/// it stays under it, where `/openapi.json` left it.
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::from("../openapi.json")));

/// Whether `path` is one of these documents' (they read no state).
pub fn owns(path: &str) -> bool {
    path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")
}

/// `/openapi.json` and the Swagger UI.
pub fn routes() -> Router {
    Router::new()
        .get("/openapi.json", |_: Request| async { openapi_json() })
        .get("/docs/{*file}", |request: Request| async move {
            let file = request.param("file");
            // `/docs` itself moves to `/docs/`, so the UI's relative asset paths resolve:
            // relative to it, so that behind a proxy serving linkbox under a path the UI
            // stays under it too.
            if file.is_empty() && !request.path.ends_with('/') {
                let mut response = Response::new("".into());
                *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("docs/"));
                response
            } else {
                swagger_file(file)
            }
        })
}

/// GET /openapi.json
fn openapi_json() -> Response {
    let mut response = Response::new(OPENAPI_JSON.as_str().into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn swagger_file(path: &str) -> Response {
    match utoipa_swagger_ui::serve(path, SWAGGER_CONFIG.clone()) {
        Ok(Some(file)) => {
            let mut response = Response::new(file.bytes.into_owned().into());
            if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Ok(None) => crate::wire::sandbox_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No documentation file {path}"),
        ),
        Err(error) => crate::wire::sandbox_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("Swagger UI asset failed: {error}"),
        ),
    }
}
