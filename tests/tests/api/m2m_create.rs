//! `POST /partner/links` where the contract suite cannot reach: a body over the size limit,
//! and the flows and widget base a configured linkbox puts in the URL. The create contract
//! itself is the suite's (`m2m.create.*`, `m2m.validate.*`, `m2m.lifecycle.*`).

use linkbox::Options;
use linkbox::config::FileConfig;
use linkbox_contracts::m2m::messages;
use linkbox_tests::{TestApp, assert_m2m_error, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};

async fn create(app: &TestApp, body: Value) -> linkbox_tests::Reply {
    app.create_link(&test_key(1), &body).await
}

#[tokio::test]
async fn a_body_over_ten_mebibytes_is_refused_with_413() {
    let app = spawn_app().await;
    let mut body = b"{\"referenceId\": \"".to_vec();
    body.resize(10 * 1024 * 1024 + 10, b'a');
    body.extend_from_slice(b"\"}");
    let key = test_key(1);
    let reply = app
        .send(
            Method::POST,
            "/partner/links",
            &[("x-api-key", &key), ("content-type", "application/json")],
            Some(body),
        )
        .await;
    assert_m2m_error(&reply, 413, "INVALID_REQUEST", messages::BODY_TOO_LARGE);
}

#[tokio::test]
async fn configured_flows_and_widget_base_shape_the_url() {
    let config = FileConfig::parse("flows = [\"m2m-basic\", \"m2m-express\"]").expect("config");
    let app = spawn_app_with(Options {
        file: Some(config),
        m2m_widget_base: Some("https://widget.m2m.leapfinancial.com".into()),
        ..Options::default()
    })
    .await;
    let reply = create(&app, json!({"referenceId": "u", "flow": "m2m-express"})).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let link_id = reply.data()["linkId"].as_str().unwrap_or_default();
    assert_eq!(
        reply.data()["url"],
        format!("https://widget.m2m.leapfinancial.com/{link_id}/m2m-express")
    );
    let reply = create(&app, json!({"referenceId": "v", "flow": "other"})).await;
    assert_m2m_error(
        &reply,
        400,
        "INVALID_REQUEST",
        "The flow field must be one of: m2m-basic, m2m-express",
    );
}
