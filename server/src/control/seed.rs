//! `POST /_sandbox/seed {api, count, rngSeed?, mix?}`: fake users and links for the caller's
//! own tenant — a partner key seeds `m2m`, a Leaf token seeds `leaf` ([`crate::ops::seed`]).

use bytes::Bytes;
use http::StatusCode;
use linkbox_contracts::sandbox::{SeedApi, SeedRequest};
use warp::reply::Response;

use super::error::{ControlError, json};
use super::scope;
use crate::ops::seed::{SeedError, seed_leaf, seed_m2m};
use crate::wire::{BodyError, Request};

/// POST /_sandbox/seed
pub fn seed(request: &Request, body: Result<Bytes, BodyError>) -> Result<Response, ControlError> {
    // Read and checked before the caller's tenant is made: a request refused (a count of
    // 0, an empty mix, an API it does not name or its credential is not of, more than its
    // storage budget holds) makes none (nor counts one toward `--max-tenants`). A tenant
    // not yet made stores nothing, as one just made.
    let seed: SeedRequest = json(body)?;
    let mix = seed.mix.as_ref();
    crate::ops::seed::check(&seed.api, seed.count, mix)
        .map_err(|error| ControlError::invalid(error.to_string()))?;
    let api = match seed.api.as_str() {
        "m2m" => SeedApi::M2m,
        "leaf" => SeedApi::Leaf,
        _ => {
            return Err(ControlError::invalid(
                "The api field must be one of: m2m, leaf",
            ));
        }
    };
    let unmade = scope(request)?;
    let needed = u64::from(seed.count) * crate::ops::seed::SEEDED_LINK_MOST;
    match api {
        SeedApi::M2m => unmade.partner()?.allows(needed),
        SeedApi::Leaf => unmade.leaf()?.allows(needed),
    }
    .map_err(ControlError::StorageFull)?;
    let scope = unmade.materialize(&request.app)?;
    let rng_seed = seed.rng_seed.unwrap_or_else(crate::ops::seed::random_seed);
    let app = &request.app;
    let seeded = match api {
        SeedApi::M2m => seed_m2m(app, scope.partner()?, seed.count, rng_seed, mix),
        SeedApi::Leaf => seed_leaf(app, scope.leaf()?, seed.count, rng_seed, mix),
    }
    .map_err(|error| match error {
        SeedError::StorageFull(full) => ControlError::StorageFull(full),
        other => ControlError::invalid(other.to_string()),
    })?;
    Ok(crate::wire::json(StatusCode::CREATED, &seeded))
}
