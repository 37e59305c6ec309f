//! Property-based hostile input over every endpoint: arbitrary JSON (wrong types, deep
//! nesting, huge values, duplicate keys), arbitrary bytes (invalid UTF-8, NUL), arbitrary
//! header values and query strings. Whatever arrives, the answer is never a 5xx and always
//! the error shape of the API the path belongs to.

use std::sync::OnceLock;

use linkbox_tests::{Reply, TestApp, test_key};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::Value;

/// Every endpoint that takes input, with placeholders for ids.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/partner/links"),
    ("GET", "/partner/links"),
    ("GET", "/partner/links/{link}"),
    ("POST", "/partner/links/{link}/revoke"),
    ("PUT", "/partner/data-requests/dr_x_000000000000"),
    ("POST", "/partner/webhooks/config/regenerate-secret"),
    ("POST", "/api/authenticate"),
    ("GET", "/services/usermanagement/api/users"),
    ("POST", "/services/usermanagement/api/users"),
    ("PUT", "/services/usermanagement/api/users/{user}"),
    ("POST", "/services/widgets/api/magic-link/provider"),
    ("POST", "/services/widgets/api/magic-link/authentication"),
    ("POST", "/services/widgets/api/magic-link/file-upload"),
    (
        "POST",
        "/services/widgets/api/magic-link/users/{user}/provider",
    ),
    (
        "POST",
        "/services/widgets/api/magic-link/user/{user}/authentication",
    ),
    ("GET", "/services/widgets/api/magic-link/provider"),
    ("POST", "/_sandbox/clock"),
    ("POST", "/_sandbox/m2m/links/{link}/open"),
    ("POST", "/_sandbox/m2m/links/{link}/operation"),
    ("POST", "/_sandbox/faults"),
    ("PUT", "/_sandbox/snapshot"),
    ("PUT", "/_sandbox/m2m/webhook-config"),
    ("GET", "/_sandbox/requests"),
];

/// One sandbox for every case, on a runtime that outlives them.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    key: String,
    token: String,
    link: String,
    user: String,
    /// The only key that arms faults: a fault (even a dropping one) touches only requests made
    /// with the key that armed it, and this one makes none. Faults armed without credentials
    /// would be an admin's and touch everything, so hostile credentials never reach that path.
    fault_key: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (app, key, token, link, user) = runtime.block_on(async {
            let mut app = spawn_app_unlimited().await;
            // A fresh connection per request: after answering a request whose body it did
            // not read (a GET with a body), the server closes that connection, and a pooled
            // client racing to reuse it would report a broken pipe that says nothing about
            // the answer.
            app.client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let key = test_key(99);
            let link = app.create_link_for(&key, "hostile-base").await["linkId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let token = app.authenticate("hostile@example.com").await;
            let user = app
                .leaf(
                    Method::POST,
                    "/services/usermanagement/api/users",
                    &token,
                    Some(&serde_json::json!({"name": "H", "email": "h@example.com"})),
                )
                .await;
            let user = user.json["id"].as_str().unwrap_or_default().to_owned();
            (app, key, token, link, user)
        });
        Fixture {
            runtime,
            app,
            key,
            token,
            link,
            user,
            fault_key: test_key(98),
        }
    })
}

async fn spawn_app_unlimited() -> TestApp {
    linkbox_tests::spawn_app_with(linkbox::Options {
        rate_limits: Some(linkbox::config::RateLimits::Off),
        ..linkbox::Options::default()
    })
    .await
}

/// Arbitrary JSON: scalars of every type, huge strings and numbers, and nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(100_000))),
        Just(Value::from(u64::MAX)),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Mostly the APIs' own field names, so values land on real validation paths.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "referenceId",
            "expiresInMinutes",
            "userData",
            "metadata",
            "flow",
            "theme",
            "language",
            "callbackUrl",
            "reason",
            "username",
            "password",
            "rememberMe",
            "expiresIn",
            "allowedProviders",
            "provider",
            "settings",
            "externalId",
            "name",
            "email",
            "id",
            "advanceSeconds",
            "setTo",
            "frozen",
            "status",
            "probability",
            "times",
            "delayMs",
            "url",
            "paymentMethod",
            "backgroundColor",
            "links",
            "users",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,12}",
    ]
}

/// A body: JSON text, JSON with duplicate keys, deep nesting, or raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => (field_name(), json_value(), json_value()).prop_map(|(key, a, b)| {
            format!("{{\"{key}\": {a}, \"{key}\": {b}}}").into_bytes()
        }),
        1 => (1usize..5000).prop_map(|depth| {
            format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ -~]{0,60}",
        Just("m2m_live_0123456789abcdefghijklmnopqrstuv".to_owned()),
        Just("Bearer ".to_owned()),
        Just(format!("Bearer {}", "a".repeat(4000))),
    ]
}

/// What shape the answer to `path` must have, whatever went wrong.
#[track_caller]
fn assert_api_shape(path: &str, reply: &Reply) {
    assert!(
        reply.status < 500,
        "{path}: {} {}",
        reply.status,
        reply.text
    );
    if reply.status < 400 {
        return;
    }
    let content_type = reply.header("content-type").unwrap_or_default();
    if path.starts_with("/partner") {
        assert_eq!(content_type, "application/json", "{path}: {}", reply.text);
        assert_eq!(reply.json["success"], false, "{path}: {}", reply.text);
        assert!(
            reply.json["error"]["code"].is_string(),
            "{path}: {}",
            reply.text
        );
    } else if path.starts_with("/api") || path.starts_with("/services") {
        assert_eq!(
            content_type, "application/problem+json",
            "{path}: {}",
            reply.text
        );
        assert_eq!(reply.json["status"], reply.status, "{path}: {}", reply.text);
        assert!(reply.json["title"].is_string(), "{path}: {}", reply.text);
    } else {
        assert_eq!(content_type, "application/json", "{path}: {}", reply.text);
        assert!(
            reply.json["error"]["code"].is_string(),
            "{path}: {}",
            reply.text
        );
    }
}

fn send(endpoint: usize, body: Vec<u8>, query: String, header: String, authed: bool) {
    let fixture = fixture();
    let (method, template) = ENDPOINTS[endpoint % ENDPOINTS.len()];
    let path = template
        .replace("{link}", &fixture.link)
        .replace("{user}", &fixture.user);
    let bearer = format!("Bearer {}", fixture.token);
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if path == "/_sandbox/faults" {
        headers.push(("x-api-key", &fixture.fault_key));
    } else if authed {
        if path.starts_with("/api") || path.starts_with("/services") {
            headers.push(("authorization", &bearer));
        } else {
            headers.push(("x-api-key", &fixture.key));
        }
    } else {
        headers.push(("x-api-key", &header));
        headers.push(("authorization", &header));
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let reply = fixture
        .runtime
        .block_on(fixture.app.send(method, &target, &headers, Some(body)));
    assert_api_shape(&path, &reply);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn authorized_hostile_bodies_never_escape_the_apis_error_shape(
        endpoint in 0usize..ENDPOINTS.len(),
        body in body(),
    ) {
        send(endpoint, body, String::new(), String::new(), true);
    }

    #[test]
    fn hostile_queries_never_escape_the_apis_error_shape(
        endpoint in 0usize..ENDPOINTS.len(),
        query in "[a-zA-Z=&%0-9+._~-]{0,80}",
    ) {
        send(endpoint, b"{}".to_vec(), query, String::new(), true);
    }

    #[test]
    fn hostile_credentials_never_escape_the_apis_error_shape(
        endpoint in 0usize..ENDPOINTS.len(),
        header in header_value(),
        body in body(),
    ) {
        send(endpoint, body, String::new(), header, false);
    }
}
