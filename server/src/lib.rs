//! linkbox: a local, stateful sandbox of LeapFinancial's M2M partner-link API and Leaf
//! Agriculture's magic-link API.
//!
//! # Layout
//! The modules form layers; a module imports only modules in layers below its own, never
//! one beside or above it. `tests::tidy` reads this list and holds the code to it.
//!
//! ```text
//! client: seed_cli contract_cli `linkbox seed` and `linkbox contract`, clients of a sandbox
//! cli:    cli                   the `linkbox` command line
//! serve:  http                  connections, the request pipeline: identity, faults,
//!                               routing, journal, durability wait
//! routes: m2m leaf control pages docs
//!                               each API's handlers, validation and one error envelope
//! wire:   wire                  route table, request, bodies, queries, JSON responses
//! ops:    ops                   what more than one surface does: identity, tokens, playing
//!                               the end user, events, reset, seeding; no HTTP
//! app:    app                   the handle: settings and every piece below
//! queues: webhooks journal faults drift
//!                               the webhook queue and engine, the journal, the fault
//!                               table, shadow mode's drift report
//! state:  store clock           all tenant state, and the sandbox clock
//! threads: offload              heavy work off the serving threads, counted as its
//!                               request's own
//! base:   persist config ratelimit bodies keys
//!                               the state file, settings, rate-limit windows, the
//!                               request bodies and answers held at once, M2M keys in text
//! ```
//!
//! The binary binds its listener first and then serves it ([`serve`]); tests do the same on
//! port 0, so nothing ever polls for readiness.

pub mod app;
pub mod bodies;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract_cli;
pub mod control;
pub mod docs;
pub mod drift;
pub mod faults;
pub mod http;
pub mod journal;
pub mod keys;
pub mod leaf;
pub mod m2m;
pub mod offload;
pub mod ops;
pub mod pages;
pub mod persist;
pub mod ratelimit;
pub mod seed_cli;
pub mod store;
pub mod webhooks;
pub mod wire;

#[cfg(test)]
mod tidy;

use std::future::Future;

use tokio::net::TcpListener;

pub use app::App;
pub use config::{Options, Settings};
pub use http::Pipeline;

/// Serves `app` on an already bound `listener` until `shutdown` completes ([`http::run`]).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<(), persist::Unsaved> {
    http::run(listener, app, shutdown).await
}

/// Resolves `options` against the listener's address and opens the sandbox they describe:
/// fresh, or loaded from the `--state` file. Fails on a state file linkbox cannot use.
pub async fn open(listener: &TcpListener, options: Options) -> std::io::Result<App> {
    let settings = Settings::resolve(options, listener.local_addr()?);
    App::open(settings).await.map_err(std::io::Error::other)
}

/// Opens the sandbox `options` describe and serves it.
pub async fn run(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = open(&listener, options).await?;
    serve(listener, app, shutdown)
        .await
        .map_err(std::io::Error::other)
}
