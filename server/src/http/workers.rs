//! One tokio runtime per core, each serving its own share of the connections.
//!
//! The connection loop runs on the caller's runtime; that runtime is the first worker, and
//! [`Workers::start`] adds one thread with a single-threaded runtime for each further core
//! (`std::thread::available_parallelism`, which honours a container's CPU quota). Each
//! accepted connection goes to the worker serving the fewest open connections, and lives on
//! it: its socket is registered with that worker's reactor, and its timers with that
//! worker's timer wheel, so a request is read, answered and written by one thread.
//!
//! Why not tokio's work-stealing runtime: side by side on two cores, under `wrk -t2 -c64`,
//! the same build answered 12–16% more creates this way, with 15% less CPU per request.
//! What it saved is the stealing runtime's cross-thread wake-ups and the cross-thread hand
//! over of ready tasks, which a request that takes tens of microseconds cannot amortize.
//! What it gives up: a connection whose worker is busy with a long request waits for it
//! instead of being taken by an idle worker. So no request is long on a worker: what takes
//! milliseconds of CPU (a body of 64 KiB or more; a seed, a snapshot, a reset, the journal
//! searched, the webhook deliveries listed) is worked on by threads of its own, one such
//! job per core at a time (`crate::offload`). The rest (a list page of 100, a create) take
//! microseconds, and a connection's requests are answered in order anyway.
//!
//! Dropping [`Workers`] stops their threads and everything still running on them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The runtimes connections are spread over: the caller's, and one per worker thread.
pub(super) struct Workers {
    /// Connections open on the caller's runtime.
    here: Arc<AtomicUsize>,
    threads: Vec<Thread>,
}

/// A worker thread's runtime.
struct Thread {
    handle: Handle,
    /// Connections open on this runtime.
    open: Arc<AtomicUsize>,
    /// Dropping it ends the thread's runtime.
    _stop: oneshot::Sender<()>,
}

impl Workers {
    /// The caller's runtime plus one thread per further core.
    ///
    /// A thread that cannot be started leaves its share to the others.
    pub(super) fn start() -> Workers {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Workers::with(cores)
    }

    /// The caller's runtime plus `count - 1` threads.
    pub(super) fn with(count: usize) -> Workers {
        let mut threads = Vec::new();
        for index in 1..count {
            match spawn(index) {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    tracing::warn!(%error, "cannot start a worker thread; serving on fewer");
                    break;
                }
            }
        }
        Workers {
            here: Arc::new(AtomicUsize::new(0)),
            threads,
        }
    }

    /// How many runtimes serve connections.
    pub(super) fn len(&self) -> usize {
        1 + self.threads.len()
    }

    /// Runs `connection(stream)` on the runtime with the fewest open connections (the
    /// caller's on a tie), with `stream` registered there.
    pub(super) fn serve<C, F>(&self, stream: tokio::net::TcpStream, connection: C)
    where
        C: FnOnce(tokio::net::TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let load = |open: &AtomicUsize| open.load(Ordering::Relaxed);
        let least = self.threads.iter().fold(None::<&Thread>, |least, thread| {
            let fewest = least.map_or(load(&self.here), |least| load(&least.open));
            if load(&thread.open) < fewest {
                Some(thread)
            } else {
                least
            }
        });
        let Some(thread) = least else {
            let open = Open::count(&self.here);
            tokio::spawn(async move {
                let _open = open;
                connection(stream).await;
            });
            return;
        };
        let open = Open::count(&thread.open);
        // A socket belongs to the reactor it was registered with: move it to the thread's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "cannot hand a connection over; closing it");
                return;
            }
        };
        thread.handle.spawn(async move {
            let _open = open;
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => connection(stream).await,
                Err(error) => tracing::debug!(%error, "cannot register a connection; closing it"),
            }
        });
    }
}

/// One open connection counted against its worker until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts worker thread `index`: a single-threaded runtime that runs until the returned
/// [`Thread`] is dropped.
fn spawn(index: usize) -> std::io::Result<Thread> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(format!("linkbox-worker-{index}"))
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("linkbox-worker-{index}"))
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
    Ok(Thread {
        handle,
        open: Arc::new(AtomicUsize::new(0)),
        _stop: stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connected_pair(
        listener: &tokio::net::TcpListener,
    ) -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn connections_go_to_the_worker_with_the_fewest_and_are_served_there() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let workers = Workers::with(3);
        assert_eq!(workers.len(), 3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (names, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for _ in 0..6 {
            let (client, accepted) = connected_pair(&listener).await;
            let names = names.clone();
            workers.serve(accepted, move |mut stream| async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = names.send(name);
                // Echo one byte, so the socket is shown to work on the worker's reactor.
                let mut byte = [0u8; 1];
                if stream.read_exact(&mut byte).await.is_ok() {
                    let _ = stream.write_all(&byte).await;
                }
            });
            clients.push(client);
        }
        let mut threads = Vec::new();
        for _ in 0..6 {
            threads.push(seen.recv().await.expect("a connection ran"));
        }
        let on = |name: &str| {
            threads
                .iter()
                .filter(|thread| thread.as_deref() == Some(name))
                .count()
        };
        // Two each: the caller's thread (whatever the test harness named it) and the two
        // workers'.
        assert_eq!(on("linkbox-worker-1"), 2, "{threads:?}");
        assert_eq!(on("linkbox-worker-2"), 2, "{threads:?}");
        for (index, client) in clients.iter_mut().enumerate() {
            let byte = [u8::try_from(index).expect("small")];
            client.write_all(&byte).await.expect("write");
            let mut back = [0u8; 1];
            client.read_exact(&mut back).await.expect("echo");
            assert_eq!(back, byte);
        }
    }

    #[tokio::test]
    async fn dropping_the_workers_stops_what_runs_on_them() {
        let workers = Workers::with(2);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        // Occupy the caller's runtime first, so the second connection goes to the thread.
        let (_first, accepted) = connected_pair(&listener).await;
        let (started, on_thread) = oneshot::channel();
        workers.serve(accepted, |_stream| std::future::pending());
        let (mut client, accepted) = connected_pair(&listener).await;
        workers.serve(accepted, move |stream| async move {
            let _ = started.send(std::thread::current().name().map(str::to_owned));
            let _stream = stream;
            std::future::pending::<()>().await;
        });
        assert_eq!(
            on_thread.await.expect("started").as_deref(),
            Some("linkbox-worker-1")
        );
        drop(workers);
        // The connection's task is dropped with its runtime, which closes the socket.
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut client, &mut buf),
        )
        .await
        .expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}
