//! `POST /partner/links`: the documented shape, every default, bound and validation message,
//! ignored fields, one active link per user, and returning users.

use linkbox::Options;
use linkbox::config::FileConfig;
use linkbox_contracts::m2m::messages;
use linkbox_contracts::timefmt;
use linkbox_tests::{Reply, TestApp, assert_m2m_error, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

fn seed_example() -> Value {
    json!({
        "referenceId": "user-12345",
        "expiresInMinutes": 120,
        "metadata": {"orderId": "ORD-2026-001", "campaign": "february-promo"},
        "flow": "m2m-basic",
        "theme": "dark",
        "language": "es",
        "callbackUrl": "https://api.example.com/callbacks/m2m"
    })
}

fn lifetime(data: &Value) -> Duration {
    let at = |field: &str| {
        timefmt::parse(data[field].as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("{field} of {data}"))
    };
    at("expiresAt") - at("createdAt")
}

fn is_millis_timestamp(text: &str) -> bool {
    // 2026-02-10T12:00:00.000Z
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && text[20..23].bytes().all(|b| b.is_ascii_digit())
        && timefmt::parse(text).is_some()
}

async fn create(app: &TestApp, body: Value) -> Reply {
    app.create_link(&test_key(1), &body).await
}

#[tokio::test]
async fn the_seed_example_creates_a_link_in_the_documented_shape() {
    let app = spawn_app().await;
    let reply = create(&app, seed_example()).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json["success"], true);
    let data = reply.data();
    let keys: Vec<&str> = data
        .as_object()
        .map(|map| map.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "createdAt",
            "expiresAt",
            "linkId",
            "referenceId",
            "status",
            "token",
            "url"
        ]
    );
    let link_id = data["linkId"].as_str().unwrap_or_default();
    let slug = linkbox::store::m2m::open_mode_slug(&test_key(1));
    let suffix = link_id
        .strip_prefix(&format!("link_{slug}_"))
        .unwrap_or_else(|| panic!("link id {link_id}"));
    assert!(
        suffix.len() == 12
            && suffix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(data["referenceId"], "user-12345");
    assert_eq!(data["status"], "created");
    assert_eq!(
        data["url"],
        format!("{}/widget/{link_id}/m2m-basic", app.base)
    );
    let token = uuid::Uuid::parse_str(data["token"].as_str().unwrap_or_default()).expect("uuid");
    assert_eq!(token.get_version_num(), 4);
    assert!(is_millis_timestamp(
        data["createdAt"].as_str().unwrap_or_default()
    ));
    assert!(is_millis_timestamp(
        data["expiresAt"].as_str().unwrap_or_default()
    ));
    assert_eq!(lifetime(data), Duration::minutes(120));
}

#[tokio::test]
async fn created_at_reads_the_sandbox_clock() {
    let app = spawn_app().await;
    app.app
        .clock
        .set_to(time::macros::datetime!(2026-02-10 12:00 UTC))
        .expect("in range");
    app.app.clock.set_frozen(true);
    let reply = create(&app, seed_example()).await;
    assert_eq!(reply.data()["createdAt"], "2026-02-10T12:00:00.000Z");
    assert_eq!(reply.data()["expiresAt"], "2026-02-10T14:00:00.000Z");
}

#[tokio::test]
async fn defaults_are_sixty_minutes_and_the_basic_flow() {
    let app = spawn_app().await;
    let reply = create(&app, json!({"referenceId": "u"})).await;
    assert_eq!(reply.status, 201);
    assert_eq!(lifetime(reply.data()), Duration::minutes(60));
    let link_id = reply.data()["linkId"].as_str().unwrap_or_default();
    assert!(
        reply.data()["url"]
            .as_str()
            .is_some_and(|url| url.ends_with("/m2m-basic"))
    );
    let detail = app.get_link(&test_key(1), link_id).await;
    assert_eq!(detail.data()["flow"], "m2m-basic");
    assert_eq!(detail.data()["language"], Value::Null);
    assert_eq!(detail.data()["theme"], Value::Null);
    assert_eq!(detail.data()["metadata"], Value::Null);
    assert_eq!(detail.data()["callbackUrl"], Value::Null);
}

#[tokio::test]
async fn expiry_bounds_are_five_and_ten_thousand_eighty_minutes() {
    let app = spawn_app().await;
    for (i, (minutes, accepted)) in [(4, false), (5, true), (10080, true), (10081, false)]
        .into_iter()
        .enumerate()
    {
        let reply = create(
            &app,
            json!({"referenceId": format!("u{i}"), "expiresInMinutes": minutes}),
        )
        .await;
        if accepted {
            assert_eq!(reply.status, 201, "{minutes}: {reply:?}");
            assert_eq!(lifetime(reply.data()), Duration::minutes(minutes));
        } else {
            assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::EXPIRES_IN_MINUTES);
        }
    }
    let reply = create(&app, json!({"referenceId": "s", "expiresInMinutes": "120"})).await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::EXPIRES_IN_MINUTES);
}

#[tokio::test]
async fn language_is_en_or_es() {
    let app = spawn_app().await;
    for (i, language) in ["en", "es"].into_iter().enumerate() {
        let reply = create(
            &app,
            json!({"referenceId": format!("u{i}"), "language": language}),
        )
        .await;
        assert_eq!(reply.status, 201, "{language}");
        let detail = app
            .get_link(
                &test_key(1),
                reply.data()["linkId"].as_str().unwrap_or_default(),
            )
            .await;
        assert_eq!(detail.data()["language"], language);
    }
    let reply = create(&app, json!({"referenceId": "u9", "language": "fr"})).await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::LANGUAGE);
}

#[tokio::test]
async fn callback_urls_are_https_or_http_on_loopback() {
    let app = spawn_app().await;
    for (i, (url, accepted)) in [
        ("https://api.example.com/callbacks/m2m", true),
        ("http://127.0.0.1:9000/hooks", true),
        ("http://localhost:9000/hooks", true),
        ("http://[::1]:9000/hooks", true),
        ("http://api.example.com/callbacks/m2m", false),
        ("api.example.com/callbacks", false),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = create(
            &app,
            json!({"referenceId": format!("u{i}"), "callbackUrl": url}),
        )
        .await;
        if accepted {
            assert_eq!(reply.status, 201, "{url}: {reply:?}");
        } else {
            assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::CALLBACK_URL);
        }
    }
}

#[tokio::test]
async fn each_field_error_has_its_documented_message() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), messages::REFERENCE_ID_REQUIRED),
        (json!({"referenceId": ""}), messages::REFERENCE_ID_REQUIRED),
        (
            json!({"referenceId": "x".repeat(256)}),
            messages::REFERENCE_ID_TOO_LONG,
        ),
        (
            json!({"referenceId": "u", "metadata": "x"}),
            messages::METADATA,
        ),
        (
            json!({"referenceId": "u", "metadata": [1]}),
            messages::METADATA,
        ),
        (
            json!({"referenceId": "u", "userData": "x"}),
            messages::USER_DATA,
        ),
        (
            json!({"referenceId": "u", "userData": {"idType": "CURP"}}),
            messages::PAYMENT_METHOD_REQUIRED,
        ),
        (
            json!({"referenceId": "u", "flow": "m2m-express"}),
            "The flow field must be one of: m2m-basic",
        ),
        (
            json!({"referenceId": "u", "theme": 3}),
            "The theme field must be a string",
        ),
        (json!([1, 2]), messages::BODY_NOT_OBJECT),
    ];
    for (body, message) in cases {
        let reply = create(&app, body.clone()).await;
        assert_m2m_error(&reply, 400, "INVALID_REQUEST", message);
    }
}

#[tokio::test]
async fn user_data_with_a_payment_method_is_accepted_and_shown() {
    let app = spawn_app().await;
    let user_data = json!({
        "name": {"firstName": "Ana", "lastName": "Ruiz"},
        "idType": "CURP",
        "dob": "1990-05-01",
        "paymentMethod": {"type": "bank_account", "bankAccount": {"country": "MX", "accountNumber": "0123"}}
    });
    let reply = create(&app, json!({"referenceId": "u", "userData": user_data})).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let list = app.list_links(&test_key(1), "").await;
    assert_eq!(list.data()["items"][0]["userData"], user_data);
}

#[tokio::test]
async fn a_malformed_body_or_content_type_gets_the_documented_message() {
    let app = spawn_app().await;
    let key = test_key(1);
    let reply = app
        .send(
            Method::POST,
            "/partner/links",
            &[("x-api-key", &key), ("content-type", "application/json")],
            Some(b"{\"referenceId\": ".to_vec()),
        )
        .await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::INVALID_JSON);
    let reply = app
        .send(
            Method::POST,
            "/partner/links",
            &[("x-api-key", &key), ("content-type", "text/plain")],
            Some(b"{\"referenceId\": \"u\"}".to_vec()),
        )
        .await;
    assert_m2m_error(&reply, 400, "INVALID_REQUEST", messages::CONTENT_TYPE);
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
async fn unknown_fields_are_ignored_and_each_is_named_in_a_warning() {
    let app = spawn_app().await;
    let reply = create(
        &app,
        json!({"referenceId": "u", "expiresInMinute": 30, "langauge": "es"}),
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(lifetime(reply.data()), Duration::minutes(60));
    let mut warnings = reply.header_all("x-linkbox-warning");
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "ignored unknown field \"expiresInMinute\"",
            "ignored unknown field \"langauge\""
        ]
    );
    let clean = create(&app, json!({"referenceId": "v"})).await;
    assert!(clean.header("x-linkbox-warning").is_none());
}

#[tokio::test]
async fn a_second_active_link_for_the_same_user_conflicts() {
    let app = spawn_app().await;
    app.create_link_for(&test_key(1), "user-1").await;
    let reply = create(&app, json!({"referenceId": "user-1"})).await;
    assert_m2m_error(
        &reply,
        409,
        "ACTIVE_LINK_EXISTS",
        messages::ACTIVE_LINK_EXISTS,
    );
}

#[tokio::test]
async fn revoking_the_active_link_frees_the_user() {
    let app = spawn_app().await;
    let key = test_key(1);
    let first = app.create_link_for(&key, "user-1").await;
    let reply = app
        .revoke_link(&key, first["linkId"].as_str().unwrap_or_default(), None)
        .await;
    assert_eq!(reply.status, 200);
    app.create_link_for(&key, "user-1").await;
}

#[tokio::test]
async fn expiry_on_the_sandbox_clock_frees_the_user() {
    let app = spawn_app().await;
    let key = test_key(1);
    app.create_link(
        &key,
        &json!({"referenceId": "user-1", "expiresInMinutes": 5}),
    )
    .await;
    app.advance_clock(4 * 60);
    let reply = create(&app, json!({"referenceId": "user-1"})).await;
    assert_eq!(reply.status, 409);
    app.advance_clock(60);
    app.create_link_for(&key, "user-1").await;
}

#[tokio::test]
async fn a_returning_user_keeps_its_id_and_merges_user_data() {
    let app = spawn_app().await;
    let key = test_key(1);
    let first = app
        .create_link(
            &key,
            &json!({"referenceId": "user-1", "expiresInMinutes": 5, "userData": {
                "name": {"firstName": "Ana"}, "paymentMethod": {"type": "cash"}}}),
        )
        .await;
    app.advance_clock(5 * 60);
    let second = app
        .create_link(
            &key,
            &json!({"referenceId": "user-1", "userData": {
                "name": {"lastName": "Ruiz"}, "paymentMethod": {"type": "bank_account"}}}),
        )
        .await;
    assert_eq!(second.status, 201, "{second:?}");
    let detail = |reply: &Reply| {
        reply.data()["linkId"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let a = app.get_link(&key, &detail(&first)).await;
    let b = app.get_link(&key, &detail(&second)).await;
    assert_eq!(a.data()["userId"], b.data()["userId"]);
    assert_eq!(
        b.data()["userData"],
        json!({"name": {"firstName": "Ana", "lastName": "Ruiz"}, "paymentMethod": {"type": "bank_account"}})
    );
    let user_id = b.data()["userId"].as_str().unwrap_or_default();
    let slug = linkbox::store::m2m::open_mode_slug(&key);
    let suffix = user_id
        .strip_prefix(&format!("user_{slug}_"))
        .unwrap_or_default();
    assert!(
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{user_id}"
    );
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
