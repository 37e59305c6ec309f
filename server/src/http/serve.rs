//! The connection loop: hyper over a bound `TcpListener`, with header limits and timeouts
//! that a slow or hostile client cannot exhaust, and a graceful shutdown that lets in-flight
//! requests finish. Connections are spread over one runtime per core ([`super::workers`]).
//!
//! # Connection hygiene
//! Every connection is wrapped in [`Watched`], which closes it when it stays silent too long:
//! [`ConnectionLimits::first_byte`] until its first byte arrives (this covers hyper-util's
//! HTTP/2-versus-HTTP/1 sniff, which reads before any HTTP timer runs), then
//! [`ConnectionLimits::idle`] without a byte in either direction (HTTP/1 keep-alive, HTTP/2,
//! a stalled body or a client that stopped reading). HTTP/1 headers must be complete within
//! `first_byte` too, and a body within [`crate::wire::BODY_READ_TIMEOUT`].
//!
//! At most [`ConnectionLimits::max_connections`] connections are served normally. Beyond
//! that a new connection is still accepted, so that a health check is never starved, but as
//! an *overflow* connection: one request, whose head must arrive within
//! [`OVERFLOW_DEADLINE`] and which is over within [`OVERFLOW_LIFETIME`], body and answer
//! included; then the connection closes. Overflow connections are capped too
//! ([`ConnectionLimits::RESERVED_DESCRIPTORS`] / 2); past both caps a connection is closed at
//! once.
//!
//! A request head hyper cannot parse, or larger than [`MAX_HEAD_BYTES`] or
//! [`MAX_HEADERS`] fields, is answered by hyper itself; [`Enveloped`] gives that answer
//! linkbox's envelope ([`super::unparsed`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::ConnectionLimits;

use super::leftover::BodyLeftUnread;
use super::unparsed::{Enveloped, MAX_HEAD_BYTES, MAX_HEADERS};
use super::workers::Workers;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// How long an overflow connection may take to send its whole request head.
pub const OVERFLOW_DEADLINE: Duration = Duration::from_secs(2);
/// How long an overflow connection lasts at most, its body and answer included: a client
/// trickling a body a byte a second would otherwise hold its place for the body's whole
/// read timeout, and a few dozen such would close the overflow to health checks too.
pub const OVERFLOW_LIFETIME: Duration = Duration::from_secs(5);
/// The HTTP/2 header list HPACK's decoder takes (RFC 9113 counts each field's name and
/// value and 32 bytes more): room for the head an HTTP/1 request may have, so a head past
/// it gets linkbox's own 431 in the API's envelope (`head_refusal`), not the HTTP/2
/// layer's empty one (whose default is 16 KiB). Larger still, the HTTP/2 layer refuses it.
const H2_HEADER_LIST: u32 = (MAX_HEAD_BYTES + 32 * MAX_HEADERS) as u32 + 1024;
/// The streams an HTTP/2 connection may have open at once: RFC 9113's suggested floor,
/// nginx's 128 rounded down. With [`H2_HEADER_LIST`], one connection's heads may hold about
/// twice what hyper's defaults (200 streams of 16 KiB) let them, as an HTTP/1 connection
/// may hold one 64 KiB head.
const H2_STREAMS: u32 = 100;
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `filter` on `listener` with the default [`ConnectionLimits`] until `shutdown`
/// completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, filter, ConnectionLimits::defaults(None), shutdown).await;
}

/// Serves `filter` on `listener` within `limits` until `shutdown` completes, then lets open
/// requests finish.
pub async fn serve_with(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let service = warp::service(filter);
    let answer = move |request: http::Request<Incoming>| {
        let mut service = service.clone();
        async move {
            match service.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    serve_answers(listener, answer, limits, shutdown).await;
}

/// Serves the responses `answer` gives on `listener` within `limits` until `shutdown`
/// completes, then lets open requests finish.
pub(super) async fn serve_answers<A, F>(
    listener: TcpListener,
    answer: A,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    A: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    // A response marked `DropConnection` becomes a service error, which makes hyper close
    // the connection without answering; one sent with its request's body unread makes the
    // connection's close linger (`unparsed`).
    let service = move |unread: Arc<AtomicBool>| {
        let answer = answer.clone();
        hyper::service::service_fn(move |request| {
            let response = answer(request);
            let unread = unread.clone();
            async move {
                let response = response.await;
                let extensions = response.extensions();
                if extensions.get::<crate::wire::DropConnection>().is_some() {
                    return Err(Dropped);
                }
                if extensions.get::<BodyLeftUnread>().is_some() {
                    unread.store(true, Ordering::Relaxed);
                }
                Ok(response)
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.first_byte)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_HEADER_LIST)
        .max_concurrent_streams(H2_STREAMS);
    let mut overflow_builder = auto::Builder::new(TokioExecutor::new());
    overflow_builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(OVERFLOW_DEADLINE)
        .keep_alive(false)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    overflow_builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_HEADER_LIST)
        .max_concurrent_streams(H2_STREAMS);
    let (builder, overflow_builder) = (Arc::new(builder), Arc::new(overflow_builder));
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(ConnectionLimits::RESERVED_DESCRIPTORS / 2));
    let evictions = Evictions::default();
    let mut crowded = Throttled::default();
    let graceful = GracefulShutdown::new();
    let workers = Workers::start();
    tracing::debug!(runtimes = workers.len(), "serving connections");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (place, builder, first_byte, idle, lifetime) = if let Ok(permit) = served.clone().try_acquire_owned() {
                    (Place::Held(permit), builder.clone(), limits.first_byte, limits.idle, None)
                } else if let Ok(permit) = overflow.clone().try_acquire_owned() {
                    tracing::debug!("connection limit reached; serving one prompt request");
                    (Place::Overflow(permit, evictions.enlist()), overflow_builder.clone(), OVERFLOW_DEADLINE, OVERFLOW_DEADLINE, Some(OVERFLOW_LIFETIME))
                } else if evictions.evict_oldest() {
                    if let Some(times) = crowded.due() {
                        tracing::warn!(max = limits.max_connections, times, "connection limit and overflow reached; closing the oldest silent overflow connection for a new one");
                    }
                    (Place::Awaited(overflow.clone(), evictions.enlist()), overflow_builder.clone(), OVERFLOW_DEADLINE, OVERFLOW_DEADLINE, Some(OVERFLOW_LIFETIME))
                } else {
                    if let Some(times) = crowded.due() {
                        tracing::warn!(max = limits.max_connections, times, "connection limit and overflow reached; closing a new connection");
                    }
                    continue;
                };
                let watcher = graceful.watcher();
                let service = service.clone();
                // Built on the worker, so that its timers are the worker's.
                workers.serve(stream, move |stream| async move {
                    let Some((permit, evicted)) = place.taken().await else {
                        tracing::debug!("no overflow place came free; closed");
                        return;
                    };
                    let watched = Watched::new(stream, first_byte, idle, evicted.clone());
                    let enveloped = Enveloped::new(watched);
                    let service = service(enveloped.unread());
                    let connection = builder.serve_connection_with_upgrades(
                        TokioIo::new(enveloped),
                        service,
                    );
                    let served = watcher.watch(connection.into_owned());
                    let ended = match (lifetime, evicted) {
                        (Some(lifetime), Some(evicted)) => {
                            let served = tokio::time::timeout(lifetime, served);
                            tokio::select! {
                                ended = served => ended.unwrap_or_else(|_| {
                                    tracing::debug!("overflow connection past its lifetime; closed");
                                    Ok(())
                                }),
                                () = evicted.close.notified() => {
                                    tracing::debug!("overflow connection closed for a newer one");
                                    Ok(())
                                }
                            }
                        }
                        _ => served.await,
                    };
                    if let Err(error) = ended {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
    // Stops the worker threads and whatever is left on them.
    drop(workers);
}

/// Where a new connection is served: one of the `--max-connections` places, an overflow
/// place taken at once, or an overflow place to come free once the oldest overflow
/// connection, told to close, has closed.
enum Place {
    Held(tokio::sync::OwnedSemaphorePermit),
    Overflow(tokio::sync::OwnedSemaphorePermit, Arc<Overflowing>),
    Awaited(Arc<Semaphore>, Arc<Overflowing>),
}

impl Place {
    /// The place's permit, and for an overflow connection what tells it to close; `None`
    /// when no overflow place comes free within [`OVERFLOW_DEADLINE`], or the connection is
    /// closed for a newer one first.
    async fn taken(self) -> Option<(tokio::sync::OwnedSemaphorePermit, Option<Arc<Overflowing>>)> {
        match self {
            Place::Held(permit) => Some((permit, None)),
            Place::Overflow(permit, evicted) => Some((permit, Some(evicted))),
            // Closed for a newer one while it waits, too: waiting connections, each
            // holding a descriptor, do not pile up under a flood of new ones.
            Place::Awaited(overflow, evicted) => tokio::select! {
                permit = tokio::time::timeout(OVERFLOW_DEADLINE, overflow.acquire_owned()) => {
                    permit.ok()?.ok().map(|permit| (permit, Some(evicted.clone())))
                }
                () = evicted.close.notified() => None,
            },
        }
    }
}

/// An overflow connection, as its place in line sees it: what tells it to close, and
/// whether a byte of a request has come on it.
#[derive(Default)]
struct Overflowing {
    close: Notify,
    spoke: AtomicBool,
}

/// The overflow connections, oldest first (held weakly: a connection that ended is
/// skipped).
///
/// Past the connection limit and the overflow's, a new connection closes the oldest
/// overflow connection that has not sent a byte, and takes its place, instead of being
/// closed at once: otherwise silent sockets reopened as fast as the overflow drops them
/// (each after [`OVERFLOW_DEADLINE`]) kept every place, and every health check was refused.
/// One that has sent a byte is never closed for another: its request may be under way, and
/// an answer lost after its change was made would be repeated by a client's retry. It ends
/// within [`OVERFLOW_LIFETIME`]. With none silent, the new connection is closed. [design]
#[derive(Default)]
struct Evictions {
    oldest_first: parking_lot::Mutex<std::collections::VecDeque<std::sync::Weak<Overflowing>>>,
}

impl Evictions {
    /// A new overflow connection's place in line.
    fn enlist(&self) -> Arc<Overflowing> {
        let overflowing = Arc::new(Overflowing::default());
        let mut line = self.oldest_first.lock();
        // Connections that ended leave their entries: swept when they outnumber the
        // overflow's places, so the line stays about as long as the overflow is.
        if line.len() >= ConnectionLimits::RESERVED_DESCRIPTORS {
            line.retain(|entry| entry.strong_count() > 0);
        }
        line.push_back(Arc::downgrade(&overflowing));
        overflowing
    }

    /// Tells the oldest overflow connection that is open and has sent nothing to close;
    /// `false` when there is none. Those that spoke leave the line: they are not closed
    /// for another, and end by their lifetime.
    fn evict_oldest(&self) -> bool {
        let mut line = self.oldest_first.lock();
        while let Some(entry) = line.pop_front() {
            if let Some(overflowing) = entry.upgrade()
                && !overflowing.spoke.load(Ordering::Acquire)
            {
                overflowing.close.notify_one();
                return true;
            }
        }
        false
    }
}

/// A warning written at most once a second, counting the times it was due meanwhile: a
/// client opening connections by the thousand a second past every limit wrote a line for
/// each, 6 MB of log a second, and could fill the disk the log goes to.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    /// How many times the warning was due since it was last written, when it is to be
    /// written now.
    fn due(&mut self) -> Option<u64> {
        self.since += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

/// The error that closes a connection on purpose.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct Dropped;

/// A connection that fails with `TimedOut` once it has been silent too long: `first_byte`
/// before anything arrives, then `idle` without a byte either way.
///
/// A byte moved only notes the time (`due`); the timer itself is moved forward when it
/// fires early, so a busy connection costs one timer reset per `idle` period instead of
/// one per read and write.
struct Watched<T> {
    inner: T,
    /// An overflow connection's place in line, told once the first byte arrives (and let
    /// go then): from then on it is not closed for a newer one.
    overflowing: Option<Arc<Overflowing>>,
    deadline: Pin<Box<Sleep>>,
    /// When the connection is silent too long, as of the last byte moved.
    due: Instant,
    idle: Duration,
}

impl<T> Watched<T> {
    fn new(
        inner: T,
        first_byte: Duration,
        idle: Duration,
        overflowing: Option<Arc<Overflowing>>,
    ) -> Watched<T> {
        let due = Instant::now() + first_byte;
        Watched {
            inner,
            overflowing,
            deadline: Box::pin(tokio::time::sleep_until(due)),
            due,
            idle,
        }
    }

    fn touch(&mut self) {
        self.due = Instant::now() + self.idle;
        // Only a deadline brought forward (an `idle` shorter than what is left of
        // `first_byte`) needs the timer now.
        if self.due < self.deadline.deadline() {
            let due = self.due;
            self.deadline.as_mut().reset(due);
        }
    }

    /// On a pending read or write: an error once the deadline has passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.deadline.deadline() >= self.due {
                return true;
            }
            // Bytes moved since the timer was set: it fired early; set it to `due`.
            let due = self.due;
            self.deadline.as_mut().reset(due);
        }
    }
}

fn silent() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection silent too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                    if let Some(overflowing) = this.overflowing.take() {
                        overflowing.spoke.store(true, Ordering::Release);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(silent())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(silent())),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(silent())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_throttled_warning_is_written_once_a_second_with_the_times_it_was_due() {
        let mut crowded = Throttled::default();
        assert_eq!(crowded.due(), Some(1));
        for _ in 0..999 {
            assert_eq!(crowded.due(), None);
        }
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(crowded.due(), Some(1000));
        assert_eq!(crowded.due(), None);
    }
}
