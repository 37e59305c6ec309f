//! `cargo xtask bench`: starts a release build of linkbox on loopback beside a bare warp
//! server (`xtask/bare`, the reference: the most this stack answers on this machine) and
//! measures both in one run with `wrk` when it is on `PATH` ([`wrk`]), or else with the
//! in-tree load generator ([`load`]), which also drives the soak and fills the stores whose
//! memory per link is measured. The store growing past a million links in one partner is
//! driven by wrk too, each of its threads stopping at its share ([`wrk::start`]). The bare
//! reference and the health endpoint are measured side by side, alternated three times
//! (medians kept); so are the small create-link requests at the bare reference
//! (what the generator and the kernel spend on a request of that shape: the create row's
//! ratio is to that row), at a fresh linkbox in memory, and at a fresh linkbox with
//! `--state` (a fresh SQLite file; its ratio is to the in-memory rate), each round with the
//! reference's `GET /` again (create's ratio to it in those rounds is printed under the
//! table: the reference row ran in the health rounds, minutes before); then create-link
//! with the seeder's bodies, and with the request log on (linkbox's default, into
//! `/dev/null`; the other rows run with `LINKBOX_LOG=warn`) as a ratio of the log off, and
//! with every partner's webhook receiver down or live; get and list, a mixed read/write
//! workload, the Leaf routes (creates for one user, and for a new farm each: a new Leaf user
//! per link), and every row also as a ratio to the bare reference. Memory per link is
//! measured in fresh processes for bare links and for the seeder's kind (metadata and
//! userData) at 100k links (1M too with `--million`); outside `--quick`, the store grows past a million links in one partner, and the same
//! create-link request runs against WireMock and Prism ([`peers`]); and a soak ([`soak`]):
//! normal traffic's p99 alone, then while fresh keys flood in and slow clients hold
//! connections open; and what shadow mode adds to a request over calling its upstream
//! directly ([`shadow`]). For the bare POST, the in-memory create and the `--state` create
//! it also reads what each server's threads spent per request ([`cpu`]), so the table says
//! where a create's time goes, not only its rate. Prints a table and writes
//! `target/bench/bench.json` and `target/bench/bench.svg`.
//!
//! With `--baseline NAME=BINARY` (repeatable) it measures instead this build beside the
//! named builds, round after round, and prints their ratios ([`compare`]); the table is also
//! written to `target/bench/compare.txt`.
//!
//! With `--restart LINKS` it measures only how long a start on a state file of LINKS
//! seeded links takes ([`restart`]); with `--replicas URL`, only replicas sharing one
//! PostgreSQL ([`replicas`]).

mod compare;
mod cpu;
mod load;
mod peers;
mod replicas;
mod report;
mod restart;
mod shadow;
mod soak;
mod wrk;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::Method;

use cpu::Threads;
use load::{MakeRequest, request};
pub use report::Report;
use report::{CREATE, REFERENCE, Sample};

/// Connections the load generator keeps open, as in the wrk runs.
const CONNECTIONS: usize = 64;
/// How long each throughput scenario runs.
const SCENARIO: Duration = Duration::from_secs(5);
/// Links the growth phase stores in one partner.
const GROWTH_LINKS: u64 = 1_000_000;

const KEYS: [&str; 4] = [
    "m2m_test_bench000000000000000000000000000",
    "m2m_test_bench111111111111111111111111111",
    "m2m_test_bench222222222222222222222222222",
    "m2m_test_bench333333333333333333333333333",
];

pub use compare::Build;

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Default)]
pub struct Options {
    /// One second per scenario, no peers, no million-link phase.
    pub quick: bool,
    /// Other builds to compare with (`--baseline NAME=BINARY`).
    pub baselines: Vec<Build>,
    /// A linkbox binary to measure instead of building one (`--binary PATH`).
    pub binary: Option<std::path::PathBuf>,
    /// Memory per link at 1M links as well as at 100k (`--million`).
    pub million: bool,
    /// Only the replica rows, on this PostgreSQL server (`--replicas URL`).
    pub replicas: Option<String>,
    /// Only the restart row: starts on a state file of this many links (`--restart LINKS`).
    pub restart: Option<u32>,
}

pub fn run(root: &Path, options: Options) -> anyhow::Result<()> {
    let Options {
        quick,
        baselines,
        binary,
        million,
        replicas,
        restart,
    } = options;
    let binary = match binary {
        Some(binary) => binary,
        None => build(root)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    if let Some(links) = restart {
        let table = runtime.block_on(restart::run(&binary, &out.join("restart"), links))?;
        std::fs::write(out.join("restart.txt"), &table)?;
        println!("{table}");
        println!("written: target/bench/restart.txt");
        return Ok(());
    }
    if let Some(server) = replicas {
        let duration = if quick {
            Duration::from_secs(1)
        } else {
            SCENARIO
        };
        let table = runtime.block_on(replicas::run(&binary, &server, duration))?;
        std::fs::write(out.join("replicas.txt"), &table)?;
        println!("{table}");
        println!("written: target/bench/replicas.txt");
        return Ok(());
    }
    if !baselines.is_empty() {
        let mut builds = baselines;
        builds.push(Build {
            name: "this build".into(),
            binary,
        });
        let table = runtime.block_on(compare::run(&builds, quick))?;
        std::fs::write(out.join("compare.txt"), &table)?;
        println!("{table}");
        println!("written: target/bench/compare.txt");
        return Ok(());
    }
    let bare = build_bare(root)?;
    let mut report =
        runtime.block_on(measure(&binary, &bare, &Measure { quick, million }, &out))?;
    if quick {
        report.skip_peers("--quick");
    } else {
        runtime.block_on(measure_peers(root, &out.join("peers"), &mut report));
    }
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("bench.json"), report.json()?)?;
    std::fs::write(out.join("bench.svg"), report.svg())?;
    println!("{}", report.table());
    println!("written: target/bench/bench.json, target/bench/bench.svg");
    Ok(())
}

/// Builds linkbox in release and returns the binary's path.
fn build(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    release_binary(root, "linkbox", "linkbox")
}

/// Builds the bare reference (`xtask/bare`, package `bench-bare`) in release: a crate of its
/// own, so that it links warp and tokio and nothing of linkbox's, and its build does not
/// depend on the server's.
fn build_bare(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    release_binary(root, "bench-bare", "bench-bare")
}

/// `cargo build --release -p package`, and the path of its binary `name`.
fn release_binary(root: &Path, package: &str, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let status = crate::cargo_command()
        .args(["build", "--release", "--quiet", "-p", package])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("release build of {package} failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join(name))
}

/// A linkbox process on a free loopback port, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &Path, extra: &[&std::ffi::OsStr]) -> anyhow::Result<(Server, Instant)> {
        let mut args: Vec<&std::ffi::OsStr> =
            ["serve", "--addr", "127.0.0.1:0", "--rate-limits", "off"]
                .into_iter()
                .map(std::ffi::OsStr::new)
                .collect();
        args.extend_from_slice(extra);
        Server::spawn(binary, &args, &[("LINKBOX_LOG", "warn")], Stdio::inherit())
    }

    /// Like [`Server::start`], with linkbox's default log (a line per request) written to
    /// nowhere, as a user's `linkbox serve` with stderr redirected.
    fn start_logged(binary: &Path) -> anyhow::Result<Server> {
        let args =
            ["serve", "--addr", "127.0.0.1:0", "--rate-limits", "off"].map(std::ffi::OsStr::new);
        let (server, _) = Server::spawn(binary, &args, &[("LINKBOX_LOG", "info")], Stdio::null())?;
        Ok(server)
    }

    /// Starts `binary args...`, which prints `listening on http://ADDR` first.
    fn spawn(
        binary: &Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> anyhow::Result<(Server, Instant)> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .parse()?;
        Ok((Server { child, addr }, started))
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("no VmRSS")
    }
}

/// The load generator of the throughput rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Generator {
    /// `wrk`, when it is on `PATH`.
    Wrk,
    /// The in-tree generator ([`load`]).
    InTree,
}

impl Generator {
    fn pick() -> Generator {
        if wrk::available() {
            Generator::Wrk
        } else {
            Generator::InTree
        }
    }

    fn describe(self) -> String {
        match self {
            Generator::Wrk => format!("wrk -t2 -c{CONNECTIONS} --latency"),
            Generator::InTree => {
                format!("the in-tree generator ({CONNECTIONS} connections; wrk is not on PATH)")
            }
        }
    }
}

/// One scenario, as the in-tree generator and as wrk send it.
struct Scenario {
    make: MakeRequest,
    script: wrk::Script,
}

/// Runs `scenario` against `addr` with `generator`.
async fn drive(
    generator: Generator,
    addr: SocketAddr,
    duration: Duration,
    scenario: Scenario,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    match generator {
        Generator::Wrk => wrk::run(addr, CONNECTIONS, duration, &scenario.script, scratch),
        Generator::InTree => Ok(Sample::from(
            &load::run(addr, CONNECTIONS, duration, None, scenario.make).await?,
        )),
    }
}

/// A `GET path` with these headers, every time.
fn fixed_get(addr: SocketAddr, path: &str, headers: &[(&'static str, String)]) -> Scenario {
    let owned: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    let (path_for_make, headers_for_make) = (path.to_owned(), headers.to_vec());
    Scenario {
        make: Arc::new(move |_| {
            let headers: Vec<(&str, &str)> = headers_for_make
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            request(Method::GET, addr, &path_for_make, &headers, None)
        }),
        script: wrk::Script::Fixed {
            method: "GET",
            path: path.to_owned(),
            headers: owned,
            body: None,
        },
    }
}

/// The sample with the median rate of `samples` (the lower middle one of an even count).
fn median(mut samples: Vec<Sample>) -> anyhow::Result<Sample> {
    samples.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let middle = samples.len().saturating_sub(1) / 2;
    samples
        .into_iter()
        .nth(middle)
        .context("no sample to take the median of")
}

/// Rounds of the bare reference and linkbox's health endpoint, alternated.
const SIDE_BY_SIDE_ROUNDS: usize = 3;
/// Links stored for the memory-per-link rows (1M with `--million`).
const MEMORY_LINKS: u64 = 100_000;
const MEMORY_LINKS_QUICK: u64 = 20_000;

async fn measure(
    binary: &Path,
    bare: &Path,
    options: &Measure,
    out: &Path,
) -> anyhow::Result<Report> {
    let Measure { quick, million } = *options;
    let scratch = out.join("wrk");
    let generator = Generator::pick();
    let (server, started) = Server::start(binary, &[])?;
    let addr = server.addr;
    let startup = first_answer(addr, started).await?;
    let idle_rss_kib = server.rss_kib()?;
    let (reference, _) = Server::spawn(bare, &["127.0.0.1:0".as_ref()], &[], Stdio::inherit())?;
    let duration = if quick {
        Duration::from_secs(1)
    } else {
        SCENARIO
    };
    let mut report = Report::new(&generator.describe(), startup, idle_rss_kib);

    // The reference and the health endpoint side by side: alternated, medians kept.
    let rounds = if quick { 1 } else { SIDE_BY_SIDE_ROUNDS };
    let (mut bare_runs, mut health_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let scenario = fixed_get(reference.addr, "/", &[]);
        bare_runs.push(drive(generator, reference.addr, duration, scenario, &scratch).await?);
        let scenario = fixed_get(addr, "/_sandbox/health", &[]);
        health_runs.push(drive(generator, addr, duration, scenario, &scratch).await?);
    }
    report.add(REFERENCE, median(bare_runs)?, None);
    report.add(HEALTH, median(health_runs)?, None);

    // The create's requests side by side, alternated like the health check, medians kept:
    // at the bare reference (what the generator and the kernel spend on a request of that
    // shape), at a fresh linkbox in memory, and at a fresh linkbox writing through to a
    // fresh state file. The two ratios the targets are stated in (create to the bare
    // reference, `--state` to in memory) are then of runs a few seconds apart, not of rows
    // a minute apart on a machine whose speed moves from one minute to the next.
    // What each server's threads spent on these requests is counted too, over all rounds:
    // with `--state`, how a create's cost divides between the workers, the writer and the
    // applier.
    let (mut bare_posts, mut creates, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    let mut bare_gets = Vec::new();
    let mut spent: [Counted; 3] = Default::default();
    for _ in 0..rounds {
        // The reference again, so that create's ratio to it is of runs seconds apart too.
        let scenario = fixed_get(reference.addr, "/", &[]);
        bare_gets.push(drive(generator, reference.addr, duration, scenario, &scratch).await?);
        let small = Scenario {
            make: create_links(reference.addr),
            script: wrk::small_creates(&KEYS),
        };
        let (sample, threads) = counted(&reference, generator, duration, small, &scratch).await?;
        spent[0].add(&sample, threads);
        bare_posts.push(sample);
        let (fresh, _) = Server::start(binary, &[])?;
        let (sample, threads) = small_creates(fresh, duration, generator, &scratch).await?;
        spent[1].add(&sample, threads);
        creates.push(sample);
        let (sample, threads) =
            with_state_file(binary, state_path(out), duration, generator, &scratch).await?;
        spent[2].add(&sample, threads);
        stored.push(sample);
    }
    drop(reference);
    report.note_create_rounds_reference(median(bare_gets)?.per_second);
    report.add(BARE_POST, median(bare_posts)?, None);
    report.add_compared(CREATE, median(creates)?, BARE_POST, "bare POST");
    for (name, counted) in [BARE_POST, CREATE, STATE_ROW].into_iter().zip(&spent) {
        report.note_cpu(name, counted.per_request());
    }
    let realistic = Scenario {
        make: realistic_links(addr, &KEYS),
        script: wrk::realistic_creates(&KEYS),
    };
    let outcome = drive(generator, addr, duration, realistic, &scratch).await?;
    report.add(
        "POST /partner/links, seeder's bodies",
        &outcome,
        Some(HEALTH),
    );
    report.add_compared(STATE_ROW, median(stored)?, CREATE, "in memory");
    report.add_compared(
        LOGGED_ROW,
        &with_request_log(binary, duration, generator, &scratch).await?,
        CREATE,
        "log off",
    );
    report.add_compared(
        DEAD_RECEIVERS_ROW,
        &with_dead_receivers(binary, duration, generator, &scratch).await?,
        CREATE,
        "no webhook URL",
    );
    report.add_compared(
        LIVE_RECEIVER_ROW,
        &with_live_receiver(binary, bare, duration, generator, &scratch).await?,
        CREATE,
        "no webhook URL",
    );

    let link_id = create_one(addr).await?;
    let path = format!("/partner/links/{link_id}");
    let scenario = fixed_get(addr, &path, &[("x-api-key", KEYS[0].to_owned())]);
    let outcome = drive(generator, addr, duration, scenario, &scratch).await?;
    report.add("GET /partner/links/{id}", &outcome, Some(HEALTH));

    let scenario = fixed_get(
        addr,
        "/partner/links?limit=20",
        &[("x-api-key", KEYS[1].to_owned())],
    );
    let outcome = drive(generator, addr, duration, scenario, &scratch).await?;
    report.add("GET /partner/links?limit=20", &outcome, Some(HEALTH));

    let mixed = Scenario {
        make: mixed(addr, KEYS[0], &link_id),
        script: wrk::mixed(KEYS[0], &link_id),
    };
    let outcome = drive(generator, addr, duration, mixed, &scratch).await?;
    report.add(
        "mixed: 7 get, 1 list, 2 realistic creates",
        &outcome,
        Some(HEALTH),
    );

    let leaf = LeafFixture::create(addr).await?;
    let authorization = format!("Bearer {}", leaf.token);
    let create_path = format!(
        "/services/widgets/api/magic-link/users/{}/provider",
        leaf.user_id
    );
    let leaf_body = "{\"expiresIn\":3600,\"allowedProviders\":[\"JohnDeere\"]}";
    let leaf_create = Scenario {
        make: {
            let (authorization, create_path) = (authorization.clone(), create_path.clone());
            Arc::new(move |_| {
                request(
                    Method::POST,
                    addr,
                    &create_path,
                    &[("authorization", &authorization)],
                    Some(leaf_body.into()),
                )
            })
        },
        script: wrk::Script::Fixed {
            method: "POST",
            path: create_path,
            headers: vec![("Authorization".into(), authorization.clone())],
            body: Some(leaf_body.into()),
        },
    };
    let outcome = drive(generator, addr, duration, leaf_create, &scratch).await?;
    report.add("POST Leaf magic-link (provider)", &outcome, Some(HEALTH));
    let farms = Scenario {
        make: leaf_farms(addr, &authorization),
        script: wrk::leaf_farms(&authorization),
    };
    let outcome = drive(generator, addr, duration, farms, &scratch).await?;
    report.add(
        "POST Leaf magic-link, a new farm each",
        &outcome,
        Some(HEALTH),
    );
    let get_path = format!("/services/widgets/api/magic-link/provider/{}", leaf.link_id);
    let scenario = fixed_get(addr, &get_path, &[("authorization", authorization)]);
    let outcome = drive(generator, addr, duration, scenario, &scratch).await?;
    report.add("GET Leaf magic-link", &outcome, Some(HEALTH));

    soak::run(addr, duration, &mut report).await?;
    drop(server);

    let figures = shadow::measure(binary, duration).await?;
    report.add(shadow::DIRECT, &figures.direct, None);
    report.add_compared(
        shadow::SHADOWED,
        &figures.shadowed,
        shadow::DIRECT,
        "direct",
    );
    println!(
        "shadow mode adds {:.3} ms at p50 ({:.3} ms direct, {:.3} ms through --shadow-m2m; one connection)",
        figures.added_p50_ms(),
        figures.direct.quantile_ms(0.5),
        figures.shadowed.quantile_ms(0.5),
    );

    // Memory per link, each kind in a fresh process: bare links, then the seeder's.
    let links = if quick {
        MEMORY_LINKS_QUICK
    } else {
        MEMORY_LINKS
    };
    let mut counts = vec![links];
    if million {
        counts.push(GROWTH_LINKS);
    }
    for count in counts {
        let (links, before, after) = fill(binary, count, bare_links).await?;
        report.note_memory(&format!("bare links, {count}"), links, before, after);
        let (links, before, after) =
            fill(binary, count, |addr| realistic_links(addr, &KEYS[..1])).await?;
        report.note_memory(&format!("seeder's links, {count}"), links, before, after);
        let (links, before, after) = seeded(binary, count).await?;
        report.note_memory(
            &format!("seeded through the control API, {count}"),
            links,
            before,
            after,
        );
    }

    if !quick {
        let (server, _) = Server::start(binary, &[])?;
        let addr = server.addr;
        let growth_key = "m2m_test_growth00000000000000000000000000";
        let grow: MakeRequest = Arc::new(move |n| {
            request(
                Method::POST,
                addr,
                "/partner/links",
                &[("x-api-key", growth_key)],
                Some(format!(
                    "{{\"referenceId\":\"g-{}\"}}",
                    wrk::GROWTH_BASE + n
                )),
            )
        });
        let before = server.rss_kib()?;
        let outcome = match generator {
            Generator::Wrk => grown_by_wrk(addr, growth_key, &scratch).await?,
            Generator::InTree => Sample::from(
                &load::run(addr, CONNECTIONS, GROWTH_LIMIT, Some(GROWTH_LINKS), grow).await?,
            ),
        };
        let after = server.rss_kib()?;
        let links = links_of(addr, growth_key).await?;
        report.add("POST /partner/links to 1M in one partner", &outcome, None);
        report.note_memory("growth to 1M links in one partner", links, before, after);
    }
    Ok(report)
}

/// The most the growth phase may take.
const GROWTH_LIMIT: Duration = Duration::from_secs(600);

/// The growth phase driven by wrk: [`GROWTH_LINKS`] creates by `key`, however long they
/// take. Each wrk thread stops at its share, and wrk is interrupted once the partner
/// holds them all, so its rate is of the time the creates took.
async fn grown_by_wrk(addr: SocketAddr, key: &str, scratch: &Path) -> anyhow::Result<Sample> {
    let script = wrk::growth(key, GROWTH_LINKS);
    let mut running = wrk::start(addr, CONNECTIONS, GROWTH_LIMIT, &script, scratch)?;
    while !running.exited()? {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if links_of(addr, key).await? >= GROWTH_LINKS {
            break;
        }
    }
    running.finish()
}

/// How many links the partner of `key` holds.
async fn links_of(addr: SocketAddr, key: &str) -> anyhow::Result<u64> {
    let page = call(
        addr,
        request(
            Method::GET,
            addr,
            "/partner/links?limit=1",
            &[("x-api-key", key)],
            None,
        ),
    )
    .await?;
    page["data"]["pagination"]["total"]
        .as_u64()
        .with_context(|| format!("no pagination.total in {page}"))
}

/// What `measure` is asked for.
#[derive(Debug, Clone, Copy)]
struct Measure {
    quick: bool,
    /// Memory per link at 1M links too.
    million: bool,
}

const HEALTH: &str = "GET /_sandbox/health";
/// The bare reference answering the create row's requests.
const BARE_POST: &str = "bare warp: POST, the create's requests";

fn state_path(out: &Path) -> std::path::PathBuf {
    out.join("state.db")
}

/// A fresh linkbox given `count` links by one partner (the in-tree generator: it stops at a
/// count), and its resident memory before and after: (links stored, KiB, KiB).
async fn fill(
    binary: &Path,
    count: u64,
    make: impl Fn(SocketAddr) -> MakeRequest,
) -> anyhow::Result<(u64, u64, u64)> {
    let (outcome, before, after) = sent(binary, count, CONNECTIONS, make).await?;
    Ok((outcome.requests, before, after))
}

/// A fresh linkbox sent `requests` requests over `connections`, and its resident memory
/// before and after.
async fn sent(
    binary: &Path,
    requests: u64,
    connections: usize,
    make: impl Fn(SocketAddr) -> MakeRequest,
) -> anyhow::Result<(load::Outcome, u64, u64)> {
    let (server, _) = Server::start(binary, &[])?;
    create_one(server.addr).await?;
    let before = server.rss_kib()?;
    let outcome = load::run(
        server.addr,
        connections,
        Duration::from_secs(1200),
        Some(requests),
        make(server.addr),
    )
    .await?;
    let after = server.rss_kib()?;
    Ok((outcome, before, after))
}

/// Links one `POST /_sandbox/seed` makes in [`seeded`]: the most it takes.
const SEED_BATCH: u64 = 1_000;

/// A fresh linkbox given `count` links by `POST /_sandbox/seed`, a thousand a call, four
/// calls at a time: the seeder's whole mix (opened links with data requests, operations,
/// cancellations, revocations), as a QA team fills a shared sandbox. (links, KiB, KiB).
async fn seeded(binary: &Path, count: u64) -> anyhow::Result<(u64, u64, u64)> {
    let seed = |addr| -> MakeRequest {
        Arc::new(move |n| {
            request(
                Method::POST,
                addr,
                "/_sandbox/seed",
                &[("x-api-key", KEYS[0]), ("content-type", "application/json")],
                Some(format!(
                    "{{\"api\":\"m2m\",\"count\":{SEED_BATCH},\"rngSeed\":{n}}}"
                )),
            )
        })
    };
    let (outcome, before, after) = sent(binary, count.div_ceil(SEED_BATCH), 4, seed).await?;
    anyhow::ensure!(
        outcome.errors == 0,
        "{} of the seed calls failed",
        outcome.errors
    );
    Ok((outcome.requests * SEED_BATCH, before, after))
}

/// Create-link with nothing but a reference id, one partner.
fn bare_links(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", KEYS[0])],
            Some(format!("{{\"referenceId\":\"m-{n}\"}}")),
        )
    })
}

/// Create-link with the seeder's kind of body (the same as [`wrk::realistic_creates`]'s),
/// `keys` in turn.
fn realistic_links(addr: SocketAddr, keys: &[&'static str]) -> MakeRequest {
    let keys = keys.to_vec();
    Arc::new(move |n| {
        let key = keys[(n % keys.len() as u64) as usize];
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", key)],
            Some(realistic_body(wrk::REALISTIC_BASE + n)),
        )
    })
}

/// The `n`-th body of the seeder's kind: a four-part name, a CURP-shaped id, a payment
/// method, and `metadata` with an order id and a campaign.
fn realistic_body(n: u64) -> String {
    const FIRSTS: [&str; 8] = [
        "María", "José", "Juan", "Ana", "Luis", "Sofía", "Carlos", "Elena",
    ];
    const LASTS: [&str; 8] = [
        "García",
        "Hernández",
        "López",
        "Martínez",
        "González",
        "Pérez",
        "Sánchez",
        "Ramírez",
    ];
    const CAMPAIGNS: [&str; 3] = ["spring-promo", "referral", "organic"];
    let pick = |list: &[&'static str], i: u64| list[(i % list.len() as u64) as usize];
    let payment = if n.is_multiple_of(5) {
        format!(
            "{{\"type\":\"cash\",\"cash\":{{\"provider\":\"OXXO\",\"reference\":\"{:010}\"}}}}",
            n % 10_000_000_000
        )
    } else {
        format!(
            "{{\"type\":\"bank_account\",\"bankAccount\":{{\"country\":\"MX\",\
             \"accountNumber\":\"{n:018}\"}}}}"
        )
    };
    let (yy, mm, dd) = (n % 50 + 50, n % 12 + 1, n % 28 + 1);
    format!(
        "{{\"referenceId\":\"cust-{n}\",\"language\":\"{}\",\"metadata\":{{\"orderId\":\
         \"ORD-{:06}\",\"campaign\":\"{}\"}},\"userData\":{{\"name\":{{\"firstName\":\"{}\",\
         \"secondName\":\"{}\",\"lastName\":\"{}\",\"secondLastName\":\"{}\"}},\"idNumber\":\
         \"GAXL{yy:02}{mm:02}{dd:02}HDFRRR{:02}\",\"idType\":\"CURP\",\"dob\":\
         \"19{yy:02}-{mm:02}-{dd:02}\",\"paymentMethod\":{payment}}}}}",
        if n % 5 < 3 { "es" } else { "en" },
        n % 1_000_000,
        pick(&CAMPAIGNS, n),
        pick(&FIRSTS, n),
        pick(&FIRSTS, n / 8),
        pick(&LASTS, n / 3),
        pick(&LASTS, n / 5),
        n % 100,
    )
}

/// Of every ten requests, seven read `link_id`, one lists the first page and two create a
/// link with the seeder's kind of body — as [`wrk::mixed`].
fn mixed(addr: SocketAddr, key: &'static str, link_id: &str) -> MakeRequest {
    let path = format!("/partner/links/{link_id}");
    Arc::new(move |n| match n % 10 {
        0..=6 => request(Method::GET, addr, &path, &[("x-api-key", key)], None),
        7 => request(
            Method::GET,
            addr,
            "/partner/links?limit=20",
            &[("x-api-key", key)],
            None,
        ),
        _ => request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", key)],
            Some(realistic_body(wrk::MIXED_BASE + n)),
        ),
    })
}

/// The row of create-link with `--state`.
const STATE_ROW: &str = "POST /partner/links --state FILE";
/// Create-link with linkbox's default log: one `info` line per request.
const LOGGED_ROW: &str = "POST /partner/links, request log on";
/// The row of creates while every partner's webhook receiver is down.
const DEAD_RECEIVERS_ROW: &str = "POST /partner/links, every receiver down";
/// The row of creates each delivered to a live receiver.
const LIVE_RECEIVER_ROW: &str = "POST /partner/links, each delivered";

/// The create-link request of every scenario: four partners in turn, each body distinct.
fn create_links(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        let key = KEYS[(n % KEYS.len() as u64) as usize];
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", key)],
            Some(format!(
                "{{\"referenceId\":\"bench-{n}\",\"expiresInMinutes\":120,\
                 \"metadata\":{{\"orderId\":\"ORD-{n}\"}},\"language\":\"es\"}}"
            )),
        )
    })
}

/// Leaf magic links by `externalId`, a new farm (and so a new Leaf user) each.
fn leaf_farms(addr: SocketAddr, authorization: &str) -> MakeRequest {
    let authorization = authorization.to_owned();
    Arc::new(move |n| {
        request(
            Method::POST,
            addr,
            "/services/widgets/api/magic-link/provider",
            &[("authorization", &authorization)],
            Some(format!(
                "{{\"externalId\":\"farm-{}\",\"allowedProviders\":[\"JohnDeere\"]}}",
                wrk::FARMS_BASE + n
            )),
        )
    })
}

/// Create-link against a second linkbox writing through to a fresh state file, with the
/// same connections for the same time as the in-memory run.
async fn with_state_file(
    binary: &Path,
    state: std::path::PathBuf,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<(Sample, Option<Threads>)> {
    for suffix in ["", "-wal", "-shm", "-holder", "-log", "-log.applying"] {
        let mut path = state.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    let (server, _) = Server::start(binary, &["--state".as_ref(), state.as_os_str()])?;
    small_creates(server, duration, generator, scratch).await
}

/// The small create-link scenario against `server`, which is stopped after it, and what
/// the server's threads spent on it.
async fn small_creates(
    server: Server,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<(Sample, Option<Threads>)> {
    let scenario = Scenario {
        make: create_links(server.addr),
        script: wrk::small_creates(&KEYS),
    };
    counted(&server, generator, duration, scenario, scratch).await
}

/// `scenario` against `server`, and the CPU the server's threads spent meanwhile (`None`
/// where `/proc` cannot say).
async fn counted(
    server: &Server,
    generator: Generator,
    duration: Duration,
    scenario: Scenario,
    scratch: &Path,
) -> anyhow::Result<(Sample, Option<Threads>)> {
    let pid = server.child.id();
    let before = Threads::of(pid);
    let sample = drive(generator, server.addr, duration, scenario, scratch).await?;
    let spent = before.and_then(|before| Some(Threads::of(pid)?.since(&before)));
    Ok((sample, spent))
}

/// A row's requests and its server's CPU, summed over rounds.
#[derive(Default)]
struct Counted {
    requests: u64,
    threads: Threads,
    /// Whether some round's CPU could not be read: a split of the other rounds over all
    /// the requests would understate it, so none is shown.
    unread: bool,
}

impl Counted {
    fn add(&mut self, sample: &Sample, threads: Option<Threads>) {
        match threads {
            Some(threads) => self.threads.add(&threads),
            None => self.unread = true,
        }
        self.requests += sample.requests;
    }

    fn per_request(&self) -> Vec<cpu::Share> {
        if self.unread {
            return Vec::new();
        }
        self.threads.per_request(self.requests)
    }
}

/// The create-link request against a fresh server whose request log is on, as it is by
/// default (the other rows run with `LINKBOX_LOG=warn`).
async fn with_request_log(
    binary: &Path,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let server = Server::start_logged(binary)?;
    Ok(small_creates(server, duration, generator, scratch).await?.0)
}

/// The create-link request against a fresh server where every partner's webhook URL is a
/// closed port: each create's delivery fails and waits for its retries, pending, until the
/// partner's cap turns further ones away. A careless neighbour's receiver being down must
/// not slow everyone's creates (it once made each one move the whole delivery list).
async fn with_dead_receivers(
    binary: &Path,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?
    };
    with_receiver(binary, closed, duration, generator, scratch).await
}

/// The create-link request against a fresh server where every partner's webhook URL is a
/// bare server on loopback answering 201: each create's `link.created` is delivered, a
/// real HTTP request on the same cores. Deliveries queue up pending whenever the receiver
/// is slower than the creates (the engine once walked all of them on each wake).
async fn with_live_receiver(
    binary: &Path,
    bare: &Path,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let (receiver, _) = Server::spawn(bare, &["127.0.0.1:0".as_ref()], &[], Stdio::inherit())?;
    let outcome = with_receiver(binary, receiver.addr, duration, generator, scratch).await;
    drop(receiver);
    outcome
}

/// The create-link request against a fresh server whose bench partners all have their
/// webhook URL at `receiver`.
async fn with_receiver(
    binary: &Path,
    receiver: SocketAddr,
    duration: Duration,
    generator: Generator,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let (server, _) = Server::start(binary, &[])?;
    let config = format!("{{\"url\":\"http://{receiver}/hook\"}}");
    for key in KEYS {
        call(
            server.addr,
            request(
                Method::PUT,
                server.addr,
                "/_sandbox/m2m/webhook-config",
                &[("x-api-key", key)],
                Some(config.clone()),
            ),
        )
        .await?;
    }
    Ok(small_creates(server, duration, generator, scratch).await?.0)
}

/// The create-link request against each peer, as far as each can be installed and started.
async fn measure_peers(root: &Path, dir: &Path, report: &mut Report) {
    let generator = Generator::pick();
    let scratch = dir.join("wrk");
    if let Err(error) = peers::install(dir) {
        report.skip_peers(&format!("{error:#}"));
        return;
    }
    let document = root.join("openapi/linkbox.openapi.json");
    let started = [peers::wiremock(dir), peers::prism(dir, &document)];
    for peer in started {
        let peer = match peer {
            Ok(peer) => peer,
            Err(error) => {
                report.skip_peers(&format!("{error:#}"));
                continue;
            }
        };
        let addr = peer.addr;
        let create: MakeRequest = Arc::new(move |n| {
            request(
                Method::POST,
                addr,
                "/partner/links",
                &[("x-api-key", KEYS[0])],
                Some(format!(
                    "{{\"referenceId\":\"bench-{n}\",\"expiresInMinutes\":120,\
                     \"metadata\":{{\"orderId\":\"ORD-{n}\"}},\"language\":\"es\"}}"
                )),
            )
        });
        // A short warm-up (the JVM compiles as it goes), then the measured run.
        let _ = load::run(
            addr,
            CONNECTIONS,
            Duration::from_secs(3),
            None,
            create.clone(),
        )
        .await;
        let scenario = Scenario {
            make: create,
            script: wrk::small_creates(&KEYS[..1]),
        };
        match drive(generator, addr, SCENARIO, scenario, &scratch).await {
            Ok(sample) => report.add_peer(peer.name, sample),
            Err(error) => report.skip_peers(&format!("{}: {error:#}", peer.name)),
        }
    }
}

/// Time from process start to the first answered request.
async fn first_answer(addr: SocketAddr, started: Instant) -> anyhow::Result<Duration> {
    loop {
        let probe: MakeRequest =
            Arc::new(move |_| request(Method::GET, addr, "/_sandbox/health", &[], None));
        if let Ok(outcome) = load::run(addr, 1, Duration::from_secs(5), Some(1), probe).await
            && outcome.requests == 1
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("linkbox did not answer within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sends one request and reads its JSON answer.
async fn call(
    addr: SocketAddr,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> anyhow::Result<serde_json::Value> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

/// A Leaf account with one user and one provider link, for the Leaf scenarios.
struct LeafFixture {
    token: String,
    user_id: String,
    link_id: String,
}

impl LeafFixture {
    async fn create(addr: SocketAddr) -> anyhow::Result<LeafFixture> {
        let auth = call(
            addr,
            request(
                Method::POST,
                addr,
                "/api/authenticate",
                &[],
                Some("{\"username\":\"bench\",\"password\":\"bench\"}".into()),
            ),
        )
        .await?;
        let token = auth["id_token"].as_str().context("no id_token")?.to_owned();
        let authorization = format!("Bearer {token}");
        let created = call(
            addr,
            request(
                Method::POST,
                addr,
                "/services/widgets/api/magic-link/provider",
                &[("authorization", &authorization)],
                Some("{\"externalId\":\"bench-farm\"}".into()),
            ),
        )
        .await?;
        Ok(LeafFixture {
            token,
            user_id: created["leafUserId"]
                .as_str()
                .context("no leafUserId")?
                .to_owned(),
            link_id: created["id"]
                .as_str()
                .context("no magic link id")?
                .to_owned(),
        })
    }
}

async fn create_one(addr: SocketAddr) -> anyhow::Result<String> {
    let value = call(
        addr,
        request(
            Method::POST,
            addr,
            "/partner/links",
            &[("x-api-key", KEYS[0])],
            Some("{\"referenceId\":\"bench-get\"}".into()),
        ),
    )
    .await?;
    value["data"]["linkId"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no linkId in the create response {value}"))
}
