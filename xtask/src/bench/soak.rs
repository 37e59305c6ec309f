//! The soak: what a tenant doing ordinary work sees while others abuse the shared sandbox.
//!
//! Normal traffic (create a link, then read it back, on one key) runs twice for the same
//! time: alone, then beside two kinds of abuse — a flood of requests each with a fresh key
//! (a new tenant per request, bounded by [`FRESH_KEYS`]) and [`SLOW_CLIENTS`] connections
//! that send a partial request head and then nothing. Both runs are rows of the report, the
//! second compared with the first; its p99 is the figure that matters. Loopback only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use std::io::Write;
use std::net::TcpStream;

use super::Report;
use super::load::{self, MakeRequest, request};

/// The key of the well-behaved tenant.
const NORMAL_KEY: &str = "m2m_test_soaknormal0000000000000000000000";
/// Connections of normal traffic.
const NORMAL_CONNECTIONS: usize = 16;
/// Connections sending fresh keys.
const FLOOD_CONNECTIONS: usize = 16;
/// At most this many fresh keys per run.
const FRESH_KEYS: u64 = 200_000;
/// Connections that send half a request head and stall.
const SLOW_CLIENTS: usize = 400;

/// The row names.
pub const ALONE: &str = "soak: normal traffic alone";
pub const UNDER_ABUSE: &str = "soak: normal traffic under abuse";

/// Runs both halves of the soak for `duration` each and adds their rows.
pub async fn run(addr: SocketAddr, duration: Duration, report: &mut Report) -> anyhow::Result<()> {
    let alone = load::run(
        addr,
        NORMAL_CONNECTIONS,
        duration,
        None,
        normal(addr, "alone"),
    )
    .await?;
    report.add(ALONE, &alone, None);

    let slow = slow_clients(addr);
    let flood = tokio::spawn(load::run(
        addr,
        FLOOD_CONNECTIONS,
        duration,
        Some(FRESH_KEYS),
        fresh_keys(addr),
    ));
    let abused = load::run(
        addr,
        NORMAL_CONNECTIONS,
        duration,
        None,
        normal(addr, "abused"),
    )
    .await?;
    let flooded = flood.await??;
    drop(slow);
    report.add_compared(UNDER_ABUSE, &abused, ALONE, "alone");
    println!(
        "soak: normal p99 {:.2} ms alone, {:.2} ms under abuse ({} fresh keys sent, {} slow clients)",
        alone.quantile_ms(0.99),
        abused.quantile_ms(0.99),
        flooded.requests + flooded.errors,
        SLOW_CLIENTS,
    );
    Ok(())
}

/// Even requests create a link, odd ones list the tenant's links. Each run's references
/// carry its own `run` prefix: a second run reusing the first's would be answered 409 (one
/// active link per reference), and counted as errors that abuse did not cause.
fn normal(addr: SocketAddr, run: &'static str) -> MakeRequest {
    Arc::new(move |n| {
        if n % 2 == 0 {
            request(
                Method::POST,
                addr,
                "/partner/links",
                &[("x-api-key", NORMAL_KEY)],
                Some(format!("{{\"referenceId\":\"soak-{run}-{n}\"}}")),
            )
        } else {
            request(
                Method::GET,
                addr,
                "/partner/links?limit=20",
                &[("x-api-key", NORMAL_KEY)],
                None,
            )
        }
    })
}

/// A create-link request with a key never seen before.
fn fresh_keys(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        let key = format!("m2m_test_soakfresh{n:0>23}");
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", &key)],
            Some("{\"referenceId\":\"flood\"}".into()),
        )
    })
}

/// Connections holding half a request head; the server may close them whenever it likes.
fn slow_clients(addr: SocketAddr) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            break;
        };
        let _ = stream.write_all(b"POST /partner/links HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        streams.push(stream);
    }
    streams
}
