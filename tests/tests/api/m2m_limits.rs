//! Rate limits turned off, and load: many clients at once lose nothing, a partner with
//! many links keeps their order, and a page of links carrying a user's data of megabytes
//! each is sent as it is made. The documented limits themselves are the suite's
//! (`m2m.rate-limit.*`).

use std::collections::HashSet;

use linkbox::Options;
use linkbox::config::RateLimits;
use linkbox_tests::{TestApp, spawn_app, spawn_app_with, test_key};
use serde_json::json;
use time::macros::datetime;

/// A sandbox whose frozen clock stands 15 s into a minute.
async fn frozen_app(options: Options) -> TestApp {
    let app = spawn_app_with(options).await;
    app.app
        .clock
        .set_to(datetime!(2026-02-10 12:00:15 UTC))
        .expect("in range");
    app.app.clock.set_frozen(true);
    app
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let app = frozen_app(Options {
        rate_limits: Some(RateLimits::Off),
        ..Options::default()
    })
    .await;
    for i in 0..150 {
        app.create_link_for(&test_key(1), &format!("u{i}")).await;
    }
}

/// Windows read the sandbox clock, frozen or not; a 429 while it is frozen says that its
/// `Retry-After` seconds pass only when the clock is moved, and one while it runs does not.
#[tokio::test]
async fn a_429_under_a_frozen_clock_says_only_moving_the_clock_reopens_the_window() {
    let app = frozen_app(Options::default()).await;
    let key = test_key(2);
    for i in 0..100 {
        app.create_link_for(&key, &format!("u{i}")).await;
    }
    let limited = app.create_link(&key, &json!({"referenceId": "over"})).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.header("retry-after"), Some("45"));
    let warning = limited.header("x-linkbox-warning").unwrap_or_default();
    assert!(warning.contains("clock is frozen"), "{limited:?}");
    app.app.clock.set_frozen(false);
    let limited = app.create_link(&key, &json!({"referenceId": "over"})).await;
    assert_eq!(
        limited.status, 429,
        "the window is the same minute: {limited:?}"
    );
    assert_eq!(limited.header("x-linkbox-warning"), None, "{limited:?}");
    app.app.clock.set_frozen(true);
    app.app
        .clock
        .advance(time::Duration::seconds(45))
        .expect("in range");
    let admitted = app.create_link(&key, &json!({"referenceId": "over"})).await;
    assert_eq!(admitted.status, 201, "{admitted:?}");
}

#[tokio::test]
async fn a_thousand_concurrent_creates_over_fifty_keys_all_land_once() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let client = app.client.clone();
        let url = app.url("/partner/links");
        let key = test_key(i % 50);
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"referenceId": format!("user-{i}")}))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("json");
            (
                status,
                body["data"]["linkId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }));
    }
    let mut created = HashSet::new();
    for task in tasks {
        let (status, link_id) = task.await.expect("task");
        assert_eq!(status, 201);
        assert!(created.insert(link_id), "duplicate link id");
    }
    let mut listed = HashSet::new();
    for k in 0..50 {
        let reply = app.list_links(&test_key(k), "limit=100").await;
        assert_eq!(reply.data()["pagination"]["total"], 20);
        for item in reply.data()["items"].as_array().into_iter().flatten() {
            listed.insert(item["linkId"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(listed, created);
}

#[tokio::test]
async fn a_partner_can_hold_many_links_without_losing_order() {
    let app = spawn_app().await;
    let key = test_key(1);
    let partner = app.app.store.m2m().authenticate(&key).expect("partner");
    let now = app.app.clock.now();
    for i in 0..20_000 {
        partner
            .create_link(
                linkbox::store::m2m::NewLink {
                    reference_id: format!("bulk-{i}"),
                    flow: "m2m-basic".into(),
                    ..Default::default()
                },
                now,
            )
            .expect("create");
    }
    assert_eq!(partner.link_count(), 20_000);
    let reply = app.list_links(&key, "limit=2&page=2").await;
    assert_eq!(reply.data()["pagination"]["totalPages"], 10_000);
    assert_eq!(reply.data()["items"][0]["referenceId"], "bulk-19997");
}

/// A page whose items carry large user data (one user's, on each of its links) is sent as
/// it is made: chunked, with no `Content-Length`, each item whole and in order, the
/// warnings of the query as on any page. A light page is sent whole.
#[tokio::test]
async fn a_page_of_links_with_large_user_data_is_sent_as_it_is_made() {
    let app = spawn_app().await;
    let key = test_key(1);
    let extra = "x".repeat(100 * 1024);
    let user_data = json!({"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}, "extra": extra});
    let mut ids = Vec::new();
    for round in 0..3 {
        let body = if round == 0 {
            json!({"referenceId": "heavy", "userData": user_data})
        } else {
            json!({"referenceId": "heavy"})
        };
        let created = app.create_link(&key, &body).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.data()["linkId"].as_str().expect("an id").to_owned();
        assert_eq!(app.revoke_link(&key, &id, None).await.status, 200);
        ids.push(id);
    }
    let light = app.create_link_for(&key, "light").await;

    let page = app.list_links(&key, "limit=10&bogus=1").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("content-length"), None, "sent as made");
    assert_eq!(page.header("content-type"), Some("application/json"));
    assert!(
        page.header_all("x-linkbox-warning")
            .iter()
            .any(|warning| warning.contains("bogus")),
        "{:?}",
        page.headers
    );
    let items = page.data()["items"].as_array().expect("items");
    let listed: Vec<&str> = items
        .iter()
        .map(|item| item["linkId"].as_str().unwrap_or_default())
        .collect();
    let newest_first: Vec<&str> = std::iter::once(light["linkId"].as_str().unwrap_or_default())
        .chain(ids.iter().rev().map(String::as_str))
        .collect();
    assert_eq!(listed, newest_first);
    assert_eq!(items[0]["userData"], serde_json::Value::Null);
    for item in &items[1..] {
        assert_eq!(item["userData"], user_data);
        assert_eq!(item["status"], "revoked");
    }
    assert_eq!(page.data()["pagination"]["total"], 4);
    assert_eq!(page.data()["pagination"]["totalPages"], 1);
    linkbox_tests::assert_matches_schema(&page, "m2m/ListLinksResponse.json");

    let light_page = app.list_links(&key, "limit=1").await;
    assert_eq!(light_page.status, 200);
    assert!(light_page.header("content-length").is_some(), "sent whole");
    assert_eq!(light_page.data()["items"][0]["linkId"], light["linkId"]);

    let detail = app.get_link(&key, &ids[0]).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.data()["userData"], user_data);
}
