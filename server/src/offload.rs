//! Work that would hold a serving thread for long, done on threads of its own instead.
//!
//! Each core runs one single-threaded runtime serving its share of the connections (the
//! serving layer's workers), so a request whose answer takes milliseconds of CPU — a body of
//! megabytes parsed, validated, stored and echoed back; a snapshot written or restored; a
//! seed — would hold every other connection on its core until it was done. With two
//! tenants each sending 9 MB creates, a third tenant's `GET` of one link waited behind them
//! (p90 121–135 ms, p99 165–186 ms; 0.37 and 5.3 ms since). Such work runs here instead,
//! while the worker goes on serving its other connections; the kernel shares the core
//! between the two as it would between any two threads.
//!
//! At most one such job per core runs at once, on threads of their own ([`queue`]); the
//! others wait their turn, holding neither a worker nor a thread. Heavy requests thus share
//! the cores among themselves, and however many a client sends, light ones still find a
//! worker free. Among heavy jobs, tenants take turns ([`Waiting`]): a tenant with a hundred
//! uploads waiting delays another tenant's one seed by at most one job per core, not by a
//! hundred. A light request never comes here: handing work to another thread and back
//! costs tens of microseconds, more than most answers take.
//!
//! Work done here for a request counts as the request's own: the changes it records are
//! tracked as if it ran on the request's task (`persist::Carried`), so the answer still
//! waits until they are durable, and on a shared database they are in the request's
//! transaction.
//!
//! What is heavy is said where it is known: by its size, a body of at least
//! [`HEAVY_BYTES`] ([`is_heavy`]: a request's, a webhook's signed before it is sent); by
//! its nature, a route that walks a tenant's or the sandbox's whole state.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::{Future, Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures_util::future::Either;
use parking_lot::{Condvar, Mutex};

use crate::persist::Carried;

/// A body at least this large makes the work on it heavy. Parsing, validating and echoing
/// a request's takes about half a millisecond; under that, the hand-over would cost more
/// than it frees. [design]
pub const HEAVY_BYTES: usize = 64 * 1024;

/// Whether work on a body of `bytes` is heavy by its size ([`HEAVY_BYTES`]).
pub fn is_heavy(bytes: usize) -> bool {
    bytes >= HEAVY_BYTES
}

/// One piece of heavy work, with where its outcome goes.
type Job = Box<dyn FnOnce() + Send>;

/// Whose heavy work it is: the tenant's label (a partner slug, `leaf:<username>`), or
/// `None` for a request with no tenant (the admin's, or one refused before it had one).
pub type Whose<'a> = Option<&'a Arc<str>>;

/// Jobs waiting for a heavy thread, by whose they are, taken in turns: each tenant with
/// jobs waiting has its oldest taken in its turn, then goes to the back of the line if it
/// has more. A tenant's jobs run in the order it sent them.
struct Waiting<J> {
    /// Each tenant's jobs, oldest first; a tenant is here only while it has some.
    jobs: HashMap<Option<Arc<str>>, VecDeque<J>>,
    /// The tenants with jobs waiting, in the order of their turns.
    turns: VecDeque<Option<Arc<str>>>,
}

impl<J> Default for Waiting<J> {
    fn default() -> Self {
        Waiting {
            jobs: HashMap::new(),
            turns: VecDeque::new(),
        }
    }
}

impl<J> Waiting<J> {
    fn push(&mut self, whose: Whose<'_>, job: J) {
        match self.jobs.entry(whose.cloned()) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back(job),
            Entry::Vacant(none) => {
                self.turns.push_back(none.key().clone());
                none.insert(VecDeque::from([job]));
            }
        }
    }

    /// The next job: the oldest of the tenant whose turn it is.
    fn next(&mut self) -> Option<J> {
        let whose = self.turns.pop_front()?;
        let Entry::Occupied(mut waiting) = self.jobs.entry(whose) else {
            return None;
        };
        let job = waiting.get_mut().pop_front();
        if waiting.get().is_empty() {
            waiting.remove();
        } else {
            self.turns.push_back(waiting.key().clone());
        }
        job
    }
}

/// The heavy threads' line of jobs, and the signal that one was added.
struct Line {
    waiting: Mutex<Waiting<Job>>,
    added: Condvar,
}

impl Line {
    fn push(&self, whose: Whose<'_>, job: Job) {
        self.waiting.lock().push(whose, job);
        self.added.notify_one();
    }

    /// Takes the next job, waiting for one.
    fn take(&self) -> Job {
        let mut waiting = self.waiting.lock();
        loop {
            if let Some(job) = waiting.next() {
                return job;
            }
            self.added.wait(&mut waiting);
        }
    }
}

/// The heavy threads' line: one thread per core, started on first use, each taking the
/// next job when it is done with the last. `None` when no thread could be started; the
/// work is then done in place.
///
/// Threads of their own rather than tokio's blocking pool: each runtime has a pool of its
/// own, which starts a thread for a job while none is idle, and each thread that allocates
/// gets heaps of its own from the allocator. Seeded through the control API on that pool,
/// 100,000 links held 1,109–1,260 bytes each against 1,009–1,028 seeded on the serving
/// threads; on these two threads, 1,050 (`docs/decisions.md`).
fn queue() -> Option<&'static Line> {
    static LINE: OnceLock<Option<Arc<Line>>> = OnceLock::new();
    LINE.get_or_init(|| {
        let line = Arc::new(Line {
            waiting: Mutex::new(Waiting::default()),
            added: Condvar::new(),
        });
        let mut started = 0;
        for index in 0..turns() {
            let line = line.clone();
            let thread = std::thread::Builder::new()
                .name(format!("linkbox-heavy-{index}"))
                .spawn(move || {
                    loop {
                        (line.take())();
                    }
                });
            match thread {
                Ok(_) => started += 1,
                Err(error) => tracing::warn!(%error, "cannot start a thread for heavy work"),
            }
        }
        (started > 0).then_some(line)
    })
    .as_deref()
}

/// How many heavy jobs may run at once: one per core.
fn turns() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Runs `work` on a heavy thread once one is free and it is `whose` turn, and gives back
/// what it returned. A panic in `work` resumes here, for the serving layer's panic net to
/// answer.
pub async fn run<T, F>(whose: Option<Arc<str>>, work: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // What the work records is the caller's request's, as if it ran in place.
    let carried = Carried::here();
    let (done, outcome) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| carried.run(work)));
        let _ = done.send(ran);
    });
    match queue() {
        Some(line) => line.push(whose.as_ref(), job),
        None => job(),
    }
    match outcome.await {
        Ok(Ok((value, carried))) => {
            carried.rejoin();
            value
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // The job is always answered, its panic caught; this is only for the compiler.
        Err(_) => std::panic::resume_unwind(Box::new("heavy work went unanswered")),
    }
}

/// Where a piece of work runs: in place, or on a heavy thread in its tenant's turn.
pub enum Turn {
    Here,
    Heavy(Option<Arc<str>>),
}

impl Turn {
    /// On a heavy thread in `whose` turn when `heavy`, else here.
    pub fn of(heavy: bool, whose: Whose<'_>) -> Turn {
        if heavy {
            Turn::Heavy(whose.cloned())
        } else {
            Turn::Here
        }
    }
}

/// What `work` returns (a route's answer): made at once when its `turn` is here, on a heavy
/// thread ([`run`]) when it is heavy. The light path adds no allocation and no await.
pub fn answer<T, F>(
    turn: Turn,
    work: F,
) -> Either<Ready<T>, Pin<Box<dyn Future<Output = T> + Send>>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match turn {
        Turn::Heavy(whose) => Either::Right(Box::pin(run(whose, work))),
        Turn::Here => Either::Left(ready(work())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heavy answer is made on another thread; a light one on the caller's.
    #[tokio::test]
    async fn heavy_work_runs_off_the_callers_thread_and_light_work_on_it() {
        let caller = std::thread::current().id();
        let on = |heavy| {
            answer(Turn::of(heavy, None), move || {
                std::thread::current().id() == caller
            })
        };
        assert!(on(false).await, "light work runs on the caller's thread");
        assert!(!on(true).await, "heavy work runs on another");
    }

    /// While heavy work runs, the caller's runtime goes on with its other tasks: a
    /// single-threaded runtime answers a light task while a heavy one is still busy.
    #[tokio::test]
    async fn the_runtime_serves_other_tasks_while_heavy_work_runs() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let heavy = tokio::spawn(run(None, move || {
            released
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_ok()
        }));
        let light = tokio::spawn(async { 7 });
        assert_eq!(light.await.expect("light task"), 7);
        release.send(()).expect("the heavy work waits");
        assert!(heavy.await.expect("heavy task"), "released, not timed out");
    }

    /// A panic in heavy work reaches the caller as a panic, as it would have inline.
    #[tokio::test]
    async fn a_panic_in_heavy_work_resumes_in_the_caller() {
        let outcome = std::panic::AssertUnwindSafe(run(None, || -> u8 { panic!("boom") }));
        let caught = futures_util::FutureExt::catch_unwind(outcome).await;
        let panic = caught.expect_err("the panic comes back");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
    }

    /// A change recorded by heavy work is its request's: tracked, the request is told it
    /// wrote (and so waits until the change is durable). Work that records nothing is not.
    #[tokio::test]
    async fn what_heavy_work_records_counts_for_its_request() {
        let dir = tempfile::Builder::new()
            .prefix("linkbox-offload-")
            .tempdir()
            .expect("a directory");
        let file = crate::persist::open(&dir.path().join("state.db")).expect("a state file");
        let sink = file.sink();
        file.start().expect("writing");
        let closing = sink.clone();
        let work = move || {
            sink.record(|changes| changes.secret("offload-test", "value".to_owned()));
            7
        };
        let (value, wrote) = crate::persist::tracking(run(None, work)).await;
        assert_eq!((value, wrote), (7, true));
        let (value, wrote) = crate::persist::tracking(run(None, || 8)).await;
        assert_eq!((value, wrote), (8, false));
        closing.close().expect("every change saved");
    }

    /// Tenants with jobs waiting take turns, each its oldest first; the jobs of requests
    /// with no tenant take theirs as one more tenant.
    #[test]
    fn tenants_take_turns_each_in_its_own_order() {
        let (one, two): (Arc<str>, Arc<str>) = ("one".into(), "two".into());
        let mut waiting = Waiting::default();
        for job in ["one-1", "one-2", "one-3", "one-4"] {
            waiting.push(Some(&one), job);
        }
        waiting.push(Some(&two), "two-1");
        waiting.push(None, "none-1");
        waiting.push(Some(&two), "two-2");
        waiting.push(Some(&one), "one-5");
        let order: Vec<&str> = std::iter::from_fn(|| waiting.next()).collect();
        assert_eq!(
            order,
            [
                "one-1", "two-1", "none-1", "one-2", "two-2", "one-3", "one-4", "one-5"
            ]
        );
        assert!(waiting.jobs.is_empty() && waiting.turns.is_empty());
    }

    /// On a line with one thread, a tenant's one job sent after another tenant's ten runs
    /// second: after the job that was running, before the other nine.
    #[test]
    fn one_tenants_flood_delays_anothers_job_by_one_turn() {
        let line = Arc::new(Line {
            waiting: Mutex::new(Waiting::default()),
            added: Condvar::new(),
        });
        let thread = {
            let line = line.clone();
            std::thread::spawn(move || {
                for _ in 0..12 {
                    (line.take())();
                }
            })
        };
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, start) = std::sync::mpsc::channel::<()>();
        let (busy, quiet): (Arc<str>, Arc<str>) = ("busy".into(), "quiet".into());
        line.push(
            Some(&busy),
            Box::new(move || {
                let _ = started.send(());
                let _ = released.recv_timeout(std::time::Duration::from_secs(10));
            }),
        );
        start
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the first job runs");
        for index in 0..10 {
            let ran = ran.clone();
            line.push(Some(&busy), Box::new(move || ran.lock().push(index)));
        }
        let quiet_ran = ran.clone();
        line.push(Some(&quiet), Box::new(move || quiet_ran.lock().push(99)));
        release.send(()).expect("the first job waits");
        thread.join().expect("the line's thread");
        assert_eq!(*ran.lock(), [0, 99, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    /// No more heavy jobs run at once than there are turns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heavy_jobs_take_turns() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let turns = turns();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..turns * 3)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run(None, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for job in jobs {
            job.await.expect("job");
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most >= 1 && most <= turns, "{most} at once, {turns} turns");
    }
}
