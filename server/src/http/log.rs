//! The request log: one line per request on the `linkbox::request` target, written when its
//! response is ready — method, path (no query: it may carry user data), status,
//! milliseconds, the tenant label (a partner slug or `leaf:<username>`, never a key or
//! token) and every `X-Linkbox-Warning` the response carries, joined by `; `. The
//! subscriber (`main.rs`) renders it as text or, with `--log-format json`, as the same
//! fields in JSON; `LINKBOX_LOG=linkbox::request=off` silences it.
//!
//! Lines are `info`, but the health check's are `debug` ([`level`]): a container's or a CI
//! step's probe asks every second or so, and its lines would bury the requests a developer
//! reads the log for. `LINKBOX_LOG=linkbox::request=debug` shows them too.

use std::time::Duration;

use http::Method;
use linkbox_contracts::m2m::WARNING_HEADER;
use tracing::Level;
use warp::reply::Response;

/// The tracing target of request lines.
pub const TARGET: &str = "linkbox::request";

/// The level of `path`'s request line.
pub fn level(path: &str) -> Level {
    if path == HEALTH {
        Level::DEBUG
    } else {
        Level::INFO
    }
}

/// The health check's path.
const HEALTH: &str = "/_sandbox/health";

/// Whether a request line at `level` is written at all: when not, the pipeline keeps
/// nothing for it.
pub fn enabled(level: Level) -> bool {
    if level == Level::DEBUG {
        tracing::enabled!(target: TARGET, Level::DEBUG)
    } else {
        tracing::enabled!(target: TARGET, Level::INFO)
    }
}

/// Logs one request at `level`.
pub fn request(
    level: Level,
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
    let warnings = (!warnings.is_empty()).then(|| warnings.join("; "));
    let warnings = warnings.as_deref();
    // A macro's level is fixed where it is written: one call per level.
    if level == Level::DEBUG {
        tracing::debug!(target: TARGET, %method, path, status, ms, tenant, warnings, "request");
    } else {
        tracing::info!(target: TARGET, %method, path, status, ms, tenant, warnings, "request");
    }
}
