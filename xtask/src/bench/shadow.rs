//! Shadow mode's cost: what `--shadow-m2m` adds to a request over calling the same upstream
//! directly. Two linkbox processes run side by side — one plays the vendor, the other
//! shadows it — and the same `GET /partner/links/{id}` is sent to each in turn, on one
//! connection (so latencies are not queueing), rounds alternating. The shadowed request
//! pays the upstream round trip, reading the whole answer, and queueing the comparison; the
//! comparison itself runs after the answer is sent, on the same two cores.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::Method;

use super::load::{self, MakeRequest, Outcome, request};
use super::{KEYS, Server, call};

/// Direct and shadowed runs, each `rounds` long, alternating.
const ROUNDS: u32 = 3;
/// The row of the direct request.
pub const DIRECT: &str = "GET /partner/links/{id} direct to an upstream (1 connection)";
/// The row of the same request through shadow mode.
pub const SHADOWED: &str = "GET /partner/links/{id} through --shadow-m2m (1 connection)";

/// The direct and the shadowed outcome, each the concatenation of its rounds.
pub struct Figures {
    pub direct: Outcome,
    pub shadowed: Outcome,
}

impl Figures {
    /// The p50 the shadowed request adds, in milliseconds.
    pub fn added_p50_ms(&self) -> f64 {
        self.shadowed.quantile_ms(0.5) - self.direct.quantile_ms(0.5)
    }
}

/// Measures the added latency for `duration` per side.
pub async fn measure(binary: &Path, duration: Duration) -> anyhow::Result<Figures> {
    let (vendor, _) = Server::start(binary, &[])?;
    let upstream = format!("http://{}", vendor.addr);
    let (shadow, _) = Server::start(binary, &["--shadow-m2m".as_ref(), upstream.as_ref()])?;
    // Created through the shadow, so both sides hold it and the shadow maps its id.
    let created = call(
        shadow.addr,
        request(
            Method::POST,
            shadow.addr,
            "/partner/links",
            &[("x-api-key", KEYS[0])],
            Some("{\"referenceId\":\"shadow-bench\"}".into()),
        ),
    )
    .await?;
    let link_id = created["data"]["linkId"]
        .as_str()
        .context("the shadowed create answered no linkId")?
        .to_owned();
    let get = |addr: SocketAddr| -> MakeRequest {
        let path = format!("/partner/links/{link_id}");
        Arc::new(move |_| request(Method::GET, addr, &path, &[("x-api-key", KEYS[0])], None))
    };
    let round = duration / ROUNDS;
    let mut direct: Option<Outcome> = None;
    let mut shadowed: Option<Outcome> = None;
    for _ in 0..ROUNDS {
        let outcome = load::run(vendor.addr, 1, round, None, get(vendor.addr)).await?;
        direct = Some(merge(direct, outcome)?);
        let outcome = load::run(shadow.addr, 1, round, None, get(shadow.addr)).await?;
        shadowed = Some(merge(shadowed, outcome)?);
    }
    Ok(Figures {
        direct: direct.context("no direct round")?,
        shadowed: shadowed.context("no shadowed round")?,
    })
}

/// Two runs as one.
fn merge(total: Option<Outcome>, next: Outcome) -> anyhow::Result<Outcome> {
    let Some(mut total) = total else {
        return Ok(next);
    };
    total.requests += next.requests;
    total.errors += next.errors;
    total.elapsed += next.elapsed;
    total
        .latency
        .add(&next.latency)
        .context("latency histograms differ")?;
    Ok(total)
}
