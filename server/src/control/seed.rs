//! `POST /_sandbox/seed {api, count, rngSeed?, mix?}`: fake users and links for the caller's
//! own tenant — a partner key seeds `m2m`, a Leaf token seeds `leaf` ([`crate::seed`]).

use http::{HeaderMap, StatusCode};
use linkbox_contracts::sandbox::SeedRequest;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::error::{ControlError, json, render};
use super::scope::Scope;
use super::with_app;
use crate::app::App;
use crate::http::body;
use crate::seed::{seed_leaf, seed_m2m};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    warp::path!("seed")
        .and(warp::post())
        .and(with_app(app))
        .and(warp::header::headers_cloned())
        .and(body(16 * 1024))
        .map(|app: App, headers: HeaderMap, body| {
            render((|| {
                let scope = Scope::of(&app, &headers)?;
                let request: SeedRequest = json(body)?;
                let rng_seed = request.rng_seed.unwrap_or_else(rand::random);
                let mix = request.mix.as_ref();
                let seeded = match request.api.as_str() {
                    "m2m" => seed_m2m(&app, scope.partner()?, request.count, rng_seed, mix),
                    "leaf" => seed_leaf(&app, scope.leaf()?, request.count, rng_seed, mix),
                    _ => {
                        return Err(ControlError::invalid(
                            "The api field must be one of: m2m, leaf",
                        ));
                    }
                }
                .map_err(|error| ControlError::invalid(error.to_string()))?;
                Ok(crate::http::json(StatusCode::CREATED, &seeded))
            })())
        })
        .boxed()
}
