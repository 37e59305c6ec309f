//! The connection layer under abuse: a client that never finishes its headers, and headers
//! larger than the limit, must not exhaust the server for everyone else.

use std::time::{Duration, Instant};

use linkbox::config::ConnectionLimits;
use linkbox_tests::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn slow_clients_that_never_finish_their_headers_do_not_block_others() {
    let app = spawn_app().await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        stream
            .write_all(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        slow.push(stream);
    }
    let started = Instant::now();
    let reply = app.send(Method::GET, "/_sandbox/health", &[], None).await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(slow);
}

#[tokio::test]
async fn a_client_that_stalls_mid_headers_is_disconnected() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut buffer = Vec::new();
    // The header read timeout is 10 s; the server must close well before 20 s.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the server kept a stalled connection open");
}

/// A head far over the limit is answered 431 in linkbox's envelope, and the client that
/// sent it reads that answer: the connection lingers, taking the rest of what the client
/// sends, instead of resetting it while the client is still writing.
#[tokio::test]
async fn oversized_headers_are_answered_431_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    for size in [200 * 1024, 8 * 1024 * 1024] {
        let huge = "a".repeat(size);
        let request = format!("GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n");
        let (status, body) = unparsed_answer(&answer_to(&app, request.as_bytes()).await);
        assert_eq!(status, 431, "{size} bytes");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
    }
    let reply = app.send(Method::GET, "/_sandbox/health", &[], None).await;
    assert_eq!(reply.status, 200);
}

/// A head too large on a vendor API's path is answered in that API's envelope: Leaf's
/// problem body naming the path, M2M's `success: false`; the connection is then closed.
#[tokio::test]
async fn a_head_too_large_on_an_apis_path_gets_that_apis_envelope() {
    let app = spawn_app().await;
    let query = "a".repeat(70 * 1024);
    let leaf = "/services/widgets/api/magic-link/provider";
    let request = format!("GET {leaf}?x={query} HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = answer_to(&app, request.as_bytes()).await;
    let (status, body) = unparsed_answer(&answer);
    assert_eq!(status, 431, "{body}");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(
        text.contains("content-type: application/problem+json"),
        "{text:.300}"
    );
    assert_eq!(body["path"], leaf, "{body}");
    assert_eq!(body["status"], 431, "{body}");
    let request = format!("GET /partner/links?x={query} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, body) = unparsed_answer(&answer_to(&app, request.as_bytes()).await);
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
    // After a first request answered on the connection, the next one's path is read.
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = vec![0; 4096];
    let read = stream.read(&mut first).await.expect("the first answer");
    assert!(first[..read].starts_with(b"HTTP/1.1 200"));
    stream.write_all(request.as_bytes()).await.expect("write");
    let rest = until_closed(&mut stream).await;
    let (status, body) = unparsed_answer(&rest);
    // Which limit it passes first (the target's or the head's) is hyper's to tell.
    assert!(matches!(status, 414 | 431), "{status}: {body}");
    assert_eq!(body["success"], false, "{body}");
}

/// A body far over what linkbox drains is answered 413 with `Connection: close`, and the
/// client, still sending it, reads that answer: the close lingers over the unread rest.
#[tokio::test]
async fn a_body_too_large_to_drain_is_answered_413_to_a_client_still_sending_it() {
    let app = spawn_app().await;
    let size = 40 * 1024 * 1024;
    let head = create_head(size);
    let mut request = head.into_bytes();
    request.resize(request.len() + size, b' ');
    let answer = answer_to(&app, &request).await;
    let (status, body) = unparsed_answer(&answer);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.contains("connection: close"), "{text:.300}");
}

/// The same when the client sends its body a moment after its head: the answer is out and
/// the connection closing before any of the body has come, and the close lingers all the
/// same, so the body is taken and the 413 read, not a broken pipe.
#[tokio::test]
async fn a_body_too_large_sent_after_a_pause_still_gets_its_413() {
    let app = spawn_app().await;
    let size = 12 * 1024 * 1024;
    let head = create_head(size);
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("the head");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(&vec![b' '; size])
        .await
        .expect("the body is taken, not reset");
    let answer = until_closed(&mut stream).await;
    let (status, body) = unparsed_answer(&answer);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
}

/// A client that goes on sending after its 431 is not listened to for ever: the
/// connection is closed once the lingering's time is up.
#[tokio::test]
async fn a_client_that_keeps_sending_after_its_431_is_let_go() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let huge = "a".repeat(200 * 1024);
    let request = format!("GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}");
    stream.write_all(request.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered while still sending")
        .expect("read");
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer[..read])
    );
    // Trickled, a byte at a time: silent long enough for no timeout but the lingering's.
    let closed = loop {
        if started.elapsed() > Duration::from_secs(30) {
            break false;
        }
        if stream.write_all(b"a").await.is_err() {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(closed, "still taking bytes after {:?}", started.elapsed());
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed after {:?}, before the lingering was up",
        started.elapsed()
    );
}

/// The status and JSON body of an answer read off a closed connection.
fn unparsed_answer(answer: &[u8]) -> (u16, serde_json::Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {text:.200}"));
    let head_lower = head.to_ascii_lowercase();
    assert!(
        head_lower.contains("content-type: application/json")
            || head_lower.contains("content-type: application/problem+json"),
        "{head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let body = serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"));
    (status, body)
}

/// Sends `request` on a new connection and reads until the server closes it.
async fn answer_to(app: &TestApp, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    until_closed(&mut stream).await
}

/// The head of a create that declares a body of `size` bytes.
fn create_head(size: usize) -> String {
    format!(
        "POST /partner/links HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\n\
         content-type: application/json\r\ncontent-length: {size}\r\n\r\n",
        linkbox_tests::test_key(1)
    )
}

/// Everything the server sends until it closes the connection, within 5 s.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut buffer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer))
        .await
        .expect("closed in time")
        .expect("read");
    buffer
}

#[tokio::test]
async fn requests_that_cannot_be_parsed_get_linkboxs_envelope_and_are_closed() {
    let app = spawn_app().await;
    let too_many: String = (0..101).map(|n| format!("X-Field-{n}: 1\r\n")).collect();
    for (request, status, says) in [
        (b"GARBAGE\r\n\r\n".to_vec(), 400, "not well-formed"),
        (
            b"GET /partner/links HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n".to_vec(),
            400,
            "not well-formed",
        ),
        (
            format!("GET /partner/links HTTP/1.1\r\nHost: x\r\n{too_many}\r\n").into_bytes(),
            431,
            "100 header fields",
        ),
    ] {
        let (answered, body) = unparsed_answer(&answer_to(&app, &request).await);
        assert_eq!(answered, status, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(message.contains(says), "{message}");
    }
    // A hundred fields (`Host`, `Connection` and 98 more) are within the limit.
    let hundred: String = (0..98).map(|n| format!("X-Field-{n}: 1\r\n")).collect();
    let request =
        format!("GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{hundred}\r\n");
    let answer = answer_to(&app, request.as_bytes()).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:.200}",
        String::from_utf8_lossy(&answer)
    );
}

/// A sandbox of at most `max_connections` connections, closing one silent for `first_byte`
/// before its first byte or for `idle` after.
async fn limited_app(max_connections: usize, first_byte: Duration, idle: Duration) -> TestApp {
    spawn_app_with(linkbox::Options {
        connection_limits: Some(ConnectionLimits {
            max_connections,
            first_byte,
            idle,
        }),
        ..linkbox::Options::default()
    })
    .await
}

/// A sandbox with short connection deadlines and a small connection cap.
async fn strict_app(max_connections: usize) -> TestApp {
    limited_app(
        max_connections,
        Duration::from_millis(300),
        Duration::from_millis(600),
    )
    .await
}

/// A sandbox with a small connection cap and deadlines too long to close any connection
/// during a test: whatever closes one is the cap's doing.
async fn patient_app(max_connections: usize) -> TestApp {
    let long = Duration::from_secs(30);
    limited_app(max_connections, long, long).await
}

/// How long until the server closes `stream` (reads to the end), at most `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut buffer))
        .await
        .ok()
        .map(|_| started.elapsed())
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let app = strict_app(64).await;
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a silent connection stayed open");
}

#[tokio::test]
async fn a_connection_stalled_inside_the_version_sniff_is_closed() {
    let app = strict_app(64).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    // Fewer bytes than the HTTP/2 preface: hyper-util is still deciding which version.
    stream.write_all(b"PRI * HT").await.expect("write");
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "a connection stalled in the sniff stayed open"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = strict_app(64).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "an idle keep-alive connection stayed open"
    );
}

#[tokio::test]
async fn beyond_max_connections_health_checks_are_still_answered() {
    let app = strict_app(4).await;
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    for _ in 0..5 {
        let started = Instant::now();
        let reply = app.send(Method::GET, "/_sandbox/health", &[], None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    drop(silent);
}

/// Silent sockets holding every place and every overflow place (64), reopened as the
/// overflow drops them, do not shut health checks out: a new connection past both limits
/// closes the oldest overflow connection and is served in its place.
#[tokio::test]
async fn silent_sockets_filling_the_overflow_too_do_not_shut_out_a_health_check() {
    let app = patient_app(4).await;
    let mut silent = Vec::new();
    let places = 4 + ConnectionLimits::RESERVED_DESCRIPTORS / 2;
    for _ in 0..places + 16 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    // Each connection is taken in turn; the last ones in line closed the oldest overflow.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let reply = app.send(Method::GET, "/_sandbox/health", &[], None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    drop(silent);
}

/// An overflow connection that has sent a byte of its request is never closed for a newer
/// one (its request may be under way: an answer lost after its change was made would be
/// repeated by the client's retry); silent ones are.
#[tokio::test]
async fn an_overflow_connection_that_has_spoken_is_not_closed_for_a_newer_one() {
    let app = patient_app(1).await;
    let mut silent = vec![TcpStream::connect(app.addr).await.expect("connect")];
    let mut speaking = TcpStream::connect(app.addr).await.expect("connect");
    speaking
        .write_all(b"GET /_sandbox/health HTTP/1.1\r\n")
        .await
        .expect("half a head");
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..ConnectionLimits::RESERVED_DESCRIPTORS / 2 + 40 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    speaking
        .write_all(b"Host: x\r\n\r\n")
        .await
        .expect("the rest of the head");
    let reply = answer(&mut speaking).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(silent);
}

/// An overflow connection trickling its body a byte at a time (each within the overflow's
/// 2 s idle deadline) is closed once its lifetime is over, not after the body's whole read
/// timeout: a few dozen such would otherwise close the overflow to health checks as well.
#[tokio::test]
async fn an_overflow_connection_trickling_its_body_is_closed_within_its_lifetime() {
    let app = spawn_app_with(linkbox::Options {
        connection_limits: Some(ConnectionLimits {
            max_connections: 1,
            first_byte: Duration::from_secs(20),
            idle: Duration::from_secs(20),
        }),
        ..linkbox::Options::default()
    })
    .await;
    let _normal = TcpStream::connect(app.addr).await.expect("connect");
    // Accepted in order: the first holds the one normal place.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut trickle = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /partner/links HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        linkbox_tests::test_key(1480)
    );
    trickle.write_all(head.as_bytes()).await.expect("head");
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if trickle.write_all(b" ").await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut byte)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[test]
fn the_default_connection_cap_leaves_descriptors_for_everything_else() {
    let limits = ConnectionLimits::defaults(None);
    let descriptors = linkbox::config::descriptor_limit();
    assert!(
        limits.max_connections < descriptors,
        "{limits:?} with {descriptors} descriptors"
    );
    assert_eq!(ConnectionLimits::defaults(Some(7)).max_connections, 7);
}

/// Opens a connection that sends `path`'s head (a `PUT` for the snapshot, else a `POST`),
/// declaring `declared` bytes, and then `sent` bytes of the body, and waits.
async fn half_sent(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    declared: usize,
    sent: usize,
) -> TcpStream {
    let method = if path.ends_with("/snapshot") {
        "PUT"
    } else {
        "POST"
    };
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&vec![b' '; sent]).await.expect("body");
    stream
}

/// The first answer on `stream`, as far as its head and a short body.
async fn answer(stream: &mut TcpStream) -> String {
    let mut read = vec![0; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut read))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&read[..n]).into_owned()
}

#[tokio::test]
async fn the_bodies_held_at_once_are_bounded_and_one_caller_holds_a_quarter() {
    let app = spawn_app_with(linkbox::Options {
        max_bodies_mib: Some(16),
        ..linkbox::Options::default()
    })
    .await;
    let key = linkbox_tests::test_key(1);
    let mib = 1024 * 1024;
    let as_key = [("X-API-Key", key.as_str())];
    // One caller: three MiB of a snapshot held, then a second body passing its quarter
    // (4 MiB of 16). Both declare more than is drained, so a refusal is answered at once;
    // a body declared past the quarter would be a 413 before any of it is read.
    let _holding = half_sent(&app, "/_sandbox/snapshot", &as_key, 4 * mib, 3 * mib).await;
    let started = Instant::now();
    while app.app.bodies.held() < (3 * mib) as u64 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three MiB of body, and its head, which waits with it.
    let holding = app.app.bodies.held();
    assert!(
        ((3 * mib) as u64 + 100..(3 * mib) as u64 + 1024).contains(&holding),
        "{holding}"
    );
    let mut refused = half_sent(&app, "/_sandbox/snapshot", &as_key, 4 * mib, 2 * mib).await;
    let refusal = answer(&mut refused).await;
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(
        refusal.to_ascii_lowercase().contains("retry-after: 1"),
        "{refusal}"
    );
    assert!(refusal.contains(r#""code":"BODIES_FULL""#), "{refusal}");
    assert!(refusal.contains("--max-bodies-mib"), "{refusal}");
    assert_eq!(app.app.bodies.held(), holding, "the refused body let go");
    // Everyone else's bodies are read meanwhile.
    let other = app
        .create_link(
            &linkbox_tests::test_key(2),
            &serde_json::json!({"referenceId": "neighbour"}),
        )
        .await;
    assert_eq!(other.status, 201, "{other:?}");
    // A snapshot declared past the quarter could never be held: a 413 naming the limit,
    // before any of it is read.
    let mut past = half_sent(&app, "/_sandbox/snapshot", &as_key, 60 * mib, 0).await;
    let too_large = answer(&mut past).await;
    assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");
    assert!(too_large.contains("4 MiB"), "{too_large}");
    // So does one the vendor APIs would take (under their 10 MiB), in their own envelopes.
    let token = app.authenticate("quarter-farm").await;
    let bearer = format!("Bearer {token}");
    for (path, headers, says) in [
        (
            "/partner/links",
            vec![("X-API-Key", key.as_str())],
            r#""success":false"#,
        ),
        (
            "/services/usermanagement/api/users",
            vec![("Authorization", bearer.as_str())],
            "problem",
        ),
    ] {
        let mut past = half_sent(&app, path, &headers, 5 * mib, 0).await;
        let too_large = answer(&mut past).await;
        assert!(too_large.starts_with("HTTP/1.1 413"), "{path}: {too_large}");
        assert!(too_large.contains(says), "{path}: {too_large}");
        assert!(
            too_large.contains("must not exceed 4 MiB"),
            "{path}: {too_large}"
        );
        assert!(!too_large.contains("10 MiB"), "{path}: {too_large}");
    }
}

#[tokio::test]
async fn a_request_refused_for_its_credentials_has_none_of_its_body_held() {
    let app = spawn_app_with(linkbox::Options {
        admin_token: Some("admin-secret-token".into()),
        ..linkbox::Options::default()
    })
    .await;
    let mib = 1024 * 1024;
    for (path, headers) in [
        ("/partner/links", vec![]),
        ("/partner/links", vec![("X-API-Key", "m2m_live_nope")]),
        ("/services/widgets/api/magic-link/provider", vec![]),
        ("/_sandbox/seed", vec![]),
        ("/_sandbox/clock", vec![("Authorization", "Bearer wrong")]),
        ("/_sandbox/snapshot", vec![]),
    ] {
        let mut stream = half_sent(&app, path, &headers, 9 * mib, 8 * mib).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.app.bodies.held(), 0, "{path}: nothing of it is held");
        stream.write_all(&vec![b' '; mib]).await.expect("the rest");
        let reply = answer(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 401"), "{path}: {reply}");
    }
}

/// A stranger's body is not asked for: a request refused for its credentials that waits for
/// `100 Continue` gets the 401 instead, at once.
#[tokio::test]
async fn a_refused_request_that_expects_100_continue_is_not_asked_for_its_body() {
    let app = spawn_app().await;
    // A body past what is drained, and one small enough to be: neither is asked for.
    for length in [3_145_728, 19] {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let head = format!(
            "POST /partner/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let started = Instant::now();
        let reply = answer(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 401"), "{length}: {reply}");
        assert!(!reply.contains("100 Continue"), "{length}: {reply}");
        assert!(
            reply.to_ascii_lowercase().contains("connection: close"),
            "{length}: {reply}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{length}: {:?}",
            started.elapsed()
        );
    }
}

/// Over HTTP/2 an answer that leaves its body unread (a body past the route's limit) is
/// delivered, not lost to a stream error.
#[tokio::test]
async fn over_http2_a_body_past_the_limit_gets_its_413() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let reply = client
        .post(format!("{}/partner/links", app.base))
        .header("x-api-key", linkbox_tests::test_key(1))
        .header("content-type", "application/json")
        .body(vec![b' '; 11 * 1024 * 1024])
        .send()
        .await
        .expect("an answer");
    assert_eq!(reply.version(), reqwest::Version::HTTP_2);
    assert_eq!(reply.status(), 413);
    assert!(reply.headers().get("connection").is_none());
    let body: serde_json::Value = reply.json().await.expect("json");
    assert_eq!(body["success"], false, "{body}");
}

/// A body that does not arrive whole within 30 s is answered 400 in its API's envelope, and
/// the answer says the connection closes: what is left of that body is never read.
#[tokio::test]
async fn a_late_body_gets_its_400_and_the_connection_closing() {
    let app = spawn_app().await;
    let mut stream = half_sent(
        &app,
        "/partner/links",
        &[("X-API-Key", &linkbox_tests::test_key(1))],
        200,
        10,
    )
    .await;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(45), stream.read_to_end(&mut reply))
        .await
        .expect("answered and closed")
        .expect("read");
    let reply = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 400"), "{reply}");
    assert!(reply.contains("within 30 seconds"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
}

/// Over HTTP/2 a head holds what an HTTP/1 head may (64 KiB, 100 fields), and one past it
/// gets the 431 in its API's envelope, as over HTTP/1, not the HTTP/2 layer's empty one.
#[tokio::test]
async fn over_http2_the_head_limits_are_http1s_and_a_431_is_enveloped() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let get = |path: &str, headers: Vec<(String, String)>| {
        let mut request = client
            .get(format!("{}{path}", app.base))
            .header("x-api-key", linkbox_tests::test_key(1));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    // 20 KB: past the HTTP/2 layer's default of 16 KiB, within linkbox's 64 KiB.
    let within = get("/partner/links", vec![("x-pad".into(), "a".repeat(20_000))])
        .await
        .expect("an answer");
    assert_eq!(within.version(), reqwest::Version::HTTP_2);
    assert_eq!(within.status(), 200);
    let many = (0..100)
        .map(|at| (format!("x-field-{at}"), "v".to_owned()))
        .collect();
    for (path, headers, says) in [
        (
            "/partner/links",
            vec![("x-pad".to_owned(), "a".repeat(66_000))],
            "/error/message",
        ),
        ("/services/widgets/api/magic-link/provider", many, "/detail"),
    ] {
        let reply = get(path, headers).await.expect("an answer");
        assert_eq!(reply.status(), 431, "{path}");
        let body: serde_json::Value = reply.json().await.expect("json");
        let message = body.pointer(says).and_then(|text| text.as_str());
        assert!(
            message.is_some_and(|text| text.contains("64 KiB")),
            "{path}: {body}"
        );
    }
}

/// Uploads to hosted pages carry no credentials; each is held as its link's account's, so
/// one account stalling uploads to its own links leaves the others' end users their share.
#[tokio::test]
async fn uploads_are_held_as_their_links_account_and_a_refusal_says_when_to_retry() {
    let app = spawn_app_with(linkbox::Options {
        max_bodies_mib: Some(16),
        ..linkbox::Options::default()
    })
    .await;
    let mib = 1024 * 1024;
    let mut pages = Vec::new();
    for account in ["stalling-farm", "other-farm"] {
        let token = app.authenticate(account).await;
        let link = app
            .leaf(
                Method::POST,
                "/services/widgets/api/magic-link/file-upload",
                &token,
                Some(&serde_json::json!({"externalId": "f1"})),
            )
            .await;
        assert_eq!(link.status, 200, "{link:?}");
        let url = link.json["link"].as_str().unwrap_or_default();
        let path = &url[url.find("/magic-link/").unwrap_or(0)..];
        pages.push(format!("{path}/upload"));
    }
    let head = |path: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    // The stalling account's end user: 3.9 MiB of an upload, and no more.
    let mut stalled = TcpStream::connect(app.addr).await.expect("connect");
    stalled
        .write_all(head(&pages[0], 4 * mib).as_bytes())
        .await
        .expect("head");
    stalled
        .write_all(&vec![b'x'; 39 * mib / 10])
        .await
        .expect("part");
    let started = Instant::now();
    while app.app.bodies.held() < (39 * mib / 10) as u64
        && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second upload of that account passes its quarter: 503, and when to retry.
    let mut second = TcpStream::connect(app.addr).await.expect("connect");
    second
        .write_all(head(&pages[0], 2 * mib).as_bytes())
        .await
        .expect("head");
    second.write_all(&vec![b'x'; 2 * mib]).await.expect("body");
    let refusal = answer(&mut second).await;
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(
        refusal.to_ascii_lowercase().contains("retry-after: 1"),
        "{refusal}"
    );
    // The other account's end user uploads a file of 1 MiB meanwhile.
    let mut body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.zip\"\r\n\r\nPK\x05\x06".to_vec();
    body.resize(body.len() + mib, 0);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let mut other = TcpStream::connect(app.addr).await.expect("connect");
    other
        .write_all(head(&pages[1], body.len()).as_bytes())
        .await
        .expect("head");
    other.write_all(&body).await.expect("body");
    let reply = answer(&mut other).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// Opens a connection that asks for `path` with `key` and never reads the answer, with a
/// receive buffer so small that the answer stays on the server's side.
async fn never_reading(app: &TestApp, path: &str, key: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    let mut stream = socket.connect(app.addr).await.expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
}

/// Waits up to 10 s for the bodies held to be `bytes`.
async fn until_held(app: &TestApp, bytes: u64) {
    let started = Instant::now();
    while app.app.bodies.held() != bytes && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.app.bodies.held(), bytes);
}

#[tokio::test]
async fn large_answers_clients_never_read_are_held_within_the_bodies_bound() {
    let app = spawn_app_with(linkbox::Options {
        max_bodies_mib: Some(64),
        ..linkbox::Options::default()
    })
    .await;
    // A made-up key that never writes: a stranger, counted with every caller without a
    // tenant (a quarter of 64 MiB). Its padded requests make its journal a few megabytes.
    let key = linkbox_tests::test_key(7);
    let pad = "p".repeat(30 * 1024);
    for _ in 0..200 {
        let reply = app
            .client
            .get(format!("{}/partner/links?limit=1", app.base))
            .header("X-API-Key", &key)
            .header("X-Pad", &pad)
            .send()
            .await
            .expect("an answer");
        assert_eq!(reply.status(), 200);
    }
    let journal = || {
        app.client
            .get(format!("{}/_sandbox/requests", app.base))
            .header("X-API-Key", &key)
            .send()
    };
    let whole = journal().await.expect("an answer");
    assert_eq!(whole.status(), 200);
    let size = whole.bytes().await.expect("the journal").len() as u64;
    assert!(size > 6_000_000, "{size}");
    assert_eq!(app.app.bodies.held(), 0, "an answer read is let go");

    // As many never-read journals as the share holds: each stays counted, whole.
    let quarter = app.app.bodies.caller_most();
    let fits = quarter / size;
    assert!(fits >= 2, "{size}");
    let mut stalled = Vec::new();
    for held in 1..=fits {
        stalled.push(never_reading(&app, "/_sandbox/requests", &key).await);
        until_held(&app, held * size).await;
    }
    // One more is refused as a body would be; a small answer is answered as usual.
    let refused = journal().await.expect("an answer");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refusal: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(refusal["error"]["code"], "BODIES_FULL", "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("--max-bodies-mib")),
        "{refusal}"
    );
    let small = app
        .client
        .get(format!("{}/partner/links?limit=1", app.base))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("an answer");
    assert_eq!(small.status(), 200);
    assert_eq!(app.app.bodies.held(), fits * size);

    // The clients gone, what their answers held is let go, and the journal is served again.
    drop(stalled);
    until_held(&app, 0).await;
    let again = journal().await.expect("an answer");
    assert_eq!(again.status(), 200);
    let length = again.headers()["content-length"].clone();
    // One entry more: the small request's.
    let size = again.bytes().await.expect("the journal").len() as u64;
    assert_eq!(
        length,
        size.to_string().as_str(),
        "sent in pieces, with its length"
    );
    let fits = quarter / size;

    // Over HTTP/2, streams whose window the client never opens hold their answers counted.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(0)
        .build()
        .expect("client");
    let mut streams = Vec::new();
    for held in 1..=fits {
        let reply = client
            .get(format!("{}/_sandbox/requests", app.base))
            .header("X-API-Key", &key)
            .send()
            .await
            .expect("an answer");
        assert_eq!(reply.status(), 200);
        streams.push(reply);
        until_held(&app, held * size).await;
    }
    let refused = client
        .get(format!("{}/_sandbox/requests", app.base))
        .header("X-API-Key", &key)
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 503);
    drop((streams, refused, client));
    until_held(&app, 0).await;
}

/// A Leaf `GET` or `DELETE` takes no body: one sent anyway is not waited for, not asked for
/// with `100 Continue`, and not journaled, as on M2M's routes that take none.
#[tokio::test]
async fn a_body_sent_to_a_leaf_route_that_takes_none_is_not_waited_for_nor_journaled() {
    let app = spawn_app().await;
    let token = app.authenticate("bodiless").await;
    let lists = [
        "/services/widgets/api/magic-link/provider?size=1",
        "/services/usermanagement/api/users",
    ];
    for (path, expect) in lists.iter().flat_map(|path| [(path, false), (path, true)]) {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let expect = if expect {
            "Expect: 100-continue\r\n"
        } else {
            ""
        };
        // Five bytes declared, four sent: a route that waited for them would wait 30 s.
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 5\r\n{expect}\r\n{{\"a\""
        );
        stream.write_all(head.as_bytes()).await.expect("request");
        let started = Instant::now();
        let reply = answer(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        assert!(!reply.contains("100 Continue"), "{path}: {reply}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    // A whole body sent to a GET and a DELETE: answered, and journaled without it.
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    for (method, path, status) in [
        (Method::GET, "/services/usermanagement/api/users", 200),
        (
            Method::DELETE,
            "/services/widgets/api/magic-link/provider/none",
            404,
        ),
    ] {
        let reply = app
            .send(method.clone(), path, &headers, Some(b"{\"zz\":1}".to_vec()))
            .await;
        assert_eq!(reply.status, status, "{reply:?}");
        let journal = app
            .send(
                Method::GET,
                &format!("/_sandbox/requests?method={method}&path={path}"),
                &[],
                None,
            )
            .await;
        // Newest first: this request's entry, the one that sent all eight bytes.
        let entry = &journal.json["requests"][0]["request"];
        assert_eq!(
            entry["headers"]["content-length"], "8",
            "{path}: {journal:?}"
        );
        assert!(entry["body"].is_null(), "{path}: {entry}");
    }
}

/// Over HTTP/2 the host a request names is its `:authority` (there is no `Host` header):
/// one naming another host is not this machine's keyless admin, one naming this machine is.
#[tokio::test]
async fn over_http2_the_authority_is_the_host_the_keyless_admin_check_reads() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve("rebind.evil.example", app.addr)
        .build()
        .expect("client");
    let port = app.addr.port();
    let foreign = client
        .get(format!(
            "http://rebind.evil.example:{port}/_sandbox/requests"
        ))
        .send()
        .await
        .expect("an answer");
    assert_eq!(foreign.version(), reqwest::Version::HTTP_2);
    assert_eq!(foreign.status(), 401);
    let own = client
        .get(format!("{}/_sandbox/requests", app.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(own.version(), reqwest::Version::HTTP_2);
    assert_eq!(own.status(), 200);
}

/// A request's head waits in memory with its body and is counted with it: a stranger's
/// connections, each a head of 60 KB declaring a body it never sends, fill a caller's
/// quarter of `--max-bodies-mib` and no more, and the next such head is refused at once (a
/// 503 saying when to retry) while a tenant's requests are still served. Uncounted, each
/// held its head for the 30 s a body is waited for, on as many connections as were opened.
#[tokio::test]
async fn heads_waiting_for_their_bodies_are_counted_with_them() {
    let app = spawn_app_with(linkbox::Options {
        max_bodies_mib: Some(1),
        ..linkbox::Options::default()
    })
    .await;
    let (stranger, tenant) = (linkbox_tests::test_key(3), linkbox_tests::test_key(4));
    let first = app
        .create_link(&tenant, &serde_json::json!({"referenceId": "first"}))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let padding = "p".repeat(60_000);
    let head = format!(
        "POST /partner/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nX-API-Key: {stranger}\r\nX-Pad: {padding}\r\n\r\n"
    );
    let (waiting, refusal) = heads_until_answered(&app, &head).await;
    assert_eq!(waiting.len(), 4, "{refusal}");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(refusal.contains("--max-bodies-mib"), "{refusal}");
    let held = app.app.bodies.held();
    assert!((240_000..262_144).contains(&held), "{held}");
    let served = app
        .create_link(&tenant, &serde_json::json!({"referenceId": "served"}))
        .await;
    assert_eq!(served.status, 201, "{served:?}");
    drop(waiting);
}

/// A request's head waits through a fault's delay counted as a body's is: a key's heads of
/// 60 KB to a path it delayed fill its quarter of `--max-bodies-mib` and no more, the next
/// answered 503 at once in its API's envelope. Uncounted, a new key's delay of two minutes
/// held such heads by the hundred per HTTP/2 connection.
#[tokio::test]
async fn heads_waiting_through_a_faults_delay_are_counted() {
    let app = spawn_app_with(linkbox::Options {
        max_bodies_mib: Some(1),
        ..linkbox::Options::default()
    })
    .await;
    let key = linkbox_tests::test_key(5);
    let fault = app
        .control(
            Method::POST,
            "/faults",
            Some(&key),
            Some(&serde_json::json!({"path": "/partner/links", "delayMs": 10_000})),
        )
        .await;
    assert_eq!(fault.status, 201, "{fault:?}");
    let padding = "p".repeat(60_000);
    let head = format!(
        "GET /partner/links HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nX-Pad: {padding}\r\n\r\n"
    );
    let (waiting, refusal) = heads_until_answered(&app, &head).await;
    assert_eq!(waiting.len(), 4, "{refusal}");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(refusal.contains(r#""success":false"#), "{refusal}");
    assert!(refusal.contains("--max-bodies-mib"), "{refusal}");
    drop(waiting);
}

/// Opens connections each sending `head` (and nothing more) until one is answered within
/// half a second: the connections left waiting, and that answer. A quarter of 1 MiB holds
/// four heads of 60 KB; eight waiting means none was counted.
async fn heads_until_answered(app: &TestApp, head: &str) -> (Vec<TcpStream>, String) {
    let mut waiting = Vec::new();
    loop {
        assert!(
            waiting.len() < 8,
            "a quarter of 1 MiB holds four such heads"
        );
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("head");
        let mut read = [0; 4096];
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut read)).await {
            Ok(Ok(n)) => return (waiting, String::from_utf8_lossy(&read[..n]).into_owned()),
            _ => waiting.push(stream),
        }
    }
}
