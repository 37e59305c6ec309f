//! The connection layer under abuse: a client that never finishes its headers, and headers
//! larger than the limit, must not exhaust the server for everyone else.

use std::time::{Duration, Instant};

use linkbox_tests::spawn_app;
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
