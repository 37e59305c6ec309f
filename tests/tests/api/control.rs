//! The `/_sandbox` control API over real sockets: tenancy, reset, the admin token, journal,
//! faults, snapshots, a fresh clock and the clock's bounds. Health and the clock's reading,
//! moves and freezing are the contract suite's (`sandbox.*`), as is what the clock does to M2M
//! links.

use std::time::{Duration, Instant};

use linkbox::Options;
use linkbox_tests::{Reply, TestApp, assert_m2m_error, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};

#[track_caller]
fn assert_control_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "status of {reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json["error"]["code"], code, "{reply:?}");
    assert!(reply.json["error"]["message"].is_string(), "{reply:?}");
}

/// The entries of `key`'s journal that `query` filters, newest first.
async fn journal_of(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let journal = app
        .control(Method::GET, &format!("/requests?{query}"), Some(key), None)
        .await;
    assert_eq!(journal.status, 200, "{journal:?}");
    journal.json["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn add_fault(app: &TestApp, key: &str, fault: Value) {
    let reply = app
        .control(Method::POST, "/faults", Some(key), Some(&fault))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

/// The suite's cases share one sandbox clock, so only a fresh linkbox shows where it starts.
#[tokio::test]
async fn a_fresh_sandbox_clock_has_no_offset_and_runs() {
    let app = spawn_app().await;
    let reading = app
        .control(Method::GET, "/clock", Some(&test_key(1)), None)
        .await;
    assert_eq!(reading.status, 200, "{reading:?}");
    assert_eq!(reading.json["offsetSeconds"], 0);
    assert_eq!(reading.json["frozen"], false);
}

#[tokio::test]
async fn another_tenant_sees_nothing_and_gets_404_for_foreign_links() {
    let app = spawn_app().await;
    let (mine, theirs) = (test_key(3), test_key(4));
    let link = app.create_link_for(&mine, "u1").await;
    let link_id = link["linkId"].as_str().expect("id");
    let open = app
        .control(
            Method::POST,
            &format!("/m2m/links/{link_id}/open"),
            Some(&theirs),
            None,
        )
        .await;
    assert_control_error(&open, 404, "NOT_FOUND");
    let journal = app
        .control(Method::GET, "/requests", Some(&theirs), None)
        .await;
    assert_eq!(journal.json["requests"], json!([]));
    let webhooks = app
        .control(Method::GET, "/webhooks", Some(&theirs), None)
        .await;
    assert_eq!(webhooks.json["deliveries"], json!([]));
    let own = app
        .control(Method::GET, "/requests", Some(&mine), None)
        .await;
    assert_eq!(own.json["requests"].as_array().map(Vec::len), Some(1));
    let admin = app.control(Method::GET, "/webhooks", None, None).await;
    assert_eq!(admin.json["deliveries"].as_array().map(Vec::len), Some(1));
    let bad_key = app
        .control(Method::GET, "/requests", Some("m2m_test_short"), None)
        .await;
    assert_control_error(&bad_key, 401, "INVALID_API_KEY");
}

#[tokio::test]
async fn reset_forgets_only_the_callers_tenant() {
    let app = spawn_app().await;
    let (mine, theirs) = (test_key(5), test_key(6));
    app.create_link_for(&mine, "u1").await;
    app.create_link_for(&theirs, "u1").await;
    let reset = app.control(Method::POST, "/reset", Some(&mine), None).await;
    assert_eq!(reset.json["scope"], "tenant");
    let list = app.list_links(&mine, "").await;
    assert_eq!(list.data()["pagination"]["total"], 0);
    let journal = app
        .control(Method::GET, "/requests", Some(&mine), None)
        .await;
    assert_eq!(journal.json["requests"].as_array().map(Vec::len), Some(1));
    let webhooks = app
        .control(Method::GET, "/webhooks", Some(&mine), None)
        .await;
    assert_eq!(webhooks.json["deliveries"], json!([]));
    let other = app.list_links(&theirs, "").await;
    assert_eq!(other.data()["pagination"]["total"], 1);
    let everything = app.control(Method::POST, "/reset", None, None).await;
    assert_eq!(everything.json["scope"], "all");
    let other = app.list_links(&theirs, "").await;
    assert_eq!(other.data()["pagination"]["total"], 0);
}

#[tokio::test]
async fn an_admin_reset_forgets_leaf_accounts_too() {
    let app = spawn_app().await;
    let token = app.authenticate("reset@example.com").await;
    let created = app
        .leaf(
            Method::POST,
            "/services/widgets/api/magic-link/provider",
            &token,
            Some(&json!({"externalId": "farm-1"})),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let everything = app.control(Method::POST, "/reset", None, None).await;
    assert_eq!(everything.json["scope"], "all");
    let links = app
        .leaf(
            Method::GET,
            "/services/widgets/api/magic-link/provider",
            &token,
            None,
        )
        .await;
    assert_eq!(links.json, json!([]));
    let users = app
        .leaf(
            Method::GET,
            "/services/usermanagement/api/users",
            &token,
            None,
        )
        .await;
    assert_eq!(users.json, json!([]));
}

#[tokio::test]
async fn an_admin_token_is_needed_for_keyless_calls_once_configured() {
    let app = spawn_app_with(Options {
        admin_token: Some("s3cret".into()),
        ..Options::default()
    })
    .await;
    let keyless = app.control(Method::GET, "/webhooks", None, None).await;
    assert_control_error(&keyless, 401, "UNAUTHORIZED");
    let admin = app
        .send(
            Method::GET,
            "/_sandbox/webhooks",
            &[("authorization", "Bearer s3cret")],
            None,
        )
        .await;
    assert_eq!(admin.status, 200, "{admin:?}");
    let snapshot = app
        .send(
            Method::GET,
            "/_sandbox/snapshot",
            &[("authorization", "Bearer s3cret")],
            None,
        )
        .await;
    assert_control_error(&snapshot, 400, "TENANT_REQUIRED");
}

/// Without an admin token a request with no credentials is the admin — from this machine.
/// A page of another origin (a form on any site the developer visits) and a page whose
/// name was rebound to 127.0.0.1 (its own name in `Host`) are refused, saying why; the
/// sandbox's own pages (same origin) and origins `--cors` lists are not.
#[tokio::test]
async fn keyless_admin_calls_from_other_origins_or_foreign_hosts_are_refused() {
    let app = spawn_app_with(Options {
        cors: vec!["http://localhost:3000".into()],
        ..Options::default()
    })
    .await;
    let key = test_key(1490);
    let kept = app.create_link_for(&key, "kept").await;
    // A keyless control request with these headers.
    let keyless = |method: Method, path: &'static str, headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut request = app.client.request(method, app.url(path));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            app.send_built(request).await
        }
    };
    let reset = |headers| keyless(Method::POST, "/_sandbox/reset", headers);
    let cross = reset(vec![("origin", "https://evil.example".into())]).await;
    assert_control_error(&cross, 401, "UNAUTHORIZED");
    let said = cross.json["error"]["message"].as_str().unwrap_or_default();
    assert!(said.contains("another origin"), "{said}");
    let null = reset(vec![("origin", "null".into())]).await;
    assert_control_error(&null, 401, "UNAUTHORIZED");
    let rebound = app
        .send_built(
            app.client
                .get(app.url("/_sandbox/requests"))
                .header("host", format!("rebind.evil.example:{}", app.addr.port())),
        )
        .await;
    assert_control_error(&rebound, 401, "UNAUTHORIZED");
    let said = rebound.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("Host header"), "{said}");
    // A credential header with nothing readable in it is a mistake (an unset CI secret, a
    // misspelt scheme), not an absence: it is refused, not made the admin.
    for (name, value) in [
        ("x-api-key", ""),
        ("x-api-key", "   "),
        ("authorization", "Bearer "),
        ("authorization", "Basic dXNlcjpwYXNz"),
        (
            "authorization",
            "Token m2m_test_0123456789abcdefghijklmnopqrstuv",
        ),
    ] {
        let mistaken = reset(vec![(name, value.into())]).await;
        assert_control_error(&mistaken, 401, "UNAUTHORIZED");
        let said = mistaken.json["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            said.contains("without a credential"),
            "{name}: {value}: {said}"
        );
    }
    let id = kept["linkId"].as_str().expect("linkId");
    assert_eq!(
        app.get_link(&key, id).await.status,
        200,
        "nothing was reset"
    );

    let clock = |headers| keyless(Method::GET, "/_sandbox/clock", headers);
    let port = app.addr.port();
    for allowed in [
        vec![],
        vec![("origin", format!("http://127.0.0.1:{port}"))],
        vec![("origin", "http://localhost:3000".into())],
        vec![("host", format!("localhost:{port}"))],
        vec![("host", format!("[::1]:{port}"))],
    ] {
        let answer = clock(allowed.clone()).await;
        assert_eq!(answer.status, 200, "{allowed:?}: {answer:?}");
    }

    // The name `--public-url` gives this machine is this machine too.
    let named = spawn_app_with(Options {
        public_url: Some("http://Sandbox.Example:8642".into()),
        ..Options::default()
    })
    .await;
    let port = named.addr.port();
    for (host, status) in [
        (format!("sandbox.example:{port}"), 200),
        (format!("other.example:{port}"), 401),
    ] {
        let answer = named
            .send_built(
                named
                    .client
                    .get(named.url("/_sandbox/clock"))
                    .header("host", &host),
            )
            .await;
        assert_eq!(answer.status, status, "{host}: {answer:?}");
    }
}

#[tokio::test]
async fn the_journal_keeps_only_the_last_journal_size_requests_and_filters_them() {
    let app = spawn_app_with(Options {
        journal_size: Some(5),
        ..Options::default()
    })
    .await;
    let key = test_key(7);
    for n in 0..4 {
        app.create_link_for(&key, &format!("u{n}")).await;
    }
    for _ in 0..3 {
        app.get_link(&key, "link_nope_000000000000").await;
    }
    let journal = app
        .control(Method::GET, "/requests", Some(&key), None)
        .await;
    assert_eq!(journal.json["capacity"], 5);
    let requests = journal.json["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0]["status"], 404);
    assert_eq!(requests[0]["method"], "GET");
    assert!(requests[0]["tenant"].is_string());
    assert!(requests[0]["time"].is_string());
    let created = app
        .control(
            Method::GET,
            "/requests?method=POST&status=201",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(created.json["requests"].as_array().map(Vec::len), Some(2));
    let by_path = app
        .control(
            Method::GET,
            "/requests?path=/partner/links/*",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(by_path.json["requests"].as_array().map(Vec::len), Some(3));
    let cleared = app
        .control(Method::DELETE, "/requests", Some(&key), None)
        .await;
    assert_eq!(cleared.status, 204);
    let empty = app
        .control(Method::GET, "/requests", Some(&key), None)
        .await;
    assert_eq!(empty.json["requests"], json!([]));
}

/// A long journal is read a page at a time over the wire: `limit`, then `before` the page's
/// `nextBefore`, each page with the matches' `total`; a `DELETE` refuses both.
#[tokio::test]
async fn the_journal_reads_a_page_at_a_time() {
    let app = spawn_app().await;
    let key = test_key(19);
    for n in 0..3 {
        app.get_link(&key, &format!("link_nope_{n:012}")).await;
    }
    let first = app
        .control(Method::GET, "/requests?limit=2", Some(&key), None)
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["requests"].as_array().map(Vec::len), Some(2));
    assert_eq!(first.json["total"], 3);
    let before = first.json["nextBefore"].as_u64().expect("a next page");
    assert_eq!(first.json["requests"][1]["seq"].as_u64(), Some(before));
    let last = app
        .control(
            Method::GET,
            &format!("/requests?limit=2&before={before}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(last.json["requests"].as_array().map(Vec::len), Some(1));
    assert!(
        last.json["requests"][0]["path"]
            .as_str()
            .is_some_and(|path| path.ends_with("link_nope_000000000000"))
    );
    assert_eq!(last.json["nextBefore"], Value::Null);
    let everything = app
        .control(Method::GET, "/requests", Some(&key), None)
        .await;
    assert_eq!(
        everything.json["requests"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(everything.json["nextBefore"], Value::Null);
    for refused in ["/requests?limit=0", "/requests?before=x"] {
        let reply = app.control(Method::GET, refused, Some(&key), None).await;
        assert_control_error(&reply, 400, "INVALID_REQUEST");
    }
    let delete = app
        .control(Method::DELETE, "/requests?limit=1", Some(&key), None)
        .await;
    assert_control_error(&delete, 400, "INVALID_REQUEST");
    let kept = app
        .control(Method::GET, "/requests", Some(&key), None)
        .await;
    assert_eq!(kept.json["total"], 3);
}

/// `DELETE /_sandbox/requests` takes `GET`'s filters: it forgets only what they match of the
/// caller's own entries (the admin's `tenant` naming whose), and a filter it does not know,
/// or cannot read, is the same 400 as on `GET`, with nothing forgotten.
#[tokio::test]
async fn a_filtered_journal_delete_forgets_only_what_matches() {
    let app = spawn_app().await;
    let (key, other) = (test_key(17), test_key(18));
    app.create_link_for(&key, "kept").await;
    app.get_link(&key, "link_nope_000000000000").await;
    app.get_link(&other, "link_nope_000000000000").await;
    let listed = |key: Option<String>| {
        let app = &app;
        async move {
            let reply = app
                .control(Method::GET, "/requests", key.as_deref(), None)
                .await;
            reply.json["requests"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|entry| entry["method"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    for query in ["bogus=1", "status=6xx", "since=yesterday", "header=nocolon"] {
        let refused = app
            .control(
                Method::DELETE,
                &format!("/requests?{query}"),
                Some(&key),
                None,
            )
            .await;
        assert_control_error(&refused, 400, "INVALID_REQUEST");
        let read = app
            .control(Method::GET, &format!("/requests?{query}"), Some(&key), None)
            .await;
        assert_eq!(refused.json, read.json, "{query}: as GET says it");
    }
    assert_eq!(listed(Some(key.clone())).await, ["GET", "POST"]);
    let forgot = app
        .control(Method::DELETE, "/requests?method=GET", Some(&key), None)
        .await;
    assert_eq!(forgot.status, 204, "{forgot:?}");
    assert_eq!(listed(Some(key.clone())).await, ["POST"]);
    assert_eq!(listed(Some(other.clone())).await, ["GET"], "not another's");
    // The admin's delete reaches every tenant, or the one `tenant` names.
    let slug = app
        .control(Method::GET, "/requests", Some(&other), None)
        .await
        .json["requests"][0]["tenant"]
        .as_str()
        .map(str::to_owned)
        .expect("a tenant");
    let forgot = app
        .control(
            Method::DELETE,
            &format!("/requests?tenant={slug}"),
            None,
            None,
        )
        .await;
    assert_eq!(forgot.status, 204, "{forgot:?}");
    assert!(listed(Some(other)).await.is_empty());
    assert_eq!(listed(None).await, ["POST"]);
}

#[tokio::test]
async fn a_fault_with_times_answers_in_the_vendors_shape_then_stops() {
    let app = spawn_app().await;
    let key = test_key(8);
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "status": 429, "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let reply = app.create_link(&key, &json!({"referenceId": "u1"})).await;
        assert_m2m_error(
            &reply,
            429,
            "RATE_LIMIT_EXCEEDED",
            "Too many requests, please retry later",
        );
        assert_eq!(reply.header("retry-after"), Some("60"));
    }
    app.create_link_for(&key, "u1").await;
    let faults = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(faults.json["faults"], json!([]));
    add_fault(&app, &key, json!({"path": "/partner/*", "status": 503})).await;
    let reply = app.list_links(&key, "").await;
    assert_m2m_error(&reply, 503, "INTERNAL_ERROR", "Internal server error");
    let other = app.list_links(&test_key(9), "").await;
    assert_eq!(other.status, 200, "another tenant is untouched");
    let cleared = app
        .control(Method::DELETE, "/faults", Some(&key), None)
        .await;
    assert_eq!(cleared.status, 204);
    assert_eq!(app.list_links(&key, "").await.status, 200);
}

/// On an end user's page a faulted status is a page, as a browser would be shown one, and
/// a 429 says when to retry, as on the APIs.
#[tokio::test]
async fn a_fault_on_an_end_users_page_answers_with_a_page() {
    let app = spawn_app().await;
    for fault in [
        json!({"path": "/widget/**", "status": 500, "times": 1}),
        json!({"path": "/magic-link/**", "status": 429, "times": 1}),
    ] {
        let added = app
            .control(Method::POST, "/faults", None, Some(&fault))
            .await;
        assert_eq!(added.status, 201, "{added:?}");
    }
    let failed = app
        .send(
            Method::GET,
            "/widget/link_x_0123456789ab/m2m-basic",
            &[],
            None,
        )
        .await;
    assert_eq!(failed.status, 500, "{failed:?}");
    assert!(
        failed
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/html")),
        "{failed:?}"
    );
    let limited = app
        .send(Method::GET, "/magic-link/nothing", &[], None)
        .await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(
        limited
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/html")),
        "{limited:?}"
    );
    assert_eq!(limited.header("retry-after"), Some("60"));
}

/// A fault of probability 0 could never fire: refused, saying so, and never kept, as the
/// docs say of every such fault. One of probability 1 always fires.
#[tokio::test]
async fn a_fault_with_probability_zero_is_refused_and_one_always_fires() {
    let app = spawn_app().await;
    let key = test_key(10);
    let refused = app
        .control(
            Method::POST,
            "/faults",
            Some(&key),
            Some(&json!({"status": 500, "probability": 0})),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("never fire"), "{message}");
    let listed = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(listed.json["faults"], json!([]), "{listed:?}");
    for _ in 0..5 {
        assert_eq!(app.list_links(&key, "").await.status, 200);
    }
    add_fault(
        &app,
        &key,
        json!({"status": 500, "probability": 1, "body": {"custom": true}}),
    )
    .await;
    for _ in 0..5 {
        let reply = app.list_links(&key, "").await;
        assert_eq!(reply.status, 500);
        assert_eq!(reply.json, json!({"custom": true}));
    }
    let faults = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(faults.json["faults"][0]["hits"], 5);
}

/// A client that gives up during a fault's delay (what a test of its timeouts does) is
/// journaled for every attempt, answered nothing: the journal counts what `hits` counts.
#[tokio::test]
async fn attempts_abandoned_during_a_faults_delay_are_journaled_as_unanswered() {
    let app = spawn_app().await;
    let key = test_key(16);
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "delayMs": 5000}),
    )
    .await;
    for n in 0..3 {
        let gave_up = app
            .client
            .post(app.url("/partner/links"))
            .header("x-api-key", &key)
            .json(&json!({"referenceId": format!("gone-{n}")}))
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        assert!(gave_up.is_err(), "{gave_up:?}");
    }
    let faults = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(faults.json["faults"][0]["hits"], 3);
    let deadline = Instant::now() + Duration::from_secs(3);
    let entries = loop {
        let entries = journal_of(&app, &key, "path=/partner/links").await;
        if entries.len() >= 3 || Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entries.len(), 3, "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["dropped"], true, "{entry}");
        assert!(entry["status"].is_null(), "{entry}");
        // With its body, so a verify by body counts the attempt.
        let body = entry["request"]["body"].as_str().unwrap_or_default();
        assert!(body.contains("gone-"), "{entry}");
    }
    assert!(
        app.list_links(&key, "").await.json["data"]["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[tokio::test]
async fn a_delay_fault_slows_the_real_answer_and_a_drop_fault_closes_the_connection() {
    let app = spawn_app().await;
    let key = test_key(11);
    add_fault(
        &app,
        &key,
        json!({"path": "/partner/links", "delayMs": 300, "times": 1}),
    )
    .await;
    let started = Instant::now();
    let reply = app.list_links(&key, "").await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    add_fault(&app, &key, json!({"drop": true, "times": 1})).await;
    let dropped = app
        .client
        .get(app.url("/partner/links"))
        .header("x-api-key", &key)
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(app.list_links(&key, "").await.status, 200);
    let journal = journal_of(&app, &key, "path=/partner/links").await;
    assert_eq!(journal[1]["dropped"], true);
    let bad = app
        .control(
            Method::POST,
            "/faults",
            Some(&key),
            Some(&json!({"probability": 2})),
        )
        .await;
    assert_control_error(&bad, 400, "INVALID_REQUEST");
}

/// "Inject a 503, and check the app sent the same body again": the faulted request is
/// journaled with its body like the retry that succeeded, so a verify by body counts both.
#[tokio::test]
async fn a_request_a_fault_answered_or_dropped_is_verified_by_its_body() {
    let app = spawn_app().await;
    let key = test_key(44);
    let create = json!({"referenceId": "retry-1", "metadata": {"orderId": "ORD-1"}});
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "status": 503, "times": 1}),
    )
    .await;
    assert_eq!(app.create_link(&key, &create).await.status, 503);
    assert_eq!(app.create_link(&key, &create).await.status, 201);
    add_fault(
        &app,
        &key,
        json!({"method": "POST", "path": "/partner/links", "drop": true, "times": 1}),
    )
    .await;
    let dropped = app
        .client
        .post(app.url("/partner/links"))
        .header("x-api-key", &key)
        .json(&create)
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    let verified = app
        .control(
            Method::POST,
            "/requests/verify",
            Some(&key),
            Some(&json!({
                "method": "POST",
                "path": "/partner/links",
                "bodyJson": {"referenceId": "retry-1"},
                "count": {"exactly": 3},
            })),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    assert_eq!(verified.json["matched"], 3);
}

/// A request a fault dropped was answered nothing: the journal shows it with no status, so
/// a `status=2xx` filter counts only the requests that were answered, also when the fault
/// names a status as well.
#[tokio::test]
async fn a_dropped_request_is_journaled_without_a_status() {
    let app = spawn_app().await;
    let key = test_key(45);
    assert_eq!(app.list_links(&key, "").await.status, 200);
    for fault in [
        json!({"drop": true, "times": 1}),
        json!({"drop": true, "status": 503, "times": 1}),
    ] {
        add_fault(&app, &key, fault).await;
        let dropped = app
            .client
            .get(app.url("/partner/links"))
            .header("x-api-key", &key)
            .send()
            .await;
        assert!(dropped.is_err(), "{dropped:?}");
    }
    let all = app
        .control(Method::GET, "/requests", Some(&key), None)
        .await;
    let requests = all.json["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 3, "{all:?}");
    for dropped in &requests[..2] {
        assert_eq!(dropped["dropped"], true, "{dropped}");
        assert_eq!(dropped["status"], Value::Null, "{dropped}");
    }
    for status in ["2xx", "200", "5xx", "503"] {
        let answered = app
            .control(
                Method::GET,
                &format!("/requests?status={status}"),
                Some(&key),
                None,
            )
            .await;
        let found = answered.json["requests"].as_array().map(Vec::len);
        let expected = usize::from(status.starts_with('2'));
        assert_eq!(found, Some(expected), "status={status}: {answered:?}");
    }
}

/// A fault that could never fire is a 400 saying why, not a 201 that sits in the table: one
/// on control paths (never faulted), one with a query string (paths are matched without
/// it). A tenant's on paths usually reached without credentials (the Leaf login, the pages)
/// is kept with a warning: it touches only the requests there that carry the tenant's own
/// token, and does fire on those; the same fault set by the admin touches every one. A
/// tenant's pattern that also reaches other paths (`/**`) is kept without one.
#[tokio::test]
async fn a_fault_that_could_never_fire_is_refused_saying_why() {
    let app = spawn_app().await;
    let key = test_key(46);
    let token = app.authenticate("never-fires").await;
    let bearer = format!("Bearer {token}");
    async fn add_as(app: &TestApp, who: Option<&str>, fault: Value) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        match who {
            Some(bearer) if bearer.starts_with("Bearer ") => {
                headers.push(("authorization", bearer));
            }
            Some(key) => headers.push(("x-api-key", key)),
            None => {}
        }
        let body = serde_json::to_vec(&fault).expect("json");
        app.send(Method::POST, "/_sandbox/faults", &headers, Some(body))
            .await
    }
    let add = |who, fault| add_as(&app, who, fault);
    let refused = |reply: &Reply, says: &str| {
        assert_control_error(reply, 400, "INVALID_REQUEST");
        let message = reply.json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
    };
    for who in [Some(key.as_str()), Some(bearer.as_str()), None] {
        for path in ["/_sandbox/clock", "/_sandbox/**", "/_sandbox"] {
            let reply = add(who, json!({"path": path, "status": 500})).await;
            refused(&reply, "control requests are never faulted");
        }
        let query = json!({"path": "/partner/links?limit=1", "status": 500});
        refused(&add(who, query).await, "takes no query string");
    }
    for (who, path) in [
        (key.as_str(), "/widget/**"),
        (key.as_str(), "/api/authenticate"),
        (bearer.as_str(), "/api/authenticate"),
        (bearer.as_str(), "/magic-link/**"),
        (bearer.as_str(), "/docs/**"),
    ] {
        let reply = add(Some(who), json!({"path": path, "status": 503, "times": 1})).await;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
        let warning = reply.headers["x-linkbox-warning"].to_str().expect("text");
        assert!(
            warning.contains("touches only those that carry your own key or token"),
            "{warning}"
        );
    }
    // The account's own login fault fires on a login that carries its token...
    let login = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
            all.extend(headers.iter().map(|(name, value)| (*name, value.as_str())));
            app.send(
                Method::POST,
                "/api/authenticate",
                &all,
                Some(br#"{"username":"never-fires","password":"secret"}"#.to_vec()),
            )
            .await
        }
    };
    assert_eq!(login(vec![]).await.status, 200, "not on one without it");
    let carried = login(vec![("authorization", bearer.clone())]).await;
    assert_eq!(carried.status, 503, "{carried:?}");
    for (who, path) in [
        (key.as_str(), "/**"),
        (key.as_str(), "/*"),
        (bearer.as_str(), "/api/*"),
        (bearer.as_str(), "/services/**"),
    ] {
        let reply = add(Some(who), json!({"path": path, "status": 503})).await;
        assert_eq!(reply.status, 201, "{path}: {reply:?}");
        assert!(reply.headers.get("x-linkbox-warning").is_none(), "{path}");
    }
    let admin = json!({"path": "/api/authenticate", "status": 503, "times": 1});
    assert_eq!(add(None, admin).await.status, 201);
    let login = app
        .send(
            Method::POST,
            "/api/authenticate",
            &[("content-type", "application/json")],
            Some(br#"{"username":"never-fires","password":"secret"}"#.to_vec()),
        )
        .await;
    assert_eq!(login.status, 503, "the admin's fault fires: {login:?}");
}

/// `DELETE /_sandbox/faults` removes every fault the caller set: a query it would ignore
/// (`?id=flt_…`, as if it removed one) is a 400, and nothing is removed; so for a reset and
/// for clearing the drift report.
#[tokio::test]
async fn clearing_faults_takes_no_query() {
    let app = spawn_app().await;
    let key = test_key(47);
    add_fault(&app, &key, json!({"path": "/partner/links", "status": 503})).await;
    let faults = app.control(Method::GET, "/faults", Some(&key), None).await;
    let id = faults.json["faults"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let refused = app
        .control(
            Method::DELETE,
            &format!("/faults?id={id}"),
            Some(&key),
            None,
        )
        .await;
    assert_control_error(&refused, 400, "INVALID_REQUEST");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("\"id\""), "{message}");
    let kept = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(kept.json["faults"].as_array().map(Vec::len), Some(1));
    // The admin's DELETE removes the faults the admin set, not the tenant's.
    let admins = app.control(Method::DELETE, "/faults", None, None).await;
    assert_eq!(admins.status, 204);
    let kept = app.control(Method::GET, "/faults", Some(&key), None).await;
    assert_eq!(
        kept.json["faults"].as_array().map(Vec::len),
        Some(1),
        "{kept:?}"
    );
    let cleared = app
        .control(Method::DELETE, "/faults", Some(&key), None)
        .await;
    assert_eq!(cleared.status, 204);
    // The same for the other endpoints that forget: a reset asked of one tenant by the
    // admin (`?tenant=`, which it never took) forgets nothing, rather than everyone's data.
    let other = test_key(48);
    app.create_link_for(&other, "kept").await;
    let reset = app
        .control(Method::POST, "/reset?tenant=someone", None, None)
        .await;
    assert_control_error(&reset, 400, "INVALID_REQUEST");
    let listed = app.list_links(&other, "").await;
    assert_eq!(
        listed.data()["pagination"]["total"],
        1,
        "nothing was forgotten"
    );
    let drift = app
        .control(Method::DELETE, "/drift?endpoint=x", Some(&key), None)
        .await;
    assert_control_error(&drift, 400, "INVALID_REQUEST");
    assert_eq!(
        app.control(Method::POST, "/reset", Some(&other), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_snapshot_round_trips_through_a_reset() {
    let app = spawn_app().await;
    let key = test_key(12);
    let link = app.create_link_for(&key, "u1").await;
    let link_id = link["linkId"].as_str().expect("id");
    app.open_link(&key, link_id).await;
    app.create_operation(&key, link_id, &json!({"amount": 25}))
        .await;
    app.create_link_for(&key, "u2").await;
    let before = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(before.status, 200);
    assert_eq!(before.json["links"].as_array().map(Vec::len), Some(2));
    app.control(Method::POST, "/reset", Some(&key), None).await;
    assert_eq!(app.get_link(&key, link_id).await.status, 404);
    let restored = app
        .control(Method::PUT, "/snapshot", Some(&key), Some(&before.json))
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    let after = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(after.json, before.json);
    assert_eq!(app.get_link(&key, link_id).await.status, 200);
    let foreign = app
        .control(
            Method::PUT,
            "/snapshot",
            Some(&test_key(13)),
            Some(&before.json),
        )
        .await;
    assert_control_error(&foreign, 400, "INVALID_REQUEST");
    // A restore is held to the URL rule of webhook-config and of a link's callbackUrl.
    for (field, url, path) in [
        ("webhookUrl", "http://10.0.0.5/hooks", "webhookUrl"),
        ("webhookUrl", "http://[::1", "webhookUrl"),
        (
            "callbackUrl",
            "http://internal.example/hook",
            "links[1].callbackUrl",
        ),
    ] {
        let mut bad = before.json.clone();
        if field == "webhookUrl" {
            bad["webhookUrl"] = json!(url);
        } else {
            bad["links"][1]["callbackUrl"] = json!(url);
        }
        let refused = app
            .control(Method::PUT, "/snapshot", Some(&key), Some(&bad))
            .await;
        assert_control_error(&refused, 400, "INVALID_REQUEST");
        assert_eq!(
            refused.json["error"]["message"],
            format!(
                "Invalid request body at {path}: it must be an HTTPS URL, or http to \
                 localhost, 127.0.0.1 or [::1], of at most 2084 characters"
            ),
            "{url}"
        );
    }
    let mut good = before.json.clone();
    good["webhookUrl"] = json!("https://hooks.example/partner");
    good["links"][1]["callbackUrl"] = json!("http://127.0.0.1:9/hook");
    let accepted = app
        .control(Method::PUT, "/snapshot", Some(&key), Some(&good))
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.json, good);
}

#[tokio::test]
async fn unknown_control_paths_answer_in_linkboxs_envelope() {
    let app = spawn_app().await;
    let reply = app.control(Method::GET, "/nope", None, None).await;
    assert_control_error(&reply, 404, "NOT_FOUND");
    let bad_body = app
        .send(
            Method::POST,
            "/_sandbox/clock",
            &[("content-type", "application/json")],
            Some(b"{".to_vec()),
        )
        .await;
    assert_control_error(&bad_body, 400, "INVALID_REQUEST");
}

#[tokio::test]
async fn the_clock_cannot_be_moved_past_its_years_and_keeps_serving() {
    let app = spawn_app().await;
    let key = test_key(1);
    let set = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"setTo": "8999-12-31T00:00:00Z"})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    let far = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"advanceSeconds": 86_400 * 800})),
        )
        .await;
    assert_control_error(&far, 400, "INVALID_REQUEST");
    assert_eq!(
        far.json["error"]["message"],
        "The advanceSeconds field must keep the sandbox clock between the years 1970 and 9000"
    );
    let beyond = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"setTo": "9999-12-31T23:59:59Z"})),
        )
        .await;
    assert_control_error(&beyond, 400, "INVALID_REQUEST");
    // The steps at the ends of i64 (the smallest has no absolute value) are refused too.
    for seconds in [i64::MIN, i64::MAX] {
        let step = app
            .control(
                Method::POST,
                "/clock",
                Some(&key),
                Some(&json!({ "advanceSeconds": seconds })),
            )
            .await;
        assert_control_error(&step, 400, "INVALID_REQUEST");
        assert_eq!(
            step.json["error"]["message"], "The advanceSeconds field must be within a century",
            "{seconds}"
        );
    }
    assert_eq!(
        app.create_link(&key, &json!({"referenceId": "u"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_webhook_config_needs_its_url_and_only_an_explicit_null_clears_it() {
    let app = spawn_app().await;
    let key = test_key(1);
    let put = |body: Value| {
        let (app, key) = (&app, &key);
        async move {
            app.control(Method::PUT, "/m2m/webhook-config", Some(key), Some(&body))
                .await
        }
    };
    let set = put(json!({"url": "https://example.com/hook"})).await;
    assert_eq!(set.status, 200, "{set:?}");
    let missing = put(json!({})).await;
    assert_control_error(&missing, 400, "INVALID_REQUEST");
    assert!(
        missing.json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("missing field `url`")),
        "{missing:?}"
    );
    let partner = app.app.store.m2m().authenticate(&key).expect("partner");
    assert_eq!(
        partner.webhook_url().as_deref(),
        Some("https://example.com/hook")
    );
    let cleared = put(json!({"url": null})).await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert_eq!(cleared.json, json!({"url": null}));
    assert_eq!(partner.webhook_url(), None);
}

#[tokio::test]
async fn under_clock_admin_a_tenant_cannot_move_the_shared_clock() {
    let app = spawn_app_with(Options {
        admin_token: Some("root".into()),
        clock: Some(linkbox::config::ClockPolicy::Admin),
        ..Options::default()
    })
    .await;
    let key = linkbox_tests::test_key(77);
    let before = app.app.clock.now();
    let moved = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&serde_json::json!({"advanceSeconds": 3_153_600_000i64})),
        )
        .await;
    assert_eq!(moved.status, 403, "{moved:?}");
    assert_eq!(moved.json["error"]["code"], "ADMIN_REQUIRED");
    assert!(
        moved.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--clock admin"),
        "{moved:?}"
    );
    assert!(app.app.clock.now() - before < time::Duration::minutes(1));
    let read = app.control(Method::GET, "/clock", Some(&key), None).await;
    assert_eq!(read.status, 200, "{read:?}");
    let admin = app
        .send(
            Method::POST,
            "/_sandbox/clock",
            &[
                ("authorization", "Bearer root"),
                ("content-type", "application/json"),
            ],
            Some(br#"{"advanceSeconds": 60}"#.to_vec()),
        )
        .await;
    assert_eq!(admin.status, 200, "{admin:?}");
    // The dashboard's advance button is refused the same way: a 403 page saying why.
    let button = app
        .send(
            Method::POST,
            "/_sandbox/ui/clock",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(format!("key={key}&advanceSeconds=60").into_bytes()),
        )
        .await;
    assert_eq!(button.status, 403, "{button:?}");
    assert!(button.text.contains("admin token"), "{}", button.text);
}

/// Without `--admin-token` the admin is a request without credentials, and the refusal
/// says so rather than send a tenant looking for a token that does not exist.
#[tokio::test]
async fn under_clock_admin_without_a_token_the_refusal_names_who_the_admin_is() {
    let app = spawn_app_with(Options {
        clock: Some(linkbox::config::ClockPolicy::Admin),
        ..Options::default()
    })
    .await;
    let key = linkbox_tests::test_key(78);
    let moved = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&serde_json::json!({"advanceSeconds": 60})),
        )
        .await;
    assert_eq!(moved.status, 403, "{moved:?}");
    let message = moved.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no --admin-token") && message.contains("carries no key or token"),
        "{message}"
    );
}

#[test]
fn the_clock_policy_defaults_to_tenants_on_loopback_and_admin_elsewhere() {
    use linkbox::config::ClockPolicy;
    let settings = |addr: &str| {
        linkbox::Settings::resolve(Options::default(), addr.parse().expect("addr")).clock
    };
    assert_eq!(settings("127.0.0.1:1"), ClockPolicy::Tenants);
    assert_eq!(settings("[::1]:1"), ClockPolicy::Tenants);
    assert_eq!(settings("0.0.0.0:1"), ClockPolicy::Admin);
    assert_eq!(settings("192.0.2.7:1"), ClockPolicy::Admin);
}

#[tokio::test]
async fn the_journal_keeps_bodies_and_verifies_what_an_app_sent() {
    let app = spawn_app().await;
    let key = test_key(42);
    app.create_link_for(&key, "user-42").await;
    app.create_link_for(&key, "user-7").await;
    let entries = app
        .control(
            Method::GET,
            "/requests?bodyContains=user-42&header=content-type:application/json",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(entries.status, 200, "{entries:?}");
    let requests = entries.json["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["request"]["headers"]["x-api-key"], "[redacted]");
    assert!(
        requests[0]["response"]["body"]
            .as_str()
            .is_some_and(|body| body.contains("linkId"))
    );
    assert_eq!(
        requests[0]["response"]["headers"]["content-type"],
        "application/json"
    );
    let tenant = requests[0]["tenant"].as_str().expect("tenant").to_owned();
    let by_tenant = app
        .control(
            Method::GET,
            &format!("/requests?tenant={tenant}&since=2000-01-01T00:00:00Z"),
            None,
            None,
        )
        .await;
    assert_eq!(by_tenant.json["requests"].as_array().map(Vec::len), Some(2));

    let exactly_one = json!({"method": "POST", "path": "/partner/links",
        "bodyJson": {"referenceId": "user-42"}, "count": {"exactly": 1}});
    let verified = app
        .control(
            Method::POST,
            "/requests/verify",
            Some(&key),
            Some(&exactly_one),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    assert_eq!(verified.json, json!({"matched": 1}));

    let missing = json!({"path": "/partner/links", "bodyJson": {"referenceId": "user-9"},
        "count": {"atLeast": 1}});
    let failed = app
        .control(Method::POST, "/requests/verify", Some(&key), Some(&missing))
        .await;
    assert_eq!(failed.status, 409, "{failed:?}");
    assert_eq!(failed.json["error"]["code"], "VERIFICATION_FAILED");
    assert_eq!(failed.json["matched"], 0);
    let near = failed.json["nearMisses"].as_array().expect("near misses");
    assert_eq!(near.len(), 2);
    assert_eq!(near[0]["missed"], json!(["bodyJson"]));

    for (bad, field) in [
        (json!({"count": {"exactly": 1, "atMost": 2}}), "count"),
        (json!({"bodyJsn": {}}), "bodyJsn"),
        (json!({"path": "partner"}), "path"),
        (json!({"bodyJson": ["user-1"]}), "bodyJson"),
    ] {
        let refused = app
            .control(Method::POST, "/requests/verify", Some(&key), Some(&bad))
            .await;
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.json["error"]["code"], "INVALID_REQUEST");
        let message = refused.json["error"]["message"].as_str().expect("message");
        assert!(message.contains(field), "{message}");
    }
    for bad in ["header=nocolon", "since=yesterday"] {
        let refused = app
            .control(Method::GET, &format!("/requests?{bad}"), Some(&key), None)
            .await;
        assert_eq!(refused.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_segment_wildcard_fault_strikes_and_an_unusable_pattern_is_refused_by_name() {
    let app = spawn_app().await;
    let key = test_key(43);
    let link = app.create_link_for(&key, "u1").await;
    let link_id = link["linkId"].as_str().expect("link id");
    add_fault(
        &app,
        &key,
        json!({"path": "/partner/links/*/revoke", "status": 503}),
    )
    .await;
    assert_eq!(app.revoke_link(&key, link_id, None).await.status, 503);
    assert_eq!(app.get_link(&key, link_id).await.status, 200);
    let refused = app
        .control(
            Method::POST,
            "/faults",
            Some(&key),
            Some(&json!({"path": "/partner/**/revoke", "status": 503})),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("/partner/**/revoke"))
    );
}

/// One rule across the control API's bodies: a JSON object, and a field it does not know
/// is a 400 naming it (a typo in `webhook-config` or `operation` must not pass unseen).
#[tokio::test]
async fn control_bodies_are_objects_and_unknown_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let key = test_key(1);
    let link = app.create_link_for(&key, "u1").await;
    let link_id = link["linkId"].as_str().unwrap_or_default().to_owned();
    for (method, path, body) in [
        (
            Method::PUT,
            "/m2m/webhook-config".to_owned(),
            json!({"url": "http://127.0.0.1:9/h", "x": 1}),
        ),
        (
            Method::POST,
            format!("/m2m/links/{link_id}/open"),
            json!({"userAgent": "ua", "platfrom": "web"}),
        ),
        (
            Method::POST,
            format!("/m2m/links/{link_id}/operation"),
            json!({"amount": 10, "foo": 1}),
        ),
    ] {
        let reply = app.control(method, &path, Some(&key), Some(&body)).await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert!(
            reply.text.contains("unknown field"),
            "{path}: {}",
            reply.text
        );
    }
    let reply = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!([60, null, null])),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.json["error"]["message"],
        "Request body must be a JSON object"
    );
    // Nothing of those was done: the link is still only created, and the clock unmoved.
    let detail = app.get_link(&key, &link_id).await;
    assert_eq!(detail.data()["status"], "created", "{detail:?}");
}

/// A control request to `/_sandbox{path}` with a body of type `kind`.
async fn send_typed(
    app: &TestApp,
    (method, path): (&Method, &str),
    headers: &[(&str, &str)],
    kind: &str,
    body: &[u8],
) -> Reply {
    let mut headers = headers.to_vec();
    headers.push(("content-type", kind));
    app.send(
        method.clone(),
        &format!("/_sandbox{path}"),
        &headers,
        Some(body.to_vec()),
    )
    .await
}

/// Every control endpoint reads a body by one rule. One that takes none refuses a field,
/// named, anything but a JSON object, a type that is not JSON (415) and a body past 4 KiB
/// (413), doing nothing; with no body, blank or `{}` it answers as it always did. `connect`
/// refuses a field it does not take like the other endpoints that take a body.
#[tokio::test]
async fn every_control_endpoint_refuses_a_body_it_does_not_take() {
    let app = spawn_app().await;
    let key = test_key(19);
    let link = app.create_link_for(&key, "kept").await;
    let link_id = link["linkId"].as_str().unwrap_or_default().to_owned();
    let token = app.authenticate("strict-farm").await;
    let bearer = format!("Bearer {token}");
    let partner = [("x-api-key", key.as_str())];
    let leaf = [("authorization", bearer.as_str())];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let takes_none: Vec<(Method, String, Headers)> = vec![
        (Method::GET, "/clock".into(), &partner),
        (Method::POST, "/reset".into(), &partner),
        (
            Method::POST,
            format!("/m2m/links/{link_id}/operation/cancel"),
            &partner,
        ),
        (Method::POST, "/leaf/magic-links/nope/access".into(), &leaf),
        (Method::GET, "/webhooks".into(), &partner),
        (Method::POST, "/webhooks/whd_nope/replay".into(), &partner),
        (Method::GET, "/drift".into(), &partner),
        (Method::DELETE, "/drift".into(), &partner),
        (Method::GET, "/requests".into(), &partner),
        (Method::DELETE, "/requests".into(), &partner),
        (Method::GET, "/faults".into(), &partner),
        (Method::DELETE, "/faults".into(), &partner),
        (Method::GET, "/snapshot".into(), &partner),
    ];
    let large = format!(r#"{{"x": "{}"}}"#, "a".repeat(64 * 1024));
    for (method, path, headers) in &takes_none {
        let field = send_typed(
            &app,
            (method, path),
            headers,
            "application/json",
            br#"{"x": 1}"#,
        )
        .await;
        assert_control_error(&field, 400, "INVALID_REQUEST");
        let said = field.json["error"]["message"].as_str().unwrap_or_default();
        assert!(said.contains("unknown field `x`"), "{path}: {said}");
        let array = send_typed(&app, (method, path), headers, "application/json", b"[1]").await;
        assert_control_error(&array, 400, "INVALID_REQUEST");
        let text = send_typed(&app, (method, path), headers, "text/plain", b"garbage").await;
        assert_control_error(&text, 415, "INVALID_REQUEST");
        let too_large = send_typed(
            &app,
            (method, path),
            headers,
            "application/json",
            large.as_bytes(),
        )
        .await;
        assert_control_error(&too_large, 413, "INVALID_REQUEST");
        assert!(too_large.text.contains("4 KiB"), "{path}: {too_large:?}");
    }
    let connect = send_typed(
        &app,
        (&Method::POST, "/leaf/magic-links/nope/connect"),
        &leaf,
        "application/json",
        br#"{"provider": "JohnDeere", "providr": "Trimble"}"#,
    )
    .await;
    assert_control_error(&connect, 400, "INVALID_REQUEST");
    assert!(connect.text.contains("providr"), "{connect:?}");
    // None of it was done: the reset forgot nothing.
    assert_eq!(app.get_link(&key, &link_id).await.status, 200);
    for (method, path, headers) in &takes_none {
        let mut answers = vec![
            app.send(method.clone(), &format!("/_sandbox{path}"), headers, None)
                .await,
        ];
        for body in [&b"{}"[..], b" \n", b" { } "] {
            answers.push(send_typed(&app, (method, path), headers, "application/json", body).await);
        }
        answers.push(send_typed(&app, (method, path), headers, "text/plain", b"").await);
        for answer in answers {
            assert!(
                !matches!(answer.status, 400 | 413 | 415 | 500..),
                "{method} {path}: {answer:?}"
            );
        }
    }
    assert_eq!(app.get_link(&key, &link_id).await.status, 404, "reset");
}

/// A control body said to be of a type linkbox does not read is refused before anything is
/// done; JSON, no type, and `curl -d`'s form type are read as JSON.
#[tokio::test]
async fn a_control_body_of_another_type_is_a_415_and_changes_nothing() {
    let app = spawn_app().await;
    let key = test_key(1);
    let before = app.control(Method::GET, "/clock", Some(&key), None).await;
    let offset = before.json["offsetSeconds"].clone();
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let reply = app
            .send(
                Method::POST,
                "/_sandbox/clock",
                &[("x-api-key", &key), ("content-type", content_type)],
                Some(br#"{"advanceSeconds": 60}"#.to_vec()),
            )
            .await;
        assert_control_error(&reply, 415, "INVALID_REQUEST");
        assert!(reply.text.contains("application/json"), "{}", reply.text);
    }
    let after = app.control(Method::GET, "/clock", Some(&key), None).await;
    assert_eq!(
        after.json["offsetSeconds"], offset,
        "the clock did not move"
    );
    for content_type in [
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
    ] {
        let reply = app
            .send(
                Method::POST,
                "/_sandbox/clock",
                &[("x-api-key", &key), ("content-type", content_type)],
                Some(br#"{"frozen": false}"#.to_vec()),
            )
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {reply:?}");
    }
}

/// A restore of state no API call could make is refused, naming what is wrong, and changes
/// nothing: a link naming an operation the snapshot lacks, a status its timestamps deny, a
/// flow the sandbox does not serve, metadata that is not an object, an operation twice.
/// The message of the 400 that refuses `taken` changed by `edit` as a snapshot to restore.
async fn refused_restore(
    app: &TestApp,
    key: &str,
    taken: &Value,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut snapshot = taken.clone();
    edit(&mut snapshot);
    let refused = app
        .control(Method::PUT, "/snapshot", Some(key), Some(&snapshot))
        .await;
    assert_control_error(&refused, 400, "INVALID_REQUEST");
    refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_snapshot_of_impossible_state_is_refused_whole() {
    let app = spawn_app().await;
    let key = test_key(91);
    let link = app.create_link_for(&key, "u1").await;
    let link_id = link["linkId"].as_str().expect("id");
    app.open_link(&key, link_id).await;
    let operation = app
        .create_operation(&key, link_id, &json!({"amount": 25}))
        .await;
    assert_eq!(operation.status, 201, "{operation:?}");
    app.create_link_for(&key, "u2").await;
    let taken = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(taken.status, 200);
    let restored = app
        .control(Method::PUT, "/snapshot", Some(&key), Some(&taken.json))
        .await;
    assert_eq!(
        restored.status, 200,
        "the snapshot as taken restores: {restored:?}"
    );
    let index = |id: &str| {
        taken.json["links"]
            .as_array()
            .and_then(|links| links.iter().position(|link| link["linkId"] == id))
            .expect("the link is in the snapshot")
    };
    let operated = index(link_id);
    let plain = 1 - operated;
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "operationId",
            Box::new(move |s: &mut Value| s["links"][plain]["operationId"] = json!("op_x_abc123")),
        ),
        (
            "operationId",
            Box::new(|s: &mut Value| s["operations"] = json!([])),
        ),
        (
            "disagrees",
            Box::new(move |s: &mut Value| s["links"][plain]["status"] = json!("revoked")),
        ),
        (
            "disagrees",
            Box::new(move |s: &mut Value| s["links"][plain]["status"] = json!("opened")),
        ),
        (
            "flow",
            Box::new(move |s: &mut Value| s["links"][plain]["flow"] = json!("m2m-nope")),
        ),
        (
            "metadata",
            Box::new(move |s: &mut Value| s["links"][plain]["metadata"] = json!("x")),
        ),
        (
            "twice",
            Box::new(|s: &mut Value| {
                let first = s["operations"][0].clone();
                if let Some(operations) = s["operations"].as_array_mut() {
                    operations.push(first);
                }
            }),
        ),
        (
            "never opened",
            Box::new(move |s: &mut Value| {
                let operation = s["links"][operated]["operationId"].take();
                s["links"][plain]["operationId"] = operation;
                s["operations"][0]["linkId"] = s["links"][plain]["linkId"].clone();
                s["operations"][0]["referenceId"] = s["links"][plain]["referenceId"].clone();
            }),
        ),
        (
            "never opened",
            Box::new(move |s: &mut Value| {
                s["dataRequests"][0]["linkId"] = s["links"][plain]["linkId"].clone();
            }),
        ),
        (
            "already has one",
            Box::new(|s: &mut Value| {
                let mut second = s["dataRequests"][0].clone();
                let id = second["dataRequestId"].as_str().unwrap_or_default();
                let other = if id.ends_with('0') { '1' } else { '0' };
                second["dataRequestId"] = json!(format!("{}{other}", &id[..id.len() - 1]));
                if let Some(requests) = s["dataRequests"].as_array_mut() {
                    requests.push(second);
                }
            }),
        ),
        (
            "at least one",
            Box::new(|s: &mut Value| s["dataRequests"][0]["requiredFields"] = json!([])),
        ),
        (
            "not a CIP field",
            Box::new(|s: &mut Value| s["dataRequests"][0]["requiredFields"] = json!(["shoeSize"])),
        ),
        (
            "\"dob\" twice",
            Box::new(|s: &mut Value| {
                s["dataRequests"][0]["requiredFields"] = json!(["dob", "idType", "dob"]);
            }),
        ),
        // Read no further than that: a million `""` took fifteen times their size.
        (
            "at most the 7 CIP fields",
            Box::new(|s: &mut Value| {
                s["dataRequests"][0]["requiredFields"] = json!(vec![""; 8]);
            }),
        ),
        (
            "userId",
            Box::new(|s: &mut Value| s["users"][1]["userId"] = s["users"][0]["userId"].clone()),
        ),
        (
            "another link's",
            Box::new(move |s: &mut Value| {
                s["links"][plain]["token"] = s["links"][operated]["token"].clone();
            }),
        ),
        (
            "UUID v4",
            Box::new(move |s: &mut Value| {
                s["links"][plain]["token"] = json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
            }),
        ),
        (
            "a link lives 5 to 10080 minutes",
            Box::new(move |s: &mut Value| {
                s["links"][plain]["expiresAt"] = json!("8999-01-01T00:00:00.000Z");
            }),
        ),
        (
            "has no link",
            Box::new(|s: &mut Value| {
                let user = json!({"userId": format!("user_{}_zz9zz9", s["partner"].as_str().unwrap_or_default()),
                    "referenceId": "nobody", "userData": null});
                if let Some(users) = s["users"].as_array_mut() {
                    users.push(user);
                }
            }),
        ),
        (
            "6 letters or digits",
            Box::new(move |s: &mut Value| {
                let id = format!("op_{}_ab c!-", s["partner"].as_str().unwrap_or_default());
                s["links"][operated]["operationId"] = json!(id);
                s["operations"][0]["operationId"] = json!(id);
            }),
        ),
    ];
    for (says, edit) in edits {
        let message = refused_restore(&app, &key, &taken.json, edit).await;
        assert!(message.contains(says), "{says}: {message}");
    }
    let after = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(after.json, taken.json, "nothing changed");
}

/// Uses `key`'s partner as a client would: a link opened, its data request fulfilled and an
/// operation completed on it; one revoked with a reason; one left to expire by moving the
/// clock, then its user's next; one created with `userData`, opened, its operation
/// cancelled; then seeded links of every state. Returns the snapshot taken of it.
async fn use_normally(app: &TestApp, key: &str) -> Value {
    let opened = app.create_link_for(key, "u1").await;
    let opened_id = opened["linkId"].as_str().expect("id");
    let open = app.open_link(key, opened_id).await;
    assert_eq!(open.status, 200, "{open:?}");
    let request = open.json["dataRequest"]["dataRequestId"]
        .as_str()
        .expect("a user without data is asked for it");
    let fulfilled = app
        .fulfil_data_request(
            key,
            request,
            &json!({"referenceId": "u1", "userData": {
                "name": {"firstName": "Ana", "lastName": "Ruiz"},
                "idNumber": "RUXA900101HDFLNN09", "idType": "CURP", "dob": "1990-01-01"}}),
        )
        .await;
    assert_eq!(fulfilled.status, 200, "{fulfilled:?}");
    let operation = app
        .create_operation(key, opened_id, &json!({"amount": 25, "fee": 1.5}))
        .await;
    assert_eq!(operation.status, 201, "{operation:?}");
    let revoked = app.create_link_for(key, "u2").await;
    let revoked_id = revoked["linkId"].as_str().expect("id");
    let revoke = app
        .revoke_link(
            key,
            revoked_id,
            Some(&json!({"reason": "customer request"})),
        )
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    app.create_link_for(key, "u3").await;
    app.move_clock(key, 2 * 3600).await;
    app.create_link_for(key, "u3").await;
    let with_data = app
        .create_link(
            key,
            &json!({"referenceId": "u4", "metadata": {"orderId": "A1"}, "userData": {
                "name": {"firstName": "Luis"}, "dob": "1985-05-05",
                "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "12345"}}}}),
        )
        .await;
    assert_eq!(with_data.status, 201, "{with_data:?}");
    let with_data_id = with_data.json["data"]["linkId"].as_str().expect("id");
    app.open_link(key, with_data_id).await;
    let operation = app
        .create_operation(key, with_data_id, &json!({"amount": 10}))
        .await;
    assert_eq!(operation.status, 201, "{operation:?}");
    let cancel = app
        .control(
            Method::POST,
            &format!("/m2m/links/{with_data_id}/operation/cancel"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    let seeded = app
        .control(
            Method::POST,
            "/seed",
            Some(key),
            Some(&json!({"api": "m2m", "count": 60, "rngSeed": 7})),
        )
        .await;
    assert_eq!(seeded.status, 201, "{seeded:?}");
    let taken = app.control(Method::GET, "/snapshot", Some(key), None).await;
    assert_eq!(taken.status, 200, "{taken:?}");
    taken.json
}

/// A snapshot of a sandbox used as clients use it, with links opened, revoked, expired by
/// the clock and renewed, data requests fulfilled and operations completed and cancelled,
/// restores after a reset as it was taken: the checks against impossible state refuse none
/// of it.
#[tokio::test]
async fn a_snapshot_of_a_sandbox_used_normally_restores_after_a_reset() {
    let app = spawn_app().await;
    let key = test_key(92);
    let taken = use_normally(&app, &key).await;
    let statuses: Vec<&str> = taken["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|link| link["status"].as_str())
        .collect();
    for status in ["created", "opened", "revoked"] {
        assert!(statuses.contains(&status), "{status}: {statuses:?}");
    }
    let fulfilled = taken["dataRequests"]
        .as_array()
        .expect("data requests")
        .iter()
        .any(|request| request["fulfilledAt"].is_string());
    assert!(fulfilled, "{taken}");
    assert!(taken["operations"].as_array().expect("operations").len() >= 2);
    restores_after_a_reset(&app, &key, &taken).await;
}

/// Resets `key`'s partner, restores `taken`, and finds its snapshot is `taken` again.
async fn restores_after_a_reset(app: &TestApp, key: &str, taken: &Value) {
    let reset = app.control(Method::POST, "/reset", Some(key), None).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    let restored = app
        .control(Method::PUT, "/snapshot", Some(key), Some(taken))
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    let after = app.control(Method::GET, "/snapshot", Some(key), None).await;
    assert_eq!(&after.json, taken);
}

/// What API calls make with the sandbox clock moved back restores: a link revoked and one
/// opened after a move back (each stamped before its `createdAt`), a re-seed's returning
/// users, and a snapshot taken and restored while the clock stands an hour back.
#[tokio::test]
async fn a_snapshot_of_a_sandbox_whose_clock_moved_back_restores() {
    let app = spawn_app().await;
    let key = test_key(94);
    let back = |seconds: i64| {
        let app = &app;
        let key = &key;
        async move {
            let moved = app
                .control(
                    Method::POST,
                    "/clock",
                    Some(key),
                    Some(&json!({"advanceSeconds": -seconds})),
                )
                .await;
            assert_eq!(moved.status, 200, "{moved:?}");
        }
    };
    let revoked = app.create_link(&key, &json!({"referenceId": "c1"})).await;
    let revoked = revoked.data()["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let opened = app.create_link(&key, &json!({"referenceId": "c2"})).await;
    let opened = opened.data()["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    back(60).await;
    assert_eq!(app.revoke_link(&key, &revoked, None).await.status, 200);
    assert_eq!(app.open_link(&key, &opened).await.status, 200);
    for _ in 0..2 {
        let seeded = app
            .control(
                Method::POST,
                "/seed",
                Some(&key),
                Some(&json!({"api": "m2m", "count": 30, "rngSeed": 5})),
            )
            .await;
        assert_eq!(seeded.status, 201, "{seeded:?}");
    }
    back(3600).await;
    let taken = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await
        .json;
    restores_after_a_reset(&app, &key, &taken).await;
}

/// A restore of state no API call could make is refused with a 400 naming the item and its
/// field, and changes nothing: a `userData` or `referenceId` the API refuses (or a
/// `userData` or `metadata` of more values than a request may hold), an expiry not
/// after its link's creation, a revoke reason on a link not revoked, a data request twice,
/// an operation whose `linkId` or `referenceId` is not its link's, an amount the operations
/// API refuses.
#[tokio::test]
async fn a_snapshot_no_api_call_could_make_is_refused_naming_the_item() {
    let app = spawn_app().await;
    let key = test_key(93);
    let taken = use_normally(&app, &key).await;
    let restored = app
        .control(Method::PUT, "/snapshot", Some(&key), Some(&taken))
        .await;
    assert_eq!(restored.status, 200, "as taken it restores: {restored:?}");
    let links = taken["links"].as_array().expect("links").clone();
    let link_of = |reference: &str, nth: usize| {
        links
            .iter()
            .enumerate()
            .filter(|(_, link)| link["referenceId"] == reference)
            .nth(nth)
            .map(|(index, link)| {
                (
                    index,
                    link["linkId"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .expect("the link is in the snapshot")
    };
    let user_of = |reference: &str| {
        taken["users"]
            .as_array()
            .and_then(|users| {
                users
                    .iter()
                    .position(|user| user["referenceId"] == reference)
            })
            .map(|index| {
                let id = taken["users"][index]["userId"].as_str().unwrap_or_default();
                (index, id.to_owned())
            })
            .expect("the user is in the snapshot")
    };
    let (opened, opened_id) = link_of("u1", 0);
    let (revoked, revoked_id) = link_of("u2", 0);
    let (_, renewed_id) = link_of("u3", 1);
    let (renewed, _) = link_of("u3", 1);
    let (u2, u2_id) = user_of("u2");
    let (u4, u4_id) = user_of("u4");
    let operation_id = taken["operations"][0]["operationId"]
        .as_str()
        .expect("operation")
        .to_owned();
    assert_eq!(taken["operations"][0]["linkId"], opened_id.as_str());
    let request_id = taken["dataRequests"][0]["dataRequestId"]
        .as_str()
        .expect("data request")
        .to_owned();
    let long = "x".repeat(256);
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(Vec<String>, Edit)> = vec![
        (
            vec![u4_id.clone(), "userData.name".into()],
            Box::new(move |s: &mut Value| {
                s["users"][u4]["userData"] =
                    json!({"name": 5, "dob": [1], "paymentMethod": {"type": "crypto"}});
            }),
        ),
        (
            vec![u4_id.clone(), "userData.paymentMethod.type".into()],
            Box::new(move |s: &mut Value| {
                s["users"][u4]["userData"] = json!({"paymentMethod": {"type": "crypto"}});
            }),
        ),
        (
            vec![u4_id.clone(), "userData".into(), "object".into()],
            Box::new(move |s: &mut Value| s["users"][u4]["userData"] = json!([1])),
        ),
        // Counted in their text before either is read as a tree.
        (
            vec![u4_id.clone(), "userData".into(), "10000".into()],
            Box::new(move |s: &mut Value| {
                s["users"][u4]["userData"] = json!({"name": vec![0; 10_001]});
            }),
        ),
        (
            vec![opened_id.clone(), "metadata".into(), "10000".into()],
            Box::new(move |s: &mut Value| {
                s["links"][opened]["metadata"] = json!({"n": vec![0; 10_001]});
            }),
        ),
        (
            vec![u2_id.clone(), "referenceId".into(), "255".into()],
            Box::new(move |s: &mut Value| {
                s["users"][u2]["referenceId"] = json!(long);
                s["links"][revoked]["referenceId"] = json!(long);
            }),
        ),
        (
            vec![u2_id.clone(), "referenceId".into(), "required".into()],
            Box::new(move |s: &mut Value| {
                s["users"][u2]["referenceId"] = json!("  ");
                s["links"][revoked]["referenceId"] = json!("  ");
            }),
        ),
        (
            vec![opened_id.clone(), "expiresAt".into(), "createdAt".into()],
            Box::new(move |s: &mut Value| {
                s["links"][opened]["expiresAt"] = json!("2000-01-01T00:00:00.000Z");
            }),
        ),
        (
            vec![renewed_id.clone(), "revokeReason".into()],
            Box::new(move |s: &mut Value| {
                s["links"][renewed]["revokeReason"] = json!("fraud review");
            }),
        ),
        (
            vec![request_id.clone(), "dataRequestId".into(), "twice".into()],
            Box::new(|s: &mut Value| {
                let first = s["dataRequests"][0].clone();
                if let Some(requests) = s["dataRequests"].as_array_mut() {
                    requests.push(first);
                }
            }),
        ),
        (
            vec![operation_id.clone(), "linkId".into()],
            Box::new(|s: &mut Value| {
                let partner = s["partner"].as_str().unwrap_or_default().to_owned();
                s["operations"][0]["linkId"] = json!(format!("link_{partner}_ffffffffffff"));
            }),
        ),
        (
            vec![operation_id.clone(), "linkId".into(), revoked_id.clone()],
            Box::new(move |s: &mut Value| {
                s["operations"][0]["linkId"] = s["links"][revoked]["linkId"].clone();
            }),
        ),
        (
            vec![operation_id.clone(), "referenceId".into()],
            Box::new(|s: &mut Value| s["operations"][0]["referenceId"] = json!("u2")),
        ),
        (
            vec![operation_id.clone(), "operations[0].amount.send".into()],
            Box::new(|s: &mut Value| s["operations"][0]["amount"]["send"] = json!(-5)),
        ),
        (
            vec![operation_id.clone(), "operations[0].amount.fee".into()],
            Box::new(|s: &mut Value| s["operations"][0]["amount"]["fee"] = json!(25)),
        ),
        (
            vec![operation_id.clone(), "operations[0].amount.receive".into()],
            Box::new(|s: &mut Value| s["operations"][0]["amount"]["receive"] = json!(-1)),
        ),
        (
            vec![
                operation_id.clone(),
                "operations[0].amount.sendCurrency".into(),
            ],
            Box::new(|s: &mut Value| s["operations"][0]["amount"]["sendCurrency"] = json!("usd")),
        ),
        (
            // More values than a create's body may hold: read back as a tree on every read.
            vec![opened_id.clone(), "metadata".into(), "10000".into()],
            Box::new(move |s: &mut Value| {
                s["links"][opened]["metadata"] = json!({"a": vec![json!({"": 0}); 5_001]});
            }),
        ),
    ];
    for (names, edit) in edits {
        let message = refused_restore(&app, &key, &taken, edit).await;
        for name in &names {
            assert!(message.contains(name.as_str()), "{name}: {message}");
        }
    }
    let after = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(after.json, taken, "nothing changed");
}

/// A control write refused (a seed of no links, of no API or the API the key is not of, or
/// past the storage budget, a fault of no status the API takes, a webhook URL it does not
/// take) makes no tenant for a key that never wrote, and takes no place under
/// `--max-tenants`: a place is a first write's.
#[tokio::test]
async fn a_refused_control_write_makes_no_tenant_and_takes_no_place() {
    let app = spawn_app_with(Options {
        max_tenants: Some(1),
        max_tenant_mib: Some(1),
        ..Options::default()
    })
    .await;
    let stranger = test_key(94);
    for (method, path, body) in [
        (Method::POST, "/seed", json!({"api": "m2m", "count": 0})),
        (
            Method::POST,
            "/seed",
            json!({"api": "m2m", "count": 3, "mix": {"created": 0}}),
        ),
        (Method::POST, "/seed", json!({"api": "leaf", "count": 1})),
        (Method::POST, "/seed", json!({"api": "nope", "count": 1})),
        (Method::POST, "/faults", json!({"status": 99})),
        (
            Method::PUT,
            "/m2m/webhook-config",
            json!({"url": "ftp://x"}),
        ),
    ] {
        let refused = app
            .control(method, path, Some(&stranger), Some(&body))
            .await;
        assert_eq!(refused.status, 400, "{path} {body}: {refused:?}");
    }
    // A seed past the storage budget a new tenant would have (1 MiB: a thousand links take
    // two at most) is refused before the tenant is made.
    let full = app
        .control(
            Method::POST,
            "/seed",
            Some(&stranger),
            Some(&json!({"api": "m2m", "count": 1000})),
        )
        .await;
    assert_eq!(full.status, 403, "{full:?}");
    assert_eq!(full.json["error"]["code"], "STORAGE_FULL", "{full:?}");
    let first = app
        .create_link(&test_key(95), &json!({"referenceId": "first"}))
        .await;
    assert_eq!(first.status, 201, "the one place is free: {first:?}");
    let second = app
        .create_link(&stranger, &json!({"referenceId": "second"}))
        .await;
    assert_eq!(second.status, 403, "{second:?}");
}

/// A request carrying both a partner key and a Leaf token is its API's tenant's: a Leaf
/// request is journaled under the account and struck by the account's faults, an M2M one
/// under the partner, as each API acts for its own. Named by the key everywhere, a Leaf
/// request went to the partner's journal and the account's own faults never struck it.
#[tokio::test]
async fn a_request_with_a_key_and_a_token_is_its_apis_tenants() {
    let app = spawn_app().await;
    let key = test_key(61);
    let made = app
        .create_link(&key, &json!({"referenceId": "keyed"}))
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let token = app.authenticate("both-farm").await;
    let bearer = format!("Bearer {token}");
    let users = "/services/usermanagement/api/users";
    let fault = json!({"path": users, "status": 418, "times": 1});
    let as_account = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let added = app
        .send(
            Method::POST,
            "/_sandbox/faults",
            &as_account,
            Some(serde_json::to_vec(&fault).expect("json")),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    let both = [
        ("x-api-key", key.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let struck = app.send(Method::GET, users, &both, None).await;
    assert_eq!(struck.status, 418, "the account's fault: {struck:?}");
    let listed = app.send(Method::GET, users, &both, None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let links = app.send(Method::GET, "/partner/links", &both, None).await;
    assert_eq!(links.status, 200, "{links:?}");
    let journal = |headers: [(&'static str, String); 1], path: &'static str| {
        let app = &app;
        async move {
            let headers = [(headers[0].0, headers[0].1.as_str())];
            let reply = app
                .send(
                    Method::GET,
                    &format!("/_sandbox/requests?path={path}"),
                    &headers,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.json["requests"].as_array().map_or(0, Vec::len)
        }
    };
    let account = || [("authorization", bearer.clone())];
    let partner = || [("x-api-key", key.clone())];
    assert_eq!(journal(account(), users).await, 2, "the account's journal");
    assert_eq!(journal(partner(), users).await, 0, "not the partner's");
    assert_eq!(
        journal(partner(), "/partner/links").await,
        2,
        "the create and the list"
    );
    assert_eq!(journal(account(), "/partner/links").await, 0);
}
