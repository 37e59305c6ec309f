//! Several `linkbox serve --state postgres://…` processes sharing one sandbox: the real
//! binary, two or three replicas on a fresh database each test, driven over loopback, with
//! every promise checked across them: reads after writes, one active link per reference,
//! Leaf usage never past `maxUsage`, each webhook attempt made once, one clock, `kill -9`
//! losing nothing acknowledged, restarts, and the database going away and coming back.
//!
//! They need a PostgreSQL server: `LINKBOX_TEST_POSTGRES` names one
//! (`eval "$(.ci/postgres.sh start)"` starts a throwaway cluster and sets it). Without it
//! each test says it was skipped, unless `LINKBOX_POSTGRES_TESTS=1` (as CI sets), which
//! makes a missing server a failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use warp::Filter;

fn key(n: usize) -> String {
    format!("m2m_test_{n:0>32}")
}

/// The server tests run against, or `None` (and a line saying the test was skipped).
fn server() -> Option<String> {
    match std::env::var("LINKBOX_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("LINKBOX_POSTGRES_TESTS").is_ok_and(|value| value == "1") => {
            panic!("LINKBOX_POSTGRES_TESTS=1 but LINKBOX_TEST_POSTGRES names no server")
        }
        _ => {
            eprintln!(
                "skipped: no PostgreSQL server (set LINKBOX_TEST_POSTGRES, e.g. with \
                 eval \"$(.ci/postgres.sh start)\")"
            );
            None
        }
    }
}

/// A fresh, empty database on the test server; its URL.
async fn fresh_database(server: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "replicas_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(connection);
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .expect("database created");
    }
    let (base, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

/// One `linkbox serve` process on a free loopback port.
struct Replica {
    child: Child,
    base: String,
    client: reqwest::Client,
    /// Where its log (warnings and errors) goes; removed with the replica.
    log: tempfile::NamedTempFile,
}

impl Replica {
    fn start(database: &str, extra: &[&str]) -> Replica {
        Replica::try_start(database, extra).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a replica; `Err` holds what it printed when it exited instead.
    fn try_start(database: &str, extra: &[&str]) -> Result<Replica, String> {
        // Rate limits off unless a test asks for them.
        let limits: &[&str] = if extra.contains(&"--rate-limits") {
            &[]
        } else {
            &["--rate-limits", "off"]
        };
        let log = tempfile::Builder::new()
            .prefix("linkbox-replica-")
            .suffix(".log")
            .tempfile()
            .expect("a log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkbox"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(limits)
            .args(["--state", database])
            .args(extra)
            .env("LINKBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log.as_file().try_clone().expect("a log file"))
            .spawn()
            .expect("linkbox starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let status = child.wait().expect("exited");
            let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
            return Err(format!("status {:?}; stderr: {stderr}", status.code()));
        };
        Ok(Replica {
            base: base.to_owned(),
            child,
            log,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        })
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// What it has logged so far.
    fn logged(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The partner's whole state, as `GET /_sandbox/snapshot` gives it.
    async fn snapshot(&self, key: &str) -> Value {
        let (status, snapshot, _) = self
            .send(
                reqwest::Method::GET,
                "/_sandbox/snapshot",
                &[("x-api-key", key)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{snapshot}");
        snapshot
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    async fn m2m(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, body, _) = self.send(method, path, &[("x-api-key", key)], body).await;
        (status, body)
    }

    async fn create_link(&self, key: &str, reference_id: &str) -> (u16, Value) {
        self.m2m(
            reqwest::Method::POST,
            "/partner/links",
            key,
            Some(json!({"referenceId": reference_id})),
        )
        .await
    }

    /// `GET /partner/links/{id}` as `key`'s partner.
    async fn link(&self, key: &str, id: &str) -> (u16, Value) {
        self.m2m(
            reqwest::Method::GET,
            &format!("/partner/links/{id}"),
            key,
            None,
        )
        .await
    }

    /// `GET /partner/links` of `key`'s partner: status, body and headers, whatever they are.
    async fn list_answer(&self, key: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        self.send(
            reqwest::Method::GET,
            "/partner/links",
            &[("x-api-key", key)],
            None,
        )
        .await
    }

    /// Every link id of `key`'s partner.
    async fn link_ids(&self, key: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for page in 1.. {
            let (status, body) = self
                .m2m(
                    reqwest::Method::GET,
                    &format!("/partner/links?limit=100&page={page}"),
                    key,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            ids.extend(
                body["data"]["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .map(|item| item["linkId"].as_str().expect("linkId").to_owned()),
            );
            if page
                >= body["data"]["pagination"]["totalPages"]
                    .as_u64()
                    .expect("pages")
            {
                break;
            }
        }
        ids
    }

    async fn authenticate(&self, username: &str) -> String {
        let (status, body, _) = self
            .send(
                reqwest::Method::POST,
                "/api/authenticate",
                &[],
                Some(json!({"username": username, "password": "secret"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id_token"].as_str().expect("id_token").to_owned()
    }

    /// The status and body of a request that must be answered at once (within 5 s), not
    /// wait for a row another session holds.
    async fn at_once(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let started = std::time::Instant::now();
        let (status, answer, _) = self.send(method.clone(), path, headers, body).await;
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(5),
            "{method} {path} waited {waited:?}: {answer}"
        );
        (status, answer)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_writes_every_other_reads_at_once() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let key = key(1);
    for round in 0..6 {
        let writer = &replicas[round % 3];
        let (status, created) = writer.create_link(&key, &format!("ref-{round}")).await;
        assert_eq!(status, 201, "{created}");
        let id = created["data"]["linkId"].as_str().expect("linkId");
        for reader in &replicas {
            let (status, got) = reader.link(&key, id).await;
            assert_eq!(status, 200, "{got}");
            assert_eq!(got["data"]["referenceId"], format!("ref-{round}"));
        }
        // A revoke on the next replica is seen by the one after it.
        let (status, revoked) = replicas[(round + 1) % 3]
            .m2m(
                reqwest::Method::POST,
                &format!("/partner/links/{id}/revoke"),
                &key,
                Some(json!({"reason": "test"})),
            )
            .await;
        assert_eq!(status, 200, "{revoked}");
        let (_, got) = replicas[(round + 2) % 3].link(&key, id).await;
        assert_eq!(got["data"]["status"], "revoked", "{got}");
    }
    for replica in &replicas {
        assert_eq!(replica.link_ids(&key).await.len(), 6);
    }
    // Another partner sees none of them, on any replica.
    assert!(replicas[1].link_ids(&self::key(2)).await.is_empty());
}

/// A snapshot restored through one replica is the partner's state on every replica, its
/// webhook URL included (the partner's own row, written with its links), and a replica
/// started afterwards reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restored_on_one_replica_is_read_whole_on_every_other() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..2).map(|_| Replica::start(&database, &[])).collect();
    let key = key(3);
    set_webhook(&replicas[0], &key, "http://127.0.0.1:9/first").await;
    let (status, created) = replicas[0].create_link(&key, "kept").await;
    assert_eq!(status, 201, "{created}");
    let mut snapshot = replicas[0].snapshot(&key).await;
    snapshot["webhookUrl"] = json!("http://127.0.0.1:9/restored");
    let (status, restored, _) = replicas[0]
        .send(
            reqwest::Method::PUT,
            "/_sandbox/snapshot",
            &[("x-api-key", &key)],
            Some(snapshot.clone()),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(replicas[1].snapshot(&key).await, snapshot);
    let fresh = Replica::start(&database, &[]);
    assert_eq!(fresh.snapshot(&key).await, snapshot);
}

/// A create whose body is large is worked on off the serving thread, and every replica
/// reads what it wrote the moment it is answered, as for any create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_write_is_in_its_requests_transaction() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..2).map(|_| Replica::start(&database, &[])).collect();
    let key = key(3);
    let metadata: serde_json::Map<String, serde_json::Value> = (0..4_000)
        .map(|i| (format!("key{i:04}"), json!(format!("value number {i}"))))
        .collect();
    for round in 0..4 {
        let body = json!({"referenceId": format!("heavy-{round}"), "metadata": metadata});
        assert!(body.to_string().len() > 64 * 1024);
        let (status, created) = replicas[round % 2]
            .m2m(reqwest::Method::POST, "/partner/links", &key, Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["data"]["linkId"].as_str().expect("linkId");
        let (status, got) = replicas[(round + 1) % 2].link(&key, id).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["data"]["metadata"]["key3999"], "value number 3999");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_for_one_reference_on_three_replicas_make_exactly_one_link() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Arc<Vec<Replica>> =
        Arc::new((0..3).map(|_| Replica::start(&database, &[])).collect());
    let key = key(3);
    for reference in ["first-write-of-a-new-partner", "alpha", "beta"] {
        let mut racers = Vec::new();
        for n in 0..24 {
            let replicas = replicas.clone();
            let key = key.clone();
            racers.push(tokio::spawn(async move {
                replicas[n % 3].create_link(&key, reference).await
            }));
        }
        let mut statuses = HashMap::new();
        for racer in racers {
            let (status, body) = racer.await.expect("racer");
            if status == 409 {
                assert_eq!(body["error"]["code"], "ACTIVE_LINK_EXISTS", "{body}");
            }
            *statuses.entry(status).or_insert(0) += 1;
        }
        assert_eq!(
            statuses,
            HashMap::from([(201, 1), (409, 23)]),
            "reference {reference}"
        );
    }
    for replica in replicas.iter() {
        assert_eq!(replica.link_ids(&key).await.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_accesses_of_a_leaf_link_never_pass_max_usage() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Arc<Vec<Replica>> =
        Arc::new((0..3).map(|_| Replica::start(&database, &[])).collect());
    // The token one replica signs is good on every other.
    let token = replicas[0].authenticate("farmco").await;
    let authorization = format!("Bearer {token}");
    let (status, link, _) = replicas[1]
        .send(
            reqwest::Method::POST,
            "/services/widgets/api/magic-link/provider",
            &[("authorization", &authorization)],
            Some(json!({"externalId": "f1", "name": "Ann"})),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let id = link["id"].as_str().expect("id").to_owned();
    let page = url::Url::parse(link["link"].as_str().expect("link"))
        .expect("a URL")
        .path()
        .to_owned();
    let mut racers = Vec::new();
    for n in 0..12 {
        let (replicas, page) = (replicas.clone(), page.clone());
        racers.push(tokio::spawn(async move {
            replicas[n % 3]
                .send(reqwest::Method::GET, &page, &[], None)
                .await
                .0
        }));
    }
    let mut statuses = HashMap::new();
    for racer in racers {
        *statuses.entry(racer.await.expect("racer")).or_insert(0) += 1;
    }
    assert_eq!(statuses, HashMap::from([(200, 3), (410, 9)]));
    let (_, view, _) = replicas[2]
        .send(
            reqwest::Method::GET,
            &format!("/services/widgets/api/magic-link/provider/{id}"),
            &[("authorization", &authorization)],
            None,
        )
        .await;
    assert_eq!(view["usageCount"], 3, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_moved_on_one_replica_is_read_by_the_others_within_a_second() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    for change in [
        json!({"frozen": true}),
        json!({"setTo": "2031-05-06T07:08:09Z"}),
    ] {
        let (status, moved, _) = replicas[0]
            .send(reqwest::Method::POST, "/_sandbox/clock", &[], Some(change))
            .await;
        assert_eq!(status, 200, "{moved}");
    }
    for replica in &replicas[1..] {
        let (status, read, _) = replica
            .send(reqwest::Method::GET, "/_sandbox/clock", &[], None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(read["now"], "2031-05-06T07:08:09.000Z", "{read}");
        assert_eq!(read["frozen"], true);
    }
    // What a replica stamps comes from the shared clock too.
    let (status, created) = replicas[2].create_link(&key(4), "stamped").await;
    assert_eq!(status, 201);
    assert_eq!(created["data"]["createdAt"], "2031-05-06T07:08:09.000Z");
}

/// A webhook receiver counting what it gets; answers the statuses in `answers` first, then
/// 200, or hangs while `hang` is set, or holds its answer while `hold` is set.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    hang: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    answers: Arc<Mutex<std::collections::VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let hang = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let route = {
            let (received, hang, answers) = (received.clone(), hang.clone(), answers.clone());
            let hold = hold.clone();
            warp::body::bytes().then(move |body: bytes::Bytes| {
                let (received, hang, answers) = (received.clone(), hang.clone(), answers.clone());
                let hold = hold.clone();
                async move {
                    received
                        .lock()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    if hang.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    while hold.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let status = answers.lock().pop_front().unwrap_or(200);
                    warp::reply::with_status(
                        warp::reply(),
                        warp::http::StatusCode::from_u16(status)
                            .unwrap_or(warp::http::StatusCode::OK),
                    )
                }
            })
        };
        tokio::spawn(linkbox::http::serve(
            listener,
            route.map(warp::Reply::into_response).boxed(),
            std::future::pending(),
        ));
        Receiver {
            url: format!("http://{addr}/hooks"),
            received,
            hang,
            hold,
            answers,
        }
    }

    /// How many requests each link's `link.created` got.
    fn created_per_link(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for body in self.received.lock().iter() {
            if body["event"] == "link.created" {
                *counts
                    .entry(
                        body["data"]["linkId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                    .or_insert(0) += 1;
            }
        }
        counts
    }
}

async fn set_webhook(replica: &Replica, key: &str, url: &str) {
    let (status, body) = replica
        .m2m(
            reqwest::Method::PUT,
            "/_sandbox/m2m/webhook-config",
            key,
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(status, 200, "set webhook: {body}");
    assert_eq!(body["url"], url);
}

/// Waits until `check` holds, for up to `seconds`.
async fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_attempt_is_made_once_while_every_replica_runs() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let receiver = Receiver::start().await;
    // Three partners creating at once through every replica: each replica reads the others'
    // deliveries back while making its own, under the seqs the others gave them.
    let keys = [key(5), key(6), key(7)];
    for key in &keys {
        set_webhook(&replicas[0], key, &receiver.url).await;
    }
    let creates = (0..30).map(|n| {
        let (replica, key) = (&replicas[(n / 3) % 3], &keys[n % 3]);
        async move { replica.create_link(key, &format!("hook-{n}")).await }
    });
    let mut ids = Vec::new();
    for (status, created) in futures_util::future::join_all(creates).await {
        assert_eq!(status, 201, "{created}");
        ids.push(created["data"]["linkId"].as_str().expect("id").to_owned());
    }
    assert!(
        eventually(10, || receiver.created_per_link().len() == ids.len()).await,
        "every link.created arrives: {:?}",
        receiver.created_per_link()
    );
    // Every replica has now read every delivery back; give them time to (wrongly) send again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = receiver.created_per_link();
    for id in &ids {
        assert_eq!(counts.get(id), Some(&1), "link.created of {id}: {counts:?}");
    }
    // Every replica shows each delivery delivered, with one attempt.
    for (replica, key) in replicas
        .iter()
        .flat_map(|replica| keys.iter().map(move |key| (replica, key)))
    {
        let (status, deliveries, _) = replica
            .send(
                reqwest::Method::GET,
                "/_sandbox/webhooks?limit=100",
                &[("x-api-key", key)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{deliveries}");
        let items = deliveries["deliveries"]
            .as_array()
            .cloned()
            .expect("a list of deliveries");
        assert_eq!(items.len(), ids.len() / keys.len(), "{deliveries}");
        for item in items {
            assert_eq!(item["status"], "delivered", "{item}");
            assert_eq!(item["attempts"].as_array().map(Vec::len), Some(1), "{item}");
        }
    }
}

/// A tenant's reset through one replica, while another replica's attempt of one of its
/// deliveries is in flight, forgets the delivery for good: the attempt's outcome, written
/// when it ends, put the delivery back (retried after the reset, listed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_not_undone_by_an_attempt_in_flight_on_another_replica() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let receiver = Receiver::start().await;
    let tenant = key(50);
    set_webhook(&replicas[0], &tenant, &receiver.url).await;
    receiver.hold.store(true, Ordering::SeqCst);
    receiver.answers.lock().push_back(500);
    assert_eq!(replicas[0].create_link(&tenant, "held").await.0, 201);
    assert!(
        eventually(10, || receiver.received.lock().len() == 1).await,
        "the attempt arrives"
    );
    let (status, reset, _) = replicas[1]
        .send(
            reqwest::Method::POST,
            "/_sandbox/reset",
            &[("x-api-key", &tenant)],
            None,
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    receiver.hold.store(false, Ordering::SeqCst);
    // Past the catch-up of both replicas.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for replica in &replicas {
        let (status, deliveries, _) = replica
            .send(
                reqwest::Method::GET,
                "/_sandbox/webhooks",
                &[("x-api-key", &tenant)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{deliveries}");
        assert_eq!(deliveries["deliveries"], json!([]), "{deliveries}");
    }
    let restarted = Replica::start(&database, &[]);
    let (_, deliveries, _) = restarted
        .send(
            reqwest::Method::GET,
            "/_sandbox/webhooks",
            &[("x-api-key", &tenant)],
            None,
        )
        .await;
    assert_eq!(deliveries["deliveries"], json!([]), "{deliveries}");
    assert_eq!(
        receiver.received.lock().len(),
        1,
        "no retry after the reset"
    );
}

/// A retry a tenant's reset forgot is not sent by a replica that has not caught up on the
/// reset yet: deliveries waiting out a failed attempt, their partners reset through a
/// second replica and the clock moved past their retries through a third at once. The
/// first replica's background pass read the clock before it read the partners back, and
/// its engine claimed the retries from its own copy in between, and sent them after the
/// resets were answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_a_reset_forgot_is_sent_by_no_replica_behind_the_reset() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let receiver = Receiver::start().await;
    let tenants: Vec<String> = (0..4).map(|n| key(110 + n)).collect();
    for tenant in &tenants {
        set_webhook(&replicas[0], tenant, &receiver.url).await;
        receiver.answers.lock().push_back(500);
        assert_eq!(replicas[0].create_link(tenant, "retried").await.0, 201);
    }
    assert!(
        eventually(10, || receiver.received.lock().len() == tenants.len()).await,
        "every first attempt arrives, and fails"
    );
    // Both replicas hold the deliveries waiting for their retries.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resets = tenants.iter().map(|tenant| {
        let replica = &replicas[1];
        async move {
            let headers = [("x-api-key", tenant.as_str())];
            let (status, reset, _) = replica
                .send(reqwest::Method::POST, "/_sandbox/reset", &headers, None)
                .await;
            assert_eq!(status, 200, "{reset}");
        }
    });
    futures_util::future::join_all(resets).await;
    let (status, moved, _) = replicas[2]
        .send(
            reqwest::Method::POST,
            "/_sandbox/clock",
            &[],
            Some(json!({"advanceSeconds": 3600})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received.lock().len(),
        tenants.len(),
        "no retry after the resets"
    );
}

/// Seeds of one new Leaf account through two replicas at once: each request makes the
/// account's row before it locks every row, so the seeds take turns, and every link and
/// user acknowledged is listed (with the same position given twice, a list showed three
/// quarters of them, and the database could deadlock into a 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_seeds_of_a_new_leaf_account_list_everything_they_made() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..2).map(|_| Replica::start(&database, &[])).collect();
    let token = replicas[0].authenticate("seeded-farm").await;
    let bearer = format!("Bearer {token}");
    let seeds = (0..4).map(|n| {
        let (replica, bearer) = (&replicas[n % 2], bearer.as_str());
        async move {
            replica
                .send(
                    reqwest::Method::POST,
                    "/_sandbox/seed",
                    &[("authorization", bearer)],
                    Some(serde_json::json!({"api": "leaf", "count": 25, "rngSeed": n})),
                )
                .await
        }
    });
    let mut made = std::collections::BTreeSet::new();
    for (status, seeded, _) in futures_util::future::join_all(seeds).await {
        assert_eq!(status, 201, "{seeded}");
        for id in seeded["created"].as_array().expect("ids") {
            made.insert(id.as_str().expect("id").to_owned());
        }
    }
    assert_eq!(made.len(), 100);
    for replica in &replicas {
        let mut listed = std::collections::BTreeSet::new();
        for kind in ["provider", "authentication", "file-upload"] {
            let (status, links, _) = replica
                .send(
                    reqwest::Method::GET,
                    &format!("/services/widgets/api/magic-link/{kind}"),
                    &[("authorization", &bearer)],
                    None,
                )
                .await;
            assert_eq!(status, 200, "{links}");
            for link in links.as_array().expect("a list") {
                listed.insert(link["id"].as_str().expect("id").to_owned());
            }
        }
        assert_eq!(listed, made, "every seeded link listed");
        let (status, _, headers) = replica
            .send(
                reqwest::Method::GET,
                "/services/usermanagement/api/users?size=1",
                &[("authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-total-count"], "100", "every seeded user counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_loses_nothing_it_acknowledged() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let doomed = Replica::start(&database, &[]);
    let survivor = Arc::new(Replica::start(&database, &[]));
    let doomed = Arc::new(Mutex::new(Some(doomed)));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (doomed, survivor, acknowledged) =
            (doomed.clone(), survivor.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..40 {
                let reference = format!("w{writer}-{n}");
                let base = if writer % 2 == 0 {
                    doomed.lock().as_ref().map(|replica| replica.base.clone())
                } else {
                    None
                };
                let outcome = match base {
                    Some(base) => {
                        let response = reqwest::Client::builder()
                            .no_proxy()
                            .build()
                            .expect("client")
                            .post(format!("{base}/partner/links"))
                            .header("x-api-key", key(6))
                            .json(&json!({"referenceId": reference}))
                            .send()
                            .await;
                        match response {
                            Ok(response) if response.status() == 201 => response
                                .json::<Value>()
                                .await
                                .ok()
                                .map(|body| body["data"]["linkId"].clone()),
                            _ => None,
                        }
                    }
                    None => {
                        let (status, body) = survivor.create_link(&key(6), &reference).await;
                        assert_eq!(status, 201, "{body}");
                        Some(body["data"]["linkId"].clone())
                    }
                };
                if let Some(Value::String(id)) = outcome {
                    acknowledged.lock().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(replica) = doomed.lock().take() {
        replica.kill();
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let listed = survivor.link_ids(&key(6)).await;
    let acknowledged = acknowledged.lock().clone();
    assert!(
        acknowledged.len() >= 80,
        "the survivor's writes: {}",
        acknowledged.len()
    );
    for id in &acknowledged {
        assert!(listed.contains(id), "acknowledged {id} was lost");
    }
    // A replica started now reads the same.
    let fresh = Replica::start(&database, &[]);
    let mut again = fresh.link_ids(&key(6)).await;
    let mut listed = listed;
    again.sort();
    listed.sort();
    assert_eq!(again, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_of_a_replica_killed_mid_attempt_passes_to_another() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let receiver = Receiver::start().await;
    receiver.hang.store(true, Ordering::SeqCst);
    let key = key(7);
    let first = Replica::start(&database, &[]);
    set_webhook(&first, &key, &receiver.url).await;
    let (status, created) = first.create_link(&key, "claimed").await;
    assert_eq!(status, 201);
    let id = created["data"]["linkId"].as_str().expect("id").to_owned();
    assert!(
        eventually(5, || receiver.received.lock().len() == 1).await,
        "the first attempt arrives"
    );
    first.kill();
    receiver.hang.store(false, Ordering::SeqCst);
    let second = Replica::start(&database, &[]);
    // The dead replica stops renewing its claim, which lapses within the 5 s lease (not the
    // 30 s receiver timeout), and the second replica makes the attempt.
    assert!(
        eventually(12, || receiver.created_per_link().get(&id) == Some(&2)).await,
        "the attempt is made again once the claim lapses: {:?}",
        receiver.created_per_link()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.created_per_link().get(&id), Some(&2));
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_restarted_finds_everything() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let (a, b) = (
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    );
    let mut ids = Vec::new();
    for n in 0..10 {
        let replica = if n % 2 == 0 { &a } else { &b };
        let (status, created) = replica.create_link(&key(8), &format!("kept-{n}")).await;
        assert_eq!(status, 201);
        ids.push(created["data"]["linkId"].as_str().expect("id").to_owned());
    }
    let token = b.authenticate("keeper").await;
    a.kill();
    b.kill();
    let c = Replica::start(&database, &[]);
    let mut listed = c.link_ids(&key(8)).await;
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    // The Leaf token signed before the restart is still good.
    let (status, body, _) = c
        .send(
            reqwest::Method::GET,
            "/services/widgets/api/magic-link/provider",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_stops_the_start_naming_its_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let error = Replica::try_start(&format!("postgres://linkbox@127.0.0.1:{port}/sandbox"), &[])
        .err()
        .expect("refused");
    assert!(error.contains("status Some(1)"), "{error}");
    assert!(
        error.contains(&format!(
            "cannot reach the PostgreSQL database at 127.0.0.1:{port}/sandbox"
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_a_newer_schema_is_refused_naming_both_versions() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    drop(Replica::start(&database, &[]));
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE linkbox_meta SET schema_version = 99")
        .await
        .expect("bumped");
    let error = Replica::try_start(&database, &[]).err().expect("refused");
    assert!(error.contains("status Some(1)"), "{error}");
    assert!(
        error.contains(&format!(
            "has linkbox schema version 99, newer than the {} this linkbox knows",
            linkbox::persist::shared::LATEST
        )),
        "{error}"
    );
}

/// A database of schema version 2 (before `leaf_accounts`) is migrated at start with every
/// row kept: its links and its Leaf accounts (one of a fault alone among them), which count
/// against `--max-tenants` as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_an_older_schema_is_migrated_keeping_every_row() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--max-tenants", "2"];
    let old = Replica::start(&database, &flags);
    let (status, created) = old.create_link(&key(7), "kept").await;
    assert_eq!(status, 201, "{created}");
    let token = old.authenticate("older").await;
    let faulty = old.authenticate("faulty").await;
    let newer = old.authenticate("newer").await;
    assert_eq!(leaf_user(&old, &token).await, 201);
    assert_eq!(
        leaf_fault(&old, &faulty).await,
        201,
        "an account of a fault alone"
    );
    old.kill();
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE leaf_accounts; UPDATE tenants SET version = version + 1; \
             UPDATE linkbox_meta SET schema_version = 2",
        )
        .await
        .expect("taken back to version 2");

    let new = Replica::start(&database, &flags);
    assert_eq!(new.link_ids(&key(7)).await.len(), 1);
    assert_eq!(
        leaf_user(&new, &newer).await,
        403,
        "the accounts of version 2 still fill both places"
    );
    let auth = format!("Bearer {token}");
    let (status, users, _) = new
        .send(
            reqwest::Method::GET,
            "/services/usermanagement/api/users",
            &[("authorization", auth.as_str())],
            None,
        )
        .await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    let version: i32 = client
        .query_one("SELECT schema_version FROM linkbox_meta", &[])
        .await
        .expect("meta")
        .get(0);
    assert_eq!(version, linkbox::persist::shared::LATEST);
    // The account is a tenant by its own row now, not by its user alone: reset through one
    // replica (its user gone), it still fills the place on another that reads it back.
    let (status, reset, _) = new
        .send(
            reqwest::Method::POST,
            "/_sandbox/reset",
            &[("authorization", auth.as_str())],
            None,
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    let other = Replica::start(&database, &flags);
    assert_eq!(leaf_user(&other, &newer).await, 403, "still no place");
}

/// The database's URL, and the address a relay in front of it forwards to.
fn relayable(database: &str) -> (url::Url, std::net::SocketAddr) {
    let url = url::Url::parse(database).expect("URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    )
    .parse()
    .expect("a loopback address");
    (url, upstream)
}

/// `url` reached through the relay listening on `port`.
fn via(url: &url::Url, port: u16) -> String {
    let mut relayed = url.clone();
    relayed.set_port(Some(port)).expect("port");
    relayed.into()
}

/// A TCP relay between the replicas and the database that can be cut and restored.
struct Relay {
    port: u16,
    open: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let open = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        {
            let (open, cut) = (open.clone(), cut.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let cut = cut.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            () = cut.notified() => {}
                        }
                    });
                }
            });
        }
        Relay { port, open, cut }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_means_503_with_retry_after_and_it_recovers_without_a_restart() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let (url, upstream) = relayable(&database);
    let relay = Relay::start(upstream).await;
    let replica = Replica::start(&via(&url, relay.port), &[]);
    let key = key(9);
    let (status, created) = replica.create_link(&key, "before").await;
    assert_eq!(status, 201, "{created}");

    relay.cut();
    let (status, refused) = replica.create_link(&key, "during").await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["success"], false);
    assert_eq!(refused["error"]["code"], "INTERNAL_ERROR");
    // The database's address and its driver's words are the log's, not a caller's.
    let message = refused["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("shared database is unavailable"),
        "{message}"
    );
    assert!(!message.contains("127.0.0.1"), "{message}");
    let (status, read, headers) = replica.list_answer(&key).await;
    assert_eq!(
        status, 503,
        "a read is not served from a copy that may be stale: {read}"
    );
    assert_eq!(
        headers.get("retry-after").map(|value| value.as_bytes()),
        Some(&b"1"[..])
    );
    let token_refused = replica
        .send(
            reqwest::Method::POST,
            "/api/authenticate",
            &[],
            Some(json!({"username": "u", "password": "p"})),
        )
        .await;
    assert_eq!(token_refused.0, 503);
    assert_eq!(
        token_refused.1["status"], 503,
        "a Leaf problem: {}",
        token_refused.1
    );

    relay.restore();
    let mut last = (0, Value::Null);
    for _ in 0..30 {
        last = replica.create_link(&key, "after").await;
        if last.0 == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(last.0, 201, "{}", last.1);
    let ids = replica.link_ids(&key).await;
    assert_eq!(ids.len(), 2, "before and after, not the refused one");
}

/// A tenant's lock held by a session that went quiet (a replica frozen mid-request) holds
/// up another replica's requests for that tenant only so long: then they are a 503 with
/// `Retry-After`, not a wait without end; once the lock is let go, they are served again.
/// A relay to the database that, once armed, passes the next `COMMIT` on and then cuts the
/// connection before the database's answer gets back: a change committed whose answer is
/// lost.
struct CommitCutter {
    port: u16,
    armed: Arc<AtomicBool>,
}

impl CommitCutter {
    /// The simple-query message `tokio_postgres`'s `batch_execute("COMMIT")` sends.
    const COMMIT: &'static [u8] = b"Q\0\0\0\x0bCOMMIT\0";

    async fn start(upstream: std::net::SocketAddr) -> CommitCutter {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let armed = Arc::new(AtomicBool::new(false));
        let relay_armed = armed.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let armed = relay_armed.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let (mut from_client, mut from_server) = (vec![0; 65536], vec![0; 65536]);
                    // The client's last bytes, so a message split across reads is seen.
                    let mut tail: Vec<u8> = Vec::new();
                    loop {
                        tokio::select! {
                            read = client_read.read(&mut from_client) => {
                                let Ok(n @ 1..) = read else { return };
                                tail.extend_from_slice(&from_client[..n]);
                                let commits = tail
                                    .windows(Self::COMMIT.len())
                                    .any(|window| window == Self::COMMIT);
                                let keep = tail.len().saturating_sub(Self::COMMIT.len() - 1);
                                tail.drain(..keep);
                                if server_write.write_all(&from_client[..n]).await.is_err() {
                                    return;
                                }
                                if commits && armed.swap(false, Ordering::SeqCst) {
                                    // The database commits; its answer is never passed on.
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                    return;
                                }
                            }
                            read = server_read.read(&mut from_server) => {
                                let Ok(n @ 1..) = read else { return };
                                if client_write.write_all(&from_server[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        CommitCutter { port, armed }
    }
}

/// A commit whose answer is lost may have been made: the 503 says the change may or may not
/// have been saved (not "nothing was changed", which a client would retry into a 409 for a
/// link it never saw), and the link is indeed there when read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_a_503_saying_it_may_have_been_saved() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let (url, upstream) = relayable(&database);
    let cutter = CommitCutter::start(upstream).await;
    let replica = Replica::start(&via(&url, cutter.port), &[]);
    let key = key(11);
    let (status, created) = replica.create_link(&key, "before").await;
    assert_eq!(status, 201, "{created}");

    cutter.armed.store(true, Ordering::SeqCst);
    let (status, lost) = replica.create_link(&key, "lost").await;
    assert_eq!(status, 503, "{lost}");
    assert!(
        !cutter.armed.load(Ordering::SeqCst),
        "the create's commit was cut: {lost}"
    );
    let message = lost["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("may or may not have been saved"),
        "{message}; {}",
        replica.logged()
    );
    assert!(!message.contains("Nothing was changed"), "{message}");
    let (status, found) = replica
        .m2m(
            reqwest::Method::GET,
            "/partner/links?referenceId=lost",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["data"]["items"].as_array().map(Vec::len),
        Some(1),
        "the database did commit it: {found}"
    );
}

/// A partner of `key` with one link made through `replica`, its tenant row's name, and a
/// database session of the test's own, to hold that row as a frozen replica would.
async fn a_tenant_and_a_session(
    replica: &Replica,
    key: &str,
    database: &str,
) -> (String, tokio_postgres::Client) {
    let (status, created) = replica.create_link(key, "first").await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["linkId"].as_str().expect("linkId");
    let slug = id.split('_').nth(1).expect("the partner's slug in the id");
    let (session, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .expect("a session of its own");
    tokio::spawn(connection);
    (slug.to_owned(), session)
}

/// Holds tenant `slug`'s row in `session`'s open transaction, as a replica frozen
/// mid-request would, until the session rolls back.
async fn hold_row(session: &tokio_postgres::Client, slug: &str) {
    session.batch_execute("BEGIN").await.expect("begin");
    let held = session
        .query(
            "SELECT version FROM tenants WHERE name = $1 FOR UPDATE",
            &[&slug],
        )
        .await
        .expect("the tenant's lock");
    assert_eq!(held.len(), 1, "the tenant {slug} has its row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_frozen_replica_is_waited_for_only_so_long() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let key = key(31);
    let (slug, frozen) = a_tenant_and_a_session(&replica, &key, &database).await;
    let (status, created) = replica.create_link(&key, "page").await;
    assert_eq!(status, 201, "{created}");
    let page = url::Url::parse(created["data"]["url"].as_str().expect("a url")).expect("a URL");
    hold_row(&frozen, &slug).await;

    let started = std::time::Instant::now();
    let (status, refused, headers) = replica.list_answer(&key).await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["success"], false, "{refused}");
    // Busy, not down: the database answered, a lock was held.
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("The sandbox is busy"), "{refused}");
    assert_eq!(
        headers.get("retry-after").map(|value| value.as_bytes()),
        Some(&b"1"[..])
    );
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(20)).contains(&waited),
        "refused after {waited:?}"
    );
    // The end user's page waits for the same lock, and is refused as a page.
    let (page_status, page_answer, page_headers) = replica
        .send(
            reqwest::Method::GET,
            page.path(),
            &[("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(page_status, 503, "{page_answer}");
    let kind = page_headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert!(
        kind.is_some_and(|kind| kind.starts_with("text/html")),
        "{kind:?}"
    );
    assert!(
        page_answer
            .as_str()
            .is_some_and(|page| page.contains("The sandbox is busy")),
        "{page_answer}"
    );
    assert_eq!(
        page_headers
            .get("retry-after")
            .map(|value| value.as_bytes()),
        Some(&b"1"[..])
    );

    frozen.batch_execute("ROLLBACK").await.expect("let go");
    let (status, served) = replica.create_link(&key, "second").await;
    assert_eq!(status, 201, "{served}");
}

/// An end user's page locks only the tenant its link's id names, and a snapshot's restore
/// only its partner: a page view of one partner's widget, or of a Leaf account's page, and
/// a partner's restore are served while another tenant's row is held, where each once
/// locked every tenant and waited 10 s to be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_users_page_and_a_restore_wait_for_no_other_tenant() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let (slug, frozen) = a_tenant_and_a_session(&replica, &key(33), &database).await;
    let (status, created) = replica.create_link(&key(34), "page").await;
    assert_eq!(status, 201, "{created}");
    let widget = url::Url::parse(created["data"]["url"].as_str().expect("a url")).expect("a URL");
    let token = replica.authenticate("pagefarm").await;
    let (status, link, _) = replica
        .send(
            reqwest::Method::POST,
            "/services/widgets/api/magic-link/provider",
            &[("authorization", &format!("Bearer {token}"))],
            Some(json!({"externalId": "f1", "name": "Ann"})),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let leaf = url::Url::parse(link["link"].as_str().expect("link")).expect("a URL");
    let snapshot = replica.snapshot(&key(34)).await;
    hold_row(&frozen, &slug).await;
    // The landing page and a path nothing serves (a browser's favicon after each page)
    // lock no tenant at all.
    for (page, expected) in [
        (widget.path(), 200),
        (leaf.path(), 200),
        ("/", 200),
        ("/favicon.ico", 404),
    ] {
        let (status, answer) = replica
            .at_once(reqwest::Method::GET, page, &[("accept", "text/html")], None)
            .await;
        assert_eq!(status, expected, "{page}: {answer}");
    }
    let started = std::time::Instant::now();
    let (status, restored, _) = replica
        .send(
            reqwest::Method::PUT,
            "/_sandbox/snapshot",
            &[("x-api-key", &key(34))],
            Some(snapshot.clone()),
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored, snapshot);
    assert!(
        waited < Duration::from_secs(5),
        "the restore waited {waited:?}"
    );
    frozen.batch_execute("ROLLBACK").await.expect("let go");
}

/// A stranger's requests that reach no tenant take no lock: a path or a method no route
/// serves, a page whose address names no link, the dashboard's sign-in page, a request every
/// route refuses for its credentials, and a dashboard button's form whose body never comes.
/// Each had locked every tenant on every replica, waiting 10 s behind any one row held, and
/// meanwhile this replica's other requests waited behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_requests_that_reach_no_tenant_take_no_lock() {
    use tokio::io::AsyncWriteExt;
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &["--admin-token", "admin-secret"]);
    let (slug, frozen) = a_tenant_and_a_session(&replica, &key(35), &database).await;
    hold_row(&frozen, &slug).await;
    let html = ("accept", "text/html");
    let short_key = ("x-api-key", "m2m_test_short");
    let forged = ("authorization", "Bearer forged");
    for (method, path, header, expected) in [
        (reqwest::Method::GET, "/_sandbox/nothing", html, 404),
        (reqwest::Method::GET, "/widget/nothing/m2m-basic", html, 404),
        (reqwest::Method::GET, "/widget", html, 404),
        (reqwest::Method::DELETE, "/_sandbox/clock", html, 405),
        (reqwest::Method::GET, "/_sandbox/ui", html, 200),
        (reqwest::Method::GET, "/_sandbox/clock", html, 401),
        (reqwest::Method::POST, "/_sandbox/reset", html, 401),
        (reqwest::Method::GET, "/_sandbox/webhooks", short_key, 401),
        (reqwest::Method::GET, "/_sandbox/webhooks", forged, 401),
        (
            reqwest::Method::GET,
            "/services/usermanagement/api/users",
            html,
            401,
        ),
        (
            reqwest::Method::GET,
            "/services/usermanagement/api/users",
            forged,
            401,
        ),
        (reqwest::Method::GET, "/magic-link/garbage", html, 404),
        (reqwest::Method::GET, "/_sandbox/ui?key=garbage", html, 401),
        (reqwest::Method::GET, "/api/authenticate", html, 405),
        (
            reqwest::Method::GET,
            "/_sandbox/ui/anything?key=garbage",
            html,
            200,
        ),
    ] {
        let (status, answer) = replica.at_once(method.clone(), path, &[header], None).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    // A dashboard button's form locks only its credential's tenant, or nothing.
    let made_up = key(37);
    for form in [
        String::new(),
        format!("key={made_up}&delivery=whd_000000000000"),
    ] {
        let started = std::time::Instant::now();
        let asked = replica
            .client
            .post(format!("{}/_sandbox/ui/replay", replica.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send();
        let answered = tokio::time::timeout(Duration::from_secs(5), asked).await;
        assert!(
            answered.is_ok_and(|answer| answer.is_ok()),
            "the button {form:?} waited {:?}",
            started.elapsed()
        );
    }
    // A Leaf login locks only the account its body names, or none.
    for (login, expected) in [
        (json!({"username": "new-grower", "password": "secret"}), 200),
        (json!({"password": "secret"}), 400),
        (
            json!({"username": "n".repeat(3_000), "password": "secret"}),
            400,
        ),
        // No database names an account by it: bad credentials, not a 503.
        (
            json!({"username": "nul\u{0}user", "password": "secret"}),
            401,
        ),
    ] {
        let (status, answer) = replica
            .at_once(reqwest::Method::POST, "/api/authenticate", &[], Some(login))
            .await;
        assert_eq!(status, expected, "{answer}");
    }
    frozen.batch_execute("ROLLBACK").await.expect("let go");

    // A dashboard button's form promised and never sent holds nothing while it is waited
    // for: another tenant's request on the same replica is answered at once.
    let host = replica.base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(&host).await.expect("connects");
    let head = format!(
        "POST /_sandbox/ui/clock HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nkey="
    );
    socket.write_all(head.as_bytes()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (status, created) = replica.create_link(&key(36), "meanwhile").await;
    assert_eq!(status, 201, "{created}");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the create waited {waited:?}"
    );
    drop(socket);
}

/// A request of no tenant that a fault may strike reads the fault table as the database
/// has it, and commits its journal entry before it is answered: an admin's fault with
/// `times` fires that many times across replicas, one deleted on one replica never fires
/// (nor comes back) on another, and the admin's journal read on another replica lists the
/// request at once. Answered from a stale copy outside any transaction, a deleted fault
/// struck again and was written back, and journal entries showed up late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_request_meets_the_faults_and_the_journal_every_replica_has() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--admin-token", "admin-secret"];
    let replicas = [
        Replica::start(&database, &flags),
        Replica::start(&database, &flags),
    ];
    let admin = [("authorization", "Bearer admin-secret")];
    let page = "/widget/garbage/m2m-basic";
    // Every replica has read the fault table before the fault is added.
    for replica in &replicas {
        let (status, _, _) = replica.send(reqwest::Method::GET, page, &[], None).await;
        assert_eq!(status, 404);
    }
    let (status, fault, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &admin,
            Some(json!({"path": "/widget/**", "status": 503, "times": 2})),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    let mut statuses = Vec::new();
    for n in 0..6 {
        let (status, _, _) = replicas[n % 2]
            .send(reqwest::Method::GET, page, &[], None)
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses, [503, 503, 404, 404, 404, 404]);
    let (status, fault, _) = replicas[1]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &admin,
            Some(json!({"path": "/widget/**", "status": 503})),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    assert_eq!(
        replicas[0]
            .send(reqwest::Method::GET, page, &[], None)
            .await
            .0,
        503
    );
    let (status, _, _) = replicas[1]
        .send(reqwest::Method::DELETE, "/_sandbox/faults", &admin, None)
        .await;
    assert_eq!(status, 204);
    for n in 0..4 {
        let (status, _, _) = replicas[n % 2]
            .send(reqwest::Method::GET, page, &[], None)
            .await;
        assert_eq!(status, 404, "a deleted fault struck on replica {}", n % 2);
    }
    let (_, faults, _) = replicas[0]
        .send(reqwest::Method::GET, "/_sandbox/faults", &admin, None)
        .await;
    assert_eq!(faults["faults"], json!([]), "{faults}");
    // The journal: a request without a key, read at once through the other replica.
    for n in 0..5 {
        let path = format!("/partner/links/stranger-{n}");
        let (status, _, _) = replicas[n % 2]
            .send(reqwest::Method::GET, &path, &[], None)
            .await;
        assert_eq!(status, 401);
        let (status, journal, _) = replicas[(n + 1) % 2]
            .send(
                reqwest::Method::GET,
                &format!("/_sandbox/requests?path={path}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200, "{journal}");
        assert_eq!(journal["total"], 1, "{path}: {journal}");
    }
}

/// A widget's link id is read as its route reads it, percent-decoded, to name the tenant
/// it locks: `link_%70…` is partner `p…`'s link, locked and caught up like any other. Read
/// as sent, it locked nothing, and the page opened a link another replica had just
/// revoked, on a stale copy, undoing the revocation its client was told was saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widget_addressed_percent_encoded_locks_its_partner() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let key = key(35);
    let (status, created) = replicas[0].create_link(&key, "encoded").await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    let flow = created["data"]["flow"]
        .as_str()
        .unwrap_or("m2m-basic")
        .to_owned();
    let as_key = [("x-api-key", key.as_str())];
    let detail = format!("/partner/links/{id}");
    // The other replica holds a copy, then the link is revoked through the first.
    let (status, _, _) = replicas[1]
        .send(reqwest::Method::GET, &detail, &as_key, None)
        .await;
    assert_eq!(status, 200);
    let (status, revoked, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            &format!("{detail}/revoke"),
            &as_key,
            Some(json!({"reason": "fraud"})),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let encoded = id.replacen("link_p", "link_%70", 1);
    let (status, page, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            &format!("/widget/{encoded}/{flow}"),
            &[("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(status, 410, "{page}");
    let (_, read, _) = replicas[0]
        .send(reqwest::Method::GET, &detail, &as_key, None)
        .await;
    assert_eq!(read["data"]["status"], "revoked", "{read}");
}

/// The background pass that catches a replica's copies up does not wait for a tenant
/// another session holds: were it to, it would hold the replica's turn meanwhile, and a
/// request for every tenant would wait behind it before waiting its own 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_a_held_lock_only_so_long_whatever_the_background_pass_does() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let key = key(32);
    let (slug, frozen) = a_tenant_and_a_session(&replica, &key, &database).await;
    // A newer version of the tenant than the replica's copy, so the pass wants it; then
    // its row held, as by a replica that froze mid-request.
    frozen
        .execute(
            "UPDATE tenants SET version = version + 1 WHERE name = $1",
            &[&slug],
        )
        .await
        .expect("a newer version");
    hold_row(&frozen, &slug).await;
    // Long enough for the pass (every second) to have come to the tenant.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = std::time::Instant::now();
    let (status, refused, _) = replica
        .send(reqwest::Method::GET, "/_sandbox/clock", &[], None)
        .await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{refused}");
    assert!(waited < Duration::from_secs(15), "refused after {waited:?}");
    frozen.batch_execute("ROLLBACK").await.expect("let go");
    let (status, _, _) = replica
        .send(reqwest::Method::GET, "/_sandbox/clock", &[], None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_injected_through_one_replica_fires_on_every_one_counted_once() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Arc<Vec<Replica>> =
        Arc::new((0..3).map(|_| Replica::start(&database, &[])).collect());
    let key = key(10);
    // A partner's own fault, five times, set through the first replica.
    let (status, fault, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &[("x-api-key", &key)],
            Some(json!({"method": "POST", "path": "/partner/links", "status": 503, "times": 5})),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    let mut racers = Vec::new();
    for n in 0..12 {
        let (replicas, key) = (replicas.clone(), key.clone());
        racers.push(tokio::spawn(async move {
            replicas[n % 3].create_link(&key, &format!("f-{n}")).await.0
        }));
    }
    let mut statuses = HashMap::new();
    for racer in racers {
        *statuses.entry(racer.await.expect("racer")).or_insert(0) += 1;
    }
    assert_eq!(statuses, HashMap::from([(503, 5), (201, 7)]));
    // Spent: no replica lists it any more.
    for replica in replicas.iter() {
        let (status, listed, _) = replica
            .send(
                reqwest::Method::GET,
                "/_sandbox/faults",
                &[("x-api-key", &key)],
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(listed["faults"], json!([]), "{listed}");
    }
    // An admin fault added on the second replica strikes another partner on the third,
    // and its hits are counted across them.
    let (status, _, _) = replicas[1]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &[],
            Some(json!({"path": "/partner/**", "status": 429})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(replicas[2].create_link(&self::key(11), "x").await.0, 429);
    assert_eq!(replicas[0].create_link(&self::key(11), "y").await.0, 429);
    let (_, listed, _) = replicas[1]
        .send(reqwest::Method::GET, "/_sandbox/faults", &[], None)
        .await;
    assert_eq!(listed["faults"][0]["hits"], 2, "{listed}");
    let (status, _, _) = replicas[2]
        .send(reqwest::Method::DELETE, "/_sandbox/faults", &[], None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(replicas[0].create_link(&self::key(11), "z").await.0, 201);
}

/// A request that waits — for a body its client sends slowly, or out a fault's delay —
/// holds no lock of the shared database while it does: other tenants' requests, on its
/// replica and on others, are answered meanwhile, as one process answers them. Without
/// it, a login whose body never came stopped every tenant on every replica for 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_its_body_or_a_delay_holds_no_lock() {
    use tokio::io::AsyncWriteExt;
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = Arc::new([
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ]);
    let (slow, other) = (key(30), key(31));
    assert_eq!(replicas[0].create_link(&slow, "first").await.0, 201);
    // Bodies promised and never sent: a login (every tenant's lock), a tenant's write, and
    // a snapshot's restore (its partner's lock, its limit the caller's own).
    let host = replicas[0].base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for (method, path, credential) in [
        ("POST", "/api/authenticate", String::new()),
        ("POST", "/_sandbox/faults", format!("X-API-Key: {slow}\r\n")),
        (
            "PUT",
            "/_sandbox/snapshot",
            format!("X-API-Key: {slow}\r\n"),
        ),
    ] {
        let mut socket = TcpStream::connect(&host).await.expect("connects");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{credential}\
             Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{"
        );
        socket.write_all(head.as_bytes()).await.expect("sent");
        stalled.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered = |replica: usize, path: &'static str| {
        let (replicas, other) = (replicas.clone(), other.clone());
        async move {
            let headers = [("x-api-key", other.as_str())];
            let asked = replicas[replica].send(reqwest::Method::GET, path, &headers, None);
            tokio::time::timeout(Duration::from_secs(8), asked)
                .await
                .map(|(status, _, _)| status)
        }
    };
    for replica in [0, 1] {
        assert_eq!(answered(replica, "/_sandbox/clock").await, Ok(200));
        assert_eq!(answered(replica, "/partner/links").await, Ok(200));
    }
    drop(stalled);

    // A delay fault on a write: the write is made, its answer comes after the delay, and
    // another tenant's request for every tenant's state is answered before it.
    let (status, fault, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &[("x-api-key", &slow)],
            Some(json!({"method": "POST", "path": "/partner/links", "delayMs": 4000, "times": 1})),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    let delayed = {
        let (replicas, slow) = (replicas.clone(), slow.clone());
        tokio::spawn(async move { replicas[0].create_link(&slow, "delayed").await.0 })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(answered(1, "/_sandbox/clock").await, Ok(200));
    assert!(
        !delayed.is_finished(),
        "answered while the delayed request waits"
    );
    assert_eq!(delayed.await.expect("delayed"), 201);
    let listed = replicas[1].link_ids(&slow).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Its journal entry took as long as its answer, the delay included.
    let (status, journal, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            "/_sandbox/requests?method=POST&limit=1",
            &[("x-api-key", &slow)],
            None,
        )
        .await;
    assert_eq!(status, 200, "{journal}");
    let took = journal["requests"][0]["durationMs"].as_u64();
    assert!(took.is_some_and(|took| took >= 4000), "{journal}");
}

/// While an admin fault is in force, a request no fault matches takes no lock of the fault
/// table, and a stranger sending a body slowly to the faulted path holds nothing while it
/// does: any admin fault made every request of every tenant lock the sandbox's row, and a
/// stranger's slow body to the faulted route held it (and so every tenant) 10 s at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_slow_body_to_a_faulted_path_holds_up_no_tenant() {
    use tokio::io::AsyncWriteExt;
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--admin-token", "admin-secret"];
    let replicas = Arc::new([
        Replica::start(&database, &flags),
        Replica::start(&database, &flags),
    ]);
    let admin = [("authorization", "Bearer admin-secret")];
    let other = key(40);
    let (status, link) = replicas[0].create_link(&other, "mine").await;
    assert_eq!(status, 201, "{link}");
    let id = link["data"]["linkId"].as_str().expect("an id").to_owned();
    let (status, fault, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &admin,
            Some(json!({"method": "POST", "path": "/partner/links", "status": 503})),
        )
        .await;
    assert_eq!(status, 201, "{fault}");
    let host = replicas[1].base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(&host).await.expect("connects");
    let head = format!(
        "POST /partner/links HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 40\r\n\r\n{{"
    );
    socket.write_all(head.as_bytes()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for replica in 0..2 {
        let answered =
            tokio::time::timeout(Duration::from_secs(5), replicas[replica].link(&other, &id))
                .await
                .map(|(status, _)| status);
        assert_eq!(answered, Ok(200), "replica {replica}");
        let created = tokio::time::timeout(
            Duration::from_secs(5),
            replicas[replica].create_link(&other, &format!("r{replica}")),
        )
        .await
        .map(|(status, _)| status);
        assert_eq!(created, Ok(503), "the fault strikes, replica {replica}");
    }
    // The stranger is answered without its body being waited for: the fault's answer on
    // the faulted path, and a keyless request's 401 on another, as in one process.
    let answer_of = |mut socket: TcpStream| async move {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut head))
            .await
            .map(|_| String::from_utf8_lossy(&head).into_owned())
    };
    assert_eq!(answer_of(socket).await, Ok("HTTP/1.1 503".to_owned()));
    let mut keyless = TcpStream::connect(&host).await.expect("connects");
    let head = format!(
        "POST /partner/links/link_x_000000000000/revoke HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{"
    );
    keyless.write_all(head.as_bytes()).await.expect("sent");
    assert_eq!(answer_of(keyless).await, Ok("HTTP/1.1 401".to_owned()));
}

/// A tenant's fault on a path of no tenant (`/openapi.json`), struck by requests carrying
/// the tenant's key on every replica at once, fires `times` times in all: such a request
/// locks the fault table when any tenant's fault may strike it, a copy of the table read
/// back while a strike was not yet committed is not taken for the committed one, nor put
/// over it, and a request that did not take the lock strikes nothing (its replica's copy
/// may have read the new fault back meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_fault_on_a_path_of_no_tenant_fires_its_times_across_replicas() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let tenant = key(60);
    // A race, so several rounds: before its fixes one round in five or so passed `times`.
    for round in 0..8 {
        let (status, fault, _) = replicas[round % 2]
            .send(
                reqwest::Method::POST,
                "/_sandbox/faults",
                &[("x-api-key", &tenant)],
                Some(json!({"path": "/openapi.json", "status": 418, "times": 10})),
            )
            .await;
        assert_eq!(status, 201, "{fault}");
        let asks = (0..40).map(|n| {
            let (replica, tenant) = (&replicas[n % 2], tenant.clone());
            async move {
                let headers = [("x-api-key", tenant.as_str())];
                replica
                    .send(reqwest::Method::GET, "/openapi.json", &headers, None)
                    .await
                    .0
            }
        });
        let statuses = futures_util::future::join_all(asks).await;
        let struck = statuses.iter().filter(|status| **status == 418).count();
        assert_eq!(struck, 10, "round {round}: {statuses:?}");
    }
}

/// A tenant's journal request (and its dashboard) locks its own tenant and reads its own
/// rows: it is answered while another tenant's row is held (a frozen replica), and it lists
/// what the tenant did through another replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_journal_request_waits_for_no_other_tenant() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let (held, reader) = (key(32), key(33));
    let (slug, frozen) = a_tenant_and_a_session(&replicas[0], &held, &database).await;
    assert_eq!(replicas[0].create_link(&reader, "mine").await.0, 201);
    hold_row(&frozen, &slug).await;
    let as_reader = [("x-api-key", reader.as_str())];
    for path in ["/_sandbox/requests", "/_sandbox/requests?limit=5"] {
        let asked = replicas[1].send(reqwest::Method::GET, path, &as_reader, None);
        let (status, listed, _) = tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .expect("answered without waiting for the other tenant");
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["total"], 1, "{listed}");
        assert_eq!(listed["requests"][0]["path"], "/partner/links", "{listed}");
    }
    let verify = replicas[1].send(
        reqwest::Method::POST,
        "/_sandbox/requests/verify",
        &as_reader,
        Some(json!({"path": "/partner/links", "bodyContains": "mine"})),
    );
    let (status, verified, _) = tokio::time::timeout(Duration::from_secs(5), verify)
        .await
        .expect("answered without waiting for the other tenant");
    assert_eq!(
        (status, &verified["matched"]),
        (200, &json!(1)),
        "{verified}"
    );
    // So is its dashboard, and a made-up key's, which shows nothing of anyone else.
    for viewer in [reader.clone(), key(34)] {
        let page = format!("/_sandbox/ui?key={viewer}");
        let asked = replicas[1].send(reqwest::Method::GET, &page, &[], None);
        let (status, shown, _) = tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .expect("the dashboard waits for no other tenant");
        assert_eq!(status, 200, "{shown}");
    }
    // A key that is no key is refused without a lock or a row of the journal read.
    for credential in [
        ("x-api-key", "garbage"),
        ("authorization", "Bearer nonsense"),
    ] {
        let headers = [credential];
        let asked = replicas[1].send(reqwest::Method::GET, "/_sandbox/requests", &headers, None);
        let (status, refused, _) = tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .expect("refused without waiting for any tenant");
        assert_eq!(status, 401, "{credential:?}: {refused}");
    }
    frozen.batch_execute("ROLLBACK").await.expect("let go");
    // The held tenant's journal is its own, and the admin's is everyone's.
    let (status, listed, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            "/_sandbox/requests",
            &[("x-api-key", &held)],
            None,
        )
        .await;
    assert_eq!((status, &listed["total"]), (200, &json!(1)), "{listed}");
    let (status, listed, _) = replicas[1]
        .send(reqwest::Method::GET, "/_sandbox/requests", &[], None)
        .await;
    assert_eq!((status, &listed["total"]), (200, &json!(2)), "{listed}");
}

/// The dashboard of one replica shows the requests another replica served, as a journal
/// request there lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_what_every_replica_served() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let marker = "/partner/links/link_dashboardmarker_0123456789ab";
    let (status, _, _) = replicas[0]
        .send(
            reqwest::Method::GET,
            marker,
            &[("x-api-key", &key(34))],
            None,
        )
        .await;
    assert_eq!(status, 404);
    let page = reqwest::get(format!("{}/_sandbox/ui", replicas[1].base))
        .await
        .expect("the dashboard")
        .text()
        .await
        .expect("its page");
    assert!(page.contains("link_dashboardmarker"), "{page}");
}

/// A reset by a key or a Leaf token that never wrote forgets nothing and leaves no row: a
/// tenant row made up keys left behind would be locked, forever, by every request that
/// locks every tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_refused_snapshots_by_tenants_that_never_wrote_leave_no_rows() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("a session of its own");
    tokio::spawn(connection);
    let tenants = || async {
        let row = client
            .query_one("SELECT count(*) FROM tenants", &[])
            .await
            .expect("counted");
        row.get::<_, i64>(0)
    };
    assert_eq!(replica.create_link(&key(40), "kept").await.0, 201);
    let before = tenants().await;
    let token = replica.authenticate("never-wrote").await;
    for credential in [
        ("x-api-key", key(41)),
        ("x-api-key", key(42)),
        ("authorization", format!("Bearer {token}")),
    ] {
        let (status, answer, _) = replica
            .send(
                reqwest::Method::POST,
                "/_sandbox/reset",
                &[(credential.0, &credential.1)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        tenants().await,
        before,
        "rows were left by resets that forgot nothing"
    );
    // Nor does a snapshot refused to a new key: another partner's.
    let (status, answer, _) = replica
        .send(
            reqwest::Method::PUT,
            "/_sandbox/snapshot",
            &[("x-api-key", &key(43))],
            Some(
                json!({"version": 1, "partner": "p00000000", "links": [], "users": [],
                "dataRequests": [], "operations": []}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(tenants().await, before, "a refused snapshot left a tenant");
    // A reset that forgets something still forgets it, on every replica.
    let (status, answer, _) = replica
        .send(
            reqwest::Method::POST,
            "/_sandbox/reset",
            &[("x-api-key", &key(40))],
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(replica.link_ids(&key(40)).await.is_empty());
    let other = Replica::start(&database, &[]);
    assert!(other.link_ids(&key(40)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_one_rate_limit_window_together() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let limits = ["--rate-limits", "documented"];
    let replicas: Arc<Vec<Replica>> =
        Arc::new((0..2).map(|_| Replica::start(&database, &limits)).collect());
    // A frozen clock: the whole test falls in one window.
    let (status, _, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/_sandbox/clock",
            &[],
            Some(json!({"frozen": true})),
        )
        .await;
    assert_eq!(status, 200);
    let key = key(12);
    let limit = linkbox_contracts::m2m::CREATE_LINK_PER_MINUTE as usize;
    let mut statuses = HashMap::new();
    for batch in 0..(limit + 10).div_ceil(10) {
        let mut racers = Vec::new();
        for n in 0..10 {
            let (replicas, key) = (replicas.clone(), key.clone());
            racers.push(tokio::spawn(async move {
                replicas[n % 2]
                    .create_link(&key, &format!("limited-{batch}-{n}"))
                    .await
            }));
        }
        for racer in racers {
            let (status, body) = racer.await.expect("racer");
            if status == 429 {
                assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED", "{body}");
            }
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    assert_eq!(statuses, HashMap::from([(201, limit), (429, 10)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_shows_every_replicas_requests_and_forgets_on_all() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let key = key(13);
    for (n, replica) in replicas.iter().enumerate() {
        let (status, _) = replica.create_link(&key, &format!("journaled-{n}")).await;
        assert_eq!(status, 201);
    }
    let (status, listed, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            "/_sandbox/requests",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let entries = listed["requests"]
        .as_array()
        .cloned()
        .expect("a list of requests");
    assert_eq!(entries.len(), 3, "{listed}");
    let mut seqs: Vec<u64> = entries
        .iter()
        .map(|entry| entry["seq"].as_u64().expect("seq"))
        .collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 3, "each entry its own number: {listed}");
    // Newest first, as in one process.
    assert_eq!(
        entries[0]["request"]["body"],
        json!({"referenceId": "journaled-2"}).to_string()
    );
    let (status, verified, _) = replicas[2]
        .send(
            reqwest::Method::POST,
            "/_sandbox/requests/verify",
            &[("x-api-key", &key)],
            Some(json!({"method": "POST", "path": "/partner/links", "count": {"exactly": 3}})),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["matched"], 3);
    // A filtered delete through one replica forgets that entry on every one.
    let (status, _, _) = replicas[0]
        .send(
            reqwest::Method::DELETE,
            "/_sandbox/requests?bodyContains=journaled-1",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, listed, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            "/_sandbox/requests",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    let bodies: Vec<&str> = listed["requests"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| entry["request"]["body"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        bodies,
        [
            json!({"referenceId": "journaled-2"}).to_string(),
            json!({"referenceId": "journaled-0"}).to_string()
        ],
        "{listed}"
    );
    let (status, _, _) = replicas[0]
        .send(
            reqwest::Method::DELETE,
            "/_sandbox/requests",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, listed, _) = replicas[2]
        .send(
            reqwest::Method::GET,
            "/_sandbox/requests",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(listed["requests"], json!([]), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_and_a_replay_are_each_made_once_by_whichever_replica() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let receiver = Receiver::start().await;
    receiver.answers.lock().push_back(500);
    let key = key(14);
    set_webhook(&replicas[0], &key, &receiver.url).await;
    let (status, created) = replicas[0].create_link(&key, "retried").await;
    assert_eq!(status, 201);
    let id = created["data"]["linkId"].as_str().expect("id").to_owned();
    assert!(
        eventually(10, || receiver.created_per_link().get(&id) == Some(&1)).await,
        "the first attempt (answered 500)"
    );
    // The retry falls due when another replica moves the clock past its delay.
    let (status, _, _) = replicas[1]
        .send(
            reqwest::Method::POST,
            "/_sandbox/clock",
            &[],
            Some(json!({"advanceSeconds": 3600})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        eventually(10, || receiver.created_per_link().get(&id) == Some(&2)).await,
        "the retry: {:?}",
        receiver.created_per_link()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.created_per_link().get(&id), Some(&2));
    // Every replica shows it delivered after two attempts; the third replays it.
    let mut delivery = String::new();
    for replica in &replicas {
        let (_, listed, _) = replica
            .send(
                reqwest::Method::GET,
                "/_sandbox/webhooks",
                &[("x-api-key", &key)],
                None,
            )
            .await;
        let item = &listed["deliveries"][0];
        assert_eq!(item["status"], "delivered", "{listed}");
        assert_eq!(
            item["attempts"].as_array().map(Vec::len),
            Some(2),
            "{listed}"
        );
        delivery = item["id"].as_str().expect("delivery id").to_owned();
    }
    let (status, replayed, _) = replicas[2]
        .send(
            reqwest::Method::POST,
            &format!("/_sandbox/webhooks/{delivery}/replay"),
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert!(
        eventually(10, || receiver.created_per_link().get(&id) == Some(&3)).await,
        "the replay: {:?}",
        receiver.created_per_link()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.created_per_link().get(&id), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_caught_up_change_by_change_match_a_copy_read_whole() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start(&database, &[])).collect();
    let key = key(15);
    let receiver = Receiver::start().await;
    set_webhook(&replicas[2], &key, &receiver.url).await;
    // Every kind of change, each on the next replica: users, links, revokes, opens,
    // operations (and a cancel), data requests, deliveries and their attempts.
    let mut links = Vec::new();
    let mut active: HashMap<String, String> = HashMap::new();
    for n in 0..9 {
        let replica = &replicas[n % 3];
        let reference = format!("user-{}", n % 4);
        // A returning user's link is revoked first, on another replica.
        if let Some(previous) = active.get(&reference) {
            let (status, revoked) = replicas[(n + 1) % 3]
                .m2m(
                    reqwest::Method::POST,
                    &format!("/partner/links/{previous}/revoke"),
                    &key,
                    Some(json!({"reason": "again"})),
                )
                .await;
            assert_eq!(status, 200, "{revoked}");
        }
        let (status, created) = replica
            .m2m(
                reqwest::Method::POST,
                "/partner/links",
                &key,
                Some(json!({"referenceId": reference, "metadata": {"k": n}})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["data"]["linkId"].as_str().expect("id").to_owned();
        let next = &replicas[(n + 1) % 3];
        let (status, opened, _) = next
            .send(
                reqwest::Method::POST,
                &format!("/_sandbox/m2m/links/{id}/open"),
                &[("x-api-key", &key)],
                Some(json!({"userAgent": "test", "platform": "web", "language": "en"})),
            )
            .await;
        assert_eq!(status, 200, "{opened}");
        if n % 2 == 0 {
            let (status, operation, _) = replicas[(n + 2) % 3]
                .send(
                    reqwest::Method::POST,
                    &format!("/_sandbox/m2m/links/{id}/operation"),
                    &[("x-api-key", &key)],
                    Some(json!({"amount": 100 + n})),
                )
                .await;
            assert_eq!(status, 201, "{operation}");
        }
        if n == 4 {
            let (status, cancelled, _) = replicas[0]
                .send(
                    reqwest::Method::POST,
                    &format!("/_sandbox/m2m/links/{id}/operation/cancel"),
                    &[("x-api-key", &key)],
                    None,
                )
                .await;
            assert_eq!(status, 200, "{cancelled}");
        }
        active.insert(reference, id.clone());
        links.push(id);
    }
    assert!(eventually(10, || !receiver.received.lock().is_empty()).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A replica started now reads everything whole; the others caught up row by row.
    let fresh = Replica::start(&database, &[]);
    let whole = fresh.snapshot(&key).await;
    assert!(
        whole["links"]
            .as_array()
            .is_some_and(|links| links.len() >= 4),
        "{whole}"
    );
    for replica in &replicas {
        assert_eq!(replica.snapshot(&key).await, whole);
        let logged = replica.logged();
        assert!(
            !logged.contains("reading the tenant back whole"),
            "every change fitted the copy: {logged}"
        );
    }
    // Webhook deliveries too.
    let (_, fresh_deliveries, _) = fresh
        .send(
            reqwest::Method::GET,
            "/_sandbox/webhooks",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    for replica in &replicas {
        let (_, deliveries, _) = replica
            .send(
                reqwest::Method::GET,
                "/_sandbox/webhooks",
                &[("x-api-key", &key)],
                None,
            )
            .await;
        assert_eq!(deliveries, fresh_deliveries);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_on_an_empty_database_create_its_schema_once() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let database = database.clone();
            std::thread::spawn(move || Replica::try_start(&database, &[]))
        })
        .collect();
    let replicas: Vec<Replica> = starts
        .into_iter()
        .map(|start| {
            start
                .join()
                .expect("thread")
                .unwrap_or_else(|error| panic!("a replica did not start: {error}"))
        })
        .collect();
    // They agree on the Leaf token key: a token one signs is good on all.
    let token = replicas[3].authenticate("together").await;
    for replica in &replicas {
        let (status, body, _) = replica
            .send(
                reqwest::Method::GET,
                "/services/widgets/api/magic-link/provider",
                &[("authorization", &format!("Bearer {token}"))],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let version: i32 = client
        .query_one("SELECT schema_version FROM linkbox_meta", &[])
        .await
        .expect("one meta row")
        .get(0);
    assert_eq!(version, linkbox::persist::shared::LATEST);
}

/// One tenant's `--max-tenant-mib` holds across replicas: each checks it against the
/// tenant's rows it caught up with under the tenant's row lock, so creates alternating
/// between two replicas stop where one process would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_storage_budget_holds_across_replicas() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let budget = ["--max-tenant-mib", "1"];
    let replicas: Vec<Replica> = (0..2).map(|_| Replica::start(&database, &budget)).collect();
    let key = key(14);
    let mut statuses = Vec::new();
    for n in 0..8 {
        let body =
            json!({"referenceId": format!("big-{n}"), "metadata": {"blob": "x".repeat(200_000)}});
        let (status, answer) = replicas[n % 2]
            .m2m(reqwest::Method::POST, "/partner/links", &key, Some(body))
            .await;
        if status == 403 {
            assert_eq!(answer["error"]["code"], "INVALID_REQUEST", "{answer}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 403, 403, 403]);
    for replica in &replicas {
        assert_eq!(replica.link_ids(&key).await.len(), 5);
    }
}

/// Past the rows the shared journal keeps in all, the tenants holding the most lose their
/// oldest first: a flood of requests from other keys never pushes out the rows of a
/// tenant that holds fewer, even when its rows are the oldest.
#[tokio::test]
async fn the_shared_journal_trims_the_tenants_holding_the_most_first() {
    let Some(server) = server() else {
        return;
    };
    let url = fresh_database(&server).await;
    let database = linkbox::persist::shared::connect(&url)
        .await
        .expect("connected");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(connection);
    for (tenant, rows) in [("quiet", 3), ("middle", 12), ("busy", 30)] {
        for _ in 0..rows {
            client
                .execute(
                    "INSERT INTO journal (tenant, id, doc) VALUES ($1, nextval('journal_seq'), '{}')",
                    &[&tenant],
                )
                .await
                .expect("a journal row");
        }
    }
    // Ten a tenant, twenty in all: 10 + 10 + 3 is three too many.
    database
        .trim_journal(10, 20, usize::MAX)
        .await
        .expect("trimmed");
    let kept: HashMap<String, (i64, i64)> = client
        .query(
            "SELECT tenant, count(*), min(id) FROM journal GROUP BY tenant",
            &[],
        )
        .await
        .expect("counted")
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    assert_eq!(
        kept["quiet"],
        (3, 1),
        "the quiet tenant's rows, the oldest, all kept"
    );
    let (busy, middle) = (kept["busy"].0, kept["middle"].0);
    assert_eq!(busy + middle, 17, "{kept:?}");
    assert!(busy.abs_diff(middle) <= 1, "{kept:?}");
    // Each keeps its newest: the busy tenant's rows are 16 to 45.
    assert_eq!(kept["busy"].1, 45 - busy + 1, "{kept:?}");

    // Past the bytes kept in all, likewise: each row here is two bytes (`{}`), so ten
    // bytes keep five rows, every tenant's newest and two tenants' second newest.
    database.trim_journal(10, 20, 10).await.expect("trimmed");
    let kept: HashMap<String, i64> = client
        .query("SELECT tenant, count(*) FROM journal GROUP BY tenant", &[])
        .await
        .expect("counted")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(kept.values().sum::<i64>(), 5, "{kept:?}");
    assert!(kept.values().all(|rows| (1..=2).contains(rows)), "{kept:?}");
}

/// `key`'s links as `replica` lists them: their `referenceId`s.
async fn references(replica: &Replica, key: &str) -> Vec<String> {
    let (status, listed) = replica
        .m2m(reqwest::Method::GET, "/partner/links", key, None)
        .await;
    assert_eq!(status, 200, "{listed}");
    listed["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["referenceId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Creates a Leaf user with `token` through `replica`; its status.
async fn leaf_user(replica: &Replica, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    replica
        .send(
            reqwest::Method::POST,
            "/services/usermanagement/api/users",
            &[("authorization", auth.as_str())],
            Some(json!({"name": "Ana", "email": "ana@example.com", "externalId": "e"})),
        )
        .await
        .0
}

/// Two replicas of `database` with the admin token `admin-secret` and room for two
/// partners (`--max-tenants 2`).
fn two_partner_replicas(database: &str) -> [Replica; 2] {
    let flags = ["--admin-token", "admin-secret", "--max-tenants", "2"];
    [
        Replica::start(database, &flags),
        Replica::start(database, &flags),
    ]
}

/// `POST /_sandbox/reset` as the admin (token `admin-secret`) through `replica`.
async fn admin_reset(replica: &Replica) {
    let (status, reset, _) = replica
        .send(
            reqwest::Method::POST,
            "/_sandbox/reset",
            &[("authorization", "Bearer admin-secret")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{reset}");
}

/// An admin reset through one replica forgets its partners on every replica: another
/// replica neither keeps serving one (a second active link for a reference, rows no partner
/// row names) nor counts it against `--max-tenants`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_on_one_replica_forgets_its_partners_on_every_one() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = two_partner_replicas(&database);
    for n in [61, 62] {
        let (status, created) = replicas[1].create_link(&key(n), "before").await;
        assert_eq!(status, 201, "{created}");
    }
    admin_reset(&replicas[0]).await;

    let (status, created) = replicas[1].create_link(&key(61), "b").await;
    assert_eq!(status, 201, "{created}");
    let (status, again) = replicas[0].create_link(&key(61), "b").await;
    assert_eq!(status, 409, "one active link for `b`: {again}");
    for replica in &replicas {
        assert_eq!(references(replica, &key(61)).await, ["b"]);
    }
    // Both places are free on the other replica too once it has caught up (about a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let (status, _) = replicas[1].create_link(&key(63), "new").await;
        if status == 201 || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 201, "the reset partner's place is free");

    // Leaf accounts likewise: two made through the second replica before a reset through
    // the first leave their places free on the second once it has caught up.
    for name in ["before1", "before2"] {
        let token = replicas[1].authenticate(name).await;
        assert_eq!(leaf_user(&replicas[1], &token).await, 201, "{name}");
    }
    admin_reset(&replicas[0]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut admitted = 0;
    for name in ["after1", "after2"] {
        let token = replicas[1].authenticate(name).await;
        let status = loop {
            let status = leaf_user(&replicas[1], &token).await;
            if status == 201 || tokio::time::Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        admitted += usize::from(status == 201);
    }
    assert_eq!(admitted, 2, "both Leaf places are free again");
}

/// `POST /_sandbox/faults` through `replica` with Leaf token `token`: its status.
async fn leaf_fault(replica: &Replica, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    let fault = json!({"path": "/nowhere", "status": 418});
    let (status, answer, _) = replica
        .send(
            reqwest::Method::POST,
            "/_sandbox/faults",
            &[("authorization", auth.as_str())],
            Some(fault),
        )
        .await;
    assert!([201, 403].contains(&status), "{status}: {answer}");
    status
}

/// A Leaf account whose only write is a fault is a tenant on every replica, as in one
/// process: counted against `--max-tenants` wherever the next new account arrives, and
/// forgotten by an admin reset through another replica, on the replica that made it too.
/// A fault is no user or link, so the account's `tenants` row was dropped at its commit:
/// other replicas admitted accounts past the bound, and the replica that made it kept it
/// through every reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_account_whose_only_write_is_a_fault_is_a_tenant_on_every_replica() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = two_partner_replicas(&database);
    // Logged in first: past the bound, a new username's login is refused too.
    let faulty = replicas[0].authenticate("faulty").await;
    let second = replicas[1].authenticate("second").await;
    let third = replicas[1].authenticate("third").await;
    assert_eq!(leaf_fault(&replicas[0], &faulty).await, 201);

    assert_eq!(leaf_user(&replicas[1], &second).await, 201);
    assert_eq!(
        leaf_user(&replicas[1], &third).await,
        403,
        "the fault's account and the second fill both places"
    );
    assert_eq!(leaf_fault(&replicas[1], &third).await, 403);

    admin_reset(&replicas[1]).await;
    // Both places are free on the first replica once it has caught up (about a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for token in [&second, &third] {
        let status = loop {
            let status = leaf_user(&replicas[0], token).await;
            if status == 201 || tokio::time::Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(status, 201, "the reset freed both places there too");
    }
    assert_eq!(
        leaf_fault(&replicas[0], &faulty).await,
        403,
        "both are taken again"
    );
}

/// A new partner's first write rolled back (a 503 saying nothing was changed) leaves no
/// copy behind on its replica: the next write through it makes the partner whole, and
/// every replica reads what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_write_rolled_back_leaves_no_partner_behind() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = [
        Replica::start(&database, &[]),
        Replica::start(&database, &[]),
    ];
    let key = key(64);
    let (locker, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("a session of its own");
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE m2m_links IN EXCLUSIVE MODE")
        .await
        .expect("the links table locked");
    let (status, refused) = replicas[0].create_link(&key, "lost").await;
    assert_eq!(status, 503, "{refused}");
    locker.batch_execute("ROLLBACK").await.expect("let go");

    assert!(references(&replicas[0], &key).await.is_empty());
    let (status, created) = replicas[0].create_link(&key, "kept").await;
    assert_eq!(status, 201, "{created}");
    for replica in &replicas {
        assert_eq!(references(replica, &key).await, ["kept"]);
    }
}

/// `--max-tenants` holds across replicas: new keys (and Leaf accounts) arriving at once,
/// spread over the replicas, are admitted up to the bound and no further, as one process
/// admits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tenants_holds_for_new_keys_arriving_at_once_on_every_replica() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--max-tenants", "3"];
    let replicas = [
        Replica::start(&database, &flags),
        Replica::start(&database, &flags),
    ];
    let tokens: Vec<String> = {
        let mut tokens = Vec::new();
        for n in 0..6 {
            tokens.push(replicas[n % 2].authenticate(&format!("farm{n}")).await);
        }
        tokens
    };
    let creates = (0..8).map(|n| {
        let replica = &replicas[n % 2];
        async move { replica.create_link(&key(70 + n), "first").await.0 }
    });
    let users = tokens.iter().enumerate().map(|(n, token)| {
        let replica = &replicas[n % 2];
        let auth = format!("Bearer {token}");
        async move {
            let body =
                json!({"name": "Ana", "email": "ana@example.com", "externalId": format!("e{n}")});
            replica
                .send(
                    reqwest::Method::POST,
                    "/services/usermanagement/api/users",
                    &[("authorization", auth.as_str())],
                    Some(body),
                )
                .await
                .0
        }
    });
    let (partners, accounts) = tokio::join!(
        futures_util::future::join_all(creates),
        futures_util::future::join_all(users)
    );
    let admitted = |statuses: &[u16]| statuses.iter().filter(|status| **status == 201).count();
    assert_eq!(admitted(&partners), 3, "partners: {partners:?}");
    assert!(
        partners.iter().all(|status| [201, 403].contains(status)),
        "{partners:?}"
    );
    assert_eq!(admitted(&accounts), 3, "Leaf accounts: {accounts:?}");
    assert!(
        accounts.iter().all(|status| [201, 403].contains(status)),
        "{accounts:?}"
    );
}

/// A key an admin reset forgot is a new partner again when it next writes, counted against
/// `--max-tenants` on whichever replica it reaches, though its tenant's row outlives the
/// reset and a replica may still hold a copy of it from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_forgotten_by_an_admin_reset_is_counted_as_new_on_every_replica() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replicas = two_partner_replicas(&database);
    let (old, new) = ([key(81), key(82)], [key(83), key(84)]);
    for key in &old {
        let (status, created) = replicas[1].create_link(key, "before").await;
        assert_eq!(status, 201, "{created}");
    }
    admin_reset(&replicas[0]).await;
    for key in &new {
        let (status, created) = replicas[0].create_link(key, "after").await;
        assert_eq!(status, 201, "{created}");
    }
    for key in &old {
        let (status, refused) = replicas[1].create_link(key, "again").await;
        assert_eq!(status, 403, "both places are taken: {refused}");
        assert_eq!(refused["error"]["code"], "INVALID_API_KEY", "{refused}");
    }
}

/// A tenant's first write through the control API (a fault, here) is counted against
/// `--max-tenants` with every first write another replica committed meanwhile: new keys
/// setting faults at once on both replicas are admitted up to the bound. The list of
/// tenants was read before the sandbox row's lock, and first writes committed while the
/// request waited for that lock went uncounted (five admitted of three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tenants_holds_for_first_writes_through_the_control_api_at_once() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--max-tenants", "3"];
    let replicas = [
        Replica::start(&database, &flags),
        Replica::start(&database, &flags),
    ];
    let faults = (0..10).map(|n| {
        let (replica, key) = (&replicas[n % 2], key(90 + n));
        async move {
            let fault = json!({"path": "/nowhere", "status": 418});
            let headers = [("x-api-key", key.as_str())];
            let (status, answer, _) = replica
                .send(
                    reqwest::Method::POST,
                    "/_sandbox/faults",
                    &headers,
                    Some(fault),
                )
                .await;
            assert!([201, 403].contains(&status), "{status}: {answer}");
            status
        }
    });
    let statuses = futures_util::future::join_all(faults).await;
    let admitted = statuses.iter().filter(|status| **status == 201).count();
    assert_eq!(admitted, 3, "{statuses:?}");
}

/// A fault strikes its caller's requests `times` times across replicas whatever tenant
/// they lock: logins naming other accounts, each carrying the token of the account whose
/// fault it is, and the same carrying a key too, one `--max-tenants` refuses (the token's
/// account is then the caller). The fault table was locked only for a fault of the tenant a
/// request locks (the account its body names), and then only for the key's, so the
/// caller's fault struck unlocked, from stale copies, many times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_fault_fires_its_times_on_requests_that_lock_another_tenant() {
    let Some(server) = server() else { return };
    for refused_key in [false, true] {
        let database = fresh_database(&server).await;
        let flags: &[&str] = if refused_key {
            &["--max-tenants", "1"]
        } else {
            &[]
        };
        let replicas = [
            Replica::start(&database, flags),
            Replica::start(&database, flags),
        ];
        let token = replicas[0].authenticate("fault-owner").await;
        let bearer = format!("Bearer {token}");
        let fault = json!({"path": "/api/authenticate", "status": 418, "times": 3});
        let (status, set, _) = replicas[1]
            .send(
                reqwest::Method::POST,
                "/_sandbox/faults",
                &[("authorization", bearer.as_str())],
                Some(fault),
            )
            .await;
        assert_eq!(status, 201, "{set}");
        // The one partner place taken: the key the logins carry is refused.
        let other_key = key(131);
        if refused_key {
            assert_eq!(replicas[0].create_link(&key(130), "first").await.0, 201);
        }
        let logins = (0..30).map(|n| {
            let (replica, bearer, other_key) = (&replicas[n % 2], bearer.as_str(), &other_key);
            async move {
                let login = json!({"username": format!("grower{n}"), "password": "secret"});
                let mut headers = vec![("authorization", bearer)];
                if refused_key {
                    headers.push(("x-api-key", other_key.as_str()));
                }
                let (status, answer, _) = replica
                    .send(
                        reqwest::Method::POST,
                        "/api/authenticate",
                        &headers,
                        Some(login),
                    )
                    .await;
                // Past --max-tenants, a new username is refused (403) where the fault
                // does not strike.
                assert!([200, 403, 418].contains(&status), "{status}: {answer}");
                status
            }
        });
        let statuses = futures_util::future::join_all(logins).await;
        let struck = statuses.iter().filter(|status| **status == 418).count();
        assert_eq!(struck, 3, "a refused key too: {refused_key}; {statuses:?}");
    }
}

/// The login's path asked with another method than `POST` is refused (405) whatever token
/// it carries, and waits for nothing of that token's account: with the account's row held
/// (a frozen replica), each is answered at once. It locked the account (and a `PUT` made
/// its row) and waited out the lock's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_path_asked_with_another_method_waits_for_no_account() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let token = replica.authenticate("held-grower").await;
    let bearer = format!("Bearer {token}");
    // A user of its own: the account's row is made by its first write.
    let user = json!({"name": "Ana", "email": "ana@example.com", "externalId": "e1"});
    let (status, made, _) = replica
        .send(
            reqwest::Method::POST,
            "/services/usermanagement/api/users",
            &[("authorization", bearer.as_str())],
            Some(user),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (session, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .expect("a session of its own");
    tokio::spawn(connection);
    hold_row(&session, "leaf:held-grower").await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let (status, answer) = replica
            .at_once(
                method.clone(),
                "/api/authenticate",
                &[("authorization", bearer.as_str())],
                None,
            )
            .await;
        assert_eq!(status, 405, "{method}: {answer}");
    }
    session.batch_execute("ROLLBACK").await.expect("let go");
}

/// A Leaf page of a link its replica has not seen locks only the account that made it, as
/// the database says, and a tenant's control reads lock only the tenant: the page is
/// served on a replica that never saw its link, and with another tenant's row held, a
/// made-up id's page (a stranger's) and a made-up key's reads of the clock, its faults and
/// its deliveries are answered at once, and so is another tenant's request on the same
/// replica behind them. Each locked every tenant after taking its replica's exclusive turn,
/// and so waited, and held every request of its replica, until the lock's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_an_unseen_link_and_a_tenants_control_reads_wait_for_no_other_tenant() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let flags = ["--admin-token", "admin-secret"];
    let replicas = [
        Replica::start(&database, &flags),
        Replica::start(&database, &flags),
    ];
    let token = replicas[0].authenticate("unseen-farm").await;
    let (status, link, _) = replicas[0]
        .send(
            reqwest::Method::POST,
            "/services/widgets/api/magic-link/provider",
            &[("authorization", &format!("Bearer {token}"))],
            Some(json!({"externalId": "f1", "name": "Ann"})),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let page = url::Url::parse(link["link"].as_str().expect("link")).expect("a URL");
    let (status, shown, _) = replicas[1]
        .send(
            reqwest::Method::GET,
            page.path(),
            &[("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(
        status, 200,
        "the page of a link made on another replica: {shown}"
    );
    let (slug, frozen) = a_tenant_and_a_session(&replicas[1], &key(120), &database).await;
    hold_row(&frozen, &slug).await;
    let made_up = key(121);
    let html = ("accept", "text/html");
    let as_made_up = ("x-api-key", made_up.as_str());
    for (path, header, expected) in [
        // A magic link id of the right form that no account made.
        (
            "/magic-link/N2Q0NDQ4NDAtOWRjMC0xMWQxLWIyNDUtNWZmZGNlNzRmYWQy",
            html,
            404,
        ),
        ("/_sandbox/clock", as_made_up, 200),
        ("/_sandbox/faults", as_made_up, 200),
        ("/_sandbox/webhooks", as_made_up, 200),
    ] {
        let started = std::time::Instant::now();
        let headers = [header];
        let (asked, behind) = tokio::join!(
            replicas[1].send(reqwest::Method::GET, path, &headers, None),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                replicas[1].list_answer(&key(122)).await
            }
        );
        let waited = started.elapsed();
        assert_eq!(asked.0, expected, "{path}: {}", asked.1);
        assert_eq!(behind.0, 200, "{}", behind.1);
        assert!(waited < Duration::from_secs(5), "{path} waited {waited:?}");
    }
    frozen.batch_execute("ROLLBACK").await.expect("let go");
}

/// Without an admin token, a control write whose credentials name no tenant (a key that
/// can be no key, a token linkbox never signed, an unreadable scheme) is refused at once,
/// with another tenant's row held, and so is another tenant's request behind it on the
/// same replica. Each locked every tenant to be told it is refused: it waited, and held
/// every request of its replica, until the lock's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_write_naming_no_tenant_waits_for_no_tenant_without_an_admin_token() {
    let Some(server) = server() else { return };
    let database = fresh_database(&server).await;
    let replica = Replica::start(&database, &[]);
    let (slug, frozen) = a_tenant_and_a_session(&replica, &key(130), &database).await;
    hold_row(&frozen, &slug).await;
    let fault = json!({"method": "GET", "path": "/partner/links", "status": 500});
    for header in [
        ("x-api-key", "not-a-key"),
        ("authorization", "Bearer not.a.token"),
        ("authorization", "Basic YTpi"),
    ] {
        let started = std::time::Instant::now();
        let headers = [header];
        let (asked, behind) = tokio::join!(
            replica.send(
                reqwest::Method::POST,
                "/_sandbox/faults",
                &headers,
                Some(fault.clone())
            ),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                replica.list_answer(&key(131)).await
            }
        );
        let waited = started.elapsed();
        assert_eq!(asked.0, 401, "{header:?}: {}", asked.1);
        assert_eq!(behind.0, 200, "{}", behind.1);
        assert!(
            waited < Duration::from_secs(5),
            "{header:?} waited {waited:?}"
        );
    }
    frozen.batch_execute("ROLLBACK").await.expect("let go");
}
