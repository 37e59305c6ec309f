//! `PUT /partner/data-requests/{id}`: fulfilling what an opened link asked for. Until the
//! control API exists, the end user's open is played through the store.

use linkbox_contracts::m2m::messages;
use linkbox_tests::{TestApp, assert_m2m_error, spawn_app, test_key};
use serde_json::json;

/// Creates a link for `reference_id` (incomplete user data), opens it as the end user, and
/// returns the link id and the data request id.
async fn open_incomplete(app: &TestApp, reference_id: &str) -> (String, String) {
    let key = test_key(1);
    let created = app.create_link_for(&key, reference_id).await;
    let link_id = created["linkId"].as_str().unwrap_or_default().to_owned();
    let partner = app.app.store.m2m().authenticate(&key).expect("partner");
    let opened = partner
        .open_link(&link_id, app.app.clock.now())
        .expect("open");
    let request = opened.data_request.expect("a data request");
    (link_id, request.data_request_id)
}

#[tokio::test]
async fn fulfilling_merges_the_data_and_answers_in_the_documented_shape() {
    let app = spawn_app().await;
    app.app
        .clock
        .set_to(time::macros::datetime!(2026-02-10 12:00 UTC))
        .expect("in range");
    app.app.clock.set_frozen(true);
    let key = test_key(1);
    let (link_id, id) = open_incomplete(&app, "user-1").await;
    let slug = linkbox::store::m2m::open_mode_slug(&key);
    let suffix = id.strip_prefix(&format!("dr_{slug}_")).unwrap_or_default();
    assert!(
        suffix.len() == 12 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );

    let reply = app
        .fulfil_data_request(
            &key,
            &id,
            &json!({"referenceId": "user-1", "userData": {"idNumber": "ABCD900101", "dob": "1990-01-01"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.data(),
        &json!({
            "dataRequestId": id,
            "status": "fulfilled",
            "linkId": link_id,
            "message": "User data received and merged successfully",
            "fulfilledAt": "2026-02-10T12:00:00.000Z"
        })
    );
    let detail = app.get_link(&key, &link_id).await;
    assert_eq!(
        detail.data()["userData"],
        json!({"idNumber": "ABCD900101", "dob": "1990-01-01"})
    );
    assert_eq!(detail.data()["status"], "opened");
    assert_eq!(detail.data()["openedAt"], "2026-02-10T12:00:00.000Z");
}

#[tokio::test]
async fn a_mismatched_reference_id_is_refused() {
    let app = spawn_app().await;
    let (_, id) = open_incomplete(&app, "user-1").await;
    let reply = app
        .fulfil_data_request(
            &test_key(1),
            &id,
            &json!({"referenceId": "user-2", "userData": {}}),
        )
        .await;
    assert_m2m_error(
        &reply,
        400,
        "REFERENCE_ID_MISMATCH",
        messages::REFERENCE_ID_MISMATCH,
    );
}

#[tokio::test]
async fn an_unknown_or_foreign_data_request_is_not_found() {
    let app = spawn_app().await;
    let (_, id) = open_incomplete(&app, "user-1").await;
    let body = json!({"referenceId": "user-1", "userData": {}});
    let reply = app
        .fulfil_data_request(&test_key(1), "dr_nobody_000000000000", &body)
        .await;
    assert_m2m_error(
        &reply,
        404,
        "RESOURCE_NOT_FOUND",
        messages::DATA_REQUEST_NOT_FOUND,
    );
    let reply = app.fulfil_data_request(&test_key(2), &id, &body).await;
    assert_m2m_error(
        &reply,
        404,
        "RESOURCE_NOT_FOUND",
        messages::DATA_REQUEST_NOT_FOUND,
    );
}

#[tokio::test]
async fn a_fulfilled_request_cannot_be_fulfilled_again() {
    let app = spawn_app().await;
    let (_, id) = open_incomplete(&app, "user-1").await;
    let body = json!({"referenceId": "user-1", "userData": {"dob": "1990-01-01"}});
    assert_eq!(
        app.fulfil_data_request(&test_key(1), &id, &body)
            .await
            .status,
        200
    );
    let reply = app.fulfil_data_request(&test_key(1), &id, &body).await;
    assert_m2m_error(
        &reply,
        400,
        "INVALID_REQUEST",
        messages::DATA_REQUEST_FULFILLED,
    );
}

#[tokio::test]
async fn a_request_whose_link_expired_cannot_be_fulfilled() {
    let app = spawn_app().await;
    let (_, id) = open_incomplete(&app, "user-1").await;
    app.advance_clock(60 * 60);
    let reply = app
        .fulfil_data_request(
            &test_key(1),
            &id,
            &json!({"referenceId": "user-1", "userData": {}}),
        )
        .await;
    assert_m2m_error(&reply, 400, "LINK_EXPIRED", messages::LINK_EXPIRED);
}

#[tokio::test]
async fn reference_id_and_user_data_are_required() {
    let app = spawn_app().await;
    let (_, id) = open_incomplete(&app, "user-1").await;
    let key = test_key(1);
    let reply = app
        .fulfil_data_request(&key, &id, &json!({"userData": {}}))
        .await;
    assert_m2m_error(
        &reply,
        400,
        "INVALID_REQUEST",
        messages::REFERENCE_ID_REQUIRED,
    );
    let reply = app
        .fulfil_data_request(&key, &id, &json!({"referenceId": "user-1"}))
        .await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::USER_DATA_REQUIRED);
    let reply = app
        .fulfil_data_request(
            &key,
            &id,
            &json!({"referenceId": "user-1", "userData": "x"}),
        )
        .await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::USER_DATA);
}

#[tokio::test]
async fn regenerating_the_secret_answers_without_an_envelope() {
    let app = spawn_app().await;
    let key = test_key(1);
    let path = "/partner/webhooks/config/regenerate-secret";
    let first = app.m2m(reqwest::Method::POST, path, &key, None).await;
    assert_eq!(first.status, 200, "{first:?}");
    let object = first.json.as_object().cloned().unwrap_or_default();
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    assert_eq!(keys, ["message", "webhookSecret"]);
    assert_eq!(first.json["message"], messages::REGENERATED_SECRET);
    let secret = first.json["webhookSecret"].as_str().unwrap_or_default();
    let tail = secret.strip_prefix("whsec_").unwrap_or_default();
    assert!(
        tail.len() == 24 && tail.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret}"
    );
    let partner = app.app.store.m2m().authenticate(&key).expect("partner");
    assert_eq!(partner.webhook_secret(), secret);
    let second = app.m2m(reqwest::Method::POST, path, &key, None).await;
    assert_ne!(second.json["webhookSecret"], first.json["webhookSecret"]);
}
