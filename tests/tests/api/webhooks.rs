//! Signed M2M webhooks received by a real loopback receiver: payloads, headers, signatures,
//! retries on the sandbox clock, timeouts, replay and secret rotation.

use std::time::{Duration, Instant};

use clap::Parser;
use linkbox::Options;
use linkbox_tests::receiver::{Receiver, verify};
use linkbox_tests::{TestApp, spawn_app_with, test_key};

use crate::tls;
use reqwest::Method;
use serde_json::{Value, json};

async fn sandbox() -> TestApp {
    timing_out_after(Duration::from_millis(300)).await
}

/// A sandbox whose webhook attempts time out after `timeout`.
async fn timing_out_after(timeout: Duration) -> TestApp {
    spawn_app_with(Options {
        webhook_timeout: Some(timeout),
        ..Options::default()
    })
    .await
}

async fn create_with_callback(app: &TestApp, key: &str, receiver: &Receiver, body: Value) -> Value {
    let mut body = body;
    body["callbackUrl"] = json!(receiver.url);
    let reply = app.create_link(key, &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json["data"].clone()
}

fn attempts(delivery: &Value) -> usize {
    delivery["attempts"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn link_created_arrives_signed_with_the_documented_headers_and_payload() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(1);
    let secret = app.regenerate_secret(&key).await;
    let link = create_with_callback(
        &app,
        &key,
        &receiver,
        json!({"referenceId": "u1", "metadata": {"orderId": "A1"}}),
    )
    .await;
    let received = receiver.wait_for_event("link.created").await;
    assert_eq!(received.header("content-type"), "application/json");
    assert!(verify(&received, &secret), "signature of {received:?}");
    assert!(!verify(&received, "whsec_wrong"));
    let timestamp: i64 = received
        .header("x-m2m-timestamp")
        .parse()
        .expect("unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((timestamp - now).abs() < 5);
    assert_eq!(received.json["event"], "link.created");
    // The event happened when the link was made: one instant, the same text.
    assert_eq!(received.json["timestamp"], link["createdAt"]);
    assert_eq!(
        received.json["data"],
        json!({
            "linkId": link["linkId"], "referenceId": "u1", "url": link["url"],
            "status": "created", "expiresAt": link["expiresAt"], "createdAt": link["createdAt"],
            "metadata": {"orderId": "A1"}
        })
    );
    let delivered = app
        .wait_for_delivery(&key, "link.created", |d| d["status"] == "delivered")
        .await;
    assert_eq!(delivered["attempts"][0]["statusCode"], 200);
    assert_eq!(delivered["url"], receiver.url);
}

#[tokio::test]
async fn opening_sends_link_opened_once_and_a_data_request_that_can_be_fulfilled() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(2);
    let secret = app.regenerate_secret(&key).await;
    let link = create_with_callback(&app, &key, &receiver, json!({"referenceId": "u2"})).await;
    let link_id = link["linkId"].as_str().expect("id");
    let open_path = format!("/m2m/links/{link_id}/open");
    let device = json!({"userAgent": "Mozilla/5.0", "platform": "iOS", "language": "es"});
    let opened = app
        .control(Method::POST, &open_path, Some(&key), Some(&device))
        .await;
    assert_eq!(opened.status, 200, "{opened:?}");
    assert_eq!(opened.json["firstOpen"], true);
    let received = receiver.wait_for(3).await;
    let opened_event = received
        .iter()
        .find(|r| r.event() == "link.opened")
        .expect("link.opened");
    assert!(verify(opened_event, &secret));
    assert_eq!(opened_event.json["data"]["deviceInfo"], device);
    assert_eq!(
        opened_event.json["data"]["openedAt"],
        opened.json["openedAt"]
    );
    let request = received
        .iter()
        .find(|r| r.event() == "user.data_request")
        .expect("user.data_request");
    let data = &request.json["data"];
    let id = data["dataRequestId"].as_str().expect("id");
    assert_eq!(data["linkId"], link_id);
    assert_eq!(data["referenceId"], "u2");
    assert_eq!(data["expiresAt"], link["expiresAt"]);
    assert_eq!(data["requiredFields"].as_array().map(Vec::len), Some(7));
    assert_eq!(
        data["replyEndpoint"],
        format!("{}/partner/data-requests/{id}", app.base)
    );
    let again = app
        .control(Method::POST, &open_path, Some(&key), None)
        .await;
    assert_eq!(again.json["firstOpen"], false);
    let fulfilled = app
        .fulfil_data_request(
            &key,
            id,
            &json!({"referenceId": "u2", "userData": {"dob": "1990-01-01"}}),
        )
        .await;
    assert_eq!(fulfilled.status, 200, "{fulfilled:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 3, "a second open sends nothing");
}

#[tokio::test]
async fn operations_send_created_and_cancelled_events_and_set_the_operation_id() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(3);
    let link = create_with_callback(&app, &key, &receiver, json!({"referenceId": "u3"})).await;
    let link_id = link["linkId"].as_str().expect("id");
    let path = format!("/m2m/links/{link_id}/operation");
    let amount = json!({"amount": 100, "fee": 2.5});
    let too_early = app
        .control(Method::POST, &path, Some(&key), Some(&amount))
        .await;
    assert_eq!(too_early.status, 409);
    assert_eq!(too_early.json["error"]["code"], "LINK_NOT_OPENED");
    let open_path = format!("/m2m/links/{link_id}/open");
    app.control(Method::POST, &open_path, Some(&key), None)
        .await;
    let created = app
        .control(Method::POST, &path, Some(&key), Some(&amount))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let operation_id = created.json["operationId"]
        .as_str()
        .expect("op id")
        .to_owned();
    let slug = link_id.split('_').nth(1).expect("slug");
    let prefix = format!("op_{slug}_");
    assert!(operation_id.starts_with(&prefix));
    assert_eq!(operation_id.len(), prefix.len() + 6);
    let detail = app.get_link(&key, link_id).await;
    assert_eq!(detail.data()["operationId"], operation_id.as_str());
    let event = receiver.wait_for_event("operation.created").await;
    assert_eq!(event.json["data"]["operationId"], operation_id.as_str());
    assert_eq!(event.json["data"]["amount"]["send"], 100.0);
    assert_eq!(event.json["data"]["amount"]["receive"], 97.5);
    assert_eq!(event.json["data"]["status"], "completed");
    let cancelled = app
        .control(Method::POST, &format!("{path}/cancel"), Some(&key), None)
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let event = receiver.wait_for_event("operation.cancelled").await;
    assert_eq!(event.json["data"]["operationId"], operation_id.as_str());
    assert_eq!(
        event.json["data"]["cancelledAt"],
        cancelled.json["cancelledAt"]
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_when_the_clock_moves_a_minute_and_not_before() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500]);
    let key = test_key(4);
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "u4"})).await;
    receiver.wait_for(1).await;
    let pending = app
        .wait_for_delivery(&key, "link.created", |d| attempts(d) == 1)
        .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["attempts"][0]["statusCode"], 500);
    assert!(pending["nextAttemptAt"].is_string());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "no retry before the clock moves"
    );
    app.move_clock(&key, 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "no retry before a full minute"
    );
    app.move_clock(&key, 10).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[0].body, received[1].body,
        "a retry resends the same body"
    );
    let delivered = app
        .wait_for_delivery(&key, "link.created", |d| d["status"] == "delivered")
        .await;
    assert_eq!(attempts(&delivered), 2);
    assert_eq!(delivered["nextAttemptAt"], Value::Null);
}

/// One move of the clock past the whole schedule makes every retry it passed, to a real
/// receiver, and fails the delivery: the control API's "fires due retries at once".
#[tokio::test]
async fn a_clock_moved_past_the_whole_schedule_makes_every_retry_and_fails_the_delivery() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500, 500, 500, 500, 500, 500]);
    let key = test_key(5);
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "u5"})).await;
    receiver.wait_for(1).await;
    app.wait_for_delivery(&key, "link.created", |d| attempts(d) == 1)
        .await;
    app.move_clock(&key, 156 * 60).await;
    let received = receiver.wait_for(5).await;
    assert!(received.iter().all(|r| r.body == received[0].body));
    let failed = app
        .wait_for_delivery(&key, "link.created", |d| d["status"] == "failed")
        .await;
    assert_eq!(attempts(&failed), 5);
    assert_eq!(failed["nextAttemptAt"], Value::Null);
}

#[tokio::test]
async fn a_receiver_that_never_answers_neither_slows_the_api_nor_loses_the_delivery() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    receiver.hang();
    let key = test_key(5);
    let started = Instant::now();
    for n in 0..3 {
        create_with_callback(
            &app,
            &key,
            &receiver,
            json!({"referenceId": format!("u{n}")}),
        )
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "took {:?}",
        started.elapsed()
    );
    let timed_out = app
        .wait_for_delivery(&key, "link.created", |d| attempts(d) > 0)
        .await;
    assert_eq!(timed_out["status"], "pending");
    let error = timed_out["attempts"][0]["error"]
        .as_str()
        .expect("an error");
    assert!(error.contains("timed out"), "{error}");
    assert!(timed_out["nextAttemptAt"].is_string());
}

/// Partners whose receivers hang, several of them, each with more attempts due than its
/// share, leave another partner's webhooks to go out at once, one after another: each new
/// receiver makes one attempt at a time, and once those ran out their time, the receivers
/// that hang hold only the slow lane.
#[tokio::test]
async fn partners_with_hanging_receivers_do_not_hold_up_another_partners_webhooks() {
    use linkbox::webhooks::engine::{MAX_ATTEMPTS_PER_PARTNER, SLOW_ATTEMPTS};
    let app = timing_out_after(Duration::from_secs(2)).await;
    let quick = Receiver::start().await;
    let other = test_key(22);
    let mut hanging = Vec::new();
    // Each stuck partner has more links than its share, each its own link, so none waits
    // for another's delivery.
    for stuck in (30..35).map(test_key) {
        let receiver = Receiver::start().await;
        receiver.hang();
        for n in 0..MAX_ATTEMPTS_PER_PARTNER + 4 {
            create_with_callback(
                &app,
                &stuck,
                &receiver,
                json!({"referenceId": format!("s{n}")}),
            )
            .await;
        }
        hanging.push(receiver);
    }
    let held = || {
        hanging
            .iter()
            .map(|receiver| receiver.received().len())
            .sum::<usize>()
    };
    // One attempt each, and once those ran out their time, the slow lane full.
    let full = hanging.len() + SLOW_ATTEMPTS;
    let started = Instant::now();
    while held() < full && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held() >= full, "the hanging receivers hold {}", held());
    assert_eq!(quicker_than(&app, &other, &quick).await, 4);
}

/// Sends four `link.created` webhooks of `key` to `quick`, which answers each after 300 ms,
/// and counts those it received within 4 s: each later one is due while one is in flight.
async fn quicker_than(app: &TestApp, key: &str, quick: &Receiver) -> usize {
    quick.answer_after(Duration::from_millis(300));
    let started = Instant::now();
    for n in 0..4 {
        create_with_callback(app, key, quick, json!({"referenceId": format!("q{n}")})).await;
    }
    while quick.received().len() < 4 && started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    quick.received().len()
}

/// Made-up keys by the hundred, each with one delivery to one receiver that hangs, hold one
/// place while the receiver is new to the line (and the slow lane once its attempt ran out
/// its time): another partner's webhooks go out at once. First come, first served, they
/// queued ahead of it and it waited for them to time out, two hundred at a time.
#[tokio::test]
async fn made_up_keys_with_one_hanging_receiver_do_not_hold_up_another_receivers_webhooks() {
    let app = timing_out_after(Duration::from_secs(8)).await;
    let (hanging, quick) = (Receiver::start().await, Receiver::start().await);
    hanging.hang();
    for n in 0..300 {
        let made_up = format!("m2m_test_{n:032x}");
        create_with_callback(&app, &made_up, &hanging, json!({"referenceId": "x"})).await;
    }
    hanging.wait_for(1).await;
    assert_eq!(quicker_than(&app, &test_key(23), &quick).await, 4);
    assert_eq!(hanging.received().len(), 1, "a new receiver's one attempt");
}

/// A tenant's reset forgets its deliveries, also those waiting for their place: none of
/// them is sent after it.
#[tokio::test]
async fn a_reset_forgets_the_deliveries_waiting_for_their_place() {
    use linkbox::webhooks::engine::MAX_ATTEMPTS_PER_PARTNER;
    let app = timing_out_after(Duration::from_secs(3)).await;
    let hanging = Receiver::start().await;
    hanging.hang();
    let key = test_key(24);
    for n in 0..MAX_ATTEMPTS_PER_PARTNER * 3 {
        create_with_callback(
            &app,
            &key,
            &hanging,
            json!({"referenceId": format!("r{n}")}),
        )
        .await;
    }
    // The new receiver's one attempt, and once it ran out its time, the partner's share.
    hanging.wait_for(1 + MAX_ATTEMPTS_PER_PARTNER).await;
    let reset = app.control(Method::POST, "/reset", Some(&key), None).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = hanging.received().len();
    assert_eq!(sent, 1 + MAX_ATTEMPTS_PER_PARTNER);
    // Past the hanging attempts' timeout, the places they held are free again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(hanging.received().len(), sent);
}

#[tokio::test]
async fn a_replayed_delivery_is_sent_again() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(6);
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "u6"})).await;
    let delivered = app
        .wait_for_delivery(&key, "link.created", |d| d["status"] == "delivered")
        .await;
    let id = delivered["id"].as_str().expect("id");
    let replay = app.replay(&key, id).await;
    assert_eq!(replay.status, 202, "{replay:?}");
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].body, received[0].body);
    let missing = app.replay(&key, "whd_000000000000").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"]["code"], "NOT_FOUND");
    // Text that is not a delivery id names none, not even the delivery it spells in
    // capitals.
    for other in [
        id.to_uppercase().replace("WHD_", "whd_"),
        format!("{id}0"),
        "link_1".into(),
    ] {
        if other == id {
            // Twelve decimal digits have no capitals.
            continue;
        }
        let refused = app.replay(&key, &other).await;
        assert_eq!(refused.status, 404, "{other}: {refused:?}");
        assert_eq!(refused.json["error"]["code"], "NOT_FOUND", "{other}");
    }
}

#[tokio::test]
async fn a_regenerated_secret_signs_the_next_attempt() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[503]);
    let key = test_key(7);
    let old = app.regenerate_secret(&key).await;
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "u7"})).await;
    let first = receiver.wait_for(1).await.remove(0);
    assert!(verify(&first, &old));
    let new = app.regenerate_secret(&key).await;
    app.move_clock(&key, 60).await;
    let second = receiver.wait_for(2).await.remove(1);
    assert!(
        verify(&second, &new),
        "the retry is signed with the new secret"
    );
    assert!(!verify(&second, &old));
}

/// Regenerating the secret takes no fields: a body is read as every M2M body is, each field
/// named as ignored, and a body refused rotates nothing (the secret in force still signs).
#[tokio::test]
async fn a_regenerate_bodys_fields_are_named_and_a_refused_body_rotates_nothing() {
    let app = sandbox().await;
    let key = test_key(9);
    let path = "/partner/webhooks/config/regenerate-secret";
    let reply = app
        .m2m(
            Method::POST,
            path,
            &key,
            Some(&json!({"secret": "whsec_mine"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let secret = reply.json["webhookSecret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    assert_ne!(secret, "whsec_mine");
    assert!(
        reply
            .header("x-linkbox-warning")
            .is_some_and(|warning| warning.contains("\"secret\"")),
        "{reply:?}"
    );
    for (content_type, body, status) in [
        ("application/json", "not json at all", 400),
        ("application/json", "[1]", 400),
        ("text/plain", "{}", 400),
    ] {
        let reply = app
            .send(
                Method::POST,
                path,
                &[("x-api-key", &key), ("content-type", content_type)],
                Some(body.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(reply.status, status, "{content_type} {body}: {reply:?}");
        assert_eq!(reply.json["success"], false, "{reply:?}");
    }
    // The secret of the last 200 is the one in force.
    let receiver = Receiver::start().await;
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "u9"})).await;
    let received = receiver.wait_for(1).await.remove(0);
    assert!(verify(&received, &secret));
}

#[tokio::test]
async fn without_a_url_the_delivery_fails_at_once_and_a_replay_reaches_the_portal_url() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(8);
    app.create_link_for(&key, "u8").await;
    let failed = app
        .wait_for_delivery(&key, "link.created", |d| attempts(d) > 0)
        .await;
    let error = failed["attempts"][0]["error"].as_str().expect("error");
    assert!(error.contains("no webhook URL"), "{error}");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["nextAttemptAt"], Value::Null);
    let config = app
        .control(
            Method::PUT,
            "/m2m/webhook-config",
            Some(&key),
            Some(&json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(config.status, 200, "{config:?}");
    let bad = app
        .control(
            Method::PUT,
            "/m2m/webhook-config",
            Some(&key),
            Some(&json!({"url": "http://example.com/x"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let id = failed["id"].as_str().unwrap_or_default();
    let replay = app.replay(&key, id).await;
    assert_eq!(replay.status, 202, "{replay:?}");
    let received = receiver.wait_for_event("link.created").await;
    assert_eq!(received.json["data"]["referenceId"], "u8");
}

#[tokio::test]
async fn a_webhook_for_another_machine_is_not_sent_unless_external_webhooks_are_on() {
    let app = sandbox().await;
    let key = test_key(9);
    app.create_link(
        &key,
        &json!({"referenceId": "u9", "callbackUrl": "https://api.example.com/callbacks/m2m"}),
    )
    .await;
    let delivery = app
        .wait_for_delivery(&key, "link.created", |d| attempts(d) > 0)
        .await;
    let error = delivery["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("external webhooks are off"), "{error}");
    assert_eq!(delivery["attempts"][0]["statusCode"], Value::Null);
}

#[tokio::test]
async fn the_delivery_list_comes_a_page_at_a_time() {
    let app = linkbox_tests::spawn_app().await;
    let key = linkbox_tests::test_key(91);
    for n in 0..5 {
        app.create_link_for(&key, &format!("page-{n}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/webhooks?limit=2".to_owned();
    loop {
        let page = app.control(Method::GET, &path, Some(&key), None).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.json["total"], 5, "{page:?}");
        let deliveries = page.json["deliveries"].as_array().expect("deliveries");
        assert!(deliveries.len() <= 2);
        seen.extend(
            deliveries
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_owned()),
        );
        match page.json["nextBefore"].as_str() {
            Some(before) => path = format!("/webhooks?limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 5, "no delivery twice");
    for bad in [
        "/webhooks?limit=0",
        "/webhooks?limit=1001",
        "/webhooks?before=whd_nope",
        "/webhooks?page=2",
        "/webhooks?limit=1&limit=2",
    ] {
        let refused = app.control(Method::GET, bad, Some(&key), None).await;
        assert_eq!(refused.status, 400, "{bad}: {refused:?}");
        assert_eq!(refused.json["error"]["code"], "INVALID_REQUEST", "{bad}");
    }
}

/// A `callbackUrl` or webhook URL is at most 2,084 characters: each delivery and each of
/// its attempts keeps the URL it went to, so one of megabytes would be copied into every one.
#[tokio::test]
async fn urls_longer_than_the_limit_are_refused_where_they_are_given() {
    use linkbox_contracts::m2m::{MAX_URL_CHARS, messages};
    let app = sandbox().await;
    let key = test_key(12);
    let url = |chars: usize| {
        let mut url = "https://api.example.com/hook?pad=".to_owned();
        url.extend(std::iter::repeat_n('a', chars - url.len()));
        url
    };
    for (chars, created) in [(MAX_URL_CHARS, 201), (MAX_URL_CHARS + 1, 400)] {
        let reply = app
            .create_link(
                &key,
                &json!({"referenceId": format!("long-{chars}"), "callbackUrl": url(chars)}),
            )
            .await;
        assert_eq!(reply.status, created, "{chars}: {:?}", reply.json);
        if created == 400 {
            assert_eq!(reply.json["error"]["code"], "INVALID_REQUEST");
            assert_eq!(reply.json["error"]["message"], messages::CALLBACK_URL);
        }
        let config = app
            .control(
                Method::PUT,
                "/m2m/webhook-config",
                Some(&key),
                Some(&json!({"url": url(chars)})),
            )
            .await;
        if created == 201 {
            assert_eq!(config.status, 200, "{config:?}");
            assert_eq!(config.json["url"], url(chars));
        } else {
            assert_eq!(config.status, 400, "{config:?}");
            assert_eq!(
                config.json["error"]["message"],
                "The url field must be an HTTPS URL, or http to localhost, 127.0.0.1 or [::1], \
                 of at most 2084 characters"
            );
        }
    }
}

/// Any key holder can point a webhook at linkbox's own control API, and deliveries carry no
/// credentials; on a sandbox without `--admin-token` a request without credentials is the
/// admin, but a delivery never is: a stranger's `link.created` sent to `/_sandbox/reset` is
/// refused (401, saying why) and every other tenant keeps its links and its frozen clock.
#[tokio::test]
async fn a_webhook_aimed_at_the_control_api_is_never_the_admin() {
    let app = sandbox().await;
    let (victim, stranger) = (test_key(1471), test_key(1472));
    let kept = app.create_link_for(&victim, "victim").await;
    let frozen = app
        .control(
            Method::POST,
            "/clock",
            Some(&victim),
            Some(&json!({"frozen": true})),
        )
        .await;
    assert_eq!(frozen.status, 200, "{frozen:?}");
    let anonymous = app.control(Method::GET, "/clock", None, None).await;
    assert_eq!(
        anonymous.status, 200,
        "no credentials, no admin token: admin"
    );
    let aimed = app
        .create_link(
            &stranger,
            &json!({"referenceId": "x", "callbackUrl": app.url("/_sandbox/reset")}),
        )
        .await;
    assert_eq!(aimed.status, 201, "{aimed:?}");
    let delivery = app
        .wait_for_delivery(&stranger, "link.created", |delivery| attempts(delivery) > 0)
        .await;
    assert_eq!(delivery["attempts"][0]["statusCode"], 401, "{delivery}");
    let id = kept["linkId"].as_str().expect("linkId");
    assert_eq!(app.get_link(&victim, id).await.status, 200, "the reset ran");
    let clock = app
        .control(Method::GET, "/clock", Some(&victim), None)
        .await;
    assert_eq!(clock.json["frozen"], true, "{clock:?}");
    let signed = app
        .send_built(
            reqwest::Client::new()
                .post(app.url("/_sandbox/reset"))
                .header("X-M2M-Signature", "sha256=00"),
        )
        .await;
    assert_eq!(signed.status, 401, "{signed:?}");
    let message = signed.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("webhook delivery"), "{message}");
}

/// An https receiver whose certificate a private CA issued: its attempts fail with the
/// certificate's error, naming the flag, and reach nothing; with `--webhook-ca-cert` the
/// same receiver gets the event, signed.
#[tokio::test]
async fn an_https_receiver_of_a_private_ca_is_reached_once_its_ca_is_given() {
    let (ca_pem, config) = tls::private_ca();
    let receiver = Receiver::start().await;
    let url = format!("{}/hooks", tls::front(receiver.addr, config).await);
    let key = test_key(2);
    let body = json!({"referenceId": "tls", "callbackUrl": url});

    let untrusting = sandbox().await;
    assert_eq!(untrusting.create_link(&key, &body).await.status, 201);
    let refused = untrusting
        .wait_for_delivery(&key, "link.created", |delivery| attempts(delivery) == 1)
        .await;
    let error = refused["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("certificate") && error.contains("--webhook-ca-cert FILE"),
        "{refused}"
    );
    assert!(refused["attempts"][0]["statusCode"].is_null(), "{refused}");
    assert!(
        receiver.received().is_empty(),
        "nothing got through the TLS front"
    );

    // The CA as a partner gives it: a PEM file named on the command line.
    let ca = tempfile::Builder::new()
        .prefix("linkbox-webhook-ca-")
        .suffix(".pem")
        .tempfile()
        .expect("a file for the CA");
    std::fs::write(ca.path(), &ca_pem).expect("write the CA");
    let path = ca.path().to_str().expect("a UTF-8 path");
    let args = ["linkbox", "serve", "--webhook-ca-cert", path];
    let linkbox::cli::Command::Serve(serve) = linkbox::cli::Cli::try_parse_from(args)
        .expect("parses")
        .command
    else {
        panic!("not serve");
    };
    let options = serve.options().expect("the CA file is taken");
    assert_eq!(options.webhook_ca_cert.as_deref(), Some(ca_pem.as_bytes()));
    let trusting = spawn_app_with(Options {
        webhook_timeout: Some(Duration::from_millis(300)),
        ..options
    })
    .await;
    let secret = trusting.regenerate_secret(&key).await;
    assert_eq!(trusting.create_link(&key, &body).await.status, 201);
    let received = receiver.wait_for_event("link.created").await;
    assert!(verify(&received, &secret), "signature of {received:?}");
    assert_eq!(received.json["data"]["referenceId"], "tls");
    let delivered = trusting
        .wait_for_delivery(&key, "link.created", |d| d["status"] == "delivered")
        .await;
    assert_eq!(delivered["attempts"][0]["statusCode"], 200);
    assert_eq!(delivered["url"], url);
}

/// A receiver named under `localhost` (`https://hooks.localhost:PORT`) is this machine:
/// the attempt connects to loopback without asking a DNS server off the machine, where
/// such a name may not resolve, or resolve anywhere. The certificate's error shows the
/// attempt got as far as the receiver's TLS front on 127.0.0.1.
#[tokio::test]
async fn a_receiver_named_under_localhost_is_reached_on_loopback_without_dns() {
    let (_, config) = tls::private_ca();
    let receiver = Receiver::start().await;
    let front = tls::front(receiver.addr, config).await;
    let port = front.rsplit(':').next().expect("a port");
    let url = format!("https://hooks.localhost:{port}/hooks");
    let app = sandbox().await;
    let key = test_key(3);
    let body = json!({"referenceId": "named", "callbackUrl": url});
    assert_eq!(app.create_link(&key, &body).await.status, 201);
    let attempted = app
        .wait_for_delivery(&key, "link.created", |delivery| attempts(delivery) == 1)
        .await;
    let error = attempted["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("certificate") && !error.contains("dns"),
        "{attempted}"
    );
}

/// `X-M2M-Timestamp` is the attempt's time on the sandbox clock, as the event's own
/// `timestamp` is: a day ahead after the clock moves a day, and the signature holds over it.
#[tokio::test]
async fn the_signing_timestamp_reads_the_sandbox_clock() {
    let app = sandbox().await;
    let receiver = Receiver::start().await;
    let key = test_key(4);
    let secret = app.regenerate_secret(&key).await;
    let moved = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"advanceSeconds": 86_400})),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    create_with_callback(&app, &key, &receiver, json!({"referenceId": "ahead"})).await;
    let received = receiver.wait_for_event("link.created").await;
    assert!(verify(&received, &secret), "signature of {received:?}");
    let timestamp: i64 = received
        .header("x-m2m-timestamp")
        .parse()
        .expect("unix seconds");
    let ahead = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    assert!((timestamp - ahead).abs() < 5, "{timestamp} vs {ahead}");
}
