//! The CPU a server spent on a row's requests, by thread: where a create's time goes, in
//! the run that measured its rate. With `--state` a create's cost is shared by the workers
//! (the request, and the rows it records), the writer (`linkbox-state`: the write log's
//! frames) and the applier (`linkbox-apply`: SQLite, its write-ahead log, the checkpoints
//! and their `fsync`s); the rate alone does not say which of them to make cheaper.
//!
//! Read from `/proc/PID/task/*/stat` before and after the load (Linux only; elsewhere the
//! split is left out). Threads of one name are summed (the tokio workers). Times are in
//! clock ticks of `USER_HZ`, which Linux fixes at 100 for what it shows user space, so one
//! tick is 10 ms: over a row of ten seconds and a hundred thousand requests that is a
//! resolution of 0.1 µs per request.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc`'s `utime` and `stime` (Linux's `USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// User and system ticks, by thread name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Threads(BTreeMap<String, (u64, u64)>);

/// One thread's (or one name's) CPU per request, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub thread: String,
    pub user_us: f64,
    pub sys_us: f64,
}

impl Threads {
    /// The threads of process `pid` now; `None` where `/proc` cannot say.
    pub fn of(pid: u32) -> Option<Threads> {
        let mut threads = Threads::default();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            // A thread that ended between the listing and the read is left out.
            let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("stat")) else {
                continue;
            };
            if let Some((name, user, sys)) = parse_stat(&stat) {
                threads.count(name, user, sys);
            }
        }
        Some(threads)
    }

    /// What each name spent since `before` (a name new since then, all of it).
    pub fn since(&self, before: &Threads) -> Threads {
        Threads(
            self.0
                .iter()
                .map(|(name, &(user, sys))| {
                    let (was_user, was_sys) = before.0.get(name).copied().unwrap_or_default();
                    (
                        name.clone(),
                        (user.saturating_sub(was_user), sys.saturating_sub(was_sys)),
                    )
                })
                .collect(),
        )
    }

    /// Adds `other`'s ticks to these.
    pub fn add(&mut self, other: &Threads) {
        for (name, &(user, sys)) in &other.0 {
            self.count(name.clone(), user, sys);
        }
    }

    /// Adds ticks to `name`'s: threads of one name are counted together.
    fn count(&mut self, name: String, user: u64, sys: u64) {
        let entry = self.0.entry(name).or_default();
        entry.0 += user;
        entry.1 += sys;
    }

    /// Each name's time over `requests` requests, busiest first; names that spent less
    /// than 0.05 µs a request (the main thread, the log writer: a tick or two in a row) are
    /// left out, as they would print as nothing.
    pub fn per_request(&self, requests: u64) -> Vec<Share> {
        if requests == 0 {
            return Vec::new();
        }
        let micros = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / requests as f64;
        let mut shares: Vec<Share> = self
            .0
            .iter()
            .map(|(name, &(user, sys))| Share {
                thread: name.clone(),
                user_us: micros(user),
                sys_us: micros(sys),
            })
            .filter(|share| share.user_us + share.sys_us >= 0.05)
            .collect();
        shares.sort_by(|a, b| (b.user_us + b.sys_us).total_cmp(&(a.user_us + a.sys_us)));
        shares
    }
}

/// A thread's name, user ticks and system ticks from its `stat` line. The name is in
/// parentheses and may hold spaces or parentheses itself, so the fields are counted from
/// the last `)`: state, then ten more, then `utime` and `stime` (fields 14 and 15).
fn parse_stat(stat: &str) -> Option<(String, u64, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let sys = fields.next()?.parse().ok()?;
    Some((name, user, sys))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `stat` line as Linux writes it, name and times as given.
    fn line(name: &str, user: u64, sys: u64) -> String {
        format!(
            "4242 ({name}) S 1 4242 4242 0 -1 4194560 900 0 0 0 {user} {sys} 0 0 20 0 4 0 1234 0 0"
        )
    }

    #[test]
    fn a_stat_line_gives_its_name_and_times() {
        assert_eq!(
            parse_stat(&line("tokio-rt-worker", 196, 159)),
            Some(("tokio-rt-worker".to_owned(), 196, 159))
        );
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        assert_eq!(
            parse_stat(&line("a (b) c", 7, 3)),
            Some(("a (b) c".to_owned(), 7, 3))
        );
    }

    #[test]
    fn a_cut_line_is_not_read() {
        assert_eq!(parse_stat("4242 (linkbox) S 1 4242"), None);
        assert_eq!(parse_stat("no parentheses"), None);
    }

    #[test]
    fn the_split_is_per_request_busiest_first_and_counts_only_the_run() {
        let before = Threads(BTreeMap::from([
            ("tokio-rt-worker".to_owned(), (100, 50)),
            ("linkbox-log".to_owned(), (1, 0)),
        ]));
        let after = Threads(BTreeMap::from([
            ("tokio-rt-worker".to_owned(), (300, 150)),
            ("linkbox-log".to_owned(), (1, 0)),
            ("linkbox-state".to_owned(), (400, 100)),
        ]));
        let mut spent = after.since(&before);
        // A second round of the same row, added.
        spent.add(&Threads(BTreeMap::from([(
            "tokio-rt-worker".to_owned(),
            (200, 100),
        )])));
        // 10,000 requests: one tick (10 ms) is 1 µs a request.
        let shares = spent.per_request(10_000);
        assert_eq!(
            shares,
            [
                Share {
                    thread: "tokio-rt-worker".into(),
                    user_us: 400.0,
                    sys_us: 200.0
                },
                Share {
                    thread: "linkbox-state".into(),
                    user_us: 400.0,
                    sys_us: 100.0
                },
            ]
        );
        assert!(spent.per_request(0).is_empty());
        // Over a million requests one tick is 0.01 µs a request: too little to print.
        let quiet = Threads(BTreeMap::from([
            ("tokio-rt-worker".to_owned(), (100, 0)),
            ("linkbox".to_owned(), (0, 1)),
        ]));
        let shares = quiet.per_request(1_000_000);
        assert_eq!(
            shares
                .iter()
                .map(|share| share.thread.as_str())
                .collect::<Vec<_>>(),
            ["tokio-rt-worker"]
        );
    }

    #[test]
    fn this_process_can_be_read() {
        if !std::path::Path::new("/proc/self/task").exists() {
            return;
        }
        let threads = Threads::of(std::process::id()).expect("own threads");
        assert!(
            !threads.0.is_empty(),
            "at least the thread running this test"
        );
    }
}
