//! The hosted pages, the dashboard, the Leaf control endpoints and seeding, over real
//! sockets: every page state, the forms, and the webhooks they send.

use linkbox_tests::receiver::Receiver;
use linkbox_tests::{Reply, TestApp, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn link_with_receiver(app: &TestApp, key: &str, receiver: &Receiver, body: Value) -> Value {
    let mut body = body;
    body["callbackUrl"] = json!(receiver.url);
    let reply = app.create_link(key, &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json["data"].clone()
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest[rest.find('/').unwrap_or(rest.len())..].to_owned()
}

async fn get(app: &TestApp, path: &str) -> Reply {
    app.send(Method::GET, path, &[], None).await
}

/// `GET` of a Leaf provider link through the API.
async fn provider_link(app: &TestApp, token: &str, id: &str) -> Reply {
    app.leaf(
        Method::GET,
        &format!("/services/widgets/api/magic-link/provider/{id}"),
        token,
        None,
    )
    .await
}

async fn post_form(app: &TestApp, path: &str, form: &str) -> Reply {
    app.send(Method::POST, path, &[FORM], Some(form.as_bytes().to_vec()))
        .await
}

fn complete_user() -> Value {
    json!({"name": {"firstName": "Ana", "secondName": "María", "lastName": "Ruiz",
        "secondLastName": "Soto"}, "idNumber": "RUSA900101MDFZTN09", "idType": "CURP",
        "dob": "1990-01-01", "paymentMethod": {"type": "bank_account",
        "bankAccount": {"country": "MX", "accountNumber": "012345678901234567"}}})
}

#[tokio::test]
async fn opening_the_widget_opens_the_link_and_sends_its_webhooks() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let key = test_key(1);
    let link = link_with_receiver(&app, &key, &receiver, json!({"referenceId": "u1"})).await;
    let page = get(&app, &path_of(link["url"].as_str().expect("url"))).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.text.contains("id=\"status\">opened<"), "{}", page.text);
    assert!(page.text.contains("id=\"data-request-status\">pending<"));
    let detail = app
        .get_link(&key, link["linkId"].as_str().expect("id"))
        .await;
    assert_eq!(detail.data()["status"], "opened");
    assert!(detail.data()["openedAt"].is_string());
    receiver.wait_for_event("link.opened").await;
    receiver.wait_for_event("user.data_request").await;
    // A second visit opens nothing new.
    get(&app, &path_of(link["url"].as_str().expect("url"))).await;
    let events: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.event().to_owned())
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "link.opened").count(),
        1,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_complete_user_sees_no_data_request_and_spanish_links_speak_spanish() {
    let app = spawn_app().await;
    let key = test_key(2);
    let created = app
        .create_link(
            &key,
            &json!({"referenceId": "u2", "language": "es", "userData": complete_user()}),
        )
        .await;
    let url = path_of(created.data()["url"].as_str().expect("url"));
    let page = get(&app, &url).await;
    assert!(page.text.contains("<html lang=\"es\">"));
    assert!(page.text.contains("Completar envío"));
    assert!(!page.text.contains("data-request"));
    let english = get(&app, &format!("{url}?lang=en")).await;
    assert!(english.text.contains("Complete transfer"));
    assert!(english.text.contains("<html lang=\"en\">"));
}

/// A HEAD of the widget answers as its GET would, and opens nothing: no `openedAt`, no
/// `link.opened`; a revoked or expired link's HEAD is its 410.
#[tokio::test]
async fn a_head_of_the_widget_opens_nothing() {
    let app = spawn_app().await;
    let key = test_key(4);
    let link = app.create_link_for(&key, "h1").await;
    let path = path_of(link["url"].as_str().expect("url"));
    let id = link["linkId"].as_str().expect("id");
    let head = app.send(Method::HEAD, &path, &[], None).await;
    assert_eq!(head.status, 200, "{head:?}");
    assert!(
        head.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(head.text.is_empty());
    let detail = app.get_link(&key, id).await;
    assert_eq!(detail.data()["status"], "created");
    assert_eq!(detail.data()["openedAt"], Value::Null);
    let opened: Vec<Value> = app
        .deliveries(&key)
        .await
        .into_iter()
        .filter(|delivery| delivery["event"] == "link.opened")
        .collect();
    assert!(opened.is_empty(), "{opened:?}");
    assert_eq!(get(&app, &path).await.status, 200);
    assert_eq!(app.get_link(&key, id).await.data()["status"], "opened");

    app.revoke_link(&key, id, None).await;
    assert_eq!(app.send(Method::HEAD, &path, &[], None).await.status, 410);
    let expiring = app.create_link_for(&key, "h2").await;
    app.move_clock(&key, 3601).await;
    let expired = path_of(expiring["url"].as_str().expect("url"));
    assert_eq!(
        app.send(Method::HEAD, &expired, &[], None).await.status,
        410
    );
}

#[tokio::test]
async fn revoked_expired_and_unknown_widgets_say_why() {
    let app = spawn_app().await;
    let key = test_key(3);
    let revoked = app.create_link_for(&key, "r1").await;
    let id = revoked["linkId"].as_str().expect("id");
    app.revoke_link(&key, id, None).await;
    let page = get(&app, &path_of(revoked["url"].as_str().expect("url"))).await;
    assert_eq!(page.status, 410);
    assert!(page.text.contains("revoked"), "{}", page.text);
    let expiring = app.create_link_for(&key, "e1").await;
    app.move_clock(&key, 3601).await;
    let page = get(&app, &path_of(expiring["url"].as_str().expect("url"))).await;
    assert_eq!(page.status, 410);
    assert!(page.text.contains("expired"));
    let slug_link = id.rsplit_once('_').expect("id").0;
    let unknown = get(&app, &format!("/widget/{slug_link}_000000000000/m2m-basic")).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text.contains("Link not found"));
    assert_eq!(
        get(&app, "/widget/link_nobody_000000000000/m2m-basic")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_widget_forms_complete_and_cancel_a_transfer_with_webhooks() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let key = test_key(4);
    let body = json!({"referenceId": "u4", "userData": complete_user()});
    let link = link_with_receiver(&app, &key, &receiver, body).await;
    let url = path_of(link["url"].as_str().expect("url"));
    get(&app, &url).await;
    let done = post_form(&app, &format!("{url}/operation"), "amount=250.50").await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.text.contains("Transfer completed."));
    let created = receiver.wait_for_event("operation.created").await;
    assert_eq!(created.json["data"]["amount"]["send"], 250.5);
    let twice = post_form(&app, &format!("{url}/operation"), "amount=1").await;
    assert_eq!(twice.status, 409);
    let cancelled = post_form(&app, &format!("{url}/cancel"), "").await;
    assert!(cancelled.text.contains("Transfer cancelled."));
    receiver.wait_for_event("operation.cancelled").await;
    let bad = post_form(&app, &format!("{url}/operation"), "amount=-3").await;
    assert_eq!(bad.status, 400);
}

/// The `action`s of a page's forms, as written.
fn form_actions(page: &str) -> Vec<String> {
    page.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|action| action.replace("&amp;", "&"))
        .collect()
}

/// Behind a proxy that serves linkbox under a path (`--public-url https://host/base/`), a
/// page reached at its public address posts its forms, and is sent back after one, under
/// that path: forms and redirects are relative to the page, as a browser resolves them.
#[tokio::test]
async fn the_pages_forms_and_redirects_stay_under_a_public_path_prefix() {
    let app = spawn_app().await;
    let public = reqwest::Url::parse("https://sandbox.example.test/base/").expect("url");
    let under = |path: &str| public.join(path.trim_start_matches('/')).expect("joined");
    let key = test_key(41);
    let body = json!({"referenceId": "u41", "userData": complete_user()});
    let reply = app.create_link(&key, &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let path = path_of(reply.json["data"]["url"].as_str().expect("url"));
    let page = get(&app, &path).await;
    assert_eq!(page.status, 200, "{page:?}");
    let page_url = under(&path);
    let actions: Vec<String> = form_actions(&page.text)
        .iter()
        .map(|action| page_url.join(action).expect("resolves").to_string())
        .collect();
    assert_eq!(
        actions,
        [format!("{page_url}/operation?lang=en")],
        "{}",
        page.text
    );
    let posted = app
        .client
        .post(app.url(&format!("{path}/operation")))
        .header(FORM.0, FORM.1)
        .body("amount=5")
        .build()
        .expect("request");
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .execute(posted)
        .await
        .expect("answered");
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().expect("text");
    let form_url = under(&format!("{path}/operation"));
    assert_eq!(
        form_url.join(location).expect("resolves").to_string(),
        format!("{page_url}?lang=en&done=completed")
    );

    let token = app.authenticate("farmco").await;
    let link = leaf_link(
        &app,
        &token,
        "authentication",
        json!({"externalId": "f41", "provider": "CNHI"}),
    )
    .await;
    let path = path_of(link["link"].as_str().expect("link"));
    let page = get(&app, &path).await;
    assert_eq!(page.status, 200, "{page:?}");
    let connect = under(&format!("{path}/connect"));
    let resolved: Vec<String> = form_actions(&page.text)
        .iter()
        .map(|action| under(&path).join(action).expect("resolves").to_string())
        .collect();
    assert!(resolved.contains(&connect.to_string()), "{resolved:?}");
    // The answer to a form is served at the form's address, and its forms resolve from there.
    let connected = post_form(&app, &format!("{path}/connect"), "provider=CNHI").await;
    assert_eq!(connected.status, 200, "{connected:?}");
    let again: Vec<String> = form_actions(&connected.text)
        .iter()
        .map(|action| connect.join(action).expect("resolves").to_string())
        .collect();
    assert!(!again.is_empty(), "{}", connected.text);
    for action in &again {
        assert!(
            action.starts_with(&format!("{}/", under(&path))),
            "{action} is not under the page's address"
        );
    }

    // The operator's pages read their links and forms from a `<base>` of linkbox's root.
    let base_of = |page: &str| {
        page.split("<base href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
            .expect("a base")
    };
    let landing = get(&app, "/").await;
    let root = under("/").join(&base_of(&landing.text)).expect("resolves");
    assert_eq!(root, public);
    assert!(
        landing.text.contains(r#"href="_sandbox/ui""#),
        "{}",
        landing.text
    );
    let board = post_form(&app, "/_sandbox/ui/links", &format!("key={key}")).await;
    assert_eq!(board.status, 200, "{board:?}");
    let root = under("/_sandbox/ui/links")
        .join(&base_of(&board.text))
        .expect("resolves");
    assert_eq!(root, public);
    for action in form_actions(&board.text) {
        let resolved = root.join(&action).expect("resolves").to_string();
        assert!(
            resolved.starts_with("https://sandbox.example.test/base/_sandbox/ui"),
            "{resolved}"
        );
    }
}

/// A refused button speaks the page's language and keeps its theme, as the page did.
#[tokio::test]
async fn the_widgets_refusals_speak_spanish_in_the_links_theme() {
    let app = spawn_app().await;
    let key = test_key(42);
    let body = json!({"referenceId": "u42", "language": "es", "theme": "dark",
        "userData": complete_user()});
    let reply = app.create_link(&key, &body).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let url = path_of(reply.json["data"]["url"].as_str().expect("url"));
    let page = get(&app, &url).await;
    assert!(
        page.text.contains(r#"<main class="theme-dark">"#),
        "{}",
        page.text
    );
    let refusals = [
        (
            "operation",
            "amount=0",
            400,
            "El monto debe ser un número de 0.01 a 1000000000.",
        ),
        ("operation", "", 400, "Falta el monto."),
        (
            "cancel",
            "",
            409,
            "El enlace no tiene un envío que cancelar.",
        ),
    ];
    for (action, form, status, reason) in refusals {
        let refused = post_form(&app, &format!("{url}/{action}"), form).await;
        assert_eq!(refused.status, status, "{action} {form}: {refused:?}");
        assert!(
            refused.text.contains(reason),
            "{action} {form}: {}",
            refused.text
        );
        assert!(
            refused.text.contains(r#"<main class="theme-dark">"#),
            "{}",
            refused.text
        );
        assert!(
            refused.text.contains(r#"<html lang="es">"#),
            "{}",
            refused.text
        );
    }
    let done = post_form(&app, &format!("{url}/operation"), "amount=5").await;
    assert_eq!(done.status, 200, "{done:?}");
    let twice = post_form(&app, &format!("{url}/operation"), "amount=5").await;
    assert_eq!(twice.status, 409, "{twice:?}");
    assert!(
        twice
            .text
            .contains("El enlace ya tiene un envío; cancélalo primero."),
        "{}",
        twice.text
    );
}

/// A form past a page's limit is refused for its size, saying the limit, not read as a
/// form without its fields: on the widget (in the page's language), the Leaf page and the
/// dashboard.
#[tokio::test]
async fn a_form_past_the_pages_limit_is_a_413_saying_so() {
    let app = spawn_app().await;
    let key = test_key(43);
    let body = json!({"referenceId": "u43", "language": "es", "userData": complete_user()});
    let reply = app.create_link(&key, &body).await;
    let url = path_of(reply.json["data"]["url"].as_str().expect("url"));
    get(&app, &url).await;
    let padded = |form: &str| format!("{form}&x={}", "a".repeat(8 * 1024));
    let refused = post_form(&app, &format!("{url}/operation"), &padded("amount=1")).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(
        refused.text.contains("El formulario pasa de 4 KiB."),
        "{}",
        refused.text
    );
    let kept = app
        .get_link(&key, reply.json["data"]["linkId"].as_str().expect("id"))
        .await;
    assert!(kept.json["data"]["operationId"].is_null(), "{kept:?}");

    let token = app.authenticate("farmco").await;
    let link = leaf_link(
        &app,
        &token,
        "authentication",
        json!({"externalId": "f43", "provider": "CNHI"}),
    )
    .await;
    let path = path_of(link["link"].as_str().expect("link"));
    get(&app, &path).await;
    let refused = post_form(&app, &format!("{path}/connect"), &padded("provider=CNHI")).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(
        refused.text.contains("The form is larger than 4 KiB"),
        "{}",
        refused.text
    );

    let refused = post_form(&app, "/_sandbox/ui/links", &padded(&format!("key={key}"))).await;
    assert_eq!(
        refused.status, 200,
        "16 KiB is the dashboard's: {refused:?}"
    );
    let large = format!("key={key}&x={}", "a".repeat(20 * 1024));
    let refused = post_form(&app, "/_sandbox/ui/links", &large).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(
        refused.text.contains("The form is larger than 16 KiB"),
        "{}",
        refused.text
    );
}

/// `method path` answered as sent, without following a redirect.
async fn unfollowed(app: &TestApp, method: Method, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .request(method, app.url(path))
        .send()
        .await
        .expect("answered")
}

/// An end user's address opened as a page — a form's address reloaded, a trailing slash,
/// another method — gets a page or is sent to one, never an API's JSON.
#[tokio::test]
async fn a_pages_other_addresses_answer_as_pages() {
    let app = spawn_app().await;
    let key = test_key(44);
    let reply = app.create_link(&key, &json!({"referenceId": "u44"})).await;
    let url = path_of(reply.json["data"]["url"].as_str().expect("url"));
    let token = app.authenticate("farmco").await;
    let link = leaf_link(
        &app,
        &token,
        "authentication",
        json!({"externalId": "f44", "provider": "CNHI"}),
    )
    .await;
    let leaf = path_of(link["link"].as_str().expect("link"));
    let base = reqwest::Url::parse(&app.url("/")).expect("url");
    for (form, page) in [
        (format!("{url}/operation?lang=es"), format!("{url}?lang=es")),
        (format!("{url}/cancel"), url.clone()),
        (format!("{leaf}/connect"), leaf.clone()),
        (format!("{leaf}/upload"), leaf.clone()),
        ("/_sandbox/ui/clock".to_owned(), "/_sandbox/ui".to_owned()),
        ("/_sandbox/ui/links".to_owned(), "/_sandbox/ui".to_owned()),
    ] {
        let answer = unfollowed(&app, Method::GET, &form).await;
        assert_eq!(answer.status(), 303, "{form}");
        let location = answer.headers()["location"].to_str().expect("text");
        let resolved = base.join(&form).and_then(|at| at.join(location));
        assert_eq!(
            resolved.expect("resolves").as_str(),
            base.join(&page).expect("url").as_str(),
            "{form}"
        );
    }
    for (method, path, status) in [
        (Method::GET, format!("{url}/"), 404),
        (Method::GET, format!("{leaf}/"), 404),
        (Method::GET, "/widget".to_owned(), 404),
        (Method::GET, format!("{url}/nothing"), 404),
        (Method::POST, format!("{url}/nothing"), 404),
        (Method::PUT, url.clone(), 405),
        (Method::DELETE, format!("{leaf}/connect"), 405),
    ] {
        let answer = unfollowed(&app, method.clone(), &path).await;
        assert_eq!(answer.status(), status, "{method} {path}");
        let kind = answer.headers()["content-type"]
            .to_str()
            .expect("text")
            .to_owned();
        assert!(kind.starts_with("text/html"), "{method} {path}: {kind}");
        if status == 405 {
            assert!(answer.headers().contains_key("allow"), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn the_widget_refuses_amounts_too_large_to_keep() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let body = json!({"referenceId": "u19", "userData": complete_user()});
    let link = link_with_receiver(&app, &test_key(19), &receiver, body).await;
    let url = path_of(link["url"].as_str().expect("url"));
    get(&app, &url).await;
    for amount in ["1e307", "inf", "NaN", "1000000000.01", "0.001"] {
        let refused = post_form(
            &app,
            &format!("{url}/operation"),
            &format!("amount={amount}"),
        )
        .await;
        assert_eq!(refused.status, 400, "{amount}: {refused:?}");
        assert!(
            refused.text.contains("amount"),
            "{amount}: {}",
            refused.text
        );
    }
    let largest = post_form(&app, &format!("{url}/operation"), "amount=1000000000").await;
    assert_eq!(largest.status, 200, "{largest:?}");
    let created = receiver.wait_for_event("operation.created").await;
    assert_eq!(created.json["data"]["amount"]["receive"], 1e9);
}

#[tokio::test]
async fn the_widget_refuses_a_missing_or_empty_amount_instead_of_suggesting_one() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let body = json!({"referenceId": "u20", "userData": complete_user()});
    let link = link_with_receiver(&app, &test_key(20), &receiver, body).await;
    let url = path_of(link["url"].as_str().expect("url"));
    let page = get(&app, &url).await;
    for form in ["amount=", "amount=+++", "fee=1", ""] {
        let refused = post_form(&app, &format!("{url}/operation"), form).await;
        assert_eq!(refused.status, 400, "{form:?}: {refused:?}");
        assert!(
            refused.text.contains("The amount field is required"),
            "{form:?}: {}",
            refused.text
        );
    }
    // The browser asks for one too, within the range the server checks.
    assert!(
        page.text.contains(
            r#"name="amount" type="number" min="0.01" step="0.01" max="1000000000" required"#
        ),
        "{}",
        page.text
    );
    // Nothing was completed: the first real amount is the link's one transfer.
    let done = post_form(&app, &format!("{url}/operation"), "amount=7").await;
    assert_eq!(done.status, 200, "{done:?}");
    let created = receiver.wait_for_event("operation.created").await;
    assert_eq!(created.json["data"]["amount"]["send"], 7.0);
}

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

#[tokio::test]
async fn the_leaf_page_counts_accesses_until_used_up_and_is_styled_by_its_settings() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(&app, &token, "provider", json!({"externalId": "f1", "name": "Ann Farmer",
        "allowedProviders": ["JohnDeere", "Stara"],
        "settings": {"backgroundColor": "#123456", "companyName": "Ann's <Acres>", "showLeafUserName": true}})).await;
    let path = path_of(link["link"].as_str().expect("link"));
    for visit in 1..=3 {
        let page = get(&app, &path).await;
        assert_eq!(page.status, 200);
        assert!(
            page.text.contains(&format!("Visit {visit} of 3")),
            "{}",
            page.text
        );
        assert!(page.text.contains("background:#123456"));
        assert!(page.text.contains("Hello, Ann Farmer"));
        assert!(
            page.text.contains("Ann&#39;s &lt;Acres&gt;")
                || page.text.contains("Ann's &lt;Acres&gt;")
        );
        assert_eq!(page.text.matches("data-provider=").count(), 2);
    }
    let id = link["id"].as_str().expect("id");
    let view = provider_link(&app, &token, id).await;
    assert_eq!(view.json["usageCount"], 3);
    assert!(view.json["lastAccessedAt"].is_string());
    let used_up = get(&app, &path).await;
    assert_eq!(used_up.status, 410);
    assert!(used_up.text.contains("used up"));
    let other = leaf_link(&app, &token, "provider", json!({"externalId": "f2"})).await;
    let page = get(&app, &path_of(other["link"].as_str().expect("link"))).await;
    assert_eq!(
        page.text.matches("data-provider=").count(),
        7,
        "All: seven buttons"
    );
    assert!(!page.text.contains("Hello,"), "showLeafUserName is off");
    app.advance_clock(901);
    let expired = get(&app, &path_of(other["link"].as_str().expect("link"))).await;
    assert_eq!(expired.status, 410);
    assert!(expired.text.contains("expired"));
    assert_eq!(get(&app, "/magic-link/nothing-here").await.status, 404);
}

#[tokio::test]
async fn a_head_of_the_leaf_page_answers_as_its_get_without_counting_a_visit() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(&app, &token, "provider", json!({"externalId": "f1"})).await;
    let path = path_of(link["link"].as_str().expect("link"));
    for _ in 0..3 {
        let head = app.send(Method::HEAD, &path, &[], None).await;
        assert_eq!(head.status, 200, "{head:?}");
    }
    let head = app.send(Method::HEAD, &path, &[], None).await;
    let page = get(&app, &path).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.text.contains("Visit 1 of 3"), "{}", page.text);
    assert_eq!(head.header("content-type"), page.header("content-type"));
    assert_eq!(head.header("content-length"), page.header("content-length"));
    for _ in 0..2 {
        get(&app, &path).await;
    }
    let head = app.send(Method::HEAD, &path, &[], None).await;
    assert_eq!(head.status, 410, "{head:?}");
    let id = link["id"].as_str().expect("id");
    let view = provider_link(&app, &token, id).await;
    assert_eq!(view.json["usageCount"], 3);
    assert_eq!(
        app.send(Method::HEAD, "/magic-link/nothing-here", &[], None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn connecting_on_the_page_fills_the_users_credentials() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(
        &app,
        &token,
        "authentication",
        json!({"externalId": "f1", "provider": "CNHI"}),
    )
    .await;
    let path = path_of(link["link"].as_str().expect("link"));
    let page = get(&app, &path).await;
    assert_eq!(page.text.matches("data-provider=").count(), 1);
    let refused = post_form(&app, &format!("{path}/connect"), "provider=Stara").await;
    assert_eq!(refused.status, 400);
    let connected = post_form(&app, &format!("{path}/connect"), "provider=CNHI").await;
    assert_eq!(connected.status, 200, "{connected:?}");
    assert!(connected.text.contains("Connected: CNHI"));
    let user = app
        .leaf(
            Method::GET,
            &format!(
                "/services/usermanagement/api/users/{}",
                link["leafUserId"].as_str().expect("user")
            ),
            &token,
            None,
        )
        .await;
    assert!(user.json["cnhiCredentials"].is_object(), "{user:?}");
    assert!(user.json["staraCredentials"].is_null());
}

#[tokio::test]
async fn a_link_with_disconnect_enabled_offers_disconnect_which_clears_the_credentials() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(
        &app,
        &token,
        "provider",
        json!({"externalId": "f1", "allowedProviders": ["CNHI", "Stara"],
            "settings": {"disconnectEnabled": true}}),
    )
    .await;
    let path = path_of(link["link"].as_str().expect("link"));
    let user_path = format!(
        "/services/usermanagement/api/users/{}",
        link["leafUserId"].as_str().expect("user")
    );
    let page = get(&app, &path).await;
    assert!(
        !page.text.contains("data-disconnect="),
        "nothing connected yet"
    );
    let connected = post_form(&app, &format!("{path}/connect"), "provider=CNHI").await;
    assert_eq!(connected.status, 200, "{connected:?}");
    assert!(
        connected.text.contains("data-disconnect=\"CNHI\""),
        "{}",
        connected.text
    );
    assert!(!connected.text.contains("data-disconnect=\"Stara\""));
    let refused = post_form(&app, &format!("{path}/disconnect"), "provider=JohnDeere").await;
    assert_eq!(refused.status, 400);
    let user = app.leaf(Method::GET, &user_path, &token, None).await;
    assert!(user.json["cnhiCredentials"].is_object(), "{user:?}");
    let done = post_form(&app, &format!("{path}/disconnect"), "provider=CNHI").await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.text.contains("Connect CNHI"), "{}", done.text);
    assert!(!done.text.contains("data-disconnect="));
    let user = app.leaf(Method::GET, &user_path, &token, None).await;
    assert!(user.json["cnhiCredentials"].is_null(), "{user:?}");

    let plain = leaf_link(
        &app,
        &token,
        "authentication",
        json!({"externalId": "f2", "provider": "CNHI"}),
    )
    .await;
    let plain_path = path_of(plain["link"].as_str().expect("link"));
    let connected = post_form(&app, &format!("{plain_path}/connect"), "provider=CNHI").await;
    assert!(
        !connected.text.contains("data-disconnect="),
        "disconnectEnabled is off"
    );
    let refused = post_form(&app, &format!("{plain_path}/disconnect"), "provider=CNHI").await;
    assert_eq!(refused.status, 400, "{refused:?}");
}

fn multipart(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "linkboxBoundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn file_upload_links_take_zips_only_and_not_too_large() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(&app, &token, "file-upload", json!({"externalId": "f1"})).await;
    let path = path_of(link["link"].as_str().expect("link"));
    assert!(get(&app, &path).await.text.contains("multipart/form-data"));
    let upload = format!("{path}/upload");
    let (content_type, body) = multipart(
        "fields.zip",
        b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    );
    let ok = app
        .send(
            Method::POST,
            &upload,
            &[("content-type", &content_type)],
            Some(body),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.text.contains("fields.zip"));
    let (content_type, body) = multipart("notes.txt", b"hello");
    let refused = app
        .send(
            Method::POST,
            &upload,
            &[("content-type", &content_type)],
            Some(body),
        )
        .await;
    assert_eq!(refused.status, 415);
    let mut big = b"PK\x03\x04".to_vec();
    big.resize(25 * 1024 * 1024 + 1, 0);
    let (content_type, body) = multipart("big.zip", &big);
    let too_big = app
        .send(
            Method::POST,
            &upload,
            &[("content-type", &content_type)],
            Some(body),
        )
        .await;
    assert_eq!(too_big.status, 413);
}

#[tokio::test]
async fn an_upload_of_two_files_is_refused_not_halved() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(&app, &token, "file-upload", json!({"externalId": "f1"})).await;
    let path = path_of(link["link"].as_str().expect("link"));
    let empty_zip = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let (content_type, first) = multipart("a.zip", empty_zip);
    let (_, second) = multipart("b.zip", empty_zip);
    // Both parts under the one boundary: drop the first body's closing line.
    let closing = b"--linkboxBoundary7--\r\n".len();
    let mut body = first[..first.len() - closing].to_vec();
    body.extend_from_slice(&second);
    let refused = app
        .send(
            Method::POST,
            &format!("{path}/upload"),
            &[("content-type", &content_type)],
            Some(body),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.text.contains("one file at a time"),
        "{}",
        refused.text
    );
    let page = get(&app, &path).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        !page.text.contains("a.zip"),
        "nothing was kept: {}",
        page.text
    );
}

#[tokio::test]
async fn a_link_whose_user_was_deleted_is_listed_but_its_page_is_gone() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let link = leaf_link(&app, &token, "provider", json!({"externalId": "f1"})).await;
    let upload = leaf_link(&app, &token, "file-upload", json!({"externalId": "f1"})).await;
    let user = link["leafUserId"].as_str().expect("user");
    let deleted = app
        .leaf(
            Method::DELETE,
            &format!("/services/usermanagement/api/users/{user}"),
            &token,
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let id = link["id"].as_str().expect("id");
    assert_eq!(provider_link(&app, &token, id).await.status, 200);
    let path = path_of(link["link"].as_str().expect("link"));
    let page = get(&app, &path).await;
    assert_eq!(page.status, 410, "{page:?}");
    assert!(page.text.contains("has been deleted"), "{}", page.text);
    assert_eq!(app.send(Method::HEAD, &path, &[], None).await.status, 410);
    let connect = post_form(&app, &format!("{path}/connect"), "provider=CNHI").await;
    assert_eq!(connect.status, 410, "{connect:?}");
    assert!(
        connect.text.contains("has been deleted"),
        "{}",
        connect.text
    );
    // The refused visits counted nothing.
    assert_eq!(provider_link(&app, &token, id).await.json["usageCount"], 0);
    let (content_type, body) =
        multipart("f.zip", b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let refused = app
        .send(
            Method::POST,
            &format!("{}/upload", path_of(upload["link"].as_str().expect("link"))),
            &[("content-type", &content_type)],
            Some(body),
        )
        .await;
    assert_eq!(refused.status, 410, "{refused:?}");
    let access = app
        .send(
            Method::POST,
            &format!("/_sandbox/leaf/magic-links/{id}/access"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(access.status, 410, "{access:?}");
    assert_eq!(access.json["error"]["code"], "LEAF_USER_DELETED");
    let connect = app
        .send(
            Method::POST,
            &format!("/_sandbox/leaf/magic-links/{id}/connect"),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            Some(br#"{"provider": "JohnDeere"}"#.to_vec()),
        )
        .await;
    assert_eq!(connect.status, 410, "{connect:?}");
    assert_eq!(connect.json["error"]["code"], "LEAF_USER_DELETED");
}

#[tokio::test]
async fn the_leaf_control_endpoints_count_accesses_and_connect_only_for_their_account() {
    let app = spawn_app().await;
    let token = app.authenticate("farmco").await;
    let other = app.authenticate("otherco").await;
    let link = leaf_link(
        &app,
        &token,
        "provider",
        json!({"externalId": "f1", "allowedProviders": ["Trimble"]}),
    )
    .await;
    let id = link["id"].as_str().expect("id");
    let access = format!("/_sandbox/leaf/magic-links/{id}/access");
    let connect = format!("/_sandbox/leaf/magic-links/{id}/connect");
    let bearer = |token: &str| format!("Bearer {token}");
    let mine = bearer(&token);
    let theirs = bearer(&other);
    let counted = app
        .send(Method::POST, &access, &[("authorization", &mine)], None)
        .await;
    assert_eq!(counted.status, 200, "{counted:?}");
    assert_eq!(counted.json["usageCount"], 1);
    let foreign = app
        .send(Method::POST, &access, &[("authorization", &theirs)], None)
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.json["error"]["code"], "NOT_FOUND");
    let json_type = ("content-type", "application/json");
    let body = |provider: &str| Some(json!({"provider": provider}).to_string().into_bytes());
    let refused = app
        .send(
            Method::POST,
            &connect,
            &[("authorization", &mine), json_type],
            body("Stara"),
        )
        .await;
    assert_eq!(refused.status, 400);
    let foreign = app
        .send(
            Method::POST,
            &connect,
            &[("authorization", &theirs), json_type],
            body("Trimble"),
        )
        .await;
    assert_eq!(foreign.status, 404);
    let user = app
        .send(
            Method::POST,
            &connect,
            &[("authorization", &mine), json_type],
            body("Trimble"),
        )
        .await;
    assert_eq!(user.status, 200, "{user:?}");
    assert!(user.json["trimbleCredentials"].is_object());
    // The admin (no credentials here) plays any account's end user, as it does M2M's; a
    // partner key plays none, and an id no account holds is not found.
    let by_admin = app.send(Method::POST, &access, &[], None).await;
    assert_eq!(by_admin.status, 200, "{by_admin:?}");
    assert_eq!(by_admin.json["usageCount"], 2);
    let connected = app
        .send(Method::POST, &connect, &[json_type], body("Trimble"))
        .await;
    assert_eq!(connected.status, 200, "{connected:?}");
    let partner = app
        .send(Method::POST, &access, &[("x-api-key", &test_key(9))], None)
        .await;
    assert_eq!(partner.status, 400, "{partner:?}");
    assert_eq!(partner.json["error"]["code"], "TENANT_REQUIRED");
    let unknown = app
        .send(
            Method::POST,
            "/_sandbox/leaf/magic-links/bm9uZQ/access",
            &[],
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    app.send(Method::POST, &access, &[("authorization", &mine)], None)
        .await;
    let gone = app
        .send(Method::POST, &access, &[("authorization", &mine)], None)
        .await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.json["error"]["code"], "LINK_USED_UP");
}

/// The Leaf table shows an account's newest 100 links of a kind and says how many there
/// are when there are more.
#[tokio::test]
async fn the_dashboards_leaf_table_says_when_it_shows_only_the_newest() {
    let app = spawn_app().await;
    let token = app.authenticate("manyfarms").await;
    let seeded = app
        .send(
            Method::POST,
            "/_sandbox/seed",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"api": "leaf", "count": 150, "rngSeed": 4, "mix": {"provider": 1}})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(seeded.status, 201, "{seeded:?}");
    let page = post_form(&app, "/_sandbox/ui", &format!("token={token}")).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.text
            .contains("showing the newest 100 of 150 provider links"),
        "{}",
        page.text
    );
    assert_eq!(page.text.matches("href=\"magic-link/").count(), 100);
}

/// The journal table shows a tenant's newest 100 requests, newest first, and says how many
/// there are when there are more.
#[tokio::test]
async fn the_dashboards_journal_says_when_it_shows_only_the_newest() {
    let app = spawn_app().await;
    let key = "m2m_test_journaltable00000000000000000000";
    for n in 0..101 {
        let path = format!("/partner/links/link_nobody_{n:012x}");
        let answer = app
            .send(Method::GET, &path, &[("x-api-key", key)], None)
            .await;
        assert_eq!(answer.status, 404, "{answer:?}");
    }
    let board = get(&app, &format!("/_sandbox/ui?key={key}")).await;
    assert_eq!(board.status, 200, "{board:?}");
    assert!(
        board.text.contains("showing the newest 100 of 101"),
        "{}",
        board.text
    );
    assert!(board.text.contains("link_nobody_000000000064"));
    assert!(!board.text.contains("link_nobody_000000000000<"));
}

/// Behind a proxy, the browser's `Origin` is `--public-url`'s, while the proxy may send on
/// another `Host` (nginx's `$host` drops the port): the dashboard's buttons work from the
/// public URL's pages, and still do nothing from another site's.
#[tokio::test]
async fn the_dashboards_buttons_work_from_the_public_urls_origin() {
    let app = spawn_app_with(linkbox::Options {
        public_url: Some("http://127.0.0.1:9/base/".into()),
        ..linkbox::Options::default()
    })
    .await;
    let key = test_key(45);
    let click = |origin: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            app.send(
                Method::POST,
                "/_sandbox/ui/clock",
                &[FORM, ("origin", origin)],
                Some(format!("key={key}&advanceSeconds=60").into_bytes()),
            )
            .await
        }
    };
    let before = app.app.clock.now();
    let own = click("http://127.0.0.1:9").await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.text.contains("Clock moved by 60 s."), "{}", own.text);
    let moved = app.app.clock.now();
    assert!(moved - before >= time::Duration::seconds(60));
    let other = click("http://127.0.0.1:10").await;
    assert_eq!(other.status, 403, "{other:?}");
    assert!(app.app.clock.now() - moved < time::Duration::seconds(60));
}

/// With `--public-url` on another loopback port (a local proxy or tunnel), a browser at
/// linkbox's own address still is linkbox's page: its `Host` carries the port, so it did
/// not come through a proxy that dropped it.
#[tokio::test]
async fn a_browser_at_linkboxs_own_address_is_its_page_whatever_the_public_url() {
    let app = spawn_app_with(linkbox::Options {
        public_url: Some("http://localhost:9/".into()),
        ..linkbox::Options::default()
    })
    .await;
    let port = reqwest::Url::parse(&app.url("/"))
        .ok()
        .and_then(|url| url.port())
        .expect("a port");
    let key = test_key(47);
    for host in ["localhost", "127.0.0.1"] {
        let authority = format!("{host}:{port}");
        let origin = format!("http://{authority}");
        let click = app
            .send(
                Method::POST,
                "/_sandbox/ui/clock",
                &[FORM, ("host", &authority), ("origin", &origin)],
                Some(format!("key={key}&advanceSeconds=60").into_bytes()),
            )
            .await;
        assert_eq!(click.status, 200, "{origin}: {click:?}");
    }
}

/// Behind a proxy that drops the port from `Host` (`Host: pub.example` for
/// `http://pub.example:8080`), only `--public-url`'s origin is linkbox's page: another
/// scheme or port on that host is another site, for the keyless admin and the buttons.
#[tokio::test]
async fn behind_a_proxy_that_drops_the_port_only_the_public_origin_is_linkboxs_page() {
    let app = spawn_app_with(linkbox::Options {
        public_url: Some("http://pub.example:8080/".into()),
        ..linkbox::Options::default()
    })
    .await;
    let key = test_key(46);
    let before = app.app.clock.now();
    for origin in [
        "https://pub.example",
        "http://pub.example",
        "http://pub.example:9090",
    ] {
        let reset = app
            .send(
                Method::POST,
                "/_sandbox/reset",
                &[("host", "pub.example"), ("origin", origin)],
                None,
            )
            .await;
        assert_eq!(reset.status, 401, "{origin}: {reset:?}");
        let click = app
            .send(
                Method::POST,
                "/_sandbox/ui/clock",
                &[FORM, ("host", "pub.example"), ("origin", origin)],
                Some(format!("key={key}&advanceSeconds=60").into_bytes()),
            )
            .await;
        assert_eq!(click.status, 403, "{origin}: {click:?}");
    }
    assert!(app.app.clock.now() - before < time::Duration::seconds(60));
    let own = app
        .send(
            Method::POST,
            "/_sandbox/ui/clock",
            &[
                FORM,
                ("host", "pub.example"),
                ("origin", "http://pub.example:8080"),
            ],
            Some(format!("key={key}&advanceSeconds=60").into_bytes()),
        )
        .await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.text.contains("Clock moved by 60 s."), "{}", own.text);
}

/// A dashboard given a key and a Leaf token acts for whom the control API acts with both:
/// the token's account, whose clock its button moves, and not the key's partner; with a
/// key that is no key beside the token, the account still.
#[tokio::test]
async fn the_dashboard_given_a_key_and_a_token_is_the_tokens_account_as_the_control_api() {
    let app = spawn_app().await;
    let key = test_key(41);
    app.create_link_for(&key, "the-partners").await;
    let token = app.authenticate("both-creds").await;
    let page = get(&app, &format!("/_sandbox/ui?key={key}&token={token}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Leaf account both-creds"),
        "the token's account, as the control API: {}",
        page.text
    );
    assert!(!page.text.contains("M2M partner"), "{}", page.text);
    let bad_key = get(
        &app,
        &format!("/_sandbox/ui?key=m2m_test_bad&token={token}"),
    )
    .await;
    assert_eq!(bad_key.status, 200, "{}", bad_key.text);
    assert!(bad_key.text.contains("Leaf account both-creds"));
    // Its buttons carry both, and act for the page's tenant.
    assert!(
        bad_key
            .text
            .contains(&format!(r#"name="token" value="{token}""#))
    );
    let pressed = post_form(
        &app,
        "/_sandbox/ui/clock",
        &format!("key=m2m_test_bad&token={token}&advanceSeconds=60"),
    )
    .await;
    assert_eq!(pressed.status, 200, "{}", pressed.text);
    assert!(
        pressed.text.contains("Leaf account both-creds"),
        "{}",
        pressed.text
    );
    let journal = app
        .client
        .get(app.url("/_sandbox/requests"))
        .header("x-api-key", &key)
        .bearer_auth(&token)
        .send()
        .await
        .expect("journal");
    assert_eq!(journal.status(), 200, "the control API with both acts too");
}

#[tokio::test]
async fn the_dashboard_shows_a_tenant_escapes_everything_and_its_forms_work() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500]);
    let key = test_key(5);
    link_with_receiver(
        &app,
        &key,
        &receiver,
        json!({"referenceId": "<script>alert(1)</script>"}),
    )
    .await;
    receiver.wait_for(1).await;
    let board = get(&app, &format!("/_sandbox/ui?key={key}")).await;
    assert_eq!(board.status, 200);
    assert!(!board.text.contains("<script>alert(1)</script>"));
    assert!(board.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(board.text.contains("link.created"));
    assert!(board.text.contains("id=\"journal\""));
    let delivery = app
        .control(Method::GET, "/webhooks", Some(&key), None)
        .await
        .json["deliveries"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_owned();
    let replayed = post_form(
        &app,
        "/_sandbox/ui/replay",
        &format!("key={key}&delivery={delivery}"),
    )
    .await;
    assert!(replayed.text.contains("queued again"), "{}", replayed.text);
    receiver.wait_for(2).await;
    let before = app.app.clock.now();
    let moved = post_form(
        &app,
        "/_sandbox/ui/clock",
        &format!("key={key}&advanceSeconds=7200"),
    )
    .await;
    assert!(moved.text.contains("Clock moved by 7200 s."));
    assert!(app.app.clock.now() - before >= time::Duration::hours(2));
    let smallest = post_form(
        &app,
        "/_sandbox/ui/clock",
        &format!("key={key}&advanceSeconds={}", i64::MIN),
    )
    .await;
    assert_eq!(
        smallest.status, 400,
        "the dashboard again, with the refusal and the control API's status for it"
    );
    let other = post_form(
        &app,
        "/_sandbox/ui/replay",
        &format!("key={}&delivery={delivery}", test_key(6)),
    )
    .await;
    assert_eq!(other.status, 404, "another tenant's delivery is none");
    assert!(other.text.contains("Delivery not found"), "{}", other.text);
    assert!(
        smallest
            .text
            .contains("advanceSeconds must be a whole number of seconds, within a century"),
        "{}",
        smallest.text
    );
    let token = app.authenticate("farmco").await;
    let leaf = post_form(&app, "/_sandbox/ui", &format!("token={token}")).await;
    assert!(leaf.text.contains("Leaf account farmco"));
    assert!(
        !leaf.text.contains("&lt;script&gt;"),
        "another tenant's links stay hidden"
    );
    // No credential on a sandbox without --admin-token: the person at this machine is the
    // admin, who sees every tenant and may look as one; never inside another page's frame.
    let keyless = get(&app, "/_sandbox/ui").await;
    assert_eq!(keyless.status, 200);
    assert!(
        keyless.text.contains("every tenant (admin)"),
        "{}",
        keyless.text
    );
    assert!(
        keyless.text.contains("&lt;script&gt;"),
        "every partner's links"
    );
    assert!(
        keyless.text.contains("name=\"key\""),
        "the form to look as one tenant"
    );
    assert_eq!(keyless.headers["x-frame-options"], "DENY");
    assert_eq!(
        keyless.headers["content-security-policy"],
        "frame-ancestors 'none'"
    );
    let advanced = post_form(&app, "/_sandbox/ui/clock", "advanceSeconds=60").await;
    assert!(
        advanced.text.contains("Clock moved by 60 s."),
        "{}",
        advanced.text
    );
    // A page of another site gets the sign-in, saying why, and moves nothing.
    let cross = app
        .send(
            Method::POST,
            "/_sandbox/ui/clock",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://evil.example"),
            ],
            Some(b"advanceSeconds=60".to_vec()),
        )
        .await;
    assert_eq!(cross.status, 403, "{cross:?}");
    assert!(cross.text.contains("Nothing was done"), "{}", cross.text);
    // Nor with a credential in the form: a field, unlike a header, any site's page can send,
    // and a made-up key is a tenant, who may move the shared clock.
    let made_up = test_key(99);
    let before = app.app.clock.now();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("host", "evil.example:8642"),
    ] {
        for (action, form) in [
            ("clock", format!("key={made_up}&advanceSeconds=2678400")),
            ("replay", format!("key={key}&delivery=whatever")),
        ] {
            let forged = app
                .send(
                    Method::POST,
                    &format!("/_sandbox/ui/{action}"),
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        (name, value),
                    ],
                    Some(form.into_bytes()),
                )
                .await;
            assert_eq!(forged.status, 403, "{action} with {name}: {forged:?}");
            assert!(forged.text.contains("Nothing was done"), "{}", forged.text);
        }
    }
    assert!(app.app.clock.now() - before < time::Duration::hours(1));
    let bad = get(&app, "/_sandbox/ui?key=nope").await;
    assert_eq!(bad.status, 401);
    // A credential that cannot be a header is still a credential given, refused as one,
    // never read as none (the keyless admin).
    for form in ["key=%01bad", "token=b%01ad"] {
        let unreadable = post_form(&app, "/_sandbox/ui", form).await;
        assert_eq!(unreadable.status, 401, "{form}: {unreadable:?}");
        assert!(!unreadable.text.contains("every tenant (admin)"), "{form}");
    }
}

/// The URL bases are for the APIs' `url` fields (a vendor's host, say); the dashboard's
/// anchors still open linkbox's own pages, where the links are.
#[tokio::test]
async fn the_dashboards_links_open_linkboxs_own_pages_whatever_the_url_bases() {
    let app = spawn_app_with(linkbox::Options {
        m2m_widget_base: Some("https://widget.m2m.leapfinancial.com".into()),
        leaf_link_base: Some("https://magic-link.withleaf.io/".into()),
        ..linkbox::Options::default()
    })
    .await;
    let key = test_key(21);
    let created = app.create_link(&key, &json!({"referenceId": "u21"})).await;
    assert_eq!(created.status, 201, "{created:?}");
    let link_id = created.json["data"]["linkId"].as_str().expect("linkId");
    assert_eq!(
        created.json["data"]["url"],
        format!("https://widget.m2m.leapfinancial.com/{link_id}/m2m-basic")
    );
    let token = app.authenticate("farmco").await;
    let leaf = leaf_link(
        &app,
        &token,
        "provider",
        json!({"externalId": "f21", "name": "Ann"}),
    )
    .await;
    let leaf_id = leaf["id"].as_str().expect("id");
    assert_eq!(
        leaf["link"],
        format!("https://magic-link.withleaf.io/{leaf_id}")
    );

    for (board, href) in [
        (
            format!("/_sandbox/ui?key={key}"),
            format!("/widget/{link_id}/m2m-basic"),
        ),
        (
            format!("/_sandbox/ui?token={token}"),
            format!("/magic-link/{leaf_id}"),
        ),
    ] {
        let at = reqwest::Url::parse(&app.url(&board)).expect("url");
        let board = get(&app, &board).await;
        assert_eq!(board.status, 200, "{board:?}");
        // The page's links are read from its `<base>`, linkbox's root.
        let base = board
            .text
            .split("<base href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a base");
        let root = at.join(base).expect("resolves");
        assert_eq!(root.path(), "/");
        let relative = href.trim_start_matches('/');
        assert!(
            board.text.contains(&format!(r#"href="{relative}""#)),
            "{href}: {}",
            board.text
        );
        assert!(!board.text.contains("leapfinancial.com"), "{}", board.text);
        assert!(!board.text.contains("withleaf.io"), "{}", board.text);
        let page = get(&app, &href).await;
        assert_eq!(page.status, 200, "{href}: {page:?}");
    }
}

async fn seed(app: &TestApp, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut headers = headers.to_vec();
    headers.push(("content-type", "application/json"));
    app.send(
        Method::POST,
        "/_sandbox/seed",
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// What seeding makes deterministic: everything but ids and times.
async fn m2m_data(app: &TestApp, key: &str) -> Vec<Value> {
    let list = app.list_links(key, "limit=100").await;
    let mut items: Vec<Value> = list.data()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            json!([
                item["referenceId"],
                item["status"],
                item["userData"],
                item["operationId"].is_string()
            ])
        })
        .collect();
    items.sort_by_key(|item| item.to_string());
    items
}

#[tokio::test]
async fn seeding_the_same_rng_seed_gives_the_same_data() {
    let app = spawn_app().await;
    let (a, b, c) = (test_key(6), test_key(7), test_key(8));
    for key in [&a, &b] {
        let reply = seed(
            &app,
            &[("x-api-key", key)],
            json!({"api": "m2m", "count": 30, "rngSeed": 42}),
        )
        .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(reply.json["created"].as_array().expect("ids").len(), 30);
    }
    seed(
        &app,
        &[("x-api-key", &c)],
        json!({"api": "m2m", "count": 30, "rngSeed": 43}),
    )
    .await;
    let (one, two, three) = (
        m2m_data(&app, &a).await,
        m2m_data(&app, &b).await,
        m2m_data(&app, &c).await,
    );
    assert_eq!(one, two);
    assert_ne!(one, three);
    let statuses: std::collections::BTreeSet<String> = one
        .iter()
        .map(|item| item[1].as_str().expect("status").to_owned())
        .collect();
    assert_eq!(
        statuses.len(),
        3,
        "created, opened and revoked all appear: {statuses:?}"
    );

    let leaf_users = |token: String| {
        let app = &app;
        async move {
            let bearer = format!("Bearer {token}");
            let reply = seed(
                app,
                &[("authorization", &bearer)],
                json!({"api": "leaf", "count": 10, "rngSeed": 42}),
            )
            .await;
            assert_eq!(reply.status, 201, "{reply:?}");
            let users = app
                .leaf(
                    Method::GET,
                    "/services/usermanagement/api/users?size=100",
                    &token,
                    None,
                )
                .await;
            let mut names: Vec<Value> = users
                .json
                .as_array()
                .expect("users")
                .iter()
                .map(|user| {
                    json!([
                        user["name"],
                        user["email"],
                        user["externalId"],
                        user["address"]
                    ])
                })
                .collect();
            names.sort_by_key(|user| user.to_string());
            names
        }
    };
    let first = leaf_users(app.authenticate("farm-a").await).await;
    let second = leaf_users(app.authenticate("farm-b").await).await;
    assert_eq!(first.len(), 10);
    assert_eq!(first, second);
    let refused = seed(
        &app,
        &[("x-api-key", &a)],
        json!({"api": "leaf", "count": 1}),
    )
    .await;
    assert_eq!(refused.status, 400);
    let bad_mix = seed(
        &app,
        &[("x-api-key", &a)],
        json!({"api": "m2m", "count": 1, "mix": {"nope": 1}}),
    )
    .await;
    assert_eq!(bad_mix.status, 400);
    // Weights that overflow the draw are refused, not drawn from (which would panic).
    let heavy_mix = seed(
        &app,
        &[("x-api-key", &a)],
        json!({"api": "m2m", "count": 3, "mix": {"created": 4_294_967_295u32, "opened": 1}}),
    )
    .await;
    assert_eq!(heavy_mix.status, 400);
    assert_eq!(
        heavy_mix.json["error"]["message"],
        "The mix field's weights must add up to at most 4294967295"
    );
    let negative = seed(
        &app,
        &[("x-api-key", &a)],
        json!({"api": "m2m", "count": -1}),
    )
    .await;
    assert_eq!(negative.status, 400);
    let message = negative.json["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Invalid request body at count: invalid value: number `-1`, expected a whole number from 1 to 1000"),
        "{message}"
    );
}

/// The admin's dashboard pages through every partner's links, partner after partner: each
/// link once, a hundred a page, the count over them all.
#[tokio::test]
async fn the_admins_dashboard_pages_through_every_partners_links_once() {
    let app = spawn_app_with(linkbox::Options {
        admin_token: Some("root".into()),
        ..linkbox::Options::default()
    })
    .await;
    let mut expected = std::collections::BTreeSet::new();
    for (n, count) in [(31, 60), (32, 70), (33, 90)] {
        let key = test_key(n);
        let seeded = seed(
            &app,
            &[("x-api-key", &key)],
            json!({"api": "m2m", "count": count, "rngSeed": n}),
        )
        .await;
        assert_eq!(seeded.status, 201, "{seeded:?}");
        for id in seeded.json["created"].as_array().expect("ids") {
            expected.insert(id.as_str().expect("id").to_owned());
        }
    }
    let mut seen = Vec::new();
    for (page, shown, says) in [
        (1, 100, "showing 1–100 of 220"),
        (2, 100, "showing 101–200 of 220"),
        (3, 20, "showing 201–220 of 220"),
        (4, 0, "showing 0 of 220"),
    ] {
        let board = get(&app, &format!("/_sandbox/ui?token=root&page={page}")).await;
        assert_eq!(board.status, 200);
        assert!(board.text.contains(says), "page {page}");
        let ids: Vec<String> = board
            .text
            .split("<code>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</code>").map(|(id, _)| id.to_owned()))
            .filter(|id| id.starts_with("link_"))
            .collect();
        assert_eq!(ids.len(), shown, "page {page}");
        seen.extend(ids);
    }
    let distinct: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), distinct.len(), "no link on two pages");
    assert_eq!(distinct, expected);
}

/// The dashboard's status filter is the list API's: each status it offers shows as many
/// links as `GET /partner/links` counts for it, `expired` as `visibility=expired`; a status
/// or page it cannot use is said so, and every link shown.
#[tokio::test]
async fn the_dashboards_status_filter_counts_what_the_list_api_counts() {
    let app = spawn_app().await;
    let key = test_key(41);
    let seeded = seed(
        &app,
        &[("x-api-key", &key)],
        json!({"api": "m2m", "count": 40, "rngSeed": 41}),
    )
    .await;
    assert_eq!(seeded.status, 201, "{seeded:?}");
    let counted = |query: String| {
        let app = &app;
        let key = &key;
        async move {
            let list = app
                .send(
                    Method::GET,
                    &format!("/partner/links?{query}"),
                    &[("x-api-key", key)],
                    None,
                )
                .await;
            list.json["data"]["pagination"]["total"]
                .as_u64()
                .expect("total")
        }
    };
    let mut totals = Vec::new();
    for (status, query) in [
        ("created", "status=created"),
        ("opened", "status=opened"),
        ("revoked", "status=revoked"),
        ("expired", "visibility=expired"),
    ] {
        let total = counted(query.to_owned()).await;
        let board = get(&app, &format!("/_sandbox/ui?key={key}&status={status}")).await;
        assert_eq!(board.status, 200);
        assert!(
            board.text.contains(&format!(" of {total}</p>")),
            "{status}: {total}: {}",
            board.text
        );
        assert!(!board.text.contains(r#"role="alert""#), "{status}");
        totals.push(total);
    }
    assert!(totals.iter().all(|total| *total < 40), "{totals:?}");
    assert!(
        totals.iter().filter(|total| **total > 0).count() >= 3,
        "{totals:?}"
    );
    for (query, says) in [
        ("status=completed", "No status &quot;completed&quot;"),
        ("page=abc", "No page &quot;abc&quot;"),
        ("page=0", "No page &quot;0&quot;"),
    ] {
        let board = get(&app, &format!("/_sandbox/ui?key={key}&{query}")).await;
        assert_eq!(board.status, 200);
        assert!(board.text.contains(says), "{query}: {}", board.text);
        assert!(board.text.contains("showing 1–40 of 40"), "{query}");
    }
}

#[tokio::test]
async fn the_widget_shows_the_links_theme_over_the_partners_and_a_default_otherwise() {
    let key = "m2m_test_themethemethemethemethemetheme00";
    let config = linkbox::config::FileConfig::parse(&format!(
        "[[partners]]\nslug = \"acme\"\nkeys = [\"{key}\"]\ntheme = \"ocean\""
    ))
    .expect("config");
    let app = linkbox_tests::spawn_app_with(linkbox::Options {
        file: Some(config),
        ..linkbox::Options::default()
    })
    .await;
    for (reference, theme, shown) in [("own", Some("dark"), "dark"), ("partner", None, "ocean")] {
        let mut body = json!({"referenceId": reference});
        if let Some(theme) = theme {
            body["theme"] = json!(theme);
        }
        let created = app.create_link(key, &body).await;
        assert_eq!(created.status, 201, "{created:?}");
        let page = get(&app, &path_of(created.data()["url"].as_str().expect("url"))).await;
        assert!(
            page.text.contains(&format!("id=\"theme\">{shown}<")),
            "{reference}: {}",
            page.text
        );
        assert!(page.text.contains(&format!("theme-{shown}")), "{reference}");
    }
    let open = spawn_app().await;
    let created = open
        .create_link(&test_key(3), &json!({"referenceId": "none"}))
        .await;
    let page = get(
        &open,
        &path_of(created.data()["url"].as_str().expect("url")),
    )
    .await;
    assert!(page.text.contains("id=\"theme\">default<"), "{}", page.text);
}
