//! `cargo xtask bench --restart LINKS`: how long `linkbox serve --state FILE` takes to come
//! back with LINKS links in the file, and the memory it then holds.
//!
//! The file is written by linkbox itself, in this process: one partner seeded through
//! [`linkbox::ops::seed::seed_m2m`] (the seeder's mix: opened links with data requests,
//! operations, cancellations, revocations; realistic `userData` and `metadata`) with the
//! state file as its sink, so the rows are exactly what a long-running sandbox writes. The
//! binary is then started on it three times; each start is timed from launch to its
//! `listening on` line, and checked to have every link back (`pagination.total`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use http::Method;

use super::load::request;
use super::{KEYS, Server, call};

/// Starts measured.
const STARTS: usize = 3;

/// Writes a state file of `links` links under `dir`, starts `binary` on it [`STARTS`]
/// times, and returns the table.
pub async fn run(binary: &Path, dir: &Path, links: u32) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let state = dir.join("restart.db");
    for suffix in ["", "-wal", "-shm", "-holder", "-log", "-log.applying"] {
        let mut path = state.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let written = std::time::Instant::now();
    write_state(&state, links).await?;
    let file_mib = std::fs::metadata(&state)?.len() as f64 / (1024.0 * 1024.0);
    let mut table = String::new();
    writeln!(
        table,
        "restart with {links} links (one partner, the seeder's mix; a {file_mib:.0} MiB file \
         written in {:.0} s)",
        written.elapsed().as_secs_f64()
    )?;
    writeln!(
        table,
        "| start | to `listening on` | resident | links back |"
    )?;
    writeln!(table, "|---|---:|---:|---:|")?;
    for start in 1..=STARTS {
        let (server, started) = Server::start(binary, &["--state".as_ref(), state.as_os_str()])?;
        let seconds = started.elapsed().as_secs_f64();
        let rss_mib = server.rss_kib()? as f64 / 1024.0;
        let listed = call(
            server.addr,
            request(
                Method::GET,
                server.addr,
                "/partner/links?limit=1",
                &[("x-api-key", KEYS[0])],
                None,
            ),
        )
        .await?;
        let back = listed["data"]["pagination"]["total"]
            .as_u64()
            .with_context(|| format!("no pagination.total in {listed}"))?;
        anyhow::ensure!(
            back == u64::from(links),
            "start {start}: {back} links came back of {links}"
        );
        writeln!(
            table,
            "| {start} | {seconds:.2} s | {rss_mib:.0} MiB | {back} |"
        )?;
        drop(server);
    }
    Ok(table)
}

/// Seeds `links` links into a fresh state file at `path` through linkbox's own store.
async fn write_state(path: &Path, links: u32) -> anyhow::Result<()> {
    let settings = linkbox::Settings::resolve(
        linkbox::Options {
            state: Some(path.to_owned()),
            ..linkbox::Options::default()
        },
        "127.0.0.1:1".parse()?,
    );
    let app = linkbox::App::open(settings).await?;
    let partner = app
        .store
        .m2m()
        .authenticate(KEYS[0])
        .context("the bench key is refused")?;
    let batch = linkbox::ops::seed::MAX_COUNT;
    let mut made = 0u32;
    let mut round = 0u64;
    while made < links {
        let count = batch.min(links - made);
        let seeded = linkbox::ops::seed::seed_m2m(&app, &partner, count, round, None)
            .map_err(|error| anyhow::anyhow!("seeding: {error}"))?;
        made += u32::try_from(seeded.created.len())?;
        round += 1;
        if round.is_multiple_of(50) {
            // Keep the writer's queue short: wait for what is recorded to be committed.
            app.sink.settled().await?;
        }
    }
    app.sink.settled().await?;
    app.sink.close()?;
    Ok(())
}
