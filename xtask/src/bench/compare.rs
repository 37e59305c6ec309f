//! `cargo xtask bench --baseline NAME=BINARY`: this build beside other builds of linkbox, in
//! one run on one machine, as ratios.
//!
//! A refactor's promise that "performance does not regress" is only as good as the comparison
//! behind it, and two tables taken minutes apart on a shared two-core machine differ by more
//! than most regressions. So every build serves the same core scenarios (the health ceiling,
//! create, get and list links) in turn, round after round (the order rotates each round so no
//! build always runs first on a cold machine), and each build's figure is its median over the
//! rounds; the table gives each build's rate as a ratio of the first baseline's. Start-up time
//! and idle memory come from the same processes.
//!
//! Only scenarios every build of linkbox has served since the first version are measured, so
//! an old commit's binary (`git worktree add` it, `cargo build --release`) can be compared
//! as is.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;

use super::load::{self, MakeRequest, request};
use super::{CONNECTIONS, KEYS, Server, create_links, create_one, first_answer};

/// Rounds per build: each build's figure is its median.
const ROUNDS: usize = 3;

/// A build of linkbox to measure, by the name the table gives it.
#[derive(Debug, Clone)]
pub struct Build {
    pub name: String,
    pub binary: PathBuf,
}

impl Build {
    /// `NAME=PATH` as given to `--baseline`.
    pub fn parse(arg: &str) -> anyhow::Result<Build> {
        let (name, path) = arg
            .split_once('=')
            .with_context(|| format!("--baseline takes NAME=BINARY, not {arg:?}"))?;
        let binary = PathBuf::from(path);
        if name.is_empty() || !binary.is_file() {
            bail!("--baseline {arg:?}: {path:?} is not a linkbox binary");
        }
        Ok(Build {
            name: name.to_owned(),
            binary,
        })
    }
}

/// The scenarios of the comparison, in the order they run on each server.
const SCENARIOS: [&str; 4] = [
    "GET /_sandbox/health",
    "POST /partner/links",
    "GET /partner/links/{id}",
    "GET /partner/links?limit=20",
];

/// One build's figures from one round.
#[derive(Debug, Clone, Default)]
struct Sample {
    per_second: [f64; SCENARIOS.len()],
    p99_ms: [f64; SCENARIOS.len()],
    startup_ms: f64,
    idle_rss_kib: f64,
}

/// Measures `builds` (the first is what the ratios divide by) and returns the table.
pub async fn run(builds: &[Build], quick: bool) -> anyhow::Result<String> {
    let duration = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); builds.len()];
    for round in 0..ROUNDS {
        for offset in 0..builds.len() {
            let index = (round + offset) % builds.len();
            let sample = measure(&builds[index].binary, duration)
                .await
                .with_context(|| format!("measuring {}", builds[index].name))?;
            samples[index].push(sample);
        }
    }
    Ok(table(builds, &samples, duration))
}

async fn measure(binary: &Path, duration: Duration) -> anyhow::Result<Sample> {
    let (server, started) = Server::start(binary, &[])?;
    let addr = server.addr;
    let startup = first_answer(addr, started).await?;
    let mut sample = Sample {
        startup_ms: startup.as_secs_f64() * 1000.0,
        idle_rss_kib: server.rss_kib()? as f64,
        ..Sample::default()
    };
    let link_id = create_one(addr).await?;
    let makers: [MakeRequest; SCENARIOS.len()] = [
        Arc::new(move |_| request(Method::GET, addr, "/_sandbox/health", &[], None)),
        create_links(addr),
        get_link(addr, link_id),
        Arc::new(move |_| {
            request(
                Method::GET,
                addr,
                "/partner/links?limit=20",
                &[("x-api-key", KEYS[1])],
                None,
            )
        }),
    ];
    for (index, make) in makers.into_iter().enumerate() {
        let outcome = load::run(addr, CONNECTIONS, duration, None, make).await?;
        if outcome.errors > 0 {
            bail!(
                "{}: {} of {} requests failed",
                SCENARIOS[index],
                outcome.errors,
                outcome.requests
            );
        }
        sample.per_second[index] = outcome.per_second();
        sample.p99_ms[index] = outcome.quantile_ms(0.99);
    }
    Ok(sample)
}

fn get_link(addr: SocketAddr, link_id: String) -> MakeRequest {
    let path = format!("/partner/links/{link_id}");
    Arc::new(move |_| request(Method::GET, addr, &path, &[("x-api-key", KEYS[0])], None))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn table(builds: &[Build], samples: &[Vec<Sample>], duration: Duration) -> String {
    let of = |build: usize, pick: &dyn Fn(&Sample) -> f64| {
        median(samples[build].iter().map(pick).collect())
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "builds side by side: {ROUNDS} rounds of {} s per scenario, {CONNECTIONS} connections, \
         medians; ratio = build / {}",
        duration.as_secs(),
        builds[0].name
    );
    let _ = write!(out, "\n{:<30}", "scenario");
    for build in builds {
        let _ = write!(out, " | {:>22}", build.name);
    }
    out.push('\n');
    let mut row = |label: &str, pick: &dyn Fn(&Sample) -> f64, unit: &str| {
        let base = of(0, pick);
        let _ = write!(out, "{label:<30}");
        for build in 0..builds.len() {
            let value = of(build, pick);
            let cell = if build == 0 {
                format!("{value:.1} {unit}")
            } else {
                format!("{value:.1} {unit} ({:.2}x)", value / base)
            };
            let _ = write!(out, " | {cell:>22}");
        }
        out.push('\n');
    };
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        row(scenario, &|s: &Sample| s.per_second[index], "req/s");
        row("  p99", &|s: &Sample| s.p99_ms[index], "ms");
    }
    row("start-up", &|s: &Sample| s.startup_ms, "ms");
    row("idle memory", &|s: &Sample| s.idle_rss_kib / 1024.0, "MiB");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn a_baseline_names_an_existing_file() {
        assert!(Build::parse("old").is_err());
        assert!(Build::parse("old=/nonexistent/linkbox").is_err());
        let this = std::env::current_exe().unwrap();
        let build = Build::parse(&format!("old={}", this.display())).unwrap();
        assert_eq!(build.name, "old");
    }

    #[test]
    fn the_table_divides_by_the_first_build() {
        let builds = [
            Build {
                name: "before".into(),
                binary: PathBuf::new(),
            },
            Build {
                name: "after".into(),
                binary: PathBuf::new(),
            },
        ];
        let sample = |rate: f64| Sample {
            per_second: [rate; SCENARIOS.len()],
            ..Sample::default()
        };
        let samples = vec![vec![sample(100.0)], vec![sample(150.0)]];
        let table = table(&builds, &samples, Duration::from_secs(1));
        let health = table
            .lines()
            .find(|line| line.starts_with("GET /_sandbox/health"))
            .unwrap();
        assert!(health.contains("100.0 req/s"), "{health}");
        assert!(health.contains("150.0 req/s (1.50x)"), "{health}");
    }
}
