//! The Leaf magic-link API end to end, over real sockets: authentication, the fifteen
//! magic-link endpoints (and the legacy singular create paths), Leaf users, tenancy, and
//! the JHipster problem body on every error path. Each rule of `leaf.md` has a test here.

use linkbox::Options;
use linkbox::config::{FileConfig, LeafAccountConfig};
use linkbox_tests::{
    Reply, TestApp, assert_leaf_problem, assert_leaf_violations, spawn_app, spawn_app_with,
};
use reqwest::Method;
use serde_json::{Value, json};

const WIDGETS: &str = "/services/widgets/api";
const USERS: &str = "/services/usermanagement/api/users";
const TYPES: [&str; 3] = ["provider", "authentication", "file-upload"];
const PROVIDERS: [&str; 7] = [
    "JohnDeere",
    "ClimateFieldView",
    "CNHI",
    "AgLeader",
    "Trimble",
    "RavenSlingshot",
    "Stara",
];

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

fn fraction_digits(timestamp: &Value) -> usize {
    let text = timestamp.as_str().expect("a timestamp");
    let fraction = text.split('.').nth(1).expect("a fraction");
    assert!(fraction.ends_with('Z'), "{text}");
    fraction.len() - 1
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Asserts the documented shape of a magic link from a get or a list.
#[track_caller]
fn assert_link_shape(link: &Value, widget: &str) {
    let mut expected = vec![
        "createdAt",
        "expiresAt",
        "id",
        "lastAccessedAt",
        "leafUserId",
        "link",
        "maxUsage",
        "settings",
        "usageCount",
        "widget",
    ];
    match widget {
        "PROVIDER" => expected.push("allowedProviders"),
        "AUTHENTICATION" => expected.push("provider"),
        _ => {}
    }
    expected.sort_unstable();
    assert_eq!(keys(link), expected, "{link}");
    assert_eq!(link["widget"], widget);
    assert_eq!(
        keys(&link["settings"]),
        [
            "backgroundColor",
            "companyLogo",
            "companyName",
            "disconnectEnabled",
            "headerImage",
            "showLeafUserName"
        ]
    );
    assert_eq!(fraction_digits(&link["createdAt"]), 3);
    assert_eq!(fraction_digits(&link["expiresAt"]), 3);
}

/// Asserts the documented shape of a create response.
#[track_caller]
fn assert_created_shape(app: &TestApp, created: &Value) {
    assert_eq!(keys(created), ["expiresAt", "id", "leafUserId", "link"]);
    assert_eq!(fraction_digits(&created["expiresAt"]), 9);
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        created["link"],
        format!("{}/magic-link/{id}", app.base),
        "link of {created}"
    );
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

// ---------------------------------------------------------------- authentication

#[tokio::test]
async fn authenticate_returns_a_jwt_for_any_non_empty_credentials_in_open_mode() {
    let app = spawn_app().await;
    let reply = authenticate_with(&app, &json!({"username": "farmer", "password": "pw"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(keys(&reply.json), ["id_token"]);
    let token = reply.json["id_token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let list = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider"),
            token,
            None,
        )
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json, json!([]));
}

#[tokio::test]
async fn authenticate_lists_every_missing_or_mistyped_credential() {
    let app = spawn_app().await;
    let reply = authenticate_with(&app, &json!({"password": 7, "rememberMe": "maybe"})).await;
    let fields = assert_leaf_violations(&reply, "/api/authenticate");
    assert_eq!(fields, ["username", "password", "rememberMe"]);
    assert_eq!(reply.json["fieldErrors"][0]["objectName"], "loginVM");
    let blank = authenticate_with(&app, &json!({"username": " ", "password": "pw"})).await;
    assert_eq!(
        assert_leaf_violations(&blank, "/api/authenticate"),
        ["username"]
    );
}

#[tokio::test]
async fn remember_me_in_boolean_or_string_form_chooses_thirty_days_over_twenty_four_hours() {
    for (remember, lifetime_hours) in [
        (None, 24),
        (Some(json!(false)), 24),
        (Some(json!("false")), 24),
        (Some(json!(true)), 30 * 24),
        (Some(json!("true")), 30 * 24),
    ] {
        let app = spawn_app().await;
        let mut body = json!({"username": "u", "password": "p"});
        if let Some(remember) = &remember {
            body["rememberMe"] = remember.clone();
        }
        let reply = authenticate_with(&app, &body).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.json["id_token"].as_str().expect("token").to_owned();
        let path = format!("{WIDGETS}/magic-link/provider");
        app.advance_clock(lifetime_hours * 3600 - 60);
        let still = app.leaf(Method::GET, &path, &token, None).await;
        assert_eq!(still.status, 200, "{remember:?} before expiry: {still:?}");
        app.advance_clock(60);
        let expired = app.leaf(Method::GET, &path, &token, None).await;
        assert_leaf_problem(&expired, 401, "Unauthorized", &path);
    }
}

#[tokio::test]
async fn a_token_expires_when_the_sandbox_clock_passes_its_exp() {
    let app = spawn_app().await;
    let token = app.authenticate("clock").await;
    let path = format!("{WIDGETS}/magic-link/file-upload");
    assert_eq!(app.leaf(Method::GET, &path, &token, None).await.status, 200);
    app.app
        .clock
        .advance(time::Duration::hours(25))
        .expect("in range");
    let reply = app.leaf(Method::GET, &path, &token, None).await;
    assert_leaf_problem(&reply, 401, "Unauthorized", &path);
    assert_eq!(reply.json["detail"], "The bearer token has expired");
}

#[tokio::test]
async fn missing_malformed_forged_and_foreign_tokens_are_401_problems() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let token = app.authenticate("owner").await;
    let foreign = other.authenticate("owner").await;
    let mut forged = token.clone();
    let last = forged.pop().expect("a character");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let path = format!("{WIDGETS}/magic-link/provider");
    let none = app.send(Method::GET, &path, &[], None).await;
    assert_leaf_problem(&none, 401, "Unauthorized", &path);
    let basic = app
        .send(Method::GET, &path, &[("authorization", "Basic dTpw")], None)
        .await;
    assert_leaf_problem(&basic, 401, "Unauthorized", &path);
    for bad in ["not-a-jwt", "a.b.c", forged.as_str(), foreign.as_str()] {
        let reply = app.leaf(Method::GET, &path, bad, None).await;
        assert_leaf_problem(&reply, 401, "Unauthorized", &path);
    }
    assert_eq!(app.leaf(Method::GET, &path, &token, None).await.status, 200);
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

// ---------------------------------------------------------------- creating links

#[tokio::test]
async fn a_provider_link_created_with_a_bare_external_id_gets_every_default() {
    let app = spawn_app().await;
    let token = app.authenticate("defaults").await;
    let created = created_link(&app, &token, "provider", "farm-1").await;
    assert_created_shape(&app, &created);
    let id = created["id"].as_str().expect("id");
    let link = get_link(&app, &token, "provider", id).await;
    assert_eq!(link.status, 200, "{link:?}");
    assert_link_shape(&link.json, "PROVIDER");
    assert_eq!(link.json["allowedProviders"], json!(["All"]));
    assert_eq!(
        link.json["settings"],
        json!({"backgroundColor": "#F5F5F5", "companyLogo": null, "companyName": null,
               "headerImage": null, "showLeafUserName": false, "disconnectEnabled": false})
    );
    assert_eq!(link.json["maxUsage"], 3);
    assert_eq!(link.json["usageCount"], 0);
    assert_eq!(link.json["lastAccessedAt"], Value::Null);
    assert_eq!(link.json["leafUserId"], created["leafUserId"]);
    let created_at = linkbox_contracts::timefmt::parse(link.json["createdAt"].as_str().expect("t"));
    let expires_at = linkbox_contracts::timefmt::parse(link.json["expiresAt"].as_str().expect("t"));
    let lifetime = expires_at.expect("parses") - created_at.expect("parses");
    assert_eq!(lifetime, time::Duration::seconds(900));
}

#[tokio::test]
async fn expires_in_must_be_an_integer_from_900_to_31622400() {
    let app = spawn_app().await;
    let token = app.authenticate("bounds").await;
    let path = format!("{WIDGETS}/magic-link/file-upload");
    for (value, accepted) in [
        (json!(899), false),
        (json!(900), true),
        (json!(31_622_400), true),
        (json!(31_622_401), false),
        (json!(1200.5), false),
        (json!("900"), false),
    ] {
        let reply = create_link(
            &app,
            &token,
            "file-upload",
            &json!({"externalId": "e", "expiresIn": value}),
        )
        .await;
        if accepted {
            assert_eq!(reply.status, 200, "{value}: {reply:?}");
            let id = reply.json["id"].as_str().expect("id");
            let link = get_link(&app, &token, "file-upload", id).await;
            let created =
                linkbox_contracts::timefmt::parse(link.json["createdAt"].as_str().expect("t"));
            let expires =
                linkbox_contracts::timefmt::parse(link.json["expiresAt"].as_str().expect("t"));
            let seconds = (expires.expect("t") - created.expect("t")).whole_seconds();
            assert_eq!(json!(seconds), value);
        } else {
            assert_eq!(
                assert_leaf_violations(&reply, &path),
                ["expiresIn"],
                "{value}"
            );
        }
    }
}

#[tokio::test]
async fn every_provider_is_accepted_and_an_unknown_one_refused() {
    let app = spawn_app().await;
    let token = app.authenticate("providers").await;
    for provider in PROVIDERS.iter().chain(["All"].iter()) {
        let body = json!({"externalId": "e", "allowedProviders": [provider]});
        let reply = create_link(&app, &token, "provider", &body).await;
        assert_eq!(reply.status, 200, "{provider}: {reply:?}");
        let link = get_link(
            &app,
            &token,
            "provider",
            reply.json["id"].as_str().expect("id"),
        )
        .await;
        assert_eq!(link.json["allowedProviders"], json!([provider]));
    }
    for provider in PROVIDERS {
        let body = json!({"externalId": "e", "provider": provider});
        let reply = create_link(&app, &token, "authentication", &body).await;
        assert_eq!(reply.status, 200, "{provider}: {reply:?}");
        let id = reply.json["id"].as_str().expect("id");
        let link = get_link(&app, &token, "authentication", id).await;
        assert_eq!(link.json["provider"], provider);
    }
    let wrong = create_link(
        &app,
        &token,
        "provider",
        &json!({"externalId": "e", "allowedProviders": ["JohnDeere", "Other"]}),
    )
    .await;
    let path = format!("{WIDGETS}/magic-link/provider");
    assert_eq!(assert_leaf_violations(&wrong, &path), ["allowedProviders"]);
    let wrong = create_link(
        &app,
        &token,
        "authentication",
        &json!({"externalId": "e", "provider": "johndeere"}),
    )
    .await;
    let path = format!("{WIDGETS}/magic-link/authentication");
    assert_eq!(assert_leaf_violations(&wrong, &path), ["provider"]);
}

#[tokio::test]
async fn authentication_links_refuse_all_and_require_a_provider() {
    let app = spawn_app().await;
    let token = app.authenticate("auth").await;
    let path = format!("{WIDGETS}/magic-link/authentication");
    for body in [
        json!({"externalId": "e", "provider": "All"}),
        json!({"externalId": "e"}),
        json!({"externalId": "e", "provider": null}),
    ] {
        let reply = create_link(&app, &token, "authentication", &body).await;
        assert_eq!(
            assert_leaf_violations(&reply, &path),
            ["provider"],
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_three_widget_types_differ_as_documented() {
    let app = spawn_app().await;
    let token = app.authenticate("kinds").await;
    let settings = json!({"disconnectEnabled": true, "showLeafUserName": true,
                          "backgroundColor": "#abc", "companyName": "Acme",
                          "companyLogo": "https://acme.example/logo.png",
                          "headerImage": "http://acme.example/header.jpg"});
    for (kind, widget) in [
        ("provider", "PROVIDER"),
        ("authentication", "AUTHENTICATION"),
        ("file-upload", "FILEUPLOAD"),
    ] {
        let mut body = minimal_body(kind, "e");
        body["settings"] = settings.clone();
        let reply = create_link(&app, &token, kind, &body).await;
        assert_eq!(reply.status, 200, "{kind}: {reply:?}");
        let link = get_link(&app, &token, kind, reply.json["id"].as_str().expect("id")).await;
        assert_link_shape(&link.json, widget);
        let mut expected = settings.clone();
        expected["disconnectEnabled"] = json!(kind != "file-upload");
        assert_eq!(link.json["settings"], expected, "{kind}");
    }
}

#[tokio::test]
async fn an_external_id_creates_the_user_once_and_then_reuses_it() {
    let app = spawn_app().await;
    let token = app.authenticate("reuse").await;
    let first = created_link(&app, &token, "provider", "grower-7").await;
    let second = created_link(&app, &token, "file-upload", "grower-7").await;
    let third = created_link(&app, &token, "provider", "grower-8").await;
    assert_eq!(first["leafUserId"], second["leafUserId"]);
    assert_ne!(first["leafUserId"], third["leafUserId"]);
    let user_id = first["leafUserId"].as_str().expect("id");
    assert!(uuid_like(user_id), "{user_id}");
    let user = app
        .leaf(Method::GET, &format!("{USERS}/{user_id}"), &token, None)
        .await;
    assert_eq!(user.json["name"], "grower-7");
    assert_eq!(user.json["email"], "grower-7");
    assert_eq!(user.json["externalId"], "grower-7");
    let named = create_link(
        &app,
        &token,
        "authentication",
        &json!({"externalId": "grower-9", "name": "Ana", "email": "ana@farm.example",
                "provider": "Stara"}),
    )
    .await;
    let named_id = named.json["leafUserId"].as_str().expect("id");
    let user = app
        .leaf(Method::GET, &format!("{USERS}/{named_id}"), &token, None)
        .await;
    assert_eq!(user.json["name"], "Ana");
    assert_eq!(user.json["email"], "ana@farm.example");
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

#[tokio::test]
async fn create_with_user_requires_an_external_id_and_lists_every_violation() {
    let app = spawn_app().await;
    let token = app.authenticate("required").await;
    let path = format!("{WIDGETS}/magic-link/provider");
    let reply = create_link(
        &app,
        &token,
        "provider",
        &json!({"expiresIn": 5, "name": 1, "settings": {"backgroundColor": "blue"}}),
    )
    .await;
    assert_eq!(
        assert_leaf_violations(&reply, &path),
        [
            "expiresIn",
            "settings.backgroundColor",
            "externalId",
            "name"
        ]
    );
    assert_eq!(
        reply.json["fieldErrors"][0]["objectName"],
        "providerMagicLinkDTO"
    );
    let blank = create_link(&app, &token, "provider", &json!({"externalId": ""})).await;
    assert_eq!(assert_leaf_violations(&blank, &path), ["externalId"]);
}

#[tokio::test]
async fn create_responses_show_nine_fraction_digits_and_reads_show_three() {
    let app = spawn_app().await;
    let token = app.authenticate("digits").await;
    for kind in TYPES {
        let created = created_link(&app, &token, kind, "e").await;
        assert_eq!(fraction_digits(&created["expiresAt"]), 9, "{created}");
        let link = get_link(&app, &token, kind, created["id"].as_str().expect("id")).await;
        assert_eq!(fraction_digits(&link.json["createdAt"]), 3);
        assert_eq!(fraction_digits(&link.json["expiresAt"]), 3);
        let nanos = created["expiresAt"].as_str().expect("t");
        let millis = link.json["expiresAt"].as_str().expect("t");
        assert_eq!(&nanos[..23], &millis[..23], "same instant");
    }
}

#[tokio::test]
async fn links_for_an_existing_user_work_on_the_plural_and_the_legacy_singular_path() {
    let app = spawn_app().await;
    let token = app.authenticate("paths").await;
    let user_id = new_user(&app, &token, "ana", "ana-1").await;
    for segment in ["users", "user"] {
        for kind in TYPES {
            let body = if kind == "authentication" {
                json!({"provider": "Trimble"})
            } else {
                json!({})
            };
            let path = format!("{WIDGETS}/magic-link/{segment}/{user_id}/{kind}");
            let reply = app.leaf(Method::POST, &path, &token, Some(&body)).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            assert_created_shape(&app, &reply.json);
            assert_eq!(reply.json["leafUserId"], user_id.as_str());
        }
    }
    let list = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/authentication"),
            &token,
            None,
        )
        .await;
    assert_eq!(list.json.as_array().expect("array").len(), 2);
}

#[tokio::test]
async fn a_link_for_an_unknown_or_foreign_user_is_leaf_user_not_found() {
    let app = spawn_app().await;
    let token = app.authenticate("mine").await;
    let other = app.authenticate("theirs").await;
    let theirs = new_user(&app, &other, "bo", "bo-1").await;
    for user_id in [
        theirs.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
    ] {
        let path = format!("{WIDGETS}/magic-link/users/{user_id}/provider");
        let reply = app
            .leaf(Method::POST, &path, &token, Some(&json!({})))
            .await;
        assert_leaf_problem(&reply, 404, "Leaf user not found", &path);
    }
}

// ---------------------------------------------------------------- reading and deleting

#[tokio::test]
async fn a_deleted_link_answers_204_and_is_then_not_found() {
    let app = spawn_app().await;
    let token = app.authenticate("delete").await;
    for kind in TYPES {
        let created = created_link(&app, &token, kind, "e").await;
        let path = format!(
            "{WIDGETS}/magic-link/{kind}/{}",
            created["id"].as_str().expect("id")
        );
        let deleted = app.leaf(Method::DELETE, &path, &token, None).await;
        assert_eq!(deleted.status, 204, "{deleted:?}");
        assert_eq!(deleted.text, "");
        let gone = app.leaf(Method::GET, &path, &token, None).await;
        assert_leaf_problem(&gone, 404, "Magic link not found", &path);
        let again = app.leaf(Method::DELETE, &path, &token, None).await;
        assert_leaf_problem(&again, 404, "Magic link not found", &path);
    }
}

#[tokio::test]
async fn a_link_under_another_types_path_is_not_found() {
    let app = spawn_app().await;
    let token = app.authenticate("types").await;
    let upload = created_link(&app, &token, "file-upload", "e").await;
    let id = upload["id"].as_str().expect("id");
    for kind in ["provider", "authentication"] {
        let path = format!("{WIDGETS}/magic-link/{kind}/{id}");
        let reply = app.leaf(Method::GET, &path, &token, None).await;
        assert_leaf_problem(&reply, 404, "Magic link not found", &path);
        let reply = app.leaf(Method::DELETE, &path, &token, None).await;
        assert_leaf_problem(&reply, 404, "Magic link not found", &path);
    }
    assert_eq!(get_link(&app, &token, "file-upload", id).await.status, 200);
}

#[tokio::test]
async fn lists_are_newest_first_and_filter_by_leaf_user() {
    let app = spawn_app().await;
    let token = app.authenticate("order").await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let created = created_link(&app, &token, "provider", &format!("user-{}", n % 2)).await;
        ids.push(created);
        app.advance_clock(1);
    }
    created_link(&app, &token, "file-upload", "user-0").await;
    let list = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider"),
            &token,
            None,
        )
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.header("x-total-count"), None);
    assert_eq!(list.header("link"), None);
    let listed: Vec<&Value> = list
        .json
        .as_array()
        .expect("array")
        .iter()
        .map(|l| &l["id"])
        .collect();
    let expected: Vec<&Value> = ids.iter().rev().map(|c| &c["id"]).collect();
    assert_eq!(listed, expected);
    for link in list.json.as_array().expect("array") {
        assert_link_shape(link, "PROVIDER");
    }
    let user = ids[1]["leafUserId"].as_str().expect("id");
    let filtered = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider?leafUserId={user}"),
            &token,
            None,
        )
        .await;
    let filtered: Vec<&Value> = filtered
        .json
        .as_array()
        .expect("array")
        .iter()
        .map(|l| &l["id"])
        .collect();
    assert_eq!(filtered, [&ids[3]["id"], &ids[1]["id"]]);
}

#[tokio::test]
async fn paging_headers_appear_only_when_page_or_size_is_given() {
    let app = spawn_app().await;
    let token = app.authenticate("paging").await;
    for n in 0..5 {
        created_link(&app, &token, "authentication", &format!("e{n}")).await;
    }
    let path = format!("{WIDGETS}/magic-link/authentication");
    let page = app
        .leaf(Method::GET, &format!("{path}?page=1&size=2"), &token, None)
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.json.as_array().expect("array").len(), 2);
    assert_eq!(page.header("x-total-count"), Some("5"));
    let base = format!("{}{path}", app.base);
    assert_eq!(
        page.header("link"),
        Some(
            format!(
                "<{base}?page=2&size=2>; rel=\"next\",<{base}?page=0&size=2>; rel=\"prev\",\
                 <{base}?page=2&size=2>; rel=\"last\",<{base}?page=0&size=2>; rel=\"first\""
            )
            .as_str()
        )
    );
    let sized = app
        .leaf(Method::GET, &format!("{path}?size=3"), &token, None)
        .await;
    assert_eq!(sized.json.as_array().expect("array").len(), 3);
    assert_eq!(sized.header("x-total-count"), Some("5"));
    let paged = app
        .leaf(Method::GET, &format!("{path}?page=0"), &token, None)
        .await;
    assert_eq!(paged.json.as_array().expect("array").len(), 5);
    assert!(paged.header("link").is_some());
    for bad in ["size=101", "size=0", "page=-1", "page=x"] {
        let reply = app
            .leaf(Method::GET, &format!("{path}?{bad}"), &token, None)
            .await;
        assert_leaf_problem(&reply, 400, "Bad Request", &path);
    }
}

#[tokio::test]
async fn expired_links_stay_listed_and_gettable() {
    let app = spawn_app().await;
    let token = app.authenticate("expired").await;
    let created = created_link(&app, &token, "provider", "e").await;
    app.advance_clock(901);
    let token = app.authenticate("expired").await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(get_link(&app, &token, "provider", id).await.status, 200);
    let list = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider"),
            &token,
            None,
        )
        .await;
    assert_eq!(list.json.as_array().expect("array").len(), 1);
}

#[tokio::test]
async fn page_accesses_count_usage_and_connections_fill_credentials() {
    let app = spawn_app().await;
    let token = app.authenticate("usage").await;
    let created = created_link(&app, &token, "provider", "e").await;
    let id = created["id"].as_str().expect("id");
    let leaf = app.app.store.leaf();
    let now = app.app.clock.now();
    leaf.access_magic_link("usage", id, now)
        .expect("first access");
    let link = get_link(&app, &token, "provider", id).await;
    assert_eq!(link.json["usageCount"], 1);
    assert_eq!(fraction_digits(&link.json["lastAccessedAt"]), 3);
    leaf.access_magic_link("usage", id, now).expect("second");
    leaf.access_magic_link("usage", id, now).expect("third");
    assert!(leaf.access_magic_link("usage", id, now).is_err(), "used up");
    assert!(leaf.access_magic_link("someone-else", id, now).is_err());
    let user_id = created["leafUserId"].as_str().expect("id");
    leaf.connect_provider(
        "usage",
        user_id,
        linkbox_contracts::leaf::Provider::JohnDeere,
        now,
    )
    .expect("connected");
    let user = app
        .leaf(Method::GET, &format!("{USERS}/{user_id}"), &token, None)
        .await;
    assert!(user.json["johnDeereCredentials"].is_object(), "{user:?}");
    assert_eq!(user.json["staraCredentials"], Value::Null);
}

// ---------------------------------------------------------------- tenancy

#[tokio::test]
async fn accounts_never_see_use_or_delete_each_others_links_or_users() {
    let app = spawn_app().await;
    let alice = app.authenticate("alice").await;
    let bob = app.authenticate("bob").await;
    let created = created_link(&app, &alice, "provider", "shared-ext").await;
    let id = created["id"].as_str().expect("id");
    let user_id = created["leafUserId"].as_str().expect("id");
    let path = format!("{WIDGETS}/magic-link/provider/{id}");
    let list = app
        .leaf(
            Method::GET,
            &format!("{WIDGETS}/magic-link/provider"),
            &bob,
            None,
        )
        .await;
    assert_eq!(list.json, json!([]));
    assert_leaf_problem(
        &app.leaf(Method::GET, &path, &bob, None).await,
        404,
        "Magic link not found",
        &path,
    );
    assert_leaf_problem(
        &app.leaf(Method::DELETE, &path, &bob, None).await,
        404,
        "Magic link not found",
        &path,
    );
    let user_path = format!("{USERS}/{user_id}");
    assert_leaf_problem(
        &app.leaf(Method::GET, &user_path, &bob, None).await,
        404,
        "Leaf user not found",
        &user_path,
    );
    let users = app.leaf(Method::GET, USERS, &bob, None).await;
    assert_eq!(users.json, json!([]));
    let bobs = created_link(&app, &bob, "provider", "shared-ext").await;
    assert_ne!(
        bobs["leafUserId"], created["leafUserId"],
        "each account its own user"
    );
    assert_eq!(app.leaf(Method::GET, &path, &alice, None).await.status, 200);
}

// ---------------------------------------------------------------- users

#[tokio::test]
async fn leaf_users_can_be_created_read_replaced_filtered_paged_and_deleted() {
    let app = spawn_app().await;
    let token = app.authenticate("crud").await;
    let created = app
        .leaf(
            Method::POST,
            USERS,
            &token,
            Some(
                &json!({"name": "Ana", "email": "ana@farm.example", "phone": "+1 555",
                         "address": "1 Farm Rd", "externalId": "ana-1"}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["id"].as_str().expect("id").to_owned();
    assert!(uuid_like(&id));
    assert_eq!(
        created.header("location"),
        Some(format!("{USERS}/{id}").as_str())
    );
    for field in PROVIDERS.map(|_| ()).iter().zip([
        "johnDeereCredentials",
        "climateFieldViewCredentials",
        "cnhiCredentials",
        "agLeaderCredentials",
        "trimbleCredentials",
        "ravenSlingshotCredentials",
        "staraCredentials",
    ]) {
        assert_eq!(created.json[field.1], Value::Null, "{}", field.1);
    }
    let path = format!("{USERS}/{id}");
    let got = app.leaf(Method::GET, &path, &token, None).await;
    assert_eq!(got.json, created.json);
    let mut replacement = got.json.clone();
    replacement["name"] = json!("Ana Maria");
    replacement["phone"] = Value::Null;
    let replaced = app
        .leaf(Method::PUT, &path, &token, Some(&replacement))
        .await;
    assert_eq!(replaced.status, 200, "{replaced:?}");
    assert_eq!(replaced.json["name"], "Ana Maria");
    assert_eq!(replaced.json["phone"], Value::Null);
    assert!(
        replaced.header("x-linkbox-warning").is_none(),
        "read-only fields are known"
    );
    let mismatched = app
        .leaf(
            Method::PUT,
            &path,
            &token,
            Some(&json!({"id": "00000000-0000-4000-8000-000000000000", "name": "x", "email": "y"})),
        )
        .await;
    assert_eq!(assert_leaf_violations(&mismatched, &path), ["id"]);
    let by_body = app
        .leaf(
            Method::PUT,
            USERS,
            &token,
            Some(&json!({"id": id, "name": "Ana B", "email": "ana@farm.example"})),
        )
        .await;
    assert_eq!(by_body.json["name"], "Ana B");
    assert_eq!(by_body.json["externalId"], Value::Null, "a full replace");
    new_user(&app, &token, "bo", "bo-1").await;
    new_user(&app, &token, "cy", "cy-1").await;
    let by_email = app
        .leaf(
            Method::GET,
            &format!("{USERS}?email=bo@example.com"),
            &token,
            None,
        )
        .await;
    assert_eq!(by_email.json.as_array().expect("array").len(), 1);
    assert_eq!(by_email.json[0]["name"], "bo");
    let by_name = app
        .leaf(Method::GET, &format!("{USERS}?name=cy"), &token, None)
        .await;
    assert_eq!(by_name.json[0]["externalId"], "cy-1");
    let by_external = app
        .leaf(
            Method::GET,
            &format!("{USERS}?externalId=bo-1"),
            &token,
            None,
        )
        .await;
    assert_eq!(by_external.json[0]["name"], "bo");
    let page = app
        .leaf(Method::GET, &format!("{USERS}?page=1&size=2"), &token, None)
        .await;
    assert_eq!(page.json.as_array().expect("array").len(), 1);
    assert_eq!(page.header("x-total-count"), Some("3"));
    assert!(page.header("link").expect("link").contains("rel=\"prev\""));
    let deleted = app.leaf(Method::DELETE, &path, &token, None).await;
    assert_eq!(deleted.status, 204);
    assert_leaf_problem(
        &app.leaf(Method::GET, &path, &token, None).await,
        404,
        "Leaf user not found",
        &path,
    );
}

#[tokio::test]
async fn a_user_needs_a_name_and_an_email_and_a_unique_external_id() {
    let app = spawn_app().await;
    let token = app.authenticate("rules").await;
    let reply = app
        .leaf(Method::POST, USERS, &token, Some(&json!({"phone": 5})))
        .await;
    assert_eq!(
        assert_leaf_violations(&reply, USERS),
        ["name", "email", "phone"]
    );
    assert_eq!(reply.json["fieldErrors"][0]["objectName"], "leafUserDTO");
    new_user(&app, &token, "ana", "dup").await;
    let dup = app
        .leaf(
            Method::POST,
            USERS,
            &token,
            Some(&json!({"name": "b", "email": "b", "externalId": "dup"})),
        )
        .await;
    assert_eq!(assert_leaf_violations(&dup, USERS), ["externalId"]);
}

// ---------------------------------------------------------------- warnings and errors

#[tokio::test]
async fn the_docs_misspelled_disconnected_enabled_is_named_in_a_warning() {
    let app = spawn_app().await;
    let token = app.authenticate("typo").await;
    let reply = create_link(
        &app,
        &token,
        "provider",
        &json!({"externalId": "e", "colour": "red",
                "settings": {"disconnectedEnabled": true}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header_all("x-linkbox-warning"),
        [
            "ignored unknown field \"colour\"",
            "ignored unknown field \"settings.disconnectedEnabled\""
        ]
    );
    let link = get_link(
        &app,
        &token,
        "provider",
        reply.json["id"].as_str().expect("id"),
    )
    .await;
    assert_eq!(link.json["settings"]["disconnectEnabled"], false);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_problems() {
    let app = spawn_app().await;
    let token = app.authenticate("routes").await;
    for path in [
        "/api/nothing",
        "/api",
        "/services/widgets/api/magic-link/widgets",
        "/services/widgets/api/magic-link/unknown/abc",
        "/services/widgets/api/magic-link/people/u/provider",
        "/services/widgets/api/magic-link/users/u/unknown",
        "/services/usermanagement/api/users/a/b",
        "/services/other",
    ] {
        let reply = app.leaf(Method::GET, path, &token, None).await;
        assert_leaf_problem(&reply, 404, "Not Found", path);
    }
    let link = format!("{WIDGETS}/magic-link/provider/abc");
    for (method, path, allow) in [
        (Method::GET, "/api/authenticate".to_owned(), "POST"),
        (
            Method::PUT,
            format!("{WIDGETS}/magic-link/provider"),
            "GET, HEAD, POST",
        ),
        (Method::POST, link.clone(), "GET, HEAD, DELETE"),
        (Method::PATCH, link, "GET, HEAD, DELETE"),
        (
            Method::GET,
            format!("{WIDGETS}/magic-link/users/u/provider"),
            "POST",
        ),
        (Method::DELETE, USERS.to_owned(), "GET, HEAD, POST, PUT"),
        (Method::POST, format!("{USERS}/u"), "GET, HEAD, PUT, DELETE"),
    ] {
        let reply = app.leaf(method.clone(), &path, &token, None).await;
        assert_leaf_problem(&reply, 405, "Method Not Allowed", &path);
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
    }
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

// ---------------------------------------------------------------- the vendor's examples

/// The docs' example `settings`, with real values in place of the placeholders.
fn doc_settings() -> Value {
    json!({
        "backgroundColor": "#27ae60",
        "headerImage": "https://example.com/header.png",
        "companyLogo": "https://example.com/logo.png",
        "companyName": "Example Farms",
        "showLeafUserName": true,
        "disconnectEnabled": true
    })
}

/// Sends a body the way the docs' curl examples do: `-d` with no content type of its own,
/// so curl says `application/x-www-form-urlencoded`.
async fn curl_post(app: &TestApp, token: &str, path: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {token}");
    app.send(
        Method::POST,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(serde_json::to_vec(body).expect("json")),
    )
    .await
}

#[tokio::test]
async fn the_docs_create_with_user_examples_get_the_documented_responses() {
    let app = spawn_app().await;
    let token = app.authenticate("docs").await;
    let examples = [
        (
            "provider",
            "PROVIDER",
            json!({"name": "user_name", "email": "user_email", "externalId": "external_id",
                   "expiresIn": 900, "allowedProviders": ["JohnDeere"], "settings": doc_settings()}),
        ),
        (
            "authentication",
            "AUTHENTICATION",
            json!({"name": "user_name", "email": "user_email", "externalId": "external_id",
                   "expiresIn": 900, "provider": "ClimateFieldView", "settings": doc_settings()}),
        ),
        (
            "file-upload",
            "FILEUPLOAD",
            json!({"name": "user_name", "email": "user_email", "externalId": "external_id",
                   "expiresIn": 900, "settings": doc_settings()}),
        ),
    ];
    for (kind, widget, body) in examples {
        let path = format!("{WIDGETS}/magic-link/{kind}");
        let reply = curl_post(&app, &token, &path, &body).await;
        assert_eq!(reply.status, 200, "{kind}: {reply:?}");
        assert!(reply.header("x-linkbox-warning").is_none(), "{reply:?}");
        assert_created_shape(&app, &reply.json);
        let id = reply.json["id"].as_str().expect("id");
        let one = get_link(&app, &token, kind, id).await;
        assert_link_shape(&one.json, widget);
        let all = app.leaf(Method::GET, &path, &token, None).await;
        assert_link_shape(&all.json[0], widget);
        let deleted = app
            .leaf(Method::DELETE, &format!("{path}/{id}"), &token, None)
            .await;
        assert_eq!(deleted.status, 204);
    }
}

#[tokio::test]
async fn the_docs_create_for_user_examples_work_on_the_documented_singular_paths() {
    let app = spawn_app().await;
    let token = app.authenticate("docs-user").await;
    let user_id = new_user(&app, &token, "docs", "docs-1").await;
    for (kind, body) in [
        (
            "provider",
            json!({"expiresIn": 3600, "allowedProviders": ["AgLeader", "Trimble"],
                   "settings": doc_settings()}),
        ),
        (
            "authentication",
            json!({"expiresIn": 3600, "provider": "CNHI", "settings": doc_settings()}),
        ),
        (
            "file-upload",
            json!({"expiresIn": 3600, "settings": doc_settings()}),
        ),
    ] {
        let path = format!("{WIDGETS}/magic-link/user/{user_id}/{kind}");
        let reply = curl_post(&app, &token, &path, &body).await;
        assert_eq!(reply.status, 200, "{kind}: {reply:?}");
        assert_created_shape(&app, &reply.json);
        assert_eq!(reply.json["leafUserId"], user_id.as_str());
        let link = get_link(&app, &token, kind, reply.json["id"].as_str().expect("id")).await;
        assert_eq!(link.json["settings"]["companyName"], "Example Farms");
    }
}
