//! The deliveries kept, in queue order, with the indexes every enqueue needs: which ids are
//! taken, how many deliveries each partner has pending, and how many finished ones each
//! partner holds. Past the caps of finished deliveries kept, the partner that holds the most
//! loses its oldest first ([`Queue::trim`]): in a sandbox shared by a team, one partner's
//! load test never pushes out the deliveries another is looking at while that other holds
//! fewer.
//!
//! Without them an enqueue walked the whole bounded list twice (up to
//! [`MAX_KEPT_DELIVERIES`](super::MAX_KEPT_DELIVERIES) string comparisons for the id, and
//! as many again for the partner's pending count): on a busy sandbox that was half of a
//! create-link's CPU. Every change of membership or of status goes through this type, so
//! the indexes cannot drift from the list; deliveries are kept sorted by `seq` (assigned
//! under the queue's lock, strictly increasing), so one is found by id with a hash lookup
//! and a binary search. The engine, woken by every enqueue, reads two more: the pending
//! deliveries not in flight by when each falls due, and by link those that hold the link's
//! later deliveries back ([`Queue::due`]). It once walked every pending delivery on each
//! wake, under the lock every create takes too; with receivers down or slower than the
//! creates, thousands are pending, and creates fell to a tenth of their rate.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use linkbox_contracts::sandbox::DeliveryStatus;
use time::OffsetDateTime;

use super::{Delivery, DeliveryId, MAX_KEPT_BYTES, MAX_KEPT_DELIVERIES};
use crate::store::index::ServerKeys;

/// Finished deliveries beyond the cap that wait behind a pending one before they are
/// dropped in one pass ([`Queue::trim`]): the list holds at most this many more than
/// [`MAX_KEPT_DELIVERIES`] finished ones.
pub(super) const TRIM_BATCH: usize = MAX_KEPT_DELIVERIES / 16;

/// The deliveries [`Queue::trim`] dropped.
pub(super) type Dropped = smallvec::SmallVec<[Delivery; 1]>;

#[derive(Default)]
pub(super) struct Queue {
    list: VecDeque<Delivery>,
    /// Delivery id → its `seq`. This map and the two below are keyed by what no client chooses
    /// (delivery ids, partner slugs, link ids), so they hash with [`ServerKeys`].
    by_id: HashMap<DeliveryId, u64, ServerKeys>,
    /// Partner slug → how many of its deliveries are pending, and their bodies' bytes.
    pending: HashMap<Arc<str>, Pending, ServerKeys>,
    /// How many deliveries are pending, all partners together: the sum of `pending`, kept
    /// rather than summed because [`Queue::trim`] reads it on every enqueue and `pending`
    /// has an entry for every partner with a receiver down.
    pending_total: usize,
    /// The bytes of the pending deliveries' bodies, all partners together.
    pending_bytes: usize,
    /// The bytes every kept delivery counts for ([`counted`]): finished ones are dropped,
    /// oldest first, once theirs pass [`MAX_KEPT_BYTES`].
    bytes: usize,
    /// The engine's view: each pending delivery not in flight, by when it falls due.
    waiting: BTreeSet<(OffsetDateTime, u64)>,
    /// The engine's view: by link, the seqs of its pending deliveries that hold the link's
    /// later ones back (in flight, or not yet tried once).
    holding: HashMap<Arc<str>, BTreeSet<u64>, ServerKeys>,
    /// How many finished deliveries each partner holds, and a bound on the most any
    /// holds ([`Queue::trim`]'s choice).
    finished: Finished,
}

/// The finished deliveries kept, by partner: past a cap, the partner that holds the most
/// (by count past the count's cap, by bytes past the bytes') loses its oldest first, so one
/// partner's traffic never pushes out another's while that other holds less.
#[derive(Default)]
struct Finished {
    /// Partner slug → how many finished deliveries it holds, and their bytes.
    by_partner: HashMap<Arc<str>, Held, ServerKeys>,
    /// At least what any partner holds, count and bytes each: exact after each batch of
    /// [`Queue::trim`], raised by each finished delivery counted, and left as it is when one
    /// is forgotten (a partner that held the most and lost some makes it high until the
    /// next batch: only the front's shortcut reads it, and a high one sends it to the
    /// batch).
    most: Held,
}

/// What one partner holds of the finished deliveries kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Held {
    count: usize,
    bytes: usize,
}

/// What a delivery counts for in the queue's tallies; a change to any of it moves the
/// delivery from one count to another ([`Queue::update`]).
#[derive(PartialEq, Eq)]
struct Tallied {
    pending: bool,
    slug: Arc<str>,
    bytes: usize,
}

impl Tallied {
    fn of(delivery: &Delivery) -> Tallied {
        Tallied {
            pending: delivery.status == DeliveryStatus::Pending,
            slug: delivery.partner.slug.clone(),
            bytes: counted(delivery),
        }
    }

    fn parts(&self) -> (bool, &Arc<str>, usize) {
        (self.pending, &self.slug, self.bytes)
    }
}

/// What a delivery counts for, read in place: a create's delivery is tallied once and
/// untallied once, and neither copies its partner's slug (whose count every core's
/// creates for the partner would take turns to change).
fn tallied(delivery: &Delivery) -> (bool, &Arc<str>, usize) {
    (
        delivery.status == DeliveryStatus::Pending,
        &delivery.partner.slug,
        counted(delivery),
    )
}

/// The bytes a delivery counts for: a pending one its body, what its admission was
/// measured by ([`super::no_room`]), so the pending caps a delivery was let in under are
/// never passed by the attempts its retries add after; a finished one all it holds
/// ([`Delivery::weight`](super::Delivery::weight)), its attempts too. What attempts a
/// delivery keeps is bounded on their own ([`super::MAX_KEPT_ATTEMPT_BYTES`]).
fn counted(delivery: &Delivery) -> usize {
    if delivery.status == DeliveryStatus::Pending {
        delivery.body.len()
    } else {
        delivery.weight()
    }
}

/// Which cap a trim is under, or which a new pending delivery would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cap {
    Count,
    Bytes,
}

/// A partner's pending deliveries: how many, and their bodies' bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pending {
    pub count: usize,
    pub bytes: usize,
}

/// Where a delivery stands in the engine's two indexes ([`Queue::due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EngineKeys {
    waiting: Option<(OffsetDateTime, u64)>,
    holding: Option<(Arc<str>, u64)>,
}

impl EngineKeys {
    /// In neither index.
    fn of_none() -> EngineKeys {
        EngineKeys {
            waiting: None,
            holding: None,
        }
    }

    fn of(delivery: &Delivery) -> EngineKeys {
        if delivery.status != DeliveryStatus::Pending {
            return EngineKeys::of_none();
        }
        let waiting = delivery
            .next_attempt_at
            .filter(|_| !delivery.in_flight)
            .map(|at| (at, delivery.seq));
        let holding = delivery
            .link
            .as_ref()
            .filter(|_| delivery.in_flight || delivery.step == 0)
            .map(|link| (link.clone(), delivery.seq));
        EngineKeys { waiting, holding }
    }
}

impl Finished {
    /// Counts a finished delivery of partner `slug` holding `bytes`.
    fn add(&mut self, slug: &Arc<str>, bytes: usize) {
        let held = match self.by_partner.get_mut(&**slug) {
            Some(held) => held,
            None => self.by_partner.entry(slug.clone()).or_default(),
        };
        held.count += 1;
        held.bytes += bytes;
        self.most.count = self.most.count.max(held.count);
        self.most.bytes = self.most.bytes.max(held.bytes);
    }

    /// Forgets a finished delivery of partner `slug` holding `bytes`.
    fn remove(&mut self, slug: &str, bytes: usize) {
        if let Some(held) = self.by_partner.get_mut(slug) {
            held.count = held.count.saturating_sub(1);
            held.bytes = held.bytes.saturating_sub(bytes);
            if held.count == 0 {
                self.by_partner.remove(slug);
            }
        }
    }

    /// Whether partner `slug` holds the most under `cap`, or within a sixteenth of the
    /// most: partners whose events come at about the same rate hold about as many, and
    /// the oldest kept, at the front of the queue, then goes at once ([`Queue::trim`]).
    fn near_the_most(&self, cap: Cap, slug: &str) -> bool {
        let Some(held) = self.by_partner.get(slug) else {
            return false;
        };
        let (held, most) = match cap {
            Cap::Count => (held.count, self.most.count),
            Cap::Bytes => (held.bytes, self.most.bytes),
        };
        held.saturating_mul(16) >= most.saturating_mul(15)
    }

    /// The most a partner may hold, count and bytes each, for the partners holding the
    /// most to lose at least `excess` between them: the highest levels that cut that
    /// much off the tops.
    fn levels(&self, excess: Held) -> Held {
        let level = |of: fn(&Held) -> usize, excess: usize| {
            let mut held: Vec<usize> = self.by_partner.values().map(of).collect();
            held.sort_unstable_by(|one, other| other.cmp(one));
            water_level(&held, excess)
        };
        Held {
            count: level(|held| held.count, excess.count),
            bytes: level(|held| held.bytes, excess.bytes),
        }
    }

    /// Sets [`Finished::most`] to what it is.
    fn recount_most(&mut self) {
        self.most = self
            .by_partner
            .values()
            .fold(Held::default(), |most, held| Held {
                count: most.count.max(held.count),
                bytes: most.bytes.max(held.bytes),
            });
    }
}

/// The highest level that cuts at least `excess` off the tops of `held` (sorted, the
/// largest first): each value above it comes down to it. `usize::MAX` for no excess.
fn water_level(held: &[usize], excess: usize) -> usize {
    if excess == 0 {
        return usize::MAX;
    }
    let mut top = 0usize;
    for (index, &value) in held.iter().enumerate() {
        top += value;
        let cut = index + 1;
        let next = held.get(cut).copied().unwrap_or(0);
        // The top `cut` brought down to one level, `excess` taken off them together.
        if let Some(left) = top.checked_sub(excess) {
            let level = left / cut;
            if level >= next {
                return level;
            }
        }
    }
    0
}

impl Queue {
    pub(super) fn contains(&self, id: DeliveryId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// How many deliveries of partner `slug` are pending, and their bodies' bytes.
    pub(super) fn pending_of(&self, slug: &str) -> Pending {
        self.pending.get(slug).copied().unwrap_or_default()
    }

    /// Whether partner `slug` may have one more delivery of `bytes` pending, all partners
    /// together within `cap`: past it, no; within its last eighth (by count or by bytes),
    /// only a partner holding less than its share of it (the cap over one more than the
    /// partners with deliveries pending). `None` when it may; else which cap is full.
    pub(super) fn pending_room(&self, slug: &str, bytes: usize, cap: Pending) -> Option<Cap> {
        let held = self.pending_of(slug);
        let holders = self.pending.len() + usize::from(held.count == 0);
        let count = self.pending_total + 1;
        let total_bytes = self.pending_bytes.saturating_add(bytes);
        // One partner more than hold any, as if a newcomer were coming: a partner alone
        // still leaves the last eighth to the next; and no partner holds more than a slice
        // of that eighth ([`crate::store::quota::reserve_share`]).
        let fits = |cap: usize, after: usize, held_after: usize| {
            crate::store::quota::reserve_allows(
                cap as u64,
                after as u64,
                held_after as u64,
                holders as u64,
            )
        };
        if !fits(cap.count, count, held.count + 1) {
            return Some(Cap::Count);
        }
        if !fits(cap.bytes, total_bytes, held.bytes.saturating_add(bytes)) {
            return Some(Cap::Bytes);
        }
        None
    }

    /// The newest delivery's seq: the next one pushed must have a greater one.
    pub(super) fn last_seq(&self) -> Option<u64> {
        self.newest().map(|delivery| delivery.seq)
    }

    /// The delivery pushed last, if it is still kept.
    pub(super) fn newest(&self) -> Option<&Delivery> {
        self.list.back()
    }

    /// Appends `delivery`; its `seq` must be above every kept one's.
    pub(super) fn push(&mut self, delivery: Delivery) {
        debug_assert!(self.last_seq().is_none_or(|last| last < delivery.seq));
        self.by_id.insert(delivery.id, delivery.seq);
        self.tally(tallied(&delivery));
        self.rekey(None, EngineKeys::of(&delivery));
        self.list.push_back(delivery);
    }

    /// Moves a delivery in the engine's indexes from `before` (`None`: not in them) to
    /// `after`.
    fn rekey(&mut self, before: Option<EngineKeys>, after: EngineKeys) {
        if let Some(before) = &before {
            if before == &after {
                return;
            }
            if let Some(key) = before.waiting {
                self.waiting.remove(&key);
            }
            if let Some((link, seq)) = &before.holding
                && let Some(seqs) = self.holding.get_mut(link)
            {
                seqs.remove(seq);
                if seqs.is_empty() {
                    self.holding.remove(link);
                }
            }
        }
        if let Some(key) = after.waiting {
            self.waiting.insert(key);
        }
        if let Some((link, seq)) = after.holding {
            self.holding.entry(link).or_default().insert(seq);
        }
    }

    /// Takes, oldest first, each pending delivery due by `now` and not in flight, unless an
    /// earlier pending delivery of its link holds it back (in flight, or not yet tried
    /// once), marking it in flight; `take` sees each. The same as walking every pending
    /// delivery in order, as the engine once did on each wake — the thousands a receiver
    /// that is down keeps waiting for a later retry can neither be taken nor hold anything
    /// back, so the indexes pass over them. A delivery's hold is read as it was before this
    /// call: one taken now holds its link's later ones from the next call on.
    pub(super) fn due(&mut self, now: OffsetDateTime, mut take: impl FnMut(&Delivery)) {
        let mut due: Vec<u64> = self
            .waiting
            .range(..=(now, u64::MAX))
            .map(|&(_, seq)| seq)
            .collect();
        due.sort_unstable();
        let mut taken = Vec::new();
        for seq in due {
            let Some(index) = self.index_of_seq(seq) else {
                continue;
            };
            let delivery = &self.list[index];
            let held = delivery.link.as_ref().is_some_and(|link| {
                self.holding
                    .get(link)
                    .and_then(|seqs| seqs.first())
                    .is_some_and(|&first| first < seq)
            });
            if !held {
                taken.push(index);
            }
        }
        for index in taken {
            let delivery = &mut self.list[index];
            let before = EngineKeys::of(delivery);
            delivery.in_flight = true;
            take(delivery);
            let after = EngineKeys::of(delivery);
            self.rekey(Some(before), after);
        }
    }

    /// When the earliest pending delivery not in flight falls due.
    pub(super) fn next_due(&self) -> Option<OffsetDateTime> {
        self.waiting.first().map(|&(at, _)| at)
    }

    fn index_of_seq(&self, seq: u64) -> Option<usize> {
        index_of_seq(&self.list, seq)
    }

    /// The pending deliveries, oldest first.
    #[cfg(test)]
    pub(super) fn pending(&self) -> impl Iterator<Item = &Delivery> {
        self.list
            .iter()
            .filter(|delivery| delivery.status == DeliveryStatus::Pending)
    }

    /// Where delivery `id` is in the list.
    fn position(&self, id: DeliveryId) -> Option<usize> {
        let seq = *self.by_id.get(&id)?;
        let found = self
            .index_of_seq(seq)
            .filter(|&index| self.list[index].id == id);
        // Two kept deliveries with one id (48 random bits; restored from a file): the other.
        found.or_else(|| self.list.iter().position(|delivery| delivery.id == id))
    }

    pub(super) fn get(&self, id: DeliveryId) -> Option<&Delivery> {
        self.position(id).map(|index| &self.list[index])
    }

    /// Runs `change` on delivery `id`, keeping the pending counts right whatever it does to
    /// the delivery's status. `None` when no delivery has that id.
    pub(super) fn update<R>(
        &mut self,
        id: DeliveryId,
        change: impl FnOnce(&mut Delivery) -> R,
    ) -> Option<R> {
        let index = self.position(id)?;
        let delivery = &mut self.list[index];
        let (tallied, before) = (Tallied::of(delivery), EngineKeys::of(delivery));
        let result = change(delivery);
        let (now_tallied, after) = (Tallied::of(delivery), EngineKeys::of(delivery));
        self.rekey(Some(before), after);
        if tallied != now_tallied {
            self.untally(tallied.parts());
            self.tally(now_tallied.parts());
        }
        Some(result)
    }

    /// Counts a delivery kept ([`tallied`]): its bytes, and it as pending or finished.
    fn tally(&mut self, (pending, slug, bytes): (bool, &Arc<str>, usize)) {
        self.bytes += bytes;
        if pending {
            self.count(slug.clone(), bytes);
        } else {
            self.finished.add(slug, bytes);
        }
    }

    /// Stops counting a delivery: [`Queue::tally`] undone.
    fn untally(&mut self, (pending, slug, bytes): (bool, &Arc<str>, usize)) {
        self.bytes = self.bytes.saturating_sub(bytes);
        if pending {
            self.uncount(slug, bytes);
        } else {
            self.finished.remove(slug, bytes);
        }
    }

    /// Counts a pending delivery of `slug` holding `bytes`.
    fn count(&mut self, slug: Arc<str>, bytes: usize) {
        let pending = self.pending.entry(slug).or_default();
        pending.count += 1;
        pending.bytes += bytes;
        self.pending_total += 1;
        self.pending_bytes += bytes;
    }

    fn uncount(&mut self, slug: &Arc<str>, bytes: usize) {
        self.pending_total = self.pending_total.saturating_sub(1);
        self.pending_bytes = self.pending_bytes.saturating_sub(bytes);
        if let Some(pending) = self.pending.get_mut(slug) {
            pending.count = pending.count.saturating_sub(1);
            pending.bytes = pending.bytes.saturating_sub(bytes);
            if pending.count == 0 {
                self.pending.remove(slug);
            }
        }
    }

    /// The bytes of the finished deliveries.
    fn finished_bytes(&self) -> usize {
        self.bytes.saturating_sub(self.pending_bytes)
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Delivery> + Clone {
        self.list.iter()
    }

    /// Drops every delivery `keep` refuses.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Delivery) -> bool) {
        let mut dropped = Vec::new();
        self.list.retain(|delivery| {
            let kept = keep(delivery);
            if !kept {
                dropped.push((delivery.id, Tallied::of(delivery), EngineKeys::of(delivery)));
            }
            kept
        });
        for (id, tallied, keys) in dropped {
            self.rekey(Some(keys), EngineKeys::of_none());
            self.by_id.remove(&id);
            self.untally(tallied.parts());
        }
    }

    pub(super) fn clear(&mut self) {
        self.list.clear();
        self.by_id.clear();
        self.pending.clear();
        self.pending_total = 0;
        self.pending_bytes = 0;
        self.bytes = 0;
        self.waiting.clear();
        self.holding.clear();
        self.finished = Finished::default();
    }

    /// Drops finished deliveries beyond the caps, of count and of bytes: each one the oldest
    /// of the partner holding the most ([`Finished`]). When the oldest kept is finished and
    /// its partner holds the most, or within a sixteenth of it, that one goes at once;
    /// otherwise they go once [`TRIM_BATCH`] of them are due, or a sixteenth of the bytes, the
    /// partners holding the most brought down to one level ([`water_level`]). Returns what
    /// it dropped: one delivery on nearly every enqueue once the list is full, returned in
    /// place rather than in a `Vec` allocated for it.
    pub(super) fn trim(&mut self) -> Dropped {
        let mut dropped = Dropped::new();
        // The common case: the oldest kept goes, from the front.
        while let Some(cap) = self.over()
            && let Some(front) = self.list.front()
            && front.status != DeliveryStatus::Pending
            && self.finished.near_the_most(cap, &front.partner.slug)
            && let Some(delivery) = self.list.pop_front()
        {
            self.untally(tallied(&delivery));
            dropped.push(delivery);
        }
        // Behind the front (a pending delivery there, or another partner's that holds less),
        // dropping one moves every one kept after it: done on each enqueue, a partner whose
        // receiver is down (its oldest deliveries pending for hours of retries) made
        // everyone's creates move the whole list. So it waits until [`TRIM_BATCH`] can go,
        // and moves the list once for all of them.
        // Finished ones past the count: pending ones are bounded by their own caps, and
        // never push a finished one out.
        let finished = self.list.len().saturating_sub(self.pending_total);
        let excess = finished.saturating_sub(MAX_KEPT_DELIVERIES);
        // Past the bytes' cap, down to fifteen sixteenths of it: the next pass waits for a
        // sixteenth more.
        let excess_bytes = match self.finished_bytes() {
            over if over > MAX_KEPT_BYTES => over - (MAX_KEPT_BYTES - MAX_KEPT_BYTES / 16),
            _ => 0,
        };
        if excess >= TRIM_BATCH || excess_bytes > 0 {
            // The partners holding the most come down to one level, count and bytes each,
            // their oldest going first: the list is in seq order.
            let levels = self.finished.levels(Held {
                count: excess,
                bytes: excess_bytes,
            });
            let mut kept = VecDeque::with_capacity(self.list.len());
            for delivery in self.list.drain(..) {
                let over = delivery.status != DeliveryStatus::Pending
                    && self
                        .finished
                        .by_partner
                        .get(&*delivery.partner.slug)
                        .is_some_and(|held| held.count > levels.count || held.bytes > levels.bytes);
                if over {
                    // What it was counted for, all of it ([`tallied`]): bytes left behind
                    // would keep the cap passed for good, and every finished delivery of
                    // every partner dropped as it finished.
                    let weight = counted(&delivery);
                    self.bytes = self.bytes.saturating_sub(weight);
                    self.finished.remove(&delivery.partner.slug, weight);
                    dropped.push(delivery);
                } else {
                    kept.push_back(delivery);
                }
            }
            self.list = kept;
            self.finished.recount_most();
        }
        for delivery in &dropped {
            // Finished ones only, in neither of the engine's indexes.
            debug_assert_eq!(EngineKeys::of(delivery), EngineKeys::of_none());
            self.by_id.remove(&delivery.id);
        }
        dropped
    }

    /// The cap the finished deliveries are over, if any: the count's first.
    fn over(&self) -> Option<Cap> {
        if self.list.len().saturating_sub(self.pending_total) > MAX_KEPT_DELIVERIES {
            Some(Cap::Count)
        } else if self.finished_bytes() > MAX_KEPT_BYTES {
            Some(Cap::Bytes)
        } else {
            None
        }
    }
}

/// Where the delivery numbered `seq` is in `list` (sorted by seq).
fn index_of_seq(list: &VecDeque<Delivery>, seq: u64) -> Option<usize> {
    list.binary_search_by_key(&seq, |delivery| delivery.seq)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::m2m::Partner;
    use time::macros::datetime;

    /// All partners' pending deliveries stay within the cap, by count and by bytes; a
    /// partner alone stops short of its last eighth, which is kept for the others while
    /// they hold less than their share (here a single delivery: a 512th of 16 is less).
    #[test]
    fn pending_room_keeps_the_last_eighth_for_partners_below_their_share() {
        let (one, two) = partners();
        let cap = Pending {
            count: 16,
            bytes: 1 << 20,
        };
        let mut queue = Queue::default();
        let mut seq = 0;
        let mut pending = |queue: &mut Queue, partner: &Arc<Partner>| {
            seq += 1;
            queue.push(delivery(seq, partner, DeliveryStatus::Pending));
        };
        while queue.pending_room(&one.slug, 0, cap).is_none() {
            pending(&mut queue, &one);
            assert!(queue.pending_total <= cap.count);
        }
        assert_eq!(queue.pending_total, 14, "alone, up to its last eighth");
        assert_eq!(queue.pending_room(&one.slug, 0, cap), Some(Cap::Count));
        assert_eq!(queue.pending_room(&two.slug, 0, cap), None);
        pending(&mut queue, &two);
        assert_eq!(
            queue.pending_room(&two.slug, 0, cap),
            Some(Cap::Count),
            "past its slice of the reserve"
        );
        assert_eq!(queue.pending_room(&one.slug, 0, cap), Some(Cap::Count));

        let empty = Queue::default();
        assert_eq!(
            empty.pending_room(&one.slug, cap.bytes, cap),
            Some(Cap::Bytes)
        );
        assert_eq!(empty.pending_room(&one.slug, cap.bytes / 2, cap), None);
        assert_eq!(
            empty.pending_room(&one.slug, cap.bytes - cap.bytes / 16, cap),
            Some(Cap::Bytes),
            "in the reserve, past its slice"
        );
    }

    fn partners() -> (Arc<Partner>, Arc<Partner>) {
        (
            super::super::tests::partner(),
            super::super::tests::other_partner(),
        )
    }

    fn delivery(seq: u64, partner: &Arc<Partner>, status: DeliveryStatus) -> Delivery {
        let at = datetime!(2026-02-10 12:00 UTC);
        Delivery {
            id: DeliveryId(seq),
            seq,
            partner: partner.clone(),
            event: "link.created",
            link: None,
            body: bytes::Bytes::new(),
            body_is_object: false,
            callback_url: None,
            status,
            attempts: Vec::new(),
            earlier_attempts: 0,
            step: 0,
            next_attempt_at: None,
            in_flight: false,
            created_at: at,
        }
    }

    /// The indexes, recomputed from the list the slow way.
    fn assert_consistent(queue: &Queue) {
        let mut pending: HashMap<Arc<str>, Pending, ServerKeys> = HashMap::default();
        let mut bytes = 0;
        for delivery in queue.iter() {
            assert_eq!(queue.by_id.get(&delivery.id), Some(&delivery.seq));
            assert_eq!(
                queue.get(delivery.id).map(|found| found.seq),
                Some(delivery.seq)
            );
            bytes += counted(delivery);
            if delivery.status == DeliveryStatus::Pending {
                let held = pending.entry(delivery.partner.slug.clone()).or_default();
                held.count += 1;
                held.bytes += delivery.body.len();
            }
        }
        assert_eq!(queue.by_id.len(), queue.iter().count());
        assert_eq!(queue.pending, pending);
        assert_eq!(queue.bytes, bytes);
        assert_eq!(
            queue.pending_total,
            pending.values().map(|p| p.count).sum::<usize>()
        );
        assert_eq!(
            queue.pending_bytes,
            pending.values().map(|p| p.bytes).sum::<usize>()
        );
        let mut waiting = BTreeSet::new();
        let mut holding: HashMap<Arc<str>, BTreeSet<u64>, ServerKeys> = HashMap::default();
        for delivery in queue.iter() {
            let keys = EngineKeys::of(delivery);
            waiting.extend(keys.waiting);
            if let Some((link, seq)) = keys.holding {
                holding.entry(link).or_default().insert(seq);
            }
        }
        assert_eq!(queue.waiting, waiting);
        assert_eq!(queue.holding, holding);
        let mut finished: HashMap<Arc<str>, Held> = HashMap::new();
        for delivery in queue.iter() {
            if delivery.status != DeliveryStatus::Pending {
                let held = finished.entry(delivery.partner.slug.clone()).or_default();
                held.count += 1;
                held.bytes += delivery.weight();
            }
        }
        let indexed: HashMap<Arc<str>, Held> = queue
            .finished
            .by_partner
            .iter()
            .map(|(slug, held)| (slug.clone(), *held))
            .collect();
        assert_eq!(indexed, finished);
        for held in finished.values() {
            assert!(held.count <= queue.finished.most.count);
            assert!(held.bytes <= queue.finished.most.bytes);
        }
    }

    #[test]
    fn ids_and_pending_counts_follow_every_change() {
        let (one, two) = partners();
        let mut queue = Queue::default();
        for seq in 0..10 {
            let partner = if seq % 2 == 0 { &one } else { &two };
            queue.push(delivery(seq, partner, DeliveryStatus::Pending));
        }
        assert_consistent(&queue);
        assert_eq!(
            (
                queue.pending_of(&one.slug).count,
                queue.pending_of(&two.slug).count
            ),
            (5, 5)
        );

        queue.update(DeliveryId(0x000000000000), |d| {
            d.status = DeliveryStatus::Delivered
        });
        queue.update(DeliveryId(0x000000000001), |d| {
            d.status = DeliveryStatus::Failed
        });
        queue.update(DeliveryId(0x000000000001), |d| {
            d.status = DeliveryStatus::Pending
        });
        assert_eq!(
            (
                queue.pending_of(&one.slug).count,
                queue.pending_of(&two.slug).count
            ),
            (4, 5)
        );
        assert!(queue.update(DeliveryId(0xffffffffffff), |_| ()).is_none());
        assert_consistent(&queue);

        queue.retain(|d| d.partner.slug != two.slug);
        assert_eq!(
            (
                queue.pending_of(&one.slug).count,
                queue.pending_of(&two.slug).count
            ),
            (4, 0)
        );
        assert!(!queue.contains(DeliveryId(0x000000000001)));
        assert!(queue.contains(DeliveryId(0x000000000002)));
        assert_consistent(&queue);

        queue.clear();
        assert_consistent(&queue);
        assert_eq!(queue.pending_of(&one.slug), Pending::default());
    }

    /// A pending delivery counts its body, what it was let in by, whatever attempts its
    /// retries add; a finished one counts its attempts too, a long webhook URL and a long
    /// error kept by each weighing what they hold, and forgotten with it.
    #[test]
    fn a_finished_deliverys_attempts_count_in_the_bytes_kept() {
        use std::borrow::Cow;

        use super::super::Attempt;
        let (one, _) = partners();
        let mut queue = Queue::default();
        let mut pending = delivery(1, &one, DeliveryStatus::Pending);
        pending.body = bytes::Bytes::from_static(b"{}");
        queue.push(pending);
        let attempt = |error: Cow<'static, str>| Attempt {
            at: datetime!(2026-02-10 12:00 UTC),
            url: Some(format!("http://127.0.0.1:9/{}", "u".repeat(2_000))),
            status_code: None,
            error: Some(error),
            duration_ms: 1,
        };
        queue.update(DeliveryId(1), |delivery| {
            delivery.push_attempt(attempt(format!("refused: {}", "e".repeat(1_000)).into()));
        });
        assert_eq!(
            queue.pending_of(&one.slug).bytes,
            2,
            "pending: the body alone"
        );
        assert_eq!(queue.finished_bytes(), 0);
        assert_consistent(&queue);
        // Finished with a fixed error: its text is not the delivery's to count.
        queue.update(DeliveryId(1), |delivery| {
            delivery.push_attempt(attempt(Cow::Borrowed("a fixed text")));
            delivery.status = DeliveryStatus::Failed;
        });
        assert_eq!(queue.pending_of(&one.slug), Pending::default());
        let finished = queue.finished_bytes();
        assert!(
            (2 + 3_000 + 2_000..2 + 3_000 + 2_000 + 400).contains(&finished),
            "the body, two URLs and one error: {finished}"
        );
        assert_consistent(&queue);
        queue.retain(|_| false);
        assert_eq!(queue.finished_bytes(), 0);
        assert_consistent(&queue);
    }

    /// Pending deliveries are not in the finished ones' count: however many other partners
    /// hold pending, a quiet partner's few finished ones stay.
    #[test]
    fn pending_deliveries_never_push_a_finished_one_out() {
        let (quiet, busy) = partners();
        let mut queue = Queue::default();
        for seq in 0..300 {
            queue.push(delivery(seq, &quiet, DeliveryStatus::Delivered));
        }
        for seq in 300..300 + MAX_KEPT_DELIVERIES as u64 + TRIM_BATCH as u64 {
            queue.push(delivery(seq, &busy, DeliveryStatus::Pending));
            assert!(queue.trim().is_empty(), "{seq}");
        }
        assert_eq!(queue.list.len(), 300 + MAX_KEPT_DELIVERIES + TRIM_BATCH);
        assert_consistent(&queue);
    }

    /// A delivery dropped by the batch (the oldest kept is a quieter partner's) is forgotten
    /// for all it was counted for, its attempts too: bytes left counted would pass the cap
    /// for good, and every partner's finished deliveries go as they finish.
    #[test]
    fn a_batch_trim_forgets_all_a_delivery_was_counted_for() {
        use super::super::Attempt;
        let (one, two) = partners();
        let attempt = Attempt {
            at: datetime!(2026-02-10 12:00 UTC),
            url: Some(format!("http://127.0.0.1:9/{}", "u".repeat(2_000))),
            status_code: None,
            error: Some(format!("not sent: {}", "e".repeat(2_000)).into()),
            duration_ms: 1,
        };
        let finished = |seq: u64, partner: &Arc<Partner>| {
            let mut delivery = delivery(seq, partner, DeliveryStatus::Failed);
            delivery.push_attempt(attempt.clone());
            delivery
        };
        let mut queue = Queue::default();
        queue.push(finished(0, &one));
        for seq in 1..=(MAX_KEPT_DELIVERIES + 2 * TRIM_BATCH) as u64 {
            queue.push(finished(seq, &two));
            queue.trim();
        }
        assert_consistent(&queue);
        assert!(queue.contains(DeliveryId(0)), "the quieter partner's stays");
        assert!(queue.list.len() <= MAX_KEPT_DELIVERIES + TRIM_BATCH);
    }

    /// Finished bodies past [`MAX_KEPT_BYTES`] are dropped oldest first, however few
    /// deliveries they are; a pending one is kept whatever its size.
    #[test]
    fn trimming_bounds_the_bytes_of_finished_bodies() {
        let (one, _) = partners();
        // One buffer shared by every body: counted a mebibyte each, allocated once.
        let body = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
        let mut queue = Queue::default();
        let mut pending = delivery(0, &one, DeliveryStatus::Pending);
        pending.body = body.clone();
        queue.push(pending);
        let total = MAX_KEPT_BYTES / body.len() + 40;
        for seq in 1..=total as u64 {
            let mut finished = delivery(seq, &one, DeliveryStatus::Delivered);
            finished.body = body.clone();
            queue.push(finished);
            queue.trim();
            assert!(queue.finished_bytes() <= MAX_KEPT_BYTES, "after {seq}");
        }
        assert_consistent(&queue);
        assert!(queue.contains(DeliveryId(0)), "the pending one stays");
        assert!(queue.contains(DeliveryId(total as u64)), "the newest stays");
        assert!(!queue.contains(DeliveryId(1)), "the oldest finished went");
        let kept: Vec<u64> = queue.iter().map(|delivery| delivery.seq).collect();
        let first_finished = kept[1];
        assert_eq!(
            kept[1..],
            (first_finished..=total as u64).collect::<Vec<_>>()[..],
            "what is kept is the newest, in order"
        );
        assert!(queue.finished_bytes() >= MAX_KEPT_BYTES - MAX_KEPT_BYTES / 16);
    }

    #[test]
    fn trimming_forgets_the_ids_of_what_it_drops_and_never_a_pending_delivery() {
        let (one, _) = partners();
        let mut queue = Queue::default();
        let total = (MAX_KEPT_DELIVERIES + TRIM_BATCH) as u64 + 20;
        for seq in 0..total {
            // The oldest ten are pending: trimming passes over them.
            let status = if seq < 10 {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Delivered
            };
            queue.push(delivery(seq, &one, status));
        }
        let dropped = queue.trim();
        // The finished ones past the count go; the pending ones are not counted in it.
        assert_eq!(dropped.len(), TRIM_BATCH + 10);
        assert_eq!(queue.list.len(), MAX_KEPT_DELIVERIES + 10);
        assert!(
            dropped
                .iter()
                .all(|d| d.status == DeliveryStatus::Delivered)
        );
        assert!(queue.contains(DeliveryId(0x000000000000)));
        assert!(!queue.contains(DeliveryId(0x00000000000a)));
        assert_eq!(queue.pending_of(&one.slug).count, 10);
        assert_consistent(&queue);
    }

    /// Behind a pending delivery, finished ones beyond the cap wait until a batch of them can
    /// go at once, and never more than the batch; with none pending at the front they go one
    /// at a time, and pending ones are never dropped, however many there are.
    #[test]
    fn behind_a_pending_delivery_the_excess_goes_in_batches_within_a_bound() {
        let (one, _) = partners();
        let mut queue = Queue::default();
        queue.push(delivery(0, &one, DeliveryStatus::Pending));
        let mut dropped = 0;
        let mut passes = 0;
        for seq in 1..(3 * MAX_KEPT_DELIVERIES) as u64 {
            queue.push(delivery(seq, &one, DeliveryStatus::Delivered));
            let trimmed = queue.trim();
            assert!(trimmed.iter().all(|d| d.status != DeliveryStatus::Pending));
            // The one pending is kept beside the finished ones, not in their count.
            if !trimmed.is_empty() {
                passes += 1;
                assert_eq!(queue.list.len(), MAX_KEPT_DELIVERIES + 1);
            }
            dropped += trimmed.len();
            assert!(queue.list.len() < MAX_KEPT_DELIVERIES + TRIM_BATCH + 1);
        }
        assert_eq!(dropped + queue.list.len(), 3 * MAX_KEPT_DELIVERIES);
        assert!(
            passes <= dropped / TRIM_BATCH,
            "{passes} passes for {dropped}"
        );
        assert!(
            queue.contains(DeliveryId(0x000000000000)),
            "the pending one stays"
        );
        assert_consistent(&queue);

        // With the front finished, each push beyond the cap drops exactly one.
        let mut queue = Queue::default();
        for seq in 0..MAX_KEPT_DELIVERIES as u64 + 3 {
            queue.push(delivery(seq, &one, DeliveryStatus::Failed));
            queue.trim();
            assert!(queue.list.len() <= MAX_KEPT_DELIVERIES);
        }

        // All pending: nothing to drop, nothing dropped.
        let mut queue = Queue::default();
        for seq in 0..(MAX_KEPT_DELIVERIES + TRIM_BATCH) as u64 + 1 {
            queue.push(delivery(seq, &one, DeliveryStatus::Pending));
        }
        assert!(queue.trim().is_empty());
        assert_consistent(&queue);
    }

    /// Pushes `count` finished deliveries of `partner` from `seq` on, each with `body`,
    /// trimming after each as an enqueue does.
    fn flood(
        queue: &mut Queue,
        partner: &Arc<Partner>,
        seqs: std::ops::Range<u64>,
        body: &bytes::Bytes,
    ) {
        for seq in seqs {
            let mut finished = delivery(seq, partner, DeliveryStatus::Delivered);
            finished.body = body.clone();
            queue.push(finished);
            queue.trim();
            assert!(queue.list.len() < MAX_KEPT_DELIVERIES + TRIM_BATCH);
            assert!(queue.finished_bytes() <= MAX_KEPT_BYTES);
        }
    }

    /// The seqs of `partner`'s deliveries kept, oldest first.
    fn seqs_of(queue: &Queue, partner: &Arc<Partner>) -> Vec<u64> {
        queue
            .iter()
            .filter(|delivery| delivery.partner.slug == partner.slug)
            .map(|delivery| delivery.seq)
            .collect()
    }

    /// A partner that holds fewer finished deliveries keeps them all through another's
    /// flood, which loses its own oldest; the flood's newest are what it keeps.
    #[test]
    fn past_the_count_a_flood_drops_its_own_oldest_not_a_quiet_partners() {
        let (loud, quiet) = partners();
        let mut queue = Queue::default();
        let empty = bytes::Bytes::new();
        flood(&mut queue, &quiet, 0..5, &empty);
        let total = 3 * MAX_KEPT_DELIVERIES as u64;
        flood(&mut queue, &loud, 5..total, &empty);
        assert_eq!(seqs_of(&queue, &quiet), (0..5).collect::<Vec<_>>());
        let kept = seqs_of(&queue, &loud);
        assert_eq!(kept.last(), Some(&(total - 1)));
        assert_eq!(
            kept,
            (total - kept.len() as u64..total).collect::<Vec<_>>(),
            "the loud partner keeps its newest, in order"
        );
        assert_consistent(&queue);

        // The quiet partner's next events are kept too, while it holds fewer.
        flood(&mut queue, &quiet, total..total + 10, &empty);
        assert_eq!(seqs_of(&queue, &quiet).len(), 15);
        assert_consistent(&queue);
    }

    /// Two partners flooding in turn end up holding about half each: the one holding the
    /// more loses first (or the one within a sixteenth of it whose delivery is the oldest).
    #[test]
    fn two_floods_share_the_count() {
        let (one, two) = partners();
        let mut queue = Queue::default();
        let empty = bytes::Bytes::new();
        let cap = MAX_KEPT_DELIVERIES as u64;
        flood(&mut queue, &one, 0..cap, &empty);
        flood(&mut queue, &two, cap..2 * cap, &empty);
        let (ones, twos) = (seqs_of(&queue, &one).len(), seqs_of(&queue, &two).len());
        // Within a sixteenth of the most, the oldest kept goes; past that, a batch.
        let slack = MAX_KEPT_DELIVERIES / 16 + TRIM_BATCH;
        assert!(ones.abs_diff(twos) <= slack, "{ones} and {twos}");
        assert_consistent(&queue);
    }

    /// The level cuts at least the excess off the tops, and is the highest that does.
    #[test]
    fn the_water_level_cuts_the_excess_off_the_tops() {
        let cut = |held: &[usize], level: usize| -> usize {
            held.iter().map(|&value| value.saturating_sub(level)).sum()
        };
        for (held, excess, level) in [
            (&[10_000, 5][..], 625, 9_375),
            (&[6_000, 4_000, 625][..], 625, 5_375),
            (&[5_000, 5_000, 625][..], 625, 4_687),
            (&[3, 3, 3][..], 9, 0),
            (&[3, 3, 3][..], 20, 0),
            (&[7][..], 0, usize::MAX),
            (&[][..], 5, 0),
        ] {
            assert_eq!(water_level(held, excess), level, "{held:?} less {excess}");
            if excess > 0 && cut(held, 0) >= excess {
                assert!(cut(held, level) >= excess, "{held:?}");
                assert!(cut(held, level + 1) < excess, "{held:?}: not the highest");
            }
        }
    }

    /// Partners whose events come in turn hold about as many each: the oldest kept goes at
    /// each enqueue, one at a time, never in a batch that moves the whole list.
    #[test]
    fn partners_in_turn_lose_their_oldest_one_at_a_time() {
        let (one, two) = partners();
        let mut queue = Queue::default();
        for seq in 0..3 * MAX_KEPT_DELIVERIES as u64 {
            let partner = if seq % 2 == 0 { &one } else { &two };
            queue.push(delivery(seq, partner, DeliveryStatus::Delivered));
            assert!(queue.trim().len() <= 1, "after {seq}");
            assert!(queue.list.len() <= MAX_KEPT_DELIVERIES);
        }
        assert_consistent(&queue);
    }

    /// Past the bytes' cap, the partner whose finished bodies hold the most bytes loses its
    /// oldest first, however few deliveries the other partner's bytes are in.
    #[test]
    fn past_the_bytes_the_partner_holding_the_most_bytes_loses_first() {
        let (loud, quiet) = partners();
        let mut queue = Queue::default();
        let mebibyte = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
        // Fewer deliveries than the loud partner's, more than a sixteenth of the bytes.
        flood(&mut queue, &quiet, 0..20, &mebibyte);
        let total = (MAX_KEPT_BYTES / mebibyte.len()) as u64 + 60;
        flood(&mut queue, &loud, 20..total, &mebibyte);
        assert_eq!(seqs_of(&queue, &quiet), (0..20).collect::<Vec<_>>());
        assert!(seqs_of(&queue, &loud).len() < (total - 20) as usize);
        assert_consistent(&queue);
    }

    /// What the engine once did on each wake, kept as the reference: walk every pending
    /// delivery in order; a link is held from its first delivery in flight or never tried.
    fn walk_every_pending(
        queue: &Queue,
        now: OffsetDateTime,
    ) -> (Vec<u64>, Option<OffsetDateTime>) {
        let mut held = std::collections::HashSet::new();
        let mut taken = Vec::new();
        for delivery in queue.pending() {
            let blocked = delivery
                .link
                .as_ref()
                .is_some_and(|link| held.contains(link));
            let due = !delivery.in_flight && delivery.next_attempt_at.is_some_and(|at| at <= now);
            if let Some(link) = &delivery.link
                && (delivery.in_flight || delivery.step == 0)
                && !blocked
            {
                held.insert(link.clone());
            }
            if due && !blocked {
                taken.push(delivery.seq);
            }
        }
        let next = queue
            .pending()
            .filter(|delivery| !delivery.in_flight && !taken.contains(&delivery.seq))
            .filter_map(|delivery| delivery.next_attempt_at)
            .min();
        (taken, next)
    }

    /// Through many random rounds of pushes, attempts taken, retries scheduled, deliveries
    /// settled and replayed, what the indexes take and say is next is what the walk over
    /// every pending delivery would have, and the indexes match the list.
    #[test]
    fn the_indexes_take_what_walking_every_pending_delivery_would() {
        use rand::{Rng, SeedableRng};
        let (one, two) = partners();
        let links: [Arc<str>; 3] = ["link_a".into(), "link_b".into(), "link_c".into()];
        let start = datetime!(2026-02-10 12:00 UTC);
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut queue = Queue::default();
            let mut now = start;
            let mut seq = 0;
            for _ in 0..400 {
                match rng.random_range(0..10) {
                    0..=3 => {
                        let partner = if rng.random_bool(0.5) { &one } else { &two };
                        let mut fresh = delivery(seq, partner, DeliveryStatus::Pending);
                        fresh.link = rng
                            .random_bool(0.8)
                            .then(|| links[rng.random_range(0..3)].clone());
                        fresh.next_attempt_at = Some(now);
                        queue.push(fresh);
                        seq += 1;
                    }
                    4..=5 => {
                        let expected = walk_every_pending(&queue, now);
                        let mut taken = Vec::new();
                        queue.due(now, |delivery| taken.push(delivery.seq));
                        assert_eq!((taken, queue.next_due()), expected, "seed {seed}");
                    }
                    6..=7 => {
                        // An attempt in flight ends: a retry later, or settled.
                        let in_flight: Vec<DeliveryId> = queue
                            .iter()
                            .filter(|delivery| delivery.in_flight)
                            .map(|delivery| delivery.id)
                            .collect();
                        if in_flight.is_empty() {
                            continue;
                        }
                        let id = &in_flight[rng.random_range(0..in_flight.len())];
                        let outcome = rng.random_range(0..3);
                        let minutes = rng.random_range(1..30);
                        queue.update(*id, |delivery| {
                            delivery.in_flight = false;
                            delivery.step += 1;
                            match outcome {
                                0 => {
                                    delivery.next_attempt_at =
                                        Some(now + time::Duration::minutes(minutes));
                                }
                                1 => {
                                    delivery.status = DeliveryStatus::Delivered;
                                    delivery.next_attempt_at = None;
                                }
                                _ => {
                                    delivery.status = DeliveryStatus::Failed;
                                    delivery.next_attempt_at = None;
                                }
                            }
                        });
                    }
                    8 => {
                        // A finished one replayed.
                        let finished: Vec<DeliveryId> = queue
                            .iter()
                            .filter(|delivery| delivery.status != DeliveryStatus::Pending)
                            .map(|delivery| delivery.id)
                            .collect();
                        if let Some(id) = finished.first() {
                            queue.update(*id, |delivery| {
                                delivery.status = DeliveryStatus::Pending;
                                delivery.next_attempt_at = Some(now);
                            });
                        }
                    }
                    _ => now += time::Duration::minutes(rng.random_range(0..10)),
                }
                assert_consistent(&queue);
            }
            queue.retain(|delivery| delivery.seq % 3 != 0);
            assert_consistent(&queue);
            queue.clear();
            assert_consistent(&queue);
        }
    }
}
