//! Hostile and malformed input under `/partner`: whatever arrives, the answer is the M2M
//! envelope in JSON — never plain text, never a 500.

use linkbox_contracts::m2m::messages;
use linkbox_tests::{Reply, assert_m2m_error, spawn_app, test_key};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

#[track_caller]
fn assert_enveloped_error(reply: &Reply, context: &str) {
    assert!(
        (400..500).contains(&reply.status),
        "{context}: status {} {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{context}"
    );
    assert_eq!(reply.json["success"], false, "{context}: {}", reply.text);
    assert!(reply.json["error"]["code"].is_string(), "{context}");
    assert!(reply.json["error"]["message"].is_string(), "{context}");
    let keys = reply.json.as_object().map(|map| map.len());
    assert_eq!(keys, Some(2), "{context}: no extra envelope fields");
}

#[tokio::test]
async fn wrong_types_in_every_field_are_refused_in_the_envelope() {
    let app = spawn_app().await;
    let wrong = [
        json!(1),
        json!(1.5),
        json!(true),
        json!([]),
        json!({}),
        json!("x"),
        json!(-1),
    ];
    let fields = [
        "referenceId",
        "expiresInMinutes",
        "userData",
        "metadata",
        "flow",
        "theme",
        "language",
        "callbackUrl",
    ];
    for field in fields {
        for value in &wrong {
            let mut body = json!({"referenceId": format!("{field}-{value}")});
            body[field] = value.clone();
            let reply = app.create_link(&test_key(1), &body).await;
            assert!(
                reply.status == 201 || reply.status == 400,
                "{field}={value}: {reply:?}"
            );
            if reply.status == 400 {
                assert_enveloped_error(&reply, &format!("{field}={value}"));
            }
        }
    }
}

#[tokio::test]
async fn malformed_bodies_never_escape_the_envelope() {
    let app = spawn_app().await;
    let key = test_key(1);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!("{{\"referenceId\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid utf-8", b"{\"referenceId\": \"\xff\xfe\"}".to_vec()),
        ("nul bytes", b"{\"referenceId\": \"a\0b\"}\0".to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("huge string", huge.into_bytes()),
        ("truncated", b"{\"referenceId\"".to_vec()),
        ("a bare string", b"\"hello\"".to_vec()),
        ("null", b"null".to_vec()),
        (
            "duplicate keys",
            b"{\"referenceId\": 1, \"referenceId\": {}}".to_vec(),
        ),
    ];
    for path in [
        "/partner/links",
        "/partner/links/link_x_000000000000/revoke",
    ] {
        for (name, body) in &bodies {
            let reply = app
                .send(
                    Method::POST,
                    path,
                    &[("x-api-key", &key), ("content-type", "application/json")],
                    Some(body.clone()),
                )
                .await;
            if reply.status != 404 {
                assert_enveloped_error(&reply, &format!("{path} {name}"));
            }
            assert_ne!(reply.header("content-type"), Some("text/plain"), "{name}");
        }
    }
}

#[tokio::test]
async fn unknown_paths_answer_404_in_the_envelope() {
    let app = spawn_app().await;
    let key = test_key(1);
    for (method, path) in [
        (Method::GET, "/partner"),
        (Method::GET, "/partner/nothing/here"),
        (
            Method::POST,
            "/partner/links/link_x_000000000000/revoke/again",
        ),
    ] {
        let reply = app
            .send(method.clone(), path, &[("x-api-key", &key)], None)
            .await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_enveloped_error(&reply, &format!("{method} {path}"));
        assert_eq!(
            reply.json["error"],
            json!({"code": "RESOURCE_NOT_FOUND", "message": format!("Cannot {method} {path}")})
        );
    }
}

#[tokio::test]
async fn wrong_methods_answer_405_with_allow_in_the_envelope() {
    let app = spawn_app().await;
    let key = test_key(1);
    let cases = [
        (Method::DELETE, "/partner/links", "GET, HEAD, POST"),
        (Method::PUT, "/partner/links", "GET, HEAD, POST"),
        (Method::OPTIONS, "/partner/links", "GET, HEAD, POST"),
        (
            Method::PATCH,
            "/partner/links/link_x_000000000000",
            "GET, HEAD",
        ),
        (
            Method::GET,
            "/partner/links/link_x_000000000000/revoke",
            "POST",
        ),
        (
            Method::POST,
            "/partner/data-requests/dr_x_000000000000",
            "PUT",
        ),
        (
            Method::GET,
            "/partner/webhooks/config/regenerate-secret",
            "POST",
        ),
    ];
    for (method, path, allowed) in cases {
        let reply = app
            .send(method.clone(), path, &[("x-api-key", &key)], None)
            .await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allowed), "{method} {path}");
        assert_enveloped_error(&reply, &format!("{method} {path}"));
        assert_eq!(
            reply.json["error"],
            json!({"code": "INVALID_REQUEST",
                "message": format!("Cannot {method} {path}: allowed methods are {allowed}")})
        );
    }
}

#[tokio::test]
async fn hostile_headers_and_queries_get_the_envelope() {
    let app = spawn_app().await;
    let long_key = "m2m_test_".to_owned() + &"a".repeat(10_000);
    let reply = app
        .send(
            Method::GET,
            "/partner/links",
            &[("x-api-key", &long_key)],
            None,
        )
        .await;
    assert_enveloped_error(&reply, "long key");
    let reply = app
        .send(
            Method::GET,
            "/partner/links?page=%FF%FE&limit=%00",
            &[("x-api-key", &test_key(1))],
            None,
        )
        .await;
    assert_enveloped_error(&reply, "garbage query");
    let reply = app
        .send(
            Method::GET,
            "/partner/links?page=99999999999999999999",
            &[("x-api-key", &test_key(1))],
            None,
        )
        .await;
    assert_enveloped_error(&reply, "overflowing page");
}

#[tokio::test]
async fn a_key_that_is_not_ascii_is_an_invalid_key_not_a_missing_one() {
    let app = spawn_app().await;
    for key in [
        &b"m2m_test_\xc3\xa9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
        &b"m2m_test_\xe9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
    ] {
        let bearer = [&b"Bearer "[..], key].concat();
        for (name, value) in [("x-api-key", key), ("authorization", &bearer[..])] {
            let value = HeaderValue::from_bytes(value).expect("a header value");
            let request = app
                .client
                .get(app.url("/partner/links"))
                .header(name, value);
            let reply = app.send_built(request).await;
            assert_m2m_error(&reply, 401, "INVALID_API_KEY", messages::INVALID_API_KEY);
        }
    }
}

#[tokio::test]
async fn paths_outside_the_apis_answer_in_linkboxs_own_envelope() {
    let app = spawn_app().await;
    let reply = app.send(Method::GET, "/nowhere", &[], None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json,
        json!({"error": {"code": "NOT_FOUND", "message": "No route for GET /nowhere"}})
    );
    assert_ne!(reply.json, Value::Null);
}

#[tokio::test]
async fn json_nested_past_the_limit_is_refused_naming_it_in_each_api() {
    let app = spawn_app().await;
    let nested = |depth: usize| {
        let mut value = json!(1);
        for _ in 0..depth {
            value = json!({ "a": value });
        }
        value
    };
    let key = test_key(64);
    // 62 levels of metadata inside the body's own object: 63, within the limit of 64.
    let fits = app
        .create_link(
            &key,
            &json!({"referenceId": "fits", "metadata": nested(62)}),
        )
        .await;
    assert_eq!(fits.status, 201, "{fits:?}");
    let deep = app
        .create_link(
            &key,
            &json!({"referenceId": "deep", "metadata": nested(126)}),
        )
        .await;
    assert_enveloped_error(&deep, "deep metadata");
    assert_eq!(deep.status, 400);
    let message = deep.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("64"), "{message}");

    // The link that fits comes back in a snapshot, and the snapshot is accepted back.
    let snapshot = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_eq!(snapshot.status, 200, "{snapshot:?}");
    let restored = app
        .control(Method::PUT, "/snapshot", Some(&key), Some(&snapshot.json))
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");

    let control = app
        .control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"advanceSeconds": nested(200)})),
        )
        .await;
    assert_eq!(control.status, 400, "{control:?}");
    assert!(control.text.contains("72"), "{}", control.text);

    let token = app.authenticate("deep").await;
    let leaf = app
        .send(
            Method::POST,
            "/services/widgets/api/magic-link/provider",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            Some(
                serde_json::to_vec(&json!({"externalId": "x", "settings": nested(100)}))
                    .expect("json"),
            ),
        )
        .await;
    assert_eq!(leaf.status, 400, "{leaf:?}");
    assert_eq!(
        leaf.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        leaf.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("64"),
        "{leaf:?}"
    );
}

/// A body of more small values than a tree of them can be read for cheaply (each some
/// hundreds of bytes in memory) is refused before it is read, naming the limit, in each
/// API's envelope; one within it, and a long string however long, is read.
#[tokio::test]
async fn json_of_more_values_than_the_limit_is_refused_naming_it_in_each_api() {
    let app = spawn_app().await;
    let key = test_key(65);
    let small = |count: usize| vec![json!({"": 0}); count];
    // Each `{"":0}` is two values (its object and its member), each comma one more.
    let fits = app
        .create_link(
            &key,
            &json!({"referenceId": "fits", "metadata": {"a": small(3_000), "s": "x,".repeat(20_000)}}),
        )
        .await;
    assert_eq!(fits.status, 201, "{fits:?}");
    let many = app
        .create_link(
            &key,
            &json!({"referenceId": "many", "metadata": {"a": small(5_000)}}),
        )
        .await;
    assert_enveloped_error(&many, "many values");
    assert_eq!(many.status, 400);
    let message = many.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("more JSON values") && message.contains("10000"),
        "{message}"
    );

    for (path, token) in [
        ("/api/authenticate", None),
        (
            "/services/usermanagement/api/users",
            Some(app.authenticate("many").await),
        ),
    ] {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let body = json!({"username": "u", "password": "p", "email": "a@b.c", "x": small(5_000)});
        let leaf = app
            .send(
                Method::POST,
                path,
                &headers,
                Some(serde_json::to_vec(&body).expect("json")),
            )
            .await;
        assert_eq!(leaf.status, 400, "{path}: {leaf:?}");
        assert_eq!(
            leaf.header("content-type"),
            Some("application/problem+json")
        );
        let detail = leaf.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("more JSON values"), "{path}: {leaf:?}");
    }
}

/// The M2M service routes as Express does by default: the letter case of a path's fixed
/// parts and one trailing slash do not count, its parameters are kept as sent, and a path
/// no route takes is still unknown, named as sent.
#[tokio::test]
async fn paths_are_routed_as_express_routes_them() {
    let app = spawn_app().await;
    let key = test_key(1);
    let mut ids = Vec::new();
    for (path, reference) in [("/partner/links/", "slash"), ("/PARTNER/Links", "upper")] {
        let body = json!({"referenceId": reference});
        let created = app.m2m(Method::POST, path, &key, Some(&body)).await;
        assert_eq!(created.status, 201, "{path}: {created:?}");
        ids.push(
            created.json["data"]["linkId"]
                .as_str()
                .expect("an id")
                .to_owned(),
        );
    }
    let id = &ids[0];
    for path in [
        "/partner/links/?limit=1".to_owned(),
        format!("/Partner/LINKS/{id}"),
        format!("/partner/links/{id}/"),
    ] {
        let reply = app.m2m(Method::GET, &path, &key, None).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    // The id is a parameter, kept as sent: another case names no link.
    let other = app
        .m2m(
            Method::GET,
            &format!("/partner/links/{}", id.to_uppercase()),
            &key,
            None,
        )
        .await;
    assert_eq!(other.status, 404, "{other:?}");
    // A path no route takes is M2M's whatever the case of its first part: refused in
    // M2M's envelope, named as sent.
    for path in ["/partner/Nothing/", "/PARTNER/nope", "/Partner/links/x/y"] {
        let unknown = app.m2m(Method::GET, path, &key, None).await;
        assert_eq!(unknown.status, 404, "{path}: {unknown:?}");
        assert_eq!(unknown.json["success"], false, "{path}: {unknown:?}");
        assert_eq!(
            unknown.json["error"]["message"],
            format!("Cannot GET {path}"),
            "{path}"
        );
    }
}
