//! The bytes of request bodies held at once, across every connection and HTTP/2 stream:
//! bounded (`--max-bodies-mib`), and no one caller holding more than a quarter of it.
//!
//! A body is read whole before its handler works on it, up to its route's limit (10 MiB on
//! the vendor APIs, 64 MiB for a snapshot, 25 MiB for an upload). Each of those limits is
//! per request; without this bound, a hundred connections each sending nine megabytes and
//! then waiting — or one HTTP/2 connection with as many streams — would have linkbox hold
//! gigabytes. A body is counted as its bytes arrive ([`Hold::grow`]) and let go when the
//! request is done with it ([`Hold`] dropped); a body that would pass the bound is refused
//! (the APIs answer 503 with `Retry-After: 1`, each in its own envelope) and what it held
//! is let go at once. The request's head is counted with its body, from when the body is
//! first awaited ([`crate::wire::Request::body`]): it waits in memory as long as the body
//! takes.
//!
//! The caller is a tenant that exists — a partner or Leaf account that has written — whose
//! count lives in the tenant itself ([`Share`]); every other caller (no credentials, or a
//! key or token of a tenant that has never written, which cost nothing to make up) counts
//! in one share for all of them. Every body is counted in both its caller's share and the
//! whole, an atomic add each: bodies just under some size cannot slip past a caller's
//! quarter, and a thousand made-up keys are one caller.
//!
//! Answers count too: an answer whose body is held whole in memory and is larger than
//! [`PIECE_BYTES`] (the request journal, the faults list, a Leaf list not paged) takes a
//! hold of its size in its caller's share before it is sent, and is handed to the
//! connection in [`Pieces`], the hold let go once the last piece is out or the answer is
//! dropped (the client gone). Without that, clients that asked for such an answer and never
//! read it — 64 sockets, or one HTTP/2 connection's hundred streams with no window — held
//! a gigabyte for as long as their connections lived. An answer that cannot be held is
//! refused as a body is. Answers sent as they are made (an M2M list page) hold a piece or
//! two each and need no hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// One caller's count of the bytes its bodies hold now: kept by its tenant.
pub type Share = Arc<AtomicU64>;

/// The bodies held now: their bytes in all, and the share of every caller without a
/// tenant of its own.
pub struct Bodies {
    most: u64,
    held: AtomicU64,
    anonymous: Share,
}

/// Why a body could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// All bodies together would pass the bound.
    Full,
    /// This caller's bodies would pass a quarter of it.
    CallerFull,
}

impl Bodies {
    /// A bound of `most_mib` MiB.
    pub fn new(most_mib: u64) -> Arc<Bodies> {
        Arc::new(Bodies {
            most: most_mib.saturating_mul(1024 * 1024),
            held: AtomicU64::new(0),
            anonymous: Share::default(),
        })
    }

    /// The most one caller's bodies may hold at once: a quarter of the bound.
    pub fn caller_most(&self) -> u64 {
        self.most / 4
    }

    /// The bytes held now, by every body together.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// An empty hold for one body of the caller whose share is `share` (`None`: a caller
    /// without a tenant of its own, counted with all the others).
    pub fn hold(self: &Arc<Bodies>, share: Option<Share>) -> Hold {
        Hold {
            share: share.unwrap_or_else(|| self.anonymous.clone()),
            bodies: Arc::clone(self),
            bytes: 0,
        }
    }
}

/// What one body holds of the bound; let go when dropped.
pub struct Hold {
    bodies: Arc<Bodies>,
    share: Share,
    bytes: u64,
}

impl Hold {
    /// Counts `more` bytes of this body; refused, counting nothing, when the total or the
    /// caller's share would pass its bound.
    pub fn grow(&mut self, more: u64) -> Result<(), Refused> {
        let bodies = &*self.bodies;
        let before = bodies.held.fetch_add(more, Ordering::Relaxed);
        if before.saturating_add(more) > bodies.most {
            bodies.held.fetch_sub(more, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        let share = self.share.fetch_add(more, Ordering::Relaxed);
        if share.saturating_add(more) > bodies.most / 4 {
            self.share.fetch_sub(more, Ordering::Relaxed);
            bodies.held.fetch_sub(more, Ordering::Relaxed);
            return Err(Refused::CallerFull);
        }
        self.bytes += more;
        Ok(())
    }

    /// Whether a body of `declared` bytes could be held at all, even alone: at most a
    /// caller's quarter ([`Bodies::caller_most`]). Checked before a byte is read (no
    /// `100 Continue`); a body past it is too large, not early.
    pub fn could_hold(&self, declared: u64) -> bool {
        declared <= self.bodies.caller_most()
    }

    /// The most one caller's bodies may hold at once, which no one body may pass.
    pub fn caller_most(&self) -> u64 {
        self.bodies.caller_most()
    }

    /// The bytes this body holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The most of an answer handed to the connection at once, and the size past which an
/// answer held whole is counted ([`Pieces`]): at or under it, an answer is one piece
/// anyway, and costs no more than a size check.
pub const PIECE_BYTES: usize = 64 * 1024;

/// An answer's body held whole, handed out in pieces of at most [`PIECE_BYTES`], with the
/// hold that counts it.
///
/// Each piece is a copy: a piece the connection still holds (in its write buffer, or an
/// HTTP/2 stream's queue) is its own allocation, and does not keep the whole body alive
/// after this is dropped. The body is one allocation, freed only when it is dropped whole,
/// so the hold counts all of it until then: until the last piece is copied out, or the
/// pieces are dropped unsent (the client gone). Pieces are copied only as they are asked
/// for, and a connection asks only when it can send: HTTP/1 when its socket drained what
/// hyper buffered, HTTP/2 when the stream's window has room — a client that stops reading
/// keeps the body counted, and at most a piece more outside it.
pub struct Pieces {
    whole: Bytes,
    at: usize,
    hold: Option<Hold>,
}

impl Pieces {
    /// `whole` in pieces, counted in `hold` (grown by its size here); refused, holding
    /// nothing, when it would pass the bound or the caller's share. An answer larger than a
    /// caller's whole share (a snapshot of a large tenant) counts as the whole share: it is
    /// sent when the caller holds nothing else, one at a time, rather than never — its size
    /// is bounded by what the tenant may store, not by the caller.
    pub fn new(whole: Bytes, mut hold: Hold) -> Result<Pieces, Refused> {
        hold.grow((whole.len() as u64).min(hold.caller_most()))?;
        Ok(Pieces {
            whole,
            at: 0,
            hold: Some(hold),
        })
    }

    /// The bytes not handed out yet.
    pub fn remaining(&self) -> usize {
        self.whole.len() - self.at
    }
}

impl Iterator for Pieces {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let rest = self.whole.get(self.at..).filter(|rest| !rest.is_empty())?;
        let piece = Bytes::copy_from_slice(&rest[..rest.len().min(PIECE_BYTES)]);
        self.at += piece.len();
        if self.at == self.whole.len() {
            // The last piece is out: the body goes, and what counted it.
            self.whole = Bytes::new();
            self.at = 0;
            self.hold = None;
        }
        Some(piece)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pieces = self.remaining().div_ceil(PIECE_BYTES);
        (pieces, Some(pieces))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.bodies.held.fetch_sub(self.bytes, Ordering::Relaxed);
            self.share.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

pub use linkbox_contracts::json::{MAX_JSON_VALUES, holds_more_values_than, outside_strings};

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn bodies_are_held_up_to_the_bound_and_let_go_when_dropped() {
        let bodies = Bodies::new(16);
        let shares: Vec<Share> = (0..4).map(|_| Share::default()).collect();
        let holds: Vec<Hold> = shares
            .iter()
            .map(|share| {
                let mut hold = bodies.hold(Some(share.clone()));
                hold.grow(4 * MIB).expect("room");
                hold
            })
            .collect();
        assert_eq!(bodies.held(), 16 * MIB);
        let mut late = bodies.hold(Some(Share::default()));
        assert_eq!(late.grow(1), Err(Refused::Full));
        assert_eq!(bodies.held(), 16 * MIB, "a refusal counts nothing");
        drop(holds);
        assert_eq!(bodies.held(), 0);
        assert!(
            shares
                .iter()
                .all(|share| share.load(Ordering::Relaxed) == 0)
        );
        late.grow(MIB).expect("room again");
        drop(late);
        assert_eq!(bodies.held(), 0);
    }

    #[test]
    fn an_answer_is_counted_until_its_last_piece_is_out_or_it_is_dropped() {
        let bodies = Bodies::new(16);
        let share = Share::default();
        let size = 3 * PIECE_BYTES + 10;
        let whole = Bytes::from((0..size).map(|at| at as u8).collect::<Vec<u8>>());
        let mut pieces =
            Pieces::new(whole.clone(), bodies.hold(Some(share.clone()))).expect("room");
        assert_eq!(pieces.size_hint(), (4, Some(4)));
        assert_eq!(bodies.held(), size as u64);
        assert_eq!(share.load(Ordering::Relaxed), size as u64);
        let mut sent = Vec::new();
        for _ in 0..3 {
            let piece = pieces.next().expect("a piece");
            assert_eq!(piece.len(), PIECE_BYTES);
            sent.extend_from_slice(&piece);
            // The body is one allocation, alive until its last piece is copied out.
            assert_eq!(bodies.held(), size as u64);
        }
        let last = pieces.next().expect("the last piece");
        assert_eq!(last.len(), 10);
        sent.extend_from_slice(&last);
        assert_eq!(sent, whole, "the pieces are the body, in order");
        assert_eq!(bodies.held(), 0, "let go with the last piece");
        assert_eq!(share.load(Ordering::Relaxed), 0);
        assert!(pieces.next().is_none());
        // A piece is a copy: it does not keep the body it came from.
        assert!(!std::ptr::eq(
            last.as_ptr(),
            whole[3 * PIECE_BYTES..].as_ptr()
        ));

        // Dropped half sent (the client gone): let go at once.
        let mut pieces = Pieces::new(whole.clone(), bodies.hold(None)).expect("room");
        pieces.next().expect("a piece");
        assert_eq!(bodies.held(), size as u64);
        drop(pieces);
        assert_eq!(bodies.held(), 0);
    }

    #[test]
    fn an_answer_past_the_share_or_the_bound_is_refused_holding_nothing() {
        let bodies = Bodies::new(16);
        let answer = || Bytes::from(vec![b'x'; 3 * MIB as usize]);
        // A stranger's answers count in the one share of every caller without a tenant.
        let first = Pieces::new(answer(), bodies.hold(None)).expect("under a quarter");
        let refused = Pieces::new(answer(), bodies.hold(None)).err();
        assert_eq!(refused, Some(Refused::CallerFull));
        assert_eq!(bodies.held(), 3 * MIB, "a refusal counts nothing");
        // Answers and request bodies share the one bound.
        let tenants: Vec<Hold> = (0..4)
            .map(|_| {
                let mut hold = bodies.hold(Some(Share::default()));
                hold.grow(3 * MIB).expect("room");
                hold
            })
            .collect();
        let refused = Pieces::new(answer(), bodies.hold(Some(Share::default()))).err();
        assert_eq!(refused, Some(Refused::Full));
        drop((first, tenants));
        assert_eq!(bodies.held(), 0);
        Pieces::new(answer(), bodies.hold(None)).expect("room again");
    }

    /// An answer larger than a caller's whole share counts as the share: sent when the
    /// caller holds nothing else, one at a time, never refused for good.
    #[test]
    fn an_answer_past_a_whole_share_is_sent_alone_counted_as_the_share() {
        let bodies = Bodies::new(16);
        let huge = || Bytes::from(vec![b'x'; 10 * MIB as usize]);
        let alone = Pieces::new(huge(), bodies.hold(None)).expect("the caller holds nothing");
        assert_eq!(bodies.held(), 4 * MIB, "counted as the share");
        assert_eq!(alone.remaining(), 10 * MIB as usize);
        let second = Pieces::new(huge(), bodies.hold(None)).err();
        assert_eq!(second, Some(Refused::CallerFull), "one at a time");
        assert_eq!(alone.count(), 160, "every piece of it");
        assert_eq!(bodies.held(), 0);
    }

    #[test]
    fn one_caller_holds_at_most_a_quarter_however_small_its_bodies() {
        let bodies = Bodies::new(16);
        let greedy = Share::default();
        // Bodies of 255 KiB, as many as fit: sixteen of them make its quarter.
        let mut held = Vec::new();
        let refused = loop {
            let mut hold = bodies.hold(Some(greedy.clone()));
            match hold.grow(255 * 1024) {
                Ok(()) => held.push(hold),
                Err(refused) => break refused,
            }
        };
        assert_eq!(refused, Refused::CallerFull);
        assert!(greedy.load(Ordering::Relaxed) <= 4 * MIB);
        assert_eq!(bodies.held(), greedy.load(Ordering::Relaxed));
        // Every caller without a tenant is one caller: the second made-up key too.
        let mut first = bodies.hold(None);
        first.grow(3 * MIB).expect("under a quarter");
        let mut second = bodies.hold(None);
        assert_eq!(second.grow(MIB + 1), Err(Refused::CallerFull));
        // A tenant of its own has its own quarter.
        let mut tenant = bodies.hold(Some(Share::default()));
        tenant.grow(4 * MIB).expect("its own quarter");
        drop(first);
        second.grow(MIB + 1).expect("the share was let go");
        // A body declared past a quarter could never be held.
        assert!(!tenant.could_hold(4 * MIB + 1));
        assert!(tenant.could_hold(4 * MIB));
    }
}
