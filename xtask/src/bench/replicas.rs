//! `cargo xtask bench --replicas POSTGRES_URL`: create-link and get-link throughput of 1, 2
//! and 3 `linkbox serve --state postgres://…` replicas sharing one fresh database, each as a
//! ratio to one in-memory process measured in the same run with the same generator (the
//! in-tree one: each replica gets its share of the connections, and the rates are summed).
//!
//! On two shared cores the absolute figures say little (the database, the replicas and the
//! generator compete for them); the ratios and the shape of the curve are the point. Every
//! replica's requests on one partner wait for that partner's row lock in turn, so the
//! create rows are measured over four partners, as the other create rows are.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::Method;

use super::load::{self, MakeRequest, request};
use super::{CONNECTIONS, KEYS, Server, create_one};

/// One row: what ran, and its rate and p99 beside the in-memory process's.
struct Row {
    label: String,
    per_second: f64,
    p99_ms: f64,
    errors: u64,
}

/// Measures and returns the table.
pub async fn run(binary: &Path, server: &str, duration: Duration) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    let (memory, _) = Server::start(binary, &[])?;
    let link = create_one(memory.addr).await?;
    rows.push(
        measure(
            "create, in memory (1 process)",
            &[memory.addr],
            duration,
            Creates,
        )
        .await?,
    );
    rows.push(
        measure(
            "get, in memory (1 process)",
            &[memory.addr],
            duration,
            Gets(link),
        )
        .await?,
    );
    drop(memory);
    for count in 1..=3 {
        let database = fresh_database(server, count).await?;
        let mut replicas = Vec::new();
        for _ in 0..count {
            let state = std::ffi::OsString::from(&database);
            replicas.push(Server::start(binary, &["--state".as_ref(), state.as_os_str()])?.0);
        }
        let addrs: Vec<SocketAddr> = replicas.iter().map(|replica| replica.addr).collect();
        let link = create_one(addrs[0]).await?;
        rows.push(
            measure(
                &format!("create, {count} replica(s)"),
                &addrs,
                duration,
                Creates,
            )
            .await?,
        );
        if count > 1 {
            rows.push(
                measure(
                    &format!("create, {count} replica(s), each partner on one"),
                    &addrs,
                    duration,
                    Owned(count),
                )
                .await?,
            );
        }
        rows.push(
            measure(
                &format!("get, {count} replica(s)"),
                &addrs,
                duration,
                Gets(link),
            )
            .await?,
        );
    }
    Ok(table(&rows))
}

/// What the connections send.
#[derive(Clone)]
enum Work {
    /// Create-link over the four bench partners, every reference distinct.
    Creates,
    /// The same, each partner's creates sent to one of this many replicas only (as a load
    /// balancer with affinity by key would), so no replica reads another's partner back.
    Owned(usize),
    /// `GET /partner/links/{id}` of one link.
    Gets(String),
}
use Work::{Creates, Gets, Owned};

fn make(work: &Work, addr: SocketAddr, replica: usize) -> MakeRequest {
    match work.clone() {
        Creates => creates(addr, KEYS.to_vec(), format!("replica-{replica}")),
        Owned(count) => {
            let keys = KEYS
                .iter()
                .enumerate()
                .filter(|(n, _)| n % count == replica)
                .map(|(_, key)| *key)
                .collect();
            creates(addr, keys, format!("owned-{replica}"))
        }
        Gets(link) => Arc::new(move |_| {
            request(
                Method::GET,
                addr,
                &format!("/partner/links/{link}"),
                &[("x-api-key", KEYS[0])],
                None,
            )
        }),
    }
}

/// Create-link over `keys` in turn, each reference `{prefix}-{n}` (distinct per replica).
fn creates(addr: SocketAddr, keys: Vec<&'static str>, prefix: String) -> MakeRequest {
    Arc::new(move |n| {
        let key = keys[(n % keys.len() as u64) as usize];
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", key)],
            Some(format!(
                "{{\"referenceId\":\"{prefix}-{n}\",\"metadata\":{{\"orderId\":\"ORD-{n}\"}}}}"
            )),
        )
    })
}

/// Drives every replica at once, each with its share of the connections; sums the rates.
async fn measure(
    label: &str,
    addrs: &[SocketAddr],
    duration: Duration,
    work: Work,
) -> anyhow::Result<Row> {
    let share = (CONNECTIONS / addrs.len()).max(1);
    let mut runs = Vec::new();
    for (replica, addr) in addrs.iter().enumerate() {
        let make = make(&work, *addr, replica);
        let addr = *addr;
        runs.push(tokio::spawn(async move {
            load::run(addr, share, duration, None, make).await
        }));
    }
    let (mut per_second, mut p99_ms, mut errors) = (0.0, 0.0_f64, 0);
    for run in runs {
        let outcome = run.await??;
        per_second += outcome.per_second();
        p99_ms = p99_ms.max(outcome.quantile_ms(0.99));
        errors += outcome.errors;
    }
    Ok(Row {
        label: label.to_owned(),
        per_second,
        p99_ms,
        errors,
    })
}

/// A new, empty database on `server` for a run of `count` replicas; its URL.
async fn fresh_database(server: &str, count: usize) -> anyhow::Result<String> {
    let name = format!("linkbox_bench_{}_{count}", std::process::id());
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot reach the PostgreSQL server for --replicas ({server})"))?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .context("--replicas takes a URL naming a database, e.g. postgres://postgres@127.0.0.1:5432/postgres")?;
    Ok(format!("{base}/{name}"))
}

fn table(rows: &[Row]) -> String {
    let base = |prefix: &str| {
        rows.iter()
            .find(|row| row.label.starts_with(prefix) && row.label.contains("in memory"))
            .map_or(1.0, |row| row.per_second)
    };
    let mut out = String::from(
        "| scenario | req/s | x in memory | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let reference = base(row.label.split(',').next().unwrap_or_default());
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.1} | {} |",
            row.label,
            row.per_second,
            row.per_second / reference,
            row.p99_ms,
            row.errors
        );
    }
    out
}
