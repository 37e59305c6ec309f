//! `POST /_sandbox/reset`: a partner key forgets that partner's links, users, data requests,
//! operations, webhook deliveries, journal entries and faults (its webhook URL and secret
//! stay, like portal settings); a Leaf token forgets that account's users and magic links.
//! Admin forgets everything, in both APIs, and puts the clock back on real time.

use http::{HeaderMap, StatusCode};
use linkbox_contracts::sandbox::ResetDone;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::render;
use super::scope::Scope;
use super::with_app;
use crate::app::App;

/// POST /_sandbox/reset
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("reset")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .map(|app: App, headers: HeaderMap| {
            render(Scope::of(&app, &headers).map(|scope| {
                let scope_name = match &scope {
                    Scope::Tenant(partner) => {
                        partner.reset();
                        app.webhooks.forget_tenant(&partner.slug);
                        "tenant"
                    }
                    Scope::Leaf(account, _) => {
                        account.reset();
                        "tenant"
                    }
                    Scope::Admin => {
                        for partner in app.store.m2m().all() {
                            partner.reset();
                        }
                        for account in app.store.leaf().all() {
                            account.reset();
                        }
                        app.webhooks.forget_all();
                        app.clock.reset();
                        "all"
                    }
                };
                app.journal.clear(scope.slug());
                app.faults.clear(scope.slug());
                crate::http::json(
                    StatusCode::OK,
                    &ResetDone {
                        scope: scope_name.to_owned(),
                    },
                )
            }))
        })
        .boxed()
}
