//! The contract suite (`linkbox-suite`) against an in-process linkbox — it must pass — and
//! against deliberately wrong servers: linkbox behind a small proxy that changes one documented
//! behaviour, where the suite must name exactly the cases that behaviour breaks.
//!
//! [`every_case_passes_against_linkbox`] is the one full run of the suite in `cargo xtask ci`:
//! it goes through the suite's command line, as `cargo xtask contract` does, with a starter
//! that spawns linkbox in this test's runtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use linkbox_suite::cli::{self, Started};
use linkbox_suite::{self as suite, Api, Credentials, Only, Options, Report, Source, UsageError};
use linkbox_tests::spawn_app;
use serde_json::Value;

/// Runs the suite with `options`, never interrupted; returns the report and the output.
async fn run(options: &Options) -> (Report, String) {
    run_until(options, std::future::pending()).await
}

async fn run_until(options: &Options, interrupt: impl Future<Output = ()>) -> (Report, String) {
    let mut out = Vec::new();
    let report = suite::run(options, interrupt, &mut out)
        .await
        .expect("the suite starts");
    report.write_end(&mut out).expect("write the end");
    (report, String::from_utf8_lossy(&out).into_owned())
}

/// The ids of the cases that failed (drift); every mutant must show as these, never as an
/// error (weather).
fn failed(report: &Report) -> BTreeSet<&'static str> {
    assert_eq!(
        report.errored_ids(),
        Vec::<&str>::new(),
        "drift reported as weather"
    );
    report.failed_ids().into_iter().collect()
}

/// Retries that take milliseconds, not seconds.
fn quick() -> suite::Patience {
    suite::Patience {
        backoff: std::time::Duration::from_millis(20),
        ..suite::Patience::default()
    }
}

/// Starts linkbox for the suite's command line, as `cargo xtask contract` does.
async fn start_linkbox() -> std::io::Result<Started> {
    let app = spawn_app().await;
    Ok(Started::new(app.base.clone(), app))
}

#[tokio::test]
async fn every_case_passes_against_linkbox() {
    let mut out = Vec::new();
    let code = cli::run(&[], start_linkbox, std::future::pending(), &mut out).await;
    let output = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(code, 0, "{output}");
    // `[  1/288] PASS m2m.auth.no-key-401 [doc]`: the id is the word after PASS.
    let ids: Vec<&str> = output
        .lines()
        .filter_map(|line| line.split_once("] PASS ")?.1.split_whitespace().next())
        .collect();
    let count = |api: &str| ids.iter().filter(|id| id.starts_with(api)).count();
    assert!(ids.len() > 100, "{} cases", ids.len());
    assert!(count("m2m.") > 50 && count("leaf.") > 50 && count("sandbox.") > 0);
    assert!(!output.contains("] FAIL "), "{output}");
    let last = output.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{} passed, 0 failed, 0 errored", ids.len()));
    let width = ids.len().to_string().len();
    assert!(
        output
            .lines()
            .next()
            .is_some_and(|line| line.starts_with(&format!("[{:>width$}/{}] PASS ", 1, ids.len()))),
        "{output}"
    );
}

#[tokio::test]
async fn junit_output_parses_with_one_testcase_per_case() {
    let app = spawn_app().await;
    let mut options = Options::in_process(&app.base);
    options.api = Some(Api::M2m);
    options.filter = Some("validate".into());
    let (report, _) = run(&options).await;
    let xml = report.junit();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut testcases, mut depth) = (Vec::new(), 0i32);
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            quick_xml::events::Event::Start(element) => {
                depth += 1;
                if element.name().as_ref() == b"testcase" {
                    let name = element
                        .try_get_attribute("name")
                        .expect("attribute")
                        .expect("name")
                        .unescape_value()
                        .expect("text")
                        .into_owned();
                    testcases.push(name);
                }
            }
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "balanced elements");
    let ids: Vec<String> = report.results.iter().map(|r| r.id.to_owned()).collect();
    assert_eq!(testcases, ids);
    let json = report.json();
    assert_eq!(json["cases"].as_array().map(Vec::len), Some(ids.len()));
}

#[tokio::test]
async fn a_live_key_is_refused_before_any_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let options = Options {
        base: format!("http://{}", listener.local_addr().expect("addr")),
        target: Some(Credentials {
            m2m_key: Some("m2m_live_0123456789abcdefghijklmnopqrstuv".into()),
            leaf_token: None,
        }),
        only: Only::All,
        api: None,
        filter: None,
        ..Options::default()
    };
    let mut out = Vec::new();
    let error = suite::run(&options, std::future::pending(), &mut out)
        .await
        .expect_err("refused");
    assert!(matches!(error, UsageError::LiveKey), "{error}");
    let attempt =
        tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
    assert!(attempt.is_err(), "the suite connected to the target");
}

#[tokio::test]
async fn an_unreachable_target_is_a_connection_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let options = Options {
        base: format!("http://127.0.0.1:{port}"),
        target: Some(Credentials {
            m2m_key: Some(linkbox_tests::test_key(1)),
            leaf_token: None,
        }),
        only: Only::Documented,
        api: None,
        filter: None,
        patience: quick(),
        ..Options::default()
    };
    let mut out = Vec::new();
    let error = suite::run(&options, std::future::pending(), &mut out)
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, UsageError::Connection(_)), "{error}");
    assert_eq!(error.exit_code(), 3, "weather, not usage");
    assert!(out.is_empty(), "no case ran");
}

/// A Leaf token for a fresh account of the in-process sandbox.
async fn leaf_token(app: &linkbox_tests::TestApp, username: &str) -> String {
    let reply: Value = app
        .client
        .post(app.url("/api/authenticate"))
        .json(&serde_json::json!({"username": username, "password": "p", "rememberMe": true}))
        .send()
        .await
        .expect("authenticate")
        .json()
        .await
        .expect("json");
    reply["id_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn a_target_run_is_documented_only_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let key = linkbox_tests::test_key(7001);
    let token = leaf_token(&app, "contract-target").await;
    // Something the suite did not create, which it must not touch.
    let mine = app.create_link_for(&key, "not-the-suite").await;
    let options = Options {
        base: app.base.clone(),
        target: Some(Credentials {
            m2m_key: Some(key.clone()),
            leaf_token: Some(token.clone()),
        }),
        only: Only::Documented,
        api: None,
        filter: None,
        ..Options::default()
    };
    let (report, output) = run(&options).await;
    assert_eq!(report.exit_code(), 0, "{output}");
    assert!(report.results.iter().all(|r| r.source == Source::Doc));
    assert!(output.contains("drift: none"), "{output}");

    let links = app.list_links(&key, "limit=100&status=created").await;
    let items = links.json["data"]["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().filter_map(|i| i["linkId"].as_str()).collect();
    assert_eq!(
        ids,
        [mine["linkId"].as_str().expect("id")],
        "only ours stays active"
    );
    for path in [
        "/services/widgets/api/magic-link/provider",
        "/services/widgets/api/magic-link/authentication",
        "/services/widgets/api/magic-link/file-upload",
        "/services/usermanagement/api/users",
    ] {
        let reply = app
            .send(
                reqwest::Method::GET,
                path,
                &[("authorization", &format!("Bearer {token}"))],
                None,
            )
            .await;
        assert_eq!(reply.json, serde_json::json!([]), "{path} after the run");
    }
}

#[tokio::test]
async fn an_interrupted_run_cleans_up_the_case_in_flight() {
    let app = spawn_app().await;
    let key = linkbox_tests::test_key(7002);
    let (created, seen) = tokio::sync::oneshot::channel::<()>();
    let created = Arc::new(std::sync::Mutex::new(Some(created)));
    // Interrupt as soon as the pagination case has created its first link.
    let proxy = proxy::start(
        &app.base,
        proxy::Fault::response(move |request, response| {
            if request.is("POST", "/partner/links")
                && response.status == 201
                && let Some(sender) = created.lock().expect("lock").take()
            {
                let _ = sender.send(());
            }
        }),
    )
    .await;
    let options = Options {
        base: proxy.clone(),
        target: Some(Credentials {
            m2m_key: Some(key.clone()),
            leaf_token: None,
        }),
        only: Only::Documented,
        api: Some(Api::M2m),
        filter: Some("m2m.list.pagination-arithmetic".into()),
        ..Options::default()
    };
    let (report, output) = run_until(&options, async {
        let _ = seen.await;
    })
    .await;
    assert!(report.interrupted, "{output}");
    assert_eq!(report.exit_code(), 130);
    assert!(output.contains("interrupted during m2m.list.pagination-arithmetic"));
    let active = app.list_links(&key, "visibility=active").await;
    assert_eq!(
        active.json["data"]["pagination"]["total"], 0,
        "{}",
        active.text
    );
}

#[tokio::test]
async fn against_a_target_failures_are_grouped_by_what_they_mean() {
    let app = spawn_app().await;
    // One [doc] fact broken (the documented message) and one [design] guess (404 for an
    // unknown link): the report must tell the vendor's drift from linkbox's.
    let base = proxy::start(
        &app.base,
        proxy::Fault::response(|request, response| {
            response.edit_json(|body| {
                if body["error"]["code"] == "ACTIVE_LINK_EXISTS" {
                    body["error"]["message"] = "User has an active link".into();
                }
            });
            if request.is("GET", "/partner/links/link_p00000000_000000000000")
                && response.status == 404
            {
                response.status = 400;
            }
        }),
    )
    .await;
    let options = Options {
        base,
        target: Some(Credentials {
            m2m_key: Some(linkbox_tests::test_key(7003)),
            leaf_token: None,
        }),
        only: Only::All,
        api: Some(Api::M2m),
        filter: None,
        ..Options::default()
    };
    let (report, output) = run(&options).await;
    assert_eq!(
        failed(&report),
        set(&[
            "m2m.detail.unknown-id-404",
            "m2m.envelope.error-shape-exact",
            "m2m.lifecycle.second-active-link-409",
        ]),
        "{output}"
    );
    let drift = report.drift();
    let (vendor, guessed) = drift
        .split_once("linkbox guessed wrong")
        .expect("both groups");
    assert!(vendor.contains("the vendor differs from its docs ([doc] cases failed): 1"));
    assert!(vendor.contains("m2m.lifecycle.second-active-link-409"));
    assert!(guessed.contains("m2m.detail.unknown-id-404"));
    assert!(guessed.contains("m2m.envelope.error-shape-exact"));
    assert!(!guessed.contains("second-active-link"));
    let summary = format!("{} passed, 3 failed, 0 errored\n", report.results.len() - 3);
    assert!(output.ends_with(&summary), "{output}");
}

/// Runs every case through a proxy applying `fault` and returns the failing ids.
async fn failing_under(fault: proxy::Fault) -> (BTreeSet<&'static str>, Report, String) {
    let app = spawn_app().await;
    let base = proxy::start(&app.base, fault).await;
    let (report, output) = run(&Options::in_process(base)).await;
    (failed(&report), report, output)
}

fn set(ids: &[&'static str]) -> BTreeSet<&'static str> {
    ids.iter().copied().collect()
}

fn shift_millis(text: &str, seconds: i64) -> String {
    let at = linkbox_contracts::timefmt::parse(text).expect("timestamp");
    linkbox_contracts::timefmt::millis(at + time::Duration::seconds(seconds))
}

/// A create whose answer lacks the id cleanup needs is drift, and the suite says on stderr
/// that what it created stays on the target, rather than leaving it there silently.
#[tokio::test]
async fn a_create_without_its_id_is_drift_and_its_leftover_is_named() {
    let app = spawn_app().await;
    let base = proxy::start(
        &app.base,
        proxy::Fault::response(|request, response| {
            if request.is("POST", "/partner/links") && response.status == 201 {
                response.edit_json(|body| {
                    if let Some(data) = body["data"].as_object_mut() {
                        let id = data.remove("linkId").unwrap_or_default();
                        data.insert("id".to_owned(), id);
                    }
                });
            }
        }),
    )
    .await;
    let (console, captured) = linkbox_suite::Console::buffer();
    let options = Options {
        filter: Some("m2m.create.status".to_owned()),
        console,
        ..Options::in_process(base)
    };
    let (report, output) = run(&options).await;
    assert!(report.failed() > 0, "{output}");
    let said = captured.text();
    assert!(
        said.contains("answered without /data/linkId") && said.contains("stays on the target"),
        "{said}"
    );
}

/// A cleanup the target refuses (here every revoke answered 409) leaves the link there, and
/// the suite says so on stderr, naming it, rather than passing in silence; a revoke's 404
/// says the link is gone already (a reset forgot it), and is as good as done.
#[tokio::test]
async fn a_cleanup_the_target_refuses_names_what_stays() {
    let app = spawn_app().await;
    for (status, warned) in [(409, true), (404, false)] {
        let base = proxy::start(
            &app.base,
            proxy::Fault::response(move |request, response| {
                if request.method == "POST" && request.path.ends_with("/revoke") {
                    response.status = status;
                }
            }),
        )
        .await;
        let (console, captured) = linkbox_suite::Console::buffer();
        let options = Options {
            filter: Some("m2m.create.status-201".to_owned()),
            console,
            ..Options::in_process(base)
        };
        let (report, output) = run(&options).await;
        assert_eq!(report.failed(), 0, "{output}");
        let said = captured.text();
        let says =
            format!("could not be removed after it (answered {status}); it stays on the target");
        assert_eq!(
            said.contains("m2m.create.status-201: link link_") && said.contains(&says),
            warned,
            "{status}: {said}\n{output}"
        );
    }
}

/// A magic-link create makes a Leaf user too (with user creation); an answer that lacks
/// `leafUserId` leaves that user on the target, and the suite says so on stderr, naming the
/// marked `externalId` it sent, as it does for a link it cannot remove.
#[tokio::test]
async fn a_magic_link_create_without_its_user_id_names_the_user_left_behind() {
    let app = spawn_app().await;
    let token = leaf_token(&app, "contract-no-user-id").await;
    let base = proxy::start(
        &app.base,
        proxy::Fault::response(|request, response| {
            if request.method == "POST" && request.path.contains("/magic-link/") {
                response.edit_json(|body| {
                    if let Some(created) = body.as_object_mut() {
                        let id = created.remove("leafUserId").unwrap_or_default();
                        created.insert("userId".to_owned(), id);
                    }
                });
            }
        }),
    )
    .await;
    let (console, captured) = linkbox_suite::Console::buffer();
    let options = Options {
        base,
        target: Some(Credentials {
            m2m_key: None,
            leaf_token: Some(token.clone()),
        }),
        only: Only::Documented,
        api: Some(Api::Leaf),
        filter: Some("leaf.provider.default-expires-in-900".to_owned()),
        console,
        ..Options::default()
    };
    let (_, output) = run(&options).await;
    let said = captured.text();
    assert!(
        said.contains(
            "leaf.provider.default-expires-in-900: POST /services/widgets/api/magic-link/provider \
             answered without /leafUserId; the Leaf user (externalId contract-ext-"
        ) && said.contains("stays on the target"),
        "{said}\n{output}"
    );
    // And it does stay: the warning is the only trace of it.
    let users = app
        .send(
            reqwest::Method::GET,
            "/services/usermanagement/api/users",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(
        users.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        users.text
    );
}

/// A target run of one API's cases with `only` (those matching `filter`, when given), through
/// `base`; returns the report, the output and what stderr said.
async fn target_run(
    base: &str,
    credentials: Credentials,
    api: Api,
    only: Only,
    filter: Option<&str>,
) -> (Report, String, String) {
    let (console, captured) = linkbox_suite::Console::buffer();
    let options = Options {
        base: base.to_owned(),
        target: Some(credentials),
        only,
        api: Some(api),
        filter: filter.map(str::to_owned),
        console,
        ..Options::default()
    };
    let (report, output) = run(&options).await;
    (report, output, captured.text())
}

/// Asserts that only `[design]` cases failed, among them `expected`, and that the drift
/// report says linkbox guessed wrong, never that the vendor differs from its docs.
fn only_design_failed(report: &Report, output: &str, expected: &[&str]) {
    let failing = failed(report);
    for id in expected {
        assert!(failing.contains(id), "{id} checks the guess: {output}");
    }
    for result in &report.results {
        assert!(
            result.failure().is_none() || result.source == Source::Design,
            "{} is a [doc] case failing on a [design] guess: {output}",
            result.id
        );
    }
    let drift = report.drift();
    assert!(drift.contains("linkbox guessed wrong"), "{drift}");
    assert!(
        !drift.contains("the vendor differs from its docs"),
        "{drift}"
    );
}

/// A vendor that answers Leaf's magic-link creates 201 differs from linkbox's guess of 200
/// (`LEAF-CREATE-STATUS` [design]) and from nothing its docs say. A run of the `[doc]` cases
/// passes — the cases that merely create on the way to their fact take the 2xx — and says
/// the difference; `--only all` fails the `[design]` cases only; against linkbox itself every
/// case is as strict as ever.
#[tokio::test]
async fn a_leaf_create_answered_201_fails_no_documented_case_against_a_target() {
    let app = spawn_app().await;
    let token = leaf_token(&app, "contract-create-201").await;
    let fault = proxy::Fault::response(|request, response| {
        if request.method == "POST"
            && request.path.contains("/magic-link/")
            && response.status == 200
        {
            response.status = 201;
        }
    });
    let base = proxy::start(&app.base, fault.clone()).await;
    let credentials = Credentials {
        m2m_key: None,
        leaf_token: Some(token),
    };

    let (report, output, said) =
        target_run(&base, credentials, Api::Leaf, Only::Documented, None).await;
    assert_eq!(failed(&report), set(&[]), "{output}");
    assert_eq!(report.exit_code(), 0, "{output}");
    let drift = report.drift();
    assert!(
        drift.contains("drift: none in the facts the cases check")
            && drift.contains("`LEAF-CREATE-STATUS` [design]: status expected 200, got 201"),
        "{drift}"
    );
    assert!(!drift.contains("matches the spec"), "{drift}");
    assert_eq!(
        report.json()["designDifferences"][0]["fact"],
        "LEAF-CREATE-STATUS"
    );
    assert_eq!(
        said.matches("the target answers against `LEAF-CREATE-STATUS` [design]")
            .count(),
        1,
        "said once: {said}"
    );

    // Another account, and one widget type: each credential is paced under the documented
    // limit of creates a minute, which the whole Leaf run twice would reach.
    let credentials = Credentials {
        m2m_key: None,
        leaf_token: Some(leaf_token(&app, "contract-create-201-all").await),
    };
    let (report, output, _) = target_run(
        &base,
        credentials,
        Api::Leaf,
        Only::All,
        Some("leaf.provider."),
    )
    .await;
    only_design_failed(&report, &output, &["leaf.provider.create-status-200"]);

    let in_process = proxy::start(&app.base, fault).await;
    let (report, output) = run(&Options {
        api: Some(Api::Leaf),
        ..Options::in_process(in_process)
    })
    .await;
    let failing = failed(&report);
    assert!(
        failing.contains("leaf.provider.default-expires-in-900")
            && failing.contains("leaf.provider.create-status-200"),
        "against linkbox itself a [doc] case still holds its create to 200: {output}"
    );
}

/// A vendor whose partner slug has a hyphen (`link_acme-corp-p…_<12 hex>`) differs from
/// linkbox's guess of the `linkId` format (`M2M-FORMAT-LINK-ID` [design]), which the schemas
/// state as a pattern. The `[doc]` cases, whose answers carry that id, validate without it;
/// the format's own case fails in `--only all`.
#[tokio::test]
async fn a_link_id_of_another_format_fails_no_documented_case_against_a_target() {
    let app = spawn_app().await;
    let key = linkbox_tests::test_key(7004);
    let fault = proxy::Fault::response(|_, response| {
        let text = String::from_utf8_lossy(&response.body).replace("link_p", "link_acme-corp-p");
        response.body = text.into();
    })
    .and_request(|request| {
        request.path = request.path.replace("link_acme-corp-p", "link_p");
        request.body = request.body.replace("link_acme-corp-p", "link_p");
    });
    let base = proxy::start(&app.base, fault).await;
    let credentials = Credentials {
        m2m_key: Some(key),
        leaf_token: None,
    };
    let (report, output, said) =
        target_run(&base, credentials, Api::M2m, Only::Documented, None).await;
    assert_eq!(failed(&report), set(&[]), "{output}");
    assert_eq!(report.exit_code(), 0, "{output}");
    let drift = report.drift();
    assert!(
        drift.contains("`M2M-FORMAT-LINK-ID` [design]: schema m2m/"),
        "{drift}"
    );
    assert!(
        said.contains("the target answers against `M2M-FORMAT-LINK-ID` [design]"),
        "{said}"
    );

    // Another key, and the create cases: each credential is paced under the documented limit
    // of creates a minute, which the whole M2M run twice would reach.
    let credentials = Credentials {
        m2m_key: Some(linkbox_tests::test_key(7005)),
        leaf_token: None,
    };
    let (report, output, _) =
        target_run(&base, credentials, Api::M2m, Only::All, Some("m2m.create.")).await;
    only_design_failed(&report, &output, &["m2m.create.link-id-format"]);
}

/// Runs the case `id` through a proxy that, the first time the target answers a request
/// `applied` picks (so the target did the work), answers 502 instead. The 502 must have
/// been given, the case must end an `error` (weather), never drift; returns what stderr
/// said.
async fn weather_after_one_applied_request(
    id: &str,
    only: Only,
    applied: impl Fn(&proxy::Request, &proxy::Response) -> bool + Send + Sync + 'static,
) -> String {
    let app = spawn_app().await;
    let struck = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = struck.clone();
    let base = proxy::start(
        &app.base,
        proxy::Fault::response(move |request, response| {
            if applied(request, response) && !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                response.status = 502;
            }
        }),
    )
    .await;
    let (console, captured) = linkbox_suite::Console::buffer();
    let options = Options {
        filter: Some(id.to_owned()),
        only,
        patience: quick(),
        console,
        ..Options::in_process(base)
    };
    let (report, output) = run(&options).await;
    assert!(
        struck.load(std::sync::atomic::Ordering::SeqCst),
        "the 502 was given"
    );
    assert_eq!(report.failed(), 0, "weather reported as drift: {output}");
    assert_eq!(report.errored_ids(), [id], "{output}");
    captured.text()
}

/// Runs `m2m.detail.matches-create` through a proxy whose answers to the link's detail
/// have their body made by `body` from the target's (sent without a length); returns the
/// report, what the run printed and what stderr said.
async fn with_a_detail_answer(body: fn(&[u8]) -> Vec<u8>) -> (Report, String, String) {
    let app = spawn_app().await;
    let base = proxy::start(
        &app.base,
        proxy::Fault::response(move |request, response| {
            if request.method == "GET"
                && request.path.starts_with("/partner/links/")
                && response.status == 200
            {
                response.body = bytes::Bytes::from(body(&response.body));
                response.headers.remove(http::header::CONTENT_LENGTH);
            }
        }),
    )
    .await;
    let (console, captured) = linkbox_suite::Console::buffer();
    let options = Options {
        filter: Some("m2m.detail.matches-create".to_owned()),
        patience: quick(),
        console,
        ..Options::in_process(base)
    };
    let (report, output) = run(&options).await;
    (report, output, captured.text())
}

/// [`with_a_detail_answer`]: the case must end an `error` (weather), never drift, and its
/// output say `said`.
async fn a_detail_answer_is_weather(body: fn(&[u8]) -> Vec<u8>, said: &str) {
    let (report, output, stderr) = with_a_detail_answer(body).await;
    assert_eq!(report.failed(), 0, "weather reported as drift: {output}");
    assert_eq!(
        report.errored_ids(),
        ["m2m.detail.matches-create"],
        "{output}"
    );
    assert!(output.contains(said), "{stderr}\n{output}");
}

/// [`with_a_detail_answer`]: the case must fail (drift); returns what its failure says it
/// got.
async fn a_detail_answer_fails(body: fn(&[u8]) -> Vec<u8>) -> linkbox_suite::client::Failure {
    let (report, output, _) = with_a_detail_answer(body).await;
    assert_eq!(
        report.failed_ids(),
        ["m2m.detail.matches-create"],
        "{output}"
    );
    report.results[0].failure().cloned().expect("a failure")
}

/// A target whose answer is larger than any answer of either API (over 16 MiB) is weather,
/// read no further than that: the case an `error`, never drift.
#[tokio::test]
async fn an_answer_too_large_to_be_either_apis_is_weather_read_no_further() {
    let huge = |body: &[u8]| {
        let mut huge = body.to_vec();
        huge.resize(linkbox_suite::client::MAX_ANSWER_BYTES + 1, b' ');
        huge
    };
    let said = format!(
        "more than {} bytes (not read further)",
        linkbox_suite::client::MAX_ANSWER_BYTES
    );
    a_detail_answer_is_weather(huge, &said).await;
}

/// A target whose answer holds more JSON values than any answer to the suite's requests
/// (a small body of many zeros, each failing the schema) is weather too, never read as JSON.
#[tokio::test]
async fn an_answer_of_too_many_values_is_weather_not_read_as_json() {
    let zeros = |_: &[u8]| {
        let zeros = vec!["0"; linkbox_suite::client::MAX_ANSWER_VALUES + 1].join(",");
        format!(r#"{{"success":true,"data":[{zeros}]}}"#).into_bytes()
    };
    let said = format!(
        "more than {} JSON values",
        linkbox_suite::client::MAX_ANSWER_VALUES
    );
    a_detail_answer_is_weather(zeros, &said).await;
}

/// An honest target's page of 100 links, each carrying large `userData` (2,100 values,
/// far under what a create may hold), is read and checked: more values than any answer to
/// the suite's own requests, but fewer than a page of the largest links. (Weather at a
/// bound of 200,000 values: the run exited 3.)
#[tokio::test]
async fn a_page_of_links_with_large_user_data_is_checked_not_weather() {
    let app = spawn_app().await;
    let key = linkbox_tests::test_key(7011);
    let history: Vec<u32> = (0..2_100).collect();
    for n in 0..100 {
        let created = app
            .create_link(
                &key,
                &serde_json::json!({"referenceId": format!("large-{n}"), "userData": {"history": history,
                    "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}}}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
    }
    let credentials = Credentials {
        m2m_key: Some(key),
        leaf_token: None,
    };
    let (report, output, _) = target_run(
        &app.base,
        credentials,
        Api::M2m,
        Only::All,
        Some("m2m.list.limit-100-accepted"),
    )
    .await;
    assert_eq!(report.errored_ids(), Vec::<&str>::new(), "{output}");
    assert_eq!(report.failed_ids(), Vec::<&str>::new(), "{output}");
    assert_eq!(report.passed(), 1, "{output}");
}

/// A target whose answer carries a string of megabytes where the contract has a short one
/// fails the case, and the failure quotes the answer cut to a few KiB: each failing case
/// quoting it whole held a run's report at 420 MB.
#[tokio::test]
async fn a_failure_quotes_a_huge_answer_cut_short() {
    let huge = |body: &[u8]| {
        let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(body) else {
            return body.to_vec();
        };
        body["data"]["referenceId"] = "x".repeat(4 * 1024 * 1024).into();
        body.to_string().into_bytes()
    };
    let failure = a_detail_answer_fails(huge).await;
    for quoted in [&failure.expected, &failure.actual] {
        assert!(
            quoted.len() <= linkbox_suite::client::MAX_QUOTED_BYTES + 64,
            "{} bytes quoted",
            quoted.len()
        );
    }
    assert!(
        failure.actual.contains("bytes in all"),
        "{}",
        failure.actual
    );
}

/// A target whose answer is JSON nested deeper than the suite reads fails its schema
/// saying so, not as `null` (the message of an answer that is no JSON at all).
#[tokio::test]
async fn an_answer_nested_too_deep_fails_saying_so() {
    let deep = |_: &[u8]| {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        format!(r#"{{"success":true,"data":{deep}}}"#).into_bytes()
    };
    let failure = a_detail_answer_fails(deep).await;
    assert!(
        failure.actual.contains("nested more than 128 levels deep"),
        "{}",
        failure.actual
    );
}

/// A revoke the target applied and then answered 502 (a gateway's timeout after the work was
/// done): its retry is told the link is already revoked. That is weather, an `error` naming
/// the request on stderr, never drift; the same case with no weather passes.
#[tokio::test]
async fn a_retry_after_an_applied_request_got_a_5xx_is_weather_not_drift() {
    let said = weather_after_one_applied_request(
        "m2m.revoke.200-shape",
        Only::All,
        |request, response| {
            request.method == "POST" && request.path.ends_with("/revoke") && response.status == 200
        },
    )
    .await;
    assert!(said.contains("may have been applied"), "{said}");
}

/// A create the target made but answered 502 is retried, and the retry makes a second
/// link: a later list of the case shows both. That is the lost attempt's doing — weather,
/// an `error`, never drift — and stderr says what may be left on the target even though
/// the retry itself succeeded.
#[tokio::test]
async fn what_a_lost_create_made_showing_later_in_the_case_is_weather() {
    let said = weather_after_one_applied_request(
        "leaf.list.leaf-user-id-filter",
        Only::All,
        |request, response| {
            request.method == "POST"
                && request.path.contains("/magic-link/")
                && response.status < 300
        },
    )
    .await;
    assert!(said.contains("may be left on the target"), "{said}");
}

#[tokio::test]
async fn a_wrong_default_expiry_is_caught() {
    let (failing, report, output) = failing_under(proxy::Fault::response(|request, response| {
        let defaulted = !request.body.contains("expiresInMinutes");
        if request.is("POST", "/partner/links") && response.status == 201 && defaulted {
            response.edit_json(|body| {
                let expires = body["data"]["expiresAt"].as_str().unwrap_or_default();
                body["data"]["expiresAt"] = shift_millis(expires, 60).into();
            });
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "m2m.create.default-expiry-60-minutes",
            "m2m.detail.matches-create",
            // The data request's expiry is the link's real one, not what the create claimed.
            "m2m.webhooks.data-request-payload",
        ]),
        "{output}"
    );
    assert_eq!(report.exit_code(), 1);
    assert!(output.contains("expected | actual") || output.contains("expected: 3600 s"));
    assert!(
        output.contains("3600 s") && output.contains("3660 s"),
        "{output}"
    );
}

#[tokio::test]
async fn a_wrong_not_found_status_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::response(|request, response| {
        let detail = request.method == "GET"
            && request.path.starts_with("/partner/links/")
            && !request.path.ends_with("/revoke");
        if detail && response.status == 404 {
            response.status = 400;
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "m2m.detail.other-partner-404",
            "m2m.detail.unknown-id-404",
            "m2m.envelope.error-shape-exact",
            "sandbox.reset.forgets-the-partner-links",
        ]),
        "{output}"
    );
}

/// Cases failing one schema check of one endpoint the same way meet one answer, though
/// each body they got carries its own ids: the report names it once.
#[tokio::test]
async fn a_field_missing_from_every_leaf_magic_link_is_named_once() {
    let (failing, report, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.method == "GET" && request.path.contains("/magic-link/provider/") {
            response.edit_json(|body| {
                if let Some(link) = body.as_object_mut() {
                    link.remove("expiresAt");
                    // First in the body as the proxy writes it back (keys sorted), as a
                    // vendor's own order may put its ids first.
                    let id = link.get("id").cloned().unwrap_or_default();
                    link.insert("_id".to_owned(), id);
                }
            });
        }
    }))
    .await;
    assert!(failing.len() >= 3, "{output}");
    let causes = report.shared_causes();
    assert!(
        causes.lines().any(|line| line.contains("met one answer")
            && line.contains("schema leaf/MagicLink.json")
            && line.contains("\"expiresAt\" is a required property")),
        "{causes}\n{output}"
    );
}

#[tokio::test]
async fn a_create_answering_200_instead_of_201_fails_every_create_and_only_creates() {
    let (failing, report, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.is("POST", "/partner/links") && response.status == 201 {
            response.status = 200;
        }
    }))
    .await;
    assert!(failing.contains("m2m.create.status-201"), "{output}");
    // Named once, with the fact it contradicts, beside each case's own line.
    let causes = report.shared_causes();
    assert_eq!(causes.lines().count(), 1, "{causes}");
    assert!(
        causes.starts_with(&format!(
            "drift: {} failed cases met one answer — POST /partner/links: status expected 201, got 200",
            failing.len()
        )),
        "{causes}"
    );
    assert!(
        causes.contains("the fact it contradicts: `M2M-CREATE-STATUS`"),
        "{causes}"
    );
    for result in &report.results {
        let Some(failure) = result.failure() else {
            continue;
        };
        assert!(
            failure.request.starts_with("POST /partner/links ")
                && failure.check == "status"
                && failure.expected == "201"
                && failure.actual.starts_with("200 "),
            "{}: {failure:?}",
            result.id
        );
    }
    for untouched in [
        "m2m.auth.no-key-401",
        "m2m.list.limit-0-rejected",
        "m2m.validate.reference-id-missing",
        "leaf.provider.create-status-200",
    ] {
        assert!(!failing.contains(untouched), "{untouched}");
    }
}

#[tokio::test]
async fn a_wrong_message_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::response(|_, response| {
        response.edit_json(|body| {
            if body["error"]["code"] == "ACTIVE_LINK_EXISTS" {
                body["error"]["message"] = "User has an active link".into();
            }
        });
    }))
    .await;
    assert_eq!(
        failing,
        set(&["m2m.lifecycle.second-active-link-409"]),
        "{output}"
    );
    assert!(output.contains("User already has an active link"));
}

#[tokio::test]
async fn a_timestamp_with_two_fraction_digits_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.method == "POST" && request.path.ends_with("/revoke") {
            response.edit_json(|body| {
                if let Some(at) = body["data"]["revokedAt"].as_str() {
                    // 2026-02-10T12:00:00.123Z → 2026-02-10T12:00:00.12Z
                    body["data"]["revokedAt"] = format!("{}Z", &at[..at.len() - 2]).into();
                }
            });
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "m2m.revoke.detail-shows-revoked",
            "m2m.revoke.reason-kept",
            "m2m.revoke.revoked-at-millis",
            "sandbox.clock.stamps-m2m-timestamps",
        ]),
        "{output}"
    );
}

#[tokio::test]
async fn a_missing_field_is_caught_by_the_schema() {
    let (failing, report, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.method == "PUT" && request.path.starts_with("/partner/data-requests/") {
            response.edit_json(|body| {
                if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
                    data.remove("fulfilledAt");
                }
            });
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "m2m.data-request.already-fulfilled-400",
            "m2m.data-request.fulfil-200",
            "m2m.data-request.merged-into-user",
            "sandbox.clock.stamps-m2m-timestamps",
        ]),
        "{output}"
    );
    let failure = report
        .results
        .iter()
        .find_map(|r| (r.id == "m2m.data-request.merged-into-user").then(|| r.failure()))
        .flatten()
        .expect("failure");
    assert_eq!(failure.check, "schema m2m/FulfilDataRequestResponse.json");
}

#[tokio::test]
async fn an_ignored_status_filter_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::request(|request| {
        if request.is("GET", "/partner/links") {
            let kept: Vec<&str> = request
                .query
                .split('&')
                .filter(|pair| !pair.starts_with("status="))
                .collect();
            request.query = kept.join("&");
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "m2m.list.filter-status-created",
            "m2m.list.filter-status-opened",
            "m2m.list.filter-status-revoked",
            "m2m.list.unknown-status-rejected",
        ]),
        "{output}"
    );
}

#[tokio::test]
async fn a_wrapped_list_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.is("GET", "/services/usermanagement/api/users") && response.status == 200 {
            response.edit_json(|body| *body = serde_json::json!({"content": body.take()}));
        }
    }))
    .await;
    assert_eq!(
        failing,
        set(&[
            "leaf.tenancy.external-ids-are-per-account",
            "leaf.tenancy.lists-are-per-account",
            "leaf.users.filter-email-and-name",
            "leaf.users.filter-external-id",
            "leaf.users.list-bare-array",
            "leaf.users.paged-total-count-and-link",
            "leaf.users.unpaged-is-the-first-page-of-20",
        ]),
        "{output}"
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_caught() {
    let (failing, _, output) = failing_under(proxy::Fault::response(|request, response| {
        if request.is("GET", "/partner/links") && response.status == 200 {
            response.set_header("content-type", "text/plain; charset=utf-8");
        }
    }))
    .await;
    assert_eq!(failing, set(&["m2m.envelope.success-shape"]), "{output}");
}

/// A proxy on `127.0.0.1:0` that forwards to an in-process linkbox and rewrites one thing.
mod proxy {
    use std::sync::Arc;

    use bytes::Bytes;
    use http::{HeaderMap, HeaderName, HeaderValue, Method};
    use serde_json::Value;
    use warp::Filter;
    use warp::path::FullPath;

    /// The request as the proxy forwards it.
    pub struct Request {
        pub method: String,
        pub path: String,
        /// The raw query, without `?`.
        pub query: String,
        pub body: String,
    }

    impl Request {
        pub fn is(&self, method: &str, path: &str) -> bool {
            self.method == method && self.path == path
        }
    }

    /// The response as the proxy returns it.
    pub struct Response {
        pub status: u16,
        pub headers: HeaderMap,
        pub body: Bytes,
    }

    impl Response {
        /// Rewrites a JSON body in place; other bodies are left alone.
        pub fn edit_json(&mut self, edit: impl FnOnce(&mut Value)) {
            if let Ok(mut json) = serde_json::from_slice::<Value>(&self.body) {
                edit(&mut json);
                self.body = Bytes::from(json.to_string());
            }
        }

        pub fn set_header(&mut self, name: &'static str, value: &'static str) {
            self.headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
    }

    type OnRequest = dyn Fn(&mut Request) + Send + Sync;
    type OnResponse = dyn Fn(&Request, &mut Response) + Send + Sync;

    /// What the proxy changes.
    #[derive(Clone)]
    pub struct Fault {
        on_request: Arc<OnRequest>,
        on_response: Arc<OnResponse>,
    }

    impl Fault {
        pub fn request(edit: impl Fn(&mut Request) + Send + Sync + 'static) -> Fault {
            Fault {
                on_request: Arc::new(edit),
                on_response: Arc::new(|_, _| {}),
            }
        }

        pub fn response(edit: impl Fn(&Request, &mut Response) + Send + Sync + 'static) -> Fault {
            Fault {
                on_request: Arc::new(|_| {}),
                on_response: Arc::new(edit),
            }
        }

        /// This fault, and `edit` on every request as well.
        pub fn and_request(self, edit: impl Fn(&mut Request) + Send + Sync + 'static) -> Fault {
            Fault {
                on_request: Arc::new(edit),
                ..self
            }
        }
    }

    /// Starts the proxy in front of `upstream`; returns its base URL.
    pub async fn start(upstream: &str, fault: Fault) -> String {
        let upstream = upstream.to_owned();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let query = warp::query::raw().or(warp::any().map(String::new)).unify();
        let route = warp::method()
            .and(warp::path::full())
            .and(query)
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method: Method,
                      path: FullPath,
                      query: String,
                      headers: HeaderMap,
                      body: Bytes| {
                    let (client, upstream, fault) =
                        (client.clone(), upstream.clone(), fault.clone());
                    async move {
                        forward(
                            &client, &upstream, &fault, method, path, query, headers, body,
                        )
                        .await
                    }
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        tokio::spawn(linkbox::http::serve(
            listener,
            route.boxed(),
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    #[allow(clippy::too_many_arguments)]
    async fn forward(
        client: &reqwest::Client,
        upstream: &str,
        fault: &Fault,
        method: Method,
        path: FullPath,
        query: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> warp::reply::Response {
        let mut request = Request {
            method: method.to_string(),
            path: path.as_str().to_owned(),
            query,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        (fault.on_request)(&mut request);
        let mut url = format!("{upstream}{}", request.path);
        if !request.query.is_empty() {
            url = format!("{url}?{}", request.query);
        }
        let mut outgoing = client.request(method, url).body(body);
        for (name, value) in &headers {
            if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                outgoing = outgoing.header(name, value);
            }
        }
        let upstream_response = outgoing.send().await.expect("linkbox answers");
        let mut response = Response {
            status: upstream_response.status().as_u16(),
            headers: upstream_response.headers().clone(),
            body: upstream_response.bytes().await.expect("body"),
        };
        (fault.on_response)(&request, &mut response);
        let mut reply = warp::reply::Response::new(response.body.into());
        *reply.status_mut() = http::StatusCode::from_u16(response.status).expect("status");
        for (name, value) in &response.headers {
            if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                reply.headers_mut().append(name, value.clone());
            }
        }
        reply
    }
}
