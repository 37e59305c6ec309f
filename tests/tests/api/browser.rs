//! The hosted pages in a real headless Chromium: an end user clicks through the widget and
//! the Leaf page, and the partner sees the result through webhooks and the API. The
//! `#[ignore]`d test at the end rewrites the screenshots in `docs/pages.md`:
//! `cargo test -p linkbox-tests --test api browser::screenshots -- --ignored`.
//! Set `LINKBOX_BROWSER_TESTS=0` to skip them all on a machine without Chromium.

use std::path::PathBuf;

use linkbox_tests::browser::{Browser, launch};
use linkbox_tests::receiver::{Receiver, verify};
use linkbox_tests::{TestApp, spawn_app, test_key};
use reqwest::Method;
use serde_json::{Value, json};

/// The window of the functional tests.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 900;

async fn leaf_link(app: &TestApp, token: &str, widget: &str, body: Value) -> Value {
    let reply = app
        .leaf(
            Method::POST,
            &format!("/services/widgets/api/magic-link/{widget}"),
            token,
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json.clone()
}

/// `url` of `value`, checked to point at the sandbox itself.
fn loopback_url(app: &TestApp, value: &Value) -> String {
    let url = value.as_str().expect("a URL").to_owned();
    assert!(url.starts_with(&app.base), "{url} is not on {}", app.base);
    url
}

#[tokio::test]
async fn completing_a_transfer_in_the_browser_sends_a_signed_operation_created() {
    let Some(browser) = launch("browser::completing_a_transfer", WIDTH, HEIGHT).await else {
        return;
    };
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let key = test_key(61);
    let secret = app.regenerate_secret(&key).await;
    let created = app
        .create_link(
            &key,
            &json!({"referenceId": "browser-1", "callbackUrl": receiver.url}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let link = created.data();
    let link_id = link["linkId"].as_str().expect("linkId");

    browser.goto(&loopback_url(&app, &link["url"])).await;
    assert_eq!(browser.text("#status").await, "opened");
    receiver.wait_for_event("link.opened").await;
    browser.fill("input[name=amount]", "42.50").await;
    browser.click_and_wait("#complete").await;

    assert_eq!(browser.text("p.flash").await, "Transfer completed.");
    assert!(browser.current_url().await.contains("done=completed"));
    let operation = receiver.wait_for_event("operation.created").await;
    assert!(
        operation.header("x-m2m-signature").starts_with("sha256="),
        "{operation:?}"
    );
    assert!(verify(&operation, &secret), "signature of {operation:?}");
    assert_eq!(operation.json["data"]["linkId"], link_id);
    assert_eq!(operation.json["data"]["amount"]["send"], 42.5);
    browser.close().await;
}

#[tokio::test]
async fn connecting_a_provider_in_the_browser_fills_the_users_credentials() {
    let Some(browser) = launch("browser::connecting_a_provider", WIDTH, HEIGHT).await else {
        return;
    };
    let app = spawn_app().await;
    let token = app.authenticate("browserfarm").await;
    let link = leaf_link(
        &app,
        &token,
        "provider",
        json!({"externalId": "browser-farm", "name": "Ann Farmer",
            "allowedProviders": ["JohnDeere", "Trimble"],
            "settings": {"showLeafUserName": true}}),
    )
    .await;
    let user_id = link["leafUserId"].as_str().expect("leafUserId");

    browser.goto(&loopback_url(&app, &link["link"])).await;
    assert_eq!(browser.text("#leaf-user-name").await, "Hello, Ann Farmer");
    browser
        .click_and_wait("button[data-provider=\"JohnDeere\"]")
        .await;

    assert_eq!(browser.text("p.flash").await, "Connected to JohnDeere.");
    assert_eq!(
        browser.text("button[data-provider=\"JohnDeere\"]").await,
        "Connected: JohnDeere"
    );
    let user = app
        .leaf(
            Method::GET,
            &format!("/services/usermanagement/api/users/{user_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(user.status, 200, "{user:?}");
    let credentials = &user.json["johnDeereCredentials"];
    assert!(
        credentials
            .as_object()
            .is_some_and(|object| !object.is_empty()),
        "johnDeereCredentials of {user:?}"
    );
    assert!(user.json["trimbleCredentials"].is_null(), "{user:?}");
    browser.close().await;
}

/// Writes `docs/screenshots/{name}` from the browser's viewport.
async fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("create docs/screenshots");
    std::fs::write(dir.join(name), &png).expect("write the screenshot");
    eprintln!("wrote docs/screenshots/{name}, {} bytes", png.len());
}

#[tokio::test]
#[ignore = "rewrites the committed docs/screenshots; run with --ignored"]
async fn screenshots_of_the_three_pages() {
    let Some(browser) = launch("browser::screenshots", 900, 760).await else {
        return;
    };
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let key = test_key(62);

    let mut links = Vec::new();
    for reference in ["order-1001", "order-1002", "order-1003"] {
        let created = app
            .create_link(
                &key,
                &json!({"referenceId": reference, "callbackUrl": receiver.url}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        links.push(created.data().clone());
    }
    // The widget of a link whose user still owes CIP data.
    browser.goto(&loopback_url(&app, &links[0]["url"])).await;
    browser.find("#data-request").await;
    save_screenshot(&browser, "widget.png").await;

    // A second link completed and a third revoked: the dashboard shows every state. Its
    // first webhook is refused, so there is a failed attempt and a retry to show too.
    receiver.answer_with(&[500]);
    browser.goto(&loopback_url(&app, &links[1]["url"])).await;
    browser.click_and_wait("#complete").await;
    receiver.wait_for_event("operation.created").await;
    let revoked = app
        .revoke_link(&key, links[2]["linkId"].as_str().expect("id"), None)
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");

    let token = app.authenticate("greenacres").await;
    let leaf = leaf_link(
        &app,
        &token,
        "provider",
        json!({"externalId": "farm-7", "name": "Ann Farmer",
            "allowedProviders": ["JohnDeere", "ClimateFieldView", "Trimble"],
            "settings": {"backgroundColor": "#e8f3e1", "companyName": "Green Acres Co-op",
                "showLeafUserName": true}}),
    )
    .await;
    browser.goto(&loopback_url(&app, &leaf["link"])).await;
    browser.find("#usage").await;
    save_screenshot(&browser, "leaf-magic-link.png").await;

    // The dashboard's tables want a wider window.
    browser.resize(1280, 1000).await;
    browser.goto(&app.url("/_sandbox/ui")).await;
    browser.fill("input[name=key]", &key).await;
    browser.click_and_wait("#sign-in").await;
    browser.find("#m2m-links").await;
    save_screenshot(&browser, "dashboard.png").await;
    browser.close().await;
}
