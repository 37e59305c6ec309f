//! `linkbox serve --state FILE` as a user runs it: the real binary, killed with SIGKILL at
//! random moments, restarted on the same file, and checked over real sockets for every
//! change it acknowledged. Also: files it must refuse without touching them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use warp::Filter;

const KEY: &str = "m2m_test_persist0000000000000000000000000";

fn key(n: usize) -> String {
    format!("m2m_test_{n:0>32}")
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(name: &str) -> TempDir {
        tempfile::Builder::new()
            .prefix(&format!("linkbox-{name}-"))
            .tempdir()
            .map(TempDir)
            .expect("temporary directory")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// The linkbox binary serving a state file on a free loopback port.
struct Sandbox {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Sandbox {
    fn start(state: &Path) -> Sandbox {
        Sandbox::start_with(state, &[])
    }

    fn start_with(state: &Path, extra: &[&str]) -> Sandbox {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkbox"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--rate-limits",
                "off",
                "--state",
            ])
            .arg(state)
            .args(extra)
            .env("LINKBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("linkbox starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Sandbox {
            child,
            base,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    /// SIGKILL: no chance to flush anything.
    fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request answered");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, key: Option<&str>) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, key, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Every link id of `key`'s partner, oldest first.
    async fn link_ids(&self, key: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for page in 1.. {
            let body = self
                .get(&format!("/partner/links?limit=100&page={page}"), Some(key))
                .await;
            let items = body["data"]["items"].as_array().expect("items").clone();
            ids.extend(
                items
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
        ids.reverse();
        ids
    }

    async fn create_link(&self, key: &str, reference_id: &str) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/partner/links",
                Some(key),
                Some(json!({"referenceId": reference_id})),
            )
            .await;
        assert_eq!(status, 201, "create: {body}");
        body["data"]["linkId"].as_str().expect("linkId").to_owned()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts every acknowledged id is listed exactly once.
#[track_caller]
fn assert_all_there_once(listed: &[String], acknowledged: &[String]) {
    let mut sorted = listed.to_vec();
    sorted.sort();
    let before = sorted.len();
    sorted.dedup();
    assert_eq!(sorted.len(), before, "a link is listed twice");
    for id in acknowledged {
        assert!(
            sorted.binary_search(id).is_ok(),
            "acknowledged {id} was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_kill_9_at_random_moments() {
    let dir = TempDir::new("kill");
    let state = dir.file("state.db");
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..20 {
        let sandbox = Sandbox::start(&state);
        assert_all_there_once(&sandbox.link_ids(KEY).await, &acknowledged);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for worker in 0..16 {
            let (client, url, acked) = (
                sandbox.client.clone(),
                format!("{}/partner/links", sandbox.base),
                acked.clone(),
            );
            // Creates until the process dies under it.
            workers.push(tokio::spawn(async move {
                for n in 0.. {
                    let sent = client
                        .post(&url)
                        .header("x-api-key", KEY)
                        .json(&json!({"referenceId": format!("r{round}-w{worker}-{n}")}))
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    let status = response.status().as_u16();
                    let Ok(body) = response.json::<Value>().await else {
                        return;
                    };
                    assert_eq!(status, 201, "{body}");
                    let id = body["data"]["linkId"].as_str().expect("linkId").to_owned();
                    acked.lock().push(id);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(5..150))).await;
        sandbox.kill();
        for worker in workers {
            worker.await.expect("worker");
        }
        acknowledged.extend(acked.lock().drain(..));
    }
    let sandbox = Sandbox::start(&state);
    assert_all_there_once(&sandbox.link_ids(KEY).await, &acknowledged);
    assert!(
        acknowledged.len() > 100,
        "only {} creates acknowledged",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_creates_over_fifty_keys_are_all_there_after_a_restart() {
    let dir = TempDir::new("fifty");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    let mut creates = Vec::new();
    for n in 0..1000 {
        let (client, url) = (
            sandbox.client.clone(),
            format!("{}/partner/links", sandbox.base),
        );
        creates.push(tokio::spawn(async move {
            let key = key(n % 50);
            let response = client
                .post(url)
                .header("x-api-key", &key)
                .json(&json!({"referenceId": format!("user-{n}")}))
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status().as_u16(), 201);
            let body: Value = response.json().await.expect("json");
            (
                key,
                body["data"]["linkId"].as_str().expect("linkId").to_owned(),
            )
        }));
    }
    let mut created: Vec<(String, String)> = Vec::new();
    for create in creates {
        created.push(create.await.expect("create"));
    }
    sandbox.kill();
    let sandbox = Sandbox::start(&state);
    for n in 0..50 {
        let key = key(n);
        let mine: Vec<String> = created
            .iter()
            .filter(|(owner, _)| *owner == key)
            .map(|(_, id)| id.clone())
            .collect();
        let listed = sandbox.link_ids(&key).await;
        assert_eq!(listed.len(), 20, "key {n}");
        assert_all_there_once(&listed, &mine);
    }
}

/// A webhook receiver that answers the statuses it is given, then 200.
struct Receiver {
    url: String,
    statuses: Arc<Mutex<Vec<u16>>>,
    bodies: Arc<Mutex<Vec<bytes::Bytes>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let statuses = Arc::new(Mutex::new(
            statuses.iter().rev().copied().collect::<Vec<_>>(),
        ));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let filter = warp::post()
            .and(warp::body::bytes())
            .map({
                let (statuses, bodies) = (statuses.clone(), bodies.clone());
                move |body: bytes::Bytes| {
                    bodies.lock().push(body);
                    let status = statuses.lock().pop().unwrap_or(200);
                    let mut response = warp::reply::Response::new(Vec::new().into());
                    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
                    response
                }
            })
            .boxed();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(linkbox::http::serve(listener, filter, async {
            let _ = stopped.await;
        }));
        Receiver {
            url,
            statuses,
            bodies,
            _stop: stop,
        }
    }

    async fn wait_for(&self, count: usize) {
        for _ in 0..500 {
            if self.bodies.lock().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the receiver never got {count} requests");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_tokens_and_a_pending_webhook_retry_survive_kill_9() {
    let dir = TempDir::new("retry");
    let state = dir.file("state.db");
    let receiver = Receiver::start(&[500]).await;
    let sandbox = Sandbox::start(&state);
    let (status, _) = sandbox
        .send(
            reqwest::Method::PUT,
            "/_sandbox/m2m/webhook-config",
            Some(KEY),
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = sandbox
        .send(
            reqwest::Method::POST,
            "/_sandbox/clock",
            None,
            Some(json!({"advanceSeconds": 86_400})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, token) = sandbox
        .send(
            reqwest::Method::POST,
            "/api/authenticate",
            None,
            Some(json!({"username": "qa", "password": "pw"})),
        )
        .await;
    assert_eq!(status, 200);
    let token = token["id_token"].as_str().expect("token").to_owned();
    let link = sandbox.create_link(KEY, "u1").await;
    receiver.wait_for(1).await;
    // Seen through the API, the failed first attempt is durable.
    let mut deliveries = Value::Null;
    for _ in 0..500 {
        deliveries = sandbox.get("/_sandbox/webhooks", Some(KEY)).await["deliveries"].clone();
        if deliveries[0]["attempts"]
            .as_array()
            .is_some_and(|attempts| attempts.len() == 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(deliveries[0]["status"], "pending", "{deliveries}");
    sandbox.kill();

    let sandbox = Sandbox::start(&state);
    assert_eq!(
        sandbox.get("/_sandbox/clock", None).await["offsetSeconds"],
        86_400
    );
    let users = sandbox
        .client
        .get(format!(
            "{}/services/usermanagement/api/users",
            sandbox.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        users.status().as_u16(),
        200,
        "a token issued before the restart"
    );
    let restored = sandbox.get("/_sandbox/webhooks", Some(KEY)).await["deliveries"].clone();
    assert_eq!(restored, deliveries, "the delivery as it was");
    assert_eq!(sandbox.link_ids(KEY).await, [link]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.bodies.lock().len(),
        1,
        "the retry waits for its time"
    );
    let (status, _) = sandbox
        .send(
            reqwest::Method::POST,
            "/_sandbox/clock",
            None,
            Some(json!({"advanceSeconds": 61})),
        )
        .await;
    assert_eq!(status, 200);
    receiver.wait_for(2).await;
    let bodies = receiver.bodies.lock().clone();
    assert_eq!(bodies[0], bodies[1], "a retry resends the same bytes");
    assert!(receiver.statuses.lock().is_empty());
    let mut status = Value::Null;
    for _ in 0..500 {
        status =
            sandbox.get("/_sandbox/webhooks", Some(KEY)).await["deliveries"][0]["status"].clone();
        if status == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "delivered");
}

/// The links of `key`'s partner, as its list counts them.
async fn link_total(sandbox: &Sandbox, key: &str) -> u64 {
    sandbox.get("/partner/links?limit=1", Some(key)).await["data"]["pagination"]["total"]
        .as_u64()
        .expect("total")
}

/// A seed's changes reach the file together, as one request's: killed with `kill -9` while
/// seeds run (and creates of another partner are appended between their links), a restart
/// finds whole seeds only, every one acknowledged and at most the one in flight besides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_killed_half_way_are_in_the_file_whole_or_not_at_all() {
    const COUNT: u64 = 400;
    let dir = TempDir::new("seed-kill");
    let state = dir.file("state.db");
    let mut kept = 0;
    for round in 0..6 {
        let sandbox = Sandbox::start(&state);
        let acknowledged = Arc::new(Mutex::new(0));
        let seeding = {
            let (client, url, acknowledged) = (
                sandbox.client.clone(),
                format!("{}/_sandbox/seed", sandbox.base),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let sent = client
                        .post(&url)
                        .header("x-api-key", KEY)
                        .json(&json!({"api": "m2m", "count": COUNT}))
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if response.status() != 201 {
                        return;
                    }
                    *acknowledged.lock() += COUNT;
                }
            })
        };
        let creating = {
            let (client, url) = (
                sandbox.client.clone(),
                format!("{}/partner/links", sandbox.base),
            );
            tokio::spawn(async move {
                for n in 0.. {
                    let sent = client
                        .post(&url)
                        .header("x-api-key", key(1))
                        .json(&json!({"referenceId": format!("r{round}-{n}")}))
                        .send()
                        .await;
                    if sent.is_err() {
                        return;
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(rand::random_range(100..600))).await;
        sandbox.kill();
        seeding.await.expect("seeding");
        creating.await.expect("creating");
        let acknowledged = kept + *acknowledged.lock();
        let sandbox = Sandbox::start(&state);
        let total = link_total(&sandbox, KEY).await;
        assert!(
            total % COUNT == 0 && (acknowledged..=acknowledged + COUNT).contains(&total),
            "round {round}: {total} links after a restart, {acknowledged} acknowledged in seeds of {COUNT}"
        );
        kept = total;
        sandbox.kill();
    }
    assert!(kept > 0, "no seed was acknowledged");
}

/// `serve --seed N` seeds as one request, saved before it says it is listening: killed at
/// any moment before that, a restart finds all `N` links or none, and a start with
/// `--seed` again then has exactly `N`, never a partial seed it takes for a finished one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_seed_killed_half_way_is_in_the_file_whole_or_not_at_all() {
    const COUNT: u64 = 1000;
    let demo = linkbox::ops::seed::DEMO_KEY;
    let dir = TempDir::new("start-seed-kill");
    for (round, delay) in [150, 400, 700, 1000].into_iter().enumerate() {
        let state = dir.file(&format!("state-{round}.db"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkbox"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--seed",
                "3000",
                "--state",
            ])
            .arg(&state)
            .env("LINKBOX_LOG", "off")
            .stdout(Stdio::null())
            .spawn()
            .expect("linkbox starts");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let sandbox = Sandbox::start(&state);
        let total = link_total(&sandbox, demo).await;
        assert!(
            total == 0 || total == COUNT,
            "round {round}: {total} links of a --seed {COUNT} killed after {delay} ms"
        );
        sandbox.kill();
        let sandbox = Sandbox::start_with(&state, &["--seed", "1000"]);
        assert_eq!(link_total(&sandbox, demo).await, COUNT, "round {round}");
        sandbox.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_snapshot_restores_are_kept() {
    let dir = TempDir::new("reset");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    for n in 0..3 {
        sandbox.create_link(KEY, &format!("u{n}")).await;
    }
    let mut snapshot = sandbox.get("/_sandbox/snapshot", Some(KEY)).await;
    // The webhook URL a snapshot carries is the partner's own row, not one of its links'.
    snapshot["webhookUrl"] = json!("http://127.0.0.1:9/restored");
    let (status, _) = sandbox
        .send(reqwest::Method::POST, "/_sandbox/reset", Some(KEY), None)
        .await;
    assert_eq!(status, 200);
    sandbox.kill();

    let sandbox = Sandbox::start(&state);
    assert!(sandbox.link_ids(KEY).await.is_empty(), "the reset was kept");
    let (status, _) = sandbox
        .send(
            reqwest::Method::PUT,
            "/_sandbox/snapshot",
            Some(KEY),
            Some(snapshot.clone()),
        )
        .await;
    assert_eq!(status, 200);
    sandbox.kill();

    let sandbox = Sandbox::start(&state);
    assert_eq!(
        sandbox.get("/_sandbox/snapshot", Some(KEY)).await,
        snapshot,
        "the restore was kept"
    );
}

#[tokio::test]
async fn keys_that_only_read_leave_nothing_in_the_state_file() {
    let dir = TempDir::new("readers");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    for n in 100..110 {
        let reader = key(n);
        sandbox.get("/partner/links", Some(&reader)).await;
        sandbox.get("/_sandbox/webhooks", Some(&reader)).await;
        sandbox.get("/_sandbox/snapshot", Some(&reader)).await;
        let (status, _) = sandbox
            .send(
                reqwest::Method::GET,
                "/partner/links/link_nothing_000000000000",
                Some(&reader),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
    sandbox.create_link(KEY, "writer").await;
    sandbox.kill();

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let slugs: Vec<String> = app
        .store
        .m2m()
        .all()
        .iter()
        .map(|partner| partner.slug.to_string())
        .collect();
    assert_eq!(slugs, [linkbox::store::m2m::open_mode_slug(KEY)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_account_reset_is_kept() {
    let dir = TempDir::new("leaf-reset");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    let token = sandbox
        .client
        .post(format!("{}/api/authenticate", sandbox.base))
        .json(&json!({"username": "reset", "password": "pw"}))
        .send()
        .await
        .expect("answered")
        .json::<Value>()
        .await
        .expect("json")["id_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let links = format!("{}/services/widgets/api/magic-link/provider", sandbox.base);
    let created = sandbox
        .client
        .post(&links)
        .bearer_auth(&token)
        .json(&json!({"externalId": "farm"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status().as_u16(), 200);
    let reset = sandbox
        .client
        .post(format!("{}/_sandbox/reset", sandbox.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status().as_u16(), 200);
    sandbox.kill();

    let sandbox = Sandbox::start(&state);
    let listed: Value = sandbox
        .client
        .get(format!(
            "{}/services/widgets/api/magic-link/provider",
            sandbox.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]), "the reset was kept");
}

/// Runs the binary on `state`, expecting a refusal: non-zero exit and a message naming the
/// file; the file's bytes must be exactly as they were, and nothing created beside it.
fn assert_refused(state: &Path, says: &str) {
    assert_refused_to(Command::new(env!("CARGO_BIN_EXE_linkbox")), state, says);
}

/// [`assert_refused`], with `linkbox` run by `command` (its arguments follow).
fn assert_refused_to(mut command: Command, state: &Path, says: &str) {
    let before = std::fs::read(state).expect("file");
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    let dir = state.parent().expect("parent");
    let files_before = listing(dir);
    // A file taken after all is served until stdin ends: at once, never waited on.
    let output = command
        .args([
            "serve",
            "--stop-with-stdin",
            "--addr",
            "127.0.0.1:0",
            "--state",
        ])
        .arg(state)
        .env("LINKBOX_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "accepted {}: {stderr}",
        state.display()
    );
    assert!(output.stdout.is_empty(), "it never listened");
    assert!(
        stderr.contains(&*state.to_string_lossy()),
        "names the file: {stderr}"
    );
    assert!(stderr.contains(says), "says {says:?}: {stderr}");
    assert_eq!(
        std::fs::read(state).expect("file"),
        before,
        "the file is untouched"
    );
    assert_eq!(listing(dir), files_before, "nothing created beside it");
}

/// A linkbox state file at the latest version with a few rows, closed.
fn linkbox_file(path: &Path) {
    let connection = linkbox::persist::schema::open(path).expect("created");
    for n in 0..200 {
        connection
            .execute(
                "INSERT INTO m2m_links (tenant, id, position, doc) VALUES ('p', ?1, ?2, '{}')",
                rusqlite::params![format!("link_{n}"), n],
            )
            .expect("row");
    }
    drop(connection);
}

/// A state file linkbox may read but not write is refused as read-only ("not damaged"),
/// untouched: SQLite opens such a file for reading only without a word, and served so, each
/// change was answered and saved nowhere. Permissions do not bind root, so run as root the
/// test runs linkbox as `nobody` (uid 65534, through `setpriv`), owner of the directory, and
/// is skipped where `nobody` cannot run it (no `setpriv`, or a binary it may not reach).
#[test]
fn a_read_only_state_file_is_refused_as_such_untouched() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const NOBODY: u32 = 65_534;
    let dir = TempDir::new("read-only");
    let state = dir.file("state.db");
    let opened = linkbox::persist::open(&state).expect("a state file");
    let sink = opened.sink();
    opened.start().expect("written");
    sink.close().expect("closed cleanly");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let root = std::fs::metadata(&state).expect("file").uid() == 0;
    let command = if root {
        // `nobody` must be able to run the binary where it was built (a checkout in a
        // private home directory is not reachable to it): asked first, at no cost.
        let runs = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args([env!("CARGO_BIN_EXE_linkbox"), "--version"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !runs {
            eprintln!("skipped: run as root, and linkbox cannot be run as nobody (setpriv)");
            return;
        }
        let directory = state.parent().expect("directory");
        for path in [directory, &state] {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_linkbox"));
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_linkbox"))
    };
    assert_refused_to(command, &state, "is read-only to linkbox");
}

/// A new file in a directory that does not exist is refused as that, not as a damaged file.
#[test]
fn a_state_file_in_a_missing_directory_is_refused_as_such() {
    let dir = TempDir::new("missing-dir");
    let state = dir.file("no/such/dir/state.db");
    let output = Command::new(env!("CARGO_BIN_EXE_linkbox"))
        .args(["serve", "--addr", "127.0.0.1:0", "--state"])
        .arg(&state)
        .env("LINKBOX_LOG", "warn")
        .output()
        .expect("ran");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot create state file"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("damaged"), "{stderr}");
}

/// A state file reached through a symbolic link has one write log, beside the file itself
/// (where SQLite keeps its `-wal`): after a `kill -9`, a start by the file's own path has
/// every acknowledged change, and a start through the link again loses none of either's.
#[tokio::test]
async fn a_state_file_reached_through_a_link_keeps_one_write_log_beside_the_file() {
    let dir = TempDir::new("link");
    let real = dir.file("real.db");
    let link = dir.file("link.db");
    std::os::unix::fs::symlink(&real, &link).expect("a link to a file not made yet");
    let sandbox = Sandbox::start(&link);
    for n in 0..5 {
        sandbox.create_link(KEY, &format!("s{n}")).await;
    }
    sandbox.kill();
    for suffix in ["-log", "-holder", "-wal"] {
        let beside_link = dir.file(&format!("link.db{suffix}"));
        assert!(!beside_link.exists(), "{} made", beside_link.display());
    }
    let sandbox = Sandbox::start(&real);
    assert_eq!(
        sandbox.link_ids(KEY).await.len(),
        5,
        "by the file's own path"
    );
    sandbox.create_link(KEY, "after").await;
    sandbox.kill();
    let sandbox = Sandbox::start(&link);
    let mut references: Vec<String> =
        sandbox.get("/partner/links?limit=100", Some(KEY)).await["data"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| {
                item["referenceId"]
                    .as_str()
                    .expect("referenceId")
                    .to_owned()
            })
            .collect();
    references.sort();
    assert_eq!(references, ["after", "s0", "s1", "s2", "s3", "s4"]);
}

/// A state file of two names (a hard link) is refused, untouched, by either name: its write
/// log would be kept beside each. A link to a file in a directory that does not exist is
/// refused naming that directory.
#[test]
fn a_hard_linked_state_file_and_a_link_into_no_directory_are_refused_as_such() {
    let dir = TempDir::new("hard-link");
    let state = dir.file("state.db");
    linkbox_file(&state);
    let other = dir.file("other.db");
    std::fs::hard_link(&state, &other).expect("a second name");
    assert_refused(&state, "has 2 names (hard links)");
    assert_refused(&other, "has 2 names (hard links)");
    let link = dir.file("link.db");
    std::os::unix::fs::symlink(dir.file("nowhere/state.db"), &link).expect("a link");
    let output = Command::new(env!("CARGO_BIN_EXE_linkbox"))
        .args(["serve", "--addr", "127.0.0.1:0", "--state"])
        .arg(&link)
        .env("LINKBOX_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("ran");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("it is a link to"), "{stderr}");
    assert!(stderr.contains("nowhere does not exist"), "{stderr}");
    assert!(!dir.file("nowhere").exists());
}

/// A directory, a FIFO or a device given as the state file is refused as what it is, at
/// once: a FIFO is never opened (which waits for a writer for ever), and nothing is made
/// beside any of them.
#[test]
fn a_path_that_is_no_file_is_refused_as_such_at_once() {
    let dir = TempDir::new("no-file");
    let fifo = dir.file("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let folder = dir.file("folder");
    std::fs::create_dir(&folder).expect("a directory");
    for (path, says) in [
        (fifo.as_path(), "a FIFO, a socket or a device"),
        (folder.as_path(), "is a directory"),
        (Path::new("/dev/null"), "a FIFO, a socket or a device"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkbox"))
            .args(["serve", "--addr", "127.0.0.1:0", "--state"])
            .arg(path)
            .env("LINKBOX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ran");
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waited") {
                break status;
            }
            if started.elapsed() > std::time::Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{} held the start", path.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(!status.success(), "{}: {stderr}", path.display());
        assert!(stderr.contains(says), "{}: {stderr}", path.display());
        assert!(
            stderr.contains("give --state the path of a file"),
            "{stderr}"
        );
    }
    assert!(
        !Path::new("/dev/null-journal").exists(),
        "nothing made beside a device"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.file(""))
        .expect("dir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["fifo", "folder"], "nothing made beside them");
}

/// A database of linkbox's with nothing in it — what SQLite rolls a file back to when
/// linkbox was killed while making it — is made a state file, not refused as another
/// program's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_left_by_a_start_cut_short_is_made_a_state_file() {
    let dir = TempDir::new("cut-short");
    let state = dir.file("state.db");
    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    // Linkbox's mark is the first thing it writes (the header's application_id).
    connection
        .execute_batch(&format!(
            "PRAGMA application_id = {}; CREATE TABLE half_made (x); DROP TABLE half_made;",
            linkbox::persist::schema::APPLICATION_ID
        ))
        .expect("emptied");
    drop(connection);
    assert!(std::fs::metadata(&state).expect("file").len() > 0);
    let sandbox = Sandbox::start(&state);
    sandbox.create_link(&key(61), "after").await;
    sandbox.kill();
    let sandbox = Sandbox::start(&state);
    assert_eq!(sandbox.link_ids(&key(61)).await.len(), 1);
}

#[test]
fn files_that_are_not_linkbox_state_are_refused_untouched() {
    let dir = TempDir::new("refuse");

    let text = dir.file("notes.txt");
    std::fs::write(&text, "a shopping list, not a database\n".repeat(20)).expect("write");
    assert_refused(&text, "not a SQLite database");

    let other = dir.file("other.sqlite");
    let connection = rusqlite::Connection::open(&other).expect("sqlite");
    connection
        .execute_batch("CREATE TABLE meta (app TEXT, schema_version INTEGER); INSERT INTO meta VALUES ('linkbox', 1);")
        .expect("other program's tables");
    drop(connection);
    assert_refused(&other, "another program");

    let damaged = dir.file("damaged.db");
    linkbox_file(&damaged);
    let mut bytes = std::fs::read(&damaged).expect("file");
    let page = 4096;
    assert!(bytes.len() > 2 * page);
    for byte in &mut bytes[page..2 * page] {
        *byte = 0xA5;
    }
    std::fs::write(&damaged, bytes).expect("damage");
    assert_refused(&damaged, "damaged");

    // A commit its writer left in the write log, whose bytes no longer read as changes:
    // refused, not skipped, so no change a client was told was saved goes missing quietly.
    let unreadable = dir.file("unreadable-log.db");
    linkbox_file(&unreadable);
    let connection = rusqlite::Connection::open(&unreadable).expect("sqlite");
    connection
        .execute("INSERT INTO write_log (batch) VALUES (x'05ff')", [])
        .expect("a broken log row");
    drop(connection);
    assert_refused(&unreadable, "write_log row 1 cannot be read");
}

/// A write log damaged in its middle — sound frames after the damage, so no power cut's
/// tail — refuses the file, log kept byte for byte, rather than start without the
/// acknowledged changes those frames hold and delete them with the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_log_damaged_before_sound_frames_refuses_the_file_and_keeps_the_log() {
    let dir = TempDir::new("damaged-log");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    let key = key(41);
    for n in 0..40 {
        sandbox.create_link(&key, &format!("customer-{n}")).await;
    }
    // At once: the applier takes the log over after 50 ms without a change.
    sandbox.kill();
    let log = log_file(&state, "-log");
    let mut bytes = std::fs::read(&log).expect("the write log");
    assert!(
        bytes.len() > 4096,
        "the creates are still in the log: {} bytes",
        bytes.len()
    );
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x20;
    std::fs::write(&log, &bytes).expect("damaged");
    let output = Command::new(env!("CARGO_BIN_EXE_linkbox"))
        .args(["serve", "--addr", "127.0.0.1:0", "--state"])
        .arg(&state)
        .env("LINKBOX_LOG", "warn")
        .output()
        .expect("ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(output.stdout.is_empty(), "it never listened");
    assert!(
        stderr.contains("a sound frame of this state file's log follows"),
        "{stderr}"
    );
    assert!(stderr.contains("move"), "says what to do: {stderr}");
    assert_eq!(
        std::fs::read(&log).expect("the write log is kept"),
        bytes,
        "the log is kept as it was"
    );
    // Nothing was applied or dropped: with the damage undone, every create is there.
    bytes[middle] ^= 0x20;
    std::fs::write(&log, &bytes).expect("repaired");
    let sandbox = Sandbox::start(&state);
    assert_eq!(sandbox.link_ids(&key).await.len(), 40);
}

/// The admin reset forgets open-mode partners whole, in the file too: a restart with the
/// same `--max-tenants` finds every place free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_the_admin_reset_forgot_take_no_place_after_a_restart() {
    let dir = TempDir::new("forgotten");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start_with(&state, &["--max-tenants", "1"]);
    sandbox.create_link(&key(51), "first").await;
    let (status, body) = sandbox
        .send(reqwest::Method::POST, "/_sandbox/reset", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    sandbox.kill();
    let sandbox = Sandbox::start_with(&state, &["--max-tenants", "1"]);
    sandbox.create_link(&key(52), "second").await;
    let (status, body) = sandbox
        .send(
            reqwest::Method::POST,
            "/partner/links",
            Some(&key(51)),
            Some(json!({"referenceId": "again"})),
        )
        .await;
    assert_eq!(status, 403, "one place, taken by the second key: {body}");
}

/// A configured partner's webhook URL and secret after opening `state` with a config file
/// that gives them as `url` and `secret`, and then `change`, through the API.
async fn hooks_after(
    state: &Path,
    url: Option<&str>,
    secret: Option<&str>,
    change: impl FnOnce(&linkbox::store::m2m::Partner),
) -> (Option<String>, String) {
    let config = linkbox::config::FileConfig::parse(&format!(
        "[[partners]]\nslug = \"acme\"\nkeys = [\"{KEY}\"]\n{}{}",
        url.map_or(String::new(), |url| format!("webhook_url = \"{url}\"\n")),
        secret.map_or(String::new(), |secret| format!(
            "webhook_secret = \"{secret}\"\n"
        )),
    ))
    .expect("config");
    let settings = linkbox::Settings::resolve(
        linkbox::Options {
            state: Some(state.to_owned()),
            file: Some(config),
            ..linkbox::Options::default()
        },
        "127.0.0.1:1".parse().expect("addr"),
    );
    let app = linkbox::App::open(settings).await.expect("opened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let seen = (partner.webhook_url(), partner.webhook_secret());
    change(&partner);
    closed(app).await;
    seen
}

#[tokio::test]
async fn the_later_of_a_config_edit_and_an_api_change_to_a_partners_webhooks_wins() {
    let dir = TempDir::new("config-edit");
    let state = dir.file("state.db");
    let (a, b, c) = (
        "http://127.0.0.1:9/a",
        "http://127.0.0.1:9/b",
        "http://127.0.0.1:9/c",
    );
    let (secret_a, secret_b) = (
        "whsec_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "whsec_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    );
    // Written once by a first start, then edited in the config file: the edit is later.
    hooks_after(&state, Some(a), Some(secret_a), |_| ()).await;
    let mut regenerated = String::new();
    let seen = hooks_after(&state, Some(b), Some(secret_b), |partner| {
        partner
            .set_webhook_url(Some("http://127.0.0.1:9/api".into()))
            .expect("room");
        regenerated = partner.regenerate_webhook_secret();
    })
    .await;
    assert_eq!(seen, (Some(b.to_owned()), secret_b.to_owned()));
    // Changed through the API since, with the config file as it was: the API's change wins.
    let seen = hooks_after(&state, Some(b), Some(secret_b), |_| ()).await;
    assert_eq!(
        seen,
        (
            Some("http://127.0.0.1:9/api".to_owned()),
            regenerated.clone()
        )
    );
    // Then only the URL edited: it wins, and the secret set through the API stays.
    let seen = hooks_after(&state, Some(c), Some(secret_b), |_| ()).await;
    assert_eq!(seen, (Some(c.to_owned()), regenerated.clone()));
    // A URL taken out of the config file is gone; a secret taken out keeps the one in use.
    let seen = hooks_after(&state, None, None, |_| ()).await;
    assert_eq!(seen, (None, regenerated.clone()));
    let seen = hooks_after(&state, None, None, |_| ()).await;
    assert_eq!(seen, (None, regenerated));
}

#[test]
fn a_file_of_a_newer_schema_is_refused_untouched() {
    let dir = TempDir::new("newer");
    let state = dir.file("state.db");
    linkbox_file(&state);
    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    connection
        .execute(
            "UPDATE meta SET schema_version = ?1",
            [linkbox::persist::schema::LATEST + 1],
        )
        .expect("bumped");
    drop(connection);
    assert_refused(&state, "newer");
}

fn settings(state: &Path) -> linkbox::Settings {
    linkbox::Settings::resolve(
        linkbox::Options {
            state: Some(state.to_owned()),
            ..linkbox::Options::default()
        },
        "127.0.0.1:1".parse().expect("addr"),
    )
}

/// Everything a reopened file must give back, as the APIs show it.
#[derive(Debug, PartialEq)]
struct Seen {
    snapshot: linkbox_contracts::sandbox::M2mSnapshot,
    webhook_secret: String,
    deliveries: Vec<linkbox_contracts::sandbox::DeliveryView>,
    /// The clock as kept: its offset and the reading it is frozen at (a frozen clock's
    /// offset from real time grows as real time passes).
    clock: (time::Duration, Option<time::OffsetDateTime>),
    frozen: bool,
    leaf_users: Vec<linkbox_contracts::leaf::LeafUser>,
    leaf_links: Vec<linkbox_contracts::leaf::MagicLink>,
    signing_secret: String,
}

fn seen(app: &linkbox::App) -> Seen {
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let account = app.store.leaf().account("qa").expect("account");
    Seen {
        snapshot: partner.snapshot(),
        webhook_secret: partner.webhook_secret(),
        deliveries: app.webhooks.deliveries(linkbox::webhooks::Visible::All),
        clock: app.clock.setting(),
        frozen: app.clock.reading().frozen,
        leaf_users: account
            .list_users(&linkbox::store::leaf::UserFilter::default(), 0, 100)
            .0,
        leaf_links: account
            .list_magic_links(linkbox_contracts::leaf::Widget::Provider, None, None)
            .0,
        signing_secret: app.store.leaf().signing_secret_hex(),
    }
}

#[tokio::test]
async fn every_kind_of_state_reads_back_as_it_was_written() {
    use linkbox::store::leaf::{LinkKind, LinkOwner, NewMagicLink, UserFields};
    use linkbox::store::m2m::{NewLink, NewOperation};
    use linkbox_contracts::leaf::{AllowedProvider, LinkSettings, Provider};

    let dir = TempDir::new("roundtrip");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    app.clock
        .advance(time::Duration::hours(5))
        .expect("in range");
    app.clock.set_frozen(true);
    let now = app.clock.now();
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    partner
        .set_webhook_url(Some("http://127.0.0.1:9/hooks".into()))
        .expect("room");
    partner.regenerate_webhook_secret();
    let new_link = |reference_id: &str| NewLink {
        reference_id: reference_id.into(),
        flow: "m2m-basic".into(),
        user_data: Some(json!({"name": {"firstName": "Ana"}})),
        metadata: Some(json!({"orderId": reference_id})),
        ..NewLink::default()
    };
    let opened = partner.create_link(new_link("u1"), now).expect("link");
    let request = partner
        .open_link(&opened.link_id, now)
        .expect("opened")
        .data_request
        .expect("a data request");
    partner
        .fulfil_data_request(
            &request.data_request_id,
            "u1",
            json!({"dob": "1990-01-01"}),
            now,
        )
        .expect("fulfilled");
    let amount = linkbox_contracts::m2m::OperationAmount {
        send: 100.0,
        receive: 97.0,
        fee: 3.0,
        send_currency: "USD".into(),
        receive_currency: "USD".into(),
    };
    partner
        .create_operation(
            &opened.link_id,
            NewOperation {
                amount: amount.clone(),
            },
            now,
        )
        .expect("operation");
    partner
        .cancel_operation(&opened.link_id, now)
        .expect("cancelled");
    partner
        .create_operation(&opened.link_id, NewOperation { amount }, now)
        .expect("a second operation");
    let revoked = partner.create_link(new_link("u2"), now).expect("link");
    partner
        .revoke_link(&revoked.link_id, Some("fraud".into()), now)
        .expect("revoked");
    app.webhooks.enqueue(
        &partner,
        "link.created",
        json!({"linkId": opened.link_id}),
        None,
        now,
    );

    let accounts = app.store.leaf();
    let account = accounts.account("qa").expect("account");
    let user = account
        .create_user(UserFields {
            name: "Farmer".into(),
            email: "f@example.com".into(),
            external_id: Some("farmer-1".into()),
            ..UserFields::default()
        })
        .expect("user");
    accounts
        .connect_provider("qa", &user.id, Provider::JohnDeere, now)
        .expect("connected");
    let gone = account
        .create_user(UserFields {
            name: "Gone".into(),
            email: "g@example.com".into(),
            ..UserFields::default()
        })
        .expect("user");
    account.delete_user(&gone.id).expect("deleted");
    let provider_link = || NewMagicLink {
        kind: LinkKind::Provider(vec![AllowedProvider::All]),
        expires_in: time::Duration::hours(1),
        settings: LinkSettings::default(),
    };
    let link = account
        .create_magic_link(LinkOwner::Existing(user.id.clone()), provider_link(), now)
        .expect("magic link");
    accounts
        .access_magic_link("qa", &link.id, now)
        .expect("accessed");
    accounts
        .access_magic_link("qa", &link.id, now)
        .expect("accessed");
    let deleted = account
        .create_magic_link(LinkOwner::Existing(user.id.clone()), provider_link(), now)
        .expect("magic link");
    account
        .delete_magic_link(linkbox_contracts::leaf::Widget::Provider, &deleted.id)
        .expect("deleted");

    let before = seen(&app);
    assert_eq!(before.snapshot.operations.len(), 1);
    assert_eq!(before.leaf_links[0].usage_count, 2);
    closed(app).await;

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    assert_eq!(seen(&app), before);
    app.sink.close().expect("every change saved");
}

/// Deliveries a partner's flood of events dropped from behind a quieter partner's older
/// ones are gone from the file too: reopened, the deliveries are those that were kept,
/// the quiet partner's among them.
#[tokio::test]
async fn deliveries_dropped_per_partner_read_back_as_they_were_kept() {
    let dir = TempDir::new("trimmed-per-partner");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let now = app.clock.now();
    let quiet = app.store.m2m().authenticate(&key(1)).expect("partner");
    let busy = app.store.m2m().authenticate(&key(2)).expect("partner");
    for n in 0..3 {
        let link = json!({"linkId": format!("link_q{n}")});
        app.webhooks
            .enqueue(&quiet, "link.created", link, None, now);
    }
    // Past the 10,000 kept and a batch of 625 more, so the busy partner's oldest are
    // dropped from behind the quiet partner's.
    for n in 0..10_700 {
        let link = json!({"linkId": format!("link_b{n}")});
        app.webhooks.enqueue(&busy, "link.created", link, None, now);
    }
    let kept = app.webhooks.deliveries(linkbox::webhooks::Visible::All);
    let quiet_kept = app
        .webhooks
        .deliveries(linkbox::webhooks::Visible::Tenant(&quiet.slug))
        .len();
    assert_eq!(quiet_kept, 3);
    assert!(kept.len() < 10_700, "{} kept", kept.len());
    closed(app).await;

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    assert_eq!(
        app.webhooks.deliveries(linkbox::webhooks::Visible::All),
        kept
    );
    app.sink.close().expect("every change saved");
}

/// A file where a victim (`key(1)`) has links for `v1` and `v2` and a bystander (`key(2)`)
/// one for `b1`, in that order; the file is closed.
async fn victim_and_bystander(state: &Path) -> [linkbox_contracts::m2m::CreatedLink; 3] {
    use linkbox::store::m2m::NewLink;

    let app = linkbox::App::open(settings(state)).await.expect("opened");
    let now = app.clock.now();
    let new_link = |reference_id: &str| NewLink {
        reference_id: reference_id.into(),
        flow: "m2m-basic".into(),
        ..NewLink::default()
    };
    let victim = app.store.m2m().authenticate(&key(1)).expect("partner");
    let bystander = app.store.m2m().authenticate(&key(2)).expect("partner");
    let links = [
        victim.create_link(new_link("v1"), now).expect("link"),
        victim.create_link(new_link("v2"), now).expect("link"),
        bystander.create_link(new_link("b1"), now).expect("link"),
    ];
    closed(app).await;
    links
}

/// Waits until everything `app` recorded is in its file, then closes the file and lets the
/// app go, so that the test can read the file or open it again.
async fn closed(app: linkbox::App) {
    app.sink.settled().await.expect("durable");
    app.sink.close().expect("every change saved");
}

/// [`victim_and_bystander`], with the victim's first link's row then damaged
/// ([`break_link_row`]).
async fn first_link_broken(state: &Path) -> [linkbox_contracts::m2m::CreatedLink; 3] {
    let links = victim_and_bystander(state).await;
    break_link_row(state, &links[0].link_id);
    links
}

/// Makes the closed file's row of link `link_id` what an older linkbox could write: a
/// document that no longer reads back.
fn break_link_row(state: &Path, link_id: &str) {
    let connection = rusqlite::Connection::open(state).expect("sqlite");
    let changed = connection
        .execute(
            "UPDATE m2m_links SET doc = '{\"linkId\": null}' WHERE id = ?1",
            [link_id],
        )
        .expect("damaged");
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn a_bad_row_is_quarantined_and_everyone_else_starts() {
    let dir = TempDir::new("quarantine");
    let state = dir.file("state.db");
    let [broken, kept, other] = first_link_broken(&state).await;

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("a bad row does not refuse the file");
    let bystander = app.store.m2m().authenticate(&key(2)).expect("partner");
    assert!(
        bystander.link(&other.link_id).is_ok(),
        "the bystander is untouched"
    );
    let victim = app.store.m2m().authenticate(&key(1)).expect("partner");
    assert!(victim.link(&broken.link_id).is_err());
    assert!(
        victim.link(&kept.link_id).is_ok(),
        "only the bad row is set aside"
    );
    closed(app).await;

    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let (source, id, reason): (String, String, String) = connection
        .query_row("SELECT source, id, reason FROM quarantine", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .expect("one quarantined row");
    assert_eq!(
        (source.as_str(), id.as_str()),
        ("m2m_links", broken.link_id.as_str())
    );
    assert!(reason.contains("m2m_links"), "{reason}");
    let left: i64 = connection
        .query_row(
            "SELECT count(*) FROM m2m_links WHERE id = ?1",
            [&broken.link_id],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(left, 0, "moved out of its table");
}

#[tokio::test]
async fn a_partner_whose_rows_do_not_fit_together_starts_empty_with_each_row_set_aside_once() {
    let dir = TempDir::new("quarantine-partner");
    let state = dir.file("state.db");
    let [orphan, _, other] = victim_and_bystander(&state).await;

    // Each row reads on its own, but together they do not: a link whose user is gone, and
    // a row that does not parse besides.
    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let slug: String = connection
        .query_row(
            "SELECT tenant FROM m2m_links WHERE id = ?1",
            [&orphan.link_id],
            |row| row.get(0),
        )
        .expect("the victim's slug");
    let deleted = connection
        .execute(
            "DELETE FROM m2m_users WHERE tenant = ?1 AND doc LIKE '%\"v1\"%'",
            [&slug],
        )
        .expect("user deleted");
    assert_eq!(deleted, 1);
    connection
        .execute(
            "UPDATE m2m_users SET doc = 'not json' WHERE tenant = ?1",
            [&slug],
        )
        .expect("damaged");
    drop(connection);

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("a partner's bad rows do not refuse the file");
    let victim = app.store.m2m().authenticate(&key(1)).expect("partner");
    assert!(
        victim.snapshot().links.is_empty(),
        "the victim starts empty"
    );
    let bystander = app.store.m2m().authenticate(&key(2)).expect("partner");
    assert!(
        bystander.link(&other.link_id).is_ok(),
        "the bystander is untouched"
    );
    closed(app).await;

    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let mut statement = connection
        .prepare("SELECT source, tenant, reason FROM quarantine ORDER BY source, id")
        .expect("query");
    let set_aside: Vec<(String, String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("read");
    let sources: Vec<&str> = set_aside
        .iter()
        .map(|(source, ..)| source.as_str())
        .collect();
    assert_eq!(
        sources,
        ["m2m_links", "m2m_links", "m2m_users"],
        "{set_aside:?}"
    );
    for (source, tenant, reason) in &set_aside {
        assert_eq!(tenant, &slug);
        let why = if source == "m2m_users" {
            "m2m_users row"
        } else {
            "unknown referenceId"
        };
        assert!(reason.contains(why), "{source}: {reason}");
    }
}

#[tokio::test]
async fn rows_after_a_gap_are_renumbered_so_later_changes_land_on_them() {
    let dir = TempDir::new("renumber");
    let state = dir.file("state.db");
    let [_, kept, _] = first_link_broken(&state).await;

    // The first link is set aside, so the second becomes the partner's link 0; revoking it
    // then writes its row at position 0, where the file must hold it.
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let victim = app.store.m2m().authenticate(&key(1)).expect("partner");
    victim
        .revoke_link(&kept.link_id, None, app.clock.now())
        .expect("revoked");
    closed(app).await;

    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let rows: Vec<(String, i64)> = connection
        .prepare("SELECT id, position FROM m2m_links WHERE tenant = ?1 ORDER BY position")
        .and_then(|mut statement| {
            statement
                .query_map([&slug_of(&kept.link_id)], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect()
        })
        .expect("rows");
    assert_eq!(
        rows,
        [(kept.link_id.clone(), 0)],
        "one row, at its new position"
    );
    drop(connection);

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let victim = app.store.m2m().authenticate(&key(1)).expect("partner");
    let link = victim.link(&kept.link_id).expect("still there");
    assert_eq!(
        serde_json::to_value(&link).expect("json")["status"],
        "revoked",
        "the change made after the renumbering is the one read back"
    );
}

#[tokio::test]
async fn a_delivery_given_back_at_another_seq_is_written_there() {
    let dir = TempDir::new("renumber-delivery");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    for n in 0..3 {
        app.webhooks.enqueue(
            &partner,
            "link.created",
            json!({"linkId": format!("link_{n}")}),
            None,
            app.clock.now(),
        );
    }
    closed(app).await;
    // Two deliveries at one position, as a hand-edited file could have them: the later is
    // kept after the earlier, one seq on.
    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let rows = |connection: &rusqlite::Connection| -> Vec<(String, i64)> {
        connection
            .prepare("SELECT id, position FROM webhook_deliveries ORDER BY position, id")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .expect("rows")
    };
    let before = rows(&connection);
    assert_eq!(before.len(), 3, "{before:?}");
    let (first, second) = (before[0].clone(), before[1].clone());
    connection
        .execute(
            "UPDATE webhook_deliveries SET position = ?1 WHERE id = ?2",
            rusqlite::params![first.1, second.0],
        )
        .expect("moved");
    drop(connection);

    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let order = queue_order(&app);
    closed(app).await;

    let connection = rusqlite::Connection::open(&state).expect("sqlite");
    let after = rows(&connection);
    drop(connection);
    // Which of the two is read first is the file's business; whichever it is, each row is
    // now at the seq its delivery was given, the second one seq on.
    assert_eq!(
        after.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        order,
        "one row per delivery, in queue order"
    );
    assert_eq!(
        after
            .iter()
            .map(|(_, position)| *position)
            .collect::<Vec<_>>(),
        [first.1, first.1 + 1, before[2].1],
        "the moved delivery's row is at the seq it was given"
    );

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let again = queue_order(&app);
    assert_eq!(
        again, order,
        "the queue reads back in the order it was given"
    );
}

/// The ids of the webhook queue, oldest first (the list shows the newest first).
fn queue_order(app: &linkbox::App) -> Vec<String> {
    app.webhooks
        .deliveries(linkbox::webhooks::Visible::All)
        .into_iter()
        .rev()
        .map(|delivery| delivery.id)
        .collect()
}

/// The tenant (partner slug) of an M2M id, `<kind>_<slug>_<suffix>`.
fn slug_of(id: &str) -> String {
    id.split('_').nth(1).expect("a slug").to_owned()
}

#[tokio::test]
async fn the_write_ahead_log_stays_bounded_under_a_stream_of_small_commits() {
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("wal-bound");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let padding = "x".repeat(2_000);
    // Each create committed alone to the write log, and applied to the tables 2,048
    // changes (or 1 MiB of documents) at a time: about 10 MB of rows, each link with an
    // overflow page of its own, over 25 MB of pages in all, many times the bound.
    for n in 0..2_500 {
        partner
            .create_link(
                NewLink {
                    reference_id: format!("customer-{n}"),
                    flow: "m2m-basic".into(),
                    metadata: Some(json!({ "padding": padding })),
                    ..NewLink::default()
                },
                app.clock.now(),
            )
            .expect("link");
        app.sink.settled().await.expect("durable");
    }
    let mut log = state.as_os_str().to_owned();
    log.push("-wal");
    let size = std::fs::metadata(&log).expect("the log").len();
    // The bound: 4 MiB of pages (500 of 8 KiB) with their frame headers, checkpointed
    // after the commit that crossed it, and that commit beyond: an apply of at most 1 MiB
    // of documents, here about 500 links with their overflow pages, users and deliveries.
    // About 9.9 MB in all.
    assert!(
        size < 1_200 * (8_192 + 24),
        "the log grew to {size} bytes: it is not being checkpointed"
    );
    assert_eq!(partner.snapshot().links.len(), 2_500);
    app.sink.close().expect("every change saved");
    drop(app);
    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    assert_eq!(partner.snapshot().links.len(), 2_500, "every link kept");
}

/// A reset deletes a tenant's rows in one apply, whose pages the log grows to hold; once a
/// checkpoint has emptied it, the next write cuts the `-wal` file back to the bound, so the
/// disk does not keep the largest reset's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_large_reset_the_write_ahead_log_is_cut_back() {
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("wal-reset");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let new_link = |n: usize| NewLink {
        reference_id: format!("customer-{n}"),
        flow: "m2m-basic".into(),
        metadata: Some(json!({"order": n})),
        ..NewLink::default()
    };
    for n in 0..40_000 {
        partner
            .create_link(new_link(n), app.clock.now())
            .expect("link");
    }
    app.sink.settled().await.expect("durable");
    let mut log = state.as_os_str().to_owned();
    log.push("-wal");
    let size = || std::fs::metadata(&log).map_or(0, |meta| meta.len());
    let bound = 1_200 * (8_192 + 24);
    partner.reset();
    // Written until the reset's apply has grown the log past the bound, and then until a
    // checkpoint has emptied it and a write has begun it again.
    let started = std::time::Instant::now();
    let mut grown = 0;
    let mut n = 40_000;
    while grown <= bound || size() >= grown {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the log grew to {grown} and stayed at {} bytes",
            size()
        );
        partner
            .create_link(new_link(n), app.clock.now())
            .expect("link");
        n += 1;
        app.sink.settled().await.expect("durable");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        grown = grown.max(size());
    }
    assert!(size() < bound, "cut back to {} bytes", size());
}

#[tokio::test]
async fn links_and_users_come_back_in_creation_order() {
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("order");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let now = app.clock.now();
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    // Forty links over fifteen users, each user's earlier links revoked: ids are minted
    // out of creation order, so the file's key order is not this one.
    for n in 0..40 {
        let reference_id = format!("customer-{}", n % 15);
        if let Some(active) = partner
            .snapshot()
            .links
            .iter()
            .rev()
            .find(|link| link.reference_id == reference_id)
        {
            partner
                .revoke_link(&active.link_id, None, now)
                .expect("revoked");
        }
        partner
            .create_link(
                NewLink {
                    reference_id,
                    flow: "m2m-basic".into(),
                    metadata: Some(json!({"n": n})),
                    ..NewLink::default()
                },
                now,
            )
            .expect("link");
    }
    let before = serde_json::to_value(partner.snapshot()).expect("json");
    let mut ids: Vec<&str> = before["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|link| link["linkId"].as_str())
        .collect();
    assert_eq!(ids.len(), 40);
    ids.sort_unstable();
    assert_ne!(
        ids,
        before["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter_map(|link| link["linkId"].as_str())
            .collect::<Vec<_>>(),
        "creation order differs from id order"
    );
    closed(app).await;

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let after = serde_json::to_value(partner.snapshot()).expect("json");
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_second_server_on_the_same_file_is_refused_naming_the_first() {
    let dir = TempDir::new("lock");
    let state = dir.file("state.db");
    let first = linkbox::App::open(settings(&state)).await.expect("opened");
    let refused = linkbox::App::open(settings(&state))
        .await
        .err()
        .expect("the file is in use");
    let text = refused.to_string();
    assert!(text.contains("in use by another linkbox"), "{text}");
    let pid = std::process::id();
    assert!(
        text.contains(&format!("pid {pid} on ")) || text.contains(&format!("pid {pid})")),
        "names the holder: {text}"
    );
    let note = dir.file("state.db-holder");
    assert!(note.exists(), "the holder keeps its note beside the file");
    first.sink.close().expect("every change saved");
    drop(first);
    assert!(!note.exists(), "the note goes with the lock");
    let second = linkbox::App::open(settings(&state))
        .await
        .expect("free once the first closed it");
    second.sink.close().expect("every change saved");
}

/// The file beside `state` whose name ends in `suffix`: the write log is `-log`, and
/// `-log.applying` once handed over.
fn log_file(state: &Path, suffix: &str) -> std::path::PathBuf {
    let mut path = state.as_os_str().to_owned();
    path.push(suffix);
    path.into()
}

/// A connection to `state` whose `switch` table, on (1) until set to 0, makes every insert
/// into `table` fail with `message`.
fn failing_inserts(state: &Path, table: &str, message: &str) -> rusqlite::Connection {
    let switch = rusqlite::Connection::open(state).expect("sqlite");
    switch
        .execute_batch(&format!(
            "CREATE TABLE switch (fail INTEGER NOT NULL); INSERT INTO switch VALUES (1);
             CREATE TRIGGER full BEFORE INSERT ON {table} WHEN (SELECT fail FROM switch) = 1
             BEGIN SELECT RAISE(ABORT, '{message}'); END;"
        ))
        .expect("switch");
    switch
}

/// A sandbox serving on `state` whose disk is full: every commit goes to the write log
/// first, `FILE-log`, which here names `/dev/full` until the disk is freed (the log's path
/// removed). Its app, base URL, log path, stop and served task.
struct FullDisk {
    app: linkbox::App,
    base: String,
    log: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), linkbox::persist::Unsaved>>,
}

async fn serving_on_a_full_disk(state: &Path) -> FullDisk {
    let log = log_file(state, "-log");
    std::os::unix::fs::symlink("/dev/full", &log).expect("a full disk");
    let Serving {
        app,
        base,
        stop,
        served,
    } = serving(state).await;
    FullDisk {
        app,
        base,
        log,
        stop,
        served,
    }
}

/// A sandbox serving on `state` over loopback: its app, base URL, stop and served task.
struct Serving {
    app: linkbox::App,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), linkbox::persist::Unsaved>>,
}

async fn serving(state: &Path) -> Serving {
    let app = linkbox::App::open(settings(state)).await.expect("opened");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(linkbox::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    Serving {
        app,
        base,
        stop,
        served,
    }
}

/// `POST /partner/links` with `referenceId` `reference`, as [`KEY`]: its answer.
async fn create(client: &reqwest::Client, base: &str, reference: &str) -> reqwest::Response {
    client
        .post(format!("{base}/partner/links"))
        .header("x-api-key", KEY)
        .json(&json!({"referenceId": reference}))
        .send()
        .await
        .expect("answer")
}

/// Stopped while a change answered `503 STATE_NOT_SAVED` is still not in the file, the
/// server says so in its result (and `linkbox serve` in its exit status), not as a clean
/// stop a supervisor would take at its word.
#[tokio::test]
async fn stopping_with_changes_the_file_does_not_have_is_an_error_not_a_clean_stop() {
    let dir = TempDir::new("stop-full");
    let FullDisk {
        base, stop, served, ..
    } = serving_on_a_full_disk(&dir.file("state.db")).await;
    let failed = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{base}/partner/links"))
        .header("x-api-key", KEY)
        .json(&json!({"referenceId": "never-saved"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(failed.status(), 503);
    let _ = stop.send(());
    let unsaved = served
        .await
        .expect("joined")
        .expect_err("the change is not in the file");
    assert!(unsaved.to_string().contains("STATE_NOT_SAVED"), "{unsaved}");
}

#[tokio::test]
async fn a_failed_save_answers_503_to_that_write_only_and_is_retried() {
    let dir = TempDir::new("diskfull");
    let state = dir.file("state.db");
    let FullDisk {
        app,
        base,
        log,
        stop,
        ..
    } = serving_on_a_full_disk(&state).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let failed = create(&client, &base, "while-full").await;
    assert_eq!(failed.status(), 503);
    let body: Value = failed.json().await.expect("json");
    // In M2M's own envelope, as every answer on its paths.
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("none of it is in the state file"),
        "{message}"
    );

    let health = client
        .get(format!("{base}/_sandbox/health"))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        health.status(),
        200,
        "reads are answered during the failure"
    );
    let list = client
        .get(format!("{base}/partner/links"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("answer");
    assert_eq!(list.status(), 200);

    std::fs::remove_file(&log).expect("disk freed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for attempt in 0.. {
        let saved = create(&client, &base, &format!("after-{attempt}")).await;
        if saved.status() == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {}",
            saved.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    app.sink.settled().await.expect("durable");
    // Closing applies the write log to the tables.
    app.sink.close().expect("every change saved");
    let reader = rusqlite::Connection::open(&state).expect("sqlite");
    let stored: Vec<String> = {
        let mut statement = reader.prepare("SELECT doc FROM m2m_links").expect("query");
        statement
            .query_map([], |row| row.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("docs")
    };
    assert!(
        stored.iter().any(|doc| doc.contains("while-full")),
        "the change answered 503 was saved by a retry: {stored:?}"
    );
}

/// The state file deleted while a sandbox serves it: a write is answered `503
/// STATE_NOT_SAVED` saying the file is gone (not a 201 for a change no file will have),
/// reads as usual, and stopping is an error, which `serve` makes its exit status.
#[tokio::test]
async fn a_state_file_deleted_while_serving_refuses_writes_and_stopping_is_an_error() {
    let dir = TempDir::new("deleted");
    let state = dir.file("state.db");
    let Serving {
        base, stop, served, ..
    } = serving(&state).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert_eq!(create(&client, &base, "before").await.status(), 201);
    let token: Value = client
        .post(format!("{base}/api/authenticate"))
        .json(&json!({"username": "grower", "password": "p"}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let token = token["id_token"].as_str().unwrap_or_default().to_owned();

    std::fs::remove_file(&state).expect("deleted");
    // Each API answers in its own envelope; the control API with its own code.
    let refused = create(&client, &base, "after").await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("deleted or replaced"), "{message}");
    // Where the file is, is for linkbox's log: a stranger's key reads this too.
    let path = state.to_string_lossy();
    assert!(!message.contains(path.as_ref()), "{message}");
    let user = client
        .post(format!("{base}/services/usermanagement/api/users"))
        .bearer_auth(&token)
        .json(&json!({"name": "a", "email": "a@example.com"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(user.status(), 503);
    assert_eq!(
        user.headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = user.json().await.expect("json");
    assert_eq!(problem["status"], 503, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("deleted or replaced")),
        "{problem}"
    );
    let clock = client
        .post(format!("{base}/_sandbox/clock"))
        .json(&json!({"advanceSeconds": 1}))
        .send()
        .await
        .expect("answer");
    assert_eq!(clock.status(), 503);
    let body: Value = clock.json().await.expect("json");
    assert_eq!(body["error"]["code"], "STATE_NOT_SAVED", "{body}");
    let list = client
        .get(format!("{base}/partner/links"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("answer");
    assert_eq!(list.status(), 200, "reads are answered");

    let _ = stop.send(());
    let stopped = served.await.expect("joined").expect_err("not a clean stop");
    assert!(
        stopped.to_string().contains("deleted or replaced"),
        "{stopped}"
    );
}

/// A create's rows hold its JSON as JSON: the link's `metadata` and the `link.created`
/// delivery's body are objects in their documents, not strings holding them, and come back
/// as they were after a restart.
#[tokio::test]
async fn a_creates_rows_hold_its_metadata_and_webhook_body_as_json() {
    let dir = TempDir::new("rawjson");
    let state = dir.file("state.db");
    let Serving {
        app,
        base,
        stop,
        served,
    } = serving(&state).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let metadata = json!({"orderId": "ORD-1", "note": "a \"quoted\" é", "n": [1, 2.5]});
    let created = client
        .post(format!("{base}/partner/links"))
        .header("x-api-key", KEY)
        .json(&json!({"referenceId": "raw-1", "metadata": metadata}))
        .send()
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let link_id = created["data"]["linkId"]
        .as_str()
        .expect("linkId")
        .to_owned();
    let _ = stop.send(());
    served.await.expect("stopped").expect("every change saved");
    app.sink.settled().await.expect("durable");
    app.sink.close().expect("every change saved");

    let reader = rusqlite::Connection::open(&state).expect("sqlite");
    let doc = |table: &str| -> Value {
        let text: String = reader
            .query_row(&format!("SELECT doc FROM {table}"), [], |row| row.get(0))
            .expect("one row");
        serde_json::from_str(&text).expect("a JSON document")
    };
    let link = doc("m2m_links");
    assert_eq!(link["linkId"], link_id.as_str());
    assert_eq!(link["metadata"], metadata, "{link}");
    let delivery = doc("webhook_deliveries");
    assert!(delivery["body"].is_object(), "{delivery}");
    assert_eq!(delivery["body"]["event"], "link.created");
    assert_eq!(delivery["body"]["data"]["linkId"], link_id.as_str());
    assert_eq!(delivery["body"]["data"]["metadata"], metadata);
    drop(reader);

    let again = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let partner = again.store.m2m().authenticate(KEY).expect("partner");
    let detail = partner.link(&link_id).expect("the link is back");
    assert_eq!(detail.metadata, Some(metadata));
    again.sink.close().expect("every change saved");
}

/// Creates answered over HTTP append their own frames, without the writer thread: once
/// writes stop, they reach their table all the same (the README's `sqlite3` line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_answered_over_http_reach_their_table_once_writes_stop() {
    let dir = TempDir::new("idle-http");
    let state = dir.file("state.db");
    let sandbox = Sandbox::start(&state);
    let key = key(71);
    for n in 0..3 {
        sandbox.create_link(&key, &format!("customer-{n}")).await;
    }
    let reader =
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("a reader");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let count: i64 = reader
            .query_row("SELECT count(*) FROM m2m_links", [], |row| row.get(0))
            .expect("count");
        if count == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} of 3 links in their table"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_reader_of_the_file_finds_a_change_in_its_table_once_writes_stop() {
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("reader");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let link = partner
        .create_link(
            NewLink {
                reference_id: "customer-read".into(),
                flow: "m2m-basic".into(),
                ..NewLink::default()
            },
            app.clock.now(),
        )
        .expect("link");
    app.sink.settled().await.expect("saved");
    // What `sqlite3 FILE` would see: the write log applied within 50 ms of the last change.
    let reader =
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("a reader");
    let in_table = || -> i64 {
        reader
            .query_row(
                "SELECT count(*) FROM m2m_links WHERE id = ?1",
                [&link.link_id],
                |row| row.get(0),
            )
            .expect("count")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while in_table() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the link never reached its table"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applying = log_file(&state, "-log.applying");
    while applying.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the applied log was never removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !log_file(&state, "-log").exists(),
        "the log was handed over whole"
    );
    app.sink.close().expect("every change saved");
}

#[tokio::test]
async fn changes_whose_tables_cannot_take_them_wait_in_the_write_log_and_are_all_kept() {
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("apply-fails");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    // Links cannot reach their table while the switch is on; the write log can.
    let switch = failing_inserts(&state, "m2m_links", "the table cannot take it (simulated)");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let create = |n: usize| {
        partner
            .create_link(
                NewLink {
                    reference_id: format!("customer-{n}"),
                    flow: "m2m-basic".into(),
                    ..NewLink::default()
                },
                app.clock.now(),
            )
            .expect("link")
    };
    for n in 0..50 {
        create(n);
        app.sink
            .settled()
            .await
            .expect("saved: the write log has it");
    }
    // The writer applies once idle, fails, and keeps the log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = |table: &str| -> i64 {
        switch
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .expect("count")
    };
    let applying = log_file(&state, "-log.applying");
    assert!(
        std::fs::metadata(&applying).is_ok_and(|log| log.len() > 0),
        "the log keeps what its tables refused"
    );
    assert_eq!(count("m2m_links"), 0);
    switch
        .execute("UPDATE switch SET fail = 0", [])
        .expect("the table takes them again");
    for n in 50..60 {
        create(n);
    }
    app.sink.settled().await.expect("saved");
    app.sink.close().expect("every change saved");
    drop(app);
    assert!(
        !applying.exists() && !log_file(&state, "-log").exists(),
        "applied once the table took them"
    );
    assert_eq!(count("m2m_links"), 60, "every link kept, none twice");
    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    assert_eq!(partner.snapshot().links.len(), 60);
    app.sink.close().expect("every change saved");
}

/// What each tenant is counted as storing (`--max-tenant-mib`) is counted again from the
/// rows at a restart, to the byte: a tenant at its budget is still at it after a restart.
#[tokio::test]
async fn each_tenants_storage_count_is_the_same_after_a_restart() {
    use linkbox::store::leaf::{LinkKind, LinkOwner, NewMagicLink, UserFields};
    use linkbox::store::m2m::NewLink;

    let dir = TempDir::new("counted");
    let state = dir.file("state.db");
    let app = linkbox::App::open(settings(&state)).await.expect("opened");
    let now = app.clock.now();
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    for n in 0..30 {
        let created = partner
            .create_link(
                NewLink {
                    reference_id: format!("customer-{}", n % 7),
                    flow: "m2m-basic".into(),
                    metadata: Some(json!({"n": n, "note": "x".repeat(n * 10)})),
                    user_data: Some(json!({"firstName": "F".repeat(n), "paymentMethod": {}})),
                    theme: (n % 3 == 0).then(|| "dark".into()),
                    ..NewLink::default()
                },
                now,
            )
            .expect("link");
        partner
            .revoke_link(&created.link_id, Some(format!("reason {n}")), now)
            .expect("revoked");
    }
    let account = app.store.leaf().account("qa").expect("account");
    for n in 0..5 {
        let user = account
            .create_user(UserFields {
                name: format!("farmer {n}"),
                email: format!("f{n}@example.com"),
                address: Some("a".repeat(n * 100)),
                ..UserFields::default()
            })
            .expect("user");
        account
            .create_magic_link(
                LinkOwner::Existing(user.id),
                NewMagicLink {
                    kind: LinkKind::FileUpload,
                    expires_in: time::Duration::minutes(15),
                    settings: linkbox_contracts::leaf::LinkSettings {
                        company_name: Some(format!("farm {n}")),
                        ..Default::default()
                    },
                },
                now,
            )
            .expect("magic link");
    }
    let counted = (partner.stored(), account.stored());
    assert!(counted.0 > 30 * 288 && counted.1 > 5 * 400, "{counted:?}");
    closed(app).await;

    let app = linkbox::App::open(settings(&state))
        .await
        .expect("reopened");
    let partner = app.store.m2m().authenticate(KEY).expect("partner");
    let account = app.store.leaf().account("qa").expect("account");
    assert_eq!((partner.stored(), account.stored()), counted);
}
