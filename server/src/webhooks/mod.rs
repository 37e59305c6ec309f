//! Signed M2M webhooks: the delivery queue and its records.
//!
//! Facade: [`Webhooks`] (held by the application handle) — `enqueue` is a cheap push under a
//! short lock that wakes the engine; `deliveries`, `replay` and `forget_*` serve the control
//! API. [`events`] builds each documented event's payload. Internal: [`engine`] is the one
//! background task that makes attempts, and [`sign`] computes `X-M2M-Signature`.
//!
//! Rules [doc unless marked]: five attempts, each after the previous one by 0 s, 1 min,
//! 5 min, 30 min, 2 h *on the sandbox clock*; any 2xx delivers; otherwise, after the fifth,
//! the delivery is failed and replayable. Where to send and which secret signs are read when
//! each attempt is made, so a new webhook URL or a regenerated secret applies from the next
//! attempt on. A delivery with no URL to go to records a failed attempt saying so and keeps
//! its schedule [design], so setting the URL later still delivers it.

pub mod engine;
mod persisted;
mod queue;
pub mod sign;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use linkbox_contracts::sandbox::{
    DeliveryAttempt, DeliveryStatus, DeliveryView, WEBHOOK_RETRY_DELAYS_SECS,
};
use linkbox_contracts::timefmt;
use parking_lot::Mutex;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::persist::Sink;
use crate::store::ids;
use crate::store::m2m::Partner;

/// Finished deliveries beyond this many are forgotten, oldest first; pending ones never are.
const MAX_KEPT_DELIVERIES: usize = 10_000;
/// Finished deliveries are forgotten too, oldest first, while they hold more than this many
/// bytes ([`Delivery::weight`]: each event's payload, the link's `metadata` in it, and the
/// attempts kept, each with its URL and error). [design]
const MAX_KEPT_BYTES: usize = 256 * 1024 * 1024;
/// The bytes one partner's pending deliveries' bodies may hold at once; past it, as past
/// [`MAX_PENDING_PER_TENANT`], a new event's delivery fails at once. [design]
pub const MAX_PENDING_BYTES_PER_TENANT: usize = 64 * 1024 * 1024;
/// Attempts one delivery keeps: ten replays' worth of full schedules. Earlier ones are
/// counted, not kept, so a delivery replayed without end stays the same size. [design]
pub const MAX_KEPT_ATTEMPTS: usize = 50;
/// The bytes one delivery's kept attempts may hold ([`Attempt::weight`]); past it the oldest
/// go, as past [`MAX_KEPT_ATTEMPTS`], the latest always kept. Fifty attempts to a URL of
/// usual length fit; each attempt keeps the URL it was sent to and its error, which may
/// quote the URL, so a partner with a 2 KB webhook URL keeps its latest few, and no
/// delivery, pending or finished, holds more than this in attempts. [design]
pub const MAX_KEPT_ATTEMPT_BYTES: usize = 16 * 1024;
/// Deliveries one partner may have pending at once; a further event's delivery is recorded
/// as failed at once (replayable), so a dead receiver cannot grow the queue without bound.
/// [design]
pub const MAX_PENDING_PER_TENANT: usize = 1_000;
/// Deliveries all partners together may have pending, and their bodies' bytes: keys made
/// up by the dozen, each with a receiver down, would otherwise hold each partner's cap
/// many times over. Within the last eighth of either, only a partner holding less than
/// its share (the cap over the partners with deliveries pending) may add one; a delivery
/// past them fails at once, as past a partner's own caps. [design]
pub const MAX_PENDING: usize = 20_000;
/// See [`MAX_PENDING`].
pub const MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;

/// Why one more delivery of partner `slug`, its body `bytes` long, may not be pending, if
/// it may not: past the partner's caps ([`MAX_PENDING_PER_TENANT`],
/// [`MAX_PENDING_BYTES_PER_TENANT`]) or within the last of all partners' together
/// ([`MAX_PENDING`]) while it holds its share. Asked of a new event's delivery and of a
/// replay alike: a delivery is sent again only where a new one could be.
fn no_room(deliveries: &queue::Queue, slug: &str, bytes: usize) -> Option<String> {
    let pending = deliveries.pending_of(slug);
    let full = if pending.count >= MAX_PENDING_PER_TENANT {
        Some(format!("{MAX_PENDING_PER_TENANT} deliveries"))
    } else if pending.bytes + bytes > MAX_PENDING_BYTES_PER_TENANT {
        Some(format!(
            "deliveries of {} MiB",
            MAX_PENDING_BYTES_PER_TENANT / (1024 * 1024)
        ))
    } else {
        None
    };
    if let Some(full) = full {
        return Some(format!(
            "not sent: this partner already has {full} pending (its receiver is slow or \
             down); replay this one once they drain"
        ));
    }
    let cap = queue::Pending {
        count: MAX_PENDING,
        bytes: MAX_PENDING_BYTES,
    };
    deliveries.pending_room(slug, bytes, cap).map(|_| {
        format!(
            "not sent: the sandbox holds nearly all the pending deliveries it keeps for its \
             partners together ({MAX_PENDING} deliveries, {} MiB), and this partner holds its \
             share of them; replay this one once they drain",
            MAX_PENDING_BYTES >> 20
        )
    })
}

/// The delay before attempt number `step` (0-based), or `None` when the schedule is over.
pub fn delay_before_attempt(step: usize) -> Option<Duration> {
    WEBHOOK_RETRY_DELAYS_SECS
        .get(step)
        .map(|secs| Duration::seconds(*secs))
}

/// An event's `data`: serialized into the delivery's body, and naming the link the event is
/// about, which orders that link's deliveries (so the body is not parsed again for it).
pub trait EventData: Serialize {
    /// `data.linkId`.
    fn link_id(&self) -> Option<&str>;

    /// The payload's `timestamp` as text, when the data already holds the event's instant
    /// formatted (a created link's `createdAt`); otherwise it is formatted from the `now`
    /// given to [`Webhooks::enqueue`] (about 800 instructions a timestamp).
    fn timestamp(&self) -> Option<&str> {
        None
    }
}

/// Free-form `data`: its `linkId` field, when it has one.
impl EventData for serde_json::Value {
    fn link_id(&self) -> Option<&str> {
        self.get("linkId").and_then(serde_json::Value::as_str)
    }
}

/// Cheap to clone: the queue and the records are shared.
#[derive(Clone, Default)]
pub struct Webhooks {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    deliveries: Mutex<queue::Queue>,
    /// Woken on every enqueue and replay.
    wake: Notify,
    /// The queue position of the next delivery (its order in the state file).
    next_seq: AtomicU64,
    /// How many times a reset has forgotten deliveries: the engine then lets go of the
    /// attempts it holds of deliveries no longer kept ([`Webhooks::forgets`]).
    forgets: AtomicU64,
    sink: Sink,
}

/// A delivery's id, `whd_` and 12 hex digits, kept as the 48 bits the digits spell: a
/// number to hash and compare, and no string to allocate for each delivery and free when the
/// bound drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId(u64);

impl DeliveryId {
    /// A fresh random one.
    fn fresh() -> DeliveryId {
        DeliveryId(ids::hex48())
    }

    /// `whd_` and 12 lowercase hex digits, as [`DeliveryId::text`] writes them; `None` for
    /// any other text, which names no delivery.
    pub fn parse(text: &str) -> Option<DeliveryId> {
        text.strip_prefix("whd_")
            .and_then(ids::parse_hex48)
            .map(DeliveryId)
    }

    /// The id as the API shows it, written into a string of its size (`format!` took
    /// about 700 instructions for it).
    pub fn text(self) -> String {
        let mut id = String::with_capacity(DELIVERY_ID_LEN);
        id.push_str("whd_");
        ids::push_hex48(&mut id, self.0);
        id
    }
}

/// `whd_` and 12 hex digits.
const DELIVERY_ID_LEN: usize = 16;

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text())
    }
}

struct Delivery {
    id: DeliveryId,
    seq: u64,
    partner: Arc<Partner>,
    event: &'static str,
    /// The link the event is about (`data.linkId`), which orders its deliveries. Kept
    /// while the delivery may be attempted; a delivery failed at its enqueue, with nowhere
    /// to go, has none, and a replay reads it from the body ([`link_of`]): most deliveries
    /// of a sandbox without a webhook URL are never attempted, and each would hold one
    /// more allocation until the bound drops it.
    link: Option<Arc<str>>,
    /// The exact body, fixed at the event: retries resend the same bytes. In a buffer of
    /// its size: ten thousand finished deliveries are kept.
    body: Bytes,
    /// Whether `body` is known to be one JSON object (every body linkbox writes is), which
    /// its row then holds as itself.
    body_is_object: bool,
    /// The link's `callbackUrl`; when absent the partner's URL is read at each attempt.
    callback_url: Option<String>,
    status: DeliveryStatus,
    /// The latest attempts, at most [`MAX_KEPT_ATTEMPTS`].
    attempts: Vec<Attempt>,
    /// Attempts made before those kept in `attempts`: a delivery replayed again and again
    /// keeps only its latest ones, but still counts them all.
    earlier_attempts: usize,
    /// Index into the retry schedule of the next attempt.
    step: usize,
    next_attempt_at: Option<OffsetDateTime>,
    in_flight: bool,
    created_at: OffsetDateTime,
}

impl Delivery {
    /// How many attempts the delivery has had, kept or not: the next one's number, from 0.
    fn attempts_made(&self) -> usize {
        self.earlier_attempts + self.attempts.len()
    }

    /// The bytes the delivery holds: its body, and each attempt kept with the texts it owns
    /// (at most [`MAX_KEPT_ATTEMPT_BYTES`] of them). What a finished delivery counts for in
    /// the queue's bytes; a pending one counts its body, what it was admitted by.
    fn weight(&self) -> usize {
        let attempts: usize = self.attempts.iter().map(Attempt::weight).sum();
        self.body.len() + attempts
    }

    /// Records `attempt`, dropping the oldest kept ones past [`MAX_KEPT_ATTEMPTS`] or
    /// [`MAX_KEPT_ATTEMPT_BYTES`].
    fn push_attempt(&mut self, attempt: Attempt) {
        self.attempts.push(attempt);
        let mut dropped = self.attempts.len().saturating_sub(MAX_KEPT_ATTEMPTS);
        let mut bytes: usize = self.attempts[dropped..].iter().map(Attempt::weight).sum();
        while bytes > MAX_KEPT_ATTEMPT_BYTES && dropped + 1 < self.attempts.len() {
            bytes -= self.attempts[dropped].weight();
            dropped += 1;
        }
        if dropped > 0 {
            self.attempts.drain(..dropped);
            self.earlier_attempts += dropped;
        }
    }

    /// Fails a new delivery at once with one unsent attempt saying why; it stays
    /// replayable.
    fn refuse(&mut self, now: OffsetDateTime, error: Cow<'static, str>) {
        self.status = DeliveryStatus::Failed;
        self.next_attempt_at = None;
        self.step = 1;
        self.push_attempt(Attempt {
            at: now,
            url: None,
            status_code: None,
            error: Some(error),
            duration_ms: 0,
        });
    }
}

/// The outcome of one attempt, as the engine reports it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: OffsetDateTime,
    pub url: Option<String>,
    pub status_code: Option<u16>,
    /// Why it failed; a fixed text (most often [`NO_URL`], on every create while a partner
    /// has no webhook URL) is kept without a copy.
    pub error: Option<Cow<'static, str>>,
    pub duration_ms: u64,
}

impl Attempt {
    /// What it holds: itself, its URL, and its error unless a fixed text.
    fn weight(&self) -> usize {
        let error = match &self.error {
            Some(Cow::Owned(error)) => error.len(),
            Some(Cow::Borrowed(_)) | None => 0,
        };
        std::mem::size_of::<Attempt>() + self.url.as_ref().map_or(0, String::len) + error
    }

    fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// One attempt the engine is to make now.
pub struct Job {
    pub id: DeliveryId,
    /// How many attempts the delivery has had: this one's number, from 0.
    pub attempt: usize,
    pub partner: Arc<Partner>,
    pub event: &'static str,
    pub body: Bytes,
    pub callback_url: Option<String>,
}

/// Whose deliveries a caller sees.
#[derive(Clone, Copy)]
pub enum Visible<'a> {
    All,
    Tenant(&'a str),
}

impl Visible<'_> {
    fn sees(&self, delivery: &Delivery) -> bool {
        match self {
            Visible::All => true,
            Visible::Tenant(slug) => &*delivery.partner.slug == *slug,
        }
    }
}

/// Why a replay was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("Delivery not found")]
    NotFound,
    #[error(
        "The delivery is being attempted, or is waiting for its place among the attempts in \
         flight; try again when it has finished"
    )]
    InFlight,
}

impl Webhooks {
    /// In memory.
    pub fn new() -> Webhooks {
        Webhooks::default()
    }

    /// Writing every change through `sink`.
    pub fn with_sink(sink: Sink) -> Webhooks {
        Webhooks {
            shared: Arc::new(Shared {
                sink,
                ..Shared::default()
            }),
        }
    }

    /// Queues `event` for `partner`, first attempt due at once; returns the delivery id.
    /// Never waits on the network: the engine makes the attempt.
    pub fn enqueue(
        &self,
        partner: &Arc<Partner>,
        event: &'static str,
        data: impl EventData,
        callback_url: Option<String>,
        now: OffsetDateTime,
    ) -> DeliveryId {
        let payload = linkbox_contracts::m2m::WebhookPayload {
            event: event.to_owned(),
            timestamp: data
                .timestamp()
                .map_or_else(|| timefmt::millis(now), str::to_owned),
            data,
        };
        let body = linkbox_contracts::json::to_vec(&payload).unwrap_or_else(|error| {
            tracing::error!(%error, event, "webhook payload did not serialize");
            b"{}".to_vec()
        });
        let mut id = DeliveryId::fresh();
        // With nowhere to send it, the delivery fails at once instead of waiting out a
        // retry schedule: pending deliveries are never dropped, and a sandbox under load
        // without any webhook URL would otherwise hold every one of them. It stays
        // replayable once a URL is set.
        let nowhere = callback_url.is_none() && partner.webhook_url().is_none();
        let link = if nowhere {
            None
        } else {
            payload.data.link_id().map(Into::into)
        };
        let mut delivery = Delivery {
            id,
            // Assigned under the queue's lock below, so the queue stays in seq order.
            seq: 0,
            partner: partner.clone(),
            event,
            link,
            body: Bytes::copy_from_slice(&body),
            body_is_object: true,
            callback_url,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            earlier_attempts: 0,
            step: 0,
            next_attempt_at: Some(now),
            in_flight: false,
            created_at: now,
        };
        if nowhere {
            delivery.refuse(now, NO_URL.into());
        }
        let mut nowhere = nowhere;
        {
            let mut deliveries = self.shared.deliveries.lock();
            // Unique among the deliveries kept (a bounded list).
            while deliveries.contains(id) {
                id = DeliveryId::fresh();
            }
            delivery.id = id;
            // After every delivery kept, whatever their seqs came from (rows read back from
            // a shared database keep their own): a seq is the engine's key for a delivery.
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            delivery.seq = deliveries.last_seq().map_or(seq, |last| seq.max(last + 1));
            self.shared
                .next_seq
                .fetch_max(delivery.seq + 1, Ordering::Relaxed);
            if !nowhere
                && let Some(reason) = no_room(&deliveries, &partner.slug, delivery.body.len())
            {
                nowhere = true;
                delivery.refuse(now, reason.into());
            }
            deliveries.push(delivery);
            let trimmed = deliveries.trim();
            // One record for the new row and the rows it pushed out: one turn of the
            // file's queue per create, not two. The new delivery is the newest kept unless
            // the trim took it, so it is not searched for.
            self.shared.sink.record(|changes| {
                if let Some(delivery) = deliveries.newest().filter(|newest| newest.id == id) {
                    persisted::put(changes, delivery);
                }
                persisted::delete(changes, &trimmed);
            });
        }
        if nowhere {
            return id;
        }
        self.shared.wake.notify_one();
        id
    }

    /// Marks every delivery due at `now` as in flight and hands it to the engine, with when
    /// the earliest delivery left waiting falls due, under one hold of the queue's lock.
    ///
    /// Deliveries about one link go in the order they were created: a pending delivery
    /// waits while an earlier one of its link is in flight or not yet tried once. An earlier
    /// one that failed and waits for its retry no longer holds it: later events are not
    /// held for hours behind a receiver's transient failure, and the retry keeps its own
    /// schedule. Both answers read the queue's indexes of what is due and what holds a link
    /// back (`queue::Queue::due`), not every pending delivery: with receivers down
    /// thousands are pending, and a walk of them on each wake held up every create meanwhile.
    pub fn take_due_and_next(&self, now: OffsetDateTime) -> (Vec<Job>, Option<OffsetDateTime>) {
        let mut deliveries = self.shared.deliveries.lock();
        let mut jobs = Vec::new();
        deliveries.due(now, |delivery| {
            jobs.push(Job {
                id: delivery.id,
                attempt: delivery.attempts_made(),
                partner: delivery.partner.clone(),
                event: delivery.event,
                body: delivery.body.clone(),
                callback_url: delivery.callback_url.clone(),
            });
        });
        (jobs, deliveries.next_due())
    }

    /// The jobs of [`Webhooks::take_due_and_next`] alone.
    #[cfg(test)]
    fn take_due(&self, now: OffsetDateTime) -> Vec<Job> {
        self.take_due_and_next(now).0
    }

    /// When the earliest waiting delivery falls due.
    #[cfg(test)]
    fn next_due(&self) -> Option<OffsetDateTime> {
        self.shared.deliveries.lock().next_due()
    }

    /// Whether attempt number `attempt` of delivery `id` is still to be made: the delivery is
    /// kept (no reset forgot it while the attempt waited for its place) and pending, with
    /// no other attempt made meanwhile.
    pub fn still_due(&self, id: DeliveryId, attempt: usize) -> bool {
        self.shared
            .deliveries
            .lock()
            .get(id)
            .is_some_and(|delivery| {
                delivery.status == DeliveryStatus::Pending && delivery.attempts_made() == attempt
            })
    }

    /// Records an attempt and schedules the next one, or settles the delivery.
    /// Puts a delivery taken for attempt number `attempt` back, due at `at`, without an
    /// attempt: another replica holds the claim on it. Changes nothing kept. When this
    /// copy has meanwhile read back that replica's outcome (the attempt made, the delivery
    /// settled or its retry scheduled), the outcome stands and only the hold is let go: the
    /// claim's end is no time of the delivery's own.
    pub fn defer(&self, id: DeliveryId, attempt: usize, at: OffsetDateTime) {
        self.shared.deliveries.lock().update(id, |delivery| {
            delivery.in_flight = false;
            if delivery.status == DeliveryStatus::Pending && delivery.attempts_made() == attempt {
                delivery.next_attempt_at = Some(at);
            }
        });
        self.shared.wake.notify_one();
    }

    /// The shared database, in a sandbox shared by replicas.
    pub fn database(&self) -> Option<&crate::persist::shared::Database> {
        self.shared.sink.database()
    }

    pub fn record_attempt(&self, id: DeliveryId, attempt: Attempt) {
        self.record(id, attempt, true);
    }

    /// Records an attempt that could not be sent at all (no URL, or a URL off this machine
    /// with external webhooks off): no retry would fare better, so the delivery is failed at
    /// once, and stays replayable.
    pub fn record_unsendable(&self, id: DeliveryId, attempt: Attempt) {
        self.record(id, attempt, false);
    }

    fn record(&self, id: DeliveryId, attempt: Attempt, retry: bool) {
        let mut deliveries = self.shared.deliveries.lock();
        // Gone when a reset forgot it while the attempt was in flight.
        deliveries.update(id, |delivery| self.settle(delivery, attempt, retry));
        self.trim(&mut deliveries);
    }

    /// Drops the finished deliveries past the caps ([`queue::Queue::trim`]) and forgets them
    /// in the state file: after every change that finishes a delivery or adds to what a
    /// finished one holds (an attempt, a replay refused), not only on a new event, so the
    /// caps hold while no partner makes one.
    fn trim(&self, deliveries: &mut queue::Queue) {
        let trimmed = deliveries.trim();
        if !trimmed.is_empty() {
            self.shared
                .sink
                .record(|changes| persisted::delete(changes, &trimmed));
        }
    }

    /// The next attempt is due its delay after this one was *due*, not after it was made:
    /// on a sandbox clock moved past several retries at once, each retry that fell due
    /// meanwhile is made at once, one after another, and a delivery whose receiver stays
    /// down is failed once the whole schedule (2 h 36 min) lies behind the clock, as it
    /// would have been had the clock run.
    fn settle(&self, delivery: &mut Delivery, attempt: Attempt, retry: bool) {
        delivery.in_flight = false;
        delivery.step += 1;
        // Still the attempt's due time while it was in flight; the attempt's own instant
        // for one made without a schedule.
        let at = delivery
            .next_attempt_at
            .map_or(attempt.at, |due| due.min(attempt.at));
        let succeeded = attempt.succeeded();
        delivery.push_attempt(attempt);
        if succeeded {
            delivery.status = DeliveryStatus::Delivered;
            delivery.next_attempt_at = None;
        } else if let Some(delay) = delay_before_attempt(delivery.step).filter(|_| retry) {
            delivery.next_attempt_at = Some(at + delay);
        } else {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
        }
        self.shared
            .sink
            .record(|changes| persisted::put(changes, delivery));
    }

    /// Sends a delivery again, whatever its status, with a fresh schedule; its earlier
    /// attempts stay on record. Where a new event's delivery would find no room (the
    /// partner's pending caps, or all partners'), it gets a failed attempt saying so.
    pub fn replay(
        &self,
        id: &str,
        visible: Visible<'_>,
        now: OffsetDateTime,
    ) -> Result<DeliveryView, ReplayError> {
        let id = DeliveryId::parse(id).ok_or(ReplayError::NotFound)?;
        let view = {
            let mut deliveries = self.shared.deliveries.lock();
            match deliveries.get(id) {
                Some(delivery) if visible.sees(delivery) => {
                    if delivery.in_flight {
                        return Err(ReplayError::InFlight);
                    }
                }
                _ => return Err(ReplayError::NotFound),
            }
            // A finished delivery sent again is one more pending: held to the caps a new
            // event's is, or any key could replay its finished ones past them and leave
            // every other partner's events no room while its receiver stays down.
            let refused = deliveries.get(id).and_then(|delivery| {
                (delivery.status != DeliveryStatus::Pending)
                    .then(|| no_room(&deliveries, &delivery.partner.slug, delivery.body.len()))
                    .flatten()
            });
            let view = deliveries
                .update(id, |delivery| {
                    if let Some(reason) = refused {
                        delivery.refuse(now, reason.into());
                    } else {
                        delivery.status = DeliveryStatus::Pending;
                        delivery.step = 0;
                        delivery.next_attempt_at = Some(now);
                        if delivery.link.is_none() {
                            delivery.link = link_of(&delivery.body);
                        }
                    }
                    self.shared
                        .sink
                        .record(|changes| persisted::put(changes, delivery));
                    Unresolved::of(delivery)
                })
                .ok_or(ReplayError::NotFound)?;
            self.trim(&mut deliveries);
            view
        };
        self.shared.wake.notify_one();
        Ok(view.resolve())
    }

    /// The deliveries `visible` sees, newest first.
    pub fn deliveries(&self, visible: Visible<'_>) -> Vec<DeliveryView> {
        let unresolved: Vec<Unresolved> = self
            .shared
            .deliveries
            .lock()
            .iter()
            .rev()
            .filter(|delivery| visible.sees(delivery))
            .map(Unresolved::of)
            .collect();
        // Partner locks are taken only after the queue's is released.
        unresolved.into_iter().map(Unresolved::resolve).collect()
    }

    /// One page of the deliveries `visible` sees, newest first: at most `limit`, older than
    /// delivery `before` when given. Returns the page, how many `visible` sees in all, and
    /// whether older ones remain. `None` when `before` names no delivery the caller sees.
    pub fn deliveries_page(
        &self,
        visible: Visible<'_>,
        before: Option<&str>,
        limit: usize,
    ) -> Option<(Vec<DeliveryView>, usize, bool)> {
        let (unresolved, total, more) = {
            let deliveries = self.shared.deliveries.lock();
            let seen = deliveries
                .iter()
                .rev()
                .filter(|delivery| visible.sees(delivery));
            let total = seen.clone().count();
            let mut older = seen.peekable();
            if let Some(before) = before {
                let before = DeliveryId::parse(before)?;
                older.by_ref().find(|delivery| delivery.id == before)?;
            }
            let page: Vec<Unresolved> = older.by_ref().take(limit).map(Unresolved::of).collect();
            (page, total, older.peek().is_some())
        };
        // Partner locks are taken only after the queue's is released.
        let page = unresolved.into_iter().map(Unresolved::resolve).collect();
        Some((page, total, more))
    }

    /// Forgets one tenant's deliveries (its reset).
    pub fn forget_tenant(&self, slug: &str) {
        let mut deliveries = self.shared.deliveries.lock();
        let mut forgot = false;
        deliveries.retain(|delivery| {
            let theirs = &*delivery.partner.slug == slug;
            forgot |= theirs;
            !theirs
        });
        // None of its deliveries kept: none to forget in a state file or a shared database.
        if forgot {
            self.shared
                .sink
                .record(|changes| persisted::forget_tenant(changes, slug));
            self.forgot();
        }
    }

    /// Forgets every delivery (admin reset).
    pub fn forget_all(&self) {
        let mut deliveries = self.shared.deliveries.lock();
        deliveries.clear();
        self.shared.sink.record(persisted::forget_all);
        self.forgot();
    }

    /// Tells the engine deliveries were forgotten.
    fn forgot(&self) {
        self.shared.forgets.fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }

    /// How many times a reset has forgotten deliveries: when this moved, the attempts the
    /// engine holds of deliveries no longer kept are let go ([`Webhooks::still_due`]), so
    /// keys that queue a delivery to a receiver that hangs and reset, over and over, leave
    /// no attempts behind past what the pending caps bound.
    pub fn forgets(&self) -> u64 {
        self.shared.forgets.load(Ordering::Relaxed)
    }

    /// Completes when something was enqueued or replayed since the last call.
    pub async fn woken(&self) {
        self.shared.wake.notified().await;
    }
}

/// The `data.linkId` of a webhook body.
fn link_of(body: &[u8]) -> Option<Arc<str>> {
    #[derive(serde::Deserialize)]
    struct Payload {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        link_id: String,
    }
    serde_json::from_slice::<Payload>(body)
        .ok()
        .map(|payload| payload.data.link_id.into())
}

/// The error recorded when a delivery has neither a `callbackUrl` nor a partner URL.
pub const NO_URL: &str = "no webhook URL: the link has no callbackUrl and the partner has no \
     webhook URL (set one with PUT /_sandbox/m2m/webhook-config, then replay)";

/// A delivery copied out under the queue's lock, its URL still to read from the partner and
/// its body still to parse: the lock is held by every create, and a page of large bodies
/// would take long to parse.
struct Unresolved {
    view: DeliveryView,
    partner: Arc<Partner>,
    body: Bytes,
}

impl Unresolved {
    fn of(delivery: &Delivery) -> Unresolved {
        Unresolved {
            partner: delivery.partner.clone(),
            body: delivery.body.clone(),
            view: DeliveryView {
                id: delivery.id.text(),
                event: delivery.event.to_owned(),
                url: delivery.callback_url.clone(),
                status: delivery.status,
                attempts: delivery
                    .attempts
                    .iter()
                    .map(|attempt| DeliveryAttempt {
                        at: timefmt::millis(attempt.at),
                        url: attempt.url.clone(),
                        status_code: attempt.status_code,
                        error: attempt.error.as_deref().map(str::to_owned),
                        duration_ms: attempt.duration_ms,
                    })
                    .collect(),
                next_attempt_at: delivery.next_attempt_at.map(timefmt::millis),
                created_at: timefmt::millis(delivery.created_at),
                tenant: delivery.partner.slug.to_string(),
                payload: serde_json::Value::Null,
            },
        }
    }

    fn resolve(mut self) -> DeliveryView {
        if self.view.url.is_none() {
            self.view.url = self.partner.webhook_url();
        }
        self.view.payload = serde_json::from_slice(&self.body).unwrap_or_default();
        self.view
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    impl EventData for () {
        fn link_id(&self) -> Option<&str> {
            None
        }
    }
    use crate::config::{Options, Settings};
    use crate::store::m2m::Partners;
    use time::macros::datetime;

    pub(super) const NOW: OffsetDateTime = datetime!(2026-02-10 12:00 UTC);

    pub(super) fn partner() -> Arc<Partner> {
        partner_of("m2m_test_0123456789abcdefghijklmnopqrstuv")
    }

    /// A second partner, not [`partner`].
    pub(super) fn other_partner() -> Arc<Partner> {
        partner_of("m2m_test_zyxwvutsrqponmlkjihgfedcba987654")
    }

    pub(super) fn partner_of(key: &str) -> Arc<Partner> {
        let settings = Settings::resolve(Options::default(), ([127, 0, 0, 1], 1).into());
        Partners::new(&settings)
            .authenticate(key)
            .expect("open mode")
    }

    /// A receiver's URL on a closed loopback port.
    pub(super) fn url() -> Option<String> {
        Some("http://127.0.0.1:9/hooks".to_owned())
    }

    /// Event data about `link`.
    pub(super) fn about(link: &str) -> serde_json::Value {
        serde_json::json!({ "linkId": link })
    }

    /// The ids of `jobs`, in order.
    fn ids(jobs: Vec<Job>) -> Vec<DeliveryId> {
        jobs.into_iter().map(|job| job.id).collect()
    }

    fn failed_at(at: OffsetDateTime) -> Attempt {
        Attempt {
            at,
            url: None,
            status_code: Some(500),
            error: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn delivery_ids_are_whd_and_twelve_hex_digits_each_its_own() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| DeliveryId::fresh().text()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), DELIVERY_ID_LEN);
            let digits = id.strip_prefix("whd_").expect("whd_ prefix");
            assert_eq!(ids::parse_hex48(digits).map(|_| ()), Some(()), "{id}");
            let parsed = DeliveryId::parse(id).expect("reads back");
            assert_eq!(&parsed.text(), id);
            assert_eq!(&parsed.to_string(), id);
        }
        for text in [
            "whd_ABCDEF012345",
            "whd_00000000000",
            "whd_0000000000000",
            "whx_000000000000",
            "000000000000",
            "whd_00000000000g",
            "",
        ] {
            assert_eq!(DeliveryId::parse(text), None, "{text}");
        }
    }

    /// A delivery that failed at its enqueue (nowhere to go) keeps no link; replayed, it
    /// orders its link's deliveries again, as one that was never refused would.
    #[test]
    fn a_delivery_refused_at_its_enqueue_orders_its_link_once_replayed() {
        let webhooks = Webhooks::new();
        let partner = partner();
        let refused = webhooks.enqueue(&partner, "link.created", about("link_a"), None, NOW);
        let after = webhooks.enqueue(&partner, "link.opened", about("link_a"), url(), NOW);
        let other = webhooks.enqueue(&partner, "link.opened", about("link_b"), url(), NOW);
        webhooks
            .replay(&refused.text(), Visible::All, NOW)
            .expect("replayed");
        assert_eq!(
            ids(webhooks.take_due(NOW)),
            [refused, other],
            "the later delivery of link_a waits for the replayed one"
        );
        webhooks.record_unsendable(refused, failed_at(NOW));
        assert_eq!(ids(webhooks.take_due(NOW)), [after]);
    }

    /// A delivery replayed without end keeps its latest attempts only, but its attempts
    /// go on being numbered from all it has had (the number a replica claims an attempt by).
    #[test]
    fn a_delivery_replayed_again_and_again_keeps_its_latest_attempts() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", about("link_a"), None, NOW);
        let replays = MAX_KEPT_ATTEMPTS + 20;
        for n in 0..replays {
            let at = NOW + Duration::seconds(n as i64 + 1);
            webhooks
                .replay(&id.text(), Visible::All, at)
                .expect("replayed");
            let jobs = webhooks.take_due(at);
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].attempt, n + 1, "numbered from every attempt made");
            webhooks.record_unsendable(id, failed_at(at));
        }
        let view = &webhooks.deliveries(Visible::All)[0];
        assert_eq!(view.attempts.len(), MAX_KEPT_ATTEMPTS);
        let last = NOW + Duration::seconds(replays as i64);
        assert_eq!(
            view.attempts[MAX_KEPT_ATTEMPTS - 1].at,
            timefmt::millis(last)
        );
        let deliveries = webhooks.shared.deliveries.lock();
        let delivery = deliveries.get(id).expect("kept");
        assert_eq!(delivery.attempts_made(), replays + 1);
        assert_eq!(delivery.earlier_attempts, replays + 1 - MAX_KEPT_ATTEMPTS);
    }

    #[test]
    fn a_delivery_with_nowhere_to_go_fails_at_once_without_waking_the_engine() {
        let webhooks = Webhooks::new();
        webhooks.enqueue(&partner(), "link.created", (), None, NOW);
        let view = &webhooks.deliveries(Visible::All)[0];
        assert_eq!(view.status, DeliveryStatus::Failed);
        assert_eq!(view.attempts.len(), 1);
        assert_eq!(view.attempts[0].error.as_deref(), Some(NO_URL));
        assert!(webhooks.take_due(NOW).is_empty());
        assert_eq!(webhooks.next_due(), None);
    }

    #[test]
    fn finished_deliveries_beyond_the_bound_are_dropped_oldest_first() {
        let webhooks = Webhooks::new();
        for _ in 0..MAX_KEPT_DELIVERIES + 5 {
            webhooks.enqueue(&partner(), "link.created", (), None, NOW);
        }
        assert_eq!(webhooks.deliveries(Visible::All).len(), MAX_KEPT_DELIVERIES);
    }

    /// Past the bound, a partner flooding the sandbox with events loses its own oldest
    /// deliveries, not those of a partner that holds fewer.
    #[test]
    fn one_partners_flood_drops_its_own_oldest_deliveries_not_anothers() {
        let webhooks = Webhooks::new();
        let (busy, quiet) = (partner(), other_partner());
        let ids_of = |partner: &Arc<Partner>| -> Vec<String> {
            let mut ids: Vec<String> = webhooks
                .deliveries(Visible::Tenant(&partner.slug))
                .into_iter()
                .map(|view| view.id)
                .collect();
            ids.sort();
            ids
        };
        let mut quiets: Vec<String> = (0..3)
            .map(|_| {
                webhooks
                    .enqueue(&quiet, "link.created", (), None, NOW)
                    .text()
            })
            .collect();
        quiets.sort();
        let first_busy = webhooks
            .enqueue(&busy, "link.created", (), None, NOW)
            .text();
        for _ in 0..MAX_KEPT_DELIVERIES + queue::TRIM_BATCH {
            webhooks.enqueue(&busy, "link.created", (), None, NOW);
        }
        assert_eq!(ids_of(&quiet), quiets);
        assert!(!ids_of(&busy).contains(&first_busy));
        let kept = webhooks.deliveries(Visible::All).len();
        assert!(
            (MAX_KEPT_DELIVERIES..MAX_KEPT_DELIVERIES + queue::TRIM_BATCH).contains(&kept),
            "{kept} kept"
        );
    }

    /// A partner whose receiver is down holds at most 64 MiB of pending bodies, however
    /// few deliveries that is; another partner's deliveries still go out.
    #[test]
    fn a_partners_pending_bodies_are_capped_in_bytes_too() {
        let webhooks = Webhooks::new();
        let (busy, quiet) = (partner(), other_partner());
        let big = serde_json::json!({"metadata": "x".repeat(5 * 1024 * 1024)});
        for _ in 0..15 {
            webhooks.enqueue(&busy, "link.created", big.clone(), url(), NOW);
        }
        webhooks.enqueue(&quiet, "link.created", big, url(), NOW);
        let views = webhooks.deliveries(Visible::All);
        let count = |partner: &Arc<Partner>, status| {
            views
                .iter()
                .filter(|view| view.tenant == *partner.slug && view.status == status)
                .count()
        };
        // 12 bodies of 5 MiB and a little fit in 64 MiB; the 13th does not.
        assert_eq!(count(&busy, DeliveryStatus::Pending), 12);
        assert_eq!(count(&busy, DeliveryStatus::Failed), 3);
        assert_eq!(count(&quiet, DeliveryStatus::Pending), 1);
        let refused = views
            .iter()
            .find(|view| view.status == DeliveryStatus::Failed)
            .expect("a refused delivery");
        let error = refused.attempts[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("deliveries of 64 MiB pending"), "{error}");
    }

    /// A delivery keeps its latest attempts within [`MAX_KEPT_ATTEMPT_BYTES`]: fifty to a URL
    /// of usual length, fewer to a 2 KB one (each attempt keeps the URL, its error may
    /// quote it), the latest always, every one counted.
    #[test]
    fn a_deliverys_attempts_are_bounded_in_bytes_too() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), None, NOW);
        let long = format!("http://127.0.0.1:9/{}", "u".repeat(2_060));
        let attempt = |url: &str| Attempt {
            at: NOW,
            url: Some(url.to_owned()),
            status_code: Some(500),
            error: Some(format!("could not connect to {url}").into()),
            duration_ms: 1,
        };
        let held = |webhooks: &Webhooks| {
            let deliveries = webhooks.shared.deliveries.lock();
            let delivery = deliveries.get(id).expect("kept");
            let bytes: usize = delivery.attempts.iter().map(Attempt::weight).sum();
            (delivery.attempts.len(), bytes, delivery.attempts_made())
        };
        for _ in 0..60 {
            webhooks.record_unsendable(id, attempt("http://127.0.0.1:9/hooks"));
        }
        let (kept, bytes, made) = held(&webhooks);
        assert_eq!((kept, made), (MAX_KEPT_ATTEMPTS, 61), "{bytes} bytes");
        for _ in 0..60 {
            webhooks.record_unsendable(id, attempt(&long));
        }
        let (kept, bytes, made) = held(&webhooks);
        assert!(bytes <= MAX_KEPT_ATTEMPT_BYTES, "{bytes} bytes in {kept}");
        assert!((2..MAX_KEPT_ATTEMPTS / 4).contains(&kept), "{kept} kept");
        assert_eq!(made, 121);
    }

    /// Deliveries finished by their attempts, not by a new event, are held to the count:
    /// eleven partners' thousand pending each, all failed at once (a clock moved past their
    /// schedule), leave at most the finished ones' count and a batch listed.
    #[test]
    fn deliveries_finished_without_a_new_event_are_trimmed_too() {
        let webhooks = Webhooks::new();
        let partners: Vec<_> = (0..11)
            .map(|n| partner_of(&format!("m2m_test_{n:0>32}")))
            .collect();
        for partner in &partners {
            for _ in 0..MAX_PENDING_PER_TENANT {
                webhooks.enqueue(partner, "link.created", (), url(), NOW);
            }
        }
        for job in webhooks.take_due(NOW) {
            webhooks.record_unsendable(
                job.id,
                Attempt {
                    at: NOW,
                    url: url(),
                    status_code: None,
                    error: Some("down".into()),
                    duration_ms: 0,
                },
            );
        }
        let kept = webhooks.deliveries(Visible::All).len();
        assert!(
            kept <= MAX_KEPT_DELIVERIES + queue::TRIM_BATCH,
            "{kept} finished kept"
        );
    }

    /// A replay is one more pending delivery, held to the caps a new event's is: a partner
    /// whose receiver is down cannot replay its finished deliveries past its own cap, and
    /// a refused replay gets a failed attempt saying why, staying replayable.
    #[test]
    fn a_replay_past_the_partners_pending_cap_fails_at_once_saying_why() {
        let webhooks = Webhooks::new();
        let (busy, quiet) = (partner(), other_partner());
        // Finished ones first (nowhere to send them), then the cap filled with pending ones.
        let finished: Vec<String> = (0..3)
            .map(|_| {
                webhooks
                    .enqueue(&busy, "link.created", (), None, NOW)
                    .text()
            })
            .collect();
        for _ in 0..MAX_PENDING_PER_TENANT {
            webhooks.enqueue(&busy, "link.created", (), url(), NOW);
        }
        let replayed = webhooks
            .replay(&finished[0], Visible::All, NOW)
            .expect("answered");
        assert_eq!(replayed.status, DeliveryStatus::Failed);
        let error = replayed
            .attempts
            .last()
            .and_then(|attempt| attempt.error.as_deref());
        assert!(
            error.is_some_and(|error| error.contains("1000 deliveries pending")),
            "{error:?}"
        );
        let pending = |partner: &Arc<Partner>| {
            webhooks
                .deliveries(Visible::All)
                .iter()
                .filter(|view| view.tenant == *partner.slug)
                .filter(|view| view.status == DeliveryStatus::Pending)
                .count()
        };
        assert_eq!(pending(&busy), MAX_PENDING_PER_TENANT);
        // Another partner's replay is its own business.
        let other = webhooks
            .enqueue(&quiet, "link.created", (), None, NOW)
            .text();
        let replayed = webhooks
            .replay(&other, Visible::All, NOW)
            .expect("answered");
        assert_eq!(replayed.status, DeliveryStatus::Pending);
    }

    /// Keys made up by the dozen, each with its receiver down and its own cap full, hold
    /// together at most [`MAX_PENDING`] pending deliveries; past that a delivery fails at
    /// once, saying why.
    #[test]
    fn all_partners_pending_deliveries_are_capped_together() {
        let webhooks = Webhooks::new();
        let partners: Vec<_> = (0..24)
            .map(|n| partner_of(&format!("m2m_test_{n:0>32}")))
            .collect();
        for partner in &partners {
            for _ in 0..MAX_PENDING_PER_TENANT {
                webhooks.enqueue(partner, "link.created", (), url(), NOW);
            }
        }
        let views = webhooks.deliveries(Visible::All);
        let pending = views
            .iter()
            .filter(|view| view.status == DeliveryStatus::Pending)
            .count();
        assert!(
            (MAX_PENDING - MAX_PENDING / 8..=MAX_PENDING).contains(&pending),
            "{pending} pending"
        );
        let refused = views
            .iter()
            .find(|view| view.status == DeliveryStatus::Failed)
            .expect("a refused delivery");
        let error = refused.attempts[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("partners together"), "{error}");
    }

    #[test]
    fn a_partners_pending_deliveries_are_capped_and_others_are_not_touched() {
        let webhooks = Webhooks::new();
        let (busy, quiet) = (partner(), other_partner());
        for _ in 0..MAX_PENDING_PER_TENANT + 3 {
            webhooks.enqueue(&busy, "link.created", (), url(), NOW);
        }
        webhooks.enqueue(&quiet, "link.created", (), url(), NOW);
        let views = webhooks.deliveries(Visible::All);
        let pending = views
            .iter()
            .filter(|view| view.status == DeliveryStatus::Pending)
            .count();
        assert_eq!(pending, MAX_PENDING_PER_TENANT + 1);
        let refused: Vec<_> = views
            .iter()
            .filter(|view| view.status == DeliveryStatus::Failed)
            .collect();
        assert_eq!(refused.len(), 3);
        let error = refused[0].attempts[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("pending"), "{error}");
    }

    #[test]
    fn the_retry_schedule_is_now_then_1_5_30_and_120_minutes() {
        let delays: Vec<i64> = (0..6)
            .map_while(delay_before_attempt)
            .map(|delay| delay.whole_minutes())
            .collect();
        assert_eq!(delays, [0, 1, 5, 30, 120]);
    }

    #[test]
    fn each_failed_attempt_schedules_the_next_until_the_fifth_fails_the_delivery() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        let mut now = NOW;
        for (attempt, minutes) in [1, 5, 30, 120].into_iter().enumerate() {
            assert_eq!(webhooks.take_due(now).len(), 1, "attempt {attempt}");
            webhooks.record_attempt(id, failed_at(now));
            let next = now + Duration::minutes(minutes);
            assert!(webhooks.take_due(next - Duration::seconds(1)).is_empty());
            assert_eq!(webhooks.next_due(), Some(next));
            now = next;
        }
        assert_eq!(webhooks.take_due(now).len(), 1);
        webhooks.record_attempt(id, failed_at(now));
        let view = &webhooks.deliveries(Visible::All)[0];
        assert_eq!(view.status, DeliveryStatus::Failed);
        assert_eq!(view.attempts.len(), 5);
        assert_eq!(view.next_attempt_at, None);
        assert_eq!(webhooks.next_due(), None);
    }

    /// A clock moved past the whole schedule at once: each retry is due its delay after
    /// the one before it was due, so all of them fall due at the moved clock, one after
    /// another, and the delivery is failed there, not four moves later.
    #[test]
    fn a_clock_moved_past_the_schedule_makes_every_retry_at_once() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        assert_eq!(webhooks.take_due(NOW).len(), 1);
        webhooks.record_attempt(id, failed_at(NOW));
        let moved = NOW + Duration::minutes(156);
        for attempt in 1..5 {
            assert_eq!(webhooks.take_due(moved).len(), 1, "attempt {attempt}");
            webhooks.record_attempt(id, failed_at(moved));
        }
        let view = &webhooks.deliveries(Visible::All)[0];
        assert_eq!(view.status, DeliveryStatus::Failed);
        assert_eq!(view.attempts.len(), 5);

        // Moved short of the last retry: the four before it are made, the last waits for
        // its own time.
        let id = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        assert_eq!(webhooks.take_due(NOW).len(), 1);
        webhooks.record_attempt(id, failed_at(NOW));
        let short = NOW + Duration::minutes(155);
        for _ in 1..4 {
            assert_eq!(webhooks.take_due(short).len(), 1);
            webhooks.record_attempt(id, failed_at(short));
        }
        assert!(webhooks.take_due(short).is_empty());
        assert_eq!(webhooks.next_due(), Some(NOW + Duration::minutes(156)));
    }

    /// An attempt that took its time (a receiver slow to fail) does not push the schedule
    /// back: the next is due its delay after this one was due.
    #[test]
    fn a_slow_attempt_does_not_push_the_next_back() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        assert_eq!(webhooks.take_due(NOW).len(), 1);
        webhooks.record_attempt(id, failed_at(NOW + Duration::seconds(30)));
        assert_eq!(webhooks.next_due(), Some(NOW + Duration::minutes(1)));
    }

    /// A replica that lost the claim on an attempt puts the delivery back until the claim
    /// ends; if it has meanwhile read back the claimant's outcome, the outcome stands.
    #[test]
    fn a_deferred_attempt_holds_only_a_delivery_still_waiting_for_it() {
        let webhooks = Webhooks::new();
        let claim_ends = NOW + Duration::minutes(10);

        let waiting = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        let job = webhooks.take_due(NOW).pop().expect("due");
        webhooks.defer(waiting, job.attempt, claim_ends);
        assert_eq!(webhooks.next_due(), Some(claim_ends));
        assert!(
            webhooks.take_due(claim_ends).len() == 1,
            "taken again once it ends"
        );

        let delivered = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        let job = webhooks
            .take_due(NOW)
            .into_iter()
            .find(|job| job.id == delivered)
            .expect("due");
        // The claimant's outcome, read back before the loser puts the job back.
        webhooks.record_attempt(
            delivered,
            Attempt {
                status_code: Some(200),
                ..failed_at(NOW)
            },
        );
        webhooks.defer(delivered, job.attempt, claim_ends);
        let views = webhooks.deliveries(Visible::All);
        let view = views
            .iter()
            .find(|view| view.id == delivered.text())
            .expect("kept");
        assert_eq!(view.status, DeliveryStatus::Delivered);
        assert_eq!(view.next_attempt_at, None);
    }

    /// The engine's one call gives the jobs due and the instant the earliest one left
    /// waiting falls due: taken ones (in flight) do not count, waiting and held ones do.
    #[test]
    fn one_call_gives_the_due_jobs_and_the_next_due_instant() {
        let webhooks = Webhooks::new();
        let retried = webhooks.enqueue(&partner(), "link.created", (), url(), NOW);
        assert_eq!(webhooks.take_due(NOW).len(), 1);
        webhooks.record_attempt(retried, failed_at(NOW));
        let later = NOW + Duration::seconds(30);
        let fresh = webhooks.enqueue(&partner(), "link.created", (), url(), later);
        let (jobs, next) = webhooks.take_due_and_next(later);
        assert_eq!(ids(jobs), std::slice::from_ref(&fresh));
        assert_eq!(
            next,
            Some(NOW + Duration::minutes(1)),
            "the retry, not the one taken"
        );
        assert_eq!(next, webhooks.next_due());
        let (jobs, next) = webhooks.take_due_and_next(later);
        assert!(jobs.is_empty());
        assert_eq!(next, webhooks.next_due());
        webhooks.record_attempt(fresh, failed_at(later));
        let (jobs, next) = webhooks.take_due_and_next(later);
        assert!(jobs.is_empty());
        assert_eq!(next, Some(NOW + Duration::minutes(1)));
        let (jobs, next) = webhooks.take_due_and_next(NOW + Duration::minutes(2));
        assert_eq!(ids(jobs), [retried, fresh]);
        assert_eq!(next, None, "both in flight");
    }

    #[test]
    fn one_links_deliveries_go_in_order_and_a_retry_wait_holds_none_back() {
        let webhooks = Webhooks::new();
        let partner = partner();
        let first = webhooks.enqueue(&partner, "link.created", about("link_a"), url(), NOW);
        let second = webhooks.enqueue(&partner, "link.opened", about("link_a"), url(), NOW);
        let other = webhooks.enqueue(&partner, "link.created", about("link_b"), url(), NOW);
        // The second of link_a waits for the first; link_b's goes beside it.
        assert_eq!(ids(webhooks.take_due(NOW)), [first, other]);
        assert!(
            webhooks.take_due(NOW).is_empty(),
            "in flight is not due again"
        );
        // The first failed and waits a minute for its retry: the second goes now.
        webhooks.record_attempt(first, failed_at(NOW));
        assert_eq!(ids(webhooks.take_due(NOW)), [second]);
        assert_eq!(
            webhooks.next_due(),
            Some(NOW + Duration::minutes(1)),
            "the retry is what is left to wait for"
        );
        assert_eq!(ids(webhooks.take_due(NOW + Duration::minutes(1))), [first]);
    }

    #[test]
    fn a_2xx_delivers_and_a_replay_starts_a_fresh_schedule() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), None, NOW);
        webhooks.take_due(NOW);
        let mut ok = failed_at(NOW);
        ok.status_code = Some(204);
        webhooks.record_attempt(id, ok);
        assert_eq!(
            webhooks.deliveries(Visible::All)[0].status,
            DeliveryStatus::Delivered
        );
        assert!(webhooks.take_due(NOW + Duration::days(1)).is_empty());
        let later = NOW + Duration::hours(1);
        let replayed = webhooks
            .replay(&id.text(), Visible::All, later)
            .expect("replay");
        assert_eq!(replayed.status, DeliveryStatus::Pending);
        assert_eq!(webhooks.take_due(later).len(), 1);
        assert_eq!(
            webhooks.replay(&id.text(), Visible::All, later),
            Err(ReplayError::InFlight)
        );
    }

    #[test]
    fn other_tenants_neither_see_nor_replay_a_delivery() {
        let webhooks = Webhooks::new();
        let id = webhooks.enqueue(&partner(), "link.created", (), None, NOW);
        assert!(webhooks.deliveries(Visible::Tenant("someone")).is_empty());
        assert_eq!(
            webhooks
                .replay(&id.text(), Visible::Tenant("someone"), NOW)
                .map(|_| ()),
            Err(ReplayError::NotFound)
        );
        webhooks.forget_tenant("someone");
        assert_eq!(webhooks.deliveries(Visible::All).len(), 1);
    }

    /// Event data with a field that can still be changed after the event, through a
    /// handle the test keeps.
    #[derive(Clone, Serialize)]
    struct Changing {
        #[serde(rename = "linkId")]
        link_id: String,
        #[serde(serialize_with = "note_now")]
        note: Arc<parking_lot::Mutex<String>>,
    }

    fn note_now<S: serde::Serializer>(
        note: &Arc<parking_lot::Mutex<String>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&note.lock())
    }

    impl EventData for Changing {
        fn link_id(&self) -> Option<&str> {
            Some(&self.link_id)
        }
    }

    #[test]
    fn a_body_reads_as_the_event_was_and_the_same_bytes_each_time() {
        let webhooks = Webhooks::new();
        let note = Arc::new(parking_lot::Mutex::new("as created".to_owned()));
        let data = Changing {
            link_id: "link_a".to_owned(),
            note: note.clone(),
        };
        webhooks.enqueue(&partner(), "link.created", data, url(), NOW);
        // Changed after the event, before anything read the body: the body is the event's.
        "changed later".clone_into(&mut note.lock());
        let expected = serde_json::json!({
            "event": "link.created",
            "timestamp": "2026-02-10T12:00:00.000Z",
            "data": { "linkId": "link_a", "note": "as created" },
        });
        let jobs = webhooks.take_due(NOW);
        assert_eq!(jobs.len(), 1);
        let sent: serde_json::Value = serde_json::from_slice(&jobs[0].body).expect("JSON body");
        assert_eq!(sent, expected);
        assert_eq!(webhooks.deliveries(Visible::All)[0].payload, expected);
        // The attempt fails and is retried: the retry sends the very same bytes.
        webhooks.record_attempt(jobs[0].id, failed_at(NOW));
        let retry = webhooks.take_due(NOW + Duration::minutes(1));
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].body, jobs[0].body);
    }

    #[test]
    fn a_body_carries_the_events_instant_not_the_time_it_is_read() {
        let webhooks = Webhooks::new();
        let data = serde_json::json!({ "linkId": "link_a" });
        webhooks.enqueue(&partner(), "link.opened", data, None, NOW);
        let later = NOW + Duration::hours(3);
        let jobs = webhooks.take_due(later);
        // No URL: failed at once, so nothing is due; the control API reads the body, hours
        // after the event.
        assert!(jobs.is_empty());
        let payload = &webhooks.deliveries(Visible::All)[0].payload;
        assert_eq!(payload["timestamp"], "2026-02-10T12:00:00.000Z");
        assert_eq!(payload["event"], "link.opened");
    }
}
