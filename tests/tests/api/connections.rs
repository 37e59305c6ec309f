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

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let huge = "a".repeat(200 * 1024);
    let request = format!("GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
    let head = String::from_utf8_lossy(&buffer);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 431"),
        "unexpected answer to oversized headers: {head:.80}"
    );
    let reply = app.send(Method::GET, "/_sandbox/health", &[], None).await;
    assert_eq!(reply.status, 200);
}

/// A sandbox with short connection deadlines and a small connection cap.
async fn strict_app(max_connections: usize) -> TestApp {
    spawn_app_with(linkbox::Options {
        connection_limits: Some(ConnectionLimits {
            max_connections,
            first_byte: Duration::from_millis(300),
            idle: Duration::from_millis(600),
        }),
        ..linkbox::Options::default()
    })
    .await
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
