//! The contract as a document: `GET /openapi.json` (byte for byte the committed
//! `openapi/linkbox.openapi.json`) and a browsable Swagger UI at `/docs`, served from assets
//! compiled into the binary — no network at build or run time.

use std::sync::{Arc, LazyLock};

use http::{HeaderValue, StatusCode, header};
use utoipa_swagger_ui::Config;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::{FullPath, Tail};
use warp::reply::Response;

static OPENAPI_JSON: LazyLock<String> = LazyLock::new(linkbox_contracts::openapi::json);
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::from("/openapi.json")));

pub fn routes() -> BoxedFilter<(Response,)> {
    openapi_json().or(docs()).unify().boxed()
}

/// GET /openapi.json
fn openapi_json() -> BoxedFilter<(Response,)> {
    warp::path!("openapi.json")
        .and(warp::get())
        .map(|| {
            let mut response = Response::new(OPENAPI_JSON.as_str().into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        })
        .boxed()
}

/// GET /docs (redirects to /docs/, so the UI's relative asset paths resolve), /docs/{file}
fn docs() -> BoxedFilter<(Response,)> {
    warp::path("docs")
        .and(warp::path::tail())
        .and(warp::path::full())
        .and(warp::get())
        .map(|tail: Tail, full: FullPath| {
            if tail.as_str().is_empty() && !full.as_str().ends_with('/') {
                let mut response = Response::new("".into());
                *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/docs/"));
                response
            } else {
                swagger_file(tail.as_str())
            }
        })
        .boxed()
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
        Ok(None) => crate::control::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No documentation file {path}"),
        ),
        Err(error) => crate::control::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("Swagger UI asset failed: {error}"),
        ),
    }
}
