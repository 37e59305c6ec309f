//! `--max-tenant-mib`: what one tenant may store. A write past it is refused in its API's
//! envelope (403) and stores nothing; its neighbours, its reads and a reset go on.

use http::Method;
use linkbox::Options;
use linkbox::config::RateLimits;
use linkbox_tests::{TestApp, assert_leaf_problem, spawn_app_with, test_key};
use serde_json::{Value, json};

const USERS: &str = "/services/usermanagement/api/users";

async fn tight_app() -> TestApp {
    spawn_app_with(Options {
        max_tenant_mib: Some(1),
        rate_limits: Some(RateLimits::Off),
        ..Options::default()
    })
    .await
}

/// A sandbox of `stored_mib` MiB in all, `tenant_mib` a tenant, without rate limits.
async fn sandbox_of(tenant_mib: u64, stored_mib: u64) -> TestApp {
    spawn_app_with(Options {
        max_tenant_mib: Some(tenant_mib),
        max_stored_mib: Some(stored_mib),
        rate_limits: Some(RateLimits::Off),
        ..Options::default()
    })
    .await
}

fn bulky(reference_id: &str) -> Value {
    json!({"referenceId": reference_id, "metadata": {"blob": "x".repeat(200_000)}})
}

/// Creates 200 kB links for `key` until one is refused; returns the refusal and how many
/// were made. Both budgets refuse at once: the sandbox's counts what a write was admitted to
/// add before its next sum has seen it.
async fn fill(app: &TestApp, key: &str) -> (linkbox_tests::Reply, usize) {
    let mut made = 0;
    loop {
        let reply = app.create_link(key, &bulky(&format!("u{made}"))).await;
        if reply.status != 201 {
            return (reply, made);
        }
        made += 1;
        assert!(made < 20, "20 links of 200 kB and no refusal");
    }
}

#[tokio::test]
async fn a_partner_past_its_budget_is_refused_in_the_m2m_envelope_and_its_neighbours_go_on() {
    let app = tight_app().await;
    let (full, key) = (test_key(1), test_key(2));
    let (refused, made) = fill(&app, &full).await;
    assert_eq!(
        made, 5,
        "five links of 200 kB fit in 1 MiB, the sixth does not"
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json["success"], false);
    assert_eq!(refused.json["error"]["code"], "INVALID_REQUEST");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("--max-tenant-mib"), "{message}");
    assert!(message.contains("1 MiB"), "{message}");
    let listed = app.list_links(&full, "").await;
    assert_eq!(listed.status, 200, "reads go on: {listed:?}");
    assert_eq!(
        listed.json["data"]["pagination"]["total"], 5,
        "nothing refused was kept"
    );
    // Another partner has a budget of its own.
    assert_eq!(fill(&app, &key).await.1, 5);
    // The control API refuses a seed the partner has no room for, in its own envelope.
    let seeded = app
        .control(
            Method::POST,
            "/seed",
            Some(&full),
            Some(&json!({"api": "m2m", "count": 1000})),
        )
        .await;
    assert_eq!(seeded.status, 403, "{seeded:?}");
    assert_eq!(seeded.json["error"]["code"], "STORAGE_FULL");
    // A snapshot that would hold more than the budget is not restored.
    let snapshot = app
        .control(Method::GET, "/snapshot", Some(&full), None)
        .await;
    assert_eq!(snapshot.status, 200);
    let mut grown = snapshot.json.clone();
    grown["links"][0]["metadata"] = json!({"blob": "y".repeat(400_000)});
    let restored = app
        .control(Method::PUT, "/snapshot", Some(&full), Some(&grown))
        .await;
    assert_eq!(restored.status, 403, "{restored:?}");
    assert_eq!(restored.json["error"]["code"], "STORAGE_FULL");
    let after = app
        .control(Method::GET, "/snapshot", Some(&full), None)
        .await;
    assert_eq!(
        after.json, snapshot.json,
        "a refused restore changes nothing"
    );
    // Its own snapshot, the same size, restores; a reset makes room.
    let same = app
        .control(Method::PUT, "/snapshot", Some(&full), Some(&snapshot.json))
        .await;
    assert_eq!(same.status, 200, "{same:?}");
    let reset = app.control(Method::POST, "/reset", Some(&full), None).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(app.create_link(&full, &bulky("again")).await.status, 201);
}

#[tokio::test]
async fn a_leaf_account_past_its_budget_gets_a_403_problem() {
    let app = tight_app().await;
    let token = app.authenticate("farm").await;
    let user = |n: usize| {
        json!({"name": format!("u{n}"), "email": format!("u{n}@example.com"),
               "address": "a".repeat(300_000)})
    };
    let mut made = 0;
    let refused = loop {
        let reply = app
            .leaf(Method::POST, USERS, &token, Some(&user(made)))
            .await;
        if reply.status != 201 {
            break reply;
        }
        made += 1;
        assert!(made < 10, "a 1 MiB budget took 10 users of 300 kB");
    };
    assert_eq!(
        made, 3,
        "three users of 300 kB fit in 1 MiB, the fourth does not"
    );
    assert_leaf_problem(&refused, 403, "Forbidden", USERS);
    let detail = refused.json["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("--max-tenant-mib"), "{detail}");
    let listed = app.leaf(Method::GET, USERS, &token, None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(3));
    // Another account stores as before.
    let other = app.authenticate("other-farm").await;
    let reply = app.leaf(Method::POST, USERS, &other, Some(&user(0))).await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

/// `--max-stored-mib` bounds every tenant together: new keys cannot each fill a budget of
/// their own until the machine runs out of memory.
#[tokio::test]
async fn tenants_together_stop_at_the_sandbox_budget() {
    let app = sandbox_of(1, 2).await;
    // The first tenant fills its own budget: five links of 200 kB. The second stops past
    // seven eighths of the sandbox's (1.75 MiB), as it would then hold more than its share
    // (the sandbox's budget among the two and one more): after four.
    assert_eq!(fill(&app, &test_key(1)).await.1, 5);
    let (refused, made) = fill(&app, &test_key(2)).await;
    assert_eq!(made, 4, "{refused:?}");
    // A third tenant's link of 200 kB would take it past its slice of the last eighth (a
    // 512th of the sandbox's budget, 4 KiB here): the reserve is for small writes of many
    // tenants, not a few large ones.
    let (refused, made) = fill(&app, &test_key(3)).await;
    assert_eq!(
        made, 0,
        "the third tenant stored past its slice of the reserve"
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json["error"]["code"], "INVALID_REQUEST");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("--max-stored-mib"), "{message}");
    // A small link still fits, and a reset makes room for everyone.
    assert_eq!(
        app.create_link(&test_key(3), &json!({"referenceId": "small"}))
            .await
            .status,
        201
    );
    let reset = app
        .control(Method::POST, "/reset", Some(&test_key(1)), None)
        .await;
    assert_eq!(reset.status, 200, "{reset:?}");
    // What a reset lets go is counted free at the next sum.
    let waited = std::time::Instant::now();
    while app.create_link(&test_key(3), &bulky("after")).await.status != 201 {
        assert!(waited.elapsed().as_secs() < 5, "the reset made no room");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// One tenant whose own budget is as large as the sandbox's stops at seven eighths of it:
/// the last eighth is kept for tenants below their share, so its neighbours go on.
#[tokio::test]
async fn one_tenant_filling_the_sandbox_leaves_the_last_eighth_to_the_others() {
    let app = sandbox_of(2, 2).await;
    let (flooder, neighbour) = (test_key(1), test_key(2));
    let (refused, _) = fill(&app, &flooder).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("last eighth"), "{message}");
    let held = app.app.store.held();
    assert!(
        held <= 2 * 1024 * 1024 * 7 / 8,
        "the flooder went past seven eighths: {held}"
    );
    let reply = app
        .create_link(&neighbour, &json!({"referenceId": "n0"}))
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    // In the reserve, a tenant writes only while it holds less than its slice of it (a
    // 512th of the budget, 4 KiB here): a link of 200 kB is past it.
    let reply = app.create_link(&neighbour, &bulky("n1")).await;
    assert_eq!(reply.status, 403, "{reply:?}");
}

/// Keys made up by the hundred, each writing a setting and nothing else, are bounded by the
/// sandbox's budget: a tenant weighs its record, and a partner its webhook URL too. Past
/// the budget a new key's write is a 403 naming `--max-stored-mib` (the control API's
/// `STORAGE_FULL`, M2M's and Leaf's envelopes), and nothing more is stored.
#[tokio::test]
async fn made_up_keys_that_only_set_a_webhook_url_are_bounded_by_the_sandbox_budget() {
    let app = sandbox_of(1, 1).await;
    let url = format!("https://hooks.example/{}", "a".repeat(2000));
    let mut refused = None;
    for n in 0..2000 {
        let key = format!("m2m_test_{n:032}");
        let reply = app
            .control(
                Method::PUT,
                "/m2m/webhook-config",
                Some(&key),
                Some(&json!({"url": url})),
            )
            .await;
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a 1 MiB sandbox took 2000 partners of 3 kB");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json["error"]["code"], "STORAGE_FULL", "{refused:?}");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("--max-stored-mib"), "{message}");
    // However fast the keys came, between two sums or not.
    let held = app.app.store.held();
    assert!(held <= 1024 * 1024, "{held}");

    // A new key's first write through the API, and a new Leaf username's, are refused too.
    let fresh = app
        .create_link(
            "m2m_test_ffffffffffffffffffffffffffffffff",
            &json!({"referenceId": "r"}),
        )
        .await;
    assert_eq!(fresh.status, 403, "{fresh:?}");
    assert_eq!(fresh.json["success"], false, "{fresh:?}");
    let token = app.authenticate("made-up").await;
    let user = app
        .leaf(
            Method::POST,
            USERS,
            &token,
            Some(&json!({"name": "n", "email": "n@example.com"})),
        )
        .await;
    assert_leaf_problem(&user, 403, "Forbidden", USERS);
    // Through the control API, a new Leaf account is refused with its code.
    let other = app.authenticate("made-up-too").await;
    let auth = format!("Bearer {other}");
    let seeded = app
        .send(
            Method::POST,
            "/_sandbox/seed",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(br#"{"api": "leaf", "count": 1}"#.to_vec()),
        )
        .await;
    assert_eq!(seeded.status, 403, "{seeded:?}");
    assert_eq!(seeded.json["error"]["code"], "STORAGE_FULL", "{seeded:?}");
}
