//! The behaviours a real client trips over (issue 13): nested `userData` checks, data
//! requests that follow their link, webhook order, and deliveries that cannot be sent.

use std::time::Duration;

use linkbox::Options;
use linkbox_tests::receiver::Receiver;
use linkbox_tests::{TestApp, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};

/// Opens `link_id` as its end user through the control API; returns the data request id.
async fn open(app: &TestApp, key: &str, link_id: &str) -> Option<String> {
    let opened = app
        .control(
            Method::POST,
            &format!("/m2m/links/{link_id}/open"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(opened.status, 200, "{opened:?}");
    opened.json["dataRequest"]["dataRequestId"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn nested_typos_are_named_and_nested_type_errors_refused() {
    let app = spawn_app().await;
    let key = test_key(1);
    let reply = app
        .create_link(
            &key,
            &json!({"referenceId": "u1", "userData": {
                "name": {"firstname": "Ana"},
                "paymentMethod": {"type": "bank_account", "bankAcount": {"country": "MX"},
                    "bankAccount": {"country": "MX", "accountNumber": "0123"}}
            }}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let warnings = reply.header_all("x-linkbox-warning").join(" | ");
    assert!(warnings.contains("userData.name.firstname"), "{warnings}");
    assert!(
        warnings.contains("userData.paymentMethod.bankAcount"),
        "{warnings}"
    );
    // Unknown keys inside userData are kept as sent, and the warning says so, not
    // "ignored".
    assert!(
        warnings.contains("unknown field kept as sent: \"userData.name.firstname\""),
        "{warnings}"
    );
    assert!(!warnings.contains("ignored"), "{warnings}");
    let link_id = reply.json["data"]["linkId"].as_str().expect("linkId");
    let detail = app.get_link(&key, link_id).await;
    assert_eq!(
        detail.json["data"]["userData"]["name"]["firstname"], "Ana",
        "{detail:?}"
    );
    let reply = app
        .create_link(
            &key,
            &json!({"referenceId": "u2", "userData": {
                "paymentMethod": {"type": "bank_account", "bankAccount": 5}
            }}),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("userData.paymentMethod.bankAccount")),
        "{reply:?}"
    );
    let reply = app
        .create_link(
            &key,
            &json!({"referenceId": "u3", "userData": {
                "idImage": "not a data url", "paymentMethod": {"type": "cash"}
            }}),
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let listed = app.list_links(&key, "referenceId=u3").await;
    assert_eq!(
        listed.json["data"]["pagination"]["total"], 0,
        "stored: {listed:?}"
    );
}

#[tokio::test]
async fn data_requests_follow_their_link() {
    let app = spawn_app().await;
    let key = test_key(1);
    let link = app.create_link_for(&key, "u1").await;
    let link_id = link["linkId"].as_str().expect("linkId");
    let id = open(&app, &key, link_id).await.expect("a data request");
    let nothing_asked = app
        .fulfil_data_request(
            &key,
            &id,
            &json!({"referenceId": "u1", "userData": {"phone": "5"}}),
        )
        .await;
    assert_eq!(nothing_asked.status, 400, "{nothing_asked:?}");
    let message = nothing_asked.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("idNumber") && message.contains("dob"),
        "{message}"
    );
    let extra = app
        .fulfil_data_request(
            &key,
            &id,
            &json!({"referenceId": "u1", "userData": {"dob": "1990-01-01", "idImage": "data:image/png;base64,AAAA"}}),
        )
        .await;
    assert_eq!(extra.status, 200, "{extra:?}");
    let warnings = extra.header_all("x-linkbox-warning").join(" | ");
    assert!(warnings.contains("userData.idImage"), "{warnings}");
    assert!(!warnings.contains("userData.dob"), "{warnings}");

    let other = app.create_link_for(&key, "u2").await;
    let other_id = other["linkId"].as_str().expect("linkId");
    let request = open(&app, &key, other_id).await.expect("a data request");
    assert_eq!(app.revoke_link(&key, other_id, None).await.status, 200);
    let refused = app
        .fulfil_data_request(
            &key,
            &request,
            &json!({"referenceId": "u2", "userData": {"dob": "1990-01-01"}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("revoked")),
        "{refused:?}"
    );
    let detail = app.get_link(&key, other_id).await;
    assert_eq!(detail.json["data"]["userData"], Value::Null, "{detail:?}");
}

#[tokio::test]
async fn a_link_opened_arrives_before_its_data_request() {
    let app = spawn_app_with(Options {
        webhook_timeout: Some(Duration::from_millis(500)),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    let key = test_key(1);
    for n in 0..10 {
        let reply = app
            .create_link(
                &key,
                &json!({"referenceId": format!("u{n}"), "callbackUrl": receiver.url}),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let link_id = reply.json["data"]["linkId"]
            .as_str()
            .expect("linkId")
            .to_owned();
        open(&app, &key, &link_id).await.expect("a data request");
    }
    let received = receiver.wait_for(30).await;
    for n in 0..10 {
        let reference = format!("u{n}");
        let order: Vec<&str> = received
            .iter()
            .filter(|event| event.json["data"]["referenceId"] == reference.as_str())
            .map(|event| event.event())
            .collect();
        assert_eq!(
            order,
            ["link.created", "link.opened", "user.data_request"],
            "{reference}"
        );
    }
}

#[tokio::test]
async fn an_external_url_with_external_webhooks_off_fails_at_once() {
    let app = spawn_app().await;
    let key = test_key(1);
    let config = app
        .control(
            Method::PUT,
            "/m2m/webhook-config",
            Some(&key),
            Some(&json!({"url": "https://hooks.example.com/m2m"})),
        )
        .await;
    assert_eq!(config.status, 200, "{config:?}");
    let link = app.create_link_for(&key, "u1").await;
    open(&app, &key, link["linkId"].as_str().expect("linkId")).await;
    let deliveries = app.settled_deliveries(&key).await;
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "failed", "{delivery}");
        assert_eq!(
            delivery["attempts"].as_array().map(Vec::len),
            Some(1),
            "{delivery}"
        );
        assert_eq!(delivery["nextAttemptAt"], Value::Null, "{delivery}");
    }
    let id = deliveries[0]["id"].as_str().expect("id");
    let replay = app.replay(&key, id).await;
    assert_eq!(replay.status, 202, "{replay:?}");
}

/// A path parameter is read percent-decoded, as the vendors' frameworks read it: `%6C` in
/// a link id, `%2D` in a Leaf user id name what the plain ids name. Literal segments are
/// matched as sent, and an escape that decodes to no text names nothing.
#[tokio::test]
async fn percent_encoded_path_parameters_name_what_they_encode() {
    let app = spawn_app().await;
    let key = test_key(1);
    let created = app.create_link_for(&key, "encoded").await;
    let id = created["linkId"].as_str().expect("linkId");
    let encoded = format!("%{:02X}{}", id.as_bytes()[0], &id[1..]);
    let reply = app.get_link(&key, &encoded).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["data"]["linkId"], id);
    let revoked = app.revoke_link(&key, &encoded, None).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    for path in [
        format!("/partner/%6Cinks/{id}"),
        format!("/partner/links/{id}%FF"),
    ] {
        let reply = app.m2m(reqwest::Method::GET, &path, &key, None).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }

    let token = app.authenticate("encoded").await;
    let made = app
        .leaf(
            reqwest::Method::POST,
            "/services/usermanagement/api/users",
            &token,
            Some(&json!({"name": "Ana", "email": "ana@example.com", "externalId": "enc-1"})),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    let user = made.json["id"].as_str().expect("id");
    let encoded = user.replace('-', "%2D");
    let read = app
        .leaf(
            reqwest::Method::GET,
            &format!("/services/usermanagement/api/users/{encoded}"),
            &token,
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json["id"], user);
}

/// A body sent compressed is refused naming its encoding (415, the M2M envelope), not read
/// as the bytes it is: gzip was "not valid JSON", and a plain body labelled `br` was taken
/// as plain. `identity` is no encoding; an empty body has nothing to decode.
#[tokio::test]
async fn a_compressed_body_is_refused_naming_its_encoding() {
    let app = spawn_app().await;
    let key = test_key(1);
    let create = |encoding: &'static str, body: Vec<u8>| {
        let key = key.clone();
        let app = &app;
        async move {
            let headers = [
                ("x-api-key", key.as_str()),
                ("content-type", "application/json"),
                ("content-encoding", encoding),
            ];
            app.send(Method::POST, "/partner/links", &headers, Some(body))
                .await
        }
    };
    let plain = serde_json::to_vec(&json!({"referenceId": "enc"})).expect("json");
    for encoding in ["gzip", "deflate", "br", "gzip, identity"] {
        let reply = create(encoding, plain.clone()).await;
        linkbox_tests::assert_m2m_error(
            &reply,
            415,
            "INVALID_REQUEST",
            &format!(
                "Content-Encoding {encoding:?} is not supported: send the request body uncompressed (identity)"
            ),
        );
    }
    let listed = app.list_links(&key, "referenceId=enc").await;
    assert_eq!(listed.json["data"]["pagination"]["total"], 0, "{listed:?}");
    // An empty body is `{}` whatever its label, as ever.
    let empty = create("gzip", Vec::new()).await;
    linkbox_tests::assert_m2m_error(
        &empty,
        400,
        "INVALID_REQUEST",
        "The referenceId field is required",
    );
    for encoding in ["identity", "IDENTITY"] {
        let reply = create(encoding, plain.clone()).await;
        assert_eq!(reply.status, 201, "{encoding}: {reply:?}");
        let id = reply.json["data"]["linkId"].as_str().expect("id");
        let revoked = app.revoke_link(&key, id, None).await;
        assert_eq!(revoked.status, 200, "{revoked:?}");
    }
}

/// The control API refuses a compressed body as M2M does (415, naming the encoding, in its
/// own envelope), where a plain body labelled `gzip` was taken as plain and a gzipped one
/// read as "not a JSON object". `identity` is no encoding.
#[tokio::test]
async fn the_control_api_refuses_a_compressed_body_naming_its_encoding() {
    let app = spawn_app().await;
    let advance = |encoding: &'static str| {
        let app = &app;
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("content-encoding", encoding),
            ];
            let body = br#"{"advanceSeconds": 60}"#.to_vec();
            app.send(Method::POST, "/_sandbox/clock", &headers, Some(body))
                .await
        }
    };
    for encoding in ["gzip", "br", "x-unknown"] {
        let reply = advance(encoding).await;
        assert_eq!(reply.status, 415, "{encoding}: {reply:?}");
        assert_eq!(reply.json["error"]["code"], "INVALID_REQUEST", "{reply:?}");
        assert_eq!(
            reply.json["error"]["message"],
            format!(
                "Content-Encoding {encoding:?} is not supported: send the request body uncompressed (identity)"
            ),
        );
    }
    let clock = app.send(Method::GET, "/_sandbox/clock", &[], None).await;
    assert_eq!(clock.json["offsetSeconds"], 0, "nothing moved: {clock:?}");
    let plain = advance("identity").await;
    assert_eq!(plain.status, 200, "{plain:?}");
}

/// Numbers come back as the vendor's Node server writes them: a whole number sent as `1e2`,
/// `5.0` or `-0` reads back `100`, `5` and `0` (JavaScript holds no other kind), in the
/// link's metadata and the user's data; an operation's amounts likewise (`100`, not
/// `100.0`). Fractions and integers are kept as sent.
#[tokio::test]
async fn whole_numbers_come_back_as_javascript_writes_them() {
    let app = spawn_app().await;
    let key = test_key(1);
    let body = br#"{"referenceId": "numbers", "metadata": {"a": 1e2, "b": 5.0, "c": -0, "d": 1.25, "e": 7},
        "userData": {"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R"}},
                     "score": 3.0}}"#;
    let created = app
        .send(
            Method::POST,
            "/partner/links",
            &[("x-api-key", &key), ("content-type", "application/json")],
            Some(body.to_vec()),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let link_id = created.json["data"]["linkId"].as_str().expect("id");
    let detail = app.get_link(&key, link_id).await;
    assert!(
        detail
            .text
            .contains(r#""metadata":{"a":100,"b":5,"c":0,"d":1.25,"e":7}"#),
        "{}",
        detail.text
    );
    let score = &detail.json["data"]["userData"]["score"];
    assert!(score.is_i64() && score == 3, "{}", detail.text);
    // The user lacks CIP data, so the open asks for it; the fulfil's numbers read back alike.
    let request = open(&app, &key, link_id).await.expect("a data request");
    let fulfilled = app
        .fulfil_data_request(
            &key,
            &request,
            &json!({"referenceId": "numbers", "userData": {"dob": "1990-01-01", "level": 2e1}}),
        )
        .await;
    assert_eq!(fulfilled.status, 200, "{fulfilled:?}");
    let detail = app.get_link(&key, link_id).await;
    // Written `20`, which reads back as an integer; `20.0` would read back as a float.
    let level = &detail.json["data"]["userData"]["level"];
    assert!(level.is_i64() && level == 20, "{}", detail.text);
    let operation = app
        .create_operation(&key, link_id, &json!({"amount": 100}))
        .await;
    assert_eq!(operation.status, 201, "{operation:?}");
    assert!(
        operation.text.contains(r#""send":100,"#) && !operation.text.contains("100.0"),
        "{}",
        operation.text
    );
}
