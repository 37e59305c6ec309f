//! Numbered variants of a name a seed gives again — `cust-1`, then `cust-1-2`, `cust-1-3`, …
//! — and where the search for the first free one picks up ([`Numbered`]): a tenant seeded
//! with the same `rngSeed` for the hundredth time finds each of its names' free variant in a
//! look-up or two, not after trying the ninety-nine it took before.
//!
//! What is remembered only saves look-ups: the variant found is the first free one, as a
//! search from the start finds it. Whatever may free a variant the search skips — a link
//! revoked or expired, a user deleted or renamed, rows a replica applied — forgets it.

use std::collections::HashMap;

use time::OffsetDateTime;

/// Whether a name is held, as the tenant's index tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Free,
    /// By a link active until then.
    Until(OffsetDateTime),
    /// By a user, until it is deleted or renamed ([`Numbered::released`]).
    ForGood,
}

/// Of one base name: every variant below `next` was held, and stays held before `until`
/// (for good, when `None`).
#[derive(Debug, Clone, Copy)]
struct Known {
    next: u32,
    until: Option<OffsetDateTime>,
}

/// Where the search for each base name's first free variant picks up, in one tenant: at
/// most one entry per base name a seed gave again, so no more than the tenant has users.
#[derive(Debug, Default)]
pub struct Numbered {
    known: HashMap<Box<str>, Known>,
    /// Every name looked up: what a test counts.
    looked_up: u64,
}

impl Numbered {
    /// The first of `base`, `base-2`, `base-3`, … that `held` says is free at `now` (`None`
    /// for names held for good or not at all), past the variants known held; `None` when
    /// none of the first `most` is, which no tenant with fewer than `most` names can cause.
    pub fn first_free(
        &mut self,
        base: &str,
        now: Option<OffsetDateTime>,
        most: u32,
        mut held: impl FnMut(&str) -> Held,
    ) -> Option<String> {
        let still = |known: &Known| match (known.until, now) {
            (None, _) => true,
            (Some(until), Some(now)) => now < until,
            (Some(_), None) => false,
        };
        if let Some(known) = self.known.get(base).copied().filter(still)
            && let Some(free) = self.search(base, known, most, &mut held)
        {
            return Some(free);
        }
        // Nothing known, or what was known went stale unseen: from the start.
        let start = Known {
            next: 1,
            until: None,
        };
        self.search(base, start, most, &mut held)
    }

    /// [`Numbered::first_free`] from variant `from.next` on, the ones below it held until
    /// `from.until`; what it finds held on the way is remembered.
    fn search(
        &mut self,
        base: &str,
        from: Known,
        most: u32,
        held: &mut impl FnMut(&str) -> Held,
    ) -> Option<String> {
        let Known {
            next: mut number,
            mut until,
        } = from;
        while number <= most {
            let name = variant(base, number);
            self.looked_up += 1;
            match held(&name) {
                Held::Free => {
                    if number == 1 {
                        self.known.remove(base);
                    } else {
                        self.known.insert(
                            base.into(),
                            Known {
                                next: number,
                                until,
                            },
                        );
                    }
                    return Some(name);
                }
                Held::Until(at) => until = Some(until.map_or(at, |until| until.min(at))),
                Held::ForGood => {}
            }
            number += 1;
        }
        self.known.remove(base);
        None
    }

    /// `name` is no longer held (its link was revoked, its user deleted or renamed): a
    /// variant below where its base's search picks up may be free again, so that is
    /// forgotten.
    pub fn released(&mut self, name: &str) {
        if self.known.is_empty() {
            return;
        }
        self.known.remove(name);
        if let Some((base, number)) = name.rsplit_once('-')
            && number.parse::<u32>().is_ok_and(|number| number >= 2)
        {
            self.known.remove(base);
        }
    }

    /// Forgets every base name's: the names' holders changed in ways not told one by one.
    pub fn clear(&mut self) {
        self.known.clear();
    }

    /// How many names were looked up in all.
    pub fn looked_up(&self) -> u64 {
        self.looked_up
    }
}

/// `base` for the first, `base-N` for the Nth.
fn variant(base: &str, number: u32) -> String {
    if number == 1 {
        base.to_owned()
    } else {
        format!("{base}-{number}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-02-10 12:00 UTC);

    /// Names held, each until its time (`None`: for good).
    struct Names(HashMap<String, Option<OffsetDateTime>>);

    impl Names {
        fn held(&self, now: OffsetDateTime) -> impl FnMut(&str) -> Held + '_ {
            move |name| match self.0.get(name) {
                None => Held::Free,
                Some(None) => Held::ForGood,
                Some(Some(until)) if now < *until => Held::Until(*until),
                Some(Some(_)) => Held::Free,
            }
        }
    }

    #[test]
    fn each_name_again_takes_the_next_variant_in_a_look_up_or_two() {
        let mut names = Names(HashMap::new());
        let mut numbered = Numbered::default();
        let until = Some(NOW + time::Duration::hours(1));
        for round in 1..=200u32 {
            let before = numbered.looked_up();
            let name = numbered
                .first_free("cust-1", Some(NOW), 1000, names.held(NOW))
                .expect("free");
            let expected = if round == 1 {
                "cust-1".to_owned()
            } else {
                format!("cust-1-{round}")
            };
            assert_eq!(name, expected);
            assert!(numbered.looked_up() - before <= 2, "round {round}");
            names.0.insert(name, until);
        }
    }

    #[test]
    fn a_variant_freed_below_is_found_again_as_a_search_from_the_start_finds_it() {
        let mut names = Names(HashMap::new());
        let mut numbered = Numbered::default();
        let soon = NOW + time::Duration::minutes(5);
        let later = NOW + time::Duration::hours(1);
        for number in 1..=5 {
            let name = numbered
                .first_free("b", Some(NOW), 100, names.held(NOW))
                .expect("free");
            // `b-3` expires before the others.
            let until = if number == 3 { soon } else { later };
            names.0.insert(name, Some(until));
        }
        // Before `b-3` expires, the next is `b-6`; once it has, `b-3` again.
        let next = numbered.first_free("b", Some(NOW), 100, names.held(NOW));
        assert_eq!(next.as_deref(), Some("b-6"));
        let after = numbered.first_free("b", Some(soon), 100, names.held(soon));
        assert_eq!(after.as_deref(), Some("b-3"));
        // A variant released (a link revoked, a user deleted) is found again too.
        names.0.insert("b-3".into(), Some(later));
        names.0.insert("b-6".into(), Some(later));
        names.0.remove("b-2");
        numbered.released("b-2");
        let again = numbered.first_free("b", Some(NOW), 100, names.held(NOW));
        assert_eq!(again.as_deref(), Some("b-2"));
    }

    #[test]
    fn names_held_for_good_are_skipped_until_released() {
        let mut names = Names(HashMap::new());
        let mut numbered = Numbered::default();
        for _ in 0..3 {
            let name = numbered
                .first_free("farm-1", None, 100, names.held(NOW))
                .expect("free");
            names.0.insert(name, None);
        }
        assert_eq!(
            numbered.first_free("farm-1", None, 100, names.held(NOW)),
            Some("farm-1-4".into())
        );
        names.0.remove("farm-1");
        numbered.released("farm-1");
        assert_eq!(
            numbered.first_free("farm-1", None, 100, names.held(NOW)),
            Some("farm-1".into())
        );
        for name in ["farm-1", "farm-1-4"] {
            names.0.insert(name.into(), None);
        }
        assert_eq!(
            numbered.first_free("farm-1", None, 100, names.held(NOW)),
            Some("farm-1-5".into())
        );
        // One freed unseen (no `released`), with none free past what is known held among
        // the first `most` (four names held, so one of the first five is free): found from
        // the start.
        names.0.insert("farm-1-5".into(), None);
        names.0.remove("farm-1-2");
        assert_eq!(
            numbered.first_free("farm-1", None, 5, names.held(NOW)),
            Some("farm-1-2".into())
        );
        // None of the first `most` free: no name, not a search without end.
        assert_eq!(
            numbered.first_free("farm-1", None, 2, |_| Held::ForGood),
            None
        );
    }
}
