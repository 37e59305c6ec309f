//! `GET /partner/links` (filters, pagination, order), `GET /partner/links/{id}` and
//! `POST /partner/links/{id}/revoke`.

use linkbox_contracts::m2m::messages;
use linkbox_tests::{TestApp, assert_m2m_error, spawn_app, test_key};
use serde_json::{Value, json};
use time::macros::datetime;

fn ids(reply: &linkbox_tests::Reply) -> Vec<String> {
    reply.data()["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["referenceId"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The id of the partner's newest link.
async fn newest_link_id(app: &TestApp, key: &str) -> String {
    let listed = app.list_links(key, "").await;
    listed.data()["items"][0]["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A sandbox on a frozen clock with `n` links for `u0..u{n-1}`, one second apart.
async fn with_links(n: usize) -> TestApp {
    let app = spawn_app().await;
    app.app
        .clock
        .set_to(datetime!(2026-02-10 12:00 UTC))
        .expect("in range");
    app.app.clock.set_frozen(true);
    for i in 0..n {
        app.create_link_for(&test_key(1), &format!("u{i}")).await;
        app.advance_clock(1);
    }
    app
}

#[tokio::test]
async fn the_list_is_newest_first_with_default_paging() {
    let app = with_links(3).await;
    let reply = app.list_links(&test_key(1), "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(ids(&reply), ["u2", "u1", "u0"]);
    assert_eq!(
        reply.data()["pagination"],
        json!({"page": 1, "limit": 20, "total": 3, "totalPages": 1})
    );
}

#[tokio::test]
async fn list_items_carry_every_documented_field_with_nulls_where_unset() {
    let app = with_links(1).await;
    let reply = app.list_links(&test_key(1), "").await;
    let item = &reply.data()["items"][0];
    let mut keys: Vec<&str> = item
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "expiresAt",
            "linkId",
            "openedAt",
            "operationId",
            "referenceId",
            "status",
            "url",
            "userData",
            "userId"
        ]
    );
    assert_eq!(item["openedAt"], Value::Null);
    assert_eq!(item["operationId"], Value::Null);
    assert_eq!(item["userData"], Value::Null);
    assert_eq!(item["status"], "created");
}

#[tokio::test]
async fn pagination_arithmetic_holds_across_pages() {
    let app = with_links(25).await;
    let key = test_key(1);
    let page = |query: &'static str| {
        let app = &app;
        let key = key.clone();
        async move { app.list_links(&key, query).await }
    };
    let first = page("limit=10").await;
    assert_eq!(
        first.data()["pagination"],
        json!({"page": 1, "limit": 10, "total": 25, "totalPages": 3})
    );
    assert_eq!(ids(&first).first().map(String::as_str), Some("u24"));
    let third = page("limit=10&page=3").await;
    assert_eq!(ids(&third), ["u4", "u3", "u2", "u1", "u0"]);
    let beyond = page("limit=10&page=4").await;
    assert_eq!(beyond.status, 200);
    assert!(ids(&beyond).is_empty());
    assert_eq!(beyond.data()["pagination"]["total"], 25);
    let max = page("limit=100").await;
    assert_eq!(ids(&max).len(), 25);
}

#[tokio::test]
async fn an_empty_list_has_zero_pages() {
    let app = spawn_app().await;
    let reply = app.list_links(&test_key(1), "").await;
    assert_eq!(
        reply.data(),
        &json!({"items": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}})
    );
}

#[tokio::test]
async fn status_visibility_and_reference_filters_select_links() {
    let app = with_links(3).await;
    let key = test_key(1);
    let listed = app.list_links(&key, "referenceId=u1").await;
    let u1 = listed.data()["items"][0]["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.revoke_link(&key, &u1, None).await;
    // u0..u2 expire after 60 minutes; a new link for u3 is younger.
    app.advance_clock(61 * 60);
    app.create_link_for(&key, "u3").await;

    assert_eq!(ids(&app.list_links(&key, "status=revoked").await), ["u1"]);
    assert_eq!(
        ids(&app.list_links(&key, "status=created").await),
        ["u3", "u2", "u0"]
    );
    assert_eq!(
        ids(&app.list_links(&key, "visibility=active").await),
        ["u3"]
    );
    assert_eq!(
        ids(&app.list_links(&key, "visibility=expired").await),
        ["u2", "u0"]
    );
    assert_eq!(ids(&app.list_links(&key, "referenceId=u2").await), ["u2"]);
    assert!(ids(&app.list_links(&key, "referenceId=nobody").await).is_empty());
}

#[tokio::test]
async fn from_and_to_bound_created_at_inclusively() {
    let app = with_links(4).await;
    let key = test_key(1);
    let reply = app
        .list_links(
            &key,
            "from=2026-02-10T12:00:01.000Z&to=2026-02-10T12:00:02Z",
        )
        .await;
    assert_eq!(ids(&reply), ["u2", "u1"]);
    assert_eq!(reply.data()["pagination"]["total"], 2);
    let reply = app
        .list_links(&key, "from=2026-02-10T14:00:02%2B02:00")
        .await;
    assert_eq!(ids(&reply), ["u3", "u2"]);
}

#[tokio::test]
async fn bad_query_values_are_invalid_requests() {
    let app = spawn_app().await;
    let cases = [
        (
            "page=0",
            "The page query parameter must be an integer greater than or equal to 1",
        ),
        (
            "page=x",
            "The page query parameter must be an integer greater than or equal to 1",
        ),
        (
            "limit=0",
            "The limit query parameter must be an integer between 1 and 100",
        ),
        (
            "limit=101",
            "The limit query parameter must be an integer between 1 and 100",
        ),
        (
            "from=yesterday",
            "The from query parameter must be an ISO 8601 date-time",
        ),
        (
            "to=2026-13-01T00:00:00Z",
            "The to query parameter must be an ISO 8601 date-time",
        ),
        (
            "visibility=all",
            "The visibility query parameter must be one of: active, expired",
        ),
        (
            "status=expired",
            "The status query parameter must be one of: created, opened, revoked",
        ),
    ];
    for (query, message) in cases {
        let reply = app.list_links(&test_key(1), query).await;
        assert_m2m_error(&reply, 400, "INVALID_REQUEST", message);
    }
}

#[tokio::test]
async fn unknown_query_parameters_are_named_in_a_warning() {
    let app = spawn_app().await;
    let reply = app.list_links(&test_key(1), "pageSize=5").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-linkbox-warning"),
        Some("ignored unknown field \"pageSize\"")
    );
}

#[tokio::test]
async fn the_detail_adds_the_links_own_settings() {
    let app = spawn_app().await;
    let key = test_key(1);
    let created = app
        .create_link(
            &key,
            &json!({"referenceId": "u", "metadata": {"orderId": "ORD-1"}, "theme": "dark",
                "language": "es", "callbackUrl": "https://api.example.com/cb"}),
        )
        .await;
    let link_id = created.data()["linkId"].as_str().unwrap_or_default();
    let reply = app.get_link(&key, link_id).await;
    assert_eq!(reply.status, 200);
    let data = reply.data();
    assert_eq!(data["linkId"], link_id);
    assert_eq!(data["token"], created.data()["token"]);
    assert_eq!(data["metadata"], json!({"orderId": "ORD-1"}));
    assert_eq!(data["flow"], "m2m-basic");
    assert_eq!(data["theme"], "dark");
    assert_eq!(data["language"], "es");
    assert_eq!(data["callbackUrl"], "https://api.example.com/cb");
    assert_eq!(data["revokedAt"], Value::Null);
    assert_eq!(data["revokeReason"], Value::Null);
    assert_eq!(data["openedAt"], Value::Null);
}

#[tokio::test]
async fn an_unknown_link_is_not_found() {
    let app = spawn_app().await;
    for id in [
        "link_nobody_000000000000",
        "garbage",
        "link_p00000000_zzzzzzzzzzzz",
    ] {
        let reply = app.get_link(&test_key(1), id).await;
        assert_m2m_error(&reply, 404, "RESOURCE_NOT_FOUND", messages::LINK_NOT_FOUND);
    }
}

#[tokio::test]
async fn revoking_returns_the_revoked_link_and_keeps_the_reason() {
    let app = with_links(1).await;
    let key = test_key(1);
    let link_id = newest_link_id(&app, &key).await;
    let reply = app
        .revoke_link(&key, &link_id, Some(&json!({"reason": "user asked"})))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.data(),
        &json!({"linkId": link_id, "status": "revoked", "revokedAt": "2026-02-10T12:00:01.000Z"})
    );
    let detail = app.get_link(&key, &link_id).await;
    assert_eq!(detail.data()["status"], "revoked");
    assert_eq!(detail.data()["revokeReason"], "user asked");
    assert_eq!(detail.data()["revokedAt"], "2026-02-10T12:00:01.000Z");
}

#[tokio::test]
async fn revoking_without_a_body_works() {
    let app = with_links(1).await;
    let key = test_key(1);
    let link_id = newest_link_id(&app, &key).await;
    let reply = app
        .send(
            reqwest::Method::POST,
            &format!("/partner/links/{link_id}/revoke"),
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn a_revoked_link_cannot_be_revoked_again() {
    let app = with_links(1).await;
    let key = test_key(1);
    let link_id = newest_link_id(&app, &key).await;
    app.revoke_link(&key, &link_id, None).await;
    let reply = app.revoke_link(&key, &link_id, None).await;
    assert_m2m_error(
        &reply,
        400,
        "INVALID_REQUEST",
        messages::ONLY_ACTIVE_REVOCABLE,
    );
}

#[tokio::test]
async fn an_expired_link_cannot_be_revoked() {
    let app = with_links(1).await;
    let key = test_key(1);
    let link_id = newest_link_id(&app, &key).await;
    app.advance_clock(60 * 60);
    let reply = app.revoke_link(&key, &link_id, None).await;
    assert_m2m_error(&reply, 400, "LINK_EXPIRED", messages::LINK_EXPIRED);
}

#[tokio::test]
async fn a_revoke_reason_must_be_a_string() {
    let app = with_links(1).await;
    let key = test_key(1);
    let link_id = newest_link_id(&app, &key).await;
    let reply = app
        .revoke_link(&key, &link_id, Some(&json!({"reason": 5})))
        .await;
    assert_m2m_error(
        &reply,
        400,
        "INVALID_REQUEST",
        "The reason field must be a string",
    );
}
