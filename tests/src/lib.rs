//! Shared helpers for the end-to-end tests: [`spawn_app`] starts a sandbox on a free
//! loopback port inside the test's runtime and returns a [`TestApp`] with one method per
//! request the tests make, plus direct handles on the app's clock and store.
//! [`receiver`] is a loopback webhook receiver; [`browser`] a headless Chromium.

pub mod browser;
pub mod receiver;

use std::net::SocketAddr;

use linkbox::{App, Options, Settings};
use reqwest::Method;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running sandbox and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The app itself: its clock and store, for what the HTTP API cannot (yet) reach.
    pub app: App,
    pub client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

/// A sandbox in open mode with the documented rate limits.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A sandbox with the given options (config file, rate limits, URL bases).
pub async fn spawn_app_with(options: Options) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let app = App::new(Settings::resolve(options, addr));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(linkbox::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        app,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client"),
        _shutdown: shutdown,
    }
}

/// A well-formed sandbox key, distinct for each `n`.
pub fn test_key(n: u32) -> String {
    format!("m2m_test_{n:0>32}")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every value of a repeated header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// `data` of an M2M success envelope.
    pub fn data(&self) -> &Value {
        &self.json["data"]
    }
}

/// Asserts an M2M error: status, `application/json`, and the exact envelope.
#[track_caller]
pub fn assert_m2m_error(reply: &Reply, status: u16, code: &str, message: &str) {
    assert_eq!(reply.status, status, "status of {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "content type of {reply:?}"
    );
    assert_eq!(
        reply.json,
        serde_json::json!({"success": false, "error": {"code": code, "message": message}}),
        "body of {reply:?}"
    );
}

/// Asserts that `reply`'s body validates against the committed schema `schemas/{path}`.
#[track_caller]
pub fn assert_matches_schema(reply: &Reply, path: &str) {
    assert_json_matches_schema(&reply.json, path);
}

/// Asserts that `json` validates against the committed schema `schemas/{path}`.
#[track_caller]
pub fn assert_json_matches_schema(json: &Value, path: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(json)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{path} rejects {json}:\n{}",
        errors.join("\n")
    );
}

/// Asserts a Leaf problem: status, `application/problem+json`, and the exact JHipster fields
/// (`type` problem-with-message, `title`, `status`, `path`, `message: error.http.<status>`).
#[track_caller]
pub fn assert_leaf_problem(reply: &Reply, status: u16, title: &str, path: &str) {
    assert_eq!(reply.status, status, "status of {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "content type of {reply:?}"
    );
    let body = &reply.json;
    assert_eq!(
        body["type"], "https://www.jhipster.tech/problem/problem-with-message",
        "type of {reply:?}"
    );
    assert_eq!(body["title"], title, "title of {reply:?}");
    assert_eq!(body["status"], status, "status field of {reply:?}");
    assert_eq!(body["path"], path, "path of {reply:?}");
    assert_eq!(
        body["message"],
        format!("error.http.{status}"),
        "message of {reply:?}"
    );
    assert!(body["detail"].is_string(), "detail of {reply:?}");
}

/// Asserts a Leaf validation problem and returns its `fieldErrors` as `field` names.
#[track_caller]
pub fn assert_leaf_violations(reply: &Reply, path: &str) -> Vec<String> {
    assert_eq!(reply.status, 400, "status of {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "content type of {reply:?}"
    );
    let body = &reply.json;
    assert_eq!(
        body["type"], "https://www.jhipster.tech/problem/constraint-violation",
        "type of {reply:?}"
    );
    assert_eq!(
        body["title"], "Method argument not valid",
        "title of {reply:?}"
    );
    assert_eq!(body["message"], "error.validation", "message of {reply:?}");
    assert_eq!(body["path"], path, "path of {reply:?}");
    body["fieldErrors"]
        .as_array()
        .expect("fieldErrors")
        .iter()
        .map(|error| {
            assert!(error["objectName"].is_string(), "objectName in {reply:?}");
            assert!(error["message"].is_string(), "message in {reply:?}");
            error["field"].as_str().expect("field").to_owned()
        })
        .collect()
}

impl TestApp {
    /// `POST /api/authenticate` for `username` (any password works in open mode); asserts
    /// the 200 and returns the token.
    pub async fn authenticate(&self, username: &str) -> String {
        let reply = self
            .send(
                Method::POST,
                "/api/authenticate",
                &[("content-type", "application/json")],
                Some(
                    serde_json::to_vec(
                        &serde_json::json!({"username": username, "password": "secret"}),
                    )
                    .expect("json"),
                ),
            )
            .await;
        assert_eq!(reply.status, 200, "authenticate {username}: {reply:?}");
        reply.json["id_token"]
            .as_str()
            .expect("id_token")
            .to_owned()
    }

    /// A Leaf request with `Authorization: Bearer token` and, when given, a JSON body.
    pub async fn leaf(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Reply {
        let authorization = format!("Bearer {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|body| serde_json::to_vec(body).expect("json"));
        self.send(method, path, &headers, body).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends any request: `headers` as given, `body` raw.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request reaches the sandbox");
        read(response).await
    }

    /// Sends a request the test built itself, for what [`TestApp::send`] cannot say (a
    /// header value that is not text).
    pub async fn send_built(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches the sandbox");
        read(response).await
    }

    /// An M2M request with `X-API-Key: key` and, when given, a JSON body.
    pub async fn m2m(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let mut headers = vec![("x-api-key", key)];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|body| serde_json::to_vec(body).expect("json"));
        self.send(method, path, &headers, body).await
    }

    /// `POST /partner/links`.
    pub async fn create_link(&self, key: &str, body: &Value) -> Reply {
        self.m2m(Method::POST, "/partner/links", key, Some(body))
            .await
    }

    /// `POST /partner/links` for `reference_id` with nothing else; asserts the 201 and
    /// returns `data`.
    pub async fn create_link_for(&self, key: &str, reference_id: &str) -> Value {
        let reply = self
            .create_link(key, &serde_json::json!({"referenceId": reference_id}))
            .await;
        assert_eq!(reply.status, 201, "create {reference_id}: {reply:?}");
        reply.json["data"].clone()
    }

    /// `GET /partner/links?{query}`.
    pub async fn list_links(&self, key: &str, query: &str) -> Reply {
        self.m2m(Method::GET, &format!("/partner/links?{query}"), key, None)
            .await
    }

    /// `GET /partner/links/{id}`.
    pub async fn get_link(&self, key: &str, link_id: &str) -> Reply {
        self.m2m(Method::GET, &format!("/partner/links/{link_id}"), key, None)
            .await
    }

    /// `POST /partner/links/{id}/revoke`, with an optional body.
    pub async fn revoke_link(&self, key: &str, link_id: &str, body: Option<&Value>) -> Reply {
        self.m2m(
            Method::POST,
            &format!("/partner/links/{link_id}/revoke"),
            key,
            body,
        )
        .await
    }

    /// `POST /_sandbox/m2m/links/{id}/open` as `key`'s partner, without a device body.
    pub async fn open_link(&self, key: &str, link_id: &str) -> Reply {
        self.control(
            Method::POST,
            &format!("/m2m/links/{link_id}/open"),
            Some(key),
            None,
        )
        .await
    }

    /// `POST /_sandbox/m2m/links/{id}/operation` with `body` as `key`'s partner.
    pub async fn create_operation(&self, key: &str, link_id: &str, body: &Value) -> Reply {
        self.control(
            Method::POST,
            &format!("/m2m/links/{link_id}/operation"),
            Some(key),
            Some(body),
        )
        .await
    }

    /// `PUT /partner/data-requests/{id}`.
    pub async fn fulfil_data_request(&self, key: &str, id: &str, body: &Value) -> Reply {
        self.m2m(
            Method::PUT,
            &format!("/partner/data-requests/{id}"),
            key,
            Some(body),
        )
        .await
    }

    /// A control API request (`/_sandbox/...`) with an optional `X-API-Key` and JSON body.
    pub async fn control(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut headers = Vec::new();
        if let Some(key) = key {
            headers.push(("x-api-key", key));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|body| serde_json::to_vec(body).expect("json"));
        self.send(method, &format!("/_sandbox{path}"), &headers, body)
            .await
    }

    /// `GET /_sandbox/webhooks` for `key`'s partner; asserts the 200.
    pub async fn deliveries(&self, key: &str) -> Vec<Value> {
        let reply = self
            .control(Method::GET, "/webhooks", Some(key), None)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json["deliveries"]
            .as_array()
            .expect("deliveries")
            .clone()
    }

    /// Polls the delivery list until `check` holds for the first delivery of `event` (at
    /// most 10 s; the engine runs beside the test).
    pub async fn wait_for_delivery(
        &self,
        key: &str,
        event: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self
                .deliveries(key)
                .await
                .into_iter()
                .find(|delivery| delivery["event"] == event);
            if let Some(delivery) = found.filter(|delivery| check(delivery)) {
                return delivery;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "delivery of {event} never got there"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Polls the delivery list until it is not empty and none is pending; returns it.
    pub async fn settled_deliveries(&self, key: &str) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let deliveries = self.deliveries(key).await;
            if !deliveries.is_empty()
                && deliveries
                    .iter()
                    .all(|delivery| delivery["status"] != "pending")
            {
                return deliveries;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliveries still pending: {deliveries:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// `POST /_sandbox/webhooks/{id}/replay` as `key`; the reply, whatever it is.
    pub async fn replay(&self, key: &str, id: &str) -> Reply {
        self.control(
            Method::POST,
            &format!("/webhooks/{id}/replay"),
            Some(key),
            None,
        )
        .await
    }

    /// `POST /_sandbox/clock {"advanceSeconds": seconds}`; asserts the 200.
    pub async fn move_clock(&self, key: &str, seconds: i64) {
        let reply = self
            .control(
                Method::POST,
                "/clock",
                Some(key),
                Some(&serde_json::json!({"advanceSeconds": seconds})),
            )
            .await;
        assert_eq!(reply.status, 200, "move the clock: {reply:?}");
    }

    /// `POST /partner/webhooks/config/regenerate-secret`; returns the new secret.
    pub async fn regenerate_secret(&self, key: &str) -> String {
        let reply = self
            .m2m(
                Method::POST,
                "/partner/webhooks/config/regenerate-secret",
                key,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "regenerate: {reply:?}");
        reply.json["webhookSecret"]
            .as_str()
            .expect("a secret")
            .to_owned()
    }

    /// Advances the sandbox clock.
    pub fn advance_clock(&self, seconds: i64) {
        self.app
            .clock
            .advance(time::Duration::seconds(seconds))
            .expect("in range");
    }
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}
