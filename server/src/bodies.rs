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
//! The caller is the tenant the request names (the key or token it presents, not yet
//! checked) or, without one, "anonymous": a careless or hostile caller fills its quarter
//! and is refused there, while everyone else's bodies are read. Callers are counted apart
//! only once one body passes [`SMALL`]: the many small bodies of ordinary traffic cost one
//! atomic add each way.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Below this many bytes a body is counted in the total only.
pub const SMALL: u64 = 256 * 1024;

/// The bodies held now: their bytes in all, and, for the callers with a body past
/// [`SMALL`], each caller's share of them.
pub struct Bodies {
    most: u64,
    held: AtomicU64,
    by_caller: Mutex<HashMap<Arc<str>, u64>>,
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
            by_caller: Mutex::new(HashMap::new()),
        })
    }

    /// The bytes held now, by every body together.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// An empty hold for one body of `caller` (`None`: anonymous).
    pub fn hold(self: &Arc<Bodies>, caller: Option<Arc<str>>) -> Hold {
        Hold {
            bodies: Arc::clone(self),
            caller,
            bytes: 0,
            by_caller: false,
        }
    }

    fn caller_most(&self) -> u64 {
        self.most / 4
    }
}

/// What one body holds of the bound; let go when dropped.
pub struct Hold {
    bodies: Arc<Bodies>,
    caller: Option<Arc<str>>,
    bytes: u64,
    /// Whether `bytes` are also counted in the caller's share.
    by_caller: bool,
}

/// The key anonymous callers share.
const ANONYMOUS: &str = "";

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
        let total = self.bytes + more;
        if total > SMALL {
            let key = self.caller.as_deref().unwrap_or(ANONYMOUS);
            let mut by_caller = bodies.by_caller.lock();
            let adding = if self.by_caller { more } else { total };
            let share = by_caller.get(key).copied().unwrap_or(0);
            if share.saturating_add(adding) > bodies.caller_most() {
                drop(by_caller);
                bodies.held.fetch_sub(more, Ordering::Relaxed);
                return Err(Refused::CallerFull);
            }
            match by_caller.get_mut(key) {
                Some(share) => *share += adding,
                None => {
                    by_caller.insert(Arc::from(key), adding);
                }
            }
            self.by_caller = true;
        }
        self.bytes = total;
        Ok(())
    }

    /// The bytes this body holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let bodies = &*self.bodies;
        bodies.held.fetch_sub(self.bytes, Ordering::Relaxed);
        if self.by_caller {
            let key = self.caller.as_deref().unwrap_or(ANONYMOUS);
            let mut by_caller = bodies.by_caller.lock();
            if let Some(share) = by_caller.get_mut(key) {
                *share = share.saturating_sub(self.bytes);
                if *share == 0 {
                    by_caller.remove(key);
                }
            }
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
        let holds: Vec<Hold> = (0..4)
            .map(|n| {
                let mut hold = bodies.hold(Some(Arc::from(format!("tenant-{n}"))));
                hold.grow(4 * MIB).expect("room");
                hold
            })
            .collect();
        assert_eq!(bodies.held(), 16 * MIB);
        let mut late = bodies.hold(Some(Arc::from("late")));
        assert_eq!(late.grow(1), Err(Refused::Full));
        assert_eq!(bodies.held(), 16 * MIB, "a refusal counts nothing");
        drop(holds);
        assert_eq!(bodies.held(), 0);
        late.grow(MIB).expect("room again");
        drop(late);
        assert_eq!(bodies.held(), 0);
        assert!(bodies.by_caller.lock().is_empty());
    }

    #[test]
    fn one_caller_holds_at_most_a_quarter_and_small_bodies_are_not_sorted_by_caller() {
        let bodies = Bodies::new(16);
        let caller = || Some(Arc::<str>::from("greedy"));
        let mut first = bodies.hold(caller());
        first.grow(3 * MIB).expect("under a quarter");
        let mut second = bodies.hold(caller());
        assert_eq!(second.grow(MIB + 1), Err(Refused::CallerFull));
        assert_eq!(bodies.held(), 3 * MIB);
        // Another caller, and the anonymous ones together, have their own quarter.
        let mut other = bodies.hold(None);
        other.grow(4 * MIB).expect("its own quarter");
        let mut small = bodies.hold(caller());
        small
            .grow(SMALL)
            .expect("small bodies are counted in the total only");
        drop(first);
        second.grow(MIB + 1).expect("the share was let go");
        assert_eq!(bodies.held(), MIB + 1 + 4 * MIB + SMALL);
    }
}
