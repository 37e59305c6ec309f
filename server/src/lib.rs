//! linkbox: a local, stateful sandbox of LeapFinancial's M2M partner-link API and Leaf
//! Agriculture's magic-link API.
//!
//! # Layout
//! - [`app`]: the [`App`] handle every route holds (settings, store, clock).
//! - [`config`]: command-line options resolved into [`Settings`], and the TOML config file.
//! - [`clock`]: the sandbox clock every timestamp and expiry reads.
//! - [`store`]: all state, behind one handle, locked per tenant.
//! - [`m2m`]: the M2M partner API under `/partner`.
//! - [`leaf`]: the Leaf magic-link API under `/api` and `/services`.
//! - [`control`]: linkbox's own `/_sandbox` API and its error envelope; also the request
//!   journal and the fault gate wrapped around every route.
//! - [`webhooks`]: the signed M2M webhook queue and the engine that delivers it.
//! - [`pages`]: the hosted HTML pages — the M2M widget, the Leaf magic-link page — and the
//!   dashboard at `/_sandbox/ui`.
//! - [`seed`]: deterministic fake data for QA and the `--seed` demo.
//! - [`persist`]: `--state FILE`, every change written through to SQLite before its
//!   response leaves.
//! - [`docs`]: `/openapi.json` and the Swagger UI at `/docs`.
//! - [`http`]: the connection loop, body and query plumbing shared by the APIs.
//! - [`ratelimit`]: per-minute windows on the sandbox clock.
//! - [`cli`]: the `linkbox` command line.
//!
//! The binary binds its listener first and then serves it ([`serve`]); tests do the same on
//! port 0, so nothing ever polls for readiness.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod docs;
pub mod http;
pub mod leaf;
pub mod m2m;
pub mod pages;
pub mod persist;
pub mod ratelimit;
pub mod seed;
pub mod seed_cli;
pub mod store;
pub mod webhooks;

use std::future::Future;

use tokio::net::TcpListener;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub use app::App;
pub use config::{Options, Settings};

/// Every route of the sandbox, behind the fault gate, inside the request journal; with a
/// state file, each response waits until what it changed is durable.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let endpoints = m2m::routes(app.clone())
        .or(leaf::routes(app.clone()))
        .unify()
        .or(control::routes(app.clone()))
        .unify()
        .or(pages::routes(app.clone()))
        .unify()
        .or(docs::routes())
        .unify()
        .or(control::fallback())
        .unify()
        .boxed();
    let gated = control::faults::gated(app.clone(), endpoints);
    let recorded = control::journal::recorded(app.clone(), gated);
    persist::durable(&app, recorded)
}

/// Serves `app` on an already bound `listener` until `shutdown` completes, with the webhook
/// engine running alongside and stopped after the last connection closes; then closes the
/// state file, if any, with everything committed.
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let (stop_engine, engine_stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = tokio::spawn(webhooks::engine::run(app.clone(), async {
        let _ = engine_stopped.await;
    }));
    http::serve(listener, routes(app.clone()), shutdown).await;
    let _ = stop_engine.send(());
    let _ = engine.await;
    let sink = app.sink.clone();
    if tokio::task::spawn_blocking(move || sink.close())
        .await
        .is_err()
    {
        tracing::error!("closing the state file failed");
    }
}

/// Resolves `options` against the listener's address and opens the sandbox they describe:
/// fresh, or loaded from the `--state` file. Fails on a state file linkbox cannot use.
pub fn open(listener: &TcpListener, options: Options) -> std::io::Result<App> {
    let settings = Settings::resolve(options, listener.local_addr()?);
    App::open(settings).map_err(std::io::Error::other)
}

/// Opens the sandbox `options` describe and serves it.
pub async fn run(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = open(&listener, options)?;
    serve(listener, app, shutdown).await;
    Ok(())
}
