//! `POST /partner/links` where the contract suite cannot reach: a body over the size limit,
//! the flows and widget base a configured linkbox puts in the URL, and bodies as sent byte
//! for byte (a member twice, an escaped name, JSON that breaks after a bad field). The create contract
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

/// A flow that is no URL path segment as written (a configured `m2m express`, `a/b`) is one
/// segment of the link's `url`, percent-encoded, and the page at it acts in that flow: its
/// forms post to, and its redirect comes back to, that flow's address (a space written as
/// `+` named another flow, and every one of them was a 404).
#[tokio::test]
async fn a_flow_that_needs_encoding_is_one_segment_of_the_url_and_its_page() {
    let config =
        FileConfig::parse("flows = [\"m2m-basic\", \"m2m express\", \"a/b\"]").expect("config");
    let app = spawn_app_with(Options {
        file: Some(config),
        ..Options::default()
    })
    .await;
    for (flow, segment) in [("m2m express", "m2m%20express"), ("a/b", "a%2Fb")] {
        let reply = create(&app, json!({"referenceId": flow, "flow": flow})).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let link_id = reply.data()["linkId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let url = reply.data()["url"].as_str().unwrap_or_default().to_owned();
        assert!(
            url.ends_with(&format!("/widget/{link_id}/{segment}")),
            "{url}"
        );
        let path = format!("/widget/{link_id}/{segment}");
        let page = app.send(Method::GET, &path, &[], None).await;
        assert_eq!(page.status, 200, "{path}: {page:?}");
        assert!(
            page.text.contains(&format!("action=\"./{segment}/")),
            "{}",
            page.text
        );
    }
}

/// A create body as sent, byte for byte: what `serde_json::json!` cannot write (a member
/// twice, an escaped name) and what is not JSON at all.
async fn create_raw(app: &TestApp, body: &str) -> linkbox_tests::Reply {
    let key = test_key(1);
    app.send(
        Method::POST,
        "/partner/links",
        &[("x-api-key", &key), ("content-type", "application/json")],
        Some(body.as_bytes().to_vec()),
    )
    .await
}

#[tokio::test]
async fn a_member_sent_twice_counts_as_its_last_and_unknown_names_come_sorted_once() {
    let app = spawn_app().await;
    let reply = create_raw(
        &app,
        r#"{"zeta": 1, "referenceId": "first", "metadata": {"a": 1}, "alpha": [1, {"b": 2}],
            "referenc\u0065Id": "second", "zeta": {"deep": true}, "metadata": {"b": 2},
            "language": null}"#,
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.data()["referenceId"], "second");
    assert_eq!(
        reply.header_all("x-linkbox-warning"),
        [
            "ignored unknown field \"alpha\"",
            "ignored unknown field \"zeta\""
        ],
        "{reply:?}"
    );
    let link = app
        .get_link(
            &test_key(1),
            reply.data()["linkId"].as_str().unwrap_or_default(),
        )
        .await;
    assert_eq!(link.data()["metadata"], json!({"b": 2}), "{link:?}");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_or_not_json_is_refused_before_its_fields() {
    let app = spawn_app().await;
    for body in [r#"[{"referenceId": "u"}]"#, "\"u\"", "12", "null", "true"] {
        let reply = create_raw(&app, body).await;
        assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::BODY_NOT_OBJECT);
    }
    // Broken after fields that would have been refused: the JSON is judged first.
    for body in [
        r#"{"referenceId": 5, "expiresInMinutes": "x""#,
        r#"{"referenceId": 5,}"#,
        r#"{"referenceId": "u"} {}"#,
    ] {
        let reply = create_raw(&app, body).await;
        assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::INVALID_JSON);
    }
    let empty = create_raw(&app, "  ").await;
    assert_m2m_error(
        &empty,
        400,
        "INVALID_REQUEST",
        messages::REFERENCE_ID_REQUIRED,
    );
}

#[tokio::test]
async fn a_query_on_an_endpoint_that_takes_none_is_named_not_ignored_unseen() {
    let app = spawn_app().await;
    let key = test_key(1);
    let warned = |reply: &linkbox_tests::Reply| reply.header_all("x-linkbox-warning");
    let created = app
        .m2m(
            Method::POST,
            "/partner/links?expiresInMinutes=120&expiresInMinutes=5",
            &key,
            Some(&json!({"referenceId": "q1"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        warned(&created),
        ["ignored unknown field \"expiresInMinutes\""]
    );
    let id = created.data()["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let detail = app
        .m2m(
            Method::GET,
            &format!("/partner/links/{id}?foo=1"),
            &key,
            None,
        )
        .await;
    assert_eq!(detail.status, 200, "{detail:?}");
    assert_eq!(warned(&detail), ["ignored unknown field \"foo\""]);
    let revoked = app
        .m2m(
            Method::POST,
            &format!("/partner/links/{id}/revoke?reason=x"),
            &key,
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_eq!(warned(&revoked), ["ignored unknown field \"reason\""]);
    let secret = app
        .m2m(
            Method::POST,
            "/partner/webhooks/config/regenerate-secret?bar=",
            &key,
            None,
        )
        .await;
    assert_eq!(secret.status, 200, "{secret:?}");
    assert_eq!(warned(&secret), ["ignored unknown field \"bar\""]);
    // Without a query, no warning.
    let plain = app.create_link(&key, &json!({"referenceId": "q2"})).await;
    assert!(warned(&plain).is_empty(), "{plain:?}");
}
