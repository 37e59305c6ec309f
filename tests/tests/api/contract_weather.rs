//! The contract suite against a target that is having a bad day, and against one behind TLS:
//! an in-process linkbox whose key has just been rate-limited, whose control API injects 5xx,
//! dropped connections and delays (`POST /_sandbox/faults`), which refuses the credential, or
//! which sits behind a TLS terminator with a throwaway private CA. Weather must end `pass`
//! after the retries or `error`, never `fail`; a refused credential and a certificate that
//! fails stop the run before the first case with exit 2.

use std::time::Duration;

use linkbox_suite::cli::{self, Started};
use linkbox_suite::console::Captured;
use linkbox_suite::{self as suite, Api, Console, Credentials, Only, Options, Patience, Report};
use linkbox_tests::{TestApp, spawn_app, test_key};

use crate::tls;
use reqwest::Method;
use serde_json::{Value, json};

/// Options for a target run of the M2M cases matching `filter`, with a console to read back
/// and retries quick enough for a test (the second backoff, 1.2 s, is long enough to be said).
fn m2m_target(base: &str, key: &str, filter: &str) -> (Options, Captured) {
    let (console, captured) = Console::buffer();
    let options = Options {
        base: base.to_owned(),
        target: Some(Credentials {
            m2m_key: Some(key.to_owned()),
            leaf_token: None,
        }),
        only: Only::All,
        api: Some(Api::M2m),
        filter: Some(filter.to_owned()),
        patience: Patience {
            backoff: Duration::from_millis(600),
            timeout: Duration::from_secs(5),
            ..Patience::default()
        },
        console,
        ..Options::default()
    };
    (options, captured)
}

async fn run(options: &Options) -> (Report, String) {
    let mut out = Vec::new();
    let report = suite::run(options, std::future::pending(), &mut out)
        .await
        .expect("the suite starts");
    report.write_end(&mut out).expect("write the end");
    (report, String::from_utf8_lossy(&out).into_owned())
}

async fn add_fault(app: &TestApp, key: &str, fault: Value) {
    let reply = app
        .control(Method::POST, "/faults", Some(key), Some(&fault))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

async fn clock(app: &TestApp, key: &str, body: Value) {
    let reply = app
        .control(Method::POST, "/clock", Some(key), Some(&body))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn a_key_rate_limited_before_the_run_is_waited_out_per_retry_after() {
    let app = spawn_app().await;
    let key = test_key(8101);
    // 54 s into a minute of the sandbox clock, frozen while the key uses up its 100 creates:
    // the window opens again 6 s after the clock runs on.
    clock(&app, &key, json!({"frozen": true})).await;
    clock(&app, &key, json!({"setTo": "2026-12-01T12:00:54.000Z"})).await;
    for n in 0..100 {
        app.create_link_for(&key, &format!("before-the-run-{n}"))
            .await;
    }
    let limited = app
        .create_link(&key, &json!({"referenceId": "one-too-many"}))
        .await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.header("retry-after"), Some("6"));
    clock(&app, &key, json!({"frozen": false})).await;

    let (options, console) = m2m_target(&app.base, &key, "m2m.create.status-201");
    let (report, output) = run(&options).await;
    let notes = console.text();
    assert_eq!(report.exit_code(), 0, "{output}\n{notes}");
    assert!(
        output.ends_with("1 passed, 0 failed, 0 errored\n"),
        "{output}"
    );
    assert!(
        notes
            .lines()
            .any(|line| line.starts_with("waiting ") && line.ends_with(" s for the M2M rate limit")),
        "{notes}"
    );
}

#[tokio::test]
async fn injected_5xx_drops_and_delays_are_retried_and_the_run_passes() {
    let app = spawn_app().await;
    let key = test_key(8102);
    // The preflight read is slower than the timeout once; the creates answer 503 twice and
    // drop the connection once; a detail read drops once.
    add_fault(
        &app,
        &key,
        json!({"method": "GET", "path": "/partner/links", "delayMs": 8000, "times": 1}),
    )
    .await;
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "status": 503, "times": 2}),
    )
    .await;
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "drop": true, "times": 1}),
    )
    .await;
    add_fault(
        &app,
        &key,
        json!({"method": "GET", "path": "/partner/links/*", "drop": true, "times": 1}),
    )
    .await;
    let (mut options, console) = m2m_target(&app.base, &key, "m2m.detail.matches-create");
    // The delayed read is said at 5 s and times out at 7 s.
    options.patience.timeout = Duration::from_secs(7);
    let (report, output) = run(&options).await;
    let notes = console.text();
    assert_eq!(report.exit_code(), 0, "{output}\n{notes}");
    assert_eq!(report.passed(), 1, "{output}");
    assert!(
        notes.contains("before retrying POST /partner/links (503"),
        "the wait before the third attempt is said: {notes}"
    );
    assert!(
        notes.contains("waiting for the target: GET /partner/links?limit=1 has not answered"),
        "{notes}"
    );
}

#[tokio::test]
async fn weather_that_does_not_pass_is_an_error_never_a_failure() {
    let app = spawn_app().await;
    let key = test_key(8103);
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "status": 503}),
    )
    .await;
    let (mut options, _) = m2m_target(&app.base, &key, "m2m.create.status-201");
    options.patience.backoff = Duration::from_millis(20);
    let (report, output) = run(&options).await;
    assert_eq!(report.exit_code(), 3, "weather only: {output}");
    assert!(
        output.ends_with("0 passed, 0 failed, 1 errored\n"),
        "{output}"
    );
    assert!(
        output.contains("] ERROR m2m.create.status-201 "),
        "{output}"
    );
    assert!(
        output.contains("weather: the target could not be asked"),
        "{output}"
    );
    assert!(!output.contains("drift: the vendor"), "{output}");
    let error = report.results[0].error().expect("an error");
    assert_eq!(error.check, "server error");
    assert!(error.actual.starts_with("503 ") && error.actual.ends_with("(after 4 attempts)"));
    let xml = report.junit();
    assert!(
        xml.contains("<error ") && !xml.contains("<failure "),
        "{xml}"
    );
    assert_eq!(report.json()["cases"][0]["outcome"], "error");

    // Every create case against the same dead endpoint: after two requests in a row gave up,
    // the rest get one attempt each, so a dead target does not cost the whole backoff per case.
    let (mut options, console) = m2m_target(&app.base, &key, "m2m.create.");
    options.patience.backoff = Duration::from_millis(20);
    let (report, output) = run(&options).await;
    assert_eq!(report.exit_code(), 3, "{output}");
    assert!(report.errored() > 3, "{output}");
    assert!(
        console
            .text()
            .contains("one attempt per request until it answers again"),
        "{}",
        console.text()
    );
    let last = report.results.iter().rev().find_map(|r| r.error());
    assert!(
        last.is_some_and(|error| error.actual.ends_with("(after 1 attempt)")),
        "{last:?}"
    );

    // Every detail read of another key loses its connection: the case reading one errors.
    let key = test_key(8104);
    add_fault(
        &app,
        &key,
        json!({"method": "GET", "path": "/partner/links/*", "drop": true}),
    )
    .await;
    options.target = Some(Credentials {
        m2m_key: Some(key),
        leaf_token: None,
    });
    options.filter = Some("m2m.detail.matches-create".into());
    let (report, output) = run(&options).await;
    assert_eq!(report.exit_code(), 3, "{output}");
    let error = report.results[0].error().expect("an error");
    assert_eq!(error.check, "connection", "{error:?}");
    assert_eq!(report.failed(), 0, "{output}");
}

#[tokio::test]
async fn a_429_asking_for_more_than_max_wait_is_an_error_at_once() {
    let app = spawn_app().await;
    let key = test_key(8105);
    // A faulted 429 asks for 60 s.
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "status": 429}),
    )
    .await;
    let (mut options, _) = m2m_target(&app.base, &key, "m2m.create.status-201");
    options.patience.max_wait = Duration::from_secs(10);
    let started = std::time::Instant::now();
    let (report, output) = run(&options).await;
    assert!(started.elapsed() < Duration::from_secs(10), "no waiting");
    assert_eq!(report.exit_code(), 3, "{output}");
    let error = report.results[0].error().expect("an error");
    assert!(error.actual.contains("Retry-After 60 s"), "{error:?}");
}

/// Runs the command line against a target; returns the exit code, stdout and stderr.
async fn cli_run(line: &str) -> (u8, String, String) {
    let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let (console, captured) = Console::buffer();
    let mut out = Vec::new();
    let code = cli::run_with(
        &args,
        || async { Err::<Started, _>(std::io::Error::other("a target run starts nothing")) },
        std::future::pending(),
        &mut out,
        console,
    )
    .await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        captured.text(),
    )
}

#[tokio::test]
async fn a_refused_credential_stops_the_run_before_the_first_case() {
    let app = spawn_app().await;
    let (code, out, err) = cli_run(&format!(
        "--target {} --api m2m --m2m-key m2m_test_tooshort",
        app.base
    ))
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no case ran: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("refused the M2M key (--m2m-key / LINKBOX_M2M_KEY)")
            && err.contains("401")
            && err.contains("INVALID_API_KEY"),
        "{err}"
    );

    let (code, out, err) = cli_run(&format!(
        "--target {} --api leaf --leaf-token not-a-token",
        app.base
    ))
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no case ran: {out}");
    assert!(
        err.contains("refused the Leaf token (--leaf-token / LINKBOX_LEAF_TOKEN)")
            && err.contains("401"),
        "{err}"
    );
    // Exactly one request reached the M2M API: the preflight.
    let journal = app
        .control(Method::GET, "/requests?path=/partner/*", None, None)
        .await;
    assert_eq!(
        journal.json["requests"].as_array().map(Vec::len),
        Some(1),
        "{journal:?}"
    );
}

/// A refused credential stops the run with exit 2 before any case, and the report files
/// asked for are still written, whole and saying why (as for an unreachable target), not
/// left empty where CI looks for them.
#[tokio::test]
async fn a_refused_credential_still_writes_its_report_files() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (json, junit) = (dir.path().join("run.json"), dir.path().join("run.xml"));
    let (code, out, err) = cli_run(&format!(
        "--target {} --api leaf --leaf-token not-a-token --json {} --junit {}",
        app.base,
        json.display(),
        junit.display()
    ))
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no case ran: {out}");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("the JSON report parses");
    assert_eq!(written["exitCode"], 2, "{written}");
    assert_eq!(written["errored"], 1, "{written}");
    let case = &written["cases"][0];
    assert_eq!(case["id"], "preflight.credential-accepted", "{written}");
    assert_eq!(
        case["api"], "leaf",
        "the refused credential's API: {written}"
    );
    assert_eq!(case["error"]["kind"], "usage", "not weather: {written}");
    assert!(
        case["error"]["actual"].as_str().is_some_and(|actual| actual
            .contains("refused the Leaf token")
            && actual.contains("401")),
        "{written}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    let mut reader = quick_xml::Reader::from_str(&xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(error) => panic!("the JUnit report does not parse: {error}\n{xml}"),
        }
    }
    assert!(
        xml.contains("preflight.credential-accepted")
            && xml.contains("type=\"usage\"")
            && xml.contains("errors=\"1\""),
        "{xml}"
    );
}

#[tokio::test]
async fn https_with_a_private_ca_needs_ca_cert_or_insecure() {
    let app = spawn_app().await;
    let (ca_pem, config) = tls::private_ca();
    let base = tls::front(app.addr, config).await;
    let ca = tempfile::Builder::new()
        .prefix("linkbox-contract-ca-")
        .suffix(".pem")
        .tempfile()
        .expect("a file for the CA");
    std::fs::write(ca.path(), &ca_pem).expect("write the CA");
    let key = test_key(8106);
    let line = format!("--target {base} --api m2m --m2m-key {key} --filter m2m.create.status-201");

    // Only the built-in roots: the certificate fails, one line naming the flags, exit 2.
    let (code, out, err) = cli_run(&line).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no case ran: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("certificate") && err.contains("--ca-cert FILE") && err.contains("--insecure"),
        "{err}"
    );

    // https:// to a plain-HTTP server: not weather either, one line naming --target.
    let plain = format!(
        "--target https://{} --api m2m --m2m-key {key} --filter m2m.create.status-201",
        app.addr
    );
    let (code, out, err) = cli_run(&plain).await;
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "not retried: {err}");
    assert!(
        err.contains("--target") && err.contains("TLS handshake failed"),
        "{err}"
    );

    let (code, out, err) = cli_run(&format!("{line} --ca-cert {}", ca.path().display())).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("1 passed, 0 failed, 0 errored\n"), "{out}");
    assert!(err.is_empty(), "{err}");

    let (code, out, err) = cli_run(&format!("{line} --insecure")).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("1 passed, 0 failed, 0 errored\n"), "{out}");
    assert!(
        err.starts_with(
            "warning: --insecure: the target's certificate and host name are not verified"
        ),
        "{err}"
    );
}
