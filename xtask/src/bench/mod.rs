//! `cargo xtask bench`: starts a release build of linkbox (the `profiling` profile: release
//! with line tables, for perf) on loopback and measures it with
//! the in-tree load generator ([`load`]), side by side in one run: the health endpoint (the
//! ceiling of this process on this machine), create/get/list links, the store growing past a
//! million links, memory per link, idle memory and start-up time; create-link again with
//! `--state` (a fresh SQLite file), as a ratio of the in-memory rate — and the same
//! create-link request against WireMock and Prism ([`peers`]); and a soak ([`soak`]): normal
//! traffic's p99 alone, then while fresh keys flood in and slow clients hold connections
//! open. Prints a table and writes `target/bench/bench.json` and `target/bench/bench.svg`.
//!
//! With `--baseline NAME=BINARY` (repeatable) it measures instead this build beside the
//! named builds, round after round, and prints their ratios ([`compare`]); the table is also
//! written to `target/bench/compare.txt`.

mod compare;
mod load;
mod peers;
mod report;
mod soak;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::Method;

use load::{MakeRequest, request};
pub use report::Report;

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
}

pub fn run(root: &Path, options: Options) -> anyhow::Result<()> {
    let Options {
        quick,
        baselines,
        binary,
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
    let mut report = runtime.block_on(measure(&binary, quick, &out.join("state.db")))?;
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

/// Builds linkbox with the `profiling` profile and returns the binary's path.
fn build(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--profile",
            "profiling",
            "--quiet",
            "-p",
            "linkbox",
        ])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("profiling build failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("profiling/linkbox"))
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
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--addr", "127.0.0.1:0", "--rate-limits", "off"])
            .args(extra)
            .env("LINKBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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

async fn measure(binary: &Path, quick: bool, state: &Path) -> anyhow::Result<Report> {
    let (server, started) = Server::start(binary, &[])?;
    let addr = server.addr;
    let startup = first_answer(addr, started).await?;
    let idle_rss_kib = server.rss_kib()?;
    let duration = if quick {
        Duration::from_secs(1)
    } else {
        SCENARIO
    };
    let mut report = Report::new(startup, idle_rss_kib);

    let health: MakeRequest =
        Arc::new(move |_| request(Method::GET, addr, "/_sandbox/health", &[], None));
    let outcome = load::run(addr, CONNECTIONS, duration, None, health).await?;
    report.add("GET /_sandbox/health", &outcome, None);

    let before = server.rss_kib()?;
    let outcome = load::run(addr, CONNECTIONS, duration, None, create_links(addr)).await?;
    report.add(
        "POST /partner/links",
        &outcome,
        Some("GET /_sandbox/health"),
    );
    let created = outcome.requests;
    report.add_compared(
        STATE_ROW,
        &with_state_file(binary, state, duration).await?,
        "POST /partner/links",
        "in memory",
    );

    let link_id = create_one(addr).await?;
    let path = format!("/partner/links/{link_id}");
    let get: MakeRequest =
        Arc::new(move |_| request(Method::GET, addr, &path, &[("x-api-key", KEYS[0])], None));
    let outcome = load::run(addr, CONNECTIONS, duration, None, get).await?;
    report.add(
        "GET /partner/links/{id}",
        &outcome,
        Some("GET /_sandbox/health"),
    );

    let list: MakeRequest = Arc::new(move |_| {
        request(
            Method::GET,
            addr,
            "/partner/links?limit=20",
            &[("x-api-key", KEYS[1])],
            None,
        )
    });
    let outcome = load::run(addr, CONNECTIONS, duration, None, list).await?;
    report.add(
        "GET /partner/links?limit=20",
        &outcome,
        Some("GET /_sandbox/health"),
    );

    let after = server.rss_kib()?;
    report.note_memory(created, before, after);

    let leaf = LeafFixture::create(addr).await?;
    let authorization = format!("Bearer {}", leaf.token);
    let create_path = format!(
        "/services/widgets/api/magic-link/users/{}/provider",
        leaf.user_id
    );
    let leaf_create: MakeRequest = {
        let authorization = authorization.clone();
        Arc::new(move |_| {
            request(
                Method::POST,
                addr,
                &create_path,
                &[("authorization", &authorization)],
                Some("{\"expiresIn\":3600,\"allowedProviders\":[\"JohnDeere\"]}".into()),
            )
        })
    };
    let outcome = load::run(addr, CONNECTIONS, duration, None, leaf_create).await?;
    report.add(
        "POST Leaf magic-link (provider)",
        &outcome,
        Some("GET /_sandbox/health"),
    );
    let get_path = format!("/services/widgets/api/magic-link/provider/{}", leaf.link_id);
    let leaf_get: MakeRequest = Arc::new(move |_| {
        request(
            Method::GET,
            addr,
            &get_path,
            &[("authorization", &authorization)],
            None,
        )
    });
    let outcome = load::run(addr, CONNECTIONS, duration, None, leaf_get).await?;
    report.add(
        "GET Leaf magic-link",
        &outcome,
        Some("GET /_sandbox/health"),
    );

    soak::run(addr, duration, &mut report).await?;

    if !quick {
        let growth_key = "m2m_test_growth00000000000000000000000000";
        let grow: MakeRequest = Arc::new(move |n| {
            request(
                Method::POST,
                addr,
                "/partner/links",
                &[("x-api-key", growth_key)],
                Some(format!("{{\"referenceId\":\"g-{n}\"}}")),
            )
        });
        let before = server.rss_kib()?;
        let outcome = load::run(
            addr,
            CONNECTIONS,
            Duration::from_secs(600),
            Some(GROWTH_LINKS),
            grow,
        )
        .await?;
        let after = server.rss_kib()?;
        report.add("POST /partner/links to 1M in one partner", &outcome, None);
        report.note_growth(outcome.requests, before, after);
    }
    Ok(report)
}

/// The row of create-link with `--state`.
const STATE_ROW: &str = "POST /partner/links --state FILE";

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

/// Create-link against a second linkbox writing through to a fresh state file, with the
/// same connections for the same time as the in-memory run.
async fn with_state_file(
    binary: &Path,
    state: &Path,
    duration: Duration,
) -> anyhow::Result<load::Outcome> {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = state.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    let (server, _) = Server::start(binary, &["--state".as_ref(), state.as_os_str()])?;
    let outcome = load::run(
        server.addr,
        CONNECTIONS,
        duration,
        None,
        create_links(server.addr),
    )
    .await?;
    drop(server);
    Ok(outcome)
}

/// The create-link request against each peer, as far as each can be installed and started.
async fn measure_peers(root: &Path, dir: &Path, report: &mut Report) {
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
        match load::run(addr, CONNECTIONS, SCENARIO, None, create).await {
            Ok(outcome) => report.add_peer(peer.name, &outcome),
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
