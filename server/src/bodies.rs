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
//! is let go at once.
//!
//! The caller is a tenant that exists — a partner or Leaf account that has written — whose
//! count lives in the tenant itself ([`Share`]); every other caller (no credentials, or a
//! key or token of a tenant that has never written, which cost nothing to make up) counts
//! in one share for all of them. Every body is counted in both its caller's share and the
//! whole, an atomic add each: bodies just under some size cannot slip past a caller's
//! quarter, and a thousand made-up keys are one caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

impl Drop for Hold {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.bodies.held.fetch_sub(self.bytes, Ordering::Relaxed);
            self.share.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

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
