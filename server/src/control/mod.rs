//! linkbox's own control API under `/_sandbox`, and the JSON error envelope linkbox uses
//! where no vendor contract applies: `{"error": {"code": "...", "message": "..."}}`.

use http::{Method, StatusCode};
use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use crate::app::App;

/// linkbox's own error body.
#[derive(Debug, Serialize)]
pub struct SandboxError {
    pub error: SandboxErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct SandboxErrorDetail {
    /// `NOT_FOUND`, `INVALID_REQUEST`, `UNAUTHORIZED`, ...
    pub code: &'static str,
    pub message: String,
}

/// A linkbox error response.
pub fn error(status: StatusCode, code: &'static str, message: String) -> Response {
    crate::http::json(
        status,
        &SandboxError {
            error: SandboxErrorDetail { code, message },
        },
    )
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

/// The control API's routes.
pub fn routes(_app: App) -> BoxedFilter<(Response,)> {
    health().boxed()
}

/// GET /_sandbox/health
fn health() -> BoxedFilter<(Response,)> {
    warp::path!("_sandbox" / "health")
        .and(warp::get())
        .map(|| {
            crate::http::json(
                StatusCode::OK,
                &Health {
                    status: "ok",
                    version: env!("CARGO_PKG_VERSION"),
                },
            )
        })
        .boxed()
}

/// 404 in linkbox's envelope for every path no API claims.
pub fn fallback() -> BoxedFilter<(Response,)> {
    warp::method()
        .and(warp::path::full())
        .map(|method: Method, path: FullPath| {
            error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("No route for {method} {}", path.as_str()),
            )
        })
        .boxed()
}
