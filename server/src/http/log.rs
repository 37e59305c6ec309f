//! The request log: one `info` line per request on the `linkbox::request` target, written
//! when its response is ready — method, path (no query: it may carry user data), status,
//! milliseconds, the tenant label (a partner slug or `leaf:<username>`, never a key or
//! token) and every `X-Linkbox-Warning` the response carries, joined by `; `. The
//! subscriber (`main.rs`) renders it as text or, with `--log-format json`, as the same
//! fields in JSON; `LINKBOX_LOG=linkbox::request=off` silences it.

use std::time::Duration;

use http::Method;
use linkbox_contracts::m2m::WARNING_HEADER;
use warp::reply::Response;

/// The tracing target of request lines.
pub const TARGET: &str = "linkbox::request";

/// Whether request lines are written at all: when not, the pipeline keeps nothing for them.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// Logs one request.
pub fn request(
    method: &Method,
    path: &str,
    response: &Response,
    elapsed: Duration,
    tenant: Option<&str>,
) {
    let status = response.status().as_u16();
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let tenant = tenant.unwrap_or("-");
    let warnings: Vec<&str> = response
        .headers()
        .get_all(WARNING_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if warnings.is_empty() {
        tracing::info!(target: TARGET, %method, path, status, ms, tenant, "request");
    } else {
        let warnings = warnings.join("; ");
        tracing::info!(target: TARGET, %method, path, status, ms, tenant, warnings, "request");
    }
}
