//! `wrk` as the benchmark's load generator when it is on `PATH`: a C generator with its own
//! event loop takes less of the two shared cores than the in-tree one, so the rows measure
//! the server rather than the client. Fixed requests are passed as flags; requests that
//! change from one to the next (distinct bodies, a mix of reads and writes) as a Lua
//! script. Rates and latency quantiles are read off `wrk --latency`'s report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use super::report::Sample;

/// Threads wrk runs: one per core of the 2-core machine the issue measured on.
const THREADS: usize = 2;

/// Whether `wrk` can be run.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("wrk"))
}

/// What wrk sends.
pub enum Script {
    /// The same request every time: `method path` with these headers and maybe a JSON body.
    Fixed {
        method: &'static str,
        path: String,
        headers: Vec<(String, String)>,
        body: Option<String>,
    },
    /// A Lua script defining `request()` (and maybe `setup`/`init`).
    Lua(String),
}

/// Drives `addr` for `duration` over `connections` connections.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    script: &Script,
    scratch: &Path,
) -> anyhow::Result<Sample> {
    let output = command(addr, connections, duration, script, scratch)?
        .output()
        .context("cannot run wrk")?;
    report(&output)
}

/// A wrk run in progress, for a scenario that ends at a count rather than a duration:
/// wrk only stops at its duration or on `SIGINT`, so its caller watches the count and
/// [`Running::finish`] interrupts it. wrk then reports the time it ran, not the duration
/// it was given.
///
/// Dropped unfinished (its caller gave up on an error), it kills wrk rather than leave it
/// loading the server until its limit.
pub struct Running {
    /// `None` once [`Running::finish`] has taken it.
    child: Option<Child>,
}

/// Starts wrk on `addr` for at most `limit`.
pub fn start(
    addr: SocketAddr,
    connections: usize,
    limit: Duration,
    script: &Script,
    scratch: &Path,
) -> anyhow::Result<Running> {
    let child = command(addr, connections, limit, script, scratch)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run wrk")?;
    Ok(Running { child: Some(child) })
}

impl Running {
    fn child(&mut self) -> anyhow::Result<&mut Child> {
        self.child.as_mut().context("wrk's run is already finished")
    }

    /// Whether wrk has stopped by itself (its limit reached, or it failed).
    pub fn exited(&mut self) -> anyhow::Result<bool> {
        Ok(self.child()?.try_wait()?.is_some())
    }

    /// Stops wrk if it still runs, and reads its report.
    pub fn finish(mut self) -> anyhow::Result<Sample> {
        let child = self.child()?;
        if child.try_wait()?.is_none() {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .context("cannot run kill")?;
            if !status.success() {
                bail!("cannot interrupt wrk: kill exited with {status}");
            }
        }
        let output = self
            .child
            .take()
            .context("wrk's run is already finished")?
            .wait_with_output()?;
        report(&output)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `wrk` command line of a scenario, with its Lua written to `scratch`.
fn command(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    script: &Script,
    scratch: &Path,
) -> anyhow::Result<Command> {
    if !addr.ip().is_loopback() {
        bail!("refusing to load {addr}: benchmarks only target loopback");
    }
    let mut command = Command::new("wrk");
    command.args([
        "--latency".to_owned(),
        format!("-t{THREADS}"),
        format!("-c{connections}"),
        format!("-d{}s", duration.as_secs().max(1)),
    ]);
    let url = match script {
        Script::Fixed {
            method,
            path,
            headers,
            body,
        } => {
            for (name, value) in headers {
                command.args(["-H", &format!("{name}: {value}")]);
            }
            if let Some(body) = body {
                command.args(["-H", "Content-Type: application/json"]);
                let lua = format!(
                    "wrk.method = {}\nwrk.body = {}\n",
                    lua_string(method),
                    lua_string(body)
                );
                command.arg("-s").arg(write_script(scratch, &lua)?);
            } else if *method != "GET" {
                let lua = format!("wrk.method = {}\n", lua_string(method));
                command.arg("-s").arg(write_script(scratch, &lua)?);
            }
            format!("http://{addr}{path}")
        }
        Script::Lua(lua) => {
            command.arg("-s").arg(write_script(scratch, lua)?);
            format!("http://{addr}/")
        }
    };
    command.arg(url);
    Ok(command)
}

/// The figures of a finished wrk's output, or why it failed.
fn report(output: &Output) -> anyhow::Result<Sample> {
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text)
}

/// Writes a scenario's Lua to a file in `scratch` for `wrk -s`.
fn write_script(scratch: &Path, lua: &str) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(scratch)?;
    let file = scratch.join("scenario.lua");
    std::fs::write(&file, lua)?;
    Ok(file)
}

/// The figures of a `wrk --latency` report.
fn parse(text: &str) -> anyhow::Result<Sample> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    let per_second: f64 = field("Requests/sec:")
        .context("no Requests/sec in wrk's report")?
        .parse()?;
    let requests: u64 = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .context("no request count in wrk's report")?
        .0
        .parse()?;
    let errors = field("Non-2xx or 3xx responses:")
        .map(str::parse::<u64>)
        .transpose()?
        .unwrap_or(0)
        + socket_errors(field("Socket errors:"));
    let p50_ms = millis(field("50%").context("no p50 in wrk's report")?)?;
    let p99_ms = millis(field("99%").context("no p99 in wrk's report")?)?;
    let max_ms = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("Latency"))
        .and_then(|rest| rest.split_whitespace().nth(2))
        .map(millis)
        .transpose()?
        .unwrap_or(p99_ms);
    Ok(Sample {
        per_second,
        p50_ms,
        p99_ms,
        max_ms,
        requests,
        errors: errors.min(requests),
    })
}

/// `connect 0, read 0, write 0, timeout 12` summed.
fn socket_errors(line: Option<&str>) -> u64 {
    line.map(|line| {
        line.split(',')
            .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    })
    .unwrap_or(0)
}

/// wrk's `1.23ms` / `456.00us` / `1.02s` in milliseconds.
fn millis(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(us) = text.strip_suffix("us") {
        (us, 0.001)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60_000.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        bail!("unknown latency {text:?} in wrk's report");
    };
    Ok(number.parse::<f64>()? * scale)
}

/// A Lua string literal of `text`: quotes and backslashes escaped (the scenarios' paths,
/// keys and bodies are ASCII).
fn lua_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Lua: each thread numbers its requests from `base`, apart from the others' (`setup` hands
/// out ids), and `pick(n)` chooses one of `keys` in turn. Scenarios on one server take
/// distinct bases so that their reference ids never collide.
fn prelude(base: u64, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|key| lua_string(key)).collect();
    format!(
        "local threads = 0\n\
         function setup(thread) thread:set(\"tid\", threads); threads = threads + 1 end\n\
         local n = 0\n\
         local keys = {{{}}}\n\
         function next_n() n = n + 1; return {base} + tid * 100000000 + n end\n\
         function pick(i) return keys[(i % #keys) + 1] end\n",
        keys.join(", ")
    )
}

/// Where the realistic creates number their requests from.
pub const REALISTIC_BASE: u64 = 10_000_000_000;
/// Where the mixed workload numbers its requests from.
pub const MIXED_BASE: u64 = 20_000_000_000;

/// Lua building the seeder's kind of create-link body for request `i`: a CURP-shaped
/// `idNumber`, a name of four parts, a payment method, `metadata` with an order id and a
/// campaign — as `linkbox seed` stores them.
const REALISTIC_BODY_LUA: &str = r#"
local firsts = {"María", "José", "Juan", "Ana", "Luis", "Sofía", "Carlos", "Elena"}
local lasts = {"García", "Hernández", "López", "Martínez", "González", "Pérez", "Sánchez", "Ramírez"}
local campaigns = {"spring-promo", "referral", "organic"}
function realistic(i)
  local f, s = firsts[i % 8 + 1], firsts[math.floor(i / 8) % 8 + 1]
  local l, m = lasts[math.floor(i / 3) % 8 + 1], lasts[math.floor(i / 5) % 8 + 1]
  local payment
  if i % 5 == 0 then
    payment = string.format('{"type":"cash","cash":{"provider":"OXXO","reference":"%010d"}}', i % 10000000000)
  else
    payment = string.format('{"type":"bank_account","bankAccount":{"country":"MX","accountNumber":"%018d"}}', i)
  end
  return string.format('{"referenceId":"cust-%d","language":"%s","metadata":{"orderId":"ORD-%06d","campaign":"%s"},' ..
    '"userData":{"name":{"firstName":"%s","secondName":"%s","lastName":"%s","secondLastName":"%s"},' ..
    '"idNumber":"GAXL%02d%02d%02dHDFRRR%02d","idType":"CURP","dob":"19%02d-%02d-%02d","paymentMethod":%s}}',
    i, (i % 5 < 3) and "es" or "en", i % 1000000, campaigns[i % 3 + 1], f, s, l, m,
    i % 50 + 50, i % 12 + 1, i % 28 + 1, i % 100, i % 50 + 50, i % 12 + 1, i % 28 + 1, payment)
end
"#;

/// Create-link with the seeder's bodies, the partners' keys in turn.
pub fn realistic_creates(keys: &[&str]) -> Script {
    Script::Lua(format!(
        "{}{REALISTIC_BODY_LUA}\
         request = function()\n\
           local i = next_n()\n\
           return wrk.format(\"POST\", \"/partner/links\", {{[\"Content-Type\"] = \"application/json\", \
           [\"x-api-key\"] = pick(i)}}, realistic(i))\n\
         end\n",
        prelude(REALISTIC_BASE, keys)
    ))
}

/// Create-link with the small body of the in-tree scenario, the partners' keys in turn.
pub fn small_creates(keys: &[&str]) -> Script {
    Script::Lua(format!(
        "{}request = function()\n\
           local i = next_n()\n\
           local body = string.format('{{\"referenceId\":\"bench-%d\",\"expiresInMinutes\":120,\
         \"metadata\":{{\"orderId\":\"ORD-%d\"}},\"language\":\"es\"}}', i, i)\n\
           return wrk.format(\"POST\", \"/partner/links\", {{[\"Content-Type\"] = \"application/json\", \
           [\"x-api-key\"] = pick(i)}}, body)\n\
         end\n",
        prelude(0, keys)
    ))
}

/// Where the growth phase numbers its requests from.
pub const GROWTH_BASE: u64 = 40_000_000_000;

/// Create-link with a bare body, every request by `key`, each thread stopping once it has
/// created its share of `links`: the store of one partner grows by `links`, and the
/// latency is of every create on the way.
pub fn growth(key: &str, links: u64) -> Script {
    let share = links.div_ceil(THREADS as u64);
    Script::Lua(format!(
        "{}local created = 0\n\
         request = function()\n\
           local body = string.format('{{\"referenceId\":\"g-%d\"}}', next_n())\n\
           return wrk.format(\"POST\", \"/partner/links\", {{[\"Content-Type\"] = \"application/json\", \
           [\"x-api-key\"] = pick(0)}}, body)\n\
         end\n\
         response = function(status, headers, body)\n\
           if status == 201 then created = created + 1 end\n\
           if created >= {share} then wrk.thread:stop() end\n\
         end\n",
        prelude(GROWTH_BASE, &[key])
    ))
}

/// Where the Leaf creates for new farms number their requests from.
pub const FARMS_BASE: u64 = 30_000_000_000;

/// Leaf magic links by `externalId`, a new farm each: every request creates a Leaf user
/// and its link, so the account's users grow with its links.
pub fn leaf_farms(authorization: &str) -> Script {
    Script::Lua(format!(
        "{}request = function()\n\
           local body = string.format('{{\"externalId\":\"farm-%d\",\"allowedProviders\":[\"JohnDeere\"]}}', next_n())\n\
           return wrk.format(\"POST\", \"/services/widgets/api/magic-link/provider\", \
           {{[\"Content-Type\"] = \"application/json\", [\"Authorization\"] = {}}}, body)\n\
         end\n",
        prelude(FARMS_BASE, &[]),
        lua_string(authorization),
    ))
}

/// A mixed workload for one partner: of every ten requests, seven read one link, one
/// lists the first page and two create a realistic link.
pub fn mixed(key: &str, link_id: &str) -> Script {
    Script::Lua(format!(
        "{}{REALISTIC_BODY_LUA}\
         request = function()\n\
           local i = next_n()\n\
           local r = i % 10\n\
           if r < 7 then\n\
             return wrk.format(\"GET\", {}, {{[\"x-api-key\"] = pick(i)}})\n\
           elseif r == 7 then\n\
             return wrk.format(\"GET\", \"/partner/links?limit=20\", {{[\"x-api-key\"] = pick(i)}})\n\
           end\n\
           return wrk.format(\"POST\", \"/partner/links\", {{[\"Content-Type\"] = \"application/json\", \
           [\"x-api-key\"] = pick(i)}}, realistic(i))\n\
         end\n",
        prelude(MIXED_BASE, &[key]),
        lua_string(&format!("/partner/links/{link_id}")),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::*;

    /// Whether the tests that run wrk can: `LINKBOX_WRK_TESTS=1` (set by `.ci/run`, which
    /// installs it) makes a missing wrk a failure rather than a skip.
    fn wrk_or_skip() -> bool {
        if available() {
            return true;
        }
        let required = std::env::var("LINKBOX_WRK_TESTS").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "LINKBOX_WRK_TESTS=1, but wrk cannot be found on PATH"
        );
        eprintln!("skipped: wrk is not on PATH (LINKBOX_WRK_TESTS=1 makes this an error)");
        false
    }

    /// A loopback HTTP/1.1 server answering every request `201 {}`, and how many it has
    /// answered.
    async fn counting_server() -> (SocketAddr, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let answered = Arc::new(AtomicU64::new(0));
        let counter = answered.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let service = hyper::service::service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        http::Response::builder()
                            .status(201)
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (addr, answered)
    }

    /// A directory of a test's own for its Lua, removed when dropped.
    fn scratch(test: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("linkbox-wrk-{test}-"))
            .tempdir()
            .expect("temporary directory")
    }

    /// `GET /`, every time.
    fn get_root() -> Script {
        Script::Fixed {
            method: "GET",
            path: "/".to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `running`'s report, read off the runtime's threads (finishing waits on wrk).
    async fn finished(running: Running) -> Sample {
        tokio::task::spawn_blocking(move || running.finish())
            .await
            .expect("joined")
            .expect("wrk's report")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_growth_script_stops_each_thread_at_its_share() {
        if !wrk_or_skip() {
            return;
        }
        let (addr, answered) = counting_server().await;
        let scratch = scratch("growth");
        let connections = 4;
        let script = growth("m2m_test_growth", 40);
        let mut running = start(
            addr,
            connections,
            Duration::from_secs(120),
            &script,
            scratch.path(),
        )
        .expect("wrk starts");
        let began = Instant::now();
        while answered.load(Ordering::SeqCst) < 40 {
            assert!(!running.exited().expect("wrk's status"), "wrk ended early");
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "40 creates took 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Time for a thread that did not stop to send many more.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answered = answered.load(Ordering::SeqCst);
        let sample = finished(running).await;
        // Each of the two threads stops at its 20th 201; requests still in flight on its
        // other connections then are answered but not waited for.
        assert!(
            (40..=40 + connections as u64).contains(&answered),
            "the server answered {answered} requests, not 40 to 44"
        );
        assert!(sample.requests >= 40 && sample.requests <= answered);
        assert_eq!(sample.errors, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_run_reports_the_time_it_ran() {
        if !wrk_or_skip() {
            return;
        }
        let (addr, answered) = counting_server().await;
        let scratch = scratch("interrupted");
        let script = get_root();
        let running =
            start(addr, 4, Duration::from_secs(120), &script, scratch.path()).expect("wrk starts");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let began = Instant::now();
        let sample = finished(running).await;
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "finish waited for wrk's whole duration"
        );
        assert!(sample.requests > 0 && answered.load(Ordering::SeqCst) >= sample.requests);
        // Over the half second or so it ran, not over the 120 s it was given.
        let seconds = sample.requests as f64 / sample.per_second;
        assert!(seconds < 10.0, "a rate over {seconds:.1} s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_dropped_unfinished_stops_loading_the_server() {
        if !wrk_or_skip() {
            return;
        }
        let (addr, answered) = counting_server().await;
        let scratch = scratch("dropped");
        let script = get_root();
        let running =
            start(addr, 4, Duration::from_secs(120), &script, scratch.path()).expect("wrk starts");
        let began = Instant::now();
        while answered.load(Ordering::SeqCst) == 0 {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "wrk sent nothing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(running);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after_drop = answered.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            answered.load(Ordering::SeqCst),
            after_drop,
            "wrk went on sending after its run was dropped"
        );
    }

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  400.00us  12.50ms   90.00%
    Req/Sec    29.00k     1.00k   31.00k    70.00%
  Latency Distribution
     50%    1.02ms
     75%    1.20ms
     90%    1.50ms
     99%  850.00us
  290000 requests in 5.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  58000.00
Transfer/sec:      8.00MB
";

    #[test]
    fn a_report_gives_rate_quantiles_and_errors() {
        let sample = parse(REPORT).expect("parsed");
        assert_eq!(sample.requests, 290_000);
        assert!((sample.per_second - 58_000.0).abs() < 0.5);
        assert!((sample.p50_ms - 1.02).abs() < 1e-9);
        assert!((sample.p99_ms - 0.85).abs() < 1e-9);
        assert!((sample.max_ms - 12.5).abs() < 1e-9);
        assert_eq!(sample.errors, 10);
    }

    #[test]
    fn latencies_convert_to_milliseconds() {
        assert!((millis("2.00s").expect("s") - 2000.0).abs() < 1e-9);
        assert!((millis("1.50m").expect("m") - 90_000.0).abs() < 1e-9);
        assert!(millis("12 parsecs").is_err());
    }
}
