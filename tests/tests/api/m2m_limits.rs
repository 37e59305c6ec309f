//! Rate limits turned off, and load: many clients at once lose nothing, and a partner with
//! many links keeps their order. The documented limits themselves are the suite's
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
