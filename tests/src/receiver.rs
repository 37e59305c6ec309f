//! A webhook receiver on a loopback port, as a partner would run one: it records every
//! request and answers the statuses a test programs (200 once they run out), or never
//! answers at all. [`verify`] checks a signature the way a partner would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use warp::Filter;
use warp::reply::Response;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub fn event(&self) -> &str {
        self.header("x-m2m-event")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    answers: VecDeque<u16>,
    hang: bool,
    delay: Duration,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hooks`
    pub url: String,
    /// Where it listens (for a TLS terminator put in front of it).
    pub addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    _shutdown: oneshot::Sender<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let filter = {
            let state = state.clone();
            let arrived = arrived.clone();
            warp::path::full()
                .and(warp::header::headers_cloned())
                .and(warp::body::bytes())
                .then(
                    move |path: warp::path::FullPath, headers: HeaderMap, body: Bytes| {
                        let state = state.clone();
                        let arrived = arrived.clone();
                        async move {
                            let (status, hang, delay) = {
                                let mut state = state.lock();
                                state.received.push(Received {
                                    path: path.as_str().to_owned(),
                                    json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                                    headers,
                                    body,
                                });
                                let status = state.answers.pop_front().unwrap_or(200);
                                (status, state.hang, state.delay)
                            };
                            arrived.notify_waiters();
                            if hang {
                                std::future::pending::<()>().await;
                            }
                            tokio::time::sleep(delay).await;
                            let mut response = Response::new(Bytes::new().into());
                            *response.status_mut() =
                                StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                            response
                        }
                    },
                )
                .boxed()
        };
        tokio::spawn(linkbox::http::serve(listener, filter, async {
            let _ = stopped.await;
        }));
        Receiver {
            url: format!("http://{addr}/hooks"),
            addr,
            state,
            arrived,
            _shutdown: shutdown,
        }
    }

    /// The next requests get these statuses, in order; then 200 again.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.state.lock().answers.extend(statuses);
    }

    /// From now on, answer each request only after `delay`.
    pub fn answer_after(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// From now on, never answer.
    pub fn hang(&self) {
        self.state.lock().hang = true;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.clone()
    }

    /// Waits (up to 10 s) until at least `count` requests have arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "expected {count} webhook(s), got {}: {:?}",
                    received.len(),
                    received.iter().map(Received::event).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Waits until the `event` arrives and returns it.
    pub async fn wait_for_event(&self, event: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            if let Some(found) = self.received().into_iter().find(|r| r.event() == event) {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no {event} webhook arrived");
            }
        }
    }
}

/// Whether `received` carries a valid signature for `secret`, recomputed as a partner
/// would: HMAC-SHA256(secret, timestamp + "." + raw body), lowercase hex after `sha256=`.
pub fn verify(received: &Received, secret: &str) -> bool {
    let timestamp = received.header("x-m2m-timestamp");
    let Some(hex_signature) = received.header("x-m2m-signature").strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    mac.verify_slice(&expected).is_ok()
}
