//! A sandbox many tenants share, over real sockets: reads create no tenant, each tenant's
//! journal entries survive a neighbour's traffic, uploads are bounded and checked before
//! their body is read, and a snapshot of any size comes back through `PUT`.

use std::time::Duration;

use linkbox::Options;
use linkbox::config::RateLimits;
use linkbox_tests::{Reply, TestApp, assert_leaf_problem, spawn_app, spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WIDGETS: &str = "/services/widgets/api/magic-link";
const USERS: &str = "/services/usermanagement/api/users";

#[tokio::test]
async fn reads_with_a_new_key_answer_as_for_a_new_partner_and_create_none() {
    let app = spawn_app_with(Options {
        max_tenants: Some(1),
        ..Options::default()
    })
    .await;
    for n in 100..110 {
        let key = test_key(n);
        let listed = app.list_links(&key, "").await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert_eq!(listed.data()["items"], json!([]));
        assert_eq!(listed.data()["pagination"]["total"], 0);
        let missing = app.get_link(&key, "link_p00000000_000000000000").await;
        assert_eq!(missing.status, 404, "{missing:?}");
        let revoke = app
            .revoke_link(&key, "link_p00000000_000000000000", None)
            .await;
        assert_eq!(revoke.status, 404, "{revoke:?}");
        for path in ["/webhooks", "/requests", "/faults"] {
            let read = app.control(Method::GET, path, Some(&key), None).await;
            assert_eq!(read.status, 200, "{path}: {read:?}");
        }
        let snapshot = app
            .control(Method::GET, "/snapshot", Some(&key), None)
            .await;
        assert_eq!(snapshot.status, 200, "{snapshot:?}");
        assert_eq!(snapshot.json["links"], json!([]));
        let dashboard = app
            .send(Method::GET, "/_sandbox/ui", &[("x-api-key", &key)], None)
            .await;
        assert!(dashboard.status < 500, "{dashboard:?}");
    }
    assert!(
        app.app.store.m2m().all().is_empty(),
        "reads created partners"
    );
    // None of them counted toward --max-tenants: the first key to write still gets in.
    app.create_link_for(&test_key(1), "first").await;
    assert_eq!(app.app.store.m2m().all().len(), 1);
    let refused = app
        .create_link(&test_key(2), &json!({"referenceId": "second"}))
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
}

/// A snapshot a new key's `PUT` is refused (not JSON, another partner's, a URL or a flow
/// no create could store, a link that does not hold together) makes no tenant; one that
/// restores does.
#[tokio::test]
async fn a_refused_snapshot_makes_no_tenant() {
    let app = spawn_app_with(Options {
        max_tenants: Some(1),
        ..Options::default()
    })
    .await;
    let key = test_key(120);
    // The same key's snapshot of one link, taken from another sandbox: a key's slug is
    // derived from the key.
    let donor = spawn_app().await;
    let link_id = donor.create_link_for(&key, "r").await["linkId"]
        .as_str()
        .expect("a link id")
        .to_owned();
    let own = donor
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await
        .json;
    assert_eq!(own["links"].as_array().map(Vec::len), Some(1), "{own}");
    let link = |field: &str, value: Value| {
        let mut snapshot = own.clone();
        snapshot["links"][0][field] = value;
        snapshot
    };
    let mut others = own.clone();
    others["partner"] = json!("p00000000");
    let mut webhook = own.clone();
    webhook["webhookUrl"] = json!("http://hooks.example/in");
    let refused = [
        ("not JSON", None),
        ("another partner's", Some(others)),
        ("a webhook URL over http", Some(webhook)),
        (
            "a callback URL over http",
            Some(link("callbackUrl", json!("http://example.com/cb"))),
        ),
        (
            "a flow not served",
            Some(link("flow", json!("carrier-pigeon"))),
        ),
        (
            "a link of another slug",
            Some(link("linkId", json!("link_p00000000_000000000001"))),
        ),
    ];
    for (what, body) in refused {
        let reply = match &body {
            Some(body) => {
                app.control(Method::PUT, "/snapshot", Some(&key), Some(body))
                    .await
            }
            None => {
                app.send(
                    Method::PUT,
                    "/_sandbox/snapshot",
                    &[("x-api-key", &key), ("content-type", "application/json")],
                    Some(b"{\"version\":".to_vec()),
                )
                .await
            }
        };
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        assert!(
            app.app.store.m2m().all().is_empty(),
            "{what} made a partner"
        );
    }
    let restored = app
        .control(
            Method::PUT,
            "/snapshot",
            Some(&key),
            Some(&link("referenceId", json!("r"))),
        )
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    assert_eq!(app.app.store.m2m().all().len(), 1);
    assert_eq!(app.get_link(&key, &link_id).await.status, 200);
}

#[tokio::test]
async fn a_first_write_keeps_the_windows_its_reads_counted() {
    let app = spawn_app().await;
    // Windows are calendar minutes of the sandbox clock: frozen, the 1,001 reads below
    // cannot straddle two of them however slowly they run.
    app.app
        .clock
        .set_to(time::macros::datetime!(2026-02-10 12:00:15 UTC))
        .expect("in range");
    app.app.clock.set_frozen(true);
    let key = test_key(7);
    for _ in 0..1000 {
        assert_eq!(app.list_links(&key, "limit=1").await.status, 200);
    }
    assert_eq!(app.list_links(&key, "limit=1").await.status, 429);
    assert!(app.app.store.m2m().all().is_empty());
    app.create_link_for(&key, "writer").await;
    assert_eq!(app.list_links(&key, "limit=1").await.status, 429);
}

#[tokio::test]
async fn leaf_reads_with_a_new_username_create_no_account() {
    let app = spawn_app().await;
    let token = app.authenticate("only-reads").await;
    for widget in ["provider", "authentication", "file-upload"] {
        let listed = app
            .leaf(Method::GET, &format!("{WIDGETS}/{widget}"), &token, None)
            .await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert_eq!(listed.json, json!([]));
        let missing = app
            .leaf(
                Method::GET,
                &format!("{WIDGETS}/{widget}/bm90LWEtbGluaw"),
                &token,
                None,
            )
            .await;
        assert_eq!(missing.status, 404, "{missing:?}");
    }
    let users = app.leaf(Method::GET, USERS, &token, None).await;
    assert_eq!(users.json, json!([]));
    let user = app
        .leaf(
            Method::GET,
            &format!("{USERS}/6f1c3e2a-58b4-4c55-9d4e-0a1b2c3d4e5f"),
            &token,
            None,
        )
        .await;
    assert_eq!(user.status, 404, "{user:?}");
    let journal = app
        .send(
            Method::GET,
            "/_sandbox/requests",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(journal.status, 200, "{journal:?}");
    assert!(app.app.store.leaf().all().is_empty(), "reads made accounts");
    let created = app
        .leaf(
            Method::POST,
            USERS,
            &token,
            Some(&json!({"name": "Ann", "email": "ann@example.com"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(app.app.store.leaf().all().len(), 1);
    let listed = app.leaf(Method::GET, USERS, &token, None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1));
}

async fn journal_paths(app: &TestApp, key: &str) -> Vec<String> {
    let reply = app.control(Method::GET, "/requests", Some(key), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|entry| entry["path"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_busy_tenant_cannot_evict_a_quiet_tenants_journal_entries() {
    let app = spawn_app_with(Options {
        journal_size: Some(5),
        ..Options::default()
    })
    .await;
    let (quiet, busy) = (test_key(1), test_key(2));
    assert_eq!(app.get_link(&quiet, "link_quiet").await.status, 404);
    for n in 0..20 {
        app.get_link(&busy, &format!("link_busy{n}")).await;
    }
    assert_eq!(
        journal_paths(&app, &quiet).await,
        ["/partner/links/link_quiet"]
    );
    let busy_paths = journal_paths(&app, &busy).await;
    assert_eq!(busy_paths.len(), 5, "{busy_paths:?}");
    assert_eq!(busy_paths[0], "/partner/links/link_busy19");
    // The admin sees every tenant's ring.
    let all = app.control(Method::GET, "/requests", None, None).await;
    assert_eq!(all.json["requests"].as_array().map(Vec::len), Some(6));
    assert_eq!(all.json["capacity"], 5);
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

const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

async fn upload(app: &TestApp, path: &str, name: &str) -> Reply {
    let (content_type, body) = multipart(name, EMPTY_ZIP);
    app.send(
        Method::POST,
        path,
        &[("content-type", &content_type), ("accept", "*/*")],
        Some(body),
    )
    .await
}

/// A file-upload link of a new account, and its page's path.
async fn upload_link(app: &TestApp, expires_in: u32) -> (String, String) {
    let token = app.authenticate("uploads").await;
    let reply = app
        .leaf(
            Method::POST,
            &format!("{WIDGETS}/file-upload"),
            &token,
            Some(&json!({"externalId": "f1", "expiresIn": expires_in})),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.json["id"].as_str().expect("id").to_owned();
    (id.clone(), format!("/magic-link/{id}"))
}

#[tokio::test]
async fn a_link_takes_a_bounded_number_of_files_with_bounded_names() {
    let app = spawn_app().await;
    let (_, page) = upload_link(&app, 3600).await;
    let path = format!("{page}/upload");
    let long = format!("{}.zip", "n".repeat(252));
    let refused = upload(&app, &path, &long).await;
    assert_leaf_problem(&refused, 400, "Bad Request", &path);
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("255"))
    );
    let fits = format!("{}.zip", "n".repeat(251));
    assert_eq!(upload(&app, &path, &fits).await.status, 200);
    for n in 1..20 {
        let ok = upload(&app, &path, &format!("f{n}.zip")).await;
        assert_eq!(ok.status, 200, "upload {n}: {ok:?}");
    }
    let full = upload(&app, &path, "one-more.zip").await;
    assert_leaf_problem(&full, 400, "Bad Request", &path);
    assert!(
        full.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("20 files")),
        "{full:?}"
    );
    // A browser gets the page back, saying why.
    let (content_type, body) = multipart("again.zip", EMPTY_ZIP);
    let page_reply = app
        .send(
            Method::POST,
            &path,
            &[("content-type", &content_type), ("accept", "text/html")],
            Some(body),
        )
        .await;
    assert_eq!(page_reply.status, 400);
    assert!(page_reply.text.contains("20 files"), "{}", page_reply.text);
    // The link's own page, its files listed and its form there, not a page of the reason.
    assert!(
        page_reply.text.contains("f19.zip") && page_reply.text.contains("/upload\""),
        "{}",
        page_reply.text
    );
}

#[tokio::test]
async fn uploads_are_refused_on_used_up_expired_and_unknown_links() {
    let app = spawn_app().await;
    let (_, page) = upload_link(&app, 7200).await;
    let path = format!("{page}/upload");
    for _ in 0..3 {
        assert_eq!(app.send(Method::GET, &page, &[], None).await.status, 200);
    }
    // The visit that used the link up showed the form: its upload is taken.
    assert_eq!(upload(&app, &path, "last-visit.zip").await.status, 200);
    app.advance_clock(31 * 60);
    let used_up = upload(&app, &path, "late.zip").await;
    assert_leaf_problem(&used_up, 410, "Gone", &path);
    assert!(
        used_up.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("used up")),
        "{used_up:?}"
    );
    app.advance_clock(2 * 3600);
    let expired = upload(&app, &path, "later.zip").await;
    assert_leaf_problem(&expired, 410, "Gone", &path);
    assert!(
        expired.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{expired:?}"
    );
    let unknown = "/magic-link/bm90LWEtbGluaw/upload";
    assert_leaf_problem(
        &upload(&app, unknown, "x.zip").await,
        404,
        "Not Found",
        unknown,
    );
}

/// "More than 30 minutes" to the millisecond: on a frozen clock, an upload exactly 30
/// minutes after the visit that used the link up is taken; a second later it is refused.
#[tokio::test]
async fn a_used_up_link_takes_uploads_until_exactly_thirty_minutes_after_its_last_visit() {
    let app = spawn_app().await;
    let frozen = app
        .control(
            Method::POST,
            "/clock",
            None,
            Some(&serde_json::json!({"frozen": true})),
        )
        .await;
    assert_eq!(frozen.status, 200, "{frozen:?}");
    let (_, page) = upload_link(&app, 7200).await;
    let path = format!("{page}/upload");
    for _ in 0..3 {
        assert_eq!(app.send(Method::GET, &page, &[], None).await.status, 200);
    }
    app.advance_clock(30 * 60);
    assert_eq!(upload(&app, &path, "at-the-mark.zip").await.status, 200);
    app.advance_clock(1);
    let late = upload(&app, &path, "a-second-late.zip").await;
    assert_leaf_problem(&late, 410, "Gone", &path);
}

#[tokio::test]
async fn an_upload_to_an_unknown_link_is_answered_before_its_body_is_sent() {
    let app = spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /magic-link/bm90LWEtbGluaw/upload HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        25 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.expect("send head");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = socket.read(&mut buffer).await.expect("read");
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 || text.contains("}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer before the body was sent");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("Magic link not found"), "{text}");
}

#[tokio::test]
async fn a_snapshot_larger_than_the_fixed_limit_comes_back_through_put() {
    let app = spawn_app_with(Options {
        rate_limits: Some(RateLimits::Off),
        ..Options::default()
    })
    .await;
    let key = test_key(9);
    let partner = app.app.store.m2m().authenticate(&key).expect("partner");
    let blob = "m".repeat(64 * 1024);
    let now = app.app.clock.now();
    let links = 1_100;
    for n in 0..links {
        partner
            .create_link(
                linkbox::store::m2m::NewLink {
                    reference_id: format!("user-{n}"),
                    metadata: Some(json!({"n": n, "blob": blob})),
                    flow: linkbox_contracts::m2m::DEFAULT_FLOW.into(),
                    ..Default::default()
                },
                now,
            )
            .expect("link");
    }
    let response = app
        .client
        .get(app.url("/_sandbox/snapshot"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("snapshot");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "the snapshot is streamed, not sized up front"
    );
    let body = response.bytes().await.expect("body");
    assert!(body.len() > 64 * 1024 * 1024, "{}", body.len());
    let snapshot: Value = serde_json::from_slice(&body).expect("a whole document");
    assert_eq!(snapshot["links"].as_array().map(Vec::len), Some(links));

    let reset = app.control(Method::POST, "/reset", Some(&key), None).await;
    assert_eq!(reset.status, 200, "{reset:?}");
    assert_eq!(partner.link_count(), 0);
    let restored = app
        .client
        .put(app.url("/_sandbox/snapshot"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("restore");
    assert_eq!(restored.status(), 200);
    let echoed = restored.bytes().await.expect("body");
    assert_eq!(echoed, body);
    assert_eq!(partner.link_count(), links);

    // A larger one than anything written of this partner is still refused.
    let mut grown = snapshot.clone();
    grown["links"][0]["metadata"]["more"] = json!("x".repeat(2 * 1024 * 1024));
    let refused = app
        .client
        .put(app.url("/_sandbox/snapshot"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&grown).expect("json"))
        .send()
        .await
        .expect("restore");
    assert_eq!(refused.status(), 413);
}
