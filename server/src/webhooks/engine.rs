//! The background task that delivers webhooks, off every request path.
//!
//! It wakes when a delivery is queued or replayed, when the sandbox clock is moved (so
//! `POST /_sandbox/clock` fires due retries at once), when an attempt finishes, and at least
//! once a second for the clock's own passage. Each attempt runs in its own task, so a slow
//! receiver holds up nothing but itself; all of them are aborted on shutdown.
//!
//! # Taking turns
//! At most [`MAX_CONCURRENT_ATTEMPTS`] attempts are in flight at once, across every tenant,
//! so hanging receivers cannot pin an unbounded number of sockets; at most
//! [`MAX_ATTEMPTS_PER_PARTNER`] of one partner's and [`MAX_ATTEMPTS_PER_RECEIVER`] to one
//! receiver (a loopback port, whatever name reaches it, or a host and port). The others
//! wait in [`Line`], each receiver's in the order they fell due, and the receivers take
//! turns: a free place goes to the first receiver in turn that may start one, which then
//! goes last. While the line is full, a receiver with no attempt in flight may start one
//! from a reserve of [`RESERVED_ATTEMPTS`] more. Made-up keys cost nothing in open mode,
//! and were the line first come, first served, a thousand of them with one delivery each to
//! a receiver that hangs would make every other partner's webhooks wait some twelve
//! timeouts; taking turns by receiver, they hold that receiver's quarter of the line, and
//! every other receiver's webhooks still go out at once, one after another, unless four
//! receivers hang at once and sixteen more each hold a place of the reserve — and then the
//! next place that frees is theirs once the receivers before them in turn have had one.
//!
//! Receivers cost nothing either once webhooks may leave the machine (any host name is
//! one), so a receiver is also judged by what its attempts did ([`Lane`]): one new to the
//! line makes one attempt at a time, at most [`FIRST_ATTEMPTS`] such at once, given first to
//! the new receivers of partners that have had an attempt answered before, then to the
//! newest receiver waiting and the one waiting longest by turns; one whose last attempt ran
//! out its time or answered late ([`QUICK_ANSWER`]) shares [`SLOW_ATTEMPTS`] places; one
//! that answered in time may take any place. A partner's attempts waiting for a place
//! follow its webhook URL when it changes ([`crate::store::m2m::webhook_url_changes`]).
//!
//! The engine runs on a serving thread: a body of 64 KiB or more is signed off it
//! ([`crate::offload`]).
//!
//! # Leaving the machine
//! Without `--external-webhooks` only loopback receivers are called. With it, https
//! receivers are reached over rustls, and the receiver's host is resolved first: an address
//! that is private, link-local, shared, unspecified, multicast or a cloud metadata endpoint
//! ([`is_denied`]) is refused without a connection, and the address checked is the one the
//! attempt connects to (pinned in the attempt's client), so a name cannot resolve to a
//! public address for the check and to a private one for the request.
//!
//! An attempt that cannot be sent at all — no URL, or a URL off this machine while
//! external webhooks are off, or any URL in shadow mode (`--shadow-m2m`, where the vendor
//! delivers the real events) — is recorded and fails the delivery at once (replayable),
//! since no retry would fare differently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header;
use linkbox_contracts::m2m::webhook_headers;
use tokio::task::JoinSet;

use super::{Attempt, Job, Webhooks, sign};
use crate::clock::Clock;
use crate::config::Settings;
use crate::offload;
use crate::persist::shared::Claim;

/// Attempts in flight at once, across every tenant. [design]
pub const MAX_CONCURRENT_ATTEMPTS: usize = 64;
/// Attempts in flight at once besides [`MAX_CONCURRENT_ATTEMPTS`]: at most one to each
/// receiver, for an attempt that would otherwise wait for the line. [design]
pub const RESERVED_ATTEMPTS: usize = 16;
/// Attempts in flight at once for one partner: a quarter of [`MAX_CONCURRENT_ATTEMPTS`].
/// [design]
pub const MAX_ATTEMPTS_PER_PARTNER: usize = MAX_CONCURRENT_ATTEMPTS / 4;
/// Attempts in flight at once to one receiver (a loopback port, or a host and port),
/// whichever partners' they are: a quarter of [`MAX_CONCURRENT_ATTEMPTS`]. [design]
pub const MAX_ATTEMPTS_PER_RECEIVER: usize = MAX_CONCURRENT_ATTEMPTS / 4;

/// First attempts in flight at once, reserve included: one each to receivers that have
/// neither answered nor run out an attempt's time yet. Half of [`MAX_CONCURRENT_ATTEMPTS`].
/// [design]
pub const FIRST_ATTEMPTS: usize = MAX_CONCURRENT_ATTEMPTS / 2;
/// Attempts in flight at once, reserve included, to receivers whose last attempt ran out its
/// time: a quarter of [`MAX_CONCURRENT_ATTEMPTS`]. [design]
pub const SLOW_ATTEMPTS: usize = MAX_CONCURRENT_ATTEMPTS / 4;
/// Receivers remembered as answering or not, at most: past it, the half heard of longest
/// ago are forgotten (and so are new again). [design]
const RECEIVERS_KEPT: usize = 4096;

/// How long a replica's claim on an attempt lasts unless renewed: the claim is renewed
/// every third of it while the attempt runs, so a replica that dies mid-attempt lets the
/// others make it within this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// How long a claim is held once its attempt is recorded: long enough for every other
/// replica to have read the outcome back (they do at least once a second).
const HELD_AFTER: Duration = Duration::from_secs(600);

/// The longest an answer may take for its receiver to count as one that answers ([`Lane`]),
/// or a quarter of the timeout when that is shorter: a receiver made up to answer just
/// before the timeout took any place of the line, and 400 of them held a partner's known
/// receiver back for five waves of their answers. [design]
const QUICK_ANSWER: Duration = Duration::from_secs(1);

/// Whether an answer that took `took` came in time for its receiver to count as one that
/// answers: within [`QUICK_ANSWER`], or a quarter of the attempts' `timeout` when shorter.
fn in_time(took: Duration, timeout: Duration) -> bool {
    took <= QUICK_ANSWER.min(timeout / 4)
}

/// What an attempt that took `took` says of its receiver ([`Lane`]): answered (any status)
/// in time, it answers (`Some(true)`); answered late, or not at all after as long — a
/// timeout, a connection held and then dropped, a slow lookup — it is slow
/// (`Some(false)`); failed at once (no connection), nothing (`None`). Counted as nothing,
/// receivers that held each connection almost to the timeout and then dropped it kept
/// the lane their first quick answer had earned, and dozens of them took the whole line.
fn heard(answered: bool, took: Duration, timeout: Duration) -> Option<bool> {
    match (answered, in_time(took, timeout)) {
        (true, quick) => Some(quick),
        (false, true) => None,
        (false, false) => Some(false),
    }
}

/// How often, at most, the attempts waiting are moved to the receivers their partners'
/// URLs name now: the walk reads every attempt waiting, and keys that cost nothing may
/// change their URLs as often as they like. [design]
const MOVED_EVERY: Duration = Duration::from_secs(5);

/// How often, at most, the attempts waiting are walked for those a reset forgot, freeing
/// their places: each reset of any partner with deliveries made every other partner's
/// requests wait for a walk of up to 20,000 attempts. [design]
const FORGOTTEN_EVERY: Duration = Duration::from_secs(1);

/// A walk of every attempt waiting, made when a counter has moved since the last one and
/// at most once a `period`: what makes the counter move (a reset, a changed URL) costs its
/// caller nothing, and a walk costs every partner's requests a pass over the whole line.
#[derive(Debug)]
struct Walk {
    period: Duration,
    seen: u64,
    last: Instant,
}

impl Walk {
    fn new(period: Duration, seen: u64, now: Instant) -> Self {
        Self {
            period,
            seen,
            last: now,
        }
    }

    /// Whether to walk now, given the counter's value: it has moved since the last walk
    /// and a whole period has passed since that walk. A move inside the period is not
    /// lost: it is walked for once the period is over.
    fn due(&mut self, count: u64, now: Instant) -> bool {
        let due = count != self.seen && now.saturating_duration_since(self.last) >= self.period;
        if due {
            self.seen = count;
            self.last = now;
        }
        due
    }
}

/// Longest the engine sleeps without looking at the clock.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// How long an attempt a reset on another replica forgot is put back for: this replica's
/// background pass catches up on the partner within about a second, and forgets it.
const FORGOTTEN_WAIT: Duration = Duration::from_secs(1);

/// How attempts are made.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// How long an attempt waits for an answer.
    pub timeout: Duration,
    /// Whether webhooks may leave this machine (`--external-webhooks`).
    pub external: bool,
    /// Shadow mode for M2M: the vendor delivers the real events, so linkbox records its own
    /// and sends none (doubling every event at the receiver).
    pub shadow: bool,
    /// `--webhook-ca-cert`: the CAs an https receiver's certificate may chain to besides
    /// the public roots, read once.
    pub roots: Arc<[reqwest::Certificate]>,
}

impl Delivery {
    pub fn of(settings: &Settings) -> Delivery {
        Delivery {
            timeout: settings.webhook_timeout,
            external: settings.external_webhooks,
            shadow: settings.shadow.m2m.is_some(),
            // Checked when the flag was read; a bundle that no longer parses here is one
            // of no CA, and said so.
            roots: settings
                .webhook_ca_cert
                .as_deref()
                .map(|pem| {
                    reqwest::Certificate::from_pem_bundle(pem).unwrap_or_else(|error| {
                        tracing::error!(%error, "--webhook-ca-cert is not a PEM bundle; ignored");
                        Vec::new()
                    })
                })
                .unwrap_or_default()
                .into(),
        }
    }

    /// A client for attempts: no proxy, no redirects followed, the attempt's timeout, and
    /// the extra roots.
    fn client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        self.roots
            .iter()
            .cloned()
            .fold(builder, |builder, root| builder.add_root_certificate(root))
    }
}

/// Delivers `webhooks`' due deliveries, on `clock`, until `shutdown` completes.
pub async fn run(
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    shutdown: impl Future<Output = ()>,
) {
    // The client for loopback receivers resolves `localhost` names itself, to loopback.
    let client = match delivery
        .client()
        .dns_resolver(Arc::new(LoopbackNames))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(
                %error,
                "webhook client could not be built (the CAs of --webhook-ca-cert?); no webhooks will be sent"
            );
            return;
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut attempts = JoinSet::new();
    let mut line = Line::default();
    let started = Instant::now();
    let mut forgotten = Walk::new(FORGOTTEN_EVERY, webhooks.forgets(), started);
    let mut moved = Walk::new(
        MOVED_EVERY,
        crate::store::m2m::webhook_url_changes(),
        started,
    );
    loop {
        // An attempt of a delivery forgotten since the last walk ends unsent when its
        // place comes ([`send`]).
        if forgotten.due(webhooks.forgets(), Instant::now()) {
            line.retain(|job| webhooks.still_due(job.id, job.attempt));
        }
        if moved.due(crate::store::m2m::webhook_url_changes(), Instant::now()) {
            line.move_to_current_receivers();
        }
        let now = clock.now();
        let (jobs, next_due) = webhooks.take_due_and_next(now);
        for job in jobs {
            line.push(job);
        }
        for (place, job) in line.next() {
            let (client, webhooks, clock) = (client.clone(), webhooks.clone(), clock.clone());
            let delivery = delivery.clone();
            attempts.spawn(async move {
                let partner = job.partner.slug.clone();
                let answered = attempt(client, webhooks, clock, delivery, job).await;
                (place, partner, answered)
            });
        }
        let idle = next_due
            .map(|due| (due - clock.now()).clamp(time::Duration::ZERO, time::Duration::SECOND))
            .and_then(|wait| Duration::try_from(wait).ok())
            .unwrap_or(MAX_IDLE)
            .max(Duration::from_millis(5));
        tokio::select! {
            () = &mut shutdown => break,
            () = webhooks.woken() => {}
            () = clock.moved() => {}
            Some(ended) = attempts.join_next() => {
                // Every attempt already finished, before one walk of the queue for them all.
                let ended = std::iter::once(ended).chain(std::iter::from_fn(|| attempts.try_join_next()));
                for (place, partner, answered) in ended.flatten() {
                    line.done(&place, &partner, answered);
                }
            }
            () = tokio::time::sleep(idle) => {}
        }
    }
    attempts.abort_all();
}

/// The attempts waiting for a place and those in flight (see the module's "Taking turns").
/// Two stages: a partner's attempts are let in up to its share ([`MAX_ATTEMPTS_PER_PARTNER`]
/// let in at once, waiting or in flight), the rest held in its own queue, so a partner at its
/// share never stands in another's way; those let in wait by receiver, and receivers take
/// turns. A receiver at its cap is set aside until one of its attempts ends, so a turn looks
/// only at receivers that may start one, or at the few (each with an attempt in flight) the
/// full line keeps from the reserve. A receiver new to the line makes one attempt at a time
/// ([`Lane::First`]) and one whose last attempt ran out its time starts them only in
/// [`Lane::Slow`]; while its lane is full it is set aside until a place of it frees.
#[derive(Default)]
struct Line {
    /// Each partner's attempts past its share, in the order they fell due.
    held: HashMap<Arc<str>, VecDeque<Job>>,
    /// Each partner's attempts let in: waiting for a place, or in flight.
    admitted: HashMap<Arc<str>, usize>,
    /// Each receiver's attempts let in and waiting for a place, in the order they came.
    waiting: HashMap<Arc<str>, VecDeque<Job>>,
    /// The receivers with attempts waiting, in turn, but those set aside.
    turns: VecDeque<Arc<str>>,
    /// Receivers with attempts waiting and [`MAX_ATTEMPTS_PER_RECEIVER`] in flight (or, new,
    /// one).
    aside: HashSet<Arc<str>>,
    in_flight: usize,
    by_receiver: HashMap<Arc<str>, usize>,
    /// What each receiver's last attempt that ended either way did: answered (`true`) or
    /// ran out its time; with when it was heard of (in outcomes counted).
    heard: HashMap<Arc<str>, (bool, u64)>,
    outcomes: u64,
    /// Attempts in flight in [`Lane::First`] and [`Lane::Slow`].
    firsts_in_flight: usize,
    slow_in_flight: usize,
    /// Receivers with attempts waiting set aside while their lane is full, in the order
    /// they were: new receivers ([`Lane::First`], the newest back in turn first) and slow
    /// ones. Those no longer set aside (in `lane_aside`) are skipped.
    firsts: VecDeque<Arc<str>>,
    slow: VecDeque<Arc<str>>,
    /// New receivers set aside whose next attempt is a partner's that has had an attempt
    /// answered in time before ([`Line::answering`]): each back in turn before any of
    /// `firsts`, in the order they were set aside.
    firsts_known: VecDeque<Arc<str>>,
    lane_aside: HashSet<Arc<str>>,
    /// Partners that have had an attempt answered in time, on any receiver, with when (in
    /// outcomes counted): a new receiver of theirs goes before new receivers of partners
    /// never answered, as made-up keys' are. At most [`RECEIVERS_KEPT`], the half heard of
    /// longest ago forgotten past it.
    answering: HashMap<Arc<str>, u64>,
    /// Whether the next place of the first lane goes to the receiver set aside longest
    /// (else to the newest).
    oldest_next: bool,
}

/// Which places an attempt may take, by what its receiver's attempts did before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// A receiver whose last attempt had an HTTP answer: any place of the line.
    Answers,
    /// A receiver not heard of: one attempt at a time, in [`FIRST_ATTEMPTS`] places. Made
    /// up by the thousand, new receivers that hang make one attempt each, a lane of them at
    /// a time, and a receiver new after them goes before them (the newest first), so a
    /// partner's new receiver waits for at most one of their attempts to end.
    First,
    /// A receiver whose last attempt ran out its time: [`SLOW_ATTEMPTS`] places.
    Slow,
}

/// Where an attempt started: its receiver, and the lane whose place it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    receiver: Arc<str>,
    lane: Lane,
}

impl Line {
    fn push(&mut self, job: Job) {
        let admitted = self.admitted.entry(job.partner.slug.clone()).or_default();
        if *admitted < MAX_ATTEMPTS_PER_PARTNER {
            *admitted += 1;
            self.wait(receiver_of(&job), job);
        } else {
            self.held
                .entry(job.partner.slug.clone())
                .or_default()
                .push_back(job);
        }
    }

    /// Keeps only the attempts waiting that `keep` keeps (those of deliveries still kept):
    /// a partner's let in and dropped free its share.
    fn retain(&mut self, keep: impl Fn(&Job) -> bool) {
        let mut freed: Vec<Arc<str>> = Vec::new();
        for queue in self.waiting.values_mut() {
            queue.retain(|job| {
                keep(job) || {
                    freed.push(job.partner.slug.clone());
                    false
                }
            });
        }
        self.waiting.retain(|_, queue| !queue.is_empty());
        // Receivers set aside with nothing left waiting are forgotten: kept, a reset's
        // made-up receivers still took the places of the lanes as they came back, and piled
        // up while a lane stayed full.
        let waiting = &self.waiting;
        self.lane_aside
            .retain(|receiver| waiting.contains_key(receiver));
        self.aside.retain(|receiver| waiting.contains_key(receiver));
        let aside = &self.lane_aside;
        self.firsts.retain(|receiver| aside.contains(receiver));
        self.firsts_known
            .retain(|receiver| aside.contains(receiver));
        self.slow.retain(|receiver| aside.contains(receiver));
        for queue in self.held.values_mut() {
            queue.retain(&keep);
        }
        self.held.retain(|_, queue| !queue.is_empty());
        for partner in freed {
            self.release(&partner);
        }
    }

    /// Every attempt waiting moved to the receiver its URL names now, at the end of that
    /// receiver's queue: after a partner's webhook URL changed, its attempts let in no
    /// longer wait behind other partners' at the receiver it left (an attempt is re-read
    /// when its turn comes too, but the turn of one deep in a hanging receiver's queue came
    /// only after every attempt before it there had waited out its time).
    fn move_to_current_receivers(&mut self) {
        let mut moved = Vec::new();
        for (receiver, queue) in &mut self.waiting {
            let mut at = 0;
            while at < queue.len() {
                // A link's own `callbackUrl` does not change.
                if queue[at].callback_url.is_some() {
                    at += 1;
                    continue;
                }
                let now = receiver_of(&queue[at]);
                if now == *receiver {
                    at += 1;
                } else if let Some(job) = queue.remove(at) {
                    moved.push((now, job));
                }
            }
        }
        if moved.is_empty() {
            return;
        }
        self.waiting.retain(|_, queue| !queue.is_empty());
        for (receiver, job) in moved {
            self.wait(receiver, job);
        }
    }

    /// A place of `partner`'s share is free: its next attempt held is let in.
    fn release(&mut self, partner: &Arc<str>) {
        let next = self.held.get_mut(partner).and_then(VecDeque::pop_front);
        if self.held.get(partner).is_some_and(VecDeque::is_empty) {
            self.held.remove(partner);
        }
        match next {
            Some(job) => self.wait(receiver_of(&job), job),
            None => {
                if let Some(count) = self.admitted.get_mut(partner) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.admitted.remove(partner);
                    }
                }
            }
        }
    }

    /// `job`, let in, waits for a place at `receiver`.
    fn wait(&mut self, receiver: Arc<str>, job: Job) {
        let queue = self.waiting.entry(receiver.clone()).or_default();
        queue.push_back(job);
        if queue.len() == 1
            && !self.aside.contains(&receiver)
            && !self.lane_aside.contains(&receiver)
        {
            self.turns.push_back(receiver);
        }
    }

    /// The attempts to start now, each with its place, counted in flight: receivers in
    /// turn, each that may start one starting its first and going last, until the line
    /// and the reserve are full or no receiver in turn may start one. An attempt is counted
    /// where its URL points now, and sent there ([`receiver_of`]): a URL changed while it
    /// waited moves it to that receiver's queue.
    fn next(&mut self) -> Vec<(Place, Job)> {
        // As many receivers set aside for a lane (with attempts still waiting) as it has
        // places free are back in turn: of new receivers, the newest and the one set aside
        // longest by turns, so neither a burst of made-up ones before a partner's receiver
        // nor a stream of them after it holds it back for more than a few attempts.
        let mut free = FIRST_ATTEMPTS.saturating_sub(self.firsts_in_flight);
        // Those brought back, whose the places are: a new receiver not yet set aside goes
        // behind them and those still set aside, not ahead of them by its place in turn.
        let mut brought: HashSet<Arc<str>> = HashSet::new();
        // First a partner's whose attempts have been answered before: a burst of made-up
        // receivers before it and a stream after it held it back for the burst's whole
        // length, at half speed.
        while free > 0
            && let Some(receiver) = self.firsts_known.pop_front()
        {
            if self.lane_aside.remove(&receiver) && self.has_waiting(&receiver) {
                brought.insert(receiver.clone());
                self.requeue(receiver);
                free -= 1;
            }
        }
        while free > 0 {
            let next = if self.oldest_next {
                self.firsts.pop_front()
            } else {
                self.firsts.pop_back()
            };
            let Some(receiver) = next else { break };
            self.oldest_next = !self.oldest_next;
            if self.lane_aside.remove(&receiver) && self.has_waiting(&receiver) {
                brought.insert(receiver.clone());
                self.requeue(receiver);
                free -= 1;
            }
        }
        let mut free = SLOW_ATTEMPTS.saturating_sub(self.slow_in_flight);
        while free > 0
            && let Some(receiver) = self.slow.pop_front()
        {
            if self.lane_aside.remove(&receiver) && self.has_waiting(&receiver) {
                self.requeue(receiver);
                free -= 1;
            }
        }
        let mut started = Vec::new();
        // Receivers looked at since one last started an attempt.
        let mut passed = 0;
        while passed < self.turns.len()
            && self.in_flight < MAX_CONCURRENT_ATTEMPTS + RESERVED_ATTEMPTS
        {
            let Some(receiver) = self.turns.pop_front() else {
                break;
            };
            let Some(mut job) = self
                .waiting
                .get_mut(&receiver)
                .and_then(VecDeque::pop_front)
            else {
                self.waiting.remove(&receiver);
                continue;
            };
            let url = url_of(&job);
            let now = receiver_at(url.as_deref());
            if now != receiver {
                self.requeue(receiver);
                self.wait(now, job);
                continue;
            }
            let in_flight = self.by_receiver.get(&receiver).copied().unwrap_or(0);
            let lane = self.lane_of(&receiver);
            let (cap, lane_full) = match lane {
                Lane::Answers => (MAX_ATTEMPTS_PER_RECEIVER, false),
                Lane::First => {
                    let behind = !brought.contains(&receiver)
                        && (!brought.is_empty()
                            || !self.firsts.is_empty()
                            || !self.firsts_known.is_empty());
                    (1, behind || self.firsts_in_flight >= FIRST_ATTEMPTS)
                }
                Lane::Slow => (
                    MAX_ATTEMPTS_PER_RECEIVER,
                    self.slow_in_flight >= SLOW_ATTEMPTS,
                ),
            };
            let may = !lane_full
                && if self.in_flight < MAX_CONCURRENT_ATTEMPTS {
                    in_flight < cap
                } else {
                    // The reserve: one attempt of a receiver with none in flight.
                    in_flight == 0
                };
            brought.remove(&receiver);
            if !may {
                if let Some(queue) = self.waiting.get_mut(&receiver) {
                    queue.push_front(job);
                }
                if in_flight >= cap {
                    self.aside.insert(receiver);
                } else if lane_full {
                    if self.lane_aside.insert(receiver.clone()) {
                        let known = self
                            .waiting
                            .get(&receiver)
                            .and_then(VecDeque::front)
                            .is_some_and(|job| self.answering.contains_key(&job.partner.slug));
                        match lane {
                            Lane::Slow => self.slow.push_back(receiver),
                            _ if known => self.firsts_known.push_back(receiver),
                            _ => self.firsts.push_back(receiver),
                        }
                    }
                } else {
                    self.turns.push_back(receiver);
                    passed += 1;
                }
                continue;
            }
            // Sent where it was counted.
            job.callback_url = url;
            self.in_flight += 1;
            match lane {
                Lane::Answers => {}
                Lane::First => self.firsts_in_flight += 1,
                Lane::Slow => self.slow_in_flight += 1,
            }
            *self.by_receiver.entry(receiver.clone()).or_default() += 1;
            started.push((
                Place {
                    receiver: receiver.clone(),
                    lane,
                },
                job,
            ));
            passed = 0;
            self.requeue(receiver);
        }
        started
    }

    /// Whether attempts of `receiver` wait.
    fn has_waiting(&self, receiver: &Arc<str>) -> bool {
        self.waiting
            .get(receiver)
            .is_some_and(|queue| !queue.is_empty())
    }

    /// `receiver` back in turn when attempts of it still wait, else forgotten.
    fn requeue(&mut self, receiver: Arc<str>) {
        if self
            .waiting
            .get(&receiver)
            .is_some_and(|queue| !queue.is_empty())
        {
            self.turns.push_back(receiver);
        } else {
            self.waiting.remove(&receiver);
        }
    }

    /// The lane of `receiver`'s next attempt, by what its last one did.
    fn lane_of(&self, receiver: &Arc<str>) -> Lane {
        match self.heard.get(receiver) {
            Some((true, _)) => Lane::Answers,
            Some((false, _)) => Lane::Slow,
            None => Lane::First,
        }
    }

    /// An attempt of `partner`'s ended at `place`, `answered` (an HTTP answer), run out of
    /// time (`Some(false)`), or neither (refused at once, or not made): its place is free,
    /// its receiver's lane what the attempt made it, a receiver set aside is back in turn,
    /// and the partner's next attempt held is let in.
    fn done(&mut self, place: &Place, partner: &Arc<str>, answered: Option<bool>) {
        let receiver = &place.receiver;
        self.in_flight = self.in_flight.saturating_sub(1);
        match place.lane {
            Lane::Answers => {}
            Lane::First => self.firsts_in_flight = self.firsts_in_flight.saturating_sub(1),
            Lane::Slow => self.slow_in_flight = self.slow_in_flight.saturating_sub(1),
        }
        if let Some(count) = self.by_receiver.get_mut(receiver) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.by_receiver.remove(receiver);
            }
        }
        if let Some(answered) = answered {
            self.heard_of(receiver, answered);
        }
        if answered == Some(true) {
            self.answered_for(partner);
        }
        // Answering now, it no longer waits for a lane.
        let back = self.lane_of(receiver) == Lane::Answers && self.lane_aside.remove(receiver);
        if self.aside.remove(receiver) || back {
            self.requeue(receiver.clone());
        }
        self.release(partner);
    }

    /// `receiver`'s attempt answered, or ran out its time: remembered, the half of the
    /// receivers kept heard of longest ago forgotten when there are more than
    /// [`RECEIVERS_KEPT`].
    fn heard_of(&mut self, receiver: &Arc<str>, answered: bool) {
        self.outcomes += 1;
        self.heard
            .insert(receiver.clone(), (answered, self.outcomes));
        if self.heard.len() > RECEIVERS_KEPT {
            let mut when: Vec<u64> = self.heard.values().map(|(_, at)| *at).collect();
            let middle = when.len() / 2;
            let (_, oldest_kept, _) = when.select_nth_unstable(middle);
            let oldest_kept = *oldest_kept;
            self.heard.retain(|_, (_, at)| *at >= oldest_kept);
        }
    }

    /// An attempt of `partner`'s was answered in time: remembered as [`Line::heard_of`]
    /// remembers receivers, within [`RECEIVERS_KEPT`].
    fn answered_for(&mut self, partner: &Arc<str>) {
        self.answering.insert(partner.clone(), self.outcomes);
        if self.answering.len() > RECEIVERS_KEPT {
            let mut when: Vec<u64> = self.answering.values().copied().collect();
            let middle = when.len() / 2;
            let (_, oldest_kept, _) = when.select_nth_unstable(middle);
            let oldest_kept = *oldest_kept;
            self.answering.retain(|_, at| *at >= oldest_kept);
        }
    }
}

/// Whom an attempt of `job` calls now, as the line counts receivers: a loopback receiver
/// by its port (`localhost`, `127.0.0.1` and every `*.localhost` name reach the same
/// socket), any other by its host and port; an attempt that cannot be sent, by none (it
/// ends at once).
fn receiver_of(job: &Job) -> Arc<str> {
    receiver_at(url_of(job).as_deref())
}

/// Where an attempt of `job` goes now: its link's `callbackUrl`, else its partner's URL.
fn url_of(job: &Job) -> Option<String> {
    job.callback_url
        .clone()
        .or_else(|| job.partner.webhook_url())
}

/// The receiver ([`receiver_of`]) `url` names.
fn receiver_at(url: Option<&str>) -> Arc<str> {
    let Some(parsed) = url.and_then(|url| url::Url::parse(url).ok()) else {
        return Arc::from("");
    };
    let port = parsed.port_or_known_default().unwrap_or_default();
    if url.is_some_and(is_loopback_url) {
        format!("loopback:{port}").into()
    } else {
        format!("{}:{port}", parsed.host_str().unwrap_or_default()).into()
    }
}

/// Makes one attempt and records it. In a sandbox shared by replicas, one of them makes
/// each attempt: the one that claims it, renewing the claim while the attempt runs and
/// holding it a while after. The others put the delivery back until the claim lapses; by
/// then they have read the attempt's outcome back, or its holder died and the attempt is
/// made again.
///
/// Whether the receiver answered, as [`send`] says; `None` when another replica holds the
/// attempt.
async fn attempt(
    client: reqwest::Client,
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    job: Job,
) -> Option<bool> {
    let Some(database) = webhooks.database().cloned() else {
        return send(client, webhooks, clock, delivery, job).await;
    };
    let claimed = database
        .claim(&job.partner.slug, &job.id.text(), job.attempt, LEASE)
        .await;
    let wait = match claimed {
        Ok(Claim::Won) => None,
        Ok(Claim::Held(wait)) => Some(wait),
        // A reset on another replica forgot it: put back until this replica catches up on
        // the partner, which forgets it too.
        Ok(Claim::Forgotten) => Some(FORGOTTEN_WAIT),
        Err(error) => {
            tracing::warn!(%error, delivery = %job.id, "could not claim a webhook attempt; trying again");
            Some(MAX_IDLE)
        }
    };
    if let Some(wait) = wait {
        let wait = time::Duration::try_from(wait).unwrap_or(time::Duration::SECOND);
        webhooks.defer(job.id, job.attempt, clock.now() + wait);
        return None;
    }
    let (id, number) = (job.id.text(), job.attempt);
    let renew = async {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            if let Err(error) = database.renew(&id, number, LEASE).await {
                tracing::warn!(%error, delivery = %id, "could not renew the claim on a webhook attempt");
            }
        }
    };
    let answered = tokio::select! {
        answered = send(client, webhooks, clock, delivery, job) => answered,
        () = renew => None,
    };
    if let Err(error) = database.renew(&id, number, HELD_AFTER).await {
        tracing::warn!(%error, delivery = %id, "could not hold the claim on a webhook attempt made");
    }
    answered
}

/// Makes one attempt and records it, reading the URL and the secret now. Whether the
/// receiver answered, as [`heard`] says; `None` too when it was not sent.
async fn send(
    client: reqwest::Client,
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    job: Job,
) -> Option<bool> {
    // A reset (the tenant's or the admin's) may have forgotten it while it waited for its
    // place: a test suite resetting between tests then still received the last one's events.
    if !webhooks.still_due(job.id, job.attempt) {
        return None;
    }
    let at = clock.now();
    let url = job
        .callback_url
        .clone()
        .or_else(|| job.partner.webhook_url());
    let started = Instant::now();
    // Time spent waiting for a heavy thread to sign the body: linkbox's, not the receiver's.
    let mut signing = Duration::ZERO;
    let took = |signing: Duration| started.elapsed().saturating_sub(signing);
    let mut answered = None;
    let sendable = !delivery.shadow
        && url
            .as_deref()
            .is_some_and(|url| delivery.external || is_loopback_url(url));
    let (status_code, error) = match &url {
        None => (None, Some(super::NO_URL.to_owned())),
        Some(url) if delivery.shadow => (
            None,
            Some(format!(
                "not sent: shadow mode (--shadow-m2m) records linkbox's own webhooks without \
                 sending them, since the vendor already delivers the real ones to {url}"
            )),
        ),
        Some(url) if !delivery.external && !is_loopback_url(url) => (
            None,
            Some(format!(
                "not sent: {url} is not on this machine, and external webhooks are off \
                 (start linkbox with --external-webhooks to send to it)"
            )),
        ),
        Some(url) => {
            let client = if is_loopback_url(url) {
                Ok(client)
            } else {
                pinned_client(url, &delivery).await
            };
            let client = match client {
                Ok(client) => client,
                Err(error) => {
                    webhooks.record_attempt(
                        job.id,
                        Attempt {
                            at,
                            url: Some(url.clone()),
                            status_code: None,
                            error: Some(error.into()),
                            duration_ms: u64::try_from(started.elapsed().as_millis())
                                .unwrap_or(u64::MAX),
                        },
                    );
                    return heard(false, started.elapsed(), delivery.timeout);
                }
            };
            let timestamp = at.unix_timestamp();
            let secret = job.partner.webhook_secret();
            // The engine shares a serving thread: a body of megabytes is signed off it.
            let body = job.body.clone();
            let turn = offload::Turn::of(offload::is_heavy(body.len()), Some(&job.partner.slug));
            let signed = Instant::now();
            let signature =
                offload::answer(turn, move || sign::signature(&secret, timestamp, &body)).await;
            signing = signed.elapsed();
            let sent = client
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(webhook_headers::EVENT, job.event)
                .header(webhook_headers::TIMESTAMP, timestamp.to_string())
                .header(webhook_headers::SIGNATURE, signature)
                .body(job.body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    answered = heard(true, took(signing), delivery.timeout);
                    (Some(response.status().as_u16()), None)
                }
                Err(error) => {
                    answered = heard(false, took(signing), delivery.timeout);
                    (None, Some(describe(&error, &delivery)))
                }
            }
        }
    };
    let outcome = Attempt {
        at,
        url,
        status_code,
        error: error.map(Into::into),
        duration_ms: u64::try_from(took(signing).as_millis()).unwrap_or(u64::MAX),
    };
    tracing::debug!(delivery = %job.id, event = job.event, status = ?outcome.status_code, error = ?outcome.error, "webhook attempt");
    if sendable {
        webhooks.record_attempt(job.id, outcome);
    } else {
        webhooks.record_unsendable(job.id, outcome);
    }
    answered
}

/// A client for one attempt to a non-loopback `url`: its host resolved now, every address
/// checked against [`is_denied`], and the first allowed one pinned. `Err` says why not.
async fn pinned_client(url: &str, delivery: &Delivery) -> Result<reqwest::Client, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("not sent: {url}: {error}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("not sent: {url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| format!("could not resolve {host}: {error}"))?
        .collect();
    let allowed = addrs
        .iter()
        .find(|addr| !is_denied(addr.ip()))
        .copied()
        .ok_or_else(|| {
            let list: Vec<String> = addrs.iter().map(|addr| addr.ip().to_string()).collect();
            format!(
                "not sent: {host} resolves to {} — private, link-local or metadata addresses \
                 are never called",
                list.join(", ")
            )
        })?;
    delivery
        .client()
        .resolve(&host, allowed)
        .build()
        .map_err(|error| format!("not sent: {error}"))
}

/// Whether a webhook must never be sent to `ip`: private (10/8, 172.16/12, 192.168/16,
/// fc00::/7), link-local (169.254/16 — cloud metadata included — and fe80::/10), shared
/// (100.64/10), loopback reached by a name other than localhost, unspecified, broadcast,
/// multicast, documentation and benchmarking ranges, and IPv4 reached through IPv6
/// (mapped or NAT64 forms are checked as the IPv4 address they carry).
pub fn is_denied(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0)
                // 6to4's relay anycast: a way to an IPv6 address it does not show.
                || (a == 192 && b == 88 && c == 99)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            // Mapped (`::ffff:a.b.c.d`) or compatible (`::a.b.c.d`, deprecated but still
            // routed by some stacks to the IPv4 address it carries).
            if let Some(v4) = v6.to_ipv4() {
                return is_denied(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            // NAT64 (`64:ff9b::a.b.c.d`) and SIIT's IPv4-translated `::ffff:0:a.b.c.d`.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
            {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_denied(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                // Site-local (fec0::/10, deprecated but still routed by some stacks).
                || (segments[0] & 0xffc0) == 0xfec0
                // Documentation: 2001:db8::/32 and 3fff::/20.
                || segments[0] == 0x2001 && segments[1] == 0x0db8
                || segments[0] == 0x3fff && segments[1] < 0x1000
                // Ways to an IPv4 address it does not show: 6to4 (2002::/16), local-use
                // NAT64 (64:ff9b:1::/48), and the IETF protocol assignments (2001::/23:
                // Teredo's 2001::/32, benchmarking's 2001:2::/48, ORCHID; no webhook
                // receiver lives there); and the discard prefix.
                || segments[0] == 0x2002
                || segments[0] == 0x2001 && segments[1] < 0x0200
                || segments[..3] == [0x64, 0xff9b, 1]
                || segments[..4] == [0x100, 0, 0, 0]
        }
    }
}

/// The resolver of the client for loopback receivers, whose only names are `localhost` and
/// those under it: each is this machine (RFC 6761 §6.3), without asking the system's
/// resolver, which may pass `foo.localhost` to a DNS server off the machine and connect
/// wherever its answer points.
struct LoopbackNames;

impl reqwest::dns::Resolve for LoopbackNames {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let local = is_localhost_name(name.as_str());
        Box::pin(async move {
            if !local {
                return Err("not a loopback name: only localhost names are resolved here".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(
                [
                    std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
                    std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                ]
                .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// Whether `domain` is `localhost` or a name under it.
fn is_localhost_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Whether `url` points at this machine: 127.0.0.0/8, ::1, or `localhost` and the names
/// under it, which [`LoopbackNames`] resolves to loopback.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => is_localhost_name(domain),
        None => false,
    }
}

fn describe(error: &reqwest::Error, delivery: &Delivery) -> String {
    if error.is_timeout() {
        return format!(
            "timed out after {} ms without an answer",
            delivery.timeout.as_millis()
        );
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(hint) = certificate_hint(&text, !delivery.roots.is_empty()) {
        text.push_str(&hint);
    }
    text
}

/// What the receiver's owner can do about a certificate refused, read from rustls's words
/// in `error` (its typed error is not reachable through reqwest's), where the words alone
/// do not say: a certificate no root vouches for, or a CA's own certificate served as the
/// receiver's. An expired certificate, or one for another name, says all there is to say.
fn certificate_hint(error: &str, has_roots: bool) -> Option<String> {
    if error.contains("CaUsedAsEndEntity") {
        Some(format!(": {}", linkbox_contracts::sandbox::CA_AS_SERVER))
    } else if error.contains("UnknownIssuer") {
        Some(
            if has_roots {
                " (no public root and no CA in --webhook-ca-cert issued it, or the receiver does \
             not send the certificates between them)"
            } else {
                " (a receiver whose certificate a private CA issued is trusted with \
             --webhook-ca-cert FILE)"
            }
            .to_owned(),
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{
        FIRST_ATTEMPTS, Lane, Line, MAX_ATTEMPTS_PER_PARTNER, MAX_ATTEMPTS_PER_RECEIVER,
        MAX_CONCURRENT_ATTEMPTS, Place, RESERVED_ATTEMPTS, SLOW_ATTEMPTS, Walk, certificate_hint,
        heard, in_time, is_denied, is_loopback_url,
    };
    use crate::webhooks::{DeliveryId, Job};

    /// A walk waits for its counter to move, runs at most once a period however often it
    /// moves, and still runs for a move made inside the period once the period is over.
    #[test]
    fn a_walk_runs_for_a_moved_counter_at_most_once_a_period() {
        let start = std::time::Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let mut walk = Walk::new(Duration::from_secs(1), 7, start);
        assert!(!walk.due(7, at(5_000)), "the counter has not moved");
        assert!(!walk.due(8, at(999)), "moved, but inside the first period");
        assert!(walk.due(8, at(1_000)), "moved, and a period has passed");
        assert!(!walk.due(8, at(3_000)), "walked for that move already");
        assert!(
            !walk.due(9, at(1_500)),
            "moved again inside the period after the walk"
        );
        assert!(!walk.due(12, at(1_999)), "moved more, still inside it");
        assert!(
            walk.due(12, at(2_000)),
            "the moves inside the period are walked for after it"
        );
        assert!(!walk.due(12, at(2_000)), "and only once");
        assert!(
            !walk.due(13, at(500)),
            "a clock read behind the last walk does not walk"
        );
    }

    /// The hint follows the cause: the flag for an unknown issuer while it is unset, the
    /// missing link once it is set, the CA's certificate served as a receiver's explained,
    /// and nothing added where rustls's words say it all.
    #[test]
    fn a_refused_certificate_is_explained_by_its_cause() {
        let unknown = "could not connect: invalid peer certificate: UnknownIssuer";
        let hint = certificate_hint(unknown, false).unwrap_or_default();
        assert!(
            hint.contains("trusted with --webhook-ca-cert FILE"),
            "{hint}"
        );
        let hint = certificate_hint(unknown, true).unwrap_or_default();
        assert!(
            hint.contains("no CA in --webhook-ca-cert issued it"),
            "{hint}"
        );
        let ca = "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))";
        for has_roots in [false, true] {
            let hint = certificate_hint(ca, has_roots).unwrap_or_default();
            assert!(
                hint.contains("basicConstraints=critical,CA:FALSE"),
                "{hint}"
            );
        }
        for said in [
            "invalid peer certificate: certificate expired: verification time 1, but \
             certificate is not valid after 0",
            "invalid peer certificate: certificate not valid for name \"127.0.0.1\"",
            "could not connect: Connection refused",
        ] {
            assert_eq!(certificate_hint(said, true), None, "{said}");
            assert_eq!(certificate_hint(said, false), None, "{said}");
        }
    }

    /// A job of the partner of `key` to `url`.
    fn job(key: &str, url: &str, n: u64) -> Job {
        Job {
            id: DeliveryId(n),
            attempt: 0,
            partner: crate::webhooks::tests::partner_of(key),
            event: "link.created",
            body: bytes::Bytes::new(),
            callback_url: Some(url.to_owned()),
        }
    }

    fn key(n: usize) -> String {
        format!("m2m_test_{n:032x}")
    }

    /// Receivers take turns: a thousand partners' attempts to one receiver hold its quarter
    /// of the line, and another receiver's go next whatever came first; a receiver reached
    /// by another loopback name is the same receiver; past the line, a receiver with none
    /// in flight starts one from the reserve.
    #[test]
    fn receivers_take_turns_for_the_line_and_the_reserve() {
        let mut line = Line::default();
        // Receivers known to answer, so no lane bounds them.
        for port in (9001..9006).chain(9100..9100 + RESERVED_ATTEMPTS as u16) {
            line.heard_of(&Arc::from(format!("loopback:{port}")), true);
        }
        for n in 0..1_000 {
            line.push(job(&key(n), "http://127.0.0.1:9001/slow", n as u64));
            line.push(job(&key(n), "https://any.localhost:9001/slow", n as u64));
        }
        line.push(job(&key(5_000), "http://localhost:9002/ok", 5_000));
        let started = line.next();
        assert_eq!(started.len(), MAX_ATTEMPTS_PER_RECEIVER + 1);
        assert!(started.iter().any(|(_, job)| job.id == DeliveryId(5_000)));
        // Three more hanging receivers fill the line; the reserve takes one attempt of each
        // receiver with none in flight, up to its size.
        for port in 9003..9006 {
            for n in 0..MAX_ATTEMPTS_PER_RECEIVER as u64 + 1 {
                line.push(job(&key(6_000 + port), &format!("http://[::1]:{port}/"), n));
            }
        }
        let started = line.next();
        assert_eq!(line.in_flight, MAX_CONCURRENT_ATTEMPTS, "the line is full");
        assert_eq!(
            started.len(),
            MAX_CONCURRENT_ATTEMPTS - MAX_ATTEMPTS_PER_RECEIVER - 1
        );
        for port in 9100..9100 + RESERVED_ATTEMPTS as u16 {
            for n in 0..2 {
                let url = format!("http://localhost:{port}/");
                line.push(job(&key(7_000 + usize::from(port)), &url, n));
            }
        }
        let started = line.next();
        assert_eq!(
            started.len(),
            RESERVED_ATTEMPTS,
            "one each, up to the reserve"
        );
        assert!(line.next().is_empty());
        // A place of the reserve freed goes to a receiver with none in flight.
        let (place, partner) = (started[0].0.clone(), started[0].1.partner.slug.clone());
        line.done(&place, &partner, None);
        let next = line.next();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0, place);
        // A partner at its share stands in no other's way at a receiver they share: its
        // next attempt waits in its own queue, and another partner's goes at once.
        let mut line = Line::default();
        line.heard_of(&Arc::from("loopback:9301"), true);
        line.heard_of(&Arc::from("loopback:9302"), true);
        for n in 0..MAX_ATTEMPTS_PER_PARTNER as u64 {
            line.push(job(&key(1), "http://localhost:9301/hangs", n));
        }
        assert_eq!(line.next().len(), MAX_ATTEMPTS_PER_PARTNER);
        line.push(job(&key(1), "http://localhost:9302/quick", 100));
        line.push(job(&key(2), "http://localhost:9302/quick", 101));
        let started = line.next();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.id, DeliveryId(101));
        // Its attempt held goes once one of its own ends.
        let hangs = Place {
            receiver: Arc::from("loopback:9301"),
            lane: Lane::Answers,
        };
        line.done(&hangs, &started[0].1.partner.slug.clone(), None);
        assert!(
            line.next().is_empty(),
            "the other partner's ended, not the first's"
        );
        let first = crate::webhooks::tests::partner_of(&key(1)).slug.clone();
        line.done(&hangs, &first, None);
        let started = line.next();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.id, DeliveryId(100));

        // An attempt is counted, and sent, where its partner's URL points when its turn
        // comes: parked under another receiver's name while it waited, it joins the one it
        // would reach.
        let mut line = Line::default();
        line.heard_of(&Arc::from("loopback:9401"), true);
        let parked = crate::webhooks::tests::partner_of(&key(3));
        assert!(
            parked
                .set_webhook_url(Some("https://parked.example/".into()))
                .is_ok()
        );
        let mut waiting = job(&key(3), "", 200);
        waiting.callback_url = None;
        waiting.partner = parked.clone();
        for n in 0..MAX_ATTEMPTS_PER_RECEIVER as u64 {
            line.push(job(&key(4 + n as usize), "http://localhost:9401/hangs", n));
        }
        line.push(waiting);
        assert!(
            parked
                .set_webhook_url(Some("http://localhost:9401/hangs".into()))
                .is_ok()
        );
        let started = line.next();
        assert_eq!(
            started.len(),
            MAX_ATTEMPTS_PER_RECEIVER,
            "the receiver's share"
        );
        assert!(
            started
                .iter()
                .all(|(place, _)| &*place.receiver == "loopback:9401")
        );
        assert!(started.iter().all(|(_, job)| job.id != DeliveryId(200)));

        // Attempts of deliveries a reset forgot are let go while they wait, and free their
        // partner's share for the one it held.
        let mut line = Line::default();
        for n in 0..=MAX_ATTEMPTS_PER_PARTNER as u64 {
            line.push(job(&key(5), &format!("http://localhost:{}/", 9500 + n), n));
        }
        line.retain(|job| job.id == DeliveryId(MAX_ATTEMPTS_PER_PARTNER as u64));
        assert!(line.held.is_empty());
        let started = line.next();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.id, DeliveryId(MAX_ATTEMPTS_PER_PARTNER as u64));
        assert_eq!(line.waiting.len(), 0);

        // Each partner holds at most its share, whatever receivers it sends to.
        let mut line = Line::default();
        for port in 0..MAX_ATTEMPTS_PER_PARTNER as u16 * 2 {
            line.push(job(
                &key(1),
                &format!("http://localhost:{}/", 9200 + port),
                0,
            ));
        }
        assert_eq!(line.next().len(), MAX_ATTEMPTS_PER_PARTNER);
    }

    /// Receivers made up by the thousand (host names cost nothing with external webhooks)
    /// make one attempt each, a lane of them at a time, and those that ran out its time
    /// hold at most the slow lane: a receiver that has answered goes at once, however many
    /// of them hang, and a new one goes before the new ones that came before it.
    #[test]
    fn receivers_not_known_to_answer_hold_at_most_their_lanes() {
        let mut line = Line::default();
        let healthy: Arc<str> = Arc::from("healthy.example:443");
        line.heard_of(&healthy, true);
        for n in 0..1_000 {
            line.push(job(
                &key(n),
                &format!("https://h{n}.example/hook"),
                n as u64,
            ));
            line.push(job(
                &key(n),
                &format!("https://h{n}.example/hook"),
                n as u64,
            ));
        }
        let started = line.next();
        assert_eq!(started.len(), FIRST_ATTEMPTS, "one each, a lane of them");
        assert!(started.iter().all(|(place, _)| place.lane == Lane::First));
        assert!(line.next().is_empty(), "the lane is full");
        let answers = |line: &mut Line, n: u64, url: &str| {
            line.push(job(&key(5_000), url, n));
            let started = line.next();
            assert_eq!(started.len(), 1, "{url}");
            assert_eq!(started[0].1.id, DeliveryId(n));
            started[0].0.clone()
        };
        let first = answers(&mut line, 5_000, "https://healthy.example/hook");
        assert_eq!(first.lane, Lane::Answers);
        let partner = crate::webhooks::tests::partner_of(&key(5_000)).slug.clone();
        line.done(&first, &partner, Some(true));
        // The first lane's place freed goes to the newest receiver set aside for it.
        let newest = "https://newest.example/hook";
        line.push(job(&key(5_001), newest, 5_001));
        assert!(line.next().is_empty());
        let ran_out = |n: usize| Place {
            receiver: Arc::from(format!("h{n}.example:443")),
            lane: Lane::First,
        };
        let stuck = |n: usize| crate::webhooks::tests::partner_of(&key(n)).slug.clone();
        line.done(&ran_out(0), &stuck(0), Some(false));
        // (With the second attempt of the receiver that ran out its time, now slow.)
        let started = line.next();
        assert_eq!(started.len(), 2);
        assert!(started.iter().any(|(place, _)| {
            &*place.receiver == "newest.example:443" && place.lane == Lane::First
        }));
        // Receivers whose attempt ran out its time hold at most the slow lane.
        for n in 1..FIRST_ATTEMPTS {
            line.done(&ran_out(n), &stuck(n), Some(false));
        }
        let started = line.next();
        assert_eq!(line.slow_in_flight, SLOW_ATTEMPTS);
        assert!(line.firsts_in_flight <= FIRST_ATTEMPTS);
        // A receiver that answered once and then ran out its time is slow.
        line.done(&first, &partner, Some(false));
        line.push(job(&key(5_002), "https://healthy.example/hook", 5_002));
        assert!(
            line.next()
                .iter()
                .all(|(_, job)| job.id != DeliveryId(5_002)),
            "slow, and the slow lane is full"
        );
        // One that answers is back in any place at once.
        let slow_place = started
            .iter()
            .find(|(place, _)| place.lane == Lane::Slow)
            .map(|(place, job)| (place.clone(), job.partner.slug.clone()));
        let (place, owner) = slow_place.expect("a slow attempt");
        let url = format!("https://{}/hook", place.receiver.trim_end_matches(":443"));
        line.push(job(&key(6_000), &url, 6_000));
        line.done(&place, &owner, Some(true));
        let started = line.next();
        assert!(
            started
                .iter()
                .any(|(place, job)| job.id == DeliveryId(6_000) && place.lane == Lane::Answers),
            "{:?}",
            started.iter().map(|(place, _)| place).collect::<Vec<_>>()
        );
    }

    /// A stream of new receivers made up after a partner's does not hold the partner's back:
    /// the first lane's places go to the newest and to the one set aside longest by turns.
    /// And a reset's receivers set aside, left with nothing waiting, take no place.
    #[test]
    fn new_receivers_take_the_first_lane_newest_and_oldest_by_turns() {
        let mut line = Line::default();
        for n in 0..FIRST_ATTEMPTS {
            line.push(job(
                &key(n),
                &format!("https://h{n}.example/hook"),
                n as u64,
            ));
        }
        assert_eq!(line.next().len(), FIRST_ATTEMPTS);
        line.push(job(&key(5_000), "https://partner.example/hook", 5_000));
        assert!(line.next().is_empty());
        let mut waited = 0;
        for n in FIRST_ATTEMPTS..FIRST_ATTEMPTS * 3 {
            // Each freed place: one made-up receiver's attempt ran out its time, and two
            // more made-up receivers came.
            for more in [n * 2, n * 2 + 1] {
                line.push(job(
                    &key(more),
                    &format!("https://s{more}.example/hook"),
                    more as u64,
                ));
            }
            let ended = Place {
                receiver: Arc::from(format!("h{}.example:443", n - FIRST_ATTEMPTS)),
                lane: Lane::First,
            };
            let owner = crate::webhooks::tests::partner_of(&key(n - FIRST_ATTEMPTS))
                .slug
                .clone();
            line.done(&ended, &owner, Some(false));
            waited += 1;
            if line
                .next()
                .iter()
                .any(|(_, job)| job.id == DeliveryId(5_000))
            {
                break;
            }
        }
        assert!(
            waited <= 2,
            "the partner's receiver waited for {waited} places"
        );

        // A reset forgets what the receivers set aside waited with: they take no place.
        let mut line = Line::default();
        for n in 0..FIRST_ATTEMPTS * 2 {
            line.push(job(
                &key(n),
                &format!("https://r{n}.example/hook"),
                n as u64,
            ));
        }
        let started = line.next();
        assert_eq!(started.len(), FIRST_ATTEMPTS);
        line.push(job(&key(9_000), "https://kept.example/hook", 9_000));
        assert!(line.next().is_empty());
        line.retain(|job| job.id.0 < FIRST_ATTEMPTS as u64 || job.id == DeliveryId(9_000));
        assert_eq!(
            line.lane_aside.len(),
            1,
            "only the receiver still waiting is set aside"
        );
        let (place, job) = &started[0];
        line.done(place, &job.partner.slug.clone(), Some(false));
        let next = line.next();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1.id, DeliveryId(9_000));
    }

    /// A new receiver of a partner whose attempts have been answered before goes before
    /// made-up receivers new to the line, however many came before it and keep coming after
    /// it: the first place of the first lane that frees is its. By newest and oldest alone,
    /// it waited for the burst before it to drain, at half speed.
    #[test]
    fn a_known_partners_new_receiver_goes_before_a_burst_of_made_up_ones() {
        let mut line = Line::default();
        let partner = key(7_000);
        // The partner's attempt was answered in time at its old receiver.
        line.push(job(&partner, "https://old.example/hook", 7_000));
        let (place, answered) = line.next().pop().expect("started");
        line.done(&place, &answered.partner.slug.clone(), Some(true));
        // The first lane full, and a burst of made-up receivers set aside behind it.
        for n in 0..FIRST_ATTEMPTS * 4 {
            line.push(job(
                &key(n),
                &format!("https://b{n}.example/hook"),
                n as u64,
            ));
        }
        let in_flight = line.next();
        assert_eq!(in_flight.len(), FIRST_ATTEMPTS);
        assert!(line.next().is_empty());
        // The partner's new receiver, then a stream of more made-up ones.
        line.push(job(&partner, "https://new.example/hook", 7_001));
        for n in 0..8 {
            let more = 10_000 + n;
            line.push(job(
                &key(more),
                &format!("https://s{more}.example/hook"),
                more as u64,
            ));
        }
        assert!(line.next().is_empty(), "the lane is full");
        let (place, ended) = &in_flight[0];
        line.done(place, &ended.partner.slug.clone(), Some(false));
        let next = line.next();
        assert_eq!(
            next.iter().map(|(_, job)| job.id).collect::<Vec<_>>(),
            [DeliveryId(7_001)],
            "the freed place goes to the known partner's receiver"
        );
    }

    /// A partner's attempts let in and waiting at a receiver that hangs move to the
    /// receiver its URL names now when it changes, where they go at once.
    #[test]
    fn a_partners_attempts_waiting_follow_its_url() {
        let mut line = Line::default();
        line.heard_of(&Arc::from("loopback:9701"), true);
        line.heard_of(&Arc::from("loopback:9702"), true);
        let moving = crate::webhooks::tests::partner_of(&key(1));
        assert!(
            moving
                .set_webhook_url(Some("http://localhost:9701/hangs".into()))
                .is_ok()
        );
        for n in 0..MAX_ATTEMPTS_PER_RECEIVER as u64 {
            line.push(job(
                &key(100 + n as usize),
                "http://localhost:9701/hangs",
                n,
            ));
        }
        assert_eq!(line.next().len(), MAX_ATTEMPTS_PER_RECEIVER);
        for n in 0..4 {
            let mut waiting = job(&key(1), "", 100 + n);
            waiting.callback_url = None;
            waiting.partner = moving.clone();
            line.push(waiting);
        }
        assert!(line.next().is_empty(), "the receiver is at its cap");
        assert!(
            moving
                .set_webhook_url(Some("http://localhost:9702/ok".into()))
                .is_ok()
        );
        line.move_to_current_receivers();
        let started = line.next();
        assert_eq!(started.len(), 4);
        assert!(
            started
                .iter()
                .all(|(place, _)| &*place.receiver == "loopback:9702")
        );
    }

    /// An answer counts as in time within a second, or a quarter of a shorter timeout's:
    /// one just before the timeout is a slow receiver's.
    #[test]
    fn an_answer_is_in_time_within_a_second_or_a_quarter_of_the_timeout() {
        let ms = Duration::from_millis;
        assert!(in_time(ms(300), Duration::from_secs(30)));
        assert!(in_time(ms(1_000), Duration::from_secs(30)));
        assert!(!in_time(ms(1_001), Duration::from_secs(30)));
        assert!(!in_time(ms(29_000), Duration::from_secs(30)));
        assert!(in_time(ms(500), Duration::from_secs(2)));
        assert!(!in_time(ms(600), Duration::from_secs(2)));
    }

    /// An attempt that got no answer after as long as a late answer takes says its
    /// receiver is slow, as a timeout does: a connection held 1.9 s of a 2 s timeout and
    /// dropped. One refused at once says nothing.
    #[test]
    fn no_answer_after_as_long_as_a_late_one_is_a_slow_receivers() {
        let (ms, timeout) = (Duration::from_millis, Duration::from_secs(2));
        assert_eq!(heard(true, ms(100), timeout), Some(true));
        assert_eq!(heard(true, ms(1_900), timeout), Some(false));
        assert_eq!(heard(false, ms(1_900), timeout), Some(false));
        assert_eq!(heard(false, ms(2_000), timeout), Some(false));
        assert_eq!(heard(false, ms(3), timeout), None);
    }

    #[test]
    fn private_link_local_and_metadata_addresses_are_denied() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            // IPv4-compatible, 6to4, Teredo, local-use NAT64, IETF assignments, discard.
            "::10.0.0.1",
            "::169.254.169.254",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a9fe:a9fe",
            "192.0.0.170",
            "100::1",
            // SIIT's IPv4-translated form, benchmarking, documentation, site-local, and
            // 6to4's relay anycast.
            "::ffff:0:a00:1",
            "::ffff:0:a9fe:a9fe",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "3fff:fff::1",
            "fec0::1",
            "192.88.99.1",
        ] {
            assert!(is_denied(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "::ffff:0:808:808",
            "2001:db9::1",
            "2001:200::1",
            "3fff:1000::1",
            "192.88.100.1",
        ] {
            assert!(!is_denied(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn only_loopback_urls_count_as_this_machine() {
        for url in [
            "http://127.0.0.1:9000/hooks",
            "http://127.8.9.10/x",
            "http://[::1]:9000/x",
            "https://localhost/x",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://api.example.com/callbacks/m2m",
            "http://10.0.0.1/x",
            "http://192.168.1.1/x",
            "not a url",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
