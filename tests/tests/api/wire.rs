//! Faithful on the wire: connections that stay usable after an early answer, HEAD wherever
//! GET works, CORS on request (issue 13).

use std::time::Duration;

use linkbox_tests::{TestApp, spawn_app, test_key};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `method path` with `headers` and a body in two steps — the head, a pause, then
/// the body together with a second, pipelined `GET /_sandbox/health` — and returns the
/// raw answer to both.
async fn pipelined(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let body = br#"{"referenceId":"user-1","flow":"m2m-basic"}"#;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut rest = body.to_vec();
    rest.extend_from_slice(
        b"GET /_sandbox/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    // The server may already have closed; the answer below says so.
    let _ = stream.write_all(&rest).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Method, path, headers and the status the first answer must have.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);

#[track_caller]
fn assert_both_answered(answer: &str, status: u16, what: &str) {
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at + 9..at + 12])
        .collect();
    assert_eq!(
        statuses,
        [status.to_string().as_str(), "200"],
        "{what}: {answer}"
    );
    assert!(answer.contains(r#""status":"ok""#), "{what}: {answer}");
}

#[tokio::test]
async fn every_early_answer_leaves_the_connection_usable() {
    let app = spawn_app().await;
    let key = test_key(1);
    let token = app.authenticate("grower").await;
    let bearer = format!("Bearer {token}");
    let faulted = test_key(2);
    let fault = app
        .control(
            Method::POST,
            "/faults",
            Some(&faulted),
            Some(&json!({"path": "/partner/links", "status": 503})),
        )
        .await;
    assert_eq!(fault.status, 201, "{fault:?}");
    let cases: Vec<Case> = vec![
        ("POST", "/partner/nothing", vec![("x-api-key", &key)], 404),
        ("DELETE", "/partner/links", vec![("x-api-key", &key)], 405),
        ("POST", "/partner/links", vec![], 401),
        ("POST", "/partner/links", vec![("x-api-key", "nope")], 401),
        ("GET", "/partner/links", vec![("x-api-key", &key)], 200),
        (
            "POST",
            "/partner/webhooks/config/regenerate-secret",
            vec![("x-api-key", &key)],
            200,
        ),
        ("POST", "/partner/links", vec![("x-api-key", &faulted)], 503),
        (
            "POST",
            "/api/nothing",
            vec![("authorization", &bearer)],
            404,
        ),
        (
            "PUT",
            "/services/widgets/api/magic-link/provider",
            vec![("authorization", &bearer)],
            405,
        ),
        ("POST", "/services/usermanagement/api/users", vec![], 401),
        ("POST", "/_sandbox/nothing", vec![], 404),
        ("PUT", "/_sandbox/health", vec![], 405),
        ("POST", "/_sandbox/faults", vec![], 400),
        ("GET", "/_sandbox/health", vec![], 200),
    ];
    for (method, path, headers, status) in cases {
        let answer = pipelined(&app, method, path, &headers).await;
        assert_both_answered(&answer, status, &format!("{method} {path}"));
    }
}

#[tokio::test]
async fn a_body_past_the_limit_is_not_waited_for_and_the_answer_says_close() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = "POST /partner/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server waited for a body past the limit");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 404"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}

/// `HEAD path` and `GET path` on one app: the same status and length, no body for HEAD.
async fn assert_head_like_get(app: &TestApp, path: &str, headers: &[(&str, &str)]) {
    let get = app.send(Method::GET, path, headers, None).await;
    let head = app.send(Method::HEAD, path, headers, None).await;
    assert_eq!(head.status, get.status, "HEAD {path}: {head:?}");
    assert_eq!(
        head.header("content-type"),
        get.header("content-type"),
        "HEAD {path}"
    );
    assert_eq!(
        head.header("content-length").map(str::to_owned),
        Some(get.text.len().to_string()),
        "HEAD {path}"
    );
    assert!(head.text.is_empty(), "HEAD {path}: {}", head.text);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_on_every_api() {
    let app = spawn_app().await;
    let key = test_key(1);
    let token = app.authenticate("grower").await;
    let bearer = format!("Bearer {token}");
    let link = app.create_link_for(&key, "user-1").await;
    let link_id = link["linkId"].as_str().expect("linkId").to_owned();
    assert_head_like_get(&app, "/partner/links", &[("x-api-key", &key)]).await;
    assert_head_like_get(
        &app,
        &format!("/partner/links/{link_id}"),
        &[("x-api-key", &key)],
    )
    .await;
    assert_head_like_get(&app, "/partner/links", &[]).await;
    assert_head_like_get(
        &app,
        "/services/usermanagement/api/users",
        &[("authorization", &bearer)],
    )
    .await;
    assert_head_like_get(&app, "/_sandbox/health", &[]).await;
    assert_head_like_get(&app, "/openapi.json", &[]).await;
    assert_head_like_get(&app, "/docs/", &[]).await;
    assert_head_like_get(&app, "/_sandbox/ui", &[]).await;
    let url = link["url"].as_str().expect("url");
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let page = &rest[rest.find('/').unwrap_or(rest.len())..];
    assert_head_like_get(&app, page, &[]).await;
    let wrong = app
        .send(
            Method::HEAD,
            "/partner/links/x/revoke",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
}

#[tokio::test]
async fn without_cors_a_preflight_gets_the_apis_own_405() {
    let app = spawn_app().await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
    ];
    let reply = app
        .send(Method::OPTIONS, "/partner/links", &preflight, None)
        .await;
    assert_eq!(reply.status, 405, "{reply:?}");
    assert_eq!(reply.json["error"]["code"], "INVALID_REQUEST");
    assert!(reply.header("access-control-allow-origin").is_none());
    let reply = app
        .send(
            Method::OPTIONS,
            "/services/usermanagement/api/users",
            &preflight,
            None,
        )
        .await;
    assert_eq!(reply.status, 405, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn with_cors_preflights_are_answered_and_every_answer_names_the_origin() {
    let app = linkbox_tests::spawn_app_with(linkbox::Options {
        cors: vec!["https://app.example".to_owned()],
        ..linkbox::Options::default()
    })
    .await;
    let key = test_key(1);
    let reply = app
        .send(
            Method::OPTIONS,
            "/partner/links",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-api-key, content-type"),
            ],
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, HEAD, POST")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("x-api-key, content-type")
    );
    let origin = [
        ("origin", "https://app.example"),
        ("x-api-key", key.as_str()),
    ];
    for (path, status) in [("/partner/links", 200), ("/partner/nothing", 404)] {
        let reply = app.send(Method::GET, path, &origin, None).await;
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://app.example"),
            "{path}"
        );
        // A script may read the paging headers, Leaf's `Link` among them, and where a
        // created Leaf user is (`Location`).
        let exposed = reply
            .header("access-control-expose-headers")
            .unwrap_or_default();
        for header in [
            "Link",
            "Location",
            "X-Total-Count",
            "Retry-After",
            "X-Linkbox-Warning",
        ] {
            assert!(
                exposed.split(", ").any(|named| named == header),
                "{exposed}"
            );
        }
    }
    let unauthorised = app
        .send(
            Method::GET,
            "/partner/links",
            &[("origin", "https://app.example")],
            None,
        )
        .await;
    assert_eq!(unauthorised.status, 401);
    assert!(unauthorised.header("access-control-allow-origin").is_some());
    let other = app
        .send(
            Method::GET,
            "/partner/links",
            &[("origin", "https://evil.example"), ("x-api-key", &key)],
            None,
        )
        .await;
    assert!(other.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_link_created_without_flow_gets_the_configured_default() {
    let file = linkbox::config::FileConfig::parse("flows = [\"m2m-express\"]").expect("config");
    let app = linkbox_tests::spawn_app_with(linkbox::Options {
        file: Some(file),
        ..linkbox::Options::default()
    })
    .await;
    let link = app.create_link_for(&test_key(1), "user-1").await;
    assert!(
        link["url"].as_str().expect("url").ends_with("/m2m-express"),
        "{link}"
    );
}

#[tokio::test]
async fn date_only_bounds_cover_the_whole_day() {
    let app = spawn_app().await;
    let key = test_key(1);
    app.create_link_for(&key, "user-1").await;
    app.create_link_for(&key, "user-2").await;
    let today = app.app.clock.now().date().to_string();
    let reply = app
        .list_links(&key, &format!("from={today}&to={today}"))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json["data"]["pagination"]["total"], 2, "{reply:?}");
    let reply = app.list_links(&key, "to=2000-01-01").await;
    assert_eq!(reply.json["data"]["pagination"]["total"], 0, "{reply:?}");
    let reply = app.list_links(&key, "from=2026-13-01").await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("from")),
        "{reply:?}"
    );
}

#[tokio::test]
async fn the_widget_reports_the_devices_platform_and_language() {
    let app = spawn_app().await;
    let receiver = linkbox_tests::receiver::Receiver::start().await;
    let key = test_key(1);
    let reply = app
        .create_link(
            &key,
            &json!({"referenceId": "user-1", "callbackUrl": receiver.url, "language": "en"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let url = reply.json["data"]["url"].as_str().expect("url").to_owned();
    let ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    let page = app
        .client
        .get(&url)
        .header("user-agent", ua)
        .header("accept-language", "es-MX,es;q=0.9")
        .send()
        .await
        .expect("widget");
    assert_eq!(page.status(), 200);
    let opened = receiver.wait_for_event("link.opened").await;
    let device = &opened.json["data"]["deviceInfo"];
    assert_eq!(device["platform"], "android", "{device}");
    assert_eq!(device["language"], "es-MX", "{device}");
    assert_eq!(device["userAgent"], ua, "{device}");
}

/// What the device did not report is left out of `deviceInfo`, as the decisions say, not
/// sent as `null`: read on the raw body, where the two differ.
#[tokio::test]
async fn the_widget_leaves_out_what_the_device_did_not_report() {
    let app = spawn_app().await;
    let receiver = linkbox_tests::receiver::Receiver::start().await;
    let reply = app
        .create_link(
            &test_key(3),
            &json!({"referenceId": "user-3", "callbackUrl": receiver.url}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let url = reply.json["data"]["url"].as_str().expect("url").to_owned();
    // reqwest sends no `User-Agent` unless told to.
    let page = app
        .client
        .get(&url)
        .header("accept-language", "*")
        .send()
        .await
        .expect("widget");
    assert_eq!(page.status(), 200);
    let opened = receiver.wait_for_event("link.opened").await;
    let body = String::from_utf8_lossy(&opened.body);
    assert!(body.contains(r#""deviceInfo":{}"#), "{body}");
    assert!(!body.contains("null"), "{body}");
    linkbox_tests::assert_json_matches_schema(&opened.json, "m2m/LinkOpenedWebhook.json");
}

/// A request with more than one `Host` is a 400 (RFC 9112 §3.2) in the envelope of the API
/// its path belongs to, and is not served: which host was meant cannot be told.
#[tokio::test]
async fn a_request_with_two_host_headers_is_a_400_in_its_apis_envelope() {
    let app = spawn_app().await;
    let key = test_key(1);
    for (path, says) in [
        ("/partner/links/nope", r#""success":false"#),
        ("/services/widgets/api/magic-link/provider", "problem"),
        ("/_sandbox/clock", r#""error":{"code":"INVALID_REQUEST""#),
    ] {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-API-Key: {key}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("answered")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(says), "{path}: {answer}");
        assert!(answer.contains("one Host header"), "{path}: {answer}");
    }
    let one = app.send(Method::GET, "/_sandbox/clock", &[], None).await;
    assert_eq!(one.status, 200, "{}", one.text);
}

/// The raw answer to `request`, sent whole on a connection of its own.
async fn raw(app: &TestApp, request: &str) -> String {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` is a 400 too, in its API's envelope
/// and with CORS for an allowed origin; HTTP/1.0 may leave it out.
#[tokio::test]
async fn an_http11_request_without_host_is_a_400_and_an_http10_one_is_served() {
    let app = linkbox_tests::spawn_app_with(linkbox::Options {
        cors: vec!["https://app.example".to_owned()],
        ..linkbox::Options::default()
    })
    .await;
    let key = test_key(1);
    for (path, says) in [
        ("/partner/links", r#""success":false"#),
        ("/services/widgets/api/magic-link/provider", "problem"),
        ("/_sandbox/health", r#""error":{"code":"INVALID_REQUEST""#),
    ] {
        let answer = raw(
            &app,
            &format!(
                "GET {path} HTTP/1.1\r\nX-API-Key: {key}\r\nOrigin: https://app.example\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(says), "{path}: {answer}");
        assert!(
            answer.contains("must have a Host header"),
            "{path}: {answer}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("access-control-allow-origin: https://app.example"),
            "{path}: {answer}"
        );
    }
    let old = raw(&app, "GET /_sandbox/health HTTP/1.0\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.0 200"), "{old}");
    let two = raw(
        &app,
        "GET /_sandbox/health HTTP/1.1\r\nHost: a\r\nHost: b\r\nOrigin: https://app.example\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    assert!(
        two.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example"),
        "{two}"
    );
}

/// The whole answer to one raw request sent with `Connection: close`.
async fn exchange(app: &TestApp, request: &str) -> String {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// RFC 9112 §3.2.2: a request target in absolute form names the request's host, whatever
/// `Host` says. The keyless admin's check that a request names this machine reads it too:
/// `http://evil.example/...` is refused even with `Host: 127.0.0.1`, and a target naming
/// this machine is served whatever `Host` says.
#[tokio::test]
async fn an_absolute_form_target_names_the_host_the_keyless_admin_check_reads() {
    let app = spawn_app().await;
    let port = app.addr.port();
    let foreign = exchange(
        &app,
        "POST http://evil.example/_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(foreign.starts_with("HTTP/1.1 401"), "{foreign}");
    assert!(foreign.contains("UNAUTHORIZED"), "{foreign}");
    let journal = exchange(
        &app,
        "GET http://evil.example:8642/_sandbox/requests HTTP/1.1\r\nHost: localhost\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    assert!(journal.starts_with("HTTP/1.1 401"), "{journal}");
    let own = exchange(
        &app,
        &format!(
            "GET http://127.0.0.1:{port}/_sandbox/requests HTTP/1.1\r\nHost: evil.example\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(own.starts_with("HTTP/1.1 200"), "{own}");
}
