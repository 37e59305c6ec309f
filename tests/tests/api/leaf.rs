//! The Leaf magic-link API where the contract suite cannot reach: a token signed by another
//! linkbox, a configured linkbox's accounts, and hostile or oversized bodies. The API's
//! behaviour itself is the suite's (`leaf.*`); `docs/tests-moved.md` says where each former
//! test of this file went.

use linkbox::Options;
use linkbox::config::{FileConfig, LeafAccountConfig};
use linkbox_tests::{Reply, TestApp, assert_leaf_problem, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

const WIDGETS: &str = "/services/widgets/api";
const USERS: &str = "/services/usermanagement/api/users";

/// The smallest valid create-with-user body of a widget type.
fn minimal_body(kind: &str, external_id: &str) -> Value {
    match kind {
        "authentication" => json!({"externalId": external_id, "provider": "JohnDeere"}),
        _ => json!({"externalId": external_id}),
    }
}

async fn create_link(app: &TestApp, token: &str, kind: &str, body: &Value) -> Reply {
    app.leaf(
        Method::POST,
        &format!("{WIDGETS}/magic-link/{kind}"),
        token,
        Some(body),
    )
    .await
}

/// Creates a link of `kind` for `external_id`; asserts the 200 and returns the body.
async fn created_link(app: &TestApp, token: &str, kind: &str, external_id: &str) -> Value {
    let reply = create_link(app, token, kind, &minimal_body(kind, external_id)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json
}

async fn get_link(app: &TestApp, token: &str, kind: &str, id: &str) -> Reply {
    app.leaf(
        Method::GET,
        &format!("{WIDGETS}/magic-link/{kind}/{id}"),
        token,
        None,
    )
    .await
}

/// Creates a Leaf user; asserts the 201 and returns its id.
async fn new_user(app: &TestApp, token: &str, name: &str, external_id: &str) -> String {
    let reply = app
        .leaf(
            Method::POST,
            USERS,
            token,
            Some(
                &json!({"name": name, "email": format!("{name}@example.com"),
                         "externalId": external_id}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json["id"].as_str().expect("id").to_owned()
}

async fn authenticate_with(app: &TestApp, body: &Value) -> Reply {
    app.send(
        Method::POST,
        "/api/authenticate",
        &[("content-type", "application/json")],
        Some(serde_json::to_vec(body).expect("json")),
    )
    .await
}

#[tokio::test]
async fn a_token_signed_by_another_linkbox_is_a_401_problem() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let token = app.authenticate("owner").await;
    let foreign = other.authenticate("owner").await;
    let path = format!("{WIDGETS}/magic-link/provider");
    let reply = app.leaf(Method::GET, &path, &foreign, None).await;
    assert_leaf_problem(&reply, 401, "Unauthorized", &path);
    assert_eq!(app.leaf(Method::GET, &path, &token, None).await.status, 200);
}

/// In open mode any non-empty username logs in, but one holding U+0000, which no database
/// names an account by: refused as bad credentials, in one process as across replicas
/// (where it was a 503 for good).
#[tokio::test]
async fn open_mode_refuses_a_username_holding_a_nul_as_bad_credentials() {
    let app = spawn_app().await;
    let reply =
        authenticate_with(&app, &json!({"username": "nul\u{0}user", "password": "p"})).await;
    assert_leaf_problem(&reply, 401, "Unauthorized", "/api/authenticate");
    let reply = authenticate_with(&app, &json!({"username": "nul user", "password": "p"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn config_mode_admits_only_configured_accounts_with_their_max_usage() {
    let app = spawn_app_with(Options {
        file: Some(FileConfig {
            leaf_accounts: vec![LeafAccountConfig {
                username: "qa@example.com".into(),
                password: "s3cret".into(),
                max_usage: Some(5),
            }],
            ..FileConfig::default()
        }),
        ..Options::default()
    })
    .await;
    for body in [
        json!({"username": "qa@example.com", "password": "wrong"}),
        json!({"username": "stranger", "password": "s3cret"}),
    ] {
        let reply = authenticate_with(&app, &body).await;
        assert_leaf_problem(&reply, 401, "Unauthorized", "/api/authenticate");
    }
    let reply = authenticate_with(
        &app,
        &json!({"username": "qa@example.com", "password": "s3cret", "rememberMe": "true"}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json["id_token"].as_str().expect("token");
    let created = created_link(&app, token, "provider", "ext").await;
    let id = created["id"].as_str().expect("id");
    let link = get_link(&app, token, "provider", id).await;
    assert_eq!(link.json["maxUsage"], 5);
}

/// `--max-tenants` bounds Leaf accounts as it bounds partners: a new username is refused
/// at login once the sandbox holds that many, and so is the first write of a token issued
/// before the last place was taken; known accounts go on working.
#[tokio::test]
async fn beyond_max_tenants_a_new_leaf_username_is_refused_and_known_ones_still_work() {
    let app = spawn_app_with(Options {
        max_tenants: Some(1),
        ..Options::default()
    })
    .await;
    let first = app.authenticate("farm-a").await;
    let early = app.authenticate("farm-b").await;
    created_link(&app, &first, "provider", "ext-a").await;
    let refused = authenticate_with(&app, &json!({"username": "farm-c", "password": "p"})).await;
    assert_leaf_problem(&refused, 403, "Forbidden", "/api/authenticate");
    let detail = refused.json["detail"].as_str().expect("detail");
    assert!(detail.contains("--max-tenants"), "{detail}");
    let path = format!("{WIDGETS}/magic-link/provider");
    let write = create_link(&app, &early, "provider", &minimal_body("provider", "ext-b")).await;
    assert_leaf_problem(&write, 403, "Forbidden", &path);
    let seeded = app
        .send(
            Method::POST,
            "/_sandbox/seed",
            &[
                ("authorization", &format!("Bearer {early}")),
                ("content-type", "application/json"),
            ],
            Some(br#"{"api": "leaf", "count": 1}"#.to_vec()),
        )
        .await;
    assert_eq!(seeded.status, 403, "{seeded:?}");
    assert!(app.authenticate("farm-a").await.len() > 10);
    created_link(&app, &first, "provider", "ext-a2").await;
}

/// The admin reset drops open-mode Leaf accounts, so a new username gets the place again.
#[tokio::test]
async fn the_admin_reset_gives_back_the_places_of_leaf_accounts() {
    let app = spawn_app_with(Options {
        max_tenants: Some(1),
        ..Options::default()
    })
    .await;
    let first = app.authenticate("farm-a").await;
    created_link(&app, &first, "provider", "ext-a").await;
    let refused = authenticate_with(&app, &json!({"username": "farm-c", "password": "p"})).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let everything = app.control(Method::POST, "/reset", None, None).await;
    assert_eq!(everything.status, 200, "{everything:?}");
    let later = app.authenticate("farm-c").await;
    created_link(&app, &later, "provider", "ext-c").await;
}

#[tokio::test]
async fn unreadable_bodies_are_400_413_or_415_problems() {
    let app = spawn_app().await;
    let token = app.authenticate("bodies").await;
    let auth = format!("Bearer {token}");
    let path = format!("{WIDGETS}/magic-link/provider");
    for body in [
        &b"{not json"[..],
        b"[1, 2]",
        b"\"text\"",
        b"{\"externalId\": \"e\"} trailing",
    ] {
        let reply = app
            .send(
                Method::POST,
                &path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(body.to_vec()),
            )
            .await;
        assert_leaf_problem(&reply, 400, "Bad Request", &path);
    }
    let reply = app
        .send(
            Method::POST,
            &path,
            &[("authorization", &auth), ("content-type", "text/plain")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_leaf_problem(&reply, 415, "Unsupported Media Type", &path);
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    let reply = app
        .send(
            Method::POST,
            &path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(huge),
        )
        .await;
    assert_leaf_problem(&reply, 413, "Payload Too Large", &path);
    let login = app
        .send(
            Method::POST,
            "/api/authenticate",
            &[("content-type", "application/json")],
            Some(b"{\"username\":".to_vec()),
        )
        .await;
    assert_leaf_problem(&login, 400, "Bad Request", "/api/authenticate");
}

#[tokio::test]
async fn hostile_input_never_gets_a_500_or_a_body_that_is_not_a_problem() {
    let app = spawn_app().await;
    let token = app.authenticate("hostile").await;
    let auth = format!("Bearer {token}");
    let user_id = new_user(&app, &token, "h", "h-1").await;
    let wrong_types = json!({
        "expiresIn": {"a": 1}, "allowedProviders": {"All": true}, "provider": [1],
        "settings": {"backgroundColor": [], "companyLogo": {}, "companyName": 1,
                     "headerImage": true, "showLeafUserName": "no", "disconnectEnabled": null},
        "externalId": 12, "name": [], "email": {}, "id": 1, "phone": [], "address": 2,
        "username": 1, "password": [], "rememberMe": {}
    });
    let huge = "x".repeat(2 * 1024 * 1024);
    let bodies: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&wrong_types).expect("json"),
        serde_json::to_vec(&json!({"settings": "flat", "allowedProviders": [null, 1, "All"]}))
            .expect("json"),
        serde_json::to_vec(&json!({"externalId": "e", "provider": huge.clone(),
                                   "allowedProviders": [huge.clone()],
                                   "settings": {"backgroundColor": huge.clone()},
                                   "expiresIn": 1e300, "name": 5}))
        .expect("json"),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        vec![b'{', 0xff, 0xfe, b'}'],
        b"{\"externalId\": \"\xc3\x28\"}".to_vec(),
        b"{\0}".to_vec(),
        serde_json::to_vec(&json!({"externalId": "\u{0}", "provider": "\u{0}",
                                   "settings": {"companyLogo": "\u{0}"}, "expiresIn": -900}))
        .expect("json"),
        b"null".to_vec(),
        b"99999999999999999999999999999".to_vec(),
    ];
    let paths = [
        "/api/authenticate".to_owned(),
        format!("{WIDGETS}/magic-link/provider"),
        format!("{WIDGETS}/magic-link/authentication"),
        format!("{WIDGETS}/magic-link/file-upload"),
        format!("{WIDGETS}/magic-link/users/{user_id}/authentication"),
        format!("{WIDGETS}/magic-link/user/{user_id}/provider"),
        USERS.to_owned(),
    ];
    for path in &paths {
        for body in &bodies {
            let reply = app
                .send(
                    Method::POST,
                    path,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    Some(body.clone()),
                )
                .await;
            assert!(
                reply.status == 400,
                "{path}: {} {}",
                reply.status,
                reply.text.len()
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            assert!(reply.json["type"].is_string() && reply.json["title"].is_string());
            assert_eq!(reply.json["status"], 400);
        }
    }
    let put = format!("{USERS}/{user_id}");
    for body in &bodies {
        let reply = app
            .send(
                Method::PUT,
                &put,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text.len());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    for path in [
        format!("{WIDGETS}/magic-link/provider/%FF%FE"),
        format!("{WIDGETS}/magic-link/provider/{}", "a".repeat(4000)),
        format!("{USERS}/%00"),
        format!("{WIDGETS}/magic-link/provider?page=%FF&size=%00"),
    ] {
        let reply = app
            .send(Method::GET, &path, &[("authorization", &auth)], None)
            .await;
        assert!(
            matches!(reply.status, 400 | 404),
            "{path}: {} {}",
            reply.status,
            reply.text
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
}

#[tokio::test]
async fn a_query_on_a_route_that_takes_none_is_named_not_ignored_unseen() {
    let app = spawn_app().await;
    let token = app.authenticate("queries").await;
    let warned = |reply: &Reply| reply.header_all("x-linkbox-warning");
    let created = app
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/provider?expiresIn=3600&expiresIn=60"),
            &token,
            Some(&minimal_body("provider", "q1")),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(warned(&created), ["ignored unknown field \"expiresIn\""]);
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let user = created.json["leafUserId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let member = format!("{WIDGETS}/magic-link/provider/{id}");
    let read = app
        .leaf(Method::GET, &format!("{member}?foo=1"), &token, None)
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(warned(&read), ["ignored unknown field \"foo\""]);
    let for_user = app
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/magic-link/users/{user}/provider?leafUserId=x"),
            &token,
            Some(&json!({})),
        )
        .await;
    assert_eq!(for_user.status, 200, "{for_user:?}");
    assert_eq!(warned(&for_user), ["ignored unknown field \"leafUserId\""]);
    let user_read = app
        .leaf(Method::GET, &format!("{USERS}/{user}?x=1"), &token, None)
        .await;
    assert_eq!(user_read.status, 200, "{user_read:?}");
    assert_eq!(warned(&user_read), ["ignored unknown field \"x\""]);
    let deleted = app
        .leaf(Method::DELETE, &format!("{member}?bar="), &token, None)
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_eq!(warned(&deleted), ["ignored unknown field \"bar\""]);
    // A refusal names none; without a query, no warning; a list's own parameters are known.
    let gone = app
        .leaf(Method::GET, &format!("{member}?foo=1"), &token, None)
        .await;
    assert_eq!(gone.status, 404, "{gone:?}");
    assert!(warned(&gone).is_empty(), "{gone:?}");
    let plain = get_link(&app, &token, "provider", "unknown").await;
    assert!(warned(&plain).is_empty(), "{plain:?}");
    let listed = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider?page=0&size=5&leafUserId={user}"),
            &token,
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(warned(&listed).is_empty(), "{listed:?}");
}

/// A username is at most 256 characters: a token made from a longer one, which it carries,
/// could grow past the request head that must send it back, a token no request could use.
#[tokio::test]
async fn a_username_past_256_characters_is_a_field_error_not_a_token_no_request_can_send() {
    let app = spawn_app().await;
    let longest = "é".repeat(256);
    let taken = authenticate_with(&app, &json!({"username": longest, "password": "p"})).await;
    assert_eq!(taken.status, 200, "{taken:?}");
    let token = taken.json["id_token"].as_str().unwrap_or_default();
    let used = app
        .leaf(Method::GET, &format!("{USERS}?size=1"), token, None)
        .await;
    assert_eq!(used.status, 200, "{used:?}");

    let refused = authenticate_with(
        &app,
        &json!({"username": "u".repeat(100_000), "password": "p"}),
    )
    .await;
    assert_eq!(
        linkbox_tests::assert_leaf_violations(&refused, "/api/authenticate"),
        ["username"]
    );
    assert_eq!(
        refused.json["fieldErrors"][0]["message"], "size must be between 1 and 256",
        "{refused:?}"
    );
    let just_past =
        authenticate_with(&app, &json!({"username": "u".repeat(257), "password": "p"})).await;
    assert_eq!(just_past.status, 400, "{just_past:?}");
}

/// A body of JSON's white space alone is no body; one holding another control byte (a form
/// feed, a vertical tab) is text no JSON parser takes: a 400, where it was read as no body.
#[tokio::test]
async fn a_body_of_a_form_feed_is_malformed_json_not_an_empty_body() {
    let app = spawn_app().await;
    let token = app.authenticate("feeds").await;
    let user = new_user(&app, &token, "Feed", "feed-1").await;
    let path = format!("{WIDGETS}/magic-link/user/{user}/file-upload");
    let authorization = format!("Bearer {token}");
    for (body, status) in [(" \r\n\t", 200), ("\x0c", 400), ("\x0b", 400)] {
        let reply = app
            .send(
                Method::POST,
                &path,
                &[
                    ("authorization", &authorization),
                    ("content-type", "application/json"),
                ],
                Some(body.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(reply.status, status, "{body:?}: {reply:?}");
    }
    let key = "m2m_test_00000000000000000000000000000f0f";
    for (body, status) in [(" \r\n\t", 200), ("\x0c", 400)] {
        let reply = app
            .send(
                Method::POST,
                "/partner/webhooks/config/regenerate-secret",
                &[("x-api-key", key), ("content-type", "application/json")],
                Some(body.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(reply.status, status, "{body:?}: {reply:?}");
    }
}
