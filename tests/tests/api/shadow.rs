//! Shadow mode against a real upstream: a second linkbox plays the vendor. Honest, it shows
//! no drift, and the client gets the vendor's answer byte for byte; behind a small proxy
//! that changes one documented fact at a time, each change is reported under its rule and
//! nothing else is. Also: live keys are refused unforwarded, an unreachable vendor is a 502
//! in the API's shape and an error (not a difference), and linkbox's own webhooks are not
//! sent in shadow mode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use linkbox::Options;
use linkbox::config::Shadow;
use linkbox_tests::{Reply, TestApp, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};
use warp::Filter;

const WIDGETS: &str = "/services/widgets/api";

/// A linkbox shadowing both APIs of `upstream`.
async fn shadowing(upstream: &str) -> TestApp {
    let url: url::Url = upstream.parse().expect("upstream URL");
    spawn_app_with(Options {
        shadow: Shadow {
            m2m: Some(url.clone()),
            leaf: Some(url),
            ..Shadow::default()
        },
        ..Options::default()
    })
    .await
}

/// The drift report once `n` requests were compared or failed to be (the comparison runs
/// after the answer is sent).
async fn drift_after(app: &TestApp, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = app.control(Method::GET, "/drift", None, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let done = reply.json["compared"].as_u64().unwrap_or(0)
            + reply.json["errors"].as_u64().unwrap_or(0);
        if done >= n {
            return reply.json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {n} requests compared: {}",
            reply.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An M2M and a Leaf flow, each request answered; returns how many requests were sent.
async fn flows(app: &TestApp, key: &str) -> u64 {
    let mut sent = 0;
    let created = app
        .create_link(
            key,
            &json!({"referenceId": "shadow-user-1", "metadata": {"plan": "gold"},
                    "userData": {"firstName": "Ada", "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}}}),
        )
        .await;
    sent += 1;
    assert!(
        matches!(created.status, 200 | 201),
        "a created link (the status is one of the facts changed below): {created:?}"
    );
    let link_id = created.data()["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    for reply in [
        app.get_link(key, &link_id).await,
        app.list_links(key, "limit=5").await,
        app.create_link(key, &json!({"referenceId": "shadow-user-1"}))
            .await,
        app.create_link(key, &json!({"referenceId": ""})).await,
        app.get_link(key, "link_nobody_000000000000").await,
        app.revoke_link(key, &link_id, Some(&json!({"reason": "done"})))
            .await,
        app.revoke_link(key, &link_id, None).await,
        app.m2m(Method::GET, "/partner/links", "m2m_test_short", None)
            .await,
    ] {
        sent += 1;
        assert!(reply.status < 500, "{reply:?}");
    }
    let token = app.authenticate("shadow@example.com").await;
    sent += 1;
    let link = app
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/authentication"),
            &token,
            Some(&json!({"externalId": "ext-1", "provider": "JohnDeere"})),
        )
        .await;
    sent += 1;
    assert_eq!(link.status, 200, "{link:?}");
    let id = link.json["id"].as_str().expect("magic link id").to_owned();
    for reply in [
        app.leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/authentication/{id}"),
            &token,
            None,
        )
        .await,
        app.leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/authentication"),
            &token,
            None,
        )
        .await,
        app.leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/authentication"),
            &token,
            Some(&json!({"externalId": "ext-2", "provider": "Nobody"})),
        )
        .await,
        app.leaf(
            Method::DELETE,
            &format!("{WIDGETS}/magic-link/authentication/{id}"),
            &token,
            None,
        )
        .await,
    ] {
        sent += 1;
        assert!(reply.status < 500, "{reply:?}");
    }
    sent
}

#[tokio::test]
async fn an_honest_vendor_shows_no_drift_and_the_client_gets_its_answers() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let key = test_key(1601);
    let sent = flows(&shadow, &key).await;
    let report = drift_after(&shadow, sent).await;
    assert_eq!(report["compared"], sent, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["differences"], json!([]), "{report}");
    // What the vendor holds is what the client created through the shadow.
    let listed = vendor.list_links(&key, "").await;
    assert_eq!(listed.data()["pagination"]["total"], 1, "{listed:?}");
    let link_id = listed.data()["items"][0]["linkId"]
        .as_str()
        .expect("the vendor holds the link");
    let direct = vendor.get_link(&key, link_id).await;
    let through = shadow.get_link(&key, link_id).await;
    assert_eq!(through.status, direct.status);
    assert_eq!(through.text, direct.text, "byte for byte");
    assert_eq!(
        through.header("content-type"),
        direct.header("content-type")
    );
    // Both sides journaled the request; the shadow's journal shows the vendor's answer.
    let journal = shadow
        .control(
            Method::GET,
            "/requests?path=/partner/links&method=POST",
            None,
            None,
        )
        .await;
    let statuses: Vec<&Value> = journal.json["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|entry| &entry["status"])
        .collect();
    assert!(statuses.contains(&&json!(201)), "{journal:?}");
}

/// A proxy in front of `vendor` that passes every request through and lets `mutate`
/// change the answer to the requests it picks: `(method, path, status, body) → (status,
/// body)`.
type Mutation = dyn Fn(&str, &str, u16, Value) -> (u16, Value) + Send + Sync;

async fn drifting(vendor: &TestApp, mutate: Arc<Mutation>) -> SocketAddr {
    drifting_without(vendor, mutate, &[]).await
}

/// [`drifting`], and the vendor's answers lose the headers named in `dropped`.
async fn drifting_without(
    vendor: &TestApp,
    mutate: Arc<Mutation>,
    dropped: &'static [&'static str],
) -> SocketAddr {
    let base = vendor.base.clone();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: http::HeaderMap,
                  body: Bytes| {
                let (client, base, mutate) = (client.clone(), base.clone(), mutate.clone());
                async move {
                    let mut url = format!("{base}{}", path.as_str());
                    if !query.is_empty() {
                        url = format!("{url}?{query}");
                    }
                    let mut request = client.request(method.clone(), url);
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    let answer = request.body(body).send().await.expect("vendor answers");
                    let status = answer.status().as_u16();
                    let mut answer_headers = answer.headers().clone();
                    let bytes = answer.bytes().await.expect("vendor body");
                    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let (new_status, new_json) =
                        mutate(method.as_str(), path.as_str(), status, json.clone());
                    let body = if new_json == json {
                        bytes.to_vec()
                    } else {
                        serde_json::to_vec(&new_json).expect("json")
                    };
                    answer_headers.remove("content-length");
                    answer_headers.remove("transfer-encoding");
                    for name in dropped {
                        answer_headers.remove(*name);
                    }
                    let mut response = warp::reply::Response::new(Bytes::from(body).into());
                    *response.status_mut() =
                        http::StatusCode::from_u16(new_status).expect("status");
                    *response.headers_mut() = answer_headers;
                    response
                }
            },
        )
        .boxed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(linkbox::http::serve(
        listener,
        route,
        std::future::pending(),
    ));
    addr
}

/// The differences the flows show through a proxy that applies `mutate`.
async fn drift_through(n: u32, mutate: Arc<Mutation>) -> Vec<Value> {
    let vendor = spawn_app().await;
    let proxy = drifting(&vendor, mutate).await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let sent = flows(&shadow, &test_key(n)).await;
    let report = drift_after(&shadow, sent).await;
    assert_eq!(report["errors"], 0, "{report}");
    report["differences"]
        .as_array()
        .expect("differences")
        .clone()
}

/// Asserts exactly one difference, on `endpoint` under `rule` at `pointer`.
#[track_caller]
fn only(differences: &[Value], endpoint: &str, rule: &str, pointer: &str) {
    assert_eq!(differences.len(), 1, "{differences:#?}");
    let difference = &differences[0];
    assert_eq!(difference["endpoint"], endpoint, "{difference:#}");
    assert_eq!(difference["rule"], rule, "{difference:#}");
    assert_eq!(difference["pointer"], pointer, "{difference:#}");
    assert!(difference["count"].as_u64().is_some_and(|n| n >= 1));
    assert!(
        matches!(difference["tag"].as_str(), Some("doc" | "design")),
        "{difference:#}"
    );
}

fn is_create(method: &str, path: &str) -> bool {
    method == "POST" && path == "/partner/links"
}

#[tokio::test]
async fn a_changed_status_is_reported_under_status() {
    let differences = drift_through(
        1602,
        Arc::new(|method, path, status, body| {
            if is_create(method, path) && status == 201 {
                (200, body)
            } else {
                (status, body)
            }
        }),
    )
    .await;
    only(&differences, "POST /partner/links", "status", "");
}

/// HEAD requests of every kind of answer — 200 (a detail and pages of both APIs), 401, 404,
/// 405 — through `app`, the detail's expected to be `detail`; each answer is checked to be
/// bodiless. Returns how many requests were sent.
async fn heads(app: &TestApp, key: &str, detail: u16) -> u64 {
    let link = app.create_link_for(key, "head-user").await;
    let link_id = link["linkId"].as_str().expect("linkId");
    let token = app.authenticate("head@example.com").await;
    let mut sent = 2;
    let m2m = [
        (format!("/partner/links/{link_id}"), key, detail),
        ("/partner/links?limit=5".to_owned(), key, 200),
        ("/partner/links".to_owned(), "", 401),
        (
            "/partner/links/link_nobody_000000000000".to_owned(),
            key,
            404,
        ),
        (format!("/partner/links/{link_id}/revoke"), key, 405),
    ];
    for (path, key, status) in m2m {
        let headers: &[(&str, &str)] = if key.is_empty() {
            &[]
        } else {
            &[("x-api-key", key)]
        };
        let reply = app.send(Method::HEAD, &path, headers, None).await;
        sent += 1;
        assert_eq!(reply.status, status, "HEAD {path}: {reply:?}");
        assert!(reply.text.is_empty(), "HEAD {path}: {reply:?}");
    }
    let bearer = format!("Bearer {token}");
    for (path, status) in [
        (format!("{WIDGETS}/magic-link/provider?page=0&size=2"), 200),
        (format!("{WIDGETS}/magic-link/provider/bm9ib2R5"), 404),
    ] {
        let reply = app
            .send(Method::HEAD, &path, &[("authorization", &bearer)], None)
            .await;
        sent += 1;
        assert_eq!(reply.status, status, "HEAD {path}: {reply:?}");
        assert!(reply.text.is_empty(), "HEAD {path}: {reply:?}");
    }
    sent
}

/// A HEAD answer has no body: the vendor's has none, and linkbox's own GET body is not
/// what a client of its HEAD gets. Through a shadow of an honest vendor, HEADs show no
/// drift.
#[tokio::test]
async fn heads_through_an_honest_vendor_show_no_drift() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let sent = heads(&shadow, &test_key(1620), 200).await;
    let report = drift_after(&shadow, sent).await;
    assert_eq!(report["compared"], sent, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["differences"], json!([]), "{report}");
}

/// What a HEAD has — its status — is still compared: a vendor whose HEAD of a link finds
/// nothing is reported under `status`, and nothing else is.
#[tokio::test]
async fn a_changed_head_status_is_reported_under_status() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, body| {
            let detail = path.starts_with("/partner/links/") && !path.ends_with("/revoke");
            if method == "HEAD" && detail && status == 200 {
                (404, body)
            } else {
                (status, body)
            }
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let sent = heads(&shadow, &test_key(1621), 404).await;
    let report = drift_after(&shadow, sent).await;
    assert_eq!(report["errors"], 0, "{report}");
    let differences = report["differences"].as_array().expect("differences");
    only(differences, "HEAD /partner/links/{linkId}", "status", "");
    assert_eq!(differences[0]["upstream"], 404);
    assert_eq!(differences[0]["linkbox"], 200);
}

#[tokio::test]
async fn a_changed_error_message_is_reported_under_value() {
    let differences = drift_through(
        1603,
        Arc::new(|method, path, status, mut body| {
            if method == "GET" && path.starts_with("/partner/links/") && status == 404 {
                body["error"]["message"] = json!("No such link");
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "GET /partner/links/{linkId}",
        "value",
        "/error/message",
    );
}

#[tokio::test]
async fn a_missing_field_is_reported_under_missing_field() {
    let differences = drift_through(
        1604,
        Arc::new(|method, path, status, mut body| {
            if is_create(method, path)
                && status == 201
                && let Some(data) = body["data"].as_object_mut()
            {
                data.remove("token");
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "POST /partner/links",
        "unexpected-field",
        "/data/token",
    );
}

#[tokio::test]
async fn a_changed_default_is_reported_under_relation() {
    // The vendor's default expiry becomes 30 minutes instead of 60.
    let differences = drift_through(
        1605,
        Arc::new(|method, path, status, mut body| {
            if is_create(method, path) && status == 201 {
                let created = body["data"]["createdAt"].as_str().map(str::to_owned);
                if let Some(created) = created {
                    let at = time::OffsetDateTime::parse(
                        &created,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .expect("createdAt");
                    let expires = at + time::Duration::minutes(30);
                    body["data"]["expiresAt"] = json!(linkbox_contracts::timefmt::millis(expires));
                }
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "POST /partner/links",
        "relation",
        "/data/expiresAt",
    );
}

#[tokio::test]
async fn a_changed_timestamp_format_is_reported_under_format() {
    let differences = drift_through(
        1606,
        Arc::new(|method, path, status, mut body| {
            if is_create(method, path) && status == 201 {
                let created = body["data"]["createdAt"].as_str().map(str::to_owned);
                if let Some(created) = created {
                    // 2026-12-01T10:00:00.123Z → 2026-12-01T10:00:00Z
                    let seconds = created.split('.').next().unwrap_or_default().to_owned();
                    body["data"]["createdAt"] = json!(format!("{seconds}Z"));
                }
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "POST /partner/links",
        "format",
        "/data/createdAt",
    );
}

#[tokio::test]
async fn an_extra_field_is_reported_under_unexpected_or_missing_field() {
    let differences = drift_through(
        1607,
        Arc::new(|method, path, status, mut body| {
            if method == "GET" && path.starts_with("/partner/links/") && status == 200 {
                body["data"]["region"] = json!("us-east-1");
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "GET /partner/links/{linkId}",
        "missing-field",
        "/data/region",
    );
}

#[tokio::test]
async fn live_keys_are_refused_without_reaching_the_vendor() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let live = format!("m2m_live_{}", "0".repeat(32));
    let reply = shadow.list_links(&live, "").await;
    linkbox_tests::assert_m2m_error(
        &reply,
        401,
        "INVALID_API_KEY",
        reply.json["error"]["message"].as_str().unwrap_or_default(),
    );
    assert!(
        reply.text.contains("--shadow-allow-live"),
        "says how to allow it: {reply:?}"
    );
    // A live key beside a test key, in the header linkbox itself would not read, is refused
    // too: the vendor may read that one.
    let bearer = format!("Bearer {live}");
    let beside = shadow
        .send(
            Method::GET,
            "/partner/links",
            &[("x-api-key", &test_key(1607)), ("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(beside.status, 401, "{beside:?}");
    assert!(beside.text.contains("--shadow-allow-live"), "{beside:?}");
    let journal = vendor.control(Method::GET, "/requests", None, None).await;
    assert_eq!(journal.json["requests"], json!([]), "nothing forwarded");
}

#[tokio::test]
async fn an_unreachable_vendor_is_a_502_in_each_apis_shape_and_an_error_not_drift() {
    // A port nothing listens on: bound, then released.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let shadow = shadowing(&format!("http://{addr}")).await;
    let key = test_key(1608);
    let m2m: Reply = shadow.list_links(&key, "").await;
    assert_eq!(m2m.status, 502, "{m2m:?}");
    assert_eq!(m2m.json["success"], false, "{m2m:?}");
    assert_eq!(m2m.json["error"]["code"], "INTERNAL_ERROR", "{m2m:?}");
    let leaf = shadow
        .send(
            Method::POST,
            "/api/authenticate",
            &[("content-type", "application/json")],
            Some(br#"{"username":"a","password":"b"}"#.to_vec()),
        )
        .await;
    assert_eq!(leaf.status, 502, "{leaf:?}");
    assert_eq!(
        leaf.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(leaf.json["status"], 502, "{leaf:?}");
    let report = drift_after(&shadow, 2).await;
    assert_eq!(report["errors"], 2, "{report}");
    assert_eq!(report["compared"], 0, "{report}");
    assert_eq!(report["differences"], json!([]), "{report}");
}

/// A vendor that cannot take a request now (a 503, a 502, a 429) is weather, not drift:
/// the request is neither compared nor applied to the shadow, which stays in step with what
/// the vendor did; the report counts it as an error saying why.
#[tokio::test]
async fn a_vendor_that_is_down_or_rate_limiting_is_weather_and_not_applied() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, body| match (method, path) {
            ("POST", "/partner/links") if status == 201 => (503, body),
            ("GET", "/partner/links") => (429, body),
            _ => (status, body),
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1612);
    let created = shadow
        .create_link(&key, &json!({"referenceId": "weather-1"}))
        .await;
    assert_eq!(created.status, 503, "the client gets the vendor's answer");
    assert_eq!(shadow.list_links(&key, "").await.status, 429);
    let report = drift_after(&shadow, 2).await;
    assert_eq!(report["differences"], json!([]), "{report}");
    assert_eq!(report["errors"], 2, "{report}");
    assert_eq!(report["compared"], 0, "{report}");
    let said = report.to_string();
    assert!(said.contains("weather"), "{said}");
    let partner = shadow
        .app
        .store
        .m2m()
        .authenticate(&key)
        .expect("open mode");
    assert_eq!(
        partner.link_count(),
        0,
        "the shadow did not apply the refused create"
    );
}

/// A revoke the vendor did but answered 502 (as a gateway may) leaves the vendor and the
/// shadow out of step on that link: what differs on it next — the read that finds the
/// vendor's link revoked, the retry the vendor calls already revoked — is weather, named
/// after the 502, not drift. The retry settles the doubt: a difference on the link after it
/// is drift again.
#[tokio::test]
async fn what_differs_on_a_resource_after_a_lost_change_is_weather_until_it_changes_again() {
    let vendor = spawn_app().await;
    let revokes = Arc::new(AtomicUsize::new(0));
    let reads_after = Arc::new(AtomicUsize::new(0));
    let proxy = drifting(&vendor, {
        let (revokes, reads_after) = (revokes.clone(), reads_after.clone());
        Arc::new(move |method, path, status, mut body| {
            if method == "POST" && path.ends_with("/revoke") {
                if revokes.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (502, json!({"message": "bad gateway"}));
                }
            } else if method == "GET"
                && path.starts_with("/partner/links/")
                && revokes.load(Ordering::SeqCst) >= 2
                && reads_after.fetch_add(1, Ordering::SeqCst) == 0
            {
                body["data"]["unheardOf"] = json!(true);
            }
            (status, body)
        })
    })
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1617);
    let created = shadow
        .create_link(&key, &json!({"referenceId": "doubt-1"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["data"]["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    let lost = shadow.revoke_link(&key, &id, None).await;
    assert_eq!(lost.status, 502, "the client gets the vendor's answer");
    let read = shadow.get_link(&key, &id).await;
    assert_eq!(read.json["data"]["status"], "revoked", "the vendor did it");
    let listed = shadow.list_links(&key, "").await;
    assert_eq!(
        listed.status, 200,
        "the list shows it revoked as well: {listed:?}"
    );
    let retry = shadow.revoke_link(&key, &id, None).await;
    assert_eq!(
        retry.status, 400,
        "already revoked at the vendor: {retry:?}"
    );
    let after = shadow.get_link(&key, &id).await;
    assert_eq!(after.json["data"]["unheardOf"], true, "{after:?}");
    let report = drift_after(&shadow, 6).await;
    assert_eq!(
        report["errors"], 3,
        "the 502, the read, the retry: {report}"
    );
    assert_eq!(
        report["compared"], 3,
        "the create, the list (passing over the link), the last read: {report}"
    );
    let differences = report["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!(differences[0]["endpoint"], "GET /partner/links/{linkId}");
    assert_eq!(differences[0]["pointer"], "/data/unheardOf", "{report}");
    let errors = report["recentErrors"].to_string();
    assert!(
        errors.contains(&format!(
            "the vendor answered 502 to POST /partner/links/{id}/revoke"
        )),
        "the weather names the request that caused it: {errors}"
    );
    assert!(errors.contains("this change settles it"), "{errors}");
    assert!(errors.contains("passed over"), "{errors}");
}

/// A create the vendor made but answered 502 leaves it a link the shadow lacks; the
/// client's retry is the vendor's 409 and the shadow's 201, which leaves the shadow a link
/// the vendor lacks. None of what follows is drift: the vendor's link (an id no compared
/// answer showed) is not the shadow's to answer for, and the collection stays in doubt
/// until a create is answered alike.
#[tokio::test]
async fn a_lost_create_and_its_retry_leave_no_drift_behind() {
    let vendor = spawn_app().await;
    let creates = Arc::new(AtomicUsize::new(0));
    let proxy = drifting(&vendor, {
        let creates = creates.clone();
        Arc::new(move |method, path, status, body| {
            if is_create(method, path) && creates.fetch_add(1, Ordering::SeqCst) == 0 {
                return (502, json!({"message": "bad gateway"}));
            }
            (status, body)
        })
    })
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1619);
    let body = json!({"referenceId": "lost-create"});
    assert_eq!(shadow.create_link(&key, &body).await.status, 502);
    let retry = shadow.create_link(&key, &body).await;
    assert_eq!(retry.status, 409, "the vendor made it: {retry:?}");
    let listed = vendor.list_links(&key, "").await;
    let theirs = listed.json["data"]["items"][0]["linkId"]
        .as_str()
        .expect("the vendor's link")
        .to_owned();
    assert_eq!(shadow.get_link(&key, &theirs).await.status, 200);
    assert_eq!(shadow.revoke_link(&key, &theirs, None).await.status, 200);
    let again = shadow.create_link(&key, &body).await;
    assert_eq!(again.status, 201, "{again:?}");
    let report = drift_after(&shadow, 5).await;
    assert_eq!(report["differences"], json!([]), "{report}");
    assert_eq!(report["errors"], 5, "{report}");
    let said = report["recentErrors"].to_string();
    assert!(
        said.contains("never in an answer linkbox compared"),
        "{said}"
    );
}

/// A path with dot segments reads as the API's to linkbox's router but would resolve to
/// another of the vendor's once made a URL (`/partner/../_sandbox/reset` is the vendor's
/// reset): it is answered 404 here and never forwarded.
#[tokio::test]
async fn a_path_that_climbs_out_of_the_api_is_not_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let vendor = spawn_app().await;
    let key = test_key(1618);
    let kept = vendor.create_link_for(&key, "victim").await;
    let shadow = shadowing(&vendor.base).await;
    for path in [
        "/partner/../_sandbox/reset",
        "/partner/%2e%2e/_sandbox/reset",
        "/partner/.%2E/_sandbox/reset",
        "/api/../_sandbox/reset",
        "/services/%2E%2E/_sandbox/reset",
        "/partner/..\\_sandbox/reset",
    ] {
        let mut stream = tokio::net::TcpStream::connect(shadow.addr)
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"),
            "{path}: {answer}"
        );
    }
    let id = kept["linkId"].as_str().expect("linkId");
    assert_eq!(
        vendor.get_link(&key, id).await.status,
        200,
        "the vendor was not reset"
    );
}

/// A target with raw UTF-8 (or a character a URI cannot hold), as some clients send it, is
/// forwarded in the form HTTP allows, percent-encoded, and the shadow is applied that same
/// target: the paths both echo are the same, and no drift is shown.
#[tokio::test]
async fn a_raw_utf8_target_is_sent_to_both_sides_in_one_form() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let key = test_key(1622);
    let targets = [
        ("/partner/\u{1F600}", "Cannot GET /partner/%F0%9F%98%80"),
        (
            "/partner/links/\u{1F600}/revoke",
            "Cannot GET /partner/links/%F0%9F%98%80/revoke",
        ),
        ("/partner/{x}", "Cannot GET /partner/%7Bx%7D"),
        (
            "/services/widgets/api/magic-link/provider/\u{1F600}",
            "\"path\":\"/services/widgets/api/magic-link/provider/%F0%9F%98%80\"",
        ),
        ("/partner/links?status=\u{e9}", "status query parameter"),
    ];
    for (target, echoed) in targets {
        let mut stream = tokio::net::TcpStream::connect(shadow.addr)
            .await
            .expect("connect");
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains(echoed), "{target}: {answer}");
    }
    let report = drift_after(&shadow, targets.len() as u64).await;
    assert_eq!(report["compared"], targets.len(), "{report}");
    assert_eq!(report["differences"], json!([]), "{report}");
}

/// A difference in a secret (the vendor's webhook secret in another format) is reported,
/// but the report quotes neither side's secret: both are `[redacted]`, as in the journal.
#[tokio::test]
async fn a_drifting_secret_is_reported_with_both_sides_redacted() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, mut body| {
            if method == "POST" && path.ends_with("/regenerate-secret") {
                let secret = body["webhookSecret"].as_str().unwrap_or_default();
                body["webhookSecret"] = json!(secret.replacen("whsec_", "sk_live_", 1));
            }
            (status, body)
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1613);
    let secret = shadow.regenerate_secret(&key).await;
    assert!(secret.starts_with("sk_live_"), "{secret}");
    let report = drift_after(&shadow, 1).await;
    let differences = report["differences"].as_array().expect("differences");
    assert!(
        differences
            .iter()
            .any(|difference| difference["pointer"] == "/webhookSecret"),
        "{report}"
    );
    let said = report.to_string();
    assert!(
        !said.contains(&secret),
        "the vendor's secret is quoted: {said}"
    );
    assert!(
        !said.contains("whsec_"),
        "the shadow's secret is quoted: {said}"
    );
    assert!(said.contains("[redacted]"), "{said}");
}

#[tokio::test]
async fn the_report_clears_and_speaks_junit() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, body| {
            if is_create(method, path) && status == 201 {
                (200, body)
            } else {
                (status, body)
            }
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1609);
    let created = shadow
        .create_link(&key, &json!({"referenceId": "any-user"}))
        .await;
    assert_eq!(
        created.status, 200,
        "the vendor's changed status: {created:?}"
    );
    drift_after(&shadow, 1).await;
    let junit = shadow
        .control(Method::GET, "/drift/junit", None, None)
        .await;
    assert_eq!(junit.status, 200);
    let by_query = shadow
        .control(Method::GET, "/drift?format=junit", None, None)
        .await;
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.text, junit.text, "the query kept for scripts");
    assert!(
        junit
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/xml")),
        "read as text by the generated clients: {junit:?}"
    );
    let queried = shadow
        .control(Method::GET, "/drift/junit?format=json", None, None)
        .await;
    assert_eq!(queried.status, 400, "the path takes no query: {queried:?}");
    assert!(
        by_query
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/xml")),
        "as it always was: {by_query:?}"
    );
    assert_eq!(
        junit.text.matches("<testcase ").count(),
        1,
        "{}",
        junit.text
    );
    assert!(junit.text.contains("classname=\"POST /partner/links\""));
    let bad = shadow
        .control(Method::GET, "/drift?format=yaml", None, None)
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    // A tenant sees its own differences; another sees none.
    let mine = shadow
        .control(Method::GET, "/drift", Some(&key), None)
        .await;
    assert_eq!(mine.json["differences"].as_array().map(Vec::len), Some(1));
    let theirs = shadow
        .control(Method::GET, "/drift", Some(&test_key(1610)), None)
        .await;
    assert_eq!(theirs.json["differences"], json!([]), "{theirs:?}");
    let cleared = shadow.control(Method::DELETE, "/drift", None, None).await;
    assert_eq!(cleared.status, 204);
    let after = shadow.control(Method::GET, "/drift", None, None).await;
    assert_eq!(after.json["compared"], 0);
    assert_eq!(after.json["differences"], json!([]));
}

#[tokio::test]
async fn the_vendor_delivers_webhooks_and_the_shadow_only_records_its_own() {
    let receiver = linkbox_tests::receiver::Receiver::start().await;
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let key = test_key(1611);
    for app in [&vendor, &shadow] {
        let config = app
            .control(
                Method::PUT,
                "/m2m/webhook-config",
                Some(&key),
                Some(&json!({"url": receiver.url})),
            )
            .await;
        assert_eq!(config.status, 200, "{config:?}");
    }
    let created = shadow
        .create_link(&key, &json!({"referenceId": "hooked"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let arrived = receiver.wait_for_event("link.created").await;
    assert_eq!(arrived.json["data"]["referenceId"], "hooked");
    // The shadow's own delivery is recorded, failed at once, and never sent.
    let delivery = shadow
        .wait_for_delivery(&key, "link.created", |delivery| {
            delivery["attempts"][0]["error"].is_string()
        })
        .await;
    let error = delivery["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("shadow mode"), "{error}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1, "one event, not two");
}

#[tokio::test]
async fn a_changed_leaf_default_is_reported_under_value() {
    // The vendor's default maxUsage becomes 5 instead of 3.
    let differences = drift_through(
        1612,
        Arc::new(|method, path, status, mut body| {
            // The detail (an object; the list's items are left alone).
            if method == "GET" && path.starts_with(WIDGETS) && body.get("maxUsage").is_some() {
                body["maxUsage"] = json!(5);
            }
            (status, body)
        }),
    )
    .await;
    only(
        &differences,
        "GET /services/widgets/api/magic-link/authentication/{magicLinkId}",
        "value",
        "/maxUsage",
    );
    assert_eq!(differences[0]["upstream"], 5);
    assert_eq!(differences[0]["linkbox"], 3);
}

/// The vendor's Leaf 401s lose their `WWW-Authenticate`: a header difference naming the
/// fact, for no token and for one the vendor refuses alike.
#[tokio::test]
async fn a_leaf_401_without_its_challenge_is_reported_under_header() {
    let vendor = spawn_app().await;
    let proxy = drifting_without(
        &vendor,
        Arc::new(|_, _, status, body| (status, body)),
        &["www-authenticate"],
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let path = format!("{WIDGETS}/magic-link/provider");
    for headers in [&[][..], &[("authorization", "Bearer not-a-token")][..]] {
        let reply = shadow.send(Method::GET, &path, headers, None).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            None,
            "the vendor's answer"
        );
    }
    let report = drift_after(&shadow, 2).await;
    let differences = report["differences"].as_array().expect("differences");
    only(
        differences,
        "GET /services/widgets/api/magic-link/provider",
        "header",
        "header:www-authenticate",
    );
    assert_eq!(differences[0]["fact"], "LEAF-AUTH-WWW-AUTHENTICATE");
    assert_eq!(differences[0]["linkbox"], "Bearer");
    assert_eq!(differences[0]["count"], 2);
}

/// A shadowed Leaf client reads (and clears) its own drift with the token it holds, the
/// vendor's: linkbox's shadow account stands in for it.
#[tokio::test]
async fn a_leaf_client_reads_its_own_drift_with_the_vendors_token() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, mut body| {
            if method == "GET" && path.starts_with(WIDGETS) && body.get("maxUsage").is_some() {
                body["maxUsage"] = json!(5);
            }
            (status, body)
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let sent = flows(&shadow, &test_key(1614)).await;
    let token = shadow.authenticate("shadow@example.com").await;
    // Its authenticate compared too: the shadow account's token is mapped by then.
    drift_after(&shadow, sent + 1).await;
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str())];
    let drift = |method| shadow.send(method, "/_sandbox/drift", &headers, None);
    let mine = drift(Method::GET).await;
    assert_eq!(mine.status, 200, "{mine:?}");
    let differences = mine.json["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{}", mine.json);
    assert_eq!(differences[0]["pointer"], "/maxUsage");
    let cleared = drift(Method::DELETE).await;
    assert_eq!(cleared.status, 204, "{cleared:?}");
    let after = drift(Method::GET).await;
    assert_eq!(
        after.json["differences"],
        json!([]),
        "cleared: {}",
        after.json
    );
}

/// Adds `fault` on `vendor` for the Leaf account whose vendor token is `token`.
async fn add_leaf_fault(vendor: &TestApp, token: &str, fault: &Value) {
    let bearer = format!("Bearer {token}");
    let added = vendor
        .send(
            Method::POST,
            "/_sandbox/faults",
            &[
                ("authorization", bearer.as_str()),
                ("content-type", "application/json"),
            ],
            Some(serde_json::to_vec(fault).expect("json")),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");
}

/// A Leaf client's request whose vendor answer was lost is an error of its own report,
/// read with its vendor token, and its journal holds it and the next: its vendor token stands for its
/// shadow account from the request on. (Read as no tenant, the error was only in the
/// admin's report, and every Leaf client shared one share of the comparison queue.)
#[tokio::test]
async fn a_leaf_clients_uncompared_request_is_in_its_own_report() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let token = shadow.authenticate("lost@example.com").await;
    // Its vendor token stands for the shadow account once its authenticate is compared.
    drift_after(&shadow, 1).await;
    let bearer = format!("Bearer {token}");
    let path = format!("{WIDGETS}/magic-link/provider");
    let fault = json!({"method": "GET", "path": path, "drop": true, "times": 1});
    add_leaf_fault(&vendor, &token, &fault).await;
    let lost = shadow.leaf(Method::GET, &path, &token, None).await;
    assert_eq!(lost.status, 502, "{lost:?}");
    let headers = [("authorization", bearer.as_str())];
    let mine = shadow
        .send(Method::GET, "/_sandbox/drift", &headers, None)
        .await;
    assert_eq!(mine.status, 200, "{mine:?}");
    assert_eq!(mine.json["errors"], 1, "{}", mine.json);
    assert_eq!(
        mine.json["recentErrors"][0]["endpoint"], "GET /services/widgets/api/magic-link/provider",
        "{}",
        mine.json
    );
    let answered = shadow.leaf(Method::GET, &path, &token, None).await;
    assert_eq!(answered.status, 200, "{answered:?}");
    let journal = shadow
        .send(Method::GET, "/_sandbox/requests", &headers, None)
        .await;
    assert_eq!(journal.status, 200, "{journal:?}");
    let answers: Vec<(&Value, &Value)> = journal.json["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|entry| (&entry["path"], &entry["status"]))
        .collect();
    for status in [502, 200] {
        assert!(
            answers.contains(&(&json!(path), &json!(status))),
            "{status}: {}",
            journal.json
        );
    }
}

#[tokio::test]
async fn a_body_over_the_vendors_limit_is_refused_in_the_apis_shape_and_not_forwarded() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let key = test_key(1613);
    let big = vec![b' '; linkbox_contracts::m2m::MAX_BODY_BYTES + 1];
    let reply = shadow
        .send(
            Method::POST,
            "/partner/links",
            &[
                ("x-api-key", key.as_str()),
                ("content-type", "application/json"),
            ],
            Some(big),
        )
        .await;
    linkbox_tests::assert_m2m_error(
        &reply,
        413,
        "INVALID_REQUEST",
        linkbox_contracts::m2m::messages::BODY_TOO_LARGE,
    );
    let journal = vendor.control(Method::GET, "/requests", None, None).await;
    assert_eq!(journal.json["requests"], json!([]), "nothing forwarded");
    // The connection is still good for the next request.
    let created = shadow
        .create_link(&key, &json!({"referenceId": "after-big"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
}

/// An answer differing in more places than one comparison yields (a vendor's detail with
/// 600 fields linkbox lacks): the first ones are kept, and a recent error says the rest
/// were passed over.
#[tokio::test]
async fn an_answer_differing_in_more_places_than_compared_says_so() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, mut body| {
            if method == "GET" && path.starts_with("/partner/links/") && status == 200 {
                for n in 0..600 {
                    body["data"][format!("extra{n}")] = json!(n);
                }
            }
            (status, body)
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1613);
    let link = shadow.create_link_for(&key, "wide").await;
    let id = link["linkId"].as_str().expect("an id").to_owned();
    assert_eq!(shadow.get_link(&key, &id).await.status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let report = loop {
        let report = shadow.control(Method::GET, "/drift", None, None).await.json;
        let said = report["recentErrors"].as_array().is_some_and(|errors| {
            errors.iter().any(|error| {
                error["message"]
                    .as_str()
                    .is_some_and(|message| message.contains("differ in more than 500 places"))
            })
        });
        if said {
            break report;
        }
        assert!(tokio::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let extra = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter(|difference| {
            difference["pointer"]
                .as_str()
                .is_some_and(|pointer| pointer.starts_with("/data/extra"))
        })
        .count();
    assert!((1..=500).contains(&extra), "{extra} kept");
}

/// A link in doubt after a change only one side did excuses what a list says of that link,
/// and nothing else: the list's other items are compared, and one that truly differs is
/// drift. (The doubt excused every later list of the collection, with no end.)
#[tokio::test]
async fn a_list_after_a_one_sided_change_passes_over_that_link_alone() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, mut body| {
            if method == "GET" && path == "/partner/links" {
                for item in body["data"]["items"].as_array_mut().into_iter().flatten() {
                    if item["referenceId"] == "drifts" {
                        item["referenceId"] = json!(7);
                    }
                }
            }
            (status, body)
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1623);
    let mut ids = Vec::new();
    for reference in ["one-side", "drifts"] {
        let created = shadow
            .create_link(&key, &json!({"referenceId": reference}))
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        ids.push(
            created.json["data"]["linkId"]
                .as_str()
                .expect("linkId")
                .to_owned(),
        );
    }
    revoke_at_linkbox_alone(&vendor, &shadow, &key, &ids[0]).await;
    for _ in 0..2 {
        let listed = shadow.list_links(&key, "").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert_eq!(
            listed.json["data"]["items"].as_array().map(Vec::len),
            Some(2),
            "the vendor lists both: {listed:?}"
        );
    }
    let report = drift_after(&shadow, 5).await;
    assert_eq!(report["errors"], 0, "each list is compared: {report}");
    let differences = report["differences"].as_array().expect("differences");
    let on = |endpoint: &str, pointer: &str| {
        differences
            .iter()
            .find(|difference| {
                difference["endpoint"] == endpoint && difference["pointer"] == pointer
            })
            .cloned()
    };
    let status = on("POST /partner/links/{linkId}/revoke", "").expect("the revoke's status");
    assert_eq!(status["rule"], "status", "{report}");
    let drifted = on("GET /partner/links", "/data/items/*/referenceId")
        .unwrap_or_else(|| panic!("the other link's drift is drift: {report}"));
    assert_eq!(drifted["rule"], "type", "{report}");
    assert_eq!(drifted["count"], 2, "every list: {report}");
    assert_eq!(
        differences.len(),
        2,
        "the link in doubt adds nothing: {report}"
    );
    let errors = report["recentErrors"].to_string();
    assert!(
        errors.contains("passed over") && errors.contains(&ids[0]),
        "the list names the link it passed over: {errors}"
    );
}

/// A vendor refusing every create linkbox makes is a status difference every time: the
/// first refusal leaves linkbox a link the vendor lacks, which excuses nothing that follows.
/// (Counted once in four: the collection's doubt excused the next three creates.)
#[tokio::test]
async fn a_create_the_vendor_always_refuses_is_drift_every_time() {
    let vendor = spawn_app().await;
    let proxy = drifting(
        &vendor,
        Arc::new(|method, path, status, body| {
            if method == "POST" && path == "/partner/links" && status == 201 {
                let refused = json!({"success": false, "error": {"code": "VALIDATION_ERROR",
                    "message": "referenceId is not accepted"}});
                return (400, refused);
            }
            (status, body)
        }),
    )
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1624);
    for n in 0..6 {
        let created = shadow
            .create_link(&key, &json!({"referenceId": format!("refused-{n}")}))
            .await;
        assert_eq!(created.status, 400, "the vendor's: {created:?}");
    }
    let report = drift_after(&shadow, 6).await;
    let differences = report["differences"].as_array().expect("differences");
    let status = differences
        .iter()
        .find(|difference| {
            difference["endpoint"] == "POST /partner/links" && difference["rule"] == "status"
        })
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(status["count"], 6, "{report}");
    assert_eq!(status["upstream"], 400, "{report}");
    assert_eq!(status["linkbox"], 201, "{report}");
}

/// A create the vendor refused (a fault of its own: nothing made) and linkbox made is a
/// status difference; the client's retries of the same `referenceId` follow from it — one
/// the vendor refuses again, which changes nothing and settles nothing, and the one it
/// makes, which linkbox refuses (its link is active) and which settles it: errors naming
/// the first, not more differences. Another reference is compared as ever. (A retry both
/// refused settled the doubt, and the next was drift.)
#[tokio::test]
async fn the_retry_of_a_create_only_linkbox_made_follows_from_it() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let key = test_key(1625);
    let fault = json!({"method": "POST", "path": "/partner/links", "status": 400, "times": 2});
    let added = vendor
        .control(Method::POST, "/faults", Some(&key), Some(&fault))
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    for _ in 0..2 {
        let refused = shadow
            .create_link(&key, &json!({"referenceId": "once"}))
            .await;
        assert_eq!(refused.status, 400, "the vendor's fault: {refused:?}");
    }
    let retried = shadow
        .create_link(&key, &json!({"referenceId": "once"}))
        .await;
    assert_eq!(retried.status, 201, "the vendor makes it now: {retried:?}");
    let other = shadow
        .create_link(&key, &json!({"referenceId": "other"}))
        .await;
    assert_eq!(other.status, 201, "{other:?}");
    let report = drift_after(&shadow, 4).await;
    let differences = report["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!(differences[0]["endpoint"], "POST /partner/links");
    assert_eq!(differences[0]["rule"], "status");
    assert_eq!(
        differences[0]["count"], 1,
        "the retry is not drift: {report}"
    );
    assert_eq!(
        (&differences[0]["upstream"], &differences[0]["linkbox"]),
        (&json!(400), &json!(201))
    );
    assert_eq!(report["errors"], 2, "{report}");
    let errors = report["recentErrors"].to_string();
    assert!(
        errors.contains("referenceId=once") && errors.contains("this change settles it"),
        "{errors}"
    );
}

/// A revoke the vendor did but answered 502 leaves its link's `referenceId` in doubt too:
/// the re-create of that reference, which the vendor makes (its link is revoked) and
/// linkbox refuses (its link is still active), follows from the lost revoke, not drift.
#[tokio::test]
async fn the_re_create_after_a_lost_revoke_follows_from_it() {
    let vendor = spawn_app().await;
    let revokes = Arc::new(AtomicUsize::new(0));
    let proxy = drifting(&vendor, {
        let revokes = revokes.clone();
        Arc::new(move |method, path, status, body| {
            if method == "POST"
                && path.ends_with("/revoke")
                && revokes.fetch_add(1, Ordering::SeqCst) == 0
            {
                return (502, json!({"message": "bad gateway"}));
            }
            (status, body)
        })
    })
    .await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1627);
    let created = shadow
        .create_link(&key, &json!({"referenceId": "again"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["data"]["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    let lost = shadow.revoke_link(&key, &id, None).await;
    assert_eq!(lost.status, 502, "{lost:?}");
    let again = shadow
        .create_link(&key, &json!({"referenceId": "again"}))
        .await;
    assert_eq!(again.status, 201, "the vendor's link is revoked: {again:?}");
    let report = drift_after(&shadow, 3).await;
    assert_eq!(report["differences"], json!([]), "{report}");
    let errors = report["recentErrors"].to_string();
    assert!(
        errors.contains("referenceId=again") && errors.contains("this change settles it"),
        "{errors}"
    );
}

/// A Leaf user the vendor refused and linkbox made, then a magic link naming its
/// `externalId` (the vendor makes a user of its own with a magic link's defaults, linkbox
/// links the one it made): that user differs on the two sides for the first refusal's
/// sake, so the user list passes over it rather than counting its fields as drift.
#[tokio::test]
async fn a_user_made_on_one_side_then_named_by_a_magic_link_is_in_doubt() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let token = shadow.authenticate("one-user@example.com").await;
    let users = "/services/usermanagement/api/users";
    let fault = json!({"method": "POST", "path": users, "status": 400, "times": 1});
    add_leaf_fault(&vendor, &token, &fault).await;
    let user = json!({"name": "Named", "email": "named@example.com", "externalId": "k-z"});
    let refused = shadow.leaf(Method::POST, users, &token, Some(&user)).await;
    assert_eq!(refused.status, 400, "the vendor's fault: {refused:?}");
    let link = shadow
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/provider"),
            &token,
            Some(&json!({"externalId": "k-z"})),
        )
        .await;
    assert_eq!(link.status, 200, "{link:?}");
    let listed = shadow
        .leaf(Method::GET, &format!("{users}?size=100"), &token, None)
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let report = drift_after(&shadow, 4).await;
    let differences = report["differences"].as_array().expect("differences");
    assert!(
        differences
            .iter()
            .all(|difference| difference["endpoint"] == "POST /services/usermanagement/api/users"),
        "only the refused create: {report}"
    );
    assert_eq!(differences.len(), 1, "{report}");
}

/// A Leaf magic link made for an existing user, which the vendor refuses every time and
/// linkbox makes, is a status difference every time: what it adds is no change to the
/// user. (Counted every other time: the user was put in doubt and the next create excused.)
#[tokio::test]
async fn a_magic_link_for_a_user_the_vendor_always_refuses_is_drift_every_time() {
    let vendor = spawn_app().await;
    let shadow = shadowing(&vendor.base).await;
    let token = shadow.authenticate("refusing@example.com").await;
    let made = shadow
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/provider"),
            &token,
            Some(&json!({"externalId": "grower-1"})),
        )
        .await;
    assert_eq!(made.status, 200, "{made:?}");
    let user = made.json["leafUserId"]
        .as_str()
        .expect("leafUserId")
        .to_owned();
    let path = format!("{WIDGETS}/magic-link/users/{user}/provider");
    let fault = json!({"method": "POST", "path": path, "status": 400});
    add_leaf_fault(&vendor, &token, &fault).await;
    for body in [
        json!({}),
        json!({"externalId": "grower-2"}),
        json!({}),
        json!({"externalId": "grower-2"}),
    ] {
        let refused = shadow.leaf(Method::POST, &path, &token, Some(&body)).await;
        assert_eq!(refused.status, 400, "the vendor's fault: {refused:?}");
    }
    let report = drift_after(&shadow, 6).await;
    let status = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .find(|difference| difference["rule"] == "status")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(status["count"], 4, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

/// A list whose items carry user data enough to be streamed (its length unknown) is
/// compared as any other: through an honest vendor, no drift. Read back only when small and
/// of a known length, it was compared as an empty body, a `type` difference every time.
#[tokio::test]
async fn a_streamed_list_of_large_items_is_compared_whole() {
    let vendor = spawn_app().await;
    let proxy = drifting(&vendor, Arc::new(|_, _, status, body| (status, body))).await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1621);
    let mut user_data = json!({
        "paymentMethod": {"type": "bank_account", "bankAccount": {"country": "US", "accountNumber": "1"}}
    });
    for field in 0..4_900 {
        user_data[format!("k{field}")] = json!("v".repeat(10));
    }
    let created = shadow
        .create_link(
            &key,
            &json!({"referenceId": "heavy-1", "userData": user_data}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let listed = shadow.list_links(&key, "").await;
    assert_eq!(listed.status, 200);
    assert!(listed.text.len() > 64 * 1024, "heavy enough to be streamed");
    let report = drift_after(&shadow, 2).await;
    assert_eq!(report["compared"], 2, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["differences"], json!([]), "{report}");
}

/// Revokes `id` through `shadow` where only linkbox does it: the vendor's clock, moved on
/// three days, has the link expired, and the vendor refuses.
async fn revoke_at_linkbox_alone(vendor: &TestApp, shadow: &TestApp, key: &str, id: &str) {
    let moved = vendor
        .control(
            Method::POST,
            "/clock",
            None,
            Some(&json!({"advanceSeconds": 3 * 86_400})),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let revoked = shadow.revoke_link(key, id, None).await;
    assert!(
        (400..500).contains(&revoked.status),
        "the vendor refuses to revoke an expired link: {revoked:?}"
    );
}

/// A revoke linkbox makes and the vendor refuses (its clock, moved on, has the link
/// expired) shows as a status difference, which it is; the read after it, where the two hold
/// different links, follows from that refusal: an error of the report naming the change,
/// not more differences. (Two such differences counted as the vendor breaking its docs.)
#[tokio::test]
async fn what_differs_after_a_change_only_one_side_did_is_not_drift_again() {
    let vendor = spawn_app().await;
    let proxy = drifting(&vendor, Arc::new(|_, _, status, body| (status, body))).await;
    let shadow = shadowing(&format!("http://{proxy}")).await;
    let key = test_key(1622);
    let created = shadow
        .create_link(&key, &json!({"referenceId": "one-side"}))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["data"]["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    revoke_at_linkbox_alone(&vendor, &shadow, &key, &id).await;
    let read = shadow.get_link(&key, &id).await;
    assert_eq!(
        read.json["data"]["status"], "created",
        "the vendor's: {read:?}"
    );
    let report = drift_after(&shadow, 3).await;
    let differences = report["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!(
        differences[0]["endpoint"],
        "POST /partner/links/{linkId}/revoke"
    );
    assert_eq!(differences[0]["rule"], "status", "{report}");
    let errors = report["recentErrors"].to_string();
    assert!(
        errors.contains(&format!(
            "and linkbox 200 to POST /partner/links/{id}/revoke, so one did what the other did not"
        )),
        "the read's difference names the change behind it: {errors}"
    );
}
